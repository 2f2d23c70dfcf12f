"""config.json of a Keras 3 `.keras` file, from cnnc's IR: a Sequential or a Functional.

One rule per layer family in `LAYER_CONFIGS` (tests/test_keras_export.py fails when a
family lacks one). Each rule returns the layer's own keys in the order Keras 3.15's
`get_config()` writes them; `layer_config` adds the envelope (`module`, `class_name`,
`registered_name`, `build_config`) and, in a Functional, the `inbound_nodes` with
`__keras_tensor__` arguments. Tensor arithmetic (`x + 3.0`) is written as Keras writes
its operations (`keras.src.ops.numpy.Add`, ...), which are nodes but not layers.

Keys that newer Keras versions added for features cnnc refuses (LoRA, quantization,
the initializers' input/output axes, InputLayer's `optional`) are left out: they are at
their defaults, and leaving them out lets older Keras 3 releases read the file too.
Pure standard library: no NumPy here.
"""

from __future__ import annotations

from typing import Any, Callable

from cnnc.analysis.arguments import INITIALIZERS, Initializer, Regularizer, snake_case
from cnnc.analysis.compile_spec import CompileSpec, FitSpec
from cnnc.analysis.ir import Layer, ModelIR

Json = dict[str, Any]

POLICY: Json = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                "registered_name": None}

# Layers whose class defines build(): Keras records their input shape as build_config.
BUILT = frozenset({
    "conv", "depthwise_conv", "separable_conv", "conv_transpose", "dense", "flatten",
    "batch_norm", "zero_padding", "cropping", "up_sampling", "resizing", "prelu",
    "rescaling", "normalization", "layer_norm", "layer_scale", "merge", "concatenate",
    "custom_scale", "augment"})

# The keyword arguments Keras 3.15 records in a Functional's inbound node, by family
# (what its call() signature fills in when the layer is called on a symbolic tensor).
NODE_KWARGS: dict[str, Json] = {
    "dropout": {"training": False}, "spatial_dropout": {"training": False},
    "batch_norm": {"mask": None}, "softmax": {"mask": None}, "resizing": {"training": True},
    "augment": {"training": True}, "noise": {"training": False},
}
NODE_KWARGS_BY_KIND: dict[str, Json] = {"GlobalAveragePooling1D": {"mask": None}}

# Where a class lives, when not keras.layers, and its registered name.
MODULES: dict[str, tuple[str, str | None]] = {
    "LayerScale": ("keras.src.applications.convnext", "LayerScale"),
    "CustomScaleLayer": ("keras.src.applications.inception_resnet_v2", "CustomScaleLayer"),
}
OP_MODULE = "keras.src.ops.numpy"


# --- values ----------------------------------------------------------------------------

def initializer(init: Initializer) -> Json:
    """Keras's class and config, every argument given (defaults filled)."""
    cfg = {k: _plain(v) for k, v in INITIALIZERS.get(init.name, ())}
    cfg.update({k: _plain(v) for k, v in init.args})
    return {"module": "keras.initializers", "class_name": init.name, "config": cfg,
            "registered_name": None}


def regularizer(reg: Regularizer | None) -> Json | None:
    """L1/L2/L1L2 as Keras writes them; cnnc keeps only (l1, l2), so the class is the
    simplest that gives the same penalty."""
    if reg is None:
        return None
    if reg.l1 == 0.0 and reg.l2 != 0.0:
        cls, cfg = "L2", {"l2": reg.l2}
    elif reg.l2 == 0.0 and reg.l1 != 0.0:
        cls, cfg = "L1", {"l1": reg.l1}
    else:
        cls, cfg = "L1L2", {"l1": reg.l1, "l2": reg.l2}
    return {"module": "keras.regularizers", "class_name": cls, "config": cfg,
            "registered_name": None}


def _plain(v: Any) -> Any:
    """Tuples (nested) as JSON lists; everything else as is."""
    if isinstance(v, tuple):
        return [_plain(i) for i in v]
    return v


def _axis(v: tuple[int, ...] | None) -> Any:
    """An axis tuple as Keras keeps an axis given as an int: one axis -> int."""
    if v is None:
        return None
    return v[0] if len(v) == 1 else list(v)


def _a(layer: Layer, *keys: str) -> Json:
    """These arguments as JSON values, initializers and regularizers serialised."""
    out: Json = {}
    for k in keys:
        v = layer.args.get(k)
        if isinstance(v, Initializer):
            out[k] = initializer(v)
        elif isinstance(v, Regularizer) or (v is None and k.endswith("_regularizer")):
            out[k] = regularizer(v)
        else:
            out[k] = _plain(v)
    return out


CL = {"data_format": "channels_last"}
_NONE = lambda *keys: {k: None for k in keys}  # noqa: E731


# --- one rule per family: the layer's own keys, after name/trainable/dtype ----------------

def _conv(l: Layer) -> Json:
    return {**_a(l, "filters", "kernel_size", "strides", "padding"), **CL,
            **_a(l, "dilation_rate", "groups", "activation", "use_bias", "kernel_initializer",
                 "bias_initializer", "kernel_regularizer", "bias_regularizer"),
            **_NONE("activity_regularizer", "kernel_constraint", "bias_constraint")}


def _depthwise_conv(l: Layer) -> Json:
    return {**_a(l, "depth_multiplier", "kernel_size", "strides", "padding"), **CL,
            **_a(l, "dilation_rate", "activation", "use_bias", "depthwise_initializer",
                 "bias_initializer", "depthwise_regularizer", "bias_regularizer"),
            **_NONE("activity_regularizer", "depthwise_constraint", "bias_constraint")}


def _separable_conv(l: Layer) -> Json:
    return {**_a(l, "depth_multiplier", "filters", "kernel_size", "strides", "padding"), **CL,
            **_a(l, "dilation_rate", "activation", "use_bias", "depthwise_initializer",
                 "pointwise_initializer", "bias_initializer", "depthwise_regularizer",
                 "pointwise_regularizer", "bias_regularizer"),
            **_NONE("activity_regularizer", "depthwise_constraint", "pointwise_constraint",
                    "bias_constraint")}


def _conv_transpose(l: Layer) -> Json:
    return {**_a(l, "filters", "kernel_size", "strides", "padding", "output_padding"), **CL,
            **_a(l, "dilation_rate", "activation", "use_bias", "kernel_initializer",
                 "bias_initializer", "kernel_regularizer", "bias_regularizer"),
            **_NONE("activity_regularizer", "kernel_constraint", "bias_constraint")}


def _pool(l: Layer) -> Json:
    strides = l.args["strides"] if l.args["strides"] is not None else l.args["pool_size"]
    return {**_a(l, "pool_size", "padding"), "strides": list(strides), **CL}


def _global_pool(l: Layer) -> Json:
    return {**CL, **_a(l, "keepdims")}


def _dense(l: Layer) -> Json:
    return {**_a(l, "units", "activation", "use_bias", "kernel_initializer", "bias_initializer",
                 "kernel_regularizer", "bias_regularizer"),
            **_NONE("kernel_constraint", "bias_constraint")}


def _batch_norm(l: Layer) -> Json:
    return {**_a(l, "axis", "momentum", "epsilon", "center", "scale", "beta_initializer",
                 "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
                 "beta_regularizer", "gamma_regularizer"),
            **_NONE("beta_constraint", "gamma_constraint"),
            **_a(l, "synchronized", "renorm", "renorm_clipping", "renorm_momentum")}


def _pairs(l: Layer, key: str) -> Json:
    """ZeroPadding/Cropping: one (before, after) pair per axis; 1-D keeps the bare pair."""
    v = _plain(l.args[key])
    return {key: v[0] if l.rank == 1 else v}


def _zero_padding(l: Layer) -> Json:
    return {**_pairs(l, "padding"), **CL}


def _cropping(l: Layer) -> Json:
    return {**_pairs(l, "cropping"), **({} if l.rank == 1 else CL)}


def _up_sampling(l: Layer) -> Json:
    if l.rank == 1:
        return _a(l, "size")
    if l.rank == 2:
        return {**_a(l, "size"), **CL, **_a(l, "interpolation")}
    return {**_a(l, "size"), **CL}


def _resizing(l: Layer) -> Json:
    return {**CL, **_a(l, "height", "width", "interpolation", "crop_to_aspect_ratio",
                       "pad_to_aspect_ratio", "fill_mode", "fill_value", "antialias")}


def _leaky_relu(l: Layer) -> Json:
    alpha = l.args.get("alpha")
    return {"negative_slope": alpha if alpha is not None else l.args["negative_slope"]}


def _prelu(l: Layer) -> Json:
    return {**_a(l, "alpha_initializer", "alpha_regularizer"), "alpha_constraint": None,
            **_a(l, "shared_axes")}


def _layer_norm(l: Layer) -> Json:
    # a list once built (Keras's build() turns axis=-1 into [-1])
    return {"axis": list(l.args["axis"]), **_a(l, "epsilon", "center", "scale", "rms_scaling",
                                                  "beta_initializer", "gamma_initializer",
                                                  "beta_regularizer", "gamma_regularizer"),
            **_NONE("beta_constraint", "gamma_constraint")}


def _normalization(l: Layer) -> Json:
    # Keras keeps axis=None as (): one statistic over everything
    return {"axis": list(l.args["axis"] or ()), **_a(l, "invert", "mean", "variance")}


# The augmentation and noise layers' own keys (the image layers' after data_format), in
# Keras 3.15's order.
_AUGMENT_KEYS = {
    "RandomFlip": ("seed", "mode"),
    "RandomRotation": ("factor", "fill_mode", "fill_value", "interpolation", "seed"),
    "RandomZoom": ("height_factor", "width_factor", "fill_mode", "interpolation", "seed",
                   "fill_value"),
    "RandomTranslation": ("height_factor", "width_factor", "fill_mode", "interpolation", "seed",
                          "fill_value"),
    "RandomContrast": ("factor", "value_range", "seed"),
    "RandomBrightness": ("factor", "value_range", "seed"),
    "GaussianNoise": ("stddev", "seed"),
    "GaussianDropout": ("rate", "seed"),
    "AlphaDropout": ("rate", "seed", "noise_shape"),
}
# BaseImagePreprocessingLayer._set_factor keeps (lower, upper): a number f as
# (max(-|f|, bound), |f|), a pair sorted
_FACTOR_LOWER_BOUND = {"RandomRotation": -1.0, "RandomContrast": 0.0, "RandomBrightness": -1.0}


def _augment(l: Layer) -> Json:
    out = {**CL, **_a(l, *_AUGMENT_KEYS[l.kind])}
    if l.kind in _FACTOR_LOWER_BOUND:
        f = l.args["factor"]
        out["factor"] = sorted(f) if isinstance(f, tuple) else \
            [max(-abs(f), _FACTOR_LOWER_BOUND[l.kind]), abs(f)]
    if l.kind == "RandomBrightness":
        out["value_range"] = sorted(l.args["value_range"])
    return out


def _keys(*keys: str) -> Callable[[Layer], Json]:
    return lambda l: _a(l, *keys)


LAYER_CONFIGS: dict[str, Callable[[Layer], Json]] = {
    "conv": _conv,
    "depthwise_conv": _depthwise_conv,
    "separable_conv": _separable_conv,
    "conv_transpose": _conv_transpose,
    "max_pool": _pool,
    "avg_pool": _pool,
    "global_max_pool": _global_pool,
    "global_avg_pool": _global_pool,
    "flatten": lambda l: dict(CL),
    "dense": _dense,
    "dropout": _keys("rate", "seed", "noise_shape"),
    "spatial_dropout": lambda l: {},        # its own head: see _spatial_dropout_head
    "batch_norm": _batch_norm,
    "activation": _keys("activation"),
    "zero_padding": _zero_padding,
    "reshape": _keys("target_shape"),
    "up_sampling": _up_sampling,
    "cropping": _cropping,
    "resizing": _resizing,
    "relu": _keys("max_value", "negative_slope", "threshold"),
    "leaky_relu": _leaky_relu,
    "prelu": _prelu,
    "elu": _keys("alpha"),
    "softmax": lambda l: {"axis": _axis(l.args["axis"])},
    "identity": lambda l: {},
    "rescaling": _keys("scale", "offset"),
    "normalization": _normalization,
    "layer_norm": _layer_norm,
    "layer_scale": _keys("init_values", "projection_dim"),
    "augment": _augment,
    "noise": lambda l: _a(l, *_AUGMENT_KEYS[l.kind]),
    "merge": lambda l: {},
    "custom_scale": _keys("scale"),
    "concatenate": _keys("axis"),
    "tensor_op": lambda l: {},              # operations: only their name
}


def _spatial_dropout_head(l: Layer) -> Json:
    """SpatialDropout's get_config is its own: no trainable, dtype as a string."""
    return {**_a(l, "rate", "seed"), "name": l.name, "dtype": "float32",
            **({} if l.rank == 1 else CL)}


def own_config(l: Layer) -> Json:
    """The layer's `config` dict, as Keras's get_config writes it."""
    if l.is_op:
        return {"name": l.name}
    if l.family == "spatial_dropout":
        return _spatial_dropout_head(l)
    head: Json = {"name": l.name, "trainable": l.trainable, "dtype": dict(POLICY)}
    body = LAYER_CONFIGS[l.family](l)
    if l.family == "elu":      # ELU writes alpha before trainable
        return {"name": l.name, **body, "trainable": l.trainable, "dtype": dict(POLICY)}
    return {**head, **body}


# --- layers, inputs, models ----------------------------------------------------------------

def batch_shape(shape: tuple[int | None, ...]) -> list[int | None]:
    return [None, *shape]


def input_layer(name: str, shape: tuple[int | None, ...]) -> Json:
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": batch_shape(shape), "dtype": "float32", "sparse": False,
                       "ragged": False, "name": name},
            "registered_name": None}


def layer_config(l: Layer, input_shapes: list[tuple[int | None, ...]]) -> Json:
    """The envelope around own_config: module, class, registered name, build_config."""
    if l.is_op:
        return {"module": OP_MODULE, "class_name": l.kind, "config": own_config(l),
                "registered_name": l.kind}
    module, registered = MODULES.get(l.kind, ("keras.layers", None))
    out: Json = {"module": module, "class_name": l.kind, "config": own_config(l),
                 "registered_name": registered}
    if l.family in BUILT:
        shapes = [batch_shape(s) for s in input_shapes]
        out["build_config"] = {"input_shape": shapes if l.spec.multi_input else shapes[0]}
    return out


def _tensor(ir: ModelIR, shapes: dict[str, tuple], name: str) -> Json:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": batch_shape(shapes[name]), "dtype": "float32",
                       "keras_history": [name, 0, 0]}}


def _node_args(ir: ModelIR, shapes: dict[str, tuple], l: Layer) -> list:
    tensors = [_tensor(ir, shapes, n) for n in l.inputs]
    if l.is_op:
        const = l.args.get("constant")
        if const is None:
            return tensors                     # x * y, or -x
        return [const, *tensors] if l.args.get("reverse") else [*tensors, const]
    return [tensors] if l.spec.multi_input else tensors


def _node_kwargs(l: Layer) -> Json:
    if l.is_op:
        return {}
    return dict(NODE_KWARGS_BY_KIND.get(l.kind, NODE_KWARGS.get(l.family, {})))


def model_config(ir: ModelIR, shapes: dict[str, tuple], compile_config: Json | None) -> Json:
    """The whole config.json: Sequential for a model written as a line, Functional for
    one written with tensors or that is a graph. `shapes` maps every node name to its
    sample shape (batch left out)."""
    if is_sequential(ir):
        return _sequential(ir, shapes, compile_config)
    return _functional(ir, shapes, compile_config)


def is_sequential(ir: ModelIR) -> bool:
    return not ir.functional and not ir.is_graph and len(ir.inputs) == 1


def _sequential(ir: ModelIR, shapes: dict[str, tuple], compile_config: Json | None) -> Json:
    node = ir.inputs[0]
    layers = [input_layer(node.name, node.shape)]
    layers += [layer_config(l, [shapes[i] for i in l.inputs]) for l in ir.layers]
    out: Json = {"module": "keras", "class_name": "Sequential",
                 "config": {"name": ir.name, "trainable": True, "dtype": dict(POLICY),
                            "layers": layers, "build_input_shape": batch_shape(node.shape)},
                 "registered_name": None,
                 "build_config": {"input_shape": batch_shape(node.shape)}}
    out["compile_config"] = compile_config or {}     # Keras writes {} when not compiled
    return out


def _functional(ir: ModelIR, shapes: dict[str, tuple], compile_config: Json | None) -> Json:
    layers = []
    order = ir.layer_order or (tuple(n.name for n in ir.inputs) + tuple(l.name for l in ir.layers))
    for name in order:
        node = ir.input_node(name)
        if node is not None:
            entry = input_layer(node.name, node.shape)
            entry.update(name=node.name, inbound_nodes=[])
        else:
            l = ir.layer(name)
            entry = layer_config(l, [shapes[i] for i in l.inputs])
            entry.update(name=l.name, inbound_nodes=[{"args": _node_args(ir, shapes, l),
                                                      "kwargs": _node_kwargs(l)}])
        layers.append(entry)
    ins = [[n.name, 0, 0] for n in ir.inputs]
    outs = [[o, 0, 0] for o in ir.outputs]
    out: Json = {"module": "keras.src.models.functional", "class_name": "Functional",
                 "config": {"name": ir.name, "trainable": True, "layers": layers,
                            "input_layers": ins[0] if len(ins) == 1 else ins,
                            "output_layers": outs[0] if len(outs) == 1 else outs},
                 "registered_name": "Functional", "build_config": {"input_shape": None}}
    out["compile_config"] = compile_config or {}     # Keras writes {} when not compiled
    return out


# --- compile(): optimizer, loss, metrics ----------------------------------------------------

# Keras 3's optimizer get_config keys, in its order, after name and learning_rate.
_OPT_COMMON = ("weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "use_ema",
               "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
               "gradient_accumulation_steps")
_OPT_OWN = {"SGD": ("momentum", "nesterov"), "RMSprop": ("rho", "momentum", "epsilon", "centered"),
            "Adam": ("beta_1", "beta_2", "epsilon", "amsgrad")}

_LOSS_CLASSES = {"categorical_crossentropy": "CategoricalCrossentropy",
                 "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
                 "binary_crossentropy": "BinaryCrossentropy",
                 "mean_squared_error": "MeanSquaredError",
                 "mean_absolute_error": "MeanAbsoluteError"}


def optimizer_name(cls: str) -> str:
    """Keras's default optimizer name: snake_case of the class (RMSprop -> rm_sprop)."""
    return snake_case(cls)


def learning_rate(spec) -> Any:
    """A float, or Keras 2's `decay` as the schedule that computes it in Keras 3:
    InverseTimeDecay(lr, decay_steps=1, decay_rate=decay) = lr / (1 + decay * step)."""
    lr = float(spec.params["learning_rate"])
    decay = float(spec.params.get("decay") or 0.0)
    if not decay:
        return lr
    return {"module": "keras.optimizers.schedules", "class_name": "InverseTimeDecay",
            "config": {"initial_learning_rate": lr, "decay_steps": 1, "decay_rate": decay,
                       "staircase": False, "name": "InverseTimeDecay"},
            "registered_name": None}


def optimizer_config(spec) -> Json:
    p = spec.params
    name = p.get("name") or optimizer_name(spec.name)
    cfg: Json = {"name": name, "learning_rate": learning_rate(spec)}
    cfg.update({k: p.get(k) for k in _OPT_COMMON})
    cfg.update({k: p[k] for k in _OPT_OWN[spec.name]})
    return {"module": "keras.optimizers", "class_name": spec.name, "config": cfg,
            "registered_name": None}


def loss_config(loss) -> Any:
    """The loss's name, or its class with arguments when they are not the defaults."""
    if loss is None:
        return None
    if not loss.from_logits and not loss.label_smoothing:
        return loss.name
    cfg: Json = {"name": loss.name, "reduction": "sum_over_batch_size", "from_logits": loss.from_logits}
    if loss.name == "sparse_categorical_crossentropy":
        cfg["ignore_class"] = None
    else:
        cfg.update(label_smoothing=loss.label_smoothing, axis=-1)
    return {"module": "keras.losses", "class_name": _LOSS_CLASSES[loss.name], "config": cfg,
            "registered_name": None}


def compile_config(spec: CompileSpec | None) -> Json | None:
    if spec is None:
        return None
    return {"optimizer": optimizer_config(spec.optimizer), "loss": loss_config(spec.loss),
            "loss_weights": None, "metrics": list(spec.metrics) or None, "weighted_metrics": None,
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": "auto"}


def fit_settings(fit: FitSpec | None) -> Json | None:
    """fit()'s settings, which a .keras file has no place for: kept in metadata.json."""
    if fit is None:
        return None
    return {"epochs": fit.epochs, "batch_size": fit.batch_size,
            "validation_split": fit.validation_split, "shuffle": fit.shuffle,
            "initial_epoch": fit.initial_epoch, "seed": fit.seed}
