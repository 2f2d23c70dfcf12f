"""Checks every export passes before it is written.

1. `onnx.checker.check_model(full_check=True)`;
2. strict shape inference, whose shape for every layer's output tensor must
   equal the one cnnc inferred (in that tensor's layout); the inferred
   `value_info` is kept so Netron shows shapes;
3. a smoke run on onnxruntime (CPU): the output has the expected shape.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import onnx

from cnnc.analysis.infer import Analysis, infer
from cnnc.analysis.symbolic import evaluate
from cnnc.support.diagnostics import Reporter

Shape = tuple  # of int | str | None, batch included


class VerificationError(Exception):
    """The lowered graph failed a check: a bug in cnnc, never in the user's model."""


def _dims(t: onnx.TypeProto) -> Shape | None:
    if not t.tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in t.tensor_type.shape.dim)


def _agrees(got: Shape, want: Shape) -> bool:
    if got is None or len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if isinstance(w, int) and g != w:
            return False
        if w == "batch" and g != "batch":
            return False
        if w is None and isinstance(g, int):  # cnnc says unknown, ONNX claims a size
            return False
    return True


def check_and_infer(proto: onnx.ModelProto, expected: Mapping[str, Shape]) -> onnx.ModelProto:
    """Checker + strict shape inference; returns the model with value_info filled in."""
    return check_and_infer_serialized(proto, expected)[0]


def _infer_bytes(data: bytes) -> bytes:
    """Strict shape inference, bytes in, bytes out (the serialized result is kept, so a
    100 MB model is not serialized again for the smoke run and the file)."""
    native = getattr(onnx.shape_inference, "C", None)
    if native is not None and hasattr(native, "infer_shapes"):
        return native.infer_shapes(data, True, True, True)
    return onnx.shape_inference.infer_shapes(data, check_type=True, strict_mode=True,
                                             data_prop=True).SerializeToString()


def check_and_infer_serialized(proto: onnx.ModelProto,
                               expected: Mapping[str, Shape]) -> tuple[onnx.ModelProto, bytes]:
    """check_and_infer, plus the returned model serialized (serializing once each way)."""
    try:
        data = proto.SerializeToString()
        onnx.checker.check_model(data, full_check=True)
        inferred_data = _infer_bytes(data)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise VerificationError(f"the ONNX checker rejected the graph: {e}") from None
    inferred = onnx.load_from_string(inferred_data)
    _compare(inferred, expected)
    return inferred, inferred_data


def check_and_infer_path(path, inferred_path, expected: Mapping[str, Shape]) -> onnx.ModelProto:
    """check_and_infer for a model on disk whose weights live in an external data file
    (over protobuf's 2 GB, no single message can hold it): the checker and strict shape
    inference read the files; the inferred model is written to `inferred_path` (its
    external data references unchanged) and returned without its weights."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
        onnx.shape_inference.infer_shapes_path(str(path), str(inferred_path), check_type=True,
                                               strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise VerificationError(f"the ONNX checker rejected the graph: {e}") from None
    inferred = onnx.load(str(inferred_path), load_external_data=False)
    _compare(inferred, expected)
    return inferred


def _compare(inferred: onnx.ModelProto, expected: Mapping[str, Shape]) -> None:
    g = inferred.graph
    types = {v.name: v.type for v in (*g.value_info, *g.output, *g.input)}
    for name, want in expected.items():
        got = _dims(types[name]) if name in types else None
        if not _agrees(got, want):
            raise VerificationError(f"ONNX shape inference gives {name!r} the shape {got}, "
                                    f"cnnc expects {want}")


def smoke_shapes(analysis: Analysis, count: int = 1) -> list[tuple[list[tuple[int, ...]], list[tuple[int, ...]]]]:
    """Up to `count` sets of concrete input sample shapes the model works for (its open
    sizes taken from the sizes that work, from 32 up), each with the output shapes cnnc's
    own inference gives for them."""
    shapes = [tuple(n.shape) for n in analysis.model.inputs]
    if all(None not in s for s in shapes) and all(
            o is not None and None not in o for o in analysis.output_shapes):
        return [(shapes, [tuple(o) for o in analysis.output_shapes])]
    found = []
    for values in _valid_values(analysis, count):
        filled = [tuple(evaluate(d, values) if d is not None else 32 for d in s)
                  for s in (analysis.open_inputs or shapes)]
        trial = infer(analysis.model.with_input_shapes(filled), Reporter())
        outs = trial.output_shapes
        if trial.complete and all(o is not None and None not in o for o in outs):
            found.append((filled, [tuple(o) for o in outs]))
    if found:
        return found
    from cnnc.support.diagnostics import UsageError  # the model's doing, not a cnnc bug
    raise UsageError(f"cnnc runs the ONNX graph to verify it, but no size from 32 to 1024 "
                     f"fits the open sizes of the model's inputs {shapes}",
                     ["give the input fixed sizes, e.g. input (256, 256, 3) or Input(shape=(256, 256, 3))"])


def _valid_values(analysis: Analysis, count: int) -> list[dict[str, int]]:
    """Values of the open dimensions that every check of the model accepts: the smallest
    working sizes from 32 up (from 1 when none is that large), then the next ones."""
    c = analysis.constraints
    candidates = {}
    for name in c.dims:
        s = c.sets.get(name)
        first = s.first(count + 8, start=32) if s is not None else list(range(32, 32 + count + 8))
        candidates[name] = first or (s.first(count + 8) if s is not None else [])
    out = []
    for k in range(count + 8):
        values = {n: v[min(k, len(v) - 1)] for n, v in candidates.items() if v}
        if len(values) == len(candidates) and not c.failures(values) and values not in out:
            out.append(values)
        if len(out) == count:
            break
    return out or [{n: 32 for n in c.dims}]


def smoke_run(proto: "onnx.ModelProto | bytes | str", analysis: Analysis, batch: int = 2) -> bool:
    """Run a random batch; False when an output has NaN or inf (possible with real
    weights and, say, an exponential activation: worth a warning, not a failure)."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    finite = True
    try:
        # a path (str) for a model with external data: onnxruntime finds the weights beside it
        data = proto if isinstance(proto, (bytes, str)) else proto.SerializeToString()
        so = ort.SessionOptions()
        # one run does not pay back a second, pre-packed copy of every weight matrix
        so.add_session_config_entry("session.disable_prepacking", "1")
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise VerificationError(f"onnxruntime could not load the graph: {e}") from None
    # open sizes stay symbolic in the graph: it is run at several sizes that work
    for samples, out_samples in smoke_shapes(analysis, SMOKE_SIZES):
        try:
            feeds = {i.name: rng.standard_normal((batch, *s)).astype(np.float32)
                     for i, s in zip(sess.get_inputs(), samples)}
            ys = sess.run(None, feeds)
        except Exception as e:  # onnxruntime raises its own exception types
            raise VerificationError(f"onnxruntime could not run the graph on inputs {samples}: "
                                    f"{e}") from None
        for y, want in zip(ys, out_samples):
            if y.shape != (batch, *want):
                raise VerificationError(f"onnxruntime gave an output of shape {y.shape} for inputs "
                                        f"{samples}, cnnc expects {(batch, *want)}")
        finite = finite and all(bool(np.all(np.isfinite(y))) for y in ys)
    return finite


SMOKE_SIZES = 3     # input sizes an ONNX graph with open sizes is run at
