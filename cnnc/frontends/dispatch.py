"""Which front end reads a path: .cnn text, a Keras model file (.keras, .h5, .json), or a
Keras script or notebook (.py, .ipynb). Every one gives a `Checked` model.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Mapping

from cnnc.analysis.infer import Analysis
from cnnc.frontends.cnn import Checked, check_text, read_source
from cnnc.support.diagnostics import Reporter
from cnnc.support.files import read_bytes

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5", ".json")
KERAS_WEIGHTS_SUFFIXES = (".h5", ".hdf5", ".keras")


def check_file(path: str | Path, model: str | None = None, input_shape: tuple | None = None,
               sizes: Mapping[str, int] | None = None) -> Checked:
    """Check a .cnn file, a Keras model file (.keras, .h5, .json) or a Keras script;
    `input_shape` and `sizes` (--define) fix its open sizes."""
    name = str(path).lower()
    if name.endswith((".py", ".ipynb")):
        return check_script_file(path, model, input_shape, sizes=sizes)
    if name.endswith(KERAS_SUFFIXES):
        from cnnc.frontends import keras  # h5py and NumPy only when a Keras file is involved
        return keras.check_file(path, sizes, input_shape)
    return check_text(read_source(path), str(path), sizes=sizes, input_shape=input_shape)


def check_script_file(path: str | Path, model: str | None = None,
                      input_shape: tuple | None = None, whole: bool = False,
                      sizes: Mapping[str, int] | None = None) -> Checked:
    """A Keras script or notebook (read with `ast`, never run): the model `model`
    names (or the only one) with its diagnostics; `whole` (or no model chosen when
    there are several) keeps every model's diagnostics, for `cnnc check`."""
    from cnnc.frontends.python import check_script
    from cnnc.frontends.python.source import decode
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        sc = check_script(str(path), decode(read_bytes(path), str(path)), model, input_shape, sizes)
    finally:
        if was_enabled:
            gc.enable()
    if whole or not sc.models:
        base = sc.models[0].checked if sc.models else None
        if base is None:
            from cnnc.analysis.infer import infer
            from cnnc.analysis.resolve import resolve
            ir = resolve([], Reporter(str(path)), str(path))
            base = Checked(sc.source, ir, infer(ir, Reporter(str(path))), ())
        return Checked(sc.source, base.ir, base.analysis, tuple(sc.diagnostics), script=sc)
    chosen = sc.select(model)
    own = {id(d) for d in chosen.checked.diagnostics}
    others = {id(d) for f in sc.models for d in f.checked.diagnostics} - own
    diags = tuple(d for d in sc.diagnostics if id(d) not in others)
    return Checked(sc.source, chosen.checked.ir, chosen.checked.analysis, diags, script=sc)


def load_weights(path: str | Path, analysis: Analysis) -> dict:
    """Weights for `analysis` from a .npz, or from a Keras file: `.weights.h5` (Keras 3), a
    Keras 2 weights `.h5`, or the weights inside a full-model `.h5` or `.keras`. Strict:
    WeightsError lists every missing, extra or misshapen array."""
    from cnnc.support import weights as W
    wanted, name = analysis.weight_shapes(), analysis.model.name
    if str(path).lower().endswith(KERAS_WEIGHTS_SUFFIXES):
        from cnnc.frontends.keras.weights import load_file
        return W.check(load_file(str(path), analysis), wanted, name, str(path), owned=True)
    return W.check(W.read_npz(path), wanted, name, str(path), owned=True)
