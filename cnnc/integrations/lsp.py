"""`cnnc lsp`: a language server (the Language Server Protocol, over stdio) for .cnn files
and Keras scripts (.py), built on pygls.

- Diagnostics as you type: a document is checked when it is opened or saved, and a
  moment (DEBOUNCE_S) after the last change, in a worker thread, so that typing and
  hovering never wait for a check; a result is published only while it is still the
  document's latest version.
- Hover on a layer call: its output shape (and input), parameters and MACs. Hover on a
  model's variable (a .py file) or its name (`model NAME` in a .cnn file): the model's
  totals.

Python files that never mention Keras get no diagnostics (an editor opens every .py
file), nor does a script that builds no model yet. Positions are converted between
cnnc's (1-based, code points) and the client's (0-based, UTF-16 unless negotiated).
"""

from __future__ import annotations

import asyncio
import gc
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from cnnc.support.diagnostics import Diagnostic, UsageError
from cnnc.support.version import __version__

DEBOUNCE_S = 0.25
NO_MODEL = "found no Keras model in this file"
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HELP_STARTS = ("did you mean", "use ", "add ", "remove ", "try ")     # as diagnostics.render labels


@dataclass
class Model:
    """One model of a document: the variable (or .cnn model name) and its check."""

    var: str
    line: int                       # where it is built (1-based)
    checked: object                 # frontends.cnn.Checked


@dataclass
class Analyzed:
    """A document's text, checked."""

    version: int | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    models: list[Model] = field(default_factory=list)
    problem: str | None = None      # the text could not be read (UsageError)


def analyze(path: str, text: str, version: int | None) -> Analyzed:
    """Check a document's text as the command line checks the file (never runs it)."""
    try:
        if path.lower().endswith(".py"):
            return _script(path, text, version)
        return _cnn(path, text, version)
    except UsageError as e:
        return Analyzed(version, problem=e.message)
    except Exception as e:  # noqa: BLE001 - a bug in cnnc: said in the editor, the server lives on
        return Analyzed(version, problem=f"cnnc: internal error: {type(e).__name__}: {e} "
                                         "(a bug in cnnc; please report it)")


def _cnn(path: str, text: str, version: int | None) -> Analyzed:
    from cnnc.frontends.cnn import check_text
    checked = check_text(text, path)
    models = [Model(checked.ir.name, 1, checked)] if checked.ir is not None else []
    return Analyzed(version, list(checked.diagnostics), models)


def _script(path: str, text: str, version: int | None) -> Analyzed:
    if "keras" not in text:
        return Analyzed(version)
    from cnnc.frontends.python import check_script
    was_enabled = gc.isenabled()
    gc.disable()                 # as the command line checks: cycles among the checker's objects are rare
    try:
        sc = check_script(path, text)
    finally:
        if was_enabled:
            gc.enable()
    diags = [d for d in sc.diagnostics if not (d.span is None and d.message == NO_MODEL)]
    return Analyzed(version, diags, [Model(m.var, m.line, m.checked) for m in sc.models])


# --- hover -------------------------------------------------------------------------------------

def _contains(span, line: int, col: int) -> bool:
    return span is not None and (span.line, span.column) <= (line, col) < (span.end_line, span.end_column)


def layer_at(result: Analyzed, line: int, col: int):
    """The innermost layer call whose span holds (line, col) (1-based, code points)."""
    best = None
    for m in result.models:
        analysis = m.checked.analysis
        if analysis is None:
            continue
        for info in analysis.infos:
            span = info.layer.span
            if _contains(span, line, col):
                size = (span.end_line - span.line, span.end_column - span.column)
                if best is None or size < best[0]:
                    best = (size, info, m)
    return None if best is None else best[1:]


def model_named(result: Analyzed, word: str, line: int):
    """The model held by the variable `word` at `line`: the last one built at or before
    that line (a variable can be bound to several models in turn), else the first."""
    hits = [m for m in result.models if m.var == word]
    before = [m for m in hits if m.line <= line]
    return (before[-1] if before else hits[0]) if hits else None


def layer_hover(info, model: Model) -> str:
    from cnnc.analysis import shapes as sh
    layer = info.layer
    rows = [f"**{layer.name}** ({layer.kind}) in model `{model.var}`", ""]
    shapes = ", ".join(sh.fmt_shape(s) for s in info.input_shapes)
    rows.append(f"- input: `{shapes}`")
    rows.append(f"- output: `{sh.fmt_shape(info.output_shape)}`")
    rows.append(f"- params: {info.params:,}" + (f" ({info.non_trainable_params:,} non-trainable)"
                                               if info.non_trainable_params else ""))
    rows.append(f"- MACs: {'?' if info.macs is None else f'{info.macs:,}'} per sample")
    return "\n".join(rows)


def model_hover(model: Model) -> str:
    from cnnc.analysis import shapes as sh
    a = model.checked.analysis
    ir = model.checked.ir
    rows = [f"**{model.var}**: model `{ir.name}`, {len(a.infos)} layers", ""]
    ins = ", ".join(sh.fmt_shape(n.shape) for n in ir.inputs) or "?"
    rows.append(f"- input: `{ins}`")
    try:
        outs = sh.fmt_shape(a.output_shape)
    except Exception:  # noqa: BLE001 - a model with errors may have no output yet
        outs = "?"
    rows.append(f"- output: `{outs}`")
    rows.append(f"- params: {a.total_params:,} (trainable {a.trainable_params:,}, "
                f"non-trainable {a.non_trainable_params:,})")
    macs = a.total_macs
    rows.append(f"- MACs: {'?' if macs is None else f'{macs:,}'} per sample")
    errors = sum(d.is_error for d in model.checked.diagnostics)
    if errors:
        rows.append(f"- {errors} error{'s' if errors != 1 else ''}: see the diagnostics")
    return "\n".join(rows)


def hover_text(result: Analyzed, lines: list[str], line: int, col: int) -> tuple[str, tuple] | None:
    """The hover for (line, col), 1-based: (markdown, span (line, start col, end col))."""
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    for m in _WORD.finditer(text):
        if m.start() < col <= m.end():
            model = model_named(result, m.group(), line)
            if model is not None and model.checked.analysis is not None:
                return model_hover(model), (line, m.start() + 1, m.end() + 1)
            break
    hit = layer_at(result, line, col)
    if hit is not None:
        info, model = hit
        s = info.layer.span
        return layer_hover(info, model), (s.line, s.column, s.end_column if s.end_line == s.line else None)
    return None


# --- the server ---------------------------------------------------------------------------------

class CnncServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("cnnc", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.results: dict[str, Analyzed] = {}
        self.pending: dict[str, asyncio.Task] = {}
        self.checker = ThreadPoolExecutor(1, thread_name_prefix="cnnc-check")

    def path_of(self, uri: str) -> str:
        parsed = urlparse(uri)
        return unquote(parsed.path) if parsed.scheme == "file" else uri

    def handles(self, uri: str) -> bool:
        return self.path_of(uri).lower().endswith((".cnn", ".py"))

    async def fresh(self, uri: str) -> Analyzed:
        """The document's latest version checked (now, if the last check is older). Every
        check runs on the one checker thread: the front ends are not made to run twice at
        once (they switch the garbage collector off and on around a check)."""
        doc = self.workspace.get_text_document(uri)
        result = self.results.get(uri)
        if result is None or result.version != doc.version:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self.checker, analyze, self.path_of(uri), doc.source,
                                                doc.version)
            self.results[uri] = result
        return result

    def schedule(self, uri: str, delay: float) -> None:
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        self.pending[uri] = asyncio.get_running_loop().create_task(self._check_later(uri, delay))

    async def _check_later(self, uri: str, delay: float) -> None:
        await asyncio.sleep(delay)
        doc = self.workspace.get_text_document(uri)
        version, source = doc.version, doc.source
        result = self.results.get(uri)
        if result is None or result.version != version:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self.checker, analyze, self.path_of(uri), source, version)
            if self.workspace.get_text_document(uri).version != version:
                return                     # typed on meanwhile: a newer check is on its way
            self.results[uri] = result
        self.publish(uri, result)

    def publish(self, uri: str, result: Analyzed) -> None:
        lines = self.workspace.get_text_document(uri).lines
        diags = [self.to_lsp(d, lines) for d in result.diagnostics]
        if result.problem:
            diags.append(types.Diagnostic(range=types.Range(types.Position(0, 0), types.Position(0, 0)),
                                          message=result.problem, severity=types.DiagnosticSeverity.Error,
                                          source="cnnc"))
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diags, version=result.version))

    def position(self, lines: list[str], line: int, col: int) -> types.Position:
        """cnnc's 1-based line and code-point column as the client counts them."""
        return self.workspace.position_codec.position_to_client_units(
            lines, types.Position(line=max(line - 1, 0), character=max(col - 1, 0)))

    def to_lsp(self, d: Diagnostic, lines: list[str]) -> types.Diagnostic:
        s = d.span
        if s is None:
            rng = types.Range(types.Position(0, 0), types.Position(0, 0))
        else:
            rng = types.Range(self.position(lines, s.line, s.column),
                              self.position(lines, s.end_line, s.end_column))
        notes = [f"{'help' if n.startswith(_HELP_STARTS) else 'note'}: {n}" for n in d.notes]
        message = "\n".join([d.message, *notes])
        severity = types.DiagnosticSeverity.Error if d.is_error else types.DiagnosticSeverity.Warning
        return types.Diagnostic(range=rng, message=message, severity=severity, source="cnnc")


def create_server() -> CnncServer:
    server = CnncServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: CnncServer, params: types.DidOpenTextDocumentParams) -> None:
        if ls.handles(params.text_document.uri):
            ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: CnncServer, params: types.DidChangeTextDocumentParams) -> None:
        if ls.handles(params.text_document.uri):
            ls.schedule(params.text_document.uri, DEBOUNCE_S)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: CnncServer, params: types.DidSaveTextDocumentParams) -> None:
        if ls.handles(params.text_document.uri):
            ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: CnncServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        ls.results.pop(uri, None)
        if ls.handles(uri):
            ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: CnncServer, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        if not ls.handles(uri):
            return None
        result = await ls.fresh(uri)
        if result.version != ls.workspace.get_text_document(uri).version:
            return None                # typed on while it was checked: positions have moved
        lines = [line.rstrip("\r\n") for line in ls.workspace.get_text_document(uri).lines]
        pos = ls.workspace.position_codec.position_from_client_units(lines, params.position)
        found = hover_text(result, lines, pos.line + 1, pos.character + 1)
        if found is None:
            return None
        text, (line, start, end) = found
        rng = None
        if end is not None:
            rng = types.Range(ls.position(lines, line, start), ls.position(lines, line, end))
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
                           range=rng)

    return server


def serve() -> None:
    """Serve over stdin/stdout until the client says exit (or closes stdin)."""
    create_server().start_io(_binary(sys.stdin, 0, "rb"), _binary(sys.stdout, 1, "wb"))


def _binary(stream, fd: int, mode: str):
    """The byte stream under a text stream; the process's own descriptor where the stream
    has none (stdin or stdout replaced by a StringIO, as in an embedding program)."""
    buffer = getattr(stream, "buffer", None)
    return buffer if buffer is not None else open(fd, mode, buffering=0, closefd=False)
