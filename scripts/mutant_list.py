"""The mutants mutmut makes of one function, numbered as mutmut numbers them, with
the code each one changes; of the working tree, or of a git revision.

    python scripts/mutant_list.py minipixel/train.py Run.__init__
    python scripts/mutant_list.py minipixel/train.py Run.__init__ --rev HEAD~1

An entry of ``EQUIVALENT`` (scripts/mutation_score.py) is keyed by function and
number (``Run.__init__#84``): after an edit inside a function, list its mutants
before (``--rev``) and after to renumber the entries, without a mutation run.
Needs mutmut (``pip install mutmut==3.8.1``), whose own code makes the list.
"""
import argparse
import subprocess

import libcst as cst
from mutmut.mutation.file_mutation import create_mutations, group_by_top_level_node


def find_function(module, qualname):
    """The top-level function or method of a top-level class named ``qualname``."""
    owner, _, name = qualname.rpartition(".")
    for statement in module.body:
        if owner and isinstance(statement, cst.ClassDef) and statement.name.value == owner:
            for method in statement.body.body:
                if isinstance(method, cst.FunctionDef) and method.name.value == name:
                    return method
        elif not owner and isinstance(statement, cst.FunctionDef) and statement.name.value == name:
            return statement
    raise SystemExit(f"mutant_list: no function {qualname}")


def mutants(code, qualname):
    """[(number, original code, mutated code)] of ``qualname`` in the source ``code``."""
    module, mutations, _, _ = create_mutations("source.py", code)
    function = find_function(module, qualname)
    return [(k, module.code_for_node(m.original_node), module.code_for_node(m.mutated_node))
            for k, m in enumerate(group_by_top_level_node(mutations).get(function, ()), start=1)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="a source file, e.g. minipixel/train.py")
    parser.add_argument("function", help="a function or Class.method, e.g. Run.__init__")
    parser.add_argument("--rev", help="read the file at this git revision (default: the working tree)")
    args = parser.parse_args()
    if args.rev:
        code = subprocess.run(["git", "show", f"{args.rev}:{args.path}"], check=True, capture_output=True,
                              text=True).stdout
    else:
        with open(args.path, encoding="utf-8") as f:
            code = f.read()
    for number, before, after in mutants(code, args.function):
        print(f"{args.function}#{number}: {before[:100]!r} -> {after[:100]!r}")


if __name__ == "__main__":
    main()
