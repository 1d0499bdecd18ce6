"""The two shipped models against their bars: the MNIST test set, and real pen handwriting by writers the
handwriting model never trained on (skipped, with the reason, where the data are absent)."""

import pytest

from mnist_sum import Predictor, load_model
from mnist_sum.evaluate import evaluate_model
from mnist_sum.evaluate_pen import evaluate_pen
from mnist_sum.pen import kept_out, load_pen, pen_folder
from mnist_sum.weights import EXERCISE_WEIGHTS, HANDWRITING_WEIGHTS

PEN_SAMPLE = 1500  # digits and letters each: a fixed subsample keeps this test to seconds


# The best public version of the exercise: 99.27 % / 99.24 % after 25 epochs. The exercise beats it in 5; the
# handwriting model may give up a little MNIST for real handwriting, never below 99.4 % (README: results).
@pytest.mark.parametrize("weights, bar", [(EXERCISE_WEIGHTS, 0.995), (HANDWRITING_WEIGHTS, 0.994)],
                         ids=["exercise", "handwriting"])
def test_shipped_models_reach_their_bars_on_mnist_test(mnist_test, weights, bar):
    metrics = evaluate_model(load_model(weights), mnist_test, progress=False)
    assert metrics["n"] == 10_000
    assert metrics["digit_accuracy"] >= bar
    assert metrics["sum_accuracy"] >= bar
    assert metrics["consistency"] >= 0.999


def test_the_handwriting_model_reads_unseen_writers_and_flags_letters():
    """The kept-out writers' pen digits (never trained on) and kept-out letters not written like digits, drawn
    as the sketch pad sends them, through the Predictor the app uses; against the naive whole-canvas resize."""
    folder = pen_folder()
    if folder is None:
        pytest.skip("pen data not found: provide pendigits/ (in the repository) or set MNIST_SUM_PEN")
    digits, letters = load_pen(folder, "digits"), load_pen(folder, "letters")
    report = evaluate_pen(Predictor(), digits.subset(kept_out(digits)), letters.subset(kept_out(letters)),
                          limit=PEN_SAMPLE, progress=False, workers=2)
    read = report["digits"]["all"]
    assert read["n"] == int(kept_out(digits).sum()) and read["blank"] == 0
    assert read["digit_accuracy"] >= 0.97 and read["sum_accuracy"] >= 0.97
    assert read["naive_digit_accuracy"] < 0.8
    assert read["flagged"] <= 0.015  # not a digit: at most 1.5 % of real digits ...
    assert report["letters"]["flagged"] >= 0.8  # ... and most letters not written like digits
