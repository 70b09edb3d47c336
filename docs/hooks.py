"""MkDocs hook: fill the generated parts of pages in, at build time.

A page asks for generated content with a marker comment on a line of its own:

* ``<!-- taskqueue-kit: settings-table -->``: every ``TaskQueueSettings`` field.
* ``<!-- taskqueue-kit: profiles-table -->``: what ``celery_config`` sets in each profile.
* ``<!-- taskqueue-kit: cli-reference -->``: every ``taskqueue-kit`` command and option.
* ``<!-- taskqueue-kit: bench-results -->``: ``bench/results.md`` through the snippets
  extension once the benchmark has written it, a note saying how to produce it until then.

An unknown marker fails the build, so a typo cannot leave a hole in a page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from gen_cli_reference import render_cli_reference
from gen_config_reference import render_profiles_table, render_settings_table
from mkdocs.exceptions import PluginError

from taskqueue_kit import TaskQueueSettings, celery_config
from taskqueue_kit._cli import main as cli

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

MARKER = re.compile(r"^<!-- taskqueue-kit: (?P<name>[a-z-]+) -->$", re.MULTILINE)
BENCH_RESULTS = "bench/results.md"

_NO_RESULTS = """\
!!! note "No results yet"
    This build ran before the benchmark did. `nox -s bench` writes `{path}`, and the next
    build of these pages shows it here.
"""


def _project_root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def _bench_results(config: MkDocsConfig) -> str:
    if (_project_root(config) / BENCH_RESULTS).is_file():
        return f'--8<-- "{BENCH_RESULTS}"'
    return _NO_RESULTS.format(path=BENCH_RESULTS)


def _profiles_table(config: MkDocsConfig) -> str:
    profiles = get_args(TaskQueueSettings.model_fields["profile"].annotation)
    return render_profiles_table(TaskQueueSettings, celery_config, profiles)


RENDERERS: dict[str, Callable[[MkDocsConfig], str]] = {
    "settings-table": lambda config: render_settings_table(TaskQueueSettings),
    "profiles-table": _profiles_table,
    "cli-reference": lambda config: render_cli_reference(cli, "taskqueue-kit"),
    "bench-results": _bench_results,
}


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Resolve snippet paths from the project root, wherever ``mkdocs`` is started from."""
    snippets = config.mdx_configs.setdefault("pymdownx.snippets", {})
    snippets["base_path"] = [str(_project_root(config))]
    return config


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace each marker line of the page with its generated Markdown."""

    def replace(match: re.Match[str]) -> str:
        render = RENDERERS.get(match["name"])
        if render is None:
            raise PluginError(
                f"{page.file.src_path}: unknown marker {match.group(0)!r}; "
                f"known: {', '.join(RENDERERS)}"
            )
        try:
            return render(config)
        except ValueError as exc:
            raise PluginError(f"{page.file.src_path}: {exc}") from exc

    return MARKER.sub(replace, markdown)
