"""The Flask service: the same HTTP API as a blueprint, guarded by a bearer token."""

from __future__ import annotations

import hmac
import os

from flask import Flask, abort, request

from myservice.tasks import analyze
from myservice.tasks import app as celery_app
from taskqueue_kit.web.flask import init_app, task_blueprint

API_TOKEN = os.environ.get("API_TOKEN", "")

flask_app = Flask(__name__)
init_app(flask_app, celery_app)  # tasks run inside flask_app's application context

tasks = task_blueprint(
    celery_app,
    tasks=[analyze],  # only these can be sent over HTTP
    url_prefix="/tasks",
    max_body_size=256 * 1024,  # 413 above 256 KiB
)


@tasks.before_request
def require_token() -> None:
    """Let only requests that carry the service's bearer token through."""
    given = request.headers.get("Authorization", "")
    if not API_TOKEN or not hmac.compare_digest(given.encode(), f"Bearer {API_TOKEN}".encode()):
        abort(401)


flask_app.register_blueprint(tasks)
