"""Diagnostics: errors and warnings that point at the source.

Every problem cnnc reports is a `Diagnostic` with a `Span` in the user's file.
They are collected (not raised one at a time) so that one run reports every
independent error of a file; `render` prints them in the familiar
``file:line:col: error: message`` form with the source line and a caret.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Sequence


@dataclass(frozen=True)
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
    """Bad command-line usage or an unreadable file: exit status 2."""

    def __init__(self, message: str, notes: Sequence[str] = ()):
        self.message = message
        self.notes = list(notes)
        super().__init__(message)


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

    candidates = list(candidates)
    folded = {c.lower(): c for c in candidates}
    if word.lower() in folded and folded[word.lower()] != word:
        return f"did you mean '{folded[word.lower()]}'?"
    close = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=0.6)
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


def render(d: Diagnostic, source: Source | None = None, color: bool = False) -> str:
    c = _COLORS if color else {k: "" for k in _COLORS}
    s = d.span
    where = f"{d.path}:{s.line}:{s.column}" if s else d.path
    if s and d.cell:        # a notebook: `notebook.ipynb:cell 4:line 2:5`
        where = f"{d.path}:cell {d.cell[0]}:line {d.cell[1]}:{s.column}"
    out = [f"{c['bold']}{where}:{c['reset']} {c[d.severity]}{d.severity}:{c['reset']} "
           f"{c['bold']}{d.message}{c['reset']}"]
    if s and source is not None:
        text = source.line_text(s.line)
        if text or s.line <= source.text.count("\n") + 1:
            gutter = str(d.cell[1] if d.cell else s.line)
            pad = " " * len(gutter)
            start = max(s.column - 1, 0)
            end = s.end_column - 1 if s.end_line == s.line else len(text)
            width = max(end - start, 1)
            out.append(f" {gutter} | {text}")
            # Keep the source's tabs so the caret lines up in any tab width.
            lead = "".join("\t" if ch == "\t" else " " for ch in text[:start])
            out.append(f" {pad} | {lead}{c['caret']}^{'~' * (width - 1)}{c['reset']}")
    for n in d.notes:
        label = "help" if n.startswith(("did you mean", "use ", "add ", "remove ", "try ")) else "note"
        out.append(f"  {c['note']}{label}:{c['reset']} {n}")
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
