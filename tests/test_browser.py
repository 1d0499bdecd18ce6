"""The app in a real browser (Chromium through Playwright): a newcomer opens the page and just draws.

Set MNIST_SUM_SCREENSHOT=1 to also write demo/screenshot.png (the README's picture) from the first test.
"""

import os
import re
import time
from pathlib import Path

import pytest

import app

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOT = Path(app.__file__).parent / "demo" / "screenshot.png"
TIMEOUT_MS = 60_000  # a prediction is milliseconds, but a software-rendered canvas on a busy CI box is slow

# Strokes as (x, y) fractions of the drawing area; the brush interpolates between the points.
SEVEN = [[(0.30, 0.22), (0.70, 0.22), (0.45, 0.80)]]
ONE = [[(0.52, 0.18), (0.48, 0.82)]]
STEPS = 6  # mouse moves per segment


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless; the tests are skipped when it is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found; install Debian's chromium package to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server_url):
    """A fresh 1280x800 page with the app loaded and the sketch pad ready."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(server_url)
    page.locator("#sketch canvas").first.wait_for()
    page.wait_for_load_state("networkidle")  # the pad's white background has loaded
    wait_for_stable_zoom(page)
    yield page
    context.close()


def zoom_text(page) -> str:
    """The pad's zoom read-out, e.g. '112%'."""
    return page.locator("#sketch").get_by_text(re.compile(r"^\d+%$")).inner_text()


def wait_for_stable_zoom(page, seconds: float = 1.0) -> None:
    """Wait until the pad has fitted its canvas to the page (the zoom stops changing)."""
    last, since = None, time.monotonic()
    deadline = since + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        now = zoom_text(page)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.2)
    raise AssertionError("the sketch pad never settled")


def drawing_area(page) -> dict:
    """The drawable white square on screen: x, y, side in CSS pixels."""
    box = page.locator("#sketch canvas").first.bounding_box()
    side = app.CANVAS * int(zoom_text(page).rstrip("%")) / 100
    # the editor centres the image in its canvas element
    return {"x": box["x"] + (box["width"] - side) / 2, "y": box["y"] + (box["height"] - side) / 2, "side": side}


def draw(page, strokes) -> None:
    """Draw strokes with the mouse: button down, moves in small steps, button up."""
    area = drawing_area(page)

    def at(point):
        return area["x"] + point[0] * area["side"], area["y"] + point[1] * area["side"]

    for stroke in strokes:
        page.mouse.move(*at(stroke[0]))
        page.mouse.down()
        for point in stroke[1:]:
            page.mouse.move(*at(point), steps=STEPS)
        page.mouse.up()


def set_number(page, number: int) -> None:
    """Type a number into the slider's box, as a user would."""
    box = page.locator("#number input[type=number]")
    box.fill(str(number))
    box.press("Enter")


def expect_prediction(page, digit: int, number: int) -> None:
    """The page shows digit, digit + number and the equation (waits for the live update)."""
    from playwright.sync_api import expect

    expect(page.locator("#digit [data-testid=label-output-value]")).to_have_text(str(digit))
    expect(page.locator("#sum [data-testid=label-output-value]")).to_have_text(str(digit + number))
    expect(page.locator("#equation")).to_have_text(f"{digit} + {number} = {digit + number}")
    expect(page.locator("#seen img")).to_be_visible()


def expect_reset(page) -> None:
    """The page asks for a digit and shows no guess."""
    from playwright.sync_api import expect

    expect(page.locator("#equation")).to_have_text("Draw a digit")
    expect(page.locator("#digit [data-testid=label-output-value]")).to_have_count(0)
    expect(page.locator("#sum [data-testid=label-output-value]")).to_have_count(0)
    expect(page.locator("#seen img")).to_have_count(0)


def test_pad_is_ready_to_draw_and_fits_the_window(page):
    assert "select the draw tool" not in page.locator("#sketch").inner_text()
    area = drawing_area(page)
    assert area["side"] >= 280
    assert area["x"] >= 0 and area["y"] >= 0
    assert area["x"] + area["side"] <= VIEWPORT["width"] and area["y"] + area["side"] <= VIEWPORT["height"]
    expect_reset(page)


def test_draw_slide_clear_draw(page):
    draw(page, SEVEN)  # no click on any tool first
    expect_prediction(page, 7, 3)  # the slider starts at 3
    set_number(page, 5)
    expect_prediction(page, 7, 5)
    if os.environ.get("MNIST_SUM_SCREENSHOT") == "1":
        page.locator("#number input[type=number]").blur()  # no focus ring in the picture
        page.screenshot(path=str(SCREENSHOT))

    page.locator("#clear").click()
    expect_reset(page)
    draw(page, ONE)  # the brush is still selected after Clear
    expect_prediction(page, 1, 5)


def test_pad_trash_button_resets(page):
    draw(page, ONE)
    expect_prediction(page, 1, 3)
    page.locator("#sketch button[aria-label='Clear canvas']").click()
    expect_reset(page)
    draw(page, ONE)
    expect_prediction(page, 1, 3)


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


@pytest.mark.skipif(not app.find_examples(), reason="no demo/examples/digit_N.png yet")
def test_example_click_predicts(page):
    png, number = app.find_examples()[-1]
    digit = int(re.fullmatch(r"digit_(\d)\.png", Path(png).name).group(1))
    # examples are a table, one row per example; its first cell holds the image
    page.locator(f"#examples [data-testid=dataset-cell-{len(app.find_examples()) - 1}-0]").click()
    expect_prediction(page, digit, number)
