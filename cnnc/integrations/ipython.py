"""The IPython/Jupyter extension: `%load_ext cnnc`.

Before each cell runs, the cells run so far and the cell about to run are read as one
notebook (with cnnc's Keras front end: read with `ast`, never run) and every model they
build is checked. A cell that builds a model with errors, or uses one (names its
variable: `model.fit(...)`), is stopped before it runs, before TensorFlow starts or
training begins, and the errors are shown under it with their cell and line. Warnings
of the models a cell builds are shown and the cell runs. A cell that cannot touch a model
(it names neither Keras, nor a model's variable, nor anything that a cell naming Keras
imported, defined or assigned) is not checked: it runs without delay.

    %cnnc summary [NAME]     cnnc's summary of a model built so far (default: the last one)
    %cnnc plot [NAME]        its graph, drawn inline (SVG with Graphviz; else Mermaid text)
    %cnnc warn               show errors but let cells run
    %cnnc stop               stop cells whose models have errors (the default)
    %cnnc off | on           stop checking | check again
    %cnnc                    what the extension knows: the mode and the models so far

A cell that ran and failed on a Python syntax error is left out (it ran nothing); a cell
cnnc stopped stays in: its model is what the notebook says, and a later cell that uses it
is stopped too, until a cell builds it again without errors.
"""

from __future__ import annotations

import ast
import gc
import json
import re
import shlex
import sys
from dataclasses import dataclass, field

from IPython.core.error import InputRejected

from cnnc.support.diagnostics import Diagnostic, Source, Span, render

MODES = ("stop", "warn", "off")
# A Sequential model without an input shape is built by Keras at its first fit(), from the
# data: a cell that defines one is fine, and so is a fit on data cnnc cannot see.
_DEFERRED = "input shape is not given"


@dataclass
class CellCheck:
    """The notebook so far, checked: its models and where its lines come from."""

    script: object                    # frontends.python ScriptCheck
    counts: list[int]                 # notebook cell i+1 -> its execution count (In [n])
    texts: list[str]                  # the cells' raw text


class ModelErrors(InputRejected):
    """Raised to stop a cell whose models have errors (IPython's InputRejected: the cell
    is not run); shown as cnnc's diagnostics, without a Python traceback."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def _render_traceback_(self) -> list[str]:
        return self.text.split("\n")


@dataclass
class Extension:
    shell: object
    mode: str = "stop"
    _pending: tuple[int, str] | None = None        # (cell number, why it is stopped)
    # execution count -> None (not Python: it ran nothing), or the names its top level binds
    # when it mentions Keras (its imports, functions, classes), else an empty set
    _parses: dict[int, frozenset | None] = field(default_factory=dict)
    _model_vars: set = field(default_factory=set)       # every model variable seen so far
    _last: tuple[tuple, CellCheck] | None = None

    # --- the events ----------------------------------------------------------------------

    def pre_run_cell(self, info) -> None:
        self._pending = None
        if self.mode == "off":
            return
        try:
            self._before(info)
        except Exception as e:  # noqa: BLE001 - a bug in cnnc must never stop the user's cell
            print(f"cnnc: could not check this cell ({type(e).__name__}: {e}); it runs unchecked",
                  file=sys.stderr)

    def post_run_cell(self, result) -> None:
        self._pending = None

    def _before(self, info) -> None:
        names = _names(info.raw_cell)
        if not self._relevant(info.raw_cell, names):
            return
        number = self._number(info)
        check = self.check(info.raw_cell, number)
        if check is None:
            return
        stop, show = self._verdict(check, names)
        if stop and self.mode == "stop":
            self._pending = (number, self._render(check, stop + show, stopped=True))
        elif stop or show:
            print(self._render(check, stop + show, stopped=False), file=sys.stderr)

    def _number(self, info) -> int:
        # IPython counts the cell before it triggers pre_run_cell
        count = self.shell.execution_count
        return count - 1 if getattr(info, "store_history", True) else count

    # --- checking ----------------------------------------------------------------------------

    def history(self) -> list[tuple[int, str]]:
        """(execution count, raw text) of the cells run so far that were Python."""
        raw = list(getattr(self.shell.history_manager, "input_hist_raw", []) or [])
        out = []
        for n, text in enumerate(raw):
            if n == 0 or not isinstance(text, str) or not text.strip():
                continue
            if self._ran(n, text):
                out.append((n, text))
        return out

    def _ran(self, count: int, text: str) -> bool:
        """Whether a past cell was Python that compiled (a cell with a syntax error ran nothing)."""
        return self._parsed(count, text) is not None

    def _parsed(self, count: int, text: str) -> frozenset | None:
        if count not in self._parses:
            tree = _python(text)
            self._parses[count] = None if tree is None else (
                _bound(tree) if "keras" in text else frozenset())
        return self._parses[count]

    def _relevant(self, cell: str, names: set[str]) -> bool:
        """Can this cell build or use a model? It mentions Keras, a model's variable, or a
        name that a cell naming Keras imported, defined or assigned (a builder function, a
        layer class imported from Keras, a model, a tensor). Other cells are not checked."""
        if "keras" in cell:
            return True
        if names & self._model_vars:
            return True
        raw = list(getattr(self.shell.history_manager, "input_hist_raw", []) or [])
        return any(names & (self._parsed(n, text) or frozenset())
                   for n, text in enumerate(raw) if n and isinstance(text, str))

    def check(self, current: str | None, number: int | None) -> CellCheck | None:
        """The notebook so far (and `current`, the cell about to run) checked as one."""
        cells = self.history()
        if current is not None:
            cells.append((number if number is not None else 0, current))
        if not any("keras" in text for _, text in cells):
            return None
        key = tuple(cells)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        from cnnc.frontends.python import check_script
        nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
              "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": n,
                         "source": text} for n, text in cells]}
        sc = _quickly(check_script, "notebook.ipynb", json.dumps(nb))
        self._model_vars.update(m.var for m in sc.models)
        result = CellCheck(sc, [n for n, _ in cells], [t for _, t in cells])
        self._last = (key, result)
        return result

    def _verdict(self, check: CellCheck, used: set[str]) -> tuple[list, list]:
        """(errors that stop the cell, warnings to show) for the cell about to run: the
        errors of the models it builds or uses, the warnings of those it builds."""
        current = len(check.texts)
        stop: list[Diagnostic] = []
        show: list[Diagnostic] = []
        for m in latest_models(check.script):
            built_here = _cell_of(check.script, m.line) == current
            if not (built_here or m.var in used):
                continue
            diags = [d for d in m.checked.diagnostics if _DEFERRED not in d.message]
            if any(d.is_error for d in diags):
                stop += [d for d in diags if d not in stop]
            elif built_here:
                show += [d for d in diags if d not in show]
        return stop, show

    # --- showing -------------------------------------------------------------------------------

    def _render(self, check: CellCheck, diags: list[Diagnostic], stopped: bool) -> str:
        parts = [self._one(check, d) for d in diags]
        errors = sum(d.is_error for d in diags)
        if stopped:
            parts.append(f"cnnc: this cell was not run: {errors} error{'s' if errors != 1 else ''} in "
                         "the models it builds or uses (%cnnc warn lets such cells run)")
        return "\n".join(parts)

    def _one(self, check: CellCheck, d: Diagnostic) -> str:
        """A diagnostic told in the notebook's terms: `In [5]:3:12: error: ...`."""
        if d.cell is None or d.span is None or not 1 <= d.cell[0] <= len(check.counts):
            return render(d)
        index, line = d.cell
        text = check.texts[index - 1]
        shift = d.span.line - line
        span = Span(line, d.span.column, d.span.end_line - shift, d.span.end_column)
        local = Diagnostic(d.severity, d.message, span, list(d.notes), f"In [{check.counts[index - 1]}]")
        return render(local, Source(local.path, text))

    # --- the magic ------------------------------------------------------------------------------

    def magic(self, line: str) -> None:
        from IPython.core.error import UsageError
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"%cnnc: {e}") from None
        command, rest = (words[0], words[1:]) if words else ("status", [])
        if command in MODES or command == "on":
            self.mode = "stop" if command == "on" else command
            print(f"cnnc: {_MODE_TEXT[self.mode]}")
        elif command == "status":
            self._status()
        elif command in ("summary", "plot"):
            if len(rest) > 1:
                raise UsageError(f"%cnnc {command} takes one model's name at most, got {' '.join(rest)}")
            model = self._model(rest[0] if rest else None)
            (self._summary if command == "summary" else self._plot)(model)
        else:
            raise UsageError(f"%cnnc: unknown command {command!r}; use summary, plot, stop, warn, "
                             "off, on (or nothing, for the status)")

    def _status(self) -> None:
        check = self.check(None, None)
        models = latest_models(check.script) if check else []
        print(f"cnnc: {_MODE_TEXT[self.mode]}")
        for m in models:
            state = "ok" if m.checked.ok else "has errors"
            print(f"  {m.var}: {m.kind}, {_where(check, m.line)}, {state}")
        if not models:
            print("  no Keras model built so far")

    def _model(self, name: str | None):
        from IPython.core.error import UsageError
        check = self.check(None, None)
        models = latest_models(check.script) if check else []
        if not models:
            raise UsageError("cnnc: the cells run so far build no Keras model")
        if name is None:
            whole = [m for m in models if not m.nested] or models
            return check, max(whole, key=lambda m: m.line)
        hits = [m for m in models if m.var == name]
        if not hits:
            from cnnc.support.diagnostics import did_you_mean
            hint = did_you_mean(name, [m.var for m in models])
            raise UsageError(f"cnnc: no model '{name}' built so far"
                             + (f"; {hint}" if hint else f" (models: {', '.join(m.var for m in models)})"))
        return check, hits[0]

    def _summary(self, found) -> None:
        check, m = found
        if not m.checked.ok and not m.settings_only:
            print(self._render(check, [d for d in m.checked.diagnostics], stopped=False), file=sys.stderr)
            return
        from cnnc.backends.report.summary import render as summary
        print(f"model '{m.var}' ({_where(check, m.line)})")
        print(summary(m.checked.analysis, "text", diagnostics=m.checked.diagnostics))

    def _plot(self, found) -> None:
        check, m = found
        if not m.checked.ok and not m.settings_only:
            print(self._render(check, list(m.checked.diagnostics), stopped=False), file=sys.stderr)
            return
        from IPython.display import display

        from cnnc.backends.report import plot
        dot = plot.find_dot()
        if dot is not None:
            svg = plot.render(m.checked.analysis, "svg", dot=dot).decode("utf-8")
            display({"image/svg+xml": svg, "text/plain": f"<graph of model '{m.var}'>"}, raw=True)
            return
        text = plot.to_mermaid(m.checked.analysis).rstrip("\n")
        display({"text/markdown": f"```mermaid\n{text}\n```", "text/plain": text}, raw=True)


_MODE_TEXT = {
    "stop": "checking models before each cell; a cell whose models have errors is not run",
    "warn": "checking models before each cell; errors are shown and the cell runs",
    "off": "not checking (%cnnc on checks again)",
}


def latest_models(sc) -> list:
    """The models the notebook's variables hold now: for each variable, the last model
    bound to it (a model built again replaces the old one)."""
    latest: dict[str, object] = {}
    for m in sc.models:
        if m.var not in latest or m.line >= latest[m.var].line:
            latest[m.var] = m
    return sorted(latest.values(), key=lambda m: m.line)


def _quickly(check, *args):
    """A check with the cycle collector off, as the command line runs it (the checker
    makes many small acyclic objects; collecting cycles among them only costs time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return check(*args)
    finally:
        if was_enabled:
            gc.enable()


def _cell_of(sc, line: int) -> int | None:
    cells = sc.script.cells if sc.script is not None else None
    return cells[line - 1][0] if cells and 1 <= line <= len(cells) else None


def _where(check: CellCheck, line: int) -> str:
    cells = check.script.script.cells
    if cells and 1 <= line <= len(cells):
        index, local = cells[line - 1]
        return f"In [{check.counts[index - 1]}], line {local}"
    return f"line {line}"


_MAGIC_LINE = re.compile(r"^\s*(?:[%!]|[\w.]+\s*=\s*[%!])|\?\s*$")


def _python(cell: str) -> ast.Module | None:
    """A cell's syntax tree, IPython's magics and shell escapes left out (their lines
    blanked, as cnnc's notebook reader does; IPython's own transformer is far slower on a
    long cell); None when the cell is not Python (it failed on a syntax error)."""
    try:
        return ast.parse(cell)
    except (SyntaxError, ValueError):
        pass
    if cell.lstrip().startswith("%%"):
        return ast.parse("")            # a cell magic: other code than Python
    lines = ["" if _MAGIC_LINE.search(line) else line for line in cell.split("\n")]
    try:
        return ast.parse("\n".join(lines))
    except (SyntaxError, ValueError):
        return None


def _names(cell: str) -> set[str]:
    """The names a cell's code reads or binds (a cell that does not parse: its words)."""
    tree = _python(cell)
    if tree is None:
        return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", cell))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _bound(tree: ast.Module) -> frozenset:
    """The names a cell's top level binds: imports, functions, classes, assignments."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return frozenset(names)


def load(shell) -> Extension:
    """Register the extension with an IPython shell (`%load_ext cnnc` calls this)."""
    ext = Extension(shell)
    shell.events.register("pre_run_cell", ext.pre_run_cell)
    shell.events.register("post_run_cell", ext.post_run_cell)
    shell.ast_transformers.append(_Stopper(ext))
    shell.register_magic_function(ext.magic, magic_kind="line", magic_name="cnnc")
    shell._cnnc_extension = ext
    return ext


def unload(shell) -> None:
    ext = getattr(shell, "_cnnc_extension", None)
    if ext is None:
        return
    shell.events.unregister("pre_run_cell", ext.pre_run_cell)
    shell.events.unregister("post_run_cell", ext.post_run_cell)
    shell.ast_transformers[:] = [t for t in shell.ast_transformers
                                 if not (isinstance(t, _Stopper) and t.ext is ext)]
    del shell._cnnc_extension


class _Stopper(ast.NodeTransformer):
    """IPython's way to stop a cell before it runs: an AST transformer that raises
    InputRejected (the cell is then not executed, and the error is shown)."""

    def __init__(self, ext: Extension):
        self.ext = ext

    def visit(self, node):
        pending, self.ext._pending = self.ext._pending, None
        if pending is not None:
            raise ModelErrors(pending[1])
        return node
