"""Keras 3 initializers in NumPy (keras/src/initializers/random_initializers.py).

Same distributions and fan computation as Keras, so a fresh cnnc model starts
at the same scale as a fresh Keras model (not the same numbers: the random
streams differ).
"""

from __future__ import annotations

import math

import numpy as np

from cnnc.analysis.arguments import Initializer
from cnnc.analysis.infer import Analysis

# Presets of VarianceScaling: (scale, mode, distribution).
_VARIANCE_PRESETS = {
    "GlorotUniform": (1.0, "fan_avg", "uniform"),
    "GlorotNormal": (1.0, "fan_avg", "truncated_normal"),
    "HeNormal": (2.0, "fan_in", "truncated_normal"),
    "HeUniform": (2.0, "fan_in", "uniform"),
    "LecunNormal": (1.0, "fan_in", "truncated_normal"),
    "LecunUniform": (1.0, "fan_in", "uniform"),
}
# sqrt(scale) / this = the stddev of a normal truncated at 2 stddev with variance `scale`.
_TRUNCATION_STD = 0.87962566103423978


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras's fans: a kernel (..., in, out) counts its receptive field in both."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    rf = math.prod(shape[:-2])
    return shape[-2] * rf, shape[-1] * rf


def truncated_normal(rng: np.random.Generator, shape, mean: float, stddev: float) -> np.ndarray:
    """Normal samples redrawn until within 2 stddev of the mean (as TensorFlow does)."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return (out * stddev + mean).astype(np.float32)


def variance_scaling(rng: np.random.Generator, shape, scale: float, mode: str,
                     distribution: str) -> np.ndarray:
    fan_in, fan_out = compute_fans(tuple(shape))
    denom = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    scale = scale / max(1.0, denom)
    distribution = "truncated_normal" if distribution == "normal" else distribution
    if distribution == "truncated_normal":
        return truncated_normal(rng, shape, 0.0, math.sqrt(scale) / _TRUNCATION_STD)
    if distribution == "untruncated_normal":
        return (rng.standard_normal(shape) * math.sqrt(scale)).astype(np.float32)
    limit = math.sqrt(3.0 * scale)
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def sample(init: Initializer, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Values for one weight. An initializer's own seed= makes it repeatable on its own."""
    seed = init.get("seed")
    if seed is not None:
        rng = np.random.default_rng(seed)
    name = init.name
    if name == "Zeros":
        return np.zeros(shape, np.float32)
    if name == "Ones":
        return np.ones(shape, np.float32)
    if name == "Constant":
        return np.full(shape, init.get("value", 0.0), np.float32)
    if name == "RandomNormal":
        return (rng.standard_normal(shape) * init.get("stddev", 0.05) + init.get("mean", 0.0)).astype(np.float32)
    if name == "RandomUniform":
        return rng.uniform(init.get("minval", -0.05), init.get("maxval", 0.05), shape).astype(np.float32)
    if name == "TruncatedNormal":
        return truncated_normal(rng, shape, init.get("mean", 0.0), init.get("stddev", 0.05))
    if name == "VarianceScaling":
        return variance_scaling(rng, shape, init.get("scale", 1.0), init.get("mode", "fan_in"),
                                init.get("distribution", "truncated_normal"))
    if name in _VARIANCE_PRESETS:
        return variance_scaling(rng, shape, *_VARIANCE_PRESETS[name])
    raise ValueError(f"no NumPy implementation for initializer {name!r}")


SUPPORTED: tuple[str, ...] = ("Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
                              "TruncatedNormal", "VarianceScaling", *_VARIANCE_PRESETS)


def initial_weights(analysis: Analysis, seed: int | None = None) -> dict[str, np.ndarray]:
    """Fresh weights for every layer, keyed "layer/weight" in Keras order."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for info in analysis.infos:
        for w in info.weights:
            out[f"{info.name}/{w.name}"] = sample(w.initializer, w.shape, rng)
    return out
