"""A Keras compile config (Keras 3's compile_config, Keras 2's training_config) as
the .cnn `compile(...)` line, when cnnc has its optimizer, loss and metrics; else a
comment saying what was left out (the model itself is still read)."""

from __future__ import annotations

from typing import Any

from cnnc.analysis.compile_spec import LOSSES, METRICS, OPTIMIZERS
from cnnc.frontends.keras.to_cnn import _f32_short, fmt

_LOSS_NAMES = {alias: name for name, aliases in LOSSES.items() for alias in (name,) + aliases}
_OPT_KEYS = {"learning_rate", "momentum", "nesterov", "rho", "epsilon", "centered", "beta_1",
             "beta_2", "amsgrad", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm"}


def compile_line(training: dict | None) -> str | None:
    if not isinstance(training, dict):
        return None
    try:
        parts = [_optimizer(training), _loss(training.get("loss")), _metrics(training.get("metrics"))]
    except _Skip as e:
        return f"# compile(...) of the Keras file not imported: {e}"
    args = [p for p in parts if p]
    return f"compile({', '.join(args)})" if args else None


class _Skip(Exception):
    pass


def _optimizer(training: dict) -> str:
    opt = training.get("optimizer", training.get("optimizer_config"))
    if opt is None:
        return ""
    if isinstance(opt, str):
        name, cfg = opt, {}
    elif isinstance(opt, dict):
        name = str(opt.get("class_name", ""))
        cfg = opt.get("config") if isinstance(opt.get("config"), dict) else {}
    else:
        raise _Skip(f"optimizer {opt!r}")
    name = name.split(">")[-1]
    canonical = next((k for k in OPTIMIZERS if k.lower() == name.lower()), None)
    if canonical is None:
        raise _Skip(f"cnnc has no optimizer {name!r} (SGD, RMSprop, Adam)")
    cfg = dict(cfg)
    if "lr" in cfg and "learning_rate" not in cfg:       # Keras 2
        cfg["learning_rate"] = cfg.pop("lr")
    defaults = {p.name: p.default for p in OPTIMIZERS[canonical]}
    args = []
    for key, value in cfg.items():
        if key not in _OPT_KEYS or value is None:
            continue
        if isinstance(value, dict):
            raise _Skip(f"{key} is a schedule ({value.get('class_name')})")
        if isinstance(value, float):
            value = _f32_short(value)
        if key in defaults and defaults[key] == value:
            continue
        if key == "weight_decay" and not value:
            continue
        args.append(f"{key}={fmt(value)}")
    if cfg.get("decay"):
        args.append(f"decay={fmt(_f32_short(float(cfg['decay'])))}")
    return f"optimizer={canonical}({', '.join(args)})"


def _loss(loss: Any) -> str:
    if loss is None:
        return ""
    if isinstance(loss, list) and len(loss) == 1:
        loss = loss[0]
    if isinstance(loss, str):
        if loss not in _LOSS_NAMES:
            raise _Skip(f"loss {loss!r}")
        return f"loss={loss!r}"
    if isinstance(loss, dict):
        cls = str(loss.get("class_name", ""))
        cfg = loss.get("config") if isinstance(loss.get("config"), dict) else {}
        if cls not in _LOSS_NAMES:
            raise _Skip(f"loss {cls!r}")
        args = [f"{k}={fmt(v)}" for k, v in cfg.items()
                if (k == "from_logits" and v) or (k == "label_smoothing" and v)]
        return f"loss={cls}({', '.join(args)})"
    raise _Skip(f"loss {loss!r}")


def _metrics(metrics: Any) -> str:
    if not metrics:
        return ""
    names = []
    stack = list(metrics) if isinstance(metrics, list) else [metrics]
    while stack:
        m = stack.pop(0)
        if isinstance(m, list):
            stack[:0] = m
        elif isinstance(m, str):
            names.append(m)
        elif isinstance(m, dict):
            cfg = m.get("config") if isinstance(m.get("config"), dict) else {}
            names.append(str(cfg.get("name") or m.get("class_name")))
    names = [n for n in names if n != "loss"]
    bad = [n for n in names if n not in METRICS]
    if bad:
        raise _Skip(f"metrics {bad}")
    return f"metrics={names!r}" if names else ""
