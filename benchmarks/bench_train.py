"""Training benchmark: examples/mnist.cnn on Fashion-MNIST with the file's recipe
(RMSprop 1e-3, batch 64, 5 epochs, validation_split 0.1).

Measures, in one run:
1. the full training run through the Python API (`Model.fit`, as `cnnc train` runs it,
   checkpoints included): seconds per epoch, final test accuracy on the 10,000 test
   images, peak RSS of the process (taken before torch is imported);
2. training throughput at batch 64 (forward + loss + backward + RMSprop step), samples/s,
   and the same for PyTorch CPU (eager, the twin of the same model and optimizer, NCHW
   and channels_last) when torch is importable, with the same thread count (--threads,
   default 2: cnnc splits each batch across them), in interleaved rounds so that all
   see the same machine load.

    python benchmarks/bench_train.py                   # the full benchmark (several minutes)
    python benchmarks/bench_train.py --epochs 1 --limit 6000 --no-write   # a quick look
    python benchmarks/bench_train.py --keras-python /tmp/kvenv/bin/python # and Keras's numbers

Prints the result and writes it to docs/BENCHMARKS.md (section "train"). Rerun on a
quiet machine for numbers worth quoting: other processes on the same cores slow every
timing, spinning OpenMP threads (PyTorch's) most of all. torch is never a dependency
of cnnc. benchmarks/bench_train_speed.py compares more networks.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
if __name__ == "__main__":
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"      # before NumPy loads: one BLAS thread per training thread

import numpy as np  # noqa: E402

import cnnc  # noqa: E402
from cnnc.support import data as D  # noqa: E402


def _parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "examples" / "mnist.cnn"))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="threads for cnnc and for PyTorch alike")
    p.add_argument("--rounds", type=int, default=7, help="interleaved throughput rounds")
    p.add_argument("--seconds", type=float, default=2.0, help="per implementation and round")
    p.add_argument("--no-full", action="store_true", help="skip the full training run")
    p.add_argument("--seeds", default="", metavar="S1,S2",
                   help="more full runs with these seeds, for the spread of the test accuracy "
                        "(with Keras too when --keras-python is given)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    p.add_argument("--save", metavar="JSON", help="also write the measurements to this file")
    p.add_argument("--runs-from", metavar="JSON",
                   help="take the training runs (accuracy, Keras, seeds) from a file written by "
                        "--save: refresh the throughput only")
    p.add_argument("--keras-python", metavar="PYTHON",
                   help="also run the recipe in Keras with this interpreter (one that has keras and "
                        "tensorflow; e.g. /tmp/kvenv/bin/python), for accuracy, time and memory")
    return p.parse_args(argv)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# --- 1. the full run -------------------------------------------------------------------------

def full_run(args, ds) -> dict:
    model = cnnc.load(args.model)
    x, y = ds.x_train[:args.limit], ds.y_train[:args.limit]
    ends: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        history = model.fit(x, y, epochs=args.epochs, batch_size=args.batch, seed=args.seed,
                            verbose="auto", checkpoint=Path(tmp) / "bench.ckpt", threads=args.threads,
                            on_epoch_end=lambda h: ends.append(time.perf_counter()))
    epoch_s = np.diff([start, *ends])
    loss, acc = model.evaluate(ds.x_test, ds.y_test, batch_size=256, verbose=0)
    return {"epochs": args.epochs, "train_samples": history.params["samples"],
            "epoch_s": [float(s) for s in epoch_s], "test_loss": loss, "test_accuracy": acc,
            "val_accuracy": history.history.get("val_accuracy", [None])[-1],
            "peak_rss_mb": peak_rss_mb()}


# --- the same recipe in Keras (optional, another interpreter) --------------------------------

KERAS_SCRIPT = r"""
import gzip, json, os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras
from keras import layers
folder, epochs, batch, limit, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
limit = None if limit == "None" else int(limit)
def idx(name):
    raw = gzip.open(os.path.join(folder, name)).read()
    nd = raw[3]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(np.frombuffer(raw[4:4 + 4 * nd], ">u4"))
x = idx("train-images-idx3-ubyte.gz")[:limit].astype("float32")[..., None] / 255
y = keras.utils.to_categorical(idx("train-labels-idx1-ubyte.gz")[:limit], 10)
xt = idx("t10k-images-idx3-ubyte.gz").astype("float32")[..., None] / 255
yt = keras.utils.to_categorical(idx("t10k-labels-idx1-ubyte.gz"), 10)
keras.utils.set_random_seed(seed)
m = keras.Sequential([keras.Input((28, 28, 1)),
    layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation="relu"), layers.Flatten(),
    layers.Dense(64, activation="relu"), layers.Dropout(0.25), layers.Dense(10, activation="softmax")])
m.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
t = time.perf_counter()
m.fit(x, y, epochs=epochs, batch_size=batch, validation_split=0.1, verbose=0)
epoch_s = (time.perf_counter() - t) / epochs
loss, acc = m.evaluate(xt, yt, verbose=0)
print(json.dumps({"keras": keras.__version__, "backend": keras.backend.backend(), "epoch_s": epoch_s,
                  "test_accuracy": acc, "test_loss": loss,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def keras_run(args) -> dict | None:
    import json
    import subprocess
    if not args.keras_python:
        return None
    folder = os.environ.get("CNNC_FASHION_MNIST_DIR", D.FASHION_MNIST_DIR)
    done = subprocess.run([args.keras_python, "-c", KERAS_SCRIPT, folder, str(args.epochs), str(args.batch),
                           str(args.limit), str(args.seed)], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"the Keras run failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- 2. throughput -----------------------------------------------------------------------------

def throughput(args, ds) -> dict:
    from _train_steps import cnnc_step, rounds, torch_step, twin_max_diff
    x, y = ds.x_train[:10000], ds.y_train[:10000]
    steps = {"cnnc": cnnc_step(args.model, x, y, args.threads, args.batch)}
    out: dict = {}
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("torch is not importable here: no PyTorch comparison", file=sys.stderr)
        else:
            torch.set_num_threads(args.threads)
            steps["torch"] = torch_step(args.model, x, y, False, args.batch)
            steps["torch_cl"] = torch_step(args.model, x, y, True, args.batch)
            out.update(torch_version=torch.__version__, torch_threads=torch.get_num_threads(),
                       twin_max_diff=twin_max_diff(args.model, x))
    try:
        rates = rounds(steps, args.batch, args.rounds, args.seconds)
    finally:
        for s in steps.values():
            s.close()
    out.update({name: float(np.median(r)) for name, r in rates.items()})
    out["spread"] = {name: [float(min(r)), float(max(r))] for name, r in rates.items()}
    if "torch" in rates:
        per_round = [c / max(t, tl) for c, t, tl in zip(rates["cnnc"], rates["torch"], rates["torch_cl"])]
        out["ratio"] = float(np.median(per_round))
        out["ratio_spread"] = [float(min(per_round)), float(max(per_round))]
    return out


# --- report ------------------------------------------------------------------------------------

def seed_runs(args, ds) -> list[tuple[int, float, float | None]]:
    """(seed, cnnc test accuracy, Keras test accuracy) for each extra seed."""
    out = []
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        other = argparse.Namespace(**{**vars(args), "seed": seed})
        acc = full_run(other, ds)["test_accuracy"]
        kr = keras_run(other)
        out.append((seed, acc, kr["test_accuracy"] if kr else None))
        print(f"seed {seed}: cnnc {acc:.4f}" + (f", Keras {kr['test_accuracy']:.4f}" if kr else ""),
              flush=True)
    return out


def render_seeds(full: dict | None, kr: dict | None, seed: int,
                 extra: list[tuple[int, float, float | None]]) -> list[str]:
    if not extra or not full:
        return []
    rows = [(seed, full["test_accuracy"], kr["test_accuracy"] if kr else None), *extra]
    lines = ["Test accuracy of the same recipe over seeds (each seed: initial weights, shuffling, "
             "dropout; Keras's seed through `keras.utils.set_random_seed`):", "",
             "| seed | cnnc | Keras |", "|---:|---:|---:|"]
    lines += [f"| {s} | {a:.4f} | {'-' if k is None else f'{k:.4f}'} |" for s, a, k in rows]
    cn = [a for _, a, _ in rows]
    ks = [k for _, _, k in rows if k is not None]
    lines.append(f"| mean | {np.mean(cn):.4f} | {np.mean(ks):.4f} |" if ks else
                 f"| mean | {np.mean(cn):.4f} | - |")
    return lines + [""]


def render(args, full: dict | None, tp: dict, machine: str, load: str, kr: dict | None = None,
           extra: list | None = None) -> str:
    lines = [f"Machine: {machine}; load average at the start: {load}.", ""]
    if full:
        per = full["epoch_s"]
        lines += [
            f"`{Path(args.model).name}` on Fashion-MNIST, the file's recipe (RMSprop 1e-3, batch "
            f"{args.batch}, validation_split 0.1), {full['epochs']} epochs on {full['train_samples']:,} "
            f"training images, seed {args.seed}, `Model.fit` with checkpoints:",
            "",
            "| measure | value |", "|---|---|",
            f"| test accuracy (10,000 images) | {full['test_accuracy']:.4f} (goal >= 0.90) |",
            f"| test loss | {full['test_loss']:.4f} |",
            f"| seconds per epoch (incl. validation) | {np.mean(per):.1f} "
            f"(min {min(per):.1f}, max {max(per):.1f}) |",
            f"| training samples/s over the run | {full['train_samples'] / np.mean(per):,.0f} |",
            f"| peak RSS of the process | {full['peak_rss_mb']:.0f} MB (goal <= 500 MB) |",
            f"| threads (`threads=`, as `cnnc train --threads`) | {args.threads} |",
            ""]
    if kr:
        lines += [f"The same recipe in Keras {kr['keras']} ({kr['backend']} backend), same machine, "
                  f"right after: test accuracy {kr['test_accuracy']:.4f}, test loss "
                  f"{kr['test_loss']:.4f}, {kr['epoch_s']:.1f} s per epoch, peak RSS "
                  f"{kr['peak_rss_mb']:.0f} MB.", ""]
    lines += render_seeds(full, kr, args.seed, extra or [])
    from _train_steps import cnnc_label
    lines += [f"Training throughput at batch {args.batch} (forward + loss + backward + RMSprop step), "
              f"median of {args.rounds} interleaved rounds of about {args.seconds:.0f} s each, "
              f"{args.threads} threads for both (cnnc splits each batch across them, one BLAS thread "
              f"each):", "",
              "| implementation | samples/s | min-max |", "|---|---|---|",
              f"| {cnnc_label()} ({args.threads} threads) | {tp['cnnc']:,.0f} | "
              f"{tp['spread']['cnnc'][0]:,.0f}-{tp['spread']['cnnc'][1]:,.0f} |"]
    if "torch" in tp:
        lines += [f"| PyTorch {tp['torch_version']} eager ({tp['torch_threads']} threads), NCHW | "
                  f"{tp['torch']:,.0f} | {tp['spread']['torch'][0]:,.0f}-{tp['spread']['torch'][1]:,.0f} |",
                  f"| PyTorch {tp['torch_version']} eager ({tp['torch_threads']} threads), channels_last | "
                  f"{tp['torch_cl']:,.0f} | {tp['spread']['torch_cl'][0]:,.0f}-"
                  f"{tp['spread']['torch_cl'][1]:,.0f} |",
                  "", f"Ratio cnnc / the faster PyTorch layout, round by round, median: "
                  f"**{tp['ratio']:.2f}** (range {tp['ratio_spread'][0]:.2f}-{tp['ratio_spread'][1]:.2f}; "
                  f"goal >= 1.2). PyTorch runs the twin of the same model (`cnnc/runtime/torch_twin.py`, "
                  f"same initial weights, RMSprop with Keras's defaults; output within "
                  f"{tp['twin_max_diff']:.1e} of cnnc's)."]
    else:
        lines += ["", "PyTorch is not installed here: no comparison."]
    lines += ["", "Rerun: `python benchmarks/bench_train.py [--seeds 1,2 --keras-python PYTHON]` "
              "(several minutes per seed)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    from _report import machine, write_section
    args = _parse(argv)
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    ds = D.load("fashion-mnist")
    if args.runs_from:
        import json
        saved = json.loads(Path(args.runs_from).read_text())
        full, kr, extra = saved["full"], saved["keras"], [tuple(e) for e in saved["seeds"]]
        load_runs = saved["load"]
    else:
        full = None if args.no_full else full_run(args, ds)
        if full:
            print(f"full run: {full}", flush=True)
        kr = keras_run(args)
        extra = seed_runs(args, ds)
        load_runs = load
    tp = throughput(args, ds)
    if args.save:
        import json
        Path(args.save).write_text(json.dumps({"full": full, "keras": kr, "seeds": extra, "load": load_runs,
                                               "throughput": tp}, indent=1))
    if load_runs != load:
        load = f"{load} (the training runs: {load_runs})"
    text = render(args, full, tp, machine(), load, kr, extra)
    print(text)
    if not args.no_write:
        write_section("train", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
