"""Content-addressed, crash-safe storage of step outputs.

An entry is a folder named by the step key holding ``.npy`` arrays, ``meta.json`` and
``checksums.json`` (the SHA-256 of every other file). It is written under ``tmp/`` and
renamed into place only once complete, so a crash never leaves a half-written entry, and
a present entry is never recomputed. Before an entry is used it is checked against its
checksums, once per process: a damaged, truncated or incomplete entry (a disk error, a
copy cut short, a hand edit) is reported once with its path, removed and recomputed, and
never used as a result. Arrays are loaded with ``allow_pickle=False``; large ones can be
memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from clustergrid.locks import alive

#: the file listing the checksum of every other file of an entry
CHECKSUMS = "checksums.json"
#: scratch folders that cannot be traced to a process are removed after this long
_UNTRACEABLE_SCRATCH_AGE = 24 * 3600

log = logging.getLogger("clustergrid")


class Cache:
    """Step outputs on disk, keyed by step key."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        #: keys whose entry matched its checksums in this process
        self._verified: set[str] = set()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def has(self, key: str) -> bool:
        """Whether an entry exists (cheap; ``valid`` also checks it is intact)."""
        return self.path(key).is_dir()

    def valid(self, key: str) -> bool:
        """Whether an intact entry exists. A damaged one is reported, removed (so the step
        is computed again) and answered False."""
        if key in self._verified:
            return True
        if not self.has(key):
            return False
        problem = self.damage(key)
        if problem is None:
            self._verified.add(key)
            return True
        log.warning("damaged cache entry %s: %s; it is removed and computed again",
                    self.path(key), problem)
        self.discard(key)
        return False

    def damage(self, key: str) -> str | None:
        """What is wrong with an entry, or None when every file matches its checksum."""
        entry = self.path(key)
        try:
            expected = json.loads((entry / CHECKSUMS).read_text())
        except FileNotFoundError:
            return f"no {CHECKSUMS} (incomplete, or written before entries were checksummed)"
        except (OSError, ValueError) as exc:
            return f"{CHECKSUMS} unreadable ({exc})"
        if not isinstance(expected, dict):
            return f"{CHECKSUMS} unreadable (not a mapping)"
        found = {name for name in _files(entry) if name != CHECKSUMS}
        if missing := sorted(set(expected) - found):
            return f"missing {', '.join(missing)}"
        if extra := sorted(found - set(expected)):
            return f"unexpected {', '.join(extra)}"
        for name, digest in sorted(expected.items()):
            if _digest(entry / name) != digest:
                return f"{name} does not match its checksum"
        return None

    def discard(self, key: str) -> None:
        """Remove an entry; it disappears at once (a rename), then its files go."""
        doomed = self._scratch(f"discard-{key}")
        try:
            os.rename(self.path(key), doomed)
        except FileNotFoundError:
            return  # another process removed it first
        shutil.rmtree(doomed, ignore_errors=True)
        self._verified.discard(key)

    @contextmanager
    def writer(self, key: str) -> Iterator[Path]:
        """A scratch folder to write an entry into; it becomes the entry on success."""
        scratch = self._scratch(key)
        scratch.mkdir(parents=True)
        try:
            yield scratch
            _write_checksums(scratch)
            final = self.path(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(scratch, final)
            except OSError:
                if not final.is_dir():
                    raise
                # Another worker finished the same step first; its entry is identical.
            else:
                self._verified.add(key)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _scratch(self, name: str) -> Path:
        # The owner's process id and host name let a later run remove what a killed one
        # left behind (see clean_scratch).
        return self.root / "tmp" / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}@{_host()}"

    def clean_scratch(self) -> list[Path]:
        """Remove scratch folders whose process is dead; returns what was removed."""
        removed = []
        for folder in sorted((self.root / "tmp").glob("*")):
            owner, _, host = folder.name.rpartition("@")
            pid = owner.split(".")[-2] if owner.count(".") >= 2 else None
            if host == _host() and pid is not None:
                dead = not alive(pid)
            else:  # another machine's, or an older name: only when clearly abandoned
                try:
                    dead = time.time() - folder.stat().st_mtime > _UNTRACEABLE_SCRATCH_AGE
                except FileNotFoundError:
                    continue
            if dead:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        return removed

    def load(self, key: str, name: str, mmap: bool = False) -> np.ndarray:
        path = self.path(key) / f"{name}.npy"
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise
            # Damaged after it was checked: name the file, not only numpy's complaint.
            raise ValueError(f"{path}: {exc}") from exc

    def contains(self, key: str, name: str) -> bool:
        return (self.path(key) / f"{name}.npy").is_file()

    def meta(self, key: str) -> dict[str, Any]:
        return json.loads((self.path(key) / "meta.json").read_text())


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, default=_plain))


def _write_checksums(folder: Path) -> None:
    checksums = {name: _digest(folder / name) for name in _files(folder)}
    (folder / CHECKSUMS).write_text(json.dumps(checksums, indent=1, sort_keys=True))


def _files(folder: Path) -> list[str]:
    """Every file under ``folder``, as a POSIX path relative to it."""
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*")
                  if path.is_file())


def _digest(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _host() -> str:
    # '@' separates the host in scratch names; keep names portable.
    return socket.gethostname().replace("@", "_").replace("/", "_")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)
