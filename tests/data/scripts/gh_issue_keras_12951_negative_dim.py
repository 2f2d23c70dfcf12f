# Source: keras-team/keras issue #12951, "Error: Negative dimension size caused by
# subtracting 3 from 1" (https://github.com/keras-team/keras/issues/12951, 2019), the code
# of the question, verbatim; the import line is added (the question shows none).
# Licence: quoted from a public issue, short excerpt for testing.
# Exercises: a Sequential whose spatial size shrinks to 1x1 by valid 3x3 convolutions and
# pooling; Keras 3 refuses the fourth Conv2D (expected: cnnc refuses that line too).
from tensorflow.keras import models, layers

model = models.Sequential()
model.add(layers.Conv2D(16, (3, 3), activation='relu', input_shape=(28,28, 1)))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(32, (3, 3), activation='relu'))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation='relu'))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(128, (3, 3), activation='relu'))
model.add(layers.MaxPooling2D((2, 2)))
