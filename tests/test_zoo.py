"""The Keras Applications, written in .cnn, against Keras's own numbers, layer by layer.

examples/zoo/<name>.cnn is written by tools/keras_to_cnn.py and tests/data/zoo/<name>.json by
tools/keras_truth.py (both run with Keras; this test does not need it). For every layer the
JSON records Keras's output shape, parameter counts and "Connected to"; cnnc must agree on
all of them, and on the model's totals.

Keras 3 records arithmetic on tensors (MobileNetV3's `x + 3.0`, `x * (1 / 6)`) as raw
operations (Add, Multiply), not layers; the .cnn files write the same arithmetic, and cnnc
gives those operations Keras's classes and names, so they are compared like layers.

A file is skipped, naming what is missing, only while cnnc reports that it does not support
one of its layer kinds; any other error fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import cnnc

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "examples" / "zoo"
TRUTH = ROOT / "tests" / "data" / "zoo"
NAMES = sorted(p.stem for p in TRUTH.glob("*.json") if (ZOO / f"{p.stem}.cnn").exists())
# what cnnc says while a layer kind or an argument is not implemented yet
UNSUPPORTED = re.compile(r"cnnc does not support (?:the Keras layer '(\w+)'|(\w+)=)")


def test_every_application_has_both_files():
    cnn = {p.stem for p in ZOO.glob("*.cnn")}
    truth = {p.stem for p in TRUTH.glob("*.json")}
    assert cnn == truth, "regenerate with tools/keras_truth.py and tools/keras_to_cnn.py"
    assert len(NAMES) >= 11


def _load(name: str) -> cnnc.Model:
    try:
        return cnnc.load(ZOO / f"{name}.cnn")
    except cnnc.CnncError as e:
        errors = [d for d in e.diagnostics if d.is_error]
        found = [UNSUPPORTED.search(d.message) for d in errors]
        if errors and all(found):
            missing = sorted({m.group(1) or f"{m.group(2)}=" for m in found})
            pytest.skip(f"cnnc does not support {', '.join(missing)} yet")
        raise


def _shape(actual, expected) -> list:
    actual = list(actual)
    if len(actual) == len(expected) - 1:   # cnnc may leave the batch dimension out
        actual = [None] + actual
    return actual


@pytest.mark.parametrize("name", NAMES)
def test_application_matches_keras(name):
    truth = json.loads((TRUTH / f"{name}.json").read_text())
    model = _load(name)

    assert model.name == truth["model"]
    assert [list(model.input_shape)] == truth["inputs"]
    assert [list(model.output_shape)] == truth["outputs"]

    inputs = {r["name"] for r in truth["layers"] if r["class"] == "InputLayer"}
    expected = {r["name"]: r for r in truth["layers"] if r["class"] != "InputLayer"}
    actual = {info.name: info for info in model.layers if info.name not in inputs}
    assert sorted(actual) == sorted(expected), "layer names differ from Keras's"

    problems = []
    for layer_name, row in expected.items():
        info = actual[layer_name]
        got = {
            "class": info.layer.kind,
            "output_shape": _shape(info.output_shape, row["output_shape"]),
            "params": info.params,
            "trainable_params": info.trainable_params,
            "inbound": [list(info.layer.inputs)],
        }
        want = {k: row[k] for k in got}
        if got != want:
            diff = {k: (got[k], want[k]) for k in got if got[k] != want[k]}
            problems.append(f"{layer_name} ({row['class']}): cnnc, keras = {diff}")
    assert not problems, f"{len(problems)} layer(s) differ:\n" + "\n".join(problems[:20])

    assert sum(r["params"] for r in truth["layers"]) == truth["total_params"]
    assert model.total_params == truth["total_params"]
    assert model.trainable_params == truth["trainable_params"]
    assert model.non_trainable_params == truth["non_trainable_params"]
