"""What is compared: one queue library on one broker, with a client and a worker command.

A :class:`Variant` describes it; :meth:`Variant.open` gives a :class:`Session` for one
round, on fresh state (a new queue name on a shared broker, a new data directory for the
SQLite ones) so rounds never see each other's messages.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from celery import Celery
from celery.backends.base import BaseKeyValueStoreBackend

from bench import celery_apps, huey_app
from bench._workers import celery_worker_command, huey_consumer_command

_CHUNK = 1000


class Session(Protocol):
    """One round of one variant: a client on fresh state and the worker to start."""

    worker_command: list[str]
    worker_env: dict[str, str]

    def send_noop(self) -> str:
        """Enqueue the no-op; its id."""
        ...

    def send_gate(self, directory: Path, token: str) -> None:
        """Enqueue a task that holds one worker process until ``directory/open`` exists."""
        ...

    def round_trip(self, timeout: float) -> None:
        """Send the no-op and wait for its result the library's stock way."""
        ...

    def finished(self, ids: Sequence[str]) -> list[bool]:
        """For each id, whether its result is stored (raises if a task failed)."""
        ...

    def close(self) -> None:
        """Drop what this round left on a shared broker or backend."""
        ...


@dataclass(frozen=True)
class Variant:
    """One library on one broker.

    Attributes:
        key: Short name used in results (``kit``, ``celery``, ``huey``, ...).
        label: What the results table calls it.
        flavour: ``kit``, ``plain`` (Celery) or ``huey``.
        broker: Broker URL template (``{dir}`` is the round's directory); ``None`` is the
            kit's embedded default.
        backend: Result backend URL template, as ``broker``.
        scale: Share of the task and round-trip counts to run (stock SQLAlchemy polling
            makes full counts take minutes); the figures are rates and percentiles.
        poll: Huey only: poll the queue (consumer ``--delay``) and the result
            (``get(max_delay=...)``) every ``poll`` seconds instead of the stock 0.1 s and
            50 ms first waits.
        conf: Celery only: settings applied on top (profiling switches defaults off).
    """

    key: str
    label: str
    flavour: str
    broker: str | None = None
    backend: str | None = None
    scale: float = 1.0
    poll: float | None = None
    conf: dict[str, Any] = field(default_factory=dict)

    def open(self, directory: Path) -> Session:
        """A session on fresh state under ``directory``."""
        if self.flavour == "huey":
            return HueySession(directory, self.poll)
        return CelerySession(self, directory)


#: Plain Celery on the kit's own SQLite transport and backend: what the kit's send path and
#: defaults cost, on the same files.
CELERY_ON_KIT_SQLITE = Variant(
    "celery_tqsqlite",
    "plain Celery on the kit's SQLite broker and backend",
    "plain",
    "tqsqlite:///{dir}/broker.sqlite3",
    "tqsqlite:///{dir}/results.sqlite3",
)


def _fill(template: str | None, directory: Path) -> str | None:
    return None if template is None else template.replace("{dir}", str(directory))


class CelerySession:
    """A round of the kit or plain Celery."""

    def __init__(self, variant: Variant, directory: Path) -> None:
        self.queue = f"bench-{uuid.uuid4().hex[:10]}"
        broker = _fill(variant.broker, directory)
        backend = _fill(variant.backend, directory)
        home = str(directory / "taskqueue")
        self.app: Celery = celery_apps.build(
            variant.flavour,
            queue=self.queue,
            broker=broker,
            backend=backend,
            home=home,
            conf=variant.conf,
        )
        self.worker_command = celery_worker_command("bench.celery_apps:app", [self.queue])
        self.worker_env = celery_apps.worker_env(
            variant.flavour,
            queue=self.queue,
            broker=broker,
            backend=backend,
            home=home,
            conf=variant.conf,
        )
        self._noop = self.app.tasks[celery_apps.NOOP]
        self._gate = self.app.tasks[celery_apps.GATE]
        self._sent: list[str] = []
        # Kept alive: with Redis results, dropping an AsyncResult unsubscribes at once
        # (a round trip in ``__del__``), which would be timed as part of sending.
        self._results: list[Any] = []

    def send_noop(self) -> str:
        result = self._noop.delay()
        self._results.append(result)
        self._sent.append(result.id)
        return str(result.id)

    def send_gate(self, directory: Path, token: str) -> None:
        result = self._gate.delay(str(directory), token)
        self._results.append(result)
        self._sent.append(result.id)

    def round_trip(self, timeout: float) -> None:
        result = self._noop.delay()
        self._sent.append(result.id)
        result.get(timeout=timeout)

    def finished(self, ids: Sequence[str]) -> list[bool]:
        backend: Any = self.app.backend
        if isinstance(backend, BaseKeyValueStoreBackend):
            metas: list[dict[str, Any] | None] = []
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                raws = backend.mget([backend.get_key_for_task(i) for i in chunk])
                metas.extend(None if raw is None else backend.decode(raw) for raw in raws)
        else:  # Celery's database backend: one query per id
            metas = [backend.get_task_meta(i, cache=False) for i in ids]
        return [_succeeded(task_id, meta) for task_id, meta in zip(ids, metas, strict=True)]

    def close(self) -> None:
        with contextlib.suppress(Exception), self.app.connection_for_write() as connection:
            channel: Any = connection.default_channel
            channel.queue_delete(self.queue)
            with contextlib.suppress(Exception):
                channel.exchange_delete(self.queue)
        backend: Any = self.app.backend
        client = getattr(backend, "client", None)
        if client is not None and hasattr(client, "delete"):  # Redis: drop this round's results
            keys = [backend.get_key_for_task(i) for i in self._sent]
            for start in range(0, len(keys), _CHUNK):
                with contextlib.suppress(Exception):
                    client.delete(*keys[start : start + _CHUNK])
        self._results.clear()
        self.app.close()


def _succeeded(task_id: str, meta: dict[str, Any] | None) -> bool:
    status = None if meta is None else meta.get("status")
    if status in {"FAILURE", "REVOKED"}:
        raise RuntimeError(f"task {task_id} ended {status}: {meta}")
    return status == "SUCCESS"


class HueySession:
    """A round of ``SqliteHuey`` on a fresh database file."""

    def __init__(self, directory: Path, poll: float | None = None) -> None:
        path = str(directory / "huey.db")
        self.huey, self._noop, self._gate = huey_app.build(path)
        self.worker_command = huey_consumer_command("bench.huey_app.huey")
        if poll is not None:
            self.worker_command.append(f"--delay={poll}")
        self._wait: dict[str, float] = {} if poll is None else {"max_delay": poll}
        self.worker_env = {"BENCH_HUEY_DB": path}

    def send_noop(self) -> str:
        task_id: str = self._noop().id
        return task_id

    def send_gate(self, directory: Path, token: str) -> None:
        self._gate(str(directory), token)

    def round_trip(self, timeout: float) -> None:
        self._noop().get(blocking=True, timeout=timeout, **self._wait)

    def finished(self, ids: Sequence[str]) -> list[bool]:
        storage = self.huey.storage
        return [bool(storage.has_data_for_key(i)) for i in ids]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.huey.storage.close()


@contextlib.contextmanager
def session(variant: Variant, directory: Path) -> Iterator[Session]:
    """:meth:`Variant.open`, closed at the end of the block."""
    opened = variant.open(directory)
    try:
        yield opened
    finally:
        opened.close()
