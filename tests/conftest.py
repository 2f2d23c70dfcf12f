from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session) -> None:
    """Compile the package's bytecode once: hundreds of tests start `python -m cnnc` in a
    subprocess, and where PYTHONDONTWRITEBYTECODE is set (CI's image sets it) each start
    would compile every module it imports from source again (`cnnc compile` 2.7 s -> 1.5 s)."""
    import compileall
    compileall.compile_dir(str(ROOT / "cnnc"), quiet=2, workers=1)
    _ctrl_c_reaches_children()


def _ctrl_c_reaches_children() -> None:
    """Tests send Ctrl-C to `python -m cnnc` in subprocesses. A suite started in the
    background of a non-interactive shell (`bash .ci/run &`) has SIGINT ignored, and an
    ignored signal stays ignored across exec: cnnc would rightly never see it. A handler
    here is reset to the default at exec, so the children start as from a terminal."""
    import signal
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(params=["numpy", "jit"])
def kernels(request):
    """The test twice: on the NumPy reference and on the compiled kernels
    (cnnc/backends/numpy/jit, skipped where numba is not installed)."""
    from cnnc.backends.numpy import jit
    if request.param == "jit":
        pytest.importorskip("numba")
    was = jit.active()
    jit.set_active(request.param == "jit")
    yield request.param
    jit.set_active(was)


@pytest.fixture(autouse=True)
def _no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def in_repo(monkeypatch):
    """Run with the repository as the working directory (paths in messages are relative)."""
    monkeypatch.chdir(ROOT)
    return ROOT
