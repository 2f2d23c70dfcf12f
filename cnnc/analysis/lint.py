"""Warnings for stacks that are legal but probably not what was meant."""

from __future__ import annotations

from cnnc.analysis.infer import Analysis
from cnnc.analysis.ir import Layer, ModelIR
from cnnc.support.diagnostics import Reporter

_PASS_THROUGH = ("dropout", "spatial_dropout", "flatten", "reshape", "identity", "augment", "noise")
_PROBABILITIES = ("softmax", "sigmoid")


def output_activation(model: ModelIR, output: str | None = None) -> tuple[str, Layer] | None:
    """The activation that produces an output (the first by default), looking back
    through layers that do not change values (Dropout, Flatten, Reshape)."""
    name = output if output is not None else (model.outputs[0] if model.outputs else None)
    while name is not None and model.input_node(name) is None:
        try:
            layer = model.layer(name)
        except KeyError:
            return None
        if layer.family in _PASS_THROUGH and len(layer.inputs) == 1:
            name = layer.inputs[0]
            continue
        act = layer.args.get("activation")
        if layer.family == "softmax" and layer.args.get("axis") == (-1,):
            act = "softmax"         # a Softmax() layer is the softmax activation
        return (act, layer) if act is not None else ("linear", layer)
    return None


def _output_layers(model: ModelIR) -> set[str]:
    found = (output_activation(model, o) for o in model.outputs)
    return {f[1].name for f in found if f is not None}


def lint(model: ModelIR, analysis: Analysis, rep: Reporter) -> None:
    _softmax_not_last(model, rep)
    _tf_depthwise_strides(model, rep)
    _dropout_last(model, rep)
    _single_unit_softmax(analysis, rep)
    _loss_vs_output(model, analysis, rep)


def _softmax_not_last(model: ModelIR, rep: Reporter) -> None:
    last = _output_layers(model)
    for layer in model.layers:
        if layer.args.get("activation") == "softmax" and layer.name not in last:
            rep.warning(f"softmax on '{layer.name}', which is not the output layer", layer.span,
                        "softmax belongs on the last layer of a classifier; use 'relu' here")


def _tf_depthwise_strides(model: ModelIR, rep: Reporter) -> None:
    """TensorFlow's depthwise kernel needs equal strides on both axes; Keras's
    shape rules (and JAX, and cnnc) do not."""
    for layer in model.layers:
        strides = layer.args.get("strides")
        if (layer.family in ("depthwise_conv", "separable_conv") and layer.rank == 2
                and strides and strides[0] != strides[1]):
            rep.warning(f"{layer.kind} with unequal strides {strides} will not run on Keras's "
                        "TensorFlow backend", layer.span_of("strides"),
                        "TensorFlow's depthwise convolution supports only equal strides; cnnc, "
                        "ONNX and Keras's JAX backend compute it")


def _dropout_last(model: ModelIR, rep: Reporter) -> None:
    for name in model.outputs:
        if model.input_node(name) is not None:
            continue
        layer = model.layer(name)
        if layer.family not in ("dropout", "spatial_dropout"):
            continue
        if model.consumers.get(name):      # also read inside the model: a block's skip tensor
            continue
        rep.warning(f"{layer.kind} is the last layer", layer.span,
                    "in training it zeroes random outputs that the loss then sees; "
                    "put it before the last Dense")


def _single_unit_softmax(analysis: Analysis, rep: Reporter) -> None:
    for info in analysis.infos:
        if info.layer.args.get("activation") == "softmax" and info.output_shape[-1:] == (1,):
            rep.warning(f"softmax over a single unit always outputs 1.0 ('{info.name}')",
                        info.layer.span_of("activation"),
                        "for a binary classifier use activation='sigmoid' with binary_crossentropy")


def _loss_vs_output(model: ModelIR, analysis: Analysis, rep: Reporter) -> None:
    if model.compile is None or model.compile.loss is None or not analysis.complete:
        return
    loss = model.compile.loss
    out = output_activation(model)
    if out is None:
        return
    act, layer = out
    units = analysis.output_shape[-1] if analysis.output_shape else None
    categorical = loss.name in ("categorical_crossentropy", "sparse_categorical_crossentropy")
    if categorical and units == 1:
        rep.warning(f"{loss.name} on a 1-unit output: the loss is always 0", loss.span,
                    "for a binary classifier use binary_crossentropy with a 1-unit sigmoid, or "
                    "give the last layer one unit per class")
    elif loss.name == "binary_crossentropy" and act == "softmax" and isinstance(units, int) and units > 1:
        rep.warning(f"binary_crossentropy on a {units}-way softmax", loss.span,
                    "for one label among several classes use categorical_crossentropy "
                    "(or sparse_categorical_crossentropy with integer labels)")
    if loss.name.endswith("crossentropy"):
        if loss.from_logits and act in _PROBABILITIES:
            rep.warning(f"from_logits=True but '{layer.name}' already applies {act}", loss.span,
                        f"remove activation='{act}' or set from_logits=False")
        elif not loss.from_logits and act not in _PROBABILITIES:
            # Only layers with an `activation` argument take activation='softmax';
            # after any other (Add, BatchNormalization, pooling) an Activation layer does it.
            fix = ("use activation='softmax' (or 'sigmoid' for binary)"
                   if layer.spec.param("activation") is not None else
                   f"add Activation('softmax') (or 'sigmoid' for binary) after '{layer.name}'")
            rep.warning(f"{loss.name} expects probabilities, but the output layer '{layer.name}' "
                        f"has activation '{act}'", loss.span,
                        f"{fix}, or from_logits=True in the loss")
