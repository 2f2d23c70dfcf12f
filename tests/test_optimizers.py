"""Optimizer steps against updates computed by hand (scalar arithmetic written out
from Keras 3's update rules), two steps each, in float64 so they agree to 1e-12."""

from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np
import pytest

from cnnc.analysis.compile_spec import OptimizerSpec, default_optimizer
from cnnc.backends.numpy import optimizers as O

G1, G2 = 0.5, -0.2  # the gradients of step 1 and step 2
W0 = 1.0


def _two_steps(opt, g1=G1, g2=G2, w0=W0):
    w = {"w": np.array([w0], np.float64)}
    seen = []
    for g in (g1, g2):
        opt.apply({"w": np.array([g], np.float64)}, w)
        seen.append(float(w["w"][0]))
    return seen


def test_sgd_plain():
    lr = 0.1
    w1 = W0 - lr * G1
    w2 = w1 - lr * G2
    assert _two_steps(O.SGD(lr)) == pytest.approx([w1, w2], abs=1e-12)


def test_sgd_momentum():
    lr, mu = 0.1, 0.9
    m1 = -lr * G1
    w1 = W0 + m1
    m2 = mu * m1 - lr * G2
    w2 = w1 + m2
    assert _two_steps(O.SGD(lr, momentum=mu)) == pytest.approx([w1, w2], abs=1e-12)


def test_sgd_nesterov():
    lr, mu = 0.1, 0.9
    m1 = -lr * G1
    w1 = W0 + mu * m1 - lr * G1
    m2 = mu * m1 - lr * G2
    w2 = w1 + mu * m2 - lr * G2
    assert _two_steps(O.SGD(lr, momentum=mu, nesterov=True)) == pytest.approx([w1, w2], abs=1e-12)


def test_keras2_decay_divides_the_rate_by_one_plus_decay_times_iterations():
    lr, decay = 0.1, 0.5
    w1 = W0 - lr / (1 + decay * 0) * G1       # the first step uses lr itself
    w2 = w1 - lr / (1 + decay * 1) * G2
    opt = O.SGD(lr, decay=decay)
    assert _two_steps(opt) == pytest.approx([w1, w2], abs=1e-12)
    assert opt.iterations == 2
    assert opt.current_learning_rate() == pytest.approx(lr / (1 + decay * 2))


def test_decay_applies_to_every_optimizer():
    lr, decay, rho, eps = 0.01, 0.25, 0.9, 1e-7
    v1 = (1 - rho) * G1 ** 2
    w1 = W0 - lr * G1 / math.sqrt(v1 + eps)
    v2 = rho * v1 + (1 - rho) * G2 ** 2
    w2 = w1 - lr / (1 + decay) * G2 / math.sqrt(v2 + eps)
    assert _two_steps(O.RMSprop(lr, decay=decay)) == pytest.approx([w1, w2], abs=1e-12)


def test_rmsprop_epsilon_inside_the_root():
    lr, rho, eps = 0.01, 0.9, 1e-7
    v1 = (1 - rho) * G1 ** 2
    w1 = W0 - lr * G1 / math.sqrt(v1 + eps)
    v2 = rho * v1 + (1 - rho) * G2 ** 2
    w2 = w1 - lr * G2 / math.sqrt(v2 + eps)
    assert _two_steps(O.RMSprop(lr)) == pytest.approx([w1, w2], abs=1e-12)


def test_rmsprop_momentum_and_centered():
    lr, rho, eps, mu = 0.01, 0.8, 1e-3, 0.5
    v1 = (1 - rho) * G1 ** 2
    a1 = (1 - rho) * G1
    m1 = lr * G1 / math.sqrt(v1 - a1 ** 2 + eps)
    w1 = W0 - m1
    v2 = rho * v1 + (1 - rho) * G2 ** 2
    a2 = rho * a1 + (1 - rho) * G2
    m2 = mu * m1 + lr * G2 / math.sqrt(v2 - a2 ** 2 + eps)
    w2 = w1 - m2
    opt = O.RMSprop(lr, rho=rho, momentum=mu, epsilon=eps, centered=True)
    assert _two_steps(opt) == pytest.approx([w1, w2], abs=1e-12)


def test_adam_bias_correction_in_the_step_size():
    lr, b1, b2, eps = 0.001, 0.9, 0.999, 1e-7
    m1 = (1 - b1) * G1
    v1 = (1 - b2) * G1 ** 2
    w1 = W0 - m1 * lr * math.sqrt(1 - b2) / (1 - b1) / (math.sqrt(v1) + eps)
    m2 = b1 * m1 + (1 - b1) * G2
    v2 = b2 * v1 + (1 - b2) * G2 ** 2
    w2 = w1 - m2 * lr * math.sqrt(1 - b2 ** 2) / (1 - b1 ** 2) / (math.sqrt(v2) + eps)
    assert _two_steps(O.Adam(lr)) == pytest.approx([w1, w2], abs=1e-12)


def test_adam_amsgrad_keeps_the_largest_velocity():
    lr, b1, b2, eps = 0.01, 0.5, 0.5, 1e-7
    g1, g2 = 2.0, 0.1  # v shrinks on step 2, v_hat does not
    m1, v1 = (1 - b1) * g1, (1 - b2) * g1 ** 2
    w1 = W0 - m1 * lr * math.sqrt(1 - b2) / (1 - b1) / (math.sqrt(v1) + eps)
    m2, v2 = b1 * m1 + (1 - b1) * g2, b2 * v1 + (1 - b2) * g2 ** 2
    vhat = max(v1, v2)
    w2 = w1 - m2 * lr * math.sqrt(1 - b2 ** 2) / (1 - b1 ** 2) / (math.sqrt(vhat) + eps)
    opt = O.Adam(lr, beta_1=b1, beta_2=b2, amsgrad=True)
    assert _two_steps(opt, g1, g2) == pytest.approx([w1, w2], abs=1e-12)
    plain = _two_steps(O.Adam(lr, beta_1=b1, beta_2=b2), g1, g2)
    assert plain[1] != pytest.approx(w2, abs=1e-9)  # amsgrad made a difference here


def test_weight_decay_is_decoupled_and_applied_before_the_update():
    lr, wd = 0.1, 0.2
    w1 = W0 - W0 * wd * lr
    w1 -= lr * G1
    w2 = w1 - w1 * wd * lr
    w2 -= lr * G2
    assert _two_steps(O.SGD(lr, weight_decay=wd)) == pytest.approx([w1, w2], abs=1e-12)


def test_clipnorm_per_variable():
    opt = O.SGD(1.0, clipnorm=1.0)
    w = {"a": np.zeros(2), "b": np.zeros(1)}
    opt.apply({"a": np.array([3.0, 4.0]), "b": np.array([0.5])}, w)
    assert np.allclose(w["a"], [-0.6, -0.8])     # norm 5 -> 1
    assert np.allclose(w["b"], [-0.5])           # below the norm: unchanged


def test_global_clipnorm_scales_all_gradients_together():
    opt = O.SGD(1.0, global_clipnorm=1.0)
    w = {"a": np.zeros(2), "b": np.zeros(1)}
    opt.apply({"a": np.array([3.0, 0.0]), "b": np.array([4.0])}, w)  # global norm 5
    assert np.allclose(w["a"], [-0.6, 0.0])
    assert np.allclose(w["b"], [-0.8])


def test_clipvalue():
    opt = O.SGD(1.0, clipvalue=0.5)
    w = {"a": np.zeros(3)}
    opt.apply({"a": np.array([-2.0, 0.1, 0.7])}, w)
    assert np.allclose(w["a"], [0.5, -0.1, -0.5])


def test_only_weights_with_gradients_change_and_dtype_is_kept():
    opt = O.Adam()
    w = {"a": np.ones(3, np.float32), "frozen": np.ones(2, np.float32)}
    before = w["a"]
    opt.apply({"a": np.full(3, 0.1, np.float32)}, w)
    assert w["a"] is before and w["a"].dtype == np.float32      # updated in place
    assert np.all(w["frozen"] == 1.0)


def test_state_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    grads = [{"k": rng.normal(size=4)} for _ in range(4)]
    a = O.Adam(0.01, amsgrad=True)
    wa = {"k": np.ones(4)}
    for g in grads:
        a.apply(g, wa)
    b = O.Adam(0.01, amsgrad=True)
    wb = {"k": np.ones(4)}
    for g in grads[:2]:
        b.apply(g, wb)
    meta, arrays = b.state()
    c = O.Adam(0.01, amsgrad=True)
    c.load_state(meta, {k: v.copy() for k, v in arrays.items()})
    for g in grads[2:]:
        c.apply(g, wb)
    assert np.array_equal(wa["k"], wb["k"])
    with pytest.raises(ValueError):
        O.SGD().load_state(meta, arrays)


def test_from_spec_uses_the_files_parameters_and_the_lr_override():
    spec = OptimizerSpec("SGD", MappingProxyType({**default_optimizer("SGD").params, "momentum": 0.5,
                                                  "decay": 0.0004}))
    opt = O.from_spec(spec)
    assert (opt.learning_rate, opt.momentum, opt.decay) == (0.01, 0.5, 0.0004)
    assert O.from_spec(spec, learning_rate=0.2).learning_rate == 0.2
    for name in ("SGD", "RMSprop", "Adam"):
        assert isinstance(O.from_spec(default_optimizer(name)), O.OPTIMIZERS[name])
    assert O.from_spec(default_optimizer("RMSprop")).epsilon == 1e-7


def test_every_optimizer_and_metric_of_the_language_has_an_implementation():
    from cnnc.analysis.compile_spec import METRICS, OPTIMIZERS
    from cnnc.backends.numpy import metrics as M
    assert set(O.OPTIMIZERS) == set(OPTIMIZERS)
    for name, canonical in METRICS.items():
        assert canonical == "accuracy" or canonical in M.METRICS, name
    for name in OPTIMIZERS:  # every parameter the language accepts is one the class takes
        O.from_spec(default_optimizer(name))
