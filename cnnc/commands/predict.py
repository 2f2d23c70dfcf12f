"""Predict with trained weights: the model's outputs for a dataset's samples.

--data is a dataset as for `cnnc train` (its test split by default), or a .npy
file of inputs. Prints the predicted class of the first samples (--show N),
with the class names when the dataset has them; -o writes every output:
.npy (the raw outputs), or .csv (index, predicted class, outputs).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from cnnc.commands._common import MODEL_FILE_HELP, add_threads_argument
from cnnc.support.diagnostics import UsageError, visible
from cnnc.support.names import shown_path

HELP = "run trained weights on a dataset's samples and print or save the outputs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help=MODEL_FILE_HELP)
    from cnnc.commands._common import add_source_arguments
    add_source_arguments(p)
    p.add_argument("--weights", metavar="WEIGHTS",
                   help="Keras-compatible weights (.npz, .weights.h5); required unless FILE is a "
                        "Keras model file with its weights (.keras, .h5)")
    p.add_argument("--data", required=True, metavar="SPEC",
                   help="a dataset as for `cnnc train`, or a .npy file of inputs")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N samples")
    p.add_argument("--no-scale", dest="scale", action="store_false",
                   help="do not scale uint8 images by 1/255 (digits by 1/16)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--show", type=int, default=10, metavar="N", help="print the first N predictions")
    p.add_argument("-o", "--output", metavar="PATH", help="write all outputs (.npy or .csv)")
    add_threads_argument(p)


def _inputs(args):
    from cnnc.support import data as D
    if args.data.lower().endswith(".npy"):
        return D.load_npy(args.data), None, None, None
    ds = D.load(args.data)
    x, y = ds.split(args.split)
    if args.split == "test":
        ds.check_scaling(args.scale)
    return x, y, ds.scale, ds.class_names


def run(args: argparse.Namespace) -> int:
    from cnnc.commands._common import set_threads
    set_threads(args.threads)  # before NumPy loads
    import numpy as np

    from cnnc.commands._common import load_model, load_weights, source_options
    from cnnc.support import data as D
    from cnnc.support.atomic import write_bytes, write_text

    model = load_model(args.file, command="cnnc predict", **source_options(args))
    from cnnc.backends.numpy.training import require_single_io
    require_single_io(model.analysis, "cnnc predict")  # one --data array in, one array out
    if args.output and Path(args.output).suffix not in (".npy", ".csv"):
        raise UsageError(f"the output '{args.output}' should end in .npy or .csv")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.output:    # before any work
        from cnnc.support.atomic import check_outputs
        check_outputs([(args.output, "-o")], [args.file, args.data, args.weights])
    from cnnc.support import resources
    resources.check_model(model, args.batch_size, "cnnc predict")   # before any weight exists
    load_weights(model, args.weights, args.file)
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    x, y, divisor, names = _inputs(args)
    if args.limit:
        x = x[:args.limit]
        y = None if y is None else y[:args.limit]
    x = D.prepare_x(x, model.ir.input_shape, scale=args.scale, divisor=divisor,
                    what="x", model=f"model '{model.name}'")
    if len(x) == 0:
        raise UsageError(f"--data '{shown_path(args.data)}' has no samples (shape {tuple(x.shape)})"
                         + (f" ({args.split} split)" if y is not None else ""))
    out = model.predict(x, batch_size=args.batch_size)
    classes = out.argmax(axis=-1) if out.shape[-1] > 1 else (out[..., 0] > 0.5).astype(int)
    for i in range(min(args.show, len(out))):
        c = int(np.ravel(classes[i])[0]) if np.ndim(classes[i]) else int(classes[i])
        label = f" {names[c]!r}" if names and 0 <= c < len(names) else ""
        conf = float(np.max(out[i])) if out.shape[-1] > 1 else float(out[i].ravel()[0])
        truth = ""
        if y is not None and np.ndim(y[i]) == 0:
            t = int(y[i])
            truth = f" (label {t}{f' {names[t]!r}' if names and 0 <= t < len(names) else ''})"
        print(visible(f"{i}: class {c}{label}, output {conf:.4f}{truth}"))
    if args.output:
        protect = [p for p in (args.file, args.data, args.weights) if p]
        if args.output.endswith(".npy"):
            buf = io.BytesIO()
            np.save(buf, out)
            write_bytes(args.output, buf.getvalue(), protect)
        else:
            flat = out.reshape(len(out), -1)
            lines = ["index,class," + ",".join(f"output_{j}" for j in range(flat.shape[1]))]
            lines += [f"{i},{int(np.ravel(classes[i])[0])}," + ",".join(f"{v:.7g}" for v in row)
                      for i, row in enumerate(flat)]
            write_text(args.output, "\n".join(lines) + "\n", protect)
        print(f"wrote {shown_path(args.output)} ({len(out):,} outputs of shape {tuple(out.shape[1:])})")
    return 0
