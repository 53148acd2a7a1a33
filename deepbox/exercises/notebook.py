"""``deepbox exercise start NAME --notebook``: the exercise as a Jupyter notebook.

Three cells: the statement (Markdown), the template (the student's code), and a last cell that
runs the checks on the functions the notebook defined (``check(NAME, globals())``). The file is
nbformat 4 JSON written directly, so writing a notebook needs no Jupyter package.
"""
from __future__ import annotations

import json

__all__ = ["notebook_json"]


def _lines(text: str) -> list:
    lines = text.splitlines(keepends=True)
    if lines and lines[-1].endswith("\n"):
        lines[-1] = lines[-1][:-1]
    return lines


def notebook_json(ex, code: str) -> str:
    """The notebook of exercise ``ex`` with ``code`` (the template or the solution) in its code cell."""
    check = (f"# Run the checks on the functions defined above (run the cell above first).\n"
             f"import deepbox.exercises\n\n"
             f"report = deepbox.exercises.check({ex.name!r}, globals())\n"
             f"# then, once every check passes, train a small real model with your code:\n"
             f"# deepbox.exercises.check({ex.name!r}, globals(), train=True)")
    cells = [
        {"cell_type": "markdown", "id": "statement", "metadata": {}, "source": _lines(ex.statement)},
        {"cell_type": "code", "execution_count": None, "id": "your-code", "metadata": {}, "outputs": [],
         "source": _lines(code)},
        {"cell_type": "code", "execution_count": None, "id": "check", "metadata": {}, "outputs": [],
         "source": _lines(check)},
    ]
    doc = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
           "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                        "language_info": {"name": "python"}}}
    return json.dumps(doc, indent=1) + "\n"
