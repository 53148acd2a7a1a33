"""deepbox's import graph: no circles (imports inside functions included) and no import from a lower layer
into a higher one, per the layer table below (DESIGN.md's, bottom to top).

The graph is read from the source with ``ast``: every ``import deepbox...`` / ``from deepbox... import``
anywhere in a file, at module level or inside a function, is an edge. Importing ``deepbox.a.b`` runs
``deepbox/a/__init__.py`` too, but that implicit edge is not counted (a package's ``__init__`` may gather
its own submodules).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# bottom to top: a module may import its own layer and the layers below it, never one above.
# Each entry: the layer's name and the module prefixes it holds (the longest matching prefix decides).
LAYERS = [
    ("backend", ["deepbox.backend", "deepbox.backends"]),
    ("tensor", ["deepbox.tensor"]),
    ("autograd", ["deepbox.autograd"]),
    ("ops", ["deepbox.ops", "deepbox.creation", "deepbox.linalg", "deepbox.special", "deepbox"]),
    ("kernels", ["deepbox.kernels"]),
    ("functional", ["deepbox.nn.functional", "deepbox.nn.init"]),
    # torch.distributed's collectives work on tensors; SyncBatchNorm, DDP, DistributedSampler and the Trainer use them
    ("distributed", ["deepbox.distributed"]),
    ("modules", ["deepbox.nn", "deepbox.distributions"]),
    ("optim", ["deepbox.optim", "deepbox.amp", "deepbox.cuda", "deepbox.accelerator"]),
    ("data", ["deepbox.data", "deepbox.utils"]),
    ("vision", ["deepbox.vision"]),
    ("io", ["deepbox.io", "deepbox.onnx"]),
    ("train", ["deepbox.train", "deepbox.ml", "deepbox.tune"]),
    ("models", ["deepbox.models"]),
    ("viz", ["deepbox.viz"]),
    ("inspect", ["deepbox.inspect"]),
    ("exercises", ["deepbox.exercises"]),
    ("cli", ["deepbox.cli", "deepbox.__main__"]),
]

# Known exceptions, each with its reason; a test fails once an entry is no longer needed.
ALLOWED_UPWARD = {
    # torch.save/torch.load, torch.autocast and torch.set_num_threads are top-level names in PyTorch;
    # deepbox/__init__.py loads them on first use, and imports the fast twins once so that they register
    # with kernels.choose
    ("deepbox", "deepbox.io"),
    ("deepbox", "deepbox.amp"),
    ("deepbox", "deepbox.kernels.threads"),
    ("deepbox", "deepbox.kernels.families"),
}
# The public wrappers in ops/ pick a fast twin with choose() from ops/_dispatch.py, the registry that the fast
# layer fills from above: no (mod prefix, target prefix) pair needs an exception.
ALLOWED_UPWARD_PREFIXES = []
ALLOWED_CYCLE_PACKAGES = [
    # cycles inside these subsystems landed while this test was written; each owner untangles its own
    "deepbox.io", "deepbox.distributed", "deepbox.vision.transforms", "deepbox.cli",
]


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


def import_graph():
    """``{module: {modules it imports}}`` over deepbox, every import statement counted (function-level too)."""
    mods = _modules()
    graph = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(_resolve(a.name, mods) for a in node.names if a.name.startswith("deepbox"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # a relative import: from its own package upward
                    pkg = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(pkg + ([node.module] if node.module else []))
                if base.split(".")[0] != "deepbox":
                    continue
                for a in node.names:  # `from deepbox.ops import linalg` imports the module deepbox.ops.linalg
                    full = f"{base}.{a.name}"
                    targets.add(full if full in mods else _resolve(base, mods))
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
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > len(best)):
                best, level = p, k
    return level


def test_every_module_has_a_layer():
    missing = sorted(m for m in import_graph() if layer_of(m) is None)
    assert not missing, f"add these modules to a layer in LAYERS: {missing}"


def _allowed_cycle(cycle):
    return any(all(m.startswith(p + ".") for m in cycle) for p in ALLOWED_CYCLE_PACKAGES)


def test_no_import_cycles():
    cycles = [c for c in _cycles(import_graph()) if not _allowed_cycle(c)]
    assert not cycles, "import cycles (imports inside functions count): " + "; ".join(" <-> ".join(c) for c in cycles)


def _upward():
    graph = import_graph()
    for mod, targets in sorted(graph.items()):
        for t in sorted(targets):
            if layer_of(t) > layer_of(mod):
                yield mod, t


def test_no_upward_imports():
    bad = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
           for m, t in _upward() if (m, t) not in ALLOWED_UPWARD and not _allowed_by_prefix(m, t)]
    assert not bad, "imports from a lower layer into a higher one:\n" + "\n".join(bad)


def _allowed_by_prefix(mod, target):
    return any((mod == a or mod.startswith(a + ".")) and (target == b or target.startswith(b + "."))
               for a, b in ALLOWED_UPWARD_PREFIXES)


def test_allowed_upward_imports_are_still_needed():
    stale = set(ALLOWED_UPWARD) - set(_upward())
    assert not stale, f"these imports are gone: remove them from ALLOWED_UPWARD: {sorted(stale)}"


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    # deepbox/__init__.py imports deepbox.io only inside __getattr__ (deepbox.save / deepbox.load)
    assert "deepbox.io" in graph["deepbox"]
    assert "deepbox.tensor" in graph["deepbox.creation"]
