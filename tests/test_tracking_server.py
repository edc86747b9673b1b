"""A grid logged to a real MLflow tracking server over HTTP, from the command line, and
read back from it: params and metrics through the REST API, artifacts through the
server's artifact proxy."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import cli, write_experiment

pytestmark = pytest.mark.slow

GRID = """\
name: served
seeds: [0]
datasets:
  - plugin: digits
    n_samples: 300
encoders:
  - plugin: pixels
reducers:
  - plugin: none
clusterers:
  - plugin: kmeans
    n_clusters: [5, 10]
    n_init: 2
metrics: [ari, silhouette]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, timeout: float = 90) -> None:
    """Poll ``url`` until it answers 200; fail early if the server process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer {url} within {timeout} s")


@pytest.fixture
def server(tmp_path) -> tuple[str, Path]:
    """A tracking server on a free local port, backed by SQLite, serving artifacts from
    a temporary folder; yields (its URI, that folder) and stops it afterwards."""
    port = free_port()
    artifacts = tmp_path / "art"
    mlflow = Path(sys.executable).parent / "mlflow"
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'm.db'}",
         # the server proxies artifact uploads (HTTP) and writes them here
         "--artifacts-destination", str(artifacts),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        uri = f"http://127.0.0.1:{port}"
        wait_until_healthy(f"{uri}/health", process)
        yield uri, artifacts
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
        log.close()


def test_grid_is_logged_to_and_read_back_from_a_tracking_server(server, workdir):
    from mlflow.tracking import MlflowClient

    uri, artifacts = server
    path = write_experiment(workdir, GRID)
    result = cli("run", str(path), "--tracking-uri", uri, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Combinations: 2 finished" in result.stdout

    result = cli("results", "served", "--format", "json", "--tracking-uri", uri, cwd=workdir)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert sorted(r["param.clusterer.n_clusters"] for r in records) == ["10", "5"]
    for record in records:
        assert record["status"] == "FINISHED"
        assert 0 < record["ari"] <= 1
        assert -1 <= record["silhouette"] <= 1

    # The driver uploaded each combination's labels through the server.
    client = MlflowClient(tracking_uri=uri)
    for record in records:
        local = Path(client.download_artifacts(record["run_id"], "labels.csv",
                                               str(workdir / record["run_id"])))
        rows = local.read_text().splitlines()
        assert rows[0] == "id,cluster,outlier_score"
        assert len(rows) == 1 + 300
        clusters = {int(row.split(",")[1]) for row in rows[1:]}
        assert len(clusters) == int(record["param.clusterer.n_clusters"])
    assert len(list(artifacts.rglob("labels.csv"))) == 2
