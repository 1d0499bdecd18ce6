"""Explanation: how the network reads a drawing and adds a number to it, for `Predictor.explain`.

Everything comes from the served model itself, in float32 and eval mode:

    feature maps   each conv layer's output after its ReLU, caught by forward hooks during predict28's own
                   forward pass (so they are exactly the activations behind the prediction)
    what if        the same image trunk output (digit logits) through the mix head with each number 0-9
    adder          what an exact adder makes of the digit probabilities: P(sum = s) = P(digit = s - number)
    sum table      the mix head alone on one-hot digit d and one-hot number n, for all 100 pairs: the table
                   "digit + number" it learned, independent of any drawing
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .model import MAX_SUM, NUM_DIGITS, MNISTSumNet
from .prediction import Prediction

NUM_SUMS = MAX_SUM + 1  # sums 0..18; the mix head's output 19 is never a valid sum
# name -> index in model.conv of the ReLU after that conv layer, in the network's order
MAP_LAYERS = {"conv1": 1, "conv2": 3, "conv3": 5}


@dataclass(frozen=True, eq=False)  # eq=False: numpy fields make == ambiguous; compare fields instead
class Explanation:
    """How the network read one drawing and added `number`: its activations, what it would answer for every
    other number, the exact adder's answer, and its learned addition table. Arrays are read-only."""

    prediction: Prediction  # exactly Predictor.predict28's for the same ink and number
    number: int
    feature_maps: dict[str, np.ndarray]  # "conv1" (64, 24, 24), "conv2" (128, 20, 20), "conv3" (10, 20, 20), post-ReLU
    what_if: list[int]  # 10 values: the predicted sum of this drawing with number 0..9
    what_if_probs: np.ndarray  # (10, 19) float32: row n = P(sum = 0..18) with number n
    sum_probs: np.ndarray  # (19,) float32: the network's P(sum = 0..18) for `number` (= prediction.sum_probs)
    adder_probs: np.ndarray  # (19,) float32: an exact adder's, adder_probs[s] = digit_probs[s - number] (else 0)
    sum_table: np.ndarray  # (10, 10) int64: [d, n] = the mix head's sum for one-hot digit d and number n
    sum_table_probs: np.ndarray  # (10, 10) float32: that sum's probability (the mix head's confidence)


def _frozen(a: np.ndarray) -> np.ndarray:
    """a, made read-only (the Explanation is frozen; its arrays too)."""
    a.setflags(write=False)
    return a


@contextmanager
def captured(model: MNISTSumNet) -> Iterator[dict[str, torch.Tensor]]:
    """Forward hooks on model while in the block: the dict fills with each MAP_LAYERS ReLU's output (1, C, H, W)
    and "digit_logits" (1, 10) of the forward passes this thread runs. Only this thread's: the served model may
    be reading another drawing in another thread (Gradio runs requests in a thread pool) meanwhile."""
    seen: dict[str, torch.Tensor] = {}
    owner = threading.get_ident()

    def keep(name: str):
        def hook(module, inputs, output):
            if threading.get_ident() == owner:
                seen[name] = output.detach()
        return hook

    modules = {name: model.conv[i] for name, i in MAP_LAYERS.items()} | {"digit_logits": model.classifier}
    handles = [module.register_forward_hook(keep(name)) for name, module in modules.items()]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def sum_distributions(model: MNISTSumNet, digit_logits: torch.Tensor) -> torch.Tensor:
    """The mix head on one drawing's digit logits (1, 10) with each number 0-9 -> P(sum = 0..18), (10, 19)."""
    sum_logits = model.add(digit_logits.expand(NUM_DIGITS, -1), torch.eye(NUM_DIGITS))  # (10, 20)
    return torch.softmax(sum_logits[:, :NUM_SUMS], 1)


def sum_table(model: MNISTSumNet) -> tuple[np.ndarray, np.ndarray]:
    """The mix head's sum for one-hot digit d and one-hot number n: (10, 10) int64 sums and (10, 10) float32
    probabilities of them, [d, n]. model.mix directly: model.add would softmax the one-hot as if logits."""
    eye = torch.eye(NUM_DIGITS)
    pairs = torch.cat([eye.repeat_interleave(NUM_DIGITS, 0), eye.repeat(NUM_DIGITS, 1)], 1)  # (100, 20): row d*10+n
    probs = torch.softmax(model.mix(pairs)[:, :NUM_SUMS], 1)  # (100, 19)
    best, sums = probs.max(1)
    return sums.view(NUM_DIGITS, NUM_DIGITS).numpy(), best.view(NUM_DIGITS, NUM_DIGITS).numpy()


def adder_probs(digit_probs, number: int) -> np.ndarray:
    """What an exact adder says, (19,) float32: P(sum = s) = P(digit = s - number), 0 where s - number is no digit."""
    out = np.zeros(NUM_SUMS, np.float32)
    out[number:number + NUM_DIGITS] = np.asarray(digit_probs, np.float32)
    return out


@torch.inference_mode()
def explain_reading(model: MNISTSumNet, prediction: Prediction, number: int,
                    seen: dict[str, torch.Tensor]) -> Explanation:
    """The Explanation of a prediction, from what `captured` saw of its forward pass; runs only the mix head."""
    missing = [name for name in (*MAP_LAYERS, "digit_logits") if name not in seen]
    if missing:
        raise RuntimeError(f"the forward pass was not captured: {missing} missing (model.eval() and hooks?)")
    what_if_probs = sum_distributions(model, seen["digit_logits"].float())
    table, table_probs = sum_table(model)
    return Explanation(
        prediction=prediction,
        number=number,
        feature_maps={name: _frozen(seen[name][0].float().numpy().copy()) for name in MAP_LAYERS},
        what_if=what_if_probs.argmax(1).tolist(),
        what_if_probs=_frozen(what_if_probs.numpy().copy()),
        sum_probs=_frozen(np.asarray(prediction.sum_probs, np.float32)),
        adder_probs=_frozen(adder_probs(prediction.digit_probs, number)),
        sum_table=_frozen(table.astype(np.int64)),
        sum_table_probs=_frozen(table_probs.copy()),
    )
