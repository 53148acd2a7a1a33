"""deepbox.optim.swa_utils against torch.optim.swa_utils: the same averages, step by step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
from deepbox import nn
from deepbox.optim import swa_utils


def _pair(seed=0):
    """The same small BN network in deepbox and PyTorch (float32), deepbox's weights copied into PyTorch's."""
    deepbox.manual_seed(seed)
    ours = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(12, 2))
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def _train(ours, theirs, averaged, torch_averaged, steps, rng, lr=0.1):
    """SGD steps on the same random batches, updating both averages after each step."""
    opt_o = deepbox.optim.SGD(ours.parameters(), lr=lr)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=lr)
    for _ in range(steps):
        x = rng.standard_normal((8, 1, 4, 4)).astype(np.float32)
        y = rng.integers(0, 2, 8)
        for model, opt, lib, avg in ((ours, opt_o, deepbox, averaged), (theirs, opt_t, torch, torch_averaged)):
            opt.zero_grad()
            lib.nn.functional.cross_entropy(model(lib.from_numpy(x.copy())), lib.from_numpy(y.copy())).backward()
            opt.step()
            avg.update_parameters(model)


def _assert_same_state(ours, theirs, atol=1e-5):
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=1e-5, atol=atol, err_msg=k)


@pytest.mark.parametrize("kind", ["swa", "ema_multi", "ema_single", "swa_single"])
@pytest.mark.parametrize("use_buffers", [False, True])
def test_averaged_model_matches_torch(kind, use_buffers):
    ours, theirs = _pair()
    fns = {"swa": ({}, {}),
           "ema_multi": ({"multi_avg_fn": swa_utils.get_ema_multi_avg_fn(0.9)},
                         {"multi_avg_fn": torch.optim.swa_utils.get_ema_multi_avg_fn(0.9)}),
           "ema_single": ({"avg_fn": swa_utils.get_ema_avg_fn(0.8)},
                          {"avg_fn": torch.optim.swa_utils.get_ema_avg_fn(0.8)}),
           "swa_single": ({"avg_fn": swa_utils.get_swa_avg_fn()},
                          {"avg_fn": torch.optim.swa_utils.get_swa_avg_fn()})}[kind]
    averaged = swa_utils.AveragedModel(ours, use_buffers=use_buffers, **fns[0])
    torch_averaged = torch.optim.swa_utils.AveragedModel(theirs, use_buffers=use_buffers, **fns[1])
    _assert_same_state(averaged, torch_averaged)  # n_averaged 0, the copied weights
    _train(ours, theirs, averaged, torch_averaged, 7, np.random.default_rng(1))
    assert int(averaged.n_averaged.item()) == 7
    # the average really differs from the last weights (the comparison would be empty otherwise)
    assert not np.allclose(averaged.module[0].weight.detach().numpy(), ours[0].weight.detach().numpy())
    _assert_same_state(averaged, torch_averaged)
    x = np.random.default_rng(2).standard_normal((5, 1, 4, 4)).astype(np.float32)
    averaged.eval()
    torch_averaged.eval()
    with torch.no_grad(), deepbox.no_grad():
        np.testing.assert_allclose(averaged(deepbox.from_numpy(x)).numpy(), torch_averaged(torch.from_numpy(x)).numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_ema_by_hand():
    # decay 0.5, weights w0, w1, w2: W_ema = w0, then 0.5 * w0 + 0.5 * w1, then 0.5 * that + 0.5 * w2
    lin = nn.Linear(2, 1)
    avg = swa_utils.AveragedModel(lin, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.5))
    ws = [np.array([[1.0, 2.0]]), np.array([[3.0, -2.0]]), np.array([[0.0, 4.0]])]
    for w in ws:
        lin.weight.data.copy_(deepbox.from_numpy(w.astype(np.float32)))
        avg.update_parameters(lin)
    # [1, 2]; then 0.5 * [1, 2] + 0.5 * [3, -2] = [2, 0]; then 0.5 * [2, 0] + 0.5 * [0, 4] = [1, 2]
    np.testing.assert_allclose(avg.module.weight.detach().numpy(), [[1.0, 2.0]])
    swa = swa_utils.AveragedModel(lin)
    for w in ws:
        lin.weight.data.copy_(deepbox.from_numpy(w.astype(np.float32)))
        swa.update_parameters(lin)
    np.testing.assert_allclose(swa.module.weight.detach().numpy(), [[4 / 3, 4 / 3]], rtol=1e-6)


def test_update_bn_matches_torch_and_restores_state():
    ours, theirs = _pair(3)
    ours[1].momentum = theirs[1].momentum = 0.3
    ours.eval()
    theirs.eval()
    rng = np.random.default_rng(4)
    batches = [rng.standard_normal((6, 1, 4, 4)).astype(np.float32) * 2 + 1 for _ in range(3)]
    loader_o = [(deepbox.from_numpy(b), deepbox.zeros(6)) for b in batches]
    swa_utils.update_bn(loader_o, ours)
    torch.optim.swa_utils.update_bn([(torch.from_numpy(b), torch.zeros(6)) for b in batches], theirs)
    _assert_same_state(ours, theirs)
    # the running statistics are the equal-weight average over the three batches of each batch's statistics
    conv = [ours[0](deepbox.from_numpy(b)).detach().numpy() for b in batches]
    np.testing.assert_allclose(ours[1].running_mean.numpy(), np.mean([c.mean(axis=(0, 2, 3)) for c in conv], 0),
                               rtol=1e-5, atol=1e-6)
    assert ours[1].momentum == 0.3 and not ours.training and int(ours[1].num_batches_tracked.item()) == 3
    # plain tensors as batches, and a model without batch norm is left alone
    swa_utils.update_bn([deepbox.from_numpy(b) for b in batches], ours)
    _assert_same_state(ours, theirs)
    lin = nn.Linear(2, 2)
    before = lin.weight.detach().numpy().copy()
    swa_utils.update_bn([deepbox.ones(1, 2)], lin)
    np.testing.assert_array_equal(lin.weight.detach().numpy(), before)


def test_state_dict_round_trip_and_errors():
    ours, theirs = _pair()
    avg = swa_utils.AveragedModel(ours, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.9), use_buffers=True)
    avg.update_parameters(ours)
    t_avg = torch.optim.swa_utils.AveragedModel(theirs, use_buffers=True)
    t_avg.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in avg.state_dict().items()})
    assert int(t_avg.n_averaged) == 1
    other = swa_utils.AveragedModel(ours)
    other.load_state_dict(avg.state_dict())
    _assert_same_state(other, avg)
    for bad in (-0.1, 1.5):
        for get in (swa_utils.get_ema_multi_avg_fn, swa_utils.get_ema_avg_fn):
            with pytest.raises(ValueError, match="decay"):
                get(bad)
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        swa_utils.AveragedModel(ours, avg_fn=swa_utils.get_swa_avg_fn(), multi_avg_fn=swa_utils.get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match="do not match"):
        swa_utils.AveragedModel(ours).update_parameters(nn.Linear(2, 2))
    assert deepbox.optim.swa_utils is swa_utils
