"""Check .cnn files: parse them, infer every shape and report every problem.

Prints nothing for a clean file. Exit status 0 when there are no errors
(warnings allowed), 1 when a model has errors, 2 when a file cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from cnnc.frontends.dispatch import check_file, check_script_file
from cnnc.support.diagnostics import UsageError, render_all, use_color, visible
from cnnc.support.names import path_text, shown_path

HELP = "check .cnn files and report errors and warnings"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help=".cnn files to check")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text diagnostics on stderr (default) or JSON on stdout")
    p.add_argument("-W", "--warnings-as-errors", dest="werror", action="store_true",
                   help="exit 1 when there are warnings too")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only, not warnings")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="Keras scripts: list the statements skipped because they build no model")
    p.add_argument("--input-shape", metavar="SHAPE",
                   help="one sample's shape where a Keras script takes it from data, e.g. 28,28,1")


def run(args: argparse.Namespace) -> int:
    status = 0
    report = []
    for path in args.files:
        try:
            if str(path).lower().endswith((".py", ".ipynb")):
                from cnnc.frontends.python import parse_input_shape
                checked = check_script_file(path, None, parse_input_shape(args.input_shape),
                                            whole=True)
            else:
                checked = check_file(path)
        except UsageError as e:
            print(f"cnnc: error: {e.message}", file=sys.stderr)
            report.append({"path": path_text(path), "readable": False, "error": e.message,
                           "diagnostics": []})
            status = max(status, 2)
            continue
        diags = [d for d in checked.diagnostics if d.is_error or not args.quiet]
        failed = not checked.ok or (args.werror and checked.diagnostics)
        if failed:
            status = max(status, 1)
        sc = getattr(checked, "script", None)
        if args.format == "json":
            entry = {"path": path_text(path), "readable": True, "ok": not failed,
                     "diagnostics": [d.as_dict() for d in diags]}
            if sc is not None:
                entry["models"] = [m.as_dict() for m in sc.models]
                entry["skipped"] = [{"line": line, "code": code} for line, code in sc.skipped]
            report.append(entry)
        elif diags:
            print(render_all(diags, checked.source, color=use_color(sys.stderr)), file=sys.stderr)
        if sc is not None and args.format != "json" and not args.quiet:
            _script_note(path, sc, args.verbose)
    if args.format == "json":
        from cnnc.support.names import json_dumps
        sys.stdout.write(json_dumps({"files": report, "exit_status": status}) + "\n")
    return status


def _script_note(path: str, sc, verbose: bool) -> None:
    """A Keras script: which models were checked, and how many statements were skipped."""
    found = ", ".join(f"'{m.var}' ({m.where})" for m in sc.models) or "none"
    print(f"{shown_path(path)}: note: checked {len(sc.models)} model{'s' if len(sc.models) != 1 else ''}: "
          f"{found}", file=sys.stderr)
    n = len(sc.skipped)
    if n:
        print(f"{shown_path(path)}: note: skipped {n} statement{'s' if n != 1 else ''} that build{'s' if n == 1 else ''} "
              f"no model (printing, plotting, training loops, ...)"
              + ("" if verbose else "; -v lists them"), file=sys.stderr)
        if verbose:
            for line, code in sc.skipped:
                print(visible(f"  {sc.script.where(line) if sc.script else line}: {code}"), file=sys.stderr)
