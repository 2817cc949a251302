"""Reading datasets from disk and from the network: one module a file format.

Every reader returns a ``minipixel.data.ImageSet``, a ``(N, H, W, C) uint8``
array plus the value that means "full intensity" (1 for binary data, 255 for
8-bit data), and the classes when the format has them. From there on
``minipixel.data`` turns the pixels into the labels the model learns.

- ``amat``          binarized MNIST text (``read_amat``)
- ``idx``           MNIST and Fashion-MNIST as published (``read_idx``)
- ``mnist_csv``     the shipped ``mnist_5k.csv.gz`` (``read_mnist_csv``)
- ``npz``           minipixel's own format (``read_npz``, ``write_npz``)
- ``cifar10``       CIFAR-10's pickled batches, with a restricted unpickler (``read_cifar10``)
- ``image_folder``  folders of PNG/JPEG pictures (``read_image_folder``, ``read_image``)
- ``formats``       the reader for a file name (``read_images``)
- ``registry``      the named datasets (``load("mnist:train")``, ``has_split``,
                    ``data_dir``): files, splits, folder and download sources
- ``download``      ``minipixel download NAME``: checksummed, atomic, resumable
- ``_files``        the file helpers the text and binary readers share

The usual entry point is ``load(spec)``, which takes a path or ``NAME:SPLIT``.
"""
from .amat import read_amat
from .cifar10 import read_cifar10
from .download import DownloadError, download
from .formats import read_images
from .idx import read_idx
from .image_folder import read_image, read_image_folder
from .mnist_csv import read_mnist_csv
from .npz import read_npz, write_npz
from .registry import DATASETS, DOWNLOADABLE, RemoteFile, data_dir, has_split, load

__all__ = [
    "DATASETS", "DOWNLOADABLE", "DownloadError", "RemoteFile", "data_dir", "download", "has_split", "load",
    "read_amat", "read_cifar10", "read_idx", "read_image", "read_image_folder", "read_images",
    "read_mnist_csv", "read_npz", "write_npz",
]
