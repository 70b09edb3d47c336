"""Passwords out of what the kit prints: ``doctor`` lines, health reports, error texts.

Broker and backend URLs carry their password (``amqp://guest:PASSWORD@host//``), and the
exceptions of their clients often repeat the URL or the connection's keyword arguments.
:func:`mask` blanks each password it finds in a text, so a line built from a URL or an
exception's message can be shown to whoever reads a log or calls the health route.
"""

from __future__ import annotations

import re

__all__ = ["mask"]

# The password of each URL in a text: "scheme://user:PASSWORD@", or a bare "user:PASSWORD@".
# Greedy up to the last "@" before the host, as URL parsers read it: a password may hold
# "@" or ":" itself ("amqp://guest:p@ss@host//" connects with the password "p@ss").
_USERINFO = re.compile(r"((?:^|://|[;'\"\s])[^:/@;'\"\s]*:)[^/;'\"\s]+@")
# A password given by name: in a query string (redis-py reads "redis://host/0?password=x"),
# or in a repr of keyword arguments ("'password': 'x'", "password=x").
_NAMED = re.compile(
    r"""(\b(?:password|passwd|pwd)['"]?\s*[=:]\s*['"]?)[^'"\s&;,)}]+""", re.IGNORECASE
)


def mask(text: str) -> str:
    """``text`` with the password of each URL in it, and each named password, as ``***``.

    ``amqp://guest:wrong@127.0.0.1:5672//`` becomes ``amqp://guest:***@127.0.0.1:5672//``
    and ``redis://h/0?password=x`` becomes ``redis://h/0?password=***``. Meant for exception
    messages too, which often repeat the URL they were given.
    """
    return _NAMED.sub(r"\1***", _USERINFO.sub(r"\1***@", text))
