"""The app without a browser: the predict function, the /predict API of a running server, and start-up."""

import base64
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import numpy as np
import PIL.Image
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import ImageDraw

import app
from mnist_sum.predict import Prediction
from mnist_sum.weights import read_metadata

ROOT = Path(app.__file__).parent
EXAMPLES = app.find_examples()
SERVING_AT_IMPORT = app.demo.is_running  # read at collection, before any fixture launches the server
EQUATION = re.compile(r"^(\d) \+ (\d) = (\d{1,2})$")
PREDICTION_FIELDS = [f.name for f in fields(Prediction)]


def drawn_seven(size: int = 400) -> np.ndarray:
    """A 7 in black ink on white, as the pad sends it (RGB uint8)."""
    im = PIL.Image.new("RGB", (size, size), "white")
    s = size / 400
    ImageDraw.Draw(im).line([(120 * s, 90 * s), (290 * s, 90 * s), (180 * s, 330 * s)], fill="black",
                            width=round(24 * s), joint="curve")
    return np.asarray(im)


def sketch(png) -> dict:
    """The /predict sketch argument for a PNG file: the image as the pad's composite."""
    return {"background": None, "layers": [], "composite": handle_file(str(png))}


def top(label: dict) -> str | None:
    """The top class of a gr.Label value as gradio_client returns it; None for an empty label."""
    return label.get("label")


@pytest.fixture(scope="module")
def client(server_url):
    """A gradio_client connected to the in-process server."""
    return Client(server_url, verbose=False)


# --- the module and the pure predict function -------------------------------------------------------

def test_import_builds_demo_without_serving():
    assert isinstance(app.demo, gr.Blocks)
    assert not SERVING_AT_IMPORT


def test_limits_are_set():
    # Pillow refuses images above twice its limit from the header: exactly those the predictor would refuse
    assert 2 * PIL.Image.MAX_IMAGE_PIXELS == app.MAX_PIXELS < 12_000 * 12_000
    assert app.demo._queue.max_size == app.QUEUE_SIZE
    assert app.demo._queue.default_concurrency_limit == app.CONCURRENCY


@pytest.mark.parametrize("value", [None, {"background": None, "layers": [], "composite": None}])
def test_predict_empty_pad_asks_for_a_digit(value):
    assert app.predict(value, 3) == app.BLANK
    assert app.BLANK[2] == "Draw a digit"


def test_predict_white_pad_asks_for_a_digit():
    white = np.full((400, 400, 3), 255, np.uint8)
    assert app.predict({"background": white, "layers": [], "composite": white}, 3) == app.BLANK


@pytest.mark.parametrize("number", [-1, 10, 2.5, True, "3", None, float("nan"), float("inf")])
def test_predict_rejects_bad_numbers(number):
    with pytest.raises(gr.Error, match="whole number from 0 to 9"):
        app.predict({"background": None, "layers": [], "composite": drawn_seven()}, number)


def test_predict_outputs():
    image, number = drawn_seven(), 4
    digit, total, equation, seen = app.predict({"background": image, "layers": [], "composite": image}, float(number))
    assert set(digit) == {str(d) for d in range(10)} and sum(digit.values()) == pytest.approx(1, abs=1e-4)
    assert set(total) == {str(s) for s in range(19)} and 0 < sum(total.values()) <= 1 + 1e-4  # 0..18 only
    d, n, s = map(int, EQUATION.match(equation).groups())
    assert (d, n, s) == (int(max(digit, key=digit.get)), number, int(max(total, key=total.get)))
    seen_pixels = np.asarray(PIL.Image.open(seen))
    assert seen_pixels.shape == (28 * app.SEEN_SCALE, 28 * app.SEEN_SCALE) and seen_pixels.dtype == np.uint8


def test_seen_images_live_in_gradios_cache_and_are_reused():
    from gradio.utils import get_upload_folder, is_in_or_equal

    pixels = np.kron(np.arange(784, dtype=np.uint8).reshape(28, 28), np.ones((8, 8), np.uint8))
    path = app.seen_png(pixels)
    # in Gradio's cache, so that delete_cache removes it once CACHE_AGE old
    assert is_in_or_equal(path, get_upload_folder())
    assert app.demo.delete_cache == app.DELETE_CACHE == (app.CACHE_AGE // 10, app.CACHE_AGE)
    assert (np.asarray(PIL.Image.open(path)) == pixels).all()
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    assert app.seen_png(pixels.copy()) == path  # the same picture: the same file, not a new one ...
    assert time.time() - os.stat(path).st_mtime < 60  # ... handed out again, so aged from now


def test_prune_empty_folders_removes_only_old_empty_ones(tmp_path):
    long_ago = time.time() - 2 * app.CACHE_AGE
    old_empty, new_empty, old_full = tmp_path / "old-empty", tmp_path / "new-empty", tmp_path / "old-full"
    for folder in (old_empty, new_empty, old_full):
        folder.mkdir()
    (old_full / "upload.png").write_bytes(b"png")
    (tmp_path / "file.png").write_bytes(b"png")  # a file beside the folders is not a folder
    for path in (old_empty, old_full, tmp_path / "file.png"):
        os.utime(path, (long_ago, long_ago))
    assert app.prune_empty_folders(tmp_path, app.CACHE_AGE) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.png", "new-empty", "old-full"]
    assert app.prune_empty_folders(tmp_path / "missing", app.CACHE_AGE) == 0


def test_delete_old_files_spares_young_and_kept_files_and_empties_its_sets(tmp_path):
    young, kept, gone = (str(tmp_path / name) for name in ("seen.png", "example.png", "gone.png"))
    for path in (young, kept):
        Path(path).write_bytes(b"png")
    files = {young, kept, gone}  # Gradio's set of what a component put in its cache
    blocks = SimpleNamespace(blocks={1: SimpleNamespace(keep_in_cache={kept})}, temp_file_sets=[files])
    assert app.delete_old_files(blocks, app.CACHE_AGE) == 0  # seconds old, not CACHE_AGE
    assert files == {young, kept}  # a file deleted meanwhile leaves the set
    assert app.delete_old_files(blocks, -1) == 1  # all old enough: all but the examples' files go
    assert files == {kept} and [p.name for p in tmp_path.iterdir()] == ["example.png"]


def data_url(image: np.ndarray, format: str = "PNG") -> str:
    """An image as the pad sends it: a data URL of its canvas."""
    buffer = io.BytesIO()
    PIL.Image.fromarray(image).save(buffer, format=format)
    return f"data:image/{format.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def test_pad_value_is_read_as_the_canvas():
    seven = np.dstack([drawn_seven(), np.full((400, 400), 255, np.uint8)])  # the canvas' RGBA pixels
    assert app.predict_pad(data_url(seven), 3)[2] == "7 + 3 = 10"
    assert app.predict_pad(data_url(np.full((400, 400, 3), 255, np.uint8)), 3) == app.BLANK  # a white canvas
    assert app.predict_pad(None, 3) == app.BLANK  # the value of an empty pad


@pytest.mark.parametrize("value, words", [
    ("data:text/plain;base64,aGVsbG8=", "The pad's image must be a data URL"),
    ("data:image/png;base64,@@@", "The pad's image is not valid base64"),
    ("data:image/png;base64," + base64.b64encode(b"not a png").decode(), "The file is not an image"),
    (42, "The pad's value must be a PNG data URL"),
    ({"composite": None, "pixels": []}, "The pad's value must be a PNG data URL"),
], ids=["not an image type", "bad base64", "not a png", "a number", "unknown keys"])
def test_pad_value_refused_in_words(value, words):
    with pytest.raises(gr.Error) as refused:
        app.predict_pad(value, 3)
    assert refused.value.message.startswith(words), refused.value.message


def test_pad_value_too_large_is_refused_before_decoding():
    with pytest.raises(gr.Error) as refused:
        app.predict_pad("data:image/png;base64," + "A" * (app.MAX_DATA_URL + 4), 3)
    assert refused.value.message.startswith("The pad's image is too large: at most 3 MB"), refused.value.message


def test_about_model_quotes_the_measured_accuracy():
    final = read_metadata(app.WEIGHTS)["metrics"]["final"]
    text = app.about_model()
    assert f"{final['test_digit']:.2%}" in text and f"{final['test_sum']:.2%}" in text
    assert f"`{app.WEIGHTS.name}`" in text  # which model the app serves, and what it learned from:
    assert "pen-written by real people" in text and "does not look like a digit" in text


def test_find_examples(tmp_path):
    assert app.find_examples(tmp_path / "missing") == []
    for name in ("digit_3.png", "digit_0.png", "digit_12.png", "notes.png"):
        (tmp_path / name).write_bytes(b"")
    found = app.find_examples(tmp_path)
    assert [Path(p).name for p, _ in found] == ["digit_0.png", "digit_3.png"]
    assert all(isinstance(n, int) and 0 <= n <= 9 for _, n in found)


# --- the running server, through gradio_client ----------------------------------------------------

def test_api_has_two_endpoints(client):
    info = client.view_api(return_format="dict", print_info=False)
    assert set(info["named_endpoints"]) == {"/predict", "/predict_image"}
    assert info["unnamed_endpoints"] == {}
    for name in ("/predict", "/predict_image"):
        params = info["named_endpoints"][name]["parameters"]
        assert [p["parameter_name"] for p in params] == [("sketch" if name == "/predict" else "image"), "number"]
    assert info["named_endpoints"]["/predict_image"]["parameters"][0]["python_type"]["type"] == "filepath"


def test_nothing_from_the_server_touches_the_pad():
    # the pad starts empty and is no event's output: what is drawn stays in the browser
    pad = next(b for b in app.demo.blocks.values() if getattr(b, "elem_id", None) == "sketch")
    assert isinstance(pad, gr.HTML) and pad.value is None
    assert not [dep.name for dep in app.demo.fns.values() if pad in dep.outputs]
    # showing the page's readings (on the pad's "read" and the slider's change), an example's number and
    # Random run in the browser only, out of the API
    js_only = [dep for dep in app.demo.fns.values() if dep.fn is None]
    assert len(js_only) == 4 and all(dep.js for dep in js_only)
    assert all(dep.api_visibility == "private" for dep in js_only)


@pytest.mark.parametrize("example", EXAMPLES or [pytest.param(None, marks=pytest.mark.skip(
    reason="no demo/examples/digit_N.png yet"))], ids=lambda e: Path(e[0]).stem if e else "none")
def test_api_reads_each_example(client, example):
    png, number = example
    digit = int(re.fullmatch(r"digit_(\d)", Path(png).stem).group(1))
    digit_label, sum_label, equation, seen = client.predict(sketch(png), number, api_name="/predict")
    assert top(digit_label) == str(digit)
    assert top(sum_label) == str(digit + number)
    assert equation == f"{digit} + {number} = {digit + number}"
    assert PIL.Image.open(seen).size == (28 * app.SEEN_SCALE, 28 * app.SEEN_SCALE)


BAD_NUMBERS = [None, "3", -1, 10, 2.5, True]
NUMBER_MESSAGE = "The number must be a whole number from 0 to 9, got {!r}."


@pytest.fixture(scope="module")
def seven_png(tmp_path_factory) -> Path:
    """A PNG file of a drawn 7."""
    path = tmp_path_factory.mktemp("good") / "seven.png"
    PIL.Image.fromarray(drawn_seven()).save(path)
    return path


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory, seven_png) -> dict[str, Path]:
    """Files that are not usable images, each with the words the app must refuse it in."""
    folder = tmp_path_factory.mktemp("bad")
    bomb = folder / "bomb.png"
    PIL.Image.new("1", (12_000, 12_000), 1).save(bomb)  # 144 megapixels in a few hundred kB of PNG
    assert bomb.stat().st_size < 1_000_000
    truncated = folder / "truncated.png"
    truncated.write_bytes(seven_png.read_bytes()[: seven_png.stat().st_size // 2])
    text = folder / "notes.png"
    text.write_text("not an image at all")
    return {"The image is too large": bomb, "The image file is truncated or corrupt": truncated,
            "The file is not an image": text}


def call(client, endpoint: str, png, number):
    """One API call with an image file: /predict_image takes the file, /predict a sketch holding it."""
    image = handle_file(str(png))
    return client.predict(image if endpoint == "/predict_image" else sketch(png), number, api_name=endpoint)


@pytest.mark.parametrize("endpoint", ["/predict", "/predict_image"])
@pytest.mark.parametrize("number", BAD_NUMBERS, ids=repr)
def test_api_refuses_bad_numbers_in_words(client, seven_png, endpoint, number):
    with pytest.raises(AppError) as refused:
        call(client, endpoint, seven_png, number)
    assert str(refused.value) == NUMBER_MESSAGE.format(number)  # the app's words, not the slider's


@pytest.mark.parametrize("endpoint", ["/predict", "/predict_image"])
@pytest.mark.parametrize("problem", ["The image is too large", "The image file is truncated or corrupt",
                                     "The file is not an image"])
def test_api_refuses_bad_images_in_words(client, bad_images, endpoint, problem):
    with pytest.raises(AppError, match=f"^{problem}"):
        call(client, endpoint, bad_images[problem], 3)


@pytest.mark.parametrize("image", [None, "/etc/hostname", {"path": "/etc/hostname"}], ids=repr)
def test_predict_image_refuses_what_is_not_an_uploaded_file(client, image):
    with pytest.raises(AppError, match="^The image must be an image file, sent as handle_file"):
        client.predict(image, 3, api_name="/predict_image")


def test_api_reads_a_sketch_given_as_background(client, tmp_path):
    png = tmp_path / "seven.png"  # an example loads into the pad as its background, with no composite
    PIL.Image.fromarray(drawn_seven()).save(png)
    value = {"background": handle_file(str(png)), "layers": [], "composite": None}
    digit_label, sum_label, equation, seen = client.predict(value, 4, api_name="/predict")
    d, n, s = map(int, EQUATION.match(equation).groups())
    assert (str(d), n, str(s)) == (top(digit_label), 4, top(sum_label))


def test_api_blank_sketch_asks_for_a_digit(client, tmp_path):
    png = tmp_path / "white.png"
    PIL.Image.new("RGB", (400, 400), "white").save(png)
    for value in (sketch(png), {"background": None, "layers": [], "composite": None}):
        # exactly what the README says a client receives: empty labels are {}
        assert client.predict(value, 3, api_name="/predict") == ({}, {}, "Draw a digit", None)
    blank = client.predict(handle_file(str(png)), 3, api_name="/predict_image")
    assert blank == {name: None for name in PREDICTION_FIELDS}


@pytest.mark.parametrize("example", EXAMPLES or [pytest.param(None, marks=pytest.mark.skip(
    reason="no demo/examples/digit_N.png yet"))], ids=lambda e: Path(e[0]).stem if e else "none")
def test_predict_image_reads_each_example_as_plain_json(client, example):
    png, number = example
    digit = int(re.fullmatch(r"digit_(\d)", Path(png).stem).group(1))
    result = client.predict(handle_file(png), number, api_name="/predict_image")
    assert set(result) == set(PREDICTION_FIELDS)  # every field of Prediction, nothing else
    assert (result["digit"], result["sum"], result["is_digit"]) == (digit, digit + number, True)
    assert len(result["digit_probs"]) == 10 and sum(result["digit_probs"]) == pytest.approx(1, abs=1e-4)
    assert len(result["sum_probs"]) == 19 and max(result["sum_probs"]) == result["sum_probs"][digit + number]
    seen = np.array(result["input28"])
    assert seen.shape == (28, 28) and seen.min() >= 0 and seen.max() <= 255
    # the API answers what the library answers for the same file
    direct = app.prediction_json(app.PREDICTOR.predict(png, number))
    assert result["input28"] == direct["input28"]
    assert result["digit_probs"] == pytest.approx(direct["digit_probs"], abs=1e-6)


@pytest.fixture
def uploaded(tmp_path_factory):
    """Copies files into Gradio's upload folder, as an upload through the API puts them; removed afterwards."""
    import shutil
    import tempfile

    from gradio.utils import get_upload_folder

    os.makedirs(get_upload_folder(), exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=get_upload_folder()))
    yield lambda path: {"path": shutil.copy(path, folder)}
    shutil.rmtree(folder)


@pytest.mark.parametrize("orientation", [6, 8])
def test_predict_image_reads_a_phone_photo_as_a_viewer_shows_it(phone_photos, uploaded, orientation):
    for digit in range(10):
        result = app.predict_image(uploaded(phone_photos[digit, orientation]), 2)
        assert (result["digit"], result["sum"]) == (digit, digit + 2), f"digit {digit}"


@pytest.mark.parametrize("orientation", [6, 8])
def test_api_reads_a_phone_photo_in_the_sketch_as_a_viewer_shows_it(client, phone_photos, orientation):
    # Gradio's own reading of the pad's files ignores the orientation: the app turns them first
    for digit in (1, 4, 7):
        photo = phone_photos[digit, orientation]
        for value in (sketch(photo), {"background": handle_file(str(photo)), "layers": [], "composite": None}):
            digit_label, sum_label, equation, seen = client.predict(value, 2, api_name="/predict")
            assert equation == f"{digit} + 2 = {digit + 2}", (photo.name, value["composite"] is None)


def test_not_a_digit_shows_no_confident_digit(not_a_digit_predictor):
    image = drawn_seven()
    digit, total, equation, seen = app.predict({"background": None, "layers": [], "composite": image}, 3)
    assert digit == total == app.NOT_A_DIGIT  # no digit shown as the answer, not even with its probability
    assert equation.startswith("Doesn't look like a digit")
    assert "(best guess: 4 + 3 = 7)" in equation and "class='guess'" in equation  # small print, beside it
    assert PIL.Image.open(seen).size == (28 * app.SEEN_SCALE, 28 * app.SEEN_SCALE)


def test_predict_image_flags_a_spiral_with_the_shipped_threshold(client, tmp_path):
    """The served handwriting model's own threshold (no stand-in predictor): a spiral is not a digit."""
    from mnist_sum.pen import render
    from mnist_sum.synthetic import nondigit_strokes

    rng = np.random.default_rng(1)
    path = tmp_path / "spiral.png"
    PIL.Image.fromarray(render(nondigit_strokes(rng, "spiral"), 400, rng)).save(path)
    result = client.predict(handle_file(str(path)), 3, api_name="/predict_image")
    assert result["is_digit"] is False and result["digit_score"] < app.PREDICTOR.threshold


def test_api_carries_the_not_a_digit_flag(client, not_a_digit_predictor, seven_png):
    png = seven_png
    digit_label, sum_label, equation, _ = client.predict(sketch(png), 3, api_name="/predict")
    assert digit_label["label"] == sum_label["label"] == app.NOT_A_DIGIT and not digit_label.get("confidences")
    assert equation.startswith("Doesn't look like a digit")
    result = client.predict(handle_file(str(png)), 3, api_name="/predict_image")
    assert (result["is_digit"], result["digit"], result["sum"]) == (False, 4, 7)


def readme_snippets(heading: str) -> list[tuple[str, str]]:
    """(code, printed output) of each Python block in the README paragraph that starts with heading, each block
    followed by the block of what it prints."""
    readme = (ROOT / "README.md").read_text()
    part = readme.split(f"\n{heading}", 1)[1].split("\n**", 1)[0].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```\n\n```\n(.*?)```", part, flags=re.S)


def test_readme_api_snippet_prints_what_it_says_from_any_folder(server_url, monkeypatch, capsys, tmp_path):
    (code, promised), = readme_snippets("**The API.**")
    monkeypatch.chdir(tmp_path)  # the snippet makes its own drawing: no file of the repository needed
    exec(compile(code.replace("http://127.0.0.1:7860/", server_url), "README.md", "exec"), {})
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("Loaded as API")]
    assert printed == promised.splitlines()


def test_readme_python_snippet_prints_what_it_says_from_any_folder(monkeypatch, capsys, tmp_path):
    (code, promised), = readme_snippets("**Python.**")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.splitlines() == promised.splitlines()


def test_server_refuses_a_large_upload(server_url, tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (1100, 1100, 3), np.uint8)  # 1.2 MP, below MAX_PIXELS
    png = tmp_path / "noise.png"
    PIL.Image.fromarray(noise).save(png)
    assert png.stat().st_size > 3_000_000  # above MAX_FILE_SIZE
    # straight to the upload route: gradio_client would refuse the file itself, before sending it
    response = httpx.post(f"{server_url}gradio_api/upload", files={"files": ("noise.png", png.read_bytes())})
    assert response.status_code == 413


# --- `python app.py` as a process -----------------------------------------------------------------

def test_broken_weights_stop_the_app(tmp_path):
    missing, corrupt = tmp_path / "missing.safetensors", tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not safetensors at all")
    # both at once: each start costs seconds of imports
    procs = {path: subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env={**os.environ, "MNIST_SUM_WEIGHTS": str(path)})
             for path in (missing, corrupt)}
    for path, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode != 0
        assert "Running on" not in stdout
        assert "Traceback" not in stderr
        lines = [line for line in stderr.splitlines() if "cannot load the weights" in line]
        assert len(lines) == 1 and str(path) in lines[0]


def test_server_port_from_the_environment_and_one_log_line_per_refusal(bad_images, seven_png):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                                 "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app did not answer on GRADIO_SERVER_PORT"
                time.sleep(1)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        refusals = [("/predict_image", bad_images["The image is too large"], 3),
                    ("/predict", bad_images["The file is not an image"], 3), ("/predict_image", seven_png, None)]
        for endpoint, png, number in refusals:
            with pytest.raises(AppError):
                call(client, endpoint, png, number)
        client.close()
    finally:
        proc.terminate()
        log = proc.communicate(timeout=30)[0].decode()
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "refused" in line]
    assert len(lines) == len(refusals), log
