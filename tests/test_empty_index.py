"""An advanced index whose result is empty does not raise, whatever its values (PyTorch checks bounds element by
element); a non-empty one still raises IndexError. The case hypothesis found: x[..., 0:0, tensor([1]), :, None]."""
from __future__ import annotations

import pytest
import torch

import deepbox


@pytest.mark.parametrize("shape,key", [((0, 2, 1, 0), (Ellipsis, slice(0, 0), [1], slice(None), None)),
                                       ((2, 1), (slice(0, 0), [1])), ((0, 1), (slice(None), [1])),
                                       ((3, 0, 2), ([5, 7], slice(None), [0, 1]))])
def test_empty_result_never_raises(shape, key):
    dk = tuple(deepbox.tensor(k) if isinstance(k, list) else k for k in key)
    tk = tuple(torch.tensor(k) if isinstance(k, list) else k for k in key)
    x = deepbox.randn(*shape, requires_grad=True)
    try:
        ref = tuple(torch.randn(*shape)[tk].shape)
    except IndexError:
        with pytest.raises(IndexError):
            x[dk]
        return
    out = x[dk]
    assert tuple(out.shape) == ref
    out.sum().backward()
    assert tuple(x.grad.shape) == shape


def test_non_empty_result_still_raises():
    with pytest.raises(IndexError, match="out of bounds"):
        deepbox.randn(2, 1)[:, deepbox.tensor([1])]
    with pytest.raises(IndexError):
        torch.randn(2, 1)[:, torch.tensor([1])]
