"""The summary report: Keras's table and totals, plus what Keras does not show.

Three renderings of one `to_dict` record: text (Keras's box table), JSON
(every number, documented in docs/SUMMARY.md, stable key order) and Markdown.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from typing import Any, Iterable, Sequence

from cnnc.analysis import shapes as sh
from cnnc.analysis.arguments import Initializer, Regularizer
from cnnc.analysis.groups import shown_as, summary_rows
from cnnc.analysis.infer import BYTES_PER_VALUE, Analysis, LayerInfo, input_flow
from cnnc.analysis.symbolic import Expr
from cnnc.analysis.symbolic import count_text as count
from cnnc.analysis.symbolic import render as render_expr
from cnnc.support.counts import HUGE, sci
from cnnc.support.diagnostics import Diagnostic, UsageError, cell_width, did_you_mean, visible
from cnnc.support.names import json_dumps
from cnnc.support.version import __version__

SCHEMA = "cnnc.summary/1"
FORMATS = ("text", "json", "markdown")


def readable_memory_size(size) -> str:
    """Keras's byte formatting: 1024-based, two decimals (364.54 KB)."""
    if isinstance(size, Expr):
        return f"{count(size)} B"
    if size >= HUGE:
        return f"{sci(int(size))} B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def readable_count(n: int | None) -> str:
    """1000-based short form for operation counts: 2.79 M."""
    if n is None:
        return "?"
    if isinstance(n, Expr):
        return count(n)
    if n >= HUGE:
        return sci(n)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def _axes(values: Sequence[int] | None) -> str:
    return "-" if values is None else "x".join(str(v) for v in values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Expr):
        return render_expr(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Initializer):
        return {"class_name": value.name, "config": {k: v for k, v in value.args}}
    if isinstance(value, Regularizer):
        return {"class_name": "L1L2", "config": {"l1": value.l1, "l2": value.l2}}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# --- the record ----------------------------------------------------------------

def _layer_record(info: LayerInfo) -> dict:
    layer = info.layer
    return {
        "name": info.name,
        "type": layer.kind,
        "line": layer.span.line,
        "inputs": list(layer.inputs),
        "input_shape": [None, *info.input_shape],
        "input_shapes": [[None, *shape] for shape in info.input_shapes],
        "output_shape": [None, *info.output_shape],
        **({"open_output_shape": _jsonable((None, *info.output.shape))}
           if any(isinstance(n, Expr) for n in info.output.shape) else {}),
        "params": _jsonable(info.params),
        "trainable_params": _jsonable(info.trainable_params),
        "non_trainable_params": _jsonable(info.non_trainable_params),
        "weights": [{"name": w.name, "shape": _jsonable(list(w.shape)), "trainable": w.trainable,
                     "params": _jsonable(w.size), "initializer": w.initializer.name,
                     "regularizer": None if w.regularizer is None else
                     {"l1": w.regularizer.l1, "l2": w.regularizer.l2}} for w in info.weights],
        "macs": _jsonable(info.macs),
        "activation_bytes": _jsonable(info.activation_bytes),
        "receptive_field": None if info.output.rf is None else list(info.output.rf),
        "jump": None if info.output.jump is None else list(info.output.jump),
        "config": {k: _jsonable(v) for k, v in layer.args.items()},
    }


def _row_record(row) -> dict:
    """A row of Keras's table (a custom layer's row stands for its `members`)."""
    members = [m.name for m in getattr(row, "members", ())]
    return {"name": row.name, "type": row.layer.kind, "output_shape": [None, *row.output_shape],
            "params": _jsonable(row.params), **({"members": members} if members else {})}


def _activation_totals(analysis: Analysis) -> tuple[int | None, int | None, str | None]:
    sizes = [(i.activation_bytes, i.name) for i in analysis.infos]
    if not sizes or any(s is None for s, _ in sizes):
        return None, None, None
    if any(isinstance(s, Expr) for s, _ in sizes):     # which is largest depends on the sizes
        return sum(s for s, _ in sizes), None, None
    largest = max(sizes, key=lambda t: t[0])
    return sum(s for s, _ in sizes), largest[0], largest[1]


def _shape_or_none(shape) -> list | None:
    return None if shape is None else [None, *shape]


def _graph_record(analysis: Analysis) -> dict:
    """What a functional model adds: its inputs and outputs, and Keras's layer order."""
    model = analysis.model
    return {
        "inputs": [{"name": n.name, "type": n.kind, "shape": [None, *n.shape],
                    "line": None if n.span is None else n.span.line} for n in model.inputs],
        "outputs": [{"name": name, "shape": _shape_or_none(analysis.shape_of(name))}
                    for name in model.outputs],
        "layer_order": list(model.layer_order),
    }


def to_dict(analysis: Analysis, diagnostics: Iterable[Diagnostic] = ()) -> dict:
    model = analysis.model
    total_act, largest, largest_name = _activation_totals(analysis)
    c = model.compile
    record = {
        "schema": SCHEMA,
        "cnnc_version": __version__,
        "model": model.name,
        "source": model.path,
        "input_shape": [None, *model.input_shape] if model.input_shape else None,
        "output_shape": [None, *analysis.output_shape] if analysis.output_shape else None,
        **(_graph_record(analysis) if model.functional else {}),
        "layers": [_layer_record(i) for i in analysis.infos],
        **({"rows": [_row_record(r) for r in summary_rows(analysis)]} if model.groups else {}),
        "totals": {
            "params": _jsonable(analysis.total_params),
            "trainable_params": _jsonable(analysis.trainable_params),
            "non_trainable_params": _jsonable(analysis.non_trainable_params),
            "params_bytes": _jsonable(analysis.total_params * BYTES_PER_VALUE),
            "trainable_bytes": _jsonable(analysis.trainable_params * BYTES_PER_VALUE),
            "non_trainable_bytes": _jsonable(analysis.non_trainable_params * BYTES_PER_VALUE),
            "macs": _jsonable(analysis.total_macs),
            "activation_bytes": _jsonable(total_act),
            "largest_activation_bytes": largest,
            "largest_activation_layer": largest_name,
        },
        "compile": None if c is None else {
            "optimizer": {"class_name": c.optimizer.name,
                          "config": {k: v for k, v in c.optimizer.params.items()}},
            "loss": None if c.loss is None else {"name": c.loss.name, "from_logits": c.loss.from_logits,
                                                 "label_smoothing": c.loss.label_smoothing},
            "metrics": list(c.metrics),
        },
        "fit": None if model.fit is None else {
            "epochs": model.fit.epochs, "batch_size": model.fit.batch_size,
            "validation_split": model.fit.validation_split, "shuffle": model.fit.shuffle,
            "seed": model.fit.seed, "initial_epoch": model.fit.initial_epoch},
        "diagnostics": [d.as_dict() for d in diagnostics],
        **(_dimensions_record(analysis) if analysis.is_open else {}),
    }
    return record


# --- renderings ----------------------------------------------------------------

_KERAS_HEADER = ("Layer (type)", "Output Shape", "Param #")
_EXTRA_HEADER = ("MACs", "Activations", "Receptive field", "Jump")
_ALIGN = ("<", "<", ">", ">", ">", ">", ">")


def _keras_cells(info: LayerInfo) -> tuple[str, ...]:
    """Layer (type), Output Shape, Param #: Keras's own columns."""
    return (f"{_one_line(info.name)} ({info.layer.kind})", sh.fmt_shape(info.output.shape),
            count(info.params))


def _extra_cells(info: LayerInfo) -> tuple[str, ...]:
    """MACs, activation memory, receptive field, jump: what cnnc adds."""
    act = info.activation_bytes
    return (count(info.macs),
            "?" if act is None else readable_memory_size(act),
            _axes(info.output.rf), _axes(info.output.jump))


def _rows(entries: list, keras_only: bool) -> list[tuple[str, ...]]:
    return [_keras_cells(info) + (() if keras_only else _extra_cells(info)) for info in entries]


def _one_line(text: str) -> str:
    """A user string (a name) safe for the terminal, on one line: control characters
    and bidi overrides as their escapes (diagnostics.visible)."""
    return visible(text)


def _pad(text: str, align: str, width: int) -> str:
    """`text` padded to `width` terminal columns (wide characters count twice)."""
    fill = " " * max(width - cell_width(text), 0)
    return fill + text if align == ">" else text + fill


def _dimension_lines(analysis: Analysis) -> list[str]:
    """The open dimensions, where each comes from and the sizes that work; the checks
    that narrow them and those that tie several together."""
    c = analysis.constraints
    dims = analysis.open_dims
    if not dims:
        return []
    lines = [" Open sizes (not fixed yet; --define NAME=VALUE fixes one):"]
    # a Keras file is checked as the .cnn text it becomes: its lines mean nothing to the reader
    own_lines = not str(analysis.model.path).lower().endswith((".keras", ".h5", ".hdf5", ".json"))

    def where_is(check) -> str:
        return f"{_one_line(check.layer)}" + (f" (line {check.line})" if own_lines else "")
    for name, where in dims.items():
        lines.append(f"   {_one_line(name)}: {c.describe(name)}" +
                     (f"  [{_one_line(where)}]" if where else ""))
        for check in c.checks_of(name)[:3]:
            if check not in c.conditions:
                lines.append(f"     {where_is(check)} needs {_one_line(check.text)}")
    if c.conditions:
        lines.append(" And for the sizes together:")
        lines += [f"   {where_is(k)} needs {_one_line(k.text)}" for k in c.conditions]
    return lines


def _dimensions_record(analysis: Analysis) -> dict:
    c = analysis.constraints
    dims = []
    for name, where in analysis.open_dims.items():
        s = c.sets.get(name)
        d = c.dims.get(name)
        dims.append({"name": name, "from": where or None, "keras_none": bool(d and d.none),
                     "sizes": c.describe(name), "first_sizes": (s.first(8) if s is not None else
                                                              list(range(1, 9))),
                     "checks": [_check_record(k) for k in c.checks_of(name) if k not in c.conditions]})
    return {"dimensions": dims, "conditions": [_check_record(k) for k in c.conditions]}


def _check_record(check) -> dict:
    return {"layer": check.layer, "line": check.line, "needs": check.text,
            "any_of": [{"expression": render_expr(e), "relation": ">= 0" if rel == "ge" else "== 0"}
                       for e, rel in check.terms]}


def _totals_lines(analysis: Analysis, keras_only: bool, show=None) -> list[str]:
    """The totals under the table; `show` writes the largest layer's name (Markdown: a code
    span, so that a name is never markup)."""
    show = show or _one_line
    b = BYTES_PER_VALUE
    lines = [
        f" Total params: {count(analysis.total_params)} "
        f"({readable_memory_size(analysis.total_params * b)})",
        f" Trainable params: {count(analysis.trainable_params)} "
        f"({readable_memory_size(analysis.trainable_params * b)})",
        f" Non-trainable params: {count(analysis.non_trainable_params)} "
        f"({readable_memory_size(analysis.non_trainable_params * b)})",
    ]
    if keras_only:
        return lines
    macs = analysis.total_macs
    lines.append(f" Total MACs: {count(macs)} per sample" +
                 ("" if isinstance(macs, Expr) else f" ({readable_count(macs)})"))
    total_act, largest, name = _activation_totals(analysis)
    if total_act is not None and largest is None:
        lines.append(f" Activation memory: {readable_memory_size(total_act)} per sample")
    elif total_act is not None:
        lines.append(f" Activation memory: {readable_memory_size(total_act)} per sample "
                     f"(largest output: {readable_memory_size(largest)}, {show(name)})")
    return lines + _dimension_lines(analysis)


_BOX = {"top": "┏━┳┓", "head": "┃┃", "sep": "┡━╇┩", "row": "││", "mid": "├─┼┤", "bottom": "└─┴┘"}
_ASCII = {"top": "+-++", "head": "||", "sep": "+=++", "row": "||", "mid": "+-++", "bottom": "+-++"}


def _can_draw_boxes(stream=None) -> bool:
    enc = getattr(stream or sys.stdout, "encoding", None) or "ascii"
    try:
        "┏━┃│└".encode(enc)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def render_text(analysis: Analysis, keras_only: bool = False, ascii: bool | None = None) -> str:
    header = _KERAS_HEADER + (() if keras_only else _EXTRA_HEADER)
    rows = _rows(summary_rows(analysis), keras_only)
    widths = [max(cell_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    box = _ASCII if (ascii if ascii is not None else not _can_draw_boxes()) else _BOX

    def rule(kind: str) -> str:
        left, fill, cross, right = box[kind]
        return left + cross.join(fill * (w + 2) for w in widths) + right

    def line(cells: Sequence[str], kind: str, aligns: Sequence[str]) -> str:
        edge, inner = box[kind][0], box[kind][1]
        body = f" {inner} ".join(_pad(c, a, w) for c, a, w in zip(cells, aligns, widths))
        return f"{edge} {body} {edge}"

    out = [f'Model: "{_one_line(analysis.model.name)}"', rule("top"),
           line(header, "head", ["<", "<"] + [">"] * (len(header) - 2)), rule("sep")]
    for k, row in enumerate(rows):
        out.append(line(row, "row", _ALIGN))
        out.append(rule("mid" if k < len(rows) - 1 else "bottom"))
    if not rows:
        out.append(rule("bottom"))
    out += _totals_lines(analysis, keras_only)
    return "\n".join(out)


# --- functional models: Keras's table exactly -----------------------------------
#
# Keras 3 prints a functional model's summary with `rich`: fixed column widths
# from `line_length` and `positions`, cells word-wrapped (at spaces; a word
# longer than its column is cut with an ellipsis), a rule between rows. The
# functions below reproduce rich's arithmetic (rich.table._calculate_column_widths,
# rich._ratio.ratio_reduce, rich._wrap.divide_line, Text.truncate) for that one
# case, so the table matches `model.summary()` character for character in a
# terminal at least 112 columns wide (narrower terminals make Keras narrow it).

KERAS_GRAPH_LAYOUT = (108, (0.3, 0.56, 0.74, 1.0))     # Keras: line_length, positions
KERAS_CHAIN_LAYOUT = (88, (0.45, 0.80, 1.0))           # a functional model that is a chain
_GRAPH_HEADER = ("Layer (type)", "Output Shape", "Param #", "Connected to")


def _ratio_reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]) -> list[int]:
    ratios = [r if m else 0 for r, m in zip(ratios, maximums)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining, out = total, []
    for ratio, maximum, value in zip(ratios, maximums, values):
        if ratio and total_ratio > 0:
            given = min(maximum, round(ratio * remaining / total_ratio))
            out.append(value - given)
            remaining -= given
            total_ratio -= ratio
        else:
            out.append(value)
    return out


def keras_column_widths(line_length: int, positions: Sequence[float]) -> list[int]:
    """The text width of each column of Keras's rich table (padding excluded)."""
    widths, current = [], 0
    for pos in positions:
        w = int(pos * line_length) - current
        widths.append(w)
        current += w
    padded = [w + 2 for w in widths]                   # rich pads a cell by one each side
    room = line_length - (len(widths) + 1)             # minus the vertical borders
    if sum(padded) > room:                             # fixed columns: reduce all evenly
        padded = _ratio_reduce(sum(padded) - room, [1] * len(padded), padded, padded)
    return [max(w - 2, 0) for w in padded]


def _cell_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1
               for c in text)


def _crop(text: str, width: int) -> str:
    """The longest prefix of `text` at most `width` cells wide."""
    if _cell_len(text) <= width:
        return text
    out, used = [], 0
    for c in text:
        w = _cell_len(c)
        if used + w > width:
            break
        out.append(c)
        used += w
    return "".join(out)


_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s+$")


def _divide_line(text: str, width: int) -> list[int]:
    """rich._wrap.divide_line without folding: where to break `text`."""
    breaks: list[int] = []
    offset = 0
    pos = 0
    while (m := _WORD.match(text, pos)) is not None:
        start, pos = m.span()
        word = m.group(0)
        length = _cell_len(word.rstrip())
        if width - offset >= length:
            offset += _cell_len(word)
        elif length > width:                  # too long for any line: its own line, cut
            if start:
                breaks.append(start)
            offset = _cell_len(word)
        elif offset and start:
            breaks.append(start)
            offset = _cell_len(word)
    return breaks


def wrap_cell(text: str, width: int, align: str = "<", ellipsis: str = "…") -> list[str]:
    """Lines of one table cell, each exactly `width` cells, as rich draws them."""
    out = []
    for para in text.replace("\t", " " * 8).split("\n"):
        cuts = [0, *_divide_line(para, width), len(para)]
        for a, b in zip(cuts, cuts[1:]):
            line = para[a:b]
            excess = _cell_len(line) - width
            if excess > 0 and (m := _TRAILING_SPACE.search(line)):
                line = line[:len(line) - min(len(m.group(0)), excess)]
            if align == ">":
                line = line.rstrip()
            if _cell_len(line) > width:
                line = _crop(line, width - 1) + ellipsis
            pad = " " * (width - _cell_len(line))
            out.append(pad + line if align == ">" else line + pad)
    return out


def _is_graph(analysis: Analysis, entries: list) -> bool:
    """Whether Keras adds "Connected to": the model is more than a chain of its rows
    (`entries`: summary_rows with the inputs)."""
    model = analysis.model
    if not model.groups:
        return model.is_graph
    return (len(model.inputs) > 1 or len(model.outputs) > 1
            or any(len(r.layer.inputs) != 1 for r in entries if r not in model.inputs))


def _connections(model, layer_inputs: Sequence[str]) -> str:
    return ", ".join(f"{_one_line(shown_as(model, name))}[0][0]" for name in layer_inputs) or "-"


def _graph_rows(analysis: Analysis, entries: list, graph: bool,
                keras_only: bool) -> list[tuple[str, ...]]:
    """One row per entry of Keras's model.layers (InputLayers included), in its order."""
    model = analysis.model
    rows = []
    for entry in entries:
        if entry in model.inputs:
            node = entry
            shape = analysis.open_shape_of(node.name) or node.shape
            row: tuple[str, ...] = (f"{_one_line(node.name)} ({node.kind})", sh.fmt_shape(shape), "0")
            if graph:
                row += ("-",)
            if not keras_only:
                flow = input_flow(node.shape)
                n = sh.numel(shape)
                row += ("0", "?" if n is None else readable_memory_size(n * BYTES_PER_VALUE),
                        _axes(flow.rf), _axes(flow.jump))
            rows.append(row)
            continue
        row = _keras_cells(entry)
        if graph:
            row += (_connections(model, entry.layer.inputs),)
        if not keras_only:
            row += _extra_cells(entry)
        rows.append(row)
    return rows


def render_functional_text(analysis: Analysis, keras_only: bool = False,
                           ascii: bool | None = None) -> str:
    """Keras's functional summary: its columns exactly as `model.summary()` draws them
    (wrapped cells, InputLayer rows, "Connected to" when the model is more than a
    chain), then, unless keras_only, cnnc's columns (one line each, fitted)."""
    entries = summary_rows(analysis, inputs=True)
    graph = _is_graph(analysis, entries)
    line_length, positions = KERAS_GRAPH_LAYOUT if graph else KERAS_CHAIN_LAYOUT
    keras_header = _GRAPH_HEADER if graph else _KERAS_HEADER
    keras_widths = keras_column_widths(line_length, positions)
    keras_aligns = ("<", "<", ">", "<")[:len(keras_header)]
    header = keras_header + (() if keras_only else _EXTRA_HEADER)
    rows = _graph_rows(analysis, entries, graph, keras_only)
    k = len(keras_header)
    extra_widths = [max(cell_width(r[i]) for r in [header, *rows]) for i in range(k, len(header))]
    widths = keras_widths + extra_widths
    aligns = keras_aligns + (">",) * len(extra_widths)
    box = _ASCII if (ascii if ascii is not None else not _can_draw_boxes()) else _BOX

    def rule(kind: str) -> str:
        left, fill, cross, right = box[kind]
        return left + cross.join(fill * (w + 2) for w in widths) + right

    def lines(cells: Sequence[str], kind: str, cell_aligns: Sequence[str]) -> list[str]:
        wrapped = [wrap_cell(c, w, a, "~" if box is _ASCII else "…")
                   for c, w, a in zip(cells, widths, cell_aligns)]
        height = max(len(c) for c in wrapped)
        edge, inner = box[kind][0], box[kind][1]
        out = []
        for i in range(height):
            parts = [c[i] if i < len(c) else " " * w for c, w in zip(wrapped, widths)]
            out.append(f"{edge} " + f" {inner} ".join(parts) + f" {edge}")
        return out

    out = [f'Model: "{_one_line(analysis.model.name)}"', rule("top"),
           *lines(header, "head", aligns), rule("sep")]
    for i, row in enumerate(rows):
        out += lines(row, "row", aligns)
        out.append(rule("mid" if i < len(rows) - 1 else "bottom"))
    if not rows:
        out.append(rule("bottom"))
    out += _totals_lines(analysis, keras_only)
    return "\n".join(out)


def _md_code(text: str) -> str:
    """`text` as a Markdown code span that survives a table cell."""
    text = visible(text).replace("|", "\\|")
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_functional_markdown(analysis: Analysis, keras_only: bool = False) -> str:
    entries = summary_rows(analysis, inputs=True)
    graph = _is_graph(analysis, entries)
    keras_header = _GRAPH_HEADER if graph else _KERAS_HEADER
    header = keras_header + (() if keras_only else _EXTRA_HEADER)
    aligns = ("<", "<", ">", "<")[:len(keras_header)] + (">",) * (len(header) - len(keras_header))
    model = analysis.model
    out = [f"**Model: {_md_code(model.name)}**", "",
           "| " + " | ".join(header) + " |",
           "|" + "|".join(":---" if a == "<" else "---:" for a in aligns) + "|"]
    for entry, row in zip(entries, _graph_rows(analysis, entries, graph, keras_only)):
        is_input = entry in model.inputs
        cells = [f"{_md_code(entry.name)} ({entry.kind if is_input else entry.layer.kind})",
                 _md_code(row[1]), row[2]]
        if graph:
            srcs = () if is_input else entry.layer.inputs
            cells.append("<br>".join(_md_code(f"{shown_as(model, s)}[0][0]") for s in srcs) or "-")
        cells += row[len(keras_header):]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out += [f"- {line.strip()}" for line in _totals_lines(analysis, keras_only, _md_code)]
    return "\n".join(out)


def render_markdown(analysis: Analysis, keras_only: bool = False) -> str:
    header = _KERAS_HEADER + (() if keras_only else _EXTRA_HEADER)
    entries = summary_rows(analysis)
    rows = _rows(entries, keras_only)
    out = [f"**Model: {_md_code(analysis.model.name)}**", "",
           "| " + " | ".join(header) + " |",
           "|" + "|".join(":---" if a == "<" else "---:" for a in _ALIGN[:len(header)]) + "|"]
    for info, row in zip(entries, rows):
        cells = [f"{_md_code(info.name)} ({info.layer.kind})", f"`{row[1]}`", *row[2:]]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out += [f"- {line.strip()}" for line in _totals_lines(analysis, keras_only, _md_code)]
    return "\n".join(out)


def render(analysis: Analysis, format: str = "text", diagnostics: Iterable[Diagnostic] = (),
           keras_only: bool = False, ascii: bool | None = None) -> str:
    if format == "json":
        return json_dumps(to_dict(analysis, diagnostics))   # never NaN; strings UTF-8
    functional = analysis.model.functional
    if format == "markdown":
        return (render_functional_markdown if functional else render_markdown)(analysis, keras_only)
    if format == "text":
        return (render_functional_text if functional else render_text)(analysis, keras_only, ascii)
    hint = did_you_mean(format, FORMATS) if isinstance(format, str) else ""
    raise UsageError(f"unknown summary format {format!r}; choose from {', '.join(FORMATS)}",
                     [hint] if hint else [])
