"""Run cnnc's language server for editors (the Language Server Protocol over stdin and
stdout): diagnostics as you type in .cnn files and Keras scripts (.py), and on hover a
layer's output shape, parameters and MACs, or a model's totals.

Needs pygls: pip install 'cnnc[lsp]'. Editors start it as the command `cnnc lsp`
(README: Editors).
"""

from __future__ import annotations

import argparse

from cnnc.support.diagnostics import UsageError

HELP = "run the language server for editors (stdio): diagnostics and hover for .cnn and Keras .py"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stdio", action="store_true",
                   help="talk over stdin and stdout (the default and only transport; accepted "
                        "because editors often pass it)")


def run(args: argparse.Namespace) -> int:
    try:
        from cnnc.integrations.lsp import serve
    except ImportError as e:
        missing = (e.name or "pygls").split(".")[0]
        raise UsageError(f"cnnc lsp needs the pygls package ({missing} is missing)",
                         ["install it with: pip install 'cnnc[lsp]'"]) from None
    serve()
    return 0
