"""An abstract interpreter of the pure part of Python, by construction: every statement
and expression form of Python 3.8-3.13 is run as Python runs it, on the evaluator's
values (values.py). What cannot be known without running the script is an `Unknown`
that flows through every operation as unknown: it never stops the walk and is never
replaced by a guess.

A condition on an unknown value is a *decision*: this run takes one side (the same
side for the same condition throughout the run), and records it, so that the driver
(explore.py) runs the script again with the other side. Sides that only print or log
are not decisions; a side that raises or exits is never taken when the other does not.

Bounded work: every expression is a step, and the work inside builtins (the items of a
list built, the characters of a string, the values a comparison or `str()` walks) is
charged too; loops, recursion and the size and nesting of values have caps. Python's
own C code never sees a value nested deeper than MAX_DEPTH (it would overflow the C
stack hashing or printing it).

The Keras part (evaluator.py) extends the hooks at the end of this class.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from cnnc.frontends.python.limits import (
    EXCEPTIONS,
    MAX_CALL_DEPTH,
    MAX_DEPTH,
    MAX_INT,
    MAX_ITEMS,
    MAX_ITERATIONS,
    MAX_LOOP,
    MAX_SEQUENCE,
    MAX_STEPS,
    PLAIN,
    SCALARS,
    WORK_PER_STEP,
    Budget,
    _all_plain,
    _Break,
    _Continue,
    _Raise,
    _Return,
)
from cnnc.frontends.python.scope import _MISSING, Scope
from cnnc.frontends.python.values import (
    ArgVal,
    BoundMethod,
    Builtin,
    ClassMethod,
    ClassVal,
    FuncVal,
    InstanceVal,
    IterVal,
    Method,
    ModuleVal,
    ObjectVal,
    PartialVal,
    Property,
    StaticMethod,
    SuperRef,
    Unknown,
    describe,
    python_error,
)
from cnnc.support.diagnostics import Span

_OP_NAMES = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
             ast.Mod: "%", ast.Pow: "**", ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^",
             ast.LShift: "<<", ast.RShift: ">>", ast.MatMult: "@"}
_DUNDER = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__", ast.Div: "__truediv__",
           ast.FloorDiv: "__floordiv__", ast.Mod: "__mod__", ast.Pow: "__pow__",
           ast.MatMult: "__matmul__"}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge}

# Calls that only show, log or touch files: a side of an unknown condition made of these
# alone is no decision (`if verbose: print(...)`, `if not os.path.exists(d): os.makedirs(d)`).
INERT_MODULES = frozenset({"matplotlib", "logging", "warnings", "os", "shutil", "time", "pprint",
                           "IPython", "seaborn", "wandb", "mlflow", "json", "pickle", "csv", "sys",
                           "tqdm", "datetime", "glob", "pathlib", "random", "cv2", "PIL",
                           "tensorboard", "plotly", "gc", "subprocess", "zipfile", "tarfile",
                           "urllib", "requests", "wget", "gdown", "h5py", "joblib", "psutil"})
INERT_NAMES = frozenset({"print", "display", "pprint", "plot", "show", "imshow", "log",
                         "makedirs", "mkdir", "remove", "rmtree", "sleep", "write", "savefig",
                         "warn", "info", "debug", "warning", "error", "close", "flush",
                         "plot_model", "summary", "save", "save_weights", "set_seed", "seed"})


def known(v) -> bool:
    return not isinstance(v, Unknown)


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _has_yield(node) -> bool:
    """Whether a function's own body yields (nested functions and lambdas aside)."""
    stack = list(ast.iter_child_nodes(node))
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.Yield, ast.YieldFrom)):
            return True
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(n))
    return False


class Interpreter:
    """Python's semantics on the evaluator's values; Keras comes in through the hooks."""

    def __init__(self, smap, rep, decisions=None):
        self.smap = smap
        self.rep = rep
        self.steps = 0
        self.step_limit = MAX_STEPS
        self.iterations = 0
        self.depth = 0
        self.items_made = 0
        self.touched = False
        self.self_stack: list = []
        self.gen_stack: list[list] = []
        self.decisions = decisions           # explore.Decisions of this run (None: no forks)
        self.facts_eq: dict[str, Any] = {}    # a named unknown's value, decided by a condition
        self.facts_ne: dict[str, set] = {}
        self.called: set[int] = set()        # ids of the function nodes the script called
        self._generator_cache: dict[int, bool] = {}
        self._noted: set = set()
        self.absl_flags: dict[str, Any] = {}

    # --- positions -------------------------------------------------------------------

    def span(self, node: ast.AST) -> Span:
        return self.smap.span(node)

    def snippet(self, node: ast.AST, limit: int = 60) -> str:
        return self.smap.snippet(node, limit)

    def where(self, line: int) -> str:
        return self.smap.where(line)

    def note_once(self, key, message: str, span: Span | None, *notes: str, error: bool = False) -> None:
        if key in self._noted:
            return
        self._noted.add(key)
        (self.rep.error if error else self.rep.warning)(message, span, *notes)

    # --- budgets ---------------------------------------------------------------------

    def tick(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > self.step_limit:
            raise Budget(f"cnnc stopped following the script here: it takes more than "
                         f"{self.step_limit:,} steps to evaluate", self.span(node))

    def charge(self, n: int, node) -> None:
        """Work done inside a builtin (items walked, characters built) counts as steps."""
        if n > WORK_PER_STEP:
            self.steps += n // WORK_PER_STEP
            if self.steps > self.step_limit and node is not None:
                self.tick(node)

    def count_iteration(self, i: int, node: ast.AST) -> None:
        self.iterations += 1
        if i >= MAX_LOOP or self.iterations > MAX_ITERATIONS:
            raise Budget(f"cnnc stopped following this loop after {min(i, MAX_LOOP):,} iterations "
                         f"({self.iterations:,} in all)", self.span(node))

    def check_size(self, seq, node) -> None:
        if len(seq) > MAX_SEQUENCE:
            raise Budget(f"this builds a sequence of more than {MAX_SEQUENCE:,} items", self.span(node))

    def count_items(self, n: int, node) -> None:
        """Every list, tuple and string the script builds counts against one budget
        (each may hold 100,000 items, but not ten thousand of them)."""
        self.items_made += n
        self.charge(n, node)
        if self.items_made > MAX_ITEMS:
            raise Budget(f"the script builds more than {MAX_ITEMS:,} list items and characters "
                         "in all", self.span(node) if node is not None else None)

    def measure(self, v, node) -> tuple[int, int] | None:
        """(nesting depth, size as printed) of a plain value, walked once per object (so
        aliased lists are not walked again, but count every time they are printed); None
        when it nests deeper than MAX_DEPTH. The walk is charged to the step budget."""
        if isinstance(v, SCALARS):
            return 1, len(v) if isinstance(v, (str, bytes)) else 8
        memo: dict[int, tuple[int, int]] = {}
        on_path: set[int] = set()
        stack: list[tuple[Any, int, bool]] = [(v, 1, False)]
        visited = 0
        while stack:
            x, level, done = stack.pop()
            if level > MAX_DEPTH:
                self.charge(visited, node)
                return None
            if isinstance(x, SCALARS) or not isinstance(x, (tuple, list, dict, set, frozenset)):
                continue
            k = id(x)
            if done:
                on_path.discard(k)
                children = _children(x)
                visited += len(children)
                depth = 1 + max((memo.get(id(c), (1, 0))[0] if not isinstance(c, SCALARS) else 1
                                 for c in children), default=0)
                size = 2 + sum((memo.get(id(c), (1, 8))[1] if not isinstance(c, SCALARS) else
                                (len(c) if isinstance(c, (str, bytes)) else 8)) + 2 for c in children)
                memo[k] = (depth, min(size, 1 << 62))
                continue
            if k in memo or k in on_path:
                continue
            visited += 1
            on_path.add(k)
            stack.append((x, level, True))
            for c in _children(x):
                if not isinstance(c, SCALARS):
                    stack.append((c, level + 1, False))
        self.charge(visited, node)
        return memo.get(id(v), (1, 8))

    def guarded(self, v, node, what: str = "this value") -> Unknown | None:
        """An Unknown when Python's C code should not see `v` (too deep or too large to
        print), else None."""
        m = self.measure(v, node)
        if m is None:
            return Unknown(f"{what} nests values more than {MAX_DEPTH} deep", self.span(node))
        if m[1] > 4 * MAX_SEQUENCE:
            return Unknown(f"{what} is too large to follow", self.span(node))
        return None

    # --- decisions on unknown conditions ---------------------------------------------

    def decide(self, cond: Unknown, test: ast.AST, bodies: tuple | None, scope: Scope) -> bool | None:
        """Which side of an unknown condition this run takes (None: neither matters)."""
        if bodies is not None:
            stops = [self.stops(b) for b in bodies]
            if stops[0] != stops[1]:
                return not stops[0]
            if all(self.inert(b, scope) for b in bodies):
                return None
        key, text, flip = self.cond_key(cond, test)
        value = self.choose(key, text, test)
        self.learn(cond, value ^ flip)
        return value ^ flip

    def choose(self, key, text: str, node) -> bool:
        d = self.decisions
        if d is None:
            return True
        return d.choose(key, text, self.span(node), self.where(node.lineno))

    def cond_key(self, cond: Unknown, test: ast.AST) -> tuple[tuple, str, bool]:
        if cond.test is not None:
            name, value, equal = cond.test
            return ("eq", name, repr(value)), f"{name} == {value!r}", not equal
        return ("text", self.snippet(test, 200)), self.snippet(test), False

    def learn(self, cond: Unknown, truth: bool) -> None:
        """What a decided comparison tells about its unknown for the rest of the run."""
        if cond.test is None:
            return
        name, value, equal = cond.test
        if truth == equal:
            self.facts_eq[name] = value
        else:
            self.facts_ne.setdefault(name, set()).add(value)

    def resolved(self, v):
        """A named unknown whose value a decided condition fixed: that value."""
        if isinstance(v, Unknown) and v.name is not None and v.name in self.facts_eq:
            return self.facts_eq[v.name]
        return v

    def stops(self, body: list[ast.stmt]) -> bool:
        """A side that ends the program: raise, sys.exit(), exit(), quit()."""
        if not body:
            return False
        last = body[-1]
        if isinstance(last, ast.Raise):
            return True
        if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
            f = last.value.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            return name in ("exit", "quit", "_exit") and (
                isinstance(f, ast.Name) or isinstance(f.value, ast.Name) and f.value.id in ("sys", "os"))
        return False

    def inert(self, body: list[ast.stmt], scope: Scope) -> bool:
        for stmt in body:
            if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                continue
            if isinstance(stmt, ast.If) and self.inert(stmt.body, scope) and self.inert(stmt.orelse, scope):
                continue
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and self.inert_call(
                    stmt.value, scope):
                continue
            return False
        return True

    def inert_call(self, call: ast.Call, scope: Scope) -> bool:
        f = call.func
        if isinstance(f, ast.Name):
            return f.id in ("print", "display", "pprint")
        root = f
        while isinstance(root, ast.Attribute):
            root = root.value
        if not isinstance(root, ast.Name):
            return False
        v = scope.lookup(root.id)
        from cnnc.frontends.python.values import ModuleRef
        if isinstance(v, ModuleRef) and v.path[0] in INERT_MODULES:
            return True
        return isinstance(f, ast.Attribute) and f.attr in INERT_NAMES and root.id in (
            "plt", "logger", "log", "logging", "writer", "wandb", "sns")

    # --- the module ------------------------------------------------------------------

    def exec_block(self, body: list[ast.stmt], scope: Scope) -> None:
        for stmt in body:
            self.exec_stmt(stmt, scope)

    def exec_stmt(self, stmt: ast.stmt, scope: Scope) -> None:
        self.steps += 1
        if self.steps > self.step_limit:
            self.tick(stmt)
        method = _dispatch(type(self), "s_", type(stmt))
        if method is not None:
            method(self, stmt, scope)

    # --- statements -------------------------------------------------------------------

    def s_Expr(self, stmt, scope):
        self.eval(stmt.value, scope)

    def s_Assign(self, stmt, scope):
        value = self.eval(stmt.value, scope)
        for target in stmt.targets:
            self.assign(target, value, scope, stmt.value)

    def s_AnnAssign(self, stmt, scope):
        if stmt.value is not None:
            self.assign(stmt.target, self.eval(stmt.value, scope), scope, stmt.value)
        elif scope.kind == "class" and isinstance(stmt.target, ast.Name):
            scope.vars.setdefault("__annotations__", {})[stmt.target.id] = True

    def s_AugAssign(self, stmt, scope):
        target = stmt.target
        cur = self.eval(ast.copy_location(_load(target), target), scope) if not isinstance(
            target, ast.Name) else self.lookup_name(target, scope)
        value = self.binop(type(stmt.op), cur, self.eval(stmt.value, scope), stmt, target, stmt.value,
                           inplace=True)
        self.assign(target, value, scope, stmt.value)

    def s_Import(self, stmt, scope):
        self.do_import(stmt, scope)

    s_ImportFrom = s_Import

    def s_FunctionDef(self, stmt, scope):
        f = self.make_function(stmt, scope)
        self.bind(stmt.name, self.decorate(f, stmt.decorator_list, scope), scope)

    s_AsyncFunctionDef = s_FunctionDef

    def s_ClassDef(self, stmt, scope):
        self.define_class(stmt, scope)

    def s_Return(self, stmt, scope):
        raise _Return(self.eval(stmt.value, scope) if stmt.value is not None else None)

    def s_If(self, stmt, scope):
        v = self.eval(stmt.test, scope)
        cond = self.truth(v, stmt.test)
        if cond is None:
            cond = self.decide(self.as_unknown(v, stmt.test), stmt.test, (stmt.body, stmt.orelse), scope)
            if cond is None:
                return
        self.exec_block(stmt.body if cond else stmt.orelse, scope)

    def s_For(self, stmt, scope):
        it = self.iterable(self.eval(stmt.iter, scope), stmt.iter)
        if isinstance(it, Unknown):
            self.poison([stmt.body], scope,
                        f"it is set in the loop at {self.where(stmt.lineno)} over "
                        f"`{self.snippet(stmt.iter)}`, which cnnc cannot know", self.span(stmt.iter))
            self.assign(stmt.target, it, scope, None)
            return
        for i, item in enumerate(it):
            self.count_iteration(i, stmt)
            self.assign(stmt.target, item, scope, None)
            try:
                self.exec_block(stmt.body, scope)
            except _Break:
                return
            except _Continue:
                continue
        self.exec_block(stmt.orelse, scope)

    s_AsyncFor = s_For

    def s_While(self, stmt, scope):
        i = 0
        while True:
            v = self.eval(stmt.test, scope)
            cond = self.truth(v, stmt.test)
            if cond is None:
                self.poison([stmt.body], scope,
                            f"it is set in the loop at {self.where(stmt.lineno)}, whose condition "
                            "cnnc cannot know", self.span(stmt.test))
                return
            if not cond:
                self.exec_block(stmt.orelse, scope)
                return
            self.count_iteration(i, stmt)
            i += 1
            try:
                self.exec_block(stmt.body, scope)
            except _Break:
                return
            except _Continue:
                continue

    def s_With(self, stmt, scope):
        for item in stmt.items:
            v = self.eval(item.context_expr, scope)
            entered = self.enter(v, item.context_expr)
            if item.optional_vars is not None:
                self.assign(item.optional_vars, entered, scope, item.context_expr)
        self.exec_block(stmt.body, scope)

    s_AsyncWith = s_With

    def enter(self, v, node):
        """What `with v as x` binds to x."""
        if isinstance(v, InstanceVal):
            f = self.class_attr(v.cls, "__enter__")
            if isinstance(f, FuncVal):
                return self.call_function(f, [], node, self_obj=v)
        if isinstance(v, Unknown):
            return v
        return Unknown(f"the value of `with {self.snippet(node)}`", self.span(node))

    def s_Try(self, stmt, scope):
        try:
            try:
                self.exec_block(stmt.body, scope)
            except _Raise as r:
                if r.exits or not self.handle(stmt.handlers, r, scope):
                    raise
            else:
                self.exec_block(stmt.orelse, scope)
        finally:
            self.exec_block(stmt.finalbody, scope)

    s_TryStar = s_Try

    def handle(self, handlers, r: _Raise, scope) -> bool:
        for h in handlers:
            if h.type is not None and not self.exception_matches(r.exc, self.eval(h.type, scope)):
                continue
            if h.name:
                self.bind(h.name, r.exc if r.exc is not None else Unknown(
                    "the exception caught here", self.span(h)), scope)
            self.exec_block(h.body, scope)
            return True
        return False

    def exception_matches(self, exc, types) -> bool:
        types = types if isinstance(types, tuple) else (types,)
        name = exc.attrs.get("type") if isinstance(exc, ObjectVal) else None
        for t in types:
            want = t.name if isinstance(t, Builtin) else t.name if isinstance(t, ClassVal) else None
            if want is None or name is None:
                return True               # an exception or a type cnnc cannot tell: the first handler
            cur = name
            while cur is not None:
                if cur == want:
                    return True
                cur = EXCEPTIONS.get(cur, "Exception" if cur != "Exception" else None)
        return False

    def s_Raise(self, stmt, scope):
        exc = self.eval(stmt.exc, scope) if stmt.exc is not None else None
        if isinstance(exc, Builtin) and exc.name in EXCEPTIONS:
            exc = ObjectVal("exception", {"type": exc.name, "args": ()})
        raise _Raise(exc, span=self.span(stmt))

    def s_Assert(self, stmt, scope):
        if self.truth(self.eval(stmt.test, scope), stmt.test) is False:
            raise _Raise(ObjectVal("exception", {"type": "AssertionError", "args": ()}),
                         span=self.span(stmt))

    def s_Delete(self, stmt, scope):
        for target in stmt.targets:
            if isinstance(target, ast.Name):
                scope.target(target.id).vars.pop(target.id, None)
            elif isinstance(target, ast.Subscript):
                obj, key = self.eval(target.value, scope), self.eval(target.slice, scope)
                if isinstance(obj, dict) and self.hashable(key, target):
                    obj.pop(key, None)
                elif isinstance(obj, list) and (is_int(key) or isinstance(key, slice)):
                    try:
                        del obj[key]
                    except (IndexError, TypeError, ValueError):
                        pass
            elif isinstance(target, ast.Attribute):
                obj = self.eval(target.value, scope)
                if isinstance(obj, (InstanceVal, ObjectVal)):
                    obj.attrs.pop(target.attr, None)

    def s_Global(self, stmt, scope):
        scope.declared_global.update(stmt.names)

    def s_Nonlocal(self, stmt, scope):
        scope.declared_nonlocal.update(stmt.names)

    def s_Break(self, stmt, scope):
        raise _Break()

    def s_Continue(self, stmt, scope):
        raise _Continue()

    def s_Match(self, stmt, scope):
        subject = self.eval(stmt.subject, scope)
        for case in stmt.cases:
            bound: dict[str, Any] = {}
            case = _CaseIn(case, scope)
            hit = self.match(case.pattern, subject, bound, case)
            if hit is None:
                key = ("match", self.snippet(stmt.subject, 200), self.snippet(case.pattern, 200))
                hit = self.choose(key, f"{self.snippet(stmt.subject)} matches "
                                  f"{self.snippet(case.pattern)}", case.pattern)
            if not hit:
                continue
            for name, v in bound.items():
                self.bind(name, v, scope)
            if case.guard is not None:
                g = self.truth(self.eval(case.guard, scope), case.guard)
                if g is None:
                    g = self.decide(self.as_unknown(Unknown("guard"), case.guard), case.guard, None, scope)
                if not g:
                    continue
            self.exec_block(case.body, scope)
            return

    def match(self, p, v, bound: dict, case) -> bool | None:
        """Whether `v` matches the pattern (None: cannot be known), binding captures."""
        t = type(p).__name__
        if t == "MatchAs":
            if p.pattern is not None:
                hit = self.match(p.pattern, v, bound, case)
                if hit is not True:
                    return hit
            if p.name:
                bound[p.name] = v
            return True
        if t == "MatchOr":
            results = [self.match(q, v, bound, case) for q in p.patterns]
            return True if True in results else None if None in results else False
        if isinstance(v, Unknown):
            return None
        if t == "MatchValue":
            want = self.eval(p.value, getattr(case, "scope", None) or Scope(None))
            return self.compare_values(ast.Eq, v, want, p.value)
        if t == "MatchSingleton":
            return v is p.value
        if t == "MatchSequence":
            if not isinstance(v, (list, tuple)):
                return False
            star = next((i for i, q in enumerate(p.patterns) if type(q).__name__ == "MatchStar"), None)
            n = len(p.patterns)
            if (star is None and len(v) != n) or (star is not None and len(v) < n - 1):
                return False
            items = list(v)
            if star is not None:
                tail = n - star - 1
                mid = items[star:len(items) - tail]
                if p.patterns[star].name:
                    bound[p.patterns[star].name] = mid
                pairs = list(zip(p.patterns[:star], items[:star])) + list(
                    zip(p.patterns[star + 1:], items[len(items) - tail:]))
            else:
                pairs = list(zip(p.patterns, items))
            results = [self.match(q, x, bound, case) for q, x in pairs]
            return False if False in results else None if None in results else True
        if t == "MatchMapping":
            if not isinstance(v, dict):
                return False
            results = []
            for k, q in zip(p.keys, p.patterns):
                key = self.eval(k, getattr(case, "scope", None) or Scope(None))
                if not self.hashable(key, k) or key not in v:
                    return False
                results.append(self.match(q, v[key], bound, case))
            if p.rest:
                bound[p.rest] = dict(v)
            return False if False in results else None if None in results else True
        if t == "MatchClass":
            return self.match_class(p, v, bound, case)
        return None

    def match_class(self, p, v, bound: dict, case) -> bool | None:
        """`case Point(x, y=0)`, `case str() as s`: isinstance, then the attributes."""
        from cnnc.frontends.python.pybuiltins import type_check
        cls = self.eval(p.cls, case.scope) if hasattr(case, "scope") else None
        if cls is None:
            return None
        hit = type_check(self, v, cls)
        if hit is not True:
            return hit
        results = []
        if p.patterns:
            if isinstance(cls, Builtin) and len(p.patterns) == 1:
                results.append(self.match(p.patterns[0], v, bound, case))   # str(x): the subject
            else:
                names = self.class_attr(cls, "__match_args__") if isinstance(cls, ClassVal) else None
                if not isinstance(names, tuple) or len(names) < len(p.patterns):
                    return None
                for name, q in zip(names, p.patterns):
                    results.append(self.match(q, self.attribute(v, name, p), bound, case))
        for name, q in zip(p.kwd_attrs, p.kwd_patterns):
            results.append(self.match(q, self.attribute(v, name, p), bound, case))
        return False if False in results else None if None in results else True

    # --- assignment -------------------------------------------------------------------

    def lookup_name(self, node: ast.Name, scope: Scope):
        v = scope.lookup(node.id)
        return v if v is not _MISSING else Unknown(f"'{node.id}' is not defined", self.span(node))

    def assign(self, target: ast.expr, value, scope: Scope, value_node: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id, value, scope)
        elif isinstance(target, (ast.Tuple, ast.List)):
            self.unpack(target, value, scope)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, value, scope, value_node)
        elif isinstance(target, ast.Attribute):
            self.set_attribute(self.eval(target.value, scope), target.attr, value, target)
        elif isinstance(target, ast.Subscript):
            self.set_item(self.eval(target.value, scope), self.eval(target.slice, scope), value, target)

    def unpack(self, target, value, scope) -> None:
        elts = target.elts
        star = next((i for i, e in enumerate(elts) if isinstance(e, ast.Starred)), None)
        items = self.unpacked(value, target)
        if isinstance(items, list) and (len(items) == len(elts) if star is None else
                                        len(items) >= len(elts) - 1):
            if star is not None:
                after = len(elts) - star - 1
                items = items[:star] + [items[star:len(items) - after]] + items[len(items) - after:]
            for e, v in zip(elts, items):
                self.assign(e, v, scope, None)
            return
        why = value if isinstance(value, Unknown) else Unknown(
            f"the values unpacked here (`{self.snippet(target)}`) are not known", self.span(target))
        for e in elts:
            self.assign(e, why, scope, None)

    def unpacked(self, value, node):
        """The items `a, b = value` takes, or None."""
        if isinstance(value, (tuple, list)):
            return list(value)
        if isinstance(value, InstanceVal) and value.cls.tuple_like:
            return [value.attrs.get(f) for f, _ in value.cls.fields or ()]
        if isinstance(value, Unknown):
            return None
        it = self.iterable(value, node)
        return list(it) if not isinstance(it, Unknown) else None

    def bind(self, name: str, value, scope: Scope) -> None:
        scope.target(name).vars[name] = value
        if known(value):
            self.touched = True

    def set_attribute(self, obj, attr: str, value, node) -> None:
        if isinstance(obj, InstanceVal):
            prop = self.class_attr(obj.cls, attr)
            if isinstance(prop, Property) and prop.fset is not None:
                self.call_value(prop.fset, [ArgVal(None, obj, self.span(node)),
                                            ArgVal(None, value, self.span(node))], node)
            else:
                obj.attrs[attr] = value
            self.touched = True
        elif isinstance(obj, (ObjectVal, ModuleVal)):
            (obj.attrs if isinstance(obj, ObjectVal) else obj.scope.vars)[attr] = value
        elif isinstance(obj, ClassVal):
            obj.attrs[attr] = value
        else:
            self.set_attribute_other(obj, attr, value, node)

    def set_item(self, obj, key, value, node) -> None:
        if isinstance(obj, dict):
            if self.hashable(key, node):
                obj[key] = value
                self.count_items(1, node)
        elif isinstance(obj, list):
            if is_int(key) and -len(obj) <= key < len(obj):
                obj[key] = value
            elif isinstance(key, slice) and isinstance(value, (list, tuple)):
                try:
                    obj[key] = value
                except (ValueError, TypeError):
                    return
                self.check_size(obj, node)
        elif isinstance(obj, InstanceVal):
            f = self.class_attr(obj.cls, "__setitem__")
            if isinstance(f, FuncVal):
                self.call_function(f, [ArgVal(None, key, self.span(node)),
                                       ArgVal(None, value, self.span(node))], node, self_obj=obj)

    def hashable(self, key, node) -> bool:
        """Whether `key` may be a dict key or set member: known, hashable, and shallow
        enough for Python's hash (a tuple nested 200,000 deep overflows the C stack)."""
        if isinstance(key, Unknown):
            return False
        if isinstance(key, (tuple, frozenset)) and self.measure(key, node) is None:
            return False
        try:
            hash(key)
        except TypeError:
            return False
        return True

    def poison(self, bodies, scope: Scope, why: str, span: Span) -> None:
        """A block cnnc cannot run (a loop over unknown values): what it would have
        assigned and the models it would have changed become unknown."""
        names: set[str] = set()
        for body in bodies:
            for stmt in body:
                for n in ast.walk(stmt):
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                        names.add(n.id)
                    elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                          and isinstance(n.func.value, ast.Name)):
                        obj = scope.lookup(n.func.value.id)
                        self.poison_call(obj, n.func.attr, why, span)
                        if isinstance(obj, (list, dict, set)) and n.func.attr in (
                                "append", "extend", "insert", "update", "add", "pop", "remove"):
                            names.add(n.func.value.id)
        for name in names:
            scope.target(name).vars[name] = Unknown(why, span)

    def poison_call(self, obj, method: str, why: str, span: Span) -> None:
        """Hook: a method call in a block cnnc cannot run (model.add in a loop)."""

    # --- expressions ------------------------------------------------------------------

    def eval(self, node: ast.expr, scope: Scope):
        self.steps += 1
        if self.steps > self.step_limit:
            self.tick(node)
        method = _dispatch(type(self), "e_", type(node))
        if method is None:
            return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))
        return method(self, node, scope)

    def as_unknown(self, v, node) -> Unknown:
        if isinstance(v, Unknown):
            return v
        return Unknown(f"`{self.snippet(node)}` cannot be known without running the script",
                       self.span(node))

    def e_Constant(self, node, scope):
        v = node.value
        if isinstance(v, (str, bytes)) and len(v) > MAX_SEQUENCE:
            return Unknown("a very long string", self.span(node))
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
            return Unknown("a number too large for any model", self.span(node))
        return v

    def e_Name(self, node, scope):
        v = scope.lookup(node.id)
        if v is _MISSING:
            v = self.missing_name(node, scope)
        return self.resolved(v)

    def missing_name(self, node, scope):
        """A name bound nowhere in scope: a builtin, else unknown (Keras extends this)."""
        from cnnc.frontends.python.pybuiltins import builtin_name
        b = builtin_name(node.id)
        if b is not None:
            return b
        return Unknown(f"'{node.id}' is not defined in this file", self.span(node), name=node.id)

    def e_Tuple(self, node, scope):
        return tuple(self.elements(node.elts, scope, node))

    def e_List(self, node, scope):
        return self.elements(node.elts, scope, node)

    def e_Set(self, node, scope):
        items = self.elements(node.elts, scope, node)
        return self.make_set(items, node)

    def make_set(self, items, node):
        if not all(self.hashable(x, node) for x in items):
            bad = next((x for x in items if isinstance(x, Unknown)), None)
            return bad or Unknown(f"`{self.snippet(node)}`: a set of values cnnc cannot follow",
                                  self.span(node))
        return set(items)

    def elements(self, elts, scope, node) -> list:
        out = []
        for e in elts:
            if isinstance(e, ast.Starred):
                v = self.iterable(self.eval(e.value, scope), e.value)
                if isinstance(v, Unknown):
                    out.append(v)
                else:
                    out.extend(v)
            else:
                out.append(self.eval(e, scope))
            self.check_size(out, e)
        self.count_items(len(out), node)
        return out

    def e_Dict(self, node, scope):
        out = {}
        for k, v in zip(node.keys, node.values):
            val = self.eval(v, scope)
            if k is None:
                if isinstance(val, dict):
                    out.update(val)
                elif isinstance(val, Unknown):
                    return val
                continue
            key = self.eval(k, scope)
            if not self.hashable(key, k):
                return key if isinstance(key, Unknown) else Unknown(
                    "a dict with keys cnnc cannot follow", self.span(node))
            out[key] = val
        self.count_items(len(out), node)
        return out

    def e_JoinedStr(self, node, scope):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
                continue
            piece = self.formatted(v, scope, node)
            if not isinstance(piece, str):
                return piece
            parts.append(piece)
            if sum(map(len, parts)) > MAX_SEQUENCE:
                return Unknown("a very long string", self.span(node))
        out = "".join(parts)
        self.count_items(len(out), node)
        return out

    def formatted(self, v: ast.FormattedValue, scope, node):
        x = self.eval(v.value, scope)
        spec = ""
        if v.format_spec is not None:
            spec = self.eval(v.format_spec, scope)
            if not isinstance(spec, str):
                return self.as_unknown(spec, v)
        text = self.to_str(x, v.value, {115: "str", 114: "repr", 97: "ascii"}.get(v.conversion, "str"),
                           spec if spec else None)
        if isinstance(text, Unknown):
            return Unknown(f"the f-string `{self.snippet(node)}` uses a value cnnc cannot know"
                           + (f" ({text.why})" if not text.why.startswith("`") else ""),
                           self.span(node), name=text.name)
        return text

    def e_FormattedValue(self, node, scope):
        return self.e_JoinedStr(ast.JoinedStr(values=[node]), scope)

    def to_str(self, x, node, how: str = "str", spec: str | None = None):
        """str(x), repr(x) or format(x, spec), bounded; Unknown where Python would print
        an object cnnc stands in for (a layer, a tensor) or a huge value."""
        from cnnc.frontends.python.pybuiltins import small_format
        x = self.resolved(x)
        if isinstance(x, Unknown):
            return x
        if not isinstance(x, PLAIN):
            s = self.str_of_object(x, node)
            if s is None or spec:
                return Unknown(f"`{self.snippet(node)}` prints {describe(x)}", self.span(node))
            return s
        bad = self.guarded(x, node)
        if bad is not None:
            return bad
        if not _all_plain(x):
            return Unknown(f"`{self.snippet(node)}` prints values cnnc cannot show", self.span(node))
        if spec is not None and not small_format(spec, ()):
            return Unknown("a value formatted wider than cnnc allows", self.span(node))
        try:
            if spec is not None:
                out = format(x, spec)
            else:
                out = {"str": str, "repr": repr, "ascii": ascii}[how](x)
        except (ValueError, TypeError) as e:
            return Unknown(f"`{self.snippet(node)}` fails in Python: {python_error(e)}", self.span(node))
        self.count_items(len(out), node)
        return out if len(out) <= MAX_SEQUENCE else Unknown("a very long string", self.span(node))

    def str_of_object(self, x, node) -> str | None:
        """Hook: how Python prints an object (a class, an enum member), or None."""
        if isinstance(x, ClassVal):
            return f"<class '{x.name}'>"
        if isinstance(x, InstanceVal) and x.cls.kind == "enum":
            return f"{x.cls.name}.{x.attrs.get('name')}"
        if isinstance(x, InstanceVal):
            f = self.class_attr(x.cls, "__str__") or self.class_attr(x.cls, "__repr__")
            if isinstance(f, FuncVal):
                out = self.call_function(f, [], node, self_obj=x)
                return out if isinstance(out, str) else None
        return None

    def e_IfExp(self, node, scope):
        v = self.eval(node.test, scope)
        cond = self.truth(v, node.test)
        if cond is None:
            cond = self.decide(self.as_unknown(v, node.test), node.test, None, scope)
        return self.eval(node.body if cond else node.orelse, scope)

    def e_BoolOp(self, node, scope):
        is_and = isinstance(node.op, ast.And)
        v = None
        for e in node.values:
            v = self.eval(e, scope)
            t = self.truth(v, e)
            if t is None:
                return Unknown(f"the condition `{self.snippet(node)}` cannot be known", self.span(node))
            if t != is_and:
                return v
        return v

    def e_UnaryOp(self, node, scope):
        v = self.eval(node.operand, scope)
        if isinstance(node.op, ast.Not):
            t = self.truth(v, node.operand)
            if t is None:
                u = self.as_unknown(v, node)
                if u.test is not None:
                    name, value, equal = u.test
                    return Unknown(u.why, u.span, u.data, u.name, (name, value, not equal))
                return Unknown(f"`{self.snippet(node)}` cannot be known", self.span(node))
            return not t
        return self.unary_value(node, v)

    def unary_value(self, node, v):
        if isinstance(v, Unknown):
            return v
        if isinstance(v, (int, float, complex)):
            if isinstance(node.op, ast.Invert):
                return ~v if isinstance(v, int) else Unknown(f"`{self.snippet(node)}` fails in Python",
                                                            self.span(node))
            return -v if isinstance(node.op, ast.USub) else +v
        if isinstance(v, InstanceVal):
            name = {ast.USub: "__neg__", ast.UAdd: "__pos__", ast.Invert: "__invert__"}[type(node.op)]
            f = self.class_attr(v.cls, name)
            if isinstance(f, FuncVal):
                return self.call_function(f, [], node, self_obj=v)
        return self.unary_other(node, v)

    def unary_other(self, node, v):
        """Hook: -tensor, -array."""
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))

    def e_BinOp(self, node, scope):
        a = self.eval(node.left, scope)
        b = self.eval(node.right, scope)
        return self.binop(type(node.op), a, b, node, node.left, node.right)

    def binop(self, op, a, b, node, left, right, inplace: bool = False):
        from cnnc.frontends.python.pybuiltins import plain_binop
        special = self.binop_other(op, a, b, node, left, right)
        if special is not None:
            return special
        for v in (a, b):
            if isinstance(v, Unknown):
                return Unknown(v.why, v.span, v.data, v.name and self.snippet(node))
        if inplace and op is ast.Add and isinstance(a, list) and isinstance(b, (list, tuple, range)):
            a.extend(b)                      # `layers += [...]` extends the list itself
            self.check_size(a, node)
            self.count_items(len(b), node)
            return a
        if inplace and op is ast.BitOr and isinstance(a, (dict, set)) and type(a) is type(b):
            a.update(b)
            return a
        if isinstance(a, InstanceVal) or isinstance(b, InstanceVal):
            return self.dunder_binop(op, a, b, node)
        return plain_binop(self, op, a, b, node)

    def binop_other(self, op, a, b, node, left, right):
        """Hook: tensors and arrays in arithmetic (None: not one)."""
        return None

    def dunder_binop(self, op, a, b, node):
        name = _DUNDER.get(op)
        if isinstance(a, InstanceVal) and name:
            f = self.class_attr(a.cls, name)
            if isinstance(f, FuncVal):
                return self.call_function(f, [ArgVal(None, b, self.span(node))], node, self_obj=a)
        if isinstance(b, InstanceVal) and name:
            f = self.class_attr(b.cls, "__r" + name[2:])
            if isinstance(f, FuncVal):
                return self.call_function(f, [ArgVal(None, a, self.span(node))], node, self_obj=b)
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))

    def e_Compare(self, node, scope):
        left = self.eval(node.left, scope)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.eval(right_node, scope)
            ok = self.compare_values(type(op), left, right, node)
            if ok is not True:
                return ok
            left = right
        return True

    def compare_values(self, op, a, b, node):
        """a <op> b: True/False, or an Unknown (with the comparison it is, for facts)."""
        a, b = self.resolved(a), self.resolved(b)
        if isinstance(a, Unknown) or isinstance(b, Unknown):
            return self.unknown_compare(op, a, b, node)
        if op in (ast.Is, ast.IsNot):
            same = _same(a, b)
            return same if op is ast.Is else not same
        if op in (ast.In, ast.NotIn):
            hit = self.contains(b, a, node)
            if isinstance(hit, Unknown):
                return hit
            return hit if op is ast.In else not hit
        if op in (ast.Eq, ast.NotEq):
            eq = self.equal(a, b, node)
            if isinstance(eq, Unknown):
                return eq
            return eq if op is ast.Eq else not eq
        if not (isinstance(a, PLAIN) and isinstance(b, PLAIN)):
            return self.compare_other(op, a, b, node)
        for v in (a, b):
            bad = self.guarded(v, node) if isinstance(v, (tuple, list)) else None
            if bad is not None:
                return bad
        try:
            return bool(_CMP[op](a, b))
        except TypeError as e:
            return Unknown(f"the comparison `{self.snippet(node)}` fails in Python: {python_error(e)}", self.span(node))

    def compare_other(self, op, a, b, node):
        """Hook: ordering of values that are not plain Python values."""
        return Unknown(f"the comparison `{self.snippet(node)}` cannot be known", self.span(node))

    def unknown_compare(self, op, a, b, node):
        u, other = (a, b) if isinstance(a, Unknown) else (b, a)
        text = self.snippet(node)
        if isinstance(u, Unknown) and u.name and isinstance(other, SCALARS) and not isinstance(other, Unknown) \
                and op in (ast.Eq, ast.NotEq, ast.Is, ast.IsNot):
            excluded = self.facts_ne.get(u.name, ())
            equal = op in (ast.Eq, ast.Is)
            if other in excluded:
                return not equal
            return Unknown(f"the comparison `{text}` cannot be known", self.span(node), u.data,
                           text, (u.name, other, equal))
        return Unknown(f"the comparison `{text}` cannot be known", self.span(node), u.data)

    def equal(self, a, b, node):
        if _same(a, b):
            return True
        if isinstance(a, PLAIN) and isinstance(b, PLAIN):
            for v in (a, b):
                if isinstance(v, (tuple, list, dict, set, frozenset)):
                    bad = self.guarded(v, node)
                    if bad is not None:
                        return bad
            if _all_plain(a) and _all_plain(b):
                return a == b
            return self.deep_equal(a, b, node)
        if isinstance(a, InstanceVal):
            f = self.class_attr(a.cls, "__eq__")
            if isinstance(f, FuncVal):
                return self.call_function(f, [ArgVal(None, b, self.span(node))], node, self_obj=a)
        return self.equal_other(a, b, node)

    def deep_equal(self, a, b, node):
        """== of containers that hold objects: by identity for the objects, as Python's
        default __eq__ (a layer equals only itself)."""
        if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
            return False
        if isinstance(a, (list, tuple)):
            if len(a) != len(b):
                return False
            for x, y in zip(a, b):
                e = self.equal(x, y, node)
                if e is not True:
                    return e
            return True
        if isinstance(a, dict):
            if a.keys() != b.keys():
                return False
            for k in a:
                e = self.equal(a[k], b[k], node)
                if e is not True:
                    return e
            return True
        return a == b

    def equal_other(self, a, b, node):
        """Hook: == of values that are not plain (frozen values compare by value)."""
        if isinstance(a, Unknown) or isinstance(b, Unknown):
            return Unknown(f"the comparison `{self.snippet(node)}` cannot be known", self.span(node))
        return False

    def contains(self, container, item, node):
        container = self.resolved(container)
        if isinstance(container, Unknown):
            return container
        if isinstance(container, (dict, set, frozenset)):
            if isinstance(item, Unknown):
                return item
            if not self.hashable(item, node):
                return Unknown(f"`{self.snippet(node)}` cannot be known", self.span(node))
            return item in container
        if isinstance(container, str):
            if not isinstance(item, str):
                return Unknown(f"`{self.snippet(node)}` fails in Python", self.span(node))
            return item in container
        it = self.iterable(container, node)
        if isinstance(it, Unknown):
            return it
        self.charge(len(it), node)
        unknown = None
        for x in it:
            e = self.equal(x, item, node)
            if e is True:
                return True
            if isinstance(e, Unknown):
                unknown = e
        return unknown if unknown is not None else False

    def e_Subscript(self, node, scope):
        obj = self.eval(node.value, scope)
        key = self.eval(node.slice, scope)
        return self.resolved(self.subscript(obj, key, node))

    def subscript(self, obj, key, node):
        if isinstance(obj, Unknown):
            if obj.data and is_int(key) and obj.name and obj.name.endswith(".shape"):
                from cnnc.frontends.python.datasize import data_size
                return data_size(self.snippet(node), self.span(node))     # x.shape[1]
            return Unknown(obj.why, obj.span, obj.data, self.snippet(node) if obj.name else None)
        if isinstance(key, Unknown):
            return key
        if isinstance(obj, (list, tuple, str, bytes, range)):
            if isinstance(key, slice) and not all(v is None or is_int(v) for v in (key.start, key.stop, key.step)):
                return Unknown(f"`{self.snippet(node)}`: a slice cnnc cannot work out", self.span(node))
            try:
                out = obj[key]
            except (IndexError, TypeError, ValueError) as e:
                return Unknown(f"`{self.snippet(node)}` fails in Python: {python_error(e)}", self.span(node))
            if isinstance(key, slice):
                self.count_items(len(out), node)
            return out
        if isinstance(obj, dict):
            if not self.hashable(key, node):
                return Unknown(f"`{self.snippet(node)}`: a key cnnc cannot follow", self.span(node))
            if key in obj:
                return obj[key]
            return Unknown(f"`{self.snippet(node)}`: no such key", self.span(node))
        if isinstance(obj, InstanceVal):
            if obj.cls.tuple_like and (is_int(key) or isinstance(key, slice)):
                return self.subscript([obj.attrs.get(f) for f, _ in obj.cls.fields or ()], key, node)
            f = self.class_attr(obj.cls, "__getitem__")
            if isinstance(f, FuncVal):
                return self.call_function(f, [ArgVal(None, key, self.span(node))], node, self_obj=obj)
        if isinstance(obj, ClassVal) and obj.kind == "enum" and isinstance(key, str):
            member = obj.attrs.get(key)
            if isinstance(member, InstanceVal):
                return member
        return self.subscript_other(obj, key, node)

    def subscript_other(self, obj, key, node):
        """Hook: arrays, tensors, typing's List[int]."""
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))

    def e_Slice(self, node, scope):
        parts = [self.eval(p, scope) if p is not None else None for p in (node.lower, node.upper, node.step)]
        for p in parts:
            if isinstance(p, Unknown):
                return p
        return slice(*parts)

    def e_Index(self, node, scope):          # Python 3.8
        return self.eval(node.value, scope)

    def e_ExtSlice(self, node, scope):       # Python 3.8
        return tuple(self.eval(d, scope) for d in node.dims)

    def e_Starred(self, node, scope):
        return Unknown("a starred expression here", self.span(node))

    def e_NamedExpr(self, node, scope):
        v = self.eval(node.value, scope)
        target = scope
        while target.kind == "comprehension" and target.parent is not None:
            target = target.parent           # a walrus in a comprehension binds outside it
        self.bind(node.target.id, v, target)
        return v

    def e_Lambda(self, node, scope):
        return self.make_function(node, scope)

    def e_Await(self, node, scope):
        return self.eval(node.value, scope)

    def e_Yield(self, node, scope):
        v = self.eval(node.value, scope) if node.value is not None else None
        if self.gen_stack:
            self.gen_stack[-1].append(v)
            self.check_size(self.gen_stack[-1], node)
        return None

    def e_YieldFrom(self, node, scope):
        it = self.iterable(self.eval(node.value, scope), node.value)
        if self.gen_stack:
            if isinstance(it, Unknown):
                self.gen_stack[-1].append(it)
            else:
                self.gen_stack[-1].extend(it)
                self.check_size(self.gen_stack[-1], node)
        return None

    def e_ListComp(self, node, scope):
        return self.comprehension(node, scope, lambda s: self.eval(node.elt, s))

    def e_GeneratorExp(self, node, scope):
        out = self.e_ListComp(node, scope)
        return IterVal(out) if isinstance(out, list) else out

    def e_SetComp(self, node, scope):
        out = self.e_ListComp(node, scope)
        return self.make_set(out, node) if isinstance(out, list) else out

    def e_DictComp(self, node, scope):
        out = self.comprehension(node, scope, lambda s: (self.eval(node.key, s), self.eval(node.value, s)))
        if isinstance(out, Unknown):
            return out
        result = {}
        for k, v in out:
            if not self.hashable(k, node):
                return k if isinstance(k, Unknown) else Unknown("a dict with keys cnnc cannot follow",
                                                               self.span(node))
            result[k] = v
        return result

    def comprehension(self, node, scope, produce):
        inner = Scope(scope, "comprehension")
        out: list = []

        def level(k: int) -> Unknown | None:
            if k == len(node.generators):
                out.append(produce(inner))
                self.check_size(out, node)
                self.count_items(1, node)
                return None
            gen = node.generators[k]
            it = self.iterable(self.eval(gen.iter, inner if k else scope), gen.iter)
            if isinstance(it, Unknown):
                return it
            for i, item in enumerate(it):
                self.count_iteration(i, node)
                self.assign(gen.target, item, inner, None)
                conds = [self.truth(self.eval(c, inner), c) for c in gen.ifs]
                if any(c is None for c in conds):
                    return Unknown(f"a condition of `{self.snippet(node)}` cannot be known",
                                   self.span(node))
                if all(conds):
                    bad = level(k + 1)
                    if bad is not None:
                        return bad
            return None

        bad = level(0)
        return bad if bad is not None else out

    # --- truth and iteration ------------------------------------------------------------

    def truth(self, v, node=None) -> bool | None:
        v = self.resolved(v)
        if isinstance(v, Unknown):
            return None
        if isinstance(v, PLAIN):
            return bool(v)
        if isinstance(v, InstanceVal):
            for name in ("__bool__", "__len__"):
                f = self.class_attr(v.cls, name)
                if isinstance(f, FuncVal):
                    out = self.call_function(f, [], node, self_obj=v)
                    return None if isinstance(out, Unknown) else bool(out) if isinstance(out, (int, bool)) else None
            return True
        return self.truth_other(v)

    def truth_other(self, v) -> bool | None:
        """Hook: the truth of a tensor or an array is not known; other objects are true."""
        return True

    def iterable(self, v, node):
        """The items a `for` loop over `v` takes (a list), or an Unknown."""
        v = self.resolved(v)
        if isinstance(v, (list, tuple, str, bytes)):
            return v
        if isinstance(v, range):
            return v
        if isinstance(v, (dict, set, frozenset)):
            self.charge(len(v), node)
            return list(v)
        if isinstance(v, IterVal):
            items, v.pos = v.items[v.pos:], len(v.items)
            return items
        if isinstance(v, Unknown):
            return v
        from cnnc.frontends.python.values import Endless
        if isinstance(v, Endless):
            return Unknown(f"`{self.snippet(node)}` never ends; cnnc follows finite sequences",
                           self.span(node))
        if isinstance(v, ClassVal) and v.kind == "enum":
            return [m for m in v.attrs.values() if isinstance(m, InstanceVal) and m.cls is v]
        if isinstance(v, InstanceVal):
            if v.cls.tuple_like:
                return [v.attrs.get(f) for f, _ in v.cls.fields or ()]
            f = self.class_attr(v.cls, "__iter__")
            if isinstance(f, FuncVal):
                return self.iterable(self.call_function(f, [], node, self_obj=v), node)
        return self.iterable_other(v, node)

    def iterable_other(self, v, node):
        """Hook: data pipelines, arrays, model.layers."""
        return Unknown(f"`{self.snippet(node)}` is not a sequence cnnc can follow", self.span(node))

    # --- attributes ---------------------------------------------------------------------

    def e_Attribute(self, node, scope):
        obj = self.eval(node.value, scope)
        return self.resolved(self.attribute(obj, node.attr, node))

    def attribute(self, obj, attr: str, node):
        span = self.span(node)
        if isinstance(obj, Unknown):
            return Unknown(obj.why, obj.span, obj.data, self.snippet(node) if obj.name else None)
        if isinstance(obj, InstanceVal):
            return self.instance_attribute(obj, attr, node)
        if isinstance(obj, ClassVal):
            return self.class_attribute(obj, attr, node)
        if isinstance(obj, ObjectVal):
            if attr in obj.attrs:
                return obj.attrs[attr]
            return BoundMethod(obj, attr, span)
        if isinstance(obj, ModuleVal):
            v = obj.scope.vars.get(attr, _MISSING)
            if v is _MISSING:
                sub = self.submodule(obj, attr, node)
                if sub is not None:
                    return sub
                return Unknown(f"'{obj.name}.{attr}' is not defined", span, name=f"{obj.name}.{attr}")
            return v
        if isinstance(obj, SuperRef):
            return self.super_attribute(obj, attr, node)
        if isinstance(obj, (FuncVal, PartialVal, Method)) and attr in ("__name__", "__qualname__"):
            f = obj.func if isinstance(obj, (PartialVal, Method)) else obj
            return f.name if isinstance(f, FuncVal) else Unknown("the function's name", span)
        if isinstance(obj, Property) and attr in ("setter", "getter", "deleter"):
            return BoundMethod(obj, attr, span)
        if isinstance(obj, Builtin):
            from cnnc.frontends.python.pybuiltins import builtin_attribute
            return builtin_attribute(self, obj, attr, node)
        if isinstance(obj, PLAIN) or isinstance(obj, IterVal):
            from cnnc.frontends.python.pybuiltins import plain_attribute
            return plain_attribute(self, obj, attr, node)
        return self.attribute_other(obj, attr, node)

    def attribute_other(self, obj, attr: str, node):
        """Hook: Keras objects, modules, arrays, tensors."""
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))

    def set_attribute_other(self, obj, attr: str, value, node) -> None:
        """Hook: `layer.trainable = False` and friends."""

    def submodule(self, module: ModuleVal, attr: str, node):
        """Hook: `package.module` of a package the script imported."""
        return None

    def mro(self, cls: ClassVal) -> list[ClassVal]:
        return [cls, *cls.bases]

    def class_attr(self, cls: ClassVal, attr: str):
        for c in self.mro(cls):
            if attr in c.attrs:
                return c.attrs[attr]
        return None

    def owner_of(self, cls: ClassVal, attr: str):
        for c in self.mro(cls):
            if attr in c.attrs:
                return c
        return None

    def instance_attribute(self, obj: InstanceVal, attr: str, node):
        span = self.span(node)
        if attr in obj.attrs:
            return obj.attrs[attr]
        if attr == "__class__":
            return obj.cls
        if attr == "__dict__":
            return obj.attrs
        v = self.class_attr(obj.cls, attr)
        if v is not None:
            return self.bound_class_attr(v, obj, obj.cls, attr, node)
        return self.instance_attribute_other(obj, attr, node) or Unknown(
            f"`{self.snippet(node)}` is not set", span)

    def instance_attribute_other(self, obj: InstanceVal, attr: str, node):
        """Hook: what Keras's Layer and Model give their subclasses (self.add_weight ...)."""
        return None

    def bound_class_attr(self, v, obj, cls: ClassVal, attr: str, node):
        """A class attribute as seen through an instance (obj) or the class (obj None)."""
        span = self.span(node)
        if isinstance(v, FuncVal):
            return Method(v, obj) if obj is not None else v
        if isinstance(v, StaticMethod):
            return v.func
        if isinstance(v, ClassMethod):
            return PartialVal(v.func, [ArgVal(None, cls, span)])
        if isinstance(v, Property):
            if obj is None:
                return v
            return self.call_value(v.fget, [ArgVal(None, obj, span)], node)
        return v

    def class_attribute(self, cls: ClassVal, attr: str, node):
        """`LeNet.build` (a staticmethod or classmethod), `Config.SIZE`, an enum member."""
        if attr == "__name__" or attr == "__qualname__":
            return cls.name
        v = self.class_attr(cls, attr)
        if v is not None:
            return self.bound_class_attr(v, None, cls, attr, node)
        return self.class_attribute_other(cls, attr, node)

    def class_attribute_other(self, cls: ClassVal, attr: str, node):
        return Unknown(f"'{cls.name}.{attr}' is not known", self.span(node))

    def super_attribute(self, ref: SuperRef, attr: str, node):
        inst = ref.obj
        cls = inst.cls if isinstance(inst, InstanceVal) else inst if isinstance(inst, ClassVal) else None
        if cls is None:
            return Unknown("super()", self.span(node))
        chain = self.mro(cls)
        start = chain.index(ref.start) + 1 if ref.start in chain else 1
        for c in chain[start:]:
            if attr in c.attrs:
                return self.bound_class_attr(c.attrs[attr], inst if isinstance(inst, InstanceVal) else None,
                                             cls, attr, node)
        return BoundMethod(ref, attr, self.span(node))

    # --- calls ----------------------------------------------------------------------------

    def e_Call(self, node, scope):
        func = self.eval(node.func, scope)
        args = self.call_args(node, scope)
        if isinstance(args, Unknown):
            if isinstance(func, (FuncVal, PartialVal, ClassVal)):
                self.called.add(id(getattr(func, "node", None)))
            return args
        return self.resolved(self.call(func, args, node, scope))

    def call_args(self, node: ast.Call, scope) -> list[ArgVal] | Unknown:
        out: list[ArgVal] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                v = self.iterable(self.eval(a.value, scope), a.value)
                if isinstance(v, Unknown):
                    return Unknown(f"`*{self.snippet(a.value)}` cannot be expanded: {v.why}", self.span(a))
                out.extend(ArgVal(None, x, self.span(a)) for x in v)
            else:
                out.append(ArgVal(None, self.eval(a, scope), self.span(a)))
        for k in node.keywords:
            v = self.eval(k.value, scope)
            if k.arg is None:
                if isinstance(v, InstanceVal) and v.cls.fields is not None:
                    v = {f: v.attrs.get(f) for f, _ in v.cls.fields}
                if not isinstance(v, dict) or not all(isinstance(x, str) for x in v):
                    return Unknown(f"`**{self.snippet(k.value)}` cannot be expanded", self.span(k))
                out.extend(ArgVal(key, x, self.span(k), self.span(k)) for key, x in v.items())
            else:
                ks = self.span(k)
                out.append(ArgVal(k.arg, v, self.span(k.value),
                                  Span(ks.line, ks.column, ks.line, ks.column + len(k.arg))))
        return out

    def call_value(self, func, args: list[ArgVal], node):
        """Call `func` from inside cnnc (map, reduce, sorted's key, a property)."""
        return self.call(func, args, node, None)

    def call(self, func, args: list[ArgVal], node, scope):
        if isinstance(func, FuncVal):
            if func.options is not None and not args:
                args = [ArgVal(k, v, self.span(node)) for k, v in func.options.items()]
            return self.call_function(func, args, node, strict=True)
        if isinstance(func, PartialVal):
            given = {a.keyword for a in args if a.keyword}
            merged = ([a for a in func.args if a.keyword is None] + [a for a in args if a.keyword is None]
                      + [a for a in func.args if a.keyword and a.keyword not in given]
                      + [a for a in args if a.keyword])
            return self.call(func.func, merged, node, scope)
        if isinstance(func, Builtin):
            from cnnc.frontends.python.pybuiltins import call_builtin
            return call_builtin(self, func, args, node)
        if isinstance(func, Method):
            return self.call_function(func.func, args, node, self_obj=func.obj, strict=True)
        if isinstance(func, BoundMethod):
            return self.method_call(func, args, node, scope)
        if isinstance(func, ClassVal):
            return self.instantiate(func, args, node)
        if isinstance(func, InstanceVal):
            f = self.class_attr(func.cls, "__call__")
            if isinstance(f, FuncVal):
                return self.call_function(f, args, node, self_obj=func)
        if isinstance(func, (StaticMethod, ClassMethod)):
            return self.call(func.func, args, node, scope)
        return self.call_other(func, args, node, scope)

    def call_other(self, func, args: list[ArgVal], node, scope):
        """Hook: Keras classes and functions, layers, models, modules."""
        if isinstance(func, Unknown):
            return Unknown(func.why, func.span, func.data, self.snippet(node) if func.name else None)
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))

    def method_call(self, m: BoundMethod, args: list[ArgVal], node, scope):
        obj = m.obj
        if isinstance(obj, InstanceVal):
            f = self.class_attr(obj.cls, m.name)
            if isinstance(f, FuncVal):
                return self.call_function(f, args, node, self_obj=obj)
            return self.instance_method_other(obj, m.name, args, node)
        if isinstance(obj, SuperRef):
            return self.super_call(obj, m.name, args, node)
        if isinstance(obj, Property):
            f = args[0].value if args else None
            if m.name == "setter":
                return Property(obj.fget, f)
            return Property(f, obj.fset) if m.name == "getter" else obj
        if isinstance(obj, (ObjectVal,) + PLAIN) or isinstance(obj, IterVal):
            from cnnc.frontends.python.pybuiltins import plain_method
            return plain_method(self, obj, m.name, args, node)
        return self.method_other(m, args, node, scope)

    def instance_method_other(self, obj: InstanceVal, name: str, args, node):
        """Hook: methods Keras's Layer or Model give the script's subclasses."""
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))

    def super_call(self, ref: SuperRef, name: str, args, node):
        """Hook: a method of a Keras base class (super().__init__(name=...))."""
        return None

    def method_other(self, m: BoundMethod, args, node, scope):
        """Hook: methods of models, arrays, data pipelines."""
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))

    # --- functions ----------------------------------------------------------------------

    def make_function(self, node, scope: Scope) -> FuncVal:
        args = node.args
        defaults = [self.eval(d, scope) for d in args.defaults]
        kw_defaults = [self.eval(d, scope) if d is not None else _MISSING for d in args.kw_defaults]
        return FuncVal(node, scope.function_scope() if scope.kind == "class" else scope, defaults,
                       kw_defaults, getattr(node, "name", "<lambda>"))

    def decorate(self, value, decorators, scope):
        """Decorators, innermost first: staticmethod, classmethod, property and friends as
        Python defines them, the script's own decorators run; others keep the function
        (tf.function, register_keras_serializable, lru_cache change no shape)."""
        for d in reversed(decorators):
            dec = self.eval(d, scope)
            value = self.apply_decorator(dec, value, d)
        return value

    def apply_decorator(self, dec, value, node):
        from cnnc.frontends.python.pybuiltins import decorator_builtin
        if isinstance(dec, Builtin):
            return decorator_builtin(self, dec, value, node)
        if isinstance(dec, BoundMethod) and isinstance(dec.obj, Property):
            return self.method_call(dec, [ArgVal(None, value, self.span(node))], node, None)
        if isinstance(dec, (FuncVal, PartialVal)) or (isinstance(dec, ClassVal) and dec.kind == "other"):
            out = self.call(dec, [ArgVal(None, value, self.span(node))], node, None)
            return value if isinstance(out, Unknown) else out
        return self.decorator_other(dec, value, node)

    def decorator_other(self, dec, value, node):
        return value

    def is_generator(self, f: FuncVal) -> bool:
        k = id(f.node)
        if k not in self._generator_cache:
            self._generator_cache[k] = not isinstance(f.node, ast.Lambda) and _has_yield(f.node)
        return self._generator_cache[k]

    def bind_args(self, f: FuncVal, args: list[ArgVal], node, self_obj=None, strict: bool = False) -> Scope:
        """The function's scope with its parameters bound as Python binds them. A call
        Python refuses raises TypeError (`strict`, a call the script makes); otherwise a
        missing argument is unknown in the body."""
        span = self.span(node) if node is not None else None
        a = f.node.args
        scope = Scope(f.closure, "function")
        posonly = [p.arg for p in getattr(a, "posonlyargs", [])]
        params = posonly + [p.arg for p in a.args]
        positional = [x for x in args if x.keyword is None]
        keywords = {x.keyword: x.value for x in args if x.keyword is not None}
        if self_obj is not None:
            positional = [ArgVal(None, self_obj, span)] + positional
        if strict:
            self.check_call(f, params, posonly, positional, keywords, node)
        n_default_start = len(params) - len(f.defaults)
        for i, p in enumerate(params):
            if i < len(positional):
                scope.vars[p] = positional[i].value
            elif p in keywords and p not in posonly:
                scope.vars[p] = keywords.pop(p)
            elif i >= n_default_start:
                scope.vars[p] = f.defaults[i - n_default_start]
            else:
                scope.vars[p] = Unknown(f"{f.name}() is called without its argument '{p}'", span, name=p)
        for p in params:
            if p not in posonly:
                keywords.pop(p, None)
        if a.vararg is not None:
            scope.vars[a.vararg.arg] = tuple(x.value for x in positional[len(params):])
        for p, d in zip(a.kwonlyargs, f.kw_defaults):
            if p.arg in keywords:
                scope.vars[p.arg] = keywords.pop(p.arg)
            elif d is not _MISSING:
                scope.vars[p.arg] = d
            else:
                scope.vars[p.arg] = Unknown(f"{f.name}() is called without its argument '{p.arg}'",
                                            span, name=p.arg)
        if a.kwarg is not None:
            scope.vars[a.kwarg.arg] = keywords
        return scope

    def check_call(self, f: FuncVal, params, posonly, positional, keywords, node=None) -> None:
        """Python's TypeError for a call that does not fit the function's parameters."""
        a = f.node.args
        why = None
        named = set(params[len(posonly):]) | {p.arg for p in a.kwonlyargs}
        if len(positional) > len(params) and a.vararg is None:
            why = f"{f.name}() takes {len(params)} positional arguments but {len(positional)} were given"
        elif a.kwarg is None and any(k not in named for k in keywords):
            k = next(k for k in keywords if k not in named)
            why = f"{f.name}() got an unexpected keyword argument '{k}'"
        elif any(p in keywords for p in params[:len(positional)] if p not in posonly):
            p = next(p for p in params[:len(positional)] if p in keywords)
            why = f"{f.name}() got multiple values for argument '{p}'"
        else:
            required = params[len(positional):len(params) - len(f.defaults)]
            missing = [p for p in required if p not in keywords or p in posonly]
            missing += [p.arg for p, d in zip(a.kwonlyargs, f.kw_defaults)
                        if d is _MISSING and p.arg not in keywords]
            if missing:
                why = f"{f.name}() missing required argument '{missing[0]}'"
        if why is not None:
            raise _Raise(ObjectVal("exception", {"type": "TypeError", "args": (why,)}),
                         span=self.span(node) if node is not None else None)

    def call_function(self, f: FuncVal, args: list[ArgVal], node, self_obj=None, strict: bool = False):
        span = self.span(node) if node is not None else None
        if self.depth >= MAX_CALL_DEPTH:
            raise Budget(f"helper functions call each other more than {MAX_CALL_DEPTH} deep here", span)
        self.called.add(id(f.node))
        scope = self.bind_args(f, args, node, self_obj, strict)
        generator = self.is_generator(f)
        self.depth += 1
        if self_obj is not None:
            self.self_stack.append((self_obj, f.owner))
        if generator:
            self.gen_stack.append([])
        result = None
        try:
            if isinstance(f.node, ast.Lambda):
                result = self.eval(f.node.body, scope)
            else:
                self.exec_block(f.node.body, scope)
        except _Return as r:
            result = r.value
        except (_Break, _Continue):
            result = None
        finally:
            self.depth -= 1
            if self_obj is not None:
                self.self_stack.pop()
            items = self.gen_stack.pop() if generator else None
        return IterVal(items) if generator else result

    # --- classes ------------------------------------------------------------------------

    def define_class(self, node: ast.ClassDef, scope: Scope) -> None:
        bases = [self.eval(b, scope) for b in node.bases]
        cls = self.new_class(node, bases, scope)
        body = Scope(scope, "class")
        body.vars["__qualname__"] = node.name
        body.vars["__module__"] = scope.module.vars.get("__name__", "__main__")
        self.exec_block(node.body, body)
        cls.attrs = body.vars
        for v in cls.attrs.values():
            f = v.func if isinstance(v, (StaticMethod, ClassMethod)) else v.fget if isinstance(
                v, Property) else v
            if isinstance(f, FuncVal) and f.owner is None:
                f.owner = cls
        from cnnc.frontends.python.pybuiltins import finish_class
        finish_class(self, cls, bases, node)
        self.bind(node.name, self.decorate(cls, node.decorator_list, scope), scope)

    def new_class(self, node: ast.ClassDef, bases: list, scope: Scope) -> ClassVal:
        """Hook: the class's kind from its bases (a Keras Layer or Model subclass ...)."""
        mro: list[ClassVal] = []
        for b in bases:
            if isinstance(b, ClassVal):
                for c in [b, *b.bases]:
                    if c in mro:
                        mro.remove(c)
                    mro.append(c)
        kind = next((b.kind for b in bases if isinstance(b, ClassVal) and b.kind != "other"), "other")
        return ClassVal(node.name, kind, node, self.span(node), scope, tuple(mro))

    # what the Keras part answers for its own values
    def len_other(self, v, node):
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))

    def number_other(self, name: str, v, node):
        return self.as_unknown(v if isinstance(v, Unknown) else None, node)

    def next_other(self, v, node):
        return self.as_unknown(v if isinstance(v, Unknown) else None, node)

    def isinstance_other(self, v, t) -> bool | None:
        return None

    def type_other(self, v, node):
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))

    def copy_other(self, v, node, deep: bool):
        return Unknown(f"`{self.snippet(node)}` copies an object cnnc stands in for", self.span(node))

    def instantiate(self, cls: ClassVal, args: list[ArgVal], node):
        """A plain class of the script: __init__ on a new instance (Keras extends this)."""
        from cnnc.frontends.python.pybuiltins import new_instance
        return new_instance(self, cls, args, node)

    def run_init(self, inst: InstanceVal, args: list[ArgVal], node) -> None:
        init = self.class_attr(inst.cls, "__init__")
        if isinstance(init, FuncVal):
            self.call_function(init, args, node, self_obj=inst)

    # --- imports ------------------------------------------------------------------------

    def do_import(self, stmt, scope: Scope) -> None:
        """Hook: imports (evaluator.py)."""


_METHODS: dict = {}


class _CaseIn:
    """A match case with the scope its patterns' names are read in."""

    def __init__(self, case, scope):
        self.case, self.scope = case, scope
        self.pattern, self.guard, self.body = case.pattern, case.guard, case.body


def _dispatch(cls, prefix: str, node_type):
    """The method `prefix + node type name` of the evaluator's class (looked up once)."""
    key = (cls, prefix, node_type)
    try:
        return _METHODS[key]
    except KeyError:
        _METHODS[key] = getattr(cls, prefix + node_type.__name__, None)
        return _METHODS[key]


def _load(target: ast.expr) -> ast.expr:
    """The target of an augmented assignment, read (ctx Load)."""
    if isinstance(target, ast.Attribute):
        return ast.Attribute(value=target.value, attr=target.attr, ctx=ast.Load())
    if isinstance(target, ast.Subscript):
        return ast.Subscript(value=target.value, slice=target.slice, ctx=ast.Load())
    return target


def _children(x) -> list:
    if isinstance(x, dict):
        return list(x.keys()) + list(x.values())
    return list(x)


def _same(a, b) -> bool:
    """`a is b` as Python answers it for these values (frozen ones by value)."""
    if a is b:
        return True
    if isinstance(a, (Builtin,)) and isinstance(b, Builtin):
        return a == b
    from cnnc.frontends.python.values import KerasRef, ModuleRef, TensorVal
    if type(a) is type(b) and isinstance(a, (KerasRef, ModuleRef, TensorVal, StaticMethod, ClassMethod)):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return False
    if isinstance(a, (int, str)) and type(a) is type(b):
        return a == b                     # small ints and interned strings, as scripts mean them
    return False
