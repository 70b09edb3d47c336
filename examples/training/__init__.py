"""Offline model training: a naive Bayes review classifier trained in a task, with progress."""
