# Written for cnnc's tests of the script reader (issue 16), not taken from a project;
# truth recorded from Keras 3 by tools/script_truth.py.
import functools
from functools import reduce
import tensorflow as tf
from tensorflow.keras import layers, Sequential, Model, Input

def compose(*fs):
    return reduce(lambda f, g: lambda x: g(f(x)), fs)

def block(filters):
    return compose(layers.Conv2D(filters, 3, padding="same"), layers.BatchNormalization(), layers.ReLU())

inp = Input((32, 32, 3))
x = block(16)(inp)
x = layers.MaxPooling2D()(x)
x = reduce(lambda t, f: f(t), [layers.Conv2D(32, 3), layers.ReLU()], x)
outs = layers.Dense(10)(layers.Flatten()(x))
m1 = Model(inp, outs)

CONFIG = None
def build():
    global CONFIG
    CONFIG = {"width": 8}
    return Sequential([Input((4,)), layers.Dense(CONFIG["width"])])
m2 = build()
assert CONFIG["width"] == 8

cfg = [(8, 2), (16, 1)]
seq = Sequential([Input((28, 28, 1))])
for f, n in cfg:
    for _ in range(n):
        seq.add(layers.Conv2D(f, 3, padding="same"))
if type(cfg) is list and isinstance(cfg[0], tuple):
    seq.add(layers.Flatten())
seq.add(layers.Dense(max(f for f, _ in cfg)))
