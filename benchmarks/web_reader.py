"""The in-browser reader (web/reader.js) against the Python Predictor on the same drawings, and what the page loads.

    python benchmarks/web_reader.py                 # Node: WebAssembly kernel and plain JavaScript
    python benchmarks/web_reader.py --browser       # also headless Chromium, plain and at 4x CPU throttling

node: reader.read(rgba, w, h, number) (preprocessing + network) and reader.predict28 (the network alone), with
conv 2 in WebAssembly SIMD ("wasm-simd") and all in plain JavaScript ("js"), against Predictor.predict and
Predictor.predict28 in PyTorch (1 thread) on the same drawings: black strokes on opaque white 400 px (the app's
pad) and 800 px canvases (benchmarks/drawings.py). Median and p95 in ms, and the ratio of the medians. Also
reader.explain28 ("How it adds"): right after predict28 on the same input, as the worker runs it (the activations
reused), and cold (the image trunk run again).
browser: reader.read in the page's main thread of headless Chromium (/usr/bin/chromium), without and with
Chrome's CPU throttling (CDP Emulation.setCPUThrottlingRate 4, a phone); the issue asks for the reading within
100 ms of pen-up, and within 300 ms at 4x.
sizes: the bytes the page loads for reading: web/reader.js (the kernel embedded) and the model file, raw and gzipped.
"""

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
from drawings import draw_digit_array  # noqa: E402
from mnist_sum import Predictor  # noqa: E402
from mnist_sum.cli import HelpFormatter  # noqa: E402
from mnist_sum.preprocess import to_input28  # noqa: E402
from mnist_sum.webmodel import export  # noqa: E402

PAGE = """<!doctype html><script src="reader.js"></script><script>
async function bench(jobs, rounds) {
  const reader = MnistSumReader.fromBuffer(await (await fetch("model.bin")).arrayBuffer());
  const drawings = [];
  for (const j of jobs) drawings.push({...j, pixels: new Uint8Array(await (await fetch(j.rgba)).arrayBuffer())});
  for (let i = 0; i < 3; i++) drawings.forEach((d) => reader.read(d.pixels, d.width, d.height, d.number));
  const read = [];
  for (let r = 0; r < rounds; r++) drawings.forEach((d) => {
    const t = performance.now(); reader.read(d.pixels, d.width, d.height, d.number); read.push(performance.now() - t);
  });
  return {backend: reader.backend, read};
}
</script>"""


def summary(ms: list[float]) -> dict:
    """Median and p95 of timings in ms."""
    return {"median": statistics.median(ms), "p95": float(np.percentile(ms, 95)), "n": len(ms)}


def drawings(n: int) -> list[tuple[np.ndarray, int]]:
    """n drawings (400 and 800 px alternately, digits 0-9) with a number each."""
    return [(draw_digit_array(i % 10, size=(400, 800)[i % 2], width=(12, 25)[i % 2], seed=i), (3 * i) % 10)
            for i in range(n)]


def python_timings(cases, rounds: int) -> dict:
    """Predictor.predict and .predict28 in PyTorch on one thread, ms per call."""
    torch.set_num_threads(1)
    predictor = Predictor()
    inputs = [to_input28(a) for a, _ in cases]
    for a, number in cases[:3]:
        predictor.predict(a, number)
    read, forward = [], []
    for _ in range(rounds):
        for (a, number), x in zip(cases, inputs):
            t = time.perf_counter()
            predictor.predict(a, number)
            read.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            predictor.predict28(x, number)
            forward.append(1000 * (time.perf_counter() - t))
    return {"read": summary(read), "forward": summary(forward)}


def write_jobs(cases, folder: Path) -> list[dict]:
    """The drawings as raw RGBA files, and the job list both runners read."""
    jobs = []
    for i, (a, number) in enumerate(cases):
        (folder / f"{i}.rgba").write_bytes(np.ascontiguousarray(a).tobytes())
        jobs.append({"rgba": str(folder / f"{i}.rgba"), "width": a.shape[1], "height": a.shape[0], "number": number})
    (folder / "jobs.json").write_text(json.dumps(jobs))
    return jobs


def browser_timings(folder: Path, jobs: list[dict], rounds: int, rates=(1, 4)) -> dict:
    """reader.read in headless Chromium's main thread at each CPU throttling rate, ms per call."""
    from playwright.sync_api import sync_playwright

    files = {"index.html": PAGE.encode(), "reader.js": (ROOT / "web" / "reader.js").read_bytes(),
             "model.bin": (folder / "model.bin").read_bytes()}
    files |= {f"{i}.rgba": Path(j["rgba"]).read_bytes() for i, j in enumerate(jobs)}
    page_jobs = [{**j, "rgba": f"{i}.rgba"} for i, j in enumerate(jobs)]
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.route("http://reader.test/**", lambda route: route.fulfill(
                body=files[route.request.url.rsplit("/", 1)[1] or "index.html"],
                content_type="application/javascript" if route.request.url.endswith(".js") else None))
            page.goto("http://reader.test/index.html")
            cdp = page.context.new_cdp_session(page)
            for rate in rates:
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
                result = page.evaluate("([jobs, rounds]) => bench(jobs, rounds)", [page_jobs, rounds])
                out[f"{result['backend']} x{rate}"] = summary(result["read"])
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
        finally:
            browser.close()
    return out


def sizes(model: bytes) -> dict:
    """Bytes the page loads to read drawings, raw and gzipped."""
    reader = (ROOT / "web" / "reader.js").read_bytes()
    kernel = (ROOT / "web" / "kernel.wasm").read_bytes()
    return {"reader.js (kernel embedded)": (len(reader), len(gzip.compress(reader, 9))),
            "kernel.wasm (inside reader.js)": (len(kernel), len(gzip.compress(kernel, 9))),
            "model file": (len(model), len(gzip.compress(model, 9)))}


def main(argv=None) -> int:
    """Command line: run the benchmarks and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--drawings", type=int, default=10, help="drawings, 400 and 800 px alternately")
    parser.add_argument("--rounds", type=int, default=5, help="times each drawing is read per runner")
    parser.add_argument("--browser", action="store_true",
                        help="also time headless Chromium, plain and at 4x CPU throttling")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    cases = drawings(args.drawings)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = export()
        (folder / "model.bin").write_bytes(model)
        jobs = write_jobs(cases, folder)
        run = subprocess.run(["node", str(Path(__file__).with_name("web_reader_node.js")), str(folder / "model.bin"),
                              str(folder / "jobs.json"), str(args.rounds)], capture_output=True, text=True, check=True)
        node = {backend: {k: summary(v) for k, v in t.items()} for backend, t in json.loads(run.stdout).items()}
        browser = browser_timings(folder, jobs, args.rounds) if args.browser else {}
    torch_ms = python_timings(cases, args.rounds)
    report = {"node": node, "pytorch": torch_ms, "browser": browser, "sizes": sizes(model)}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'runner':<28}{'read median':>12}{'p95':>8}{'forward median':>16}{'p95':>8}   (ms; ratio to PyTorch)")
    rows = [("PyTorch Predictor", torch_ms)] + [(f"node {b}", t) for b, t in node.items()]
    for name, t in rows:
        ratio = (f"   x{t['read']['median'] / torch_ms['read']['median']:.2f} read, "
                 f"x{t['forward']['median'] / torch_ms['forward']['median']:.2f} forward")
        print(f"{name:<28}{t['read']['median']:>12.1f}{t['read']['p95']:>8.1f}{t['forward']['median']:>16.1f}"
              f"{t['forward']['p95']:>8.1f}{ratio if name.startswith('node') else ''}")
    for name, t in node.items():
        print(f"{'node ' + name + ' explain28':<28}{t['explain']['median']:>12.1f}{t['explain']['p95']:>8.1f}"
              f"   after predict28 (the worker's path); cold, trunk again: {t['explainCold']['median']:.1f} "
              f"(p95 {t['explainCold']['p95']:.1f})")
    for name, t in browser.items():
        print(f"{'chromium ' + name:<28}{t['median']:>12.1f}{t['p95']:>8.1f}"
              f"   x{t['median'] / torch_ms['read']['median']:.2f} read")
    for name, (raw, packed) in report["sizes"].items():
        print(f"{name:<36}{raw:>10,} bytes   {packed:>10,} gzipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
