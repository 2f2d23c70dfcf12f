# Source: keras-team/keras-io, guides/transfer_learning.py ("Transfer learning &
# fine-tuning" by fchollet, Keras 3 version, "Last modified: 2023/06/25"; stored copy,
# commit not known). Excerpt: the setup imports (less tensorflow_datasets and matplotlib),
# the augmentation helper, "Build a model" and the two compile() calls of "Train the top
# layer" / "Do a round of fine-tuning", verbatim; the TFDS cats-vs-dogs loading, the
# tf.data pipeline, the plots, the fit()/evaluate() calls on that data and the prose are
# left out. Licence: Apache 2.0 (keras-io).
# Exercises: keras.applications.Xception(weights="imagenet", input_shape=(150, 150, 3),
# include_top=False), base_model.trainable = False/True,
# keras.layers.Rescaling(scale=1 / 127.5, offset=-1), base_model(x, training=False) as
# one nested row, summary(show_trainable=True), a helper applying a list of augmentation
# layers (defined, not used by the model).
import numpy as np
import keras
from keras import layers

augmentation_layers = [
    layers.RandomFlip("horizontal"),
    layers.RandomRotation(0.1),
]


def data_augmentation(x):
    for layer in augmentation_layers:
        x = layer(x)
    return x


base_model = keras.applications.Xception(
    weights="imagenet",  # Load weights pre-trained on ImageNet.
    input_shape=(150, 150, 3),
    include_top=False,
)  # Do not include the ImageNet classifier at the top.

# Freeze the base_model
base_model.trainable = False

# Create new model on top
inputs = keras.Input(shape=(150, 150, 3))

# Pre-trained Xception weights requires that input be scaled
# from (0, 255) to a range of (-1., +1.), the rescaling layer
# outputs: `(inputs * scale) + offset`
scale_layer = keras.layers.Rescaling(scale=1 / 127.5, offset=-1)
x = scale_layer(inputs)

# The base model contains batchnorm layers. We want to keep them in inference mode
# when we unfreeze the base model for fine-tuning, so we make sure that the
# base_model is running in inference mode here.
x = base_model(x, training=False)
x = keras.layers.GlobalAveragePooling2D()(x)
x = keras.layers.Dropout(0.2)(x)  # Regularize with dropout
outputs = keras.layers.Dense(1)(x)
model = keras.Model(inputs, outputs)

model.summary(show_trainable=True)

model.compile(
    optimizer=keras.optimizers.Adam(),
    loss=keras.losses.BinaryCrossentropy(from_logits=True),
    metrics=[keras.metrics.BinaryAccuracy()],
)

# Unfreeze the base_model. Note that it keeps running in inference mode
# since we passed `training=False` when calling it. This means that
# the batchnorm layers will not update their batch statistics.
# This prevents the batchnorm layers from undoing all the training
# we've done so far.
base_model.trainable = True
model.summary(show_trainable=True)

model.compile(
    optimizer=keras.optimizers.Adam(1e-5),  # Low learning rate
    loss=keras.losses.BinaryCrossentropy(from_logits=True),
    metrics=[keras.metrics.BinaryAccuracy()],
)
