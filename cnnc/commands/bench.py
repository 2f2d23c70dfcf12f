"""Measure inference speed: cnnc's ONNX on onnxruntime (latency at batch 1,
throughput at --batch) against the NumPy reference forward and, when torch is
installed, PyTorch eager and onnxruntime on torch.onnx.export of the same
network. Same weights, input, threads and session options for every engine;
their outputs are compared to cnnc's (the "max diff" column).

Timings on a busy machine are noisy: close other work, or use benchmarks/bench_onnx.py.
"""

from __future__ import annotations

import argparse
import sys

HELP = "time the ONNX model on onnxruntime against NumPy and PyTorch"
MAX_SECONDS = 3600.0      # per measurement


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cnnc.commands._common import MODEL_FILE_HELP, add_source_arguments
    p.add_argument("file", metavar="FILE", help=MODEL_FILE_HELP)
    add_source_arguments(p)
    p.add_argument("--weights", metavar="NPZ", help="weights (.npz); default: fresh, seed 0")
    p.add_argument("--batch", type=int, default=256, metavar="N",
                   help="batch size of the throughput measurement (default 256)")
    p.add_argument("--threads", type=int, metavar="N", help="threads per engine (default: all cores)")
    p.add_argument("--seconds", type=float, default=1.0, metavar="S",
                   help="time spent on each measurement (default 1.0)")
    p.add_argument("--opset", type=int, metavar="N", help="ONNX opset (default 17)")
    p.add_argument("--no-numpy", action="store_true", help="skip the NumPy reference")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--format", choices=("text", "markdown"), default="text")


def run(args: argparse.Namespace) -> int:
    from cnnc.backends import onnx as lower
    from cnnc.commands._common import load_model, source_options
    from cnnc.runtime import bench as benchmark
    from cnnc.support.diagnostics import UsageError

    if args.batch < 1:
        raise UsageError(f"--batch must be at least 1, got {args.batch}")
    from cnnc.commands._common import threads_option
    args.threads = threads_option(args.threads)
    if not 0 < args.seconds <= MAX_SECONDS:    # nan and inf too: inf never ended
        raise UsageError(f"--seconds must be more than 0 and at most {MAX_SECONDS:g}, got {args.seconds}")
    lower.check_opset(args.opset)
    model = load_model(args.file, command="cnnc bench", **source_options(args))
    from cnnc.backends.numpy.training import require_single_io
    require_single_io(model.analysis, "cnnc bench")   # it times one input batch against one output
    from cnnc.support import resources  # before any weight exists: the ONNX lowering, then batches
    resources.check_model(model, 2, "cnnc bench", work="compile")
    resources.check_model(model, args.batch, "cnnc bench")
    from cnnc.commands._common import weights_used
    origin = weights_used(model, args.file, args.weights, None)
    print(f"weights: {origin}", file=sys.stderr)
    report = benchmark.bench(model.analysis, model.weights, args.batch, args.threads, args.seconds,
                             numpy=not args.no_numpy, torch=not args.no_torch, opset=args.opset)
    render = benchmark.render_markdown if args.format == "markdown" else benchmark.render_text
    print(render(report))
    return 0
