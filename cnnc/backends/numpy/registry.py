"""The NumPy reference's table: one class per layer family, from which `Network` builds
its steps (tests/test_completeness.py checks that every family has one)."""

from __future__ import annotations

from cnnc.backends.numpy import elementwise, merge, resample
from cnnc.backends.numpy.layers import (
                                        Activation,
                                        AvgPool,
                                        BatchNorm,
                                        Conv,
                                        Dense,
                                        DepthwiseConv,
                                        Flatten,
                                        GlobalAvgPool,
                                        GlobalMaxPool,
                                        Layer,
                                        MaxPool,
                                        Reshape,
                                        SeparableConv,
                                        SpatialDropout,
                                        ZeroPadding,
)

LAYERS: dict[str, type[Layer]] = {
    "conv": Conv,
    "depthwise_conv": DepthwiseConv,
    "separable_conv": SeparableConv,
    "max_pool": MaxPool,
    "avg_pool": AvgPool,
    "global_max_pool": GlobalMaxPool,
    "global_avg_pool": GlobalAvgPool,
    "flatten": Flatten,
    "dense": Dense,
    "spatial_dropout": SpatialDropout,
    "batch_norm": BatchNorm,
    "activation": Activation,
    "zero_padding": ZeroPadding,
    "reshape": Reshape,
    "conv_transpose": resample.ConvTranspose,
    "up_sampling": resample.UpSampling,
    "cropping": resample.Cropping,
    "resizing": resample.Resizing,
    **elementwise.LAYERS,        # ReLU ... LayerScale, and Dropout (with noise_shape)
    # several tensors in: these classes take a list
    "merge": merge.elementwise,
    "concatenate": merge.Concatenate,
    "tensor_op": merge.TensorOp,
    "custom_scale": merge.CustomScale,
}
