"""Shared machinery of the built-in components, none a component itself.

Every module directly under ``plugins/<kind>/`` registers a component; what several of
them share lives here, so the folder list reads as the components there are:

- ``choose_k``: choosing the number of clusters (``n_clusters: auto``), the base of the
  clusterers with a k, and their centroid outlier scores;
- ``files``: the file loaders' machinery (scanning, problems, labels, fingerprints);
- ``layout``: which axis of an image array holds the channels (``npy``, ``hdf5``);
- ``simulation``: seeding, class mix, optics and noise of the simulated datasets;
- ``devices``: where torch encoders run (``device: auto``);
- ``training``: the trained torch encoders' base, epoch loop, augmentations and memory;
- ``imagenet``: the ImageNet CNNs ``pretrained`` and ``classifier`` load from pip packages;
- ``numba_cache``: numba's disk cache for what UMAP compiles;
- ``imageops``: small image helpers of the transforms.

One sub-package named ``support`` rather than a ``_``-prefixed name or a helper module
beside each kind: these modules are imported across kinds (``choose_k`` uses the
silhouette metric's estimate, ``training`` ``devices``) and by tests and benchmarks, and
a plugin of another package may build on them (``KClusterer``, ``TrainedEncoder``,
``FileDataset``), so they are not private; but they are no contract of clustergrid's
either (that is ``clustergrid.components`` and ``clustergrid.testing``), so they stay
with the built-ins, under a name that says what they are for. ``support`` is no
component kind, and the registry never looks here.
"""
