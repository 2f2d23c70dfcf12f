"""Weight regularizers: what the language accepts, the penalty, its gradient, and
how training and evaluation report it (Keras 3: l1*sum|w| + l2*sum w^2, trainable
weights only, part of the reported loss)."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.analysis.arguments import Regularizer
from cnnc.backends.numpy import regularizers as R
from cnnc.frontends.cnn import check_text


def weights_of(line: str, input_shape=(6,)) -> dict:
    checked = check_text(f"input {input_shape}\n{line}\n")
    assert checked.ok, [d.message for d in checked.diagnostics]
    return {w.name: w.regularizer for w in checked.analysis.infos[0].weights}


@pytest.mark.parametrize("text,expected", [
    ("'l2'", Regularizer(0.0, 0.01)), ("'l1'", Regularizer(0.01, 0.0)), ("'L1L2'", Regularizer(0.0, 0.0)),
    ("l2(0.001)", Regularizer(0.0, 0.001)), ("L2(l2=3e-4)", Regularizer(0.0, 3e-4)),
    ("l1_l2(l1=0.01, l2=0.02)", Regularizer(0.01, 0.02)), ("L1L2(0.1)", Regularizer(0.1, 0.0)),
    ("keras.regularizers.l1(0.5)", Regularizer(0.5, 0.0)), ("None", None),
])
def test_spellings(text, expected):
    assert weights_of(f"Dense(3, kernel_regularizer={text})")["kernel"] == expected


def test_each_weight_gets_its_own_regularizer():
    regs = weights_of("SeparableConv2D(4, 3, depthwise_regularizer=l2(0.1), pointwise_regularizer=l1(0.2), "
                      "bias_regularizer=l2(0.3))", (5, 5, 2))
    assert regs == {"depthwise_kernel": Regularizer(0, 0.1), "pointwise_kernel": Regularizer(0.2, 0),
                    "bias": Regularizer(0, 0.3)}
    regs = weights_of("BatchNormalization(gamma_regularizer=l2(0.1), beta_regularizer=l1(0.2))")
    assert regs == {"gamma": Regularizer(0, 0.1), "beta": Regularizer(0.2, 0),
                    "moving_mean": None, "moving_variance": None}
    assert weights_of("DepthwiseConv2D(3, depthwise_regularizer=l2(0.1))", (5, 5, 2))["kernel"] == Regularizer(0, 0.1)


@pytest.mark.parametrize("text,fragment", [
    ("Dense(3, kernel_regularizer='l1_l2')", "unknown or unsupported regularizer"),   # Keras refuses it too
    ("Dense(3, kernel_regularizer=l2(-1))", "l2 >= 0"),
    ("Dense(3, kernel_regularizer=OrthogonalRegularizer())", "unsupported regularizer"),
    ("Dense(3, activity_regularizer=l2(0.1))", "does not support activity_regularizer"),
    ("Dense(3, kernel_constraint=MaxNorm(2))", "does not support kernel_constraint"),
])
def test_refused(text, fragment):
    msgs = [d.message for d in check_text(f"input (6,)\n{text}\n").diagnostics if d.is_error]
    assert any(fragment in m for m in msgs), msgs


def test_penalty_and_gradient():
    m = cnnc.loads("input (3,)\nDense(2, kernel_regularizer=L1L2(l1=0.1, l2=0.2), bias_regularizer=l2(0.5))\n"
                   "Dense(1, kernel_regularizer=l2(9.0), trainable=False)\n")
    w = {"dense/kernel": np.array([[1.0, -2.0], [0.0, 3.0], [-1.0, 0.5]]), "dense/bias": np.array([1.0, -1.0]),
         "dense_1/kernel": np.ones((2, 1)), "dense_1/bias": np.zeros(1)}
    terms = R.terms(m.analysis)
    assert [t.key for t in terms] == ["dense/kernel", "dense/bias"]   # the frozen layer has none
    # 0.1 * (1+2+0+3+1+0.5) + 0.2 * (1+4+0+9+1+0.25) + 0.5 * (1+1)
    assert R.penalty(w, terms) == pytest.approx(0.1 * 7.5 + 0.2 * 15.25 + 0.5 * 2)
    grads = {k: np.zeros_like(v) for k, v in w.items()}
    R.add_gradients(grads, w, terms)
    assert np.allclose(grads["dense/kernel"], 0.1 * np.sign(w["dense/kernel"]) + 0.4 * w["dense/kernel"])
    assert np.allclose(grads["dense/bias"], 1.0 * w["dense/bias"])
    assert not grads["dense_1/kernel"].any()
    # finite differences away from the kinks of |w|
    key, eps = "dense/kernel", 1e-6
    for idx in [(0, 0), (1, 1), (2, 1)]:
        plus, minus = {k: v.copy() for k, v in w.items()}, {k: v.copy() for k, v in w.items()}
        plus[key][idx] += eps
        minus[key][idx] -= eps
        numeric = (R.penalty(plus, terms) - R.penalty(minus, terms)) / (2 * eps)
        assert grads[key][idx] == pytest.approx(numeric, rel=1e-6)


def test_one_sgd_step_includes_the_penalty_gradient():
    """w1 = w0 - lr * (dL/dw + 2*l2*w0), and the reported loss includes l2*sum(w0^2)."""
    src = ("input (2,)\nDense(1, use_bias=False, kernel_regularizer=l2(0.25))\n"
           "compile(optimizer=SGD(learning_rate=0.1), loss='mse')\n")
    m = cnnc.loads(src)
    w0 = np.array([[0.5], [-1.0]], np.float32)
    m.set_weights({"dense/kernel": w0})
    x = np.array([[1.0, 2.0]], np.float32)
    y = np.array([[0.0]], np.float32)
    h = m.fit(x, y, epochs=1, batch_size=1, verbose=0, shuffle=False)
    pred = float((x @ w0)[0, 0])                  # -1.5
    data_grad = 2 * pred * x.T                    # d/dw (pred - 0)^2
    expected = w0 - 0.1 * (data_grad + 2 * 0.25 * w0)
    assert np.allclose(m.weights["dense/kernel"], expected, atol=1e-6)
    assert h.history["loss"][0] == pytest.approx(pred ** 2 + 0.25 * float((w0 ** 2).sum()), rel=1e-6)
    # evaluate reports the penalty of the current weights too
    w1 = m.weights["dense/kernel"]
    pred1 = float((x @ w1)[0, 0])
    assert m.evaluate(x, y, verbose=0) == pytest.approx(pred1 ** 2 + 0.25 * float((w1 ** 2).sum()), rel=1e-5)

