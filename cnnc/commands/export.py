"""Export a .cnn model to a Keras 3 `.keras` file that `keras.saving.load_model` loads
and that predicts what cnnc predicts: the model as a Sequential (a model written as a
line) or a Functional (a graph), compiled with the file's compile() settings, and the
weights in Keras's layout. Train it at scale where Keras runs, then bring the weights
back (docs/KERAS_EXPORT.md).

Weights come from --weights (a Keras-compatible .npz) or are freshly initialised with
--seed. Written atomically, by default next to the source as NAME.keras, never over an
input. Needs h5py (a dependency of cnnc); Keras is not needed to write the file.
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
                   help="where to write the .keras (default: FILE with .keras; a folder: "
                        "FILE's name in it)")
    p.add_argument("--weights", metavar="NPZ", help="Keras-compatible weights (.npz)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the fresh initial weights when --weights is not given (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors and the written path")
    add_source_arguments(p)


def run(args: argparse.Namespace) -> int:
    from cnnc.support.diagnostics import UsageError

    path = output_path(args.file, args.output, ".keras")
    if path.suffix != ".keras":
        raise UsageError(f"the output must end in .keras, got '{path}'",
                         ["Keras 3's load_model reads a .keras file by its extension"])
    protect = [args.file] + ([args.weights] if args.weights else [])
    from cnnc.support.atomic import check_outputs
    check_outputs([(path, "-o")], protect)   # before any work (atomic_write checks again)
    try:
        import h5py  # noqa: F401
    except ImportError:
        raise UsageError("writing .keras files needs h5py", ["pip install h5py"]) from None
    from cnnc.backends.keras import export
    from cnnc.backends.keras.config import is_sequential
    from cnnc.backends.report.summary import readable_memory_size

    model = load_model(args.file, command="cnnc export", quiet=args.quiet, **source_options(args))
    from cnnc.support import resources
    resources.check_model(model, 1, "cnnc export", work="compile")
    if args.weights:
        model.load_weights(args.weights)
        origin = f"file {Path(args.weights).name}"
    else:
        model.init_weights(args.seed)
        origin = f"fresh initialisation, seed {args.seed} (untrained)"
    size = export(model.analysis, model.weights, path, protect=protect,
                  metadata={"weights": origin})
    print(f"wrote {path} ({readable_memory_size(size)})")
    if not args.quiet:
        ir = model.ir
        form = "Sequential" if is_sequential(ir) else "Functional"
        n = len(model.analysis.infos)
        print(f"  Keras 3 {form}, {n} layer{'s' if n != 1 else ''}, "
              f"{model.analysis.total_params:,} parameters; weights: {origin}")
        if ir.compile is not None:
            print("  compiled: " + _compiled(ir.compile))
        print(f"  load it with keras.saving.load_model('{path}')")
    return 0


def _compiled(spec) -> str:
    parts = [f"optimizer {spec.optimizer.name}"]
    if spec.loss is not None:
        parts.append(f"loss {spec.loss.name}")
    if spec.metrics:
        parts.append("metrics " + ", ".join(spec.metrics))
    return ", ".join(parts)
