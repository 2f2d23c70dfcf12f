"""The evaluator of Keras scripts: the abstract interpreter of Python (interp.py) with
Keras's objects as values. Layers, tensors and models are recorded (values.py) for
emit.py to turn into cnnc's own statements; the script's classes (classes.py),
Keras applications (applications.py), data (datasets.py, tfdata.py) and sibling
modules (modules.py) are followed here too.

A run goes through the module as Python would, then calls what the file defines but
never calls itself (a builder `def unet(input_size=(256, 256, 1))`: `unet()`), or the
call `--model "unet(...)"` asks for. Nothing is ever executed; bounded work.
"""

from __future__ import annotations

import ast
from typing import Any

from cnnc.analysis.kinds import OP_CLASSES
from cnnc.frontends.python import datasets, keras2, tfdata
from cnnc.frontends.python.applications import APPS, ApplicationsMixin
from cnnc.frontends.python.classes import ClassesMixin
from cnnc.frontends.python.datasize import data_size, named
from cnnc.frontends.python.interp import Interpreter, is_int, known
from cnnc.frontends.python.keras_api import (
    KERAS1_REMOVED,
    KERAS3_BACKEND,
    LAYER_NAMES,
    MERGE_FUNCTIONS,
    OBJECT_MODULES,
    canonical,
    exported,
    gone_in_keras3,
    snippet_import,
)
from cnnc.frontends.python.limits import MAX_INT, Budget, _Break, _Continue, _Raise, _Return
from cnnc.frontends.python.pybuiltins import stdlib_value
from cnnc.frontends.python.scope import _MISSING, Scope
from cnnc.frontends.python.source import ZOO_LINE
from cnnc.frontends.python.values import (
    ArgVal,
    ArrayVal,
    BoundMethod,
    Builtin,
    CallRecord,
    ClassVal,
    DatasetRef,
    DataStream,
    FuncVal,
    KerasObj,
    KerasRef,
    LayerVal,
    ModelVal,
    ModuleRef,
    ModuleVal,
    ObjectVal,
    PartialVal,
    TensorVal,
    TNode,
    Unknown,
    describe,
    shown,
)
from cnnc.support.diagnostics import Reporter, Span

MAX_NODES = 20_000           # layers and tensors a script builds (NASNetLarge has ~1,300)

# The libraries a script imports by name: never a sibling module of the same name.
LIBRARIES = frozenset({
    "keras", "tensorflow", "tf_keras", "keras_core", "numpy", "pandas", "matplotlib", "sklearn",
    "scipy", "cv2", "PIL", "torch", "seaborn", "IPython", "google", "tensorflow_hub",
    "tensorflow_datasets", "keras_applications", "keras_preprocessing", "imutils", "h5py",
    "skimage", "albumentations", "tqdm", "six", "absl", "click", "wandb", "mlflow", "yaml"})
_SEQUENTIAL_METHODS = {"add", "compile", "fit", "fit_generator", "build", "summary", "pop",
                       "evaluate", "predict", "save", "save_weights", "load_weights", "to_json",
                       "train_on_batch", "test_on_batch", "predict_classes", "count_params",
                       "get_weights", "set_weights", "get_layer", "evaluate_generator",
                       "predict_generator", "export", "get_config", "predict_on_batch",
                       "reset_states", "call", "compute_output_shape"}
_TENSOR_OPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}
# what a module of Keras 2's keras_applications package imports from its package
KERAS_APPLICATIONS_NAMES = frozenset({"get_submodules_from_kwargs", "imagenet_utils",
                                      "_obtain_input_shape", "decode_predictions", "correct_pad",
                                      "preprocess_input", "keras_applications"})
# methods of data that count something: a size from the data
_COUNTS = frozenset({"nunique", "count", "__len__", "num_classes"})
# names Keras gives a model's own: model.name, layer.name, ...
_KERAS_HELPERS = {"int_shape", "is_keras_tensor", "get_source_inputs", "image_data_format",
                  "image_dim_ordering", "_obtain_input_shape", "obtain_input_shape", "correct_pad",
                  "get_submodules_from_kwargs"}


class Evaluator(ClassesMixin, ApplicationsMixin, Interpreter):
    def __init__(self, smap, rep: Reporter, input_shape: tuple | None = None, decisions=None,
                 project=None):
        super().__init__(smap, rep, decisions)
        self._span_cache = smap._spans
        self.project = project
        self.nodes: list[TNode] = []
        self.name_counts: dict[str, int] = {}    # Keras's per-session layer numbering
        self.models: list[ModelVal] = []
        self.skipped: list[tuple[int, str]] = []
        self.class_stack: list = []
        self.input_shape = input_shape
        self.groups: list[tuple[str, str]] = []   # the custom layers whose call() runs now
        self.hidden_counts: dict = {}
        self.tracing = False                  # a subclassed model's call() runs now
        self.trace_prefix = "op"              # hidden names' prefix while tracing
        self.layer_seq = 0
        self.modules: dict = {}               # the sibling modules imported in this run
        self.import_depth = 0
        self.app_spans: list[Span] = []       # an application's code runs: its call's span
        self.top_span: Span | None = None     # the script's statement running now
        self.reached: set[int] = set()        # lines whose model constructors ran
        self.offered: list = []               # (call text, reason) of builders that need arguments
        self.module_scope: Scope | None = None
        self.out_of_steps = False
        self.poisoned: list[tuple[int, int, str]] = []   # (first line, last line, why) not run
        self.entry_result: Any = None
        self.stopped = False
        self.replaying = False                # a model traced again on its own (classes.py)
        self.applying: set[int] = set()       # the nested models running now (classes.py)
        self.tracing_model: ModelVal | None = None

    # --- positions ------------------------------------------------------------------

    def span(self, node: ast.AST) -> Span:
        hit = self._span_cache.get(id(node))
        if hit is not None and hit[0] is node and not self.app_spans:
            return hit[1]
        line = getattr(node, "lineno", 1)
        if line >= ZOO_LINE and self.app_spans:
            return self.app_spans[-1]
        s = self.smap.span(node)
        if line > self.smap.main_lines and line not in self.smap.origins and self.top_span is not None:
            self.smap.origins[line] = self.top_span
        return s

    def snippet(self, node: ast.AST, limit: int = 60) -> str:
        if getattr(node, "lineno", 1) >= ZOO_LINE:
            return "the application's code"
        return self.smap.snippet(node, limit)

    # --- the module -------------------------------------------------------------------

    def run(self, chunks, entry=None) -> None:
        """The script's code (its chunks: a file, or a notebook's cells), then the calls
        it leaves to cnnc (`entry`: the builders it never calls, or --model's call)."""
        scope = Scope()
        scope.vars["__name__"] = "__main__"
        self.module_scope = scope
        if self.project is not None:
            scope.info = self.project.main_info
        for chunk in chunks:
            for stmt in chunk.body:
                try:
                    self.top(stmt, scope)
                except Budget as b:
                    self.budget_error(b)
                    return
                if self.stopped:
                    break
            if self.stopped:
                break
        self.trace_all()
        if entry is not None:
            try:
                entry(self, scope)
            except Budget as b:
                self.budget_error(b)
                return
            self.trace_all()

    def budget_error(self, b: Budget) -> None:
        self.out_of_steps = True
        self.rep.error(b.message, b.span,
                       "cnnc follows the code that builds a model, not long computations; "
                       "models found before this point are still checked")

    def trace_all(self) -> None:
        try:
            self.trace_models(self.input_shape)
        except Budget as e:
            self.budget_error(e)
        except RecursionError:
            m = self.tracing_model
            self.rep.error("a model here nests too deeply for cnnc to follow",
                           m.span if m is not None else self.top_span)
        except _Raise as r:
            from cnnc.frontends.python.entry import _exception
            m = self.tracing_model
            self.rep.error(f"the script stops here: it raises {_exception(r)}",
                           m.span if m is not None else self.top_span,
                           "Keras raises it when it builds this model")

    def top(self, stmt: ast.stmt, scope: Scope) -> None:
        self.touched = False
        self.top_span = self.span(stmt)
        try:
            self.exec_stmt(stmt, scope)
        except (_Return, _Break, _Continue):
            pass
        except _Raise as r:
            self.stop(r, stmt)
        except RecursionError:
            self.rep.error("this statement nests too deeply for cnnc to follow", self.span(stmt))
            return
        except MemoryError:
            raise Budget("this statement needs more memory than cnnc allows", self.span(stmt))
        if not self.touched and not isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                                       ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)):
            if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                self.skipped.append((stmt.lineno, self.snippet(stmt)))

    def stop(self, r: _Raise, stmt) -> None:
        """The script raises here (or exits): Python stops, and so does cnnc, saying why."""
        self.stopped = True
        if r.exits:
            return
        from cnnc.frontends.python.entry import _exception
        at = r.span or self.span(stmt)
        self.rep.error(f"the script stops here: it raises {_exception(r)}", at,
                       "Python would stop at this statement; the models built before it are checked",
                       f"raised while running the statement at {self.where(stmt.lineno)}"
                       if at.line != stmt.lineno else "")

    def run_module_body(self, body: list, scope: Scope) -> None:
        """A sibling module's statements (imported: its __name__ is not '__main__')."""
        for stmt in body:
            try:
                self.exec_stmt(stmt, scope)
            except (_Return, _Break, _Continue):
                pass
            except _Raise as r:
                if r.exits:
                    return
                raise                        # the import fails, and so does the importer

    def poison(self, bodies, scope: Scope, why: str, span: Span) -> None:
        for body in bodies:
            if body:
                self.poisoned.append((body[0].lineno, getattr(body[-1], "end_lineno", body[-1].lineno), why))
        super().poison(bodies, scope, why, span)

    def why_unreached(self, line: int) -> str:
        """Why the model made at `line` was never made: a loop cnnc cannot run, a function
        nobody calls, a branch not taken."""
        for first, last, why in self.poisoned:
            if first <= line <= last:
                return why
        for chunk in self.smap.main.chunks:
            for stmt in chunk.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                        stmt.lineno <= line <= stmt.end_lineno:
                    return f"it is in {stmt.name}(), which the file does not call"
                if isinstance(stmt, ast.ClassDef) and stmt.lineno <= line <= stmt.end_lineno:
                    return f"it is in the class {stmt.name}, which the file does not use"
        if self.stopped:
            return "the script stops before it"
        return "the code around it is not run (a condition or loop cnnc cannot follow)"

    def add_node(self, t: TNode) -> None:
        if len(self.nodes) >= MAX_NODES:
            raise Budget(f"the script builds more than {MAX_NODES:,} layers and tensors", t.span)
        self.nodes.append(t)

    def next_seq(self) -> int:
        self.layer_seq += 1
        return self.layer_seq

    # --- names -------------------------------------------------------------------------

    def bind(self, name: str, value, scope: Scope) -> None:
        if isinstance(value, Unknown) and value.data:
            value = named(value, name)
        super().bind(name, value, scope)
        if isinstance(value, ModelVal):
            top = scope.target(name).is_module
            if value.var is None or (top and not value.var_top):
                value.var, value.var_top = name, top
        elif isinstance(value, LayerVal) and value.written and not value.var:
            value.var = name

    def assign(self, target: ast.expr, value, scope: Scope, value_node) -> None:
        if isinstance(target, ast.Name) and isinstance(value, Unknown) and value.data \
                and value_node is not None and not value.name == target.id:
            # a size or data bound to a variable is called by the variable's name, at this line
            value = Unknown(f"`{self.snippet(value_node)}` comes from the data"
                            if value.why.endswith("comes from the data") else value.why,
                            self.span(value_node), True, target.id, value.test)
        super().assign(target, value, scope, value_node)

    def missing_name(self, node, scope):
        for mod in scope.module.stars:
            if exported(mod, node.id):
                return KerasRef(mod + (node.id,)) if mod != ("keras", "datasets") else DatasetRef(node.id)
        b = super().missing_name(node, scope)
        if not isinstance(b, Unknown):
            return b
        if self.project is not None and node.id not in self.project.bound_names(scope.info):
            found = snippet_import(node.id)
            if found is not None:
                ref, line = found
                what = {"numpy": "NumPy", "tensorflow": "TensorFlow"}.get(ref[0], "Keras's")
                self.note_once(("import", node.id), f"'{node.id}' is used without an import; cnnc "
                               f"reads it as {what}", self.span(node), f"add `{line}`")
                return self.module_value(ref, node)
        return b

    def e_Call(self, node, scope):
        f = node.func
        if isinstance(f, ast.Name) and f.id in ("globals", "locals") and not node.args \
                and scope.lookup(f.id) is _MISSING:
            return (scope.module if f.id == "globals" else scope).vars   # the live namespace
        if (isinstance(f, ast.Attribute) and f.attr == "add" and isinstance(f.value, ast.Name)
                and scope.lookup(f.value.id) is _MISSING and self.project is not None
                and f.value.id not in self.project.bound_names(scope.info)):
            self.lost_sequential(f.value, scope)
        return super().e_Call(node, scope)

    def lost_sequential(self, name: ast.Name, scope: Scope) -> None:
        """`model.add(...)` on a `model` the file never creates (a blog's snippet that
        lost its first line): read as a new Sequential, with the line to add."""
        m = self.new_sequential([], ast.copy_location(ast.Call(func=name, args=[], keywords=[]), name))
        self.note_once(("lost", name.id), f"'{name.id}' is used without being created; cnnc reads "
                       "it as a new Sequential model", self.span(name),
                       f"add `{name.id} = Sequential()` before this line")
        self.bind(name.id, m, scope.module)

    # --- imports ------------------------------------------------------------------------

    def do_import(self, stmt, scope: Scope) -> None:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                path = tuple(a.name.split("."))
                if a.asname:
                    self.bind_import(a.asname, self.module_value(path, stmt, 0, scope), scope)
                else:
                    value = self.module_value(path, stmt, 0, scope)
                    top = self.module_value(path[:1], stmt, 0, scope)
                    self.bind_import(path[0], top if not isinstance(value, Unknown) or
                                     not isinstance(top, ModuleVal) else top, scope)
            return
        base = tuple(stmt.module.split(".")) if stmt.module else ()
        if base == ("__future__",):
            return
        for a in stmt.names:
            if a.name == "*":
                self.import_star(base, stmt, scope)
                continue
            value = self.module_value(base + (a.name,), stmt, stmt.level or 0, scope)
            self.bind_import(a.asname or a.name, value, scope)

    def submodule(self, module: ModuleVal, attr: str, node):
        """`pkg.sub` of a package whose __init__ does not import `sub`: read it."""
        info = module.scope.info
        if self.project is None or info is None or not info.package or info.folder is None:
            return None
        files = self.project._walk(info.folder, (attr,))
        if not files:
            return None
        mod = self.project.run_module(self, files[-1], f"{module.name}.{attr}", node)
        if isinstance(mod, ModuleVal):
            module.scope.vars[attr] = mod
        return mod

    def bind_import(self, name: str, value, scope: Scope) -> None:
        scope.target(name).vars[name] = value

    def import_star(self, base: tuple, stmt, scope: Scope) -> None:
        mod = self.module_value(base, stmt, stmt.level or 0, scope)
        if isinstance(mod, KerasRef):
            scope.module.stars.append(mod.path)
        elif isinstance(mod, ModuleVal):
            public = mod.scope.vars.get("__all__")
            names = public if isinstance(public, (list, tuple)) else [
                k for k in mod.scope.vars if not k.startswith("_")]
            for k in names:
                if isinstance(k, str) and k in mod.scope.vars:
                    scope.vars[k] = mod.scope.vars[k]
            scope.module.stars.extend(mod.scope.module.stars)

    def module_value(self, path: tuple[str, ...], node: ast.AST, level: int = 0, scope: Scope | None = None):
        if level or (self.project is not None and path[0] not in LIBRARIES):
            mod = self.project.import_value(self, path, level, node, scope) if self.project else None
            if mod is not None:
                return mod
            if level and set(path) & KERAS_APPLICATIONS_NAMES:
                # a copy of a keras_applications module: its package's helpers are Keras's
                path = ("keras", "applications") + tuple(p for p in path if p != "keras_applications")
            elif level:
                return Unknown(f"'{'.' * level}{'.'.join(path)}' is a module cnnc cannot find next to "
                               "the script", self.span(node), name=path[-1])
        if path[0] == "keras_applications":
            path = ("keras", "applications") + path[1:]
        if path[0] in ("keras", "tensorflow", "tf_keras", "keras_core") or "keras" in path:
            p, note = canonical(path)
            if gone_in_keras3(path[:-1] if isinstance(node, ast.ImportFrom) else path):
                module = ".".join(path[:-1] if isinstance(node, ast.ImportFrom) else path)
                self.note_once(("gone", module), f"Keras 3 has no module '{module}' (a Keras 2 module): "
                               "this import fails", self.span(node),
                               "import the name from the top-level Keras module (keras.layers, keras.backend, "
                               "...); cnnc reads it so to check the rest", error=True)
            elif note:
                self.note_once(("path", path[:3]), note, self.span(node), *keras2.path_fix(path))
            if p[:2] == ("keras", "datasets") and len(p) == 3:
                return DatasetRef(p[2])
            tf = path[0] in ("tensorflow",)
            if p[:2] == ("keras", "backend") and len(p) == 3 and not tf and p[2] not in KERAS3_BACKEND:
                raise _Raise(ObjectVal("exception", {"type": "ImportError", "args": (
                    f"cannot import name '{p[2]}' from 'keras.backend' in Keras 3",)}), span=self.span(node))
            return KerasRef(p, tf)
        std = stdlib_value(self, path)
        if std is not None:
            return std
        return ModuleRef(path)

    # --- attributes ---------------------------------------------------------------------

    def attribute_other(self, obj, attr: str, node):
        span = self.span(node)
        if isinstance(obj, KerasRef):
            return self.keras_attribute(obj, attr, node)
        if isinstance(obj, ModuleRef):
            return self.module_attribute(obj, attr, node)
        if isinstance(obj, (DatasetRef, KerasObj)):
            return BoundMethod(obj, attr, span)
        if isinstance(obj, DataStream):
            return self.stream_attribute(obj, attr, node)
        if isinstance(obj, ArrayVal):
            return self.array_attribute(obj, attr, node)
        if isinstance(obj, ModelVal):
            return self.model_attribute_of(obj, attr, node)
        if isinstance(obj, TensorVal):
            if attr == "shape":
                return self.tensor_shape(obj, node)
            if attr == "get_shape" and not (self.groups or self.tracing):
                # Keras 3's symbolic tensors have no get_shape() (TensorFlow's eager ones do)
                from cnnc.frontends.python.values import ObjectVal
                raise _Raise(ObjectVal("exception", {"type": "AttributeError", "args": (
                    "'KerasTensor' object has no attribute 'get_shape' in Keras 3: write x.shape",)}),
                    span=span)
            if attr == "get_shape":
                return BoundMethod(obj, attr, span)
            if attr == "dtype":
                return "float32"
            if attr in ("ndim",):
                shape = self.tensor_shape(obj, node)
                return len(shape) if isinstance(shape, tuple) else shape
            return Unknown(f"`{self.snippet(node)}`: cnnc does not follow a tensor's {attr}", span)
        if isinstance(obj, LayerVal):
            return self.layer_attribute(obj, attr, node)
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)

    def keras_attribute(self, obj: KerasRef, attr: str, node):
        span = self.span(node)
        if obj.path[0] == "tensorflow":
            if attr == "newaxis":
                return None
            if attr in ("float32", "float64", "float16", "int32", "int64", "uint8", "bfloat16", "bool"):
                return attr
            if obj.path[1:] in ((), ("compat", "v1")) and attr == "flags" or obj.path[1:] == ("app",) and \
                    attr == "flags":
                return ModuleRef(("absl", "flags"))
            if obj.path == ("tensorflow",) and attr == "__version__":
                return "2.21.0"
        if obj.path == ("keras",) and attr == "__version__":
            return "3.15.1"
        tf = obj.tf or obj.path[0] in ("tensorflow",)
        if obj.path == ("keras", "backend") and not tf and attr not in KERAS3_BACKEND:
            raise _Raise(ObjectVal("exception", {"type": "AttributeError", "args": (
                f"module 'keras.backend' has no attribute '{attr}' in Keras 3 (tf.keras.backend "
                "or keras.ops has it)",)}), span=span)
        path, note = canonical(obj.path + (attr,))
        if note:
            self.note_once(("path", span.line, path[:2]), note, span, *keras2.path_fix(obj.path + (attr,)))
        if path[:2] == ("keras", "datasets") and len(path) == 3:
            return DatasetRef(path[2])
        return KerasRef(path, tf)

    def module_attribute(self, obj: ModuleRef, attr: str, node):
        path = obj.path + (attr,)
        if obj.path[0] == "numpy":
            if attr == "newaxis":
                return None
            if attr in ("float32", "float64", "uint8", "int32", "int64", "float16", "int8", "bool_"):
                return attr
            if attr in ("pi", "e", "inf"):
                import math
                return {"pi": math.pi, "e": math.e, "inf": math.inf}[attr]
        std = stdlib_value(self, path)
        if std is not None:
            return std
        return ModuleRef(path)

    def stream_attribute(self, obj: DataStream, attr: str, node):
        if attr in ("num_classes", "samples", "n", "class_indices", "class_names", "classes",
                    "filenames", "file_paths", "cardinality"):
            if attr in ("num_classes", "samples", "n"):
                return data_size(self.snippet(node), self.span(node))
            return Unknown(f"`{self.snippet(node)}` comes from the data", self.span(node), data=True,
                           name=self.snippet(node))
        if attr in ("batch_size",) and obj.batch is not None:
            return obj.batch
        if attr in ("image_shape", "target_size"):
            e = obj.element[0] if isinstance(obj.element, tuple) else obj.element
            if isinstance(e, ArrayVal):
                return tuple(e.shape) if attr == "image_shape" else tuple(e.shape[:2])
        return BoundMethod(obj, attr, self.span(node))

    def array_attribute(self, obj: ArrayVal, attr: str, node):
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
        if attr in ("values",):
            return obj
        return BoundMethod(obj, attr, self.span(node))

    def model_attribute_of(self, obj: ModelVal, attr: str, node):
        span = self.span(node)
        if attr in ("output", "outputs", "input", "inputs", "layers") and obj.kind in (
                "functional", "sequential"):
            return self.model_attribute(obj, attr, span)
        if attr == "name":
            name = obj.name if obj.name is not None else obj.keras_name
            return name if isinstance(name, str) else Unknown("the model's name", span)
        if attr in ("input_shape", "output_shape") and obj.kind in ("functional", "sequential"):
            t = self.model_attribute(obj, "input" if attr == "input_shape" else "output", span)
            return self.tensor_shape(t, node) if isinstance(t, TensorVal) else Unknown(
                f"`{self.snippet(node)}` is not known", span)
        if attr in _SEQUENTIAL_METHODS:
            return BoundMethod(obj, attr, span)
        if attr in ("trainable", "built", "optimizer", "history", "stop_training"):
            return Unknown(f"`{self.snippet(node)}`", span)
        if attr == "layers" and obj.kind == "subclassed" and obj.instance is not None:
            return [v for v in obj.instance.attrs.values() if isinstance(v, (LayerVal, ModelVal))]
        if obj.instance is not None:
            return self.instance_attribute(obj.instance, attr, node)
        return Unknown(f"`{self.snippet(node)}`: cnnc does not follow a model's {attr}", span)

    def layer_attribute(self, obj: LayerVal, attr: str, node):
        span = self.span(node)
        if attr == "output":
            return self.layer_output(obj, span)
        if attr == "name":
            from cnnc.frontends.python.emit import _given_name
            name = _given_name(obj)
            return name if name is not None else Unknown("the layer's name", span)
        if attr in ("trainable",):
            return not obj.frozen
        if attr in ("input", "output_shape", "input_shape"):
            out = self.layer_output(obj, span) if attr != "input" else None
            if attr == "output_shape" and isinstance(out, TensorVal):
                return self.tensor_shape(out, node)
        if obj.custom is not None:
            return self.instance_attribute(obj.custom, attr, node)
        return Unknown(f"`{self.snippet(node)}`: cnnc does not follow a layer's {attr}", span)

    def set_attribute_other(self, obj, attr: str, value, node) -> None:
        if isinstance(obj, (ModelVal, LayerVal)) and attr == "trainable" and value in (True, False):
            self.set_trainable(obj, value)
            self.touched = True
        elif isinstance(obj, ModelVal) and obj.instance is not None:
            obj.instance.attrs[attr] = value
        elif isinstance(obj, LayerVal) and obj.custom is not None:
            obj.custom.attrs[attr] = value

    # --- values Python asks about ------------------------------------------------------

    def truth_other(self, v) -> bool | None:
        if isinstance(v, (ArrayVal, TensorVal)):
            return None
        return True

    def iterable_other(self, v, node):
        if isinstance(v, ArrayVal):
            return Unknown("iterating over an array's values", self.span(node), data=True)
        if isinstance(v, DataStream):
            return tfdata.batches(v)
        if isinstance(v, TensorVal):
            return Unknown(f"`{self.snippet(node)}`: iterating over a tensor", self.span(node))
        if isinstance(v, ModelVal) and v.kind == "sequential":
            return [i for i in v.items if isinstance(i, (LayerVal, ModelVal))]
        return super().iterable_other(v, node)

    def len_other(self, v, node):
        if isinstance(v, ArrayVal):
            return v.shape[0] if v.shape else Unknown("len() of a scalar", self.span(node))
        if isinstance(v, DataStream):
            return data_size(self.snippet(node), self.span(node))
        if isinstance(v, ModelVal) and v.kind == "sequential":
            return len([i for i in v.items if isinstance(i, (LayerVal, ModelVal))])
        return super().len_other(v, node)

    def number_other(self, name: str, v, node):
        if isinstance(v, ArrayVal) and name in ("int", "float"):
            return Unknown(f"`{self.snippet(node)}` depends on the data's values", self.span(node), data=True)
        return super().number_other(name, v, node)

    def next_other(self, v, node):
        if isinstance(v, DataStream):
            return tfdata.batches(v)[0]
        return super().next_other(v, node)

    def isinstance_other(self, v, t) -> bool | None:
        if isinstance(t, KerasRef):
            name = t.last
            if isinstance(v, LayerVal):
                return name in ("Layer", v.cls) or (name == "Model" and False)
            if isinstance(v, ModelVal):
                return name in ("Model", "Layer", "Functional") or (name == "Sequential" and v.kind == "sequential")
            if isinstance(v, TensorVal):
                return name in ("Tensor", "KerasTensor")
            if isinstance(v, (int, float, str, tuple, list, dict, type(None))):
                return False
            return None
        if isinstance(t, ModuleRef) and isinstance(v, (int, float, str, tuple, list, dict, type(None))):
            if t.path[0] == "numpy":
                if t.path[-1] in ("integer", "int64", "int32") and isinstance(v, int):
                    return False
                return False
            return None
        if isinstance(v, (LayerVal, ModelVal, TensorVal, KerasObj)) and isinstance(t, (Builtin, ClassVal)):
            if isinstance(t, ClassVal) and isinstance(v, LayerVal) and v.custom is not None:
                return t is v.custom.cls or t in v.custom.cls.bases
            if isinstance(t, ClassVal) and isinstance(v, ModelVal) and v.instance is not None:
                return t is v.instance.cls or t in v.instance.cls.bases
            return False
        return None

    def type_other(self, v, node):
        if isinstance(v, LayerVal):
            if v.custom is not None:
                return v.custom.cls
            return KerasRef(("keras", "layers", v.cls))
        if isinstance(v, ModelVal):
            if v.instance is not None:
                return v.instance.cls
            return KerasRef(("keras", "Sequential" if v.kind == "sequential" else "Model"))
        return super().type_other(v, node)

    def str_of_object(self, x, node) -> str | None:
        if isinstance(x, KerasRef):
            return f"<class '{'.'.join(x.path)}'>"
        return super().str_of_object(x, node)

    def equal_other(self, a, b, node):
        if type(a) is type(b) and isinstance(a, (KerasRef, ModuleRef, Builtin, DatasetRef, TensorVal)):
            return a == b
        if isinstance(a, (ArrayVal, TensorVal)) or isinstance(b, (ArrayVal, TensorVal)):
            return Unknown(f"`{self.snippet(node)}` compares values element by element", self.span(node))
        return super().equal_other(a, b, node)

    def copy_other(self, v, node, deep: bool):
        if isinstance(v, (ArrayVal, KerasRef, ModuleRef, Builtin, DataStream)):
            return v
        return super().copy_other(v, node, deep)

    def poison_call(self, obj, method: str, why: str, span: Span) -> None:
        if isinstance(obj, ModelVal) and method in ("add", "pop"):
            obj.problems.append((f"the layers of this model are not known: {why}", span, ()))

    def unary_other(self, node, v):
        if isinstance(v, TensorVal) and isinstance(node.op, ast.USub):
            return self.tensor_op("neg", [(v, node.operand)], node)
        if isinstance(v, TensorVal) and isinstance(node.op, ast.UAdd):
            return v
        if isinstance(v, ArrayVal):
            return v
        return super().unary_other(node, v)

    def binop_other(self, op, a, b, node, left, right):
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
        if (isinstance(a, ArrayVal) or isinstance(b, ArrayVal)) and not isinstance(a, Unknown) \
                and not isinstance(b, Unknown):
            return self.array_arith(a, b, node)
        return None

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

    def subscript_other(self, obj, key, node):
        span = self.span(node)
        if isinstance(obj, ArrayVal):
            return datasets.index(obj, key, span)
        if isinstance(obj, TensorVal):
            return Unknown(f"`{self.snippet(node)}`: slicing a tensor is not a Keras layer cnnc follows",
                           span)
        if isinstance(obj, Builtin) and (obj.name.startswith("typing.") or obj.name in (
                "list", "tuple", "dict", "set", "type")):
            return obj                       # List[int], tuple[int, ...]: annotations
        if isinstance(obj, DataStream):
            return Unknown(f"`{self.snippet(node)}`", span, data=True)
        if isinstance(obj, ObjectVal) and obj.kind == "environ":
            return Unknown("an environment variable", span, name=self.snippet(node))
        return super().subscript_other(obj, key, node)

    # --- calls ------------------------------------------------------------------------

    def call(self, func, args: list[ArgVal], node, scope):
        if self.groups or self.tracing:
            applied = self.activation_call(func, args, node) or self.tensor_function(func, args, node)
            if applied is not None:
                return applied
        return super().call(func, args, node, scope)

    def call_other(self, func, args: list[ArgVal], node, scope):
        span = self.span(node)
        if isinstance(func, KerasRef):
            return self.keras_call(func, args, node)
        if isinstance(func, LayerVal):
            return self.apply_layer(func, args, node)
        if isinstance(func, ModelVal):
            return self.call_model(func, args, node)
        if isinstance(func, ModuleRef):
            return self.module_call(func, args, node)
        if isinstance(func, DatasetRef):
            return Unknown("a dataset module is not callable", span)
        if any(isinstance(a.value, TensorVal) for a in args) and not isinstance(func, Unknown):
            return Unknown(f"`{self.snippet(node.func)}(...)` on a tensor is not a Keras layer cnnc "
                           "can follow", span)
        if isinstance(func, Unknown) and func.data and isinstance(getattr(node, "func", None), ast.Attribute) \
                and node.func.attr in _COUNTS:
            return data_size(self.snippet(node), span)    # train["label"].nunique()
        return super().call_other(func, args, node, scope)

    def call_model(self, func: ModelVal, args: list[ArgVal], node):
        span = self.span(node)
        first = args[0].value if args else None
        if isinstance(first, ArrayVal):
            self.touched = True        # model(x_train[:1]): Keras builds it on this shape
            if func.data_shape is None and func.build_shape is None and len(first.shape) >= 2:
                func.data_shape, func.data_span = tuple(first.shape[1:]), args[0].span
            return Unknown("the model's output on data", span)
        if isinstance(first, DataStream) and tfdata.sample_shape(first):
            self.touched = True
            if func.data_shape is None:
                func.data_shape, func.data_span = tfdata.sample_shape(first), args[0].span
            return Unknown("the model's output on data", span)
        self.touched = True
        func.used_as_layer = True
        return self.apply_model(func, args, node)

    def method_other(self, m: BoundMethod, args, node, scope):
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
        if isinstance(obj, DataStream):
            return tfdata.method(obj, name, args, span)
        if isinstance(obj, KerasObj):
            return self.keras_object_method(obj, name, args, node)
        if isinstance(obj, TensorVal) and name == "get_shape":
            return self.tensor_shape(obj, node)
        return super().method_other(m, args, node, scope)

    def keras_object_method(self, obj: KerasObj, name: str, args: list[ArgVal], node):
        """ImageDataGenerator's flows, an optimizer's or a schedule's methods."""
        span = self.span(node)
        if obj.path[-1] == "ImageDataGenerator":
            if name in ("flow_from_directory", "flow_from_dataframe"):
                self.touched = True
                return tfdata.flow_from_directory(args, span, name == "flow_from_dataframe")
            if name == "flow":
                self.touched = True
                return tfdata.flow(args, span)
            if name in ("fit", "standardize", "random_transform"):
                return None
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
        if name in ("copy", "to_numpy", "numpy"):
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
        if ref.path[0] == "numpy" and ref.path[-1] in ("array", "asarray") and vals and \
                isinstance(vals[0], (list, tuple)):
            made = datasets.literal_array(vals[0], kws.get("dtype") if isinstance(kws.get("dtype"), str) else None)
            if made is not None:
                return made
        if ref.path[0] == "numpy" and ref.path[-1] == "concatenate" and vals:
            return datasets.concatenate(vals[0], vals[1] if len(vals) > 1 else kws.get("axis", 0), span)
        if ref.path[0] == "numpy":
            made = datasets.made_array(ref.path[-1], args, span) or datasets.elementwise(ref.path[-1], args)
            if made is not None:
                return made
            scalar = self.numpy_scalar(ref.path[-1], vals, node)
            if scalar is not None:
                return scalar
        if ref.path[-1] in ("ImageDataGenerator",):
            return KerasObj(("keras", "preprocessing", "image", "ImageDataGenerator"), args, span)
        if any(isinstance(a.value, TensorVal) for a in args):
            return Unknown(f"`{self.snippet(node.func)}(...)` on a tensor is not a Keras layer cnnc "
                           "can follow", span)
        if ref.path[0] in ("pandas", "cv2", "PIL", "sklearn", "scipy", "h5py", "skimage") or (
                ref.path[0] == "numpy" and ref.path[-1] in ("load", "loadtxt", "genfromtxt", "fromfile")):
            return Unknown(f"`{self.snippet(node)}` reads data cnnc does not load", span, data=True,
                           name=self.snippet(node))
        # a function of the data (np.unique(y_train), pd.read_csv(...).nunique()) is data too
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span,
                       data=any(isinstance(v, ArrayVal) or (isinstance(v, Unknown) and v.data)
                                for v in [*vals, *kws.values()]))

    def numpy_scalar(self, fn: str, vals: list, node):
        """np.prod((28, 28)), np.ceil(3.5), np.int32(8): NumPy's functions on plain numbers."""
        import math
        if not vals or not all(isinstance(v, (int, float, tuple, list)) and not isinstance(v, bool)
                               for v in vals[:1]):
            return None
        v = vals[0]
        if fn in ("prod", "product", "sum") and isinstance(v, (tuple, list)) and all(
                isinstance(x, (int, float)) for x in v):
            n = 1 if fn != "sum" else 0
            for x in v:
                n = n * x if fn != "sum" else n + x
            return n if abs(n) <= MAX_INT else Unknown("a number too large", self.span(node))
        if isinstance(v, (tuple, list)):
            return None
        table = {"ceil": math.ceil, "floor": math.floor, "sqrt": math.sqrt, "log2": math.log2,
                 "log": math.log, "exp": math.exp, "abs": abs, "round": round,
                 "int32": int, "int64": int, "int": int, "float32": float, "float64": float,
                 "float": float, "int8": int, "uint8": int}
        f = table.get(fn)
        if f is None:
            return None
        try:
            out = f(v)
        except (ValueError, OverflowError):
            return Unknown(f"`{self.snippet(node)}` fails in Python", self.span(node))
        if fn in ("ceil", "floor"):
            return float(out)                 # NumPy's ceil and floor give floats
        return out

    # --- Keras ---------------------------------------------------------------------------

    def keras_call(self, ref: KerasRef, args: list[ArgVal], node):
        path, last, span = ref.path, ref.last, self.span(node)
        parent = path[-2] if len(path) > 1 else ""
        if last in ("constant", "convert_to_tensor", "array") and args and isinstance(args[0].value, (list, tuple)):
            made = datasets.literal_array(args[0].value)
            if made is not None:
                return made
        if path[0] == "tensorflow" or parent in ("ops", "random"):
            made = datasets.made_array(last, args, span) or datasets.elementwise(last, args)
            if made is not None:
                self.touched = True
                return made
        if last == "shape" and parent in ("tensorflow", "ops", "backend") and args and \
                isinstance(args[0].value, TensorVal):
            from cnnc.frontends.python.classes import BATCH
            shape = self.tensor_shape(args[0].value, node)     # tf.shape(x): the batch size unknown
            if isinstance(shape, tuple):
                return (Unknown(BATCH, span, name=BATCH),) + tuple(shape[1:])
            return shape
        if last in _KERAS_HELPERS or (last == "Input" and any(a.keyword == "tensor" for a in args)):
            helped = self.keras2_helper(last, args, node)
            if helped is not _NO_HELP:
                return helped
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
        if last == "ImageDataGenerator":
            return KerasObj(("keras", "preprocessing", "image", "ImageDataGenerator"), args, span)
        if path[0] != "keras":
            if last in ("random_normal_initializer", "truncated_normal_initializer",
                        "glorot_uniform_initializer", "glorot_normal_initializer",
                        "random_uniform_initializer", "zeros_initializer", "ones_initializer",
                        "constant_initializer", "variance_scaling_initializer", "he_normal",
                        "orthogonal_initializer"):
                return KerasObj(("keras", "initializers", keras2.TF_INITIALIZERS.get(last, last)),
                                keras2.tf_initializer_args(last, args), span)
            if any(isinstance(a.value, TensorVal) for a in args):
                return Unknown(f"`{self.snippet(node.func)}(...)` on a tensor is not a Keras layer "
                               "cnnc can follow", span)
            return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)
        self.touched = True
        if last == "Sequential":
            self.reached.add(span.line)
            return self.new_sequential(args, node)
        if last in ("Model", "Functional"):
            self.reached.add(span.line)
            return self.new_functional(args, node)
        if last == "Input" or (last == "InputLayer"):
            return self.new_input(last, args, node)
        if parent == "layers" and last in MERGE_FUNCTIONS:
            return self.merge_function(last, args, node)
        if last in LAYER_NAMES or (parent == "layers" and last[:1].isupper()):
            return self.new_layer(last, args, node)
        if parent == "applications" or "applications" in path:
            self.reached.add(span.line)
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
        if last in ("set_image_data_format", "set_image_dim_ordering"):
            v = args[0].value if args else None
            if v not in ("channels_last", "tf"):
                self.rep.error(f"cnnc computes channels_last (NHWC), Keras's default; "
                               f"{last}({shown(v)}) makes every layer channels_first", span,
                               "remove this line: Keras 3 and cnnc default to channels_last")
            return None
        if last in ("clear_session", "set_random_seed", "set_floatx", "set_learning_phase", "seed",
                    "set_seed", "plot_model", "set_global_policy", "enable_unsafe_deserialization"):
            return None
        if last in ("floatx",):
            return "float32"
        if last == "backend" and parent == "backend":
            return "tensorflow"
        if last in ("epsilon",) and parent == "backend":
            return 1e-7
        if parent in OBJECT_MODULES or last in ("l1", "l2", "l1_l2", "L1", "L2", "L1L2"):
            if parent == "optimizers":
                keras2.translate_optimizer(last, args, self.rep)
            return KerasObj(path, args, span)
        if parent in ("callbacks",) or last in ("EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau",
                                                "TensorBoard", "CSVLogger", "LearningRateScheduler"):
            return KerasObj(path, args, span)
        if parent in ("ops", "backend", "nn") and any(isinstance(a.value, TensorVal) for a in args):
            return Unknown(f"`{self.snippet(node.func)}(...)` on a tensor is not a Keras layer cnnc "
                           "can follow", span)
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)

    def keras2_helper(self, last: str, args: list[ArgVal], node):
        """Keras 2's backend and applications helpers, with Keras's semantics."""
        span = self.span(node)
        fix = keras2.DROPPED_HELPERS.get(last)
        if fix is not None:
            self.note_once(("helper", last), f"`{last}` is Keras 2's; Keras 3 dropped it", span,
                           f"{fix}; cnnc follows it with Keras's meaning")
        vals = [a.value for a in args if a.keyword is None]
        kws = {a.keyword: a.value for a in args if a.keyword is not None}
        if last == "image_data_format":
            return "channels_last"
        if last == "image_dim_ordering":
            return "tf"
        if last == "int_shape":
            t = vals[0] if vals else kws.get("x")
            if isinstance(t, TensorVal):
                return self.tensor_shape(t, node)
            if isinstance(t, ArrayVal):
                return t.shape
            return self.as_unknown(t, node)
        if last == "is_keras_tensor":
            t = vals[0] if vals else kws.get("x")
            return isinstance(t, TensorVal) if known(t) else t
        if last == "get_source_inputs":
            t = vals[0] if vals else kws.get("tensor")
            if isinstance(t, TensorVal):
                return [TensorVal(k) for k in self.source_inputs(t.node)]
            return self.as_unknown(t, node)
        if last in ("_obtain_input_shape", "obtain_input_shape"):
            return keras2.obtain_input_shape(args, span, self.rep)
        if last == "correct_pad":
            return self.correct_pad(vals, kws, node)
        if last == "get_submodules_from_kwargs":
            return (KerasRef(("keras", "backend")), KerasRef(("keras", "layers")),
                    KerasRef(("keras", "models")), KerasRef(("keras", "utils")))
        if last == "Input":
            t = kws.get("tensor")
            if isinstance(t, TensorVal):
                return t                   # Keras builds on the tensor given
            return _NO_HELP
        return _NO_HELP

    def correct_pad(self, vals: list, kws: dict, node):
        """keras.applications.imagenet_utils.correct_pad (Keras 2 took the backend first)."""
        rest = [v for v in vals if not isinstance(v, KerasRef)]
        t = rest[0] if rest else kws.get("inputs")
        k = rest[1] if len(rest) > 1 else kws.get("kernel_size")
        if not isinstance(t, TensorVal) or not (is_int(k) or isinstance(k, tuple)):
            return self.as_unknown(t if isinstance(t, Unknown) else k, node)
        shape = self.tensor_shape(t, node)
        if not isinstance(shape, tuple):
            return shape
        k = (k, k) if is_int(k) else tuple(k)
        size = shape[1:3]
        adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)
        correct = (k[0] // 2, k[1] // 2)
        return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))

    def source_inputs(self, k: int) -> list[int]:
        seen, out, stack = set(), [], [k]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if self.nodes[n].kind == "input":
                out.append(n)
            stack.extend(reversed(self.nodes[n].inputs))
        return sorted(out)

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
        # a given name takes no number; name=None is Keras's automatic name
        layer.args = [a for a in layer.args if not (a.keyword == "name" and a.value is None)]
        if not any(a.keyword == "name" for a in layer.args):
            layer.keras_name = self.keras_name(layer.cls)
        if cls in KERAS1_REMOVED:
            layer.unsupported = KERAS1_REMOVED[cls]
        elif cls == "Lambda":
            fn = next((a.value for a in args if a.keyword in (None, "function")), None)
            if isinstance(fn, (FuncVal, PartialVal, KerasRef, KerasObj, Builtin)):
                layer.fn = fn             # followed on its tensor (apply_lambda)
            else:
                layer.unsupported = ("Lambda layers run Python code that cnnc follows only when it "
                                     "is a function of the script or a Keras activation")
        elif cls == "Activation":
            fn = next((a.value for a in args if a.keyword in (None, "activation")), None)
            if isinstance(fn, (FuncVal, PartialVal)):
                layer.fn, layer.shown_cls = fn, "Activation"   # the script's own activation
        return layer

    def new_input(self, cls: str, args: list[ArgVal], node):
        span = self.span(node)
        args = keras2.translate_input(cls, args, self.rep)
        named_ = any(a.keyword == "name" for a in args)
        self.add_node(TNode("input", span, input_args=args, input_cls="Input",
                            keras_name=None if named_ else self.keras_name("InputLayer")))
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
        extra = [a for a in args if a is not given and a.keyword not in ("training", "mask")]
        if given is None:
            return Unknown(f"{layer.cls} is called without an input tensor", span)
        if isinstance(given.value, ArrayVal):
            return self.eager_apply(layer, given, node)
        if layer.custom is not None:
            return self.apply_custom(layer, given, extra, node)
        if layer.fn is not None:
            return self.apply_lambda(layer, given, node)
        if layer.uses:
            layer = self.weightless_copy(layer) or layer
        v = given.value
        elts = getattr(node.args[0], "elts", None) if getattr(node, "args", None) and given is args[0] \
            and given.keyword is None else None
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
            return Unknown(f"{layer.cls} is called on `{self.snippet(node.args[0]) if getattr(node, 'args', None) else '...'}`"
                           f", which is {describe(v)}, not a tensor cnnc knows", given.span)
        layer.uses += 1
        t = TNode("apply", span, layer=layer, inputs=inputs, listed=listed, operand_spans=spans)
        t.extra = extra
        self.add_node(t)
        return TensorVal(len(self.nodes) - 1)

    def eager_apply(self, layer: LayerVal, given: ArgVal, node):
        """A layer called on an array (`for layer in net.layers: X = layer(X)`): Keras runs
        it eagerly and builds it on that shape. The first layer of a Sequential whose input
        shape is not given takes the model's from it; the result is an array of the output
        shape (worked out on a probe that leaves no trace)."""
        arr: ArrayVal = given.value
        if len(arr.shape) < 1:
            return Unknown("a layer called on a scalar", self.span(node))
        for m in self.models:
            if m.kind == "sequential" and m.items and m.items[0] is layer and m.build_shape is None \
                    and m.data_shape is None and self.first_layer_shape(layer, strip=False) is None:
                m.data_shape, m.data_span = tuple(arr.shape[1:]), given.span
        mark = (len(self.nodes), dict(self.name_counts), layer.uses, dict(self.hidden_counts), self.layer_seq)
        cache = getattr(self, "_shapes", {})
        try:
            probe = TNode("input", self.span(node), input_args=[ArgVal("shape", tuple(arr.shape[1:]), given.span)],
                          keras_name="probe")
            self.add_node(probe)
            out = self.apply_layer(layer, [ArgVal(None, TensorVal(len(self.nodes) - 1), given.span)], node)
            shape = self.tensor_shape(out, node) if isinstance(out, TensorVal) else out
        finally:
            del self.nodes[mark[0]:]
            self.name_counts, layer.uses, self.hidden_counts, self.layer_seq = mark[1], mark[2], mark[3], mark[4]
            for k in [k for k in cache if k >= mark[0]]:
                del cache[k]
        if not isinstance(shape, tuple):
            return shape if isinstance(shape, Unknown) else Unknown("the layer's output", self.span(node))
        return ArrayVal((arr.shape[0],) + tuple(shape[1:]))

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
        known_shape = m.build_shape is not None or (
            isinstance(first, TensorVal) and self.nodes[first.node].kind == "input") or (
            isinstance(first, LayerVal) and any(a.keyword in ("input_shape", "input_dim", "batch_input_shape",
                                                              "batch_shape") for a in first.args))
        layers = len(items) - (1 if isinstance(first, TensorVal) else 0)
        if known_shape and layers > 0:
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
            return self.model_fit(m, name, args, node)
        if name == "build":
            shape = args[0].value if args else next((a.value for a in args if a.keyword == "input_shape"), None)
            if args and args[0].keyword == "input_shape":
                shape = args[0].value
            if m.build_shape is None or m.kind != "subclassed":
                m.build_shape, m.build_span = shape, args[0].span if args else span
            if m.kind == "sequential":
                self.seq_rebuild(m)
            return None
        if name in ("summary", "save", "save_weights", "load_weights", "reset_states"):
            return None
        if name == "get_layer":
            return self.get_layer(m, args, span)
        if name == "call" and m.instance is not None:
            return self.instance_method(m.instance, name, args, node)
        if name in ("predict", "predict_on_batch") and args and isinstance(args[0].value, ArrayVal):
            return self.call_model(m, args[:1], node)
        return Unknown(f"`{self.snippet(node)}`: the result of model.{name}() is not known without "
                       "running the model", span)

    def model_fit(self, m: ModelVal, name: str, args: list[ArgVal], node):
        span = self.span(node)
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
                (a.value for a in args if a.keyword in ("x", "generator")), None)
            if m.data_shape is None and m.build_shape is None:
                if isinstance(x, ArrayVal) and len(x.shape) >= 2:
                    m.data_shape, m.data_span = tuple(x.shape[1:]), args[0].span
                elif isinstance(x, DataStream) and tfdata.sample_shape(x):
                    m.data_shape, m.data_span = tfdata.sample_shape(x), args[0].span
                elif isinstance(x, (tuple, list)) and x and isinstance(x[0], ArrayVal) and len(x[0].shape) >= 2:
                    m.data_shape, m.data_span = tuple(x[0].shape[1:]), args[0].span
        return Unknown("the training history", span)

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
        for k, known_shape in cached.items():
            if isinstance(known_shape, tuple) and k != t.node and k < len(nodes):
                nodes[k] = TNode("input", nodes[k].span,
                                 input_args=[ArgVal("shape", tuple(known_shape[1:]), nodes[k].span)])
        out = emit(probe, nodes, None, Reporter(self.smap.main.path))
        result: tuple | Unknown
        if out.problems:
            result = Unknown(f"`{self.snippet(node)}`: {out.problems[0][0]}", span)
        else:
            rep = Reporter(self.smap.main.path)
            ir = resolve(out.statements, rep, self.smap.main.path)
            analysis = infer(ir, rep)
            shape = None
            if not rep.has_errors:
                target = ir.outputs[0] if ir.outputs else None
                for info in analysis.infos:
                    if info.layer.name == target and info.output is not None:
                        shape = info.output_shape     # Keras's view: None where a size is open
                for inp in ir.inputs:
                    if inp.name == target:
                        shape = inp.shape
            first = next((d for d in rep.diagnostics if d.is_error), None)
            if first is not None:           # the model's own errors: said where they are
                for d in rep.diagnostics:
                    if d.is_error:
                        self.note_once(("probe", d.message, d.span), d.message, d.span, *d.notes, error=True)
            result = (None,) + tuple(shape) if shape is not None else Unknown(
                f"`{self.snippet(node)}`: the layers before it do not check, so its shape is unknown"
                + (f" ({self.where(first.span.line)}: {first.message})" if first and first.span else ""),
                span)
        cached[t.node] = result
        return result


_NO_HELP = object()
