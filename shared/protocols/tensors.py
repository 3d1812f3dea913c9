"""The named output tensors both protocols answer: a classifier head as its logits,
probabilities and classes; any other output as its values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.ml.serving import Head, Signature

CLASSIFIER_PARTS = ("logits", "probabilities", "classes")


@dataclass(frozen=True)
class Output:
    """One named output tensor: its datatype and its shape for one instance."""

    name: str
    classes: bool  # int64 class ids, not float32 scores
    shape: tuple[int | None, ...]


def _name(head: str, part: str | None, several: bool) -> str:
    if part is None:
        return head
    return f"{head}/{part}" if several else part


def outputs_of(signature: Signature) -> list[Output]:
    """The output tensors a model answers, in its outputs' order (with several outputs, a
    classifier head's parts as ``head/logits``, ``head/probabilities``, ``head/classes``)."""
    several = len(signature.outputs) > 1
    named: list[Output] = []
    for i, tensor in enumerate(signature.outputs):
        if not signature.classifier(i):
            named.append(Output(_name(tensor.name, None, several), False, tensor.shape))
            continue
        for part in CLASSIFIER_PARTS:
            shape = () if part == "classes" else tensor.shape
            named.append(Output(_name(tensor.name, part, several), part == "classes", shape))
    return named


def arrays_of(heads: list[Head]) -> dict[str, np.ndarray]:
    """The output tensors of a prediction by name, in the order of ``outputs_of``."""
    several = len(heads) > 1
    arrays: dict[str, np.ndarray] = {}
    for head in heads:
        if head.logits is None or head.probabilities is None or head.classes is None:
            arrays[_name(head.name, None, several)] = head.values
            continue
        parts = (head.logits, head.probabilities, head.classes.astype(np.int64))
        for part, array in zip(CLASSIFIER_PARTS, parts, strict=True):
            arrays[_name(head.name, part, several)] = array
    return arrays
