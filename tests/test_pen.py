"""Pen strokes: loading the UNIPEN arrays, drawing them as the app's pad does, non-digits, and evaluate_pen."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mnist_sum.evaluate_pen import evaluate_pen, format_pen_report
from mnist_sum.pen import (BRUSH_RANGE, HEIGHT_RANGE, MAX_WIDTH, TRAIN_SIDES, PenSet, load_pen, pen_folder, render,
                           render_inputs28, render_random)
from mnist_sum.synthetic import NONDIGIT_KINDS, nondigit_strokes, styled, writer_jitter
from mnist_sum.preprocess import to_input28

SEVEN = [np.array([[0, 0], [60, 0], [25, 100]])]  # a "7" in tablet units: 100 tall, 60 wide, y down
TALL = [np.array([[0, 0], [0, 100]])]  # a vertical bar
WIDE = [np.array([[0, 0], [100, 0]])]  # a horizontal bar
DOT = [np.array([[5, 5]])]  # one point


@pytest.fixture(scope="module")
def pen_dir():
    """The pen data ($MNIST_SUM_PEN, pendigits/ or ../shared/pendigits beside the repository), or skip."""
    root = pen_folder()
    if root is None or not (root / "letters.npz").is_file():
        pytest.skip("pen data not found: set MNIST_SUM_PEN or provide pendigits/ or ../shared/pendigits/ "
                    "with digits.npz and letters.npz")
    return root


def ink_box(canvas: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels darker than the paper, bottom/right exclusive."""
    rows, cols = np.nonzero(canvas[..., 0] < 255)
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


# --- render -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("side", [400, 800])
def test_render_is_black_anti_aliased_ink_on_white_rgb(side):
    canvas = render(SEVEN, side, np.random.default_rng(1))
    assert canvas.shape == (side, side, 3) and canvas.dtype == np.uint8
    assert (canvas[..., 0] == canvas[..., 1]).all() and (canvas[..., 1] == canvas[..., 2]).all()  # grey
    assert np.median(canvas) == 255 and canvas.min() == 0  # white paper, solid black ink
    grey = ((canvas[..., 0] > 0) & (canvas[..., 0] < 255)).sum()
    assert grey > 100  # anti-aliased: grey pixels along both edges of ~250+ px of strokes


@pytest.mark.parametrize("seed", range(12))
def test_ink_height_is_35_to_80_percent_and_inside_the_canvas(seed):
    side = (400, 800)[seed % 2]
    top, bottom, left, right = ink_box(render(SEVEN, side, np.random.default_rng(seed)))
    assert HEIGHT_RANGE[0] * side - 2 <= bottom - top <= HEIGHT_RANGE[1] * side + 2
    assert top > 0 and left > 0 and bottom < side and right < side
    assert abs((right - left) - 0.6 * (bottom - top)) < 0.1 * (bottom - top)  # aspect kept (brush aside)


def test_given_height_and_brush_are_the_ink_height_and_stroke_width():
    canvas = render(TALL, 400, np.random.default_rng(0), height=0.5, brush=0.04)
    top, bottom, left, right = ink_box(canvas)
    assert abs((bottom - top) - 200) <= 2  # 50 % of 400, brush included
    assert abs((right - left) - 16) <= 2  # 4 % of 400
    dot = render(DOT, 400, np.random.default_rng(0), brush=0.05)
    top, bottom, left, right = ink_box(dot)
    assert abs((bottom - top) - 20) <= 2 and abs((right - left) - 20) <= 2  # a single point is a 20 px dot


def test_a_wide_item_is_shrunk_to_fit_the_width():
    canvas = render(WIDE, 400, np.random.default_rng(0), height=0.8, brush=0.02)
    top, bottom, left, right = ink_box(canvas)
    assert right - left <= MAX_WIDTH * 400 + 2 and left > 0 and right < 400
    assert bottom - top <= 0.02 * 400 + 2  # a bar is as tall as the brush


def test_render_is_deterministic_with_a_seed():
    a = render_random(SEVEN, np.random.default_rng(5))
    b = render_random(SEVEN, np.random.default_rng(5))
    c = render_random(SEVEN, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_brushes_vary_within_their_range():
    widths = []
    for seed in range(20):
        _, _, left, right = ink_box(render(TALL, 400, np.random.default_rng(seed)))
        widths.append(right - left)
    assert BRUSH_RANGE[0] * 400 - 2 <= min(widths) < max(widths) <= BRUSH_RANGE[1] * 400 + 2


def test_an_item_without_points_is_an_error():
    with pytest.raises(ValueError, match="no points"):
        render([np.zeros((0, 2))], 400, np.random.default_rng(0))


def test_render_inputs28_is_what_the_predictor_sees():
    items = [SEVEN, TALL, SEVEN]
    inputs, kept = render_inputs28(items, np.random.default_rng(3))
    assert inputs.shape == (3, 28, 28) and inputs.dtype == np.float32 and kept.tolist() == [0, 1, 2]
    rng = np.random.default_rng(3)  # the same draws, one item after the other
    for ink, i in zip(inputs, kept):
        assert np.array_equal(ink, to_input28(render_random(items[i], rng, TRAIN_SIDES)))


# --- load_pen ---------------------------------------------------------------------------------------------

def write_pen(folder: Path, kind: str = "digits") -> dict:
    """A three-item pen file in the shared format; returns what was written."""
    strokes = [np.array([[0, 0], [3, 9]]), np.array([[5, 1]]), np.array([[2, 2], [4, 4], [6, 2]])]
    items = [[strokes[0], strokes[1]], [strokes[2]], [strokes[0]]]
    labels = np.array([7, 1, 4], np.int8) if kind == "digits" else np.array(["x", "O", "k"])
    arrays = dict(label=labels, source=np.array([1, 0, 1], np.int8), sources=np.array(["aa", "bb"]),
                  n_strokes=np.array([len(i) for i in items], np.int16),
                  stroke_len=np.array([len(s) for i in items for s in i], np.int32),
                  points=np.concatenate([s for i in items for s in i]).astype(np.int32))
    if kind == "digits":
        arrays["writer"] = np.array([4, 4, 9], np.int16)
    np.savez(folder / f"{kind}.npz", **arrays)
    return {"labels": labels, "items": items}


@pytest.mark.parametrize("kind", ["digits", "letters"])
def test_load_pen_reads_the_format(tmp_path, kind):
    written = write_pen(tmp_path, kind)
    pen = load_pen(tmp_path, kind)
    assert len(pen) == 3 and pen.kind == kind
    assert pen.labels.tolist() == written["labels"].tolist()
    assert pen.source.tolist() == ["bb", "aa", "bb"]
    assert (pen.writer.tolist() == [4, 4, 9]) if kind == "digits" else pen.writer is None
    for got, want in zip(pen.items, written["items"]):
        assert len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want))
    bb = pen.select("bb")
    assert bb.labels.tolist() == written["labels"][[0, 2]].tolist() and len(bb.items) == 2
    assert len(pen.select(["aa", "bb"])) == 3
    with pytest.raises(ValueError, match="zz"):
        pen.select("zz")


def test_load_pen_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"letters\.npz.*MNIST_SUM_PEN"):
        load_pen(tmp_path, "letters")
    with pytest.raises(ValueError, match="kind"):
        load_pen(tmp_path, "words")
    np.savez(tmp_path / "digits.npz", label=np.zeros(2))
    with pytest.raises(ValueError, match="lacks source"):
        load_pen(tmp_path, "digits")


def test_load_pen_on_the_shared_data(pen_dir):
    digits, letters = load_pen(pen_dir, "digits"), load_pen(pen_dir, "letters")
    assert len(digits) == 11133 and len(letters) == 12334  # the counts in its README
    assert digits.sources == letters.sources == ("apa", "apb", "app", "ced", "syn", "val")
    assert sorted(set(digits.labels.tolist())) == list(range(10))
    assert all(len(c) == 1 and c.isalpha() for c in set(letters.labels.tolist()))
    assert all(len(item) > 0 and all(s.shape[1] == 2 for s in item) for item in digits.items[:500])
    apa = digits.select("apa")
    assert set(apa.source.tolist()) == {"apa"} and 0 < len(apa) < len(digits)


# --- non-digits -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", NONDIGIT_KINDS)
def test_each_nondigit_shape_draws_something(kind):
    rng = np.random.default_rng(0)
    strokes = nondigit_strokes(rng, kind)
    assert strokes and all(s.ndim == 2 and s.shape[1] == 2 for s in strokes)
    assert to_input28(render(strokes, 400, rng)) is not None  # the reader sees ink, not a blank


def test_nondigits_are_random_but_seeded():
    a = nondigit_strokes(np.random.default_rng(1), "star")
    b = nondigit_strokes(np.random.default_rng(1), "star")
    c = nondigit_strokes(np.random.default_rng(2), "star")
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and not np.array_equal(a[0], c[0])
    kinds = {len(nondigit_strokes(np.random.default_rng(s))) for s in range(30)}
    assert len(kinds) > 1  # random kinds: one-stroke and several-stroke shapes
    with pytest.raises(ValueError, match="spiral"):
        nondigit_strokes(np.random.default_rng(0), "circle")


# --- evaluate_pen -----------------------------------------------------------------------------------------

class ShapeReader:
    """A fake predictor with known answers: always reads 3; a wide drawing is not a digit; a dot is blank."""

    def predict(self, canvas, number):
        assert canvas.shape[0] in (400, 800) and canvas.shape[2] == 3  # the app's pad's canvas sizes
        top, bottom, left, right = ink_box(canvas)
        if max(bottom - top, right - left) < 0.1 * canvas.shape[0]:
            return None
        tall = bottom - top > right - left
        return self._answer(number, tall)

    def predict28(self, ink, number):
        assert ink.shape == (28, 28) and 0 <= ink.min() and ink.max() <= 1
        return self._answer(number, True)

    @staticmethod
    def _answer(number, tall):
        probs = [0.95 if d == 3 else 0.05 / 9 for d in range(10)] if tall else [0.1] * 10
        return SimpleNamespace(digit=3, sum=3 + number, digit_probs=probs, is_digit=tall, digit_score=float(tall))


def fake_sets() -> tuple[PenSet, PenSet]:
    """Six digits (two sources) and three letters whose drawings ShapeReader answers in a known way."""
    digits = PenSet("digits", np.array([3, 3, 5, 7, 1, 0]), np.array(["a", "a", "b", "b", "b", "b"]), None,
                    [SEVEN, SEVEN, SEVEN, TALL, WIDE, DOT])
    letters = PenSet("letters", np.array(["x", "O", "k"]), np.array(["a", "a", "b"]), None, [WIDE, WIDE, TALL])
    return digits, letters


def test_evaluate_pen_with_known_answers():
    digits, letters = fake_sets()
    r = evaluate_pen(ShapeReader(), digits, letters, progress=False)
    d = r["digits"]
    assert d["all"] == {"n": 6, "digit_accuracy": 2 / 6, "sum_accuracy": 2 / 6, "naive_digit_accuracy": 2 / 6,
                        "naive_sum_accuracy": 2 / 6, "flagged": 1 / 6, "max_prob_flagged": 1 / 6, "blank": 1}
    assert d["sources"]["a"]["digit_accuracy"] == 1.0 and d["sources"]["b"]["digit_accuracy"] == 0.0
    assert d["sources"]["b"]["blank"] == 1 and d["sources"]["b"]["flagged"] == 0.25
    assert sorted(d["confusions"]["b"]) == [[1, 3, 1], [5, 3, 1], [7, 3, 1]]  # the blank 0 is no confusion
    lt = r["letters"]
    assert (lt["n"], lt["n_not_digit_like"]) == (3, 2)  # "O" is written like a 0
    assert lt["flagged"] == 0.5 and lt["flagged_all"] == 2 / 3 and lt["max_prob_flagged"] == 0.5
    assert lt["per_letter"]["x"] == {"n": 1, "flagged": 1, "max_prob_flagged": 1, "read_as": 3}
    row = next(row for row in r["roc"] if row["target"] == 0.2)  # scores: four tall digits 1.0, one wide 0.0
    assert row["digit_score"]["digits_flagged"] == 1 / 6 and row["digit_score"]["letters_flagged"] == 0.5
    json.dumps(r)
    assert "all" in format_pen_report(r)


def test_a_rotation_pools_its_folds_as_one_evaluation_of_every_source():
    """Two folds on disjoint sources pooled = the same reader on both sources at once (known counts)."""
    from mnist_sum.evaluate import combine_pen_reports

    digits, letters = fake_sets()
    whole = evaluate_pen(ShapeReader(), digits, letters, progress=False)
    folds = [{**evaluate_pen(ShapeReader(), digits.select(s), letters.select(s), progress=False),
              "weights": f"fold-{s}", "sources": [s]} for s in ("a", "b")]
    pooled = combine_pen_reports(folds)
    assert pooled["digits"]["all"] == pytest.approx(whole["digits"]["all"])
    assert pooled["digits"]["sources"] == whole["digits"]["sources"]
    for key in ("n", "n_not_digit_like", "flagged", "flagged_all", "max_prob_flagged", "blank"):
        assert pooled["letters"][key] == pytest.approx(whole["letters"][key]), key
    assert [f["sources"] for f in pooled["folds"]] == [["a"], ["b"]]
    text = format_pen_report(pooled)
    assert "(fold-a, on a)" in text and "(fold-b, on b)" in text


def test_evaluate_pen_is_the_same_in_worker_processes():
    digits, letters = fake_sets()
    one = evaluate_pen(ShapeReader(), digits, letters, seed=4, progress=False)
    two = evaluate_pen(ShapeReader(), digits, letters, seed=4, progress=False, workers=2)
    one.pop("seconds"), two.pop("seconds")
    assert one == two


def test_evaluate_pen_with_the_shipped_predictor(pen_dir):
    from mnist_sum.predict import Predictor

    digits, letters = load_pen(pen_dir, "digits"), load_pen(pen_dir, "letters")
    r = evaluate_pen(Predictor(), digits, letters, limit=24, progress=False)
    d = r["digits"]
    assert d["all"]["n"] == 24 == sum(s["n"] for s in d["sources"].values())
    assert r["letters"]["n"] == 24 and 0 < r["letters"]["n_not_digit_like"] <= 24
    for figures in [d["all"], *d["sources"].values()]:
        for key in ("digit_accuracy", "sum_accuracy", "naive_digit_accuracy", "flagged", "max_prob_flagged"):
            assert 0 <= figures[key] <= 1
    assert d["all"]["digit_accuracy"] >= 0.8  # the shipped model reads ~98 % of these; a broken drawing would not
    json.dumps(r)


# --- styles MNIST barely has ------------------------------------------------------------------------------

ZERO = [np.array([[50, 0], [90, 30], [90, 80], [50, 110], [10, 80], [10, 30], [50, 0]])]  # an oval, y down
ONE = [np.array([[50, 0], [50, 100]])]


def test_styled_zero_gets_a_slash_through_the_oval():
    rng = np.random.default_rng(0)
    out = styled(ZERO, 0, rng)
    assert len(out) == 2 and np.array_equal(out[0], ZERO[0])
    slash = out[1]
    assert slash[0, 1] > 110 and slash[-1, 1] < 0  # from below the oval to above it
    assert slash[0, 0] < slash[-1, 0]  # leaning right, as people slash a zero


def test_styled_one_gets_a_flag_from_the_top_to_the_left():
    rng = np.random.default_rng(0)
    out = styled(ONE, 1, rng)
    flag = out[0]
    assert np.array_equal(flag[-1], [50, 0])  # ends at the top of the stem
    assert flag[0, 0] < 50 and 0 < flag[0, 1] < 50  # starts lower, on the left
    assert any(np.array_equal(s, ONE[0]) for s in out)


def test_styled_seven_gets_a_bar_across_its_stem():
    out = styled(SEVEN, 7, np.random.default_rng(0))
    bar = out[-1]
    assert len(out) == 2 and abs(bar[0, 1] - bar[-1, 1]) < 15  # about level
    stem_x = np.interp(bar[:, 1].mean(), [0, 100], [60, 25])  # where the stem is at the bar's height
    assert bar[:, 0].min() < stem_x < bar[:, 0].max()


def test_digits_without_a_style_and_single_stroke_fives_are_left_alone():
    rng = np.random.default_rng(0)
    assert styled(SEVEN, 3, rng) is None
    assert styled([np.array([[0, 0], [10, 10]])], 5, rng) is None  # no separate bar to move


def test_writer_jitter_keeps_the_strokes_and_the_digit_size():
    two_strokes = [ONE[0], np.array([[30, 20], [50, 0]])]  # a one with its flag as a separate stroke
    for seed in range(20):
        out = writer_jitter(two_strokes, np.random.default_rng(seed))
        assert len(out) == 2 and all(s.ndim == 2 and s.shape[1] == 2 and np.isfinite(s).all() for s in out)
        ink = np.concatenate(out)
        height = np.ptp(ink[:, 1])
        assert 80 < height < 125  # turned, bent and shifted a little, never rescaled: still about 100 tall
        assert abs(ink.mean(0) - np.concatenate(two_strokes).mean(0)).max() < 25  # stays where it was


def test_writer_jitter_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no points"):
        writer_jitter([np.zeros((0, 2))], np.random.default_rng(0))


def test_writer_jitter_is_seeded_and_varies():
    a = writer_jitter(SEVEN, np.random.default_rng(3))
    assert all(np.array_equal(x, y) for x, y in zip(a, writer_jitter(SEVEN, np.random.default_rng(3))))
    b = writer_jitter(SEVEN, np.random.default_rng(4))
    assert not np.allclose(a[0], b[0])


def test_a_jittered_pen_digit_is_still_read_as_itself(pen_dir):
    from mnist_sum.predict import Predictor

    pen = load_pen(pen_dir, "digits")
    predictor = Predictor()
    rng = np.random.default_rng(0)
    picks = rng.choice(len(pen.items), 60, replace=False)
    read = [predictor.predict(render_random(writer_jitter(pen.items[i], rng), rng), 0) for i in picks]
    hits = sum(p is not None and p.digit == pen.labels[i] for p, i in zip(read, picks))
    assert hits >= 55  # the shipped weights read ~98 % of plain pen digits: the jitter keeps them digits
