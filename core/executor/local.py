"""The local backend: steps run in a pool of worker processes on this machine.

Steps run in worker processes even with one worker, so a step that crashes (a segfault
in a compiled library, the operating system killing it for memory) fails that step
only: the driver reports it, starts a new worker and goes on. Each worker limits its own
memory (``worker_memory_limit``), so a step that needs more than its share fails with a
``MemoryError`` rather than taking the machine down.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from clustergrid import memory
from clustergrid.cache import Cache
from clustergrid.executor.outcomes import StepOutcome, execute_step
from clustergrid.executor.scheduler import schedule
from clustergrid.plan import Step
from clustergrid.registry import Registry, load_registry

#: a size (``2GB``, ``300MB``, ``none`` for no limit) that replaces each worker's share of
#: the available memory (``memory.parse_size``)
WORKER_MEMORY_ENV = memory.WORKER_MEMORY_VARIABLE
#: ``1`` runs the steps of a one-worker run in the driver process, for a debugger or a
#: profiler; a step that crashes then ends the run
IN_PROCESS_ENV = "CLUSTERGRID_IN_PROCESS"
#: the error type of a step whose worker the operating system killed (SIGKILL: most often
#: for memory), and of one whose worker died otherwise (a signal such as SIGSEGV, an exit)
WORKER_KILLED = "WorkerKilled"
WORKER_CRASHED = "WorkerCrashed"
#: error types that mean a step needed more memory than it had: a rerun leaves their
#: combinations alone unless asked (``clustergrid run --retry-failed``)
MEMORY_ERRORS = frozenset({"MemoryError", WORKER_KILLED})
#: the variables BLAS libraries read for their thread count, once, when loaded
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def execute(
    steps: Iterable[Step],
    cache: Cache,
    registry: Registry,
    workers: int = 1,
    on_outcome: Callable[[StepOutcome], None] = lambda outcome: None,
) -> dict[str, StepOutcome]:
    """Run ``steps``, which list every step's parents before it, in ``workers`` processes;
    ``on_outcome`` sees each result as it arrives, in the driver process.

    A worker that dies fails the step it ran, with why (``WORKER_KILLED``,
    ``WORKER_CRASHED``); the steps other workers were running are run again, one at a
    time when it is not known which of them killed it, so only the culprit fails."""
    workers = max(1, workers)
    if workers == 1 and os.environ.get(IN_PROCESS_ENV) == "1":
        return schedule(steps, cache, registry, _InProcess(cache, registry), on_outcome)
    with _WorkerPool(registry.extra_modules, workers, worker_memory_limit(workers),
                     str(cache.root)) as pool:
        return schedule(steps, cache, registry, pool, on_outcome)


def worker_memory_limit(workers: int) -> int | None:
    """The bytes each worker may allocate: ``CLUSTERGRID_WORKER_MEMORY`` if set (``none``:
    unlimited), else the memory available now shared between the workers, at least
    ``memory.MIN_WORKER_MEMORY``: what ``memory.worker_memory`` says a worker has, read
    without importing Dask to ask whether this is a Dask worker.

    The limit is on the data segment (``RLIMIT_DATA``: the heap and private writable
    mappings, where arrays live), not on the address space (``RLIMIT_AS``): torch, numba
    and the BLAS libraries reserve large address ranges they never use (over 1 GB of
    address space after importing torch, several more with CUDA), which would count
    against ``RLIMIT_AS`` and make the limit a guess; the data segment after importing
    numpy, scikit-learn, torch and numba is about 450 MB."""
    text = os.environ.get(WORKER_MEMORY_ENV, "").strip()
    if text:
        return memory.parse_size(text)
    available = memory.available()
    if available is None:
        return None
    return max(available // max(1, workers), memory.MIN_WORKER_MEMORY)


class _WorkerPool:
    """Steps in a process pool that is replaced when one of its workers dies, remembering
    its processes so the driver can say how the dead one ended."""

    def __init__(self, extra_modules: tuple[str, ...], workers: int, limit: int | None,
                 cache_root: str):
        self.extra_modules = extra_modules
        self.workers = workers
        self.limit = limit
        self.cache_root = cache_root
        self.pool = self._start()
        self.processes: dict[int, Any] = {}

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=get_context("spawn"),  # workers start clean: no inherited threads or locks
            initializer=_start_worker,
            initargs=(self.extra_modules, self.workers, self.limit),
        )

    def free(self, running: int) -> None:
        return None  # the pool queues the steps its workers cannot start yet

    def submit(self, step: Step) -> Future:
        future = self.pool.submit(_execute_in_worker, step, self.cache_root)
        # Processes start on demand; keep each, as the pool forgets them when it breaks.
        self.processes.update(getattr(self.pool, "_processes", None) or {})
        return future

    def collect(self, running: Mapping[Future, Step]
                ) -> tuple[dict[Future, StepOutcome], list[Future]]:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        if any(_broke(future) for future in done):
            # Every step in flight in a broken pool fails with it: gather them all.
            done, _ = wait(running, return_when=ALL_COMPLETED)
        ended = {future: future.result() for future in done if not _broke(future)}
        lost = [future for future in done if _broke(future)]
        if lost:
            error, error_type = self.replace()
            if len(lost) == 1:  # it was alone: its step killed it
                culprit = lost.pop()
                step = running[culprit]
                ended[culprit] = StepOutcome(step.key, step.stage, "failed", error=error,
                                             error_type=error_type)
        return ended, lost

    def replace(self) -> tuple[str, str]:
        """Start a new pool in place of the broken one; the message and error type for
        the step whose worker died."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        codes = []
        for process in self.processes.values():
            process.join(timeout=10)
            codes.append(process.exitcode)
        self.processes = {}
        self.pool = self._start()
        # The pool ends the workers that outlived the dead one with SIGTERM.
        deaths = [code for code in codes if code not in (None, 0, -signal.SIGTERM)]
        code = deaths[0] if deaths else None
        if code == -signal.SIGKILL:
            limit = f"; its limit was {memory.human_bytes(self.limit)}" if self.limit else ""
            return (f"its worker process was killed by the operating system: out of memory? "
                    f"(SIGKILL{limit})", WORKER_KILLED)
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"its worker process crashed with signal {name}", WORKER_CRASHED
        if code is not None:
            return f"its worker process exited with status {code}", WORKER_CRASHED
        return "its worker process died", WORKER_CRASHED

    def __enter__(self) -> _WorkerPool:
        return self

    def __exit__(self, error: type[BaseException] | None, *exc_info: object) -> None:
        if error is not None:
            # Ctrl-C, or an error of the driver: stop the workers now, as shutting down
            # would wait for every submitted step. A killed step leaves no entry, only a
            # scratch folder that the next run removes. The pool has no public way to
            # stop running tasks before Python 3.14.
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool.shutdown(wait=True)


def _broke(future: Future) -> bool:
    return isinstance(future.exception(), BrokenProcessPool)


class _InProcess:
    """Steps in the driver process, one at a time in the order given
    (``CLUSTERGRID_IN_PROCESS``): for a debugger or a profiler."""

    def __init__(self, cache: Cache, registry: Registry):
        self.cache = cache
        self.registry = registry

    def free(self, running: int) -> int:
        return 1 - running

    def submit(self, step: Step) -> str:
        return step.key  # run by ``collect``, which the scheduler calls next

    def collect(self, running: Mapping[str, Step]) -> tuple[dict[str, StepOutcome], list[str]]:
        key, step = next(iter(running.items()))
        return {key: execute_step(step, self.cache, self.registry)}, []


_worker_registry: Registry | None = None
#: this worker's memory limit, in bytes (``None``: the driver, or no limit)
_worker_memory: int | None = None


def _start_worker(extra_modules: tuple[str, ...], workers: int,
                  limit: int | None = None) -> None:
    global _worker_registry
    if limit is not None:
        _limit_memory(limit)
    # Ctrl-C reaches the whole process group: the driver alone handles it, stopping the
    # workers, instead of each printing its own traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Share the cores between workers instead of each BLAS/torch pool claiming all.
    threads = max(1, (os.cpu_count() or 1) // workers)
    user_set = any(variable in os.environ for variable in BLAS_VARIABLES)
    for variable in ("OMP_NUM_THREADS", *BLAS_VARIABLES):
        os.environ.setdefault(variable, str(threads))
    # OpenMP's idle threads otherwise spin for milliseconds after each parallel loop, on
    # cores the other workers need (openTSNE's single-threaded FFT step: a third of its
    # time on a busy 2-core machine). Read when OpenMP loads, after this.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if not user_set:
        # numpy's BLAS was loaded with this module, before the variables were set, and
        # reads them only then: limit its pool directly (libraries loaded later read them).
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads, user_api="blas")
    _worker_registry = load_registry(extra_modules)


def _execute_in_worker(step: Step, cache_root: str) -> StepOutcome:
    return execute_step(step, Cache(cache_root), _worker_registry, _worker_memory)


def _limit_memory(limit: int) -> None:
    """Limit this process's data segment to ``limit`` bytes (see ``worker_memory_limit``):
    an allocation beyond it fails, as a ``MemoryError`` in Python and numpy."""
    global _worker_memory
    try:
        import resource
    except ImportError:  # Windows: no limit
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    _worker_memory = limit
