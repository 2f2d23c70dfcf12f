"""tf.data pipelines and Keras's directory loaders, as far as shapes go.

`tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(10000).batch(32)`
keeps the arrays' sample shapes; `keras.utils.image_dataset_from_directory(...,
image_size=(180, 180))` yields images of a shape its arguments decide. A model
fitted on (or called on) such a pipeline is built on that shape, as Keras builds
it; `.map(...)` may change shapes, so what follows a map is not known.
"""

from __future__ import annotations

from cnnc.frontends.python.values import ArgVal, ArrayVal, DataStream, Unknown

# Methods that pass the elements through unchanged.
_SAME = frozenset({"shuffle", "prefetch", "cache", "repeat", "take", "skip", "with_options",
                   "shard", "apply_options", "ignore_errors", "assert_cardinality"})
_COLOR_CHANNELS = {"rgb": 3, "grayscale": 1, "rgba": 4}


def _arg(args: list[ArgVal], i: int, key: str, default=None):
    pos = [a for a in args if a.keyword is None]
    if i < len(pos):
        return pos[i].value
    return next((a.value for a in args if a.keyword == key), default)


def from_tensor_slices(args: list[ArgVal], span) -> object:
    """The elements are the arrays' rows (a tuple or dict of arrays gives tuples)."""
    data = _arg(args, 0, "tensors")
    parts = tuple(data) if isinstance(data, (tuple, list)) else (data,)
    if not parts or not all(isinstance(p, ArrayVal) and p.shape for p in parts):
        return Unknown("a tf.data pipeline over data cnnc does not know", span, data=True)
    rows = tuple(ArrayVal(tuple(p.shape[1:]), p.classes, p.dtype) for p in parts)
    return DataStream(rows if isinstance(data, (tuple, list)) else rows[0])


def image_dataset_from_directory(args: list[ArgVal], span) -> object:
    """Batches of images of `image_size` with the channels `color_mode` gives."""
    size = _arg(args, 99, "image_size", (256, 256))
    color = _arg(args, 99, "color_mode", "rgb")
    batch = _arg(args, 99, "batch_size", 32)
    labels = _arg(args, 99, "labels", "inferred")
    if not (isinstance(size, (tuple, list)) and len(size) == 2 and all(
            isinstance(d, int) and d > 0 for d in size)) or color not in _COLOR_CHANNELS:
        return Unknown("image_dataset_from_directory's image_size or color_mode is not known",
                       span, data=True)
    image = ArrayVal(tuple(size) + (_COLOR_CHANNELS[color],))
    element = (image, ArrayVal(())) if labels is not None else image
    return DataStream(element, batch if isinstance(batch, int) and batch > 0 else None)


def flow_from_directory(args: list[ArgVal], span, dataframe: bool = False) -> object:
    """ImageDataGenerator().flow_from_directory(dir, target_size=(150, 150), color_mode=...)
    (or flow_from_dataframe): batches of images of that size; the labels' shape depends
    on the folders (the number of classes), which cnnc does not read."""
    size = _arg(args, 99 if dataframe else 1, "target_size", (256, 256))
    color = _arg(args, 99 if dataframe else 2, "color_mode", "rgb")
    batch = _arg(args, 99 if dataframe else 5, "batch_size", 32)
    if not (isinstance(size, (tuple, list)) and len(size) == 2 and all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in size)) or color not in _COLOR_CHANNELS:
        return Unknown("the images' target_size or color_mode is not known", span, data=True)
    labels = Unknown("the labels of images read from folders (one per class)", span, data=True)
    return DataStream((ArrayVal(tuple(size) + (_COLOR_CHANNELS[color],)), labels),
                      batch if isinstance(batch, int) and batch > 0 else None)


def flow(args: list[ArgVal], span) -> object:
    """ImageDataGenerator().flow(x, y, batch_size=32): batches of x's samples."""
    x, y = _arg(args, 0, "x"), _arg(args, 1, "y")
    batch = _arg(args, 2, "batch_size", 32)
    if not isinstance(x, ArrayVal) or not x.shape:
        return Unknown("a data flow over data cnnc does not know", span, data=True)
    rows = ArrayVal(tuple(x.shape[1:]), x.classes, x.dtype)
    element = (rows, ArrayVal(tuple(y.shape[1:]), y.classes, y.dtype)) if isinstance(y, ArrayVal) and y.shape \
        else rows
    return DataStream(element, batch if isinstance(batch, int) and batch > 0 else None)


def method(ds: DataStream, name: str, args: list[ArgVal], span) -> object:
    if name in _SAME:
        return ds
    if name == "batch":
        n = _arg(args, 0, "batch_size")
        return DataStream(ds.element, n if isinstance(n, int) and n > 0 else None)
    if name == "unbatch":
        return DataStream(ds.element, None)
    if name in ("next", "__next__"):
        return batches(ds)[0]
    if name in ("reset", "on_epoch_end"):
        return None
    return Unknown(f"the elements of a tf.data pipeline after .{name}() are not known", span,
                   data=True)


def batches(ds: DataStream) -> list:
    """What a `for` loop over the pipeline yields, once (its shape is all that counts)."""
    def batched(a):
        if not isinstance(a, ArrayVal):
            return a
        return ArrayVal(((ds.batch or 1),) + tuple(a.shape), a.classes, a.dtype)
    e = ds.element
    if isinstance(e, tuple):
        return [tuple(batched(a) for a in e)]
    return [batched(e)]


def sample_shape(ds: DataStream) -> tuple | None:
    """One sample's shape of the model's input x (the first part of each element)."""
    e = ds.element[0] if isinstance(ds.element, tuple) else ds.element
    return tuple(e.shape) if isinstance(e, ArrayVal) and e.shape else None
