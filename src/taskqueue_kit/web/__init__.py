"""Web adapters: one HTTP API over the kit's tasks, for FastAPI and for Flask.

Import the adapter you use, ``taskqueue_kit.web.fastapi`` (``pip install
'taskqueue-kit[fastapi]'``) or ``taskqueue_kit.web.flask`` (``pip install
'taskqueue-kit[flask]'``). This package itself imports neither framework, so an app
without them can still import ``taskqueue_kit``; importing an adapter without its extra
raises an ``ImportError`` (the kit's ``MissingExtra``) naming the extra to install.
"""

__all__: list[str] = []
