"""Check models without running anything: .cnn files, Keras model files (.keras, .h5,
.json) and Keras scripts and notebooks (.py, .ipynb, read with Python's ast, never run).
Every shape is inferred and every problem reported, with its place in the file.

Folders are searched: their .cnn files, Keras model files, and the scripts and notebooks
that use Keras (others are skipped unread past a quick look), honouring .gitignore and
leaving out hidden folders, virtual environments and build folders; --exclude leaves out
more. The files are checked in parallel on the machine's cores; the output is in the order
of the paths. A clean file prints nothing; with several files or a folder, a last line
counts files, models, errors and warnings.

Exit status: 0 no errors (warnings allowed; -W counts them as errors), 1 a model has
errors, 2 a file or folder could not be read or bad usage, 70 a bug in cnnc while checking
a file (the other files are still checked and reported).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

from cnnc.support.diagnostics import UsageError, use_color
from cnnc.support.names import shown_path

HELP = "check models (.cnn, Keras files, scripts and notebooks; folders too) and report every problem"
FORMATS = ("text", "json", "sarif", "github")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="files to check (.cnn; Keras model files .keras, .h5, .json; Keras scripts "
                        "and notebooks .py, .ipynb) or folders to search for them")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text: diagnostics on stderr (default); json: a report on stdout; sarif: "
                        "SARIF 2.1.0 for code scanning; github: GitHub Actions annotations")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the json, sarif or github output to FILE (atomically) instead of stdout")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="leave out paths matching this gitignore-style pattern (repeatable), "
                        "e.g. --exclude 'legacy/' --exclude '*_old.py'")
    p.add_argument("--skip-non-models", action="store_true",
                   help="treat files named on the command line as those found in folders: skip "
                        "code without Keras and files that are not Keras models instead of "
                        "reporting them (for pre-commit, which names every changed file)")
    p.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="check with N processes (default: one per core; 1 checks in this process)")
    p.add_argument("-W", "--warnings-as-errors", dest="werror", action="store_true",
                   help="exit 1 when there are warnings too")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print errors only: no warnings, notes or summary line")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="Keras scripts: list the statements skipped because they build no model")
    from cnnc.commands._common import add_source_arguments
    add_source_arguments(p, model=False)


def run(args: argparse.Namespace) -> int:
    from cnnc.commands import _formats as F
    from cnnc.commands._jobs import FileResult, Options, check_all, default_jobs
    from cnnc.commands._walk import collect

    start = time.perf_counter()
    jobs = _jobs(args.jobs, default_jobs())
    if args.output is not None and args.format == "text":
        raise UsageError("-o is for the json, sarif and github formats; text goes to stderr",
                         ["add --format json (or sarif, github), or redirect: 2> FILE"])
    from cnnc.commands._common import source_options
    source = source_options(args)
    found = collect(args.paths, args.exclude, args.skip_non_models)
    if args.output is not None:      # before any checking: never over a file it reads
        from cnnc.support.atomic import check_outputs
        check_outputs([(args.output, "-o")], [t.path for t in found.targets])
        _refuse_over_data(args.output, args.format)
    several = found.folders > 0 or len(args.paths) > 1
    color = use_color(sys.stderr)
    opts = Options(input_shape=source["input_shape"], sizes=source["sizes"], quiet=args.quiet,
                   werror=args.werror, color=color,
                   notes=not several or args.verbose, verbose=args.verbose)
    totals = F.Totals(passed_over=found.passed_over)
    status = 0
    results = []
    folders = [FileResult(path, "folder", 2, problem=why, text=f"cnnc: error: {why}")
               for path, why in found.unreadable]
    for r in itertools.chain(folders, check_all(found.targets, opts, jobs)):
        totals.add(r)
        status = max(status, r.status)
        results.append(r)
        # diagnostics go where the format says; a file that could not be checked is also
        # said on stderr, whatever the format (a CI log shows it)
        if r.text and (args.format == "text" or not r.checked):
            print(r.text, file=sys.stderr)
    totals.seconds = time.perf_counter() - start
    _write(args, results, status, totals if several else None)
    # a failing exit always says why on stderr: with a machine format the diagnostics went
    # to its output, so the line says where they are (a CI log shows only stderr)
    elsewhere = args.format != "text" and status != 0
    if (several and not args.quiet) or elsewhere:
        where = f"; the diagnostics are in the {args.format} output" + (
            f" ({shown_path(args.output)})" if args.output is not None else "") if elsewhere else ""
        print(F.summary_line(totals) + where, file=sys.stderr)
    return status


# Files a report never replaces: `-o w.npz` for `-o w.json` would cost the weights
_DATA_KINDS = {".npz": "weights or data", ".npy": "data", ".h5": "a Keras model",
               ".hdf5": "a Keras model", ".keras": "a Keras model", ".onnx": "an ONNX model",
               ".cnn": "a model", ".py": "a script", ".ipynb": "a notebook"}
_REPORT_SUFFIX = {"json": "json", "sarif": "sarif"}


def _refuse_over_data(output: str, fmt: str) -> None:
    """UsageError when -o names an existing file of a data or model kind: a report written
    over it would destroy what is likely work, not a report."""
    import os
    kind = _DATA_KINDS.get(os.path.splitext(output)[1].lower())
    if kind is not None and os.path.lexists(output):
        raise UsageError(f"-o '{shown_path(output)}' exists and looks like {kind}; cnnc does not "
                         f"write a {fmt} report over it",
                         [f"name a report file, e.g. -o report.{_REPORT_SUFFIX.get(fmt, 'txt')}"])


def _jobs(asked: int | None, cores: int) -> int:
    if asked is None:
        return cores
    if asked < 1:
        raise UsageError(f"--jobs must be at least 1, got {asked}")
    return asked


def _write(args: argparse.Namespace, results, status: int, totals) -> None:
    """The machine formats, on stdout or into -o FILE."""
    from cnnc.commands import _formats as F
    if args.format == "text":
        return
    if args.format == "json":
        text = F.to_json(results, status, totals)
    elif args.format == "sarif":
        text = F.to_sarif(results, status)
    else:
        text = F.to_github(results)
    if args.output is not None:
        from cnnc.support.atomic import write_text
        write_text(args.output, text, protect=[r.path for r in results])
    else:
        sys.stdout.write(text)
