"""`cnnc run`: inputs checked against the model, outputs written, clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import cnnc
from cnnc.backends import onnx as lower
from cnnc.cli import main
from cnnc.runtime import sessions as runtime

from .conftest import ROOT
from .onnx_helpers import random_weights


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A small compiled model (8x8x1 digits net) and its cnnc Model with the same weights."""
    folder = tmp_path_factory.mktemp("run")
    src = folder / "digits.cnn"
    shutil.copy(ROOT / "examples" / "digits.cnn", src)
    model = cnnc.load(src)
    model.set_weights(random_weights(model, 1))
    path = folder / "digits.onnx"
    lower.export(model.analysis, model.weights, path)
    return path, model


def _x(n=5, shape=(8, 8, 1), dtype=np.float32):
    return np.random.default_rng(n).random((n, *shape)).astype(dtype)


def test_run_writes_outputs_equal_to_the_reference(net, tmp_path, capsys):
    path, model = net
    x = _x(300)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "-o", str(out),
                 "--batch-size", "128"]) == 0
    np.testing.assert_allclose(np.load(out), model.predict(x), atol=1e-5)
    report = capsys.readouterr().out
    assert "300 samples" in report and "(300, 10) float32 -> " in report
    assert "3 batches of up to 128" in report and "CPUExecutionProvider" in report


@pytest.mark.parametrize("batch_size", [1, 7, 300])
def test_chunking_does_not_change_results(net, batch_size):
    path, _ = net
    sess = runtime.load_session(path, "cpu")
    x = _x(23)
    whole = sess.run(None, {"input": x})[0]
    (chunked,) = runtime.run_batches(sess, x, batch_size)
    np.testing.assert_array_equal(chunked, whole)


def test_npz_input_with_key_and_npz_output(net, tmp_path, capsys):
    path, model = net
    x = _x(4)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.zeros(4))
    assert main(["run", str(path), "-i", str(tmp_path / "d.npz"), "--key", "x_train",
                 "-o", str(tmp_path / "y.npz")]) == 0
    with np.load(tmp_path / "d.npz") as d, np.load(tmp_path / "y.npz") as y:
        np.testing.assert_allclose(y["output"], model.predict(d["x_train"]), atol=1e-5)


def test_npz_with_several_arrays_needs_a_key(net, tmp_path, capsys):
    path, _ = net
    np.savez(tmp_path / "d.npz", a=_x(2), b=_x(2))
    assert main(["run", str(path), "-i", str(tmp_path / "d.npz")]) == 2
    err = capsys.readouterr().err
    assert "holds 2 arrays" in err and "--key: a, b" in err
    assert main(["run", str(path), "-i", str(tmp_path / "d.npz"), "--key", "c"]) == 2
    assert "has no array 'c'" in capsys.readouterr().err


def test_uint8_needs_scaling_or_cast(net, tmp_path, capsys):
    path, model = net
    x = (_x(3) * 255).astype(np.uint8)
    np.save(tmp_path / "u8.npy", x)
    assert main(["run", str(path), "-i", str(tmp_path / "u8.npy")]) == 2
    err = capsys.readouterr().err
    assert "has dtype uint8, the model takes float32" in err and "/ 255" in err and "--cast" in err
    assert main(["run", str(path), "-i", str(tmp_path / "u8.npy"), "--cast",
                 "-o", str(tmp_path / "y.npy")]) == 0
    assert "cast to float32" in capsys.readouterr().err
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x.astype(np.float32)),
                               rtol=1e-5, atol=1e-4)


def test_float64_is_converted(net, tmp_path):
    path, model = net
    x = _x(2).astype(np.float64)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(path), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x), atol=1e-5)


def test_one_sample_without_batch_axis_runs_as_batch_of_one(net, tmp_path, capsys):
    path, model = net
    x = _x(1)[0]
    np.save(tmp_path / "one.npy", x)
    assert main(["run", str(path), "-i", str(tmp_path / "one.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    assert "one sample without the batch axis" in capsys.readouterr().err
    assert np.load(tmp_path / "y.npy").shape == (1, 10)


@pytest.mark.parametrize("shape,hint", [
    ((3, 1, 8, 8), "x.transpose(0, 2, 3, 1)"),      # channels-first data
    ((3, 8, 8), "x[..., None]"),                    # no channel axis
    ((3, 9, 9, 1), ""),
])
def test_wrong_shapes_are_explained(net, tmp_path, capsys, shape, hint):
    path, _ = net
    np.save(tmp_path / "x.npy", np.zeros(shape, np.float32))
    assert main(["run", str(path), "-i", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert f"has shape {shape}, the model's input 'input' takes (batch, 8, 8, 1) float32" in err
    assert hint in err


@pytest.mark.parametrize("content,message", [
    (b"", "the file is empty"),
    (b"\x08\x07\x12\x04cnnc\xff\xff\xff", "not a valid ONNX model"),
    (None, "not a valid ONNX model"),                    # a truncated real model
])
def test_corrupt_onnx(net, tmp_path, capsys, content, message):
    path, _ = net
    data = path.read_bytes()[:len(path.read_bytes()) // 2] if content is None else content
    (tmp_path / "bad.onnx").write_bytes(data)
    np.save(tmp_path / "x.npy", _x(2))
    assert main(["run", str(tmp_path / "bad.onnx"), "-i", str(tmp_path / "x.npy")]) == 2
    assert message in capsys.readouterr().err


def test_a_cnn_source_is_not_a_model(tmp_path, capsys):
    np.save(tmp_path / "x.npy", _x(2))
    assert main(["run", str(ROOT / "examples" / "digits.cnn"), "-i", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "looks like a .cnn source" in err and "cnnc compile" in err


def test_missing_files(net, tmp_path, capsys):
    path, _ = net
    assert main(["run", str(tmp_path / "none.onnx"), "-i", "x.npy"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["run", str(path), "-i", str(tmp_path / "none.npy")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_pickled_input_is_refused(net, tmp_path, capsys):
    path, _ = net
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert main(["run", str(path), "-i", str(tmp_path / "obj.npy")]) == 2
    assert "pickles" in capsys.readouterr().err


def test_output_never_overwrites_an_input(net, tmp_path, capsys):
    path, _ = net
    np.save(tmp_path / "x.npy", _x(2))
    before = (tmp_path / "x.npy").read_bytes()
    assert main(["run", str(path), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.npy")]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (tmp_path / "x.npy").read_bytes() == before
    assert main(["run", str(path), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.txt")]) == 2
    assert ".npy or .npz" in capsys.readouterr().err


def test_bad_batch_size(net, tmp_path, capsys):
    path, _ = net
    np.save(tmp_path / "x.npy", _x(2))
    assert main(["run", str(path), "-i", str(tmp_path / "x.npy"), "--batch-size", "0"]) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
    assert main(["run", str(path), "-i", str(tmp_path / "x.npy"), "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


@pytest.mark.skipif(runtime.CUDA in runtime.available_providers(), reason="CUDA is available here")
def test_cuda_asked_for_but_absent(net, tmp_path, capsys):
    path, _ = net
    np.save(tmp_path / "x.npy", _x(2))
    assert main(["run", str(path), "-i", str(tmp_path / "x.npy"), "--provider", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "the CUDA provider was asked for" in err
    assert "available providers: " in err and "CPUExecutionProvider" in err
    assert "cnnc[gpu]" in err and "onnxruntime-gpu" in err
