"""A short check that the app works on the Gradio installed in this environment: deploy/check_gradio.sh runs it
with the lowest Gradio release pyproject.toml admits (6.20.0) and the pinned one (requirements.txt).

    python deploy/gradio_check.py          # prints one line per check and "ok: gradio X.Y.Z"; exit status 1 on failure

It launches the app on a free port, then, in headless Chromium: draws a 7 with the mouse (the page reads it
itself), moves the slider, undoes, redoes, loads an example (its number lands on the slider), fills "How it
adds", and draws again with ?reader=server (the pad's image goes to /predict); and calls /predict through the
API with the dict clients send. Every step waits for the answer the page shows.
"""

import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.pen_traces import CHROMIUM, CHROMIUM_ARGS, DIGIT_STROKES, draw_with_mouse, drawing_area  # noqa: E402

TIMEOUT_S = 60


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def equation_reads(page, text: str) -> None:
    """Wait until the equation line reads text; AssertionError with what it read instead."""
    deadline = time.monotonic() + TIMEOUT_S
    while (now := page.locator("#equation").inner_text().strip()) != text:
        if time.monotonic() > deadline:
            raise AssertionError(f"the equation reads {now!r}, not {text!r}")
        time.sleep(0.05)


def check_page(browser, url: str) -> None:
    """The page reads the pad itself: draw, slider, undo, redo, an example, How it adds."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_S * 1000)
        page.goto(url)
        page.wait_for_function("() => window.mnistSumPage && window.mnistSumPage.mode !== 'starting' "
                               "&& window.mnistSumPage.pad")
        mode = page.evaluate("() => [window.mnistSumPage.mode, window.mnistSumPage.why]")
        assert mode[0] == "local", f"the page does not read the pad itself: {mode}"
        draw_with_mouse(page, DIGIT_STROKES[7][0], 12, area=drawing_area(page))
        equation_reads(page, "7 + 3 = 10")
        box = page.locator("#number input[type=number]")
        box.fill("5")
        box.press("Enter")
        equation_reads(page, "7 + 5 = 12")
        page.locator("#sketch button[aria-label=Undo]").click()
        equation_reads(page, "Draw a digit")
        page.locator("#sketch button[aria-label=Redo]").click()
        equation_reads(page, "7 + 5 = 12")
        print("  page: draw, slider, undo, redo")
        import app

        png, number = app.find_examples()[2]
        page.locator("#examples button").nth(2).click()
        equation_reads(page, f"2 + {number} = {2 + number}")
        assert box.input_value() == str(number), box.input_value()
        page.wait_for_function(
            "(n) => document.querySelectorAll('#what-if .what-if-cell').length === 10 && "
            "document.querySelector('#what-if .current')?.dataset.number === String(n)", arg=number)
        assert page.locator("#sum-table [data-digit][data-number]").count() == 100
        print("  page: an example and How it adds")
    finally:
        context.close()


def check_server_path(browser, url: str) -> None:
    """Where the page does not read, the pad's image goes to /predict."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_S * 1000)
        page.goto(url + "?reader=server")
        page.wait_for_function("() => window.mnistSumPage && window.mnistSumPage.mode === 'server' "
                               "&& window.mnistSumPage.pad")  # the pad mounted, not only page.js loaded
        draw_with_mouse(page, DIGIT_STROKES[1][0], 12, area=drawing_area(page))
        equation_reads(page, "1 + 3 = 4")
        print("  server path: the pad's image read by /predict")
    finally:
        context.close()


def check_api(url: str) -> None:
    """/predict through gradio_client with the dict clients send (the README's snippet)."""
    import numpy as np
    import PIL.Image
    from gradio_client import Client, handle_file

    import app

    png = app.find_examples()[7][0]
    client = Client(url, verbose=False)
    digit, total, equation, seen = client.predict(
        {"background": None, "layers": [], "composite": handle_file(png)}, 3, api_name="/predict")
    assert equation == "7 + 3 = 10", equation
    assert np.asarray(PIL.Image.open(seen)).shape[:2] == (28 * app.SEEN_SCALE,) * 2
    print("  API: /predict with the Sketchpad-style dict")


def main() -> int:
    """Launch the app, run the checks, say which Gradio passed."""
    import gradio as gr
    from playwright.sync_api import sync_playwright

    import app

    port = free_port()
    app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        print(f"gradio {gr.__version__}:")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                check_page(browser, url)
                check_server_path(browser, url)
            finally:
                browser.close()
        check_api(url)
    except Exception as e:  # an assertion, or a wait that timed out: what the page did not do
        print(f"FAILED on gradio {gr.__version__}: {type(e).__name__}: {str(e).splitlines()[0]}")
        return 1
    finally:
        app.demo.close()
    print(f"ok: gradio {gr.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
