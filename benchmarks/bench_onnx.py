"""ONNX inference benchmark: the tutorial networks on onnxruntime (cnnc's export)
against the NumPy reference forward, PyTorch eager and onnxruntime on
torch.onnx.export (when torch is installed), plus the whole-process time of
`cnnc compile examples/mnist.cnn`. Writes docs/BENCHMARKS.md section "onnx".

    python benchmarks/bench_onnx.py                 # all tutorial nets, ~1 s per measurement
    python benchmarks/bench_onnx.py --seconds 3 --threads 2 mnist cifar10
    python benchmarks/bench_onnx.py --no-write      # print only

Run it on a quiet machine: other processes make every number slower and noisier.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cnnc  # noqa: E402
from benchmarks._report import ROOT, machine, write_section  # noqa: E402
from cnnc.runtime import bench as benchmark  # noqa: E402

NETS = ("mnist", "cifar10", "cifar10_sgd", "separable", "digits")


def compile_time(runs: int = 7) -> tuple[float, float]:
    """Median and best whole-process time of `cnnc compile examples/mnist.cnn -q`."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "cnnc", "compile", str(ROOT / "examples" / "mnist.cnn"),
               "-q", "-o", str(Path(tmp) / "mnist.onnx")]
        # As after `pip install`: compiled bytecode cached (some sandboxes turn that off).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm the caches
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("nets", nargs="*", default=NETS, help=f"example names (default: {' '.join(NETS)})")
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--no-write", action="store_true", help="print, do not update docs/BENCHMARKS.md")
    args = p.parse_args()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    parts = [f"Machine: {machine()}; load average {load:.1f} when the run started "
             "(other work on the machine slows and scatters every number).", ""]
    try:
        import torch
        parts.append(f"onnxruntime {_version('onnxruntime')}, onnx {_version('onnx')}, "
                     f"numpy {_version('numpy')}, torch {torch.__version__}.")
    except ImportError:
        parts.append(f"onnxruntime {_version('onnxruntime')}, onnx {_version('onnx')}, "
                     f"numpy {_version('numpy')}; torch not installed (no PyTorch rows).")
    parts += ["", "Latency: median of single-sample calls. Throughput: samples/s of the median "
                  f"batch-{args.batch} call. Every engine: same weights (fresh, seed 0), same "
                  "input, same intra-op threads; ORT with all graph optimisations. "
                  "`max diff`: largest difference from cnnc's ONNX output.", ""]
    for name in args.nets:
        model = cnnc.load(ROOT / "examples" / f"{name}.cnn")
        model.init_weights(0)
        report = benchmark.bench(model.analysis, model.weights, args.batch, args.threads, args.seconds)
        print(benchmark.render_text(report), "\n", flush=True)
        parts += [f"**{name}** (`examples/{name}.cnn`, {model.total_params:,} params, "
                  f"{report.threads} threads)", "", benchmark.render_markdown(report), ""]
    median, best = compile_time()
    line = (f"Whole-process `cnnc compile examples/mnist.cnn -q` (parse, check, lower, verify, "
            f"write): median {median:.2f} s, best {best:.2f} s (goal ≤ 0.5 s).")
    print(line)
    parts.append(line)
    parts.append("\nReproduce: `python benchmarks/bench_onnx.py` (or `cnnc bench FILE` for one net).")
    if not args.no_write:
        write_section("onnx", "## ONNX inference (onnxruntime)\n\n" + "\n".join(parts))
    return 0


def _version(module: str) -> str:
    import importlib
    return getattr(importlib.import_module(module), "__version__", "?")


if __name__ == "__main__":
    sys.exit(main())
