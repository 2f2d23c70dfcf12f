"""The NumPy reference network: a checked model's layers run forward and backward.

`Network(analysis, weights)` builds one `layers.LAYERS[family]` object per
layer. Weights stay in the dict passed in (keys "layer/weight", Keras layouts);
optimizers update it in place and the next forward sees the new values.
Computation happens in the dtype of the input: float32 normally, float64 for
finite-difference gradient checks (weights are cast to it).
"""

from __future__ import annotations

import numpy as np

from .. import shapes as sh
from ..diagnostics import UsageError
from ..infer import Analysis
from .fusion import plan
from .layers import LAYERS, Layer

Array = np.ndarray


def check_input(x, analysis: Analysis) -> Array:
    """x as a C-contiguous float32 array (batch, *input_shape); UsageError naming
    the expected and received shapes if it does not fit."""
    expected = tuple(analysis.model.input_shape or ())
    want = sh.fmt_shape(expected)
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise UsageError(f"input data cannot be read as an array ({e}); the model expects {want}") from None
    if arr.dtype.kind not in "fiub":
        raise UsageError(f"input data has dtype {arr.dtype}, expected numbers of shape {want}")
    got = tuple(arr.shape)
    fits = len(got) == len(expected) + 1 and all(e is None or e == g for e, g in zip(expected, got[1:]))
    if not fits:
        notes = []
        if len(got) == len(expected) and got == tuple(e for e in expected):
            notes.append("it looks like a single sample: add a batch axis, e.g. x[None]")
        elif len(got) == len(expected) and expected and expected[-1] == 1:
            notes.append("the model expects a channel axis: add one, e.g. x[..., None]")
        raise UsageError(f"input data has shape {_fmt(got)}, the model '{analysis.model.name}' "
                         f"expects {want} (batch first)", notes)
    return np.ascontiguousarray(arr, dtype=np.float32)


def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _check_weights(weights: dict[str, Array], analysis: Analysis) -> None:
    from ..weights import WeightsError, expected
    problems = [f"missing '{k}' {shape}" if k not in weights else
                f"'{k}' has shape {tuple(np.shape(weights[k]))}, the model needs {shape}"
                for k, shape in expected(analysis).items()
                if k not in weights or tuple(np.shape(weights[k])) != tuple(shape)]
    if problems:
        raise WeightsError(f"weights do not fit model '{analysis.model.name}'", problems)


class Network:
    """Forward (inference or training) and backward of a checked, sequential model."""

    def __init__(self, analysis: Analysis, weights: dict[str, Array]):
        if not analysis.complete:
            raise ValueError("the model has shape errors; the reference network needs a complete analysis")
        _check_weights(weights, analysis)
        self.analysis = analysis
        self.weights = weights
        self.layers: list[Layer] = [LAYERS[info.layer.family](info) for info in analysis.infos]
        self.output_activation: str = self.layers[-1].activation if self.layers else "linear"
        self.steps = plan(self.layers)      # what actually runs: some layer pairs fused
        self._trained_forward = False
        self.input_grad: Array | None = None

    def forward(self, x: Array, training: bool = False,
                rng: np.random.Generator | None = None) -> Array:
        """Output of the whole stack. training=True applies dropout (masks drawn from
        `rng`), uses batch statistics in BatchNormalization (updating its moving
        statistics) and keeps what `backward` needs."""
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float32)
        x = np.ascontiguousarray(x)
        if training and rng is None:
            rng = np.random.default_rng()
        for step in self.steps:
            x = step.forward(x, self.weights, training, rng)
        self._trained_forward = training
        return x

    def backward(self, dy: Array, skip_output_activation: bool = False, *,
                 input_grad: bool = False) -> dict[str, Array]:
        """Gradients of every trainable weight (same shapes as the weights), after a
        forward(training=True). With skip_output_activation=True, dy is the gradient
        with respect to the output layer's pre-activation. With input_grad=True the
        gradient with respect to the network's input is left in `self.input_grad`
        (skipped otherwise: nothing upstream needs it during training)."""
        if not self._trained_forward:
            raise RuntimeError("Network.backward needs a forward(training=True) first")
        dy = np.asarray(dy)
        grads: dict[str, Array] = {}
        last = len(self.steps) - 1
        for i in range(last, -1, -1):
            dy, g = self.steps[i].backward(dy, self.weights,
                                            skip_activation=skip_output_activation and i == last,
                                            need_dx=input_grad or i > 0)
            grads.update(g)
        self.input_grad = dy if input_grad else None
        order = [f"{info.name}/{w.name}" for info in self.analysis.infos for w in info.weights]
        return {k: grads[k] for k in order if k in grads}

    def predict(self, x: Array, batch_size: int = 32) -> Array:
        """Inference-mode forward pass in chunks of `batch_size` samples."""
        x = np.asarray(x)
        if batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {batch_size}")
        if len(x) == 0:
            return self.forward(x)
        parts = [self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(parts, axis=0)
