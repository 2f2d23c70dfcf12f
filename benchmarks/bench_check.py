"""How fast is `cnnc check`? Whole-process time of check/summary on the MNIST net, on
Keras scripts and notebooks (a generated 500+ line notebook, corpus excerpts: a
281-layer ResNet script, transfer learning with MobileNetV2 built from the zoo), and
in-process check time of generated stacks of 10 to 10,000 layers.

    python benchmarks/bench_check.py            # prints and updates docs/BENCHMARKS.md
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, machine, write_section  # noqa: E402

BLOCK = ["Conv2D(8, 3, padding='same', activation='relu')", "BatchNormalization()",
         "Dropout(0.1)", "DepthwiseConv2D(3, padding='same')", "Activation('relu')"]


# As a user's machine runs it: Python may cache compiled modules (some sandboxes set
# PYTHONDONTWRITEBYTECODE, which makes every start recompile cnnc from source).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def process_time(args: list[str], runs: int = 21) -> float:
    """Median wall time of a whole `cnnc ...` process (start-up and imports included)."""
    cmd = [sys.executable, "-m", "cnnc", *args]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, env=ENV)  # warm bytecode and grammar caches
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False, env=ENV)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


NOTEBOOK_CELLS = [
    "import numpy as np\nimport matplotlib.pyplot as plt\nimport keras\nfrom keras import layers",
    "(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()\n"
    "x_train = x_train.astype('float32') / 255\nx_test = x_test.astype('float32') / 255\n"
    "y_train = keras.utils.to_categorical(y_train, 10)\nprint(x_train.shape)",
    "def block(x, filters, n):\n    for i in range(n):\n"
    "        x = layers.Conv2D(filters, 3, padding='same', activation='relu')(x)\n"
    "        x = layers.BatchNormalization()(x)\n    return layers.MaxPooling2D()(x)",
    "inputs = keras.Input(shape=x_train.shape[1:])\nx = block(inputs, 32, 2)\nx = block(x, 64, 2)\n"
    "x = block(x, 128, 2)\nx = layers.Flatten()(x)\nx = layers.Dropout(0.5)(x)\n"
    "outputs = layers.Dense(10, activation='softmax')(x)\nmodel = keras.Model(inputs, outputs)",
    "model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])\n"
    "history = model.fit(x_train, y_train, batch_size=64, epochs=2, validation_split=0.1)",
    "plt.plot(history.history['loss'])\nplt.plot(history.history['val_loss'])\nplt.show()",
]


def notebook(min_lines: int = 500) -> str:
    """A notebook of the usual cells, repeated (each model rebuilt) to `min_lines` lines."""
    import json
    cells, lines = [], 0
    while lines < min_lines:
        for src in NOTEBOOK_CELLS:
            cells.append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                          "source": src.splitlines(keepends=True)})
            cells.append({"cell_type": "markdown", "metadata": {}, "source": ["Next step."]})
            lines += src.count("\n") + 2
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def package(folder: Path, n_modules: int = 20) -> Path:
    """A project of `n_modules` modules in a package (each a block builder importing the
    one before it, relatively) and a training script that imports the last one and builds
    a model with an argparse flag choosing between two widths: `cnnc check train.py` reads
    the whole package and follows both sides of the flag."""
    pkg = folder / "nets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .block19 import build\n")
    for i in range(n_modules):
        prev = f"from .block{i - 1} import block{i - 1} as previous\n" if i else ""
        body = ("    x = previous(x, filters)\n" if i else "")
        (pkg / f"block{i}.py").write_text(
            "from tensorflow.keras import layers\n" + prev +
            f"def block{i}(x, filters):\n" + body +
            f"    x = layers.Conv2D(filters, 3, padding='same', name='conv{i}')(x)\n"
            f"    return layers.BatchNormalization(name='bn{i}')(x)\n" +
            ("def build(width=16):\n    from tensorflow import keras\n"
             "    inputs = keras.Input((32, 32, 3))\n"
             f"    x = block{i}(inputs, width)\n"
             "    x = layers.GlobalAveragePooling2D()(x)\n"
             "    return keras.Model(inputs, layers.Dense(10)(x))\n" if i == n_modules - 1 else ""))
    train = folder / "train.py"
    train.write_text("import argparse\nfrom nets import build\n"
                     "p = argparse.ArgumentParser()\np.add_argument('--wide', action='store_true')\n"
                     "p.add_argument('--arch')\nargs = p.parse_args()\n"
                     "model = build(32 if args.arch == 'wide' else 16)\n"
                     "model.compile(optimizer='adam', loss='categorical_crossentropy')\n")
    return train


def stack(n_layers: int, open_sizes: bool = False) -> str:
    """`open_sizes`: the image size and the class count left open (input (H, W, 8),
    num_classes: int), so every size check is solved symbolically."""
    head = ["num_classes: int", "input (H, W, 8)"] if open_sizes else ["input (32, 32, 8)"]
    lines = head + [BLOCK[i % len(BLOCK)] for i in range(n_layers - 2)]
    last = "num_classes" if open_sizes else "10"
    return "\n".join(lines + ["GlobalAveragePooling2D()", f"Dense({last}, activation='softmax')"]) + "\n"


UNET_LEVELS = 4


def unet(levels: int = UNET_LEVELS) -> str:
    """A U-Net on (None, None, 1): `levels` poolings, each undone by an up-sampling whose
    output is concatenated with the encoder's (the sizes that work: multiples of 2**levels)."""
    lines = ["inputs = Input(shape=(None, None, 1))", "x = Conv2D(8, 3, padding='same')(inputs)"]
    for i in range(levels):
        lines += [f"s{i} = x", "x = MaxPooling2D()(x)", "x = Conv2D(8, 3, padding='same')(x)"]
    for i in reversed(range(levels)):
        lines += ["x = UpSampling2D()(x)", f"x = Concatenate()([x, s{i}])",
                  "x = Conv2D(8, 3, padding='same')(x)"]
    return "\n".join(lines + ["model = Model(inputs, x)"]) + "\n"


def unet_time() -> tuple[float, float, str]:
    """(whole check, of which solving the size checks, the sizes that work) for unet()."""
    from cnnc.analysis import constraints
    from cnnc.frontends.cnn import check_text
    text = unet()
    check_text(text)
    spent = [0.0]
    require = constraints.Constraints.require

    def timed(self, check):
        t = time.perf_counter()
        try:
            return require(self, check)
        finally:
            spent[0] += time.perf_counter() - t
    times, solve = [], []
    constraints.Constraints.require = timed
    try:
        for _ in range(21):
            spent[0] = 0.0
            t = time.perf_counter()
            checked = check_text(text)
            times.append(time.perf_counter() - t)
            solve.append(spent[0])
    finally:
        constraints.Constraints.require = require
    return statistics.median(times), statistics.median(solve), checked.analysis.constraints.describe("H")


def check_time(n_layers: int, open_sizes: bool = False) -> float:
    from cnnc.frontends.cnn import check_text
    text = stack(n_layers, open_sizes)
    check_text(text)  # warm-up: grammar loaded once per process
    runs = max(3, min(50, 20000 // n_layers))
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        checked = check_text(text)
        times.append(time.perf_counter() - t)
    assert checked.ok and len(checked.analysis.infos) == n_layers, [d.message for d in checked.diagnostics]
    return statistics.median(times)


def imports_heavy() -> bool:
    code = ("import sys; from cnnc.cli import main; main(['check', 'examples/mnist.cnn']); "
            "print(any(m in sys.modules for m in ('onnx', 'onnxruntime', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() == "True"


def main() -> None:
    t_check = process_time(["check", "examples/mnist.cnn"])
    t_summary = process_time(["summary", "examples/mnist.cnn"])
    t_python = statistics.median(
        [_timed([sys.executable, "-c", "pass"]) for _ in range(11)])
    rows = [(n, check_time(n)) for n in (10, 100, 1000, 10000)]
    open_rows = [(n, check_time(n, open_sizes=True)) for n in (100, 1000, 10000)]
    unet_check, unet_solve, unet_sizes = unet_time()
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        nb = Path(tmp) / "long.ipynb"
        text = notebook()
        nb.write_text(text)
        import json
        cells = json.loads(text)["cells"]
        n_lines = sum(len("".join(c["source"]).splitlines()) for c in cells)
        n_models = sum("keras.Model(" in "".join(c["source"]) for c in cells)
        scripts = [(f"generated notebook, {n_lines} lines, {n_models} models",
                    process_time(["check", str(nb)], 11))]
        train = package(Path(tmp))
        scripts.append(("generated package of 20 modules (relative imports) and a script "
                        "whose flag has no default: both sides followed (goal < 1 s)",
                        process_time(["check", str(train)], 11)))
    for name, what in (("pyis_resnet_cifar10.py", "ResNet-56 script, 281 layers"),
                       ("tf_docs_transfer_learning.ipynb", "transfer learning, MobileNetV2 base"),
                       ("homl3_ch14_resnet34.py", "ResNet-34 of custom layers")):
        path = f"tests/data/scripts/{name}"
        scripts.append((f"`{name}` ({what})", process_time(["check", path], 11)))
    lines = [
        "## `cnnc check` and `cnnc summary`",
        "",
        f"Machine: {machine()}. Script: `python benchmarks/bench_check.py` (compiled-bytecode "
        "caching on, as after `pip install`; the LALR tables come from cnnc's user cache).",
        "",
        "| whole process (median of 21) | seconds |",
        "|---|---:|",
        f"| `cnnc check examples/mnist.cnn` (goal <= 0.2 s) | {t_check:.3f} |",
        f"| `cnnc summary examples/mnist.cnn` | {t_summary:.3f} |",
        f"| `python -c pass` (interpreter start-up, for scale) | {t_python:.3f} |",
        "",
        f"`cnnc check` imports numpy/onnx/onnxruntime: {'yes (a regression)' if imports_heavy() else 'no'}.",
        "",
        "| Keras code, `cnnc check` whole process (median of 11) | seconds |",
        "|---|---:|",
        *[f"| {what}{' (goal < 0.3 s)' if i == 0 else ''} | {t:.3f} |" for i, (what, t) in enumerate(scripts)],
        "",
        "| generated stack | check time (parse + resolve + infer + lint) | per layer |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {n:,} layers | {t * 1000:.1f} ms | {t / n * 1e6:.0f} µs |" for n, t in rows]
    lines += ["", "Per-layer time stays flat from 100 to 10,000 layers: checking is linear in the "
              "length of the stack.", "",
              "Open sizes (docs/LANGUAGE.md): the same stacks on `input (H, W, 8)` with an open "
              "class count, every size check solved symbolically:", "",
              "| generated stack, open sizes | check time | per layer |", "|---:|---:|---:|"]
    lines += [f"| {n:,} layers | {t * 1000:.1f} ms | {t / n * 1e6:.0f} µs |" for n, t in open_rows]
    lines += ["", f"A U-Net with {UNET_LEVELS} poolings on (None, None, 1): the whole check "
              f"{unet_check * 1000:.1f} ms, of which {unet_solve * 1000:.1f} ms solving its size checks "
              f"into the sizes that work (\"{unet_sizes}\"); median of 21."]
    text = "\n".join(lines)
    print(text)
    write_section("check", text)


def _timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
