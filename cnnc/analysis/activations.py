"""Activation names: which ones cnnc knows, as Keras 3 spells them.

The maths lives in the phases (reference/activations.py for NumPy,
lower/activations.py for ONNX); this table is what they must all cover.
"""

from __future__ import annotations

# Keras 3 names cnnc implements, with Keras's default parameters noted where
# Keras 3 differs from older Keras or from other frameworks.
SUPPORTED: tuple[str, ...] = (
    "linear",
    "relu",
    "sigmoid",
    "softmax",          # over the last axis
    "tanh",
    "elu",              # alpha = 1.0
    "selu",
    "softplus",
    "softsign",
    "silu",             # x * sigmoid(x); Keras's "swish" is the same function
    "gelu",             # exact (erf) form: Keras 3's default approximate=False
    "relu6",
    "leaky_relu",       # negative_slope = 0.2 (Keras 3's activations.leaky_relu)
    "hard_sigmoid",     # Keras 3: relu6(x + 3) / 6, i.e. slope 1/6
    "exponential",
    "hard_silu",        # x * hard_sigmoid(x); "hard_swish" in Keras
    "mish",
    "log_softmax",
    "celu",             # alpha = 1.0
    "hard_tanh",
    "log_sigmoid",
)

ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}

# Keras 3 knows these; cnnc does not implement them yet.
KERAS_ONLY = ("squareplus", "soft_shrink", "sparse_plus", "glu", "tanh_shrink",
              "threshold", "sparse_sigmoid", "hard_shrink", "sparsemax")

LEAKY_RELU_SLOPE = 0.2
CELU_ALPHA = 1.0
ELU_ALPHA = 1.0
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def canonical(name: str) -> str | None:
    """The Keras canonical name, or None when cnnc does not implement it."""
    name = ALIASES.get(name, name)
    return name if name in SUPPORTED else None


def all_names() -> list[str]:
    return list(SUPPORTED) + list(ALIASES)
