# Source: keras-team/keras issue #7611, "Negative dimension size caused by subtracting 3
# from 1 for 'conv2d_2/convolution'" (https://github.com/keras-team/keras/issues/7611,
# 2017), the line of the question, verbatim; the imports and `model = Sequential()`
# before it are added (the issue shows none).
# Licence: quoted from a public issue, short excerpt for testing.
# Exercises: Keras 1's Convolution2D(32, 3, 3) (Keras 3 reads kernel 3, strides 3) on a
# channels-first input_shape=(1,28,28): Keras 3 refuses it (expected: cnnc
# refuses that line too).
from keras.models import Sequential
from keras.layers import Convolution2D

model = Sequential()
model.add(Convolution2D(32, 3, 3, activation='relu', input_shape=(1,28,28)))
