"""The step cache: entries appear whole or not at all, and never unpickle."""

from __future__ import annotations

import numpy as np
import pytest

from clustergrid.cache import Cache, write_meta


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
