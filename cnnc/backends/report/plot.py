"""The model as a graph drawing, as Keras's `plot_model(show_shapes=True,
show_layer_names=True)` draws it: one box per layer (InputLayers included) with
its name, class, input and output shapes and parameter count; an edge from each
input; top to bottom, branches side by side.

cnnc writes the Graphviz DOT text itself (labels are HTML-like tables as Keras's;
every user string is escaped, node ids are cnnc's own `n0, n1, ...`) and runs
Graphviz's `dot` for SVG and PNG (a subprocess with a timeout, never a shell).
DOT and Mermaid text need nothing installed. Standard library only.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from cnnc.analysis import shapes as sh
from cnnc.analysis.infer import Analysis
from cnnc.analysis.symbolic import count_text
from cnnc.support import names
from cnnc.support.diagnostics import UsageError
from cnnc.support.diagnostics import visible as _visible

FORMATS = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot", ".mmd": "mmd",
           ".mermaid": "mmd"}
NEEDS_GRAPHVIZ = ("svg", "png")
DOT_TIMEOUT_S = 120


class GraphvizMissing(UsageError):
    pass


# --- the graph, one record per box ------------------------------------------------

def _shape_text(shape) -> str:
    return "?" if shape is None else sh.fmt_shape(shape)


def nodes_and_edges(analysis: Analysis) -> tuple[list[dict], list[tuple[int, int]]]:
    """The boxes in Keras's model.layers order, and the edges (source, target) between
    them as indices into the boxes, each pair once."""
    model = analysis.model
    if model.groups:
        return _row_boxes(analysis)
    inputs = {n.name: n for n in model.inputs}
    order = list(model.layer_order) or [*inputs, *(l.name for l in model.layers)]
    index = {name: i for i, name in enumerate(order)}
    boxes: list[dict] = []
    edges: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for i, name in enumerate(order):
        node = inputs.get(name)
        if node is not None:
            boxes.append({"name": name, "type": node.kind, "inputs": [],
                          "input_shape": None,
                          "output_shape": _shape_text(analysis.open_shape_of(name) or node.shape),
                          "params": None})
            continue
        info = analysis.info(name)
        srcs = list(info.layer.inputs)
        shapes = [_shape_text(analysis.open_shape_of(s)) for s in srcs]
        boxes.append({"name": name, "type": info.layer.kind, "inputs": srcs,
                      "input_shape": shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]",
                      "output_shape": _shape_text(info.output.shape), "params": info.params})
        for s in srcs:
            j = index.get(s)
            if j is not None and (j, i) not in seen:
                seen.add((j, i))
                edges.append((j, i))
    return boxes, edges


def _row_boxes(analysis: Analysis) -> tuple[list[dict], list[tuple[int, int]]]:
    """A model with custom layers or nested models: one box per summary row, as Keras's
    plot_model draws them (expand_nested=False)."""
    from cnnc.analysis.groups import shown_as, summary_rows
    model = analysis.model
    rows = summary_rows(analysis, inputs=True)
    index = {r.name: i for i, r in enumerate(rows)}
    boxes: list[dict] = []
    edges: list[tuple[int, int]] = []
    for i, r in enumerate(rows):
        if r in model.inputs:
            boxes.append({"name": r.name, "type": r.kind, "inputs": [], "input_shape": None,
                          "output_shape": _shape_text(analysis.open_shape_of(r.name) or r.shape),
                          "params": None})
            continue
        members = getattr(r, "members", None) or (r,)
        inside = {m.name for m in members}
        real = list(dict.fromkeys(s for m in members for s in m.layer.inputs if s not in inside))
        srcs = list(dict.fromkeys(b for s in real for b in _boxes_behind(model, s, shown_as)))
        shapes = [_shape_text(analysis.open_shape_of(s)) for s in real]
        boxes.append({"name": r.name, "type": r.layer.kind, "inputs": srcs,
                      "input_shape": shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]",
                      "output_shape": _shape_text(r.output.shape), "params": r.params})
        edges += [(index[s], i) for s in srcs if s in index]
    return boxes, edges


def _boxes_behind(model, name: str, shown_as) -> list[str]:
    """The boxes a tensor comes from: through what a subclassed model's call() does
    between its layers (rows without a name), back to the layers before."""
    out, stack, seen = [], [name], set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        layer = model.find(n)
        if layer is not None and layer.group == "":
            stack.extend(layer.inputs)
        else:
            out.append(shown_as(model, n))
    return out


# --- escaping ----------------------------------------------------------------------
#
# One rule per sink, in support/names.py: HTML-like labels, DOT strings (tooltips) and
# Mermaid labels. Graphviz expands \N, \G, \L ... in labels and tooltips; the encoders
# keep every backslash a plain character.

visible = _visible
html_escape = names.dot_html
dot_string = names.dot_string
mermaid_escape = names.mermaid
LABEL, TEXT = names.LABEL_CHARS, names.TEXT_CHARS   # a drawing shows long names cut


# --- DOT -----------------------------------------------------------------------------

def _dot_label(box: dict, show_params: bool) -> str:
    cols = []
    if box["input_shape"] is not None:
        cols.append(f"Input shape: <b>{html_escape(box['input_shape'], TEXT)}</b>")
    cols.append(f"Output shape: <b>{html_escape(box['output_shape'], TEXT)}</b>")
    span = len(cols)
    rows = [f'<tr><td colspan="{span}" bgcolor="black"><font point-size="16" color="white">'
            f'<b>{html_escape(box["name"], LABEL)}</b> ({html_escape(box["type"], LABEL)})</font></td></tr>',
            "<tr>" + "".join(f'<td bgcolor="white"><font point-size="14">{c}</font></td>'
                             for c in cols) + "</tr>"]
    if show_params and box["params"] is not None:
        rows.append(f'<tr><td colspan="{span}" bgcolor="white"><font point-size="14">'
                    f'Params: <b>{html_escape(count_text(box["params"]))}</b></font></td></tr>')
    return ('<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">'
            + "".join(rows) + "</table>>")


def to_dot(analysis: Analysis, show_params: bool = True, rankdir: str = "TB") -> str:
    boxes, edges = nodes_and_edges(analysis)
    out = ["digraph model {",
           f"  graph [rankdir={rankdir}, concentrate=true, label=<{html_escape(analysis.model.name, LABEL)}>, "
           "labelloc=t, fontname=Helvetica];",
           '  node [shape=plaintext, fontname=Helvetica, margin=0];',
           "  edge [penwidth=2];"]
    for i, box in enumerate(boxes):
        out.append(f"  n{i} [label={_dot_label(box, show_params)}, "
                   f"tooltip={dot_string(box['name'], TEXT)}];")
    for a, b in edges:
        out.append(f"  n{a} -> n{b};")
    out.append("}")
    return "\n".join(out) + "\n"


# --- Mermaid -------------------------------------------------------------------------

def to_mermaid(analysis: Analysis, show_params: bool = True) -> str:
    boxes, edges = nodes_and_edges(analysis)
    title = names.yaml_string(analysis.model.name)       # a YAML double-quoted string
    out = ["---", f"title: {title}", "---", "flowchart TB"]
    for i, box in enumerate(boxes):
        parts = [f"<b>{mermaid_escape(box['name'], LABEL)}</b> ({mermaid_escape(box['type'], LABEL)})"]
        if box["input_shape"] is not None:
            parts.append(f"input: {mermaid_escape(box['input_shape'], TEXT)}")
        parts.append(f"output: {mermaid_escape(box['output_shape'], TEXT)}")
        if show_params and box["params"] is not None:
            parts.append(f"params: {count_text(box['params'])}")
        out.append(f'    n{i}["{"<br/>".join(parts)}"]')
    for a, b in edges:
        out.append(f"    n{a} --> n{b}")
    return "\n".join(out) + "\n"


# --- rendering -----------------------------------------------------------------------

def format_of(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"cannot tell the plot format of '{path}' from its extension",
                         [f"use one of {', '.join(FORMATS)}"])
    return FORMATS[suffix]


def find_dot() -> str | None:
    return shutil.which("dot")


def require_dot(path: str | Path) -> str:
    dot = find_dot()
    if dot is None:
        stem = Path(path).with_suffix("")
        raise GraphvizMissing(
            f"cannot write '{path}': drawing {Path(path).suffix.lstrip('.').upper()} needs "
            "Graphviz's 'dot' program, which is not installed (not on PATH)",
            ["install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install "
             "graphviz; conda: conda install graphviz)",
             f"or ask for the graph as text, which needs nothing: -o {stem}.dot (Graphviz) "
             f"or -o {stem}.mmd (Mermaid)"])
    return dot


def run_dot(dot_text: str, fmt: str, dot: str, timeout: float = DOT_TIMEOUT_S,
            extra: Sequence[str] = ()) -> bytes:
    """Graphviz's `dot -T<fmt>` on the text; its output bytes."""
    try:
        done = subprocess.run([dot, f"-T{fmt}", *extra], input=dot_text.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"Graphviz's dot took longer than {timeout:g} s and was stopped",
                         ["write the DOT text instead (-o FILE.dot) and render it yourself"]) from None
    except OSError as e:
        raise UsageError(f"cannot run Graphviz's dot ({dot}): {e.strerror or e}") from None
    if done.returncode != 0 or not done.stdout:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"Graphviz's dot failed (exit status {done.returncode})",
                         err[-3:] or ["it printed nothing"])
    return done.stdout


def render(analysis: Analysis, fmt: str, show_params: bool = True, dot: str | None = None,
           timeout: float = DOT_TIMEOUT_S) -> bytes:
    """The drawing in `fmt` (svg, png, dot, mmd) as bytes."""
    if fmt == "mmd":
        return to_mermaid(analysis, show_params).encode("utf-8")
    text = to_dot(analysis, show_params)
    if fmt == "dot":
        return text.encode("utf-8")
    if fmt not in NEEDS_GRAPHVIZ:
        raise UsageError(f"unknown plot format {fmt!r}")
    dot = dot or require_dot(f"model.{fmt}")
    return run_dot(text, fmt, dot, timeout, ["-Gdpi=200"] if fmt == "png" else ())
