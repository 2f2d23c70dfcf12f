"""Keras model files in (cnnc/keras_files), without Keras: the fixtures in
tests/data/keras/ were written once by tools/make_keras_fixtures.py (Keras 3.15 and
tf_keras 2.21), with Keras's outputs and layer tables beside them."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy.network import Network
from cnnc.cli import main
from cnnc.frontends.keras import import_file
from cnnc.support.diagnostics import CnncError

DATA = Path(__file__).parent / "data" / "keras"
EXPECTED = np.load(DATA / "expected.npz")
TABLES = json.loads((DATA / "expected.json").read_text())

MODELS = {  # file -> (key in expected.*, extra weights file, input names)
    "seq_cnn.keras": ("seq_cnn", None, ["x"]),
    "seq_cnn.h5": ("seq_cnn", None, ["x"]),
    "seq_cnn.json": ("seq_cnn", "seq_cnn.weights.h5", ["x"]),
    "residual.keras": ("residual", None, ["x0", "x1"]),
    "residual.json": ("residual", "residual.weights.h5", ["x0", "x1"]),
    "keras2.h5": ("keras2", None, ["x"]),
}


def _load(name: str) -> cnnc.Model:
    key, weights, _ = MODELS[name]
    m = cnnc.load(DATA / name)
    if weights:
        m.load_weights(DATA / weights)
    return m


def _predict(m: cnnc.Model, key: str, ins: list[str]) -> np.ndarray:
    xs = [EXPECTED[f"{key}/{i}"] for i in ins]
    y = Network(m.analysis, m.weights).predict(xs[0] if len(xs) == 1 else xs)
    return y[0] if isinstance(y, list) else y


@pytest.mark.parametrize("name", list(MODELS))
def test_layers_equal_keras(name):
    key, _, _ = MODELS[name]
    m = cnnc.load(DATA / name)
    table = [row for row in TABLES[key] if not (row["class"] == "InputLayer")]
    ours = [i for i in m.analysis.infos if not i.layer.is_op]
    assert [(i.name, i.layer.kind, i.params) for i in ours] == \
        [(r["name"], r["class"], r["params"]) for r in table]
    assert [list(i.output_shape) for i in ours] == [r["output_shape"][1:] for r in table]


@pytest.mark.parametrize("name", list(MODELS))
def test_outputs_equal_keras(name):
    key, _, ins = MODELS[name]
    y = _predict(_load(name), key, ins)
    want = EXPECTED[f"{key}/y"]
    assert np.abs(y - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("weights", ["keras2.weights.h5", "keras2_legacy_weights.h5", "keras2.h5"])
def test_keras2_weights_file_next_to_cnn(tmp_path, weights):
    imp = import_file(DATA / "keras2.h5")
    cnn = tmp_path / "k2.cnn"
    cnn.write_text(imp.text)
    m = cnnc.load(cnn)
    m.load_weights(DATA / weights)
    y = _predict(m, "keras2", ["x"])
    assert np.allclose(y, EXPECTED["keras2/y"], atol=1e-5)


def test_written_cnn_is_readable():
    seq = import_file(DATA / "seq_cnn.keras").text
    assert "input (12, 12, 1)" in seq and "model seq_cnn" in seq
    assert "Conv2D(8, 3, activation='relu')" in seq          # defaults left out, no names
    assert "name=" not in seq and "data_format" not in seq
    assert "compile(optimizer=Adam(learning_rate=0.002), loss='categorical_crossentropy'" in seq
    res = import_file(DATA / "residual.keras").text
    assert "Input(shape=(8, 8, 3), name='image')" in res
    assert "name='stem_conv'" in res and "name='conv2d'" not in res
    assert " * 0.5" in res and " + 1.0" in res
    assert "model = Model([" in res
    k2 = import_file(DATA / "keras2.h5").text
    assert "LeakyReLU()" in k2                  # Keras 2's alpha=0.3 (float32) is the default
    assert "optimizer=SGD(learning_rate=0.05, momentum=0.9)" in k2


def test_import_command_round_trip(tmp_path, capsys):
    out = tmp_path / "net.cnn"
    assert main(["import", str(DATA / "residual.keras"), "-o", str(out)]) == 0
    assert out.exists() and (tmp_path / "net.npz").exists()
    m = cnnc.load(out)
    m.load_weights(tmp_path / "net.npz")
    y = _predict(m, "residual", ["x0", "x1"])
    assert np.allclose(y, EXPECTED["residual/y"], atol=1e-5)
    capsys.readouterr()
    assert main(["summary", str(out)]) == 0
    ours = capsys.readouterr().out
    assert main(["summary", str(DATA / "residual.keras")]) == 0
    assert capsys.readouterr().out == ours


def test_import_json_needs_weights(tmp_path, capsys):
    out = tmp_path / "net.cnn"
    assert main(["import", str(DATA / "seq_cnn.json"), "-o", str(out)]) == 2
    assert "has no weights" in capsys.readouterr().err and not out.exists()
    assert main(["import", str(DATA / "seq_cnn.json"), "-o", str(out), "--weights",
                 str(DATA / "seq_cnn.weights.h5")]) == 0
    assert out.exists()


def test_import_never_over_an_input(tmp_path, capsys):
    src = tmp_path / "m.keras"
    shutil.copy(DATA / "seq_cnn.keras", src)
    weights = tmp_path / "m.npz"
    weights.write_bytes(b"keep")
    assert main(["import", str(src), "-o", str(tmp_path / "m.cnn"), "--weights", str(weights)]) == 2
    assert weights.read_bytes() == b"keep"


def test_commands_take_keras_files(tmp_path, capsys):
    onnx_path = tmp_path / "m.onnx"
    assert main(["check", str(DATA / "residual.keras")]) == 0
    assert main(["compile", str(DATA / "seq_cnn.keras"), "-q", "-o", str(onnx_path)]) == 0
    import onnxruntime as ort
    s = ort.InferenceSession(str(onnx_path))
    y = s.run(None, {s.get_inputs()[0].name: EXPECTED["seq_cnn/x"]})[0]
    assert np.allclose(y, EXPECTED["seq_cnn/y"], atol=1e-5)
    x = tmp_path / "x.npy"
    np.save(x, EXPECTED["seq_cnn/x"])
    assert main(["predict", str(DATA / "seq_cnn.h5"), "--data", str(x), "-o",
                 str(tmp_path / "y.npy")]) == 0
    assert np.allclose(np.load(tmp_path / "y.npy"), EXPECTED["seq_cnn/y"], atol=1e-5)
    assert main(["predict", str(DATA / "seq_cnn.json"), "--data", str(x), "-o",
                 str(tmp_path / "y2.npy")]) == 2        # a JSON has no weights
    assert main(["plot", str(DATA / "residual.keras"), "-o", str(tmp_path / "r.dot")]) == 0


def test_check_keras_stays_light():
    import subprocess
    import sys
    code = ("import sys, cnnc.frontends.dispatch as f; f.check_file('examples/mnist.cnn');"
            "print('h5py' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent).stdout
    assert out.strip() == "False False"


# --- refusals: every unsupported layer of the file, by name, exit 1 ----------------------------

def _edited_json(tmp_path, src: str, edit) -> Path:
    c = json.loads((DATA / src).read_text())
    edit(c["config"]["layers"])
    p = tmp_path / "edited.json"
    p.write_text(json.dumps(c))
    return p


def test_lambda_and_custom_classes_refused_by_name(tmp_path, capsys):
    def edit(layers):
        layers[3]["class_name"] = "Lambda"
        layers[3]["config"]["function"] = {"class_name": "__lambda__", "config": {"code": "4wEA"}}
        layers[5].update(class_name="NoSuchLayer", module="evil", registered_name="Custom>NoSuchLayer")
        layers[6]["class_name"] = "LSTM"
    p = _edited_json(tmp_path, "residual.json", edit)
    out = tmp_path / "x.cnn"
    assert main(["import", str(p), "-o", str(out), "--no-weights"]) == 1
    err = capsys.readouterr().err
    assert "(Lambda): a Lambda layer is Python code" in err
    assert "unknown layer class 'NoSuchLayer'" in err
    assert "does not support the Keras layer LSTM" in err
    assert "3 errors generated." in err and not out.exists()


def test_diagnostics_speak_of_keras_names(tmp_path, capsys):
    def edit(layers):
        layers[1]["config"].update(name="block3_conv2", data_format="channels_first")
    p = _edited_json(tmp_path, "seq_cnn.json", edit)
    assert main(["check", str(p)]) == 1
    err = capsys.readouterr().err
    assert "error: layer 'block3_conv2' (Conv2D): cnnc does not support data_format='channels_first'" in err


def test_shape_error_in_keras_terms(tmp_path, capsys):
    def edit(layers):
        layers[0]["config"]["batch_shape"] = [None, 2, 2, 1]
    p = _edited_json(tmp_path, "seq_cnn.json", edit)
    assert main(["summary", str(p)]) == 1
    assert "layer 'conv2d' (Conv2D): Conv2D kernel_size=3x3 does not fit" in capsys.readouterr().err


def test_shared_layer_and_nested_model_refused(tmp_path):
    def edit(layers):
        layers[2]["inbound_nodes"].append(layers[2]["inbound_nodes"][0])
        layers[4]["class_name"] = "Functional"
    p = _edited_json(tmp_path, "residual.json", edit)
    with pytest.raises(CnncError) as e:
        import_file(p)
    text = str(e.value)
    assert "called 2 times" in text and "nested models are not supported" in text


# --- hostile and broken files: a clear error, exit 2 ---------------------------------------------

def _exit2(path, capsys, *words):
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err
    assert "Traceback" not in err and "internal error" not in err


def test_truncated_zip(tmp_path, capsys):
    p = tmp_path / "t.keras"
    data = (DATA / "seq_cnn.keras").read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _exit2(p, capsys, "not a valid .keras zip archive")


def test_truncated_weights_inside_zip(tmp_path, capsys):
    p = tmp_path / "t.keras"
    with zipfile.ZipFile(DATA / "seq_cnn.keras") as src, zipfile.ZipFile(p, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[:200] if info.filename.endswith(".h5") else data)
    assert main(["check", str(p)]) == 0           # the config is fine
    assert main(["compile", str(p), "-q", "-o", str(tmp_path / "t.onnx")]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err
    assert not (tmp_path / "t.onnx").exists()


def test_deflated_keras_file(tmp_path):
    p = tmp_path / "deflated.keras"
    with zipfile.ZipFile(DATA / "seq_cnn.keras") as src, \
            zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    m = cnnc.load(p)
    assert np.allclose(_predict(m, "seq_cnn", ["x"]), EXPECTED["seq_cnn/y"], atol=1e-5)


def test_zip_bomb_refused_before_reading(tmp_path, capsys):
    p = tmp_path / "bomb.keras"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", (DATA / "seq_cnn.json").read_text())
        z.writestr("model.weights.h5", b"\0" * (8 << 20))     # 8 MiB of zeros: ~8 KB
    _exit2(p, capsys, "zip bomb")


def test_zip_member_declaring_huge_size(tmp_path, capsys):
    p = tmp_path / "huge.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", (DATA / "seq_cnn.json").read_text())
    data = bytearray(p.read_bytes())
    # patch the central directory's uncompressed size of config.json to 2**32 - 1
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24: cd + 28] = struct.pack("<I", 0xFFFFFFFF)
    p.write_bytes(bytes(data))
    _exit2(p, capsys, "cannot read")


def test_not_a_model_config(tmp_path, capsys):
    p = tmp_path / "x.json"
    p.write_text('{"hello": 1}')
    _exit2(p, capsys, "is not a Keras model config")
    p.write_text("[" * 100000)
    _exit2(p, capsys, "cannot read")
    p.write_text('{"class_name": "MyModel", "config": {}}')
    _exit2(p, capsys, "not a Sequential or Functional model")


def test_directory_and_fifo(tmp_path, capsys):
    d = tmp_path / "dir.keras"
    d.mkdir()
    _exit2(d, capsys, "it is a directory")
    if hasattr(os, "mkfifo"):
        f = tmp_path / "fifo.h5"
        os.mkfifo(f)
        _exit2(f, capsys, "not a regular file")
        w = tmp_path / "w.weights.h5"
        os.mkfifo(w)
        assert main(["compile", str(DATA / "seq_cnn.json"), "--weights", str(w), "-q",
                     "-o", str(tmp_path / "o.onnx")]) == 2
        assert "not a regular file" in capsys.readouterr().err


def test_h5_without_model_config(tmp_path, capsys):
    _exit2(DATA / "seq_cnn.weights.h5", capsys, "holds weights only")
    p = tmp_path / "plain.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.zeros(3)
    _exit2(p, capsys, "without a Keras model config")


def _zero_free_space(data: bytes) -> bytes:
    """`data` (an HDF5 file with variable-length strings) with the size of the free-space
    object of its first global heap set to 0: libhdf5 then loops forever on reading any
    string of that heap (found by the file fuzz, case keras-633, there by a grown object
    size that made the walk land on zero padding)."""
    b = bytearray(data)
    at = b.find(b"GCOL\x01")
    size, p = struct.unpack_from("<Q", b, at + 8)[0], 16
    while p + 16 <= size:
        index, stored = struct.unpack_from("<H", b, at + p)[0], struct.unpack_from("<Q", b, at + p + 8)[0]
        if index == 0:
            struct.pack_into("<Q", b, at + p + 8, 0)
            return bytes(b)
        p += 16 + -(-stored // 8) * 8
    raise AssertionError("no free space in the heap")


def test_corrupt_global_heap_is_refused_not_a_hang(tmp_path):
    """A string attribute whose heap would hang libhdf5: exit 2 naming the heap, in a
    subprocess with a timeout so that a regression fails instead of hanging the suite."""
    p = tmp_path / "k.h5"
    p.write_bytes(_zero_free_space((DATA / "keras2.h5").read_bytes()))
    before = p.read_bytes()
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 8, 8, 2), np.float32))
    for argv in (["check", p], ["predict", p, "--data", x],
                 ["predict", DATA / "keras2.h5", "--weights", p, "--data", x]):
        r = subprocess.run([sys.executable, "-m", "cnnc", *map(str, argv)], capture_output=True,
                           text=True, timeout=120, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert "global heap at byte" in r.stderr and "is corrupt" in r.stderr, r.stderr
        assert str(p) in r.stderr and "Traceback" not in r.stderr
    assert p.read_bytes() == before


def test_corrupt_global_heap_in_a_file_object():
    """The same check on a file object (a .keras member), which is left at its start."""
    from cnnc.frontends.keras import heaps
    from cnnc.frontends.keras.limits import KerasFileError
    f = io.BytesIO(_zero_free_space((DATA / "keras2.h5").read_bytes()))
    with pytest.raises(KerasFileError, match="global heap at byte .* is corrupt"):
        heaps.check(f, "m")
    assert f.tell() == 0
    heaps.check(io.BytesIO((DATA / "keras2.h5").read_bytes()), "m")     # the valid file passes


def _copy_weights(tmp_path, name="seq_cnn.weights.h5") -> Path:
    p = tmp_path / name
    shutil.copy(DATA / name, p)
    return p


def _compile_with(tmp_path, weights, capsys, model="seq_cnn.json") -> str:
    rc = main(["compile", str(DATA / model), "--weights", str(weights), "-q",
               "-o", str(tmp_path / "o.onnx")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert not (tmp_path / "o.onnx").exists()
    return err


def test_weights_of_wrong_shape(tmp_path, capsys):
    p = _copy_weights(tmp_path)
    with h5py.File(p, "r+") as f:
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = np.zeros((7, 5), np.float32)
    err = _compile_with(tmp_path, p, capsys)
    assert "'dense/kernel' (layers/dense/vars/0) has shape (7, 5), the model needs (200, 5)" in err


def test_weights_missing_and_extra(tmp_path, capsys):
    p = _copy_weights(tmp_path)
    with h5py.File(p, "r+") as f:
        del f["layers/conv2d/vars/1"]
        f["layers/conv2d/vars/9"] = np.zeros(3, np.float32)
        f["stowaway"] = np.zeros(3, np.float32)
    err = _compile_with(tmp_path, p, capsys)
    assert "missing 'conv2d/bias' (layers/conv2d/vars/1) (8,)" in err
    assert "unexpected dataset 'layers/conv2d/vars/9' (layer 'conv2d')" in err
    assert "unexpected dataset 'stowaway'" in err


def test_keras2_weights_extra_dataset_and_wrong_shape(tmp_path, capsys):
    p = tmp_path / "k2.h5"
    shutil.copy(DATA / "keras2_legacy_weights.h5", p)
    with h5py.File(p, "r+") as f:
        f["dense/extra"] = np.zeros(2, np.float32)
        name = [n for n in f["dense"].attrs["weight_names"]][1]
        name = name.decode() if isinstance(name, bytes) else name
        del f["dense/" + name]
        f["dense/" + name] = np.zeros(4, np.float32)
    imp = import_file(DATA / "keras2.h5")
    cnn = tmp_path / "k2.cnn"
    cnn.write_text(imp.text)
    rc = main(["compile", str(cnn), "--weights", str(p), "-q", "-o", str(tmp_path / "o.onnx")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "has shape (4,), the model needs (3,)" in err
    assert "unexpected dataset 'dense/extra'" in err


def test_weights_link_out_of_the_file_refused(tmp_path, capsys):
    p = _copy_weights(tmp_path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["secret"] = np.zeros(8, np.float32)
    with h5py.File(p, "r+") as f:
        del f["layers/conv2d/vars/1"]
        f["layers/conv2d/vars/1"] = h5py.ExternalLink(str(other), "secret")
    err = _compile_with(tmp_path, p, capsys)
    assert "ExternalLink" in err


def test_weights_not_hdf5(tmp_path, capsys):
    p = tmp_path / "w.weights.h5"
    p.write_bytes(b"not hdf5 at all")
    err = _compile_with(tmp_path, p, capsys)
    assert "not a readable HDF5 file" in err


@pytest.mark.parametrize("where,value", [
    (("config", "layers", 1, "config", "dtype", "config"), "float32"),
    (("config", "layers", 1, "inbound_nodes", 0, "args", 0, "config"), 7),
    (("config", "layers", 2, "config"), []),
])
def test_malformed_config_values_are_a_clear_error(tmp_path, where, value):
    """Any value of an untrusted config may have any type: exit 2, never a crash."""
    import json

    from cnnc.cli import main
    config = json.loads((DATA / "residual.json").read_text())
    node = config
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    path = tmp_path / "m.json"
    path.write_text(json.dumps(config))
    assert main(["check", str(path)]) in (0, 1, 2)      # never 70


def test_augmentation_called_with_keras_default_training_true_is_read(tmp_path, capsys):
    """Keras saves `training: true` in every call of its image preprocessing layers (their
    default); a Dropout called with training=True (Monte Carlo dropout) is still refused."""
    def edit(layers):
        layers[2].update(class_name="RandomFlip", config={
            "name": "stem_bn", "trainable": True, "mode": "horizontal", "seed": None,
            "data_format": "channels_last"})
        layers[2]["inbound_nodes"][0]["kwargs"]["training"] = True
    p = _edited_json(tmp_path, "residual.json", edit)
    assert main(["check", str(p)]) == 0, capsys.readouterr().err

    def edit_dropout(layers):
        layers[2].update(class_name="Dropout", config={"name": "stem_bn", "rate": 0.5})
        layers[2]["inbound_nodes"][0]["kwargs"]["training"] = True
    p = _edited_json(tmp_path, "residual.json", edit_dropout)
    assert main(["check", str(p)]) == 1
    assert "training=True" in capsys.readouterr().err
