"""Settings for the tests of myservice, set before anything imports it."""

from __future__ import annotations

import os

# The testing profile gives each app a fresh temporary embedded broker and backend, so the
# tests never touch ./.taskqueue or a broker someone else uses.
os.environ["TASKQUEUE_PROFILE"] = "testing"
os.environ["API_TOKEN"] = "test-token"
