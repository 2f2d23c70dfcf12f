"""Shape arithmetic, as Keras 3 computes it (keras/src/ops/operation_utils.py).

Small pure functions on one spatial axis, shared by the checker, the NumPy
reference, the ONNX lowering and the tests. `None` stands for a size known
only at run time and propagates.
"""

from __future__ import annotations

import math
from typing import Sequence

Size = int | None


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
    if n is None:
        return None
    return same_pads(n, k, s, d)


def receptive_field(rf: int, jump: int, k: int, s: int = 1, d: int = 1) -> tuple[int, int]:
    """Receptive field and jump (effective stride) after one sliding-window layer."""
    return rf + (effective_kernel(k, d) - 1) * jump, jump * s


def numel(shape: Sequence[Size]) -> Size:
    if any(n is None for n in shape):
        return None
    return math.prod(shape)


def fmt_shape(shape: Sequence[Size], batch: bool = True) -> str:
    """Keras's way: (None, 26, 26, 32)."""
    items = (["None"] if batch else []) + ["None" if n is None else str(n) for n in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def fmt_size(shape: Sequence[Size]) -> str:
    """26x26 for messages."""
    return "x".join("?" if n is None else str(n) for n in shape)
