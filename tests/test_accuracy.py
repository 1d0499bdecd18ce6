"""The shipped weights on the full MNIST test set (skipped, with the reason, where it is absent)."""

from mnist_sum import load_model
from mnist_sum.evaluate import evaluate_model


def test_shipped_weights_reach_the_published_bars(mnist_test):
    metrics = evaluate_model(load_model(), mnist_test, progress=False)
    assert metrics["n"] == 10_000
    assert metrics["digit_accuracy"] >= 0.994
    assert metrics["sum_accuracy"] >= 0.994
    assert metrics["consistency"] >= 0.998
