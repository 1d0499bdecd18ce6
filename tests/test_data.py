"""The MNIST-sum data contract: sum == digit + number, all ten numbers, stable test numbers."""

import numpy as np
import torch

from mnist_sum import MNISTSum
from mnist_sum.data import DataNotFoundError, augment, open_split
import pytest


def test_items_are_image_onehot_digit_sum(tiny_mnist):
    ds = MNISTSum(tiny_mnist, train=True)
    image, number, digit, total = ds[5]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert number.shape == (10,) and number.dtype == torch.float32 and number.sum() == 1
    assert isinstance(digit, int) and isinstance(total, int)
    assert digit == int(ds.targets[5])
    assert total == digit + int(number.argmax())


def test_sum_is_digit_plus_number_everywhere(mnist_test):
    assert torch.equal(mnist_test.sums, mnist_test.targets + mnist_test.numbers)
    for i in (0, 1, 4321, 9999):
        _, number, digit, total = mnist_test[i]
        assert total == digit + int(number.argmax())


def test_all_ten_numbers_occur_evenly(mnist_test):
    counts = torch.bincount(mnist_test.numbers, minlength=10)
    assert len(counts) == 10 and counts.min() > 800  # 10,000 draws: each number ~1,000 times, 9 included


def test_test_numbers_are_fixed_across_loads_and_epochs(mnist_dir, mnist_test):
    again = open_split(mnist_dir, train=False, seed=123, download=False)
    again.set_epoch(3)
    assert torch.equal(again.numbers, mnist_test.numbers)


def test_training_numbers_change_every_epoch_and_repeat_with_the_seed(tiny_mnist):
    ds = MNISTSum(tiny_mnist, train=True, seed=1)
    first = ds.numbers.clone()
    ds.set_epoch(1)
    assert not torch.equal(first, ds.numbers)
    ds.set_epoch(0)
    assert torch.equal(first, ds.numbers)


def test_images_are_normalized_tensors_in_mnist_layout(tiny_mnist):
    ds = MNISTSum(tiny_mnist, train=False)
    assert ds.images.shape == (32, 1, 28, 28)
    raw = ds.data[3].float() / 255
    assert torch.allclose(ds.images[3, 0] * 0.3081 + 0.1307, raw, atol=1e-6)


def test_missing_data_names_the_folder_and_files(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        open_split(tmp_path, train=True, download=False)
    message = str(e.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message


def test_augment_keeps_shape_range_and_is_seeded(tiny_mnist):
    pixels = MNISTSum(tiny_mnist).pixels[:16]
    a = augment(pixels, torch.Generator().manual_seed(0))
    b = augment(pixels, torch.Generator().manual_seed(0))
    assert a.shape == pixels.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, pixels)


def test_redrawn_mnist_digits_are_centred_ink_that_the_model_still_reads(mnist_test):
    """Re-drawn as pen strokes, a digit stays itself: MNIST-style ink (light on dark, centred by mass), the
    returned indices name the source digits, the same seed gives the same drawings, and the shipped model
    reads them as their labels."""
    from mnist_sum import load_model
    from mnist_sum.data import one_hot
    from mnist_sum.pen_training import redrawn_mnist
    from mnist_sum.model import normalize

    pixels = mnist_test.pixels[:200]
    x, kept = redrawn_mnist(pixels, 40, seed=3, workers=1)
    again, kept_again = redrawn_mnist(pixels, 40, seed=3, workers=1)
    assert torch.equal(x, again) and torch.equal(kept, kept_again)
    assert x.shape == (len(kept), 1, 28, 28) and len(kept) >= 38 and len(set(kept.tolist())) == len(kept)
    assert x.min() >= 0 and x.max() <= 1
    grid = torch.arange(28.0)
    mass = x.sum((1, 2, 3))
    centre_y, centre_x = (x.sum((1, 3)) @ grid) / mass, (x.sum((1, 2)) @ grid) / mass
    assert (centre_y - 13.5).abs().max() < 1.5 and (centre_x - 13.5).abs().max() < 1.5  # centred by mass, as MNIST
    assert not torch.equal(x, pixels[kept])  # a new drawing, not the scanned image
    with torch.inference_mode():
        logits, _ = load_model()(normalize(x), one_hot(torch.zeros(len(x), dtype=torch.long)))
    assert (logits.argmax(1) == mnist_test.targets[kept]).float().mean() >= 0.9


def test_kept_out_items_are_every_8th_writer_or_letter():
    from types import SimpleNamespace

    from mnist_sum.pen import kept_out

    digits = SimpleNamespace(writer=np.array([0, 1, 8, 9, 16, 3]), __len__=lambda: 6)
    assert kept_out(digits).tolist() == [True, False, True, False, True, False]
    letters = type("Letters", (), {"writer": None, "__len__": lambda self: 17})()
    assert np.flatnonzero(kept_out(letters)).tolist() == [0, 8, 16]
