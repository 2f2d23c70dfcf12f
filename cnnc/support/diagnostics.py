"""Diagnostics: errors and warnings that point at the source.

Every problem cnnc reports is a `Diagnostic` with a `Span` in the user's file.
They are collected (not raised one at a time) so that one run reports every
independent error of a file; `render` prints them in the familiar
``file:line:col: error: message`` form with the source line and a caret.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Sequence


@dataclass(frozen=True, slots=True)     # millions of them in a big file: no __dict__ each
class Span:
    """A region of the source: 1-based line and column, end column exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int

    def to(self, other: "Span") -> "Span":
        """The span from the start of self to the end of other."""
        return Span(self.line, self.column, other.end_line, other.end_column)


@dataclass
class Diagnostic:
    severity: str  # "error" or "warning"
    message: str
    span: Span | None = None
    notes: list[str] = field(default_factory=list)
    path: str = "<string>"
    cell: tuple[int, int] | None = None   # a notebook's (cell number, line in that cell)

    def __post_init__(self):
        if self.severity not in ("error", "warning"):
            raise UsageError(f"a Diagnostic's severity is 'error' or 'warning', got {self.severity!r}")
        if not isinstance(self.message, str):
            raise UsageError(f"a Diagnostic's message is a str, got {type(self.message).__name__}")

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def as_dict(self) -> dict:
        s = self.span
        return {
            "severity": self.severity,
            "message": self.message,
            "path": self.path,
            "line": s.line if s else None,
            "column": s.column if s else None,
            "end_line": s.end_line if s else None,
            "end_column": s.end_column if s else None,
            "notes": list(self.notes),
            **({"cell": self.cell[0], "cell_line": self.cell[1]} if self.cell else {}),
        }


class CnncError(Exception):
    """Raised with one or more diagnostics when a model cannot be built.

    `exit_code` follows the CLI convention: 1 for errors in the model itself,
    2 for bad usage or unreadable input.
    """

    def __init__(self, diagnostics: Sequence[Diagnostic], source: "Source | None" = None,
                 exit_code: int = 1):
        self.diagnostics = list(diagnostics)
        self.source = source
        self.exit_code = exit_code
        super().__init__(self.render(color=False))

    def render(self, color: bool = False) -> str:
        return render_all(self.diagnostics, self.source, color=color)


class UsageError(Exception):
    """Bad command-line usage or an unreadable file: exit status 2.

    The message and notes are kept terminal-safe: a control character or a bidi
    override from a user string (a path, a name) shows as its escape (`visible`)."""

    def __init__(self, message: str, notes: Sequence[str] = ()):
        self.message = visible(str(message))
        self.notes = [visible(str(n)) for n in notes]
        super().__init__(self.message)


def interruption(e: BaseException | None) -> KeyboardInterrupt | None:
    """The Ctrl-C (or signal, cli.Terminated) behind `e`, if a library wrapped it in its own
    error: onnxruntime and h5py turn whatever stops their import into an ImportError, which
    would otherwise read "not installed" or reach the user as an internal error."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def interrupted(e: BaseException) -> bool:
    """Whether `e` (an ImportError, say) came from a Ctrl-C (`interruption`)."""
    return interruption(e) is not None


class NumericWarning(RuntimeWarning):
    """Overflow in cnnc's arithmetic (outputs or a loss that are NaN or inf): one
    warning per call, instead of NumPy's RuntimeWarnings from deep inside."""


# --- terminal safety -----------------------------------------------------------
#
# User strings (layer and model names, paths, source lines, notebook cells) reach the
# terminal in diagnostics, tables and progress lines. Control characters (ESC
# sequences, \r, \b, BEL, NUL, C1 codes) and the invisible Unicode formatting
# characters that reorder or hide text (bidi overrides and isolates, marks, line
# separators, BOM) are shown as their Python escapes, and so are lone surrogates (what
# Python makes of a file name's bytes that are not UTF-8: no terminal can show them);
# every other character (é, 日本) stays as it is.

_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e"
                     "\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb\ud800-\udfff]")
_UNSAFE_OR_TAB = re.compile(_UNSAFE.pattern[:-1] + "\t]")


def _escape(ch: str) -> str:
    return ch.encode("unicode_escape").decode("ascii")


_SURROGATE = re.compile("[\ud800-\udfff]")


def first_surrogate(text: str) -> str | None:
    m = _SURROGATE.search(text)
    return m.group(0) if m else None


def path_text(path) -> str:
    """A file path as text that every sink can hold: bytes of the file name that are not
    UTF-8 (a latin-1 name, the byte 0xff) shown as \\xff, never a lone surrogate."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    text = str(text)
    if first_surrogate(text) is None:
        return text
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("ascii")
    return raw.decode("utf-8", "backslashreplace")


def visible(text: str, tabs: bool = False) -> str:
    """`text` safe to print: control and invisible formatting characters as escapes
    (ESC as \\x1b, a newline as \\n, U+202E as \\u202e). `tabs`: keep tabs."""
    if text.isascii() and text.isprintable():
        return text
    return (_UNSAFE if tabs else _UNSAFE_OR_TAB).sub(lambda m: _escape(m.group(0)), text)


def visible_lines(text: str) -> str:
    """`visible` line by line: the text's own line breaks kept."""
    return "\n".join(visible(line) for line in text.split("\n"))


def cell_width(text: str) -> int:
    """Terminal columns of `text` as printed by `visible`: wide (East Asian) characters
    take two, combining marks none, escapes their length."""
    if text.isascii() and text.isprintable():
        return len(text)
    return sum(_char_width(c) for c in text)


def _char_width(c: str) -> int:
    if _UNSAFE_OR_TAB.match(c):
        return len(_escape(c))
    if c.isascii():
        return 1
    if unicodedata.combining(c):
        return 0
    return 2 if unicodedata.east_asian_width(c) in "WF" else 1


@dataclass(frozen=True)
class Source:
    path: str
    text: str

    @cached_property
    def lines(self) -> list[str]:
        # Split on "\n" only: that is how the lexer counts lines. Once per source, not
        # per diagnostic: a file with 100,000 bad lines stays linear.
        return self.text.split("\n")

    def line_text(self, line: int) -> str:
        lines = self.lines
        return lines[line - 1].rstrip("\r") if 1 <= line <= len(lines) else ""


class Reporter:
    """Collects diagnostics for one source file."""

    def __init__(self, path: str = "<string>"):
        self.path = path
        self.diagnostics: list[Diagnostic] = []

    def error(self, message: str, span: Span | None = None, *notes: str) -> Diagnostic:
        return self._add("error", message, span, notes)

    def warning(self, message: str, span: Span | None = None, *notes: str) -> Diagnostic:
        return self._add("warning", message, span, notes)

    def _add(self, severity: str, message: str, span: Span | None, notes: Iterable[str]) -> Diagnostic:
        d = Diagnostic(severity, message, span, [n for n in notes if n], self.path)
        self.diagnostics.append(d)
        return d

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)

    def sorted(self) -> list[Diagnostic]:
        def key(d: Diagnostic):
            s = d.span
            return (s.line, s.column) if s else (0, 0)
        return sorted(self.diagnostics, key=key)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A 'did you mean' note, or '' when nothing is close.

    Case-insensitive matches win (conv2d -> Conv2D), then difflib's ratio.
    """
    import difflib  # only when there is something to suggest: keeps `cnnc check` fast

    folded: dict[str, str] = {}
    for c in candidates:       # the first spelling wins: a layer class before a function
        folded.setdefault(c.lower(), c)
    if word.lower() in folded and folded[word.lower()] != word:
        return f"did you mean '{folded[word.lower()]}'?"
    # A close match of a very different length is a different word ('sigmoid' is not a
    # typo of 'SGD'): suggesting it would send the user the wrong way.
    close = [c for c in difflib.get_close_matches(word.lower(), list(folded), n=3, cutoff=0.6)
             if abs(len(c) - len(word)) <= max(len(c), len(word)) // 2]
    if close:
        return f"did you mean '{folded[close[0]]}'?"
    return ""


# --- rendering ---------------------------------------------------------------

_COLORS = {"error": "\033[1;31m", "warning": "\033[1;35m", "note": "\033[1;36m",
           "bold": "\033[1m", "caret": "\033[1;32m", "reset": "\033[0m"}


def use_color(stream=None) -> bool:
    stream = stream or sys.stderr
    if os.environ.get("NO_COLOR") is not None:
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


# A source line longer than this is shown as a window around the caret.
LINE_WINDOW = 160
_BEFORE_CARET = 60
_ELLIPSIS = "..."


def _source_window(text: str, start: int, end: int) -> tuple[str, str, int]:
    """(the line as printed, the caret line's lead, the caret's width in columns) for
    the 0-based character span [start, end) of `text`: escaped, tabs kept so the caret
    lines up in any tab width, wide characters counted twice; a long line cut to a
    window around the span, `...` marking what is left out."""
    start = min(start, len(text))
    end = max(min(end, len(text)), start)
    a, b = 0, len(text)
    if len(text) > LINE_WINDOW:
        a = max(0, start - _BEFORE_CARET)
        b = min(len(text), a + LINE_WINDOW)
        if b == len(text):
            a = max(0, b - LINE_WINDOW)
    shown = ((_ELLIPSIS if a > 0 else "") + visible(text[a:b], tabs=True)
             + (_ELLIPSIS if b < len(text) else ""))
    lead = (" " * len(_ELLIPSIS) if a > 0 else "") + "".join(
        "\t" if ch == "\t" else " " * _char_width(ch) for ch in text[a:start])
    width = sum(1 if ch == "\t" else _char_width(ch) for ch in text[start:min(end, b)])
    return shown, lead, max(width, 1)


def render(d: Diagnostic, source: Source | None = None, color: bool = False) -> str:
    c = _COLORS if color else {k: "" for k in _COLORS}
    s = d.span
    path = visible(path_text(d.path))
    where = f"{path}:{s.line}:{s.column}" if s else path
    if s and d.cell:        # a notebook: `notebook.ipynb:cell 4:line 2:5`
        where = f"{path}:cell {d.cell[0]}:line {d.cell[1]}:{s.column}"
    out = [f"{c['bold']}{where}:{c['reset']} {c[d.severity]}{d.severity}:{c['reset']} "
           f"{c['bold']}{visible(d.message)}{c['reset']}"]
    if s and source is not None:
        text = source.line_text(s.line)
        if text or s.line <= len(source.lines):
            gutter = str(d.cell[1] if d.cell else s.line)
            pad = " " * len(gutter)
            start = max(s.column - 1, 0)
            end = s.end_column - 1 if s.end_line == s.line else len(text)
            shown, lead, width = _source_window(text, start, end)
            out.append(f" {gutter} | {shown}")
            out.append(f" {pad} | {lead}{c['caret']}^{'~' * (width - 1)}{c['reset']}")
    for n in d.notes:
        label = "help" if n.startswith(("did you mean", "use ", "add ", "remove ", "try ")) else "note"
        out.append(f"  {c['note']}{label}:{c['reset']} {visible(n)}")
    return "\n".join(out)


def render_all(diags: Sequence[Diagnostic], source: Source | None, color: bool = False) -> str:
    parts = [render(d, source, color) for d in diags]
    n_err = sum(d.is_error for d in diags)
    n_warn = len(diags) - n_err
    if n_err or n_warn:
        counts = []
        if n_err:
            counts.append(f"{n_err} error{'s' if n_err != 1 else ''}")
        if n_warn:
            counts.append(f"{n_warn} warning{'s' if n_warn != 1 else ''}")
        parts.append(" and ".join(counts) + " generated.")
    return "\n".join(parts)
