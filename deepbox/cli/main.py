"""The ``deepbox`` command (also ``python -m deepbox``): a thin dispatcher over sub-command modules.

Sub-commands::

    deepbox train [--model NAME] [--data NAME|PATH] [--epochs N] ...   (deepbox/cli/train.py)
    deepbox eval RUN [--data NAME|PATH]                                 (deepbox/cli/evaluate.py)
    deepbox predict RUN IMAGE... [--top-k K] [--invert]                 (deepbox/cli/evaluate.py)
    deepbox models | datasets | info                                    (deepbox/cli/listings.py)
    deepbox launch --nproc N SCRIPT [ARGS]                              (deepbox/cli/launch_cmd.py)
    deepbox exercise list|start|check|solution|show [NAME]          (deepbox/cli/exercise_cmd.py)
    deepbox export RUN --format onnx [--out FILE]                       (deepbox/cli/export.py)
    deepbox inspect RUN [--port N] [--host H] [--open]                  (deepbox/cli/inspect_cmd.py)

Each module in ``COMMANDS`` has ``add_parsers(sub, common)``, which adds its sub-parsers to
``sub`` (with ``parents=[common]`` for ``--debug``) and sets ``func`` on each to the function
that runs it; a new sub-command is a new module and one line in ``COMMANDS``.

Bad input (an unknown model or dataset, a run folder without a checkpoint, an unreadable image,
a corrupt dataset file, a bad configuration value) raises ``CLIError`` (or ``ConfigError``): the
command prints one paragraph that names it and says what was expected, and exits with status 2;
``--debug`` shows the traceback instead. Other failures exit with status 1, Ctrl-C with 130.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from deepbox.cli.common import CLIError
from deepbox.cli.config import ConfigError

__all__ = ["main", "build_parser", "CLIError", "COMMANDS"]

# the modules that add sub-commands, in the order 'deepbox --help' lists them
COMMANDS = (
    "deepbox.cli.train",
    "deepbox.cli.evaluate",
    "deepbox.cli.listings",
    "deepbox.cli.launch_cmd",
    "deepbox.cli.exercise_cmd",
    "deepbox.cli.export",
    "deepbox.cli.inspect_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")
    p = argparse.ArgumentParser(
        prog="deepbox", description="deepbox: deep learning from first principles on NumPy.",
        epilog="Run 'deepbox train' to train the default model on the embedded Fashion-MNIST subset.")
    p.add_argument("--debug", action="store_true", default=False, help="show the full traceback of an error")
    p.add_argument("--version", action="version", version=f"deepbox {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_parsers(sub, common)
    return p


def _version() -> str:
    from deepbox import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Run the ``deepbox`` command; returns the exit status (0 ok, 1 failure, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)   # what 'deepbox train --nproc N' relaunches
    if args.command is None:
        parser.print_help()
        return 0
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args) or 0)
    except (CLIError, ConfigError) as e:
        if debug:
            raise
        # one paragraph: messages quoted from parsers may carry line breaks
        print(f"deepbox {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deepbox {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        from deepbox.train import NonFiniteLossError

        what = "training stopped" if isinstance(e, NonFiniteLossError) else f"failed ({type(e).__name__})"
        print(f"deepbox {args.command}: {what}: {e}\n(run again with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
