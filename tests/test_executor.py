"""Worker processes share the cores instead of each thread pool claiming all of them."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from clustergrid.executor import BLAS_VARIABLES, _start_worker


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to share")
def test_a_worker_limits_the_blas_numpy_loaded_before_its_settings(monkeypatch):
    for variable in ("OMP_NUM_THREADS", *BLAS_VARIABLES):
        monkeypatch.delenv(variable, raising=False)
    workers = os.cpu_count()  # one core each
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker,
                             initargs=((), workers)) as pool:
        threads = pool.submit(_blas_threads).result(timeout=300)
    assert threads and set(threads) == {1}


def _environment(name: str) -> str | None:
    return os.environ.get(name)


@pytest.mark.parametrize("user", [None, "ACTIVE"])
def test_a_worker_lets_idle_openmp_threads_sleep_unless_told_otherwise(monkeypatch, user):
    if user is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", user)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker,
                             initargs=((), 2)) as pool:
        policy = pool.submit(_environment, "OMP_WAIT_POLICY").result(timeout=300)
    assert policy == (user or "PASSIVE")
