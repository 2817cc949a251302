#!/usr/bin/env python3
"""Install a finished run as a pretrained model of the package (``minipixel/models``).

    python scripts/install_pretrained.py fashion-mnist-conditional runs/pretrained/fashion-mnist-conditional \
        --reproduce "bash scripts/pretrained_fashion_mnist.sh"

Writes the run's best.npz without the optimizer state as ``minipixel/models/NAME.npz``
and its entry in ``minipixel/models/index.json`` (model, data, training, the validation
NLL, the test NLL of the run's test.json if it has one, and the command). After it,
``minipixel pretrained`` lists the model and ``--pretrained NAME`` uses it (in an
editable install at once; otherwise after reinstalling the package).
"""
import argparse
import json
import sys

from minipixel import pretrained


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the model's name, e.g. binarized-mnist")
    parser.add_argument("run", help="the finished run's folder (it holds best.npz, maybe test.json)")
    parser.add_argument("--reproduce", required=True, help="the command that makes the run from scratch")
    parser.add_argument("--models-dir", default=None, help="where to install (default: the package's models/)")
    args = parser.parse_args(argv)
    try:
        entry = pretrained.install(args.name, args.run, args.reproduce, args.models_dir)
    except (ValueError, FileNotFoundError) as err:
        print(f"install_pretrained: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({args.name: entry}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
