"""mnist-sum: one network reads a drawn digit and a number 0-9 and predicts the digit and their sum."""

from .data import MNISTSum
from .model import MNISTSumNet
from .predict import Prediction, Predictor
from .weights import load_model

__all__ = ["MNISTSum", "MNISTSumNet", "Prediction", "Predictor", "load_model"]
