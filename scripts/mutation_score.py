"""The score of the last mutmut run (``scripts/mutation.sh``): per module and in all,
then every survivor by name (``mutmut show NAME`` prints it as a diff).

score = killed / (mutants - equivalent), where a mutant that times out counts as
killed (as mutmut counts it) and one that no test reaches counts as a survivor.
Equivalent mutants (a change that cannot alter behaviour) are listed in
EQUIVALENT with the reason, and left out of the score.
"""
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

KILLED = {1, 3, 24, 36, 152, 255, -24, -9, -11}  # test failure, pytest error, timeout, crash
SURVIVED = {0, 5, 33}  # tests pass, or no test reaches the mutant

# mutant name -> why it cannot change what the code does
EQUIVALENT = {}


def main(folder="mutants"):
    per_module = defaultdict(Counter)
    survivors = []
    for meta in sorted(Path(folder).rglob("*.py.meta")):
        module = meta.relative_to(folder).as_posix().removesuffix(".meta")
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if name in EQUIVALENT:
                per_module[module]["equivalent"] += 1
            elif code in KILLED:
                per_module[module]["killed"] += 1
            elif code in SURVIVED:
                per_module[module]["survived"] += 1
                survivors.append((name, "no test reaches it" if code in (5, 33) else "survived"))
            else:
                per_module[module]["not run"] += 1
    if not per_module:
        sys.exit(f"no mutmut results under {folder}/: run scripts/mutation.sh first")
    total = Counter()
    print(f"{'module':28} {'mutants':>8} {'killed':>7} {'survived':>9} {'equiv.':>7} {'not run':>8} {'score':>7}")
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
            f"{counts['not run']:8d} {score:>7}")


if __name__ == "__main__":
    main(*sys.argv[1:])
