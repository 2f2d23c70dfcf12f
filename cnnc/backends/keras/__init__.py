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

import json
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from cnnc.backends.keras.config import compile_config, fit_settings, is_sequential, model_config
from cnnc.support.atomic import atomic_write
from cnnc.support.diagnostics import UsageError

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
    cnnc: dict[str, Any] = {"version": __version__, "source": Path(ir.path).name,
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
    ("layer/weight" -> array, Keras layouts), already checked against the model."""
    from cnnc.backends.keras import h5

    if not analysis.complete:
        raise UsageError("cannot export a model whose shapes are not all known")
    target = Path(path)
    config = json.dumps(config_json(analysis))
    meta = json.dumps(metadata_json(analysis, metadata))
    folder = target.parent if str(target.parent) else Path(".")
    tmp_h5 = None
    try:
        with atomic_write(target, "wb", protect) as out:
            # the weights go to a temp file first (h5py writes files), then into the zip
            fd, tmp_h5 = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".h5", dir=folder)
            os.close(fd)
            h5.write(tmp_h5, analysis, weights, analysis.model.compile, optimizer_state)
            with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
                z.writestr(zipfile.ZipInfo("metadata.json", _ZIP_DATE), meta)
                z.writestr(zipfile.ZipInfo("config.json", _ZIP_DATE), config)
                z.write(tmp_h5, "model.weights.h5")
    except OSError as e:
        raise UsageError(f"cannot write '{target}': {e.strerror or e}",
                         ["the old file, if any, is unchanged"]) from None
    finally:
        if tmp_h5 is not None:
            try:
                os.unlink(tmp_h5)
            except OSError:
                pass
    return target.stat().st_size
