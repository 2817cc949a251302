"""The package's plan: one idea per module, each a file one can read in one sitting,
and imports that only go down the layers (so none can form a circle).

The layers, from the bottom:

    0 base        arrays and devices, valid values, files, memory estimates
    1 kernels     masks, im2col, fused kernels, the loss, the optimizer, the data,
                  threads and ranks: each knows nothing of layers
    2 layers      the layer contract, the masked convolution
    3 models      PixelCNN, the Gated PixelCNN, checkpoints of them
    4 step        the training step, evaluation, the samplers, gradient checks, pictures
    5 run         a training run: its settings, its data, its folder, the loop
    6 command     the command line and the benchmark

Every import (a function's own included) reads from the importing module's
layer or one below it, and the graph has no circle. A new module must be given
its layer here.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "minipixel"
LAYERS = {
    0: ("backend", "options", "files", "memory", "testing", "testing.strict"),
    1: ("masks", "im2col", "fused", "conv_reference", "losses", "optim", "data", "threads", "canvas",
        "distributed", "datasets", "datasets._files", "datasets.amat", "datasets.cifar10", "datasets.download",
        "datasets.formats", "datasets.idx", "datasets.image_folder", "datasets.mnist_csv", "datasets.npz",
        "datasets.registry", "datasets.class_names"),
    2: ("layers", "conv"),
    3: ("model", "gated", "checkpoint"),
    4: ("step", "evaluate", "sampling", "gradcheck", "viz", "pretrained"),
    5: ("settings", "rundata", "runfolder", "stop", "train"),
    6: ("bench", "cli", "cli_pictures", "serve", "serve_api", "", "learn", "learn.*"),  # "": the package's __init__ (read by cli)
}
LAYER_OF = {module: layer for layer, modules in LAYERS.items() for module in modules}


def layer_of(module):
    """The module's layer; "package.*" gives every module of a package its layer."""
    return LAYER_OF.get(module, LAYER_OF.get(module.split(".")[0] + ".*") if "." in module else None)
MAX_MODULE_LINES = 450
MAX_TEST_OR_SCRIPT_LINES = 600


def module_name(path, root=PACKAGE):
    """minipixel/datasets/amat.py -> "datasets.amat"; minipixel/__init__.py -> ""."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_imports(root=PACKAGE):
    """{module: set of package modules it imports}, read from the source (every
    ``import`` and ``from ... import`` anywhere in the file, relative or absolute)."""
    paths = {module_name(p, root): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        here = name.split(".") if path.name == "__init__.py" and name else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - (node.level - 1)] + ([node.module] if node.module else [])
                elif (node.module or "").split(".")[0] == "minipixel":
                    base = node.module.split(".")[1:]
                else:
                    continue
                target = ".".join(p for p in base if p)
                for alias in node.names:  # `from . import threads` imports the module threads
                    full = f"{target}.{alias.name}" if target else alias.name
                    deps.add(full if full in paths else target)
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".", 1)[1] if "." in a.name else "" for a in node.names
                         if a.name.split(".")[0] == "minipixel"}
        deps.discard(name)
        graph[name] = deps
    return graph


def find_circle(graph):
    """A list of modules that import one another in a circle ([a, b, a]), or None."""
    state = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_find_circle_finds_a_circle_and_only_a_circle():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}) == ["b", "b2", "b"]


def test_the_import_reader_sees_relative_absolute_and_function_level_imports(tmp_path):
    pkg = tmp_path / "minipixel"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("")
    (pkg / "other.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("def f():\n    from ..other import g\n")
    (pkg / "high.py").write_text("import minipixel.low\nfrom . import sub\nfrom .sub.leaf import f\n")
    graph = package_imports(pkg)
    assert graph["high"] == {"low", "sub", "sub.leaf"}
    assert graph["sub"] == {"sub.leaf"} and graph["sub.leaf"] == {"other"}


def test_no_import_circle_in_the_package():
    assert find_circle(package_imports()) is None


def test_every_module_has_a_layer_and_imports_only_from_its_layer_or_below():
    graph = package_imports()
    assert {m for m in graph if layer_of(m) is None} == set(), "a new module: give it its layer in LAYERS"
    upward = [f"{module} (layer {layer_of(module)}) imports {dep} (layer {layer_of(dep)})"
              for module, deps in sorted(graph.items()) for dep in sorted(deps) if layer_of(dep) > layer_of(module)]
    assert upward == []


@pytest.mark.parametrize("folder, limit", [("minipixel", MAX_MODULE_LINES), ("tests", MAX_TEST_OR_SCRIPT_LINES),
                                           ("scripts", MAX_TEST_OR_SCRIPT_LINES)])
def test_every_file_can_be_read_in_one_sitting(folder, limit):
    root = PACKAGE.parent / folder
    long = {str(p.relative_to(root)): n for p in root.rglob("*.py") if (n := len(p.read_text().splitlines())) > limit}
    assert long == {}
