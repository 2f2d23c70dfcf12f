"""The .cnn language: what parses, how arguments bind, how layers are named."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.analysis.arguments import Initializer
from cnnc.frontends.cnn import check_text


def ok(text: str):
    checked = check_text(text)
    assert checked.ok, "\n".join(f"{d.span.line if d.span else '-'}: {d.message}" for d in checked.diagnostics)
    return checked


def errors(text: str) -> list[str]:
    return [d.message for d in check_text(text).diagnostics if d.is_error]


def test_comments_blank_lines_quotes_trailing_commas():
    c = ok("""
# a comment
model net   # trailing comment

input (28, 28, 1,)
Conv2D(32, (3, 3), activation="relu",)   # double quotes, trailing comma
MaxPooling2D(pool_size=(2, 2),)
Flatten()
Dense(10, activation='softmax')
""")
    assert c.ir.name == "net"
    assert [l.kind for l in c.ir.layers] == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert c.ir.layers[0]["activation"] == "relu"


def test_calls_may_span_lines():
    c = ok("input (28, 28, 1)\nConv2D(\n    32,\n    (3, 3),\n    activation='relu'\n)\n")
    assert c.ir.layers[0]["filters"] == 32 and c.ir.layers[0].span.line == 2


def test_model_add_and_module_prefixes_as_in_tutorials():
    c = ok("model.add(layers.Conv2D(8, (3, 3), input_shape=(10, 10, 1)))\n"
           "model.add(keras.layers.Flatten())\nmodel.add(tf.keras.layers.Dense(2))\n"
           "model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss='mse')\n")
    assert c.ir.input_shape == (10, 10, 1)
    assert [l.kind for l in c.ir.layers] == ["Conv2D", "Flatten", "Dense"]
    assert c.ir.compile.optimizer.name == "Adam"
    assert c.ir.compile.optimizer.params["learning_rate"] == 0.01


def test_ints_or_tuples_where_keras_accepts_either():
    c = ok("input (9, 9, 2)\nConv2D(4, 3, strides=2, padding='SAME')\nMaxPooling2D(2, strides=(1, 1))\n")
    conv, pool = c.ir.layers
    assert conv["kernel_size"] == (3, 3) and conv["strides"] == (2, 2)
    assert conv["padding"] == "same"  # Keras lower-cases padding
    assert pool["pool_size"] == (2, 2) and pool["strides"] == (1, 1)


def test_positional_order_is_keras_order():
    c = ok("input (9, 9, 2)\nConv2D(4, 3, 2, 'same', None, 1, 1, 'relu', False)\n"
           "DepthwiseConv2D(3, 1, 'valid', 2)\nMaxPooling2D((2, 2), None, 'same', None, 'pool')\n")
    conv, dw, pool = c.ir.layers
    assert (conv["strides"], conv["padding"], conv["activation"], conv["use_bias"]) == \
        ((2, 2), "same", "relu", False)
    assert dw["depth_multiplier"] == 2      # DepthwiseConv2D(kernel_size, strides, padding, depth_multiplier)
    assert pool.name == "pool"              # MaxPooling2D takes name positionally, as in Keras


def test_input_forms():
    assert ok("input (28, 28, 1)\nFlatten()\n").ir.input_shape == (28, 28, 1)
    assert ok("Input(shape=(28, 28, 1))\nFlatten()\n").ir.input_shape == (28, 28, 1)
    assert ok("keras.Input((4, 4, 1))\nFlatten()\n").ir.input_shape == (4, 4, 1)
    assert ok("Dense(8, input_shape=(16,))\n").ir.input_shape == (16,)
    assert ok("Dense(8, input_dim=16)\n").ir.input_shape == (16,)
    assert ok("input 16\nDense(8)\n").ir.input_shape == (16,)
    assert ok("input (None, 9)\nConv1D(4, 3)\n").analysis.infos[0].output_shape == (None, 4)


def test_default_names_follow_keras():
    c = ok("input (28, 28, 1)\nConv2D(8, 3)\nConvolution2D(8, 3)\nMaxPool2D()\nMaxPooling2D()\n"
           "BatchNormalization()\nGlobalAvgPool2D()\nDense(3, name='head')\nDense(2)\n")
    assert [l.name for l in c.ir.layers] == ["conv2d", "conv2d_1", "max_pooling2d", "max_pooling2d_1",
                                             "batch_normalization", "global_average_pooling2d",
                                             "head", "dense"]


def test_defaults_are_keras_defaults():
    conv, bn, dense = ok("input (8, 8, 3)\nConv2D(4, 3)\nBatchNormalization()\nDense(2)\n").ir.layers
    assert conv["kernel_initializer"] == Initializer("GlorotUniform")
    assert conv["bias_initializer"] == Initializer("Zeros")
    assert (conv["padding"], conv["activation"], conv["use_bias"]) == ("valid", "linear", True)
    assert (bn["momentum"], bn["epsilon"], bn["axis"], bn["center"], bn["scale"]) == (0.99, 1e-3, -1, True, True)
    assert dense["kernel_initializer"] == Initializer("GlorotUniform")


def test_initializers_by_name_or_call():
    c = ok("input (4,)\nDense(2, kernel_initializer='he_normal', bias_initializer=Constant(0.1))\n"
           "Dense(2, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=3))\n")
    a, b = c.ir.layers
    assert a["kernel_initializer"].name == "HeNormal"
    assert a["bias_initializer"].get("value") == 0.1
    assert b["kernel_initializer"].get("stddev") == 0.01 and b["kernel_initializer"].get("seed") == 3


def test_compile_and_fit_defaults():
    c = ok("input (4,)\nDense(1, activation='sigmoid')\ncompile(optimizer='sgd', loss='bce')\nfit()\n")
    opt = c.ir.compile.optimizer
    assert (opt.name, opt.params["learning_rate"], opt.params["momentum"]) == ("SGD", 0.01, 0.0)
    assert c.ir.compile.loss.name == "binary_crossentropy"
    assert (c.ir.fit.epochs, c.ir.fit.batch_size, c.ir.fit.validation_split) == (1, 32, 0.0)
    c = ok("input (4,)\nDense(3, activation='softmax')\ncompile(optimizer=RMSprop(), loss='categorical_crossentropy')\n")
    p = c.ir.compile.optimizer.params
    assert (p["learning_rate"], p["rho"], p["epsilon"]) == (0.001, 0.9, 1e-7)
    c = ok("input (4,)\nDense(3, activation='softmax')\ncompile(optimizer=Adam(), loss='categorical_crossentropy')\n")
    p = c.ir.compile.optimizer.params
    assert (p["learning_rate"], p["beta_1"], p["beta_2"], p["epsilon"]) == (0.001, 0.9, 0.999, 1e-7)


def test_keras2_decay_and_lr_are_honoured_with_warnings():
    c = check_text("input (4,)\nDense(3, activation='softmax')\n"
                   "compile(optimizer=SGD(lr=0.1, momentum=0.5, decay=0.0004), loss='categorical_crossentropy')\n")
    assert c.ok
    p = c.ir.compile.optimizer.params
    assert (p["learning_rate"], p["momentum"], p["decay"]) == (0.1, 0.5, 0.0004)
    assert sum("Keras 2" in d.message for d in c.diagnostics) == 2


@pytest.mark.parametrize("text,fragment", [
    ("input (4,)\nDense(units=3, units=4)\n", "multiple values"),
    ("input (4,)\nDense(3, 'relu', True, 'x', 'y', None, None, None, None, None, None, None, None, 9)\n",
     "at most"),
    ("input (4,)\nDense(units=3, 'relu')\n", "positional argument follows keyword argument"),
    ("input (4,)\nDense()\n", "missing required argument 'units'"),
    ("input (4,)\nDense(3, activation=relu)\n", "activation"),
    ("input (4,)\nDense(3, name='a/b')\n", "cannot contain '/'"),
    ("input (4,)\nDense(3)\ncompile(optimizer='adamw', loss='mse')\n", "does not support the optimizer"),
    ("input (4,)\nDense(3)\nDense(3)\ninput (5,)\n", "declared twice"),
    ("model a\nmodel b\ninput (4,)\nDense(3)\n", "named twice"),
    ("input (4,)\nDense(3)\ncompile(loss='mse')\ncompile(loss='mse')\n", "compile() appears twice"),
    ("input (0, 3)\nDense(3)\n", "positive integers"),
    ("input (4,)\nDense(3.5)\n", "must be an integer"),
    ("input (4,)\nDense(True)\n", "must be an integer"),
])
def test_binding_errors(text, fragment):
    msgs = errors(text)
    assert any(fragment in m for m in msgs), msgs


def test_every_independent_error_is_reported_at_once():
    msgs = errors("input (28, 28, 1)\nConv2D(0, 3)\nDense(3, activation='rleu')\nFlaten()\n"
                  "Dropout(2)\ncompile(optimizer='adm', loss='mse')\n")
    assert len(msgs) == 5, msgs


def test_load_and_loads(in_repo):
    m = cnnc.loads("input (4,)\nDense(3)\n")
    assert m.total_params == 15 and m.name == "sequential"
    with pytest.raises(cnnc.CnncError) as e:
        cnnc.loads("input (4,)\nDense(0)\n")
    assert e.value.diagnostics[0].span.line == 2
    with pytest.raises(cnnc.UsageError):
        cnnc.load("does/not/exist.cnn")


def test_recovery_after_unclosed_bracket_terminates():
    """Regression: resuming after an unclosed '(' once looked the restart token up
    by value and looped forever when the same name appeared earlier."""
    import signal

    def boom(*_):
        raise TimeoutError("parser did not terminate")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(10)
    try:
        checked = check_text("input (4,)\nDense(1\nDense(2)\nDense(3, activation='relu'\nDense(4)\n")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    msgs = [(d.span.line, d.message) for d in checked.diagnostics if d.is_error]
    assert msgs == [(2, "'(' was never closed"), (4, "'(' was never closed")]
    assert [l["units"] for l in checked.ir.layers] == [2, 4]


def test_a_pasted_keras_tutorial_checks():
    """Imports (with from-import aliases), model = Sequential(...), model.add, compile and
    fit(x_train, ...) as written in tutorials."""
    c = check_text("""import keras
from keras import layers, models
from keras.layers import Conv2D, MaxPooling2D as MP

model = models.Sequential(name='tutorial')
model.add(keras.Input(shape=(28, 28, 1)))
model.add(Conv2D(32, (3, 3), activation='relu'))
model.add(MP((2, 2)))
model.add(layers.Flatten())
model.add(layers.Dense(10, activation='softmax'))
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.fit(x_train, y_train, epochs=5, validation_data=(x_test, y_test))
model.summary()
""")
    assert c.ok, [d.message for d in c.diagnostics]
    assert c.ir.name == "tutorial"
    assert [l.kind for l in c.ir.layers] == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert c.ir.fit.epochs == 5
    (w,) = c.diagnostics
    assert w.severity == "warning" and "ignores x, y, validation_data" in w.message


def test_sequential_with_a_list_of_layers():
    c = ok("model = keras.Sequential([\n  keras.Input((8, 8, 1)),\n  layers.Conv2D(4, 3),\n"
           "  layers.Flatten(),\n  layers.Dense(2),\n], name='net')\n")
    assert c.ir.name == "net" and c.ir.input_shape == (8, 8, 1)
    assert [i.params for i in c.analysis.infos] == [40, 0, 290]
    # a layer object that is never called is no part of any model, as in Keras
    (w,) = check_text("model = Dense(3)\n").diagnostics
    assert w.severity == "warning" and "created but never called" in w.message
    assert any("list of layers" in m for m in errors("Sequential(Dense(3))\n"))


def test_no_shape_errors_after_a_statement_that_did_not_parse():
    """The broken line is a layer missing from the stack: later shapes are not checked
    (they would report the missing layer's consequences), later arguments still are."""
    msgs = errors("input (28, 28, 1)\nConv2D(32, (3, 3), activation='relu'\nDense(10)\n"
                  "Conv2D(8, 3)\nDense(0)\n")
    assert msgs == ["'(' was never closed", "`units` must be a positive integer, got 0"]
    checked = check_text("input (28, 28, 1)\nConv2D(32 (3, 3))\nDense(10)\n")
    assert [d.severity for d in checked.diagnostics] == ["error"]
