"""Reading the user's files: one place that turns OS errors into clear messages."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Iterator

from .diagnostics import UsageError


@contextlib.contextmanager
def reading(path: str | Path, what: str = "", error: type[UsageError] = UsageError) -> Iterator[Path]:
    """Run the body that reads `path`; a missing file, a folder or a permission
    problem becomes `error` (exit 2) saying which file and why."""
    label = f"{what} '{path}'" if what else f"'{path}'"
    try:
        yield Path(path)
    except FileNotFoundError:
        raise error(f"cannot read {label}: no such file") from None
    except IsADirectoryError:
        raise error(f"cannot read {label}: it is a directory") from None
    except PermissionError:
        raise error(f"cannot read {label}: permission denied") from None


MAX_SOURCE_BYTES = 64 * 2**20     # far beyond any model source; /dev/zero is not one


def read_bytes(path: str | Path, what: str = "", limit: int = MAX_SOURCE_BYTES) -> bytes:
    """The file's bytes: a regular file of at most `limit` bytes, or UsageError (exit 2).
    FIFOs and devices are refused before reading (they can block or never end)."""
    label = f"{what} '{path}'" if what else f"'{path}'"
    with reading(path, what) as p:
        try:
            # stat before open: opening a FIFO blocks until someone writes to it
            if not stat.S_ISREG(os.stat(p).st_mode):
                raise UsageError(f"cannot read {label}: not a regular file")
            with open(p, "rb") as f:
                data = f.read(limit + 1)
            if len(data) > limit:
                raise UsageError(f"cannot read {label}: larger than {limit // 2**20} MiB")
            return data
        except OSError as e:
            if isinstance(e, (FileNotFoundError, IsADirectoryError, PermissionError)):
                raise
            raise UsageError(f"cannot read '{path}': {e.strerror or e}") from None
