# Written for cnnc's tests of the script reader (issue 16), not taken from a project;
# truth recorded from Keras 3 by tools/script_truth.py.
import tensorflow as tf
from tensorflow.keras import layers, models, optimizers

class Classifier:
    def __init__(self, input_shape=(32, 32, 3), n_classes=10, base_filters=16, n_blocks=3):
        self.input_shape = input_shape
        self.n_classes = n_classes
        self.base_filters = base_filters
        self.n_blocks = n_blocks
        self.model = self._build()

    def _block(self, x, filters):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        return layers.MaxPooling2D()(x)

    def _build(self):
        inputs = layers.Input(shape=self.input_shape)
        x = inputs
        for i in range(self.n_blocks):
            x = self._block(x, self.base_filters * 2 ** i)
        x = layers.GlobalAveragePooling2D()(x)
        outputs = layers.Dense(self.n_classes, activation="softmax")(x)
        model = models.Model(inputs, outputs, name="classifier")
        model.compile(optimizer=optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["acc"])
        return model

    def summary(self):
        self.model.summary()

clf = Classifier(n_blocks=4)
clf.summary()
net = clf.model
