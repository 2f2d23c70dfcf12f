"""cnnc run (not implemented yet)."""

from __future__ import annotations

import argparse

from ..diagnostics import UsageError

HELP = "(not implemented yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*")


def run(args: argparse.Namespace) -> int:
    raise UsageError("cnnc run is not implemented yet")
