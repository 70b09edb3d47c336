"""The sentiment example: a FastAPI + Celery review-scoring service rebuilt on taskqueue-kit.

It is the service of the lecture the project grew out of. It lives inside the package so
``taskqueue-kit demo`` runs from any directory after a plain
``pip install 'taskqueue-kit[examples]'``. Read it as an example; each module is one piece:

* :mod:`~taskqueue_kit.demo.model`: TextBlob's polarity, imported lazily.
* :mod:`~taskqueue_kit.demo.tasks`: ``polarity:analyze`` (one review) and ``polarity:batch``
  (many, in chunks, with progress), retrying with backoff and jitter.
* :mod:`~taskqueue_kit.demo.celery_app`: the Celery app a worker runs
  (``celery -A taskqueue_kit.demo.celery_app worker -Q polarity``).
* :mod:`~taskqueue_kit.demo.fastapi_app` and :mod:`~taskqueue_kit.demo.flask_app`: the
  service over HTTP, with the original ``/polarities`` endpoints, the kit's ``/tasks`` and a
  progress page.
* :mod:`~taskqueue_kit.demo.service`: what both web apps share (bodies, the page).
* :mod:`~taskqueue_kit.demo.reviews`: the shipped sample and labelled reviews.
* :mod:`~taskqueue_kit.demo.runner` and :mod:`~taskqueue_kit.demo.serve`: what
  ``taskqueue-kit demo`` and ``taskqueue-kit demo --serve`` do.

Importing this package imports none of TextBlob, FastAPI or Flask.
"""
