"""cnnc: a compiler and shape checker for Keras-style convolutional networks.

    >>> import cnnc
    >>> m = cnnc.load("examples/mnist.cnn")
    >>> m.total_params
    93322
"""

from __future__ import annotations

from cnnc.support.version import __version__  # noqa: E402

from cnnc.support.diagnostics import CnncError, Diagnostic, NumericWarning, UsageError  # noqa: E402
from cnnc.model import Model, load, loads  # noqa: E402

__all__ = ["CnncError", "Diagnostic", "Model", "NumericWarning", "UsageError", "load", "loads",
           "__version__"]
