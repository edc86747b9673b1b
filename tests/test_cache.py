"""The step cache: entries appear whole or not at all, and never unpickle."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from clustergrid.cache import CHECKSUMS, Cache, write_meta


def save(cache: Cache, key: str, arrays: dict, meta: dict) -> None:
    with cache.writer(key) as folder:
        for name, array in arrays.items():
            np.save(folder / f"{name}.npy", array)
        write_meta(folder, meta)


def test_an_entry_round_trips_arrays_and_metadata(tmp_path):
    cache = Cache(tmp_path)
    X = np.arange(12, dtype=np.float32).reshape(3, 4)
    save(cache, "abcdef", {"X": X, "ids": np.array(["a", "b", "c"])}, {"wall_time": 1.5})
    assert cache.has("abcdef")
    assert np.array_equal(cache.load("abcdef", "X"), X)
    assert cache.load("abcdef", "ids").tolist() == ["a", "b", "c"]
    assert isinstance(cache.load("abcdef", "X", mmap=True), np.memmap)
    assert cache.meta("abcdef") == {"wall_time": 1.5}


def test_a_crash_while_writing_leaves_no_entry_and_no_scratch(tmp_path):
    cache = Cache(tmp_path)
    with pytest.raises(RuntimeError), cache.writer("abcdef") as folder:
        np.save(folder / "X.npy", np.ones(3))
        raise RuntimeError("killed mid-write")
    assert not cache.has("abcdef")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_concurrent_duplicate_write_keeps_the_first_entry(tmp_path):
    cache = Cache(tmp_path)
    with cache.writer("abcdef") as first:
        np.save(first / "X.npy", np.zeros(2))
        save(cache, "abcdef", {"X": np.ones(2)}, {})  # another worker finishes first
    assert cache.load("abcdef", "X").tolist() == [1.0, 1.0]


def test_pickled_arrays_are_refused(tmp_path):
    cache = Cache(tmp_path)
    entry = cache.path("abcdef")
    entry.mkdir(parents=True)
    np.save(entry / "X.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        cache.load("abcdef", "X")


def test_an_entry_carries_the_checksum_of_every_file(tmp_path):
    cache = Cache(tmp_path)
    save(cache, "abcdef", {"X": np.ones(3)}, {"metrics": {"ari": 0.5}})
    checksums = json.loads((cache.path("abcdef") / CHECKSUMS).read_text())
    assert sorted(checksums) == ["X.npy", "meta.json"]
    assert cache.damage("abcdef") is None and cache.valid("abcdef")


@pytest.mark.parametrize("spoil,problem", [
    (lambda e: (e / "X.npy").write_bytes((e / "X.npy").read_bytes()[:20]),
     "X.npy does not match its checksum"),
    (lambda e: (e / "meta.json").unlink(), "missing meta.json"),
    (lambda e: (e / "meta.json").write_text('{"metrics": {"ari": 0.9}}'),
     "meta.json does not match its checksum"),
    (lambda e: (e / CHECKSUMS).unlink(),
     f"no {CHECKSUMS} (incomplete, or written before entries were checksummed)"),
    (lambda e: (e / CHECKSUMS).write_text("{"), f"{CHECKSUMS} unreadable (Expecting "
     "property name enclosed in double quotes: line 1 column 2 (char 1))"),
    (lambda e: (e / "extra.npy").write_bytes(b""), "unexpected extra.npy"),
])
def test_a_damaged_entry_is_named_reported_once_and_removed(tmp_path, caplog, spoil,
                                                             problem):
    cache = Cache(tmp_path)
    save(cache, "abcdef", {"X": np.ones(3)}, {"metrics": {"ari": 0.5}})
    spoil(cache.path("abcdef"))
    assert Cache(tmp_path).damage("abcdef") == problem
    fresh = Cache(tmp_path)  # a new run: nothing verified yet
    with caplog.at_level("WARNING", logger="clustergrid"):
        assert not fresh.valid("abcdef")
        assert not fresh.valid("abcdef")
    assert [r.getMessage() for r in caplog.records] == [
        f"damaged cache entry {cache.path('abcdef')}: {problem}; it is removed and "
        "computed again"]
    assert not cache.has("abcdef")


def test_scratch_folders_of_dead_processes_are_removed(tmp_path):
    import subprocess
    import sys

    cache = Cache(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with cache.writer("abcdef") as live:
        orphan = live.with_name(live.name.replace(f".{os.getpid()}.", f".{dead}."))
        orphan.mkdir()
        assert cache.clean_scratch() == [orphan]
        assert live.is_dir() and not orphan.exists()
