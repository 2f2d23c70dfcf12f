"""Summary rows that stand for several layers.

A Keras script may define its own `keras.layers.Layer` subclass whose `call()` is
built from Keras layers (Géron's ResidualUnit), or call a model as a layer (a nested
model: a Keras application, a data-augmentation Sequential, ConvNeXt's stem in a
.keras file). cnnc follows them, so the IR holds the inner layers and every phase runs
them as usual; Keras's summary, though, shows each as one row (its name and class,
the output of its call, the sum of its weights). `regroup` records which layers form which row; `summary_rows`
gives the rows in Keras's order, for the summary and for comparing with Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from cnnc.analysis.graph_order import keras_order
from cnnc.analysis.ir import Layer, ModelIR


def regroup(ir: ModelIR, groups: Mapping[str, tuple[str, str]],
            rank: Mapping[str, int] | None = None, functional: bool | None = None) -> ModelIR:
    """`ir` with `groups` (layer name -> (row name, class shown)) recorded on its
    layers. Rows are ordered by `rank` (row name -> position: a subclassed model lists
    its layers in the order it created them) or else as Keras orders a graph whose
    custom layers are single nodes. `functional` overrides the table style."""
    def mark(layer: Layer) -> Layer:
        g = groups.get(layer.name)
        return layer if g is None else replace(layer, group=g[0])

    layers = tuple(mark(l) for l in ir.layers)
    kinds = {row: kind for row, kind in groups.values()}
    row_of = {l.name: l.name if l.group is None else l.group for l in layers}
    if rank is not None:
        rows = list(dict.fromkeys(row_of[l.name] for l in layers))
        rows.sort(key=lambda r: rank.get(r, len(rank)))
        order = [n.name for n in ir.inputs] + rows
    else:
        parents: dict[str, list[str]] = {}
        for l in layers:
            row = row_of[l.name]
            ps = parents.setdefault(row, [])
            ps += [row_of.get(i, i) for i in l.inputs if row_of.get(i, i) not in ps and row_of.get(i, i) != row]
        outs = list(dict.fromkeys(row_of.get(o, o) for o in ir.outputs))
        order = keras_order(parents, [n.name for n in ir.inputs], outs)
    return replace(ir, layers=layers, groups=kinds, row_order=tuple(order),
                   functional=ir.functional if functional is None else functional,
                   detached=tuple(mark(l) for l in ir.detached))


@dataclass(frozen=True)
class GroupInfo:
    """One summary row for a group of layers, read like a LayerInfo by the renderers."""

    name: str
    kind: str
    members: tuple[Any, ...]          # the LayerInfos, in model order
    output_info: Any                  # the member whose output is the row's output
    inputs: tuple[str, ...]           # tensors from outside the row (its "Connected to")

    @property
    def layer(self):                  # renderers ask info.layer.kind and .inputs
        return self

    @property
    def output(self):
        return self.output_info.output

    @property
    def output_shape(self):
        return self.output_info.output_shape

    @property
    def params(self) -> int:
        return sum(m.params for m in self.members)

    @property
    def trainable_params(self) -> int:
        return sum(m.trainable_params for m in self.members)

    @property
    def non_trainable_params(self) -> int:
        return sum(m.non_trainable_params for m in self.members)

    @property
    def macs(self) -> int | None:
        values = [m.macs for m in self.members]
        return None if any(v is None for v in values) else sum(values)

    @property
    def activation_bytes(self) -> int | None:
        return self.output_info.activation_bytes


def group_infos(analysis) -> dict[str, GroupInfo]:
    """Every row of `analysis`'s model that stands for several layers: its members,
    output and outside inputs (one pass over the layers)."""
    model = analysis.model
    members: dict[str, list] = {}
    readers: dict[str, set] = {}          # tensor -> the rows of the layers reading it
    for i in analysis.infos:
        if i.layer.group is not None:
            members.setdefault(i.layer.group, []).append(i)
        for s in i.layer.inputs:
            readers.setdefault(s, set()).add(i.layer.group)
    rows = {l.name: l.group or l.name for l in model.layers}
    outputs = set(model.outputs)
    out = {}
    for row, group in members.items():
        if row not in model.groups:
            continue
        inside = {m.name for m in group}
        # Keras's row shows what call() returned: the member read from outside (or an output)
        exits = [m for m in group if m.name in outputs or readers.get(m.name, set()) - {row}]
        # a weightless layer a subclassed model calls twice: Keras shows its first call
        own = next((m for m in group if m.name == row), None)
        last = own if own is not None else exits[-1] if exits else group[-1]
        ins = dict.fromkeys(s for m in group for s in m.layer.inputs if s not in inside)
        out[row] = GroupInfo(row, model.groups[row], tuple(group), last,
                             tuple(dict.fromkeys(rows.get(s, s) for s in ins)))
    return out


def summary_rows(analysis, inputs: bool = False) -> list:
    """The rows of Keras's summary in its order: LayerInfos, GroupInfos and (when
    `inputs`) the InputNodes; a model without groups gives its LayerInfos."""
    model = analysis.model
    order = model.row_order or model.layer_order or tuple(i.name for i in analysis.infos)
    nodes = {n.name: n for n in model.inputs}
    groups = group_infos(analysis) if model.groups else {}
    out: list = []
    for name in order:
        if name == "":
            continue                  # what a subclassed model's call() does between layers
        if name in nodes:
            if inputs:
                out.append(nodes[name])
        elif name in groups:
            out.append(groups[name])
        else:
            out.append(analysis.info(name))
    return out


def shown_as(model: ModelIR, name: str) -> str:
    """The row a node's tensor is shown under ("Connected to" names the custom layer)."""
    if not model.groups:
        return name
    layer = model.find(name)
    return layer.group if layer is not None and layer.group else name
