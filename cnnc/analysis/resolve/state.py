"""What names stand for while a file is resolved: nodes being built, bindings, the state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnc.analysis.arguments import boolean, must_be, optional, positive_int, shape, string
from cnnc.analysis.compile_spec import CompileSpec, FitSpec
from cnnc.analysis.ir import Layer
from cnnc.analysis.kinds import Param
from cnnc.language import syntax as S
from cnnc.support.diagnostics import Reporter, Span

_INPUT_PARAMS = (
    Param("shape", shape, None),
    Param("batch_size", optional(positive_int), None),
    Param("dtype", must_be(None, "float32", why="cnnc computes in float32"), None),
    Param("sparse", must_be(None, False, why="sparse inputs are not supported"), None),
    Param("batch_shape", shape, None),
    Param("name", optional(string), None),
    Param("tensor", must_be(None, why="not meaningful in a .cnn file"), None),
    Param("optional", boolean, False),
    Param("ragged", must_be(None, False, why="ragged inputs are not supported"), None),
    Param("input_tensor", must_be(None, why="not meaningful in a .cnn file"), None),
)


_MODEL_PARAMS = (
    Param("inputs", lambda v, name: v, None),
    Param("outputs", lambda v, name: v, None),
    Param("name", optional(string), None),
    Param("trainable", must_be(True, why="freeze layers one by one with trainable=False"), True),
)


_SEQUENTIAL = (
    Param("layers", lambda v, name: v, None),
    Param("trainable", must_be(True, why="freeze layers one by one with trainable=False"), True),
    Param("name", optional(string), None),
)


_STATEMENTS = ("compile", "fit", "Input", "InputLayer", "Model", "Sequential")


_IGNORED_METHODS = ("summary", "build")


_MODEL_CLASSES = ("Model", "Functional")


_INPUT_CLASSES = ("Input", "InputLayer")


_MODULES = ("keras", "layers", "tf", "tensorflow", "models", "optimizers", "losses")


_INPUT_BASE = "input_layer"


@dataclass
class _Node:
    """A node being built: an input or a layer (not yet named)."""

    id: int
    span: Span
    layer: Layer | None = None            # None for an input
    shape: tuple | None = None            # inputs: the sample shape
    name: str = ""                        # explicit name=, or the Keras name once given
    inputs: list[int] = field(default_factory=list)
    input_spans: list[Span] = field(default_factory=list)
    applied: bool = False                 # layers: called on tensors (or chained)
    seq: int = -1                         # order in which its tensor came to exist
    var: str | None = None                # the variable of a layer object (`conv = Conv2D(...)`)


@dataclass(frozen=True)
class _Tensor:
    node: int


@dataclass(frozen=True)
class _LayerObject:
    node: int


@dataclass(frozen=True)
class _ModelRef:
    span: Span


@dataclass(frozen=True)
class _Const:
    value: S.Value


class _State:
    def __init__(self, rep: Reporter, sizes: dict[str, int] | None = None):
        self.rep = rep
        self.sizes = dict(sizes or {})         # --define: open dimensions given a value
        self.dims: dict[str, str] = {}         # open dimension -> where it comes from
        self.name: str | None = None
        self.name_span: Span | None = None
        self.nodes: list[_Node] = []
        self.vars: dict[str, Any] = {}
        self.current: int | None = None       # the tensor a bare layer line continues from
        self.declared_input: int | None = None   # the `input (...)` statement's node
        self.compile: CompileSpec | None = None
        self.compile_span: Span | None = None
        self.fit: FitSpec | None = None
        self.fit_span: Span | None = None
        self.aliases: dict[str, str] = {}   # from-import aliases: MP -> MaxPooling2D
        self.functional = False
        self.model_call: tuple[list[int] | None, list[int] | None, Span] | None = None
        self.no_input_reported = False
        self.seq = 0

    def add_node(self, node: _Node) -> _Node:
        self.nodes.append(node)
        return node

    def produce(self, node: _Node) -> None:
        """node's tensor now exists: it is the current tensor."""
        node.seq = self.seq
        self.seq += 1
        self.current = node.id


_MISSING = object()
