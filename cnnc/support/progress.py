"""Keras-style training progress: `Epoch 1/5`, then a bar per epoch

    844/844 [==============================] - 12s 14ms/step - 4,480 samples/s on 2 threads - loss: 0.5100 - ...

drawn with tqdm on a terminal (verbose 1), or one plain line per epoch
(verbose 2, the default when stdout is not a terminal). verbose 0 prints nothing.
"""

from __future__ import annotations

import numbers
import shutil
import sys
import time
from typing import IO, Mapping

from cnnc.support.diagnostics import UsageError, visible

_REFRESH_S = 0.1


def resolve_verbose(verbose, stream: IO) -> int:
    if verbose is None or (isinstance(verbose, str) and verbose == "auto"):
        return 1 if getattr(stream, "isatty", lambda: False)() else 2
    if not isinstance(verbose, numbers.Integral) or int(verbose) not in (0, 1, 2):
        raise UsageError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def format_logs(logs: Mapping[str, float]) -> str:
    parts = []
    for k, v in logs.items():
        v = float(v)
        k = visible(str(k))      # a metric's name: never a raw control character
        parts.append(f" - {k}: {v:.4f}" if abs(v) >= 1e-3 or v == 0 else f" - {k}: {v:.4e}")
    return "".join(parts)


def format_duration(seconds: float) -> str:
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    if s >= 60:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s}s"


def format_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def _bar_class():
    """tqdm with a free-form `keras` field (Keras's ETA/timing and the logs); imported
    only when a bar is drawn."""
    from tqdm import tqdm

    class Bar(tqdm):
        keras = ""

        @property
        def format_dict(self):
            d = super().format_dict
            d["keras"] = self.keras
            return d

    return Bar


class Progress:
    """`threads`: how many threads train (shown after samples/s; None: not shown)."""

    def __init__(self, verbose, epochs: int, steps: int, stream: IO | None = None,
                 threads: int | None = None):
        self.stream = stream or sys.stdout
        self.verbose = resolve_verbose(verbose, self.stream)
        self.epochs = epochs
        self.steps = steps
        self.bar = None
        self.on = "" if threads is None else f" on {threads} thread{'s' if threads != 1 else ''}"

    def epoch_start(self, epoch: int | None, step: int = 0) -> None:
        """epoch is 0-based (None: no `Epoch` line, for evaluate); step > 0 when a
        resumed run starts mid-epoch."""
        self.t0 = time.perf_counter()
        self.first_step = step
        self.samples = 0
        self.last_draw = 0.0
        if self.verbose == 0:
            return
        if epoch is not None:
            print(f"Epoch {epoch + 1}/{self.epochs}", file=self.stream, flush=True)
        if self.verbose == 1:
            width = len(str(self.steps))
            self.bar = _bar_class()(total=self.steps, initial=step, file=self.stream, ascii=".>=",
                            bar_format=f"{{n_fmt:>{width}}}/{{total_fmt}} [{{bar:30}}]{{keras}}",
                            mininterval=_REFRESH_S, leave=False,
                            # tqdm trims to the terminal's width; a terminal that reports
                            # none (0 columns) would get an empty bar.
                            ncols=shutil.get_terminal_size().columns)

    def _rate(self, step: int) -> tuple[float, float, float]:
        elapsed = time.perf_counter() - self.t0
        done = step - self.first_step
        per_step = elapsed / done if done else 0.0
        return elapsed, per_step, (self.samples / elapsed if elapsed > 0 else 0.0)

    def batch_end(self, step: int, samples: int, logs: Mapping[str, float]) -> None:
        """step: batches done in this epoch (1-based)."""
        self.samples += samples
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self.last_draw >= _REFRESH_S or step == self.steps:
            self.last_draw = now
            _, per_step, rate = self._rate(step)
            eta = per_step * (self.steps - step)
            self.bar.keras = f" - ETA: {format_duration(eta)} - {rate:,.0f} samples/s{self.on}{format_logs(logs)}"
        self.bar.update(step - self.bar.n)

    def epoch_end(self, step: int, logs: Mapping[str, float]) -> None:
        if self.verbose == 0:
            return
        elapsed, per_step, rate = self._rate(step)
        timing = f" - {format_duration(elapsed)} {format_step(per_step)} - {rate:,.0f} samples/s{self.on}"
        if self.bar is not None:
            # The live bar is trimmed to the terminal; the final line is printed whole.
            self.bar.close()
            self.bar = None
            width = len(str(self.steps))
            print(f"{step:>{width}}/{self.steps} [{'=' * 30}]{timing}{format_logs(logs)}",
                  file=self.stream, flush=True)
        else:
            print(f"{step}/{self.steps}{timing}{format_logs(logs)}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
