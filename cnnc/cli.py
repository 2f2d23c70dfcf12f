"""The `cnnc` command line: one module per subcommand in cnnc/commands/.

Command modules import only the standard library at module level so that
`cnnc check` stays fast; heavy imports (NumPy, onnx) happen inside `run`.
Exit codes: 0 fine (warnings allowed), 1 the model has errors, 2 bad usage
or unreadable input. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import keyword
import os
import re
import sys
from typing import Sequence

from cnnc.support.diagnostics import (
    CnncError,
    UsageError,
    did_you_mean,
    interruption,
    use_color,
    visible,
)
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
    """sys.stdout, but a write that fails never stops the work: a closed pipe (`cnnc train
    ... | head -1`), a closed descriptor (`>&-`) or a full disk (`> /dev/full`) is noted
    and what follows is dropped, so the weights of a finished run are still written; `main`
    then says what was lost. (A broken pipe is the reader's choice: it keeps the command's
    exit status; any other failure is exit 2, as for any output that could not be written.)"""

    def __init__(self, stream):
        self._stream = stream
        self.lost: str | None = None       # why output was dropped (None: nothing was)
        self.broken = False

    def _drop(self, e: OSError) -> None:
        if self.lost is None:
            self.broken = isinstance(e, BrokenPipeError)
            self.lost = "the reader closed the pipe" if self.broken else _why(e)
        self._stream = None
        _silence_stdout()

    def write(self, text: str) -> int:
        if self._stream is not None:
            try:
                return self._stream.write(text)
            except OSError as e:
                self._drop(e)
            except ValueError:        # the stream was closed under us (sys.stdout.close())
                self._drop(OSError(0, "it is closed"))
        elif self.lost is None and text:  # `>&-`: there never was a stdout
            self.lost = "it is closed"
        return len(text)

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except OSError as e:
            self._drop(e)
        except ValueError:
            self._drop(OSError(0, "it is closed"))

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


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stopped as Ctrl-C stops a command (temporary files removed, a
    training run's checkpoint kept), exit status 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum, frame) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def _signals():
    """The command line's signal handling (never the API's: a library leaves its caller's
    signals alone). SIGTERM and SIGHUP raise Terminated, so every `finally` runs and no
    temporary file is left; SIGXFSZ (a write beyond `ulimit -f`) is ignored, so the write
    fails with EFBIG, an OSError that names the file, instead of killing the process."""
    import signal
    previous = {}
    for name, handler in (("SIGTERM", _on_signal), ("SIGHUP", _on_signal), ("SIGXFSZ", signal.SIG_IGN)):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):      # not the main thread
            pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)


def _text_streams() -> None:
    """A terminal that cannot show a character (a latin-1 locale and a name in Japanese, a
    file name with the byte 0xff) gets its escape, never a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")


@contextlib.contextmanager
def _warnings():
    """A warning is a message on stderr (`cnnc: warning: ...`), never an exception: the
    command line keeps Python's default filters whatever PYTHONWARNINGS or -W say (with
    PYTHONWARNINGS=error a NumPy overflow warning was an internal error, exit 70)."""
    import warnings
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")          # each warning once per place, as a message
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                         ResourceWarning):        # Python's defaults: inserted last, matched first
            warnings.filterwarnings("ignore", category=category)
        warnings.showwarning = _show_warning
        yield


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    from cnnc.support.diagnostics import NumericWarning
    text = visible(str(message))
    what = "" if issubclass(category, NumericWarning) else f"{category.__name__}: "
    try:
        print(f"cnnc: warning: {what}{text}", file=sys.stderr)
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    real = sys.stdout
    _text_streams()
    out = sys.stdout = _Stdout(real)
    try:
        with _signals(), _warnings():
            code = _main(argv)
        out.flush()
        if out.lost and not out.broken:
            print_usage_error(UsageError(f"cannot write to standard output: {out.lost}",
                                         ["the output was lost; write it to a file with -o where "
                                          "the command has it"] +
                                         (["the command ran to the end; only what it printed was lost"]
                                          if code == 0 else [])))
            return code or 2
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
        return 2
    except KeyboardInterrupt as e:
        return _stopped(e)
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
        stop = interruption(e)
        if stop is not None:  # a library wrapped Ctrl-C (onnxruntime's import: ImportError)
            return _stopped(stop)
        if os.environ.get("CNNC_DEBUG"):
            raise
        print(f"cnnc: internal error: {type(e).__name__}: {visible(str(e))}", file=sys.stderr)
        print("  note: this is a bug in cnnc; set CNNC_DEBUG=1 for the traceback and report it",
              file=sys.stderr)
        return 70


def _stopped(e: KeyboardInterrupt) -> int:
    """Exit status and message of a command stopped by Ctrl-C (130) or a signal (128 + N)."""
    if isinstance(e, Terminated):
        import signal
        print(f"cnnc: stopped by {signal.Signals(e.signum).name}", file=sys.stderr)
        return 128 + e.signum
    print("cnnc: interrupted", file=sys.stderr)
    return 130


def print_usage_error(e: UsageError) -> None:
    print(f"cnnc: error: {e.message}", file=sys.stderr)
    for note in e.notes:
        print(f"  note: {note}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
