"""The page's CPU painting and PNG encoding (web/paint.js, run in Node) against known truths. That the painted
pad matches the one the GPU draws is checked in Chromium (tests/test_page.py)."""

import base64
import io
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node (Node.js 20) is not installed: web/paint.js needs it")
PAINT = Path(__file__).resolve().parent.parent / "web" / "paint.js"


def node(script: str):
    """Run script in Node with `Paint` (web/paint.js) in scope; the JSON it prints."""
    code = f"const Paint = require({json.dumps(str(PAINT))});\n{script}"
    out = subprocess.run([NODE, "-"], input=code, capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)


def test_png_decodes_to_its_pixels():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (300, 237), dtype=np.uint8)  # rows of 238 bytes: more than one stored block
    encoded = node(f"""
      const grey = {json.dumps(grey.tolist())}, h = grey.length, w = grey[0].length;
      const rows = new Uint8Array(h * (w + 1));
      grey.forEach((row, y) => rows.set(row, y * (w + 1) + 1));
      console.log(JSON.stringify(Paint.base64(Paint.greyPng(rows, w, h))));""")
    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    image.load()  # checks every chunk's CRC and the zlib stream's checksum
    assert image.mode == "L" and np.array_equal(np.asarray(image), grey)


def painted(discs, resolution: float, side: int = 64, grey: int = 200) -> np.ndarray:
    """The red channel of a side x side pad, grey all over, with `discs` painted at `resolution`."""
    data = node(f"""
      const side = {side}, data = new Uint8ClampedArray(side * side * 4).fill({grey});
      const pad = new Paint.Pad({{data, width: side, height: side}}, {resolution});
      pad.add({json.dumps(discs)});
      console.log(JSON.stringify(Array.from(pad.pixels().data)));""")
    return np.array(data, dtype=np.uint8).reshape(side, side, 4)[..., 0]


@pytest.mark.parametrize("resolution", [0.5, 1, 2])
def test_a_disc_is_inked_where_it_lies_and_nowhere_else(resolution):
    radius, cx, cy = 12, 31.5, 30.5  # centred on a pixel's centre
    red = painted([[cx, cy, radius]], resolution)
    ink = red == 0
    y, x = np.mgrid[0:64, 0:64] + 0.5
    distance = np.hypot(x - cx, y - cy)
    slack = 1 / resolution  # a texel, in pixels
    assert ink[distance < radius - slack].all() and not ink[distance > radius + slack].any()
    assert abs(ink.sum() - math.pi * radius ** 2) < 2 * math.pi * radius * slack
    assert (red[~ink] == 200).all()  # what the pad showed stays where there is no ink


def test_painting_again_changes_nothing_and_order_does_not_matter():
    a, b = [10.2, 20.7, 6], [30.9, 25.1, 9]
    once = painted([a, b], 1)
    assert np.array_equal(painted([b, a, b, a], 1), once)
