"""Import a Keras model file as a .cnn file and its weights as a .npz.

Reads a `.keras` (Keras 3), a Keras 2 / tf.keras `.h5`, or the JSON of
`model.to_json()` (with --weights for its weights), with json, zipfile and h5py
only: nothing is unpickled and no code from the file runs; a Lambda layer or a
custom class is refused by name, every one of the file in one run (exit 1,
nothing written). Writes NET.cnn (readable: the linear form for a Sequential
model, the functional form for a graph; arguments only where they differ from
Keras 3's defaults) and NET.npz next to it ("<layer>/<weight>", Keras names and
layouts). The .cnn is checked before anything is written; both files are written
atomically and never over an input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnc.support.names import shown_path

HELP = "import a Keras model file (.keras, .h5, .json) as .cnn + .npz weights"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the Keras model file (.keras, .h5, .json)")
    p.add_argument("-o", "--output", metavar="NET.cnn",
                   help="the .cnn to write (default: FILE with .cnn); the weights go next to "
                        "it with .npz")
    p.add_argument("--weights", metavar="WEIGHTS",
                   help="weights for a JSON model (.weights.h5, .h5 or .npz); for .keras/.h5: "
                        "instead of the file's own")
    p.add_argument("--no-weights", action="store_true", help="write the .cnn only")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")


def output_paths(source: str, output: str | None) -> tuple[Path, Path]:
    if output is None:
        cnn = Path(source).with_suffix(".cnn")
    else:
        cnn = Path(output)
        if cnn.is_dir() or output.endswith(("/", "\\")):
            cnn = cnn / Path(source).with_suffix(".cnn").name
    return cnn, cnn.with_suffix(".npz")


def run(args: argparse.Namespace) -> int:
    from cnnc.commands._common import print_diagnostics, refuse_default_over_existing
    from cnnc.frontends.cnn import check_text
    from cnnc.frontends.keras import check_file, is_keras_path
    from cnnc.support.atomic import Transaction, check_outputs
    from cnnc.support.diagnostics import CnncError, UsageError

    if not is_keras_path(args.file) or args.file.lower().endswith(".weights.h5"):
        raise UsageError(f"'{shown_path(args.file)}' is not a Keras model file (.keras, .h5 or .json)",
                         ["cnnc import reads Keras files; a .cnn file is already cnnc's"])
    cnn_path, npz_path = output_paths(args.file, args.output)
    if cnn_path.suffix != ".cnn":
        raise UsageError(f"the output '{shown_path(cnn_path)}' should end in .cnn")
    inputs = [args.file] + ([args.weights] if args.weights else [])
    outputs = [(cnn_path, "the .cnn")] + ([] if args.no_weights else [(npz_path, "the weights")])
    if args.output is None or cnn_path.name != Path(args.output).name:
        # a default output (no -o, or -o a folder) never replaces a file the user has
        refuse_default_over_existing(outputs, "-o NET.cnn")
    check_outputs(outputs, inputs)
    # The .cnn text, checked: its diagnostics in the Keras file's terms.
    checked = check_file(args.file)
    if not checked.ok:
        raise CnncError(checked.diagnostics, checked.source, exit_code=1)
    if not args.quiet:
        print_diagnostics(checked)
    weights, origin = None, ""
    if not args.no_weights:
        from cnnc.model import Model
        model = Model(checked)
        if args.weights:
            model.load_weights(args.weights)
            origin = f"file {shown_path(args.weights)} (--weights)"
        elif not model.has_weights:
            raise UsageError(f"'{shown_path(args.file)}' has no weights",
                             ["give them with --weights (.weights.h5, .h5 or .npz), or "
                              "write the .cnn only with --no-weights"])
        else:
            origin = f"the file's own ({shown_path(args.file)})"
        weights = model.weights
    text = checked.source.text
    again = check_text(text, str(cnn_path))       # what the written file will say
    if not again.ok:   # pragma: no cover - the same text checked above
        raise CnncError(again.diagnostics, again.source, exit_code=1)
    # One transaction: the .cnn and its weights appear together or not at all (Ctrl-C,
    # kill -9, two imports at once, a full disk never leave a mismatched pair).
    with Transaction(protect=inputs) as tx:
        tx.write_bytes(cnn_path, text.encode("utf-8"))
        if weights is not None:
            from cnnc.support import weights as W
            tx.write_bytes(npz_path, W.npz_bytes(weights))
    if not args.quiet:
        layers = len(checked.ir.layers)
        print(f"wrote {shown_path(cnn_path)} ({layers} layer{'s' if layers != 1 else ''}, "
              f"{checked.analysis.total_params:,} parameters)")
        if weights is not None:
            print(f"wrote {shown_path(npz_path)} ({len(weights)} arrays; weights: {origin})")
    return 0
