"""HDF5 through h5py, defensively: only hard links inside the file are followed (an
external or soft link, or a dataset whose data lives in another file, is refused),
attributes and datasets are sized before they are read, global heaps are walked before
the file is opened (heaps.py), and h5py's errors on a truncated or corrupt file become
KerasFileError (exit 2)."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from cnnc.frontends.keras import heaps
from cnnc.frontends.keras.limits import MAX_H5_OBJECTS, KerasFileError
from cnnc.support.diagnostics import interrupted


def _h5py():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a dependency
        if interrupted(e):
            raise KeyboardInterrupt from None
        raise KerasFileError("reading Keras .h5/.keras files needs h5py: pip install h5py") from None
    return h5py


@contextlib.contextmanager
def open_file(source: Any, what: str) -> Iterator[Any]:
    """h5py.File(source, 'r'); `source` is a path or a seekable binary file object.
    Its global heaps are walked first (heaps.py: a corrupt one hangs libhdf5)."""
    h5py = _h5py()
    heaps.check(source, what)
    try:
        f = h5py.File(source, "r", locking=False) if isinstance(source, str) else \
            h5py.File(source, "r")
    except (OSError, ValueError) as e:
        raise KerasFileError(f"cannot read {what}: not a readable HDF5 file ({_short(e)})",
                             ["the file may be truncated or corrupt"]) from None
    try:
        yield f
    except (OSError, RuntimeError) as e:
        if isinstance(e, KerasFileError):
            raise
        raise KerasFileError(f"cannot read {what}: {_short(e)}",
                             ["the file may be truncated or corrupt"]) from None
    finally:
        with contextlib.suppress(Exception):
            f.close()


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


# What h5py raises for an object whose header is damaged (KeyError for an object past the
# end of the file, OSError and RuntimeError from HDF5, Unicode errors for names it cannot decode)
_DAMAGE = (KeyError, UnicodeError, OSError, RuntimeError, ValueError, TypeError)


def has_attr(obj: Any, name: str, what: str) -> bool:
    """Whether `obj` has the attribute `name`; a damaged header is a KerasFileError."""
    try:
        return name in obj.attrs
    except _DAMAGE as e:
        raise KerasFileError(f"cannot read {what}: the attributes of '{obj.name}' are damaged "
                             f"({_short(e)})", ["the file may be truncated or corrupt"]) from None


def string_attr(obj: Any, name: str, limit: int, what: str) -> str | None:
    """A string attribute, sized before it is read; None if absent."""
    if not has_attr(obj, name, what):
        return None
    try:
        size = obj.attrs.get_id(name).get_storage_size()
    except Exception:
        size = 0
    if size > limit:
        raise KerasFileError(f"cannot read {what}: attribute '{name}' is {size:,} bytes, over "
                             f"cnnc's limit of {limit:,}")
    value = obj.attrs[name]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise KerasFileError(f"cannot read {what}: attribute '{name}' is not UTF-8") from None
    if not isinstance(value, str):
        raise KerasFileError(f"cannot read {what}: attribute '{name}' is not a string")
    return value


def string_list_attr(obj: Any, name: str, what: str, limit: int = 1 << 20) -> list[str]:
    """A list-of-strings attribute (Keras 2's layer_names, weight_names); [] if absent."""
    if not has_attr(obj, name, what):
        return []
    try:
        size = obj.attrs.get_id(name).get_storage_size()
    except Exception:
        size = 0
    if size > limit * 64:
        raise KerasFileError(f"cannot read {what}: attribute '{name}' is too large ({size:,} bytes)")
    value = obj.attrs[name]
    out = []
    try:
        items = list(value.ravel()) if hasattr(value, "ravel") else list(value)
    except TypeError:
        items = [value]
    if len(items) > limit:
        raise KerasFileError(f"cannot read {what}: attribute '{name}' lists {len(items):,} names")
    for item in items:
        if isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        if not isinstance(item, str):
            if getattr(value, "size", 1) == 0:
                continue
            raise KerasFileError(f"cannot read {what}: attribute '{name}' holds a non-string")
        out.append(item)
    return out


def child(group: Any, name: str, what: str) -> Any | None:
    """group[name] when it is a hard link inside the file; None if absent. A name h5py
    cannot encode back or an object whose header is damaged is a KerasFileError."""
    h5py = _h5py()
    try:
        if name not in group:
            return None
        link = group.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise KerasFileError(f"cannot read {what}: '{group.name}/{name}' is a "
                                 f"{type(link).__name__}, not data inside the file",
                                 ["cnnc follows no links out of a weights file"])
        return group[name]
    except KerasFileError:
        raise
    except _DAMAGE as e:
        shown = name.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
        raise KerasFileError(f"cannot read {what}: the object '{shown}' is damaged ({_short(e)})",
                             ["the file may be truncated or corrupt"]) from None


def layout(root: Any, what: str) -> tuple[bool, bool]:
    """("layer_names" in the root's attributes, "layers" in the root): which Keras layout a
    weights file has. The first reads of the root's header: a damaged one is a
    KerasFileError (h5py raises KeyError for an object past the end of the file)."""
    keras2 = has_attr(root, "layer_names", what)
    try:
        return keras2, "layers" in root
    except _DAMAGE as e:
        raise KerasFileError(f"cannot read {what}: its root group is damaged ({_short(e)})",
                             ["the file may be truncated or corrupt"]) from None


def is_dataset(obj: Any) -> bool:
    return isinstance(obj, _h5py().Dataset)


def is_group(obj: Any) -> bool:
    return isinstance(obj, _h5py().Group)


MAX_H5_DEPTH = 64      # groups inside groups: Keras nests about 5 deep


def datasets(group: Any, what: str) -> dict[str, Any]:
    """Every dataset under `group`, by path relative to it, following hard links only.
    Each group is entered once (a hard link back to a group above it makes a cycle, which
    would be walked until memory runs out: its paths grow at every turn), and at most
    MAX_H5_DEPTH deep; both are KerasFileErrors naming the place."""
    out: dict[str, Any] = {}
    stack = [("", group, 0)]
    entered = {_identity(group)}
    seen = 0
    while stack:
        prefix, g, depth = stack.pop()
        for name in list(g.keys()):
            seen += 1
            if seen > MAX_H5_OBJECTS:
                raise KerasFileError(f"cannot read {what}: more than {MAX_H5_OBJECTS:,} objects")
            obj = child(g, name, what)
            path = f"{prefix}{name}"
            if is_group(obj):
                key = _identity(obj)
                if key in entered:
                    raise KerasFileError(f"cannot read {what}: the group '{_shown(path)}' is a hard "
                                         "link to a group it is inside of, or met twice (a cycle)",
                                         ["Keras never writes one; the file was made by hand or "
                                          "is corrupt"])
                if depth + 1 > MAX_H5_DEPTH:
                    raise KerasFileError(f"cannot read {what}: groups nest more than {MAX_H5_DEPTH} "
                                         f"deep (at '{_shown(path[:200])}')")
                entered.add(key)
                stack.append((path + "/", obj, depth + 1))
            elif is_dataset(obj):
                out[path] = obj
    return out


def _identity(obj: Any) -> Any:
    """The object in the file (its address), the same through any of its hard links."""
    try:
        return ("addr", _h5py().h5o.get_info(obj.id).addr)
    except Exception:  # noqa: BLE001 - h5py without .addr: its ObjectID hashes the object
        return ("id", hash(obj.id))


def _shown(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")


def read_array(ds: Any, shape: tuple[int, ...], what: str):
    """A dataset as a float32 array, after checking its shape, type and storage."""
    import numpy as np
    if tuple(ds.shape) != tuple(shape):
        raise ValueError(f"has shape {tuple(ds.shape)}, the model needs {tuple(shape)}")
    if ds.dtype.kind not in "fiu":
        raise ValueError(f"has dtype {ds.dtype}, expected float32")
    if ds.is_virtual or ds.id.get_create_plist().get_external_count():
        raise ValueError("keeps its data outside the file (external or virtual storage)")
    try:
        a = np.empty(shape, dtype=np.float32)
        if ds.dtype == np.float32 and a.size:
            ds.read_direct(a)
        elif a.size:
            a[...] = ds[()]
    except (OSError, RuntimeError) as e:
        raise KerasFileError(f"cannot read {what}: {_short(e)}",
                             ["the file may be truncated or corrupt"]) from None
    return a
