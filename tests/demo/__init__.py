"""Tests of the sentiment example (``taskqueue_kit.demo``) and ``taskqueue-kit demo``."""
