"""Check .cnn files: parse them, infer every shape and report every problem.

Prints nothing for a clean file. Exit status 0 when there are no errors
(warnings allowed), 1 when a model has errors, 2 when a file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..diagnostics import UsageError, render_all, use_color
from ..frontend import check_file

HELP = "check .cnn files and report errors and warnings"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help=".cnn files to check")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text diagnostics on stderr (default) or JSON on stdout")
    p.add_argument("-W", "--warnings-as-errors", dest="werror", action="store_true",
                   help="exit 1 when there are warnings too")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only, not warnings")


def run(args: argparse.Namespace) -> int:
    status = 0
    report = []
    for path in args.files:
        try:
            checked = check_file(path)
        except UsageError as e:
            print(f"cnnc: error: {e.message}", file=sys.stderr)
            report.append({"path": path, "readable": False, "error": e.message, "diagnostics": []})
            status = max(status, 2)
            continue
        diags = [d for d in checked.diagnostics if d.is_error or not args.quiet]
        failed = not checked.ok or (args.werror and checked.diagnostics)
        if failed:
            status = max(status, 1)
        if args.format == "json":
            report.append({"path": path, "readable": True, "ok": not failed,
                           "diagnostics": [d.as_dict() for d in diags]})
        elif diags:
            print(render_all(diags, checked.source, color=use_color(sys.stderr)), file=sys.stderr)
    if args.format == "json":
        json.dump({"files": report, "exit_status": status}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return status
