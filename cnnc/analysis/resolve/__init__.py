"""Syntax tree -> typed IR: names looked up, arguments bound and checked, the graph built.

Statements run in order, as Python would run them. A layer line on its own
continues from the last tensor (the linear form); Keras's functional API names
tensors (`x = Conv2D(16, 3)(x)`), and `as NAME` names a tensor inside a chain.
Layer names follow Keras 3: the snake_case class name, then `_1`, `_2`, ...
counted per name in creation order; an explicit `name=` takes no number.
"""

from __future__ import annotations

from cnnc.analysis.ir import ModelIR
from cnnc.analysis.resolve.graph import _build, _check_unapplied, _name_nodes
from cnnc.analysis.resolve.state import _State
from cnnc.analysis.resolve.statements import _assign, _call_stmt, _dim_decl, _input_decl, _model_decl
from cnnc.language import syntax as S
from cnnc.support.diagnostics import Reporter


def resolve(statements: list[S.Statement], rep: Reporter, path: str = "<string>",
            sizes: dict[str, int] | None = None, input_shape: tuple[int, ...] | None = None,
            only_open_inputs: bool = False) -> ModelIR:
    """`sizes` fixes open dimensions by name (`--define`); `input_shape` fixes the open
    sizes of the first input (`--input-shape`; with `only_open_inputs`, an input with
    no open size is left as it is instead of checked against it)."""
    st = _State(rep, sizes)
    for stmt in statements:
        if isinstance(stmt, S.DimDecl):
            _dim_decl(st, stmt)
        elif isinstance(stmt, S.Import):
            st.aliases.update(stmt.aliases)
        elif isinstance(stmt, S.ModelDecl):
            _model_decl(st, stmt.name, stmt.span)
        elif isinstance(stmt, S.InputDecl):
            _input_decl(st, stmt)
        elif isinstance(stmt, S.Assign):
            _assign(st, stmt)
        else:
            _call_stmt(st, stmt)
    _check_unapplied(st)
    names = _name_nodes(st)
    return _build(st, names, path, input_shape, only_open_inputs)
