"""MNISTSumNet: the course network that reads a digit image and a one-hot number and predicts digit and sum.

The layers and submodule names are exactly those of the original exercise, so its printout matches:

    conv:       Conv2d(1,64,5) ReLU Conv2d(64,128,5) ReLU Conv2d(128,10,1) ReLU MaxPool2d(2,2)
    classifier: Linear(1000,512) BN ReLU Linear(512,256) BN ReLU Linear(256,10)
    mix:        Linear(20,50) ReLU Linear(50,20)

Our one choice: the mix head sees the digit head's *probabilities*, detached, next to the one-hot number.
Probabilities are bounded and look the same for every image of a digit, so the mix head learns a clean
table "digit + number" and the sum never disagrees with the digit it was given; detaching keeps the sum
loss from pulling the image features away from the digit task.
"""

import torch
import torch.nn.functional as F
from torch import nn

NUM_DIGITS = 10
NUM_SUM_OUTPUTS = 20  # as in the original; sums only reach 0..18, so output 19 is never a target
MAX_SUM = 18

MNIST_MEAN = 0.1307  # of the MNIST training pixels scaled to [0, 1]
MNIST_STD = 0.3081
# What the saved weights carry in their metadata, to say which network and wiring they are for.
MODEL_CONFIG = {"arch": "MNISTSumNet", "mix_input": "softmax(digit_logits).detach()", "version": 1}


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] (any shape) -> the network's input scale (MNIST's mean 0, std 1)."""
    return (pixels - MNIST_MEAN) / MNIST_STD


class MNISTSumNet(nn.Module):
    """Digit classifier plus a small 'mix' head that adds a one-hot number to the predicted digit."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 64, 5),  # (B, 64, 24, 24)
            nn.ReLU(),
            nn.Conv2d(64, 128, 5),  # (B, 128, 20, 20)
            nn.ReLU(),
            nn.Conv2d(128, 10, 1),  # (B, 10, 20, 20)
            nn.ReLU(),
            nn.MaxPool2d(2, 2),  # (B, 10, 10, 10) -> 1000 features
        )
        self.classifier = nn.Sequential(
            nn.Linear(1000, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(),
            nn.Linear(512, 256),
            nn.BatchNorm1d(256),
            nn.ReLU(),
            nn.Linear(256, NUM_DIGITS),
        )
        self.mix = nn.Sequential(
            nn.Linear(2 * NUM_DIGITS, 50),
            nn.ReLU(),
            nn.Linear(50, NUM_SUM_OUTPUTS),
        )

    def forward(self, image: torch.Tensor, number: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image (B, 1, 28, 28) normalized, number (B, 10) one-hot -> digit logits (B, 10), sum logits (B, 20)."""
        digit_logits = self.classifier(self.conv(image).flatten(1))  # (B, 1000) features -> (B, 10)
        return digit_logits, self.add(digit_logits, number)

    def add(self, digit_logits: torch.Tensor, number: torch.Tensor) -> torch.Tensor:
        """The mix head alone: digit logits (B, 10) + one-hot number (B, 10) -> sum logits (B, 20)."""
        digit_probs = F.softmax(digit_logits, dim=1).detach()
        return self.mix(torch.cat([digit_probs, number], dim=1))
