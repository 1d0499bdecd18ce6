"""Latency a person feels: from pen-up on the pad to the digit label showing the new prediction, in Chromium.

    python benchmarks/browser_latency.py                    # loopback and a 1 s round trip, and a phone
    python benchmarks/browser_latency.py --drawings 20 --rtt 0 --json

Starts two servers, each `python` in a process of its own: the app (`app.py`), and a no-op Gradio app with
the same pad, the same number input and the same event settings whose function only returns a new label
(this file, --serve-noop). For each link (loopback, then --rtt seconds of round trip through
benchmarks/slow_link.py, half each way) it opens, in headless Chromium, the app as it is (the page reads the
pad itself: web/page.js), the app told to let the server read (`?reader=server`, the page's fallback and
the path every stroke took before) and the no-op app, and does --drawings times: clear the pad with its bin,
wait until the page is quiet, draw a one-stroke digit with the mouse, and time, in the page's own clock,
from the pointerup to the digit label showing the answer. Where the server reads, that is the label's first
change after pen-up; where the page reads (and has shown readings while the stroke was drawn), it is the
first change after the page handed over its first reading begun after pen-up. It also lists the HTTP
requests the page starts while the stroke is drawn and from pen-up to the label, the page's own time per
reading (preprocessing and network, in its worker), and the bytes the page loads. Between drawings it waits
until the page has made no request for --quiet seconds (plus one round trip). Then a phone (390x844, touch)
with the CPU slowed --throttle times (CDP Emulation.setCPUThrottlingRate) draws with a finger, the page
reading. The no-op app shows what Gradio's own round trip costs.
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
from pen_traces import CHROMIUM, CHROMIUM_ARGS, DIGIT_STROKES, draw_with_finger, draw_with_mouse, drawing_area  # noqa: E402
from slow_link import SlowLink  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ONE_STROKE_DIGITS = [d for d, strokes in DIGIT_STROKES.items() if len(strokes) == 1]  # one pen-up each
VIEWPORT = {"width": 800, "height": 720}
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 1}
MOVES = 12  # mouse moves per stroke: the time measured starts at pen-up, the pace does not matter

# Installed in the page (times in its own clock, ms): pen-ups; the digit label's text each time it changes;
# the requests the page made (start, end); how many fetches are in flight now.
RECORDER_JS = """() => {
  const latency = window.latency = {down: [], up: [], label: [], requests: [], in_flight: 0,
                                    last_activity: performance.now()};
  performance.setResourceTimingBufferSize(1000000);
  // when the browser took the pointer event in (event.timeStamp): before any listener, the page's own included
  window.addEventListener("pointerdown", (e) => latency.down.push(e.timeStamp), true);
  window.addEventListener("pointerup", (e) => latency.up.push(e.timeStamp), true);
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


def page_bytes(page) -> dict:
    """What the page has loaded so far, bytes over the wire: all of it, and the reader's files (its worker, the
    reader script and the model file, which the worker fetches), by resource timing (the page's and, for the
    model, the size the worker reports)."""
    entries = page.evaluate("""() => [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
                               .map((e) => [e.name, e.transferSize || e.encodedBodySize || 0])""")
    stats = page.evaluate("() => window.mnistSumPage ? window.mnistSumPage.stats : null")
    reader = sum(size for name, size in entries if name.endswith(("/web/worker.js", "/web/reader.js")))
    model = (stats or {}).get("modelBytes") or 0
    return {"total": sum(size for _, size in entries) + model, "reader": reader + model}


# The latest pen-down and pen-up, the label's changes, the page's stats, what the digit label shows now, and
# what it shows for the page's latest reading.
LATEST_JS = """() => {
  const result = window.mnistSumPage?.result, texts = window.mnistSumConfig?.texts;
  const answer = result ? (result.isDigit ? String(result.digit) : texts.notADigit) : null;
  const showing = document.querySelector("#digit [data-testid=label-output-value]")?.textContent.trim();
  return [latency.down.at(-1), latency.up.at(-1), latency.label, window.mnistSumPage?.stats, showing, answer];
}"""


def label_after(changes: list, since: float):
    """The first (time, text) among the label's changes at or after since that shows a value, or None."""
    return next(((t, text) for t, text in changes if t >= since and text), None)


def one_drawing(page, digit: int, area: dict, finger=None, timeout_s: float = 60) -> dict:
    """Draw digit (mouse, or a finger through the CDP session `finger`), wait for the label; its record."""
    stroke = DIGIT_STROKES[digit][0]
    if finger is not None:
        draw_with_finger(finger, area, stroke, MOVES)
    else:
        draw_with_mouse(page, stroke, MOVES, area=area)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        down, up, changes, stats, showing, answer = page.evaluate(LATEST_JS)
        local = stats is not None and stats["shown"] and any(start >= up for start, _ in stats["shown"])
        # the page's first reading begun after pen-up, once handed over; else (the server reads) pen-up itself
        since = min(end for start, end in stats["shown"] if start >= up) if local else up
        shown = label_after(changes, since)
        if not shown and local and answer and showing == answer and changes and changes[-1][0] < since:
            # a reading made while the stroke was drawn already shows this answer, and the label, given the
            # same value again, does not change: the answer stands from the moment the page had read it
            shown = (since, showing)
        if shown:
            break
        time.sleep(0.02)
    else:
        return {"digit": digit, "seconds": None, "shown": None, "requests": None, "drawing_requests": None}
    requests = page.evaluate("() => window.latency.requests")

    def paths(lo, hi):
        """The requests started between lo and hi (page clock), by the path they asked for."""
        return sorted(name.split("/gradio_api/")[-1].split("?")[0].split("=")[0]
                      for start, end, name in requests if lo <= start <= hi)

    return {"digit": digit, "seconds": (shown[0] - up) / 1000, "shown": shown[1],
            # requests started between pen-up and the label (the picture of what the network saw comes
            # after it), and while the stroke was drawn
            "requests": paths(up, shown[0]), "drawing_requests": paths(down, up)}


def measure(browser, url: str, drawings: int, quiet_s: float, phone_throttle: float | None = None) -> dict:
    """One page at url: `drawings` times clear, wait for quiet, draw one stroke; the records, the page's time
    per reading and the bytes it loaded. phone_throttle: a phone, drawn on with a finger, its CPU that much slower."""
    context = browser.new_context(**(PHONE if phone_throttle else {"viewport": VIEWPORT}))
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(url)
        page.locator("#sketch button[aria-label=Brush].highlight").wait_for()
        page.evaluate(RECORDER_JS)
        wait_until_quiet(page, quiet_s)  # the page has loaded, the pad has fitted itself, the reader is ready
        loaded = page_bytes(page)
        area = drawing_area(page)
        finger = None
        if phone_throttle:
            finger = context.new_cdp_session(page)
            finger.send("Emulation.setCPUThrottlingRate", {"rate": phone_throttle})
        records = []
        for i in range(drawings):
            page.locator("#sketch button[aria-label='Clear canvas']").click()
            wait_until_quiet(page, quiet_s)  # the clear's own requests are over, as when a person starts anew
            records.append(one_drawing(page, ONE_STROKE_DIGITS[i % len(ONE_STROKE_DIGITS)], area, finger))
        stats = page.evaluate("() => window.mnistSumPage ? window.mnistSumPage.stats : null")
        return {"records": records, "mode": page.evaluate("() => window.mnistSumPage?.mode ?? 'server'"),
                "reader_ms": (stats or {}).get("readerMs") or [], "paint_ms": (stats or {}).get("paintMs") or [],
                "extract_ms": (stats or {}).get("extractMs") or [], "checks": (stats or {}).get("checks") or [],
                "bytes": loaded}
    finally:
        context.close()


def stats(run: dict) -> dict:
    """Median and p95 latency (s), how many were answered, the requests of a typical drawing and while drawing,
    the page's median time per reading (ms), the bytes loaded."""
    records = run["records"]
    seconds = [r["seconds"] for r in records if r["seconds"] is not None]
    answered = [r for r in records if r["seconds"] is not None]
    typical = sorted(answered, key=lambda r: r["seconds"])[len(answered) // 2]["requests"] if answered else []
    median = lambda values: float(np.median(values)) if len(values) else float("nan")  # noqa: E731
    return {"n": len(records), "answered": len(seconds), "mode": run["mode"],
            "median_s": median(seconds),
            "p95_s": float(np.percentile(seconds, 95)) if seconds else float("nan"),
            "requests": {name: typical.count(name) for name in sorted(set(typical))},
            "drawing_requests_max": max((len(r["drawing_requests"]) for r in answered), default=0),
            "reader_ms": median(run["reader_ms"]), "paint_ms": median(run["paint_ms"]),
            "extract_ms": median(run["extract_ms"]), "checks": run["checks"], "bytes": run["bytes"]}


def run(args) -> dict:
    """Start both servers, measure each way of reading over each link, then the phone; the report."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="mnist-sum-latency-") as tmp:
        tmp = Path(tmp)
        ports = {"app": free_port(), "no-op": free_port()}
        servers = {"app": start_server(ROOT / "app.py", ports["app"], tmp / "app.log", args.startup_timeout)}
        # (name, server, what the URL adds)
        ways = [("page reads", "app", ""), ("server reads", "app", "?reader=server"), ("no-op", "no-op", "")]
        try:
            servers["no-op"] = start_server(Path(__file__).resolve(), ports["no-op"], tmp / "noop.log",
                                            args.startup_timeout, env={"MNIST_SUM_SERVE_NOOP": str(ports["no-op"])})
            results = {}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for rtt in args.rtt:
                    for name, server, query in ways:
                        link = SlowLink("127.0.0.1", ports[server], down=rtt / 2, up=rtt / 2).start() if rtt else None
                        try:
                            url = (link.url if link else f"http://127.0.0.1:{ports[server]}/") + query
                            measured = measure(browser, url, args.drawings, args.quiet + rtt)
                        finally:
                            if link:
                                link.stop()
                        results[f"{name}, rtt {rtt:g} s"] = {**stats(measured), "records": measured["records"]}
                if args.throttle:
                    measured = measure(browser, f"http://127.0.0.1:{ports['app']}/", args.drawings, args.quiet,
                                       phone_throttle=args.throttle)
                    results[f"phone {args.throttle:g}x slower, page reads"] = {**stats(measured),
                                                                               "records": measured["records"]}
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
             f"  {'way, link':<30} {'median s':>9} {'p95 s':>7} {'answered':>9} {'page ms':>8}   requests from "
             f"pen-up to label (while drawing, at most)"]
    for name, s in r["results"].items():
        requests = ", ".join(f"{n} {path}" for path, n in s["requests"].items()) or "none"
        page_ms = f"{s['reader_ms']:8.0f}" if s["reader_ms"] == s["reader_ms"] else f"{'-':>8}"
        lines.append(f"  {name:<30} {s['median_s']:9.3f} {s['p95_s']:7.3f} {s['answered']:5d}/{s['n']:<3d}"
                     f"{page_ms}   {requests} ({s['drawing_requests_max']})")
    for rtt in sorted({name.split("rtt ")[1] for name in r["results"] if "rtt " in name}):
        page, server = r["results"][f"page reads, rtt {rtt}"], r["results"][f"server reads, rtt {rtt}"]
        lines.append(f"  rtt {rtt}: the page reads {server['median_s'] / page['median_s']:.1f}x faster than the "
                     f"server (median {page['median_s']:.3f} s against {server['median_s']:.3f} s)")
    first = next(iter(r["results"].values()))
    checks = [c for s in r["results"].values() for c in s["checks"]]
    lines.append(f"  page ms: the page's median time per reading in its worker (preprocessing and network); the "
                 f"pad painted on the CPU in {first['paint_ms']:.1f} ms, read back from the GPU in "
                 f"{first['extract_ms']:.0f} ms (medians)")
    lines.append(f"  strokes painted, then read back from the GPU to check: {len(checks)}, their 28x28 inputs "
                 f"differing by at most {max(checks, default=0)} grey levels")
    lines.append(f"  bytes the page loads: {first['bytes']['total']:,} in all, {first['bytes']['reader']:,} of them "
                 f"the reader (worker, reader script, model file)")
    wrong = [(name, x["digit"], x["shown"]) for name, s in r["results"].items() if "no-op" not in name
             for x in s["records"] if x["shown"] is not None and x["shown"] != str(x["digit"])]
    lines.append(f"  drawings read wrong: {wrong or 'none'}")
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
    p.add_argument("--throttle", type=float, default=4.0,
                   help="CPU slowdown for the phone run (0: no phone run)")
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
