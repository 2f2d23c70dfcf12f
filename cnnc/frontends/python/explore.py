"""Both sides of a condition cnnc cannot know: the script is run again with the other
side taken, so that models built in either are found, and a model whose shapes depend
on the condition is checked once per side.

A run takes the first side (`True`) of each new condition, the same side each time it
meets the same condition again, and records what it decided; every condition decided
that way is then flipped in a later run (breadth first: one flip, then two ...), up
to MAX_RUNS runs and TOTAL_STEPS steps in all. Runs are independent: the evaluator is
deterministic, so a run that forces `{c1: False}` takes the same path as the first up
to c1. What each model was built under is the conditions on which its runs agree
and the other runs do not (`conditions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

MAX_RUNS = 16
TOTAL_STEPS = 600_000


@dataclass
class Decisions:
    """The sides one run takes: forced ones, then the first side of each new condition."""

    forced: dict
    chosen: dict = field(default_factory=dict)      # key -> side taken in this run
    texts: dict = field(default_factory=dict)       # key -> (condition as written, where)
    fresh: list = field(default_factory=list)       # keys this run decided itself, in order

    def choose(self, key, text: str, span, where: str) -> bool:
        if key in self.chosen:
            return self.chosen[key]
        value = self.forced.get(key)
        if value is None:
            value = True
            self.fresh.append(key)
        self.chosen[key] = value
        self.texts[key] = (text, where)
        return value


@dataclass
class Run:
    decisions: Decisions
    result: Any
    complete: bool = True             # False: it ran out of steps (only the first run counts then)


def explore(run_once: Callable[[Decisions, int], tuple[Any, int, bool]]) -> tuple[list[Run], int]:
    """Run the script once per combination of sides worth trying. `run_once(decisions,
    step_limit)` gives (result, steps used, complete). Returns the runs and how many
    combinations were left untried."""
    queue: list[dict] = [{}]
    tried: set = {frozenset()}
    runs: list[Run] = []
    steps = 0
    first = None
    while queue and len(runs) < MAX_RUNS and steps < TOTAL_STEPS:
        if first is not None and steps + first > TOTAL_STEPS:
            break                      # another run like the first would not fit
        forced = queue.pop(0)
        d = Decisions(dict(forced))
        limit = TOTAL_STEPS - steps if runs else None
        result, used, complete = run_once(d, limit)
        steps += used
        first = used if first is None else first
        runs.append(Run(d, result, complete))
        if not complete:
            if len(runs) == 1:
                break                  # the script is too long to follow twice
            continue
        for key in d.fresh:
            alt = dict(forced)
            alt[key] = False
            frozen = frozenset(alt.items())
            if frozen not in tried:
                tried.add(frozen)
                queue.append(alt)
    return runs, len(queue)


def conditions(runs: list[Run], members: list[int], among: list[int] | None = None) -> list[tuple[str, str, bool]]:
    """The decisions all runs in `members` share and runs outside them (of `among`, all
    by default) do not all share: what `members` were built under, as (condition,
    where, side) in the order first met."""
    among = among if among is not None else list(range(len(runs)))
    common = _common([runs[i] for i in members])
    everywhere = _common([runs[i] for i in among])
    out = []
    for key, value in common.items():
        if everywhere.get(key) == value:
            continue
        text, where = _text(runs, members, key)
        out.append((text, where, value))
    return out


def _common(runs: list[Run]) -> dict:
    if not runs:
        return {}
    shared = dict(runs[0].decisions.chosen)
    for r in runs[1:]:
        shared = {k: v for k, v in shared.items() if r.decisions.chosen.get(k) == v}
    return shared


def _text(runs: list[Run], members: list[int], key) -> tuple[str, str]:
    for i in members:
        if key in runs[i].decisions.texts:
            return runs[i].decisions.texts[key]
    return str(key), ""


def describe(conds: list[tuple[str, str, bool]]) -> str:
    """`when `args.arch == 'unet'` (line 12) is true and ...`"""
    parts = [f"`{text}` ({where}) is {'true' if side else 'false'}" for text, where, side in conds]
    return "when " + " and ".join(parts) if parts else ""
