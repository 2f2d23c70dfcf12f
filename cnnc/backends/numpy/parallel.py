"""A training step on several cores: the batch split across threads, one replica of
the network per thread.

NumPy releases the GIL inside its kernels, so threads that each run the whole
network on their rows of the batch keep the cores busy without copying data to
other processes. Each thread's BLAS runs single-threaded (`single_threaded_blas`):
BLAS threads of their own would fight the replicas for the same cores, and
products over a few thousand rows gain little from them.

What couples the samples of a batch is shared through a `Group`:
- BatchNormalization's statistics: every thread computes its rows' count, mean and
  sum of squared deviations; the group combines them (Chan's formula, the same
  order in every thread), so every thread normalises with the whole batch's mean
  and variance, exactly as one thread would up to float32 rounding;
- dropout masks: drawn once per layer for the whole batch, from the same generator
  in the same order as one thread draws them, each thread taking its rows.

Determinism: the split (`split_rows`) depends only on the batch size and the thread
count, and every sum over threads runs in thread order, so a run repeats bit for
bit at the same thread count (and resumes from a checkpoint that way).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from cnnc.analysis.infer import Analysis
from cnnc.backends.numpy.network import Network
from cnnc.backends.numpy.shards import Group, Shard, split_rows

Array = np.ndarray


@contextlib.contextmanager
def single_threaded_blas():
    """BLAS limited to one thread inside the block (threadpoolctl), restored after."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class ParallelNetwork:
    """`Network`'s training interface (forward, backward, predict, weights,
    output_activation) running `threads` replicas, one per block of rows. One block
    (a batch of one sample) runs on the calling thread alone."""

    def __init__(self, analysis: Analysis, weights: dict[str, Array], threads: int):
        self.threads = threads
        self.replicas = [Network(analysis, weights) for _ in range(threads)]
        main = self.replicas[0]
        self.analysis, self.model, self.weights = analysis, main.model, weights
        self.outputs, self.inputs = main.outputs, main.inputs
        self.output_activation = main.output_activation
        self.input_grad = None
        self.group = Group(threads)
        self.pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="cnnc-train")
        self._shared = [[l for l in r.layers if getattr(l, "batch_coupled", False)] for r in self.replicas]
        self._blocks: list[tuple[int, int]] = []

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def _run(self, work: Callable[[int], Any], blocks: list[tuple[int, int]]) -> list[Any]:
        """work(i) for every block, block 0 on this thread; the first error is raised
        after every thread stopped (a failing thread breaks the barrier the others
        may wait at)."""
        n = sum(b - a for a, b in blocks)
        self.group.start_step(len(blocks))
        for i, (a, b) in enumerate(blocks):
            shard = Shard(i, a, b, n, self.group) if len(blocks) > 1 else None
            for layer in self._shared[i]:
                layer.shard = shard

        def guarded(i: int):
            try:
                return work(i)
            except BaseException:
                self.group.abort()
                raise

        futures = [self.pool.submit(contextvars.copy_context().run, guarded, i)
                   for i in range(1, len(blocks))]
        results, error = [None] * len(blocks), None
        try:
            results[0] = guarded(0)
        except BaseException as e:  # noqa: BLE001 (re-raised below, once the others stopped)
            error = e
        for i, f in enumerate(futures, start=1):
            try:
                results[i] = f.result()
            except BaseException as e:  # noqa: BLE001
                if error is None or isinstance(error, threading.BrokenBarrierError):
                    error = e
        if error is not None:
            raise error
        return results

    def forward(self, x, training: bool = False, rng: np.random.Generator | None = None):
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        n = len(xs[0])
        blocks = split_rows(n, self.threads)
        if training and rng is None:
            rng = np.random.default_rng()
        self._blocks = blocks

        def part(i: int):
            a, b = blocks[i]
            xi = [v[a:b] for v in xs]
            return self.replicas[i].forward(xi if len(xs) > 1 else xi[0], training, rng)

        outs = self._run(part, blocks)
        if len(outs) == 1:
            return outs[0]
        if len(self.outputs) == 1:
            return np.concatenate(outs, axis=0)
        return [np.concatenate([o[k] for o in outs], axis=0) for k in range(len(self.outputs))]

    def backward(self, dy, skip_output_activation: bool = False, *,
                 input_grad: bool = False) -> dict[str, Array]:
        """Every block's backward on its rows of dy; the weight gradients summed in
        block order."""
        blocks = self._blocks
        if not blocks:
            raise RuntimeError("ParallelNetwork.backward needs a forward(training=True) first")
        dys = list(dy) if len(self.outputs) > 1 else [dy]

        def part(i: int):
            a, b = blocks[i]
            di = [d[a:b] for d in dys] if len(blocks) > 1 else dys
            return self.replicas[i].backward(di if len(self.outputs) > 1 else di[0],
                                             skip_output_activation, input_grad=input_grad)

        parts = self._run(part, blocks)
        grads = dict(parts[0])
        for g in parts[1:]:
            for k, v in g.items():
                grads[k] = grads[k] + v
        if input_grad:
            found = [r.input_grad for r in self.replicas[:len(blocks)]]
            if isinstance(found[0], list):
                self.input_grad = [np.concatenate([f[k] for f in found]) for k in range(len(found[0]))]
            else:
                self.input_grad = np.concatenate(found) if len(found) > 1 else found[0]
        return grads

    def predict(self, x, batch_size: int = 32):
        return Network.predict(self, x, batch_size)


def split_network(analysis: Analysis, weights: dict[str, Array], threads: int):
    """The network a training run with `threads` blocks per batch uses: one Network for
    1, else the threads' replicas. (Forked worker processes, one per block, were
    measured too: the pipes' round trips at every BatchNormalization cost more than the
    interpreter lock they avoid -- 0.88x on resnet_fmnist, 1.07x on mnist.cnn.)"""
    if threads <= 1:
        return Network(analysis, weights)
    return ParallelNetwork(analysis, weights, threads)
