"""Wait for another process to write to a SQLite file, without polling it in a loop.

Every commit in WAL mode appends to ``<db>-wal`` with ``write(2)``, so on Linux an inotify
watch on the data directory tells a waiting consumer that something changed, within
microseconds and without a busy loop. inotify is reached through ``ctypes`` on libc, so no
dependency is needed. Where it is unavailable (another OS, or the per-user instance limit is
reached) the waker sleeps with exponential backoff instead.

The inotify event fires when the writer calls ``write(2)``, a moment before the commit is
visible to readers. So after an event the waiter re-checks on the same backoff schedule
(1 ms, 2 ms, 4 ms, ... up to ``max_delay``): a check that ran too early is repeated a
millisecond later instead of a whole polling interval later.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import os
import select
import struct
import sys
import time
import weakref
from collections.abc import Iterable
from pathlib import Path

__all__ = ["MIN_DELAY", "Waker", "inotify_available"]

logger = logging.getLogger(__name__)

#: First (and smallest) wait after activity, in seconds.
MIN_DELAY = 0.001

_IN_MODIFY = 0x00000002
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_WATCH_MASK = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name


class _Inotify:
    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        self.init1 = libc.inotify_init1
        self.init1.argtypes = [ctypes.c_int]
        self.init1.restype = ctypes.c_int
        self.add_watch = libc.inotify_add_watch
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.add_watch.restype = ctypes.c_int


_inotify: _Inotify | None = None


def _load_inotify() -> _Inotify | None:
    global _inotify
    if _inotify is None and sys.platform.startswith("linux"):
        try:
            _inotify = _Inotify()
        except (OSError, AttributeError):
            return None
    return _inotify


def inotify_available() -> bool:
    """Whether this platform offers inotify at all."""
    return _load_inotify() is not None


def _open_watch(directory: Path) -> int | None:
    lib = _load_inotify()
    if lib is None:
        return None
    fd = int(lib.init1(os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        logger.debug("inotify_init1 failed (%s); falling back to backoff", os.strerror(err))
        return None
    if lib.add_watch(fd, os.fsencode(directory), _WATCH_MASK) < 0:
        err = ctypes.get_errno()
        os.close(fd)
        logger.debug("inotify_add_watch(%s) failed (%s)", directory, os.strerror(err))
        return None
    return fd


class Waker:
    """Block until a file in ``directory`` whose name starts with one of ``names`` changes.

    Not thread-safe: each waiting thread needs its own waker.

    Args:
        directory: Directory holding the database files (created if missing).
        names: File name prefixes that matter, e.g. ``("broker.sqlite3",)`` also covers the
            ``-wal`` file.
        max_delay: Longest single wait, so a missed event costs at most this long.
        use_inotify: ``False`` forces the backoff fallback.
    """

    def __init__(
        self,
        directory: Path,
        names: Iterable[str],
        *,
        max_delay: float = 1.0,
        use_inotify: bool = True,
    ) -> None:
        self.directory = directory
        self.max_delay = max_delay
        self._names = tuple(os.fsencode(n) for n in names)
        self._use_inotify = use_inotify
        self._delay = MIN_DELAY
        self._pid = 0
        self._fd: int | None = None
        self._poll: select.poll | None = None
        self._closer: weakref.finalize[[int], Waker] | None = None
        self._open()

    def _open(self) -> None:
        self._pid = os.getpid()
        self._fd = None
        self._poll = None
        if not self._use_inotify:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = _open_watch(self.directory)
        if fd is not None:
            self._fd = fd
            self._poll = select.poll()
            self._poll.register(fd, select.POLLIN)
            self._closer = weakref.finalize(self, os.close, fd)

    @property
    def uses_inotify(self) -> bool:
        """Whether waits end as soon as a watched file changes."""
        self._check_fork()
        return self._fd is not None

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # The inotify fd is shared with the parent; close our copy and watch afresh.
            if self._closer is not None:
                self._closer()
            self._open()

    def fileno(self) -> int | None:
        """The inotify descriptor an event loop can watch, or ``None`` without inotify."""
        self._check_fork()
        return self._fd

    def consume(self) -> bool:
        """Read the pending events without waiting: whether a watched file changed."""
        self._check_fork()
        return self._fd is not None and self._read_events(self._fd)

    def reset(self) -> None:
        """Note activity: the next wait is short again."""
        self._delay = MIN_DELAY

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a change, at most ``timeout`` and at most the current backoff step.

        Returns:
            ``True`` if a watched file changed, ``False`` if the wait timed out.
        """
        self._check_fork()
        delay = self._delay if timeout is None else max(0.0, min(self._delay, timeout))
        self._delay = min(self._delay * 2, max(self.max_delay, MIN_DELAY))
        if self._fd is None or self._poll is None:
            time.sleep(delay)
            return False
        woke = self._wait_fd(self._fd, self._poll, delay)
        if woke:
            self._delay = MIN_DELAY
        return woke

    def _wait_fd(self, fd: int, poller: select.poll, delay: float) -> bool:
        deadline = time.monotonic() + delay
        while True:
            remaining = deadline - time.monotonic()
            if poller.poll(max(0, math.ceil(remaining * 1000))) and self._read_events(fd):
                return True
            if time.monotonic() >= deadline:
                return False

    def _read_events(self, fd: int) -> bool:
        relevant = False
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return relevant
            offset = 0
            while offset + _EVENT.size <= len(data):
                _wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                start = offset + _EVENT.size
                name = data[start : start + length].split(b"\0", 1)[0]
                offset = start + length
                if mask & _IN_Q_OVERFLOW or name.startswith(self._names):
                    relevant = True

    def close(self) -> None:
        """Release the inotify descriptor; the waker keeps working by backoff afterwards."""
        if self._closer is not None and self._pid == os.getpid():
            self._closer()
        self._fd = None
        self._poll = None
        self._use_inotify = False
