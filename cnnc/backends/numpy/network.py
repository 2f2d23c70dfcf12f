"""The NumPy reference network: a checked model's layers run forward and backward.

`Network(analysis, weights)` builds one `registry.LAYERS[family]` object per
layer. Weights stay in the dict passed in (keys "layer/weight", Keras layouts);
optimizers update it in place and the next forward sees the new values.
Computation happens in the dtype of the input: float32 normally, float64 for
finite-difference gradient checks (weights are cast to it).
"""

from __future__ import annotations

import numpy as np

from cnnc.analysis import shapes as sh
from cnnc.analysis.infer import Analysis
from cnnc.backends.numpy.fusion import plan
from cnnc.backends.numpy.layers import Layer
from cnnc.backends.numpy.registry import LAYERS
from cnnc.support.diagnostics import UsageError

Array = np.ndarray


def check_input(x, analysis: Analysis, index: int = 0) -> Array:
    """x as a C-contiguous float32 array (batch, *input_shape) for the model's input
    `index`; UsageError naming the expected and received shapes if it does not fit."""
    inputs = analysis.model.inputs
    expected = tuple(inputs[index].shape) if index < len(inputs) else ()
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
        which = f" for its input '{inputs[index].name}'" if len(inputs) > 1 else ""
        raise UsageError(f"input data has shape {_fmt(got)}, the model '{analysis.model.name}' "
                         f"expects {want}{which} (batch first)", notes)
    if analysis.is_open and index < len(inputs):
        problems = analysis.size_problems({inputs[index].name: got[1:]})
        if problems:
            raise UsageError(f"input data of shape {_fmt(got)} does not fit model "
                             f"'{analysis.model.name}' at that size", problems)
    return np.ascontiguousarray(arr, dtype=np.float32)


def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _check_weights(weights: dict[str, Array], analysis: Analysis) -> None:
    from cnnc.support.weights import WeightsError
    problems = [f"missing '{k}' {shape}" if k not in weights else
                f"'{k}' has shape {tuple(np.shape(weights[k]))}, the model needs {shape}"
                for k, shape in analysis.weight_shapes().items()
                if k not in weights or tuple(np.shape(weights[k])) != tuple(shape)]
    if problems:
        raise WeightsError(f"weights do not fit model '{analysis.model.name}'", problems)


class _Step:
    """One thing the network runs: a layer (or a fused pair) with the tensors it reads
    and the tensor it makes."""

    __slots__ = ("run", "sources", "out", "multi")

    def __init__(self, run, sources: tuple[str, ...], out: str, multi: bool):
        self.run, self.sources, self.out, self.multi = run, sources, out, multi


class Network:
    """Forward (inference or training) and backward of a checked model: a DAG walked in
    model order; a tensor read by several layers gets the sum of their gradients."""

    def __init__(self, analysis: Analysis, weights: dict[str, Array]):
        if not analysis.complete:
            raise ValueError("the model has shape errors; the reference network needs a complete analysis")
        _check_weights(weights, analysis)
        self.analysis = analysis
        self.model = analysis.model
        self.weights = weights
        self.layers: list[Layer] = [LAYERS[info.layer.family](info) for info in analysis.infos]
        self.inputs = tuple(n.name for n in self.model.inputs)
        self.outputs = tuple(self.model.outputs)
        self.steps = [_Step(run, sources, out, getattr(run, "multi_input", False))
                      for run, sources, out in plan(self.layers, self.model)]
        self._last_use = self._last_uses()
        self._grad_order = [f"{info.name}/{w.name}" for info in analysis.infos for w in info.weights]
        self.output_activation: str = self._output_activation()
        self._trained_forward = False
        self.input_grad: Array | list[Array] | None = None

    def _output_activation(self) -> str:
        """The activation a fused loss may skip: the single output layer's, when nothing
        else reads that output."""
        if len(self.outputs) != 1 or not self.steps or self.steps[-1].out != self.outputs[0]:
            return "linear"
        if self.model.consumers.get(self.outputs[0]):
            return "linear"
        return getattr(self.steps[-1].run, "activation", "linear")

    def _last_uses(self) -> dict[str, int]:
        """For each tensor, the index of the last step that reads it (outputs: never freed)."""
        last: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            for s in step.sources:
                last[s] = i
        for o in self.outputs:
            last[o] = len(self.steps)
        return last

    def _feeds(self, x) -> dict[str, Array]:
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(xs) != len(self.inputs):
            raise UsageError(f"model '{self.model.name}' has {len(self.inputs)} inputs "
                             f"({', '.join(self.inputs)}), got {len(xs)} arrays")
        feeds = {}
        for name, a in zip(self.inputs, xs):
            a = np.asarray(a)
            if a.dtype not in (np.float32, np.float64):
                a = a.astype(np.float32)
            feeds[name] = np.ascontiguousarray(a)
        return feeds

    def forward(self, x, training: bool = False,
                rng: np.random.Generator | None = None):
        """Output of the model (a list for several outputs). training=True applies
        dropout (masks drawn from `rng`), uses batch statistics in BatchNormalization
        (updating its moving statistics) and keeps what `backward` needs. Several
        inputs come as a list, in the model's input order."""
        vals = self._feeds(x)
        if training and rng is None:
            rng = np.random.default_rng()
        for i, step in enumerate(self.steps):
            args = [vals[s] for s in step.sources] if step.multi else vals[step.sources[0]]
            vals[step.out] = step.run.forward(args, self.weights, training, rng)
            for s in set(step.sources):
                if self._last_use.get(s) == i:
                    del vals[s]            # its last reader ran: free it
        self._trained_forward = training
        outs = [vals[o] for o in self.outputs]
        return outs[0] if len(outs) == 1 else outs

    def backward(self, dy, skip_output_activation: bool = False, *,
                 input_grad: bool = False) -> dict[str, Array]:
        """Gradients of every trainable weight (same shapes as the weights), after a
        forward(training=True). dy is the gradient of the output (a list for several
        outputs). With skip_output_activation=True, dy is the gradient with respect
        to the output layer's pre-activation. With input_grad=True the gradient with
        respect to the model's input (a list for several inputs) is left in
        `self.input_grad` (skipped otherwise: nothing upstream needs it in training)."""
        if not self._trained_forward:
            raise RuntimeError("Network.backward needs a forward(training=True) first")
        dys = list(dy) if len(self.outputs) > 1 else [dy]
        pending: dict[str, Array] = {}
        owned: set[str] = set()
        for name, d in zip(self.outputs, dys):
            _accumulate(pending, owned, name, np.asarray(d))
        grads: dict[str, Array] = {}
        skip_at = len(self.steps) - 1 if skip_output_activation else -1
        for i in range(len(self.steps) - 1, -1, -1):
            step = self.steps[i]
            d = pending.pop(step.out, None)
            if d is None:
                continue                   # nothing downstream depends on it
            need_dx = input_grad or any(s not in self.inputs for s in step.sources)
            dx, g = step.run.backward(d, self.weights, skip_activation=i == skip_at, need_dx=need_dx)
            grads.update(g)
            if dx is None:
                continue
            dxs = dx if step.multi else [dx]
            for src, dsrc in zip(step.sources, dxs):
                _accumulate(pending, owned, src, dsrc)
        if input_grad:
            found = [pending.get(n) for n in self.inputs]
            self.input_grad = found[0] if len(found) == 1 else found
        else:
            self.input_grad = None
        return {k: grads[k] for k in self._grad_order if k in grads}

    def predict(self, x, batch_size: int = 32):
        """Inference-mode forward pass in chunks of `batch_size` samples."""
        if batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {batch_size}")
        xs = [np.asarray(a) for a in x] if isinstance(x, (list, tuple)) else [np.asarray(x)]
        n = len(xs[0])
        if any(len(a) != n for a in xs):
            raise UsageError("the model's inputs have different numbers of samples: "
                             + ", ".join(str(len(a)) for a in xs))
        pick = (lambda i, j: [a[i:j] for a in xs]) if len(xs) > 1 else (lambda i, j: xs[0][i:j])
        if n == 0:
            return self.forward(pick(0, 0))
        parts = [self.forward(pick(i, i + batch_size)) for i in range(0, n, batch_size)]
        if len(self.outputs) == 1:
            return np.concatenate(parts, axis=0)
        return [np.concatenate([p[k] for p in parts], axis=0) for k in range(len(self.outputs))]


def _accumulate(pending: dict[str, Array], owned: set[str], name: str, d: Array) -> None:
    """Sum the gradients reaching one tensor; never write into an array a layer returned."""
    if name not in pending:
        pending[name] = d
    elif name in owned:
        pending[name] += d
    else:
        pending[name] = pending[name] + d
        owned.add(name)
