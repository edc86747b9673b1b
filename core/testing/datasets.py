"""Checks of a dataset: the same float32 images whatever the batching, since the runner
reads in batches and caches by ``fingerprint``, and labels, class names and ids that
reports and exported catalogues can rely on."""

from __future__ import annotations

import numbers

import numpy as np

from clustergrid.testing.case import Case, same


def dataset_reads(case: Case) -> None:
    """``len`` is a positive int, ``image_shape`` three positive ints and ``read(a, b)``
    gives ``(b - a, *image_shape)`` float32, the same on every call and in any batching:
    the runner reads batches of 256 into one stack and keys it by ``fingerprint``."""
    dataset = case.build()
    n = case.call("len()", len, dataset)
    shape = case.call("image_shape", getattr, dataset, "image_shape")
    if not (isinstance(shape, tuple | list) and len(shape) == 3
            and all(isinstance(s, numbers.Integral) and s > 0 for s in shape)):
        raise case.fail(f"image_shape is {shape!r}, expected (channels, height, width) ints")
    if n < 1:
        raise case.fail("has no items with these parameters; the checks need at least one")
    stop = min(n, 8)
    batch = case.call(f"read(0, {stop})", dataset.read, 0, stop)
    if not isinstance(batch, np.ndarray) or batch.shape != (stop, *shape):
        raise case.fail(f"read(0, {stop}) returned {getattr(batch, 'shape', type(batch))}, "
                        f"expected ({stop}, *image_shape) = {(stop, *shape)}")
    if batch.dtype != np.float32:
        raise case.fail(f"read returned dtype {batch.dtype}, expected float32")
    start = stop // 2
    if not same(case.call("read", dataset.read, start, stop), batch[start:]):
        raise case.fail(f"read({start}, {stop}) differs from read(0, {stop})[{start}:]")
    if not same(case.call("read", case.build().read, 0, stop), batch):
        raise case.fail("two reads of the same items differ; derive randomness from a seed "
                        "parameter so fingerprint() names the data")
    if case.build().fingerprint() != dataset.fingerprint() or not isinstance(
            dataset.fingerprint(), str):
        raise case.fail("fingerprint() must be a string, the same for the same parameters")


def dataset_labels(case: Case) -> None:
    """``labels()`` is None or ``(n,)`` integers, -1 meaning unknown, and ``class_names()``
    None or strings naming every code: the runner stores labels as int64 and names
    classes in reports and exported catalogues."""
    dataset = case.build()
    n = len(dataset)
    labels = case.call("labels()", dataset.labels)
    names = case.call("class_names()", dataset.class_names)
    if names is not None and not (isinstance(names, list | tuple)
                                  and all(isinstance(x, str) for x in names)):
        raise case.fail(f"class_names() returned {names!r}, expected a list of strings")
    if labels is None:
        return
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise case.fail(f"labels() returned shape {labels.shape} and dtype {labels.dtype}, "
                        f"expected ({n},) integers")
    if labels.min(initial=0) < -1:
        raise case.fail("labels() holds codes below -1; -1 means unknown, classes are >= 0")
    if names is not None and labels.max(initial=-1) >= len(names):
        raise case.fail(f"labels() holds class {labels.max()} but class_names() names "
                        f"{len(names)} classes")


def dataset_ids(case: Case) -> None:
    """``ids()`` gives one unique string per item, ``sources()`` None or one per item,
    ``sky_positions()`` None or an RA/Dec pair per item, ``channel_names()`` None or
    one string per channel, and ``feature_names()`` (with ``feature_units()``) None or,
    for a table, one string per value of its ``(1, 1, d)`` rows: exported catalogues join
    on ids."""
    dataset = case.build()
    n = len(dataset)
    ids = np.asarray(case.call("ids()", dataset.ids))
    if ids.shape != (n,) or not (ids.dtype.kind == "U" or all(isinstance(i, str) for i in ids)):
        raise case.fail(f"ids() returned shape {ids.shape} and dtype {ids.dtype}, "
                        f"expected {n} strings")
    if len(set(ids.tolist())) != n:
        raise case.fail("ids() holds duplicates; every item needs its own id")
    sources = case.call("sources()", dataset.sources)
    if sources is not None and len(sources) != n:
        raise case.fail(f"sources() gave {len(sources)} entries for {n} items")
    positions = case.call("sky_positions()", dataset.sky_positions)
    if positions is not None and np.shape(positions) != (n, 2):
        raise case.fail(f"sky_positions() returned shape {np.shape(positions)}, expected "
                        f"({n}, 2): right ascension and declination per item")
    channels = case.call("channel_names()", dataset.channel_names)
    if channels is not None and (len(channels) != dataset.image_shape[0]
                                 or not all(isinstance(c, str) for c in channels)):
        raise case.fail(f"channel_names() returned {channels!r}, expected one string per "
                        f"channel ({dataset.image_shape[0]})")
    features = case.call("feature_names()", dataset.feature_names)
    if features is None:
        return
    shape = tuple(dataset.image_shape)
    if shape != (1, 1, len(features)) or not all(isinstance(f, str) for f in features):
        raise case.fail(f"feature_names() returned {features!r} for items of shape {shape}; "
                        "a table's items are (1, 1, d), one name per value")
    units = case.call("feature_units()", dataset.feature_units)
    if units is not None and (len(units) != len(features)
                              or not all(isinstance(u, str) for u in units)):
        raise case.fail(f"feature_units() returned {units!r}, expected one string per "
                        f"feature ({len(features)})")
