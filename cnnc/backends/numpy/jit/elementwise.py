"""The derivative of relu and relu6 in one compiled pass: dy where lo < v < hi, else 0
(NumPy makes a boolean mask and multiplies, block by block, holding the GIL
between the blocks)."""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.jit import kernel

Array = np.ndarray


@kernel
def _masked(dy, v, lo, hi, out):
    for i in range(dy.size):
        x = v[i]
        # a product, not a choice: a NaN in dy stays NaN where masked, as in NumPy and TF
        out[i] = dy[i] * (1 if x > lo and x < hi else 0)


def masked(dy: Array, v: Array, lo: float | None, hi: float | None) -> Array:
    """dy where lo < v < hi (a bound of None: unbounded), else 0; contiguous arrays of
    one shape."""
    out = np.empty(dy.shape, np.result_type(dy, v))
    _masked(dy.reshape(-1), v.reshape(-1), -np.inf if lo is None else float(lo),
            np.inf if hi is None else float(hi), out.reshape(-1))
    return out
