"""The summary of functional models: Keras's functional table, character for character.

tests/data/summaries/<case>.txt is what Keras 3 printed for `model.summary()` of the
case's model (recorded by tools/keras_summaries.py, which also names the .cnn file of
the same model). The keras-marked test rebuilds each model in Keras and compares live.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from cnnc.backends.report.summary import keras_column_widths, render, wrap_cell
from cnnc.cli import main
from cnnc.frontends.dispatch import check_file

from .conftest import ROOT

DATA = ROOT / "tests" / "data" / "summaries"


def _tool():
    spec = importlib.util.spec_from_file_location("keras_summaries", ROOT / "tools" / "keras_summaries.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = _tool().CASES


def _analysis(case: str):
    checked = check_file(str(ROOT / CASES[case][0]))
    assert checked.ok, checked.diagnostics
    return checked.analysis


def _same_lines(ours: str, keras: str) -> None:
    a, b = ours.splitlines(), keras.splitlines()
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"line {i + 1} differs:\ncnnc:  {x!r}\nkeras: {y!r}"
    assert len(a) == len(b), f"cnnc printed {len(a)} lines, Keras {len(b)}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_view_is_what_keras_prints(case):
    recorded = (DATA / f"{case}.txt").read_text(encoding="utf-8")
    _same_lines(render(_analysis(case), "text", keras_only=True, ascii=False), recorded)


@pytest.mark.parametrize("case", sorted(CASES))
def test_default_view_starts_every_line_with_keras_columns(case):
    """cnnc's columns come after Keras's, which stay exactly as Keras draws them."""
    keras = (DATA / f"{case}.txt").read_text(encoding="utf-8").splitlines()
    ours = render(_analysis(case), "text", ascii=False).splitlines()
    table = [l for l in keras if l[:1] in "┏┃┡│├└"]
    assert [l[:len(k) - 1] for l, k in zip(ours[1:], table)] == [k[:-1] for k in table]
    assert "MACs" in ours[2] and "Receptive field" in ours[2]
    totals = [l for l in keras if l.startswith(" ")]
    assert ours[len(table) + 1:len(table) + 1 + len(totals)] == totals
    assert ours[-2].startswith(" Total MACs: ") and ours[-1].startswith(" Activation memory: ")


def test_cli_keras_and_ascii(in_repo, capsys):
    assert main(["summary", "tests/data/summaries/two_heads.cnn", "--keras"]) == 0
    assert capsys.readouterr().out == (DATA / "two_heads.txt").read_text(encoding="utf-8")
    assert main(["summary", "tests/data/summaries/two_heads.cnn", "--keras", "--ascii"]) == 0
    out = capsys.readouterr().out
    assert out.isascii() and "global_average_pooling2d[~ |" in out
    keras = (DATA / "two_heads.txt").read_text(encoding="utf-8")
    assert [len(l) for l in out.splitlines()] == [len(l) for l in keras.splitlines()]
    assert "| add (Add)                     | (None, 32, 32, 16)        |" in out


def test_graph_table_layout():
    text = render(_analysis("two_heads"), "text", keras_only=True, ascii=False)
    lines = text.splitlines()
    assert lines[0] == 'Model: "two_heads"'
    assert {len(l) for l in lines[1:-3]} == {108}                 # Keras's line_length
    assert "┃ Layer (type)" in lines[2] and "┃ Connected to" in lines[2]
    add = lines.index(next(l for l in lines if "│ add (Add)" in l))
    assert lines[add].endswith("│ conv2d[0][0],              │")     # one input a line here
    assert lines[add + 1].endswith("│ conv2d_1[0][0]             │")
    assert "│ image (InputLayer)            │ (None, 32, 32, 3)         │               0 │ -" in text
    assert "class_output_with_a_rather_l… │" in text                  # Keras cuts a long word
    chain = render(_analysis("chain"), "text", keras_only=True, ascii=False).splitlines()
    assert {len(l) for l in chain[1:-3]} == {88} and "Connected to" not in chain[2]


def test_keras_column_widths():
    assert keras_column_widths(108, (0.3, 0.56, 0.74, 1.0)) == [29, 25, 15, 26]
    assert keras_column_widths(88, (0.45, 0.80, 1.0)) == [36, 27, 15]


def test_wrap_cell_like_rich():
    assert wrap_cell("batch_normalization (BatchNormalization)", 29) == [
        "batch_normalization          ", "(BatchNormalization)         "]
    assert wrap_cell("(None, 112, 112, 64)", 15) == ["(None, 112,    ", "112, 64)       "]
    assert wrap_cell("x" * 12, 8) == ["xxxxxxx…"]
    assert wrap_cell("ab " + "x" * 12 + " cd", 8) == ["ab      ", "xxxxxxx…", "cd      "]
    assert wrap_cell("1,234", 8, ">") == ["   1,234"]
    assert wrap_cell("a\nb", 3) == ["a  ", "b  "]
    assert wrap_cell("", 2) == ["  "]


def test_rows_follow_keras_layers_order(in_repo):
    """One row per entry of Keras's model.layers, in its order (NASNetMobile: 770 rows)."""
    analysis = check_file("examples/zoo/nasnet_mobile.cnn").analysis
    order = list(analysis.model.layer_order)
    assert len(order) > 700
    md = render(analysis, "markdown", keras_only=True).splitlines()
    rows = [l for l in md if l.startswith("| `")]
    assert [r[3:].split("` (")[0] for r in rows] == order
    text = render(analysis, "text", keras_only=True, ascii=True)
    assert text.count("\n+-") == len(order) + 1            # a rule under the header and every row


def test_json_graph_fields(in_repo, capsys):
    assert main(["summary", "tests/data/summaries/two_heads.cnn", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "cnnc.summary/1"
    keys = list(data)
    assert keys[keys.index("output_shape") + 1:keys.index("layers")] == ["inputs", "outputs", "layer_order"]
    assert data["inputs"] == [
        {"name": "image", "type": "InputLayer", "shape": [None, 32, 32, 3], "line": 3},
        {"name": "meta", "type": "InputLayer", "shape": [None, 10], "line": 4}]
    assert data["outputs"] == [
        {"name": "class_output_with_a_rather_long_name_indeed", "shape": [None, 5]},
        {"name": "score", "shape": [None, 1]}]
    assert data["output_shape"] == [None, 5]                      # the first output, as before
    assert data["layer_order"][:4] == ["image", "conv2d", "conv2d_1", "add"]
    layers = {l["name"]: l for l in data["layers"]}
    assert layers["add"]["inputs"] == ["conv2d", "conv2d_1"]
    assert layers["concatenate"]["inputs"] == ["global_average_pooling2d", "meta"]
    assert layers["concatenate"]["input_shapes"] == [[None, 16], [None, 10]]
    assert layers["conv2d"]["inputs"] == ["image"]
    assert data["totals"]["params"] == 738 and data["totals"]["non_trainable_params"] == 32


def test_json_of_a_linear_model_has_no_graph_fields(in_repo, capsys):
    assert main(["summary", "examples/mnist.cnn", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "inputs" not in data and "layer_order" not in data
    assert data["layers"][0]["input_shapes"] == [[None, 28, 28, 1]]


def test_markdown_connected_to(in_repo, capsys):
    assert main(["summary", "tests/data/summaries/two_heads.cnn", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| Layer (type) | Output Shape | Param # | Connected to | MACs |" in out
    assert "| `add` (Add) | `(None, 32, 32, 16)` | 0 | `conv2d[0][0]`<br>`conv2d_1[0][0]` | 0 |" in out
    assert "| `meta` (InputLayer) | `(None, 10)` | 0 | - |" in out
    assert "- Total params: 738 (2.88 KB)" in out
    assert main(["summary", "tests/data/summaries/two_heads.cnn", "--format", "markdown", "--keras"]) == 0
    assert "| Layer (type) | Output Shape | Param # | Connected to |\n" in capsys.readouterr().out


def test_hostile_names_keep_the_table_and_markdown_intact(tmp_path, capsys):
    src = tmp_path / "h.cnn"
    src.write_text("inputs = Input(shape=(8, 8, 3), name='in \"<x>\"')\n"
                   "x = Conv2D(4, 3, name='a|b\\nc')(inputs)\n"
                   "y = Conv2D(4, 3, name='t`ick')(inputs)\n"
                   "z = Add()([x, y])\n"
                   "model = Model(inputs, z)\n")
    assert main(["summary", str(src), "--keras"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert {len(l) for l in lines[1:-3]} == {108}
    assert main(["summary", str(src), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    rows = [l for l in md.splitlines() if l.startswith("| `")]
    assert len(rows) == 4 and all(r.replace("\\|", "").count("|") == 9 for r in rows)
    assert "`a\\|b\\nc` (Conv2D)" in md and "``t`ick`` (Conv2D)" in md
    assert main(["summary", str(src)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].count("\n") == 0


@pytest.mark.keras
@pytest.mark.parametrize("case", sorted(CASES))
def test_live_keras_summary(case):
    pytest.importorskip("keras")
    _same_lines(render(_analysis(case), "text", keras_only=True, ascii=False), _tool().keras_summary(case))
