# Source: keras-team/keras-io, guides/sequential_model.py ("The Sequential model" by
# fchollet, Keras 3 version, "Last modified: 2023/06/25"; stored copy, commit not known).
# Excerpt: the imports and the first example of "Feature extraction with a Sequential
# model", verbatim; everything else is left out. Licence: Apache 2.0 (keras-io).
# Exercises: keras.Model(inputs=seq.inputs, outputs=[layer.output for layer in
# seq.layers]): a functional model with three outputs taken from a Sequential's layers.
import keras
from keras import layers
from keras import ops

initial_model = keras.Sequential(
    [
        keras.Input(shape=(250, 250, 3)),
        layers.Conv2D(32, 5, strides=2, activation="relu"),
        layers.Conv2D(32, 3, activation="relu"),
        layers.Conv2D(32, 3, activation="relu"),
    ]
)
feature_extractor = keras.Model(
    inputs=initial_model.inputs,
    outputs=[layer.output for layer in initial_model.layers],
)

# Call feature extractor on test input.
x = ops.ones((1, 250, 250, 3))
features = feature_extractor(x)
