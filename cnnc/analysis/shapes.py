"""Shape arithmetic, as Keras 3 computes it (keras/src/ops/operation_utils.py).

Small pure functions on one spatial axis, shared by the checker, the NumPy
reference, the ONNX lowering and the tests. A size is an int, an expression in open
dimensions (symbolic.py: the arithmetic below works on both), or `None`, unknown.
"""

from __future__ import annotations

import math
from typing import Sequence

from cnnc.analysis.symbolic import Expr, shown_as_none, undefined_in_keras

Size = int | Expr | None


def undefined(n: Size) -> bool:
    """Whether Keras sees None here: unknown, or depending on an axis Keras leaves open."""
    return n is None or (isinstance(n, Expr) and undefined_in_keras(n))


def _show(n: Size) -> str:
    return "None" if n is None or (isinstance(n, Expr) and shown_as_none(n)) else str(n)


def effective_kernel(k: int, d: int = 1) -> int:
    """Extent of a dilated kernel: d*(k-1)+1."""
    return d * (k - 1) + 1


def conv_output_length(n: Size, k: int, s: int = 1, d: int = 1, padding: str = "valid") -> Size:
    """Keras: 'valid' floor((n - d*(k-1) - 1)/s) + 1; 'same'/'causal' ceil(n/s).

    May be zero or negative: the caller decides how to report that.
    """
    if n is None:
        return None
    if padding == "valid":
        return (n - d * (k - 1) - 1) // s + 1
    return -(-n // s)


def pool_output_length(n: Size, p: int, s: int, padding: str = "valid") -> Size:
    """Keras: 'valid' floor((n - p)/s) + 1; 'same' ceil(n/s)."""
    if n is None:
        return None
    if padding == "valid":
        return (n - p) // s + 1
    return -(-n // s)


def same_pads(n: int, k: int, s: int = 1, d: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding: the odd pixel goes after (bottom/right)."""
    out = -(-n // s)
    total = max((out - 1) * s + effective_kernel(k, d) - n, 0)
    return total // 2, total - total // 2


def causal_pads(k: int, d: int = 1) -> tuple[int, int]:
    """Conv1D 'causal': everything on the left, so output t sees inputs <= t."""
    return effective_kernel(k, d) - 1, 0


def pads(n: Size, k: int, s: int, d: int, padding: str) -> tuple[int, int] | None:
    """(before, after) zero padding of one axis; None when n is unknown and padding is 'same'."""
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return causal_pads(k, d)
    if not isinstance(n, int):
        return None
    return same_pads(n, k, s, d)


def deconv_output_length(n: Size, k: int, s: int = 1, d: int = 1, padding: str = "valid",
                         output_padding: int | None = None) -> Size:
    """Keras's transposed-convolution length (TensorFlow's padding rule), K = d*(k-1)+1:
    'valid' (n-1)*s + K + (max(K, s) - K when output_padding is None, else output_padding);
    'same' n*s when output_padding is None, else (n-1)*s + K%2 + output_padding."""
    if n is None:
        return None
    kk = effective_kernel(k, d)
    if padding == "valid":
        extra = max(kk, s) - kk if output_padding is None else output_padding
        return (n - 1) * s + kk + extra
    if output_padding is None:
        return n * s
    return (n - 1) * s + kk % 2 + output_padding


def deconv_pads(k: int, s: int = 1, d: int = 1, padding: str = "valid",
                output_padding: int | None = None) -> tuple[int, int]:
    """(before, after) cropped from the full transposed convolution, whose length is
    (n-1)*s + K, to give `deconv_output_length` (independent of n). TensorFlow computes
    it as the gradient of a convolution from the output length o back to n: 'same'
    pads that convolution by max((n-1)*s + K - o, 0), the odd pixel after. `after` is
    negative where the output is longer than the full result (by less than s): those
    trailing positions receive no input, only the bias."""
    kk = effective_kernel(k, d)
    full_minus_out = kk - (deconv_output_length(1, k, s, d, padding, output_padding) or 0)
    before = max(full_minus_out, 0) // 2 if padding == "same" else 0
    return before, full_minus_out - before


def resize_source(n_in: int, n_out: int, mode: str):
    """Where tf.image.resize (half-pixel centres, no antialias), which Keras's Resizing
    and bilinear UpSampling2D run, reads output position o from, in float32 as
    TensorFlow computes it, so the same input pixels are chosen:
    - 'nearest': (index,) with index[o] = min(floor((o + 0.5) * in/out), in - 1);
    - 'bilinear': (lo, hi, frac) with p = (o + 0.5) * in/out - 0.5, lo = max(floor(p), 0),
      hi = min(ceil(p), in - 1), frac = p - floor(p); the value is x[lo] + (x[hi] - x[lo]) * frac.
    NumPy arrays (imported here only: `cnnc check` never calls this)."""
    import numpy as np
    scale = np.float32(n_in) / np.float32(n_out)
    centres = np.arange(n_out, dtype=np.float32) + np.float32(0.5)
    if mode == "nearest":
        return (np.clip(np.floor(centres * scale), 0, n_in - 1).astype(np.intp),)
    pos = centres * scale - np.float32(0.5)
    low = np.floor(pos)
    lo = np.maximum(low, 0).astype(np.intp)
    hi = np.minimum(np.ceil(pos), n_in - 1).astype(np.intp)
    return lo, hi, (pos - low).astype(np.float64)


def receptive_field(rf: int, jump: int, k: int, s: int = 1, d: int = 1) -> tuple[int, int]:
    """Receptive field and jump (effective stride) after one sliding-window layer."""
    return rf + (effective_kernel(k, d) - 1) * jump, jump * s


def numel(shape: Sequence[Size]) -> Size:
    if any(n is None for n in shape):
        return None
    return math.prod(shape)


def fmt_shape(shape: Sequence[Size], batch: bool = True) -> str:
    """Keras's way: (None, 26, 26, 32)."""
    items = (["None"] if batch else []) + [_show(n) for n in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def fmt_size(shape: Sequence[Size]) -> str:
    """26x26 for messages."""
    return "x".join("?" if _show(n) == "None" else str(n) for n in shape)
