"""Exercise mode: every reference solution passes, every untouched template fails part by part with
"not implemented yet", and deliberately wrong solutions fail with the hint that names their mistake.

A wrong solution is the reference solution with one snippet replaced (``WRONG`` below); the test
first asserts that the snippet is in the solution, so the list cannot silently go stale.
"""
from __future__ import annotations

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
    report = ex.check(name, _write(tmp_path, name, src.replace(old, new, 1)), verbose=False)
    assert not report.passed, report.text
    assert expected in report.text, report.text


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
NOTEBOOKS = ["relu", "softmax_cross_entropy"]


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


def test_template_notebook_is_valid_and_holds_the_template(tmp_path):
    import nbformat

    path = ex.start("linear", tmp_path, notebook=True)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert 'raise NotImplementedError("linear_forward: not implemented yet")' in nb.cells[1].source
    assert "deepbox.exercises.check('linear', globals())" in nb.cells[2].source
