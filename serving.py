"""The server side of the app's requests (Gradio 6.31.0): refusals in words, images read as a viewer shows
them, /predict_image's plain JSON, and the bounded store of the pad's stroke images.

Every refusal is a gr.Error whose message the caller sees (gradio_client raises it as AppError) and one line
in the log. Where a piece works around a Gradio behaviour its docstring says which, and when it can go;
docs/gradio-notes.md shows each behaviour in a few lines.
"""

import io
import logging
import os
import threading
from dataclasses import fields

import gradio as gr
import numpy as np
import PIL.Image
from gradio.components.image_editor import EditorData
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder, is_in_or_equal

from mnist_sum.predict import Prediction, Predictor, check_number as check_number_0_9
from mnist_sum.preprocess import MAX_PIXELS, upright
from mnist_sum.weights import WeightsError, read_metadata

# Pillow's default limit (~179 MP) lets a small PNG expand to gigabytes when Gradio decodes an upload.
# Pillow refuses images above twice MAX_IMAGE_PIXELS while reading the header, before decoding, so half
# the predictor's limit makes Pillow refuse exactly what the predictor would.
PIL.Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2

LOG = logging.getLogger("mnist_sum.app")  # refusals: one warning line each (stderr, even unconfigured)
MAX_PENDING_SKETCHES = 256  # strokes' images held for a prediction; older ones were skipped (see PendingStrokes)


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


def read_image(path: str) -> PIL.Image.Image:
    """An image file decoded (its size checked from the header first); a refusal saying what is wrong."""
    try:
        with PIL.Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError("too large")
            image.load()
            return upright(image)  # as a viewer shows it: a phone photo is stored turned
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as e:
        raise refuse(image_problem(e)) from None


def read_pad(pad: gr.Sketchpad, payload: dict | None) -> dict | None:
    """The pad's raw value preprocessed as Gradio would (numpy images), an unreadable image refused in words.

    Called by /predict, which runs with preprocess=False (see check_number): Gradio 6.31.0's own preprocess
    would answer an unreadable image with a generic error. Stays with check_number.
    """
    if payload is None:
        return None
    try:
        value = EditorData.model_validate(payload)
        if value.id is None:  # files sent through the API (the page sends its strokes ahead, id'd, as PNG blobs)
            # model_construct: ImageEditor.preprocess reads bytes as well as files, the model's types allow files only
            value = EditorData.model_construct(background=upright_upload(value.background), id=None,
                                               layers=[upright_upload(f) for f in value.layers],
                                               composite=upright_upload(value.composite))
        return pad.preprocess(value)
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as e:
        raise refuse(image_problem(e)) from None


def upright_upload(file: FileData | None) -> FileData | bytes | None:
    """An image file of the pad's value as a viewer shows it: the file itself, or PNG bytes of it turned upright.

    Gradio's ImageEditor.preprocess (6.31.0) reads files as stored, ignoring their EXIF orientation (gr.Image
    applies it): a phone photo of a 7 would reach the predictor lying on its side. Can go once the
    ImageEditor turns images as gr.Image does (docs/gradio-notes.md, 6).
    """
    if file is None:
        return None
    with PIL.Image.open(file.path) as image:
        if image.width * image.height > MAX_PIXELS:
            raise ValueError("too large")
        turned = upright(image)
        if turned is image:
            return file
        buffer = io.BytesIO()
        turned.save(buffer, format="PNG")
        return buffer.getvalue()


def prediction_json(result: Prediction | None) -> dict:
    """Every field of a Prediction as plain JSON (arrays as nested lists); all None for a blank image."""
    def plain(value):
        """numpy arrays and scalars as Python lists and numbers."""
        return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value

    return {f.name: None if result is None else plain(getattr(result, f.name)) for f in fields(Prediction)}


class PendingStrokes(dict):
    """The pad's store of strokes' images awaiting their prediction (Gradio's ImageEditor.blob_storage), bounded.

    The browser sends each stroke's three images (background, layer, composite) as three concurrent requests
    ahead of the prediction request, which reads and removes them. Two fixes over a plain dict: with
    trigger_mode="always_last" the requests of strokes drawn while another one runs are skipped, and their
    images would stay in memory for good, so only the newest `limit` strokes are kept; and the three images
    of one stroke, stored by three threads at once, all land in one entry (Gradio reads, then writes back).
    Gradio 6.31.0 (ImageEditor.accept_blobs); can go once Gradio bounds the store and stores under a lock
    (docs/gradio-notes.md, 4 and 5).
    """

    def __init__(self, limit: int = MAX_PENDING_SKETCHES):
        super().__init__()
        self.limit = limit
        self.lock = threading.RLock()

    def get(self, key, default=None):
        """The entry for key; given a default, a new key gets that default stored at once (one entry per stroke)."""
        with self.lock:
            return super().get(key) if default is None else self.setdefault(key, default)

    def __setitem__(self, key, value):
        with self.lock:
            super().__setitem__(key, value)
            while len(self) > self.limit:
                super().pop(next(iter(self)))  # the oldest: dicts keep insertion order

    def pop(self, *args):
        """dict.pop, under the lock (eviction iterates over the keys)."""
        with self.lock:
            return super().pop(*args)


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
