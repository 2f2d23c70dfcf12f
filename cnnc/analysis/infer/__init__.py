"""Shape inference: output shapes, weights, parameter counts, MACs, receptive fields.

One rule per layer family in `RULES`; the rules live in modules by kind of layer
(windows, basic, resample, elementwise, merge), what they share in `common`, the
results' types in `core`. A rule gets the layer and what flows
into it (`Flow`) and returns the layer's `LayerInfo`, or raises `ShapeError`
with the arithmetic that failed. After an error the shapes downstream are
unknown and no further shape error is reported for them (they would only
repeat the first), but every layer's own arguments were already checked.
"""

from __future__ import annotations

from cnnc.analysis.constraints import Constraints
from cnnc.analysis.infer.basic import (
    activation,
    batch_norm,
    dense,
    flatten,
    reshape,
    spatial_dropout,
    zero_padding,
)
from cnnc.analysis.infer.core import (  # noqa: F401 (API)
    BYTES_PER_VALUE,
    CONSTRAINTS,
    Analysis,
    Flow,
    LayerInfo,
    Rule,
    ShapeError,
    Weight,
    input_flow,
)
from cnnc.analysis.infer.elementwise import (  # noqa: F401 (API)
    NormalizationShapes,
    augment,
    dropout,
    dropout_noise_shape,
    elementwise,
    layer_norm,
    layer_norm_axes,
    layer_scale,
    noise,
    normalization,
    normalization_shapes,
    prelu,
    prelu_alpha_shape,
    rescaling,
    softmax,
    softmax_axes,
)
from cnnc.analysis.infer.merge import _Provenance, concatenate, custom_scale, merge, tensor_op
from cnnc.analysis.infer.resample import conv_transpose, cropping, resizing, up_sampling
from cnnc.analysis.infer.windows import (
    avg_pool,
    conv,
    depthwise_conv,
    global_avg_pool,
    global_max_pool,
    max_pool,
    separable_conv,
)
from cnnc.analysis.ir import Layer, ModelIR
from cnnc.analysis.symbolic import dims_of
from cnnc.support.diagnostics import Reporter

RULES: dict[str, Rule] = {
    "conv": conv,
    "depthwise_conv": depthwise_conv,
    "separable_conv": separable_conv,
    "max_pool": max_pool,
    "avg_pool": avg_pool,
    "global_max_pool": global_max_pool,
    "global_avg_pool": global_avg_pool,
    "flatten": flatten,
    "dense": dense,
    "dropout": dropout,
    "spatial_dropout": spatial_dropout,
    "batch_norm": batch_norm,
    "activation": activation,
    "zero_padding": zero_padding,
    "reshape": reshape,
    "conv_transpose": conv_transpose,
    "up_sampling": up_sampling,
    "cropping": cropping,
    "resizing": resizing,
    "relu": elementwise,
    "leaky_relu": elementwise,
    "prelu": prelu,
    "elu": elementwise,
    "softmax": softmax,
    "identity": elementwise,
    "rescaling": rescaling,
    "normalization": normalization,
    "layer_norm": layer_norm,
    "layer_scale": layer_scale,
    "augment": augment,             # RandomFlip ... RandomBrightness: the identity
    "noise": noise,                 # GaussianNoise, GaussianDropout, AlphaDropout: the identity
    "merge": merge,                 # several inputs: (layer, flows, provenance)
    "concatenate": concatenate,
    "tensor_op": tensor_op,
    "custom_scale": custom_scale,
}


def infer(model: ModelIR, rep: Reporter, stop_after_line: int | None = None) -> Analysis:
    """Run every layer's rule in graph order; report shape errors and warnings to
    `rep`. Layers written after `stop_after_line` (where a statement failed to
    parse) get no shapes: what flows into them is unknown. Layers that reach no
    output are checked too (Keras checks a layer when it is called), but are not
    part of the Analysis."""
    constraints = Constraints()
    open_inputs = open_input_shapes(model)
    flows: dict[str, Flow | None] = {n.name: input_flow(shape) for n, shape
                                     in zip(model.inputs, open_inputs)}
    for flow in flows.values():
        for size in flow.shape:
            for d in dims_of(size).values():
                constraints.declare(d)
    infos: list[LayerInfo] = []
    complete = bool(model.inputs) and bool(model.outputs)
    live = len(model.layers)
    token = CONSTRAINTS.set(constraints)
    try:
        for k, layer in enumerate((*model.layers, *model.detached)):
            info = _infer_layer(model, layer, flows, rep, stop_after_line)
            flows[layer.name] = info.output if info is not None else None
            if k < live:
                if info is None:
                    complete = False
                else:
                    infos.append(info)
    finally:
        CONSTRAINTS.reset(token)
    return Analysis(model, tuple(infos), complete, constraints, tuple(open_inputs))


def open_input_shapes(model: ModelIR) -> list[tuple]:
    """The inputs' sample shapes with their open sizes as expressions (resolve names a
    None after its axis: H, W, ...)."""
    return [node.open or node.shape for node in model.inputs]
def _infer_layer(model: ModelIR, layer: Layer, flows: dict[str, Flow | None], rep: Reporter,
                 stop_after_line: int | None) -> LayerInfo | None:
    xs = [flows.get(src) for src in model.inputs_of(layer)]
    if stop_after_line is not None and layer.span.line > stop_after_line:
        return None
    if not xs or any(x is None for x in xs) or not layer.valid:
        return None
    try:
        if layer.spec.multi_input:
            info = RULES[layer.family](layer, xs, _Provenance(model, flows))
        else:
            info = RULES[layer.family](layer, xs[0])
    except ShapeError as e:
        rep.error(e.message, e.span or layer.span, *e.notes)
        return None
    for message, notes in info.warnings:
        rep.warning(message, layer.span, *notes)
    return info
