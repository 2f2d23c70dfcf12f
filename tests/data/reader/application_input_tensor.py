# Written for cnnc's tests of the script reader (issue 16), not taken from a project;
# truth recorded from Keras 3 by tools/script_truth.py.
import tensorflow as tf
IMG_SIZE = 160
inputs = tf.keras.Input(shape=(IMG_SIZE, IMG_SIZE, 3))
x = tf.keras.layers.Rescaling(1.0 / 127.5, offset=-1)(inputs)
base = tf.keras.applications.MobileNetV2(input_tensor=x, include_top=False, weights=None)
base.trainable = False
y = tf.keras.layers.GlobalAveragePooling2D()(base.output)
y = tf.keras.layers.Dropout(0.2)(y)
outputs = tf.keras.layers.Dense(5)(y)
model = tf.keras.Model(inputs=base.input, outputs=outputs)
