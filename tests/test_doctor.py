"""The doctor command: one line per problem, saying what is wrong and what to do."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery
from click.testing import CliRunner, Result

from taskqueue_kit import _cli
from taskqueue_kit._cli import main
from taskqueue_kit._doctor import mask
from taskqueue_kit._exceptions import MissingExtra
from taskqueue_kit.testing import run_worker, unique_name

_ENV_NAMES = (
    "TASKQUEUE_BROKER_URL",
    "TASKQUEUE_RESULT_BACKEND",
    "TASKQUEUE_PROFILE",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_CONFIG",
)
_PASSWORD = "s3cret"  # in every URL with a password below; must never be printed
_RABBITMQ = "start it with `rabbitmq-server -detached`"
_REDIS = "start it with `redis-server --daemonize yes`"
_HOME_FIX = "point TASKQUEUE_HOME at a writable directory"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file; --app imports from here
    monkeypatch.syspath_prepend(str(tmp_path))  # and sys.path is restored afterwards
    # In this process a failure must end the invocation, not the test run.
    monkeypatch.setattr(_cli, "_exit_at_once", sys.exit)


def _doctor(*args: str, home: Path) -> Result:
    """Run ``taskqueue-kit doctor`` in this process on the data directory ``home``."""
    env: dict[str, str | None] = dict.fromkeys(_ENV_NAMES)
    env["TASKQUEUE_HOME"] = str(home)
    return CliRunner().invoke(main, ["doctor", "--timeout", "2", *args], env=env)


def _failures(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("[FAIL]")]


def _read_only_dir(tmp_path: Path) -> Path:
    """A directory this process cannot create files in, though it exists.

    For a normal user a directory with mode 0o500. Root writes through permission bits
    (and ``os.access`` says yes), so as root ``/sys``, where even root cannot create a
    file; the kit's check is a real write probe for the same reason.
    """
    if os.geteuid() != 0:
        path = tmp_path / "read-only"
        path.mkdir()
        path.chmod(0o500)
        return path
    path = Path("/sys")
    try:
        (path / "taskqueue-probe").touch()
    except OSError:
        return path
    (path / "taskqueue-probe").unlink()
    pytest.skip("/sys is writable here: no directory root cannot write to")


@dataclass(frozen=True)
class Case:
    """One failure: the doctor's arguments, its home directory and the line it must print."""

    args: tuple[str, ...]
    line: str  # ``{home}`` stands for the home directory
    home: Callable[[Path], Path] = lambda tmp_path: tmp_path
    hide: tuple[str, ...] = ()  # modules made to look uninstalled
    secret: str = _PASSWORD


def _a_file(tmp_path: Path) -> Path:
    path = tmp_path / "not-a-directory"
    path.write_text("")
    return path


CASES = {
    "unknown transport": Case(
        ("--broker", f"foo://user:{_PASSWORD}@host//"),
        "[FAIL] broker: unknown broker scheme foo:// in foo://user:***@host//: use amqp:// "
        "or redis://, or leave out --broker for the embedded one",
    ),
    "unknown result backend": Case(
        ("--backend", "foo://host"),
        "[FAIL] result backend: unknown result backend scheme foo:// in foo://host: use "
        "redis:// or rpc://, or leave out --backend for the embedded one",
    ),
    "read-only home": Case(
        (),
        f"[FAIL] broker: the data directory {{home}} is read-only: make it writable or {_HOME_FIX}",
        home=_read_only_dir,
    ),
    "home is a file": Case(
        (),
        f"[FAIL] broker: the data directory {{home}} is a file: move it away or {_HOME_FIX}",
        home=_a_file,
    ),
    "home cannot be created": Case(
        (),
        "[FAIL] broker: the data directory {home} does not exist and cannot be created: "
        f"create it or {_HOME_FIX}",
        # Not even root can make a directory in /proc.
        home=lambda tmp_path: Path("/proc/taskqueue-home"),
    ),
    "rabbitmq not running": Case(
        ("--broker", f"amqp://guest:{_PASSWORD}@127.0.0.1:1//"),
        "[FAIL] broker: nothing listens on 127.0.0.1:1: is RabbitMQ running? "
        f"{_RABBITMQ} or point --broker elsewhere",
    ),
    "redis not running": Case(
        ("--broker", f"redis://:{_PASSWORD}@127.0.0.1:1/0"),
        f"[FAIL] broker: nothing listens on 127.0.0.1:1: is Redis running? {_REDIS} "
        "or point --broker elsewhere",
    ),
    "redis backend not running": Case(
        ("--backend", f"redis://:{_PASSWORD}@127.0.0.1:1/0"),
        f"[FAIL] result backend: nothing listens on 127.0.0.1:1: is Redis running? {_REDIS} "
        "or point --backend elsewhere",
    ),
    "wrong credentials": Case(
        ("--broker", "amqp://guest:wrong@127.0.0.1:5672//"),
        "[FAIL] broker: RabbitMQ refused the user and password of "
        "amqp://guest:***@127.0.0.1:5672//: fix them in --broker",
        secret="wrong",
    ),
    "wrong password on the local RabbitMQ": Case(
        ("--broker", "amqp://guest:wrongpass@127.0.0.1:5672//"),
        "[FAIL] broker: RabbitMQ refused the user and password of "
        "amqp://guest:***@127.0.0.1:5672//: fix them in --broker",
        secret="wrongpass",
    ),
    "password holding an @": Case(  # the URL parsers' password is all of "s3cret@Xq7"
        ("--broker", f"amqp://guest:{_PASSWORD}@Xq7@127.0.0.1:5672//"),
        "[FAIL] broker: RabbitMQ refused the user and password of "
        "amqp://guest:***@127.0.0.1:5672//: fix them in --broker",
        secret="Xq7",
    ),
    "wrong password on the local Redis": Case(
        ("--backend", "redis://taskqueue-kit-nobody:wrongpass@127.0.0.1:6379/0"),
        "[FAIL] result backend: Redis refused the user and password of "
        "redis://taskqueue-kit-nobody:***@127.0.0.1:6379/0: fix them in --backend",
        secret="wrongpass",
    ),
    "missing extra": Case(
        ("--broker", f"redis://:{_PASSWORD}@127.0.0.1:6379/0"),
        "[FAIL] broker: the Redis broker needs the redis extra: pip install 'taskqueue-kit[redis]'",
        hide=("redis",),
    ),
    "missing part of an extra": Case(
        ("--backend", "redis://127.0.0.1:6379/0"),
        "[FAIL] result backend: the Redis result backend needs the redis extra "
        "(packaging is not installed): pip install 'taskqueue-kit[redis]'",
        hide=("packaging",),
    ),
    "malformed URL": Case(
        ("--broker", f"guest:{_PASSWORD}@127.0.0.1"),
        "[FAIL] settings: invalid settings: broker_url: Value error, 'guest:***@127.0.0.1' "
        "is not a URL (expected scheme://...)",
    ),
}


@pytest.mark.compat
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_failure_is_one_line_saying_what_to_do(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each failure prints exactly its one explaining line, exits 1, and shows no password."""
    for module in case.hide:
        monkeypatch.setitem(sys.modules, module, None)
    home = case.home(tmp_path)
    result = _doctor(*case.args, home=home)
    assert _failures(result) == [case.line.format(home=home)], result.output
    assert result.exit_code == 1
    assert case.secret not in result.output
    assert "Traceback" not in result.output


@pytest.mark.compat
def test_a_failure_in_a_real_process_is_fast_and_has_no_traceback(tmp_path: Path) -> None:
    """As a command, a closed port fails within seconds: one line, exit 1, no traceback."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_NAMES}
    broker = ("--broker", f"amqp://guest:{_PASSWORD}@127.0.0.1:1//")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "taskqueue_kit._cli", "doctor", "--timeout", "3", *broker],
        capture_output=True,
        text=True,
        env={**env, "TASKQUEUE_HOME": str(tmp_path)},
        timeout=30,
        check=False,
    )
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert [line for line in result.stdout.splitlines() if line.startswith("[FAIL]")] == [
        CASES["rabbitmq not running"].line
    ]
    assert result.stderr == "doctor: 1 problem(s): broker\n"
    assert _PASSWORD not in result.stdout + result.stderr


@pytest.mark.compat
def test_mask_blanks_every_password() -> None:
    """mask() hides the password of each URL in a text, and leaves URLs without one alone."""
    assert mask("amqp://guest:wrong@127.0.0.1:5672//") == "amqp://guest:***@127.0.0.1:5672//"
    assert (
        mask("sentinel://:a@h1:26379;sentinel://:b@h2")
        == "sentinel://:***@h1:26379;sentinel://:***@h2"
    )
    assert mask("tried 'redis://u:p@h/0' twice") == "tried 'redis://u:***@h/0' twice"
    assert mask("tqsqlite:////srv/broker.sqlite3") == "tqsqlite:////srv/broker.sqlite3"
    assert mask("amqp://guest:p@ss:w@h:5672//") == "amqp://guest:***@h:5672//"
    assert mask("redis://h:6379/0?db=1&password=p&x=1") == "redis://h:6379/0?db=1&password=***&x=1"
    assert mask("{'host': 'h', 'password': 'p'}") == "{'host': 'h', 'password': '***'}"
    assert mask("Connection(password=p, port=1)") == "Connection(password=***, port=1)"
    assert mask("refused the user and password of x") == "refused the user and password of x"


@pytest.mark.compat
def test_no_line_holds_a_password_given_in_a_query_string(tmp_path: Path) -> None:
    """redis-py reads `?password=`: doctor's line on that URL, ok or not, shows `***`."""
    url = f"redis://127.0.0.1:6379/0?password={_PASSWORD}"
    result = _doctor("--broker", url, home=tmp_path)
    (line,) = [line for line in result.output.splitlines() if "] broker: " in line]
    assert "redis://127.0.0.1:6379/0?password=***" in line
    assert _PASSWORD not in result.output


@pytest.mark.compat
def test_embedded_default_passes(tmp_path: Path) -> None:
    """On the embedded default every check passes (no worker is only a warning); exit 0."""
    result = _doctor(home=tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "[ok  ] settings: profile development; queues celery"
    assert f"[ok  ] broker: reachable at tqsqlite:///{tmp_path}/broker.sqlite3" in lines
    assert "[ok  ] result backend: SQLiteBackend answers" in lines
    assert (
        "[warn] workers: no worker answered a ping, so nothing consumes celery: "
        "start one with `celery -A yourapp worker`"
    ) in lines
    assert lines[-1] == "doctor: all checks passed"


def test_extras_line_lists_what_is_installed(tmp_path: Path) -> None:
    """The extras line names each extra found, its adapter imported to prove it."""
    result = _doctor("--broker", "amqp://guest@127.0.0.1:1//", home=tmp_path)
    assert "[ok  ] extras: installed: examples, fastapi, flask, redis" in result.output


@pytest.mark.compat
def test_incomplete_extra_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FastAPI without sse-starlette: a warning naming the extra; the checks still pass."""
    monkeypatch.setitem(sys.modules, "sse_starlette", None)
    result = _doctor(home=tmp_path)
    assert result.exit_code == 0, result.output
    assert (
        "[warn] extras: taskqueue_kit.web.fastapi needs the fastapi extra "
        "(sse_starlette is not installed): pip install 'taskqueue-kit[fastapi]'"
    ) in result.output
    assert "installed: flask, redis; not installed: examples, fastapi" in result.output


def test_missing_extra_also_lists_the_extras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing extra on the broker line still leaves the extras line saying what is absent."""
    monkeypatch.setitem(sys.modules, "redis", None)
    result = _doctor("--broker", "redis://127.0.0.1:6379/0", home=tmp_path)
    assert "[ok  ] extras: installed: examples, fastapi, flask; not installed: redis" in (
        result.output.splitlines()
    )


@pytest.mark.compat
def test_any_command_reports_a_missing_extra_in_one_line() -> None:
    """A MissingExtra escaping a command is an ``Error:`` line and exit 1, not a traceback."""

    @main.command("needs-redis")
    def needs_redis() -> None:
        raise MissingExtra("the Redis broker", "redis")

    try:
        result = CliRunner().invoke(main, ["needs-redis"])
    finally:
        main.commands.pop("needs-redis")
    assert result.exit_code == 1
    assert result.output == (
        "Error: the Redis broker needs the redis extra: pip install 'taskqueue-kit[redis]'\n"
    )


# -- --app ---------------------------------------------------------------------------------


@pytest.fixture
def user_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Celery]]:
    """A module of the user's, in the current directory: a kit app declaring ``reports``."""
    name = unique_name("doctor_app").replace("-", "_")
    (tmp_path / f"{name}.py").write_text(
        "from taskqueue_kit import TaskQueueSettings, create_celery\n"
        f"settings = TaskQueueSettings(home={str(tmp_path / 'home')!r}, queues=('reports',),\n"
        "                              broker_url=None, result_backend=None)\n"
        "celery = create_celery(settings)\n"
    )
    importlib.invalidate_caches()
    module = importlib.import_module(name)
    monkeypatch.setitem(sys.modules, name, module)  # removed again afterwards
    yield name, module.celery
    module.celery.close()


@pytest.mark.compat
def test_app_queue_without_worker_is_a_warning(
    user_app: tuple[str, Celery], tmp_path: Path
) -> None:
    """--app uses the app's queues; with no worker the warning names them and the command."""
    name, _ = user_app
    result = _doctor("--app", name, home=tmp_path / "unused")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"[ok  ] settings: app {name}; profile development; queues celery, reports"
    assert f"[ok  ] broker: reachable at tqsqlite:///{tmp_path}/home/broker.sqlite3" in lines
    assert (
        "[warn] workers: no worker answered a ping, so nothing consumes celery, reports: "
        f"start one with `celery -A {name} worker`"
    ) in lines
    assert not (tmp_path / "unused").exists()  # the app's home, not TASKQUEUE_HOME


@pytest.mark.compat
def test_app_queue_no_answering_worker_consumes(
    user_app: tuple[str, Celery], tmp_path: Path
) -> None:
    """A worker that answers but does not consume ``reports``: a warning with its -Q command."""
    name, app = user_app
    with run_worker(app, queues=["celery"]):
        result = _doctor("--app", f"{name}:celery", home=tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("[ok  ] workers: 1 answered: ") for line in lines), lines
    assert (
        f"[warn] queues: no worker consumes reports: start one with "
        f"`celery -A {name}:celery worker -Q reports`"
    ) in lines


@pytest.mark.compat
def test_app_queue_consumed_is_ok(user_app: tuple[str, Celery], tmp_path: Path) -> None:
    """A worker consuming every declared queue: the workers line is ok, and no queue warning."""
    name, app = user_app
    with run_worker(app):
        result = _doctor("--app", name, home=tmp_path)
    assert result.exit_code == 0, result.output
    (workers,) = [line for line in result.output.splitlines() if "workers:" in line]
    assert workers.startswith("[ok  ] workers: 1 answered: ")
    assert workers.endswith("; each declared queue has a consumer")
    assert "[warn]" not in result.output


APP_FAILURES = {
    "no such module": (
        "nowhere_to_be_found",
        "[FAIL] app: cannot import nowhere_to_be_found (--app nowhere_to_be_found): run doctor "
        "from the directory that holds it, or fix the module name",
    ),
    "no app in it": (
        "doctor_plain",
        "[FAIL] app: doctor_plain has no Celery app named app or celery: pass --app "
        "doctor_plain:NAME, NAME being the variable that holds the app",
    ),
    "no such attribute": (
        "doctor_plain:missing",
        "[FAIL] app: doctor_plain has no Celery app named missing: pass --app "
        "doctor_plain:NAME, NAME being the variable that holds the app",
    ),
    "its import fails": (
        "doctor_broken",
        "[FAIL] app: importing doctor_broken (--app doctor_broken) raised ZeroDivisionError: "
        'run `python -c "import doctor_broken"` to see why',
    ),
}


@pytest.mark.compat
@pytest.mark.parametrize(("spec", "line"), APP_FAILURES.values(), ids=APP_FAILURES.keys())
def test_app_that_cannot_be_loaded_is_one_line(
    spec: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An --app that cannot be loaded: one line saying why and what to pass instead; exit 1."""
    (tmp_path / "doctor_plain.py").write_text("app = 'not a Celery app'\n")
    (tmp_path / "doctor_broken.py").write_text("1 / 0\n")
    for module in ("doctor_plain", "doctor_broken"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    importlib.invalidate_caches()
    result = _doctor("--app", spec, home=tmp_path)
    assert result.output.splitlines()[0] == line
    assert result.exit_code == 1


@pytest.mark.compat
def test_app_excludes_the_settings_options(tmp_path: Path) -> None:
    """--app with --broker is a usage error (status 2): the app's own broker is checked."""
    result = _doctor("--app", "anything", "--broker", "amqp://127.0.0.1//", home=tmp_path)
    assert result.exit_code == 2
    assert "--app checks the app's own configuration" in result.output


# -- help ----------------------------------------------------------------------------------


@pytest.mark.compat
def test_help_lists_each_command_in_full() -> None:
    """Top-level help shows each command's whole first sentence, not click's "..." cut."""
    commands = CliRunner().invoke(main, ["--help"], terminal_width=80).output
    commands = commands.partition("Commands:")[2]
    text = " ".join(commands.split())
    assert "Score sample reviews with TextBlob in a real Celery worker; no broker to install." in (
        text
    )
    assert "Check settings, broker, result backend and workers; explain each problem." in text
    assert "..." not in commands


@pytest.mark.compat
def test_doctor_help_names_the_real_defaults() -> None:
    """Each option's help says where its default really comes from."""
    text = " ".join(CliRunner().invoke(main, ["doctor", "--help"]).output.split())
    assert "(default: TASKQUEUE_BROKER_URL, else CELERY_BROKER_URL, else the embedded" in text
    assert (
        "(default: TASKQUEUE_RESULT_BACKEND, else CELERY_RESULT_BACKEND, else the embedded"
    ) in text
    assert "(default: TASKQUEUE_PROFILE, else CELERY_CONFIG, else development)" in text
