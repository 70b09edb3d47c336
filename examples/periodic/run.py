"""Try the schedule in one process: ``python -m examples.periodic.run``.

Starts a worker with beat embedded (``celery worker -B``), after leaving two stale files in
the scratch directory so the first clean-up has something to remove. Stop it with Ctrl-C.
In production run beat as its own process, exactly once for the whole deployment (see the
README); ``-B`` is for development only.
"""

from __future__ import annotations

import os
import time

from examples.periodic.tasks import MAX_AGE, REPORTS, SCRATCH, app, settings


def plant_stale_files(count: int = 2) -> None:
    """Files whose modification time is older than the clean-up's ``MAX_AGE``."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    stale = time.time() - MAX_AGE - 60
    for index in range(count):
        path = SCRATCH / f"stale-{index}.tmp"
        path.write_text("left behind by an interrupted upload\n")
        os.utime(path, (stale, stale))


def main() -> None:
    """Plant stale files, then run a worker with embedded beat until interrupted."""
    plant_stale_files()
    print(f"reports go to {REPORTS}; stale files in {SCRATCH} are removed", flush=True)
    app.worker_main(
        [
            "worker",
            "--beat",
            f"--schedule={settings.home.resolve() / 'beat-schedule'}",
            "--queues=reports,maint",
            "--loglevel=INFO",
        ]
    )


if __name__ == "__main__":
    main()
