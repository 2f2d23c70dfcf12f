"""Every layer kind and every activation has a rule in every phase that exists.

Adding a layer kind to cnnc/kinds.py (or an activation to cnnc/activations.py)
fails here until each phase has learned it.
"""

from __future__ import annotations

import importlib

import pytest

from cnnc.analysis import activations, kinds

# phase -> (module, table of layer-family rules)
LAYER_TABLES = [
    ("shape inference", "cnnc.analysis.infer", "RULES"),
    ("NumPy reference", "cnnc.backends.numpy.registry", "LAYERS"),
    ("ONNX lowering", "cnnc.backends.onnx.registry", "RULES"),
]
ACTIVATION_TABLES = [
    ("NumPy reference", "cnnc.backends.numpy.activations", "ACTIVATIONS"),
    ("ONNX lowering", "cnnc.backends.onnx.activations", "RULES"),
]


@pytest.mark.parametrize("phase,module,table", LAYER_TABLES, ids=[t[0] for t in LAYER_TABLES])
def test_every_layer_kind_has_a_rule(phase, module, table):
    rules = getattr(importlib.import_module(module), table)
    for kind in kinds.KINDS.values():
        assert kind.family in rules, f"{phase} has no rule for {kind.name} (family {kind.family!r})"
    assert set(rules) == set(kinds.FAMILIES), f"{phase} has rules for unknown families"


@pytest.mark.parametrize("phase,module,table", ACTIVATION_TABLES, ids=[t[0] for t in ACTIVATION_TABLES])
def test_every_activation_has_a_rule(phase, module, table):
    rules = getattr(importlib.import_module(module), table)
    assert set(rules) == set(activations.SUPPORTED), phase


def test_every_kind_is_reachable_by_name_and_alias():
    for kind in kinds.KINDS.values():
        assert kinds.lookup(kind.name) is kind
        for alias in kind.aliases:
            assert kinds.lookup(alias) is kind
