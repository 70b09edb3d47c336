"""Runnable examples of taskqueue-kit; each folder has a README saying how to run it."""
