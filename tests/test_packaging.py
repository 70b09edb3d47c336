"""The built wheel, installed with each extra alone in a fresh venv, has what that extra promises.

The wheel is built once and everything any install needs is downloaded once, in one
resolution, into a wheelhouse (through pip's cache); then one venv per install (bare, each
extra, redis-py without the extra) installs from that wheelhouse alone, several at a time.
Each venv still gets only what its own extra requires. Without PyPI this skips locally and
fails under ``CI``.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from taskqueue_kit.testing import resolve_broker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).parents[1]
REDIS_HINT = "pip install 'taskqueue-kit[redis]'"
REDIS_BROKER_MISSING = f"the Redis broker needs the redis extra: {REDIS_HINT}"


@dataclass
class Venv:
    """A fresh virtualenv with the wheel installed, or why pip could not make it."""

    path: Path
    error: str | None = None

    def bin(self, name: str) -> str:
        """A console script or the interpreter of this venv; fails the test if pip failed."""
        if self.error is not None:
            pytest.fail(f"installing into {self.path.name} failed:\n{self.error}", pytrace=False)
        return str(self.path / "bin" / name)


# What goes into each venv besides the wheel: its extra, or (redis-py) a package alone.
INSTALLS: dict[str, tuple[str, Sequence[str]]] = {
    "bare": ("", ()),
    "redis": ("[redis]", ()),
    "fastapi": ("[fastapi]", ()),
    "flask": ("[flask]", ()),
    "examples": ("[examples]", ()),
    "redis-py": ("", ("redis",)),  # what a user who knows Celery would install by hand
}


def _index_unreachable() -> str | None:
    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/pip/"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5).close()
    except OSError as exc:
        return f"{url}: {exc}"
    return None


def _env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: none of this suite's settings or venv."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TASKQUEUE_", "CELERY_", "PYTHON", "VIRTUAL_ENV"))
    }
    return {**env, "TASKQUEUE_HOME": str(home), "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def _run(
    command: Sequence[str], cwd: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        cwd=cwd,
        env=_env(cwd / "taskqueue", **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _install(root: Path, name: str, wheel: Path, wheelhouse: Path) -> Venv:
    started = time.monotonic()
    try:
        return _install_into(root, name, wheel, wheelhouse)
    finally:
        print(f"venv {name}: {time.monotonic() - started:.1f} s")


def _install_into(root: Path, name: str, wheel: Path, wheelhouse: Path) -> Venv:
    extra, packages = INSTALLS[name]
    venv = Venv(root / name)
    # No pip inside: the suite's pip installs into it (--python), which skips ensurepip.
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv.path)], root)
    if made.returncode != 0:
        venv.error = made.stdout + made.stderr
        return venv
    pip = [sys.executable, "-m", "pip", "--python", str(venv.path / "bin" / "python")]
    # --no-compile: byte-compiling every module doubles the time; imports compile lazily.
    local = ["--no-index", "--find-links", str(wheelhouse), "--no-compile"]
    install = [*pip, "install", "--quiet", *local, f"{wheel}{extra}", *packages]
    done = _run(install, root, timeout=600)
    if done.returncode != 0:
        venv.error = done.stdout + done.stderr
    return venv


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Venv]:
    """The wheel built once, then every venv of ``INSTALLS`` installed in parallel."""
    reason = _index_unreachable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PyPI is not reachable ({reason}); CI must run this", pytrace=False)
        pytest.skip(f"PyPI is not reachable, so no venv can be installed: {reason}")
    root = tmp_path_factory.mktemp("packaging")
    started = time.monotonic()
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(root), str(ROOT)],
        root,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = root.glob("taskqueue_kit-*.whl")
    print(f"wheel: {time.monotonic() - started:.1f} s")
    wheelhouse = root / "wheelhouse"
    extras = ",".join(extra.strip("[]") for extra, _ in INSTALLS.values() if extra)
    downloaded = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "-d",
            str(wheelhouse),
            f"{wheel}[{extras}]",
        ],
        root,
        timeout=600,
    )
    assert downloaded.returncode == 0, downloaded.stdout + downloaded.stderr
    print(f"wheelhouse: {time.monotonic() - started:.1f} s")
    # pip is CPU-bound once its downloads are local: one install per CPU at a time.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {name: pool.submit(_install, root, name, wheel, wheelhouse) for name in INSTALLS}
        made = {name: future.result() for name, future in futures.items()}
    print(f"wheel and {len(made)} venvs in {time.monotonic() - started:.1f} s")
    return made


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty working directory, so nothing of the checkout is importable from it."""
    return tmp_path


def _doctor(venv: Venv, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([venv.bin("taskqueue-kit"), "doctor", "--timeout", "3", *args], cwd)


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


def _import_error(venv: Venv, cwd: Path, module: str) -> str:
    """The last line of the traceback that importing ``module`` ends with."""
    result = _run([venv.bin("python"), "-c", f"import {module}"], cwd)
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_bare_install_runs_on_the_embedded_default_and_rabbitmq(
    venvs: dict[str, Venv], work: Path, request: pytest.FixtureRequest
) -> None:
    """The bare wheel passes the doctor on the embedded default and on amqp (py-amqp is kombu's)."""
    result = _doctor(venvs["bare"], work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok  ] extras: installed: none; not installed: examples, fastapi, flask, redis" in (
        _lines(result)
    )
    assert "[ok  ] broker: reachable at tqsqlite://" in result.stdout
    assert "[ok  ] result backend: SQLiteBackend answers" in _lines(result)
    amqp = resolve_broker(request.config, "amqp").broker_url
    assert amqp is not None
    result = _doctor(venvs["bare"], work, "--broker", amqp)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok  ] broker: reachable at amqp://" in result.stdout


def test_bare_install_names_the_redis_extra(venvs: dict[str, Venv], work: Path) -> None:
    """Without the redis extra, doctor and a worker on redis:// say in one line what to install."""
    result = _doctor(venvs["bare"], work, "--broker", "redis://127.0.0.1:6379/0")
    assert result.returncode == 1
    assert f"[FAIL] broker: {REDIS_BROKER_MISSING}" in _lines(result)
    assert "Traceback" not in result.stdout + result.stderr
    (work / "tqapp.py").write_text(
        "from taskqueue_kit import create_celery\napp = create_celery()\n"
    )
    worker = _run(
        [venvs["bare"].bin("celery"), "-A", "tqapp", "worker", "--pool", "solo"],
        work,
        timeout=60,
        TASKQUEUE_BROKER_URL="redis://127.0.0.1:6379/0",
    )
    assert worker.returncode != 0
    assert REDIS_BROKER_MISSING in worker.stdout + worker.stderr


def test_bare_install_adapters_name_their_extra(venvs: dict[str, Venv], work: Path) -> None:
    """Importing a web adapter without its extra raises the kit's error naming the extra."""
    error = "taskqueue_kit._exceptions.MissingExtra: "
    assert _import_error(venvs["bare"], work, "taskqueue_kit.web.fastapi") == (
        f"{error}taskqueue_kit.web.fastapi needs the fastapi extra: "
        "pip install 'taskqueue-kit[fastapi]'"
    )
    assert _import_error(venvs["bare"], work, "taskqueue_kit.web.flask") == (
        f"{error}taskqueue_kit.web.flask needs the flask extra: pip install 'taskqueue-kit[flask]'"
    )


def test_redis_py_alone_is_not_enough(venvs: dict[str, Venv], work: Path) -> None:
    """redis-py installed by hand, without packaging: the doctor names the redis extra."""
    result = _doctor(venvs["redis-py"], work, "--broker", "redis://127.0.0.1:6379/0")
    assert result.returncode == 1
    assert (
        "[FAIL] broker: the Redis broker needs the redis extra (packaging is not installed): "
        f"{REDIS_HINT}"
    ) in _lines(result)


def test_redis_extra_runs_on_redis(
    venvs: dict[str, Venv], work: Path, request: pytest.FixtureRequest
) -> None:
    """With the redis extra alone, Redis works as broker and as result backend."""
    url = resolve_broker(request.config, "redis").broker_url
    assert url is not None
    result = _doctor(venvs["redis"], work, "--broker", url, "--backend", url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok  ] extras: installed: redis; not installed: examples, fastapi, flask" in (
        _lines(result)
    )
    assert "[ok  ] broker: reachable at redis://" in result.stdout
    assert "[ok  ] result backend: RedisBackend answers" in _lines(result)


# Sends a task through the adapter and reads it back, on the embedded default, no server.
_SMOKE = """
import asyncio, json, sys
from taskqueue_kit import create_celery

celery_app = create_celery()

@celery_app.task(name="echo")
def echo(text: str) -> str:
    return text

if sys.argv[1] == "fastapi":
    from fastapi import FastAPI
    from taskqueue_kit.web.fastapi import task_router

    api = FastAPI()
    api.include_router(task_router(celery_app, tasks=[echo]))

    async def call(method, path, body=b""):
        incoming = [{"type": "http.request", "body": body, "more_body": False}]
        sent = []

        async def receive():
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "headers": [(b"content-type", b"application/json")],
            "scheme": "http", "server": ("test", 80), "client": ("test", 1),
        }
        await api(scope, receive, send)
        return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))

    status, sent = asyncio.run(call("POST", "/tasks/echo", b'{"text": "hi"}'))
    print("POST", status)
    status, info = asyncio.run(call("GET", f"/tasks/{sent['task_id']}"))
    print("GET", status, info["state"])
else:
    from flask import Flask
    from taskqueue_kit.web.flask import init_app, task_blueprint

    app = Flask("smoke")
    init_app(app, celery_app)
    app.register_blueprint(task_blueprint(celery_app, tasks=[echo], url_prefix="/tasks"))
    client = app.test_client()
    sent = client.post("/tasks/echo", json={"text": "hi"})
    print("POST", sent.status_code)
    info = client.get(f"/tasks/{sent.get_json()['task_id']}")
    print("GET", info.status_code, info.get_json()["state"])
"""


@pytest.mark.parametrize(("extra", "other"), [("fastapi", "flask"), ("flask", "fastapi")])
def test_web_extra_serves_the_http_api(
    venvs: dict[str, Venv], work: Path, extra: str, other: str
) -> None:
    """With one web extra alone, its adapter sends and reports a task; the other names its extra."""
    venv = venvs[extra]
    result = _doctor(venv, work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"[ok  ] extras: installed: {extra}; not installed: " in result.stdout
    assert "[warn] extras" not in result.stdout
    smoke = _run([venv.bin("python"), "-c", _SMOKE, extra], work)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert smoke.stdout.splitlines() == ["POST 202", "GET 200 queued"]
    assert f"needs the {other} extra: pip install 'taskqueue-kit[{other}]'" in _import_error(
        venv, work, f"taskqueue_kit.web.{other}"
    )


def test_examples_extra_runs_the_demo(venvs: dict[str, Venv], work: Path) -> None:
    """With the examples extra alone, the sentiment demo runs end to end and exits cleanly."""
    venv = venvs["examples"]
    result = _doctor(venv, work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok  ] extras: installed: examples, fastapi, flask; not installed: redis" in (
        _lines(result)
    )
    demo = _run([venv.bin("taskqueue-kit"), "demo"], work, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "batch scores equal the per-review scores: yes" in demo.stdout
