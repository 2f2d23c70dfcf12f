"""Shared by the training benchmarks: one training step of cnnc (the NumPy reference,
the batch split over `threads` threads as `cnnc train` runs it) and of PyTorch eager
(the twin of the same model, cnnc/runtime/torch_twin.py: same initial weights, the
file's optimizer with Keras's defaults), on the same data; the machine's float32
matrix-product rate; the arithmetic of a training step.

The importer sets OPENBLAS_NUM_THREADS=1 (and the like) before NumPy loads: each of
cnnc's training threads runs BLAS on its own core, as `cnnc train` does.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

import cnnc
from cnnc.support import data as D

Step = Callable[[], None]


def images(model, n: int, seed: int = 0):
    """(x, y) for a model: Fashion-MNIST for 28x28x1 inputs, else random uint8 images
    and labels (throughput does not depend on the pixels)."""
    shape = tuple(model.ir.input_shape)
    classes = int(model.analysis.output_shape[-1])
    if shape == (28, 28, 1):
        ds = D.load("fashion-mnist")
        return ds.x_train[:n], ds.y_train[:n]
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, *shape)).astype(np.uint8), rng.integers(0, classes, n))


def cnnc_label() -> str:
    """What cnnc's training step runs on: the compiled kernels (numba) or the NumPy reference."""
    from cnnc.backends.numpy import jit
    return "cnnc, compiled kernels (numba)" if jit.active() else "cnnc, NumPy reference"


def cnnc_step(path: str, x, y, threads: int, batch: int = 64) -> Step:
    """One cnnc training step (forward, loss, backward, the file's optimizer) on the next
    batch of x, y; `threads` threads share the batch (parallel.py)."""
    from cnnc.backends.numpy import losses as L
    from cnnc.backends.numpy import optimizers as O
    from cnnc.backends.numpy.parallel import split_network
    model = cnnc.load(path)
    model.init_weights(0)      # the same weights every run, and as the PyTorch twin's
    weights = model.weights
    net = split_network(model.analysis, weights, threads)
    loss = L.from_spec(model.ir.compile.loss, net.output_activation)
    opt = O.from_spec(model.ir.compile.optimizer)
    rng = np.random.default_rng(0)
    xs = D.prepare_x(x, model.ir.input_shape)
    ys = D.prepare_y(y, model.analysis.output_shape, loss.name)
    state = {"i": 0}

    def step():
        i = state["i"] = (state["i"] + batch) % (len(xs) - batch)
        with np.errstate(all="ignore"):
            p = net.forward(xs[i:i + batch], training=True, rng=rng)
            _, dy = loss.value_and_gradient(ys[i:i + batch], p)
            opt.apply(net.backward(dy, skip_output_activation=loss.fused), net.weights)
    step.close = getattr(net, "close", lambda: None)
    return step


def _torch_optimizer(spec, params):
    import torch
    p = dict(spec.params)
    lr = float(p.get("learning_rate", 0.001))
    if spec.name == "Adam":
        return torch.optim.Adam(params, lr=lr, betas=(p.get("beta_1", 0.9), p.get("beta_2", 0.999)),
                                eps=p.get("epsilon", 1e-7))
    if spec.name == "RMSprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=p.get("rho", 0.9), eps=p.get("epsilon", 1e-7),
                                   momentum=p.get("momentum", 0.0))
    return torch.optim.SGD(params, lr=lr, momentum=p.get("momentum", 0.0), nesterov=p.get("nesterov", False))


def torch_step(path: str, x, y, channels_last: bool, batch: int = 64) -> Step:
    """PyTorch eager on the twin of the same model: logits into CrossEntropyLoss (the
    fused softmax + cross-entropy cnnc computes), the file's optimizer; channels_last is
    PyTorch's other CPU layout for convolutions."""
    import torch

    from cnnc.runtime.torch_twin import to_channels_first, torch_module
    model = cnnc.load(path)
    model.init_weights(0)
    net = torch_module(model.analysis, model.weights, output_activation=False).train()
    xs = torch.from_numpy(to_channels_first(D.prepare_x(x, model.ir.input_shape)).copy())
    ys = torch.from_numpy(np.asarray(y).astype(np.int64).reshape(-1))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        xs = xs.contiguous(memory_format=torch.channels_last)
    opt = _torch_optimizer(model.ir.compile.optimizer, net.parameters())
    lossf = torch.nn.CrossEntropyLoss()
    state = {"i": 0}

    def step():
        i = state["i"] = (state["i"] + batch) % (len(xs) - batch)
        opt.zero_grad(set_to_none=True)
        lossf(net(xs[i:i + batch]), ys[i:i + batch]).backward()
        opt.step()
    step.close = lambda: None
    return step


def twin_max_diff(path: str, x) -> float:
    """Largest difference between the twin's and cnnc's inference outputs (same weights)."""
    import torch

    from cnnc.backends.numpy.network import Network
    from cnnc.runtime.torch_twin import to_channels_first, torch_module
    model = cnnc.load(path)
    model.init_weights(0)
    xb = D.prepare_x(x[:64], model.ir.input_shape)
    want = Network(model.analysis, model.weights).forward(xb)
    with torch.inference_mode():
        got = torch_module(model.analysis, model.weights)(torch.from_numpy(to_channels_first(xb))).numpy()
    return float(np.abs(got - want).max())


def matmul_rate(threads: int, seconds: float = 0.4, n: int = 2048) -> float:
    """NumPy's float32 n x n matrix product with `threads` BLAS threads, in FLOP/s (best
    of the products that fit in `seconds`): the arithmetic ceiling of these cores."""
    from threadpoolctl import threadpool_limits
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    best = float("inf")
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ a
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def train_flops(path: str) -> float:
    """Floating-point operations of one training sample: the forward's multiply-adds (2
    FLOPs each), the weight gradients' as many again, and the input gradients' as many
    again except for the layers that read the model's input (nothing needs theirs)."""
    model = cnnc.load(path)
    inputs = {n.name for n in model.ir.inputs}
    first = sum(i.macs for i in model.analysis.infos if set(i.layer.inputs) & inputs)
    return 2.0 * (3 * model.total_macs - first)


def rounds(steps: dict[str, Step], batch: int, rounds: int, seconds: float,
           between: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """samples/s of each step, `rounds` interleaved rounds of about `seconds` each (the
    step count fixed from a warm-up), so that every implementation sees the same load."""
    counts = {}
    for name, step in steps.items():
        if getattr(step, "measures_itself", False):   # a round in another process: it times itself
            counts[name] = 0
            continue
        for _ in range(3):
            step()
        t = time.perf_counter()
        k = 0
        while time.perf_counter() - t < 0.5:
            step()
            k += 1
        counts[name] = max(3, int(k * seconds / (time.perf_counter() - t)))
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        if between is not None:
            between()
        for name, step in steps.items():
            if not counts[name]:
                rates[name].append(step())
                continue
            t = time.perf_counter()
            for _ in range(counts[name]):
                step()
            rates[name].append(counts[name] * batch / (time.perf_counter() - t))
    return rates
