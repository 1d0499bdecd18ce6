"""The in-browser reader (web/reader.js, run in Node) reads drawings as the Python Predictor does, and the
model file it loads (mnist_sum/webmodel.py) holds the PyTorch network's weights."""

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_sum import Predictor, pen
from mnist_sum.synthetic import nondigit_strokes
from mnist_sum.model import normalize
from mnist_sum.preprocess import to_input28
from mnist_sum.weights import SHIPPED_WEIGHTS, load_model, load_state_dict, save_weights
from mnist_sum.webmodel import FORMAT, export, main, read

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node (Node.js 20) is not installed: web/reader.js needs it")
RUNNER = Path(__file__).parent / "web_reader_node.js"
GREY_LEVELS = 2  # the 28x28 inputs may differ by at most this many of 255 grey levels (they agree exactly today)


def rgba(image) -> np.ndarray:
    """Any drawing as the (H, W, 4) uint8 pixels a canvas' getImageData gives."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 4:
        return np.ascontiguousarray(a)
    return np.asarray(Image.fromarray(a).convert("RGBA"))


def pen_drawing(strokes, side: int, rng, **kw) -> np.ndarray:
    """Strokes drawn as the pad draws them (black on opaque white), RGBA."""
    return rgba(pen.render(strokes, side, rng, **kw))


def drawings(mnist_root: str | None) -> list[tuple[str, np.ndarray]]:
    """About 40 drawings covering every path of the preprocessing: pad-like, transparent, coloured, pale,
    thin, large, odd-sized, see-through, not digits, blank; drawn-digit set and pen digits when present."""
    rng = np.random.default_rng(20)
    out = []
    if mnist_root is not None:  # the drawn-digit set: 3 test digits in its 4 pixel formats
        from mnist_sum.data import open_split
        from mnist_sum.sketches import sketch_set

        test = open_split(mnist_root, False, download=False)
        out += [(f"sketch-{s.format}-{s.canvas}", rgba(s.image)) for s in sketch_set(test, 3)]
    folder = pen.pen_folder()
    if folder is not None:
        digits = pen.load_pen(folder, "digits")
        for i, k in enumerate(rng.choice(len(digits), 14, replace=False)):
            out.append((f"pen-digit-{digits.labels[k]}", pen_drawing(digits.items[k], (400, 800)[i % 2], rng)))
        letters = pen.load_pen(folder, "letters")
        out += [(f"letter-{letters.labels[k]}", pen_drawing(letters.items[k], 400, rng))
                for k in rng.choice(len(letters), 3, replace=False)]
    seven = [np.array([[0, 0], [60, 0], [25, 100]])]
    for kind in ("spiral", "smiley", "star", "hash"):
        out.append((f"shape-{kind}", pen_drawing(nondigit_strokes(rng, kind), 400, rng)))
    for side in (700, 1000, 1300):  # working-resolution factors 3, 4 and 5 (Pillow's reduce has a path each)
        out.append((f"seven-{side}", pen_drawing(seven, side, rng)))
    out.append(("thin-pen-800", pen_drawing(seven, 800, rng, brush=0.004)))
    out.append(("thick-pen-400", pen_drawing(seven, 400, rng, brush=0.12)))
    grey = pen_drawing(seven, 400, rng)[..., 0]
    ink = 255 - grey
    zeros = np.zeros_like(grey)
    out.append(("transparent-canvas", np.dstack([zeros, zeros, zeros, ink])))  # the pad's layers: ink in alpha
    yellow = np.dstack([np.full_like(grey, 255), np.full_like(grey, 255), grey, np.full_like(grey, 255)])
    out.append(("pale-yellow-ink", yellow))  # barely differs from white in green: read from blue
    blue = np.dstack([(230 - ink * 0.8).astype(np.uint8), (225 - ink * 0.7).astype(np.uint8), np.full_like(grey, 235),
                      np.full_like(grey, 255)])
    out.append(("blue-on-cream", blue))
    holes = pen_drawing(seven, 400, rng).copy()
    holes[150:250, 150:250, 3] = 0  # a see-through patch on an opaque canvas, shown as paper
    holes[100:300:7, :, 3] = 128
    out.append(("see-through", holes))
    out.append(("odd-size-401x399", pen_drawing(seven, 401, rng)[:399]))
    out.append(("tall-300x700", rgba(np.ascontiguousarray(pen.render(seven, 700, rng)[:, 200:500]))))
    out.append(("narrow-3x400", rgba(np.where(np.arange(3)[None, :, None] == 1, 0, 255).astype(np.uint8)
                                     .repeat(400, 0).repeat(3, 2))))
    dots = np.full((400, 400, 4), 255, np.uint8)
    dots[[50, 200, 330], [60, 210, 90], :3] = 0
    out += [("blank-white", np.full((400, 400, 4), 255, np.uint8)),
            ("blank-transparent", np.zeros((400, 400, 4), np.uint8)), ("stray-dots", dots)]
    return out


def run_node(model: Path, jobs: list, folder: Path, backend: str = "wasm-simd") -> dict:
    """web/reader.js in Node on the jobs (see tests/web_reader_node.js); its JSON answer."""
    (folder / "jobs.json").write_text(json.dumps(jobs))
    subprocess.run([NODE, str(RUNNER), str(model), str(folder / "jobs.json"), str(folder / "out.json"), backend],
                   check=True, timeout=300)
    return json.loads((folder / "out.json").read_text())


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """Each drawing read by Predictor and by reader.js, with weights whose not-a-digit threshold splits them."""
    from conftest import mnist_root

    folder = tmp_path_factory.mktemp("web_reader")
    cases = drawings(mnist_root())
    scores = sorted(p.digit_score for _, a in cases if (p := Predictor().predict(a, 3)) is not None)
    # a cut in the middle half, at the widest gap between two drawings' scores: no score sits on the cut, where
    # float32 rounding in either reader could tip it
    middle = range(len(scores) // 4, 3 * len(scores) // 4)
    i = max(middle, key=lambda j: scores[j + 1] - scores[j])
    assert scores[i + 1] - scores[i] > 1e-4
    weights = save_weights(load_model(), folder / "with_threshold.safetensors",
                           not_a_digit={"threshold": (scores[i] + scores[i + 1]) / 2})
    model = folder / "model.bin"
    model.write_bytes(export(weights))
    predictor = Predictor(weights)
    assert predictor.threshold is not None
    jobs, python = [], []
    for i, (name, a) in enumerate(cases):
        (folder / f"{i}.rgba").write_bytes(a.tobytes())
        number = i % 10
        jobs.append({"rgba": str(folder / f"{i}.rgba"), "width": a.shape[1], "height": a.shape[0], "number": number})
        python.append((name, to_input28(a), predictor.predict(a, number)))
    return python, run_node(model, jobs, folder), predictor.threshold


def test_blank_agrees(compared):
    python, node, threshold = compared
    said = {name: (x is None, r is None) for (name, x, _), r in zip(python, node["results"])}
    assert all(py == js for py, js in said.values()), {k: v for k, v in said.items() if v[0] != v[1]}
    assert said["blank-white"] == said["blank-transparent"] == said["stray-dots"] == (True, True)
    assert sum(not py for py, _ in said.values()) >= 30  # most of them are drawings


def test_input28_agrees_within_a_few_grey_levels(compared):
    python, node, threshold = compared
    for (name, x, p), r in zip(python, node["results"]):
        if x is None:
            continue
        diff = np.abs(np.asarray(r["input28Float"], np.float32).reshape(28, 28) - x).max()
        assert diff <= GREY_LEVELS / 255, f"{name}: the 28x28 inputs differ by {diff * 255:.2f} grey levels"
        levels = np.abs(np.asarray(r["input28"], int).reshape(28, 28) - p.input28.astype(int)).max()
        assert levels <= GREY_LEVELS, f"{name}: input28 (uint8) differs by {levels} grey levels"


def test_same_digit_sum_verdict_and_probabilities(compared):
    python, node, threshold = compared
    assert node["threshold"] == threshold
    verdicts = []
    for (name, x, p), r in zip(python, node["results"]):
        if p is None:
            continue
        assert (r["digit"], r["sum"]) == (p.digit, p.sum), name
        np.testing.assert_allclose(r["digitProbs"], p.digit_probs, atol=1e-3, err_msg=name)
        np.testing.assert_allclose(r["sumProbs"], p.sum_probs, atol=1e-3, err_msg=name)
        assert r["digitScore"] == pytest.approx(p.digit_score, abs=1e-4), name
        assert r["isDigit"] == p.is_digit, name
        verdicts.append(p.is_digit)
    assert any(verdicts) and not all(verdicts)  # the threshold splits them, so both verdicts were compared


@pytest.mark.parametrize("backend", ["wasm-simd", "js"])
def test_predict28_gives_the_pytorch_networks_outputs(tmp_path, backend):
    """The model file holds the network: on identical 28x28 inputs, reader.js's logits are PyTorch's, with
    the WebAssembly kernel and in plain JavaScript (browsers without WebAssembly SIMD)."""
    rng = np.random.default_rng(1)
    inputs = [rng.random((28, 28), dtype=np.float32) ** 4, np.zeros((28, 28), np.float32),
              np.ones((28, 28), np.float32)]
    inputs += [x for _, a in drawings(None)[:12] if (x := to_input28(a)) is not None]
    model = tmp_path / "model.bin"
    model.write_bytes(export(SHIPPED_WEIGHTS))
    jobs = []
    for i, x in enumerate(inputs):
        (tmp_path / f"{i}.f32").write_bytes(x.astype("<f4").tobytes())
        jobs.append({"input28": str(tmp_path / f"{i}.f32"), "number": i % 10})
    node = run_node(model, jobs, tmp_path, backend)
    assert node["backend"] == backend
    assert node["threshold"] == Predictor().threshold  # the shipped handwriting model's cut
    net = load_model(SHIPPED_WEIGHTS)
    with torch.inference_mode():
        images = normalize(torch.from_numpy(np.stack(inputs))[:, None])
        digit_logits, sum_logits = net(images, torch.eye(10)[[j["number"] for j in jobs]])
    for i, r in enumerate(node["results"]):
        np.testing.assert_allclose(r["digitLogits"], digit_logits[i].numpy(), atol=1e-4, rtol=1e-5)
        np.testing.assert_allclose(r["sumLogits"], sum_logits[i].numpy(), atol=1e-4, rtol=1e-5)
        score = float(torch.softmax(digit_logits[i], 0).max())
        if abs(score - node["threshold"]) > 1e-4:  # the same verdict, wherever rounding cannot tip it
            assert r["isDigit"] is (score >= node["threshold"])


def test_reader_embeds_the_committed_kernel():
    """reader.js carries exactly web/kernel.wasm (rebuild both with `python web/build_kernel.py`)."""
    web = Path(__file__).parents[1] / "web"
    line = next(t for t in (web / "reader.js").read_text().splitlines() if "const KERNEL_WASM" in t)
    wasm = (web / "kernel.wasm").read_bytes()
    assert line.split('"')[1] == base64.b64encode(wasm).decode()
    assert len(wasm) < 4096  # Chrome compiles at most 4 KB synchronously on a page's main thread


def test_export_is_deterministic_and_holds_every_float_tensor(tmp_path):
    data = export()
    assert data == export(SHIPPED_WEIGHTS)
    header, tensors = read(data)
    assert header["format"] == FORMAT and header["threshold"] == Predictor().threshold
    assert len(data) < 5_000_000
    state = load_state_dict(SHIPPED_WEIGHTS)
    floats = {k: v for k, v in state.items() if v.is_floating_point()}
    assert set(tensors) == set(floats) and all(not v.is_floating_point() for k, v in state.items() if k not in floats)
    for name, t in floats.items():
        np.testing.assert_array_equal(tensors[name], t.numpy(), err_msg=name)
    assert main(["--out", str(tmp_path / "model.bin")]) == 0
    assert (tmp_path / "model.bin").read_bytes() == data


def test_export_refuses_bad_weights_and_reader_refuses_a_damaged_file(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    assert main(["--weights", str(bad), "--out", str(tmp_path / "x.bin")]) == 1
    assert "bad.safetensors" in capsys.readouterr().err and not (tmp_path / "x.bin").exists()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(export()[:100_000])
    with pytest.raises(ValueError, match="truncated"):
        read(truncated.read_bytes())
    (tmp_path / "jobs.json").write_text("[]")
    run = subprocess.run([NODE, str(RUNNER), str(truncated), str(tmp_path / "jobs.json"), str(tmp_path / "o.json")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "truncated" in run.stderr


def test_reader_refuses_bad_input_in_words(tmp_path):
    model = tmp_path / "model.bin"
    model.write_bytes(export())
    script = f"""
const R = require({json.dumps(str(Path(__file__).parents[1] / "web" / "reader.js"))});
const r = R.fromBuffer(require("fs").readFileSync({json.dumps(str(model))}));
const errors = [];
for (const f of [() => r.read(new Uint8Array(10), 2, 2, 3), () => r.read(new Uint8Array(16), 2, 2, 10),
                 () => r.read(new Uint8Array(16), 2, 2, 2.5), () => r.predict28(new Float32Array(5), 1),
                 () => r.predict28(new Float32Array(784).fill(NaN), 1),
                 () => r.toInput28(new Uint8Array(0), -1, 0)]) {{
  try {{ f(); errors.push(null); }} catch (e) {{ errors.push(e.constructor.name + ": " + e.message); }}
}}
console.log(JSON.stringify(errors));
"""
    run = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=60, check=True)
    errors = json.loads(run.stdout)
    assert all(e is not None and e.startswith("RangeError") for e in errors), errors
    assert "2x2x4 RGBA bytes" in errors[0] and "0-9" in errors[1] and "0-9" in errors[2] and "784" in errors[3]
    assert "NaN" in errors[4]


@pytest.mark.parametrize("backend", ["wasm-simd", "js"])
def test_explain28_gives_the_python_explanation(tmp_path, backend):
    """reader.explain28 is Predictor.explain28 in float32: the same activations after each conv layer's ReLU,
    what-if sums, adder and sum table, on drawings and random ink; both on a cold reader and right after a
    predict28 of the same input with another number (its activations then reused, not recomputed)."""
    rng = np.random.default_rng(3)
    inputs = [rng.random((28, 28), dtype=np.float32) ** 4]
    inputs += [x for _, a in drawings(None)[:14] if (x := to_input28(a)) is not None][:9]
    model = tmp_path / "model.bin"
    model.write_bytes(export(SHIPPED_WEIGHTS))
    jobs = []
    for i, x in enumerate(inputs):
        (tmp_path / f"{i}.f32").write_bytes(x.astype("<f4").tobytes())
        jobs.append({"input28": str(tmp_path / f"{i}.f32"), "number": i % 10, "explain": True})
        jobs.append({"input28": str(tmp_path / f"{i}.f32"), "number": (i + 4) % 10, "explain": True, "after": i % 10})
    node = run_node(model, jobs, tmp_path, backend)
    assert node["backend"] == backend and len(inputs) == 10
    predictor = Predictor()
    for job, r in zip(jobs, node["results"]):
        x = inputs[int(Path(job["input28"]).stem)]
        e = predictor.explain28(x, job["number"])
        what = f"{job}"
        assert r["number"] == e.number and r["digit"] == e.prediction.digit, what
        assert [(m["name"], m["channels"], m["side"]) for m in r["maps"]] == [
            (name, maps.shape[0], maps.shape[1]) for name, maps in e.feature_maps.items()], what
        for m in r["maps"]:
            np.testing.assert_allclose(np.asarray(m["data"], np.float32).reshape(e.feature_maps[m["name"]].shape),
                                       e.feature_maps[m["name"]], atol=1e-4, rtol=1e-5, err_msg=f"{what} {m['name']}")
        assert r["whatIf"] == e.what_if, what
        np.testing.assert_allclose(np.reshape(r["whatIfProbs"], (10, 19)), e.what_if_probs, atol=1e-4, err_msg=what)
        assert np.array_equal(np.reshape(r["sumTable"], (10, 10)), e.sum_table), what
        np.testing.assert_allclose(np.reshape(r["sumTableProbs"], (10, 10)), e.sum_table_probs, atol=1e-4,
                                   err_msg=what)
        for js, py in (("digitProbs", e.prediction.digit_probs), ("sumProbs", e.sum_probs),
                       ("adderProbs", e.adder_probs)):
            np.testing.assert_allclose(r[js], py, atol=1e-4, err_msg=f"{what} {js}")


def test_worker_posts_the_result_then_its_explanation(tmp_path):
    """web/worker.js (in a Node stand-in for a Web Worker): with explain: true the label's result comes first,
    then the explanation of the same drawing, its typed arrays transferred; "explain" re-explains the last
    drawing with another number; a blank drawing's explanation is null; a failed one says so in its own message."""
    model = tmp_path / "model.bin"
    model.write_bytes(export())
    drawing = rgba(Image.open(Path(__file__).parents[1] / "demo" / "examples" / "digit_4.png"))
    (tmp_path / "four.rgba").write_bytes(drawing.tobytes())
    web = Path(__file__).parents[1] / "web"
    script = f"""
const fs = require("fs"), vm = require("vm");
const posted = [];
const worker = {{performance, console, atob}};
worker.self = worker;
worker.importScripts = () => {{ worker.MnistSumReader = require({json.dumps(str(web / "reader.js"))}); }};
worker.fetch = async (url) => ({{ok: true, arrayBuffer: async () => new Uint8Array(fs.readFileSync(url)).buffer}});
worker.postMessage = (message, transfer = []) => {{
  const arrays = message.explanation ? [message.explanation.whatIfProbs, ...message.explanation.maps.map((m) => m.data)]
    : [];
  const copy = structuredClone(message, {{transfer}});  // throws on a buffer listed twice or not transferable
  posted.push({{...copy, transferred: transfer.length, detached: arrays.every((a) => a.byteLength === 0)}});
}};
vm.runInNewContext(fs.readFileSync({json.dumps(str(web / "worker.js"))}, "utf8"), worker);
const pixels = () => new Uint8ClampedArray(fs.readFileSync({json.dumps(str(tmp_path / "four.rgba"))}));
(async () => {{
  await worker.onmessage({{data: {{type: "init", readerUrl: "reader.js", modelUrl: {json.dumps(str(model))}}}}});
  const send = (data) => worker.onmessage({{data}});
  await send({{type: "read", id: 1, rgba: pixels(), width: {drawing.shape[1]}, height: {drawing.shape[0]}, number: 3,
              explain: true}});
  await send({{type: "read", id: 2, rgba: pixels(), width: {drawing.shape[1]}, height: {drawing.shape[0]}, number: 3}});
  await send({{type: "explain", id: 3, number: 8}});
  await send({{type: "predict", id: 4, number: 5, explain: true}});
  await send({{type: "explain", id: 5, number: 12}});
  await send({{type: "read", id: 6, rgba: new Uint8ClampedArray(40000).fill(255), width: 100, height: 100, number: 3,
              explain: true}});
  await send({{type: "explain", id: 7, number: 1}});
  console.log(JSON.stringify(posted.map((m) => ({{
    type: m.type, id: m.id, sum: m.result ? m.result.sum : null, ms: m.ms, error: m.error, transferred: m.transferred,
    detached: m.detached, explanation: m.explanation && {{number: m.explanation.number, whatIf: m.explanation.whatIf,
      maps: m.explanation.maps.map((x) => [x.name, x.data.length]), sumTable: Array.from(m.explanation.sumTable),
      sumProbs: Array.from(m.explanation.sumProbs), input28: Array.from(m.explanation.input28)}}}}))));
}})().catch((e) => {{ console.error(e); process.exit(1); }});
"""
    run = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    posted = json.loads(run.stdout)
    assert [(m["type"], m.get("id")) for m in posted] == [
        ("ready", None), ("result", 1), ("explanation", 1), ("result", 2), ("explanation", 3), ("result", 4),
        ("explanation", 4), ("explanation", 5), ("result", 6), ("explanation", 6), ("explanation", 7)]
    predictor = Predictor()
    for m in posted:
        if m["type"] != "explanation" or m["explanation"] is None:
            continue
        e = predictor.explain(drawing, m["explanation"]["number"])
        assert m["explanation"]["whatIf"] == e.what_if and m["explanation"]["sumTable"] == e.sum_table.ravel().tolist()
        assert m["explanation"]["maps"] == [["conv1", 64 * 24 * 24], ["conv2", 128 * 400], ["conv3", 10 * 400]]
        np.testing.assert_allclose(m["explanation"]["sumProbs"], e.sum_probs, atol=1e-4)
        assert m["explanation"]["input28"] == e.prediction.input28.ravel().tolist()
        assert m["transferred"] == 10 and m["detached"] and m["ms"] >= 0  # 7 arrays and 3 maps, moved not copied
    assert [m["explanation"]["number"] for m in posted if m["type"] == "explanation" and m["explanation"]] == [3, 8, 5]
    assert posted[1]["sum"] == 7 and posted[5]["sum"] == 9
    assert posted[7]["explanation"] is None and "0-9" in posted[7]["error"]  # a bad number: not an "error" message
    assert posted[8]["sum"] is None and posted[9]["explanation"] is None and posted[10]["explanation"] is None
    assert all(m.get("error") is None for i, m in enumerate(posted) if i != 7)
