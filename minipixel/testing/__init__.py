"""Helpers for testing minipixel (like ``numpy.testing`` or ``chainer.testing``).

``strict``: a CPU stand-in for CuPy whose arrays refuse implicit copies to the
host, so that the tests catch a hidden host round trip without a GPU.
"""
