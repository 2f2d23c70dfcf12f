# Written for cnnc's tests of the script reader (issue 16), not taken from a project;
# truth recorded from Keras 3 by tools/script_truth.py.
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

class ConvBNReLU(layers.Layer):
    def __init__(self, filters, kernel_size=3, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False)
        self.bn = layers.BatchNormalization()

    def call(self, x, training=False):
        return tf.nn.relu(self.bn(self.conv(x), training=training))

class SmallNet(keras.Model):
    def __init__(self, num_classes=10, widths=(16, 32, 64)):
        super().__init__(name="small_net")
        self.blocks = [ConvBNReLU(w, strides=2 if i else 1) for i, w in enumerate(widths)]
        self.pool = layers.GlobalAveragePooling2D()
        self.drop = layers.Dropout(0.2)
        self.head = layers.Dense(num_classes)

    def call(self, inputs, training=False):
        x = inputs
        for blk in self.blocks:
            x = blk(x, training=training)
        x = self.pool(x)
        x = self.drop(x, training=training)
        return self.head(x)

def smooth_loss(y_true, y_pred):
    return keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=True, label_smoothing=0.1)

model = SmallNet()
model.build((None, 32, 32, 3))
model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=smooth_loss, metrics=["accuracy"])
