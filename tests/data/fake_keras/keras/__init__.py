"""A stand-in for Keras in the notebook tests (tests/test_ipython_extension.py): the cells
run without TensorFlow, and a fit() that runs says so."""


class Input:
    def __init__(self, shape=None, **kwargs):
        self.shape = shape


class Sequential:
    def __init__(self, stack=(), name=None):
        self.stack = list(stack)

    def add(self, layer):
        self.stack.append(layer)

    def compile(self, **kwargs):
        pass

    def fit(self, *args, **kwargs):
        print("FIT RAN")


class Model(Sequential):
    def __init__(self, inputs=None, outputs=None, name=None):
        super().__init__()


from keras import layers, utils  # noqa: E402, F401  (as `keras.layers` is reachable in Keras)
