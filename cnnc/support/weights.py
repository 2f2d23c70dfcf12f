"""Keras-compatible weight files: one .npz, key "<layer name>/<weight name>".

Layouts are Keras 3's (conv kernels (kh, kw, C, filters), Dense (in, units), ...).
Loading is strict: every problem (missing, extra, misshapen, not numeric) is
listed at once, and nothing is ever unpickled.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Mapping

import numpy as np

from cnnc.support import files
from cnnc.support.atomic import write_bytes
from cnnc.support.diagnostics import UsageError


class WeightsError(UsageError):
    """A weights file that does not fit the model (exit status 2)."""


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a weights .npz: bounded, numbers only, never unpickled."""
    return files.read_npz(path, "weights", WeightsError)


def _strip_model_prefix(arrays: dict[str, np.ndarray], wanted: Mapping[str, tuple]) -> dict[str, np.ndarray]:
    """Accept Keras's `weight.path` keys ("sequential/conv2d/kernel") too."""
    if all(k in wanted for k in arrays):
        return arrays
    parts = [k.split("/") for k in arrays]
    if parts and all(len(p) == 3 for p in parts) and len({p[0] for p in parts}) == 1:
        return {"/".join(p[1:]): v for p, v in zip(parts, arrays.values())}
    return arrays


def check(arrays: dict[str, np.ndarray], wanted: Mapping[str, tuple[int, ...]], model: str,
          path: str = "weights", owned: bool = False) -> dict[str, np.ndarray]:
    """The arrays as float32 in the order of `wanted` (every weight of model `model`, key ->
    shape: `Analysis.weight_shapes()`), or WeightsError listing every mismatch.
    `owned`: the arrays are fresh (read from a file), so float32 ones are kept, not copied."""
    arrays = _strip_model_prefix(arrays, wanted)
    problems: list[str] = []
    out: dict[str, np.ndarray] = {}
    for key, shape in wanted.items():
        if key not in arrays:
            problems.append(f"missing '{key}' {shape}")
            continue
        a = arrays[key]
        if a.dtype.kind not in "fiu":
            problems.append(f"'{key}' has dtype {a.dtype}, expected float32")
        elif tuple(a.shape) != tuple(shape):
            problems.append(f"'{key}' has shape {tuple(a.shape)}, the model needs {tuple(shape)}")
        elif not np.all(np.isfinite(a)):
            problems.append(f"'{key}' contains NaN or inf")
        elif a.dtype.kind == "f" and a.dtype.itemsize > 4 and a.size and \
                float(np.max(np.abs(a))) > float(np.finfo(np.float32).max):
            problems.append(f"'{key}' holds {float(np.max(np.abs(a))):g}, beyond float32's range "
                            f"({float(np.finfo(np.float32).max):.4g}): as float32 it would be inf")
        else:
            keep = owned and a.dtype == np.float32 and a.flags.c_contiguous
            out[key] = a if keep else np.array(a, dtype=np.float32, order="C", copy=True)  # never alias the caller's arrays
    extra = [k for k in arrays if k not in wanted]
    for k in extra:
        problems.append(f"unexpected '{k}' {tuple(arrays[k].shape)}: the model has no such weight")
    if problems:
        head = f"weights '{path}' do not fit model '{model}'"
        hint = _renumbered_hint(arrays, wanted)
        raise WeightsError(f"{head} ({len(problems)} problem{'s' if len(problems) > 1 else ''})",
                           problems + ([hint] if hint else []))
    return out


def _renumbered_hint(arrays: Mapping[str, np.ndarray], wanted: Mapping[str, tuple]) -> str:
    """Keras numbers layer names per process: a session that built other models first
    exports conv2d_5 for this model's conv2d. Say so when that is the only difference."""
    theirs = [(k.rsplit("/", 1)[0], k.rsplit("/", 1)[-1], tuple(v.shape)) for k, v in arrays.items()]
    ours = [(k.rsplit("/", 1)[0], k.rsplit("/", 1)[-1], tuple(s)) for k, s in wanted.items()]
    base = lambda name: re.sub(r"_\d+$", "", name)  # noqa: E731
    if len(theirs) != len(ours) or any(
            (base(a[0]), a[1], a[2]) != (base(b[0]), b[1], b[2]) for a, b in zip(theirs, ours)):
        return ""
    pairs = sorted({(a[0], b[0]) for a, b in zip(theirs, ours) if a[0] != b[0]})
    if not pairs:        # the names are the same: the problem is elsewhere (values, dtypes)
        return ""
    shown = ", ".join(f"{a} -> {b}" for a, b in pairs[:4]) + (", ..." if len(pairs) > 4 else "")
    return (f"the arrays match the model in order and shape, only the layer names differ "
            f"({shown}): Keras numbers layers per process, so export from a fresh session "
            f"(keras.backend.clear_session() first) or name the layers in both")


def npz_bytes(arrays: Mapping[str, np.ndarray], dtype=np.float32) -> bytes:
    """The bytes of an .npz holding `arrays` (as `dtype`; None: as they are), written as
    numpy.savez writes one (a zip of .npy members) but member by member: every key checked
    first for what a zip member name can hold (support/names.npz_key), and a key named
    like one of savez's own parameters ('file') is still only a key."""
    import zipfile

    from cnnc.support.names import npz_key
    for key in arrays:
        npz_key(key, "the weight")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            a = np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
            with zf.open(f"{key}.npy", "w", force_zip64=a.nbytes > 2**31) as f:
                np.lib.format.write_array(f, a, allow_pickle=False)
    return buf.getvalue()


def save(path: str | Path, weights: Mapping[str, np.ndarray], protect=()) -> None:
    """Write weights atomically (the .npz made in memory, then temp file + rename)."""
    write_bytes(path, npz_bytes(weights), protect)
