"""`%load_ext cnnc` in a real Jupyter kernel (ipykernel, driven by nbclient as Jupyter
runs a notebook). The notebook's `keras` is a stand-in (tests/data/fake_keras) so that
no TensorFlow is needed: its fit() prints "FIT RAN" when it runs.

What a user sees: a clean model's cells run untouched; `%cnnc summary` prints cnnc's
summary; a Sequential model defined without an input shape runs (Keras builds it at
fit), and the `model.fit(x, y)` cell whose data do not fit it is stopped before it runs,
with the diagnostic placed in the cell that defined the layer; unrelated cells still
run; `%cnnc warn` lets the cell run and shows the error; `%cnnc plot` draws the graph
(SVG with Graphviz, Mermaid text without).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent

CELLS = [
    "%load_ext cnnc",                                                                       # 1
    "import numpy as np\nimport keras\nfrom keras import layers",                             # 2
    "model = keras.Sequential([\n    keras.Input(shape=(28, 28, 1)),\n    layers.Conv2D(8, 3),\n"
    "    layers.Flatten(),\n    layers.Dense(10),\n])",                                         # 3
    "%cnnc summary model",                                                                  # 4
    "x = np.zeros((64, 28, 28, 1))\ny = np.zeros((64, 10))",                                  # 5
    "bad = keras.Sequential([layers.Conv2D(8, 30), layers.Flatten(), layers.Dense(10)])\n"
    "bad.compile(optimizer='adam', loss='categorical_crossentropy')",                        # 6
    "bad.fit(x, y, epochs=1)",                                                              # 7
    "print('unrelated cells still run')",                                                  # 8
    "%cnnc warn",                                                                           # 9
    "bad.fit(x, y, epochs=1)",                                                              # 10
    "%cnnc plot model",                                                                     # 11
    "import os\nos.environ['PATH'] = ''\n%cnnc plot model",                                 # 12
    "%cnnc",                                                                                # 13
    "%cnnc stop",                                                                           # 14
    "model = keras.Sequential([",                                                           # 15
    "bad = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3), layers.Flatten(),\n"
    "                        layers.Dense(10)])\nbad.fit(x, y)",                             # 16
    "model.fit(x, y)",                                                                      # 17
    "%unload_ext cnnc",                                                                     # 18
    "late = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 30)])",            # 19
    "%load_ext cnnc",                                                                       # 20
    "late.fit(x, y)",                                                                       # 21
]

# the diagnostic as the stopped cell shows it: the layer is in In [6], line 1
DIAGNOSTIC = [
    "In [6]:1:42: error: Conv2D kernel_size=30x30 does not fit its input: needs at least 30x30, got 28x28",
    " 1 | bad = keras.Sequential([layers.Conv2D(8, 30), layers.Flatten(), layers.Dense(10)])",
    "   |                                          ^~",
    "  note: with padding='valid' the output height is floor((28 - 30) / 1) + 1 = -1, which must be "
    "at least 1",
    "  help: use padding='same', a smaller kernel_size, or fewer pooling layers before it",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook, run top to bottom in a fresh kernel (errors do not stop the run)."""
    work = tmp_path_factory.mktemp("nb")
    shutil.copytree(ROOT / "tests" / "data" / "fake_keras" / "keras", work / "keras")
    # a kernel that runs this Python (its cnnc, its packages), whatever kernels are installed
    spec = work / "jupyter" / "kernels" / "cnnc-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cnnc test", "language": "python"}))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(work / "jupyter"))
    mp.setenv("NO_COLOR", "1")
    try:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
        client = nbclient.NotebookClient(nb, kernel_name="cnnc-test", timeout=120, allow_errors=True,
                                         resources={"metadata": {"path": str(work)}})
        client.execute()
    finally:
        mp.undo()
    return nb.cells


def _text(cell, name: str | None = None) -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and (name is None or o.name == name))


def _errors(cell) -> list:
    return [o for o in cell.outputs if o.output_type == "error"]


def test_clean_cells_run_untouched(executed):
    for i in (0, 1, 2, 4, 5):
        assert executed[i].outputs == [], (i, executed[i].outputs)
    assert [c.execution_count for c in executed] == list(range(1, len(CELLS) + 1))


def test_summary_of_a_model_built_so_far(executed):
    out = _text(executed[3], "stdout")
    assert out.startswith("model 'model' (In [3], line 1)\nModel: \"sequential\"\n")
    # Keras's counts: conv 3*3*1*8 + 8 = 80, dense 26*26*8*10 + 10 = 54,090
    assert "│ conv2d (Conv2D)   │ (None, 26, 26, 8) │      80 │" in out
    assert "│ dense (Dense)     │ (None, 10)        │  54,090 │" in out
    assert " Total params: 54,170 (211.60 KB)\n" in out


def test_a_fit_on_data_that_do_not_fit_the_model_is_stopped_before_it_runs(executed):
    stopped = executed[6]
    assert "FIT RAN" not in _text(stopped)
    [error] = _errors(stopped)
    assert error.ename == "ModelErrors"
    assert error.traceback == DIAGNOSTIC + [
        "cnnc: this cell was not run: 1 error in the models it builds or uses (%cnnc warn lets such "
        "cells run)"]


def test_unrelated_cells_still_run(executed):
    assert _text(executed[7], "stdout") == "unrelated cells still run\n"
    assert _errors(executed[7]) == []


def test_warn_mode_shows_the_error_and_runs_the_cell(executed):
    assert _text(executed[8], "stdout").startswith("cnnc: checking models before each cell; errors "
                                                   "are shown and the cell runs")
    ran = executed[9]
    assert _errors(ran) == []
    assert _text(ran, "stdout") == "FIT RAN\n"
    assert _text(ran, "stderr") == "\n".join(DIAGNOSTIC) + "\n"


def test_plot_draws_the_graph_inline(executed):
    svg_cell, text_cell = executed[10], executed[11]
    if shutil.which("dot") is not None:
        [shown] = [o for o in svg_cell.outputs if o.output_type == "display_data"]
        svg = shown.data["image/svg+xml"]
        assert svg.lstrip().startswith(("<?xml", "<svg", "<!DOCTYPE"))
        for text in ("conv2d", "Conv2D", "(None, 26, 26, 8)", "dense", "(None, 10)"):
            assert text in svg
    # without Graphviz (no `dot` on PATH): Mermaid text, which JupyterLab draws
    [shown] = [o for o in text_cell.outputs if o.output_type == "display_data"]
    markdown = shown.data["text/markdown"]
    assert markdown.startswith('```mermaid\n---\ntitle: "sequential"\n---\nflowchart TB\n')
    assert markdown.endswith("\n```") and not markdown.endswith("\n\n```")
    assert "conv2d" in markdown and "(None, 26, 26, 8)" in markdown
    assert shown.data["text/plain"] == markdown.removeprefix("```mermaid\n").removesuffix("\n```")


def test_status_lists_the_models(executed):
    assert _text(executed[12], "stdout") == (
        "cnnc: checking models before each cell; errors are shown and the cell runs\n"
        "  model: sequential, In [3], line 1, ok\n"
        "  bad: sequential, In [6], line 1, has errors\n")


def test_a_model_built_again_replaces_the_old_one(executed):
    """Once `bad` is built again without errors, cells that use it run; a cell that failed
    on a Python syntax error ran nothing and leaves `model` as it was."""
    assert _errors(executed[14])[0].ename == "SyntaxError"        # IPython's own error
    for cell in executed[15], executed[16]:
        assert _errors(cell) == []
        assert _text(cell, "stdout") == "FIT RAN\n"
        assert _text(cell, "stderr") == ""


def test_import_cnnc_stays_light():
    """`%load_ext cnnc` needs cnnc.load_ipython_extension; `import cnnc` loads neither
    IPython nor the integrations (they come with the extension)."""
    import subprocess
    code = ("import sys, cnnc; print(callable(cnnc.load_ipython_extension), sorted({m.split('.')[0] "
            "for m in sys.modules if m.startswith(('IPython', 'pygls', 'numpy', 'cnnc.integrations'))}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "True []", out.stderr


def test_models_built_before_the_extension_was_loaded_are_known(executed):
    """Unloaded, the extension stops nothing; loaded again, it reads every cell run so far."""
    assert _errors(executed[18]) == [] and executed[18].outputs == []
    [error] = _errors(executed[20])
    assert error.traceback[0] == ("In [19]:1:69: error: Conv2D kernel_size=30x30 does not fit its "
                                  "input: needs at least 30x30, got 28x28")
    assert "FIT RAN" not in _text(executed[20])
