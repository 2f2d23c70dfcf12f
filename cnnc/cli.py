"""The `cnnc` command line: one module per subcommand in cnnc/commands/.

Command modules import only the standard library at module level so that
`cnnc check` stays fast; heavy imports (NumPy, onnx) happen inside `run`.
Exit codes: 0 fine (warnings allowed), 1 the model has errors, 2 bad usage
or unreadable input. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import keyword
import os
import re
import sys
from typing import Sequence

from . import __version__
from .diagnostics import CnncError, UsageError, did_you_mean, use_color

COMMANDS = ("check", "summary", "plot", "compile", "import", "export", "run", "train", "evaluate",
            "predict", "bench")


class _Parser(argparse.ArgumentParser):
    """argparse, but bad usage raises UsageError (exit 2) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        notes = [f"see '{self.prog} --help'"]
        m = re.search(r"invalid choice: '([^']*)'", message)
        hint = did_you_mean(m.group(1), COMMANDS) if m and "COMMAND" in message else ""
        raise UsageError(message, [hint, *notes] if hint else notes)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnc", description="Compile and check Keras-style convolutional networks "
                     "written in .cnn files.")
    parser.add_argument("--version", action="version", version=f"cnnc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        # a command named like a Python keyword lives in NAME_.py (commands/import_.py)
        module = importlib.import_module(f".commands.{name}{'_' if keyword.iskeyword(name) else ''}",
                                         __package__)
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "_run", None):
            build_parser().print_help(sys.stderr)
            return 2
        return int(args._run(args) or 0)
    except CnncError as e:
        print(e.render(color=use_color()), file=sys.stderr)
        return e.exit_code
    except UsageError as e:
        print_usage_error(e)
        return 2
    except KeyboardInterrupt:
        print("cnnc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug in cnnc: say so without a traceback
        if os.environ.get("CNNC_DEBUG"):
            raise
        print(f"cnnc: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        print("  note: this is a bug in cnnc; set CNNC_DEBUG=1 for the traceback and report it",
              file=sys.stderr)
        return 70


def print_usage_error(e: UsageError) -> None:
    print(f"cnnc: error: {e.message}", file=sys.stderr)
    for note in e.notes:
        print(f"  note: {note}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
