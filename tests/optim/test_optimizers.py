"""Optimisers: parameter trajectories equal torch.optim's, and the Optimizer base behaves as PyTorch's.

The trajectories start both frameworks from the same float64 parameters and set, at every step,
the gradient of one fixed non-convex function evaluated at each framework's own current
parameters, so a wrong update anywhere shows up as diverging trajectories.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch

import deepbox
import deepbox.optim as dopt

STEPS = 60
SHAPES = [(3, 4), (5,), (2, 1, 3)]


def _targets(dtype=np.float64):
    rng = np.random.default_rng(0)
    x0 = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    a = [(0.5 + rng.random(s)).astype(dtype) for s in SHAPES]
    c = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    return x0, a, c


def _grad(x, a, c, sign):
    # gradient of sum(a (x - c)^2 / 2 - 0.1 cos(3 x)): curvature varies in sign, so momentum and
    # adaptive methods all take different paths
    return sign * (a * (x - c) + 0.3 * np.sin(3 * x))


def _run(cls_name, kwargs, groups=None, steps=STEPS, dtype=np.float64, skip_grad=True, sign=1.0):
    """Run the same optimisation in both frameworks; return both final parameter lists and optimisers."""
    x0, a, c = _targets(dtype)
    tp = [torch.tensor(x.copy(), requires_grad=True) for x in x0]
    dp = [deepbox.tensor(x.copy(), requires_grad=True) for x in x0]

    def param_groups(ps):
        if groups is None:
            return ps
        return [dict(g, params=[ps[i] for i in g["params"]]) for g in groups]

    topt = getattr(torch.optim, cls_name)(param_groups(tp), **kwargs)
    dopt_ = getattr(dopt, cls_name)(param_groups(dp), **kwargs)
    for step in range(steps):
        for i, (t, d) in enumerate(zip(tp, dp)):
            # the last parameter gets no gradient every third step: both must skip it alike
            if skip_grad and i == len(tp) - 1 and step % 3 == 2:
                t.grad, d.grad = None, None
                continue
            t.grad = torch.tensor(_grad(t.detach().numpy(), a[i], c[i], sign))
            d.grad = deepbox.tensor(_grad(d._data, a[i], c[i], sign))
        topt.step()
        dopt_.step()
    return tp, dp, topt, dopt_


def _assert_same(tp, dp, rtol=1e-10, atol=1e-12):
    for i, (t, d) in enumerate(zip(tp, dp)):
        assert d.dtype.name == str(t.dtype).replace("torch.", "")
        np.testing.assert_allclose(d._data, t.detach().numpy(), rtol=rtol, atol=atol, err_msg=f"param {i}")


TWO_GROUPS = [{"params": [0, 2]}, {"params": [1], "lr": 0.003}]

CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, maximize=True)),
    ("Adam", dict(lr=0.02)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), weight_decay=0.1)),
    ("Adam", dict(lr=0.02, amsgrad=True)),
    ("Adam", dict(lr=0.02, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("AdamW", dict(lr=0.02)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=0.02, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.8)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.005, centered=True, momentum=0.7, weight_decay=0.1, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.2)),
    ("Adagrad", dict(lr=0.1, maximize=True, eps=1e-6)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, maximize=True)),
    ("NAdam", dict(lr=0.02)),
    ("NAdam", dict(lr=0.02, betas=(0.8, 0.99), weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.02, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.02)),
    ("RAdam", dict(lr=0.02, betas=(0.8, 0.9), weight_decay=0.1)),
    ("RAdam", dict(lr=0.02, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Adamax", dict(lr=0.02)),
    ("Adamax", dict(lr=0.02, betas=(0.8, 0.99), weight_decay=0.1, eps=1e-4)),
    ("Adamax", dict(lr=0.02, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))),
    ("Rprop", dict(lr=0.01, maximize=True)),
    ("ASGD", dict(lr=0.05)),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.6, t0=20, weight_decay=0.1)),
    ("ASGD", dict(lr=0.05, t0=5, maximize=True)),
]
NEW_IN_15 = ("NAdam", "RAdam", "Adamax", "Rprop", "ASGD")


def _case_id(case):
    name, kw = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
@pytest.mark.parametrize("grouped", [False, True], ids=["one-group", "two-groups"])
def test_trajectory_matches_torch(case, grouped):
    name, kw = case
    # maximize climbs -f, so that it descends f like the other cases instead of running away
    sign = -1.0 if kw.get("maximize") else 1.0
    tp, dp, _, _ = _run(name, kw, groups=TWO_GROUPS if grouped else None, sign=sign)
    _assert_same(tp, dp)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", *NEW_IN_15])
def test_float32_stays_float32_and_matches_torch(name):
    kw = {"lr": 0.01} if name != "SGD" else {"lr": 0.01, "momentum": 0.9}
    tp, dp, _, do = _run(name, kw, dtype=np.float32, steps=30)
    _assert_same(tp, dp, rtol=2e-5, atol=2e-6)
    for p in dp:
        assert p._data.dtype == np.float32
        for key, v in do.state[p].items():
            if key != "step":
                assert v._data.dtype == np.float32, f"state {key} was upcast to {v._data.dtype}"


@pytest.mark.parametrize("case", [CASES[2], CASES[7], CASES[10], CASES[15], CASES[17], CASES[20]]
                         + [c for c in CASES if c[0] in NEW_IN_15][1::3], ids=lambda c: _case_id(c))
def test_state_dict_layout_matches_torch(case):
    name, kw = case
    _, _, to, do = _run(name, kw, groups=TWO_GROUPS, steps=10)
    tsd, dsd = to.state_dict(), do.state_dict()
    assert [sorted(g) for g in dsd["param_groups"]] == [sorted(g) for g in tsd["param_groups"]]
    for dg, tg in zip(dsd["param_groups"], tsd["param_groups"]):
        assert dg == {k: (tuple(v) if isinstance(v, tuple) else v) for k, v in tg.items()}
    assert sorted(dsd["state"]) == sorted(tsd["state"])
    for idx, tstate in tsd["state"].items():
        dstate = dsd["state"][idx]
        assert sorted(dstate) == sorted(tstate), f"state keys of param {idx}"
        for key, tv in tstate.items():
            dv = dstate[key]
            assert isinstance(dv, deepbox.Tensor)
            assert tuple(dv.shape) == tuple(tv.shape), f"{idx}.{key}"
            assert dv.dtype.name == str(tv.dtype).replace("torch.", ""), f"{idx}.{key} dtype"
            np.testing.assert_allclose(dv._data, tv.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{idx}.{key}")


@pytest.mark.parametrize("case", [CASES[3], CASES[8], CASES[10], CASES[15], CASES[17], CASES[21]],
                         ids=lambda c: _case_id(c))
def test_resume_from_state_dict_continues_torch_trajectory(case):
    """Half the steps, state_dict(), a fresh optimiser on copies of the parameters, load, the other half."""
    name, kw = case
    sign = -1.0 if kw.get("maximize") else 1.0
    tp_full, _, _, _ = _run(name, kw, groups=TWO_GROUPS, sign=sign)
    _, dp_half, _, do_half = _run(name, kw, groups=TWO_GROUPS, steps=STEPS // 2, sign=sign)
    sd = do_half.state_dict()
    dp = [deepbox.tensor(p._data.copy(), requires_grad=True) for p in dp_half]
    fresh = getattr(dopt, name)([dict(g, params=[dp[i] for i in g["params"]]) for g in TWO_GROUPS], **kw)
    fresh.load_state_dict(sd)
    # the loaded state is a copy: stepping the fresh optimiser leaves the old one's state alone
    before = {k: {n: v._data.copy() for n, v in s.items()} for k, s in sd["state"].items()}
    _, a, c = _targets()
    for step in range(STEPS // 2, STEPS):
        for i, d in enumerate(dp):
            if i == len(dp) - 1 and step % 3 == 2:
                d.grad = None
                continue
            d.grad = deepbox.tensor(_grad(d._data, a[i], c[i], sign))
        fresh.step()
    _assert_same(tp_full, dp)
    for k, s in sd["state"].items():
        for n, v in s.items():
            np.testing.assert_array_equal(v._data, before[k][n])


def test_load_torch_state_dict_converted_to_deepbox():
    name, kw = "Adam", dict(lr=0.02, amsgrad=True)
    tp_full, _, _, _ = _run(name, kw)
    tp_half, _, to_half, _ = _run(name, kw, steps=STEPS // 2)
    tsd = to_half.state_dict()
    state = {k: {n: deepbox.from_numpy(v.numpy().copy()) for n, v in s.items()} for k, s in tsd["state"].items()}
    sd = {"state": state, "param_groups": tsd["param_groups"]}
    dp = [deepbox.tensor(p.detach().numpy().copy(), requires_grad=True) for p in tp_half]
    opt = dopt.Adam(dp, **kw)
    opt.load_state_dict(sd)
    _, a, c = _targets()
    for step in range(STEPS // 2, STEPS):
        for i, d in enumerate(dp):
            if i == len(dp) - 1 and step % 3 == 2:
                d.grad = None
                continue
            d.grad = deepbox.tensor(_grad(d._data, a[i], c[i], 1.0))
        opt.step()
    _assert_same(tp_full, dp)


# ---------------------------------------------------------------------------------------------- LBFGS
def _rosenbrock_np(x):
    f = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return f, g


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("history_size", [100, 3])
def test_lbfgs_rosenbrock_matches_torch(line_search_fn, history_size):
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.3])
    kw = dict(lr=1 if line_search_fn else 0.1, max_iter=10, history_size=history_size,
              line_search_fn=line_search_fn)
    tx = torch.tensor(x0.copy(), requires_grad=True)
    dx = deepbox.tensor(x0.copy(), requires_grad=True)
    topt, dopt_ = torch.optim.LBFGS([tx], **kw), dopt.LBFGS([dx], **kw)

    def tclosure():
        f, g = _rosenbrock_np(tx.detach().numpy())
        tx.grad = torch.tensor(g)
        return torch.tensor(f)

    def dclosure():
        f, g = _rosenbrock_np(dx._data)
        dx.grad = deepbox.tensor(g)
        return deepbox.tensor(f, dtype=deepbox.float64)

    losses_t, losses_d = [], []
    for _ in range(8):
        losses_t.append(float(topt.step(tclosure)))
        losses_d.append(float(dopt_.step(dclosure)))
        np.testing.assert_allclose(dx._data, tx.detach().numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(losses_d, losses_t, rtol=1e-8, atol=1e-12)
    tstate, dstate = topt.state[tx], dopt_.state[dx]
    assert dstate["func_evals"] == tstate["func_evals"] and dstate["n_iter"] == tstate["n_iter"]
    assert len(dstate["old_dirs"]) == len(tstate["old_dirs"])
    if line_search_fn:
        assert losses_d[-1] < 1e-6  # strong Wolfe reaches the minimum (1, ..., 1)


def test_lbfgs_with_autograd_closure():
    """The usual closure: zero_grad, a loss built from deepbox ops, backward."""
    x0 = np.array([-1.2, 1.0, 0.3])
    tx = torch.tensor(x0.copy(), requires_grad=True)
    dx = deepbox.tensor(x0.copy(), requires_grad=True)
    topt = torch.optim.LBFGS([tx], line_search_fn="strong_wolfe", max_iter=15)
    dopt_ = dopt.LBFGS([dx], line_search_fn="strong_wolfe", max_iter=15)

    def make_closure(x, opt):
        def closure():
            opt.zero_grad()
            loss = (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
            loss.backward()
            return loss
        return closure

    for _ in range(3):
        lt = topt.step(make_closure(tx, topt))
        ld = dopt_.step(make_closure(dx, dopt_))
        assert isinstance(ld, deepbox.Tensor)
        np.testing.assert_allclose(ld.item(), lt.item(), rtol=1e-8)
    np.testing.assert_allclose(dx._data, tx.detach().numpy(), rtol=1e-7, atol=1e-9)


def test_lbfgs_rejects_groups_and_needs_closure():
    a, b = deepbox.zeros(2, requires_grad=True), deepbox.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="parameter groups"):
        dopt.LBFGS([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ValueError, match="strong_wolfe"):
        dopt.LBFGS([a], line_search_fn="armijo")
    with pytest.raises(RuntimeError, match="closure"):
        dopt.LBFGS([a]).step()


# ---------------------------------------------------------------------------------------------- the base class
@pytest.mark.parametrize("cls, kwargs, message", [
    (dopt.SGD, dict(lr=-1), "Invalid learning rate: -1"),
    (dopt.SGD, dict(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (dopt.SGD, dict(lr=0.1, weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
    (dopt.SGD, dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (dopt.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "zero dampening"),
    (dopt.Adam, dict(lr=-0.5), "Invalid learning rate: -0.5"),
    (dopt.Adam, dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    (dopt.Adam, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (dopt.Adam, dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dopt.AdamW, dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (dopt.RMSprop, dict(alpha=-0.9), "Invalid alpha value: -0.9"),
    (dopt.RMSprop, dict(momentum=-1), "Invalid momentum value: -1"),
    (dopt.Adagrad, dict(lr_decay=-1), "Invalid lr_decay value: -1"),
    (dopt.Adagrad, dict(initial_accumulator_value=-2), "Invalid initial_accumulator_value value: -2"),
    (dopt.Adadelta, dict(rho=1.5), "Invalid rho value: 1.5"),
    (dopt.LBFGS, dict(lr=-1), "Invalid learning rate: -1"),
])
def test_argument_checks_name_the_bad_value(cls, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cls([deepbox.zeros(2, requires_grad=True)], **kwargs)
    # PyTorch says the same
    tname = {"SGD": "SGD"}.get(cls.__name__, cls.__name__)
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(torch.optim, tname)([torch.zeros(2, requires_grad=True)], **kwargs)


def test_accepts_pytorch_only_flags():
    p = [deepbox.zeros(2, requires_grad=True)]
    dopt.SGD(p, lr=0.1, foreach=True, differentiable=False, fused=None)
    dopt.Adam(p, foreach=False, capturable=True, fused=None, differentiable=False)
    dopt.AdamW(p, foreach=None, capturable=False, fused=False)
    dopt.RMSprop(p, foreach=True, capturable=False, differentiable=False)
    dopt.Adagrad(p, foreach=True, fused=None)
    dopt.Adadelta(p, foreach=True, capturable=False)


def test_construction_errors():
    p = deepbox.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        dopt.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        dopt.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        dopt.SGD([{"params": {p}}], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        dopt.SGD([p, 3.0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        dopt.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        dopt.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="didn't specify a value of required optimization parameter lr"):
        dopt.Optimizer([p], {"lr": dopt.required})


def test_add_param_group_defaults_and_duplicates():
    a, b, c = (deepbox.zeros(2, requires_grad=True) for _ in range(3))
    opt = dopt.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9
    assert opt.param_groups[1]["params"][0] is b
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [c, a]})
    assert len(opt.param_groups) == 2  # the refused group changed nothing
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([c])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        opt.add_param_group({"params": [c, c]})
    assert any("duplicate" in str(x.message) for x in w)


def test_named_parameters_give_param_names_like_torch():
    names = ["w", "b"]
    dps = [deepbox.zeros(2, requires_grad=True), deepbox.zeros(1, requires_grad=True)]
    tps = [torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)]
    d = dopt.Adam(list(zip(names, dps)))
    t = torch.optim.Adam(list(zip(names, tps)))
    assert d.state_dict()["param_groups"][0]["param_names"] == t.state_dict()["param_groups"][0]["param_names"]
    with pytest.raises(ValueError, match="with/without names"):
        d.add_param_group({"params": [deepbox.zeros(1, requires_grad=True)]})


def test_zero_grad():
    p = deepbox.zeros(3, requires_grad=True)
    opt = dopt.SGD([p], lr=0.1)
    p.grad = deepbox.ones(3)
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and not g._data.any()
    opt.zero_grad()
    assert p.grad is None


def test_step_returns_closure_loss_and_runs_hooks():
    p = deepbox.tensor([1.0, -2.0], requires_grad=True)
    opt = dopt.SGD([p], lr=0.1)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == 5.0
    np.testing.assert_allclose(p._data, [0.8, -1.6])
    assert calls == ["pre", "post"]
    h1.remove()
    opt.step(closure)
    assert calls == ["pre", "post", "post"]


def test_step_bumps_version_so_stale_graphs_refuse_backward():
    """An optimiser step changes parameters in place, so a graph that saved them must not backpropagate."""
    p = deepbox.tensor([1.0, 2.0], requires_grad=True)
    opt = dopt.SGD([p], lr=0.1)
    loss = (p * p).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError):
        loss.backward()


def test_load_state_dict_errors_name_the_mismatch_and_change_nothing():
    a, b = deepbox.zeros(2, requires_grad=True), deepbox.zeros(3, requires_grad=True)
    opt = dopt.Adam([a, b], lr=0.1)
    a.grad, b.grad = deepbox.ones(2), deepbox.ones(3)
    opt.step()
    sd = opt.state_dict()
    other = dopt.Adam([{"params": [a]}, {"params": [b]}], lr=0.5)
    with pytest.raises(ValueError, match="different number of parameter groups: 1 saved, 2 in this optimizer"):
        other.load_state_dict(sd)
    small = dopt.Adam([a], lr=0.5)
    with pytest.raises(ValueError, match="group 0 has 2 saved parameters, 1 here"):
        small.load_state_dict(sd)
    swapped = dopt.Adam([b, a], lr=0.5)
    msg = r"parameter 0 has 'exp_avg' of shape \(2,\), but the parameter has shape \(3,\)"
    with pytest.raises(ValueError, match=msg):
        swapped.load_state_dict(sd)
    assert swapped.param_groups[0]["lr"] == 0.5 and len(swapped.state) == 0
    with pytest.raises(ValueError, match="keys 'state' and 'param_groups'"):
        swapped.load_state_dict({"state": {}})


def test_adagrad_state_exists_before_the_first_step_like_torch():
    d = dopt.Adagrad([deepbox.zeros(2, requires_grad=True)], initial_accumulator_value=0.5)
    t = torch.optim.Adagrad([torch.zeros(2, requires_grad=True)], initial_accumulator_value=0.5)
    assert sorted(d.state_dict()["state"][0]) == sorted(t.state_dict()["state"][0])
    np.testing.assert_array_equal(d.state_dict()["state"][0]["sum"]._data, [0.5, 0.5])


def test_tensor_lr_is_accepted():
    p = deepbox.tensor([1.0], requires_grad=True)
    opt = dopt.SGD([p], lr=deepbox.tensor(0.5))
    p.grad = deepbox.tensor([2.0])
    opt.step()
    np.testing.assert_allclose(p._data, [0.0])


def test_repr_lists_groups():
    opt = dopt.SGD([deepbox.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    r = repr(opt)
    assert r.startswith("SGD (") and "Parameter Group 0" in r and "momentum: 0.9" in r


# ---------------------------------------------------------------------------------------------- Adam's flat path
ADAM_CASES = [c for c in CASES if c[0] in ("Adam", "AdamW")]


@pytest.mark.parametrize("flat_min", [1, 10**9], ids=["flat", "per-parameter"])
@pytest.mark.parametrize("case", ADAM_CASES, ids=[_case_id(c) for c in ADAM_CASES])
def test_adam_both_update_paths_match_torch(monkeypatch, case, flat_min):
    """Adam updates groups of many small parameters as one flat array; both paths must equal torch."""
    monkeypatch.setattr(dopt.Adam, "_flat_min_params", flat_min)
    name, kw = case
    sign = -1.0 if kw.get("maximize") else 1.0
    tp, dp, to, do = _run(name, kw, groups=TWO_GROUPS, sign=sign)
    _assert_same(tp, dp)
    for p in dp:  # the state tensors are still one per parameter, of its shape
        assert tuple(do.state[p]["exp_avg"].shape) == tuple(p.shape)


def test_adam_many_parameters_with_missing_grads_and_resume():
    """20 parameters, a changing subset without gradient (flat arrays rebuilt, unequal steps), a reload."""
    rng = np.random.default_rng(5)
    shapes = [tuple(rng.integers(1, 5, size=rng.integers(1, 3))) for _ in range(20)]
    x0 = [rng.standard_normal(s) for s in shapes]
    tp = [torch.tensor(x.copy(), requires_grad=True) for x in x0]
    dp = [deepbox.tensor(x.copy(), requires_grad=True) for x in x0]
    kw = dict(lr=0.05, amsgrad=True, weight_decay=0.01)
    topt, dopt_ = torch.optim.AdamW(tp, **kw), dopt.AdamW(dp, **kw)
    for step in range(40):
        skip = set(rng.choice(20, size=3, replace=False)) if step % 4 == 1 else set()
        for i, (t, d) in enumerate(zip(tp, dp)):
            if i in skip:
                t.grad, d.grad = None, None
                continue
            g = np.cos(3 * d._data) + d._data
            t.grad = torch.tensor(np.cos(3 * t.detach().numpy()) + t.detach().numpy())
            d.grad = deepbox.tensor(g)
        topt.step()
        dopt_.step()
        if step == 20:
            sd = dopt_.state_dict()
            dopt_ = dopt.AdamW(dp, **kw)
            dopt_.load_state_dict(sd)
    _assert_same(tp, dp)
    assert dopt_.state[dp[0]]["exp_avg"]._data.base is dopt_._flat[0].m  # the flat path ran
    tsd, dsd = topt.state_dict(), dopt_.state_dict()
    for idx, tstate in tsd["state"].items():
        for key, tv in tstate.items():
            np.testing.assert_allclose(dsd["state"][idx][key]._data, tv.numpy(), rtol=1e-10, atol=1e-12)


def test_pytorch_style_custom_optimizer_subclass():
    """A user optimiser written for torch.optim.Optimizer runs on deepbox's base class unchanged."""

    class SignSGD(dopt.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        @deepbox.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    self.state[p]["n"] = self.state[p].get("n", 0) + 1
                    p.add_(p.grad.sign(), alpha=-group["lr"])

    p = deepbox.tensor([1.0, -2.0], requires_grad=True)
    opt = SignSGD([p])
    sched = dopt.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
        sched.step()
    np.testing.assert_allclose(p._data, [1.0 - 0.175, -2.0 + 0.175])
    assert opt.state_dict()["state"] == {0: {"n": 3}}


@pytest.mark.parametrize("name,key,default", [("SGD", "nesterov", False), ("RMSprop", "centered", False),
                                              ("Adadelta", "maximize", False), ("Adagrad", "maximize", False),
                                              ("Adam", "amsgrad", False), ("AdamW", "amsgrad", False)])
def test_state_dict_missing_an_older_option_loads_with_its_default(name, key, default):
    p = deepbox.zeros(2, requires_grad=True)
    opt = getattr(deepbox.optim, name)([p], lr=0.1)
    sd = opt.state_dict()
    del sd["param_groups"][0][key]
    opt.load_state_dict(sd)
    assert opt.param_groups[0][key] == default
    if name == "AdamW":
        assert opt.param_groups[0]["decoupled_weight_decay"] is True


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize("name,kw", [("Adam", {}), ("Adam", {"amsgrad": True}), ("AdamW", {"weight_decay": 0.1}),
                                     ("Adam", {"weight_decay": 0.01, "maximize": True})])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_large_parameters_on_both_paths_follow_torch(compiled, name, kw, dtype):
    """Parameters of >= 16k elements take Adam's compiled one-pass update (or, switched off, NumPy's)."""
    from deepbox import kernels

    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((150, 120)).astype(dtype)       # 18,000 elements, in the flat group
    big = rng.standard_normal((200, 100)).astype(dtype)      # and a second one beside it
    tps = [torch.tensor(a, requires_grad=True) for a in (w0, big)]
    dps = [deepbox.tensor(a, requires_grad=True) for a in (w0, big)]
    topt = getattr(torch.optim, name)(tps, lr=0.01, **kw)
    with kernels.switch.compiled(compiled):
        dopt_ = getattr(dopt, name)(dps, lr=0.01, **kw)
        for _ in range(5):
            grads = [rng.standard_normal(a.shape).astype(dtype) for a in (w0, big)]
            for t, d, g in zip(tps, dps, grads):
                t.grad = torch.tensor(g)
                d.grad = deepbox.tensor(g)
            topt.step()
            dopt_.step()
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for t, d in zip(tps, dps):
        np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), **tol)


# ------------------------------------------------------------------------- invalid options (issue 14, item 9)
_INF, _NAN = float("inf"), float("nan")
_BAD_OPTIONS = [
    ("SGD", {"lr": -1}), ("SGD", {"lr": 0.1, "momentum": -1}), ("SGD", {"lr": 0.1, "weight_decay": -1}),
    ("SGD", {"lr": 0.1, "nesterov": True}), ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5, "nesterov": True}),
    ("Adam", {"lr": -1}), ("Adam", {"lr": _NAN}), ("Adam", {"eps": -1}), ("Adam", {"betas": (1.0, 0.9)}),
    ("Adam", {"betas": (0.9, -0.1)}), ("Adam", {"weight_decay": -1}), ("Adam", {"weight_decay": _NAN}),
    ("AdamW", {"lr": -1}), ("AdamW", {"betas": (1.0, 0.9)}), ("AdamW", {"weight_decay": -1}),
    ("RMSprop", {"lr": -1}), ("RMSprop", {"momentum": -1}), ("RMSprop", {"momentum": _NAN}), ("RMSprop", {"alpha": -1}),
    ("RMSprop", {"weight_decay": -1}), ("Adagrad", {"lr": -1}), ("Adagrad", {"lr_decay": -1}),
    ("Adagrad", {"initial_accumulator_value": -1}), ("Adadelta", {"rho": 1.5}), ("Adadelta", {"eps": -1}),
]


@pytest.mark.parametrize("name, kwargs", _BAD_OPTIONS, ids=lambda v: str(v))
def test_invalid_options_raise_where_pytorch_raises(name, kwargs):
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))], **kwargs)
    with pytest.raises(ValueError):
        getattr(deepbox.optim, name)([deepbox.nn.Parameter(deepbox.ones(2))], **kwargs)


@pytest.mark.parametrize("name, option", [("SGD", "lr"), ("SGD", "momentum"), ("SGD", "weight_decay"), ("Adam", "lr"),
                                          ("Adam", "weight_decay"), ("AdamW", "lr"), ("RMSprop", "momentum"),
                                          ("Adagrad", "weight_decay"), ("Adadelta", "lr")])
@pytest.mark.parametrize("value", [_INF, -_INF])
def test_infinite_options_are_refused_before_the_first_step(name, option, value):
    # PyTorch accepts these and turns the weights to NaN at the first step; deepbox refuses them at once
    kwargs = {"lr": 0.1, option: value}
    with pytest.raises(ValueError, match="Invalid"):
        getattr(deepbox.optim, name)([deepbox.nn.Parameter(deepbox.ones(2))], **kwargs)
    opt = getattr(deepbox.optim, name)([deepbox.nn.Parameter(deepbox.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="Invalid"):
        opt.add_param_group({"params": [deepbox.nn.Parameter(deepbox.ones(1))], option: value})
