"""Export a .cnn model to a Keras 3 `.keras` file that `keras.saving.load_model` loads
and that predicts what cnnc predicts: the model as a Sequential (a model written as a
line) or a Functional (a graph), compiled with the file's compile() settings, and the
weights in Keras's layout. Train it at scale where Keras runs, then bring the weights
back (docs/KERAS_EXPORT.md).

Weights come from --weights, else from the model file itself (a Keras .keras/.h5 keeps its
trained weights), else they are freshly initialised (--seed); the command says which.
Written atomically, by default next to the source as NAME.keras (never over an existing
file: name it with -o to replace it), never over an input. Needs h5py (a dependency of
cnnc); Keras is not needed to write the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnc.commands._common import (
    MODEL_FILE_HELP,
    add_source_arguments,
    load_model,
    output_path,
    source_options,
)

HELP = "write a Keras 3 .keras file (model, compile settings, weights) from a model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help=MODEL_FILE_HELP)
    p.add_argument("-o", "--output", metavar="PATH",
                   help="where to write the .keras (default: FILE with .keras, never over an "
                        "existing file; a folder: FILE's name in it)")
    p.add_argument("--weights", metavar="WEIGHTS",
                   help="Keras-compatible weights (.npz, .weights.h5); a Keras model file "
                        "(.keras, .h5) brings its own")
    p.add_argument("--seed", type=int, default=None,
                   help="fresh initial weights with this seed (default 0 when the model has no "
                        "weights of its own)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only errors, the written path and the weights used")
    add_source_arguments(p)


def run(args: argparse.Namespace) -> int:
    from cnnc.commands._common import recorded, refuse_default_over_existing, weights_used
    from cnnc.support.diagnostics import UsageError
    from cnnc.support.names import shown_path

    path = output_path(args.file, args.output, ".keras")
    if path.suffix != ".keras":
        raise UsageError(f"the output must end in .keras, got '{shown_path(path)}'",
                         ["Keras 3's load_model reads a .keras file by its extension"])
    if args.weights and args.seed is not None:
        raise UsageError("give --weights or --seed, not both")
    protect = [args.file] + ([args.weights] if args.weights else [])
    from cnnc.support.atomic import check_outputs
    if args.output is None or Path(args.output).is_dir():
        refuse_default_over_existing([(path, "the .keras file")], "-o NET.keras")
    check_outputs([(path, "-o")], protect)   # before any work (atomic_write checks again)
    try:
        import h5py  # noqa: F401
    except ImportError as e:
        from cnnc.support.diagnostics import interrupted
        if interrupted(e):
            raise KeyboardInterrupt from None
        raise UsageError("writing .keras files needs h5py", ["pip install h5py"]) from None
    from cnnc.backends.keras import export
    from cnnc.backends.keras.config import is_sequential
    from cnnc.backends.report.summary import readable_memory_size

    model = load_model(args.file, command="cnnc export", quiet=args.quiet, **source_options(args))
    from cnnc.support import resources
    resources.check_model(model, 1, "cnnc export", work="compile")
    origin = weights_used(model, args.file, args.weights, args.seed)
    size = export(model.analysis, model.weights, path, protect=protect,
                  metadata={"weights": recorded(origin)})
    print(f"wrote {shown_path(path)} ({readable_memory_size(size)}); weights: {origin}")
    if not args.quiet:
        ir = model.ir
        form = "Sequential" if is_sequential(ir) else "Functional"
        n = len(model.analysis.infos)
        print(f"  Keras 3 {form}, {n} layer{'s' if n != 1 else ''}, "
              f"{model.analysis.total_params:,} parameters")
        if ir.compile is not None:
            print("  compiled: " + _compiled(ir.compile))
        print(f"  load it with keras.saving.load_model({shown_path(path)!r})")
    return 0


def _compiled(spec) -> str:
    parts = [f"optimizer {spec.optimizer.name}"]
    if spec.loss is not None:
        parts.append(f"loss {spec.loss.name}")
    if spec.metrics:
        parts.append("metrics " + ", ".join(spec.metrics))
    return ", ".join(parts)
