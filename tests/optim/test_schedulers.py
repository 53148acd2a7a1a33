"""Learning-rate schedulers: the rate (and momentum) sequences equal torch.optim.lr_scheduler's exactly.

Each schedule runs for 60 steps on an optimiser with two param groups of different rates, in both
frameworks; the learning rates and momenta of every group must be equal at every step, also when
the run is cut in two by a state_dict round trip (through ``deepbox.save``/``deepbox.load``).
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch

import deepbox
import deepbox.optim as dopt

STEPS = 60


@pytest.fixture(autouse=True)
def _quiet():
    # both frameworks warn when a scheduler steps before its optimiser; these tests step both anyway
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _optimizer(fw, kind="SGD"):
    z = torch.zeros if fw is torch else deepbox.zeros
    o = torch.optim if fw is torch else dopt
    groups = [{"params": [z(2, requires_grad=True)]}, {"params": [z(3, requires_grad=True)], "lr": 0.5}]
    if kind == "SGD":
        return o.SGD(groups, lr=0.1, momentum=0.9)
    return getattr(o, kind)(groups, lr=0.1)


def _record(opt):
    row = []
    for g in opt.param_groups:
        row.append(float(g["lr"]))
        row.append(float(g["betas"][0] if "betas" in g else g.get("momentum", 0.0)))
    return row


def _metric(i):
    # a validation loss that improves, stalls, improves a little, then stalls for good
    return [5.0, 4.0, 4.0, 3.99995, 4.0, 3.0, 3.0, 3.0][i % 8] if i < 24 else 2.5


def _step(sched, i, plateau):
    if plateau:
        sched.step(_metric(i))
    else:
        sched.step()


def _sequence(fw, make, kind="SGD", plateau=False, cut=None):
    """lr/momentum of each group after each step; with ``cut``, rebuild everything from state dicts there."""
    L = torch.optim.lr_scheduler if fw is torch else dopt.lr_scheduler
    opt = _optimizer(fw, kind)
    sched = make(L, opt)
    rows = [_record(opt)]
    for i in range(STEPS):
        if cut is not None and i == cut:
            opt_sd, sched_sd = opt.state_dict(), sched.state_dict()
            if fw is deepbox:  # through a checkpoint file, as a resumed run would
                buf = io.BytesIO()
                deepbox.save({"optimizer": opt_sd, "scheduler": sched_sd}, buf)
                buf.seek(0)
                ck = deepbox.load(buf)
                opt_sd, sched_sd = ck["optimizer"], ck["scheduler"]
            opt = _optimizer(fw, kind)
            sched = make(L, opt)
            opt.load_state_dict(opt_sd)
            sched.load_state_dict(sched_sd)
        opt.step()
        _step(sched, i, plateau)
        rows.append(_record(opt))
        assert [float(x) for x in sched.get_last_lr()] == [float(g["lr"]) for g in opt.param_groups]
    return np.array(rows)


SCHEDULES = {
    "LambdaLR": lambda L, o: L.LambdaLR(o, [lambda e: 0.95**e, lambda e: 1.0 / (e + 1)]),
    "MultiplicativeLR": lambda L, o: L.MultiplicativeLR(o, lambda e: 0.97 if e % 2 else 0.99),
    "StepLR": lambda L, o: L.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, milestones=[5, 10, 10, 30], gamma=0.3),
    "ConstantLR": lambda L, o: L.ConstantLR(o, factor=0.25, total_iters=8),
    "LinearLR": lambda L, o: L.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=17),
    "ExponentialLR": lambda L, o: L.ExponentialLR(o, gamma=0.93),
    "PolynomialLR": lambda L, o: L.PolynomialLR(o, total_iters=30, power=2.0),
    "CosineAnnealingLR": lambda L, o: L.CosineAnnealingLR(o, T_max=13, eta_min=0.01),
    "CosineAnnealingWarmRestarts": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=1e-3),
    "CosineAnnealingWarmRestarts-1": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=7),
    "OneCycleLR-cos": lambda L, o: L.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=STEPS + 1),
    "OneCycleLR-linear-3phase": lambda L, o: L.OneCycleLR(o, max_lr=1.0, epochs=6, steps_per_epoch=11,
                                                          three_phase=True, anneal_strategy="linear",
                                                          pct_start=0.25),
    "OneCycleLR-no-momentum": lambda L, o: L.OneCycleLR(o, max_lr=0.3, total_steps=STEPS + 5,
                                                        cycle_momentum=False, div_factor=10.0),
    "CyclicLR-triangular": lambda L, o: L.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.2], step_size_up=7,
                                                   step_size_down=4),
    "CyclicLR-triangular2": lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=5, mode="triangular2"),
    "CyclicLR-exp_range": lambda L, o: L.CyclicLR(o, [0.01, 0.02], 0.1, step_size_up=5, mode="exp_range",
                                                  gamma=0.97, base_momentum=0.7, max_momentum=0.95),
    "SequentialLR": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=20),
            L.StepLR(o, step_size=3)], milestones=[5, 30]),
    "ChainedScheduler": lambda L, o: L.ChainedScheduler([L.ExponentialLR(o, 0.95), L.StepLR(o, 4, 0.5),
                                                         L.ConstantLR(o, 0.5, 6)]),
}

ADAM_SCHEDULES = {  # the momentum cycles through Adam's beta1
    "OneCycleLR-adam": lambda L, o: L.OneCycleLR(o, max_lr=0.01, total_steps=STEPS + 1),
    "CyclicLR-adam": lambda L, o: L.CyclicLR(o, 0.001, 0.01, step_size_up=6),
    "CosineAnnealingLR-adamw": lambda L, o: L.CosineAnnealingLR(o, T_max=STEPS, eta_min=1e-4),
}

PLATEAU = {
    "ReduceLROnPlateau-min-rel": lambda L, o: L.ReduceLROnPlateau(o, patience=2, factor=0.5),
    "ReduceLROnPlateau-abs-cooldown": lambda L, o: L.ReduceLROnPlateau(
        o, patience=1, factor=0.3, threshold=0.01, threshold_mode="abs", cooldown=2, min_lr=[0.0, 0.02]),
    "ReduceLROnPlateau-max": lambda L, o: L.ReduceLROnPlateau(o, mode="max", patience=0, factor=0.7, eps=1e-3),
}


def _cases():
    for name, make in SCHEDULES.items():
        yield pytest.param(make, "SGD", False, id=name)
    for name, make in ADAM_SCHEDULES.items():
        yield pytest.param(make, "AdamW" if "adamw" in name else "Adam", False, id=name)
    for name, make in PLATEAU.items():
        yield pytest.param(make, "SGD", True, id=name)


@pytest.mark.parametrize("make, kind, plateau", list(_cases()))
def test_sequence_matches_torch(make, kind, plateau):
    expected = _sequence(torch, make, kind, plateau)
    assert len(np.unique(expected[:, 0])) > 1, "the schedule under test never changes the rate"
    np.testing.assert_array_equal(_sequence(deepbox, make, kind, plateau), expected)


@pytest.mark.parametrize("make, kind, plateau", list(_cases()))
def test_sequence_survives_state_dict_round_trip(make, kind, plateau):
    expected = _sequence(torch, make, kind, plateau)
    np.testing.assert_array_equal(_sequence(deepbox, make, kind, plateau, cut=STEPS // 2 - 3), expected)


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "OneCycleLR-cos",
                                  "CyclicLR-triangular", "SequentialLR", "ChainedScheduler", "LambdaLR"])
def test_state_dict_keys_match_torch(name):
    make = SCHEDULES[name]
    t = make(torch.optim.lr_scheduler, _optimizer(torch))
    d = make(dopt.lr_scheduler, _optimizer(deepbox))
    tsd, dsd = t.state_dict(), d.state_dict()
    assert sorted(dsd) == sorted(tsd)
    for key in ("last_epoch", "base_lrs", "_last_lr", "_step_count"):
        if key in tsd:
            assert dsd[key] == tsd[key], key


def test_plateau_state_dict_keys_match_torch():
    t = torch.optim.lr_scheduler.ReduceLROnPlateau(_optimizer(torch))
    d = dopt.lr_scheduler.ReduceLROnPlateau(_optimizer(deepbox))
    assert sorted(d.state_dict()) == sorted(t.state_dict())


def test_warm_restarts_with_fractional_epochs():
    rows = {}
    for fw in (torch, deepbox):
        L = torch.optim.lr_scheduler if fw is torch else dopt.lr_scheduler
        opt = _optimizer(fw)
        sched = L.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.001)
        seq = []
        for epoch in range(12):
            for b in range(4):
                opt.step()
                sched.step(epoch + b / 4)
                seq.append([g["lr"] for g in opt.param_groups])
        rows[fw] = np.array(seq)
    np.testing.assert_array_equal(rows[deepbox], rows[torch])


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
                                  "ConstantLR", "PolynomialLR"])
def test_closed_form_with_explicit_epoch_matches_torch(name):
    rows = {}
    for fw in (torch, deepbox):
        L = torch.optim.lr_scheduler if fw is torch else dopt.lr_scheduler
        opt = _optimizer(fw)
        sched = SCHEDULES[name](L, opt)
        seq = []
        for epoch in [3, 1, 8, 20, 13, 40, 2]:
            sched.step(epoch)
            seq.append([g["lr"] for g in opt.param_groups])
        rows[fw] = np.array(seq)
    np.testing.assert_array_equal(rows[deepbox], rows[torch])


def test_resuming_with_last_epoch_needs_initial_lr():
    opt = _optimizer(deepbox)
    with pytest.raises(KeyError, match="initial_lr"):
        dopt.lr_scheduler.StepLR(opt, 3, last_epoch=5)


def test_warns_when_scheduler_steps_before_optimizer():
    opt = _optimizer(deepbox)
    sched = dopt.lr_scheduler.StepLR(opt, 3)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        sched.step()
    assert any("before `optimizer.step()`" in str(x.message) for x in w)
    opt2 = _optimizer(deepbox)
    sched2 = dopt.lr_scheduler.StepLR(opt2, 3)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        opt2.step()
        sched2.step()
    assert not any("before `optimizer.step()`" in str(x.message) for x in w)


@pytest.mark.parametrize("build, error, message", [
    (lambda L, o: L.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas, but got 1"),
    (lambda L, o: L.MultiplicativeLR(o, [0.5, 0.5]), TypeError, "lr_lambda should be a function"),
    (lambda L, o: L.ConstantLR(o, factor=1.5), ValueError, "between 0 and 1"),
    (lambda L, o: L.LinearLR(o, start_factor=0), ValueError, "greater than 0"),
    (lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "Expected positive integer T_0, but got 0"),
    (lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), ValueError, "T_mult >= 1, but got 0"),
    (lambda L, o: L.OneCycleLR(o, max_lr=1.0), ValueError, "total_steps OR"),
    (lambda L, o: L.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5), ValueError, "pct_start"),
    (lambda L, o: L.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (lambda L, o: L.OneCycleLR(o, max_lr=[1.0], total_steps=10), ValueError, "max_lr has 1 values"),
    (lambda L, o: L.CyclicLR(o, 0.1, 1.0, mode="sawtooth"), ValueError, "scale_fn is None"),
    (lambda L, o: L.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor should be < 1.0"),
    (lambda L, o: L.ReduceLROnPlateau(o, mode="up"), ValueError, "mode up is unknown"),
    (lambda L, o: L.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "expected 2 min_lrs, got 1"),
    (lambda L, o: L.SequentialLR(o, [L.StepLR(o, 2)], milestones=[3]), ValueError, "one more than"),
    (lambda L, o: L.SequentialLR(o, [L.StepLR(o, 2), L.ReduceLROnPlateau(o)], [3]), ValueError,
     "does not support `ReduceLROnPlateau`"),
    (lambda L, o: L.StepLR(object(), 2), TypeError, "object is not an Optimizer"),
])
def test_argument_checks(build, error, message):
    with pytest.raises(error, match=message):
        build(dopt.lr_scheduler, _optimizer(deepbox))
    with pytest.raises(error, match=message):  # PyTorch raises the same
        build(torch.optim.lr_scheduler, _optimizer(torch))


def test_cycle_momentum_needs_momentum_or_betas():
    opt = dopt.Adagrad([deepbox.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="momentum or beta1"):
        dopt.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)


def test_onecycle_refuses_steps_past_total():
    opt = _optimizer(deepbox)
    sched = dopt.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        opt.step()
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total steps is 3"):
        sched.step()
