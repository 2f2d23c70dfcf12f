"""The Python API: `cnnc.load("net.cnn")` gives a `Model`.

A Model is the checked IR plus its shape analysis, and optionally weights.
Training, prediction and ONNX export import NumPy/onnx only when called.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from cnnc.analysis.infer import Analysis, LayerInfo
from cnnc.frontends.cnn import Checked, check_text
from cnnc.frontends.dispatch import check_file, load_weights
from cnnc.support.diagnostics import Diagnostic, NumericWarning, UsageError, did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from cnnc.backends.numpy.training import TrainState


class Model:
    """A checked model. Raises CnncError at construction if the source has errors."""

    def __init__(self, checked: Checked):
        if not isinstance(checked, Checked):
            raise UsageError(f"Model() takes a checked model, got {_type(checked)}",
                             ["use cnnc.load(path) or cnnc.loads(text)"])
        self._checked = checked.raise_on_error()
        self._weights: dict[str, "np.ndarray"] | None = None
        self.history = None
        self.optimizer_state: dict | None = None
        self._trained_on: tuple | None = None      # fit()'s x as scaling sees it (_check_scaling)

    # --- what the checker knows ---------------------------------------------------

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def ir(self):
        return self._checked.ir

    @property
    def analysis(self) -> Analysis:
        return self._checked.analysis

    @property
    def source(self):
        return self._checked.source

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return self._checked.diagnostics

    @property
    def layers(self) -> list[LayerInfo]:
        return list(self.analysis.infos)

    def layer(self, name: str) -> LayerInfo:
        if not isinstance(name, str):
            raise UsageError(f"layer() takes a layer's name (a str), got {_type(name)}")
        names = [i.name for i in self.analysis.infos]
        if name not in names:
            hint = did_you_mean(name, names)
            raise UsageError(f"model '{self.name}' has no layer named {name!r}",
                             [hint] if hint else [f"its layers: {_listing(names)}"])
        return self.analysis.info(name)

    @property
    def input_shape(self) -> tuple:
        return (None, *self.ir.input_shape)

    @property
    def output_shape(self) -> tuple:
        return (None, *self.analysis.output_shape)

    @property
    def total_params(self) -> int:
        return self.analysis.total_params

    @property
    def trainable_params(self) -> int:
        return self.analysis.trainable_params

    @property
    def non_trainable_params(self) -> int:
        return self.analysis.non_trainable_params

    @property
    def total_macs(self) -> int | None:
        return self.analysis.total_macs

    @property
    def compile_spec(self):
        return self.ir.compile

    @property
    def fit_spec(self):
        return self.ir.fit

    def count_params(self) -> int:
        return self.total_params

    def summary(self, format: str = "text", **options: Any) -> str:
        from cnnc.backends.report import summary
        if not isinstance(format, str) or format not in summary.FORMATS:
            hint = did_you_mean(format, summary.FORMATS) if isinstance(format, str) else ""
            raise UsageError(f"unknown summary format {format!r}; choose from "
                             f"{', '.join(summary.FORMATS)}", [hint] if hint else [])
        _known_keywords("summary", options, ("keras_only", "ascii"))
        _flag("keras_only", options.get("keras_only", False))
        if options.get("ascii") is not None:
            _flag("ascii", options["ascii"])
        return summary.render(self.analysis, format, diagnostics=self.diagnostics, **options)

    # --- weights --------------------------------------------------------------------

    @property
    def has_weights(self) -> bool:
        """Whether weights were set, loaded or drawn, or come with the model's file (a
        Keras file); False for a fresh model."""
        return self._weights is not None or self._checked.weights is not None

    @property
    def weights(self) -> dict[str, "np.ndarray"]:
        """Weights keyed "layer/weight": those of the model's file (a Keras file), else
        freshly initialised on first use."""
        if self._weights is None:
            self.require_fixed("weights")
            if self._checked.weights is not None:
                from cnnc.support import weights as W
                self._weights = W.check(self._checked.weights(self.analysis),
                                        self.analysis.weight_shapes(), self.name, self.ir.path,
                                        owned=True)
            else:
                self.init_weights()
        return self._weights

    @contextlib.contextmanager
    def _training_state(self) -> Iterator["TrainState"]:
        """What training changes (the weights, or None for a fresh model whose weights
        training draws from its seed; the optimizer's state), given back to the model when
        training ends, however it ends. For fit() and `cnnc train`."""
        from cnnc.backends.numpy.training import TrainState
        state = TrainState(self.weights if self.has_weights else None, self.optimizer_state)
        try:
            yield state
        finally:
            if state.weights is not None:
                self._weights = state.weights
            self.optimizer_state = state.optimizer

    def require_fixed(self, what: str = "this") -> None:
        """UsageError when a weight's shape (or a layer argument) still depends on an open
        size: training, running and exporting need them fixed. It names each size, where it
        comes from, what depends on it, and how to give it."""
        unfixed = self.analysis.unfixed()
        if not unfixed:
            return
        origins = self.ir.dims
        notes = []
        for name, uses in unfixed.items():
            where = f" ({origins[name]})" if name in origins else ""
            more = f" and {len(uses) - 3} more" if len(uses) > 3 else ""
            notes.append(f"{name}{where} decides {', '.join(uses[:3])}{more}")
        names = list(unfixed)
        example = " ".join(f"--define {n}=N" for n in names)
        notes.append(f"give {'it' if len(names) == 1 else 'them'}: {example} on the command line, "
                     f"or cnnc.load(path, define={{{', '.join(repr(n) + ': N' for n in names)}}})")
        raise UsageError(f"{what} needs the weights of model '{self.name}', whose shapes are not "
                         f"fixed yet: they depend on {', '.join(names)}", notes)

    def init_weights(self, seed: int | None = None) -> None:
        self.require_fixed("init_weights()")
        if seed is not None:
            seed = _whole("seed", seed, 0)
        from cnnc.backends.numpy.initializers import initial_weights
        self._weights = initial_weights(self.analysis, seed)

    def get_weights(self) -> dict[str, "np.ndarray"]:
        return {k: v.copy() for k, v in self.weights.items()}

    def set_weights(self, weights: Mapping[str, "np.ndarray"]) -> None:
        """Weights keyed "layer/weight" (as get_weights and save_weights give them)."""
        self.require_fixed("set_weights()")
        from cnnc.support import weights as W
        self._weights = W.check(_weight_arrays(weights), self.analysis.weight_shapes(), self.name,
                                "set_weights")

    def load_weights(self, path: str | Path) -> None:
        self.require_fixed("load_weights()")
        self._weights = load_weights(_path(path, "load_weights"), self.analysis)

    def save_weights(self, path: str | Path) -> None:
        """Write the weights, atomically: a failed write keeps the old file and raises
        UsageError naming the path. The suffix says the format: `.npz` (cnnc's, keys
        "layer/weight") or `.weights.h5` (Keras 3's, what keras's save_weights writes and
        load_weights reads); any other is a UsageError. Missing parent folders are
        created, as every output of the CLI (`-o`, `--history`, `--checkpoint-dir`) creates
        them; a parent that is a file is a UsageError. The model's own file is never
        overwritten."""
        path = _path(path, "save_weights")
        kind = weights_format(path)
        if kind == "npz":
            from cnnc.support import weights as W
            W.save(path, self.weights, protect=[self.ir.path])
            return
        from cnnc.backends.keras import h5
        if not self.analysis.complete:
            raise UsageError("save_weights() to a .weights.h5 needs every shape of the model known")
        from cnnc.support.atomic import write_bytes
        write_bytes(path, h5.to_bytes(self.analysis, self.weights), protect=[self.ir.path])

    # --- running --------------------------------------------------------------------

    def predict(self, x, batch_size: int = 32, scale: bool = True):
        """Inference-mode forward pass of the NumPy reference, in batches. Like fit and
        evaluate, uint8 images are scaled by 1/255 (scale=False: not) and a missing
        channel axis is added (support/data.py, prepare_x). A model with several inputs takes a
        list of arrays (model input order); several outputs come back as a list."""
        import numpy as np

        from cnnc.backends.numpy.network import Network, check_input
        from cnnc.support.data import prepare_x
        batch_size = _whole("batch_size", batch_size, 1)
        _flag("scale", scale)
        nodes = self.ir.inputs
        many = len(nodes) > 1
        if many and (not isinstance(x, (list, tuple)) or len(x) != len(nodes)):
            raise UsageError(f"model '{self.name}' has {len(nodes)} inputs "
                             f"({', '.join(n.name for n in nodes)}): pass a list of {len(nodes)} arrays")
        from cnnc.support import resources  # as the CLI: refused before any allocation
        resources.check(self.analysis, batch_size, "predict", "infer", self.name)
        xs = [_array(a, f"x[{i}]" if many else "x") for i, a in enumerate(list(x) if many else [x])]
        if not many:
            self._check_scaling(xs[0], scale, None, "predict")
        names = [f"x[{i}] (input '{n.name}')" if many else "x" for i, n in enumerate(nodes)]
        ready = [check_input(prepare_x(a, n.shape, scale=scale, what=what,
                                       model=f"model '{self.name}'"), self.analysis, i)
                 for i, (a, n, what) in enumerate(zip(xs, nodes, names))]
        net = Network(self.analysis, self.weights)
        # Overflow inside the network is reported once, below, not as NumPy's warnings.
        with np.errstate(all="ignore"):
            out = net.predict(ready if many else ready[0], batch_size=batch_size)
        _warn_non_finite("predict", out if isinstance(out, list) else [out])
        return out

    def fit(self, x, y, **kwargs: Any):
        """Keras's fit: keyword arguments override the file's fit(...) settings."""
        import numpy as np

        from cnnc.backends.numpy import training as train
        _known_keywords("fit", kwargs, _parameters(train.fit) | set(train._UNSUPPORTED))
        _check_run_options(kwargs)
        if kwargs.get("checkpoint") is not None:
            kwargs["checkpoint"] = _path(kwargs["checkpoint"], "fit(checkpoint=...)")
        x, y = _array(x, "x", kwargs.get("divisor")), _array(y, "y")
        val = kwargs.get("validation_data")
        if isinstance(val, (tuple, list)) and len(val) == 2:
            kwargs["validation_data"] = (_array(val[0], "validation_data x", kwargs.get("divisor")),
                                         _array(val[1], "validation_data y"))
        # The training step reports NaN and inf itself (TrainingStopped); validation
        # losses that overflow are one NumericWarning, never NumPy's warnings.
        scale, divisor = kwargs.get("scale", True), kwargs.get("divisor")
        if isinstance(val, (tuple, list)) and len(val) == 2:
            _refuse_scaling(x, kwargs["validation_data"][0], scale, divisor, "validation_data x")
        with np.errstate(all="ignore"), self._training_state() as state:
            self.history = train.fit(self.analysis, state, x, y, **kwargs)
        # what the next evaluate/predict must agree with: the dtype, and for data cnnc does
        # not scale its largest value (a one-value array: the user's x is not kept)
        from cnnc.support import data as D
        summary = x.reshape(-1)[:0] if D.scaled_by_cnnc(x, scale, divisor) else \
            np.array([D._abs_max(x) if x.size else 0], dtype=x.dtype)
        self._trained_on = (summary, scale, divisor)
        last = {k: v[-1] for k, v in self.history.history.items() if v}
        _warn_non_finite_logs("fit", last)
        return self.history

    def evaluate(self, x, y, batch_size: int | None = None, return_dict: bool = False, **kwargs: Any):
        import numpy as np

        from cnnc.backends.numpy import training as train
        from cnnc.runtime.evaluate import evaluate
        _known_keywords("evaluate", kwargs, _parameters(train.evaluate) - {"batch_size", "return_dict"}
                        | {"sample_weight", "steps", "callbacks", "runtime", "provider"})
        if batch_size is not None:
            batch_size = _whole("batch_size", batch_size, 1)
        _flag("return_dict", return_dict)
        _check_run_options(kwargs)
        for key in ("runtime", "provider"):
            if key in kwargs and not isinstance(kwargs[key], str):
                raise UsageError(f"{key} must be a str, got {_type(kwargs[key])}")
        x, y = _array(x, "x", kwargs.get("divisor")), _array(y, "y")
        # what refuses the model outright, before a fresh model's weights are drawn
        train.require_single_io(self.analysis, "evaluate")
        self._check_scaling(x, kwargs.get("scale", True), kwargs.get("divisor"), "evaluate")
        from cnnc.support import resources
        resources.check(self.analysis, 32 if batch_size is None else batch_size, "evaluate",
                        "infer", self.name)
        with np.errstate(all="ignore"):
            logs = evaluate(self.analysis, self.weights, x, y, batch_size=batch_size,
                            return_dict=True, **kwargs)
        _warn_non_finite_logs("evaluate", logs)
        if return_dict:
            return logs
        values = list(logs.values())     # Keras: the loss alone, or [loss, *metrics]
        return values[0] if len(values) == 1 else values

    def _check_scaling(self, x, scale, divisor, what: str) -> None:
        """UsageError when `x` would be scaled differently from what this model's fit()
        trained on (uint8 images are divided by 255, floats are not): scored on the wrong
        scale, the results would be wrong without a word."""
        trained = self._trained_on
        if trained is None or not isinstance(scale, bool):
            return
        x_fit, fit_scale, fit_divisor = trained
        if fit_scale != scale or fit_divisor != divisor:
            return      # the caller chose another scaling on purpose
        _refuse_scaling(x_fit, x, scale, divisor, f"{what}'s x", "fit()'s x")

    def to_onnx(self, path: str | Path | None = None, opset: int | None = None):
        """The ONNX model (verified); written atomically to `path` if given."""
        from cnnc.backends import onnx as lower
        if path is not None:
            path = _path(path, "to_onnx")
        if opset is not None:
            opset = _whole("opset", opset, 1)
        return lower.export(self.analysis, self.weights, path, opset=opset, source=self.source)


def weights_format(path: str) -> str:
    """"npz" or "h5" from a weights file's suffix (.npz, .weights.h5), or UsageError."""
    low = str(path).lower()
    if low.endswith(".npz"):
        return "npz"
    if low.endswith(".weights.h5"):
        return "h5"
    suffix = Path(path).suffix or "(none)"
    raise UsageError(f"save_weights() cannot tell the format of '{path}' from its suffix {suffix}",
                     ["use .npz (cnnc's weights, keys 'layer/weight') or .weights.h5 (Keras 3's "
                      "save_weights format)"])


def _refuse_scaling(trained, given, scale, divisor, given_what: str,
                    trained_what: str = "x") -> None:
    from cnnc.support import data as D
    problem = D.scaling_mismatch(trained, given, scale, divisor, trained_what, given_what)
    if problem:
        raise UsageError(problem, ["give both the same dtype (e.g. uint8 pixels in both), or scale "
                                   "them yourself and pass scale=False"])


def load(path: str | Path, define: Mapping[str, int] | None = None,
         input_shape: tuple | None = None) -> Model:
    """Read, parse and check a model: a .cnn file, a Keras model file (.keras, .h5, .json)
    or a Keras script or notebook. Raises CnncError (with every diagnostic) if it has
    errors, UsageError if it cannot be read. `define` fixes open sizes by name
    ({"num_classes": 10}); `input_shape` the sizes its input leaves open."""
    return Model(check_file(_path(path, "load"), input_shape=_input_shape(input_shape),
                            sizes=_sizes(define)))


def loads(text: str, path: str = "<string>", define: Mapping[str, int] | None = None) -> Model:
    """Check the text of a .cnn file (a str; bytes are read as UTF-8). `path` names it
    in diagnostics; `define` fixes open sizes by name."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise UsageError(f"loads() got bytes that are not UTF-8 text ({e.reason} at byte "
                             f"{e.start})", ["pass the text as a str"]) from None
    if not isinstance(text, str):
        raise UsageError(f"loads() takes the model's text (a str), got {_type(text)}",
                         ["to read a file, use cnnc.load(path)"])
    if "\x00" in text:
        raise UsageError("loads() got text with a NUL character: binary data, not a .cnn text")
    if not isinstance(path, str):
        raise UsageError(f"loads(path=...) names the text in messages: a str, got {_type(path)}")
    return Model(check_text(text, path, sizes=_sizes(define)))


def _sizes(define) -> dict[str, int] | None:
    """`define=`: open sizes by name, each a whole number >= 1."""
    if define is None:
        return None
    if not isinstance(define, Mapping):
        raise UsageError(f"define must be a dict of sizes by name, e.g. {{'num_classes': 10}}, "
                         f"got {_type(define)}")
    out = {}
    for key, value in define.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 200:
            raise UsageError(f"define: a size's name must be a name such as 'num_classes', got {key!r:.60}")
        out[key] = _size(f"define[{key!r}]", value)
    return out


def _size(name: str, value: Any) -> int:
    """A size: a whole number >= 1 (NumPy integers too, never a bool), checked without
    loading NumPy."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise UsageError(f"{name} must be a whole number >= 1, got {value!r:.60}")
    return int(value)


def _input_shape(shape) -> tuple | None:
    if shape is None:
        return None
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)) or not shape:
        raise UsageError(f"input_shape must be a tuple of sizes such as (28, 28, 1), got {shape!r:.60}")
    return tuple(_size("input_shape", n) for n in shape)


# --- checking what the API is given -----------------------------------------------------------
#
# Every public entry point checks its arguments here, so that a wrong type or value is a
# UsageError naming the argument, never a TypeError or AttributeError from deep inside.

def _type(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _listing(names, limit: int = 10) -> str:
    names = list(names)
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _whole(name: str, value: Any, low: int) -> int:
    from cnnc.backends.numpy.training import whole_number  # one rule for the API, fit and the CLI
    return whole_number(name, value, low)


def _flag(name: str, value: Any) -> bool:
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    if not (isinstance(value, bool) or numpy_bool):
        raise UsageError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _path(value: Any, what: str) -> str | Path:
    """A file path argument: a str or os.PathLike (bytes are decoded as the OS does)."""
    if isinstance(value, (bytes, bytearray)):
        value = os.fsdecode(bytes(value))
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
        if isinstance(value, bytes):
            value = os.fsdecode(value)
    if not isinstance(value, str):
        raise UsageError(f"{what}() takes a file path (a str or pathlib.Path), got {_type(value)}")
    if not value:
        raise UsageError(f"{what}() got an empty path")
    if "\x00" in value:
        raise UsageError(f"{what}() got a path with a NUL character: {value!r}")
    return value


# what the back end's fit and evaluate take that the Model gives them itself
_GIVEN_BY_THE_MODEL = {"analysis", "state", "weights", "forward", "x", "y"}


def _parameters(fn) -> set[str]:
    import inspect
    return {p.name for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - _GIVEN_BY_THE_MODEL


class KeywordError(UsageError, TypeError):
    """An unexpected keyword argument: cnnc's UsageError, and a TypeError as Python's
    own for a wrong keyword (code that catches TypeError keeps working)."""


def _known_keywords(what: str, given: Mapping[str, Any], known) -> None:
    for key in given:
        if key not in known:
            hint = did_you_mean(key, known)
            raise KeywordError(f"{what}() got an unexpected keyword argument {key!r}",
                             [hint] if hint else [f"{what}() takes: {', '.join(sorted(known))}"])


def _check_run_options(kw: Mapping[str, Any]) -> None:
    """fit() and evaluate() keywords that the back end's training.py takes without checking their types
    (divisor is used here, by _array, before training.py sees it)."""
    from cnnc.analysis.compile_spec import LossSpec, OptimizerSpec
    if kw.get("loss") is not None and not isinstance(kw["loss"], (str, LossSpec)):
        raise UsageError(f"loss must be a loss's name (a str), got {_type(kw['loss'])}")
    if kw.get("optimizer") is not None and not isinstance(kw["optimizer"], (str, OptimizerSpec)):
        raise UsageError(f"optimizer must be an optimizer's name (a str), got {_type(kw['optimizer'])}",
                         ["supported: SGD, RMSprop, Adam"])
    metrics = kw.get("metrics")
    if metrics is not None:
        if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
            raise UsageError(f"metrics must be a list of names, got {metrics!r}",
                             ["e.g. metrics=['accuracy']"])
        for m in metrics:
            if not isinstance(m, str):
                raise UsageError(f"metrics must be a list of names (str), got {_type(m)} in it")
    if kw.get("divisor") is not None:   # (train.fit checks learning_rate and checkpoint_every)
        from cnnc.backends.numpy.training import positive_number
        positive_number("divisor", kw["divisor"])
    for key in ("scale", "resume"):
        if key in kw:
            _flag(key, kw[key])
    if kw.get("on_epoch_end") is not None and not callable(kw["on_epoch_end"]):
        raise UsageError(f"on_epoch_end must be a function, got {_type(kw['on_epoch_end'])}")
    if kw.get("stream") is not None and not callable(getattr(kw["stream"], "write", None)):
        raise UsageError(f"stream must be a text stream (with a write method), got {_type(kw['stream'])}")
    if "verbose" in kw and kw["verbose"] is not None:
        import io

        from cnnc.support.progress import resolve_verbose
        resolve_verbose(kw["verbose"], io.StringIO())


_NOT_ARRAYS = (str, bytes, bytearray, dict, set, frozenset, type(None))


def _array(value: Any, what: str, divisor: Any = None) -> "np.ndarray":
    """An array argument (x, y) as a NumPy array of numbers, checked: not a str, dict or
    None; not ragged; numbers (not objects, strings or complex); finite and within
    float32's range (cnnc computes in float32)."""
    import numpy as np
    if isinstance(value, _NOT_ARRAYS) or isinstance(value, Mapping):
        raise UsageError(f"{what} must be an array (a NumPy array or nested lists of numbers), "
                         f"got {_type(value)}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{what} cannot be read as an array: its samples have different shapes "
                         "(a ragged nested list)" if "inhomogeneous" in str(e) or "sequence" in str(e)
                         else f"{what} cannot be read as an array ({e})") from None
    if arr.dtype.kind not in "biuf":
        kind = {"c": "complex numbers", "O": "Python objects", "U": "strings", "S": "bytes",
                "M": "dates", "m": "time spans", "V": "records"}.get(arr.dtype.kind, str(arr.dtype))
        raise UsageError(f"{what} holds {kind} (dtype {arr.dtype}); expected real numbers",
                         ["convert it, e.g. np.asarray(x, dtype='float32')"])
    if arr.dtype.kind == "f":
        _check_finite(arr, what, divisor)
    return arr


def _check_finite(arr, what: str, divisor: Any) -> None:
    """NaN, inf, or (for float64) values beyond float32's range: a UsageError saying so.
    Checked in slices of the first axis, so no second copy of a large array is made."""
    import numpy as np
    limit = float(np.finfo(np.float32).max)
    if isinstance(divisor, numbers.Real) and not isinstance(divisor, bool) and divisor > 0 \
            and math.isfinite(divisor):
        limit *= float(divisor)
    wide = arr.dtype.itemsize > 4
    if arr.ndim == 0:
        arr = arr.reshape(1)
    step = max(1, (1 << 22) // max(1, arr[0].size if len(arr) else 1))
    for i in range(0, len(arr), step):
        block = arr[i:i + step]
        with np.errstate(all="ignore"):
            bad = ~np.isfinite(block)
            if bad.any():
                first = i + int(np.argmax(bad.reshape(len(block), -1).any(axis=1)))
                raise UsageError(f"{what} holds NaN or infinite values (sample {first} is the "
                                 "first with one); cnnc cannot compute with them",
                                 ["replace them (np.nan_to_num) or drop those samples"])
            if wide and (np.abs(block) > limit).any():
                raise UsageError(f"{what} holds values too large for float32 (the largest is "
                                 f"{float(np.abs(arr).max()):g}); cnnc computes in float32",
                                 ["scale the data down (divide by its maximum)"])


def _weight_arrays(weights: Any) -> dict:
    """set_weights' argument as {str: ndarray}: a mapping with str keys and arrays of
    real numbers (the shapes, NaN and missing keys are weights.check's)."""
    import numpy as np
    if not isinstance(weights, Mapping):
        raise UsageError(f"set_weights() takes a dict of arrays keyed 'layer/weight', got {_type(weights)}",
                         ["get_weights() gives one in that form"])
    out = {}
    for key, value in weights.items():
        if not isinstance(key, str):
            raise UsageError(f"set_weights(): the keys are 'layer/weight' names (str), got "
                             f"{key!r:.60}")
        if isinstance(value, _NOT_ARRAYS) or isinstance(value, Mapping):
            raise UsageError(f"set_weights(): '{key}' must be an array, got {_type(value)}")
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            raise UsageError(f"set_weights(): '{key}' cannot be read as an array "
                             "(a ragged nested list)") from None
        if arr.dtype.kind not in "biuf":
            raise UsageError(f"set_weights(): '{key}' has dtype {arr.dtype}; expected real numbers")
        out[key] = arr
    return out


def _warn_non_finite(what: str, outputs) -> None:
    import warnings

    import numpy as np
    for out in outputs:
        if out.dtype.kind == "f" and out.size and not np.isfinite(out).all():
            rows = out.reshape(len(out), -1) if len(out) else out
            n = int(np.count_nonzero(~np.isfinite(rows).all(axis=1)))
            warnings.warn(f"{what}: the outputs of {n} of {len(out)} samples are NaN or inf "
                          "(overflow in float32: inputs or weights too large)",
                          NumericWarning, stacklevel=3)
            return


def _warn_non_finite_logs(what: str, logs: Mapping) -> None:
    import warnings
    bad = [str(k) for k, v in logs.items()
           if isinstance(v, numbers.Real) and not math.isfinite(v)]
    if bad:
        warnings.warn(f"{what}: {', '.join(bad)} came out NaN or inf (overflow in float32: "
                      "inputs or weights too large)", NumericWarning, stacklevel=3)
