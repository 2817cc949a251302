"""``minipixel learn``: learn the internals by writing them, graded by the library itself.

Each exercise is a module here with its ``NAME``, ``TITLE``, ``SKELETON`` (the
file ``learn start`` writes), ``HINTS``, ``SOLUTION`` (where the library's own
implementation is) and ``check(module)`` (grade the learner's module:
``(lines, passed)``). The grader is the library: its reference code, its float64
central differences. ``runner`` holds the commands.
"""
from . import ex_conv_loops, ex_masks, ex_relu

EXERCISES = {ex.NAME: ex for ex in (ex_masks, ex_relu, ex_conv_loops)}  # in the order to do them
