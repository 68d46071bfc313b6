"""One writer per output: an exclusive lock file next to the output, held while a command
produces it, so that two runs writing the same output cannot interleave."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from .errors import UsageError

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not POSIX: exclusive creation of the lock file instead
    fcntl = None


def lock_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.lock")


def _busy(output: Path, lock: Path) -> UsageError:
    holder = ""
    with contextlib.suppress(OSError, ValueError):
        holder = f" (pid {int(lock.read_text().strip())})"
    return UsageError(
        f"{output} is being written by another crysgnn-dgl process{holder}; wait for it to finish "
        f"or choose another output (if no such process runs, delete {lock})"
    )


def _acquire(output: Path, lock: Path) -> int:
    while True:
        if fcntl is None:
            try:
                return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise _busy(output, lock) from None
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise _busy(output, lock) from None
        try:  # the previous holder may have removed the file we locked: lock the new one
            if os.fstat(descriptor).st_ino == os.stat(lock).st_ino:
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)


@contextlib.contextmanager
def exclusive_output(output: str | os.PathLike) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``output`` (its folder must exist); another holder
    makes this raise :class:`UsageError` at once. The lock file is removed on exit."""
    output = Path(output)
    lock = lock_path(output)
    descriptor = _acquire(output, lock)
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, str(os.getpid()).encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(descriptor)
