"""mnist-sum web app (also the Hugging Face Spaces entry point): draw a digit, pick a number 0-9, and one
network predicts the digit and digit + number, live.

    python app.py                                # serves http://127.0.0.1:7860
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=8080 python app.py
    MNIST_SUM_WEIGHTS=path/to/other.safetensors python app.py

`import app` builds `demo` and loads the model but starts no server, so tests can launch it themselves.
"""

import hashlib
import io
import os
import re
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image

from mnist_sum.predict import Predictor, check_number as check_number_0_9
from mnist_sum.preprocess import MAX_PIXELS
from mnist_sum.weights import SHIPPED_WEIGHTS, WeightsError, read_metadata, write_atomically

# Pillow's default limit (~179 MP) lets a small PNG expand to gigabytes when Gradio decodes an upload.
# Pillow refuses images above twice MAX_IMAGE_PIXELS while reading the header, before decoding, so half
# the predictor's limit makes Pillow refuse exactly what the predictor would.
PIL.Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2

ROOT = Path(__file__).parent
EXAMPLES_DIR = ROOT / "demo" / "examples"
WEIGHTS = Path(os.environ.get("MNIST_SUM_WEIGHTS") or SHIPPED_WEIGHTS)

CANVAS = 400  # canvas side in pixels; the predictor rescales any size to 28x28
BRUSH_RADIUS = 12  # a marker-like line; the predictor sets any stroke to MNIST's width anyway
SEEN_SCALE = 8  # the 28x28 input is shown at 224x224, nearest neighbour, so its pixels stay visible
SEEN_DIR = Path(tempfile.mkdtemp(prefix="mnist-sum-seen-"))  # the PNGs of what the network saw (~1 kB each)
MAX_FILE_SIZE = "2mb"  # uploads through the API; a drawing is a few kB
QUEUE_SIZE = 64  # pending requests beyond this are refused instead of piling up
CONCURRENCY = 2  # inference is a few milliseconds on a CPU; two workers keep a small Space responsive
DRAW_PROMPT = "Draw a digit"
BLANK = (None, None, DRAW_PROMPT, None)  # digit label, sum label, equation, seen image


def blank_canvas() -> dict:
    """The pad's empty value: a white background and one transparent layer to draw on."""
    # Why not None: with an empty value Gradio 6's editor falls back to its "image" tool, shows "select the
    # draw tool to start" and ignores strokes until the Brush button is clicked. Loading a background makes
    # it select the brush; loading a layer as well makes it emit (and skip) its first internal change event,
    # so that the user's first stroke already triggers a prediction.
    return {
        "background": PIL.Image.new("RGB", (CANVAS, CANVAS), "white"),
        "layers": [PIL.Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))],
        "composite": None,
    }


def load_predictor(path: Path = WEIGHTS) -> Predictor:
    """The model for path; unusable weights end the program with one line that names the file."""
    try:
        predictor = Predictor(path)
        read_metadata(path)  # the page quotes the figures stored there: corrupt metadata is a broken file too
        return predictor
    except WeightsError as e:
        # SystemExit prints its message to stderr and exits with status 1: `python app.py` never serves
        # a broken model, and `import app` in a test fails with the same message.
        raise SystemExit(f"mnist-sum app: cannot load the weights: {e}") from None


PREDICTOR = load_predictor()


def check_number(number) -> int:
    """number as an int 0-9, or a gr.Error saying what is wrong (the Slider lets 2.5 through the API)."""
    try:
        return check_number_0_9(number)
    except ValueError:
        raise gr.Error(f"The number must be a whole number from 0 to 9, got {number!r}.") from None


def top_probs(probs: list[float]) -> dict[str, float]:
    """Class probabilities as a gr.Label value: {'class': probability}."""
    return {str(i): float(p) for i, p in enumerate(probs)}


def predict(sketch: dict | None, number: float) -> tuple:
    """Sketch + number -> digit label, sum label, equation text and the 28x28 input the network saw."""
    number = check_number(number)  # first, so that a bad number is an error even on an empty pad
    try:
        # The predictor reads the composite, else the layers over the background (as an example loads),
        # and returns None for an empty or all-white pad.
        result = PREDICTOR.predict(sketch, number)
    except ValueError as e:  # a bad image (e.g. too many pixels): show the predictor's message
        raise gr.Error(str(e)) from None
    if result is None:
        return BLANK
    seen = seen_png(np.kron(result.input28, np.ones((SEEN_SCALE, SEEN_SCALE), dtype=np.uint8)))
    return (top_probs(result.digit_probs), top_probs(result.sum_probs),
            f"{result.digit} + {number} = {result.sum}", seen)


def seen_png(pixels: np.ndarray, folder: Path = SEEN_DIR) -> str:
    """The network's input as a PNG file named by its content, written atomically; returns its path.

    Why a file: Gradio caches an image returned as an array under a name derived from its content and
    rewrites that file in place, so two requests with the same picture at the same moment can send a
    half-written file (seen under load: 12 of 640 requests failed). Files returned as paths are copied into
    the cache atomically, and a same-content file is never rewritten.
    """
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, format="PNG")
    data = buffer.getvalue()
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    if not path.exists():
        write_atomically(path, data, durable=False)  # a preview: atomic matters, surviving a power cut not
    return str(path)


def about_model(path: Path = WEIGHTS) -> str:
    """A few lines on the network and its test accuracy, as measured by training and stored in the weights."""
    meta = read_metadata(path)
    final = meta.get("metrics", {}).get("final", {})
    epochs = meta.get("train_args", {}).get("epochs")
    trained = f"Trained for {epochs} epochs" if epochs else "Trained"
    if "test_digit" in final and "test_sum" in final:
        accuracy = (f"On the 10,000 MNIST test images it reads **{final['test_digit']:.2%}** of the digits and gets "
                    f"**{final['test_sum']:.2%}** of the sums right.")
    else:
        accuracy = "This weights file carries no test accuracy."
    return (
        "**The network** (MNISTSumNet, PyTorch): three convolutions and a max-pool feed a classifier "
        "(1000 → 512 → 256 → 10) that reads the digit; a small *mix* head (20 → 50 → 20) takes the digit "
        "probabilities next to the one-hot number and predicts the sum 0-18. "
        f"{trained} on the 60,000 MNIST training images, with random warps and stroke widths. {accuracy} "
        "Your drawing is cropped, scaled, given MNIST's stroke width and centred in 28×28 pixels, like the "
        "MNIST digits; the small image shows what the network saw."
    )


def find_examples(folder: Path = EXAMPLES_DIR) -> list[list]:
    """[[png path, number], ...] for each demo/examples/digit_N.png, in digit order; [] when there are none."""
    found = sorted((int(m.group(1)), p) for p in folder.glob("digit_*.png")
                   if (m := re.fullmatch(r"digit_(\d)\.png", p.name)))
    # A fixed, varied number per digit, so the examples show different sums (7 -> 7 + 5 = 12).
    return [[str(p), (3 * d + 4) % 10] for d, p in found]


CSS = """
#equation, #equation .prose, #equation p { font-size: 2rem; font-weight: 600; text-align: center; }
#seen img { image-rendering: pixelated; }
"""


def clear_all() -> tuple:
    """A fresh white pad and the draw-a-digit state."""
    return (blank_canvas(), *BLANK)


def build_demo() -> gr.Blocks:
    """The whole UI: sketch pad and number in, digit, sum, equation and the network's view out."""
    with gr.Blocks(title="mnist-sum: draw a digit, add a number") as demo:
        gr.Markdown("## mnist-sum: draw a digit, pick a number, and one network predicts the digit and the sum")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320):
                sketch = gr.Sketchpad(
                    value=blank_canvas(),
                    label="Draw a digit 0-9 here (large, centred)",
                    elem_id="sketch",
                    type="numpy",
                    image_mode="RGB",  # transparent canvas flattened onto white: black ink on white
                    canvas_size=(CANVAS, CANVAS),
                    fixed_canvas=True,  # examples of any size are fitted into the same canvas
                    brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
                    eraser=gr.Eraser(default_size=BRUSH_RADIUS * 2),
                    layers=False,
                    transforms=(),
                    sources=(),  # drawing only: no upload, webcam or paste
                    buttons=["download"],
                    height=CANVAS + 110,  # room for the toolbar above and below the canvas
                )
                clear = gr.Button("Clear", elem_id="clear", variant="secondary")
            with gr.Column(scale=4, min_width=300):
                with gr.Row(equal_height=True):
                    number = gr.Slider(0, 9, value=3, step=1, label="Number to add", elem_id="number", scale=4)
                    random_number = gr.Button("Random", elem_id="random", scale=1, min_width=90)
                equation = gr.Markdown(DRAW_PROMPT, elem_id="equation")
                with gr.Row():
                    digit = gr.Label(label="Digit", num_top_classes=3, elem_id="digit")
                    total = gr.Label(label="Digit + number", num_top_classes=3, elem_id="sum")
                seen = gr.Image(label="What the network saw (28×28)", elem_id="seen", interactive=False,
                                height=260, buttons=[], type="filepath")
        examples = find_examples()
        if examples:
            gr.Examples(examples, inputs=[sketch, number], label="Examples: click one to load it", elem_id="examples",
                        examples_per_page=10, api_visibility="private")
        gr.Markdown(about_model())

        outputs = [digit, total, equation, seen]
        # One listener for both inputs, so the API has exactly one endpoint, /predict; always_last drops
        # the intermediate requests of a fast series of strokes and answers the latest one.
        gr.on([sketch.change, number.change], predict, inputs=[sketch, number], outputs=outputs,
              api_name="predict", trigger_mode="always_last", show_progress="hidden")
        # A pure-JavaScript listener (fn=None) runs in the browser and is never an API endpoint.
        random_number.click(None, outputs=number, js="() => Math.floor(Math.random() * 10)")
        # Our Clear button and the pad's own trash button both put back the white pad, so the brush stays
        # selected; "private" keeps these listeners out of the API.
        gr.on([clear.click, sketch.clear], clear_all, outputs=[sketch, *outputs], api_visibility="private",
              show_progress="hidden")
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    return demo


demo = build_demo()


def launch(**kwargs):
    """Start the server with the app's limits; kwargs go to Blocks.launch (tests pass a host and port)."""
    # server_name and server_port are left to Gradio, which reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT.
    return demo.launch(max_file_size=MAX_FILE_SIZE, css=CSS, **kwargs)


if __name__ == "__main__":
    launch()
