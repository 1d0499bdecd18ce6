"""The app without a browser: the predict function, the /predict API of a running server, and start-up."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gradio as gr
import httpx
import numpy as np
import PIL.Image
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import ImageDraw

import app
from mnist_sum.weights import read_metadata

ROOT = Path(app.__file__).parent
EXAMPLES = app.find_examples()
SERVING_AT_IMPORT = app.demo.is_running  # read at collection, before any fixture launches the server
EQUATION = re.compile(r"^(\d) \+ (\d) = (\d{1,2})$")


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


def test_about_model_quotes_the_measured_accuracy():
    final = read_metadata(app.WEIGHTS)["metrics"]["final"]
    text = app.about_model()
    assert f"{final['test_digit']:.2%}" in text and f"{final['test_sum']:.2%}" in text


def test_find_examples(tmp_path):
    assert app.find_examples(tmp_path / "missing") == []
    for name in ("digit_3.png", "digit_0.png", "digit_12.png", "notes.png"):
        (tmp_path / name).write_bytes(b"")
    found = app.find_examples(tmp_path)
    assert [Path(p).name for p, _ in found] == ["digit_0.png", "digit_3.png"]
    assert all(isinstance(n, int) and 0 <= n <= 9 for _, n in found)


# --- the running server, through gradio_client ----------------------------------------------------

def test_api_has_one_endpoint(client):
    info = client.view_api(return_format="dict", print_info=False)
    assert set(info["named_endpoints"]) == {"/predict"}
    assert info["unnamed_endpoints"] == {}
    params = info["named_endpoints"]["/predict"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["sketch", "number"]


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


@pytest.mark.parametrize("number, message", [(-1, "less than minimum"), (10, "greater than maximum"),
                                             (2.5, "whole number from 0 to 9")])
def test_api_rejects_bad_numbers(client, tmp_path, number, message):
    png = tmp_path / "seven.png"
    PIL.Image.fromarray(drawn_seven()).save(png)
    with pytest.raises(AppError, match=message):
        client.predict(sketch(png), number, api_name="/predict")


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
        digit_label, sum_label, equation, seen = client.predict(value, 3, api_name="/predict")
        assert top(digit_label) is None and top(sum_label) is None
        assert equation == "Draw a digit" and seen is None


def test_api_refuses_a_decompression_bomb(client, tmp_path):
    png = tmp_path / "bomb.png"
    PIL.Image.new("1", (12_000, 12_000), 1).save(png)  # 144 megapixels, a few hundred kB of PNG
    assert png.stat().st_size < 1_000_000
    with pytest.raises(AppError):
        client.predict(sketch(png), 3, api_name="/predict")


def test_server_refuses_a_large_upload(server_url, tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (1100, 1100, 3), np.uint8)  # 1.2 MP, below MAX_PIXELS
    png = tmp_path / "noise.png"
    PIL.Image.fromarray(noise).save(png)
    assert png.stat().st_size > 3_000_000  # above MAX_FILE_SIZE
    # straight to the upload route: gradio_client would refuse the file itself, before sending it
    response = httpx.post(f"{server_url}gradio_api/upload", files={"files": ("noise.png", png.read_bytes())})
    assert response.status_code == 413


# --- `python app.py` as a process -----------------------------------------------------------------

def run_app(env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `python app.py` with extra environment variables until it exits."""
    return subprocess.run([sys.executable, "app.py"], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("content", [None, b"not safetensors at all"], ids=["missing", "corrupt"])
def test_broken_weights_stop_the_app(tmp_path, content):
    path = tmp_path / "broken.safetensors"
    if content is not None:
        path.write_bytes(content)
    result = run_app({"MNIST_SUM_WEIGHTS": str(path)})
    assert result.returncode != 0
    assert "Running on" not in result.stdout
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "cannot load the weights" in line]
    assert len(lines) == 1 and str(path) in lines[0]


def test_server_name_and_port_come_from_the_environment():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)})
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
    finally:
        proc.terminate()
        proc.wait(timeout=30)
