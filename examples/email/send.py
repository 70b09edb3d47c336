"""Queue one e-mail and follow it: ``python -m examples.email.send you@example.com``.

Prints each state the task passes through (queued, started, retrying, succeeded or failed)
and exits 0 when the message went out, 1 when it failed or did not finish in time.
"""

from __future__ import annotations

import argparse
import time

from examples.email.tasks import app, send_email
from taskqueue_kit import TaskState, get_task_info


def main(argv: list[str] | None = None) -> int:
    """Send, then poll the task's state until it is final or ``--timeout`` runs out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("to", help="recipient address")
    parser.add_argument("--subject", default="Hello from taskqueue-kit")
    parser.add_argument("--body", default="This message was sent by a background task.")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to follow")
    args = parser.parse_args(argv)

    result = send_email.delay(args.to, args.subject, args.body)
    print(f"queued {result.id}", flush=True)
    deadline = time.monotonic() + args.timeout
    seen = None
    while time.monotonic() < deadline:
        info = get_task_info(result.id, app=app)
        if (info.state, info.retries) != seen:  # a new state, or the next retry
            seen = (info.state, info.retries)
            why = (
                f": {info.error.message}" if info.state is TaskState.RETRYING and info.error else ""
            )
            print(f"{info.state.value}{why}", flush=True)
        if info.ready:
            if info.state is TaskState.SUCCEEDED:
                print(f"sent: {info.result}")
                return 0
            error = info.error
            print(f"failed: {error.type}: {error.message}" if error else f"{info.state.value}")
            return 1
        time.sleep(0.2)
    print(f"not finished after {args.timeout:g}s; is a worker running on queue 'mail'?")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
