"""Open sizes as expressions (analysis/symbolic.py) and the sets of sizes that work
(analysis/constraints.py), against brute force: every expression is evaluated at every
value, every solved set compared with the values that satisfy the check one by one."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnc.analysis.constraints import Check, Constraints, SizeSet, Unsatisfiable, solve
from cnnc.analysis.symbolic import (
    Expr,
    ceil_div,
    dim,
    dims_of,
    evaluate,
    exact_div,
    floor_div,
    render,
    substitute,
)

H, W, N = dim("H"), dim("W"), dim("num_classes")


# --- expressions ------------------------------------------------------------------------------

def test_constants_stay_ints_and_equal_sizes_compare_equal():
    assert H - H == 0 and isinstance(H - H, int)
    assert 2 * floor_div(H, 2) + (H - 2 * floor_div(H, 2)) == H
    assert floor_div(floor_div(H, 2), 2) == floor_div(H, 4)          # nested floors merge
    assert floor_div(floor_div(H + 1, 2) + 1, 2) == floor_div(H + 3, 4)
    assert floor_div(2 * H + 2, 4) == floor_div(H + 1, 2)             # common factor
    assert floor_div(4 * H + 5, 2) == 2 * H + 2                       # whole part pulled out
    assert ceil_div(H, 2) == floor_div(H + 1, 2)
    assert hash(floor_div(H, 4)) == hash(floor_div(floor_div(H, 2), 2))


def test_rendering_reads_as_keras_formulas():
    assert render((H - 3) // 2 + 1) == "ceil(H/2) - 1"                # floor((H-3)/2)+1
    assert str(floor_div(H, 4)) == "floor(H/4)"
    assert str(2 * floor_div(H, 2)) == "2*floor(H/2)"
    assert render(3987904 + 129 * N, constant_first=True, digits=True) == "3,987,904 + 129*num_classes"
    assert str(3 * H * W) == "3*H*W"


def test_open_sizes_refuse_to_be_compared_or_branched_on():
    with pytest.raises(TypeError):
        bool(H)
    with pytest.raises(TypeError):
        H < 3   # noqa: B015


def test_exact_division_and_substitution():
    assert exact_div(6 * H * W, 3) == 2 * H * W
    assert exact_div(3 * H + 1, 3) is None
    assert substitute(H * W + H, {"H": 4}) == 4 * W + 4
    assert substitute(floor_div(H, 2) + N, {"H": 7, "num_classes": 3}) == 6
    assert set(dims_of(floor_div(H, 2) * W)) == {"H", "W"}


def _random_expr(rng: random.Random, x: Expr, depth: int = 0):
    """Convolution-like arithmetic on one size: shifts, scalings, floors and ceils."""
    e = x
    for _ in range(rng.randint(1, 5)):
        k = rng.choice(["floor", "ceil", "shift", "scale", "conv"])
        if k == "floor":
            e = floor_div(e, rng.randint(2, 5))
        elif k == "ceil":
            e = ceil_div(e, rng.randint(2, 4))
        elif k == "shift":
            e = e + rng.randint(-4, 4)
        elif k == "scale":
            e = e * rng.randint(1, 3)
        else:                          # 'valid' window: floor((n - d*(k-1) - 1)/s) + 1
            kk, s, d = rng.randint(1, 5), rng.randint(1, 3), rng.randint(1, 2)
            e = (e - d * (kk - 1) - 1) // s + 1
    return e


def _python_value(rng_seed: int, v: int) -> int:
    """The same random arithmetic computed on plain ints (the truth)."""
    rng = random.Random(rng_seed)
    e = v
    for _ in range(rng.randint(1, 5)):
        k = rng.choice(["floor", "ceil", "shift", "scale", "conv"])
        if k == "floor":
            e = e // rng.randint(2, 5)
        elif k == "ceil":
            e = -(-e // rng.randint(2, 4))
        elif k == "shift":
            e = e + rng.randint(-4, 4)
        elif k == "scale":
            e = e * rng.randint(1, 3)
        else:
            kk, s, d = rng.randint(1, 5), rng.randint(1, 3), rng.randint(1, 2)
            e = (e - d * (kk - 1) - 1) // s + 1
    return e


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**6))
def test_expressions_evaluate_like_integer_arithmetic(seed):
    e = _random_expr(random.Random(seed), H)
    for v in range(1, 80):
        assert evaluate(e, {"H": v}) == _python_value(seed, v)


# --- sets of sizes -----------------------------------------------------------------------------

def _brute(check: Check, top: int) -> list[int]:
    return [v for v in range(1, top) if check.holds({"H": v})]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from(["ge", "eq"]))
def test_solved_sets_equal_brute_force(seed, relation):
    """The closed-form set of a check on one size is exactly the values that pass it."""
    rng = random.Random(seed)
    e = _random_expr(rng, H) - _random_expr(rng, H) if relation == "eq" else \
        _random_expr(rng, H) - rng.randint(0, 6)
    if not isinstance(e, Expr):
        return
    check = Check(((e, relation),), "random", "layer")
    s = check.solve()
    top = 4 * s.period + 200
    assert [v for v in range(1, top) if v in s] == _brute(check, top)


def test_u_net_levels_need_multiples_of_two_to_the_levels():
    """Each level pools by 2 and up-samples back: the skip connection needs
    2*floor(n/2) == n at that level, so n must be a multiple of 2**levels."""
    for levels in range(1, 6):
        c = Constraints()
        n = H
        for _ in range(levels):
            c.require(Check(((2 * floor_div(n, 2) - n, "eq"),), "skip", "concat"))
            n = floor_div(n, 2)
        assert c.describe("H") == f"{'even sizes' if levels == 1 else f'multiples of {2 ** levels}'}"
        assert c.sets["H"].first(3) == [2 ** levels, 2 * 2 ** levels, 3 * 2 ** levels]


def test_descriptions_in_closed_form():
    assert solve(H - 5, "ge").describe() == "at least 5"
    assert solve(10 - H, "ge").intersect(solve(H - 3, "ge")).describe() == "3 to 10"
    assert solve(H - 7, "eq").describe() == "only 7"
    assert solve(H - 2 * floor_div(H, 2) - 1, "eq").describe() == "odd sizes"
    s = solve(16 * floor_div(H, 16) - H, "eq").intersect(solve(floor_div(H, 16) - 2, "ge"))
    assert s.describe() == "multiples of 16, at least 32"
    assert solve(H - 4 * floor_div(H, 4) - 1, "eq").describe() == "sizes of the form 4k + 1"
    assert SizeSet.everything().describe() == "any size"


def test_broadcasting_is_a_union_of_sizes():
    """Add broadcasts a size 1: n == 2*floor(n/2) or n == 1 keeps 1 among even sizes."""
    check = Check(((H - 2 * floor_div(H, 2), "eq"), (H - 1, "eq")), "add", "add")
    s = check.solve()
    assert s.first(5) == [1, 2, 4, 6, 8]
    assert [v for v in range(1, 50) if v in s] == _brute(check, 50)


def test_checks_that_contradict_each_other_are_unsatisfiable():
    c = Constraints()
    c.require(Check(((H - 2 * floor_div(H, 2), "eq"),), "even", "a"))
    with pytest.raises(Unsatisfiable) as e:
        c.require(Check(((H - 2 * floor_div(H, 2) - 1, "eq"),), "odd", "b"))
    assert e.value.before.describe() == "even sizes" and e.value.alone.describe() == "odd sizes"
    assert c.require(Check(((H - (H + 1), "eq"),), "never", "c")) is False


def test_checks_on_several_sizes_stay_conditions_and_are_evaluated():
    c = Constraints()
    assert c.require(Check(((3 * H * W - 768, "eq"),), "3*H*W == 768", "reshape"))
    assert c.conditions and not c.sets
    assert c.failures({"H": 16, "W": 16}) == [] and c.failures({"H": 16, "W": 15})
