"""Exercise mode: every reference solution passes, every untouched template fails part by part with
"not implemented yet", and deliberately wrong solutions fail with the hint that names their mistake.

A wrong solution is the reference solution with the last occurrence of a snippet replaced (``WRONG`` below); the test
first asserts that the snippet is in the solution, so the list cannot silently go stale.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

import deepbox
import deepbox.exercises as ex
import deepbox.nn.functional as F
from deepbox.cli.main import main

NAMES = ex._available()

# (exercise, snippet of the solution, its replacement, text the report must contain)
WRONG = [
    # linear
    ("linear", "out = x @ w.T + b", "out = x @ w + b", "transposed weight"),
    ("linear", "out = x @ w.T + b", "out = x @ w.T", "the bias is missing"),
    ("linear", "dw = dout.T @ x", "dw = x.T @ dout", "dw is the transpose"),
    ("linear", "db = dout.sum(axis=0)", "db = dout.mean(axis=0)", "sum dout over the batch axis"),
    ("linear", "db = dout.sum(axis=0)", "db = dout.sum(axis=1)", "db (case 'hand-sized: N=2, 3 -> 4') has shape (2,)"),
    ("linear", "dx = dout @ w", "dx = dout @ w.T", "a weight stored as (out_features, in_features) is used as w.T"),
    ("linear", "dw = dout.T @ x", "dw = dout.T @ x * 2", "2 times the expected value"),
    # relu
    ("relu", "out = np.maximum(x, 0)", "x[x < 0] = 0\n    out = x", "changed its input `x` in place"),
    ("relu", "dx = dout * (x > 0)", "dout[x <= 0] = 0\n    dx = dout", "changed the incoming gradient in place"),
    ("relu", "dx = dout * (x > 0)", "dx = dout * (x >= 0)", "at x == 0 the gradient is 0"),
    ("relu", "dx = dout * (x > 0)", "dx = (x > 0).astype(float)", "multiply the local derivative [x > 0] by dout"),
    # sigmoid
    ("sigmoid", "e = np.exp(-np.abs(x))\n    out = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))",
     "out = 1.0 / (1.0 + np.exp(-x))", "exp overflowed"),
    ("sigmoid", "dx = dout * out * (1.0 - out)", "dx = dout * out", "missing the factor (1 - s)"),
    ("sigmoid", "dx = dout * out * (1.0 - out)", "dx = out * (1.0 - out)", "multiply s * (1 - s) by dout"),
    # softmax_cross_entropy
    ("softmax_cross_entropy", "loss = -log_probs[np.arange(n), targets].mean()",
     "loss = -log_probs[np.arange(n), targets].sum()", "missing 1/N"),
    ("softmax_cross_entropy", "dlogits *= dloss / n", "dlogits *= dloss", "missing 1/N in the gradient"),
    ("softmax_cross_entropy", "dlogits *= dloss / n", "dlogits /= n", "multiply by dloss"),
    ("softmax_cross_entropy", "shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits",
     "NaN or inf"),
    ("softmax_cross_entropy", "log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))",
     "log_probs = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))", "not over the batch (axis 0)"),
    # conv2d
    ("conv2d", "out[:, :, i, j] = patch @ w2.T + b",
     "out[:, :, i, j] = patch @ w[:, :, ::-1, ::-1].reshape(f, -1).T + b", "the kernel is flipped"),
    ("conv2d", "dxp[:, :, rows, cols] += (g @ w2)", "dxp[:, :, rows, cols] = (g @ w2)",
     "overlapping windows: add (+=)"),
    ("conv2d", "dw2 += g.T @ xp", "dw2 = g.T @ xp", "dw must add up (+=)"),
    ("conv2d", "db = dout.sum(axis=(0, 2, 3))", "db = dout.sum(axis=0)",
     "db sums dout over the batch and both spatial"),
    ("conv2d", "dx = dxp[:, :, padding:padding + h, padding:padding + wd]", "dx = dxp", "cut the padding off"),
    ("conv2d", "cols = cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * ho * wo, c * kh * kw)",
     "cols = cols.reshape(n * ho * wo, c * kh * kw)", "one row per output position in (n, i, j) order"),
    ("conv2d", "xp[:, :, p:p + stride * ho:stride, q:q + stride * wo:stride] += c6[:, :, p, q]",
     "xp[:, :, p:p + stride * ho:stride, q:q + stride * wo:stride] = c6[:, :, p, q]", "col2im adds (+=)"),
    # maxpool2d
    ("maxpool2d", "out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))",
     "out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].mean(axis=(2, 3))", "that is average pooling"),
    ("maxpool2d", "first = window.argmax(axis=2)                    # the first maximum, in row-major order\n"
                  "            dx[rows, cols, i * s + first // k, j * s + first % k] += dout[:, :, i, j]",
     "win = x[:, :, i * s:i * s + k, j * s:j * s + k]\n"
     "            dx[:, :, i * s:i * s + k, j * s:j * s + k] += (win == win.max(axis=(2, 3), keepdims=True)) * "
     "dout[:, :, i, j][:, :, None, None]", "the first maximum only"),
    ("maxpool2d", "dx[rows, cols, i * s + first // k, j * s + first % k] += dout[:, :, i, j]",
     "dx[rows, cols, i * s + first // k, j * s + first % k] = dout[:, :, i, j]", "gets the sum of their gradients"),
    ("maxpool2d", "s = stride or k", "s = stride or 1", "the stride defaults to kernel_size"),
    # batchnorm
    ("batchnorm", "        running_mean *= 1 - momentum\n        running_mean += momentum * mean\n"
                  "        running_var *= 1 - momentum\n        running_var += momentum * var * count / (count - 1)",
     "        pass", "forgotten running statistics"),
    ("batchnorm", "running_mean *= 1 - momentum\n        running_mean += momentum * mean",
     "running_mean = (1 - momentum) * running_mean + momentum * mean", "not by rebinding the name"),
    ("batchnorm", "running_var += momentum * var * count / (count - 1)", "running_var += momentum * var",
     "the running variance uses the unbiased batch variance"),
    ("batchnorm", "running_mean *= 1 - momentum\n        running_mean += momentum * mean",
     "running_mean *= momentum\n        running_mean += (1 - momentum) * mean", "PyTorch's momentum weighs the new"),
    ("batchnorm", "var = x.var(axis=axes)", "var = x.var(axis=axes, ddof=1)",
     "normalise with the biased batch variance"),
    ("batchnorm", "mean, var = running_mean, running_var", "mean, var = x.mean(axis=axes), x.var(axis=axes)",
     "in eval mode, normalise with running_mean"),
    ("batchnorm", "dgamma = (dout * xhat).sum(axis=axes)", "dgamma = (dout * xhat).sum(axis=0)",
     "dgamma and dbeta are per channel"),
    ("batchnorm", "    dx = (inv_std.reshape(shape) / m) * (m * dxhat - dxhat.sum(axis=axes).reshape(shape)\n"
                  "                                         - xhat * (dxhat * xhat).sum(axis=axes).reshape(shape))",
     "    dx = dxhat * inv_std.reshape(shape)", "dx has three terms"),
    # dropout
    ("dropout", "scale = (rng.random(x.shape) >= p) / (1.0 - p)", "scale = (rng.random(x.shape) >= p) * 1.0",
     "inverted dropout: scale the kept elements"),
    ("dropout", "(rng.random(x.shape) >= p)", "(rng.random(x.shape) < p)", "p is the probability of dropping"),
    ("dropout", "rng.random(x.shape)", "np.random.random(x.shape)", "draw the mask with the rng argument"),
    ("dropout", "if not training or p == 0:", "if p == 0:", "dropout is the identity at test time"),
    ("dropout", "out = x * scale", "x *= scale\n    out = x", "changed its input `x` in place"),
    ("dropout", "    if p == 1:\n        return np.zeros_like(x), np.zeros_like(x)\n", "", "p = 1 drops everything"),
    # rnn_cell
    ("rnn_cell", "h_prev @ w_hh.T + b_hh", "h_prev @ w_hh + b_hh", "transposed weight: w_hh is (H, H)"),
    ("rnn_cell", "da = dh * (1.0 - h * h)", "da = dh * (1.0 - np.arctanh(h) ** 2)", "1 - h^2, with h the output"),
    ("rnn_cell", "da = dh * (1.0 - h * h)", "da = dh", "the chain rule goes through tanh"),
    ("rnn_cell", "db_hh = db_ih.copy()", "db_hh = np.zeros_like(db_ih)", "db_hh is all zeros"),
    # lstm_cell
    ("lstm_cell", "    g = np.tanh(a[:, 2 * hid:3 * hid])\n    o = _sigmoid(a[:, 3 * hid:])",
     "    g = np.tanh(a[:, 3 * hid:])\n    o = _sigmoid(a[:, 2 * hid:3 * hid])", "gate order"),
    ("lstm_cell", "dc_total = dc + dh * o * (1.0 - tc * tc)", "dc_total = dc", "c reaches the loss through h as well"),
    ("lstm_cell", "dc_prev = dc_total * f", "dc_prev = dc * f", "c reaches the loss through h as well"),
    ("lstm_cell", "dh_prev = da @ w_hh", "dh_prev = da @ w_hh.T", "transposed weight?"),
    # attention
    ("attention", "        scores = np.where(mask, scores, -np.inf)          # before the softmax: "
                  "masked keys get weight 0", "        pass", "the mask is not applied"),
    ("attention", "    if mask is not None:\n        scores = np.where(mask, scores, -np.inf)          "
                  "# before the softmax: masked keys get weight 0\n"
                  "    scores = scores - scores.max(axis=-1, keepdims=True)\n"
                  "    weights = np.exp(scores)\n"
                  "    weights /= weights.sum(axis=-1, keepdims=True)        # softmax over the keys (the last axis)\n",
     "    scores = scores - scores.max(axis=-1, keepdims=True)\n    weights = np.exp(scores)\n"
     "    weights /= weights.sum(axis=-1, keepdims=True)\n    if mask is not None:\n        weights = weights * mask\n",
     "the mask is applied after the softmax"),
    ("attention", "scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])", "scores = q @ k.transpose(0, 2, 1)",
     "missing the scale 1/sqrt(D)"),
    ("attention", "scores = scores - scores.max(axis=-1, keepdims=True)\n    weights = np.exp(scores)\n"
                  "    weights /= weights.sum(axis=-1, keepdims=True)",
     "scores = scores - scores.max(axis=-2, keepdims=True)\n    weights = np.exp(scores)\n"
     "    weights /= weights.sum(axis=-2, keepdims=True)", "softmax over the wrong axis"),
    ("attention", "np.where(mask, scores, -np.inf)", "np.where(~mask, scores, -np.inf)", "the mask is inverted"),
    ("attention", "np.where(mask, scores, -np.inf)", "np.where(mask, scores, 0.0)", "masked scores must be -inf"),
    # sgd_momentum
    ("sgd_momentum", "g = dw + weight_decay * w", "g = dw", "weight decay adds weight_decay * w"),
    ("sgd_momentum", 'state["velocity"] = momentum * state["velocity"] + g', 'state["velocity"] = g.copy()',
     "keep the velocity in state between calls"),
    ("sgd_momentum", 'state["velocity"] = momentum * state["velocity"] + g',
     'state["velocity"] = momentum * state["velocity"] + (1 - momentum) * g', "no (1 - momentum) factor"),
    ("sgd_momentum", 'w -= lr * state["velocity"]', 'w = w - lr * state["velocity"]', "update w in place"),
    ("sgd_momentum", "g = dw + weight_decay * w", "dw += weight_decay * w\n    g = dw",
     "changed the gradient dw in place"),
    ("sgd_momentum", 'w -= lr * state["velocity"]', 'w += lr * state["velocity"]', "step against the gradient"),
    # adam
    ("adam", 'm_hat = state["m"] / (1 - beta1 ** t)\n    v_hat = state["v"] / (1 - beta2 ** t)',
     'm_hat = state["m"]\n    v_hat = state["v"]', "bias correction"),
    ("adam", "np.sqrt(v_hat) + eps", "np.sqrt(v_hat + eps)", "eps goes outside the square root"),
    ("adam", 'state["t"] += 1\n    t = state["t"]', 't = state["t"]\n    state["t"] += 1', "t is 1 at the first step"),
    ("adam", "g = dw + weight_decay * w", "w *= 1 - lr * weight_decay\n    g = dw", "Adam's weight_decay is L2"),
    ("adam", 'state["m"] = beta1 * state["m"] + (1 - beta1) * g', 'state["m"] = beta1 * state["m"] + g',
     "m is a running mean"),
    # gradcheck
    ("gradcheck", "        x[i] = old - h\n        fm = f(x)\n        x[i] = old\n"
                  "        grad[i] = (fp - fm) / (2 * h)",
     "        x[i] = old\n        fm = f(x)\n        grad[i] = (fp - fm) / h", "one-sided difference"),
    ("gradcheck", "grad[i] = (fp - fm) / (2 * h)", "grad[i] = (fp - fm) / h", "divide by 2h"),
    ("gradcheck", "        x[i] = old\n        grad[i]", "        grad[i]", "x[i] must be restored"),
    ("gradcheck", "np.maximum(np.abs(a) + np.abs(b), 1e-8)", "np.maximum(np.abs(a), 1e-8)", "divide by |a| + |b|"),
    ("gradcheck", "float(np.max(", "float(np.mean(", "not the mean"),
    ("gradcheck", "np.sum(f(z) * dout)", "np.sum(f(z))", "weigh each output by dout"),
    # knn
    ("knn", "dists = np.sqrt(np.maximum(sq, 0))", "dists = np.maximum(sq, 0)", "take the square root"),
    ("knn", "dists = np.sqrt(np.maximum(sq, 0))", "dists = np.sqrt(np.maximum(sq, 0)).T",
     "dists is (n_test, n_train)"),
    ("knn", "y_pred = counts.argmax(axis=1)", "y_pred = counts.shape[1] - 1 - counts[:, ::-1].argmax(axis=1)",
     "ties go to the smallest label"),
    ("knn", "[:, :k]", "[:, :1]", "all k nearest neighbours vote"),
    # linear_regression
    ("linear_regression", "grad = 2.0 / n * (X.T @ r)", "grad = 1.0 / n * (X.T @ r)", "brings a factor 2"),
    ("linear_regression", "loss = float(r @ r) / n", "loss = float(r @ r)", "divides by N"),
    ("linear_regression", "np.linalg.solve(X.T @ X, X.T @ y)", "np.linalg.solve(X.T @ X, y)",
     "shapes that do not fit"),
    ("linear_regression", "w = w - lr * grad", "w = w + lr * grad", "gradient descent against optim.SGD"),
]


def _write(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes(name):
    e = ex.get(name)
    report = ex.check(name, e.solution_path, verbose=False)
    assert report.passed, report.text
    assert "FAIL" not in report.text and "hidden cases" in report.text or name in ("gradcheck",)


@pytest.mark.parametrize("name", NAMES)
def test_untouched_template_fails_with_not_implemented_per_part(name, tmp_path):
    path = ex.start(name, tmp_path)
    report = ex.check(name, path, verbose=False)
    assert not report.passed
    for part in report.parts:
        assert part.not_implemented, report.text
        assert "not implemented yet" in part.failure
    assert report.text.count("not implemented yet") >= len(ex.get(name).parts)


@pytest.mark.parametrize("name,old,new,expected", WRONG, ids=[f"{w[0]}-{i}" for i, w in enumerate(WRONG)])
def test_wrong_solution_fails_with_its_hint(name, old, new, expected, tmp_path):
    src = ex.get(name).solution_source
    assert old in src, f"the snippet is no longer in {name}'s solution: {old!r}"
    head, _, tail = src.rpartition(old)  # the code, not the docstring that may quote it
    report = ex.check(name, _write(tmp_path, name, head + new + tail), verbose=False)
    assert not report.passed, report.text
    assert expected in report.text, report.text


def test_every_exercise_has_a_statement_naming_its_functions_and_the_check_command():
    for name in NAMES:
        e = ex.get(name)
        assert f"deepbox exercise check {name}" in e.statement
        for part in e.parts:
            for fn in part.functions:
                assert f"def {fn}(" in e.template_source and fn in e.statement, (name, fn)
    assert set(NAMES) == set(ex.NAMES)  # all sixteen are there


def test_every_exercise_has_wrong_solutions():
    covered = {w[0] for w in WRONG}
    assert set(NAMES) <= covered, f"exercises without a wrong solution in the tests: {set(NAMES) - covered}"


def test_failure_names_the_worst_element_and_relative_error(tmp_path):
    src = ex.get("linear").solution_source.replace("dw = dout.T @ x", "dw = dout.T @ x\n    dw[0, 0] += 1")
    text = ex.check("linear", _write(tmp_path, "linear", src), verbose=False).text
    assert "FAIL  gradients against F.linear: dw (case 'hand-sized: N=2, 3 -> 4') is wrong" in text
    assert "worst element dw[0, 0]" in text and "relative error" in text and "1 of 12 elements differ" in text


def test_student_exception_shows_the_students_traceback(tmp_path):
    src = ex.get("relu").solution_source.replace("cache = x\n", "cache = x\n    helper_that_does_not_exist()\n")
    path = _write(tmp_path, "relu", src)
    text = ex.check("relu", path, verbose=False).text
    assert "NameError" in text and f'File "{path}"' in text and "helper_that_does_not_exist()" in text
    assert "deepbox/exercises" not in text.split("your traceback:")[1]


def test_file_that_does_not_load_is_reported(tmp_path):
    report = ex.check("relu", _write(tmp_path, "relu", "def relu_forward(x):\n  return (\n"), verbose=False)
    assert not report.passed and "could not be loaded: SyntaxError" in report.text


def test_use_swaps_the_students_op_in_and_restores_it(tmp_path):
    path = _write(tmp_path, "linear", ex.get("linear").solution_source)
    original = F.linear
    x = deepbox.randn(4, 3, requires_grad=True)
    lin = deepbox.nn.Linear(3, 2)
    expected = lin(x)
    with ex.use("linear", path) as student:
        assert F.linear is not original
        y = lin(x)
        assert "Student" in type(y.grad_fn).__name__
        y.sum().backward()
        assert hasattr(student, "linear_forward")
    assert F.linear is original
    np.testing.assert_allclose(y.detach().numpy(), expected.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), np.ones((4, 2), np.float32) @ lin.weight.detach().numpy(), rtol=1e-6)


def test_use_restores_after_an_error(tmp_path):
    path = _write(tmp_path, "relu", ex.get("relu").solution_source)
    original, forward = F.relu, deepbox.nn.ReLU.forward
    with pytest.raises(RuntimeError, match="boom"), ex.use("relu", path):
        raise RuntimeError("boom")
    assert F.relu is original and deepbox.nn.ReLU.forward is forward


def test_unknown_exercise_names_the_exercises():
    with pytest.raises(ValueError, match="no exercise called 'nope'; the exercises are: .*linear"):
        ex.get("nope")


def _partial_conv2d(tmp_path):
    """conv2d with part 1 (loops) solved and part 2 (im2col) still the template's."""
    sol = ex.get("conv2d").solution_source
    tpl = ex.get("conv2d").template_source
    cut = "# ---------------------------------------------------------------------------- part 2: im2col"
    return _write(tmp_path, "conv2d", sol[:sol.index(cut)] + tpl[tpl.index(cut):])


def test_parts_are_checked_separately_and_use_picks_the_implemented_one(tmp_path):
    path = _partial_conv2d(tmp_path)
    report = ex.check("conv2d", path, verbose=False)
    loops, im2col = report.parts
    assert loops.passed and im2col.not_implemented and not report.passed
    assert "1 of 2 parts pass (1 not implemented yet)" in report.text
    x = deepbox.randn(2, 1, 6, 6)
    conv = deepbox.nn.Conv2d(1, 3, 3, padding=1, stride=2)
    expected = conv(x).detach().numpy()
    with ex.use("conv2d", path):
        y = conv(x)
        assert type(y.grad_fn).__name__ == "Student_conv2d_naive_forward"
        y.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert conv.weight.grad.shape == (3, 1, 3, 3)


def test_use_lstm_cell_runs_nn_lstm_step_by_step_with_the_same_result(tmp_path):
    path = _write(tmp_path, "lstm_cell", ex.get("lstm_cell").solution_source)
    lstm = deepbox.nn.LSTM(4, 5, num_layers=2, batch_first=True)
    x = deepbox.randn(3, 6, 4)
    out, (h, c) = lstm(x)
    with ex.use("lstm_cell", path):
        out2, (h2, c2) = lstm(x)
        out2.sum().backward()
    for a, b in [(out, out2), (h, h2), (c, c2)]:
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert lstm.weight_hh_l1.grad is not None


def test_use_adam_gives_optim_adam_the_students_update(tmp_path):
    path = _write(tmp_path, "adam", ex.get("adam").solution_source)
    runs = []
    for swap in (False, True):
        deepbox.manual_seed(1)
        w = deepbox.randn(4, 3, requires_grad=True)
        opt = deepbox.optim.Adam([w], lr=0.1, weight_decay=0.01)
        with ex.use("adam", path) if swap else contextlib.nullcontext():
            for _ in range(5):
                opt.zero_grad()
                (w ** 2).sum().backward()
                opt.step()
        runs.append(w.detach().numpy().copy())
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-5)


def test_use_rejects_what_the_students_version_does_not_cover(tmp_path):
    path = _write(tmp_path, "conv2d", ex.get("conv2d").solution_source)
    with ex.use("conv2d", path), pytest.raises(NotImplementedError, match="dilation 1 and groups 1"):
        F.conv2d(deepbox.randn(1, 2, 5, 5), deepbox.randn(2, 1, 3, 3), groups=2)
    with pytest.raises(ValueError, match="no deepbox op to swap in"):
        ex.use("knn", path).__enter__()


@pytest.mark.parametrize("name,train_size", [("conv2d", 128), ("lstm_cell", 128), ("adam", 256)])
def test_train_at_a_small_size(name, train_size, tmp_path):
    """--train: the named models of the exercise mode (LeNet-5, the row-LSTM, the MLP) with the student's piece."""
    path = _write(tmp_path, name, ex.get(name).solution_source)
    report = ex.check(name, path, train=True, train_size=train_size, epochs=1, verbose=False)
    ref, *mine = report.train
    assert ref["run"].startswith("deepbox's own") and len(mine) == len(ex.get(name).parts)
    for row in mine:
        assert "error" not in row, row
        assert row["steps"] == ref["steps"] and row["ms_per_step"] > 0
        assert abs(row["accuracy"] - ref["accuracy"]) <= 0.05, (row, ref)  # same seed and maths; float32 order


# ---------------------------------------------------------------------------------------------- the command
def test_cli_start_check_solution_show_list(tmp_path, capsys):
    d = str(tmp_path)
    assert main(["exercise", "start", "relu", "--dir", d]) == 0
    assert "Exercise `relu`" in capsys.readouterr().out
    assert main(["exercise", "start", "relu", "--dir", d]) == 2            # never overwrites work
    assert "exists" in capsys.readouterr().err
    assert main(["exercise", "list", "--dir", d]) == 0
    assert any(ln.startswith("relu") and "template" in ln for ln in capsys.readouterr().out.splitlines())
    assert main(["exercise", "check", "relu", "--dir", d]) == 1
    assert "not implemented yet" in capsys.readouterr().out
    assert main(["exercise", "solution", "relu", "--dir", d]) == 0         # the untouched template may be replaced
    assert main(["exercise", "check", "relu", "--dir", d]) == 0
    assert "result: all checks pass" in capsys.readouterr().out
    assert main(["exercise", "list", "--dir", d]) == 0
    assert any(ln.startswith("relu") and "passed" in ln for ln in capsys.readouterr().out.splitlines())
    (tmp_path / "relu.py").write_text((tmp_path / "relu.py").read_text() + "\n# my own notes\n")
    assert main(["exercise", "solution", "relu", "--dir", d]) == 2         # work that is not the template is kept
    assert main(["exercise", "show", "linear"]) == 0
    assert "dw = dout^T x" in capsys.readouterr().out
    assert main(["exercise", "check", "relu", "--dir", str(tmp_path / "missing")]) == 2
    assert main(["exercise", "check", "nope"]) == 2


def test_cli_check_train_reports_accuracy_and_speed_beside_the_reference(tmp_path, capsys):
    path = _write(tmp_path, "linear", ex.get("linear").solution_source)
    assert main(["exercise", "check", "linear", "--file", path, "--train", "--train-size", "200", "--epochs",
                 "1"]) == 0
    out = capsys.readouterr().out
    assert "deepbox's own (reference)" in out and "yours: forward and backward" in out and "per step" in out


def test_train_rows_agree_with_the_reference_for_the_reference_solution(tmp_path):
    path = _write(tmp_path, "relu", ex.get("relu").solution_source)
    report = ex.check("relu", path, train=True, train_size=256, epochs=1, verbose=False)
    ref, mine = report.train
    assert ref["steps"] == mine["steps"] == 4
    assert abs(ref["accuracy"] - mine["accuracy"]) < 0.02   # same seed, same maths; float32 summation order


def test_train_is_skipped_until_the_checks_pass(tmp_path, capsys):
    path = ex.start("relu", tmp_path)
    report = ex.check("relu", path, train=True, train_size=64, verbose=True)
    assert report.train == [] and "the checks must pass first" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- notebooks
NOTEBOOKS = ["relu", "softmax_cross_entropy", "conv2d"]  # a few: each starts a Jupyter kernel (~3 s)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_with_the_solution_runs_its_checks(name, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    path = ex.solution(name, tmp_path, notebook=True)
    nb = nbformat.read(path, as_version=4)
    # the kernel imports this checkout's deepbox
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "result: all checks pass" in out, out


def test_a_notebook_is_checked_without_jupyter(tmp_path, capsys):
    d = str(tmp_path)
    assert main(["exercise", "start", "sigmoid", "--dir", d, "--notebook"]) == 0
    assert ex.status("sigmoid", d) == "template"
    assert main(["exercise", "check", "sigmoid", "--dir", d]) == 1     # finds sigmoid.ipynb
    assert "not implemented yet" in capsys.readouterr().out
    assert main(["exercise", "solution", "sigmoid", "--dir", d, "--notebook", "--force"]) == 0
    assert main(["exercise", "check", "sigmoid", "--dir", d]) == 0
    assert ex.status("sigmoid", d) == "passed"


def test_template_notebook_is_valid_and_holds_the_template(tmp_path):
    import nbformat

    path = ex.start("linear", tmp_path, notebook=True)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert 'raise NotImplementedError("linear_forward: not implemented yet")' in nb.cells[1].source
    assert "deepbox.exercises.check('linear', globals())" in nb.cells[2].source
