"""The app in a real browser (Chromium through Playwright): a newcomer opens the page and just draws.

Strokes are real pointer input (Playwright's mouse, CDP touch events) along digit traces on the pad's 2D
canvas (pad.py, web/pad.js); the canvas is read back from screenshots (ink_pixels) or from the canvas itself
(pad_pixels). Set MNIST_SUM_SCREENSHOT=1 to also write the README's pictures: demo/screenshot.png (desktop),
demo/phone.png (390 px wide) and demo/how-it-adds.png (the "How it adds" view of an example).
"""

import base64
import io
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import app
from benchmarks.pen_traces import (DIGIT_STROKES, NONDIGIT_STROKES, draw_with_finger, draw_with_mouse,
                                   drawing_area, ink_pixels, pad_pixels)
from benchmarks.slow_link import SlowLink, measure_round_trip

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# a real phone: touch, mobile viewport, two device pixels per CSS pixel
PHONE_OPTIONS = {"viewport": PHONE, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
DEMO = Path(app.__file__).parent / "demo"
TIMEOUT_MS = 60_000  # a reading is milliseconds, but a busy CI box is slow
NATURAL_MOVES = 40  # mouse moves per stroke when the pace matters (the 40-100)
QUICK_MOVES = 8  # ... when it does not: a few large steps
EXAMPLES = app.find_examples()  # [[png path, number], ...], digit 0..9 in order
SCREENSHOTS = os.environ.get("MNIST_SUM_SCREENSHOT") == "1"

SEVEN = DIGIT_STROKES[7]
ONE = DIGIT_STROKES[1]
FOUR = DIGIT_STROKES[4]


def open_app(browser, url: str, viewport: dict = DESKTOP, throttle: float | None = None, **context_options):
    """A fresh browser context with the app loaded and its pad mounted: (context, page). throttle: slow the
    page's CPU that many times (CDP Emulation.setCPUThrottlingRate) from before it loads."""
    context = browser.new_context(viewport=viewport, **context_options)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    if throttle:
        context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": throttle})
    page.goto(url)
    page.locator("#sketch canvas").first.wait_for()
    page.wait_for_function("() => window.mnistSumPage && window.mnistSumPage.pad "
                           "&& window.mnistSumPage.mode !== 'starting'")
    return context, page


@pytest.fixture
def page(browser, server_url):
    """A fresh 1280x800 page with the app loaded."""
    context, page = open_app(browser, server_url)
    yield page
    context.close()


def tool(page, name: str):
    """The pad's tool button named name (Draw, Erase, Undo, Redo, Clear)."""
    return page.locator(f"#sketch button[aria-label={name}]")


def set_number(page, number: int) -> None:
    """Type a number into the slider's box, as a user would."""
    box = page.locator("#number input[type=number]")
    box.fill(str(number))
    box.press("Enter")


def expect_prediction(page, digit: int, number: int) -> None:
    """The page shows digit, digit + number and the equation (waits for the live update)."""
    from playwright.sync_api import expect

    expect(page.locator("#equation")).to_have_text(f"{digit} + {number} = {digit + number}")
    expect(page.locator("#digit [data-testid=label-output-value]")).to_have_text(str(digit))
    expect(page.locator("#sum [data-testid=label-output-value]")).to_have_text(str(digit + number))
    expect(page.locator("#seen img")).to_be_visible()


def expect_reset(page) -> None:
    """The page asks for a digit and shows no guess."""
    from playwright.sync_api import expect

    expect(page.locator("#equation")).to_have_text(app.DRAW_PROMPT)
    expect(page.locator("#digit [data-testid=label-output-value]")).to_have_count(0)
    expect(page.locator("#sum [data-testid=label-output-value]")).to_have_count(0)
    expect(page.locator("#seen img")).to_have_count(0)


def predicted_equation(pixels, number: int) -> str:
    """The equation app.predict shows for these pixels, as plain text."""
    equation = app.predict(pixels, number)[2]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", equation)).strip()


def shown_equation(page, wanted: str, timeout_s: float) -> str:
    """The equation line once it reads `wanted` (or whatever it reads after timeout_s)."""
    deadline = time.monotonic() + timeout_s
    while (text := page.locator("#equation").inner_text().strip()) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return text


def sum_text(digit: int, number: int) -> str:
    """'7 + 3 = 10'."""
    return f"{digit} + {number} = {digit + number}"


def draw_digits(page, digits, moves: int, number: int = 3, timeout_s: float = 30) -> list[dict]:
    """Draw each digit with the mouse, clearing (the Clear button) and drawing again at once in between.

    After every stroke the canvas must hold more ink than before it (no stroke lost, none wiped), the last
    stroke of a digit checked once the page shows its answer. One record per digit: the digit, the equation
    the page showed, the ink after each stroke.
    """
    area = drawing_area(page)
    empty = ink_pixels(page, area)  # an empty pad: 0
    records = []
    for i, digit in enumerate(digits):
        if i:
            page.locator("#clear").click()
        strokes, inks, shown = DIGIT_STROKES[digit], [], None
        for j, stroke in enumerate(strokes):
            before = inks[-1] if inks else empty
            draw_with_mouse(page, stroke, moves, area=area)
            if j == len(strokes) - 1:
                shown = shown_equation(page, sum_text(digit, number), timeout_s)
            inks.append(ink_pixels(page, area))
            assert inks[-1] > before, f"digit {digit}: stroke {j} left {inks[-1]} ink pixels, {before} before it"
        records.append({"digit": digit, "shown": shown, "ink": inks})
    return records


def right(records: list[dict], number: int = 3) -> int:
    """How many records show their digit's equation."""
    return sum(r["shown"] == sum_text(r["digit"], number) for r in records)


def tops(page, selector: str) -> list[float]:
    """The top y of each element matching selector, in order."""
    return [round(box["y"], 1) for box in page.locator(selector).evaluate_all(
        "(elements) => elements.map((e) => { const b = e.getBoundingClientRect(); return {y: b.top}; })")]


def box(page, selector: str) -> dict:
    """An element's bounding box (CSS pixels)."""
    return page.locator(selector).first.bounding_box()


# --- the page as it opens, and the controls -----------------------------------------------------------

def test_pad_is_ready_to_draw_and_fits_the_window(page):
    from playwright.sync_api import expect

    area = drawing_area(page)
    assert area["side"] >= 280
    assert area["x"] >= 0 and area["y"] >= 0
    assert area["x"] + area["side"] <= DESKTOP["width"] and area["y"] + area["side"] <= DESKTOP["height"]
    assert ink_pixels(page, area) == 0
    expect_reset(page)
    # the brush is selected from the start; nothing to undo, redo or clear on an empty pad
    expect(tool(page, "Draw")).to_have_attribute("aria-pressed", "true")
    expect(tool(page, "Erase")).to_have_attribute("aria-pressed", "false")
    for name in ("Undo", "Redo", "Clear"):
        expect(tool(page, name)).to_be_disabled()
    # the examples: one row of ten under the pad, a small strip, on screen, above the equation
    assert page.locator("#examples button").count() == 10
    assert len(set(tops(page, "#examples button"))) == 1
    strip = box(page, "#examples")
    assert strip["height"] < 0.25 * DESKTOP["height"], strip
    assert area["y"] + area["side"] <= strip["y"] and strip["y"] + strip["height"] <= DESKTOP["height"]
    assert strip["y"] + strip["height"] <= box(page, "#equation")["y"]


def test_draw_number_undo_redo_keys_clear(page):
    from playwright.sync_api import expect

    area = drawing_area(page)
    draw_with_mouse(page, SEVEN[0], QUICK_MOVES, area=area)  # no click on any tool first
    expect_prediction(page, 7, 3)  # the slider starts at 3
    # Ctrl+Z in the number's text box is the box's own: the drawing stays
    page.locator("#number input[type=number]").press("Control+z")
    assert page.evaluate("() => window.mnistSumPage.pad.history.length") == 1
    set_number(page, 5)
    expect_prediction(page, 7, 5)
    page.locator("#number input[type=number]").blur()  # no focus ring in the picture, keys go to the page
    if SCREENSHOTS:
        page.screenshot(path=str(DEMO / "screenshot.png"))
    ink = ink_pixels(page, area)
    assert ink > 0
    for undo, redo in ((lambda: tool(page, "Undo").click(), lambda: tool(page, "Redo").click()),
                       (lambda: page.keyboard.press("Control+z"), lambda: page.keyboard.press("Shift+Control+z")),
                       (lambda: page.keyboard.press("Control+z"), lambda: page.keyboard.press("Control+y"))):
        undo()
        expect_reset(page)
        assert ink_pixels(page, area) == 0
        expect(tool(page, "Undo")).to_be_disabled()
        expect(tool(page, "Redo")).to_be_enabled()
        redo()
        expect_prediction(page, 7, 5)
        assert ink_pixels(page, area) == ink
        expect(tool(page, "Redo")).to_be_disabled()
    # Clear: an empty pad and the outputs reset; Undo brings the drawing back
    tool(page, "Clear").click()
    expect_reset(page)
    assert ink_pixels(page, area) == 0
    expect(tool(page, "Clear")).to_be_disabled()
    expect(tool(page, "Draw")).to_have_attribute("aria-pressed", "true")
    tool(page, "Undo").click()
    expect_prediction(page, 7, 5)
    assert ink_pixels(page, area) == ink


def test_eraser_rubs_out_part_of_a_drawing(page):
    from playwright.sync_api import expect

    area = drawing_area(page)
    for stroke in FOUR:
        draw_with_mouse(page, stroke, QUICK_MOVES, area=area)
    expect_prediction(page, 4, 3)
    drawn = ink_pixels(page, area)
    tool(page, "Erase").click()
    expect(tool(page, "Erase")).to_have_attribute("aria-pressed", "true")
    expect(tool(page, "Draw")).to_have_attribute("aria-pressed", "false")
    draw_with_mouse(page, [(0.2, 0.6), (0.8, 0.6)], QUICK_MOVES, area=area)  # across the 4's bar
    rubbed = ink_pixels(page, area)
    assert 0 < rubbed < drawn, (rubbed, drawn)
    # what the page shows is what app.predict shows for the pixels the canvas now holds
    want = predicted_equation(pad_pixels(page), 3)
    assert shown_equation(page, want, 30) == want
    # Draw selects the brush again: a stroke adds ink
    tool(page, "Draw").click()
    expect(tool(page, "Draw")).to_have_attribute("aria-pressed", "true")
    expect(tool(page, "Erase")).to_have_attribute("aria-pressed", "false")
    draw_with_mouse(page, [(0.2, 0.6), (0.8, 0.6)], QUICK_MOVES, area=area)
    assert ink_pixels(page, area) > rubbed


def test_random_button_picks_a_number(page):
    box = page.locator("#number input[type=number]")
    before, seen = box.input_value(), set()
    for _ in range(20):  # each click keeps the old number with probability 1/10
        page.locator("#random").click()
        time.sleep(0.2)
        seen.add(box.input_value())
        if seen - {before}:
            break
    assert seen - {before}
    assert all(re.fullmatch(r"\d", v) for v in seen)


@pytest.mark.skipif(len(EXAMPLES) != 10, reason="needs demo/examples/digit_0..9.png")
def test_examples_draw_on_the_pad_and_undo_takes_them_back(page):
    from playwright.sync_api import expect

    area = drawing_area(page)
    draw_with_mouse(page, ONE[0], QUICK_MOVES, area=area)
    expect_prediction(page, 1, 3)
    drawn = ink_pixels(page, area)
    for digit, (_, number) in enumerate(EXAMPLES):
        page.locator("#examples button").nth(digit).click()
        expect(page.locator("#number input[type=number]")).to_have_value(str(number))
        expect_prediction(page, digit, number)
        assert ink_pixels(page, area) > 0
        if SCREENSHOTS and digit == 4:  # a 4, which the network could take for a 9
            expect(page.locator("#what-if .what-if-cell.current")).to_have_text(
                re.compile(rf"^\s*{number} → {digit + number}\b"))
            page.locator("#how-it-adds").screenshot(path=str(DEMO / "how-it-adds.png"))
    # each example replaced the drawing as one action: ten Undos bring back the 1 (the number stays)
    last_number = EXAMPLES[-1][1]
    tool(page, "Undo").click()
    expect_prediction(page, 8, last_number)
    for _ in range(9):
        tool(page, "Undo").click()
    expect_prediction(page, 1, last_number)
    assert ink_pixels(page, area) == drawn


@pytest.mark.skipif(not EXAMPLES, reason="no demo/examples/digit_N.png")
def test_not_a_digit_shows_no_confident_digit(browser, server_url, not_a_digit_predictor, request):
    from playwright.sync_api import expect

    # The stand-in predictor answers on the server: the page, which reads drawings itself, is told to ask it.
    context, page = open_app(browser, server_url + "?reader=server")
    request.addfinalizer(context.close)
    number = EXAMPLES[0][1]
    page.locator("#examples button").first.click()
    expect(page.locator("#equation")).to_contain_text("Doesn't look like a digit")
    expect(page.locator("#equation .guess")).to_have_text(f"(best guess: 4 + {number} = {4 + number})")
    expect(page.locator("#digit [data-testid=label-output-value]")).to_have_text(app.NOT_A_DIGIT)
    expect(page.locator("#sum [data-testid=label-output-value]")).to_have_text(app.NOT_A_DIGIT)
    # the guess is small print: well under half the notice's size
    sizes = page.evaluate("""() => [document.querySelector('#equation p'), document.querySelector('#equation .guess')]
                             .map((e) => parseFloat(getComputedStyle(e).fontSize))""")
    assert sizes[1] <= 0.6 * sizes[0]


def test_drawings_that_are_not_digits_are_called_so(page):
    """With the shipped weights and their threshold: an H, a spiral, a smiley and a scribble drawn on the pad."""
    from playwright.sync_api import expect

    area = drawing_area(page)
    for i, (name, strokes) in enumerate(NONDIGIT_STROKES.items()):
        if i:
            page.locator("#clear").click()
            expect_reset(page)
        for stroke in strokes:
            draw_with_mouse(page, stroke, QUICK_MOVES * 2, area=area)
        expect(page.locator("#equation")).to_contain_text("Doesn't look like a digit")
        expect(page.locator("#digit [data-testid=label-output-value]")).to_have_text(app.NOT_A_DIGIT)


# --- no stroke ever lost ------------------------------------------------------------------------------

def test_ten_digits_in_a_row_at_a_natural_pace(page):
    records = draw_digits(page, range(10), NATURAL_MOVES)
    assert right(records) >= 9, records
    assert not [r for r in records if "look like a digit" in r["shown"]], records  # digits stay digits


def test_slow_link_loses_no_stroke(browser, server_url):
    host, port = re.match(r"http://([^:/]+):(\d+)/", server_url).groups()
    with SlowLink(host, int(port), down=0.5) as link:
        assert measure_round_trip("127.0.0.1", link.listen_port) >= 0.5  # the link is as slow as it says
        context, page = open_app(browser, link.url)
        try:
            assert page.evaluate("() => window.mnistSumPage.mode") == "local"
            records = draw_digits(page, [4, 5, 8], QUICK_MOVES, timeout_s=60)
            assert right(records) == 3, records
            # the server's path over the same link: every pen-up a request, the latest drawing answered
            page.goto(link.url + "?reader=server")
            # the mode is set when page.js loads; the pad takes strokes once its js_on_load has mounted it
            page.wait_for_function("() => window.mnistSumPage && window.mnistSumPage.mode === 'server' "
                                   "&& window.mnistSumPage.pad")
            records = draw_digits(page, [4, 7], QUICK_MOVES, timeout_s=60)
            assert right(records) == 2, records
        finally:
            context.close()


class SlowPredictor:
    """app.PREDICTOR wrapped in a wait, as on a busy Space."""

    def __init__(self, predictor, seconds: float = 3.0):
        self.predictor, self.seconds = predictor, seconds

    def predict(self, image, number):
        """The wrapped predictor's answer, seconds late."""
        time.sleep(self.seconds)
        return self.predictor.predict(image, number)


def test_slow_server_loses_no_stroke(browser, server_url, monkeypatch):
    slow = SlowPredictor(app.PREDICTOR)
    monkeypatch.setattr(app, "PREDICTOR", slow)
    context, page = open_app(browser, server_url + "?reader=server")
    try:
        assert page.evaluate("() => window.mnistSumPage.mode") == "server"
        # each pen-up's request runs for 3 s: the next strokes, Clear and the next digit come meanwhile
        records = draw_digits(page, [9, 4], QUICK_MOVES, timeout_s=60)
        assert right(records) == 2, records
        time.sleep(slow.seconds + 0.5)  # no older answer comes after the latest one
        assert page.locator("#equation").inner_text().strip() == sum_text(4, 3)
    finally:
        context.close()


# --- phones -------------------------------------------------------------------------------------------

def test_phone_finger_drawing_layout(browser, server_url):
    from playwright.sync_api import expect

    context, page = open_app(browser, server_url, **PHONE_OPTIONS)
    try:
        area = drawing_area(page)
        assert area["side"] >= 0.8 * PHONE["width"]  # the pad takes most of the screen's width
        # the canvas has a pixel per device pixel: sharp lines
        width, css = page.evaluate("() => { const c = document.querySelector('#sketch canvas'); "
                                   "return [c.width, c.getBoundingClientRect().width]; }")
        assert width == round(css * 2), (width, css)
        cdp = context.new_cdp_session(page)
        for stroke in FOUR:
            draw_with_finger(cdp, area, stroke, QUICK_MOVES * 2)
        expect_prediction(page, 4, 3)
        # drawing did not scroll the page; the pad and the answer are both on screen
        assert page.evaluate("window.scrollY") == 0
        for element in ("#sketch canvas", "#equation"):
            b = box(page, element)
            assert 0 <= b["y"] and b["y"] + b["height"] <= PHONE["height"], (element, b)
        expect(page.locator("#equation")).to_be_in_viewport(ratio=1)
        # the examples in two rows of five, inside the pad's box, and the equation below them
        rows = tops(page, "#examples button")
        assert len(set(rows[:5])) == 1 and len(set(rows[5:])) == 1 and rows[5] > rows[0], rows
        strip, sketch = box(page, "#examples"), box(page, "#sketch")
        assert strip["y"] + strip["height"] <= min(sketch["y"] + sketch["height"], box(page, "#equation")["y"])
        # "How it adds" is folded on a phone
        assert page.evaluate("() => document.querySelector('#how-it-adds details').open") is False
        if SCREENSHOTS:
            page.screenshot(path=str(DEMO / "phone.png"))
    finally:
        context.close()


def test_phone_with_a_slow_cpu_reads_a_finger_drawn_digit(browser, server_url):
    context, page = open_app(browser, server_url, throttle=4, **PHONE_OPTIONS)  # Chrome's "4x slowdown"
    try:
        assert page.evaluate("() => window.mnistSumPage.mode") == "local"
        cdp = context.new_cdp_session(page)
        draw_with_finger(cdp, drawing_area(page), SEVEN[0], NATURAL_MOVES)
        expect_prediction(page, 7, 3)
    finally:
        context.close()


# --- light and dark mode ------------------------------------------------------------------------------

@pytest.mark.parametrize("theme", ["light", "dark"])
def test_paper_stays_white_and_ink_black(browser, server_url, theme):
    context, page = open_app(browser, server_url + ("?__theme=dark" if theme == "dark" else ""))
    try:
        assert page.evaluate("() => document.body.classList.contains('dark')") == (theme == "dark")
        area = drawing_area(page)
        draw_with_mouse(page, ONE[0], QUICK_MOVES, area=area)
        expect_prediction(page, 1, 3)
        # the canvas: its corner is paper (white), the middle of the 1's stroke ink (black)
        pixels = pad_pixels(page)
        h, w = pixels.shape[:2]
        middle = pixels[h // 2, int(w * 0.495)]  # the 1 runs from (0.50, 0.18) to (0.49, 0.82)
        assert tuple(pixels[0, 0]) == (255, 255, 255, 255) and tuple(middle) == (0, 0, 0, 255), (pixels[0, 0], middle)
        # and on screen: a point near the corner white, the stroke black
        shot = Image.open(io.BytesIO(base64.b64decode(context.new_cdp_session(page).send(
            "Page.captureScreenshot", {"format": "png"})["data"]))).convert("RGB")
        screen = np.asarray(shot)
        corner = screen[int(area["y"] + 12), int(area["x"] + 12)]
        stroke = screen[int(area["y"] + area["side"] / 2), int(area["x"] + area["side"] * 0.495)]
        assert corner.min() >= 250 and stroke.max() <= 5, (corner, stroke)
    finally:
        context.close()
