"""E-mail in the background: one task sends one message with smtplib, retrying with backoff.

Worker: ``celery -A examples.email.tasks worker -Q mail --loglevel=INFO``.
Sender: ``python -m examples.email.send you@example.com``.

SMTP replies say whether to try again: 4xx ("try later": greylisting, a full mailbox, a busy
server) is retried with exponential backoff; 5xx (no such user, relaying denied) fails at
once, since sending the same message again cannot succeed. A dropped connection is retried.
"""

from __future__ import annotations

import os
import re
import smtplib
from email.message import EmailMessage
from typing import Any

from taskqueue_kit import TaskQueueSettings, create_celery, retrying_task

QUEUE = "mail"

app = create_celery(TaskQueueSettings(queues=(QUEUE,)), main="examples.email")

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class TemporaryMailError(Exception):
    """The server answered 4xx: the same message may go through later."""


class PermanentMailError(Exception):
    """The server answered 5xx: retrying the same message cannot help."""


def smtp_server() -> tuple[str, int]:
    """Where to send: ``MAIL_HOST`` and ``MAIL_PORT`` (default ``localhost:8025``)."""
    return os.environ.get("MAIL_HOST", "localhost"), int(os.environ.get("MAIL_PORT", "8025"))


def build_message(message_id: str, to: str, subject: str, body: str) -> EmailMessage:
    """The message; refuses addresses and subjects that could smuggle in extra headers.

    Raises:
        ValueError: not one plain address, or a subject with a line break.
    """
    if not _ADDRESS.match(to):
        raise ValueError(f"not an e-mail address: {to!r}")
    if "\r" in subject or "\n" in subject:
        raise ValueError("the subject must be one line")
    message = EmailMessage()
    message["From"] = os.environ.get("MAIL_FROM", "noreply@example.com")
    message["To"] = to
    message["Subject"] = subject
    # One id per task, kept across retries: if a retry follows a send whose reply was lost,
    # the receiving side can tell the two copies are one message.
    message["Message-ID"] = f"<{message_id}@taskqueue-kit.example>"
    message.set_content(body)
    return message


def _classify(code: int, reply: object) -> Exception:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    if 400 <= code < 500:
        return TemporaryMailError(f"{code} {text}")
    return PermanentMailError(f"{code} {text}")


@retrying_task(
    app=app,
    name="mail:send",
    bind=True,
    retry_on=(TemporaryMailError, OSError),  # OSError: refused or dropped connections
    no_retry_on=(PermanentMailError,),
    max_retries=5,
    backoff=1.0,
    backoff_max=60.0,
    # Greylisting servers refuse a retry that comes too soon, and full jitter may draw a
    # wait near zero; waiting the whole 1, 2, 4, ... seconds gets through in fewer tries.
    jitter=False,
)
def send_email(self: Any, to: str, subject: str, body: str) -> dict[str, Any]:
    """Send one message; returns the address, the Message-ID and how many attempts it took."""
    message = build_message(self.request.id, to, subject, body)
    host, port = smtp_server()
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused, each with a code
        code, reply = max(exc.recipients.values())  # any 5xx makes the whole send permanent
        raise _classify(code, reply) from exc
    except smtplib.SMTPResponseException as exc:
        raise _classify(exc.smtp_code, exc.smtp_error) from exc
    return {
        "to": to,
        "message_id": message["Message-ID"],
        "attempts": int(self.request.retries or 0) + 1,
    }
