"""Atomic writes: all or nothing, the umask's permissions, inputs protected."""

from __future__ import annotations

import os
import stat

import pytest

from cnnc.support.atomic import atomic_write, write_text
from cnnc.support.diagnostics import UsageError


def test_written_file_has_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "hello")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_failure_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "w.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["w.bin"]


def test_refuses_to_overwrite_an_input(tmp_path):
    src = tmp_path / "net.cnn"
    src.write_text("input (4,)\n")
    with pytest.raises(UsageError):
        write_text(tmp_path / "." / "net.cnn", "x", protect=[src])
    assert src.read_text() == "input (4,)\n"
