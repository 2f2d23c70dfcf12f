"""Training checkpoints: one `checkpoint.npz` in a checkpoint directory.

A checkpoint is a single file so that writing it is atomic (temp file, fsync,
rename): a run killed at any moment leaves the previous checkpoint or the new
one, never a mix. Arrays are stored as-is (weights "w/<key>", optimizer slots
"o/<slot>:<key>", the epoch's sample order "order"); everything else (epoch,
batch, RNG states, running sums, history, settings) is JSON, stored as a uint8
array "meta.json". Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import io
import json
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
    return p.exists() or p.is_symlink()


def load(folder: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of the checkpoint in `folder`; CheckpointError if it is unreadable
    or not what cnnc writes (read bounded, never unpickled, every field checked)."""
    from cnnc.support.files import read_npz
    target = path_in(folder)
    if not target.exists() and not target.is_symlink():
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
    problems = _problems(meta, arrays)
    if problems:
        raise CheckpointError(f"'{target}' is damaged: {problems[0]}",
                              problems[1:4] + ["start a new run without --resume"])
    return meta, arrays


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
            isinstance(v, list) and len(v) == 2 and all(_is_num(n) for n in v) and v[1] >= 0
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
