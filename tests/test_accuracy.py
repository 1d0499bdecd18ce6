"""The shipped weights against their published figures: the MNIST test set, and real pen handwriting
(skipped, with the reason, where the data are absent)."""

import pytest

from mnist_sum import Predictor, load_model
from mnist_sum.evaluate import evaluate_model
from mnist_sum.evaluate_pen import evaluate_pen
from mnist_sum.pen import load_pen, pen_folder

PEN_SAMPLE = 1500  # digits and letters each: a fixed subsample keeps this test to seconds


def test_shipped_weights_reach_the_published_bars(mnist_test):
    metrics = evaluate_model(load_model(), mnist_test, progress=False)
    assert metrics["n"] == 10_000
    assert metrics["digit_accuracy"] >= 0.995
    assert metrics["sum_accuracy"] >= 0.995
    assert metrics["consistency"] >= 0.999


def test_shipped_weights_read_real_pen_digits_far_better_than_the_naive_demo():
    """Pen digits by writers MNIST never had (the shipped weights trained on MNIST only: every source is
    unseen), drawn as the sketch pad sends them: the predictor's path against the whole canvas resized."""
    folder = pen_folder()
    if folder is None:
        pytest.skip("pen data not found: provide pendigits/ (in the repository) or set MNIST_SUM_PEN")
    report = evaluate_pen(Predictor(), load_pen(folder, "digits"), limit=PEN_SAMPLE, progress=False, workers=2)
    digits = report["digits"]["all"]
    assert digits["n"] == PEN_SAMPLE and digits["blank"] == 0
    assert digits["digit_accuracy"] >= 0.97 and digits["sum_accuracy"] >= 0.97  # ~97.8 % on all 11,133
    assert digits["naive_digit_accuracy"] < 0.8
