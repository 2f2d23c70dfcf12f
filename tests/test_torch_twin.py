"""The PyTorch twin (cnnc/torch_twin.py, used by the benchmarks) on graph models: the
same function as the NumPy reference, in PyTorch's NCHW and channels_last memory
formats, in inference and in training mode (BatchNormalization's batch statistics),
and the same gradients. Skipped where torch is not installed (it never is a dependency)."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy.network import Network

from .conftest import ROOT
from .onnx_helpers import model_from, random_weights

torch = pytest.importorskip("torch")

from cnnc.runtime.torch_twin import to_channels_first, torch_module  # noqa: E402

GRAPHS = {
    # a residual block with a projection shortcut, merged by Add
    "residual": """
inputs = Input(shape=(8, 8, 3))
x = Conv2D(4, 3, padding='same', use_bias=False)(inputs)
x = BatchNormalization()(x)
x = Activation('relu')(x)
x = Conv2D(4, 3, strides=2, padding='same')(x)
s = Conv2D(4, 1, strides=2)(inputs)
y = Add()([x, s])
y = ReLU()(y)
y = GlobalAveragePooling2D()(y)
outputs = Dense(5, activation='softmax')(y)
model = Model(inputs, outputs)
""",
    # four branches from one tensor (a fan-out), concatenated on channels and on a
    # spatial axis; the others merges; a squeeze-excite style broadcast of a
    # lower-rank tensor onto an image
    "merges": """
inputs = Input(shape=(6, 5, 4))
a = Conv2D(3, 1)(inputs)
b = Conv2D(3, 3, padding='same', activation='tanh')(inputs)
c = MaxPooling2D(3, strides=1, padding='same')(inputs)
c = Conv2D(3, 1)(c)
d = Conv2D(2, 1)(inputs)
cat = Concatenate()([a, b, c, d])
s = GlobalAveragePooling2D()(cat)
s = Dense(11, activation='sigmoid')(s)
m = Multiply()([cat, s])
e = Subtract()([a, b])
f = Maximum()([a, b, c])
g = Minimum()([a, c])
h = Average()([e, f, g])
w = Concatenate(axis=2)([h, a])
w = Conv2D(11, (1, 10))(w)
y = Add()([m, w])
y = Flatten()(y)
z = Dense(4)(y)
outputs = LeakyReLU(0.1)(z)
model = Model(inputs, outputs)
""",
    # flat vectors in PyTorch's channels-first order meeting a merge and a BN
    "flat_merge": """
inputs = Input(shape=(4, 3, 2))
x = Conv2D(3, 2)(inputs)
a = Flatten()(x)
b = Conv2D(3, 2, activation='relu')(inputs)
b = Flatten()(b)
b = BatchNormalization()(b)
y = Add()([a, b])
y = Dense(3)(y)
model = Model(inputs, y)
""",
    # two inputs, two outputs, Identity and Dropout (inference: no-ops)
    "multi_io": """
img = Input(shape=(6, 6, 2))
vec = Input(shape=(4,))
x = Conv2D(4, 3)(img)
x = GlobalMaxPooling2D()(x)
v = Dense(4, activation='relu')(vec)
v = Dropout(0.5)(v)
y = Concatenate()([x, v])
y = Identity()(y)
p = Dense(3, activation='softmax')(y)
q = Multiply()([x, v])
model = Model([img, vec], [p, q])
""",
    # Keras 3's arithmetic on tensors (ops, not layers): MobileNetV3's hard swish
    "tensor_ops": """
inputs = Input(shape=(5, 5, 3))
x = Conv2D(4, 3, padding='same')(inputs)
h = ReLU(6.)(x + 3.) * (1. / 6.)
y = Add()([x * h, x])
z = 1 - y / 2.0
w = -z + x
outputs = GlobalAveragePooling2D()(w)
model = Model(inputs, outputs)
""",
}


def _inputs(model, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, *n.shape)).astype(np.float32) for n in model.ir.inputs]


def _torch_in(xs, channels_last):
    out = []
    for x in xs:
        t = torch.from_numpy(to_channels_first(x))
        if channels_last and t.ndim == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        out.append(t)
    return out


def _twin(model, channels_last, **kw):
    module = torch_module(model.analysis, model.weights, **kw)
    return module.to(memory_format=torch.channels_last) if channels_last else module


def _as_list(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("name", GRAPHS)
def test_twin_of_graph_equals_reference_inference(name, channels_last):
    model = model_from(GRAPHS[name].strip(), name)
    model.set_weights(random_weights(model, 1))
    xs = _inputs(model)
    want = _as_list(Network(model.analysis, model.weights).forward(xs if len(xs) > 1 else xs[0]))
    with torch.inference_mode():
        got = _as_list(_twin(model, channels_last)(*_torch_in(xs, channels_last)))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_twin_of_resnet_fmnist(channels_last):
    model = cnnc.load(ROOT / "examples" / "resnet_fmnist.cnn")
    model.set_weights(random_weights(model, 2))
    x = np.random.default_rng(3).random((4, 28, 28, 1), dtype=np.float32)
    want = Network(model.analysis, model.weights).forward(x)
    with torch.inference_mode():
        got = _twin(model, channels_last)(*_torch_in([x], channels_last)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    # logits: the output layer's softmax left out
    with torch.inference_mode():
        logits = _twin(model, channels_last, output_activation=False)(*_torch_in([x], channels_last))
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_twin_trains_like_the_reference(channels_last):
    """Training mode (BN batch statistics): same outputs, same gradient of every weight,
    same moving statistics after the step."""
    model = cnnc.load(ROOT / "examples" / "resnet_fmnist.cnn")
    model.set_weights(random_weights(model, 4))
    module = _twin(model, channels_last).train()
    x = np.random.default_rng(5).random((6, 28, 28, 1), dtype=np.float32)
    r = np.random.default_rng(6).standard_normal((6, 10)).astype(np.float32)
    net = Network(model.analysis, model.weights)
    want = net.forward(x, training=True, rng=np.random.default_rng(0))
    grads = net.backward(r)
    got = module(*_torch_in([x], channels_last))
    (got * torch.from_numpy(r)).sum().backward()
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-4, atol=1e-6)
    checked = 0
    for (name, _, _), layer in zip(module.plan, module.layers):
        family = model.layer(name).layer.family
        if family == "conv":
            conv = _find(layer, torch.nn.Conv2d)
            g = conv.weight.grad.numpy().transpose(2, 3, 1, 0)        # (F, C, kh, kw) -> Keras
            np.testing.assert_allclose(g, grads[f"{name}/kernel"], rtol=2e-3, atol=2e-5)
        elif family == "batch_norm":
            bn = _find(layer, torch.nn.BatchNorm2d)
            np.testing.assert_allclose(bn.weight.grad.numpy(), grads[f"{name}/gamma"], rtol=2e-3, atol=2e-5)
            np.testing.assert_allclose(bn.bias.grad.numpy(), grads[f"{name}/beta"], rtol=2e-3, atol=2e-5)
            np.testing.assert_allclose(bn.running_mean.numpy(), model.weights[f"{name}/moving_mean"],
                                       rtol=1e-4, atol=1e-6)
        else:
            continue
        checked += 1
    assert checked == 16          # 8 convolutions, 8 BatchNormalizations


def _find(module, cls):
    return next(m for m in module.modules() if isinstance(m, cls))


def test_twin_refuses_what_it_cannot_mirror():
    model = model_from("input (5, 4)\nDropout(0.5, noise_shape=(None, 1, 4))\nDense(2)")
    with pytest.raises(NotImplementedError, match="noise_shape"):
        torch_module(model.analysis, model.weights)
