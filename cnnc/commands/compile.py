"""Compile a model (.cnn, Keras model file, Keras script or notebook) to ONNX: check
it, print its summary, lower it, verify the graph (onnx checker, strict shape inference
against cnnc's shapes, an onnxruntime smoke run) and write it atomically, by default next
to the source as NAME.onnx.

Weights come from --weights, else from the model file itself (a Keras .keras/.h5 keeps
its trained weights), else they are freshly initialised with --seed (the ONNX file of an
untrained model: useful to check deployment); the report says which.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnnc.commands._common import MODEL_FILE_HELP, load_model, source_options, weights_used
from cnnc.support.diagnostics import UsageError, visible

HELP = "check a model, print its summary and write a verified ONNX model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help=MODEL_FILE_HELP)
    from cnnc.commands._common import add_source_arguments
    add_source_arguments(p)
    p.add_argument("-o", "--output", metavar="PATH",
                   help="where to write the .onnx (default: FILE with .onnx; a folder: FILE's name in it)")
    p.add_argument("--weights", metavar="WEIGHTS",
                   help="Keras-compatible weights (.npz, or Keras's .weights.h5 / .h5); a Keras "
                        "model file (.keras, .h5) brings its own")
    p.add_argument("--seed", type=int, default=None,
                   help="fresh initial weights with this seed (default 0 when the model has no "
                        "weights of its own)")
    p.add_argument("--opset", type=int, metavar="N",
                   help="ONNX opset (default 17; see docs/ONNX.md for the supported range)")
    p.add_argument("--external-data-threshold", type=int, metavar="BYTES",
                   help="weights over this many bytes go to NAME.onnx.data beside the model "
                        "(ONNX external data; default: just under protobuf's 2 GB limit)")
    p.add_argument("--no-summary", action="store_true", help="do not print the model summary")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print neither warnings nor the summary; only errors and the written path")


def output_path(source: str, output: str | None) -> Path:
    from cnnc.backends.onnx import default_path
    if not Path(source).name or Path(source).name in (".", ".."):
        raise UsageError(f"'{source}' is not a file name")
    if output is None:
        return default_path(source)
    out = Path(output)
    if out.is_dir() or output.endswith(("/", "\\")):
        return out / default_path(Path(source).name)
    return out


def run(args: argparse.Namespace) -> int:
    from cnnc.backends import onnx as lower
    from cnnc.backends.report.summary import render
    from cnnc.support import resources
    from cnnc.support.atomic import check_outputs
    lower.check_opset(args.opset)
    if args.weights and args.seed is not None:
        raise UsageError("give --weights or --seed, not both")
    path = output_path(args.file, args.output)
    protect = [args.file] + ([args.weights] if args.weights else [])
    if args.external_data_threshold is not None and args.external_data_threshold < 0:
        raise UsageError(f"--external-data-threshold must be >= 0, got {args.external_data_threshold}")
    check_outputs([(path, "-o"), (lower.data_path(path), "its external data (NAME.onnx.data)")],
                  protect)      # before any work
    model = load_model(args.file, command="cnnc compile", quiet=args.quiet, **source_options(args))
    resources.check_model(model, 2, "cnnc compile", work="compile")   # before any weight exists
    origin = weights_used(model, args.file, args.weights, args.seed)
    if not (args.quiet or args.no_summary):
        print(render(model.analysis, "text", diagnostics=model.diagnostics))
    try:
        lowered = lower.lower(model.analysis, model.weights, args.opset, metadata={"weights": origin},
                              source=model.source, path=path,
                              external_threshold=args.external_data_threshold)
    except lower.VerificationError as e:
        print(f"cnnc: error: the ONNX graph failed verification: {visible(str(e))}", file=sys.stderr)
        print("  note: this is a bug in cnnc; please report it with the .cnn file", file=sys.stderr)
        return 70
    size = lower.write(lowered.proto, path, protect=protect, data=lowered.data, staged=lowered.staged,
                       inline=lowered.inline)
    print(_report(lowered, path, size, origin, args.quiet))
    return 0


def _report(lowered, path: Path, size: int, origin: str, quiet: bool) -> str:
    from cnnc.backends.onnx import INPUT_NAME, OUTPUT_NAME
    from cnnc.backends.report.summary import readable_memory_size
    from cnnc.support.names import shown_path
    head = f"wrote {shown_path(path)} ({readable_memory_size(size)})"
    if lowered.staged is not None and not lowered.inline:
        from cnnc.backends.onnx import data_path
        head += f", its weights in {shown_path(data_path(path))} (ONNX external data)"
    if quiet:
        return f"{head}; weights: {origin}"
    g = lowered.proto.graph
    ops = ", ".join(f"{op} {n}" for op, n in sorted(lowered.op_counts().items(), key=lambda t: -t[1]))
    lines = [
        "",
        head,
        f"  opset {lowered.opset}, {lowered.nodes} node{'s' if lowered.nodes != 1 else ''} ({ops}), "
        f"{lowered.transposes} Transpose",
        f"  input  '{INPUT_NAME}' {_shape(g.input[0])} float32, channels_last (NHWC) as in Keras",
        f"  output '{OUTPUT_NAME}' {_shape(g.output[0])} float32",
        f"  weights: {origin}",
        f"  verified: {'; '.join(lowered.checks)}",
    ]
    if not lowered.finite:
        lines.append("  warning: on a random input the model gives NaN or inf values")
    return "\n".join(lines)


def _shape(value_info) -> str:
    dims = [d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?")
            for d in value_info.type.tensor_type.shape.dim]
    return "(" + ", ".join(dims) + ")"
