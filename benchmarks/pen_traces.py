"""Digits drawn on the app's pad in a real browser, as a person would: the browser tests and benchmarks use it.

DIGIT_STROKES holds each digit 0-9 as one to three pen strokes (polylines in the unit square of the drawing
area, x right, y down), NONDIGIT_STROKES an H, a spiral, a smiley and a scribble. `trace` turns a stroke into
evenly spaced pointer positions; `draw_with_mouse` and `draw_with_finger` move Chromium's real input
(Playwright's mouse, CDP touch events) along them, `ink_pixels` counts the dark pixels the drawing area
shows on screen and `pad_pixels` reads the canvas' own pixels.

The pad (pad.py, web/pad.js) is a plain 2D <canvas> that fills its square: the drawing area is the canvas'
box on screen, and the pad needs no WebGL, so Chromium runs with --disable-gpu.
"""

import base64
import io
import math
import time

import numpy as np

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
INK_LEVEL = 128  # a screen pixel darker than this (0-255 grey) is ink; the paper is white


def arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 24) -> list:
    """Points on an ellipse from angle start to stop in degrees (0 = right, 90 = down, as on screen)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, stop, n)]


# Each digit as its strokes, in the order and direction a person draws them, about 60 % of the pad high.
DIGIT_STROKES = {
    0: [arc(0.5, 0.5, 0.17, 0.30, -90, -450)],
    1: [[(0.50, 0.18), (0.49, 0.82)]],
    2: [arc(0.5, 0.34, 0.16, 0.14, 190, 380, 16) + [(0.33, 0.80), (0.70, 0.80)]],
    3: [arc(0.49, 0.34, 0.15, 0.14, 200, 450, 18) + arc(0.49, 0.64, 0.17, 0.16, 270, 500, 18)[1:]],
    4: [[(0.56, 0.18), (0.32, 0.60), (0.72, 0.60)], [(0.60, 0.36), (0.60, 0.82)]],
    5: [[(0.40, 0.20), (0.37, 0.48)] + arc(0.49, 0.62, 0.17, 0.16, 235, 500, 18)[1:], [(0.40, 0.20), (0.68, 0.20)]],
    6: [[(0.62, 0.18), (0.45, 0.36)] + arc(0.5, 0.64, 0.16, 0.17, 195, 560, 26)],
    7: [[(0.30, 0.22), (0.70, 0.22), (0.45, 0.82)]],
    8: [arc(0.5, 0.33, 0.13, 0.14, 90, 450, 22), arc(0.5, 0.66, 0.16, 0.17, -90, 270, 24)],
    9: [arc(0.5, 0.35, 0.15, 0.15, 0, 360, 24), [(0.65, 0.35), (0.62, 0.82)]],
}

# Drawings that are not digits, as a person might try the not-a-digit state: the same units as DIGIT_STROKES.
NONDIGIT_STROKES = {
    "H": [[(0.32, 0.20), (0.32, 0.80)], [(0.68, 0.20), (0.68, 0.80)], [(0.32, 0.50), (0.68, 0.50)]],
    "spiral": [[(0.5 + r * math.cos(a), 0.5 + r * math.sin(a))
                for a, r in zip(np.linspace(0, 6 * math.pi, 60), np.linspace(0.02, 0.32, 60))]],
    "smiley": [arc(0.5, 0.5, 0.32, 0.32, -90, 270, 32), [(0.39, 0.38), (0.39, 0.44)], [(0.61, 0.38), (0.61, 0.44)],
               arc(0.5, 0.56, 0.17, 0.12, 15, 165, 12)],
    "scribble": [[(0.22, 0.28), (0.78, 0.34), (0.24, 0.44), (0.80, 0.50), (0.26, 0.60), (0.78, 0.66), (0.24, 0.76)]],
}


def trace(stroke, moves: int) -> np.ndarray:
    """moves + 1 points evenly spaced along a polyline (unit square): the pen-down point, then one per move."""
    points = np.asarray(stroke, dtype=float)
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    at = np.linspace(0.0, along[-1], moves + 1)
    return np.stack([np.interp(at, along, points[:, 0]), np.interp(at, along, points[:, 1])], axis=1)


def drawing_area(page) -> dict:
    """The drawable square on screen: x, y (top left) and side, in CSS pixels (the pad's canvas fills it)."""
    box = page.locator("#sketch canvas").first.bounding_box()
    return {"x": box["x"], "y": box["y"], "side": box["width"]}


def on_screen(area: dict, points: np.ndarray) -> list[tuple[float, float]]:
    """Unit-square points as page coordinates inside the drawing area."""
    return [(area["x"] + x * area["side"], area["y"] + y * area["side"]) for x, y in points]


def draw_with_mouse(page, stroke, moves: int, pause: float = 0.005, area: dict | None = None) -> None:
    """One stroke with the mouse: button down, `moves` moves along it (pause seconds apart), button up."""
    points = on_screen(area or drawing_area(page), trace(stroke, moves))
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point)
        time.sleep(pause)
    page.mouse.up()


def draw_with_finger(cdp, area: dict, stroke, moves: int) -> None:
    """One stroke with a finger, through CDP touch events (Input.dispatchTouchEvent): start, moves, end."""
    points = on_screen(area, trace(stroke, moves))
    start = {"x": points[0][0], "y": points[0][1]}
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [start]})
    for x, y in points[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def ink_pixels(page, area: dict | None = None) -> int:
    """How many screen pixels of the drawing area are ink (darker than INK_LEVEL), from a screenshot."""
    from PIL import Image

    area = area or drawing_area(page)
    inset = 2  # the square's edge (a 1 px shadow outside it, rounded corners) is not ink
    clip = {"x": area["x"] + inset, "y": area["y"] + inset, "width": area["side"] - 2 * inset,
            "height": area["side"] - 2 * inset, "scale": 1}
    # CDP's screenshot with optimizeForSpeed: a third of the time of page.screenshot on a software-rendered page
    cdp = page.context.new_cdp_session(page)
    try:
        shot = cdp.send("Page.captureScreenshot", {"format": "png", "clip": clip, "optimizeForSpeed": True})
    finally:
        cdp.detach()
    png = base64.b64decode(shot["data"])
    return int((np.asarray(Image.open(io.BytesIO(png)).convert("L")) < INK_LEVEL).sum())


# The pad canvas' pixels (web/pad.js's pad.pixels(): getImageData of the whole canvas), RGBA bytes as base64.
PAD_PIXELS_JS = """() => {
  const pixels = window.mnistSumPage.pad.pixels(), data = pixels.data;
  let bytes = "";
  for (let i = 0; i < data.length; i += 0x8000) bytes += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
  return {width: pixels.width, height: pixels.height, rgba: btoa(bytes)};
}"""


def pad_pixels(page) -> np.ndarray:
    """What the pad's canvas holds, as the page reads it: (height, width, 4) uint8 RGBA, in canvas pixels."""
    got = page.evaluate(PAD_PIXELS_JS)
    return np.frombuffer(base64.b64decode(got["rgba"]), np.uint8).reshape(got["height"], got["width"], 4)
