"""The sandbox pool of this process: the classroom driver makes one and lends it to nbgrader's SandboxExecute
(use()); a plain `nbgrader autograde` gets one started on first use and stopped at exit (get())."""

from __future__ import annotations

import atexit
import threading

from .sandbox import Pool

_lock = threading.Lock()
_pool = None


def use(pool):
    """Make `pool` the one SandboxExecute uses (None: forget it)."""
    global _pool
    with _lock:
        _pool = pool


def get(size=1, unsafe_no_sandbox=False):
    """The pool in use, or a new one of `size` slots (started now, stopped when the process exits)."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = Pool(size, unsafe_no_sandbox=unsafe_no_sandbox).start()
            atexit.register(_pool.stop)
        return _pool
