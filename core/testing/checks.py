"""Which checks run on each kind of component (``CHECKS``) and the ``check_*`` functions
that run them: the kit's table of contents, kept apart from the checks themselves."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from clustergrid.components import BASES, KINDS, Component
from clustergrid.testing.case import IMAGE_SHAPE, N_SAMPLES, Case
from clustergrid.testing.datasets import dataset_ids, dataset_labels, dataset_reads
from clustergrid.testing.declarations import (
    declarations_valid,
    declares_name,
    defaults_are_plain,
    get_params_round_trip,
    init_stores_parameters,
    memory_estimate_valid,
    name_is_free,
    parameters_are_keywords,
)
from clustergrid.testing.imports import no_heavy_imports
from clustergrid.testing.metrics import (
    metric_names_are_free,
    metric_returns_numbers,
    metric_undefined_is_nan,
)
from clustergrid.testing.outputs import (
    degenerate_input,
    deterministic,
    output_contract,
    slices_agree,
)

#: the rules every component follows, whatever its kind
COMMON = (declares_name, name_is_free, declarations_valid, parameters_are_keywords,
          defaults_are_plain, init_stores_parameters, get_params_round_trip,
          memory_estimate_valid, no_heavy_imports)

#: the checks of each kind, in order: the rules every component follows come first
CHECKS: dict[str, tuple[Callable[[Case], None], ...]] = {
    "dataset": (*COMMON, dataset_reads, dataset_labels, dataset_ids),
    "transform": (*COMMON, output_contract, slices_agree, deterministic,
                  degenerate_input),
    "encoder": (*COMMON, output_contract, slices_agree, deterministic, degenerate_input),
    "reducer": (*COMMON, output_contract, deterministic, degenerate_input),
    "clusterer": (*COMMON, output_contract, deterministic, degenerate_input),
    "metric": (*COMMON, metric_returns_numbers, metric_names_are_free,
               metric_undefined_is_nan),
}


def check_component(cls: type[Component], params: Mapping[str, Any] | None = None, *,
                    image_shape: tuple[int, int, int] = IMAGE_SHAPE,
                    n_samples: int = N_SAMPLES, skip: Collection[str] = ()) -> None:
    """Run every check of ``cls``'s kind on ``cls(**params)``; a ``ContractError`` names
    the first rule broken. A stochastic component gets ``random_state=0`` unless
    ``params`` sets it. ``image_shape`` is that of the images given to transforms and
    encoders; ``n_samples`` the number of items in each input; ``skip`` names checks to
    leave out (``check_names(kind)``), for a known failure you mean to fix."""
    kind = getattr(cls, "kind", None)
    if not (isinstance(cls, type) and issubclass(cls, Component) and kind in KINDS):
        raise TypeError(f"{cls!r} is not a subclass of one of clustergrid's component "
                        f"classes ({', '.join(base.__name__ for base in BASES.values())})")
    unknown = set(skip) - set(check_names(kind))
    if unknown:
        raise ValueError(f"no check named {sorted(unknown)} for a {kind} "
                         f"(checks: {', '.join(check_names(kind))})")
    required = [name for name, p in cls.parameters().items()
                if p.default is p.empty and name not in (params or {})]
    if required:
        raise TypeError(f"{cls.__qualname__} needs parameters {required}: pass them, "
                        f"check_component({cls.__qualname__}, {{{required[0]!r}: ...}})")
    case = Case(cls, params, image_shape, n_samples)
    for check in CHECKS[kind]:
        if check.__name__.lstrip("_") not in skip:
            check(case)


def check_names(kind: str) -> list[str]:
    """The names of the checks run on a component of ``kind``, in order."""
    return [check.__name__.lstrip("_") for check in CHECKS[kind]]


def _check_kind(kind: str, cls: type[Component], params: Mapping[str, Any] | None,
                options: dict[str, Any]) -> None:
    if not (isinstance(cls, type) and issubclass(cls, BASES[kind])):
        raise TypeError(f"{cls!r} is not a clustergrid.{BASES[kind].__name__}")
    check_component(cls, params, **options)


def check_dataset(cls: type[Component], params: Mapping[str, Any] | None = None,
                  **options: Any) -> None:
    """``check_component`` for a Dataset: reads, labels, ids, fingerprint."""
    _check_kind("dataset", cls, params, options)


def check_transform(cls: type[Component], params: Mapping[str, Any] | None = None,
                    **options: Any) -> None:
    """``check_component`` for a Transform: image batches in, image batches out."""
    _check_kind("transform", cls, params, options)


def check_encoder(cls: type[Component], params: Mapping[str, Any] | None = None,
                  **options: Any) -> None:
    """``check_component`` for an Encoder: images in, ``(n, d)`` embeddings out."""
    _check_kind("encoder", cls, params, options)


def check_reducer(cls: type[Component], params: Mapping[str, Any] | None = None,
                  **options: Any) -> None:
    """``check_component`` for a Reducer: ``(n, d)`` in, ``(n, k)`` out."""
    _check_kind("reducer", cls, params, options)


def check_clusterer(cls: type[Component], params: Mapping[str, Any] | None = None,
                    **options: Any) -> None:
    """``check_component`` for a Clusterer: points in, labels 0..k-1 (-1 noise) out."""
    _check_kind("clusterer", cls, params, options)


def check_metric(cls: type[Component], params: Mapping[str, Any] | None = None,
                 **options: Any) -> None:
    """``check_component`` for a Metric: a number or a dict of numbers, NaN if undefined."""
    _check_kind("metric", cls, params, options)
