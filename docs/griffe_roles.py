"""Griffe extension: render the Sphinx roles in the kit's docstrings as cross-references.

The docstrings are Google style but name objects the Sphinx way (``:class:`TaskInfo```,
``:func:`~taskqueue_kit.testing.run_worker```), which mkdocstrings would print as they
are. Once the package is loaded, each role becomes a link to the object it names, resolved
from where the docstring sits, and plain code when the object is not on any page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import griffe

__all__ = ["SphinxRoles", "replace_roles", "resolve"]

ROLE = re.compile(
    r":(?:py:)?(?:attr|class|const|data|exc|func|meth|mod|obj):"
    r"`(?P<short>~?)(?P<target>[A-Za-z_][\w.]*)`"
)


def resolve(scope: griffe.Object | griffe.Alias | None, target: str) -> str:
    """The full path of ``target`` as seen from ``scope``, or ``target`` when not found there.

    The first dotted part is looked up in ``scope``, then in each enclosing object, as a
    name in a docstring reads in its module; imported names resolve to where they come from.
    """
    first, dot, rest = target.partition(".")
    while scope is not None:
        member = scope.members.get(first) if hasattr(scope, "members") else None
        if member is not None:
            path = member.target_path if isinstance(member, griffe.Alias) else member.path
            return f"{path}{dot}{rest}"
        scope = scope.parent
    return target


def replace_roles(text: str, scope: griffe.Object | griffe.Alias | None) -> str:
    """``text`` with every Sphinx role turned into an optional autorefs cross-reference."""

    def link(match: re.Match[str]) -> str:
        target = match["target"]
        shown = target.rsplit(".", 1)[-1] if match["short"] else target
        identifier = html.escape(resolve(scope, target), quote=True)
        code = f"<code>{html.escape(shown)}</code>"
        return f'<autoref identifier="{identifier}" optional>{code}</autoref>'

    return ROLE.sub(link, text)


def _objects(root: griffe.Object) -> Iterator[griffe.Object]:
    yield root
    for member in root.members.values():
        if not isinstance(member, griffe.Alias):
            yield from _objects(member)


class SphinxRoles(griffe.Extension):
    """Rewrites the roles in every docstring of a package once it is fully loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite the docstrings of ``pkg`` and everything in it."""
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = replace_roles(obj.docstring.value, obj)
