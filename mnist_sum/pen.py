"""Real pen strokes, drawn as the app's pad draws them.

People wrote these digits and letters with a stylus (UNIPEN, see pendigits/README.md); each item
is a list of pen-down strokes, and `render` draws it the way the app's pad (web/pad.js) draws a stroke:
black, anti-aliased ink on a white square canvas, round caps and joins, at a random size, position and
brush width;
`render_inputs28` reads such drawings into the network's 28x28 input, exactly as the predictor does.
`synthetic` makes more strokes (other hands, other styles, things that are not digits), `pen_training`
turns them into a --pen run's training data, and `evaluate_pen` measures a Predictor on these strokes.

Data: I. Guyon, L. Schomaker, R. Plamondon, M. Liberman and S. Janet, "UNIPEN project of on-line data
exchange and recognizer benchmarks", Proc. 12th ICPR, 1994; Unipen consortium (1999), train_r01_v07,
doi:10.5281/zenodo.1195803, CC BY 4.0.
"""
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .preprocess import to_input28

PEN_DIR = Path(__file__).resolve().parents[1] / "pendigits"  # the UNIPEN strokes shipped with the repository
KINDS = ("digits", "letters")
NPZ_KEYS = ("label", "source", "sources", "n_strokes", "stroke_len", "points")
# Letters people write the way they write a digit (O/0, I/1, Z/2, S/5, b/6, q/9, ...): a network may read
# them as digits without being wrong, so the not-a-digit rate on letters leaves them out.
DIGIT_LIKE_LETTERS = frozenset("OoDIliJZzSsBbGgqTUuAy")

CANVAS_SIDES = (400, 800)  # px: the app's pad is 400; 800 is a large pad (or a 400 pad on a 2x screen)
# Training renders at the working resolution preprocess box-reduces those canvases to (400 -> 200,
# 800 -> 267), so it sees the same ink at a fraction of the drawing cost.
TRAIN_SIDES = (200, 267)
HEIGHT_RANGE = (0.35, 0.80)  # ink height (brush included) as a share of the canvas height
MAX_WIDTH = 0.95  # ink width (brush included) as a share of the canvas width: wide items are shrunk to fit
# Brush width as a share of the canvas side, log-uniform: the app's pad draws a 6 % line (24 units of 400),
# Gradio's Sketchpad a 4 % one by default; 1.5 % is a fine pen (6 px on 400).
BRUSH_RANGE = (0.015, 0.06)
SUPERSAMPLE_SIDE = 1600  # px: draw at about this size and box-reduce, for anti-aliased edges
CALIBRATION_WRITERS = 8  # every 8th pen writer (and every 8th letter) is kept out of training


# --- the data ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PenSet:
    """Pen-written items of one kind: labels, the site each came from, writers, and strokes."""

    kind: str  # "digits" or "letters"
    labels: np.ndarray  # (N,) int digits 0-9, or one-character str letters
    source: np.ndarray  # (N,) str: the contributing site, e.g. "apa"
    writer: np.ndarray | None  # (N,) int writer index (digits only), else None
    items: list  # N lists of strokes; each stroke an (n, 2) int32 array of (x, y), y down, tablet units

    def __len__(self) -> int:
        return len(self.items)

    @property
    def sources(self) -> tuple[str, ...]:
        """The source names present, sorted."""
        return tuple(sorted(set(self.source.tolist())))

    def subset(self, indices) -> "PenSet":
        """The items at `indices` (an int array or a boolean mask), in that order."""
        indices = np.flatnonzero(indices) if np.asarray(indices).dtype == bool else np.asarray(indices, int)
        return PenSet(self.kind, self.labels[indices], self.source[indices],
                      None if self.writer is None else self.writer[indices], [self.items[i] for i in indices])

    def select(self, sources) -> "PenSet":
        """Only the items from one source name or several; ValueError for a name that is not there."""
        wanted = {sources} if isinstance(sources, str) else set(sources)
        unknown = wanted - set(self.sources)
        if unknown:
            raise ValueError(f"unknown source(s) {sorted(unknown)}: this set has {list(self.sources)}")
        return self.subset(np.isin(self.source, sorted(wanted)))


def pen_folder() -> Path | None:
    """The pen data folder: $MNIST_SUM_PEN, else the repository's pendigits/, else ../shared/pendigits beside
    the repository; None if none holds digits.npz."""
    for folder in (os.environ.get("MNIST_SUM_PEN"), PEN_DIR, PEN_DIR.parent.parent / "shared" / "pendigits"):
        if folder and (Path(folder) / "digits.npz").is_file():
            return Path(folder)
    return None


def load_pen(folder, kind: str = "digits") -> PenSet:
    """`<folder>/<kind>.npz` as a PenSet; FileNotFoundError naming the file when it is missing."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    path = Path(folder) / f"{kind}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: provide the UNIPEN pen data ({kind}.npz with "
                                f"{', '.join(NPZ_KEYS)}; see pendigits/README.md) or set MNIST_SUM_PEN")
    with np.load(path) as z:
        missing = [k for k in NPZ_KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)}: expected the arrays {', '.join(NPZ_KEYS)}")
        arrays = {k: z[k] for k in z.files}
    return PenSet(kind=kind, labels=_labels(arrays["label"]), source=arrays["sources"][arrays["source"]].astype(str),
                  writer=arrays.get("writer"), items=_split_items(path, arrays))


def _labels(label: np.ndarray) -> np.ndarray:
    """Digit labels as plain ints, letters as str."""
    return label.astype(str) if label.dtype.kind in "US" else label.astype(int)


def _split_items(path: Path, z: dict) -> list:
    """points + stroke_len + n_strokes -> per item, a list of (n, 2) stroke arrays; ValueError if they disagree."""
    n_strokes, stroke_len, points = z["n_strokes"], z["stroke_len"], z["points"]
    if n_strokes.sum() != len(stroke_len) or stroke_len.sum() != len(points) or len(n_strokes) != len(z["label"]):
        raise ValueError(f"{path} is inconsistent: {len(z['label'])} labels, {len(n_strokes)} items of "
                         f"{n_strokes.sum()} strokes, {len(stroke_len)} stroke lengths of {stroke_len.sum()} points, "
                         f"{len(points)} points")
    strokes = np.split(points, np.cumsum(stroke_len)[:-1])
    starts = np.concatenate([[0], np.cumsum(n_strokes)])
    return [strokes[a:b] for a, b in zip(starts[:-1], starts[1:])]


def calibration_writers(writer: np.ndarray) -> np.ndarray:
    """Which pen digits (by writer) are held aside for calibrating the not-a-digit threshold: a (N,) mask."""
    return writer % CALIBRATION_WRITERS == 0


def kept_out(pen) -> np.ndarray:
    """The items of a PenSet that no run trains on, a (N,) mask: the calibration writers' digits, and every
    8th letter (letters carry no writer). Weights trained on every source are measured on these."""
    if pen.writer is not None:
        return calibration_writers(pen.writer)
    return np.arange(len(pen)) % CALIBRATION_WRITERS == 0


# --- drawing ----------------------------------------------------------------------------------------------

def place(strokes, canvas: int, rng: np.random.Generator, *, height: float | None = None,
          brush: float | None = None) -> tuple[list[np.ndarray], float]:
    """Where `render` draws an item: its strokes' centre lines, each an (n, 2) float array of canvas px, and the
    brush width in px.

    The item is scaled (aspect kept) so its ink, brush included, is `height` of the canvas height (random in
    HEIGHT_RANGE), or less where it would be wider than MAX_WIDTH of the canvas; it lands at a random place
    fully inside, drawn with a round brush `brush` x the canvas side wide (random in BRUSH_RANGE).
    """
    points = [np.asarray(s, np.float64).reshape(-1, 2) for s in strokes if len(s)]
    if not points:
        raise ValueError("nothing to draw: the item has no points")
    height = rng.uniform(*HEIGHT_RANGE) if height is None else height
    brush_px = canvas * (_log_uniform(rng, *BRUSH_RANGE) if brush is None else brush)
    everything = np.concatenate(points)
    low = everything.min(0)
    extent = everything.max(0) - low  # (width, height) of the centre lines, tablet units
    scale = _fit_scale(extent, (MAX_WIDTH * canvas - brush_px, height * canvas - brush_px))
    ink_size = extent * scale + brush_px  # (w, h) px
    corner = rng.uniform(1, np.maximum(canvas - 1 - ink_size, 1))  # top-left of the ink, 1 px from the edges
    return [(stroke - low) * scale + corner + brush_px / 2 for stroke in points], brush_px


def render(strokes, canvas: int, rng: np.random.Generator, *, height: float | None = None,
           brush: float | None = None) -> np.ndarray:
    """Strokes as the app's pad draws them: (canvas, canvas, 3) uint8, black anti-aliased ink on white.

    Each stroke is a polyline with round caps and joins, as web/pad.js strokes a canvas (segment by segment,
    lineCap and lineJoin "round"); `place` says where and how wide. The pad's own brush is 6 % of its side
    (app.BRUSH_RADIUS), the top of BRUSH_RANGE; thinner pens stand for other pads and uploads.
    """
    lines, brush_px = place(strokes, canvas, rng, height=height, brush=brush)
    factor = max(1, min(4, math.ceil(SUPERSAMPLE_SIDE / canvas)))
    img = Image.new("L", (canvas * factor, canvas * factor), 0)
    draw = ImageDraw.Draw(img)
    width = max(1, round(brush_px * factor))
    for xy in lines:
        _draw_stroke(draw, xy * factor, width)
    if factor > 1:
        img = img.reduce(factor)
    paper = 255 - np.asarray(img)
    return np.repeat(paper[:, :, None], 3, axis=2)


def _draw_stroke(draw: ImageDraw.ImageDraw, xy: np.ndarray, width: int) -> None:
    """One stroke with a round brush: segments, plus a disc at every point for round joints and caps
    (a stroke of one point is a dot)."""
    if len(xy) > 1:
        draw.line(xy.ravel().tolist(), fill=255, width=width)
    r = width / 2
    for x, y in xy.tolist():
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)


def _fit_scale(extent: np.ndarray, room: tuple[float, float]) -> float:
    """Tablet units -> px so the centre lines' (w, h) fit `room` (w, h) px, filling its height unless too wide."""
    scales = [r / e for r, e in zip(room, extent) if e > 0]
    return max(0.0, min(scales)) if scales else 0.0  # a single dot has no extent


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A random value between low and high, uniform in its logarithm (thin and thick pens alike)."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def random_side(rng: np.random.Generator, sides=CANVAS_SIDES) -> int:
    """One canvas side, px, picked at random from `sides`."""
    return int(sides[rng.integers(len(sides))])


def render_random(strokes, rng: np.random.Generator, sides=CANVAS_SIDES) -> np.ndarray:
    """`render` on a canvas whose side is picked at random from `sides`."""
    return render(strokes, random_side(rng, sides), rng)


def render_inputs28(items, rng: np.random.Generator, sides=TRAIN_SIDES) -> tuple[np.ndarray, np.ndarray]:
    """Items drawn on random canvases and read by `to_input28`, exactly what the predictor would see.

    Returns (inputs, kept): (K, 28, 28) float32 in [0, 1], and the (K,) indices of the items they come from;
    items the reader calls blank are dropped.
    """
    inputs, kept = [], []
    for i, strokes in enumerate(items):
        ink = to_input28(render_random(strokes, rng, sides))
        if ink is not None:
            inputs.append(ink)
            kept.append(i)
    return np.asarray(inputs, np.float32).reshape(-1, 28, 28), np.asarray(kept, int)
