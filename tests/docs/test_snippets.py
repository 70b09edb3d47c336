"""The code of the README and of Getting started runs as written, on the embedded default.

How a page is run, in a temporary directory with ``TASKQUEUE_HOME`` in it and no other
``TASKQUEUE_*`` or ``CELERY_*`` variable, this environment's commands first on ``PATH``:

- The ```python blocks without a title are concatenated in page order and run as one
  program: a block may go on from the one before it (the README's FastAPI block uses the
  app and task of the first), never from another page.
- A ```python block with ``title="path"`` is a file the reader saves under that path; its
  ``--8<-- "file"`` include is resolved to the included file, which is written there.
- The commands the page has the reader run from that directory (```bash, and ```console
  after ``$``) run as written, and what they print is compared with the page, ``...``
  standing for any text.
- Not run: the install commands (``python3 -m venv``, ``pip install``, ``pip wheel``; the
  README's two commands among them). They make a virtual environment and install from an
  index, minutes of network work; the environment running this test is the one they make.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>\w*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^(?P=indent)```$",
    re.MULTILINE | re.DOTALL,
)
INCLUDE = re.compile(r'--8<-- "(?P<path>[^"]+)"')
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
NOT_RUN = ("python3 -m venv ", "pip install ", "cd /path/to/taskqueue-kit && pip wheel ")
POLLED = re.compile(r"queued|started|succeeded|progress: \d+% scoring reviews")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page, its include resolved."""

    lang: str
    title: str | None
    body: str


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page in order, tabs' indentation removed, includes resolved."""
    found = []
    for match in FENCE.finditer(page.read_text(encoding="utf-8")):
        body = textwrap.dedent(match["body"])
        include = INCLUDE.fullmatch(body.strip())
        if include:
            body = (ROOT / include["path"]).read_text(encoding="utf-8")
        title = TITLE.search(match["attrs"])
        found.append(Block(match["lang"], title["title"] if title else None, body))
    return found


def program(page: list[Block]) -> str:
    """The untitled Python blocks of a page, concatenated in order."""
    return "\n\n".join(b.body for b in page if b.lang == "python" and b.title is None)


def shell_commands(page: list[Block]) -> list[str]:
    """Each line of the page's ```bash blocks."""
    return [line for b in page if b.lang == "bash" for line in b.body.splitlines() if line]


def console_sessions(page: list[Block]) -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of the page's ```console blocks, with the lines shown after it."""
    sessions: list[tuple[str, list[str]]] = []
    for block in (b for b in page if b.lang == "console"):
        for line in block.body.splitlines():
            if line.startswith("$ "):
                sessions.append((line[2:], []))
            else:
                sessions[-1][1].append(line)
    return sessions


def like(shown: str, printed: str) -> bool:
    """Whether a printed line is the line the page shows, ``...`` standing for any text."""
    return re.fullmatch(re.escape(shown).replace(re.escape("..."), ".*"), printed) is not None


def embedded_env(home: Path) -> dict[str, str]:
    """This environment on the embedded default under ``home``, its commands first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQUEUE_", "CELERY_"))}
    env["TASKQUEUE_HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run(command: str, cwd: Path, env: dict[str, str]) -> list[str]:
    """Run a command as written and return the lines it printed; it must exit with 0."""
    done = subprocess.run(
        shlex.split(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()


# What the test does with the README's program once it ran: read its task over its FastAPI
# app, send one more there, then let a real worker (in a thread) run both.
README_CHECK = """
import json, runpy
from fastapi.testclient import TestClient
from taskqueue_kit.testing import run_worker

blocks = runpy.run_path("readme.py", run_name="__main__")
client = TestClient(blocks["api"])
before = client.get("/tasks/" + blocks["task_id"]).json()
sent = client.post("/tasks/polarity:analyze", json={"reviews": ["great"]})
with run_worker(blocks["app"]):
    for task_id in (blocks["task_id"], sent.json()["task_id"]):
        blocks["app"].AsyncResult(task_id).get(timeout=20)
print(json.dumps({
    "before": before,
    "sent": sent.status_code,
    "after": client.get("/tasks/" + blocks["task_id"]).json(),
    "other": client.get(sent.json()["status_url"]).json(),
}))
"""


def test_readme_code_runs_and_its_api_sends_the_task(tmp_path: Path) -> None:
    """The README's blocks, as one program, print ``queued polarity``; its task and API work."""
    page = blocks(README)
    assert [c for c in shell_commands(page) if not c.startswith(NOT_RUN)] == []
    assert len([b for b in page if b.lang == "python"]) == 2
    (tmp_path / "readme.py").write_text(program(page), encoding="utf-8")
    (tmp_path / "check.py").write_text(README_CHECK, encoding="utf-8")
    home = tmp_path / ".taskqueue"

    own_line, report_line = run("python check.py", tmp_path, embedded_env(home))

    assert own_line == "queued polarity"  # no worker yet: the task waits in its queue
    report = json.loads(report_line)
    assert (report["before"]["state"], report["before"]["queue"]) == ("queued", "polarity")
    assert report["sent"] == 202
    assert (report["after"]["state"], report["after"]["result"]) == ("succeeded", [1.0, -1.0])
    assert (report["other"]["name"], report["other"]["result"]) == ("polarity:analyze", [1.0])
    assert any(home.iterdir())  # broker and backend were files there, no server


@pytest.mark.slow
def test_getting_started_runs_as_written(tmp_path: Path) -> None:
    """The page's files, worker, send script and doctor run and print what the page shows."""
    page = blocks(GETTING_STARTED)
    assert program(page) == ""  # every Python block is a file
    files = {b.title: b.body for b in page if b.lang == "python"}
    assert set(files) == {"myservice/tasks.py", "myservice/send.py"}
    for name, body in files.items():
        path = tmp_path / str(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    (worker_command,) = [c for c in shell_commands(page) if not c.startswith(NOT_RUN)]
    sessions = dict(console_sessions(page))
    assert set(sessions) == {"python -m myservice.send", "taskqueue-kit doctor"}
    env = embedded_env(tmp_path / ".taskqueue")

    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            shlex.split(worker_command),
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its pool processes go with it, whatever happens
        )
    try:
        printed = run("python -m myservice.send", tmp_path, env)
        doctor = run("taskqueue-kit doctor", tmp_path, env)
        worker.send_signal(signal.SIGTERM)  # warm shutdown, as Ctrl-C in its terminal
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    worker_log = log.read_text(encoding="utf-8", errors="replace")

    shown = sessions["python -m myservice.send"]
    assert like(shown[0], printed[0]), printed
    assert like(shown[-1], printed[-1]), (printed, worker_log)
    for lines in (shown, printed):  # the loop prints what it saw each time it looked
        assert all(POLLED.fullmatch(line) for line in lines[1:-1]), lines
        assert lines[-2] == "succeeded"
    assert ast.literal_eval(printed[-1])["task_id"] == printed[0].removeprefix("sent ")
    assert ast.literal_eval(printed[-1])["result"] == [0.5, -0.5, 0.5]
    shown = sessions["taskqueue-kit doctor"]
    assert len(doctor) == len(shown), doctor
    assert all(like(a, b) for a, b in zip(shown, doctor, strict=True)), doctor
    assert "polarity:analyze" in worker_log
