# Source: github.com/wjq8421/DL_for_CV (commit 12aa010), worked examples of *Deep Learning
# for Computer Vision with Python* (PyImageSearch). Excerpt: pyimagesearch/nn/conv/
# minivggnet.py (the MiniVGGNet class), whole, then pyimagesearch/minivggnet_cifar10.py
# verbatim up to the build, except its `from nn.conv.minivggnet import MiniVGGNet`, the
# argparse lines, and `opt = SGD(lr=..., decay=...)` with the compile that uses it (Keras 3
# refuses lr= and decay=; see pyis_lenet_mnist.py), and so the training part.
# Licence: unknown, short excerpt for testing. Exercises: Keras 2 module paths (keras.layers.normalization), chanDim set in a
# channels_first branch, BatchNormalization(axis=chanDim) after Conv2D and after Dense.
from keras.models import Sequential
from keras.layers.normalization import BatchNormalization
from keras.layers import Conv2D
from keras.layers import MaxPooling2D
from keras.layers import Activation
from keras.layers import Flatten
from keras.layers import Dropout
from keras.layers import Dense
from keras import backend as K

class MiniVGGNet:
    @staticmethod
    def build(width, height, depth, classes):
        model = Sequential()
        inputShape = (height, width, depth)
        chanDim = -1

        if K.image_data_format() == 'channels_first':
            inputShape = (depth, height, width)
            chanDim = 1

        model.add(Conv2D(32, (3, 3), input_shape=inputShape, padding='same'))
        model.add(Activation('relu'))
        model.add(BatchNormalization(axis=chanDim))
        model.add(Conv2D(32, (3, 3), padding='same'))
        model.add(Activation('relu'))
        model.add(BatchNormalization(axis=chanDim))
        model.add(MaxPooling2D(pool_size=(2, 2)))
        model.add(Dropout(0.25))

        model.add(Conv2D(64, (3, 3), padding='same'))
        model.add(Activation('relu'))
        model.add(BatchNormalization(axis=chanDim))
        model.add(Conv2D(64, (3, 3), padding='same'))
        model.add(Activation('relu'))
        model.add(BatchNormalization(axis=chanDim))
        model.add(MaxPooling2D(pool_size=(2, 2)))
        model.add(Dropout(0.25))

        model.add(Flatten())
        model.add(Dense(512))
        model.add(Activation('relu'))
        model.add(BatchNormalization(axis=chanDim))
        model.add(Dropout(0.5))

        model.add(Dense(classes))
        model.add(Activation('softmax'))
        return model

import matplotlib
from sklearn.preprocessing import LabelBinarizer
from sklearn.model_selection import train_test_split
from sklearn.metrics import classification_report
from keras.optimizers import SGD
from keras.datasets import cifar10
import matplotlib.pyplot as plt
import numpy as np
import argparse

print("[INFO] loading CIFAR-10 data...")
((trainX, trainY), (testX, testY)) = cifar10.load_data()
trainX = trainX.astype('float') / 255.0
testX = testX.astype('float') / 255.0

lb = LabelBinarizer()
trainY = lb.fit_transform(trainY)
testY = lb.fit_transform(testY)
labelNames = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']

print("[INFO] compiling network...")
model = MiniVGGNet.build(width=32, height=32, depth=3, classes=10)
