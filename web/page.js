/* The page reads the pad itself: the app's preprocessing and network (web/reader.js, in web/worker.js) run in
 * the browser on the very pixels Gradio would upload, and the labels, the equation and the 28x28 view update
 * while a stroke is drawn and at pen-up, with no request to the server.
 *
 * Loaded in the page's <head> by app.py, after window.mnistSumConfig ({canvas, workerUrl, readerUrl, modelUrl,
 * texts}). How it reads the pad: Gradio's ImageEditor draws with PixiJS, which calls the devtools hook
 * globalThis.__PIXI_APP_INIT__ with each Application it starts; the pad's layers live in one container of that
 * application's stage, which this file renders exactly as the editor's own export does (the composite Python
 * reads). Renders into textures (a brush segment, a committed stroke, a cleared canvas, a loaded example, undo)
 * mark the pad as changed.
 *
 * Reading pixels back from the GPU waits for it to finish drawing (in a software renderer 100 ms or more after a
 * stroke), so the page keeps the pad as last read back and paints the brush's strokes over it on the CPU
 * (web/paint.js), taking their discs from the brush's own renders; anything else (clear, undo, an example, the
 * eraser) is read back from the GPU, and so is every stroke once the page is idle, to check.
 *
 * Two hidden buttons connect it to Gradio (app.py): #page-read's click (and the slider's change) runs a
 * JavaScript-only listener whose outputs are window.mnistSumPage.outputs(number); #server-read's click runs
 * the server's /predict on the pad, the path taken when the page cannot read (no Worker, the reader or the
 * model failing to load or to run, the pad not found, or ?reader=server in the URL).
 */
(() => {
  "use strict";
  const config = window.mnistSumConfig || {};
  const SIDE = config.canvas || 400; // the pad's canvas, canvas pixels
  const DRAW_EVERY_MS = 100; // reads while a stroke is drawn, at most this often (the issue asks <= 150 ms)
  const SERVER_QUIET_MS = 100; // the server reads a change that is not a stroke (an example, undo) once it settles
  const LOAD_TIMEOUT_MS = 20000; // a reader that is not ready by then is given up for the server
  const CHECK_AFTER_MS = 300; // a stroke painted on the CPU is read back from the GPU this long after pen-up

  const page = window.mnistSumPage = {
    mode: "starting", // "local" once the reader is ready; "server" when the page cannot read
    why: null, // why the page went to the server
    result: null, // the latest reading: {digit, sum, number, digitProbs, sumProbs, isDigit, input28} or null
    // reads done; ms per reading in the worker and per pixel read-out of the pad; the model file's size and
    // load time; [reading started, outputs handed to Gradio] (performance.now() ms) for each reading shown
    // pads painted on the CPU (cpuReads; paintMs, ms each) and read back from the GPU (extractMs); for each check
    // of a painted stroke, the largest difference (grey levels) between the two 28x28 inputs
    stats: {reads: 0, cpuReads: 0, readerMs: [], paintMs: [], extractMs: [], checks: [], modelBytes: null,
            loadMs: null, shown: []},
  };
  const apps = []; // PixiJS applications started on the page (the pad's among them)
  let worker = null;
  let nextId = 1;
  const pending = new Map(); // message id -> resolve
  let latestId = 0; // the newest pad reading asked for; older answers are dropped
  let extracting = false; // this file's own renders are not the pad changing
  let dirty = false; // the pad changed since its last reading
  let inFlight = 0; // readings asked of the worker and not yet answered
  let lastStart = -Infinity;
  let timer = null;
  let drawing = false;
  let strokeEnding = false; // inside the pen-up's dispatch, where the editor commits the stroke
  let drawnOn = null; // the application whose canvas the last stroke began on
  const Paint = window.MnistSumPaint; // web/paint.js, inlined before this file
  let base = null; // the pad as last read back from the GPU, the brush's discs since painted on it (a Paint.Pad)
  let strokeLength = 0; // the current stroke's discs seen so far (the brush renders all of them each time)
  let erasing = false; // the current stroke is not plain ink (the eraser): read it back from the GPU
  let checkTimer = null;
  let checking = false; // the reading in flight checks a painted stroke against the GPU's pixels

  // --- finding the pad's pixels ---------------------------------------------------------------------------

  const previousHook = globalThis.__PIXI_APP_INIT__;
  globalThis.__PIXI_APP_INIT__ = function (app, version) {
    try {
      apps.push(app);
      watchRenders(app);
    } catch (error) {
      console.warn("mnist-sum: cannot watch the pad", error);
    }
    if (typeof previousHook === "function") return previousHook.apply(this, arguments);
  };

  /** Mark the pad changed whenever its application renders into a texture (the stage's own frames do not): a
   * stroke's renders carry its discs; any other change is read back from the GPU. */
  function watchRenders(app) {
    const renderer = app.renderer;
    const render = renderer.render;
    renderer.render = function (...args) {
      const [first, second] = args;
      if (!extracting && ((first && first.target) || (second && (second.renderTexture || second.target)))) {
        if (drawing) {
          const stamped = Paint.brushDiscs(first && first.container || first);
          if (stamped && !stamped.ink) erasing = true;
          if (stamped && !erasing) {
            const fresh = stamped.discs.length >= strokeLength ? stamped.discs.slice(strokeLength) : stamped.discs;
            if (base) base.add(fresh);
          }
          if (stamped) strokeLength = stamped.discs.length;
          changed();
        } else if (!strokeEnding) { // the editor committing a stroke changes nothing the page has not read
          base = null;
          changed();
        }
      }
      return render.apply(this, args);
    };
  }

  function padElement() {
    return document.getElementById("sketch");
  }

  /** The pad's PixiJS application, or null: the one last drawn on, else the newest whose canvas is in #sketch
   * (the editor starts a second one for its crop tool, inside #sketch too: that one is passed over). */
  function padApp() {
    const pad = padElement();
    const late = globalThis.__PIXI_APP__; // set by the editor in light mode: a second way to the same application
    if (late && !apps.includes(late)) globalThis.__PIXI_APP_INIT__(late);
    const inPad = apps.filter((app) => app.renderer && app.canvas && pad && pad.contains(app.canvas));
    if (drawnOn && inPad.includes(drawnOn)) return drawnOn;
    const main = inPad.filter((app) => !/crop/.test(app.canvas.parentElement?.className || ""));
    return (main.length ? main : inPad).at(-1) || null;
  }

  /** The pad's composite (layers over the background) as RGBA pixels {data, width, height}, SIDE x SIDE: the
   * image Gradio uploads. Reading pixels back waits for the GPU to finish what it was drawing. */
  function padPixels() {
    const app = padApp();
    const layers = app && app.stage.children.find((c) => c.sortableChildren); // the editor's image container
    if (!layers) throw new Error("the pad's drawing was not found");
    const Rectangle = app.screen.constructor;
    const started = performance.now();
    extracting = true;
    try {
      const options = {target: layers, resolution: 1, frame: new Rectangle(0, 0, SIDE, SIDE)};
      // the GPU's pixels as they are (the composite is opaque: straight and premultiplied alpha agree); a canvas
      // and its getImageData, as the editor's export makes, cost a fifth more
      const out = app.renderer.extract.pixels(options);
      const pixels = {data: out.pixels, width: out.width, height: out.height};
      page.stats.extractMs.push(performance.now() - started);
      return pixels;
    } finally {
      extracting = false;
    }
  }

  /** The pad's pixels and whether they were painted: the last read-back with the brush's discs since painted on
   * the CPU, where that is the pad (plain ink over a known pad); else read back from the GPU, which becomes the
   * new base unless a stroke is being drawn. */
  function readPad() {
    if (base && !erasing && !checking) {
      const started = performance.now();
      const pixels = base.pixels();
      page.stats.cpuReads += 1;
      page.stats.paintMs.push(performance.now() - started);
      return {pixels, painted: true};
    }
    const pixels = padPixels();
    if (!drawing) keepBase(pixels); // mid-stroke the brush's preview is not yet where the stroke will lie
    return {pixels, painted: false};
  }

  function keepBase(pixels) {
    base = new Paint.Pad(pixels, window.devicePixelRatio || 1);
  }

  /** Read the pad back from the GPU once the page is idle, after a stroke painted on the CPU: the check that the
   * two agree, and a correction shown where they do not. */
  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(() => {
      checkTimer = null;
      if (drawing || inFlight || page.mode !== "local") return scheduleCheck();
      checking = true;
      dirty = true;
      pump();
    }, CHECK_AFTER_MS);
  }

  // --- the worker -----------------------------------------------------------------------------------------

  function ask(message, transfer) {
    const id = nextId++;
    return new Promise((resolve) => {
      pending.set(id, resolve);
      worker.postMessage({...message, id}, transfer || []);
    });
  }

  function startWorker() {
    if (new URLSearchParams(location.search).get("reader") === "server") return toServer("asked for in the URL");
    if (typeof Worker !== "function") return toServer("no Worker");
    if (!config.workerUrl || !config.readerUrl || !config.modelUrl) return toServer("the app serves no model");
    try {
      worker = new Worker(config.workerUrl);
    } catch (error) {
      return toServer(`the worker cannot start: ${error}`);
    }
    const giveUp = setTimeout(() => toServer("the reader took too long to load"), LOAD_TIMEOUT_MS);
    worker.onerror = (event) => {
      clearTimeout(giveUp);
      toServer(`the worker failed: ${event.message || event}`);
    };
    worker.onmessage = (event) => {
      const message = event.data;
      if (message.type === "ready") {
        clearTimeout(giveUp);
        if (page.mode !== "starting") return;
        page.mode = "local";
        page.stats.modelBytes = message.modelBytes;
        page.stats.loadMs = message.loadMs;
        // the labels' font, fetched now rather than by the first label shown (a request while drawing)
        document.fonts?.load("1em 'IBM Plex Mono'").catch(() => {});
        if (dirty) pump();
      } else if (message.type === "failed") {
        clearTimeout(giveUp);
        toServer(`the reader failed to load: ${message.message}`);
      } else if (message.type === "error") {
        toServer(`the reader failed: ${message.message}`);
      } else if (message.type === "result") {
        page.stats.readerMs.push(message.ms);
        const resolve = pending.get(message.id);
        pending.delete(message.id);
        if (resolve) resolve(message.result);
      }
    };
    const absolute = (url) => new URL(url, document.baseURI).href; // the worker resolves against its own URL
    worker.postMessage({type: "init", readerUrl: absolute(config.readerUrl), modelUrl: absolute(config.modelUrl)});
  }

  /** From now on the server reads the pad, as before the page could; it reads the current drawing at once. */
  function toServer(why) {
    if (page.mode === "server") return;
    const wasLocal = page.mode === "local";
    page.mode = "server";
    page.why = why;
    console.warn(`mnist-sum: the server reads the pad (${why})`);
    if (worker) worker.terminate();
    worker = null;
    pending.forEach((resolve) => resolve(undefined));
    pending.clear();
    if (wasLocal || dirty) askServer();
  }

  function askServer() {
    dirty = false;
    document.getElementById("server-read")?.click();
  }

  // --- reading the pad ------------------------------------------------------------------------------------

  function currentNumber() {
    const value = Number(document.querySelector("#number input[type=number]")?.value);
    return Number.isInteger(value) && value >= 0 && value <= 9 ? value : 0;
  }

  /** The pad changed: read it now, or DRAW_EVERY_MS after the last reading began while a stroke goes on. */
  function changed() {
    dirty = true;
    if (page.mode === "server" && !drawing) { // once the change has settled (an example loads in several renders)
      clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        pump();
      }, SERVER_QUIET_MS);
      return;
    }
    schedule(drawing ? DRAW_EVERY_MS : 0);
  }

  function schedule(spacing) {
    if (timer !== null) return;
    const wait = Math.max(0, lastStart + spacing - performance.now());
    timer = setTimeout(() => {
      timer = null;
      pump();
    }, wait);
  }

  /** Read the pad if it changed: once the reading in flight is answered, or at once when `now` (pen-up). */
  async function pump(now = false) {
    if (!dirty || (inFlight && !now)) return;
    if (page.mode === "server") { // as before the page could read: one request per stroke, at pen-up
      if (!drawing) askServer();
      return;
    }
    if (page.mode !== "local") return; // read once the reader is ready
    dirty = false;
    inFlight += 1;
    const started = lastStart = performance.now();
    const id = ++latestId;
    const check = checking;
    try {
      const {pixels, painted} = readPad();
      checking = false;
      const result = await ask({type: "read", rgba: pixels.data, width: pixels.width, height: pixels.height,
                                number: currentNumber()}, [pixels.data.buffer]);
      page.stats.reads += 1;
      if (result === undefined || id !== latestId || page.mode !== "local") return;
      const before = page.result;
      if (check && before && result) {
        const difference = maxDifference(before.input28, result.input28);
        page.stats.checks.push(difference);
        if (difference === 0 && before.number === result.number) return; // the painted pixels' answer stands
      }
      show(result, started);
      if (painted && !drawing) scheduleCheck();
    } catch (error) {
      toServer(`reading the pad failed: ${error && error.message || error}`);
    } finally {
      checking = false;
      inFlight -= 1;
      if (dirty && !inFlight) schedule(drawing ? DRAW_EVERY_MS : 0);
    }
  }

  /** The largest difference between two 28x28 inputs, grey levels. */
  function maxDifference(a, b) {
    let most = 0;
    for (let i = 0; i < a.length; i++) most = Math.max(most, Math.abs(a[i] - b[i]));
    return most;
  }

  /** Hand a reading to Gradio: #page-read's listener takes its outputs from page.outputs. */
  function show(result, startedAt) {
    page.result = result;
    page.readStartedAt = startedAt;
    document.getElementById("page-read")?.click();
  }

  // --- what the page shows (the same as app.py's predict) ---------------------------------------------------

  /** Class probabilities as gr.Label's value: the top classes, best first. */
  function label(probs) {
    const top = probs.map((p, i) => ({label: String(i), confidence: p}))
      .sort((a, b) => b.confidence - a.confidence).slice(0, config.topClasses || 3);
    return {label: top[0].label, confidences: top};
  }

  /** The 28x28 input as a 224x224 PNG (nearest neighbour), as gr.Image's value. Encoded here rather than by a
   * canvas: a canvas' toDataURL waits for the GPU, as reading the pad back does. */
  function seenImage(input28) {
    const scale = config.seenScale || 8, side = 28 * scale;
    const rows = new Uint8Array(side * (side + 1)); // each row: filter byte 0 (none), then its grey levels
    for (let y = 0; y < side; y++) {
      const row = Math.floor(y / scale) * 28;
      for (let x = 0; x < side; x++) rows[y * (side + 1) + 1 + x] = input28[row + Math.floor(x / scale)];
    }
    return {url: "data:image/png;base64," + Paint.base64(Paint.greyPng(rows, side, side)), path: "seen.png",
            orig_name: "seen.png", mime_type: "image/png", is_stream: false, meta: {_type: "gradio.FileData"}};
  }

  function fill(template, result, number) {
    return template.replace("{digit}", result.digit).replace("{number}", number).replace("{sum}", result.sum);
  }

  /** The listener's outputs [digit label, sum label, equation, seen] for the latest reading and number;
   * undefined (nothing changes) when the server reads, after asking it to. */
  page.outputs = async (number) => {
    if (page.mode !== "local") {
      if (page.mode === "server") askServer();
      return undefined;
    }
    let result = page.result;
    if (result && result.number !== number) { // the slider moved: the same drawing, another number
      const id = latestId;
      result = await ask({type: "predict", number});
      if (result === undefined || id !== latestId) return undefined; // a newer drawing's reading follows
      page.result = result;
    }
    page.stats.shown.push([page.readStartedAt, performance.now()]); // for benchmarks/browser_latency.py
    const texts = config.texts;
    if (!result) return [{}, {}, texts.blank, null];
    const seen = seenImage(result.input28);
    if (!result.isDigit) return [{label: texts.notADigit}, {label: texts.notADigit}, fill(texts.guess, result, number), seen];
    return [label(result.digitProbs), label(result.sumProbs), fill(texts.equation, result, number), seen];
  };

  /** Read an image (a canvas, or RGBA pixels) with the page's own reader: for the browser tests. */
  page.readPixels = async (rgba, width, height, number) => {
    if (page.mode !== "local") throw new Error(`the page does not read (${page.mode}: ${page.why})`);
    return ask({type: "read", rgba, width, height, number});
  };
  page.padPixels = () => padPixels();
  /** The pad as the page paints it without the GPU, or null where it would read it back (for the browser tests). */
  page.paintedPixels = () => (base && !erasing ? base.pixels() : null);

  // --- strokes --------------------------------------------------------------------------------------------

  document.addEventListener("pointerdown", (event) => {
    if (!(event.target instanceof HTMLCanvasElement && padElement()?.contains(event.target))) return;
    if (!base && page.mode === "local") { // the pad before the stroke, to paint it on (once after loading)
      try {
        keepBase(padPixels());
      } catch (error) {
        console.warn("mnist-sum: the pad cannot be read yet", error);
      }
    }
    drawing = true;
    strokeLength = 0;
    erasing = false;
    drawnOn = apps.find((app) => app.canvas === event.target) || drawnOn;
  }, true);
  const penUp = () => {
    if (!drawing) return;
    drawing = false;
    strokeEnding = true;
    const erased = erasing;
    if (erased) base = null; // the eraser's work is read back from the GPU
    erasing = false;
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    dirty = true;
    // plain ink over a known pad is read at once, painted, while the editor commits the stroke; anything else
    // (and the server) once the editor's own pointerup has committed it
    if (page.mode === "local" && base && !erased) pump(true);
    setTimeout(() => {
      strokeEnding = false;
      if (dirty) pump(true);
    }, 0);
  };
  window.addEventListener("pointerup", penUp, true);
  window.addEventListener("pointercancel", penUp, true);

  startWorker();
})();
