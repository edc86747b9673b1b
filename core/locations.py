"""Where an experiment's store, cache, locks and reports live, decided in one place.

The store is the one ``--tracking-uri`` names, else the experiment file's
``tracking.uri``, else ``$CLUSTERGRID_TRACKING_URI``, else ``./clustergrid-runs``. A
folder or a ``.db`` file means a SQLite store there. The cache is the file's ``cache``,
else a ``cache`` folder beside a SQLite store, so it moves with the store (a tracking
server's runs cache in ``./clustergrid-runs/cache``); reports are written beside the
cache. Locks sit beside a SQLite database, or, for a tracking server, in the cache,
keyed by the server's address, so they cover every run that shares that cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

DEFAULT_STORE = Path("clustergrid-runs")
#: the store used when neither ``--tracking-uri`` nor the experiment file names one (a URI
#: or a folder); without it, ``DEFAULT_STORE`` in the current directory
STORE_VARIABLE = "CLUSTERGRID_TRACKING_URI"


def resolve_uri(uri: str | None) -> str:
    """``uri`` as MLflow understands it; None means the default store: the one
    ``$CLUSTERGRID_TRACKING_URI`` names, else ``./clustergrid-runs``."""
    if uri is None:
        uri = os.environ.get(STORE_VARIABLE) or None
    if uri is None:
        return f"sqlite:///{DEFAULT_STORE.resolve() / 'mlflow.db'}"
    if "://" not in uri and not uri.startswith("sqlite:"):
        path = Path(uri).resolve()
        return f"sqlite:///{path / 'mlflow.db'}" if path.suffix != ".db" else f"sqlite:///{path}"
    return uri


def sqlite_path(uri: str | None) -> Path | None:
    """The database file of a SQLite store; None for any other store."""
    resolved = resolve_uri(uri)
    return Path(resolved.removeprefix("sqlite:///")) if resolved.startswith("sqlite:///") else None


def store_exists(uri: str | None) -> bool:
    """Whether the store holds anything yet (a dry run must not create it)."""
    database = sqlite_path(uri)
    return database is None or database.is_file()


@dataclass(frozen=True)
class Locations:
    """Where one experiment's things are."""

    #: the store as given (``--tracking-uri``, else the file's; None for the default),
    #: for the commands a user is shown
    store: str | None
    #: the store as MLflow opens it
    uri: str
    cache: Path
    locks: Path
    reports: Path

    def report(self, name: str) -> Path:
        """The default path of an experiment's report."""
        return self.reports / f"{name}.html"


def locate(experiment: Any, tracking_uri: str | None = None) -> Locations:
    """The locations of ``experiment`` (a parsed ``Experiment``), its store overridden by
    ``tracking_uri`` when given."""
    store = tracking_uri or experiment.tracking_uri
    database = sqlite_path(store)
    if experiment.cache:
        cache = Path(experiment.cache).expanduser().resolve()
    else:
        cache = (database.parent if database is not None else DEFAULT_STORE.resolve()) / "cache"
    if database is not None:
        locks = database.parent / "locks"
    else:
        locks = cache / "locks" / sha256(resolve_uri(store).encode()).hexdigest()[:16]
    return Locations(store=store, uri=resolve_uri(store), cache=cache, locks=locks,
                     reports=cache.parent / "reports")
