"""Evaluate trained weights on a dataset: the loss and metrics of the file's
compile(...), in inference mode (Keras's model.evaluate).

Uses the test split (x_test, y_test) unless --split train. Prints
`loss: ... - accuracy: ...` (or JSON with --format json).
"""

from __future__ import annotations

import argparse
import sys

from cnnc.commands.train import add_data_arguments, check_data_arguments

HELP = "compute the loss and metrics of trained weights on a dataset"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cnnc.commands._common import MODEL_FILE_HELP, add_source_arguments
    p.add_argument("file", metavar="FILE", help=MODEL_FILE_HELP)
    add_source_arguments(p)
    p.add_argument("--weights", metavar="WEIGHTS",
                   help="Keras-compatible weights (.npz, .weights.h5); required unless FILE is a "
                        "Keras model file with its weights (.keras, .h5)")
    add_data_arguments(p)
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--loss", help="override the file's loss (needed when the file has no compile)")
    p.add_argument("--metrics", help="comma-separated, e.g. accuracy")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--runtime", choices=("numpy", "onnx"), default="numpy",
                   help="compute the outputs with the NumPy reference (default) or with "
                        "onnxruntime on the model's ONNX lowering")
    p.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto",
                   help="onnxruntime provider for --runtime onnx")


def run(args: argparse.Namespace) -> int:
    from cnnc.commands._common import set_threads
    set_threads(args.threads)  # before NumPy loads
    from cnnc.backends.numpy import training as train
    from cnnc.commands._common import load_model, load_weights, source_options
    from cnnc.runtime.evaluate import evaluate
    from cnnc.support import data as D

    check_data_arguments(args)
    model = load_model(args.file, command="cnnc evaluate", **source_options(args))
    train.require_single_io(model.analysis, "cnnc evaluate")  # before any data is read
    from cnnc.support import resources
    from cnnc.support.diagnostics import UsageError
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    resources.check_model(model, args.batch_size, "cnnc evaluate")   # before any weight exists
    load_weights(model, args.weights, args.file)
    ds = D.load(args.data).limit(args.limit)
    x, y = ds.split(args.split)
    if args.split == "test":
        ds.check_scaling(args.scale)
    metrics = None if args.metrics is None else [m.strip() for m in args.metrics.split(",") if m.strip()]
    logs = evaluate(model.analysis, model.weights, x, y, batch_size=args.batch_size,
                    return_dict=True, verbose=0,
                          scale=args.scale, divisor=ds.scale, loss=args.loss, metrics=metrics,
                          runtime=args.runtime, provider=args.provider)
    if args.format == "json":
        from cnnc.support.names import json_dumps, path_text
        # NaN (a loss that overflowed) is null: JSON has no NaN
        sys.stdout.write(json_dumps({"model": model.name, "weights": path_text(args.weights or args.file),
                                     "data": path_text(args.data), "split": args.split,
                                     "runtime": args.runtime, "samples": int(len(x)), **logs}) + "\n")
    else:
        print(f"{len(x):,} samples ({args.split}, {args.runtime})" +
              "".join(f" - {k}: {v:.4f}" for k, v in logs.items()))
    return 0
