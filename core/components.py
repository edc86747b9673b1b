"""The contracts every plugin component fulfils.

Components are shaped like scikit-learn estimators: ``__init__`` stores its keyword
arguments as attributes of the same name and does nothing else, so ``get_params`` can
rebuild, hash and log any component. Heavy libraries are imported inside methods.

A component whose ``__init__`` accepts ``random_state`` is *stochastic*: unless the
experiment file fixes it, the runner passes each of the experiment's seeds, and the
step is computed once per seed. Every other component is computed once for all seeds.

Arrays exchanged between stages:

- images: ``(n, channels, height, width)`` float32 (a batch, or a memory-mapped array)
- embeddings: ``(n, d)`` float32 from an encoder, ``(n, k)`` from a reducer, finite
- labels: ``(n,)`` int, ``-1`` meaning noise (clusterers) or unknown (datasets)

Inputs may be read-only (memory-mapped): never modify them in place. A component given
input it cannot handle (every point identical, too few items) raises a ValueError saying
why, rather than returning NaN or failing obscurely. ``clustergrid.testing`` checks every
rule stated here on a plugin's own classes (``check_component``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from clustergrid.directions import check_direction

KINDS = ("dataset", "transform", "encoder", "reducer", "clusterer", "metric")


class Component:
    """Base of every component: a unique ``name``, a one-line docstring, parameters.

    ``__init__`` takes named keyword parameters only, stores each one unchanged as the
    attribute of the same name and sets nothing else; defaults are None, bools, numbers,
    strings or tuples of them (hashable, and writable as YAML). Fitting never changes a
    parameter: learnt state goes in attributes ending in ``_``.
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    #: Bump when the output for the same parameters changes; it is part of cache keys.
    version: ClassVar[str | None] = None

    @classmethod
    def parameters(cls) -> dict[str, inspect.Parameter]:
        """The keyword parameters of ``__init__``: the component's configurable surface."""
        if cls.__init__ is object.__init__:
            return {}
        named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        signature = inspect.signature(cls.__init__)
        return {
            name: parameter
            for name, parameter in signature.parameters.items()
            if name != "self" and parameter.kind in named
        }

    @classmethod
    def check_class(cls) -> None:
        """Raise when a class attribute declares something invalid; the registry calls it
        on every registered class, so the plugin fails to load with the reason."""

    @classmethod
    def is_stochastic(cls) -> bool:
        """Whether it takes ``random_state``: computed once per seed, and with the same seed
        it must give the same output. Any other component is computed once for all seeds,
        so its output must not vary at all."""
        return "random_state" in cls.parameters()

    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring."""
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.parameters()}

    def memory_estimate(self, n: int, d: int) -> int | None:
        """Bytes this component's work allocates, at its peak, for ``n`` items of ``d``
        features (for an encoder, ``d`` is the values of one image, channels x height x
        width), not counting the input itself; None (the default) when unknown.

        Read from the parameters only, before anything runs: a step whose estimate, with
        the input the stage holds, exceeds what a worker has is refused with one line
        instead of being attempted (``clustergrid.memory``), and ``--dry-run`` shows the
        largest of each stage. Count the arrays that grow with the input: ``n^2`` for
        pairwise distances, ``d^2`` per covariance matrix, ``n * d`` per copy; float64
        is 8 bytes. An estimate is a non-negative number that grows with ``n``
        (``clustergrid.testing`` checks both); within a factor of two of the measured peak
        is good enough, and rather above it than below."""
        return None

    def save(self, folder: Path) -> None:
        """Write files worth keeping after fitting (trained weights, say) into ``folder``.

        They are stored in the step's cache entry, so they are keyed like its output,
        and logged as MLflow artifacts of every combination that uses the step. The
        default keeps nothing."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


class Dataset(Component):
    """A collection of images read in batches, with optional labels and item ids.

    Subclasses implement ``__len__``, ``image_shape`` and ``read``; ``labels`` and
    ``class_names`` default to unlabelled. ``fingerprint`` must change whenever the data
    would change (files edited, a simulator's seed): it is part of every cache key.
    """

    kind = "dataset"

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of every item."""
        raise NotImplementedError

    def read(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop`` as ``(stop - start, c, h, w)`` float32: the same items on
        every call, whatever the batches they are read in."""
        raise NotImplementedError

    def labels(self) -> np.ndarray | None:
        """Integer class of each item (``-1`` = unknown), or None when unlabelled; an
        integer array, never floats."""
        return None

    def class_names(self) -> list[str] | None:
        """Name of each class index (one for every code ``labels`` uses), or None."""
        return None

    def channel_names(self) -> list[str] | None:
        """A name per channel (such as a FITS file's bands), shown by inspect and
        reports instead of the channel's number; None when the channels are unnamed."""
        return None

    def feature_names(self) -> list[str] | None:
        """For a table, the name of each feature (column): its items are rows, read as
        ``(n, 1, 1, d)`` with one value per feature. None (the default) for images.

        The parts of a run made for images step aside for a table: its thumbnails draw
        each row's values as bars, its cards describe the clusters by these features rather
        than by morphology, and the nuisance check (brightness, size...) is left out."""
        return None

    def feature_units(self) -> list[str] | None:
        """For a table, the unit of each of ``feature_names`` as text (``""`` when it has
        none), kept in the data step's metadata and the run's summary; None otherwise."""
        return None

    def ids(self) -> np.ndarray:
        """A unique string id per item, shown in reports and logged with cluster labels."""
        return np.array([str(i) for i in range(len(self))])

    def sources(self) -> np.ndarray | None:
        """Where each item comes from (a file, ``file[index]``, a group), or None; exported
        with the cluster labels so they can be traced back to the user's files."""
        return None

    def sky_positions(self) -> np.ndarray | None:
        """Where on the sky each item's centre lies: an ``(n, 2)`` float array of ICRS
        right ascension and declination in degrees (NaN for an item without one), or
        None when no item has one; exported with the cluster labels as ``ra``/``dec``."""
        return None

    def fingerprint(self) -> str:
        """A string that changes whenever the items would change."""
        return repr(self.get_params())

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        for start in range(0, len(self), batch_size):
            yield self.read(start, min(start + batch_size, len(self)))


class Transform(Component):
    """A stateless image-batch to image-batch function (normalise, stretch, crop...).

    Applied batch by batch (256 images at a time): each output image depends only on its
    input image, never on the rest of the batch.
    """

    kind = "transform"

    def transform(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def channel_names(self, names: list[str]) -> list[str] | None:
        """The output channels' names given the input's (``Dataset.channel_names``).
        The default keeps them, and callers drop them when the channel count changes; a
        transform that selects or reorders channels maps them."""
        return names


class Encoder(Component):
    """Turns images into embeddings; may train on the images first.

    ``images`` may be a memory-mapped array larger than memory: read it in slices.
    ``labels`` is given to encoders that declare ``needs_labels`` (and otherwise None).
    Anything worth logging (losses per epoch, held-out scores) goes into ``metrics_``,
    a dict of floats or lists of floats (logged as MLflow metric steps).
    """

    kind = "encoder"
    needs_labels: ClassVar[bool] = False
    #: False for encoders whose rows depend on the whole set (e.g. standardised over it):
    #: the runner then calls ``transform`` once, on all the images
    row_wise: ClassVar[bool] = True

    def fit(self, images: np.ndarray, labels: np.ndarray | None = None) -> Encoder:
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        """``(n, d)`` float32 embeddings.

        When ``row_wise`` (the default), each row depends only on its image and what
        ``fit`` learnt: the runner then calls ``transform`` on consecutive slices of the
        images and writes each slice's rows to disk as they come, so the embeddings of
        any number of images never sit in memory at once."""
        raise NotImplementedError


class Reducer(Component):
    """scikit-learn style ``fit_transform(X) -> (n, k)``, finite numbers."""

    kind = "reducer"

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Clusterer(Component):
    """``fit_predict(X) -> labels``, ``-1`` meaning noise. Extra scores go in ``metrics_``.

    Labels are an integer array (float labels are refused even when whole numbers) and
    clusters are numbered ``0..k-1`` without gaps.

    Per item, a clusterer may also keep ``probabilities_`` (how strongly each item belongs
    to its cluster, in [0, 1]) and ``outlier_scores_`` (the higher, the more unusual the
    item): both are saved with the labels and exported by ``clustergrid labels``.

    ``dtype`` is the floating-point precision ``X`` must have: the runner casts the
    stored embeddings (float32) to it once before calling ``fit_predict``. None (the
    default) passes them as stored. Declare ``np.float64`` when the algorithm loses
    precision in float32: covariance estimates and their Cholesky factors (Gaussian
    mixtures), or distances computed as ``|x|^2 - 2 x.c + |c|^2`` on uncentred data
    (mini-batch k-means, BIRCH's subcluster radii), which cancel to noise when the data
    sit far from the origin. Changing it changes the output: bump ``version``.
    """

    #: per-item arrays ``fit_predict`` may set, saved beside the labels when it does
    per_item: ClassVar[tuple[str, ...]] = ("probabilities_", "outlier_scores_")
    #: the floating-point type ``fit_predict`` receives ``X`` in; None: as stored (float32)
    dtype: ClassVar[type[np.floating] | None] = None

    kind = "clusterer"

    @classmethod
    def check_class(cls) -> None:
        """A ``dtype`` that is neither None nor a NumPy floating-point type is a ValueError."""
        if cls.dtype is None:
            return
        try:
            floating = np.issubdtype(np.dtype(cls.dtype), np.floating)
        except TypeError:
            floating = False
        if not floating:
            raise ValueError(
                f"clusterer '{cls.name}' ({cls.__module__}.{cls.__qualname__}): dtype = "
                f"{cls.dtype!r} must be None or a floating-point type such as np.float64"
            )

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Metric(Component):
    """Scores a clustering or an embedding: ``compute(X, labels, true_labels)`` -> float or
    dict of floats.

    With ``scope = "clustering"`` (the default) it scores each combination: ``X`` is the
    space the clusterer saw and ``labels`` its clusters. With ``scope = "embedding"`` it
    scores an encoder's output, once per encoder output whatever follows it, and gets
    ``labels=None``. Metrics that declare ``needs_labels`` only run on labelled datasets;
    the others receive ``true_labels=None``. A metric that is undefined for its input
    returns NaN rather than raising. In a dict, a list value is a curve (such as a ROC
    curve): logged as metric steps and drawn by the report, never ranked. What a metric
    logs (its ``name``, or a dict's keys) must not be what another metric logs too
    (prefixing a dict's keys with the metric's name avoids that). A ``compute`` that
    takes a ``class_names`` keyword also gets the name of each class code of
    ``true_labels`` (one per code), to log per-class values under the classes' names.

    ``direction`` says which values are better: ``"higher"``, ``"lower"``, or
    ``"descriptive"`` for a value that describes a result without being better or worse
    (never marked best, never used to rank). A dict result's keys take their direction
    from ``directions`` (key or glob pattern, such as ``"recall.*"`` for one key per
    class), ``name`` from ``direction`` unless listed there; keys declared by neither are
    treated as descriptive, since a report cannot know which metric logged them.
    """

    kind = "metric"
    needs_labels: ClassVar[bool] = False
    scope: ClassVar[str] = "clustering"
    #: "higher", "lower" or "descriptive" (see ``clustergrid.directions``)
    direction: ClassVar[str] = "higher"
    #: direction of each key (or glob pattern of keys) of a dict result
    directions: ClassVar[dict[str, str]] = {}

    @classmethod
    def check_class(cls) -> None:
        """A declared direction that is not one of ``DIRECTIONS`` is a ValueError."""
        cls.logged_directions()

    @classmethod
    def logged_directions(cls) -> dict[str, str]:
        """Logged name (or glob pattern) -> direction for this metric; a ValueError names
        the class when a declared direction is not one of ``DIRECTIONS``."""
        declared = {cls.name: cls.direction, **cls.directions}
        owner = f"metric '{cls.name}' ({cls.__module__}.{cls.__qualname__})"
        for key, value in declared.items():
            check_direction(value, owner if key == cls.name else f"{owner}, key {key!r},")
        return declared

    def compute(
        self, X: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None
    ) -> float | dict[str, float]:
        raise NotImplementedError


BASES: dict[str, type[Component]] = {
    base.kind: base for base in (Dataset, Transform, Encoder, Reducer, Clusterer, Metric)
}
