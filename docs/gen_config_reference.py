"""Render the configuration reference from the settings model itself, at build time.

The tables come from ``TaskQueueSettings.model_fields`` (name, type, constraints, default,
environment variables) and the class docstring's ``Attributes:`` section, and from
``celery_config`` for each profile, so the reference cannot drift from the code. A field
with no description fails the build instead of leaving a blank row.
"""

from __future__ import annotations

import inspect
import json
import re
import types
from dataclasses import dataclass
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic.aliases import AliasChoices, AliasPath
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

__all__ = [
    "EXAMPLE_BACKEND",
    "EXAMPLE_BROKER",
    "SettingRow",
    "attribute_docs",
    "env_names",
    "render_profiles_table",
    "render_settings_table",
    "setting_rows",
    "type_name",
]

EXAMPLE_BROKER = "amqp://guest:guest@rabbitmq:5672//"
EXAMPLE_BACKEND = "redis://redis:6379/0"

_SECTION = re.compile(r"^(?P<indent>\s*)(?P<title>[A-Z][A-Za-z ]*):\s*$")
_ENTRY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\s*\([^)]*\))?:\s*(?P<text>.*)$")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
)


@dataclass(frozen=True)
class SettingRow:
    """One setting as the reference shows it.

    Attributes:
        name: The field name, also the keyword argument.
        type: The type, written the way it is annotated, with its bounds.
        default: The default value, as Python.
        env: Environment variables that set it, in the order they are tried.
        description: What it does, from the docstring or the field's description.
    """

    name: str
    type: str
    default: str
    env: tuple[str, ...]
    description: str


def attribute_docs(cls: type) -> dict[str, str]:
    """The entries of the class docstring's Google-style ``Attributes:`` section, one line each."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    entries: dict[str, list[str]] = {}
    section_indent: int | None = None
    entry_indent: int | None = None
    current: list[str] | None = None
    for line in lines:
        indent = len(line) - len(line.lstrip())
        heading = _SECTION.match(line)
        if heading and (section_indent is None or indent <= section_indent):
            inside = heading["title"] == "Attributes"
            section_indent = indent if inside else None
            entry_indent, current = None, None
            continue
        if section_indent is None or not line.strip():
            continue
        if indent <= section_indent:  # back to prose: the section is over
            section_indent, current = None, None
            continue
        if entry_indent is None:
            entry_indent = indent
        entry = _ENTRY.match(line.strip())
        if indent == entry_indent and entry:
            current = entries.setdefault(entry["name"], [])
            current.append(entry["text"])
        elif indent > entry_indent and current is not None:
            current.append(line.strip())
    return {name: " ".join(part for part in parts if part) for name, parts in entries.items()}


def env_names(model: type[BaseSettings], name: str, field: FieldInfo) -> tuple[str, ...]:
    """Environment variables that set ``name``, as pydantic-settings looks them up.

    An explicit alias replaces the prefixed name; ``AliasChoices`` are tried in order.
    """
    alias = field.validation_alias or field.alias
    if alias is None:
        prefix = str(model.model_config.get("env_prefix", ""))
        return (f"{prefix}{name}".upper(),)
    if isinstance(alias, str):
        return (alias.upper(),)
    if isinstance(alias, AliasChoices):
        names: list[str] = []
        for choice in alias.choices:
            if isinstance(choice, AliasPath):
                raise ValueError(f"{name}: an AliasPath alias has no environment variable")
            names.append(choice.upper())
        return tuple(names)
    raise ValueError(f"{name}: cannot tell the environment variable of alias {alias!r}")


def type_name(annotation: Any) -> str:
    """A type as a reader writes it: ``str | None``, ``tuple[str, ...]``, ``"a" | "b"``."""
    if annotation is type(None):
        return "None"
    if annotation is Ellipsis:
        return "..."
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_name(args[0])
    if origin is Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if origin is not None:
        inner = ", ".join(type_name(arg) for arg in args)
        return f"{getattr(origin, '__name__', repr(origin))}[{inner}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return repr(annotation)


def _bounds(field: FieldInfo) -> list[str]:
    found = []
    for item in field.metadata:
        for kind, attribute, sign in _BOUNDS:
            if isinstance(item, kind):
                found.append(f"{sign} {getattr(item, attribute)}")
    return found


def _value(value: Any) -> str:
    """A default or setting value, as Python a reader could type."""
    if isinstance(value, PurePath):
        return json.dumps(str(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        parts = [_value(item) for item in value]
        if isinstance(value, tuple):
            return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"
        return f"[{', '.join(parts)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_value(k)}: {_value(v)}" for k, v in value.items()) + "}"
    if callable(value) and hasattr(value, "__name__"):
        return str(value.__name__)
    if type(value).__name__ == "Queue" and hasattr(value, "exchange"):
        exchange = f"Exchange({_value(value.exchange.name)}, {_value(value.exchange.type)})"
        return f"Queue({_value(value.name)}, {exchange}, routing_key={_value(value.routing_key)})"
    return repr(value)


def _cell(text: str) -> str:
    """Escape the pipes outside code spans, so a cell stays one cell."""
    pieces, last = [], 0
    for span in _CODE_SPAN.finditer(text):
        pieces.append(text[last : span.start()].replace("|", r"\|"))
        pieces.append(span.group(0))
        last = span.end()
    pieces.append(text[last:].replace("|", r"\|"))
    return "".join(pieces)


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


def setting_rows(model: type[BaseSettings]) -> list[SettingRow]:
    """One row per field of ``model``, in declaration order.

    Raises:
        ValueError: a field has neither a docstring entry nor a ``description``.
    """
    documented = attribute_docs(model)
    rows = []
    for name, field in model.model_fields.items():
        description = field.description or documented.get(name, "")
        if not description:
            raise ValueError(
                f"{model.__name__}.{name} has no description: add it to the class "
                "docstring's Attributes section or to Field(description=...)"
            )
        type_text = type_name(field.annotation)
        bounds = _bounds(field)
        if bounds:
            type_text = f"{type_text}, {', '.join(bounds)}"
        default = field.get_default(call_default_factory=True)
        rows.append(
            SettingRow(
                name=name,
                type=type_text,
                default=_value(default),
                env=env_names(model, name, field),
                description=description,
            )
        )
    return rows


def render_settings_table(model: type[BaseSettings]) -> str:
    """The settings reference as a Markdown table."""
    lines = [
        "| setting | type | default | environment | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in setting_rows(model):
        env = "<br>".join(_code(name) for name in row.env)
        lines.append(
            f"| {_code(row.name)} | {_code(row.type)} | {_code(row.default)} | {env} "
            f"| {_cell(row.description)} |"
        )
    return "\n".join(lines) + "\n"


def _isolated(model: type[BaseSettings]) -> type[BaseSettings]:
    """``model`` reading keyword arguments only, so the build machine's env can't leak in."""

    class Isolated(model):  # type: ignore[valid-type, misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    return Isolated


def render_profiles_table(model: type[BaseSettings], config: Any, profiles: tuple[str, ...]) -> str:
    """What ``config(settings)`` returns for each profile, as two Markdown tables.

    The first lists what differs between the profiles, the second what every profile
    sets alike. Every profile is given the same example broker and backend URLs
    (``EXAMPLE_BROKER``, ``EXAMPLE_BACKEND``), so only the profile differs.
    """
    isolated = _isolated(model)
    mappings = {
        profile: config(
            isolated(profile=profile, broker_url=EXAMPLE_BROKER, result_backend=EXAMPLE_BACKEND)
        )
        for profile in profiles
    }
    keys = list(dict.fromkeys(key for mapping in mappings.values() for key in mapping))
    differing = [
        "| Celery setting | " + " | ".join(profiles) + " |",
        "| --- | " + " | ".join("---" for _ in profiles) + " |",
    ]
    alike = ["| Celery setting | every profile |", "| --- | --- |"]
    for key in keys:
        cells = [
            _code(_value(mappings[profile][key])) if key in mappings[profile] else "(not set)"
            for profile in profiles
        ]
        if len(set(cells)) > 1:
            differing.append(f"| {_code(key)} | " + " | ".join(cells) + " |")
        else:
            alike.append(f"| {_code(key)} | {cells[0]} |")
    return "\n".join(differing) + "\n\n" + "\n".join(alike) + "\n"
