#!/usr/bin/env python
"""Benchmark the reference model (keras.io PixelCNN): training and sampling speed.

Prints one JSON object; see minipixel/bench.py for what is measured and how.
Same as `minipixel bench`. Usage: python scripts/benchmark.py [--device gpu]
"""
import sys

from minipixel.bench import main

if __name__ == "__main__":
    sys.exit(main())
