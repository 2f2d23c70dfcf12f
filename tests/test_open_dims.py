"""Open dimensions in models: sizes not fixed yet (a class count, free image sizes) are
checked for every value. Truth: the sets of sizes that work derived by hand from Keras's
formulas, and the same model checked at each concrete size (written as a number), which
must build exactly where the set says and give the expressions' values."""

from __future__ import annotations

import json
import random

import pytest

import cnnc
from cnnc.analysis.symbolic import evaluate
from cnnc.cli import main
from cnnc.frontends.cnn import check_text


def _check(text: str, **kw):
    return check_text(text, "m.cnn", **kw)


def _errors(checked) -> list[str]:
    return [d.message for d in checked.diagnostics if d.is_error]


def _sizes(text: str, name: str = "H") -> str:
    c = _check(text)
    assert not _errors(c), _errors(c)
    return c.analysis.constraints.describe(name)


# --- hand-derived sets -------------------------------------------------------------------------

@pytest.mark.parametrize("layers, want", [
    # valid conv k: floor((H - k)/1) + 1 >= 1  <=>  H >= k
    ("Conv2D(4, 3)", "at least 3"),
    ("Conv2D(4, 5)", "at least 5"),
    # strides: floor((H - 3)/2) + 1 >= 1  <=>  H >= 3
    ("Conv2D(4, 3, strides=2)", "at least 3"),
    # dilation 2 on k 3: extent 5
    ("Conv2D(4, 3, dilation_rate=2)", "at least 5"),
    # 'same' never shrinks to 0
    ("Conv2D(4, 7, padding='same', strides=3)", "any size"),
    # pool 2 after valid conv 3: floor((H - 2 - 2)/2) + 1 >= 1  <=>  H >= 4
    ("Conv2D(4, 3)\nMaxPooling2D(2)", "at least 4"),
    # pool 3 stride 2, then conv 3 valid: floor((H-3)/2)+1 >= 3  <=>  H >= 7
    ("MaxPooling2D(3, strides=2)\nConv2D(4, 3)", "at least 7"),
    # cropping (2, 3) leaves H - 5 >= 1
    ("Cropping2D(((2, 3), (0, 0)))", "at least 6"),
    # zero padding then a valid 5x5: H + 2 >= 5
    ("ZeroPadding2D(1)\nConv2D(4, 5)", "at least 3"),
    # up-sampling then a valid 5x5: 2H >= 5
    ("UpSampling2D(2)\nConv2D(4, 5)", "at least 3"),
])
def test_windows_give_the_sizes_that_work(layers, want):
    assert _sizes(f"input (H, 8, 3)\n{layers}\nGlobalAveragePooling2D()\nDense(2)") == want


UNET = """model unet
inputs = Input(shape=(H, W, 1))
c1 = Conv2D(8, 3, padding='same')(inputs)
p1 = MaxPooling2D()(c1)
c2 = Conv2D(8, 3, padding='same')(p1)
p2 = MaxPooling2D()(c2)
c3 = Conv2D(8, 3, padding='same')(p2)
p3 = MaxPooling2D()(c3)
c4 = Conv2D(8, 3, padding='same')(p3)
p4 = MaxPooling2D()(c4)
b = Conv2D(8, 3, padding='same')(p4)
u4 = Concatenate()([UpSampling2D()(b), c4])
u3 = Concatenate()([UpSampling2D()(u4), c3])
u2 = Concatenate()([UpSampling2D()(u3), c2])
u1 = Concatenate()([UpSampling2D()(u2), c1])
out = Conv2D(1, 1, activation='sigmoid')(u1)
model = Model(inputs, out)
"""


def test_u_net_with_four_poolings_needs_multiples_of_16():
    c = _check(UNET)
    assert not _errors(c)
    assert c.analysis.constraints.describe("H") == "multiples of 16"
    assert c.analysis.constraints.describe("W") == "multiples of 16"
    # the narrowing checks are the skip connections and the poolings
    layers = {k.layer for k in c.analysis.constraints.checks_of("H")}
    assert {"concatenate", "concatenate_3"} <= layers


def test_valid_convolutions_in_a_u_net_never_fit_the_skip():
    """The classic mistake: padding='valid' in the encoder. The skip connection's sizes
    differ for every input size: an error at the Concatenate, with the arithmetic."""
    text = UNET.replace("c2 = Conv2D(8, 3, padding='same')(p1)", "c2 = Conv2D(8, 3)(p1)")
    c = _check(text)
    errors = _errors(c)
    assert len(errors) == 1 and "Concatenate" in errors[0] and "differ for every value" in errors[0]
    bad = [d for d in c.diagnostics if d.is_error][0]
    assert bad.span.line == 15


def test_checks_that_no_size_satisfies_together_name_both_sides():
    # b needs 2*floor(H/2) == H (H even); d needs 2*floor((H+1)/2) == H + 1 (H odd)
    text = """inputs = Input(shape=(H, 4, 2))
a = MaxPooling2D((2, 1))(inputs)
b = Concatenate()([UpSampling2D((2, 1))(a), inputs])
p = ZeroPadding2D(((0, 1), (0, 0)))(inputs)
q = MaxPooling2D((2, 1))(p)
d = Concatenate()([UpSampling2D((2, 1))(q), p])
model = Model(inputs, [b, d])
"""
    errors = _errors(_check(text))
    assert len(errors) == 1
    assert "even sizes" in errors[0] and "odd sizes" in errors[0] and "no size" in errors[0]


def test_broadcasting_merges_accept_a_size_of_one():
    # 2*ceil(H/2) == H for even H; for H = 1 the up-sampled side is 2 and the input 1
    text = """inputs = Input(shape=(H, 4, 2))
a = MaxPooling2D((2, 1), padding='same')(inputs)
b = Add()([UpSampling2D((2, 1))(a), inputs])
model = Model(inputs, b)
"""
    s = _check(text).analysis.constraints.sets["H"]
    assert s.first(5) == [1, 2, 4, 6, 8]


# --- class counts ------------------------------------------------------------------------------

CLASSIFIER = """num_classes: int
input (32, 32, 3)
Conv2D(32, 3, activation='relu')
GlobalAveragePooling2D()
Dense(128, activation='relu')
Dense(num_classes, activation='softmax')
compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
"""


def test_a_class_count_leaves_every_other_size_fixed():
    a = _check(CLASSIFIER).analysis
    last = a.infos[-1]
    assert str(last.output.shape[0]) == "num_classes"
    assert str(last.params) == "129*num_classes"
    # 896 (conv) + 0 + 4,224 (dense 32->128) fixed, plus 129 per class
    assert evaluate(a.total_params, {"num_classes": 0}) == 896 + 32 * 128 + 128
    assert [str(n) for n in last.weights[0].shape] == ["128", "num_classes"]
    assert a.infos[0].params == 896 and a.infos[2].params == 4224


def test_define_gives_the_same_model_as_writing_the_number():
    fixed = _check(CLASSIFIER.replace("num_classes: int\n", "").replace("num_classes", "10"))
    defined = _check(CLASSIFIER, sizes={"num_classes": 10})
    assert [i.output_shape for i in defined.analysis.infos] == [i.output_shape for i in fixed.analysis.infos]
    assert defined.analysis.total_params == fixed.analysis.total_params == 896 + 4224 + 1290


def test_the_api_refuses_to_build_weights_that_are_still_open():
    m = cnnc.loads(CLASSIFIER)
    assert str(m.total_params) == "129*num_classes + 5120"
    with pytest.raises(cnnc.UsageError) as e:
        m.weights
    assert "num_classes" in e.value.message
    assert any("--define num_classes=N" in n for n in e.value.notes)
    assert any("line 1" in n and "dense_1/kernel" in n for n in e.value.notes)
    fixed = cnnc.loads(CLASSIFIER, define={"num_classes": 3})
    assert fixed.weights["dense_1/kernel"].shape == (128, 3)


def test_bad_defines_are_usage_errors():
    with pytest.raises(cnnc.UsageError, match="no open size named 'classes'"):
        cnnc.loads(CLASSIFIER, define={"classes": 3})
    with pytest.raises(cnnc.UsageError, match="whole number >= 1"):
        cnnc.loads(CLASSIFIER, define={"num_classes": 0})
    with pytest.raises(cnnc.UsageError):
        cnnc.loads(CLASSIFIER, define=["num_classes"])


def test_open_counts_must_stay_positive():
    c = _check("num_classes: int\ninput (4,)\nDense(num_classes - 1)")
    assert any("positive for every value" in m for m in _errors(c))
    ok = _check("num_classes: int\ninput (4,)\nDense(num_classes + 1)\nDense(2 * num_classes)")
    assert not _errors(ok)
    # (4 + 1)*(n + 1) and (n + 1)*2n + 2n
    assert [str(i.params) for i in ok.analysis.infos] == ["5*num_classes + 5",
                                                         "4*num_classes + 2*num_classes^2"]


def test_keras_none_keeps_keras_refusals():
    """Dense on a None last axis: Keras refuses it, and so does cnnc."""
    errors = _errors(_check("input (None, None, 3)\nFlatten()\nDense(4)"))
    assert errors and "Dense needs the last dimension" in errors[0]
    # a size named in the input is Keras's None too
    assert _errors(_check("input (H, W, 3)\nFlatten()\nDense(4)"))


# --- concrete checking at every value agrees with the symbolic result -----------------------

def _random_stack(rng: random.Random) -> list[str]:
    layers = []
    for _ in range(rng.randint(1, 6)):
        kind = rng.choice(["conv", "pool", "same", "up", "pad", "crop", "dil"])
        if kind == "conv":
            layers.append(f"Conv2D(2, {rng.randint(1, 4)}, strides={rng.randint(1, 3)})")
        elif kind == "pool":
            layers.append(f"MaxPooling2D({rng.randint(1, 3)}, strides={rng.randint(1, 3)})")
        elif kind == "same":
            layers.append(f"AveragePooling2D({rng.randint(2, 3)}, padding='same')")
        elif kind == "up":
            layers.append(f"UpSampling2D({rng.randint(1, 3)})")
        elif kind == "pad":
            layers.append(f"ZeroPadding2D({rng.randint(1, 2)})")
        elif kind == "crop":
            layers.append(f"Cropping2D(({rng.randint(0, 2)}, {rng.randint(0, 2)}))")
        else:
            layers.append(f"Conv2D(2, 3, dilation_rate={rng.randint(1, 3)})")
    return layers


@pytest.mark.parametrize("seed", range(40))
def test_concrete_inference_at_every_value_agrees_with_the_symbolic_result(seed):
    rng = random.Random(seed)
    body = "\n".join(_random_stack(rng))
    symbolic = _check(f"input (H, 5, 2)\n{body}")
    if _errors(symbolic):
        # no value works: every concrete size must be refused too
        for v in range(1, 40):
            assert _errors(_check(f"input ({v}, 5, 2)\n{body}")), v
        return
    a = symbolic.analysis
    s = a.constraints.sets.get("H")
    for v in range(1, 60):
        concrete = _check(f"input ({v}, 5, 2)\n{body}")
        works = not _errors(concrete)
        assert works == (s is None or v in s), (v, body, _errors(concrete))
        if works:
            got = [i.output_shape for i in concrete.analysis.infos]
            want = [tuple(evaluate(n, {"H": v}) for n in i.output.shape) for i in a.infos]
            assert got == want


# --- the command line ---------------------------------------------------------------------------

def test_cli_summary_shows_the_open_sizes_and_define_fixes_them(tmp_path, capsys):
    (tmp_path / "m.cnn").write_text(CLASSIFIER)
    assert main(["summary", str(tmp_path / "m.cnn")]) == 0
    out = capsys.readouterr().out
    assert "(None, num_classes)" in out and "129*num_classes" in out
    assert "Total params: 5,120 + 129*num_classes" in out
    assert "num_classes: any size  [line 1]" in out
    assert main(["summary", str(tmp_path / "m.cnn"), "--define", "num_classes=10"]) == 0
    fixed = capsys.readouterr().out
    assert "Total params: 6,410" in fixed and "Open sizes" not in fixed
    assert main(["summary", str(tmp_path / "m.cnn"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["params"] == "129*num_classes + 5120"
    assert data["dimensions"][0]["name"] == "num_classes"


def test_cli_commands_that_build_weights_ask_for_the_size(tmp_path, capsys):
    (tmp_path / "m.cnn").write_text(CLASSIFIER)
    out = tmp_path / "m.onnx"
    assert main(["compile", str(tmp_path / "m.cnn"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cnnc compile needs the weights" in err and "--define num_classes=N" in err
    assert not out.exists()
    assert main(["compile", str(tmp_path / "m.cnn"), "-o", str(out), "-q",
                 "--define", "num_classes=4"]) == 0
    assert out.exists()
    assert main(["check", str(tmp_path / "m.cnn"), "--define", "nope=3"]) == 2
    assert "no open size named 'nope'" in capsys.readouterr().err


def test_compile_keeps_open_image_sizes_symbolic_and_runs_them(tmp_path):
    import numpy as np
    import onnxruntime as ort
    (tmp_path / "u.cnn").write_text(UNET)
    m = cnnc.load(tmp_path / "u.cnn")
    m.init_weights(3)
    m.save_weights(tmp_path / "u.npz")
    out = tmp_path / "u.onnx"
    assert main(["compile", str(tmp_path / "u.cnn"), "-o", str(out), "-q",
                 "--weights", str(tmp_path / "u.npz")]) == 0
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    dims = [d for d in sess.get_inputs()[0].shape]
    assert dims == ["batch", "H", "W", 1]
    for size in (16, 48, 64):
        x = np.random.default_rng(size).standard_normal((2, size, 32, 1)).astype(np.float32)
        y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(y, m.predict(x), atol=1e-5)


def test_input_shape_fixes_a_keras_none_and_data_of_a_bad_size_is_refused(tmp_path, capsys):
    import numpy as np
    text = UNET.replace("Input(shape=(H, W, 1))", "Input(shape=(None, None, 1))")
    (tmp_path / "u.cnn").write_text(text)
    assert main(["summary", str(tmp_path / "u.cnn"), "--input-shape", "32,48,1"]) == 0
    assert "(None, 32, 48, 1)" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "u.cnn"), "--input-shape", "30,48,1"]) == 1
    m = cnnc.load(tmp_path / "u.cnn")
    m.init_weights(0)
    with pytest.raises(cnnc.UsageError) as e:
        m.predict(np.zeros((1, 30, 32, 1), np.float32))
    assert any("H = 30" in n and "multiples of 16" in n for n in e.value.notes)


def test_keras_files_with_none_sizes_get_their_sets(capsys):
    """tests/data/keras/fcn_open.json: Keras's to_json() of a small FCN on (None, None, 3)
    with one pooling undone by an up-sampling and concatenated with the encoder."""
    from .conftest import ROOT
    path = ROOT / "tests" / "data" / "keras" / "fcn_open.json"
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "H: even sizes  [the height of input 'image' (None)]" in out
    assert "concatenate needs 2*floor(H/2) == H on axis 1" in out
    assert "(None, None, None, 16)" in out          # Keras's own view in the table


def test_plot_and_markdown_show_open_counts(tmp_path, capsys):
    (tmp_path / "m.cnn").write_text(CLASSIFIER)
    for suffix in ("dot", "mmd"):
        out = tmp_path / f"m.{suffix}"
        assert main(["plot", str(tmp_path / "m.cnn"), "-o", str(out)]) == 0
        text = out.read_text()
        assert "(None, num_classes)" in text and "129*num_classes" in text, suffix
    assert main(["summary", str(tmp_path / "m.cnn"), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "`(None, num_classes)`" in md and "- num_classes: any size  [line 1]" in md
