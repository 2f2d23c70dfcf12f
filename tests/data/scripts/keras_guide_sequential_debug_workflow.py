# Source: keras-team/keras-io, guides/sequential_model.py ("The Sequential model" by
# fchollet, Keras 3 version, "Last modified: 2023/06/25"; stored copy, commit not known).
# Excerpt: the imports, then the code of "Specifying the input shape in advance" from
# `model.add(keras.Input(shape=(4,)))` on, "A common debugging workflow: add() + summary()"
# and the second "Feature extraction" example (get_layer), verbatim; the first part of the
# guide, the first feature-extraction example and the prose docstrings are left out.
# Licence: Apache 2.0 (keras-io).
# Exercises: model.add(keras.Input(...)), summary() between add() calls, input_shape= on
# the first layer, GlobalMaxPooling2D, keras.Model(inputs=seq.inputs,
# outputs=seq.get_layer(name=...).output) called on ops.ones.
import keras
from keras import layers
from keras import ops

model = keras.Sequential()
model.add(keras.Input(shape=(4,)))
model.add(layers.Dense(2, activation="relu"))

model.summary()

model.layers

model = keras.Sequential()
model.add(layers.Dense(2, activation="relu", input_shape=(4,)))

model.summary()

model = keras.Sequential()
model.add(keras.Input(shape=(250, 250, 3)))  # 250x250 RGB images
model.add(layers.Conv2D(32, 5, strides=2, activation="relu"))
model.add(layers.Conv2D(32, 3, activation="relu"))
model.add(layers.MaxPooling2D(3))

# Can you guess what the current output shape is at this point? Probably not.
# Let's just print it:
model.summary()

# The answer was: (40, 40, 32), so we can keep downsampling...

model.add(layers.Conv2D(32, 3, activation="relu"))
model.add(layers.Conv2D(32, 3, activation="relu"))
model.add(layers.MaxPooling2D(3))
model.add(layers.Conv2D(32, 3, activation="relu"))
model.add(layers.Conv2D(32, 3, activation="relu"))
model.add(layers.MaxPooling2D(2))

# And now?
model.summary()

# Now that we have 4x4 feature maps, time to apply global max pooling.
model.add(layers.GlobalMaxPooling2D())

# Finally, we add a classification layer.
model.add(layers.Dense(10))

initial_model = keras.Sequential(
    [
        keras.Input(shape=(250, 250, 3)),
        layers.Conv2D(32, 5, strides=2, activation="relu"),
        layers.Conv2D(32, 3, activation="relu", name="my_intermediate_layer"),
        layers.Conv2D(32, 3, activation="relu"),
    ]
)
feature_extractor = keras.Model(
    inputs=initial_model.inputs,
    outputs=initial_model.get_layer(name="my_intermediate_layer").output,
)
# Call feature extractor on test input.
x = ops.ones((1, 250, 250, 3))
features = feature_extractor(x)
