"""How much memory a piece of work will need, estimated from a model's
configuration before anything is built, and a refusal when it will not fit.

The estimates are deliberately simple (counts of the maps a layer keeps, times
the positions of a batch); a command refuses work whose estimate exceeds the
memory the system can give without swapping, with the numbers, rather than
let the machine swap or the process be killed halfway.
"""


def available_memory():
    """Bytes of memory the system can give without swapping (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def parameter_count(config):
    """How many numbers the weights of the model of ``config`` hold (biases, masks
    and class biases aside), from the configuration alone, before anything is built."""
    h, C, L, k = config.filters, config.channels, config.levels, config.input_kernel
    if config.arch == "gated":
        # per layer: the vertical and horizontal convolutions (each 2 h wide: both halves of
        # the gate; the horizontal one is held as a whole masked kernel), the link (2 h to 2 h),
        # the 1x1 output; the first layer reads the C input channels with a k x k kernel
        per_layer = 4 * h * h + h * h
        first = 2 * k * k * C * 2 * h + per_layer
        return first + config.blocks * (2 * 9 * h * 2 * h + per_layer) + h * h + h * C * L
    m1 = h // 2 if config.block == "half" else h
    m2 = h // 2
    return k * k * C * h + config.blocks * (h * m1 + 9 * m1 * m2 + m2 * h) + 2 * h * h + h * C * L


def training_bytes(config, batch, itemsize=4):
    """An estimate, from the configuration alone (before anything is built), of
    the memory a training step at ``batch`` takes: the maps forward keeps for
    backward (about 1.25 of every layer's output channels), two of the widest
    maps alive in backward, and the parameters with their gradients and Adam's
    two moments. docs/testing.md (Reliability) compares it with measured peaks."""
    h, C, L = config.filters, config.channels, config.levels
    if config.arch == "gated":
        kept = (config.blocks + 1) * 9 * h + h + C * L  # per layer: v and h pre-activations, link, gates, output; head
        widest = 2 * h
    else:
        m1 = h // 2 if config.block == "half" else h
        kept = h + config.blocks * (m1 + h // 2 + h) + 2 * h + C * L
        widest = h + m1
    positions = batch * config.height * config.width
    return int(positions * itemsize * (1.25 * kept + 2 * widest) + 4 * parameter_count(config) * itemsize)


def inference_bytes(config, batch, itemsize=4):
    """An estimate of the memory of a forward pass without caches (evaluation) at
    ``batch``: a few of the widest maps alive at once, and the parameters."""
    h = config.filters * (2 if config.arch == "gated" else 1)
    positions = batch * config.height * config.width
    return int(positions * itemsize * (6 * h + 2 * config.channels * config.levels) + 2 * training_bytes(
        config, 0, itemsize))


def sampling_bytes(config, n, batch, height, width, itemsize=4):
    """An estimate of the memory of sampling ``n`` images of ``height x width``,
    ``batch`` at a time: the uniform numbers drawn up front (float64) and the
    labels of all of them, and the input maps the sampler keeps per layer for one batch."""
    pixels = height * width * config.channels
    maps = min(n, batch) * height * width * (config.blocks + 2) * config.filters * 2 * itemsize
    return int(n * pixels * 9 + maps + 2 * training_bytes(config, 0, itemsize))


def check_memory(needed, what, available=None):
    """Refuse work that would need more than the memory available: a MemoryError
    with the estimate and what there is. ``available`` defaults to ``available_memory()``."""
    available = available_memory() if available is None else available
    if available is not None and needed > available:
        raise MemoryError(f"{what} needs about {needed / 2**30:.2f} GiB, and {available / 2**30:.2f} GiB of memory "
                          "is available: use a smaller --batch (or fewer --filters or --blocks)")
