"""The .cnn front end: text -> IR -> Analysis, with every diagnostic (parse, resolve,
infer, lint). `Checked` is what every front end gives: the Keras readers emit .cnn
syntax and finish here.

Imports nothing heavy (no NumPy, no onnx), so `cnnc check` starts fast.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from cnnc.analysis.infer import Analysis, infer
from cnnc.analysis.ir import ModelIR
from cnnc.analysis.lint import lint
from cnnc.analysis.resolve import resolve
from cnnc.language.parse import parse
from cnnc.support.diagnostics import CnncError, Diagnostic, Reporter, Source, UsageError
from cnnc.support.files import read_bytes


@dataclass(frozen=True)
class Checked:
    source: Source
    ir: ModelIR
    analysis: Analysis
    diagnostics: tuple[Diagnostic, ...]
    # Keras files carry weights: a function analysis -> {"layer/weight": array}
    weights: object = field(default=None, compare=False, repr=False)
    # Keras scripts and notebooks: the frontends.python ScriptCheck with every model found
    script: object = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def raise_on_error(self) -> "Checked":
        if not self.ok:
            raise CnncError(self.diagnostics, self.source, exit_code=1)
        return self


def check_text(text: str, path: str = "<string>",
               regroup: Callable[[ModelIR], ModelIR] | None = None,
               sizes: Mapping[str, int] | None = None,
               input_shape: tuple[int, ...] | None = None) -> Checked:
    """Parse, resolve, infer and lint; never raises for problems in the text.
    `regroup`: applied to the resolved model before its shapes are inferred (a Keras
    file's nested models, shown as one summary row each: groups.regroup). `sizes` fix
    open dimensions by name (--define), `input_shape` the input's open sizes; a name
    that is no open dimension of the model is a UsageError."""
    # The checker builds many small acyclic objects; the cycle collector only
    # slows it down (by half on a 10,000-layer stack).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        checked = _check(text, path, regroup, sizes, input_shape)
    finally:
        if was_enabled:
            gc.enable()
    check_sizes_used(sizes, [checked.ir], path)
    return checked


def check_sizes_used(sizes: Mapping[str, int] | None, irs, path: str) -> None:
    """A --define that names no open dimension of the models is a usage error (a typo
    would otherwise pass unnoticed)."""
    known: dict[str, str] = {}
    for ir in irs:
        if ir is not None:
            known.update(ir.dims)
            known.update(dict.fromkeys(ir.defined, ""))
    unknown = sorted(set(sizes or ()) - set(known))
    if unknown:
        listing = ", ".join(sorted(known)) if known else "none"
        raise UsageError(f"--define {unknown[0]}: '{path}' has no open size named {unknown[0]!r}",
                         [f"its open sizes: {listing}"])


def _check(text: str, path: str, regroup=None, sizes=None, input_shape=None) -> Checked:
    rep = Reporter(path)
    statements = parse(text, rep)
    # A statement that did not parse is a layer missing from the stack: shapes after it
    # would only produce errors that are not the user's.
    syntax_lines = [d.span.line for d in rep.diagnostics if d.is_error and d.span]
    ir = resolve(statements, rep, path, dict(sizes or {}), input_shape)
    if regroup is not None:
        ir = regroup(ir)
    analysis = infer(ir, rep, stop_after_line=min(syntax_lines, default=None))
    if not rep.has_errors:
        lint(ir, analysis, rep)
    return Checked(Source(path, text), ir, analysis, tuple(rep.sorted()))


def read_source(path: str | Path) -> str:
    """The text of a .cnn file, or UsageError (exit 2) saying why it cannot be read."""
    data = read_bytes(path)
    if b"\x00" in data[:4096]:
        raise UsageError(f"cannot read '{path}': it is a binary file, not a .cnn text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UsageError(f"cannot read '{path}': not UTF-8 text (byte {e.start})") from None
    return text
