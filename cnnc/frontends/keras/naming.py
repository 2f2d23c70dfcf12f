"""Readable names for the tensors of a functional .cnn, and its layer order.

Ported from tools/keras_to_cnn.py (the dev-only converter that wrote examples/zoo/):
statements in a depth-first order from the outputs, so that each branch is written
whole before the merge that joins it; `x` for the main line; a tensor used more than
once, or after `x` has moved on, named after its layer or its role (`shortcut`,
`branch3x3`, ...); layers grouped into blocks by their name prefix (`conv2_block1_`).
"""

from __future__ import annotations

import bisect
import keyword
import re

from cnnc.analysis.arguments import snake_case

RESERVED = {"x", "inputs", "model", "input", "Model", "Input", "compile", "fit", "import", "from",
            "as", "None", "True", "False"}


class Node:
    """The converter's view of a layer: name, class, config, inputs and consumers."""

    def __init__(self, name: str, cls: str, config: dict, inputs: list[str], is_op: bool):
        self.name, self.cls, self.config, self.inputs = name, cls, config, inputs
        self.consumers: list[str] = []
        self.is_op = is_op

    @property
    def auto_named(self) -> bool:
        stem = snake_case(self.cls)
        return re.fullmatch(rf"{re.escape(stem)}(_\d+)?", self.name) is not None


GROUP_PATTERNS = [
    re.compile(r"^(conv\d+_block\d+)_"),           # ResNet, DenseNet
    re.compile(r"^(block_?\d+[a-z]?)_"),           # VGG, Xception, MobileNetV2, EfficientNet
    re.compile(r"^(expanded_conv(?:_\d+)?)_"),     # MobileNetV2/V3
    re.compile(r"^(conv\d+)(?:_(?:pad|conv|bn|relu|preact|pool)|$)"),  # ResNet/DenseNet stems
    re.compile(r"^(pool\d+)(?:_|$)"),              # ResNet/DenseNet pooling, transitions
]
MOBILENET_V1 = re.compile(r"^conv_(?:dw|pw|pad)_(\d+)")
NASNET_CELL = re.compile(r"(?:normal|reduction|adjust|separable_conv).*?_((?:stem_|reduce_)?\d+)$")
INCEPTION_CLOSER = re.compile(r"^mixed\d+$")


def dfs_order(nodes: dict[str, Node], outputs: list[str], keras_order: list[str]) -> list[str]:
    """Post-order from the outputs: each merge's inputs written whole, in the merge's order."""
    done, order = set(), []
    for out in outputs + keras_order:
        stack = [(out, False)]
        while stack:
            name, expanded = stack.pop()
            if name in done:
                continue
            if expanded:
                done.add(name)
                order.append(name)
                continue
            stack.append((name, True))
            for parent in reversed(nodes[name].inputs):
                if parent not in done:
                    stack.append((parent, False))
    return order


def group_of(name: str) -> str | None:
    m = MOBILENET_V1.match(name)
    if m:
        return f"depthwise separable block {m.group(1)}"
    for pattern in GROUP_PATTERNS:
        m = pattern.match(name)
        if m:
            return m.group(1)
    m = NASNET_CELL.search(name)
    if m:
        return f"cell {m.group(1)}"
    if INCEPTION_CLOSER.match(name):
        return name
    return None


def groups(order: list[str], nodes: dict[str, Node]) -> dict[str, str]:
    out: dict[str, str] = {}
    inherited: set[str] = set()
    seen_group = False
    previous = "stem"
    for name in order:
        node = nodes[name]
        g = None if (node.auto_named or node.cls == "InputLayer") else group_of(name)
        if g is None:
            if node.auto_named or node.cls == "InputLayer":
                g = previous
                inherited.add(name)
            else:
                g = "top" if seen_group else "stem"
        else:
            seen_group = True
        out[name] = previous = g
    # unnamed layers at the start belong to the first block (unless Inception's `mixed`)
    first = next((n for n in order if n not in inherited), None)
    if first is not None and not INCEPTION_CLOSER.match(first):
        for name in order[: order.index(first)]:
            out[name] = out[first]
    # unnamed layers just before the head (Flatten, GlobalAveragePooling2D) belong to it
    seen_top = False
    for name in reversed(order):
        if name in inherited:
            if seen_top and nodes[name].cls != "InputLayer":
                out[name] = "top"
        elif out[name] == "top":
            seen_top = True
        else:
            break
    # Inception: the unnamed layers before `mixedN` belong to it, back to the block input.
    for i, name in enumerate(order):
        if not INCEPTION_CLOSER.match(name):
            continue
        j = i - 1
        while j >= 0 and order[j] in inherited and not INCEPTION_CLOSER.match(order[j]):
            users = [c for c in nodes[order[j]].consumers if order.index(c) <= i]
            if len(nodes[order[j]].consumers) > 1 and len(users) > 1:
                break
            out[order[j]] = out[name]
            j -= 1
    return out


def strip_group(name: str, group: str) -> str:
    if name.startswith(group + "_"):
        return name[len(group) + 1:]
    m = NASNET_CELL.search(name)
    if m:
        return name[: m.start(1) - 1]
    return name


GENERIC = {"out", "output"}


def assign_names(order: list[str], nodes: dict[str, Node], group: dict[str, str],
                 outputs: list[str]) -> dict[str, str]:
    pos = {n: i for i, n in enumerate(order)}
    last_use = {n: max([pos[c] for c in nodes[n].consumers], default=len(order)) for n in order}
    for n in outputs:
        last_use[n] = len(order)
    # chains: n continues p's chain when p -> n is the only edge out of p and into n
    chain_of: dict[str, int] = {}
    chains: list[list[str]] = []
    for n in order:
        node = nodes[n]
        if node.cls == "InputLayer":
            continue
        if (len(node.inputs) == 1 and node.inputs[0] in chain_of
                and len(nodes[node.inputs[0]].consumers) == 1
                and len(node.consumers) <= 1 and node.inputs[0] not in outputs):
            c = chain_of[node.inputs[0]]
            chains[c].append(n)
            chain_of[n] = c
        else:
            chain_of[n] = len(chains)
            chains.append([n])

    def wide_merge(chain):
        return any(nodes[c].cls in ("Concatenate",) and len(nodes[c].inputs) >= 3
                   for c in nodes[chain[-1]].consumers)

    # x: the most statements among chains whose lifetimes do not overlap (interval DP)
    spans = sorted(((pos[c[0]], last_use[c[-1]], 0 if wide_merge(c) else len(c), k)
                    for k, c in enumerate(chains)), key=lambda t: (t[1], t[0]))
    best = [(0, [])]
    ends = [s[1] for s in spans]
    for i, (start, end, weight, k) in enumerate(spans):
        j = bisect.bisect_right(ends, start, 0, i)
        take = (best[j][0] + weight, best[j][1] + [k])
        best.append(max(best[i], take, key=lambda t: t[0]))
    x_chains = set(best[-1][1])

    names: dict[str, str] = {}
    holder_end: dict[str, int] = {}   # variable -> last statement that reads its current value

    def free(var, start):
        return holder_end.get(var, -1) <= start

    for n in order:
        if nodes[n].cls == "InputLayer":
            names[n] = "inputs" if free("inputs", 0) else _safe(n)
            holder_end[names[n]] = last_use[n]
    for k, chain in sorted(enumerate(chains), key=lambda kc: pos[kc[1][0]]):
        start, end = pos[chain[0]], last_use[chain[-1]]
        if k in x_chains and free("x", start):
            var = "x"
        else:
            var = None
            for cand in _candidates(chain, nodes, group):
                if cand not in RESERVED and free(cand, start):
                    var = cand
                    break
            if var is None:
                base = _candidates(chain, nodes, group)[0]
                i = 2
                while not free(f"{base}_{i}", start) or f"{base}_{i}" in RESERVED:
                    i += 1
                var = f"{base}_{i}"
        for n in chain:
            names[n] = var
        holder_end[var] = end
    return names


def _safe(name: str) -> str:
    s = re.sub(r"\W", "_", name)
    if not s or s[0].isdigit():
        s = "t_" + s
    if keyword.iskeyword(s) or s in RESERVED:
        s += "_"
    return s


def _candidates(chain: list[str], nodes: dict[str, Node], group: dict[str, str]) -> list[str]:
    last = nodes[chain[-1]]
    cands = []
    consumers = [nodes[c] for c in last.consumers]
    branch = re.search(r"(?:normal|reduction)_((?:left|right)\d+)", last.name)
    if branch:
        cands.append(branch.group(1))
    elif len(consumers) > 1 and any(c.cls == "Add" and not c.is_op for c in consumers):
        cands.append("shortcut")
    if not last.auto_named:
        stripped = strip_group(last.name, group[last.name])
        if stripped.isidentifier() and not keyword.iskeyword(stripped) and stripped not in GENERIC:
            cands.append(stripped)
    if any(c.cls in ("Add", "Subtract", "Average") and not c.is_op for c in consumers):
        cands.append("shortcut")
    if any(c.cls == "Concatenate" for c in consumers):
        first = nodes[chain[0]]
        if "Pooling" in first.cls:
            cands.append("branch_pool")
        kernels = [tuple(nodes[n].config.get("kernel_size") or ())
                   for n in chain if "Conv" in nodes[n].cls]
        if kernels:
            k = "x".join(str(d) for d in kernels[-1])
            cands += [f"branch{k}", f"branch{k}dbl"]
        cands.append("branch")
    if any(c.cls == "Multiply" for c in consumers):
        cands.append("gate" if "Pooling" in nodes[chain[0]].cls else "features")
    g = group[last.name]
    if last.auto_named and g.isidentifier() and g not in ("stem", "top") and any(
            group[c.name] != g for c in consumers):
        cands.append(f"{g}_out")
    cands.append(_safe(last.name))
    return cands
