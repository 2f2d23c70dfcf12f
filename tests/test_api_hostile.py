"""The Python API given wrong types and values, as a careless or hostile caller would.

Every public function (cnnc.load, cnnc.loads, the Model methods, everything in
cnnc.__all__) answers a bad argument with cnnc's own UsageError or CnncError and a
message that names the problem, never a TypeError, AttributeError, KeyError or
ValueError from deep inside, and never one of NumPy's RuntimeWarnings: the tests
run with warnings as errors.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc import CnncError, UsageError
from cnnc.support.diagnostics import NumericWarning

TEXT = """model tiny
input (4, 4, 1)
Conv2D(2, (3, 3), activation='relu')
Flatten()
Dense(3, activation='softmax')
compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
"""

RNG = np.random.default_rng(0)
X = RNG.random((5, 4, 4, 1)).astype("float32")
Y = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1]]


@pytest.fixture
def model():
    return cnnc.loads(TEXT)


def refused(call, *words: str) -> str:
    """`call()` raises UsageError or CnncError (no other exception, no warning) whose
    message mentions each of `words`; the message."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises((UsageError, CnncError)) as info:
            call()
    message = "\n".join([str(info.value), *getattr(info.value, "notes", [])])
    assert str(info.value).strip(), "an empty message"
    assert "Traceback" not in message
    for w in words:
        assert w in message, f"{w!r} not in {message!r}"
    return message


class Odd:
    """Neither a path, nor text, nor an array."""

    def __repr__(self):
        return "Odd()"


# --- cnnc.load / cnnc.loads ------------------------------------------------------

@pytest.mark.parametrize("path,words", [
    (None, ["file path", "None"]), (3, ["file path", "int"]), (3.5, ["file path", "float"]),
    (["net.cnn"], ["file path", "list"]), (Odd(), ["file path", "Odd"]),
    ("", ["empty path"]), ("net\x00.cnn", ["NUL"]),
    ("/nonexistent/net.cnn", ["cannot read"]), (b"/nonexistent/net.cnn", ["cannot read"]),
])
def test_load_bad_paths(path, words):
    refused(lambda: cnnc.load(path), *words)


def test_load_directory_and_binary(tmp_path):
    refused(lambda: cnnc.load(tmp_path), "not a regular file")
    binary = tmp_path / "net.cnn"
    binary.write_bytes(b"\x00\x01\x02model")
    refused(lambda: cnnc.load(binary), "binary")


def test_load_takes_str_path_and_bytes(tmp_path):
    f = tmp_path / "net.cnn"
    f.write_text(TEXT)
    assert cnnc.load(f).name == cnnc.load(str(f)).name == cnnc.load(bytes(f)).name == "tiny"


@pytest.mark.parametrize("text,words", [
    (None, ["text", "None"]), (3, ["text", "int"]), (["model x"], ["text", "list"]),
    (Odd(), ["Odd"]), (b"\xff\xfe bad", ["UTF-8"]), ("model x\x00", ["NUL"]),
])
def test_loads_bad_text(text, words):
    refused(lambda: cnnc.loads(text), *words)


def test_loads_bytes_as_utf8_and_bad_path():
    assert cnnc.loads(TEXT.encode()).name == "tiny"
    refused(lambda: cnnc.loads(TEXT, path=3), "path", "int")
    refused(lambda: cnnc.loads(TEXT, path=None), "path", "None")


def test_model_constructor_needs_a_checked_model():
    for bad in (None, 3, TEXT):
        refused(lambda: cnnc.Model(bad), "cnnc.load")


def test_diagnostic_checks_its_fields():
    refused(lambda: cnnc.Diagnostic("fatal", "x"), "severity")
    refused(lambda: cnnc.Diagnostic("error", 3), "message")


# --- arrays: predict, evaluate, fit ------------------------------------------------

BAD_X = {
    "None": (None, ["x", "array", "None"]),
    "str": ("pixels", ["x", "array", "str"]),
    "bytes": (b"pixels", ["x", "array"]),
    "dict": ({"x": X}, ["x", "array", "dict"]),
    "set": ({1, 2}, ["x", "array", "set"]),
    "ragged": ([[[1.0]], [[1.0], [2.0]]], ["x", "ragged"]),
    "object": (np.array([Odd()] * 5, dtype=object), ["x", "objects"]),
    "complex": (X.astype(complex), ["x", "complex"]),
    "strings": (np.array(["a"] * 5), ["x", "strings"]),
    "datetime": (np.zeros(5, "datetime64[s]"), ["x", "dates"]),
    "nan": (np.where(np.arange(X.size).reshape(X.shape) == 20, np.nan, X), ["x", "NaN", "sample 1"]),
    "inf": (np.full_like(X, np.inf), ["x", "infinite", "sample 0"]),
    "neg-inf": (np.full_like(X, -np.inf), ["x", "infinite"]),
    "beyond-float32": (np.full(X.shape, 1e300), ["x", "float32"]),
    "scalar": (3.0, ["x", "scalar"]),
    "rank1": (np.zeros(5), ["x", "shape"]),
    "rank5": (np.zeros((5, 4, 4, 1, 1)), ["x", "shape"]),
    "wrong-size": (np.zeros((5, 5, 5, 1)), ["x", "shape"]),
}


@pytest.mark.parametrize("case", BAD_X)
def test_predict_bad_x(model, case):
    value, words = BAD_X[case]
    refused(lambda: model.predict(value), *words)


@pytest.mark.parametrize("case", BAD_X)
def test_evaluate_bad_x(model, case):
    value, words = BAD_X[case]
    refused(lambda: model.evaluate(value, Y, verbose=0), *words)


@pytest.mark.parametrize("case", BAD_X)
def test_fit_bad_x(model, case):
    value, words = BAD_X[case]
    refused(lambda: model.fit(value, Y, verbose=0), *words)


BAD_Y = {
    "None": (None, ["y", "None"]),
    "str": ("labels", ["y", "str"]),
    "ragged": ([[1.0], [1.0, 2.0]], ["y", "ragged"]),
    "complex": (Y.astype(complex), ["y", "complex"]),
    "object": (np.array([Odd()] * 5, dtype=object), ["y", "objects"]),
    "nan": (np.full_like(Y, np.nan), ["y", "NaN"]),
    "inf": (np.full_like(Y, np.inf), ["y", "infinite"]),
    "empty": (np.zeros((0, 3)), ["samples"]),
    "too-few": (Y[:3], ["samples"]),
    "class-id-out-of-range": (np.array([0, 1, 2, 3, 0]), ["class id 3"]),
}


@pytest.mark.parametrize("case", BAD_Y)
def test_evaluate_bad_y(model, case):
    value, words = BAD_Y[case]
    refused(lambda: model.evaluate(X, value, verbose=0), *words)


@pytest.mark.parametrize("case", BAD_Y)
def test_fit_bad_y(model, case):
    value, words = BAD_Y[case]
    refused(lambda: model.fit(X, value, verbose=0), *words)


def test_empty_data(model):
    refused(lambda: model.fit(np.zeros((0, 4, 4, 1)), np.zeros((0, 3)), verbose=0), "no samples")
    refused(lambda: model.evaluate(np.zeros((0, 4, 4, 1)), np.zeros((0, 3)), verbose=0), "no samples")
    assert model.predict(np.zeros((0, 4, 4, 1))).shape == (0, 3)


def test_lists_and_other_real_dtypes_are_accepted(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.predict(X.tolist()).shape == (5, 3)
        for dtype in ("float16", "float64", "int64", "uint8", "bool"):
            assert model.predict(X.astype(dtype)).shape == (5, 3)
        model.evaluate(X.tolist(), Y.tolist(), verbose=0)
        model.fit(X, np.array([0, 1, 2, 0, 1]), verbose=0)


# --- keyword values --------------------------------------------------------------------

BAD_FIT_KW = [
    ("batch_size", 0), ("batch_size", -1), ("batch_size", 2.5), ("batch_size", "32"),
    ("batch_size", True),
    ("epochs", 0), ("epochs", -1), ("epochs", "2"), ("epochs", 1.5),
    ("validation_split", 2), ("validation_split", -0.1), ("validation_split", 1.0),
    ("validation_split", "0.1"), ("validation_split", float("nan")),
    ("shuffle", "x"), ("shuffle", 1),
    ("verbose", 5), ("verbose", "loud"), ("verbose", -1), ("verbose", [1]),
    ("seed", -1), ("seed", "s"), ("initial_epoch", -1), ("initial_epoch", "a"),
    ("validation_batch_size", 0), ("validation_batch_size", "a"),
    ("validation_data", 3), ("validation_data", (X,)), ("validation_data", (X, Y, Y)),
    ("validation_data", (X, "y")), ("validation_data", (np.full_like(X, np.nan), Y)),
    ("learning_rate", 0), ("learning_rate", -1), ("learning_rate", "a"),
    ("learning_rate", float("nan")), ("learning_rate", float("inf")),
    ("loss", 3), ("loss", "bogus"), ("loss", ["mse"]),
    ("optimizer", 3), ("optimizer", "bogus"), ("optimizer", Odd()),
    ("metrics", "accuracy"), ("metrics", 3), ("metrics", ["bogus"]), ("metrics", [3]),
    ("checkpoint", 3), ("checkpoint", ""), ("checkpoint_every", -1), ("checkpoint_every", "a"),
    ("checkpoint_every", float("nan")), ("divisor", 0), ("divisor", "a"), ("divisor", -1.0),
    ("divisor", float("nan")), ("scale", "yes"), ("resume", "yes"),
    ("on_epoch_end", 3), ("stream", 3),
    ("bogus_keyword", 1), ("epoch", 3), ("callbacks", [Odd()]), ("class_weight", {0: 1.0}),
]


@pytest.mark.parametrize("key,value", BAD_FIT_KW, ids=[f"{k}={v!r:.20}" for k, v in BAD_FIT_KW])
def test_fit_bad_keywords(model, key, value):
    kw = {"verbose": 0, key: value}
    message = refused(lambda: model.fit(X, Y, **kw))
    assert key.split("_")[0].rstrip("s") in message, message
    assert not model.has_weights or np.isfinite(next(iter(model.weights.values()))).all()


@pytest.mark.parametrize("scale,lr,what", [
    (1e3, 1e38, "the update made 'conv2d/kernel' NaN or inf"),   # caught after the update
    (1.0, 1e20, "the model's outputs hold NaN or inf"),          # caught at the epoch's end
])
def test_training_stopped_is_a_usage_error_and_restores_the_last_good_weights(scale, lr, what):
    """A huge learning rate spoils the weights: fit raises TrainingStopped, caught as
    cnnc's UsageError, and the model is back at the failing epoch's start (here, its
    initial weights and a fresh optimizer), never at NaN weights."""
    from cnnc.backends.numpy.training import TrainingStopped
    m = cnnc.loads(TEXT)
    m.init_weights(0)
    start = {k: v.copy() for k, v in m.get_weights().items()}
    refused(lambda: m.fit(X * scale, Y, epochs=2, batch_size=5, learning_rate=lr, optimizer="sgd",
                          verbose=0, seed=0),
            "training stopped", what, "back to those from the start of epoch 1")
    assert issubclass(TrainingStopped, UsageError)
    after = m.get_weights()
    assert all(np.array_equal(after[k], start[k]) for k in start)
    assert m.optimizer_state[0]["iterations"] == 0


def test_fit_unknown_keyword_suggests():
    m = cnnc.loads(TEXT)
    assert "did you mean 'epochs'" in refused(lambda: m.fit(X, Y, epoch=2, verbose=0))


BAD_EVALUATE_KW = [
    ("batch_size", 0), ("batch_size", "3"), ("batch_size", 1.5), ("return_dict", "yes"),
    ("verbose", "zz"), ("verbose", [3]), ("verbose", 7), ("loss", 3), ("loss", "bogus"),
    ("metrics", 3), ("metrics", "accuracy"), ("metrics", [3]), ("divisor", 0), ("divisor", "a"),
    ("runtime", "tpu"), ("runtime", 3), ("provider", 3), ("scale", None),
    ("bogus", 1), ("sample_weight", np.ones(5)), ("steps", 3),
]


@pytest.mark.parametrize("key,value", BAD_EVALUATE_KW,
                         ids=[f"{k}={v!r:.20}" for k, v in BAD_EVALUATE_KW])
def test_evaluate_bad_keywords(model, key, value):
    kw = {"verbose": 0, key: value}
    message = refused(lambda: model.evaluate(X, Y, **kw))
    assert key.split("_")[0] in message, message


@pytest.mark.parametrize("key,value", [
    ("batch_size", 0), ("batch_size", -3), ("batch_size", 2.5), ("batch_size", "3"),
    ("batch_size", None), ("batch_size", True), ("scale", "x"), ("scale", None),
])
def test_predict_bad_keywords(model, key, value):
    assert key in refused(lambda: model.predict(X, **{key: value}))


def test_multi_input_predict_wants_a_list():
    m = cnnc.loads("model two\na = Input((3,))\nb = Input((3,))\n"
                   "x = Concatenate()([a, b])\ny = Dense(2)(x)\nModel([a, b], y)\n")
    refused(lambda: m.predict(np.zeros((2, 3))), "2 inputs", "list")
    refused(lambda: m.predict([np.zeros((2, 3))]), "2 inputs")
    refused(lambda: m.predict([np.zeros((2, 3)), "b"]), "x[1]", "array")
    refused(lambda: m.predict([np.zeros((2, 3)), np.full((2, 3), np.nan)]), "x[1]", "NaN")
    assert m.predict([np.zeros((2, 3)), np.ones((2, 3))]).shape == (2, 2)


# --- weights ---------------------------------------------------------------------------

def _with(model, key_value):
    w = model.get_weights()
    k, v = key_value(w)
    w[k] = v
    return w


BAD_WEIGHTS = {
    "None": (lambda m: None, ["dict", "None"]),
    "int": (lambda m: 3, ["dict", "int"]),
    "str": (lambda m: "weights.npz", ["dict", "str"]),
    "list": (lambda m: list(m.get_weights().values()), ["dict", "list"]),
    "int-key": (lambda m: {**m.get_weights(), 5: np.zeros(3)}, ["keys", "5"]),
    "none-key": (lambda m: {None: np.zeros(3)}, ["keys", "None"]),
    "tuple-key": (lambda m: {("dense", "kernel"): np.zeros(3)}, ["keys"]),
    "str-value": (lambda m: _with(m, lambda w: ("dense/kernel", "abc")), ["dense/kernel", "array"]),
    "none-value": (lambda m: _with(m, lambda w: ("dense/kernel", None)), ["dense/kernel", "array"]),
    "ragged-value": (lambda m: _with(m, lambda w: ("dense/bias", [[1.0], [1.0, 2.0]])), ["dense/bias", "ragged"]),
    "complex": (lambda m: _with(m, lambda w: ("dense/bias", w["dense/bias"].astype(complex))), ["dense/bias", "complex"]),
    "object": (lambda m: _with(m, lambda w: ("dense/bias", np.array([Odd()] * 3))), ["dense/bias", "object"]),
    "nan": (lambda m: _with(m, lambda w: ("dense/bias", np.full(3, np.nan))), ["dense/bias", "NaN"]),
    "shape": (lambda m: _with(m, lambda w: ("dense/bias", np.zeros(4))), ["dense/bias", "shape"]),
    "missing": (lambda m: {"dense/bias": np.zeros(3)}, ["missing"]),
    "unknown-key": (lambda m: {**m.get_weights(), "dense/gamma": np.zeros(3)}, ["dense/gamma"]),
}


@pytest.mark.parametrize("case", BAD_WEIGHTS)
def test_set_weights_bad(model, case):
    make, words = BAD_WEIGHTS[case]
    refused(lambda: model.set_weights(make(model)), *words)


def test_set_weights_takes_lists(model):
    w = {k: v.tolist() for k, v in model.get_weights().items()}
    model.set_weights(w)


@pytest.mark.parametrize("path,words", [
    (None, ["file path", "None"]), (3, ["file path", "int"]), (["w.npz"], ["list"]),
    (Odd(), ["Odd"]), ("", ["empty"]), ("w\x00.npz", ["NUL"]), ("/nonexistent/w.npz", ["cannot read"]),
])
def test_load_weights_bad_paths(model, path, words):
    refused(lambda: model.load_weights(path), *words)


def test_load_weights_wrong_files(model, tmp_path):
    refused(lambda: model.load_weights(tmp_path), "w")
    text = tmp_path / "w.npz"
    text.write_text("not an npz")
    refused(lambda: model.load_weights(text))


@pytest.mark.parametrize("path,words", [
    (None, ["file path", "None"]), (3, ["file path", "int"]), (["w.npz"], ["list"]),
    (Odd(), ["Odd"]), ("", ["empty"]), ("w\x00.npz", ["NUL"]),
])
def test_save_weights_bad_paths(model, path, words):
    refused(lambda: model.save_weights(path), *words)


def test_save_weights_onto_a_directory(model, tmp_path):
    refused(lambda: model.save_weights(tmp_path))


def test_save_weights_creates_missing_folders_as_the_cli_does(model, tmp_path, capsys):
    """The CLI's outputs create missing parent folders, and so does save_weights; a
    parent that is a file is refused by both (exit 2 / UsageError), the file intact."""
    from cnnc.cli import main
    (tmp_path / "m.cnn").write_text(TEXT)
    assert main(["summary", str(tmp_path / "m.cnn"), "-o", str(tmp_path / "a" / "b" / "s.txt")]) == 0
    model.save_weights(tmp_path / "c" / "d" / "w.npz")
    assert (tmp_path / "a" / "b" / "s.txt").is_file() and (tmp_path / "c" / "d" / "w.npz").is_file()
    (tmp_path / "f").write_text("keep")
    capsys.readouterr()
    assert main(["summary", str(tmp_path / "m.cnn"), "-o", str(tmp_path / "f" / "s.txt")]) == 2
    assert "cannot write" in capsys.readouterr().err
    refused(lambda: model.save_weights(tmp_path / "f" / "w.npz"), "cannot write", "w.npz")
    assert (tmp_path / "f").read_text() == "keep"


def test_save_weights_bytes_path(model, tmp_path):
    model.save_weights(bytes(tmp_path / "w.npz"))
    assert (tmp_path / "w.npz").exists()


@pytest.mark.parametrize("seed", ["a", -1, 2.5, True, [1]])
def test_init_weights_bad_seed(model, seed):
    refused(lambda: model.init_weights(seed), "seed")


# --- summary, layer, to_onnx ---------------------------------------------------------

@pytest.mark.parametrize("fmt", ["bogus", None, 3, "JSON", ["text"], "jsno", ""])
def test_summary_bad_format(model, fmt):
    message = refused(lambda: model.summary(fmt), "summary format", "text, json, markdown")
    if fmt in ("JSON", "jsno"):
        assert "did you mean 'json'" in message


@pytest.mark.parametrize("options,words", [
    ({"bogus": 1}, ["bogus"]), ({"keras_only": "x"}, ["keras_only"]), ({"ascii": "x"}, ["ascii"]),
    ({"asci": True}, ["did you mean 'ascii'"]),
])
def test_summary_bad_options(model, options, words):
    refused(lambda: model.summary(**options), *words)


@pytest.mark.parametrize("name,words", [
    (None, ["str", "None"]), (3, ["str", "int"]), (["dense"], ["list"]),
    ("nope", ["no layer named 'nope'"]), ("Dense", ["did you mean 'dense'"]),
])
def test_layer_bad_name(model, name, words):
    refused(lambda: model.layer(name), *words)


@pytest.mark.parametrize("opset", ["13", -1, 0, 2.5, True, [13], 10**6])
def test_to_onnx_bad_opset(model, opset):
    pytest.importorskip("onnx")
    refused(lambda: model.to_onnx(opset=opset), "opset")


@pytest.mark.parametrize("path", [3, ["m.onnx"], Odd(), "", "m\x00.onnx"])
def test_to_onnx_bad_path(model, path):
    pytest.importorskip("onnx")
    refused(lambda: model.to_onnx(path), "to_onnx")


# --- every name in cnnc.__all__ is covered --------------------------------------------

def test_every_public_name_is_covered():
    covered = {"CnncError", "Diagnostic", "Model", "UsageError", "NumericWarning", "load",
               "loads", "__version__"}
    assert set(cnnc.__all__) <= covered, set(cnnc.__all__) - covered
    assert issubclass(cnnc.NumericWarning, RuntimeWarning)


# --- NumPy's warnings never leak --------------------------------------------------------

@pytest.fixture
def overflowing():
    """A model whose weights overflow float32 on any input."""
    m = cnnc.loads(TEXT)
    m.set_weights({k: np.full_like(v, 1e30) for k, v in m.get_weights().items()})
    return m


def _only_numeric_warning(call):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        result = call()
    kinds = [type(w.message) for w in rec]
    assert kinds == [NumericWarning], [str(w.message) for w in rec]
    return result, str(rec[0].message)


def test_predict_overflow_is_one_clear_warning(overflowing):
    out, message = _only_numeric_warning(lambda: overflowing.predict(X))
    assert np.isnan(out).all()
    assert "5 of 5 samples" in message and "NaN or inf" in message


def test_evaluate_overflow_is_one_clear_warning(overflowing):
    logs, message = _only_numeric_warning(lambda: overflowing.evaluate(X, Y, verbose=0, return_dict=True))
    assert "loss" in message and not np.isfinite(logs["loss"])


def test_fit_overflow_is_reported_by_fit_not_numpy(overflowing):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Exception) as info:
            overflowing.fit(X, Y, verbose=0, validation_split=0.4)
    assert "NaN" in str(info.value) or "nan" in str(info.value) or "inf" in str(info.value)


def test_large_but_finite_inputs_give_no_numpy_warning(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", NumericWarning)
        model.predict(np.full(X.shape, 3e38, np.float32))
        model.evaluate(np.full(X.shape, 3e38, np.float32), Y, verbose=0)


def test_ordinary_calls_give_no_warning(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, Y, verbose=0, epochs=2, validation_split=0.4, stream=io.StringIO())
        model.evaluate(X, Y, verbose=0)
        model.predict(X)


# --- hints that must work when followed ------------------------------------------------
#
# A help or note that suggests a fix is checked by applying it: the suggested code must
# itself pass the checker (or at least get past that error).

def _errors(text: str) -> list:
    with pytest.raises(CnncError) as info:
        cnnc.loads(text)
    return [d for d in info.value.diagnostics if d.is_error]


def _note(text: str) -> str:
    (err, *_) = _errors(text)
    return " | ".join(err.notes)


def test_did_you_mean_prefers_the_layer_over_the_function():
    # 'Concatenat' is a typo of the layer Concatenate, not of the function concatenate.
    assert "did you mean 'Concatenate'?" in _note("model m\ninput (4, 4, 1)\nConcatenat()\n")


@pytest.mark.parametrize("word,candidates", [
    ("sigmoid", ["SGD", "RMSprop", "Adam"]),      # an activation is not a typo of SGD
    ("x", ["xception_block"]),
])
def test_did_you_mean_refuses_words_of_very_different_length(word, candidates):
    from cnnc.support.diagnostics import did_you_mean
    assert did_you_mean(word, candidates) == ""


@pytest.mark.parametrize("word,candidates,expected", [
    ("adma", ["SGD", "RMSprop", "Adam"], "Adam"), ("rleu", ["relu", "tanh"], "relu"),
    ("conv2d", ["Conv2D", "Dense"], "Conv2D"), ("acuracy", ["accuracy", "mse"], "accuracy"),
    ("kernal_size", ["kernel_size", "strides"], "kernel_size"),
])
def test_did_you_mean_still_finds_typos(word, candidates, expected):
    from cnnc.support.diagnostics import did_you_mean
    assert did_you_mean(word, candidates) == f"did you mean '{expected}'?"


def test_optimizer_named_like_an_activation_gets_no_wrong_suggestion():
    note = _note("model m\ninput (4,)\nDense(3)\ncompile(loss='mse', optimizer='sigmoid')\n")
    assert "SGD" in note and "did you mean" not in note


def test_quote_hint_gives_a_name_that_works():
    note = _note("model m\ninput (4,)\nDense(3, activation=Relu)\n")
    assert "activation='relu'" in note
    fixed = "model m\ninput (4,)\nDense(3, activation='relu')\n"
    assert cnnc.loads(fixed).total_params == 15
    assert "activation='Relu'" not in note


def test_quote_hint_for_an_unknown_name_does_not_suggest_it():
    note = _note("model m\ninput (4,)\nDense(3, activation=blorp)\n")
    assert "'blorp'" not in note and "supported" in note


@pytest.mark.parametrize("shape,layer", [
    ("(28, 28, 1)", "Conv1D(3, 3)"), ("(28, 28, 1)", "GlobalAveragePooling1D()"),
    ("(2, 2, 2, 2, 1)", "Conv2D(3, 1)"), ("(2, 3, 4, 5, 1)", "DepthwiseConv1D(1)"),
    ("(6, 5, 4, 3)", "MaxPooling1D(2)"),
])
def test_rank_too_high_hints_work(shape, layer):
    """The old hint said 'Flatten/Reshape first' (Flatten makes it 2-D: never right here)
    and 'the 4D variant' of layers that have none. Every suggestion is applied."""
    note = _note(f"model m\ninput {shape}\n{layer}\n")
    assert "Flatten" not in note and "4D" not in note
    import re
    reshape = re.search(r"Reshape\((\(.*?\))\)", note)
    assert reshape, note
    cnnc.loads(f"model m\ninput {shape}\nReshape({reshape.group(1)})\n{layer}\n")
    variant = re.search(r"use (\w+) instead", note)
    if variant:
        kind = layer.split("(")[0]
        cnnc.loads(f"model m\ninput {shape}\n{layer.replace(kind, variant.group(1))}\n")


def test_rank_too_low_hint_does_not_blame_a_missing_flatten():
    note = _note("model m\ninput (28,)\nConv2D(3, 3)\n")
    assert "if a Flatten or Dense made it" in note and "multiply to 28" in note


@pytest.mark.parametrize("a,b,fix", [
    ("(4, 4, 3)", "(4, 4)", "Flatten both"), ("(3,)", "(4, 2)", "Flatten 'input_layer_1'"),
    ("(4, 2)", "(3,)", "Flatten 'input_layer'"),
])
def test_concatenate_rank_hint_works(a, b, fix):
    text = f"model m\na = Input({a})\nb = Input({b})\nc = Concatenate()([a, b])\nModel([a, b], c)\n"
    note = _note(text)
    assert fix in note
    if fix == "Flatten both":
        fixed = text.replace("([a, b])", "([Flatten()(a), Flatten()(b)])")
    elif "input_layer_1" in fix:
        fixed = text.replace("([a, b])", "([a, Flatten()(b)])")
    else:
        fixed = text.replace("([a, b])", "([Flatten()(a), b])")
    cnnc.loads(fixed)


def test_a_bad_input_statement_is_not_followed_by_add_an_input():
    errors = _errors("model m\ninput (0, 28, 1)\nFlatten()\nDense(3)\n")
    assert len(errors) == 1 and "input" in errors[0].message
    assert not any("add `input" in n for e in errors for n in e.notes)


@pytest.mark.parametrize("last,fix", [
    ("GlobalAveragePooling2D()", "add Activation('softmax')"),
    ("Dense(3)", "use activation='softmax'"),
])
def test_probability_hint_fits_the_output_layer(last, fix):
    """GlobalAveragePooling2D(activation='softmax') would be an error: suggest a layer."""
    text = ("model m\ninput (4, 4, 3)\n" + last + "\n"
            "compile(loss='categorical_crossentropy', optimizer='adam')\n")
    (warning,) = [d for d in cnnc.loads(text).diagnostics if "probabilities" in d.message]
    assert fix in warning.notes[0]
    fixed = (text.replace(last, last + "\nActivation('softmax')") if "Activation" in fix
             else text.replace("Dense(3)", "Dense(3, activation='softmax')"))
    assert not [d for d in cnnc.loads(fixed).diagnostics if "probabilities" in d.message]
