"""Train a model with the NumPy reference and write Keras-compatible weights.

Settings come from the file's compile(...) and fit(...); flags override them.
Writes the weights (-o, default ./<model file stem>.npz), the history as JSON
next to them (<output stem>.history.json, rewritten after every epoch) and a
checkpoint directory (<output stem>.ckpt/) at the end of every epoch and every
--checkpoint-every seconds. `--resume` continues from that checkpoint and ends
with the same weights as an uninterrupted run. uint8 images are scaled by
1/255 (digits by 1/16) unless --no-scale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnnc.commands._common import MODEL_FILE_HELP, add_threads_argument
from cnnc.support.diagnostics import UsageError, visible, visible_lines
from cnnc.support.names import json_dumps, shown_path

HELP = "train a model on a dataset (Keras fit) and write its weights"


def add_data_arguments(p: argparse.ArgumentParser, threads: bool = True) -> None:
    p.add_argument("--data", required=True, metavar="SPEC",
                   help="fashion-mnist, digits, a .npz (x_train, y_train, x_test, y_test) "
                        "or a directory of IDX files")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N samples of each split")
    p.add_argument("--no-scale", dest="scale", action="store_false",
                   help="do not scale uint8 images by 1/255 (digits by 1/16)")
    if threads:
        add_threads_argument(p)


def check_data_arguments(args: argparse.Namespace) -> None:
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help=MODEL_FILE_HELP)
    from cnnc.commands._common import add_source_arguments
    add_source_arguments(p)
    add_data_arguments(p, threads=False)
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads sharing each batch, one core each (default: all cores); a "
                        "seeded run repeats exactly, and resumes exactly, at the same N")
    p.add_argument("-o", "--output", metavar="WEIGHTS.npz",
                   help="where to write the trained weights (default: ./<FILE stem>.npz)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint of a stopped run")
    g = p.add_argument_group("overrides of the file's compile(...) and fit(...)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--validation-split", type=float)
    g.add_argument("--seed", type=int, help="makes the run repeatable (init, shuffling, dropout)")
    g.add_argument("--no-shuffle", dest="shuffle", action="store_const", const=False, default=None)
    g.add_argument("--lr", "--learning-rate", dest="lr", type=float, help="the optimizer's learning rate")
    g.add_argument("--optimizer", help="sgd, rmsprop or adam with Keras's defaults")
    g.add_argument("--loss", help="e.g. categorical_crossentropy (needed when the file has no compile)")
    g.add_argument("--metrics", help="comma-separated, e.g. accuracy")
    c = p.add_argument_group("checkpoints and outputs")
    c.add_argument("--checkpoint-dir", metavar="DIR", help="default: <output stem>.ckpt/")
    c.add_argument("--checkpoint-every", type=float, default=30.0, metavar="SECONDS",
                   help="also checkpoint within an epoch this often (default 30; 0: every batch)")
    c.add_argument("--no-checkpoint", action="store_true", help="write no checkpoints")
    c.add_argument("--history", metavar="PATH", help="default: <output stem>.history.json")
    c.add_argument("--initial-weights", metavar="WEIGHTS.npz", help="start from these weights")
    c.add_argument("--no-test", dest="test", action="store_false",
                   help="do not evaluate on the test split at the end")
    c.add_argument("-v", "--verbose", type=int, choices=(0, 1, 2),
                   help="0 silent, 1 progress bar, 2 one line per epoch (default: 1 on a terminal)")


def history_path(output: Path) -> Path:
    return output.with_name(output.stem + ".history.json")


def _one_blas_thread() -> None:
    """Each training thread runs BLAS on its own core: one BLAS thread, read when
    NumPy loads (fit limits it at run time too, for the API)."""
    import os
    if "numpy" not in sys.modules:
        from cnnc.commands._common import _BLAS_THREAD_VARS
        for var in _BLAS_THREAD_VARS:
            os.environ[var] = "1"


def run(args: argparse.Namespace) -> int:
    from cnnc.commands._common import threads_option
    args.threads = threads_option(args.threads)
    _one_blas_thread()  # before NumPy loads
    from cnnc.backends.numpy import checkpoint as ckpt
    from cnnc.backends.numpy import training as train
    from cnnc.commands._common import load_model, source_options
    from cnnc.support import data as D
    from cnnc.support.atomic import check_outputs, write_text

    check_data_arguments(args)
    train.positive_number("--checkpoint-every", args.checkpoint_every, zero=True)
    model = load_model(args.file, command="cnnc train", **source_options(args))
    train.require_single_io(model.analysis, "cnnc train")  # before any data is read
    # the overrides checked by fit's own rules (backends/numpy/training.py), before any data is read
    settings = train.resolve_settings(model.analysis, epochs=args.epochs, batch_size=args.batch_size,
                                      validation_split=args.validation_split, seed=args.seed,
                                      shuffle=args.shuffle, verbose=args.verbose)
    metrics = None if args.metrics is None else [m.strip() for m in args.metrics.split(",") if m.strip()]
    compiled = train.resolve_compile(model.analysis, args.loss, args.optimizer, metrics, args.lr)
    output = Path(args.output) if args.output else Path(Path(args.file).stem + ".npz")
    if output.suffix != ".npz":
        raise UsageError(f"the output '{output}' should end in .npz")
    hist_path = Path(args.history) if args.history else history_path(output)
    folder = None if args.no_checkpoint else Path(args.checkpoint_dir or ckpt.default_dir(output))
    if args.resume and folder is None:
        raise UsageError("--resume needs checkpoints; drop --no-checkpoint")
    # Every output against every input and each other, and every output folder
    # writable, before any data is read or any step taken.
    protect = [args.file, args.data, args.initial_weights]
    outputs = [(output, "the weights (-o)"), (hist_path, "the history (--history)")]
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"the checkpoint directory '{folder}' is a file",
                             ["give --checkpoint-dir a folder (it is created if missing)"])
        outputs.append((ckpt.path_in(folder), "the checkpoint (--checkpoint-dir)"))
        for p in protect:   # a checkpoint folder that is an input
            if p and Path(p).exists() and Path(p).resolve() == folder.resolve():
                raise UsageError(f"the checkpoint directory '{folder}' is the input '{p}'",
                                 ["choose another --checkpoint-dir"])
    check_outputs(outputs, protect)
    protect = [p for p in protect if p]
    from cnnc.support import resources  # before any weight or data array is allocated
    resources.check_model(model, settings.batch_size, "cnnc train", training=True)

    ds = D.load(args.data).limit(args.limit)
    if args.test:
        ds.check_scaling(args.scale)
    if args.initial_weights:
        model.load_weights(args.initial_weights)
    # All the data is checked before the first step: the test split too (a bad one
    # would otherwise fail only after training).
    test = None
    _check_training_data(model, ds, compiled.loss.name, args.scale)
    if args.test and ds.x_test is not None:
        test = train.prepare(model.analysis, ds.x_test, ds.y_test, compiled.loss.name, scale=args.scale,
                             divisor=ds.scale, what="test data")
    if folder is not None:
        _announce_checkpoint(folder, args.resume, ckpt)
    _announce_identity_layers(model)
    if not (args.resume and folder is not None and ckpt.exists(folder)):
        print(f"initial weights: {_initial_weights(model, args)}", file=sys.stderr)

    def write_history(history) -> None:
        write_text(hist_path, json_dumps({"model": model.name, **history.to_json()}) + "\n",
                   protect)

    try:
        with model._training_state() as state:
            history = train.fit(model.analysis, state, ds.x_train, ds.y_train, epochs=args.epochs,
                                batch_size=args.batch_size, validation_split=args.validation_split,
                                shuffle=args.shuffle, seed=args.seed, verbose=args.verbose,
                                checkpoint=folder, resume=args.resume,
                                checkpoint_every=args.checkpoint_every, scale=args.scale,
                                divisor=ds.scale, loss=args.loss, optimizer=args.optimizer,
                                learning_rate=args.lr, metrics=metrics, on_epoch_end=write_history,
                                threads=args.threads)
    except train.TrainingStopped as e:
        print(f"cnnc: error: {visible_lines(str(e))}", file=sys.stderr)
        for note in e.notes:
            print(f"  note: {note}", file=sys.stderr)
        print(f"  note: '{shown_path(output)}' was not written", file=sys.stderr)
        return 1
    except train.TrainingInterrupted as e:
        where = f"; checkpoint saved in '{e.checkpoint}', continue with --resume" if e.checkpoint else ""
        print(visible_lines(f"cnnc: {e}{where}"), file=sys.stderr)
        return 130
    summary = {"model": model.name, **history.to_json()}
    _save(model, output, hist_path, summary, protect)   # the trained weights first, whatever follows
    if test is not None:
        result = train.evaluate(model.analysis, model.weights, *test,
                                batch_size=max(32, history.params["batch_size"]), return_dict=True,
                                verbose=0, scale=False, loss=args.loss, metrics=metrics)
        summary["test"] = result
        print(f"test ({len(test[0]):,} samples)" + "".join(f" - {k}: {v:.4f}" for k, v in result.items()))
        write_text(hist_path, json_dumps(summary) + "\n", protect)
    where = f"; checkpoint in {shown_path(folder)}/" if folder is not None else ""
    print(f"wrote {shown_path(output)} ({model.total_params:,} parameters) and "
          f"{shown_path(hist_path)}{where}")
    return 0


def _save(model, output: Path, hist_path: Path, summary: dict, protect) -> None:
    """The weights and the history that goes with them: one transaction (both or neither)."""
    from cnnc.support import weights as W
    from cnnc.support.atomic import Transaction
    with Transaction(protect) as tx:
        tx.write_bytes(output, W.npz_bytes(model.weights))
        tx.write_bytes(hist_path, (json_dumps(summary) + "\n").encode("utf-8"))


def _initial_weights(model, args) -> str:
    """Which weights training starts from (said before the first step)."""
    if args.initial_weights:
        return f"file {shown_path(args.initial_weights)} (--initial-weights)"
    if model.has_weights:
        return f"the model file's own ({shown_path(args.file)})"
    seed = "a fresh seed" if args.seed is None else f"seed {args.seed}"
    return f"fresh initialisation ({seed})"


def _check_training_data(model, ds, loss_name, scale) -> None:
    """A shape mismatch is named after the training data, not the test split checked
    next: one sample tried first (cheap); on failure the whole set gives the message."""
    from cnnc.backends.numpy import training as train
    from cnnc.support.diagnostics import UsageError
    try:
        train.prepare(model.analysis, ds.x_train[:1], ds.y_train[:1], loss_name, scale=scale,
                      divisor=ds.scale, what="training data")
    except UsageError:
        train.prepare(model.analysis, ds.x_train, ds.y_train, loss_name, scale=scale, divisor=ds.scale,
                      what="training data")
        raise


def _announce_identity_layers(model) -> None:
    """Augmentation and noise layers act only in Keras's training; cnnc's is the identity."""
    found = [l for l in model.ir.layers if l.family in ("augment", "noise")]
    if found:
        names = ", ".join(f"{visible(l.name)} ({l.kind})" for l in found[:4]) + (
            f" and {len(found) - 4} more" if len(found) > 4 else "")
        print(f"note: {names} {'is' if len(found) == 1 else 'are'} the identity in cnnc's training: "
              "cnnc trains without data augmentation or noise (Keras applies them in fit)",
              file=sys.stderr)


def _announce_checkpoint(folder: Path, resume: bool, ckpt) -> None:
    if ckpt.exists(folder):
        if resume:
            print(f"resuming from {shown_path(ckpt.path_in(folder))}", file=sys.stderr)
        else:
            print(f"note: starting a new run; the checkpoint in '{shown_path(folder)}' will be replaced "
                  "(use --resume to continue it)", file=sys.stderr)
    elif resume:
        print(f"note: no checkpoint in '{shown_path(folder)}' yet; starting from the beginning", file=sys.stderr)
