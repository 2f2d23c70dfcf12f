"""What the commands share: loading a model (.cnn, Keras file, script) and printing its diagnostics."""

from __future__ import annotations

import os
import sys

from cnnc.frontends.cnn import Checked
from cnnc.frontends.dispatch import check_file
from cnnc.support.diagnostics import CnncError, render_all, use_color

MODEL_FILE_HELP = ("the model: a .cnn file, a Keras model file (.keras, .h5, .json) or a Keras "
                   "script or notebook (.py, .ipynb; --model picks one of several models)")


def print_diagnostics(checked: Checked, stream=None) -> None:
    stream = stream or sys.stderr
    if checked.diagnostics:
        print(render_all(checked.diagnostics, checked.source, color=use_color(stream)), file=stream)


def add_source_arguments(p, model: bool = True) -> None:
    """--define and --input-shape: the sizes a source leaves open; --model: which model of
    a Keras script or notebook."""
    if model:
        p.add_argument("--model", metavar="NAME",
                       help="a Keras script or notebook's model: its variable (or NAME:LINE; in a "
                            "notebook NAME:cell N)")
    p.add_argument("--input-shape", metavar="SHAPE",
                   help="one sample's shape where the source leaves sizes open (None, a Keras "
                        "script's data), e.g. 28,28,1")
    p.add_argument("--define", metavar="NAME=VALUE", action="append", default=[],
                   help="fix an open size by name (num_classes=10, H=256); may be repeated")


def source_options(args) -> dict:
    from cnnc.frontends.python import parse_input_shape
    return {"model": getattr(args, "model", None),
            "input_shape": parse_input_shape(getattr(args, "input_shape", None)),
            "sizes": parse_defines(getattr(args, "define", None) or [])}


def parse_defines(items: list[str]) -> dict[str, int] | None:
    """--define NAME=VALUE, repeated: sizes by name (whole numbers >= 1)."""
    from cnnc.support.diagnostics import UsageError
    out: dict[str, int] = {}
    for item in items:
        # the name may be an expression the source writes (`len(class_names)=5`)
        name, eq, value = item.rpartition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name or len(name) > 200:
            raise UsageError(f"--define takes NAME=VALUE, e.g. --define num_classes=10, got {item!r:.80}")
        if not value.isdigit() or len(value) > 18 or int(value) < 1:
            raise UsageError(f"--define {name}: the size must be a whole number >= 1, got {value!r:.40}")
        if name in out and out[name] != int(value):
            raise UsageError(f"--define {name} is given twice ({out[name]} and {value})")
        out[name] = int(value)
    return out or None


def load_checked(path: str, quiet: bool = False, model: str | None = None,
                 input_shape: tuple | None = None, sizes: dict | None = None) -> Checked:
    """Check a file, print its warnings; raise CnncError (exit 1) on errors."""
    if model is not None and not str(path).lower().endswith((".py", ".ipynb")):
        from cnnc.support.diagnostics import UsageError
        raise UsageError("--model is for Keras scripts and notebooks (.py, .ipynb)")
    checked = check_file(path, model, input_shape, sizes)
    if not checked.ok:
        raise CnncError(checked.diagnostics, checked.source, exit_code=1)
    if not quiet:
        print_diagnostics(checked)
    return checked


def load_model(path: str, quiet: bool = False, command: str = "this command", **source):
    """The checked model, its weights' shapes fixed (a command that builds, trains or
    runs it needs them: an open size is a UsageError saying how to give it)."""
    from cnnc.model import Model
    model = Model(load_checked(path, quiet, **source))
    model.require_fixed(command)
    return model


_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def load_weights(model, weights: str | None) -> None:
    """--weights into the model; without them, a model that carries none is refused."""
    if weights:
        model.load_weights(weights)
    elif not model.has_weights:
        from cnnc.support.diagnostics import UsageError
        raise UsageError("the weights are missing: give them with --weights",
                         ["a .cnn, a Keras JSON or a Keras script carries no weights: train it first "
                          "(cnnc train)"])


def output_path(source: str, output: str | None, suffix: str):
    """-o as given, a folder's NAME{suffix}, or the source's name with `suffix` beside it."""
    from pathlib import Path

    from cnnc.support.diagnostics import UsageError
    if not Path(source).name:
        raise UsageError(f"'{source}' is not a file name")
    name = Path(source).with_suffix(suffix)
    if output is None:
        return name
    out = Path(output)
    if out.is_dir() or output.endswith(("/", "\\")):
        return out / name.name
    return out


def add_threads_argument(p) -> None:
    p.add_argument("--threads", type=int, metavar="N",
                   help="BLAS threads for the NumPy work (default: all cores; 1 is faster "
                        "when other processes share the cores)")


def set_threads(n: int | None) -> None:
    """--threads N: how many threads NumPy's BLAS uses. The BLAS libraries read this
    when NumPy loads, so it is set before anything imports NumPy. One thread per
    process is much faster than the default when other processes share the cores
    (BLAS threads spin-wait for each other)."""
    if n is None:
        return
    from cnnc.support.diagnostics import UsageError
    if n < 1:
        raise UsageError(f"--threads must be at least 1, got {n}")
    if "numpy" in sys.modules:
        print("cnnc: warning: --threads has no effect here: NumPy is already loaded", file=sys.stderr)
        return
    for var in _BLAS_THREAD_VARS:
        os.environ[var] = str(n)
