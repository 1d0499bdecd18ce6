"""MNISTSumNet keeps the original layers and names, and its heads have the right shapes and wiring."""

import torch
import torch.nn.functional as F

from mnist_sum import MNISTSumNet

ORIGINAL_PRINTOUT = """(
  (conv): Sequential(
    (0): Conv2d(1, 64, kernel_size=(5, 5), stride=(1, 1))
    (1): ReLU()
    (2): Conv2d(64, 128, kernel_size=(5, 5), stride=(1, 1))
    (3): ReLU()
    (4): Conv2d(128, 10, kernel_size=(1, 1), stride=(1, 1))
    (5): ReLU()
    (6): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  )
  (classifier): Sequential(
    (0): Linear(in_features=1000, out_features=512, bias=True)
    (1): BatchNorm1d(512, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (2): ReLU()
    (3): Linear(in_features=512, out_features=256, bias=True)
    (4): BatchNorm1d(256, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (5): ReLU()
    (6): Linear(in_features=256, out_features=10, bias=True)
  )
  (mix): Sequential(
    (0): Linear(in_features=20, out_features=50, bias=True)
    (1): ReLU()
    (2): Linear(in_features=50, out_features=20, bias=True)
  )
)"""


def test_structure_matches_the_original_printout():
    printout = repr(MNISTSumNet())
    # newer torch prints BatchNorm's `bias` flag, which the original (older torch) printout lacks
    printout = printout.replace("affine=True, bias=True,", "affine=True,")
    assert printout == "MNISTSumNet" + ORIGINAL_PRINTOUT


def test_output_shapes():
    model = MNISTSumNet().eval()
    digit, total = model(torch.randn(3, 1, 28, 28), F.one_hot(torch.tensor([0, 4, 9]), 10).float())
    assert digit.shape == (3, 10) and total.shape == (3, 20)


def test_sum_loss_trains_only_the_mix_head():
    """The mix head reads detached digit probabilities: the sum loss leaves the digit network alone."""
    model = MNISTSumNet()
    _, total = model(torch.randn(4, 1, 28, 28), F.one_hot(torch.tensor([1, 2, 3, 4]), 10).float())
    F.cross_entropy(total, torch.tensor([1, 5, 9, 12])).backward()
    assert all(p.grad is None for name, p in model.named_parameters() if not name.startswith("mix."))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.mix.parameters())


def test_forward_is_add_of_digit_logits():
    model = MNISTSumNet().eval()
    x, n = torch.randn(2, 1, 28, 28), F.one_hot(torch.tensor([3, 7]), 10).float()
    digit, total = model(x, n)
    assert torch.equal(total, model.add(digit, n))
