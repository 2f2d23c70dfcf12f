"""Keras's order of a functional model's layers (`model.layers`), as pure functions.

Keras sorts the operations of a functional model by depth, the longest path
from the operation to an output, deepest first; ties keep the order in which a
depth-first walk from the outputs (inputs of a node visited in call order)
first met them. Unused inputs come last at depth 0. The walk here is
iterative so that a 10,000-layer chain does not exhaust Python's stack.
"""

from __future__ import annotations

from typing import Mapping, Sequence


def ancestors(parents: Mapping[str, Sequence[str]], roots: Sequence[str]) -> set[str]:
    """Every node some root depends on, the roots included."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(parents.get(n, ()))
    return seen


def _first_visits(parents: Mapping[str, Sequence[str]], outputs: Sequence[str]) -> tuple[dict[str, int], list[str]]:
    """Preorder index of each node in the walk from the outputs, and the nodes in
    postorder (every node after its parents)."""
    index: dict[str, int] = {}
    post: list[str] = []
    done: set[str] = set()
    active: set[str] = set()     # on the current path: an edge back to one is a cycle, skipped
    for out in outputs:
        stack: list[tuple[str, int]] = [(out, 0)]
        while stack:
            node, i = stack.pop()
            if node in done:
                continue
            if i == 0:
                index.setdefault(node, len(index))
                active.add(node)
            ps = parents.get(node, ())
            if i < len(ps):
                stack.append((node, i + 1))
                if ps[i] not in done and ps[i] not in active:
                    stack.append((ps[i], 0))
            else:
                done.add(node)
                active.discard(node)
                post.append(node)
    return index, post


def keras_order(parents: Mapping[str, Sequence[str]], inputs: Sequence[str],
                outputs: Sequence[str]) -> list[str]:
    """The nodes reaching `outputs` (and every input), in Keras's model.layers order."""
    index, post = _first_visits(parents, outputs)
    depth: dict[str, int] = {}
    for node in reversed(post):          # consumers before their parents
        d = depth.setdefault(node, 0)
        for p in parents.get(node, ()):
            if depth.get(p, 0) < d + 1:
                depth[p] = d + 1
    for name in inputs:
        if name not in depth:
            depth[name] = 0
            index[name] = -1
    return sorted(depth, key=lambda n: (-depth[n], index[n]))
