"""The mutation run's bookkeeping (scripts/mutation_score.py, the [mutmut] block of setup.cfg, the
mutation part of tests/conftest.py) against the code as it is now, without a mutmut run:

- mutant_key turns mutmut's name of a mutant into EQUIVALENT's key, its place in the code without
  the module ("MaskedConv2d.start_at#11"), so that an entry follows its function to another module;
- every EQUIVALENT key names a function that mutmut mutates, in exactly one module: an entry whose
  function was renamed, removed or moved out of the mutated modules would otherwise be orphaned
  silently (mutation_score.py reports it too, but only after a run);
- every EQUIVALENT key still names the change it was written for, as scripts/equivalent_changes.txt
  holds it: an edit inside a function renumbers its mutants, and a key would then name another
  (maybe killable) mutant silently (needs mutmut, whose code makes the mutants: skipped without it);
- every module [mutmut] mutates has its test files in conftest's MUTATION_TESTS, every file
  pattern there names a test file that mutmut runs (a renamed test file would leave its module's
  mutants without the tests that kill them), and every test file mutmut runs is listed there for
  some module (a new test file is either listed or left out of the run by an --ignore).
"""
import fnmatch
import glob
import importlib.util
import json
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest

import conftest

ROOT = Path(__file__).resolve().parents[1]
score = conftest._mutation_score()  # the one copy of EQUIVALENT and mutant_key, as conftest uses them


def _mutant_list():
    """scripts/mutant_list.py as a module: which files and functions mutmut mutates (without mutmut), and
    each mutant's change (with it)."""
    spec = importlib.util.spec_from_file_location("mutant_list", ROOT / "scripts" / "mutant_list.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lister = _mutant_list()
mutated_files, functions = lister.mutated_files, lister.functions


def module_name(path):
    """minipixel/datasets/idx.py -> "minipixel.datasets.idx", as mutmut names the module in a mutant's name."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("name, module, key", [
    ("minipixel.layers.xǁMaskedConv2dǁstart_at__mutmut_11", "minipixel.layers", "MaskedConv2d.start_at#11"),
    ("minipixel.conv.xǁMaskedConv2dǁstart_at__mutmut_11", "minipixel.conv", "MaskedConv2d.start_at#11"),
    ("minipixel.sampling.x__sample_wavefront__mutmut_85", "minipixel.sampling", "_sample_wavefront#85"),
    ("minipixel.sampling.x_sample_naive__mutmut_51", "minipixel.sampling", "sample_naive#51"),
    ("minipixel.data.xǁImageSetǁ__post_init____mutmut_29", "minipixel.data", "ImageSet.__post_init__#29"),
    ("minipixel.optim.xǁAdamǁ_update__mutmut_2", "minipixel.optim", "Adam._update#2"),
    ("minipixel.datasets.idx.x_read_idx__mutmut_3", "minipixel.datasets.idx", "read_idx#3"),
    ("minipixel.files.x___getattr____mutmut_1", "minipixel.files", "__getattr__#1"),
    ("minipixel.runfolder.x_trim_steps__mutmut_115", "minipixel.runfolder", "trim_steps#115"),
])
def test_the_key_of_a_mutant_is_its_place_in_the_code_without_the_module(name, module, key):
    assert score.split_mutant(name) == (module, key)
    assert score.mutant_key(name) == key


@pytest.mark.parametrize("name", [
    "stats", "", "minipixel.layers.MaskedConv2d", "minipixel.layers.xǁMaskedConv2dǁstart_at",
    "minipixel.layers.xǁMaskedConv2dǁstart_at__mutmut_", "minipixel.layers.xǁMaskedConv2dǁstart_at__mutmut_1a",
    "minipixel.layers.xǁMaskedConv2dstart_at__mutmut_1", "minipixel.layers.y_f__mutmut_1", "x_f__mutmut_1",
])
def test_what_is_no_mutant_name_is_refused(name):
    with pytest.raises(ValueError, match="not a mutmut mutant name"):
        score.split_mutant(name)


def test_every_equivalent_key_names_a_mutated_function_of_exactly_one_module():
    defined = defaultdict(set)  # qualname -> the mutated modules that define it
    for path in mutated_files():
        for qualname in functions(path):
            defined[qualname].add(module_name(path))
    elsewhere = defaultdict(set)  # qualname -> where else the package defines it, not mutated (to say so)
    mutated = set(mutated_files())
    for path in sorted((ROOT / "minipixel").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        for qualname in functions(path, skipped=True):
            elsewhere[qualname].add(f"{name} (decorated: mutmut does not mutate it)")
        if path not in mutated:
            for qualname in functions(path):
                elsewhere[qualname].add(f"{name} (a file [mutmut] does not mutate)")
    problems = []
    for key in sorted(score.EQUIVALENT):
        qualname, _, number = key.rpartition("#")
        modules = defined.get(qualname, set())
        if not (qualname and number.isdigit()):
            problems.append(f"{key}: not a key (Class.method#N or function#N)")
        elif not modules:
            where = (f"defined only in {', '.join(sorted(elsewhere[qualname]))}" if qualname in elsewhere
                     else "no module of the package defines it")
            problems.append(f"{key}: {where} (renamed, removed or moved?)")
        elif len(modules) > 1:
            problems.append(f"{key}: ambiguous, defined in {', '.join(sorted(modules))}")
    assert not problems, "EQUIVALENT entries in scripts/mutation_score.py:\n" + "\n".join(problems)


def test_every_equivalent_key_names_the_change_its_entry_was_written_for():
    pytest.importorskip("mutmut", reason="mutmut makes the mutants (pip install mutmut==3.8.1): without it the "
                                         "EQUIVALENT keys are not checked against scripts/equivalent_changes.txt")
    changes = lister.CHANGES.relative_to(ROOT)
    listed = lister.read_changes()
    found = lister.function_mutants({key.rpartition("#")[0] for key in score.EQUIVALENT})  # each file parsed once
    rewrite = "python scripts/mutant_list.py --equivalents"
    problems = []
    for key in sorted(set(listed) | set(score.EQUIVALENT)):
        qualname = key.rpartition("#")[0]
        path, numbered = found.get(qualname, (None, {}))
        change = lister.change_of(key, found) or "no mutant"
        if key not in score.EQUIVALENT:
            problems.append(f"{key}: a line of {changes} but no EQUIVALENT entry: drop it ({rewrite})")
        elif path is None:
            continue  # no function of exactly one mutated module: the test above says so
        elif key not in listed:
            problems.append(f"{key}: no line in {changes}; it names {change}. If that is the change its reason "
                            f"describes, add the line ({rewrite})")
        elif change != listed[key]:
            moved = [f"#{n}" for n, c in numbered.items() if c == listed[key]]
            problems.append(f"{key}: written for {listed[key]}\n    now names {change}\n    "
                            + (f"that change is {' or '.join(moved)} now: " if moved else "")
                            + f"renumber the entry (`python scripts/mutant_list.py {path} {qualname}` lists the "
                            f"function's mutants), or, where only the code around the change was edited, {rewrite}")
    assert not problems, ("EQUIVALENT entries in scripts/mutation_score.py and the changes they were written for "
                          f"({changes}):\n" + "\n".join(problems))


def _mutant_name(module, key):
    """mutmut's name for the mutant of ``module`` at ``key`` ("Class.method#N" or "function#N")."""
    qualname, _, number = key.rpartition("#")
    cls, _, function = qualname.rpartition(".")
    mangled = f"xǁ{cls}ǁ{function}" if cls else f"x_{function}"
    return f"{module}.{mangled}__mutmut_{number}"


def test_the_score_leaves_equivalent_mutants_out_and_fails_on_orphaned_or_ambiguous_entries(tmp_path, capsys):
    def run(results):
        """scripts/mutation_score.py on a mutants/ folder holding these results (file -> {name: exit code})."""
        folder = tmp_path / f"mutants{len(list(tmp_path.iterdir()))}"
        for file, codes in results.items():
            meta = folder / f"{file}.meta"
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps({"exit_code_by_key": codes}))
        try:
            score.main(str(folder))
        except SystemExit as stop:
            return capsys.readouterr().out, str(stop)
        return capsys.readouterr().out, None

    keys = sorted(score.EQUIVALENT)
    every = {_mutant_name("minipixel.a", key): 5 for key in keys}  # 5: no tests ran (conftest runs none for them)
    killed = {_mutant_name("minipixel.b", "f#1"): 1, _mutant_name("minipixel.b", "C.m#2"): 0}
    out, stop = run({"minipixel/a.py": every, "minipixel/b.py": killed})
    assert stop is None
    rows = {line.split()[0]: line.split()[1:6] for line in out.splitlines()[1:4]}
    # mutants, killed, survived, equivalent, not run
    assert rows["minipixel/a.py"] == [str(len(keys)), "0", "0", str(len(keys)), "0"]
    assert rows["minipixel/b.py"] == ["2", "1", "1", "0", "0"]
    assert "minipixel.b.xǁCǁm__mutmut_2: survived" in out

    orphaned = dict(list(every.items())[1:])  # the first entry's mutant is gone (its function renamed, say)
    out, stop = run({"minipixel/a.py": orphaned, "minipixel/b.py": killed})
    assert f"EQUIVALENT: {keys[0]} matches no mutant of this run" in out
    assert stop.startswith("1 EQUIVALENT entries match no mutant or mutants in two modules")

    twice = {**killed, _mutant_name("minipixel.b", keys[1]): 1}  # the same name defined in two modules
    out, stop = run({"minipixel/a.py": every, "minipixel/b.py": twice})
    assert f"EQUIVALENT: {keys[1]} matches mutants in 2 modules (minipixel.a, minipixel.b): ambiguous" in out
    assert stop.startswith("1 EQUIVALENT entries")


def _selected_test_names():
    """The test files mutmut's runs collect ([mutmut] pytest_add_cli_args_test_selection: paths, and
    --ignore=PATH, --ignore-glob=PATTERN), as conftest.mutation_test_name names them."""
    paths, ignored = [], set()
    for arg in lister.mutmut_config()["pytest_add_cli_args_test_selection"]:
        if arg.startswith("--ignore="):
            ignored.add((ROOT / arg.removeprefix("--ignore=")).resolve())
        elif arg.startswith("--ignore-glob="):
            ignored.update(Path(f).resolve() for f in glob.glob(str(ROOT / arg.removeprefix("--ignore-glob="))))
        elif arg.startswith("-"):
            pytest.fail(f"an option this test does not know in the [mutmut] test selection: {arg}")
        else:
            paths.append(ROOT / arg)
    files = set()
    for path in paths:
        found = [path] if path.is_file() else glob.glob(str(path / "**" / "test_*.py"), recursive=True)
        files.update(Path(f).resolve() for f in found)
    return {conftest.mutation_test_name(f) for f in files
            if f not in ignored and not any(parent in ignored for parent in f.parents)}


def test_every_mutated_module_has_its_test_files_and_every_test_file_pattern_names_one_mutmut_runs():
    modules = {module_name(path).removeprefix("minipixel.") for path in mutated_files() if functions(path)}
    missing = sorted(module for module in modules if conftest.mutation_test_patterns(module) is None)
    assert not missing, f"modules [mutmut] mutates without an entry in conftest.MUTATION_TESTS: {missing}"
    stale = sorted(set(conftest.MUTATION_TESTS) - modules - {m.partition(".")[0] for m in modules})
    assert not stale, f"conftest.MUTATION_TESTS entries for modules that are not mutated: {stale}"
    selected = _selected_test_names()
    unmatched = sorted({pattern for patterns in conftest.MUTATION_TESTS.values() for pattern in patterns
                        if not any(fnmatch.fnmatchcase(name, pattern) for name in selected)})
    assert not unmatched, (f"conftest.MUTATION_TESTS patterns that name no test file of the [mutmut] selection "
                           f"(renamed?): {unmatched}")
    patterns = {pattern for patterns in conftest.MUTATION_TESTS.values() for pattern in patterns}
    unused = sorted(name for name in selected if not any(fnmatch.fnmatchcase(name, p) for p in patterns))
    assert not unused, (f"test files mutmut runs in its first pass but no mutant runs: {unused}: list each in "
                        "conftest.MUTATION_TESTS for the modules it tests, or --ignore it in setup.cfg's [mutmut] "
                        "(it must, if it reads files that are not copied to mutants/, or the package's source)")


def test_a_mutant_runs_only_its_modules_test_files_and_an_equivalent_one_runs_none(monkeypatch):
    heavy = conftest.MUTATION_HEAVY + "C=1, 2 levels]"

    class Item:  # what the hook reads of a pytest item (hashed by identity, as pytest's are)
        def __init__(self, path, name="test_x"):
            self.path, self.nodeid = ROOT / "tests" / path, f"tests/{path}::{name}"

    def kept(mutant):
        items = [Item("test_conv.py"), Item("test_gradcheck.py", heavy), Item("test_data.py"),
                 Item("datasets/test_idx.py"), Item("test_step.py")]
        deselected = []
        config = SimpleNamespace(hook=SimpleNamespace(pytest_deselected=lambda items: deselected.extend(items)))
        if mutant is None:
            monkeypatch.delenv("MUTANT_UNDER_TEST", raising=False)
        else:
            monkeypatch.setenv("MUTANT_UNDER_TEST", mutant)
        before = list(items)
        conftest.pytest_collection_modifyitems(config, items)
        assert sorted(map(id, items + deselected)) == sorted(map(id, before))
        return sorted(i.nodeid.split("::")[0].removeprefix("tests/") for i in items)

    every = ["datasets/test_idx.py", "test_conv.py", "test_data.py", "test_gradcheck.py", "test_step.py"]
    assert kept(None) == every  # outside mutmut nothing changes
    assert kept("stats") == every  # mutmut's first pass: the heavy checks too
    assert kept("minipixel.conv.xǁMaskedConv2dǁforward__mutmut_1") == ["test_conv.py"]
    assert kept("minipixel.gated.xǁGatedPixelCNNǁbackward__mutmut_1") == ["test_conv.py", "test_gradcheck.py",
                                                                         "test_step.py"]
    assert kept("minipixel.datasets.idx.x_read_idx__mutmut_1") == ["datasets/test_idx.py", "test_data.py"]
    # a pretrained mutant: none of the files listed for pretrained is among these, so all of them run
    # (bar the heavy checks), rather than none (pytest's exit 5: mutmut would count a survivor)
    assert kept("minipixel.pretrained.x_describe__mutmut_1") == ["datasets/test_idx.py", "test_conv.py",
                                                                "test_data.py", "test_step.py"]
    equivalent = next(iter(score.EQUIVALENT))
    name = _mutant_name("minipixel.elsewhere", equivalent)  # as mutmut would name it, in any module
    assert score.mutant_key(name) == equivalent
    assert kept(name) == []
