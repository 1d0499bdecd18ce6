"""The page reads the pad itself (web/page.js, web/worker.js, web/reader.js), in Chromium through Playwright.

Its readings are checked against the Python Predictor: on 1,000 drawings put on a canvas in the page and read
by the page's own reader, and on the pad's own pixels after real strokes. No request reaches the server while
someone draws; where the page cannot read (no Worker, the reader or the model failing), the server does.
"""

import base64
import io
import os
import re
import time

import numpy as np
import PIL.Image
import pytest

import app
from benchmarks.pen_traces import DIGIT_STROKES, draw_with_finger, draw_with_mouse, \
    drawing_area, trace, on_screen
from mnist_sum.pen import load_pen, pen_folder, render
from mnist_sum.sketches import sketch_set

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000
LAPTOP = {"width": 800, "height": 720}
PHONE = {"width": 390, "height": 844}
DRAWINGS = int(os.environ.get("MNIST_SUM_PAGE_DRAWINGS") or 1000)  # the parity check's drawings
BATCH = 50  # drawings per page.evaluate
SKETCHES = 500  # of DRAWINGS from the drawn-digit set, the rest pen digits and letters (4:1)
MAX_GREY_LEVELS = 3  # the page's and Python's 28x28 inputs differ by at most this (0-255)

# Reads PNG data URLs in the page: each drawn on a canvas, its pixels read by the page's own reader.
READ_PNGS_JS = """async ([urls, numbers]) => {
  const out = [];
  for (let i = 0; i < urls.length; i++) {
    const image = new Image();
    image.src = urls[i];
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext("2d", {willReadFrequently: true});
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
    const r = await window.mnistSumPage.readPixels(pixels.data, pixels.width, pixels.height, numbers[i]);
    out.push(r && {digit: r.digit, sum: r.sum, isDigit: r.isDigit, input28: Array.from(r.input28)});
  }
  return out;
}"""
# The pad's pixels as the page reads them, as a PNG data URL.
PAD_PNG_JS = """() => {
  const pixels = window.mnistSumPage.padPixels();
  const canvas = document.createElement("canvas");
  canvas.width = pixels.width;
  canvas.height = pixels.height;
  canvas.getContext("2d").putImageData(new ImageData(pixels.data, pixels.width, pixels.height), 0, 0);
  return canvas.toDataURL("image/png");
}"""


def open_page(browser, url: str, viewport: dict = LAPTOP, block: str | None = None, init_script: str | None = None,
              **options):
    """(context, page, requests): the app loaded, its pad ready; requests lists (time, url) of every request.
    block: a URL pattern whose requests fail; init_script: JavaScript run before the page's own."""
    context = browser.new_context(viewport=viewport, device_scale_factor=options.pop("device_scale_factor", 0.5),
                                  **options)
    if block:
        context.route(block, lambda route: route.abort())
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    requests = []
    page.on("request", lambda r: requests.append((time.monotonic(), r.url)))
    page.goto(url)
    page.locator("#sketch button[aria-label=Brush].highlight").wait_for()
    page.wait_for_function("() => window.mnistSumPage && window.mnistSumPage.mode !== 'starting'")
    return context, page, requests


def mode(page) -> str:
    """Who reads the pad: 'local' (the page) or 'server'."""
    return page.evaluate("() => window.mnistSumPage.mode")


def png_url(image) -> str:
    """An image (PIL or array) as a PNG data URL."""
    buffer = io.BytesIO()
    (image if isinstance(image, PIL.Image.Image) else PIL.Image.fromarray(image)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def pixels_of(url: str) -> np.ndarray:
    """A PNG data URL's pixels, as Python reads them."""
    return np.asarray(PIL.Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def drawings(mnist_test, n: int) -> list[tuple[np.ndarray, int]]:
    """n drawings as the pad makes them (black ink on opaque white RGBA) and a number each: the drawn-digit set,
    then UNIPEN pen digits and letters drawn on the pad's 400 px canvas."""
    out = [(np.asarray(s.image.convert("RGBA")), s.number)
           for s in sketch_set(mnist_test, min(SKETCHES, n), formats=("dark_on_light",))]
    folder = pen_folder()
    if folder is None:
        pytest.skip("no pen data (pendigits/digits.npz)")
    rng = np.random.default_rng(0)
    rest = n - len(out)
    for kind, count in (("digits", rest - rest // 5), ("letters", rest // 5)):
        pen = load_pen(folder, kind)
        for i in rng.choice(len(pen), count, replace=False):
            rgb = render(pen.items[i], app.CANVAS, rng)
            out.append((np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), int(rng.integers(10))))
    return out


# --- the page's reading is the Predictor's ----------------------------------------------------------------

def test_page_reads_like_the_predictor(browser, server_url, mnist_test):
    context, page, _ = open_page(browser, server_url)
    try:
        assert mode(page) == "local", page.evaluate("() => window.mnistSumPage.why")
        items = drawings(mnist_test, DRAWINGS)
        urls = [png_url(rgba) for rgba, _ in items]
        numbers = [number for _, number in items]
        page_results = []
        for start in range(0, len(items), BATCH):
            page_results += page.evaluate(READ_PNGS_JS, [urls[start:start + BATCH], numbers[start:start + BATCH]])
    finally:
        context.close()
    same, same_verdict, worst, blank_mismatch = 0, 0, 0, []
    for (rgba, number), url, mine in zip(items, urls, page_results):
        theirs = app.PREDICTOR.predict(pixels_of(url), number)
        if (theirs is None) != (mine is None):
            blank_mismatch.append(number)
            continue
        if theirs is None:
            same += 1
            same_verdict += 1
            continue
        same += mine["digit"] == theirs.digit and mine["sum"] == theirs.sum
        same_verdict += mine["isDigit"] == theirs.is_digit
        worst = max(worst, int(np.abs(np.array(mine["input28"]) - theirs.input28.ravel().astype(int)).max()))
    n = len(items)
    print(f"page vs Predictor on {n} drawings: same digit and sum {same}, same verdict {same_verdict}, "
          f"28x28 inputs at most {worst} grey levels apart")  # shown with pytest -s
    assert n == DRAWINGS and not blank_mismatch
    assert same >= 0.995 * n, f"same digit and sum on {same} of {n}"
    assert same_verdict >= 0.99 * n, f"same not-a-digit verdict on {same_verdict} of {n}"
    assert worst <= MAX_GREY_LEVELS, f"28x28 inputs differ by up to {worst} grey levels"

# The pad as the page paints it on the CPU against its pixels read back from the GPU: the ink pixels (red < 128)
# they disagree on, the GPU's ink pixels, and the largest difference between the two 28x28 inputs; null where
# the page would read the pad back.
PAINTED_JS = """async () => {
  const page = window.mnistSumPage, painted = page.paintedPixels(), pad = page.padPixels();
  if (!painted) return null;
  let ink = 0, differ = 0;
  for (let i = 0; i < pad.data.length; i += 4) {
    ink += pad.data[i] < 128;
    differ += (pad.data[i] < 128) !== (painted.data[i] < 128);
  }
  const a = await page.readPixels(painted.data, painted.width, painted.height, 3);
  const b = await page.readPixels(pad.data, pad.width, pad.height, 3);
  const grey = a && b ? Math.max(...a.input28.map((v, i) => Math.abs(v - b.input28[i]))) : (a === b ? 0 : 255);
  return {ink, differ, grey, painted: page.stats.cpuReads};
}"""


@pytest.mark.parametrize("scale", [0.5, 1, 2])
def test_strokes_are_painted_as_the_pad_draws_them(browser, server_url, scale):
    context, page, requests = open_page(browser, server_url, device_scale_factor=scale)
    try:
        area = drawing_area(page)
        for stroke in DIGIT_STROKES[4]:
            draw_with_mouse(page, stroke, 8, area=area)
        wait_for_equation(page, "4 + 3 = 7")
        got = page.evaluate(PAINTED_JS)
        assert got is not None and got["painted"] >= 2, got  # the pen-ups were read without the GPU
        assert got["ink"] > 1000 and got["differ"] <= 0.02 * got["ink"], got
        assert got["grey"] <= MAX_GREY_LEVELS, got
        # once idle, the page reads the pad back from the GPU to check what it painted
        page.wait_for_function("() => window.mnistSumPage.stats.checks.length > 0")
        assert max(page.evaluate("() => window.mnistSumPage.stats.checks")) <= MAX_GREY_LEVELS
    finally:
        context.close()


def test_what_is_not_a_stroke_is_read_back(browser, server_url):
    """An example, a stroke over it, undo and the eraser: each shows what app.predict shows for the pad."""
    context, page, requests = open_page(browser, server_url)
    try:
        def shows_the_pad():
            """Wait until the page shows what app.predict shows for the pad's pixels; the equation, the ink pixels."""
            pixels = pixels_of(page.evaluate(PAD_PNG_JS))
            want = expected(pixels, 3)
            wait_for_equation(page, want["equation"])
            return want["equation"], int((pixels[..., :3].mean(axis=-1) < 128).sum())

        area = drawing_area(page)
        page.locator("#examples [data-testid=dataset-cell-0-0]").click()
        page.wait_for_function("(prompt) => document.querySelector('#equation').innerText.trim() !== prompt",
                               arg=app.DRAW_PROMPT)
        page.locator("#number input[type=number]").fill("3")
        page.locator("#number input[type=number]").press("Enter")
        example, example_ink = shows_the_pad()
        draw_with_mouse(page, [(0.15, 0.15), (0.85, 0.85)], 8, area=area)  # a slash across the example
        slashed, slashed_ink = shows_the_pad()
        assert slashed_ink > example_ink
        page.locator("#sketch button[aria-label=Undo]").click()
        assert shows_the_pad() == (example, example_ink)
        draw_with_mouse(page, [(0.15, 0.15), (0.85, 0.85)], 8, area=area)
        slashed, slashed_ink = shows_the_pad()
        page.locator("#sketch button[aria-label=Erase]").click()  # the eraser takes strokes, not the example
        draw_with_mouse(page, [(0.85, 0.15), (0.15, 0.85)], 8, area=area)
        erased, erased_ink = shows_the_pad()
        assert example_ink < erased_ink < slashed_ink
    finally:
        context.close()


def shown(page) -> dict:
    """What the page shows: the two labels' headlines, the equation (plain text) and whether a view is shown."""
    def headline(element):
        value = page.locator(f"{element} [data-testid=label-output-value]")
        return value.inner_text().strip() if value.count() else None

    return {"digit": headline("#digit"), "sum": headline("#sum"), "equation": page.locator("#equation").inner_text().strip(),
            "seen": page.locator("#seen img").count() == 1}


def expected(pixels: np.ndarray, number: int) -> dict:
    """What app.predict shows for the same pixels, in the same terms as `shown`."""
    digit, total, equation, seen = app.predict(pixels, number)

    def headline(label):
        return label if isinstance(label, str) else max(label, key=label.get) if label else None

    text = re.sub(r"<[^>]+>", "", equation).replace("  ", " ").strip()
    return {"digit": headline(digit), "sum": headline(total), "equation": text, "seen": seen is not None}


def wait_for_equation(page, text: str, timeout_s: float = 30) -> None:
    """Until the page's equation line reads text (AssertionError after timeout_s)."""
    deadline = time.monotonic() + timeout_s
    while (now := page.locator("#equation").inner_text().strip()) != text:
        assert time.monotonic() < deadline, f"the equation reads {now!r}, not {text!r}"
        time.sleep(0.05)


SCRIBBLE = [[(0.25, 0.3), (0.75, 0.3)], [(0.25, 0.5), (0.75, 0.5)], [(0.35, 0.2), (0.35, 0.8)],
            [(0.65, 0.2), (0.65, 0.8)]]  # a hash sign


@pytest.mark.parametrize("strokes", [DIGIT_STROKES[7], DIGIT_STROKES[4], SCRIBBLE], ids=["seven", "four", "hash"])
def test_page_shows_what_predict_shows_for_the_pad(browser, server_url, strokes):
    context, page, requests = open_page(browser, server_url)
    try:
        assert mode(page) == "local"
        area = drawing_area(page)
        drawing_from = time.monotonic()
        for stroke in strokes:
            draw_with_mouse(page, stroke, 8, area=area)
        drawn_at = time.monotonic()
        pixels = pixels_of(page.evaluate(PAD_PNG_JS))
        want = expected(pixels, 3)
        wait_for_equation(page, want["equation"])
        assert shown(page) == want
        # nothing went to the server while drawing, nor since (the view is drawn in the page)
        assert [url for t, url in requests if t >= drawing_from] == [], (drawn_at, requests)
    finally:
        context.close()


def test_labels_update_while_drawing(browser, server_url):
    context, page, requests = open_page(browser, server_url)
    try:
        area = drawing_area(page)
        points = on_screen(area, trace(DIGIT_STROKES[7][0], 16))
        since = time.monotonic()
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        # the pen is still down: the page has read the stroke so far
        page.wait_for_function("() => document.querySelector('#equation').innerText.includes('+')")
        page.mouse.up()
        wait_for_equation(page, "7 + 3 = 10")
        assert [url for t, url in requests if t >= since] == []
        assert page.evaluate("() => window.mnistSumPage.stats.reads") >= 2
    finally:
        context.close()


def test_slider_and_clear_without_the_server(browser, server_url):
    context, page, requests = open_page(browser, server_url)
    try:
        draw_with_mouse(page, DIGIT_STROKES[1][0], 8)
        wait_for_equation(page, "1 + 3 = 4")
        since = time.monotonic()
        box = page.locator("#number input[type=number]")
        box.fill("8")
        box.press("Enter")
        wait_for_equation(page, "1 + 8 = 9")
        page.locator("#clear").click()
        wait_for_equation(page, app.DRAW_PROMPT)
        assert [url for t, url in requests if t >= since and "/gradio_api/" in url] == []
    finally:
        context.close()


# --- where the page cannot read, the server does ---------------------------------------------------------

BROKEN = {
    "model fails to load": {"block": "**/model-*.bin"},
    "reader script fails": {"block": "**/reader.js"},
    "no Worker": {"init_script": "delete window.Worker;"},
}


@pytest.mark.parametrize("why", list(BROKEN))
def test_server_reads_where_the_page_cannot(browser, server_url, why):
    context, page, requests = open_page(browser, server_url, **BROKEN[why])
    try:
        assert mode(page) == "server"
        since = time.monotonic()
        draw_with_mouse(page, DIGIT_STROKES[7][0], 8)
        wait_for_equation(page, "7 + 3 = 10")
        assert any("/gradio_api/queue/join" in url for t, url in requests if t >= since)
    finally:
        context.close()


def test_phone_reads_in_the_page(browser, server_url):
    context, page, requests = open_page(browser, server_url, PHONE, has_touch=True, is_mobile=True,
                                        device_scale_factor=1)
    try:
        assert mode(page) == "local"
        area = drawing_area(page)
        cdp = context.new_cdp_session(page)
        since = time.monotonic()
        for stroke in DIGIT_STROKES[4]:
            draw_with_finger(cdp, area, stroke, 12)
        wait_for_equation(page, "4 + 3 = 7")
        assert [url for t, url in requests if t >= since] == []
    finally:
        context.close()
