"""Whole models saved without pickle: deepbox.save(model, f) / deepbox.load(f) round trips and refusals."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import deepbox
import deepbox.nn as nn
import deepbox.nn.functional as F
from deepbox.io import CheckpointError
from deepbox.models.registry import get_model


class TwoHeads(nn.Module):
    """A user's module: plain attributes, a submodule list, a buffer, a deepbox function and a tied weight."""

    def __init__(self, scale=2.0):
        super().__init__()
        self.scale = scale
        self.name = "two-heads"
        self.sizes = (3, 5)
        self.dtype_used = deepbox.float32
        self.act = F.gelu
        self.body = nn.ModuleList([nn.Linear(3, 5), nn.Linear(5, 3)])
        self.head = nn.Linear(5, 3)
        self.head.weight = self.body[1].weight  # tied
        self.register_buffer("offset", deepbox.arange(3.0))

    def forward(self, x):
        h = self.act(self.body[0](x))
        return self.scale * (self.body[1](h) + self.head(h)) + self.offset


def _same_output(a, b, x):
    a.eval()
    b.eval()
    with deepbox.no_grad():
        np.testing.assert_array_equal(a(x)._data, b(x)._data)


def test_user_module_round_trip(tmp_path):
    m = TwoHeads(scale=0.5)
    deepbox.save(m, tmp_path / "m.pt")
    back = deepbox.load(tmp_path / "m.pt")
    assert type(back) is TwoHeads
    assert (back.scale, back.name, back.sizes, back.dtype_used, back.act) == (0.5, "two-heads", (3, 5),
                                                                              deepbox.float32, F.gelu)
    assert back.head.weight is back.body[1].weight  # the tie survives
    assert [k for k, _ in back.named_buffers()] == ["offset"]
    _same_output(m, back, deepbox.randn(4, 3))
    # the rebuilt model trains: gradients reach every parameter
    back.train()
    back(deepbox.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in back.parameters())


@pytest.mark.parametrize("name, x", [
    ("mlp", lambda: deepbox.randn(2, 1, 28, 28)),
    ("lenet5", lambda: deepbox.randn(2, 1, 28, 28)),
    ("resnet20", lambda: deepbox.randn(2, 3, 32, 32)),
    ("char_lstm", lambda: deepbox.randint(0, 60, (2, 7))),
    ("char_gpt", lambda: deepbox.randint(0, 60, (2, 7))),
    ("unet", lambda: deepbox.randn(1, 1, 32, 32)),
])
def test_zoo_models_round_trip(tmp_path, name, x):
    kwargs = {"char_lstm": {"vocab_size": 60, "hidden_size": 32}, "unet": {"base": 4, "depth": 2},
              "char_gpt": {"vocab_size": 60, "d_model": 32, "n_layer": 2, "block_size": 16}}.get(name, {})
    if name == "resnet20":
        kwargs = {"in_channels": 3}
    m = get_model(name, **kwargs)
    deepbox.save({"model": m, "epoch": 4}, tmp_path / "m.ckpt")
    back = deepbox.load(tmp_path / "m.ckpt")
    assert back["epoch"] == 4 and type(back["model"]) is type(m)
    assert repr(back["model"]) == repr(m)
    m.eval()
    back["model"].eval()
    inp = x()
    with deepbox.no_grad():
        a, b = m(inp), back["model"](inp)
    a = a[0] if isinstance(a, tuple) else a
    b = b[0] if isinstance(b, tuple) else b
    np.testing.assert_array_equal(a._data, b._data)


def test_unsupported_attributes_are_refused_at_save_time_with_their_path(tmp_path):
    m = TwoHeads()
    m.body[0].callback = lambda x: x
    with pytest.raises(TypeError, match=r"obj\.body\.0\.callback is a lambda"):
        deepbox.save(m, tmp_path / "m.pt")
    m = TwoHeads()
    m.log = open(tmp_path / "log.txt", "w")
    try:
        with pytest.raises(TypeError, match=r"obj\.log is a TextIOWrapper"):
            deepbox.save(m, tmp_path / "m.pt")
    finally:
        m.log.close()
    m = TwoHeads()
    m.register_forward_hook(lambda *a: None)
    with pytest.raises(TypeError, match="_forward_hooks"):
        deepbox.save(m, tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()
    opt = deepbox.optim.SGD(TwoHeads().parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"state_dict\(\)"):
        deepbox.save(opt, tmp_path / "o.ckpt")


def _forged(tmp_path, cls_path):
    """A file whose model description names ``cls_path`` (what an attacker could write)."""
    node = {"$deepbox.module": "1", "class": cls_path, "attributes": {}, "parameters": {}, "buffers": {},
            "non_persistent": [], "modules": {}}
    deepbox.save({"model": node}, tmp_path / "forged.ckpt")
    return tmp_path / "forged.ckpt"


def test_load_imports_nothing_and_builds_only_module_subclasses(tmp_path):
    assert "deepbox_no_such_module" not in sys.modules
    with pytest.raises(CheckpointError, match="not imported"):
        deepbox.load(_forged(tmp_path, "deepbox_no_such_module:Evil"))
    assert "deepbox_no_such_module" not in sys.modules
    import subprocess  # noqa: F401  (imported, yet not a Module: refused)

    for path in ("subprocess:Popen", "os:system", "builtins:eval"):
        with pytest.raises(CheckpointError, match="not a deepbox Module subclass"):
            deepbox.load(_forged(tmp_path, path))
    fn = {"$deepbox.module": "1", "class": f"{__name__}:TwoHeads", "parameters": {}, "buffers": {},
          "attributes": {"act": {"$deepbox.function": "os:system"}}, "non_persistent": [], "modules": {}}
    deepbox.save({"model": fn}, tmp_path / "fn.ckpt")
    with pytest.raises(CheckpointError, match="only deepbox's own functions"):
        deepbox.load(tmp_path / "fn.ckpt")


def test_init_is_not_called_on_load(tmp_path, monkeypatch):
    m = TwoHeads()
    deepbox.save(m, tmp_path / "m.ckpt")

    def boom(self, *a, **k):
        raise AssertionError("__init__ must not run on load")

    monkeypatch.setattr(TwoHeads, "__init__", boom)
    assert type(deepbox.load(tmp_path / "m.ckpt")) is TwoHeads
