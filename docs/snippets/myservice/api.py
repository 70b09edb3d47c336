"""The FastAPI service: the tasks behind /tasks, guarded by a bearer token."""

from __future__ import annotations

import hmac
import os

from fastapi import Depends, FastAPI, Header, HTTPException

from myservice.tasks import analyze
from myservice.tasks import app as celery_app
from taskqueue_kit.web.fastapi import task_router

API_TOKEN = os.environ.get("API_TOKEN", "")


def require_token(authorization: str = Header(default="")) -> None:
    """Let only requests that carry the service's bearer token through."""
    expected = f"Bearer {API_TOKEN}"
    if not API_TOKEN or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong token")


api = FastAPI(title="Reviews")
api.include_router(
    task_router(
        celery_app,
        tasks=[analyze],  # only these can be sent over HTTP
        prefix="/tasks",
        dependencies=[Depends(require_token)],  # runs before every route of the router
        max_body_size=256 * 1024,  # 413 above 256 KiB
    )
)
