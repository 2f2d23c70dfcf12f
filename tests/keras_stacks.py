"""Random layer stacks in .cnn syntax, and their twin built in Keras.

Used by test_keras_parity.py (only where Keras is installed) to compare cnnc's
shapes, parameter counts and refusals with Keras itself on many stacks.
"""

from __future__ import annotations

import random

_ACTS = ["relu", "linear", "tanh", "sigmoid", "softmax", "gelu", "elu", "selu", "swish",
         "leaky_relu", "hard_sigmoid", "relu6", "softplus", "softsign", "exponential", "silu"]


def _tup(rng: random.Random, r: int, lo: int, hi: int) -> str:
    if rng.random() < 0.5:
        return str(rng.randint(lo, hi))
    vals = [str(rng.randint(lo, hi)) for _ in range(r)]
    return "(" + ", ".join(vals) + ("," if r == 1 else "") + ")"


def _conv_args(rng: random.Random, r: int, kind: str) -> list[str]:
    args = []
    if kind != "depthwise":
        args.append(str(rng.randint(1, 12)))
    args.append(_tup(rng, r, 1, 5))
    kw = []
    if rng.random() < 0.5:
        kw.append(f"strides={_tup(rng, r, 1, 3)}")
    elif rng.random() < 0.4:
        kw.append(f"dilation_rate={_tup(rng, r, 1, 3)}")
    pads = ["valid", "same"] + (["causal"] if r == 1 and kind == "conv" else [])
    kw.append(f"padding='{rng.choice(pads)}'")
    if kind != "conv" and rng.random() < 0.5:
        kw.append(f"depth_multiplier={rng.randint(1, 3)}")
    if rng.random() < 0.3:
        kw.append("use_bias=False")
    if rng.random() < 0.5:
        kw.append(f"activation='{rng.choice(_ACTS)}'")
    return args + kw


def random_layer(rng: random.Random, r: int) -> str:
    d = f"{r}D"
    choice = rng.choice(["conv", "conv", "pool", "pool", "depthwise", "separable", "global", "zp",
                         "bn", "drop", "sdrop", "act", "flatten_dense", "dense", "reshape"])
    if choice == "conv":
        return f"Conv{d}({', '.join(_conv_args(rng, r, 'conv'))})"
    if choice == "depthwise" and r <= 2:
        return f"DepthwiseConv{d}({', '.join(_conv_args(rng, r, 'depthwise'))})"
    if choice == "separable" and r <= 2:
        return f"SeparableConv{d}({', '.join(_conv_args(rng, r, 'separable'))})"
    if choice == "pool":
        kind = rng.choice(["MaxPooling", "AveragePooling"])
        kw = [f"pool_size={_tup(rng, r, 1, 4)}"]
        if rng.random() < 0.5:
            kw.append(f"strides={_tup(rng, r, 1, 3)}")
        kw.append(f"padding='{rng.choice(['valid', 'same'])}'")
        return f"{kind}{d}({', '.join(kw)})"
    if choice == "global":
        kind = rng.choice(["GlobalMaxPooling", "GlobalAveragePooling"])
        return f"{kind}{d}(keepdims={rng.choice(['True', 'False'])})"
    if choice == "zp":
        if r == 1:
            arg = rng.choice(["1", "(2, 0)", "3"])
        else:
            arg = rng.choice(["1", _tup(rng, r, 0, 2),
                              "(" + ", ".join(f"({rng.randint(0, 2)}, {rng.randint(0, 2)})"
                                              for _ in range(r)) + ")"])
        return f"ZeroPadding{d}({arg})"
    if choice == "bn":
        kw = []
        if rng.random() < 0.3:
            kw.append("center=False")
        if rng.random() < 0.3:
            kw.append("scale=False")
        if rng.random() < 0.15:
            kw.append(f"axis={rng.choice([1, -2, 2])}")
        if rng.random() < 0.15:
            kw.append("trainable=False")
        return f"BatchNormalization({', '.join(kw)})"
    if choice == "drop":
        return f"Dropout({rng.choice(['0.1', '0.5', '0.25'])})"
    if choice == "sdrop":
        return f"SpatialDropout{d}(0.2)"
    if choice == "act":
        return f"Activation('{rng.choice(_ACTS)}')"
    if choice == "dense":
        return f"Dense({rng.randint(1, 20)}, activation='{rng.choice(_ACTS)}')"
    if choice == "reshape":
        return rng.choice(["Reshape((-1,))", "Reshape((-1, 2))", "Reshape((4, -1))"])
    return "Flatten()"


def random_stack(seed: int) -> str:
    rng = random.Random(seed)
    r = rng.choice([1, 2, 2, 2, 3])
    hi = {1: 40, 2: 24, 3: 10}[r]
    spatial = [rng.randint(1, hi) for _ in range(r)]
    shape = ", ".join(str(s) for s in spatial + [rng.randint(1, 6)])
    lines = [f"input ({shape})"]
    for _ in range(rng.randint(1, 6)):
        lines.append(random_layer(rng, r))
    if rng.random() < 0.4:
        lines += ["Flatten()", f"Dense({rng.randint(1, 10)})"]
    return "\n".join(lines) + "\n"


def _keras_class(keras, kind: str):
    if kind == "LayerScale":     # defined by Keras's ConvNeXt, not in keras.layers
        from keras.src.applications.convnext import LayerScale
        return LayerScale
    if kind == "CustomScaleLayer":   # defined by Keras's InceptionResNetV2
        from keras.src.applications.inception_resnet_v2 import CustomScaleLayer
        return CustomScaleLayer
    return getattr(keras.layers, kind)


def _keras_op(keras, layer, xs):
    """Arithmetic on tensors, as Keras records it (keras.ops)."""
    c = layer.args["constant"]
    fn = {"Add": keras.ops.add, "Subtract": keras.ops.subtract, "Multiply": keras.ops.multiply,
          "TrueDivide": keras.ops.true_divide}.get(layer.kind)
    if layer.kind == "Negative":
        return keras.ops.negative(xs[0])
    if c is None:
        return fn(xs[0], xs[1])
    return fn(c, xs[0]) if layer.args["reverse"] else fn(xs[0], c)


def keras_model(ir):
    """The same model in Keras, from cnnc's IR (Keras must be importable): a Sequential
    for a chain, a functional Model for a graph."""
    import keras

    skip = {"input_shape", "input_dim", "batch_size", "autocast"}
    built = []
    for layer in ir.layers:
        if layer.is_op:
            built.append((layer, None))
            continue
        cls = _keras_class(keras, layer.kind)
        kwargs = {}
        for k, v in layer.args.items():
            if k in skip or (k not in layer.arg_spans and k != "name"):
                continue
            if hasattr(v, "name") and hasattr(v, "args") and not isinstance(v, str):
                v = keras.initializers.get({"class_name": v.name, "config": dict(v.args)})
            if (layer.kind, k) in (("ZeroPadding1D", "padding"), ("Cropping1D", "cropping")):
                v = v[0]  # cnnc keeps one (before, after) pair per axis
            kwargs[k] = v
        built.append((layer, cls(**kwargs)))
    if not ir.is_graph and not any(l.is_op for l in ir.layers):
        return keras.Sequential([keras.Input(shape=ir.input_shape)] + [k for _, k in built],
                                name=ir.name)
    tensors = {n.name: keras.Input(shape=n.shape, name=n.name) for n in ir.inputs}
    for layer, k in built:
        xs = [tensors[s] for s in layer.inputs]
        if k is None:
            tensors[layer.name] = _keras_op(keras, layer, xs)
        else:
            tensors[layer.name] = k(xs if layer.spec.multi_input else xs[0])
    return keras.Model([tensors[n.name] for n in ir.inputs], [tensors[o] for o in ir.outputs],
                       name=ir.name)
