"""Datasets and preprocessing: IDX and .npz files written here by hand, the real
Fashion-MNIST when installed, sklearn digits, and every shape/label rule."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from cnnc.support import data as D

FASHION = Path(D.FASHION_MNIST_DIR)


def write_idx(path: Path, arr: np.ndarray, code: int = 0x08, compress: bool = False) -> None:
    """An IDX file built from the format's definition: 0, 0, type code, ndim, big-endian dims, data."""
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    big = arr.astype(arr.dtype.newbyteorder(">"))
    raw = header + big.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_uint8_and_int32(tmp_path, compress):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", imgs, 0x08, compress)
    got = D.read_idx(tmp_path / "a")
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4) and np.array_equal(got, imgs)
    ints = np.array([1, -2, 70000], np.int32)
    write_idx(tmp_path / "b", ints, 0x0C, compress)
    got = D.read_idx(tmp_path / "b")
    assert got.dtype == np.int32 and got.dtype.byteorder in "=|<" and list(got) == [1, -2, 70000]


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(D.DataError, match="not an IDX file"):
        D.read_idx(tmp_path / "junk")
    write_idx(tmp_path / "t", np.zeros((3, 2, 2), np.uint8))
    data = (tmp_path / "t").read_bytes()
    (tmp_path / "t").write_bytes(data[:-1])
    with pytest.raises(D.DataError, match=r"truncated.*need 12 bytes.*has 11"):
        D.read_idx(tmp_path / "t")
    (tmp_path / "g").write_bytes(gzip.compress(data)[:20])
    with pytest.raises(D.DataError, match="cannot read"):
        D.read_idx(tmp_path / "g")


def _idx_dir(folder: Path, n_train=5, n_test=3, test_prefix="t10k", compress=True) -> None:
    rng = np.random.default_rng(0)
    sfx = ".gz" if compress else ""
    write_idx(folder / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_train, 6, 6), dtype=np.uint8), compress=compress)
    write_idx(folder / f"train-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n_train, dtype=np.uint8), compress=compress)
    write_idx(folder / f"{test_prefix}-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 6, 6), dtype=np.uint8), compress=compress)
    write_idx(folder / f"{test_prefix}-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n_test, dtype=np.uint8), compress=compress)


@pytest.mark.parametrize("prefix,compress", [("t10k", True), ("test", False)])
def test_idx_directory(tmp_path, prefix, compress):
    _idx_dir(tmp_path, test_prefix=prefix, compress=compress)
    ds = D.load(str(tmp_path))
    assert ds.x_train.shape == (5, 6, 6) and ds.y_train.shape == (5,)
    assert ds.x_test.shape == (3, 6, 6) and ds.y_test.shape == (3,)


def test_idx_directory_with_mismatched_counts(tmp_path):
    _idx_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8), compress=True)
    with pytest.raises(D.DataError, match="5 images but .* 4 labels"):
        D.load(str(tmp_path))


def _peak_bytes(call) -> tuple[int, str]:
    """The most memory Python and NumPy held during `call()`, and the DataError it raised."""
    import tracemalloc
    tracemalloc.start()
    try:
        with pytest.raises(D.DataError) as e:
            call()
        return tracemalloc.get_traced_memory()[1], str(e.value)
    finally:
        tracemalloc.stop()


def test_gzip_idx_declaring_more_than_it_can_hold_is_refused_before_allocating(tmp_path):
    """A 60-byte gzip file declaring 10**9 labels (the file fuzz's huge label dims): no
    gzip file of that size inflates to 1 GB, so it is truncated; nothing is allocated."""
    raw = bytes([0, 0, 8, 1]) + struct.pack(">I", 10**9) + bytes(40)
    (tmp_path / "l.gz").write_bytes(gzip.compress(raw))
    peak, message = _peak_bytes(lambda: D.read_idx(tmp_path / "l.gz"))
    assert peak < 1 << 20
    assert "is truncated: dimensions (1000000000,) need 1,000,000,000 bytes" in message
    assert "can inflate to" in message


def test_idx_folder_checks_every_header_before_reading_data(tmp_path, monkeypatch):
    _idx_dir(tmp_path)
    # each file fits in 200 bytes, all four (180 + 5 + 108 + 3) do not
    monkeypatch.setenv("CNNC_MEMORY_LIMIT", "200")
    with pytest.raises(D.DataError, match="its IDX files need 296 B .* more than the 200 B"):
        D.load(str(tmp_path))
    monkeypatch.delenv("CNNC_MEMORY_LIMIT")
    # labels whose count disagrees are refused from the headers, before any data is read
    raw = bytes([0, 0, 8, 1]) + struct.pack(">I", 2**20) + bytes(2**20)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw))
    peak, message = _peak_bytes(lambda: D.load(str(tmp_path)))
    assert peak < 1 << 20 and "has 5 images but" in message and "1048576 labels" in message


def test_cli_refuses_a_huge_gzip_idx_and_writes_nothing(tmp_path, capsys):
    from cnnc.cli import main

    from .test_train import TINY
    folder = tmp_path / "idx"
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (40, 6, 6), dtype=np.uint8))
    labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 2**32 - 1) + bytes(40)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    (tmp_path / "tiny.cnn").write_text(TINY)
    out = tmp_path / "w.npz"
    assert main(["train", str(tmp_path / "tiny.cnn"), "--data", str(folder), "-o", str(out),
                 "--epochs", "1", "--no-checkpoint", "-v", "0"]) == 2
    err = capsys.readouterr().err
    assert "train-labels-idx1-ubyte.gz' is truncated: dimensions (4294967295,)" in err, err
    assert not out.exists() and {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_npz_layout_and_errors(tmp_path):
    x = np.zeros((4, 2, 2), np.uint8)
    np.savez(tmp_path / "ok.npz", x_train=x, y_train=np.arange(4), x_test=x[:2], y_test=np.arange(2))
    ds = D.load(str(tmp_path / "ok.npz"))
    assert ds.x_train.shape == (4, 2, 2) and ds.x_test.shape == (2, 2, 2)
    np.savez(tmp_path / "train_only.npz", x_train=x, y_train=np.arange(4))
    with pytest.raises(D.DataError, match="no test split"):
        D.load(str(tmp_path / "train_only.npz")).split("test")
    np.savez(tmp_path / "bad.npz", images=x, labels=np.arange(4))
    with pytest.raises(D.DataError, match="no x_train or y_train") as e:
        D.load(str(tmp_path / "bad.npz"))
    assert "images, labels" in " ".join(e.value.notes)
    np.savez(tmp_path / "pickled.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=np.arange(1))
    with pytest.raises(D.DataError):  # never unpickled
        D.load(str(tmp_path / "pickled.npz"))
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(D.DataError, match="not a valid .npz"):
        D.load(str(tmp_path / "broken.npz"))


def test_unknown_spec_suggests(tmp_path):
    with pytest.raises(D.DataError, match="unknown dataset 'fashion-mnst'") as e:
        D.load("fashion-mnst")
    assert "fashion-mnist" in e.value.notes[0]
    with pytest.raises(D.DataError, match="no such file"):
        D.load(str(tmp_path / "missing.npz"))


def test_missing_fashion_mnist_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNC_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(D.DataError, match="not installed") as e:
        D.load("fashion-mnist")
    assert any("apt-get install -y dataset-fashion-mnist" in n for n in e.value.notes)


@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").exists(),
                    reason="Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)")
def test_real_fashion_mnist():
    ds = D.load("fashion-mnist")
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10000, 28, 28)
    assert ds.y_train.shape == (60000,) and set(np.unique(ds.y_train)) == set(range(10))
    assert np.bincount(ds.y_test).tolist() == [1000] * 10  # the test set is balanced
    assert ds.class_names[9] == "Ankle boot"


def test_digits():
    pytest.importorskip("sklearn")
    ds = D.load("digits")
    assert ds.x_train.shape == (1437, 8, 8) and ds.x_test.shape == (360, 8, 8)
    assert ds.x_train.max() == 16.0 and ds.scale == 16.0
    x = D.prepare_x(ds.x_train, (8, 8, 1), divisor=ds.scale)
    assert x.shape == (1437, 8, 8, 1) and x.dtype == np.float32 and x.max() == 1.0


# --- preprocessing ------------------------------------------------------------------------

def test_uint8_is_scaled_and_gets_a_channel_axis():
    x = np.array([[[0, 255], [51, 102]]], np.uint8)
    got = D.prepare_x(x, (2, 2, 1))
    assert got.shape == (1, 2, 2, 1) and got.dtype == np.float32 and got.flags.c_contiguous
    assert np.allclose(got[0, :, :, 0], [[0.0, 1.0], [0.2, 0.4]])
    raw = D.prepare_x(x, (2, 2, 1), scale=False)
    assert raw.max() == 255.0
    floats = D.prepare_x(np.full((1, 2, 2, 1), 7.0), (2, 2, 1))  # floats are left alone
    assert floats.max() == 7.0


def test_input_mismatch_names_both_shapes():
    with pytest.raises(D.DataError) as e:
        D.prepare_x(np.zeros((5, 32, 32, 3), np.uint8), (28, 28, 1), what="training data x",
                    model="model 'mnist_cnn'")
    msg = e.value.message
    assert "(5, 32, 32, 3)" in msg and "(None, 28, 28, 1)" in msg and "mnist_cnn" in msg
    with pytest.raises(D.DataError) as e:
        D.prepare_x(np.zeros((5, 784)), (28, 28, 1))
    assert any("reshape x to (5, 28, 28, 1)" in n for n in e.value.notes)


def test_labels_one_hot_for_categorical_crossentropy():
    y = np.array([2, 0, 1], np.uint8)
    got = D.prepare_y(y, (3,), "categorical_crossentropy")
    assert got.dtype == np.float32 and np.array_equal(got, np.eye(3)[[2, 0, 1]])
    assert np.array_equal(D.prepare_y(y[:, None], (3,), "categorical_crossentropy"), got)
    onehot = np.eye(3)[[1, 1]]
    assert np.array_equal(D.prepare_y(onehot, (3,), "categorical_crossentropy"), onehot)


def test_sparse_labels_stay_ids_and_are_range_checked():
    got = D.prepare_y(np.array([[1], [2]]), (3,), "sparse_categorical_crossentropy")
    assert got.tolist() == [1, 2]
    with pytest.raises(D.DataError, match="class id 3, but the model's output has 3 classes"):
        D.prepare_y(np.array([0, 3]), (3,), "sparse_categorical_crossentropy")
    with pytest.raises(D.DataError, match="fractions"):
        D.prepare_y(np.array([0.5, 1.0]), (3,), "categorical_crossentropy")
    with pytest.raises(D.DataError, match="looks one-hot"):
        D.prepare_y(np.eye(3), (3,), "sparse_categorical_crossentropy")


def test_binary_and_regression_targets_take_the_output_shape():
    got = D.prepare_y(np.array([0, 1, 1]), (1,), "binary_crossentropy")
    assert got.shape == (3, 1) and got.dtype == np.float32
    with pytest.raises(D.DataError) as e:
        D.prepare_y(np.zeros((3, 4)), (2,), "mean_squared_error", model="model 'm'")
    assert "(3, 4)" in e.value.message and "(None, 2)" in e.value.message


def test_limit_takes_the_first_samples():
    ds = D.Dataset("t", np.arange(10), np.arange(10), np.arange(4), np.arange(4))
    small = ds.limit(3)
    assert small.x_train.tolist() == [0, 1, 2] and small.y_test.tolist() == [0, 1, 2]
