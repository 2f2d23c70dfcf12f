"""Fuzzing every file cnnc reads: mutated .npz weights, ONNX models (foreign ones too),
IDX and .npz datasets, training checkpoints and Keras files, each fed to the command that
reads it.

Every case runs `cnnc.cli.main(argv)` in a worker process under a memory limit
(RLIMIT_AS) and a per-case time limit, and must end as cnnc promises: exit status 0, 1
or 2 (never 70, "internal error"), a message on stderr for 1 and 2, no traceback, and
its input files unchanged. A worker that dies (a crash in a C library) is restarted after
the case that killed it, and that case fails.

Seeded random mutation, so a failure names its case and reproduces: a few hundred cases
in CI; CNNC_FUZZ=big runs thousands (dev-only, minutes). CNNC_FUZZ_SEED picks the seed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import signal
import struct
import sys
import time
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KERAS_DATA = ROOT / "tests" / "data" / "keras"
BIG = os.environ.get("CNNC_FUZZ") == "big"
SEED = int(os.environ.get("CNNC_FUZZ_SEED", "20240610"))
MEMORY_LIMIT = 2 << 30          # address space of a worker (cnnc + onnxruntime use ~330 MiB)
CASE_SECONDS = 30.0             # a case that runs longer is a hang


def scale(ci: int, big: int) -> int:
    return big if BIG else ci


# --- the harness: cases run in a worker process, in-process calls of cnnc.cli.main -----------

@dataclass
class Case:
    id: str
    argv: list[str]
    watch: list[str] = field(default_factory=list)   # files that must stay unchanged
    allowed: tuple[int, ...] = (0, 1, 2)


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.blake2b(f.read(), digest_size=16).hexdigest()
    except OSError:
        return None


class _Timeout(BaseException):
    """Raised by SIGALRM in the worker: not an Exception, so cnnc cannot swallow it."""


def _alarm(signum, frame):
    raise _Timeout()


def _worker(cases_path: str, results_path: str) -> None:
    """Run the cases of `cases_path` in this process, one JSON line per case."""
    from cnnc.cli import main
    signal.signal(signal.SIGALRM, _alarm)
    cases = json.loads(Path(cases_path).read_text())
    with open(results_path, "a") as out:
        for c in cases:
            before = {p: _digest(p) for p in c["watch"]}
            out.write(json.dumps({"start": c["id"]}) + "\n")
            out.flush()
            so, se = io.StringIO(), io.StringIO()
            t0 = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
            try:
                with redirect_stdout(so), redirect_stderr(se):
                    rc = main(c["argv"])
            except SystemExit as e:      # argparse's --help and --version
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
            except _Timeout:
                rc = "timeout"
            except BaseException as e:  # noqa: BLE001 - whatever escapes main is a finding
                rc = f"raised {type(e).__name__}: {str(e)[:300]}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            seconds = time.monotonic() - t0
            changed = [p for p, d in before.items() if _digest(p) != d]
            # with --format json the model's diagnostics are the JSON on stdout
            message = se.getvalue() + (so.getvalue() if "json" in c["argv"] else "")
            out.write(json.dumps({"id": c["id"], "rc": rc, "seconds": round(seconds, 3),
                                  "stderr": message[-2000:], "changed": changed}) + "\n")
            out.flush()


def run_cases(cases: list[Case], workdir: Path) -> dict[str, dict]:
    """Every case's outcome, by id. A worker that dies is restarted after the case it died
    on, which gets rc 'crashed (...)'; one stuck (its results file not growing for twice
    the per-case limit) is killed."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "NO_COLOR": "1", "PYTHONPATH": str(ROOT),
           "CNNC_FASHION_MNIST_DIR": str(workdir / "no-fashion-mnist")}
    env.pop("CNNC_DEBUG", None)
    from tests.fuzz_workers import run_rounds  # here: the WORKER side runs as a script

    def crashed(case_id: str, status: str) -> dict:
        if status.startswith("killed"):
            status += ": hung or crashed"
        return {"id": case_id, "rc": f"crashed ({status})", "seconds": 0, "stderr": "", "changed": []}
    return run_rounds(__file__, [c.__dict__ for c in cases], workdir, "", env,
                      memory_limit=MEMORY_LIMIT, stall_seconds=2 * CASE_SECONDS + 60,
                      max_rounds=50, crashed=crashed)


def problems(cases: list[Case], results: dict[str, dict], max_seconds: float = 20.0) -> list[str]:
    """What went wrong, one line per case."""
    out = []
    for c in cases:
        r = results.get(c.id)
        if r is None:
            out.append(f"{c.id}: never ran")
            continue
        rc, err = r["rc"], r["stderr"]
        what = []
        if rc not in c.allowed:
            what.append(f"exit {rc}")
        if rc in (1, 2) and not err.strip():
            what.append("no message on stderr")
        if "Traceback (most recent call last)" in err:
            what.append("a traceback")
        if r["seconds"] > max_seconds:
            what.append(f"took {r['seconds']:.1f} s")
        if "out of memory" in err:
            what.append("not refused before allocating (out of memory)")
        if r["changed"]:
            what.append(f"changed inputs {r['changed']}")
        if what:
            last = err.strip().splitlines()[:2]
            out.append(f"{c.id}: {', '.join(what)} | argv {c.argv} | {' / '.join(last)[:300]}")
    return out


def assert_clean(cases: list[Case], results: dict[str, dict]) -> None:
    bad = problems(cases, results)
    assert not bad, f"{len(bad)} of {len(cases)} cases failed:\n" + "\n".join(bad[:40])


# --- mutation -----------------------------------------------------------------------------------

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


def mutate_bytes(rng: random.Random, data: bytes, rounds: int | None = None) -> bytes:
    b = bytearray(data)
    for _ in range(rounds or rng.randint(1, 4)):
        if not b:
            b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            continue
        op = rng.choice(["flip", "byte", "truncate", "insert", "delete", "dup", "int32", "int64",
                         "zero"])
        i = rng.randrange(len(b))
        if op == "flip":
            b[i] ^= 1 << rng.randrange(8)
        elif op == "byte":
            b[i] = rng.randrange(256)
        elif op == "truncate":
            del b[rng.randrange(len(b)):]
        elif op == "insert":
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
        elif op == "delete":
            del b[i:i + rng.randint(1, 64)]
        elif op == "dup":
            b[i:i] = b[i:i + rng.randint(1, 256)]
        elif op == "zero":
            b[i:i + rng.randint(1, 64)] = bytes(len(b[i:i + rng.randint(1, 64)]))
        else:
            n = 4 if op == "int32" else 8
            v = rng.choice(INTERESTING + [rng.getrandbits(8 * n)])
            b[i:i + n] = v.to_bytes(n, rng.choice(["little", "big"]))[:len(b[i:i + n])]
    return bytes(b)


def npy_bytes(descr: str, shape, fortran: bool = False, data: bytes = b"", version=(1, 0)) -> bytes:
    """An .npy file with exactly this header (which need not match the data)."""
    header = "{'descr': %r, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    body = header.encode("latin1")
    lenfmt = "<H" if version[0] == 1 else "<I"
    pre = 8 + struct.calcsize(lenfmt)
    pad = (64 - (pre + len(body) + 1) % 64) % 64
    body += b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(lenfmt, len(body)) + body + data


def npz_bytes(members: dict[str, bytes], compress: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def array_npy(a) -> bytes:
    import numpy as np
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(a), allow_pickle=True)
    return buf.getvalue()


HUGE_SHAPES = ["(4294967296, 4294967296)", "(-1,)", "(2**40,)", "(1099511627776,)",
               "(100000, 100000, 100)", "(0, 4294967296)", "()", "(3,", "'abc'", "(1.5,)",
               "(None,)", "(" + ",".join(["1"] * 64) + ")", "(9223372036854775807,)",
               "(99999999999999999999999,)"]
ODD_DESCRS = ["|O", "<c16", "|S3", "<U3", "|b1", "<f2", ">f4", "<f8", "|V8", "<M8[s]",
              "<m8[s]", "[('a', '<f4')]", "|u1", "<i8", "nonsense", "<f16", "|V0", "<f4"]


def mutate_arrays(rng: random.Random, arrays: dict) -> dict[str, bytes]:
    """Members (name -> .npy bytes) of an npz built from `arrays` with a structural
    mutation: dtypes, shapes, values, keys, headers."""
    import numpy as np
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    keys = list(arrays)
    members = {f"{k}.npy": array_npy(v) for k, v in arrays.items()}
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["dtype", "shape", "value", "drop", "add", "rename", "header", "scalar",
                         "empty", "pickle", "bytes", "name"])
        k = rng.choice(keys)
        a = arrays[k]
        name = f"{k}.npy"
        if op == "dtype":
            dt = rng.choice(["float16", "float64", "int8", "uint8", "int64", "bool", "complex64",
                             "U3", "S3", "datetime64[s]"])
            try:
                members[name] = array_npy(a.astype(dt))
            except (TypeError, ValueError):
                members[name] = array_npy(np.zeros(a.shape, dt))
        elif op == "shape":
            shape = list(a.shape)
            choice = rng.randrange(4)
            if choice == 0 and shape:
                shape[rng.randrange(len(shape))] += rng.choice([-1, 1, 7])
            elif choice == 1:
                shape.append(1)
            elif choice == 2 and shape:
                shape.pop()
            else:
                shape = shape[::-1]
            shape = [max(0, s) for s in shape]
            members[name] = array_npy(np.resize(a, shape) if a.size else np.zeros(shape, a.dtype))
        elif op == "value":
            b = np.array(a, dtype=a.dtype if a.dtype.kind == "f" else np.float64)
            if b.size:
                with np.errstate(over="ignore", invalid="ignore"):
                    b.flat[rng.randrange(b.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e38, -1e308])
            members[name] = array_npy(b)
        elif op == "drop":
            members.pop(name, None)
        elif op == "add":
            members[rng.choice(["extra.npy", f"{k}_1.npy", "x.npy", "a/b/c.npy"])] = array_npy(a)
        elif op == "rename":
            data = members.pop(name, array_npy(a))
            new = rng.choice([f"model/{k}", k.upper(), "", "../" + k, k + "\x00", "é" * 3, "x" * 300,
                              f"{k}/extra"])
            members[f"{new}.npy"] = data
        elif op == "header":
            data = a.tobytes()
            members[name] = npy_bytes(rng.choice(ODD_DESCRS), rng.choice(HUGE_SHAPES + [str(a.shape)]),
                                      rng.random() < 0.2, data if rng.random() < 0.8 else data[:7],
                                      rng.choice([(1, 0), (2, 0), (3, 0), (9, 9)]))
        elif op == "scalar":
            members[name] = array_npy(np.float32(1.5))
        elif op == "empty":
            members[name] = b""
        elif op == "pickle":
            members[name] = array_npy(np.array([{"a": 1}, None], dtype=object))
        elif op == "bytes":
            members[name] = mutate_bytes(rng, members.get(name, array_npy(a)))
        else:  # a member that is not .npy
            members[rng.choice([k, k + ".txt", k + ".npz"])] = members.pop(name, b"")
    return members


def deflate_bomb(members: dict[str, tuple[bytes, int]]) -> bytes:
    """A zip whose members are `head` followed by `zeros` zero bytes, deflated (zeros cost
    ~1/1000 of their size). Built by hand in a fraction of a second; the CRCs are not
    computed (a reader must refuse the sizes before it gets that far)."""
    import zlib
    chunk = 64 << 20
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(bytes(chunk)) + co.flush(zlib.Z_FULL_FLUSH)
    local, central = io.BytesIO(), io.BytesIO()
    for name, (head, zeros) in members.items():
        co = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = co.compress(head) + co.flush(zlib.Z_FULL_FLUSH)
        body += block * (zeros // chunk)
        body += co.compress(bytes(zeros % chunk)) + co.flush()
        size = len(head) + zeros
        crc = zlib.crc32(head) if not zeros else 0
        n = name.encode()
        offset = local.tell()
        local.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(body), size, len(n), 0)
                    + n + body)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(body),
                                  size, len(n), 0, 0, 0, 0, 0, offset) + n)
    cd = central.getvalue()
    count = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(cd), local.tell(), 0)
    return local.getvalue() + cd + end


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


# --- the files the cases start from ------------------------------------------------------------

DIGITS_NET = """model fuzz_digits
input (8, 8, 1)
Conv2D(4, (3, 3), activation='relu', padding='same')
MaxPooling2D((2, 2))
Flatten()
Dense(10, activation='softmax')
compile(optimizer=Adam(learning_rate=0.003), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
fit(epochs=1, batch_size=16)
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Valid files of every kind, small: the seeds the mutations start from."""
    import numpy as np

    import cnnc
    d = tmp_path_factory.mktemp("fuzz_base")
    net = d / "net.cnn"
    net.write_text(DIGITS_NET)
    m = cnnc.load(str(net))
    m.init_weights(0)
    m.save_weights(str(d / "w.npz"))
    m.to_onnx(str(d / "net.onnx"))
    rng = np.random.default_rng(0)
    x = rng.random((6, 8, 8, 1), dtype=np.float32)
    np.save(d / "x.npy", x)
    data = {"x_train": (rng.random((40, 8, 8)) * 255).astype(np.uint8),
            "y_train": rng.integers(0, 10, 40).astype(np.uint8),
            "x_test": (rng.random((12, 8, 8)) * 255).astype(np.uint8),
            "y_test": rng.integers(0, 10, 12).astype(np.uint8)}
    np.savez(d / "data.npz", **data)
    idx = d / "idx"
    idx.mkdir()
    for split, prefix in (("train", "train"), ("test", "t10k")):
        (idx / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(data[f"x_{split}"])))
        (idx / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(data[f"y_{split}"]))
    # a checkpoint: one epoch of training, stopped
    out = d / "trained.npz"
    from cnnc.cli import main
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()) as err:
        rc = main(["train", str(net), "--data", str(d / "data.npz"), "-o", str(out), "--epochs", "1",
                   "--seed", "1", "--no-test", "-v", "0", "--checkpoint-dir", str(d / "ckpt")])
    assert rc == 0, err.getvalue()
    return {"dir": d, "net": str(net), "weights": str(d / "w.npz"), "onnx": str(net.with_suffix(".onnx")),
            "x": str(d / "x.npy"), "data": str(d / "data.npz"), "data_arrays": data, "idx": idx,
            "ckpt": d / "ckpt" / "checkpoint.npz", "np": np}


def idx_bytes(a, code: int | None = None, dims=None) -> bytes:
    import numpy as np
    codes = {np.dtype("uint8"): 0x08, np.dtype("int8"): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
    a = np.asarray(a)
    code = codes[a.dtype] if code is None else code
    dims = a.shape if dims is None else dims
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d & 0xFFFFFFFF) for d in dims) + a.tobytes()


# --- generators, one per kind of file -----------------------------------------------------------

def weights_cases(base, rng: random.Random, n: int, out: Path) -> list[Case]:
    np = base["np"]
    arrays = dict(np.load(base["weights"]))
    seed_bytes = Path(base["weights"]).read_bytes()
    cases = []
    for i in range(n):
        if i % 3 == 0:
            data = mutate_bytes(rng, seed_bytes)
        else:
            data = npz_bytes(mutate_arrays(rng, arrays), compress=rng.random() < 0.5)
        w = write(out / f"w{i}.npz", data)
        cmd = rng.choice(["predict", "evaluate", "compile", "export"])
        argv = {"predict": ["predict", base["net"], "--weights", w, "--data", base["x"], "--show", "1"],
                "evaluate": ["evaluate", base["net"], "--weights", w, "--data", base["data"]],
                "compile": ["compile", base["net"], "--weights", w, "-o", str(out / f"w{i}.onnx")],
                "export": ["export", base["net"], "--weights", w, "-o", str(out / f"w{i}.keras")]}[cmd]
        cases.append(Case(f"weights-{i}-{cmd}", argv, [w, base["net"], base["x"], base["data"]]))
    return cases


def data_cases(base, rng: random.Random, n: int, out: Path) -> list[Case]:
    seed_bytes = Path(base["data"]).read_bytes()
    cases = []
    for i in range(n):
        if i % 3 == 0:
            data = mutate_bytes(rng, seed_bytes)
        else:
            data = npz_bytes(mutate_arrays(rng, base["data_arrays"]), compress=rng.random() < 0.5)
        p = write(out / f"data{i}.npz", data)
        cmd = rng.choice(["evaluate", "predict", "train"])
        argv = {"evaluate": ["evaluate", base["net"], "--weights", base["weights"], "--data", p],
                "predict": ["predict", base["net"], "--weights", base["weights"], "--data", p,
                            "--show", "2", "--split", rng.choice(["train", "test"])],
                "train": ["train", base["net"], "--data", p, "-o", str(out / f"t{i}.npz"), "--epochs", "1",
                          "--no-checkpoint", "-v", "0", "--seed", "0"]}[cmd]
        cases.append(Case(f"data-npz-{i}-{cmd}", argv, [p, base["net"], base["weights"]]))
    return cases


def npy_input_cases(base, rng: random.Random, n: int, out: Path) -> list[Case]:
    """.npy inputs for `cnnc predict --data x.npy` and `cnnc run --input`."""
    np = base["np"]
    x = np.load(base["x"])
    seed_bytes = Path(base["x"]).read_bytes()
    cases = []
    for i in range(n):
        r = rng.randrange(4)
        if r == 0:
            data = mutate_bytes(rng, seed_bytes)
        elif r == 1:
            data = npy_bytes(rng.choice(ODD_DESCRS), rng.choice(HUGE_SHAPES + [str(x.shape)]),
                             rng.random() < 0.2, x.tobytes()[:rng.choice([0, 7, 100, x.nbytes])])
        else:
            data = next(iter(mutate_arrays(rng, {"x": x}).values()), b"")
        p = write(out / f"in{i}.npy", data)
        if rng.random() < 0.5:
            argv = ["predict", base["net"], "--weights", base["weights"], "--data", p, "--show", "1"]
        else:
            argv = ["run", base["onnx"], "--input", p, "-q"] + (["--cast"] if rng.random() < 0.3 else [])
        cases.append(Case(f"npy-{i}-{argv[0]}", argv, [p, base["onnx"], base["weights"]]))
    return cases


def run_npz_input_cases(base, rng: random.Random, n: int, out: Path) -> list[Case]:
    np = base["np"]
    x = np.load(base["x"])
    cases = []
    for i in range(n):
        members = mutate_arrays(rng, {"x": x, "y": np.zeros(6)})
        p = write(out / f"in{i}.npz", npz_bytes(members, rng.random() < 0.5))
        argv = ["run", base["onnx"], "--input", p, "-o", str(out / f"y{i}.npz")]
        if rng.random() < 0.3:
            argv += ["--key", rng.choice(["x", "y", "nope", ""])]
        cases.append(Case(f"run-npz-{i}", argv, [p, base["onnx"]]))
    return cases


def onnx_bytes_cases(base, rng: random.Random, n: int, out: Path) -> list[Case]:
    seed_bytes = Path(base["onnx"]).read_bytes()
    cases = []
    for i in range(n):
        p = write(out / f"m{i}.onnx", mutate_bytes(rng, seed_bytes, rng.randint(1, 3)))
        cases.append(Case(f"onnx-bytes-{i}", ["run", p, "--input", base["x"], "-q"], [p, base["x"]]))
    return cases


ELEM_TYPES = ["FLOAT", "FLOAT16", "DOUBLE", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16",
              "UINT32", "UINT64", "BOOL", "STRING", "BFLOAT16", "COMPLEX64"]
NP_OF = {"FLOAT": "float32", "FLOAT16": "float16", "DOUBLE": "float64", "INT8": "int8",
         "INT16": "int16", "INT32": "int32", "INT64": "int64", "UINT8": "uint8", "UINT16": "uint16",
         "UINT32": "uint32", "UINT64": "uint64", "BOOL": "bool"}


def foreign_model(rng: random.Random, path: Path) -> tuple[str, list]:
    """A foreign ONNX model (odd ranks, types, several inputs or outputs, missing shapes),
    and the NumPy dtype of its first input."""
    from onnx import TensorProto, helper
    etype = rng.choice(ELEM_TYPES)
    et = getattr(TensorProto, etype)
    rank = rng.choice([0, 1, 2, 3, 4, 5, 6])
    dims = [rng.choice(["N", None, 1, 2, 3, 0, 8]) for _ in range(rank)]
    shape = None if rng.random() < 0.15 else dims
    n_in = rng.choice([1, 1, 1, 2, 3, 0])
    n_out = rng.choice([1, 1, 2, 3])
    inputs = [helper.make_tensor_value_info(f"in{k}", et, shape) for k in range(n_in)]
    nodes, outputs = [], []
    for k in range(n_out):
        src = f"in{k % n_in}" if n_in else None
        if src is None:
            nodes.append(helper.make_node("Constant", [], [f"out{k}"],
                                          value=helper.make_tensor("c", TensorProto.FLOAT, [2], [1, 2])))
            outputs.append(helper.make_tensor_value_info(f"out{k}", TensorProto.FLOAT, [2]))
        else:
            nodes.append(helper.make_node("Identity", [src], [f"out{k}"]))
            outputs.append(helper.make_tensor_value_info(f"out{k}", et, shape))
    graph = helper.make_graph(nodes, "foreign", inputs, outputs)
    opset = rng.choice([17, 17, 13, 1, 99])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = rng.choice([8, 8, 8, 3, 0, 99])
    path.write_bytes(model.SerializeToString())
    return NP_OF.get(etype, "float32"), dims


def onnx_foreign_cases(base, rng: random.Random, n: int, out: Path) -> list[Case]:
    np = base["np"]
    cases = []
    for i in range(n):
        m = out / f"foreign{i}.onnx"
        dtype, dims = foreign_model(rng, m)
        shape = [d if isinstance(d, int) else 2 for d in dims]
        if rng.random() < 0.3:
            shape = shape[:-1] if shape else [2]
        x_dtype = rng.choice([dtype, dtype, "float32", "float64", "int64", "bool", "float16", "uint8"])
        x = (np.random.default_rng(i).random(shape) * 3).astype(x_dtype)
        xp = out / f"foreign{i}.npy"
        np.save(xp, x)
        argv = ["run", str(m), "--input", str(xp)]
        if rng.random() < 0.5:
            argv += ["-o", str(out / f"fy{i}.{rng.choice(['npy', 'npz'])}")]
        if rng.random() < 0.3:
            argv.append("--cast")
        if rng.random() < 0.2:
            argv += ["--batch-size", str(rng.choice([1, 2, 1000]))]
        cases.append(Case(f"onnx-foreign-{i}", argv, [str(m), str(xp)]))
    return cases


def external_data_model(folder: Path, name: str = "ext") -> tuple[Path, Path]:
    """A valid model whose weight lives in an external data file beside it:
    y = x + w, x (batch, 16) float32."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.arange(16, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "ext",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])],
                              [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"{name}.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=f"{name}.bin", size_threshold=0)
    return path, folder / f"{name}.bin"


def _set_location(path: Path, **fields) -> None:
    import onnx
    m = onnx.load_model(str(path), load_external_data=False)
    t = m.graph.initializer[0]
    entries = {e.key: e.value for e in t.external_data}
    entries.update({k: str(v) for k, v in fields.items()})
    del t.external_data[:]
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    path.write_bytes(m.SerializeToString())


def onnx_external_cases(base, rng: random.Random, n: int, out: Path) -> list[Case]:
    np = base["np"]
    x = out / "ext_x.npy"
    np.save(x, np.ones((3, 16), np.float32))
    cases = []
    fifo = out / "ext.fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    tweaks = [{}, {"location": "missing.bin"}, {"location": "../../../../etc/passwd"},
              {"location": "/etc/passwd"}, {"location": "/dev/zero"}, {"location": str(fifo)},
              {"location": "."}, {"offset": 10**12}, {"length": 10**12}, {"length": -5},
              {"offset": "x"}, {"location": ""}, {"location": "sub/../ext{i}.bin"},
              {"location": "ext{i}.bin\x00.txt"}]
    for i in range(n):
        m, b = external_data_model(out, f"ext{i}")
        tweak = tweaks[i % len(tweaks)] if i < len(tweaks) else rng.choice(tweaks)
        tweak = {k: (v.format(i=i) if isinstance(v, str) else v) for k, v in tweak.items()}
        if tweak:
            _set_location(m, **tweak)
        mutated = i >= len(tweaks) and rng.random() < 0.5
        if mutated:
            b.write_bytes(mutate_bytes(rng, b.read_bytes()))
        argv = ["run", str(m), "--input", str(x), "-q", "-o", str(out / f"ext_y{i}.npy")]
        # a mutated data file may be truncated: onnxruntime refuses such a model too
        # ("out of bounds or can not be read in full"), so exit 2 is right for it
        allowed = (0,) if not tweak and not mutated else (0, 2)
        cases.append(Case(f"onnx-external-{i}-{sorted(tweak.items())}", argv, [str(m), str(x)], allowed))
    return cases


def idx_cases(base, rng: random.Random, n: int, out: Path) -> list[Case]:
    np = base["np"]
    arrays = base["data_arrays"]
    cases = []
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    for i in range(n):
        folder = out / f"idx{i}"
        folder.mkdir()
        files = {k: idx_bytes(v) for k, v in arrays.items()}
        k = rng.choice(list(files))
        op = rng.choice(["bytes", "code", "ndim", "dims", "huge", "zero", "bomb", "gzbytes", "drop",
                         "labels3d", "float"])
        a = arrays[k]
        if op == "bytes":
            files[k] = mutate_bytes(rng, files[k])
        elif op == "code":
            files[k] = bytes([0, 0, rng.choice([0, 1, 7, 0x0A, 0x0F, 0xFF]), a.ndim]) + files[k][4:]
        elif op == "ndim":
            files[k] = files[k][:3] + bytes([rng.choice([0, 1, 2, 4, 9, 255])]) + files[k][4:]
        elif op == "dims":
            dims = list(a.shape)
            dims[rng.randrange(len(dims))] += rng.choice([-1, 1, 100])
            files[k] = idx_bytes(a, dims=dims)
        elif op == "huge":
            dims = list(a.shape)
            dims[rng.randrange(len(dims))] = rng.choice([2**32 - 1, 2**31, 10**9, 2**20])
            files[k] = idx_bytes(a, dims=dims)
        elif op == "zero":
            files[k] = idx_bytes(a[:0])
        elif op == "float":
            files[k] = idx_bytes(a.astype(">f4"))
        elif op == "labels3d":
            files[k] = idx_bytes(np.zeros((len(a), 2, 2), np.uint8))
        elif op == "drop":
            files.pop(k)
        if op == "bomb":
            # a header saying 40 images, then 256 MiB (or endless members) of zeros
            chunk = gzip.compress(bytes(16 << 20), 9)
            head = gzip.compress(idx_bytes(a))
            blob = head + chunk * rng.choice([1, 16])
            (folder / (names[k] + ".gz")).write_bytes(blob)
            files.pop(k)
        elif op == "gzbytes":
            (folder / (names[k] + ".gz")).write_bytes(mutate_bytes(rng, gzip.compress(files.pop(k))))
        for key, data in files.items():
            gz = rng.random() < 0.3
            (folder / (names[key] + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
        cmd = rng.choice(["evaluate", "predict", "train"])
        argv = {"evaluate": ["evaluate", base["net"], "--weights", base["weights"], "--data", str(folder)],
                "predict": ["predict", base["net"], "--weights", base["weights"], "--data", str(folder),
                            "--show", "1"],
                "train": ["train", base["net"], "--data", str(folder), "-o", str(out / f"idx{i}.npz"),
                          "--epochs", "1", "--no-checkpoint", "-v", "0"]}[cmd]
        watch = [str(p) for p in folder.iterdir()]
        cases.append(Case(f"idx-{i}-{op}-{k}-{cmd}", argv, watch))
    return cases


def checkpoint_cases(base, rng: random.Random, n: int, out: Path) -> list[Case]:
    np = base["np"]
    src = base["ckpt"]
    seed_bytes = src.read_bytes()
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["meta.json"]).decode())
    cases = []
    for i in range(n):
        folder = out / f"ckpt{i}"
        folder.mkdir()
        r = rng.randrange(3)
        if r == 0:
            data = mutate_bytes(rng, seed_bytes)
        elif r == 1:
            m = mutate_json(rng, json.loads(json.dumps(meta)), keep=("model_fingerprint", "data_fingerprint",
                                                                      "settings", "compile", "format",
                                                                      "version"))
            members = {f"{k}.npy": array_npy(v) for k, v in arrays.items()}
            members["meta.json.npy"] = array_npy(np.frombuffer(json.dumps(m).encode(), np.uint8))
            data = npz_bytes(members)
        else:
            data = npz_bytes(mutate_arrays(rng, arrays))
        (folder / "checkpoint.npz").write_bytes(data)
        argv = ["train", base["net"], "--data", base["data"], "-o", str(out / f"ck{i}.npz"), "--epochs", "2",
                "--seed", "1", "--no-test", "-v", "0", "--checkpoint-dir", str(folder), "--resume"]
        cases.append(Case(f"checkpoint-{i}", argv, [base["data"], base["net"]]))
    return cases


JSON_VALUES = [None, -1, 0, 1, 2**63, -(2**70), 1e308, float("inf"), float("nan"), "", "x" * 50, "relu",
               "same", [], [None], [1, 2, 3], [-1, -1], {}, {"a": 1}, True, False, 3.5,
               [[[[[[[[[[]]]]]]]]]], "\x1b[31mred", "é"]


def mutate_json(rng: random.Random, doc, keep=(), rounds: int | None = None):
    """Replace, delete or duplicate random nodes of a JSON document (not the top-level
    keys in `keep`)."""
    for _ in range(rounds or rng.randint(1, 4)):
        nodes = []

        def walk(v, parent, key, depth):
            if parent is not None and not (depth == 1 and key in keep):
                nodes.append((parent, key))
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    if not (depth == 0 and k2 in keep):
                        walk(v2, v, k2, depth + 1)
            elif isinstance(v, list):
                for k2, v2 in enumerate(v):
                    walk(v2, v, k2, depth + 1)
        walk(doc, None, None, 0)
        if not nodes:
            break
        parent, key = rng.choice(nodes)
        op = rng.random()
        if op < 0.6:
            parent[key] = json.loads(json.dumps(rng.choice(JSON_VALUES)))
        elif op < 0.8:
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif op < 0.9 and isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(parent[key])))
        else:
            v = parent[key]
            parent[key] = -v if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
    return doc


def keras_cases(base, rng: random.Random, n: int, out: Path) -> list[Case]:
    np = base["np"]
    files = {p.name: p.read_bytes() for p in KERAS_DATA.iterdir()
             if p.suffix in (".keras", ".h5", ".json") and p.name != "expected.json"}
    xs = {}
    for shape in ((12, 12, 1), (8, 8, 3), (8, 8, 2)):
        xs[shape] = out / f"kx_{'x'.join(map(str, shape))}.npy"
        np.save(xs[shape], np.random.default_rng(0).random((2, *shape), dtype=np.float32))
    shape_of = {"seq_cnn": (12, 12, 1), "residual": (8, 8, 3), "keras2": (8, 8, 2),
                "fcn_open": (8, 8, 3)}      # open sizes: 8x8 is one that works
    cases = []
    for i in range(n):
        name = rng.choice(sorted(files))
        stem = name.split(".")[0]
        data = files[name]
        suffix = name[len(stem):]
        r = rng.random()
        if suffix == ".keras" and r < 0.6:
            data = _mutate_keras_zip(rng, data)
        elif suffix == ".json" and r < 0.7:
            doc = mutate_json(rng, json.loads(data))
            data = json.dumps(doc).encode()
        elif suffix == ".h5" and r < 0.5:
            data = _mutate_h5_config(rng, KERAS_DATA / name, out / f"tmp{i}.h5")
        else:
            data = mutate_bytes(rng, data, rng.randint(1, 3))
        p = write(out / f"k{i}{suffix}", data)
        x = str(xs[shape_of[stem.split("_legacy")[0]]])
        if suffix == ".weights.h5" or "weights" in name:
            model = str(KERAS_DATA / (stem.split("_legacy")[0] + ".json"))
            argv = ["predict", model, "--weights", p, "--data", x, "--show", "1"]
        else:
            argv = rng.choice([["summary", p], ["check", p], ["import", p, "-o", str(out / f"k{i}.cnn")],
                               ["predict", p, "--data", x, "--show", "1"]])
            if suffix == ".json" and argv[0] == "predict":
                argv = ["summary", p]
        cases.append(Case(f"keras-{i}-{name}-{argv[0]}", argv, [p, x]))
    return cases


def _mutate_keras_zip(rng: random.Random, data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    key = rng.choice(["config.json", "config.json", "metadata.json", "model.weights.h5"])
    if key in members and key.endswith(".json"):
        members[key] = json.dumps(mutate_json(rng, json.loads(members[key]))).encode()
    elif key in members:
        members[key] = mutate_bytes(rng, members[key])
    if rng.random() < 0.1:
        members.pop(rng.choice(sorted(members)))
    return npz_bytes(members, compress=rng.random() < 0.5)


def _mutate_h5_config(rng: random.Random, src: Path, tmp: Path) -> bytes:
    import shutil

    import h5py
    shutil.copyfile(src, tmp)
    with h5py.File(tmp, "r+") as f:
        if "model_config" in f.attrs:
            doc = json.loads(f.attrs["model_config"])
            f.attrs["model_config"] = json.dumps(mutate_json(rng, doc))
        else:
            f.attrs["junk"] = "x"
    return tmp.read_bytes()


# --- hand-made hostile files: bombs, huge declared sizes, not regular files --------------------

def hostile_cases(base, out: Path) -> list[Case]:
    np = base["np"]
    cases = []
    fifo = out / "fifo.npz"
    os.mkfifo(fifo)
    # an npz whose one member inflates to 3 GiB of zeros (4 MiB on disk)
    bomb = out / "bomb.npz"
    bomb.write_bytes(deflate_bomb({"x_train.npy": (npy_bytes("|u1", (3 << 30,)), 3 << 30),
                                   "y_train.npy": (array_npy(np.zeros(1, np.uint8)), 0)}))
    # an npz member declaring 5 TB in its .npy header
    liar = write(out / "liar.npz", npz_bytes({"x_train.npy": npy_bytes("<f4", (10**6, 10**6)),
                                              "y_train.npy": array_npy(np.zeros(3))}))
    big_npy = write(out / "big.npy", npy_bytes("<f4", (2**20, 2**20, 8)))
    # gzip IDX bomb: concatenated gzip members of zeros
    gz = out / "gzbomb"
    gz.mkdir()
    member = gzip.compress(bytes(64 << 20), 9)
    (gz / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros((0, 8, 8), np.uint8), dims=(2**20, 8, 8))) + member * 64)
    (gz / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(2**20, np.uint8)))
    huge = out / "hugeidx"
    huge.mkdir()
    (huge / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros(0, np.uint8), dims=(2**31, 2**16, 2**16)))
    (huge / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(0, np.uint8), dims=(2**31,)))
    netw = ["predict", base["net"], "--weights"]
    specs = [
        ("weights-fifo", netw + [str(fifo), "--data", base["x"]]),
        ("weights-dev-zero", netw + ["/dev/zero", "--data", base["x"]]),
        ("weights-dir", netw + [str(out), "--data", base["x"]]),
        ("weights-bomb", netw + [str(bomb), "--data", base["x"]]),
        ("data-bomb", ["evaluate", base["net"], "--weights", base["weights"], "--data", str(bomb)]),
        ("data-liar", ["evaluate", base["net"], "--weights", base["weights"], "--data", liar]),
        ("data-fifo", ["evaluate", base["net"], "--weights", base["weights"], "--data", str(fifo)]),
        ("predict-big-npy", ["predict", base["net"], "--weights", base["weights"], "--data", big_npy]),
        ("run-big-npy", ["run", base["onnx"], "--input", big_npy]),
        ("run-fifo-input", ["run", base["onnx"], "--input", str(fifo)]),
        ("run-dev-zero-input", ["run", base["onnx"], "--input", "/dev/zero"]),
        ("run-bomb-input", ["run", base["onnx"], "--input", str(bomb)]),
        ("run-dev-urandom", ["run", "/dev/urandom", "--input", base["x"]]),
        ("run-fifo-model", ["run", str(fifo), "--input", base["x"]]),
        ("idx-gzip-bomb", ["evaluate", base["net"], "--weights", base["weights"], "--data", str(gz),
                           "--split", "train"]),
        ("idx-huge-dims", ["evaluate", base["net"], "--weights", base["weights"], "--data", str(huge),
                           "--split", "train"]),
        ("checkpoint-bomb", ["train", base["net"], "--data", base["data"], "-o", str(out / "cb.npz"),
                             "--resume", "--checkpoint-dir", str(_ckpt_dir(out, "cb", bomb.read_bytes()))]),
        ("checkpoint-fifo", ["train", base["net"], "--data", base["data"], "-o", str(out / "cf.npz"),
                             "--resume", "--checkpoint-dir", str(_ckpt_fifo(out))]),
        ("keras-fifo", ["summary", str(_fifo(out, "m.keras"))]),
        ("keras-weights-fifo", ["predict", str(KERAS_DATA / "seq_cnn.json"), "--weights",
                                str(_fifo(out, "w.weights.h5")), "--data", base["x"]]),
    ]
    for name, argv in specs:
        cases.append(Case(f"hostile-{name}", argv, [base["weights"], base["x"], base["onnx"]], (1, 2)))
    return cases


def _fifo(out: Path, name: str) -> Path:
    p = out / name
    os.mkfifo(p)
    return p


def _ckpt_dir(out: Path, name: str, data: bytes) -> Path:
    d = out / name
    d.mkdir()
    (d / "checkpoint.npz").write_bytes(data)
    return d


def _ckpt_fifo(out: Path) -> Path:
    d = out / "ckfifo"
    d.mkdir()
    os.mkfifo(d / "checkpoint.npz")
    return d


# --- the tests -----------------------------------------------------------------------------------

GENERATORS = {
    "weights": (weights_cases, 40, 1500),
    "data-npz": (data_cases, 30, 1000),
    "npy-input": (npy_input_cases, 30, 1000),
    "run-npz": (run_npz_input_cases, 20, 600),
    "onnx-bytes": (onnx_bytes_cases, 25, 1000),
    "onnx-foreign": (onnx_foreign_cases, 40, 1200),
    "onnx-external": (onnx_external_cases, 14, 150),
    "idx": (idx_cases, 30, 800),
    "checkpoint": (checkpoint_cases, 25, 600),
    "keras": (keras_cases, 40, 1500),
}


@pytest.fixture(scope="module")
def outcomes(base, tmp_path_factory):
    """Every generated case, run once (one worker for all: its start-up is the slow part)."""
    work = tmp_path_factory.mktemp("fuzz_cases")
    cases: dict[str, list[Case]] = {}
    for kind, (gen, ci, big) in GENERATORS.items():
        folder = work / kind
        folder.mkdir()
        cases[kind] = gen(base, random.Random(f"{SEED}-{kind}"), scale(ci, big), folder)
    hostile = work / "hostile"
    hostile.mkdir()
    cases["hostile"] = hostile_cases(base, hostile)
    every = [c for cs in cases.values() for c in cs]
    results = run_cases(every, work / "run")
    if os.environ.get("CNNC_FUZZ_REPORT"):  # dev: every outcome, for a look at times and messages
        Path(os.environ["CNNC_FUZZ_REPORT"]).write_text(json.dumps(
            [{**results.get(c.id, {}), "argv": c.argv} for c in every], indent=1))
    return cases, results


@pytest.mark.parametrize("kind", [*GENERATORS, "hostile"])
def test_fuzz_files(outcomes, kind):
    cases, results = outcomes
    assert_clean(cases[kind], results)


def test_external_data_model_runs(base, tmp_path):
    """A valid model whose weights live in a file beside it runs, from any working folder."""
    np = base["np"]
    m, _ = external_data_model(tmp_path)
    x = tmp_path / "x.npy"
    np.save(x, np.ones((3, 16), np.float32))
    results = run_cases([Case("ext", ["run", str(m), "--input", str(x), "-o", str(tmp_path / "y.npy")],
                              [str(m)], (0,))], tmp_path / "run")
    assert_clean([Case("ext", [], [], (0,))], results)
    assert np.array_equal(np.load(tmp_path / "y.npy"), 1 + np.arange(16, dtype=np.float32)[None].repeat(3, 0))


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "WORKER":
    _worker(sys.argv[2], sys.argv[3])
