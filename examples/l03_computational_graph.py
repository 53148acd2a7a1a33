"""Lectures 3-4 — computational graphs and backpropagation, by hand and by deepbox.

What it demonstrates:
  1. The sigmoid neuron f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) as a graph of primitive
     operations, drawn (Graphviz DOT, and a PNG): the forward values and the local gradients at every
     node, backpropagated by hand with the chain rule, equal deepbox's ``backward()``.
  2. A two-layer network (affine - ReLU - affine - softmax cross-entropy) with every gradient
     derived by hand in matrix form (NumPy): equal to deepbox's gradients, which ``gradcheck``
     confirms against central finite differences.

    python examples/l03_computational_graph.py [--quick] [--out DIR]
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402
from deepbox.autograd import gradcheck  # noqa: E402
from examples._course import finish, parser, plt, save_fig, setup  # noqa: E402

NAME = "l03_computational_graph"


# ----------------------------------------------------------------------------- part 1: one neuron


def neuron_by_hand(w, x):
    """Forward through each primitive, then backward through the same nodes in reverse (chain rule)."""
    a0 = w[0] * x[0]
    a1 = w[1] * x[1]
    s = a0 + a1 + w[2]
    e = math.exp(-s)
    d = 1.0 + e
    f = 1.0 / d
    # backward: d f / d(node), one local derivative per line
    df = 1.0
    dd = -1.0 / d ** 2 * df          # f = 1/d
    de = 1.0 * dd                    # d = 1 + e
    ds = -math.exp(-s) * de          # e = exp(-s)   (equals f (1 - f) overall: the sigmoid's derivative)
    da0 = da1 = dw2 = ds             # s = a0 + a1 + w2 distributes the gradient
    dw0, dx0 = x[0] * da0, w[0] * da0
    dw1, dx1 = x[1] * da1, w[1] * da1
    return f, np.array([dw0, dw1, dw2]), np.array([dx0, dx1])


def _key(fn) -> int:
    """A leaf is one node however many AccumulateGrad handles point at it."""
    var = getattr(fn, "variable", None)
    return id(var) if var is not None else id(fn)


def graph_dot(root, names: dict) -> tuple[str, list, list]:
    """Graphviz DOT text of the graph that produced ``root`` (walks ``grad_fn.next_functions``)."""
    nodes, edges, seen, stack = [], [], {}, [root.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen[id(fn)] = fn  # holding the object keeps its id from being reused while we walk
        var = getattr(fn, "variable", None)
        label = names.get(id(var), "leaf") if var is not None else fn.name().replace("Backward", "")
        nodes.append((_key(fn), label, var is not None))
        for nxt, _ in fn.next_functions:
            if nxt is not None:
                edges.append((_key(nxt), _key(fn)))
                stack.append(nxt)
    lines = ["digraph G {", "  rankdir=LR;"]
    for i, label, leaf in nodes:
        shape = "box, style=filled, fillcolor=lightblue" if leaf else "ellipse"
        lines.append(f'  n{i} [label="{label}", shape={shape}];')
    lines += [f"  n{a} -> n{b};" for a, b in edges] + ["}"]
    return "\n".join(lines), nodes, edges


def draw_graph_png(nodes, edges, path: Path) -> None:
    """A layered drawing (depth from the leaves) with matplotlib, for machines without Graphviz."""
    parents = {}
    for a, b in edges:
        parents.setdefault(b, []).append(a)
    depth = {}

    def dep(n):
        if n not in depth:
            depth[n] = 1 + max((dep(p) for p in parents.get(n, [])), default=-1)
        return depth[n]

    for n, _, _ in nodes:
        dep(n)
    cols: dict[int, list] = {}
    for n, _, _ in nodes:
        cols.setdefault(depth[n], []).append(n)
    pos = {n: (d, i - (len(c) - 1) / 2) for d, c in cols.items() for i, n in enumerate(c)}
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(2 + 1.6 * len(cols), 5))
    for a, b in edges:
        ax.annotate("", xy=pos[b], xytext=pos[a], arrowprops=dict(arrowstyle="->", color="gray"))
    for n, label, leaf in nodes:
        ax.text(*pos[n], label, ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round", fc="lightblue" if leaf else "white"))
    ax.set_xlim(-0.7, max(cols) + 0.7)
    ys = [p[1] for p in pos.values()]
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    ax.axis("off")
    ax.set_title("computational graph of f(w, x) = sigmoid(w0 x0 + w1 x1 + w2)")
    save_fig(fig, path)


def export_graph(f, leaves: dict, out: Path) -> str:
    """DOT and PNG of the graph behind ``f`` with ``deepbox.viz.graph``; this file's own writer without it."""
    try:
        from deepbox.viz.graph import draw_graph, to_dot
    except ImportError:
        dot_text, nodes, edges = graph_dot(f, {id(t): n for n, t in leaves.items()})
        (out / "neuron_graph.dot").write_text(dot_text)
        draw_graph_png(nodes, edges, out / "neuron_graph.png")
        return "the example's own DOT writer"
    (out / "neuron_graph.dot").write_text(to_dot(f, params=leaves))
    draw_graph(f, out / "neuron_graph.png", params=leaves)
    return "deepbox.viz.graph"


# ----------------------------------------------------------------------------- part 2: a two-layer net


def two_layer_by_hand(X, y, W1, b1, W2, b2):
    """Loss and all four gradients of mean softmax cross-entropy(relu(X W1 + b1) W2 + b2), by hand."""
    n = len(X)
    z = X @ W1 + b1
    h = np.maximum(z, 0)
    s = h @ W2 + b2
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(n), y]).mean()
    ds = p.copy()
    ds[np.arange(n), y] -= 1            # d loss / d scores = softmax - one-hot, averaged below
    ds /= n
    dW2, db2 = h.T @ ds, ds.sum(0)
    dh = ds @ W2.T
    dz = dh * (z > 0)                   # ReLU passes the gradient where its input was positive
    dW1, db1 = X.T @ dz, dz.sum(0)
    return loss, [dW1, db1, dW2, db2]


def two_layer_deepbox(X, y, *params):
    return F.cross_entropy(F.relu(X @ params[0] + params[1]) @ params[2] + params[3], y)


def main(argv=None) -> dict:
    args = parser(NAME, __doc__).parse_args(argv)
    out = setup(args, NAME)

    w_val, x_val = [2.0, -3.0, -3.0], [-1.0, -2.0]
    f_hand, dw_hand, dx_hand = neuron_by_hand(w_val, x_val)
    # one scalar leaf per input, so the drawn graph is the lecture's picture
    w0, w1, w2, x0, x1 = (deepbox.tensor(v, dtype=deepbox.float64, requires_grad=True) for v in w_val + x_val)
    f = 1 / (1 + (-(w0 * x0 + w1 * x1 + w2)).exp())
    f.backward(retain_graph=True)
    dw = np.array([float(t.grad) for t in (w0, w1, w2)])
    dx = np.array([float(t.grad) for t in (x0, x1)])
    print(f"neuron: f = {f_hand:.6f} by hand, {float(f):.6f} by deepbox")
    print(f"  df/dw by hand {np.round(dw_hand, 6)}, deepbox {np.round(dw, 6)}")
    print(f"  df/dx by hand {np.round(dx_hand, 6)}, deepbox {np.round(dx, 6)}")
    exporter = export_graph(f, {"w0": w0, "w1": w1, "w2": w2, "x0": x0, "x1": x1}, out)
    print(f"graph drawn with {exporter}: neuron_graph.dot, neuron_graph.png")
    neuron_ok = gradcheck(lambda w, x: 1 / (1 + (-(w[0] * x[0] + w[1] * x[1] + w[2])).exp()),
                          (deepbox.tensor(w_val, dtype=deepbox.float64, requires_grad=True),
                           deepbox.tensor(x_val, dtype=deepbox.float64, requires_grad=True)))

    rng = np.random.default_rng(args.seed)
    n, d, hdim, k = (8, 5, 7, 3) if args.quick else (64, 20, 32, 10)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    arrays = [rng.standard_normal((d, hdim)) * 0.5, rng.standard_normal(hdim) * 0.1,
              rng.standard_normal((hdim, k)) * 0.5, rng.standard_normal(k) * 0.1]
    loss_hand, grads_hand = two_layer_by_hand(X, y, *arrays)
    params = [deepbox.tensor(a, requires_grad=True) for a in arrays]
    loss = two_layer_deepbox(deepbox.tensor(X), deepbox.tensor(y), *params)
    loss.backward()
    diffs = [float(np.abs(p.grad.numpy() - g).max()) for p, g in zip(params, grads_hand)]
    names = ["W1", "b1", "W2", "b2"]
    print(f"two-layer net: loss by hand {loss_hand:.10f}, deepbox {float(loss):.10f}")
    for nm, dif in zip(names, diffs):
        print(f"  max |d{nm} by hand - deepbox| = {dif:.2e}")
    mlp_ok = gradcheck(lambda *p: two_layer_deepbox(deepbox.tensor(X), deepbox.tensor(y), *p),
                       tuple(deepbox.tensor(a, requires_grad=True) for a in arrays))
    print(f"gradcheck (central differences) passes: neuron {neuron_ok}, two-layer net {mlp_ok}")

    return finish(out, {
        "neuron_f": float(f), "neuron_max_grad_diff": float(max(np.abs(dw - dw_hand).max(),
                                                                 np.abs(dx - dx_hand).max())),
        "mlp_loss_diff": abs(loss_hand - float(loss)), "mlp_max_grad_diff": max(diffs),
        "gradcheck_neuron": bool(neuron_ok), "gradcheck_mlp": bool(mlp_ok), "graph_exporter": exporter,
    })


if __name__ == "__main__":
    main()
