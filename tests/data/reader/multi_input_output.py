# Written for cnnc's tests of the script reader (issue 16), not taken from a project;
# truth recorded from Keras 3 by tools/script_truth.py.
import tensorflow as tf
from tensorflow.keras import layers, Model

image_in = layers.Input(shape=(64, 64, 3), name="image")
meta_in = layers.Input(shape=(8,), name="meta")
x = layers.experimental.preprocessing.Rescaling(1.0 / 255)(image_in)
x = layers.Conv2D(16, 3, activation="relu")(x)
x = layers.MaxPooling2D()(x)
x = layers.Conv2D(32, 3, activation="relu")(x)
x = layers.GlobalMaxPooling2D()(x)
m = layers.Dense(16, activation="relu")(meta_in)
h = layers.Concatenate()([x, m])
h = layers.Dense(32, activation="relu")(h)
out_a = layers.Dense(1, activation="sigmoid", name="is_cat")(h)
out_b = layers.Dense(4, activation="softmax", name="breed")(h)
model = Model(inputs=[image_in, meta_in], outputs=[out_a, out_b])
model.compile(optimizer="adam", loss={"is_cat": "binary_crossentropy", "breed": "categorical_crossentropy"})
