"""Draw a model's graph as Keras's plot_model(show_shapes=True) does: one box per
layer with its name, class, shapes and parameters, an edge from each input.

The format follows the output's extension: .svg and .png are drawn by Graphviz's
`dot` (install Graphviz), .dot (Graphviz text) and .mmd (a Mermaid flowchart) need
nothing installed. Default output: next to FILE, with .svg. Written atomically,
never over the source.
"""

from __future__ import annotations

import argparse

from cnnc.commands._common import (
    MODEL_FILE_HELP,
    add_source_arguments,
    load_checked,
    output_path,
    source_options,
)
from cnnc.support.diagnostics import UsageError
from cnnc.support.names import shown_path

HELP = "draw the model's graph (.svg, .png with Graphviz; .dot, .mmd text)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help=MODEL_FILE_HELP)
    add_source_arguments(p)
    p.add_argument("-o", "--output", metavar="PATH",
                   help="where to write: .svg (default: FILE with .svg), .png, .dot or .mmd; "
                        "a folder: FILE's name with .svg in it")
    p.add_argument("--no-params", action="store_true", help="leave the parameter counts out")
    p.add_argument("--timeout", type=float, default=120, metavar="S",
                   help="stop Graphviz after S seconds (default 120)")


def run(args: argparse.Namespace) -> int:
    from cnnc.backends.report import plot
    from cnnc.support.atomic import write_bytes

    path = output_path(args.file, args.output, ".svg")
    fmt = plot.format_of(path)
    from cnnc.support.atomic import check_outputs
    check_outputs([(path, "-o")], [args.file])
    if not 0 < args.timeout <= 86400:      # NaN fails this too
        raise UsageError(f"--timeout must be a number of seconds from 0 to 86400, got {args.timeout:g}")
    dot = plot.require_dot(path) if fmt in plot.NEEDS_GRAPHVIZ else None
    checked = load_checked(args.file, **source_options(args))
    data = plot.render(checked.analysis, fmt, show_params=not args.no_params, dot=dot,
                       timeout=args.timeout)
    write_bytes(path, data, protect=[args.file])
    boxes = len(plot.nodes_and_edges(checked.analysis)[0])
    print(f"wrote {shown_path(path)} ({fmt}, {boxes} box{'es' if boxes != 1 else ''})")
    return 0
