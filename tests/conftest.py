"""Shared fixtures: the app served in-process, once per test session, on a free local port."""

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # test runs send no telemetry


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_url():
    """URL of the app, launched in this process with its production limits (app.launch); closed at the end."""
    import app

    port = free_port()
    app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.demo.close()


# EXIF orientation -> how the stored pixels are turned from what a viewer shows (the viewer undoes it):
# 6 is "turn 90 degrees clockwise to show", a phone held upright; 8 the other way round.
STORED_TURNED = {6: "ROTATE_90", 8: "ROTATE_270"}


@pytest.fixture(scope="session")
def phone_photos(tmp_path_factory) -> dict:
    """{(digit, orientation): path} of JPEGs, as a phone stores them, of each demo/examples digit: the pixels
    turned, the EXIF orientation (6 or 8) saying how to show them upright."""
    from PIL import ExifTags, Image

    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo", "examples")
    folder = tmp_path_factory.mktemp("phone")
    photos = {}
    for digit in range(10):
        shown = Image.open(os.path.join(examples, f"digit_{digit}.png")).convert("RGB")
        for orientation, turn in STORED_TURNED.items():
            exif = Image.Exif()
            exif[ExifTags.Base.Orientation] = orientation
            path = folder / f"digit_{digit}_orientation_{orientation}.jpg"
            shown.transpose(Image.Transpose[turn]).save(path, exif=exif, quality=90)
            photos[digit, orientation] = path
    return photos


class NotADigitPredictor:
    """A stand-in for app.PREDICTOR that reads every drawing as 'not a digit', best guess 4 (55 %)."""

    def predict(self, image, number):
        """A Prediction with is_digit=False, whatever is drawn; None for a blank drawing, as the real one."""
        import numpy as np

        from mnist_sum.preprocess import to_input28
        from mnist_sum.predict import Prediction, check_number

        number = check_number(number)
        ink = to_input28(image)
        if ink is None:
            return None
        digit_probs = [0.05] * 10
        digit_probs[4] = 0.55
        sum_probs = [0.0] * 19
        sum_probs[4 + number] = 1.0
        return Prediction(digit=4, sum=4 + number, digit_probs=digit_probs, sum_probs=sum_probs,
                          input28=(ink * 255).round().astype(np.uint8), is_digit=False)


@pytest.fixture
def not_a_digit_predictor(monkeypatch):
    """The app (and the in-process server) reads every drawing as 'not a digit' during the test."""
    import app

    monkeypatch.setattr(app, "PREDICTOR", NotADigitPredictor())


def mnist_root():
    """Folder holding a full MNIST copy (MNIST/raw/): $MNIST_SUM_DATA, else ../shared/mnist; None if absent."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for root in (os.environ.get("MNIST_SUM_DATA"), os.path.join(here, "..", "shared", "mnist")):
        if root and os.path.isfile(os.path.join(root, "MNIST", "raw", "t10k-images-idx3-ubyte")):
            return root
    return None


@pytest.fixture(scope="session")
def mnist_dir():
    """The full MNIST copy, or skip: these tests need the real test set."""
    root = mnist_root()
    if root is None:
        pytest.skip("full MNIST not found: set MNIST_SUM_DATA or provide ../shared/mnist/MNIST/raw/")
    return root


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    """The real MNIST test split as an MNISTSum, loaded once."""
    from mnist_sum.data import open_split

    return open_split(mnist_dir, train=False, download=False)


def write_idx(folder, n_train: int = 96, n_test: int = 32, seed: int = 0):
    """Write a tiny MNIST in the real IDX format (big-endian headers) under folder/MNIST/raw/."""
    import struct

    import numpy as np

    raw = os.path.join(folder, "MNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = np.zeros((n, 28, 28), np.uint8)
        for i, d in enumerate(labels):  # a bar whose position encodes the label: learnable, not blank
            images[i, 4:24, 2 + 2 * d:5 + 2 * d] = 255
        images = np.clip(images.astype(int) + rng.integers(0, 30, images.shape), 0, 255).astype(np.uint8)
        with open(os.path.join(raw, f"{prefix}-images-idx3-ubyte"), "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        with open(os.path.join(raw, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
            f.write(struct.pack(">II", 2049, n) + labels.tobytes())
    return folder


@pytest.fixture
def tiny_mnist(tmp_path):
    """A folder with a tiny IDX-format MNIST (96 train, 32 test images) for smoke runs."""
    return str(write_idx(tmp_path / "data"))


BROWSER_TIMEOUT_MS = 60_000  # a reading is milliseconds, but a page load on a busy 2-core CI box can take long


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, for the browser tests; they are skipped when it is not installed."""
    from benchmarks.pen_traces import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found; install Debian's chromium package to run the browser tests")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=BROWSER_TIMEOUT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
