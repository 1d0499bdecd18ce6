"""Training draws pen strokes as the app's pad does: UNIPEN items drawn on the real pad (web/pad.js, in Chromium)
and by mnist_sum.pen.render, at the same place and with the pad's own brush, give the network the same 28x28
input and the same answer."""

import base64
import io

import numpy as np
import PIL.Image
import pytest

import app
from mnist_sum.pen import load_pen, pen_folder, place, render
from mnist_sum.preprocess import to_input28

pytestmark = pytest.mark.browser

ITEMS = 60  # UNIPEN digits drawn both ways
MAX_INK_RATIO = 0.01  # the two drawings' ink (sum of darkness) differ by at most 1 %
MAX_PIXEL_LEVELS = 1.0  # mean difference per pixel of the two drawings, grey levels of 255
MAX_INPUT_LEVELS = 2.5  # mean difference per pixel of the two 28x28 inputs, averaged over the items

# Draws strokes (pad units) on the pad with synthetic pen events; the canvas as a PNG data URL.
DRAW_JS = """async ([strokes, side]) => {
  const page = window.mnistSumPage, canvas = page.pad.canvas, box = canvas.getBoundingClientRect();
  const at = ([x, y]) => ({clientX: box.left + x * box.width / side, clientY: box.top + y * box.height / side,
                            pointerId: 7, pointerType: "pen", isPrimary: true, button: 0, buttons: 1, bubbles: true});
  page.pad.clear();
  for (const stroke of strokes) {
    canvas.dispatchEvent(new PointerEvent("pointerdown", at(stroke[0])));
    for (const p of stroke.slice(1)) canvas.dispatchEvent(new PointerEvent("pointermove", at(p)));
    canvas.dispatchEvent(new PointerEvent("pointerup", {...at(stroke.at(-1)), buttons: 0}));
  }
  return page.pad.png();
}"""


def test_pen_render_draws_as_the_pad(browser, server_url):
    folder = pen_folder()
    if folder is None:
        pytest.skip("no pen data (pendigits/digits.npz)")
    digits = load_pen(folder, "digits")
    rng = np.random.default_rng(3)
    brush = 2 * app.BRUSH_RADIUS / app.CANVAS  # the pad's brush, a share of its side
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    try:
        page = context.new_page()
        page.goto(server_url)
        page.wait_for_function("() => window.mnistSumPage && window.mnistSumPage.pad")
        side = page.evaluate("() => window.mnistSumPage.pad.canvas.width")  # canvas pixels: render at that size
        ink, pixel_levels, input_levels, same = [], [], [], 0
        for k in rng.choice(len(digits), ITEMS, replace=False):
            seed = int(rng.integers(1 << 30))
            lines, _ = place(digits.items[k], side, np.random.default_rng(seed), brush=brush)
            url = page.evaluate(DRAW_JS, [[(line * app.CANVAS / side).tolist() for line in lines], app.CANVAS])
            on_pad = np.asarray(PIL.Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("L"), float)
            rendered = render(digits.items[k], side, np.random.default_rng(seed), brush=brush)[..., 0].astype(float)
            ink.append(abs((255 - on_pad).sum() / (255 - rendered).sum() - 1))
            pixel_levels.append(np.abs(on_pad - rendered).mean())
            a, b = to_input28(on_pad.astype(np.uint8)), to_input28(rendered.astype(np.uint8))
            input_levels.append(np.abs(np.round(a * 255) - np.round(b * 255)).mean())
            same += app.PREDICTOR.predict28(a, 3).digit == app.PREDICTOR.predict28(b, 3).digit
    finally:
        context.close()
    print(f"pad vs pen.render on {ITEMS} UNIPEN digits ({side} px): ink apart by at most {max(ink):.2%}, pixels "
          f"by at most {max(pixel_levels):.2f} grey levels on average, 28x28 inputs by {np.mean(input_levels):.2f}; "
          f"same digit {same}/{ITEMS}")  # shown with pytest -s
    assert max(ink) <= MAX_INK_RATIO and max(pixel_levels) <= MAX_PIXEL_LEVELS
    assert np.mean(input_levels) <= MAX_INPUT_LEVELS
    assert same >= ITEMS - 1
