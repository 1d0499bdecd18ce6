"""Real pen strokes drawn as the sketch pad receives them.

People wrote these digits and letters with a stylus (UNIPEN, see pendigits/README.md); each item
is a list of pen-down strokes, and `render` draws it the way Gradio's Sketchpad hands a drawing to the app:
black, anti-aliased ink on a white square canvas, at a random size, position and brush width. On top of
that this module makes things people draw on a digit demo that are *not* digits (`nondigit_strokes`), turns
any of them into the network's 28x28 input for training (`render_inputs28`), and measures a Predictor on
all of it (`evaluate_pen`, behind `python -m mnist_sum.evaluate --pen pendigits`).

Data: I. Guyon, L. Schomaker, R. Plamondon, M. Liberman and S. Janet, "UNIPEN project of on-line data
exchange and recognizer benchmarks", Proc. 12th ICPR, 1994; Unipen consortium (1999), train_r01_v07,
doi:10.5281/zenodo.1195803, CC BY 4.0.
"""

import math
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

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
# Brush width as a share of the canvas side, log-uniform: Gradio's automatic brush has a radius of 1/50 of
# the canvas (a 4 % line), the app's a 12 px radius on 400 px (6 %); 1.5 % is a fine pen (6 px on 400).
BRUSH_RANGE = (0.015, 0.06)
SUPERSAMPLE_SIDE = 1600  # px: draw at about this size and box-reduce, for anti-aliased edges
CALIBRATION_WRITERS = 8  # every 8th pen writer (and every 8th letter) is kept out of training

FLAG_RATES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)  # shares of digits flagged, the rows of the ROC table
MAX_PROB_THRESHOLD = 0.9  # the max-probability rule's cut in the per-source table: flag when below
CHUNK = 256  # items per job when evaluating with several worker processes


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

def render(strokes, canvas: int, rng: np.random.Generator, *, height: float | None = None,
           brush: float | None = None) -> np.ndarray:
    """Strokes as the Sketchpad receives them: (canvas, canvas, 3) uint8, black anti-aliased ink on white.

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
    factor = max(1, min(4, math.ceil(SUPERSAMPLE_SIDE / canvas)))
    img = Image.new("L", (canvas * factor, canvas * factor), 0)
    draw = ImageDraw.Draw(img)
    width = max(1, round(brush_px * factor))
    for stroke in points:
        xy = ((stroke - low) * scale + corner + brush_px / 2) * factor
        _draw_stroke(draw, xy, width)
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


# --- handwriting styles MNIST barely has ------------------------------------------------------------------

STYLED_DIGITS = (0, 1, 5, 7)  # the digits `styled` knows a variant of


def styled(strokes, digit: int, rng: np.random.Generator) -> list[np.ndarray] | None:
    """The same pen digit in a style common outside the US that MNIST's writers rarely used: a slash through
    a zero, a long flag (and sometimes a foot) on a one, a crossbar on a seven, a five's top bar drawn apart.
    Returns new strokes (y down, the item's units), or None when the digit has no variant or does not suit."""
    points = [np.asarray(st, np.float64).reshape(-1, 2) for st in strokes if len(st)]
    if not points:
        return None
    everything = np.concatenate(points)
    (left, top), (right, bottom) = everything.min(0), everything.max(0)
    h = max(bottom - top, 1.0)
    if digit == 0:  # a slash from below left to above right, a little beyond the oval
        lean = rng.uniform(0.1, 0.35) * h
        cx = (left + right) / 2
        return points + [_line((cx - lean, bottom + 0.08 * h), (cx + lean, top - 0.08 * h))]
    if digit == 1:  # the flag: from the top of the stem down to the left; a foot under half of them
        tip = everything[everything[:, 1].argmin()]
        across = rng.uniform(0.25, 0.55)
        down = rng.uniform(max(0.2, 0.45 * across), 0.48)  # steeper than ~24 degrees: a seven's bar is level
        flag = _line(tip + np.array([-across, down]) * h, tip)
        extra = [flag]
        if rng.random() < 0.5:
            foot = everything[everything[:, 1].argmax()]
            half = rng.uniform(0.15, 0.3) * h
            extra.append(_line(foot - (half, 0), foot + (half, 0)))
        return extra + points
    if digit == 7:  # a short bar across the stem, a little below the middle
        y = top + rng.uniform(0.45, 0.6) * h
        dense = np.concatenate([_densify(st, 0.02 * h) for st in points])  # pen points can be far apart
        near = dense[np.abs(dense[:, 1] - y) < 0.08 * h]
        if not len(near):
            return None
        x = near[:, 0].mean()
        half = rng.uniform(0.15, 0.28) * h
        tilt = rng.uniform(-0.05, 0.05) * h
        return points + [_line((x - half, y + tilt), (x + half, y - tilt))]
    if digit == 5 and len(points) > 1:  # the top bar, already a stroke of its own, lifted, shifted and tilted
        bar = min(range(len(points)), key=lambda k: points[k][:, 1].mean())
        angle = rng.uniform(-0.2, 0.2)
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        centre = points[bar].mean(0)
        shift = np.array([rng.uniform(-0.05, 0.15), -rng.uniform(0.08, 0.3)]) * h  # right a little, well up
        moved = (points[bar] - centre) @ turn.T + centre + shift
        return [moved if k == bar else st for k, st in enumerate(points)]
    return None


def writer_jitter(strokes, rng: np.random.Generator) -> list[np.ndarray]:
    """The same pen digit as another hand might write it: leaning (shear up to 0.3), narrower or wider (x0.75-
    1.25), turned (up to 8 degrees), bent by a smooth wave of ~4 % of its height, and, written in several
    strokes, each stroke a little apart (~3 %). Writers differ in all of these; the 28x28 warp in training only
    moves whole images. Returns new strokes (y down, the item's units)."""
    points = [np.asarray(st, np.float64).reshape(-1, 2) for st in strokes if len(st)]
    if not points:
        raise ValueError("nothing to jitter: the item has no points")
    everything = np.concatenate(points)
    centre = (everything.min(0) + everything.max(0)) / 2
    h = max(np.ptp(everything[:, 1]), np.ptp(everything[:, 0]), 1e-6)  # the item's size, its units
    angle, shear, width = rng.uniform(-0.14, 0.14), rng.uniform(-0.3, 0.3), rng.uniform(0.75, 1.25)
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.array([[cos, -sin], [sin, cos]]) @ np.array([[width, -shear], [0.0, 1.0]])  # shear: x moves with y
    direction = rng.normal(size=(2, 2))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    wave_len, phase = rng.uniform(0.8, 2.0) * h, rng.uniform(0, 2 * np.pi, 2)
    out = []
    for st in points:
        st = _densify(st, 0.03 * h)
        bend = sum(0.04 * h * np.sin(2 * np.pi * (st @ direction[k]) / wave_len + phase[k])[:, None] * direction[1 - k]
                   for k in range(2))
        apart = rng.normal(0, 0.03 * h, 2) if len(points) > 1 else 0.0
        out.append((st - centre + bend) @ matrix.T + centre + apart)
    return out


def _line(a, b, n: int = 8) -> np.ndarray:
    """A straight stroke from a to b as n points, (n, 2)."""
    return np.asarray(a, np.float64) + (np.asarray(b, np.float64) - np.asarray(a, np.float64)) * np.linspace(0, 1, n)[:, None]


# --- things that are not digits ---------------------------------------------------------------------------

def nondigit_strokes(rng: np.random.Generator, kind: str | None = None) -> list[np.ndarray]:
    """A random drawing that is not a digit (spiral, smiley, star, ...): a list of (n, 2) float (x, y) strokes,
    y down, in arbitrary units. `kind` picks the shape (one of NONDIGIT_KINDS), else a random one."""
    if kind is None:
        kind = NONDIGIT_KINDS[rng.integers(len(NONDIGIT_KINDS))]
    if kind not in _SHAPES:
        raise ValueError(f"unknown kind {kind!r}; expected one of {NONDIGIT_KINDS}")
    strokes = _SHAPES[kind](rng)
    return _hand_drawn(strokes, rng)


def _arc(cx, cy, rx, ry, start, stop, n=32) -> np.ndarray:
    """Points along an ellipse from angle start to stop (radians, clockwise on screen as y is down)."""
    t = np.linspace(start, stop, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _polyline(*xy) -> np.ndarray:
    """Corner points (x, y) ... -> an (n, 2) stroke."""
    return np.asarray(xy, np.float64)


def _closed(corners: np.ndarray) -> np.ndarray:
    """A polygon drawn in one stroke back to its start."""
    return np.vstack([corners, corners[:1]])


def _spiral(rng):
    turns = rng.uniform(1.8, 4)
    t = np.linspace(0, 2 * np.pi * turns, int(40 * turns))
    r = 0.08 + t / t[-1]
    angle = t * rng.choice([-1, 1]) + rng.uniform(0, 2 * np.pi)
    return [np.stack([r * np.cos(angle), r * np.sin(angle)], 1)]


def _scribble(rng):
    corners = rng.uniform(-1, 1, (rng.integers(8, 20), 2))
    for _ in range(2):  # Chaikin corner cutting: a quick hand does not make sharp corners
        corners = np.vstack([0.75 * corners[:-1] + 0.25 * corners[1:], 0.25 * corners[:-1] + 0.75 * corners[1:]])
        corners = corners.reshape(2, -1, 2).transpose(1, 0, 2).reshape(-1, 2)
    return [corners]


def _zigzag(rng):
    teeth = rng.integers(3, 8)
    x = np.linspace(-1, 1, 2 * teeth + 1)
    y = np.where(np.arange(len(x)) % 2, 1.0, -1.0) * rng.uniform(0.2, 0.6)
    stroke = np.stack([x, y], 1)
    return [stroke if rng.random() < 0.7 else stroke[:, ::-1]]  # mostly across, sometimes down


def _smiley(rng):
    start = rng.uniform(0, 2 * np.pi)
    face = _arc(0, 0, 1, rng.uniform(0.85, 1.15), start, start + 2 * np.pi * rng.uniform(1.0, 1.08), 64)
    eye_y, eye_x = rng.uniform(-0.45, -0.25), rng.uniform(0.25, 0.45)
    if rng.random() < 0.5:  # dots
        eyes = [np.array([[-eye_x, eye_y]]), np.array([[eye_x, eye_y]])]
    else:  # short dashes
        eyes = [_polyline((x, eye_y - 0.12), (x, eye_y + 0.12)) for x in (-eye_x, eye_x)]
    width = rng.uniform(0.35, 0.6)
    mouth = _arc(0, rng.uniform(0.05, 0.2), width, rng.uniform(0.2, 0.4), 0.15 * np.pi, 0.85 * np.pi, 16)
    if rng.random() < 0.2:  # a sad face
        mouth = mouth * [1, -1] + [0, 0.9]
    return [face, *eyes, mouth]


def _star(rng):
    points = rng.choice([5, 5, 6])
    spin = rng.uniform(0, 2 * np.pi)
    if points == 5 and rng.random() < 0.5:  # pentagram in one stroke
        t = spin + np.arange(6) * 4 * np.pi / 5
        return [np.stack([np.cos(t), np.sin(t)], 1)]
    t = spin + np.arange(2 * points) * np.pi / points
    r = np.where(np.arange(2 * points) % 2, rng.uniform(0.35, 0.55), 1.0)
    return [_closed(np.stack([r * np.cos(t), r * np.sin(t)], 1))]


def _cross(rng):
    a, b = rng.uniform(0.7, 1), rng.uniform(0.7, 1)
    lines = [_polyline((-a, 0), (a, 0)), _polyline((0, -b), (0, b))]  # plus
    if rng.random() < 0.5:  # times
        lines = [_polyline((-a, -b), (a, b)), _polyline((a, -b), (-a, b))]
    return lines


def _hash(rng):
    slant, gap = rng.uniform(0, 0.3), rng.uniform(0.25, 0.45)
    across = [_polyline((-1, y), (1, y)) for y in (-gap, gap)]
    down = [_polyline((x + slant, -1), (x - slant, 1)) for x in (-gap, gap)]
    return down + across


def _square(rng):
    w, h = rng.uniform(0.6, 1), rng.uniform(0.6, 1)
    return [_closed(np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) + rng.normal(0, 0.05, (4, 2)))]


def _triangle(rng):
    t = rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3
    return [_closed(np.stack([np.cos(t), np.sin(t)], 1) + rng.normal(0, 0.05, (3, 2)))]


def _wave(rng):
    periods = rng.uniform(1.5, 4)
    x = np.linspace(-1, 1, int(30 * periods))
    y = rng.uniform(0.15, 0.4) * np.sin(np.pi * periods * x + rng.uniform(0, 2 * np.pi))
    return [np.stack([x, y], 1)]


def _letter_h(rng):
    w, bar = rng.uniform(0.5, 0.9), rng.uniform(-0.15, 0.15)
    return [_polyline((-w, -1), (-w, 1)), _polyline((w, -1), (w, 1)), _polyline((-w, bar), (w, bar))]


def _heart(rng):
    t = np.linspace(0, 2 * np.pi, 64)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))  # y down: the point at the bottom
    return [np.stack([x, y], 1) / 16]


def _arrow(rng):
    head = rng.uniform(0.25, 0.45)
    shaft = _polyline((-1, 0), (1, 0))
    barbs = _polyline((1 - head, -head), (1, 0), (1 - head, head))
    lines = [shaft, barbs]
    angle = rng.choice([0, np.pi / 2, np.pi, -np.pi / 2])  # pointing right, down, left or up
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return [s @ rotation.T for s in lines]


def _hatch(rng):
    lines, slope = rng.integers(4, 10), rng.uniform(-1, 1)
    offsets = np.linspace(-1, 1, lines)
    return [_polyline((-0.6 + o, -1 + slope * o), (0.6 + o, 1 + slope * o)) for o in offsets]


_SHAPES = MappingProxyType({
    "spiral": _spiral, "scribble": _scribble, "zigzag": _zigzag, "smiley": _smiley, "star": _star,
    "cross": _cross, "hash": _hash, "square": _square, "triangle": _triangle, "wave": _wave,
    "letter_h": _letter_h, "heart": _heart, "arrow": _arrow, "hatch": _hatch,
})
NONDIGIT_KINDS = tuple(_SHAPES)


def _hand_drawn(strokes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A shape as a hand draws it: tilted a little, stretched a little, points every ~2 % of its size,
    each nudged by a smooth tremor of ~0.5 % of its size."""
    angle = rng.normal(0, 0.15)  # radians
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    stretch = np.exp(rng.normal(0, 0.15, 2))  # x and y
    out = []
    for s in strokes:
        s = _densify(np.asarray(s, np.float64), step=0.04) @ turn.T * stretch
        noise = rng.normal(0, 0.01, s.shape)
        if len(s) > 2:  # smooth the noise along the stroke: tremor, not grain
            noise[1:-1] = (noise[:-2] + noise[1:-1] + noise[2:]) / 3
        out.append(s + noise)
    return out


def _densify(stroke: np.ndarray, step: float) -> np.ndarray:
    """Extra points on long segments so that no two points are more than `step` apart (units of the shape)."""
    if len(stroke) < 2:
        return stroke
    pieces = []
    for a, b in zip(stroke[:-1], stroke[1:]):
        n = max(1, math.ceil(np.hypot(*(b - a)) / step))
        pieces.append(a + (b - a) * np.linspace(0, 1, n, endpoint=False)[:, None])
    return np.vstack(pieces + [stroke[-1:]])


# --- evaluation -------------------------------------------------------------------------------------------

def naive_input28(canvas: np.ndarray) -> np.ndarray:
    """What typical MNIST demos feed the network: the whole canvas in grey, inverted (white ink on black),
    resized to 28x28 (Pillow, bilinear) and scaled to [0, 1]; (28, 28) float32."""
    grey = Image.fromarray(canvas).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    return (255 - np.asarray(grey, np.float32)) / 255


RECORD = np.dtype([("index", int), ("number", int), ("blank", bool), ("digit", int), ("sum", int),
                   ("flagged", bool), ("score", float), ("max_prob", float), ("naive_digit", int),
                   ("naive_sum", int)])


def read_items(predictor, items, indices, kind_id: int, seed: int, naive: bool) -> np.ndarray:
    """Draw each item (random canvas, number from an rng seeded by (seed, kind_id, index), so the same item
    always gets the same drawing and number) and run `predictor.predict`; (N,) RECORD array.

    A blank reading (None) has blank=True, digit and sum -1, not flagged and NaN scores. With `naive`, the
    naive baseline's digit and sum too (else -1).
    """
    out = np.zeros(len(items), RECORD)
    for row, strokes, index in zip(out, items, indices):  # rows of a structured array are views: filled in place
        rng = np.random.default_rng((seed, kind_id, int(index)))
        number = int(rng.integers(10))
        canvas = render_random(strokes, rng)
        p = predictor.predict(canvas, number)
        row["index"], row["number"], row["blank"] = index, number, p is None
        if p is None:
            row["digit"] = row["sum"] = -1
            row["score"] = row["max_prob"] = np.nan
        else:
            row["digit"], row["sum"], row["flagged"] = p.digit, p.sum, not p.is_digit
            row["max_prob"] = max(p.digit_probs)
            row["score"] = getattr(p, "digit_score", row["max_prob"])  # higher = more digit-like
        row["naive_digit"] = row["naive_sum"] = -1
        if naive:
            q = predictor.predict28(naive_input28(canvas), number)
            row["naive_digit"], row["naive_sum"] = q.digit, q.sum
    return out


def _read_job(job: tuple) -> np.ndarray:
    """read_items in a worker process, on one CPU thread (the workers share the cores)."""
    import torch  # the predictor's library; only touched here to keep each worker on one thread

    torch.set_num_threads(1)
    return read_items(*job)


def _read_all(predictor, pen: PenSet, kind_id: int, indices: np.ndarray, seed: int, naive: bool, workers: int,
              bar) -> np.ndarray:
    """read_items over `indices` of `pen`, in `workers` processes (fork) when more than one."""
    if workers <= 1:
        chunks = [indices[i:i + 1] for i in range(len(indices))]  # one at a time: a smooth progress bar
        parts = []
        for chunk in chunks:
            parts.append(read_items(predictor, [pen.items[i] for i in chunk], chunk, kind_id, seed, naive))
            bar.update(len(chunk))
        return np.concatenate(parts) if parts else np.zeros(0, RECORD)
    jobs = [(predictor, [pen.items[i] for i in chunk], chunk, kind_id, seed, naive)
            for chunk in np.array_split(indices, max(1, math.ceil(len(indices) / CHUNK)))]
    parts = []
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for part in pool.imap(_read_job, jobs):
            parts.append(part)
            bar.update(len(part))
    return np.concatenate(parts) if parts else np.zeros(0, RECORD)


def sample_indices(n: int, limit: int | None, seed: int) -> np.ndarray:
    """All of range(n), or a fixed random `limit` of them (seeded), in ascending order."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng((seed, 99)).permutation(n)[:limit])


def evaluate_pen(predictor, digits: PenSet, letters: PenSet | None = None, seed: int = 0, limit: int | None = None,
                 progress: bool = True, workers: int = 1, flag_rates=FLAG_RATES,
                 max_prob_threshold: float = MAX_PROB_THRESHOLD) -> dict:
    """A Predictor on real pen-written digits (and letters): accuracy, naive baseline, not-a-digit flags.

    Every item is drawn on a random 400 or 800 px canvas and read through `predictor.predict(canvas, number)`
    with a number drawn per item, so sums are tested too. `limit` keeps a fixed random subsample of at most
    that many items of each set; `workers` > 1 reads in that many processes (same figures). Returns a
    JSON-serialisable dict; see format_pen_report.
    """
    started = time.perf_counter()
    digit_idx = sample_indices(len(digits), limit, seed)
    letter_idx = sample_indices(len(letters), limit, seed) if letters is not None else np.zeros(0, int)
    with tqdm(total=len(digit_idx) + len(letter_idx), desc="pen", disable=not progress) as bar:
        d = _read_all(predictor, digits, 0, digit_idx, seed, True, workers, bar)
        l_rec = _read_all(predictor, letters, 1, letter_idx, seed, False, workers, bar) if letters is not None else None
    truth = digits.labels[d["index"]]
    d_source = digits.source[d["index"]]
    report = {
        "seed": seed, "limit": limit, "canvas_sides": list(CANVAS_SIDES), "height_range": list(HEIGHT_RANGE),
        "brush_range": list(BRUSH_RANGE), "max_prob_threshold": max_prob_threshold,
        "digits": {
            "all": _digit_figures(d, truth, max_prob_threshold),
            "sources": {s: _digit_figures(d[d_source == s], truth[d_source == s], max_prob_threshold)
                        for s in sorted(set(d_source.tolist()))},
            "confusions": {s: _confusions(d[d_source == s], truth[d_source == s])
                           for s in sorted(set(d_source.tolist()))},
        },
        "letters": None,
        "roc": None,
    }
    if l_rec is not None:
        chars = letters.labels[l_rec["index"]]
        other = ~np.isin(chars, sorted(DIGIT_LIKE_LETTERS))
        report["letters"] = _letter_figures(l_rec, chars, other, letters.source[l_rec["index"]], max_prob_threshold)
        report["roc"] = _roc(d, l_rec[other], flag_rates)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _share(mask: np.ndarray) -> float:
    """The share of True in a boolean array (0.0 when empty)."""
    return float(mask.mean()) if mask.size else 0.0


def _digit_figures(rec: np.ndarray, truth: np.ndarray, max_prob_threshold: float) -> dict:
    """Accuracy, naive baseline accuracy and flag rates of digit records; blanks count as wrong."""
    return {
        "n": int(len(rec)),
        "digit_accuracy": _share(rec["digit"] == truth),
        "sum_accuracy": _share(rec["sum"] == truth + rec["number"]),
        "naive_digit_accuracy": _share(rec["naive_digit"] == truth),
        "naive_sum_accuracy": _share(rec["naive_sum"] == truth + rec["number"]),
        "flagged": _share(rec["flagged"]),
        "max_prob_flagged": _share(rec["max_prob"] < max_prob_threshold),
        "blank": int(rec["blank"].sum()),
    }


def _confusions(rec: np.ndarray, truth: np.ndarray, top: int = 5) -> list[list[int]]:
    """The most common (true digit, read as, count) mistakes, blanks left out."""
    wrong = (rec["digit"] != truth) & ~rec["blank"]
    pairs = Counter(zip(truth[wrong].tolist(), rec["digit"][wrong].tolist()))
    return [[t, p, n] for (t, p), n in pairs.most_common(top)]


def _letter_figures(rec: np.ndarray, chars: np.ndarray, other: np.ndarray, source: np.ndarray,
                    max_prob_threshold: float) -> dict:
    """Not-a-digit flag rates on letters: over letters not written like digits (`other`), and over all."""
    low = rec["max_prob"] < max_prob_threshold
    per_letter = {}
    for c in sorted(set(chars.tolist())):
        mine = chars == c
        read = Counter(rec["digit"][mine & ~rec["blank"]].tolist()).most_common(1)
        per_letter[c] = {"n": int(mine.sum()), "flagged": int(rec["flagged"][mine].sum()),
                         "max_prob_flagged": int(low[mine].sum()), "read_as": read[0][0] if read else None}
    return {
        "n": int(len(rec)), "n_not_digit_like": int(other.sum()),
        "flagged": _share(rec["flagged"][other]), "flagged_all": _share(rec["flagged"]),
        "max_prob_flagged": _share(low[other]), "max_prob_flagged_all": _share(low),
        "blank": int(rec["blank"].sum()),
        "sources": {s: {"n": int((other & (source == s)).sum()), "flagged": _share(rec["flagged"][other & (source == s)]),
                        "max_prob_flagged": _share(low[other & (source == s)])}
                    for s in sorted(set(source.tolist()))},
        "per_letter": per_letter,
    }


def _roc(digits: np.ndarray, letters: np.ndarray, flag_rates) -> list[dict]:
    """For each target share of digits flagged: the digit_score and max-probability thresholds that flag that
    share (flag when score < threshold), and the shares of digits and of (not digit-like) letters flagged.
    Comparing both rules at the same cost in digits is what tells which one separates better."""
    rows = []
    for rate in flag_rates:
        row = {"target": rate}
        for name, field in (("digit_score", "score"), ("max_prob", "max_prob")):
            scores = digits[field][np.isfinite(digits[field])]  # blanks (NaN) have no score
            threshold = float(np.quantile(scores, rate)) if scores.size else float("nan")
            row[name] = {"threshold": threshold, "digits_flagged": _share(digits[field] < threshold),
                         "letters_flagged": _share(letters[field] < threshold)}
        rows.append(row)
    return rows


def format_pen_report(report: dict) -> str:
    """The report as plain-text tables: digits per source, letters, then the ROC comparison."""
    t = report["max_prob_threshold"]
    lines = [f"pen-written digits (UNIPEN) on {'/'.join(map(str, report['canvas_sides']))} px canvases, "
             f"seed {report['seed']}" + (f", at most {report['limit']} items per set" if report["limit"] else ""),
             f"{'source':<8} {'items':>6} {'digit':>7} {'sum':>7} {'naive d':>8} {'naive s':>8} {'flagged':>8} "
             f"{f'p<{t:g}':>7} {'blank':>5}  most common mistakes (true>read x count)"]
    digits = report["digits"]
    for name, r in [*digits["sources"].items(), ("all", digits["all"])]:
        mistakes = " ".join(f"{a}>{b}x{n}" for a, b, n in digits["confusions"].get(name, [])[:4])
        lines.append(f"{name:<8} {r['n']:>6} {r['digit_accuracy']:>7.2%} {r['sum_accuracy']:>7.2%} "
                     f"{r['naive_digit_accuracy']:>8.2%} {r['naive_sum_accuracy']:>8.2%} {r['flagged']:>8.2%} "
                     f"{r['max_prob_flagged']:>7.2%} {r['blank']:>5}  {mistakes}")
    letters = report["letters"]
    if letters:
        lines += ["", f"letters: {letters['n']} drawn, {letters['n_not_digit_like']} not written like digits "
                      f"(leaving out {''.join(sorted(DIGIT_LIKE_LETTERS))})",
                  f"  flagged not-a-digit: {letters['flagged']:.2%} (all letters {letters['flagged_all']:.2%}); "
                  f"max prob < {t:g}: {letters['max_prob_flagged']:.2%} (all {letters['max_prob_flagged_all']:.2%}); "
                  f"blank {letters['blank']}",
                  "  per source: " + ", ".join(f"{s} {r['flagged']:.1%} / p<{t:g} {r['max_prob_flagged']:.1%} (n={r['n']})"
                                                for s, r in letters["sources"].items())]
        folds = report.get("folds") or [{"roc": report["roc"]}]
        for fold in folds:
            title = f" ({fold['weights']}, on {', '.join(fold['sources'])})" if "weights" in fold else ""
            lines += ["", f"flag when score < threshold: digits flagged vs letters flagged (not digit-like){title}",
                      f"{'target':>7}  {'digit_score: thr':>17} {'digits':>7} {'letters':>8}  "
                      f"{'max prob: thr':>14} {'digits':>7} {'letters':>8}"]
            for row in fold["roc"]:
                a, b = row["digit_score"], row["max_prob"]
                lines.append(f"{row['target']:>7.1%}  {a['threshold']:>17.4g} {a['digits_flagged']:>7.2%} "
                             f"{a['letters_flagged']:>8.2%}  {b['threshold']:>14.4g} {b['digits_flagged']:>7.2%} "
                             f"{b['letters_flagged']:>8.2%}")
    lines.append(f"\n{report['seconds']:.0f} s")
    return "\n".join(lines)

