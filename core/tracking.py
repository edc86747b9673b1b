"""Everything clustergrid writes to and reads from MLflow; only the driver process calls it.

Layout: one MLflow experiment per experiment name; one parent run per invocation of
``clustergrid run``; one child run per combination, tagged ``clustergrid.hash`` with its
config hash. Resuming skips combinations whose hash already has a FINISHED run.

The store (``clustergrid.locations`` says which) is by default a project-local folder
(``./clustergrid-runs/``) holding the SQLite
database and the artifacts, or the store ``$CLUSTERGRID_TRACKING_URI`` names; it is
created here, by the driver, before any worker starts.
Creating a SQLite store takes a second of schema migrations, so it is built in a temporary
file under an inter-process lock and renamed into place once complete: a crash or a
concurrent first run never leaves a half-built store. One found anyway (made by an older
version) is set aside and rebuilt when it holds no runs, and refused in one line otherwise.

A combination's run is never FINISHED with part of its data: its artifacts go into
the run's folder (straight into it when the folder is local) and its params, metrics and
tags through MLflow's client, and the status is set last, once every other call
succeeded. A crash in between leaves a RUNNING run, which resuming does not count as
done and the next run marks KILLED. Only MLflow's public API is used: a run written
straight into MLflow's tables in one transaction saved 1.7 % of a grid of a few seconds
per combination (tests/benchmarks/bench_tracking.py at commit 5b4701e; 2.0 s of 104 s
over 27 combinations), not worth depending on tables MLflow may change.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clustergrid.errors import ClustergridError, listing
from clustergrid.locations import resolve_uri, sqlite_path, store_exists
from clustergrid.locks import alive, held
from clustergrid.names import canonical
from clustergrid.record import (
    PARENT_TAG,
    TAG_HASH,
    TAG_HOST,
    TAG_KIND,
    TAG_PID,
    Record,
    step_folder,
)

# MLflow limits per log_batch call.
_BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}


class Tracker:
    """The MLflow side of one experiment."""

    def __init__(self, uri: str | None, experiment: str, create: bool = True):
        from mlflow.tracking import MlflowClient

        _quiet_mlflow()

        self.uri = resolve_uri(uri)
        self.experiment_name = experiment
        #: the invocation runs this tracker started -> their local artifact folder, or None
        self._artifact_folders: dict[str, Path | None] = {}
        database = sqlite_path(self.uri)
        if database is None or not create:
            # A server, or a reader (results, report): nothing to create or repair, so
            # no lock, which a read-only store would not let it take.
            if database is not None and not database.is_file():
                raise ClustergridError(f"no MLflow store at {database}")
            try:
                with _silenced("mlflow", "alembic", "sqlalchemy"):
                    self.client = MlflowClient(tracking_uri=self.uri)
            except Exception as exc:
                raise ClustergridError(f"cannot open the MLflow store at {self.uri}: "
                                       f"{_first_line(exc)}") from None
            self.experiment_id = self._experiment_id(create)
            return
        # Creation, migration and the experiment's creation happen once, under the
        # store's lock; a second process waits for the first, then finds it all done.
        with held(database.with_name(database.name + ".lock"), f"the store {database}"):
            if not database.is_file():
                _create_sqlite_store(database)
            try:
                # MLflow logs its own traceback before raising: the repair says it all.
                with _silenced("mlflow", "alembic", "sqlalchemy"):
                    self.client = MlflowClient(tracking_uri=self.uri)  # opens the store
                    self.client.get_experiment_by_name(experiment)
            except Exception as exc:
                _repair_half_built(database, exc)
                self.client = MlflowClient(tracking_uri=self.uri)
            self.experiment_id = self._experiment_id(create)

    def _experiment_id(self, create: bool) -> str:
        try:
            found = self.client.get_experiment_by_name(self.experiment_name)
        except Exception as exc:
            raise ClustergridError(f"cannot reach the MLflow store at {self.uri}: "
                                   f"{_first_line(exc)}") from None
        if found is not None:
            return found.experiment_id
        if not create:
            raise ClustergridError(f"no experiment named '{self.experiment_name}' in "
                                   f"{self.uri}; {self._held()}")
        try:
            return self.client.create_experiment(
                self.experiment_name,
                artifact_location=self._artifact_location(self.experiment_name))
        except Exception:
            # A tracking server has no lock of ours: another client may have created it
            # between the two calls.
            found = self.client.get_experiment_by_name(self.experiment_name)
            if found is None:
                raise
            return found.experiment_id

    def _held(self) -> str:
        """What the store holds, for a message naming an experiment it does not."""
        try:
            names = sorted(e.name for e in self.client.search_experiments()
                           if e.name != "Default")  # MLflow's own, never ours
        except Exception as exc:
            return f"its experiments cannot be listed ({_first_line(exc)})"
        if not names:
            return "it holds no experiments"
        return f"it holds {listing(names)}"

    def _artifact_location(self, experiment: str) -> str | None:
        # A SQLite store would otherwise put artifacts in ./mlruns of whatever the cwd is.
        if self.uri.startswith("sqlite:///"):
            folder = Path(self.uri.removeprefix("sqlite:///")).parent
            return (folder / "artifacts" / experiment).as_uri()
        return None

    def runs(self, filter_string: str = "") -> Iterator[Any]:
        """Every run of the experiment matching ``filter_string``, following pagination."""
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string=filter_string, max_results=1000,
                page_token=token,
            )
            yield from page
            token = page.token
            if not token:
                return

    def combination_runs(self, status: str | None = None) -> list[Any]:
        query = f"tags.`{TAG_KIND}` = 'combination'"
        if status:
            query += f" and attributes.status = '{status}'"
        return list(self.runs(query))

    def invocation_runs(self) -> list[Any]:
        """The runs of each ``clustergrid run`` of the experiment, oldest first."""
        return sorted(self.runs(f"tags.`{TAG_KIND}` = 'invocation'"),
                      key=lambda run: run.info.start_time)

    def step_files(self, wanted: dict[tuple[str, str], str], folder: str,
                   invocations: list[Any] | None = None) -> dict[tuple[str, str], Path]:
        """Download the shared steps' files: ``(stage, key) -> name`` gives the file each
        step logged (see ``step_folder``), taken from the oldest invocation holding it.
        Steps no invocation logged (such as a failed map) are absent from the result.
        A store on this machine's files are read where they lie: read them, never change
        them."""
        found: dict[tuple[str, str], Path] = {}
        for number, run in enumerate(invocations or self.invocation_runs()):
            missing = {step: name for step, name in wanted.items() if step not in found}
            if not missing:
                break
            local = _local_folder(run.info.artifact_uri)
            if local is not None:
                for (stage, key), name in missing.items():
                    if (local / step_folder(stage, key) / name).is_file():
                        found[stage, key] = local / step_folder(stage, key) / name
                continue
            run_id = run.info.run_id
            logged = {a.path for a in self.client.list_artifacts(run_id, "steps")}
            for (stage, key), name in missing.items():
                if step_folder(stage, key) in logged:
                    # A folder per step: steps' files share names (thumbnails.npz).
                    target = Path(folder, str(number), step_folder(stage, key))
                    target.mkdir(parents=True, exist_ok=True)
                    found[stage, key] = Path(self.client.download_artifacts(
                        run_id, f"{step_folder(stage, key)}/{name}", str(target)))
        return found

    def finished_hashes(self) -> set[str]:
        return {
            run.data.tags[TAG_HASH] for run in self.combination_runs("FINISHED")
            if TAG_HASH in run.data.tags
        }

    def mark_abandoned_runs_killed(self) -> int:
        """Runs left RUNNING by a process that no longer exists become KILLED."""
        killed = 0
        for run in self.runs("attributes.status = 'RUNNING'"):
            tags = run.data.tags
            if tags.get(TAG_HOST) == socket.gethostname() and alive(tags.get(TAG_PID)):
                continue  # a live invocation on this machine still owns it
            self.client.set_terminated(run.info.run_id, status="KILLED")
            killed += 1
        return killed

    def start_invocation(self, params: dict[str, Any], tags: dict[str, str]) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{self.experiment_name} {time.strftime('%Y-%m-%d %H:%M:%S')}",
            tags={TAG_KIND: "invocation", TAG_HOST: socket.gethostname(),
                  TAG_PID: str(os.getpid()), **tags},
        )
        self._artifact_folders[run.info.run_id] = _local_folder(run.info.artifact_uri)
        self.log(run.info.run_id, params=params)
        return run.info.run_id

    def log_combination(self, parent: str, record: Record) -> str:
        """One finished (or failed) combination (``record.combination_record``) as a
        complete child run of ``parent``. The run is FINISHED (or FAILED) only once all
        of it is stored: see the module's docstring."""
        tags = {TAG_KIND: "combination", PARENT_TAG: parent, **record.tags}
        run = self.client.create_run(self.experiment_id, run_name=record.name, tags=tags)
        run_id = run.info.run_id
        self.log(run_id, params=record.params, metrics=record.metrics)
        self._store_artifacts(run_id, _local_folder(run.info.artifact_uri), record.texts,
                              record.files)
        self.client.set_terminated(run_id, status=record.status)
        return run_id

    def _store_artifacts(self, run_id: str, local: Path | None, texts: dict[str, str],
                         files: dict[str, Path]) -> None:
        """``texts`` and ``files`` as artifacts of the run, keyed by their path in it:
        straight into ``local``, its artifact folder on this machine, when known, else
        through MLflow's client."""
        if local is not None:
            _write_artifacts(local, texts, files)
            return
        for artifact_file, text in texts.items():
            self.client.log_text(run_id, text, artifact_file)
        for artifact_file, path in files.items():
            folder = str(Path(artifact_file).parent)
            self.client.log_artifact(run_id, str(path), None if folder == "." else folder)

    def log(self, run_id: str, params: dict[str, Any] | None = None,
            metrics: dict[str, float | list[float]] | None = None,
            tags: dict[str, str] | None = None) -> None:
        """Params, metrics (a list logs one value per step) and tags, in few calls."""
        entries = _entries(params or {}, metrics or {}, tags or {}, int(time.time() * 1000))
        while any(entries.values()):
            chunk = {kind: items[: _BATCH_LIMITS[kind]] for kind, items in entries.items()}
            entries = {kind: items[_BATCH_LIMITS[kind]:] for kind, items in entries.items()}
            self.client.log_batch(run_id, **chunk)

    def log_file(self, run_id: str, path: Path, folder: str | None = None) -> None:
        """``path`` as an artifact of the run, in ``folder``: copied straight into the
        run's artifact folder when it is local and known (an invocation this tracker
        started)."""
        self._store_artifacts(run_id, self._artifact_folders.get(run_id), {},
                              {f"{folder}/{path.name}" if folder else path.name: path})

    def end_invocation(self, run_id: str, status: str, tags: dict[str, str],
                       texts: dict[str, str] | None = None) -> Path | None:
        """End an invocation this tracker started, with its last tags and files; the
        folder its files lie in on this machine, None for a store elsewhere."""
        self.log(run_id, tags=tags)
        self._store_artifacts(run_id, self._artifact_folders.get(run_id), texts or {}, {})
        self.client.set_terminated(run_id, status=status)
        return self._artifact_folders.pop(run_id, None)


def run_files(client: Any, run: Any, scratch: str) -> Path:
    """The folder holding ``run``'s artifacts: where they lie, for a store on this
    machine's files (read them, never change them); else downloaded under ``scratch``."""
    local = _local_folder(run.info.artifact_uri)
    if local is not None:
        return local
    run_id = run.info.run_id
    return Path(client.download_artifacts(run_id, "", f"{scratch}/{run_id}"))


def _entries(params: dict[str, Any], metrics: dict[str, float | list[float]],
             tags: dict[str, str], timestamp: int) -> dict[str, list]:
    """MLflow entities of params, metrics (a list is one value per step) and tags."""
    from mlflow.entities import Metric, Param, RunTag

    return {
        "params": [Param(k, _text(v)) for k, v in params.items()],
        "tags": [RunTag(k, str(v)) for k, v in tags.items()],
        "metrics": [
            Metric(key, float(value), timestamp, step)
            for key, values in metrics.items()
            for step, value in enumerate(values if isinstance(values, list) else [values])
        ],
    }


def _local_folder(artifact_uri: str) -> Path | None:
    """The folder of an artifact location on this machine's file system (a SQLite store's
    artifacts), as MLflow's own repository for it writes there; None elsewhere."""
    from urllib.parse import urlparse

    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    if urlparse(artifact_uri).scheme not in ("", "file"):
        return None  # a server's (mlflow-artifacts:, http:) or a cloud bucket's
    repository = get_artifact_repository(artifact_uri)
    return Path(repository.artifact_dir) if isinstance(repository, LocalArtifactRepository) \
        else None


def _write_artifacts(folder: Path, texts: dict[str, str], files: dict[str, Path]) -> None:
    """Artifacts written straight into a run's local artifact folder, as MLflow's
    ``log_text`` and ``log_artifact`` would, without their temporary copies and lookups."""
    for artifact_file, text in texts.items():
        target = folder / artifact_file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for artifact_file, path in files.items():
        target = folder / artifact_file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def list_experiments(uri: str | None) -> list[dict[str, Any]]:
    """What a store holds: for each experiment with clustergrid runs, by name, its
    ``name``, ``finished`` and ``failed`` (combinations whose latest run ended so),
    ``invocations`` (runs of ``clustergrid run``) and ``last_run`` (when its latest run
    started, in ms since the epoch). A ClustergridError names the store when there is none."""
    if not store_exists(uri):
        raise ClustergridError(f"no MLflow store at {sqlite_path(uri)}")
    from mlflow.tracking import MlflowClient

    _quiet_mlflow()
    resolved = resolve_uri(uri)
    try:
        with _silenced("mlflow", "alembic", "sqlalchemy"):
            names = sorted(e.name for e in MlflowClient(tracking_uri=resolved)
                           .search_experiments())
    except Exception as exc:
        raise ClustergridError(f"cannot open the MLflow store at {resolved}: "
                               f"{_first_line(exc)}") from None
    found = []
    for name in names:
        tracker = Tracker(uri, name, create=False)
        combinations = sorted(tracker.combination_runs(), key=lambda run: run.info.start_time)
        invocations = tracker.invocation_runs()
        if not combinations and not invocations:
            continue  # MLflow's "Default", or an experiment of another tool
        # A combination run again (--no-resume, a failure retried) counts by its latest run,
        # whichever spelling of its name an older version logged it under.
        latest = {canonical(run.info.run_name): run.info.status for run in combinations}
        found.append({
            "name": name,
            "finished": sum(status == "FINISHED" for status in latest.values()),
            "failed": sum(status == "FAILED" for status in latest.values()),
            "invocations": len(invocations),
            "last_run": max(run.info.start_time for run in [*combinations, *invocations]),
        })
    return found


def _create_sqlite_store(database: Path) -> None:
    """Build a complete store in a scratch file, then rename it into place: the rename is
    atomic, so ``database`` is either absent or fully migrated. Called under the lock.

    A scratch file left half-built by a crash is thrown away, so the migrations' hundreds
    of commits need not each wait for the disk (``synchronous = OFF``: seconds of a new
    store's creation); the finished file is flushed to disk once, before the rename."""
    import sqlalchemy
    from mlflow.store.db.utils import create_sqlalchemy_engine
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    database.parent.mkdir(parents=True, exist_ok=True)
    for stale in database.parent.glob(f".{database.name}.*.creating*"):  # and its journal
        stale.unlink()  # left by a creator killed mid-way; we hold the lock, so it is dead
    scratch = database.with_name(f".{database.name}.{os.getpid()}.creating")
    scratch_uri = f"sqlite:///{scratch}"
    engine = create_sqlalchemy_engine(scratch_uri)
    sqlalchemy.event.listen(engine, "connect", lambda connection, _: connection.execute(
        "PRAGMA synchronous = OFF"))
    # The store below finds this engine for its URI instead of making its own.
    SqlAlchemyStore._engine_map[scratch_uri] = engine
    try:
        SqlAlchemyStore(scratch_uri, (database.parent / "artifacts").as_uri())
    finally:
        SqlAlchemyStore._engine_map.pop(scratch_uri, None)
        engine.dispose()
    with scratch.open("rb+") as built:
        os.fsync(built.fileno())
    os.replace(scratch, database)


def _repair_half_built(database: Path, error: Exception) -> None:
    """A store that MLflow cannot open: rebuilt when it holds no runs (nothing to lose),
    refused in one line otherwise. Called under the lock."""
    import sqlite3

    try:
        with sqlite3.connect(database) as connection:
            runs = connection.execute("select count(*) from runs").fetchone()[0]
    except sqlite3.OperationalError:
        runs = 0  # no runs table: creation stopped before it
    except sqlite3.DatabaseError as exc:
        raise ClustergridError(f"{database} is not a usable MLflow store ({exc}); move it "
                               "away to start a new one") from None
    summary = _first_line(error)
    if runs:
        raise ClustergridError(
            f"{database} holds {runs} runs but MLflow cannot open it ({summary}); back it "
            f"up, then run: mlflow db upgrade sqlite:///{database}") from None
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    engine = SqlAlchemyStore._engine_map.pop(f"sqlite:///{database}", None)
    if engine is not None:
        engine.dispose()
    aside = database.with_name(f"{database.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(database, aside)
    logging.getLogger("clustergrid").warning(
        "%s was half-built and held no runs (%s): set aside as %s and rebuilt",
        database, summary, aside.name)
    _create_sqlite_store(database)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


@contextmanager
def _silenced(*loggers: str) -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _quiet_mlflow() -> None:
    # MLflow announces its schema migrations on every new store (after configuring its
    # loggers at import); users need not see it.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Nor a progress bar for every small artifact a report downloads.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
