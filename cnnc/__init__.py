"""cnnc: a compiler and shape checker for Keras-style convolutional networks.

The Python API (this package and model.py) sits on the compiler's parts: support/,
language/, analysis/, frontends/, backends/ and runtime/; cli.py and commands/ are the
command line. pyproject.toml's import-linter contracts say who may import whom.

    >>> import cnnc
    >>> m = cnnc.load("examples/mnist.cnn")
    >>> m.total_params
    93322
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnc.support.diagnostics import CnncError, Diagnostic, NumericWarning, UsageError
from cnnc.support.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from cnnc.model import Model, load, loads

__all__ = ["CnncError", "Diagnostic", "Model", "NumericWarning", "UsageError", "load", "loads",
           "__version__"]

_MODEL = ("Model", "load", "loads")
_TRAINING = ("TrainingStopped", "TrainingInterrupted")


def load_ipython_extension(ipython) -> None:
    """`%load_ext cnnc` in IPython or Jupyter: check the notebook's Keras models before
    each cell runs; `%cnnc summary`, `%cnnc plot` (cnnc/integrations/ipython.py). Imported
    only here, so that `import cnnc` stays light."""
    from cnnc.integrations.ipython import load
    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from cnnc.integrations.ipython import unload
    unload(ipython)


def __getattr__(name: str):
    # The API is fetched when asked for: the command line (cnnc.cli, below this package)
    # starts with only what it needs, so that it handles Ctrl-C and SIGTERM from its first
    # moments (an interrupt while the compiler's parts load is then its own clean exit).
    # fit()'s exceptions (docs/TRAINING.md) live with the NumPy trainer; importing it here
    # would load NumPy for every `import cnnc` (and `cnnc check`).
    if name in _MODEL:
        from cnnc import model
        return getattr(model, name)
    if name in _TRAINING:
        from cnnc.backends.numpy import training
        return getattr(training, name)
    raise AttributeError(f"module 'cnnc' has no attribute {name!r}")
