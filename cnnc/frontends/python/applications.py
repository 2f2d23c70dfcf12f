"""Keras Applications in scripts: `keras.applications.MobileNetV2(input_shape=(160, 160, 3),
include_top=False, weights="imagenet")`, the base of transfer learning.

cnnc carries eleven applications as .cnn files (examples/zoo/, checked layer by layer
against Keras); their functional form is also Python, so the evaluator runs one like
any helper of the script, with the arguments applied the way Keras applies them: the
input shape, the classifier cut off (`include_top=False`) up to the layers Keras keeps,
`pooling=` added under Keras's name for it, `classes=` and `classifier_activation=`.
The result is an ordinary functional model; called on a tensor it is one row, as Keras
shows a nested model. cnnc has no pretrained weights: `weights="imagenet"` is noted.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from cnnc.frontends.python.app_sizes import fit_paddings, size_problem
from cnnc.frontends.python.values import ArgVal, Unknown, shown


@dataclass(frozen=True)
class App:
    file: str                    # examples/zoo/<file>.cnn
    size: int                    # default input size
    min_size: int                # Keras's smallest input (obtain_input_shape)
    named_pool: bool             # pooling= layers named avg_pool/max_pool (else Keras's auto names)
    sized_name: str | None = None   # the model's name, from the input size (MobileNet's)
    preprocess: str = "tf"       # preprocess_input: "tf" x/127.5-1, "none", else refused


APPS = {
    "VGG16": App("vgg16", 224, 32, False, preprocess="caffe"),
    "ResNet50": App("resnet50", 224, 32, True, preprocess="caffe"),
    "ResNet50V2": App("resnet50_v2", 224, 32, True),
    "MobileNet": App("mobilenet", 224, 32, False, "mobilenet_1.00_{rows}"),
    "MobileNetV2": App("mobilenet_v2", 224, 32, False, "mobilenetv2_1.00_{rows}"),
    "MobileNetV3Small": App("mobilenet_v3_small", 224, 32, True, preprocess="none"),
    "DenseNet121": App("densenet121", 224, 32, True, preprocess="torch"),
    "Xception": App("xception", 299, 71, False),
    "InceptionV3": App("inception_v3", 299, 75, False),
    "EfficientNetB0": App("efficientnet_b0", 224, 32, True, preprocess="none"),
    "NASNetMobile": App("nasnet_mobile", 224, 32, False),
}
# keras.applications.<module>.preprocess_input -> the application it belongs to
MODULES = {"vgg16": "VGG16", "resnet50": "ResNet50", "resnet": "ResNet50", "resnet_v2": "ResNet50V2",
           "mobilenet": "MobileNet", "mobilenet_v2": "MobileNetV2", "mobilenet_v3": "MobileNetV3Small",
           "densenet": "DenseNet121", "xception": "Xception", "inception_v3": "InceptionV3",
           "efficientnet": "EfficientNetB0", "nasnet": "NASNetMobile"}
_SIZED_ROWS = {"MobileNet": (128, 160, 192, 224), "MobileNetV2": (96, 128, 160, 192, 224)}
_INPUT = re.compile(r"^inputs = Input\(shape=\([^)]*\), name='input_layer'\)$", re.M)
_TOP_END = re.compile(r"^x = (GlobalAveragePooling2D|Flatten)\(", re.M)
_INPUT_LINE = re.compile(r"^inputs = Input\(shape=\([^)]*\)\)$", re.M)


@functools.lru_cache(maxsize=8)
def _parsed(code: str) -> ast.Module:
    """An application's code, parsed once per process, numbered from ZOO_LINE (the
    evaluator shows its positions as the call's)."""
    from cnnc.frontends.python.source import ZOO_LINE
    tree = ast.parse(code)
    ast.increment_lineno(tree, ZOO_LINE)
    return tree


def zoo_dir() -> Path:
    """The .cnn applications: inside the package when installed, else the repository's."""
    package = Path(__file__).resolve().parents[2]            # cnnc/
    packaged = package / "zoo"
    return packaged if packaged.is_dir() else package.parent / "examples" / "zoo"


# Applications whose Keras code chooses layers by comparing tensor sizes as it builds them
# (NASNet's _adjust_block): one transcription cannot stand for every size.
_SIZE_SHAPED = ("NASNetMobile",)


class AppError(Exception):
    def __init__(self, message: str, *notes: str):
        super().__init__(message)
        self.message, self.notes = message, notes


def _arg(args: list[ArgVal], key: str, default, position: int | None = None):
    pos = [a for a in args if a.keyword is None]
    if position is not None and position < len(pos):
        return pos[position].value
    return next((a.value for a in args if a.keyword == key), default)


# Keras's positional order: include_top, weights, input_tensor, input_shape, pooling, classes
_ORDER = {"include_top": 0, "weights": 1, "input_tensor": 2, "input_shape": 3, "pooling": 4,
          "classes": 5}


_UNSET = object()


def source_of(cls: str, args: list[ArgVal], name_rows=_UNSET) -> tuple[str, str]:
    """The application's code (Python) for these arguments, and its model name
    (`name_rows`: the rows Keras's input shape has when it is not the built one, None
    for an application built without input_shape)."""
    app = APPS[cls]
    get = lambda key, default: _arg(args, key, default, _ORDER.get(key))  # noqa: E731
    include_top = get("include_top", True)
    pooling = get("pooling", None)
    classes = get("classes", 1000)
    act = get("classifier_activation", "softmax")
    shape = get("input_shape", None)
    for key, value in (("include_top", include_top), ("pooling", pooling), ("classes", classes),
                       ("classifier_activation", act), ("input_shape", shape)):
        if isinstance(value, Unknown):
            raise AppError(f"{cls}'s {key}= is not known without running the script: {value.why}")
    if get("input_tensor", None) is not None:
        raise AppError(f"{cls}(input_tensor=...) takes a tensor of the model being built",
                       "give input_shape= and call the model on the tensor: base(x)")
    for key in ("alpha", "depth_multiplier", "minimalistic"):
        if _arg(args, key, None) not in (None, 1.0, 1, False):
            raise AppError(f"cnnc carries {cls} with its default {key} only")
    if not (isinstance(classes, int) and not isinstance(classes, bool)) or not (
            act is None or isinstance(act, str)):
        raise AppError(f"{cls}: classes must be a number and classifier_activation a name, got "
                       f"{shown(classes)} and {shown(act)}")
    if include_top not in (True, False) or pooling not in (None, "avg", "max"):
        raise AppError(f"{cls}: include_top must be True or False and pooling None, 'avg' or 'max'")
    if shape is None:
        if not include_top:
            raise AppError(f"{cls}(include_top=False) without input_shape= takes images of any size; "
                           "cnnc needs the size", f"add input_shape=({app.size}, {app.size}, 3)")
        shape = (app.size, app.size, 3)
    if isinstance(shape, (tuple, list)):
        bad = next((d for d in shape if isinstance(d, Unknown)), None)
        if bad is not None:
            raise AppError(f"{cls}'s input_shape= is not known without running the script: {bad.why}")
    # without the top, Keras takes images of any size: None leaves height or width open
    if not (isinstance(shape, (tuple, list)) and len(shape) == 3 and all(
            (isinstance(d, int) and not isinstance(d, bool)) or (d is None and i < 2 and not include_top)
            for i, d in enumerate(shape))):
        raise AppError(f"{cls}: input_shape must be (height, width, channels), got {shown(shape)}")
    if cls in _SIZE_SHAPED and None in shape:
        raise AppError(f"{cls}'s layers depend on its input size (Keras compares the sizes of its "
                       "cells' inputs while it builds them), so cnnc cannot check it on an open size",
                       f"give the size: input_shape=({app.size}, {app.size}, 3)")
    if shape[2] != 3 or any(d is not None and d < app.min_size for d in shape[:2]):
        raise AppError(f"{cls} takes 3-channel images of at least {app.min_size}x{app.min_size}, "
                       f"got input_shape={tuple(shape)!r} (Keras refuses it too)")
    problem = None if None in shape else size_problem(cls, tuple(shape))
    if problem:
        raise AppError(problem, f"give input_shape=({app.size}, {app.size}, 3)")
    text = (zoo_dir() / f"{app.file}.cnn").read_text(encoding="utf-8")
    text = _INPUT.sub(f"inputs = Input(shape={tuple(shape)!r})", text, count=1)
    text = fit_paddings(cls, text, tuple(shape))
    top = text.index("\n# top\n")
    head, tail = text[:top], text[top:]
    model_line = re.search(r"^model = Model\(inputs, x, name='([^']*)'\)$", tail, re.M)
    name = model_line.group(1)
    if app.sized_name:
        rows = shape[0] if name_rows is _UNSET else name_rows
        cols = shape[1] if name_rows is _UNSET else name_rows
        if get("weights", "imagenet") == "imagenet" and (rows != cols or rows not in _SIZED_ROWS[cls]):
            rows = 224                   # Keras names it after the weights it would load
        name = app.sized_name.format(rows=rows)
    if include_top:
        if pooling is not None:
            pass                     # Keras ignores pooling= with the classifier on
        body = tail[:model_line.start()]
        body = body.replace("Dense(1000, activation='softmax', name='predictions')",
                            f"Dense({classes!r}, activation={act!r}, name='predictions')")
        body = body.replace("Conv2D(1000, 1, padding='same', name='conv_preds')",
                            f"Conv2D({classes!r}, 1, padding='same', name='conv_preds')")
        body = body.replace("Conv2D(1000, 1, padding='same', name='logits')",
                            f"Conv2D({classes!r}, 1, padding='same', name='logits')")
        body = body.replace("Reshape((1000,)", f"Reshape(({classes!r},)")
        body = body.replace("Activation('softmax', name='predictions')",
                            f"Activation({act!r}, name='predictions')")
    else:
        end = _TOP_END.search(tail)
        body = tail[:end.start()] if end else tail[:model_line.start()]
        if pooling is not None:
            layer = "GlobalAveragePooling2D" if pooling == "avg" else "GlobalMaxPooling2D"
            named = f"name='{pooling}_pool'" if app.named_pool else ""
            body += f"\nx = {layer}({named})(x)\n"
    code = head + body + f"\nmodel = Model(inputs, x, name={name!r})\n"
    return code, name




class ApplicationsMixin:
    """Evaluator methods for keras.applications (mixed into Evaluator)."""

    def new_application(self, cls: str, args: list[ArgVal], node, name_rows=_UNSET):
        from cnnc.frontends.python.values import ModelVal, TensorVal
        span = self.span(node)
        tensor = _arg(args, "input_tensor", None, _ORDER["input_tensor"])
        if isinstance(tensor, TensorVal):
            return self.application_on(cls, args, tensor, node)
        if not _arg(args, "include_top", True, 0) and _arg(args, "input_shape", None, 3) is None:
            # Any image size: Keras builds it now on (None, None, 3) and runs it on the tensor
            # it is called on. cnnc builds it at the default size now (the names it takes from
            # the session come in Keras's order) and again, with the same names, on that tensor.
            names = dict(self.name_counts)
            size = APPS[cls].size
            probe = self.new_application(cls, args + [ArgVal("input_shape", (size, size, 3), span)], node,
                                         name_rows=None)
            self.models.remove(probe)
            if probe.problems:
                self.models.append(probe)
                return probe
            m = ModelVal("functional", span, name=probe.name, pending=(cls, args, node, names))
            self.models.append(m)
            return m
        try:
            code, name = source_of(cls, args, name_rows)
        except AppError as e:
            m = ModelVal("functional", span, name=cls)
            m.problems.append((e.message, span, e.notes))
            self.models.append(m)
            return m
        return self.run_application(cls, args, code, name, node, {})

    def application_on(self, cls: str, args: list[ArgVal], tensor, node):
        """`MobileNetV2(input_tensor=x)`: Keras builds the application's layers on x; the
        model's inputs are the inputs x comes from."""
        from cnnc.frontends.python.values import ModelVal, TensorVal
        span = self.span(node)
        shape = self.tensor_shape(tensor, node)
        rest = [a for a in args if a.keyword != "input_tensor" and not (
            a.keyword is None and args.index(a) == _ORDER["input_tensor"])]
        name_rows = _UNSET
        if isinstance(shape, tuple) and _arg(args, "input_shape", None, 3) is None:
            rest.append(ArgVal("input_shape", tuple(shape[1:]), span))
            rows = shape[1] if shape[1] == shape[2] and shape[1] in _SIZED_ROWS.get(cls, ()) else 224
            name_rows = rows if _arg(args, "include_top", True, 0) else None
        try:
            if not isinstance(shape, tuple):
                raise AppError(f"{cls}(input_tensor=...): {shape.why}")
            code, name = source_of(cls, rest, name_rows)
        except AppError as e:
            m = ModelVal("functional", span, name=cls)
            m.problems.append((e.message, span, e.notes))
            self.models.append(m)
            return m
        code = _INPUT_LINE.sub("inputs = __input_tensor__", code, count=1)
        code = code.replace("\nmodel = Model(inputs, x, name=", "\nmodel = Model(__source_inputs__, x, name=")
        sources = [TensorVal(k) for k in self.source_inputs(tensor.node)]
        return self.run_application(cls, rest, code, name, node, {
            "__input_tensor__": tensor, "__source_inputs__": sources[0] if len(sources) == 1 else sources})

    def run_application(self, cls: str, args: list[ArgVal], code: str, name: str, node, given: dict):
        from cnnc.frontends.python.scope import Scope
        from cnnc.frontends.python.values import ModelVal
        span = self.span(node)
        weights = _arg(args, "weights", "imagenet", _ORDER["weights"])
        if weights is not None:
            self.rep.warning(f"cnnc has no pretrained weights for {cls} (weights={shown(weights)}): shapes "
                             "and parameter counts are exact, but compile, train and export start "
                             "from random weights", span, "pass weights=None to say so, or load "
                             "trained weights into the compiled model with --weights")
        tree = _parsed(code)
        scope = Scope()
        scope.stars += [("keras", "layers"), ("keras", "initializers"), ("keras",)]
        scope.vars.update(given)
        functional = self.name_counts.get("functional", 0)
        self.app_spans.append(span)     # every diagnostic inside points at the call
        try:
            self.exec_block(tree.body, scope)
        finally:
            self.app_spans.pop()
        self.name_counts["functional"] = functional   # an application takes no "functional" name
        m = scope.vars.get("model")
        if not isinstance(m, ModelVal):
            return Unknown(f"cnnc could not build {cls}", span)
        m.var, m.var_top, m.name, m.span = None, False, name, span
        m.application = cls
        return m

    def build_pending(self, m, shape: tuple) -> bool:
        """An application without input_shape=, called on a tensor of `shape`: built now."""
        cls, args, node, names = m.pending
        m.pending = None
        args = [a for a in args if a.keyword != "input_shape"] + [ArgVal("input_shape", shape, m.span)]
        now, self.name_counts = self.name_counts, dict(names)
        try:
            built = self.new_application(cls, args, node, name_rows=None)
        finally:
            self.name_counts = now
        self.models.remove(built)
        if m.frozen:
            self.set_trainable(built, False)
        if built.problems:
            m.problems += built.problems
            return False
        m.kind, m.inputs, m.outputs, m.name = built.kind, built.inputs, built.outputs, built.name
        m.keras_name, m.application = built.keras_name, cls
        return True

    def preprocess(self, module: str, args: list[ArgVal], node):
        """keras.applications.<module>.preprocess_input on a tensor (or data)."""
        from cnnc.frontends.python.values import ArrayVal, TensorVal
        span = self.span(node)
        x = _arg(args, "x", None, 0)
        app = APPS.get(MODULES.get(module, ""), None)
        if isinstance(x, ArrayVal) or isinstance(x, Unknown):
            return x
        if not isinstance(x, TensorVal) or app is None:
            return Unknown(f"`{self.snippet(node)}` is not followed by cnnc", span)
        if app.preprocess == "none":
            return x
        if app.preprocess != "tf":
            return Unknown(f"{module}.preprocess_input subtracts per-channel means, which cnnc "
                           "cannot write as tensor arithmetic; use a Normalization layer", span)
        scaled = self.tensor_op("div", [(x, node.args[0] if node.args else node), (127.5, node)], node)
        return self.tensor_op("sub", [(scaled, node), (1.0, node)], node)
