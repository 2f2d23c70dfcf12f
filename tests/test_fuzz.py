"""Property tests: no input text makes cnnc raise anything but its own diagnostics.

Random text, and random mutations of the real example files (which reach far
deeper into the checker than random text does).
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnc.backends.report.summary import render
from cnnc.frontends.cnn import check_text

ROOT = Path(__file__).resolve().parent.parent
# The zoo's graphs are long: their first 120 lines (a graph whose last tensor is the
# output) reach the same code as the whole file, in a fraction of the time.
EXAMPLES = ["\n".join(p.read_text().split("\n")[:120])
            for p in sorted((ROOT / "examples").rglob("*.cnn"))]
ALPHABET = st.sampled_from(list("()[],=.'\"#\n -_0123456789eE+*/") +
                           ["Conv2D", "Dense", "input", "model", "None", "True", "relu", "(3, 3)",
                            "padding='same'", "strides=", "\t", "\\", "{", ":", "é", "\x00",
                            "x", " = ", "Add()", "([x, y])", " as ", "Input(shape=", "Model("])


def _exercise(text: str) -> None:
    checked = check_text(text, "fuzz.cnn")
    for d in checked.diagnostics:
        assert d.message and d.severity in ("error", "warning")
        if d.span is not None:
            assert d.span.line >= 1 and d.span.column >= 1
    if checked.ok and checked.ir.input_shape is not None:
        render(checked.analysis, "text")
        render(checked.analysis, "json")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_text(text):
    _exercise(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=60).map("".join))
def test_random_token_soup(text):
    _exercise(text)


@st.composite
def mutated_example(draw):
    text = draw(st.sampled_from(EXAMPLES))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "swap_lines", "dup_line"]))
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        if op == "delete":
            j = draw(st.integers(i, min(len(text), i + 8)))
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(ALPHABET) + text[i:]
        elif op == "replace":
            text = text[:i] + draw(ALPHABET) + text[i + 1:]
        else:
            lines = text.split("\n")
            a = draw(st.integers(0, len(lines) - 1))
            b = draw(st.integers(0, len(lines) - 1))
            if op == "swap_lines":
                lines[a], lines[b] = lines[b], lines[a]
            else:
                lines.insert(b, lines[a])
            text = "\n".join(lines)
    return text


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_example())
def test_mutated_examples(text):
    _exercise(text)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 64), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3),
       st.sampled_from(["valid", "same"]))
def test_conv_shape_rule_matches_formula(n, k, s, d, padding):
    """Whatever the sizes, a Conv1D is either refused or has Keras's output length."""
    text = f"input ({n}, 2)\nConv1D(3, {k}, strides={s if d == 1 else 1}, dilation_rate={d}, padding='{padding}')\n"
    checked = check_text(text)
    s = s if d == 1 else 1
    expected = (n - d * (k - 1) - 1) // s + 1 if padding == "valid" else -(-n // s)
    if expected <= 0:
        assert not checked.ok
    else:
        assert checked.ok and checked.analysis.infos[0].output_shape == (expected, 3)
