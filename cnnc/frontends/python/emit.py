"""A model found in a script -> cnnc's own statements (cnnc.syntax), with spans at
the script's positions. resolve and infer then treat them exactly as a .cnn file's:
the same Keras semantics, names and diagnostics.

Sequential models become the chain form (bare layer lines); functional models
become `tN = Layer(...)(tM)` assignments over fresh tensor names, ending with
`Model(inputs=..., outputs=...)`. Values cnnc cannot know become problems (one
diagnostic each, at the line that needs them) instead of statements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnc.analysis.symbolic import dim
from cnnc.frontends.python.keras2 import FIT_RENAMED
from cnnc.frontends.python.values import (
    ArgVal,
    ArrayVal,
    CallRecord,
    KerasObj,
    KerasRef,
    LayerVal,
    ModelVal,
    ModuleRef,
    TensorVal,
    TNode,
    Unknown,
    describe,
    shown,
)
from cnnc.language import syntax as S
from cnnc.support.diagnostics import Span

INPUT_SHAPE_HELP = "give the shape of one sample with --input-shape, e.g. --input-shape 28,28,1"
# fit() arguments that carry data or training machinery, not settings cnnc reads
_FIT_DROPPED = {"x", "y", "validation_data", "callbacks", "verbose", "workers",
                "use_multiprocessing", "max_queue_size", "generator", "max_q_size", "nb_worker",
                "pickle_safe"}
# fit() and compile() settings Keras takes that cnnc's training does not implement: they
# decide no shape, so they are left out with a warning instead of stopping the model
_FIT_UNSUPPORTED = {"class_weight": "cnnc's training does not weight classes",
                    "sample_weight": "cnnc's training does not weight samples",
                    "steps_per_epoch": "an epoch of cnnc's training is one pass over the data",
                    "validation_steps": "cnnc validates on all of its validation data",
                    "validation_freq": "cnnc validates after every epoch"}
_COMPILE_UNSUPPORTED = {"loss_weights": "cnnc trains models with one output",
                        "weighted_metrics": "cnnc's training does not weight samples",
                        "run_eagerly": "it changes how Keras runs, not the model",
                        "jit_compile": "it changes how Keras runs, not the model",
                        "steps_per_execution": "it changes how Keras runs, not the model"}
# A layer's arguments that decide no shape and no parameter count: a value cnnc cannot
# know (or does not implement) there is left out with a warning, never a refusal.
_DEFAULTS = {"initializer": "Keras's default initializer", "regularizer": "no regularization",
             "constraint": "no constraint"}
_NON_SHAPE = {"activation": "no activation", "seed": "a random seed", "dtype": "float32",
              "trainable": "trainable weights", "momentum": "Keras's default momentum",
              "epsilon": "Keras's default epsilon", "rate": "no dropout",
              "negative_slope": "Keras's default slope", "max_value": "no maximum",
              "threshold": "no threshold", "stddev": "Keras's default", "factor": "Keras's default",
              "fill_mode": "Keras's default", "interpolation": "Keras's default",
              "noise_shape": "the input's shape", "name": "the name Keras gives it"}
_NOT_IMPLEMENTED_INITS = {"orthogonal", "identity", "stft"}


class EmitError(Exception):
    def __init__(self, message: str, span: Span | None, *notes: str):
        super().__init__(message)
        self.message, self.span, self.notes = message, span, notes


@dataclass
class Emitted:
    statements: list = field(default_factory=list)
    problems: list = field(default_factory=list)     # (message, span, notes)
    warnings: list = field(default_factory=list)     # (message, span, notes): values left out
    settings_problems: list = field(default_factory=list)   # in compile()/fit(): shapes still checked
    settings_spans: list = field(default_factory=list)   # compile/fit calls: errors there keep shapes
    groups: dict = field(default_factory=dict)     # layer name -> (summary row, class shown)
    rank: dict | None = None                       # row -> position (a subclassed model's order)
    row_owner: dict = field(default_factory=dict)  # row -> (seq, class) of what made it
    functional: bool | None = None                 # the summary's table style, when traced

    def regroup(self, ir):
        """The resolved model with its summary rows (custom layers, subclassed models)."""
        if not self.groups and self.functional is None:
            return ir
        from cnnc.analysis.groups import regroup
        return regroup(ir, self.groups, self.rank, self.functional)


def _number(v, span: Span) -> S.Number:
    return S.Number(v, repr(v) if isinstance(v, float) else str(v), span)


MAX_NESTING = 32     # a value nested deeper is no argument any layer takes


def to_syntax(v: Any, span: Span, what: str = "this value", depth: int = 0) -> S.Value:
    """A known value as cnnc syntax; EmitError when it cannot be written."""
    if depth > MAX_NESTING:
        raise EmitError(f"{what} nests values more than {MAX_NESTING} deep; no Keras argument does",
                        span)
    if isinstance(v, bool) or v is None:
        return S.Name((str(v),), span)
    if isinstance(v, (int, float)):
        return _number(v, span)
    if isinstance(v, str):
        return S.String(v, span)
    if isinstance(v, tuple):
        return S.Tuple(tuple(to_syntax(x, span, what, depth + 1) for x in v), span)
    if isinstance(v, list):
        return S.List(tuple(to_syntax(x, span, what, depth + 1) for x in v), span)
    if isinstance(v, KerasRef):
        return S.Name(v.path, span)
    if isinstance(v, ModuleRef):
        return S.Name(v.path, span)
    if isinstance(v, (KerasObj,)):
        return S.Call(S.Name(v.path, span), _args(v.args, depth=depth + 1), v.span)
    if isinstance(v, LayerVal):
        return layer_call(v)
    if isinstance(v, Unknown) and v.data and v.name:
        # a size that comes from the data: an open dimension, named as the source calls it
        return S.Open(dim(v.name), v.span or span)
    if isinstance(v, Unknown):
        raise EmitError(unknown_message(v, what), v.span or span,
                        *(_data_note(what),) if v.data else ())
    if isinstance(v, ArrayVal):
        raise EmitError(f"{what} is an array of shape {v.shape}; cnnc cannot use an array here", span)
    if isinstance(v, TensorVal):
        raise EmitError(f"{what} is a tensor here, where a value is expected", span)
    raise EmitError(f"cnnc cannot write {what} here: it is {describe(v)}", span)


_FROM_DATA = " comes from the data"


def unknown_message(v: Unknown, what: str) -> str:
    return f"cnnc cannot know {what} without running the script: {reason(v)}"


def reason(v: Unknown) -> str:
    """Why a value cannot be known; a size from the data is named as the source calls
    it, with the expression it comes from and its line."""
    line = f"line {v.span.line}" if v.span is not None else ""
    if v.data and v.name and v.why.endswith(_FROM_DATA) and v.why.startswith("`"):
        expr = v.why[1:-len(_FROM_DATA) - 1]
        where = f" ({line}: `{expr}`)" if expr != v.name else f" ({line})"
        return f"`{v.name}`{where}{_FROM_DATA}"
    if v.data and v.name and v.name.isidentifier() and line:
        return f"`{v.name}` ({line}) comes from data: {v.why}"
    return v.why


def _data_note(what: str) -> str:
    if "shape" in what:
        return INPUT_SHAPE_HELP
    return "this size comes from the data (a file, a folder or a dataset cnnc does not read); " \
        "write it as a number to check the model"


def _args(args: list[ArgVal], what: str = "", warnings: list | None = None,
          depth: int = 0) -> tuple[S.Arg, ...]:
    out = []
    names = _param_names(what)
    positional = 0
    for a in args:
        key = a.keyword
        if key is None:
            key = names[positional] if positional < len(names) else None
            positional += 1
        label = f"`{key}`" if key else "this argument"
        if what:
            label += f" of {what}"
        if warnings is not None and a.keyword and _left_out(a, label, warnings):
            continue
        out.append(S.Arg(a.keyword, to_syntax(a.value, a.span, label, depth), a.span, a.keyword_span))
    return tuple(out)


def _param_names(cls: str) -> tuple[str, ...]:
    """A Keras layer's parameters in their positional order (for messages)."""
    from cnnc.analysis import kinds
    spec = kinds.lookup(cls) if cls and cls[:1].isupper() else None
    return tuple(p.name for p in spec.params) if spec is not None else ()


def _left_out(a: ArgVal, label: str, warnings: list) -> bool:
    """A layer argument that decides no shape and that cnnc cannot know or does not
    implement: left out (True), with a warning saying what stands in for it."""
    key, v = a.keyword, a.value
    kind = next((k for k in _DEFAULTS if key.endswith("_" + k)), None)
    instead = _DEFAULTS.get(kind) if kind else _NON_SHAPE.get(key)
    if instead is None:
        return False
    why = None
    if not _writable(v):
        why = "cnnc cannot know it without running the script" + (
            f" ({v.why})" if isinstance(v, Unknown) else f" ({describe(v)})")
    elif kind == "constraint" and v is not None:
        why = "cnnc does not implement constraints"
    elif key == "activity_regularizer" and v is not None:
        why = "cnnc does not implement activity regularizers"
    elif kind == "initializer" and _initializer_name(v).lower() in _NOT_IMPLEMENTED_INITS:
        why = f"cnnc does not implement the {_initializer_name(v)} initializer"
    if why is None:
        return False
    warnings.append((f"{label} is left out: {why}", a.keyword_span or a.span,
                     (f"it decides no shape or parameter count; cnnc checks the model with "
                      f"{instead}, and compile and train use {instead} too",)))
    return True


def _writable(v, depth: int = 0) -> bool:
    """Whether to_syntax can write the value."""
    if isinstance(v, (bool, int, float, str, type(None), KerasRef, ModuleRef)):
        return True
    if depth > MAX_NESTING:
        return False
    if isinstance(v, (tuple, list)):
        return all(_writable(x, depth + 1) for x in v)
    if isinstance(v, KerasObj):
        return all(_writable(a.value, depth + 1) for a in v.args)
    return False


def _initializer_name(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, KerasObj):
        return v.path[-1]
    return ""


def layer_call(layer: LayerVal, warnings: list | None = None) -> S.Call:
    if layer.unsupported:
        raise EmitError(f"{layer.cls}: {layer.unsupported}", layer.name_span)
    from cnnc.analysis import kinds
    if layer.cls in kinds.KERAS_OTHER_LAYERS:       # resolve names it: its arguments do not matter
        return S.Call(S.Name((layer.cls,), layer.name_span), (), layer.span)
    kept = [a for a in layer.args if a.keyword != "name" or _writable(a.value)]
    args = _args(layer.args, layer.cls, warnings if warnings is not None else []) + \
        _keras_name(kept, layer.keras_name, layer.span)
    if layer.frozen and not any(a.keyword == "trainable" for a in layer.args):
        args += (S.Arg("trainable", S.Name(("False",), layer.span), layer.span, layer.span),)
    return S.Call(S.Name((layer.cls,), layer.name_span), args, layer.span)


def _keras_name(args: list[ArgVal], name: str | None, span: Span) -> tuple[S.Arg, ...]:
    """name= as Keras would give it, unless the script names the layer itself: Keras
    numbers layers per session, so a script's second model has conv2d_3, not conv2d."""
    if name is None or any(a.keyword == "name" and a.value is not None for a in args):
        return ()
    return (S.Arg("name", S.String(name, span), span, span),)


def _input_arg_shape(args: list[ArgVal], input_shape: tuple | None) -> list[ArgVal]:
    """The Input's shape= (or a first layer's input_shape=): --input-shape stands in for
    a shape the script does not determine."""
    out = []
    for a in args:
        if a.keyword in ("shape", "input_shape", "batch_shape") or (a.keyword is None and not out):
            v = a.value
            # a tuple whose sizes come from the data is written with them open (named)
            unknown = isinstance(v, Unknown) or (isinstance(v, (tuple, list)) and any(
                isinstance(x, Unknown) and not (x.data and x.name) for x in v))
            if unknown or (input_shape is not None and isinstance(v, (tuple, list))
                           and any(isinstance(x, Unknown) for x in v)):
                if input_shape is None:
                    bad = v if isinstance(v, Unknown) else next(x for x in v if isinstance(x, Unknown))
                    raise EmitError(f"the input shape is not known from the script: {reason(bad)}",
                                    a.span, INPUT_SHAPE_HELP)
                key = "shape" if a.keyword in (None, "batch_shape") else a.keyword
                a = ArgVal(key, tuple(input_shape), a.span, a.keyword_span)
        out.append(a)
    return out


def emit(m: ModelVal, nodes: list[TNode], input_shape: tuple | None, rep=None) -> Emitted:
    out = Emitted()
    for msg, span, notes in m.problems:
        out.problems.append((msg, span, notes))
    if out.problems:
        return out
    try:
        name = model_name(m)
        if isinstance(name, str):
            out.statements.append(S.ModelDecl(name, m.name_span or m.span, m.name_span or m.span))
        elif m.name is not None and not isinstance(m.name, str):
            to_syntax(m.name, m.name_span or m.span, "the model's name")   # Unknown: says so
            raise EmitError(f"the model's name must be a string, got {shown(m.name)}",
                            m.name_span or m.span, "Keras refuses it too")
        if m.kind == "sequential":
            _sequential(m, nodes, input_shape, out)
        else:
            _functional(m, nodes, input_shape, out)
    except EmitError as e:
        out.problems.append((e.message, e.span, e.notes))
        return out
    for rec, what in ((m.compile, "compile"), (m.fit, "fit")):
        if rec is not None:
            out.settings_spans += [rec.span] + _object_spans(rec.args)
            try:
                out.statements.append(S.CallStmt(_settings_call(rec, what, out.warnings), rec.span))
            except EmitError as e:
                out.settings_problems.append((e.message, e.span, e.notes))
    return out


def _object_spans(args: list[ArgVal]) -> list[Span]:
    """Where the Keras objects given to compile()/fit() were made (an optimizer or a
    learning-rate schedule defined lines above): errors there are settings errors too."""
    out, stack, seen = [], [a.value for a in args], set()
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, KerasObj):
            out.append(v.span)
            stack += [a.value for a in v.args]
        elif isinstance(v, (list, tuple)):
            stack += list(v)
    return out


def model_name(m: ModelVal):
    """The name Keras shows: name= as given, else the per-session one."""
    return m.name if m.name is not None else m.keras_name


def _settings_call(rec: CallRecord, what: str, warnings: list) -> S.Call:
    args = []
    for i, a in enumerate(rec.args):
        key = a.keyword
        if what == "fit":
            if key is None and i < 2:
                continue                          # x, y: the data
            if key in _FIT_DROPPED:
                continue
            if key in FIT_RENAMED:
                new = FIT_RENAMED[key]
                if new is None:
                    continue
                a = ArgVal(new, a.value, a.span, a.keyword_span)
        a = _setting(a, what, warnings, i)
        if a is not None:
            args.append(a)
    return S.Call(S.Name((what,), rec.name_span), _args(args, f"{what}()"), rec.span)


def _setting(a: ArgVal, what: str, warnings: list, i: int) -> ArgVal | None:
    """A compile()/fit() argument as cnnc reads it, or None when it is left out: a
    setting cnnc's training does not implement, or a value it cannot know (a loss
    function of the script). Neither decides a shape."""
    key = a.keyword or (("optimizer", "loss", "loss_weights", "metrics")[i] if what == "compile" and i < 4
                        else None)
    label = f"`{key}` of {what}()" if key else f"this argument of {what}()"
    unsupported = (_FIT_UNSUPPORTED if what == "fit" else _COMPILE_UNSUPPORTED).get(key)
    if unsupported and a.value is not None and not (key == "validation_freq" and a.value == 1):
        warnings.append((f"{label} is left out: {unsupported}", a.keyword_span or a.span,
                         ("it decides no shape; cnnc checks the model and trains without it",)))
        return None
    if key == "metrics" and isinstance(a.value, (list, tuple)):
        kept = [v for v in a.value if isinstance(v, str)]
        if len(kept) != len(a.value):
            warnings.append((f"{label}: the metrics that are not Keras's names are left out "
                             "(cnnc computes the named ones only)", a.span, ()))
            return ArgVal(a.keyword, type(a.value)(kept), a.span, a.keyword_span)
        return a
    if _writable(a.value):
        return a
    default = {"optimizer": "Keras's default, RMSprop", "loss": "no loss (the model is checked; "
               "cnnc cannot train it without one)", "epochs": "1 epoch", "batch_size": "32"}.get(
        key, "Keras's default")
    from cnnc.frontends.python.values import FuncVal, PartialVal
    if isinstance(a.value, (FuncVal, PartialVal)):
        why = f"it is {describe(a.value)} of the script, which cnnc's training does not run"
    elif isinstance(a.value, Unknown):
        why = f"cnnc cannot know it without running the script ({a.value.why})"
    else:
        why = f"cnnc cannot use {describe(a.value)} there"
    warnings.append((f"{label} is left out: {why}", a.keyword_span or a.span,
                     (f"it decides no shape; cnnc uses {default}",)))
    return None


def _sequential(m: ModelVal, nodes: list[TNode], input_shape, out: Emitted) -> None:
    items = list(zip(m.items, m.item_spans))
    from cnnc.analysis import kinds
    for item, _ in items:              # a layer cnnc cannot follow says so before any shape
        if isinstance(item, LayerVal) and item.unsupported:
            layer_call(item)
        if isinstance(item, LayerVal) and item.cls in kinds.KERAS_OTHER_LAYERS:
            raise EmitError(f"cnnc does not support the Keras layer '{item.cls}' yet",
                            item.name_span, "supported layers: " + ", ".join(sorted(kinds.KINDS)))
    has_input = False
    if items:
        first = items[0][0]
        if isinstance(first, TensorVal) and nodes[first.node].kind == "input":
            has_input = True
        elif isinstance(first, LayerVal) and any(
                a.keyword in ("input_shape", "input_dim", "batch_input_shape") for a in first.args):
            has_input = True
            first.args = _input_arg_shape(first.args, input_shape)
    if not has_input:
        shape, span = _declared_shape(m, input_shape)
        out.statements.append(S.InputDecl(to_syntax(tuple(shape), span, "the input shape"), span))
    for item, span in items:
        if isinstance(item, LayerVal):
            out.statements.append(S.CallStmt(layer_call(item, out.warnings), item.span))
        elif isinstance(item, TensorVal) and nodes[item.node].kind == "input":
            node = nodes[item.node]
            args = _input_arg_shape(node.input_args, input_shape)
            out.statements.append(S.CallStmt(S.Call(S.Name(("Input",), node.span), _args(args, "Input"),
                                                    node.span), node.span))
        elif isinstance(item, ModelVal):
            raise EmitError("a model added to a Sequential (a nested model) is not supported", span,
                            "add its layers one by one instead")
        elif isinstance(item, Unknown):
            raise EmitError(f"cnnc cannot know this layer without running the script: {reason(item)}",
                            item.span or span)
        else:
            raise EmitError("Sequential takes layers; this is not a layer cnnc can follow", span)


def _declared_shape(m: ModelVal, input_shape) -> tuple[tuple, Span]:
    if m.build_shape is not None:
        v = m.build_shape
        if isinstance(v, (tuple, list)) and len(v) >= 2 and all(
                x is None or (isinstance(x, int) and not isinstance(x, bool)) for x in v):
            return tuple(v[1:]), m.build_span
        if input_shape is not None:
            return tuple(input_shape), m.build_span
        why = reason(v) if isinstance(v, Unknown) else f"build() got {shown(v)}"
        raise EmitError(f"the input shape is not known from the script: {why}", m.build_span,
                        INPUT_SHAPE_HELP)
    if m.data_shape is not None:
        return m.data_shape, m.data_span
    if input_shape is not None:
        return tuple(input_shape), m.span
    if m.kind == "subclassed":
        raise EmitError("this subclassed model's input shape is not known from the script",
                        m.span, "Keras builds it on the first data it meets (build(), fit() or a "
                        "call on an array of known shape); " + INPUT_SHAPE_HELP)
    raise EmitError("this Sequential model's input shape is not given in the script",
                    m.span, "Keras builds it from the data at its first fit(); "
                    "add input_shape= to the first layer, start with keras.Input(shape=...), "
                    "or " + INPUT_SHAPE_HELP)


def _tensor_list(v, what: str, span: Span) -> tuple[list[int], bool]:
    if isinstance(v, TensorVal):
        return [v.node], False
    if isinstance(v, dict):
        v = list(v.values())
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, TensorVal) for x in v):
        return [x.node for x in v], True
    bad = v if isinstance(v, Unknown) else next(
        (x for x in v if isinstance(x, Unknown)), None) if isinstance(v, (list, tuple)) else None
    if bad is not None:
        raise EmitError(f"cnnc cannot know the model's {what}: {reason(bad)}", bad.span or span,
                        *((INPUT_SHAPE_HELP,) if bad.data else ()))
    raise EmitError(f"the model's {what} must be tensors", span)


def _keras_class(cls: str) -> str:
    """The class Keras shows for a layer written under an alias (MaxPool2D is MaxPooling2D)."""
    from cnnc.analysis import kinds
    spec = kinds.lookup(cls)
    return spec.name if spec is not None else cls


def _given_name(layer: LayerVal) -> str | None:
    given = next((a.value for a in layer.args if a.keyword == "name"), None)
    return given if isinstance(given, str) else layer.keras_name


def _row(m: ModelVal, node: TNode, out: Emitted, names: dict) -> None:
    """The summary row a traced node belongs to: its custom layer's, or (in a
    subclassed model) its layer's own, the copies of a weightless layer with it."""
    if node.kind == "input" or (m.style is None and node.group is None):
        return
    name = node.keras_name if node.kind == "op" else _given_name(node.layer)
    if node.group is not None:
        row, cls, seq, span = node.group
        if out.row_owner.setdefault(row, (seq, cls)) != (seq, cls):
            raise EmitError(f"the name '{row}' is used 2 times in the model", span,
                            "Keras refuses it too: give each layer its own name=")
        out.groups[name] = (row, cls)
        if out.rank is not None:
            out.rank.setdefault(row, seq)
    elif m.style == "subclassed" and (node.kind == "op" or node.layer.hidden):
        # arithmetic and functions in call() are no layers of the model: a row without a
        # name, which the summary leaves out (groups.summary_rows)
        out.groups[name] = ("", "")
    elif m.style == "subclassed" and node.layer is not None:
        own = node.layer.copy_of or node.layer
        out.groups[name] = (_given_name(own), _keras_class(own.cls))
        out.rank[_given_name(own)] = own.seq


def _rows_apart(out: Emitted, layer_names: list, span: Span) -> None:
    """A custom layer's or nested model's row must not take the name of another layer
    (Keras: "The name ... is used 2 times in the model")."""
    rows = {row for row, _ in out.groups.values()}
    for name in layer_names:
        if name in rows and name not in out.groups:
            seq, cls = out.row_owner.get(name, (0, "?"))
            raise EmitError(f"the name '{name}' is used 2 times in the model: by a layer and by "
                            f"a {cls} called in it", span, "Keras refuses it too: give one of them "
                            "another name=")


def _functional(m: ModelVal, nodes: list[TNode], input_shape, out: Emitted) -> None:
    if m.style is not None:
        out.functional = False          # Keras shows Sequential and subclassed models so
        out.rank = {} if m.style == "subclassed" else None
    if m.outputs is None:
        raise EmitError("Model() needs its outputs, e.g. Model(inputs, outputs)", m.span)
    outs, outs_listed = _tensor_list(m.outputs, "outputs", m.span)
    ins, ins_listed = _tensor_list(m.inputs, "inputs", m.span) if m.inputs is not None else ([], False)
    needed: set[int] = set(ins)
    stack = list(outs)
    while stack:
        k = stack.pop()
        if k in needed and k not in ins:
            continue
        needed.add(k)
        stack.extend(i for i in nodes[k].inputs if i not in needed)
    names = {k: f"t{k}" for k in needed}
    final_names: dict[int, str] = {}      # node -> the name resolve will give it
    shared: dict[int, str] = {}
    per_layer: dict[int, int] = {}
    for k in needed:
        if nodes[k].layer is not None:
            per_layer[id(nodes[k].layer)] = per_layer.get(id(nodes[k].layer), 0) + 1
    for k in sorted(needed):
        node = nodes[k]
        target = names[k]
        if node.kind == "input":
            args = _input_arg_shape(node.input_args, input_shape)
            value = S.Call(S.Name(("Input",), node.span),
                           _args(args, "Input") + _keras_name(args, node.keras_name, node.span),
                           node.span)
        elif node.kind == "op":
            items = []
            tensors = iter(zip(node.inputs, node.operand_spans))
            order = ["num", "t"] if node.reverse else ["t", "num"] if node.constant is not None else \
                ["t"] * len(node.inputs)
            for kind in order:
                if kind == "t":
                    i, sp = next(tensors)
                    items.append(S.Name((names[i],), sp))
                else:
                    items.append(_number(node.constant, node.span))
            value = S.BinOp(node.op, tuple(items), node.span, node.keras_name)
        else:
            layer = node.layer
            call = layer_call(layer, out.warnings)   # a layer cnnc cannot follow says so first
            refs = [S.Name((names[i],), sp) for i, sp in zip(node.inputs, node.operand_spans)]
            if not refs:
                raise EmitError(f"{layer.cls} is called on no tensor cnnc knows", node.span)
            tensors = S.List(tuple(refs), node.span) if node.listed else refs[0]
            extra = _args(node.extra, layer.cls)
            if per_layer[id(layer)] > 1 or layer.uses > 1 and id(layer) in shared:
                var = shared.get(id(layer))
                if var is None:
                    var = layer.var or layer.cls.lower()
                    while any(v == var for v in shared.values()):
                        var += "_"
                    shared[id(layer)] = var
                    out.statements.append(S.Assign(var, layer.span, layer_call(layer, []), layer.span))
                value = S.Call(S.Name((var,), node.span),
                               (S.Arg(None, tensors, tensors.span),) + extra, node.span)
            else:
                value = S.Applied(call, (S.Arg(None, tensors, tensors.span),) + extra, node.span)
        out.statements.append(S.Assign(target, node.span, value, node.span))
        _row(m, node, out, final_names)
        final_names[k] = node.keras_name if node.kind == "op" else (
            _given_name(node.layer) if node.layer is not None else "")
    _rows_apart(out, [final_names[k] for k in sorted(needed) if nodes[k].kind != "input"], m.span)
    args = []
    if ins:
        refs = tuple(S.Name((names[i],), nodes[i].span) for i in ins)
        args.append(S.Arg("inputs", S.List(refs, m.span) if ins_listed else refs[0], m.span))
    refs = tuple(S.Name((names[i],), m.span) for i in outs)
    args.append(S.Arg("outputs", S.List(refs, m.span) if outs_listed else refs[0], m.span))
    out.statements.append(S.CallStmt(S.Call(S.Name(("Model",), m.span), tuple(args), m.span), m.span))
