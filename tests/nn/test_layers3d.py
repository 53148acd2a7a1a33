"""The 3-D layers (Conv3d, MaxPool3d, AvgPool3d, AdaptiveAvgPool3d, AdaptiveMaxPool3d) and their functional
forms against PyTorch: values, gradients, indices, state_dict names and printed form."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn as dnn
import deepbox.nn.functional as DF
from tests.helpers import check_op
from tests.nn.layer_harness import check_layer

R = np.random.default_rng(7)


def x(*shape):
    return R.standard_normal(shape)


def both(name, *args, **kwargs):
    return (lambda: getattr(dnn, name)(*args, **kwargs)), (lambda: getattr(torch.nn, name)(*args, **kwargs))


def fn_of(t):
    return DF if isinstance(t, deepbox.Tensor) else torch.nn.functional


LAYERS = [
    ("conv3d", "Conv3d", (2, 3, 3), {}, [x(2, 2, 4, 5, 5)]),
    ("conv3d-pad-stride", "Conv3d", (2, 4, (2, 3, 1)), {"stride": (2, 1, 2), "padding": (1, 0, 1)}, [x(1, 2, 5, 4, 5)]),
    ("conv3d-groups-nobias", "Conv3d", (4, 2, 2), {"groups": 2, "bias": False, "dilation": 2}, [x(1, 4, 5, 5, 5)]),
    ("conv3d-same-reflect", "Conv3d", (2, 2, 3), {"padding": "same", "padding_mode": "reflect"}, [x(1, 2, 4, 4, 4)]),
    ("conv3d-replicate", "Conv3d", (1, 2, 3), {"padding": 1, "padding_mode": "replicate"}, [x(1, 1, 3, 4, 4)]),
    ("conv3d-circular", "Conv3d", (1, 2, 2), {"padding": (1, 0, 1), "padding_mode": "circular"}, [x(1, 1, 3, 4, 4)]),
    ("conv3d-unbatched", "Conv3d", (2, 3, 2), {}, [x(2, 3, 4, 4)]),
    ("maxpool3d", "MaxPool3d", (2,), {}, [x(2, 3, 4, 6, 6)]),
    ("maxpool3d-all", "MaxPool3d", ((3, 2, 2),), {"stride": (2, 1, 2), "padding": 1, "dilation": (1, 2, 1),
                                                   "ceil_mode": True}, [x(1, 2, 6, 7, 5)]),
    ("maxpool3d-indices", "MaxPool3d", (2,), {"return_indices": True, "stride": 1}, [x(3, 4, 4, 5)]),
    ("avgpool3d", "AvgPool3d", (2,), {}, [x(2, 3, 4, 6, 6)]),
    ("avgpool3d-pad", "AvgPool3d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False,
                                           "ceil_mode": True}, [x(1, 2, 5, 6, 7)]),
    ("adaptiveavg3d", "AdaptiveAvgPool3d", ((2, 3, None),), {}, [x(2, 3, 5, 7, 4)]),
    ("adaptiveavg3d-1", "AdaptiveAvgPool3d", (1,), {}, [x(2, 3, 4, 4, 4)]),
    ("adaptivemax3d", "AdaptiveMaxPool3d", ((2, 3, 2),), {}, [x(2, 3, 5, 7, 4)]),
    ("adaptivemax3d-indices", "AdaptiveMaxPool3d", (3,), {"return_indices": True}, [x(2, 5, 7, 4)]),
]


@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
def test_3d_layer_matches_torch(case):
    _, name, args, kwargs, inputs = case
    make_d, make_t = both(name, *args, **kwargs)
    check_layer(make_d, make_t, inputs)


def test_3d_layers_float32_and_repr():
    make_d, make_t = both("Conv3d", 3, 4, (3, 2, 2), stride=(1, 2, 1), padding=(1, 0, 0), bias=False)
    check_layer(make_d, make_t, [x(2, 3, 5, 6, 4)], dtype=np.float32)
    for name, args, kw in [("Conv3d", (1, 2, 3), {"stride": 2, "padding": 1, "groups": 1}),
                           ("MaxPool3d", (2,), {"stride": 1, "ceil_mode": True}), ("AvgPool3d", ((2, 1, 2),), {}),
                           ("AdaptiveAvgPool3d", ((2, None, 3),), {}), ("AdaptiveMaxPool3d", (2,), {})]:
        assert repr(getattr(dnn, name)(*args, **kw)) == repr(getattr(torch.nn, name)(*args, **kw))


@pytest.mark.parametrize("kw", [{}, {"stride": 1}, {"padding": 1, "stride": 2}, {"dilation": 2},
                                {"ceil_mode": True, "stride": 2}])
def test_max_pool3d_values_indices_and_gradients(kw):
    inp = x(2, 2, 5, 6, 5)
    check_op(lambda t: fn_of(t).max_pool3d(t, 2, **kw), inp)
    d = DF.max_pool3d(deepbox.tensor(inp), 2, return_indices=True, **kw)
    t = torch.nn.functional.max_pool3d(torch.tensor(inp), 2, return_indices=True, **kw)
    np.testing.assert_array_equal(d[1].numpy(), t[1].numpy())


def test_max_pool3d_ties_nan_and_errors():
    ties = np.zeros((1, 1, 4, 4, 4))
    ties[0, 0, 1, 2, 3] = np.nan
    check_op(lambda t: fn_of(t).max_pool3d(t, 2, stride=1, return_indices=True), ties)
    for lib in (deepbox, torch):
        F = lib.nn.functional
        with pytest.raises(RuntimeError):
            F.max_pool3d(lib.ones(1, 1, 2, 2), 2)  # 3-D input: (C, D, H) is not enough
        with pytest.raises(RuntimeError):
            F.max_pool3d(lib.ones(1, 1, 2, 2, 2), 2, padding=2)
        with pytest.raises(RuntimeError):
            F.max_pool3d(lib.ones(1, 1, 1, 4, 4), 2)


def test_adaptive_pool3d_functional():
    inp = x(2, 3, 6, 5, 7)
    for size in (1, 2, (3, 2, 4), (None, 1, 7), (6, 5, 7), (4, 4, 9)):
        check_op(lambda t, size=size: fn_of(t).adaptive_avg_pool3d(t, size), inp)
        check_op(lambda t, size=size: fn_of(t).adaptive_max_pool3d(t, size, return_indices=True), inp)
    for lib in (deepbox, torch):
        with pytest.raises((RuntimeError, ValueError)):
            lib.nn.functional.adaptive_avg_pool3d(lib.ones(2, 3, 4), 2)
