"""The allow-listed fit callbacks, made from their spec (imports Keras: import it lazily)."""

from __future__ import annotations

import logging
from typing import Any

import keras
import numpy as np

from shared.ml.build import BuildError, make_schedule
from shared.spec.job import CallbackSpec, ObjectSpec

log = logging.getLogger(__name__)


class KeepBest(keras.callbacks.Callback):
    """Keep the best epoch's weights and put them back when training ends."""

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", verbose: int = 0) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max'; received: mode={mode!r}")
        if mode == "auto":
            higher = ("acc", "accuracy", "auc", "precision", "recall", "r2_score")
            mode = "max" if monitor.removeprefix("val_").endswith(higher) else "min"
        self.monitor, self.mode, self.verbose = monitor, mode, verbose
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_weights: list[Any] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            return  # e.g. an epoch without validation (validation_freq)
        value = float(value)
        better = self.best is None or (
            value < self.best if self.mode == "min" else value > self.best
        )
        if better and np.isfinite(value):
            self.best, self.best_epoch = value, epoch + 1
            self.best_weights = self.model.get_weights()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            log.info("kept epoch %s: %s=%s", self.best_epoch, self.monitor, self.best)


def _scheduler(config: dict[str, Any], field: str) -> Any:
    schedule = config.pop("schedule")
    if isinstance(schedule, ObjectSpec):
        made = make_schedule(schedule, f"{field}.config.schedule")

        def by_epoch(epoch: int, lr: float) -> float:
            return float(made(epoch))
    else:
        rates = [float(v) for v in schedule]

        def by_epoch(epoch: int, lr: float) -> float:
            return rates[min(epoch, len(rates) - 1)]

    return keras.callbacks.LearningRateScheduler(by_epoch, **config)


def make(specs: list[CallbackSpec]) -> list[Any]:
    """Keras callbacks for the spec's list, in order."""
    made = []
    for i, spec in enumerate(specs):
        field = f"fit.callbacks[{i}]"
        config = dict(spec.config)
        try:
            if spec.class_name == "LearningRateScheduler":
                made.append(_scheduler(config, field))
            elif spec.class_name == "KeepBest":
                made.append(KeepBest(**config))  # type: ignore[arg-type]
            else:
                made.append(getattr(keras.callbacks, spec.class_name)(**config))
        except BuildError:
            raise
        except Exception as exc:
            raise BuildError(f"{field}.config", exc) from exc
    return made
