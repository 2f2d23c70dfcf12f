"""User strings never reach the terminal raw.

Layer and model names, file paths, source lines, notebook cells and string
arguments can hold control characters (ESC sequences that recolour or clear the
screen, \\r and \\b that overwrite what was printed, BEL, NUL) and invisible Unicode
formatting (U+202E reverses the text that follows). Diagnostics, the summary table,
plot labels, progress lines and UsageError messages show them as escapes; ordinary
Unicode (é, 日本) stays as it is, and the caret still points at the right column.
"""

from __future__ import annotations

import json
import time
import unicodedata

import pytest

import cnnc
from cnnc.cli import main
from cnnc.support.diagnostics import (
    CnncError,
    Diagnostic,
    Source,
    Span,
    UsageError,
    cell_width,
    render,
    visible,
)

ESC = "\x1b[31m"
HOSTILE = ["\x1b[2J", "\x1b]0;title\x07", "\r", "\b", "\x07", "\x00", "\x7f", "\x9b", "\u202e",
           "\u2066", "\u200f", "\u2028", "\ufeff", "\n", "\t\x0b\x0c"]


def raw_controls(text: str, allow: str = "\n") -> list[str]:
    """Characters of `text` that a terminal would act on or hide: control (Cc) and
    format (Cf) characters, line and paragraph separators."""
    return [c for c in text if c not in allow
            and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


# --- the escape itself ---------------------------------------------------------------

@pytest.mark.parametrize("bad", HOSTILE)
def test_visible_escapes(bad):
    out = visible(f"a{bad}b")
    assert not raw_controls(out, allow="")
    assert out.startswith("a") and out.endswith("b") and "\\" in out


def test_visible_keeps_ordinary_unicode_and_tabs_on_request():
    for text in ("café", "日本語", "Ünïcödé naïve", "emoji 🙂", "a b", "ℵ"):
        assert visible(text) == text
    assert visible("a\tb") == "a\\tb"
    assert visible("a\tb", tabs=True) == "a\tb"


def test_cell_width():
    assert cell_width("abc") == 3
    assert cell_width("日本") == 4
    assert cell_width("e\u0301") == 1          # a combining accent takes no column
    assert cell_width("\x1b") == len("\\x1b")


def test_usage_error_message_and_notes_are_escaped():
    e = UsageError(f"cannot read '{ESC}x\r.cnn'", [f"note \u202e{ESC}"])
    assert not raw_controls(e.message, allow="") and not raw_controls(str(e), allow="")
    assert not raw_controls(" ".join(e.notes), allow="")
    assert "\\x1b[31m" in e.message and "\\r" in e.message and "\\u202e" in e.notes[0]


# --- diagnostics -----------------------------------------------------------------------

def _caret_column(rendered: str) -> tuple[str, int]:
    """(the echoed source line, the terminal column of the caret within it)."""
    lines = rendered.split("\n")
    src = next(l for l in lines if l.startswith(" ") and " | " in l and "^" not in l.split(" | ", 1)[1][:1])
    caret = next(l for l in lines if l.rstrip().endswith(("^", "~")) and " | " in l)
    shown = src.split(" | ", 1)[1]
    lead = caret.split(" | ", 1)[1]
    return shown, cell_width(lead[:lead.index("^")])


@pytest.mark.parametrize("bad", HOSTILE[:-3] + ["\u2066"])
def test_diagnostic_message_notes_path_and_source_are_escaped(bad):
    text = f"Dense(3, name='x{bad}y', activaton='relu')"
    d = Diagnostic("error", f"unknown thing 'x{bad}y'", Span(1, text.index("activaton") + 1, 1,
                                                            text.index("activaton") + 10),
                   [f"did you mean 'x{bad}'?", f"note {bad}"], path=f"dir{bad}/net.cnn")
    out = render(d, Source("net.cnn", text + "\n"))
    assert not raw_controls(out), out
    shown, col = _caret_column(out)
    assert shown[cell_width_prefix(shown, "activaton"):].startswith("activaton")
    assert col == cell_width_prefix(shown, "activaton")


def cell_width_prefix(shown: str, token: str) -> int:
    return cell_width(shown[:shown.index(token)])


@pytest.mark.parametrize("prefix", ["", "日本語 ", "é" * 5, "e\u0301" * 3, "\t\t", ESC, "\u202e",
                                    "\x00\x07", "🙂"])
def test_caret_lines_up_after_wide_escaped_and_tab_characters(prefix):
    text = f"Dense(3, name='{prefix}', activaton='relu')"
    col = text.index("activaton")
    d = Diagnostic("error", "unexpected keyword 'activaton'", Span(1, col + 1, 1, col + 10))
    out = render(d, Source("n.cnn", text))
    lines = out.split("\n")
    shown, caret = lines[1].split(" | ", 1)[1], lines[2].split(" | ", 1)[1]
    # Tabs are kept on both lines so the caret lines up at any tab width; elsewhere
    # the caret's column is the printed width of what precedes the token.
    assert caret.count("\t") == shown[:shown.index("activaton")].count("\t")
    assert cell_width(caret.replace("\t", "")[:caret.index("^") - caret.count("\t")]) == \
        cell_width(shown[:shown.index("activaton")].replace("\t", ""))
    assert caret.rstrip().endswith("^" + "~" * 8)


def test_caret_width_covers_escaped_characters():
    text = f"x = '{ESC}'"
    d = Diagnostic("error", "bad string", Span(1, 5, 1, len(text) + 1))
    out = render(d, Source("n.cnn", text))
    shown, caret = (l.split(" | ", 1)[1] for l in out.split("\n")[1:3])
    assert len(caret.strip()) == cell_width(shown[4:])


def test_a_100000_character_line_is_shown_as_a_window():
    text = "x" * 50_000 + " activaton " + "y" * 50_000
    col = text.index("activaton")
    d = Diagnostic("error", "unexpected keyword", Span(1, col + 1, 1, col + 10))
    t0 = time.perf_counter()
    out = render(d, Source("n.cnn", text))
    assert time.perf_counter() - t0 < 1.0
    assert len(out) < 500
    shown, caret = (l.split(" | ", 1)[1] for l in out.split("\n")[1:3])
    assert shown.startswith("...") and shown.endswith("...")
    assert shown[caret.index("^"):].startswith("activaton")
    assert caret.rstrip().endswith("^" + "~" * 8)


@pytest.mark.parametrize("where", ["start", "end"])
def test_long_line_window_at_either_end(where):
    text = ("bad " + "x" * 1000) if where == "start" else ("x" * 1000 + " bad")
    col = text.index("bad")
    d = Diagnostic("error", "bad", Span(1, col + 1, 1, col + 4))
    shown, caret = (l.split(" | ", 1)[1] for l in render(d, Source("n", text)).split("\n")[1:3])
    assert shown[caret.index("^"):].startswith("bad")
    assert shown.endswith("...") == (where == "start")
    assert shown.startswith("...") == (where == "end")


def test_a_long_span_is_cut_at_the_window():
    text = "x" * 10_000
    d = Diagnostic("error", "too long", Span(1, 1, 1, 10_001))
    out = render(d, Source("n", text))
    assert len(out) < 500


def test_checked_file_with_hostile_strings(tmp_path):
    text = (f"model m\ninput (4, 4, 1)\nConv2D(2, (3, 3), nmae='{ESC}日本')\n"
            f"Dense(3, activation='rleu{ESC}\u202e')\n")
    with pytest.raises(CnncError) as info:
        cnnc.loads(text, path=f"p{ESC}\r.cnn")
    out = str(info.value)
    assert not raw_controls(out)
    assert "日本" in out and "\\x1b[31m" in out and "\\u202e" in out and "p\\x1b[31m\\r.cnn" in out
    for line in out.split("\n"):
        if "^" in line:
            assert "\x1b" not in line


def test_cli_check_escapes_path_and_contents(tmp_path, capsys):
    path = tmp_path / f"net{ESC}\u202e.cnn"
    path.write_text(f"model m\ninput (4, 4, 1)\nDense(3, activation='rleu{ESC}')\n", encoding="utf-8")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err and not raw_controls(err)
    assert main(["check", str(tmp_path / f"missing{ESC}.cnn")]) == 2
    err = capsys.readouterr().err
    assert "missing\\x1b[31m.cnn" in err and not raw_controls(err)


def test_python_script_and_notebook_sources_are_escaped(tmp_path):
    from cnnc.frontends.dispatch import check_script_file
    script = tmp_path / "net.py"
    script.write_text("import keras\nm = keras.Sequential([keras.Input((4, 4, 1)),\n"
                      f"    keras.layers.Conv2D(2, 5, name='{ESC}\u202e')])\n", encoding="utf-8")
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": [
        "import keras\n", f"m = keras.Sequential([keras.Input((4, 4, 1)),  # {ESC}\r\n",
        f"    keras.layers.Conv2D(2, 5, name='\x07\b')])\n"]}],
        "nbformat": 4, "nbformat_minor": 0, "metadata": {}}))
    for path in (script, nb):
        checked = check_script_file(path, whole=True)
        errors = [d for d in checked.diagnostics if d.is_error]
        assert errors, path
        for d in errors:
            assert not raw_controls(render(d, checked.source))


# --- the summary, plot labels, progress ---------------------------------------------

NAMES = f"model m{{}}\ninput (4, 4, 1)\nConv2D(2, (3, 3), name='c{ESC}\\r\\b\u202eZ')\n" \
        "Flatten(name='日本é')\nDense(3, name='x\\x01\\x07y')\n"


@pytest.fixture
def hostile_model():
    return cnnc.loads(NAMES.format(""))


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
@pytest.mark.parametrize("ascii", [False, True])
def test_summary_escapes_names(hostile_model, fmt, ascii):
    out = hostile_model.summary(fmt, ascii=ascii) if fmt == "text" else hostile_model.summary(fmt)
    assert not raw_controls(out)
    if fmt != "json":
        assert "c\\x1b[31m\\r\\x08\\u202eZ" in out and "日本é" in out and "x\\x01\\x07y" in out


def test_summary_columns_stay_aligned_with_wide_and_escaped_names(hostile_model):
    table = [l for l in hostile_model.summary().split("\n") if l[:1] in "┏┃┡│├└"]
    assert len({cell_width(l) for l in table}) == 1, table


def test_functional_summary_escapes_names():
    m = cnnc.loads(f"model f\na = Input((4,), name='in{ESC}')\n"
                   f"b = Dense(3, name='d\\r\u202e')(a)\nc = Dense(2, name='日本')(a)\n"
                   "d = Concatenate()([b, c])\nModel(a, d)\n")
    for fmt in ("text", "markdown"):
        out = m.summary(fmt)
        assert not raw_controls(out), out
        assert "in\\x1b[31m" in out and "日本" in out


def test_plot_text_formats_escape_names(hostile_model):
    from cnnc.backends.report.plot import to_dot, to_mermaid
    for out in (to_dot(hostile_model.analysis), to_mermaid(hostile_model.analysis)):
        assert not raw_controls(out), out
    assert "\\u202e" in to_dot(hostile_model.analysis)


def test_progress_escapes_metric_names():
    from cnnc.support.progress import format_logs
    out = format_logs({f"loss{ESC}\r": 1.0, "acc\u202e": 0.5})
    assert not raw_controls(out, allow="")


def test_command_outputs_escape_user_paths(tmp_path, capsys):
    """A path with an escape sequence in it, echoed by a command, stays inert."""
    from cnnc.cli import main
    src = tmp_path / "net.cnn"
    src.write_text("input (4,)\nDense(2)\n")
    out = tmp_path / "evil\x1b[2Jname.dot"
    assert main(["plot", str(src), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\\x1b[2J" in printed
