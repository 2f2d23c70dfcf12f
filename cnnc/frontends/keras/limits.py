"""Bounds on what a Keras file may make cnnc read, and the one check every path goes
through before it is opened: a regular file (never a folder, FIFO or device, which
could block or never end), of a size that fits its role."""

from __future__ import annotations

from pathlib import Path

from cnnc.support.diagnostics import UsageError

MiB = 1 << 20
GiB = 1 << 30

MAX_CONFIG_BYTES = 64 * MiB       # config.json, model_config, a model.to_json() file
MAX_SMALL_MEMBER = 1 * MiB        # metadata.json
MAX_WEIGHTS_BYTES = 64 * GiB      # one HDF5 weights file (or zip member)
MAX_ZIP_MEMBERS = 256             # Keras writes three (plus assets)
MAX_COMPRESSION_RATIO = 200       # float weights barely compress; a bomb compresses ~1000x
MAX_LAYERS = 100_000
MAX_H5_OBJECTS = 1_000_000        # groups and datasets walked in one weights file


class KerasFileError(UsageError):
    """A Keras file that cannot be read: truncated, corrupt, over a limit (exit 2)."""


def regular_file(path: str | Path, what: str, limit: int) -> int:
    """The size of `path`, after checking that it is a regular file of at most `limit`
    bytes; KerasFileError otherwise. Never opens the file (a FIFO would block)."""
    from cnnc.support.files import regular_size
    size = regular_size(path, what, error=KerasFileError)
    if size > limit:
        raise KerasFileError(f"cannot read {what} '{path}': {size:,} bytes, over cnnc's limit of "
                             f"{limit:,} bytes for such a file")
    return size

