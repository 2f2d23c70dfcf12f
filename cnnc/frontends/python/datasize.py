"""Sizes that come from data: `num_classes = len(class_names)`, `len(os.listdir(d))`,
`train_generator.num_classes`, `x.shape[1]` of an array loaded from a file.

Every such size enters the reader through `data_size` and nowhere else. Today it is an
unknown value that the emitter turns into one refusal at the line that needs it,
naming the expression; once cnnc has open dimensions (named sizes that shapes,
parameters and MACs are expressions in), this is the one function to swap: it would
return a named dimension instead.
"""

from __future__ import annotations

from cnnc.frontends.python.values import Unknown
from cnnc.support.diagnostics import Span


def data_size(expr_text: str, span: Span | None, name: str | None = None) -> Unknown:
    """The size that `expr_text` (at `span`) takes from the data; `name` is what the
    source calls it (a variable bound to it later renames it: see `named`)."""
    return Unknown(f"`{expr_text}` comes from the data", span, data=True, name=name or expr_text)


def named(v: Unknown, variable: str) -> Unknown:
    """A size from the data bound to a variable takes the variable's name, as the
    source calls it (`num_classes`), its expression kept in the reason."""
    if not v.data or v.name == variable or (v.name and v.name.isidentifier()):
        return v
    return Unknown(v.why, v.span, True, variable, v.test)
