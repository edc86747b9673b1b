"""The component under test and the small inputs it is fed: the ground every check shares.

Inputs are small, random but seeded (a failure repeats) and read-only, as the runner's
memory-mapped arrays are. ``same`` and ``same_value`` are the kit's one meaning of equal
outputs and of a parameter left unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from clustergrid.components import Component

#: images given to transforms and encoders unless a check says otherwise
IMAGE_SHAPE = (3, 16, 16)
#: items in every input; enough for k-means' default 8 clusters and t-SNE's perplexity
N_SAMPLES = 40
#: columns of the points given to reducers, clusterers and metrics
N_FEATURES = 16
#: items in the "a few points" input
FEW = 3


class ContractError(AssertionError):
    """A component breaks a rule the runner relies on; the message names both."""


class Case:
    """One component class under test, its constructor arguments and its inputs."""

    def __init__(self, cls: type[Component], params: Mapping[str, Any] | None,
                 image_shape: tuple[int, int, int], n_samples: int):
        self.cls = cls
        self.params = dict(params or {})
        if cls.is_stochastic():
            self.params.setdefault("random_state", 0)
        self.image_shape = tuple(image_shape)
        self.n = n_samples
        self.kind = cls.kind
        self.who = (f"{cls.kind} '{getattr(cls, 'name', '?')}' "
                    f"({cls.__module__}.{cls.__qualname__})")

    def fail(self, rule: str) -> ContractError:
        return ContractError(f"{self.who}: {rule}")

    def build(self) -> Any:
        try:
            return self.cls(**self.params)
        except Exception as exc:
            raise self.fail(f"{self.cls.__qualname__}(**{self.params!r}) raised "
                            f"{type(exc).__name__}: {exc}") from exc

    def call(self, what: str, function: Callable, *args: Any) -> Any:
        """``function(*args)``, any exception becoming a ContractError saying ``what``."""
        try:
            return function(*args)
        except ContractError:
            raise
        except Exception as exc:
            raise self.fail(f"{what} raised {type(exc).__name__}: {exc}") from exc


@functools.cache
def installed_registry() -> Any:
    """The installed components, loaded once: names are checked against them."""
    from clustergrid.registry import Registry

    return Registry.load()


# ---------------------------------------------------------------------- inputs


def readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _images(case: Case, n: int, constant: bool = False) -> np.ndarray:
    shape = (n, *case.image_shape)
    if constant:
        return readonly(np.ones(shape, dtype=np.float32))
    # Brightness varies from image to image, so per-batch statistics show.
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.5, 4.0, size=(n, 1, 1, 1)).astype(np.float32)
    return readonly(rng.random(shape, dtype=np.float32) * scale)


def blobs(n: int, constant: bool = False) -> np.ndarray:
    """Three well separated Gaussian blobs, so clusterers have something to find."""
    if constant:
        return readonly(np.ones((n, N_FEATURES), dtype=np.float32))
    rng = np.random.default_rng(0)
    centres = 10.0 * rng.standard_normal((3, N_FEATURES))
    X = centres[np.arange(n) % 3] + rng.standard_normal((n, N_FEATURES))
    return readonly(X.astype(np.float32))


def true_labels(n: int) -> np.ndarray:
    """True classes as a dataset gives them: integers, one item unknown (-1)."""
    truth = np.arange(n, dtype=np.int64) % 3
    truth[-1] = -1
    return readonly(truth)


def input_for(case: Case, n: int, constant: bool = False) -> np.ndarray:
    if case.kind in ("transform", "encoder"):
        return _images(case, n, constant)
    return blobs(n, constant)


# ---------------------------------------------------------------------- comparisons


def same(a: Any, b: Any) -> bool:
    """Equal outputs: arrays to float32 rounding (NaN equal to NaN), dicts key by key."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if np.issubdtype(a.dtype, np.number) and np.issubdtype(b.dtype, np.number):
        return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True))
    return bool(np.array_equal(a, b))


def same_value(a: Any, b: Any) -> bool:
    """``a`` is ``b``, or an equal value of the same type (a parameter stored as given)."""
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # arrays and the like: compared by identity only
        return False


def is_number(value: Any) -> bool:
    """A single real number, as the runner logs it (not a string, None or an array)."""
    return (not isinstance(value, str | bytes) and np.ndim(value) == 0
            and np.asarray(value).dtype.kind in "biuf")
