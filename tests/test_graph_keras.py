"""cnnc against Keras itself on random graphs: same layer order (model.layers), shapes,
parameter counts, refusals, and outputs with the same weights.

Each random graph is written twice from one spec, as .cnn text and as Keras functional
code, so the same names come out of both (Keras numbers layers per session: the session
is cleared first). Merges get inputs of random shapes, so many graphs do not fit and both
must refuse. Runs only where Keras is installed (a dev-only oracle); CI skips it.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy.network import Network
from cnnc.frontends.cnn import check_text

keras = pytest.importorskip("keras", reason="Keras is not installed (a dev-only oracle)")
pytestmark = pytest.mark.keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N_GRAPHS = int(os.environ.get("CNNC_KERAS_GRAPHS", "150"))
MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]


def random_graph(seed: int) -> list[tuple[str, str, str]]:
    """Statements (variable, layer call, input expression), shared by both writers."""
    rng = random.Random(seed)
    stmts = []
    tensors = []
    for i in range(rng.choice([1, 1, 2])):
        h = rng.choice([6, 8, 9])
        stmts.append((f"in{i}", f"Input(shape=({h}, {h}, {rng.choice([2, 3])}))", ""))
        tensors.append(f"in{i}")
    for k in range(rng.randint(3, 9)):
        src = rng.choice(tensors)
        r = rng.random()
        if r < 0.3:
            f, ks = rng.choice([2, 3, 4]), rng.choice([1, 3])
            s, p = rng.choice([1, 1, 2]), rng.choice(["same", "valid"])
            call, arg = f"Conv2D({f}, {ks}, strides={s}, padding='{p}')", src
        elif r < 0.4:
            call, arg = f"MaxPooling2D({rng.choice([1, 2])}, padding='same')", src
        elif r < 0.5:
            call, arg = f"GlobalAveragePooling2D(keepdims={rng.choice([True, False])})", src
        elif r < 0.55:
            call, arg = f"BatchNormalization()", src
        elif r < 0.85:
            kind = rng.choice(MERGES)
            n = 2 if kind == "Subtract" else rng.choice([2, 2, 3])
            call, arg = f"{kind}()", "[" + ", ".join(rng.choice(tensors) for _ in range(n)) + "]"
        else:
            axis = rng.choice([-1, -1, 1, 2, 3])
            n = rng.choice([2, 3])
            call, arg = f"Concatenate(axis={axis})", "[" + ", ".join(rng.choice(tensors) for _ in range(n)) + "]"
        stmts.append((f"t{k}", call, arg))
        tensors.append(f"t{k}")
    return stmts


def _outputs(stmts) -> list[str]:
    last = stmts[-1][0]
    inputs = [v for v, _, a in stmts if not a]
    return inputs, [last] if len(stmts) < 6 else [last, stmts[-2][0]]


def as_cnn(stmts) -> str:
    lines = [f"{v} = {c}({a})" if a else f"{v} = {c}" for v, c, a in stmts]
    ins, outs = _outputs(stmts)
    lines.append(f"model = Model([{', '.join(ins)}], [{', '.join(outs)}])")
    return "\n".join(lines) + "\n"


def keras_build(stmts):
    from keras import layers
    keras.backend.clear_session()
    env = {}
    for v, c, a in stmts:
        layer = eval(f"layers.{c}") if a else eval(f"keras.{c}")
        env[v] = layer(eval(a, {}, env)) if a else layer
    ins, outs = _outputs(stmts)
    return keras.Model([env[i] for i in ins], [env[o] for o in outs])


@pytest.mark.parametrize("seed", range(N_GRAPHS))
def test_random_graph_matches_keras(seed):
    stmts = random_graph(seed)
    text = as_cnn(stmts)
    checked = check_text(text, "g.cnn")
    try:
        model = keras_build(stmts)
        ins = [np.random.default_rng(seed).normal(size=(2, *t.shape[1:])).astype("float32")
               for t in model.inputs]
        # eager, not predict(): TensorFlow 2.21's graph optimiser computes
        # Maximum()([Add()([t, t]), t, x]) as t on 4-D inputs (seed 187); eager is right
        want = model(ins if len(ins) > 1 else ins[0])
        want = [np.asarray(w) for w in want] if isinstance(want, (list, tuple)) else np.asarray(want)
    except Exception as e:  # noqa: BLE001 - any refusal counts
        assert not checked.ok, f"Keras refuses ({e}) but cnnc accepts:\n{text}"
        return
    assert checked.ok, f"cnnc refuses what Keras accepts:\n{text}\n" + "\n".join(
        d.message for d in checked.diagnostics)
    ir, analysis = checked.ir, checked.analysis
    assert list(ir.layer_order) == [l.name for l in model.layers], text
    for layer in model.layers:
        if layer.__class__.__name__ == "InputLayer":
            continue
        info = analysis.info(layer.name)
        assert info.output_shape == tuple(layer.output.shape[1:]), (layer.name, text)
        assert info.params == layer.count_params(), (layer.name, text)
    # outputs with Keras's weights, in the NumPy reference and in onnxruntime
    cm = cnnc.loads(text)
    cm.set_weights({f"{l.name}/{w.name}": np.asarray(w.numpy()) for l in model.layers for w in l.weights})
    got = Network(cm.analysis, cm.weights).forward(ins if len(ins) > 1 else ins[0])
    got = got if isinstance(got, list) else [got]
    want = want if isinstance(want, list) else [want]
    for g, w in zip(got, want):
        scale = max(1.0, float(np.max(np.abs(w))))
        np.testing.assert_allclose(g, w, atol=1e-4 * scale, rtol=1e-4)
    import onnxruntime as ort
    sess = ort.InferenceSession(cm.to_onnx().SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), ins)})
    for g, w in zip(outs, want):
        scale = max(1.0, float(np.max(np.abs(w))))
        np.testing.assert_allclose(g, w, atol=1e-4 * scale, rtol=1e-4)


@pytest.mark.parametrize("kind", ["DepthwiseConv2D(3", "SeparableConv2D(4, 3", "DepthwiseConv1D(3",
                                  "SeparableConv1D(4, 3", "Conv2D(4, 3", "Conv1D(4, 3"])
def test_strides_with_dilation_refused_only_where_keras_refuses(kind):
    rank = 1 if "1D" in kind else 2
    shape = (12, 3) if rank == 1 else (12, 12, 3)
    call = f"{kind}, strides=2, dilation_rate=2, padding='same')"
    checked = check_text(f"input {shape}\n{call}\n")
    from keras import layers
    keras.backend.clear_session()
    try:
        x = keras.Input(shape)
        y = eval(f"layers.{call}")(x)
        m = keras.Model(x, y)
        want = m.predict(np.random.default_rng(0).normal(size=(2, *shape)).astype("float32"), verbose=0)
    except Exception:  # noqa: BLE001
        assert not checked.ok
        return
    assert checked.ok, [d.message for d in checked.diagnostics]
    assert checked.analysis.output_shape == want.shape[1:]
    cm = cnnc.loads(f"input {shape}\n{call}\n")
    cm.set_weights({f"{l.name}/{w.name}": np.asarray(w.numpy()) for l in m.layers for w in l.weights})
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    np.testing.assert_allclose(cm.predict(x, scale=False), want, atol=1e-4, rtol=1e-4)
    import onnxruntime as ort
    sess = ort.InferenceSession(cm.to_onnx().SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], want, atol=1e-4, rtol=1e-4)
