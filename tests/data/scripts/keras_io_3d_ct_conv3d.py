# Source: keras-team/keras-io, examples/vision/3D_image_classification.py (commit 0766e7b),
# by Hasib Zunair. Excerpt: the imports, the "Define 3D convolutional neural network" and
# "Train model" sections (get_model, its call, compile with an ExponentialDecay schedule,
# the callbacks), verbatim; the download, the nibabel/cv2 scan loading, the tf.data
# pipeline, the fit call and the plotting/prediction parts are left out.
# Licence: Apache 2.0 (keras-io). Exercises: Conv3D, MaxPool3D, BatchNormalization on 5D
# tensors, keras.Input(img_size) with a positional 4-tuple, a model named "3dcnn".
import os
import zipfile
import numpy as np
import tensorflow as tf

from tensorflow import keras
from tensorflow.keras import layers


def get_model(img_size, num_classes):
    # build a 3D convolutional neural network model

    inputs = keras.Input(img_size)

    x = layers.Conv3D(filters=16, kernel_size=3, activation="relu")(inputs)
    x = layers.MaxPool3D(pool_size=2)(x)
    x = layers.BatchNormalization()(x)

    x = layers.Conv3D(filters=32, kernel_size=3, activation="relu")(x)
    x = layers.MaxPool3D(pool_size=2)(x)
    x = layers.BatchNormalization()(x)

    x = layers.Conv3D(filters=64, kernel_size=3, activation="relu")(x)
    x = layers.MaxPool3D(pool_size=2)(x)
    x = layers.BatchNormalization()(x)

    x = layers.Conv3D(filters=128, kernel_size=3, activation="relu")(x)
    x = layers.MaxPool3D(pool_size=2)(x)
    x = layers.BatchNormalization()(x)

    x = layers.Flatten()(x)
    x = layers.Dense(units=256, activation="relu")(x)
    x = layers.Dropout(0.3)(x)

    outputs = layers.Dense(units=1, activation="sigmoid")(x)

    # define the model
    model = keras.Model(inputs, outputs, name="3dcnn")
    return model


# build model
model = get_model((128, 128, 128, 1), 2)
model.summary()

# compile model
initial_learning_rate = 0.0001
lr_schedule = tf.keras.optimizers.schedules.ExponentialDecay(
    initial_learning_rate, decay_steps=100000, decay_rate=0.96, staircase=True
)
model.compile(
    loss="binary_crossentropy",
    optimizer=keras.optimizers.Adam(learning_rate=lr_schedule),
    metrics=["acc"],
)

# define callbacks
checkpoint_cb = tf.keras.callbacks.ModelCheckpoint(
    "3d_image_classification.h5", save_best_only=True
)
early_stopping_cb = tf.keras.callbacks.EarlyStopping(monitor="val_acc", patience=10)
