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
- `Transaction`: several outputs of one command (import's .cnn and .npz, compile's .onnx and
  .onnx.data, train's weights and history) appear together or not at all: each is written
  whole to its temp file first; then, holding a lock on their folders (two concurrent runs
  commit one after the other) and with Ctrl-C and SIGTERM held back, a journal is written
  and every temp file renamed onto its target. A run killed during those renames (kill -9)
  leaves the journal, and the next cnnc write beside it finishes the renames; a run killed
  before them leaves only temp files, removed by the next write. Any failure, Ctrl-C
  included, removes the temp files and keeps every old file.
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

from cnnc.support.diagnostics import UsageError, path_text

TMP_SUFFIX = ".tmp"
_TMP_RE = re.compile(r"^\.(?P<name>.+)\.cnnc-(?P<pid>\d+)-[0-9a-f]+\.tmp$")
# One journal per folder: commits there take turns (a lock), so one name is enough, and
# a reader finds an unfinished commit with one stat (`finish_commits`).
JOURNAL = ".cnnc-commit.json"
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
    """Remove cnnc temp files in `folder` (for `name`, or all) whose writer is gone, after
    finishing the commit of a transaction whose writer was killed while renaming."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    if any(e.name == JOURNAL for e in entries):
        with _locked([_real(folder)]):
            _recover(folder)
        with contextlib.suppress(OSError):
            entries = list(os.scandir(folder))
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
    shown = path_text(target)
    notes = [f"the previous '{shown}' is kept unchanged"] if existed else [f"'{shown}' was not written"]
    return UsageError(f"cannot write '{shown}': {_why(e)}", notes)


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
        raise UsageError(f"cannot write '{path_text(target)}': it is a directory",
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


# --- several outputs, one transaction -----------------------------------------------------------

class Transaction:
    """Several output files that appear together or not at all (see the module docstring).

        with Transaction(protect=[source]) as tx:
            tx.write_bytes("net.cnn", text)
            tx.write_bytes("net.npz", weights)
        # both renamed into place here; an exception inside the block leaves neither

    Each file is checked as `atomic_write` checks it (never an input, never a folder); an
    existing output that is not a regular file (/dev/null) is written in place at commit."""

    def __init__(self, protect: Iterable[str | Path] = ()):
        self.protect = list(protect)
        self._staged: list[tuple[Path, Path, bool]] = []      # (temp file, target, existed)
        self._special: list[tuple[Path, bytes]] = []
        self._targets: set[str] = set()

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    def _target(self, path: str | Path) -> Path:
        target = Path(path)
        _refuse_inputs(target, self.protect)
        if os.path.isdir(target):
            raise UsageError(f"cannot write '{path_text(target)}': it is a directory", ["give a file name"])
        key = _real(target)
        if key in self._targets:
            raise UsageError(f"'{path_text(target)}' is written twice by one command",
                             ["give each output its own path"])
        self._targets.add(key)
        return target

    def write_bytes(self, path: str | Path, data: bytes) -> None:
        with self.open(path) as f:
            f.write(data)

    @contextlib.contextmanager
    def open(self, path: str | Path, mode: str = "wb") -> Iterator[IO]:
        """A temp file beside `path`, written and synced; renamed at commit."""
        target = self._target(path)
        if _is_special(target):
            import io
            buf = io.BytesIO() if "b" in mode else io.StringIO()
            yield buf
            data = buf.getvalue()
            self._special.append((target, data if isinstance(data, bytes) else data.encode("utf-8")))
            return
        existed = os.path.lexists(target)
        folder = target.parent if str(target.parent) else Path(".")
        tmp = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            clean_stale(folder, target.name)
            tmp = folder / tmp_name(target)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, mode) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            self._staged.append((tmp, target, existed))
            tmp = None
        except OSError as e:
            raise output_error(target, e, existed) from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def adopt(self, staged: Path, path: str | Path) -> None:
        """A file the caller staged itself (a verified ONNX model), in a folder beside
        `path` on the same file system, renamed onto `path` at commit."""
        target = self._target(path)
        self._staged.append((Path(staged), target, os.path.lexists(target)))

    def abort(self) -> None:
        for tmp, _, _ in self._staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._staged.clear()
        self._special.clear()

    def commit(self) -> None:
        try:
            for target, data in self._special:
                try:
                    with open(target, "wb") as f:
                        f.write(data)
                except OSError as e:
                    raise output_error(target, e, existed=False) from None
            commit([(tmp, target) for tmp, target, _ in self._staged],
                   {target: existed for _, target, existed in self._staged})
        finally:
            self.abort()


def commit(moves: Sequence[tuple[Path, Path]], existed: dict | None = None) -> None:
    """Rename each staged file onto its target as one step: folders locked (concurrent
    commits take turns), Ctrl-C/SIGTERM held back until the last rename, a journal for
    the next run to finish the renames if this process is killed among them."""
    if not moves:
        return
    existed = existed or {}
    folders = sorted({_real(t.parent if str(t.parent) else Path(".")) for _, t in moves})
    with _locked(folders), _signals_held():
        for folder in folders:       # a killed commit first, so this one lands last
            _recover(Path(folder))
        # a journal in each folder: a reader of any of the files (finish_commits) finds it
        journals = [_write_journal(Path(f), moves) for f in folders] if len(moves) > 1 else []
        backups = _backups(moves) if len(moves) > 1 else {}
        done: list[Path] = []
        try:
            for tmp, target in moves:
                try:
                    os.replace(tmp, target)
                except OSError as e:
                    _roll_back(done, backups)        # the old files, all of them, again
                    notes = ["no file of this command was written; the previous ones are kept"]
                    raise UsageError(f"cannot write '{path_text(target)}': {_why(e)}", notes) from None
                done.append(target)
        finally:
            for journal in journals:
                with contextlib.suppress(OSError):
                    os.unlink(journal)
            for backup in backups.values():
                with contextlib.suppress(OSError):
                    os.unlink(backup)
        for folder in folders:
            _sync_folder(folder)


def _backups(moves: Sequence[tuple[Path, Path]]) -> dict[Path, Path]:
    """A hard link to each target that exists (no copy: the same bytes under a temp name),
    so a commit that fails half-way can put every old file back."""
    out = {}
    for _, target in moves:
        if os.path.isfile(target) and not os.path.islink(target):
            backup = target.parent / tmp_name(target)
            try:
                os.link(target, backup)
            except OSError:
                continue
            out[target] = backup
    return out


def _roll_back(done: Sequence[Path], backups: dict[Path, Path]) -> None:
    for target in reversed(done):
        with contextlib.suppress(OSError):
            if target in backups:
                os.replace(backups.pop(target), target)
            else:
                os.unlink(target)          # it did not exist before this commit


def _write_journal(folder: Path, moves: Sequence[tuple[Path, Path]]) -> Path:
    import json
    journal = folder / JOURNAL
    # the paths as the bytes of their names, in hex: any file name, whatever its encoding
    text = json.dumps({"pid": os.getpid(),
                       "moves": [[os.fsencode(os.path.abspath(p)).hex() for p in pair]
                                 for pair in moves]})
    tmp = folder / tmp_name(journal)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, journal)        # whole or absent, never half a journal
    return journal


def _recover(folder: Path) -> None:
    """Finish the commit whose writer was killed among its renames (its journal is left
    and its process gone): every temp file still there is renamed onto its target. The
    caller holds the folder's lock."""
    import json
    journal = Path(folder) / JOURNAL
    try:
        with open(journal, "rb") as f:
            record = json.loads(f.read(1 << 24).decode("ascii"))
        pid = int(record["pid"])
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError):
        pid, record = -1, {}
    if pid > 0 and _alive(pid):
        return                      # a commit in progress (or the caller's own)
    try:
        for tmp, target in record.get("moves", []):
            tmp, target = bytes.fromhex(tmp), bytes.fromhex(target)
            if os.path.lexists(tmp):
                os.replace(tmp, target)
    except (OSError, ValueError, TypeError):
        pass
    with contextlib.suppress(OSError):
        os.unlink(journal)
    if pid > 0:
        _remove_files_of(Path(folder), str(pid))     # its backups of the old files


def finish_commits(path: str | Path) -> None:
    """Before reading `path`: if a writer was killed while committing files beside it (its
    journal is there, one stat tells), finish that commit first, so that a reader never
    sees half of a pair (the new .cnn with the old .npz)."""
    folder = Path(path).parent if str(Path(path).parent) else Path(".")
    try:
        if not os.path.lexists(folder / JOURNAL):
            return
    except (OSError, ValueError):
        return
    with contextlib.suppress(OSError):
        with _locked([_real(folder)]):
            _recover(folder)


def _remove_files_of(folder: Path, pid: str) -> None:
    """The temp files a dead writer left in `folder` (whatever their target)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            m = _TMP_RE.match(entry.name)
            if m and m.group("pid") == pid and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


@contextlib.contextmanager
def _locked(folders: Sequence[str]) -> Iterator[None]:
    """An exclusive lock on each folder (flock on its descriptor), in a fixed order."""
    try:
        import fcntl
    except ImportError:      # pragma: no cover - not on POSIX
        yield
        return
    fds = []
    try:
        for folder in folders:
            try:
                fd = os.open(folder, os.O_RDONLY)
            except OSError:
                continue
            fds.append(fd)
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in reversed(fds):
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP noted, not acted on, until the block ends; then acted on
    as they would have been (main thread only: elsewhere nothing is changed)."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


def _sync_folder(folder: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
            raise UsageError(f"refusing to overwrite the input file '{path_text(p)}'",
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
        label = f"{what} '{path_text(target)}'" if what else f"'{path_text(target)}'"
        for p in ins:
            if _same_file(target, p) or (os.path.lexists(p) and _real(target) == _real(p)):
                raise UsageError(f"refusing to overwrite the input file '{path_text(p)}' with {label}",
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
        raise UsageError(f"cannot write {label}: '{path_text(existing)}' is not a directory")
    tmp = existing / f".{target.name}.cnnc-{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise UsageError(f"cannot write {label}: {_why(e)} ('{path_text(existing)}')",
                         ["choose another output folder; nothing was computed"]) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    if existing.resolve() == folder.resolve():
        clean_stale(folder, target.name)
