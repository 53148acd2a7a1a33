"""Invalid inputs, op family by op family: wherever PyTorch 2.13 refuses a call (an index out of range,
a wrong dtype, a bad argument), deepbox refuses it too, with the same exception type (or a subclass of
it), so that user code catching ``IndexError`` or ``RuntimeError`` behaves the same. A valid call that
torch accepts must not raise here either.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as TF

import deepbox
import deepbox.nn.functional as DF


def F(T):  # noqa: N802 - stands for the framework's nn.functional
    return DF if T is deepbox else TF


CASES = {
 "indexing": [
  ("int index out of range", lambda T: T.ones(3)[5]),
  ("negative index out of range", lambda T: T.ones(3)[-4]),
  ("too many indices", lambda T: T.ones(3)[0, 0]),
  ("float index", lambda T: T.ones(3)[1.5]),
  ("float tensor index", lambda T: T.ones(3)[T.tensor([0.0])]),
  ("tensor index out of range", lambda T: T.ones(3)[T.tensor([3])]),
  ("mask of wrong shape", lambda T: T.ones(3)[T.tensor([True, False])]),
  ("negative step", lambda T: T.ones(3)[::-1]),
  ("zero step", lambda T: T.ones(3)[::0]),
  ("index_select float index", lambda T: T.ones(3).index_select(0, T.tensor([0.0]))),
  ("index_select out of range", lambda T: T.ones(3).index_select(0, T.tensor([3]))),
  ("index_select 2-D index", lambda T: T.ones(3).index_select(0, T.tensor([[0]]))),
  ("gather float index", lambda T: T.ones(3).gather(0, T.tensor([0.0]))),
  ("gather out of range", lambda T: T.ones(3).gather(0, T.tensor([5]))),
  ("gather ndim mismatch", lambda T: T.ones(3, 2).gather(0, T.tensor([0]))),
  ("scatter out of range", lambda T: T.zeros(3).scatter(0, T.tensor([4]), T.ones(1))),
  ("masked_fill non-bool mask", lambda T: T.ones(3).masked_fill(T.tensor([1, 0, 1]), 0.0)),
  ("masked_fill non-broadcastable", lambda T: T.ones(3).masked_fill(T.tensor([True, False]), 0.0)),
  ("take out of range", lambda T: T.take(T.ones(3), T.tensor([7]))),
  ("select out of range", lambda T: T.ones(3, 2).select(1, 2)),
  ("select bad dim", lambda T: T.ones(3, 2).select(2, 0)),
  ("narrow too long", lambda T: T.ones(3).narrow(0, 1, 5)),
  ("narrow bad dim", lambda T: T.ones(3).narrow(1, 0, 1)),
  ("index_put shape mismatch", lambda T: T.ones(3).index_put((T.tensor([0, 1]),), T.ones(3))),
  ("setitem shape mismatch", lambda T: T.ones(3).__setitem__(slice(0, 2), T.ones(3))),
  ("one_hot negative", lambda T: F(T).one_hot(T.tensor([-1]), 3)),
  ("one_hot too large", lambda T: F(T).one_hot(T.tensor([3]), 3)),
  ("one_hot float", lambda T: F(T).one_hot(T.tensor([1.0]), 3)),
  ("embedding out of range", lambda T: F(T).embedding(T.tensor([5]), T.ones(3, 2))),
  ("embedding float index", lambda T: F(T).embedding(T.tensor([1.0]), T.ones(3, 2))),
 ],
 "shapes and dims": [
  ("sum bad dim", lambda T: T.ones(2, 3).sum(2)),
  ("sum duplicate dims", lambda T: T.ones(2, 3).sum((0, 0))),
  ("mean of ints", lambda T: T.ones(2, dtype=T.int64).mean()),
  ("squeeze bad dim", lambda T: T.ones(2, 3).squeeze(5)),
  ("unsqueeze bad dim", lambda T: T.ones(2, 3).unsqueeze(4)),
  ("transpose bad dim", lambda T: T.ones(2, 3).transpose(0, 2)),
  ("permute wrong length", lambda T: T.ones(2, 3).permute(0)),
  ("permute repeated", lambda T: T.ones(2, 3).permute(0, 0)),
  ("reshape wrong size", lambda T: T.ones(2, 3).reshape(4, 2)),
  ("reshape two -1", lambda T: T.ones(2, 3).reshape(-1, -1)),
  ("view non-contiguous", lambda T: T.ones(2, 3).t().view(6)),
  ("expand bad size", lambda T: T.ones(2, 3).expand(3, 3)),
  ("expand fewer dims", lambda T: T.ones(2, 3).expand(3)),
  ("cat mismatched", lambda T: T.cat([T.ones(2, 3), T.ones(2, 4)])),
  ("cat bad dim", lambda T: T.cat([T.ones(2, 3), T.ones(2, 3)], 2)),
  ("cat empty list", lambda T: T.cat([])),
  ("stack mismatched", lambda T: T.stack([T.ones(2), T.ones(3)])),
  ("split bad size", lambda T: T.ones(4).split([1, 2])),
  ("chunk zero", lambda T: T.ones(4).chunk(0)),
  ("roll bad dim", lambda T: T.ones(2, 3).roll(1, 5)),
  ("flip bad dim", lambda T: T.ones(2, 3).flip(3)),
  ("cumsum bad dim", lambda T: T.ones(2, 3).cumsum(2)),
  ("softmax bad dim", lambda T: T.ones(2, 3).softmax(2)),
  ("topk too large", lambda T: T.ones(3).topk(4)),
  ("kthvalue too large", lambda T: T.ones(3).kthvalue(4)),
  ("repeat fewer dims", lambda T: T.ones(2, 3).repeat(2)),
  ("movedim bad", lambda T: T.ones(2, 3).movedim(0, 3)),
  ("flatten start after end", lambda T: T.ones(2, 3, 4).flatten(2, 1)),
  ("unflatten bad sizes", lambda T: T.ones(2, 6).unflatten(1, (4, 2))),
  ("diagonal bad dims", lambda T: T.ones(2, 3).diagonal(0, 0, 0)),
  ("tril of 1-D", lambda T: T.ones(3).tril()),
  ("max on empty", lambda T: T.ones(0).max()),
  ("argmax on empty dim", lambda T: T.ones(0, 3).argmax(0)),
 ],
 "arithmetic and dtypes": [
  ("add shapes", lambda T: T.ones(2, 3) + T.ones(4)),
  ("matmul shapes", lambda T: T.ones(2, 3) @ T.ones(4, 2)),
  ("matmul 0-d", lambda T: T.ones(()) @ T.ones(3)),
  ("mm 1-D", lambda T: T.mm(T.ones(3), T.ones(3))),
  ("bmm 2-D", lambda T: T.bmm(T.ones(2, 3), T.ones(3, 2))),
  ("dot 2-D", lambda T: T.dot(T.ones(2, 2), T.ones(2, 2))),
  ("dot sizes", lambda T: T.dot(T.ones(2), T.ones(3))),
  ("dot dtypes", lambda T: T.dot(T.ones(2), T.ones(2, dtype=T.float64))),
  ("int // 0", lambda T: T.tensor([1]) // 0),
  ("int % 0", lambda T: T.tensor([1]) % 0),
  ("bitwise on float", lambda T: T.ones(2) & T.ones(2)),
  ("in-place int *= float", lambda T: T.ones(2, dtype=T.int64).mul_(1.5)),
  ("in-place broadcast grows", lambda T: T.ones(3).add_(T.ones(2, 3))),
  ("requires_grad on int", lambda T: T.ones(2, dtype=T.int64).requires_grad_()),
  ("tensor of strings", lambda T: T.tensor(["a"])),
  ("ragged list", lambda T: T.tensor([[1, 2], [3]])),
  ("arange step 0", lambda T: T.arange(0, 3, 0)),
  ("arange wrong sign", lambda T: T.arange(0, 3, -1)),
  ("linspace bool", lambda T: T.linspace(0, 1, 5, dtype=T.bool)),
  ("linspace negative steps", lambda T: T.linspace(0, 1, -1)),
  ("zeros negative size", lambda T: T.zeros(-1)),
  ("randint low >= high", lambda T: T.randint(3, 3, (2,))),
  ("randn negative size", lambda T: T.randn(-2)),
  ("eye negative", lambda T: T.eye(-1)),
  ("full shape wrong", lambda T: T.full((2, -1), 1.0)),
  ("multinomial too many", lambda T: T.multinomial(T.tensor([0.5, 0.5]), 3)),
  ("multinomial negative", lambda T: T.multinomial(T.tensor([-0.5, 0.5]), 1)),
  ("item of many", lambda T: T.ones(2).item()),
  ("bool of many", lambda T: bool(T.ones(2))),
  ("len of 0-d", lambda T: len(T.tensor(1.0))),
  ("iter of 0-d", lambda T: iter(T.tensor(1.0))),
  ("index of float", lambda T: [1, 2][T.tensor(1.0)]),
  ("numpy with grad", lambda T: T.ones(2, requires_grad=True).numpy()),
  ("backward non-scalar", lambda T: (T.ones(2, requires_grad=True) * 2).backward()),
  ("backward no grad", lambda T: T.ones(2).sum().backward()),
  ("var of ints", lambda T: T.ones(3, dtype=T.int64).var()),
  ("softmax of ints", lambda T: T.ones(3, dtype=T.int64).softmax(0)),
 ],
 "nn.functional": [
  ("linear shapes", lambda T: F(T).linear(T.ones(2, 3), T.ones(4, 5))),
  ("linear dtype", lambda T: F(T).linear(T.ones(2, 3, dtype=T.float64), T.ones(4, 3))),
  ("conv2d 3-D weight", lambda T: F(T).conv2d(T.ones(1, 1, 5, 5), T.ones(1, 3, 3))),
  ("conv2d channels", lambda T: F(T).conv2d(T.ones(1, 2, 5, 5), T.ones(1, 3, 3, 3))),
  ("conv2d 2-D input", lambda T: F(T).conv2d(T.ones(5, 5), T.ones(1, 1, 3, 3))),
  ("conv2d kernel too big", lambda T: F(T).conv2d(T.ones(1, 1, 2, 2), T.ones(1, 1, 3, 3))),
  ("conv2d stride 0", lambda T: F(T).conv2d(T.ones(1, 1, 5, 5), T.ones(1, 1, 3, 3), stride=0)),
  ("conv2d negative padding", lambda T: F(T).conv2d(T.ones(1, 1, 5, 5), T.ones(1, 1, 3, 3), padding=-1)),
  ("conv2d groups", lambda T: F(T).conv2d(T.ones(1, 3, 5, 5), T.ones(2, 3, 3, 3), groups=2)),
  ("conv2d int input", lambda T: F(T).conv2d(T.ones(1, 1, 5, 5, dtype=T.int64), T.ones(1, 1, 3, 3))),
  ("max_pool2d padding too big", lambda T: F(T).max_pool2d(T.ones(1, 1, 5, 5), 2, padding=2)),
  ("max_pool2d 2-D input", lambda T: F(T).max_pool2d(T.ones(5, 5), 2)),
  ("max_pool2d kernel too big", lambda T: F(T).max_pool2d(T.ones(1, 1, 2, 2), 3)),
  ("avg_pool2d padding too big", lambda T: F(T).avg_pool2d(T.ones(1, 1, 5, 5), 2, padding=2)),
  ("avg_pool2d kernel 0", lambda T: F(T).avg_pool2d(T.ones(1, 1, 5, 5), 0)),
  ("adaptive_avg_pool2d 0", lambda T: F(T).adaptive_avg_pool2d(T.ones(1, 1, 5, 5), 0)),
  ("cross_entropy target out of range", lambda T: F(T).cross_entropy(T.ones(2, 3), T.tensor([0, 3]))),
  ("cross_entropy float target shape", lambda T: F(T).cross_entropy(T.ones(2, 3), T.ones(2, 4))),
  ("cross_entropy batch mismatch", lambda T: F(T).cross_entropy(T.ones(2, 3), T.tensor([0, 1, 2]))),
  ("nll_loss float target", lambda T: F(T).nll_loss(T.ones(2, 3), T.tensor([0.0, 1.0]))),
  ("mse_loss sizes", lambda T: F(T).mse_loss(T.ones(2, 3), T.ones(3, 3))),
  ("bce out of range", lambda T: F(T).binary_cross_entropy(T.tensor([1.5]), T.tensor([1.0]))),
  ("bce sizes", lambda T: F(T).binary_cross_entropy(T.tensor([0.5, 0.5]), T.tensor([1.0]))),
  ("dropout p > 1", lambda T: F(T).dropout(T.ones(3), 1.5)),
  ("softmax no dim on 3-D", lambda T: F(T).softmax(T.ones(2, 3, 4), 3)),
  ("batch_norm channels", lambda T: F(T).batch_norm(T.ones(2, 3), T.zeros(4), T.ones(4))),
  ("layer_norm shape", lambda T: F(T).layer_norm(T.ones(2, 3), (4,))),
  ("pad odd length", lambda T: F(T).pad(T.ones(2, 3), (1,))),
  ("pad bad mode", lambda T: F(T).pad(T.ones(1, 2, 3), (1, 1), mode="foo")),
  ("pad reflect too big", lambda T: F(T).pad(T.ones(1, 2, 3), (3, 3), mode="reflect")),
  ("interpolate both size and scale", lambda T: F(T).interpolate(T.ones(1, 1, 4), size=2, scale_factor=2)),
  ("interpolate neither", lambda T: F(T).interpolate(T.ones(1, 1, 4))),
  ("interpolate bilinear on 3-D", lambda T: F(T).interpolate(T.ones(1, 1, 4), scale_factor=2, mode="bilinear")),
  ("interpolate align_corners nearest",
   lambda T: F(T).interpolate(T.ones(1, 1, 4), scale_factor=2, align_corners=True)),
  ("embedding 1-D weight", lambda T: F(T).embedding(T.tensor([0]), T.ones(3))),
 ],
}


def _raised(fn, T):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(T)
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return type(e)
    return None


@pytest.mark.parametrize("family,name,fn", [(fam, name, fn) for fam, cases in CASES.items() for name, fn in cases],
                         ids=[f"{fam}: {name}" for fam, cases in CASES.items() for name, _ in cases])
def test_invalid_input_raises_as_torch(family, name, fn):
    expected, got = _raised(fn, torch), _raised(fn, deepbox)
    if expected is None:
        assert got is None, f"{name}: torch accepts the call, deepbox raised {got.__name__}"
    else:
        assert got is not None and issubclass(got, expected), \
            f"{name}: torch raises {expected.__name__}, deepbox {got.__name__ if got else 'nothing'}"
