"""`cnnc compile`: summary, verified .onnx next to the source or at -o, weights from
an .npz or a seed, clear errors for everything a user can get wrong."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest

import cnnc
from cnnc.cli import main
from cnnc.support.weights import save

from .conftest import ROOT
from .onnx_helpers import ort_run, random_weights

MNIST = ROOT / "examples" / "mnist.cnn"


@pytest.fixture
def mnist(tmp_path):
    path = tmp_path / "mnist.cnn"
    shutil.copy(MNIST, path)
    return path


def _initializers(path) -> dict[str, np.ndarray]:
    return {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def test_compile_prints_summary_and_report_and_writes_next_to_source(mnist, capsys):
    assert main(["compile", str(mnist)]) == 0
    out = capsys.readouterr().out
    assert 'Model: "mnist_cnn"' in out and "Total params: 93,322" in out
    target = mnist.with_suffix(".onnx")
    assert f"wrote {target}" in out
    assert "opset 17" in out and "0 Transpose" in out
    assert "'input' (batch, 28, 28, 1)" in out and "'output' (batch, 10)" in out
    assert "seed 0 (untrained)" in out and "verified:" in out
    onnx.checker.check_model(onnx.load(target), full_check=True)


def test_seed_makes_the_file_reproducible(mnist, tmp_path):
    for name in ("a.onnx", "b.onnx"):
        assert main(["compile", str(mnist), "-q", "--seed", "3", "-o", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    main(["compile", str(mnist), "-q", "--seed", "4", "-o", str(tmp_path / "c.onnx")])
    a, c = _initializers(tmp_path / "a.onnx"), _initializers(tmp_path / "c.onnx")
    assert not np.array_equal(a["conv2d/kernel"], c["conv2d/kernel"])


def test_weights_from_npz_give_the_same_outputs_as_the_reference(mnist, tmp_path, capsys):
    model = cnnc.load(mnist)
    weights = random_weights(model, seed=5)
    save(tmp_path / "w.npz", weights)
    out = tmp_path / "deploy" / "m.onnx"
    assert main(["compile", str(mnist), "--weights", str(tmp_path / "w.npz"), "-o", str(out),
                 "--opset", "13", "--no-summary"]) == 0
    text = capsys.readouterr().out
    assert "Model:" not in text and "opset 13" in text and "w.npz" in text
    model.set_weights(weights)
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(ort_run(onnx.load(out), x), model.predict(x), atol=1e-5)


def test_output_folder_gets_the_default_name(mnist, tmp_path):
    (tmp_path / "dist").mkdir()
    assert main(["compile", str(mnist), "-q", "-o", str(tmp_path / "dist")]) == 0
    assert (tmp_path / "dist" / "mnist.onnx").exists()


def test_quiet_prints_only_the_path(mnist, capsys):
    assert main(["compile", str(mnist), "-q"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("wrote ")


def test_refuses_to_overwrite_the_source(mnist, capsys):
    before = mnist.read_bytes()
    assert main(["compile", str(mnist), "-o", str(mnist)]) == 2
    assert "refusing to overwrite the input file" in capsys.readouterr().err
    assert mnist.read_bytes() == before


def test_weights_that_do_not_fit(mnist, tmp_path, capsys):
    weights = random_weights(cnnc.load(mnist))
    weights["conv2d/kernel"] = weights["conv2d/kernel"][..., :16]
    del weights["dense_1/bias"]
    save(tmp_path / "bad.npz", weights)
    assert main(["compile", str(mnist), "--weights", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err
    assert "do not fit model 'mnist_cnn'" in err
    assert "'conv2d/kernel' has shape (3, 3, 1, 16), the model needs (3, 3, 1, 32)" in err
    assert "missing 'dense_1/bias'" in err
    assert not mnist.with_suffix(".onnx").exists()


def test_unreadable_weights(mnist, tmp_path, capsys):
    (tmp_path / "w.npz").write_bytes(b"not a zip")
    assert main(["compile", str(mnist), "--weights", str(tmp_path / "w.npz")]) == 2
    assert "not a valid .npz" in capsys.readouterr().err


def test_unsupported_opset(mnist, capsys):
    assert main(["compile", str(mnist), "--opset", "7"]) == 2
    err = capsys.readouterr().err
    assert "opset 7 is not supported" in err and "default 17" in err


def test_model_with_errors_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.cnn"
    bad.write_text("model m\ninput (4, 4, 1)\nConv2D(2, (5, 5))\n")
    assert main(["compile", str(bad)]) == 1
    assert "does not fit its input" in capsys.readouterr().err
    assert not bad.with_suffix(".onnx").exists()


def test_missing_source(tmp_path, capsys):
    assert main(["compile", str(tmp_path / "nope.cnn")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_model_without_input_shape(tmp_path, capsys):
    src = tmp_path / "m.cnn"
    src.write_text("model m\n")      # no layers, no input: the checker has nothing to say
    assert main(["compile", str(src)]) == 2
    err = capsys.readouterr().err
    assert "has no input shape" in err and "input (28, 28, 1)" in err
