"""Hostile inputs, second round: Keras configs whose graph is a cycle (hand-edited, or a
nested model with an inner layer of its own name), HDF5 files packed with global heaps,
scripts and notebooks handed to the wrong command, and the hints that go with them.
Each case: the exit status, the message, and nothing written (or the old file intact).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cnnc.cli import main

from .conftest import ROOT

DATA = ROOT / "tests" / "data" / "keras"


def _tensor(src: str) -> dict:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, 4], "dtype": "float32", "keras_history": [src, 0, 0]}}


def _functional(layers: list, outputs: list[str], name: str = "m") -> dict:
    return {"class_name": "Functional", "config": {
        "name": name, "layers": layers, "input_layers": [["i", 0, 0]],
        "output_layers": [[o, 0, 0] for o in outputs]}}


def _input(name: str = "i", shape=(4,)) -> dict:
    return {"class_name": "InputLayer", "name": name, "inbound_nodes": [],
            "config": {"batch_shape": [None, *shape], "name": name}}


def _dense(name: str, src: str) -> dict:
    return {"class_name": "Dense", "name": name, "config": {"name": name, "units": 4},
            "inbound_nodes": [{"args": [_tensor(src)], "kwargs": {}}]}


def _in_subprocess(argv: list[str], cwd) -> subprocess.CompletedProcess:
    """A regression (a hang) fails the test instead of the suite."""
    return subprocess.run([sys.executable, "-m", "cnnc", *map(str, argv)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("layers,loop", [
    ([_input(), _dense("a", "b"), _dense("b", "a"), _dense("c", "b")], "'a' <- 'b' <- 'a'"),
    ([_input(), _dense("a", "a"), _dense("c", "a")], "'a' <- 'a'"),
])
def test_cyclic_graph_is_refused_not_a_hang(tmp_path, layers, loop):
    """A config whose layers read each other once looped forever, growing memory."""
    p = tmp_path / "cyc.json"
    p.write_text(json.dumps(_functional(layers, ["c"])))
    out = tmp_path / "o.onnx"
    for argv in (["check", p], ["summary", p], ["compile", p, "-o", out], ["import", p, "--no-weights"]):
        r = _in_subprocess(argv, tmp_path)
        assert r.returncode == 2, r.stderr
        assert f"cannot read {p}" in r.stderr and "reads its own output" in r.stderr, r.stderr
        assert loop in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() and not (tmp_path / "cyc.cnn").exists()


def _nested_named_like_its_layer() -> dict:
    """Keras allows a nested model's inner layer to carry the nested model's own name."""
    inner = {"class_name": "Sequential", "name": "stem", "config": {"name": "stem", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "stem_in"}},
        {"class_name": "Dense", "config": {"name": "stem", "units": 3}},
        {"class_name": "ReLU", "config": {"name": "stem_relu"}}]},
        "inbound_nodes": [{"args": [_tensor("i")], "kwargs": {}}]}
    return _functional([_input(), inner, _dense("head", "stem")], ["head"])


def test_nested_model_with_an_inner_layer_of_its_name(tmp_path, capsys):
    """The inner layer kept the nested model's name, which also stands for the nested
    model's output: the ReLU read itself and every command hung."""
    p = tmp_path / "nested.json"
    p.write_text(json.dumps(_nested_named_like_its_layer()))
    r = _in_subprocess(["summary", "--format", "json", p], tmp_path)
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)
    rows = [(row["name"], row["type"], row["params"]) for row in model["rows"]]
    assert rows == [("stem", "Sequential", 4 * 3 + 3), ("head", "Dense", 3 * 4 + 4)]
    assert main(["compile", str(p), "-q", "-o", str(tmp_path / "n.onnx")]) == 0
    assert (tmp_path / "n.onnx").exists()


def test_nested_model_named_like_an_outer_layer_is_refused(tmp_path, capsys):
    """Keras refuses two layers of one name; the nested model's name counts."""
    m = _nested_named_like_its_layer()
    m["config"]["layers"][1]["config"]["name"] = m["config"]["layers"][1]["name"] = "head"
    m["config"]["layers"][2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "head"
    p = tmp_path / "clash.json"
    p.write_text(json.dumps(m))
    assert main(["summary", str(p)]) == 2
    assert "two layers are named 'head'" in capsys.readouterr().err


def _many_empty_heaps(n: int) -> bytes:
    """An HDF5 superblock followed by `n` global heap collections holding no object."""
    head = (DATA / "keras2_legacy_weights.h5").read_bytes()[:2048]
    return head + (b"GCOL\x01\0\0\0" + (16).to_bytes(8, "little")) * n


def test_global_heaps_count_against_the_walk_budget(monkeypatch):
    """Empty collections cost a read each but were not counted: a file packed with them
    (16 bytes each) took ~45 s per GB. Now every collection counts toward MAX_STEPS."""
    import io

    from cnnc.frontends.keras import heaps
    from cnnc.frontends.keras.limits import KerasFileError
    monkeypatch.setattr(heaps, "MAX_STEPS", 1000)
    heaps.check(io.BytesIO(_many_empty_heaps(999)), "w")
    with pytest.raises(KerasFileError, match="more than 1,000 objects in its global heaps"):
        heaps.check(io.BytesIO(_many_empty_heaps(1001)), "w")


def test_many_heaps_cli(tmp_path):
    """The command refuses the weights file with a message, leaves the output unwritten."""
    import cnnc.frontends.keras.heaps as heaps
    w = tmp_path / "w.weights.h5"
    w.write_bytes(_many_empty_heaps(heaps.MAX_STEPS + 1))     # 64 MB
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8, 2), np.float32))
    r = _in_subprocess(["predict", DATA / "seq_cnn.json", "--weights", w, "--data",
                        tmp_path / "x.npy", "-o", tmp_path / "y.npy"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "objects in its global heaps" in r.stderr and str(w) in r.stderr
    assert not (tmp_path / "y.npy").exists()


SCRIPT = ("import keras\nm = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), "
          "keras.layers.Dense(3)])\n")


@pytest.mark.parametrize("name,kind", [("net.py", "a Keras script"),
                                       ("net.ipynb", "a Jupyter notebook"),
                                       ("net.keras", "a Keras model file"),
                                       ("net.json", "a Keras model config")])
def test_run_on_a_source_says_compile_it(tmp_path, capsys, name, kind):
    """`cnnc run train.py` said 'not a valid ONNX model (Wire format was corrupt) ...
    the file may be truncated or corrupt; export it again'."""
    src = tmp_path / name
    src.write_text(SCRIPT if name.endswith(".py") else json.dumps({"cells": []}))
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8, 1), np.float32))
    before = src.read_bytes()
    assert main(["run", str(src), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert f"'{src}' is {kind}" in err and "not an ONNX model" in err
    assert f"cnnc compile {src}" in err and "corrupt" not in err
    assert src.read_bytes() == before and not (tmp_path / "y.npy").exists()


def test_run_with_the_data_first(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8, 1), np.float32))
    assert main(["run", str(tmp_path / "x.npy"), "-i", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "is a NumPy array, not an ONNX model" in err and "the model comes first" in err


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_script_without_weights_says_so(tmp_path, capsys, command):
    src = tmp_path / "net.py"
    src.write_text(SCRIPT)
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8, 1), np.float32))
    argv = [command, str(src), "--data", "digits" if command == "evaluate" else str(tmp_path / "x.npy")]
    if command == "predict":
        argv += ["-o", str(tmp_path / "y.npy")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the weights are missing" in err and "a Keras script carries no weights" in err
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("name", ["", "/", ".", ".."])
def test_compile_of_a_path_without_a_file_name(tmp_path, capsys, monkeypatch, name):
    """`cnnc compile ''` (found by the CLI fuzz, seed 7) was an internal error: the
    default output net.onnx is derived from the source's name before reading it."""
    monkeypatch.chdir(tmp_path)
    assert main(["compile", name, "--model", "m"] if name == "" else ["compile", name]) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err and ("is not a file name" in err or "cannot read" in err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["inf", "nan", "1e308", "0", "-1"])
def test_bench_seconds_must_be_finite(capsys, value):
    """`--seconds inf` (the CLI fuzz, seed 7) timed each engine up to 10,000 calls."""
    assert main(["bench", str(ROOT / "examples" / "digits.cnn"), "--seconds", value]) == 2
    err = capsys.readouterr().err
    assert "--seconds must be more than 0 and at most 3600" in err


def test_a_weights_file_whose_root_header_is_damaged_is_exit_2(tmp_path, monkeypatch, capsys):
    """Two bytes of residual.keras's model.weights.h5 changed (found by the big file fuzz):
    h5py raises KeyError ('address of object past end of allocation') on the root's
    attributes, which was an internal error (exit 70) in import, compile and summary."""
    pytest.importorskip("h5py")
    data = bytearray((DATA / "residual.keras").read_bytes())
    assert (data[11753], data[11757]) == (0, 1)      # the fixture these offsets are for
    data[11753], data[11757] = 128, 0
    (tmp_path / "m.keras").write_bytes(bytes(data))
    monkeypatch.chdir(tmp_path)
    for argv in (["import", "m.keras", "-o", "m.cnn"], ["compile", "m.keras", "-o", "m.onnx"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "cannot read 'm.keras'" in err and "damaged" in err and "internal error" not in err
    assert not (tmp_path / "m.cnn").exists() and not (tmp_path / "m.onnx").exists()
