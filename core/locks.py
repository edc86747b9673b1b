"""Inter-process locks: one around creating or migrating a store, one per experiment.

Locks are ``filelock`` locks (``flock`` on POSIX): the kernel releases them when their
process dies, even by ``kill -9``, so a crash never leaves a lock behind. A small
``.holder`` file next to each lock says who holds it, so a refused run can name them.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clustergrid.errors import ClustergridError


class LockedError(ClustergridError):
    """Another live process holds the lock this run needs."""


@contextmanager
def held(path: Path, what: str, wait: bool = True) -> Iterator[None]:
    """Hold the lock at ``path`` for the block. ``wait=False`` refuses at once, with one
    line naming ``what`` is locked and by whom, instead of waiting for the holder."""
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        raise LockedError(f"{what} is in use by {holder(path)} (lock {path}); wait for it "
                          "to end, or run again with --wait") from None
    holder_file = _holder_file(path)
    try:
        holder_file.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                           "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        yield
    finally:
        holder_file.unlink(missing_ok=True)
        lock.release()


def holder(path: Path) -> str:
    """Who holds the lock at ``path``, as the holder wrote it."""
    try:
        info = json.loads(_holder_file(path).read_text())
        return f"process {info['pid']} on {info['host']} (since {info['since']})"
    except (OSError, ValueError, KeyError):
        return "another process"  # it has just taken the lock, or is just leaving it


def _holder_file(path: Path) -> Path:
    return path.with_name(path.name + ".holder")


def alive(pid: str | int | None) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid is None or not str(pid).isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
