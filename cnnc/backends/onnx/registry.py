"""One ONNX lowering rule per layer family (tests/test_completeness.py checks that every
family has one). A rule takes a `Step` and the incoming `Value` (a list of them for the
families with several inputs) and returns the outgoing `Value`."""

from __future__ import annotations

from cnnc.backends.onnx import elementwise, merge, resample
from cnnc.backends.onnx.layers import (
                                       activation,
                                       avg_pool,
                                       batch_norm,
                                       conv,
                                       dense,
                                       depthwise_conv,
                                       flatten,
                                       global_avg_pool,
                                       global_max_pool,
                                       identity,
                                       max_pool,
                                       reshape,
                                       separable_conv,
                                       zero_padding,
)
from cnnc.backends.onnx.step import Rule

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
    "dropout": identity,
    "spatial_dropout": identity,
    "augment": identity,
    "noise": identity,
    "batch_norm": batch_norm,
    "activation": activation,
    "zero_padding": zero_padding,
    "reshape": reshape,
    **resample.RULES,
    **elementwise.RULES,        # ReLU ... LayerScale
    "merge": merge.merge,       # several Values in: a list
    "concatenate": merge.concatenate,
    "tensor_op": merge.tensor_op,
    "custom_scale": merge.custom_scale,
}
