"""Checks that teach: each failure names the check, the worst element, its relative error and a hint.

A part of an exercise (``forward`` and ``backward`` of a layer, or one function) is checked in a
fixed order and stops at its first failing check:

1. shapes (expected and received),
2. values against deepbox's reference on fixed and random inputs, edge cases included,
3. gradients against the reference and against central differences (float64), with the
   relative-error score of each input as the courses report it,
4. hidden cases (inputs the statement does not show).

The relative error of two arrays is the largest ``|a - b| / max(|a| + |b|, 1e-8)`` over their
elements (CS231n's score): about 1e-16 for the same float64 computation done in another order,
above 1e-2 for a wrong one.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import traceback
import types
from dataclasses import dataclass, field

import numpy as np

from deepbox import kernels

__all__ = ["rel_error", "CheckFailed", "NotImplementedPart", "Checker", "Report", "PartResult", "load_student",
           "Mistake", "reference_mode", "numerical_gradient"]

# tolerances on the relative-error score (float64 throughout the checks)
REF_TOL = 1e-7      # against deepbox's reference: the same maths in another summation order
FD_TOL = 1e-5       # against central differences with h = 1e-6
_DEEPBOX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))


def rel_error(got, expected) -> tuple[float, tuple]:
    """The relative-error score of ``got`` against ``expected`` and the index of the worst element."""
    a = np.asarray(got, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.size == 0:
        return 0.0, ()
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)
    err = np.where(np.isnan(a) != np.isnan(b), np.inf, err)     # NaN where none was expected is infinitely wrong
    err = np.where(np.isnan(a) & np.isnan(b), 0.0, err)
    err = np.where(np.isinf(a) & (a == b), 0.0, err)
    err = np.nan_to_num(err, nan=np.inf)
    i = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
    return float(err[i]), tuple(int(k) for k in i)


def numerical_gradient(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences ``(f(x + h e_i) - f(x - h e_i)) / 2h`` of a scalar function, element by element."""
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        grad[i] = (fp - fm) / (2 * h)
    return grad


def reference_mode():
    """deepbox's readable reference path: the fast kernels switched off while the reference computes."""
    return kernels.compiled(False)


# ---------------------------------------------------------------------------------------------- failures
class CheckFailed(Exception):
    """A failed check: the lines that explain it (first the what, then the worst element, then the hint)."""

    def __init__(self, what: str, details: list[str] | None = None, hint: str | None = None):
        super().__init__(what)
        self.what = what
        self.details = details or []
        self.hint = hint


class NotImplementedPart(Exception):
    """The student's function still raises ``NotImplementedError`` (the untouched template)."""

    def __init__(self, function: str):
        super().__init__(function)
        self.function = function


@dataclass
class Mistake:
    """A recognisable mistake: when the student's ``target`` equals ``compute(...)``, show ``hint``.

    ``compute`` gets the case's inputs (a dict of arrays), its parameters and the output gradient
    (``dout``, or ``None`` for values) and returns the array the mistake produces (or ``None`` when
    the mistake cannot be told apart on this case).
    """

    target: str
    hint: str
    compute: object


@dataclass
class PartResult:
    name: str
    passed: bool
    not_implemented: bool = False
    failure: str | None = None
    hint: str | None = None
    lines: list[str] = field(default_factory=list)


@dataclass
class Report:
    """The outcome of ``deepbox.exercises.check``: ``passed``, one ``PartResult`` per part, and ``text``."""

    exercise: str
    source: str
    parts: list[PartResult] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    student: object = field(default=None, repr=False)
    train: list = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        return bool(self.parts) and all(p.passed for p in self.parts)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.text

    def _repr_pretty_(self, p, cycle):  # IPython shows the text, not a dataclass repr
        p.text(self.text)


# ---------------------------------------------------------------------------------------------- student code
def load_student(source, name: str) -> types.SimpleNamespace:
    """The student's functions: from a ``.py`` file, a module, or a namespace dict (a notebook's ``globals()``)."""
    if isinstance(source, dict):
        ns = types.SimpleNamespace(**{k: v for k, v in source.items() if not k.startswith("__")})
        ns.__file__ = "<notebook>"
        return ns
    if isinstance(source, types.ModuleType):
        return source
    path = os.path.abspath(os.fspath(source))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file; 'deepbox exercise start {name}' writes the template")
    if path.endswith(".ipynb"):
        return _load_notebook(path, name)
    spec = importlib.util.spec_from_file_location(f"_deepbox_exercise_{name}_{abs(hash(path))}", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # a syntax error or an import-time error in the student's file
        raise CheckFailed(f"your file {path} could not be loaded: {type(e).__name__}: {e}",
                          student_traceback(e)) from None
    return mod


def _load_notebook(path: str, name: str) -> types.ModuleType:
    """Run a notebook's code cells (not the one that runs the checks, nor IPython's magics) in a fresh module."""
    with open(path, encoding="utf-8") as f:
        try:
            cells = json.load(f)["cells"]
        except (ValueError, KeyError, TypeError) as e:
            raise CheckFailed(f"{path} is not a Jupyter notebook ({e})") from None
    mod = types.ModuleType(f"_deepbox_exercise_{name}_notebook")
    mod.__file__ = path
    for k, cell in enumerate(cells, 1):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        if "deepbox.exercises.check(" in src:
            continue
        src = "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
        try:
            exec(compile(src, f"{path} (cell {k})", "exec"), mod.__dict__)
        except Exception as e:
            raise CheckFailed(f"cell {k} of {path} could not run: {type(e).__name__}: {e}",
                              student_traceback(e)) from None
    return mod


def student_traceback(e: BaseException) -> list[str]:
    """The traceback lines of the student's own code (deepbox's and NumPy's frames left out)."""
    frames = traceback.extract_tb(e.__traceback__)
    mine = [f for f in frames if not os.path.abspath(f.filename).startswith((_DEEPBOX_DIR, _NUMPY_DIR))
            or "/exercises/" in f.filename and f.filename.endswith("solution.py")]
    if not mine and frames:
        mine = [frames[-1]]
    out = []
    for f in mine:
        out.append(f'File "{f.filename}", line {f.lineno}, in {f.name}')
        if f.line:
            out.append(f"    {f.line}")
    out.append(f"{type(e).__name__}: {e}")
    return out


_EXCEPTION_HINTS = [
    (r"matmul|shapes .* not aligned|mismatch in its core dimension",
     "a matrix product got shapes that do not fit: print both operands' shapes (a transposed weight? "
     "a weight stored as (out_features, in_features) is used as w.T)"),
    (r"could not be broadcast|operands could not be broadcast",
     "two arrays of shapes that do not broadcast: print their shapes (a reduction that dropped an axis? "
     "use keepdims=True)"),
    (r"index .* out of bounds", "an index past the end of an axis: check the loop bounds and the output size "
                                "formula (H + 2*padding - kernel) // stride + 1"),
    (r"unhashable|not iterable|cannot unpack|too many values to unpack|not enough values to unpack",
     "the function returns the wrong number of things: see its docstring for what to return"),
]


# ---------------------------------------------------------------------------------------------- the checker
class Checker:
    """Runs one part's checks against the student's functions and records what happened."""

    def __init__(self, student, part_lines: list[str], exception_hints=()):
        self.student = student
        self.lines = part_lines
        self.exception_hints = list(exception_hints) + _EXCEPTION_HINTS
        self.title = ""

    # -- calling the student's code
    def call(self, fname: str, *args, **kwargs):
        fn = getattr(self.student, fname, None)
        if fn is None:
            raise CheckFailed(f"`{fname}` is missing from your file", hint="keep the function names of the template")
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            raise NotImplementedPart(fname) from None
        except Exception as e:
            hint = None
            for pattern, h in self.exception_hints:
                if re.search(pattern, str(e)):
                    hint = h
                    break
            raise CheckFailed(f"`{fname}` raised {type(e).__name__}: {e}",
                              ["your traceback:"] + ["  " + s for s in student_traceback(e)], hint) from None

    @contextlib.contextmanager
    def check(self, title: str):
        """One named check; a ``CheckFailed`` inside it is reported under this title."""
        self.title = title
        try:
            yield
        except CheckFailed as f:
            f.what = f"{title}: {f.what}" if not f.what.startswith(title) else f.what
            raise
        self.lines.append(f"    PASS  {title}")

    def passed(self, text: str) -> None:
        self.lines.append(f"    PASS  {text}")

    # -- comparing
    def expect_array(self, what: str, got) -> np.ndarray:
        if isinstance(got, (int, float, np.floating, np.integer)) and not isinstance(got, bool):
            return np.asarray(got, dtype=np.float64)
        if not isinstance(got, np.ndarray):
            raise CheckFailed(f"{what} should be a NumPy array, got {type(got).__name__}",
                              hint="return NumPy arrays (not lists, tuples or tensors)")
        return got

    def expect_shape(self, what: str, got, shape: tuple, where: str = "") -> None:
        got = self.expect_array(what, got)
        if tuple(got.shape) != tuple(shape):
            hint = None
            if len(shape) == 2 and tuple(got.shape) == tuple(shape)[::-1]:
                hint = f"{what} is the transpose of what is expected"
                if what.startswith("dw"):
                    hint += ": a weight is stored as (out_features, in_features); its gradient has the weight's shape"
            elif got.ndim == len(shape) - 1 or got.ndim == 0:
                hint = "an axis is missing: a sum or mean without keepdims=True, or summed over the wrong axis"
            elif got.size == int(np.prod(shape)):
                hint = "the right number of elements in the wrong layout: reshape (and check the axis order)"
            raise CheckFailed(f"{what}{where} has shape {tuple(got.shape)}, expected {tuple(shape)}", hint=hint)

    def expect_close(self, what: str, got, expected, *, tol: float = REF_TOL, where: str = "",
                     mistakes=(), mistake_args=None, factors=None, hidden: bool = False) -> float:
        """Fail unless ``got`` matches ``expected`` to ``tol``; return the relative-error score."""
        got = self.expect_array(what, got)
        expected = np.asarray(expected)
        self.expect_shape(what, got, expected.shape, where)
        err, idx = rel_error(got, expected)
        if err <= tol:
            return err
        details = []
        if hidden:
            details.append(f"worst relative error {err:.1e} (a hidden case: its inputs are not shown)")
        else:
            at = f"{what}[{', '.join(map(str, idx))}]" if idx else what
            g = float(np.asarray(got, dtype=np.float64)[idx]) if got.size else float("nan")
            x = float(expected[idx]) if expected.size else float("nan")
            details.append(f"worst element {at} = {g:.6g}, expected {x:.6g} (relative error {err:.1e})")
            bad = int(np.sum(_elementwise_err(got, expected) > tol))
            if expected.size > 1:
                details.append(f"{bad} of {expected.size} elements differ")
        hint = self._recognise(what, got, expected, mistakes, mistake_args, factors)
        raise CheckFailed(f"{what}{where} is wrong", details, hint)

    def _recognise(self, what, got, expected, mistakes, mistake_args, factors) -> str | None:
        for m in mistakes:
            if m.target != what:
                continue
            try:
                with np.errstate(all="ignore"):
                    wrong = m.compute(*mistake_args) if mistake_args is not None else m.compute()
            except Exception:
                continue
            if wrong is None:
                continue
            wrong = np.asarray(wrong)
            if wrong.shape == got.shape and rel_error(got, wrong)[0] < 1e-6:
                return m.hint
        return generic_hint(what, got, expected, factors or {})


def _elementwise_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)
    return np.nan_to_num(e, nan=np.inf)


def generic_hint(what: str, got: np.ndarray, expected: np.ndarray, factors: dict) -> str | None:
    """Mistakes any array can show: NaN/inf, all zeros, a constant factor, a flipped sign, a transpose."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if not np.all(np.isfinite(got)) and np.all(np.isfinite(expected)):
        return (f"{what} holds NaN or inf: an overflow (exp of a large number: subtract the maximum first) "
                "or a division by zero (is eps in the right place?)")
    if np.all(got == 0) and np.any(expected != 0):
        return f"{what} is all zeros: is the result assigned (not just computed), and returned?"
    nz = np.abs(expected) > 1e-12 * max(1.0, float(np.max(np.abs(expected))))
    if nz.sum() >= 1 and np.all(np.isfinite(got)):
        ratio = got[nz] / expected[nz]
        r = float(np.median(ratio))
        if np.allclose(ratio, r, rtol=1e-6, atol=0) and abs(r - 1) > 1e-6 and np.allclose(got[~nz], 0, atol=1e-9):
            if abs(r + 1) < 1e-6:
                return f"{what} has the wrong sign: check the sign of the update (or of a derivative)"
            for name, (value, message) in factors.items():
                if abs(r - value) <= 1e-6 * max(1.0, abs(value)):
                    return f"{what} is {r:.6g} times the expected value ({name}): {message}"
            if got.size == 1:  # any two numbers have a ratio: only a named factor says something
                return None
            return f"{what} is {r:.6g} times the expected value: a constant factor is missing or extra"
    if got.ndim >= 2 and got.shape[-1] == got.shape[-2] and rel_error(np.swapaxes(got, -1, -2), expected)[0] < 1e-6:
        return f"{what} is the transpose of the expected one: check the order of the operands of the matrix product"
    return None


# ---------------------------------------------------------------------------------------------- running parts
def run_part(report: Report, title: str, student, check_fn, exception_hints=()) -> PartResult:
    """Run one part's ``check_fn(checker)`` and add its lines and result to the report."""
    lines: list[str] = []
    res = PartResult(title, False, lines=lines)
    ck = Checker(student, lines, exception_hints)
    report.lines.append(f"  {title}")
    try:
        check_fn(ck)
        res.passed = True
    except NotImplementedPart as e:
        res.not_implemented = True
        res.failure = f"{e.function}: not implemented yet"
        lines.append(f"    TODO  {e.function}: not implemented yet (the template still raises NotImplementedError)")
    except CheckFailed as f:
        res.failure = f.what
        res.hint = f.hint
        lines.append(f"    FAIL  {f.what}")
        for d in f.details:
            lines.append(f"          {d}")
        if f.hint:
            lines.append(f"          hint: {f.hint}")
    report.lines.extend(lines)
    report.parts.append(res)
    return res


def to_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)
