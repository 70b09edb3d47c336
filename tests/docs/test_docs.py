"""The documentation: generated references complete, every include present, the site building.

Also what else users read: the built site and the built wheel, in their own words.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings

import taskqueue_kit
from taskqueue_kit import TaskQueueSettings, celery_config
from taskqueue_kit._cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
SNIPPET = re.compile(r"""^\s*;*-+8<-+[ \t]+(["'])(?P<path>.+?)\1\s*$""")
BLOCK_SNIPPET = re.compile(r"^\s*-+8<-+\s*$")
FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)^(?P=indent)```$",
    re.MULTILINE | re.DOTALL,
)


def load_docs_module(name: str) -> ModuleType:
    """Import a module from docs/ by path (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


config_reference = load_docs_module("gen_config_reference")
cli_reference = load_docs_module("gen_cli_reference")


def snippet_paths(page: Path) -> list[str]:
    """The files a page includes with ``--8<-- "path"`` (sections and line ranges dropped)."""
    paths = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        assert not BLOCK_SNIPPET.match(line), f"{page}:{number}: use one-line snippet includes"
        match = SNIPPET.match(line)
        if match and not line.lstrip().startswith(";"):
            paths.append(re.sub(r"(:-?\d*)+$|:[A-Za-z][-\w]*$", "", match["path"]))
    return paths


# -- configuration reference ------------------------------------------------------------


def test_settings_reference_has_one_documented_row_per_field() -> None:
    """Every settings field appears, in order, with its type, env names and a description."""
    rows = config_reference.setting_rows(TaskQueueSettings)
    assert [row.name for row in rows] == list(TaskQueueSettings.model_fields)
    table = config_reference.render_settings_table(TaskQueueSettings)
    for row in rows:
        assert row.description.strip()
        assert row.env
        assert f"| `{row.name}` |" in table
        for name in row.env:
            assert f"`{name}`" in table


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("profile", "testing", "testing"),
        ("broker_url", "redis://127.0.0.1:6379/3", "redis://127.0.0.1:6379/3"),
        ("result_backend", "redis://127.0.0.1:6379/4", "redis://127.0.0.1:6379/4"),
        ("home", "/srv/queue-data", Path("/srv/queue-data")),
        ("prefetch_multiplier", "4", 4),
    ],
)
def test_each_listed_environment_variable_sets_its_field(
    field: str, value: str, expected: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The environment column says what pydantic-settings really reads, CELERY_* included."""
    monkeypatch.chdir(tmp_path)  # no .env file
    for name in list(os.environ):
        if name.startswith(("TASKQUEUE_", "CELERY_")):
            monkeypatch.delenv(name)
    (row,) = [row for row in config_reference.setting_rows(TaskQueueSettings) if row.name == field]
    fallbacks = {"profile": "CELERY_CONFIG", "broker_url": "CELERY_BROKER_URL",
                 "result_backend": "CELERY_RESULT_BACKEND"}  # fmt: skip
    assert row.env[0] == f"TASKQUEUE_{field.upper()}"
    assert row.env[1:] == ((fallbacks[field],) if field in fallbacks else ())
    for name in row.env:
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert getattr(TaskQueueSettings(), field) == expected, name


def test_a_field_without_a_description_fails_the_reference() -> None:
    """An undocumented setting stops the build, naming the field, instead of a blank row."""

    class Partial(BaseSettings):
        """Two fields, one documented.

        Attributes:
            documented: Documented over
                two lines.
        """

        documented: int = 1
        undocumented: int = 2

    assert config_reference.attribute_docs(Partial) == {"documented": "Documented over two lines."}
    with pytest.raises(ValueError, match=r"Partial\.undocumented has no description"):
        config_reference.setting_rows(Partial)

    class Described(Partial):
        """No Attributes section: the field's own description serves."""

        documented: int = Field(default=1, description="From the field.")
        undocumented: int = Field(default=2, description="Also from the field.")

    rows = config_reference.setting_rows(Described)
    assert [row.description for row in rows] == ["From the field.", "Also from the field."]


def test_profiles_table_shows_what_production_changes_and_ignores_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Late acks differ by profile; variables of the building machine do not leak in."""
    monkeypatch.setenv("TASKQUEUE_PREFETCH_MULTIPLIER", "9")
    profiles = ("development", "testing", "production")
    tables = config_reference.render_profiles_table(TaskQueueSettings, celery_config, profiles)
    differing, alike = tables.split("\n\n")
    assert "| `task_acks_late` | `False` | `False` | `True` |" in differing
    assert "| `worker_prefetch_multiplier` | `1` |" in alike
    assert '| `accept_content` | `["json"]` |' in alike
    assert config_reference.EXAMPLE_BROKER in alike


# -- command line and API references ------------------------------------------------------


def test_cli_reference_covers_every_command_and_option() -> None:
    """Each taskqueue-kit command gets a section listing every one of its options."""
    text = cli_reference.render_cli_reference(cli, "taskqueue-kit")
    assert cli.commands
    for name, command in cli.commands.items():
        assert f"## `taskqueue-kit {name}`" in text
        for param in command.params:
            if getattr(param, "hidden", False) or not param.opts[0].startswith("-"):
                continue
            assert any(opt in text for opt in param.opts), (name, param.opts)


def test_every_public_name_is_in_the_api_reference() -> None:
    """api.md renders exactly the names in ``taskqueue_kit.__all__``."""
    page = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    rendered = re.findall(r"^::: taskqueue_kit\.(\w+)$", page, flags=re.MULTILINE)
    assert len(rendered) == len(set(rendered))
    assert set(rendered) == set(taskqueue_kit.__all__) - {"__version__"}


# -- pages and their includes ----------------------------------------------------------------


def test_every_snippet_include_names_an_existing_file() -> None:
    """Every ``--8<--`` path in docs/ resolves from the project root, as mkdocs.yml says."""
    included = {path for page in PAGES for path in snippet_paths(page)}
    assert "docs/snippets/myservice/tasks.py" in included  # the scan finds includes at all
    missing = sorted(path for path in included if not (ROOT / path).is_file())
    assert missing == []


def test_every_page_is_in_the_navigation() -> None:
    """No page is left out of the nav, where no reader would find it."""
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s+([\w/.-]+\.md)\s*$", nav, flags=re.MULTILINE))
    assert {str(page.relative_to(DOCS)) for page in PAGES} == listed


def test_python_blocks_in_pages_compile() -> None:
    """Every inline ```python block is valid Python (included files are tested as programs)."""
    compiled = 0
    for page in PAGES:
        for block in FENCE.finditer(page.read_text(encoding="utf-8")):
            body = textwrap.dedent(block["body"])
            if block["lang"] == "python" and "--8<--" not in body:
                compile(body, f"{page}: python block", "exec")
                compiled += 1
    assert compiled >= 10  # the scan finds the blocks, in tabs too


def test_getting_started_commands_are_the_readmes() -> None:
    """The two commands of Getting started are the README's, word for word."""
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [m["body"].strip() for m in FENCE.finditer(page) if m["lang"] == "bash"][:2]
    assert len(commands) == 2
    for command in commands:
        assert command in readme


def test_bench_results_are_included_once_the_benchmark_wrote_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The performance page includes bench/results.md when present, and a note until then."""
    pytest.importorskip("mkdocs")
    monkeypatch.syspath_prepend(str(DOCS))
    hooks = load_docs_module("hooks")
    config: Any = SimpleNamespace(config_file_path=str(tmp_path / "mkdocs.yml"))
    assert "No results yet" in hooks.RENDERERS["bench-results"](config)
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "results.md").write_text("| x |\n", encoding="utf-8")
    assert hooks.RENDERERS["bench-results"](config) == '--8<-- "bench/results.md"'


def test_sphinx_roles_in_docstrings_become_cross_references() -> None:
    """``:class:`X``` resolves from where the docstring sits; ``~`` shows the last part."""
    griffe = pytest.importorskip("griffe")
    roles = load_docs_module("griffe_roles")
    package = griffe.load("taskqueue_kit", search_paths=[str(ROOT / "src")])
    exceptions = package["_exceptions"]
    text = roles.replace_roles("see :class:`TaskQueueKitError` and :func:`~a.b.run`", exceptions)
    assert text == (
        'see <autoref identifier="taskqueue_kit._exceptions.TaskQueueKitError" optional>'
        "<code>TaskQueueKitError</code></autoref> and "
        '<autoref identifier="a.b.run" optional><code>run</code></autoref>'
    )
    # A name imported into a module resolves to where it is defined.
    assert (
        roles.resolve(package["_taskinfo"], "Progress.of") == "taskqueue_kit._progress.Progress.of"
    )


# -- the documented code runs ------------------------------------------------------------------


@pytest.mark.slow
def test_the_documented_service_passes_its_own_tests() -> None:
    """The getting-started service and its tests, shown in the docs, run and pass."""
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=DOCS / "snippets",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0, process.stdout[-4000:] + process.stderr[-4000:]
    assert re.search(r"\b5 passed\b", process.stdout), process.stdout[-2000:]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built once with ``mkdocs build --strict``, for the tests that read it."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs is not None
    built = tmp_path_factory.mktemp("docs") / "site"
    process = subprocess.run(
        [mkdocs, "build", "--strict", "--quiet", "--site-dir", str(built)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert process.returncode == 0, process.stderr[-6000:]
    return built


@pytest.mark.slow
def test_site_builds_with_strict(site: Path) -> None:
    """``mkdocs build --strict`` succeeds: no broken link, include, anchor or docstring."""
    assert (site / "reference" / "configuration" / "index.html").is_file()


# -- the team's own words stay out of what users read ---------------------------------------

# "The seed" is the team's name for the lecture's code the project started from; users never
# saw it, so pages and the package say what it is instead.
INTERNAL = re.compile(r"\bseed\b", re.IGNORECASE)
# A random seed is the user's word: the training example's ``--seed`` and its parameter.
RANDOM_SEED = re.compile(r"--seed\b|(?<=\.)seed\b|\bseed(?=\s*=|\))|\bseed: (?:int\b|Seed of the)")
TAG = re.compile(r"<[^>]*>")
ATTRIBUTE = re.compile(r"""\s[\w:-]+=(?:"([^"]*)"|'([^']*)')""")


def internal_words(name: str, lines: Iterable[str], *, markup: bool = False) -> list[str]:
    """``name:line: text`` for each line where the team's word appears.

    With ``markup``, a line is read as a reader sees it (tags dropped, entities decoded) and
    its attribute values (links, anchors, titles) on their own.
    """
    found = []
    for number, line in enumerate(lines, start=1):
        texts = [line]
        if markup:
            values = (html.unescape(a or b) for a, b in ATTRIBUTE.findall(line))
            texts = [html.unescape(TAG.sub("", line)), " ".join(values)]
        for text in texts:
            allowed = [match.span() for match in RANDOM_SEED.finditer(text)]
            for match in INTERNAL.finditer(text):
                if not any(start <= match.start() < end for start, end in allowed):
                    where = text[max(0, match.start() - 60) : match.end() + 60].strip()
                    found.append(f"{name}:{number}: ...{where}...")
                    break
    return found


def test_internal_words_finds_the_word_and_spares_a_random_seed() -> None:
    """The scan flags "the seed" in text, code and links, and lets ``--seed 0`` be."""
    page = [
        "<p>The <em>seed</em>&#39;s service</p>",
        '<a href="../migrating/#from-the-seed">x</a>',
        "<li>recipes, migrating from the seed, references</li>",
        '<span class="n">random</span><span class="o">.</span><span class="n">seed</span>',
        '<code>--seed 0</code>, <span class="n">seed</span><span class="p">:</span> int',
        "split(examples, test_fraction, seed)",
    ]
    hits = internal_words("page", page, markup=True)
    assert [hit.split(":")[1] for hit in hits] == ["1", "2", "3"]
    assert "The seed's service" in hits[0]
    assert internal_words("tasks.py", ['"""As the seed did."""', "seed: int = 0"]) == [
        'tasks.py:1: ..."""As the seed did."""...',
    ]


def test_no_internal_word_in_the_readme() -> None:
    """README.md, which the site does not include, does not say "seed" either."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert internal_words("README.md", readme.splitlines()) == []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built once from the checkout, as ``pip wheel --no-deps`` builds it."""
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if built.returncode != 0:
        from tests.test_packaging import _index_unreachable  # pip fetches hatchling

        reason = _index_unreachable()
        if reason is not None and not os.environ.get("CI"):
            pytest.skip(f"no index to build the wheel with: {reason}")
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("taskqueue_kit-*.whl")
    return path


@pytest.mark.slow
def test_no_internal_word_in_the_site_or_the_wheel(site: Path, wheel: Path) -> None:
    """No page of the built site and no file of the built wheel says "seed" (a random one aside)."""
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    found = []
    for page in pages:
        lines = page.read_text(encoding="utf-8").splitlines()
        found += internal_words(str(page.relative_to(site)), lines, markup=True)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert any(name.endswith("demo/serve.py") for name in names)
        for name in names:
            try:
                text = archive.read(name).decode("utf-8")
            except UnicodeDecodeError:  # not text: nothing a person reads
                continue
            found += internal_words(f"{wheel.name}/{name}", text.splitlines())
    assert not found, "'seed' in user-facing text:\n" + "\n".join(found)


@pytest.mark.slow
def test_the_wheel_ships_the_license(wheel: Path) -> None:
    """The MIT text of LICENSE is in the wheel, and its metadata names it."""
    with zipfile.ZipFile(wheel) as archive:
        info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"  # name-version
        metadata = archive.read(f"{info}/METADATA").decode("utf-8")
        shipped = archive.read(f"{info}/licenses/LICENSE").decode("utf-8")
    assert shipped == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert shipped.startswith("MIT License\n\nCopyright (c) 2026 taskqueue-kit developers\n")
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
