"""deepbox's import graph: no circles (imports inside functions included) and no import from a lower layer
into a higher one, per the layer table below (DESIGN.md's, bottom to top).

The graph is read from the source with ``ast``: every ``import deepbox...`` / ``from deepbox... import``
anywhere in a file, at module level or inside a function, is an edge. Importing ``deepbox.a.b`` runs
``deepbox/a/__init__.py`` too, but that implicit edge is not counted (a package's ``__init__`` may gather
its own submodules).

The package ``deepbox`` itself (``deepbox/__init__.py``) is PyTorch's top-level namespace: it gathers names
from every layer (``deepbox.zeros`` from ``creation``, ``deepbox.save`` from ``io``, ``deepbox.nn`` on first
use) and imports the fast layer so that its twins register. A module inside deepbox that uses one of those
names (``from deepbox import zeros``, or ``import deepbox`` and then ``deepbox.zeros``) depends on the module
that defines the name, not on the whole face: the edge goes to ``deepbox.creation``. Only a name that
``deepbox/__init__.py`` defines itself (``deepbox.set_num_threads``), or the package used as an object
(``getattr(deepbox, name)``), is an edge to ``deepbox``, the "api" layer near the top. Its ``__getattr__``
loading a subpackage by name on first use (``deepbox.nn``, ``deepbox.onnx``) is the package gathering its
own submodules, as an ``__init__`` does, and is not counted either.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "deepbox"

# bottom to top: a module may import its own layer and the layers below it, never one above.
# Each entry: the layer's name and the module prefixes it holds (the longest matching prefix decides).
LAYERS = [
    ("backend", ["deepbox.backend", "deepbox.backends"]),
    ("tensor", ["deepbox.tensor"]),
    ("autograd", ["deepbox.autograd"]),
    ("ops", ["deepbox.ops", "deepbox.creation", "deepbox.linalg", "deepbox.special", "deepbox.fft",
             "deepbox.tensor_types", "deepbox.profiler"]),
    ("kernels", ["deepbox.kernels"]),
    ("functional", ["deepbox.nn.functional", "deepbox.nn.init"]),
    # torch.distributed's collectives work on tensors; SyncBatchNorm, DDP, DistributedSampler and the Trainer use them
    ("distributed", ["deepbox.distributed"]),
    ("modules", ["deepbox.nn", "deepbox.distributions"]),
    ("optim", ["deepbox.optim", "deepbox.amp", "deepbox.cuda", "deepbox.accelerator"]),
    ("data", ["deepbox.data", "deepbox.utils"]),
    ("vision", ["deepbox.vision"]),
    ("io", ["deepbox.io"]),
    ("train", ["deepbox.train", "deepbox.ml", "deepbox.tune"]),
    ("models", ["deepbox.models"]),
    ("viz", ["deepbox.viz"]),
    ("inspect", ["deepbox.inspect"]),
    ("exercises", ["deepbox.exercises"]),
    # the package itself, deepbox/__init__.py (the prefix "deepbox" names that one module, nothing below it):
    # PyTorch's top-level namespace, gathered from the layers below
    ("api", [PACKAGE]),
    # tools that use the public face as a user's program does: the command line, and the ONNX exporter,
    # which traces a model by wrapping the public functions (deepbox.relu, ...) where the model looks them up
    ("tools", ["deepbox.onnx", "deepbox.cli", "deepbox.__main__"]),
]

# No exceptions: a shared helper goes down to a module that both sides may import (ops/_dispatch.py, io/errors.py,
# vision/transforms/_image.py, cli/train_steps.py are such modules), never onto a list here.


def _modules():
    mods = {}
    for p in (ROOT / "deepbox").rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _resolve(name, mods):
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _package_names(mods):
    """Where each name of the ``deepbox`` namespace comes from: ``{name: module}``, read from deepbox/__init__.py.

    A name it imports (at module level, or in ``__getattr__`` for the names loaded on first use) maps to the
    module it is imported from; ``float32 = _backend.float32`` to that alias's module; a name it defines
    itself (a function, a constant) to ``deepbox``; a subpackage to itself. The rest come from its one
    ``from deepbox.ops import *`` (the op table's exports).
    """
    tree = ast.parse(mods[PACKAGE].read_text(encoding="utf-8"))
    names, stars = {}, []

    def read_imports(nodes):
        for node in nodes:
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith(PACKAGE):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if a.name == "*":
                        stars.append(_resolve(node.module, mods))
                    else:
                        names[a.asname or a.name] = full if full in mods else _resolve(node.module, mods)

    read_imports(tree.body)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            read_imports(ast.walk(node))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = PACKAGE
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            value = node.value
            source = value.value if isinstance(value, ast.Attribute) else value
            origin = names.get(source.id) if isinstance(source, ast.Name) else None
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                if isinstance(target, ast.Name):
                    names[target.id] = origin or PACKAGE
    assert len(stars) <= 1, "the test reads one star import in deepbox/__init__.py"

    def origin(name):
        # a name the package binds wins over a submodule of that name: deepbox.tensor is creation's function
        if name in names:
            return names[name]
        full = f"{PACKAGE}.{name}"
        return full if full in mods else stars[0] if stars else PACKAGE

    return origin


def _uses_of_the_package(tree, mods, origin):
    """The modules behind ``deepbox.x.y`` in a file that binds the name ``deepbox`` (``import deepbox``)."""
    if not any(isinstance(n, ast.Import) and any(a.asname is None and a.name.split(".")[0] == PACKAGE
                                                  for a in n.names) for n in ast.walk(tree)):
        return set()
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:      # the whole chain deepbox.a.b.c
            chain, root = [], node
            while isinstance(root, ast.Attribute):
                chain.insert(0, root.attr)
                root = root.value
            if isinstance(root, ast.Name) and root.id == PACKAGE:
                module = origin(chain[0])                              # deepbox.zeros: deepbox.creation
                if module == f"{PACKAGE}.{chain[0]}":                  # deepbox.nn.functional.relu: nn.functional
                    module = _resolve(".".join([PACKAGE] + chain), mods)
                found.add(module)
        elif isinstance(node, ast.Name) and node.id == PACKAGE and id(node) not in inner:
            found.add(PACKAGE)   # the package as an object: getattr(deepbox, name), (Tensor, deepbox)
    return found


def import_graph():
    """``{module: {modules it imports}}`` over deepbox, every import statement counted (function-level too)."""
    return {m: set(t) for m, t in _import_graph().items()}


@functools.lru_cache(maxsize=1)
def _import_graph():
    mods = _modules()
    origin = _package_names(mods)
    graph = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(_resolve(a.name, mods) for a in node.names
                               if a.name.split(".")[0] == PACKAGE and a.name != PACKAGE)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # a relative import: from its own package upward
                    pkg = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(pkg + ([node.module] if node.module else []))
                if base.split(".")[0] != PACKAGE:
                    continue
                for a in node.names:  # `from deepbox.ops import linalg` imports the module deepbox.ops.linalg
                    full = f"{base}.{a.name}"
                    if base == PACKAGE:     # `from deepbox import zeros`: the module that deepbox takes zeros from
                        targets.add(origin(a.name) if mod != PACKAGE else full if full in mods else PACKAGE)
                    else:
                        targets.add(full if full in mods else _resolve(base, mods))
        if mod != PACKAGE:
            targets |= _uses_of_the_package(tree, mods, origin)
        targets.discard(mod)
        targets.discard(None)
        graph[mod] = targets
    return graph


def _cycles(graph):
    """The strongly connected components with more than one module (Tarjan's algorithm, iteratively)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def layer_of(module):
    best, level = None, None
    for k, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            inside = module == p or (p != PACKAGE and module.startswith(p + "."))
            if inside and (best is None or len(p) > len(best)):
                best, level = p, k
    return level


def test_every_module_has_a_layer():
    missing = sorted(m for m in import_graph() if layer_of(m) is None)
    assert not missing, f"add these modules to a layer in LAYERS: {missing}"


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles (imports inside functions count): " + "; ".join(" <-> ".join(c) for c in cycles)


def _upward():
    graph = import_graph()
    for mod, targets in sorted(graph.items()):
        for t in sorted(targets):
            if layer_of(t) > layer_of(mod):
                yield mod, t


def test_no_upward_imports():
    bad = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})" for m, t in _upward()]
    assert not bad, "imports from a lower layer into a higher one:\n" + "\n".join(bad)


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    # deepbox/__init__.py imports deepbox.io only inside __getattr__ (deepbox.save / deepbox.load)
    assert "deepbox.io" in graph["deepbox"]
    assert "deepbox.tensor" in graph["deepbox.creation"]


def test_a_name_of_the_package_is_an_edge_to_its_module():
    mods = _modules()
    origin = _package_names(mods)
    src = ("import deepbox\n"
           "deepbox.zeros(1); deepbox.nn.functional.relu; deepbox.save; deepbox.float32; deepbox.set_num_threads\n")
    assert _uses_of_the_package(ast.parse(src), mods, origin) == {
        "deepbox.creation", "deepbox.nn.functional", "deepbox.io", "deepbox.backend", "deepbox"}
    assert _uses_of_the_package(ast.parse("import deepbox\ngetattr(deepbox, 'relu')"), mods, origin) == {"deepbox"}
    assert origin("relu") == "deepbox.ops" and origin("autocast") == "deepbox.amp" and origin("nn") == "deepbox.nn"
    assert origin("tensor") == "deepbox.creation"       # the function deepbox.tensor, not the module deepbox/tensor.py
    assert _uses_of_the_package(ast.parse("import numpy\nnumpy.zeros(1)"), mods, origin) == set()
