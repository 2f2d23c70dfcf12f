"""Fuzzing names through every output format, and the limits C code has (issue 17).

Names: random layer, input and output-file names (any Unicode plane, lone surrogates,
control characters and escape sequences, bidi overrides, Graphviz escapes \\N \\G \\L,
markup, quotes, NUL, '/', up to 70,000 bytes) go through every command that writes them:
check, summary (text, JSON, Markdown), plot (DOT, Mermaid, SVG), compile (ONNX), export
(.keras), train (.npz and history). Every run must end 0, 1 or 2, and every file written
must be valid for its format (strict JSON without NaN, UTF-8 text, XML, an ONNX model the
checker passes, a zip Keras reads).

Limits: nesting (brackets in a .cnn, lists in a Keras config, If graphs in ONNX, HDF5
groups), thread counts and ONNX Loop trip counts; never a signal, never exit 70.

The harness is tests/test_fuzz_files.py's (a worker process under RLIMIT_AS calling
cnnc.cli.main in-process). CI runs a few dozen cases; CNNC_FUZZ=big a few thousand.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from tests.test_fuzz_files import SEED, Case, assert_clean, run_cases, scale

TOKENS = ["a", "b", "conv", "é", "日本", "\U0001f600", "\U00010348", "\u202e", "\u2066", "\u200b",
          "\ufeff", "\uffff", "\x1b[31m", "\x1b]0;title\x07", "\r", "\n", "\t", "\x00", "\x7f",
          "\x9b", "\\", "\\N", "\\G", "\\L", "\\E", "\\T", "\\H", "\\n", "\\l", "\\r", '"', "'",
          "<", ">", "&", "&amp;", "<b>", "]]>", "{", "}", "[", "]", "|", "#", ";", "`", "%", "$",
          "-->", "\ud800", "\udcff", "\udfff", "/", " ", "_", "-", ".", "..", ":", "\u0301", "x" * 200]


def random_name(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.05:
        return rng.choice(["", "a" * 70_000, "é" * 33_000, "日" * 21_000, "\udcff" * 3, "a/b"])
    name = "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 12)))
    if r < 0.12:
        name *= rng.randint(50, 400)
    return name


def file_part(rng: random.Random, name: str) -> str:
    """Half the time a file name made from `name` (no NUL or '/', at most 200 bytes, cut
    anywhere: a cut inside a character leaves bytes that are not UTF-8), else 'out'."""
    if rng.random() < 0.5:
        return "out"
    part = name.replace("/", "_").replace("\x00", "_")
    try:
        raw = part.encode("utf-8", "surrogateescape")[:200]
    except UnicodeEncodeError:           # a surrogate no file name byte stands for
        return "u"
    part = os.fsdecode(raw)
    return part if part not in ("", ".", "..") else "out"


def sequential(names: list[str]) -> str:
    return ("model m\ninput (6, 6, 1)\n"
            f"Conv2D(2, 3, name={ascii(names[0])})\n"
            "Flatten()\n"
            f"Dense(3, activation='softmax', name={ascii(names[1])})\n"
            "compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n")


def functional(names: list[str]) -> str:
    return (f"a = Input((4,), name={ascii(names[0])})\n"
            f"b = Input((4,), name={ascii(names[1])})\n"
            f"c = Concatenate(name={ascii(names[2])})([a, b])\n"
            f"d = Dense(2, name={ascii(names[3])})(c)\n"
            "Model([a, b], d)\n")


# what each command writes, and how a written file is checked
FORMATS = {
    ".json": "json", ".md": "text", ".txt": "text", ".dot": "text", ".mmd": "text", ".svg": "svg",
    ".onnx": "onnx", ".keras": "keras", ".npz": "npz", ".history.json": "json",
}


def name_cases(folder: Path, rng: random.Random, n: int, dot: bool) -> tuple[list[Case], dict]:
    data = folder / "data.npz"
    arrays = np.random.default_rng(0)
    np.savez(data, x_train=arrays.random((12, 6, 6, 1), dtype=np.float32),
             y_train=arrays.integers(0, 3, 12), x_test=arrays.random((4, 6, 6, 1), dtype=np.float32),
             y_test=arrays.integers(0, 3, 4))
    cases, outputs = [], {}
    for i in range(n):
        graph = rng.random() < 0.3
        names = [random_name(rng) for _ in range(4)]
        src = folder / f"n{i}.cnn"
        src.write_text((functional if graph else sequential)(names), encoding="utf-8")
        stem = folder / f"o{i}-{file_part(rng, names[0])}"
        plans = [(["check", str(src), "--format", "json"], []),
                 (["summary", str(src), "--format", "json", "-o", f"{stem}.json"], [f"{stem}.json"]),
                 (["summary", str(src), "--format", "markdown", "-o", f"{stem}.md"], [f"{stem}.md"]),
                 (["summary", str(src), "-o", f"{stem}.txt"], [f"{stem}.txt"]),
                 (["plot", str(src), "-o", f"{stem}.dot"], [f"{stem}.dot"]),
                 (["plot", str(src), "-o", f"{stem}.mmd"], [f"{stem}.mmd"]),
                 (["compile", str(src), "-q", "-o", f"{stem}.onnx"], [f"{stem}.onnx"]),
                 (["export", str(src), "-q", "-o", f"{stem}.keras"], [f"{stem}.keras"])]
        if dot:
            plans.append((["plot", str(src), "-o", f"{stem}.svg"], [f"{stem}.svg"]))
        if not graph:
            plans.append((["train", str(src), "--data", str(data), "-o", f"{stem}.npz", "-v", "0",
                           "--epochs", "1", "--no-checkpoint"], [f"{stem}.npz", f"{stem}.history.json"]))
        # every command for each name in the big runs; a few of them in CI
        chosen = plans if scale(0, 1) else rng.sample(plans, 3)
        for k, (argv, files) in enumerate(chosen):
            case = Case(f"name-{i}-{k}", argv, [str(src), str(data)])
            cases.append(case)
            outputs[case.id] = files
    return cases, outputs


def check_output(path: str) -> str | None:
    """What is wrong with a file a command wrote (None: it is valid for its format)."""
    p = Path(path)
    kind = next((FORMATS[s] for s in sorted(FORMATS, key=len, reverse=True) if p.name.endswith(s)), None)
    try:
        raw = p.read_bytes()
        if kind in ("json", "text", "svg"):
            text = raw.decode("utf-8")
            if kind == "json":
                json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
            if kind == "svg":
                ElementTree.fromstring(raw)
            if "\x1b" in text:
                return "an escape character in a text output"
        elif kind == "onnx":
            import onnx
            onnx.checker.check_model(onnx.load_model_from_string(raw))
        elif kind == "keras":
            import h5py
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                json.loads(z.read("config.json").decode("utf-8"),
                           parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
                h5py.File(io.BytesIO(z.read("model.weights.h5")), "r").close()
        elif kind == "npz":
            with np.load(io.BytesIO(raw)) as z:
                for k in z.files:
                    k.encode("utf-8")
                    z[k]
    except Exception as e:  # noqa: BLE001 - any failure to read it back is the finding
        return f"{type(e).__name__}: {str(e)[:200]}"
    return None


def test_fuzz_names(tmp_path):
    folder = tmp_path / "names"
    folder.mkdir()
    rng = random.Random(f"{SEED}-names")
    cases, outputs = name_cases(folder, rng, scale(40, 600), shutil.which("dot") is not None)
    results = run_cases(cases, tmp_path / "run")
    _report("names", cases, results)
    assert_clean(cases, results)
    bad = []
    for c in cases:
        if results[c.id]["rc"] != 0:
            continue
        for f in outputs[c.id]:
            problem = check_output(f) if Path(f).exists() else "not written"
            if problem:
                bad.append(f"{c.id} {c.argv[0]}: {Path(f).name[:60]!r}: {problem}")
    assert not bad, "\n".join(bad[:30])
    ok = sum(results[c.id]["rc"] == 0 for c in cases)
    assert ok >= len(cases) // 10        # names that every sink holds do get through


# --- C-level limits ---------------------------------------------------------------------------

def _deep_cnn(depth: int) -> str:
    return "input (4,)\nDense(" + "(" * depth + "3" + ")" * depth + ")\n"


def _deep_keras_json(depth: int) -> str:
    deep = "[" * depth + "3" + "]" * depth
    conv = {"class_name": "Conv2D", "name": "c", "config": {"name": "c", "filters": 2, "kernel_size": 0},
            "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {
                "keras_history": ["i", 0, 0]}}], "kwargs": {}}]}
    model = {"class_name": "Functional", "config": {"name": "f", "layers": [
        {"class_name": "InputLayer", "name": "i", "config": {"batch_shape": [None, 8, 8, 1], "name": "i"},
         "inbound_nodes": []}, conv], "input_layers": [["i", 0, 0]], "output_layers": [["c", 0, 0]]}}
    return json.dumps(model).replace('"kernel_size": 0', f'"kernel_size": {deep}')


def limit_cases(folder: Path, rng: random.Random, n: int) -> list[Case]:
    import onnx

    import cnnc
    from tests.test_hostile_budgets import deep_if_model, loop_model
    from tests.test_train import TINY
    (folder / "tiny.cnn").write_text(TINY)
    m = cnnc.loads(TINY)
    m.init_weights(0)
    m.save_weights(folder / "w.npz")
    m.to_onnx(folder / "tiny.onnx")
    x = np.random.default_rng(0).random((3, 6, 6, 1), dtype=np.float32)
    np.save(folder / "x.npy", x)
    np.savez(folder / "data.npz", x_train=x[..., 0], y_train=np.arange(3) % 3, x_test=x[..., 0],
             y_test=np.arange(3) % 3)
    cases = []
    for i in range(n):
        kind = rng.choice(["cnn", "keras", "onnx", "threads", "loop", "h5"])
        if kind == "cnn":
            path = folder / f"deep{i}.cnn"
            path.write_text(_deep_cnn(rng.choice([1, 50, 99, 100, 101, 1000, 100_000])))
            argv = [rng.choice(["check", "summary", "compile"]), str(path)]
        elif kind == "keras":
            path = folder / f"deep{i}.json"
            path.write_text(_deep_keras_json(rng.choice([1, 10, 150, 199, 200, 201, 900, 5000, 200_000])))
            argv = [rng.choice(["check", "summary", "import"]), str(path)]
            if argv[0] == "import":
                argv += ["--no-weights", "-o", str(folder / f"imp{i}.cnn")]
        elif kind == "onnx":
            path = folder / f"deep{i}.onnx"
            path.write_bytes(deep_if_model(rng.choice([1, 20, 33, 34, 40, 500, 3000])))
            argv = ["run", str(path), "-i", str(folder / "x.npy")]
        elif kind == "threads":
            threads = rng.choice(["1", "2", "64", "1000", "100000", str(2**31), str(2**63)])
            argv = rng.choice([["run", str(folder / "tiny.onnx"), "-i", str(folder / "x.npy")],
                               ["bench", str(folder / "tiny.cnn"), "--seconds", "0.01", "--no-torch",
                                "--batch", "2"],
                               ["evaluate", str(folder / "tiny.cnn"), "--weights", str(folder / "w.npz"),
                                "--data", str(folder / "data.npz"), "--runtime", "onnx"]])
            argv = [*argv, "--threads", threads] if argv[0] != "evaluate" else argv
        elif kind == "loop":
            path = folder / f"loop{i}.onnx"
            onnx.save(loop_model(rng.choice([0, 1, 10, 10**6, 10**12, 2**63 - 1])), str(path))
            argv = ["run", str(path), "-i", str(folder / "x.npy"), "--timeout", "1"]
        else:
            import h5py
            src = Path(__file__).parent / "data" / "keras" / "seq_cnn.h5"
            path = folder / f"h{i}.h5"
            shutil.copy(src, path)
            with h5py.File(path, "a") as f:
                g = f["model_weights"][next(iter(f["model_weights"]))]
                if rng.random() < 0.5:
                    g["loop"] = f["model_weights"] if rng.random() < 0.5 else g
                else:
                    for k in range(rng.choice([10, 63, 64, 65, 200])):
                        g = g.create_group("g")
            command = rng.choice(["compile", "export", "import"])
            suffix = {"compile": "onnx", "export": "keras", "import": "cnn"}[command]
            argv = [command, str(path), "-q", "-o", str(folder / f"h{i}.{suffix}")]
        cases.append(Case(f"limit-{i}-{kind}", argv, []))
    return cases


def test_fuzz_limits(tmp_path):
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "limits"
    folder.mkdir()
    cases = limit_cases(folder, random.Random(f"{SEED}-limits"), scale(30, 400))
    results = run_cases(cases, tmp_path / "run")
    _report("limits", cases, results)
    assert_clean(cases, results)


def _report(kind: str, cases: list[Case], results: dict) -> None:
    """CNNC_FUZZ_REPORT=PATH (dev): every outcome, to PATH.<kind>.json."""
    if os.environ.get("CNNC_FUZZ_REPORT"):
        Path(f"{os.environ['CNNC_FUZZ_REPORT']}.{kind}.json").write_text(json.dumps(
            [{**results.get(c.id, {}), "argv": [a[:200] for a in c.argv]} for c in cases], indent=1))
