"""Keras export: a Keras 3 `.keras` file from a checked model and its weights.

The file is what `model.save("net.keras")` writes in Keras 3 and what
`keras.saving.load_model` reads: a zip of

- `metadata.json`: Keras's version line, plus what cnnc adds (its version, the source,
  where the weights came from, and fit()'s settings, which a .keras file has no place for);
- `config.json`: the model (config.py): a Sequential for a model written as a line, a
  Functional for a graph or a model written with tensors; the compile() settings as
  `compile_config` (optimizer, loss, metrics), so the loaded model is compiled;
- `model.weights.h5`: the weights in Keras 3's layout (h5.py), and a fresh optimizer
  state (or cnnc's, after `Model.fit`) when the model has compile().

Written atomically (a temp file beside the target, then a rename), never over an input.
A back end: it takes the Analysis and the weights, and imports NumPy and h5py only here.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from cnnc.backends.keras.config import compile_config, fit_settings, is_sequential, model_config
from cnnc.support.atomic import atomic_write
from cnnc.support.diagnostics import UsageError
from cnnc.support.names import json_dumps, path_text

KERAS_VERSION = "3.15.1"     # the Keras 3 release these files are tested against
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def shapes_of(analysis) -> dict[str, tuple]:
    """Every node's sample shape (inputs and layers)."""
    out = {n.name: tuple(n.shape) for n in analysis.model.inputs}
    out.update({i.name: tuple(i.output_shape) for i in analysis.infos})
    return out


def config_json(analysis) -> dict[str, Any]:
    ir = analysis.model
    return model_config(ir, shapes_of(analysis), compile_config(ir.compile))


def metadata_json(analysis, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from cnnc.support.version import __version__
    ir = analysis.model
    cnnc: dict[str, Any] = {"version": __version__, "source": path_text(Path(ir.path).name),
                            "form": "Sequential" if is_sequential(ir) else "Functional"}
    fit = fit_settings(ir.fit)
    if fit is not None:
        cnnc["fit"] = fit
    cnnc.update(extra or {})
    return {"keras_version": KERAS_VERSION,
            "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S"), "cnnc": cnnc}


def export(analysis, weights: Mapping[str, Any], path: str | Path,
           protect: Iterable[str | Path] = (), optimizer_state=None,
           metadata: Mapping[str, Any] | None = None) -> int:
    """Write `path` (.keras); returns its size in bytes. `weights` are cnnc's
    ("layer/weight" -> array, Keras layouts), already checked against the model.

    The weights file is made in memory (h5.to_bytes: HDF5's core driver, nothing on disk),
    so HDF5 never writes a file itself: a full disk or `ulimit -f` is an OSError of the one
    write below (atomic_write: exit 2, the old file kept, no temp file left), never an
    error inside HDF5's C library (which crashed the process and left its file behind)."""
    from cnnc.backends.keras import h5

    if not analysis.complete:
        raise UsageError("cannot export a model whose shapes are not all known")
    target = Path(path)
    config = json_dumps(config_json(analysis), indent=None)
    meta = json_dumps(metadata_json(analysis, metadata), indent=None)
    weights_h5 = h5.to_bytes(analysis, weights, analysis.model.compile, optimizer_state)
    with atomic_write(target, "wb", protect) as out:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
            z.writestr(zipfile.ZipInfo("metadata.json", _ZIP_DATE), meta)
            z.writestr(zipfile.ZipInfo("config.json", _ZIP_DATE), config)
            z.writestr(zipfile.ZipInfo("model.weights.h5", _ZIP_DATE), weights_h5)
        size = out.tell()
    return size
