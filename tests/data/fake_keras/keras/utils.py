"""The stand-in Keras's utilities: labels pass through unchanged."""


def to_categorical(y, num_classes=None):
    return y
