"""Random command lines: `cnnc <command> <random arguments>` for every command, the
arguments drawn from each command's own options and from hostile values (negative,
huge, NaN, empty, control characters, a FIFO, /dev/zero, a folder, an input given as
the output). Inputs include Keras scripts and notebooks (several models, a custom layer,
a nested augmentation model, grouped convolutions, settings errors, a shape from data)
with odd --model and --input-shape values, and a .keras config with a nested model.
Every run must end with exit status 0, 1 or 2 (never 70), say why on stderr, print no
traceback, stay within the worker's memory limit and time, and leave every input file
as it was.

The harness (a worker process under RLIMIT_AS, in-process `cnnc.cli.main`) is the one
of tests/test_fuzz_files.py. CI runs a few hundred lines; CNNC_FUZZ=big thousands.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil

import pytest

from tests.test_fuzz_files import DIGITS_NET, KERAS_DATA, SEED, Case, assert_clean, run_cases, scale

INTS = ["-1", "0", "1", "2", "3", "16", "-9999999999", str(2**63), str(10**30), "1e3", "x", "",
        "0x10", " 1", "١"]
FLOATS = ["-1", "0", "0.5", "1", "1.5", "nan", "inf", "-inf", "1e308", "1e-320", "x", "", "2"]
# options whose large values mean long but legitimate work: small values only
SMALL = {"--epochs": ["-1", "0", "1", "2", "x"], "--seconds": ["-1", "0", "0.01", "nan", "inf", "1e308", "x"],
         "--checkpoint-every": ["-1", "0", "1", "nan", "x"], "--limit": ["-1", "0", "1", "5", "x"],
         "--show": ["-1", "0", "1", "3", str(2**63), "x"]}
WORDS = ["", "-", "--", "x", "relu", "accuracy", "accuracy,loss,", "sgd", "adam", "rmsprop", "nope",
         "categorical_crossentropy", "mse", "28,28,1", "8,8,1", "0,0", "-1", "(", "\x1b[2J\x1b[31mred",
         "é", "a" * 300, "model", "x:3", "\x00"]
# --model NAME[:LINE] of a script or notebook (pool's scripts: enc/dec, model, m)
MODELS = ["enc", "dec", "model", "m", "m:2", "m:3", "enc:3", "enc:99", "enc:-1", "enc:", ":3",
          "enc:x", "", "Enc", " enc", "nope", "aug", "res", "enc:3:4", "m:" + "9" * 40,
          "\x1b[2J", "é", "a" * 300]
# --input-shape (the pool's data.py takes its shape from np.load)
SHAPES = ["8,8,1", "(8, 8, 1)", "16,16,4", "0", "-1", "8,8", "8,8,1,1", "None", "None,None,1",
          "nan", "1e9", "100000,100000,3", "2147483648,2,1", str(2**31) + ",1,1", "", ",",
          "8;8;1", "8,8,\x1b1", "١,8,1", "x"]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    import numpy as np

    import cnnc
    d = tmp_path_factory.mktemp("fuzz_cli")
    net = d / "net.cnn"
    net.write_text(DIGITS_NET)
    m = cnnc.load(str(net))
    m.init_weights(0)
    m.save_weights(str(d / "w.npz"))
    m.to_onnx(str(d / "model.onnx"))      # not net.onnx: `cnnc compile net.cnn` writes that
    rng = np.random.default_rng(0)
    np.save(d / "x.npy", rng.random((4, 8, 8, 1), dtype=np.float32))
    np.savez(d / "data.npz", x_train=(rng.random((24, 8, 8)) * 255).astype(np.uint8),
             y_train=rng.integers(0, 10, 24), x_test=(rng.random((8, 8, 8)) * 255).astype(np.uint8),
             y_test=rng.integers(0, 10, 8))
    for name in ("seq_cnn.json", "residual.keras", "seq_cnn.weights.h5"):
        shutil.copy(KERAS_DATA / name, d / name)
    (d / "script.py").write_text("import keras\nm = keras.Sequential([keras.Input((8, 8, 1)), "
                                 "keras.layers.Flatten(), keras.layers.Dense(3)])\n")
    for name, text in SCRIPTS.items():
        (d / name).write_text(text)
    (d / "notebook.ipynb").write_text(json.dumps(_notebook(SCRIPTS["two.py"])))
    (d / "nested.json").write_text(NESTED_JSON)
    (d / "bad.cnn").write_text("input (8, 8, 1)\nConv2D(4, (9, 9))\n")
    os.mkfifo(d / "fifo.npz")
    (d / "folder").mkdir()
    inputs = [str(d / n) for n in ("net.cnn", "w.npz", "model.onnx", "x.npy", "data.npz", "seq_cnn.json",
                                   "residual.keras", "seq_cnn.weights.h5", "script.py", "bad.cnn",
                                   "two.py", "notebook.ipynb", "custom.py", "settings.py", "data.py",
                                   "reuse.py", "nested.json")]
    files = inputs + [str(d / "fifo.npz"), str(d / "folder"), "/dev/null", "/dev/zero",
                      str(d / "missing.cnn"), "digits", "fashion-mnist", "", "-", "é.cnn",
                      "x" * 5000, str(d / "net.cnn\x00")]
    outputs = [str(d / "out" / f) for f in ("o.npz", "o.onnx", "o.npy", "o.csv", "o.keras", "o.svg",
                                             "o.dot", "o.cnn", "o.json", "o")]
    return {"dir": d, "inputs": inputs, "files": files, "outputs": outputs + inputs[:5] + [
        "/dev/full", str(d / "folder"), str(d / "nodir" / "o.npz"), "-", ""]}


def _options(parser: argparse.ArgumentParser) -> dict[str, list[argparse.Action]]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: p._actions for name, p in sub.choices.items()}


def _value(rng: random.Random, action: argparse.Action, pool) -> str:
    flag = action.option_strings[-1] if action.option_strings else ""
    if flag in SMALL:
        return rng.choice(SMALL[flag])
    if flag == "--model" and rng.random() < 0.9:
        return rng.choice(MODELS)
    if flag == "--input-shape" and rng.random() < 0.9:
        return rng.choice(SHAPES)
    if action.choices and rng.random() < 0.8:
        return str(rng.choice(list(action.choices)))
    if action.type is int:
        return rng.choice(INTS)
    if action.type is float:
        return rng.choice(FLOATS)
    if flag in ("-o", "--output", "--history", "--checkpoint-dir"):
        return rng.choice(pool["outputs"])
    if rng.random() < 0.7:
        return rng.choice(pool["files"])
    return rng.choice(WORDS)


FITTING = {"run": ["model.onnx"], "import": ["residual.keras", "seq_cnn.json", "nested.json"]}
SOURCES = ["net.cnn", "net.cnn", "seq_cnn.json", "residual.keras", "script.py", "bad.cnn", "two.py",
           "notebook.ipynb", "custom.py", "settings.py", "data.py", "reuse.py", "nested.json"]
FITTING_DATA = {"--data": ["data.npz", "digits", "x.npy"], "--input": ["x.npy", "data.npz"],
                "--weights": ["w.npz", "seq_cnn.weights.h5"]}


def random_argv(rng: random.Random, commands: dict, pool) -> list[str]:
    """Half the time a plausible line with one or two odd values (reaches the commands'
    work), else anything the options allow."""
    name = rng.choice(sorted(commands))
    if rng.random() < 0.5:
        d = pool["dir"]
        argv = [name, str(d / rng.choice(FITTING.get(name, SOURCES)))]
        optional = [a for a in commands[name] if a.option_strings and not isinstance(a, argparse._HelpAction)]
        chosen = [a for a in optional if a.required] + rng.sample(optional, min(len(optional), rng.randint(0, 3)))
        if argv[1].endswith((".py", ".ipynb")):      # a script's own options, most of the time
            chosen += [a for a in optional if a.option_strings[-1] in ("--model", "--input-shape")
                       and a not in chosen and rng.random() < 0.6]
        for a in chosen:
            flag = a.option_strings[-1]
            argv.append(flag)
            if a.nargs != 0:
                sensible = FITTING_DATA.get(flag)
                pick = rng.choice(sensible) if sensible else ""
                argv.append((pick if pick == "digits" else str(d / pick)) if sensible and rng.random() < 0.7
                            else _value(rng, a, pool))
        return _bounded(rng, name, argv)
    actions = [a for a in commands[name] if not isinstance(a, argparse._HelpAction) or rng.random() < 0.02]
    argv = [name]
    positional = [a for a in actions if not a.option_strings]
    optional = [a for a in actions if a.option_strings]
    for a in positional:
        if rng.random() < 0.95:
            argv.append(rng.choice(pool["inputs"]) if rng.random() < 0.7 else _value(rng, a, pool))
    required = [a for a in optional if a.required]
    for a in required + rng.sample(optional, min(len(optional), rng.randint(0, 5))):
        argv.append(rng.choice(a.option_strings))
        if a.nargs != 0:
            if a.required and rng.random() < 0.6:
                argv.append(rng.choice(pool["inputs"][:5] + ["digits"]))
            else:
                argv.append(_value(rng, a, pool))
    if rng.random() < 0.1:
        argv.insert(rng.randrange(1, len(argv) + 1), rng.choice(["--bogus", "-z", "--", "-", "=x"]))
    return _bounded(rng, name, argv)


def _bounded(rng: random.Random, name: str, argv: list[str]) -> list[str]:
    if name == "train" and "--epochs" not in argv:
        argv += ["--epochs", "1"]    # the files' fit(epochs=...) can be long; the fuzz is about inputs
    if name == "bench" and "--seconds" not in argv:
        argv += ["--seconds", "0.01"]
    if name in ("train", "evaluate") and rng.random() < 0.7 and "--limit" not in argv:
        argv += ["--limit", "16"]
    return argv


_OUTPUTS = ("-o", "--output", "--history", "--checkpoint-dir")


def _watched(argv: list[str], files: list[str]) -> list[str]:
    """The files that must stay unchanged: all but those this command line asks to write."""
    written = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a in _OUTPUTS}
    return [f for f in files if f not in written]


def test_fuzz_cli(pool, tmp_path):
    from cnnc.cli import build_parser
    commands = _options(build_parser())
    rng = random.Random(f"{SEED}-cli")
    cases = []
    for i in range(scale(200, 3000)):
        argv = random_argv(rng, commands, pool)
        cases.append(Case(f"cli-{i}", argv, _watched(argv, pool["inputs"])))
    cases.append(Case("cli-none", [], pool["inputs"]))
    cases.append(Case("cli-unknown", ["bogus"], pool["inputs"]))
    (pool["dir"] / "out").mkdir(exist_ok=True)
    results = run_cases(cases, tmp_path / "run")
    if os.environ.get("CNNC_FUZZ_REPORT"):
        import json
        from pathlib import Path
        Path(os.environ["CNNC_FUZZ_REPORT"]).write_text(json.dumps(
            [{**results.get(c.id, {}), "argv": c.argv} for c in cases], indent=1))
    assert_clean(cases, results)


# --- the Keras scripts, notebook and nested config of the pool -----------------------------------

SCRIPTS = {
    # two models (--model needed by most commands), grouped convs, augmentation layers
    "two.py": """import keras
from keras import layers
enc = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, padding="same"),
                        layers.Flatten(), layers.Dense(10, activation="softmax")], name="enc")
dec = keras.Sequential([keras.Input((8, 8, 4)), layers.Conv2D(8, 3, groups=2), layers.RandomFlip(),
                        layers.GaussianNoise(0.1), layers.Flatten(), layers.Dense(10, activation="softmax")])
enc.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
""",
    # a custom layer and a nested augmentation model: one summary row each
    "custom.py": """import keras
from keras import layers

class Res(layers.Layer):
    def __init__(self, f, **kw):
        super().__init__(**kw)
        self.c1 = layers.Conv2D(f, 3, padding="same", groups=2)
        self.bn = layers.BatchNormalization()
    def call(self, x, training=False):
        return keras.activations.relu(self.bn(self.c1(x), training=training)) + x

aug = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1),
                        layers.GaussianNoise(0.1)], name="aug")
inp = keras.Input((8, 8, 2))
x = Res(2, name="res")(aug(inp))
x = layers.Conv2D(4, 3, groups=2)(x)
model = keras.Model(inp, layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(x)))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
""",
    # the model is fine, its compile settings are not
    "settings.py": """import keras
m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
m.compile(optimizer="adagradx", loss="nope")
""",
    # the input shape comes from data: --input-shape decides it
    "data.py": """import keras, numpy as np
x = np.load("x.npy")
m = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                      keras.layers.Dense(10, activation="softmax")])
m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
""",
    # one name, two models: --model m:LINE
    "reuse.py": """import keras
m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
""",
}


def _notebook(code: str) -> dict:
    """`code` split into cells, with a markdown cell, a magic and an empty cell."""
    def cell(kind, text):
        return {"cell_type": kind, "metadata": {}, "source": text.splitlines(keepends=True),
                **({"outputs": [], "execution_count": None} if kind == "code" else {})}
    head, _, rest = code.partition("enc = ")
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [cell("markdown", "# two models"), cell("code", "%matplotlib inline\n" + head),
                      cell("code", ""), cell("code", "enc = " + rest)]}


def _nested_json() -> str:
    """A functional model calling a nested Sequential whose inner layer has the nested
    model's own name (Keras allows it; it once made cnnc's graph a cycle)."""
    def tensor(src):
        return {"class_name": "__keras_tensor__", "config": {"shape": [None], "keras_history": [src, 0, 0]}}
    inner = {"class_name": "Sequential", "name": "stem", "config": {"name": "stem", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 8, 8, 1], "name": "stem_in"}},
        {"class_name": "Conv2D", "config": {"name": "stem", "filters": 4, "kernel_size": [3, 3],
                                            "groups": 1}},
        {"class_name": "ReLU", "config": {"name": "stem_relu"}}]},
        "inbound_nodes": [{"args": [tensor("image")], "kwargs": {}}]}
    layers = [{"class_name": "InputLayer", "name": "image", "inbound_nodes": [],
               "config": {"batch_shape": [None, 8, 8, 1], "name": "image"}}, inner,
              {"class_name": "Flatten", "name": "flat", "config": {"name": "flat"},
               "inbound_nodes": [{"args": [tensor("stem")], "kwargs": {}}]},
              {"class_name": "Dense", "name": "head", "config": {"name": "head", "units": 10},
               "inbound_nodes": [{"args": [tensor("flat")], "kwargs": {}}]}]
    return json.dumps({"class_name": "Functional", "config": {
        "name": "nested", "layers": layers, "input_layers": [["image", 0, 0]],
        "output_layers": [["head", 0, 0]]}})


NESTED_JSON = _nested_json()
