"""Compare what the cnnc CLI reports for a corpus of Keras scripts with Keras's own truth
(dev only; no Keras needed, only the recorded <script>.truth.json files).

For each <script>.truth.json of a folder (tools/script_truth.py records them) this runs the
cnnc command line only -- `cnnc check FILE --format json`, `cnnc summary FILE --format json`
and, for a model cnnc refuses, `cnnc summary FILE --model VAR:LINE` for its first error --
so it does not depend on the package's internal modules. Each model Keras built gets one
outcome, compared as tests/test_python_frontend.py::test_corpus_matches_keras compares:

  exact    every row's class, output shape (without the batch), parameter count and name,
           the total and the model name are Keras's; `exact (settings refused)` when the
           rows are given and exact but cnnc also refuses a compile/fit setting of the model
           (tests/test_python_frontend.py accepts these: settings_only)
  wrong    cnnc gives the model with a different class, shape, parameter count or row
           count (the worst outcome); `wrong (names)` when only layer or model names differ
  refused  cnnc reports an error for it (the first error is recorded)
  missing  cnnc does not find the model and reports no error
  crash    cnnc exits 70 (internal error), prints a traceback, dies of a signal or times out

A script Keras 3 itself refuses (its truth has "error") gets one row, model "(keras error)":
exact when cnnc reports an error on the statement Keras failed at, refused when cnnc's
errors are elsewhere, wrong when cnnc reports no error at all.

Exit statuses are checked too: an error printed with exit 0, or exit 1 without an error.

    python tools/corpus_report.py tests/data/scripts2 [--cnnc .venv/bin/cnnc]
        [--json OUT.json] [--markdown OUT.md] [--also OTHER.json ...] [--jobs 8]

--markdown writes the totals, the exit-status issues, the refusals grouped by cause (CAUSES:
patterns on cnnc's first error) and the table of every model; whatever OUT.md already has
after the line MARKER is kept (notes written by hand). --also adds the totals of other
folders' --json results (e.g. tests/data/scripts) for comparison.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

OUTCOMES = ("exact", "exact (settings refused)", "wrong", "wrong (names)", "refused",
            "missing", "crash")
OP_TYPES = {"Add", "Subtract", "Multiply", "TrueDivide", "Negative"}  # cnnc's tensor-arithmetic ops
TIMEOUT = 600
# "path:12:5: error: ..." (scripts) or "path:cell 3:line 12:5: error: ..." (notebooks)
ERROR_LINE = re.compile(r"^.*?:(?P<loc>(?:cell \d+:line )?\d+):\d+: error: (?P<msg>.*)$")


def run(cmd: list[str], timeout: int = TIMEOUT) -> dict:
    """Run a cnnc command: exit status, stdout, stderr, and whether it crashed."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"rc": None, "stdout": "", "stderr": f"timeout after {timeout} s",
                "crash": "timeout"}
    crash = None
    if p.returncode == 70 or "internal error" in p.stderr:
        crash = "internal error (exit %d)" % p.returncode
    elif "Traceback (most recent call last)" in p.stderr:
        crash = "traceback (exit %d)" % p.returncode
    elif p.returncode < 0:
        crash = "signal %s" % signal.Signals(-p.returncode).name
    return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr, "crash": crash}


def crash_text(r: dict) -> str:
    lines = [l for l in r["stderr"].splitlines() if l.strip()]
    tail = next((l for l in reversed(lines) if "internal error" in l or "Error" in l), None)
    return r["crash"] + (": " + tail.strip() if tail else "")


def first_error(stderr: str) -> str | None:
    for line in stderr.splitlines():
        m = ERROR_LINE.match(line)
        if m:
            return f"{m['loc']}: {m['msg']}"
    for line in stderr.splitlines():
        if "error:" in line:
            return line.strip()
    return None


def where(diagnostic: dict) -> str:
    return "" if diagnostic.get("line") is None else f"{diagnostic['line']}: "


def statement_lines(script: Path, line: int) -> range:
    """The lines of the statement Keras's traceback names (a call may span lines)."""
    if script.suffix == ".py" and line:
        best = None
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.stmt) and node.lineno == line:
                if best is None or node.end_lineno < best.end_lineno:
                    best = node
        if best is not None:
            return range(line, best.end_lineno + 1)
    return range(line or 0, (line or 0) + 1)


def truth_cell(script: Path, line: int):
    """A notebook's (cell, line in cell) for a line of the code script_truth.py ran (its
    code cells joined by a blank line, magic lines left out)."""
    if not line:
        return None
    cells = json.loads(script.read_text(encoding="utf-8"))["cells"]
    at = 0
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        src = cell["source"]
        src = "".join(src) if isinstance(src, list) else src
        kept = [k for k, l in enumerate(src.split("\n"), start=1) if not l.lstrip().startswith(("%", "!"))]
        if at + len(kept) >= line:
            return number, kept[line - at - 1]
        at += len(kept) + 1
    return None


def rows_of(model: dict, values: dict | None = None) -> list[dict]:
    """Keras's model.layers rows from a summary JSON record (custom layers and nested
    models are one row; tensor-arithmetic operations are not layers in Keras). Open sizes
    (a size from data, kept symbolic) are evaluated at `values` when given."""
    ops = {l["name"] for l in model.get("layers", [])
           if l["type"] in OP_TYPES and "trainable" not in (l.get("config") or {})}
    rows = model.get("rows") or model.get("layers", [])
    at = (lambda v: v) if not values else (lambda v: open_value(v, values))  # noqa: E731
    shapes = {l["name"]: l.get("open_output_shape") for l in model.get("layers", [])} if values else {}
    return [{"name": r["name"], "class": r["type"],
             "shape": None if r.get("output_shape") is None else
             [at(d) for d in shapes.get(r["name"]) or r["output_shape"]][1:],
             "params": at(r["params"])} for r in rows if r["name"] not in ops]


def open_value(v, values: dict):
    """An open size or count as cnnc's JSON writes it ("577*num_labels", "floor(H/2) - 1")
    at the given values of its dimensions; v itself when it is not an expression."""
    if not isinstance(v, str):
        return v
    def ev(n):
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.Name):
            return values[n.id]
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.BinOp):
            a, b = ev(n.left), ev(n.right)
            ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                   ast.FloorDiv: lambda: a // b, ast.Div: lambda: (a, b)}
            return ops[type(n.op)]()
        if isinstance(n, ast.Call) and n.func.id in ("floor", "ceil") and len(n.args) == 1:
            a, b = ev(n.args[0])
            return a // b if n.func.id == "floor" else -(-a // b)
        raise ValueError(ast.dump(n))
    try:
        return ev(ast.parse(v.replace(",", ""), mode="eval"))
    except (KeyError, ValueError, SyntaxError, AttributeError, TypeError):
        return v


def data_sizes(truth: dict, got: dict) -> dict:
    """The values Keras's run gave the sizes cnnc keeps open (sizes from data): read where
    a row's output size is exactly one of the model's open dimensions."""
    names = {d["name"] for d in (got.get("dimensions") or [])}
    if not names:
        return {}
    values: dict = {}
    shapes = {l["name"]: l.get("open_output_shape") for l in got.get("layers", [])}
    for r, k in zip(rows_of(got), truth["layers"]):
        for size, seen in zip((shapes.get(r["name"]) or [])[1:], (k["output_shape"] or [])[1:]):
            if isinstance(size, str) and size in names and seen is not None:
                values.setdefault(size, seen)
    return values


def compare(truth: dict, got: dict) -> tuple[str, str]:
    """(outcome, detail) for a model cnnc built."""
    want = [{"name": l["name"], "class": l["class"],
             "shape": None if l["output_shape"] is None else list(l["output_shape"])[1:],
             "params": l["params"]} for l in truth["layers"]]
    values = data_sizes(truth, got)
    have = rows_of(got, values)
    key = lambda r: (r["class"], r["shape"], r["params"])  # noqa: E731
    if len(want) != len(have):
        return "wrong", f"{len(have)} rows, Keras {len(want)}" + first_diff(want, have, key)
    if [key(r) for r in want] != [key(r) for r in have]:
        return "wrong", first_diff(want, have, key).lstrip("; ")
    total = sum(r["params"] or 0 for r in have)
    if total != truth["total_params"]:
        return "wrong", f"total {total}, Keras {truth['total_params']}"
    names = [r["name"] for r in want] != [r["name"] for r in have]
    if names or got.get("model") != truth["name"]:
        if names:
            i = next(i for i, (a, b) in enumerate(zip(want, have)) if a["name"] != b["name"])
            return "wrong (names)", f"row {i}: {have[i]['name']}, Keras {want[i]['name']}"
        return "wrong (names)", f"model name {got.get('model')}, Keras {truth['name']}"
    return "exact", (f"open sizes from data at Keras's values: "
                     + ", ".join(f"{k} = {v}" for k, v in values.items())) if values else ""


def first_diff(want: list, have: list, key) -> str:
    for i, (a, b) in enumerate(zip(want, have)):
        if key(a) != key(b):
            return (f"; row {i} ({a['name']}): {b['class']} {b['shape']} {b['params']}, "
                    f"Keras {a['class']} {a['shape']} {a['params']}")
    return ""


def report_file(truth_path: Path, cnnc: str) -> dict:
    truth = json.loads(truth_path.read_text())
    script = truth_path.with_name(truth["source"])
    rel = script.name
    check = run([cnnc, "check", str(script), "--format", "json"])
    summary = run([cnnc, "summary", str(script), "--format", "json"])
    out = {"file": rel, "models": [], "exit_status": {}}
    crashed = check["crash"] or summary["crash"]
    errors, check_models = [], []
    if not check["crash"]:
        try:
            record = json.loads(check["stdout"])["files"][0]
            errors = [d for d in record["diagnostics"] if d["severity"] == "error"]
            check_models = record["models"]
        except (ValueError, KeyError, IndexError) as e:
            crashed = crashed or f"unreadable check JSON ({e})"
    summary_models = []
    if not summary["crash"]:
        try:
            summary_models = json.loads(summary["stdout"])["models"] if summary["stdout"] else []
        except (ValueError, KeyError) as e:
            crashed = crashed or f"unreadable summary JSON ({e})"
    # exit statuses: check prints errors to stdout (JSON) and exits 1 exactly when it has one
    for name, r, has_error in (("check", check, bool(errors)),
                               ("summary", summary, first_error(summary["stderr"]) is not None)):
        if r["crash"]:
            continue
        if has_error and r["rc"] == 0:
            out["exit_status"][name] = "error printed but exit 0"
        elif not has_error and r["rc"] == 1:
            out["exit_status"][name] = "exit 1 without an error"
        elif r["rc"] not in (0, 1):
            out["exit_status"][name] = f"exit {r['rc']}"
    out["check_rc"], out["summary_rc"] = check["rc"], summary["rc"]
    first_file_error = (where(errors[0]) + errors[0]["message"] if errors else None)
    if crashed:
        failed = check if check["crash"] else summary if summary["crash"] else None
        text = crash_text(failed) if failed else crashed
        rows = ([{"model": "(keras error)"}] if "error" in truth else
                [{"model": m["variable"]} for m in truth["models"]])
        for r in rows:
            out["models"].append({**r, "outcome": "crash", "detail": text})
        return out
    if "error" in truth:
        e = truth["error"]
        lines = statement_lines(script, e["line"])
        at = [d for d in errors if d.get("line") in lines]
        if script.suffix == ".ipynb":       # the truth's line counts its own joined code
            where_ = truth_cell(script, e["line"])
            at = [d for d in errors if where_ is not None and (d.get("cell"), d.get("cell_line")) == where_]
        if at:
            outcome, detail = "exact", where(at[0]) + at[0]["message"]
        elif errors:
            outcome, detail = "refused", first_file_error + f" (Keras: line {e['line']})"
        else:
            outcome, detail = "wrong", (f"no error; Keras: line {e['line']}: {e['type']}: "
                                        + e["message"].splitlines()[0][:160])
        out["models"].append({"model": "(keras error)", "outcome": outcome, "detail": detail,
                              "keras_error": f"{e['line']}: {e['type']}: "
                                             + e["message"].splitlines()[0][:200]})
        return out
    found: dict = {}
    for m in check_models:
        found.setdefault(m["variable"], []).append(m)
    built: dict = {}
    for m in summary_models:
        built.setdefault((m["variable"], m["line"]), m)
    for model in truth["models"]:
        var = model["variable"]
        label = var + (f" (in {model['function']}())" if model.get("function") else "")
        row = {"model": label}
        if "error" in model or model.get("layers") is None:
            row.update(outcome="missing",
                       detail="no layers in the truth: " + str(model.get("error")))
            out["models"].append(row)
            continue
        same = found.get(var, [])
        if not same:
            if errors:
                row.update(outcome="refused", detail=first_file_error + " (model not listed)")
            else:
                row.update(outcome="missing", detail="")
            out["models"].append(row)
            continue
        candidates = [built.get((c["variable"], c["line"])) for c in same]
        named = [c for c, b in zip(same, candidates)
                 if b is not None and b.get("model") == model["name"]]
        pick = named[-1] if named else same[-1]
        got = built.get((pick["variable"], pick["line"]))
        if not pick.get("ok") or got is None:
            r = run([cnnc, "summary", str(script), "--model", f"{var}:{pick['line']}",
                     "--format", "json"])
            msg = first_error(r["stderr"])
            if r["crash"]:
                row.update(outcome="crash", detail=crash_text(r))
            elif got is None:
                row.update(outcome="refused",
                           detail=msg or first_file_error or "no summary and no error")
            else:
                # the layers are given, an error is reported too (a compile/fit setting)
                outcome, detail = compare(model, got)
                if outcome == "exact" and msg:
                    outcome, detail = "exact (settings refused)", msg
                elif msg:
                    detail = (detail + "; also: " + msg).lstrip("; ")
                row.update(outcome=outcome, detail=detail)
            if not r["crash"] and r["rc"] == 0 and msg:
                out["exit_status"]["summary --model"] = "error printed but exit 0"
            out["models"].append(row)
            continue
        outcome, detail = compare(model, got)
        row.update(outcome=outcome, detail=detail)
        out["models"].append(row)
    return out


# Refusal causes, by a pattern on cnnc's first error (first match wins)
CAUSES = [
    (r"_obtain_input_shape",
     "Keras 2 applications helper `_obtain_input_shape(...)` not followed"),
    (r"int_shape\(\.\.\.\)` on a tensor",
     "`K.int_shape(tensor)` (keras/tensorflow.keras backend) not followed"),
    (r"np\.unique|len\(class_names\)|num_classes",
     "class count from data (`len(np.unique(y_train))`, ...)"),
    (r"asarray\(", "input shape from a NumPy array literal (`asarray([[...]]).reshape(...)`)"),
    (r"steps_per_epoch", "fit(steps_per_epoch=...) from data or unsupported: blocks the model"),
    (r"call\(\) cannot be followed: `tf\.",
     "subclassed model: `tf.nn.*`/`tf.*` op in call() not followed"),
    (r"comprehension's condition",
     "comprehension with a condition on layers (`type(layer) in ...`)"),
    (r"is not followed by cnnc$|\(\) is not followed",
     "a plain Python class/callable building layers not followed"),
    (r"slicing a tensor", "tensor slicing (`x[:, :, :, a:b]`) in a Lambda"),
    (r"set in the loop at line \d+ over `range\(", "loop over a range cnnc cannot know"),
    (r"cannot be the name '[\w.]+'", "attribute of a sibling module not followed"),
    (r"found no Keras model",
     "no model found: sibling-module import or unknown branch not followed"),
    (r"Keras 1's spelling|Keras 2's spelling",
     "cnnc stops at a later Keras 1/2 spelling than Keras"),
    (r"does not support the optimizer|does not support the Keras layer|Keras application cnnc does "
     r"not carry", "unsupported optimizer/layer/application"),
    (r"metrics must be names|loss must be a name|cannot be a call here",
     "compile() argument not a name"),
    (r"add_weight|has no call\(\)|called a second time|nested model with several|\.call\(\) cannot",
     "custom layer/model outside cnnc's scope"),
]
MARKER = "<!-- notes written by hand below this line are kept when the file is regenerated -->"


def cause_of(detail: str) -> str:
    for pattern, cause in CAUSES:
        if re.search(pattern, detail):
            return cause
    return "other: " + detail[:80]


def markdown(result: dict, also: list[dict], old_text: str) -> str:
    t = result["totals"]
    out = [f"# cnnc on {result['folder']}: baseline",
           "",
           f"Generated by `tools/corpus_report.py` on {result['date']} with cnnc at commit "
           f"`{result['cnnc_commit']}` (`{result['cnnc']}`), through the command line only "
           "(`cnnc check --format json`, `cnnc summary --format json`, `cnnc summary --model "
           "VAR:LINE` for a refused model's first error). Truth: each script's `.truth.json` "
           "(tools/script_truth.py, Keras "
           f"{result.get('keras', '3')}). Outcomes are defined in tools/corpus_report.py.",
           "", "## Totals", "",
           "| corpus | files | models | " + " | ".join(OUTCOMES) + " | exit-status issues |",
           "|---|---:|---:|" + "---:|" * len(OUTCOMES) + "---:|"]
    for r in [result, *also]:
        tt = r["totals"]
        out.append(f"| {r['folder']} | {tt['files']} | {tt['models']} | "
                   + " | ".join(str(tt[o]) for o in OUTCOMES)
                   + f" | {tt['exit_status_issues']} |")
    out += ["", "A script Keras 3 itself refuses counts as one row, model `(keras error)`.", ""]
    issues = [(f["file"], c, i) for f in result["files"] for c, i in f["exit_status"].items()]
    out += ["## Exit statuses", ""]
    out += [f"- `{f}`: `cnnc {c}`: {i}" for f, c, i in issues] or ["- none"]
    for r in also:
        for f in r["files"]:
            for c, i in f["exit_status"].items():
                out.append(f"- ({r['folder']}) `{f['file']}`: `cnnc {c}`: {i}")
    groups: dict = {}
    for f in result["files"]:
        for m in f["models"]:
            if m["outcome"] in ("refused", "exact (settings refused)", "missing", "crash"):
                groups.setdefault(cause_of(m["detail"]), []).append(
                    f"{f['file']}:{m['model']}" + (" (settings)" if m["outcome"] != "refused"
                                                    else ""))
    out += ["", "## Refusals by cause (grouped by cnnc's first error)", "",
            "| cause | models | where |", "|---|---:|---|"]
    for cause, where in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        out.append(f"| {cause} | {len(where)} | " + ", ".join(f"`{w}`" for w in where) + " |")
    out += ["", "## Every model", "", "| file | model | outcome | first error / difference |",
            "|---|---|---|---|"]
    for f in result["files"]:
        for m in f["models"]:
            detail = m["detail"].replace("|", "\\|").replace("\n", " ")
            if m.get("keras_error"):
                detail += f" — Keras: {m['keras_error']}".replace("|", "\\|")
            out.append(f"| {f['file']} | {m['model']} | {m['outcome']} | {detail} |")
    out += ["", MARKER]
    if MARKER in old_text:
        out.append(old_text.split(MARKER, 1)[1].strip("\n"))
    return "\n".join(out) + "\n"


def shown(path: str) -> str:
    """A path relative to the repository when it is inside it."""
    root = Path(__file__).resolve().parent.parent
    try:
        return str(Path(path).absolute().relative_to(root))
    except ValueError:
        return path


def git_commit(path: Path) -> str:
    """The last commit that changed the cnnc package in the checkout at `path`."""
    try:
        return subprocess.run(["git", "-C", str(path), "log", "-1", "--format=%h", "--",
                               "cnnc", "grammar", "pyproject.toml"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def totals(files: list[dict]) -> dict:
    counts = {o: 0 for o in OUTCOMES}
    for f in files:
        for m in f["models"]:
            counts[m["outcome"]] += 1
    counts["models"] = sum(len(f["models"]) for f in files)
    counts["files"] = len(files)
    counts["exit_status_issues"] = sum(1 for f in files if f["exit_status"])
    return counts


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--cnnc",
                    default=str(Path(__file__).resolve().parent.parent / ".venv/bin/cnnc"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--also", type=Path, action="append", default=[])
    ap.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1))
    args = ap.parse_args(argv)
    truths = sorted(args.folder.glob("*.truth.json"))
    with ThreadPoolExecutor(args.jobs) as pool:
        files = list(pool.map(lambda t: report_file(t, args.cnnc), truths))
    width = max((len(f["file"]) for f in files), default=10)
    for f in files:
        for m in f["models"]:
            print(f"{f['file']:<{width}}  {m['model'][:28]:<28}  {m['outcome']:<24}  "
                  f"{m['detail'][:110]}")
        for cmd, issue in f["exit_status"].items():
            print(f"{f['file']:<{width}}  {'(exit status)':<28}  {cmd}: {issue}")
    t = totals(files)
    print("\n" + ", ".join(f"{k}: {v}" for k, v in t.items()))
    keras = sorted({json.loads(p.read_text()).get("keras", "?") for p in truths})
    result = {"folder": str(args.folder), "date": datetime.date.today().isoformat(),
              "cnnc_commit": git_commit(Path(__file__).resolve().parent.parent),
              "cnnc": shown(args.cnnc), "keras": ", ".join(keras), "totals": t, "files": files}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown:
        old = args.markdown.read_text() if args.markdown.exists() else ""
        also = [json.loads(p.read_text()) for p in args.also]
        args.markdown.write_text(markdown(result, also, old))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
