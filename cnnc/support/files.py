"""Reading the user's files: one place that turns OS errors into clear messages."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Iterator

from cnnc.support.atomic import finish_commits
from cnnc.support.diagnostics import UsageError


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
    finish_commits(path)
    with reading(path, what) as p:
        try:
            # stat before open: opening a FIFO blocks until someone writes to it
            st = os.stat(p)
            if not stat.S_ISREG(st.st_mode):
                raise UsageError(f"cannot read {label}: not a regular file")
            if st.st_size > limit:
                raise UsageError(f"cannot read {label}: larger than {limit // 2**20} MiB")
            with open(p, "rb") as f:
                # read(n) allocates n bytes first: ask for what the file holds (+1 to see growth)
                data = f.read(min(limit, st.st_size) + 1)
            if len(data) > limit:
                raise UsageError(f"cannot read {label}: larger than {limit // 2**20} MiB")
            return data
        except OSError as e:
            if isinstance(e, (FileNotFoundError, IsADirectoryError, PermissionError)):
                raise
            raise UsageError(f"cannot read '{path}': {e.strerror or e}") from None
        except ValueError as e:   # a NUL byte in the name
            raise UsageError(f"cannot read {label}: {e}") from None


# --- arrays: .npy and .npz, bounded and never unpickled ------------------------------------------

MAX_NPZ_MEMBERS = 100_000     # a checkpoint of a large model holds a few thousand
MAX_NDIM = 32


def regular_size(path: str | Path, what: str = "", error: type[UsageError] = UsageError) -> int:
    """The size of `path` after checking, without opening it, that it is a regular file
    (a FIFO would block, a device never end); `error` (exit 2) otherwise."""
    label = f"{what} '{path}'" if what else f"'{path}'"
    finish_commits(path)       # a pair half-written by a killed cnnc is finished first
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"cannot read {label}: no such file") from None
    except PermissionError:
        raise error(f"cannot read {label}: permission denied") from None
    except (OSError, ValueError) as e:   # ValueError: a NUL byte in the name
        raise error(f"cannot read {label}: {getattr(e, 'strerror', None) or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"cannot read {label}: it is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"cannot read {label}: not a regular file (a FIFO, socket or device)")
    return st.st_size


def _budget() -> tuple[int | None, str]:
    from cnnc.support.resources import available
    return available()


def _refuse_size(label: str, nbytes: int, error: type[UsageError]) -> None:
    """Refuse, before allocating, arrays that cannot fit in the memory available."""
    limit, source = _budget()
    if limit is not None and nbytes > limit:
        from cnnc.support.resources import human
        raise error(f"cannot read {label}: its arrays need {human(nbytes)} ({nbytes:,} bytes) of "
                    f"memory, more than the {human(limit)} available",
                    [f"{source}: {human(limit)} ({limit:,} bytes)"])


def _npy_header(f, label: str, name: str, error: type[UsageError]):
    """(shape, fortran_order, dtype, data bytes) from an .npy header, validated: numbers
    only (object arrays would be pickles), sane dimensions."""
    import numpy as np
    fmt = np.lib.format
    where = f"{label}" + (f" [{name}]" if name else "")
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
    except error:
        raise
    except Exception as e:  # noqa: BLE001 - NumPy parses the header text with Python's tokenizer
        text = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise error(f"cannot read {where}: not a valid .npy array ({text})") from None
    if dtype.hasobject:
        raise error(f"cannot read {where}: it holds Python objects (pickles), which cnnc never loads")
    if dtype.kind not in "biufc" or dtype.itemsize == 0 or dtype.fields is not None:
        raise error(f"cannot read {where}: it holds {dtype}, not numbers")
    if len(shape) > MAX_NDIM or any(not isinstance(d, int) or d < 0 for d in shape):
        raise error(f"cannot read {where}: the array shape {shape} is not valid")
    count = 1
    for d in shape:
        count *= d
    return tuple(shape), bool(fortran), dtype, count * dtype.itemsize


def _read_into(f, shape, fortran: bool, dtype, where: str, error: type[UsageError]):
    import numpy as np
    count = 1
    for d in shape:
        count *= d
    arr = np.empty(count, dtype)
    view = memoryview(arr).cast("B")
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            raise error(f"cannot read {where}: the file is truncated")
        got += n
    if fortran:
        return arr.reshape(shape[::-1]).transpose()
    return arr.reshape(shape)


def read_npy(path: str | Path, what: str = "", error: type[UsageError] = UsageError):
    """The array of an .npy file: a regular file whose header declares exactly the bytes
    it holds, numbers only, refused before allocating when it cannot fit in memory."""
    label = f"{what} '{path}'" if what else f"'{path}'"
    size = regular_size(path, what, error)
    try:
        with open(path, "rb") as f:
            shape, fortran, dtype, nbytes = _npy_header(f, label, "", error)
            if size - f.tell() != nbytes:
                raise error(f"cannot read {label}: its header declares {nbytes:,} bytes of data "
                            f"{shape}, the file holds {size - f.tell():,}",
                            ["the file is truncated or corrupt"])
            _refuse_size(label, nbytes, error)
            return _read_into(f, shape, fortran, dtype, label, error)
    except OSError as e:
        raise error(f"cannot read {label}: {e.strerror or e}") from None


def is_npz(path: str | Path) -> bool:
    """Whether a regular file starts like a zip archive (an .npz) rather than an .npy."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def read_npz(path: str | Path, what: str = "", error: type[UsageError] = UsageError,
             keys: "list[str] | None" = None) -> dict:
    """The arrays of an .npz file (name without '.npy' -> array), or `error` (exit 2).

    Bounded: a regular file only; every member must be an .npy whose header declares
    exactly the member's size; the declared sizes together must fit in the memory
    available (a zip bomb is refused from its declared sizes, and reading stops there);
    nothing is unpickled. `keys`: read only these members (the others are checked too)."""
    import zipfile
    import zlib
    label = f"{what} '{path}'" if what else f"'{path}'"
    size = regular_size(path, what, error)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_NPZ_MEMBERS:
                raise error(f"cannot read {label}: {len(infos):,} members, over cnnc's limit of "
                            f"{MAX_NPZ_MEMBERS:,}")
            names: dict[str, zipfile.ZipInfo] = {}
            for info in infos:
                if not info.filename.endswith(".npy") or info.is_dir():
                    raise error(f"cannot read {label}: member '{info.filename}' is not an array "
                                "(.npy)", ["an .npz file holds .npy arrays only (numpy.savez)"])
                key = info.filename[:-4]
                if key in names:
                    raise error(f"cannot read {label}: the array '{key}' is there twice")
                if info.flag_bits & 0x1:
                    raise error(f"cannot read {label}: member '{info.filename}' is encrypted")
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise error(f"cannot read {label}: member '{info.filename}' uses an "
                                f"unsupported compression (method {info.compress_type})")
                if info.compress_size > size or (info.compress_type == zipfile.ZIP_STORED
                                                 and info.compress_size != info.file_size):
                    raise error(f"cannot read {label}: member '{info.filename}' declares sizes "
                                "the archive cannot hold", ["the file is truncated or corrupt"])
                names[key] = info
            wanted = list(names) if keys is None else [k for k in keys if k in names]
            _refuse_size(label, sum(names[k].file_size for k in wanted), error)
            out = {}
            for key in wanted:
                info = names[key]
                where = f"{label} [{key}]"
                with zf.open(info) as f:
                    shape, fortran, dtype, nbytes = _npy_header(f, label, key, error)
                    if info.file_size - f.tell() != nbytes:
                        raise error(f"cannot read {where}: its header declares {nbytes:,} bytes of "
                                    f"data {shape}, the member holds {info.file_size - f.tell():,}",
                                    ["the file is truncated or corrupt"])
                    out[key] = _read_into(f, shape, fortran, dtype, where, error)
                    f.read(1)   # at the end: zipfile checks the CRC
            return out
    except error:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError,
            RuntimeError, UnicodeDecodeError, struct_error()) as e:
        text = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise error(f"cannot read {label}: not a valid .npz file ({text})",
                    ["the file may be truncated or corrupt"]) from None
    except OSError as e:
        raise error(f"cannot read {label}: {e.strerror or e}") from None


def struct_error() -> type[Exception]:
    import struct
    return struct.error
