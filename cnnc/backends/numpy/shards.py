"""What the threads of a split batch share (see parallel.py): the split itself, the
barrier-synchronised all-gather, values made once per step, and the combination of
BatchNormalization's per-block statistics. The layers import this module; the
threads and replicas live in parallel.py."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

Array = np.ndarray


def split_rows(n: int, parts: int) -> list[tuple[int, int]]:
    """(start, stop) of `parts` nearly equal, contiguous blocks of n rows (fewer
    blocks when there are fewer rows than parts; one empty block for n = 0)."""
    parts = max(1, min(parts, n))
    base, extra = divmod(n, parts)
    bounds, start = [], 0
    for i in range(parts):
        stop = start + base + (i < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


class Group:
    """The threads of one step: an all-gather with a barrier, and values made once
    for all of them (dropout masks)."""

    def __init__(self, size: int):
        self.size = size
        self.barrier = threading.Barrier(size)
        self.slots: list[list[Any]] = [[None] * size, [None] * size]
        self.calls = [0] * size
        self.lock = threading.Lock()
        self.made: dict[str, Any] = {}

    def start_step(self, size: int) -> None:
        """Called before the threads start: `size` blocks this step (fewer than the
        threads when the batch is smaller), nothing left from an earlier step."""
        if size != self.size or self.barrier.broken:
            self.size = size
            self.barrier = threading.Barrier(size)
            self.slots = [[None] * size, [None] * size]
        self.calls = [0] * size
        self.made.clear()

    def gather(self, index: int, value: Any) -> list[Any]:
        """Every thread's `value`, in thread order. Two sets of slots alternate: a
        thread can reuse one only after all threads passed the next barrier, that
        is, after every thread has read it."""
        k = self.calls[index]
        self.calls[index] = k + 1
        slot = self.slots[k % 2]
        slot[index] = value
        self.barrier.wait()
        return list(slot)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """make() for the first thread that asks during this step; the same object
        for the others."""
        with self.lock:
            if key not in self.made:
                self.made[key] = make()
            return self.made[key]

    def abort(self) -> None:
        self.barrier.abort()


@dataclass(frozen=True)
class Shard:
    """One thread's rows [start, stop) of a batch of `total` rows."""

    index: int
    start: int
    stop: int
    total: int
    group: Group


def combine_moments(parts: Sequence[tuple[int, Array, Array]]) -> tuple[int, Array, Array]:
    """(count, mean, sum of squared deviations) of the union of row blocks, from each
    block's own (Chan, Golub and LeVeque's pairwise update, in block order)."""
    n, mean, m2 = parts[0]
    for nb, mb, m2b in parts[1:]:
        if nb == 0:
            continue
        if n == 0:
            n, mean, m2 = nb, mb, m2b
            continue
        total = n + nb
        delta = mb - mean
        dt = mean.dtype.type
        mean = mean + delta * dt(nb / total)
        m2 = m2 + m2b + delta * delta * dt(n * nb / total)
        n = total
    return n, mean, m2
