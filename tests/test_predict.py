"""Predictor: every input format and ink polarity reads the drawn digit; blank is None; bad input is ValueError."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_sum.predict import Prediction, Predictor
from mnist_sum.preprocess import MAX_PIXELS, stroke_width, to_input28

EXAMPLES = Path(__file__).parent.parent / "demo" / "examples"


@pytest.fixture(scope="module")
def predictor():
    return Predictor()


def example(digit: int) -> Image.Image:
    """The committed drawing of `digit`: black strokes on a white 400x400 RGB canvas."""
    return Image.open(EXAMPLES / f"digit_{digit}.png").convert("RGB")


def ink_of(digit: int) -> np.ndarray:
    """The example's ink as uint8, 255 = stroke."""
    return 255 - np.asarray(example(digit).convert("L"))


def formats(digit: int) -> dict:
    """The same drawing in every supported input format and polarity."""
    ink = ink_of(digit)
    zeros, full = np.zeros_like(ink), np.full_like(ink, 255)
    dark_on_light = 255 - ink
    rgba_opaque = np.dstack([dark_on_light] * 3 + [full])
    alpha_only = np.dstack([zeros] * 3 + [ink])
    paper = np.array([246, 238, 220], np.float32)  # off-white
    pen = np.array([30, 60, 170], np.float32)  # blue
    t = ink[..., None] / 255
    coloured = (paper * (1 - t) + pen * t).astype(np.uint8)
    return {
        "PIL L dark on light": Image.fromarray(dark_on_light),
        "PIL L light on dark": Image.fromarray(ink),
        "PIL LA transparent": Image.fromarray(np.dstack([zeros, ink])),
        "PIL RGB": example(digit),
        "PIL RGBA opaque": Image.fromarray(rgba_opaque),
        "PIL RGBA alpha only": Image.fromarray(alpha_only),
        "PIL P": example(digit).convert("P"),
        "PIL 1 (bilevel)": Image.fromarray(ink).convert("1"),
        "numpy (H,W) light on dark": ink,
        "numpy (H,W,3) coloured ink on off-white": coloured,
        "numpy (H,W,4) Sketchpad composite": rgba_opaque,
        "numpy (H,W,4) alpha only": alpha_only,
        "file path": str(EXAMPLES / f"digit_{digit}.png"),
        "Sketchpad dict": {"background": np.dstack([full] * 3 + [full]), "layers": [alpha_only],
                           "composite": rgba_opaque},
        "Sketchpad dict, layers only": {"background": None, "layers": [zeros_rgba(ink), alpha_only],
                                        "composite": None},
        "ImageEditor dict, background only": {"background": Image.fromarray(coloured), "layers": [],
                                              "composite": None},
    }


def zeros_rgba(like: np.ndarray) -> np.ndarray:
    """An empty transparent layer the size of `like`."""
    return np.zeros(like.shape + (4,), np.uint8)


@pytest.mark.parametrize("digit", [7, 3])
def test_every_format_and_polarity_reads_the_drawn_digit(predictor, digit):
    for name, image in formats(digit).items():
        p = predictor.predict(image, 4)
        assert isinstance(p, Prediction), name
        assert (p.digit, p.sum) == (digit, digit + 4), name


@pytest.mark.parametrize("digit", range(10))
def test_each_demo_example_is_read_correctly(predictor, digit):
    for number in (0, 9 - digit, 9):
        p = predictor.predict(example(digit), number)
        assert (p.digit, p.sum) == (digit, digit + number)


@pytest.mark.parametrize("orientation", [6, 8])
def test_a_phone_photo_is_read_as_a_viewer_shows_it(predictor, phone_photos, orientation):
    """Stored turned, with an EXIF orientation: read upright whether given as a path or as an opened image."""
    for digit in range(10):
        path = phone_photos[digit, orientation]
        assert Image.open(path).getexif()[0x0112] == orientation  # 0x0112: the orientation tag
        from_path, from_image = predictor.predict(path, 0), predictor.predict(Image.open(path), 0)
        assert (from_path.digit, from_image.digit) == (digit, digit), path.name
        assert np.array_equal(from_path.input28, from_image.input28)


@pytest.mark.parametrize("pen", [3, 12, 40])
@pytest.mark.parametrize("side", [280, 800])
def test_pen_width_and_canvas_size_do_not_change_the_input_stroke(pen, side):
    """A thin pen, a fat brush, a small or large canvas: the network sees MNIST's stroke width (~2.4 px)."""
    from PIL import ImageDraw

    canvas = Image.new("RGB", (side, side), "white")
    s = side / 400
    ImageDraw.Draw(canvas).line([(120 * s, 90 * s), (280 * s, 90 * s), (170 * s, 330 * s)], fill="black",
                                width=max(1, round(pen * s)), joint="curve")
    seen = to_input28(canvas)
    assert 1.8 <= stroke_width(seen) <= 3.2
    assert seen.max() > 0.95  # solid strokes, not faint ones


def test_probabilities_are_distributions_that_agree_with_the_answer(predictor):
    p = predictor.predict(example(2), 5)
    assert len(p.digit_probs) == 10 and len(p.sum_probs) == 19
    assert abs(sum(p.digit_probs) - 1) < 1e-5 and abs(sum(p.sum_probs) - 1) < 1e-5
    assert p.digit == int(np.argmax(p.digit_probs)) and p.sum == int(np.argmax(p.sum_probs))
    assert p.input28.shape == (28, 28) and p.input28.dtype == np.uint8


@pytest.mark.parametrize("blank", [
    None, {}, {"background": None, "layers": [], "composite": None},
    {"background": None, "layers": [np.zeros((400, 400, 4), np.uint8)], "composite": np.zeros((0, 0, 4), np.uint8)},
    Image.new("RGBA", (800, 800), "white"), Image.new("RGB", (300, 200), (40, 90, 200)), np.zeros((28, 28), np.uint8),
    np.zeros((0, 0, 3), np.uint8),
], ids=["None", "empty dict", "empty editor", "empty layer", "white canvas", "one colour", "black", "zero size"])
def test_blank_input_returns_none(predictor, blank):
    assert predictor.predict(blank, 3) is None


def test_a_few_stray_pixels_are_blank(predictor):
    canvas = np.full((800, 800, 3), 255, np.uint8)
    canvas[100:103, 100:103] = 0  # a 3x3 speck
    canvas[700, 650] = 0
    assert predictor.predict(canvas, 3) is None


@pytest.mark.parametrize("number", [True, False, 2.5, -1, 10, float("nan"), "3", None])
def test_bad_number_raises_value_error(predictor, number):
    with pytest.raises(ValueError, match="number"):
        predictor.predict(example(1), number)


def test_integral_numbers_of_any_type_are_accepted(predictor):
    for number in (3, 3.0, np.int64(3)):
        assert predictor.predict(example(1), number).sum == 4


def test_oversized_images_raise_before_allocating():
    side = int(MAX_PIXELS ** 0.5) + 1
    huge_view = np.broadcast_to(np.uint8(0), (side, side))  # no memory behind it
    with pytest.raises(ValueError, match="too large"):
        to_input28(huge_view)
    with pytest.raises(ValueError, match="too large"):
        to_input28(Image.new("1", (side, side)))


def test_predict_is_inference_only_and_loads_nothing(predictor, monkeypatch):
    import mnist_sum.weights

    drawing = np.asarray(example(6))
    monkeypatch.setattr(mnist_sum.weights, "load_state_dict", lambda *a: pytest.fail("loaded weights per call"))
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("opened a file per call"))
    modes = []
    handle = predictor.model.register_forward_hook(lambda *a: modes.append(torch.is_inference_mode_enabled()))
    try:
        predictor.predict(drawing, 1)
    finally:
        handle.remove()
    assert modes == [True]


IMAGE_MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I", "F", "CMYK", "I;16"]


@st.composite
def any_image(draw):
    """Random arrays and PIL images of random modes, shapes and sizes."""
    h, w = draw(st.integers(0, 48)), draw(st.integers(0, 48))
    channels = draw(st.sampled_from([None, 1, 2, 3, 4, 5]))
    shape = (h, w) if channels is None else (h, w, channels)
    kind = draw(st.sampled_from(["noise", "constant", "sparse"]))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    arr = {"noise": lambda: rng.integers(0, 256, shape),
           "constant": lambda: np.full(shape, rng.integers(0, 256)),
           "sparse": lambda: (rng.random(shape) < 0.05) * 255}[kind]().astype(np.uint8)
    dtype = draw(st.sampled_from([np.uint8, np.uint8, np.float32, np.int64, bool]))
    if draw(st.booleans()) and channels in (None, 3, 4) and h and w:
        mode = draw(st.sampled_from(IMAGE_MODES))
        if mode == "I;16":
            return Image.fromarray(arr.reshape(h, w, -1)[..., 0].astype(np.uint16))
        return Image.fromarray(arr).convert(mode)
    return arr.astype(dtype)


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 150)), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(image=any_image(), number=st.one_of(st.integers(-2, 11), st.floats(allow_nan=True), st.booleans()))
def test_any_input_gives_prediction_none_or_value_error(predictor, image, number):
    try:
        result = predictor.predict(image, number)
    except ValueError:
        return
    assert result is None or isinstance(result, Prediction)
    if result is not None:
        assert 0 <= result.digit <= 9 and 0 <= result.sum <= 18


# --- not a digit --------------------------------------------------------------------------------------------

def test_is_digit_compares_the_top_probability_with_the_weights_threshold(predictor, monkeypatch):
    p = predictor.predict(example(7), 3)
    assert p.digit_score == pytest.approx(max(p.digit_probs))
    for threshold, expected in ((None, True), (p.digit_score - 1e-6, True), (p.digit_score + 1e-6, False)):
        monkeypatch.setattr(predictor, "threshold", threshold)
        q = predictor.predict(example(7), 3)
        assert q.is_digit is expected and (q.digit, q.sum) == (7, 10)  # the best guesses stay either way


def test_weights_without_a_threshold_call_every_drawing_a_digit(tmp_path):
    from mnist_sum.model import MNISTSumNet
    from mnist_sum.weights import save_weights

    path = save_weights(MNISTSumNet(), tmp_path / "plain.safetensors")
    assert Predictor(path).threshold is None
    path = save_weights(MNISTSumNet(), tmp_path / "with.safetensors", not_a_digit={"threshold": 0.5})
    assert Predictor(path).threshold == 0.5


def test_is_digit_on_clear_cases(predictor):
    """A drawn example digit is a digit; an "H" and a spiral, drawn the way the pad sends them, are not."""
    from mnist_sum.pen import render
    from mnist_sum.synthetic import nondigit_strokes

    assert predictor.threshold is not None, "the shipped handwriting model carries a not-a-digit threshold"
    for digit in range(10):
        p = predictor.predict(example(digit), 3)
        assert p.digit == digit and p.is_digit
    rng = np.random.default_rng(0)
    for kind in ("letter_h", "spiral"):
        for _ in range(3):
            p = predictor.predict(render(nondigit_strokes(rng, kind), 400, rng), 3)
            assert p is not None and not p.is_digit, (kind, p.digit, p.digit_score, predictor.threshold)
