"""The mutants mutmut makes of one function, numbered as mutmut numbers them, with
the code each one changes and the line it is on; of the working tree, or of a git revision.

    python scripts/mutant_list.py minipixel/train.py Run.__init__
    python scripts/mutant_list.py minipixel/train.py Run.__init__ --rev HEAD~1
    python scripts/mutant_list.py --equivalents

An entry of ``EQUIVALENT`` (scripts/mutation_score.py) is keyed by function and
number (``Run.__init__#84``): after an edit inside a function, list its mutants
before (``--rev``) and after to renumber the entries, without a mutation run.
scripts/equivalent_changes.txt holds the change of the mutant each entry names, as
listed here, and tests/test_mutation_keys.py fails when a key names another change
now; ``--equivalents`` rewrites that file from the keys (once they name the mutants
their reasons describe) and prints the lines it changes.
Needs mutmut (``pip install mutmut==3.8.1``), whose own code makes the list, with
setup.cfg's [mutmut] block as a run reads it. The functions that find the files and
functions mutmut mutates need no mutmut (tests/test_mutation_keys.py uses them).
"""
import argparse
import ast
import configparser
import fnmatch
import io
import os
import subprocess
import tokenize
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHANGES = ROOT / "scripts" / "equivalent_changes.txt"
SHOWN = 100  # characters shown of a mutated node's code and of its line


def mutmut_config():
    """setup.cfg's [mutmut] block: option -> its non-empty lines."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return {key: [line for line in value.split("\n") if line] for key, value in config["mutmut"].items()}


def mutated_files():
    """The package's files mutmut mutates, chosen as mutmut 3.8 chooses them (configuration.should_mutate:
    fnmatch on the path from the repository root, only_mutate minus do_not_mutate)."""
    cfg = mutmut_config()
    files = []
    for source in cfg["source_paths"]:
        for path in sorted((ROOT / source).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if (any(fnmatch.fnmatch(name, p) for p in cfg.get("only_mutate", ["*"]))
                    and not any(fnmatch.fnmatch(name, p) for p in cfg.get("do_not_mutate", []))):
                files.append(path)
    return files


def _mutated(function):
    """Whether mutmut 3.8 mutates a function it finds: not when decorated (but for a lone @staticmethod or
    @classmethod), as mutation/file_mutation.py decides."""
    decorators = function.decorator_list
    return not decorators or (len(decorators) == 1 and isinstance(decorators[0], ast.Name)
                               and decorators[0].id in ("staticmethod", "classmethod"))


def functions(path, skipped=False):
    """The qualnames of the functions mutmut mutates in a file: its top-level functions and the methods of
    its top-level classes (mutmut makes no mutants in nested functions and classes, nor in Enums); with
    ``skipped``, those of them it does not mutate (decorated ones) instead."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _mutated(node) != skipped:
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and not any(
                getattr(base, "id", getattr(base, "attr", None)) in ("Enum", "IntEnum", "StrEnum", "Flag", "IntFlag")
                for base in node.bases):
            names.update(f"{node.name}.{item.name}" for item in node.body
                         if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _mutated(item) != skipped)
    return names


def find_function(module, qualname):
    """The top-level function or method of a top-level class named ``qualname``."""
    import libcst as cst

    owner, _, name = qualname.rpartition(".")
    for statement in module.body:
        if owner and isinstance(statement, cst.ClassDef) and statement.name.value == owner:
            for method in statement.body.body:
                if isinstance(method, cst.FunctionDef) and method.name.value == name:
                    return method
        elif not owner and isinstance(statement, cst.FunctionDef) and statement.name.value == name:
            return statement
    raise SystemExit(f"mutant_list: no function {qualname}")


def _shown(before, after):
    """The change as listed: the two codes, each cut to the SHOWN characters around where they differ."""
    if max(len(before), len(after)) <= SHOWN:
        return f"{before!r} -> {after!r}"
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    start = max(0, min(start - SHOWN // 4, max(len(before), len(after)) - SHOWN))
    cut = [("..." if start else "") + code[start:start + SHOWN] + ("..." if len(code) > start + SHOWN else "")
           for code in (before, after)]
    return f"{cut[0]!r} -> {cut[1]!r}"


def file_mutants(code, qualnames):
    """{qualname: [(number, change)]} for the functions ``qualnames`` of the source ``code``, the change
    being the mutated node's code before and after (``_shown``) and the line it starts on, without its
    comment (so that an edited comment changes no entry's line), from one parse."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider
    from mutmut import configuration
    from mutmut.mutation.file_mutation import create_mutations, group_by_top_level_node

    here = os.getcwd()
    os.chdir(ROOT)  # mutmut reads its configuration (do_not_mutate_patterns) from ./setup.cfg
    try:
        configuration.reset_config()
        configuration.config()
    finally:
        os.chdir(here)
    spans, def_lines = set(), {}  # the lines of the functions asked for: mutmut then makes no mutants elsewhere
    for node in ast.parse(code).body:  # (less work; the same numbers, as a function's mutants are all on its lines)
        owner = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
        for item in node.body if owner else [node]:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and owner + item.name in qualnames:
                spans.update(range(item.lineno, item.end_lineno + 1))
                def_lines[owner + item.name] = item.lineno
    module, mutations, _, _ = create_mutations("source.py", code, covered_lines=spans)
    grouped = group_by_top_level_node(mutations)
    lines = code.splitlines()
    comments = {token.start[0]: token.start[1] for token in tokenize.generate_tokens(io.StringIO(code).readline)
                if token.type == tokenize.COMMENT}  # line -> where its comment starts: left out of the line shown
    listed = {}
    for qualname in qualnames:
        listed[qualname] = []
        function = find_function(module, qualname)
        # the positions in the function alone (faster than in the whole file), from its "def" line on
        positions = MetadataWrapper(cst.Module(body=[function]), unsafe_skip_copy=True).resolve(PositionProvider)
        offset = def_lines[qualname] - positions[function.name].start.line
        for number, m in enumerate(grouped.get(function, ()), start=1):
            row = positions[m.original_node].start.line + offset
            line = lines[row - 1][:comments.get(row)].strip()
            line = line if len(line) <= SHOWN else line[:SHOWN] + "..."
            change = _shown(module.code_for_node(m.original_node), module.code_for_node(m.mutated_node))
            listed[qualname].append((number, f"{change} in {line!r}"))
    return listed


def mutants(code, qualname):
    """[(number, change)] of ``qualname`` in the source ``code`` (``file_mutants``)."""
    return file_mutants(code, [qualname])[qualname]


def function_mutants(qualnames):
    """{qualname: (file, {number: change})} for those of ``qualnames`` that exactly one mutated file defines
    (tests/test_mutation_keys.py reports the others); each file is parsed once."""
    files = defaultdict(set)  # qualname -> the mutated files that define it
    for path in mutated_files():
        for qualname in functions(path) & set(qualnames):
            files[qualname].add(path)
    by_file = defaultdict(list)  # file -> the functions asked for that it alone defines
    for qualname, paths in sorted(files.items()):
        if len(paths) == 1:
            by_file[next(iter(paths))].append(qualname)
    return {qualname: (path.relative_to(ROOT).as_posix(), dict(changes))
            for path, names in by_file.items()
            for qualname, changes in file_mutants(path.read_text(encoding="utf-8"), names).items()}


def change_of(key, found):
    """The change of the mutant an EQUIVALENT ``key`` names, in ``found`` (``function_mutants``); None if none."""
    qualname, _, number = key.rpartition("#")
    return found.get(qualname, (None, {}))[1].get(int(number)) if number.isdigit() else None


def read_changes(path=CHANGES):
    """{key: change} of the file of changes: "KEY: CHANGE" lines, after the "#" comments."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return dict(line.split(": ", 1) for line in lines)


def write_changes(path=CHANGES):
    """Write the file of changes from EQUIVALENT's keys as they are; return the lines it changed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutation_score", ROOT / "scripts" / "mutation_score.py")
    score = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score)
    found = function_mutants({key.rpartition("#")[0] for key in score.EQUIVALENT})
    now = {key: change_of(key, found) for key in sorted(score.EQUIVALENT)}
    missing = [key for key, change in now.items() if change is None]
    if missing:
        raise SystemExit(f"mutant_list: EQUIVALENT keys that name no mutant: {', '.join(missing)} (renumber them; "
                         "tests/test_mutation_keys.py says why)")
    before = read_changes(path) if path.exists() else {}
    header = ("# The change of the mutant each EQUIVALENT key (scripts/mutation_score.py) names, as\n"
              "# `python scripts/mutant_list.py FILE FUNCTION` lists it: tests/test_mutation_keys.py fails when a\n"
              "# key names another change now. Written by `python scripts/mutant_list.py --equivalents`.\n")
    path.write_text(header + "".join(f"{key}: {change}\n" for key, change in now.items()), encoding="utf-8")
    return ([f"-{key}: {before[key]}" for key in sorted(before) if before[key] != now.get(key)]
            + [f"+{key}: {now[key]}" for key in sorted(now) if now[key] != before.get(key)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", help="a source file, e.g. minipixel/train.py")
    parser.add_argument("function", nargs="?", help="a function or Class.method, e.g. Run.__init__")
    parser.add_argument("--rev", help="read the file at this git revision (default: the working tree)")
    parser.add_argument("--equivalents", action="store_true",
                        help=f"rewrite {CHANGES.relative_to(ROOT)} from EQUIVALENT's keys; print the lines changed")
    args = parser.parse_args()
    if args.equivalents:
        if args.path or args.rev:
            parser.error("--equivalents takes no file, function or --rev")
        changed = write_changes()
        print("\n".join(changed) if changed else f"{CHANGES.relative_to(ROOT)}: no change")
        return
    if not args.function:
        parser.error("a file and a function, or --equivalents")
    if args.rev:
        code = subprocess.run(["git", "show", f"{args.rev}:{args.path}"], check=True, capture_output=True,
                              text=True).stdout
    else:
        with open(args.path, encoding="utf-8") as f:
            code = f.read()
    for number, change in mutants(code, args.function):
        print(f"{args.function}#{number}: {change}")


if __name__ == "__main__":
    main()
