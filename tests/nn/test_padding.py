"""Every padding layer of torch.nn (ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad; 1-3 d)
against its PyTorch twin: values, gradients, batched and unbatched inputs, repr."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
from tests.helpers import check_op

NAMES = sorted(n for n in dir(torch.nn) if n.endswith(("Pad1d", "Pad2d", "Pad3d")))


@pytest.mark.parametrize("name", NAMES)
def test_padding_layer_matches_torch(name):
    rng = np.random.default_rng(len(name))
    nd = int(name[-2])
    x = rng.normal(size=(2, 3) + (5,) * nd)
    for pad in (tuple(int(v) for v in rng.integers(0, 3, 2 * nd)), 2):
        args = (pad, 1.5) if name.startswith("Constant") else (pad,)
        dm, tm = getattr(deepbox.nn, name)(*args), getattr(torch.nn, name)(*args)
        check_op(lambda t, dm=dm: dm(t), x, torch_fn=lambda t, tm=tm: tm(t))
        check_op(lambda t, dm=dm: dm(t), x[0], torch_fn=lambda t, tm=tm: tm(t))  # unbatched
        assert repr(dm) == repr(tm)


def test_padding_layer_rejects_wrong_rank_and_padding_length():
    with pytest.raises(ValueError, match="4-D"):
        deepbox.nn.ReflectionPad2d(1)(deepbox.randn(5))
    with pytest.raises(ValueError, match="4 ints"):
        deepbox.nn.ZeroPad2d((1, 2, 3))
