"""`cnnc bench` and the benchmark machinery (never timings: only that every engine
computes the same function and the report is complete)."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.cli import main
from cnnc.runtime import bench as benchmark

from .conftest import ROOT
from .onnx_helpers import model_from, ort_run, random_weights


def test_bench_command_prints_every_engine(capsys):
    assert main(["bench", str(ROOT / "examples" / "digits.cnn"), "--seconds", "0.01",
                 "--batch", "8", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime (cnnc ONNX)" in out and "numpy (cnnc reference)" in out
    assert "throughput (batch 8)" in out and "pytorch" not in out


def test_bench_rows_agree_with_the_onnx_output():
    model = model_from("input (6, 6, 2)\nConv2D(3, 3, padding='same')\nMaxPooling2D()\n"
                       "Flatten()\nDense(4, activation='softmax')")
    model.set_weights(random_weights(model))
    report = benchmark.bench(model.analysis, model.weights, batch=4, seconds=0.01, torch=False)
    ours, ref = report.rows
    assert ours.latency_s > 0 and ours.throughput > 0
    assert ref.max_diff is not None and ref.max_diff < 1e-5
    assert "| numpy (cnnc reference) |" in benchmark.render_markdown(report)


def test_bench_bad_arguments(capsys):
    assert main(["bench", str(ROOT / "examples" / "digits.cnn"), "--batch", "0"]) == 2
    assert "--batch" in capsys.readouterr().err


TORCH_BODIES = [
    "input (9, 8, 3)\nConv2D(4, 3, strides=2, padding='same')\nBatchNormalization()\n"
    "Activation('relu')\nMaxPooling2D(3, strides=2, padding='same')\nFlatten()\nDense(5)",
    "input (9, 8, 3)\nSeparableConv2D(4, 3, padding='same', depth_multiplier=2)\n"
    "DepthwiseConv2D(3)\nAveragePooling2D(2)\nGlobalAveragePooling2D()\nDense(3, activation='softmax')",
    "input (12, 3)\nConv1D(4, 3, padding='causal', dilation_rate=2)\nZeroPadding1D((1, 2))\n"
    "GlobalMaxPooling1D()\nDense(2)",
    "input (6, 5, 4, 2)\nConv3D(3, 2)\nFlatten()",
    "input (6, 5, 2)\nConv2D(3, 2, activation='gelu')",
]


@pytest.mark.parametrize("body", TORCH_BODIES)
def test_torch_twin_computes_the_same_function(body):
    pytest.importorskip("torch")
    import torch

    from cnnc.backends import onnx as lower
    from cnnc.runtime.torch_twin import to_channels_first, torch_module
    model = model_from(body)
    model.set_weights(random_weights(model, 3))
    x = np.random.default_rng(0).standard_normal((3, *model.ir.input_shape)).astype(np.float32)
    with torch.inference_mode():
        got = torch_module(model.analysis, model.weights)(torch.from_numpy(to_channels_first(x))).numpy()
    np.testing.assert_allclose(got, ort_run(lower.to_onnx(model.analysis, model.weights), x), atol=1e-5)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "separable"])
def test_torch_twin_of_tutorial_nets(name):
    pytest.importorskip("torch")
    model = cnnc.load(ROOT / "examples" / f"{name}.cnn")
    report = benchmark.bench(model.analysis, model.weights, batch=2, threads=1, seconds=0.01, numpy=False)
    assert [r.engine for r in report.rows] == [benchmark.ENGINES[0], *benchmark.ENGINES[2:]]
    assert all(r.max_diff < 1e-5 for r in report.rows[1:])
