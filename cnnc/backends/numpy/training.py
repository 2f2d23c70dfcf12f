"""Keras's fit and evaluate on the NumPy reference `Network`.

fit, as Keras 3 does it:
- `validation_split` takes the *last* fraction of the data, before any shuffling;
  `validation_data=(x, y)` replaces it;
- every epoch visits the training samples in a fresh random order (shuffle=True),
  in batches of `batch_size`, the last one partial;
- one step: forward in training mode (dropout on, BN batch statistics), the loss and
  its gradient (fused through softmax/sigmoid when the loss allows), backward, one
  optimizer step;
- the loss and metrics shown and recorded are running means over the epoch's
  samples; validation runs at the end of every epoch in inference mode.

Determinism: one `seed` drives the initial weights, the shuffling and the dropout
masks (three independent streams), so a seed gives bit-identical weights and
history. Without a seed one is drawn and recorded.

Not losing work: with `checkpoint=DIR` the complete state (weights with BN moving
statistics, optimizer slots and iterations, epoch, batch, this epoch's sample order,
RNG states, running sums, history) is written atomically at the end of every epoch
and every `checkpoint_every` seconds between batches; `resume=True` continues from
it and ends with the same weights as an uninterrupted run. A NaN or inf loss or
gradient stops training *before* the bad update (`TrainingStopped`), leaving the
last checkpoint and the model's weights untouched by it; an update that made the
weights or outputs NaN or inf stops it too, and the model gets back the weights from
the start of that epoch.

fit and evaluate take the model's Analysis; what training changes (the weights, the
optimizer's state) lives in a `TrainState` that the caller keeps between runs.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import signal
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from cnnc.analysis.arguments import FLOAT32_MAX, FLOAT32_TINY
from cnnc.analysis.compile_spec import (
    MAX_EPOCHS,
    METRICS,
    OPTIMIZERS,
    LossSpec,
    OptimizerSpec,
    default_optimizer,
)
from cnnc.analysis.infer import Analysis
from cnnc.backends.numpy import checkpoint as ckpt
from cnnc.backends.numpy import jit
from cnnc.backends.numpy import losses as L
from cnnc.backends.numpy import metrics as M
from cnnc.backends.numpy import optimizers as O
from cnnc.backends.numpy import regularizers as R
from cnnc.support import data as D
from cnnc.support.diagnostics import UsageError, visible
from cnnc.support.progress import Progress
from cnnc.support.resources import thread_count

# Keras fit() arguments cnnc refuses, with the reason.
_UNSUPPORTED = {
    "callbacks": "callbacks are not implemented",
    "class_weight": "class weights are not implemented",
    "sample_weight": "sample weights are not implemented",
    "steps_per_epoch": "an epoch is always one pass over the data",
    "validation_steps": "validation uses all of its data",
    "validation_freq": "cnnc validates after every epoch",
}


class TrainingStopped(UsageError):
    """The loss, a gradient, an updated weight or the model's outputs became NaN or inf.

    A UsageError (the settings or the data made training diverge), so that callers catch
    it with cnnc's other run-time errors; the CLI exits 1 for it (docs/TRAINING.md), to
    tell a diverged run from a bad command. Afterwards the model's weights and optimizer
    state are the last good ones, never NaN:
    - `updated` False (the loss or a gradient was NaN or inf): those from before the
      failing batch; nothing was applied from it (BatchNormalization statistics included);
    - `updated` True (an update or the end-of-epoch check found NaN or inf): those from the
      start of the failing epoch (`epoch`), restored, as which batch spoiled the weights is
      not known. `checkpoint` is the folder still holding the last good checkpoint."""

    def __init__(self, epoch: int, batch: int, steps: int, what: str, checkpoint: Path | None,
                 updated: bool = False, first: bool = False):
        self.epoch, self.batch, self.steps, self.what, self.checkpoint = epoch, batch, steps, what, checkpoint
        self.updated = updated
        self.first = first        # no step of this run had been taken: the start is at fault
        where = f"epoch {epoch + 1}, batch {batch + 1}/{steps}"
        super().__init__(f"training stopped: {what} {'after' if updated else 'at'} {where}",
                         self._notes())

    def keep(self, checkpoint: Path | None) -> None:
        """Name the folder of the last good checkpoint (known only to the loop)."""
        self.checkpoint = checkpoint
        self.notes = [visible(n) for n in self._notes()]

    def _notes(self) -> list[str]:
        if self.updated:
            notes = [f"the weights are back to those from the start of epoch {self.epoch + 1}, "
                     "the last that gave finite values"]
        else:
            notes = ["the weights are those from before this batch; nothing was updated with it"]
        if self.checkpoint is not None:
            notes.append(f"the last good checkpoint is kept in '{self.checkpoint}'")
        if self.first and not self.updated:
            # nothing was learnt yet, so no setting of the learning made this: the weights the
            # run started from (a checkpoint, --initial-weights, a model file's) or the data did
            notes.append("this was the run's first step, before any update: the weights it "
                         "started from (a resumed checkpoint, --initial-weights or the model "
                         "file's own) or the input data already give this; check them (values "
                         "that are huge, or inputs that are not scaled)")
            return notes
        notes.append("a smaller learning rate (--lr), gradient clipping (clipnorm=1.0) or "
                     "scaled inputs usually help")
        return notes


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during fit: raised at a batch boundary, after a checkpoint was written."""

    def __init__(self, epoch: int, batch: int, checkpoint: Path | None):
        self.epoch, self.batch, self.checkpoint = epoch, batch, checkpoint
        super().__init__(f"interrupted at epoch {epoch + 1}, batch {batch}")


class History:
    """Keras's History: `.history` maps 'loss', 'accuracy', 'val_loss', ... to one value
    per epoch; `.epoch` lists the epoch indices; `.params` the settings."""

    def __init__(self, history: Mapping[str, list] | None = None, epoch: list[int] | None = None,
                 params: Mapping[str, Any] | None = None):
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
        self.epoch: list[int] = list(epoch or [])
        self.params: dict[str, Any] = dict(params or {})

    def append(self, epoch: int, logs: Mapping[str, float]) -> None:
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def to_json(self) -> dict[str, Any]:
        return {"history": self.history, "epoch": self.epoch, "params": self.params}

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


@dataclass
class TrainState:
    """What fit reads and changes besides the Analysis: the weights ("layer/weight" ->
    array, updated in place; None for a fresh model, drawn from the run's seed) and the
    optimizer's state, which Keras keeps between fit() calls. Both hold the last good
    values when fit stops early (Ctrl-C, NaN)."""

    weights: dict[str, np.ndarray] | None = None
    optimizer: tuple | None = None


@dataclass(frozen=True)
class Settings:
    epochs: int
    batch_size: int
    validation_split: float
    shuffle: bool
    seed: int | None
    initial_epoch: int
    verbose: Any
    validation_batch_size: int | None


@dataclass(frozen=True)
class Compiled:
    loss: LossSpec
    optimizer: OptimizerSpec
    metrics: tuple[str, ...]
    learning_rate: float | None = None

    def describe(self) -> dict[str, Any]:
        return {"loss": [self.loss.name, self.loss.from_logits, self.loss.label_smoothing],
                "optimizer": [self.optimizer.name, _jsonable(dict(self.optimizer.params))],
                "learning_rate": self.learning_rate, "metrics": list(self.metrics)}


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(params.items()) if isinstance(v, (int, float, str, bool, type(None)))}


# --- resolving settings -----------------------------------------------------------------------

def resolve_settings(analysis: Analysis, **given: Any) -> Settings:
    """fit() keyword arguments over the file's fit(...) over Keras's defaults."""
    spec = analysis.model.fit
    base = {"epochs": 1, "batch_size": 32, "validation_split": 0.0, "shuffle": True, "seed": None,
            "initial_epoch": 0, "verbose": "auto", "validation_batch_size": None}
    if spec is not None:
        base.update(epochs=spec.epochs, batch_size=spec.batch_size,
                    validation_split=spec.validation_split, shuffle=spec.shuffle, seed=spec.seed,
                    initial_epoch=spec.initial_epoch, verbose=spec.verbose)
    base.update({k: v for k, v in given.items() if v is not None})
    for key, low in (("epochs", 1), ("batch_size", 1), ("initial_epoch", 0)):
        base[key] = whole_number(key, base[key], low)
    _check(base["epochs"] <= MAX_EPOCHS,
           f"epochs must be at most {MAX_EPOCHS:,} (cnnc's limit; no training needs more), "
           f"got {base['epochs']:,}")
    if base["seed"] is not None:
        base["seed"] = whole_number("seed", base["seed"], 0)
    if base["validation_batch_size"] is not None:
        base["validation_batch_size"] = whole_number("validation_batch_size", base["validation_batch_size"], 1)
    split = base["validation_split"]
    _check(isinstance(split, numbers.Real) and not isinstance(split, bool) and 0.0 <= split < 1.0,
           f"validation_split must be a number in [0, 1), got {split!r}")
    _check(isinstance(base["shuffle"], (bool, np.bool_)), f"shuffle must be True or False, got {base['shuffle']!r}")
    _check(base["verbose"] in ("auto", 0, 1, 2), f"verbose must be 'auto', 0, 1 or 2, got {base['verbose']!r}")
    return Settings(**base)


def whole_number(name: str, value: Any, low: int) -> int:
    """`value` as an int >= `low` (NumPy integers too, never a bool); UsageError otherwise.
    The one rule for fit, evaluate, the Model methods and the CLI's overrides."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise UsageError(f"{name} must be a whole number >= {low}, got {value!r}")
    return int(value)


def positive_number(name: str, value: Any, zero: bool = False, float32: bool = False) -> float:
    """`value` as a finite float > 0 (>= 0 with `zero`); UsageError otherwise (NaN, inf,
    a bool, a str). Shared like `whole_number`: the CLI's --lr inf is refused as fit's is.
    `float32`: a value the float32 arithmetic uses must be one float32 can hold (a learning
    rate of 1e300 is inf there, 1e-60 is 0), as the .cnn and Keras front ends require."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < 0 or (value == 0 and not zero)):
        raise UsageError(f"{name} must be a finite number {'>=' if zero else '>'} 0, got {value!r}")
    if float32 and (value > FLOAT32_MAX or 0 < value < FLOAT32_TINY / 2):
        raise UsageError(f"{name} is {value!r}, which float32 cannot hold (it would be "
                         f"{'inf' if value > 1 else '0'})",
                         [f"cnnc trains in float32, as Keras does: from {FLOAT32_TINY:.3g} to "
                          f"{FLOAT32_MAX:.4g}"])
    return float(value)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


def resolve_compile(analysis: Analysis, loss: str | LossSpec | None = None,
                    optimizer: str | OptimizerSpec | None = None, metrics=None,
                    learning_rate: float | None = None) -> Compiled:
    """The file's compile(...) with any overrides; a UsageError when there is no loss."""
    spec = analysis.model.compile
    if isinstance(loss, str):
        loss = _loss_by_name(loss)
    if isinstance(optimizer, str):
        name = next((k for k in OPTIMIZERS if k.lower() == optimizer.lower()), None)
        if name is None:
            raise UsageError(f"unknown optimizer {optimizer!r}", ["supported: SGD, RMSprop, Adam"])
        optimizer = default_optimizer(name)
    loss = loss or (spec.loss if spec else None)
    if loss is None:
        raise UsageError(f"model '{analysis.model.name}' has no loss to train with",
                         ["add compile(loss='categorical_crossentropy', ...) to the file, "
                          "or give one with --loss"])
    optimizer = optimizer or (spec.optimizer if spec else default_optimizer("RMSprop"))
    if metrics is None:
        metrics = spec.metrics if spec else ()
    for m in metrics:
        if m not in METRICS:
            raise UsageError(f"unknown or unsupported metric {m!r}",
                             ["supported: " + ", ".join(sorted(set(METRICS)))])
    metrics = tuple(m if METRICS[m] == "accuracy" else METRICS[m] for m in metrics)
    if learning_rate is not None:
        learning_rate = positive_number("the learning rate (learning_rate, --lr)", learning_rate,
                                        float32=True)
    return Compiled(loss, optimizer, metrics, learning_rate)


def _loss_by_name(name: str) -> LossSpec:
    from cnnc.analysis.compile_spec import loss_name as canonical_loss
    canonical = canonical_loss(name)
    if canonical is None:
        raise UsageError(f"unknown or unsupported loss {name!r}",
                         ["supported: " + ", ".join(sorted(L.RULES))])
    return LossSpec(canonical)


# --- data -------------------------------------------------------------------------------------

def require_single_io(analysis: Analysis, what: str = "fit") -> None:
    """fit, evaluate and the CLI's data paths feed one array and score one output: a
    graph model with several inputs or outputs is a UsageError naming them (before any
    data is read or any weight drawn), never a traceback from deep in a step."""
    ir = analysis.model
    parts = []
    if len(ir.inputs) != 1:
        parts.append(f"{len(ir.inputs)} inputs ({', '.join(n.name for n in ir.inputs)})")
    if len(ir.outputs) > 1:
        parts.append(f"{len(ir.outputs)} outputs ({', '.join(ir.outputs)})")
    if parts:
        raise UsageError(f"{what} supports models with one input and one output; model "
                         f"'{ir.name}' has {' and '.join(parts)}",
                         ["for inference, Model.predict takes a list of arrays, one per input, "
                          "and returns one per "
                          "output; weights trained elsewhere (Keras) load with Model.load_weights"])


def prepare(analysis: Analysis, x, y, loss_name: str | None, *, scale: bool = True,
            divisor: float | None = None, what: str = "") -> tuple[np.ndarray, np.ndarray]:
    """x, y in the shapes and dtypes the model and loss want (see support/data.py)."""
    sep = " " if what else ""
    model = f"model '{analysis.model.name}'"
    x = D.prepare_x(x, analysis.model.input_shape, scale=scale, divisor=divisor,
                    what=f"{what}{sep}x", model=model)
    y = D.prepare_y(y, analysis.output_shape, loss_name, what=f"{what}{sep}y", model=model)
    if analysis.is_open:
        problems = analysis.size_problems({analysis.model.inputs[0].name: x.shape[1:]})
        if problems:
            raise UsageError(f"{what or 'the data'}: samples of shape {x.shape[1:]} do not fit "
                             f"{model} at that size", problems)
    D.check_same_length(x, y, what)
    if len(x) == 0:
        raise D.DataError(f"{what or 'the data'} has no samples")
    return x, y


def validation_cut(n: int, validation_split: float) -> int:
    """Keras: the first floor(n * (1 - split)) samples train, the rest validate."""
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at in (0, n):
        raise UsageError(f"{n} samples cannot be split into training and validation sets "
                         f"with validation_split={validation_split}",
                         ["use more data or another validation_split"])
    return split_at


# --- the training state -------------------------------------------------------------------------

class _Run:
    """Everything a checkpoint holds, and the step that advances it."""

    def __init__(self, analysis: Analysis, net, loss: L.Loss, optimizer: O.Optimizer,
                 metric_fns: dict, settings: Settings, seed: int):
        self.net, self.loss, self.optimizer = net, loss, optimizer
        self.metric_fns = metric_fns
        self.settings = settings
        self.seed = seed
        self.shuffle_rng = np.random.default_rng([seed, 1])
        self.dropout_rng = np.random.default_rng([seed, 2])
        self.epoch = settings.initial_epoch
        self.batch = 0                        # the next batch of this epoch
        self.order: np.ndarray | None = None  # this epoch's sample order
        self.sums = self._fresh_sums()
        self.history = History()
        # Statistics the forward pass itself updates (BatchNormalization's moving mean and
        # variance): kept aside each step so that a bad batch leaves no trace.
        self.forward_state = [k for k in net.weights
                              if k.rsplit("/", 1)[-1] in ("moving_mean", "moving_variance")]
        self.regularizers = R.terms(analysis)
        self.good: tuple[dict, dict, dict] | None = None    # keep_good's copies
        self.steps_taken = 0                  # by this process (a resumed run counts from 0)

    def close(self) -> None:
        """Stop the network's threads, if it has any."""
        close = getattr(self.net, "close", None)
        if close is not None:
            close()

    def keep_good(self) -> None:
        """Copy the weights and optimizer state as the last good ones (at an epoch's start,
        when the last epoch passed its check): TrainingStopped with `updated` goes back to them."""
        meta, arrays = self.optimizer.state()
        self.good = ({k: w.copy() for k, w in self.net.weights.items()}, dict(meta),
                     {k: a.copy() for k, a in arrays.items()})

    def restore_good(self) -> None:
        weights, meta, arrays = self.good
        for k, w in weights.items():
            self.net.weights[k][...] = w      # in place: the TrainState shares these arrays
        self.optimizer.load_state(meta, arrays)

    def _fresh_sums(self) -> dict[str, M.Mean]:
        return {"loss": M.Mean(), **{name: M.Mean() for name in self.metric_fns}}

    def start_epoch(self, n: int) -> None:
        if self.order is None:  # not resumed mid-epoch
            self.order = (self.shuffle_rng.permutation(n) if self.settings.shuffle
                          else np.arange(n))
            self.batch = 0
            self.sums = self._fresh_sums()

    def end_epoch(self, logs: Mapping[str, float]) -> None:
        self.history.append(self.epoch, logs)
        self.epoch += 1
        self.batch = 0
        self.order = None

    def logs(self) -> dict[str, float]:
        return {k: m.result() for k, m in self.sums.items()}

    def step(self, xb: np.ndarray, yb: np.ndarray, steps: int) -> None:
        """One batch: forward, loss, backward, NaN guard, optimizer step, running sums."""
        weights = self.net.weights
        kept = {k: weights[k].copy() for k in self.forward_state}
        with np.errstate(all="ignore"):  # overflow and NaN are reported below, by batch
            p = self.net.forward(xb, training=True, rng=self.dropout_rng)
            value, dy = self.loss.value_and_gradient(yb, p)
            value += R.penalty(weights, self.regularizers)  # Keras reports loss + penalties
            problem = None if math.isfinite(value) else f"the loss is {value}"
            if problem is None:
                grads = self.net.backward(dy, skip_output_activation=self.loss.fused)
                R.add_gradients(grads, weights, self.regularizers)
                bad = next((k for k, g in grads.items() if not np.isfinite(g).all()), None)
                problem = None if bad is None else f"the gradient of '{bad}' holds NaN or inf"
        if problem is not None:
            for k, v in kept.items():
                weights[k][...] = v
            raise TrainingStopped(self.epoch, self.batch, steps, problem, None,
                                  first=self.steps_taken == 0)
        self.steps_taken += 1
        self.optimizer.apply(grads, self.net.weights)
        # the update itself can overflow (a huge learning rate): such weights must never
        # reach a checkpoint or the output
        bad = next((k for k, w in weights.items() if not np.isfinite(w).all()), None)
        if bad is not None:
            raise TrainingStopped(self.epoch, self.batch, steps,
                                  f"the update made '{bad}' NaN or inf", None, updated=True)
        n = len(xb)
        self.sums["loss"].update(value * n, n)
        for name, fn in self.metric_fns.items():
            v = fn(yb, p)
            self.sums[name].update(v.sum(), len(v))
        self.batch += 1

    # --- checkpoints ---------------------------------------------------------------------

    def save(self, folder: Path, fixed: Mapping[str, Any]) -> Path:
        opt_meta, opt_arrays = self.optimizer.state()
        meta = {**fixed, "epoch": self.epoch, "batch": self.batch, "seed": self.seed,
                "optimizer_state": opt_meta,
                "rng": {"shuffle": self.shuffle_rng.bit_generator.state,
                        "dropout": self.dropout_rng.bit_generator.state},
                "sums": {k: [m.total, m.count] for k, m in self.sums.items()},
                "history": self.history.to_json(), "saved_at": time.time()}
        arrays = {**{f"w/{k}": v for k, v in self.net.weights.items()},
                  **{f"o/{k}": v for k, v in opt_arrays.items()}}
        if self.order is not None:
            arrays["order"] = self.order
        return ckpt.save(folder, meta, arrays)

    def restore(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Everything but the weights (in the TrainState before the Network is built)."""
        self.optimizer.load_state(meta["optimizer_state"], ckpt.split(arrays, "o"))
        self.shuffle_rng.bit_generator.state = meta["rng"]["shuffle"]
        self.dropout_rng.bit_generator.state = meta["rng"]["dropout"]
        self.epoch, self.batch = int(meta["epoch"]), int(meta["batch"])
        self.order = np.array(arrays["order"]) if "order" in arrays else None
        self.sums = {k: M.Mean(*meta["sums"][k]) for k in self._fresh_sums()}
        h = meta["history"]
        self.history = History(h["history"], h["epoch"], h["params"])


def model_fingerprint(analysis: Analysis) -> str:
    """Layers, arguments and weight shapes: what must not change between a checkpoint
    and the run that resumes from it."""
    import hashlib
    text = repr([(i.layer.kind, i.name, sorted((k, repr(v)) for k, v in i.layer.args.items()),
                  [(w.name, w.shape, w.trainable) for w in i.weights]) for i in analysis.infos])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().entropy % (2**31))


@contextlib.contextmanager
def _sigint_flag():
    """Turn Ctrl-C into a flag the loop checks at batch boundaries (main thread only)."""
    flag = {"hit": False}

    def handler(signum, frame):
        if flag["hit"]:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        flag["hit"] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


# --- fit -----------------------------------------------------------------------------------

def fit(analysis: Analysis, state: TrainState, x, y, *, batch_size: int | None = None, epochs: int | None = None, verbose=None,
        validation_split: float | None = None, validation_data=None, shuffle: bool | None = None,
        initial_epoch: int | None = None, seed: int | None = None,
        validation_batch_size: int | None = None, checkpoint: str | Path | None = None,
        resume: bool = False, checkpoint_every: float = 30.0, scale: bool = True,
        divisor: float | None = None, loss=None, optimizer=None, learning_rate: float | None = None,
        metrics=None, on_epoch_end: Callable[[History], None] | None = None, stream=None,
        threads: int | None = None, **keras_only: Any) -> History:
    """Train the model of `analysis` on x, y from `state` (see the module docstring); the
    trained weights and the optimizer's state are left in `state`. Returns a History.
    `threads`: how many threads share each batch (default: the machine's cores; see
    parallel.py); a seeded run repeats bit for bit at the same thread count."""
    from cnnc.backends.numpy import parallel
    _refuse(keras_only)
    # more threads than cores never run faster (and each holds a replica): bounded by them
    threads = thread_count(None if threads is None else whole_number("threads", threads, 1))
    checkpoint_every = positive_number("checkpoint_every", checkpoint_every, zero=True)  # 0: every batch
    require_single_io(analysis, "fit")
    settings = resolve_settings(analysis, batch_size=batch_size, epochs=epochs, verbose=verbose,
                                validation_split=validation_split, shuffle=shuffle,
                                initial_epoch=initial_epoch, seed=seed,
                                validation_batch_size=validation_batch_size)
    compiled = resolve_compile(analysis, loss, optimizer, metrics, learning_rate)
    from cnnc.support import resources  # before the data are converted or any weight drawn
    resources.check(analysis, settings.batch_size, "fit", "train", analysis.model.name)
    x, y, val = _training_data(analysis, x, y, validation_data, settings.validation_split,
                               compiled.loss.name, scale, divisor)
    folder = Path(checkpoint) if checkpoint is not None else None
    run, fixed = _start(analysis, state, settings, compiled, (x, y, val), folder, resume, threads)
    loop = _Loop(run, x, y, val, folder, fixed, checkpoint_every, stream)
    try:
        # NaN and inf are found and reported by the loop (TrainingStopped), never as NumPy's
        # RuntimeWarnings (which PYTHONWARNINGS=error would turn into exceptions)
        # (errstate is a context variable: the replicas run in copies of this context)
        with np.errstate(all="ignore"), parallel.single_threaded_blas():
            loop.train(on_epoch_end)
    finally:
        state.optimizer = run.optimizer.state()
        run.close()
    return run.history


def _refuse(keras_only: Mapping[str, Any]) -> None:
    for k, v in keras_only.items():
        if k not in _UNSUPPORTED:
            raise TypeError(f"fit() got an unexpected keyword argument {k!r}")
        if v is not None and not (k == "validation_freq" and v == 1):
            raise UsageError(f"fit({k}=...) is not supported: {_UNSUPPORTED[k]}")


def _training_data(analysis: Analysis, x, y, validation_data, validation_split: float,
                   loss_name: str, scale: bool, divisor: float | None):
    """(x, y, (x_val, y_val) or None), prepared; the split is Keras's (the last fraction)."""
    x, y = prepare(analysis, x, y, loss_name, scale=scale, divisor=divisor, what="training data")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise UsageError("validation_data must be a pair (x_val, y_val)")
        return x, y, prepare(analysis, *validation_data, loss_name, scale=scale, divisor=divisor,
                             what="validation data")
    if validation_split:
        cut = validation_cut(len(x), validation_split)
        return x[:cut], y[:cut], (x[cut:], y[cut:])
    return x, y, None


def _start(analysis: Analysis, state: TrainState, settings: Settings, compiled: Compiled, arrays,
           folder: Path | None, resume: bool, threads: int = 1) -> tuple["_Run", dict | None]:
    """The run's initial state: fresh (seeded init), continued (the state's weights and
    optimizer), or resumed from the checkpoint in `folder`."""
    from cnnc.backends.numpy.initializers import initial_weights
    from cnnc.backends.numpy.parallel import split_network
    from cnnc.support.weights import check
    x, y, val = arrays
    saved = ckpt.load(folder) if (folder is not None and resume and ckpt.exists(folder)) else None
    seed = settings.seed
    if seed is None and saved is not None:
        seed = saved[0].get("seed")
    if seed is None:
        seed = _fresh_seed()
    fixed = None
    if folder is not None:
        fixed = {"model": analysis.model.name, "model_fingerprint": model_fingerprint(analysis),
                 "data_fingerprint": ckpt.fingerprint(x, y, *(val or ())),
                 "settings": {"batch_size": settings.batch_size, "shuffle": settings.shuffle,
                              "validation_split": settings.validation_split, "seed": seed},
                 "compile": compiled.describe()}
        if saved is not None:
            _check_resumable(folder, saved[0], fixed)
    if saved is not None:
        state.weights = check(ckpt.split(saved[1], "w"), analysis.weight_shapes(),
                              analysis.model.name, str(ckpt.path_in(folder)), owned=True)
    elif state.weights is None:  # a fresh model: the seed draws its weights too
        state.weights = initial_weights(analysis, seed)
    net = split_network(analysis, state.weights, threads)
    loss_fn = L.from_spec(compiled.loss, net.output_activation)
    opt = O.from_spec(compiled.optimizer, compiled.learning_rate)
    if saved is None and state.optimizer and state.optimizer[0].get("name") == opt.name:
        opt.load_state(*state.optimizer)  # Keras keeps its optimizer between fit() calls
    p_shape = (len(y), *analysis.output_shape)
    metric_fns = {m: M.resolve(m, y.shape, p_shape) for m in compiled.metrics}
    run = _Run(analysis, net, loss_fn, opt, metric_fns, settings, seed)
    if saved is not None:
        run.restore(*saved)
    run.history.params = {"epochs": settings.epochs, "steps": math.ceil(len(x) / settings.batch_size),
                          "batch_size": settings.batch_size, "samples": len(x), "seed": seed,
                          "verbose": settings.verbose, "threads": threads,
                          "kernels": "numba" if jit.active() else "numpy"}
    return run, fixed


class _Loop:
    """Epochs of batches, validation, progress, checkpoints, Ctrl-C."""

    def __init__(self, run: _Run, x, y, val, folder: Path | None, fixed, checkpoint_every: float, stream):
        self.run, self.x, self.y, self.val = run, x, y, val
        self.folder, self.fixed, self.every = folder, fixed, checkpoint_every
        self.settings = run.settings
        self.steps = run.history.params["steps"]
        self.progress = Progress(self.settings.verbose, self.settings.epochs, self.steps, stream,
                                 threads=run.history.params.get("threads"))
        self.have_checkpoint = folder is not None and ckpt.exists(folder) and run.epoch + run.batch > 0
        self.last_save = time.monotonic()

    def save(self) -> None:
        self.run.save(self.folder, self.fixed)
        self.last_save, self.have_checkpoint = time.monotonic(), True

    def train(self, on_epoch_end) -> None:
        run, bs = self.run, self.settings.batch_size
        with _sigint_flag() as sigint:
            try:
                while run.epoch < self.settings.epochs:
                    run.start_epoch(len(self.x))
                    run.keep_good()
                    self.progress.epoch_start(run.epoch, run.batch)
                    while run.batch < self.steps:
                        idx = run.order[run.batch * bs:(run.batch + 1) * bs]
                        run.step(self.x[idx], self.y[idx], self.steps)
                        self.progress.batch_end(run.batch, len(idx), run.logs())
                        due = sigint["hit"] or time.monotonic() - self.last_save >= self.every
                        if self.folder is not None and due and run.batch < self.steps:
                            self.save()  # (the end of the epoch saves below)
                        if sigint["hit"]:
                            raise TrainingInterrupted(run.epoch, run.batch, self.folder)
                    self.end_epoch()
                    if on_epoch_end is not None:
                        on_epoch_end(run.history)
            except TrainingStopped as e:
                if e.updated:
                    run.restore_good()
                e.keep(self.folder if self.have_checkpoint else None)
                raise
            finally:
                self.progress.close()

    def end_epoch(self) -> None:
        run = self.run
        logs = run.logs()
        if self.val is not None:
            with np.errstate(all="ignore"):   # NaN or inf is reported by _check_outputs
                vlogs = _evaluate_arrays(partial(run.net.forward, training=False), run.loss,
                                         run.metric_fns, *self.val,
                                         self.settings.validation_batch_size or self.settings.batch_size,
                                         penalty=R.penalty(run.net.weights, run.regularizers))
            logs.update({f"val_{k}": v for k, v in vlogs.items()})
        self._check_outputs(logs)
        self.progress.epoch_end(self.steps, logs)
        run.end_epoch(logs)
        if self.folder is not None:
            self.save()


    def _check_outputs(self, logs: Mapping[str, float]) -> None:
        """Weights that are finite can still give NaN or inf (the last update of an
        exploding run): checked on the validation loss, or on one batch of the training
        data, before the epoch's checkpoint (and the output) can keep them."""
        run = self.run
        if "val_loss" in logs:
            problem = None if math.isfinite(logs["val_loss"]) else f"the validation loss is {logs['val_loss']}"
        else:
            with np.errstate(all="ignore"):
                p = run.net.forward(self.x[:self.settings.batch_size], training=False)
            problem = None if np.isfinite(p).all() else "the model's outputs hold NaN or inf"
        if problem is not None:
            raise TrainingStopped(run.epoch, self.steps - 1, self.steps, problem, None, updated=True)


def _check_resumable(folder: Path, meta: Mapping[str, Any], fixed: Mapping[str, Any]) -> None:
    hint = "start a new run without --resume (resume=False), or restore the original settings"
    checks = (("model_fingerprint", "the model's layers or arguments changed"),
              ("data_fingerprint", "the training data (or its scaling or split) is different"),
              ("settings", "the batch size, shuffling, validation split or seed is different"),
              ("compile", "the loss, optimizer, learning rate or metrics are different"))
    for key, why in checks:
        if meta.get(key) != fixed[key]:
            detail = ""
            if key in ("settings", "compile"):
                detail = f": checkpoint {meta.get(key)}, now {fixed[key]}"
            raise ckpt.CheckpointError(f"cannot resume from '{folder}': {why}{detail}", [hint])


# --- evaluate -------------------------------------------------------------------------------

def _evaluate_arrays(forward: Callable[[np.ndarray], np.ndarray], loss_fn: L.Loss,
                     metric_fns: Mapping[str, Callable], x: np.ndarray, y: np.ndarray,
                     batch_size: int, progress: Progress | None = None,
                     penalty: float = 0.0) -> dict[str, float]:
    """Loss and metrics over (x, y) in batches, `forward` giving the model's output;
    `penalty` (the weights' regularization) is part of every batch's loss, as in Keras."""
    sums = {"loss": M.Mean(), **{k: M.Mean() for k in metric_fns}}
    for i, start in enumerate(range(0, len(x), batch_size)):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        p = forward(xb)
        sums["loss"].update((loss_fn.value(yb, p) + penalty) * len(xb), len(xb))
        for name, fn in metric_fns.items():
            v = fn(yb, p)
            sums[name].update(v.sum(), len(v))
        if progress is not None:
            progress.batch_end(i + 1, len(xb), {k: m.result() for k, m in sums.items()})
    return {k: m.result() for k, m in sums.items()}


def evaluate(analysis: Analysis, weights: Mapping[str, np.ndarray], x, y,
             batch_size: int | None = None, return_dict: bool = False, *, verbose="auto",
             scale: bool = True, divisor: float | None = None, loss=None, metrics=None,
             stream=None, forward: Callable[[], Callable[[np.ndarray], np.ndarray]] | None = None,
             **keras_only: Any):
    """Keras's evaluate: the loss alone when there are no metrics, else [loss, *metrics],
    or a dict with return_dict=True. Inference mode, batches of batch_size (32).
    `forward`: makes the function that computes a batch's outputs with another engine
    (onnxruntime: runtime/evaluate.py), called once the data are checked; by default the
    NumPy Network computes them."""
    for k, v in keras_only.items():
        if k not in ("sample_weight", "steps", "callbacks"):
            raise TypeError(f"evaluate() got an unexpected keyword argument {k!r}")
        if v is not None:
            raise UsageError(f"evaluate({k}=...) is not supported")
    from cnnc.backends.numpy.network import Network
    require_single_io(analysis, "evaluate")
    compiled = resolve_compile(analysis, loss, None, metrics)
    batch_size = whole_number("batch_size", 32 if batch_size is None else batch_size, 1)
    from cnnc.support import resources
    resources.check(analysis, batch_size, "evaluate", "infer", analysis.model.name)
    x, y = prepare(analysis, x, y, compiled.loss.name, scale=scale, divisor=divisor,
                   what="evaluation data")
    net = Network(analysis, weights)
    loss_fn = L.from_spec(compiled.loss, net.output_activation)
    p_shape = (len(y), *analysis.output_shape)
    metric_fns = {m: M.resolve(m, y.shape, p_shape) for m in compiled.metrics}
    steps = math.ceil(len(x) / batch_size)
    progress = Progress(verbose, 1, steps, stream)
    progress.epoch_start(None)
    outputs = forward() if forward is not None else partial(net.forward, training=False)
    try:
        penalty = R.penalty(net.weights, R.terms(analysis))
        logs = _evaluate_arrays(outputs, loss_fn, metric_fns, x, y, batch_size, progress, penalty)
        progress.epoch_end(steps, logs)
    finally:
        progress.close()
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values
