"""The checks of an optimiser written as ``update(w, dw, state, **hyper)`` that changes ``w`` in place.

The student's update runs on a few parameters of an elementwise quadratic (gradient ``a * (w - w*)``)
for many steps; its trajectory is compared step by step with deepbox's optimiser (float64), and
when it goes wrong it is compared with the trajectories of the common mistakes, to name one.
"""
from __future__ import annotations

import numpy as np

from deepbox.exercises.checking import REF_TOL, CheckFailed, rel_error

__all__ = ["Problem", "check_optimizer", "optimizer_swap"]

STEPS = 15


class Problem:
    """A few parameters and their quadratic: the same problem for the student, deepbox and the mistakes."""

    def __init__(self, seed: int):
        r = np.random.default_rng(seed)
        self.shapes = [(3, 4), (5,)]
        self.start = [r.standard_normal(s) for s in self.shapes]
        self.curv = [0.5 + 2 * r.random(s) for s in self.shapes]
        self.target = [r.standard_normal(s) for s in self.shapes]

    def grad(self, k, w):
        return self.curv[k] * (w - self.target[k])


def _student_trajectory(ck, fname, problem, hyper):
    ws = [w.copy() for w in problem.start]
    states = [{} for _ in ws]
    out = []
    for step in range(STEPS):
        for k, w in enumerate(ws):
            g = problem.grad(k, w)
            g_in = g.copy()
            before = w.copy()
            res = ck.call(fname, w, g_in, states[k], **hyper)
            if not np.array_equal(g_in, g, equal_nan=True):
                raise CheckFailed(f"`{fname}` changed the gradient dw in place (step {step + 1})",
                                  hint="dw is the model's p.grad: compute a new array (g = dw + weight_decay * w) "
                                       "instead of dw += weight_decay * w")
            unchanged = np.array_equal(w, before, equal_nan=True)
            if unchanged and isinstance(res, np.ndarray) and not np.array_equal(res, before):
                raise CheckFailed(f"`{fname}` returned a new array but left w unchanged (step {step + 1})",
                                  hint="update w in place (w -= lr * ...): the optimiser's parameters are the model's "
                                       "arrays; w = w - ... only rebinds the local name")
        out.append([w.copy() for w in ws])
    return out


def _reference_trajectory(problem, make_optimizer):
    import deepbox

    params = [deepbox.tensor(w.copy(), requires_grad=True) for w in problem.start]
    opt = make_optimizer(params)
    out = []
    for _ in range(STEPS):
        for k, p in enumerate(params):
            p.grad = deepbox.tensor(problem.grad(k, p.detach().numpy()))
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


def _variant_trajectory(problem, update, hyper):
    ws = [w.copy() for w in problem.start]
    states = [{} for _ in ws]
    out = []
    with np.errstate(all="ignore"):
        for _ in range(STEPS):
            for k, w in enumerate(ws):
                update(w, problem.grad(k, w), states[k], **hyper)
            out.append([w.copy() for w in ws])
    return out


def _matches(a, b) -> bool:
    return all(rel_error(x, y)[0] < 1e-9 for sa, sb in zip(a, b) for x, y in zip(sa, sb))


def check_optimizer(ck, fname: str, ref_name: str, cases: list, variants: list, hidden: list = ()) -> None:
    """``cases``: (label, hyper, make_optimizer); ``variants``: (hint, update(w, g, state, **hyper)) mistakes."""
    problem = Problem(0)
    with ck.check("shapes and in-place update"):
        label, hyper, _ = cases[0]
        traj = _student_trajectory(ck, fname, problem, hyper)
        for k, s in enumerate(problem.shapes):
            ck.expect_shape(f"w[{k}]", traj[-1][k], s)
            if np.array_equal(traj[0][k], problem.start[k]):
                raise CheckFailed(f"`{fname}` did not change w[{k}]",
                                  hint="update w in place (w -= lr * ...): w = w - ... only rebinds the local name")

    worst = 0.0
    for label, hyper, make in list(cases) + [(lb, h, m) for lb, h, m in hidden]:
        is_hidden = (label, hyper, make) not in cases
        where = " (a hidden case)" if is_hidden else f" (case '{label}')"
        mine = _student_trajectory(ck, fname, problem, hyper)
        ref = _reference_trajectory(problem, make)
        for step, (sm, sr) in enumerate(zip(mine, ref)):
            for k, (a, b) in enumerate(zip(sm, sr)):
                err, idx = rel_error(a, b)
                worst = max(worst, err)
                if err <= REF_TOL:
                    continue
                hint = None
                for h, update in variants:
                    try:
                        if _matches(mine, _variant_trajectory(problem, update, hyper)):
                            hint = h
                            break
                    except Exception:
                        continue
                if hint is None and not np.all(np.isfinite(a)):
                    hint = "NaN or inf in w: a division by zero? (the first step is t = 1, and eps keeps the "\
                           "denominator positive)"
                details = [] if is_hidden else [
                    f"worst element w[{k}][{', '.join(map(str, idx))}] = {a[idx]:.6g}, expected {b[idx]:.6g} "
                    f"(relative error {err:.1e})"]
                title = "hidden cases" if is_hidden else f"trajectory against {ref_name}"
                raise CheckFailed(f"{title}: step {step + 1} of {STEPS}{where} is wrong", details, hint)
    ck.passed(f"trajectory against {ref_name}: {len(cases)} cases x {STEPS} steps; worst relative error {worst:.1e}")
    if hidden:
        ck.passed(f"hidden cases: {len(hidden)}")


def optimizer_swap(cls, update, hyper_of_group):
    """Patch ``cls.step`` so that the optimiser calls the student's update on each parameter's array."""

    def step(self, closure=None):
        loss = None
        if closure is not None:
            import deepbox

            with deepbox.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hyper = hyper_of_group(group)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                update(p.detach().numpy(), p.grad.numpy(), state, **hyper)
                p._version[0] += 1  # the in-place change, as deepbox's own optimisers record it
        return loss

    return [(cls, "step", step)]
