"""Run an ONNX model on onnxruntime: feed a .npy (or one array of a .npz), write
the outputs, print a short report.

The input is checked against the model before anything runs: dtype (integer
pixels are refused unless --cast: they usually need the training scaling),
batch axis (a single sample gets one, with a note), sizes (with a hint when the
data looks channels-first). Big inputs run --batch-size samples at a time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cnnc.support.diagnostics import visible_lines
from cnnc.support.names import shown_path

HELP = "run an .onnx model on onnxruntime with .npy/.npz inputs"
PROVIDERS = ("auto", "cpu", "cuda")   # runtime.sessions.PROVIDERS, without importing NumPy here
MAX_TIMEOUT = 30 * 86400.0            # --timeout: a month


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="the .onnx file (from cnnc compile)")
    p.add_argument("-i", "--input", required=True, metavar="FILE", help="input data, .npy or .npz")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the outputs: .npy (one output) or .npz (keyed by output name)")
    p.add_argument("--key", metavar="NAME", help="which array of an .npz input to use")
    p.add_argument("--provider", choices=PROVIDERS, default="auto",
                   help="auto (CUDA when usable, else CPU), cpu or cuda (default auto)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N",
                   help="samples per onnxruntime call (default 256)")
    p.add_argument("--threads", type=int, metavar="N", help="intra-op threads (default: all cores)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="stop the model after S seconds (default: no limit; Ctrl-C always stops it)")
    p.add_argument("--cast", action="store_true",
                   help="convert integer inputs to the model's float type unchanged")
    p.add_argument("-q", "--quiet", action="store_true", help="no report, only errors")


def run(args: argparse.Namespace) -> int:
    from cnnc.runtime import sessions as rt
    from cnnc.support.atomic import write_bytes
    from cnnc.support.diagnostics import UsageError

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    from cnnc.commands._common import threads_option
    args.threads = threads_option(args.threads)
    if args.timeout is not None and not 0 < args.timeout <= MAX_TIMEOUT:    # NaN fails this too
        raise UsageError(f"--timeout must be a number of seconds above 0 and at most "
                         f"{MAX_TIMEOUT:g}, got {args.timeout:g}")
    if args.output and Path(args.output).suffix not in (".npy", ".npz"):
        raise UsageError(f"cannot tell how to write '{args.output}'", ["use a .npy or .npz file name"])
    sess = rt.load_session(args.model, args.provider, args.threads)
    spec = rt.input_spec(sess)
    if args.output and args.output.endswith(".npz"):     # before the model runs
        from cnnc.support.names import npz_key
        for o in sess.get_outputs():
            npz_key(o.name, "the output")
    raw, what = rt.read_input(args.input, args.key)
    prepared = rt.prepare_input(raw, spec, what, cast=args.cast)
    x = prepared.array
    start = time.perf_counter()
    outputs = rt.run_batches(sess, x, args.batch_size, spec.name, timeout=args.timeout)
    seconds = time.perf_counter() - start
    names = [o.name for o in sess.get_outputs()]
    if args.output:
        write_bytes(args.output, _encode(names, outputs, args.output),
                    protect=[args.model, args.input])
    if not args.quiet:
        for note in prepared.notes:
            print(f"note: {note}", file=sys.stderr)
        print(visible_lines(_report(args, sess, spec, x, names, outputs, seconds)))
    return 0


def _encode(names: list[str], outputs: list, path: str) -> bytes:
    import io

    import numpy as np

    from cnnc.support.diagnostics import UsageError
    buf = io.BytesIO()
    if path.endswith(".npz"):
        # by hand, not np.savez(**outputs): an output may be named 'file' or 'allow_pickle'
        import zipfile

        from cnnc.support.names import npz_key
        for name in names:            # a model's output names are the file's: checked first
            npz_key(name, "the output")
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, y in zip(names, outputs):
                with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asarray(y), allow_pickle=False)
    elif len(outputs) == 1:
        np.save(buf, outputs[0])
    else:
        raise UsageError(f"the model has {len(outputs)} outputs ({', '.join(names)}); a .npy holds one",
                         ["write a .npz instead: -o out.npz"])
    return buf.getvalue()


def _report(args, sess, spec, x, names, outputs, seconds: float) -> str:
    n = len(x)
    batches = -(-n // args.batch_size)
    lines = [
        f"model    {shown_path(args.model)}: input '{spec.name}' {spec.describe()}",
        f"provider {sess.get_providers()[0]}",
        f"input    {shown_path(args.input)}: {n} sample{'s' if n != 1 else ''}, {tuple(x.shape)} {x.dtype}",
    ]
    for name, y in zip(names, outputs):
        dest = f" -> {shown_path(args.output)}" if args.output else ""
        lines.append(f"output   '{name}' {tuple(y.shape)} {y.dtype}{dest}")
    lines.append(f"time     {seconds * 1e3:.1f} ms, {n / seconds:,.0f} samples/s "
                 f"({batches} batch{'es' if batches != 1 else ''} of up to {args.batch_size})")
    y = outputs[0]
    if y.ndim == 2 and y.shape[1] > 1:
        shown = " ".join(str(int(c)) for c in y[:10].argmax(axis=1))
        lines.append(f"classes  {shown}{' ...' if n > 10 else ''} (argmax of the first "
                     f"{min(n, 10)})")
    if not args.output:
        lines.append("note: outputs not saved; write them with -o out.npy")
    return "\n".join(lines)
