"""The exported file: interface, layout changes, metadata, verification, writing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest

import cnnc
from cnnc.backends import onnx as lower
from cnnc.backends.onnx.verify import VerificationError, check_and_infer
from cnnc.support.diagnostics import UsageError

from .conftest import ROOT
from .onnx_helpers import model_from

# Layout changes of the example networks. The rule: at most one per input (none when
# the input has a single channel: then NHWC -> NCHW is a free Reshape), plus one where
# a Flatten's Keras order is needed by something other than a Dense (never here).
TRANSPOSES = {"mnist": 0, "digits": 0, "cifar10": 1, "cifar10_sgd": 1, "binary_128": 1,
              "separable": 1, "conv1d_sequence": 1, "conv3d_volume": 1,
              "resnet_fmnist": 0}   # one channel in: a free Reshape; the residual blocks stay NCHW


def _parts(model: cnnc.Model) -> tuple:
    """What the ONNX back end takes from a Model: its Analysis and its weights."""
    return model.analysis, model.weights


def _load(name: str) -> cnnc.Model:
    return cnnc.load(ROOT / "examples" / f"{name}.cnn")


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_examples_cover_the_pinned_list():
    assert set(TRANSPOSES) == {p.stem for p in (ROOT / "examples").glob("*.cnn")}


@pytest.mark.parametrize("name", sorted(TRANSPOSES))
def test_transpose_count_of_examples(name):
    lowered = lower.lower(*_parts(_load(name)))
    assert lowered.transposes == TRANSPOSES[name]
    ops = [n.op_type for n in lowered.proto.graph.node]
    # the lazy Flatten: no Transpose between the Flatten and the Dense that follows it
    if "Flatten" in ops:
        assert "Transpose" not in ops[ops.index("Flatten"):]


def test_interface_names_and_symbolic_batch():
    proto = lower.to_onnx(*_parts(_load("mnist")))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, _dims(inp)) == ("input", ["batch", 28, 28, 1])
    assert (out.name, _dims(out)) == ("output", ["batch", 10])
    assert "channels_last" in inp.doc_string


def test_unknown_input_sizes_get_names():
    proto = lower.to_onnx(*_parts(model_from("input (None, None, 3)\nConv2D(2, 3, padding='same')")))
    assert _dims(proto.graph.input[0]) == ["batch", "height", "width", 3]


def test_metadata_and_docs():
    model = _load("cifar10")
    proto = lower.to_onnx(model.analysis, model.weights, source=model.source)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["source"] == str(ROOT / "examples" / "cifar10.cnn")
    assert props["cnnc_version"] == cnnc.__version__
    assert props["model"] == "cifar10_cnn"
    assert (proto.producer_name, proto.producer_version) == ("cnnc", cnnc.__version__)
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert "cifar10.cnn:5" in convs[0].doc_string and "Conv2D(32" in convs[0].doc_string


def test_value_info_holds_every_intermediate_shape():
    proto = lower.to_onnx(*_parts(_load("mnist")))
    shapes = {v.name: _dims(v) for v in proto.graph.value_info}
    produced = [o for n in proto.graph.node for o in n.output if o != "output"]
    assert set(produced) <= set(shapes)
    # channels-first inside: the first conv's output is (batch, 32, 26, 26)
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    assert shapes[conv.output[0]] == ["batch", 32, 26, 26]


def test_inference_semantics_no_dropout_nodes():
    proto = lower.to_onnx(*_parts(_load("cifar10_sgd")))
    assert not [n for n in proto.graph.node if "Dropout" in n.op_type]


def test_default_opset_and_range():
    proto = lower.to_onnx(*_parts(_load("digits")))
    assert proto.opset_import[0].version == lower.DEFAULT_OPSET == 17
    assert lower.MIN_OPSET == 13 and lower.MAX_OPSET >= 17
    for bad in (lower.MIN_OPSET - 1, lower.MAX_OPSET + 1):
        with pytest.raises(UsageError, match=f"opset {bad} is not supported"):
            lower.to_onnx(*_parts(_load("digits")), opset=bad)


def test_checker_accepts_written_file(tmp_path):
    path = tmp_path / "out" / "net.onnx"
    lower.export(*_parts(_load("separable")), path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert [f for f in os.listdir(path.parent)] == ["net.onnx"]   # no temp file left behind


def test_export_refuses_to_overwrite_the_source(tmp_path):
    src = tmp_path / "net.onnx"          # a .cnn file whose name ends in .onnx
    src.write_text("model m\ninput (4,)\nDense(2)\n")
    model = cnnc.load(src)
    before = src.read_bytes()
    with pytest.raises(UsageError, match="refusing to overwrite the input file"):
        model.to_onnx(lower.default_path(src))
    assert src.read_bytes() == before


def test_default_path_is_next_to_the_source():
    assert lower.default_path("a/b/net.cnn") == Path("a/b/net.onnx")


def test_verification_rejects_a_shape_disagreement():
    proto, expected = lower.build(*_parts(model_from("input (6, 5, 2)\nConv2D(3, 2)")))
    name = next(iter(expected))
    wrong = dict(expected, **{name: ("batch", 3, 5, 5)})
    with pytest.raises(VerificationError, match="cnnc expects"):
        check_and_infer(proto, wrong)


def test_verification_rejects_a_broken_graph():
    proto, expected = lower.build(*_parts(model_from("input (6, 5, 2)\nConv2D(3, 2)")))
    proto.graph.node[-1].input[0] = "no_such_tensor"
    with pytest.raises(VerificationError, match="checker rejected"):
        check_and_infer(proto, expected)


def test_given_weights_are_used():
    model = model_from("input (3,)\nDense(2, use_bias=False)")
    kernel = np.arange(6, dtype=np.float32).reshape(3, 2)
    proto = lower.to_onnx(model.analysis, {"dense/kernel": kernel})
    init = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    np.testing.assert_array_equal(init["dense/kernel"], kernel)


def test_given_weights_that_do_not_fit():
    from cnnc.support.weights import WeightsError
    model = model_from("input (3,)\nDense(2)")
    with pytest.raises(WeightsError, match="do not fit") as e:
        lower.to_onnx(model.analysis, {"dense/kernel": np.zeros((3, 3), np.float32)})
    assert "missing 'dense/bias' (2,)" in e.value.notes
