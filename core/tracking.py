"""Everything clustergrid writes to and reads from MLflow; only the driver process calls it.

Layout: one MLflow experiment per experiment name; one parent run per invocation of
``clustergrid run``; one child run per combination, tagged ``clustergrid.hash`` with its
config hash. Resuming skips combinations whose hash already has a FINISHED run.

The default store is a project-local folder (``./clustergrid-runs/``) holding the SQLite
database and the artifacts; it is created here, by the driver, before any worker starts.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clustergrid.errors import ClustergridError

DEFAULT_STORE = Path("clustergrid-runs")

TAG_KIND = "clustergrid.kind"  # "invocation" (parent) or "combination" (child)
TAG_HASH = "clustergrid.hash"
TAG_STEP = "clustergrid.step."  # + stage: the key of the combination's step of that stage
TAG_HOST = "clustergrid.host"
TAG_PID = "clustergrid.pid"
PARENT_TAG = "mlflow.parentRunId"

# MLflow limits per log_batch call.
_BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}


def resolve_uri(uri: str | None) -> str:
    """``uri`` as MLflow understands it; None means the default project-local store."""
    if uri is None:
        return f"sqlite:///{DEFAULT_STORE.resolve() / 'mlflow.db'}"
    if "://" not in uri and not uri.startswith("sqlite:"):
        path = Path(uri).resolve()
        return f"sqlite:///{path / 'mlflow.db'}" if path.suffix != ".db" else f"sqlite:///{path}"
    return uri


def store_exists(uri: str | None) -> bool:
    """Whether the store holds anything yet (a dry run must not create it)."""
    resolved = resolve_uri(uri)
    if resolved.startswith("sqlite:///"):
        return Path(resolved.removeprefix("sqlite:///")).is_file()
    return True


class Tracker:
    """The MLflow side of one experiment."""

    def __init__(self, uri: str | None, experiment: str, create: bool = True):
        from mlflow.tracking import MlflowClient

        _quiet_mlflow()

        self.uri = resolve_uri(uri)
        self.experiment_name = experiment
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri)
        try:
            found = self.client.get_experiment_by_name(experiment)
        except Exception as exc:
            raise ClustergridError(f"cannot reach the MLflow store at {self.uri}: {exc}") from None
        if found is None:
            if not create:
                raise ClustergridError(f"no experiment named '{experiment}' in {self.uri}")
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=self._artifact_location(experiment)
            )
        else:
            self.experiment_id = found.experiment_id

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
            if tags.get(TAG_HOST) == socket.gethostname() and _alive(tags.get(TAG_PID)):
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
        self.log(run.info.run_id, params=params)
        return run.info.run_id

    def log_combination(
        self,
        parent: str,
        name: str,
        params: dict[str, Any],
        metrics: dict[str, float | list[float]],
        tags: dict[str, str],
        texts: dict[str, str],
        files: dict[str, Path],
        status: str,
    ) -> str:
        """One finished (or failed) combination as a complete child run; ``texts`` and
        ``files`` are artifacts, keyed by their path in the run."""
        run = self.client.create_run(
            self.experiment_id, run_name=name,
            tags={TAG_KIND: "combination", PARENT_TAG: parent, **tags},
        )
        run_id = run.info.run_id
        self.log(run_id, params=params, metrics=metrics)
        for artifact_file, text in texts.items():
            self.client.log_text(run_id, text, artifact_file)
        for artifact_file, path in files.items():
            folder = str(Path(artifact_file).parent)
            self.client.log_artifact(run_id, str(path), None if folder == "." else folder)
        self.client.set_terminated(run_id, status=status)
        return run_id

    def log(self, run_id: str, params: dict[str, Any] | None = None,
            metrics: dict[str, float | list[float]] | None = None,
            tags: dict[str, str] | None = None) -> None:
        """Params, metrics (a list logs one value per step) and tags, in few calls."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        entries = {
            "params": [Param(k, _text(v)) for k, v in (params or {}).items()],
            "tags": [RunTag(k, str(v)) for k, v in (tags or {}).items()],
            "metrics": [
                Metric(key, float(value), now, step)
                for key, values in (metrics or {}).items()
                for step, value in enumerate(values if isinstance(values, list) else [values])
            ],
        }
        while any(entries.values()):
            chunk = {kind: items[: _BATCH_LIMITS[kind]] for kind, items in entries.items()}
            entries = {kind: items[_BATCH_LIMITS[kind]:] for kind, items in entries.items()}
            self.client.log_batch(run_id, **chunk)

    def log_file(self, run_id: str, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), folder)

    def end_invocation(self, run_id: str, status: str, tags: dict[str, str],
                       texts: dict[str, str] | None = None) -> None:
        self.log(run_id, tags=tags)
        for artifact_file, text in (texts or {}).items():
            self.client.log_text(run_id, text, artifact_file)
        self.client.set_terminated(run_id, status=status)


def _text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


def _alive(pid: str | None) -> bool:
    if not pid or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _quiet_mlflow() -> None:
    # MLflow announces its schema migrations on every new store (after configuring its
    # loggers at import); users need not see it.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Nor a progress bar for every small artifact a report downloads.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
