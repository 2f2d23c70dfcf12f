"""Golden diagnostics: every file in examples/errors/ against its .expected file.

The .expected file holds the exit status and the exact text `cnnc check`
prints (message, line, column, source line, caret, notes). Regenerate after
an intended change with CNNC_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnnc.cli import main

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted((ROOT / "examples" / "errors").glob("*.cnn"))


def _run_check(path: str, capsys) -> tuple[int, str]:
    status = main(["check", path])
    captured = capsys.readouterr()
    assert captured.out == ""
    return status, captured.err


def test_there_are_golden_cases():
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden(case: Path, capsys, in_repo):
    rel = str(case.relative_to(ROOT))
    status, err = _run_check(rel, capsys)
    actual = f"exit: {status}\n---\n{err}"
    expected_path = case.with_suffix(".expected")
    if os.environ.get("CNNC_UPDATE_GOLDEN"):
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.exists(), f"no golden file {expected_path.name}; run with CNNC_UPDATE_GOLDEN=1"
    assert actual == expected_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_every_diagnostic_points_into_the_file(case: Path, in_repo):
    """Line and column of every diagnostic exist in the source."""
    from cnnc.frontends.dispatch import check_file
    checked = check_file(case.relative_to(ROOT))
    lines = case.read_text(encoding="utf-8").split("\n")
    assert checked.diagnostics
    for d in checked.diagnostics:
        assert d.span is not None, d.message
        assert 1 <= d.span.line <= len(lines), d.message
        assert 1 <= d.span.column <= len(lines[d.span.line - 1]) + 1, d.message
