"""cnnc against Keras itself: same shapes, same parameter counts, same refusals.

Runs only where Keras is installed (never a cnnc dependency); CI skips it.
The random stacks cover every layer kind with random arguments, including
stacks that do not fit, which both must refuse.
"""

from __future__ import annotations

import os

import pytest

from cnnc.frontends.cnn import check_text

from .keras_stacks import keras_model, random_stack

keras = pytest.importorskip("keras", reason="Keras is not installed (a dev-only oracle)")
pytestmark = pytest.mark.keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N_STACKS = int(os.environ.get("CNNC_KERAS_STACKS", "200"))


def _keras_outcome(ir):
    """(per-layer output shapes, per-layer params, trainable count) or the exception."""
    import numpy as np
    try:
        model = keras_model(ir)
        # Some refusals only show when the backend runs the ops.
        model.predict(np.zeros((2, *ir.input_shape), "float32"), verbose=0)
    except Exception as e:  # noqa: BLE001 - any refusal counts
        return e
    shapes = [tuple(l.output.shape[1:]) for l in model.layers]
    params = [l.count_params() for l in model.layers]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return shapes, params, trainable


@pytest.mark.parametrize("seed", range(N_STACKS))
def test_random_stack_matches_keras(seed):
    text = random_stack(seed)
    checked = check_text(text, f"stack{seed}.cnn")
    outcome = _keras_outcome(checked.ir)
    if isinstance(outcome, Exception):
        msg = str(outcome).strip().splitlines()[0][:300]
        if any("TensorFlow backend" in d.message for d in checked.diagnostics):
            return  # a TensorFlow-only limit that cnnc warns about (see cnnc/lint.py)
        assert not checked.ok, f"Keras refuses but cnnc accepts:\n{text}\nKeras: {msg}"
        return
    assert checked.ok, (f"cnnc refuses but Keras accepts:\n{text}\n" +
                        "\n".join(d.message for d in checked.diagnostics))
    shapes, params, trainable = outcome
    infos = checked.analysis.infos
    assert [i.output_shape for i in infos] == shapes, text
    assert [i.params for i in infos] == params, text
    assert checked.analysis.trainable_params == trainable, text


@pytest.mark.parametrize("path", sorted(p for p in os.listdir("examples") if p.endswith(".cnn")))
def test_examples_match_keras(path):
    checked = check_text(open(os.path.join("examples", path)).read(), path)
    assert checked.ok
    model = keras_model(checked.ir)
    layers = [l for l in model.layers if type(l).__name__ != "InputLayer"]   # functional models list it
    assert [l.name for l in layers] == [i.name for i in checked.analysis.infos]
    assert [tuple(l.output.shape[1:]) for l in layers] == \
        [i.output_shape for i in checked.analysis.infos]
    assert model.count_params() == checked.analysis.total_params


def test_hand_computed_cases_agree_with_keras():
    """The table in test_shapes.py, rebuilt in Keras: the hand arithmetic is Keras's."""
    from .test_shapes import CASES
    for input_shape, line, output, params in CASES:
        checked = check_text(f"input {input_shape}\n{line}\n")
        model = keras_model(checked.ir)
        layer = model.layers[0]
        assert tuple(layer.output.shape[1:]) == output, line
        assert layer.count_params() == params, line
