"""Folders of PNG and JPEG pictures: your own images as a dataset.

Two layouts, as torchvision's ImageFolder:

    photos/a.png, photos/b.jpg, ...                    no classes
    photos/cat/1.png, photos/dog/7.jpeg, ...           one sub-folder per class

The class of an image is the position of its sub-folder among the sorted
sub-folder names. Files are taken in name order (class folder by class
folder), so the order is the same on every machine.

Before any image is decoded, every file's header is read (Pillow reads the
size and mode without decoding): an image of more pixels than an image may
have (a decompression bomb) is refused, and so is a folder whose decoded
images would take more than half the memory available, in one line naming
the folder and the sizes (a few KB of all-zero PNGs can claim gigabytes).

Every image must have the size of the first one, unless ``size`` is given:
then each is cropped to its largest centred square and resized to
``size x size``. Grey images stay one channel (C = 1) unless a colour image is
among them, which makes the whole set RGB (C = 3, grey ones get R = G = B).
Pillow decodes the files; only its PNG and JPEG decoders ever see them.

    images: (N, H, W, C) uint8, max_value 255; classes (N,) int64 or None
"""
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data import ImageSet
from ..memory import available_memory
from ._files import check_is_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Below this many files the reading is quick enough that a progress bar is noise.
_PROGRESS_MIN_FILES = 2000
# A bigger image (8192 x 8192) is refused before it is decoded: its header may lie.
# Pillow's own limit (Image.MAX_IMAGE_PIXELS) applies too, when it is lower.
_MOST_PIXELS = 2**26
# The share of the memory available (MemAvailable, or what the address-space
# limit leaves, when less) that a folder's decoded images may take.
_MEMORY_SHARE = 0.5
# Bytes a decoding image may take beside the result, per pixel: the decoded
# image (up to 4 bands), its conversion and its array copy.
_DECODE_BYTES_PER_PIXEL = 12
# Pillow modes read as one grey channel; every other 8-bit mode becomes RGB.
_GREY_MODES = ("1", "L", "LA", "La")


def _image_names_in(folder):
    """The image files directly in ``folder``, sorted by name (hidden files skipped).

    Anything with an image suffix that exists and is not a folder counts: a FIFO
    or a device under an image's name is then refused by name, not skipped."""
    return sorted(
        (p for p in folder.iterdir()
         if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.exists() and not p.is_dir()),
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


def _most_pixels(Image):
    """The most pixels an image may have: ours, or Pillow's MAX_IMAGE_PIXELS when lower."""
    return min(_MOST_PIXELS, Image.MAX_IMAGE_PIXELS or _MOST_PIXELS)


def _open_image(Image, file, decode=True):
    """``file`` opened with Pillow (header read; pixels decoded when ``decode``),
    refused before decoding when it claims more pixels than an image may have.
    Damaged or non-image files raise ValueError naming the file."""
    check_is_file(file)  # a FIFO or a device under an image's name: one line, no hang
    image = None
    try:
        # Only the two decoders the folder format promises see the user's files.
        with warnings.catch_warnings():  # the size is checked below, with a clearer message
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file, formats=("PNG", "JPEG"))
        if image.width * image.height > _most_pixels(Image):  # before the pixels are allocated
            raise ValueError(f"{image.width}x{image.height} pixels, more than the {_most_pixels(Image):,} an image may "
                             "have (a damaged header, or a decompression bomb)")
        if decode:
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error,
            Image.DecompressionBombError) as err:
        if image is not None:
            image.close()
        raise ValueError(
            f"{file}: cannot read it as an image ({err}); expected a PNG or JPEG file, it may be damaged"
        ) from err
    return image


def _decode_image(Image, file, size, channels=None):
    """One image file as an (H, W, 1) or (H, W, 3) uint8 array, cropped and resized when ``size`` is given.

    channels None: grey images (modes 1, L, LA) stay one channel and every
    other mode is converted to RGB (alpha is dropped); 1 or 3: converted to
    grey or to RGB whatever the file holds. Damaged or non-image files raise
    ValueError naming the file.
    """
    image = _open_image(Image, file)
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


def _address_space_left():
    """Bytes the address-space limit (ulimit -v, RLIMIT_AS) still leaves this process, or None when unlimited."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm") as f:  # the address space already taken, in pages
            return max(limit - int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE"), 0)
    except (ImportError, OSError, ValueError, IndexError):
        return None


def _memory_budget():
    """Bytes a folder's decoded images may take: ``_MEMORY_SHARE`` of the memory
    available (MemAvailable), or of what the address-space limit leaves when that
    is less; None when neither is known."""
    known = [value for value in (available_memory(), _address_space_left()) if value is not None]
    return int(min(known) * _MEMORY_SHARE) if known else None


def _size_text(n):
    """'4.75 GiB', or '0.2 MiB' below a GiB."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _folder_shape(Image, path, files, size, progress):
    """(height, width, channels) of the folder's array, from the files' headers
    alone (nothing decoded): the first image's size (or size x size), 1 channel
    when every image is grey. Refuses an image of more pixels than an image may
    have, and a folder whose decoded images would not fit in ``_memory_budget()``
    (images of another size than the first are refused while decoding)."""
    first, largest, grey = None, 0, True
    for file in tqdm(files, desc=f"checking {path.name}", unit="image", leave=False,
                     disable=not progress or len(files) < _PROGRESS_MIN_FILES):
        with _open_image(Image, file, decode=False) as image:
            first = first or image.size
            largest = max(largest, image.width * image.height)
            grey = grey and image.mode in _GREY_MODES
    channels = 1 if grey else 3
    width, height = first if size is None else (size, size)
    needed = len(files) * height * width * channels + largest * _DECODE_BYTES_PER_PIXEL
    budget = _memory_budget()
    if budget is not None and needed > budget:
        raise ValueError(
            f"{path}: its {len(files):,} images would take {_size_text(needed)} decoded ({width}x{height} pixels, "
            f"{channels} channel(s) each), more than the {_size_text(budget)} a folder may take (half the memory "
            "available, or of what ulimit -v leaves); pass --size S (size=S) to shrink each image to SxS, "
            "or use fewer images"
        )
    return height, width, channels


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
    readable image is an error. Every header is read before any image is
    decoded: an image of more than 8192 x 8192 pixels, or a folder whose images
    would take more than half the memory available decoded, is refused first.
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
    height, width, channels = _folder_shape(Image, path, files, size, progress)
    # The uint8 array is all the memory the reading keeps.
    images = np.empty((len(files), height, width, channels), np.uint8)
    bar = tqdm(files, desc=f"reading {path.name}", unit="image", leave=False,
               disable=not progress or len(files) < _PROGRESS_MIN_FILES)
    for index, file in enumerate(bar):
        pixels = _decode_image(Image, file, size, channels)  # grey ones among colour ones: R = G = B
        if pixels.shape[:2] != (height, width):
            raise ValueError(
                f"{file}: is {pixels.shape[1]}x{pixels.shape[0]} pixels (width x height), but {files[0]} is "
                f"{width}x{height}; expected every image in {path} to have the same size. "
                "Pass --size S (size=S) to crop each image to a centred square and resize it to SxS"
            )
        images[index] = pixels
    return ImageSet(images, max_value=255, source=str(path), classes=classes)
