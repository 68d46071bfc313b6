"""Worker processes that never outlive the process that started them.

A cache-builder worker blocks on a pipe between shards; if its parent is killed
(``SIGKILL``, OOM killer) nothing closes that pipe and the worker would wait forever,
holding its memory. :func:`die_with_parent` (the pool's initializer) makes the kernel
kill the worker with its parent (Linux ``PR_SET_PDEATHSIG``) and, everywhere, starts a
watchdog thread that exits the worker once its parent process is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL = 0.5  # seconds


def _kernel_kills_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watchdog still covers it


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL)
    os._exit(1)


def die_with_parent() -> None:
    """Initializer of a worker process: end it when the process that started it ends."""
    parent = os.getppid()
    _kernel_kills_with_parent()
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="die-with-parent").start()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process."""
    return ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent)
