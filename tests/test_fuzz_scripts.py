"""Fuzzing the Keras script front end (`cnnc check|summary|compile FILE.py|FILE.ipynb`).

Three sources of input, all seeded:

1. mutations of the corpus (tests/data/scripts/*.py and the code cells of *.ipynb):
   lines deleted, duplicated, swapped or cut; numbers turned into 0, -1, huge, floats,
   None or strings; identifiers renamed; Keras layer classes swapped; `return`, `raise`,
   recursion and self-reference (`m.add(m)`, a class calling itself, a layer given
   itself) inserted;
2. programs generated from a small grammar of Keras constructs: Sequential, functional
   and subclassed models, custom Layer classes with __init__/build/call, Keras
   applications with random arguments, nested models, tf.data pipelines, loops,
   helpers, and hostile Python (deep nesting, huge literals);
3. notebooks: random cell structures, magics, markdown and raw cells, odd `source`
   types, nbformat 3, broken JSON.

Every case runs in a worker process under a memory limit (RLIMIT_AS), in-process:
`cnnc.python_frontend.check_script(path, text)` under a per-case alarm, and for a sample
also `cnnc.cli.main` with `check`, `summary --format json` and `compile`. A case must end
as cnnc promises: no exception but cnnc's own (UsageError, CnncError), every diagnostic
with a span inside the file (a notebook's with its cell), no internal object reprs in
messages, the models that check `ok` with positive sizes and weights, the CLI with exit
0/1/2 and a message on stderr (never 70, never a traceback), within CASE_SECONDS and
MEMORY_LIMIT. A worker that dies (stack overflow in C, a kill) is restarted after the
case that killed it, and that case fails.

A few hundred cases in CI (a minute on 2 cores); CNNC_FUZZ=big runs thousands (dev-only,
minutes). CNNC_FUZZ_SEED picks the seed; CNNC_FUZZ_KEEP=DIR keeps every failing case's
file there. A failure names its case id (`kind-seed-index`) and the first lines of the
traceback; `python tests/test_fuzz_scripts.py SHOW ID` prints the case's text.
"""

from __future__ import annotations

import ast
import gc
import io
import json
import os
import random
import re
import resource
import signal
import sys
import time
import traceback
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from cnnc.analysis.symbolic import Expr, evaluate

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "data" / "scripts"
BIG = os.environ.get("CNNC_FUZZ") == "big"
SEED = int(os.environ.get("CNNC_FUZZ_SEED", "20240611"))
MEMORY_LIMIT = 2 << 30        # address space of a worker
CASE_SECONDS = 5.0            # check_script on one case; longer is a finding
CLI_SECONDS = 30.0            # check + summary + compile of one case (compile imports onnx)
ALARM_SECONDS = 20.0          # a case still running then is stopped: a hang
MEMORY_GROWTH = 600 << 20     # a case that grows the worker's peak RSS by more is a finding
WORKERS = max(1, min(2, os.cpu_count() or 1))


def scale(ci: int, big: int) -> int:
    return big if BIG else ci


# --- the worker: one process running cases in-process --------------------------------------------

class _Timeout(BaseException):
    """Raised by SIGALRM: not an Exception, so cnnc cannot swallow it."""


def _alarm(signum, frame):
    raise _Timeout()


_REPR = re.compile(r"object at 0x|<class '|\b(Unknown|ArgVal|TNode|LayerVal|ModelVal|Scope|"
                   r"FuncVal|ClassVal|InstanceVal|Tensor)\(|<function |<cnnc\.|Traceback|"
                   r"\b(KerasRef|ModuleRef|Builtin|KerasObj|PartialVal|ObjectVal|IterVal|ModuleVal|"
                   r"BoundMethod|SuperRef|TensorVal|ArrayVal|DataStream|DatasetRef|StaticMethod|ClassMethod|"
                   r"Endless|NoneType)\b")


def _span_problem(d, lines: list[str], notebook: bool) -> str | None:
    s = d.span
    if s is None:
        # about the whole file: no model at all, or notebook cells that are not cells
        if d.message == "found no Keras model in this file" or d.message.startswith("cnnc followed") or (
                notebook and "of this notebook" in d.message and d.message.endswith("left out")):
            return None
        return f"no span: {d.severity}: {d.message[:160]}"
    n = len(lines)
    if not (1 <= s.line <= s.end_line <= n):
        return f"span {s.line}:{s.column}-{s.end_line}:{s.end_column} outside the file ({n} lines): {d.message[:120]}"
    first, last = len(lines[s.line - 1]), len(lines[s.end_line - 1])
    at_end = s.line == s.end_line and s.column == first + 1 and s.end_column == first + 2
    if s.column < 1 or s.column > first + 1 or \
            s.end_column < 1 or (s.end_column > last + 1 and not at_end) or \
            (s.line == s.end_line and s.end_column < s.column):
        return (f"span {s.line}:{s.column}-{s.end_line}:{s.end_column} outside its line "
                f"({len(lines[s.line - 1])} chars): {d.message[:120]}")
    if notebook and getattr(d, "cell", None) is None:
        return f"no cell in a notebook diagnostic at line {s.line}: {d.message[:120]}"
    return None


def _positive(d, values) -> bool:
    """A size that is a positive int, or an expression in open dimensions that is positive
    at `values` (sizes the model works for)."""
    if isinstance(d, Expr):
        return evaluate(d, values) > 0
    return isinstance(d, int) and not isinstance(d, bool) and d > 0


def _model_problems(found) -> list[str]:
    """An `ok` model with a size that is not a positive integer, or negative params."""
    out = []
    checked = found.checked
    if not checked.ok:
        return out
    a = checked.analysis
    if not a.complete:
        out.append(f"model {found.var} (line {found.line}) is ok but its shapes are incomplete")
    # open sizes (expressions) are checked at the smallest sizes the model works for
    values = {name: (a.constraints.sets[name].first(1) or [1])[0] if name in a.constraints.sets else 1
              for name in a.open_dims}
    for info in a.infos:
        shapes = [f.shape for f in info.input_flows] + [info.output.shape]
        for shape in shapes:
            if shape is None or any(not (d is None or _positive(d, values)) for d in shape):
                out.append(f"model {found.var} (line {found.line}) is ok but layer {info.name} has "
                           f"shape {shape}")
                break
        for w in info.weights:
            if any(not _positive(d, values) for d in w.shape):
                out.append(f"model {found.var} is ok but {info.name}/{w.name} has shape {w.shape}")
    try:
        total = a.total_params
        if (evaluate(total, values) if isinstance(total, Expr) else total) < 0:
            out.append(f"model {found.var} is ok with {a.total_params} parameters")
    except Exception as e:  # noqa: BLE001
        out.append(f"model {found.var}: total_params raised {type(e).__name__}: {e}")
    return out


def _check_case(case: dict, workdir: Path) -> dict:
    from cnnc.frontends.python import check_script
    from cnnc.support.diagnostics import CnncError, UsageError
    suffix = ".ipynb" if case["kind"].startswith("nb") else ".py"
    if case.get("files"):                  # sibling modules: the case gets a folder of its own
        workdir = workdir / re.sub(r"\W", "_", case["id"])
        for name, text in case["files"].items():
            target = workdir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    path = str(workdir / f"case{suffix}")
    Path(path).write_text(case["text"], encoding="utf-8")
    problems: list[str] = []
    tb = ""
    t0 = time.monotonic()
    peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    signal.setitimer(signal.ITIMER_REAL, ALARM_SECONDS)
    sc = None
    caught = warnings.catch_warnings(record=True)
    leaked = caught.__enter__()
    warnings.simplefilter("always")       # as Python 3.12 shows a SyntaxWarning
    gc.disable()                          # as cnnc.frontend.check_script_file does
    try:
        sc = check_script(path, case["text"])
    except UsageError as e:
        if not e.message.strip():
            problems.append("UsageError without a message")
    except CnncError:
        pass
    except _Timeout:
        problems.append(f"hang: check_script still running after {ALARM_SECONDS:.0f} s")
    except MemoryError:
        problems.append("MemoryError (memory limit)")
        tb = traceback.format_exc()
    except RecursionError:
        problems.append("RecursionError")
        tb = traceback.format_exc()
    except BaseException as e:  # noqa: BLE001 - whatever escapes is a finding
        problems.append(f"raised {type(e).__name__}: {str(e)[:200]}")
        tb = traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        caught.__exit__(None, None, None)
        gc.enable()
    for w in leaked[:1]:
        problems.append(f"a Python warning leaks: {w.filename}:{w.lineno}: {w.category.__name__}: "
                        f"{str(w.message)[:120]}")
    seconds = time.monotonic() - t0
    if seconds > CASE_SECONDS and not any(p.startswith("hang") for p in problems):
        problems.append(f"slow: check_script took {seconds:.1f} s")
    grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak0) * 1024
    if grew > MEMORY_GROWTH:
        problems.append(f"memory: peak RSS grew by {grew >> 20} MiB")
    models = []
    if sc is not None:
        try:
            lines = sc.source.text.split("\n")
            notebook = sc.script is not None and sc.script.is_notebook
            diags = list(sc.diagnostics) + [d for f in sc.models for d in f.checked.diagnostics]
            seen = set()
            for d in diags:
                p = _span_problem(d, lines, notebook)
                if p is not None and p not in seen:
                    seen.add(p)
                    problems.append(p)
                text = d.message + " " + " ".join(d.notes)
                if _REPR.search(text):
                    problems.append(f"internal repr in a message: {text[:200]}")
                if "more memory than cnnc allows" in d.message:
                    problems.append("memory: an allocation was tried and failed (MemoryError under "
                                    "the worker's limit; unbounded without one)")
                if not d.message.strip():
                    problems.append("empty message")
            for f in sc.models:
                problems.extend(_model_problems(f))
                models.append({"var": f.var, "line": f.line, "ok": f.checked.ok})
        except BaseException as e:  # noqa: BLE001
            problems.append(f"inspecting the result raised {type(e).__name__}: {e}")
            tb = traceback.format_exc()
    out = {"id": case["id"], "seconds": round(seconds, 3), "problems": problems, "tb": tb[-2500:],
           "models": models, "diags": len(sc.diagnostics) if sc else -1}
    if case.get("cli") and not any(p.startswith(("hang", "slow", "memory")) for p in problems):
        out["problems"] += _run_cli(path, case["text"], models, workdir, case.get("calls", []))
    return out


def _run_cli(path: str, text: str, models: list[dict], workdir: Path, calls: list[str]) -> list[str]:
    from cnnc.cli import main
    Path(path).write_text(text, encoding="utf-8")
    problems = []
    argvs = [["check", path], ["summary", path, "--format", "json"]]
    argvs += [["summary", path, "--model", call] for call in calls[:2]]
    oks = [m for m in models if m["ok"]]
    if oks:
        m = oks[0]
        argvs.append(["compile", path, "--model", f"{m['var']}:{m['line']}", "-o",
                      str(workdir / "case.onnx"), "-q"])
    elif models:
        argvs.append(["compile", path, "-o", str(workdir / "case.onnx"), "-q"])
    t0 = time.monotonic()
    for argv in argvs:
        so, se = io.StringIO(), io.StringIO()
        signal.setitimer(signal.ITIMER_REAL, CLI_SECONDS)
        try:
            with redirect_stdout(so), redirect_stderr(se):
                rc = main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
        except _Timeout:
            rc = "timeout"
        except BaseException as e:  # noqa: BLE001
            rc = f"raised {type(e).__name__}: {str(e)[:200]}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        err = se.getvalue()
        what = []
        if rc not in (0, 1, 2):
            what.append(f"exit {rc}")
        if rc in (1, 2) and not (err.strip() or "json" in argv):
            what.append("no message on stderr")
        if rc == 0 and ": error: " in err:
            what.append("an error printed with exit status 0")
        if "Traceback (most recent call last)" in err:
            what.append("a traceback")
        if what:
            problems.append(f"cli {argv[0]}: {', '.join(what)}: {' / '.join(err.strip().splitlines()[:3])[:300]}")
    if time.monotonic() - t0 > CLI_SECONDS:
        problems.append(f"slow: the CLI took {time.monotonic() - t0:.1f} s")
    return problems


def _worker(cases_path: str, results_path: str) -> None:
    signal.signal(signal.SIGALRM, _alarm)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    workdir = Path(results_path).parent / f"w{os.getpid()}"
    workdir.mkdir(exist_ok=True)
    import cnnc.cli  # noqa: F401  (import time is not a case's)
    import cnnc.frontends.python  # noqa: F401
    cases = json.loads(Path(cases_path).read_text())
    with open(results_path, "a") as out:
        for c in cases:
            out.write(json.dumps({"start": c["id"]}) + "\n")
            out.flush()
            r = _check_case(c, workdir)
            out.write(json.dumps(r) + "\n")
            out.flush()


def _run_batch(cases: list[dict], workdir: Path, tag: str) -> dict[str, dict]:
    """Every case's outcome, by id: one worker, restarted after a case it dies on, and
    killed when stuck in C code (where SIGALRM cannot reach)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    env.pop("CNNC_DEBUG", None)
    from tests.fuzz_workers import run_rounds  # here: the WORKER side runs as a script

    def crashed(case_id: str, status: str) -> dict:
        return {"id": case_id, "seconds": 0, "models": [], "tb": status,
                "problems": [f"the worker died on this case: {status[:300]}"]}
    return run_rounds(__file__, cases, workdir, f"{tag}-", env, memory_limit=MEMORY_LIMIT,
                      stall_seconds=ALARM_SECONDS + CLI_SECONDS * 3 + 30, max_rounds=100,
                      crashed=crashed)


def run_cases(cases: list[dict], workdir: Path) -> dict[str, dict]:
    """The cases split over WORKERS processes running at once."""
    workdir.mkdir(parents=True, exist_ok=True)
    if WORKERS == 1 or len(cases) < 20:
        return _run_batch(cases, workdir, "a")
    from concurrent.futures import ThreadPoolExecutor
    parts = [cases[i::WORKERS] for i in range(WORKERS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        outs = list(pool.map(lambda ip: _run_batch(ip[1], workdir, f"p{ip[0]}"), enumerate(parts)))
    merged: dict[str, dict] = {}
    for o in outs:
        merged.update(o)
    return merged


def _last_frames(tb: str, n: int = 4) -> str:
    lines = [ln for ln in tb.strip().splitlines() if ln.strip()]
    frames = [i for i, ln in enumerate(lines) if ln.lstrip().startswith("File ")]
    if not frames:
        return " / ".join(lines[-3:])
    tail = lines[frames[-min(n, len(frames))]:]
    return "\n      ".join(x.strip() for x in tail)


def assert_clean(cases: list[dict], results: dict[str, dict]) -> None:
    keep = os.environ.get("CNNC_FUZZ_KEEP")
    bad = []
    by_problem: dict[str, list[str]] = {}
    for c in cases:
        r = results.get(c["id"])
        if r is None:
            bad.append(f"{c['id']}: never ran")
            continue
        if r["problems"]:
            bad.append(c["id"])
            for p in r["problems"]:
                key = re.sub(r"\d+", "N", p)[:140]
                by_problem.setdefault(key, []).append(c["id"])
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                suffix = ".ipynb" if c["kind"].startswith("nb") else ".py"
                (Path(keep) / f"{c['id']}{suffix}").write_text(c["text"], encoding="utf-8")
                (Path(keep) / f"{c['id']}.txt").write_text("\n".join(r["problems"]) + "\n\n" + r["tb"])
    if not bad:
        return
    report = [f"{len(bad)} of {len(cases)} cases failed ({len(by_problem)} kinds of problem):"]
    for key, ids in sorted(by_problem.items(), key=lambda kv: -len(kv[1]))[:40]:
        first = results[ids[0]]
        report.append(f"- {len(ids)}x {key}\n    e.g. {ids[0]} ({', '.join(ids[1:4])})")
        if first.get("tb"):
            report.append("      " + _last_frames(first["tb"]))
    pytest.fail("\n".join(report), pytrace=False)


# --- inputs: the corpus -----------------------------------------------------------------------

def corpus() -> list[tuple[str, str]]:
    """(name, python text) of every corpus file: .py as is, notebooks' code cells joined."""
    out = []
    for p in sorted(SCRIPTS.glob("*.py")):
        out.append((p.name, p.read_text(encoding="utf-8")))
    for p in sorted(SCRIPTS.glob("*.ipynb")):
        nb = json.loads(p.read_text(encoding="utf-8"))
        cells = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                 for c in nb["cells"] if c.get("cell_type") == "code"]
        text = "\n".join(ln for c in cells for ln in c.split("\n")
                         if not ln.lstrip().startswith(("%", "!")))
        out.append((p.name, text))
    return out


def notebooks() -> list[tuple[str, str]]:
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(SCRIPTS.glob("*.ipynb"))]


LAYERS = ["Conv2D", "Conv1D", "Conv3D", "Dense", "MaxPooling2D", "MaxPooling1D", "AveragePooling2D",
          "GlobalAveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "Flatten", "Dropout",
          "BatchNormalization", "Activation", "Reshape", "Add", "Concatenate", "SeparableConv2D",
          "DepthwiseConv2D", "Conv2DTranspose", "UpSampling2D", "ZeroPadding2D", "Cropping2D",
          "LayerNormalization", "Rescaling", "RandomFlip", "RandomRotation", "Embedding", "LSTM",
          "Input", "InputLayer", "Lambda", "Softmax", "ReLU", "Multiply", "Permute", "RepeatVector",
          "Sequential", "Model", "SpatialDropout2D", "LeakyReLU", "Resizing", "Normalization",
          "Layer", "Subtract", "Average", "Maximum", "TimeDistributed", "Bidirectional"]
APPS = ["VGG16", "ResNet50", "ResNet50V2", "MobileNet", "MobileNetV2", "MobileNetV3Small",
        "DenseNet121", "Xception", "InceptionV3", "EfficientNetB0", "NASNetMobile", "ResNet101",
        "VGG19", "MobileNetV3Large", "EfficientNetV2S", "ConvNeXtTiny"]
NUMBERS = ["0", "-1", "1", "2", "3", "10**9", "2**63", "2**64", "-2**63", "10**30", "1e308", "0.5",
           "-0.0", "float('nan')", "float('inf')", "None", "'abc'", "''", "True", "(3,)", "(0, 0, 3)",
           "[]", "()", "{}", "1j", "b'x'", "...", "(-5, -5)", "(1, 1, 1, 1, 1)", "7", "100000", "65536",
           "'same'", "'valid'", "'relu'", "(None, None, 3)", "(2, 2)", "(10**6, 10**6, 3)", "x", "self"]
INSERTS = ["return", "return None", "return x", "return model", "raise ValueError('x')", "raise",
           "break", "continue", "yield x", "global model", "del model", "del x", "x = x(x)",
           "model.add(model)", "model = model(model)", "x = model(model)", "model = Sequential([model])",
           "model = keras.Sequential([model, model])", "model.layers[0](model)",
           "def _f(n): return _f(n)\n_f(1)", "def _g(): return _g\nx = _g()()()",
           "while True: pass", "while True: x = x", "for _i in range(10**9): pass",
           "x = [x] * 10**8", "x = 'a' * 10**9", "x = 2 ** 10 ** 10", "x = 9 ** 9 ** 9",
           "model.build((None, 28, 28, 1))", "model.build(None)", "model.build((None, 0))",
           "model.fit(model)", "model.compile(optimizer=model, loss=model)", "model.pop()",
           "model.summary()", "model.trainable = model", "model.layers.append(model)",
           "x = keras.layers.Dense(3)(keras.layers.Dense(3))", "x = layers.Conv2D(8, 3)(x)(x)",
           "x = x.shape[10**9]", "x = x.shape[-1] * x", "model = keras.Model(model, model)",
           "model = keras.Model(inputs=x, outputs=x)", "model = keras.Model()",
           "x = keras.Input(shape=x)", "x = keras.Input(shape=(-1, 0))", "self.x = self",
           "self.add(self)", "self = None", "super().__init__(self)", "x = self(x)",
           "x = type(self)()(x)", "import keras as layers", "from keras import *", "keras = None",
           "layers = keras", "exec('x=1')", "lambda: model", "x = [model for model in model]",
           "x = {**model}", "x = (*model,)", "assert False", "try:\n    pass\nexcept: pass",
           "with model: pass", "async def _a(): await x", "x: int = model", "x = x if x else x",
           "x = x[::-1]", "x = x @ x", "x = -x", "x = not x", "model.add(keras.Input((3,)))"]


def _identifiers(text: str) -> list[str]:
    return sorted(set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", text)))


_NUM = re.compile(r"(?<![\w.])\d+(?:\.\d*)?(?:e-?\d+)?(?![\w.])")


def mutate_python(rng: random.Random, text: str, rounds: int | None = None) -> str:
    lines = text.split("\n")
    for _ in range(rounds or rng.randint(1, 4)):
        if not lines:
            lines = [""]
        op = rng.choice(["delete", "dup", "swap", "number", "number", "number", "rename", "layer",
                         "layer", "insert", "insert", "insert", "cut", "indent", "char", "app", "string"])
        i = rng.randrange(len(lines))
        line = lines[i]
        if op == "delete":
            del lines[i:i + rng.choice([1, 1, 1, 2, 5])]
        elif op == "dup":
            lines[i:i] = lines[i:i + rng.choice([1, 1, 3, 10])]
        elif op == "swap":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "number":
            cands = [k for k, ln in enumerate(lines) if _NUM.search(ln)]
            if cands:
                k = rng.choice(cands)
                ms = list(_NUM.finditer(lines[k]))
                m = rng.choice(ms)
                lines[k] = lines[k][:m.start()] + rng.choice(NUMBERS) + lines[k][m.end():]
        elif op == "rename":
            ids = _identifiers("\n".join(lines))
            if len(ids) >= 2:
                a = rng.choice(ids)
                b = rng.choice(ids + ["self", "model", "x", "None", "keras", "layers", "_new"])
                joined = re.sub(rf"\b{re.escape(a)}\b", lambda m: b, "\n".join(lines))
                lines = joined.split("\n")
        elif op == "layer":
            cands = [k for k, ln in enumerate(lines) if any(n in ln for n in LAYERS)]
            if cands:
                k = rng.choice(cands)
                present = [n for n in LAYERS if re.search(rf"\b{n}\b", lines[k])]
                if present:
                    lines[k] = re.sub(rf"\b{rng.choice(present)}\b", rng.choice(LAYERS), lines[k], count=1)
        elif op == "app":
            cands = [k for k, ln in enumerate(lines) if any(n in ln for n in APPS)]
            if cands:
                k = rng.choice(cands)
                present = [n for n in APPS if re.search(rf"\b{n}\b", lines[k])]
                if present:
                    lines[k] = re.sub(rf"\b{rng.choice(present)}\b", rng.choice(APPS), lines[k], count=1)
        elif op == "insert":
            indent = re.match(r"[ \t]*", line).group(0)
            stmt = rng.choice(INSERTS)
            # a self-reference to a name the file uses
            ids = [n for n in _identifiers(line) if not n.startswith("__")]
            if ids and rng.random() < 0.4:
                n = rng.choice(ids)
                stmt = rng.choice([f"{n}.add({n})", f"{n} = {n}({n})", f"x = {n}({n})", f"{n}({n})",
                                   f"{n} = [{n}]", f"{n}.append({n})", f"{n} = keras.Sequential([{n}])",
                                   f"{n} = {n}.{n}", f"{n}.{n} = {n}", f"{n} = type({n})({n})"])
            lines[i:i] = [indent + s for s in stmt.split("\n")]
        elif op == "cut":
            joined = "\n".join(lines)
            lines = joined[:rng.randrange(len(joined) + 1)].split("\n")
        elif op == "indent":
            lines[i] = rng.choice(["    ", "\t", "  ", ""]) + line.lstrip() if rng.random() < 0.7 else line
        elif op == "char":
            if line:
                k = rng.randrange(len(line))
                lines[i] = line[:k] + rng.choice(list("()[]{},:;=.*+-'\"\\#@") + ["é", "\x0c", "\t", "𝟘"]) \
                    + line[k + rng.choice([0, 1]):]
        elif op == "string":
            cands = [k for k, ln in enumerate(lines) if re.search(r"'[^']*'|\"[^\"]*\"", ln)]
            if cands:
                k = rng.choice(cands)
                new = rng.choice(
                    ["''", "'x' * 3", "'\\x1b[31mred'", "'a' * 200", "None", "1", "'channels_first'",
                     "'same'", "'valid'", "'relu'", "'softmax'", "'imagenet'", "'avg'", "'max'"])
                lines[k] = re.sub(r"'[^']*'|\"[^\"]*\"", lambda m: new, lines[k], count=1)
    return "\n".join(lines)


def mutated_cases(rng: random.Random, n: int) -> list[dict]:
    texts = corpus()
    cases = []
    for k in range(n):
        name, text = rng.choice(texts)
        for _attempt in range(4):     # prefer mutants that still parse: they reach the evaluator
            out = mutate_python(rng, text)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ast.parse(out)
                break
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                if rng.random() < 0.25:
                    break
        cases.append({"id": f"mut-{SEED}-{k}", "kind": "py", "text": out, "from": name})
    return cases


# --- inputs: generated programs -------------------------------------------------------------------

HEADERS = [
    "import keras\nfrom keras import layers\n",
    "import tensorflow as tf\nfrom tensorflow import keras\nfrom tensorflow.keras import layers\n",
    "from tensorflow.keras.models import Sequential, Model\nfrom tensorflow.keras.layers import *\n"
    "from tensorflow import keras\nfrom tensorflow.keras import layers\n",
    "import keras\nimport keras.layers as layers\nimport tensorflow as tf\nimport numpy as np\n",
]
SHAPES = ["(28, 28, 1)", "(32, 32, 3)", "(8, 8, 3)", "(784,)", "(1, 1, 1)", "(0, 5, 3)", "(-1,)",
          "(None, None, 3)", "(3,)", "('a',)", "(2.5, 3)", "()", "(10**9, 10**9, 3)", "(32, 32, 3, 1)",
          "None", "[28, 28]", "28", "(224, 224, 3)", "(75, 75, 3)", "(31, 31, 3)", "(2**40,)",
          "(96, 96, 3)", "(5, 7)", "(16, 16, 16, 1)", "(None,)", "(True, 2, 3)", "(299, 299, 3)",
          "(33, 17, 3)", "(64, 64, 1)", "(160, 160, 3)", "x_train.shape[1:]", "(1,)"]
ACTS = ["'relu'", "'softmax'", "'sigmoid'", "None", "'tanh'", "'nope'", "keras.activations.relu",
        "'linear'", "'gelu'", "'swish'", "1", "'selu'"]


class Gen:
    """A random Keras program."""

    def __init__(self, rng: random.Random):
        self.files: dict[str, str] = {}
        self.calls: list[str] = []
        self.rng = rng
        self.lines: list[str] = []
        self.n = 0

    def r(self, *xs):
        return self.rng.choice(xs)

    def small(self) -> str:
        return self.r("1", "2", "3", "4", "8", "16", "32", "64", "0", "-1", "10**6", "2.5", "None", "'8'",
                      "filters", "n", "2**31")

    def ksize(self) -> str:
        return self.r("3", "(3, 3)", "(1, 1)", "5", "(7, 7)", "1", "0", "(3,)", "(3, 3, 3)", "-3", "(2, 0)",
                      "100", "'3'", "(3, 3)", "3")

    def layer(self, rank: int = 2) -> str:
        r = self.r
        kind = r("conv", "conv", "dense", "pool", "flatten", "drop", "bn", "act", "gap", "reshape",
                 "sep", "dw", "up", "pad", "crop", "ln", "resc", "aug", "odd", "convT", "conv1", "perm",
                 "lambda", "groups")
        pad = r("", ", padding='same'", ", padding='valid'", ", padding='causal'", ", padding='full'",
                ", padding=None")
        stride = r("", "", ", strides=2", ", strides=(2, 2)", ", strides=0", ", strides=-1", ", strides=(1, 3)")
        act = r("", "", f", activation={r(*ACTS)}")
        if kind == "conv":
            return f"layers.Conv2D({self.small()}, {self.ksize()}{stride}{pad}{act})"
        if kind == "conv1":
            return f"layers.Conv1D({self.small()}, {self.ksize()}{pad}{act})"
        if kind == "convT":
            return f"layers.Conv2DTranspose({self.small()}, {self.ksize()}{stride}{pad})"
        if kind == "dense":
            return f"layers.Dense({self.small()}{act})"
        if kind == "pool":
            return f"layers.{r('MaxPooling2D', 'AveragePooling2D', 'MaxPooling1D', 'MaxPool2D')}({r('', '2', '(2, 2)', '(3, 3)', '0', '(9, 9)', 'pool_size=4')}{stride}{pad})"
        if kind == "flatten":
            return "layers.Flatten()"
        if kind == "drop":
            return f"layers.Dropout({r('0.5', '0', '1', '1.5', '-0.1', 'None', '0.25')})"
        if kind == "bn":
            return f"layers.BatchNormalization({r('', 'axis=1', 'axis=-1', 'axis=7', 'momentum=0.9')})"
        if kind == "act":
            return f"layers.Activation({r(*ACTS)})"
        if kind == "gap":
            return f"layers.{r('GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'GlobalAveragePooling1D')}()"
        if kind == "reshape":
            return f"layers.Reshape({r('(-1,)', '(7, 7, 16)', '(0,)', '(-1, -1)', '(3, -1)', '(28, 28, 1)', '()', '-1')})"
        if kind == "sep":
            return f"layers.SeparableConv2D({self.small()}, {self.ksize()}{pad}{act})"
        if kind == "dw":
            return f"layers.DepthwiseConv2D({self.ksize()}{stride}{pad}{r('', ', depth_multiplier=0', ', depth_multiplier=3')})"
        if kind == "up":
            return f"layers.UpSampling2D({r('', '2', '(2, 2)', '0', '10**5')})"
        if kind == "pad":
            return f"layers.ZeroPadding2D({r('', '1', '((1, 2), (3, 4))', '-1', '(1, 1)', '10**6')})"
        if kind == "crop":
            return f"layers.Cropping2D({r('1', '((1, 2), (3, 4))', '100', '-1', '((0, 0), (0, 0))')})"
        if kind == "ln":
            return f"layers.LayerNormalization({r('', 'axis=-1', 'axis=5', 'axis=[1, 2, 3]')})"
        if kind == "resc":
            return f"layers.Rescaling({r('1./255', '1/127.5, offset=-1', '0', 'None')})"
        if kind == "aug":
            arg = r('', '0.1', "'horizontal'", '-1')
            return f"layers.{r('RandomFlip', 'RandomRotation', 'RandomZoom')}({arg})"
        if kind == "perm":
            return f"layers.Permute({r('(2, 1, 3)', '(1,)', '(3, 2, 1)', '(0, 1)')})"
        if kind == "lambda":
            return r("layers.Lambda(lambda t: t)", "layers.Lambda(lambda t: t / 127.5 - 1.0)",
                     "layers.Lambda(tf.nn.relu)", "layers.Lambda(lambda t: t * t + t)",
                     "layers.Lambda(lambda t: -t, name='neg')", "layers.Lambda(lambda t: tf.reduce_mean(t))",
                     "layers.Lambda(lambda t: t[:, 1])", "layers.Lambda(print)", "layers.Lambda(3)",
                     "layers.Lambda(lambda t, k=2: t * k, arguments={'k': 3})",
                     "layers.Lambda(lambda a, b: a + b)", "layers.Lambda(lambda t: (t, t))")
        if kind == "groups":
            return f"layers.Conv2D({r('8', '6', '4')}, 3, groups={r('1', '2', '4', '3', '0', '8')}{pad})"
        return r("layers.Lambda(lambda t: t)", "layers.Embedding(100, 8)", "layers.LSTM(4)",
                 "layers.Layer()", "keras.layers.Input((3,))", "layers.InputLayer((8, 8, 3))",
                 "layers.Softmax()", "layers.ReLU()", "layers.LeakyReLU(0.1)", "layers.Add()",
                 "layers.Concatenate(axis=7)", "layers.Dense(units=-5)", "layers.Dense()",
                 "layers.Dense(3, 3, 3, 3)", "layers.Conv2D(filters=8, kernel_size=3, nope=1)",
                 "layers.Dense(3, kernel_initializer='nope')", "layers.Dense(8, kernel_regularizer='l2')",
                 "layers.SpatialDropout2D(0.2)", "layers.Resizing(16, 16)", "layers.RepeatVector(3)")

    def layers_list(self, n: int | None = None) -> list[str]:
        return [self.layer() for _ in range(n if n is not None else self.rng.randint(0, 7))]

    def input_expr(self) -> str:
        s = self.r(*SHAPES)
        return self.r(f"keras.Input(shape={s})", f"keras.Input({s})", f"layers.Input(shape={s})",
                      f"keras.layers.InputLayer(input_shape={s})", f"keras.Input(shape={s}, batch_size=4)")

    def new(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    # --- model forms, each appending lines and returning the model's name ---

    def sequential(self) -> str:
        name = self.new("model")
        items = self.layers_list()
        if self.rng.random() < 0.7:
            items.insert(0, self.input_expr())
        elif self.rng.random() < 0.5 and items:
            items[0] = items[0][:-1] + (", " if not items[0].endswith("(") else "") + \
                f"input_shape={self.r(*SHAPES)})"
        if self.rng.random() < 0.5:
            self.lines.append(f"{name} = keras.Sequential([{', '.join(items)}]{self.r('', ', name=' + repr(name), ', name=None', ', name=3')})")
        else:
            self.lines.append(f"{name} = keras.Sequential()")
            for it in items:
                self.lines.append(f"{name}.add({it})")
        if self.rng.random() < 0.3:
            self.lines.append(f"{name}.build({self.r('(None, 28, 28, 1)', '(None, 8, 8, 3)', '(None,)', 'None', '(28, 28, 1)', '[None, 32, 32, 3]', '(None, -1, 3)')})")
        return name

    def functional(self) -> str:
        name = self.new("model")
        inp = self.new("inputs")
        self.lines.append(f"{inp} = {self.input_expr()}")
        x = inp
        saved = [inp]
        for _ in range(self.rng.randint(0, 6)):
            form = self.rng.random()
            if form < 0.6:
                self.lines.append(f"x = {self.layer()}({x})")
                x = "x"
                saved.append(x)
            elif form < 0.75:
                other = self.r(*saved)
                self.lines.append(f"x = layers.{self.r('add', 'concatenate', 'multiply', 'subtract', 'average', 'maximum')}([{x}, {other}])")
                x = "x"
            elif form < 0.85:
                self.lines.append(f"x = {x} {self.r('+', '*', '-', '/', '@', '**')} {self.r(x, '0.5', '2', inp, 'None')}")
                x = "x"
            else:
                self.lines.append(f"r = x\nx = {self.layer()}(x)\nif x.shape[-1] != r.shape[-1]:\n"
                                  f"    r = layers.Conv2D(x.shape[-1], 1)(r)\nx = layers.add([x, r])")
                x = "x"
        outs = self.r(x, f"[{x}, {inp}]", inp, f"{{'a': {x}}}", "None", "[]")
        self.lines.append(f"{name} = keras.Model({self.r(inp, f'[{inp}]', 'inputs=' + inp)}, "
                          f"{self.r(outs, 'outputs=' + outs)}{self.r('', ', name=' + repr(name))})")
        return name

    def custom_layer(self) -> str:
        cls = self.new("Block")
        r = self.r
        inner = self.layers_list(self.rng.randint(0, 3))
        body = [f"class {cls}({r('layers.Layer', 'keras.layers.Layer', 'keras.Layer', 'layers.Conv2D', 'object', cls, 'keras.Model')}):",
                f"    def __init__(self, {r('filters=8', 'filters', 'n=2, **kwargs', '*args, **kwargs')}):",
                f"        {r('super().__init__()', 'super().__init__(**kwargs)', f'super({cls}, self).__init__()', 'pass', 'super().__init__(self)', '')}"]
        for k, layer in enumerate(inner):
            body.append(f"        self.l{k} = {layer}")
        if self.rng.random() < 0.3:
            body.append(f"        self.loop = [{r('layers.Dense(4)', 'layers.Conv2D(4, 3)', 'self')} for _ in range({r('2', '0', '10**6', 'n')})]")
        if self.rng.random() < 0.2:
            body.append(f"        self.me = {r('self', f'{cls}()', 'self.l0')}")
        if self.rng.random() < 0.4:
            body += ["    def build(self, input_shape):",
                     f"        self.extra = layers.Dense({r('input_shape[-1]', 'input_shape[10]', 'input_shape', '3', 'self')})",
                     f"        {r('super().build(input_shape)', 'pass', 'self.w = self.add_weight(shape=(3, 3))', 'return self.build(input_shape)')}"]
        body.append(f"    def call(self, {r('inputs', 'inputs, training=None', 'x, mask=None', '*a')}):")
        body.append("        x = inputs" if "inputs" in body[-1] else "        x = x if 'x' in dir() else a")
        for k in range(len(inner)):
            if self.rng.random() < 0.8:
                body.append(f"        x = self.l{k}(x)")
        if self.rng.random() < 0.3:
            body.append(f"        x = {r('self(x)', f'{cls}()(x)', 'self.call(x)', 'x + inputs', 'self.extra(x)', 'tf.matmul(x, x)', 'x[0]', 'keras.activations.relu(x)', 'tf.nn.relu(x)', 'self.loop[0](x)')}")
        body.append(f"        return {r('x', 'x', 'inputs', 'None', 'self', '(x, x)', '[x]')}")
        if self.rng.random() < 0.2:
            body += ["    def get_config(self):", "        return {}"]
        self.lines += body
        return cls

    def subclassed_model(self) -> str:
        cls = self.new("Net")
        r = self.r
        inner = self.layers_list(self.rng.randint(1, 4))
        body = [f"class {cls}({r('keras.Model', 'tf.keras.Model', 'keras.models.Model', 'keras.Sequential')}):",
                "    def __init__(self, **kwargs):",
                f"        {r('super().__init__(**kwargs)', 'super().__init__()', 'pass', f'super({cls}, self).__init__()')}"]
        for k, layer in enumerate(inner):
            body.append(f"        self.l{k} = {layer}")
        if self.rng.random() < 0.2:
            body.append(f"        self.sub = {r(f'{cls}()', 'self', 'keras.Sequential([self.l0])')}")
        body.append(f"    def call(self, {r('x', 'inputs', 'x, training=False')}):")
        body.append("        x = inputs" if "inputs" in body[-1] else "        pass")
        for k in range(len(inner)):
            body.append(f"        x = self.l{k}(x)")
        if self.rng.random() < 0.25:
            body.append(f"        x = {r('self(x)', 'self.sub(x)', f'{cls}()(x)', 'self.call(x)')}")
        body.append("        return x")
        self.lines += body
        name = self.new("model")
        self.lines.append(f"{name} = {cls}()")
        how = self.rng.random()
        if how < 0.5:
            self.lines.append(f"{name}.build({r('(None, 28, 28, 1)', '(None, 8, 8, 3)', '(None, 784)', 'input_shape=(None, 32, 32, 3)', '(28, 28, 1)', 'None', '(None, 0, 0, 3)')})")
        elif how < 0.75:
            self.lines.append(f"{name}.compile(optimizer='adam', loss='mse')\n{name}.fit(x_train, y_train, epochs=1)")
        elif how < 0.9:
            self.lines.append(f"_out = {name}({r('x_train[:1]', 'keras.Input((8, 8, 3))', 'tf.zeros((1, 8, 8, 3))', 'None')})")
        return name

    def application(self) -> str:
        name = self.new("base")
        r = self.r
        args = []
        for key, vals in [("include_top", ["True", "False", "None", "0", "'no'"]),
                          ("weights", ["'imagenet'", "None", "'w.h5'", "3"]),
                          ("input_shape", SHAPES + ["(224, 224, 3)"] * 3),
                          ("pooling", ["'avg'", "'max'", "None", "'nope'", "1"]),
                          ("classes", ["10", "1000", "0", "-1", "None", "2.5", "10**9"]),
                          ("alpha", ["1.0", "0.5", "0", "-1", "'x'", "1"]),
                          ("classifier_activation", ["'softmax'", "None", "'nope'", "'sigmoid'"]),
                          ("input_tensor", ["keras.Input((64, 64, 3))", "None", "x"])]:
            if self.rng.random() < 0.45:
                args.append(f"{key}={r(*vals)}")
        if self.rng.random() < 0.15:
            args.insert(0, r("False", "True", "None"))
        path = r("keras.applications", "tf.keras.applications", "keras.applications.mobilenet_v2",
                 "keras.applications.resnet50")
        self.lines.append(f"{name} = {path}.{r(*APPS)}({', '.join(args)})")
        if self.rng.random() < 0.5:
            self.lines.append(f"{name}.trainable = {r('False', 'True', 'None', name)}")
        if self.rng.random() < 0.6:
            m = self.new("model")
            self.lines += [f"inp = keras.Input(shape={r('(160, 160, 3)', '(96, 96, 3)', '(32, 32, 3)', '(8, 8, 3)', '(224, 224, 1)', '(None, None, 3)', '(75, 75, 3)')})",
                           f"x = {r('keras.applications.mobilenet_v2.preprocess_input(inp)', 'inp', 'layers.Rescaling(1./127.5, offset=-1)(inp)', 'keras.applications.resnet50.preprocess_input(inp)')}",
                           f"x = {name}(x{r('', ', training=False', ', training=True')})",
                           f"x = {self.r('layers.GlobalAveragePooling2D()(x)', 'layers.Flatten()(x)', 'x')}",
                           f"outputs = layers.Dense({r('1', '10', '0', '-1')})(x)",
                           f"{m} = keras.Model(inp, outputs)"]
            return m
        return name

    def nested(self, models: list[str]) -> str:
        r = self.r
        a = r(*models) if models else self.sequential()
        name = self.new("model")
        form = self.rng.randrange(7)
        if form == 0:
            self.lines.append(f"{name} = keras.Sequential([{a}, layers.{r('Dense(3)', 'Flatten()', 'Softmax()')}])")
        elif form == 1:
            self.lines += [f"inp = {self.input_expr()}", f"{name} = keras.Model(inp, {a}(inp))"]
        elif form == 2:
            self.lines += [f"{a}.add({a})"]
            return a
        elif form == 3:
            self.lines += [f"{name} = keras.Sequential([{a}, {a}])"]
        elif form == 4:
            self.lines += [f"inp = {self.input_expr()}", f"x = {a}({a}(inp))", f"{name} = keras.Model(inp, x)"]
        elif form == 5:
            self.lines += [f"{name} = keras.Sequential()", f"{name}.add({name})", f"{name}.add(layers.Dense(2))"]
        else:
            self.lines += [f"{name} = keras.Sequential([{a}])", f"{a}.add({name})",
                           f"_y = {name}(keras.Input((28, 28, 1)))"]
        return name

    def data(self) -> None:
        r = self.r
        self.lines.append(f"(x_train, y_train), (x_test, y_test) = keras.datasets.{r('mnist', 'cifar10', 'fashion_mnist', 'cifar100', 'boston_housing', 'imdb', 'nope')}.load_data()")
        if self.rng.random() < 0.6:
            self.lines.append(f"x_train = {r('x_train.reshape(-1, 28, 28, 1)', 'x_train.reshape(-1, 0)', 'x_train[..., None]', 'np.expand_dims(x_train, -1)', 'x_train.astype(' + repr('float32') + ') / 255', 'x_train.reshape(-1, -1)', 'x_train.reshape(10**9, 7)', 'x_train[:0]', 'x_train.T')}")
        if self.rng.random() < 0.4:
            self.lines.append(f"y_train = keras.utils.to_categorical(y_train{r('', ', 10', ', 0', ', -1', ', num_classes=None')})")

    def tfdata(self, model: str) -> None:
        r = self.r
        self.lines.append(f"ds = tf.data.Dataset.from_tensor_slices({r('(x_train, y_train)', 'x_train', '(x_train,)', '[]', 'None', 'ds')})")
        for _ in range(self.rng.randint(0, 4)):
            self.lines.append(f"ds = ds.{r('batch(32)', 'batch(0)', 'batch(-1)', 'shuffle(1000)', 'cache()', 'prefetch(tf.data.AUTOTUNE)', 'map(lambda a, b: (a / 255, b))', 'repeat()', 'take(3)', 'unbatch()', 'batch(2**62)')}")
        if self.rng.random() < 0.5:
            self.lines.append(f"ds2 = keras.utils.image_dataset_from_directory('d', image_size={r('(180, 180)', '(0, 0)', '(-1, 5)', '180', 'None', '(10**6, 10**6)')}, color_mode={r(repr('rgb'), repr('grayscale'), repr('nope'))})")
        if self.rng.random() < 0.5:
            self.lines.append(f"for images, labels in {r('ds', 'ds2', 'ds.take(1)')}:\n    {r('pass', f'{model}(images)', f'_p = {model}(images, training=True)', 'break')}")
        self.lines.append(f"{model}.compile(optimizer={r(repr('adam'), 'keras.optimizers.SGD(lr=0.1)', 'None', repr('nope'))}, loss={r(repr('mse'), repr('sparse_categorical_crossentropy'), 'None')})")
        self.lines.append(f"{model}.fit({r('ds', 'x_train, y_train', 'ds2', '', 'x_train, y_train, nb_epoch=2', 'None')}, epochs={r('1', '0', '-1', '10**9')})")

    def helper(self) -> str:
        r = self.r
        fn = self.new("block")
        self.lines += [f"def {fn}(x, filters{r('', '=16', '=None')}, depth=2):",
                       f"    for _ in range({r('depth', '2', '10**5', '-1', 'filters')}):",
                       "        x = layers.Conv2D(filters, 3, padding='same')(x)",
                       f"    {r('return x', 'return ' + fn + '(x, filters, depth)', 'return ' + fn + '(x, filters, depth - 1) if depth else x', 'return', 'return [x]', 'return x, x')}"]
        name = self.new("model")
        self.lines += [f"inp = keras.Input({r('(32, 32, 3)', '(8, 8, 1)', '(4, 4, 3)')})",
                       "x = inp",
                       f"for i in range({r('3', '0', '50', '10**4')}):",
                       f"    x = {fn}(x, {r('16 * 2 ** i', '8', 'i', '2 ** i')})",
                       f"    x = layers.MaxPooling2D({r('2', '1')}, padding='same')(x)",
                       f"{name} = keras.Model(inp, layers.Dense(10)(layers.Flatten()(x)))"]
        return name

    def hostile(self) -> None:
        r = self.r
        k = self.rng.choice([50, 500, 5000, 50000])
        self.lines.append(r(
            "x = " + "(" * k + "1" + ")" * k,
            "x = " + "-" * k + "1",
            "x = " + "[" * k + "]" * k,
            "x = " + " + ".join(["1"] * k),
            "x = " + "not " * k + "1",
            "x = [" + ", ".join(["1"] * k) + "]",
            "x = " + "a." * k + "b",
            "x = " + "f(" * k + ")" * k,
            "x = lambda: " * min(k, 5000) + "1",
            "if x:\n" + "".join(" " * (i + 1) + "if x:\n" for i in range(min(k, 200))) + " " * 202 + "pass",
            "x = '" + "a" * (k * 100) + "'",
            "x = " + "1" * min(k, 4000),
            "def f():\n    return f()\nf()",
            "def f(n):\n    return f(n + 1) + f(n + 2)\nf(0)",
            "def f(n):\n    return [f(n - 1), f(n - 1)] if n else 1\nx = f(40)",
            "x = [1]\nfor i in range(10**6):\n    x = x + x",
            "x = 'ab'\nfor i in range(60):\n    x = x + x",
            "x = 2\nfor i in range(100):\n    x = x ** 2",
            "x = (10**18) * (10**18) * (10**18)",
            "x = list(range(10**8))",
            "x = [[0] * 10**4] * 10**4",
            "x = {i: i for i in range(10**7)}",
            "x = sum(range(10**9))",
            "x = 'a'.join(['b'] * 10**6)",
            "x = f'{1:>{10**9}}'",
            "x = '%*d' % (10**9, 1)",
            "x = '{:>1000000000}'.format(1)",
            "x = 'a' * 10**5\nx = x.replace('a', x)",
            "x = 'a' * 10**5\ny = x.replace('', x)",
            "x = 'a' * 10**5\ny = ''.join([x] * 10**5)",
            "x = '{:{}}'.format(1, 10**9)",
            "x = f'{1:0{10**9}d}'",
            "x = '%*.*f' % (10**9, 10**9, 1.0)",
            "x = '{:.1000000000f}'.format(1.5)",
            "x = b'a' * 10**9",
            "x = {}\nfor i in range(10**4):\n    x[i] = list(range(10**4))",
            "x = '{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}'\nfor i in range(8):\n    x = x.format(x)",
            "inp = keras.Input((8, 8, 3))\nx = inp\nfor i in range(300):\n    r = x\n    x = layers.Conv2D(4, 1)(x)\n"
            "    if x.shape[-1] != r.shape[-1]:\n        r = layers.Conv2D(x.shape[-1], 1)(r)\n    x = layers.add([x, r])\n"
            "m = keras.Model(inp, x)",
            "while 1:\n    model = keras.Sequential([model])" if k > 100 else "model = keras.Sequential()\nfor i in range(10000):\n    model.add(layers.Dense(1))",
            "model = keras.Sequential([layers.Dense(2)] * 5000)",
            "import keras\nm = keras.Sequential([keras.Input((2,))] + [keras.layers.Dense(2) for _ in range(3000)])",
            "x = keras.Input((8,))\nfor i in range(3000):\n    x = keras.layers.Dense(2)(x)\nm = keras.Model(keras.Input((8,)), x)",
            "x = keras.Input((8,))\nys = [x]\nfor i in range(200):\n    ys.append(keras.layers.add(ys[-2:] if len(ys) > 1 else ys))\nm = keras.Model(x, ys[-1])",
        ))

    def branches(self) -> str:
        """Models behind conditions cnnc cannot know: flags without defaults, sys.argv, the
        environment; nested, in elif chains, in match statements, deciding shapes."""
        r = self.r
        name = self.new("model")
        cond = r("args.arch == 'a'", "len(sys.argv) > 1", "os.environ.get('BIG')", "args.deep",
                 "sys.argv[-1] == 'x' and args.deep", "not args.deep", "args.width > 8",
                 "random.random() > 0.5", "args.arch in ('a', 'b')", "x_train.shape[-1] == 3")
        if "args." in cond and not any("parse_args" in line for line in self.lines):
            self.lines += ["import argparse", "parser = argparse.ArgumentParser()",
                           f"parser.add_argument('--arch'{r('', ', default=' + repr('a'), ', required=True')})",
                           f"parser.add_argument('--deep', action={r(repr('store_true'), repr('store_false'))})",
                           f"parser.add_argument('--width', type=int{r('', ', default=16', ', default=' + repr('4'))})",
                           "args = parser.parse_args()"]
        self.lines += ["import sys, os, random", f"if {cond}:",
                       f"    shape, units = {r(*SHAPES)}, {r('10', '2', '0', 'args.width' if 'args' in cond else '3')}",
                       r("elif len(sys.argv) > 2:\n    shape, units = (8, 8, 3), 1", "")]
        self.lines += ["else:", f"    shape, units = {r(*SHAPES)}, {r('4', '1', '-1')}"]
        form = self.rng.random()
        if form < 0.4:
            self.lines.append(f"{name} = keras.Sequential([keras.Input(shape), {self.layer()}, "
                              f"layers.Flatten(), layers.Dense(units)])")
        elif form < 0.7:
            self.lines += [f"match {r('units', 'shape', 'args.arch' if 'args' in cond else 'units')}:",
                           "    case 10 | 'a':",
                           f"        {name} = keras.Sequential([keras.Input(shape), layers.Dense(units)])",
                           "    case (a, b, c) if a > 4:",
                           f"        {name} = keras.Sequential([keras.Input(shape), {self.layer()}])",
                           "    case _:",
                           f"        {name} = {r('None', 'keras.Sequential()', 'keras.Sequential([keras.Input(shape)])')}"]
        else:
            self.lines += ["try:",
                           f"    {name} = keras.Sequential([keras.Input(shape), layers.Dense(units)])",
                           f"    {r('raise ValueError(units)', 'pass', 'assert units > 2', 'sys.exit(0)')}",
                           "except (ValueError, AssertionError) as e:",
                           f"    {name} = keras.Sequential([keras.Input((3,)), layers.Dense(2)])",
                           "finally:", f"    {r('pass', 'print(shape)', 'units = 0')}"]
        return name

    def sibling(self) -> str:
        """A builder in a module next to the script, or in a package (relative imports,
        a cycle, a module that is not there, one that is not Python)."""
        r = self.r
        fn = self.new("build")
        body = [f"def {fn}(width={r('8', '0', 'None', '10**9')}, shape={r(*SHAPES)}):",
                f"    return keras.Sequential([keras.Input(shape), {self.layer()}, layers.Dense(width)])"]
        header = r(*HEADERS)
        kind = self.rng.random()
        if kind < 0.4:
            self.files["helpers.py"] = header + "\n".join(body) + "\n" + r("", "from case import *\n",
                                                                           "import helpers\n", "x = (\n")
            self.lines.append(f"from helpers import {fn}{r('', ' as alias')}")
            call = fn if "alias" not in self.lines[-1] else "alias"
        elif kind < 0.8:
            self.files["pkg/__init__.py"] = r("", f"from .models import {fn}\n", "from . import models\n",
                                              "from .missing import x\n")
            self.files["pkg/blocks.py"] = header + "def block(x):\n    return layers.Dense(2)(x)\n"
            self.files["pkg/models.py"] = header + r("from .blocks import block\n", "from ..outside import y\n",
                                                     "from . import blocks\n", "from .models import *\n") \
                + "\n".join(body) + "\n"
            self.lines.append(r(f"from pkg.models import {fn}", f"from pkg import {fn}",
                                f"import pkg.models\n{fn} = pkg.models.{fn}"))
            call = fn
        else:
            self.lines.append(f"from {r('nothere', '.nothere', 'os.path')} import {fn}")
            call = fn
        name = self.new("model")
        self.lines.append(f"{name} = {call}({r('', '4', 'width=2', 'shape=(3,)', '*[]', '**{}')})")
        self.calls.append(f"{call}({r('', '3', 'width=5, shape=(4,)', 'nope=1', '1, 2, 3')})")
        return name

    def builder(self) -> None:
        """A builder the file defines but never calls (cnnc calls it, or --model does)."""
        r = self.r
        fn = self.new("make")
        self.lines += [f"def {fn}({r('', 'n=3', 'n', 'n=3, *, shape=(4,)', 'hp')}):",
                       f"    {r('m = keras.Sequential()', 'm = keras.Sequential([keras.Input((4,))])')}",
                       f"    m.add(layers.Dense({r('3', 'n', 'hp.Int(1)', '-1')}))",
                       f"    {r('return m', 'return', 'return m, m', 'raise ValueError(m)')}"]
        self.calls.append(self.r(f"{fn}()", f"{fn}(2)", f"{fn}(n=2)", f"{fn}(" * 50 + ")" * 50,
                                 "x" * 3000, "__import__('os').system('true')", f"{fn}(n=open('/etc/passwd'))",
                                 f"(lambda: {fn}())()", f"{fn}(*range(10**6))", f"[{fn}() for _ in range(10)][0]",
                                 "exit()", f"{fn}(n=10**100)"))

    def program(self) -> str:
        r = self.rng
        self.lines.append(self.r(*HEADERS))
        if r.random() < 0.5:
            self.data()
        models: list[str] = []
        classes: list[str] = []
        for _ in range(r.randint(1, 4)):
            form = r.random()
            if form < 0.22:
                models.append(self.sequential())
            elif form < 0.42:
                models.append(self.functional())
            elif form < 0.55:
                cls = self.custom_layer()
                classes.append(cls)
                m = self.new("model")
                self.lines.append(f"{m} = keras.Sequential([{self.input_expr()}, {cls}({self.r('', '8', 'filters=4', '-1', 'None')}), {self.layer()}])")
                models.append(m)
            elif form < 0.67:
                models.append(self.subclassed_model())
            elif form < 0.77:
                models.append(self.application())
            elif form < 0.87:
                models.append(self.nested(models))
            elif form < 0.91:
                models.append(self.helper())
            elif form < 0.95:
                models.append(self.branches())
            elif form < 0.97:
                models.append(self.sibling())
            elif form < 0.98:
                self.builder()
            else:
                self.hostile()
        if models and r.random() < 0.35:
            self.tfdata(r.choice(models))
        if models and r.random() < 0.3:
            self.lines.append(f"{r.choice(models)}.summary()")
        if classes and r.random() < 0.3:
            c = r.choice(classes)
            self.lines.append(f"_l = {c}()\n_l(_l)\n_m = keras.Sequential([{self.input_expr()}, _l, _l])")
        return "\n".join(self.lines) + "\n"


def generated_cases(rng: random.Random, n: int) -> list[dict]:
    cases = []
    for k in range(n):
        g = Gen(rng)
        text = g.program()
        if rng.random() < 0.2:
            text = mutate_python(rng, text, rng.randint(1, 2))
        cases.append({"id": f"gen-{SEED}-{k}", "kind": "py", "text": text, "files": g.files,
                      "calls": g.calls})
    return cases


# --- inputs: notebooks --------------------------------------------------------------------------

MAGICS = ["%matplotlib inline", "!pip install keras", "%load_ext tensorboard", "%%time", "%%capture",
          "%%bash\nls", "%%writefile f.py\nimport keras", "%time x = 1", "?keras", "keras?",
          "%%html\n<b>x</b>", "!ls\n!ls", "%%timeit\nx = 1", "%pip install x", "get_ipython().system('ls')",
          "%%", "%", "!", "%%time\n%%capture", "%%prun"]


def _cell(rng: random.Random, source, cell_type: str = "code") -> dict:
    as_list = rng.random() < 0.6
    if isinstance(source, str) and as_list:
        source = [ln + "\n" for ln in source.split("\n")]
        if source:
            source[-1] = source[-1][:-1]
    cell = {"cell_type": cell_type, "metadata": {}, "source": source}
    if cell_type == "code":
        cell["execution_count"] = rng.choice([None, 1, -1, "x"])
        cell["outputs"] = rng.choice([[], [{"output_type": "stream", "text": ["x"]}], None])
    return cell


def make_notebook(rng: random.Random, code: str) -> str:
    lines = code.split("\n")
    cuts = sorted(rng.sample(range(len(lines) + 1), min(len(lines) + 1, rng.randint(0, 8))))
    pieces, prev = [], 0
    for c in cuts + [len(lines)]:
        pieces.append("\n".join(lines[prev:c]))
        prev = c
    cells = []
    for p in pieces:
        if rng.random() < 0.25:
            cells.append(_cell(rng, rng.choice(["# Title", "text with `code`", "", "x = 1"]),
                               rng.choice(["markdown", "raw", "heading", "nope"])))
        if rng.random() < 0.2:
            p = rng.choice(MAGICS) + "\n" + p
        elif rng.random() < 0.1:
            cut = p.split("\n")
            k = rng.randrange(len(cut) + 1)
            p = "\n".join(cut[:k] + [rng.choice(MAGICS)] + cut[k:])
        cells.append(_cell(rng, p))
    # odd structures
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        odd = rng.choice([
            {"cell_type": "code"}, {"cell_type": "code", "source": None}, {"cell_type": "code", "source": 3},
            {"cell_type": "code", "source": [1, None, "x = 1"]}, {"cell_type": "code", "source": {"a": 1}},
            {"source": "x = 1"}, "x = 1", None, 7, [], {"cell_type": None, "source": "model = 1"},
            {"cell_type": "code", "source": ["x = (", "1"]}, {"cell_type": "code", "source": "\x00\x1b[2J"},
            {"cell_type": "code", "source": "def f(:\n"}, {"cell_type": "code", "input": "import keras"},
            {"cell_type": "code", "source": ["%%time\n", "model.summary()"]},
            {"cell_type": "code", "source": "\r\n".join(["import keras", "m = keras.Sequential()"])},
        ])
        cells.insert(rng.randrange(len(cells) + 1), odd)
    nb: object = {"cells": cells, "metadata": rng.choice([{}, None, {"kernelspec": {"name": "python3"}}]),
                  "nbformat": rng.choice([4, 3, 5, "4", None]), "nbformat_minor": 2}
    if rng.random() < 0.08:      # nbformat 3
        nb = {"worksheets": [{"cells": [dict(c, input=c.get("source")) if isinstance(c, dict) else c
                                        for c in cells]}], "nbformat": 3}
    text = json.dumps(nb, indent=rng.choice([None, 1]))
    if rng.random() < 0.12:      # broken or strange JSON
        text = rng.choice([
            text[:rng.randrange(len(text) + 1)],
            text.replace('"cells"', '"cels"', 1),
            text + "}",
            "[" * rng.choice([100, 10000, 200000]) + "]" * 3,
            '{"cells": ' + "[" * 50000 + "]" * 50000 + "}",
            '{"cells": [' + ", ".join(['{"cell_type": "code", "source": "x = 1"}'] * 20000) + "]}",
            "null", "3", '"cells"', "[]", "{}", '{"cells": {}}', '{"cells": null}', '{"worksheets": [null, 3]}',
            '{"cells": [{"cell_type": "code", "source": "' + "\\ud800" + '"}]}',
            '{"cells": [], "cells": 3}', "NaN", '{"cells": [1e999]}', text.replace("\n", "\x00", 1),
            "\ufeff" + text, text.encode("utf-8").decode("latin-1"),
        ])
    return text


def notebook_cases(rng: random.Random, n: int) -> list[dict]:
    nbs = notebooks()
    texts = corpus()
    cases = []
    for k in range(n):
        src = rng.random()
        if src < 0.35:
            name, text = rng.choice(nbs)
            nb = json.loads(text)
            for c in nb["cells"]:
                if c.get("cell_type") == "code" and rng.random() < 0.3:
                    s = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                    c["source"] = mutate_python(rng, s, 1)
            if rng.random() < 0.3:
                rng.shuffle(nb["cells"])
            if rng.random() < 0.2 and nb["cells"]:
                del nb["cells"][rng.randrange(len(nb["cells"]))]
            text = json.dumps(nb)
            if rng.random() < 0.1:
                text = text[:rng.randrange(len(text) + 1)]
        elif src < 0.65:
            text = make_notebook(rng, mutate_python(rng, rng.choice(texts)[1], rng.randint(0, 2)))
        else:
            text = make_notebook(rng, Gen(rng).program())
        cases.append({"id": f"nb-{SEED}-{k}", "kind": "nb", "text": text})
    return cases


# --- the tests ------------------------------------------------------------------------------------

def _with_cli(rng: random.Random, cases: list[dict], share: float) -> list[dict]:
    for c in cases:
        c["cli"] = rng.random() < share
    return cases


def test_corpus_is_clean(tmp_path):
    """The corpus itself (the baseline of every mutation), through check_script and the CLI."""
    cases = [{"id": f"corpus-{p.name}", "kind": "nb" if p.suffix == ".ipynb" else "py",
              "text": p.read_text(encoding="utf-8"), "cli": True}
             for p in sorted(SCRIPTS.glob("*.py")) + sorted(SCRIPTS.glob("*.ipynb"))]
    assert_clean(cases, run_cases(cases, tmp_path))


def test_fuzz_mutated_corpus(tmp_path):
    rng = random.Random(SEED)
    cases = _with_cli(rng, mutated_cases(rng, scale(160, 3000)), 0.08)
    assert_clean(cases, run_cases(cases, tmp_path))


def test_fuzz_generated_programs(tmp_path):
    rng = random.Random(SEED + 1)
    cases = _with_cli(rng, generated_cases(rng, scale(160, 3000)), 0.08)
    for c in cases:                   # --model calls run through the CLI
        c["cli"] = c["cli"] or (bool(c["calls"]) and rng.random() < 0.5)
    assert_clean(cases, run_cases(cases, tmp_path))


def test_fuzz_notebooks(tmp_path):
    rng = random.Random(SEED + 2)
    cases = _with_cli(rng, notebook_cases(rng, scale(80, 1500)), 0.08)
    assert_clean(cases, run_cases(cases, tmp_path))


def _find_case(case_id: str) -> dict:
    kind, seed, index = case_id.split("-")
    global SEED
    SEED = int(seed)
    index = int(index)
    if kind == "mut":
        rng = random.Random(SEED)
        return mutated_cases(rng, index + 1)[index]
    if kind == "gen":
        rng = random.Random(SEED + 1)
        return generated_cases(rng, index + 1)[index]
    rng = random.Random(SEED + 2)
    return notebook_cases(rng, index + 1)[index]


def _problem_keys(case: dict) -> set[str]:
    import tempfile
    signal.signal(signal.SIGALRM, _alarm)
    r = _check_case(dict(case, cli=case.get("cli", False)), Path(tempfile.mkdtemp()))
    return {re.sub(r"\d+", "N", p)[:60] for p in r["problems"]}


def minimize(case: dict, key: str | None = None) -> str:
    """Delta debugging over lines: the smallest text that keeps a problem of the case."""
    keys = _problem_keys(case)
    if not keys:
        return case["text"]
    key = key or sorted(keys)[0]
    lines = case["text"].split("\n")
    chunk = max(1, len(lines) // 2)
    while chunk >= 1:
        i, changed = 0, False
        while i < len(lines):
            trial = lines[:i] + lines[i + chunk:]
            if trial and key in _problem_keys(dict(case, text="\n".join(trial))):
                lines, changed = trial, True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1] == "WORKER":
        _worker(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "SHOW":      # python tests/test_fuzz_scripts.py SHOW gen-20240611-17
        c = _find_case(sys.argv[2])
        for name, text in (c.get("files") or {}).items():
            sys.stdout.write(f"# --- {name}\n{text}\n")
        if c.get("calls"):
            sys.stdout.write(f"# --- --model calls: {c['calls']}\n")
        sys.stdout.write(c["text"])
    elif sys.argv[1] == "MIN":       # ... MIN gen-20240611-17 [problem prefix]: a smaller case
        c = _find_case(sys.argv[2])
        c["cli"] = True
        if c["kind"] == "nb":           # a notebook's code cells as a script, if that keeps it
            try:
                from cnnc.frontends.python.source import read_notebook
                from cnnc.support.diagnostics import Reporter
                code = read_notebook("x.ipynb", c["text"], Reporter("x.ipynb")).text
                if _problem_keys(dict(c, kind="py", text=code)) & _problem_keys(c):
                    c = dict(c, kind="py", text=code)
            except Exception:  # noqa: BLE001
                pass
        print(sorted(_problem_keys(c)))
        sys.stdout.write(minimize(c, sys.argv[3] if len(sys.argv) > 3 else None) + "\n")
