"""cnnc: a compiler and shape checker for Keras-style convolutional networks."""

from __future__ import annotations

__version__ = "0.1.0"
