"""compile(...) and fit(...): optimizers, losses, metrics and training settings.

Resolved and validated with the model so that `cnnc check` catches a bad
learning rate or a misspelt loss before any training starts. Defaults are
Keras 3's; `decay` and `lr` are Keras 2 spellings that tutorials still use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from cnnc.analysis.arguments import (
    ArgError,
    any_int,
    boolean,
    fraction,
    literal,
    must_be,
    number,
    optional,
    optional_int,
    positive_int,
    string,
)
from cnnc.analysis.binding import bind
from cnnc.analysis.kinds import Param
from cnnc.language import syntax as S
from cnnc.support.diagnostics import Reporter, Span, did_you_mean


def _raw(v: S.Value, name: str) -> S.Value:
    return v


_POSITIVE = number(0.0)
MAX_EPOCHS = 1_000_000     # a bound on the work one `cnnc train` can be asked for
_UNSUPPORTED = "cnnc's optimizers do not implement it"

_COMMON_OPT = (
    Param("weight_decay", optional(number(0.0)), None),
    Param("clipnorm", optional(number(0.0, strict=True)), None),
    Param("clipvalue", optional(number(0.0, strict=True)), None),
    Param("global_clipnorm", optional(number(0.0, strict=True)), None),
    Param("use_ema", must_be(False, why=_UNSUPPORTED), False),
    Param("ema_momentum", number(), 0.99),
    Param("ema_overwrite_frequency", must_be(None, why=_UNSUPPORTED), None),
    Param("loss_scale_factor", must_be(None, why=_UNSUPPORTED), None),
    Param("gradient_accumulation_steps", must_be(None, why=_UNSUPPORTED), None),
    Param("name", optional(string), None),
    # Keras 2 arguments, honoured with their Keras 2 meaning (keyword only).
    Param("decay", number(0.0), 0.0, keyword_only=True),
    Param("lr", optional(number(0.0, strict=True)), None, keyword_only=True),
)

OPTIMIZERS: dict[str, tuple[Param, ...]] = {
    "SGD": (Param("learning_rate", number(0.0, strict=True), 0.01),
            Param("momentum", fraction(0.0, 1.0), 0.0),
            Param("nesterov", boolean, False)) + _COMMON_OPT,
    "RMSprop": (Param("learning_rate", number(0.0, strict=True), 0.001),
                Param("rho", fraction(0.0, 1.0), 0.9),
                Param("momentum", fraction(0.0, 1.0), 0.0),
                Param("epsilon", number(0.0, strict=True), 1e-7),
                Param("centered", boolean, False)) + _COMMON_OPT,
    "Adam": (Param("learning_rate", number(0.0, strict=True), 0.001),
             Param("beta_1", fraction(0.0, 1.0, hi_open=True), 0.9),
             Param("beta_2", fraction(0.0, 1.0, hi_open=True), 0.999),
             Param("epsilon", number(0.0, strict=True), 1e-7),
             Param("amsgrad", boolean, False)) + _COMMON_OPT,
}
KERAS_OTHER_OPTIMIZERS = ("adamw", "adadelta", "adagrad", "adamax", "adafactor", "nadam", "ftrl",
                          "lion", "lamb", "loss_scale_optimizer", "muon")

# Loss function name -> accepted spellings (Keras 3 function and class names, aliases).
LOSSES: dict[str, tuple[str, ...]] = {
    "categorical_crossentropy": ("CategoricalCrossentropy",),
    "sparse_categorical_crossentropy": ("SparseCategoricalCrossentropy",),
    "binary_crossentropy": ("BinaryCrossentropy", "bce", "BCE"),
    "mean_squared_error": ("MeanSquaredError", "mse", "MSE"),
    "mean_absolute_error": ("MeanAbsoluteError", "mae", "MAE"),
}
_LOSS_BY_NAME = {alias: name for name, aliases in LOSSES.items() for alias in (name,) + aliases}
_LOSS_PARAMS = {
    "categorical_crossentropy": (Param("from_logits", boolean, False),
                                 Param("label_smoothing", fraction(0.0, 1.0), 0.0),
                                 Param("axis", must_be(-1, why="only the last axis"), -1)),
    "sparse_categorical_crossentropy": (Param("from_logits", boolean, False),
                                        Param("ignore_class", must_be(None, why="not implemented"), None)),
    "binary_crossentropy": (Param("from_logits", boolean, False),
                            Param("label_smoothing", fraction(0.0, 1.0), 0.0),
                            Param("axis", must_be(-1, why="only the last axis"), -1)),
    "mean_squared_error": (),
    "mean_absolute_error": (),
}
_LOSS_COMMON = (
    Param("reduction", must_be("sum_over_batch_size", why="only Keras's default reduction"),
          "sum_over_batch_size"),
    Param("name", optional(string), None),
    Param("dtype", must_be(None, "float32", why="cnnc computes in float32"), None),
)

METRICS = {"accuracy": "accuracy", "acc": "accuracy",
           "categorical_accuracy": "categorical_accuracy",
           "sparse_categorical_accuracy": "sparse_categorical_accuracy",
           "binary_accuracy": "binary_accuracy",
           "mse": "mean_squared_error", "mean_squared_error": "mean_squared_error",
           "mae": "mean_absolute_error", "mean_absolute_error": "mean_absolute_error"}


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    params: Mapping[str, Any]
    span: Span | None = None

    @property
    def learning_rate(self) -> float:
        return float(self.params["learning_rate"])


@dataclass(frozen=True)
class LossSpec:
    name: str
    from_logits: bool = False
    label_smoothing: float = 0.0
    span: Span | None = None


@dataclass(frozen=True)
class CompileSpec:
    optimizer: OptimizerSpec
    loss: LossSpec | None
    metrics: tuple[str, ...] = ()
    span: Span | None = None


@dataclass(frozen=True)
class FitSpec:
    epochs: int = 1
    batch_size: int = 32
    validation_split: float = 0.0
    shuffle: bool = True
    seed: int | None = None
    initial_epoch: int = 0
    verbose: Any = "auto"
    span: Span | None = None
    spans: Mapping[str, Span] = field(default_factory=dict)


def loss_name(spelling: str) -> str | None:
    """The canonical loss for any accepted spelling ('mse' -> 'mean_squared_error')."""
    return _LOSS_BY_NAME.get(spelling)


def default_optimizer(name: str = "RMSprop") -> OptimizerSpec:
    return OptimizerSpec(name, MappingProxyType({p.name: p.default for p in OPTIMIZERS[name]}))


# --- compile -------------------------------------------------------------------

_COMPILE = (
    Param("optimizer", _raw, None),
    Param("loss", _raw, None),
    Param("loss_weights", must_be(None, why="the model has one output"), None),
    Param("metrics", _raw, None),
    Param("weighted_metrics", must_be(None, why="sample weights are not implemented"), None),
    Param("run_eagerly", boolean, False),
    Param("steps_per_execution", positive_int, 1),
    Param("jit_compile", _raw, "auto"),
    Param("auto_scale_loss", boolean, True),
)


def resolve_compile(call: S.Call, rep: Reporter) -> CompileSpec | None:
    b = bind("compile", _COMPILE, call, rep)
    opt_node, loss_node, metrics_node = (b.values.get(k) for k in ("optimizer", "loss", "metrics"))
    optimizer = default_optimizer("RMSprop") if opt_node is None else resolve_optimizer(opt_node, rep)
    loss = None if loss_node is None else resolve_loss(loss_node, rep)
    metrics = () if metrics_node is None else resolve_metrics(metrics_node, rep)
    if loss_node is None:
        rep.warning("compile() has no loss: the model cannot be trained", call.span,
                    "add loss='categorical_crossentropy' (or the loss that fits the output)")
    if optimizer is None or not b.ok or (loss_node is not None and loss is None) or metrics is None:
        return None
    return CompileSpec(optimizer, loss, metrics, call.span)


def resolve_optimizer(v: S.Value, rep: Reporter) -> OptimizerSpec | None:
    if isinstance(v, S.String):
        name, span, call = v.value, v.span, None
    elif isinstance(v, S.Call):
        name, span, call = v.name.last, v.name.span, v
    else:
        rep.error(f"optimizer must be a name such as 'adam' or a call such as SGD(learning_rate=0.01), "
                  f"got {S.describe(v)}", v.span)
        return None
    canonical = next((k for k in OPTIMIZERS if k.lower() == name.lower()), None)
    if canonical is None:
        if name.lower() in KERAS_OTHER_OPTIMIZERS:
            rep.error(f"cnnc does not support the optimizer {name!r} yet", span,
                      "supported: SGD, RMSprop, Adam")
        else:
            rep.error(f"unknown optimizer {name!r}", span,
                      did_you_mean(name, list(OPTIMIZERS)) or "supported: SGD, RMSprop, Adam")
        return None
    params = OPTIMIZERS[canonical]
    if call is None:
        return default_optimizer(canonical)
    b = bind(canonical, params, call, rep)
    if not b.ok:
        return None
    values = dict(b.values)
    if values.get("lr") is not None:
        if "learning_rate" in b.given:
            rep.error(f"{canonical}() got both lr and learning_rate", b.spans["lr"])
            return None
        rep.warning("`lr` is the Keras 2 spelling of `learning_rate`", b.spans["lr"],
                    "Keras 3 refuses `lr`; cnnc reads it as learning_rate")
        values["learning_rate"] = values["lr"]
    del values["lr"]
    if values.get("decay"):
        rep.warning("`decay` is a Keras 2 argument that Keras 3 dropped", b.spans["decay"],
                    "cnnc honours it as Keras 2 did: lr_t = lr / (1 + decay * iterations)")
    clip = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if values.get(k) is not None]
    if len(clip) > 1:
        rep.error(f"{canonical}() takes only one of clipnorm, clipvalue, global_clipnorm",
                  b.spans[clip[1]], "Keras refuses more than one too")
        return None
    return OptimizerSpec(canonical, MappingProxyType(values), call.span)


def resolve_loss(v: S.Value, rep: Reporter) -> LossSpec | None:
    if isinstance(v, S.String):
        key, span, call = v.value, v.span, None
    elif isinstance(v, S.Call):
        key, span, call = v.name.last, v.name.span, v
    elif isinstance(v, S.Name) and len(v.parts) > 1:
        key, span, call = v.last, v.span, None
    else:
        rep.error(f"loss must be a name such as 'categorical_crossentropy', got {S.describe(v)}",
                  v.span)
        return None
    name = _LOSS_BY_NAME.get(key)
    if name is None:
        rep.error(f"unknown or unsupported loss {key!r}", span,
                  did_you_mean(key, list(_LOSS_BY_NAME)) or "supported: " + ", ".join(LOSSES))
        return None
    if call is None:
        return LossSpec(name, span=span)
    b = bind(key, _LOSS_PARAMS[name] + _LOSS_COMMON, call, rep)
    if not b.ok:
        return None
    return LossSpec(name, bool(b.values.get("from_logits", False)),
                    float(b.values.get("label_smoothing", 0.0)), call.span)


def resolve_metrics(v: S.Value, rep: Reporter) -> tuple[str, ...] | None:
    items = v.items if isinstance(v, (S.List, S.Tuple)) else (v,)
    out: list[str] = []
    ok = True
    for item in items:
        if not isinstance(item, S.String):
            rep.error(f"metrics must be names such as 'accuracy', got {S.describe(item)}", item.span)
            ok = False
            continue
        m = METRICS.get(item.value)
        if m is None:
            rep.error(f"unknown or unsupported metric {item.value!r}", item.span,
                      did_you_mean(item.value, list(METRICS)) or
                      "supported: " + ", ".join(sorted(set(METRICS))))
            ok = False
            continue
        out.append(item.value if m == "accuracy" else m)
    return tuple(out) if ok else None


# --- fit -------------------------------------------------------------------------

_FIT = (
    Param("x", _raw, None), Param("y", _raw, None),
    Param("batch_size", optional(positive_int), None),
    Param("epochs", any_int, 1),
    Param("verbose", _raw, "auto"),
    Param("callbacks", must_be(None, why="callbacks are not implemented"), None),
    Param("validation_split", fraction(0.0, 1.0, hi_open=True), 0.0),
    Param("validation_data", _raw, None),
    Param("shuffle", boolean, True),
    Param("class_weight", must_be(None, why="class weights are not implemented"), None),
    Param("sample_weight", must_be(None, why="sample weights are not implemented"), None),
    Param("initial_epoch", any_int, 0),
    Param("steps_per_epoch", must_be(None, why="an epoch is always one pass over the data"), None),
    Param("validation_steps", must_be(None, why="validation uses all of its data"), None),
    Param("validation_batch_size", optional(positive_int), None),
    Param("validation_freq", must_be(1, why="cnnc validates after every epoch"), 1),
    # cnnc's own: the seed that makes a run repeatable (Keras uses set_random_seed).
    Param("seed", optional_int, None, keyword_only=True),
)


def resolve_fit(call: S.Call, rep: Reporter) -> FitSpec | None:
    b = bind("fit", _FIT, call, rep)
    data = [k for k in ("x", "y", "validation_data") if b.values.get(k) is not None]
    if data:
        first = b.values[data[0]].span
        rep.warning(f"fit() ignores {', '.join(data)}: the data comes from `cnnc train --data`",
                    first.to(b.values[data[-1]].span) if first.line == b.values[data[-1]].span.line
                    else first, "see `cnnc train --help`")
    epochs = b.values.get("epochs", 1)
    if isinstance(epochs, int) and epochs < 1 and "epochs" in b.spans:
        rep.error(f"`epochs` must be at least 1, got {epochs}", b.spans["epochs"])
        return None
    if isinstance(epochs, int) and epochs > MAX_EPOCHS and "epochs" in b.spans:
        rep.error(f"`epochs` must be at most {MAX_EPOCHS:,} (cnnc's limit; no training needs "
                  f"more), got {epochs:,}", b.spans["epochs"])
        return None
    if isinstance(b.values.get("initial_epoch"), int) and b.values["initial_epoch"] < 0:
        rep.error("`initial_epoch` must be >= 0", b.spans["initial_epoch"])
        return None
    verbose = b.values.get("verbose")
    if isinstance(verbose, S.Value):
        try:
            verbose = literal(verbose, "verbose")
        except ArgError as e:
            rep.error(e.message, e.span, *e.notes)
            return None
        if verbose not in ("auto", 0, 1, 2):
            rep.error("`verbose` must be 'auto', 0, 1 or 2", b.spans["verbose"])
            return None
    if not b.ok:
        return None
    return FitSpec(epochs=b.values["epochs"], batch_size=b.values["batch_size"] or 32,
                   validation_split=b.values["validation_split"], shuffle=b.values["shuffle"],
                   seed=b.values["seed"], initial_epoch=b.values["initial_epoch"], verbose=verbose,
                   span=call.span, spans=MappingProxyType(dict(b.spans)))
