"""Every layer of the stand-in Keras: made, called on a tensor, returns the tensor."""


class Layer:
    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, x):
        return x


def __getattr__(name):
    return Layer
