"""clustergrid's built-in components, registered through the same hooks as any plugin.

Each component lives in its own module, imported only when its hook is called, and
imports its heavy libraries inside its methods.
"""

from clustergrid import hookimpl


@hookimpl
def register_datasets(register):
    from clustergrid.plugins.datasets.digits import Digits
    from clustergrid.plugins.datasets.fits import FitsFiles
    from clustergrid.plugins.datasets.hdf5 import Hdf5File
    from clustergrid.plugins.datasets.images import ImageFolder
    from clustergrid.plugins.datasets.npy import NpyFiles
    from clustergrid.plugins.datasets.sim_cherenkov import SimCherenkov
    from clustergrid.plugins.datasets.sim_galaxies import SimGalaxies
    from clustergrid.plugins.datasets.sim_lenses import SimLenses
    from clustergrid.plugins.datasets.simtel import SimtelFiles
    from clustergrid.plugins.datasets.synthetic import Blobs, Noise, Shapes
    from clustergrid.plugins.datasets.table import Table

    for dataset in (Digits, SimGalaxies, SimLenses, SimCherenkov, Blobs, Shapes, Noise,
                    SimtelFiles, ImageFolder, NpyFiles, FitsFiles, Hdf5File, Table):
        register(dataset)


@hookimpl
def register_transforms(register):
    from clustergrid.plugins.transforms.channels import Channels
    from clustergrid.plugins.transforms.clahe import Clahe
    from clustergrid.plugins.transforms.crop import Crop
    from clustergrid.plugins.transforms.mask import Mask
    from clustergrid.plugins.transforms.nan_fill import NanFill
    from clustergrid.plugins.transforms.normalize import Normalize
    from clustergrid.plugins.transforms.resize import Resize
    from clustergrid.plugins.transforms.stretch import Stretch
    from clustergrid.plugins.transforms.tailcuts import Tailcuts
    from clustergrid.plugins.transforms.to_rgb import ToRGB

    for transform in (Normalize, NanFill, Stretch, Clahe, Channels, Resize, Crop, ToRGB,
                      Mask, Tailcuts):
        register(transform)


@hookimpl
def register_encoders(register):
    from clustergrid.plugins.encoders.autoencoder import Autoencoder
    from clustergrid.plugins.encoders.classifier import Classifier
    from clustergrid.plugins.encoders.denoising_contrastive import DenoisingContrastive
    from clustergrid.plugins.encoders.morphology import Morphology
    from clustergrid.plugins.encoders.pixels import Pixels
    from clustergrid.plugins.encoders.pretrained import Pretrained
    from clustergrid.plugins.encoders.simclr import SimCLR

    for encoder in (Pixels, Morphology, Autoencoder, DenoisingContrastive, SimCLR, Pretrained,
                    Classifier):
        register(encoder)


@hookimpl
def register_reducers(register):
    from clustergrid.plugins.reducers.identity import NoReduction
    from clustergrid.plugins.reducers.pca import PCA
    from clustergrid.plugins.reducers.standardize import Standardize
    from clustergrid.plugins.reducers.tsne import TSNE
    from clustergrid.plugins.reducers.umap import UMAP

    for reducer in (NoReduction, PCA, Standardize, UMAP, TSNE):
        register(reducer)


@hookimpl
def register_clusterers(register):
    from clustergrid.plugins.clusterers.agglomerative import Agglomerative
    from clustergrid.plugins.clusterers.birch import Birch
    from clustergrid.plugins.clusterers.dbscan import DBSCAN
    from clustergrid.plugins.clusterers.gmm import GaussianMixture
    from clustergrid.plugins.clusterers.hdbscan import HDBSCAN
    from clustergrid.plugins.clusterers.kmeans import KMeans
    from clustergrid.plugins.clusterers.minibatch_kmeans import MiniBatchKMeans
    from clustergrid.plugins.clusterers.spectral import Spectral

    for clusterer in (KMeans, MiniBatchKMeans, GaussianMixture, HDBSCAN, DBSCAN,
                      Agglomerative, Spectral, Birch):
        register(clusterer)


@hookimpl
def register_metrics(register):
    from clustergrid.plugins.metrics import dbcv, external, internal, representation

    for metric in (*internal.METRICS, *dbcv.METRICS, *external.METRICS,
                   *representation.METRICS):
        register(metric)
