"""The MNIST-sum data set: an MNIST image, a random number 0-9 (one-hot), the digit and their sum.

Everything is held as tensors: the training loop slices batches out of `images` and `numbers` and never
decodes a PIL image per sample. `augment` is the batched, tensor-only augmentation used in training.
"""

import math
import urllib.error
import urllib.request
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.datasets import MNIST

from .model import normalize

TEST_NUMBER_SEED = 20_240_917  # the test split's numbers are fixed, so every evaluation sees the same pairs
DOWNLOAD_TIMEOUT_S = 10  # per mirror; an offline machine fails at once, a slow one gets this long
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class DataNotFoundError(RuntimeError):
    """MNIST is neither in the data folder nor downloadable; the message says what to provide."""


class MNISTSum(MNIST):
    """MNIST with a random number per image: `ds[i]` is (image, one-hot number, digit, digit + number).

    image is a (1, 28, 28) float32 normalized tensor, number a (10,) float32 one-hot; digit and sum are ints.
    The training split draws fresh numbers per epoch (`set_epoch`); the test split has one fixed number
    per index. Files live in torchvision's layout, `root/MNIST/raw/`, shared with plain `MNIST`.
    """

    def __init__(self, root, train: bool = True, transform=None, target_transform=None, download: bool = False,
                 seed: int = 0):
        super().__init__(root, train=train, transform=transform, target_transform=target_transform,
                         download=download)
        self.seed = seed
        self.pixels = self.data.unsqueeze(1).float().div_(255)  # (N, 1, 28, 28) in [0, 1]
        self.images = normalize(self.pixels)  # (N, 1, 28, 28)
        self.numbers = torch.empty(0, dtype=torch.long)
        self.set_epoch(0)

    # torchvision derives the folder from the class name; share the plain MNIST files instead.
    @property
    def raw_folder(self) -> str:
        return str(Path(self.root) / "MNIST" / "raw")

    @property
    def processed_folder(self) -> str:
        return str(Path(self.root) / "MNIST" / "processed")

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's numbers 0-9 (training split); the test split keeps its fixed numbers."""
        seed = self.seed * 1_000_003 + epoch if self.train else TEST_NUMBER_SEED
        generator = torch.Generator().manual_seed(seed)
        self.numbers = torch.randint(0, 10, (len(self.data),), generator=generator)

    @property
    def sums(self) -> torch.Tensor:
        """digit + number for every index, (N,) int64."""
        return self.targets + self.numbers

    def __getitem__(self, index: int):
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        number = int(self.numbers[index])
        digit = int(self.targets[index])
        if self.target_transform is not None:
            digit = self.target_transform(digit)
        return image, F.one_hot(torch.tensor(number), 10).float(), digit, digit + number


def one_hot(numbers: torch.Tensor) -> torch.Tensor:
    """(B,) int64 numbers 0-9 -> (B, 10) float32 one-hot."""
    return F.one_hot(numbers, 10).float()


def open_split(data_dir, train: bool, seed: int = 0, download: bool = True) -> MNISTSum:
    """Load a split from data_dir, downloading once if missing; raise DataNotFoundError with what to provide."""
    try:
        return MNISTSum(data_dir, train=train, seed=seed, download=False)
    except RuntimeError:
        pass  # not there yet
    why = _download(data_dir) if download else "downloading was not asked for"
    if why is None:
        return MNISTSum(data_dir, train=train, seed=seed, download=False)
    raw = Path(data_dir) / "MNIST" / "raw"
    raise DataNotFoundError(
        f"MNIST not found in {raw}/ and it could not be downloaded ({why}).\n"
        f"Provide the four files {', '.join(MNIST_FILES)} (uncompressed, or as .gz) in {raw}/,\n"
        f"or point --data-dir at a folder that has MNIST/raw/ with them."
    )


def _download(data_dir) -> str | None:
    """Download MNIST into data_dir/MNIST/raw/; None on success, else why it failed, in a few words.

    A mirror is asked first, so that an offline machine gets its reason in one line and no empty folders."""
    reason = "no mirror answered"
    for mirror in MNIST.mirrors:
        try:
            request = urllib.request.Request(mirror + MNIST.resources[0][0], method="HEAD")
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S):
                break
        except Exception as e:  # noqa: BLE001 - any failure is a reason to try the next mirror
            reason = _why(e)
    else:
        return reason
    created = [p for p in (Path(data_dir), Path(data_dir) / "MNIST", Path(data_dir) / "MNIST" / "raw") if not p.exists()]
    try:
        MNIST(data_dir, train=True, download=True)  # torchvision's download: every file, md5-checked
        return None
    except Exception as e:  # noqa: BLE001 - torchvision raises several kinds (URLError, RuntimeError, OSError)
        for folder in reversed(created):  # leave no empty folders behind
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        return _why(e)


def _why(error: Exception) -> str:
    """An exception from a download as a short clause: no network, an HTTP status, or its first line."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP error {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"no network: {error.reason}"
    if isinstance(error, OSError):  # TimeoutError, ConnectionError and the like
        return f"no network: {error}"
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def augment(pixels: torch.Tensor, generator: torch.Generator, max_rotation: float = 12.0,
            scale_range: tuple[float, float] = (0.85, 1.1), max_shift: float = 2.0,
            stroke_p: float = 0.5) -> torch.Tensor:
    """Random affine warp and stroke thickening/thinning of a batch: (B, 1, 28, 28) in [0, 1] -> same.

    All batched tensor ops. The warp samples at 56x56 so that a 3x3 max/min filter there changes the
    stroke width by about half an MNIST pixel per side; averaging back to 28x28 anti-aliases the result.
    """
    b = pixels.shape[0]
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(max_rotation)
    scale = scale_range[0] + torch.rand(b, generator=generator) * (scale_range[1] - scale_range[0])
    shear = (torch.rand(b, generator=generator) * 2 - 1) * 0.15
    shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * (max_shift * 2 / 28)  # grid units are half-widths
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin + shear, shift[:, 0]], 1),
        torch.stack([sin, cos, shift[:, 1]], 1),
    ], 1)  # (B, 2, 3) maps output coordinates to input coordinates
    grid = F.affine_grid(theta, (b, 1, 56, 56), align_corners=False)
    big = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (B,1,56,56)

    # stroke width: 0 = keep, 1 = thicker, 2 = much thicker, 3 = thinner
    choice = torch.multinomial(torch.tensor([1 - stroke_p, stroke_p * 0.45, stroke_p * 0.2, stroke_p * 0.35]),
                               b, replacement=True, generator=generator)
    thick = _dilate3(big)
    thicker = _dilate3(thick)
    thinner = -_dilate3(-big)
    stacked = torch.stack([big, thick, thicker, thinner], 0)  # (4, B, 1, 56, 56)
    big = stacked[choice, torch.arange(b)]
    return F.avg_pool2d(big, 2)  # (B, 1, 28, 28)


def _dilate3(x: torch.Tensor) -> torch.Tensor:
    """3x3 max filter of (B, 1, H, W), zero-padded, as separable shifted maxima (max_pool2d with stride 1
    is several times slower on the CPU)."""
    p = F.pad(x, (1, 1, 1, 1))
    rows = torch.maximum(torch.maximum(p[..., :-2, :], p[..., 1:-1, :]), p[..., 2:, :])  # (B, 1, H, W + 2)
    return torch.maximum(torch.maximum(rows[..., :-2], rows[..., 1:-1]), rows[..., 2:])
