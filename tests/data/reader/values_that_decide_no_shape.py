# Written for cnnc's tests of the script reader (issue 16), not taken from a project;
# truth recorded from Keras 3 by tools/script_truth.py.
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers
from tensorflow.keras.constraints import max_norm
import numpy as np

init = tf.random_normal_initializer(0., 0.02)
def my_loss(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - y_pred))

model = keras.Sequential([
    keras.Input((64, 64, 3)),
    layers.Conv2D(32, 4, strides=2, padding="same", kernel_initializer=init, use_bias=False),
    layers.LeakyReLU(0.2),
    layers.Conv2D(64, 3, kernel_constraint=max_norm(3), kernel_initializer="orthogonal"),
    layers.Flatten(),
    layers.Dense(1, activation=tf.nn.sigmoid, kernel_regularizer=keras.regularizers.l2(1e-4)),
])
class_weight = {0: 1.0, 1: 3.0}
model.compile(optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), loss=my_loss, metrics=["accuracy", my_loss])
model.fit(np.zeros((10, 64, 64, 3)), np.zeros((10, 1)), epochs=3, class_weight=class_weight,
          steps_per_epoch=100, callbacks=[keras.callbacks.EarlyStopping(patience=3)])
