"""What every exercise's tests check the same way: a skeleton as started is "not written
yet", and a right answer passes every part within seconds."""
import time

from minipixel.cli import main
from minipixel.learn import EXERCISES, runner


def skeleton_is_not_written_yet(name, folder, capsys):
    assert main(["learn", "start", name, "--dir", str(folder)]) == 0
    assert "raise NotImplementedError" in (folder / f"{name}.py").read_text()
    capsys.readouterr()
    assert main(["learn", "check", name, "--dir", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "not written yet" in out and "Traceback" not in out and "WRONG" not in out
    assert out.count("not written yet") == len(EXERCISES[name].PARTS)
    assert runner.status(name, folder) == "fails (not written yet)"


def right_answer_passes(name, folder, answer):
    """Write ``answer`` as the learner's file and check it: every part right, in seconds. Returns the lines."""
    (folder / f"{name}.py").write_text(answer)
    began = time.perf_counter()
    text, code = runner.check(name, folder)
    assert time.perf_counter() - began < 10
    assert code == 0, text
    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [part for part, _ in EXERCISES[name].PARTS]
    assert all(": right: " in line for line in lines[:-1])
    assert text.endswith(f"{name}: PASSES") and runner.status(name, folder) == "passes"
    return lines


def exception_is_shown_as_theirs(name, folder, source, line, function, message):
    """A learner's file that raises: their file, line and function, and no grader frame."""
    (folder / f"{name}.py").write_text(source)
    text, code = runner.check(name, folder)
    assert code == 1
    assert f'File "{folder / f"{name}.py"}", line {line}, in {function}' in text and message in text
    assert "grade.py" not in text and f"ex_{name}.py" not in text


def hints_and_solution(name, folder, capsys, library_file, library_name):
    """solution names the library's answer; hint gives the first of at least three hints."""
    assert main(["learn", "solution", name]) == 0
    out = capsys.readouterr().out
    assert library_file in out and library_name in out
    hints = EXERCISES[name].HINTS
    assert len(hints) >= 3
    assert main(["learn", "hint", name, "--dir", str(folder)]) == 0
    assert capsys.readouterr().out.startswith(f"hint 1 of {len(hints)}: {hints[0]}")
    return hints


def mistake_is_named(name, folder, source, words):
    """A planted mistake fails, in words that name it, without a traceback."""
    (folder / f"{name}.py").write_text(source)
    text, code = runner.check(name, folder)
    assert code == 1 and words in text, text
    assert "Traceback" not in text and text.endswith(f"{name}: not yet (minipixel learn hint {name} for a hint)")


def loaded_module_passes(name, folder, source):
    """The exercise's check, called on a module loaded as the grader loads it, passes every part."""
    from minipixel.learn.grade import load

    path = folder / "answer.py"
    path.write_text(source)
    lines, passed = EXERCISES[name].check(load(path))
    assert passed and len(lines) == len(EXERCISES[name].PARTS)
