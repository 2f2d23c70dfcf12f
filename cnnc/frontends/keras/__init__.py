"""Keras model files in: `.keras` (Keras 3), `.h5` (Keras 2 / tf.keras), the JSON of
`model.to_json()`, and Keras weights files (`.weights.h5`, Keras 2 `.h5`).

Read with json, zipfile and h5py only: never unpickled, no code run. A Keras file
becomes .cnn text (to_cnn), which the ordinary front end checks; its diagnostics are
then told in the file's own terms ("layer 'block3_conv2' (Conv2D): ..."), and its
weights come from the file's HDF5 when a command needs them.

    container.py  the file's parts (zip members, HDF5 attributes), bounded
    config.py     the model config as a graph; what cnnc refuses (Lambda, custom classes)
    to_cnn.py     that graph as readable .cnn text (naming.py: tensor names, order)
    training.py   compile_config / training_config as compile(...)
    weights.py    HDF5 weights (Keras 3 and Keras 2 layouts) as cnnc's arrays
    hdf5.py       h5py, defensively
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from cnnc.frontends.keras.container import SUFFIXES, Container, suffix_of
from cnnc.frontends.keras.limits import KerasFileError
from cnnc.support.diagnostics import CnncError, Diagnostic, Source

__all__ = ["SUFFIXES", "KerasFileError", "Imported", "is_keras_path", "import_file", "check_file",
           "is_weights_path"]


def is_keras_path(path: str | Path) -> bool:
    """Whether a path names a Keras model file (by its suffix)."""
    s = suffix_of(path)
    return s in SUFFIXES or s == ".weights.h5"


def is_weights_path(path: str | Path) -> bool:
    """Whether --weights PATH is a Keras HDF5/.keras file rather than a .npz."""
    return suffix_of(path) in (".weights.h5", ".h5", ".hdf5", ".keras")


@dataclass
class Imported:
    path: str
    container: Container
    model: object        # config.KModel
    written: object      # to_cnn.Written

    @property
    def text(self) -> str:
        return self.written.text


def import_file(path: str | Path) -> Imported:
    """Read a Keras model file and write it as .cnn text. KerasFileError (exit 2) when
    the file cannot be read; CnncError (exit 1) listing every layer cnnc cannot build."""
    from cnnc.frontends.keras import config, to_cnn, training
    c = container_read(path)
    try:
        model = config.parse(c.config, str(path))
        if model.refusals:
            diags = [Diagnostic("error", f"layer '{r.layer}' ({r.cls}): {r.message}", None,
                                list(r.notes), str(path)) for r in model.refusals]
            raise CnncError(diags, None, exit_code=1)
        written = to_cnn.write(model, Path(path).name, training.compile_line(c.training))
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as e:
        # A config is untrusted JSON: any value may have any type. The readers check what
        # they use; a shape they did not foresee is still the file's fault, never a crash.
        raise KerasFileError(f"cannot read '{path}': the model config is malformed "
                             f"({type(e).__name__}: {e})") from None
    return Imported(str(path), c, model, written)


def container_read(path: str | Path) -> Container:
    from cnnc.frontends.keras import container
    return container.read(path)


def check_file(path: str | Path, sizes=None, input_shape: tuple | None = None):
    """The Checked model of a Keras file: its .cnn text checked by the front end, the
    diagnostics in the file's terms, its weights read when asked for. `sizes` and
    `input_shape` fix its open sizes (a None in its input shape)."""
    from cnnc.frontends.cnn import Checked, check_text
    imp = import_file(path)
    checked = check_text(imp.text, str(path), _nested_rows(imp.model), sizes, input_shape)
    diags = tuple(remap(d, imp) for d in checked.diagnostics)
    if checked.ir is not None and imp.model.nested:
        from cnnc.frontends.keras.weights import remember
        remember(checked.ir, imp.model)        # where a --weights file keeps their weights
    loader = None
    if imp.container.open_weights is not None:
        loader = lambda analysis: read_weights(imp, analysis)  # noqa: E731
    return Checked(Source(str(path), imp.text), checked.ir, checked.analysis, diags,
                   weights=loader)


def _nested_rows(model):
    """The IR with each nested model's layers (flattened by config.parse) shown as one
    summary row, the nested model's, as Keras's summary shows it; None when none."""
    rows = {l.name: l.row for l in model.layers if l.row is not None}
    if not rows:
        return None
    from cnnc.analysis.groups import regroup
    return lambda ir: regroup(ir, rows)


def read_weights(imp: Imported, analysis) -> dict:
    from cnnc.frontends.keras import weights
    with imp.container.open_weights() as root:
        return weights.read(root, analysis, imp.model.tree, f"'{imp.path}'",
                            imp.model.origins())


def remap(d: Diagnostic, imp: Imported) -> Diagnostic:
    """A diagnostic about the generated .cnn, told in the Keras file's terms."""
    if d.span is None:
        return replace(d, path=imp.path)
    line = d.span.line
    text = Source(imp.path, imp.text).line_text(line).strip()
    layer = imp.written.lines.get(line)
    notes = list(d.notes)
    if text:
        notes.append(f"as .cnn (cnnc import): {text}")
    message = d.message
    if layer is not None:
        message = f"layer '{layer.name}' ({layer.cls}): {message}"
    return replace(d, message=message, span=None, notes=notes, path=imp.path)
