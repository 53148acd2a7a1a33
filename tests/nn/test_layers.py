"""Every layer of deepbox.nn against its PyTorch twin, through the shared layer harness."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn as dnn
from tests.nn.layer_harness import check_layer

R = np.random.default_rng(0)


def x(*shape, scale=1.0):
    return (R.standard_normal(shape) * scale).astype(np.float64)


def both(name, *args, **kwargs):
    """Builders for the same layer in deepbox and torch."""
    return (lambda: getattr(dnn, name)(*args, **kwargs)), (lambda: getattr(torch.nn, name)(*args, **kwargs))


LAYERS = [
    # (id, layer name, args, kwargs, inputs, options)
    ("identity", "Identity", (), {}, [x(3, 4)], {}),
    ("linear", "Linear", (5, 3), {}, [x(4, 5)], {}),
    ("linear-nobias", "Linear", (5, 3), {"bias": False}, [x(4, 5)], {}),
    ("linear-3d", "Linear", (5, 3), {}, [x(2, 4, 5)], {}),
    ("bilinear", "Bilinear", (3, 4, 2), {}, [x(5, 3), x(5, 4)], {}),
    ("flatten", "Flatten", (), {}, [x(2, 3, 4)], {}),
    ("flatten-range", "Flatten", (0, 1), {}, [x(2, 3, 4)], {}),
    ("unflatten", "Unflatten", (1, (2, 3)), {}, [x(4, 6)], {}),
    ("relu", "ReLU", (), {}, [x(4, 5)], {}),
    ("relu6", "ReLU6", (), {}, [x(4, 5, scale=5)], {}),
    ("leaky", "LeakyReLU", (0.2,), {}, [x(4, 5)], {}),
    ("prelu", "PReLU", (), {}, [x(4, 5)], {}),
    ("prelu-ch", "PReLU", (3,), {"init": 0.1}, [x(2, 3, 4)], {}),
    ("rrelu-eval", "RReLU", (), {}, [x(4, 5)], {"modes": ("eval",)}),
    ("elu", "ELU", (0.7,), {}, [x(4, 5)], {}),
    ("selu", "SELU", (), {}, [x(4, 5)], {}),
    ("celu", "CELU", (1.5,), {}, [x(4, 5)], {}),
    ("gelu", "GELU", (), {}, [x(4, 5, scale=3)], {}),
    ("gelu-tanh", "GELU", (), {"approximate": "tanh"}, [x(4, 5, scale=3)], {}),
    ("silu", "SiLU", (), {}, [x(4, 5)], {}),
    ("mish", "Mish", (), {}, [x(4, 5, scale=3)], {}),
    ("sigmoid", "Sigmoid", (), {}, [x(4, 5)], {}),
    ("tanh", "Tanh", (), {}, [x(4, 5)], {}),
    ("hardtanh", "Hardtanh", (-0.5, 0.7), {}, [x(4, 5)], {}),
    ("softplus", "Softplus", (), {"beta": 2.0, "threshold": 3.0}, [x(4, 5, scale=3)], {}),
    ("softsign", "Softsign", (), {}, [x(4, 5)], {}),
    ("softmax", "Softmax", (), {"dim": 1}, [x(4, 5)], {}),
    ("softmax0", "Softmax", (), {"dim": 0}, [x(4, 5)], {}),
    ("logsoftmax", "LogSoftmax", (), {"dim": -1}, [x(4, 5)], {}),
    ("softmin", "Softmin", (), {"dim": 1}, [x(4, 5)], {}),
    ("logsigmoid", "LogSigmoid", (), {}, [x(4, 5)], {}),
    ("hardsigmoid", "Hardsigmoid", (), {}, [x(4, 5, scale=4)], {}),
    ("hardswish", "Hardswish", (), {}, [x(4, 5, scale=4)], {}),
    ("threshold", "Threshold", (0.1, 20.0), {}, [x(4, 5)], {}),
    ("tanhshrink", "Tanhshrink", (), {}, [x(4, 5)], {}),
    ("softshrink", "Softshrink", (0.3,), {}, [x(4, 5)], {}),
    ("hardshrink", "Hardshrink", (0.3,), {}, [x(4, 5)], {}),
    ("glu", "GLU", (), {}, [x(4, 6)], {}),
    ("dropout", "Dropout", (0.3,), {}, [x(8, 5)], {"stochastic": True}),
    ("dropout1d", "Dropout1d", (0.3,), {}, [x(2, 3, 5)], {"stochastic": True}),
    ("dropout2d", "Dropout2d", (0.3,), {}, [x(2, 3, 4, 4)], {"stochastic": True}),
    ("alphadropout", "AlphaDropout", (0.2,), {}, [x(8, 5)], {"stochastic": True}),
    ("bn1d", "BatchNorm1d", (5,), {}, [x(8, 5, scale=3)], {}),
    ("bn1d-3d", "BatchNorm1d", (3,), {}, [x(4, 3, 6)], {}),
    ("bn1d-noaffine", "BatchNorm1d", (5,), {"affine": False}, [x(8, 5)], {}),
    ("bn1d-cma", "BatchNorm1d", (5,), {"momentum": None}, [x(8, 5)], {}),
    ("bn1d-notrack", "BatchNorm1d", (5,), {"track_running_stats": False}, [x(8, 5)], {}),
    ("bn2d", "BatchNorm2d", (3,), {}, [x(4, 3, 5, 5)], {}),
    ("bn2d-mom", "BatchNorm2d", (3,), {"momentum": 0.3, "eps": 1e-3}, [x(4, 3, 2, 2)], {}),
    ("bn3d", "BatchNorm3d", (2,), {}, [x(2, 2, 3, 3, 3)], {}),
    ("layernorm", "LayerNorm", (6,), {}, [x(4, 6)], {}),
    ("layernorm-2d", "LayerNorm", ((3, 4),), {}, [x(2, 3, 4)], {}),
    ("layernorm-noaffine", "LayerNorm", (6,), {"elementwise_affine": False}, [x(2, 3, 6)], {}),
    ("layernorm-nobias", "LayerNorm", (6,), {"bias": False}, [x(2, 3, 6)], {}),
    ("groupnorm", "GroupNorm", (2, 4), {}, [x(3, 4, 5)], {}),
    ("groupnorm-2d", "GroupNorm", (3, 6), {}, [x(2, 6, 3, 3)], {}),
    ("groupnorm-noaffine", "GroupNorm", (1, 4), {"affine": False}, [x(3, 4, 5)], {}),
    ("instancenorm1d", "InstanceNorm1d", (3,), {}, [x(2, 3, 7)], {}),
    ("instancenorm1d-affine", "InstanceNorm1d", (3,), {"affine": True}, [x(2, 3, 7)], {}),
    ("instancenorm2d-track", "InstanceNorm2d", (3,), {"track_running_stats": True, "affine": True},
     [x(2, 3, 4, 4)], {}),
    ("instancenorm2d-unbatched", "InstanceNorm2d", (3,), {}, [x(3, 4, 4)], {}),
    ("lrn", "LocalResponseNorm", (3,), {}, [x(2, 5, 4, 4)], {}),
    ("rmsnorm", "RMSNorm", (6,), {}, [x(3, 6)], {}),
    ("rmsnorm-eps", "RMSNorm", (6,), {"eps": 1e-3}, [x(3, 6)], {}),
]


@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_matches_torch(case):
    _, name, args, kwargs, inputs, opts = case
    make_d, make_t = both(name, *args, **kwargs)
    check_layer(make_d, make_t, inputs, **opts)


@pytest.mark.parametrize("name,args,inputs", [
    ("Linear", (5, 3), [x(4, 5)]),
    ("BatchNorm2d", (3,), [x(4, 3, 3, 3)]),
    ("LayerNorm", (6,), [x(4, 6)]),
    ("GELU", (), [x(4, 5)]),
    ("GroupNorm", (2, 4), [x(3, 4, 5)]),
])
def test_layer_float32(name, args, inputs):
    make_d, make_t = both(name, *args)
    check_layer(make_d, make_t, inputs, dtype=np.float32)


@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 1}, {"padding_idx": -1}, {"scale_grad_by_freq": True}])
def test_embedding(kwargs):
    idx = np.array([[0, 1, 2, 1], [3, 1, 0, 4]], dtype=np.int64)
    make_d, make_t = both("Embedding", 5, 3, **kwargs)
    dm, tm = check_layer(make_d, make_t, [idx], step=False)
    # the padding row gets no gradient; a step moves the others
    if "padding_idx" in kwargs:
        assert not np.any(dm.weight.grad._data[dm.padding_idx])


def test_embedding_init_and_max_norm():
    deepbox.manual_seed(0)
    e = dnn.Embedding(1000, 8, padding_idx=0)
    w = e.weight._data
    assert np.all(w[0] == 0)
    assert abs(w[1:].mean()) < 0.02 and abs(w[1:].std() - 1) < 0.02
    t = torch.nn.Embedding(6, 3, max_norm=1.0)
    d = dnn.Embedding(6, 3, max_norm=1.0)
    d.load_state_dict({"weight": t.weight.detach().numpy() * 3})
    with torch.no_grad():
        t.weight.mul_(3)
    idx = np.array([0, 2, 2, 5])
    out_t = t(torch.tensor(idx))
    out_d = d(deepbox.tensor(idx))
    np.testing.assert_allclose(out_d.detach().numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d.weight.detach().numpy(), t.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_embedding_from_pretrained():
    w = deepbox.tensor(np.arange(12.0).reshape(4, 3))
    e = dnn.Embedding.from_pretrained(w)
    assert not e.weight.requires_grad
    assert repr(e) == "Embedding(4, 3)"
    np.testing.assert_array_equal(e(deepbox.tensor([2]))._data, [[6.0, 7.0, 8.0]])


def test_eval_changes_dropout_and_batchnorm():
    m = dnn.Sequential(dnn.Linear(4, 4), dnn.BatchNorm1d(4), dnn.Dropout(0.5))
    inp = deepbox.randn(16, 4)
    m.train()
    a, b = m(inp), m(inp)
    assert not np.allclose(a._data, b._data), "dropout in train mode must be random"
    rm = m[1].running_mean._data.copy()
    m.eval()
    c, d = m(inp), m(inp)
    np.testing.assert_array_equal(c._data, d._data)
    np.testing.assert_array_equal(m[1].running_mean._data, rm)  # eval does not update running stats
    assert int(m[1].num_batches_tracked) == 2


def test_dropout_statistics():
    deepbox.manual_seed(0)
    inp = deepbox.ones(200, 500)
    out = dnn.functional.dropout(inp, 0.3, training=True)._data
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    assert out.dtype == np.float32
    out2 = dnn.functional.dropout2d(deepbox.ones(50, 40, 3, 3), 0.5)._data
    per_channel = out2.reshape(50, 40, 9)
    assert np.all(per_channel == per_channel[..., :1])  # whole channels are dropped together
    assert dnn.functional.dropout(inp, 1.0)._data.sum() == 0
    with pytest.raises(ValueError, match="between 0 and 1"):
        dnn.Dropout(1.5)


def test_dropout_gradient_uses_same_mask():
    inp = deepbox.ones(50, 40, requires_grad=True)
    out = dnn.functional.dropout(inp, 0.5)
    out.sum().backward()
    np.testing.assert_array_equal(inp.grad._data, out._data)


def test_batchnorm_bad_input():
    with pytest.raises(ValueError, match="expected 4D input"):
        dnn.BatchNorm2d(3)(deepbox.randn(2, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        dnn.BatchNorm1d(3)(deepbox.randn(1, 3))
    with pytest.raises(RuntimeError, match="normalized_shape"):
        dnn.LayerNorm(5)(deepbox.randn(2, 4))


def test_default_inits_match_torch_distribution():
    # PyTorch's defaults: weight and bias uniform in +-1/sqrt(fan_in)
    deepbox.manual_seed(0)
    lin = dnn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    w = lin.weight._data
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.02)
    assert np.abs(lin.bias._data).max() <= bound
    bn = dnn.BatchNorm2d(4)
    assert np.all(bn.weight._data == 1) and np.all(bn.bias._data == 0)
    assert bn.num_batches_tracked._data.dtype == np.int64
    assert np.all(dnn.PReLU(3).weight._data == 0.25)
