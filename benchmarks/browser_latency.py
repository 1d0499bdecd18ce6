"""Latency a person feels: from pen-up on the pad to the digit label showing the new prediction, in Chromium.

    python benchmarks/browser_latency.py                    # loopback and a 1 s round trip, and a phone
    python benchmarks/browser_latency.py --drawings 20 --rtt 0 --json

Starts the app (`python app.py`, a process of its own). For each link (loopback, then --rtt seconds of round
trip through benchmarks/slow_link.py, half each way) it opens, in headless Chromium (--disable-gpu, as the
browser tests), the app three ways: as it is (the page reads the pad itself, web/page.js, with "How it adds"
open, as a desktop shows it: the worker also explains each reading and the page updates the view), the same
with "How it adds" folded (its <details> closed: no explanation, no view update), and told to let the server
read (`?reader=server`: the page's fallback, the canvas sent as a PNG to /predict at each pen-up). Each way
does --drawings times: clear the pad with its Clear button (#clear), wait until the page is quiet, draw a
one-stroke digit with the mouse, and time, in the page's own clock, from the pointerup to the digit label
showing the answer. Where the server reads, that is the label's first change after pen-up; where the page
reads (and has shown readings while the stroke was drawn), it is the first change after the page handed over
its first reading begun after pen-up. It also lists the HTTP requests the page starts while the stroke is
drawn and from pen-up to the label, the page's own times (per reading in its worker; per explanation in the
worker and per update of the view on the main thread: what the open view adds to each reading) and the bytes
the page loads. Between drawings it waits until the page has made no request for --quiet seconds (plus one
round trip). Then a phone (390x844, touch; "How it adds" starts folded there) with the CPU slowed --throttle
times (CDP Emulation.setCPUThrottlingRate) draws with a finger, the page reading.

No no-op server is measured any more: it was a Gradio app with the old pad (gr.Sketchpad), whose round trip
(uploading the Sketchpad's layers, then the queue) was most of what the server way cost. The pad is now the
app's own and sends its canvas as one PNG data URL in the request, and /predict itself takes a few ms
(benchmarks/latency.py), so the server way is Gradio's own round trip with this pad, within noise.

Targets: pen-up to label at most 50 ms median on the desktop, at most 100 ms on the 4x-throttled phone; the
open view adds at most 30 ms per reading (worker explanation + view update) and leaves pen-up to label unchanged.
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
from load import cpu_model, free_port, start_server, stop_server  # noqa: E402  (the benchmarks folder is not a package)
from pen_traces import CHROMIUM, CHROMIUM_ARGS, DIGIT_STROKES, draw_with_finger, draw_with_mouse  # noqa: E402
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


# The latest pen-down and pen-up, the label's changes, the page's stats, what the digit label shows now, what
# it shows for the page's latest reading, and who reads (the page: 'local').
LATEST_JS = """() => {
  const result = window.mnistSumPage?.result, texts = window.mnistSumConfig?.texts;
  const answer = result ? (result.isDigit ? String(result.digit) : texts.notADigit) : null;
  const showing = document.querySelector("#digit [data-testid=label-output-value]")?.textContent.trim();
  return [latency.down.at(-1), latency.up.at(-1), latency.label, window.mnistSumPage?.stats, showing, answer,
          window.mnistSumPage?.mode];
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
        down, up, changes, stats, showing, answer, mode = page.evaluate(LATEST_JS)
        local = stats is not None and stats["shown"] and any(start >= up for start, _ in stats["shown"])
        if mode == "local" and not local:
            # the page reads: what the label shows before its reading begun after pen-up is handed over comes
            # from a reading made while the stroke was drawn (a half-drawn 2 read as a 7), not the answer
            time.sleep(0.02)
            continue
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


# The pad's drawing square: its canvas fills it (CSS pixels).
AREA_JS = """() => { const b = document.querySelector("#sketch canvas").getBoundingClientRect();
                      return {x: b.x, y: b.y, side: b.width}; }"""
FOLD_VIEW_JS = "() => { const d = document.querySelector('#how-it-adds details'); if (d) d.open = false; }"
VIEW_OPEN_JS = "() => Boolean(document.querySelector('#how-it-adds details')?.open)"


def wait_until_ready(page, timeout_s: float = 120) -> None:
    """Wait until the pad is mounted and the page's reader loaded (or the page gone to the server)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("() => window.mnistSumPage && window.mnistSumPage.pad "
                               "&& window.mnistSumPage.mode !== 'starting'", timeout=1000 * timeout_s)
    except PlaywrightTimeout:
        state = page.evaluate("() => window.mnistSumPage ? {mode: mnistSumPage.mode, why: mnistSumPage.why, "
                              "pad: Boolean(mnistSumPage.pad)} : 'no window.mnistSumPage'")
        raise RuntimeError(f"{page.url}: the page was not ready after {timeout_s:.0f} s: {state}") from None


def measure(browser, url: str, drawings: int, quiet_s: float, phone_throttle: float | None = None,
            fold_view: bool = False) -> dict:
    """One page at url: `drawings` times clear, wait for quiet, draw one stroke; the records, the page's own
    times and the bytes it loaded. phone_throttle: a phone, drawn on with a finger, its CPU that much slower;
    fold_view: "How it adds" folded (closed) before the first drawing."""
    context = browser.new_context(**(PHONE if phone_throttle else {"viewport": VIEWPORT, "device_scale_factor": 1}))
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(url)
        wait_until_ready(page)
        if fold_view:
            page.evaluate(FOLD_VIEW_JS)
        page.evaluate(RECORDER_JS)
        wait_until_quiet(page, quiet_s)  # the page has loaded, the pad has fitted itself, the fonts are in
        loaded = page_bytes(page)
        area = page.evaluate(AREA_JS)
        finger = None
        if phone_throttle:
            finger = context.new_cdp_session(page)
            finger.send("Emulation.setCPUThrottlingRate", {"rate": phone_throttle})
        records = []
        for i in range(drawings):
            clear = page.locator("#sketch #clear")
            if clear.is_enabled():  # disabled while the pad is empty
                clear.click()
            wait_until_quiet(page, quiet_s)  # the clear's own reading (or request) is over: a person starting anew
            records.append(one_drawing(page, ONE_STROKE_DIGITS[i % len(ONE_STROKE_DIGITS)], area, finger))
        stats = page.evaluate("() => window.mnistSumPage ? window.mnistSumPage.stats : null") or {}
        return {"records": records, "mode": page.evaluate("() => window.mnistSumPage?.mode ?? 'server'"),
                "view_open": page.evaluate(VIEW_OPEN_JS), "reader_ms": stats.get("readerMs") or [],
                "explain_ms": stats.get("explainMs") or [], "view_ms": stats.get("viewMs") or [], "bytes": loaded}
    finally:
        context.close()


def stats(run: dict) -> dict:
    """Median and p95 latency (s), how many were answered, the requests of a typical drawing and while drawing,
    the page's median times (ms) per reading, per explanation and per view update, the bytes loaded."""
    records = run["records"]
    seconds = [r["seconds"] for r in records if r["seconds"] is not None]
    answered = [r for r in records if r["seconds"] is not None]
    typical = sorted(answered, key=lambda r: r["seconds"])[len(answered) // 2]["requests"] if answered else []
    median = lambda values: float(np.median(values)) if len(values) else float("nan")  # noqa: E731
    return {"n": len(records), "answered": len(seconds), "mode": run["mode"], "view_open": run["view_open"],
            "median_s": median(seconds),
            "p95_s": float(np.percentile(seconds, 95)) if seconds else float("nan"),
            "requests": {name: typical.count(name) for name in sorted(set(typical))},
            "drawing_requests_max": max((len(r["drawing_requests"]) for r in answered), default=0),
            "reader_ms": median(run["reader_ms"]), "readings": len(run["reader_ms"]),
            "explain_ms": median(run["explain_ms"]), "explain_p95_ms": percentile(run["explain_ms"], 95),
            "explanations": len(run["explain_ms"]),
            "view_ms": median(run["view_ms"]), "view_p95_ms": percentile(run["view_ms"], 95),
            "view_updates": len(run["view_ms"]), "bytes": run["bytes"]}


def percentile(values: list, q: float) -> float:
    """The q-th percentile of values, nan for none."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


# (name, what the URL adds, "How it adds" folded)
WAYS = [("page reads", "", False), ("page reads, view folded", "", True), ("server reads", "?reader=server", False)]


def run(args) -> dict:
    """Start the app, measure each way of reading over each link, then the phone; the report."""
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mnist-sum-latency-") as tmp:
        tmp = Path(tmp)
        port = free_port()
        server = start_server(ROOT / "app.py", port, tmp / "app.log", args.startup_timeout)
        try:
            results = {}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for rtt in args.rtt:
                    for name, query, fold in WAYS:
                        link = SlowLink("127.0.0.1", port, down=rtt / 2, up=rtt / 2).start() if rtt else None
                        try:
                            url = (link.url if link else f"http://127.0.0.1:{port}/") + query
                            measured = measure(browser, url, args.drawings, args.quiet + rtt, fold_view=fold)
                        finally:
                            if link:
                                link.stop()
                        results[f"{name}, rtt {rtt:g} s"] = {**stats(measured), "records": measured["records"]}
                if args.throttle:
                    measured = measure(browser, f"http://127.0.0.1:{port}/", args.drawings, args.quiet,
                                       phone_throttle=args.throttle)
                    results[f"phone {args.throttle:g}x slower, page reads"] = {**stats(measured),
                                                                               "records": measured["records"]}
                browser.close()
        finally:
            stop_server(server)
    return {"drawings": args.drawings, "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "load_before": load_before, "load_after": os.getloadavg(), "results": results}


def format_report(r: dict) -> str:
    """The report as plain text."""
    fmt = lambda x, spec: format(x, spec) if x == x else "-"  # noqa: E731  (nan: not measured)
    load = lambda triple: " ".join(f"{x:.2f}" for x in triple)  # noqa: E731
    lines = [f"pen-up to digit label, {r['drawings']} drawings each, headless Chromium --disable-gpu, "
             f"{r['cpu_count']} CPUs ({r['cpu_model']}); load average (1, 5, 15 min) {load(r['load_before'])} "
             f"before, {load(r['load_after'])} after",
             f"  {'way, link':<36} {'median s':>9} {'p95 s':>7} {'answered':>9} {'page ms':>8} {'view':>7}   "
             f"requests from pen-up to label (while drawing, at most)"]
    for name, s in r["results"].items():
        requests = ", ".join(f"{n} {path}" for path, n in s["requests"].items()) or "none"
        view = "-" if s["mode"] != "local" else ("open" if s["view_open"] else "folded")
        lines.append(f"  {name:<36} {s['median_s']:9.3f} {s['p95_s']:7.3f} {s['answered']:5d}/{s['n']:<3d}"
                     f"{fmt(s['reader_ms'], '8.0f'):>8} {view:>7}   {requests} ({s['drawing_requests_max']})")
    for rtt in sorted({name.split("rtt ")[1] for name in r["results"] if "rtt " in name}):
        page, server = r["results"][f"page reads, rtt {rtt}"], r["results"][f"server reads, rtt {rtt}"]
        folded = r["results"][f"page reads, view folded, rtt {rtt}"]
        lines.append(f"  rtt {rtt}: the page reads {server['median_s'] / page['median_s']:.1f}x faster than the "
                     f"server (median {page['median_s']:.3f} s against {server['median_s']:.3f} s)")
        added = page["explain_ms"] + page["view_ms"]
        lines.append(f"  rtt {rtt}: How it adds open vs folded: pen-up to label {page['median_s']:.3f} vs "
                     f"{folded['median_s']:.3f} s (median, {1000 * (page['median_s'] - folded['median_s']):+.0f} ms); "
                     f"the view's cost per reading: worker explanation {fmt(page['explain_ms'], '.1f')} ms "
                     f"(p95 {fmt(page['explain_p95_ms'], '.1f')}, {page['explanations']} of them) + view update "
                     f"{fmt(page['view_ms'], '.1f')} ms (p95 {fmt(page['view_p95_ms'], '.1f')}, "
                     f"{page['view_updates']}) "
                     f"= {fmt(added, '.1f')} ms (medians); folded: {folded['explanations']} explanations, "
                     f"{folded['view_updates']} view updates")
    lines.append("  page ms: the page's median time per reading in its worker (preprocessing and network); view: "
                 "How it adds as the drawings were made;\n  view update: the view's JavaScript on the main thread "
                 "(the style, layout and paint it causes come with the next frame, not counted there)")
    phone = next((s for name, s in r["results"].items() if name.startswith("phone")), None)
    desktop = r["results"].get("page reads, rtt 0 s")
    if desktop:
        lines.append(f"  targets: pen-up to label <= 50 ms median: {desktop['median_s'] * 1000:.0f} ms "
                     f"({'met' if desktop['median_s'] <= 0.05 else 'NOT MET'})"
                     + (f"; phone <= 100 ms: {phone['median_s'] * 1000:.0f} ms "
                        f"({'met' if phone['median_s'] <= 0.1 else 'NOT MET'})" if phone else "")
                     + (f"; the view adds <= 30 ms per reading: {desktop['explain_ms'] + desktop['view_ms']:.1f} ms "
                        f"({'met' if desktop['explain_ms'] + desktop['view_ms'] <= 30 else 'NOT MET'})"
                        if desktop["explain_ms"] == desktop["explain_ms"] else ""))
    first = next(iter(r["results"].values()))
    lines.append(f"  bytes the page loads: {first['bytes']['total']:,} in all, {first['bytes']['reader']:,} of them "
                 f"the reader (worker, reader script, model file)")
    wrong = [(name, x["digit"], x["shown"]) for name, s in r["results"].items()
             for x in s["records"] if x["shown"] is not None and x["shown"] != str(x["digit"])]
    lines.append(f"  drawings read wrong: {wrong or 'none'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(prog="python benchmarks/browser_latency.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--drawings", type=int, default=20, help="drawings per way and link")
    p.add_argument("--rtt", type=float, nargs="+", default=[0.0, 1.0],
                   help="round trips to measure over, seconds (0: loopback, no proxy)")
    p.add_argument("--quiet", type=float, default=2.0,
                   help="seconds without network activity (plus one round trip) that end the wait after each clear")
    p.add_argument("--throttle", type=float, default=4.0,
                   help="CPU slowdown for the phone run (0: no phone run)")
    p.add_argument("--startup-timeout", type=float, default=180, help="seconds to wait for the app to answer")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    args = p.parse_args(argv)
    if args.drawings < 1:
        sys.exit("error: --drawings must be at least 1")
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
