"""Celery's ``argsrepr`` and ``kwargsrepr`` headers, written without Celery's slow path.

Every message carries a printable form of its arguments for logs, events and Flower, made
by ``celery.utils.saferepr``: a generator-based repr that takes 8 to 50 µs for a few
arguments and about 800 µs for a list of 300 numbers, on every send. For the values JSON
arguments are made of, the builtin ``repr`` gives the very same text, 10 to 40 times
faster; :func:`fast_saferepr` checks that it would and otherwise declines, leaving the
value to ``saferepr``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fast_saferepr"]

_SCALARS = (int, float, bool, type(None))
_CONTAINERS = (tuple, list, dict)


def _same_as_saferepr(value: Any, maxlen: int, maxlevels: int) -> bool:
    """Whether ``repr(value)`` is what ``saferepr`` writes, if it is shorter than ``maxlen``.

    ``saferepr`` writes numbers with ``str`` (the same as ``repr`` for these exact types),
    quotes every string in single quotes with only ``'`` escaped, and replaces a container
    nested ``maxlevels`` deep by an ellipsis; subclasses get their type's name. Every value
    takes at least one character, so the check gives up after ``maxlen`` of them: a large
    argument costs no more to check than the text ``saferepr`` would write.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    counted = 1
    while stack:
        item, level = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is str:
            if len(item) >= maxlen or "'" in item or "\\" in item or not item.isprintable():
                return False
            continue
        if kind not in _CONTAINERS or (maxlevels and level >= maxlevels):
            return False
        counted += 2 * len(item) if kind is dict else len(item)
        if counted > maxlen:
            return False
        if kind is dict:
            for key, entry in item.items():
                stack.append((key, level + 1))
                stack.append((entry, level + 1))
        else:
            stack.extend((entry, level + 1) for entry in item)
    return True


def fast_saferepr(value: Any, maxlen: int, maxlevels: int) -> str | None:
    """``saferepr(value, maxlen, maxlevels)`` by the builtin ``repr``, or ``None`` if it differs.

    It differs for other types, strings with quotes, backslashes or unprintable characters,
    containers nested ``maxlevels`` deep, and text of ``maxlen`` characters or more
    (which ``saferepr`` truncates).
    """
    if not _same_as_saferepr(value, maxlen, maxlevels):
        return None
    text = repr(value)
    # saferepr truncates a value as long as what is left of maxlen: hence <, not <=.
    return text if len(text) < maxlen else None
