"""Latency a person feels: from pen-up on the pad to the digit label showing the new prediction, in Chromium.

    python benchmarks/browser_latency.py                    # loopback and a 1 s round trip
    python benchmarks/browser_latency.py --drawings 20 --rtt 0 --json

Starts two servers, each `python` in a process of its own: the app (`app.py`), and a no-op Gradio app with
the same pad, the same number input and the same event settings whose function only returns a new label
(this file, --serve-noop). For each link (loopback, then --rtt seconds of round trip through
benchmarks/slow_link.py, half each way) and each server, it opens the page in headless Chromium and does
--drawings times: clear the pad with its bin, wait until the page is quiet, draw a one-stroke digit with the
mouse, and time, in the page's own clock, from the pointerup to the first change of the digit label. It
also lists the HTTP requests the page starts in that time. Between drawings it waits until the page has
made no request for --quiet seconds (plus one round trip). The difference between the two servers is what
the app adds to Gradio's own round trip (preprocessing the pad, the network, the outputs and the picture of
what the network saw).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import free_port, start_server, stop_server  # noqa: E402  (the benchmarks folder is not a package)
from pen_traces import CHROMIUM, CHROMIUM_ARGS, DIGIT_STROKES, draw_with_mouse, drawing_area  # noqa: E402
from slow_link import SlowLink  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ONE_STROKE_DIGITS = [d for d, strokes in DIGIT_STROKES.items() if len(strokes) == 1]  # one pen-up each
VIEWPORT = {"width": 800, "height": 720}
MOVES = 12  # mouse moves per stroke: the time measured starts at pen-up, the pace does not matter

# Installed in the page (times in its own clock, ms): pen-ups; the digit label's text each time it changes;
# the requests the page made (start, end); how many fetches are in flight now.
RECORDER_JS = """() => {
  const latency = window.latency = {up: [], label: [], requests: [], in_flight: 0, last_activity: performance.now()};
  performance.setResourceTimingBufferSize(1000000);
  document.addEventListener("pointerup", () => latency.up.push(performance.now()), true);
  const digit = document.querySelector("#digit");
  new MutationObserver(() => {
    const value = digit.querySelector("[data-testid=label-output-value]");
    latency.label.push([performance.now(), value ? value.textContent.trim() : ""]);
  }).observe(digit, {subtree: true, childList: true, characterData: true});
  new PerformanceObserver((list) => list.getEntries().forEach((e) => {
    latency.requests.push([e.startTime, e.responseEnd, e.name]);
    latency.last_activity = performance.now();
  })).observe({type: "resource"});
  const fetch = window.fetch;
  window.fetch = (...args) => {
    latency.in_flight += 1;
    latency.last_activity = performance.now();
    return fetch(...args).finally(() => { latency.in_flight -= 1; latency.last_activity = performance.now(); });
  };
}"""
QUIET_JS = "() => window.latency.in_flight === 0 ? performance.now() - window.latency.last_activity : 0"


def serve_noop(port: int) -> None:
    """The no-op app: the app's pad and number, the same event settings, a function that only returns a label."""
    sys.path.insert(0, str(ROOT))
    import itertools

    import gradio as gr

    import app

    calls = itertools.count(1)
    with gr.Blocks() as demo:
        pad = app.drawing_pad()
        number = gr.Slider(0, 9, value=3, step=1, label="Number to add", elem_id="number")
        digit = gr.Label(label="Digit", elem_id="digit")
        def noop(sketch: dict, number: float) -> str | None:
            """A new label for a drawing, none for an empty pad (as the app's)."""
            drawn = sketch and sketch["composite"] is not None and sketch["composite"][..., 3].any()
            return f"call {next(calls)}" if drawn else None

        gr.on([pad.change, number.change], noop, inputs=[pad, number], outputs=digit, trigger_mode="always_last",
              show_progress="hidden")
        demo.load(None, js=app.KEEP_BRUSH_JS)
        pad.clear(None, outputs=digit, js="() => ({})")
    demo.queue(max_size=app.QUEUE_SIZE, default_concurrency_limit=app.CONCURRENCY)
    demo.launch(server_name="127.0.0.1", server_port=port, quiet=True)


def wait_until_quiet(page, quiet_s: float, timeout_s: float = 60) -> None:
    """Wait until the page has had no request in flight, nor any finished, for quiet_s seconds."""
    deadline = time.monotonic() + timeout_s
    while page.evaluate(QUIET_JS) < 1000 * quiet_s and time.monotonic() < deadline:
        time.sleep(0.1)


def measure(browser, url: str, drawings: int, quiet_s: float) -> list[dict]:
    """One page at url: `drawings` times clear, wait for quiet, draw one stroke; a record per drawing."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(url)
        page.locator("#sketch button[aria-label=Brush].highlight").wait_for()
        page.evaluate(RECORDER_JS)
        wait_until_quiet(page, quiet_s)  # the page has loaded, the pad has fitted itself
        area = drawing_area(page)
        records = []
        for i in range(drawings):
            page.locator("#sketch button[aria-label='Clear canvas']").click()
            wait_until_quiet(page, quiet_s)  # the clear's own requests are over, as when a person starts anew
            digit = ONE_STROKE_DIGITS[i % len(ONE_STROKE_DIGITS)]
            draw_with_mouse(page, DIGIT_STROKES[digit][0], MOVES, area=area)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                up, changes = page.evaluate("() => [window.latency.up.at(-1), window.latency.label]")
                after = [(t, text) for t, text in changes if t > up and text]
                if after:
                    break
                time.sleep(0.02)
            else:
                records.append({"digit": digit, "seconds": None, "shown": None, "requests": None})
                continue
            shown_at, text = after[0]
            requests = page.evaluate("() => window.latency.requests")
            records.append({"digit": digit, "seconds": (shown_at - up) / 1000, "shown": text,
                            # requests started between pen-up and the label (the picture of what the network
                            # saw comes after it), by the path they asked for
                            "requests": sorted(name.split("/gradio_api/")[-1].split("?")[0].split("=")[0]
                                               for start, end, name in requests if up <= start <= shown_at)})
        return records
    finally:
        context.close()


def stats(records: list[dict]) -> dict:
    """Median and p95 latency (s), how many were answered, the requests of a typical drawing."""
    seconds = [r["seconds"] for r in records if r["seconds"] is not None]
    answered = [r for r in records if r["seconds"] is not None]
    typical = sorted(answered, key=lambda r: r["seconds"])[len(answered) // 2]["requests"] if answered else []
    return {"n": len(records), "answered": len(seconds),
            "median_s": float(np.median(seconds)) if seconds else float("nan"),
            "p95_s": float(np.percentile(seconds, 95)) if seconds else float("nan"),
            "requests": {name: typical.count(name) for name in sorted(set(typical))}}


def run(args) -> dict:
    """Start both servers, measure each over each link; the report."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="mnist-sum-latency-") as tmp:
        tmp = Path(tmp)
        ports = {"app": free_port(), "no-op": free_port()}
        servers = {"app": start_server(ROOT / "app.py", ports["app"], tmp / "app.log", args.startup_timeout)}
        try:
            servers["no-op"] = start_server(Path(__file__).resolve(), ports["no-op"], tmp / "noop.log",
                                            args.startup_timeout, env={"MNIST_SUM_SERVE_NOOP": str(ports["no-op"])})
            results = {}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for rtt in args.rtt:
                    for name, port in ports.items():
                        link = SlowLink("127.0.0.1", port, down=rtt / 2, up=rtt / 2).start() if rtt else None
                        try:
                            url = link.url if link else f"http://127.0.0.1:{port}/"
                            records = measure(browser, url, args.drawings, args.quiet + rtt)
                        finally:
                            if link:
                                link.stop()
                        results[f"{name}, rtt {rtt:g} s"] = {**stats(records), "records": records}
                browser.close()
        finally:
            for server in servers.values():
                stop_server(server)
    return {"drawings": args.drawings, "cpu_count": os.cpu_count(), "load_average": os.getloadavg()[0],
            "results": results}


def format_report(r: dict) -> str:
    """The report as plain text."""
    lines = [f"pen-up to digit label, {r['drawings']} drawings each, headless Chromium, {r['cpu_count']} CPUs "
             f"(1-min load average {r['load_average']:.1f} at the end)",
             f"  {'server, link':<22} {'median s':>9} {'p95 s':>7} {'answered':>9}   requests from pen-up to label"]
    for name, s in r["results"].items():
        requests = ", ".join(f"{n} {path}" for path, n in s["requests"].items())
        lines.append(f"  {name:<22} {s['median_s']:9.2f} {s['p95_s']:7.2f} {s['answered']:5d}/{s['n']:<3d}"
                     f"   {requests}")
    for rtt in sorted({name.split("rtt ")[1] for name in r["results"]}):
        app, noop = r["results"][f"app, rtt {rtt}"], r["results"][f"no-op, rtt {rtt}"]
        lines.append(f"  rtt {rtt}: the app adds {app['median_s'] - noop['median_s']:+.2f} s to the median "
                     f"({app['median_s'] / noop['median_s']:.2f}x), {app['p95_s'] - noop['p95_s']:+.2f} s to the p95")
    wrong = [(name, x["digit"], x["shown"]) for name, s in r["results"].items() if name.startswith("app")
             for x in s["records"] if x["shown"] is not None and x["shown"] != str(x["digit"])]
    lines.append(f"  app drawings read wrong: {wrong or 'none'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Entry point."""
    if os.environ.get("MNIST_SUM_SERVE_NOOP"):  # started by run() as the no-op server
        serve_noop(int(os.environ["MNIST_SUM_SERVE_NOOP"]))
        return 0
    p = argparse.ArgumentParser(prog="python benchmarks/browser_latency.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--drawings", type=int, default=20, help="drawings per server and link")
    p.add_argument("--rtt", type=float, nargs="+", default=[0.0, 1.0],
                   help="round trips to measure over, seconds (0: loopback, no proxy)")
    p.add_argument("--quiet", type=float, default=2.0,
                   help="seconds without network activity (plus one round trip) that end the wait after each clear")
    p.add_argument("--startup-timeout", type=float, default=180, help="seconds to wait for a server to answer")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    args = p.parse_args(argv)
    if not Path(CHROMIUM).exists():
        sys.exit(f"error: {CHROMIUM} not found (apt-get install chromium)")
    try:
        report = run(args)
    except RuntimeError as e:
        sys.exit(f"error: {e}")
    print(json.dumps(report) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
