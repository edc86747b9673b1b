"""Content-addressed, crash-safe storage of step outputs.

An entry is a folder named by the step key holding ``.npy`` arrays and ``meta.json``.
It is written under ``tmp/`` and renamed into place only once complete, so a crash never
leaves a half-written entry, and a present entry is never recomputed. Arrays are loaded
with ``allow_pickle=False``; large ones can be memory-mapped.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


class Cache:
    """Step outputs on disk, keyed by step key."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def has(self, key: str) -> bool:
        return self.path(key).is_dir()

    @contextmanager
    def writer(self, key: str) -> Iterator[Path]:
        """A scratch folder to write an entry into; it becomes the entry on success."""
        scratch = self.root / "tmp" / f"{key}-{uuid.uuid4().hex[:8]}"
        scratch.mkdir(parents=True)
        try:
            yield scratch
            final = self.path(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(scratch, final)
            except OSError:
                if not final.is_dir():
                    raise
                # Another worker finished the same step first; its entry is identical.
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def load(self, key: str, name: str, mmap: bool = False) -> np.ndarray:
        return np.load(
            self.path(key) / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False
        )

    def contains(self, key: str, name: str) -> bool:
        return (self.path(key) / f"{name}.npy").is_file()

    def meta(self, key: str) -> dict[str, Any]:
        return json.loads((self.path(key) / "meta.json").read_text())


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)
