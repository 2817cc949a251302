"""A run's data: the images of a file or named dataset as the labels (and classes)
the run's settings say (levels, binarization and its seed, image size).
Training, ``minipixel eval`` and ``minipixel complete`` all read data through
``run_labels``; ``prepare_data`` finds a run's training and validation sets.
"""
from . import data, datasets


def run_labels(source, settings, model=None, checkpoint=None, progress=True):
    """The images of ``source`` (a file, NAME:SPLIT, or an ImageSet already read) as
    ``(labels, classes)``, exactly as a run with ``settings`` sees its data (its data
    folder and image size, its levels, and at 2 levels its binarization mode and seed).
    classes: (N,) ints, or None when the data has no class labels (or the run does not use them).

    model: the model (read from ``checkpoint``) the labels are for: data that does not
    fit it is refused with one line that says how (its size or channels differ, or it
    is binary and the model has more levels).
    """
    images = source if isinstance(source, data.ImageSet) else datasets.load(
        source, data_dir=settings.data_dir, size=settings.size, progress=progress)
    if model is not None:
        _check_fits(images, model, source, checkpoint)
    elif images.max_value == 1 and settings.levels > 2:
        raise ValueError(f"{images.source}: the images are binary (0/1), and --levels {settings.levels} would train a "
                         "model on two of its levels whose likelihood means nothing (eval refuses it); use --levels 2")
    labels = data.to_labels(images, settings.levels, binarize_mode=settings.binarize, seed=settings.seed)
    if not settings.conditional:
        return labels, None
    if images.classes is None:
        raise ValueError(f"{images.source}: --conditional needs class labels, and this data has none (binarized "
                         "MNIST .amat files and .npz files without 'classes' carry no labels; MNIST and "
                         "Fashion-MNIST IDX files, CIFAR-10, mnist5k and image folders with a sub-folder per class do)")
    return labels, images.classes


def _check_fits(images, model, source, checkpoint):
    """A ValueError unless the images are the size, colours and kind of data the model was trained on."""
    cfg = model.config
    H, W, C = images.images.shape[1:]
    if (H, W, C) != (cfg.height, cfg.width, cfg.channels):
        kind = {1: "grey", 3: "RGB"}
        hint = ""
        if C != cfg.channels:
            hint = f"; the model draws {kind[cfg.channels]} images and needs {kind[cfg.channels]} data"
        elif cfg.height == cfg.width:
            hint = f"; for an image folder, --size {cfg.height} crops and resizes every image to fit"
        raise ValueError(f"{source}: the images are {H}x{W} {kind.get(C, f'{C}-channel')}, but the checkpoint {checkpoint} was "
                         f"trained on {cfg.height}x{cfg.width} {kind[cfg.channels]} images{hint}")
    if images.max_value == 1 and cfg.levels > 2:
        raise ValueError(f"{source}: the images are binary (0/1), but the checkpoint {checkpoint} has {cfg.levels} levels per "
                         "sub-pixel (it was trained on data with more values); its likelihood of binary data "
                         "would mean nothing")


def prepare_data(settings, log=print, progress=True):
    """The train and validation data of a run: two ``(labels, classes)`` pairs."""
    valid_spec = settings.valid
    if valid_spec is None and ":" in settings.data and settings.data.endswith(":train"):
        candidate = settings.data[: -len("train")] + "valid"
        if datasets.has_split(candidate):
            valid_spec = candidate
    if valid_spec is not None:
        train, valid = (run_labels(spec, settings, progress=progress) for spec in (settings.data, valid_spec))
        where = valid_spec
    else:
        images = datasets.load(settings.data, data_dir=settings.data_dir, size=settings.size, progress=progress)
        train, valid = (run_labels(part, settings) for part in data.split_holdout(images, 0.1, settings.seed))
        where = f"a 10% hold-out of {settings.data} (seed {settings.seed})"
    shape, valid_shape = train[0].shape, valid[0].shape
    if valid_shape[0] == 0:
        raise ValueError(f"validation data: {where} holds no images; a run needs at least one to evaluate on")
    if shape[1:] != valid_shape[1:]:
        raise ValueError(f"train images are {shape[1:]} but validation images are {valid_shape[1:]}")
    classes = "" if train[1] is None else f", {int(train[1].max()) + 1} classes"
    log(f"data: {shape[0]} training images from {settings.data}, {valid_shape[0]} validation images from {where}; "
        f"{shape[1]}x{shape[2]}x{shape[3]}, {settings.levels} levels{classes}")
    return train, valid
