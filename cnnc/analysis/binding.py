"""Bind a call's arguments to a signature, the way Python binds them.

Shared by layers, optimizers, losses, compile() and fit(): every problem is
reported at its own argument, and binding goes on so that all of a call's
mistakes are reported at once.
"""

from __future__ import annotations

from typing import Any, Sequence

from cnnc.analysis.arguments import ArgError
from cnnc.analysis.kinds import REQUIRED, Param
from cnnc.language import syntax as S
from cnnc.support.diagnostics import Reporter, Span, did_you_mean


class Bound:
    """The converted arguments of one call, defaults filled in."""

    def __init__(self, values: dict[str, Any], spans: dict[str, Span], given: set[str], ok: bool):
        self.values = values
        self.spans = spans
        self.given = given
        self.ok = ok


def bind(what: str, params: Sequence[Param], call: S.Call, rep: Reporter,
         extra_names: Sequence[str] = ()) -> Bound:
    """Bind `call`'s arguments to `params`; report problems to `rep`.

    `extra_names` are keywords that are valid elsewhere (e.g. Keras 2
    spellings a caller handles itself) and only feed 'did you mean'.
    """
    ok = True
    raw: dict[str, S.Arg] = {}
    misspelt: set[str] = set()   # params a misspelt keyword probably meant
    positional_params = [p for p in params if not p.keyword_only]
    seen_keyword = False
    n_pos = 0
    for arg in call.args:
        if arg.keyword is None:
            if seen_keyword:
                rep.error("positional argument follows keyword argument", arg.span,
                          "as in Python, positional arguments come first")
                ok = False
                continue
            if n_pos >= len(positional_params):
                names = ", ".join(p.name for p in positional_params)
                rep.error(f"{what}() takes at most {len(positional_params)} positional "
                          f"argument{'s' if len(positional_params) != 1 else ''}", arg.span,
                          f"in order: {names}" if names else "pass arguments by keyword")
                ok = False
                continue
            p = positional_params[n_pos]
            n_pos += 1
            raw[p.name] = arg
            continue
        seen_keyword = True
        known = next((p for p in params if p.name == arg.keyword), None)
        if known is None:
            hint = did_you_mean(arg.keyword, [p.name for p in params] + list(extra_names))
            rep.error(f"{what}() got an unexpected keyword argument '{arg.keyword}'",
                      arg.keyword_span or arg.span, hint)
            misspelt.add(hint.split("'")[1] if hint else "")
            ok = False
            continue
        if known.name in raw:
            rep.error(f"{what}() got multiple values for argument '{arg.keyword}'",
                      arg.keyword_span or arg.span)
            ok = False
            continue
        raw[known.name] = arg
    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    for p in params:
        if p.name in raw:
            arg = raw[p.name]
            spans[p.name] = arg.span
            try:
                values[p.name] = p.convert(arg.value, p.name)
            except ArgError as e:
                rep.error(e.message, e.span or arg.span, *e.notes)
                ok = False
        elif p.default is REQUIRED:
            ok = False
            if p.name in misspelt:
                continue  # already reported as the misspelt keyword
            rep.error(f"{what}() missing required argument '{p.name}'", call.name.span,
                      _missing_hint(what, params))
        else:
            values[p.name] = p.default
    return Bound(values, spans, set(raw), ok)


def _missing_hint(what: str, params: Sequence[Param]) -> str:
    """The head of the signature: what Keras's positional order expects."""
    head = []
    for p in params:
        if p.keyword_only or len(head) == 4:
            break
        head.append(p.name if p.default is REQUIRED else f"{p.name}={_show(p.default)}")
    more = ", ..." if len(head) < len([p for p in params if not p.keyword_only]) else ""
    return f"signature: {what}({', '.join(head)}{more})"


def _show(value: Any) -> str:
    if isinstance(value, tuple) and value and all(isinstance(v, tuple) for v in value):
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    return str(value)
