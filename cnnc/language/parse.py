"""Text -> syntax tree, with every problem reported at its position.

The grammar (grammar/cnn.lark) is the single source of the syntax. This module
loads it once, tokenizes the whole file, splits the tokens into statements
(newlines inside brackets do not end a statement, as in Python), and parses
each statement on its own so that one bad line does not hide the next.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from pathlib import Path
from typing import Iterator

from lark import Lark, Token, Tree
from lark import __version__ as lark_version
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from cnnc.language import arith
from cnnc.language import syntax as S
from cnnc.support.diagnostics import Reporter, Span

_OPEN = {"LPAR": ")", "LSQB": "]"}
_CLOSE = {"RPAR": "(", "RSQB": "["}
_READABLE = {
    "RPAR": "')'", "LPAR": "'('", "RSQB": "']'", "LSQB": "'['", "COMMA": "','",
    "EQUAL": "'='", "DOT": "'.'", "NAME": "a name", "NUMBER": "a number",
    "STRING": "a string", "MODEL": "'model'", "INPUT": "'input'", "$END": "end of line",
    "IMPORT": "'import'", "FROM": "'from'", "AS": "'as'", "PLUS": "'+'", "MINUS": "'-'",
    "STAR": "'*'", "SLASH": "'/'", "PERCENT": "'%'",
}
_MAX_LEX_ERRORS = 50


def grammar_path() -> Path:
    """Where the grammar is: inside the package when installed from a wheel,
    at the top of the repository in a checkout or an editable install."""
    package = Path(__file__).resolve().parent.parent          # cnnc/
    for candidate in (package / "grammar" / "cnn.lark", package.parent / "grammar" / "cnn.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("cnnc's grammar file cnn.lark is missing from the installation")


@functools.lru_cache(maxsize=1)
def lark_parser() -> Lark:
    # Lark keys its cache on the grammar's hash and rebuilds when it changes;
    # the cache saves ~35 ms of LALR table construction per `cnnc check`.
    return Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="basic",
                start=["start", "statement"], propagate_positions=True,
                maybe_placeholders=True, cache=_cache_file() or False)


def _cache_file() -> str | None:
    """A per-user cache file (not a shared temp dir: lark's cache is a pickle)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "cnnc")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return os.path.join(folder, f"grammar-lark{lark_version}.cache") if os.access(folder, os.W_OK) else None


# --- tokens ------------------------------------------------------------------

def _tokens(text: str, rep: Reporter, bad_lines: set[int]) -> Iterator[Token]:
    """The file's tokens, one at a time (never all of them in memory: a token is a few
    hundred bytes, 4 per `x=1` line); a bad character is reported and skipped, and its
    line remembered so that the parse errors it causes are not reported again."""
    work = text
    resume = 0       # tokens before this offset were given out by an earlier pass
    for _ in range(_MAX_LEX_ERRORS):
        try:
            for tok in lark_parser().lex(work):
                if tok.start_pos >= resume:
                    yield tok
            return
        except UnexpectedCharacters as e:
            _report_bad_char(text, e, rep)
            bad_lines.add(e.line)
            # Blank out the culprit (keeping line/column numbers) and lex again from there.
            end = e.pos_in_stream + 1
            if text[e.pos_in_stream] in "'\"":
                end = work.find("\n", e.pos_in_stream)
                end = len(work) if end < 0 else end
            work = work[:e.pos_in_stream] + " " * (end - e.pos_in_stream) + work[end:]
            resume = e.pos_in_stream
    rep.error("too many unreadable characters; giving up on this file")


def _report_bad_char(text: str, e: UnexpectedCharacters, rep: Reporter) -> None:
    ch = text[e.pos_in_stream]
    span = Span(e.line, e.column, e.line, e.column + 1)
    if ch in "'\"":
        line_end = text.find("\n", e.pos_in_stream)
        line_end = len(text) if line_end < 0 else line_end
        span = Span(e.line, e.column, e.line, e.column + line_end - e.pos_in_stream)
        rep.error("unterminated string", span, f"add the closing {ch} before the end of the line")
    elif ch == "{":
        rep.error("unexpected '{': dictionaries are not part of the .cnn language", span)
    elif ch == ":":
        rep.error("unexpected ':'", span,
                  "the .cnn language has no Python blocks; write one layer call per line")
    else:
        rep.error(f"unexpected character {ch!r}", span)


def _span(tok: Token) -> Span:
    return Span(tok.line, tok.column, tok.end_line, tok.end_column)


# --- statements --------------------------------------------------------------

def _next_statement(tokens: Iterator[Token], pending: list[Token]) -> tuple[list[Token], list[Token], list[int]]:
    """The next statement: its tokens (bracketed newlines dropped), every token it took
    from the stream (`raw`, newlines included, to give back what a restart re-reads), and
    where each statement token is in `raw`. `pending`: tokens given back, read first."""
    out: list[Token] = []
    raw: list[Token] = []
    where: list[int] = []
    depth = 0
    while True:
        if pending:
            tok = pending.pop()
        else:
            tok = next(tokens, None)
            if tok is None:
                break
        raw.append(tok)
        if tok.type == "_NL":
            if depth == 0 and out:
                break
            continue
        if tok.type in _OPEN:
            depth += 1
        elif tok.type in _CLOSE:
            depth = max(depth - 1, 0)
        out.append(tok)
        where.append(len(raw) - 1)
    return out, raw, where


def _open_brackets(stmt: list[Token], upto: int) -> list[Token]:
    """The brackets still open just before stmt[upto]."""
    stack: list[Token] = []
    for tok in stmt[:upto]:
        if tok.type in _OPEN:
            stack.append(tok)
        elif tok.type in _CLOSE and stack:
            stack.pop()
    return stack


# Budgets that bound what parsing really costs: the statements kept (a syntax tree of a
# few hundred bytes each, plus what resolve builds from it) and the errors kept (each with
# its message and notes). The largest real models (examples/zoo, Keras files of up to
# 100,000 layers: frontends/keras/limits.py) stay far below; a 16 MB file of `x=1` lines
# (4 million statements) is refused once the budget is spent, after reading only that part.
MAX_STATEMENTS = 250_000
MAX_ERRORS = 1_000


def parse(text: str, rep: Reporter) -> list[S.Statement]:
    """Parse a whole file. Problems go to `rep`; the statements that parsed are returned.
    Memory is proportional to the statements kept (MAX_STATEMENTS), not to the tokens."""
    bad_lines: set[int] = set()
    tokens = _tokens(text, rep, bad_lines)
    pending: list[Token] = []       # tokens given back, last first
    statements: list[S.Statement] = []
    errors = 0
    while True:
        seen = len(rep.diagnostics)
        stmt, raw, where = _next_statement(tokens, pending)
        if not stmt:
            if not raw and not pending:
                break
            continue
        if len(statements) >= MAX_STATEMENTS:
            rep.error(f"the file has more than {MAX_STATEMENTS:,} statements, cnnc's limit; "
                      "the rest was not read", _span(stmt[0]),
                      "no model needs this many lines; is this the file you meant?")
            break
        tree, restart = _parse_statement(stmt, rep, bad_lines)
        if restart is not None:
            # An unclosed bracket swallowed the following lines: resume at the
            # first token of the line where the parser gave up.
            pending.extend(reversed(raw[where[restart]:]))
        elif tree is not None:
            node = _convert_statement(tree, rep)
            if node is not None:
                statements.append(node)
        errors += sum(d.is_error for d in rep.diagnostics[seen:])
        if errors >= MAX_ERRORS:
            rep.error(f"more than {MAX_ERRORS:,} errors; the rest of the file was not read",
                      _span(stmt[0]))
            break
    return statements


def _parse_statement(stmt: list[Token], rep: Reporter,
                     bad_lines: set[int]) -> tuple[Tree | None, int | None]:
    """(tree, None) on success; (None, index) when parsing should resume at stmt[index]."""
    ip = lark_parser().parse_interactive(start="statement")
    for k, tok in enumerate(stmt):
        try:
            ip.feed_token(tok)
        except UnexpectedToken as e:
            return None, _syntax_error(stmt, k, e, rep, bad_lines)
    try:
        return ip.feed_eof(stmt[-1]), None
    except UnexpectedToken as e:
        return None, _syntax_error(stmt, len(stmt), e, rep, bad_lines)


def _syntax_error(stmt: list[Token], k: int, e: UnexpectedInput, rep: Reporter,
                  bad_lines: set[int]) -> int | None:
    """Report the error at stmt[k] (k == len(stmt): end of statement).

    Returns where parsing should resume inside stmt, if an unclosed bracket
    made it swallow later lines; None to skip the rest of the statement.
    An error caused by an unreadable character already reported is not
    reported again.
    """
    open_ = _open_brackets(stmt, k)
    at_end = k >= len(stmt)
    err_line = stmt[min(k, len(stmt) - 1)].line
    if err_line in bad_lines or (open_ and open_[-1].line in bad_lines):
        rep = Reporter(rep.path)  # a scratch reporter: computed, not shown
    if open_ and (at_end or (stmt[k].line > stmt[0].line and _starts_line(stmt, k))):
        b = open_[-1]
        rep.error(f"'{b.value}' was never closed", _span(b),
                  f"expected {_OPEN[b.type]!r} before the end of the statement")
        return None if at_end else k
    _report_unexpected(stmt, k, e, open_, rep)
    return _recovery_point(stmt, k)


def _report_unexpected(stmt: list[Token], k: int, e: UnexpectedInput, open_: list[Token],
                       rep: Reporter) -> None:
    tok = stmt[k] if k < len(stmt) else None
    first = stmt[0]
    if tok is not None and tok.type in _CLOSE:
        if not open_:
            rep.error(f"unmatched '{tok.value}'", _span(tok))
            return
        b = open_[-1]
        if _OPEN[b.type] != tok.value:
            rep.error(f"'{tok.value}' does not match '{b.value}' opened at line {b.line}, "
                      f"column {b.column}", _span(tok))
            return
    if tok is None and len(stmt) == 1 and first.type == "NAME":
        rep.error(f"'{first.value}' needs parentheses", _span(first),
                  f"write {first.value}(...), as in Keras")
        return
    expected = sorted(getattr(e, "expected", set()) or set())
    span = _span(tok) if tok is not None else _end_span(stmt[-1])
    what = f"'{tok.value}'" if tok is not None else "end of line"
    if tok is not None and "COMMA" in expected and tok.type in ("NAME", "NUMBER", "STRING", "LPAR", "LSQB"):
        rep.error(f"unexpected {what}: missing ',' before it?", span)
        return
    names = [_READABLE.get(t, t) for t in expected if not t.startswith("__")]
    rep.error(f"unexpected {what}", span, ("expected " + _join_or(names)) if names else "")


def _recovery_point(stmt: list[Token], k: int) -> int | None:
    """After an error at k: the first later line that starts a new statement
    while a bracket is still open (so the broken line swallowed it)."""
    for r in range(k + 1, len(stmt)):
        if _starts_line(stmt, r) and _looks_like_statement(stmt, r) and _open_brackets(stmt, r):
            return r
    return None


def _looks_like_statement(stmt: list[Token], r: int) -> bool:
    tok = stmt[r]
    if tok.type in ("MODEL", "INPUT", "IMPORT", "FROM"):
        return True
    if tok.type != "NAME":
        return False
    return (r + 1 >= len(stmt) or stmt[r + 1].type in ("LPAR", "DOT", "EQUAL")
            or _starts_line(stmt, r + 1))


def _starts_line(stmt: list[Token], k: int) -> bool:
    return k == 0 or stmt[k - 1].end_line < stmt[k].line


def _end_span(tok: Token) -> Span:
    return Span(tok.end_line, tok.end_column, tok.end_line, tok.end_column + 1)


def _join_or(items: list[str]) -> str:
    items = sorted(set(items))
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


# --- lark tree -> syntax tree ------------------------------------------------

def _meta_span(t: Tree) -> Span:
    m = t.meta
    return Span(m.line, m.column, m.end_line, m.end_column)


_MAX_DEPTH = 100      # nesting of brackets and operators in one statement


def _depth(t: Tree) -> int:
    """How deeply the tree nests, walked without recursion (the input may be hostile)."""
    deepest, stack = 0, [(t, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > _MAX_DEPTH:
            break
        stack.extend((c, d + 1) for c in node.children if isinstance(c, Tree))
    return deepest


def _convert_statement(t: Tree, rep: Reporter) -> S.Statement | None:
    if _depth(t) > _MAX_DEPTH:
        rep.error(f"this statement nests more than {_MAX_DEPTH} levels deep", _meta_span(t),
                  "no model needs brackets or arithmetic this deep")
        return None
    try:
        return _convert(t, rep)
    except arith.FoldError as e:
        rep.error(e.message, e.span, *e.notes)
        return None


def _convert(t: Tree, rep: Reporter) -> S.Statement | None:
    if t.data == "model_decl":
        tok = t.children[0]
        return S.ModelDecl(str(tok), _meta_span(t), _span(tok))
    if t.data == "dim_decl":
        name, kind = t.children
        return S.DimDecl(str(name), _span(name), str(kind), _span(kind))
    if t.data == "input_decl":
        alias = t.children[1]
        return S.InputDecl(_value(t.children[0]), _meta_span(t), str(alias) if alias is not None else None)
    if t.data == "import_module":  # only the last part of a dotted name counts: no alias needed
        return S.Import((), _meta_span(t))
    if t.data == "import_from":
        return S.Import(_import_aliases(t), _meta_span(t))
    if t.data == "model_assign":
        return S.Assign("model", _meta_span(t), _call(t.children[0]), _meta_span(t))
    if t.data == "assign":
        tok, value = t.children
        return S.Assign(str(tok), _span(tok), _value(value), _meta_span(t))
    if t.data == "input_assign":
        return S.Assign("input", _meta_span(t), _value(t.children[0]), _meta_span(t))
    if t.data == "expr_stmt":
        inner, alias = t.children
        call = _applied(inner) if inner.data == "applied" else _call(inner)
        return S.CallStmt(call, _meta_span(t), str(alias) if alias is not None else None,
                          _span(alias) if alias is not None else None)
    if t.data == "method_stmt":
        call = _call(t.children[0])
        if call.name.dotted == "add":
            inner = call.args[0].value if len(call.args) == 1 else None
            if not isinstance(inner, S.Call) or call.args[0].keyword is not None:
                rep.error("model.add(...) takes one layer, e.g. model.add(Conv2D(32, (3, 3)))",
                          call.span)
                return None
            return S.CallStmt(inner, _meta_span(t))
        return S.CallStmt(call, _meta_span(t))
    return S.CallStmt(_call(t), _meta_span(t))


def _import_aliases(t: Tree) -> tuple[tuple[str, str], ...]:
    """`from m import A as B, C` -> (("B", "A"),)."""
    names = t.children[1:]  # NAME, alias-or-None, NAME, alias-or-None, ...
    return tuple((str(alias), str(name)) for name, alias in zip(names[::2], names[1::2])
                 if alias is not None)


def _call(t: Tree) -> S.Call:
    return S.Call(_dotted(t.children[0]), _args(t.children[1]), _meta_span(t))


def _applied(t: Tree) -> S.Applied:
    return S.Applied(_call(t.children[0]), _args(t.children[1]), _meta_span(t))


def _args(args_tree) -> tuple[S.Arg, ...]:
    return tuple(_arg(a) for a in args_tree.children if a is not None) if args_tree else ()


def _dotted(t: Tree) -> S.Name:
    return S.Name(tuple(str(c) for c in t.children), _meta_span(t))


def _arg(a) -> S.Arg:
    if isinstance(a, Tree) and a.data == "kwarg":
        key, val = a.children
        return S.Arg(str(key), _value(val), _meta_span(a), _span(key))
    if isinstance(a, Tree) and a.data == "input_kwarg":
        (val,) = a.children
        span = _meta_span(a)
        return S.Arg("input", _value(val), span, Span(span.line, span.column, span.line, span.column + 5))
    v = _value(a)
    return S.Arg(None, v, v.span)


def _value(v) -> S.Value:
    kind = v.data
    if kind == "number":
        tok = v.children[0]
        return S.Number(_number(str(tok), _span(tok)), str(tok), _span(tok))
    if kind == "string":
        tok = v.children[0]
        return S.String(_string(str(tok)), _span(tok))
    if kind == "name":
        return _dotted(v.children[0])
    if kind == "input_name":
        return S.Name(("input",), _meta_span(v))
    if kind == "tuple":
        return S.Tuple(tuple(_value(c) for c in v.children if c is not None), _meta_span(v))
    if kind == "list":
        return S.List(tuple(_value(c) for c in v.children if c is not None), _meta_span(v))
    if kind == "call":
        return _call(v)
    if kind == "applied":
        return _applied(v)
    if kind in arith.OPERATORS:
        return arith.combine(kind, [_value(c) for c in v.children], _meta_span(v))
    raise AssertionError(f"grammar rule {kind!r} has no conversion")


def _string(text: str) -> str:
    """Python's string escapes; an unknown escape stays as written (as in Python)."""
    if "\\" not in text:  # the common case ('relu'): no need to compile anything
        return text[1:-1]
    import ast  # only for escapes: keeps `cnnc check` from loading the ast module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Python warns about unknown escapes such as '\m'
        try:
            return ast.literal_eval(text)
        except (SyntaxError, ValueError):
            return text[1:-1]


MAX_DIGITS = 1_000     # an integer literal's digits: far beyond any size (Python stops at 4,300)


def _number(text: str, span: Span) -> int | float:
    """The literal's value. An integer of more than MAX_DIGITS digits (Python refuses to
    convert over 4,300: a 5,000-digit one was an internal error) and a float that is
    infinite (1e999) are errors at the number; a large but exact integer (10**24 units) is
    a value, which the checks after it refuse or print exactly."""
    clean = text.replace("_", "")
    is_float = any(c in clean for c in ".eE")
    digits = len(clean.split("e")[0].split("E")[0].split(".")[0].lstrip("0"))
    if not is_float and digits > MAX_DIGITS:
        raise arith.FoldError(f"the number {_cut(text)} has {digits:,} digits, more than cnnc "
                              f"reads ({MAX_DIGITS:,})", span, "no size or setting needs a number this long")
    if not is_float:
        return int(clean)
    value = float(clean) if digits <= 400 else math.inf
    if not math.isfinite(value):
        raise arith.FoldError(f"the number {_cut(text)} is too large for a float (it would be "
                              "infinite)", span, "no setting of a model needs a number beyond 1e308")
    return value


def _cut(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}...{text[-6:]} ({len(text):,} characters)"

