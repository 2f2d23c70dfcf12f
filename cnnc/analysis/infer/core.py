"""What shape inference produces: Flow (what reaches a layer), Weight, LayerInfo,
Analysis, and ShapeError (a rule's refusal, with its arithmetic)."""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from cnnc.analysis import shapes as sh
from cnnc.analysis.arguments import Initializer, Regularizer
from cnnc.analysis.constraints import Constraints
from cnnc.analysis.ir import Layer, ModelIR
from cnnc.analysis.symbolic import dim, dims_of, keras_view
from cnnc.support.diagnostics import Span

BYTES_PER_VALUE = 4  # float32


class ShapeError(Exception):
    def __init__(self, message: str, span: Span | None = None, *notes: str):
        super().__init__(message)
        self.message = message
        self.span = span
        self.notes = [n for n in notes if n]


@dataclass(frozen=True)
class Weight:
    name: str                    # Keras weight name: kernel, bias, gamma, ...
    shape: tuple[int, ...]
    trainable: bool
    initializer: Initializer
    regularizer: Regularizer | None = None   # its L1/L2 penalty in training

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Flow:
    """What a layer receives: the sample shape and, while the tensor is still
    an image, the receptive field and jump of each spatial axis."""

    shape: tuple[int | None, ...]
    rf: tuple[int, ...] | None = None
    jump: tuple[int, ...] | None = None


@dataclass(frozen=True)
class LayerInfo:
    layer: Layer
    input: Flow
    output: Flow
    weights: tuple[Weight, ...] = ()
    macs: int | None = 0
    warnings: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), compare=False)
    inputs: tuple[Flow, ...] = ()       # every input of a merge; () means (input,)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def input_flows(self) -> tuple[Flow, ...]:
        return self.inputs or (self.input,)

    # Keras's view of the shapes: None where a size is open. The open sizes themselves,
    # as expressions, are in the flows (`info.output.shape`).

    @property
    def input_shapes(self) -> tuple[tuple[int | None, ...], ...]:
        return tuple(keras_view(f.shape) for f in self.input_flows)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return keras_view(self.input.shape)

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        return keras_view(self.output.shape)

    @property
    def params(self) -> int:
        return sum(w.size for w in self.weights)

    @property
    def trainable_params(self) -> int:
        return sum(w.size for w in self.weights if w.trainable)

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params

    @property
    def activation_bytes(self) -> int | None:
        n = sh.numel(self.output.shape)
        return None if n is None else n * BYTES_PER_VALUE


@dataclass(frozen=True)
class Analysis:
    model: ModelIR
    infos: tuple[LayerInfo, ...]      # the model's layers, in model order
    complete: bool          # False when some layer's shape could not be inferred
    # what the open dimensions must satisfy (their sets of working sizes, conditions)
    constraints: Constraints = field(default_factory=Constraints, compare=False)
    open_inputs: tuple = ()           # the inputs' shapes with their open sizes named

    @cached_property
    def _by_name(self) -> dict[str, LayerInfo]:
        return {i.name: i for i in self.infos}

    def info(self, name: str) -> LayerInfo:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(name) from None

    def shape_of(self, tensor: str) -> tuple[int | None, ...] | None:
        """The sample shape of a node's tensor (an input or a layer), None if unknown;
        Keras's view (None where a size is open)."""
        node = self.model.input_node(tensor)
        if node is not None:
            return node.shape
        info = self._by_name.get(tensor)
        return info.output_shape if info is not None else None

    def open_shape_of(self, tensor: str) -> tuple | None:
        """The sample shape with its open sizes as expressions."""
        for node, shape in zip(self.model.inputs, self.open_inputs or ()):
            if node.name == tensor:
                return shape
        info = self._by_name.get(tensor)
        return info.output.shape if info is not None else None

    @property
    def is_open(self) -> bool:
        """Whether some size is not fixed yet (an open dimension)."""
        return bool(self.open_dims)

    @property
    def open_dims(self) -> dict[str, str]:
        """The open dimensions, each with where it comes from, in the source's order."""
        out = dict(self.model.dims)
        for name in self.constraints.dims:
            out.setdefault(name, "")
        return out

    def size_problems(self, samples: dict[str, tuple[int, ...]]) -> list[str]:
        """Why the model does not work for these input sample shapes (input name -> shape
        without the batch axis): each open size that takes a value outside the sizes that
        work, and each check those values break. Empty when they work."""
        values: dict[str, int] = {}
        for node, shape in zip(self.model.inputs, self.open_inputs or ()):
            got = samples.get(node.name)
            if got is None or len(got) != len(shape):
                continue
            for size, n in zip(shape, got):
                named = dims_of(size)
                if len(named) == 1 and size == dim(*_dim_args(next(iter(named.values())))):
                    values.setdefault(next(iter(named)), n)
        out = []
        for name, v in values.items():
            s = self.constraints.sets.get(name)
            if s is not None and v not in s:
                out.append(f"{name} = {v}: the model works for {name}: {s.describe()}")
        for check in self.constraints.failures(values):
            if len(check.dims()) > 1 or not out:
                out.append(f"{check.layer} (line {check.line}) needs {check.text}")
        return out

    def unfixed(self) -> dict[str, list[str]]:
        """What cannot be built while sizes are open: for each open dimension, the weights
        whose shape and the layer arguments whose value depend on it ("dense_1/kernel
        (128, num_classes)"). Tensor sizes may stay open: the data decides them."""
        out: dict[str, list[str]] = {}
        for info in self.infos:
            for w in info.weights:
                for name in set().union(*(dims_of(n) for n in w.shape)):
                    shape = "(" + ", ".join(str(n) for n in w.shape) + ")"
                    out.setdefault(name, []).append(f"'{info.name}/{w.name}' {shape}")
            for key, value in info.layer.args.items():
                values = value if isinstance(value, tuple) else (value,)
                for name in set().union(*(dims_of(v) for v in values)):
                    shown = ", ".join(map(str, values)) if isinstance(value, tuple) else str(value)
                    out.setdefault(name, []).append(f"'{info.name}' {key}={shown}")
        return out

    @property
    def output_shapes(self) -> tuple[tuple[int | None, ...] | None, ...]:
        return tuple(self.shape_of(o) for o in self.model.outputs)

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every weight the model has, in Keras order: "layer/weight" -> shape."""
        return {f"{info.name}/{w.name}": w.shape for info in self.infos for w in info.weights}

    @property
    def total_params(self) -> int:
        return sum(i.params for i in self.infos)

    @property
    def trainable_params(self) -> int:
        return sum(i.trainable_params for i in self.infos)

    @property
    def non_trainable_params(self) -> int:
        return sum(i.non_trainable_params for i in self.infos)

    @property
    def total_macs(self) -> int | None:
        macs = [i.macs for i in self.infos]
        return None if any(m is None for m in macs) else sum(macs)

    @property
    def output_shape(self) -> tuple[int | None, ...] | None:
        """The (first) output's sample shape."""
        if self.model.outputs:
            return self.shape_of(self.model.outputs[0])
        return self.infos[-1].output_shape if self.infos else self.model.input_shape


Rule = Callable[[Layer, Flow], LayerInfo]


def _dim_args(d) -> tuple:
    return d.name, d.none, d.auto

# The constraints of the model being inferred: rules record the size checks that
# depend on open dimensions here (common.need), instead of deciding them.
CONSTRAINTS: ContextVar[Constraints | None] = ContextVar("constraints", default=None)


def input_flow(shape: tuple[int | None, ...]) -> Flow:
    spatial = len(shape) - 1
    if spatial < 1:
        return Flow(tuple(shape))
    return Flow(tuple(shape), (1,) * spatial, (1,) * spatial)
