"""PyTorch timing of the benchmark's reference model, for the comparison in the
performance table (README.md, docs/performance.md).

PyTorch is not a dependency of minipixel: run this in a separate environment
(`python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch numpy`), in
alternation with `minipixel bench`, since the machine's speed drifts:

    /tmp/torch/bin/python scripts/pytorch_reference.py 16 64

It builds the keras.io PixelCNN as a framework user would (masks multiplied into
the weights at every forward pass, full kernels), and prints one JSON object:
forward and training-step (forward, backward, Adam) medians of 7 timings per
batch size, and the process's peak resident memory.

The model, its training step and a naive sampler are importable (``build``,
``train_step``, ``sample_naive``): scripts/gpu_check.py times them on a GPU beside
minipixel, from this one copy of the model.
"""
import json
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class MaskedConv(nn.Conv2d):
    def __init__(self, cin, cout, k, mask_type):
        super().__init__(cin, cout, k, padding=k // 2)
        m = torch.ones_like(self.weight)
        c = k // 2
        m[:, :, c, c + (mask_type == "B"):] = 0
        m[:, :, c + 1:] = 0
        self.register_buffer("mask", m)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class Block(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.c1 = MaskedConv(h, h, 1, "B")
        self.c2 = MaskedConv(h, h // 2, 3, "B")
        self.c3 = MaskedConv(h // 2, h, 1, "B")

    def forward(self, x):
        y = self.c3(F.relu(self.c2(F.relu(self.c1(F.relu(x))))))
        return x + y


class Net(nn.Module):
    def __init__(self, h=128, blocks=5):
        super().__init__()
        self.inp = MaskedConv(1, h, 7, "A")
        self.blocks = nn.Sequential(*[Block(h) for _ in range(blocks)])
        self.h1 = MaskedConv(h, h, 1, "B")
        self.h2 = MaskedConv(h, h, 1, "B")
        self.out = MaskedConv(h, 2, 1, "B")

    def forward(self, x):
        x = self.blocks(self.inp(x))
        return self.out(F.relu(self.h2(F.relu(self.h1(F.relu(x))))))


def build(filters=128, blocks=5, device="cpu", seed=0):
    """The reference model (1 channel in, 2 levels out) with ``filters`` and ``blocks``,
    its weights drawn from ``seed``, on ``device``, and its Adam optimizer."""
    torch.manual_seed(seed)
    net = Net(filters, blocks).to(device)
    return net, torch.optim.Adam(net.parameters(), 1e-4)


def train_step(net, opt, x, labels):
    """One training step: forward, the loss, backward, Adam. x (B, 1, H, W) floats, labels (B, H, W) ints."""
    opt.zero_grad()
    loss = F.cross_entropy(net(x), labels)
    loss.backward()
    opt.step()


def draw(logits, u):
    """minipixel's draw (``sampling.draw``): for each row of logits (n, levels), the first level
    whose cumulative probability exceeds u (n,), in float64."""
    z = logits.double()
    cdf = torch.exp(z - z.max(1, keepdim=True).values).cumsum(1)
    return (cdf <= u[:, None] * cdf[:, -1:]).sum(1).clamp(max=logits.shape[1] - 1)


@torch.no_grad()
def sample_naive(net, u, rows=None):
    """One full forward pass per pixel, as minipixel's naive sampler: u (n, H, W) uniform
    numbers on the model's device. Stops after ``rows`` rows (all by default); returns
    the (n, 1, H, W) inputs, the drawn levels as floats."""
    n, H, W = u.shape
    x = torch.zeros(n, 1, H, W, device=u.device)
    for i in range(H if rows is None else rows):
        for j in range(W):
            x[:, 0, i, j] = draw(net(x)[:, :, i, j], u[:, i, j]).float()
    return x


def median(fn, repeat=7):
    fn()
    t = []
    for _ in range(repeat):
        s = time.perf_counter(); fn(); t.append(time.perf_counter() - s)
    return float(np.median(t)), t


def main(argv):
    torch.set_num_threads(2)
    net, opt = build()
    res = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    for batch in map(int, argv or ["16", "64"]):
        labels = torch.randint(0, 2, (batch, 28, 28))
        x = labels[:, None].float()

        def fwd():
            with torch.no_grad():
                net(x)

        f, _ = median(fwd)
        s, ts = median(lambda: train_step(net, opt, x, labels))
        res[batch] = {"forward_ms": round(f * 1e3, 1), "forward_images_per_s": round(batch / f, 1),
                      "train_step_ms": round(s * 1e3, 1), "train_images_per_s": round(batch / s, 1),
                      "train_images_per_s_range": [round(batch / max(ts), 1), round(batch / min(ts), 1)]}
    res["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1:])
