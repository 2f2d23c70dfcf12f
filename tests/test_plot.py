"""`cnnc plot`: the graph as DOT (Keras plot_model's boxes), Mermaid, SVG and PNG."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from cnnc.backends.report import plot
from cnnc.cli import main
from cnnc.frontends.dispatch import check_file

from .conftest import ROOT

needs_dot = pytest.mark.skipif(plot.find_dot() is None, reason="Graphviz's dot is not installed")
SVG = "{http://www.w3.org/2000/svg}"

RESIDUAL = """\
inputs = Input(shape=(8, 8, 16))
x = Conv2D(16, 3, padding='same', activation='relu')(inputs)
x = Conv2D(16, 3, padding='same')(x)
x = Add()([x, inputs])
outputs = Activation('relu')(x)
model = Model(inputs, outputs, name='block')
"""

HOSTILE = """\
inputs = Input(shape=(8, 8, 3), name='in "<x>"')
x = Conv2D(4, 3, name='a"b<c>&d\\n<table>]; n0 -> n1 [x \\\\ \\\\"')(inputs)
y = Conv2D(4, 3, name="it's #1 `tick` |pipe| -->")(inputs)
z = Add()([x, y])
model = Model(inputs, z, name='m"<n>\\n}')
"""


@pytest.fixture
def residual(tmp_path):
    src = tmp_path / "block.cnn"
    src.write_text(RESIDUAL)
    return src


def _analysis(path):
    checked = check_file(str(path))
    assert checked.ok, checked.diagnostics
    return checked.analysis


def _nodes(dot: str) -> dict[str, str]:
    """node id -> its tooltip (the layer name)."""
    return dict(re.findall(r'^  (n\d+) \[label=<.*>, tooltip="((?:[^"\\]|\\.)*)"\];$', dot, re.M))


def _edges(dot: str) -> list[tuple[str, str]]:
    return re.findall(r"^  (n\d+) -> (n\d+);$", dot, re.M)


def test_dot_of_a_residual_block(residual):
    dot = plot.to_dot(_analysis(residual))
    assert dot.startswith("digraph model {\n") and dot.endswith("}\n")
    assert "rankdir=TB" in dot
    nodes = _nodes(dot)
    assert list(nodes.values()) == ["input_layer", "conv2d", "conv2d_1", "add", "activation"]
    edges = {(nodes[a], nodes[b]) for a, b in _edges(dot)}
    assert edges == {("input_layer", "conv2d"), ("conv2d", "conv2d_1"), ("conv2d_1", "add"),
                     ("input_layer", "add"), ("add", "activation")}
    add = next(l for l in dot.splitlines() if 'tooltip="add"' in l)
    assert "<b>add</b> (Add)" in add
    assert "Input shape: <b>[(None, 8, 8, 16), (None, 8, 8, 16)]</b>" in add
    assert "Output shape: <b>(None, 8, 8, 16)</b>" in add and "Params: <b>0</b>" in add
    conv = next(l for l in dot.splitlines() if 'tooltip="conv2d"' in l)
    assert "Params: <b>2,320</b>" in conv
    first = next(l for l in dot.splitlines() if 'tooltip="input_layer"' in l)
    assert "(InputLayer)" in first and "Input shape" not in first and "Params" not in first
    assert "Params" not in plot.to_dot(_analysis(residual), show_params=False)


def test_mermaid(residual):
    text = plot.to_mermaid(_analysis(residual))
    lines = text.splitlines()
    assert lines[:4] == ["---", 'title: "block"', "---", "flowchart TB"]
    assert '    n3["<b>add</b> (Add)<br/>input: #91;(None, 8, 8, 16), (None, 8, 8, 16)#93;' \
           '<br/>output: (None, 8, 8, 16)<br/>params: 0"]' in lines
    assert {l.strip() for l in lines if "-->" in l} == {
        "n0 --> n1", "n1 --> n2", "n2 --> n3", "n0 --> n3", "n3 --> n4"}


def test_sequential_models_plot_too(in_repo):
    dot = plot.to_dot(_analysis("examples/mnist.cnn"))
    assert list(_nodes(dot).values())[:2] == ["input_layer", "conv2d"]
    assert len(_edges(dot)) == len(_nodes(dot)) - 1


def test_hostile_names_are_escaped(tmp_path):
    src = tmp_path / "h.cnn"
    src.write_text(HOSTILE)
    analysis = _analysis(src)
    dot = plot.to_dot(analysis)
    assert len(_nodes(dot)) == 4 and len(_edges(dot)) == 4
    assert dot.count("\n") == 4 + 4 + 4 + 1          # header lines, nodes, edges, closing brace
    labels = re.findall(r"\[label=(<.*>), tooltip=", dot)
    for label in labels:                             # HTML-like labels: only cnnc's own tags
        assert set(re.findall(r"</?([a-z]+)", label)) <= {"table", "tr", "td", "font", "b"}
    # a backslash is two in an HTML-like label, four in a tooltip: Graphviz reads \\ as one,
    # once there and twice here, and would expand \N, \G, \L, \n (test_graphviz_escapes)
    assert "<b>a&quot;b&lt;c&gt;&amp;d\\\\n&lt;table&gt;]; n0 -&gt; n1 [x \\\\ \\\\&quot;</b>" in dot
    assert 'tooltip="a\\"b<c>&d' + "\\" * 4 + 'n<table>]; n0 -> n1 [x ' + "\\" * 4 + " " \
        + "\\" * 4 + '\\""' in dot
    assert 'label=<m&quot;&lt;n&gt;\\\\n}>' in dot
    mermaid = plot.to_mermaid(analysis)
    for line in mermaid.splitlines()[4:]:
        if "[" in line:
            assert re.fullmatch(r'    n\d+\["[^"]*"\]', line), line
    assert "#34;" in mermaid and "#60;" in mermaid and "#124;" in mermaid
    assert mermaid.splitlines()[1] == 'title: "m\\"<n>\\\\n}"'


@needs_dot
def test_hostile_names_render_as_text(tmp_path):
    src = tmp_path / "h.cnn"
    src.write_text(HOSTILE)
    out = tmp_path / "h.svg"
    assert main(["plot", str(src), "-o", str(out)]) == 0
    svg = ET.parse(out)
    groups = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "node"]
    assert len(groups) == 4
    texts = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    assert 'a"b<c>&d\\n<table>]; n0 -> n1 [x \\ \\"' in texts
    assert "it's #1 `tick` |pipe| -->" in texts


@needs_dot
@pytest.mark.parametrize("source,boxes", [("examples/zoo/resnet50.cnn", 177),
                                          ("tests/data/summaries/two_heads.cnn", 10)])
def test_svg(in_repo, tmp_path, capsys, source, boxes):
    out = tmp_path / "net.svg"
    assert main(["plot", source, "-o", str(out)]) == 0
    assert f"wrote {out} (svg, {boxes} boxes)" in capsys.readouterr().out
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    assert len(groups) == boxes == len(_analysis(source).model.layer_order)
    assert any(g.get("class") == "edge" for g in root.iter(f"{SVG}g"))


@needs_dot
def test_png_and_default_path(residual, capsys):
    assert main(["plot", str(residual), "-o", str(residual.with_suffix(".png"))]) == 0
    assert residual.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(residual)]) == 0                   # default: next to the source
    assert residual.with_suffix(".svg").read_bytes().lstrip().startswith(b"<?xml")
    folder = residual.parent / "out"
    folder.mkdir()
    assert main(["plot", str(residual), "-o", str(folder)]) == 0
    assert (folder / "block.svg").exists()


def test_text_formats_by_extension(residual, capsys):
    for ext, start in ((".dot", "digraph model {"), (".gv", "digraph model {"), (".mmd", "---")):
        out = residual.with_suffix(ext)
        assert main(["plot", str(residual), "-o", str(out)]) == 0
        assert out.read_text().startswith(start)
    assert main(["plot", str(residual), "-o", str(residual.with_suffix(".jpg"))]) == 2
    assert "cannot tell the plot format" in capsys.readouterr().err


def test_never_over_the_source(tmp_path, capsys):
    for name, output in (("net.dot", ["-o", str(tmp_path / "net.dot")]),   # -o onto the source
                         ("net.svg", [])):                                 # the default onto it
        src = tmp_path / name
        src.write_text(RESIDUAL)
        assert main(["plot", str(src), *output]) == 2
        assert "refusing to overwrite the input file" in capsys.readouterr().err
        assert src.read_text() == RESIDUAL
    link = tmp_path / "link.mmd"
    link.symlink_to(tmp_path / "net.dot")
    assert main(["plot", str(tmp_path / "net.dot"), "-o", str(link)]) == 2
    assert (tmp_path / "net.dot").read_text() == RESIDUAL


def test_without_graphviz(residual, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(residual.parent / "empty"))
    assert plot.find_dot() is None
    for ext in (".svg", ".png"):
        assert main(["plot", str(residual), "-o", str(residual.with_suffix(ext))]) == 2
        err = capsys.readouterr().err
        assert "needs Graphviz's 'dot' program, which is not installed" in err
        assert "install Graphviz" in err and "-o " in err and ".dot" in err and ".mmd" in err
        assert not residual.with_suffix(ext).exists()
    assert main(["plot", str(residual), "-o", str(residual.with_suffix(".dot"))]) == 0
    assert main(["plot", str(residual), "-o", str(residual.with_suffix(".mmd"))]) == 0


def test_model_errors_exit_1(tmp_path, capsys):
    src = tmp_path / "bad.cnn"
    src.write_text("inputs = Input(shape=(2, 2, 1))\nx = Conv2D(4, 5)(inputs)\nmodel = Model(inputs, x)\n")
    assert main(["plot", str(src), "-o", str(tmp_path / "bad.dot")]) == 1
    assert not (tmp_path / "bad.dot").exists()


def test_dot_failure_is_a_clear_error(residual, tmp_path, monkeypatch, capsys):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text("#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 1\n")
    (fake / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    assert main(["plot", str(residual), "-o", str(tmp_path / "x.svg")]) == 2
    err = capsys.readouterr().err
    assert "Graphviz's dot failed (exit status 1)" in err and "syntax error" in err
    assert "Traceback" not in err and not (tmp_path / "x.svg").exists()


def test_plot_imports_neither_numpy_nor_onnx(residual):
    code = ("import sys; from cnnc.cli import main; "
            f"assert main(['plot', {str(residual)!r}, '-o', {str(residual.with_suffix('.dot'))!r}]) == 0; "
            "heavy = [m for m in ('numpy', 'onnx', 'onnxruntime') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr


def test_custom_layers_and_nested_models_are_one_box_as_keras_draws_them():
    """plot_model(expand_nested=False), Keras's default: a nested model or a custom layer
    is one box; its edges come from and go to the boxes around it."""
    from cnnc.frontends.python import check_script
    text = ("import keras\nfrom keras import layers\n"
            "class Block(layers.Layer):\n"
            "    def __init__(self):\n        super().__init__()\n"
            "        self.a = layers.Dense(4)\n        self.b = layers.Dense(4)\n"
            "    def call(self, x):\n        return self.a(x) + self.b(x)\n"
            "inner = keras.Sequential([keras.Input((8,)), layers.Dense(8), layers.Dense(8)])\n"
            "inp = keras.Input((8,))\nx = Block()(inner(inp))\n"
            "model = keras.Model(inp, layers.Dense(2)(x))\n")
    sc = check_script("p.py", text)
    analysis = sc.select("model").checked.analysis
    boxes, edges = plot.nodes_and_edges(analysis)
    assert [(b["name"], b["type"], b["params"]) for b in boxes] == [
        ("input_layer_1", "InputLayer", None), ("sequential", "Sequential", 144),
        ("block", "Block", 72), ("dense_4", "Dense", 10)]
    assert edges == [(0, 1), (1, 2), (2, 3)]
    assert boxes[2]["input_shape"] == "(None, 8)" and boxes[2]["output_shape"] == "(None, 4)"
