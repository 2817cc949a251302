"""Folders of PNG and JPEG pictures: your own images as a dataset.

Two layouts, as torchvision's ImageFolder:

    photos/a.png, photos/b.jpg, ...                    no classes
    photos/cat/1.png, photos/dog/7.jpeg, ...           one sub-folder per class

The class of an image is the position of its sub-folder among the sorted
sub-folder names. Files are taken in name order (class folder by class
folder), so the order is the same on every machine.

Every image must have the size of the first one, unless ``size`` is given:
then each is cropped to its largest centred square and resized to
``size x size``. Grey images stay one channel (C = 1) unless a colour image is
among them, which makes the whole set RGB (C = 3, grey ones get R = G = B).
Pillow decodes the files; only its PNG and JPEG decoders ever see them.

    images: (N, H, W, C) uint8, max_value 255; classes (N,) int64 or None
"""
import struct
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data import ImageSet

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Below this many files the reading is quick enough that a progress bar is noise.
_PROGRESS_MIN_FILES = 2000
# A bigger image (8192 x 8192) is refused before it is decoded: its header may lie.
_MOST_PIXELS = 2**26
# Pillow modes read as one grey channel; every other 8-bit mode becomes RGB.
_GREY_MODES = ("1", "L", "LA", "La")


def _image_names_in(folder):
    """The image files directly in ``folder``, sorted by name (hidden files skipped)."""
    return sorted(
        (p for p in folder.iterdir()
         if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()),
        key=lambda p: p.name,
    )


def _image_folder_files(path):
    """The files of an image folder and their classes.

    returns: (files, classes): a list of Paths, and (N,) int64 class indices
             (the position of the file's sub-folder among the sorted sub-folder
             names), or None when the images are directly in ``path``
    """
    looked_for = "/".join(IMAGE_SUFFIXES)
    files = _image_names_in(path)
    folders = sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if files and folders:
        raise ValueError(
            f"{path}: expected images either directly in the folder or in one sub-folder per class, "
            f"found both (e.g. {files[0].name} and {folders[0].name}/)"
        )
    if files:
        return files, None
    per_class = [_image_names_in(folder) for folder in folders]
    if not any(per_class):
        where = f" or in its sub-folders {[f.name for f in folders][:10]}" if folders else ""
        raise ValueError(
            f"{path}: found no images ({looked_for}, any case) in the folder{where}; expected "
            "image files directly in it, or in one sub-folder per class (folder/<class>/<image>)"
        )
    empty = [folder.name for folder, names in zip(folders, per_class) if not names]
    if empty:
        raise ValueError(
            f"{path}: expected images ({looked_for}) in every class sub-folder, found none in {empty}"
        )
    classes = np.concatenate([np.full(len(names), k, np.int64) for k, names in enumerate(per_class)])
    return [file for names in per_class for file in names], classes


def _decode_image(Image, file, size, channels=None):
    """One image file as an (H, W, 1) or (H, W, 3) uint8 array, cropped and resized when ``size`` is given.

    channels None: grey images (modes 1, L, LA) stay one channel and every
    other mode is converted to RGB (alpha is dropped); 1 or 3: converted to
    grey or to RGB whatever the file holds. Damaged or non-image files raise
    ValueError naming the file.
    """
    image = None
    try:
        # Only the two decoders the folder format promises see the user's files.
        with warnings.catch_warnings():  # the size is checked below, with a clearer message
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file, formats=("PNG", "JPEG"))
        if image.width * image.height > _MOST_PIXELS:  # before the pixels are allocated
            raise ValueError(f"{image.width}x{image.height} pixels, more than the {_MOST_PIXELS:,} an image may have "
                             "(a damaged header, or a decompression bomb)")
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error,
            Image.DecompressionBombError) as err:
        if image is not None:
            image.close()
        raise ValueError(
            f"{file}: cannot read it as an image ({err}); expected a PNG or JPEG file, it may be damaged"
        ) from err
    with image:
        mode = image.mode
        if mode in ("I", "F") or mode.startswith("I;"):
            # Pillow would clip these to 0..255 rather than scale them.
            raise ValueError(
                f"{file}: image mode {mode} (16- or 32-bit values) is not supported; expected 8-bit grey or colour"
            )
        grey = mode in _GREY_MODES if channels is None else channels == 1
        image = image.convert("L" if grey else "RGB")
    if size is not None:
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        if side != size:
            # Image.Resampling is Pillow >= 9.1; the plain name is older and newer Pillow.
            image = image.resize((size, size), getattr(Image, "Resampling", Image).BICUBIC)
    pixels = np.asarray(image)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], -1)


def read_image(path, channels=None, size=None):
    """One PNG or JPEG file as an (H, W, C) uint8 array (C = 1 or 3).

    channels: None keeps grey files grey and makes the rest RGB; 1 or 3 converts to that
    size:     None, or crop to the centred square and resize to size x size
    """
    from PIL import Image

    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
    return _decode_image(Image, Path(path), size, channels)


def read_image_folder(path, size=None, progress=True):
    """Read a folder of PNG/JPEG images (``.png``, ``.jpg``, ``.jpeg``, any case).

    path:    a folder holding the images directly, or one sub-folder per
             class (``path/<class>/<image>``, as torchvision's ImageFolder)
    size:    None: every image must have the size of the first one.
             An int S: each image is cropped to its largest centred square and
             resized to S x S with Pillow's bicubic filter (which averages over
             the source pixels when shrinking, so it does not alias)
    returns: ImageSet, images (N, H, W, C) uint8, max_value 255; C is 1 when
             every image is grey, else 3 (RGB; grey images among colour ones
             get R = G = B). classes (N,) int64 when there are class
             sub-folders: the sorted sub-folder names are classes 0..K-1; else None.
    progress: show a progress bar for folders of 2,000 images or more

    Files are taken in name order (class folder by class folder), so the
    order is the same on every machine. Other files (a README, say) and names
    starting with "." are skipped; a file with an image suffix that is not a
    readable image is an error.
    """
    from PIL import Image

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such folder")
    if not path.is_dir():
        raise ValueError(f"{path}: is a file, expected a folder of images")
    if size is not None and (not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1):
        raise ValueError(f"{path}: size must be None or an integer >= 1, got {size!r}")
    files, classes = _image_folder_files(path)
    images = None
    bar = tqdm(files, desc=f"reading {path.name}", unit="image", leave=False,
               disable=not progress or len(files) < _PROGRESS_MIN_FILES)
    for index, file in enumerate(bar):
        pixels = _decode_image(Image, file, size)
        if images is None:
            # Preallocated once the first image gives the size: the uint8
            # array is all the memory the reading takes.
            first = file
            images = np.empty((len(files), *pixels.shape), np.uint8)
        elif pixels.shape[:2] != images.shape[1:3]:
            height, width = images.shape[1:3]
            raise ValueError(
                f"{file}: is {pixels.shape[1]}x{pixels.shape[0]} pixels (width x height), but {first} is "
                f"{width}x{height}; expected every image in {path} to have the same size. "
                "Pass --size S (size=S) to crop each image to a centred square and resize it to SxS"
            )
        if pixels.shape[2] > images.shape[3]:
            # The first colour image after grey ones: from here on all is RGB.
            coloured = np.empty((*images.shape[:3], 3), np.uint8)
            coloured[:index] = images[:index]  # grey -> R = G = B
            images = coloured
        images[index] = pixels  # a grey image among colour ones broadcasts to R = G = B
    return ImageSet(images, max_value=255, source=str(path), classes=classes)

