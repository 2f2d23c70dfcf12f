# Source: keras-team/keras-io, examples/vision/super_resolution_sub_pixel.py (commit
# 0b85c58), by Xingyu Long. Excerpt: the imports (the IPython and keras.preprocessing.image
# ones left out), the constants, "Build a model" (get_model) and its call, verbatim; the
# BSDS500 download and tf.data pipeline, the PIL utilities, the ESPCNCallback, compile,
# fit and prediction parts are left out. Licence: Apache 2.0 (keras-io).
# Exercises: **conv_args dict unpacking, Input shape from a tuple sum, and
# tf.nn.depth_to_space on a Keras tensor (expected: cnnc refuses that op clearly).
import tensorflow as tf

import os
import math
import numpy as np

from tensorflow import keras
from tensorflow.keras import layers

crop_size = 300
upscale_factor = 3
batch_size = 4

input_img_size = (crop_size // upscale_factor, crop_size // upscale_factor)
target_img_size = (crop_size, crop_size)
channels = 1


def get_model(upscale_factor=3, channels=1):
    conv_args = {
        "activation": "relu",
        "kernel_initializer": "Orthogonal",
        "padding": "same",
    }
    inputs = keras.Input(shape=input_img_size + (channels,))
    x = layers.Conv2D(64, 5, **conv_args)(inputs)
    x = layers.Conv2D(64, 3, **conv_args)(x)
    x = layers.Conv2D(32, 3, **conv_args)(x)
    x = layers.Conv2D(channels * (upscale_factor ** 2), 3, **conv_args)(x)
    outputs = tf.nn.depth_to_space(x, upscale_factor)

    return keras.Model(inputs, outputs)


model = get_model(upscale_factor=upscale_factor, channels=channels)
model.summary()
