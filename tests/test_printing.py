"""Printing as PyTorch prints: a 0-d tensor formats as its number, and set_printoptions changes precision,
summarisation and profiles the same way (compared with torch's own repr)."""
from __future__ import annotations

import pytest
import torch

import deepbox


@pytest.fixture(autouse=True)
def reset():
    yield
    deepbox.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


def test_zero_dim_tensor_formats_as_its_number():
    for value in (3.14159, -2.0, 7):
        assert f"{deepbox.tensor(value)}" == f"{torch.tensor(value)}"
        assert format(deepbox.tensor(value), ".3f") == format(torch.tensor(value), ".3f")
    assert f"{deepbox.tensor([1.5, 2.0])}" == "tensor([1.5000, 2.0000])"


@pytest.mark.parametrize("opts", [dict(precision=2), dict(threshold=5), dict(profile="short"),
                                  dict(precision=6), dict(threshold=5, edgeitems=2)])
def test_set_printoptions_matches_torch(opts):
    values = [x / 7 for x in range(12)]
    deepbox.set_printoptions(**opts)
    torch.set_printoptions(**opts)
    assert repr(deepbox.tensor(values)) == repr(torch.tensor(values))


def test_bad_profile():
    with pytest.raises(ValueError, match="profile"):
        deepbox.set_printoptions(profile="nope")
