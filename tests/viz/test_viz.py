"""deepbox.viz: the autograd graph (against PyTorch's graph of the same expression) and the PNG plots."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import deepbox
from deepbox import nn
from deepbox.viz import (
    draw_graph,
    graph_of,
    plot_confusion_matrix,
    plot_feature_maps,
    plot_filters,
    plot_history,
    plot_predictions,
    to_dot,
)


def _torch_graph(t):
    """(op names, leaf count, edge count) of PyTorch's graph behind t, names without the trailing digit."""
    ops, leaves, edges, seen, stack = [], set(), 0, set(), [t.grad_fn]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if type(node).__name__ == "AccumulateGrad":
            leaves.add(id(node.variable))
            continue
        ops.append(re.sub(r"\d+$", "", node.name()))
        for nxt, _ in node.next_functions:
            if nxt is not None:
                edges += 1
                stack.append(nxt)
    return sorted(ops), len(leaves), edges


def _expr(lib, a, b):
    return (a * b + a.exp()).sum()


def test_graph_matches_pytorch():
    rng = np.random.default_rng(0)
    an, bn = rng.normal(size=3), rng.normal(size=3)
    a, b = deepbox.tensor(an, requires_grad=True), deepbox.tensor(bn, requires_grad=True)
    ta, tb = torch.tensor(an, requires_grad=True), torch.tensor(bn, requires_grad=True)
    nodes, edges = graph_of(_expr(deepbox, a, b), params={"a": a, "b": b})
    t_ops, t_leaves, t_edges = _torch_graph(_expr(torch, ta, tb))
    ops = sorted(n["label"] for n in nodes.values() if n["kind"] == "op")
    assert ops == t_ops == ["AddBackward", "ExpBackward", "MulBackward", "SumBackward"]
    assert sum(n["kind"] == "leaf" for n in nodes.values()) == t_leaves == 2
    assert len(edges) - 1 == t_edges  # deepbox adds one edge to the output box
    labels = {n["label"] for n in nodes.values()}
    assert "a\n3" in labels and "b\n3" in labels and "output\nscalar" in labels


def test_dot_text_names_parameters():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    dot = to_dot(model(deepbox.randn(5, 4)).sum(), params=dict(model.named_parameters()))
    assert dot.startswith("digraph deepbox {") and dot.rstrip().endswith("}")
    for label in ("0.weight\\n3x4", "0.bias\\n3", "2.weight\\n2x3", "ReluBackward", "SumBackward"):
        assert label in dot
    assert dot.count("->") == 8  # 4 parameters, linear->relu->linear->sum, sum->output


def test_a_deep_graph_needs_no_recursion():
    x = deepbox.ones(1, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    nodes, edges = graph_of(y)
    assert len(nodes) == 5002 and len(edges) == 5001


def test_draw_graph_png_without_graphviz(tmp_path):
    x = deepbox.randn(3, requires_grad=True)
    path = draw_graph((x.tanh() * 2).sum(), tmp_path / "g.png", params={"x": x}, use_graphviz=False)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100
    if shutil.which("dot") is None:
        with pytest.raises(FileNotFoundError, match="needs Graphviz's 'dot'"):
            draw_graph(x.sum(), tmp_path / "h.png", use_graphviz=True)
    with pytest.raises(TypeError, match="expects a deepbox Tensor"):
        graph_of(np.ones(3))


def _png(path):
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


def test_plots_write_pngs(tmp_path):
    h = {"loss": [1.0, 0.6, 0.4], "accuracy": [0.5, 0.7, 0.8], "val_loss": [1.1, 0.7, 0.5],
         "val_accuracy": [0.45, 0.65, 0.75], "lr": [0.1, 0.1, 0.1]}
    assert _png(plot_history(h, tmp_path / "c.png"))[0] > 300
    assert _png(plot_history({"loss": [1.0, 0.5]}, tmp_path / "c1.png"))[0] > 100
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    assert _png(plot_confusion_matrix(cm, tmp_path / "m.png", classes=["a", "b", "c"]))[0] > 100
    imgs = (np.random.default_rng(0).random((10, 1, 28, 28)) * 255).astype(np.uint8)
    size = _png(plot_predictions(imgs, np.arange(10) % 3, np.arange(10) % 2, tmp_path / "p.png",
                                 classes=["a", "b", "c"], probabilities=np.full(10, 0.5), cols=5))
    assert size[0] > size[1] > 100  # 5 columns by 2 rows
    colour = np.random.default_rng(1).normal(size=(3, 3, 12, 12)).astype(np.float32)
    _png(plot_predictions(colour, [0, 1, 2], [0, 1, 1], tmp_path / "rgb.png"))
    _png(plot_filters(deepbox.randn(6, 1, 5, 5), tmp_path / "f.png"))
    _png(plot_filters(deepbox.randn(4, 3, 3, 3), tmp_path / "f3.png"))
    _png(plot_feature_maps(deepbox.randn(1, 8, 14, 14), tmp_path / "fm.png"))


def test_plots_reject_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(np.ones((2, 3)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="2 class names for a 3x3 matrix"):
        plot_confusion_matrix(np.eye(3), tmp_path / "x.png", classes=["a", "b"])
    with pytest.raises(ValueError, match="3 images, 2 predictions and 3 labels"):
        plot_predictions(np.zeros((3, 8, 8)), [0, 1], [0, 1, 2], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"conv weight \(O, I, kH, kW\)"):
        plot_filters(np.zeros((3, 3)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="non-empty 'loss'"):
        plot_history({}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
