"""Write the small Keras files tests/test_keras_files.py reads (dev only, run once).

Needs Keras 3 (TensorFlow backend) and, for the Keras 2 files, tf_keras:

    TF_CPP_MIN_LOG_LEVEL=3 /tmp/kvenv/bin/python tools/make_keras_fixtures.py

Writes tests/data/keras/:
- seq_cnn.keras, seq_cnn.h5 (Keras 3's legacy HDF5), seq_cnn.json + seq_cnn.weights.h5:
  a Sequential CNN (Conv2D, BatchNormalization with random statistics, pooling,
  SeparableConv2D, Dropout, Dense) compiled with Adam;
- residual.keras, residual.json + residual.weights.h5: a functional residual net with
  two inputs, a merge, DepthwiseConv2D, Concatenate and tensor arithmetic (x * 0.5 + 1.0);
- keras2.h5 (tf_keras 2.x: Keras 2's config and weights layout), keras2.weights.h5 (tf_keras's
  new layout) and keras2_legacy_weights.h5 (Keras 2's layer_names layout);
- expected.npz: for each model a random input and Keras's output for it;
- expected.json: Keras's layers (name, class, output shape, params) per model.
Everything is seeded; each file is a few KB.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras"


def randomize_bn(model, rng) -> None:
    """Random BatchNormalization statistics, so inference differs from identity."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 1.5, var.shape)])


def table(model) -> list[dict]:
    out = []
    for layer in model.layers:
        shape = layer.output.shape if hasattr(layer, "output") else None
        out.append({"name": layer.name, "class": type(layer).__name__,
                    "output_shape": [None if d is None else int(d) for d in shape],
                    "params": int(layer.count_params())})
    return out


def keras3(expected: dict, layers: dict) -> None:
    import keras
    from keras import layers as L
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)

    keras.backend.clear_session()
    seq = keras.Sequential([
        keras.Input((12, 12, 1)),
        L.Conv2D(8, 3, activation="relu"),
        L.BatchNormalization(),
        L.MaxPooling2D(),
        L.SeparableConv2D(8, 3, padding="same", depth_multiplier=2),
        L.Activation("relu"),
        L.Dropout(0.25),
        L.Flatten(),
        L.Dense(5, activation="softmax"),
    ], name="seq_cnn")
    randomize_bn(seq, rng)
    seq.compile(optimizer=keras.optimizers.Adam(learning_rate=0.002),
                loss="categorical_crossentropy", metrics=["accuracy"])
    seq.save(OUT / "seq_cnn.keras")
    seq.save(OUT / "seq_cnn.h5")
    seq.save_weights(OUT / "seq_cnn.weights.h5")
    (OUT / "seq_cnn.json").write_text(seq.to_json())
    x = rng.normal(size=(3, 12, 12, 1)).astype("float32")
    expected["seq_cnn/x"] = x
    expected["seq_cnn/y"] = np.asarray(seq.predict(x, verbose=0))
    layers["seq_cnn"] = table(seq)

    keras.backend.clear_session()
    a = keras.Input((8, 8, 3), name="image")
    b = keras.Input((8, 8, 3), name="mask")
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="stem_conv")(a)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU()(x)
    y = L.Conv2D(8, 1)(b)
    s = L.Add()([x, y])
    s = s * 0.5 + 1.0
    d = L.DepthwiseConv2D(3, padding="same")(s)
    d = L.BatchNormalization()(d)
    d = L.Activation("swish")(d)
    c = L.Concatenate()([s, d])
    c = L.GlobalAveragePooling2D()(c)
    out = L.Dense(4, name="logits")(c)
    res = keras.Model([a, b], out, name="residual")
    randomize_bn(res, rng)
    res.save(OUT / "residual.keras")
    res.save_weights(OUT / "residual.weights.h5")
    (OUT / "residual.json").write_text(res.to_json())
    xa = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    xb = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    expected["residual/x0"], expected["residual/x1"] = xa, xb
    expected["residual/y"] = np.asarray(res.predict([xa, xb], verbose=0))
    layers["residual"] = table(res)


def keras2(expected: dict, layers: dict) -> None:
    import tf_keras as keras
    from tf_keras import layers as L
    rng = np.random.default_rng(1)
    keras.utils.set_random_seed(1)
    keras.backend.clear_session()
    a = keras.Input((8, 8, 2))
    x = L.Conv2D(6, 3, padding="same", kernel_initializer="he_normal")(a)
    x = L.BatchNormalization()(x)
    x = L.LeakyReLU()(x)
    y = L.Conv2D(6, 1)(a)
    x = L.Add()([x, y])
    x = L.MaxPooling2D()(x)
    x = L.Flatten()(x)
    x = L.Dense(3, activation="softmax")(x)
    m = keras.Model(a, x)
    randomize_bn(m, rng)
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
              loss="categorical_crossentropy", metrics=["accuracy"])
    m.save(OUT / "keras2.h5")
    m.save_weights(OUT / "keras2.weights.h5")     # tf_keras: Keras 3's layout (+ metrics)
    m.save_weights(OUT / "keras2_legacy_weights.h5")   # Keras 2's layer_names layout
    x0 = rng.normal(size=(2, 8, 8, 2)).astype("float32")
    expected["keras2/x"] = x0
    expected["keras2/y"] = np.asarray(m.predict(x0, verbose=0))
    layers["keras2"] = [{"name": l.name, "class": type(l).__name__,
                         "output_shape": [None if d is None else int(d)
                                          for d in (l.output_shape[0] if isinstance(l.output_shape, list)
                                                    else l.output_shape)],
                         "params": int(l.count_params())} for l in m.layers]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    expected: dict = {}
    layers: dict = {}
    keras3(expected, layers)
    try:
        keras2(expected, layers)
    except ImportError:
        print("tf_keras is not installed: keras2.h5 not written", file=sys.stderr)
    np.savez(OUT / "expected.npz", **expected)
    (OUT / "expected.json").write_text(json.dumps(layers, indent=1) + "\n")
    for p in sorted(OUT.iterdir()):
        print(f"{p.relative_to(OUT.parent.parent.parent)}: {p.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
