"""Open a Keras file and take out its parts: the model config (JSON), the training
config, and where its weights are (an HDF5 file, opened lazily).

- `.keras` (Keras 3): a zip with config.json, metadata.json, model.weights.h5;
- `.h5` (Keras 2 / tf.keras, and Keras 3's legacy save): HDF5 with a `model_config`
  attribute and a `model_weights` group;
- `.json`: the text of `model.to_json()` (no weights: give them with --weights).

Only json, zipfile and h5py read them: nothing is unpickled, no code runs. Every
member's declared size is checked before it is read and reading stops at the
declared size (no zip bomb), and a truncated or corrupt file is a KerasFileError.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from cnnc.frontends.keras.limits import (
    MAX_COMPRESSION_RATIO,
    MAX_CONFIG_BYTES,
    MAX_SMALL_MEMBER,
    MAX_WEIGHTS_BYTES,
    MAX_ZIP_MEMBERS,
    KerasFileError,
    regular_file,
)

SUFFIXES = (".keras", ".h5", ".hdf5", ".json")


@dataclass
class Container:
    path: str
    format: str                          # "keras", "h5" or "json"
    config: dict                         # the model's {"class_name", "config", ...}
    training: dict | None = None         # compile_config / training_config, if any
    keras_version: str = ""
    open_weights: Callable[[], Any] | None = field(default=None, repr=False)  # -> context manager


def suffix_of(path: str | Path) -> str:
    name = str(path).lower()
    if name.endswith(".weights.h5"):
        return ".weights.h5"
    return Path(name).suffix


# Keras nests about 4 levels per nested model (MAX_DEPTH of them: config.py) and a few for a
# value; what reads the config walks values recursively, so deeper JSON is refused here,
# before anything recurses into it (a kernel_size nested 900 lists deep overflowed it).
MAX_JSON_DEPTH = 200


def parse_json(data: bytes | str, what: str) -> Any:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text)
    except UnicodeDecodeError as e:
        raise KerasFileError(f"cannot read {what}: not UTF-8 (byte {e.start})") from None
    except RecursionError:
        raise KerasFileError(f"cannot read {what}: JSON nested too deeply",
                             [f"cnnc reads Keras configs nested at most {MAX_JSON_DEPTH} levels deep"]) from None
    except ValueError as e:
        raise KerasFileError(f"cannot read {what}: not valid JSON ({e})") from None
    depth = json_depth(value, MAX_JSON_DEPTH)
    if depth > MAX_JSON_DEPTH:
        raise KerasFileError(f"cannot read {what}: JSON nested more than {MAX_JSON_DEPTH} levels deep",
                             ["a Keras model config nests far less; the file was made by hand "
                              "or is corrupt"])
    return value


def json_depth(value: Any, stop: int) -> int:
    """How deeply lists and dicts nest in `value` (walked without recursion), at most
    stop + 1."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if not isinstance(v, (list, dict)):
            continue
        deepest = max(deepest, d)
        if deepest > stop:
            return deepest
        stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def read(path: str | Path) -> Container:
    suffix = suffix_of(path)
    if suffix == ".keras":
        return _read_keras(str(path))
    if suffix in (".h5", ".hdf5"):
        return _read_h5(str(path))
    if suffix == ".json":
        return _read_json(str(path))
    if suffix == ".weights.h5":
        raise KerasFileError(f"'{path}' holds weights only, not a model",
                             ["give the model (.cnn, .keras, .json) and pass this file with --weights"])
    raise KerasFileError(f"'{path}' is not a Keras model file (.keras, .h5 or .json)")


# --- JSON ---------------------------------------------------------------------------------------

def _read_json(path: str) -> Container:
    regular_file(path, "Keras model JSON", MAX_CONFIG_BYTES)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise KerasFileError(f"cannot read '{path}': {e.strerror or e}") from None
    config = parse_json(data, f"'{path}'")
    return Container(path, "json", _model_config(config, path))


def _model_config(config: Any, where: str) -> dict:
    if not isinstance(config, dict) or "class_name" not in config or not isinstance(
            config.get("config"), dict):
        raise KerasFileError(f"'{where}' is not a Keras model config",
                             ["expected the JSON of model.to_json() or model.get_config(): "
                              '{"class_name": "Sequential" or "Functional", "config": {...}}'])
    return config


# --- .keras (zip) ---------------------------------------------------------------------------------

def _read_keras(path: str) -> Container:
    size = regular_file(path, "Keras file", MAX_WEIGHTS_BYTES + MAX_CONFIG_BYTES)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise KerasFileError(f"cannot read '{path}': {len(infos)} members in the archive, "
                                     f"over cnnc's limit of {MAX_ZIP_MEMBERS}")
            members = {i.filename: i for i in infos}
            if "config.json" not in members:
                raise KerasFileError(f"cannot read '{path}': the archive has no config.json",
                                     ["a .keras file is a zip with config.json, metadata.json "
                                      "and model.weights.h5 (Keras 3's model.save)"])
            for info in infos:
                _check_member(path, info, size)
            config = parse_json(_member(zf, members["config.json"], MAX_CONFIG_BYTES, path),
                                f"config.json in '{path}'")
            version = ""
            if "metadata.json" in members:
                meta = parse_json(_member(zf, members["metadata.json"], MAX_SMALL_MEMBER, path),
                                  f"metadata.json in '{path}'")
                version = str(meta.get("keras_version", "")) if isinstance(meta, dict) else ""
    except zipfile.BadZipFile as e:
        raise KerasFileError(f"cannot read '{path}': not a valid .keras zip archive ({e})",
                             ["the file may be truncated or corrupt"]) from None
    except (OSError, EOFError) as e:
        raise KerasFileError(f"cannot read '{path}': {getattr(e, 'strerror', None) or e}",
                             ["the file may be truncated or corrupt"]) from None
    model = _model_config(config, f"config.json in {path}")
    weights_info = members.get("model.weights.h5")
    opener = None
    if weights_info is not None:
        opener = lambda: _open_member_h5(path, weights_info)  # noqa: E731
    return Container(path, "keras", model, training=model.get("compile_config") or None,
                     keras_version=version, open_weights=opener)


def _check_member(path: str, info: zipfile.ZipInfo, archive_size: int) -> None:
    name = info.filename
    if info.flag_bits & 0x1:
        raise KerasFileError(f"cannot read '{path}': member '{name}' is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise KerasFileError(f"cannot read '{path}': member '{name}' uses an unsupported "
                             f"compression (method {info.compress_type})")
    if info.compress_size > archive_size:
        raise KerasFileError(f"cannot read '{path}': member '{name}' declares "
                             f"{info.compress_size:,} compressed bytes in a {archive_size:,}-byte "
                             "archive", ["the file is truncated or corrupt"])
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise KerasFileError(f"cannot read '{path}': member '{name}' is stored with inconsistent "
                             "sizes", ["the file is corrupt"])
    if info.file_size > MAX_WEIGHTS_BYTES or (
            info.file_size > MAX_SMALL_MEMBER
            and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)):
        raise KerasFileError(f"cannot read '{path}': member '{name}' declares {info.file_size:,} "
                             f"bytes from {info.compress_size:,} compressed bytes: refused as a "
                             "zip bomb", ["Keras's own files do not compress like that"])


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, path: str) -> bytes:
    if info.file_size > limit:
        raise KerasFileError(f"cannot read '{path}': '{info.filename}' is {info.file_size:,} "
                             f"bytes, over cnnc's limit of {limit:,} for it")
    with zf.open(info) as f:
        data = f.read(limit + 1)     # zipfile stops at the declared size and checks the CRC
    if len(data) > limit:
        raise KerasFileError(f"cannot read '{path}': '{info.filename}' is over {limit:,} bytes")
    return data


class _Window(io.RawIOBase):
    """A read-only, seekable view of bytes [start, start + size) of a file: HDF5 reads
    a stored (uncompressed) zip member in place, without a copy."""

    def __init__(self, f, start: int, size: int):
        self._f, self._start, self._size, self._pos = f, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b) -> int:
        n = max(0, min(len(b), self._size - self._pos))
        if n == 0:
            return 0
        self._f.seek(self._start + self._pos)
        got = self._f.readinto(memoryview(b)[:n])
        self._pos += got or 0
        return got or 0

    def close(self) -> None:
        self._f.close()
        super().close()


@contextlib.contextmanager
def _open_member_h5(path: str, info: zipfile.ZipInfo) -> Iterator[Any]:
    from cnnc.frontends.keras import hdf5
    what = f"model.weights.h5 in '{path}'"
    try:
        if info.compress_type == zipfile.ZIP_STORED:
            f = open(path, "rb")
            f.seek(info.header_offset)
            header = f.read(30)
            if len(header) < 30 or header[:4] != b"PK\x03\x04":
                f.close()
                raise KerasFileError(f"cannot read {what}: bad zip local header",
                                     ["the file is truncated or corrupt"])
            start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") \
                + int.from_bytes(header[28:30], "little")
            raw: Any = _Window(f, start, info.file_size)
            spool = None
        else:
            spool = tempfile.TemporaryFile()
            with zipfile.ZipFile(path) as zf, zf.open(info) as src:
                shutil.copyfileobj(src, spool, 1 << 20)
            spool.seek(0)
            raw = spool
    except zipfile.BadZipFile as e:
        raise KerasFileError(f"cannot read {what}: {e}", ["the file is truncated or corrupt"]) from None
    except OSError as e:
        raise KerasFileError(f"cannot read {what}: {e.strerror or e}") from None
    try:
        with hdf5.open_file(raw, what) as h5:
            yield h5
    finally:
        raw.close()
        if spool is not None:
            spool.close()


# --- .h5 (Keras 2 / tf.keras full model) --------------------------------------------------------

def _read_h5(path: str) -> Container:
    from cnnc.frontends.keras import hdf5
    regular_file(path, "Keras file", MAX_WEIGHTS_BYTES + MAX_CONFIG_BYTES)
    with hdf5.open_file(path, f"'{path}'") as h5:
        text = hdf5.string_attr(h5, "model_config", MAX_CONFIG_BYTES, f"'{path}'")
        if text is None:
            if any(hdf5.layout(h5, f"'{path}'")):
                raise KerasFileError(f"'{path}' holds weights only, not a model",
                                     ["give the model (.cnn, .keras, .json) and pass this file "
                                      "with --weights"])
            raise KerasFileError(f"'{path}' is an HDF5 file without a Keras model config",
                                 ["a Keras 2 / tf.keras model.save('model.h5') file has a "
                                  "'model_config' attribute"])
        training = hdf5.string_attr(h5, "training_config", MAX_CONFIG_BYTES, f"'{path}'")
        version = hdf5.string_attr(h5, "keras_version", MAX_SMALL_MEMBER, f"'{path}'") or ""
        has_weights = "model_weights" in h5
    config = _model_config(parse_json(text, f"model_config of '{path}'"), path)
    train = parse_json(training, f"training_config of '{path}'") if training else None

    @contextlib.contextmanager
    def opener():
        regular_file(path, "Keras file", MAX_WEIGHTS_BYTES + MAX_CONFIG_BYTES)
        with hdf5.open_file(path, f"'{path}'") as f:
            group = hdf5.child(f, "model_weights", f"'{path}'")
            if group is None or not hdf5.is_group(group):
                raise KerasFileError(f"cannot read '{path}': model_weights is not a group")
            yield group

    return Container(path, "h5", config, training=train if isinstance(train, dict) else None,
                     keras_version=version, open_weights=opener if has_weights else None)
