"""``taskqueue-kit demo`` end to end, as a newcomer runs it: a subprocess in an empty directory.

Every run records the demo's descendant processes (the worker and its pool) while it runs,
and checks that none is left once the demo has exited.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from taskqueue_kit.demo import model
from taskqueue_kit.demo.reviews import cycle
from taskqueue_kit.testing import resolve_broker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)"),
]

SUMMARY = re.compile(r"reviews scored: (\d+) \(positive (\d+), negative (\d+), neutral (\d+)\)")
PER_REVIEW = re.compile(
    r"one task per review: (\d+) polarity:analyze tasks in [\d.]+ s, ([\d,]+) tasks/s"
)
BATCHES = re.compile(
    r"batches: (\d+) polarity:batch tasks in chunks of \d+, (\d+) reviews in [\d.]+ s, "
    r"([\d,]+) reviews/s"
)


def _command() -> list[str]:
    script = Path(sys.executable).with_name("taskqueue-kit")
    if script.exists():
        return [str(script), "demo"]
    return [sys.executable, "-m", "taskqueue_kit._cli", "demo"]


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0]


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _running(pids: set[int]) -> set[int]:
    """Those still running (a zombie waiting for a parent that never reaps does not count)."""
    return {pid for pid in pids if (stat := _stat(pid)) is not None and stat[1] != "Z"}


@dataclass
class DemoRun:
    """A ``taskqueue-kit demo`` subprocess, its output so far and every descendant seen."""

    process: subprocess.Popen[str]
    workdir: Path
    tmpdir: Path
    lines: list[str] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)

    def wait_for_line(self, pattern: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            if self.process.poll() is not None and not self._reading.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        code = self.process.wait(timeout)
        self._reading.join(10)
        self.close()
        return code, "\n".join(self.lines)

    def close(self) -> None:
        if self.process.stdout is not None and not self._reading.is_alive():
            self.process.stdout.close()

    def start_watching(self) -> None:
        self._reading = threading.Thread(target=self._read, daemon=True)
        self._reading.start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def _watch(self) -> None:
        while self.process.poll() is None:
            self.seen |= _descendants(self.process.pid)
            time.sleep(0.05)


Launch = Callable[..., DemoRun]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start the demo in an empty directory, with no TASKQUEUE_* or CELERY_* variables set."""
    runs: list[DemoRun] = []

    def start(*args: str, prepare: Callable[[Path], object] | None = None) -> DemoRun:
        workdir = tmp_path / "empty"
        tmpdir = tmp_path / "tmp"
        workdir.mkdir()
        tmpdir.mkdir()
        if prepare is not None:  # what the working directory holds before the demo starts
            prepare(workdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQUEUE_", "CELERY_"))}
        env.update(TMPDIR=str(tmpdir), PYTHONUNBUFFERED="1", COLUMNS="120")
        process = subprocess.Popen(
            [*_command(), *args], cwd=workdir, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        run = DemoRun(process, workdir, tmpdir)
        run.start_watching()
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()
        run._reading.join(10)
        run.close()
        for pid in _running(run.seen):
            os.kill(pid, signal.SIGKILL)


def _assert_nothing_left(run: DemoRun) -> None:
    assert run.seen, "the demo started no worker process"
    assert not _running(run.seen), "processes left behind"
    assert not list(run.tmpdir.iterdir()), "temporary files left behind"


def _expected_counts(count: int) -> tuple[int, int, int]:
    signs = [model.sign(model.polarity(review.text)) for review in cycle(count)]
    return signs.count("positive"), signs.count("negative"), signs.count("neutral")


def test_demo_runs_end_to_end_in_an_empty_directory(launch: Launch) -> None:
    """With nothing running and no broker: 240 reviews scored, a report, status 0, nothing left."""
    run = launch()
    code, output = run.finish()
    assert code == 0, output
    summary = SUMMARY.search(output)
    assert summary, output
    assert int(summary[1]) == 240
    assert tuple(map(int, summary.groups()[1:])) == _expected_counts(240)
    per_review = PER_REVIEW.search(output)
    batches = BATCHES.search(output)
    assert per_review, output
    assert batches, output
    assert int(per_review[1]) == 240
    assert int(per_review[2].replace(",", "")) > 0
    assert int(batches[2]) == 240
    assert int(batches[3].replace(",", "")) > 0
    assert "Results by category" in output
    assert re.search(r"^all\s+240\s+\d+\s+\d+\s+\d+\s+[+-]\d\.\d{3}$", output, re.MULTILINE), output
    assert "one task per review (polarity:analyze): 240/240 (100%)" in output
    assert "batch scores equal the per-review scores: yes" in output
    assert "Traceback" not in output
    _assert_nothing_left(run)
    assert not list(run.workdir.iterdir()), "the demo wrote into the working directory"


def test_demo_on_redis(launch: Launch, request: pytest.FixtureRequest) -> None:
    """--broker runs the same demo on Redis (broker and results), starting from nothing."""
    target = resolve_broker(request.config, "redis")
    assert target.broker_url is not None
    run = launch("--broker", target.broker_url, "--count", "60", "--concurrency", "1")
    code, output = run.finish()
    assert code == 0, output
    summary = SUMMARY.search(output)
    assert summary, output
    assert tuple(map(int, summary.groups())) == (60, *_expected_counts(60))
    assert "broker: redis://" in output
    _assert_nothing_left(run)


def test_ctrl_c_mid_run_stops_cleanly(launch: Launch) -> None:
    """Ctrl-C while tasks run: one short message, status 130, nothing left behind."""
    run = launch("--count", "5000")
    run.wait_for_line(r"one task per review \(polarity:analyze\): \d+/5000")
    run.process.send_signal(signal.SIGINT)
    code, output = run.finish()
    assert code == 130, output
    assert "Interrupted" in output
    assert "Traceback" not in output
    _assert_nothing_left(run)


def test_sigterm_while_the_worker_starts_stops_cleanly(launch: Launch) -> None:
    """SIGTERM before the worker is ready: status 143, the half-started worker is gone too."""
    run = launch()
    run.wait_for_line(r"worker: celery -A taskqueue_kit\.demo\.celery_app worker")
    deadline = time.monotonic() + 30
    while not run.seen:
        assert time.monotonic() < deadline, "no worker process appeared"
        time.sleep(0.02)
    run.process.send_signal(signal.SIGTERM)
    code, output = run.finish()
    assert code == 143, output
    assert "Interrupted" in output
    assert "Traceback" not in output
    _assert_nothing_left(run)


def test_unreachable_broker_is_one_clear_line(launch: Launch) -> None:
    """A broker that cannot be reached fails at once with a reason, starting no worker."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    run = launch("--broker", f"redis://127.0.0.1:{port}/0")
    code, output = run.finish()
    assert code == 1, output
    assert f"demo failed: cannot reach the broker at redis://127.0.0.1:{port}/0" in output
    assert "Traceback" not in output
    assert not run.seen


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _assert_no_banner(output: str) -> None:
    """Nothing before the demo's own summary: none of Celery's worker banner."""
    assert output.startswith("Sentiment service on http://"), output
    for banner in ("-------------- ", "[config]", "[queues]", "[tasks]"):
        assert banner not in output, output


def test_serve_runs_the_service_until_ctrl_c(launch: Launch) -> None:
    """--serve answers /polarities with a worker, prints where to look, stops on Ctrl-C clean."""
    port = _free_port()
    run = launch("--serve", "--port", str(port), "--concurrency", "1")
    run.wait_for_line(r"Sentiment service on http://127\.0\.0\.1:\d+")
    hints = (
        r"API docs: +http://\S+/docs",
        r"events stream: .*/tasks/<task_id>/events",
        r"Flower: +TASKQUEUE_HOME=\S+ celery -A taskqueue_kit\.demo\.celery_app flower",
        r"broker: +embedded SQLite in \S+/\.taskqueue  \(removed at exit\)",
    )
    for hint in hints:
        run.wait_for_line(hint, timeout=5)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        accepted = client.post("/polarities/", json={"review": "Awful, broken and useless."})
        assert accepted.status_code == 202
        status_url = accepted.json()["status_url"]
        deadline = time.monotonic() + 60
        while not (info := client.get(status_url).json())["ready"]:
            assert time.monotonic() < deadline, info
            time.sleep(0.1)
        assert info["result"] < 0
        assert "Review sentiment" in client.get("/").text
    run.process.send_signal(signal.SIGINT)
    code, output = run.finish()
    assert code == 0, output
    assert "Stopped the web service and the worker." in output
    assert "Traceback" not in output
    _assert_no_banner(output)
    # The worker's own lines still come through, after the summary.
    assert re.search(r"Task polarity:analyze\[[-\w]+\] succeeded", output), output
    assert not _running(run.seen), "processes left behind"
    assert not (run.workdir / ".taskqueue").exists(), "the demo left ./.taskqueue behind"
    assert not list(run.workdir.iterdir()), "the demo left files in the working directory"


def test_serve_leaves_a_data_directory_it_did_not_make(launch: Launch) -> None:
    """A ./.taskqueue that was there before --serve is kept at SIGTERM, with what it held."""

    def existing_data(workdir: Path) -> None:
        (workdir / ".taskqueue").mkdir()
        (workdir / ".taskqueue" / "mine.txt").write_text("kept\n")

    port = _free_port()
    run = launch("--serve", "--port", str(port), "--concurrency", "1", prepare=existing_data)
    line = run.wait_for_line(r"broker: +embedded SQLite in ")
    assert "removed at exit" not in line
    run.wait_for_line(r"Uvicorn running on|Application startup complete", timeout=30)
    run.process.send_signal(signal.SIGTERM)
    code, output = run.finish()
    assert code == 0, output
    assert "Stopped the web service and the worker." in output
    _assert_no_banner(output)
    assert not _running(run.seen), "processes left behind"
    assert (run.workdir / ".taskqueue" / "mine.txt").read_text() == "kept\n"
