"""Training checkpoints: one `checkpoint.npz` in a checkpoint directory.

A checkpoint is a single file so that writing it is atomic (temp file, fsync,
rename): a run killed at any moment leaves the previous checkpoint or the new
one, never a mix. Arrays are stored as-is (weights "w/<key>", optimizer slots
"o/<slot>:<key>", the epoch's sample order "order"); everything else (epoch,
batch, RNG states, running sums, history, settings) is JSON, stored as a uint8
array "meta.json". Nothing is pickled. A digest of the settings and of each array is
recorded too, so that a checkpoint changed after it was written (by hand, by another
program) is named as such, array by array, instead of training on it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cnnc.support.atomic import write_bytes
from cnnc.support.diagnostics import UsageError

FILE = "checkpoint.npz"
FORMAT = "cnnc-checkpoint"
VERSION = 1
_META = "meta.json"


class CheckpointError(UsageError):
    """A checkpoint that cannot be read or does not fit this run (exit status 2)."""


def default_dir(output: str | Path) -> Path:
    """Next to the output weights: mnist.npz -> mnist.ckpt/."""
    return Path(output).with_suffix(".ckpt")


def path_in(folder: str | Path) -> Path:
    return Path(folder) / FILE


def save(folder: str | Path, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
         protect=()) -> Path:
    meta = {"format": FORMAT, "version": VERSION, **meta}
    meta["digests"] = _digests(meta, arrays)
    blob = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **{_META: blob}, **arrays)
    target = path_in(folder)
    write_bytes(target, buf.getvalue(), protect)
    return target


def exists(folder: str | Path) -> bool:
    """Whether `folder` holds a checkpoint (anything by that name: a FIFO or a folder
    there is refused by `load`, not silently replaced)."""
    p = path_in(folder)
    try:
        return os.path.lexists(p)
    except (OSError, ValueError) as e:     # a name too long, a NUL
        raise CheckpointError(f"cannot use the checkpoint folder '{folder}': "
                              f"{getattr(e, 'strerror', None) or e}") from None


def load(folder: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of the checkpoint in `folder`; CheckpointError if it is unreadable
    or not what cnnc writes (read bounded, never unpickled, every field checked)."""
    from cnnc.support.files import read_npz
    target = path_in(folder)
    if not exists(folder):
        raise CheckpointError(f"no checkpoint in '{folder}'")
    arrays = read_npz(target, "checkpoint", CheckpointError)
    blob = arrays.pop(_META, None)
    try:
        meta = json.loads(bytes(blob).decode("utf-8")) if blob is not None and blob.ndim == 1 \
            and blob.dtype == np.uint8 else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"'{target}' is not a cnnc checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"'{target}' has checkpoint format version {meta.get('version')!r}; "
                              f"this cnnc reads version {VERSION}")
    changed = _changed(meta, arrays)
    if changed:
        raise CheckpointError(f"'{target}' was changed after cnnc wrote it: {changed}",
                              ["a checkpoint records a digest of each of its parts when it is "
                               "written; this one no longer matches it",
                               "start a new run without --resume, or restore the checkpoint"])
    problems = _problems(meta, arrays)
    if problems:
        raise CheckpointError(f"'{target}' is damaged: {problems[0]}",
                              problems[1:4] + ["start a new run without --resume"])
    return meta, arrays


def _digest(data: bytes | memoryview) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def _array_digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    h = hashlib.blake2b(f"{a.dtype.str}{a.shape}".encode(), digest_size=12)
    h.update(memoryview(a.reshape(-1)).cast("B"))
    return h.hexdigest()


def _digests(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """A digest of the settings and one of each array: `load` names what was changed."""
    fields = {k: v for k, v in meta.items() if k != "digests"}
    return {"meta": _digest(json.dumps(fields, sort_keys=True).encode("utf-8")),
            "arrays": {k: _array_digest(a) for k, a in arrays.items()}}


def _changed(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str | None:
    """What differs from the digests the checkpoint was written with (None: nothing, or a
    checkpoint written before cnnc recorded digests)."""
    recorded = meta.get("digests")
    if recorded is None:
        return None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("arrays"), dict):
        return "its digests are not valid"
    fields = {k: v for k, v in meta.items() if k != "digests"}
    try:
        text = json.dumps(fields, sort_keys=True).encode("utf-8")
    except (TypeError, ValueError):
        return "its settings (meta.json) are not valid"
    if recorded.get("meta") != _digest(text):
        return "its settings (meta.json: epoch, history, optimizer state, random states) differ"
    want = recorded["arrays"]
    for key in sorted(set(want) | set(arrays)):
        if key not in arrays:
            return f"the array '{key}' is missing"
        if key not in want:
            return f"the array '{key}' was added"
        if want[key] != _array_digest(arrays[key]):
            return f"the array '{key}' differs"
    return None


def _is_int(v: Any, low: int = 0, high: int = 2**63) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v < high


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _problems(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> list[str]:
    """What in a checkpoint is not as `save` writes it (the fields a resumed run uses)."""
    out: list[str] = []
    for key in ("epoch", "batch"):
        if not _is_int(meta.get(key)):
            out.append(f"'{key}' is {meta.get(key)!r}, not a count")
    if meta.get("seed") is not None and not _is_int(meta.get("seed"), 0, 2**128):
        out.append(f"'seed' is {meta.get('seed')!r}")
    from cnnc.backends.numpy.optimizers import OPTIMIZERS
    opt = meta.get("optimizer_state")
    compiled = meta.get("compile") if isinstance(meta.get("compile"), dict) else {}
    want = compiled.get("optimizer")
    want = want[0] if isinstance(want, list) and want else None
    slots: tuple = ()
    if not isinstance(opt, dict) or not isinstance(opt.get("name"), str) or opt["name"] not in OPTIMIZERS \
            or not _is_int(opt.get("iterations")) or (want is not None and opt.get("name") != want):
        out.append("the optimizer state is not valid")
    else:
        slots = OPTIMIZERS[opt["name"]].slot_names
    rng = meta.get("rng")
    if not isinstance(rng, dict) or not all(_valid_rng(rng.get(k)) for k in ("shuffle", "dropout")):
        out.append("the random generators' states are not valid")
    sums = meta.get("sums")
    if not isinstance(sums, dict) or not all(
            isinstance(v, list) and len(v) == 2 and all(_is_num(n) and math.isfinite(n) for n in v)
            and v[1] >= 0
            for v in sums.values()) or not {"loss", *_names(compiled.get("metrics"))} <= set(sums):
        out.append("the running sums are not valid")
    h = meta.get("history")
    if not (isinstance(h, dict) and isinstance(h.get("history"), dict) and isinstance(h.get("epoch"), list)
            and isinstance(h.get("params"), dict)
            and all(_is_int(e) for e in h["epoch"])
            and all(isinstance(v, list) and len(v) == len(h["epoch"]) and all(_is_num(n) for n in v)
                    for v in h["history"].values())):
        out.append("the history is not valid")
    weights = {k[2:]: a for k, a in arrays.items() if k.startswith("w/")}
    for k, a in arrays.items():
        if k.startswith(("w/", "o/")) and a.dtype.kind != "f":
            out.append(f"array '{k}' has dtype {a.dtype}, not float")
        elif k.startswith(("w/", "o/")) and (bad := _bad_values(k, a)):
            # what training would only meet as a NaN loss several steps later, blamed on the
            # learning rate: say it is the file
            out.append(bad)
        elif k.startswith("o/"):
            slot, _, key = k[2:].partition(":")
            if slot not in slots or key not in weights or weights[key].shape != a.shape:
                out.append(f"optimizer array '{k}' fits no weight")
        elif k == "order":
            samples = h.get("params", {}).get("samples") if isinstance(h, dict) else None
            if a.ndim != 1 or a.dtype.kind not in "iu" or (
                    a.size and not np.array_equal(np.sort(a), np.arange(a.size))):
                out.append("the sample order is not a permutation")
            elif samples is not None and a.size != samples:
                out.append(f"the sample order has {a.size} entries for {samples!r} samples")
        elif not k.startswith(("w/", "o/")):
            out.append(f"unexpected array '{k}'")
    return out


def _bad_values(key: str, a: np.ndarray) -> str | None:
    """Values no training writes: NaN or inf, beyond float32, a negative second moment."""
    with np.errstate(all="ignore"):
        if not np.isfinite(a).all():
            return f"array '{key}' holds NaN or inf (training never saves those)"
        if a.size and float(np.max(np.abs(a))) > float(np.finfo(np.float32).max):
            return f"array '{key}' holds values beyond float32's range"
        slot = key[2:].partition(":")[0] if key.startswith("o/") else ""
        if slot.startswith("velocity") and a.size and float(np.min(a)) < 0:
            return (f"array '{key}' holds a negative value ({float(np.min(a)):g}); an optimizer's "
                    "'velocity' is a mean of squares, never below 0")
    return None


def _names(metrics: Any) -> list[str]:
    return [m for m in metrics if isinstance(m, str)] if isinstance(metrics, list) else []


def _valid_rng(state: Any) -> bool:
    """Whether NumPy's PCG64 accepts `state` (what `save` stores for each generator)."""
    if not isinstance(state, dict):
        return False
    try:
        np.random.PCG64().state = state
    except (ValueError, TypeError, KeyError, OverflowError, AttributeError):
        return False
    return True


def split(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays stored under "prefix/", with the prefix removed."""
    p = prefix + "/"
    return {k[len(p):]: v for k, v in arrays.items() if k.startswith(p)}


def fingerprint(*arrays: np.ndarray) -> str:
    """A digest of arrays' dtypes, shapes and bytes (to tell whether a resumed run
    trains on the same data)."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()
