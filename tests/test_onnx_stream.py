"""Large models are built with their weights streamed to a file and written back as one
.onnx (cnnc/lower/inline.py): the same model as the in-memory path, byte for byte in its
weights, and the same outputs."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import cnnc
from cnnc.backends import onnx as lower
from cnnc.backends.onnx.inline import inline

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def _initializers(proto) -> dict[str, np.ndarray]:
    return {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}


@pytest.mark.parametrize("example", ["cifar10", "resnet_fmnist"])
def test_streamed_compile_equals_in_memory(example, tmp_path, monkeypatch):
    model = cnnc.load(ROOT / "examples" / f"{example}.cnn")
    model.init_weights(3)
    memory = lower.lower(model.analysis, model.weights)
    monkeypatch.setattr(lower, "STREAM_THRESHOLD", 1000)      # every model is "large" now
    out = tmp_path / "net.onnx"
    streamed = lower.lower(model.analysis, model.weights, path=out)
    assert streamed.staged is not None and streamed.inline
    lower.write(streamed.proto, out, staged=streamed.staged, inline=True)
    assert not (tmp_path / "net.onnx.data").exists()
    assert not [p for p in tmp_path.iterdir() if p.name != "net.onnx"]   # nothing staged left
    written = onnx.load(str(out))
    onnx.checker.check_model(written, full_check=True)
    a, b = _initializers(memory.proto), _initializers(written)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    x = np.random.default_rng(0).standard_normal((2, *model.ir.input_shape)).astype(np.float32)
    run = lambda data: ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_array_equal(run(str(out)), run(memory.proto.SerializeToString()))


def test_inline_keeps_small_tensors_and_merges_the_graph(tmp_path):
    """The streamed file is the model plus a second `graph` field with the big
    initializers; protobuf merges them into one graph."""
    from onnx.external_data_helper import convert_model_to_external_data
    model = cnnc.load(ROOT / "examples" / "mnist.cnn")
    proto = lower.to_onnx(model.analysis, model.weights)
    staged = onnx.ModelProto()
    staged.CopyFrom(proto)
    convert_model_to_external_data(staged, all_tensors_to_one_file=True, location="w.data",
                                   size_threshold=2048)
    onnx.save_model(staged, str(tmp_path / "m.onnx"))
    buf = io.BytesIO()
    n = inline(tmp_path / "m.onnx", buf)
    assert n == len(buf.getvalue())
    merged = onnx.load_from_string(buf.getvalue())
    assert [n.op_type for n in merged.graph.node] == [n.op_type for n in proto.graph.node]
    a, b = _initializers(proto), _initializers(merged)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in merged.graph.initializer)


def test_truncated_data_file_is_an_error(tmp_path):
    from onnx.external_data_helper import convert_model_to_external_data
    model = cnnc.load(ROOT / "examples" / "mnist.cnn")
    proto = lower.to_onnx(model.analysis, model.weights)
    convert_model_to_external_data(proto, all_tensors_to_one_file=True, location="w.data",
                                   size_threshold=2048)
    onnx.save_model(proto, str(tmp_path / "m.onnx"))
    data = tmp_path / "w.data"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(OSError, match="shorter"):
        inline(tmp_path / "m.onnx", io.BytesIO())
