"""The server side of the app's requests (Gradio 6.31.0): refusals in words, images read as a viewer shows
them, the pad's value read (a PNG data URL, or the dict API clients send), and /predict_image's plain JSON.

Every refusal is a gr.Error whose message the caller sees (gradio_client raises it as AppError) and one line
in the log. Where a piece works around a Gradio behaviour its docstring says which, and when it can go;
docs/gradio-notes.md shows each behaviour in a few lines.
"""

import base64
import binascii
import io
import logging
import os
from dataclasses import fields

import gradio as gr
import numpy as np
import PIL.Image
from gradio.utils import get_upload_folder, is_in_or_equal

from mnist_sum.predict import Prediction, Predictor, check_number as check_number_0_9
from mnist_sum.preprocess import MAX_PIXELS, upright
from mnist_sum.weights import WeightsError, read_metadata

# Pillow's default limit (~179 MP) lets a small PNG expand to gigabytes when Gradio decodes an upload.
# Pillow refuses images above twice MAX_IMAGE_PIXELS while reading the header, before decoding, so half
# the predictor's limit makes Pillow refuse exactly what the predictor would.
PIL.Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2

LOG = logging.getLogger("mnist_sum.app")  # refusals: one warning line each (stderr, even unconfigured)
MAX_DATA_URL = 4 * 1024 * 1024  # base64 characters of the pad's image (3 MB); a drawing is a few kB


def refuse(message: str) -> gr.Error:
    """The error for a refused request: the message goes to the caller, one line to the log, no traceback.

    gr.Error(print_exception=False) keeps Gradio 6.31.0 from printing a traceback per refusal; stays as long
    as the app refuses in its own words.
    """
    LOG.warning("mnist-sum: refused a request: %s", message)
    return gr.Error(message, print_exception=False)


def image_problem(error: Exception) -> str:
    """What is wrong with an image that could not be read, in words for the caller."""
    if isinstance(error, PIL.Image.DecompressionBombError) or "too large" in str(error):
        return f"The image is too large: at most {MAX_PIXELS:,} pixels ({MAX_PIXELS / 1e6:.1f} megapixels)."
    if isinstance(error, PIL.UnidentifiedImageError):
        return "The file is not an image that can be read: send a PNG, JPEG, WebP, BMP or GIF file."
    if isinstance(error, (OSError, SyntaxError)):  # Pillow's words for a file cut short or damaged
        return "The image file is truncated or corrupt: it cannot be decoded."
    return f"The image cannot be read: {error}"


def check_number(number) -> int:
    """number as an int 0-9, or a refusal saying what is wrong (None, text, 2.5, 10 ...).

    /predict runs with preprocess=False, because the Slider's own check (Gradio 6.31.0) words -1 and 10 its way
    and fails on None; this is that check in the app's words. Stays while the app wants its own words.
    """
    try:
        return check_number_0_9(number)
    except ValueError:
        raise refuse(f"The number must be a whole number from 0 to 9, got {number!r}.") from None


def uploaded_path(image) -> str:
    """The server-side path of a file argument uploaded through the API; a refusal for anything else.

    gr.api (Gradio 6.31.0) hands /predict_image's file argument over as sent, with no component to check it.
    """
    path = image.get("path") if isinstance(image, dict) else None
    # Only files in Gradio's upload folder: a bare {"path": ...} must not read arbitrary server files.
    if not isinstance(path, str) or not is_in_or_equal(path, get_upload_folder()) or not os.path.isfile(path):
        raise refuse("The image must be an image file, sent as handle_file('digit.png') "
                     f"(gradio_client), got {type(image).__name__}.")
    return path


def read_image(path: "str | io.BytesIO") -> PIL.Image.Image:
    """An image file (a path, or its bytes) decoded, its size checked from the header first; a refusal saying
    what is wrong."""
    try:
        with PIL.Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError("too large")
            image.load()
            return upright(image)  # as a viewer shows it: a phone photo is stored turned
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as e:
        raise refuse(image_problem(e)) from None


def read_pad(value) -> "PIL.Image.Image | dict | None":
    """The pad's value as the predictor takes it: None (an empty pad), the canvas from its PNG data URL, or the
    dict API clients send ({"background", "layers", "composite"}, image files: the composite is read, else
    the layers over the background); a refusal in words for anything else."""
    if value is None:
        return None
    if isinstance(value, str):
        return read_data_url(value)
    if isinstance(value, dict) and set(value) <= {"background", "layers", "composite", "id"}:
        layers = value.get("layers") or []
        if not isinstance(layers, list):
            raise refuse(f"The pad's layers must be a list of image files, got {type(layers).__name__}.")
        images = {key: None if value.get(key) is None else np.asarray(read_image(uploaded_path(value[key])))
                  for key in ("background", "composite")}
        return {**images, "layers": [np.asarray(read_image(uploaded_path(layer))) for layer in layers]}
    raise refuse("The pad's value must be a PNG data URL (data:image/png;base64,...) or a dict of image files "
                 f"with background, layers and composite, got {type(value).__name__}.")


def read_data_url(value: str) -> PIL.Image.Image:
    """An image from a data URL (data:image/...;base64,...), its size checked before decoding; refused in words."""
    head, comma, body = value.partition(",")
    if not (comma and head.startswith("data:image/") and head.endswith(";base64")):
        raise refuse("The pad's image must be a data URL such as data:image/png;base64,..., "
                     f"got {value[:40]!r}{'...' if len(value) > 40 else ''}.")
    if len(body) > MAX_DATA_URL:
        raise refuse(f"The pad's image is too large: at most {MAX_DATA_URL * 3 // 4 // 1024 // 1024} MB.")
    try:
        data = base64.b64decode(body, validate=True)
    except binascii.Error:
        raise refuse("The pad's image is not valid base64.") from None
    return read_image(io.BytesIO(data))


def prediction_json(result: Prediction | None) -> dict:
    """Every field of a Prediction as plain JSON (arrays as nested lists); all None for a blank image."""
    def plain(value):
        """numpy arrays and scalars as Python lists and numbers."""
        return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value

    return {f.name: None if result is None else plain(getattr(result, f.name)) for f in fields(Prediction)}


def load_predictor(path) -> Predictor:
    """The model for path; unusable weights end the program with one line that names the file (not Gradio's)."""
    try:
        predictor = Predictor(path)
        read_metadata(path)  # the page quotes the figures stored there: corrupt metadata is a broken file too
        return predictor
    except WeightsError as e:
        # SystemExit prints its message to stderr and exits with status 1: `python app.py` never serves
        # a broken model, and `import app` in a test fails with the same message.
        raise SystemExit(f"mnist-sum app: cannot load the weights: {e}") from None
