"""Shared by the ONNX tests: models from text, random weights, the three-way comparison."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx.reference import ReferenceEvaluator

import cnnc
from cnnc.backends import onnx as lower
from cnnc.backends.numpy.network import Network


def random_weights(model: cnnc.Model, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights far from their initial values (biases and BN statistics non-trivial), so
    a wrong permutation or a dropped bias shows."""
    rng = np.random.default_rng(seed)
    out = {}
    for info in model.analysis.infos:
        for w in info.weights:
            a = rng.standard_normal(w.shape) * 0.5
            if w.name == "moving_variance":
                a = rng.uniform(0.5, 2.0, w.shape)
            out[f"{info.name}/{w.name}"] = a.astype(np.float32)
    return out


def model_from(body: str, name: str = "t") -> cnnc.Model:
    return cnnc.loads(f"model {name}\n{body}\n", f"{name}.cnn")


def ort_run(proto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def assert_close(got: np.ndarray, want: np.ndarray, what: str, rtol: float = 1e-5) -> None:
    """Equal within rtol of the output's scale (max |want|, at least 1)."""
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    err = float(np.max(np.abs(got - want))) if want.size else 0.0
    assert err <= rtol * scale, f"{what}: max abs diff {err:.3g} (output scale {scale:.3g})"


def check_parity(body: str, batch: int = 3, opset: int | None = None, seed: int = 0,
                 sample: tuple[int, ...] | None = None) -> "lower.Lowered":
    """onnxruntime == NumPy reference forward == onnx ReferenceEvaluator on random weights."""
    model = model_from(body)
    model.set_weights(random_weights(model, seed))
    lowered = lower.lower(model.analysis, model.weights, opset)
    shape = sample or model.ir.input_shape
    x = np.random.default_rng(seed + 1).standard_normal((batch, *shape)).astype(np.float32)
    want = Network(model.analysis, model.weights).forward(x)
    got = ort_run(lowered.proto, x)
    assert_close(got, want, "onnxruntime vs NumPy reference")
    if reference_evaluator_trusted(lowered.proto):
        (ref,) = ReferenceEvaluator(lowered.proto).run(None, {"input": x})
        assert_close(ref, want, "onnx ReferenceEvaluator vs NumPy reference")
    return lowered


def reference_evaluator_trusted(proto) -> bool:
    """False for the two ReferenceEvaluator bugs (onnx 1.23) these graphs can meet, both
    checked against onnxruntime and hand-built single-node graphs:
    - BatchNormalization-9 (opsets < 14) blends the moving statistics with the batch's
      even in inference mode (onnx/onnx PR #8442);
    - MaxPool with strides 1 and explicit pads returns the spatial axes swapped."""
    opset = proto.opset_import[0].version
    for n in proto.graph.node:
        attrs = {a.name: list(a.ints) for a in n.attribute}
        if n.op_type == "BatchNormalization" and opset < 14:
            return False
        if n.op_type == "MaxPool" and set(attrs.get("strides", [1])) == {1} \
                and any(attrs.get("pads", [])):
            return False
    return True
