"""Module system: registration, traversal, state dicts, hooks, dtype moves and printing, against PyTorch."""
from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn as dnn
from tests.helpers import copy_torch_weights


def build(nn):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Dropout(0.1))
            self.heads = nn.ModuleList([nn.Linear(8, 3) for _ in range(3)] + [nn.Linear(8, 2)])
            self.extra = nn.ModuleDict({"act": nn.GELU(), "norm": nn.LayerNorm(3)})
            self.scale = nn.Parameter(torch.ones(1) if nn is torch.nn else deepbox.ones(1))
            self.register_buffer("step", (torch if nn is torch.nn else deepbox).zeros(()))
            self.register_buffer("scratch", (torch if nn is torch.nn else deepbox).zeros(2), persistent=False)

        def forward(self, x):
            h = self.features(x)
            return self.extra["norm"](self.extra["act"](self.heads[0](h))) * self.scale

    return Net()


def test_structure_matches_torch():
    d, t = build(dnn), build(torch.nn)
    assert [n for n, _ in d.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in d.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in d.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in d.named_children()] == [n for n, _ in t.named_children()]
    assert list(d.state_dict()) == list(t.state_dict())
    assert "scratch" not in d.state_dict()
    assert repr(d) == repr(t)
    assert d.get_submodule("heads.3").out_features == 2
    assert d.get_parameter("features.0.weight") is d.features[0].weight
    assert d.get_buffer("features.2.running_mean") is d.features[2].running_mean
    with pytest.raises(AttributeError):
        d.get_submodule("features.9")
    assert "features" in dir(d) and "scale" in dir(d)


def test_load_torch_state_dict_gives_same_outputs():
    d, t = build(dnn), build(torch.nn)
    res = copy_torch_weights(t, d)
    assert res.missing_keys == [] and res.unexpected_keys == []
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    t.eval()
    d.eval()
    np.testing.assert_allclose(d(deepbox.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    # torch tensors themselves load too
    d2 = build(dnn)
    d2.load_state_dict(t.state_dict())
    np.testing.assert_array_equal(d2.heads[1].weight._data, t.heads[1].weight.detach().numpy())


def test_load_state_dict_strict_and_errors():
    d = dnn.Linear(3, 2)
    sd = {k: v.detach().numpy().copy() for k, v in d.state_dict().items()}
    before = d.weight._data.copy()
    bad = dict(sd, extra=np.zeros(1))
    del bad["bias"]
    with pytest.raises(RuntimeError) as e:
        d.load_state_dict(bad)
    msg = str(e.value)
    assert 'Missing key(s) in state_dict: "bias"' in msg and 'Unexpected key(s) in state_dict: "extra"' in msg
    res = d.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["extra"]
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with shape"):
        d.load_state_dict(dict(sd, weight=np.zeros((2, 4), np.float32)), strict=False)
    # a failing load changes nothing
    d.weight._data[...] = before
    with pytest.raises(RuntimeError):
        d.load_state_dict({"weight": np.ones((2, 3), np.float32), "bias": np.ones(5, np.float32)})
    np.testing.assert_array_equal(d.weight._data, before)
    t = torch.nn.Linear(3, 2)
    with pytest.raises(RuntimeError) as te:
        t.load_state_dict({"weight": torch.zeros(2, 3)})
    with pytest.raises(RuntimeError) as de:
        d.load_state_dict({"weight": np.zeros((2, 3), np.float32)})
    assert str(de.value) == str(te.value)


def test_state_dict_shares_memory_and_load_keeps_objects():
    m = dnn.Linear(3, 2)
    sd = m.state_dict()
    assert isinstance(sd, OrderedDict)
    assert not sd["weight"].requires_grad
    assert np.shares_memory(sd["weight"]._data, m.weight._data)
    w = m.weight
    m.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)})
    assert m.weight is w and m.weight.dtype == deepbox.float32 and float(m.weight.sum()) == 6
    m.load_state_dict({"weight": np.full((2, 3), 2.0), "bias": np.zeros(2)}, assign=True)
    assert m.weight is not w and isinstance(m.weight, dnn.Parameter)


def test_shared_parameters_listed_once():
    a = dnn.Linear(3, 3)
    m = dnn.Sequential(a, dnn.ReLU(), a)
    t_a = torch.nn.Linear(3, 3)
    t = torch.nn.Sequential(t_a, torch.nn.ReLU(), t_a)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()] == ["0.weight", "0.bias"]
    assert list(m.state_dict()) == list(t.state_dict())
    assert len(list(m.parameters())) == 2
    assert len(list(m.named_parameters(remove_duplicate=False))) == 4
    assert [n for n, _ in m.named_parameters(prefix="net", recurse=True)] == ["net.0.weight", "net.0.bias"]
    assert list(m.named_parameters(recurse=False)) == []


def test_setattr_getattr_delattr():
    m = dnn.Module()
    m.w = dnn.Parameter(deepbox.zeros(2))
    m.sub = dnn.Linear(2, 2)
    m.register_buffer("buf", deepbox.ones(2))
    m.plain = 3
    assert list(m._parameters) == ["w"] and list(m._modules) == ["sub"] and list(m._buffers) == ["buf"]
    with pytest.raises(TypeError, match="cannot assign"):
        m.w = deepbox.zeros(2)
    m.buf = deepbox.zeros(3)
    assert m.buf.shape == (3,)
    with pytest.raises(TypeError):
        m.buf = 5
    m.w = None
    assert m.w is None and "w" in m._parameters
    del m.sub
    assert "sub" not in m._modules
    with pytest.raises(AttributeError, match="has no attribute 'sub'"):
        _ = m.sub
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("plain", deepbox.zeros(1))
    with pytest.raises(KeyError, match='contain'):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError):
        m.register_buffer("x", 3)

    class NoInit(dnn.Module):
        def __init__(self):
            self.lin = dnn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        NoInit()
    m.b2 = dnn.Buffer(deepbox.ones(1), persistent=False)
    assert "b2" in m._buffers and "b2" not in m.state_dict()


def test_train_eval_zero_grad_requires_grad_apply():
    m = build(dnn)
    m.eval()
    assert all(not mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    with pytest.raises(ValueError):
        m.train("yes")
    m(deepbox.randn(4, 4)).sum().backward()
    assert m.features[0].weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert float(m.features[0].weight.grad.abs().sum()) == 0
    m.zero_grad()
    assert m.features[0].weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen[-1] == "Net" and seen[0] == "Linear"


def test_to_dtype_keeps_parameter_objects():
    m = build(dnn)
    w = m.features[0].weight
    m.double()
    assert m.features[0].weight is w and w.dtype == deepbox.float64
    assert m.features[2].running_mean.dtype == deepbox.float64
    assert m.features[2].num_batches_tracked.dtype == deepbox.int64  # integer buffers are left alone
    assert m(deepbox.randn(3, 4, dtype=deepbox.float64)).dtype == deepbox.float64
    m.to(deepbox.float32)
    assert w.dtype == deepbox.float32
    assert m.to("cpu") is m and m.cpu() is m
    with pytest.raises(TypeError, match="floating point"):
        m.to(deepbox.int64)
    with pytest.raises(RuntimeError, match="CPU only"):
        m.to("cuda")
    m.half()
    assert w.dtype == deepbox.float16


def test_hooks_capture_activations_and_remove():
    m = dnn.Sequential(dnn.Linear(3, 4), dnn.ReLU(), dnn.Linear(4, 2))
    acts = {}
    h1 = m[1].register_forward_hook(lambda mod, inp, out: acts.__setitem__("relu", out))
    h2 = m[0].register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    out = m(deepbox.randn(5, 3))
    assert acts["relu"].shape == (5, 4)
    np.testing.assert_allclose(acts["relu"]._data, np.maximum(m[0].bias._data, 0)[None].repeat(5, 0), rtol=1e-6)
    h2.remove()
    h1.remove()
    acts.clear()
    m(deepbox.randn(5, 3))
    assert acts == {}
    # a forward hook may replace the output; kwargs hooks see keyword arguments
    m[2].register_forward_hook(lambda mod, inp, out: out * 0)
    assert float(m(deepbox.randn(2, 3)).abs().sum()) == 0
    seen = {}
    lin = dnn.Linear(2, 2)
    lin.register_forward_pre_hook(lambda mod, args, kwargs: seen.update(kwargs), with_kwargs=True)
    lin(input=deepbox.randn(1, 2))
    assert "input" in seen
    assert out.shape == (5, 2)


def test_full_backward_hook_matches_torch():
    def run(nn, lib):
        lin = nn.Linear(3, 2)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]))
            lin.bias.zero_()
        rec = {}

        def hook(mod, gin, gout):
            rec["gin"] = gin[0].detach().numpy().copy()
            rec["gout"] = gout[0].detach().numpy().copy()

        lin.register_full_backward_hook(hook)
        x = lib.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]], requires_grad=True)
        (lin(x) * lib.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
        return rec

    d, t = run(dnn, deepbox), run(torch.nn, torch)
    np.testing.assert_allclose(d["gin"], t["gin"])
    np.testing.assert_allclose(d["gout"], t["gout"])


def test_containers():
    s = dnn.Sequential(dnn.Linear(2, 3), dnn.ReLU(), dnn.Linear(3, 1))
    assert len(s) == 3 and isinstance(s[-1], dnn.Linear)
    sub = s[:2]
    assert isinstance(sub, dnn.Sequential) and len(sub) == 2 and sub[0] is s[0]
    s.append(dnn.Sigmoid())
    assert len(s) == 4 and list(s._modules) == ["0", "1", "2", "3"]
    del s[1]
    assert list(s._modules) == ["0", "1", "2"]
    s.insert(1, dnn.Tanh())
    assert isinstance(s[1], dnn.Tanh)
    assert s(deepbox.randn(4, 2)).shape == (4, 1)
    od = dnn.Sequential(OrderedDict([("fc", dnn.Linear(2, 2)), ("act", dnn.ReLU())]))
    assert od.fc is od[0]
    ml = dnn.ModuleList([dnn.Linear(2, 2)])
    ml.append(dnn.ReLU())
    ml.extend([dnn.Tanh()])
    ml.insert(0, dnn.Identity())
    assert [type(x).__name__ for x in ml] == ["Identity", "Linear", "ReLU", "Tanh"]
    assert isinstance(ml[1:], dnn.ModuleList)
    md = dnn.ModuleDict({"a": dnn.Linear(1, 1)})
    md["b"] = dnn.ReLU()
    assert list(md.keys()) == ["a", "b"] and "a" in md and len(md) == 2
    pl = dnn.ParameterList([dnn.Parameter(deepbox.ones(2)), deepbox.zeros(3)])
    assert len(pl) == 2 and isinstance(pl[1], dnn.Parameter)
    tpl = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2)), torch.zeros(3)])
    assert repr(pl).replace("deepbox", "torch") == repr(tpl)
    holder = dnn.Module()
    holder.pl = pl
    assert [n for n, _ in holder.named_parameters()] == ["pl.0", "pl.1"]
    pd = dnn.ParameterDict({"w": deepbox.ones(2)})
    assert isinstance(pd["w"], dnn.Parameter) and list(pd.keys()) == ["w"]
    t_ml = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)] + [torch.nn.ReLU()])
    d_ml = dnn.ModuleList([dnn.Linear(2, 2) for _ in range(3)] + [dnn.ReLU()])
    assert repr(d_ml) == repr(t_ml)


def test_deepcopy_and_fast_call():
    m = build(dnn)
    m2 = copy.deepcopy(m)
    assert m2.features[0].weight is not m.features[0].weight
    np.testing.assert_array_equal(m2.features[0].weight._data, m.features[0].weight._data)
    assert isinstance(m2.features[0].weight, dnn.Parameter)

    class Bare(dnn.Module):
        pass

    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        Bare()(1)
