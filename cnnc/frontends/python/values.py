"""What the evaluator's values are: Python constants stay Python values; these
classes stand for Keras objects, arrays of known shape, functions and what
cannot be known without running the script."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from cnnc.support.diagnostics import Span


@dataclass(frozen=True)
class Unknown:
    """A value cnnc cannot know without running the script; `why` says so."""

    why: str
    span: Span | None = None
    data: bool = False          # it comes from data (a shape would need --input-shape)


@dataclass(frozen=True)
class KerasRef:
    """A name in Keras's API: a module, a class or a function (`keras.layers.Conv2D`)."""

    path: tuple[str, ...]        # canonical: starts with 'keras'

    @property
    def last(self) -> str:
        return self.path[-1]


@dataclass(frozen=True)
class ModuleRef:
    """Some other module (numpy, matplotlib, ...) or a name in it."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class DatasetRef:
    name: str                    # 'mnist', 'cifar10', ...


@dataclass(frozen=True)
class ArrayVal:
    """An array whose shape is known (a Keras dataset, followed through reshapes)."""

    shape: tuple
    classes: int | None = None   # labels: how many classes they take
    dtype: str = "float32"


@dataclass(frozen=True)
class DataStream:
    """A tf.data pipeline (or a Keras directory loader): its elements' sample shapes."""

    element: Any                 # an ArrayVal per sample, or a tuple of them (x, y)
    batch: int | None = None


@dataclass
class ArgVal:
    keyword: str | None
    value: Any
    span: Span
    keyword_span: Span | None = None


@dataclass
class LayerVal:
    """A Keras layer object, created but maybe not yet called."""

    cls: str                             # Keras class name as imported (Conv2D, Convolution2D)
    args: list[ArgVal]
    span: Span
    name_span: Span
    written: tuple[str, ...] = ()        # the callee as written, for messages
    unsupported: str | None = None       # why cnnc cannot follow it (custom layer, Lambda)
    uses: int = 0
    var: str | None = None               # the variable it was first assigned to
    keras_name: str | None = None        # the name Keras gives it (numbered per session)
    custom: Any = None                   # the script's Layer subclass instance (InstanceVal)
    seq: int = 0                         # creation order (a subclassed model lists layers so)
    copy_of: Any = None                  # a weightless layer called again: the one it copies
    frozen: bool = False                 # `layer.trainable = False` (or its model's) was set
    hidden: bool = False                 # not a Keras layer (an activation function in call())
    fn: Any = None                       # a Lambda's function


@dataclass
class KerasObj:
    """Any other Keras object made by a call: an optimizer, a loss, an initializer."""

    path: tuple[str, ...]
    args: list[ArgVal]
    span: Span


@dataclass(frozen=True)
class TensorVal:
    node: int


@dataclass
class TNode:
    kind: str                            # 'input' | 'apply' | 'op'
    span: Span
    layer: LayerVal | None = None
    input_args: list[ArgVal] | None = None   # Input(...)'s arguments
    input_cls: str = "Input"
    inputs: list[int] = field(default_factory=list)
    listed: bool = False                 # the tensors were given as a list
    op: str = ""                         # arith op for 'op' nodes
    constant: Any = None                 # the number of `x * 0.5`
    reverse: bool = False                # the number came first: `1 - x`
    operand_spans: list[Span] = field(default_factory=list)
    extra: list = field(default_factory=list)    # other arguments of the layer call
    keras_name: str | None = None        # an Input's or operation's name (numbered as Keras does)
    group: tuple | None = None           # (row, class, seq, span): made in a custom layer or nested model


@dataclass
class CallRecord:
    """model.compile(...)/model.fit(...) as called."""

    args: list[ArgVal]
    span: Span
    name_span: Span


@dataclass
class ModelVal:
    kind: str                            # 'sequential' | 'functional' | 'subclassed'
    span: Span
    var: str | None = None
    var_top: bool = False                # var is a module-level name
    name: Any = None                     # the name= value
    name_span: Span | None = None
    items: list = field(default_factory=list)      # sequential: LayerVal | TensorVal | ModelVal | Unknown
    item_spans: list = field(default_factory=list)
    inputs: Any = None                   # functional: TensorVal or a list of them
    outputs: Any = None
    compile: CallRecord | None = None
    fit: CallRecord | None = None
    build_shape: Any = None              # model.build((None, 28, 28, 1))
    build_span: Span | None = None
    data_shape: Any = None               # the shape of x in model.fit(x, ...)
    data_span: Span | None = None
    problems: list[tuple[str, Span | None, tuple[str, ...]]] = field(default_factory=list)
    used_as_layer: bool = False
    instance: Any = None                 # subclassed: the InstanceVal its methods see as self
    keras_name: str | None = None        # the name Keras gives it unnamed (numbered per session)
    uses: int = 0                        # times called as a layer (a nested model)
    application: str | None = None       # a Keras application (its class)
    pending: Any = None                  # an application built on the first tensor it meets
    frozen: bool = False                 # `model.trainable = False` was set
    prebuilt: Any = None                 # a Sequential's layers called already (seq_graph)
    style: str | None = None             # traced into a graph: 'sequential' | 'subclassed'


@dataclass
class FuncVal:
    node: ast.FunctionDef | ast.Lambda | ast.AsyncFunctionDef
    closure: Any                         # the Scope it was defined in
    defaults: list
    kw_defaults: list
    name: str


@dataclass
class PartialVal:
    func: Any
    args: list[ArgVal]


@dataclass
class ClassVal:
    name: str
    kind: str                            # 'layer' | 'model' | 'other'
    node: ast.ClassDef
    span: Span
    closure: Any = None
    bases: tuple = ()                    # the script's classes it derives from
    attrs: dict = field(default_factory=dict)    # class-level assignments (`SIZE = 28`)


@dataclass
class InstanceVal:
    """An instance of a class of the script (a subclassed model while __init__ runs)."""

    cls: ClassVal
    attrs: dict = field(default_factory=dict)
    layer: Any = None                    # a custom Layer: the LayerVal standing for it
    model: Any = None                    # a subclassed Model: its ModelVal


@dataclass(frozen=True)
class SuperRef:
    """`super()` inside a method of a script's class."""

    obj: Any


@dataclass(frozen=True)
class BoundMethod:
    obj: Any
    name: str
    span: Span | None = None


def shown(v) -> str:
    """A script's value in a message: Python's repr for plain values, else its kind."""
    plain = (int, float, str, bool, type(None))
    if isinstance(v, plain) or (isinstance(v, (tuple, list)) and all(isinstance(x, plain) for x in v)):
        return repr(v)[:80]
    if isinstance(v, (tuple, list)):
        return "a sequence of values cnnc cannot show"
    kinds = {TensorVal: "a tensor", LayerVal: "a layer", ModelVal: "a model", ArrayVal: "an array",
             Unknown: "a value cnnc cannot know", KerasObj: "a Keras object"}
    return kinds.get(type(v), f"a {type(v).__name__}")
