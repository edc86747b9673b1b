"""Shared fixtures: an isolated working folder, experiment files, and fake plugin
distributions installed on ``sys.path`` exactly as pip would lay them out."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from clustergrid.executor import IN_PROCESS_ENV
from clustergrid.registry import GROUP, PLUGINS_ENV, SKIP_PLUGINS_ENV, Registry

#: the environment's plugin settings before the session changed them
_PLUGIN_SETTINGS: dict[str, str | None] = {}


def pytest_configure(config):
    """The suite sees only the project's own entry points and the fake distributions its
    tests install: the third-party plugins installed in this environment (one broken, or
    registering a built-in's name) are skipped, here and in every subprocess and worker,
    which inherit the environment."""
    from importlib.metadata import entry_points

    installed = sorted({ep.name for ep in entry_points(group=GROUP)
                        if ep.dist is None or ep.dist.name != "clustergrid"})
    for variable in (PLUGINS_ENV, SKIP_PLUGINS_ENV, IN_PROCESS_ENV):
        _PLUGIN_SETTINGS[variable] = os.environ.pop(variable, None)
    if installed:
        os.environ[SKIP_PLUGINS_ENV] = ",".join(installed)
    # One-worker runs compute in the test process, so tests can count a component's calls
    # and patch modules, and spawn no worker each; tests/test_isolation.py unsets it.
    os.environ[IN_PROCESS_ENV] = "1"


def pytest_unconfigure(config):
    for variable, value in _PLUGIN_SETTINGS.items():
        os.environ.pop(variable, None)
        if value is not None:
            os.environ[variable] = value


@pytest.fixture(autouse=True)
def pca_maps(monkeypatch):
    """Experiments parsed in tests draw their report maps with PCA unless they say
    otherwise: UMAP, the default, spends about 10 s compiling in each new process. The
    command-line tests and the quickstart keep the real default."""
    from clustergrid import spec

    monkeypatch.setattr(spec, "DEFAULT_MAP", {"plugin": "pca"})


@pytest.fixture(autouse=True)
def no_verdict(monkeypatch):
    """Experiments parsed in tests gather no verdict evidence unless they ask for it
    (``verdict: {}``): most tests are about other stages, and count their steps. The
    command-line tests, the quickstart and the report's grid keep the real default."""
    from clustergrid import spec

    monkeypatch.setattr(spec, "DEFAULT_VERDICT", None)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh current directory, so the default store ./clustergrid-runs is private."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def registry() -> Registry:
    return Registry.load()


def write_experiment(folder: Path, text: str, name: str = "experiment.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def install_fake_distribution(site: Path, dist: str, module: str, source: str,
                              entry_point: str | None = None, version: str = "1.0") -> None:
    """Lay out ``module.py`` and its ``.dist-info`` (with a ``clustergrid`` entry point)
    under ``site``, as ``pip install`` does; importlib.metadata then finds it on sys.path."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        f"[clustergrid]\n{entry_point or dist} = {module}\n"
    )


@pytest.fixture
def fake_site(tmp_path, monkeypatch) -> Path:
    """A folder on sys.path (and PYTHONPATH, for subprocesses) for fake distributions."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    yield site
    for name in [m for m in sys.modules if m.startswith("fake_")]:
        del sys.modules[name]


@pytest.fixture
def worker_processes(monkeypatch) -> None:
    """Steps run in worker processes even with one worker, as outside the tests."""
    monkeypatch.delenv(IN_PROCESS_ENV, raising=False)


def run_in_worker(function, *args, workers: int = 1, limit: int | None = None):
    """``function(*args)`` in a new worker process, started as the local executor starts
    one of ``workers`` (sharing the cores, its data segment limited to ``limit`` bytes)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from clustergrid.executor.local import _start_worker

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_worker,
                             initargs=((), workers, limit)) as pool:
        return pool.submit(function, *args).result(timeout=300)


def cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    """Run the installed ``clustergrid`` command as a user would."""
    import os

    command = [str(Path(sys.executable).parent / "clustergrid"), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


# The report's grid: two datasets, one of them with a class name that is markup.
INJECTION = "<script>alert(1)</script>"

GRID = """\
name: two-datasets
seeds: [0, 1]
datasets:
  - plugin: digits
    n_samples: 150
  - plugin: named
    class_name: "{injection}"
    n_samples: 40
encoders:
  - plugin: pixels
reducers:
  - plugin: none
  - plugin: pca
    n_components: 5
clusterers:
  - plugin: kmeans
    n_clusters: [2, 3]
    n_init: 1
metrics: [ari, silhouette, n_clusters, linear_probe]
map: {{plugin: pca}}
verdict: {{null_draws: 3, resamples: 2}}
tracking: {{uri: "{store}"}}
cache: "{store}/cache"
"""


@pytest.fixture(scope="session")
def grid(tmp_path_factory):
    """One run of a grid over two datasets, for the report's tests; they only read it."""
    import fake_components

    from clustergrid import runner
    from clustergrid.spec import parse_experiment

    folder = tmp_path_factory.mktemp("report")
    registry = Registry.load(extra=[fake_components])
    experiment = parse_experiment(GRID.format(injection=INJECTION, store=folder), registry)
    runner.run(experiment, registry)
    return folder, experiment, registry


@pytest.fixture(scope="session")
def page(grid):
    from clustergrid.report import write_report

    folder, experiment, _ = grid
    path = write_report(str(folder), experiment.name, folder / "report.html")
    return path.read_text()


def payload(text: str) -> dict:
    """The explorer's data in a report page."""
    found = re.search(r"<script type='application/json' id='explorer-data'>(.*?)</script>",
                      text, re.S)
    return json.loads(found.group(1))
