"""The script's own classes: subclassed `keras.layers.Layer`s and `keras.Model`s.

Keras builds such a class by running its `__init__` (which creates Keras layers and
names them, in order, with the session's counters) and, when it first meets a
tensor, its `build` and `call`. The evaluator does the same with its values:
`__init__` runs with an `InstanceVal` as `self`; `call` runs on tensors, and the
nodes it makes are marked with the custom layer's row, so that the summary shows
one row per custom layer, as Keras does, while every phase runs its inner layers.

A subclassed model is traced once the whole script is read, on the input shape
that `build()`, its first `fit()` or `--input-shape` gives; so is a Sequential
that holds a custom layer (its chain goes through a graph).
"""

from __future__ import annotations

import ast

from cnnc.analysis import kinds
from cnnc.frontends.python.keras_api import LAYER_NAMES
from cnnc.frontends.python.limits import _Raise
from cnnc.frontends.python.values import (
    ArgVal,
    BoundMethod,
    ClassMethod,
    ClassVal,
    FuncVal,
    InstanceVal,
    KerasObj,
    KerasRef,
    LayerVal,
    ModelVal,
    StaticMethod,
    SuperRef,
    TensorVal,
    TNode,
    Unknown,
    shown,
)
from cnnc.support.diagnostics import Span

# Layers without weights: a subclassed model may call one several times (`self.pool`),
# which Keras allows; cnnc runs a copy per call under the same summary row.
WEIGHTLESS = frozenset({
    "activation", "avg_pool", "cropping", "dropout", "elu", "flatten", "global_avg_pool",
    "global_max_pool", "identity", "leaky_relu", "max_pool", "merge", "concatenate", "relu",
    "rescaling", "reshape", "resizing", "softmax", "spatial_dropout", "up_sampling",
    "zero_padding", "augment", "noise"})

# Activation functions a call() may apply to a tensor: keras.activations.X, tf.nn.X
ACTIVATION_FUNCTIONS = frozenset({
    "relu", "relu6", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "swish", "silu",
    "softplus", "softsign", "exponential", "hard_sigmoid", "hard_silu", "hard_swish",
    "leaky_relu", "linear", "mish", "log_softmax"})

_SHAPE_ARGS = ("input_shape", "input_dim", "batch_input_shape", "batch_shape")
# what keras.Model gives a subclass: self.compile(...), self.summary() in its own methods
_MODEL_METHODS = frozenset({"compile", "fit", "build", "summary", "save", "save_weights",
                            "load_weights", "predict", "evaluate", "get_layer"})


def _accepted(f, extra: list[ArgVal]) -> list[ArgVal]:
    """The extra arguments of a layer call that Keras passes on to call(): `training`
    and `mask` only when call() takes them."""
    a = f.node.args
    names = {p.arg for p in a.args + a.kwonlyargs}
    return [x for x in extra if x.keyword not in ("training", "mask") or x.keyword in names
            or a.kwarg is not None]


BATCH = "the batch size"


def _activation_layer(act: str, rest: list[ArgVal], span) -> tuple[str, list[ArgVal]] | None:
    """The Keras layer an activation function with arguments is (relu with max_value is
    ReLU(max_value=...), softmax with axis is Softmax(axis=...)); None: cnnc does not
    follow those arguments."""
    kws = {a.keyword: a.value for a in rest if a.keyword is not None}
    if any(a.keyword is None for a in rest) or not all(
            v is None or isinstance(v, (int, float)) and not isinstance(v, bool) for v in kws.values()):
        return None
    if act in ("relu", "relu6") and set(kws) <= {"max_value", "negative_slope", "alpha", "threshold"}:
        given = [ArgVal(k if k != "alpha" else "negative_slope", v, span) for k, v in kws.items()
                 if v is not None]
        if act == "relu6":
            given.append(ArgVal("max_value", 6.0, span))
        return "ReLU", given
    if act == "leaky_relu" and set(kws) <= {"alpha", "negative_slope"}:
        return "LeakyReLU", [ArgVal("negative_slope", v, span) for v in kws.values() if v is not None]
    if act in ("softmax", "log_softmax") and set(kws) <= {"axis"}:
        axis = kws.get("axis", -1)
        if axis == -1:
            return "Activation", [ArgVal(None, act, span)]
        return ("Softmax", [ArgVal("axis", axis, span)]) if act == "softmax" else None
    return None


class ClassesMixin:
    """Evaluator methods for the script's classes (mixed into Evaluator)."""

    # --- definitions --------------------------------------------------------------

    def new_class(self, node: ast.ClassDef, bases: list, scope) -> ClassVal:
        """The class's kind from its bases: a Keras Layer or Model subclass, a subclass of
        a concrete Keras layer, or a plain class (the interpreter's)."""
        cls = super().new_class(node, bases, scope)
        for v in bases:
            if isinstance(v, KerasRef) and v.last in ("Model", "Functional", "Sequential"):
                cls.kind = "model" if v.last != "Sequential" else "sequential_subclass"
            elif isinstance(v, KerasRef) and v.last == "Layer":
                cls.kind = "layer"
            elif isinstance(v, KerasRef) and v.last in LAYER_NAMES:
                cls.kind = "keras_layer_subclass"
        return cls

    def class_method(self, cls: ClassVal, name: str):
        """The class's own (or inherited) function `name`, or None."""
        f = self.class_attr(cls, name)
        if isinstance(f, (StaticMethod, ClassMethod)):
            f = f.func
        return f if isinstance(f, FuncVal) else None

    def class_attribute_other(self, cls: ClassVal, attr: str, node):
        return Unknown(f"'{cls.name}.{attr}' is not known", self.span(node))

    # --- instances ----------------------------------------------------------------

    def instantiate(self, cls: ClassVal, args: list[ArgVal], node):
        span = self.span(node)
        if cls.kind in ("keras_layer_subclass", "sequential_subclass"):
            self.touched = True
            what = "a Keras layer class" if cls.kind == "keras_layer_subclass" else "Sequential"
            return LayerVal(cls.name, args, span, self.span(node.func), written=(cls.name,),
                            unsupported=f"'{cls.name}' subclasses {what} (class at "
                            f"{self.where(cls.span.line)}); cnnc follows subclasses of "
                            "keras.layers.Layer and keras.Model built from Keras layers")
        if cls.kind not in ("layer", "model"):
            return super().instantiate(cls, args, node)
        inst = InstanceVal(cls)
        if cls.kind == "layer":
            self.touched = True
            given = next((a.value for a in args if a.keyword == "name"), None)
            layer = LayerVal(cls.name, [], span, self.span(node.func), written=(cls.name,),
                             custom=inst, seq=self.next_seq(),
                             keras_name=given if isinstance(given, str) else None)
            inst.layer = layer
            self.run_init(inst, args, node)
            if layer.keras_name is None:       # unless super().__init__(name=...) named it
                layer.keras_name = self.keras_name(cls.name)
            if self.class_method(cls, "call") is None and layer.unsupported is None:
                layer.unsupported = (f"'{cls.name}' (class at {self.where(cls.span.line)}) "
                                     "has no call() cnnc can follow")
            return layer
        self.touched = True
        io = [a.value for a in args if a.keyword in (None, "inputs", "outputs")][:2]
        if self.class_method(cls, "call") is None and len(io) == 2 and all(
                isinstance(v, TensorVal) or (isinstance(v, (list, tuple, dict)) and v) for v in io):
            # CustomModel(inputs, outputs): a functional model of that class (train_step)
            return self.new_functional(args, node, keras_name=cls.name)
        given = next((a.value for a in args if a.keyword == "name"), None)
        m = ModelVal("subclassed", span, name=given if isinstance(given, str) else None,
                     instance=inst)
        self.reached.add(span.line)
        inst.model = m
        self.models.append(m)
        self.run_init(inst, args, node)
        if m.name is None and m.keras_name is None:     # super().__init__(name=...) names it
            m.keras_name = self.keras_name(cls.name)
        if m.kind == "subclassed" and m.inputs is not None and m.outputs is not None:
            m.kind = "functional"          # super().__init__(inputs, outputs): a functional model
        return m

    def instance_method(self, inst: InstanceVal, name: str, args: list[ArgVal], node):
        """`self.method(...)`: the class's own, or what Keras's Layer gives it."""
        f = self.class_method(inst.cls, name)
        if f is not None:
            return self.call_function(f, args, node, self_obj=inst)
        return self.instance_method_other(inst, name, args, node)

    def instance_attribute_other(self, obj: InstanceVal, attr: str, node):
        if obj.cls.kind not in ("layer", "model"):
            return None
        span = self.span(node)
        owner = obj.layer or obj.model
        if attr.startswith("add_") or attr in _MODEL_METHODS:
            return BoundMethod(obj, attr, span)
        if attr == "name":
            name = getattr(owner, "keras_name", None) if isinstance(owner, LayerVal) else (
                owner.name if owner is not None and owner.name is not None else getattr(owner, "keras_name", None))
            return name if isinstance(name, str) else Unknown("the name", span)
        if attr in ("built", "trainable"):
            return attr == "trainable"
        if attr == "layers" and obj.model is not None:
            return [v for v in obj.attrs.values() if isinstance(v, (LayerVal, ModelVal))]
        if attr in ("dtype", "compute_dtype", "variable_dtype"):
            return "float32"
        return None

    def instance_method_other(self, inst: InstanceVal, name: str, args: list[ArgVal], node):
        span = self.span(node)
        if inst.model is not None and name in _MODEL_METHODS:
            return self.model_method(inst.model, name, args, node)
        if name == "add_loss" and inst.cls.kind in ("layer", "model"):
            self.note_once(("add_loss", inst.cls.name), f"'{inst.cls.name}' adds a loss of its own "
                           "(add_loss): shapes are exact, but cnnc's training leaves that loss out",
                           span)
            return None
        if name in ("add_weight", "add_variable") and inst.cls.kind in ("layer", "model"):
            owner = inst.layer or inst.model
            why = (f"'{inst.cls.name}' creates its own weights with {name}() (line {span.line}); "
                   "cnnc follows custom layers built from Keras layers only")
            if isinstance(owner, LayerVal) and owner.unsupported is None:
                owner.unsupported = why
            elif isinstance(owner, ModelVal) and not owner.problems:
                owner.problems.append((why, span, ()))
            return Unknown(why, span)
        if name in ("add_metric", "add_update"):
            return None
        return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)

    def super_call(self, ref: SuperRef, name: str, args: list[ArgVal], node):
        """`super().__init__(**kwargs)` and friends of Keras's base classes."""
        inst = ref.obj
        if not isinstance(inst, InstanceVal):
            return None
        if name == "__init__":
            given = next((a.value for a in args if a.keyword == "name"), None)
            if isinstance(given, str) and inst.layer is not None:
                inst.layer.keras_name = given
            elif isinstance(given, str) and inst.model is not None:
                inst.model.name = given
            if inst.model is not None:
                io = [a.value for a in args if a.keyword is None][:2]
                io = io + [a.value for a in args if a.keyword in ("inputs", "outputs")]
                if len(io) >= 2 and all(isinstance(v, TensorVal) or (isinstance(v, (list, tuple)) and v)
                                        for v in io[:2]):
                    inst.model.inputs, inst.model.outputs = io[0], io[1]
            return None
        if name == "get_config":
            return {}
        if inst.model is not None and name in _MODEL_METHODS:
            return self.model_method(inst.model, name, args, node)
        return None

    # --- calling a custom layer ---------------------------------------------------

    def apply_custom(self, layer: LayerVal, given: ArgVal, extra: list[ArgVal], node):
        """A custom layer called on a tensor: build() then call(), their nodes one row."""
        inst = layer.custom
        if layer.uses and not self.replaying:
            return self.refused_node(layer, node, f"'{layer.keras_name}' ({layer.cls}) is called a "
                                     "second time: its weights would be shared, which cnnc does not "
                                     "support", given)
        layer.uses += 1
        build = self.class_method(inst.cls, "build")
        if build is not None:
            shape = self.tensor_shape(given.value, node) if isinstance(given.value, TensorVal) else None
            if isinstance(shape, tuple):
                self.call_function(build, [ArgVal(None, shape, given.span)], node, self_obj=inst)
        if layer.unsupported:
            return self.refused_node(layer, node, None, given)
        call = self.class_method(inst.cls, "call")
        extra = _accepted(call, extra)
        out = self.run_in_row(layer, layer.cls, given, node, lambda: self.call_function(
            call, [ArgVal(None, given.value, given.span)] + extra, node, self_obj=inst))
        if layer.unsupported:
            return self.refused_node(layer, node, None, given)
        if not isinstance(out, TensorVal):
            why = (out.why if isinstance(out, Unknown) else
                   "it returns no new tensor" if not isinstance(out, (list, tuple)) else
                   "it returns several tensors")
            return self.refused_node(layer, node, f"{layer.cls}.call() cannot be followed: {why}",
                                     given)
        return out

    def apply_lambda(self, layer: LayerVal, given: ArgVal, node):
        """Lambda(lambda x: x / 127.5 - 1) on a tensor: the function runs on it and what it
        does (arithmetic, activation functions) is the Lambda's row, as Keras shows it."""
        span = self.span(node)
        arguments = next((a.value for a in layer.args if a.keyword == "arguments"), None)
        extra = [ArgVal(k, v, span) for k, v in arguments.items()] if isinstance(arguments, dict) else []
        layer.uses += 1
        row = layer.shown_cls or "Lambda"
        # Keras runs a Lambda's function now only when no output_shape= says its shape
        quiet = any(a.keyword == "output_shape" for a in layer.args)
        out = self.run_in_row(layer, row, given, node, lambda: self.call(
            layer.fn, [ArgVal(None, given.value, given.span)] + extra, node, None), quiet)
        if not isinstance(out, TensorVal):
            why = out.why if isinstance(out, Unknown) else "it returns no tensor cnnc can follow"
            return self.refused_node(layer, node, f"cnnc cannot follow this {row}'s function: {why}",
                                     given)
        return out

    def run_in_row(self, layer: LayerVal, shown: str, given: ArgVal, node, run, quiet: bool = False):
        """`run()` (a custom layer's call(), a Lambda's function) on the tensor, everything
        it makes under the row (layer's name, `shown`); an input returned as it is passes
        through an Identity. The new tensor, or what `run` gave instead of one."""
        from cnnc.frontends.python.emit import _given_name
        row = _given_name(layer)              # name= as given, else Keras's
        start = len(self.nodes)
        self.groups.append((row, shown))
        try:
            try:
                out = run()
            except _Raise as r:
                if not quiet:
                    raise                 # Keras runs it now: the script stops there
                from cnnc.frontends.python.entry import _exception
                out = Unknown(f"it raises {_exception(r)}", self.span(node))
            if isinstance(out, TensorVal) and out.node < start:
                out = self.apply_layer(self.hidden_layer("Identity", [], node, "identity"),
                                       [ArgVal(None, out, given.span)], node)
        finally:
            self.groups.pop()
        if isinstance(out, TensorVal):
            for k in range(start, len(self.nodes)):
                self.nodes[k].group = (row, shown, layer.seq, self.span(node))
        return out

    def hidden_layer(self, cls: str, args: list[ArgVal], node, base: str) -> LayerVal:
        """A layer standing for what Keras does not call a layer (an activation function,
        tf.concat, an identity) inside a row; its name never shows."""
        return LayerVal(cls, args, self.span(node), self.span(node.func), written=(cls,),
                        keras_name=self.hidden_name(base), seq=self.next_seq(), hidden=True)

    def refused_node(self, layer: LayerVal, node, why: str | None, given: ArgVal):
        """A node that makes its model an error at this call (emit reports `why`)."""
        stand_in = LayerVal(layer.cls, [], self.span(node), layer.name_span, written=layer.written,
                            unsupported=why or layer.unsupported, keras_name=layer.keras_name)
        v = given.value
        inputs = [v.node] if isinstance(v, TensorVal) else [
            t.node for t in v if isinstance(t, TensorVal)] if isinstance(v, (list, tuple)) else []
        self.add_node(TNode("apply", self.span(node), layer=stand_in, inputs=inputs,
                                listed=not isinstance(v, TensorVal),
                                operand_spans=[given.span] * max(len(inputs), 1)))
        return TensorVal(len(self.nodes) - 1)

    def hidden_name(self, base: str) -> str:
        """A name for what Keras does not name (an operation inside call()): it never
        shows, since its row is the custom layer's; '.' keeps it apart from Keras's."""
        row = self.groups[-1][0] if self.groups else self.trace_prefix
        n = self.hidden_counts.get((row, base), 0)
        self.hidden_counts[(row, base)] = n + 1
        return f"{row}.{base}" + (f"_{n}" if n else "")

    def activation_call(self, func, args: list[ArgVal], node):
        """`keras.activations.relu(x)`, `tf.nn.relu(x)`, `K.relu(x, max_value=6)`,
        `self.activation(x)` inside a custom layer's call(): an activation layer inside its
        row (ReLU, LeakyReLU, Softmax where the arguments need one). None: not one."""
        if not self.groups and not self.tracing:
            return None
        name, given = None, []
        if isinstance(func, KerasRef) and len(func.path) >= 2 and func.path[-2] in (
                "activations", "nn", "ops", "backend"):
            name = func.last
        elif isinstance(func, KerasObj) and func.path[-2:] == ("activations", "get") and func.args:
            name = func.args[0].value
        elif isinstance(func, LayerVal):
            return None
        if not isinstance(name, str) or name not in ACTIVATION_FUNCTIONS:
            return None
        tensors = [a for a in args if isinstance(a.value, TensorVal)]
        rest = [a for a in args if not isinstance(a.value, TensorVal)]
        if len(tensors) != 1:
            return None
        span = self.span(node)
        act = "silu" if name == "swish" else name
        if rest:
            made = _activation_layer(act, rest, span)
            if made is None:
                return None
            cls, given = made
        else:
            cls, given = "Activation", [ArgVal(None, act, span)]
        layer = self.hidden_layer(cls, given, node, act)
        return self.apply_layer(layer, [tensors[0]], node)

    def tensor_function(self, func, args: list[ArgVal], node):
        """`tf.concat([a, b], -1)`, `tf.add(a, b)`, `keras.ops.multiply(a, b)` inside a custom
        layer's or subclassed model's call() (TensorFlow functions refuse Keras 3's symbolic
        tensors elsewhere): a Concatenate or tensor arithmetic. None: not one."""
        if not isinstance(func, KerasRef) or len(func.path) < 2:
            return None
        last, parent = func.last, func.path[-2]
        if parent not in ("ops", "math", "backend", "tensorflow", "numpy"):
            return None
        if last in ("concat", "concatenate"):
            values = next((a.value for a in args if a.keyword in (None, "values", "xs", "tensors")), None)
            axis = next((a.value for a in args if a.keyword == "axis"), None)
            pos = [a.value for a in args if a.keyword is None]
            if axis is None:
                axis = pos[1] if len(pos) > 1 else (0 if parent in ("ops", "numpy") else None)
            if not (isinstance(values, (list, tuple)) and values and all(isinstance(v, TensorVal) for v in values)
                    and isinstance(axis, int)):
                return None
            layer = self.hidden_layer("Concatenate", [ArgVal("axis", axis, self.span(node))], node, "concat")
            return self.apply_layer(layer, [ArgVal(None, list(values), self.span(node))], node)
        if last == "reshape":
            return self.reshape_call(args, node)
        ops = {"add": "add", "subtract": "sub", "multiply": "mul", "divide": "div", "true_divide": "div"}
        if last in ops:
            pos = [a for a in args if a.keyword is None][:2]
            if len(pos) == 2 and any(isinstance(a.value, TensorVal) for a in pos) and all(
                    isinstance(a.value, (TensorVal, int, float)) and not isinstance(a.value, bool) for a in pos):
                return self.tensor_op(ops[last], [(a.value, node) for a in pos], node)
        return None

    def reshape_call(self, args: list[ArgVal], node):
        """`tf.reshape(x, [-1, 7 * 7 * 64])`, `keras.ops.reshape(x, (batch, h, w, c))` in
        call(): a Reshape of the sample (the first size is the batch: -1, None, or the
        batch size `tf.shape(x)[0]`)."""
        pos = [a for a in args if a.keyword is None]
        x = pos[0].value if pos else next((a.value for a in args if a.keyword in ("tensor", "x")), None)
        shape = pos[1].value if len(pos) > 1 else next(
            (a.value for a in args if a.keyword in ("shape", "newshape", "new_shape")), None)
        if not isinstance(x, TensorVal) or not isinstance(shape, (tuple, list)) or not shape:
            return None
        first, rest = shape[0], tuple(shape[1:])
        batch = first in (-1, None) or (isinstance(first, Unknown) and first.name == BATCH)
        if not batch or not all(isinstance(d, int) and not isinstance(d, bool) for d in rest):
            return None
        layer = self.hidden_layer("Reshape", [ArgVal(None, rest, self.span(node))], node, "reshape")
        return self.apply_layer(layer, [ArgVal(None, x, self.span(node))], node)

    def weightless_copy(self, layer: LayerVal) -> LayerVal | None:
        """A weightless layer called again inside a subclassed model or a custom layer:
        a copy (Keras keeps one object; nothing is shared since it has no weights)."""
        spec = kinds.lookup(layer.cls)
        if not (self.groups or self.tracing) or spec is None or spec.family not in WEIGHTLESS:
            return None
        return LayerVal(layer.cls, layer.args, layer.span, layer.name_span, written=layer.written,
                        seq=layer.seq, var=layer.var, keras_name=f"{layer.keras_name}.{layer.uses}",
                        copy_of=layer)

    # --- a model called as a layer (nested) --------------------------------------

    def apply_model(self, inner: ModelVal, args: list[ArgVal], node):
        """`data_augmentation(inputs)`, `Sequential([base, Softmax()])`: the inner model's
        layers run here, shown as one row (the inner model's name and class), as Keras
        shows a nested model."""
        from cnnc.frontends.python.emit import model_name
        given = next((a for a in args if a.keyword in (None, "inputs")), None)
        span = self.span(node)
        if given is None or not isinstance(given.value, TensorVal):
            if given is not None and isinstance(given.value, Unknown):
                return given.value
            return Unknown(f"`{self.snippet(node)}`: the model is not called on a tensor cnnc knows", span)
        if inner.pending is not None:
            shape = self.tensor_shape(given.value, node)
            if isinstance(shape, tuple):
                self.build_pending(inner, tuple(shape[1:]))
        name = model_name(inner)
        stand_in = LayerVal(inner.kind.title(), [], span, self.span(node.func), keras_name=name)
        inside = id(inner) in self.applying
        if (inner.uses and (not self.replaying or inside)) or inner.problems or inner.kind == "subclassed" \
                and inner.style is None and not self.trace_now(inner, given.value, node):
            why = (f"the model '{name}' is called a second time: its weights would be shared, "
                   "which cnnc does not support" if inner.uses else
                   inner.problems[0][0] if inner.problems else f"the model '{name}' cannot be followed")
            return self.refused_node(stand_in, node, why, given)
        inner.uses += 1
        if inner.data_shape is None and inner.build_shape is None and inner.kind == "sequential" \
                and self.model_input_shape(inner, span) is None:
            shape = self.tensor_shape(given.value, node)
            if isinstance(shape, tuple):
                inner.data_shape, inner.data_span = shape[1:], given.span
                self.keras_name("Functional")     # Keras builds it now (see seq_rebuild)
        start = len(self.nodes)
        self.applying.add(id(inner))
        try:
            if inner.kind == "sequential":
                out = self.replay_sequential(inner, given.value, span)
            else:
                out = self.replay_graph(inner, given.value)
        finally:
            self.applying.discard(id(inner))
        if isinstance(out, Unknown):
            return Unknown(f"the model '{name}' cannot be followed here: {out.why}", out.span or span)
        if not isinstance(out, TensorVal):
            return self.refused_node(stand_in, node, "the model cannot be followed", given)
        shown = inner.instance.cls.name if inner.kind == "subclassed" or inner.style == "subclassed" \
            else "Sequential" if inner.kind == "sequential" or inner.style == "sequential" else "Functional"
        for k in range(start, len(self.nodes)):
            self.nodes[k].group = (name, shown, 0, span)
        return out

    def trace_now(self, inner: ModelVal, t: TensorVal, node) -> bool:
        shape = self.tensor_shape(t, node)
        if not isinstance(shape, tuple):
            return False
        inner.data_shape, inner.data_span = shape[1:], self.span(node)
        self.trace_subclassed(inner, None)
        return inner.style is not None

    def replay_sequential(self, inner: ModelVal, t: TensorVal, span: Span):
        items = list(zip(inner.items, inner.item_spans))
        if items and isinstance(items[0][0], TensorVal):
            items = items[1:]
        for i, (item, item_span) in enumerate(items):
            if isinstance(item, LayerVal) and i == 0 and any(a.keyword in _SHAPE_ARGS for a in item.args):
                item = LayerVal(item.cls, [a for a in item.args if a.keyword not in _SHAPE_ARGS],
                                item.span, item.name_span, written=item.written,
                                keras_name=item.keras_name, seq=item.seq)
            if isinstance(item, ModelVal):
                out = self.apply_model(item, [ArgVal(None, t, item_span)], self.fake_call(item_span))
            elif isinstance(item, LayerVal):
                out = self.call_layer_on(item, t, item_span)
            else:
                return Unknown("the nested Sequential holds something cnnc cannot follow", item_span)
            if not isinstance(out, TensorVal):
                return out
            t = out
        return t

    def replay_graph(self, inner: ModelVal, t: TensorVal):
        """The inner functional model's nodes again, its input replaced by `t`."""
        from cnnc.frontends.python.emit import EmitError, _tensor_list
        try:
            outs, _ = _tensor_list(inner.outputs, "outputs", inner.span)
            ins, _ = _tensor_list(inner.inputs, "inputs", inner.span) if inner.inputs is not None else ([], False)
        except EmitError as e:
            return Unknown(e.message, e.span)
        if len(ins) != 1 or len(outs) != 1:
            return Unknown("a nested model with several inputs or outputs is not supported", inner.span)
        needed, stack = set(), list(outs)
        while stack:
            k = stack.pop()
            if k not in needed:
                needed.add(k)
                stack.extend(self.nodes[k].inputs)
        mapping = {ins[0]: t.node}
        for k in sorted(needed):
            old = self.nodes[k]
            if k in mapping:
                continue
            if old.kind == "input":
                return Unknown("the nested model has an input it is not called on", old.span)
            new = TNode(old.kind, old.span, layer=old.layer, inputs=[mapping[i] for i in old.inputs],
                        listed=old.listed, op=old.op, constant=old.constant, reverse=old.reverse,
                        operand_spans=old.operand_spans, extra=old.extra, keras_name=old.keras_name)
            self.add_node(new)
            mapping[k] = len(self.nodes) - 1
        return TensorVal(mapping[outs[0]])

    def fake_call(self, span: Span) -> ast.Call:
        """An ast.Call at `span`, for calls the script makes implicitly (a Sequential's layers)."""
        fake = ast.Call(func=ast.Name("_", ast.Load()), args=[], keywords=[])
        for n in (fake, fake.func):
            n.lineno, n.col_offset = span.line, max(span.column - 1, 0)
            n.end_lineno, n.end_col_offset = span.end_line, max(span.end_column - 1, 0)
        return fake

    def set_trainable(self, obj, value: bool) -> None:
        """`base_model.trainable = False`: every layer of the model is frozen (Keras
        reads the flag when the model is compiled; cnnc uses the script's last word)."""
        obj.frozen = not value
        if isinstance(obj, LayerVal):
            return
        for layer in self.layers_of(obj):
            layer.frozen = not value

    def layers_of(self, m: ModelVal, seen: frozenset = frozenset()) -> list:
        if id(m) in seen:
            return []
        if m.kind == "sequential":
            out = []
            for item in m.items:
                out += [item] if isinstance(item, LayerVal) else self.layers_of(
                    item, seen | {id(m)}) if isinstance(item, ModelVal) else []
            return out
        from cnnc.frontends.python.emit import EmitError, _tensor_list
        try:
            stack, _ = _tensor_list(m.outputs, "outputs", m.span)
        except EmitError:
            return []
        seen, out = set(), []
        while stack:
            k = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            if self.nodes[k].layer is not None:
                out.append(self.nodes[k].layer)
            stack.extend(self.nodes[k].inputs)
        return out

    # --- looking into a model: model.layers, model.get_layer(), layer.output --------

    def seq_graph(self, m: ModelVal, input_shape: tuple | None = None, final: bool = False):
        """A Sequential's layers called on its input, as Keras builds it once its input
        shape is known: {"input", "last", "outputs": {id(layer): tensor}, "n"}. Built for
        `model.layers[i].output` while the script runs, then continued by the final trace
        (`final`: its first layer's input_shape= is taken off, layers are traced). A shape
        that is not known raises EmitError."""
        g = m.prebuilt
        if g is None:
            t, start = self.seq_start(m, input_shape, final)
            g = m.prebuilt = {"input": t, "last": t, "outputs": {}, "n": start}
        tracing, self.tracing = self.tracing, final or self.tracing
        try:
            for k in range(g["n"], len(m.items)):
                item, span = m.items[k], m.item_spans[k]
                if isinstance(item, ModelVal):
                    out = self.apply_model(item, [ArgVal(None, g["last"], span)], self.fake_call(span))
                elif isinstance(item, LayerVal):
                    out = self.call_layer_on(item, g["last"], span)
                else:
                    out = Unknown("cnnc cannot follow this item of the Sequential", span)
                if not isinstance(out, TensorVal):
                    return Unknown(getattr(out, "why", "this layer cannot be followed"), span)
                g["outputs"][id(item)], g["last"], g["n"] = out, out, k + 1
        finally:
            self.tracing = tracing
        return g

    def seq_start(self, m: ModelVal, input_shape, final: bool) -> tuple[TensorVal, int]:
        """The tensor a Sequential starts from, and the index of its first layer."""
        from cnnc.frontends.python.emit import _declared_shape
        first = m.items[0] if m.items else None
        if isinstance(first, TensorVal) and self.nodes[first.node].kind == "input":
            return first, 1
        found = None
        if isinstance(first, LayerVal):
            found = self.first_layer_shape(first, strip=final)
        elif isinstance(first, ModelVal):
            found = self.model_input_shape(first, m.item_spans[0])
        if found is None:
            found = _declared_shape(m, input_shape)
        return self.traced_input(m, found[0], found[1]), 0

    def built_graph(self, m: ModelVal):
        """seq_graph while the script runs: a shape not known yet is an Unknown."""
        from cnnc.frontends.python.emit import EmitError
        try:
            return self.seq_graph(m)
        except EmitError:
            return Unknown("the Sequential model's input shape is not known at this point "
                           "(Keras has not built it yet)", m.span)

    def model_layers(self, m: ModelVal) -> list | Unknown:
        """model.layers: a Sequential's items, a functional model's layers in creation order."""
        if m.kind == "sequential":
            return [i for i in m.items if isinstance(i, (LayerVal, ModelVal))]
        unique = {id(l): l for l in self.layers_of(m)}
        return sorted(unique.values(), key=lambda l: l.seq)

    def layer_output(self, layer, span: Span):
        """layer.output: the tensor its (single) call made, in the model that holds it."""
        owner = next((m for m in self.models if m.kind == "sequential" and any(
            i is layer for i in m.items)), None)
        if owner is not None:
            g = self.built_graph(owner)
            if isinstance(g, Unknown):
                return g
            return g["outputs"].get(id(layer), Unknown("this layer has no output yet", span))
        made = [k for k, n in enumerate(self.nodes) if n.layer is layer]
        if len(made) == 1:
            return TensorVal(made[0])
        return Unknown("this layer is called " + ("never" if not made else f"{len(made)} times")
                       + "; cnnc knows the output of a layer called once", span)

    def model_attribute(self, m: ModelVal, attr: str, span: Span):
        """model.inputs/outputs/input/output and model.layers."""
        if attr == "layers":
            return self.model_layers(m)
        if m.kind == "sequential":
            g = self.built_graph(m)
            if isinstance(g, Unknown):
                return g
            v = g["last"] if attr.startswith("output") else g["input"]
        else:
            v = m.outputs if attr.startswith("output") else m.inputs
        if attr.endswith("s") and isinstance(v, TensorVal):
            return [v]
        if not attr.endswith("s") and isinstance(v, list) and len(v) == 1:
            return v[0]
        return v

    def get_layer(self, m: ModelVal, args: list[ArgVal], span: Span):
        """model.get_layer(name) or get_layer(index=...)."""
        from cnnc.frontends.python.emit import _given_name
        layers = self.model_layers(m)
        if isinstance(layers, Unknown):
            return layers
        name = next((a.value for a in args if a.keyword in (None, "name")), None)
        index = next((a.value for a in args if a.keyword == "index"), None)
        if isinstance(index, int) and not isinstance(index, bool) and -len(layers) <= index < len(layers):
            return layers[index]
        for layer in layers:
            if isinstance(layer, LayerVal) and _given_name(layer) == name:
                return layer
        return Unknown(f"the model has no layer {shown(name)} cnnc knows", span)

    # --- tracing models whose graph only call() (or a custom layer) gives ----------

    def trace_models(self, input_shape: tuple | None) -> None:
        for m in list(self.models):
            self.tracing_model = m
            if m.pending is not None:
                from cnnc.frontends.python.applications import AppError, source_of
                try:
                    source_of(m.pending[0], m.pending[1])
                except AppError as e:        # never called on a tensor: its size is unknown
                    m.problems.append((e.message, m.span, e.notes))
            if m.kind == "subclassed" and not m.problems:
                self.trace_subclassed(m, input_shape)
            elif m.kind == "sequential" and any(isinstance(i, ModelVal) or (
                    isinstance(i, LayerVal) and (i.custom is not None or i.fn is not None))
                    for i in m.items):
                # a Sequential that already ran inside another model is the same layers seen
                # on their own (Keras shows it so): no layer of it is called a second time
                replaying, self.replaying = self.replaying, bool(m.uses) or self.replaying
                try:
                    self.trace_sequential(m, input_shape)
                finally:
                    self.replaying = replaying

    def traced_input(self, m: ModelVal, shape: tuple, span: Span) -> TensorVal:
        self.add_node(TNode("input", span, input_args=[ArgVal("shape", tuple(shape), span)]))
        return TensorVal(len(self.nodes) - 1)

    def model_shape(self, m: ModelVal, input_shape) -> tuple[tuple, Span] | None:
        from cnnc.frontends.python.emit import EmitError, _declared_shape
        try:
            return _declared_shape(m, input_shape)
        except EmitError as e:
            m.problems.append((e.message, e.span, e.notes))
            return None

    def trace_sequential(self, m: ModelVal, input_shape) -> None:
        """A Sequential holding a custom layer or a model: its chain as a graph."""
        from cnnc.frontends.python.emit import EmitError
        try:
            graph = self.seq_graph(m, input_shape, final=True)
        except EmitError as e:
            m.problems.append((e.message, e.span, e.notes))
            return
        if isinstance(graph, Unknown):
            m.problems.append((graph.why, graph.span or m.span, ()))
            return
        m.kind, m.style, m.inputs, m.outputs = "functional", "sequential", graph["input"], graph["last"]

    def model_input_shape(self, inner, span: Span, seen: frozenset = frozenset()) -> tuple[tuple, Span] | None:
        """The input shape of a model that starts a Sequential: its Input's or first layer's."""
        if not isinstance(inner, ModelVal) or id(inner) in seen:
            return None
        seen = seen | {id(inner)}
        if inner.kind == "sequential" and inner.items:
            first = inner.items[0]
            if isinstance(first, TensorVal):
                return self.input_node_shape(first.node, span)
            if isinstance(first, LayerVal):
                for a in first.args:
                    if a.keyword in _SHAPE_ARGS and isinstance(a.value, (tuple, list)):
                        shape = tuple(a.value)
                        return (shape[1:] if a.keyword.startswith("batch") else shape), a.span
            if isinstance(first, ModelVal):
                return self.model_input_shape(first, span, seen)
        elif isinstance(inner.inputs, TensorVal):
            return self.input_node_shape(inner.inputs.node, span)
        return None

    def input_node_shape(self, k: int, span: Span) -> tuple[tuple, Span] | None:
        node = self.nodes[k]
        if node.kind != "input":
            return None
        for a in node.input_args or ():
            if a.keyword in ("shape", None) and isinstance(a.value, (tuple, list)):
                return tuple(a.value), span
        return None

    def first_layer_shape(self, layer, strip: bool = True) -> tuple[tuple, Span] | None:
        """The first layer's input_shape= (or input_dim=), taken off the layer (`strip`)."""
        if not isinstance(layer, LayerVal):
            return None
        for a in layer.args:
            if a.keyword in _SHAPE_ARGS and isinstance(a.value, (tuple, list)):
                shape = tuple(a.value)
                found = (shape[1:] if a.keyword.startswith("batch") else shape), a.span
            elif a.keyword == "input_dim" and isinstance(a.value, int):
                found = (a.value,), a.span
            else:
                continue
            if strip:
                layer.args = [x for x in layer.args if x.keyword not in _SHAPE_ARGS]
            return found
        return None

    def call_layer_on(self, layer: LayerVal, t: TensorVal, span: Span):
        return self.apply_layer(layer, [ArgVal(None, t, span)], self.fake_call(span))

    def trace_subclassed(self, m: ModelVal, input_shape) -> None:
        inst = m.instance
        call = self.class_method(inst.cls, "call")
        if call is None:
            m.problems.append((f"'{inst.cls.name}' has no call(): it is not a model Keras can run "
                               "on data (a wrapper with train_step(), a GAN); the models it holds "
                               "are checked on their own", m.span, ()))
            return
        found = self.model_shape(m, input_shape)
        if found is None:
            return
        shape, span = found
        span = span or m.span
        t = self.traced_input(m, shape, span)
        start = len(self.nodes)
        self.tracing, self.trace_prefix = True, m.keras_name or "model"
        try:
            out = self.call_function(call, [ArgVal(None, t, span)], self.fake_call(span), self_obj=inst)
        finally:
            self.tracing = False
        if not isinstance(out, TensorVal) or out.node < start:
            why = out.why if isinstance(out, Unknown) else "it returns no new tensor"
            m.problems.append((f"{inst.cls.name}.call() cannot be followed: {why}",
                               getattr(out, "span", None) or m.span, ()))
            return
        m.kind, m.style, m.inputs, m.outputs = "functional", "subclassed", t, out
