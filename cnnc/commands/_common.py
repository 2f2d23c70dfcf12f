"""What the commands share: loading a .cnn file and printing its diagnostics."""

from __future__ import annotations

import sys

from ..diagnostics import CnncError, render_all, use_color
from ..frontend import Checked, check_file


def print_diagnostics(checked: Checked, stream=None) -> None:
    stream = stream or sys.stderr
    if checked.diagnostics:
        print(render_all(checked.diagnostics, checked.source, color=use_color(stream)), file=stream)


def load_checked(path: str, quiet: bool = False) -> Checked:
    """Check a file, print its warnings; raise CnncError (exit 1) on errors."""
    checked = check_file(path)
    if not checked.ok:
        raise CnncError(checked.diagnostics, checked.source, exit_code=1)
    if not quiet:
        print_diagnostics(checked)
    return checked


def load_model(path: str, quiet: bool = False):
    from ..model import Model
    return Model(load_checked(path, quiet))
