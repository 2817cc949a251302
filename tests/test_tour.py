"""docs/tour.md tells the truth about the code it walks through.

- every backticked ``file.py:Name`` or ``file.py:Class.method`` names a file under
  minipixel/ and a top-level function or class, or a method, defined in it (and every
  backticked ``file.py`` names a file there, or ``tests/file.py`` one in tests/);
- every Python block under a heading that names code (``### `file.py:Name` ...``, or
  a whole file, ``### ... `file.py` ...``) quotes it: each line that is not blank and
  not only a comment is, stripped and without its trailing ``# comment``, a line of
  that code, likewise stripped (a comment-only line stands for what was left out);
  every Python block sits under such a heading, unless the line before it ends in
  "paraphrased:", which says so to the reader too;
- every ``tests/....py::test_name`` it cites is a test that exists.
"""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "docs" / "tour.md"
PACKAGE = ROOT / "minipixel"
OUTSIDE = ("tests", "scripts", "docs")  # `tests/x.py` is a path from the repository's root
MAX_PARAPHRASED = 2  # a paraphrase is a quote no test keeps true: as few as can be

CODE_REF = re.compile(r"`([\w/]+\.py)(?::([\w.]+))?`")  # `file.py` or `file.py:Name[.method]`
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
HEADING = re.compile(r"^(#+)\s")
FENCE = re.compile(r"^\s*```(\S*)")


def definitions(path):
    """{name: source} of the top-level functions and classes of a file, and
    {"Class.method": source} of the methods of its classes."""
    text = path.read_text()
    found = {}
    for node in ast.parse(text, str(path)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = ast.get_source_segment(text, node)
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        found[f"{node.name}.{item.name}"] = ast.get_source_segment(text, item)
    return found


def code_of(file, name, package=PACKAGE):
    """The source that ``file.py:name`` names (the whole file without a name), or an
    error message saying why there is none."""
    root = package.parent if file.split("/")[0] in OUTSIDE else package
    path = root / file
    if not path.is_file():
        return None, f"`{file}`: no such file in {'the repository' if root != package else package.name + '/'}"
    if not name:
        return path.read_text(), None
    source = definitions(path).get(name)
    if source is None:
        return None, f"`{file}:{name}`: {file} defines no top-level function, class or method {name}"
    return source, None


def normalized(line):
    """A line stripped, without a trailing ``# comment`` (a # inside a string stays)."""
    quote = None
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            line = line[:k]
            break
    return line.strip()


def python_blocks(text):
    """[(heading, line number of the fence, the line before it, [code lines])] for every
    ```python block (indented ones too, as in a list)."""
    blocks, heading, before, block, fenced = [], "", "", None, False
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if fenced:  # inside a block of any language: no headings here
            if fence and not fence.group(1):
                fenced = False
                if block is not None:
                    blocks.append(block)
                    block = None
            elif block is not None:
                block[3].append(line)
            continue
        if fence:
            fenced = True
            block = (heading, number, before, []) if fence.group(1) == "python" else None
            continue
        if HEADING.match(line):
            heading = line
        if line.strip():
            before = line
    return blocks


def reference_problems(text, package=PACKAGE):
    problems = []
    for file, name in sorted(set(CODE_REF.findall(text))):
        if name.count(".") > 1:
            problems.append(f"`{file}:{name}`: name a function, a class or Class.method")
            continue
        error = code_of(file, name, package)[1]
        if error:
            problems.append(error)
    return problems


def quote_problems(text, package=PACKAGE):
    problems, paraphrased = [], 0
    for heading, number, before, lines in python_blocks(text):
        if before.rstrip("*_ ").lower().endswith("paraphrased:"):
            paraphrased += 1
            continue
        ref = CODE_REF.search(heading) if heading.startswith("###") else None
        if ref is None:
            problems.append(f"line {number}: a Python block under {heading.strip()!r}, which names no code "
                            "(say `file.py:Name` in the heading, or end the line before it in 'paraphrased:')")
            continue
        source, error = code_of(ref.group(1), ref.group(2), package)
        if error:
            problems.append(f"line {number}: {error}")
            continue
        have = {normalized(line) for line in source.splitlines()}
        for offset, line in enumerate(lines, 1):
            want = normalized(line)
            if want and want not in have:
                problems.append(f"line {number + offset}: not in `{ref.group(0).strip('`')}`: {want}")
    if paraphrased > MAX_PARAPHRASED:
        problems.append(f"{paraphrased} paraphrased blocks, more than {MAX_PARAPHRASED}: quote the code instead")
    return problems


def cited_test_problems(text, root=ROOT):
    problems = []
    for file, name in sorted(set(TEST_REF.findall(text))):
        path = root / file
        if not path.is_file():
            problems.append(f"`{file}::{name}`: no such test file")
        elif not any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name
                     for node in ast.walk(ast.parse(path.read_text(), str(path)))):
            problems.append(f"`{file}::{name}`: no such test")
    return problems


def test_every_code_reference_of_the_tour_names_something_defined():
    text = TOUR.read_text()
    assert len(CODE_REF.findall(text)) > 50
    problems = reference_problems(text)
    assert not problems, "\n".join(problems)


def test_every_quote_of_the_tour_is_in_the_code_it_names():
    text = TOUR.read_text()
    assert len(python_blocks(text)) > 20
    problems = quote_problems(text)
    assert not problems, "\n".join(problems)


def test_every_test_the_tour_cites_exists():
    text = TOUR.read_text()
    assert TEST_REF.findall(text)
    problems = cited_test_problems(text)
    assert not problems, "\n".join(problems)


def test_the_checks_catch_a_tour_that_drifted():
    text = TOUR.read_text()
    assert "`step.py:train_step`" in text and "dh += dy" in text
    assert reference_problems(text.replace("`step.py:train_step`", "`train.py:train_step`")) == [
        "`train.py:train_step`: train.py defines no top-level function, class or method train_step"]
    assert reference_problems(text + "\n`parallel.py:loss_and_gradients`\n") == [
        "`parallel.py`: no such file in minipixel/"]
    drifted = quote_problems(text.replace("dh += dy\n", "dh += 2 * dy\n", 1))
    assert len(drifted) == 1 and drifted[0].endswith("not in `model.py:ResidualBlock.backward`: dh += 2 * dy")
    moved = quote_problems(text.replace("### `step.py:train_step`", "### `step.py:loss_and_gradients`"))
    assert moved and all("not in `step.py:loss_and_gradients`" in p for p in moved)
    assert cited_test_problems(text.replace("::test_cached_sampler_matches_naive", "::test_gone")) == [
        "`tests/test_sampling.py::test_gone`: no such test"]


def test_a_python_block_must_name_its_code_or_say_it_is_a_paraphrase():
    unchecked = "## A section\n\n```python\nanything = 1\n```\n"
    assert len(quote_problems(unchecked)) == 1
    assert quote_problems("## A section\n\nThe step, paraphrased:\n\n```python\nanything = 1\n```\n") == []
    three = "".join(f"Step {k}, paraphrased:\n```python\nx = {k}\n```\n" for k in range(MAX_PARAPHRASED + 1))
    assert len(quote_problems(three)) == 1
    assert normalized('    s = "a # b"  # c') == 's = "a # b"'
