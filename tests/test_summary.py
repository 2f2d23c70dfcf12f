"""The summary report in its three formats, and `cnnc check`/`summary` exit codes."""

from __future__ import annotations

import json

import pytest

import cnnc
from cnnc.backends.report.summary import readable_count, readable_memory_size
from cnnc.cli import main


@pytest.mark.parametrize("size,text", [
    (0, "0.00 B"), (80, "80.00 B"), (1023, "1023.00 B"), (1024, "1.00 KB"),
    (93322 * 4, "364.54 KB"),      # Keras's MNIST summary: 93,322 params
    (3 * 1024 ** 2, "3.00 MB"), (1536 * 1024 ** 3, "1.50 TB"),
])
def test_keras_byte_formatting(size, text):
    assert readable_memory_size(size) == text


def test_readable_count():
    assert readable_count(2_794_240) == "2.79 M"
    assert readable_count(999) == "999"
    assert readable_count(None) == "?"


def test_text_summary_has_keras_rows_and_totals(in_repo):
    text = cnnc.load("examples/mnist.cnn").summary()
    lines = text.splitlines()
    assert lines[0] == 'Model: "mnist_cnn"'
    assert "Layer (type)" in lines[2] and "Output Shape" in lines[2] and "Param #" in lines[2]
    row = next(l for l in lines if "conv2d_1 (Conv2D)" in l)
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[:3] == ["conv2d_1 (Conv2D)", "(None, 11, 11, 64)", "18,496"]
    assert cells[3] == f"{11 * 11 * 9 * 32 * 64:,}"      # MACs: out positions x k x C x F
    assert cells[4] == "30.25 KB"                         # 11*11*64*4 bytes
    assert cells[5:] == ["8x8", "2x2"]                    # receptive field, jump
    assert " Total params: 93,322 (364.54 KB)" in lines
    assert " Trainable params: 93,322 (364.54 KB)" in lines
    assert " Non-trainable params: 0 (0.00 B)" in lines
    assert any(l.startswith(" Total MACs: 2,794,240 per sample") for l in lines)


def test_keras_only_and_ascii(in_repo):
    text = cnnc.load("examples/separable.cnn").summary(keras_only=True, ascii=True)
    assert "MACs" not in text and "┃" not in text
    row = next(l for l in text.splitlines() if "batch_normalization (" in l)
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "batch_normalization (BatchNormalization)", "(None, 16, 16, 32)", "128"]
    assert " Non-trainable params: 192 (768.00 B)" in text


def test_json_summary_schema_and_numbers(in_repo, capsys):
    assert main(["summary", "examples/mnist.cnn", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["schema", "cnnc_version", "model", "source", "input_shape", "output_shape",
                          "layers", "totals", "compile", "fit", "diagnostics"]
    assert data["schema"] == "cnnc.summary/1"
    assert data["input_shape"] == [None, 28, 28, 1]
    conv = data["layers"][0]
    assert conv["weights"] == [
        {"name": "kernel", "shape": [3, 3, 1, 32], "trainable": True, "params": 288,
         "initializer": "GlorotUniform", "regularizer": None},
        {"name": "bias", "shape": [32], "trainable": True, "params": 32, "initializer": "Zeros",
         "regularizer": None}]
    assert conv["config"]["kernel_size"] == [3, 3]
    totals = data["totals"]
    assert totals["params"] == 93322 and totals["params_bytes"] == 373288
    assert totals["macs"] == sum(l["macs"] for l in data["layers"])
    assert data["compile"]["optimizer"]["class_name"] == "RMSprop"


def test_markdown_summary(in_repo, capsys):
    assert main(["summary", "examples/mnist.cnn", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| `dense_1` (Dense) | `(None, 10)` | 650 |" in out
    assert "- Total params: 93,322 (364.54 KB)" in out


def test_summary_to_file_never_overwrites_source(in_repo, tmp_path, capsys):
    src = tmp_path / "net.cnn"
    src.write_text("input (4,)\nDense(3)\n")
    assert main(["summary", str(src), "-o", str(src)]) == 2
    assert src.read_text() == "input (4,)\nDense(3)\n"
    out = tmp_path / "sub" / "summary.txt"
    assert main(["summary", str(src), "-o", str(out)]) == 0
    assert "Total params: 15" in out.read_text()


def test_exit_codes(in_repo, tmp_path, capsys):
    assert main(["check", "examples/mnist.cnn"]) == 0
    assert capsys.readouterr().err == ""                  # silent when clean
    assert main(["check", "examples/errors/warnings.cnn"]) == 0
    assert main(["check", "-W", "examples/errors/warnings.cnn"]) == 1
    assert main(["check", "examples/errors/kernel_too_big.cnn"]) == 1
    assert main(["check", "missing.cnn"]) == 2
    assert main(["check"]) == 2
    assert main(["chek", "examples/mnist.cnn"]) == 2
    assert main(["summary", "examples/errors/kernel_too_big.cnn"]) == 1
    binary = tmp_path / "b.cnn"
    binary.write_bytes(b"\x00\x01\x02")
    assert main(["check", str(binary)]) == 2
    latin = tmp_path / "l.cnn"
    latin.write_bytes("input (4,)\n# caf\xe9\n".encode("latin-1"))
    assert main(["check", str(latin)]) == 2
    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_check_json_output(in_repo, capsys):
    assert main(["check", "--format", "json", "examples/errors/kernel_too_big.cnn"]) == 1
    data = json.loads(capsys.readouterr().out)
    (d,) = data["files"][0]["diagnostics"]
    assert (d["severity"], d["line"], d["column"]) == ("error", 9, 12)
    assert data["exit_status"] == 1


def test_counts_beyond_any_float_are_printed_not_crashed():
    """A layer of 10**24 units: params and bytes larger than a float can hold are shown
    in exact scientific form (the summary and the resource guard's message)."""
    from cnnc.backends.report.summary import render
    from cnnc.frontends.cnn import check_text
    from cnnc.support import resources
    n = 5 * 10 ** 400
    assert readable_memory_size(n) == "5.00e+400 B" and readable_count(n) == "5.00e+400"
    assert resources.human(n) == "5.00e+400 B"
    checked = check_text("input (4,)\nDense(1000000000000000000000000)\n")
    assert checked.ok
    text = render(checked.analysis, keras_only=True)
    assert "(2.00e+25 B)" in text               # 5e24 params x 4 bytes
