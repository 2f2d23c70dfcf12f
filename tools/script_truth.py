"""Record what Keras itself builds from each excerpt in tests/data/scripts/ (dev only).

Runs each .py / .ipynb (code cells in order, magics left out) under real Keras 3
with its data stubbed: the keras.datasets loaders return zeros of the datasets' known
shapes (a few samples, labels 0..9 in turn; imdb: a few short word-index lists; the real
sample counts for the excerpts in FULL_SIZE), fit builds an unbuilt model from its x (as
Keras does) and trains nothing, and evaluate/save/plot_model do nothing. Keras 2 module
paths that Keras 3 dropped but whose names it kept (`layers.experimental.preprocessing`,
`keras.layers.convolutional`, ...) are shimmed so the model is built as Keras 3 would
build it. Every keras.Model left in the script's namespace, or bound to a local variable
of one of its functions when that function returns (then with "function"), is recorded:
its variable, each layer's class, name, output shape and parameter count, and the
totals. A script that Keras 3 refuses is recorded with the error. The result goes to
<script>.truth.json next to it; tests/test_python_frontend.py compares cnnc with it (no
Keras needed there).

Files and downloads are stubbed too, never the model-building code: `get_file` returns a
path that is not there, `image_dataset_from_directory` a tf.data dataset of zeros with the
element shape the call asks for and the class names of the known image sets (IMAGE_DIRS,
matched on the directory's path), `ImageDataGenerator.flow_from_directory` an iterator of
such batches, Keras applications are built with `weights=None` (same layers and shapes, no
download), and display-only modules missing here (matplotlib, PIL, IPython) are inert.
Subclassed models whose layers were only called eagerly have their call() run once more
on a symbolic Input of the shape they were built with, so that each layer has an output
(or, where call() needs eager tensors, such as tf.nn.relu, once on zeros of that shape,
noting each layer's output shape).

Keras 2 helpers that Keras 3 dropped under their old names but kept under new ones
(`_obtain_input_shape`, `keras.engine.topology.get_source_inputs`, `keras.utils.data_utils`,
`K.int_shape`, `K.image_dim_ordering()`, ...) are mapped to their Keras 3 equivalents
(KERAS2_HELPERS); the ones a script calls are listed in its truth as "keras2_helpers".
With --dir, the scripts of that folder are run with no command-line arguments, with the
folder on sys.path (a script's sibling modules import as they do next to it) and from a
scratch working directory (what a script writes stays out of the repository); a folder's
support modules (no .truth.json wanted) are named in its support_modules.txt. Without
--dir the tool behaves as before for tests/data/scripts (its truths are unchanged).

    TF_CPP_MIN_LOG_LEVEL=3 /tmp/kvenv/bin/python tools/script_truth.py [FILES...]
    TF_CPP_MIN_LOG_LEVEL=3 /tmp/kvenv/bin/python tools/script_truth.py --dir tests/data/scripts2 [FILES...]
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "data" / "scripts"
SAMPLES = 20  # labels cycle through 0..9: two samples of each class
SHAPES = {
    "mnist": ((28, 28), (), "uint8"), "fashion_mnist": ((28, 28), (), "uint8"),
    "cifar10": ((32, 32, 3), (1,), "uint8"), "cifar100": ((32, 32, 3), (1,), "uint8"),
    "boston_housing": ((13,), (), "float64"),
}
# the datasets' real sizes (train, test), for the excerpts that reshape to a literal count
# (`reshape((60000, 28, 28, 1))`): those alone get full-size arrays of zeros
SIZES = {"mnist": (60000, 10000), "fashion_mnist": (60000, 10000), "cifar10": (50000, 10000),
         "cifar100": (50000, 10000), "boston_housing": (404, 102)}
FULL_SIZE = {"dlwp3_ch08_mnist_convnet.ipynb", "dlwp1_ch05_intro_convnets.ipynb",
             "keras_guide_functional_mnist_autoencoder.py", "keras_guide_training_multi_io.py",
             "keras_guide_subclassing_vae.py",
             # tests/data/scripts2 (index samples past 20)
             "dlai_c1w3_fashion_conv.ipynb", "bnsreenu_cifar_gan.py",
             "packt_adl_colorization_ae.py", "bnsreenu_vae_mnist.py"}
# image folders the excerpts download, by a name in their path: their class names
IMAGE_DIRS = {
    "flower_photos": ["daisy", "dandelion", "roses", "sunflowers", "tulips"],
    "cats_and_dogs_filtered": ["cats", "dogs"],
    "cats_vs_dogs": ["cat", "dog"],
    "dogs_vs_cats": ["cat", "dog"],
    "PetImages": ["Cat", "Dog"],
    "dataset/training_set": ["cats", "dogs"],
    "dataset/test_set": ["cats", "dogs"],
    "data/train": ["cats", "dogs"],
    "data/validation": ["cats", "dogs"],
    # tests/data/scripts2
    "rps-test-set": ["paper", "rock", "scissors"],
    "rps": ["paper", "rock", "scissors"],
    "horse-or-human": ["horses", "humans"],
    "data/test": ["cats", "dogs"],  # bnsreenu_emotion_detection.py: a stand-in, its model
                                    # does not depend on the classes
}
KERAS2_LAYER_MODULES = ("convolutional", "core", "pooling", "normalization", "merge",
                        "advanced_activations")
DISPLAY_MODULES = ("matplotlib", "matplotlib.pyplot", "PIL", "PIL.Image", "PIL.ImageOps",
                   "IPython", "IPython.display", "seaborn", "ipywidgets",
                   "matplotlib.image")


def code_of(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return text
    cells = json.loads(text)["cells"]
    out = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        src = cell["source"]
        src = "".join(src) if isinstance(src, list) else src
        lines = [l for l in src.split("\n") if not l.lstrip().startswith(("%", "!"))]
        out.append("\n".join(lines))
    return "\n\n".join(out)


def stub_keras(full_size: bool = False):
    import keras
    import numpy as np

    def loader(name):
        x, y, dtype = SHAPES[name]

        n_train, n_test = SIZES[name] if full_size else (SAMPLES, SAMPLES)

        def labels(n):
            return (np.arange(n) % 10).astype("uint8").reshape((n,) + (1,) * len(y))

        def load_data(*a, **k):
            return ((np.zeros((n_train,) + x, dtype), labels(n_train)),
                    (np.zeros((n_test,) + x, dtype), labels(n_test)))
        return load_data

    import types

    import tensorflow as tf
    nothing = lambda *a, **k: None  # noqa: E731

    def fit(self, x=None, *a, **k):
        """No training; but an unbuilt model is built from x's shape, as Keras's fit does.
        Returns an empty History (`history.history` is an empty dict)."""
        history = keras.callbacks.History()
        history.history = {}
        if self.built or x is None:
            return history
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            spec = spec[0] if isinstance(spec, tuple) else spec
            shape = tuple(spec.shape[1:])
        elif hasattr(x, "shape"):
            shape = tuple(x.shape[1:])
        else:
            return history
        try:
            self.build((None,) + shape)
        except Exception:  # noqa: BLE001 - left unbuilt, recorded without shapes
            pass
        return history

    for method in ("fit", "fit_generator"):
        setattr(keras.Model, method, fit)
    for method in ("save", "save_weights", "load_weights"):
        setattr(keras.Model, method, nothing)
    keras.Model.evaluate = lambda *a, **k: [0.0, 0.0]
    def imdb_load_data(*a, **k):
        x = np.empty(SAMPLES, dtype=object)
        for i in range(SAMPLES):
            x[i] = [1, 14, 22, 16, 43]
        y = np.zeros(SAMPLES, "int64")
        return (x, y), (x.copy(), y.copy())

    for api in (keras, tf.keras):
        for name in SHAPES:
            getattr(api.datasets, name).load_data = loader(name)
        api.datasets.imdb.load_data = imdb_load_data
        api.utils.plot_model = nothing
        # Keras 2 paths whose names Keras 3 keeps one level up (cnnc warns about them)
        api.layers.experimental = types.SimpleNamespace(preprocessing=api.layers)
        # Keras 2 names outside the model that Keras 3 dropped: stubbed so that the
        # model-building part runs (cnnc reports these spellings itself)
        api.utils.np_utils = types.SimpleNamespace(to_categorical=api.utils.to_categorical)
        sys.modules.setdefault("keras.utils.np_utils", api.utils.np_utils)
    # Keras 2 layer modules (`from keras.layers.convolutional import Conv2D`): Keras 3 has
    # the same names in keras.layers (cnnc warns about the old path)
    for old in KERAS2_LAYER_MODULES:
        sys.modules.setdefault("keras.layers." + old, keras.layers)
    keras2_helpers(keras)
    stub_files(keras, tf)
    return keras


KERAS2_USED: set = set()  # the KERAS2_HELPERS a script called (recorded in its truth)


def keras2_helpers(keras) -> None:
    """KERAS2_HELPERS: Keras 2 functions that Keras 3 dropped under their old names but kept
    under new ones, mapped to those (same arguments, same results), so that the model-building
    code of Keras 2 applications-style scripts runs as Keras 3 would run it. Each call is
    noted in KERAS2_USED."""
    import types

    from keras.src.applications.imagenet_utils import obtain_input_shape
    from keras.src.backend import standardize_data_format

    def used(name, fn):
        def helper(*a, **k):
            KERAS2_USED.add(name)
            return fn(*a, **k)
        return helper

    def image_dim_ordering():
        return "tf" if keras.backend.image_data_format() == "channels_last" else "th"

    def convert_all_kernels_in_model(*a, **k):
        return None  # Theano kernel flipping: Keras 3 has no Theano

    def module(name, **attrs):
        m = sys.modules.get(name) or types.ModuleType(name)
        for attr, value in attrs.items():
            setattr(m, attr, value)
        sys.modules[name] = m
        return m

    def keras2_obtain_input_shape(input_shape, default_size, min_size, data_format,
                                  require_flatten=None, weights=None, include_top=None):
        # Keras 2.0 named the flag include_top, Keras 2.1+ require_flatten
        flatten = require_flatten if include_top is None else include_top
        return obtain_input_shape(input_shape, default_size, min_size, data_format, flatten,
                                  weights)

    obtain = used("_obtain_input_shape", keras2_obtain_input_shape)
    get_source_inputs = used("get_source_inputs", keras.utils.get_source_inputs)
    engine = dict(get_source_inputs=get_source_inputs, Input=keras.Input,
                  InputSpec=keras.layers.InputSpec, Layer=keras.layers.Layer)
    module("keras.engine", **engine)
    module("keras.engine.topology", **engine)
    module("keras.utils.data_utils", get_file=keras.utils.get_file)
    module("keras.utils.layer_utils", get_source_inputs=get_source_inputs,
           convert_all_kernels_in_model=used("convert_all_kernels_in_model",
                                             convert_all_kernels_in_model),
           convert_dense_weights_data_format=used("convert_dense_weights_data_format",
                                                  convert_all_kernels_in_model))
    module("keras.utils.vis_utils", plot_model=keras.utils.plot_model)
    module("keras.utils.generic_utils", get_custom_objects=keras.saving.get_custom_objects,
           CustomObjectScope=keras.saving.CustomObjectScope)
    module("keras.utils.conv_utils", normalize_data_format=used(
        "conv_utils.normalize_data_format", standardize_data_format))
    keras.applications.imagenet_utils._obtain_input_shape = obtain
    module("keras_applications")
    module("keras_applications.imagenet_utils", _obtain_input_shape=obtain,
           preprocess_input=keras.applications.imagenet_utils.preprocess_input,
           decode_predictions=keras.applications.imagenet_utils.decode_predictions)
    keras.backend.int_shape = used("K.int_shape", lambda x: tuple(x.shape))
    keras.backend.image_dim_ordering = used("K.image_dim_ordering", image_dim_ordering)


class _Inert:
    """Stands for a display-only module missing here: every use does nothing."""

    def __init__(self, *a, **k):
        pass

    def __getattr__(self, name):
        return _Inert()

    def __call__(self, *a, **k):
        return _Inert()

    def __iter__(self):
        return iter((_Inert(), _Inert()))

    def __getitem__(self, key):
        return _Inert()


def class_names_of(directory) -> list:
    path = str(directory).replace("\\", "/")
    for key, names in IMAGE_DIRS.items():
        if key in path:
            return names
    raise SystemExit(f"script_truth: unknown image directory {path!r}: add it to IMAGE_DIRS")


def stub_files(keras, tf):
    import importlib
    import types

    import numpy as np

    for name in DISPLAY_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__getattr__ = lambda attr: _Inert()  # type: ignore[method-assign]
            sys.modules[name] = module

    def get_file(fname=None, origin=None, *a, **k):
        return "/nonexistent/keras_datasets/" + str(fname or origin.rsplit("/", 1)[-1])

    def image_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                     class_names=None, color_mode="rgb", batch_size=32,
                                     image_size=(256, 256), *a, **k):
        names = class_names or class_names_of(directory)
        channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[color_mode]
        x = np.zeros((SAMPLES,) + tuple(image_size) + (channels,), "float32")
        if label_mode == "categorical":
            y = np.zeros((SAMPLES, len(names)), "float32")
        elif label_mode == "binary":
            y = np.zeros((SAMPLES, 1), "float32")
        else:
            y = np.zeros((SAMPLES,), "int32")
        data = (x,) if label_mode is None or labels is None else (x, y)
        ds = tf.data.Dataset.from_tensor_slices(data if len(data) > 1 else x)
        ds = ds.batch(batch_size or SAMPLES)
        ds.class_names = names
        ds.file_paths = []
        return ds

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb",
                            classes=None, class_mode="categorical", batch_size=32,
                            *a, **k):
        names = classes or class_names_of(directory)
        channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[color_mode]
        x = np.zeros((SAMPLES,) + tuple(target_size) + (channels,), "float32")
        y = (np.zeros((SAMPLES, len(names)), "float32") if class_mode == "categorical"
             else np.zeros((SAMPLES,), "float32"))
        flow = self.flow(x, y, batch_size=batch_size)
        flow.class_indices = {n: i for i, n in enumerate(names)}
        flow.num_classes = len(names)
        flow.samples = SAMPLES
        return flow

    from keras.src.legacy.preprocessing.image import ImageDataGenerator
    ImageDataGenerator.flow_from_directory = flow_from_directory

    def no_download(build):
        def application(*a, **k):
            if k.get("weights", "imagenet") == "imagenet":
                k["weights"] = None
            return build(*a, **k)
        return application

    for name in ("tensorflow.keras.utils", "tensorflow.keras.preprocessing",
                 "tensorflow.keras.preprocessing.image", "tensorflow.keras.applications",
                 "keras.utils", "keras.preprocessing", "keras.preprocessing.image",
                 "keras.applications"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    from keras.src.utils.model_visualization import plot_model
    stubs = {plot_model: lambda *a, **k: None, keras.utils.get_file: get_file,
             keras.utils.image_dataset_from_directory: image_dataset_from_directory}
    for name in dir(keras.applications):
        build = getattr(keras.applications, name)
        if name[:1].isupper() and callable(build) and not hasattr(build, "_stubbed"):
            stubs[build] = no_download(build)
            stubs[build]._stubbed = True
    # the same functions are reachable through several module objects (keras.utils,
    # tf.keras.utils, keras._tf_keras.keras.utils, ...): replace them in every one
    for module in list(sys.modules.values()):
        if module is None or not (getattr(module, "__name__", "") or "").startswith(
                ("keras", "tensorflow")):
            continue
        for attr, value in list(vars(module).items()):
            try:
                stub = stubs.get(value)
            except TypeError:  # unhashable
                continue
            if stub is not None:
                setattr(module, attr, stub)
    for api in (keras, tf.keras):
        api.preprocessing.image_dataset_from_directory = image_dataset_from_directory
        if not hasattr(api.preprocessing.image, "ImageDataGenerator") or \
                api.preprocessing.image.ImageDataGenerator is None:
            api.preprocessing.image.ImageDataGenerator = ImageDataGenerator


def trace_subclassed(keras, model) -> None:
    """Give a subclassed model's eagerly called layers a symbolic output (no weights change)."""
    if type(model) in (keras.Sequential, keras.Model) or not model.built:
        return
    try:
        if all(l.output is not None for l in model.layers):
            return
    except Exception:  # noqa: BLE001 - no symbolic output yet
        pass
    shape = getattr(model, "_build_shapes_dict", None) or {}
    shape = next(iter(shape.values()), None)
    if shape is None:
        return
    try:
        model.call(keras.Input(shape=tuple(shape)[1:]))  # call(), not __call__: layers get nodes
    except Exception:  # noqa: BLE001 - a call() that needs eager tensors (tf.nn.relu, ...)
        trace_eagerly(model, shape)


EAGER_SHAPES: dict = {}  # id(layer) -> its output shape in an eager call, batch as None


def trace_eagerly(model, shape) -> None:
    """Run a subclassed model once on zeros of its built shape (inference, no weights
    change), noting each layer's output shape: for a call() on eager tensors only."""
    import numpy as np
    if any(d is None for d in tuple(shape)[1:]):
        return
    seen = {}
    patched = []
    for layer in model.layers:
        def call(*a, _call=layer.call, _layer=layer, **k):
            out = _call(*a, **k)
            seen[id(_layer)] = [None] + [int(d) for d in out.shape[1:]]
            return out
        layer.call = call
        patched.append(layer)
    try:
        model(np.zeros((1,) + tuple(shape)[1:], "float32"))
        EAGER_SHAPES.update(seen)
    finally:
        for layer in patched:
            del layer.call


def describe(model) -> dict:
    layers = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            shape = EAGER_SHAPES.get(id(layer)) or list(layer.output.shape)
        except Exception:  # noqa: BLE001
            shape = None
        layers.append({"name": layer.name, "class": type(layer).__name__, "output_shape": shape,
                       "params": int(layer.count_params()) if layer.built else None})
    trainable = sum(int(np_prod(w.shape)) for w in model.trainable_weights)
    total = sum(int(np_prod(w.shape)) for w in model.weights)
    return {"class": type(model).__name__, "name": model.name, "layers": layers,
            "total_params": total, "trainable_params": trainable}


def np_prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def truth_of(path: Path, folder: Path | None = None) -> dict:
    keras = stub_keras(full_size=path.name in FULL_SIZE)
    keras.backend.clear_session()
    KERAS2_USED.clear()
    EAGER_SHAPES.clear()  # keyed by id(layer): an earlier script's ids are reused
    code = code_of(path)
    namespace: dict = {"__name__": "__main__"}
    record: dict = {"source": path.name, "keras": keras.__version__, "models": []}
    local_models: list = []  # (function, variable, model) bound only inside the script's functions

    def profiler(frame, event, arg):
        if event == "return" and frame.f_code.co_filename == str(path) and \
                frame.f_code.co_name != "<module>":
            for var, value in frame.f_locals.items():
                # `self` in a method is the model being built, not a model the script made
                if isinstance(value, keras.Model) and var != "self":
                    local_models.append((frame.f_code.co_name, var, value))
    import contextlib
    import os
    import tempfile
    with contextlib.ExitStack() as stack:
        if folder is not None:  # --dir: sibling modules importable, a scratch working directory
            forget_modules(folder)
            sys.path.insert(0, str(folder))
            stack.callback(sys.path.remove, str(folder))
            scratch = stack.enter_context(tempfile.TemporaryDirectory())
            stack.callback(os.chdir, os.getcwd())
            os.chdir(scratch)
            # run as `python script.py` with no arguments (argparse takes its defaults)
            stack.callback(setattr, sys, "argv", sys.argv)
            sys.argv = [path.name]
        try:
            sys.setprofile(profiler)
            exec(compile(code, str(path), "exec"), namespace)
        except BaseException as e:  # noqa: BLE001 - the script's own failure is the truth
            tb = traceback.extract_tb(e.__traceback__)
            line = next((f.lineno for f in reversed(tb) if f.filename == str(path)), None)
            record["error"] = {"type": type(e).__name__, "message": str(e)[:500], "line": line}
        finally:
            sys.setprofile(None)
    if KERAS2_USED:
        record["keras2_helpers"] = sorted(KERAS2_USED)
    seen = set()
    bound = [(None, var, value) for var, value in namespace.items()] + local_models
    for function, var, value in bound:
        if isinstance(value, keras.Model) and id(value) not in seen:
            seen.add(id(value))
            try:
                trace_subclassed(keras, value)
            except Exception:  # noqa: BLE001 - recorded without shapes then
                pass
            try:
                entry = describe(value)
            except Exception as e:  # noqa: BLE001
                entry = {"error": f"{type(e).__name__}: {e}"}
            entry["variable"] = var
            if function is not None:
                entry["function"] = function  # a local variable of that function
            record["models"].append(entry)
    return record


def forget_modules(folder: Path) -> None:
    """Drop the modules an earlier script imported from the folder (each script imports its
    siblings afresh, in its own Keras session)."""
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and Path(file).resolve().is_relative_to(folder):
            del sys.modules[name]


def support_modules(folder: Path) -> set:
    """The folder's support modules (imported by its scripts, no truth of their own)."""
    listing = folder / "support_modules.txt"
    if not listing.exists():
        return set()
    return {l.strip() for l in listing.read_text().splitlines()
            if l.strip() and not l.startswith("#")}


def main(argv: list[str]) -> int:
    folder = None
    if argv[:1] == ["--dir"]:
        folder, argv = Path(argv[1]).resolve(), argv[2:]
    scripts = folder or SCRIPTS
    support = support_modules(scripts)
    files = [Path(a).resolve() if folder else Path(a) for a in argv] or sorted(
        p for p in scripts.iterdir() if p.suffix in (".py", ".ipynb") and p.name not in support)
    for path in files:
        record = truth_of(path, folder)
        out = path.with_name(path.name + ".truth.json")
        out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"{path.name}: {len(record['models'])} models"
              + (f", error {record['error']['type']}" if "error" in record else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
