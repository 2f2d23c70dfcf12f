"""The summary report: Keras's table and totals, plus what Keras does not show.

Three renderings of one `to_dict` record: text (Keras's box table), JSON
(every number, documented in docs/SUMMARY.md, stable key order) and Markdown.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

from . import __version__
from . import shapes as sh
from .arguments import Initializer, Regularizer
from .diagnostics import Diagnostic
from .infer import BYTES_PER_VALUE, Analysis, LayerInfo

SCHEMA = "cnnc.summary/1"
FORMATS = ("text", "json", "markdown")


def readable_memory_size(size: float) -> str:
    """Keras's byte formatting: 1024-based, two decimals (364.54 KB)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def readable_count(n: int | None) -> str:
    """1000-based short form for operation counts: 2.79 M."""
    if n is None:
        return "?"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def _axes(values: Sequence[int] | None) -> str:
    return "-" if values is None else "x".join(str(v) for v in values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
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
        "output_shape": [None, *info.output_shape],
        "params": info.params,
        "trainable_params": info.trainable_params,
        "non_trainable_params": info.non_trainable_params,
        "weights": [{"name": w.name, "shape": list(w.shape), "trainable": w.trainable,
                     "params": w.size, "initializer": w.initializer.name,
                     "regularizer": None if w.regularizer is None else
                     {"l1": w.regularizer.l1, "l2": w.regularizer.l2}} for w in info.weights],
        "macs": info.macs,
        "activation_bytes": info.activation_bytes,
        "receptive_field": None if info.output.rf is None else list(info.output.rf),
        "jump": None if info.output.jump is None else list(info.output.jump),
        "config": {k: _jsonable(v) for k, v in layer.args.items()},
    }


def _activation_totals(analysis: Analysis) -> tuple[int | None, int | None, str | None]:
    sizes = [(i.activation_bytes, i.name) for i in analysis.infos]
    if not sizes or any(s is None for s, _ in sizes):
        return None, None, None
    largest = max(sizes, key=lambda t: t[0])
    return sum(s for s, _ in sizes), largest[0], largest[1]


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
        "layers": [_layer_record(i) for i in analysis.infos],
        "totals": {
            "params": analysis.total_params,
            "trainable_params": analysis.trainable_params,
            "non_trainable_params": analysis.non_trainable_params,
            "params_bytes": analysis.total_params * BYTES_PER_VALUE,
            "trainable_bytes": analysis.trainable_params * BYTES_PER_VALUE,
            "non_trainable_bytes": analysis.non_trainable_params * BYTES_PER_VALUE,
            "macs": analysis.total_macs,
            "activation_bytes": total_act,
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
    }
    return record


# --- renderings ----------------------------------------------------------------

_KERAS_HEADER = ("Layer (type)", "Output Shape", "Param #")
_EXTRA_HEADER = ("MACs", "Activations", "Receptive field", "Jump")
_ALIGN = ("<", "<", ">", ">", ">", ">", ">")


def _rows(analysis: Analysis, keras_only: bool) -> list[tuple[str, ...]]:
    rows = []
    for info in analysis.infos:
        row = (f"{info.name} ({info.layer.kind})", sh.fmt_shape(info.output_shape), f"{info.params:,}")
        if not keras_only:
            act = info.activation_bytes
            row += ("?" if info.macs is None else f"{info.macs:,}",
                    "?" if act is None else readable_memory_size(act),
                    _axes(info.output.rf), _axes(info.output.jump))
        rows.append(row)
    return rows


def _totals_lines(analysis: Analysis, keras_only: bool) -> list[str]:
    b = BYTES_PER_VALUE
    lines = [
        f" Total params: {analysis.total_params:,} ({readable_memory_size(analysis.total_params * b)})",
        f" Trainable params: {analysis.trainable_params:,} "
        f"({readable_memory_size(analysis.trainable_params * b)})",
        f" Non-trainable params: {analysis.non_trainable_params:,} "
        f"({readable_memory_size(analysis.non_trainable_params * b)})",
    ]
    if keras_only:
        return lines
    macs = analysis.total_macs
    lines.append(f" Total MACs: {'?' if macs is None else f'{macs:,}'} per sample "
                 f"({readable_count(macs)})")
    total_act, largest, name = _activation_totals(analysis)
    if total_act is not None:
        lines.append(f" Activation memory: {readable_memory_size(total_act)} per sample "
                     f"(largest output: {readable_memory_size(largest)}, {name})")
    return lines


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
    rows = _rows(analysis, keras_only)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    box = _ASCII if (ascii if ascii is not None else not _can_draw_boxes()) else _BOX

    def rule(kind: str) -> str:
        left, fill, cross, right = box[kind]
        return left + cross.join(fill * (w + 2) for w in widths) + right

    def line(cells: Sequence[str], kind: str, aligns: Sequence[str]) -> str:
        edge, inner = box[kind][0], box[kind][1]
        body = f" {inner} ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths))
        return f"{edge} {body} {edge}"

    out = [f'Model: "{analysis.model.name}"', rule("top"),
           line(header, "head", ["<", "<"] + [">"] * (len(header) - 2)), rule("sep")]
    for k, row in enumerate(rows):
        out.append(line(row, "row", _ALIGN))
        out.append(rule("mid" if k < len(rows) - 1 else "bottom"))
    if not rows:
        out.append(rule("bottom"))
    out += _totals_lines(analysis, keras_only)
    return "\n".join(out)


def render_markdown(analysis: Analysis, keras_only: bool = False) -> str:
    header = _KERAS_HEADER + (() if keras_only else _EXTRA_HEADER)
    rows = _rows(analysis, keras_only)
    out = [f"**Model: `{analysis.model.name}`**", "",
           "| " + " | ".join(header) + " |",
           "|" + "|".join(":---" if a == "<" else "---:" for a in _ALIGN[:len(header)]) + "|"]
    for row in rows:
        cells = [f"`{row[0].split(' ')[0]}` ({row[0].split('(')[-1]}", f"`{row[1]}`", *row[2:]]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out += [f"- {line.strip()}" for line in _totals_lines(analysis, keras_only)]
    return "\n".join(out)


def render(analysis: Analysis, format: str = "text", diagnostics: Iterable[Diagnostic] = (),
           keras_only: bool = False, ascii: bool | None = None) -> str:
    if format == "json":
        return json.dumps(to_dict(analysis, diagnostics), indent=2)
    if format == "markdown":
        return render_markdown(analysis, keras_only)
    if format == "text":
        return render_text(analysis, keras_only, ascii)
    raise ValueError(f"unknown summary format {format!r}; choose from {', '.join(FORMATS)}")
