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


def load_weights(model, weights: str | None, source: str = "") -> str:
    """--weights into the model; without them, a model that carries none is refused.
    Says (on stderr, and returns) which weights are used."""
    from cnnc.support.names import shown_path
    if weights:
        model.load_weights(weights)
        origin = f"file {shown_path(weights)}"
    elif not model.has_weights:
        from cnnc.support.diagnostics import UsageError
        raise UsageError("the weights are missing: give them with --weights",
                         ["a .cnn, a Keras JSON or a Keras script carries no weights: train it first "
                          "(cnnc train)"])
    else:
        model.weights             # read and checked now
        origin = f"the model file's own ({shown_path(source)})" if source else "the model file's own"
    print(f"weights: {origin}", file=sys.stderr)
    return origin


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
    n = threads_option(n)
    if n is None:
        return
    if "numpy" in sys.modules:
        print("cnnc: warning: --threads has no effect here: NumPy is already loaded", file=sys.stderr)
        return
    for var in _BLAS_THREAD_VARS:
        os.environ[var] = str(n)


def threads_option(n: int | None) -> int | None:
    """--threads N checked (at least 1) and bounded by the cores this process may use, with
    a note on stderr when it is lowered (support/resources.check_threads)."""
    from cnnc.support.resources import check_threads
    used, note = check_threads(n)
    if note:
        print(f"cnnc: note: {note}", file=sys.stderr)
    return used


def refuse_default_over_existing(outputs, option: str) -> None:
    """A default output (one the user did not name) never replaces an existing file: `cnnc
    export model.h5` wrote over the model.keras beside it. UsageError (exit 2) naming the
    file and the option that replaces it on purpose."""
    from cnnc.support.diagnostics import UsageError
    from cnnc.support.names import shown_path
    for path, what in outputs:
        if os.path.lexists(path):
            raise UsageError(f"{what} would go to '{shown_path(path)}', which exists; cnnc does "
                             "not replace a file it was not asked to write",
                             [f"name the output to replace it ({option}), or choose another path"])


def weights_used(model, source: str, weights: str | None, seed: int | None) -> str:
    """Set the model's weights as the command line asks, and say which they are: --weights,
    else the model file's own (a Keras file keeps its trained weights), else fresh ones."""
    from cnnc.support.names import shown_path
    if weights:
        model.load_weights(weights)
        return f"file {shown_path(weights)}"
    if model.has_weights and seed is None:
        model.weights            # read and checked now
        return f"the model file's own ({shown_path(source)})"
    seed = 0 if seed is None else seed
    model.init_weights(seed)
    return f"fresh initialisation, seed {seed} (untrained)"


def recorded(origin: str) -> str:
    """`weights_used`'s words as a file's metadata keeps them: file names without their
    folders (a path on this machine means nothing where the file goes)."""
    import re
    from pathlib import PurePath
    return re.sub(r"(file |\()([^()]+?)(\)|$)", lambda m: m.group(1) + PurePath(m.group(2)).name + m.group(3),
                  origin, count=1)
