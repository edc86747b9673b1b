"""Worker processes share the cores instead of each thread pool claiming all of them."""

from __future__ import annotations

import os

import pytest
from conftest import run_in_worker

from clustergrid.executor import BLAS_VARIABLES


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to share")
def test_a_worker_limits_the_blas_numpy_loaded_before_its_settings(monkeypatch):
    for variable in ("OMP_NUM_THREADS", *BLAS_VARIABLES):
        monkeypatch.delenv(variable, raising=False)
    threads = run_in_worker(_blas_threads, workers=os.cpu_count())  # one core each
    assert threads and set(threads) == {1}


def _environment(name: str) -> str | None:
    return os.environ.get(name)


@pytest.mark.parametrize("user", [None, "ACTIVE"])
def test_a_worker_lets_idle_openmp_threads_sleep_unless_told_otherwise(monkeypatch, user):
    if user is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", user)
    policy = run_in_worker(_environment, "OMP_WAIT_POLICY", workers=2)
    assert policy == (user or "PASSIVE")
