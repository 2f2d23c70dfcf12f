"""Keras Applications at sizes other than their default: Keras pads MobileNetV2,
MobileNetV3 and EfficientNet before each stride-2 stage by the parity of the tensor there
(imagenet_utils.correct_pad), and builds NASNet's cells by comparing their sizes. Truth:
the layers' output shapes and parameter counts Keras 3.15.1 gives at these sizes
(recorded with `keras.applications.X(include_top=False, weights=None, input_shape=...)`;
tests/test_open_dims_keras.py compares every layer at even and odd sizes)."""

from __future__ import annotations

import pytest

from cnnc.frontends.python import check_script


def _layers(app: str, shape: tuple):
    script = (f"import keras\nbase = keras.applications.{app}(include_top=False, weights=None, "
              f"input_shape={shape!r})\n")
    return check_script(f"{app}.py", script)


@pytest.mark.parametrize("app, shape, want, params", [
    ("MobileNetV2", (97, 97, 3), {"block_1_pad": (51, 51, 96), "block_1_depthwise": (25, 25, 96),
                                  "out_relu": (4, 4, 1280)}, None),
    ("EfficientNetB0", (97, 99, 3), {"stem_conv_pad": (99, 101, 3), "block2a_dwconv_pad": (51, 51, 96),
                                     "top_activation": (4, 4, 1280)}, 4049571),
    ("MobileNetV3Small", (97, 99, 3), {"expanded_conv_depthwise_pad": (51, 51, 16),
                                       "expanded_conv_3_depthwise_pad": (17, 17, 96)}, 939120),
])
def test_parity_padded_applications_follow_keras_at_odd_sizes(app, shape, want, params):
    sc = _layers(app, shape)
    (found,) = sc.models
    assert found.checked.ok, [d.message for d in found.checked.diagnostics]
    a = found.checked.analysis
    shapes = {i.name: i.output_shape for i in a.infos}
    for name, size in want.items():
        assert shapes[name] == size, name
    if params is not None:
        assert a.total_params == params


def test_nasnet_away_from_multiples_of_32_is_refused_with_the_reason():
    sc = _layers("NASNetMobile", (225, 225, 3))
    assert not sc.models or not sc.models[0].checked.ok
    assert any("multiples of 32" in d.message for d in sc.diagnostics)
    ok = _layers("NASNetMobile", (256, 256, 3))
    assert ok.models[0].checked.ok
