"""Predictor: load the network once, then read drawn digits and add a number to them.

    >>> from mnist_sum import Predictor
    >>> p = Predictor()                        # the shipped weights
    >>> p.predict("demo/examples/digit_7.png", 3)
    Prediction(digit=7, sum=10, ...)
    >>> p.explain("demo/examples/digit_7.png", 3).what_if   # how it adds: the sum for each number 0-9
    [7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
"""

import math
import numbers

import numpy as np
import torch

from .explanation import Explanation, captured, explain_reading
from .model import MAX_SUM, normalize
from .prediction import Prediction  # defined apart so explanation.py can name it; re-exported here
from .preprocess import to_input28
from .weights import SHIPPED_WEIGHTS, load_model, read_metadata


def check_number(number) -> int:
    """An int 0-9 (numpy ints and integral floats such as 3.0 too); ValueError for anything else."""
    if (isinstance(number, (bool, np.bool_)) or not isinstance(number, numbers.Real)
            or not math.isfinite(number) or number != int(number)):  # NaN, infinity, or a fraction such as 2.5
        raise ValueError(f"number must be an integer 0-9, got {number!r}")
    if not 0 <= number <= 9:
        raise ValueError(f"number must be between 0 and 9, got {number!r}")
    return int(number)


def digit_score(digit_logits: torch.Tensor) -> torch.Tensor:
    """How much a drawing looks like a digit, (B, 10) logits -> (B,): the top digit probability. Training gives
    drawings that are not digits a uniform target (outlier exposure), so the network is unsure of them.

    Measured against the log-sum-exp of the logits (an "energy" score) on held-out pen sources, at 1 % of
    digits flagged this flagged 94 % of letters, the energy score 6 %."""
    return torch.softmax(digit_logits.float(), dim=1).amax(dim=1)


class Predictor:
    """MNISTSumNet loaded once (CPU, eval mode); `predict(image, number)` for any drawing or upload.

    The not-a-digit threshold comes from the weights' metadata; weights without one (the MNIST-only
    exercise) call every drawing a digit."""

    def __init__(self, weights=None):
        path = SHIPPED_WEIGHTS if weights is None else weights
        self.model = load_model(path)
        self.threshold = read_metadata(path).get("not_a_digit", {}).get("threshold")

    def explain(self, image, number) -> Explanation | None:
        """How the network reads a drawing and adds `number` (see explanation.py); None when nothing is drawn,
        ValueError for bad input, as predict."""
        number = check_number(number)
        ink = to_input28(image)  # (28, 28) in [0, 1], or None when blank
        if ink is None:
            return None
        return self.explain28(ink, number)

    @torch.inference_mode()
    def explain28(self, ink: np.ndarray, number: int) -> Explanation:
        """explain on an already preprocessed (28, 28) ink map in [0, 1]: predict28's Prediction, from the same
        forward pass that gives the feature maps."""
        number = check_number(number)
        with captured(self.model) as seen:
            prediction = self.predict28(ink, number)
        return explain_reading(self.model, prediction, number, seen)

    def predict(self, image, number) -> Prediction | None:
        """Digit and digit + number for a drawing; None when nothing is drawn; ValueError for bad input."""
        number = check_number(number)
        ink = to_input28(image)  # (28, 28) in [0, 1], or None when blank
        if ink is None:
            return None
        return self.predict28(ink, number)

    @torch.inference_mode()
    def predict28(self, ink: np.ndarray, number: int) -> Prediction:
        """The network on an already MNIST-normalized (28, 28) ink map in [0, 1]."""
        image = normalize(torch.from_numpy(ink).view(1, 1, 28, 28))
        one_hot = torch.zeros(1, 10)
        one_hot[0, number] = 1
        digit_logits, sum_logits = self.model(image, one_hot)
        score = float(digit_score(digit_logits)[0])
        digit_probs = torch.softmax(digit_logits[0], 0)
        sum_probs = torch.softmax(sum_logits[0, :MAX_SUM + 1], 0)  # output 19 is never a valid sum
        return Prediction(
            digit=int(digit_probs.argmax()),
            sum=int(sum_probs.argmax()),
            digit_probs=digit_probs.tolist(),
            sum_probs=sum_probs.tolist(),
            input28=(ink * 255).round().astype(np.uint8),
            is_digit=self.threshold is None or score >= self.threshold,
            digit_score=score,
        )
