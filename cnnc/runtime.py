"""Running ONNX models on onnxruntime: providers, sessions, input checks, batches.

    sess = runtime.load_session("mnist.onnx", provider="auto")
    y = runtime.run_batches(sess, x, batch_size=256)
    y = runtime.predict_onnx(model, x)        # a cnnc Model with its current weights

Providers: "cpu"; "cuda" (onnxruntime-gpu and a GPU; otherwise a clear error
naming the providers that are there); "auto" (CUDA when it is usable, else CPU).
Every problem with the user's files or data is a UsageError (exit status 2).
"""

from __future__ import annotations

import hashlib
import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .diagnostics import UsageError
from .files import read_bytes, reading

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime as ort

    from .model import Model

PROVIDERS = ("auto", "cpu", "cuda")
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
GPU_HINT = ("for CUDA install the GPU build of onnxruntime: pip install 'cnnc[gpu]' "
            "(onnxruntime-gpu, in place of onnxruntime) on a machine with an NVIDIA GPU and CUDA")

# ONNX element types onnxruntime reports -> NumPy dtypes.
_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
           "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
           "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def cpu_cores() -> int:
    """Cores this process may use (the affinity mask, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --- providers and sessions -----------------------------------------------------------

def available_providers() -> list[str]:
    import onnxruntime as ort
    return list(ort.get_available_providers())


def providers_for(provider: str) -> list[str]:
    """The onnxruntime provider list for auto|cpu|cuda."""
    if provider not in PROVIDERS:
        raise UsageError(f"unknown provider {provider!r}", [f"choose one of: {', '.join(PROVIDERS)}"])
    if provider == "cpu":
        return [CPU]
    available = available_providers()
    if CUDA in available:
        return [CUDA, CPU]
    if provider == "cuda":
        raise UsageError("the CUDA provider was asked for, but this onnxruntime has none",
                         [f"available providers: {', '.join(available)}", GPU_HINT,
                          "or use --provider cpu (or auto)"])
    return [CPU]


def session_options(threads: int | None = None) -> "ort.SessionOptions":
    """All graph optimisations; intra-op threads = the cores we may use."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or cpu_cores()
    opts.log_severity_level = 3  # errors only: a CUDA fallback is reported by us, not by a log line
    return opts


def make_session(model: bytes, provider: str = "auto", threads: int | None = None,
                 what: str = "the model") -> "ort.InferenceSession":
    """A session for serialized ONNX bytes; UsageError when onnxruntime refuses it."""
    import onnxruntime as ort
    providers = providers_for(provider)
    try:
        sess = ort.InferenceSession(model, sess_options=session_options(threads), providers=providers)
    except Exception as e:  # onnxruntime raises its own (pybind) exception types
        raise UsageError(f"onnxruntime cannot load {what}: {_ort_message(e)}") from None
    if provider == "cuda" and CUDA not in sess.get_providers():
        raise UsageError("the CUDA provider is installed but could not start (no usable GPU?)",
                         [f"providers in use: {', '.join(sess.get_providers())}",
                          "use --provider cpu (or auto) to run on the CPU"])
    return sess


def _ort_message(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    # "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from x failed:..." -> the reason
    return text.split(" : ")[-1] if text.startswith("[ONNXRuntimeError]") else text


def read_onnx(path: str | Path) -> bytes:
    """The bytes of an .onnx file, with a clear error when it is missing or not ONNX."""
    p = Path(path)
    data = read_bytes(path)
    if not data:
        raise UsageError(f"cannot load '{path}': the file is empty")
    if p.suffix == ".cnn" or data.lstrip().startswith((b"model", b"input", b"#")):
        raise UsageError(f"'{path}' looks like a .cnn source, not an ONNX model",
                         [f"compile it first: cnnc compile {path}"])
    _check_protobuf(data, path)
    return data


def _check_protobuf(data: bytes, path: str | Path) -> None:
    import onnx
    from google.protobuf.message import DecodeError
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise UsageError(f"cannot load '{path}': not a valid ONNX model ({e or 'protobuf parse error'})",
                         ["the file may be truncated or corrupt; export it again"]) from None
    if not proto.graph.node and not proto.graph.output:
        raise UsageError(f"cannot load '{path}': not a valid ONNX model (it has no graph)",
                         ["the file may be truncated or corrupt; export it again"])


def load_session(path: str | Path, provider: str = "auto",
                 threads: int | None = None) -> "ort.InferenceSession":
    return make_session(read_onnx(path), provider, threads, what=f"'{path}'")


# --- inputs -----------------------------------------------------------------------------

@dataclass(frozen=True)
class InputSpec:
    """A model input: name, shape with the batch axis (ints, names or None), dtype."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: Any = np.float32

    @property
    def sample(self) -> tuple[int | str | None, ...]:
        return self.shape[1:]

    def describe(self) -> str:
        dims = ", ".join("batch" if i == 0 and not isinstance(d, int) else
                         (str(d) if d is not None else "?") for i, d in enumerate(self.shape))
        return f"({dims}) {np.dtype(self.dtype).name}"


def input_spec(sess: "ort.InferenceSession") -> InputSpec:
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise UsageError(f"the model has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                         "cnnc run feeds exactly one")
    i = inputs[0]
    dtype = _DTYPES.get(i.type)
    if dtype is None:
        raise UsageError(f"the model's input {i.name!r} has type {i.type}, which cnnc run cannot feed")
    return InputSpec(i.name, tuple(d if isinstance(d, int) else (d or None) for d in i.shape), dtype)


def model_spec(model: "Model") -> InputSpec:
    from .lower import INPUT_NAME
    return InputSpec(INPUT_NAME, ("batch", *model.ir.input_shape), np.float32)


def _fmt(shape: Sequence) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _fits(shape: Sequence[int], want: Sequence) -> bool:
    return len(shape) == len(want) and all(not isinstance(w, int) or w == s
                                           for s, w in zip(shape, want))


@dataclass
class Prepared:
    array: np.ndarray
    notes: list[str] = field(default_factory=list)


def prepare_input(x: Any, spec: InputSpec, what: str = "the input", cast: bool = False) -> Prepared:
    """x checked against the model input: right dtype, batch axis first, sizes that fit."""
    notes: list[str] = []
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{what} cannot be read as an array ({e})") from None
    want = np.dtype(spec.dtype)
    if arr.dtype != want:
        arr, note = _convert(arr, want, what, cast)
        notes += [note] if note else []
    if _fits(arr.shape, spec.sample) and len(spec.shape) > 0:
        notes.append(f"{what} has shape {_fmt(arr.shape)}: one sample without the batch axis; "
                     "running it as a batch of 1")
        arr = arr[None]
    if not _fits(arr.shape, spec.shape):
        raise UsageError(f"{what} has shape {_fmt(arr.shape)}, the model's input {spec.name!r} "
                         f"takes {spec.describe()}", _shape_hints(arr.shape, spec))
    if arr.shape[0] == 0:
        raise UsageError(f"{what} has no samples (shape {_fmt(arr.shape)})")
    return Prepared(np.ascontiguousarray(arr), notes)


def _convert(arr: np.ndarray, want: np.dtype, what: str, cast: bool) -> tuple[np.ndarray, str]:
    kind = arr.dtype.kind
    if want.kind == "f" and kind == "f":
        return arr.astype(want), f"{what}: {arr.dtype} converted to {want}"
    if want.kind == "f" and kind in "iub" and not cast:
        raise UsageError(f"{what} has dtype {arr.dtype}, the model takes {want}",
                         ["scale it as the training data was, e.g. for 8-bit images: "
                          "x = (x / 255).astype('float32'); np.save('x.npy', x)",
                          "or pass --cast to convert the values unchanged"])
    if kind not in "fiub":
        raise UsageError(f"{what} has dtype {arr.dtype}, the model takes {want}")
    return arr.astype(want), f"{what}: {arr.dtype} values cast to {want} unchanged (--cast)"


def _shape_hints(shape: tuple[int, ...], spec: InputSpec) -> list[str]:
    sample, want = shape[1:], spec.sample
    hints = []
    if len(shape) == len(spec.shape) and len(want) >= 2:
        channels_first = (want[-1], *want[:-1])
        if _fits(sample, channels_first) and not _fits(sample, want):
            order = ", ".join(map(str, (0, *range(2, len(shape)), 1)))
            hints.append(f"it looks channels-first (NCHW); the model takes channels_last like "
                         f"Keras: x.transpose({order})")
    if len(shape) == len(spec.shape) - 1 and len(want) >= 2 and want[-1] == 1 \
            and _fits(shape[1:], want[:-1]):
        hints.append("the model has a channel axis of size 1: add it, e.g. x[..., None]")
    if len(shape) == len(spec.shape) - 1 and not hints:
        hints.append("the first axis must be the batch; for one sample use x[None]")
    return hints


def read_input(path: str | Path, key: str | None = None) -> tuple[np.ndarray, str]:
    """The array in a .npy file or one array of a .npz file, and a description of it."""
    try:
        with reading(path):
            loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UsageError(f"cannot read '{path}': not a .npy or .npz file ({e})",
                         ["object arrays (pickles) are never loaded"]) from None
    if isinstance(loaded, np.ndarray):
        if key is not None:
            raise UsageError(f"--key {key!r} is for .npz files; '{path}' holds a single array")
        return loaded, f"'{path}'"
    with loaded as z:
        names = list(z.files)
        pick = _pick_key(names, key, path)
        try:
            return z[pick], f"'{path}' [{pick}]"
        except ValueError as e:
            raise UsageError(f"cannot read '{pick}' from '{path}': {e}") from None


def _pick_key(names: list[str], key: str | None, path) -> str:
    if key is not None:
        if key not in names:
            raise UsageError(f"'{path}' has no array {key!r}", [f"it has: {', '.join(names) or 'nothing'}"])
        return key
    for preferred in ("input", "x", "x_test"):
        if preferred in names:
            return preferred
    if len(names) == 1:
        return names[0]
    raise UsageError(f"'{path}' holds {len(names)} arrays; which one is the input?",
                     [f"choose with --key: {', '.join(names) or '(none)'}"])


# --- running ------------------------------------------------------------------------------

def run_batches(sess: "ort.InferenceSession", x: np.ndarray, batch_size: int = 256,
                input_name: str | None = None) -> list[np.ndarray]:
    """Every output of the model on x, run `batch_size` samples at a time."""
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    name = input_name or sess.get_inputs()[0].name
    parts: list[list[np.ndarray]] = []
    for start in range(0, len(x), batch_size):
        try:
            parts.append(sess.run(None, {name: x[start:start + batch_size]}))
        except Exception as e:  # onnxruntime's own exception types
            raise UsageError(f"onnxruntime failed on samples {start}..{min(len(x), start + batch_size) - 1}: "
                             f"{_ort_message(e)}") from None
    if len(parts) == 1:
        return parts[0]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


# --- a cnnc Model on onnxruntime ----------------------------------------------------------

_SESSIONS: "weakref.WeakKeyDictionary[Any, tuple[tuple, Any]]" = weakref.WeakKeyDictionary()


def weights_fingerprint(weights: dict[str, np.ndarray]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for k in sorted(weights):
        a = np.ascontiguousarray(weights[k])
        h.update(k.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def model_session(model: "Model", provider: str = "auto", threads: int | None = None):
    """A session for `model` with its current weights; reused while they stay the same."""
    key = (weights_fingerprint(model.weights), provider, threads)
    cached = _SESSIONS.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    from . import lower
    proto = lower.to_onnx(model)
    sess = make_session(proto.SerializeToString(), provider, threads, what=f"model '{model.name}'")
    _SESSIONS[model] = (key, sess)
    return sess


def predict_onnx(model: "Model", x: np.ndarray, provider: str = "auto",
                 batch_size: int = 256) -> np.ndarray:
    """`model`'s output on x (batch first, channels_last), computed by onnxruntime on the
    ONNX lowering of the model with its current weights, `batch_size` samples at a time."""
    prepared = prepare_input(x, model_spec(model), "input data")
    sess = model_session(model, provider)
    return run_batches(sess, prepared.array, batch_size)[0]
