"""The Keras Applications (examples/zoo/*.cnn): cnnc against Keras 3's own ONNX export.

For every application:
  (a) whole-process `cnnc check` and `cnnc compile --weights` wall time and peak RSS;
  (b) Keras 3's `model.export(path, format="onnx")` (tf2onnx) wall time: the export call alone
      (TensorFlow imported, model built) and the whole process (import, build, export);
  (c) node and Transpose counts of both ONNX files;
  (d) onnxruntime latency (batch 1) and throughput (batch 16) of both files, same threads and
      session options, runs alternated, medians;
  (e) the largest difference between the two files' outputs (same random weights: drawn in
      Keras as tests/test_zoo_keras.py does, saved as cnnc's .npz).
Writes docs/BENCHMARKS.md section "zoo". Dev only: needs a Python with Keras 3, TensorFlow and
tf2onnx (`--keras-python`, default /tmp/kvenv/bin/python) besides cnnc's own.

    python benchmarks/bench_zoo.py                       # all eleven, ~15 min on 2 cores
    python benchmarks/bench_zoo.py resnet50 mobilenet --no-write

Run it on a quiet machine: other processes make every number slower and noisier.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import ROOT, machine, write_section  # noqa: E402

ZOO = ROOT / "examples" / "zoo"
NAMES = sorted(p.stem for p in ZOO.glob("*.cnn"))
KERAS_PYTHON = "/tmp/kvenv/bin/python"


# ---------------------------------------------------------------- the Keras side (worker)

def keras_worker(name: str, out: Path) -> None:
    """Run under the Keras Python: build, randomize, save the .npz, export; print timings."""
    t0 = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras  # noqa: F401
    import tensorflow  # noqa: F401
    t1 = time.perf_counter()
    import numpy as np

    from tests.test_zoo_keras import images, keras_model, randomize
    model = keras_model(name)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    model(images(name, 1, shape, seed=2), training=False)       # Keras exports only called models
    t2 = time.perf_counter()
    weights = randomize(model, images(name, 4, shape, seed=1))
    np.savez(out / "weights.npz", **weights)
    np.save(out / "x.npy", images(name, 16, shape, seed=0))
    t3 = time.perf_counter()
    model.export(str(out / "keras.onnx"), format="onnx", verbose=False)
    t4 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1, "randomize_s": t3 - t2,
                      "export_s": t4 - t3, "keras": keras.__version__,
                      "tensorflow": tensorflow.__version__}))


# ---------------------------------------------------------------- the parent

def measured(cmd: list[str], runs: int, env=None) -> tuple[float, float, int, str]:
    """Median and best wall time, peak RSS (bytes) and the last stdout of `runs` runs."""
    times, peak, out = [], 0, ""
    # A forked child starts with its parent's peak RSS (this process holds large ORT
    # sessions): let /usr/bin/time, a small process, fork the measured one.
    rss_file = tempfile.NamedTemporaryFile(suffix=".rss", delete=False).name
    timer = ["/usr/bin/time", "-f", "%M", "-o", rss_file] if os.path.exists("/usr/bin/time") else []
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.Popen(timer + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        times.append(time.perf_counter() - t)
        out = p.stdout.read().decode()
        err = p.stderr.read().decode()
        p.stdout.close()
        p.stderr.close()
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{(out + err)[-3000:]}")
        rss_kb = int(Path(rss_file).read_text().split()[-1]) if timer else usage.ru_maxrss
        peak = max(peak, rss_kb * 1024)
    os.unlink(rss_file)
    return statistics.median(times), min(times), peak, out


def counts(path: Path) -> tuple[int, int]:
    import onnx
    m = onnx.load(str(path), load_external_data=False)
    return len(m.graph.node), sum(n.op_type == "Transpose" for n in m.graph.node)


def ort_compare(a: Path, b: Path, x, threads: int, seconds: float) -> dict:
    """Latency (batch 1) and throughput (batch len(x)) of two ONNX files, runs alternated."""
    import numpy as np

    from cnnc.runtime import sessions as runtime
    sess = [runtime.make_session(p.read_bytes(), "cpu", threads) for p in (a, b) if p is not None]
    names = [s.get_inputs()[0].name for s in sess]
    extra = [i.name for i in sess[1].get_inputs()[1:]] if len(sess) == 2 else []
    if extra:   # Keras's export left tensors as graph inputs: it cannot run on images alone
        sess, names = sess[:1], names[:1]

    def call(i, batch):
        t = time.perf_counter()
        y = sess[i].run(None, {names[i]: batch})[0]
        return time.perf_counter() - t, y

    one = x[:1]
    engines = range(len(sess))
    ys = [call(i, x)[1] for i in engines]                      # warm-up, outputs for (e)
    for i in engines:
        call(i, one)
    result = {"max_diff": float(np.max(np.abs(ys[0] - ys[1]))) if len(ys) == 2 else None,
              "max_out": float(np.max(np.abs(ys[-1]))), "keras_extra_inputs": extra}
    for label, batch in (("latency", one), ("batch", x)):
        probe = max(call(i, batch)[0] for i in engines)
        rounds = int(min(max(seconds / probe, 3), 200))
        times = [[] for _ in engines]
        for r in range(rounds):
            order = list(engines) if r % 2 == 0 else list(engines)[::-1]
            for i in order:
                times[i].append(call(i, batch)[0])
        result[label] = [statistics.median(t) for t in times] + [None] * (2 - len(sess))
    result["throughput"] = [len(x) / t if t else None for t in result.pop("batch")]
    return result


def bench_one(name: str, keras_python: str, threads: int, seconds: float, tmp: Path) -> dict:
    import numpy as np
    cnn = ZOO / f"{name}.cnn"
    row: dict = {"name": name}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cnnc = [sys.executable, "-m", "cnnc"]

    # (b) Keras's export, whole process and its parts
    kenv = dict(env, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    try:
        wall, _, rss, out = measured([keras_python, __file__, "--keras-worker", name, str(tmp)], 1, kenv)
        k = json.loads(out.strip().splitlines()[-1])
        row["keras"] = {**k, "wall_s": wall, "rss": rss,
                        "with_import_s": k["import_s"] + k["build_s"] + k["export_s"]}
    except RuntimeError as e:   # e.g. killed for memory (-9): VGG16's export needs > 23 GB
        if not (tmp / "weights.npz").exists():
            raise
        row["keras"] = {"failed": str(e).splitlines()[0][-120:]}

    # (a) cnnc check and compile, whole process
    med, best, rss, _ = measured(cnnc + ["check", str(cnn)], 7, env)
    row["check"] = {"median_s": med, "best_s": best, "rss": rss}
    onnx_path = tmp / "cnnc.onnx"
    compile_cmd = cnnc + ["compile", str(cnn), "--weights", str(tmp / "weights.npz"), "-q",
                          "-o", str(onnx_path)]
    med, best, rss, _ = measured(compile_cmd, 3, env)
    row["compile"] = {"median_s": med, "best_s": best, "rss": rss}


    # (d), (e) onnxruntime
    x = np.load(tmp / "x.npy")
    keras_onnx = tmp / "keras.onnx"
    row["nodes"] = counts(onnx_path), (counts(keras_onnx) if keras_onnx.exists() else (None, None))
    row["ort"] = ort_compare(onnx_path, keras_onnx if keras_onnx.exists() else None, x, threads, seconds)
    return row


def _ms(s: float) -> str:
    return f"{s * 1e3:,.1f} ms" if s < 1 else f"{s:,.2f} s"


def _mb(b: int) -> str:
    return f"{b / 2**20:,.0f} MB"


def render(rows: list[dict], threads: int) -> str:
    head = ("| model | `cnnc check` | `cnnc compile` (peak RSS) | Keras export: call / whole process (peak RSS) "
            "| nodes cnnc / Keras | Transposes cnnc / Keras | ORT latency b=1 cnnc / Keras "
            "| ORT throughput b=16 cnnc / Keras | max diff (of max) |")
    lines = [head, "|:---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes: list[str] = []
    for r in rows:
        k, o = r["keras"], r["ort"]
        (cn, ct), (kn, kt) = r["nodes"]
        if "failed" in k:
            notes.append(f"{r['name']}: Keras's export failed: {k['failed']}")
            k = {"export_s": None, "wall_s": None, "rss": None}
            kn = kt = "n/a"
        lines.append(
            f"| {r['name']} | {_ms(r['check']['median_s'])} | {_ms(r['compile']['median_s'])} "
            f"({_mb(r['compile']['rss'])}) | {_na(k['export_s'], _ms)} / {_na(k['wall_s'], _ms)} ({_na(k['rss'], _mb)}) "
            f"| {cn} / {kn} | {ct} / {kt} | {_ms(o['latency'][0])} / {_na(o['latency'][1], _ms)} "
            f"| {o['throughput'][0]:,.1f}/s / {_na(o['throughput'][1], lambda v: f'{v:,.1f}/s')} "
            f"| {_na(o['max_diff'], lambda v: f'{v:.1e}')} ({o['max_out']:.2g}) |")
        if o["keras_extra_inputs"]:
            notes.append(f"{r['name']}: Keras's ONNX file does not run on images alone; it has "
                         f"further graph inputs {', '.join(o['keras_extra_inputs'])} (tensors "
                         "tf2onnx left as inputs), so no Keras timings or diff.")
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


def _na(value, fmt) -> str:
    return "n/a" if value is None else fmt(value)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--keras-worker":
        keras_worker(sys.argv[2], Path(sys.argv[3]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=NAMES, help="zoo models (default: all)")
    p.add_argument("--keras-python", default=KERAS_PYTHON)
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)")
    p.add_argument("--seconds", type=float, default=2.0, help="time per ORT measurement and engine")
    p.add_argument("--no-write", action="store_true", help="print, do not update docs/BENCHMARKS.md")
    args = p.parse_args()
    from cnnc.runtime import sessions as runtime
    threads = args.threads or runtime.cpu_cores()
    load = os.getloadavg()[0]
    rows = []
    for name in args.names:
        with tempfile.TemporaryDirectory() as tmp:
            row = bench_one(name, args.keras_python, threads, args.seconds, Path(tmp))
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = render(rows, threads)
    print(table)
    if args.no_write:
        return 0
    import onnx
    import onnxruntime
    k = next((r["keras"] for r in rows if "keras" in r["keras"]), {"keras": "?", "tensorflow": "?"})
    r50 = next((r for r in rows if r["name"] == "resnet50"), None)
    nas = next((r for r in rows if r["name"] == "nasnet_mobile"), None)
    goals = []
    if r50:
        goals.append(f"`cnnc compile` of ResNet50 under 2 s whole process: {r50['compile']['median_s']:.2f} s "
                     f"(best {r50['compile']['best_s']:.2f} s)")
    if nas:
        goals.append(f"`cnnc check` of NASNetMobile under 0.3 s whole process: {nas['check']['median_s']:.3f} s "
                     f"(best {nas['check']['best_s']:.3f} s)")
    body = "\n".join([
        "## The Keras Applications: cnnc vs Keras 3's ONNX export",
        "",
        f"Machine: {machine()}; load average {load:.1f} when the run started.",
        f"cnnc's Python: onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}; "
        f"Keras {k['keras']}, TensorFlow {k['tensorflow']}, tf2onnx (Keras's `model.export(path, format='onnx')`).",
        "",
        "- `cnnc check` / `cnnc compile`: whole process (`python -m cnnc ...`), median of 7 / 3 runs; "
        "compile with `--weights` (the random weights below) and its checks (checker, strict shape "
        "inference, onnxruntime smoke run).",
        "- Keras export: the `model.export` call alone (TensorFlow imported, model built and called once), "
        "and the whole process (Python, TensorFlow import, building the model, export; plus "
        "drawing the random weights, a few seconds, not in the first number).",
        f"- onnxruntime {onnxruntime.__version__}, CPU, {threads} intra-op threads, all graph optimisations, "
        "both files in the same process, runs alternated; medians. Throughput: samples/s of a batch of 16.",
        "- max diff: largest |difference| between the two files' softmax outputs on the batch of 16 "
        "(in brackets the largest output), same weights (drawn as in tests/test_zoo_keras.py).",
        "",
        render(rows, threads),
        "",
        *[f"- {g}" for g in goals],
        "",
        "Reproduce: `python benchmarks/bench_zoo.py [names]` (needs `--keras-python` with Keras, "
        "TensorFlow and tf2onnx).",
    ])
    write_section("zoo", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
