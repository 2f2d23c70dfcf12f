# Written for cnnc's tests of the script reader (issue 16), not taken from a project;
# truth recorded from Keras 3 by tools/script_truth.py.
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers
from tensorflow.keras import backend as K

class Head(layers.Layer):
    def __init__(self, n):
        super().__init__()
        self.conv = layers.Conv2D(8, 3, padding="same")
        self.fc = layers.Dense(n)
    def call(self, x):
        x = K.relu(self.conv(x), max_value=6)
        b = tf.shape(x)[0]
        x = tf.reshape(x, [b, -1])
        x = tf.nn.leaky_relu(x, alpha=0.1)
        return tf.nn.softmax(self.fc(x), axis=-1)

class Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.c = layers.Conv2D(4, 3)
        self.h = Head(5)
    def call(self, x):
        x = keras.ops.nn.relu(self.c(x))
        x = tf.reshape(x, (-1, 6, 6, 4))
        return self.h(x)

net = Net()
net.build((None, 8, 8, 3))
