"""The same network as a PyTorch module, for benchmarks only (torch is never a
dependency of cnnc and this module is imported only when torch is).

The module is written the way a PyTorch user would write it: channels-first
input (N, C, *spatial), torch's own layers, Keras weights permuted once. Its
output equals the cnnc model's (in Keras's layout), which the benchmark and the
tests check. Chains and graphs alike: the layers run in model order, each on the
tensors it reads; merges (Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate) broadcast as Keras does, their axes moved to channels-first. It runs
in either of PyTorch's memory formats (`module.to(memory_format=torch.channels_last)`
with channels_last inputs). Covers the layer kinds of the tutorial networks and of
small ResNets; others raise NotImplementedError.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnc.analysis import shapes as sh
from cnnc.analysis.infer import Analysis
from cnnc.backends.onnx.graph import flatten_permutation

_ACTIVATIONS: dict[str, Callable] = {
    "linear": lambda x: x, "relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
    "softmax": lambda x: F.softmax(x, dim=1), "log_softmax": lambda x: F.log_softmax(x, dim=1),
    "elu": F.elu, "selu": F.selu, "softplus": F.softplus, "softsign": F.softsign, "silu": F.silu,
    "gelu": F.gelu, "relu6": F.relu6, "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "hard_sigmoid": F.hardsigmoid, "exponential": torch.exp, "hard_silu": F.hardswish,
    "mish": F.mish, "celu": F.celu, "hard_tanh": F.hardtanh, "log_sigmoid": F.logsigmoid,
}


class _Fn(nn.Module):
    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _pads(shape, k, s, d, padding) -> list[tuple[int, int]]:
    return [sh.pads(n, kk, ss, dd, padding) for n, kk, ss, dd in zip(shape[:-1], k, s, d)]


def _torch_pad(pads: list[tuple[int, int]]) -> list[int]:
    """F.pad order: last axis first."""
    return [v for a, b in reversed(pads) for v in (a, b)]


def _padded(pads, make: Callable[[int | tuple], nn.Module], value: float = 0.0) -> list[nn.Module]:
    """Symmetric pads go into the layer; asymmetric ones (TF 'same', causal) before it."""
    if all(a == b for a, b in pads):
        return [make(tuple(a for a, _ in pads))]
    flat = _torch_pad(pads)
    return [_Fn(lambda x: F.pad(x, flat, value=value)), make(0)]


def _conv(cls, cin, cout, k, s, d, groups, weight, bias, pads) -> list[nn.Module]:
    def make(padding):
        conv = cls(cin, cout, k, stride=s, padding=padding, dilation=d, groups=groups,
                   bias=bias is not None)
        with torch.no_grad():
            conv.weight.copy_(_t(weight))
            if bias is not None:
                conv.bias.copy_(_t(bias))
        return conv
    return _padded(pads, make)


def torch_module(analysis: Analysis, weights: Mapping[str, np.ndarray],
                 output_activation: bool = True) -> nn.Module:
    """The PyTorch twin of a checked cnnc model (its Analysis), with `weights`.
    Inputs come channels-first, one argument per model input (`to_channels_first`);
    outputs are in Keras's layout, a list when the model has several.
    output_activation=False leaves out the `activation=` of the output layers (the
    softmax before a cross-entropy), so that a PyTorch loss can take logits.
    Returned in eval mode; `.train()` turns on dropout and BatchNormalization's batch
    statistics (running statistics with momentum 1 - Keras's momentum)."""
    shapes = {n.name: tuple(n.shape) for n in analysis.model.inputs}
    flat_cf: dict[str, tuple[int, ...] | None] = {n: None for n in shapes}
    outputs = set(analysis.model.outputs)
    nodes: list[tuple[str, tuple[str, ...], bool, nn.Module]] = []
    for info in analysis.infos:
        L = info.layer
        srcs = tuple(L.inputs)
        multi = L.family in ("merge", "concatenate", "tensor_op")
        if multi:
            ins = [shapes[s] for s in srcs], [flat_cf[s] for s in srcs]
            mod: nn.Module = (_TensorOp(L, *ins) if L.family == "tensor_op"
                              else _Merge(L.kind, *ins, L.args.get("axis")))
            cf = None
        else:
            w = {x.name: weights[f"{info.name}/{x.name}"] for x in info.weights}
            ops, cf = _layer_ops(info, w, flat_cf[srcs[0]])
            act = L.args.get("activation", "linear")
            if act != "linear" and (output_activation or info.name not in outputs):
                ops.append(_Fn(_ACTIVATIONS[act]))
            mod = ops[0] if len(ops) == 1 else nn.Sequential(*ops)
        nodes.append((info.name, srcs, multi, mod))
        shapes[info.name], flat_cf[info.name] = tuple(info.output_shape), cf
    ends = [(o, _to_keras_layout(shapes[o], flat_cf[o])) for o in analysis.model.outputs]
    return _Graph(nodes, [n.name for n in analysis.model.inputs], ends).eval()


class _Graph(nn.Module):
    """Layers in model order, each reading its tensors by name; a tensor is dropped
    after its last reader, as the NumPy reference does."""

    def __init__(self, nodes, inputs: list[str], ends):
        super().__init__()
        self.inputs = list(inputs)
        self.layers = nn.ModuleList([m for *_, m in nodes])
        self.plan = [(name, srcs, merge) for name, srcs, merge, _ in nodes]
        self.outputs = [o for o, _ in ends]
        self.ends = nn.ModuleList([nn.Sequential(*fix) for _, fix in ends])
        last: dict[str, int] = {o: len(nodes) for o in self.outputs}
        for i, (_, srcs, _) in enumerate(self.plan):
            for s in srcs:
                last[s] = max(last.get(s, i), i)
        self.free = [sorted(s for s in set(srcs) if last[s] == i)
                     for i, (_, srcs, _) in enumerate(self.plan)]

    def forward(self, *xs):
        if len(xs) != len(self.inputs):
            raise TypeError(f"the model takes {len(self.inputs)} inputs, got {len(xs)}")
        vals = dict(zip(self.inputs, xs))
        for (name, srcs, merge), layer, free in zip(self.plan, self.layers, self.free):
            vals[name] = layer([vals[s] for s in srcs]) if merge else layer(vals[srcs[0]])
            for s in free:
                del vals[s]
        outs = [end(vals[o]) for o, end in zip(self.outputs, self.ends)]
        return outs[0] if len(outs) == 1 else outs


def _layer_ops(info, w: dict[str, np.ndarray], flat_cf: tuple[int, ...] | None
               ) -> tuple[list[nn.Module], tuple[int, ...] | None]:
    """The torch modules of one single-input layer (its activation left to the caller),
    and whether its output is a flat vector in channels-first order (the image shape
    it was flattened from) or not (None). `flat_cf`: the same for its input."""
    L, fam, r = info.layer, info.layer.family, info.layer.rank
    shape = info.input_shape
    keep = flat_cf                         # layers that act per unit keep the order
    if fam in ("dropout", "spatial_dropout"):
        if L.args.get("noise_shape") is not None:
            raise NotImplementedError("Dropout with a noise_shape in the PyTorch twin")
        if fam == "dropout":
            return [nn.Dropout(L["rate"])], keep
        return [(nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)[r - 1](L["rate"])], None
    if fam in ("conv", "depthwise_conv", "separable_conv"):
        cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[r - 1]
        c = shape[-1]
        k, s, d = L["kernel_size"], L["strides"], L["dilation_rate"]
        pads = _pads(shape, k, s, d, L["padding"])
        if fam == "conv":
            return _conv(cls, c, L["filters"], k, s, d, L.args.get("groups", 1),
                         w["kernel"].transpose(r + 1, r, *range(r)), w.get("bias"), pads), None
        m = L["depth_multiplier"]
        dw = w["kernel" if fam == "depthwise_conv" else "depthwise_kernel"]
        dw = dw.reshape(*k, c * m).transpose(r, *range(r))[:, None]
        ops = _conv(cls, c, c * m, k, s, d, c, dw, w.get("bias") if fam == "depthwise_conv" else None, pads)
        if fam == "separable_conv":
            ops += _conv(cls, c * m, L["filters"], (1,) * r, (1,) * r, (1,) * r, 1,
                         w["pointwise_kernel"].transpose(r + 1, r, *range(r)), w.get("bias"), [(0, 0)] * r)
        return ops, None
    if fam in ("max_pool", "avg_pool"):
        p, s = L["pool_size"], L["strides"] or L["pool_size"]
        pads = _pads(shape, p, s, (1,) * r, L["padding"])
        if fam == "max_pool":
            cls = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[r - 1]
            return _padded(pads, lambda pad: cls(p, s, padding=pad), value=-math.inf), None
        if any(a != b for a, b in pads):
            raise NotImplementedError("asymmetric 'same' average pooling")
        cls = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[r - 1]
        return [cls(p, s, padding=tuple(a for a, _ in pads), count_include_pad=False)], None
    if fam in ("global_max_pool", "global_avg_pool"):
        dims, keepdims = tuple(range(2, r + 2)), bool(L["keepdims"])
        fn = torch.amax if fam == "global_max_pool" else torch.mean
        return [_Fn(lambda x, fn=fn, dims=dims, k=keepdims: fn(x, dim=dims, keepdim=k))], None
    if fam == "flatten":
        cf = shape if len(shape) > 1 and shape[-1] != 1 and math.prod(shape[:-1]) != 1 else None
        return [nn.Flatten()], cf
    if fam == "dense":
        if len(shape) != 1:
            raise NotImplementedError("Dense on an image")
        kern = w["kernel"][flatten_permutation(flat_cf)] if flat_cf else w["kernel"]
        lin = nn.Linear(*kern.shape, bias="bias" in w)
        with torch.no_grad():
            lin.weight.copy_(_t(kern.T))
            if "bias" in w:
                lin.bias.copy_(_t(w["bias"]))
        return [lin], None
    if fam == "batch_norm":
        if L["axis"] % (len(shape) + 1) != len(shape):
            raise NotImplementedError("BatchNormalization on a non-channel axis")
        c = shape[-1]
        perm = flatten_permutation(flat_cf) if flat_cf else np.arange(c)
        bn = (nn.BatchNorm1d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[len(shape) - 1](
            c, eps=L["epsilon"], momentum=1.0 - L["momentum"], affine=True)
        with torch.no_grad():
            bn.weight.copy_(_t(w.get("gamma", np.ones(c))[perm]))
            bn.bias.copy_(_t(w.get("beta", np.zeros(c))[perm]))
            bn.running_mean.copy_(_t(w["moving_mean"][perm]))
            bn.running_var.copy_(_t(w["moving_variance"][perm]))
        if not L["scale"]:
            bn.weight.requires_grad_(False)
        if not L["center"]:
            bn.bias.requires_grad_(False)
        return [bn], keep
    if fam == "zero_padding":
        flat = _torch_pad(list(L["padding"]))
        return [_Fn(lambda x, flat=flat: F.pad(x, flat))], None
    if fam in ("activation", "identity", "augment", "noise"):     # augment/noise: no-ops at inference
        return [], keep
    if fam == "relu":
        t, m, slope = L["threshold"], L["max_value"], L["negative_slope"]
        return [_Fn(lambda x, t=t, m=m, slope=slope: _keras_relu(x, t, m, slope))], keep
    if fam == "leaky_relu":
        slope = L["alpha"] if L.args.get("alpha") is not None else L["negative_slope"]
        return [_Fn(lambda x, slope=slope: F.leaky_relu(x, slope))], keep
    if fam == "elu":
        return [_Fn(lambda x, a=L["alpha"]: F.elu(x, a))], keep
    if fam == "softmax" and tuple(L["axis"] or ()) in ((-1,), (len(shape),)):
        return [_Fn(lambda x: F.softmax(x, dim=1))], keep
    if fam == "reshape":
        before = _to_keras_layout(shape, flat_cf)
        target = tuple(info.output_shape)
        after = _Fn(lambda x, t=target: x.reshape(-1, *t)) if len(target) == 1 else \
            _Fn(lambda x, t=target: x.reshape(-1, *t).movedim(-1, 1))
        return [*before, after], None
    raise NotImplementedError(f"{L.kind} in the PyTorch twin")


def _keras_relu(x, threshold: float, max_value: float | None, slope: float):
    """keras.activations.relu: clip(x if x > threshold else 0, 0, max_value)
    - negative_slope * relu(threshold - x)."""
    pos = torch.where(x > threshold, x, torch.zeros_like(x)) if threshold else F.relu(x)
    if max_value is not None:
        pos = torch.clamp(pos, max=max_value)
    return pos - slope * F.relu(threshold - x) if slope else pos


class _Merge(nn.Module):
    """Keras's merges on channels-first tensors. A lower-rank input gets size-1 axes
    after the batch axis in Keras's layout, which is after the channel axis here; a
    flat input in channels-first order is put back in Keras's order first."""

    KINDS = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")

    def __init__(self, kind: str, shapes, flat_cf, axis: int | None):
        super().__init__()
        if kind not in self.KINDS:
            raise NotImplementedError(f"{kind} in the PyTorch twin")
        self.kind = kind
        rank = max(len(s) for s in shapes)
        self.fix = nn.ModuleList([nn.Sequential(*_to_keras_layout(s, cf)) if cf else nn.Identity()
                                  for s, cf in zip(shapes, flat_cf)])
        self.expand = [rank - len(s) for s in shapes]
        if kind == "Concatenate":
            a = axis % (rank + 1)
            self.axis = 1 if a == rank else a if a == 0 else a + 1

    def forward(self, xs):
        xs = [f(x) for f, x in zip(self.fix, xs)]
        xs = [x.reshape(x.shape[0], x.shape[1], *(1,) * e, *x.shape[2:]) if e else x
              for x, e in zip(xs, self.expand)]
        k = self.kind
        if k == "Concatenate":
            return torch.cat(xs, dim=self.axis)
        if k == "Subtract":
            return xs[0] - xs[1]
        if k in ("Maximum", "Minimum"):
            op = torch.maximum if k == "Maximum" else torch.minimum
            y = xs[0]
            for x in xs[1:]:
                y = op(y, x)
            return y
        y = xs[0]
        for x in xs[1:]:
            y = y * x if k == "Multiply" else y + x
        return y / len(xs) if k == "Average" else y


class _TensorOp(nn.Module):
    """Keras 3's arithmetic on tensors (`x + 3.0`, `x * y`, `1 - x`, `-x`): a number
    constant, or two tensors of one rank (NumPy's broadcasting, the same in both layouts
    then); other cases raise NotImplementedError."""

    OPS = {"Add": torch.add, "Subtract": torch.sub, "Multiply": torch.mul, "TrueDivide": torch.div}

    def __init__(self, L, shapes, flat_cf):
        super().__init__()
        self.kind, self.constant, self.reverse = L.kind, L.args.get("constant"), bool(L.args.get("reverse"))
        if self.kind != "Negative" and self.kind not in self.OPS:
            raise NotImplementedError(f"{self.kind} in the PyTorch twin")
        if self.constant is not None and not isinstance(self.constant, (int, float)):
            raise NotImplementedError("tensor arithmetic with an array constant in the PyTorch twin")
        if len({len(s) for s in shapes}) > 1:
            raise NotImplementedError("tensor arithmetic across ranks in the PyTorch twin")
        self.fix = nn.ModuleList([nn.Sequential(*_to_keras_layout(s, cf)) if cf else nn.Identity()
                                  for s, cf in zip(shapes, flat_cf)])

    def forward(self, xs):
        xs = [f(x) for f, x in zip(self.fix, xs)]
        if self.kind == "Negative":
            return -xs[0]
        a, b = (xs[0], float(self.constant)) if self.constant is not None else (xs[0], xs[1])
        if self.constant is not None and self.reverse:
            return self.OPS[self.kind](torch.full_like(a, b), a)
        return self.OPS[self.kind](a, b)


def _to_keras_layout(out: tuple[int, ...], flat_cf: tuple[int, ...] | None) -> list[nn.Module]:
    """Modules that put a tensor of Keras shape `out` (a flat vector in channels-first
    order of the image `flat_cf`, if given) in Keras's layout, like the cnnc model's."""
    if flat_cf is not None:
        cf = (flat_cf[-1], *flat_cf[:-1])
        r = len(flat_cf)
        return [_Fn(lambda x: x.reshape(-1, *cf).permute(0, *range(2, r + 1), 1).flatten(1))]
    if len(out) > 1:
        r = len(out)
        return [_Fn(lambda x: x.permute(0, *range(2, r + 1), 1))]
    return []


def to_channels_first(x: np.ndarray) -> np.ndarray:
    """(N, *spatial, C) -> (N, C, *spatial), contiguous; flat inputs unchanged."""
    if x.ndim <= 2:
        return x
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))
