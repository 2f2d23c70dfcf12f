"""Where a model lives when the file does not build it itself: a builder function the
file defines but never calls (a repository's `model.py`: `def unet(input_size=(256,
256, 1))`) is called with its defaults (`unet()`), or listed with its signature when it
needs arguments; `--model "unet(input_size=(128, 128, 3))"` calls it as written.

Such a call is made after the module has run, in a fresh Keras session (the names a
model takes count from zero, as in a script that imports the builder and calls it).
"""

from __future__ import annotations

import ast

from cnnc.frontends.python.limits import Budget, _Raise
from cnnc.frontends.python.values import (
    ClassMethod,
    ClassVal,
    FuncVal,
    ModelVal,
    StaticMethod,
    Unknown,
)
from cnnc.support.diagnostics import UsageError

# Calls that make a model: any function whose body (or a function it calls) makes one
# is a builder.
_MAKERS = frozenset({"Sequential", "Model", "Functional", "Input"})


def looks_like_call(text: str | None) -> bool:
    if not text or "(" not in text:
        return False
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return isinstance(node, ast.Call)


def parse_call(text: str, smap) -> ast.Call:
    """--model's call as an expression, numbered after the script's lines (so that its
    positions read `--model, line 1`)."""
    from cnnc.frontends.python.source import read_python
    from cnnc.support.diagnostics import Reporter
    if len(text) > 2000:
        raise UsageError("--model: the call is longer than 2,000 characters")
    rep = Reporter("--model")
    src = read_python("--model", text.strip(), rep)
    body = src.chunks[0].body if src.chunks else []
    if rep.has_errors or len(body) != 1 or not isinstance(body[0], ast.Expr) or not isinstance(
            body[0].value, ast.Call):
        raise UsageError(f"--model: '{text}' is not a call such as \"unet(input_size=(128, 128, 3))\"")
    base = smap.add(src, "--model")
    ast.increment_lineno(body[0], base)
    return body[0].value


def call_entry(call: ast.Call, text: str):
    """The entry for `--model "f(...)"`: the call, evaluated in the module's scope."""
    def entry(ev, scope) -> None:
        ev.name_counts = {}
        before = len(ev.models)
        try:
            out = ev.eval(call, scope)
        except _Raise as r:
            out = Unknown(f"the call raises {_exception(r)}", ev.span(call))
        ev.entry_result = out
        for m in ev.models[before:]:
            m.offered = m.offered or text
        if isinstance(out, ModelVal):
            out.var, out.var_top, out.offered = text, True, text
    return entry


def builder_entry(ev, scope) -> None:
    """Call each builder the file defines and never calls, with its defaults; list the
    ones that need arguments (ev.offered)."""
    builders = _builders(ev, scope)
    for name, f, owner in builders:
        if id(f.node) in ev.called:
            continue
        required = _required(f, owner is not None and not isinstance(owner, str))
        sig = f"{owner + '.' if isinstance(owner, str) else ''}{name}({_signature(f)})"
        if required:
            ev.offered.append((sig, f.node.lineno, "needs " + ", ".join(required), id(f.node)))
            continue
        call = f"{owner + '.' if isinstance(owner, str) else ''}{name}()"
        ev.name_counts = {}
        before = len(ev.models)
        try:
            out = ev.call_function(f, [], f.node)
        except _Raise as r:
            ev.offered.append((sig, f.node.lineno, f"raises {_exception(r)} with its defaults", id(f.node)))
            continue
        except Budget:
            raise
        made = ev.models[before:]
        if not made:
            why = out.why if isinstance(out, Unknown) else "it builds none cnnc can follow"
            ev.offered.append((sig, f.node.lineno, f"with its defaults, cnnc builds no model: {why}",
                               id(f.node)))
        for m in made:
            m.offered = call
        if isinstance(out, ModelVal):
            out.var, out.var_top = call, True
        elif made:
            made[-1].var = made[-1].var or call


def _builders(ev, scope) -> list:
    """The module's functions (and its classes' static and class methods) that make a
    model, in the order the file defines them."""
    main_lines = ev.smap.main_lines
    funcs: list = []
    for name, v in scope.vars.items():
        if isinstance(v, FuncVal) and v.closure is scope and v.node.lineno <= main_lines \
                and not isinstance(v.node, ast.Lambda):
            funcs.append((name, v, None))
        elif isinstance(v, ClassVal) and v.node is not None and v.node.lineno <= main_lines \
                and v.kind == "other":
            for attr, m in v.attrs.items():
                if isinstance(m, (StaticMethod, ClassMethod)) and isinstance(m.func, FuncVal):
                    funcs.append((attr, m.func, name))
    makers = set(_MAKERS) | {n for n, v in scope.vars.items() if isinstance(v, ClassVal) and v.kind == "model"}
    from cnnc.frontends.python.applications import APPS
    makers |= set(APPS)
    changed = True
    chosen: dict = {}
    while changed:
        changed = False
        for name, f, owner in funcs:
            if name not in chosen and _calls_any(f.node, makers):
                chosen[name] = (name, f, owner)
                makers.add(name)
                changed = True
    return sorted(chosen.values(), key=lambda t: t[1].node.lineno)


def _calls_any(node, names: set) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            last = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if last in names:
                return True
    return False


def _required(f: FuncVal, method: bool) -> list[str]:
    a = f.node.args
    params = [p.arg for p in getattr(a, "posonlyargs", [])] + [p.arg for p in a.args]
    if method and params and params[0] in ("cls", "self"):
        params = params[1:]
    need = params[:len(params) - len(f.defaults)] if len(f.defaults) <= len(params) else []
    need += [p.arg for p, d in zip(a.kwonlyargs, f.kw_defaults) if d is _missing()]
    return need


def _missing():
    from cnnc.frontends.python.scope import _MISSING
    return _MISSING


def _signature(f: FuncVal) -> str:
    try:
        text = ast.unparse(f.node.args)
    except (ValueError, RecursionError):
        return "..."
    return text if len(text) <= 80 else text[:77] + "..."


def _exception(r: _Raise) -> str:
    exc = r.exc
    from cnnc.frontends.python.values import ObjectVal
    if isinstance(exc, ObjectVal) and exc.kind == "exception":
        args = exc.attrs.get("args") or ()
        msg = f": {args[0]}" if args and isinstance(args[0], str) else ""
        return f"{exc.attrs.get('type')}{msg}"[:200]
    return "an exception"

