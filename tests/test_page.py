"""The page reads the pad itself (web/page.js, web/worker.js, web/reader.js), in Chromium through Playwright.

Its readings are checked against the Python Predictor: on 1,000 drawings put on a canvas in the page and read
by the page's own reader, and on the pad's own pixels (the canvas the person sees, pad.pixels()) after real
strokes; "How it adds" against Predictor.explain. No request reaches the server while someone draws; where the
page cannot read (no Worker or WebAssembly, the reader or the model failing), the server does.
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
from benchmarks.pen_traces import (DIGIT_STROKES, draw_with_finger, draw_with_mouse, drawing_area, on_screen,
                                   pad_pixels, trace)
from mnist_sum.pen import load_pen, pen_folder, render
from mnist_sum.sketches import sketch_set

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
DRAWINGS = int(os.environ.get("MNIST_SUM_PAGE_DRAWINGS") or 1000)  # the parity check's drawings
BATCH = 50  # drawings per page.evaluate
SKETCHES = 500  # of DRAWINGS from the drawn-digit set, the rest pen digits and letters (4:1)
MAX_GREY_LEVELS = 3  # the page's and Python's 28x28 inputs differ by at most this (0-255)
QUICK_MOVES = 8  # mouse moves per stroke: the pace does not matter here
EXAMPLES = app.find_examples()  # [[png path, number], ...], digit 0..9 in order

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
# The pad canvas' size in canvas pixels and on screen (CSS pixels), and the device's pixel ratio.
CANVAS_SIZE_JS = """() => {
  const canvas = document.querySelector("#sketch canvas"), box = canvas.getBoundingClientRect();
  return {width: canvas.width, height: canvas.height, css: box.width, ratio: window.devicePixelRatio};
}"""
# "How it adds" as shown: the what-if cells and the sum table's cells, in document order.
VIEW_JS = """() => ({
  whatIf: [...document.querySelectorAll("#what-if .what-if-cell")].map((cell) => ({
    number: cell.dataset.number, current: cell.classList.contains("current"),
    eq: cell.querySelector(".mse-wi-eq").textContent.trim(), p: cell.querySelector(".mse-wi-p").textContent.trim()})),
  table: [...document.querySelectorAll("#sum-table td[data-digit][data-number]")].map((cell) => ({
    digit: cell.dataset.digit, number: cell.dataset.number, text: cell.textContent.trim()})),
})"""


def open_page(browser, url: str, viewport: dict = DESKTOP, block: re.Pattern | None = None,
              init_script: str | None = None, **options):
    """(context, page, requests): the app loaded, its pad mounted and the page's reader ready (or given up for
    the server); requests lists (time, url) of every request. block: URLs (a pattern) whose requests fail;
    init_script: JavaScript run before the page's own."""
    context = browser.new_context(viewport=viewport, **options)
    if block:
        context.route(block, lambda route: route.abort())
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    requests = []
    page.on("request", lambda r: requests.append((time.monotonic(), r.url)))
    page.goto(url)
    page.locator("#sketch canvas").first.wait_for()
    page.wait_for_function("() => window.mnistSumPage && window.mnistSumPage.pad "
                           "&& window.mnistSumPage.mode !== 'starting'")
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

    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", equation)).strip()
    return {"digit": headline(digit), "sum": headline(total), "equation": text, "seen": seen is not None}


def wait_for_equation(page, text: str, timeout_s: float = 30) -> None:
    """Until the page's equation line reads text (AssertionError after timeout_s)."""
    deadline = time.monotonic() + timeout_s
    while (now := page.locator("#equation").inner_text().strip()) != text:
        assert time.monotonic() < deadline, f"the equation reads {now!r}, not {text!r}"
        time.sleep(0.05)


def set_number(page, number: int) -> None:
    """Type a number into the slider's box, as a user would."""
    box = page.locator("#number input[type=number]")
    box.fill(str(number))
    box.press("Enter")


def tool(page, name: str):
    """The pad's tool button named name (Draw, Erase, Undo, Redo, Clear)."""
    return page.locator(f"#sketch button[aria-label={name}]")


HASH = [[(0.25, 0.3), (0.75, 0.3)], [(0.25, 0.5), (0.75, 0.5)], [(0.35, 0.2), (0.35, 0.8)],
        [(0.65, 0.2), (0.65, 0.8)]]  # a hash sign: not a digit
DRAWN = {"seven": DIGIT_STROKES[7], "four": DIGIT_STROKES[4], "hash": HASH}


# --- what the page shows is what app.predict shows for the canvas -----------------------------------------

@pytest.mark.parametrize("ratio", [0.5, 1, 2])
def test_page_shows_what_predict_shows_for_the_pad(browser, server_url, ratio):
    """A seven, a four and a hash drawn with the mouse at devicePixelRatio 0.5, 1 and 2: each time the page
    shows what app.predict shows for the canvas' own pixels, and the canvas has a pixel per device pixel."""
    context, page, requests = open_page(browser, server_url, device_scale_factor=ratio)
    try:
        assert mode(page) == "local", page.evaluate("() => window.mnistSumPage.why")
        size = page.evaluate(CANVAS_SIZE_JS)
        assert size["ratio"] == ratio
        assert size["width"] == size["height"] == round(size["css"] * ratio), size
        area = drawing_area(page)
        drawing_from = time.monotonic()
        for i, (name, strokes) in enumerate(DRAWN.items()):
            if i:
                page.locator("#clear").click()
                wait_for_equation(page, app.DRAW_PROMPT)
            for stroke in strokes:
                draw_with_mouse(page, stroke, QUICK_MOVES, area=area)
            pixels = pad_pixels(page)
            assert pixels.shape == (size["height"], size["width"], 4)
            want = expected(pixels, 3)
            wait_for_equation(page, want["equation"])
            assert shown(page) == want, name
        assert want["equation"].startswith("Doesn't look like a digit")  # the hash
        # nothing went to the server while drawing, nor since (the view is drawn in the page)
        assert [url for t, url in requests if t >= drawing_from] == []
    finally:
        context.close()


def test_a_repaint_gives_the_same_pixels(browser, server_url):
    """Undo then Redo, and a resize of the window and back, repaint the canvas from its history: byte for byte
    the pixels drawn live."""
    context, page, _ = open_page(browser, server_url)
    try:
        area = drawing_area(page)
        for stroke in DIGIT_STROKES[4]:
            draw_with_mouse(page, stroke, QUICK_MOVES, area=area)
        wait_for_equation(page, "4 + 3 = 7")
        live = pad_pixels(page)
        tool(page, "Undo").click()
        assert not np.array_equal(pad_pixels(page), live)  # the second stroke is gone
        tool(page, "Redo").click()
        assert np.array_equal(pad_pixels(page), live)
        # a narrow window shrinks the pad (fewer canvas pixels, repainted); back to the wide one, repainted again
        width = page.evaluate(CANVAS_SIZE_JS)["width"]
        page.set_viewport_size({"width": 360, "height": 800})
        page.wait_for_function("(w) => document.querySelector('#sketch canvas').width < w", arg=width)
        page.set_viewport_size(DESKTOP)
        page.wait_for_function("(w) => document.querySelector('#sketch canvas').width === w", arg=width)
        assert np.array_equal(pad_pixels(page), live)
        wait_for_equation(page, "4 + 3 = 7")
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
            time.sleep(0.03)
        # the pen is still down: the page has read the stroke so far, more than once, and shows a reading
        page.wait_for_function("() => window.mnistSumPage.stats.reads >= 2 "
                               "&& document.querySelector('#equation').innerText.includes('+')")
        assert page.evaluate("() => window.mnistSumPage.pad.drawing()")
        page.mouse.up()
        wait_for_equation(page, "7 + 3 = 10")
        assert [url for t, url in requests if t >= since] == []
    finally:
        context.close()


def test_slider_undo_redo_and_clear_without_the_server(browser, server_url):
    context, page, requests = open_page(browser, server_url)
    try:
        draw_with_mouse(page, DIGIT_STROKES[1][0], QUICK_MOVES)
        wait_for_equation(page, "1 + 3 = 4")
        since = time.monotonic()
        set_number(page, 8)
        wait_for_equation(page, "1 + 8 = 9")
        tool(page, "Undo").click()
        wait_for_equation(page, app.DRAW_PROMPT)
        tool(page, "Redo").click()
        wait_for_equation(page, "1 + 8 = 9")
        page.locator("#clear").click()
        wait_for_equation(page, app.DRAW_PROMPT)
        assert [url for t, url in requests if t >= since and "/gradio_api/" in url] == []
    finally:
        context.close()


# --- "How it adds" -----------------------------------------------------------------------------------------

def expect_view(page, number: int) -> object:
    """Wait until "How it adds" shows Predictor.explain of the canvas' pixels with `number`: the what-if cells
    (0..9, the number's marked current, each "n → sum" and its confidence) and the sum table's 100 cells.
    Returns the explanation."""
    explanation = app.PREDICTOR.explain(pad_pixels(page), number)
    want_what_if = [f"{n} → {s}" for n, s in enumerate(explanation.what_if)]
    want_table = [(str(d), str(n), str(int(explanation.sum_table[d][n]))) for d in range(10) for n in range(10)]
    deadline = time.monotonic() + 30
    while True:
        view = page.evaluate(VIEW_JS)
        what_if, table = view["whatIf"], view["table"]
        got_what_if = [cell["eq"] for cell in what_if]
        current = [cell["number"] for cell in what_if if cell["current"]]
        got_table = [(cell["digit"], cell["number"], cell["text"]) for cell in table]
        if (got_what_if, current, got_table) == (want_what_if, [str(number)], want_table):
            break
        assert time.monotonic() < deadline, (got_what_if, want_what_if, current, number, got_table[:12])
        time.sleep(0.05)
    assert [cell["number"] for cell in what_if] == [str(n) for n in range(10)]
    for n, cell in enumerate(what_if):  # its confidence, in whole percent as the view rounds
        p = float(explanation.what_if_probs[n][explanation.what_if[n]])
        assert abs(int(cell["p"].rstrip(" %")) - 100 * p) <= 1, (n, cell, p)
    return explanation


@pytest.mark.skipif(len(EXAMPLES) != 10, reason="needs demo/examples/digit_0..9.png")
def test_how_it_adds_shows_what_the_predictor_explains(browser, server_url):
    context, page, requests = open_page(browser, server_url)
    try:
        assert page.evaluate("() => document.querySelector('#how-it-adds details').open")  # open on a desktop
        digit, number = 4, EXAMPLES[4][1]
        page.locator("#examples button").nth(digit).click()
        wait_for_equation(page, f"{digit} + {number} = {digit + number}")
        explanation = expect_view(page, number)
        assert explanation.what_if[number] == digit + number
        since = time.monotonic()
        set_number(page, 8)  # another number: the current cell moves
        wait_for_equation(page, f"{digit} + 8 = {digit + 8}")
        expect_view(page, 8)
        draw_with_mouse(page, [(0.3, 0.3), (0.7, 0.3)], QUICK_MOVES)  # a bar over the 4: another drawing
        expect_view(page, 8)
        assert [url for t, url in requests if t >= since] == []
    finally:
        context.close()


# --- where the page cannot read, the server does ---------------------------------------------------------

# what breaks the page's reader, and the page's words for it (window.mnistSumPage.why)
BROKEN = {
    "model fails to load": ({"block": re.compile(r"/model-[^/?]*\.bin(\?|$)")}, "failed to load"),
    "reader script fails": ({"block": re.compile(r"/reader\.js(\?|$)")}, "failed to load"),  # URLs end in ?v=...
    "no Worker": ({"init_script": "delete window.Worker;"}, "no Worker"),
    "no WebAssembly": ({"init_script": "delete window.WebAssembly;"}, "no WebAssembly"),
}


@pytest.mark.parametrize("why", list(BROKEN))
def test_server_reads_where_the_page_cannot(browser, server_url, why):
    broken, words = BROKEN[why]
    context, page, requests = open_page(browser, server_url, **broken)
    try:
        assert mode(page) == "server"
        assert words in page.evaluate("() => window.mnistSumPage.why")
        since = time.monotonic()
        draw_with_mouse(page, DIGIT_STROKES[7][0], QUICK_MOVES)
        wait_for_equation(page, "7 + 3 = 10")
        assert any("/gradio_api/queue/join" in url for t, url in requests if t >= since)
    finally:
        context.close()


def test_phone_reads_in_the_page(browser, server_url):
    context, page, requests = open_page(browser, server_url, PHONE, has_touch=True, is_mobile=True,
                                        device_scale_factor=2)
    try:
        assert mode(page) == "local"
        area = drawing_area(page)
        cdp = context.new_cdp_session(page)
        since = time.monotonic()
        for stroke in DIGIT_STROKES[4]:
            draw_with_finger(cdp, area, stroke, 12)
        wait_for_equation(page, "4 + 3 = 7")
        assert shown(page) == expected(pad_pixels(page), 3)
        assert [url for t, url in requests if t >= since] == []
    finally:
        context.close()
