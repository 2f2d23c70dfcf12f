"""Print a model's summary: Keras's layer table and parameter totals, plus MACs,
activation memory, receptive field and jump for every layer.

Warnings go to stderr; the summary to stdout (or to -o FILE, written atomically).
"""

from __future__ import annotations

import argparse
import sys

from cnnc.commands._common import MODEL_FILE_HELP, add_source_arguments, load_checked, source_options
from cnnc.support.atomic import write_text
from cnnc.support.names import json_dumps, path_text

HELP = "print a Keras-style summary with MACs, memory and receptive fields"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help=MODEL_FILE_HELP)
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--keras", action="store_true",
                   help="only Keras's columns and totals (Layer, Output Shape, Param #)")
    p.add_argument("--ascii", action="store_true", help="draw the table with ASCII characters")
    p.add_argument("-o", "--output", metavar="PATH", help="write the summary to PATH")
    add_source_arguments(p)


def run(args: argparse.Namespace) -> int:
    from cnnc.backends.report.summary import render
    if args.output:
        from cnnc.support.atomic import check_outputs
        check_outputs([(args.output, "-o")], [args.file])
    if str(args.file).lower().endswith((".py", ".ipynb")):
        return _script_summaries(args)
    checked = load_checked(args.file, **source_options(args))
    text = render(checked.analysis, args.format, diagnostics=checked.diagnostics,
                  keras_only=args.keras, ascii=True if args.ascii else None)
    if args.output:
        write_text(args.output, text + "\n", protect=[args.file])
    else:
        sys.stdout.write(text + "\n")
    return 0


def _script_summaries(args: argparse.Namespace) -> int:
    """A Keras script or notebook: the summary of each model it builds (or of the one
    --model names). A model whose only errors are in compile()/fit() still gets its
    summary, with the errors."""

    from cnnc.backends.report.summary import render, to_dict
    from cnnc.frontends.dispatch import check_script_file
    from cnnc.support.diagnostics import CnncError, render_all, use_color

    opts = source_options(args)
    checked = check_script_file(args.file, opts["model"], opts["input_shape"],
                                whole=opts["model"] is None, sizes=opts["sizes"])
    sc = checked.script
    models = [m for m in sc.models if opts["model"] is None or m.checked.ir is checked.ir]
    shown = [m for m in models if m.checked.ok or m.settings_only]
    if not shown:
        raise CnncError(checked.diagnostics, checked.source, exit_code=1)
    if checked.diagnostics:
        print(render_all(checked.diagnostics, checked.source, color=use_color(sys.stderr)),
              file=sys.stderr)
    parts = []
    if args.format == "json":
        record = {"path": path_text(args.file), "models": []}
        for m in shown:
            entry = {"variable": m.var, "line": m.line, "where": m.where, "kind": m.kind,
                     "condition": m.condition or None, "called_by_cnnc": m.offered}
            entry.update(to_dict(m.checked.analysis, m.checked.diagnostics))
            record["models"].append(entry)
        text = json_dumps(record)
    else:
        for m in shown:
            head = f"model '{m.var}' ({m.where})"
            body = render(m.checked.analysis, args.format, diagnostics=m.checked.diagnostics,
                          keras_only=args.keras, ascii=True if args.ascii else None)
            parts.append((f"## {head}\n\n" if args.format == "markdown" else f"{head}\n") + body)
        text = "\n\n".join(parts)
    if args.output:
        write_text(args.output, text + "\n", protect=[args.file])
    else:
        sys.stdout.write(text + "\n")
    return 0 if all(m.checked.ok for m in models) and len(shown) == len(models) else 1
