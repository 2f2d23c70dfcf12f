"""Inference speed of a model: cnnc's ONNX on onnxruntime against the NumPy reference
forward and, when torch is importable, PyTorch eager and onnxruntime running
torch.onnx.export of the same network (torch is never a dependency of cnnc).

Latency: median wall time of one call at batch 1. Throughput: samples per second
at a larger batch (median call). Every engine gets the same weights, the same
input values and the same number of threads; the outputs are compared so the
numbers are about the same function. Used by `cnnc bench` and benchmarks/bench_onnx.py.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from cnnc.analysis.infer import Analysis
from cnnc.support.diagnostics import visible

ENGINES = ("onnxruntime (cnnc ONNX)", "numpy (cnnc reference)", "pytorch eager",
           "onnxruntime (torch.onnx.export)")


@dataclass
class Row:
    engine: str
    latency_s: float | None = None        # batch 1, median
    throughput: float | None = None       # samples/s at the large batch
    max_diff: float | None = None         # max |output - cnnc ONNX output| at the large batch
    note: str = ""


@dataclass
class Report:
    model: str
    batch: int
    threads: int
    rows: list[Row] = field(default_factory=list)


def median_time(fn: Callable[[], object], seconds: float = 1.0, min_runs: int = 5,
                max_runs: int = 10_000, warmup: int = 3) -> float:
    """Median wall time of fn() over at least `min_runs` calls and about `seconds`."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() < deadline):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _measure(row: Row, run: Callable[[np.ndarray], np.ndarray], x1: np.ndarray, xb: np.ndarray,
             reference: np.ndarray | None, seconds: float) -> np.ndarray:
    row.latency_s = median_time(lambda: run(x1), seconds)
    out = run(xb)
    row.throughput = len(xb) / median_time(lambda: run(xb), seconds, min_runs=3, warmup=1)
    if reference is not None:
        row.max_diff = float(np.max(np.abs(out - reference)))
    return out


def bench(analysis: Analysis, weights: Mapping[str, np.ndarray], batch: int = 256,
          threads: int | None = None, seconds: float = 1.0, numpy: bool = True, torch: bool = True,
          opset: int | None = None) -> Report:
    """Time every engine available on the model of `analysis` with `weights`."""
    from cnnc.backends import onnx as lower
    from cnnc.runtime import sessions as runtime
    threads = threads or runtime.cpu_cores()
    report = Report(analysis.model.name, batch, threads)
    rng = np.random.default_rng(0)
    sample = tuple(analysis.model.input_shape)
    if None in sample:
        from cnnc.backends.onnx.verify import smoke_shapes
        sample = smoke_shapes(analysis)[0][0][0]
    xb = rng.standard_normal((batch, *sample)).astype(np.float32)
    x1 = xb[:1].copy()

    # One engine at a time, each released before the next: idle onnxruntime and
    # OpenMP threads spin for a while and would slow the engine measured after them.
    sess = runtime.make_session(lower.to_onnx(analysis, weights, opset).SerializeToString(), "cpu", threads)
    ours = Row(ENGINES[0])
    reference = _measure(ours, lambda x: sess.run(None, {"input": x})[0], x1, xb, None, seconds)
    del sess
    rows = {ours.engine: ours}
    module = _torch_module(analysis, weights, rows) if torch else None
    if module is not None:
        rows[ENGINES[3]] = _torch_exported(module, x1, xb, reference, threads, seconds, opset)
    if numpy:
        from cnnc.backends.numpy.network import Network
        net = Network(analysis, weights)
        rows[ENGINES[1]] = Row(ENGINES[1])
        _measure(rows[ENGINES[1]], net.forward, x1, xb, reference, seconds)
    if module is not None:
        rows[ENGINES[2]] = _torch_eager(module, x1, xb, reference, threads, seconds)
    report.rows = [rows[e] for e in ENGINES if e in rows]
    return report


# --- PyTorch ------------------------------------------------------------------------------

def _torch_module(analysis: Analysis, weights: Mapping[str, np.ndarray], rows: dict[str, Row]):
    """The PyTorch twin, or None (with a note in both torch rows) when there is none."""
    try:
        import torch  # noqa: F401

        from cnnc.runtime.torch_twin import torch_module
        return torch_module(analysis, weights)
    except ImportError:
        note = "torch is not installed"
    except NotImplementedError as e:
        note = f"no PyTorch twin: {e}"
    rows[ENGINES[2]] = Row(ENGINES[2], note=note)
    rows[ENGINES[3]] = Row(ENGINES[3], note=note)
    return None


def _torch_eager(module, x1, xb, reference, threads, seconds) -> Row:
    import torch

    from cnnc.runtime.torch_twin import to_channels_first
    torch.set_num_threads(threads)
    row = Row(ENGINES[2], note="channels-first input, as PyTorch users write it")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()
    _measure(row, run, to_channels_first(x1), to_channels_first(xb), reference, seconds)
    return row


def _torch_exported(module, x1, xb, reference, threads, seconds, opset) -> Row:
    from cnnc.runtime import sessions as runtime
    from cnnc.runtime.torch_twin import to_channels_first
    c1 = to_channels_first(x1)
    row = Row(ENGINES[3], note="dynamo=False; same opset, threads and session options")
    sess = runtime.make_session(_torch_export(module, c1, opset), "cpu", threads,
                                what="torch's export")
    name = sess.get_inputs()[0].name
    _measure(row, lambda x: sess.run(None, {name: x})[0], c1, to_channels_first(xb), reference, seconds)
    return row


def _torch_export(module, x: np.ndarray, opset: int | None) -> bytes:
    import io
    import warnings

    import torch

    from cnnc.backends.onnx import DEFAULT_OPSET
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(x),), buf, dynamo=False,
                          opset_version=opset or DEFAULT_OPSET, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}})
    return buf.getvalue()


# --- rendering ------------------------------------------------------------------------------

def _us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.1f} µs"


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:,.0f}/s"


def render_markdown(report: Report) -> str:
    lines = [f"| engine | latency, batch 1 | throughput, batch {report.batch} | max diff vs cnnc ONNX | note |",
             "|:---|---:|---:|---:|:---|"]
    for r in report.rows:
        diff = "-" if r.max_diff is None else f"{r.max_diff:.1e}"
        lines.append(f"| {r.engine} | {_us(r.latency_s)} | {_rate(r.throughput)} | {diff} | {r.note} |")
    return "\n".join(lines)


def render_text(report: Report) -> str:
    head = ("engine", "latency (batch 1)", f"throughput (batch {report.batch})", "max diff", "note")
    rows = [(r.engine, _us(r.latency_s), _rate(r.throughput),
             "-" if r.max_diff is None else f"{r.max_diff:.1e}", r.note) for r in report.rows]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    align = ["<", ">", ">", ">", "<"]
    fmt = lambda row: "  ".join(f"{c:{a}{w}}" for c, a, w in zip(row, align, widths)).rstrip()  # noqa: E731
    return "\n".join([f"{visible(report.model)}: {report.threads} thread{'s' if report.threads != 1 else ''}",
                      fmt(head), *map(fmt, rows)])
