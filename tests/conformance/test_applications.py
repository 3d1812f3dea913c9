"""Conformance: the architectures people train, each submitted as its own ``model.to_json()``.

Every ``keras.applications`` model, built without weights at its smallest input size with three
classes, is accepted at submit (202): in its default form, and without its preprocessing where
the constructor has ``include_preprocessing``; EfficientNet B0-B7 too, whose Normalization leaves
its statistics to adapt(): the worker adapts it on the training data, as B0 trains to show. Three
more small applications train an epoch through the API. Models in the style of keras.io's
examples (a convnet, recurrent and bidirectional text models, transformer blocks with residual
adds written as ops, a Conv2DTranspose autoencoder, augmentation layers, preprocessing with its
state in its config) are accepted and train an epoch.

Time: Keras takes seconds to build (and the submit check to rebuild and call) a model of a
thousand layers. Each document is built once per session, without initialising its weights
(``_document``: ``keras.StatelessScope``, the same JSON); the datasets hold a handful of
samples. A family's middle members (EfficientNet B1-B6, the same blocks as B0 and B7 at other
widths and depths; ConvNeXt Small to Large; ...), and the without-preprocessing form of its
larger models (the same layers as their default form, less the first one or two), go through
the spec's validation only, the part of a submit that refused such documents; its smallest and
largest models are submitted whole.
"""

from __future__ import annotations

import copy
import functools
import gc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from tests.conformance.conftest import Runner, npz

pytestmark = pytest.mark.slow

CLASSES = 3
# Every model of keras.applications (Keras 3.15) and whether it takes include_preprocessing;
# test_every_application_is_here fails when Keras adds or drops one.
APPLICATIONS: dict[str, bool] = {
    "ConvNeXtTiny": True, "ConvNeXtSmall": True, "ConvNeXtBase": True, "ConvNeXtLarge": True,
    "ConvNeXtXLarge": True, "DenseNet121": False, "DenseNet169": False, "DenseNet201": False,
    "EfficientNetB0": False, "EfficientNetB1": False, "EfficientNetB2": False,
    "EfficientNetB3": False, "EfficientNetB4": False, "EfficientNetB5": False,
    "EfficientNetB6": False, "EfficientNetB7": False, "EfficientNetV2B0": True,
    "EfficientNetV2B1": True, "EfficientNetV2B2": True, "EfficientNetV2B3": True,
    "EfficientNetV2S": True, "EfficientNetV2M": True, "EfficientNetV2L": True,
    "InceptionV3": False, "InceptionResNetV2": False, "MobileNet": False, "MobileNetV2": False,
    "MobileNetV3Small": True, "MobileNetV3Large": True, "NASNetMobile": False,
    "NASNetLarge": False, "ResNet50": False, "ResNet101": False, "ResNet152": False,
    "ResNet50V2": False, "ResNet101V2": False, "ResNet152V2": False, "VGG16": False,
    "VGG19": False, "Xception": False,
}  # fmt: skip
# The smallest input side each takes without weights: 32, but for these.
SMALLEST = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}
# EfficientNet (B0-B7) always starts with a Normalization whose mean and variance, without
# weights, are left to adapt(): accepted, the worker adapts it on the training data.
# Validated only in every form (see the module's docstring): a family's members between its
# smallest and its largest, which are submitted whole.
MIDDLE = frozenset({
    "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "DenseNet169", "EfficientNetB1",
    "EfficientNetB2", "EfficientNetB3", "EfficientNetB4", "EfficientNetB5", "EfficientNetB6",
    "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3", "EfficientNetV2M", "ResNet101",
    "ResNet101V2",
})  # fmt: skip
# Without preprocessing, validated only: the largest of the families that take
# include_preprocessing (their middle members are in MIDDLE); their smallest (ConvNeXtTiny,
# EfficientNetV2B0 and V2S, whose preprocessing differ, MobileNetV3Small) whole.
VALIDATED_ONLY = frozenset({"ConvNeXtXLarge", "EfficientNetV2L", "MobileNetV3Large"})
VARIANTS = [
    pytest.param(name, pre, id=f"{name}-{'with' if pre else 'without'}-preprocessing"
                 if APPLICATIONS[name] else name)
    for name in APPLICATIONS for pre in ((True, False) if APPLICATIONS[name] else (None,))
]  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_keras() -> Iterator[None]:
    """Each test starts from a clean Keras state: a thousand-layer model built by a submit check
    leaves names and traced graphs behind that slow every later build."""
    yield
    import keras

    keras.backend.clear_session()
    gc.collect()


def _side(name: str) -> int:
    return SMALLEST.get(name, 32)


@functools.cache
def _document(name: str, preprocessing: bool | None) -> str:
    """keras.applications.<name>(weights=None) at its smallest size, as to_json(); built once."""
    import keras

    kwargs: dict[str, Any] = {"weights": None, "input_shape": (_side(name), _side(name), 3),
                              "classes": CLASSES}  # fmt: skip
    if preprocessing is not None:
        kwargs["include_preprocessing"] = preprocessing
    with keras.StatelessScope():  # its weights are never initialised: nothing calls it here
        document = getattr(keras.applications, name)(**kwargs).to_json()
    keras.backend.clear_session()
    return str(document)


def _images(runner: Runner, side: int, n: int = 4, channels: int = 3) -> str:
    rng = np.random.default_rng(side)
    x = rng.integers(0, 256, size=(n, side, side, channels), dtype=np.uint8)
    y = np.arange(n) % CLASSES
    return str(runner.upload(npz(x_train=x, y_train=y), name=f"images-{side}")["id"])


def _spec(dataset_id: str, document: str | dict[str, Any], **compile: Any) -> dict[str, Any]:
    return {
        "dataset": {"id": dataset_id},
        "model": {"json": document},
        "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                    "metrics": ["accuracy"], **compile},
        "fit": {"epochs": 1, "batch_size": 2},
        "seed": 3,
    }  # fmt: skip


def test_every_application_is_here() -> None:
    import inspect

    import keras

    constructors = {
        name: getattr(keras.applications, name)
        for name in dir(keras.applications)
        if name[0].isupper() and callable(getattr(keras.applications, name))
    }
    found = {
        name: "include_preprocessing" in inspect.signature(constructor).parameters
        for name, constructor in constructors.items()
    }
    assert found == APPLICATIONS


@pytest.mark.parametrize(("name", "preprocessing"), VARIANTS)
def test_application_is_accepted(runner: Runner, name: str, preprocessing: bool | None) -> None:
    from shared.spec.job import JobSpec

    document = _document(name, preprocessing)
    if name in MIDDLE or (preprocessing is False and name in VALIDATED_ONLY):
        JobSpec.model_validate(_spec("0" * 32, document))
        return
    dataset = _images(runner, _side(name), n=2)
    response = runner.submit(_spec(dataset, document))
    assert response.status_code == 202, response.get_data(as_text=True)


# Three train one epoch, small and quick to trace (Keras traces the training step of every
# layer): MobileNetV3Small with its operation layers (its hard sigmoid is
# ReLU(6.0)(x + 3.0) * (1.0 / 6.0)), MobileNet, and EfficientNetB0 with its Normalization
# adapted (below).
@pytest.mark.parametrize(
    ("name", "preprocessing"), [("MobileNetV3Small", True), ("MobileNet", None)]
)
def test_small_application_trains(runner: Runner, name: str, preprocessing: bool | None) -> None:
    job = runner.run(_spec(_images(runner, _side(name)), _document(name, preprocessing)))
    assert [h["epoch"] for h in job["history"]] == [1]
    assert np.isfinite(job["history"][0]["metrics"]["loss"])


def test_efficientnet_trains_with_its_normalization_adapted(runner: Runner) -> None:
    """EfficientNetB0 without weights: its Normalization, after its Rescaling(1/255), is adapted
    on the training images before the first epoch (the mean of each channel, 0 to 1)."""
    dataset = _images(runner, 32, n=6)
    job = runner.run(_spec(dataset, _document("EfficientNetB0", None)))
    assert [h["epoch"] for h in job["history"]] == [1]
    layer = next(
        layer for layer in runner.model(job).layers if type(layer).__name__ == "Normalization"
    )
    rng = np.random.default_rng(32)  # _images's
    images = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8) / 255.0
    np.testing.assert_allclose(np.asarray(layer.mean).ravel(), images.mean(axis=(0, 1, 2)),
                               atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(np.asarray(layer.variance).ravel(), images.var(axis=(0, 1, 2)),
                               atol=1e-5)  # fmt: skip


# Models in the style of keras.io's examples: each builder returns the model, the dataset's
# arrays and the compile arguments that differ from _spec's.
Example = tuple[Any, dict[str, np.ndarray], dict[str, Any]]
_RNG = np.random.default_rng(5)
N = 8


def _labels(classes: int = 2) -> np.ndarray:
    return np.arange(N) % classes


def mnist_convnet() -> Example:
    """keras.io "Simple MNIST convnet"."""
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dropout(0.5), layers.Dense(10, activation="softmax"),
    ])  # fmt: skip
    x = _RNG.integers(0, 256, size=(N, 28, 28, 1), dtype=np.uint8)
    return model, {"x_train": x, "y_train": _labels(10)}, {}


def _tokens(vocabulary: int, length: int) -> np.ndarray:
    return _RNG.integers(1, vocabulary, size=(N, length)).astype("int32")


def bidirectional_lstm() -> Example:
    """keras.io "Bidirectional LSTM on IMDB" (smaller)."""
    import keras
    from keras import layers

    tokens = keras.Input((None,), dtype="int32")
    h = layers.Embedding(200, 16)(tokens)
    h = layers.Bidirectional(layers.LSTM(8, return_sequences=True))(h)
    h = layers.Bidirectional(layers.LSTM(8))(h)
    model = keras.Model(tokens, layers.Dense(1, activation="sigmoid")(h))
    data = {"x_train": _tokens(200, 12), "y_train": _labels().astype("float32")}
    return model, data, {"loss": "binary_crossentropy"}


def masked_gru() -> Example:
    """An Embedding with mask_zero feeding a GRU and a SimpleRNN (keras.io "Working with RNNs")."""
    import keras
    from keras import layers

    tokens = keras.Input((10,), dtype="int32")
    h = layers.Embedding(50, 8, mask_zero=True)(tokens)
    h = layers.GRU(8, return_sequences=True)(h)
    h = layers.SimpleRNN(4)(h)
    model = keras.Model(tokens, layers.Dense(2, activation="softmax")(h))
    x = _tokens(50, 10)
    x[:, 7:] = 0  # padding, masked
    return model, {"x_train": x, "y_train": _labels()}, {}


def timeseries_transformer() -> Example:
    """keras.io "Timeseries classification with a Transformer model": residual adds as ops."""
    import keras
    from keras import layers

    def encoder(inputs: Any) -> Any:
        x = layers.MultiHeadAttention(key_dim=8, num_heads=2, dropout=0.1)(inputs, inputs)
        x = layers.LayerNormalization(epsilon=1e-6)(layers.Dropout(0.1)(x))
        res = x + inputs
        x = layers.Conv1D(filters=4, kernel_size=1, activation="relu")(res)
        x = layers.Conv1D(filters=inputs.shape[-1], kernel_size=1)(layers.Dropout(0.1)(x))
        return layers.LayerNormalization(epsilon=1e-6)(x) + res

    inputs = keras.Input((16, 1))
    x = encoder(encoder(inputs))
    x = layers.GlobalAveragePooling1D(data_format="channels_first")(x)
    x = layers.Dropout(0.1)(layers.Dense(8, activation="relu")(x))
    model = keras.Model(inputs, layers.Dense(2, activation="softmax")(x))
    x_train = _RNG.normal(size=(N, 16, 1)).astype("float32")
    return model, {"x_train": x_train, "y_train": _labels()}, {}


def text_transformer() -> Example:
    """A text transformer block written with ops: position ids from keras.ops (cumsum of ones),
    token plus position embeddings, attention with a causal mask, ops.add residuals, the first
    token sliced out (x[:, 0, :]) beside an ops.mean pooling, ops.concatenate, gelu."""
    import keras
    from keras import layers, ops

    tokens = keras.Input((12,), dtype="int32")
    positions = ops.cumsum(ops.ones_like(tokens), axis=1) - 1
    x = layers.Embedding(100, 16)(tokens) + layers.Embedding(12, 16)(positions)
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x, use_causal_mask=True)
    x = layers.LayerNormalization(epsilon=1e-6)(ops.add(x, attended))
    ffn = layers.Dense(16)(keras.activations.gelu(layers.Dense(32)(x)))
    x = layers.LayerNormalization(epsilon=1e-6)(ops.add(x, ffn * 0.5))
    pooled = ops.concatenate([x[:, 0, :], ops.mean(x, axis=1)], axis=-1)
    model = keras.Model(tokens, layers.Dense(3, activation="softmax")(ops.tanh(pooled)))
    return model, {"x_train": _tokens(100, 12), "y_train": _labels(3)}, {}


def conv_autoencoder() -> Example:
    """keras.io "Convolutional autoencoder for image denoising" (its target is its input)."""
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(inputs)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2DTranspose(8, 3, strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(8, 3, strides=2, activation="relu", padding="same")(x)
    model = keras.Model(inputs, layers.Conv2D(1, 3, activation="sigmoid", padding="same")(x))
    images = _RNG.uniform(size=(N, 28, 28, 1)).astype("float32")
    return model, {"x_train": images, "y_train": images}, {"loss": "binary_crossentropy",
                                                            "metrics": ["mae"]}  # fmt: skip


def augmented_xception() -> Example:
    """keras.io "Image classification from scratch": an augmentation Sequential inside the
    model, Rescaling, separable convolutions and residual adds (layers.add)."""
    import keras
    from keras import layers

    augmentation = keras.Sequential([
        layers.RandomFlip("horizontal"), layers.RandomRotation(0.1), layers.RandomZoom(0.1),
        layers.RandomContrast(0.1), layers.RandomTranslation(0.1, 0.1),
    ], name="augmentation")  # fmt: skip
    inputs = keras.Input((32, 32, 3))
    x = layers.Rescaling(1.0 / 255)(augmentation(inputs))
    x = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(8, 3, strides=2)(x)))
    previous = x
    for size in (8, 16):
        x = layers.Activation("relu")(x)
        x = layers.BatchNormalization()(layers.SeparableConv2D(size, 3, padding="same")(x))
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous)
        x = previous = layers.add([x, residual])
    x = layers.Dropout(0.25)(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, layers.Dense(1)(x))
    x_train = _RNG.integers(0, 256, size=(N, 32, 32, 3), dtype=np.uint8)
    loss = {"class_name": "BinaryCrossentropy", "config": {"from_logits": True}}
    return model, {"x_train": x_train, "y_train": _labels()}, {"loss": loss, "metrics": []}


def augmentation_layers() -> Example:
    """Keras's other image augmentation layers, in a model's augmentation Sequential."""
    import keras
    from keras import layers

    unit = {"value_range": (0, 1)}
    augmentation = keras.Sequential([
        layers.RandomGrayscale(0.2), layers.RandomHue(0.1, **unit),
        layers.RandomColorJitter(brightness_factor=0.1, contrast_factor=0.1, **unit),
        layers.RandomErasing(0.5, **unit), layers.RandomGaussianBlur(0.5, **unit),
        layers.RandomInvert(0.1, **unit), layers.RandomPerspective(0.5),
        layers.AutoContrast(**unit), layers.AugMix(**unit), layers.RandAugment(**unit),
        layers.RandomElasticTransform(0.5, **unit), layers.RandomCrop(14, 14),
        layers.CenterCrop(12, 12), layers.Resizing(16, 16),
    ], name="augmentation")  # fmt: skip
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(4, 3, activation="relu")(augmentation(inputs))
    model = keras.Model(inputs, layers.Dense(2, activation="softmax")(layers.Flatten()(x)))
    x_train = _RNG.integers(0, 256, size=(N, 16, 16, 3), dtype=np.uint8)
    return model, {"x_train": x_train, "y_train": _labels()}, {}


def structured_preprocessing() -> Example:
    """keras.io "Structured data classification", its preprocessing state given in the config
    (what adapt() would have computed): Normalization, Discretization, IntegerLookup,
    CategoryEncoding, Hashing and HashedCrossing on two named inputs."""
    import keras
    from keras import layers, ops

    numbers = keras.Input((3,), name="numbers")
    codes = keras.Input((1,), name="codes", dtype="int64")
    scaled = layers.Normalization(mean=[50.0, 1.0, 0.0], variance=[400.0, 1.0, 4.0])(numbers)
    bins = layers.Discretization(bin_boundaries=[30.0, 45.0, 60.0], output_mode="int")(
        numbers[:, :1]
    )
    age = layers.CategoryEncoding(num_tokens=4, output_mode="one_hot")(bins)
    bins = ops.cast(bins, "int64")
    code = layers.IntegerLookup(vocabulary=[3, 7, 11], output_mode="one_hot")(codes)
    hashed = layers.Hashing(num_bins=8, output_mode="one_hot")(codes)
    crossed = layers.HashedCrossing(num_bins=8, output_mode="one_hot")((bins, codes))
    x = layers.concatenate([scaled, age, code, hashed, crossed])
    x = layers.Dropout(0.1)(layers.Dense(8, activation="relu")(x))
    model = keras.Model([numbers, codes], layers.Dense(1, activation="sigmoid", name="out")(x))
    data = {
        "x_train.numbers": np.stack([_RNG.uniform(20, 80, N), _RNG.normal(1, 1, N),
                                     _RNG.normal(0, 2, N)], axis=1).astype("float32"),
        "x_train.codes": _RNG.choice([3, 7, 11, 13], size=(N, 1)).astype("int64"),
        "y_train": _labels().astype("float32"),
    }  # fmt: skip
    return model, data, {"loss": "binary_crossentropy"}


EXAMPLES: dict[str, Callable[[], Example]] = {
    f.__name__: f
    for f in (mnist_convnet, bidirectional_lstm, masked_gru, timeseries_transformer,
              text_transformer, conv_autoencoder, augmented_xception, augmentation_layers,
              structured_preprocessing)
}  # fmt: skip


@pytest.mark.parametrize("example", EXAMPLES)
def test_keras_io_style_model_trains(runner: Runner, example: str) -> None:
    import keras

    keras.utils.set_random_seed(0)
    model, arrays, compile = EXAMPLES[example]()
    document = model.to_json()
    keras.backend.clear_session()
    spec = _spec(runner.upload(npz(**arrays), name=example)["id"], document, **compile)
    if arrays.get("x_train", np.zeros(0)).dtype == np.uint8:  # images: the model sees 0 to 1
        spec["dataset"]["scale"] = 255.0
    job = runner.run(spec)
    assert [h["epoch"] for h in job["history"]] == [1]
    assert np.isfinite(job["history"][0]["metrics"]["loss"])


def test_a_normalization_left_to_adapt_in_a_nested_model_is_refused(runner: Runner) -> None:
    """Its input is not computed from the model's inputs: its state must be in its config."""
    import keras

    inputs = keras.Input((4,))
    nested = keras.Sequential([keras.layers.Normalization(), keras.layers.Dense(2)], name="head")
    model = keras.Model(inputs, nested(inputs))
    document = model.to_json()
    keras.backend.clear_session()
    dataset = runner.upload(npz(x_train=np.zeros((4, 4), "float32"), y_train=np.zeros(4)))
    response = runner.submit(_spec(dataset["id"], copy.deepcopy(document)))
    assert response.status_code == 422
    error = response.get_json()["error"]
    field = "model.json.config.layers[1].config.layers[1].config.mean"  # after its InputLayer
    assert error["details"]["errors"][0]["field"] == field
    assert "only as a layer of the model itself" in error["message"]
    assert "Normalization(mean=..., variance=...)" in error["message"]
