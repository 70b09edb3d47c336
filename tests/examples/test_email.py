"""The e-mail example against a real SMTP server (aiosmtpd) that refuses the first attempts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from types import ModuleType
from typing import Any

import pytest
from _exampletools import free_port, wait_until
from aiosmtpd.controller import Controller

from taskqueue_kit import TaskInfo, TaskState, get_task_info
from taskqueue_kit.testing import run_worker


class Greylisting:
    """An SMTP handler that answers ``451`` to the first ``refusals`` attempts, like greylisting.

    Recipients in ``unknown`` are refused with ``550``, as a server does for no such user.
    """

    def __init__(self, refusals: int, unknown: frozenset[str] = frozenset()) -> None:
        self.refusals = refusals
        self.unknown = unknown
        self.attempts: list[float] = []
        self.messages: list[Message] = []

    async def handle_RCPT(  # aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        self.attempts.append(time.monotonic())
        if address in self.unknown:
            return "550 5.1.1 No such user here"
        if len(self.attempts) <= self.refusals:
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[Greylisting, int]]]:
    """Start an aiosmtpd server on a free loopback port with the given handler settings."""
    controllers: list[Controller] = []

    def start(refusals: int, unknown: frozenset[str] = frozenset()) -> tuple[Greylisting, int]:
        handler = Greylisting(refusals, unknown)
        port = free_port()
        controller = Controller(
            handler, hostname="127.0.0.1", port=port, loop=asyncio.new_event_loop()
        )
        controller.start()
        controllers.append(controller)
        return handler, port

    yield start
    for controller in controllers:
        controller.stop()
        controller.loop.close()


def _final(app: Any, task_id: str, timeout: float = 30) -> TaskInfo:
    return wait_until(
        lambda: (info := get_task_info(task_id, app=app)).ready and info,
        timeout=timeout,
        what=f"task {task_id} to finish",
    )


def _mail_example(load_example: Callable[..., ModuleType], port: int) -> ModuleType:
    return load_example("examples.email.tasks", MAIL_HOST="127.0.0.1", MAIL_PORT=str(port))


def test_refused_attempts_are_retried_with_growing_waits(load_example, smtp_server) -> None:
    """Two 451 refusals: the third attempt delivers; the waits were at least 1 s, then 2 s."""
    handler, port = smtp_server(refusals=2)
    tasks = _mail_example(load_example, port)
    with run_worker(tasks.app):
        result = tasks.send_email.delay("ada@example.org", "Welcome", "Hello Ada")
        info = _final(tasks.app, result.id)

    assert info.state is TaskState.SUCCEEDED, info.error
    assert info.result == {
        "to": "ada@example.org",
        "message_id": f"<{result.id}@taskqueue-kit.example>",
        "attempts": 3,
    }
    assert info.retries == 2
    assert len(handler.attempts) == 3
    gaps = [
        later - earlier
        for earlier, later in zip(handler.attempts, handler.attempts[1:], strict=False)
    ]
    policy = tasks.send_email.retry_policy
    for retry, gap in enumerate(gaps):  # a retry never runs before its countdown is over
        assert gap >= policy.cap(retry) - 0.01, (retry, gaps)
    assert gaps[1] > gaps[0]
    [message] = handler.messages
    assert message["To"] == "ada@example.org"
    assert message["Subject"] == "Welcome"
    assert message["Message-ID"] == info.result["message_id"]
    assert message.get_payload().strip() == "Hello Ada"


def test_permanent_refusal_and_bad_input_fail_at_once(load_example, smtp_server) -> None:
    """A 550 fails on the first attempt; an address with a line break never reaches the server."""
    handler, port = smtp_server(refusals=0, unknown=frozenset({"nobody@example.org"}))
    tasks = _mail_example(load_example, port)
    with run_worker(tasks.app):
        refused = tasks.send_email.delay("nobody@example.org", "Hi", "...")
        injected = tasks.send_email.delay("a@example.org\r\nBcc: all@example.org", "Hi", "...")
        refused_info = _final(tasks.app, refused.id)
        injected_info = _final(tasks.app, injected.id)

    assert refused_info.state is TaskState.FAILED
    assert refused_info.error is not None
    assert refused_info.error.type.endswith("PermanentMailError")
    assert "550" in refused_info.error.message
    assert refused_info.retries == 0
    assert injected_info.state is TaskState.FAILED
    assert injected_info.error is not None
    assert injected_info.error.type == "ValueError"
    assert injected_info.retries == 0
    assert len(handler.attempts) == 1  # the refused one only
    assert handler.messages == []


def test_sender_program_follows_the_task_to_success(load_example, smtp_server, capsys) -> None:
    """``python -m examples.email.send`` prints the states it saw and exits 0 once sent."""
    handler, port = smtp_server(refusals=1)
    tasks = _mail_example(load_example, port)
    from examples.email import send  # imported after the example, so it shares its app

    with run_worker(tasks.app):
        status = send.main(["grace@example.org", "--subject", "Report", "--timeout", "30"])

    out = capsys.readouterr().out
    assert status == 0, out
    assert out.splitlines()[0].startswith("queued ")
    assert "retrying: 451 4.7.1 Greylisted, please try again later" in out
    assert "sent: {'to': 'grace@example.org'" in out
    assert [m["Subject"] for m in handler.messages] == ["Report"]
