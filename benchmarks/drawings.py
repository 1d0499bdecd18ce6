"""Synthetic hand-drawn digits for the benchmarks: black strokes on a white, opaque RGBA canvas.

Each digit is a few polylines in a unit box (x right, y down), scaled into the canvas with a little
random size, position, slant and stroke width, the way a person draws with the mouse in the sketchpad.
"""

import math
import random

import numpy as np
from PIL import Image, ImageDraw


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 24) -> list:
    """Points on an ellipse from angle start to stop (degrees, clockwise on screen)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, stop, n)]


STROKES = {  # digit -> polylines in the unit box
    0: [_arc(0.5, 0.5, 0.32, 0.45, 0, 360, 40)],
    1: [[(0.35, 0.22), (0.55, 0.05), (0.55, 0.95)]],
    2: [_arc(0.5, 0.3, 0.3, 0.25, 190, 380) + [(0.15, 0.95), (0.88, 0.95)]],
    3: [_arc(0.48, 0.27, 0.3, 0.22, 200, 450), _arc(0.48, 0.72, 0.33, 0.23, 270, 520)],
    4: [[(0.62, 0.05), (0.1, 0.65), (0.9, 0.65)], [(0.65, 0.3), (0.65, 0.95)]],
    5: [[(0.82, 0.05), (0.25, 0.05), (0.2, 0.45)] + _arc(0.5, 0.66, 0.33, 0.29, 225, 495)],
    6: [[(0.7, 0.05), (0.3, 0.45)] + _arc(0.5, 0.7, 0.3, 0.25, 200, 560)],
    7: [[(0.12, 0.05), (0.88, 0.05), (0.4, 0.95)]],
    8: [_arc(0.5, 0.27, 0.25, 0.22, 90, 450), _arc(0.5, 0.72, 0.31, 0.24, -90, 270)],
    9: [_arc(0.5, 0.3, 0.3, 0.25, 0, 360) + [(0.8, 0.3), (0.7, 0.95)]],
}


def draw_digit(digit: int, size: int = 800, width: int = 25, seed: int | None = None) -> Image.Image:
    """An RGBA image (size x size) of digit drawn in black strokes on opaque white; seed varies the hand."""
    rng = random.Random(seed)
    jitter = seed is not None
    box = size * (rng.uniform(0.45, 0.7) if jitter else 0.6)  # height of the digit
    aspect = rng.uniform(0.6, 0.8) if jitter else 0.7
    slant = rng.uniform(-0.2, 0.25) if jitter else 0.1
    cx = size / 2 + (rng.uniform(-0.12, 0.12) * size if jitter else 0)
    cy = size / 2 + (rng.uniform(-0.1, 0.1) * size if jitter else 0)
    stroke = max(1, round(width * (rng.uniform(0.8, 1.25) if jitter else 1)))

    def place(x: float, y: float) -> tuple[float, float]:
        """Unit box -> canvas pixels, slanted to the right."""
        return cx + (x - 0.5) * box * aspect + (0.5 - y) * box * slant, cy + (y - 0.5) * box

    img = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    draw = ImageDraw.Draw(img)
    for line in STROKES[digit]:
        points = [place(x, y) for x, y in line]
        draw.line(points, fill=(0, 0, 0, 255), width=stroke, joint="curve")
        r = stroke / 2  # round caps, as a brush leaves them
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(0, 0, 0, 255))
    return img


def draw_digit_array(digit: int, size: int = 800, width: int = 25, seed: int | None = None) -> np.ndarray:
    """draw_digit as a uint8 (size, size, 4) RGBA array, the form the sketchpad hands to the app."""
    return np.asarray(draw_digit(digit, size, width, seed))
