"""Prediction: what the network read from one drawing (made by predict.Predictor, shown by the app).

Its own module, apart from Predictor, so that explanation.py can name it without importing predict.py, which
imports explanation.py (mnist_sum.predict.Prediction is the same class).
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Prediction:
    """What the network read: digit and sum with their probabilities, and the 28x28 input it saw."""

    digit: int
    sum: int
    digit_probs: list[float]  # 10 values, P(digit = 0..9)
    sum_probs: list[float]  # 19 values, P(sum = 0..18)
    input28: np.ndarray = field(repr=False)  # (28, 28) uint8, white ink on black
    is_digit: bool = True  # False: the drawing does not look like a digit (digit and sum are best guesses)
    digit_score: float = float("nan")  # how digit-like: the top digit probability; is_digit = score >= threshold
