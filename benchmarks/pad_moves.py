"""What one pointer move costs while drawing, in headless Chromium rendering in software (--disable-gpu): the
app's pad (pad.py's drawing_pad, a gr.HTML holding a 2D canvas: web/pad.js) against Gradio's own gr.Sketchpad
(PixiJS, WebGL), in the same run.

    python benchmarks/pad_moves.py                       # 5 strokes on each pad, a report
    python benchmarks/pad_moves.py --strokes 2 --json

Starts two servers, each `python` in a process of its own: the app (`app.py`), and a minimal Gradio app that
holds just a gr.Sketchpad set up as the app's pad was before it (400x400 canvas, black brush of size 12, no
layers, no transforms; this file, run with PAD_MOVES_SERVE_SKETCHPAD set; no listener, or with
--sketchpad-listener a Python change listener that does nothing, as the app's old pad sent each stroke to the
server). Chromium runs headless with --disable-gpu, so every canvas is rendered on the CPU, as on a machine
without a usable GPU. First a bare page (a 440 px canvas, no listener at all: what Chromium's input and frames
and Playwright cost alone, the floor under both pads; --no-bare skips it), then each pad (the app's twice: as
a desktop shows it, "How it adds" open, then with it folded): it opens the page (800x720 viewport, device
pixel ratio 1), waits until it is ready (the app: the pad is mounted and window.mnistSumPage.mode is no longer
'starting'; the Sketchpad: its brush is selected, as the app's old pad kept it), installs a
PerformanceObserver for 'longtask' entries (buffered) and pointer-event listeners, then --strokes times:
clears the pad (the app: #clear; the Sketchpad: its bin), waits --settle seconds, and draws one stroke (a 3)
with Playwright's mouse: button down, --moves moves back to back (each mouse.move returns once Chromium has
dispatched it), button up. Per stroke it measures

  page s   in the page's clock: from the first pointermove (its event.timeStamp) to the end of the first frame
           after the pointerup (a requestAnimationFrame callback, then a task after it: every listener has
           run and the frame with the stroke's end is rendered);
  wall s   around the Playwright calls, from the first mouse.move to mouse.up returning;
  long tasks  main-thread tasks over 50 ms (PerformanceObserver 'longtask') overlapping the stroke, from the
           pointerdown to the end of that frame: how many, and the longest; and the longest in the --settle
           seconds after pen-up (the app reads the drawing then and updates its outputs and "How it adds").

The app's page reads the pad every 100 ms while a stroke is drawn and updates its outputs and, while "How it
adds" is open, the view: that work is part of what a move costs here (the folded row shows it without the view).
The report gives, per pad, medians over the strokes (seconds per stroke, ms per move, long tasks), and the
ratio Sketchpad / app's pad; also the CPU model and the 1, 5 and 15 min load averages before and after (other
work on the machine slows both pads: compare them within a run). Targets (the pad's issue): the app's pad
draws 20 moves in at most 0.5 s, with no long task over 50 ms while drawing.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import cpu_model, free_port, start_server, stop_server  # noqa: E402  (the benchmarks folder is not a package)
from pen_traces import CHROMIUM, DIGIT_STROKES, trace  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Software rendering: no GPU process rasterising or compositing on a GPU; WebGL (the Sketchpad's PixiJS) and
# 2D canvases alike drawn on the CPU.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 800, "height": 720}
CANVAS = 400  # both pads' side in canvas units (app.CANVAS)
BRUSH = 12  # the Sketchpad's brush size, as the app's Sketchpad had it (app.BRUSH_RADIUS)
STROKE = DIGIT_STROKES[3][0]  # one long curved stroke, the same every time
LONG_TASK_MS = 50  # the Long Tasks API reports tasks over 50 ms

# Installed in the page: long tasks (buffered, so those before it too), and in the page's clock: pen-downs,
# pointer moves with a button pressed, pen-ups, when each pen-up's task was over, and when the first frame
# after it was rendered.
RECORDER_JS = """() => {
  const r = window.padMoves = {longTasks: [], down: [], moves: [], up: [], handled: [], frame: []};
  new PerformanceObserver((list) => list.getEntries().forEach((e) => r.longTasks.push([e.startTime, e.duration])))
    .observe({type: "longtask", buffered: true});
  const after = (record) => {  // a task after the current one (a message, not throttled as timers are)
    const channel = new MessageChannel();
    channel.port1.onmessage = () => record.push(performance.now());
    channel.port2.postMessage(0);
  };
  // capture listeners on window: they run before the pads' own, whatever those listen on
  window.addEventListener("pointerdown", (e) => r.down.push(e.timeStamp), true);
  window.addEventListener("pointermove", (e) => { if (e.buttons) r.moves.push(e.timeStamp); }, true);
  window.addEventListener("pointerup", (e) => {
    r.up.push(e.timeStamp);
    after(r.handled);  // every listener of this pointerup has run
    requestAnimationFrame(() => after(r.frame));  // and the frame after it is rendered
  }, true);
}"""
STROKE_JS = "() => { const r = window.padMoves; return {down: r.down.at(-1), moves: r.moves.slice(), " \
            "up: r.up.at(-1), handled: r.handled.at(-1), frame: r.frame.at(-1), longTasks: r.longTasks.slice()}; }"
RESET_JS = "() => { window.padMoves.moves.length = 0; }"


def serve_sketchpad(port: int, listener: bool) -> None:
    """A Gradio app holding just a gr.Sketchpad, set up as the app's pad was before it was the app's own."""
    import gradio as gr

    with gr.Blocks() as demo:
        pad = gr.Sketchpad(value=None, label="Draw a digit 0-9 here", elem_id="sketch", type="numpy",
                           image_mode="RGBA", canvas_size=(CANVAS, CANVAS), fixed_canvas=True,
                           brush=gr.Brush(default_size=BRUSH, colors=["#000000"], color_mode="fixed"),
                           eraser=gr.Eraser(default_size=2 * BRUSH), layers=False, transforms=(), sources=(),
                           buttons=["download"], height=CANVAS + 110)
        if listener:
            pad.change(lambda sketch: None, inputs=pad, outputs=None, trigger_mode="always_last",
                       show_progress="hidden")
    demo.launch(server_name="127.0.0.1", server_port=port, quiet=True)


def app_area(page) -> dict:
    """The app's pad (and the bare page): its canvas fills the drawing square (x, y top left and side, CSS px)."""
    box = page.locator("#sketch canvas, body > canvas").first.bounding_box()
    return {"x": box["x"], "y": box["y"], "side": min(box["width"], box["height"])}


def sketchpad_area(page) -> dict:
    """The Sketchpad's drawable square: its image, centred in its canvas element at the editor's zoom."""
    import re

    box = page.locator("#sketch canvas").first.bounding_box()
    zoom = int(page.locator("#sketch").get_by_text(re.compile(r"^\d+%$")).inner_text().rstrip("%")) / 100
    side = CANVAS * zoom
    return {"x": box["x"] + (box["width"] - side) / 2, "y": box["y"] + (box["height"] - side) / 2, "side": side}


def clear_app(page) -> None:
    """The app's pad's Clear (disabled while the pad is empty)."""
    button = page.locator("#sketch #clear")
    if button.is_enabled():
        button.click()


def clear_sketchpad(page) -> None:
    """The Sketchpad's bin, then its brush again (as the app's pad kept it)."""
    button = page.locator("#sketch button[aria-label='Clear canvas']")
    if button.is_enabled():
        button.click()
    select_brush(page)


def open_app(page) -> None:
    """Wait until the app's page has its reader (or has gone to the server) and its pad is mounted."""
    page.wait_for_function("() => window.mnistSumPage && window.mnistSumPage.mode !== 'starting' "
                           "&& window.mnistSumPage.pad")
    page.locator("#sketch canvas").first.wait_for()


def open_sketchpad(page) -> None:
    """Wait until the Sketchpad shows its canvas, then select its brush (it opens with no tool chosen; the app's
    Sketchpad selected it on load)."""
    page.locator("#sketch canvas").first.wait_for()
    select_brush(page)


def select_brush(page) -> None:
    """The Sketchpad's brush, selected (it stays selected once it is)."""
    brush = page.locator("#sketch button[aria-label=Brush]")
    if "highlight" not in (brush.get_attribute("class") or "").split():
        brush.click()
    page.locator("#sketch button[aria-label=Brush].highlight").wait_for()


# The harness's own floor: a page with a canvas and no listener at all (Chromium's input and frames, CDP).
BARE_HTML = ('<!doctype html><body style="margin:0"><canvas width="440" height="440" '
             'style="display:block;margin:40px;width:440px;height:440px;border:1px solid #ccc"></canvas></body>')
PADS = {  # kind -> how to wait for it, clear it, and find its drawing square
    "bare": {"open": lambda page: None, "clear": lambda page: None, "area": app_area},
    "app": {"open": open_app, "clear": clear_app, "area": app_area},
    "app-folded": {"open": open_app, "clear": clear_app, "area": app_area},
    "sketchpad": {"open": open_sketchpad, "clear": clear_sketchpad, "area": sketchpad_area},
}
NAMES = {"bare": "bare canvas, no listener", "app": "app's pad (2D canvas)", "app-folded": "app's pad, view folded",
         "sketchpad": "gr.Sketchpad (WebGL)"}


def one_stroke(page, area: dict, moves: int, settle_s: float) -> dict:
    """Draw STROKE with the mouse (down, `moves` moves, up); its times and the long tasks during and after it."""
    points = [(area["x"] + x * area["side"], area["y"] + y * area["side"]) for x, y in trace(STROKE, moves)]
    page.evaluate(RESET_JS)
    page.mouse.move(*points[0])
    page.mouse.down()
    started = time.perf_counter()
    for point in points[1:]:
        page.mouse.move(*point)
    page.mouse.up()
    wall = time.perf_counter() - started
    time.sleep(settle_s)  # long tasks are reported after they end; the pad reads and shows its answer meanwhile
    page.wait_for_function("() => { const r = window.padMoves; return r.frame.at(-1) >= r.up.at(-1); }")
    r = page.evaluate(STROKE_JS)
    start, end = r["moves"][0] if r["moves"] else r["down"], r["frame"]
    overlapping = lambda lo, hi: [d for t, d in r["longTasks"] if t < hi and t + d > lo]  # noqa: E731
    during = overlapping(r["down"], end)
    after = overlapping(end, end + 1000 * settle_s)
    return {"page_s": (end - start) / 1000, "handled_s": (r["handled"] - start) / 1000, "wall_s": wall,
            "moves_seen": len(r["moves"]), "long_tasks": len(during), "longest_ms": max(during, default=0.0),
            "after_up_long_tasks": len(after), "after_up_longest_ms": max(after, default=0.0)}


def measure(browser, url: str, kind: str, strokes: int, moves: int, settle_s: float) -> dict:
    """Open one pad's page (kind: a key of PADS), `strokes` times clear it, wait, and draw; a record per stroke."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(180_000)
    try:
        load = os.getloadavg()
        if kind == "bare":
            page.set_content(BARE_HTML)
        else:
            page.goto(url)
        PADS[kind]["open"](page)
        if kind == "app-folded":  # "How it adds" closed: the page then neither explains nor updates the view
            page.evaluate("() => { const d = document.querySelector('#how-it-adds details'); if (d) d.open = false; }")
        page.evaluate(RECORDER_JS)
        time.sleep(settle_s)
        records = []
        for _ in range(strokes):
            PADS[kind]["clear"](page)
            time.sleep(settle_s)
            area = PADS[kind]["area"](page)
            records.append(one_stroke(page, area, moves, settle_s))
        extra = {}
        if kind.startswith("app"):
            extra = page.evaluate("""() => ({mode: window.mnistSumPage.mode,
              viewOpen: Boolean(document.querySelector('#how-it-adds details')?.open),
              canvas: [window.mnistSumPage.pad.canvas.width, window.mnistSumPage.pad.canvas.height]})""")
        elif kind == "sketchpad":
            extra = {"zoom": sketchpad_area(page)["side"] / CANVAS}
        return {"records": records, "area": area, "load_before": load, "load_after": os.getloadavg(), **extra}
    finally:
        context.close()


def summary(run: dict, moves: int) -> dict:
    """Medians over the strokes, and the worst long task."""
    records = run["records"]
    med = lambda key: statistics.median(r[key] for r in records)  # noqa: E731
    return {"strokes": len(records), "page_s": med("page_s"), "handled_s": med("handled_s"), "wall_s": med("wall_s"),
            "page_ms_per_move": 1000 * med("page_s") / moves, "wall_ms_per_move": 1000 * med("wall_s") / moves,
            "moves_seen": med("moves_seen"), "long_tasks": med("long_tasks"),
            "longest_ms": max(r["longest_ms"] for r in records),
            "after_up_longest_ms": max(r["after_up_longest_ms"] for r in records)}


def run(args) -> dict:
    """Start both servers, measure each pad in one browser; the report."""
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mnist-sum-pad-moves-") as tmp:
        tmp = Path(tmp)
        ports = {"app": free_port(), "sketchpad": free_port()}
        servers = {}
        try:
            servers["app"] = start_server(ROOT / "app.py", ports["app"], tmp / "app.log", args.startup_timeout)
            env = {"PAD_MOVES_SERVE_SKETCHPAD": str(ports["sketchpad"]),
                   "PAD_MOVES_LISTENER": "1" if args.sketchpad_listener else ""}
            servers["sketchpad"] = start_server(Path(__file__).resolve(), ports["sketchpad"], tmp / "sketchpad.log",
                                                args.startup_timeout, env=env)
            runs = {}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    for kind in (["bare"] if args.bare else []) + ["app", "app-folded", "sketchpad"]:
                        server = "app" if kind.startswith("app") else kind
                        url = f"http://127.0.0.1:{ports[server]}/" if server in ports else None
                        runs[kind] = measure(browser, url, kind, args.strokes, args.moves, args.settle)
                finally:
                    browser.close()
        finally:
            for server in servers.values():
                stop_server(server)
    pads = {kind: {**summary(r, args.moves), **{k: v for k, v in r.items() if k != "records"},
                   "records": r["records"]} for kind, r in runs.items()}
    return {"moves": args.moves, "strokes": args.strokes, "chromium_args": CHROMIUM_ARGS, "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(),
            "sketchpad_listener": args.sketchpad_listener, "pads": pads,
            "ratio_page": pads["sketchpad"]["page_s"] / pads["app"]["page_s"],
            "ratio_wall": pads["sketchpad"]["wall_s"] / pads["app"]["wall_s"]}


def format_report(r: dict) -> str:
    """The report as plain text."""
    load = lambda triple: " ".join(f"{x:.2f}" for x in triple)  # noqa: E731
    names = NAMES
    lines = [f"{r['moves']} pointer moves per stroke, {r['strokes']} strokes per pad, headless Chromium "
             f"{' '.join(a for a in r['chromium_args'] if a in ('--disable-gpu',))}, viewport 800x720, DPR 1",
             f"  CPU: {r['cpu_model']}, {r['cpu_count']} CPUs; load average (1, 5, 15 min) {load(r['load_before'])} "
             f"before, {load(r['load_after'])} after",
             f"  {'pad':<24} {'page s':>7} {'ms/move':>8} {'wall s':>7} {'ms/move':>8} {'moves':>6} "
             f"{'long tasks':>10} {'longest ms':>10} {'after up ms':>11}"]
    for kind, s in r["pads"].items():
        lines.append(f"  {names[kind]:<24} {s['page_s']:7.3f} {s['page_ms_per_move']:8.1f} {s['wall_s']:7.3f} "
                     f"{s['wall_ms_per_move']:8.1f} {s['moves_seen']:6.0f} {s['long_tasks']:10.1f} "
                     f"{s['longest_ms']:10.0f} {s['after_up_longest_ms']:11.0f}")
    lines.append(f"  Sketchpad / app's pad: {r['ratio_page']:.1f}x (page clock), {r['ratio_wall']:.1f}x (wall)")
    if "bare" in r["pads"]:
        floor = r["pads"]["bare"]["page_ms_per_move"]
        lines.append(f"  over the bare page's {floor:.1f} ms per move (Chromium's input and frames, Playwright): app's "
                     f"pad +{r['pads']['app']['page_ms_per_move'] - floor:.1f} ms, Sketchpad "
                     f"+{r['pads']['sketchpad']['page_ms_per_move'] - floor:.1f} ms per move")
    app, folded, sketch = r["pads"]["app"], r["pads"]["app-folded"], r["pads"]["sketchpad"]
    lines.append(f"  app's pad: canvas {app.get('canvas')}, drawn on {app['area']['side']:.0f} CSS px, reader "
                 f"{app.get('mode')}, How it adds {'open' if app.get('viewOpen') else 'folded'} (then "
                 f"{'open' if folded.get('viewOpen') else 'folded'}); Sketchpad at zoom "
                 f"{sketch.get('zoom', 0):.0%}, {'a no-op Python' if r['sketchpad_listener'] else 'no'} change "
                 f"listener")
    for kind, s in r["pads"].items():
        lines.append(f"  {names[kind]}: page s per stroke " + ", ".join(f"{x['page_s']:.3f}" for x in s["records"])
                     + "; long tasks (count/longest ms) " + ", ".join(f"{x['long_tasks']}/{x['longest_ms']:.0f}"
                                                                        for x in s["records"])
                     + f"; load average {s['load_before'][0]:.2f} -> {s['load_after'][0]:.2f}")
    ok_time = app["page_s"] <= 0.5
    ok_tasks = app["longest_ms"] <= LONG_TASK_MS and all(x["long_tasks"] == 0 for x in app["records"])
    lines.append(f"  targets, app's pad: {r['moves']} moves in <= 0.5 s: {'met' if ok_time else 'NOT MET'} "
                 f"({app['page_s']:.3f} s); no long task over {LONG_TASK_MS} ms while drawing: "
                 f"{'met' if ok_tasks else 'NOT MET'} (longest {app['longest_ms']:.0f} ms)")
    lines.append("  page s: first pointermove to the first frame rendered after the pointerup, in the page's clock;\n"
                 "  wall s: first mouse.move to mouse.up returning; moves: pointermoves the page received (median);\n"
                 "  long tasks: over 50 ms, pointerdown to that frame (median count, longest of all strokes);\n"
                 "  after up ms: the longest task in the settle seconds after it")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Entry point."""
    if os.environ.get("PAD_MOVES_SERVE_SKETCHPAD"):  # started by run() as the Sketchpad's server
        serve_sketchpad(int(os.environ["PAD_MOVES_SERVE_SKETCHPAD"]), bool(os.environ.get("PAD_MOVES_LISTENER")))
        return 0
    p = argparse.ArgumentParser(prog="python benchmarks/pad_moves.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strokes", type=int, default=5, help="strokes drawn on each pad (the report gives medians)")
    p.add_argument("--moves", type=int, default=20, help="pointer moves per stroke")
    p.add_argument("--settle", type=float, default=1.5,
                   help="seconds waited after each clear and after each stroke (long tasks then are reported apart)")
    p.add_argument("--sketchpad-listener", action="store_true",
                   help="give the Sketchpad a no-op Python change listener (it then sends each stroke to the server)")
    p.add_argument("--no-bare", dest="bare", action="store_false",
                   help="skip the bare page (a canvas with no listener: what Chromium and the harness cost alone)")
    p.add_argument("--startup-timeout", type=float, default=180, help="seconds to wait for a server to answer")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    args = p.parse_args(argv)
    if args.strokes < 1 or args.moves < 1:
        sys.exit("error: --strokes and --moves must be at least 1")
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
