"""The apps a live test serves from other processes (``celery -A``, ``uvicorn``).

Configured by ``TASKQUEUE_*`` environment variables, as a deployed service would be.
"""

from _webtools import live_apps

from taskqueue_kit import TaskQueueSettings

celery_app, fastapi_app, flask_app = live_apps(TaskQueueSettings())
