"""Reading a Keras script or notebook: the Python text, its cells, its syntax trees.

A `.py` file is one piece of code. A notebook's code cells are joined in order into
one text (so every diagnostic has one line number to sort by), and each line
remembers its cell and its line in that cell, for `notebook.ipynb:cell 4:line 2`.
IPython magics (`%...`, `!...`, a cell starting with `%%`) are left out, their lines
kept blank so that positions do not move. Nothing is ever executed.
"""

from __future__ import annotations

import ast
import json
import warnings
from dataclasses import dataclass, field

from cnnc.support.diagnostics import Reporter, Span, UsageError

MAX_SOURCE_BYTES = 16 * 1024 * 1024     # no real script or notebook's code is this large
ZOO_LINE = 10 ** 8                      # the Keras applications' code is numbered from here
_PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture", "%%prun")


@dataclass
class Chunk:
    """One piece of Python parsed on its own: the whole .py file, or one code cell."""

    first_line: int                 # its first line in the joined text (1-based)
    body: list[ast.stmt] = field(default_factory=list)


@dataclass
class ScriptSource:
    path: str
    text: str                                   # the joined Python text
    chunks: list[Chunk]
    cells: tuple[tuple[int, int], ...] | None   # per joined line: (cell number, line in cell)
    byte_columns: dict[int, str] = field(default_factory=dict)

    @property
    def is_notebook(self) -> bool:
        return self.cells is not None

    def span(self, node: ast.AST) -> Span:
        """The span of an ast node; ast counts columns in UTF-8 bytes, diagnostics in characters."""
        line, end_line = node.lineno, getattr(node, "end_lineno", None) or node.lineno
        col, end_col = node.col_offset, getattr(node, "end_col_offset", None)
        if end_col is None:
            end_col = col + 1
        return Span(line, self._char_col(line, col) + 1, end_line, self._char_col(end_line, end_col) + 1)

    def _char_col(self, line: int, col: int) -> int:
        text = self.byte_columns.get(line)
        if text is None:
            return col
        return len(text.encode("utf-8")[:col].decode("utf-8", errors="ignore"))

    def where(self, line: int) -> str:
        """'line 12', or 'cell 4, line 2' in a notebook."""
        if self.cells and 1 <= line <= len(self.cells):
            cell, local = self.cells[line - 1]
            return f"cell {cell}, line {local}"
        return f"line {line}"


def decode(data: bytes, path: str) -> str:
    if len(data) > MAX_SOURCE_BYTES:
        raise UsageError(f"cannot read '{path}': {len(data)} bytes is more than the "
                         f"{MAX_SOURCE_BYTES // (1024 * 1024)} MiB cnnc reads from a script")
    if b"\x00" in data[:4096]:
        raise UsageError(f"cannot read '{path}': it is a binary file, not Python text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UsageError(f"cannot read '{path}': not UTF-8 text (byte {e.start})") from None


def read_python(path: str, text: str, rep: Reporter) -> ScriptSource:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    src = ScriptSource(path, text, [], None)
    _note_non_ascii(src)
    src.chunks.append(_parse_chunk(text, 1, src, rep))
    return src


def read_notebook(path: str, text: str, rep: Reporter) -> ScriptSource:
    try:
        nb = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise UsageError(f"cannot read '{path}': not a Jupyter notebook (invalid JSON: {e})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if cells is None and isinstance(nb, dict) and isinstance(nb.get("worksheets"), list):
        cells = [c for ws in nb["worksheets"] if isinstance(ws, dict)
                 for c in ws.get("cells", []) or []]          # nbformat 3
    if not isinstance(cells, list):
        raise UsageError(f"cannot read '{path}': not a Jupyter notebook (no list of cells)")
    lines: list[str] = []
    where: list[tuple[int, int]] = []
    pieces: list[tuple[int, str]] = []
    unreadable: list[int] = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or "cell_type" not in cell:
            unreadable.append(number)
            continue
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", cell.get("input", ""))
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            unreadable.append(number)
            continue
        cell_lines = _strip_magics(source.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
        pieces.append((len(lines) + 1, "\n".join(cell_lines)))
        for k, line in enumerate(cell_lines, start=1):
            lines.append(line)
            where.append((number, k))
    src = ScriptSource(path, "\n".join(lines), [], tuple(where))
    if unreadable:
        shown = ", ".join(map(str, unreadable[:5])) + (" ..." if len(unreadable) > 5 else "")
        rep.warning(f"{len(unreadable)} cell{'s' if len(unreadable) > 1 else ''} of this notebook "
                    f"{'are' if len(unreadable) > 1 else 'is'} not a cell cnnc can read (cell "
                    f"{shown}: no cell_type, or a source that is not text); left out", None)
    _note_non_ascii(src)
    for first, code in pieces:
        src.chunks.append(_parse_chunk(code, first, src, rep))
    return src


def _strip_magics(lines: list[str]) -> list[str]:
    """Magics and shell escapes become blank lines; a cell magic other than the
    timing ones makes the whole cell something other than Python."""
    first = next((l.strip() for l in lines if l.strip()), "")
    if first.startswith("%%") and not first.startswith(_PYTHON_CELL_MAGICS):
        return [""] * len(lines)
    out = []
    for line in lines:
        s = line.lstrip()
        if s.startswith(("%", "!")) or (s.endswith("?") and not s.startswith("#")
                                         and "(" not in s and "=" not in s):
            out.append("")
        else:
            out.append(line)
    return out


def _note_non_ascii(src: ScriptSource) -> None:
    for k, line in enumerate(src.text.split("\n"), start=1):
        if not line.isascii():
            src.byte_columns[k] = line


def _parse_chunk(code: str, first_line: int, src: ScriptSource, rep: Reporter) -> Chunk:
    chunk = Chunk(first_line)
    if "\0" in code:                          # Python's own message has no position
        at = code.index("\0")
        line = first_line + code.count("\n", 0, at)
        col = at - (code.rfind("\n", 0, at) + 1) + 1
        what = "notebook cell" if src.cells else "file"
        rep.error(f"this {what} cannot be read as Python: it holds a NUL character",
                  Span(line, col, line, col + 1))
        return chunk
    try:
        with warnings.catch_warnings():     # Python's own complaints (invalid escapes)
            warnings.simplefilter("ignore")  # are not about the model; never on the terminal
            tree = ast.parse(code)
    except SyntaxError as e:
        line = (e.lineno or 1) + first_line - 1
        col = max(e.offset or 1, 1)
        what = "this notebook cell is not valid Python" if src.cells else "this file is not valid Python"
        msg = e.msg
        if "digits" in msg and "integer" in msg:      # not Python's advice about sys.set_int_max_str_digits
            msg = "a number too long for Python to read (over 4,300 digits)"
        rep.error(f"{what}: {msg}", Span(line, col, line, col + 1),
                  "cnnc reads Keras code without running it, but it must be Python 3")
        return chunk
    except (ValueError, RecursionError, MemoryError) as e:
        what = "notebook cell" if src.cells else "file"
        reason = "it nests too deeply" if not isinstance(e, ValueError) else str(e)
        if "int_max_str_digits" in reason or "digits" in reason and "integer" in reason:
            reason = "it holds a number too long for Python to read (over 4,300 digits)"

        rep.error(f"this {what} cannot be read as Python: {reason}",
                  Span(first_line, 1, first_line, 2))
        return chunk
    if first_line != 1:
        ast.increment_lineno(tree, first_line - 1)
    chunk.body = tree.body
    return chunk


class SourceMap:
    """One line numbering for the script and the sibling modules it imports: each module
    read is appended after the script (its syntax tree's lines moved there), so every
    node has one position, and diagnostics in a module can be traced back to the
    script's line that ran it (`origins`)."""

    def __init__(self, main: ScriptSource):
        self.main = main
        self.lines = main.text.split("\n")
        self.main_lines = len(self.lines)
        self.parts: list[tuple[int, ScriptSource, str]] = []    # (line offset, source, shown path)
        self.origins: dict[int, Span] = {}                     # a module's line -> the script's span
        self._spans: dict[int, tuple] = {}                     # id(node) -> (node, span), computed once

    def add(self, src: ScriptSource, shown: str) -> int:
        """Append a module; its lines are numbered from the offset returned + 1."""
        base = len(self.lines)
        self.lines.extend(src.text.split("\n"))
        self.parts.append((base, src, shown))
        return base

    def part(self, line: int) -> tuple[int, ScriptSource, str] | None:
        if line <= self.main_lines:
            return None
        found = None
        for p in self.parts:
            if p[0] < line:
                found = p
            else:
                break
        return found

    def span(self, node: ast.AST) -> Span:
        hit = self._spans.get(id(node))
        if hit is not None and hit[0] is node:
            return hit[1]
        s = self._span(node)
        self._spans[id(node)] = (node, s)
        return s

    def _span(self, node: ast.AST) -> Span:
        p = self.part(node.lineno)
        if p is None:
            return self.main.span(node)
        base, src, _ = p
        line, end_line = node.lineno, getattr(node, "end_lineno", None) or node.lineno
        col, end_col = node.col_offset, getattr(node, "end_col_offset", None)
        if end_col is None:
            end_col = col + 1
        return Span(line, src._char_col(line - base, col) + 1, end_line,
                    src._char_col(end_line - base, end_col) + 1)

    def snippet(self, node: ast.AST, limit: int = 60) -> str:
        n = getattr(node, "lineno", 0)
        line = self.lines[n - 1] if 0 < n <= len(self.lines) else ""
        if getattr(node, "end_lineno", n) == n:
            text = line.encode("utf-8")[node.col_offset:node.end_col_offset].decode("utf-8", "ignore")
        else:
            text = line.encode("utf-8")[node.col_offset:].decode("utf-8", "ignore") + " ..."
        text = " ".join(text.split())
        return text if len(text) <= limit else text[:limit - 3] + "..."

    def where(self, line: int) -> str:
        p = self.part(line)
        if p is None:
            return self.main.where(line)
        return f"{p[2]}, line {line - p[0]}"

    def line_text(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""
