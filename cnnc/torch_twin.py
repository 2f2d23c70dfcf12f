"""The same network as a PyTorch module, for benchmarks only (torch is never a
dependency of cnnc and this module is imported only when torch is).

The module is written the way a PyTorch user would write it: channels-first
input (N, C, *spatial), torch's own layers, Keras weights permuted once. Its
output equals the cnnc model's (in Keras's layout), which the benchmark checks.
Covers the layer kinds of the tutorial networks; others raise NotImplementedError.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import shapes as sh
from .lower.graph import flatten_permutation

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


def torch_module(model) -> nn.Module:
    steps: list[nn.Module] = []
    image: tuple[int, ...] | None = tuple(model.ir.input_shape) if len(model.ir.input_shape) > 1 else None
    flat_cf: tuple[int, ...] | None = None     # image shape while a flat vector is in CF order
    for info in model.analysis.infos:
        L, fam, r = info.layer, info.layer.family, info.layer.rank
        w = {x.name: model.weights[f"{info.name}/{x.name}"] for x in info.weights}
        shape = info.input_shape
        if fam in ("dropout", "spatial_dropout"):
            continue
        if fam in ("conv", "depthwise_conv", "separable_conv"):
            cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[r - 1]
            c = shape[-1]
            k, s, d = L["kernel_size"], L["strides"], L["dilation_rate"]
            pads = _pads(shape, k, s, d, L["padding"])
            if fam == "conv":
                kern = w["kernel"]
                steps += _conv(cls, c, L["filters"], k, s, d, 1,
                               kern.transpose(r + 1, r, *range(r)), w.get("bias"), pads)
            else:
                m = L["depth_multiplier"]
                dw = w["kernel" if fam == "depthwise_conv" else "depthwise_kernel"]
                dw = dw.reshape(*k, c * m).transpose(r, *range(r))[:, None]
                steps += _conv(cls, c, c * m, k, s, d, c, dw,
                               w.get("bias") if fam == "depthwise_conv" else None, pads)
                if fam == "separable_conv":
                    pw = w["pointwise_kernel"]
                    steps += _conv(cls, c * m, L["filters"], (1,) * r, (1,) * r, (1,) * r, 1,
                                   pw.transpose(r + 1, r, *range(r)), w.get("bias"), [(0, 0)] * r)
        elif fam in ("max_pool", "avg_pool"):
            p, s = L["pool_size"], L["strides"] or L["pool_size"]
            pads = _pads(shape, p, s, (1,) * r, L["padding"])
            if fam == "max_pool":
                cls = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[r - 1]
                steps += _padded(pads, lambda pad: cls(p, s, padding=pad), value=-math.inf)
            else:
                if any(a != b for a, b in pads):
                    raise NotImplementedError("asymmetric 'same' average pooling")
                cls = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[r - 1]
                steps.append(cls(p, s, padding=tuple(a for a, _ in pads), count_include_pad=False))
        elif fam in ("global_max_pool", "global_avg_pool"):
            dims, keep = tuple(range(2, r + 2)), bool(L["keepdims"])
            fn = torch.amax if fam == "global_max_pool" else torch.mean
            steps.append(_Fn(lambda x, fn=fn, dims=dims, keep=keep: fn(x, dim=dims, keepdim=keep)))
        elif fam == "flatten":
            steps.append(nn.Flatten())
            if image is not None and image[-1] != 1 and math.prod(image[:-1]) != 1:
                flat_cf = image
        elif fam == "dense":
            if len(shape) != 1:
                raise NotImplementedError("Dense on an image")
            kern = w["kernel"][flatten_permutation(flat_cf)] if flat_cf else w["kernel"]
            lin = nn.Linear(*kern.shape, bias="bias" in w)
            with torch.no_grad():
                lin.weight.copy_(_t(kern.T))
                if "bias" in w:
                    lin.bias.copy_(_t(w["bias"]))
            steps.append(lin)
            flat_cf = None
        elif fam == "batch_norm":
            if L["axis"] % (len(shape) + 1) != len(shape):
                raise NotImplementedError("BatchNormalization on a non-channel axis")
            c = shape[-1]
            perm = flatten_permutation(flat_cf) if flat_cf else np.arange(c)
            bn = (nn.BatchNorm1d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[len(shape) - 1](
                c, eps=L["epsilon"])
            with torch.no_grad():
                bn.weight.copy_(_t(w.get("gamma", np.ones(c))[perm]))
                bn.bias.copy_(_t(w.get("beta", np.zeros(c))[perm]))
                bn.running_mean.copy_(_t(w["moving_mean"][perm]))
                bn.running_var.copy_(_t(w["moving_variance"][perm]))
            steps.append(bn.eval())
        elif fam == "zero_padding":
            flat = _torch_pad(list(L["padding"]))
            steps.append(_Fn(lambda x, flat=flat: F.pad(x, flat)))
        elif fam != "activation":
            raise NotImplementedError(f"{L.kind} in the PyTorch twin")
        act = L.args.get("activation", "linear")
        if act != "linear":
            steps.append(_Fn(_ACTIVATIONS[act]))
        out = info.output_shape
        image = out if len(out) > 1 else image if fam != "dense" else None
    steps += _to_keras_layout(model.analysis.output_shape, flat_cf)
    return nn.Sequential(*steps).eval()


def _to_keras_layout(out: tuple[int, ...], flat_cf: tuple[int, ...] | None) -> list[nn.Module]:
    """The module's output in Keras's layout, like the cnnc model's."""
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
