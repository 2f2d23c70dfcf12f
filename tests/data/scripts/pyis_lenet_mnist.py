# Source: github.com/wjq8421/DL_for_CV (commit 12aa010), worked examples of *Deep Learning
# for Computer Vision with Python* (PyImageSearch). Excerpt: pyimagesearch/nn/conv/lenet.py
# (the LeNet class) followed by pyimagesearch/lenet_mnist.py, both whole and verbatim,
# except the driver's `from nn.conv.lenet import LeNet` (the class is above) and its
# lines after model.save (prediction report). Licence: unknown, short excerpt for testing.
# Exercises: a class with a @staticmethod build(width, height, depth, classes), an
# `inputShape` variable with a K.image_data_format() == 'channels_first' branch, the
# same branch on the data, and SGD(lr=0.01), which Keras 3 refuses (expected: cnnc refuses
# that line too).
from keras.models import Sequential
from keras.layers import Conv2D
from keras.layers import Dense
from keras.layers import MaxPooling2D
from keras.layers import Activation
from keras.layers import Flatten
from keras import backend as K

class LeNet:
    @staticmethod
    def build(width, height, depth, classes):
        model = Sequential()
        inputShape = (height, width, depth)
        if K.image_data_format() == 'channels_first':
            inputShape = (depth, height, width)

        model.add(Conv2D(20, (5, 5), padding='same', input_shape=inputShape))
        model.add(Activation('relu'))
        model.add(MaxPooling2D(pool_size=(2, 2), strides=(2, 2)))
        model.add(Conv2D(50, (5, 5), padding='same'))
        model.add(Activation('relu'))
        model.add(MaxPooling2D(pool_size=(2, 2), strides=(2, 2)))
        model.add(Flatten())
        model.add(Dense(500))
        model.add(Activation('relu'))
        model.add(Dense(10))
        model.add(Activation('softmax'))
        return model

from keras.optimizers import SGD
from sklearn.preprocessing import LabelBinarizer
from sklearn.model_selection import train_test_split
from sklearn.metrics import classification_report
from keras import datasets
from keras import backend as K
import matplotlib.pyplot as plt
import numpy as np

print("[INFO] loading MNIST (full) dataset...")
(trainX, trainY), (testX, testY) = datasets.mnist.load_data()

if K.image_data_format() == 'channels_first':
    trainX = trainX.reshape(trainX.shape[0], 1, 28, 28)
    testX = testX.reshape(testX.shape[0], 1, 28, 28)
else:
    trainX = trainX.reshape(trainX.shape[0], 28, 28, 1)
    testX = testX.reshape(testX.shape[0], 28, 28, 1)

print(trainX.shape)
print(trainY.shape)

trainX = trainX.astype('float') / 255.0
testX = testX.astype('float') / 255.0
(trainX, valX, trainY, valY) = train_test_split(trainX, trainY, test_size=0.25)

lb = LabelBinarizer()
trainY = lb.fit_transform(trainY)
valY = lb.fit_transform(valY)
testY = lb.fit_transform(testY)

print("[INFO] compiling network...")
sgd = SGD(lr=0.01)
model = LeNet.build(width=28, height=28, depth=1, classes=10)
model.compile(loss='categorical_crossentropy', optimizer=sgd, metrics=['accuracy'])

print("[INFO] training network...")
H = model.fit(trainX, trainY, validation_data=(valX, valY), batch_size=128, epochs=100, verbose=1)
model.save('lenet_mnist.h5')
