"""Periodic tasks: a report and a clean-up on a beat schedule."""
