"""The Keras datasets' known shapes, and arrays followed through the usual
preparation (reshape, expand_dims, astype, arithmetic, to_categorical, slicing)."""

from __future__ import annotations

from cnnc.frontends.python.values import ArrayVal, Unknown

# name: ((x_train, y_train), (x_test, y_test)) shapes and the number of classes
DATASETS: dict[str, tuple] = {
    "mnist": (((60000, 28, 28), (60000,)), ((10000, 28, 28), (10000,)), 10, "uint8"),
    "fashion_mnist": (((60000, 28, 28), (60000,)), ((10000, 28, 28), (10000,)), 10, "uint8"),
    "cifar10": (((50000, 32, 32, 3), (50000, 1)), ((10000, 32, 32, 3), (10000, 1)), 10, "uint8"),
    "cifar100": (((50000, 32, 32, 3), (50000, 1)), ((10000, 32, 32, 3), (10000, 1)), 100, "uint8"),
    "boston_housing": (((404, 13), (404,)), ((102, 13), (102,)), None, "float64"),
    "california_housing": (((16512, 8), (16512,)), ((4128, 8), (4128,)), None, "float64"),
}
# Datasets of sequences or variable-size data: their shapes are not fixed.
UNSIZED = {"imdb", "reuters"}
MAX_ELEMENTS = 2 ** 62


def load(name: str, span) -> object:
    if name not in DATASETS:
        return Unknown(f"keras.datasets.{name} holds sequences of varying length; cnnc knows the "
                       "shapes of image and tabular datasets only", span, data=True)
    (xtr, ytr), (xte, yte), classes, dtype = DATASETS[name]
    return ((ArrayVal(xtr, dtype=dtype), ArrayVal(ytr, classes, "uint8")),
            (ArrayVal(xte, dtype=dtype), ArrayVal(yte, classes, "uint8")))


def _size(shape) -> int | None:
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def reshape(a: ArrayVal, target, span) -> object:
    """numpy's reshape: one -1 inferred; the sizes must agree."""
    if isinstance(target, int):
        target = (target,)
    if not isinstance(target, (tuple, list)) or not all(isinstance(t, int) and not isinstance(t, bool)
                                                        for t in target):
        return Unknown("reshape to a shape cnnc cannot work out", span, data=True)
    target = tuple(target)
    size = _size(a.shape)
    if size is None:
        return Unknown("reshape of an array of unknown size", span, data=True)
    if target.count(-1) > 1 or any(t < -1 for t in target):
        return Unknown(f"numpy cannot reshape to {target}", span, data=True)
    known = _size(tuple(t for t in target if t != -1))
    if -1 in target:
        if known == 0 or size % known:
            return Unknown(f"numpy cannot reshape an array of shape {a.shape} to {target}", span,
                           data=True)
        target = tuple(size // known if t == -1 else t for t in target)
    elif known != size:
        return Unknown(f"numpy cannot reshape an array of shape {a.shape} to {target}", span,
                       data=True)
    return ArrayVal(target, a.classes, a.dtype)


def expand_dims(a: ArrayVal, axis, span) -> object:
    if not isinstance(axis, int) or isinstance(axis, bool):
        return Unknown("expand_dims with an axis cnnc cannot work out", span, data=True)
    n = len(a.shape) + 1
    if not -n <= axis < n:
        return Unknown(f"axis {axis} is out of range for an array of rank {len(a.shape)}", span,
                       data=True)
    axis %= n
    return ArrayVal(a.shape[:axis] + (1,) + a.shape[axis:], a.classes, a.dtype)


def to_categorical(a: ArrayVal, num_classes, span) -> object:
    n = num_classes if isinstance(num_classes, int) and not isinstance(num_classes, bool) else None
    if n is None and num_classes is None:
        n = a.classes
    if n is None:
        return Unknown("to_categorical of labels whose number of classes cnnc does not know",
                       span, data=True)
    shape = a.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    return ArrayVal(shape + (n,), n, "float32")


def index(a: ArrayVal, key, span) -> object:
    """Basic indexing: ints, slices, None/np.newaxis, Ellipsis."""
    keys = key if isinstance(key, tuple) else (key,)
    if sum(k is Ellipsis for k in keys) > 1:
        return Unknown("an index with two '...'", span, data=True)
    consuming = [k for k in keys if k is not None and k is not Ellipsis]
    if len(consuming) > len(a.shape):
        return Unknown(f"too many indices for an array of rank {len(a.shape)}", span, data=True)
    if Ellipsis in keys:
        e = keys.index(Ellipsis)
        fill = (slice(None),) * (len(a.shape) - len(consuming))
        keys = keys[:e] + fill + keys[e + 1:]
    else:
        keys = keys + (slice(None),) * (len(a.shape) - len(consuming))
    out = []
    axis = 0
    for k in keys:
        if k is None:
            out.append(1)
            continue
        n = a.shape[axis]
        axis += 1
        if isinstance(k, slice):
            if not all(v is None or (isinstance(v, int) and not isinstance(v, bool))
                       for v in (k.start, k.stop, k.step)) or k.step == 0:
                return Unknown("a slice cnnc cannot work out", span, data=True)
            out.append(len(range(*k.indices(n))) if isinstance(n, int) else None)
        elif isinstance(k, int) and not isinstance(k, bool):
            continue
        else:
            return Unknown("indexing with arrays or masks gives a shape that depends on the data",
                           span, data=True)
    return ArrayVal(tuple(out), a.classes, a.dtype)


# Functions that make an array of a given shape: np.zeros((1, 28, 28, 1)), tf.ones([2, 3]),
# np.random.rand(4, 8), tf.random.normal((1, 32, 32, 3)), keras.ops.zeros(...)
_MAKERS = frozenset({"zeros", "ones", "empty", "full", "normal", "uniform", "standard_normal",
                     "random_sample", "random"})
_DIMS_POSITIONAL = frozenset({"rand", "randn"})


def made_array(fn: str, args: list, span) -> object | None:
    """The array such a call makes (its shape is all that counts), or None if `fn` is
    not one of them."""
    pos = [a.value for a in args if a.keyword is None]
    kws = {a.keyword: a.value for a in args if a.keyword is not None}
    if fn in _DIMS_POSITIONAL:
        shape = tuple(pos)
    elif fn in _MAKERS:
        shape = pos[0] if pos else kws.get("shape", kws.get("size"))
        shape = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else shape
    else:
        return None
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d for d in shape):
        return Unknown(f"an array whose shape is not known ({fn})", span, data=True)
    if _size(shape) is None or _size(shape) > MAX_ELEMENTS:
        return Unknown("an array too large", span, data=True)
    return ArrayVal(tuple(shape))


def concatenate(arrays, axis, span) -> object:
    """np.concatenate([x_train, x_test], axis=0): the sizes along `axis` add up."""
    if not isinstance(arrays, (list, tuple)) or not arrays or not all(
            isinstance(a, ArrayVal) for a in arrays) or not isinstance(axis, int):
        return Unknown("np.concatenate of arrays cnnc does not know", span, data=True)
    rank = len(arrays[0].shape)
    if not -rank <= axis < rank or any(len(a.shape) != rank for a in arrays):
        return Unknown("np.concatenate of arrays of different ranks", span, data=True)
    axis %= rank
    rest = {a.shape[:axis] + a.shape[axis + 1:] for a in arrays}
    if len(rest) != 1:
        return Unknown("np.concatenate of arrays whose shapes differ", span, data=True)
    shape = list(arrays[0].shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    return ArrayVal(tuple(shape), arrays[0].classes, arrays[0].dtype)


# Functions that keep an array's shape: np.clip(x, 0, 1), tf.clip_by_value, tf.cast, ...
ELEMENTWISE = frozenset({"clip", "clip_by_value", "cast", "abs", "sqrt", "exp", "log", "square",
                         "round", "floor", "ceil", "minimum", "maximum", "convert_to_tensor",
                         "constant", "identity", "asarray", "array", "float32", "negative",
                         "sign", "tanh", "sigmoid", "nan_to_num"})


def elementwise(fn: str, args: list) -> object | None:
    """The array such a function returns (its first array argument's shape), else None."""
    if fn not in ELEMENTWISE:
        return None
    return next((a.value for a in args if isinstance(a.value, ArrayVal)), None)


def literal_array(value, dtype: str | None = None) -> ArrayVal | None:
    """np.array([[1, 2], [3, 4]]): the shape of a nested list or tuple of numbers (a
    rectangular one), or None."""
    shape: list[int] = []
    level = [value]
    while level and isinstance(level[0], (list, tuple)):
        n = len(level[0])
        if any(not isinstance(x, (list, tuple)) or len(x) != n for x in level) or len(shape) > 32:
            return None
        shape.append(n)
        level = [y for x in level for y in x]
        if len(level) > 1_000_000:
            return None
    if not shape or not all(isinstance(x, (int, float, bool)) for x in level):
        return None
    kind = dtype or ("float64" if any(isinstance(x, float) for x in level) else "int64")
    return ArrayVal(tuple(shape), dtype=kind)
