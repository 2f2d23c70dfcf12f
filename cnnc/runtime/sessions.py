"""Running ONNX models on onnxruntime: providers, sessions, input checks, batches.

    sess = runtime.load_session("mnist.onnx", provider="auto")
    y = runtime.run_batches(sess, x, batch_size=256)
    y = runtime.predict_onnx(analysis, weights, x)   # a checked model with its weights

Providers: "cpu"; "cuda" (onnxruntime-gpu and a GPU; otherwise a clear error
naming the providers that are there); "auto" (CUDA when it is usable, else CPU).
Every problem with the user's files or data is a UsageError (exit status 2).
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from cnnc.analysis.infer import Analysis
from cnnc.support.diagnostics import UsageError
from cnnc.support.files import is_npz, read_bytes, read_npy, read_npz, regular_size

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime as ort

PROVIDERS = ("auto", "cpu", "cuda")
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
GPU_HINT = ("for CUDA install the GPU build of onnxruntime: pip install 'cnnc[gpu]' "
            "(onnxruntime-gpu, in place of onnxruntime) on a machine with an NVIDIA GPU and CUDA")

# ONNX element types onnxruntime reports -> NumPy dtypes.
_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
           "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
           "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
           "tensor(int16)": np.int16, "tensor(uint16)": np.uint16, "tensor(uint32)": np.uint32,
           "tensor(uint64)": np.uint64}
# other tensor types onnxruntime hands back as NumPy arrays that cnnc run can write
_OTHER_NUMERIC = {"tensor(complex64)", "tensor(complex128)"}


def cpu_cores() -> int:
    """Cores this process may use (the affinity mask, not the whole machine)."""
    from cnnc.support.resources import cpu_cores as cores
    return cores()


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
    """All graph optimisations; intra-op threads = the cores we may use (never more:
    onnxruntime starts every thread it is asked for, and 100,000 of them end the process)."""
    import onnxruntime as ort

    from cnnc.support.resources import thread_count
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = thread_count(threads)
    opts.inter_op_num_threads = 1
    # fatal only: errors are reported by cnnc in its own words (a CUDA fallback, a run
    # stopped by Ctrl-C or --timeout), never as onnxruntime's log lines
    opts.log_severity_level = 4
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


MAX_ONNX_BYTES = 2 * 2**30   # protobuf's own limit; bigger models keep their weights outside


def read_onnx(path: str | Path) -> bytes:
    """The bytes of an .onnx file, with a clear error when it is missing, not a regular
    file, too big, or not ONNX; its external data references are checked too."""
    data = _read_onnx_bytes(path)
    proto = _check_protobuf(data, path)
    check_external_data(proto, path)
    return data


def _read_onnx_bytes(path: str | Path) -> bytes:
    p = Path(path)
    size = regular_size(path, "model")
    if size > MAX_ONNX_BYTES:
        raise UsageError(f"cannot load '{path}': {size:,} bytes, over ONNX's limit of "
                         f"{MAX_ONNX_BYTES:,} for one .onnx file",
                         ["models over 2 GB keep their weights in an external data file"])
    from cnnc.support.resources import available, human
    limit, source = available()
    if limit is not None and 2 * size > limit:
        raise UsageError(f"cannot load '{path}': {human(size)} of ONNX model needs more memory "
                         f"than the {human(limit)} available", [f"{source}"])
    data = read_bytes(path, "model", limit=MAX_ONNX_BYTES)
    if not data:
        raise UsageError(f"cannot load '{path}': the file is empty")
    if p.suffix == ".cnn" or data.lstrip().startswith((b"model", b"input", b"#")):
        raise UsageError(f"'{path}' looks like a .cnn source, not an ONNX model",
                         [f"compile it first: cnnc compile {path}"])
    kind = _NOT_ONNX.get(p.suffix.lower())
    if kind is not None:
        raise UsageError(f"'{path}' is {kind}, not an ONNX model",
                         [f"compile it first: cnnc compile {path}", "or predict with the NumPy "
                          f"reference: cnnc predict {path} --data x.npy"]
                         if p.suffix.lower() not in (".npy", ".npz") else
                         ["the model comes first: cnnc run net.onnx --input x.npy"])
    return data


_NOT_ONNX = {".py": "a Keras script", ".ipynb": "a Jupyter notebook",
             ".keras": "a Keras model file", ".h5": "a Keras model file",
             ".json": "a Keras model config (JSON)", ".npz": "a NumPy archive",
             ".npy": "a NumPy array"}


def _check_protobuf(data: bytes, path: str | Path):
    import onnx
    from google.protobuf.message import DecodeError
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError, TypeError, OverflowError) as e:
        if "MaxDepth" in str(e):      # protobuf reads 100 levels of messages within messages
            raise UsageError(f"cannot load '{path}': its messages nest deeper than protobuf reads "
                             "(100 levels: graphs inside If/Loop/Scan nodes about 30 deep)",
                             ["no model exported from Keras or cnnc nests this deep"]) from None
        raise UsageError(f"cannot load '{path}': not a valid ONNX model ({e or 'protobuf parse error'})",
                         ["the file may be truncated or corrupt; export it again"]) from None
    if not proto.graph.node and not proto.graph.output:
        raise UsageError(f"cannot load '{path}': not a valid ONNX model (it has no graph)",
                         ["the file may be truncated or corrupt; export it again"])
    return proto


def _external_tensors(proto):
    """Every tensor of the model (initializers, Constant attributes, subgraphs) that keeps
    its data in an external file."""
    from onnx import TensorProto
    stack = [proto.graph]
    while stack:
        g = stack.pop()
        tensors = list(g.initializer) + [s.values for s in g.sparse_initializer]
        for node in g.node:
            for a in node.attribute:
                if a.HasField("t"):
                    tensors.append(a.t)
                tensors.extend(a.tensors)
                if a.HasField("g"):
                    stack.append(a.g)
                stack.extend(a.graphs)
        for t in tensors:
            if t.data_location == TensorProto.EXTERNAL:
                yield t


def check_external_data(proto, path: str | Path) -> int:
    """Check that every external data reference of an ONNX model names a regular file in
    the model's folder (no absolute path, no '..'), and that its offset and length lie
    inside that file; the bytes they add up to, or UsageError (exit 2)."""
    folder = Path(path).resolve().parent
    total = 0
    for t in _external_tensors(proto):
        entries = {e.key: e.value for e in t.external_data}
        where = f"tensor '{t.name}' of '{path}'"
        location = entries.get("location", "")
        parts = Path(location).parts
        if (not location or "\0" in location or Path(location).is_absolute() or ".." in parts):
            raise UsageError(f"cannot load {where}: its external data location {location!r} is "
                             "not a file name inside the model's folder",
                             ["ONNX external data lives beside the .onnx file"])
        try:
            offset = int(entries.get("offset", "0"))
            length = int(entries["length"]) if "length" in entries else None
        except ValueError:
            raise UsageError(f"cannot load {where}: its external data offset or length is not "
                             "a number") from None
        target = folder / location
        size = regular_size(target, f"external data of {where}")
        if offset < 0 or (length is not None and length < 0) or \
                offset + (length if length is not None else 0) > size:
            raise UsageError(f"cannot load {where}: its external data (offset {offset:,}, length "
                             f"{length if length is not None else 'to the end'}) is not inside "
                             f"'{target}' ({size:,} bytes)",
                             ["the data file is truncated or belongs to another model"])
        total += (size - offset) if length is None else length
    if total:
        from cnnc.support.resources import available, human
        limit, source = available()
        if limit is not None and total > limit:
            raise UsageError(f"cannot load '{path}': its external data is {human(total)}, more "
                             f"than the {human(limit)} of memory available", [source])
    return total


def load_session(path: str | Path, provider: str = "auto",
                 threads: int | None = None) -> "ort.InferenceSession":
    """A session for the .onnx file at `path`. onnxruntime loads it by path, so weights in
    an external data file beside it are found."""
    data = _read_onnx_bytes(path)
    proto = _check_protobuf(data, path)
    external = check_external_data(proto, path)
    del proto
    source: Any = str(Path(path).resolve()) if external else data
    sess = make_session(source, provider, threads, what=f"'{path}'")
    check_outputs(sess, path)
    return sess


def check_outputs(sess: "ort.InferenceSession", path: str | Path) -> None:
    """cnnc run writes numeric tensors: refuse a model whose outputs are strings,
    sequences or maps before anything runs."""
    for o in sess.get_outputs():
        if o.type not in _DTYPES and o.type not in _OTHER_NUMERIC:
            raise UsageError(f"the output {o.name!r} of '{path}' has type {o.type}, which cnnc run "
                             "cannot write (numeric tensors only)")


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


def model_spec(analysis: Analysis) -> InputSpec:
    from cnnc.backends.onnx import INPUT_NAME
    return InputSpec(INPUT_NAME, ("batch", *analysis.model.input_shape), np.float32)


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
    if len(spec.shape) == 0:
        raise UsageError(f"the model's input {spec.name!r} is a single value (rank 0); cnnc run "
                         "feeds batches, the first axis being the batch")
    if arr.ndim == 0:
        raise UsageError(f"{what} is a single number; the model's input {spec.name!r} takes "
                         f"{spec.describe()}")
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
    """arr as the model's dtype, never silently: floats narrow only when every value fits,
    integers only when every value is representable, anything else only with --cast (and
    then still only when the values survive); otherwise a UsageError saying why."""
    kind = arr.dtype.kind
    refuse = UsageError(f"{what} has dtype {arr.dtype}, the model takes {want}")
    if kind not in "fiub" or want.kind not in "fiub":
        raise refuse
    if want.kind == "f":
        if kind in "iub" and not cast:
            raise UsageError(f"{what} has dtype {arr.dtype}, the model takes {want}",
                             ["scale it as the training data was, e.g. for 8-bit images: "
                              "x = (x / 255).astype('float32'); np.save('x.npy', x)",
                              "or pass --cast to convert the values unchanged"])
        if kind == "f" and np.finfo(want).max < np.finfo(arr.dtype).max and arr.size:
            finite = arr[np.isfinite(arr)]
            if finite.size and float(np.max(np.abs(finite))) > float(np.finfo(want).max):
                raise UsageError(f"{what} has dtype {arr.dtype} with values up to "
                                 f"{float(np.max(np.abs(finite))):.4g}, beyond the range of the "
                                 f"model's {want} (at most {float(np.finfo(want).max):.4g})")
        how = "converted to" if kind == "f" else "values cast to"
        return arr.astype(want), f"{what}: {arr.dtype} {how} {want}" + ("" if kind == "f" else
                                                                          " unchanged (--cast)")
    # the model takes integers or booleans
    if kind == "f" and not cast:
        raise UsageError(f"{what} has dtype {arr.dtype}, the model takes {want}",
                         ["pass --cast to convert whole-number values"])
    if want.kind == "b" and kind != "b" and not cast:
        raise UsageError(f"{what} has dtype {arr.dtype}, the model takes {want}",
                         ["pass --cast to convert 0/1 values"])
    if arr.size:
        if kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise UsageError(f"{what} has fractional or non-finite values; the model takes {want}")
        low, high = (0, 1) if want.kind == "b" else (int(np.iinfo(want).min), int(np.iinfo(want).max))
        lo, hi = arr.min(), arr.max()
        lo, hi = (int(lo), int(hi)) if kind != "f" else (float(lo), float(hi))
        if lo < low or hi > high:
            raise UsageError(f"{what} holds values from {lo} to {hi}, outside the range of the "
                             f"model's {want} ({low}..{high})")
    return arr.astype(want), f"{what}: {arr.dtype} values {'cast' if cast else 'converted'} to {want} unchanged"


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
    """The array in a .npy file or one array of a .npz file, and a description of it
    (read bounded: a regular file, sizes checked before allocating, never unpickled)."""
    regular_size(path, "input")
    if is_npz(path):
        read_npz(path, "input", keys=[])   # checks the archive and its members, reads none
        names = _npz_names(path)
        pick = _pick_key(names, key, path)
        return read_npz(path, "input", keys=[pick])[pick], f"'{path}' [{pick}]"
    if key is not None:
        raise UsageError(f"--key {key!r} is for .npz files; '{path}' holds a single array")
    return read_npy(path, "input"), f"'{path}'"


def _npz_names(path: str | Path) -> list[str]:
    import zipfile
    with zipfile.ZipFile(path) as zf:
        return [i.filename[:-4] for i in zf.infolist()]


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

class RunTimeout(UsageError):
    """The model ran longer than the time it was given (--timeout): exit status 2."""


def run_session(sess: "ort.InferenceSession", feeds: Mapping[str, np.ndarray],
                deadline: float | None = None, what: str = "the model") -> list[np.ndarray]:
    """`sess.run(None, feeds)`, in a way that can be stopped: the run goes on in a worker
    thread while this one waits, so Ctrl-C (KeyboardInterrupt), SIGTERM (the CLI turns it
    into an exception too) and the `deadline` (time.monotonic()) are honoured within a
    fraction of a second; onnxruntime's terminate flag then ends the run between two of its
    kernels, inside a Loop or Scan too (an ONNX Loop of 10**15 iterations, a model that
    never ends), and this thread waits until the worker has left onnxruntime (a process
    that ends while a thread runs in it aborts). onnxruntime's own errors are UsageErrors
    naming `what`."""
    import threading
    import time

    import onnxruntime as ort
    options = ort.RunOptions()
    options.log_severity_level = 4
    result: dict[str, Any] = {}
    finished = threading.Event()      # not Thread.join: an interrupted join can report a
                                      # thread still in C code as stopped (CPython bpo-45274)

    def work() -> None:
        try:
            result["outputs"] = sess.run(None, dict(feeds), options)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            result["error"] = e
        finally:
            finished.set()

    worker = threading.Thread(target=work, name="cnnc-onnxruntime", daemon=True)
    try:
        # started inside the try: a Ctrl-C while it starts must still set the terminate flag,
        # or the worker runs on (a Loop of 10**15 trips) and the process never ends
        worker.start()
        while not finished.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                _stop(options, finished, worker)
                raise RunTimeout(f"{what} ran longer than the time it was given and was stopped",
                                 ["give it more time with --timeout SECONDS"])
            finished.wait(0.1 if left is None else min(0.1, max(left, 0.001)))
    except BaseException:
        _stop(options, finished, worker)
        raise
    if "error" in result:
        raise UsageError(f"onnxruntime failed on {what}: {_ort_message(result['error'])}")
    return result["outputs"]


def _stop(options, finished, worker) -> None:
    """Ask onnxruntime to end the run, and wait for the worker to leave it (a second
    Ctrl-C while waiting still ends the wait); no wait for a worker that never started."""
    options.terminate = True
    if worker.ident is not None:
        finished.wait(30.0)


def run_batches(sess: "ort.InferenceSession", x: np.ndarray, batch_size: int = 256,
                input_name: str | None = None, timeout: float | None = None) -> list[np.ndarray]:
    """Every output of the model on x, run `batch_size` samples at a time (interruptible,
    and within `timeout` seconds in all when it is given: run_session)."""
    import time
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    name = input_name or sess.get_inputs()[0].name
    deadline = None if timeout is None else time.monotonic() + timeout
    parts: list[list[np.ndarray]] = []
    for start in range(0, len(x), batch_size):
        what = f"samples {start}..{min(len(x), start + batch_size) - 1}"
        parts.append(run_session(sess, {name: x[start:start + batch_size]}, deadline, what))
    if len(parts) == 1:
        return parts[0]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


# --- a checked model on onnxruntime --------------------------------------------------------

# One session per Analysis (by identity, dropped with it) while its weights stay the same.
_SESSIONS: dict[int, tuple[tuple, Any]] = {}


def weights_fingerprint(weights: dict[str, np.ndarray]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for k in sorted(weights):
        a = np.ascontiguousarray(weights[k])
        h.update(k.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def model_session(analysis: Analysis, weights: Mapping[str, np.ndarray], provider: str = "auto",
                  threads: int | None = None):
    """A session for the ONNX lowering of `analysis` with `weights`; reused while they
    stay the same."""
    key = (weights_fingerprint(weights), provider, threads)
    cached = _SESSIONS.get(id(analysis))
    if cached is not None and cached[0] == key:
        return cached[1]
    from cnnc.backends import onnx as lower
    proto = lower.to_onnx(analysis, weights)
    sess = make_session(proto.SerializeToString(), provider, threads,
                        what=f"model '{analysis.model.name}'")
    if id(analysis) not in _SESSIONS:
        weakref.finalize(analysis, _SESSIONS.pop, id(analysis), None)
    _SESSIONS[id(analysis)] = (key, sess)
    return sess


def predict_onnx(analysis: Analysis, weights: Mapping[str, np.ndarray], x: np.ndarray,
                 provider: str = "auto", batch_size: int = 256) -> np.ndarray:
    """The model's output on x (batch first, channels_last), computed by onnxruntime on the
    ONNX lowering of `analysis` with `weights`, `batch_size` samples at a time."""
    prepared = prepare_input(x, model_spec(analysis), "input data")
    sess = model_session(analysis, weights, provider)
    return run_batches(sess, prepared.array, batch_size)[0]
