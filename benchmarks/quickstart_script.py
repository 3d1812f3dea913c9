"""The TensorFlow quickstart as written (float64 inputs, batch 32), on Fashion-MNIST, timed.

Run by benchmarks/train.py as the baseline: prints one JSON line with the seconds per epoch and
the test accuracy.
"""

import json
import sys
import time

import keras
import tensorflow as tf

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 42
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
keras.utils.set_random_seed(seed)

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train, x_test = x_train / 255.0, x_test / 255.0

model = tf.keras.models.Sequential(
    [
        tf.keras.layers.Flatten(input_shape=(28, 28)),
        tf.keras.layers.Dense(128, activation="relu"),
        tf.keras.layers.Dropout(0.2),
        tf.keras.layers.Dense(10),
    ]
)
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
model.compile(optimizer="adam", loss=loss_fn, metrics=["accuracy"])


class Timer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        durations.append(time.perf_counter() - self.t)


durations: list[float] = []
model.fit(x_train, y_train, epochs=epochs, verbose=0, callbacks=[Timer()])
_, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(json.dumps({"epoch_seconds": durations, "test_accuracy": accuracy}))
