"""The resource guard: refuse, before allocating, work that cannot fit in memory.

`Dense(1000000000000)` or a 4096x4096x3 input with a batch of 32 would otherwise end
in a MemoryError (or the kernel's OOM killer) minutes into the work. The estimate is
made from the shapes cnnc already inferred, never from arrays:

- weights: every parameter, float32, times the copies the work keeps (gradients and
  optimizer slots when training; the ONNX proto and its serialization when compiling);
- activations per batch: every layer's output (kept for the backward pass when
  training, the largest few at a time for inference), plus the convolutions' patch
  matrices (all of them when training: backward needs them), times the batch size;

against what is available: /proc/meminfo's MemAvailable, the address-space limit
(RLIMIT_AS, `ulimit -v`) less what the process already maps, and `CNNC_MEMORY_LIMIT`
(bytes, or with K/M/G/T) when set. The estimate is deliberately rough (within a small
factor); it exists to turn the impossible into a clear message (exit 2), not to
squeeze the last gigabyte.
"""

from __future__ import annotations

import os
import re
import resource as _resource
from dataclasses import dataclass

from cnnc.support.counts import HUGE, sci
from cnnc.support.diagnostics import UsageError

BYTES = 4  # float32

# copies of the weights each kind of work holds at its peak; training: the weights, their
# gradients, two optimizer slots, a copy of those three kept to restore after a NaN
# (train.TrainingStopped), and a temporary
_WEIGHT_COPIES = {"train": 8, "compile": 4, "infer": 2}


class ResourceError(UsageError):
    """The work would need more memory than is available (exit status 2)."""


def human(n: float) -> str:
    if n >= HUGE:                      # no float holds some of these: exact digits instead
        return f"{sci(int(n))} B"
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def _parse_size(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        return None
    scale = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


def _meminfo(key: str) -> int | None:
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f.read(1 << 16).decode("ascii", "replace").splitlines():
                if line.startswith(key + ":"):
                    parts = line.split()
                    return int(parts[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _mapped() -> int:
    """The address space this process maps already (VmSize)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f.read(1 << 16).decode("ascii", "replace").splitlines():
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def available() -> tuple[int | None, str]:
    """(bytes this process may still allocate, where the number comes from), or
    (None, "") when nothing says."""
    found: list[tuple[int, str]] = []
    env = os.environ.get("CNNC_MEMORY_LIMIT")
    if env:
        n = _parse_size(env)
        if n is None:
            raise UsageError(f"CNNC_MEMORY_LIMIT={env!r} is not a size",
                             ["give bytes, or a number with K, M, G or T, e.g. 8G"])
        found.append((n, "CNNC_MEMORY_LIMIT"))
    mem = _meminfo("MemAvailable")
    if mem is not None:
        found.append((mem, "available memory (MemAvailable)"))
    try:
        soft, _ = _resource.getrlimit(_resource.RLIMIT_AS)
    except (OSError, ValueError):
        soft = _resource.RLIM_INFINITY
    if soft != _resource.RLIM_INFINITY and soft > 0:
        found.append((max(0, soft - _mapped()), "the address-space limit (ulimit -v) less what is mapped"))
    if not found:
        return None, ""
    return min(found)


@dataclass(frozen=True)
class Estimate:
    weights: int            # bytes of one copy of the weights
    per_sample: int         # bytes of activations per sample, as the work holds them
    batch: int
    copies: int

    @property
    def total(self) -> int:
        return self.weights * self.copies + self.per_sample * self.batch


def _numel(shape) -> int:
    n = 1
    for d in shape or ():
        n *= 1 if d is None else int(d)
    return n


def estimate(analysis, batch: int, work: str = "infer") -> Estimate:
    """Bytes for `work` ("train", "infer", "compile") of the analysed model."""
    weights = analysis.total_params * BYTES
    outs, patches = [], []
    for info in analysis.infos:
        outs.append(_numel(info.output_shape) * BYTES)
        kernel = next((w for w in info.weights if w.name in ("kernel", "depthwise_kernel")), None)
        if kernel is not None and len(kernel.shape) >= 3:  # a convolution's patch matrix
            spatial = _numel(info.output_shape[:-1]) if info.output_shape else 1
            groups = info.layer.args.get("groups", 1) or 1      # a grouped conv's cover all channels
            patches.append(spatial * _numel(kernel.shape[:-1]) * groups * BYTES)
        else:
            patches.append(0)
    inputs = sum(_numel(n.shape) * BYTES for n in analysis.model.inputs)
    if work == "train":
        # every output kept for backward and its gradient; every conv's patch matrix, kept
        # from forward to backward; and the temporaries of the largest one
        per_sample = inputs + 2 * sum(outs) + sum(patches) + 2 * max(patches, default=0)
    else:
        largest = sorted(outs, reverse=True)[:3]
        per_sample = inputs + sum(largest) + max(patches, default=0)
    return Estimate(weights, per_sample, max(1, batch), _WEIGHT_COPIES.get(work, 2))


def check(analysis, batch: int, what: str, work: str = "infer", name: str = "") -> Estimate:
    """Raise ResourceError (exit 2) when `work` on a batch of `batch` would need more
    memory than is available; return the estimate."""
    est = estimate(analysis, batch, work)
    limit, source = available()
    if limit is None or est.total <= limit:
        return est
    model = f"model '{name}'" if name else "the model"
    parts = [f"weights {human(est.weights)} ({analysis.total_params:,} parameters) x {est.copies}"]
    if est.per_sample:
        parts.append(f"activations {human(est.per_sample)} per sample x batch {est.batch:,}")
    notes = [f"{source}: {human(limit)} ({limit:,} bytes)"]
    if est.per_sample * est.batch > limit // 2 and est.batch > 1:
        fit = max(1, (limit - est.weights * est.copies) // max(1, est.per_sample))
        if fit >= 1 and est.weights * est.copies < limit:
            notes.append(f"a batch size of at most {fit:,} would fit (--batch-size)")
    else:
        notes.append("use fewer or smaller layers (units, filters) or a smaller input")
    raise ResourceError(f"{what}: {model} needs about {human(est.total)} ({est.total:,} bytes) of "
                        f"memory, more than the {human(limit)} available: {'; '.join(parts)}", notes)


def check_model(model, batch: int, what: str, training: bool = False, work: str | None = None) -> Estimate:
    """`check` for a cnnc Model."""
    work = work or ("train" if training else "infer")
    return check(model.analysis, batch, what, work, getattr(model, "name", ""))


def check_array(nbytes: int, what: str) -> None:
    """Refuse one allocation of `nbytes` (e.g. a data set made float32) that cannot fit."""
    limit, source = available()
    if limit is not None and nbytes > limit:
        raise ResourceError(f"{what} needs {human(nbytes)} ({nbytes:,} bytes) of memory, more than "
                            f"the {human(limit)} available",
                            [f"{source}: {human(limit)} ({limit:,} bytes)", "use --limit N for fewer samples"])


# --- threads ------------------------------------------------------------------------------------
#
# onnxruntime starts every intra-op thread it is asked for, and OpenBLAS reads its thread count
# from the environment when NumPy loads: `--threads 100000` started threads until the process
# died. More threads than cores never makes anything faster, so a count is bounded by the cores
# this process may use (its affinity mask), with a note when it is lowered.

def cpu_cores() -> int:
    """Cores this process may use (the affinity mask, not the whole machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_count(n: int | None) -> int:
    """`n` threads (None: one per core), at most one per core this process may use."""
    cores = cpu_cores()
    if n is None:
        return cores
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"the number of threads must be a whole number >= 1, got {n!r}")
    return min(n, cores)


def check_threads(n: int | None, option: str = "--threads") -> tuple[int | None, str | None]:
    """A thread count given by the user: (the count to use, a note when it was lowered to
    the cores), or UsageError (exit 2) when it is not at least 1."""
    if n is None:
        return None, None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"{option} must be at least 1, got {n!r}")
    used = thread_count(n)
    if used < n:
        return used, (f"{option} {n:,}: this process may use {used} core{'s' if used != 1 else ''}, "
                      f"so {used} thread{'s' if used != 1 else ''} are used (more never run faster)")
    return n, None

