"""Graph models: the functional API in .cnn, Keras's naming and order, merges (shapes,
refusals, forward values, gradients, ONNX), fan-out, several inputs and outputs, and the
diagnostics that point at the source. Expected values are worked out by hand from
Keras's rules (keras/src/layers/merging, keras/src/ops/function.py's map_graph)."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy.network import Network
from cnnc.frontends.cnn import check_text

from .test_reference_gradients import H, _compare


def ok(text: str):
    checked = check_text(text)
    assert checked.ok, "\n".join(f"{d.span.line if d.span else '-'}: {d.message}" for d in checked.diagnostics)
    return checked


def diags(text: str, severity: str = "error") -> list:
    return [d for d in check_text(text).diagnostics if d.severity == severity]


RESIDUAL = """
inputs = Input(shape=(8, 8, 3))
x = Conv2D(4, 3, padding='same', activation='relu')(inputs)
y = Conv2D(4, 3, padding='same')(x)
y = BatchNormalization()(y)
z = Add()([x, y])
Activation('relu')
GlobalAveragePooling2D()
Dense(10, activation='softmax') as out
model = Model(inputs, out, name='tiny_resnet')
"""


# --- the language ------------------------------------------------------------------

def test_functional_residual_block():
    c = ok(RESIDUAL)
    ir = c.ir
    assert ir.name == "tiny_resnet" and ir.functional
    assert [n.name for n in ir.inputs] == ["input_layer"] and ir.outputs == ("dense",)
    assert ir.layer("add").inputs == ("conv2d", "batch_normalization")
    assert ir.layer("activation").inputs == ("add",)    # a bare line continues from the last tensor
    # Keras: conv 3*3*3*4+4, conv 3*3*4*4+4, BN 4*4, dense 4*10+10
    assert [i.params for i in c.analysis.infos] == [112, 148, 16, 0, 0, 0, 50]
    assert c.analysis.total_params == 326 and c.analysis.output_shape == (10,)


def test_chain_form_names_and_input_alias():
    c = ok("input (8, 8, 2) as inputs\nConv2D(3, 1) as a\nConv2D(3, 1)\nb = Conv2D(3, 1)(inputs)\n"
           "concatenate([a, b])\nFlatten()\nDense(2)\n")
    ir = c.ir
    detached = {l.name: l for l in ir.detached}
    assert detached["conv2d_1"].inputs == ("conv2d",)
    assert ir.layer("conv2d_2").inputs == ("input_layer",)
    assert ir.layer("concatenate").inputs == ("conv2d", "conv2d_2")
    assert ir.layer("flatten").inputs == ("concatenate",)
    # conv2d_1 reaches no output: a warning, and not part of the model (as in Keras)
    (w,) = [d for d in c.diagnostics if d.severity == "warning"]
    assert "conv2d_1" in w.message and "never used" in w.message
    assert "conv2d_1" not in [l.name for l in ir.layers]


def test_function_forms_and_layer_objects():
    c = ok("a = Input(shape=(4,))\nb = Input(shape=(4,), name='other')\n"
           "s = add([a, b])\nd = subtract([a, b])\nm = multiply([s, d])\nv = average([a, b, m])\n"
           "mx = maximum([a, b])\nmn = minimum([a, b])\nc = concatenate([v, mx, mn], axis=-1)\n"
           "head = Dense(3)\ny = head(c)\nmodel = Model(inputs=[a, b], outputs=[y, s])\n")
    ir = c.ir
    assert [n.name for n in ir.inputs] == ["input_layer", "other"]
    assert ir.outputs == ("dense", "add")
    kinds = {l.name: l.kind for l in ir.layers}
    assert kinds["subtract"] == "Subtract" and kinds["concatenate"] == "Concatenate"
    assert c.analysis.info("concatenate").output_shape == (12,)
    assert c.analysis.output_shapes == ((3,), (4,))


def test_constants_and_arithmetic():
    c = ok("filters = 8\nscale = 1. / 255\ninputs = Input(shape=(4, 4, 1))\n"
           "x = Rescaling(scale)(inputs)\nx = Conv2D(filters * 2, 3 - 1)(x)\nx = Reshape((-1, 2 ** 4))(x)\n")
    infos = {i.name: i for i in c.analysis.infos}
    assert infos["rescaling"].layer["scale"] == pytest.approx(1 / 255)
    assert infos["conv2d"].output_shape == (3, 3, 16)
    assert infos["reshape"].output_shape == (9, 16)


@pytest.mark.parametrize("text,message", [
    ("Dense(1 / 0)", "division by zero"),
    ("Dense(2 ** 64)", "out of range"),
    ("Dense(2 ** 100)", "too large"),
    ("Dense(10 ** 10 ** 10)", "too large"),
    ("Dense('a' * 3)", "works on numbers only"),
])
def test_arithmetic_refusals(text, message):
    (e,) = diags(f"input (4,)\n{text}\n")
    assert message in e.message


# --- Keras's names and order ---------------------------------------------------------

INCEPTION = """
inputs = Input(shape=(35, 35, 16))
b1 = Conv2D(8, 1, padding='same')(inputs)
Conv2D(8, 1, padding='same')(inputs)
Conv2D(8, 5, padding='same') as b5
Conv2D(8, 1, padding='same')(inputs)
Conv2D(8, 3, padding='same')
Conv2D(8, 3, padding='same') as b3
AveragePooling2D(3, strides=1, padding='same')(inputs)
Conv2D(8, 1, padding='same') as bp
y = concatenate([b1, b5, b3, bp], axis=-1)
"""


def test_keras_order_by_depth_then_walk():
    """map_graph: depth from the output (deepest first); ties in the order a depth-first
    walk from the output, inputs in call order, first meets them. Worked by hand:
    depth 4 input; 3 conv2d_3; 2 conv2d_1 (walk index 4), conv2d_4 (6), avg pool (9);
    1 conv2d (1), conv2d_2 (3), conv2d_5 (5), conv2d_6 (8); 0 concatenate."""
    c = ok(INCEPTION)
    assert c.ir.layer_order == (
        "input_layer", "conv2d_3", "conv2d_1", "conv2d_4", "average_pooling2d",
        "conv2d", "conv2d_2", "conv2d_5", "conv2d_6", "concatenate")
    assert [l.name for l in c.ir.layers] == list(c.ir.layer_order[1:])
    assert c.analysis.output_shape == (35, 35, 32)


def test_names_count_in_creation_order():
    c = ok("inputs = Input(shape=(4,))\nlater = Dense(2)\nx = Dense(3)(inputs)\ny = later(x)\n"
           "j = Input(shape=(2,))\nz = add([y, j])\nmodel = Model([inputs, j], z)\n")
    assert c.ir.layer("dense").inputs == ("dense_1",)      # created first, called second
    assert [n.name for n in c.ir.inputs] == ["input_layer", "input_layer_1"]


def test_deep_functional_chain_does_not_recurse():
    lines = ["x = Input(shape=(4,))"] + ["x = Dense(4)(x)"] * 3000
    c = ok("\n".join(lines) + "\n")
    assert len(c.ir.layers) == 3000 and c.ir.layers[-1].name == "dense_2999"


# --- merge shapes ------------------------------------------------------------------------

@pytest.mark.parametrize("a,b,want", [
    ((4, 4, 8), (4, 4, 8), (4, 4, 8)),
    ((4, 4, 8), (1, 1, 8), (4, 4, 8)),       # a squeeze-and-excite gate
    ((8,), (4, 4, 8), (4, 4, 8)),            # lower rank: size-1 axes after the batch
    ((4, 1, 8), (1, 5, 1), (4, 5, 8)),
    ((None, 8), (6, 8), (None, 8)),
])
def test_elementwise_broadcasting(a, b, want):
    for kind in ("Add", "Multiply", "Maximum"):
        c = ok(f"a = Input(shape={a})\nb = Input(shape={b})\ny = {kind}()([a, b])\n")
        assert c.analysis.output_shape == want


def test_concatenate_shapes():
    c = ok("a = Input(shape=(5, 4, 3))\nb = Input(shape=(2, 4, 3))\ny = Concatenate(axis=1)([a, b])\n")
    assert c.analysis.output_shape == (7, 4, 3)
    c = ok("a = Input(shape=(5, None, 3))\nb = Input(shape=(5, 4, 6))\ny = Concatenate(axis=-1)([a, b])\n")
    assert c.analysis.output_shape == (5, None, 9)
    c = ok("a = Input(shape=(None, 3))\nb = Input(shape=(2, 3))\ny = Concatenate(axis=1)([a, b])\n")
    assert c.analysis.output_shape == (None, 3)


@pytest.mark.parametrize("text,message", [
    ("a = Input(shape=(4, 4, 8))\nb = Input(shape=(4, 4, 6))\ny = Add()([a, b])",
     "Add cannot merge (None, 4, 4, 8) (from 'input_layer') with (None, 4, 4, 6) (from 'input_layer_1'): sizes 8 and 6 differ on axis 3"),
    ("a = Input(shape=(4, 8))\nb = Input(shape=(4, 3, 8))\ny = Concatenate()([a, b])",
     "Concatenate needs inputs of one rank"),
    ("a = Input(shape=(4, 8))\nb = Input(shape=(5, 8))\ny = Concatenate()([a, b])",
     "Concatenate(axis=-1) needs equal sizes on every other axis"),
    ("a = Input(shape=(4, 8))\nb = Input(shape=(4, 8))\ny = Concatenate(axis=3)([a, b])",
     "axis=3 is out of range"),
    ("a = Input(shape=(4, 8))\nb = Input(shape=(4, 8))\ny = Concatenate(axis=0)([a, b])",
     "batch axis"),
    ("a = Input(shape=(4,))\ny = Subtract()([a, a, a])", "Subtract takes exactly 2 tensors, got 3"),
    ("a = Input(shape=(4,))\ny = Add()(a)", "Add merges a list of tensors, got one tensor"),
    ("a = Input(shape=(4,))\ny = Dense(2)([a, a])", "Dense takes one tensor"),
    ("input (4,)\nDense(2)\nAdd()", "Add merges several tensors: call it on a list"),
])
def test_merge_refusals(text, message):
    _refused(text, message)


def _refused(text: str, message: str) -> None:
    found = [d.message for d in diags(text + "\n")]
    assert any(message in m for m in found), found


def test_merge_error_explains_both_branches():
    (e,) = diags("inputs = Input(shape=(32, 32, 8))\nx = Conv2D(8, 3, padding='same')(inputs)\n"
                 "x = MaxPooling2D()(x)\ny = Add()([x, inputs])\n")
    assert e.span.line == 4 and e.span.column == 15            # at `inputs`
    assert "'max_pooling2d' is (None, 16, 16, 8): MaxPooling2D 'max_pooling2d' on line 3 turned 32 into 16" in e.notes[0]
    assert "the input 'input_layer' (line 1) has 32 there" in e.notes[1]


# --- names and connections: diagnostics at the source ------------------------------------

@pytest.mark.parametrize("text,message,note", [
    ("inputs = Input(shape=(4,))\nx = Dense(2)(input)\n", "'input' is not defined", "did you mean 'inputs'?"),
    ("inputs = Input(shape=(4,))\nd = Dense(2)\nx = d(inputs)\ny = d(x)\n",
     "layer 'd' is called a second time", "first called at line 3"),
    ("inputs = Input(shape=(4,))\nd = Dense(2)\ny = Add()([d, inputs])\n", "'d' is a layer, not a tensor", ""),
    ("a = Input(shape=(4,))\nb = Input(shape=(4,))\ny = add([a, b])\nmodel = Model(a, y)\n",
     "the outputs depend on the input 'input_layer_1'", ""),
    ("a = Input(shape=(4,))\ny = Dense(2)(a)\nmodel = Model(input=a, output=y)\n",
     "Model(input=...) is Keras 2's spelling", ""),
    ("a = Input(shape=(4,))\ny = Dense(2)(a, training=True)\n", "`training=` in a layer call", ""),
    ("a = Input(shape=(4,))\nd = Dense(2)\ny = Dense(3)(d(a))\nz = Dense(1)(y)\nw = Model(a, z)\nModel(a, y)\n",
     "Model(...) appears twice", ""),
    ("a = Input(shape=(4,))\nx = Dense(2, name='d')(a)\ny = Dense(2, name='d')(x)\n", "duplicate layer name 'd'", ""),
])
def test_connection_errors(text, message, note):
    found = diags(text)
    match = [d for d in found if message in d.message]
    assert match, [d.message for d in found]
    assert not note or any(note in n for n in match[0].notes), match[0].notes


def test_unused_input_and_layer_object_warnings():
    w = diags("a = Input(shape=(4,))\nb = Input(shape=(4,))\nd = Dense(3)\ny = Dense(2)(a)\n"
              "model = Model([a, b], y)\n", "warning")
    messages = [d.message for d in w]
    assert "input 'input_layer_1' does not reach any output" in messages
    assert "layer 'd' is created but never called on a tensor" in messages


def test_no_cascade_after_a_broken_reference():
    found = check_text("a = Input(shape=(4,))\nx = Dense(2)(b)\ny = Dense(3)(x)\nz = add([y, a])\n").diagnostics
    assert [d.message for d in found] == ["'b' is not defined"]


# --- the NumPy reference on graphs ---------------------------------------------------------

def _net(text: str, seed: int = 0, dtype=np.float64):
    model = cnnc.loads(text)
    rng = np.random.default_rng(seed)
    w = {}
    for info in model.analysis.infos:
        for wt in info.weights:
            v = rng.uniform(0.5, 2.0, wt.shape) if wt.name == "moving_variance" else rng.normal(0, 0.5, wt.shape)
            w[f"{info.name}/{wt.name}"] = v.astype(dtype)
    return model, Network(model.analysis, w)


def test_merge_forward_values_by_hand():
    _, net = _net("a = Input(shape=(2,))\nb = Input(shape=(2,))\nc = Input(shape=(1,))\n"
                  "s = add([a, b, c])\nd = subtract([a, b])\nm = multiply([a, c])\nv = average([a, b])\n"
                  "mx = maximum([a, b])\nmn = minimum([a, b])\nk = concatenate([a, b])\n"
                  "model = Model([a, b, c], [s, d, m, v, mx, mn, k])\n")
    a, b, c = np.array([[1., -2.]]), np.array([[3., 5.]]), np.array([[10.]])
    s, d, m, v, mx, mn, k = net.forward([a, b, c])
    np.testing.assert_array_equal(s, [[14., 13.]])
    np.testing.assert_array_equal(d, [[-2., -7.]])
    np.testing.assert_array_equal(m, [[10., -20.]])
    np.testing.assert_array_equal(v, [[2., 1.5]])
    np.testing.assert_array_equal(mx, [[3., 5.]])
    np.testing.assert_array_equal(mn, [[1., -2.]])
    np.testing.assert_array_equal(k, [[1., -2., 3., 5.]])


def test_lower_rank_input_gets_axes_after_the_batch():
    """Keras expands a (batch, C) input to (batch, 1, 1, C) before merging."""
    _, net = _net("a = Input(shape=(2, 2, 3))\nb = Input(shape=(3,))\ny = add([a, b])\n")
    a = np.zeros((2, 2, 2, 3))
    b = np.array([[1., 2., 3.], [4., 5., 6.]])
    y = net.forward([a, b])
    np.testing.assert_array_equal(y[1, 1, 0], [4., 5., 6.])
    np.testing.assert_array_equal(y[0, 0, 1], [1., 2., 3.])


GRADIENT_GRAPHS = {
    "residual_fanout": RESIDUAL.replace("Dense(10, activation='softmax')", "Dense(3)"),
    "every_merge": """
inputs = Input(shape=(4, 4, 2))
a = Conv2D(3, 1)(inputs)
b = Conv2D(3, 1)(inputs)
s = Subtract()([a, b])
m = Multiply()([a, b, s])
v = Average()([m, a])
mx = Maximum()([v, b, a])
mn = Minimum()([mx, s])
g = GlobalAveragePooling2D(keepdims=True)(mn)
gate = Multiply()([mn, g])
gate = CustomScaleLayer(0.17)([gate, b])
c = Concatenate(axis=2)([gate, a])
c2 = concatenate([c, c])
Flatten()
Dense(2)
""",
    "se_block_mixed_ranks": """
inputs = Input(shape=(5, 5, 4))
x = Conv2D(4, 3, padding='same')(inputs)
g = GlobalAveragePooling2D()(x)
g = Dense(4, activation='sigmoid')(g)
y = Multiply()([x, g])
y = Add()([y, inputs])
Flatten()
Dense(2)
""",
}


@pytest.mark.parametrize("name", GRADIENT_GRAPHS)
def test_graph_gradients_match_finite_differences(name):
    """Every weight and the input: gradients summed where a tensor fans out."""
    model, net = _net(GRADIENT_GRAPHS[name])
    rng = np.random.default_rng(3)
    shape = model.ir.input_shape
    x = rng.normal(0, 1, (3, *shape))
    y = net.forward(x, training=True, rng=np.random.default_rng(1))
    r = rng.normal(0, 1, y.shape)

    def loss() -> float:
        return float(np.sum(net.forward(x, training=True, rng=np.random.default_rng(1)) * r))

    grads = net.backward(r, input_grad=True)
    trainable = {f"{i.name}/{w.name}" for i in model.analysis.infos for w in i.weights if w.trainable}
    assert set(grads) == trainable
    for key, g in grads.items():
        _compare(net.weights[key], g, loss, key, rng)
    _compare(x, net.input_grad, loss, "input", rng)


def test_several_inputs_and_outputs_gradients():
    model, net = _net("a = Input(shape=(3,))\nb = Input(shape=(3,))\nh = Dense(3)(a)\n"
                      "s = add([h, b])\no1 = Dense(2)(s)\no2 = multiply([s, b])\nmodel = Model([a, b], [o1, o2])\n")
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    y1, y2 = net.forward([xa, xb], training=True)
    r1, r2 = rng.normal(size=y1.shape), rng.normal(size=y2.shape)

    def loss() -> float:
        o1, o2 = net.forward([xa, xb], training=True)
        return float(np.sum(o1 * r1) + np.sum(o2 * r2))

    grads = net.backward([r1, r2], input_grad=True)
    for key, g in grads.items():
        _compare(net.weights[key], g, loss, key, rng)
    ga, gb = net.input_grad
    _compare(xa, ga, loss, "a", rng)
    _compare(xb, gb, loss, "b", rng)


def test_maximum_tie_sends_the_gradient_left():
    """TensorFlow's Maximum gradient: where x >= y, to x. Folded left to right."""
    _, net = _net("a = Input(shape=(2,))\nb = Input(shape=(2,))\nc = Input(shape=(2,))\n"
                  "y = maximum([a, b, c])\nmodel = Model([a, b, c], y)\n")
    a, b, c = np.array([[1., 2.]]), np.array([[1., 3.]]), np.array([[0., 3.]])
    net.forward([a, b, c], training=True)
    net.backward(np.ones((1, 2)), input_grad=True)
    ga, gb, gc = net.input_grad
    np.testing.assert_array_equal(ga, [[1., 0.]])
    np.testing.assert_array_equal(gb, [[0., 1.]])
    np.testing.assert_array_equal(gc, [[0., 0.]])


def test_predict_with_several_inputs_and_outputs():
    model = cnnc.loads("a = Input(shape=(3,))\nb = Input(shape=(2,))\nc = concatenate([a, b])\n"
                       "o1 = Dense(2)(c)\no2 = Dense(1)(c)\nmodel = Model([a, b], [o1, o2])\n")
    model.init_weights(0)
    net = Network(model.analysis, model.weights)
    xa = np.arange(15, dtype=np.float32).reshape(5, 3)
    xb = np.ones((5, 2), np.float32)
    o1, o2 = net.predict([xa, xb], batch_size=2)
    assert o1.shape == (5, 2) and o2.shape == (5, 1)
    w = model.weights
    want = np.concatenate([xa, xb], 1) @ w["dense/kernel"] + w["dense/bias"]
    np.testing.assert_allclose(o1, want, rtol=1e-5, atol=1e-5)


# --- ONNX ----------------------------------------------------------------------------------

def test_onnx_several_inputs_and_outputs():
    import onnxruntime as ort

    model = cnnc.loads("a = Input(shape=(6, 6, 2))\nb = Input(shape=(3,), name='side')\n"
                       "x = Conv2D(3, 3, padding='same')(a)\ny = Add()([x, x])\n"
                       "g = GlobalAveragePooling2D()(y)\ns = add([g, b])\no = Dense(2)(s)\n"
                       "model = Model([a, b], [o, y])\n")
    model.init_weights(1)
    proto = model.to_onnx()
    assert [i.name for i in proto.graph.input] == ["input_layer", "side"]
    assert [o.name for o in proto.graph.output] == ["dense", "add"]
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    xa = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
    xb = rng.normal(size=(2, 3)).astype(np.float32)
    got = sess.run(None, {"input_layer": xa, "side": xb})
    want = Network(model.analysis, model.weights).forward([xa, xb])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_onnx_branches_add_no_transpose():
    """A residual block after the first Conv stays channels_first: the only Transpose
    is the input's (read by two Convs, converted once)."""
    model = cnnc.loads("inputs = Input(shape=(8, 8, 3))\na = Conv2D(4, 3, padding='same')(inputs)\n"
                       "b = Conv2D(4, 1)(inputs)\nx = Add()([a, b])\ny = Conv2D(4, 3, padding='same')(x)\n"
                       "y = BatchNormalization()(y)\nz = add([x, y])\nc = concatenate([z, x])\n"
                       "GlobalAveragePooling2D()\nDense(2)\n")
    proto = model.to_onnx()
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Transpose") == 1


# --- arithmetic on tensors (Keras operations) -------------------------------------------------

OPS = """
inputs = Input(shape=(4, 4, 3))
x = Conv2D(3, 1)(inputs)
h = ReLU(6.)(x + 3.) * (1. / 6.)
y = Add()([x * h, x])
z = 1 - y / 2.0
w = -z + inputs
"""


def test_tensor_arithmetic_is_keras_operations():
    """Keras 3: `x + 3.` is ops.Add, named from the same counter as the Add layer. The
    expected rows are what Keras 3.15's model.operations gives for the same code."""
    c = ok(OPS)
    rows = [(l.name, l.kind, l.inputs) for l in c.ir.layers]
    assert rows == [
        ("conv2d", "Conv2D", ("input_layer",)), ("add", "Add", ("conv2d",)),
        ("re_lu", "ReLU", ("add",)), ("multiply", "Multiply", ("re_lu",)),
        ("multiply_1", "Multiply", ("conv2d", "multiply")), ("add_1", "Add", ("multiply_1", "conv2d")),
        ("true_divide", "TrueDivide", ("add_1",)), ("subtract", "Subtract", ("true_divide",)),
        ("negative", "Negative", ("subtract",)), ("add_2", "Add", ("negative", "input_layer"))]
    assert [l.is_op for l in c.ir.layers] == [False, True, False, True, True, False, True, True, True, True]
    sub = c.ir.layer("subtract")
    assert sub.is_op and sub["constant"] == 1.0 and sub["reverse"] and sub.inputs == ("true_divide",)
    assert c.analysis.total_params == 12 and c.analysis.output_shape == (4, 4, 3)


def test_tensor_arithmetic_values_gradients_and_onnx():
    import onnxruntime as ort

    model, net = _net(OPS + "Flatten()\nDense(2)\n")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, (2, 4, 4, 3))
    k = net.weights
    c = x @ k["conv2d/kernel"][0, 0] + k["conv2d/bias"]
    y = c * np.clip(c + 3, 0, 6) / 6 + c
    w = -(1 - y / 2) + x
    want = w.reshape(2, -1) @ k["dense/kernel"] + k["dense/bias"]
    np.testing.assert_allclose(net.forward(x), want, rtol=1e-10)
    r = rng.normal(size=want.shape)
    net.forward(x, training=True)
    grads = net.backward(r, input_grad=True)

    def loss() -> float:
        return float(np.sum(net.forward(x, training=True) * r))

    for key, g in grads.items():
        _compare(net.weights[key], g, loss, key, rng)
    _compare(x, net.input_grad, loss, "input", rng)
    model.set_weights({kk: v.astype(np.float32) for kk, v in k.items()})
    sess = ort.InferenceSession(model.to_onnx().SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.astype(np.float32)})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("text,message", [
    ("a = Input(shape=(4, 4, 3))\nb = Input(shape=(3,))\ny = a * b", "Multiply of tensors of different ranks"),
    ("a = Input(shape=(4,))\ny = a % 2", "'%' is not supported on tensors"),
    ("a = Input(shape=(4,))\ny = a * 'x'", "works on numbers only"),
    ("a = Input(shape=(4,))\ny = Dense(2)(a + b)", "'b' is not defined"),
    ("a = Input(shape=(4,))\ny = CustomScaleLayer(0.17)([a, a, a])", "takes exactly 2 tensors"),
])
def test_tensor_arithmetic_refusals(text, message):
    _refused(text, message)


@pytest.mark.parametrize("body", ["+".join(["1"] * 3000), "[" * 2000 + "1" + "]" * 2000,
                                  "-" * 3000 + "1"])
def test_hostile_nesting_is_a_diagnostic(body):
    """Deep brackets or operator chains: one error at the statement, no RecursionError."""
    (e,) = diags(f"input (4,)\nDense({body})\n")
    assert "nests more than 100 levels deep" in e.message and e.span.line == 2


def test_redundant_parentheses_are_harmless():
    c = ok("input (4,)\nDense(" + "(" * 2000 + "3" + ")" * 2000 + ")\n")
    assert c.analysis.output_shape == (3,)


def test_model_predict_with_several_inputs():
    model = cnnc.loads("a = Input(shape=(3,))\nb = Input(shape=(2,))\nc = concatenate([a, b])\n"
                       "o1 = Dense(2)(c)\no2 = Dense(1)(c)\nmodel = Model([a, b], [o1, o2])\n")
    o1, o2 = model.predict([np.ones((4, 3)), np.ones((4, 2))])
    assert o1.shape == (4, 2) and o2.shape == (4, 1)
    with pytest.raises(cnnc.UsageError, match="has 2 inputs"):
        model.predict(np.ones((4, 3)))
    with pytest.raises(cnnc.UsageError, match="takes input"):
        model.predict([np.ones((4, 3)), np.ones((4, 3))])


def test_dropout_output_warning_only_for_a_head():
    """'Dropout is the last layer' is for a classifier head; a block's skip tensor that is
    also an output (a U-Net encoder block returning (next, skip)) gets no warning."""
    head = check_text("inputs = Input(shape=(8,))\nx = Dense(4)(inputs)\ny = Dropout(0.5)(x)\n"
                      "model = Model(inputs, y)\n")
    assert any("Dropout is the last layer" in d.message for d in head.diagnostics)
    block = check_text("inputs = Input(shape=(8, 8, 3))\nx = Conv2D(4, 3, padding='same')(inputs)\n"
                       "skip = Dropout(0.3)(x)\nnext = MaxPooling2D()(skip)\n"
                       "model = Model(inputs, [next, skip])\n")
    assert block.ok and not any("last layer" in d.message for d in block.diagnostics)
