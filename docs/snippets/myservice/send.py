"""Send a task and follow it to the end, as a web process or a script would."""

from __future__ import annotations

import time

from myservice.tasks import analyze, app
from taskqueue_kit import get_task_info

result = analyze.delay(["great product", "arrived broken", "fine"])
print("sent", result.id)

while True:
    info = get_task_info(result.id, app=app)  # from any process that shares the backend
    if info.progress is not None:
        print(f"{info.state}: {info.progress.percent:.0f}% {info.progress.message}")
    else:
        print(info.state)
    if info.ready:  # succeeded, failed or revoked
        break
    time.sleep(0.5)

print(info.model_dump(mode="json"))
