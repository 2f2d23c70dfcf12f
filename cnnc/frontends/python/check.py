"""Checking a script: read it, follow it, and check every model it builds with
cnnc's own resolve -> infer -> lint, as a .cnn file is checked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cnnc.frontends.python.emit import emit
from cnnc.frontends.python.evaluator import Evaluator
from cnnc.frontends.python.source import ScriptSource, read_notebook, read_python
from cnnc.support.diagnostics import Diagnostic, Reporter, Source, Span, UsageError

SUFFIXES = (".py", ".ipynb")


def is_script(path) -> bool:
    return str(path).lower().endswith(SUFFIXES)


@dataclass
class FoundModel:
    """One model of a script: its variable, line and check result."""

    var: str
    line: int
    kind: str
    checked: object = field(repr=False)   # frontends.cnn.Checked
    settings_only: bool = False      # its only errors are in compile()/fit(): shapes are good
    where: str = ""
    nested: bool = False             # called as a layer of another model (a part of it)

    def as_dict(self) -> dict:
        return {"variable": self.var, "line": self.line, "where": self.where, "kind": self.kind,
                "ok": self.checked.ok}


@dataclass
class ScriptCheck:
    source: Source
    models: list[FoundModel]
    diagnostics: list[Diagnostic]      # the script's and every model's, sorted, once each
    skipped: list[tuple[int, str]] = field(default_factory=list)
    script: ScriptSource | None = None

    def select(self, name: str | None) -> FoundModel:
        """The model `--model NAME` names (its variable, or variable:line), or the only one."""
        if name is None:
            whole = [m for m in self.models if not m.nested]   # parts of another model aside
            if len(self.models) == 1 or len(whole) == 1:
                return self.models[0] if len(self.models) == 1 else whole[0]
            if not self.models:
                raise UsageError(f"'{self.source.path}' builds no Keras model that cnnc can follow",
                                 ["run `cnnc check` on it to see why"])
            raise UsageError(f"'{self.source.path}' builds {len(self.models)} models; choose one "
                             "with --model NAME", [_listing(self.models)])
        hits = [m for m in self.models if m.var == name or f"{m.var}:{m.line}" == name
                or _cell_key(name) == _cell_key(f"{m.var}:{m.where}")
                or _cell_key(name) == _cell_key(f"{m.var}:{m.where.split(',')[0]}")]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            last = hits[-1]
            where = last.where.split(",")[0].replace(" ", "") if last.where.startswith("cell") \
                else str(last.line)
            raise UsageError(f"several models are called '{name}'; add where, e.g. "
                             f"--model {name}:{where}", [_listing(self.models)])
        raise UsageError(f"'{self.source.path}' has no model '{name}'", [_listing(self.models)])


def _cell_key(text: str) -> str:
    """'model:cell 5, line 1', 'model:cell5:line1', 'model:cell 5': one spelling."""
    return re.sub(r"[\s,:]+", "", text.lower())


def _listing(models: list[FoundModel]) -> str:
    return "models: " + ", ".join(f"{m.var} ({m.where})" for m in models)


def parse_input_shape(text: str | None) -> tuple | None:
    """`--input-shape 28,28,1` (or `(28, 28, 1)`, `None,9`): one sample's shape."""
    if text is None:
        return None
    parts = [p.strip() for p in text.strip().strip("()[]").split(",") if p.strip()]
    out = []
    for p in parts:
        if p.lower() == "none":
            out.append(None)
        elif p.isdigit() and 0 < int(p) <= 2 ** 31:
            out.append(int(p))
        else:
            raise UsageError(f"--input-shape takes positive sizes separated by commas, got '{text}'",
                             ["e.g. --input-shape 28,28,1 (one sample, without the batch size)"])
    if not out:
        raise UsageError("--input-shape needs at least one size, e.g. --input-shape 28,28,1")
    return tuple(out)


def check_script(path: str, text: str, model: str | None = None,
                 input_shape: tuple | None = None, sizes=None) -> ScriptCheck:
    """Every model the script builds, checked; `input_shape` gives the sizes the script
    takes from data (and fills an input's open sizes), `sizes` fix open dimensions by
    name (--define)."""
    from cnnc.analysis.infer import infer
    from cnnc.analysis.lint import lint
    from cnnc.analysis.resolve import resolve
    from cnnc.frontends.cnn import Checked

    rep = Reporter(path)
    if path.lower().endswith(".ipynb"):
        src = read_notebook(path, text, rep)
    else:
        src = read_python(path, text, rep)
    source = Source(path, src.text)
    ev = Evaluator(src, rep, input_shape)
    ev.run()
    found: list[FoundModel] = []
    seen: set = set()
    all_diags: list[Diagnostic] = list(rep.diagnostics)
    unnamed = 0
    for m in ev.models:
        key = (m.span, m.var)
        if key in seen:
            continue
        seen.add(key)
        if m.var is None:
            unnamed += 1
        var = m.var or f"model_{unnamed}"
        mrep = Reporter(path)
        out = emit(m, ev.nodes, input_shape)
        for msg, span, notes in out.problems + out.settings_problems:
            mrep.error(msg, span, *notes)
        stmts = out.statements if not out.problems else []
        ir = out.regroup(resolve(stmts, mrep, path, dict(sizes or {}), input_shape,
                                 only_open_inputs=True))
        analysis = infer(ir, mrep)
        if not mrep.has_errors:
            lint(ir, analysis, mrep)
        diags = mrep.sorted()
        errors = [d for d in diags if d.is_error]
        settings_only = bool(errors) and not out.problems and all(
            d.span is not None and any(_inside(d.span, s) for s in out.settings_spans) for d in errors)
        checked = Checked(source, ir, analysis, tuple(diags))
        found.append(FoundModel(var, m.span.line, m.kind, checked, settings_only,
                                src.where(m.span.line), nested=m.used_as_layer))
        all_diags.extend(diags)
    if not ev.models and not rep.has_errors:
        all_diags.append(Diagnostic("error", "found no Keras model in this file", None, [
            "cnnc looks for keras.Sequential(...), keras.Model(inputs, outputs) and "
            "model.add(...) in the code"], path))
    diags = _unique_sorted(all_diags)
    if src.is_notebook:
        for d in diags:
            _locate_in_cell(d, src)
        for f in found:
            for d in f.checked.diagnostics:
                _locate_in_cell(d, src)
    from cnnc.frontends.cnn import check_sizes_used
    check_sizes_used(sizes, [f.checked.ir for f in found], path)
    return ScriptCheck(source, found, diags, ev.skipped, src)


def _inside(span: Span, outer: Span) -> bool:
    return (outer.line, outer.column) <= (span.line, span.column) and \
        (span.end_line, span.end_column) <= (outer.end_line, outer.end_column)


def _unique_sorted(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen = set()
    out = []
    for d in diags:
        s = d.span
        key = (d.severity, d.message, (s.line, s.column) if s else None)
        if key in seen:
            continue
        seen.add(key)
        out.append(d)
    return sorted(out, key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0))


_LINE = re.compile(r"\bline (\d+)\b")


def _locate_in_cell(d: Diagnostic, src: ScriptSource) -> None:
    """A notebook's diagnostic names its cell and the line in that cell."""
    if getattr(d, "cell", None) is not None:
        return
    if d.span is not None and src.cells and 1 <= d.span.line <= len(src.cells):
        d.cell = src.cells[d.span.line - 1]

    def local(m: re.Match) -> str:
        n = int(m.group(1))
        return src.where(n) if 1 <= n <= len(src.cells or ()) else m.group(0)
    d.message = _LINE.sub(local, d.message)
    d.notes = [_LINE.sub(local, n) for n in d.notes]
