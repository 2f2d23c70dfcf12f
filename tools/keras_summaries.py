"""Record what Keras's `model.summary()` prints, for tests/test_summary_graph.py (dev only).

Needs Keras 3 (any backend):

    TF_CPP_MIN_LOG_LEVEL=3 /tmp/kvenv/bin/python tools/keras_summaries.py [two_heads resnet50 ...]

For every case it builds the model in Keras (the same model as its .cnn file) and
writes Keras's printed summary to tests/data/summaries/<case>.txt, byte for byte.
Keras narrows its table to the terminal's width minus 4; this script sets COLUMNS=200
so the table has Keras's full width (108 for a graph, 88 for a chain), which is what
cnnc reproduces. tests/test_summary_graph.py compares cnnc's output with these files
(and, when Keras is installed, with a live `model.summary()`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "summaries"


def _two_heads(keras):
    from keras import layers
    image = keras.Input(shape=(32, 32, 3), name="image")
    meta = keras.Input(shape=(10,), name="meta")
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(image)
    s = layers.Conv2D(16, 1)(image)
    y = layers.Add()([x, s])
    y = layers.BatchNormalization()(y)
    z = layers.GlobalAveragePooling2D()(y)
    c = layers.concatenate([z, meta])
    o1 = layers.Dense(5, activation="softmax", name="class_output_with_a_rather_long_name_indeed")(c)
    o2 = layers.Dense(1, name="score")(c)
    return keras.Model([image, meta], [o1, o2], name="two_heads")


def _chain(keras):
    from keras import layers
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="chain")


def _application(attr: str):
    def build(keras):
        return getattr(keras.applications, attr)(weights=None)
    return build


# case -> (the .cnn file of the same model, relative to the repository, its Keras builder)
CASES = {
    "two_heads": ("tests/data/summaries/two_heads.cnn", _two_heads),
    "chain": ("tests/data/summaries/chain.cnn", _chain),
    "resnet50": ("examples/zoo/resnet50.cnn", _application("ResNet50")),
    "inception_v3": ("examples/zoo/inception_v3.cnn", _application("InceptionV3")),
}


def keras_summary(case: str) -> str:
    """What Keras prints for `model.summary()` of the case's model."""
    os.environ["COLUMNS"] = "200"          # Keras's full table width, whatever the terminal
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    keras.backend.clear_session()          # Keras's automatic names restart: conv2d, conv2d_1, ...
    model = CASES[case][1](keras)
    printed: list[str] = []
    model.summary(print_fn=printed.append)
    return "".join(printed)


def main(argv: list[str]) -> int:
    cases = argv or list(CASES)
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; choose from {', '.join(CASES)}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    for case in cases:
        text = keras_summary(case)
        (OUT / f"{case}.txt").write_text(text, encoding="utf-8")
        print(f"wrote {OUT / f'{case}.txt'} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
