"""Running the real ``clustergrid`` command on a tiny grid and reading back what it left:
shared by the reliability tests and ``tests/benchmarks/bench_crash.py``.

Everything is read straight from the SQLite file and the cache folder, not through
clustergrid, so a bug in clustergrid's reading cannot hide one in its writing.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

#: 2 reducers x 2 k x 2 seeds = 8 combinations, a few seconds of computing
TINY = """\
name: {name}
seeds: [0, 1]
datasets:
  - plugin: digits
    n_samples: 150
encoders:
  - plugin: pixels
reducers:
  - plugin: none
  - plugin: pca
    n_components: 5
clusterers:
  - plugin: kmeans
    n_clusters: [3, 4]
    n_init: 1
metrics: [silhouette, ari]
map: null
verdict: null
cache: {cache}
executor: {{workers: {workers}}}
"""
COMBINATIONS = 8
#: generous: the machine running the tests may be busy
TIMEOUT = 600


def command() -> list[str]:
    return [str(Path(sys.executable).parent / "clustergrid")]


def write_tiny(folder: Path, name: str = "tiny", cache: Path | None = None,
               workers: int = 1, template: str = TINY) -> Path:
    """An experiment file from ``template`` (TINY unless said), cache in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(template.format(name=name, cache=cache or folder / "cache",
                                    workers=workers))
    return path


def start(experiment: Path, *args: str, cwd: Path) -> subprocess.Popen:
    """``clustergrid run`` in its own process group, as a terminal would start it."""
    return subprocess.Popen([*command(), "run", str(experiment), *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            env={**os.environ, "COLUMNS": "200"})


def run(experiment: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    process = start(experiment, *args, cwd=cwd)
    out, err = process.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def kill_after(process: subprocess.Popen, seconds: float, how: int = signal.SIGKILL,
               store: Path | None = None) -> str:
    """Send ``how`` to the run (SIGKILL: and its workers) after ``seconds``. Says when it
    struck: "ended" (the run was over), "store creation" (``store`` was being built)
    or "running"."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return "ended"
        time.sleep(0.01)
    if process.poll() is not None:
        return "ended"
    creating = store is not None and store.is_dir() and store_creation_in_progress(store)
    if how == signal.SIGKILL:
        os.killpg(process.pid, how)  # the driver and its workers, as a crash takes all
    else:
        os.kill(process.pid, how)
    process.communicate(timeout=TIMEOUT)
    return "store creation" if creating else "running"


@dataclass
class StoreState:
    #: combination hash -> number of FINISHED runs
    finished: dict[str, int]
    #: combination hash -> metrics of its (last) FINISHED run
    metrics: dict[str, dict[str, float]]
    running: int
    failed: int
    #: FINISHED combination runs missing any of their data: params, metrics, every
    #: metric's history, a labels.csv with a row per item
    incomplete: list[str]


def read_store(database: Path, items: int = 150) -> StoreState:
    """What the store holds, read with sqlite3 alone (``items``: the dataset's size)."""
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "select r.run_uuid, r.status, r.artifact_uri, t.value from runs r join tags t "
            "on t.run_uuid = r.run_uuid and t.key = 'clustergrid.hash'").fetchall()
        running = db.execute("select count(*) from runs where status = 'RUNNING'").fetchone()[0]
        metrics: dict[str, dict[str, float]] = {}
        finished: dict[str, int] = {}
        failed = 0
        incomplete = []
        for run_id, status, artifacts, key in rows:
            if status == "FAILED":
                failed += 1
            if status != "FINISHED":
                continue
            finished[key] = finished.get(key, 0) + 1
            values = db.execute("select key, value from latest_metrics where run_uuid = ? "
                                "and key not like 'time.%'", (run_id,)).fetchall()
            metrics[key] = dict(values)
            params = db.execute("select count(*) from params where run_uuid = ?",
                                (run_id,)).fetchone()[0]
            histories = {name for (name,) in db.execute(
                "select distinct key from metrics where run_uuid = ?", (run_id,))}
            labels = Path(url2pathname(urlparse(artifacts).path)) / "labels.csv"
            if not (params and values and histories >= set(metrics[key]) and labels.is_file()
                    and len(labels.read_text().splitlines()) == 1 + items):
                incomplete.append(run_id)
    return StoreState(finished, metrics, running, failed, incomplete)


def damaged_entries(cache: Path) -> list[Path]:
    """Cache entries that do not match their checksums (see clustergrid.cache)."""
    from clustergrid.cache import Cache

    store = Cache(cache)
    return [folder for folder in sorted(cache.glob("??/*"))
            if store.damage(folder.name) is not None]


def scratch_left(cache: Path) -> list[Path]:
    return sorted((cache / "tmp").glob("*")) if (cache / "tmp").is_dir() else []


def store_creation_in_progress(store: Path) -> bool:
    return any(store.glob(".mlflow.db.*.creating"))
