"""``minipixel learn``: learn the internals by writing them, graded by the library itself.

Each exercise is a module here with its ``NAME``, ``TITLE``, ``SKELETON`` (the
file ``learn start`` writes), ``HINTS``, ``SOLUTION`` (where the library's own
implementation is) and ``check(module)`` (grade the learner's module:
``(lines, passed)``). The grader is the library: its reference code, its float64
central differences. ``runner`` holds the commands.
"""
from . import (ex_adam, ex_conv_loops, ex_data, ex_im2col, ex_masks, ex_relu, ex_residual, ex_sampler, ex_softmax_ce,
               ex_gated, ex_onestep, ex_train, ex_xp)

# In the order to do them.
EXERCISES = {ex.NAME: ex for ex in (ex_masks, ex_relu, ex_conv_loops, ex_im2col, ex_residual, ex_softmax_ce, ex_adam,
                                    ex_data, ex_sampler, ex_onestep, ex_gated, ex_train,
                                    ex_xp)}
