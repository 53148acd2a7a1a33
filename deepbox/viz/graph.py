"""The computation graph behind a tensor: Graphviz DOT text, or a picture.

Starting at ``tensor.grad_fn``, the walk follows each node's ``parents`` (the nodes, or leaf
tensors, that fed it) iteratively, so a graph thousands of nodes deep is fine. Nodes are the
backward functions (``MulBackward``, ``MatmulBackward``...), leaves are the tensors that
require a gradient (named when ``params`` gives their names, as ``model.named_parameters()``).

``to_dot`` returns DOT text for Graphviz; ``draw_graph`` writes a PNG with the ``dot``
program when it is installed and otherwise draws the same layered graph with matplotlib.
"""
from __future__ import annotations

import os
import shutil
import subprocess

__all__ = ["graph_of", "to_dot", "draw_graph"]


def _shape(t) -> str:
    return "x".join(str(s) for s in t._data.shape) or "scalar"


def graph_of(tensor, params: dict | None = None) -> tuple[dict, list]:
    """The nodes and edges behind ``tensor``.

    Returns:
        ``nodes``: {id: {"label": str, "kind": "output"|"op"|"leaf"}}; ``edges``: (from id, to id)
        pairs, from an input to the node that used it (the direction of the forward pass).
    """
    from deepbox.tensor import Tensor

    if not isinstance(tensor, Tensor):
        raise TypeError(f"graph_of expects a deepbox Tensor, got {type(tensor).__name__}")
    names = {id(p): n for n, p in (params or {}).items()}
    nodes: dict[str, dict] = {}
    edges: list[tuple[str, str]] = []
    out_id = f"t{id(tensor)}"
    nodes[out_id] = {"label": f"output\n{_shape(tensor)}", "kind": "output"}
    root = tensor._ctx
    if root is None:
        if tensor.requires_grad:
            nodes[out_id]["label"] = f"{names.get(id(tensor), 'leaf')}\n{_shape(tensor)}"
        return nodes, edges
    stack = [root]
    edges.append((f"n{id(root)}", out_id))
    seen = set()
    while stack:
        node = stack.pop()
        nid = f"n{id(node)}"
        if nid in seen:
            continue
        seen.add(nid)
        nodes[nid] = {"label": node.name(), "kind": "op"}
        for p in getattr(node, "parents", ()) or ():
            if p is None:
                continue
            if isinstance(p, Tensor):
                pid = f"t{id(p)}"
                if pid not in nodes:
                    nodes[pid] = {"label": f"{names.get(id(p), 'leaf')}\n{_shape(p)}", "kind": "leaf"}
            else:
                pid = f"n{id(p)}"
                stack.append(p)
            edges.append((pid, nid))
    return nodes, edges


def _dot_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(tensor, params: dict | None = None, name: str = "deepbox") -> str:
    """Graphviz DOT text of the graph that computed ``tensor`` (inputs at the top)."""
    nodes, edges = graph_of(tensor, params)
    style = {"output": 'shape=box, style=filled, fillcolor="#c8e6c9"',
             "op": 'shape=box, style="rounded,filled", fillcolor="#e3f2fd"',
             "leaf": 'shape=box, style=filled, fillcolor="#fff9c4"'}
    lines = [f"digraph {name} {{", '  node [fontname="Helvetica", fontsize=10];', "  rankdir=TB;"]
    for nid, n in nodes.items():
        lines.append(f'  {nid} [label="{_dot_escape(n["label"])}", {style[n["kind"]]}];')
    for a, b in dict.fromkeys(edges):
        lines.append(f"  {a} -> {b};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layers(nodes: dict, edges: list) -> dict[str, int]:
    """Depth of every node from the inputs (longest path), computed without recursion."""
    preds: dict[str, list] = {n: [] for n in nodes}
    succ: dict[str, list] = {n: [] for n in nodes}
    for a, b in dict.fromkeys(edges):
        preds[b].append(a)
        succ[a].append(b)
    indeg = {n: len(p) for n, p in preds.items()}
    depth = {n: 0 for n in nodes}
    ready = [n for n, d in indeg.items() if d == 0]
    while ready:
        n = ready.pop()
        for s in succ[n]:
            depth[s] = max(depth[s], depth[n] + 1)
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    return depth


def draw_graph(tensor, path, params: dict | None = None, use_graphviz: bool | None = None) -> str:
    """Write a PNG of the graph behind ``tensor``: with Graphviz's ``dot`` if present, else matplotlib.

    Args:
        path: the PNG file.
        params: names for leaf tensors (``dict(model.named_parameters())``).
        use_graphviz: force (True) or avoid (False) the ``dot`` program; None uses it when found.

    Returns ``path``.
    """
    path = os.fspath(path)
    dot = shutil.which("dot")
    if use_graphviz and dot is None:
        raise FileNotFoundError("draw_graph(use_graphviz=True) needs Graphviz's 'dot' program on the PATH")
    if dot is not None and use_graphviz is not False:
        proc = subprocess.run([dot, "-Tpng", "-o", path], input=to_dot(tensor, params).encode(),
                              capture_output=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"dot failed: {proc.stderr.decode(errors='replace').strip()}")
        return path
    from deepbox.viz.plots import _pyplot, _save

    plt = _pyplot()
    nodes, edges = graph_of(tensor, params)
    depth = _layers(nodes, edges)
    by_layer: dict[int, list] = {}
    for n in nodes:
        by_layer.setdefault(depth[n], []).append(n)
    pos = {}
    for d, members in by_layer.items():
        for i, n in enumerate(members):
            pos[n] = (i - (len(members) - 1) / 2, -d)
    width = max(len(m) for m in by_layer.values())
    fig, ax = plt.subplots(figsize=(max(4, 2.2 * width), max(3, 1.0 * len(by_layer) + 1)))
    colours = {"output": "#c8e6c9", "op": "#e3f2fd", "leaf": "#fff9c4"}
    for a, b in dict.fromkeys(edges):
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.annotate("", xy=(x1, y1 + 0.18), xytext=(x0, y0 - 0.18),
                    arrowprops={"arrowstyle": "->", "color": "#555555", "lw": 0.8})
    for n, (x, y) in pos.items():
        ax.text(x, y, nodes[n]["label"], ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round,pad=0.3", "fc": colours[nodes[n]["kind"]], "ec": "#333333", "lw": 0.6})
    ax.set_xlim(-width / 2 - 0.5, width / 2 + 0.5)
    ax.set_ylim(-len(by_layer) + 0.4, 0.6)
    ax.axis("off")
    return _save(fig, path)
