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

from cnnc.support.diagnostics import CnncError, UsageError, did_you_mean, use_color, visible
from cnnc.support.version import __version__

COMMANDS = ("check", "summary", "plot", "compile", "import", "export", "run", "train", "evaluate",
            "predict", "bench", "lsp")


class _Parser(argparse.ArgumentParser):
    """argparse, but bad usage raises UsageError (exit 2) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        notes = [f"see '{self.prog} --help'"]
        m = re.search(r"invalid choice: '([^']*)'", message)
        hint = did_you_mean(m.group(1), COMMANDS) if m and "COMMAND" in message else ""
        raise UsageError(message, [hint, *notes] if hint else notes)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnc", description="Check, compile, train and run Keras-style "
                     "convolutional networks: .cnn files, Keras model files (.keras, .h5, .json) "
                     "and Keras scripts and notebooks (.py, .ipynb, read without running them). "
                     "`cnnc check` also takes folders.")
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


class _Stdout:
    """sys.stdout, but a failed write (a full disk, a closed descriptor) is a UsageError
    (exit 2) that says so, instead of an OSError deep inside a print()."""

    def __init__(self, stream):
        self._stream = stream

    def _fail(self, e: OSError | None) -> UsageError:
        why = "it is closed" if e is None else _why(e)
        return UsageError(f"cannot write to standard output: {why}",
                          ["the output was lost; write it to a file with -o where the command has it"])

    def write(self, text: str) -> int:
        if self._stream is None:
            raise self._fail(None)
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise self._fail(e) from None

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise self._fail(e) from None

    def isatty(self) -> bool:
        try:
            return self._stream is not None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name):
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def _why(e: OSError) -> str:
    from cnnc.support.atomic import _why as why
    return why(e)


def _silence_stdout() -> None:
    """After a broken pipe or a failed write: nothing more goes to stdout (not even
    Python's flush at exit, which would print 'Exception ignored')."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    real = sys.stdout
    sys.stdout = _Stdout(real)
    try:
        code = _main(argv)
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
        except UsageError as e:
            print_usage_error(e)
            _silence_stdout()
            return 2
        return code
    except OSError:
        # stderr itself cannot be written (`2> /dev/full`, a closed descriptor): nothing
        # can be said, and the diagnostics were lost; exit 2 as for any failed output
        _silence_stderr()
        return 2
    finally:
        sys.stdout = real


def _silence_stderr() -> None:
    """Nothing more to stderr (not even Python's 'lost sys.stderr' at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stderr__.fileno())
        os.close(devnull)
        sys.stderr = sys.__stderr__
    except (OSError, AttributeError, ValueError):
        pass


def _main(argv: Sequence[str] | None = None) -> int:
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        bad = next((a for a in argv if "\x00" in a), None)
        if bad is not None:         # no file name or option value can hold one
            raise UsageError(f"the argument {visible(bad)!r} contains a NUL byte")
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
        if "standard output" in e.message:
            _silence_stdout()
        return 2
    except KeyboardInterrupt:
        print("cnnc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()   # `cnnc summary net.cnn | head -1`: the reader has what it wanted
        return 0
    except MemoryError:
        # the resource guard (support/resources.py) refuses sizes it can see before allocating;
        # this is the last resort for the rest
        print("cnnc: error: out of memory", file=sys.stderr)
        print("  note: use a smaller --batch-size or --limit, or a smaller model or input",
              file=sys.stderr)
        return 2
    except OSError as e:
        # an OS error no reader or writer turned into a message: still the user's
        # situation (a file, a disk), not a bug
        where = f" '{visible(str(e.filename))}'" if getattr(e, "filename", None) else ""
        print(f"cnnc: error: cannot access{where}: {_why(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug in cnnc: say so without a traceback
        if os.environ.get("CNNC_DEBUG"):
            raise
        print(f"cnnc: internal error: {type(e).__name__}: {visible(str(e))}", file=sys.stderr)
        print("  note: this is a bug in cnnc; set CNNC_DEBUG=1 for the traceback and report it",
              file=sys.stderr)
        return 70


def print_usage_error(e: UsageError) -> None:
    print(f"cnnc: error: {e.message}", file=sys.stderr)
    for note in e.notes:
        print(f"  note: {note}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
