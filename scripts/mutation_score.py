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
    "minipixel.sampling.x_sample_naive__mutmut_51": "labels_to_inputs(..., dtype=None): the assignment into x casts "
                                                    "to x's dtype, and k/(L-1) rounded via float64 is the float32 quotient",
    "minipixel.optim.xǁSGDǁ__init____mutmut_10": "array_module(None).zeros_like(p): NumPy's zeros_like dispatches "
                                                "on p (__array_function__), so it returns p's kind of array",
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
