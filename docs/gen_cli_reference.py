"""Render the command line reference from the click commands themselves, at build time.

Each subcommand gets a heading, its help text and a table of its options (name, value,
default, help), so a new option shows up in the docs the day it is added. A command or an
option without help text fails the build instead of leaving a blank.
"""

from __future__ import annotations

import inspect

import click

__all__ = ["option_row", "render_cli_reference"]


def _value_name(option: click.Option) -> str:
    if option.is_flag or option.count:
        return ""
    if option.metavar:
        return option.metavar
    if isinstance(option.type, click.Choice):
        return "|".join(str(choice) for choice in option.type.choices)
    name = option.type.name.upper()
    if isinstance(option.type, click.IntRange | click.FloatRange):
        name = "INTEGER" if isinstance(option.type, click.IntRange) else "FLOAT"
        low, high = option.type.min, option.type.max
        if low is not None and high is not None:
            return f"{name} {low}-{high}"
        return f"{name} ≥ {low}" if low is not None else f"{name} ≤ {high}"
    return name


def option_row(command: str, option: click.Option) -> tuple[str, str, str, str]:
    """``(names, value, default, help)`` of one option, as the reference shows them.

    Raises:
        ValueError: the option has no help text.
    """
    if not option.help:
        raise ValueError(f"option {'/'.join(option.opts)} of {command!r} has no help text")
    names = ", ".join(sorted(option.opts, key=len, reverse=True) + option.secondary_opts)
    default = option.default
    # Only plain values are defaults worth showing; click marks "no default" with a sentinel.
    plain = isinstance(default, str | int | float) and not isinstance(default, bool)
    shown = str(default) if plain else ""
    return names, _value_name(option), shown, " ".join(option.help.split()).replace("|", r"\|")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def render_cli_reference(group: click.Group, prog: str) -> str:
    """One section per subcommand of ``group``: usage, help and an options table.

    Raises:
        ValueError: a command or one of its options has no help text.
    """
    sections = []
    for name in sorted(group.commands):
        command = group.commands[name]
        if command.hidden:
            continue
        if not command.help:
            raise ValueError(f"command {prog} {name} has no help text")
        lines = [f"## `{prog} {name}`", "", inspect.cleandoc(command.help), ""]
        options = [
            param
            for param in command.params
            if isinstance(param, click.Option) and not param.hidden
        ]
        if options:
            lines += ["| option | value | default | meaning |", "| --- | --- | --- | --- |"]
            for option in options:
                names, value, default, text = option_row(f"{prog} {name}", option)
                lines.append(f"| {_code(names)} | {_code(value)} | {_code(default)} | {text} |")
            lines.append("")
        sections.append("\n".join(lines))
    return "\n".join(sections)
