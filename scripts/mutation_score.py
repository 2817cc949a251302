"""The score of the last mutmut run (``scripts/mutation.sh``): per module and in all,
then every survivor by name (``mutmut show NAME`` prints it as a diff).

score = killed / (mutants - equivalent), where a mutant that times out counts as
killed (as mutmut counts it) and one that no test reaches counts as a survivor.
"by time" counts the killed mutants that some test ran far past its unmutated time
for (tests/conftest.py fails such a test and lists the mutant in
mutants/too-slow.txt): they count as killed too, as mutmut's own timeouts do.
Equivalent mutants (a change that cannot alter behaviour) are listed in
EQUIVALENT with the reason, and left out of the score.
"""
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

TIMED_OUT = {24, 36, 152, 255, -24, -9}  # mutmut's timeouts (SIGXCPU, or killed past the wall limit)
KILLED = {1, 3, -11} | TIMED_OUT  # test failure, pytest error, crash, timeout
SURVIVED = {0, 5, 33}  # tests pass, or no test reaches the mutant

# mutant name -> why it cannot change what the code does
EQUIVALENT = {
    "minipixel.data.x_quantize__mutmut_5": 'kind not in "XXfiubXX": a dtype kind is one letter, and "X" is none',
    "minipixel.data.x_binarize__mutmut_5": 'kind not in "XXfiubXX": a dtype kind is one letter, and "X" is none',
    "minipixel.data.xǁImageSetǁ__post_init____mutmut_29": 'kind not in "XXiuXX": as above',
    "minipixel.sampling.x_sample_naive__mutmut_51": "labels_to_inputs(..., dtype=None): the assignment into x casts "
                                                    "to x's dtype, and k/(L-1) rounded via float64 is the float32 quotient",
    "minipixel.optim.xǁSGDǁ__init____mutmut_10": "array_module(None).zeros_like(p): NumPy's zeros_like dispatches "
                                                "on p (__array_function__), so it returns p's kind of array",
    **{f"minipixel.optim.xǁAdamǁ__init____mutmut_{n}": "array_module(None).zeros_like: dispatches on its argument "
                                                       "(__array_function__), as SGD's"
       for n in (18, 21, 28)},
    "minipixel.optim.xǁAdamǁ__init____mutmut_23": "flat[1] for flat[0]: the gradients' flat array has the parameters' "
                                                 "size, dtype and device, and is only read for those",
    **{f"minipixel.layers.xǁResidualBlockǁforward_at__mutmut_{n}": "i or j None in the calls to conv1/conv3: 1x1 layers "
                                                         "ignore the position" for n in (2, 3, 28, 29)},
    **{f"minipixel.layers.xǁResidualBlockǁstart_at__mutmut_{n}": "height or width None: no child's start_at reads them"
       for n in (2, 3)},
    **{f"minipixel.layers.xǁLayerǁload_parameters__mutmut_{n}": "asarray without dtype: the assignment into p casts, "
                                                  "rounding the same" for n in (21, 23)},
    **{name: "array_module(None): NumPy's functions and ufuncs hand strict/CuPy arrays to their own module"
       for name in ("minipixel.layers.xǁReLUǁforward_at__mutmut_2", "minipixel.layers.xǁReLUǁforward__mutmut_2", "minipixel.layers.xǁReLUǁbackward__mutmut_4")},
    "minipixel.layers.xǁMaskedConv2dǁstart_at__mutmut_11": "kernel >= 1: a 1x1 layer then fills W_above/W_row, which it never reads",
    **{name: "kernel > 2: conv_mask refuses even kernels, so > 1 and > 2 agree"
       for name in ("minipixel.layers.xǁMaskedConv2dǁstart_at__mutmut_12",
                    "minipixel.layers.xǁMaskedConv2dǁstart_at__mutmut_80",
                    "minipixel.layers.xǁMaskedConv2dǁbackward__mutmut_144")},
    "minipixel.layers.xǁMaskedConv2dǁstart_at__mutmut_94": 'row_at = "": always set at (i, 0, 0) before it is read',
    "minipixel.layers.xǁMaskedConv2dǁstart_at__mutmut_79": "kernel >= 1: a 1x1 layer then gets tap offsets and a tap "
                                                          "key, which its forward_many never reads",
    **{f"minipixel.layers.xǁMaskedConv2dǁstart_at__mutmut_{n}": "the tap key's label: every layer's key has the same one"
       for n in (86, 87)},
    **{f"minipixel.layers.xǁCanvasǁwrite_many__mutmut_{n}": "the index key's label: every canvas's key has the same one"
       for n in (9, 10)},
    **{f"minipixel.layers.xǁResidualBlockǁforward_many__mutmut_{n}": "positions None in the calls to conv1/conv3: "
                                                                    "1x1 layers ignore them"
       for n in (3, 23)},
    "minipixel.sampling.x__sample_wavefront__mutmut_85": "labels_to_inputs(..., dtype=None): the write into the canvas "
                                                        "casts, and k/(L-1) rounded via float64 is the float32 quotient "
                                                        "(as sample_naive's 51)",
    **{f"minipixel.sampling.x__sample_wavefront__mutmut_{n}": "mid >= start / mid <= stop: an empty write or draw "
                                                             "(no known or no drawn row in flight) changes nothing"
       for n in (81, 97)},
    **{name: "reshape(..., -2): any negative size is 'the rest'"
       for name in ("minipixel.layers.xǁMaskedConv2dǁforward_at__mutmut_36", "minipixel.layers.xǁMaskedConv2dǁforward_row__mutmut_35",
                    "minipixel.layers.xǁLayerǁpack_parameters__mutmut_31", "minipixel.im2col.x_gather_index__mutmut_69",
                    "minipixel.im2col.x_gather_index__mutmut_78", "minipixel.layers.xǁMaskedConv2dǁbackward__mutmut_49",
                    "minipixel.layers.xǁMaskedConv2dǁbackward__mutmut_108",
                    "minipixel.layers.xǁMaskedConv2dǁweight_matrix__mutmut_17",
                    "minipixel.layers.xǁMaskedConv2dǁforward__mutmut_33", "minipixel.layers.xǁMaskedConv2dǁ_cols__mutmut_36",
                    "minipixel.layers.xǁCanvasǁ__init____mutmut_21",
                    *(f"minipixel.sampling.x__sample_wavefront__mutmut_{n}" for n in (128, 131, 138, 150)),
                    *(f"minipixel.layers.xǁMaskedConv2dǁforward_many__mutmut_{n}" for n in (16, 49, 77, 109)))},
    "minipixel.layers.xǁMaskedConv2dǁforward_row__mutmut_11": "relu = None: only its truth value is read (False and None agree)",
    **{f"minipixel.layers.xǁResidualBlockǁ__init____mutmut_{n}": 'mask argument dropped: MaskedConv2d\'s default is "B"'
       for n in (40, 56, 70)},
    "minipixel.im2col.x_im2col_loop__mutmut_13": "out.reshape(None): NumPy keeps the shape, and out is always "
                                                 "(B, H, W, T, C)",
    **{f"minipixel.im2col.x_scratch__mutmut_{n}": "another key for the thread's buffer dict: used consistently"
       for n in (2, 6, 7)},
    "minipixel.im2col.x_scratch__mutmut_18": '= "" for = None before allocating: it only drops the old reference',
    "minipixel.optim.xǁAdamǁ_update__mutmut_2": "array_module(None).sqrt: a ufunc, dispatches on its argument "
                                                "(__array_ufunc__), as losses' exp/log below",
    "minipixel.sampling.x_draw__mutmut_3": "array_module(None).exp/cumsum/minimum: dispatch on their argument, "
                                           "as above",
    "minipixel.sampling.x_draw__mutmut_5": "logits.astype(None): None is float64, the dtype asked for",
    "minipixel.sampling.x__sample_cached__mutmut_53": "labels_to_inputs(..., dtype=None): the canvas assignment casts "
                                                      "to its dtype, and k/(L-1) rounded via float64 is the float32 "
                                                      "quotient (as sample_naive 51)",
    "minipixel.optim.xǁSGDǁload_state_dict__mutmut_3": "asarray(..., dtype=None): the assignment into the buffer casts",
    "minipixel.optim.xǁSGDǁload_state_dict__mutmut_5": "asarray(...) without dtype: the assignment into the buffer casts",
    "minipixel.optim.xǁAdamǁload_state_dict__mutmut_19": "asarray(..., dtype=None): the assignment into the buffer casts",
    "minipixel.optim.xǁAdamǁload_state_dict__mutmut_21": "asarray(...) without dtype: the assignment into the buffer casts",
    "minipixel.conv_reference.x__padded__mutmut_2": "array_module(None).pad: np.pad dispatches on x "
                                                   "(__array_function__), so it returns x's kind of array",
    "minipixel.conv_reference.x_conv2d_reference_backward__mutmut_2": "array_module(None).zeros_like: dispatches on "
                                                                     "its argument, as above",
    "minipixel.conv_reference.x_conv2d_reference__mutmut_3": "k = Wm.shape[1]: kernels are square (k x k)",
    "minipixel.conv_reference.x_conv2d_reference_backward__mutmut_5": "k = Wm.shape[1]: kernels are square (k x k)",
    "minipixel.conv_reference.x_conv2d_reference_backward__mutmut_28": "reshape(-2, C): NumPy reads any negative "
                                                                      "size as 'the rest'",
    "minipixel.conv_reference.x_conv2d_reference_backward__mutmut_35": "reshape(-2, C): NumPy reads any negative "
                                                                      "size as 'the rest'",
    "minipixel.im2col.x_scatter_index__mutmut_2": 'cache key "XXscatterXX": any label that differs from the '
                                                 "gather's key names the same entry",
    "minipixel.im2col.x_scatter_index__mutmut_3": 'cache key "SCATTER": as above',
    "minipixel.im2col.x_scatter_index__mutmut_18": "gather_index(..., xp omitted): its default is NumPy, "
                                                  "which the line passed",
    "minipixel.masks.x_group_slices__mutmut_12": "range(colors + 2): the extra start entry is never read",
    "minipixel.masks.x_live_taps__mutmut_9": "mask.shape[1] for shape[0]: masks are k x k",
    "minipixel.masks.x_live_taps__mutmut_12": "reshape(..., -2): any negative size is 'the rest'",
    "minipixel.losses.x__check__mutmut_13": 'kind not in "XXiuXX": a dtype kind is one letter, and "X" is none',
    "minipixel.losses.x_log_softmax__mutmut_2": "array_module(None).exp/log: ufuncs dispatch on their argument "
                                               "(__array_ufunc__), same results and operation counts on the stand-in",
    "minipixel.losses.x_nll_per_image__mutmut_6": "array_module(None).take_along_axis: dispatches on its argument "
                                                 "(__array_function__), and np.intp is the same dtype everywhere",
    **{f"minipixel.losses.x_{name}__mutmut_{n}": "reshape(-2, ...): NumPy, the stand-in and CuPy read any negative "
                                                "size as 'the rest'"
       for name, n in (("nll_per_image", 27), ("softmax_cross_entropy", 38), ("softmax_cross_entropy", 47),
                       ("softmax_cross_entropy", 62))},
    "minipixel.checkpoint.x__check_state__mutmut_9": "the step's default 1 for 0: the default is only checked, "
                                                    "never used, and 1 passes the check as 0 does",
    "minipixel.checkpoint.x__check_state__mutmut_16": "the clock's default 1.0 for 0.0: as above",
    "minipixel.checkpoint.x__check_state__mutmut_31": 'float("INF"): Python parses it as float("inf")',
    "minipixel.checkpoint.x__check_optimizer_state__mutmut_7": 'split("/") with another maxsplit: [0] is the text '
                                                              'before the first "/"',
    "minipixel.checkpoint.x__check_optimizer_state__mutmut_10": "as above",
    "minipixel.checkpoint.x__check_optimizer_state__mutmut_37": 'kind not in "XXiuXX": as for losses',
    **{f"minipixel.checkpoint.x__check_optimizer_state__mutmut_{n}": 'split("/") variants after the key-set check: '
                                                                    'every key is "<moment>/<name>" with no other "/"'
       for n in (59, 60, 62)},
    **{f"minipixel.train.x__trim_steps__mutmut_{n}": 'split(",") with another maxsplit: the line kept has '
                                                      "exactly 3 commas, and [0] is the text before the first"
       for n in (15, 18, 24, 27)},
    "minipixel.train.x__loop__mutmut_62": "ranks.size >= 1: one process's agree() returns what it is given, "
                                         "so the flags come back unchanged",
    "minipixel.train.x__loop__mutmut_67": "agree([1, ...]): the first value is summed and then dropped by [1:]",
    "minipixel.train.xǁRunǁevaluate_split__mutmut_14": "an empty slice's nll_nats 1.0: ranks send nll_nats * images, "
                                                      "0 either way (an empty validation set is refused before)",
    "minipixel.train.xǁRunǁevaluate_split__mutmut_17": "an empty slice's images 1: as above, nll_nats is 0 there",
    "minipixel.train.xǁRunǁevaluate_split__mutmut_29": "ranks.size >= 1: one process then computes (nll * N) / N, "
                                                      "its own mean to the last bit or one rounding off",
    "minipixel.layers.xǁLayerǁ__init____mutmut_2": "grads None: a layer reads grads only by the names of its own "
                                                  "params, and every layer with params sets its own grads",
    **{f"minipixel.layers.xǁMaskedConv2dǁ__init____mutmut_{n}": "the mask kept as float64: only gradcheck reads it, "
                                                               "as 0/1 factors on float64 copies (same values)"
       for n in (45, 47)},
    **{f"minipixel.layers.xǁMaskedConv2dǁ__init____mutmut_{n}": 'forward_at\'s (79) or forward_many\'s (80) state '
                                                               'starts as "": start_at sets all of it before either '
                                                               "reads any (forward_many sets y_many itself); without "
                                                               "start_at both fail" for n in (79, 80)},
    **{f"minipixel.layers.xǁMaskedConv2dǁbackward__mutmut_{n}": "the ReLU-masked gradient written to a new array, "
                                                               "or to a scratch buffer of another name: the same "
                                                               "values (memory only)"
       for n in (57, 60, 61, 69, 70, 110, 118, 119)},
    "minipixel.layers.xǁMaskedConv2dǁbackward__mutmut_84": "first = None: as falsy as False, and only tested for truth",
    "minipixel.layers.xǁResidualBlockǁ__init____mutmut_75": 'canvas2 starts as "": start_at sets it before '
                                                           "forward_at reads it, and without start_at None fails the "
                                                           "same way (AttributeError)",
    **{f"minipixel.train.xǁRunǁ__init____mutmut_{n}": "time_up starts as None or True: _loop sets it after every "
                                                     "step, before at_evaluation_point (its only reader) runs"
       for n in (244, 245)},
    "minipixel.layers.xǁDropoutǁmask__mutmut_19": "> for >=: a float32 draw equals the rate with probability "
                                                 "2^-24 at most (none for a rate that is no multiple of 2^-24)",
    "minipixel.layers.xǁDropoutǁ__init____mutmut_2": "rate 1.0 at the start: without keys the layer is off, and "
                                                     "set_dropout sets the rate with the keys",
    "minipixel.train.xǁRunǁ__init____mutmut_248": 'dropout starts as "": next_batch sets it before _loop reads it',
    **{f"minipixel.train.x_dropout_keys__mutmut_{n}": "asarray of the positions without dtype: a range of ints is "
                                                     "int64 already"
       for n in (3, 5)},
}


def main(folder="mutants"):
    per_module = defaultdict(Counter)
    survivors = []
    slow_log = Path(folder) / "too-slow.txt"
    slow = set(slow_log.read_text().split()) if slow_log.exists() else set()
    for meta in sorted(Path(folder).rglob("*.py.meta")):
        module = meta.relative_to(folder).as_posix().removesuffix(".meta")
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if name in EQUIVALENT:
                per_module[module]["equivalent"] += 1
            elif code in KILLED:
                per_module[module]["killed"] += 1
                per_module[module]["by time"] += code in TIMED_OUT or name in slow
            elif code in SURVIVED:
                per_module[module]["survived"] += 1
                survivors.append((name, "no test reaches it" if code in (5, 33) else "survived"))
            else:
                per_module[module]["not run"] += 1
    if not per_module:
        sys.exit(f"no mutmut results under {folder}/: run scripts/mutation.sh first")
    total = Counter()
    print(f"{'module':28} {'mutants':>8} {'killed':>7} {'survived':>9} {'equiv.':>7} {'not run':>8} {'score':>7} {'by time':>8}")
    for module, counts in sorted(per_module.items()):
        total.update(counts)
        print(_row(module, counts))
    print(_row("all", total))
    for name, why in survivors:
        print(f"  {name}: {why}")


def _row(name, counts):
    scored = counts["killed"] + counts["survived"]
    mutants = scored + counts["equivalent"] + counts["not run"]
    score = f"{100 * counts['killed'] / scored:.1f}%" if scored else "-"
    return (f"{name:28} {mutants:8d} {counts['killed']:7d} {counts['survived']:9d} {counts['equivalent']:7d} "
            f"{counts['not run']:8d} {score:>7} {counts['by time']:8d}")


if __name__ == "__main__":
    main(*sys.argv[1:])
