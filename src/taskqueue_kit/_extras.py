"""Optional dependencies: imported lazily, with an error that names the extra to install.

Each extra of ``pyproject.toml`` is listed here with the top-level modules it installs, so
one place says what ``pip install 'taskqueue-kit[redis]'`` must bring. Every path that needs
one (a setting, an adapter import, ``taskqueue-kit doctor``) raises the same one-line
``MissingExtra`` before Celery or kombu fail on a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Literal

from taskqueue_kit._exceptions import MissingExtra

__all__ = ["EXTRAS", "Extra", "missing_modules", "optional_imports", "require_for_url"]


@dataclass(frozen=True)
class Extra:
    """One extra of ``pyproject.toml``.

    Attributes:
        name: The extra, as in ``taskqueue-kit[name]``.
        feature: What needs it, as the subject of the error message.
        modules: The top-level modules it installs. The first is the one whose presence
            means the extra was meant to be installed; the others missing then means it is
            incomplete.
        adapter: The kit's module it makes importable, if any.
    """

    name: str
    feature: str
    modules: tuple[str, ...]
    adapter: str | None = None


_FASTAPI = ("fastapi", "sse_starlette", "uvicorn")
_FLASK = ("flask",)

EXTRAS: Final = (
    # The examples extra includes the two web extras.
    Extra(
        "examples",
        "taskqueue-kit demo",
        ("textblob", "PIL", "aiosmtpd", "rich", "fastapi_offline", *_FASTAPI, *_FLASK),
    ),
    Extra("fastapi", "taskqueue_kit.web.fastapi", _FASTAPI, adapter="taskqueue_kit.web.fastapi"),
    Extra("flask", "taskqueue_kit.web.flask", _FLASK, adapter="taskqueue_kit.web.flask"),
    # kombu's Redis transport imports packaging at its top (since kombu 5.5.4); kombu
    # itself depends on packaging up to 5.6 only, and from 5.7 through kombu[redis], which
    # pins packaging and caps redis-py. Celery's Redis backend imports that transport.
    Extra("redis", "a Redis broker or result backend", ("redis", "packaging")),
)
_BY_NAME: Final = {extra.name: extra for extra in EXTRAS}

# The module kombu or Celery loads for a URL, and the extra that module needs.
_LOADERS: Final = {
    "kombu.transport.redis": ("redis", "the Redis broker"),
    "celery.backends.redis": ("redis", "the Redis result backend"),
}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package, or a module without a spec
        return False


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that are not installed, in the order it lists them."""
    return [module for module in _BY_NAME[extra].modules if not _importable(module)]


@contextmanager
def optional_imports(extra: str, feature: str) -> Iterator[None]:
    """Turn a module missing while importing the block into :class:`MissingExtra`.

    Wrap a module's optional imports in it (httpx's way): the import of the kit's module
    then fails with one line naming ``extra``. An import error other than a missing module
    (an incompatible version) passes through as it is.

    Raises:
        MissingExtra: a module imported in the block is not installed.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        # Name the extra's own package (fastapi) rather than the first import that failed
        # (anyio, which fastapi brings); a dependency of it is named when it alone is missing.
        listed = missing_modules(extra)
        module = listed[0] if listed else (exc.name or "").partition(".")[0] or None
        raise MissingExtra(feature, extra, module=module) from exc


def require_for_url(
    url: str | None, role: Literal["broker", "result backend"], *, field: str
) -> None:
    """Check that the extra the broker or result backend URL needs is installed.

    Asks kombu's and Celery's own alias tables which module serves the URL's scheme, so
    ``rediss://``, ``sentinel://`` and ``redis+socket://`` count as Redis too.

    Raises:
        MissingExtra: naming the extra, with ``field`` set to the setting.
    """
    if not url:
        return
    # Both read "transport+url://" as the transport named before the plus sign.
    name = url.partition("://")[0].partition("+")[0]
    aliases: Mapping[str, str]
    if role == "broker":
        from kombu.transport import TRANSPORT_ALIASES as aliases
    else:
        from celery.app.backends import BACKEND_ALIASES as aliases
    target = aliases.get(name, "").partition(":")[0]
    if target not in _LOADERS:
        return
    extra, feature = _LOADERS[target]
    missing = missing_modules(extra)
    if missing:
        raise MissingExtra(feature, extra, module=missing[0], field=field)
