"""The typed IR: one frozen node per layer, arguments checked and normalised.

The IR is a sequence today, but every phase asks `ModelIR.inputs_of(layer)`
for a layer's inputs instead of assuming "the previous line", so named
branches (Add, Concatenate) can come later without rewriting the phases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .compile_spec import CompileSpec, FitSpec
from .diagnostics import Span
from .kinds import KINDS, LayerKind

INPUT = "input"  # the name layers use to refer to the model input


@dataclass(frozen=True)
class Layer:
    kind: str                           # Keras class name, e.g. "Conv2D"
    name: str                           # Keras layer name, e.g. "conv2d_1"
    args: Mapping[str, Any]             # every argument, defaults filled, normalised
    span: Span
    inputs: tuple[str, ...]             # names of the tensors this layer reads
    arg_spans: Mapping[str, Span] = field(default_factory=dict)
    valid: bool = True                  # False when its arguments had errors
    index: int = 0

    @property
    def spec(self) -> LayerKind:
        return KINDS[self.kind]

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


@dataclass(frozen=True)
class ModelIR:
    name: str
    input_shape: tuple[int | None, ...] | None   # one sample, batch left out
    layers: tuple[Layer, ...]
    compile: CompileSpec | None = None
    fit: FitSpec | None = None
    path: str = "<string>"
    input_span: Span | None = None
    input_name: str = INPUT

    def layer(self, name: str) -> Layer:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)

    def inputs_of(self, layer: Layer) -> tuple[str, ...]:
        return layer.inputs

    @property
    def output(self) -> str:
        return self.layers[-1].name if self.layers else self.input_name
