# Written for cnnc's tests of the script reader (issue 16), not taken from a project;
# truth recorded from Keras 3 by tools/script_truth.py.
from dataclasses import dataclass, field
from enum import Enum, auto
from collections import namedtuple
import itertools, operator, math
from six.moves import range
import keras
from keras import layers

class Arch(Enum):
    SMALL = auto()
    LARGE = auto()

@dataclass
class Config:
    filters: tuple = (8, 16)
    dense: int = 32
    arch: Arch = Arch.SMALL
    extra: list = field(default_factory=list)

    @property
    def depth(self):
        return len(self.filters)

Spec = namedtuple("Spec", ["k", "s"])

class Base:
    scale = 2
    def __init__(self, cfg):
        self.cfg = cfg
    @classmethod
    def make(cls, **kw):
        return cls(Config(**kw))
    def width(self, i):
        return self.cfg.filters[i] * self.scale

class Builder(Base):
    scale = 1
    def width(self, i):
        return super().width(i) + 0
    def layers(self):
        out = []
        for i, (f, spec) in enumerate(zip(self.cfg.filters, itertools.repeat(Spec(3, 1)))):
            k, s = spec
            out.append(layers.Conv2D(self.width(i), k, strides=s, padding="same"))
            if (n := len(out)) % 2 == 0:
                out.append(layers.MaxPooling2D())
        return out

def gen(n):
    for i in range(n):
        yield layers.Dense(2 ** (n - i))

b = Builder.make(filters=(4, 8, 16))
stack = [keras.Input((32, 32, 3))] + b.layers()
match b.cfg.arch:
    case Arch.SMALL:
        stack.append(layers.GlobalAveragePooling2D())
    case Arch.LARGE:
        stack.append(layers.Flatten())
try:
    total = math.prod(b.cfg.filters)
    raise ValueError("x")
except (KeyError, ValueError) as e:
    total = -1
finally:
    stack.extend(gen(3))
def counter():
    n = 0
    def inc():
        nonlocal n
        n += 1
        return n
    return inc
inc = counter(); inc(); inc()
stack.append(layers.Dense(inc() + b.cfg.depth + sum(map(operator.mul, [1, 2], [3, 4]))))
model = keras.Sequential(stack, name=f"net_{b.cfg.arch.name.lower()}_{total}")
print(sorted({x % 3 for x in range(10)}, reverse=True), "{:>5}".format("a"))
