"""Lowering a checked model to ONNX: standard ops, NHWC at the boundary, NCHW inside.

    proto = to_onnx(analysis, weights)                      # verified onnx.ModelProto
    export(analysis, weights, "deploy/net.onnx", source=src)  # verified, then written atomically

It takes a model's Analysis and its weights ("layer/weight" -> Keras array); the
source, when given, puts each layer's line into the graph's documentation.

The graph takes one input named "input", shaped like Keras's (batch, *spatial,
channels) with a symbolic "batch" dimension, and gives one output named
"output" in Keras's layout. Inside, images are channels-first and the layout
of every tensor is tracked (`graph.Value`) so that Transposes appear only
where needed. Inference semantics: Dropout is dropped, BatchNormalization
uses its moving statistics. Every model is verified (`verify`) before it is
returned or written. See docs/ONNX.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import onnx
from onnx import helper

from cnnc.analysis.infer import Analysis
from cnnc.analysis.symbolic import Expr, dims_of
from cnnc.backends.onnx import fold
from cnnc.backends.onnx.graph import FLOAT, ExternalSink, Graph, Value, channels_last  # noqa: F401
from cnnc.backends.onnx.registry import RULES
from cnnc.backends.onnx.step import Step
from cnnc.backends.onnx.verify import (  # noqa: F401
    VerificationError,
    check_and_infer,
    check_and_infer_path,
    check_and_infer_serialized,
    smoke_run,
)
from cnnc.support.diagnostics import Source, UsageError
from cnnc.support.names import path_text, utf8_text
from cnnc.support.version import __version__
from cnnc.support.weights import check

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "MAX_OPSET", "INPUT_NAME", "OUTPUT_NAME", "Lowered",
           "VerificationError", "lower", "to_onnx", "export", "default_path", "write"]

DEFAULT_OPSET = 17
MIN_OPSET = 13     # Softmax/LogSoftmax act on one axis from 13 on


def _runtime_max_opset() -> int:
    """onnxruntime runs opset 21 from 1.18 on, 20 in 1.17 (the oldest cnnc allows)."""
    from importlib import metadata
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            major, minor = (int(p) for p in metadata.version(dist).split(".")[:2])
        except (metadata.PackageNotFoundError, ValueError):
            continue
        return 21 if (major, minor) >= (1, 18) else 20
    return 21


# The newest opset tested here, within what the installed onnx and onnxruntime support.
MAX_OPSET = min(21, onnx.defs.onnx_opset_version(), _runtime_max_opset())

INPUT_NAME = "input"
OUTPUT_NAME = "output"
INPUT_DOC = "float32, channels_last as in Keras: (batch, *spatial, channels)"

# Protobuf cannot serialize a message over 2 GiB: above this many bytes of weights the
# model is written as NAME.onnx plus its weights in NAME.onnx.data (ONNX external data).
EXTERNAL_THRESHOLD = 2**31 - 64 * 2**20
STREAM_THRESHOLD = 64 * 2**20     # weights above it are verified from a file, not from memory

_AXIS_NAMES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}


@dataclass
class Lowered:
    """A verified ONNX model and what the compile report shows about it."""

    proto: onnx.ModelProto
    opset: int
    transposes: int
    finite: bool = True                                 # smoke run gave finite outputs
    checks: tuple[str, ...] = field(default=())
    data: bytes | None = field(default=None, repr=False)   # proto serialized, as verified
    staged: Path | None = None    # external data: the verified files, in a temp folder
    inline: bool = False          # staged only to save memory: written back as one file

    @property
    def nodes(self) -> int:
        return len(self.proto.graph.node)

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.proto.graph.node:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
        return counts


def check_opset(opset: int | None) -> int:
    if opset is None:
        return DEFAULT_OPSET
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UsageError(f"opset {opset} is not supported",
                         [f"cnnc writes opsets {MIN_OPSET} to {MAX_OPSET} (default {DEFAULT_OPSET})"])
    return opset


def _input_dims(shape: tuple[int | None, ...], named: tuple = ()) -> list[int | str]:
    """The ONNX input dimensions: symbolic "batch", then the sizes; an open size the source
    names (`input (H, W, 3)`) keeps its name, a None is named after its axis."""
    names = _AXIS_NAMES.get(len(shape) - 1, ())
    dims: list[int | str] = ["batch"]
    for i, n in enumerate(shape):
        own = named[i] if i < len(named) else None
        source_named = isinstance(own, Expr) and str(own) in dims_of(own) and \
            not dims_of(own)[str(own)].auto
        if n is not None:
            dims.append(n)
        elif source_named:
            dims.append(str(own))
        else:
            dims.append(names[i] if i < len(names) else f"dim{i + 1}")
    return dims


def _layer_doc(analysis: Analysis, source: Source | None, info) -> str:
    layer = info.layer
    where = f"{layer.kind} '{layer.name}' ({path_text(analysis.model.path)}:{layer.span.line})"
    return utf8_text(f"{where}: {source.line_text(layer.span.line).strip()}" if source is not None
                     else where)


def _layer_weights(info, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {w.name: np.asarray(weights[f"{info.name}/{w.name}"], np.float32) for w in info.weights}


def _io_names(g: Graph, names: list[str], single: str) -> list[str]:
    """ONNX names of the graph's inputs or outputs: `single` for one (as cnnc always
    wrote), Keras's names for several."""
    if len(names) == 1:
        g.reserve(single)
        return [single]
    return [g.fresh(n) for n in names]


def build(analysis: Analysis, weights: Mapping[str, np.ndarray], opset: int | None = None,
          metadata: Mapping[str, str] | None = None, *, source: Source | None = None,
          fold_bn: bool = True, sink: ExternalSink | None = None) -> tuple[onnx.ModelProto, dict[str, tuple]]:
    """The unverified graph, and the shape (batch included) every layer's output must have.
    fold_bn: BatchNormalization after a convolution and ZeroPadding before one are folded
    into it (fold.py)."""
    opset = check_opset(opset)
    ir = analysis.model
    name = ir.name
    if not ir.inputs:
        raise UsageError(f"model '{name}' has no input shape, so it cannot be lowered",
                         ["declare it, e.g. `input (28, 28, 1)`, or give the first layer input_shape="])
    if not analysis.complete:
        raise UsageError(f"model '{name}' has unknown shapes and cannot be lowered")
    # checked, never kept: the graph copies them into its initializers
    weights = check(dict(weights), analysis.weight_shapes(), name, "weights", owned=True)
    g = Graph(opset, sink)
    in_names = _io_names(g, [n.name for n in ir.inputs], INPUT_NAME)
    out_names = _io_names(g, list(ir.outputs), OUTPUT_NAME)
    values: dict[str, Value] = {n.name: Value(onnx_name, tuple(n.shape))
                                for n, onnx_name in zip(ir.inputs, in_names)}
    expected: dict[str, tuple] = {}
    folds = fold.plan(analysis) if fold_bn else {}
    pad_folds = fold.pad_plan(analysis) if fold_bn else {}
    folded_into = {conv: bn for bn, conv in folds.items()}
    pre_pads: dict[str, tuple] = {}
    for info in analysis.infos:
        if info.name in folds:          # already inside the convolution before it
            values[info.name] = values[folds[info.name]]
            continue
        if info.name in pad_folds:      # becomes the pads of the convolution after it
            values[info.name] = values[ir.inputs_of(info.layer)[0]]
            pre_pads[pad_folds[info.name]] = info.layer["padding"]
            continue
        layer_w = _layer_weights(info, weights)
        if info.name in folded_into:
            bn = analysis.info(folded_into[info.name])
            layer_w = fold.fold(info, layer_w, bn, _layer_weights(bn, weights))
        step = Step(g, info, layer_w, _layer_doc(analysis, source, info), pre_pads.get(info.name))
        rule = RULES[info.layer.family]
        if info.layer.spec.multi_input:
            y = rule(step, [values[s] for s in ir.inputs_of(info.layer)])
        else:
            y = rule(step, values[ir.inputs_of(info.layer)[0]])
        values[info.name] = y
        expected[y.name] = ("batch", *y.physical_shape())
    outputs = []
    for tensor, onnx_name in zip(ir.outputs, out_names):
        y = channels_last(g, values[tensor])
        if not g.produced(y.name) or y.name in out_names or y.name in in_names:
            # an input, a stack of Dropouts, or a tensor already named as another output
            y = Value(g.node("Identity", [y.name], "identity"), y.shape)
        g.rename_output(y.name, onnx_name)
        expected = {onnx_name if k == y.name else k: v for k, v in expected.items()}
        expected[onnx_name] = ("batch", *y.shape)
        outputs.append(helper.make_tensor_value_info(
            onnx_name, FLOAT, ["batch", *y.shape], f"float32, Keras's layout of '{tensor}': "
            "(batch, *output_shape)"))
    named = analysis.open_inputs or [()] * len(ir.inputs)
    inputs = [helper.make_tensor_value_info(onnx_name, FLOAT, _input_dims(tuple(n.shape), own),
                                            INPUT_DOC + (f"; Keras input '{n.name}'" if len(in_names) > 1 else ""))
              for n, onnx_name, own in zip(ir.inputs, in_names, named)]
    shapes = ", ".join(str(tuple(n.shape)) for n in ir.inputs)
    # protobuf strings are UTF-8: a source path with a byte that is not (a latin-1 file
    # name) goes in as its escape (support/names.path_text); names were checked by resolve
    where = path_text(ir.path)
    graph = helper.make_graph(g.nodes, name or "model", inputs, outputs, initializer=g.initializers,
                              doc_string=f"cnnc model '{name}' from {where}; "
                                         f"input {shapes} per sample, channels_last")
    proto = helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", opset)],
                                          producer_name="cnnc", producer_version=__version__,
                                          doc_string=f"{name}: compiled by cnnc {__version__} "
                                                     f"from {where}")
    props = {"source": where, "cnnc_version": __version__, "model": name,
             "input_layout": "channels_last (NHWC)", "input_name": ",".join(in_names),
             "output_name": ",".join(out_names)}
    props.update({k: utf8_text(str(v)) for k, v in (metadata or {}).items()})
    helper.set_model_props(proto, props)
    return proto, expected


def lower(analysis: Analysis, weights: Mapping[str, np.ndarray], opset: int | None = None,
          metadata: Mapping[str, str] | None = None, *, source: Source | None = None,
          path: str | Path | None = None, external_threshold: int | None = None) -> Lowered:
    """Build and verify; raises VerificationError (a cnnc bug) if a check fails.
    Weights over `external_threshold` bytes (default EXTERNAL_THRESHOLD, protobuf's
    limit) go to external data: that needs the `path` the model will be written to;
    the files are staged and verified beside it, and `write` moves them in place.
    Weights over STREAM_THRESHOLD are staged the same way, to hold one copy of them in
    memory, and `write` streams them back into one .onnx (inline.py)."""
    opset = check_opset(opset)
    checks = ("onnx.checker full_check", "strict shape inference matches cnnc's shapes",
              "onnxruntime smoke run")
    threshold = EXTERNAL_THRESHOLD if external_threshold is None else external_threshold
    size = BYTES_PER_WEIGHT * analysis.total_params
    inline = threshold >= size > STREAM_THRESHOLD and path is not None
    if size > threshold or inline:
        if path is None:
            raise UsageError(f"model '{analysis.model.name}' has {size:,} bytes of weights, too many for one "
                             "ONNX message (protobuf's 2 GB limit)",
                             ["write it to a file (cnnc compile -o NAME.onnx, Model.to_onnx(path)): "
                              "its weights go to NAME.onnx.data beside it"])
        staged, inferred = _build_staged(analysis, weights, opset, metadata, source, Path(path),
                                         min(1024, max(0, threshold)))
        try:
            finite = smoke_run(str(staged / Path(path).name), analysis)
        except BaseException:
            _remove_tree(staged)
            raise
        return Lowered(inferred, opset, sum(n.op_type == "Transpose" for n in inferred.graph.node),
                       finite, checks + (() if inline else ("weights in external data",)), None,
                       staged, inline)
    proto, expected = build(analysis, weights, opset, metadata, source=source)
    proto, data = check_and_infer_serialized(proto, expected)
    finite = smoke_run(data, analysis)
    return Lowered(proto, opset, sum(n.op_type == "Transpose" for n in proto.graph.node), finite,
                   checks, data)


BYTES_PER_WEIGHT = 4    # float32


def weight_bytes(proto: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) or t.ByteSize() for t in proto.graph.initializer)


def data_path(path: str | Path) -> Path:
    """Where the external weights of the model at `path` go: NAME.onnx.data beside it."""
    path = Path(path)
    return path.with_name(path.name + ".data")


def _remove_tree(folder: Path) -> None:
    import shutil
    shutil.rmtree(folder, ignore_errors=True)


def _build_staged(analysis: Analysis, weights, opset: int, metadata, source: Source | None,
                  path: Path, min_bytes: int) -> tuple[Path, onnx.ModelProto]:
    """Build the model into a temp folder beside `path` (same file system, so `write`
    renames), its initializers written to NAME.onnx.data as they are made, and verify
    it there; (folder, inferred model without its weights)."""
    import os
    import secrets

    from cnnc.support.atomic import TMP_SUFFIX, clean_stale, output_error
    folder = path.parent if str(path.parent) else Path(".")
    staged = folder / f".{path.name}.cnnc-{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}"
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            clean_stale(folder, path.name)
            staged.mkdir()
            sink = ExternalSink(staged / data_path(path).name, min_bytes)
            try:
                proto, expected = build(analysis, weights, opset, metadata, source=source, sink=sink)
            finally:
                sink.close()
            onnx.save_model(proto, str(staged / "model.onnx"))
        except OSError as e:
            raise output_error(path, e) from None
        inferred = check_and_infer_path(staged / "model.onnx", staged / path.name, expected)
    except BaseException:
        _remove_tree(staged)
        raise
    return staged, inferred


def to_onnx(analysis: Analysis, weights: Mapping[str, np.ndarray], opset: int | None = None, *,
            source: Source | None = None) -> onnx.ModelProto:
    """The verified ONNX model of `analysis` with `weights`."""
    return lower(analysis, weights, opset, source=source).proto


def default_path(source: str | Path) -> Path:
    """net.cnn -> net.onnx next to it."""
    return Path(source).with_suffix(".onnx")


def write(proto: onnx.ModelProto, path: str | Path, protect=(), data: bytes | None = None,
          staged: Path | None = None, inline: bool = False) -> int:
    """Write atomically, refusing to overwrite any `protect` file; returns the size in bytes.
    `data`: the proto already serialized (Lowered.data), to skip serializing it again.
    `staged`: Lowered.staged, a model with external data verified beside `path`: the
    weights file (NAME.onnx.data) is renamed in place first, then the model, so each
    file is whole at every moment."""
    from cnnc.support.atomic import check_outputs, commit, output_error, write_bytes
    path = Path(path)
    if staged is None and data is None and weight_bytes(proto) > EXTERNAL_THRESHOLD:
        raise UsageError(f"the ONNX model for '{path}' is over protobuf's 2 GB limit",
                         ["lower it with lower(analysis, weights, path=...) so its weights go to "
                          "external data"])
    if staged is None:
        if data is None:
            data = proto.SerializeToString()
        write_bytes(path, data, protect)
        return len(data)
    import os
    if inline:
        return _write_inline(staged, path, protect)
    try:
        ext = data_path(path)
        check_outputs([(path, "the ONNX model"), (ext, "its external data")], protect, probe=False)
        sizes = 0
        moves = []
        for src, dst in ((staged / ext.name, ext), (staged / path.name, path)):
            if not src.exists():     # no tensor was large enough to go to external data
                continue
            try:
                fd = os.open(src, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                raise output_error(dst, e) from None
            sizes += os.path.getsize(src)
            moves.append((src, dst))
        # one transaction: the model and its data file appear together (support/atomic.commit)
        commit(moves, {dst: os.path.lexists(dst) for _, dst in moves})
        return sizes
    finally:
        _remove_tree(staged)


def _write_inline(staged: Path, path: Path, protect) -> int:
    """One .onnx from the staged model and its data, streamed (inline.py), atomically."""
    from cnnc.backends.onnx.inline import inline
    from cnnc.support.atomic import atomic_write
    try:
        with atomic_write(path, "wb", protect) as out:
            return inline(staged / path.name, out)
    finally:
        _remove_tree(staged)


def export(analysis: Analysis, weights: Mapping[str, np.ndarray], path: str | Path | None = None,
           opset: int | None = None, *, source: Source | None = None,
           external_threshold: int | None = None) -> onnx.ModelProto:
    """Verify, then write to `path` (atomically, never over the model's source) when given;
    returns the model (without its weights when they went to external data,
    NAME.onnx.data beside `path`)."""
    protect = [analysis.model.path]
    if path is not None:
        from cnnc.support.atomic import check_outputs
        check_outputs([(path, "the ONNX model")], protect)
    lowered = lower(analysis, weights, opset, source=source, path=path,
                    external_threshold=external_threshold)
    if path is not None:
        write(lowered.proto, path, protect=protect, data=lowered.data, staged=lowered.staged,
              inline=lowered.inline)
    return lowered.proto
