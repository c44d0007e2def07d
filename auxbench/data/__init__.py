"""Datasets for auxbench: real and synthetic images, validation splits, normalisation, augmentation.

``load(name)`` returns a ``Dataset`` of uint8 images on the requested device (a
``MultiDomainDataset`` of them for a multi-domain dataset); ``DATASETS`` lists the names.
"""

from auxbench.data.dataset import DataError, Dataset, Split
from auxbench.data.domains import MultiDomainDataset
from auxbench.data.fetch import fetch_fashion_mnist
from auxbench.data.loader import availability, default_root, load
from auxbench.data.registry import DATASETS
from auxbench.data.synthetic import make_synthetic
from auxbench.data.transforms import augment, normalize

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "MultiDomainDataset",
    "Split",
    "augment",
    "availability",
    "default_root",
    "fetch_fashion_mnist",
    "load",
    "make_synthetic",
    "normalize",
]
