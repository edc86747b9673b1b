"""kill -9 at random moments of a 48-combination grid, concurrent runs and tampered cache
entries, against the real ``clustergrid run``; prints the tables the README shows.

Run as a script (not collected by pytest)::

    python tests/benchmarks/bench_crash.py --trials 20

Each kill trial starts a run on a new store and cache, kills the run and its workers
(SIGKILL to the process group) at a moment drawn uniformly from its own stratum of an
uninterrupted run's wall time (trial i of n: [i/n, (i+1)/n) of it, so the early moments
are always covered; ``--creation-trials N`` adds N kills each made while the store's
scratch file exists, i.e. during store creation), then runs the same file again to the end
and checks: the store opens (the second run exits 0); no combination has more than one
FINISHED run; nothing is left RUNNING; no scratch folder is left; every cache entry
matches its checksums; and the logged values equal an uninterrupted run's with the same
number of workers (even trials 1 worker, odd trials 2). The harness is
``tests/reliability/harness.py``, shared with the CI-sized tests.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

import harness

#: 2 encoders x 2 reducers x 3 k x 4 seeds = 48 combinations
GRID = """\
name: {name}
seeds: [0, 1, 2, 3]
datasets:
  - plugin: digits
    n_samples: 300
encoders:
  - plugin: pixels
    downsample: [1, 2]
reducers:
  - plugin: none
  - plugin: pca
    n_components: 5
clusterers:
  - plugin: kmeans
    n_clusters: [3, 4, 5]
    n_init: 1
metrics: [silhouette, ari]
map: null
verdict: null
cache: {cache}
executor: {{workers: {workers}}}
"""
COMBINATIONS = 48


def store_of(folder: Path) -> Path:
    return folder / "clustergrid-runs"


def reference(root: Path, workers: int) -> tuple[dict, float]:
    folder = root / f"reference-{workers}"
    started = time.monotonic()
    result = harness.run(harness.write_tiny(folder, "grid", workers=workers, template=GRID),
                         cwd=folder)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"the uninterrupted run failed:\n{result.stderr}")
    state = harness.read_store(store_of(folder) / "mlflow.db")
    assert len(state.finished) == COMBINATIONS, len(state.finished)
    return state.metrics, elapsed


def kill_trial(root: Path, trial: int, trials: int, workers: int, values: dict,
               duration: float, during_creation: bool = False) -> dict:
    folder = root / f"trial-{trial}"
    experiment = harness.write_tiny(folder, "grid", workers=workers, template=GRID)
    process = harness.start(experiment, cwd=folder)
    if during_creation:  # wait for the store's scratch file, then kill at once
        started = time.monotonic()
        while not (store_of(folder).is_dir()
                   and harness.store_creation_in_progress(store_of(folder))):
            if process.poll() is not None:
                raise SystemExit("the run ended before its store was seen being created")
            time.sleep(0.005)
        moment = time.monotonic() - started
        phase = harness.kill_after(process, 0.0, store=store_of(folder))
    else:
        moment = duration * (trial + random.random()) / trials
        phase = harness.kill_after(process, moment, store=store_of(folder))
    database = store_of(folder) / "mlflow.db"
    logged = len(harness.read_store(database).finished) if database.is_file() else 0
    again = harness.run(experiment, cwd=folder)
    row = {"trial": trial, "workers": workers, "kill_at_s": round(moment, 1), "phase": phase,
           "logged_before": logged, "next_run_exit": again.returncode}
    try:
        state = harness.read_store(database)
    except Exception as exc:  # an unusable store is a result, not a crash of the bench
        return {**row, "unusable_store": 1, "error": str(exc)}
    row.update(
        unusable_store=int(again.returncode != 0),
        more_than_one_finished=sum(count > 1 for count in state.finished.values()),
        running_after_next_run=state.running,
        damaged_entries=len(harness.damaged_entries(folder / "cache")),
        scratch_left=len(harness.scratch_left(folder / "cache")),
        identical=state.metrics == values,
    )
    shutil.rmtree(folder, ignore_errors=True)
    return row


def concurrent_first_runs(root: Path) -> list[dict]:
    rows = []
    folder = root / "same"
    experiment = harness.write_tiny(folder, "grid", template=GRID)
    processes = [harness.start(experiment, "--wait", cwd=folder) for _ in range(2)]
    codes = [(p.communicate(timeout=harness.TIMEOUT), p.returncode)[1] for p in processes]
    counts = harness.read_store(store_of(folder) / "mlflow.db").finished
    rows.append({"case": "same experiment, --wait", "exit codes": codes,
                 "combinations": len(counts), "each logged once": set(counts.values()) == {1}})
    folder = root / "different"
    paths = [harness.write_tiny(folder, name, cache=folder / "cache", template=GRID)
             for name in ("grid-a", "grid-b")]
    processes = [harness.start(path, cwd=folder) for path in paths]
    codes = [(p.communicate(timeout=harness.TIMEOUT), p.returncode)[1] for p in processes]
    counts = harness.read_store(store_of(folder) / "mlflow.db").finished
    # The two files are one grid under two names: each hash once per experiment.
    rows.append({"case": "two experiments, one new store", "exit codes": codes,
                 "combinations": len(counts), "each logged once": set(counts.values()) == {2}})
    return rows


def tampered(root: Path, values: dict) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
    from test_damaged_cache import DAMAGE, entries

    source = root / "reference-1" / "cache"
    rows = []
    for damage, (marker, victim, spoil) in DAMAGE.items():
        folder = root / f"tamper-{damage.replace(' ', '-')}"
        cache = folder / "cache"
        shutil.copytree(source, cache)
        entry = entries(cache, marker)[0]
        spoil(entry / victim)
        result = harness.run(harness.write_tiny(folder, "grid", cache=cache, template=GRID),
                             cwd=folder)
        state = harness.read_store(store_of(folder) / "mlflow.db")
        reports = [line for line in result.stderr.splitlines()
                   if f"damaged cache entry {entry}" in line]
        rows.append({"damage": damage, "file": victim, "exit": result.returncode,
                     "reported": len(reports), "recomputed": not harness.damaged_entries(cache),
                     "values identical": state.metrics == values})
    return rows


def table(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row.get(key, "")) for key in header) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20,
                        help="kills at random moments, one per stratum of the run")
    parser.add_argument("--creation-trials", type=int, default=0,
                        help="more kills, each while the store is being created")
    parser.add_argument("--skip-others", action="store_true",
                        help="only the kill trials: no concurrent or tampered runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args()
    random.seed(args.seed)
    root = Path(tempfile.mkdtemp(prefix="bench-crash-"))
    try:
        references = {workers: reference(root, workers) for workers in (1, 2)}
        rows = []
        for trial in range(args.trials + args.creation_trials):
            workers = 1 + trial % 2
            values, duration = references[workers]
            rows.append(kill_trial(root, trial, args.trials, workers, values, duration,
                                   during_creation=trial >= args.trials))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
        totals = {
            "trials": len(rows),
            "killed during store creation": sum(r["phase"] == "store creation" for r in rows),
            "killed later": sum(r["phase"] == "running" for r in rows),
            "run over before the kill": sum(r["phase"] == "ended" for r in rows),
            "unusable stores": sum(r["unusable_store"] for r in rows),
            "combinations with >1 FINISHED": sum(r.get("more_than_one_finished", 0)
                                                 for r in rows),
            "runs RUNNING after the next run": sum(r.get("running_after_next_run", 0)
                                                   for r in rows),
            "damaged entries left": sum(r.get("damaged_entries", 0) for r in rows),
            "scratch folders left": sum(r.get("scratch_left", 0) for r in rows),
            "final values identical": sum(bool(r.get("identical")) for r in rows),
        }
        skip = args.skip_others
        concurrent = [] if skip else concurrent_first_runs(root)
        tamper = [] if skip else tampered(root, references[1][0])
        print("\n## kill -9 trials\n")
        print(table(rows))
        print("\n" + table([totals]))
        print(f"\nuninterrupted run: {references[1][1]:.1f} s (1 worker), "
              f"{references[2][1]:.1f} s (2 workers)")
        if not skip:
            print("\n## concurrent first runs\n")
            print(table(concurrent))
            print("\n## tampered cache entries\n")
            print(table(tamper))
        if args.json:
            args.json.write_text(json.dumps({"trials": rows, "totals": totals,
                                             "concurrent": concurrent, "tampered": tamper},
                                            indent=1, default=str))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
