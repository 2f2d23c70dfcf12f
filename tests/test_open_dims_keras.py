"""Open dimensions against Keras itself (dev-only oracle; CI has no Keras and skips this).

For each model cnnc checks once with open sizes (an open image height and width, an open
class count) and reports the sizes that work and every shape and parameter count as an
expression. Keras then builds the same model at concrete values, chosen at random among
sizes cnnc says work and sizes it says do not: Keras must build it exactly when the value
is in cnnc's set, and every layer's output shape and parameter count must equal cnnc's
expressions evaluated there. The U-Nets and the applications are built once on (None,
None, 3), as users build them; at each size from 1 to 256 Keras then builds every layer
at that size, in graph order: each layer's own shape inference (which refuses an output
size of zero or less), and the merges' own build checks (Concatenate's other axes, Add's
broadcasting). It must succeed exactly at the sizes cnnc says work, with the output shape
cnnc gives. (Running the model on data would be the same test, but TensorFlow's max_pool
dies with a floating point exception on some sizes that do not work; and Keras's
`compute_output_spec` of the whole model skips the merges' checks.)

    CNNC_KERAS_OPEN=300 TF_CPP_MIN_LOG_LEVEL=3 /tmp/kvenv/bin/python -m pytest -m keras \
        tests/test_open_dims_keras.py -q
"""

from __future__ import annotations

import os
import random

import pytest

from cnnc.analysis.symbolic import evaluate
from cnnc.frontends.cnn import check_text
from cnnc.frontends.python import check_script

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.keras

MODELS = int(os.environ.get("CNNC_KERAS_OPEN", "60"))
APP_SIZES = range(1, 257)


def _builds_at(model, shape) -> tuple[bool, object]:
    """(builds, the output spec or the error): every operation of the functional `model`
    (layers, and keras.ops such as MobileNetV3's x * y) built at input `shape`, in graph
    order, as Keras builds a model at a concrete size."""
    from keras.src.layers.merging.base_merge import Merge
    from keras.src.layers.merging.concatenate import Concatenate
    specs = {id(model.inputs[0]): keras.KerasTensor(shape)}
    try:
        for op in model.operations:
            if isinstance(op, keras.layers.InputLayer):
                continue
            for node in op._inbound_nodes:
                args, kwargs = node.arguments.fill_in(specs)
                if isinstance(op, (Merge, Concatenate)):
                    op.build([a.shape for a in args[0]])       # its own checks, at these sizes
                kwargs.pop("training", None)
                out = op.compute_output_spec(*args, **kwargs)
                outs = out if isinstance(out, (list, tuple)) else [out]
                for t, s in zip(node.output_tensors, outs):
                    specs[id(t)] = s
        return True, specs[id(model.outputs[0])]
    except Exception as e:  # noqa: BLE001 - any Keras refusal counts as "does not build"
        return False, f"{type(e).__name__}: {e}"


def _build_keras(text: str, values: dict[str, int]):
    """The .cnn model (functional form, which is Python) built by Keras at `values`
    (sizes and class count); (built, model or the error)."""
    code = text.replace("num_classes: int\n", "")
    for name, value in values.items():
        code = code.replace(f"({name}", f"({value}").replace(f", {name},", f", {value},")
        code = code.replace(f"Dense({name})", f"Dense({value})")
    ns = {"Input": keras.Input, "Model": keras.Model}
    ns.update({k: getattr(keras.layers, k) for k in dir(keras.layers) if k[:1].isupper()})
    keras.backend.clear_session()
    try:
        exec(compile(code, "<model>", "exec"), ns)
    except Exception as e:  # noqa: BLE001 - Keras refuses to build it at these sizes
        return False, e
    return True, ns["model"]


# --- random stacks and graphs ---------------------------------------------------------------

def _random_model(rng: random.Random) -> str:
    """A functional model on Input((H, W, 2)) with an open class count: windows that may
    or may not fit, up-sampling, padding, cropping, and skip connections merged by Add or
    Concatenate after a round trip through pooling and up-sampling."""
    lines = ["num_classes: int", "inputs = Input(shape=(H, W, 2))", "x = inputs"]
    skips = []
    for i in range(rng.randint(2, 7)):
        kind = rng.choice(["conv", "pool", "up", "pad", "crop", "sep", "down", "skip", "skip"])
        if kind == "conv":
            lines.append(f"x = Conv2D(4, {rng.randint(1, 4)}, strides={rng.randint(1, 2)}, "
                         f"padding='{rng.choice(['valid', 'same'])}')(x)")
        elif kind == "pool":
            lines.append(f"x = MaxPooling2D({rng.randint(2, 3)}, padding='{rng.choice(['valid', 'same'])}')(x)")
        elif kind == "up":
            lines.append(f"x = UpSampling2D({rng.randint(2, 3)})(x)")
        elif kind == "pad":
            lines.append(f"x = ZeroPadding2D({rng.randint(1, 2)})(x)")
        elif kind == "crop":
            lines.append(f"x = Cropping2D({rng.randint(1, 2)})(x)")
        elif kind == "sep":
            lines.append(f"x = SeparableConv2D(4, 3, dilation_rate={rng.randint(1, 2)})(x)")
        elif kind == "down":
            skips.append(i)
            lines.append(f"s{i} = x")
            lines.append(f"x = MaxPooling2D(2, padding='{rng.choice(['valid', 'same'])}')(x)")
            lines.append("x = Conv2D(4, 3, padding='same')(x)")
        elif skips:
            s = skips.pop()
            lines.append("x = UpSampling2D(2)(x)")
            lines.append(f"x = Conv2D(4, 1)(x)")
            lines.append(f"s{s} = Conv2D(4, 1)(s{s})")
            merge = rng.choice(["Add()", "Concatenate()", "Multiply()"])
            lines.append(f"x = {merge}([x, s{s}])")
    lines += ["x = GlobalAveragePooling2D()(x)", "x = Dense(num_classes)(x)",
              "model = Model(inputs, x)"]
    return "\n".join(lines) + "\n"


def _values_to_try(s, rng: random.Random, k: int = 6) -> list[int]:
    """Sizes in 1..64: some that work (by cnnc's set), some that do not."""
    inside = [v for v in range(1, 65) if s is None or v in s]
    outside = [v for v in range(1, 65) if s is not None and v not in s]
    picks = rng.sample(inside, min(len(inside), k // 2)) + rng.sample(outside, min(len(outside), k // 2))
    while len(picks) < k:
        picks.append(rng.randint(1, 64))
    return picks


@pytest.mark.parametrize("seed", range(MODELS))
def test_random_graphs_with_open_sizes_match_keras(seed):
    rng = random.Random(seed)
    text = _random_model(rng)
    checked = check_text(text, "m.cnn")
    errors = [d.message for d in checked.diagnostics if d.is_error]
    classes = rng.randint(1, 12)
    a = checked.analysis
    c = a.constraints
    for h in _values_to_try(None if errors else c.sets.get("H"), rng):
        w = rng.choice(_values_to_try(None if errors else c.sets.get("W"), rng, 2))
        values = {"H": h, "W": w, "num_classes": classes}
        works = not errors and all(values[n] in c.sets[n] for n in ("H", "W") if n in c.sets) \
            and not c.failures(values)
        built, kmodel = _build_keras(text, values)
        assert built == works, (text, values, errors, None if built else str(kmodel)[:300])
        if not built:
            continue
        layers = {l.name: l for l in kmodel.layers}
        for info in a.infos:
            want = tuple(evaluate(n, values) for n in info.output.shape)
            assert tuple(layers[info.name].output.shape[1:]) == want, (info.name, text, values)
            assert evaluate(info.params, values) == layers[info.name].count_params(), (info.name, text)


# --- the keras-io segmentation U-Net, and a four-level U-Net, at every size ------------------

KERAS_IO_UNET = """inputs = Input(shape=(H, W, 3))
x = Conv2D(32, 3, strides=2, padding='same')(inputs)
x = BatchNormalization()(x)
x = Activation('relu')(x)
previous = x
for filters in [64, 128, 256]:
    x = Activation('relu')(x)
    x = SeparableConv2D(filters, 3, padding='same')(x)
    x = BatchNormalization()(x)
    x = Activation('relu')(x)
    x = SeparableConv2D(filters, 3, padding='same')(x)
    x = BatchNormalization()(x)
    x = MaxPooling2D(3, strides=2, padding='same')(x)
    residual = Conv2D(filters, 1, strides=2, padding='same')(previous)
    x = Add()([x, residual])
    previous = x
for filters in [256, 128, 64, 32]:
    x = Activation('relu')(x)
    x = Conv2DTranspose(filters, 3, padding='same')(x)
    x = BatchNormalization()(x)
    x = Activation('relu')(x)
    x = Conv2DTranspose(filters, 3, padding='same')(x)
    x = BatchNormalization()(x)
    x = UpSampling2D(2)(x)
    residual = UpSampling2D(2)(previous)
    residual = Conv2D(filters, 1, padding='same')(residual)
    x = Add()([x, residual])
    previous = x
outputs = Conv2D(3, 3, activation='softmax', padding='same')(x)
model = Model(inputs, outputs)
"""

FOUR_LEVEL_UNET = """inputs = Input(shape=(H, W, 1))
c1 = Conv2D(8, 3, padding='same')(inputs)
p1 = MaxPooling2D()(c1)
c2 = Conv2D(8, 3, padding='same')(p1)
p2 = MaxPooling2D()(c2)
c3 = Conv2D(8, 3, padding='same')(p2)
p3 = MaxPooling2D()(c3)
c4 = Conv2D(8, 3, padding='same')(p3)
p4 = MaxPooling2D()(c4)
b = Conv2D(8, 3)(p4)
b = Conv2DTranspose(8, 3)(b)
u4 = Concatenate()([UpSampling2D()(b), c4])
u3 = Concatenate()([UpSampling2D()(u4), c3])
u2 = Concatenate()([UpSampling2D()(u3), c2])
u1 = Concatenate()([UpSampling2D()(u2), c1])
out = Conv2D(1, 1, activation='sigmoid')(u1)
model = Model(inputs, out)
"""


@pytest.mark.parametrize("name, text", [("keras_io_unet", KERAS_IO_UNET),
                                        ("four_level_unet", FOUR_LEVEL_UNET)])
def test_u_nets_at_every_size_from_1_to_256(name, text):
    """The keras-io segmentation U-Net (the script reader follows its loops, so it is
    read as the script it is) and a four-level U-Net whose bottleneck needs 3x3."""
    script = "import keras\nfrom keras.layers import *\nfrom keras import Input, Model\n" + \
        text.replace("(H, W,", "(None, None,")
    sc = check_script(f"{name}.py", script)
    (found,) = sc.models
    assert found.checked.ok, [d.message for d in found.checked.diagnostics]
    a = found.checked.analysis
    c = a.constraints
    ns = {}
    keras.backend.clear_session()
    exec(compile(script, name, "exec"), ns)
    kmodel = ns["model"]
    for size in APP_SIZES:
        values = {"H": size, "W": size}
        works = all(size in c.sets[n] for n in ("H", "W") if n in c.sets) and not c.failures(values)
        runs, out = _builds_at(kmodel, (1, size, size, kmodel.inputs[0].shape[-1]))
        assert runs == works, (name, size, c.describe("H"), None if runs else str(out)[:300])
        if runs:
            want = tuple(evaluate(n, values) for n in a.infos[-1].output.shape)
            assert tuple(out.shape[1:]) == want, (name, size)


# --- the Keras Applications without their top, on images of any size -------------------------

APPS = ["DenseNet121", "EfficientNetB0", "InceptionV3", "MobileNet", "MobileNetV2",
        "MobileNetV3Small", "NASNetMobile", "ResNet50", "ResNet50V2", "VGG16", "Xception"]


@pytest.mark.parametrize("app", APPS)
def test_applications_without_top_at_every_size_from_1_to_256(app):
    script = ("import keras\nbase = keras.applications." + app +
              "(include_top=False, weights=None, input_shape=(None, None, 3))\n")
    sc = check_script(f"{app}.py", script)
    if app == "NASNetMobile":
        # Keras's NASNet picks its layers by comparing sizes while it builds: on (None, None, 3)
        # it is another network than at 224, which cnnc transcribes; cnnc says so
        assert any("depend on its input size" in d.message for d in sc.diagnostics)
        return
    (found,) = sc.models
    assert found.checked.ok, [d.message for d in found.checked.diagnostics]
    a = found.checked.analysis
    c = a.constraints
    keras.backend.clear_session()
    kmodel = getattr(keras.applications, app)(include_top=False, weights=None,
                                              input_shape=(None, None, 3))
    assert a.infos[-1].output_shape[-1] == kmodel.output.shape[-1]
    for size in APP_SIZES:
        values = {"H": size, "W": size}
        works = all(size in c.sets[n] for n in ("H", "W") if n in c.sets) and not c.failures(values)
        runs, out = _builds_at(kmodel, (1, size, size, 3))
        assert runs == works, (app, size, c.describe("H"), None if runs else str(out)[:300])
        if runs:
            want = tuple(evaluate(n, values) for n in a.infos[-1].output.shape)
            assert tuple(out.shape[1:]) == want, (app, size)


SIZES = [(32, 32), (33, 35), (75, 75), (96, 97), (97, 97), (127, 130), (224, 224), (225, 231)]


@pytest.mark.parametrize("app", APPS)
def test_applications_at_even_and_odd_sizes_layer_by_layer(app):
    """Keras pads some applications by the parity of each stride-2 stage (correct_pad) and
    NASNet picks its layers by its cells' sizes: every layer's output shape and parameter
    count at odd and even sizes, against Keras built at that size."""
    for h, w in SIZES:
        script = (f"import keras\nbase = keras.applications.{app}(include_top=False, weights=None, "
                  f"input_shape=({h}, {w}, 3))\n")
        sc = check_script(f"{app}.py", script)
        keras.backend.clear_session()
        try:
            kmodel = getattr(keras.applications, app)(include_top=False, weights=None,
                                                      input_shape=(h, w, 3))
        except ValueError:                        # below its minimum size: cnnc refuses too
            assert any(d.is_error for d in sc.diagnostics), (app, h, w)
            continue
        if not sc.models or not sc.models[0].checked.ok:
            messages = [d.message for d in sc.diagnostics]
            # NASNet away from multiples of 32: cnnc says why it does not follow Keras there
            assert app == "NASNetMobile" and any("multiples of 32" in m for m in messages), \
                (app, h, w, messages)
            continue
        infos = {i.name: i for i in sc.models[0].checked.analysis.infos}
        for layer in kmodel.layers[1:]:
            info = infos[layer.name]
            assert info.output_shape == tuple(layer.output.shape[1:]), (app, h, w, layer.name)
            assert info.params == layer.count_params(), (app, h, w, layer.name)
