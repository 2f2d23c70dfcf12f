"""What the evaluator's values are: Python's plain values (numbers, strings, tuples,
lists, dicts, sets, ranges, slices, None) stay Python values; these classes stand
for Keras objects, arrays of known shape, the script's functions, classes and
instances, and what cannot be known without running the script (`Unknown`).

Mutable values compare and hash by identity (eq=False), as Python objects do: a
layer in a list, a model as a dict key, `layer is other` all mean what Python means.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from cnnc.support.diagnostics import Span


def python_error(e: BaseException) -> str:
    """Python's own message for an operation that fails, as a user reads it: Python names
    None's type 'NoneType' (`None ** 2`: "... 'NoneType' and 'int'"); at most 120 characters."""
    text = str(e).replace("'NoneType'", "None").replace("NoneType", "None")
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass(frozen=True)
class Unknown:
    """A value cnnc cannot know without running the script; `why` says so."""

    why: str
    span: Span | None = None
    data: bool = False          # it comes from data (a shape would need --input-shape)
    name: str | None = None     # what the source calls it: 'args.arch', 'num_classes'
    test: tuple | None = None   # a comparison (name, value, equal): `args.arch == 'unet'`


@dataclass(frozen=True)
class KerasRef:
    """A name in Keras's API: a module, a class or a function (`keras.layers.Conv2D`)."""

    path: tuple[str, ...]        # canonical: starts with 'keras'
    tf: bool = field(default=False, compare=False)   # through tf.keras (its backend keeps Keras 2's functions)

    @property
    def last(self) -> str:
        return self.path[-1]


@dataclass(frozen=True)
class ModuleRef:
    """Some other module (numpy, matplotlib, ...) or a name in it."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class Builtin:
    """A pure function or type of Python or its standard library that cnnc runs
    itself (`len`, `list`, `functools.reduce`, `math.ceil`, `operator.add`)."""

    name: str
    bound: tuple = ()            # arguments given ahead (itemgetter(1), a decorator's own)


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


@dataclass(eq=False)
class ArgVal:
    keyword: str | None
    value: Any
    span: Span
    keyword_span: Span | None = None


@dataclass(eq=False)
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
    fn: Any = None                       # a Lambda's (or an Activation's) function
    shown_cls: str | None = None         # the class its row shows, when not cls


@dataclass(eq=False)
class KerasObj:
    """Any other Keras object made by a call: an optimizer, a loss, an initializer."""

    path: tuple[str, ...]
    args: list[ArgVal]
    span: Span


@dataclass(frozen=True)
class TensorVal:
    node: int


@dataclass(eq=False)
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


@dataclass(eq=False)
class CallRecord:
    """model.compile(...)/model.fit(...) as called."""

    args: list[ArgVal]
    span: Span
    name_span: Span


@dataclass(eq=False)
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
    offered: str | None = None           # made by a call cnnc made itself (`unet()`): that call
    traced_alone: bool = False           # traced on its own after running as a nested model


@dataclass(eq=False)
class FuncVal:
    node: ast.FunctionDef | ast.Lambda | ast.AsyncFunctionDef
    closure: Any                         # the Scope it was defined in
    defaults: list
    kw_defaults: list
    name: str
    owner: Any = None                    # the class whose body defined it (super())
    options: dict | None = None          # click's options: parameter -> default


@dataclass(eq=False)
class PartialVal:
    func: Any
    args: list[ArgVal]


@dataclass(frozen=True)
class StaticMethod:
    func: Any


@dataclass(frozen=True)
class ClassMethod:
    func: Any


@dataclass(frozen=True)
class Property:
    fget: Any
    fset: Any = None


@dataclass(eq=False)
class ClassVal:
    name: str
    kind: str                            # 'layer' | 'model' | 'other' | 'enum' | ...
    node: ast.ClassDef | None
    span: Span
    closure: Any = None
    bases: tuple = ()                    # the script's classes it derives from (its MRO, less itself)
    attrs: dict = field(default_factory=dict)    # the class body's names (methods, `SIZE = 28`)
    fields: list | None = None           # a dataclass's or NamedTuple's (name, default) in order
    tuple_like: bool = False             # a namedtuple: indexing and unpacking give its fields


@dataclass(eq=False)
class InstanceVal:
    """An instance of a class of the script (a subclassed model while __init__ runs)."""

    cls: ClassVal
    attrs: dict = field(default_factory=dict)
    layer: Any = None                    # a custom Layer: the LayerVal standing for it
    model: Any = None                    # a subclassed Model: its ModelVal


@dataclass(eq=False)
class ObjectVal:
    """A plain object of the standard library with attributes: an argparse parser or
    namespace, a types.SimpleNamespace, an exception, a logger."""

    kind: str
    attrs: dict = field(default_factory=dict)


@dataclass(eq=False)
class IterVal:
    """An iterator over known items (iter(), a generator's yields, zip and map)."""

    items: list
    pos: int = 0


@dataclass(frozen=True)
class Endless:
    """An iterator that never ends (itertools.count, cycle, repeat without times): zip,
    map and islice take what they need of it; a loop over it alone is not followed."""

    kind: str                            # 'count' | 'cycle' | 'repeat'
    start: Any = 0
    step: Any = 1
    items: tuple = ()

    def take(self, n: int) -> list:
        if self.kind == "count":
            return [self.start + i * self.step for i in range(n)]
        if self.kind == "cycle":
            return [self.items[i % len(self.items)] for i in range(n)] if self.items else []
        return [self.start] * n


@dataclass(eq=False)
class ModuleVal:
    """One of the script's own modules (a sibling file or a package), as imported."""

    name: str
    scope: Any


@dataclass(frozen=True)
class SuperRef:
    """`super()` inside a method of a script's class."""

    obj: Any
    start: Any = None                    # the class after which the lookup starts


@dataclass(frozen=True)
class Method:
    """A function of the script's class bound to an instance (`self.width`)."""

    func: Any
    obj: Any


@dataclass(frozen=True)
class BoundMethod:
    obj: Any
    name: str
    span: Span | None = None


_KINDS = {TensorVal: "a tensor", LayerVal: "a layer", ModelVal: "a model", ArrayVal: "an array",
          Unknown: "a value cnnc cannot know", KerasObj: "a Keras object", KerasRef: "a Keras name",
          ModuleRef: "a module", Builtin: "a Python function", FuncVal: "a function",
          PartialVal: "a function", ClassVal: "a class", InstanceVal: "an object",
          ObjectVal: "an object", IterVal: "an iterator", ModuleVal: "a module",
          BoundMethod: "a method", Method: "a method", DataStream: "a data pipeline", DatasetRef: "a dataset module",
          SuperRef: "super()", StaticMethod: "a function", ClassMethod: "a function",
          Property: "a property", ArgVal: "a value", TNode: "a tensor", CallRecord: "a call"}


def describe(v) -> str:
    """What a value is, in words for a message (never the evaluator's class names)."""
    if isinstance(v, bool):
        return "a boolean"
    if v is None:
        return "None"
    if isinstance(v, (int, float, complex)):
        return "a number"
    if isinstance(v, (str, bytes)):
        return "a string"
    if isinstance(v, (tuple, list)):
        return "a tuple" if isinstance(v, tuple) else "a list"
    if isinstance(v, dict):
        return "a dict"
    if isinstance(v, (set, frozenset)):
        return "a set"
    if isinstance(v, FuncVal):
        return "a function" if v.name == "<lambda>" else f"the function {v.name}()"
    if isinstance(v, ClassVal):
        return f"the class {v.name}"
    if isinstance(v, InstanceVal):
        return f"a {v.cls.name} object"
    return _KINDS.get(type(v), "a Python value")


def shown(v) -> str:
    """A script's value in a message: Python's repr for small plain values, else its kind."""
    plain = (int, float, str, bool, type(None))
    if isinstance(v, plain) or (isinstance(v, (tuple, list)) and len(v) <= 20 and all(
            isinstance(x, plain) for x in v)):
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 10 ** 30:
            return "a very large number"
        return repr(v)[:80]
    if isinstance(v, (tuple, list)):
        return "a sequence of values cnnc cannot show"
    return describe(v)
