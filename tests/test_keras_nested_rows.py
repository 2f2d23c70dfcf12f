"""A Keras file's nested models are one summary row each, as Keras shows them (no Keras
needed). tests/data/nested_grouped.json is Keras 3.15.1's `model.to_json()` of

    stem = Sequential([Conv2D(8, 3, groups=2, name='stem_conv'), ReLU(name='stem_relu')],
                      name='stem')
    image -> stem -> Conv2D(8, 3, groups=8, padding='same', name='dw') -> gap -> head

and tests/data/nested_grouped.txt what its `model.summary()` printed (a wide terminal).
tests/test_keras_apps_keras.py compares ConvNeXtTiny and small nested models with Keras live.
"""

from __future__ import annotations

import cnnc
from cnnc.analysis.groups import summary_rows
from cnnc.cli import main

from .conftest import ROOT

DATA = ROOT / "tests" / "data"


def test_summary_is_what_keras_prints(capsys):
    assert main(["summary", "--keras", str(DATA / "nested_grouped.json")]) == 0
    ours = capsys.readouterr().out.splitlines()
    assert ours == (DATA / "nested_grouped.txt").read_text(encoding="utf-8").splitlines()


def test_rows_and_layers():
    m = cnnc.load(DATA / "nested_grouped.json")
    rows = [(r.name, r.layer.kind, r.output_shape, r.params) for r in summary_rows(m.analysis)]
    assert rows == [("stem", "Sequential", (6, 6, 8), 3 * 3 * 2 * 8 + 8),
                    ("dw", "Conv2D", (6, 6, 8), 3 * 3 * 1 * 8 + 8),
                    ("gap", "GlobalAveragePooling2D", (8,), 0),
                    ("head", "Dense", (3,), 8 * 3 + 3)]
    # every phase still runs the nested model's layers, each with its own weights
    assert [i.name for i in m.analysis.infos] == ["stem_conv", "stem_relu", "dw", "gap", "head"]
    assert m.weights["stem_conv/kernel"].shape == (3, 3, 2, 8)
    assert m.analysis.info("stem_conv").layer.group == "stem"


def test_summary_json_lists_the_rows(capsys):
    assert main(["summary", "--format", "json", str(DATA / "nested_grouped.json")]) == 0
    out = capsys.readouterr().out
    assert '"stem"' in out and '"Sequential"' in out
