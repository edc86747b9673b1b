"""Memory: what a step will need, what a worker has, and the refusal of a step that
cannot fit.

Components declare the memory a fit takes for ``n`` items of ``d`` features
(``Component.memory_estimate``). Before a step runs, its components' estimates on the
shape of its input (known from the parent's cached array) are compared with the memory
the worker has left; a step that needs more fails at once with ``MemoryRefused``, naming
the component, the shape, both sizes and what to change, instead of being attempted and
bringing the machine down. The other combinations of the grid go on.

A worker's memory is ``CLUSTERGRID_WORKER_MEMORY`` when set (``2GB``, ``300MB``; ``none``
for no limit), else the memory available when the run starts shared between the
workers, at least ``MIN_WORKER_MEMORY``. A worker process that runs under a limit of its
data segment (``RLIMIT_DATA``, which the executor sets to that share) has that limit less
what it already uses.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from clustergrid.errors import ClustergridError

#: the memory each worker may use (``parse_size``), replacing its share of what is available
WORKER_MEMORY_VARIABLE = "CLUSTERGRID_WORKER_MEMORY"
#: no worker's share is below this: importing the libraries alone takes about 450 MB
MIN_WORKER_MEMORY = 1 << 30
#: bytes of the arrays the stages hold: embeddings are stored as float32
FLOAT32 = 4
FLOAT64 = 8
#: reducers whose output has the dimension of their input
KEEPS_DIMENSION = frozenset({"none", "standardize"})
#: the dimension suggested when a step would fit after a reducer
REDUCED_DIMENSION = 50

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class MemoryRefused(ClustergridError):
    """A step whose estimated memory exceeds what its worker has: refused before it starts."""


@dataclass(frozen=True)
class Need:
    """The memory one component of a step needs on its input: ``bytes`` in all, the
    input the stage holds included."""

    component: str
    n: int
    d: int
    bytes: int
    #: the component itself, for the remedies a refusal suggests
    built: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class WorkerMemory:
    """What a worker may use: ``limit`` bytes (None: unknown, or no limit), ``free`` of
    them now, and where the limit comes from."""

    limit: int | None
    free: int | None
    source: str

    def describe(self) -> str:
        """``11.0 GiB (the source)``, or why there is none."""
        if self.limit is None:
            return f"no limit ({self.source})"
        return f"{human_bytes(self.limit)} ({self.source})"


def human_bytes(size: float) -> str:
    """``size`` bytes as ``12 MiB``, ``3.4 GiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{size:.0f} {unit}" if size >= 10 or unit == "bytes" else f"{size:.1f} {unit}"


def parse_size(text: str) -> int | None:
    """``2GB``, ``300MB``, ``1.5G``, ``512MiB``, a number of bytes; ``none`` or ``0``: no
    limit (None). Units are powers of 1024. A ClustergridError says what is wrong."""
    if text.strip().lower() in ("none", "0", "off", "unlimited"):
        return None
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", text)
    if not match:
        raise ClustergridError(
            f"{WORKER_MEMORY_VARIABLE}={text!r} is not a size: write e.g. 2GB, 300MB or none")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def available() -> int | None:
    """The memory the machine can give without swapping (``MemAvailable``), in bytes;
    None when unknown."""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(ImportError):
        import psutil

        return int(psutil.virtual_memory().available)
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def worker_memory(workers: int = 1) -> WorkerMemory:
    """What one of ``workers`` workers may use: in a process that runs under a data
    segment limit (a run's worker), that limit less what the process already uses;
    else ``CLUSTERGRID_WORKER_MEMORY``; else a Dask worker's own limit; else the memory
    available now shared between ``workers``, at least ``MIN_WORKER_MEMORY``."""
    own = _data_limit()
    if own is not None:
        return WorkerMemory(own, max(0, own - _data_used()), "this worker's memory limit")
    text = os.environ.get(WORKER_MEMORY_VARIABLE, "").strip()
    if text:
        size = parse_size(text)
        return WorkerMemory(size, size, WORKER_MEMORY_VARIABLE)
    with contextlib.suppress(Exception):  # not inside a Dask worker
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
        if limit:
            return WorkerMemory(int(limit), int(limit), "the Dask worker's memory limit")
    total = available()
    if total is None:
        return WorkerMemory(None, None, "the memory available is unknown")
    share = max(total // max(1, workers), MIN_WORKER_MEMORY)
    source = (f"{human_bytes(total)} available over {workers} workers" if workers > 1
              else "the memory available")
    return WorkerMemory(share, share, source)


def _data_limit() -> int | None:
    """This process's data segment limit (``RLIMIT_DATA``), None when unlimited."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_DATA)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _data_used() -> int:
    """The size of this process's data segment now (``VmData``), which the limit counts."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


# -- arithmetic shared by components and costs ---------------------------------------

#: ``d x d`` float64 matrices per component a scikit-learn Gaussian mixture holds at its
#: peak: covariances, precisions and their Cholesky factors, and the next EM iteration's
#: covariances while the last ones are held (tests/benchmarks/bench_memory.py)
MIXTURE_MATRICES = 4


def covariance_bytes(d: int, k: int, covariance_type: str) -> int:
    """The ``d x d`` matrices of a ``k``-component mixture: one per component (full), one
    shared (tied), none (diag, spherical)."""
    matrices = {"full": k, "tied": 1}.get(covariance_type, 0)
    return MIXTURE_MATRICES * matrices * d * d * FLOAT64


def gaussian_mixture_bytes(n: int, d: int, k: int, covariance_type: str) -> int:
    """Peak bytes of fitting a ``k``-component Gaussian mixture to ``n x d`` float64
    points: the covariance matrices, two ``n x d`` temporaries (the k-means
    initialisation's centred copy, each component's centred data) and three ``n x k``
    (responsibilities, log-probabilities)."""
    return covariance_bytes(d, k, covariance_type) + (2 * n * d + 3 * n * k) * FLOAT64


def pairwise_bytes(n: int, copies: float = 1.0) -> int:
    """``copies`` full ``n x n`` float64 matrices (a condensed one is half a copy)."""
    return int(copies * n * n * FLOAT64)


def image_shape(d: int, multiple: int = 1) -> tuple[int, int, int]:
    """The ``(channels, height, width)`` an encoder's estimate takes an image of ``d``
    values to have, since it is told only ``d``: square, of three channels when ``d / 3``
    is a square (colour, three bands), else of one; one channel of the most nearly
    square ``height x width`` when no square fits. Each side is rounded up to a
    ``multiple`` (a network that halves the image ``depth`` times needs ``2**depth``).

    The guess errs above, as an estimate should: a network's activations grow with
    ``height x width``, and an image of another number of channels is taken for one
    channel as large as all of them (four channels of 32 x 32: one of 64 x 64)."""
    d = max(1, int(d))
    channels = 3 if d % 3 == 0 and _is_square(d // 3) else 1
    height = math.isqrt(d // channels)
    while (d // channels) % height:
        height -= 1
    width = d // channels // height

    def rounded(side: int) -> int:
        return -(-side // multiple) * multiple

    return channels, rounded(height), rounded(width)


def _is_square(value: int) -> bool:
    return math.isqrt(value) ** 2 == value


# -- what a component and a step need ------------------------------------------------


def estimate(component: Any, n: int, d: int) -> int | None:
    """``component.memory_estimate(n, d)`` as an int, None when it declares none; an
    estimate that fails or is not a number counts as none: it is advice, and the
    conformance kit (``clustergrid.testing``) is where a broken declaration fails."""
    try:
        value = component.memory_estimate(int(n), int(d))
    except Exception:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return int(value)


def output_dimension(reducer: Any, d: int) -> int | None:
    """The dimension ``reducer`` (a built component) gives ``d`` features: kept by
    ``KEEPS_DIMENSION``, ``n_components`` when an int, else unknown."""
    if reducer.name in KEEPS_DIMENSION:
        return d
    size = getattr(reducer, "n_components", None)
    if isinstance(size, int) and not isinstance(size, bool):
        return min(size, d)
    return None


def refit_size(n: int, options: dict[str, Any]) -> int:
    """Items the verdict's null or subsample refits are on, for ``n`` items of the encoder
    output (as ``stages`` sizes them): a subsample's ``fraction`` of them, at most
    ``max_points``."""
    limit = int(options.get("max_points", n))
    return min(round(float(options.get("fraction", 1.0)) * n), limit)


def _declared(stage: str) -> Any:
    """The declaration of ``stage`` (``clustergrid.stages``): which parent holds a step's
    input (``Stage.input``) and which component the verdict's refits fit (``Stage.refit``).
    Imported when first asked: the stages run this module's check before every step."""
    from clustergrid.stages import get

    return get(stage)


def stage_needs(stage: str, components: list[tuple[str, Any]], shape: tuple[int, ...],
                options: dict[str, Any] | None = None) -> list[Need]:
    """What each of ``components`` (``(label, built component)`` pairs, as the step
    lists them) of a ``stage`` step needs when the step's input has ``shape`` (images
    for ``encode``, else ``(n, d)``): its estimate plus the input the stage holds in
    memory. Components that declare nothing are left out."""
    options = options or {}
    if stage == "encode":
        n, d = shape[0], _features(shape)
        return _needs(components[:1], n, d, held=0)
    n, d = shape[0], _features(shape)
    refit = _declared(stage).refit
    if refit is not None:  # ``shape``: the encoder output's, or the reduced one's
        size = refit_size(n, options)
        clusterers = components[-1:] if refit == "clusterer" else []
        found, space = [], d
        for reducer in components[:len(components) - len(clusterers)]:
            found += _needs([reducer], size, d, held=size * d * FLOAT32)
            space = output_dimension(reducer[1], d)
        if space is not None and clusterers:
            held = size * (space + (d if len(components) > 1 else 0)) * FLOAT32
            found += _needs(clusterers, size, space,
                            held=held + _cast(clusterers[0][1], size, space))
        return found
    if stage == "cluster":
        return _needs(components, n, d,
                      held=n * d * FLOAT32 + _cast(components[0][1], n, d))
    return _needs(components, n, d, held=n * d * FLOAT32)  # reduce, map, score, probe


def largest(needs: list[Need]) -> Need | None:
    return max(needs, key=lambda need: need.bytes, default=None)


def _features(shape: tuple[int, ...]) -> int:
    size = 1
    for extent in shape[1:]:
        size *= int(extent)
    return size


def _cast(clusterer: Any, n: int, d: int) -> int:
    """The copy of ``X`` in the precision a clusterer declares (``Clusterer.dtype``)."""
    import numpy as np

    dtype = getattr(type(clusterer), "dtype", None)
    return 0 if dtype is None else n * d * np.dtype(dtype).itemsize


def _needs(components: list[tuple[str, Any]], n: int, d: int, held: int) -> list[Need]:
    found = []
    for label, component in components:
        value = estimate(component, n, d)
        if value is not None:
            found.append(Need(label, n, d, held + value, component))
    return found


# -- the refusal ----------------------------------------------------------------------


def refuse_unless_fits(step: Any, cache: Any, registry: Any) -> None:
    """Raise ``MemoryRefused`` when a component of ``step`` needs more memory than this
    worker has free; a step whose input shape, or whose components' needs, are unknown
    runs."""
    try:
        declared = _declared(step.stage)
    except KeyError:
        return
    if declared.input is None:
        return
    try:
        shape = _input_shape(step, cache)
        components = [(c.label(), registry.get(c.kind, c.plugin).cls(**c.kwargs))
                      for c in step.components]
        need = largest(stage_needs(step.stage, components, shape, dict(step.options)))
    except Exception:  # a stage laid out otherwise: an estimate never fails a step
        return
    if need is None:
        return
    worker = worker_memory()
    if worker.free is None or need.bytes <= worker.free:
        return
    raise MemoryRefused(refusal(need, worker, need.built))


def refusal(need: Need, worker: WorkerMemory, component: Any = None) -> str:
    """The one line saying a step cannot fit in ``worker``, and what to change."""
    free = worker.free or 0
    remedies = []
    if getattr(component, "covariance_type", None) in ("full", "tied"):
        remedies.append("use covariance_type: diag")
    if getattr(component, "kind", None) in ("clusterer", "metric") and need.d > REDUCED_DIMENSION:
        smaller = estimate(component, need.n, REDUCED_DIMENSION)
        if smaller is not None and smaller + need.n * REDUCED_DIMENSION * FLOAT32 < free:
            remedies.append(f"reduce first (pca with n_components: {REDUCED_DIMENSION})")
    fewer = _items_that_fit(component, need, free)
    if fewer or component is None:  # when even two items cannot fit, fewer is no remedy
        remedies.append(f"use fewer items (about {fewer:,} fit)" if fewer else "use fewer items")
    remedies.append(f"give workers more ({WORKER_MEMORY_VARIABLE}, fewer --workers)")
    has = human_bytes(free)
    if worker.limit is not None and worker.limit - free > free // 10:
        has += f" free of its {human_bytes(worker.limit)}"
    return (f"{need.component} needs about {human_bytes(need.bytes)} for {need.n:,} items "
            f"x {need.d:,} features, and a worker has {has}: {_or(remedies)}")


def _items_that_fit(component: Any, need: Need, limit: int) -> int | None:
    """The most items (below ``need.n``) whose estimate, with the input, fits ``limit``."""
    if component is None:
        return None
    held = need.bytes - (estimate(component, need.n, need.d) or 0)

    def fits(n: int) -> bool:
        value = estimate(component, n, need.d)
        return value is not None and value + held * n / need.n <= limit

    low, high = 0, need.n
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low if low >= 2 else None


def _or(things: list[str]) -> str:
    return things[0] if len(things) == 1 else ", ".join(things[:-1]) + ", or " + things[-1]


def _input_shape(step: Any, cache: Any) -> tuple[int, ...]:
    """The shape of what ``step`` is given, from its parent's cached array (only its
    header is read)."""
    declared = _declared(step.stage)
    parent, name = declared.input
    key = step.parents[parent]
    if name == "mean":  # the reference model: the data's size and its mean
        shape = (int(cache.load(key, "n")), len(cache.load(key, name)))
    else:
        shape = tuple(int(extent) for extent in cache.load(key, name, mmap=True).shape)
    if declared.refit == "clusterer" and len(step.parents) > 1:
        # The clusterer alone, on the reduced spaces its second parent saved ``(draws,
        # size, k)``; none saved: the reducer handed its input back.
        reduced = step.parents[1]
        if cache.contains(reduced, "spaces"):
            shape = (shape[0], int(cache.load(reduced, "spaces", mmap=True).shape[-1]))
    return shape
