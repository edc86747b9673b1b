"""Rough costs of a grid's clusterings, known before anything runs: what ``clustergrid run
--dry-run`` warns about.

A Gaussian mixture with full (or tied) covariances keeps a ``d x d`` matrix per
component and spends ``O(n k d^2 + k d^3)`` operations per EM iteration: cheap on a
reducer's 10 dimensions, hours on raw pixels. The dimension a clusterer will see is
mostly known only after encoding, so it is estimated from what is cheap to know:

- the cache: the shape of an encode or reduce step computed before (the header of its
  ``X.npy``), and of a data step's ``images.npy``;
- else the data: the dataset's size and ``image_shape``, and with transforms the shape
  of its first item passed through them (one item read, as ``inspect`` does);
- the ``pixels`` encoder's output size, ``c * (h // downsample) * (w // downsample)``;
  any other encoder's only from the cache;
- reducers ``none`` and ``standardize`` keep the dimension; a reducer with an int
  ``n_components`` makes it that (at most the input's); any other, only from the cache
  (``memory.output_dimension``).

The same shapes give each stage's largest memory (``dry_run_memory``), from what the
components declare (``Component.memory_estimate``).

A clusterer is taken for a Gaussian mixture when it has a ``covariance_type``
parameter, so a third-party mixture written like scikit-learn's is warned about too.
The verdict's refits of each pipeline (null draws, subsamples) are counted in; a
clustering already cached is not warned about. Where an estimate cannot be made,
nothing is said: a dry run never fails on a cost.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from clustergrid import names, stages
from clustergrid.cache import Cache
from clustergrid.memory import (
    Need,
    gaussian_mixture_bytes,
    human_bytes,
    largest,
    output_dimension,
    stage_needs,
)
from clustergrid.plan import Combination, Plan
from clustergrid.registry import Registry
from clustergrid.spec import Component, VerdictConfig

#: dimensions from which a full or tied covariance is worth a warning
HIGH_DIMENSION = 256
#: covariance types whose cost grows with d^2 per item and d^3 per component
COSTLY_COVARIANCES = ("full", "tied")
#: multiply-adds per second assumed for a rough time: full-covariance fits in 256-800
#: dimensions ran at 1.6e9-4e9 on one BLAS thread of a busy development machine
#: (tests/benchmarks/bench_mixtures.py); a few cores of BLAS give about this
MULTIPLY_ADDS_PER_SECOND = 1e10
#: the most lines of warnings printed; the rest are counted
MAX_WARNINGS = 10


@dataclass(frozen=True)
class MixtureCost:
    """The rough cost of fitting a Gaussian mixture to ``n`` items of ``d`` dimensions at
    each k of ``ks``, ``n_init`` times, at most ``max_iter`` EM iterations each; and of
    refitting it on ``refits`` items (one size per refit: the verdict's null draws and
    subsamples)."""

    n: int
    d: int
    ks: tuple[int, ...]
    covariance_type: str
    n_init: int = 1
    max_iter: int = 100
    refits: tuple[int, ...] = ()

    def matrices(self, k: int) -> int:
        """``d x d`` matrices of the model: one per component, or one shared (tied)."""
        return k if self.covariance_type == "full" else 1

    @property
    def memory_bytes(self) -> int:
        """The peak memory of a fit at the largest k (``memory.gaussian_mixture_bytes``,
        the arithmetic ``gmm`` declares)."""
        return gaussian_mixture_bytes(self.n, self.d, max(self.ks), self.covariance_type)

    def per_iteration(self, n: int | None = None) -> float:
        """Multiply-adds of one EM iteration at every k, on ``n`` items (default: all):
        each item's Mahalanobis distance to each component (``n k d^2``), the
        covariances' update (``n d^2`` per matrix) and their Cholesky factors and
        inverses (``d^3`` per matrix)."""
        n, d = self.n if n is None else n, self.d
        return float(sum(n * k * d**2 + (n * d**2 + d**3) * self.matrices(k)
                         for k in self.ks))

    def at_most(self, n: int | None = None) -> float:
        """Multiply-adds of a whole fit on ``n`` items (default: all), at every k, when EM
        runs to ``max_iter`` every time."""
        return self.per_iteration(n) * self.max_iter * self.n_init

    @property
    def with_refits(self) -> float:
        """``at_most`` of the fit and of every refit."""
        return self.at_most() + sum(self.at_most(size) for size in self.refits)


def mixture_cost(clusterer: Component, registry: Registry, n: int, d: int,
                 verdict: VerdictConfig | None = None) -> MixtureCost | None:
    """The cost of ``clusterer`` on ``n`` points of ``d`` dimensions, with the refits of
    ``verdict`` when there is one; None when it is not a Gaussian mixture (no
    ``covariance_type`` parameter)."""
    if "covariance_type" not in _parameters(registry.get("clusterer", clusterer.plugin).cls):
        return None

    def value(name: str, default: Any) -> Any:
        given = _parameter(registry, clusterer, name)
        return default if given is None else given

    n_clusters = value("n_clusters", None)
    if n_clusters == "auto":
        low, high = value("k_range", (2, 10))
        ks = tuple(range(int(low), min(int(high), n) + 1))
    elif isinstance(n_clusters, int) and not isinstance(n_clusters, bool):
        ks = (n_clusters,)
    else:
        return None
    if not ks:
        return None
    refits: tuple[int, ...] = ()
    if verdict is not None:  # as the null and subsample stages size them
        refits = ((min(n, verdict.max_points),) * verdict.null_draws
                  + (min(round(verdict.fraction * n), verdict.max_points),) * verdict.resamples)
    return MixtureCost(n=n, d=d, ks=ks, covariance_type=str(value("covariance_type", "full")),
                       n_init=int(value("n_init", 1)), max_iter=int(value("max_iter", 100)),
                       refits=refits)


def dry_run_warnings(combinations: list[Combination], registry: Registry, cache: Cache,
                     verdict: VerdictConfig | None = None) -> list[str]:
    """One line per costly clustering of ``combinations`` still to compute (full or tied
    covariances on ``HIGH_DIMENSION`` dimensions or more), with its rough cost and what
    to do instead; at most ``MAX_WARNINGS``, then a count of the rest. ``verdict`` is
    the experiment's: its refits are counted in."""
    shapes = _Shapes(registry, cache)
    lines: dict[tuple, str] = {}
    looked: set[tuple] = set()
    # No file system call per combination when there is no cache yet (as ``preview``).
    cached = cache.root.is_dir()
    for combination in combinations:
        clusterer = combination.clusterer
        ident = (combination.steps["reduce"], clusterer)
        # The same clustering under another seed; or one cached, never fitted again.
        if ident in looked or (cached and cache.has(combination.steps["cluster"])):
            continue
        looked.add(ident)
        shape = shapes.clusterer_input(combination)
        if shape is None:
            continue
        n, d = shape
        cost = mixture_cost(clusterer, registry, n, d, verdict)
        if cost is None or cost.covariance_type not in COSTLY_COVARIANCES or d < HIGH_DIMENSION:
            continue
        lines[ident] = describe(cost, clusterer.label(), _pipeline(combination))
    found = list(lines.values())
    if len(found) > MAX_WARNINGS:
        found = [*found[:MAX_WARNINGS], f"... and {len(found) - MAX_WARNINGS} more costly "
                 "mixtures of the same kind"]
    return found


def dry_run_memory(plan: Plan, combinations: list[Combination], registry: Registry,
                   cache: Cache) -> dict[str, Need]:
    """Stage -> the largest memory one of its steps still to compute will need
    (``memory.stage_needs``, from the components' declarations), where the input's shape
    can be estimated (``_Shapes``) and a component declares its memory."""
    shapes = _Shapes(registry, cache)
    known: dict[str, tuple[int, ...] | None] = {}
    for combination in combinations:
        known[combination.steps["data"]] = shapes.images(combination)
        known[combination.steps["encode"]] = shapes.encoded(combination)
        known[combination.steps["reduce"]] = shapes.clusterer_input(combination)
    built: dict[Component, Any] = {}

    def component(choice: Component) -> Any:
        if choice not in built:
            built[choice] = registry.get(choice.kind, choice.plugin).cls(**choice.kwargs)
        return built[choice]

    found: dict[str, Need] = {}
    cached = cache.root.is_dir()
    for step in plan.steps_for(combinations):
        declared = stages.get(step.stage)
        if declared.input is None or (cached and cache.has(step.key)):
            continue
        parent = step.parents[declared.input[0]]
        if parent in plan.steps and plan.steps[parent].stage == "reference":
            parent = next(iter(plan.steps[parent].parents), None)  # of an encoder output
        shape = known.get(parent)
        if shape is None:
            continue
        try:
            if declared.refit == "clusterer" and len(step.parents) > 1:
                # the clusterer alone, on what its second parent's reducer made
                reducer = plan.steps[step.parents[1]].components[0]
                reduced = output_dimension(component(reducer), shape[1])
                if reduced is None:
                    continue
                shape = (shape[0], reduced)
            components = [(c.label(), component(c)) for c in step.components]
            need = largest(stage_needs(step.stage, components, shape, dict(step.options)))
        except Exception:  # an estimate is advice: never a reason for a dry run to fail
            continue
        if need is not None and (step.stage not in found
                                 or need.bytes > found[step.stage].bytes):
            found[step.stage] = need
    return found


def describe(cost: MixtureCost, clusterer: str, pipeline: str) -> str:
    """A warning of one costly mixture: its size, rough memory and time, and the remedy."""
    ks = (f"k={cost.ks[0]}" if len(cost.ks) == 1
          else f"k={cost.ks[0]}..{cost.ks[-1]}, {len(cost.ks)} fits")
    full = cost.covariance_type == "full"
    kind = "full covariances" if full else "a tied covariance"
    order = "O(n k d^2 + k d^3)" if full else "O(n k d^2 + d^3)"
    runs = f"{cost.max_iter} EM iterations" + (
        f" x {cost.n_init} inits" if cost.n_init > 1 else "")
    refits = (f", {_time(cost.with_refits)} with the verdict's {len(cost.refits)} refits"
              if cost.refits else "")
    return (
        f"{clusterer} on {pipeline}: {kind} in d={cost.d:,} dimensions ({cost.n:,} points, "
        f"{ks}): about {human_bytes(cost.memory_bytes)} of memory per fit; one EM "
        f"iteration is {order} = {cost.per_iteration():.1e} multiply-adds "
        f"(about {_time(cost.per_iteration())}); up to {_time(cost.at_most())} at {runs}"
        f"{refits}. Consider covariance_type: diag, or a reducer first (such as pca with "
        "n_components: 50)."
    )


def _time(multiply_adds: float) -> str:
    return human_seconds(multiply_adds / MULTIPLY_ADDS_PER_SECOND)


def human_seconds(seconds: float) -> str:
    """A duration as ``0.3 s``, ``12 min``, ``5.2 h``, ``3 days``."""
    for limit, unit, scale in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600)):
        if seconds < limit:
            value = seconds / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    days = seconds / 86400
    return f"{days:.1f} days" if days < 10 else f"{days:,.0f} days"


def _pipeline(combination: Combination) -> str:
    chain = [combination.dataset.dataset, *combination.dataset.transforms]
    return names.PARTS.join([names.chain_label(c.label() for c in chain),
                             combination.encoder.label(), combination.reducer.label()])


class _Shapes:
    """Shapes of a plan's step outputs, from the cache or estimated; None when unknown.
    Each data, encode and reduce step is looked at once."""

    def __init__(self, registry: Registry, cache: Cache):
        self.registry = registry
        self.cache = cache
        self.known: dict[str, tuple[int, ...] | None] = {}

    def clusterer_input(self, combination: Combination) -> tuple[int, int] | None:
        """``(n, d)`` of what the combination's clusterer will be given."""
        return self._memo(combination.steps["reduce"], "X",
                          lambda: self._reduced(combination))

    def encoded(self, combination: Combination) -> tuple[int, int] | None:
        """``(n, d)`` of the combination's encoder output."""
        return self._memo(combination.steps["encode"], "X",
                          lambda: self._encoded(combination))

    def images(self, combination: Combination) -> tuple[int, int, int, int] | None:
        """``(n, c, h, w)`` of the images the combination's encoder is given."""
        return self._memo(combination.steps["data"], "images",
                          lambda: self._images(combination))

    def _reduced(self, combination: Combination) -> tuple[int, int] | None:
        encoded = self.encoded(combination)
        if encoded is None:
            return None
        n, d = encoded
        reducer = combination.reducer
        reduced = output_dimension(
            self.registry.get(reducer.kind, reducer.plugin).cls(**reducer.kwargs), d)
        return None if reduced is None else (n, reduced)

    def _encoded(self, combination: Combination) -> tuple[int, int] | None:
        encoder = combination.encoder
        if encoder.plugin != "pixels":
            return None
        images = self.images(combination)
        if images is None:
            return None
        n, c, h, w = images
        k = _parameter(self.registry, encoder, "downsample")
        if not isinstance(k, int) or k < 1 or h // k == 0 or w // k == 0:
            return None
        return n, c * (h // k) * (w // k)

    def _images(self, combination: Combination) -> tuple[int, int, int, int] | None:
        choice = combination.dataset
        dataset = stages.build(choice.dataset, self.registry)
        n = len(dataset)
        if not choice.transforms:
            return (n, *dataset.image_shape)
        images = np.asarray(dataset.read(0, 1), dtype=np.float32)
        for transform in choice.transforms:
            images = np.asarray(stages.build(transform, self.registry).transform(images))
        return (n, *images.shape[1:]) if images.ndim == 4 else None

    def _memo(self, key: str, name: str, estimate) -> tuple[int, ...] | None:
        if key not in self.known:
            try:
                self.known[key] = self._cached(key, name) or estimate()
            except Exception:  # a cost is advice: never a reason for a dry run to fail
                self.known[key] = None
        return self.known[key]

    def _cached(self, key: str, name: str) -> tuple[int, ...] | None:
        if not self.cache.contains(key, name):
            return None
        # Only the header is read: the array stays on disk.
        return tuple(int(size) for size in self.cache.load(key, name, mmap=True).shape)


def _parameter(registry: Registry, component: Component, name: str) -> Any:
    """``component``'s value of parameter ``name``: given, else its default, else None."""
    if name in component.kwargs:
        return component.kwargs[name]
    parameter = _parameters(registry.get(component.kind, component.plugin).cls).get(name)
    if parameter is None or parameter.default is parameter.empty:
        return None
    return parameter.default


@functools.cache
def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    """``cls.parameters()``, read once per class: a large grid asks for each combination."""
    return cls.parameters()
