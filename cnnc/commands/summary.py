"""Print a model's summary: Keras's layer table and parameter totals, plus MACs,
activation memory, receptive field and jump for every layer.

Warnings go to stderr; the summary to stdout (or to -o FILE, written atomically).
"""

from __future__ import annotations

import argparse
import sys

from ..atomic import write_text
from ._common import load_checked

HELP = "print a Keras-style summary with MACs, memory and receptive fields"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the .cnn file")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--keras", action="store_true",
                   help="only Keras's columns and totals (Layer, Output Shape, Param #)")
    p.add_argument("--ascii", action="store_true", help="draw the table with ASCII characters")
    p.add_argument("-o", "--output", metavar="PATH", help="write the summary to PATH")


def run(args: argparse.Namespace) -> int:
    from ..summary import render
    checked = load_checked(args.file)
    text = render(checked.analysis, args.format, diagnostics=checked.diagnostics,
                  keras_only=args.keras, ascii=True if args.ascii else None)
    if args.output:
        write_text(args.output, text + "\n", protect=[args.file])
    else:
        sys.stdout.write(text + "\n")
    return 0
