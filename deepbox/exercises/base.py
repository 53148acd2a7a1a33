"""An exercise: its statement, its reference solution, the template made from it, and its parts' checks.

Each exercise is a folder of this package holding ``statement.md``, ``solution.py`` and an
``__init__.py`` that defines ``EXERCISE``. The student's parts of ``solution.py`` sit between

    # >>> YOUR CODE (about N lines)
    ...
    # <<< END

and the template is the same file with each such block replaced by
``raise NotImplementedError(...)``, so the template and the solution never drift apart.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from deepbox.exercises.checking import CheckFailed, PartResult, Report, load_student, run_part

__all__ = ["Exercise", "Part", "template_from_solution"]

_BEGIN = re.compile(r"^(\s*)# >>> YOUR CODE")
_END = re.compile(r"^\s*# <<< END")
_DEF = re.compile(r"^\s*def (\w+)\(")


def template_from_solution(source: str) -> str:
    """The solution with the body of every ``# >>> YOUR CODE`` block replaced by ``raise NotImplementedError``."""
    out: list[str] = []
    func = "this part"
    inside = False
    for line in source.splitlines():
        m = _DEF.match(line)
        if m and not inside:
            func = m.group(1)
        if inside:
            if _END.match(line):
                inside = False
                out.append(line)
            continue
        b = _BEGIN.match(line)
        out.append(line)
        if b:
            inside = True
            out.append(f'{b.group(1)}raise NotImplementedError("{func}: not implemented yet")')
    if inside:
        raise ValueError("a '# >>> YOUR CODE' block has no '# <<< END'")
    return "\n".join(out) + "\n"


_FOOTER = """## Checking your work

    deepbox exercise check {name}            # shapes, values, gradients, hidden cases; exit 0 when all pass
{train}
Each failing check names the case, the worst element with its relative error, and a hint when the
mistake is a common one. From Python: `deepbox.exercises.check("{name}", "{name}.py")`.

The reference solution (`deepbox exercise solution {name}`) is for teachers, and for you once
your own version passes: reading it first teaches nothing."""
_TRAIN_LINE = """    deepbox exercise check {name} --train    # then train a small real model with your code
"""


@dataclass
class Part:
    """One part of an exercise: the functions the student writes and the checks run on them."""

    title: str
    functions: tuple
    check: object                      # check(ck: Checker) -> None, raising CheckFailed
    swap_ok: bool = True               # whether this part's functions can be swapped into deepbox


@dataclass
class Exercise:
    name: str
    lecture: str
    summary: str
    parts: list
    folder: str
    exception_hints: list = field(default_factory=list)
    swap: object = None                # swap(student, part_title) -> list of (owner, attribute, replacement)
    train: object = None               # train(student, parts, **size) -> list of result rows (see training.py)

    @property
    def statement(self) -> str:
        with open(os.path.join(self.folder, "statement.md"), encoding="utf-8") as f:
            text = f.read().rstrip()
        return text + "\n\n" + _FOOTER.format(name=self.name, train=_TRAIN_LINE.format(name=self.name)
                                                if self.train else "")

    @property
    def solution_source(self) -> str:
        with open(os.path.join(self.folder, "solution.py"), encoding="utf-8") as f:
            return f.read()

    @property
    def solution_path(self) -> str:
        return os.path.join(self.folder, "solution.py")

    @property
    def template_source(self) -> str:
        return template_from_solution(self.solution_source)

    def check(self, source) -> Report:
        """Run every part's checks on the student's code (a path, a module or a namespace dict)."""
        where = source if isinstance(source, (str, os.PathLike)) else "<notebook>"
        report = Report(self.name, str(where))
        report.lines.append(f"{self.name}: checking {where}")
        try:
            student = load_student(source, self.name)
        except CheckFailed as f:
            report.lines.append(f"  FAIL  {f.what}")
            report.lines.extend("        " + d for d in f.details)
            report.parts.append(PartResult("load", False, failure=f.what))
            report.lines.append("result: your file does not load")
            return report
        report.student = student
        for part in self.parts:
            run_part(report, part.title, student, part.check, self.exception_hints)
        n = sum(p.passed for p in report.parts)
        todo = sum(p.not_implemented for p in report.parts)
        verdict = "all checks pass" if report.passed else f"{n} of {len(report.parts)} parts pass"
        if todo and not report.passed:
            verdict += f" ({todo} not implemented yet)"
        report.lines.append(f"result: {verdict}")
        return report
