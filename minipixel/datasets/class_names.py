"""The names of the classes of the named datasets that have them, in label order:
what ``sample --class NAME`` takes, ``minipixel pretrained`` lists and a grid of
a class-conditional model writes beside its rows."""

DIGITS = tuple(str(k) for k in range(10))
CLASS_NAMES = {
    "mnist": DIGITS,
    "mnist5k": DIGITS,
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}


def class_names(spec):
    """The class names of the data ``spec`` (``NAME:SPLIT``), or None (a file, or a dataset
    without names)."""
    if not spec or ":" not in spec:
        return None
    return CLASS_NAMES.get(spec.split(":", 1)[0])


def class_number(given, names, classes):
    """The class number that ``given`` (a number, or a name: any case, or the unique start
    of one, e.g. "sneaker", "ankle") means for a model of ``classes`` classes with ``names``
    (or None); a ValueError that lists the names otherwise."""
    text = str(given).strip()
    if text.isdigit():
        return int(text)
    if names:
        for exact in (True, False):
            found = [k for k, name in enumerate(names)
                     if (name.lower() == text.lower() if exact else name.lower().startswith(text.lower()))]
            if len(found) == 1:
                return found[0]
    listed = ", ".join(f"{k} {name}" for k, name in enumerate(names)) if names else f"0 to {classes - 1} (no names)"
    raise ValueError(f"--class: expected a class number or name, got {given!r}; this model's classes: {listed}")
