"""Benchmarks of taskqueue-kit against plain Celery and Huey: ``python -m bench``.

See ``bench/README.md`` for the method; the last run's figures are in ``bench/results.md``.
"""
