"""Checking a script: read it, follow it (once per side of the conditions cnnc cannot
know: explore.py), and check every model it builds with cnnc's own resolve -> infer ->
lint, as a .cnn file is checked.

A model is identified by where it is made and the variable it is bound to; when its
layers differ between runs (a size decided by a condition), each version is a model of
its own, with the condition it is built under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cnnc.frontends.python import entry as entries
from cnnc.frontends.python.emit import emit
from cnnc.frontends.python.evaluator import Evaluator
from cnnc.frontends.python.explore import conditions, describe, explore
from cnnc.frontends.python.modules import Project
from cnnc.frontends.python.source import ScriptSource, SourceMap, read_notebook, read_python
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
    settings_only: bool = False      # its only errors are in settings or the script's: shapes are good
    where: str = ""
    nested: bool = False             # called as a layer of another model (a part of it)
    condition: str = ""              # the conditions it is built under ('' always)
    offered: str | None = None       # the call cnnc made itself (`unet()`), not the file
    variant: int = 0                 # 1, 2 ...: versions of one model that differ by condition

    def as_dict(self) -> dict:
        return {"variable": self.var, "line": self.line, "where": self.where, "kind": self.kind,
                "ok": self.checked.ok, "condition": self.condition or None, "called_by_cnnc": self.offered}

    @property
    def key(self) -> str:
        return f"{self.var}#{self.variant}" if self.variant else self.var


@dataclass
class ScriptCheck:
    source: Source
    models: list[FoundModel]
    diagnostics: list[Diagnostic]      # the script's and every model's, sorted, once each
    skipped: list[tuple[int, str]] = field(default_factory=list)
    script: ScriptSource | None = None
    builders: list = field(default_factory=list)     # (signature, line, why) needing arguments

    def select(self, name: str | None) -> FoundModel:
        """The model `--model NAME` names (its variable, variable:line, a call cnnc made,
        NAME#K for the K-th version of a model built differently under conditions), or
        the only one."""
        if name is None:
            whole = [m for m in self.models if not m.nested]   # parts of another model aside
            if len(self.models) == 1 or len(whole) == 1:
                return self.models[0] if len(self.models) == 1 else whole[0]
            if not self.models:
                raise UsageError(f"'{self.source.path}' builds no Keras model that cnnc can follow",
                                 ["run `cnnc check` on it to see why"])
            raise UsageError(f"'{self.source.path}' builds {len(self.models)} models; choose one "
                             "with --model NAME", [_listing(self.models)])
        hits = [m for m in self.models if m.var == name or m.key == name or f"{m.var}:{m.line}" == name
                or f"{m.var}:{m.line}#{m.variant}" == name
                or _cell_key(name) == _cell_key(f"{m.var}:{m.where}")
                or _cell_key(name) == _cell_key(f"{m.var}:{m.where.split(',')[0]}")]
        if len(hits) > 1 and len({(m.var, m.line) for m in hits}) == 1 and all(m.variant for m in hits):
            raise UsageError(f"the model '{name}' is built differently under conditions cnnc cannot "
                             f"know; add which, e.g. --model {hits[0].var}#{hits[-1].variant}",
                             [_listing(hits)])
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
    return "models: " + ", ".join(f"{m.key} ({m.where})" for m in models)


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


@dataclass
class _Result:
    """What one run found: its models emitted, its script diagnostics."""

    ev: Evaluator
    rep: Reporter
    emitted: list       # (identity, ModelVal, Emitted, fingerprint)


def check_script(path: str, text: str, model: str | None = None,
                 input_shape: tuple | None = None, sizes=None) -> ScriptCheck:
    """Every model the script builds, checked; `input_shape` gives the sizes the script
    takes from data (and fills an input's open sizes), `sizes` fix open dimensions by
    name (--define)."""
    rep = Reporter(path)
    src = read_notebook(path, text, rep) if path.lower().endswith(".ipynb") else read_python(path, text, rep)
    smap = SourceMap(src)
    real = Path(path)
    project = Project(real.resolve() if path and real.is_file() else None, smap, rep)
    call = None
    if entries.looks_like_call(model):
        call = entries.parse_call(model, smap)
    entry = entries.call_entry(call, model) if call is not None else entries.builder_entry

    def run_once(decisions, limit):
        own = Reporter(path)
        ev = Evaluator(smap, own, input_shape, decisions, project)
        if limit is not None:
            ev.step_limit = min(ev.step_limit, max(limit, 1))
        ev.run(src.chunks, entry)
        emitted = [_emit(m, ev, input_shape, k) for m, k in _unique(ev.models)]
        # what a run costs: its steps, and its layers and tensors (each is checked later)
        return _Result(ev, own, emitted), ev.steps + 30 * len(ev.nodes), not ev.out_of_steps

    runs, untried = explore(run_once)
    if call is not None:
        _check_call(runs[0].result.ev, model)
    diags: list[Diagnostic] = list(rep.diagnostics) + list(runs[0].result.rep.diagnostics)
    base_keys = {_diag_key(d) for d in diags}
    for i, r in enumerate(runs[1:], start=1):
        for d in r.result.rep.diagnostics:     # only under another side of a condition: say which
            if _diag_key(d) not in base_keys:
                cond = describe(conditions(runs, [i]))
                if cond:
                    d.notes = list(d.notes) + [f"only {cond}"]
            diags.append(d)
    script_diags = _unique_sorted(diags)
    if untried:
        followed = f"{len(runs)} combination{'s' if len(runs) != 1 else ''}"
        script_diags.append(Diagnostic("warning", f"cnnc followed {followed} of the conditions it "
                                       "cannot know (its budget); others are left unchecked", None,
                                       [], path))
    found = _found_models(runs, src, path, input_shape, sizes)
    _number_alike(found)
    script_errors = [d for d in script_diags if d.is_error]
    all_diags = list(script_diags)
    _share_alike(found, script_diags)
    for f in found:
        if script_errors:
            own_ok = f.checked.ok
            f.checked = _with(f.checked, script_errors)
            f.settings_only = f.settings_only or own_ok    # its shapes are still checked
        all_diags.extend(f.checked.diagnostics)
    base = runs[0].result.ev
    called = set().union(*(r.result.ev.called for r in runs))
    builders = [b[:3] for b in base.offered if b[3] not in called]
    if not found and not any(d.is_error for d in script_diags):
        all_diags.append(_no_model(base, runs, path, builders))
    all_diags = _unique_sorted(all_diags)
    _relocate(all_diags, smap, found, src)
    from cnnc.frontends.cnn import check_sizes_used
    check_sizes_used(sizes, [f.checked.ir for f in found], path)
    return ScriptCheck(Source(path, src.text), found, all_diags, base.skipped, src, builders)


def _share_alike(found: list[FoundModel], script_diags: list[Diagnostic]) -> None:
    """Equal diagnostics of several models (two models built by one builder) become one
    object, so that a model's own diagnostics are found among the file's by identity."""
    from dataclasses import replace
    canon: dict = {}
    for d in script_diags:
        canon.setdefault(_diag_key(d), d)
    for f in found:
        shared = tuple(canon.setdefault(_diag_key(d), d) for d in f.checked.diagnostics)
        f.checked = replace(f.checked, diagnostics=shared)


def _diag_key(d: Diagnostic) -> tuple:
    s = d.span
    return (d.severity, d.message, (s.line, s.column) if s else None)


def _check_call(ev, text: str) -> None:
    out = getattr(ev, "entry_result", None)
    from cnnc.frontends.python.values import ModelVal, Unknown
    from cnnc.frontends.python.values import describe as what
    if not isinstance(out, ModelVal):
        why = out.why if isinstance(out, Unknown) else f"it gives {what(out)}"
        raise UsageError(f"--model '{text}' builds no Keras model cnnc can follow: {why}")


def _unique(models: list) -> list:
    """Each model once, with how many models made at the same place under the same
    name came before it in the run (a builder called twice)."""
    seen, count, out = set(), {}, []
    for m in models:
        if id(m) in seen:
            continue
        seen.add(id(m))
        key = (m.span, m.var)
        out.append((m, count.get(key, 0)))
        count[key] = count.get(key, 0) + 1
    return out


def _emit(m, ev: Evaluator, input_shape, k: int):
    out = emit(m, ev.nodes, input_shape, Reporter(ev.smap.main.path))
    identity = (m.span.line, m.span.column, m.var, m.offered, k)
    return identity, m, out


def _fingerprint(m, out) -> int:
    """What tells two runs' versions of a model apart (computed only when there are
    several runs)."""
    try:
        return hash((_normalized(out.statements, {}),
                     tuple((p[0], p[1]) for p in out.problems),
                     tuple((p[0], p[1]) for p in out.settings_problems),
                     tuple((w[0], w[1]) for w in out.warnings), m.used_as_layer))
    except TypeError:
        return id(out)


_SPANS = ("span", "name_span", "target_span", "keyword_span", "alias_span")
_FIELDS: dict = {}


def _normalized(v, tensors: dict):
    """A model's statements without what a branch elsewhere in the script changes while
    the model stays the same: the names Keras numbers per session and the names of
    tensors (node numbers). Two runs whose models normalize alike built the same model."""
    from dataclasses import fields, is_dataclass

    from cnnc.language import syntax as S
    if isinstance(v, (list, tuple)):
        return tuple(_normalized(x, tensors) for x in v if not (type(x) is S.Arg and x.keyword == "name"))
    t = type(v)
    if t is S.ModelDecl:
        return ("model",)
    if t is S.Assign:
        tensors.setdefault(v.target, f"t{len(tensors)}")
        return ("=", tensors[v.target], _normalized(v.value, tensors))
    if t is S.Name:
        return ("t", tensors[v.parts[0]]) if len(v.parts) == 1 and v.parts[0] in tensors else v.parts
    if t is S.Number:
        return ("n", v.text)
    if t is S.String:
        return ("s", v.value)
    if t is S.BinOp:
        return ("op", v.op, _normalized(v.items, tensors))
    names = _FIELDS.get(t)
    if names is None:
        names = _FIELDS[t] = tuple(f.name for f in fields(v) if f.name not in _SPANS) if is_dataclass(v) else ()
    if not names:
        return v
    return (t.__name__,) + tuple(_normalized(getattr(v, n), tensors) for n in names)


def _found_models(runs, src: ScriptSource, path: str, input_shape, sizes=None) -> list[FoundModel]:
    """One FoundModel per model and version (runs whose model differs), first met first."""
    groups: dict = {}
    order: list = []
    for i, r in enumerate(runs):
        if not r.complete and i:
            continue
        for identity, m, out in r.result.emitted:
            fp = _fingerprint(m, out) if len(runs) > 1 else 0
            if identity not in groups:
                groups[identity] = {}
                order.append(identity)
            groups[identity].setdefault(fp, (m, out, []))[2].append(i)
    complete = [i for i, r in enumerate(runs) if r.complete or i == 0]
    found: list[FoundModel] = []
    unnamed = 0
    for identity in order:
        versions = list(groups[identity].values())
        present = sorted(i for _, _, rs in versions for i in rs)
        for k, (m, out, members) in enumerate(versions):
            conds = conditions([r for r in runs], members, present if len(versions) > 1 else complete)
            if m.var is None:
                unnamed += 1
            var = m.var or f"model_{unnamed}"
            checked, settings_only = _checked(out, path, src, input_shape, sizes)
            where = src.where(m.span.line) if m.span.line <= len(src.text.split("\n")) else ""
            cond = describe(conds) or ("otherwise" if len(versions) > 1 or len(present) < len(complete) else "")
            if m.offered:
                where += ", called by cnnc"
            if cond:
                where += f", {cond}"
            found.append(FoundModel(var, m.span.line, m.kind, checked, settings_only, where,
                                    nested=m.used_as_layer, condition=cond, offered=m.offered,
                                    variant=k + 1 if len(versions) > 1 else 0))
    return found


def _number_alike(found: list[FoundModel]) -> None:
    """Models with the same variable and line (versions under conditions, a builder called
    twice) are told apart by a number: --model NAME#K."""
    alike: dict = {}
    for f in found:
        alike.setdefault((f.var, f.line), []).append(f)
    for group in alike.values():
        if len(group) > 1:
            for k, f in enumerate(group, start=1):
                f.variant = k


def _checked(out, path: str, src: ScriptSource, input_shape=None, sizes=None):
    from cnnc.analysis.infer import infer
    from cnnc.analysis.lint import lint
    from cnnc.analysis.resolve import resolve
    from cnnc.frontends.cnn import Checked
    mrep = Reporter(path)
    for msg, span, notes in out.problems + out.settings_problems:
        mrep.error(msg, span, *notes)
    seen = set()
    for msg, span, notes in out.warnings:
        if (msg, span) not in seen:
            seen.add((msg, span))
            mrep.warning(msg, span, *notes)
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
    return Checked(Source(path, src.text), ir, analysis, tuple(diags)), settings_only


def _with(checked, extra: list[Diagnostic]):
    """The model's check with the script's errors too (a Keras 2 spelling, the step
    budget): a file that prints an error never passes."""
    from dataclasses import replace
    return replace(checked, diagnostics=tuple(checked.diagnostics) + tuple(
        d for d in extra if d not in checked.diagnostics))


def _no_model(ev, runs, path: str, builders: list) -> Diagnostic:
    """'found no Keras model' when no code builds one; else why none was followed."""
    notes, lines = [], []
    for sig, line, why in builders[:5]:
        notes.append(f"{sig} (line {line}) builds a model but {why}: check it with "
                     f"--model \"{sig.split('(')[0]}(...)\"")
        lines.append(line)
    unreached = _unreached(ev, runs)
    for line, why in unreached[:3]:
        notes.append(f"line {line} builds a model cnnc did not reach: {why}")
        lines.append(line)
    if not notes:
        return Diagnostic("error", "found no Keras model in this file", None, [
            "cnnc looks for keras.Sequential(...), keras.Model(inputs, outputs) and "
            "model.add(...) in the code"], path)
    first = min(lines)
    text = ev.smap.line_text(first)
    indent = len(text) - len(text.lstrip())
    span = Span(first, indent + 1, first, max(len(text), indent + 1) + 1)
    return Diagnostic("error", "this file builds no Keras model that cnnc can follow", span, notes, path)


def _unreached(ev, runs) -> list[tuple[int, str]]:
    import ast
    reached = set()
    for r in runs:
        reached |= r.result.ev.reached
    out = []
    for chunk in ev.smap.main.chunks:
        for stmt in chunk.body:
            for n in ast.walk(stmt):
                if isinstance(n, ast.Call):
                    f = n.func
                    last = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                    if last in ("Sequential", "Model") and n.lineno not in reached:
                        out.append((n.lineno, ev.why_unreached(n.lineno)))
    return out


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


def _relocate(diags: list[Diagnostic], smap: SourceMap, found: list[FoundModel], src: ScriptSource) -> None:
    """Diagnostics in a sibling module (or in --model's call) point at the script's line
    that ran it, with the module's line in a note; a notebook's name their cell."""
    main = smap.main_lines
    everything = list(diags) + [d for f in found for d in f.checked.diagnostics]
    done: set = set()
    for d in everything:
        if id(d) in done:
            continue
        done.add(id(d))
        if d.span is not None and d.span.line > main:
            origin = smap.origins.get(d.span.line) or Span(1, 1, 1, 2)
            note = f"in {smap.where(d.span.line)}: {smap.line_text(d.span.line).strip()[:120]}"
            d.notes = [note] + list(d.notes)
            d.span = origin
        if src.is_notebook:
            _locate_in_cell(d, src)
    for f in found:
        if f.line > main:
            origin = smap.origins.get(f.line)
            inner = smap.where(f.line)
            f.line = origin.line if origin is not None else 1
            rest = f.where[len(src.where(f.line)):] if f.where.startswith("line") else ""
            f.where = f"{src.where(f.line)} (in {inner}){rest}"


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
