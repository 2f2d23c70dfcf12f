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
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .atomic import write_bytes
from .diagnostics import UsageError

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
    return path_in(folder).is_file()


def load(folder: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of the checkpoint in `folder`; CheckpointError if unreadable."""
    target = path_in(folder)
    try:
        with np.load(target, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint in '{folder}'") from None
    except PermissionError:
        raise CheckpointError(f"cannot read checkpoint '{target}': permission denied") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise CheckpointError(f"cannot read checkpoint '{target}': {e}") from None
    blob = arrays.pop(_META, None)
    try:
        meta = json.loads(bytes(blob).decode("utf-8")) if blob is not None else None
    except (ValueError, UnicodeDecodeError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"'{target}' is not a cnnc checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"'{target}' has checkpoint format version {meta.get('version')}; "
                              f"this cnnc reads version {VERSION}")
    return meta, arrays


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
