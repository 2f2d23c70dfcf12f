"""Datasets for `cnnc train/evaluate/predict --data SPEC` and the preprocessing
that makes arrays fit a model.

SPEC is one of:
- ``fashion-mnist``: the Debian package's gzipped IDX files
  (/usr/share/datasets/fashion-mnist/, `apt-get install -y dataset-fashion-mnist`),
  60,000 training and 10,000 test images of 28x28, uint8;
- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, values 0..16;
  the first 1,437 are the training split, the last 360 the test split);
- ``PATH.npz``: arrays x_train, y_train, x_test, y_test (Keras's mnist.npz layout);
- a directory of IDX files (train-images-idx3-ubyte[.gz], train-labels-..., t10k-... or test-...).

Preprocessing (`prepare_x`, `prepare_y`), as the Keras tutorials do by hand:
- uint8 images are scaled by 1/255 and digits by 1/16 to [0, 1] (`scale=False` switches
  it off); everything becomes C-contiguous float32;
- a channel axis is added when the model takes (..., 1) and the data lacks it;
- integer class ids are one-hot encoded for categorical_crossentropy, reshaped to the
  output for binary_crossentropy / mean errors, and checked against the number of classes.
Data that does not fit the model is a UsageError naming both shapes.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from cnnc.support.diagnostics import UsageError, did_you_mean
from cnnc.support.files import read_npz, regular_size

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
DIGITS_TRAIN = 1437  # of 1,797: an 80/20 split in the set's own order


class DataError(UsageError):
    """Data that cannot be read or does not fit the model (exit status 2)."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    scale: float | None = None       # what `prepare_x` divides by when scaling; None: by dtype
    class_names: tuple[str, ...] | None = None

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        if which == "train":
            return self.x_train, self.y_train
        if self.x_test is None or self.y_test is None:
            raise DataError(f"data '{self.name}' has no test split (x_test, y_test)",
                            ["use --split train, or add x_test and y_test to the file"])
        return self.x_test, self.y_test

    def check_scaling(self, scale: bool) -> None:
        """DataError when the splits would be scaled differently (a float x_train of 0..255
        pixels and a uint8 x_test): the model is scored on data unlike what it learnt from."""
        if self.x_test is None:
            return
        problem = scaling_mismatch(self.x_train, self.x_test, scale, self.scale, "x_train", "x_test")
        if problem:
            raise DataError(f"data '{self.name}': {problem}",
                            ["give both splits the same dtype (e.g. uint8 pixels in both), or "
                             "scale them yourself and pass --no-scale"])

    def limit(self, n: int | None) -> "Dataset":
        """The first n samples of each split (for quick runs)."""
        if not n:
            return self
        cut = (lambda a: None if a is None else a[:n])
        return replace(self, x_train=self.x_train[:n], y_train=self.y_train[:n],
                       x_test=cut(self.x_test), y_test=cut(self.y_test))


# --- loading ------------------------------------------------------------------------------

def load(spec: str) -> Dataset:
    """The dataset named by SPEC (see the module docstring); raw arrays, not preprocessed."""
    path = Path(spec)
    if path.is_dir():
        return load_idx_dir(path)
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return load_npz(path)
        raise DataError(f"cannot read data '{spec}': expected a .npz file or a directory of IDX files")
    key = spec.lower().replace("_", "-")
    if key in BUILTIN:
        return BUILTIN[key]()
    if path.exists():   # neither a folder nor a regular file: a FIFO, socket or device
        regular_size(path, "data", DataError)
    if spec.endswith(".npz") or os.sep in spec:
        raise DataError(f"cannot read data '{spec}': no such file or directory")
    raise DataError(f"unknown dataset '{spec}'",
                    [did_you_mean(spec, BUILTIN) or
                     "give fashion-mnist, digits, a .npz file (x_train, y_train, x_test, y_test) "
                     "or a directory of IDX files"])


def load_fashion_mnist() -> Dataset:
    folder = Path(os.environ.get("CNNC_FASHION_MNIST_DIR", FASHION_MNIST_DIR))
    if not folder.is_dir() or not any(folder.glob("train-images*")):
        raise DataError(f"Fashion-MNIST is not installed (looked in {folder})",
                        ["install it with: apt-get install -y dataset-fashion-mnist",
                         "or pass a .npz file or a directory of IDX files to --data"])
    ds = load_idx_dir(folder)
    return replace(ds, name="fashion-mnist", class_names=FASHION_MNIST_CLASSES)


def load_digits() -> Dataset:
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise DataError("--data digits needs scikit-learn",
                        ["install it with: pip install 'cnnc[digits]'"]) from None
    d = sk_digits()
    x, y = d.images, d.target
    return Dataset("digits", x[:DIGITS_TRAIN], y[:DIGITS_TRAIN], x[DIGITS_TRAIN:], y[DIGITS_TRAIN:],
                   scale=16.0)


BUILTIN = {"fashion-mnist": load_fashion_mnist, "digits": load_digits}


def load_npz(path: str | Path) -> Dataset:
    arrays = read_npz(path, "data", DataError)
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise DataError(f"data '{path}' has no {' or '.join(missing)}",
                        [f"it holds: {', '.join(sorted(arrays)) or 'nothing'}",
                         "expected x_train, y_train, x_test, y_test (Keras's mnist.npz layout)"])
    for split in ("train", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if (x is None) != (y is None):
            raise DataError(f"data '{path}' has only one of x_{split} and y_{split}")
        for name, a in ((f"x_{split}", x), (f"y_{split}", y)):
            if a is not None and a.ndim == 0:
                raise DataError(f"data '{path}': {name} is a single number, not an array of samples")
        if x is not None and len(x) != len(y):
            raise DataError(f"data '{path}': x_{split} has {len(x)} samples, y_{split} has {len(y)}")
    return Dataset(str(path), arrays["x_train"], arrays["y_train"], arrays.get("x_test"),
                   arrays.get("y_test"))


_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_DEFLATE_RATIO = 1032   # deflate's ceiling: a copy of 258 bytes costs at least 2 bits


@dataclass(frozen=True)
class IdxHeader:
    dims: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.dims) * self.dtype.itemsize


def read_idx(path: str | Path) -> np.ndarray:
    """One IDX file (gzipped or not) as a native-endian array. Bounded: a regular file,
    the header's dimensions checked against the bytes there (for gzip, against the most
    its compressed bytes can inflate to) and the memory available before anything is
    allocated, and a gzip stream read only as far as the header says (a gzip bomb is
    refused at its first extra byte)."""
    with _idx_stream(path) as (stream, size, gz):
        header = _idx_header(stream, Path(path), size, gz)
        return _idx_body(stream, Path(path), header, gz)


def read_idx_header(path: str | Path) -> IdxHeader:
    """The dimensions and type an IDX file declares, checked as `read_idx` checks them,
    without reading its data."""
    with _idx_stream(path) as (stream, size, gz):
        return _idx_header(stream, Path(path), size, gz)


@contextlib.contextmanager
def _idx_stream(path: str | Path):
    """(a binary stream of the IDX bytes, the file's size, whether it is gzipped); the
    errors of reading a damaged file become DataError."""
    path = Path(path)
    size = regular_size(path, "data", DataError)
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            yield (gzip.GzipFile(fileobj=f, mode="rb") if gz else f), size, gz
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise DataError(f"cannot read '{path}': {e.strerror}") from None
        raise DataError(f"cannot read '{path}': a damaged gzip file ({e})") from None


def _read_exact(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _idx_header(stream, path: Path, size: int, gz: bool) -> IdxHeader:
    magic = _read_exact(stream, 4)
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_DTYPES:
        raise DataError(f"'{path}' is not an IDX file (bad magic number)")
    ndim = magic[3]
    if ndim == 0 or ndim > 8:
        raise DataError(f"'{path}' is not an IDX file cnnc reads: it declares {ndim} dimensions")
    raw_dims = _read_exact(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"'{path}' is truncated: the IDX header is incomplete")
    header = IdxHeader(struct.unpack(f">{ndim}I", raw_dims), np.dtype(_IDX_DTYPES[magic[2]]))
    dims, need, data = header.dims, header.nbytes, size - 4 - 4 * ndim
    if not gz and data != need:
        raise DataError(f"'{path}' is truncated or padded: dimensions {dims} need {need:,} bytes "
                        f"of data, the file has {data:,}")
    if gz and need > MAX_DEFLATE_RATIO * size:
        # refused before allocating: no gzip file of this size can hold that much
        raise DataError(f"'{path}' is truncated: dimensions {dims} need {need:,} bytes of data, "
                        f"more than the {size:,} bytes of this gzip file can inflate to "
                        f"({MAX_DEFLATE_RATIO:,} times as many)")
    _fits_memory(need, f"cannot read '{path}': dimensions {dims}")
    return header


def _fits_memory(need: int, what: str) -> None:
    from cnnc.support.resources import available, human
    limit, source = available()
    if limit is not None and need > limit:
        raise DataError(f"{what} need {human(need)} ({need:,} bytes) of memory, more than the "
                        f"{human(limit)} available", [f"{source}: {human(limit)} ({limit:,} bytes)"])


def _idx_body(stream, path: Path, header: IdxHeader, gz: bool) -> np.ndarray:
    dims, need = header.dims, header.nbytes
    arr = np.empty(dims, header.dtype)
    view = memoryview(arr.reshape(-1)).cast("B") if arr.size else memoryview(b"")
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:got + (16 << 20)])   # in pieces: gzip buffers each one
        if not n:
            raise DataError(f"'{path}' is truncated: dimensions {dims} need {need:,} bytes of "
                            f"data, the file has {got:,}")
        got += n
    if gz and stream.read(1):
        raise DataError(f"'{path}' is padded: dimensions {dims} need {need:,} bytes of data, "
                        "the file has more")
    return arr.astype(header.dtype.newbyteorder("="), copy=False)


def _find(folder: Path, prefixes: Sequence[str]) -> Path | None:
    names = sorted(p for p in folder.iterdir() if p.is_file())
    for prefix in prefixes:
        for p in names:
            if p.name.lower().startswith(prefix):
                return p
    return None


def load_idx_dir(folder: str | Path) -> Dataset:
    """The IDX files of a folder. Every header is read and the splits' counts and total
    size checked before any data is read."""
    folder = Path(folder)
    found = {
        "x_train": _find(folder, ("train-images",)),
        "y_train": _find(folder, ("train-labels",)),
        "x_test": _find(folder, ("t10k-images", "test-images")),
        "y_test": _find(folder, ("t10k-labels", "test-labels")),
    }
    if found["x_train"] is None or found["y_train"] is None:
        raise DataError(f"'{folder}' has no IDX training files",
                        ["expected train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] "
                         "(and t10k-... for the test split)"])
    headers = {k: read_idx_header(p) for k, p in found.items() if p is not None}
    for split in ("train", "test"):
        x, y = headers.get(f"x_{split}"), headers.get(f"y_{split}")
        if (x is None) != (y is None):
            raise DataError(f"'{folder}' has only one of the {split} images and labels")
        if x is not None and x.dims[0] != y.dims[0]:
            raise DataError(f"'{folder}': {found[f'x_{split}'].name} has {x.dims[0]} images but "
                            f"{found[f'y_{split}'].name} has {y.dims[0]} labels")
    _fits_memory(sum(h.nbytes for h in headers.values()), f"cannot read '{folder}': its IDX files")
    arrays = {k: (read_idx(p) if p is not None else None) for k, p in found.items()}
    return Dataset(str(folder), arrays["x_train"], arrays["y_train"], arrays["x_test"],
                   arrays["y_test"])


# --- preprocessing -----------------------------------------------------------------------------

def _fits(shape: Sequence[int], expected: Sequence[int | None]) -> bool:
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def _fmt(shape) -> str:
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def prepare_x(x, input_shape: Sequence[int | None], *, scale: bool = True,
              divisor: float | None = None, what: str = "x", model: str = "the model") -> np.ndarray:
    """x as C-contiguous float32 (N, *input_shape): scaled, with a channel axis if needed."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{what} has dtype {x.dtype}; expected numbers")
    if x.ndim == 0:
        raise DataError(f"{what} is a scalar; expected a batch of samples shaped {_fmt(input_shape)}")
    expected = tuple(input_shape)
    if (not _fits(x.shape[1:], expected) and expected and expected[-1] == 1
            and _fits(x.shape[1:], expected[:-1])):
        x = x[..., None]
    if not _fits(x.shape[1:], expected):
        notes = [f"{what} holds {x.shape[0]} samples of shape {_fmt(x.shape[1:])}"]
        if None not in expected and math.prod(x.shape[1:]) == math.prod(expected):
            notes.append(f"the sizes agree: reshape {what} to {_fmt((x.shape[0], *expected))}")
        raise DataError(f"{what} has shape {_fmt(x.shape)} but {model} takes input "
                        f"{_fmt((None, *expected))}", notes)
    if x.dtype.kind == "f" and x.dtype.itemsize > 4 and x.size:
        top = _abs_max(x)
        if math.isfinite(top) and top > float(np.finfo(np.float32).max):
            raise DataError(f"{what} holds values up to {top:g}, beyond float32's range "
                            f"({float(np.finfo(np.float32).max):.4g}): cnnc computes in float32",
                            ["scale the data down (divide by its maximum)"])
    if scale and divisor is None and x.dtype == np.uint8:
        divisor = 255.0
    if x.dtype != np.float32 or (scale and divisor) or not x.flags.c_contiguous:
        from cnnc.support.resources import check_array
        check_array(x.size * 4, f"{what} as float32")    # before the copy is allocated
    if scale and divisor:
        out = np.empty(x.shape, np.float32)
        np.divide(x, np.float32(divisor), out=out, casting="unsafe")
        return out
    with np.errstate(all="ignore"):      # values beyond float32 are refused by the callers
        return np.ascontiguousarray(x, dtype=np.float32)


def scaled_by_cnnc(x, scale: bool, divisor: float | None = None) -> bool:
    """Whether `prepare_x` scales `x` (uint8 images by 1/255, or by `divisor`)."""
    return bool(scale) and (divisor is not None or np.asarray(x).dtype == np.uint8)


# What unscaled data looks like: images already scaled to [0, 1] (or [-1, 1]) stay within
# this; 0..255 pixels as floats do not.
SCALED_MAX = 1.5


def scaling_mismatch(trained, given, scale: bool, divisor: float | None = None,
                     trained_what: str = "the training data", given_what: str = "x") -> str | None:
    """A message when `given` would be scaled differently from `trained` (None when not):
    uint8 images are divided by 255, other dtypes are not, so a float x_train of 0..255
    pixels and a uint8 x_test (or the reverse) meet the model on different scales. Data
    already in [0, 1] on the unscaled side is consistent, and passes."""
    a, b = scaled_by_cnnc(trained, scale, divisor), scaled_by_cnnc(given, scale, divisor)
    if a == b:
        return None
    raw = np.asarray(given if a else trained)
    if raw.size == 0 or _abs_max(raw) <= SCALED_MAX:
        return None
    scaled_what, raw_what = (trained_what, given_what) if a else (given_what, trained_what)
    return (f"{scaled_what} is {np.asarray(trained if a else given).dtype} (scaled by 1/"
            f"{divisor or 255:g}) but {raw_what} is {raw.dtype} with values up to "
            f"{_abs_max(raw):g} (not scaled): the model would see them on different scales")


def _abs_max(x: np.ndarray) -> float:
    """max(|x|) in slices (no copy of a large array); NaN and inf count as large."""
    flat = x.reshape(-1)
    top = 0.0
    step = 1 << 22
    with np.errstate(all="ignore"):
        for i in range(0, flat.size, step):
            block = flat[i:i + step]
            if block.dtype.kind == "f" and not np.isfinite(block).all():
                return float("inf")
            top = max(top, float(np.max(np.abs(block.astype(np.float64, copy=False)))))
    return top


def _class_ids(y: np.ndarray, classes: int, what: str) -> np.ndarray:
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{what} should hold class ids (whole numbers), but has fractions")
    elif y.dtype.kind not in "biu":
        raise DataError(f"{what} has dtype {y.dtype}; expected class ids")
    ids = y.astype(np.int64)
    bad = (ids < 0) | (ids >= classes)
    if bad.any():
        first = int(ids[bad].flat[0])
        raise DataError(f"{what} holds the class id {first}, but the model's output has "
                        f"{classes} classes (ids 0..{classes - 1})")
    return ids


def prepare_y(y, output_shape: Sequence[int], loss: str | None, *, what: str = "y",
              model: str = "the model") -> np.ndarray:
    """Targets in the form the loss wants: class ids (int64) for sparse crossentropy,
    float32 shaped (N, *output_shape) otherwise (class ids one-hot encoded)."""
    y = np.asarray(y)
    out = tuple(output_shape)
    classes = out[-1]
    if y.dtype.kind not in "biuf":
        raise DataError(f"{what} has dtype {y.dtype}; expected numbers")
    if y.ndim == 0:
        raise DataError(f"{what} is a scalar; expected one target per sample")
    n = y.shape[0]
    as_ids = _fits(y.shape[1:], out[:-1]) or _fits(y.shape[1:], (*out[:-1], 1))
    dense = _fits(y.shape[1:], out)
    mismatch = DataError(f"{what} has shape {_fmt(y.shape)} but {model}'s output is "
                         f"{_fmt((None, *out))} with loss {loss or '(none)'}",
                         [_y_hint(loss, out)])
    if loss == "sparse_categorical_crossentropy":
        if as_ids and not (dense and classes == 1):
            return _class_ids(y, classes, what).reshape((n, *out[:-1]))
        if dense and classes > 1:
            raise DataError(f"{what} looks one-hot {_fmt(y.shape)}, but "
                            "sparse_categorical_crossentropy wants class ids "
                            f"{_fmt((None, *out[:-1]))}",
                            ["use loss='categorical_crossentropy', or pass y.argmax(-1)"])
        raise mismatch
    if dense:
        return np.ascontiguousarray(y, dtype=np.float32)
    if loss == "categorical_crossentropy" and as_ids and classes > 1:
        ids = _class_ids(y, classes, what).reshape((n, *out[:-1]))
        onehot = np.zeros((n, *out), np.float32)
        np.put_along_axis(onehot, ids[..., None], 1.0, axis=-1)
        return onehot
    if y.size == n * math.prod(out):  # (N,) against (N, 1) and the like, as Keras squeezes
        return np.ascontiguousarray(y, dtype=np.float32).reshape((n, *out))
    raise mismatch


def _y_hint(loss: str | None, out: tuple) -> str:
    if loss == "sparse_categorical_crossentropy":
        return f"sparse_categorical_crossentropy wants class ids shaped {_fmt((None, *out[:-1]))}"
    if loss == "categorical_crossentropy":
        return (f"categorical_crossentropy wants one-hot targets {_fmt((None, *out))} "
                f"or class ids {_fmt((None, *out[:-1]))}")
    return f"{loss or 'the loss'} wants targets shaped like the output {_fmt((None, *out))}"


def check_same_length(x: np.ndarray, y: np.ndarray, what: str = "") -> None:
    if len(x) != len(y):
        where = f" in {what}" if what else ""
        raise DataError(f"x has {len(x)} samples but y has {len(y)}{where}")


def load_npy(path: str | Path) -> np.ndarray:
    """The array of a .npy file of inputs (`cnnc predict --data x.npy`): a regular file,
    its header checked against its size and the memory available, never unpickled."""
    from cnnc.support.files import read_npy
    return read_npy(path, "inputs", DataError)
