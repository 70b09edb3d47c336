"""The lecture's ``main.py`` on taskqueue-kit: the FastAPI service and its Celery app.

Web process: ``uvicorn main:app --port 9000`` (or ``python main.py``).
Worker: ``celery -A main.celery worker -Q polarity --loglevel=info``.
Flower: ``celery -A main.celery flower --port=5555``.

With no settings, both processes share the embedded broker in ``./.taskqueue``; set
``TASKQUEUE_BROKER_URL`` (or Celery's own ``CELERY_BROKER_URL``) for RabbitMQ or Redis.
"""

import uvicorn

from taskqueue_kit.demo.fastapi_app import create_app

app = create_app()
celery = app.state.celery_app

if __name__ == "__main__":
    uvicorn.run("main:app", port=9000, reload=True)
