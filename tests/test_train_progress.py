"""The Keras-style progress output: `Epoch i/n`, a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import io
import re

from cnnc.support import progress as P


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _run(stream, verbose="auto"):
    p = P.Progress(verbose, epochs=5, steps=844, stream=stream)
    p.epoch_start(0)
    for step in range(1, 845):
        p.batch_end(step, 64, {"loss": 0.51, "accuracy": 0.81})
    p.epoch_end(844, {"loss": 0.51, "accuracy": 0.81, "val_loss": 0.4, "val_accuracy": 0.0001234})
    return stream.getvalue()


FINAL = (r"844/844 \[={30}\] - \d+s \d+(us|ms)/step - [\d,]+ samples/s - loss: 0\.5100 - "
         r"accuracy: 0\.8100 - val_loss: 0\.4000 - val_accuracy: 1\.2340e-04\n$")


def test_a_terminal_gets_a_bar_and_a_keras_final_line(monkeypatch):
    monkeypatch.setattr(P, "_REFRESH_S", 0.0)  # draw every step
    out = _run(_Terminal())
    assert out.startswith("Epoch 1/5\n")
    assert "ETA: " in out and "\r" in out  # the live bar
    assert re.search(FINAL, out), out[-300:]


def test_a_pipe_gets_one_plain_line_per_epoch():
    out = _run(io.StringIO())
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/5" and len(lines) == 2 and "\r" not in out
    assert re.match(r"844/844 - \d+s \d+(us|ms)/step - [\d,]+ samples/s - loss: 0\.5100", lines[1])


def test_verbose_0_is_silent():
    assert _run(io.StringIO(), verbose=0) == ""


def test_durations():
    assert P.format_duration(12.4) == "12s" and P.format_duration(75) == "1:15"
    assert P.format_duration(3725) == "1:02:05"
    assert P.format_step(0.014) == "14ms/step" and P.format_step(2.0) == "2s/step"
