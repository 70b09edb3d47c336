"""The same service on Flask, run from this directory.

Web process: ``flask --app flask_main run --port 9000`` (or ``python flask_main.py``).
Worker: ``celery -A flask_main.celery worker -Q polarity --loglevel=info``.
"""

from taskqueue_kit.demo.flask_app import create_app

app = create_app()
celery = app.extensions["celery"]

if __name__ == "__main__":
    app.run(port=9000, threaded=True)
