"""A small static evaluator of Keras scripts: it walks the module's syntax tree as
Python would run it, but only as far as model building needs, and never runs
anything else. Constants, tuples and lists, f-strings, `range`, loops over known
sequences, `if` on known values, helper functions and `functools.partial` are
followed; layers, tensors and models are recorded (values.py) for emit.py to
turn into cnnc's own statements. Whatever cannot be known is an `Unknown` that
says why; it becomes a diagnostic only where it decides a model.

Bounded work: a step budget, loop and recursion caps, size caps on sequences.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Any

from cnnc.analysis.kinds import OP_CLASSES
from cnnc.frontends.python import datasets, keras2, tfdata
from cnnc.frontends.python.applications import APPS, ApplicationsMixin
from cnnc.frontends.python.classes import ClassesMixin
from cnnc.frontends.python.keras_api import (
    KERAS1_REMOVED,
    LAYER_NAMES,
    MERGE_FUNCTIONS,
    OBJECT_MODULES,
    canonical,
    exported,
)
from cnnc.frontends.python.scope import _MISSING, Scope
from cnnc.frontends.python.source import ScriptSource
from cnnc.frontends.python.values import (
    ArgVal,
    ArrayVal,
    BoundMethod,
    CallRecord,
    ClassVal,
    DatasetRef,
    DataStream,
    FuncVal,
    InstanceVal,
    KerasObj,
    KerasRef,
    LayerVal,
    ModelVal,
    ModuleRef,
    PartialVal,
    SuperRef,
    TensorVal,
    TNode,
    Unknown,
    shown,
)
from cnnc.support.diagnostics import Reporter, Span

MAX_STEPS = 400_000          # expressions evaluated in one script
MAX_LOOP = 10_000            # iterations of one loop
MAX_ITERATIONS = 50_000      # iterations of all loops together
MAX_CALL_DEPTH = 32          # helper functions calling helper functions
MAX_SEQUENCE = 100_000       # elements of a list, tuple or string the script builds
MAX_INT = 2 ** 63
MAX_NODES = 20_000           # layers and tensors a script builds (NASNetLarge has ~1,300)
MAX_ITEMS = 5_000_000        # elements of all the lists and tuples it builds together


class Budget(Exception):
    def __init__(self, message: str, span: Span | None):
        super().__init__(message)
        self.message, self.span = message, span


class _Return(Exception):
    def __init__(self, value):
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Raise(Exception):
    pass


_BUILTIN_NAMES = {"range", "len", "int", "float", "str", "tuple", "list", "dict", "print",
                  "enumerate", "zip", "min", "max", "sum", "abs", "round", "reversed", "sorted",
                  "bool", "isinstance", "repr", "any", "all", "divmod", "pow", "super", "set",
                  "type", "map", "filter", "iter", "next", "input", "open", "format"}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_TENSOR_OPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
        ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_SEQUENTIAL_METHODS = {"add", "compile", "fit", "fit_generator", "build", "summary", "pop",
                       "evaluate", "predict", "save", "save_weights", "load_weights", "to_json",
                       "train_on_batch", "test_on_batch", "predict_classes", "count_params",
                       "get_weights", "set_weights", "get_layer", "evaluate_generator",
                       "predict_generator", "export", "get_config"}
_ARRAY_METHODS = {"reshape", "astype", "mean", "std", "max", "min", "sum", "copy", "squeeze",
                  "flatten", "ravel", "transpose", "argmax"}


_SEQUENCES = (str, bytes, list, tuple)
_WIDTHS = re.compile(r"\d+")


def _small_format(fmt: str, values: tuple, percent: bool = False) -> bool:
    """Whether formatting `fmt` stays small: no width or precision (written, or taken
    from the values by `*` or a nested `{}`) beyond MAX_SEQUENCE. Python would build
    a gigabyte for `'{:{}}'.format(1, 10**9)` before cnnc could look at the result."""
    if any(int(d) > MAX_SEQUENCE for d in _WIDTHS.findall(fmt) if len(d) > 5):
        return False
    nested = ("*" in fmt) if percent else fmt.count("{") > 1
    return not nested or not any(_is_int(v) and abs(v) > MAX_SEQUENCE for v in values)


def _known(v) -> bool:
    return not isinstance(v, Unknown)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class Evaluator(ClassesMixin, ApplicationsMixin):
    def __init__(self, src: ScriptSource, rep: Reporter, input_shape: tuple | None = None):
        self.src = src
        self.rep = rep
        self.nodes: list[TNode] = []
        self.name_counts: dict[str, int] = {}    # Keras's per-session layer numbering
        self.models: list[ModelVal] = []
        self.skipped: list[tuple[int, str]] = []
        self.steps = 0
        self.iterations = 0
        self.depth = 0
        self.touched = False
        self.class_stack: list = []
        self._noted: set = set()
        self.lines = src.text.split("\n")
        self.input_shape = input_shape
        self.groups: list[tuple[str, str]] = []   # the custom layers whose call() runs now
        self.hidden_counts: dict = {}
        self.tracing = False                  # a subclassed model's call() runs now
        self.trace_prefix = "op"              # hidden names' prefix while tracing
        self.self_stack: list = []            # `self` of the methods running now (super())
        self.layer_seq = 0
        self.items_made = 0                   # see count_items

    # --- the module ---------------------------------------------------------------

    def run(self) -> None:
        scope = Scope()
        scope.vars["__name__"] = "__main__"
        for chunk in self.src.chunks:
            for stmt in chunk.body:
                try:
                    self.top(stmt, scope)
                except Budget as b:
                    self.rep.error(b.message, b.span,
                                   "cnnc follows the code that builds a model, not long computations; "
                                   "models found before this point are still checked")
                    return
        try:
            self.trace_models(self.input_shape)
        except (RecursionError, Budget) as e:
            span = e.span if isinstance(e, Budget) else None
            self.rep.error(e.message if isinstance(e, Budget) else
                           "a model here nests too deeply for cnnc to follow", span)

    def add_node(self, t: TNode) -> None:
        if len(self.nodes) >= MAX_NODES:
            raise Budget(f"the script builds more than {MAX_NODES:,} layers and tensors", t.span)
        self.nodes.append(t)

    def next_seq(self) -> int:
        self.layer_seq += 1
        return self.layer_seq

    def top(self, stmt: ast.stmt, scope: Scope) -> None:
        self.touched = False
        try:
            self.exec_stmt(stmt, scope)
        except (_Return, _Break, _Continue, _Raise):
            pass
        except RecursionError:
            self.rep.error("this statement nests too deeply for cnnc to follow", self.span(stmt))
            return
        except MemoryError:
            raise Budget("this statement needs more memory than cnnc allows", self.span(stmt))
        if not self.touched and not isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                                       ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)):
            if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                self.skipped.append((stmt.lineno, self.snippet(stmt)))

    def span(self, node: ast.AST) -> Span:
        return self.src.span(node)

    def snippet(self, node: ast.AST, limit: int = 60) -> str:
        line = self.lines[node.lineno - 1] if 0 < node.lineno <= len(self.lines) else ""
        if node.end_lineno == node.lineno:
            text = line.encode("utf-8")[node.col_offset:node.end_col_offset].decode("utf-8", "ignore")
        else:
            text = line.encode("utf-8")[node.col_offset:].decode("utf-8", "ignore") + " ..."
        text = text.strip()
        return text if len(text) <= limit else text[:limit - 3] + "..."

    def tick(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise Budget(f"cnnc stopped following the script here: it takes more than {MAX_STEPS:,} "
                         "steps to evaluate", self.span(node))

    def note_once(self, key, message: str, span: Span | None, *notes: str, error: bool = False) -> None:
        if key in self._noted:
            return
        self._noted.add(key)
        (self.rep.error if error else self.rep.warning)(message, span, *notes)

    # --- statements -----------------------------------------------------------------

    def exec_block(self, body: list[ast.stmt], scope: Scope) -> None:
        for stmt in body:
            self.exec_stmt(stmt, scope)

    def exec_stmt(self, stmt: ast.stmt, scope: Scope) -> None:
        self.tick(stmt)
        t = type(stmt)
        if t is ast.Expr:
            self.eval(stmt.value, scope)
        elif t is ast.Assign:
            value = self.eval(stmt.value, scope)
            for target in stmt.targets:
                self.assign(target, value, scope, stmt.value)
        elif t is ast.AnnAssign:
            if stmt.value is not None:
                self.assign(stmt.target, self.eval(stmt.value, scope), scope, stmt.value)
        elif t is ast.AugAssign:
            self.aug_assign(stmt, scope)
        elif t in (ast.Import, ast.ImportFrom):
            self.do_import(stmt, scope)
        elif t in (ast.FunctionDef, ast.AsyncFunctionDef):
            scope.vars[stmt.name] = self.make_function(stmt, scope)
        elif t is ast.ClassDef:
            self.define_class(stmt, scope)
        elif t is ast.Return:
            raise _Return(self.eval(stmt.value, scope) if stmt.value is not None else None)
        elif t is ast.If:
            self.do_if(stmt, scope)
        elif t is ast.For:
            self.do_for(stmt, scope)
        elif t is ast.While:
            self.do_while(stmt, scope)
        elif t is ast.With:
            for item in stmt.items:
                v = self.eval(item.context_expr, scope)
                if item.optional_vars is not None:
                    self.assign(item.optional_vars, Unknown("the value of a `with` statement", self.span(item.context_expr)) if not isinstance(v, Unknown) else v, scope, item.context_expr)
            self.exec_block(stmt.body, scope)
        elif t is ast.Try or t.__name__ == "TryStar":
            self.exec_block(stmt.body, scope)
            self.exec_block(stmt.orelse, scope)
            self.exec_block(stmt.finalbody, scope)
        elif t is ast.Break:
            raise _Break()
        elif t is ast.Continue:
            raise _Continue()
        elif t is ast.Raise:
            raise _Raise()
        elif t is ast.Delete:
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    scope.vars.pop(target.id, None)
        # Pass, Global, Nonlocal, Assert, Match, AsyncFor, AsyncWith: nothing that builds a model

    def assign(self, target: ast.expr, value, scope: Scope, value_node: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id, value, scope)
        elif isinstance(target, (ast.Tuple, ast.List)):
            elts = target.elts
            star = next((i for i, e in enumerate(elts) if isinstance(e, ast.Starred)), None)
            if isinstance(value, (tuple, list)) and (
                    len(value) == len(elts) if star is None else len(value) >= len(elts) - 1):
                vals = list(value)
                if star is not None:
                    n_after = len(elts) - star - 1
                    vals = vals[:star] + [list(vals[star:len(vals) - n_after])] + vals[len(vals) - n_after:]
                for e, v in zip(elts, vals):
                    self.assign(e.value if isinstance(e, ast.Starred) else e, v, scope, None)
            else:
                why = value if isinstance(value, Unknown) else Unknown(
                    "the values unpacked here are not known", self.span(target))
                for e in elts:
                    self.assign(e.value if isinstance(e, ast.Starred) else e, why, scope, None)
        elif isinstance(target, ast.Attribute):
            obj = self.eval(target.value, scope)
            if isinstance(obj, InstanceVal):
                obj.attrs[target.attr] = value
                self.touched = True
            elif isinstance(obj, (ModelVal, LayerVal)) and target.attr == "trainable" and value in (True, False):
                self.set_trainable(obj, value)
                self.touched = True
        elif isinstance(target, ast.Subscript):
            obj = self.eval(target.value, scope)
            key = self.eval(target.slice, scope)
            if isinstance(obj, dict) and _known(key):
                try:
                    obj[key] = value
                except TypeError:
                    pass
            elif isinstance(obj, list) and _is_int(key) and -len(obj) <= key < len(obj):
                obj[key] = value

    def bind(self, name: str, value, scope: Scope) -> None:
        scope.vars[name] = value
        if _known(value) and not isinstance(value, (ModuleRef,)):
            self.touched = True
        if isinstance(value, ModelVal):
            if value.var is None or (scope.is_module and not value.var_top):
                value.var, value.var_top = name, scope.is_module
        elif isinstance(value, LayerVal) and value.written and not getattr(value, "var", None):
            value.var = name

    def aug_assign(self, stmt: ast.AugAssign, scope: Scope) -> None:
        target = stmt.target
        if isinstance(target, ast.Name):
            cur = scope.lookup(target.id)
            if cur is _MISSING:
                cur = Unknown(f"'{target.id}' is not defined", self.span(target))
            value = self.binop(type(stmt.op), cur, self.eval(stmt.value, scope), stmt, stmt.target, stmt.value)
            if isinstance(cur, list) and isinstance(stmt.op, ast.Add) and isinstance(value, list):
                cur[:] = value          # `layers += [...]` mutates the list in place
                value = cur
            self.bind(target.id, value, scope)
        else:
            self.eval(stmt.value, scope)

    def do_import(self, stmt, scope: Scope) -> None:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                path = tuple(a.name.split("."))
                value = self.module_value(path, stmt)
                if a.asname:
                    scope.vars[a.asname] = value
                else:
                    scope.vars[path[0]] = self.module_value(path[:1], stmt)
            return
        if stmt.level or not stmt.module:
            for a in stmt.names:
                if a.name != "*":
                    scope.vars[a.asname or a.name] = Unknown(f"'{a.name}' comes from a local module "
                                                             "cnnc does not read", self.span(stmt))
            return
        base = tuple(stmt.module.split("."))
        for a in stmt.names:
            if a.name == "*":
                mod = self.module_value(base, stmt)
                if isinstance(mod, KerasRef):
                    scope.module.stars.append(mod.path)
                continue
            value = self.module_value(base + (a.name,), stmt)
            scope.vars[a.asname or a.name] = value

    def module_value(self, path: tuple[str, ...], node: ast.AST):
        if path[0] in ("keras", "tensorflow", "tf_keras") or "keras" in path:
            p, note = canonical(path)
            if note:
                self.note_once(("path", path[:3]), note, self.span(node), *keras2.path_fix(path))
            if p[:2] == ("keras", "datasets") and len(p) == 3:
                return DatasetRef(p[2])
            return KerasRef(p)
        return ModuleRef(path)

    def make_function(self, node, scope: Scope) -> FuncVal:
        args = node.args
        defaults = [self.eval(d, scope) for d in args.defaults]
        kw_defaults = [self.eval(d, scope) if d is not None else _MISSING for d in args.kw_defaults]
        return FuncVal(node, scope, defaults, kw_defaults, getattr(node, "name", "<lambda>"))

    def do_if(self, stmt: ast.If, scope: Scope) -> None:
        cond = self.truth(self.eval(stmt.test, scope))
        if cond is None:
            self.poison([stmt.body, stmt.orelse], scope,
                        f"it depends on the condition `{self.snippet(stmt.test)}` at "
                        f"{self.src.where(stmt.lineno)}, which cnnc cannot know without running the script",
                        self.span(stmt.test))
        elif cond:
            self.exec_block(stmt.body, scope)
        else:
            self.exec_block(stmt.orelse, scope)

    def truth(self, v) -> bool | None:
        if isinstance(v, Unknown):
            return None
        if isinstance(v, (bool, int, float, str, tuple, list, dict, type(None))):
            return bool(v)
        if isinstance(v, (ArrayVal, TensorVal)):
            return None
        return True

    def poison(self, bodies, scope: Scope, why: str, span: Span) -> None:
        """A block cnnc cannot run (unknown condition or loop): what it would have
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
                        if isinstance(obj, ModelVal) and n.func.attr in ("add", "pop"):
                            obj.problems.append((f"the layers of this model are not known: {why}",
                                                 span, ()))
                        elif isinstance(obj, list) and n.func.attr in ("append", "extend", "insert"):
                            names.add(n.func.value.id)
        for name in names:
            cur = scope.lookup(name)
            if cur is not _MISSING or name:
                scope.vars[name] = Unknown(why, span)

    def do_for(self, stmt: ast.For, scope: Scope) -> None:
        it = self.iterable(self.eval(stmt.iter, scope), stmt.iter)
        if isinstance(it, Unknown):
            self.poison([stmt.body], scope,
                        f"it is set in the loop at {self.src.where(stmt.lineno)} over "
                        f"`{self.snippet(stmt.iter)}`, which cnnc cannot know", self.span(stmt.iter))
            self.assign(stmt.target, it, scope, None)
            return
        broke = False
        for i, item in enumerate(it):
            self.count_iteration(i, stmt)
            self.assign(stmt.target, item, scope, None)
            try:
                self.exec_block(stmt.body, scope)
            except _Break:
                broke = True
                break
            except _Continue:
                continue
        if not broke:
            self.exec_block(stmt.orelse, scope)

    def count_iteration(self, i: int, node: ast.AST) -> None:
        self.iterations += 1
        if i >= MAX_LOOP or self.iterations > MAX_ITERATIONS:
            raise Budget(f"cnnc stopped following this loop after {min(i, MAX_LOOP):,} iterations "
                         f"({self.iterations:,} in all)", self.span(node))

    def do_while(self, stmt: ast.While, scope: Scope) -> None:
        i = 0
        while True:
            cond = self.truth(self.eval(stmt.test, scope))
            if cond is None:
                self.poison([stmt.body], scope,
                            f"it is set in the loop at {self.src.where(stmt.lineno)}, whose condition "
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

    def iterable(self, v, node: ast.AST):
        if isinstance(v, (list, tuple, range, str)):
            return v
        if isinstance(v, dict):
            return list(v)
        if isinstance(v, Unknown):
            return v
        if isinstance(v, ArrayVal):
            return Unknown("iterating over an array's values", self.span(node), data=True)
        if isinstance(v, DataStream):
            return tfdata.batches(v)
        return Unknown(f"`{self.snippet(node)}` is not a sequence cnnc can follow", self.span(node))

    # --- expressions ------------------------------------------------------------------

    def eval(self, node: ast.expr, scope: Scope):
        self.tick(node)
        method = getattr(self, "e_" + type(node).__name__, None)
        if method is None:
            return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))
        return method(node, scope)

    def e_Constant(self, node, scope):
        v = node.value
        if isinstance(v, (str, bytes)) and len(v) > MAX_SEQUENCE:
            return Unknown("a very long string", self.span(node))
        return v

    def e_Name(self, node, scope):
        v = scope.lookup(node.id)
        if v is not _MISSING:
            return v
        for mod in scope.module.stars:
            if exported(mod, node.id):
                return KerasRef(mod + (node.id,)) if mod != ("keras", "datasets") else DatasetRef(node.id)
        if node.id in _BUILTIN_NAMES:
            return ("builtin", node.id)
        if node.id in ("Ellipsis",):
            return Ellipsis
        return Unknown(f"'{node.id}' is not defined in this file", self.span(node))

    def e_Tuple(self, node, scope):
        return tuple(self.elements(node.elts, scope))

    def e_List(self, node, scope):
        return self.elements(node.elts, scope)

    def e_Set(self, node, scope):
        return Unknown("a set", self.span(node))

    def elements(self, elts, scope) -> list:
        out = []
        for e in elts:
            if isinstance(e, ast.Starred):
                v = self.eval(e.value, scope)
                if isinstance(v, (list, tuple, range, str)):
                    out.extend(v)
                else:
                    out.append(Unknown("a starred value cnnc cannot expand", self.span(e)))
            else:
                out.append(self.eval(e, scope))
            self.check_size(out, e)
        self.count_items(len(out), elts[0] if elts else None)
        return out

    def check_size(self, seq, node) -> None:
        if len(seq) > MAX_SEQUENCE:
            raise Budget(f"this builds a sequence of more than {MAX_SEQUENCE:,} items", self.span(node))

    def count_items(self, n: int, node) -> None:
        """Every list, tuple and string the script builds counts against one budget
        (each may hold 100,000 items, but not ten thousand of them)."""
        self.items_made += n
        if self.items_made > MAX_ITEMS:
            raise Budget(f"the script builds more than {MAX_ITEMS:,} list items and characters "
                         "in all", self.span(node) if node is not None else None)

    def e_Dict(self, node, scope):
        out = {}
        for k, v in zip(node.keys, node.values):
            val = self.eval(v, scope)
            if k is None:
                if isinstance(val, dict):
                    out.update(val)
                continue
            key = self.eval(k, scope)
            try:
                out[key] = val
            except TypeError:
                return Unknown("a dict with keys cnnc cannot follow", self.span(node))
        return out

    def e_JoinedStr(self, node, scope):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
                continue
            x = self.eval(v.value, scope)
            if not isinstance(x, (str, int, float, bool, type(None))):
                return Unknown(f"the f-string `{self.snippet(node)}` uses a value cnnc cannot know",
                               self.span(node))
            spec = ""
            if v.format_spec is not None:
                spec = self.eval(v.format_spec, scope)
                if not isinstance(spec, str):
                    return Unknown("an f-string format cnnc cannot follow", self.span(node))
            conv = {115: str, 114: repr, 97: ascii}.get(v.conversion)
            if not _small_format(spec, ()):
                return Unknown("an f-string formatted wider than cnnc allows", self.span(node))
            try:
                parts.append(format(conv(x) if conv else x, spec))
            except (ValueError, TypeError):
                return Unknown("an f-string format cnnc cannot follow", self.span(node))
            if sum(map(len, parts)) > MAX_SEQUENCE:
                return Unknown("a very long string", self.span(node))
        return "".join(parts)

    def e_FormattedValue(self, node, scope):
        return self.e_JoinedStr(ast.JoinedStr(values=[node]), scope)

    def e_IfExp(self, node, scope):
        cond = self.truth(self.eval(node.test, scope))
        if cond is None:
            return Unknown(f"it depends on the condition `{self.snippet(node.test)}`, which cnnc "
                           "cannot know", self.span(node.test))
        return self.eval(node.body if cond else node.orelse, scope)

    def e_BoolOp(self, node, scope):
        is_and = isinstance(node.op, ast.And)
        v = None
        for e in node.values:
            v = self.eval(e, scope)
            t = self.truth(v)
            if t is None:
                return Unknown(f"the condition `{self.snippet(node)}` cannot be known", self.span(node))
            if t != is_and:
                return v
        return v

    def e_UnaryOp(self, node, scope):
        v = self.eval(node.operand, scope)
        if isinstance(node.op, ast.Not):
            t = self.truth(v)
            return Unknown(f"`{self.snippet(node)}` cannot be known", self.span(node)) if t is None else not t
        if isinstance(v, TensorVal) and isinstance(node.op, ast.USub):
            return self.tensor_op("neg", [(v, node.operand)], node)
        if isinstance(v, ArrayVal):
            return v
        if isinstance(v, (int, float)) and not isinstance(node.op, ast.Invert):
            return -v if isinstance(node.op, ast.USub) else +v
        if _is_int(v) and isinstance(node.op, ast.Invert):
            return ~v
        return v if isinstance(v, Unknown) else Unknown(f"`{self.snippet(node)}`", self.span(node))

    def e_BinOp(self, node, scope):
        a = self.eval(node.left, scope)
        b = self.eval(node.right, scope)
        return self.binop(type(node.op), a, b, node, node.left, node.right)

    def binop(self, op, a, b, node, left, right):
        if isinstance(a, TensorVal) or isinstance(b, TensorVal):
            if op not in _TENSOR_OPS:
                return Unknown(f"`{self.snippet(node)}`: only + - * / on tensors are followed",
                               self.span(node))
            for v in (a, b):
                if not (isinstance(v, TensorVal) or (isinstance(v, (int, float)) and not isinstance(v, bool))):
                    return v if isinstance(v, Unknown) else Unknown(
                        f"`{self.snippet(node)}` mixes a tensor with a value cnnc cannot follow",
                        self.span(node))
            return self.tensor_op(_TENSOR_OPS[op], [(a, left), (b, right)], node)
        for v in (a, b):
            if isinstance(v, Unknown):
                return v
        if isinstance(a, ArrayVal) or isinstance(b, ArrayVal):
            return self.array_arith(a, b, node)
        if op is ast.Mod and isinstance(a, str):
            if not _small_format(a, b if isinstance(b, tuple) else (b,), percent=True):
                return Unknown("a string formatted wider than cnnc allows", self.span(node))
            try:
                out = a % b
            except (TypeError, ValueError, KeyError):
                return Unknown(f"`{self.snippet(node)}`", self.span(node))
            return out if len(out) <= MAX_SEQUENCE else Unknown("a very long string", self.span(node))
        fn = _BINOPS.get(op)
        if fn is None:
            if op in (ast.BitOr, ast.BitAnd, ast.BitXor, ast.LShift, ast.RShift) and _is_int(a) and _is_int(b):
                if op in (ast.LShift,) and (b > 64 or b < 0):
                    return Unknown("a shift this large", self.span(node))
                return {ast.BitOr: operator.or_, ast.BitAnd: operator.and_, ast.BitXor: operator.xor,
                        ast.LShift: operator.lshift, ast.RShift: operator.rshift}[op](a, b)
            return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))
        if op is ast.Mult and (isinstance(a, _SEQUENCES) or isinstance(b, _SEQUENCES)):
            n = b if _is_int(b) else a
            seq = a if _is_int(b) else b
            if _is_int(n) and isinstance(seq, _SEQUENCES):
                if n * len(seq) > MAX_SEQUENCE:
                    raise Budget(f"this builds a sequence of more than {MAX_SEQUENCE:,} items", self.span(node))
                self.count_items(max(n, 0) * len(seq), node)
        if op is ast.Pow and isinstance(b, (int, float)) and (abs(b) > 64 or (isinstance(a, (int, float)) and abs(a) > MAX_INT)):
            return Unknown("a power this large", self.span(node))
        if op is ast.Add and isinstance(a, _SEQUENCES) and isinstance(b, type(a)):
            if len(a) + len(b) > MAX_SEQUENCE:
                raise Budget(f"this builds a sequence of more than {MAX_SEQUENCE:,} items", self.span(node))
            self.count_items(len(a) + len(b), node)
        try:
            out = fn(a, b)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
            return Unknown(f"`{self.snippet(node)}` fails in Python: {e}", self.span(node))
        if isinstance(out, int) and not isinstance(out, bool) and abs(out) > MAX_INT:
            return Unknown("a number too large for any model", self.span(node))
        return out

    def array_arith(self, a, b, node):
        arr = a if isinstance(a, ArrayVal) else b
        other = b if arr is a else a
        if isinstance(other, ArrayVal) and other.shape != arr.shape:
            return Unknown("arithmetic on two arrays cnnc does not follow", self.span(node), data=True)
        if isinstance(other, (int, float, ArrayVal)):
            dtype = arr.dtype
            if isinstance(other, float) or isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.Div):
                dtype = "float64" if dtype in ("uint8", "int64", "float64") else dtype
            return ArrayVal(arr.shape, arr.classes, dtype)
        return Unknown(f"`{self.snippet(node)}`", self.span(node), data=True)

    def e_Compare(self, node, scope):
        left = self.eval(node.left, scope)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.eval(right_node, scope)
            if isinstance(left, Unknown) or isinstance(right, Unknown):
                return Unknown(f"the comparison `{self.snippet(node)}` cannot be known", self.span(node))
            plain = (int, float, str, bool, type(None), tuple, list, dict)
            if not (isinstance(left, plain) and isinstance(right, plain)):
                if type(op) in (ast.Is, ast.IsNot) and (left is None or right is None):
                    ok = (left is right) == isinstance(op, ast.Is)
                    if not ok:
                        return False
                    left = right
                    continue
                return Unknown(f"the comparison `{self.snippet(node)}` cannot be known", self.span(node))
            try:
                ok = _CMP[type(op)](left, right)
            except TypeError:
                return Unknown(f"the comparison `{self.snippet(node)}` fails in Python", self.span(node))
            if not ok:
                return False
            left = right
        return True

    def e_Subscript(self, node, scope):
        obj = self.eval(node.value, scope)
        key = self.eval(node.slice, scope)
        if isinstance(obj, Unknown):
            return obj
        if isinstance(key, Unknown):
            return key
        if isinstance(obj, ArrayVal):
            return datasets.index(obj, key, self.span(node))
        if isinstance(obj, (list, tuple, str, range)):
            try:
                return obj[key]
            except (IndexError, TypeError) as e:
                return Unknown(f"`{self.snippet(node)}` fails in Python: {e}", self.span(node))
        if isinstance(obj, dict):
            try:
                return obj[key]
            except (KeyError, TypeError):
                return Unknown(f"`{self.snippet(node)}`: no such key", self.span(node))
        if isinstance(obj, TensorVal):
            return Unknown(f"`{self.snippet(node)}`: slicing a tensor is not a Keras layer cnnc follows",
                           self.span(node))
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", self.span(node))

    def e_Slice(self, node, scope):
        parts = [self.eval(p, scope) if p is not None else None for p in (node.lower, node.upper, node.step)]
        for p in parts:
            if isinstance(p, Unknown):
                return p
        return slice(*parts)

    def e_Index(self, node, scope):          # Python 3.8
        return self.eval(node.value, scope)

    def e_Starred(self, node, scope):
        return Unknown("a starred expression here", self.span(node))

    def e_NamedExpr(self, node, scope):
        v = self.eval(node.value, scope)
        self.bind(node.target.id, v, scope)
        return v

    def e_Lambda(self, node, scope):
        return self.make_function(node, scope)

    def e_ListComp(self, node, scope):
        return self.comprehension(node, scope, lambda s: self.eval(node.elt, s))

    e_GeneratorExp = e_ListComp

    def e_DictComp(self, node, scope):
        out = self.comprehension(node, scope, lambda s: (self.eval(node.key, s), self.eval(node.value, s)))
        if isinstance(out, Unknown):
            return out
        try:
            return dict(out)
        except TypeError:
            return Unknown("a dict with keys cnnc cannot follow", self.span(node))

    def e_SetComp(self, node, scope):
        return Unknown("a set", self.span(node))

    def comprehension(self, node, scope, produce):
        inner = Scope(scope)
        inner.vars = {}
        out: list = []

        def level(k: int) -> Unknown | None:
            if k == len(node.generators):
                out.append(produce(inner))
                self.check_size(out, node)
                self.count_items(1, node)
                return None
            gen = node.generators[k]
            it = self.iterable(self.eval(gen.iter, inner), gen.iter)
            if isinstance(it, Unknown):
                return it
            for i, item in enumerate(it):
                self.count_iteration(i, node)
                self.assign(gen.target, item, inner, None)
                conds = [self.truth(self.eval(c, inner)) for c in gen.ifs]
                if any(c is None for c in conds):
                    return Unknown("a comprehension's condition cannot be known", self.span(node))
                if all(conds):
                    bad = level(k + 1)
                    if bad is not None:
                        return bad
            return None

        bad = level(0)
        return bad if bad is not None else out

    def e_Attribute(self, node, scope):
        obj = self.eval(node.value, scope)
        return self.attribute(obj, node.attr, node)

    def attribute(self, obj, attr: str, node):
        if isinstance(obj, Unknown):
            return obj
        span = self.span(node)
        if isinstance(obj, KerasRef):
            if attr == "newaxis" and obj.path[0] == "tensorflow":
                return None
            path, note = canonical(obj.path + (attr,))
            if note:
                self.note_once(("path", span.line, path[:2]), note, span,
                               *keras2.path_fix(obj.path + (attr,)))
            if path[:2] == ("keras", "datasets") and len(path) == 3:
                return DatasetRef(path[2])
            return KerasRef(path)
        if isinstance(obj, ModuleRef):
            if obj.path[0] == "numpy" and attr == "newaxis":
                return None
            if obj.path[0] == "numpy" and attr in ("float32", "float64", "uint8", "int32", "int64", "float16"):
                return attr
            if obj.path == ("functools",) and attr == "partial":
                return ("builtin", "partial")
            return ModuleRef(obj.path + (attr,))
        if isinstance(obj, (DatasetRef, SuperRef, DataStream)):
            return BoundMethod(obj, attr, span)
        if isinstance(obj, ArrayVal):
            if attr == "shape":
                return obj.shape
            if attr == "ndim":
                return len(obj.shape)
            if attr == "dtype":
                return obj.dtype
            if attr == "T":
                return ArrayVal(obj.shape[::-1], None, obj.dtype)
            if attr == "size":
                n = 1
                for d in obj.shape:
                    n *= d
                return n
            return BoundMethod(obj, attr, span)
        if isinstance(obj, ModelVal):
            if attr in ("output", "outputs", "input", "inputs", "layers") and obj.kind in (
                    "functional", "sequential"):
                return self.model_attribute(obj, attr, span)
            if attr == "name":
                return obj.name if isinstance(obj.name, str) else Unknown("the model's name", span)
            if attr in _SEQUENTIAL_METHODS:
                return BoundMethod(obj, attr, span)
            return Unknown(f"`{self.snippet(node)}`: cnnc does not follow a model's {attr}", span)
        if isinstance(obj, ClassVal):
            return self.class_attribute(obj, attr, span)
        if isinstance(obj, InstanceVal):
            if attr in obj.attrs:
                return obj.attrs[attr]
            for c in (obj.cls, *obj.cls.bases):
                if attr in c.attrs:
                    return c.attrs[attr]
            method = self.class_method(obj.cls, attr)
            if method is not None or (obj.cls.kind in ("layer", "model") and attr.startswith("add_")):
                return BoundMethod(obj, attr, span)
            return Unknown(f"`{self.snippet(node)}` is not set", span)
        if isinstance(obj, (list, dict, str, tuple)):
            return BoundMethod(obj, attr, span)
        if isinstance(obj, TensorVal):
            if attr == "shape":
                return self.tensor_shape(obj, node)
            return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)
        if isinstance(obj, LayerVal):
            if attr == "output":
                return self.layer_output(obj, span)
            if attr == "name":
                from cnnc.frontends.python.emit import _given_name
                return _given_name(obj)
            return Unknown(f"`{self.snippet(node)}`: cnnc does not follow a layer's {attr}", span)
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)

    # --- calls ------------------------------------------------------------------------

    def e_Call(self, node, scope):
        func = self.eval(node.func, scope)
        args = self.call_args(node, scope)
        if isinstance(args, Unknown):
            return args
        return self.call(func, args, node, scope)

    def call_args(self, node: ast.Call, scope) -> list[ArgVal] | Unknown:
        out: list[ArgVal] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                v = self.eval(a.value, scope)
                if not isinstance(v, (list, tuple)):
                    return Unknown(f"`*{self.snippet(a.value)}` cannot be expanded", self.span(a))
                out.extend(ArgVal(None, x, self.span(a)) for x in v)
            else:
                out.append(ArgVal(None, self.eval(a, scope), self.span(a)))
        for k in node.keywords:
            v = self.eval(k.value, scope)
            if k.arg is None:
                if not isinstance(v, dict) or not all(isinstance(x, str) for x in v):
                    return Unknown(f"`**{self.snippet(k.value)}` cannot be expanded", self.span(k))
                out.extend(ArgVal(key, x, self.span(k), self.span(k)) for key, x in v.items())
            else:
                ks = self.span(k)
                out.append(ArgVal(k.arg, v, self.span(k.value),
                                  Span(ks.line, ks.column, ks.line, ks.column + len(k.arg))))
        return out

    def call(self, func, args: list[ArgVal], node: ast.Call, scope):
        span = self.span(node)
        if self.groups or self.tracing:
            applied = self.activation_call(func, args, node) or self.tensor_function(func, args, node)
            if applied is not None:
                return applied
        if isinstance(func, FuncVal):
            return self.call_function(func, args, node)
        if isinstance(func, PartialVal):
            given = {a.keyword for a in args if a.keyword}
            merged = ([a for a in func.args if a.keyword is None] + [a for a in args if a.keyword is None]
                      + [a for a in func.args if a.keyword and a.keyword not in given]
                      + [a for a in args if a.keyword])
            return self.call(func.func, merged, node, scope)
        if isinstance(func, KerasRef):
            return self.keras_call(func, args, node)
        if isinstance(func, LayerVal):
            return self.apply_layer(func, args, node)
        if isinstance(func, BoundMethod):
            return self.method_call(func, args, node, scope)
        if isinstance(func, ClassVal):
            return self.instantiate(func, args, node)
        if isinstance(func, ModelVal) and args and isinstance(args[0].value, ArrayVal):
            self.touched = True        # model(x_train[:1]): Keras builds it on this shape
            if func.data_shape is None and len(args[0].value.shape) >= 2:
                func.data_shape, func.data_span = tuple(args[0].value.shape[1:]), args[0].span
            return Unknown("the model's output on data", span)
        if isinstance(func, ModelVal):
            self.touched = True
            func.used_as_layer = True
            return self.apply_model(func, args, node)
        if isinstance(func, tuple) and len(func) == 2 and func[0] == "builtin":
            return self.builtin(func[1], args, node, scope)
        if isinstance(func, ModuleRef):
            return self.module_call(func, args, node)
        if isinstance(func, DatasetRef):
            return Unknown("a dataset module is not callable", span)
        if any(isinstance(a.value, TensorVal) for a in args):
            return Unknown(f"`{self.snippet(node.func)}(...)` on a tensor is not a Keras layer cnnc "
                           "can follow", span)
        return func if isinstance(func, Unknown) else Unknown(
            f"`{self.snippet(node)}` is not followed by cnnc", span)

    def call_function(self, f: FuncVal, args: list[ArgVal], node: ast.Call, self_obj=None):
        span = self.span(node)
        if self.depth >= MAX_CALL_DEPTH:
            raise Budget(f"helper functions call each other more than {MAX_CALL_DEPTH} deep here",
                         span)
        a = f.node.args
        scope = Scope(f.closure)
        params = [p.arg for p in getattr(a, "posonlyargs", [])] + [p.arg for p in a.args]
        positional = [x for x in args if x.keyword is None]
        keywords = [x for x in args if x.keyword is not None]
        if self_obj is not None:
            positional = [ArgVal(None, self_obj, span)] + positional
        n_default_start = len(params) - len(f.defaults)
        for i, p in enumerate(params):
            if i < len(positional):
                scope.vars[p] = positional[i].value
            elif any(k.keyword == p for k in keywords):
                scope.vars[p] = next(k.value for k in keywords if k.keyword == p)
            elif i >= n_default_start:
                scope.vars[p] = f.defaults[i - n_default_start]
            else:
                scope.vars[p] = Unknown(f"{f.name}() is called without its argument '{p}'", span)
        extra = positional[len(params):]
        if a.vararg is not None:
            scope.vars[a.vararg.arg] = tuple(x.value for x in extra)
        for p, d in zip(a.kwonlyargs, f.kw_defaults):
            hit = next((k for k in keywords if k.keyword == p.arg), None)
            if hit is not None:
                scope.vars[p.arg] = hit.value
            elif d is not _MISSING:
                scope.vars[p.arg] = d
            else:
                scope.vars[p.arg] = Unknown(f"{f.name}() is called without its argument '{p.arg}'", span)
        if a.kwarg is not None:
            named = set(params) | {p.arg for p in a.kwonlyargs}
            scope.vars[a.kwarg.arg] = {k.keyword: k.value for k in keywords if k.keyword not in named}
        self.depth += 1
        if self_obj is not None:
            self.self_stack.append(self_obj)
        try:
            if isinstance(f.node, ast.Lambda):
                return self.eval(f.node.body, scope)
            self.exec_block(f.node.body, scope)
            return None
        except _Return as r:
            return r.value
        except _Raise:
            return Unknown(f"{f.name}() raises an exception here", span)
        except (_Break, _Continue):
            return None
        finally:
            self.depth -= 1
            if self_obj is not None:
                self.self_stack.pop()

    def builtin(self, name: str, args: list[ArgVal], node, scope):
        span = self.span(node)
        vals = [a.value for a in args if a.keyword is None]
        kws = {a.keyword: a.value for a in args if a.keyword is not None}
        if name == "print":
            return None
        if name == "partial":
            if not vals:
                return Unknown("partial() without a function", span)
            return PartialVal(vals[0], args[1:])
        if name == "super":
            return SuperRef(self.self_stack[-1]) if self.self_stack else Unknown("super()", span)
        if any(isinstance(v, Unknown) for v in vals):
            return next(v for v in vals if isinstance(v, Unknown))
        try:
            if name == "range":
                if not all(_is_int(v) for v in vals) or not 1 <= len(vals) <= 3:
                    return Unknown(f"`{self.snippet(node)}`", span)
                r = range(*vals)
                if len(r) > MAX_SEQUENCE:
                    raise Budget(f"range of more than {MAX_SEQUENCE:,} numbers", span)
                return r
            if name == "len":
                v = vals[0]
                if isinstance(v, ArrayVal):
                    return v.shape[0] if v.shape else Unknown("len() of a scalar", span)
                if isinstance(v, (list, tuple, str, dict, range)):
                    return len(v)
                return Unknown(f"`{self.snippet(node)}`", span)
            if name in ("int", "float", "str", "bool", "abs", "round", "repr"):
                if not vals:
                    return {"int": 0, "float": 0.0, "str": "", "bool": False}.get(name)
                if not isinstance(vals[0], (int, float, str, bool, type(None), tuple, list)):
                    return Unknown(f"`{self.snippet(node)}`", span)
                out = {"int": int, "float": float, "str": str, "bool": bool, "abs": abs,
                       "round": round, "repr": repr}[name](*vals)
                if isinstance(out, int) and abs(out) > MAX_INT:
                    return Unknown("a number too large", span)
                return out
            if name in ("tuple", "list"):
                if not vals:
                    return () if name == "tuple" else []
                it = self.iterable(vals[0], node)
                if isinstance(it, Unknown):
                    return it
                self.count_items(len(it), node)
                return tuple(it) if name == "tuple" else list(it)
            if name == "dict":
                base = dict(vals[0]) if vals and isinstance(vals[0], dict) else {}
                base.update(kws)
                return base
            if name in ("enumerate", "zip", "reversed", "sorted", "min", "max", "sum", "any", "all"):
                seqs = [self.iterable(v, node) for v in vals]
                for s in seqs:
                    if isinstance(s, Unknown):
                        return s
                if name == "enumerate":
                    start = kws.get("start", vals[1] if len(vals) > 1 else 0)
                    return list(enumerate(seqs[0], start)) if _is_int(start) else Unknown("enumerate", span)
                if name == "zip":
                    return list(zip(*seqs))
                if name == "reversed":
                    return list(reversed(seqs[0]))
                if name in ("min", "max") and len(vals) > 1:
                    return {"min": min, "max": max}[name](vals)
                return {"sorted": sorted, "min": min, "max": max, "sum": sum, "any": any,
                        "all": all}[name](seqs[0])
            if name == "isinstance":
                return Unknown("isinstance()", span)
            if name in ("divmod", "pow") and all(isinstance(v, (int, float)) for v in vals):
                if name == "pow" and abs(vals[1]) > 64:
                    return Unknown("a power this large", span)
                return {"divmod": divmod, "pow": pow}[name](*vals)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, IndexError) as e:
            return Unknown(f"`{self.snippet(node)}` fails in Python: {e}", span)
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)

    def method_call(self, m: BoundMethod, args: list[ArgVal], node, scope):
        obj, name, span = m.obj, m.name, self.span(node)
        vals = [a.value for a in args if a.keyword is None]
        kws = {a.keyword: a.value for a in args if a.keyword is not None}
        if isinstance(obj, ModelVal):
            return self.model_method(obj, name, args, node)
        if isinstance(obj, DatasetRef):
            if name == "load_data":
                self.touched = True
                return datasets.load(obj.name, span)
            return Unknown(f"`{self.snippet(node)}`", span)
        if isinstance(obj, ArrayVal):
            return self.array_method(obj, name, vals, kws, node)
        if isinstance(obj, InstanceVal):
            return self.instance_method(obj, name, args, node)
        if isinstance(obj, SuperRef):
            return self.super_call(obj, name, args, node)
        if isinstance(obj, DataStream):
            return tfdata.method(obj, name, args, span)
        if isinstance(obj, list):
            if name == "append" and len(vals) == 1:
                obj.append(vals[0])
                self.check_size(obj, node)
                self.count_items(1, node)
                self.touched = self.touched or isinstance(vals[0], (LayerVal, TensorVal, ModelVal))
                return None
            if name == "extend" and len(vals) == 1 and isinstance(vals[0], (list, tuple, range)):
                obj.extend(vals[0])
                self.check_size(obj, node)
                self.count_items(len(vals[0]), node)
                return None
            if name == "insert" and len(vals) == 2 and _is_int(vals[0]):
                obj.insert(vals[0], vals[1])
                return None
            if name == "pop" and obj:
                return obj.pop(vals[0]) if vals and _is_int(vals[0]) and -len(obj) <= vals[0] < len(obj) else obj.pop()
            if name in ("index", "count") and vals:
                try:
                    return getattr(obj, name)(vals[0])
                except ValueError:
                    return Unknown(f"`{self.snippet(node)}`", span)
            if name == "copy":
                return list(obj)
        if isinstance(obj, dict):
            if name == "get" and vals:
                try:
                    return obj.get(vals[0], vals[1] if len(vals) > 1 else None)
                except TypeError:
                    return Unknown("dict.get", span)
            if name in ("keys", "values", "items"):
                return list(getattr(obj, name)())
            if name == "copy":
                return dict(obj)
            if name == "update" and vals and isinstance(vals[0], dict):
                obj.update(vals[0])
                obj.update(kws)
                return None
        if isinstance(obj, str):
            if name in ("upper", "lower", "strip", "title", "capitalize") and not vals:
                return getattr(obj, name)()
            if name in ("startswith", "endswith") and vals and isinstance(vals[0], (str, tuple)):
                return getattr(obj, name)(vals[0])
            if name == "replace" and len(vals) == 2 and all(isinstance(v, str) for v in vals):
                old, new = vals           # the result's length first: never build a huge string
                n = obj.count(old) if old else len(obj) + 1
                if len(obj) + n * (len(new) - len(old)) > MAX_SEQUENCE:
                    return Unknown("a long string", span)
                out = obj.replace(*vals)
                return out if len(out) <= MAX_SEQUENCE else Unknown("a long string", span)
            if name == "join" and vals and isinstance(vals[0], (list, tuple)) and all(isinstance(v, str) for v in vals[0]):
                if sum(map(len, vals[0])) + len(obj) * len(vals[0]) > MAX_SEQUENCE:
                    return Unknown("a long string", span)
                out = obj.join(vals[0])
                return out if len(out) <= MAX_SEQUENCE else Unknown("a long string", span)
            if name == "format" and all(isinstance(v, (int, float, str, bool, type(None))) for v in list(vals) + list(kws.values())):
                if not _small_format(obj, (*vals, *kws.values())):
                    return Unknown("a string formatted wider than cnnc allows", span)
                try:
                    out = obj.format(*vals, **kws)
                except (IndexError, KeyError, ValueError):
                    return Unknown(f"`{self.snippet(node)}`", span)
                return out if len(out) <= MAX_SEQUENCE else Unknown("a long string", span)
            if name == "split" and len(obj) <= MAX_SEQUENCE:
                return obj.split(*[v for v in vals if isinstance(v, str)])
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)

    def array_method(self, a: ArrayVal, name, vals, kws, node):
        span = self.span(node)
        if name == "reshape":
            target = vals[0] if len(vals) == 1 else tuple(vals)
            if isinstance(target, Unknown):
                return target
            return datasets.reshape(a, target, span)
        if name == "astype":
            return ArrayVal(a.shape, a.classes, vals[0] if vals and isinstance(vals[0], str) else a.dtype)
        if name in ("copy",):
            return a
        if name in ("mean", "std", "max", "min", "sum", "argmax"):
            if not vals and "axis" not in kws:
                return Unknown(f"`{self.snippet(node)}` depends on the data's values", span, data=True)
            return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span, data=True)
        if name in ("flatten", "ravel"):
            return datasets.reshape(a, (-1,), span)
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span, data=True)

    def module_call(self, ref: ModuleRef, args: list[ArgVal], node):
        span = self.span(node)
        vals = [a.value for a in args if a.keyword is None]
        kws = {a.keyword: a.value for a in args if a.keyword is not None}
        if ref.path[0] == "numpy" and len(ref.path) == 2 and vals and isinstance(vals[0], ArrayVal):
            fn = ref.path[1]
            if fn == "reshape":
                target = vals[1] if len(vals) > 1 else kws.get("newshape", kws.get("shape"))
                if isinstance(target, Unknown):
                    return target
                return datasets.reshape(vals[0], target, span)
            if fn == "expand_dims":
                axis = vals[1] if len(vals) > 1 else kws.get("axis")
                return datasets.expand_dims(vals[0], axis, span)
            if fn in ("array", "asarray", "float32", "copy", "ascontiguousarray"):
                return vals[0]
            return self.array_method(vals[0], fn, vals[1:], kws, node)
        if ref.path[:1] == ("functools",) and ref.path[-1] == "partial":
            return self.builtin("partial", args, node, None)
        if ref.path[0] == "numpy" and ref.path[-1] == "concatenate" and vals:
            return datasets.concatenate(vals[0], vals[1] if len(vals) > 1 else kws.get("axis", 0), span)
        if ref.path[0] == "numpy":
            made = datasets.made_array(ref.path[-1], args, span) or datasets.elementwise(ref.path[-1], args)
            if made is not None:
                return made
        if ref.path[0] == "numpy" and len(ref.path) == 2 and ref.path[1] in ("prod", "product") and vals \
                and isinstance(vals[0], (tuple, list)) and all(_is_int(v) for v in vals[0]):
            n = 1
            for v in vals[0]:
                n *= v
            return n if abs(n) <= MAX_INT else Unknown("a number too large", span)
        if any(isinstance(a.value, TensorVal) for a in args):
            return Unknown(f"`{self.snippet(node.func)}(...)` on a tensor is not a Keras layer cnnc "
                           "can follow", span)
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span,
                       data=any(isinstance(v, ArrayVal) for v in vals))

    # --- Keras ---------------------------------------------------------------------------

    def keras_call(self, ref: KerasRef, args: list[ArgVal], node):
        path, last, span = ref.path, ref.last, self.span(node)
        parent = path[-2] if len(path) > 1 else ""
        if path[0] == "tensorflow" or parent in ("ops", "random"):
            made = datasets.made_array(last, args, span) or datasets.elementwise(last, args)
            if made is not None:
                self.touched = True
                return made
        if last in ("load_model", "model_from_json", "model_from_yaml"):
            given = args[0].value if args else None
            what = f"the file {shown(given)}" if last == "load_model" else "JSON text"
            self.note_once(("load", span.line), f"this model is loaded from {what}, which cnnc does "
                           "not open while reading a script", span,
                           "cnnc reads Keras model files itself: cnnc check model.keras (.h5, .json)")
            self.touched = True
            return Unknown(f"a model loaded from {what}", span)
        if last == "from_tensor_slices" and "data" in path:
            self.touched = True
            return tfdata.from_tensor_slices(args, span)
        if last in ("image_dataset_from_directory",):
            self.touched = True
            return tfdata.image_dataset_from_directory(args, span)
        if path[0] != "keras":
            if parent == "nn" and any(isinstance(a.value, TensorVal) for a in args):
                return Unknown(f"`{self.snippet(node.func)}(...)` on a tensor is not a Keras layer "
                               "cnnc can follow", span)
            if any(isinstance(a.value, TensorVal) for a in args):
                return Unknown(f"`{self.snippet(node.func)}(...)` on a tensor is not a Keras layer "
                               "cnnc can follow", span)
            return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)
        self.touched = True
        if last == "Sequential":
            return self.new_sequential(args, node)
        if last in ("Model", "Functional"):
            return self.new_functional(args, node)
        if last == "Input" or (last == "InputLayer"):
            return self.new_input(last, args, node)
        if parent == "layers" and last in MERGE_FUNCTIONS:
            return self.merge_function(last, args, node)
        if last in LAYER_NAMES or (parent == "layers" and last[:1].isupper()):
            return self.new_layer(last, args, node)
        if parent == "applications" or "applications" in path:
            if last in APPS:
                return self.new_application(last, args, node)
            if last == "preprocess_input" and parent != "applications":
                return self.preprocess(parent, args, node)
            if last[:1].isupper():        # a model cnnc cannot build: an error where it is made
                self.touched = True
                m = ModelVal("functional", span, name=last)
                m.problems.append((f"'{last}' is a Keras application cnnc does not carry", span,
                                   (f"cnnc builds {', '.join(APPS)}",)))
                self.models.append(m)
                return m
            return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)
        if last in ("to_categorical",):
            y = args[0].value if args else None
            n = args[1].value if len(args) > 1 and args[1].keyword is None else next(
                (a.value for a in args if a.keyword in ("num_classes", "nb_classes")), None)
            if isinstance(y, ArrayVal):
                return datasets.to_categorical(y, n, span)
            return y if isinstance(y, Unknown) else Unknown("to_categorical of unknown labels", span, data=True)
        if last in ("image_data_format",):
            return "channels_last"
        if last in ("image_dim_ordering",):
            return "tf"
        if last in ("set_image_data_format", "set_image_dim_ordering"):
            v = args[0].value if args else None
            if v not in ("channels_last", "tf"):
                self.rep.error(f"cnnc computes channels_last (NHWC), Keras's default; "
                               f"{last}({shown(v)}) makes every layer channels_first", span,
                               "remove this line: Keras 3 and cnnc default to channels_last")
            return None
        if last in ("clear_session", "set_random_seed", "set_floatx", "set_learning_phase", "seed"):
            return None
        if parent in OBJECT_MODULES or last in ("l1", "l2", "l1_l2", "L1", "L2", "L1L2"):
            if parent == "optimizers":
                keras2.translate_optimizer(last, args, self.rep)
            return KerasObj(path, args, span)
        if parent in ("ops", "backend") and any(isinstance(a.value, TensorVal) for a in args):
            return Unknown(f"`{self.snippet(node.func)}(...)` on a tensor is not a Keras layer cnnc "
                           "can follow", span)
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)

    def keras_name(self, cls: str) -> str:
        """Keras names layers per session (process), not per model: the snake_case class
        name, numbered in the order the script creates them, whatever model they join."""
        from cnnc.analysis import kinds
        from cnnc.analysis.arguments import snake_case
        spec = kinds.lookup(cls)
        base = spec.default_name if spec is not None else snake_case(cls)
        n = self.name_counts.get(base, 0)
        self.name_counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def new_layer(self, cls: str, args: list[ArgVal], node) -> LayerVal:
        span = self.span(node)
        layer = LayerVal(cls, args, span, self.span(node.func), written=(cls,), seq=self.next_seq())
        keras2.translate_layer(layer, self.rep)
        if not any(a.keyword == "name" for a in layer.args):   # a given name takes no number
            layer.keras_name = self.keras_name(layer.cls)
        if cls in KERAS1_REMOVED:
            layer.unsupported = KERAS1_REMOVED[cls]
        elif cls == "Lambda":
            fn = next((a.value for a in args if a.keyword in (None, "function")), None)
            if isinstance(fn, (FuncVal, PartialVal, KerasRef, KerasObj)):
                layer.fn = fn             # followed on its tensor (apply_lambda)
            else:
                layer.unsupported = ("Lambda layers run Python code that cnnc follows only when it "
                                     "is a function of the script or a Keras activation")
        return layer

    def new_input(self, cls: str, args: list[ArgVal], node):
        span = self.span(node)
        args = keras2.translate_input(cls, args, self.rep)
        named = any(a.keyword == "name" for a in args)
        self.add_node(TNode("input", span, input_args=args, input_cls="Input",
                                keras_name=None if named else self.keras_name("InputLayer")))
        return TensorVal(len(self.nodes) - 1)

    def merge_function(self, fn: str, args: list[ArgVal], node):
        tensors = next((a for a in args if a.keyword is None), None) or next(
            (a for a in args if a.keyword == "inputs"), None)
        rest = [a for a in args if a is not tensors]
        layer = LayerVal(MERGE_FUNCTIONS[fn], rest, self.span(node), self.span(node.func),
                         written=(fn,), keras_name=None if any(a.keyword == "name" for a in rest)
                         else self.keras_name(MERGE_FUNCTIONS[fn]))
        if tensors is None:
            return Unknown(f"{fn}() needs a list of tensors", self.span(node))
        return self.apply_layer(layer, [tensors], node)

    def apply_layer(self, layer: LayerVal, args: list[ArgVal], node):
        self.touched = True
        span = self.span(node)
        given = next((a for a in args if a.keyword is None), None) or next(
            (a for a in args if a.keyword == "inputs"), None)
        # training= picks Dropout's and BatchNormalization's mode, never a shape: cnnc's
        # inference and training modes follow from the command, as in Keras's fit/predict
        extra = [a for a in args if a is not given and a.keyword != "training"]
        if given is None:
            return Unknown(f"{layer.cls} is called without an input tensor", span)
        if layer.custom is not None:
            return self.apply_custom(layer, given, extra, node)
        if layer.fn is not None:
            return self.apply_lambda(layer, given, node)
        if layer.uses:
            layer = self.weightless_copy(layer) or layer
        v = given.value
        elts = getattr(node.args[0], "elts", None) if node.args and given is args[0] and given.keyword is None else None
        if isinstance(v, TensorVal):
            inputs, listed, spans = [v.node], False, [given.span]
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, TensorVal) for x in v):
            inputs, listed = [x.node for x in v], True
            spans = [self.span(e) for e in elts] if elts is not None and len(elts) == len(v) else [given.span] * len(v)
        else:
            bad = v if isinstance(v, Unknown) else next(
                (x for x in v if isinstance(x, Unknown)), None) if isinstance(v, (list, tuple)) else None
            if bad is not None:
                return bad
            return Unknown(f"{layer.cls} is called on `{self.snippet(node.args[0]) if node.args else '...'}`"
                           ", which is not a tensor cnnc knows", given.span)
        layer.uses += 1
        t = TNode("apply", span, layer=layer, inputs=inputs, listed=listed, operand_spans=spans)
        t.extra = extra
        self.add_node(t)
        return TensorVal(len(self.nodes) - 1)

    def tensor_op(self, op: str, operands, node):
        self.touched = True
        tensors = [v.node for v, _ in operands if isinstance(v, TensorVal)]
        numbers = [v for v, _ in operands if not isinstance(v, TensorVal)]
        spans = [self.span(n) for v, n in operands if isinstance(v, TensorVal)]
        # Keras names an operation only in a functional graph; inside a custom layer's or a
        # subclassed model's call() it is plain arithmetic, shown under the layer before it
        hidden = bool(self.groups) or self.tracing
        name = self.hidden_name(op) if hidden else self.keras_name(OP_CLASSES.get(op, op))
        t = TNode("op", self.span(node), op=op, inputs=tensors, operand_spans=spans, keras_name=name,
                  constant=numbers[0] if numbers else None,
                  reverse=len(operands) == 2 and not isinstance(operands[0][0], TensorVal))
        self.add_node(t)
        return TensorVal(len(self.nodes) - 1)

    # --- models ----------------------------------------------------------------------------

    def new_sequential(self, args: list[ArgVal], node) -> ModelVal:
        m = ModelVal("sequential", self.span(node))
        self.models.append(m)
        for i, a in enumerate(args):
            key = a.keyword or ("layers" if i == 0 else "name" if i == 2 else "trainable")
            if key == "layers":
                items = a.value
                if isinstance(items, (list, tuple)):
                    for it in items:
                        self.seq_add(m, it, a.span, rebuild=False)
                elif items is not None:
                    m.problems.append((f"the layers of this Sequential are not known: "
                                       f"{getattr(items, 'why', 'not a list')}", a.span, ()))
            elif key == "name":
                m.name, m.name_span = a.value, a.span
        if m.name is None:                     # a given name takes no number, as for layers
            m.keras_name = self.keras_name("Sequential")
        self.seq_rebuild(m)
        return m

    def seq_add(self, m: ModelVal, item, span: Span, rebuild: bool = True) -> None:
        if isinstance(item, ModelVal):
            item.used_as_layer = True
        m.items.append(item)
        m.item_spans.append(getattr(item, "span", None) or span)
        if rebuild:
            self.seq_rebuild(m)

    def seq_rebuild(self, m: ModelVal) -> None:
        """Keras rebuilds a Sequential whose input shape it knows after every change,
        as a Functional that takes the next "functional" name of the session (so a
        later keras.Model(...) is functional_3, not functional)."""
        items = m.items
        first = items[0] if items else None
        known = m.build_shape is not None or (
            isinstance(first, TensorVal) and self.nodes[first.node].kind == "input") or (
            isinstance(first, LayerVal) and any(a.keyword in ("input_shape", "input_dim", "batch_input_shape",
                                                              "batch_shape") for a in first.args))
        layers = len(items) - (1 if isinstance(first, TensorVal) else 0)
        if known and layers > 0:
            self.keras_name("Functional")

    def new_functional(self, args: list[ArgVal], node, keras_name: str = "Functional") -> ModelVal:
        m = ModelVal("functional", self.span(node))
        self.models.append(m)
        positional = [a for a in args if a.keyword is None]
        for i, a in enumerate(positional[:2]):
            setattr(m, ("inputs", "outputs")[i], a.value)
        for a in args:
            if a.keyword in ("inputs", "outputs"):
                setattr(m, a.keyword, a.value)
            elif a.keyword in ("input", "output"):
                self.rep.error(f"Model({a.keyword}=...) is Keras 2's spelling; Keras 3 refuses it",
                               a.keyword_span or a.span, f"write Model({a.keyword}s=...)")
                setattr(m, a.keyword + "s", a.value)
            elif a.keyword == "name":
                m.name, m.name_span = a.value, a.span
        if m.name is None:
            m.keras_name = self.keras_name(keras_name)
        return m

    def model_method(self, m: ModelVal, name: str, args: list[ArgVal], node):
        self.touched = True
        span = self.span(node)
        if name == "add" and m.kind == "sequential":
            if args:
                self.seq_add(m, args[0].value, args[0].span)
            return None
        if name == "pop" and m.kind == "sequential":
            if m.items:
                m.items.pop()
                m.item_spans.pop()
                self.seq_rebuild(m)
            return None
        if name == "compile":
            if m.fit is None:
                m.compile = CallRecord(args, span, self.span(node.func))
            return None
        if name in ("fit", "fit_generator"):
            if name == "fit_generator":
                self.note_once(("fitgen", span), "fit_generator() was removed in Keras 3", span,
                               "use model.fit(), which takes generators and datasets")
            for a in args:
                if a.keyword == "nb_epoch":
                    self.rep.error("`nb_epoch=` is Keras 1's spelling, which Keras 3 refuses",
                                   a.keyword_span or a.span,
                                   "write epochs=; cnnc reads it as epochs to check the rest")
            if m.fit is None:
                m.fit = CallRecord(args, span, self.span(node.func))
                x = args[0].value if args and args[0].keyword is None else next(
                    (a.value for a in args if a.keyword == "x"), None)
                if isinstance(x, ArrayVal) and len(x.shape) >= 2:
                    m.data_shape, m.data_span = tuple(x.shape[1:]), args[0].span
                elif isinstance(x, DataStream) and tfdata.sample_shape(x):
                    m.data_shape, m.data_span = tfdata.sample_shape(x), args[0].span
            return None
        if name == "build":
            shape = args[0].value if args else None
            m.build_shape, m.build_span = shape, args[0].span if args else span
            if m.kind == "sequential":
                self.seq_rebuild(m)
            return None
        if name in ("summary", "save", "save_weights", "load_weights"):
            return None
        if name == "get_layer":
            return self.get_layer(m, args, span)
        return Unknown(f"`{self.snippet(node)}`: the result of model.{name}() is not known without "
                       "running the model", span)

    def tensor_shape(self, t: TensorVal, node) -> tuple | Unknown:
        """`x.shape` of a tensor: the layers before it checked as cnnc checks a model
        (`if filters != residual.shape[-1]:` in residual blocks)."""
        from cnnc.analysis.infer import infer
        from cnnc.analysis.resolve import resolve
        from cnnc.frontends.python.emit import emit
        span = self.span(node)
        cached = getattr(self, "_shapes", None)
        if cached is None:
            cached = self._shapes = {}
        if t.node in cached:
            return cached[t.node]
        probe = ModelVal("functional", span, outputs=t)
        # Tensors whose shape an earlier probe found stand in as inputs of that shape, so
        # each probe checks only the layers since then (linear, not quadratic, in a loop
        # that asks `x.shape` every block)
        nodes = list(self.nodes)
        for k, known in cached.items():
            if isinstance(known, tuple) and k != t.node:
                nodes[k] = TNode("input", nodes[k].span,
                                 input_args=[ArgVal("shape", tuple(known[1:]), nodes[k].span)])
        out = emit(probe, nodes, None)
        result: tuple | Unknown
        if out.problems:
            result = Unknown(f"`{self.snippet(node)}`: {out.problems[0][0]}", span)
        else:
            rep = Reporter(self.src.path)
            ir = resolve(out.statements, rep, self.src.path)
            analysis = infer(ir, rep)
            shape = None
            if not rep.has_errors:
                target = ir.outputs[0] if ir.outputs else None
                for info in analysis.infos:
                    if info.layer.name == target and info.output is not None:
                        shape = info.output.shape
                for inp in ir.inputs:
                    if inp.name == target:
                        shape = inp.shape
            result = (None,) + tuple(shape) if shape is not None else Unknown(
                f"`{self.snippet(node)}`: the layers before it do not check, so its shape is unknown",
                span)
        cached[t.node] = result
        return result
