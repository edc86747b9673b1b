"""Damaged cache entries (truncated, missing, edited) are reported once with their path,
removed and recomputed; the store gets the values of an undamaged run."""

from __future__ import annotations

import json

import harness
import numpy as np
import pytest


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    """A cache and the values logged from it, once for every test here."""
    folder = tmp_path_factory.mktemp("computed")
    result = harness.run(harness.write_tiny(folder), cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "cache", harness.read_store(folder / "clustergrid-runs" / "mlflow.db")


def entries(cache, stage_file):
    """Entries holding ``stage_file`` (labels.npy: the clusterings, not the dataset)."""
    return sorted(path.parent for path in cache.glob(f"??/*/{stage_file}")
                  if not (path.parent / "images.npy").exists())


def truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def edit_metric(path):
    meta = json.loads(path.read_text())
    name = next(iter(meta["metrics"]))
    meta["metrics"][name] = 0.999
    path.write_text(json.dumps(meta))


def zero_labels(path):
    labels = np.load(path)
    np.save(path, np.zeros_like(labels))


#: kind of damage -> (a file that marks the entries to damage, the file damaged, how)
DAMAGE = {
    "truncated array": ("X.npy", "X.npy", truncate),
    "missing meta.json": ("labels.npy", "meta.json", lambda path: path.unlink()),
    "truncated meta.json": ("labels.npy", "meta.json", truncate),
    "edited metric": ("confusion.npy", "meta.json", edit_metric),
    "zeroed labels": ("labels.npy", "labels.npy", zero_labels),
    "missing checksums": ("labels.npy", "checksums.json", lambda path: path.unlink()),
}


def test_damaged_entries_are_reported_once_removed_and_recomputed(tmp_path, computed):
    """Every kind of damage at once, each to its own entry, in one run."""
    import shutil

    source, reference = computed
    cache = tmp_path / "cache"
    shutil.copytree(source, cache)
    damaged = {}
    for marker, victim, spoil in DAMAGE.values():
        entry = next(e for e in entries(cache, marker) if e not in damaged)
        spoil(entry / victim)
        damaged[entry] = victim
    assert len(damaged) == len(DAMAGE)
    # A new store over the damaged cache: every combination is logged from the cache.
    result = harness.run(harness.write_tiny(tmp_path, cache=cache), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    reports = sorted(line for line in result.stderr.splitlines()
                     if "damaged cache entry" in line)
    assert len(reports) == len(DAMAGE)
    for line, entry in zip(reports, sorted(damaged), strict=True):
        assert line.startswith(f"damaged cache entry {entry}: ")
    state = harness.read_store(tmp_path / "clustergrid-runs" / "mlflow.db")
    assert state.metrics == reference.metrics
    assert harness.damaged_entries(cache) == []
