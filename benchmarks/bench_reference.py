"""Throughput of the NumPy reference: training step (forward + backward, no optimizer)
and inference forward, on a .cnn model (default examples/mnist.cnn, batch 64, float32).

When torch is importable, the same network in PyTorch (eager, CPU, the same weights;
its output is checked against ours first) is timed in the same run, with rounds
interleaved so that both see the same machine load. Each thread count runs in its
own subprocess with OPENBLAS/OMP/MKL_NUM_THREADS set before numpy is imported, and
torch.set_num_threads to match.

    python benchmarks/bench_reference.py                  # threads 1 and all cores
    python benchmarks/bench_reference.py --threads 2 --no-write

The result is printed and written to docs/BENCHMARKS.md (section "reference").
Rerun on a quiet machine for numbers worth quoting: other processes on the same
cores make every timing worse, multi-threaded BLAS most of all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "examples" / "mnist.cnn"))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", default=None,
                   help="comma-separated thread counts (default: 1 and the number of cores)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds per measurement")
    p.add_argument("--round-seconds", type=float, default=1.0)
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- worker: runs in a subprocess with the thread environment already set ------------------

def _round(step, batch: int, seconds: float) -> float:
    """Samples per second over one round of at least `seconds` (whole steps)."""
    n, start = 0, time.perf_counter()
    while True:
        step()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n * batch / elapsed


def _torch_net(analysis, weights):
    """The same network in PyTorch (NCHW inside; NHWC order kept at Flatten so that
    Keras-layout Dense weights fit), or None if it uses a layer this builder lacks."""
    import numpy as np
    import torch
    from torch import nn

    class ToNHWC(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1)

    acts = {"relu": nn.ReLU, "linear": None, "softmax": lambda: nn.Softmax(dim=-1)}
    mods: list = []
    for info in analysis.infos:
        L, fam = info.layer, info.layer.family
        act = L.args.get("activation", "linear")
        if act not in acts:
            return None
        if fam == "conv" and L.rank == 2 and L["padding"] == "valid":
            k = weights[f"{L.name}/kernel"]
            m = nn.Conv2d(k.shape[2], k.shape[3], k.shape[:2], stride=L["strides"],
                          dilation=L["dilation_rate"], bias=L["use_bias"])
            m.weight.data = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
            if L["use_bias"]:
                m.bias.data = torch.from_numpy(weights[f"{L.name}/bias"].copy())
            mods.append(m)
        elif fam == "max_pool" and L.rank == 2 and L["padding"] == "valid":
            mods.append(nn.MaxPool2d(L["pool_size"], L["strides"] or L["pool_size"]))
        elif fam == "flatten":
            mods += [ToNHWC(), nn.Flatten()]
        elif fam == "dense" and len(info.input_shape) == 1:
            k = weights[f"{L.name}/kernel"]
            m = nn.Linear(k.shape[0], k.shape[1], bias=L["use_bias"])
            m.weight.data = torch.from_numpy(np.ascontiguousarray(k.T))
            if L["use_bias"]:
                m.bias.data = torch.from_numpy(weights[f"{L.name}/bias"].copy())
            mods.append(m)
        elif fam == "dropout":
            mods.append(nn.Dropout(L["rate"]))
        else:
            return None
        if acts[act] is not None:
            mods.append(acts[act]())
    return nn.Sequential(*mods)


def worker(args: argparse.Namespace) -> dict:
    import numpy as np

    import cnnc
    from cnnc.backends.numpy.network import Network

    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "0"))
    model = cnnc.load(args.model)
    model.init_weights(seed=0)
    weights = model.weights
    net = Network(model.analysis, weights)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, *model.ir.input_shape), dtype=np.float32)
    dy = (rng.random((args.batch, *model.analysis.output_shape), dtype=np.float32) - 0.5) / args.batch
    fused = net.output_activation in ("softmax", "sigmoid")

    def np_train():
        net.forward(x, training=True, rng=rng)
        net.backward(dy, skip_output_activation=fused)

    def np_infer():
        net.forward(x)

    steps = {"numpy train": np_train, "numpy inference": np_infer}
    note = ""
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            note = "torch is not installed: no PyTorch comparison"
        else:
            torch.set_num_threads(threads or os.cpu_count())
            tnet = _torch_net(model.analysis, weights)
            if tnet is None:
                note = "the PyTorch builder does not cover this model's layers"
            else:
                # torch ends in logits when our output activation is fused into the loss
                if fused:
                    tnet = tnet[:-1]
                xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
                dyt = torch.from_numpy(dy)
                tnet.eval()
                with torch.no_grad():
                    ours = net.forward(x)
                    theirs = tnet(xt)
                    if fused:
                        theirs = torch.softmax(theirs, -1) if net.output_activation == "softmax" \
                            else torch.sigmoid(theirs)
                    diff = float(np.abs(ours - theirs.numpy()).max())
                note = f"PyTorch {torch.__version__}: same weights, inference output max |diff| vs NumPy"

                def t_train():
                    tnet.train()
                    for p in tnet.parameters():
                        p.grad = None
                    tnet(xt).backward(dyt)

                def t_infer():
                    tnet.eval()
                    with torch.no_grad():
                        tnet(xt)

                steps.update({"torch train": t_train, "torch inference": t_infer})
    for step in steps.values():      # warm up caches, allocators, thread pools
        for _ in range(3):
            step()
    rates: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            rates[name].append(_round(step, args.batch, args.round_seconds))
    return {"threads": threads, "rates": rates, "note": note,
            "diff": diff if "torch train" in steps else None}


# --- driver ------------------------------------------------------------------------

def run_threads(args: argparse.Namespace, threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, __file__, "--worker", "--model", args.model, "--batch", str(args.batch),
           "--rounds", str(args.rounds), "--round-seconds", str(args.round_seconds)]
    if args.no_torch:
        cmd.append("--no-torch")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(v: list[float]) -> float:
    s = sorted(v)
    return s[len(s) // 2]


def report(args: argparse.Namespace, results: list[dict], load: tuple[float, float]) -> str:
    from _report import machine
    model = Path(args.model).name
    lines = [f"NumPy reference on `{model}`, batch {args.batch}, float32: samples/s, median "
             f"(best) of {args.rounds} interleaved rounds of {args.round_seconds:g} s.",
             f"Machine: {machine()}.", "",
             "| threads | NumPy train (fwd+bwd) | PyTorch train | ratio | NumPy inference "
             "| PyTorch inference | ratio |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for r in results:
        rt = r["rates"]

        def cell(name):
            return f"{_median(rt[name]):,.0f} ({max(rt[name]):,.0f})" if name in rt else "—"

        def ratio(a, b):
            return f"{_median(rt[a]) / _median(rt[b]):.2f}x" if a in rt and b in rt else "—"

        lines.append(f"| {r['threads']} | {cell('numpy train')} | {cell('torch train')} | "
                     f"{ratio('numpy train', 'torch train')} | {cell('numpy inference')} | "
                     f"{cell('torch inference')} | {ratio('numpy inference', 'torch inference')} |")
        if r["note"] and r["note"] not in notes:
            notes.append(r["note"])
    lines.append("")
    diffs = [r["diff"] for r in results if r.get("diff") is not None]
    lines += [f"- {n}" + (f" {max(diffs):.1e}" if diffs and n.startswith("PyTorch") else "")
              for n in notes]
    lines.append("- Training step: `Network.forward(x, training=True)` + `Network.backward(dy, "
                 "skip_output_activation=True)` (no optimizer); PyTorch: forward to logits + "
                 "`backward(dy)`, grads reset with `grad = None`. Ratio = NumPy / PyTorch.")
    lines.append("- Threads: OPENBLAS/OMP/MKL_NUM_THREADS and torch.set_num_threads. Rerun: "
                 "`python benchmarks/bench_reference.py`.")
    cores = os.cpu_count() or 1
    lines.append(f"- 1-minute load average {load[0]:.1f} before, {load[1]:.1f} after, on {cores} cores"
                 + (": other processes were running, so the multi-threaded rows (spin-waiting BLAS "
                    "and torch threads) say little; rerun on a quiet machine" if max(load) > 0.5 * cores
                    else "."))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _parse(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    counts = ([int(t) for t in args.threads.split(",")] if args.threads
              else sorted({1, os.cpu_count() or 1}))
    load_before = os.getloadavg()[0]
    results = [run_threads(args, t) for t in counts]
    text = report(args, results, (load_before, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        from _report import write_section
        write_section("reference", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
