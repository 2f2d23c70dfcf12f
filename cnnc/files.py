"""Reading the user's files: one place that turns OS errors into clear messages."""

from __future__ import annotations

import contextlib
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


def read_bytes(path: str | Path, what: str = "") -> bytes:
    with reading(path, what) as p:
        try:
            return p.read_bytes()
        except OSError as e:
            if isinstance(e, (FileNotFoundError, IsADirectoryError, PermissionError)):
                raise
            raise UsageError(f"cannot read '{path}': {e.strerror or e}") from None
