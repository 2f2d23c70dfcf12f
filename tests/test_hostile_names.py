"""Hostile inputs, round 3 (issue 17): names and paths are data with several sinks.

A user string goes to protobuf (ONNX), HDF5 and zip (Keras files, .npz), JSON, Graphviz
DOT and Mermaid, and the terminal; support/names.py has one rule per sink. Names are
checked where the IR is built (an error of `cnnc check`, before any long work); paths are
made text for each sink. Every case asserts the exit status, the message and what was (or
was not) written; command-line cases run in a subprocess under a memory limit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.support import names
from cnnc.support.diagnostics import CnncError, UsageError

from .test_hostile_outputs import _limits, cnnc_run, snapshot
from .test_train import TINY, tiny_data

ESC = "\x1b[31m"
FF = os.fsdecode(b"n\xff")          # a file name with the byte 0xff (not UTF-8)


@pytest.fixture
def work(tmp_path):
    (tmp_path / "tiny.cnn").write_text(TINY)
    x, y = tiny_data(24)
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y, x_test=x[:6], y_test=y[:6])
    return tmp_path


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity (as every JSON parser but Python's does)
    and lone surrogates (what UTF-8 cannot hold)."""
    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    value = json.loads(text, parse_constant=refuse)
    json.dumps(value, ensure_ascii=False).encode("utf-8")      # raises on a lone surrogate
    return value


# --- names that no sink can hold: refused by check, before any work ------------------------

BAD_NAMES = [
    ('"\\udcff"', "lone surrogate U+DCFF"),
    ('"a\\x00b"', "NUL"),
    ('"' + "a" * 70_000 + '"', "70,000 bytes"),
    ('"' + "日" * 22_000 + '"', "66,000 bytes"),        # 3 bytes each in UTF-8
]


@pytest.mark.parametrize("literal,words", BAD_NAMES, ids=["surrogate", "nul", "long", "long-utf8"])
def test_bad_layer_names_are_errors_of_check(work, literal, words):
    (work / "bad.cnn").write_text(f"model m\ninput (4,)\nDense(3, name={literal})\n")
    rc, out, err = cnnc_run("check", "bad.cnn", cwd=work)
    assert rc == 1
    assert "bad.cnn:3:10: error: the name" in err and words in err and "cannot be used" in err
    assert len(err) < 2_000          # the name is shown cut, not 70,000 characters of it


def test_bad_name_stops_train_before_any_step(work):
    (work / "bad.cnn").write_text(TINY.replace("Dense(3, activation='softmax')",
                                               "Dense(3, activation='softmax', name='" + "x" * 70_000 + "')"))
    before = snapshot(work)
    rc, out, err = cnnc_run("train", "bad.cnn", "--data", "data.npz", "-o", "w.npz", "-v", "2", cwd=work)
    assert rc == 1 and "cannot be used" in err and "Epoch" not in out
    assert snapshot(work) == before


def test_bad_names_from_every_front_end():
    with pytest.raises(CnncError, match="lone surrogate"):
        cnnc.loads('model m\ninput (4,)\nDense(3, name="ok")\nDense(2, name="\\ud800x")\n')
    with pytest.raises(CnncError, match="model name"):
        cnnc.loads('input (4,)\nSequential([Dense(3)], name="m\\udcff")\n')


def test_bad_name_in_a_keras_config(tmp_path):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "i"}},
        {"class_name": "Dense", "config": {"name": "\udcff", "units": 2}}]}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(config))          # JSON's "\udcff" escape
    rc, out, err = cnnc_run("check", str(path), cwd=tmp_path)
    assert rc == 1 and "lone surrogate" in err


def test_bad_name_in_a_keras_script(tmp_path):
    (tmp_path / "s.py").write_text("import keras\nm = keras.Sequential([keras.Input((4,)), "
                                   "keras.layers.Dense(2, name='a\\x00b')])\n")
    rc, out, err = cnnc_run("check", "s.py", cwd=tmp_path)
    assert rc == 1 and "NUL" in err


def test_names_up_to_the_limit_are_written(work):
    name = "é" * (names.MAX_NAME_BYTES // 2)       # 2 bytes each: at the limit (one byte under)
    m = cnnc.loads(f"model m\ninput (4,)\nDense(3, name='{name}')\n")
    m.save_weights(work / "w.npz")
    assert list(np.load(work / "w.npz")) == [f"{name}/kernel", f"{name}/bias"]
    with pytest.raises(CnncError, match="over cnnc's limit"):
        cnnc.loads(f"model m\ninput (4,)\nDense(3, name='{name}éx')\n")


def test_npz_keys_beyond_zip_limit_are_refused_before_writing(tmp_path):
    from cnnc.support.weights import npz_bytes
    with pytest.raises(UsageError, match="zip's limit"):
        npz_bytes({"a" * 70_000 + "/kernel": np.zeros(2)})
    with pytest.raises(UsageError, match="surrogate"):
        npz_bytes({"\udcff/kernel": np.zeros(2)})


def test_name_problem_rules():
    assert names.name_problem("conv2d") is None and names.name_problem("日本 é\u202e") is None
    assert "surrogate" in names.name_problem("a\udfff")
    assert "NUL" in names.name_problem("\x00")
    assert "over cnnc's limit" in names.name_problem("a" * (names.MAX_NAME_BYTES + 1))


# --- paths: bytes that are not UTF-8 -------------------------------------------------------

def test_path_text():
    assert names.path_text(FF + ".cnn") == "n\\xff.cnn"
    assert names.path_text(b"a\xffb") == "a\\xffb"
    assert names.path_text(Path("日本.cnn")) == "日本.cnn"
    assert names.shown_path(f"{ESC}.cnn") == "\\x1b[31m.cnn"


def test_a_file_named_with_byte_0xff_through_every_command(work):
    pytest.importorskip("onnxruntime")
    import onnx
    src = work / (FF + ".cnn")
    src.write_text(TINY)
    np.save(work / "x.npy", tiny_data(4)[0][..., None])
    m = cnnc.load(src)
    m.init_weights(1)
    m.save_weights(work / (FF + ".npz"))
    runs = [
        ("check", FF + ".cnn", "--format", "json"),
        ("summary", FF + ".cnn", "--format", "json"),
        ("compile", FF + ".cnn", "-q"),
        ("export", FF + ".cnn", "-q"),
        ("plot", FF + ".cnn", "-o", FF + ".dot"),
        ("plot", FF + ".cnn", "-o", FF + ".mmd"),
        ("train", FF + ".cnn", "--data", "data.npz", "-o", FF + "t.npz", "-v", "0", "--no-checkpoint"),
        ("evaluate", FF + ".cnn", "--weights", FF + ".npz", "--data", "data.npz", "--format", "json"),
        ("predict", FF + ".cnn", "--weights", FF + ".npz", "--data", "x.npy", "-o", FF + ".csv"),
        ("run", FF + ".onnx", "-i", "x.npy", "-o", FF + "y.npy"),
        ("import", FF + ".keras", "-o", FF + "i.cnn"),
    ]
    for argv in runs:
        p = subprocess.run([sys.executable, "-m", "cnnc", *argv], cwd=work, capture_output=True,
                           timeout=300, preexec_fn=_limits,
                           env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        err = p.stderr.decode("utf-8")           # what reaches the terminal is UTF-8 text
        assert p.returncode == 0, (argv, err)
        assert "Traceback" not in err and "internal error" not in err
        out = p.stdout.decode("utf-8")
        if "json" in argv:
            strict_json(out)
        assert "\\xff" in out + err or argv[0] in ("plot", "check", "summary", "evaluate", "run"), argv
    onnx_model = onnx.load(str(work / (FF + ".onnx")))
    onnx.checker.check_model(onnx_model)
    props = {p.key: p.value for p in onnx_model.metadata_props}
    assert props["source"].endswith("n\\xff.cnn")
    meta = json.loads(zipfile.ZipFile(work / (FF + ".keras")).read("metadata.json"))
    assert meta["cnnc"]["source"] == "n\\xff.cnn"
    strict_json((work / (FF + "t.history.json")).read_text())
    for name in (FF + ".dot", FF + ".mmd", FF + "i.cnn"):
        (work / name).read_bytes().decode("utf-8")


def test_a_latin1_terminal_never_breaks_output(work):
    (work / "j.cnn").write_text("input (4,)\nSequential([Dense(3, name='日本é')], name='模型')\n")
    env = {**os.environ, "PYTHONIOENCODING": "latin-1", "LANG": "C", "LC_ALL": "C"}
    for argv in (["summary", "j.cnn"], ["summary", "j.cnn", "--format", "markdown"],
                 ["check", "j.cnn", "--format", "json"], ["compile", "j.cnn", "-q"]):
        p = subprocess.run([sys.executable, "-m", "cnnc", *argv], cwd=work, capture_output=True,
                           timeout=300, env=env, preexec_fn=_limits)
        assert p.returncode == 0, (argv, p.stderr)
        text = p.stdout.decode("latin-1")
        assert "Traceback" not in text and b"Traceback" not in p.stderr
        if argv[0] == "summary":
            assert "\\u65e5\\u672c" in text and "é" in text     # escaped, or as is where latin-1 has it


def test_escape_sequences_in_paths_never_reach_the_terminal(work):
    out_name = f"{ESC}x\r.keras"
    rc, out, err = cnnc_run("export", "tiny.cnn", "-o", out_name, cwd=work)
    assert rc == 0 and "\x1b" not in out + err and "\r" not in out + err
    assert "\\x1b[31mx\\r.keras" in out
    assert (work / out_name).exists()
    rc, out, err = cnnc_run("compile", "tiny.cnn", "-o", f"{ESC}.onnx", cwd=work)
    assert rc == 0 and "\x1b" not in out + err
    rc, out, err = cnnc_run("import", f"{ESC}x\r.keras", "-o", f"{ESC}i.cnn", cwd=work)
    assert rc == 0 and "\x1b" not in out + err and "\r" not in out + err


# --- Graphviz, Mermaid, JSON ---------------------------------------------------------------

GRAPHVIZ_ESCAPES = "a\\N\\G\\L\\E\\T\\H\\n\\l\\r\\\\z\\"


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_graphviz_escapes_in_names_are_shown_as_written(work):
    import html
    name = GRAPHVIZ_ESCAPES
    (work / "g.cnn").write_text(f"input (4,)\nDense(3, name={name!r})\nDense(2, name='q\"r\\\\')\n")
    rc, out, err = cnnc_run("plot", "g.cnn", "-o", "g.svg", cwd=work)
    assert rc == 0, err
    svg = (work / "g.svg").read_text()
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    tips = [html.unescape(t) for t in re.findall(r'xlink:title="([^"]*)"', svg)]
    assert name in texts and name in tips          # exactly: nothing expanded, nothing lost
    assert 'q"r\\' in texts and 'q"r\\' in tips
    assert "n1" not in "".join(texts) and "model" not in "".join(tips)
    rc, out, err = cnnc_run("plot", "g.cnn", "-o", "g.png", cwd=work)
    assert rc == 0 and (work / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_mermaid_and_dot_text_hold_no_markup_from_names():
    from cnnc.backends.report.plot import to_dot, to_mermaid
    m = cnnc.loads(f"model m\ninput (4,)\nDense(3, name={GRAPHVIZ_ESCAPES + '<b>&quot;]' + chr(34)!r})\n")
    mmd = to_mermaid(m.analysis)
    body = [l for l in mmd.splitlines() if l.startswith("    n1[")][0]
    assert "\\" not in body and "<b>&" not in body and "#92;N" in body
    dot = to_dot(m.analysis)
    label = [l for l in dot.splitlines() if l.startswith("  n1 ")][0]
    assert "\\\\N" in label and "&lt;b&gt;&amp;quot;]&quot;" in label


def test_json_outputs_never_hold_nan(work):
    """A loss that overflows is null in --format json, never NaN (not JSON)."""
    m = cnnc.loads(TINY)
    w = m.get_weights()
    w = {k: np.full_like(v, 3e37) for k, v in w.items()}
    m.set_weights(w)
    m.save_weights(work / "huge.npz")
    rc, out, err = cnnc_run("evaluate", "tiny.cnn", "--weights", "huge.npz", "--data", "data.npz",
                            "--format", "json", cwd=work)
    assert rc == 0, err
    record = strict_json(out)
    assert record["loss"] is None


def test_json_value_rules():
    assert names.json_dumps({"a": float("nan"), "b": [float("inf"), 1.5], "c": "\udcff",
                             "d": np.float32(2.5), "e": (1, 2)}, indent=None) == \
        '{"a": null, "b": [null, 1.5], "c": "\\\\udcff", "d": 2.5, "e": [1, 2]}'


@pytest.mark.parametrize("name", ["m\nDense(7)", "my model", "m-1", "m\r\n# x", "import os"])
def test_a_keras_model_name_never_becomes_code_of_the_imported_cnn(tmp_path, name):
    """The model's name goes into the .cnn that import writes: as a quoted string (or an
    identifier), never as a line of its own (a name "m\\nDense(7)" added a layer)."""
    config = {"class_name": "Sequential", "config": {"name": name, "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "i"}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2}}]}}
    (tmp_path / "m.json").write_text(json.dumps(config))
    rc, out, err = cnnc_run("import", "m.json", "--no-weights", "-o", "m.cnn", cwd=tmp_path)
    assert rc == 0, err
    m = cnnc.load(tmp_path / "m.cnn")
    assert m.name == name and [l.name for l in m.layers] == ["d"] and m.total_params == 10


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
@pytest.mark.parametrize("name,shown", [
    ("a\uffffb\ufffe", "a\\uffffb\\ufffe"),             # not XML characters: escaped
    ("日" * 21_000, "日" * 200 + "\u2026 (21,000 characters)"),   # over Graphviz's 16 KB label
])
def test_names_graphviz_would_refuse_are_drawn(work, name, shown):
    from xml.etree import ElementTree
    (work / "g.cnn").write_text(f"input (4,)\nDense(3, name={name!r})\n", encoding="utf-8")
    for out in ("g.svg", "g.dot", "g.mmd"):
        rc, _, err = cnnc_run("plot", "g.cnn", "-o", out, cwd=work)
        assert rc == 0, err
    svg = (work / "g.svg").read_bytes()
    texts = ["".join(t.itertext()) for t in ElementTree.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert shown in texts
