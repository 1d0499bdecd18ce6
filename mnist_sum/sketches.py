"""The drawn-digit set: held-out MNIST test digits re-drawn as pen strokes, the way people draw them.

Each test digit is thinned to its centre line (Zhang-Suen), then re-drawn with a round pen on a canvas
of random size (280-800 px), at a random position and digit size, with a random brush width, in each of
the four pixel formats people send:

    dark_on_light   black ink on an opaque white RGBA canvas (Gradio's Sketchpad composite)
    light_on_dark   white ink on black, greyscale (MNIST-style uploads)
    alpha           transparent RGBA canvas, the ink only in the alpha channel (Sketchpad layers)
    colour          coloured ink on noisy off-white paper, RGB (photos, other apps)

Only test-split digits are used, so neither they nor their drawings are ever seen in training.
`python -m mnist_sum.evaluate --sketches` reports accuracy on the set; `python -m mnist_sum.sketches
--write-examples demo/examples` writes the app's example drawings (one per digit).
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

FORMATS = ("dark_on_light", "light_on_dark", "alpha", "colour")
SKETCH_SEED = 7  # fixed: the set is the same for every evaluation
DEFAULT_DIGITS = 500  # test digits drawn (x 4 formats = 2,000 drawings)
CANVAS_SIDES = (280, 400, 600, 800)
EXAMPLE_PICK = {5: 1, 8: 3}  # which test occurrence of a digit the demo shows (default: the first); picked by eye


@dataclass(frozen=True)
class Sketch:
    """One drawing of a test digit: the image in its pixel format, and what the network should answer."""

    index: int  # into the MNIST test split
    format: str
    image: object  # PIL image
    digit: int
    number: int
    canvas: int  # side, px
    brush: int  # px


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean mask to one-pixel-wide centre lines."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            c = img[1:-1, 1:-1]
            p2, p3, p4, p5 = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:], img[2:, 2:]
            p6, p7, p8, p9 = img[2:, 1:-1], img[2:, :-2], img[1:-1, :-2], img[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            neighbours = sum(ring[:-1])
            transitions = sum(((a == 0) & (b == 1)).astype(np.uint8) for a, b in zip(ring[:-1], ring[1:]))
            if step == 0:
                side = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                side = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (c == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & side
            if remove.any():
                c[remove] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def centre_line(pixels28: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(28, 28) digit in [0, 1] -> skeleton points (N, 2) as (y, x) at 2x scale, and 8-neighbour links."""
    big = np.asarray(Image.fromarray(pixels28.astype(np.float32)).resize((56, 56), Image.Resampling.BILINEAR))
    skeleton = thin(big > 0.5)
    points = np.argwhere(skeleton)
    index = {tuple(p): i for i, p in enumerate(points)}
    links = []
    for i, (y, x) in enumerate(points):
        for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):  # each pair once
            j = index.get((y + dy, x + dx))
            if j is not None:
                links.append((i, j))
    return points, links


def render(points: np.ndarray, links: list[tuple[int, int]], canvas: tuple[int, int], centre: tuple[float, float],
           height: float, brush: int) -> Image.Image:
    """Draw the centre line with a round pen: an L image, ink 255 on 0."""
    img = Image.new("L", canvas, 0)
    draw = ImageDraw.Draw(img)
    lo, hi = points.min(0), points.max(0)
    scale = height / max(hi - lo).max(initial=1)
    mid = (lo + hi) / 2
    xy = [(centre[0] + (x - mid[1]) * scale, centre[1] + (y - mid[0]) * scale) for y, x in points]
    r = brush / 2
    for i, j in links:
        draw.line([xy[i], xy[j]], fill=255, width=brush)
    for x, y in xy:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return img


def in_format(ink: Image.Image, fmt: str, rng: np.random.Generator) -> Image.Image:
    """An L ink image (255 = ink) in one of the pixel formats."""
    a = np.asarray(ink)
    if fmt == "dark_on_light":
        grey = 255 - a
        return Image.fromarray(np.dstack([grey, grey, grey, np.full_like(a, 255)]), "RGBA")
    if fmt == "light_on_dark":
        return ink
    if fmt == "alpha":
        zeros = np.zeros_like(a)
        return Image.fromarray(np.dstack([zeros, zeros, zeros, a]), "RGBA")
    if fmt == "colour":
        paper = rng.uniform([235, 225, 200], [255, 250, 240])
        pen = rng.choice([(20, 40, 160), (180, 20, 30), (20, 110, 40), (90, 30, 130), (40, 40, 40)])
        t = (a.astype(np.float32) / 255)[..., None]
        grain = rng.integers(-6, 7, a.shape + (1,), dtype=np.int16)  # paper texture, same in all channels
        rgb = paper * (1 - t) + np.asarray(pen) * t + grain
        return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")


def draw_digit(points, links, fmt: str, rng: np.random.Generator) -> tuple[Image.Image, int, int]:
    """Re-draw one centre line at a random size, position and pen width; returns (image, canvas side, brush)."""
    side = int(rng.choice(CANVAS_SIDES))
    height = rng.uniform(0.3, 0.85) * side
    brush = max(2, int(round(height * np.exp(rng.uniform(np.log(0.04), np.log(0.16))))))
    margin = min(height / 2 + brush, side / 2)
    centre = (rng.uniform(margin, side - margin), rng.uniform(margin, side - margin))
    ink = render(points, links, (side, side), centre, height, brush)
    return in_format(ink, fmt, rng), side, brush


def sketch_set(test, n_digits: int = DEFAULT_DIGITS, formats=FORMATS):
    """Yield Sketches of the first n_digits of a fixed shuffle of the test split, each in every format."""
    rng = np.random.default_rng(SKETCH_SEED)
    order = rng.permutation(len(test))[:n_digits]
    for index in order:
        points, links = centre_line(test.pixels[index, 0].numpy())
        digit, number = int(test.targets[index]), int(test.numbers[index])
        for fmt in formats:
            image, side, brush = draw_digit(points, links, fmt, rng)
            yield Sketch(int(index), fmt, image, digit, number, side, brush)


def evaluate_sketches(weights, test, limit: int | None = None, progress: bool = True) -> dict:
    """Digit and sum accuracy of a Predictor over the drawn-digit set, overall and per pixel format, and the
    share it calls "not a digit" (weights without a threshold flag none)."""
    from .predict import Predictor

    predictor = Predictor(weights)
    n_digits = DEFAULT_DIGITS if limit is None else min(limit, len(test))
    counts = {fmt: np.zeros(5, int) for fmt in FORMATS}  # drawings, digit right, sum right, said blank, flagged
    for s in tqdm(sketch_set(test, n_digits), total=n_digits * len(FORMATS), desc="sketches", disable=not progress):
        p = predictor.predict(s.image, s.number)
        counts[s.format] += [1, p is not None and p.digit == s.digit, p is not None and p.sum == s.digit + s.number,
                             p is None, p is not None and not p.is_digit]
    total = sum(counts.values())

    def figures(c):
        return {"n": int(c[0]), "digit_accuracy": c[1] / c[0], "sum_accuracy": c[2] / c[0], "blank": int(c[3]),
                "flagged": c[4] / c[0]}

    return {**figures(total), "formats": {fmt: figures(c) for fmt, c in counts.items()}}


def format_sketch_report(report: dict) -> str:
    """The --sketches table: one row per pixel format and the total."""
    lines = [f"{'format':<14} {'drawings':>8} {'digit':>8} {'sum':>8} {'blank':>6} {'flagged':>8}"]
    rows = list(report["formats"].items()) + [("all", report)]
    for name, r in rows:
        lines.append(f"{name:<14} {r['n']:>8} {r['digit_accuracy']:>8.2%} {r['sum_accuracy']:>8.2%} {r['blank']:>6} "
                     f"{r['flagged']:>8.2%}")
    return "\n".join(lines)


def write_examples(test, folder, side: int = 400) -> list[Path]:
    """One drawing per digit 0-9 (black on white, like the Sketchpad) as digit_<d>.png in folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SKETCH_SEED)
    paths = []
    for digit in range(10):
        index = int((test.targets == digit).nonzero()[EXAMPLE_PICK.get(digit, 0), 0])
        points, links = centre_line(test.pixels[index, 0].numpy())
        ink = render(points, links, (side, side), (side / 2, side / 2), 0.7 * side, max(2, side // 22))
        path = folder / f"digit_{digit}.png"
        in_format(ink, "dark_on_light", rng).convert("RGB").save(path)
        paths.append(path)
    return paths


def main(argv=None) -> int:
    """`python -m mnist_sum.sketches --write-examples demo/examples`: write the app's example drawings."""
    from .cli import HelpFormatter, exit_with
    from .data import DataNotFoundError, open_split

    p = argparse.ArgumentParser(prog="python -m mnist_sum.sketches", description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--data-dir", default="data", help="folder holding MNIST/raw/ (downloaded there if missing)")
    p.add_argument("--write-examples", metavar="FOLDER", required=True, help="write digit_0.png ... digit_9.png here")
    args = p.parse_args(argv)
    try:
        test = open_split(args.data_dir, train=False)
    except DataNotFoundError as e:
        exit_with(e)
    for path in write_examples(test, args.write_examples):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
