"""Predictor.explain (mnist_sum/explanation.py) and its figure (python -m mnist_sum.explain): every field is what
the network itself computes, checked against PyTorch run independently: hooks of the test's own on a model
loaded apart, the full forward for each number, the mix head on each one-hot pair."""

import threading
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mnist_sum import Explanation, Predictor, pen
from mnist_sum.explain import main as explain_main
from mnist_sum.explanation import captured
from mnist_sum.model import MAX_SUM, normalize
from mnist_sum.preprocess import to_input28
from mnist_sum.synthetic import nondigit_strokes
from mnist_sum.weights import SHIPPED_MODELS, SHIPPED_WEIGHTS, load_model

EXAMPLES = Path(__file__).parent.parent / "demo" / "examples"
SHAPES = {"conv1": (64, 24, 24), "conv2": (128, 20, 20), "conv3": (10, 20, 20)}
ATOL = 1e-5


@pytest.fixture(scope="module")
def predictor():
    return Predictor()


@pytest.fixture(scope="module")
def model():
    """The served weights in a model of the test's own (not the Predictor's), eval mode."""
    return load_model(SHIPPED_WEIGHTS).eval()


@pytest.fixture(scope="module")
def inputs() -> list[tuple[str, np.ndarray, int]]:
    """11 (name, (28, 28) float32 ink, number): the example digits, pen drawings (a digit, a non-digit) and
    random ink, each with its own number."""
    rng = np.random.default_rng(7)
    drawings = [(f"digit_{d}", Image.open(EXAMPLES / f"digit_{d}.png")) for d in (0, 1, 2, 3, 5, 7, 9)]
    seven = [np.array([[0, 0], [60, 0], [25, 100]])]
    drawings += [("pen-seven-400", pen.render(seven, 400, rng)), ("pen-seven-800", pen.render(seven, 800, rng)),
                 ("pen-spiral", pen.render(nondigit_strokes(rng, "spiral"), 400, rng))]
    out = [(name, to_input28(image), i % 10) for i, (name, image) in enumerate(drawings)]
    out.append(("random-ink", rng.random((28, 28), dtype=np.float32) ** 4, 4))
    assert all(x is not None and x.dtype == np.float32 for _, x, _ in out)
    return out


def one_hot(n: int, count: int = 1) -> torch.Tensor:
    """(count, 10) one-hot rows of n."""
    return torch.eye(10)[[n] * count]


def test_feature_maps_are_the_activations_after_each_relu(predictor, model, inputs):
    for name, x, number in inputs:
        e = predictor.explain28(x, number)
        seen = {}
        hooks = [model.conv[i].register_forward_hook(lambda m, a, out, key=key: seen.__setitem__(key, out[0].numpy()))
                 for key, i in (("conv1", 1), ("conv2", 3), ("conv3", 5))]
        try:
            with torch.inference_mode():
                model(normalize(torch.from_numpy(x)[None, None]), one_hot(number))
        finally:
            for h in hooks:
                h.remove()
        assert list(e.feature_maps) == ["conv1", "conv2", "conv3"]
        for key, maps in e.feature_maps.items():
            assert maps.shape == SHAPES[key] and maps.dtype == np.float32, (name, key)
            assert maps.min() >= 0, (name, key)  # after the ReLU
            np.testing.assert_allclose(maps, seen[key], atol=ATOL, err_msg=f"{name} {key}")
        # they are the activations behind the prediction: conv3's maps, pooled, give its digit probabilities
        with torch.inference_mode():
            features = F.max_pool2d(torch.from_numpy(e.feature_maps["conv3"].copy())[None], 2).flatten(1)
            digit_probs = torch.softmax(model.classifier(features)[0], 0).numpy()
        np.testing.assert_allclose(digit_probs, e.prediction.digit_probs, atol=ATOL, err_msg=name)


def test_what_if_is_the_full_network_with_each_number(predictor, model, inputs):
    for name, x, number in inputs:
        e = predictor.explain28(x, number)
        with torch.inference_mode():
            images = normalize(torch.from_numpy(x)[None, None]).expand(10, 1, 28, 28)
            _, sum_logits = model(images, torch.eye(10))  # row n: the whole network with number n
            truth = torch.softmax(sum_logits[:, :MAX_SUM + 1], 1).numpy()
        assert e.what_if_probs.shape == (10, MAX_SUM + 1) and e.what_if_probs.dtype == np.float32
        np.testing.assert_allclose(e.what_if_probs, truth, atol=ATOL, err_msg=name)
        assert e.what_if == truth.argmax(1).tolist() and all(type(s) is int for s in e.what_if), name
        assert e.what_if[number] == e.prediction.sum, name
        assert e.sum_probs.tolist() == e.prediction.sum_probs, name  # the very same numbers, not recomputed
        np.testing.assert_allclose(e.what_if_probs[number], e.sum_probs, atol=ATOL, err_msg=name)


def test_adder_is_the_digit_probabilities_shifted_by_the_number(predictor, inputs):
    for name, x, number in inputs:
        e = predictor.explain28(x, number)
        assert e.adder_probs.shape == (MAX_SUM + 1,) and e.adder_probs.dtype == np.float32
        assert e.adder_probs.sum() == pytest.approx(1, abs=1e-5), name
        for s in range(MAX_SUM + 1):
            expected = e.prediction.digit_probs[s - number] if 0 <= s - number <= 9 else 0.0
            assert e.adder_probs[s] == pytest.approx(expected, abs=1e-7), (name, s)


def test_sum_table_is_the_mix_head_on_one_hot_pairs(predictor, model):
    e = predictor.explain(EXAMPLES / "digit_4.png", 3)
    assert e.sum_table.shape == e.sum_table_probs.shape == (10, 10)
    assert e.sum_table.dtype.kind == "i" and e.sum_table_probs.dtype == np.float32
    with torch.inference_mode():
        for d in range(10):
            for n in range(10):
                probs = torch.softmax(model.mix(torch.cat([one_hot(d), one_hot(n)], 1))[0, :MAX_SUM + 1], 0)
                assert e.sum_table[d, n] == int(probs.argmax()), (d, n)
                assert e.sum_table_probs[d, n] == pytest.approx(float(probs.max()), abs=ATOL), (d, n)
    # the table is the mix head's alone: another drawing and number give the same one
    other = predictor.explain(EXAMPLES / "digit_8.png", 6)
    np.testing.assert_array_equal(other.sum_table, e.sum_table)
    np.testing.assert_array_equal(other.sum_table_probs, e.sum_table_probs)


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_each_shipped_mix_head_learned_digit_plus_number_in_every_cell(name):
    """A real property of the shipped weights (measured: all 100 cells of both, each above 99 % sure)."""
    e = Predictor(SHIPPED_MODELS[name]).explain(EXAMPLES / "digit_4.png", 3)
    truth = np.add.outer(np.arange(10), np.arange(10))
    wrong = {(d, n): int(e.sum_table[d, n]) for d, n in zip(*np.nonzero(e.sum_table != truth))}
    print(f"{name}: sum table cells other than d + n: {wrong or 'none'}; least sure {e.sum_table_probs.min():.4f}")
    assert not wrong, wrong
    assert e.sum_table_probs.min() > 0.99


def test_prediction_is_predicts(predictor, inputs):
    for name, x, number in inputs:
        e = predictor.explain28(x, number)
        p = predictor.predict28(x, number)
        assert isinstance(e, Explanation) and e.number == number
        for f in fields(p):
            a, b = getattr(e.prediction, f.name), getattr(p, f.name)
            assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, (name, f.name)
    image = EXAMPLES / "digit_6.png"
    e, p = predictor.explain(image, 2), predictor.predict(image, 2)
    assert (e.prediction.digit, e.prediction.sum, e.prediction.digit_probs) == (p.digit, p.sum, p.digit_probs)
    assert e.prediction.sum_probs == p.sum_probs and np.array_equal(e.prediction.input28, p.input28)


def test_blank_is_none_and_a_bad_number_is_refused(predictor):
    blank = np.full((400, 400, 3), 255, np.uint8)
    assert predictor.explain(blank, 3) is None
    for bad in (10, -1, 2.5, "3", None, True):
        with pytest.raises(ValueError, match="number"):
            predictor.explain(EXAMPLES / "digit_4.png", bad)
        with pytest.raises(ValueError, match="number"):
            predictor.explain(blank, bad)  # as predict: the number is checked first
        with pytest.raises(ValueError, match="number"):
            predictor.explain28(np.zeros((28, 28), np.float32), bad)
    assert predictor.explain(EXAMPLES / "digit_4.png", np.int64(3)).number == 3


def test_explanation_is_frozen_and_leaves_no_hooks(predictor):
    e = predictor.explain(EXAMPLES / "digit_4.png", 3)
    with pytest.raises(FrozenInstanceError):
        e.number = 4
    for a in [*e.feature_maps.values(), e.what_if_probs, e.sum_probs, e.adder_probs, e.sum_table, e.sum_table_probs]:
        with pytest.raises(ValueError, match="read-only"):
            a[(0,) * a.ndim] = 1
    assert all(not m._forward_hooks for m in predictor.model.modules())


def test_capture_keeps_only_its_own_threads_forward_passes(model):
    """The served model may read a drawing in another thread meanwhile: those activations are not caught."""
    x = normalize(torch.zeros(1, 1, 28, 28))
    with torch.inference_mode(), captured(model) as seen:
        other = threading.Thread(target=lambda: model(x, one_hot(0)))
        other.start()
        other.join()
        assert seen == {}
        model(x, one_hot(0))
        assert sorted(seen) == ["conv1", "conv2", "conv3", "digit_logits"]
    assert all(not m._forward_hooks for m in model.modules())


# --- python -m mnist_sum.explain -------------------------------------------------------------------------------

def test_cli_writes_a_wide_png(tmp_path, capsys):
    out = tmp_path / "figs" / "fig.png"
    assert explain_main([str(EXAMPLES / "digit_4.png"), "--number", "3", "--out", str(out)]) == 0
    with Image.open(out) as fig:
        assert fig.format == "PNG" and fig.width >= 600 and fig.height >= 600
        pixels = np.asarray(fig.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # drawn: maps, bars and table, not a blank page
    assert "4 + 3 = 7" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["fig.png"]  # written atomically: no temporary file left


def test_cli_refuses_a_missing_unreadable_or_blank_image_in_words(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), "white").save(blank)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    for image, words in ((tmp_path / "missing.png", "no image file"), (junk, "cannot read image file"),
                         (blank, "nothing is drawn")):
        with pytest.raises(SystemExit) as exit_info:
            explain_main([str(image), "--number", "3", "--out", str(tmp_path / "fig.png")])
        assert isinstance(exit_info.value.code, str) and words in exit_info.value.code, exit_info.value.code
        assert str(image) in exit_info.value.code
    assert not (tmp_path / "fig.png").exists()
    with pytest.raises(SystemExit) as exit_info:
        explain_main([str(EXAMPLES / "digit_4.png"), "--number", "10", "--out", str(tmp_path / "fig.png")])
    assert exit_info.value.code == 2  # argparse: the number must be 0-9
