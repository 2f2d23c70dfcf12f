# Source: tensorflow/docs, site/en/tutorials/generative/autoencoder.ipynb (commit
# 7c36502). Excerpt: the code cells of the imports, "Load the dataset" and "First example:
# Basic autoencoder" (the Autoencoder model, compile, fit, and the encoder/decoder
# calls), verbatim; from the imports cell the statements importing pandas and sklearn
# (used only by the ECG anomaly-detection part) are left out, as are the plotting cells and
# the later parts. Licence: Apache 2.0 (TensorFlow docs code).
# Exercises: a keras Model subclass (`from tensorflow.keras.models import Model`) whose
# encoder and decoder are tf.keras.Sequential attributes without input shapes, a Dense
# whose units are `tf.math.reduce_prod(shape).numpy()`, `shape = x_test.shape[1:]`,
# Reshape(shape), built by fit(x_train, x_train) on Fashion-MNIST.
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from tensorflow.keras import layers, losses
from tensorflow.keras.datasets import fashion_mnist
from tensorflow.keras.models import Model

(x_train, _), (x_test, _) = fashion_mnist.load_data()

x_train = x_train.astype('float32') / 255.
x_test = x_test.astype('float32') / 255.

print (x_train.shape)
print (x_test.shape)

class Autoencoder(Model):
  def __init__(self, latent_dim, shape):
    super(Autoencoder, self).__init__()
    self.latent_dim = latent_dim
    self.shape = shape
    self.encoder = tf.keras.Sequential([
      layers.Flatten(),
      layers.Dense(latent_dim, activation='relu'),
    ])
    self.decoder = tf.keras.Sequential([
      layers.Dense(tf.math.reduce_prod(shape).numpy(), activation='sigmoid'),
      layers.Reshape(shape)
    ])

  def call(self, x):
    encoded = self.encoder(x)
    decoded = self.decoder(encoded)
    return decoded


shape = x_test.shape[1:]
latent_dim = 64
autoencoder = Autoencoder(latent_dim, shape)

autoencoder.compile(optimizer='adam', loss=losses.MeanSquaredError())

autoencoder.fit(x_train, x_train,
                epochs=10,
                shuffle=True,
                validation_data=(x_test, x_test))

encoded_imgs = autoencoder.encoder(x_test).numpy()
decoded_imgs = autoencoder.decoder(encoded_imgs).numpy()
