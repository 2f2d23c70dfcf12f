"""Training graph models (residual Add, Concatenate, a tensor read by several layers):
fit learns, the whole Network's gradients (BatchNormalization and fan-out included)
match finite differences in float64, a kill -9 in the middle of an epoch and
--resume end bit-identical, `cnnc evaluate`/`predict` run them, and models with
several inputs or outputs are refused with a message (exit 2), not a traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy import checkpoint as ckpt
from cnnc.backends.numpy import losses as L
from cnnc.backends.numpy.network import Network
from cnnc.cli import main
from cnnc.support.diagnostics import UsageError

from .test_reference_gradients import _compare, _weights, check_gradients
from .test_train import tiny_data
from .test_train_cli import kill_and_resume

# `stem` is read three times (a fan-out): by both branches and by the residual Add.
GRAPH_NET = """
model graph_net
inputs = Input(shape=(6, 6, 1))
stem = Conv2D(6, 3, padding='same', activation='relu')(inputs)
x = Conv2D(6, 3, padding='same', use_bias=False)(stem)
x = BatchNormalization()(x)
x = Activation('relu')(x)
side = Conv2D(2, 1)(stem)
y = Add()([stem, x])
y = Concatenate()([y, side])
y = Dropout(0.2)(y)
y = GlobalAveragePooling2D()(y)
outputs = Dense(3, activation='softmax')(y)
model = Model(inputs, outputs)
compile(optimizer=Adam(learning_rate=0.02), loss='categorical_crossentropy', metrics=['accuracy'])
fit(epochs=4, batch_size=8, validation_split=0.2)
"""


def graph_net() -> cnnc.Model:
    return cnnc.loads(GRAPH_NET, "graph_net.cnn")


def test_graph_net_is_a_graph_with_a_fan_out():
    m = graph_net()
    assert m.ir.is_graph
    readers = m.ir.consumers
    stem = m.layer("conv2d").name
    assert len(readers[stem]) == 3          # conv2d_1, conv2d_2 (side) and add


# --- learning ---------------------------------------------------------------------------------

def test_fit_on_a_graph_reduces_the_loss():
    x, y = tiny_data(160)
    m = graph_net()
    h = m.fit(x, y, seed=3, verbose=0, epochs=6)
    loss = h.history["loss"]
    assert loss[-1] < 0.7 * loss[0], loss
    # well above chance (1/3); 32 validation samples, and float32 rounding (which differs
    # with the thread count) may flip one of them
    assert h.history["val_accuracy"][-1] > 0.5
    # BatchNormalization's moving statistics were trained too (the network updates them)
    assert not np.allclose(m.weights["batch_normalization/moving_mean"], 0)
    # same seed, same run, bit for bit
    again = graph_net()
    h2 = again.fit(x, y, seed=3, verbose=0, epochs=6)
    assert h2.history == h.history
    assert all(np.array_equal(m.weights[k], again.weights[k]) for k in m.weights)


# --- gradients against finite differences, float64 -------------------------------------------

GRAPH_CASES = {
    # residual block: BN in the residual branch, a projection with its own BN on the shortcut
    "residual_projection": ((6, 6, 2), [
        "Conv2D(3, 3, padding='same', use_bias=False) as block_in",
        "BatchNormalization()",
        "Activation('tanh')",
        "Conv2D(4, 3, strides=2, padding='same')",
        "BatchNormalization(center=False) as residual",
        "Conv2D(4, 1, strides=2)(block_in)",
        "BatchNormalization(scale=False) as shortcut",
        "Add()([shortcut, residual])",
        "Activation('elu')",
        "GlobalAveragePooling2D()",
        "Dense(3)",
    ]),
    # one tensor read by five layers (two of them the same merge), Concatenate, Multiply,
    # Subtract, a broadcast of a vector onto an image
    "fan_out_merges": ((5, 4, 2), [
        "Conv2D(4, 2, padding='same', activation='tanh') as t",
        "Conv2D(3, 1)(t) as a",
        "BatchNormalization()(t) as b",
        "Multiply()([t, t]) as sq",
        "Concatenate()([a, b, sq]) as cat",
        "GlobalAveragePooling2D()(cat)",
        "Dense(11, activation='sigmoid') as gate",
        "Multiply()([cat, gate])",
        "Subtract()([cat, gate]) as diff",
        "Average()([cat, diff])",
        "Flatten()",
        "Dense(3)",
    ]),
    # a tensor read by a layer and by a Maximum/Minimum, concatenated on a spatial axis
    "extrema_spatial_concat": ((4, 4, 3), [
        "Conv2D(3, 2, padding='same') as p",
        "Conv2D(3, 3, padding='same') as q",
        "Maximum()([p, q]) as hi",
        "Minimum()([p, q]) as lo",
        "Concatenate(axis=1)([hi, lo])",
        "BatchNormalization()",
        "Conv2D(2, 2)",
    ]),
}


@pytest.mark.parametrize("name", GRAPH_CASES)
def test_graph_gradients_match_finite_differences(name):
    shape, lines = GRAPH_CASES[name]
    grads = check_gradients(shape, lines)
    assert any(k.startswith("batch_normalization") for k in grads)


def test_training_step_gradient_of_a_graph_matches_finite_differences():
    """The whole training step's gradient: the graph, the fused softmax + cross-entropy
    at its output, BN batch statistics, the fan-out (dropout left out: it is random)."""
    m = cnnc.loads(GRAPH_NET.replace("y = Dropout(0.2)(y)\n", ""))
    rng = np.random.default_rng(7)
    w = _weights(m, rng)
    net = Network(m.analysis, w)
    x = rng.normal(size=(5, 6, 6, 1))
    y = np.eye(3)[rng.integers(0, 3, 5)]
    loss = L.Loss("categorical_crossentropy", output_activation=net.output_activation)
    assert loss.fused and net.output_activation == "softmax"
    p = net.forward(x, training=True)
    grads = net.backward(loss.gradient(y, p), skip_output_activation=loss.fused)
    trainable = {f"{i.name}/{v.name}" for i in m.analysis.infos for v in i.weights if v.trainable}
    assert set(grads) == trainable

    def value() -> float:
        return loss.value(y, net.forward(x, training=True))
    for key, g in grads.items():
        _compare(w[key], g, value, key, rng)


# --- checkpoints: a crash, a kill -9 -------------------------------------------------------------

def test_crash_mid_epoch_and_resume_on_a_graph(tmp_path, monkeypatch):
    from .test_train import _Boom, _explode_after
    x, y = tiny_data(60)
    ref = graph_net()
    href = ref.fit(x, y, seed=9, verbose=0)
    folder = tmp_path / "g.ckpt"
    with monkeypatch.context() as mp:
        _explode_after(mp, 9)      # 48 training samples, 6 steps an epoch: epoch 2, batch 3
        with pytest.raises(_Boom):
            graph_net().fit(x, y, seed=9, verbose=0, checkpoint=folder, checkpoint_every=0)
    meta, _ = ckpt.load(folder)
    assert (meta["epoch"], meta["batch"]) == (1, 2)
    resumed = graph_net()
    h = resumed.fit(x, y, verbose=0, checkpoint=folder, resume=True)
    assert all(np.array_equal(ref.weights[k], resumed.weights[k]) for k in ref.weights)
    assert h.history == href.history


KILL_GRAPH = """
model killgraph
input (8, 8, 1)
Conv2D(8, 3, padding='same', use_bias=False)
BatchNormalization()
Activation('relu') as stem
Conv2D(8, 3, padding='same', use_bias=False)
BatchNormalization() as residual
Add()([stem, residual])
Activation('relu') as block
Conv2D(4, 1)(stem) as side
Concatenate()([block, side])
MaxPooling2D(2)
Flatten()
Dropout(0.25)
Dense(4, activation='softmax')
compile(optimizer=SGD(learning_rate=0.05, momentum=0.9), loss='categorical_crossentropy', metrics=['accuracy'])
fit(epochs=3, batch_size=8, validation_split=0.1)
"""


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_is_bit_identical_on_a_graph(tmp_path):
    whole, _ = kill_and_resume(tmp_path, KILL_GRAPH, seed=4, wait=180,
                               env_extra={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    assert any(k.endswith("moving_variance") for k in whole.files)


# --- evaluate and predict on a graph ------------------------------------------------------------

@pytest.fixture
def graph_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.cnn").write_text(GRAPH_NET)
    x, y = tiny_data(48)
    xt, yt = tiny_data(12, seed=1)
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    np.save(tmp_path / "x.npy", xt)
    return tmp_path


def test_train_evaluate_predict_commands_on_a_graph(graph_work, capsys):
    assert main(["train", "g.cnn", "--data", "data.npz", "--seed", "2", "-v", "0", "-o", "w.npz"]) == 0
    capsys.readouterr()
    m = cnnc.load(graph_work / "g.cnn")
    m.load_weights(graph_work / "w.npz")
    xt, yt = tiny_data(12, seed=1)
    loss, acc = m.evaluate(xt, yt, verbose=0)
    assert main(["evaluate", "g.cnn", "--weights", "w.npz", "--data", "data.npz", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["loss"] == pytest.approx(loss) and report["accuracy"] == pytest.approx(acc)
    assert main(["evaluate", "g.cnn", "--weights", "w.npz", "--data", "data.npz", "--format", "json",
                 "--runtime", "onnx", "--provider", "cpu"]) == 0
    onnx_report = json.loads(capsys.readouterr().out)
    assert onnx_report["loss"] == pytest.approx(loss, rel=1e-5) and onnx_report["accuracy"] == acc
    assert main(["predict", "g.cnn", "--weights", "w.npz", "--data", "x.npy", "-o", "p.npy"]) == 0
    p = np.load(graph_work / "p.npy")
    assert p.shape == (12, 3)
    np.testing.assert_allclose(p, m.predict(xt), atol=1e-6)
    hist = json.loads((graph_work / "w.history.json").read_text())
    assert hist["test"]["loss"] == pytest.approx(loss, rel=1e-6)


# --- several inputs or outputs: refused, clearly ---------------------------------------------------

TWO_INPUTS = """
model two_in
a = Input(shape=(4,))
b = Input(shape=(4,))
y = Add()([Dense(3)(a), Dense(3)(b)])
outputs = Dense(2, activation='softmax')(y)
model = Model([a, b], outputs)
compile(optimizer=Adam(), loss='categorical_crossentropy', metrics=['accuracy'])
"""

TWO_OUTPUTS = """
model two_out
a = Input(shape=(4,))
x = Dense(3)(a)
p = Dense(2, activation='softmax')(x)
q = Dense(2, activation='softmax')(x)
model = Model(a, [p, q])
compile(optimizer=Adam(), loss='categorical_crossentropy', metrics=['accuracy'])
"""


@pytest.mark.parametrize("text, what", [(TWO_INPUTS, "2 inputs (input_layer, input_layer_1)"),
                                        (TWO_OUTPUTS, "2 outputs (dense_1, dense_2)")])
def test_fit_and_evaluate_refuse_several_inputs_or_outputs(text, what):
    m = cnnc.loads(text)
    x, y = np.random.default_rng(0).random((10, 4)), np.arange(10) % 2
    for call in (lambda: m.fit(x, y, verbose=0), lambda: m.fit([x, x], y, verbose=0),
                 lambda: m.evaluate(x, y, verbose=0)):
        with pytest.raises(UsageError) as e:
            call()
        assert what in e.value.message and "one input and one output" in e.value.message
    assert not m.has_weights            # refused before any weight was drawn


@pytest.mark.parametrize("text", [TWO_INPUTS, TWO_OUTPUTS])
@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_cli_refuses_several_inputs_or_outputs(tmp_path, monkeypatch, capsys, text, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.cnn").write_text(text)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.random((10, 4)), y_train=np.arange(10) % 2)
    args = {"train": ["--data", "d.npz"], "evaluate": ["--data", "d.npz", "--weights", "w.npz"],
            "predict": ["--data", "d.npz", "--weights", "w.npz"]}[command]
    assert main([command, "m.cnn", *args]) == 2
    err = capsys.readouterr().err
    assert f"cnnc {command} supports models with one input and one output" in err
    assert "Traceback" not in err and "internal error" not in err
    assert not (tmp_path / "m.npz").exists() and not (tmp_path / "m.ckpt").exists()
