"""Training benchmark for a graph model: examples/resnet_fmnist.cnn (a small ResNet:
BatchNormalization, residual Adds, a 1x1 projection shortcut) on Fashion-MNIST with
the file's recipe (Adam 1e-3, batch 64, 3 epochs, validation_split 0.1).

Measures, in one run:
1. test accuracy over several seeds (default 0, 1, 2), cnnc (`Model.fit`, as `cnnc
   train` runs it, checkpoints included) against the same model and recipe in Keras
   (another interpreter: --keras-python), one after the other on the same machine;
2. training throughput at batch 64 (forward + loss + backward + Adam step), samples/s,
   cnnc against PyTorch eager on the same network (cnnc/torch_twin.py: same weights,
   same optimizer) in NCHW and in channels_last, the same thread count for all, in
   interleaved rounds so that all three see the same machine load. Needs torch in the
   interpreter that runs this;
3. a cProfile of cnnc's training step on one thread, grouped by part (convolutions,
   BatchNormalization, ...).

    python benchmarks/bench_train_graph.py --keras-python /tmp/kvenv/bin/python
    python benchmarks/bench_train_graph.py --seeds 0 --epochs 1 --limit 6000 --no-write   # a quick look
    python benchmarks/bench_train_graph.py --no-full        # throughput only (a minute)
    python benchmarks/bench_train_graph.py --runs-from r.json   # accuracy from an earlier --save r.json

--threads (default 2) is the thread count of all three: cnnc splits each batch across
that many threads (each with one BLAS thread, as `cnnc train --threads N` does), torch's
intra-op threads and TensorFlow's. On cores shared with other work, spinning OpenMP
threads (PyTorch's, TensorFlow's) slow down many times: state the load. Writes
docs/BENCHMARKS.md, section "train_graph".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "resnet_fmnist.cnn"


def _parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(MODEL))
    p.add_argument("--epochs", type=int, default=None, help="default: the file's fit(epochs=...)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--seeds", default="0,1,2", metavar="S1,S2,...")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7, help="interleaved throughput rounds")
    p.add_argument("--seconds", type=float, default=2.0, help="per implementation and round")
    p.add_argument("--no-full", action="store_true", help="skip the training runs (throughput only)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    p.add_argument("--save", metavar="JSON", help="also write the measurements to this file")
    p.add_argument("--runs-from", metavar="JSON",
                   help="take the accuracy runs from a file written by --save (no training): "
                        "refresh throughput and profile only")
    p.add_argument("--profile-steps", type=int, default=30, help="steps of cnnc under cProfile")
    p.add_argument("--keras-python", metavar="PYTHON",
                   help="also train the model in Keras with this interpreter (keras + tensorflow)")
    return p.parse_args(argv)


ARGS = _parse()
for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"       # before NumPy loads: one BLAS thread per cnnc training thread

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _train_steps import cnnc_label, cnnc_step, rounds, torch_step, twin_max_diff  # noqa: E402

import cnnc  # noqa: E402
from cnnc.support import data as D  # noqa: E402

# --- 1. accuracy: cnnc and Keras, seed by seed ---------------------------------------------------

def cnnc_run(args, ds, seed: int) -> dict:
    model = cnnc.load(args.model)
    x, y = ds.x_train[:args.limit], ds.y_train[:args.limit]
    ends: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        history = model.fit(x, y, epochs=args.epochs, batch_size=args.batch, seed=seed, verbose=0,
                            checkpoint=Path(tmp) / "bench.ckpt", threads=args.threads,
                            on_epoch_end=lambda h: ends.append(time.perf_counter()))
    epoch_s = np.diff([start, *ends])
    loss, acc = model.evaluate(ds.x_test, ds.y_test, batch_size=256, verbose=0)
    return {"seed": seed, "epochs": len(epoch_s), "train_samples": history.params["samples"],
            "epoch_s": [float(s) for s in epoch_s], "test_loss": float(loss), "test_accuracy": float(acc),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# The same network, layer for layer (and in the same creation order, so the layer names
# match cnnc's), the same data preparation and recipe.
KERAS_SCRIPT = r"""
import gzip, json, os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
folder, epochs, batch, limit, seed, threads = sys.argv[1:7]
epochs, batch, seed, threads = int(epochs), int(batch), int(seed), int(threads)
limit = None if limit == "None" else int(limit)
import numpy as np, tensorflow as tf, keras
from keras import layers
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
def idx(name):
    raw = gzip.open(os.path.join(folder, name)).read()
    nd = raw[3]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(np.frombuffer(raw[4:4 + 4 * nd], ">u4"))
x = idx("train-images-idx3-ubyte.gz")[:limit].astype("float32")[..., None] / 255
y = keras.utils.to_categorical(idx("train-labels-idx1-ubyte.gz")[:limit], 10)
xt = idx("t10k-images-idx3-ubyte.gz").astype("float32")[..., None] / 255
yt = keras.utils.to_categorical(idx("t10k-labels-idx1-ubyte.gz"), 10)
keras.utils.set_random_seed(seed)
def conv(f, k=3, s=1):
    return layers.Conv2D(f, k, strides=s, padding="same" if k > 1 else "valid", use_bias=False)
inputs = keras.Input((28, 28, 1))
x0 = conv(16)(inputs); x0 = layers.BatchNormalization()(x0); x0 = layers.Activation("relu")(x0)
stem = layers.MaxPooling2D(2)(x0)
r = conv(16)(stem); r = layers.BatchNormalization()(r); r = layers.Activation("relu")(r)
r = conv(16)(r); r = layers.BatchNormalization()(r)
b1 = layers.Activation("relu")(layers.Add()([stem, r]))
sc = conv(32, 1, 2)(b1); sc = layers.BatchNormalization()(sc)
r = conv(32, 3, 2)(b1); r = layers.BatchNormalization()(r); r = layers.Activation("relu")(r)
r = conv(32)(r); r = layers.BatchNormalization()(r)
b2 = layers.Activation("relu")(layers.Add()([sc, r]))
r = conv(32)(b2); r = layers.BatchNormalization()(r); r = layers.Activation("relu")(r)
r = conv(32)(r); r = layers.BatchNormalization()(r)
b3 = layers.Activation("relu")(layers.Add()([b2, r]))
outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(b3))
m = keras.Model(inputs, outputs)
m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
t = time.perf_counter()
h = m.fit(x, y, epochs=epochs, batch_size=batch, validation_split=0.1, verbose=0)
epoch_s = (time.perf_counter() - t) / epochs
loss, acc = m.evaluate(xt, yt, verbose=0)
print(json.dumps({"keras": keras.__version__, "backend": keras.backend.backend(), "tf": tf.__version__,
                  "params": m.count_params(), "epoch_s": epoch_s, "test_accuracy": acc, "test_loss": loss,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def keras_run(args, seed: int, epochs: int) -> dict | None:
    if not args.keras_python:
        return None
    folder = os.environ.get("CNNC_FASHION_MNIST_DIR", D.FASHION_MNIST_DIR)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([args.keras_python, "-c", KERAS_SCRIPT, folder, str(epochs), str(args.batch),
                           str(args.limit), str(seed), str(args.threads)],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print(f"the Keras run failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- 2. throughput -------------------------------------------------------------------------------

def throughput(args, ds) -> dict:
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


# --- 3. where cnnc's step spends its time ---------------------------------------------------------

PROFILE_PARTS = (   # (file or folder/file, function or "*", what): the first match wins
    ("jit/norm.py", "*", "BatchNormalization (+ relu), compiled kernels"),
    ("jit/pool.py", "*", "max pooling, forward and backward"),
    ("jit/conv.py", "*", "convolutions: input gradient, product + compiled scatter (col2im)"),
    ("jit/elementwise.py", "*", "activations (relu), forward and backward"),
    ("convplan.py", "_correlate", "convolutions: input gradient, as a convolution (im2col + product)"),
    ("convplan.py", "_per_tap", "convolutions: input gradient, a product and a scatter-add per tap"),
    ("convplan.py", "_col2im", "convolutions: input gradient, product + compiled scatter (col2im)"),
    ("convplan.py", "weight_grad", "convolutions: weight gradient (patches.T @ dz)"),
    ("convplan.py", "forward", "convolutions: forward product (patches @ kernel)"),
    ("convplan.py", "*", "convolutions: im2col patch copies, padding"),
    ("conv.py", "*", "convolutions: other kernels"),
    ("layers.py", "_compute_jit", "BatchNormalization (+ relu), compiled kernels"),
    ("layers.py", "_adjoint_jit", "BatchNormalization (+ relu), compiled kernels"),
    ("layers.py", "_compute_last", "BatchNormalization forward"),
    ("layers.py", "_adjoint_last", "BatchNormalization backward"),
    ("layers.py", "_channel_dot", "BatchNormalization: per-channel sums (einsum)"),
    ("pooling.py", "*", "max pooling, forward and backward"),
    ("activations.py", "*", "activations (relu), forward and backward"),
    ("optimizers.py", "*", "Adam step"),
    ("merge.py", "*", "Add (merges)"),
    ("losses.py", "*", "loss and its gradient"),
    ("network.py", "*", "Network: the walk, fan-out gradient sums"),
)


def profile(args, ds) -> list[tuple[str, float]]:
    """cProfile of cnnc's training step: own time per part, in ms per step."""
    import cProfile
    import pstats
    step = cnnc_step(args.model, ds.x_train[:4000], ds.y_train[:4000], 1, args.batch)
    for _ in range(3):
        step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.profile_steps):
        step()
    prof.disable()
    parts: dict[str, float] = {}
    for (file, _, func), (_, _, tottime, _, _) in pstats.Stats(prof).stats.items():
        name, rel = Path(file).name, "/".join(Path(file).parts[-2:])
        what = next((w for f, fn, w in PROFILE_PARTS if f in (name, rel) and fn in ("*", func)
                     and "cnnc" in file), "other (NumPy's padding/reshaping, Python)")
        parts[what] = parts.get(what, 0.0) + tottime
    ms = {k: 1000 * v / args.profile_steps for k, v in parts.items()}
    return sorted(ms.items(), key=lambda kv: -kv[1])


# --- report --------------------------------------------------------------------------------------

def render(args, runs: list[dict], kruns: list[dict | None], tp: dict, machine: str, load: str,
           load_after: str, prof: list[tuple[str, float]] | None = None) -> str:
    name = Path(args.model).name
    model = cnnc.load(args.model)
    lines = [f"## Training a graph model: `{name}`", "",
             f"Machine: {machine}; load average {load} at the start, {load_after} at the end "
             f"(other work shares the 2 cores). {args.threads} thread(s) for cnnc (each batch split "
             f"across them, one BLAS thread each), PyTorch and TensorFlow alike.", "",
             f"`{name}`: a small ResNet (stem conv + BN + max pooling, three residual blocks with "
             f"BatchNormalization, one downsampling with a 1x1 projection shortcut, global average "
             f"pooling, Dense softmax), {model.total_params:,} parameters, "
             f"{model.total_macs / 1e6:.2f} M MACs per image.", ""]
    if runs:
        r0 = runs[0]
        lines += [f"Fashion-MNIST, the file's recipe (Adam 1e-3, batch {args.batch}, validation_split "
                  f"0.1), {r0['epochs']} epochs on {r0['train_samples']:,} training images; test "
                  f"accuracy on the 10,000 test images. cnnc: `Model.fit` with checkpoints, as `cnnc "
                  f"train` runs it; Keras: the same layers and recipe, seeded with "
                  f"`keras.utils.set_random_seed`.", "",
                  "| seed | cnnc | Keras | cnnc s/epoch | Keras s/epoch |", "|---:|---:|---:|---:|---:|"]
        for r, k in zip(runs, kruns):
            lines.append(f"| {r['seed']} | {r['test_accuracy']:.4f} | "
                         f"{'-' if not k else format(k['test_accuracy'], '.4f')} | "
                         f"{np.mean(r['epoch_s']):.1f} | {'-' if not k else format(k['epoch_s'], '.1f')} |")
        cn = np.mean([r["test_accuracy"] for r in runs])
        ks = [k["test_accuracy"] for k in kruns if k]
        lines.append(f"| mean | **{cn:.4f}** | {'-' if not ks else f'**{np.mean(ks):.4f}**'} | "
                     f"{np.mean([np.mean(r['epoch_s']) for r in runs]):.1f} | "
                     f"{'-' if not ks else format(np.mean([k['epoch_s'] for k in kruns if k]), '.1f')} |")
        lines.append("")
        if ks:
            gap = 100 * (cn - np.mean(ks))
            k0 = next(k for k in kruns if k)
            lines += [f"cnnc - Keras: **{gap:+.2f} points** (goal: within 0.5). Keras {k0['keras']} "
                      f"({k0['backend']} {k0['tf']}), {k0['params']:,} parameters; peak RSS cnnc "
                      f"{max(r['peak_rss_mb'] for r in runs):.0f} MB, Keras {k0['peak_rss_mb']:.0f} MB. "
                      f"s/epoch includes validation.", ""]
    lines += [f"Training throughput at batch {args.batch} (forward + loss + backward + Adam step), "
              f"median of {args.rounds} interleaved rounds of about {args.seconds:.0f} s each:", "",
              "| implementation | samples/s | min-max |", "|---|---:|---:|",
              f"| {cnnc_label()} ({args.threads} thread(s)) | {tp['cnnc']:,.0f} | {tp['spread']['cnnc'][0]:,.0f}-"
              f"{tp['spread']['cnnc'][1]:,.0f} |"]
    if "torch" in tp:
        for key, fmt in (("torch", "NCHW"), ("torch_cl", "channels_last")):
            lines.append(f"| PyTorch {tp['torch_version']} eager ({tp['torch_threads']} thread(s)), {fmt} | "
                         f"{tp[key]:,.0f} | {tp['spread'][key][0]:,.0f}-{tp['spread'][key][1]:,.0f} |")
        lines += ["", f"Ratio cnnc / the faster PyTorch layout, round by round, median: **{tp['ratio']:.2f}** "
                  f"(range {tp['ratio_spread'][0]:.2f}-{tp['ratio_spread'][1]:.2f}; goal >= 1.0). "
                  f"PyTorch runs the twin of the same model (`cnnc/torch_twin.py`, same initial "
                  f"weights; its output differs from cnnc's by at most {tp['twin_max_diff']:.1e})."]
    else:
        lines += ["", "PyTorch is not installed here: no comparison."]
    if prof:
        total = sum(v for _, v in prof)
        lines += ["", f"Where cnnc's training step spends its time on one thread (cProfile, own time, "
                  f"{args.profile_steps} steps; the profiler adds some overhead): {total:.1f} ms per step "
                  f"of 64 images.", "",
                  "| part | ms per step | share |", "|---|---:|---:|"]
        lines += [f"| {what} | {v:.1f} | {100 * v / total:.0f}% |" for what, v in prof]
    lines += ["", "Rerun: `python benchmarks/bench_train_graph.py --keras-python PYTHON` (with torch "
              "installed; about 15 minutes on 2 cores)."]
    return "\n".join(lines)


def main() -> int:
    from _report import machine, write_section
    args = ARGS
    model = cnnc.load(args.model)
    if args.epochs is None:
        args.epochs = model.ir.fit.epochs if model.ir.fit else 1
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    ds = D.load("fashion-mnist")
    runs, kruns = [], []
    if args.runs_from:
        saved = json.loads(Path(args.runs_from).read_text())
        runs, kruns, load = saved["runs"], saved["keras_runs"], saved["load"]
    elif not args.no_full:
        for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
            r = cnnc_run(args, ds, seed)
            k = keras_run(args, seed, args.epochs)
            runs.append(r)
            kruns.append(k)
            print(f"seed {seed}: cnnc {r['test_accuracy']:.4f} ({np.mean(r['epoch_s']):.1f} s/epoch)"
                  + (f", Keras {k['test_accuracy']:.4f} ({k['epoch_s']:.1f} s/epoch)" if k else ""),
                  flush=True)
    tp = throughput(args, ds)
    print(f"throughput: {tp}", flush=True)
    prof = profile(args, ds)
    load_after = " ".join(f"{v:.1f}" for v in os.getloadavg())
    if args.save:
        Path(args.save).write_text(json.dumps({"runs": runs, "keras_runs": kruns, "load": load,
                                               "throughput": tp, "profile": prof}, indent=1))
    text = render(args, runs, kruns, tp, machine(), load, load_after, prof)
    print(text)
    if not args.no_write:
        write_section("train_graph", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
