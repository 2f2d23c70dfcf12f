"""The typed IR: a DAG of frozen nodes, arguments checked and normalised.

A model has input nodes (`InputNode`) and layer nodes (`Layer`). Every tensor
is named after the node that makes it (Keras's layer names), so a layer's
`inputs` are node names. `ModelIR.layers` holds the layers that reach an
output, in Keras's order (topological: every layer after its inputs). Phases
ask `ModelIR.inputs_of(layer)` for a layer's inputs and never assume "the
previous line".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Mapping

from cnnc.analysis.compile_spec import CompileSpec, FitSpec
from cnnc.analysis.kinds import KINDS, OP_KINDS, LayerKind
from cnnc.support.diagnostics import Span


@dataclass(frozen=True)
class Layer:
    kind: str                           # Keras class name, e.g. "Conv2D"
    name: str                           # Keras layer name, e.g. "conv2d_1"
    args: Mapping[str, Any]             # every argument, defaults filled, normalised
    span: Span
    inputs: tuple[str, ...]             # names of the nodes whose tensors this layer reads
    arg_spans: Mapping[str, Span] = field(default_factory=dict)
    valid: bool = True                  # False when its arguments had errors
    index: int = 0                      # creation order (statement order)
    input_spans: tuple[Span, ...] = ()  # where each input tensor was named in the call
    is_op: bool = False                 # arithmetic on tensors (Keras: an operation, not a layer)
    group: str | None = None            # the summary row it is shown under (custom layer, nested model)

    @property
    def spec(self) -> LayerKind:
        return OP_KINDS[self.kind] if self.is_op else KINDS[self.kind]

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def rank(self) -> int | None:
        return self.spec.rank

    @property
    def trainable(self) -> bool:
        return bool(self.args.get("trainable", True))

    def __getitem__(self, key: str) -> Any:
        return self.args[key]

    def span_of(self, arg: str) -> Span:
        """Where an argument was written, or the whole call if it was defaulted."""
        return self.arg_spans.get(arg, self.span)

    def input_span(self, i: int) -> Span:
        return self.input_spans[i] if i < len(self.input_spans) else self.span


@dataclass(frozen=True)
class InputNode:
    """A model input (Keras's InputLayer): one sample's shape, batch left out. `shape`
    is Keras's view (None where the size is open); `open`, when the source names some
    of its open sizes (`input (H, W, 3)`, a size taken from data), the shape with those
    as expressions (symbolic.py)."""

    name: str
    shape: tuple[int | None, ...]
    span: Span | None = None
    kind: str = "InputLayer"
    open: tuple | None = None


@dataclass(frozen=True)
class ModelIR:
    name: str
    inputs: tuple[InputNode, ...]
    layers: tuple[Layer, ...]
    outputs: tuple[str, ...] = ()
    compile: CompileSpec | None = None
    fit: FitSpec | None = None
    path: str = "<string>"
    functional: bool = False        # written with tensors (Keras's functional API)
    layer_order: tuple[str, ...] = ()   # Keras's model.layers order, InputLayers included
    detached: tuple[Layer, ...] = ()    # called on tensors but reaching no output: checked only
    # Summary rows that stand for several layers (a custom Layer subclass or a nested
    # model, shown as Keras shows it: one row): row name -> the class shown. row_order is Keras's
    # model.layers with those rows in place of their layers (empty: layer_order).
    groups: Mapping[str, str] = field(default_factory=dict)
    row_order: tuple[str, ...] = ()
    # The open dimensions (sizes not fixed yet), each with where it comes from
    # ("line 3", "the height of input 'input_layer' (None)", "len(class_names), line 12").
    dims: Mapping[str, str] = field(default_factory=dict)
    defined: tuple[str, ...] = ()       # the sizes --define gave a value (no longer open)

    # --- the single-input, single-output view most commands use ------------------

    @property
    def input_shape(self) -> tuple[int | None, ...] | None:
        return self.inputs[0].shape if self.inputs else None

    @property
    def input_span(self) -> Span | None:
        return self.inputs[0].span if self.inputs else None

    @property
    def input_name(self) -> str:
        return self.inputs[0].name if self.inputs else "input_layer"

    @property
    def output(self) -> str:
        if self.outputs:
            return self.outputs[0]
        return self.layers[-1].name if self.layers else self.input_name

    @property
    def is_graph(self) -> bool:
        """More than a chain: several inputs or outputs, or a layer with several inputs."""
        return (len(self.inputs) > 1 or len(self.outputs) > 1
                or any(len(l.inputs) != 1 for l in self.layers))

    # --- the graph ------------------------------------------------------------------

    @cached_property
    def _by_name(self) -> dict[str, Layer]:
        return {l.name: l for l in self.layers}

    @cached_property
    def consumers(self) -> dict[str, tuple[str, ...]]:
        """For each node, the layers that read its tensor (in model order)."""
        out: dict[str, list[str]] = {n.name: [] for n in self.inputs}
        for l in self.layers:
            out.setdefault(l.name, [])
            for src in l.inputs:
                out.setdefault(src, []).append(l.name)
        return {k: tuple(v) for k, v in out.items()}

    def layer(self, name: str) -> Layer:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(name) from None

    @cached_property
    def _all_by_name(self) -> dict[str, Layer]:
        return {l.name: l for l in (*self.layers, *self.detached)}

    def find(self, name: str) -> Layer | None:
        """The layer named `name`, also among the detached ones; None if there is none."""
        return self._all_by_name.get(name)

    def inputs_of(self, layer: Layer) -> tuple[str, ...]:
        return layer.inputs

    def input_node(self, name: str) -> InputNode | None:
        return next((n for n in self.inputs if n.name == name), None)

    def with_input_shapes(self, shapes: list[tuple[int | None, ...]]) -> "ModelIR":
        """The same model with other input shapes (the ONNX verifier fills unknown sizes)."""
        nodes = tuple(replace(n, shape=tuple(s), open=None) for n, s in zip(self.inputs, shapes))
        return replace(self, inputs=nodes)
