"""Atomic file writes: a temp file in the same folder, then a rename.

A crash or a full disk leaves either the old file or the new one, never half
of one. Refuses to write over a file the user gave as an input.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator

from .diagnostics import UsageError


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", protect: Iterable[str | Path] = ()) -> Iterator[IO]:
    """Open a temp file next to `path`; on success rename it over `path`."""
    target = Path(path)
    for p in protect:
        if _same_file(target, Path(p)):
            raise UsageError(f"refusing to overwrite the input file '{p}'",
                             ["choose another output path with -o"])
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise UsageError(f"cannot write '{target}': {e.strerror or e}") from None
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | Path, data: bytes, protect: Iterable[str | Path] = ()) -> None:
    with atomic_write(path, "wb", protect) as f:
        f.write(data)


def write_text(path: str | Path, text: str, protect: Iterable[str | Path] = ()) -> None:
    write_bytes(path, text.encode("utf-8"), protect)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False
