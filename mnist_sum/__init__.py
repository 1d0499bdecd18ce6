"""mnist-sum: one network reads a drawn digit and a number 0-9 and predicts the digit and their sum."""

from .explanation import Explanation
from .model import MNISTSumNet
from .predict import Prediction, Predictor
from .weights import load_model

__all__ = ["Explanation", "MNISTSum", "MNISTSumNet", "Prediction", "Predictor", "load_model"]


def __getattr__(name):
    # MNISTSum needs torchvision, whose import costs seconds; the app and Predictor never use it.
    if name == "MNISTSum":
        from .data import MNISTSum

        return MNISTSum
    raise AttributeError(f"module 'mnist_sum' has no attribute {name!r}")
