"""Training throughput, cnnc against PyTorch CPU on the same cores: five networks,
the same thread count for both (default 2, then 1), interleaved rounds, medians.

For each network: samples/s of a training step at batch 64 (forward, loss, backward,
the file's optimizer) for cnnc (the batch split over --threads threads as `cnnc train`
runs it; with numba installed, with the compiled kernels and again on the NumPy
reference's) and for PyTorch eager in NCHW and in channels_last
(the twin of the same model, cnnc/runtime/torch_twin.py: same initial weights, same
optimizer). Each round runs every implementation for about --seconds, one after the
other, so that all see the same machine load; the ratio is cnnc / the faster PyTorch
layout, per round, then the median of the rounds.

The arithmetic limit: a step's floating-point operations per sample (training_flops
in _train_steps.py) against NumPy's float32 matrix-product rate on the same threads,
measured in every round; the fraction of that limit reached depends less on the
machine's load than samples/s do (the step and the product slow down together). On
cores that other work keeps busy, threads that spin-wait for each other (PyTorch's
OpenMP, multi-threaded BLAS) lose far more than one thread does: the one-thread table
is the comparison such a machine can still make fairly.

    python benchmarks/bench_train_speed.py                    # all five, about 10 minutes
    python benchmarks/bench_train_speed.py --nets mnist,resnet --rounds 3 --no-write

Writes docs/BENCHMARKS.md, section "train_speed". torch is never a dependency of cnnc.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETS = {   # name: (file, what it is)
    "mnist": ("examples/mnist.cnn", "the Keras MNIST convnet (RMSprop)"),
    "resnet": ("examples/resnet_fmnist.cnn", "small ResNet: BatchNormalization, residual Adds (Adam)"),
    "cifar10": ("examples/cifar10.cnn", "TensorFlow's CIFAR-10 tutorial convnet (Adam)"),
    "mobilenet": ("benchmarks/models/mobilenet_cifar.cnn",
                  "MobileNet-style: depthwise 3x3 + pointwise 1x1, BatchNormalization, relu6 (Adam)"),
    "separable": ("examples/separable.cnn",
                  "Xception-style: SeparableConv2D with depth_multiplier, BatchNormalization (Adam)"),
}


def _parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", default=",".join(NETS), help=f"comma-separated, of {', '.join(NETS)}")
    p.add_argument("--threads", default="2,1", help="thread counts, one table each (default 2,1)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--seconds", type=float, default=2.0, help="per implementation and round")
    p.add_argument("--before", metavar="REV",
                   help="also time the cnnc of this git revision (e.g. main), in a subprocess each "
                        "round, with as many BLAS threads as the table's (its only parallelism)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    p.add_argument("--save", metavar="JSON", help="also write the measurements to this file")
    return p.parse_args(argv)


ARGS = _parse()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"      # before NumPy loads: one BLAS thread per training thread

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _train_steps import cnnc_step, images, matmul_rate, rounds, torch_step, train_flops, twin_max_diff  # noqa: E402

import cnnc  # noqa: E402
from cnnc.backends.numpy import jit  # noqa: E402

# One round of an earlier cnnc, in its own interpreter: the same step as _train_steps's
# (that version's Network, loss and optimizer), on the same data, timed the same way.
BEFORE_SCRIPT = r"""
import json, sys, time
import numpy as np
import cnnc
from cnnc.support import data as D
from cnnc.backends.numpy import losses as L, optimizers as O
from cnnc.backends.numpy.network import Network
path, data, batch, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
m = cnnc.load(path); m.init_weights(0)
net = Network(m.analysis, m.weights)
loss = L.from_spec(m.ir.compile.loss, net.output_activation); opt = O.from_spec(m.ir.compile.optimizer)
arrays = np.load(data)
xs = D.prepare_x(arrays["x"], m.ir.input_shape); ys = D.prepare_y(arrays["y"], m.analysis.output_shape, loss.name)
rng = np.random.default_rng(0); i = 0
def step():
    global i
    i = (i + batch) % (len(xs) - batch)
    with np.errstate(all="ignore"):
        p = net.forward(xs[i:i + batch], training=True, rng=rng)
        _, dy = loss.value_and_gradient(ys[i:i + batch], p)
        opt.apply(net.backward(dy, skip_output_activation=loss.fused), net.weights)
for _ in range(5): step()
t = time.perf_counter(); k = 0
while time.perf_counter() - t < seconds:
    step(); k += 1
print(json.dumps(k * batch / (time.perf_counter() - t)))
"""


def before_step(rev: str, path: str, x, y, args, threads: int, tmp: Path):
    """A step function that runs one timed round of cnnc at `rev` in a subprocess and
    reports its samples/s (rounds() takes the rate it returns)."""
    import subprocess
    src = tmp / "before"
    if not src.exists():
        src.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "cnnc", "grammar"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    data = tmp / f"{Path(path).stem}.npz"
    np.savez(data, x=x, y=y)
    env = {**os.environ, "PYTHONPATH": str(src), "OPENBLAS_NUM_THREADS": str(threads),
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}

    def rate() -> float:
        done = subprocess.run([sys.executable, "-c", BEFORE_SCRIPT, path, str(data), str(args.batch),
                               str(args.seconds)], capture_output=True, text=True, env=env, cwd=tmp)
        if done.returncode != 0:
            raise RuntimeError(f"cnnc at {rev} failed:\n{done.stderr[-2000:]}")
        return float(done.stdout.strip().splitlines()[-1])
    rate.close = lambda: None
    rate.measures_itself = True
    return rate


def numpy_kernels(step):
    """The step on the NumPy reference (CNNC_KERNELS=numpy), the compiled kernels turned
    off around it only."""
    def run():
        jit.set_active(False)
        try:
            step()
        finally:
            jit.set_active(True)
    run.close = step.close
    return run


def measure(name: str, args, threads: int, rates_of_matmul: list[float], tmp: Path) -> dict:
    import torch
    path = str(ROOT / NETS[name][0])
    model = cnnc.load(path)
    x, y = images(model, 4096)
    steps = {"cnnc": cnnc_step(path, x, y, threads, args.batch),
             "torch": torch_step(path, x, y, False, args.batch),
             "torch_cl": torch_step(path, x, y, True, args.batch)}
    if jit.active():        # the compiled kernels against the NumPy reference they stand in for
        steps["numpy"] = numpy_kernels(cnnc_step(path, x, y, threads, args.batch))
    if args.before:
        steps["before"] = before_step(args.before, path, x, y, args, threads, tmp)
    try:
        rates = rounds(steps, args.batch, args.rounds, args.seconds,
                       between=lambda: rates_of_matmul.append(matmul_rate(threads)))
    finally:
        for s in steps.values():
            s.close()
    per_round = [c / max(t, tl) for c, t, tl in zip(rates["cnnc"], rates["torch"], rates["torch_cl"])]
    return {"name": name, "file": NETS[name][0], "params": model.total_params,
            "macs": model.total_macs, "flops": train_flops(path),
            "twin_max_diff": twin_max_diff(path, x), "torch_threads": torch.get_num_threads(),
            **{k: float(np.median(v)) for k, v in rates.items()},
            "spread": {k: [float(min(v)), float(max(v))] for k, v in rates.items()},
            "ratio": float(np.median(per_round)), "ratio_spread": [float(min(per_round)), float(max(per_round))]}


def render(args, tables: dict[int, dict], machine: str, load: str, load_after: str,
           torch_version: str) -> str:
    """tables: thread count -> {"results": [...], "matmul": [...], "load": ...}."""
    lines = ["## Training throughput: cnnc against PyTorch, same threads", "",
             f"Machine: {machine}; load average {load} at the start, {load_after} at the end (other "
             f"work shares the cores: every number below is a median of interleaved rounds, and the "
             f"load of each table is given). N threads for cnnc means the batch split across N "
             f"threads, one BLAS thread each, as `cnnc train --threads N` runs it; for PyTorch "
             f"{torch_version}, `torch.set_num_threads(N)`, eager mode.", "",
             f"Batch {args.batch}, one training step = forward + loss + backward + the file's optimizer. "
             f"{args.rounds} rounds of about {args.seconds:.0f} s per implementation, interleaved; "
             f"samples/s is the median of the rounds; the ratio is cnnc / the faster PyTorch layout, "
             f"round by round, then the median (its range in brackets). The share of the arithmetic "
             f"limit (below) is samples/s x a sample's training FLOPs / the matrix-product rate of "
             f"the same threads in the same rounds."]
    for threads, table in tables.items():
        results, matmul = table["results"], table["matmul"]
        rate = float(np.median(matmul))
        before = args.before and all("before" in r for r in results)
        ref = all("numpy" in r for r in results)
        lines += ["", f"**{threads} thread{'s' if threads > 1 else ''}** (load average {table['load']} "
                  f"before this table; NumPy's float32 product {rate / 1e9:.0f} GFLOP/s, range "
                  f"{min(matmul) / 1e9:.0f}-{max(matmul) / 1e9:.0f}):", "",
                  "| network | MFLOP per sample (training) | " + (f"cnnc {args.before} | " if before else "")
                  + ("cnnc, NumPy kernels | " if ref else "")
                  + "cnnc samples/s | PyTorch NCHW | PyTorch channels_last | cnnc / best PyTorch | "
                  "cnnc, share of the arithmetic limit | PyTorch, share |",
                  "|---|---:|" + ("---:|" if before else "") + ("---:|" if ref else "")
                  + "---:|---:|---:|---:|---:|---:|"]
        for r in results:
            limit = rate / r["flops"]
            best = max(r["torch"], r["torch_cl"])
            lines.append(f"| `{Path(r['file']).name}` | {r['flops'] / 1e6:.1f} | "
                         + (f"{r['before']:,.0f} | " if before else "")
                         + (f"{r['numpy']:,.0f} | " if ref else "")
                         + f"{r['cnnc']:,.0f} | {r['torch']:,.0f} | {r['torch_cl']:,.0f} | "
                         f"**{r['ratio']:.2f}** ({r['ratio_spread'][0]:.2f}-{r['ratio_spread'][1]:.2f}) | "
                         f"{100 * r['cnnc'] / limit:.0f}% | {100 * best / limit:.0f}% |")
    if any(all("numpy" in r for r in t["results"]) for t in tables.values()):
        lines += ["", "`cnnc samples/s` runs the compiled kernels (the `jit` extra, numba "
                  f"{_numba_version()}: cnnc/backends/numpy/jit); `cnnc, NumPy kernels` is the same "
                  "step on the NumPy reference (CNNC_KERNELS=numpy), in the same rounds."]
    if args.before:
        lines += ["", f"`cnnc {args.before}`: the same step with cnnc as of git revision `{args.before}`, "
                  f"run by that revision's one-thread Network with as many BLAS threads as the "
                  f"table's, timed in its own interpreter in the same rounds."]
    lines += ["", "The arithmetic limit: NumPy's float32 2048x2048 matrix product on the table's threads "
              "(one measurement per round, the median), divided by a sample's training FLOPs (forward "
              "multiply-adds x 2, as many again for the weight gradients and for the input gradients, "
              "less those of the layers reading the model's input): the samples/s a step made only of "
              "such products would reach.", ""]
    first = next(iter(tables.values()))["results"]
    for r in first:
        lines.append(f"- `{r['file']}`: {NETS[r['name']][1]}; {r['params']:,} parameters, "
                     f"{r['macs'] / 1e6:.2f} M MACs per sample; the PyTorch twin's output differs from "
                     f"cnnc's by at most {r['twin_max_diff']:.1e}.")
    lines += ["", "Rerun: `python benchmarks/bench_train_speed.py` (torch installed in the same "
              "interpreter; about 15 minutes; `--before REV` adds an earlier cnnc)."]
    return "\n".join(lines)


def _numba_version() -> str:
    import numba
    return numba.__version__


def main() -> int:
    import torch
    from _report import machine, write_section
    args = ARGS
    names = [n.strip() for n in args.nets.split(",") if n.strip()]
    unknown = [n for n in names if n not in NETS]
    if unknown:
        print(f"unknown network(s): {', '.join(unknown)}; choose from {', '.join(NETS)}", file=sys.stderr)
        return 2
    counts = [int(t) for t in str(args.threads).split(",") if t.strip()]
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    import tempfile
    tmp = Path(tempfile.mkdtemp(prefix="cnnc-bench-"))
    tables: dict[int, dict] = {}
    for threads in counts:
        torch.set_num_threads(threads)
        table = tables[threads] = {"results": [], "matmul": [],
                                   "load": " ".join(f"{v:.1f}" for v in os.getloadavg())}
        for name in names:
            r = measure(name, args, threads, table["matmul"], tmp)
            table["results"].append(r)
            print(f"{threads} threads, {name}: cnnc {r['cnnc']:,.0f}, torch {r['torch']:,.0f}, "
                  f"torch_cl {r['torch_cl']:,.0f} samples/s, ratio {r['ratio']:.2f}", flush=True)
    load_after = " ".join(f"{v:.1f}" for v in os.getloadavg())
    if args.save:
        Path(args.save).write_text(json.dumps({"tables": {str(k): v for k, v in tables.items()},
                                               "load": load, "load_after": load_after}, indent=1))
    text = render(args, tables, machine(), load, load_after, torch.__version__)
    print(text)
    if not args.no_write:
        write_section("train_speed", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
