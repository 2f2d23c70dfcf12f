"""Where cnnc runs besides one file at a time: `cnnc check` on folders (this repository, and
folders of 50 to 200 generated Keras scripts and notebooks, one process and one per core),
the language server's hover latency on a 500-line script, and what the IPython
extension adds to a cell of a 500-line notebook.

    python benchmarks/bench_integrations.py          # prints and updates docs/BENCHMARKS.md

Whole-process times are medians; CPU time is the processes' user + system time (the
workers' included), so CPU / wall says how many cores were busy. The machine's load
average is recorded at the start: other processes share the cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, machine, write_section  # noqa: E402
from bench_check import NOTEBOOK_CELLS, notebook  # noqa: E402

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPATH"] = str(ROOT) + os.pathsep + ENV.get("PYTHONPATH", "")
SUMMARY = re.compile(r"^checked .*$", re.M)


# --- cnnc check on folders ------------------------------------------------------------------

def run_check(path: Path, jobs: int | None, cwd: Path, runs: int = 5) -> tuple[float, float, str]:
    """(median wall s, median CPU s of the process and its workers, summary line)."""
    cmd = [sys.executable, "-m", "cnnc", "check", str(path)] + ([] if jobs is None else ["-j", str(jobs)])
    subprocess.run(cmd, cwd=cwd, capture_output=True, env=ENV)          # warm caches
    walls, cpus, line = [], [], ""
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=ENV)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        found = SUMMARY.findall(done.stderr)
        line = found[-1] if found else done.stderr.strip().splitlines()[-1]
    return statistics.median(walls), statistics.median(cpus), line


MODEL_TEMPLATES = [
    # (code building `model`, whether it fits)
    ("model = keras.Sequential([\n    keras.Input(shape=({s}, {s}, {c})),\n"
     "    layers.Conv2D({f}, {k}, activation='relu'),\n    layers.MaxPooling2D(2),\n"
     "    layers.Conv2D({f2}, 3, activation='relu'),\n    layers.Flatten(),\n"
     "    layers.Dropout(0.5),\n    layers.Dense({n}, activation='softmax'),\n])"),
    ("inputs = keras.Input(shape=({s}, {s}, {c}))\nx = inputs\nfor filters in ({f}, {f2}):\n"
     "    y = layers.Conv2D(filters, {k}, padding='same', activation='relu')(x)\n"
     "    y = layers.BatchNormalization()(y)\n    x = layers.MaxPooling2D(2)(y)\n"
     "x = layers.GlobalAveragePooling2D()(x)\noutputs = layers.Dense({n}, activation='softmax')(x)\n"
     "model = keras.Model(inputs, outputs)"),
]
SCRIPT_HEAD = ("import numpy as np\nimport keras\nfrom keras import layers\n\n"
               "(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()\n"
               "x_train = x_train.astype('float32') / 255\n")
SCRIPT_TAIL = ("\nmodel.compile(optimizer='adam', loss='sparse_categorical_crossentropy', "
               "metrics=['accuracy'])\nmodel.summary()\n")


def generated_folder(where: Path, n: int, seed: int = 0) -> None:
    """n files, half .py scripts and half notebooks, of about 30 to 60 lines; one in ten
    with a kernel too large for its input (an error), one in ten without Keras."""
    rng = random.Random(seed)
    where.mkdir(parents=True)
    for i in range(n):
        s, c = rng.choice([(28, 1), (32, 3), (64, 3)])
        k = s + 2 if i % 10 == 3 else rng.choice([3, 5])
        body = rng.choice(MODEL_TEMPLATES).format(s=s, c=c, f=rng.choice([16, 32]),
                                                  f2=rng.choice([32, 64]), k=k, n=10)
        extra = "".join(f"print('step {j}', x_train.shape)\n" for j in range(rng.randint(10, 35)))
        if i % 10 == 7:
            code = "import json\n\ndef load(path):\n    return json.load(open(path))\n" + extra
        else:
            code = SCRIPT_HEAD + extra + body + SCRIPT_TAIL
        sub = where / f"group{i % 5}"
        sub.mkdir(exist_ok=True)
        if i % 2:
            cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                      "source": part.strip("\n").splitlines(keepends=True)} for part in code.split("\n\n")]
            (sub / f"nb_{i:03d}.ipynb").write_text(json.dumps(
                {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
        else:
            (sub / f"train_{i:03d}.py").write_text(code, encoding="utf-8")


def _spin(seconds: float) -> float:
    """Busy for `seconds` of CPU time; the wall time it took."""
    start, end = time.perf_counter(), time.process_time() + seconds
    while time.process_time() < end:
        pass
    return time.perf_counter() - start


def cores_available(seconds: float = 1.0) -> float:
    """How many cores two busy processes get at this moment: the CPU time they did over
    the wall time it took them (2.0 on an idle 2-core machine)."""
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_spin, [0.01, 0.01]))               # the workers started
        t = time.perf_counter()
        list(pool.map(_spin, [seconds, seconds]))
        return 2 * seconds / (time.perf_counter() - t)


def bench_folders() -> list[str]:
    before = cores_available()
    rows = ["| folder | `-j` | wall s (median of 5) | CPU s | CPU / wall | summary line |",
            "|---|---:|---:|---:|---:|---|"]
    wall, cpu, line = run_check(Path("."), None, ROOT)
    rows.append(f"| this repository (`cnnc check .`) | {os.cpu_count()} | {wall:.2f} | {cpu:.2f} | "
                f"{cpu / wall:.2f} | `{line}` |")
    wall, cpu, _ = run_check(Path("."), 1, ROOT)
    rows.append(f"| this repository | 1 | {wall:.2f} | {cpu:.2f} | {cpu / wall:.2f} | (same) |")
    tmp = Path(tempfile.mkdtemp(prefix="cnnc-bench-"))
    try:
        per_file = []
        for n in (50, 100, 200):
            folder = tmp / f"gen{n}"
            generated_folder(folder, n)
            for jobs in (None, 1):
                wall, cpu, line = run_check(folder, jobs, tmp)
                rows.append(f"| {n} generated scripts and notebooks | {jobs or os.cpu_count()} | "
                            f"{wall:.2f} | {cpu:.2f} | {cpu / wall:.2f} | `{line}` |")
                if jobs is None:
                    per_file.append((n, wall))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ms = ", ".join(f"{1000 * w / n:.1f} ms at {n}" for n, w in per_file)
    after = cores_available()
    return rows + ["", f"Wall time per generated file (all cores): {ms}.", "",
                   f"Cores that two busy processes of this benchmark could get from the shared "
                   f"machine, measured before and after: {before:.2f} and {after:.2f} (2.00 when idle): "
                   "`-j 2` can only be faster than `-j 1` by that much."]


# --- the language server -----------------------------------------------------------------------

def long_script(min_lines: int = 500) -> tuple[str, list[tuple[int, int]]]:
    """A Keras script of `min_lines` lines or more: models built in functions and at top
    level, printing between them; with the (0-based) positions of its layer calls."""
    lines = ["import keras", "from keras import layers", ""]
    positions = []
    k = 0
    while len(lines) < min_lines:
        lines += [f"model_{k} = keras.Sequential([", "    keras.Input(shape=(64, 64, 3)),"]
        for f in (16, 32, 64):
            positions.append((len(lines), 8))
            lines.append(f"    layers.Conv2D({f}, 3, padding='same', activation='relu'),")
            lines.append("    layers.BatchNormalization(),")
            lines.append("    layers.MaxPooling2D(2),")
        lines += ["    layers.GlobalAveragePooling2D(),", "    layers.Dense(10, activation='softmax'),",
                  "])", f"model_{k}.compile(optimizer='adam', loss='categorical_crossentropy')"]
        lines += [f"print('model {k}', {j})" for j in range(10)] + [""]
        k += 1
    return "\n".join(lines) + "\n", positions


def bench_lsp() -> list[str]:
    from lsprotocol import types as T
    from pygls.lsp.client import LanguageClient
    text, positions = long_script()
    n_lines = text.count("\n")

    async def main():
        client = LanguageClient("bench", "1")
        published: asyncio.Queue = asyncio.Queue()
        client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)(lambda ls, p: published.put_nowait(p))
        await client.start_io(sys.executable, "-m", "cnnc", "lsp")
        await client.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities(),
                                                         process_id=None, root_uri=None))
        client.initialized(T.InitializedParams())
        uri = (Path(tempfile.gettempdir()) / "bench_lsp.py").as_uri()
        t = time.perf_counter()
        client.text_document_did_open(T.DidOpenTextDocumentParams(
            T.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        await asyncio.wait_for(published.get(), 120)
        first = time.perf_counter() - t
        hovers = []
        for line, col in positions * 3:
            t = time.perf_counter()
            answer = await client.text_document_hover_async(T.HoverParams(
                T.TextDocumentIdentifier(uri=uri), T.Position(line, col)))
            hovers.append(time.perf_counter() - t)
            assert answer is not None and "output" in answer.contents.value
        # a keystroke, then a hover before the debounced check: the hover checks the new text
        stale = []
        for v in range(2, 7):
            client.text_document_did_change(T.DidChangeTextDocumentParams(
                text_document=T.VersionedTextDocumentIdentifier(version=v, uri=uri),
                content_changes=[T.TextDocumentContentChangePartial(
                    range=T.Range(T.Position(2, 0), T.Position(2, 0)), text=" ")]))
            t = time.perf_counter()
            await client.text_document_hover_async(T.HoverParams(
                T.TextDocumentIdentifier(uri=uri), T.Position(*positions[0])))
            stale.append(time.perf_counter() - t)
            await asyncio.wait_for(published.get(), 120)
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
        return first, hovers, stale

    first, hovers, stale = asyncio.run(main())
    hovers.sort()
    p95 = hovers[int(0.95 * (len(hovers) - 1))]
    return [f"A {n_lines}-line Keras script ({len(positions) // 3} models, {len(positions) * 3} "
            f"layers), `cnnc lsp` driven over stdio by pygls's client:", "",
            "| measure | ms |", "|---|---:|",
            f"| first diagnostics after didOpen (check of the whole script) | {1000 * first:.0f} |",
            f"| hover on a layer call, median of {len(hovers)} (goal < 100 ms) | "
            f"{1000 * statistics.median(hovers):.1f} |",
            f"| hover, 95th percentile | {1000 * p95:.1f} |",
            f"| hover right after a keystroke (the script checked again first), median of {len(stale)} | "
            f"{1000 * statistics.median(stale):.0f} |"]


# --- the IPython extension --------------------------------------------------------------------------

def bench_ipython() -> list[str]:
    from IPython.core.interactiveshell import InteractiveShell
    sys.path.insert(0, str(ROOT / "tests" / "data" / "fake_keras"))   # cells run without TensorFlow
    shell = InteractiveShell.instance()
    nb = json.loads(notebook(700))      # its code cells: 500 lines or more
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    # the data are zeros of the same shapes (nothing to download); no plotting
    cells = ["\n".join(line for line in c.replace(
        "keras.datasets.cifar10.load_data()", "(np.zeros((64, 32, 32, 3)), np.zeros((64, 1))), "
        "(np.zeros((8, 32, 32, 3)), np.zeros((8, 1)))").split("\n") if "plt" not in line) or "pass"
        for c in cells]
    lines = sum(c.count("\n") + 1 for c in cells)
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in cells:
            shell.run_cell(cell, store_history=True)

    def timed(cell: str, runs: int = 21) -> float:
        times = []
        for i in range(runs):
            with contextlib.redirect_stdout(io.StringIO()):
                t = time.perf_counter()
                # not stored: every run sees the same history (the notebook); a new comment
                # each time: a cell never seen before (the extension remembers the last check)
                result = shell.run_cell(f"{cell}  # run {i}", store_history=False)
                times.append(time.perf_counter() - t)
            assert result.success, result
        return statistics.median(times)

    small = "total = 1 + 1"
    uses = "model.compile(optimizer='adam', loss='categorical_crossentropy')"
    builds = NOTEBOOK_CELLS[3].replace("x_train.shape[1:]", "(32, 32, 3)")
    without = timed(small), timed(uses), timed(builds)
    shell.run_line_magic("load_ext", "cnnc")
    with_ext = timed(small), timed(uses), timed(builds)
    n_models = len(shell._cnnc_extension.check(None, None).script.models)
    # the whole notebook as one cell, in a fresh history
    shell.history_manager.reset()
    big_cell = "\n".join(cells)
    shell.run_line_magic("cnnc", "off")
    big_without = timed(big_cell, 5)
    shell.run_line_magic("cnnc", "stop")
    big_with = timed(big_cell, 5)
    return [f"IPython {__import__('IPython').__version__}, in-process `run_cell` of a cell after the "
            f"notebook of benchmarks/bench_check.py was run ({lines} lines of code in {len(cells)} "
            f"cells, {n_models} models built), median of 21 runs (5 for the big cell). A cell that "
            "cannot touch a model (no Keras, no model or builder named) is not checked; one that "
            "uses or builds a model is checked with every cell run before it.", "",
            "| cell | without the extension, ms | with `%load_ext cnnc`, ms | added, ms (goal < 300) |",
            "|---|---:|---:|---:|",
            f"| `{small}` | {1000 * without[0]:.1f} | {1000 * with_ext[0]:.1f} | "
            f"{1000 * (with_ext[0] - without[0]):.1f} |",
            f"| `{uses}` (uses a model) | {1000 * without[1]:.1f} | {1000 * with_ext[1]:.1f} | "
            f"{1000 * (with_ext[1] - without[1]):.1f} |",
            f"| a cell that builds a model (8 lines, functional) | {1000 * without[2]:.1f} | "
            f"{1000 * with_ext[2]:.1f} | {1000 * (with_ext[2] - without[2]):.1f} |",
            f"| the whole notebook as one {lines}-line cell (nothing run before) | "
            f"{1000 * big_without:.0f} | {1000 * big_with:.0f} | {1000 * (big_with - big_without):.0f} |"]


def main() -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    header = (f"Machine: {machine()}; load average at the start: {load}. Script: "
              "`python benchmarks/bench_integrations.py`.")
    parts = [header, "", "### `cnnc check` on folders", ""] + bench_folders()
    print("\n".join(parts), flush=True)
    lsp = bench_lsp()
    print("\n".join(lsp), flush=True)
    ipy = bench_ipython()
    print("\n".join(ipy), flush=True)
    load_end = " ".join(f"{x:.1f}" for x in os.getloadavg())
    body = "\n".join(["## Integrations: folders, the language server, the IPython extension", ""]
                     + parts + ["", "### `cnnc lsp`: hover latency", ""] + lsp
                     + ["", "### `%load_ext cnnc`: what it adds to a cell", ""] + ipy
                     + ["", f"Load average at the end: {load_end}."])
    write_section("integrations", body)


if __name__ == "__main__":
    main()
