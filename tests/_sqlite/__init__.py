"""Tests of the embedded SQLite broker and result backend (``taskqueue_kit._sqlite``)."""
