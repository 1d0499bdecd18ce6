"""Synthetic pen strokes for training: the same digit in another hand or style, and things that are not digits.

MNIST's writers, and UNIPEN's, are a few hundred people; `writer_jitter` writes a pen digit as another hand
might (leaning, wider, bent), `styled` in a style common outside the US that MNIST barely has (a slashed
zero, a flagged one, a crossed seven), and `nondigit_strokes` draws what people scribble on a digit demo
instead of a digit (spirals, smileys, stars, ...). All of them return strokes as `pen` holds them, so
`pen.render` draws them like real pen items; `pen_training` puts them in a --pen run's training data.
"""

import math
from types import MappingProxyType

import numpy as np


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
