"""Compiled kernels for the NumPy trainer's memory-bound steps (the `jit` extra: numba).

The NumPy code next to this package is the reference and the default: it runs
wherever cnnc is installed. With numba installed (`pip install "cnnc[jit]"`) the
trainer runs a few steps here instead, one pass over memory where NumPy needs
several: BatchNormalization's statistics and its backward (with a relu or relu6
after it fused in), the relu/relu6 derivatives, 2-D max pooling, depthwise
convolutions, and the scatter of the input gradient of a convolution. Each kernel
computes the same values as its NumPy twin up to float32 rounding
(tests/test_jit_kernels.py compares them), and runs sequentially, so a run repeats
bit for bit at the same thread count. Kernels release the GIL: the
trainer's threads (parallel.py) run them side by side.

`CNNC_KERNELS=numpy` in the environment keeps the NumPy reference even when
numba is installed (`active()` says which is in use).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

_state: dict[str, Any] = {}
_FLOATS = ("float32", "float64")


def active() -> bool:
    """Do the trainer's kernels run compiled? numba installed and not turned off."""
    if "on" not in _state:
        # an absent or broken numba: the NumPy reference serves
        _state["on"] = os.environ.get("CNNC_KERNELS", "").strip().lower() != "numpy" and _numba_importable()
    return _state["on"]


def usable(*arrays) -> bool:
    """Compiled kernels on, and every array (or dtype) float32 or float64: the types
    they are written and tested for; anything else stays on the NumPy reference."""
    return active() and all(getattr(a, "dtype", a) in _FLOATS for a in arrays)


def set_active(on: bool) -> None:
    """Choose the kernels for this process (tests run both); True needs numba."""
    if on and not _numba_importable():
        raise RuntimeError("the compiled kernels need numba: pip install 'cnnc[jit]'")
    _state["on"] = on


def _numba_importable() -> bool:
    """numba imports and compiles: NUMBA_DISABLE_JIT=1 (its debugging switch) would run
    every kernel as a Python loop, hundreds of times slower than the NumPy reference."""
    try:
        import numba
    except Exception:
        return False
    return not getattr(numba.config, "DISABLE_JIT", False)


def kernel(fn: Callable) -> Callable:
    """numba's njit for a kernel: compiled on first use per argument types, cached on
    disk, without the GIL, without bounds checks (the callers pass checked shapes).
    Where no cache directory can be written (a read-only install and home), numba
    refuses to cache: the kernel is then compiled in every process instead."""
    from numba import njit
    options = dict(nogil=True, boundscheck=False, error_model="numpy")
    try:
        compiled = njit(cache=True, **options)(fn)
    except RuntimeError:
        return njit(**options)(fn)
    _tolerate_damaged_cache(compiled)
    return compiled


def _tolerate_damaged_cache(dispatcher) -> None:
    """A cache file cut short (a full disk, a killed write) makes numba's loader raise
    (pickle's errors) on the first call: a damaged entry is then a miss, compiled afresh,
    and a save that fails leaves the cache as it was. (numba's FunctionCache methods;
    left alone where a numba version lacks them.)"""
    cache = getattr(dispatcher, "_cache", None)
    load, save = getattr(cache, "load_overload", None), getattr(cache, "save_overload", None)
    if load is None or save is None:
        return

    def load_or_miss(*args, **kwargs):
        try:
            return load(*args, **kwargs)
        except Exception:
            return None

    def save_or_skip(*args, **kwargs):
        try:
            save(*args, **kwargs)
        except Exception:
            pass

    cache.load_overload, cache.save_overload = load_or_miss, save_or_skip


@dataclass(frozen=True)
class Clamp:
    """An activation fused into a kernel's output: y = min(max(v, lo), hi), whose
    derivative is 1 strictly between the bounds (relu: 0, inf; relu6: 0, 6)."""

    lo: float
    hi: float


NO_CLAMP = Clamp(-float("inf"), float("inf"))
CLAMPS = {"relu": Clamp(0.0, float("inf")), "relu6": Clamp(0.0, 6.0)}
