"""Keras Applications whose layers depend on the input size, at a given size.

The zoo's applications (examples/zoo/*.cnn) are written down at their default size. Keras
builds some of them differently at other sizes:
- MobileNetV2, MobileNetV3 and EfficientNet pad before each stride-2 depthwise
  convolution with `imagenet_utils.correct_pad`, which depends on the parity of the tensor
  there: (k//2 - 1, k//2) on an even axis (as written down), (k//2, k//2) on an odd one;
- NASNet also picks layers by comparing its cells' sizes (`_adjust_block`), which keeps
  the written-down structure only where every stride halves an even size.
"""

from __future__ import annotations

import re

# The zero paddings Keras computes with correct_pad, by application (their layer names).
_CORRECT_PAD = {
    "MobileNetV2": re.compile(r"block_\d+_pad"),
    "MobileNetV3Small": re.compile(r".*depthwise_pad"),
    "MobileNetV3Large": re.compile(r".*depthwise_pad"),
    "EfficientNetB0": re.compile(r"stem_conv_pad|block\w+_dwconv_pad"),
}
_PAD_LINE = re.compile(r"ZeroPadding2D\(padding=\(\((\d+), (\d+)\), \((\d+), (\d+)\)\), name='([^']+)'\)")
EVEN_STRIDES = {"NASNetMobile": 32}   # its structure is Keras's at multiples of this only


def size_problem(cls: str, shape: tuple) -> str | None:
    """Why cnnc cannot build `cls` at this input shape the way Keras does, or None."""
    step = EVEN_STRIDES.get(cls)
    if step and any(d % step for d in shape[:2]):
        return (f"{cls}'s layers depend on its input size (Keras compares the sizes of its cells' "
                f"inputs while it builds them); cnnc checks it at sizes that are multiples of "
                f"{step}, got {tuple(shape)}")
    return None


def fit_paddings(cls: str, text: str, shape: tuple) -> str:
    """The application's text with each correct_pad padding set for the parity of the
    tensor it pads at this input shape (sizes known: the text's own inference)."""
    names = _CORRECT_PAD.get(cls)
    if names is None or any(d is None for d in shape[:2]):
        return text          # on an open size Keras pads as for an even one: as written down
    from cnnc.frontends.cnn import check_text
    pads = [m for m in _PAD_LINE.finditer(text) if names.fullmatch(m.group(5))]
    analysis = None
    for m in pads:           # in model order: a padding only changes the sizes after it
        if analysis is None:
            analysis = check_text(text, f"<{cls}>").analysis
        info = next((i for i in analysis.infos if i.name == m.group(5)), None)
        if info is None or None in info.input_shape[:2]:
            return text      # a size that does not fit: the check of the text itself says so
        h, w = info.input_shape[:2]
        bh, bw = int(m.group(2)), int(m.group(4))
        want = ((bh - 1 + h % 2, bh), (bw - 1 + w % 2, bw))
        if want != ((int(m.group(1)), bh), (int(m.group(3)), bw)):
            text = text.replace(m.group(0), f"ZeroPadding2D(padding={want}, name='{m.group(5)}')", 1)
            analysis = None  # the sizes after it changed
    return text
