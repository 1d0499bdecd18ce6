"""mnist-sum web app (also the Hugging Face Spaces entry point): draw a digit, pick a number 0-9, and one
network predicts the digit and digit + number, live.

    python app.py                                # serves http://127.0.0.1:7860
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=8080 python app.py
    MNIST_SUM_WEIGHTS=path/to/other.safetensors python app.py

`import app` builds `demo` and loads the model but starts no server, so tests can launch it themselves.
The pad is the app's own (pad.py: a 2D canvas in gr.HTML); everything it does (drawing, erasing, undo, redo,
clear, examples) happens in the browser, and nothing the server sends touches it. The page reads the pad
itself, with the same preprocessing and network (web/page.js; the model file is made from WEIGHTS at
import), shows "How it adds" from the same forward pass, and asks the server only where it cannot. Two API
endpoints: /predict (the pad's value and the number, what the page calls then) and /predict_image (an image
file and the number, plain JSON back).
"""

import os
import re
from types import SimpleNamespace
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.data_classes import FileData

# The server side of requests (serving) and the cache's upkeep (gradio_cache); names tests use stay importable here.
from gradio_cache import (CACHE_AGE, DELETE_CACHE, clean_cache, delete_old_files,  # noqa: F401
                          prune_empty_folders, seen_png)
from mnist_sum.predict import Prediction
from mnist_sum.weights import SHIPPED_WEIGHTS, read_metadata
from pad import drawing_pad, how_it_adds
from serving import (MAX_DATA_URL, MAX_PIXELS, check_number, image_problem, load_predictor,  # noqa: F401
                     prediction_json, read_image, read_pad, refuse, uploaded_path)
from web_page import head, model_file, served_files, url

ROOT = Path(__file__).parent
EXAMPLES_DIR = ROOT / "demo" / "examples"
WEIGHTS = Path(os.environ.get("MNIST_SUM_WEIGHTS") or SHIPPED_WEIGHTS)

CANVAS = 400  # the pad's side in pad units (its pixels follow the screen); the predictor rescales any size
BRUSH_RADIUS = 12  # pad units: a marker-like line; the predictor sets any stroke to MNIST's width anyway
INITIAL_NUMBER = 3
SEEN_SCALE = 8  # the 28x28 input is shown at 224x224, nearest neighbour, so its pixels stay visible
MAX_FILE_SIZE = "2mb"  # uploads through the API; a drawing is a few kB
QUEUE_SIZE = 64  # pending requests beyond this are refused instead of piling up
CONCURRENCY = 2  # inference is a few milliseconds on a CPU; two workers keep a small Space responsive
DRAW_PROMPT = "Draw a digit"
NOT_A_DIGIT = "not a digit"  # the labels' headline when the drawing does not look like a digit
BLANK = (None, None, DRAW_PROMPT, None)  # digit label, sum label, equation, seen image


# Read at call time by run_predictor, so tests can swap in a slow or scripted predictor (monkeypatch).
PREDICTOR = load_predictor(WEIGHTS)


def run_predictor(image, number: int) -> Prediction | None:
    """PREDICTOR on an image (array, PIL image or pad dict); a refusal when the image cannot be used."""
    try:
        return PREDICTOR.predict(image, number)
    except ValueError as e:  # e.g. too many pixels: the predictor says what is wrong
        raise refuse(image_problem(e)) from None


def top_probs(probs: list[float]) -> dict[str, float]:
    """Class probabilities as a gr.Label value: {'class': probability}."""
    return {str(i): float(p) for i, p in enumerate(probs)}


def equation_text(result: Prediction, number: int) -> str:
    """The equation line: '7 + 3 = 10', or the not-a-digit notice with the best guess in small print."""
    guess = f"{result.digit} + {number} = {result.sum}"
    if result.is_digit:
        return guess
    return f"Doesn't look like a digit <span class='guess'>(best guess: {guess})</span>"


def predict(sketch: dict | None, number: float) -> tuple:
    """Sketch + number -> digit label, sum label, equation text and the 28x28 input the network saw."""
    number = check_number(number)  # first, so that a bad number is an error even on an empty pad
    # The predictor reads the composite, else the layers over the background (as an example loads),
    # and returns None for an empty or all-white pad.
    result = run_predictor(sketch, number)
    if result is None:
        return BLANK
    seen = seen_png(np.kron(result.input28, np.ones((SEEN_SCALE, SEEN_SCALE), dtype=np.uint8)))
    if not result.is_digit:  # no confident wrong digit: the labels say so, the equation line shows the guess
        return NOT_A_DIGIT, NOT_A_DIGIT, equation_text(result, number), seen
    return top_probs(result.digit_probs), top_probs(result.sum_probs), equation_text(result, number), seen


def predict_image(image: FileData, number: int) -> dict:
    """An image file (any format Pillow reads) and a number 0-9 -> the prediction as a dict.

    Keys: digit and sum (ints, None for a blank image), digit_probs (10) and sum_probs (19), is_digit
    (False: it does not look like a digit, digit and sum are best guesses), input28 (the 28x28 the network
    saw, 0-255) and any other field of mnist_sum.Prediction.
    """
    number = check_number(number)
    return prediction_json(run_predictor(read_image(uploaded_path(image)), number))


def about_model(path: Path = WEIGHTS) -> str:
    """A few lines on the network and its test accuracy, as measured by training and stored in the weights."""
    meta = read_metadata(path)
    final = meta.get("metrics", {}).get("final", {})
    args = meta.get("train_args", {})
    epochs = args.get("epochs")
    if args.get("pen"):
        first = "Trained on the 60,000 MNIST training images, then" if args.get("init") else "Trained"
        trained = (f"{first} for {epochs} epochs on MNIST together with digits pen-written by real people "
                   f"(UNIPEN), MNIST digits re-drawn as pen strokes, and letters and shapes it learns to call "
                   f"\"not a digit\"")
    else:
        trained = (f"Trained for {epochs} epochs" if epochs else "Trained") + " on the 60,000 MNIST training images"
    kind = ("the real-handwriting model, which also says when a drawing does not look like a digit"
            if args.get("pen") else "an MNIST-only model")
    if "test_digit" in final and "test_sum" in final:
        accuracy = (f"On the 10,000 MNIST test images it reads **{final['test_digit']:.2%}** of the digits and gets "
                    f"**{final['test_sum']:.2%}** of the sums right.")
    else:
        accuracy = "This weights file carries no test accuracy."
    return (
        f"**The model** this app serves is `{path.name}`, {kind}. "
        "**The network** (MNISTSumNet, PyTorch): three convolutions and a max-pool feed a classifier "
        "(1000 → 512 → 256 → 10) that reads the digit; a small *mix* head (20 → 50 → 20) takes the digit "
        "probabilities next to the one-hot number and predicts the sum 0-18. "
        f"{trained}, with random warps and stroke widths. {accuracy} "
        "Your drawing is cropped, scaled, given MNIST's stroke width and centred in 28×28 pixels, like the "
        "MNIST digits; the small image shows what the network saw."
    )


def find_examples(folder: Path = EXAMPLES_DIR) -> list[list]:
    """[[png path, number], ...] for each demo/examples/digit_N.png, in digit order; [] when there are none."""
    found = sorted((int(m.group(1)), p) for p in folder.glob("digit_*.png")
                   if (m := re.fullmatch(r"digit_(\d)\.png", p.name)))
    # A fixed, varied number per digit, so the examples show different sums (7 -> 7 + 5 = 12).
    return [[str(p), (3 * d + 4) % 10] for d, p in found]


CSS = (ROOT / "web" / "style.css").read_text(encoding="utf-8")  # the equation, the 28x28 view, phones

# The page's own reading as the outputs (web/page.js); nothing changes where the page cannot read, and page.js
# asks the server instead.
PAGE_OUTPUTS_JS = "(number) => window.mnistSumPage?.outputs(number)"
# An example drawn on the pad sets the slider to its number (a JavaScript listener gets no event data:
# docs/gradio-notes.md, 7).
EXAMPLE_NUMBER_JS = "(number) => window.mnistSumPage?.exampleNumber ?? number"


def example_thumbnails(examples: list[list]) -> list[dict]:
    """find_examples' [[path, number], ...] as the pad's strip wants them: URL (served by the app), digit, number."""
    return [{"url": url(Path(path)), "digit": int(Path(path).stem.rpartition("_")[2]), "number": number}
            for path, number in examples]


def build_demo() -> gr.Blocks:
    """The whole UI: sketch pad and number in, digit, sum, equation, the network's view and "How it adds" out."""
    examples = example_thumbnails(find_examples())
    page_head = head(page_settings(examples), MODEL_FILE)
    with gr.Blocks(title="mnist-sum: draw a digit, add a number", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown("## mnist-sum: draw a digit, pick a number, get the digit and the sum",
                    elem_id="title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320):
                pad = drawing_pad(examples, page_head, elem_id="sketch")
                equation = gr.Markdown(DRAW_PROMPT, elem_id="equation")
            with gr.Column(scale=4, min_width=300):
                with gr.Row(equal_height=True):
                    number = gr.Slider(0, 9, value=INITIAL_NUMBER, step=1, label="Number to add", elem_id="number",
                                       scale=4)
                    random_number = gr.Button("Random", elem_id="random", scale=1, min_width=90)
                with gr.Row():
                    digit = gr.Label(label="Digit", num_top_classes=3, elem_id="digit")
                    total = gr.Label(label="Digit + number", num_top_classes=3, elem_id="sum")
                seen = gr.Image(label="What the network saw (28×28)", elem_id="seen", interactive=False,
                                height=200, buttons=[], type="filepath")
        how_it_adds(page_head, elem_id="how-it-adds")
        gr.Markdown(about_model())

        outputs = [digit, total, equation, seen]
        # The page reads the pad itself (web/page.js) and fires the pad's "read" event with each reading; this
        # JavaScript-only listener (also run when the number changes) shows it. Where the page cannot read, it
        # puts the canvas in the pad's value and fires "send": /predict reads it on the server (one request per
        # pen-up; always_last answers the latest). The pad is never an output: nothing from the server touches it.
        for show_reading in (pad.read, number.change):  # gr.on takes no custom events (docs/gradio-notes.md, 6)
            show_reading(None, inputs=number, outputs=outputs, js=PAGE_OUTPUTS_JS, trigger_mode="always_last",
                         show_progress="hidden")
        pad.example(None, inputs=number, outputs=number, js=EXAMPLE_NUMBER_JS, show_progress="hidden")

        # preprocess=False hands over the values as sent, so that a bad number or image is refused in this
        # app's words: the Slider's check words -1 and 10 its own way and fails on None.
        pad.send(predict_pad, inputs=[pad, number], outputs=outputs, api_name="predict",
                 trigger_mode="always_last", show_progress="hidden", concurrency_id="model", preprocess=False)
        gr.api(predict_image, api_name="predict_image", concurrency_id="model")
        # Pure-JavaScript listeners (fn=None) run in the browser and are never API endpoints.
        random_number.click(None, outputs=number, js="() => Math.floor(Math.random() * 10)")
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    return demo


def predict_pad(sketch, number: float) -> tuple:
    """The pad's value (a PNG data URL, or the Sketchpad-style dict API clients send) + number -> digit label,
    sum label, equation and the network's view."""
    number = check_number(number)  # first, so that a bad number is an error even on an empty pad
    return predict(read_pad(sketch), number)


def page_settings(examples: list[dict]) -> dict:
    """What web/page.js needs from the app: the pad (examples: example_thumbnails'), and the texts worded as
    predict words them."""
    def equation(is_digit: bool) -> str:
        """equation_text with placeholders, filled in by the page."""
        return equation_text(SimpleNamespace(digit="{digit}", sum="{sum}", is_digit=is_digit), "{number}")

    return {"pad": {"side": CANVAS, "brush": 2 * BRUSH_RADIUS, "eraser": 4 * BRUSH_RADIUS,
                    "examples": examples},
            "number": INITIAL_NUMBER, "seenScale": SEEN_SCALE, "topClasses": 3,
            "texts": {"blank": DRAW_PROMPT, "notADigit": NOT_A_DIGIT, "equation": equation(True),
                      "guess": equation(False)}}


MODEL_FILE = model_file(WEIGHTS)  # the page's copy of the network (None: the server reads every drawing)
demo = build_demo()


def launch(**kwargs):
    """Start the server with the app's limits; kwargs go to Blocks.launch (tests pass a host and port)."""
    # from the app itself: the page's scripts, the examples, the reader, its worker, the model file
    gr.set_static_paths(served_files(MODEL_FILE, [Path(path) for path, _ in find_examples()]))
    # server_name and server_port are left to Gradio, which reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT.
    return demo.launch(max_file_size=MAX_FILE_SIZE, css=CSS, app_kwargs={"lifespan": clean_cache}, **kwargs)


if __name__ == "__main__":
    launch()
