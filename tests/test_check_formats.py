"""`cnnc check --format sarif` and `--format github`: SARIF 2.1.0 valid against the
official OASIS schema (tests/data/sarif, with URI formats checked), one result per
diagnostic with its rule, region and notes; GitHub workflow annotations escaped as the
runner reads them; a notebook's diagnostics placed on the .ipynb file's own lines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from cnnc.cli import main
from cnnc.commands._formats import annotation, rule_of
from cnnc.commands._notebook import notebook_lines

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text())

BAD_CELL = ["import keras\n", "from keras import layers\n", "\n", "model = keras.Sequential([\n",
            "    keras.Input(shape=(8, 8, 3)),\n", "    layers.Conv2D(4, 9),\n", "])\n"]

# the exact text of examples/errors/kernel_too_big.cnn's diagnostic, as SARIF and GitHub carry it
KERNEL_MESSAGE = (
    "Conv2D kernel_size=7x7 does not fit its input: needs at least 7x7, got 5x5\n"
    "note: with padding='valid' the output height is floor((5 - 7) / 1) + 1 = -1, which must be at least 1\n"
    "help: use padding='same', a smaller kernel_size, or fewer pooling layers before it")
NOTEBOOK_MESSAGE = (
    "cell 3, line 6: Conv2D kernel_size=9x9 does not fit its input: needs at least 9x9, got 8x8\n"
    "note: with padding='valid' the output height is floor((8 - 9) / 1) + 1 = 0, which must be at least 1\n"
    "help: use padding='same', a smaller kernel_size, or fewer pooling layers before it")


def _notebook(cells: list) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}, indent=1)


def _code(source) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": source}


@pytest.fixture
def tree(tmp_path, monkeypatch):
    shutil.copy(ROOT / "examples" / "errors" / "kernel_too_big.cnn", tmp_path / "bad model.cnn")
    shutil.copy(ROOT / "examples" / "errors" / "warnings.cnn", tmp_path / "warnings.cnn")
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "ünïcode.ipynb").write_text(_notebook([
        {"cell_type": "markdown", "metadata": {}, "source": ["# A title\n"]},
        _code(["%matplotlib inline\n", "print(1)\n"]),
        _code(BAD_CELL)]), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _validate(doc: dict) -> None:
    validator = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_sarif_is_valid_and_has_one_result_per_diagnostic(tree, capsys):
    assert main(["check", ".", "missing.cnn", "--format", "sarif"]) == 2
    out, err = capsys.readouterr()
    # SARIF on stdout; on stderr what could not be checked, and the summary line
    assert err.startswith("cnnc: error: cannot read 'missing.cnn': no such file\nchecked 3 files, ")
    doc = json.loads(out)
    _validate(doc)
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    assert run["tool"]["driver"]["name"] == "cnnc"
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tree.as_uri() + "/"
    results = run["results"]
    # as many results as the JSON format has diagnostics, in the same order
    assert main(["check", ".", "--format", "json"]) == 1
    as_json = json.loads(capsys.readouterr().out)
    diags = [(f["path"], d) for f in as_json["files"] for d in f["diagnostics"]]
    assert len(results) == len(diags) == 1 + 1 + 6
    rules = run["tool"]["driver"]["rules"]
    for result, (path, d) in zip(results, diags):
        assert result["level"] == d["severity"]
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"].split("\n")[0].endswith(d["message"])

    first = results[0]
    assert first["ruleId"] == "shape"
    assert first["message"]["text"] == KERNEL_MESSAGE
    assert first["locations"] == [{"physicalLocation": {
        "artifactLocation": {"uri": "bad%20model.cnn", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 9, "startColumn": 12, "endLine": 9, "endColumn": 18}}}]

    nb = results[1]
    assert nb["message"]["text"] == NOTEBOOK_MESSAGE
    location = nb["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "nb/%C3%BCn%C3%AFcode.ipynb"
    # the line of the .ipynb file that holds the cell's `layers.Conv2D(4, 9),`
    text = (tree / "nb" / "ünïcode.ipynb").read_text(encoding="utf-8").split("\n")
    expected = next(i for i, line in enumerate(text, 1) if "layers.Conv2D(4, 9)" in line)
    assert location["region"] == {"startLine": expected}

    warned = results[2:]
    assert [r["level"] for r in warned] == ["warning"] * 6
    assert [r["ruleId"] for r in warned] == ["training", "shape", "graph", "argument", "argument",
                                             "training"]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False and invocation["exitCode"] == 2
    assert invocation["toolExecutionNotifications"] == [{
        "level": "error", "message": {"text": "cannot read 'missing.cnn': no such file"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": "missing.cnn",
                                                                 "uriBaseId": "%SRCROOT%"}}}],
        "descriptor": {"id": "unreadable"}}]


def test_sarif_of_a_clean_run_and_into_a_file(tree, capsys):
    assert main(["check", "warnings.cnn", "--format", "sarif", "-W", "-o", "out/cnnc.sarif"]) == 1
    assert capsys.readouterr().out == ""
    doc = json.loads((tree / "out" / "cnnc.sarif").read_text())
    _validate(doc)
    assert len(doc["runs"][0]["results"]) == 6
    (tree / "clean").mkdir()
    shutil.copy(ROOT / "examples" / "mnist.cnn", tree / "clean" / "mnist.cnn")
    assert main(["check", "clean", "--format", "sarif"]) == 0
    doc = json.loads(capsys.readouterr().out)
    _validate(doc)
    assert doc["runs"][0]["results"] == []
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is True


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_a_failing_check_in_a_machine_format_says_where_on_stderr(tree, capsys, fmt):
    """Exit 1 never comes without a word on stderr (a CI log shows only stderr): the
    count, and where the diagnostics went; a clean run says nothing there."""
    assert main(["check", "warnings.cnn", "--format", fmt, "-W", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("checked 1 file, 1 model: 0 errors, 6 warnings (")
    assert err.rstrip().endswith(f"; the diagnostics are in the {fmt} output")
    assert main(["check", "warnings.cnn", "--format", fmt, "-W", "-o", "out/r.txt"]) == 1
    assert capsys.readouterr().err.rstrip().endswith(f"the {fmt} output (out/r.txt)")
    shutil.copy(ROOT / "examples" / "mnist.cnn", tree / "mnist.cnn")
    assert main(["check", "mnist.cnn", "--format", fmt]) == 0
    assert capsys.readouterr().err == ""


def test_github_annotations(tree, capsys):
    assert main(["check", ".", "--format", "github"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == ("::error file=bad model.cnn,line=9,col=12,endColumn=18,title=cnnc (shape)::"
                        + KERNEL_MESSAGE.replace("\n", "%0A"))
    text = (tree / "nb" / "ünïcode.ipynb").read_text(encoding="utf-8").split("\n")
    nb_line = next(i for i, line in enumerate(text, 1) if "layers.Conv2D(4, 9)" in line)
    assert lines[1] == (f"::error file=nb/ünïcode.ipynb,line={nb_line},title=cnnc (shape)::"
                        + NOTEBOOK_MESSAGE.replace("\n", "%0A"))
    assert lines[2] == ("::warning file=warnings.cnn,line=5,col=1,endColumn=41,title=cnnc (training)::"
                        "softmax on 'conv2d', which is not the output layer%0Anote: softmax belongs on "
                        "the last layer of a classifier; use 'relu' here")
    assert len(lines) == 8 and all(line.startswith("::warning ") for line in lines[2:])
    assert captured.err.startswith("checked 3 files, 3 models: 2 errors, 6 warnings (")


def test_github_escaping():
    """%, CR and LF in a message; also ':' and ',' in a property (the file, the title)."""
    assert annotation("error", "we,ird:na%me.cnn", "50% of\r\nthe axis", (3, 4, 3, 9), "t: a,b") == (
        "::error file=we%2Cird%3Ana%25me.cnn,line=3,col=4,endColumn=9,title=t%3A a%2Cb::"
        "50%25 of%0D%0Athe axis")
    assert annotation("warning", "a.ipynb", "m", (7, None, 7, None)) == "::warning file=a.ipynb,line=7::m"
    assert annotation("error", "x.keras", "m") == "::error file=x.keras::m"
    assert annotation("error", "x.py", "m", (2, 5, 4, 1)) == "::error file=x.py,line=2,endLine=4,col=5::m"


def test_github_annotation_of_a_name_with_escapes(tmp_path, monkeypatch, capsys):
    """A layer name with '%' and a file name with ',' and ':' reach the runner escaped."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a,b:c.cnn").write_text("input (4,)\nDense(3, name='x%y')\nDense(3, name='x%y')\n")
    assert main(["check", "a,b:c.cnn", "--format", "github"]) == 1
    assert capsys.readouterr().out == (
        "::error file=a%2Cb%3Ac.cnn,line=3,col=10,endColumn=20,title=cnnc (graph)::"
        "duplicate layer name 'x%25y'%0Anote: 'x%25y' is already the name of the layer at line 2\n")


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_a_file_name_that_is_not_utf8_in_every_format(tmp_path, monkeypatch, capsys, fmt):
    """The byte 0xff in a file name (a latin-1 name) is shown as \\xff in text, JSON and
    annotations, and percent-encoded from its bytes in SARIF's URI: never a lone
    surrogate, which UTF-8 output cannot hold (SARIF was an internal error)."""
    import os
    monkeypatch.chdir(tmp_path)
    name = os.fsdecode(b"\xffnet.cnn")
    Path(name).write_text("model m\ninput (8, 8, 1)\nConv2D(4, 9)\n")
    assert main(["check", ".", "--format", fmt]) == 1
    captured = capsys.readouterr()
    out = captured.out if fmt != "text" else captured.err + captured.out
    out.encode("utf-8")             # no lone surrogate anywhere
    if fmt == "sarif":
        doc = json.loads(out)
        _validate(doc)
        uri = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri == "%FFnet.cnn"
    elif fmt == "json":
        assert {f["path"] for f in json.loads(out)["files"]} == {"\\xffnet.cnn"}
    else:
        assert "\\xffnet.cnn" in out


def test_an_output_onto_an_input_that_is_not_utf8_is_named_with_its_bytes(tmp_path, monkeypatch, capsys):
    """support/atomic's refusals show a file name's undecodable byte as \\xff, as every
    other message does, not as the lone surrogate Python decoded it to."""
    import os
    monkeypatch.chdir(tmp_path)
    name = os.fsdecode(b"\xffnet.cnn")
    Path(name).write_text("model m\ninput (4,)\nDense(2)\n")
    assert main(["check", name, "--format", "json", "-o", name]) == 2
    err = capsys.readouterr().err
    assert "refusing to overwrite the input file '\\xffnet.cnn' with -o '\\xffnet.cnn'" in err
    assert Path(name).read_text().startswith("model m")


@pytest.mark.parametrize("fmt,name", [("json", "w.npz"), ("sarif", "model.keras"), ("github", "net.cnn")])
def test_a_report_is_never_written_over_a_data_or_model_file(tmp_path, monkeypatch, capsys, fmt, name):
    """`-o w.npz` where `-o w.json` was meant: exit 2 before any checking, the file intact;
    a report file of its own (or a new file of any name) is written as asked."""
    monkeypatch.chdir(tmp_path)
    Path("m.cnn").write_text("model m\ninput (4,)\nDense(2)\n")
    Path(name).write_bytes(b"precious")
    assert main(["check", "m.cnn", "--format", fmt, "-o", name]) == 2
    assert Path(name).read_bytes() == b"precious"
    assert "does not write" in capsys.readouterr().err
    Path("old.json").write_text("{}")
    assert main(["check", "m.cnn", "--format", fmt, "-o", "old.json"]) == 0
    assert Path("old.json").read_text() != "{}"


def test_notebook_lines_follow_the_json_text(tmp_path):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# title\nmore"},
             _code(["a = 1\n", "b = 2\n", "c = 3"]),
             _code("x = 1\ny = 2\n"),                              # one string, not a list
             _code(["p = [\n", "  'a\\\\n', ", "'b'\n", "]\n"])]      # a line in two pieces
    path = tmp_path / "n.ipynb"
    text = _notebook(cells)
    path.write_text(text)
    lines = text.split("\n")

    def line_of(fragment: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if fragment in line)
    assert notebook_lines(str(path)) == {
        (2, 1): line_of('"a = 1\\n"'), (2, 2): line_of('"b = 2\\n"'), (2, 3): line_of('"c = 3"'),
        (3, 1): line_of('"x = 1\\ny = 2\\n"'), (3, 2): line_of('"x = 1\\ny = 2\\n"'),
        (4, 1): line_of('"p = [\\n"'), (4, 2): line_of("'a\\\\\\\\n'"), (4, 3): line_of('"]\\n"')}
    path.write_text("{not json")
    assert notebook_lines(str(path)) == {}


@pytest.mark.parametrize("message, severity, rule", [
    ("'(' was never closed", "error", "syntax"),
    ("unexpected '(': missing ',' before it?", "error", "syntax"),
    ("unknown layer 'Flaten'", "error", "unknown-name"),
    ("'shortcutt' is not defined", "error", "unknown-name"),
    ("cnnc does not support the Keras layer 'LSTM' yet", "error", "unsupported"),
    ("`filters` must be a positive integer, got 0", "error", "argument"),
    ("Conv2D() got an unexpected keyword argument 'kernal_size'", "error", "argument"),
    ("Conv2D kernel_size=7x7 does not fit its input: needs at least 7x7, got 5x5", "error", "shape"),
    ("Reshape cannot fit 5408 values (None, 26, 26, 8) into (28, 28, 8) (6272 values)", "error", "shape"),
    ("Add cannot merge (None, 16, 16, 16) (from 'conv2d_1') with (None, 32, 32, 16)", "error", "shape"),
    ("duplicate layer name 'features'", "error", "graph"),
    ("the output of 'conv2d_1' (Conv2D) is never used", "warning", "graph"),
    ("binary_crossentropy on a 10-way softmax", "warning", "training"),
    ("the model has no input shape, so no shape can be checked", "error", "input"),
    ("something new", "error", "error"),
    ("something new", "warning", "warning"),
])
def test_rules_sort_messages_into_kinds(message, severity, rule):
    assert rule_of(message, severity).id == rule
