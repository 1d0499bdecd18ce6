"""The MNIST-sum data set: an MNIST image, a random number 0-9 (one-hot), the digit and their sum.

Everything is held as tensors: the training loop slices batches out of `images` and `numbers` and never
decodes a PIL image per sample. `augment` is the batched, tensor-only augmentation used in training.
"""

import math
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.datasets import MNIST
from tqdm import tqdm

from .model import normalize
from .pen import DIGIT_LIKE_LETTERS, load_pen, nondigit_strokes, render_inputs28, styled, writer_jitter
from .preprocess import to_input28
from .sketches import centre_line, draw_digit

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


# --- real pen-written digits and things that are not digits ------------------------------------------------

NOT_A_DIGIT = -1  # the target of a drawing that is not a digit: trained toward the uniform distribution
PEN_DIR = Path(__file__).resolve().parents[1] / "pendigits"  # the UNIPEN strokes shipped with the repository
CALIBRATION_WRITERS = 8  # every 8th pen writer (and every 8th letter) is kept out of training


def calibration_writers(writer: np.ndarray) -> np.ndarray:
    """Which pen digits (by writer) are held aside for calibrating the not-a-digit threshold: a (N,) mask."""
    return writer % CALIBRATION_WRITERS == 0


def kept_out(pen) -> np.ndarray:
    """The items of a PenSet that no run trains on, a (N,) mask: the calibration writers' digits, and every
    8th letter (letters carry no writer). Weights trained on every source are measured on these."""
    if pen.writer is not None:
        return calibration_writers(pen.writer)
    return np.arange(len(pen)) % CALIBRATION_WRITERS == 0


def pen_training_set(pen_dir, holdout: tuple[str, ...] = (), copies: int = 2, n_shapes: int = 6000, seed: int = 0,
                     workers: int = 2, jittered: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pen digits (each drawn `copies` times on random canvases, `jittered` more times as another hand might
    write it (`pen.writer_jitter`), plus a `pen.styled` variant of each 0, 1, 5 and 7, jittered ones too:
    slashed, flagged, crossed, bar apart), letters that do not look like digits and synthetic non-digits
    (spirals, smileys, stars, ...), all read by the predictor's own preprocessing.

    Sources in `holdout` and the `kept_out` items are left out. Returns pixels (M, 1, 28, 28) float32 in
    [0, 1] and targets (M,) int64: the digit, or NOT_A_DIGIT."""
    digits, letters = load_pen(pen_dir, "digits"), load_pen(pen_dir, "letters")
    digits = digits.subset(~np.isin(digits.source, holdout) & ~kept_out(digits))
    letters = letters.subset(~np.isin(letters.source, holdout) & ~kept_out(letters)
                             & ~np.isin(letters.labels, sorted(DIGIT_LIKE_LETTERS)))
    rng = np.random.default_rng(seed)
    others = [writer_jitter(strokes, rng) for _ in range(jittered) for strokes in digits.items]
    labels = np.tile(digits.labels, 1 + jittered)
    variants = [(v, d) for strokes, d in zip(digits.items + others, labels.tolist())
                if (v := styled(strokes, d, rng)) is not None]
    shapes = [nondigit_strokes(rng) for _ in range(n_shapes)]
    items = digits.items * copies + others + [v for v, _ in variants] + letters.items + shapes
    targets = np.concatenate([np.tile(digits.labels, copies + jittered), np.array([d for _, d in variants], int),
                              np.full(len(letters) + n_shapes, NOT_A_DIGIT)])
    pixels, kept = render_all(items, seed, workers)
    return torch.from_numpy(pixels).unsqueeze(1), torch.from_numpy(targets[kept]).long()


def render_all(items: list, seed: int, workers: int, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """`pen.render_inputs28` over many items in `workers` processes, chunk by chunk, each chunk with its own
    seed (the result does not depend on `workers`); (K, 28, 28) float32 inputs and the (K,) kept indices."""
    return _in_chunks(_render_chunk, items, seed, workers, chunk, "drawing pen data")


def _in_chunks(job_fn, items, seed: int, workers: int, chunk: int, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """job_fn((items[i:i + chunk], seed_i)) -> (inputs, kept within the chunk), run over every chunk in `workers`
    processes; the inputs joined, and the kept positions as indices into `items`."""
    starts = range(0, len(items), chunk)
    jobs = [(items[i:i + chunk], seed * 100_003 + i) for i in starts]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(tqdm(pool.map(job_fn, jobs), total=len(jobs), desc=desc, leave=False))
    return (np.concatenate([r[0] for r in results]),
            np.concatenate([r[1] + start for r, start in zip(results, starts)]))


def _render_chunk(job: tuple) -> tuple:
    """One render_all chunk (a top-level function, so that worker processes can run it)."""
    items, seed = job
    return render_inputs28(items, np.random.default_rng(seed))


def redrawn_mnist(pixels: torch.Tensor, n: int, seed: int = 0, workers: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """n MNIST training digits re-drawn as pen strokes (centre line, round pen of random width, random canvas,
    size and place, as `sketches` draws the test digits, in the pad's format) and read back by the predictor's
    preprocessing: the thin, even strokes of a sketch pad, which MNIST's scanned ink lacks.

    pixels: (N, 1, 28, 28) in [0, 1] (the training split only). Returns the (K, 1, 28, 28) inputs and the (K,)
    indices into pixels they come from (a drawing the reader calls blank is dropped)."""
    order = torch.randperm(len(pixels), generator=torch.Generator().manual_seed(seed))[:n].numpy()
    inputs, kept = _in_chunks(_redraw_chunk, pixels[order, 0].numpy(), seed, workers, 500, "re-drawing MNIST")
    return torch.from_numpy(inputs).unsqueeze(1), torch.from_numpy(order[kept]).long()


def _redraw_chunk(job: tuple) -> tuple[np.ndarray, np.ndarray]:
    """One redrawn_mnist chunk: (K, 28, 28) inputs and the (K,) kept positions within the chunk."""
    digits, seed = job
    rng = np.random.default_rng(seed)
    inputs, kept = [], []
    for i, image in enumerate(digits):
        points, links = centre_line(image)
        if not len(points):
            continue
        # the pad's own format: the reader turns every format into the same ink
        drawing, _, _ = draw_digit(points, links, "dark_on_light", rng)
        ink = to_input28(drawing)
        if ink is not None:
            inputs.append(ink)
            kept.append(i)
    return np.asarray(inputs, np.float32).reshape(-1, 28, 28), np.asarray(kept, int)
