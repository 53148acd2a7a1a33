"""deepbox.finfo / deepbox.iinfo against torch.finfo / torch.iinfo."""
from __future__ import annotations

import pytest
import torch

import deepbox


@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_matches_torch(name):
    ours, ref = deepbox.finfo(getattr(deepbox, name)), torch.finfo(getattr(torch, name))
    for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(ours, attr) == getattr(ref, attr), attr
    assert ours.dtype == ref.dtype


def test_finfo_default_is_the_default_dtype_and_ints_are_refused():
    assert deepbox.finfo().eps == torch.finfo().eps
    with pytest.raises(TypeError):
        deepbox.finfo(deepbox.int32)
    with pytest.raises(TypeError):
        torch.finfo(torch.int32)


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_matches_torch(name):
    ours, ref = deepbox.iinfo(getattr(deepbox, name)), torch.iinfo(getattr(torch, name))
    assert (ours.bits, ours.min, ours.max, ours.dtype) == (ref.bits, ref.min, ref.max, ref.dtype)
    with pytest.raises(TypeError):
        deepbox.iinfo(deepbox.float32)
