"""The Network contract others code against: input checking, dtypes, the shared
weights dict, inference vs training, predict in chunks, completeness."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.analysis.kinds import FAMILIES, KINDS
from cnnc.backends.numpy.network import Network, check_input
from cnnc.backends.numpy.registry import LAYERS
from cnnc.support.diagnostics import UsageError

MNIST = "examples/mnist.cnn"


@pytest.fixture
def mnist(in_repo):
    return cnnc.load(MNIST)


def test_every_family_has_a_layer_class():
    assert set(LAYERS) == set(FAMILIES)
    assert {k.family for k in KINDS.values()} <= set(LAYERS)


def test_check_input_accepts_and_converts(mnist):
    x = np.zeros((3, 28, 28, 1), np.float64)
    out = check_input(x, mnist.analysis)
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape == (3, 28, 28, 1)
    out = check_input(np.zeros((2, 28, 28, 1), np.uint8).transpose(0, 2, 1, 3), mnist.analysis)
    assert out.dtype == np.float32 and out.flags.c_contiguous


@pytest.mark.parametrize("bad, hint", [
    (np.zeros((3, 28, 28)), "channel axis"),
    (np.zeros((28, 28, 1)), "batch axis"),
    (np.zeros((3, 28, 27, 1)), None),
    (np.array([["a"]]), None),
])
def test_check_input_rejects_with_shapes(mnist, bad, hint):
    with pytest.raises(UsageError) as e:
        check_input(bad, mnist.analysis)
    text = e.value.message + " ".join(e.value.notes)
    assert "28, 28, 1" in text
    if bad.dtype.kind in "fiu":
        assert str(tuple(bad.shape)).replace(",)", ")").rstrip(")") in text
    if hint:
        assert hint in text


def test_forward_keeps_dtype_and_reads_weights_dict(mnist):
    w = mnist.weights
    net = Network(mnist.analysis, w)
    assert net.weights is w and net.output_activation == "softmax"
    x = np.random.default_rng(0).random((2, 28, 28, 1))
    y64 = net.forward(x)
    y32 = net.forward(x.astype(np.float32))
    assert y64.dtype == np.float64 and y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-6)
    # an optimizer updates the dict in place: the next forward sees it
    w["dense_1/bias"] += np.float32(100) * np.eye(10, dtype=np.float32)[3]
    assert np.all(net.forward(x.astype(np.float32)).argmax(axis=1) == 3)


def test_gradients_have_weight_shapes_and_dtype(mnist):
    net = Network(mnist.analysis, mnist.weights)
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    y = net.forward(x, training=True, rng=np.random.default_rng(0))
    grads = net.backward(np.ones_like(y) / y.size)
    assert list(grads) == list(mnist.weights)          # all trainable, Keras order
    for k, g in grads.items():
        assert g.shape == mnist.weights[k].shape and g.dtype == np.float32


def test_backward_needs_training_forward(mnist):
    net = Network(mnist.analysis, mnist.weights)
    with pytest.raises(RuntimeError):
        net.backward(np.ones((1, 10), np.float32))
    net.forward(np.zeros((1, 28, 28, 1), np.float32))
    with pytest.raises(RuntimeError):
        net.backward(np.ones((1, 10), np.float32))


def test_dropout_only_in_training_and_seeded(mnist):
    net = Network(mnist.analysis, mnist.weights)
    x = np.random.default_rng(1).random((8, 28, 28, 1), dtype=np.float32)
    np.testing.assert_array_equal(net.forward(x), net.forward(x))
    a = net.forward(x, training=True, rng=np.random.default_rng(42))
    b = net.forward(x, training=True, rng=np.random.default_rng(42))
    c = net.forward(x, training=True, rng=np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.allclose(a, net.forward(x))


def test_predict_in_chunks_equals_forward(mnist):
    net = Network(mnist.analysis, mnist.weights)
    x = np.random.default_rng(2).random((10, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(net.predict(x, batch_size=3), net.forward(x), rtol=1e-5, atol=1e-7)
    assert net.predict(x[:0]).shape == (0, 10)


def test_model_predict_uses_network(mnist):
    x = np.random.default_rng(3).random((5, 28, 28, 1))
    np.testing.assert_allclose(mnist.predict(x, batch_size=2),
                               Network(mnist.analysis, mnist.weights).forward(x.astype(np.float32)),
                               rtol=1e-5, atol=1e-7)


def test_batch_norm_moving_stats_update_in_shared_dict():
    model = cnnc.loads("model b\ninput (3,)\nBatchNormalization(momentum=0.5)\n")
    w = model.weights
    net = Network(model.analysis, w)
    x = np.array([[1, 2, 3], [3, 4, 5]], np.float32)
    net.forward(x)                                        # inference: untouched
    np.testing.assert_array_equal(w["batch_normalization/moving_mean"], 0)
    net.forward(x, training=True)
    np.testing.assert_allclose(w["batch_normalization/moving_mean"], [1, 1.5, 2])
    np.testing.assert_allclose(w["batch_normalization/moving_variance"], [1, 1, 1])  # 0.5 + 0.5*1
    net.forward(x, training=True)
    np.testing.assert_allclose(w["batch_normalization/moving_mean"], [1.5, 2.25, 3])


def test_weights_that_do_not_fit_are_a_clear_error(mnist):
    w = dict(mnist.weights)
    w["conv2d/kernel"] = np.zeros((3, 3, 1, 31), np.float32)
    del w["dense/bias"]
    with pytest.raises(UsageError) as e:
        Network(mnist.analysis, w)
    notes = " ".join(e.value.notes)
    assert "conv2d/kernel" in notes and "dense/bias" in notes


@pytest.mark.parametrize("path", ["examples/cifar10_sgd.cnn", "examples/conv1d_sequence.cnn",
                                  "examples/conv3d_volume.cnn", "examples/separable.cnn"])
def test_examples_run_forward_and_backward(in_repo, path):
    m = cnnc.load(path)
    net = Network(m.analysis, m.weights)
    x = np.random.default_rng(0).random((2, *m.ir.input_shape), dtype=np.float32)
    y = net.forward(x, training=True, rng=np.random.default_rng(0))
    assert y.shape == (2, *m.analysis.output_shape)
    grads = net.backward(np.ones_like(y))
    trainable = [f"{i.name}/{w.name}" for i in m.analysis.infos for w in i.weights if w.trainable]
    assert list(grads) == trainable
    assert all(np.isfinite(g).all() for g in grads.values())
