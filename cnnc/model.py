"""The Python API: `cnnc.load("net.cnn")` gives a `Model`.

A Model is the checked IR plus its shape analysis, and optionally weights.
Training, prediction and ONNX export import NumPy/onnx only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .diagnostics import Diagnostic, UsageError
from .frontend import Checked, check_file, check_text
from .infer import Analysis, LayerInfo

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


class Model:
    """A checked model. Raises CnncError at construction if the source has errors."""

    def __init__(self, checked: Checked):
        self._checked = checked.raise_on_error()
        self._weights: dict[str, "np.ndarray"] | None = None
        self.history = None
        self.optimizer_state: dict | None = None

    # --- what the checker knows ---------------------------------------------------

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def ir(self):
        return self._checked.ir

    @property
    def analysis(self) -> Analysis:
        return self._checked.analysis

    @property
    def source(self):
        return self._checked.source

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return self._checked.diagnostics

    @property
    def layers(self) -> list[LayerInfo]:
        return list(self.analysis.infos)

    def layer(self, name: str) -> LayerInfo:
        return self.analysis.info(name)

    @property
    def input_shape(self) -> tuple:
        return (None, *self.ir.input_shape)

    @property
    def output_shape(self) -> tuple:
        return (None, *self.analysis.output_shape)

    @property
    def total_params(self) -> int:
        return self.analysis.total_params

    @property
    def trainable_params(self) -> int:
        return self.analysis.trainable_params

    @property
    def non_trainable_params(self) -> int:
        return self.analysis.non_trainable_params

    @property
    def total_macs(self) -> int | None:
        return self.analysis.total_macs

    @property
    def compile_spec(self):
        return self.ir.compile

    @property
    def fit_spec(self):
        return self.ir.fit

    def count_params(self) -> int:
        return self.total_params

    def summary(self, format: str = "text", **options: Any) -> str:
        from . import summary
        return summary.render(self.analysis, format, diagnostics=self.diagnostics, **options)

    # --- weights --------------------------------------------------------------------

    @property
    def has_weights(self) -> bool:
        """Whether weights were set, loaded or drawn, or come with the model's file (a
        Keras file); False for a fresh model."""
        return self._weights is not None or self._checked.weights is not None

    @property
    def weights(self) -> dict[str, "np.ndarray"]:
        """Weights keyed "layer/weight": those of the model's file (a Keras file), else
        freshly initialised on first use."""
        if self._weights is None:
            if self._checked.weights is not None:
                from . import weights as W
                self._weights = W.check(self._checked.weights(self.analysis), self.analysis,
                                        self.ir.path, owned=True)
            else:
                self.init_weights()
        return self._weights

    def init_weights(self, seed: int | None = None) -> None:
        from .reference.initializers import initial_weights
        self._weights = initial_weights(self.analysis, seed)

    def get_weights(self) -> dict[str, "np.ndarray"]:
        return {k: v.copy() for k, v in self.weights.items()}

    def set_weights(self, weights: Mapping[str, "np.ndarray"]) -> None:
        from . import weights as W
        self._weights = W.check(dict(weights), self.analysis, "set_weights")

    def load_weights(self, path: str | Path) -> None:
        from . import weights as W
        self._weights = W.load(path, self.analysis)

    def save_weights(self, path: str | Path) -> None:
        from . import weights as W
        W.save(path, self.weights, protect=[self.ir.path])

    # --- running --------------------------------------------------------------------

    def predict(self, x, batch_size: int = 32, scale: bool = True):
        """Inference-mode forward pass of the NumPy reference, in batches. Like fit and
        evaluate, uint8 images are scaled by 1/255 (scale=False: not) and a missing
        channel axis is added (cnnc.data.prepare_x). A model with several inputs takes a
        list of arrays (model input order); several outputs come back as a list."""
        from .data import prepare_x
        from .diagnostics import UsageError
        from .reference.network import Network, check_input
        nodes = self.ir.inputs
        many = len(nodes) > 1
        if many and (not isinstance(x, (list, tuple)) or len(x) != len(nodes)):
            raise UsageError(f"model '{self.name}' has {len(nodes)} inputs "
                             f"({', '.join(n.name for n in nodes)}): pass a list of {len(nodes)} arrays")
        xs = list(x) if many else [x]
        ready = [check_input(prepare_x(a, n.shape, scale=scale, model=f"model '{self.name}'"),
                             self.analysis, i) for i, (a, n) in enumerate(zip(xs, nodes))]
        net = Network(self.analysis, self.weights)
        return net.predict(ready if many else ready[0], batch_size=batch_size)

    def fit(self, x, y, **kwargs: Any):
        """Keras's fit: keyword arguments override the file's fit(...) settings."""
        from . import train
        self.history = train.fit(self, x, y, **kwargs)
        return self.history

    def evaluate(self, x, y, batch_size: int | None = None, return_dict: bool = False, **kwargs: Any):
        from . import train
        return train.evaluate(self, x, y, batch_size=batch_size, return_dict=return_dict, **kwargs)

    def to_onnx(self, path: str | Path | None = None, opset: int | None = None):
        """The ONNX model (verified); written atomically to `path` if given."""
        from . import lower
        return lower.export(self, path, opset=opset)


def load(path: str | Path) -> Model:
    """Read, parse and check a .cnn file. Raises CnncError (with every
    diagnostic) if it has errors, UsageError if it cannot be read."""
    return Model(check_file(path))


def loads(text: str, path: str = "<string>") -> Model:
    return Model(check_text(text, path))
