"""``deepbox exercise``: hand out, check and train with the course exercises (``deepbox.exercises``).

    deepbox exercise list                                   # name, lecture, summary, status in --dir
    deepbox exercise start NAME [--dir D] [--notebook]      # writes D/NAME.py (or .ipynb), prints the statement
    deepbox exercise check NAME [--dir D] [--file F] [--train [--train-size N] [--epochs E]]
    deepbox exercise solution NAME [--dir D] [--notebook]   # teacher mode: the reference solution
    deepbox exercise show NAME                              # the statement

``check`` exits 0 when every check passes and 1 otherwise; bad input (an unknown exercise, a
missing file, a file that would be overwritten) exits 2.
"""
from __future__ import annotations

import argparse
import os

__all__ = ["add_parsers", "cmd_exercise"]


def add_parsers(sub, common) -> None:
    """Register ``deepbox exercise`` on the main parser's sub-commands."""
    p = sub.add_parser("exercise", parents=[common],
                       help="course exercises: implement a piece, check it, train with it",
                       description="Course exercises: write one piece of deepbox (a layer's forward and backward, "
                                   "an optimiser, ...), let deepbox check it, then train a real model with it.")
    act = p.add_subparsers(dest="action", metavar="ACTION")
    act.required = True
    lst = act.add_parser("list", help="the exercises, with their status in --dir")
    lst.add_argument("--dir", default=".", help="the folder holding your exercise files (default .)")
    st = act.add_parser("start", help="write the template and print the statement")
    st.add_argument("name")
    st.add_argument("--dir", default=".", help="where to write NAME.py (default .)")
    st.add_argument("--notebook", action="store_true", help="write a Jupyter notebook NAME.ipynb instead")
    st.add_argument("--force", action="store_true", help="overwrite an existing file")
    ck = act.add_parser("check", help="check your implementation (exit 0 when all checks pass)")
    ck.add_argument("name")
    ck.add_argument("--dir", default=".", help="the folder holding NAME.py or NAME.ipynb (default .)")
    ck.add_argument("--file", help="check this file (.py or .ipynb) instead of DIR/NAME.py")
    ck.add_argument("--train", action="store_true",
                    help="then train a small real model with your piece and with deepbox's own, side by side")
    ck.add_argument("--train-size", type=int, help="training digits for --train (default: the exercise's)")
    ck.add_argument("--epochs", type=int, help="epochs for --train (default: the exercise's)")
    so = act.add_parser("solution", help="teacher mode: write the reference solution")
    so.add_argument("name")
    so.add_argument("--dir", default=".", help="where to write NAME.py (default .)")
    so.add_argument("--notebook", action="store_true", help="write a notebook NAME.ipynb instead")
    so.add_argument("--force", action="store_true", help="overwrite a file that holds other work")
    sh = act.add_parser("show", help="print the statement")
    sh.add_argument("name")
    p.set_defaults(func=cmd_exercise)


def cmd_exercise(args: argparse.Namespace) -> int:
    import deepbox.exercises as ex
    from deepbox.cli.common import CLIError

    try:
        if args.action == "list":
            rows = [(e.name, e.lecture, ex.status(e.name, args.dir), e.summary) for e in ex.exercises()]
            widths = [max(len(r[i]) for r in rows + [("exercise", "lecture", "status", "")]) for i in range(3)]
            print(f"{'exercise':<{widths[0]}}  {'lecture':<{widths[1]}}  {'status':<{widths[2]}}  summary")
            for r in rows:
                print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
            print(f"\n(status of the files in {os.path.abspath(args.dir)}; "
                  "'deepbox exercise start NAME' begins one)")
            return 0
        if args.action == "show":
            print(ex.show(args.name))
            return 0
        if args.action == "start":
            path = ex.start(args.name, args.dir, notebook=args.notebook, overwrite=args.force)
            print(ex.show(args.name))
            print(f"\nwrote the template to {path}; when you are done: "
                  f"deepbox exercise check {ex.get(args.name).name}"
                  + ("" if os.path.abspath(args.dir) == os.getcwd() else f" --dir {args.dir}"))
            return 0
        if args.action == "solution":
            path = ex.solution(args.name, args.dir, notebook=args.notebook, overwrite=args.force)
            print(f"wrote the reference solution to {path}")
            return 0
        if args.action == "check":
            path = args.file or ex.student_path(args.name, dir=args.dir)
            if not os.path.isfile(path):
                raise CLIError(f"{path} not found: 'deepbox exercise start {args.name}"
                               f"{'' if args.dir == '.' else ' --dir ' + args.dir}' writes the template "
                               "(or pass --dir/--file)")
            report = ex.check(args.name, path, train=args.train, train_size=args.train_size, epochs=args.epochs)
            return 0 if report.passed else 1
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    raise CLIError(f"unknown action {args.action!r}")
