"""Atomic file writes and output checks: never lose the user's data.

- `atomic_write`: a temp file in the same folder, fsync, then a rename. A crash or a
  full disk leaves either the old file or the new one, never half of one. Any OSError
  becomes a UsageError (exit 2) that names the path and says the old file is kept.
- Temp files are named `.NAME.cnnc-PID-RANDOM.tmp`: one left behind by a killed run
  (its PID no longer alive) is removed by the next write beside it; a concurrent run's
  live temp file is left alone, and of two concurrent writers the last rename wins,
  each file whole.
- An existing output that is not a regular file (/dev/null, /dev/stdout, a FIFO) is
  written in place, never replaced by a rename.
- `check_outputs`: before any long work, every output of a command against every input
  (through symlinks, hard links and different spellings) and against the other outputs;
  a folder where a file should go; a folder that cannot be written (probed by creating a
  small temp file there). `atomic_write` refuses to write over an input again.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from cnnc.support.diagnostics import UsageError

TMP_SUFFIX = ".tmp"
_TMP_RE = re.compile(r"^\.(?P<name>.+)\.cnnc-(?P<pid>\d+)-[0-9a-f]+\.tmp$")
_MAX_LISTED = 10_000   # files of an input folder that are protected one by one


def tmp_name(target: Path) -> str:
    return f".{target.name}.cnnc-{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True   # someone else's process (or cannot tell): leave its file alone
    return True


def clean_stale(folder: Path, name: str | None = None) -> list[Path]:
    """Remove cnnc temp files in `folder` (for `name`, or all) whose writer is gone."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_RE.match(entry.name)
        if not m or (name is not None and m.group("name") != name):
            continue
        if _alive(int(m.group("pid"))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):   # a staged ONNX model with external data
                import shutil
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _why(e: OSError) -> str:
    """The system's own words ("No space left on device", "Read-only file system")."""
    if isinstance(e, IsADirectoryError):
        return "it is a directory"
    return e.strerror or str(e) or type(e).__name__


def output_error(target: str | Path, e: OSError, existed: bool | None = None) -> UsageError:
    """The UsageError (exit 2) for an OSError while writing `target`."""
    if existed is None:
        existed = os.path.lexists(target)
    notes = [f"the previous '{target}' is kept unchanged"] if existed else [f"'{target}' was not written"]
    return UsageError(f"cannot write '{target}': {_why(e)}", notes)


def _is_special(target: Path) -> bool:
    """An existing output that is not a regular file or a folder: a device, a FIFO."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", protect: Iterable[str | Path] = ()) -> Iterator[IO]:
    """Open a temp file next to `path`; on success rename it over `path`."""
    target = Path(path)
    _refuse_inputs(target, list(protect))
    if os.path.isdir(target):
        raise UsageError(f"cannot write '{target}': it is a directory",
                         ["give a file name, e.g. with -o"])
    if _is_special(target):   # /dev/null, /dev/stdout, a FIFO: write in place
        try:
            with open(target, mode) as f:
                yield f
        except OSError as e:
            raise output_error(target, e, existed=False) from None
        return
    existed = os.path.lexists(target)
    folder = target.parent if str(target.parent) else Path(".")
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        clean_stale(folder, target.name)
        tmp = folder / tmp_name(target)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as e:
        raise output_error(target, e, existed) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_bytes(path: str | Path, data: bytes, protect: Iterable[str | Path] = ()) -> None:
    with atomic_write(path, "wb", protect) as f:
        f.write(data)


def write_text(path: str | Path, text: str, protect: Iterable[str | Path] = ()) -> None:
    write_bytes(path, text.encode("utf-8"), protect)


# --- checking outputs before the work -----------------------------------------------------------

def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _real(p: Path) -> str:
    try:
        return os.path.realpath(p)
    except (OSError, ValueError):
        return os.path.abspath(p)


def _refuse_inputs(target: Path, protect: Sequence[str | Path]) -> None:
    for p in _expand(protect):
        if _same_file(target, p) or (os.path.lexists(p) and _real(target) == _real(p)):
            raise UsageError(f"refusing to overwrite the input file '{p}'",
                             ["choose another output path with -o"])


def _expand(inputs: Iterable[str | Path | None]) -> list[Path]:
    """Input paths; an input folder (a dataset of IDX files) stands for its files too."""
    out: list[Path] = []
    for p in inputs:
        if p is None or str(p) == "":
            continue
        p = Path(p)
        out.append(p)
        if p.is_dir():
            with contextlib.suppress(OSError):
                for i, entry in enumerate(os.scandir(p)):
                    if i >= _MAX_LISTED:
                        break
                    out.append(Path(entry.path))
    return out


def check_outputs(outputs: Sequence[tuple[str | Path, str]], inputs: Iterable[str | Path | None] = (),
                  probe: bool = True) -> None:
    """Refuse (UsageError, exit 2) before any long work: an output that is an input, two
    outputs that are one file, an output that is a folder, a folder that cannot be
    written. `outputs`: (path, what it is, e.g. "--history")."""
    ins = _expand(inputs)
    seen: dict[str, str] = {}
    for path, what in outputs:
        target = Path(path)
        label = f"{what} '{target}'" if what else f"'{target}'"
        for p in ins:
            if _same_file(target, p) or (os.path.lexists(p) and _real(target) == _real(p)):
                raise UsageError(f"refusing to overwrite the input file '{p}' with {label}",
                                 ["choose another output path; cnnc never writes over an input"])
        key = _real(target)
        if key in seen:
            raise UsageError(f"{label} and {seen[key]} are the same file",
                             ["give each output its own path"])
        seen[key] = label
        if os.path.isdir(target):
            raise UsageError(f"cannot write {label}: it is a directory", ["give a file name"])
        if probe and not _is_special(target):
            _probe_folder(target, label)


def _probe_folder(target: Path, label: str) -> None:
    """Can a file be created beside `target`? (Creates, writes one byte, removes.)"""
    folder = target.parent if str(target.parent) else Path(".")
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot write {label}: '{existing}' is not a directory")
    tmp = existing / f".{target.name}.cnnc-{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise UsageError(f"cannot write {label}: {_why(e)} ('{existing}')",
                         ["choose another output folder; nothing was computed"]) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    if existing.resolve() == folder.resolve():
        clean_stale(folder, target.name)
