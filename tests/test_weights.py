"""Weight files and weight dicts: copies, strict loading, Keras's naming."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc


def test_set_weights_copies():
    """Training updates weights in place; the caller's arrays must not change (as in Keras)."""
    m = cnnc.loads("input (2,)\nDense(1)\ncompile(optimizer='sgd', loss='mse')\n")
    mine = {"dense/kernel": np.ones((2, 1), np.float32), "dense/bias": np.zeros(1, np.float32)}
    m.set_weights(mine)
    m.fit(np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32), epochs=1, verbose=0)
    assert (mine["dense/kernel"] == 1).all() and (mine["dense/bias"] == 0).all()
    assert not np.allclose(m.weights["dense/kernel"], 1)


def test_renumbered_keras_names_get_a_precise_hint(tmp_path):
    """A Keras session that built other models first names this model's layers conv2d_3, ...:
    loading stays strict, and the message says exactly that."""
    from cnnc.support.weights import WeightsError, check
    m = cnnc.loads("input (6, 6, 1)\nConv2D(2, 3)\nFlatten()\nDense(3)\n")
    good = {k: np.zeros(v.shape, np.float32) for k, v in m.weights.items()}
    renamed = {k.replace("conv2d/", "conv2d_3/").replace("dense/", "dense_7/"): v for k, v in good.items()}
    with pytest.raises(WeightsError) as e:
        check(renamed, m.analysis.weight_shapes(), m.name)
    assert any("conv2d_3 -> conv2d" in n and "clear_session" in n for n in e.value.notes)
    wrong_shape = dict(renamed, **{"dense_7/bias": np.zeros(4, np.float32)})
    with pytest.raises(WeightsError) as e:
        check(wrong_shape, m.analysis.weight_shapes(), m.name)
    assert not any("clear_session" in n for n in e.value.notes)
