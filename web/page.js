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
 * Reading pixels back from the GPU waits for it to finish drawing: in a software renderer (a browser without a
 * GPU) 100 ms or more after a stroke. The brush only adds opaque black discs (Gradio's brush-textures.ts stamps
 * each segment with discs of the brush's radius), so the page keeps the pad as last read back and the discs the
 * brush has drawn since (taken from its renders), and paints them on the CPU; anything else (clear, undo, an
 * example, the eraser) is read back from the GPU, and so is every stroke, once the page is idle, to check.
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
  // the pad as last read back from the GPU with the brush's discs since painted over it: {data (RGBA), width,
  // height, mask (the layer texture's ink), tw, th (its size, texels)}; null: read the pad back next
  let base = null;
  let unpainted = []; // [x, y, radius] (pad pixels): discs the brush drew that are not yet painted on `base`
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
          const stamped = brushDiscs(first && first.container || first);
          if (stamped && !stamped.ink) erasing = true;
          if (stamped && !erasing) {
            const fresh = stamped.discs.length >= strokeLength ? stamped.discs.slice(strokeLength) : stamped.discs;
            unpainted.push(...fresh);
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

  /** The discs a render of the brush draws, {discs: [[x, y, radius]...], ink: all opaque black}, or null when
   * the render is not the brush's (a Graphics of filled circles, PixiJS 8's GraphicsContext instructions). */
  function brushDiscs(container) {
    const graphics = container && container.children && container.children.find(
      (child) => child.context && Array.isArray(child.context.instructions));
    if (!graphics) return null;
    const discs = [];
    let ink = true;
    for (const step of graphics.context.instructions) {
      const path = step.action === "fill" && step.data && step.data.path;
      if (!path || !Array.isArray(path.instructions)) return null;
      for (const shape of path.instructions) {
        if (shape.action === "moveTo") continue; // the empty path an endFill leaves
        const [x, y, radius, m] = shape.action === "circle" ? shape.data : [];
        if (!Number.isFinite(x + y + radius) || (m && (m.a !== 1 || m.b || m.c || m.d !== 1 || m.tx || m.ty))) {
          return null;
        }
        discs.push([x, y, radius]);
      }
      ink = ink && step.data.style && step.data.style.color === 0 && step.data.style.alpha === 1;
    }
    return discs.length ? {discs, ink} : null;
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

  /** The pad's pixels: the last read-back with the brush's discs since painted on the CPU, where that is the pad
   * (plain ink over a known pad); else read back from the GPU, which becomes the new base. */
  function readPad() {
    if (base && !erasing && !checking) {
      const started = performance.now();
      const pixels = painted();
      page.stats.cpuReads += 1;
      page.stats.paintMs.push(performance.now() - started);
      return pixels;
    }
    const pixels = padPixels();
    if (!drawing) keepBase(pixels); // mid-stroke the brush's preview is not yet where the stroke will lie
    return pixels;
  }

  function keepBase(pixels) {
    const {width, height} = pixels, resolution = window.devicePixelRatio || 1;
    const tw = Math.max(1, Math.round(width * resolution)), th = Math.max(1, Math.round(height * resolution));
    base = {data: pixels.data.slice(), width, height, mask: new Uint8Array(tw * th), tw, th};
    unpainted = [];
  }

  /** The pad: the last read-back with the brush's discs since painted over it (only the new ones are painted
   * each time), as the GPU composes it: the editor draws into textures of devicePixelRatio texels per pad
   * pixel, which the export samples at each pixel's centre (`texel`). */
  function painted() {
    const {data, width, height, mask, tw, th} = base, sx = tw / width, sy = th / height;
    for (const [x, y, radius] of unpainted) {
      fillDisc(mask, tw, th, x, y, radius, sx, sy);
      const top = Math.max(0, Math.floor(y - radius) - 1), bottom = Math.min(height - 1, Math.ceil(y + radius) + 1);
      const left = Math.max(0, Math.floor(x - radius) - 1), right = Math.min(width - 1, Math.ceil(x + radius) + 1);
      for (let py = top; py <= bottom; py++) {
        const row = texel(py, sy, th) * tw;
        for (let px = left; px <= right; px++) {
          if (!mask[row + texel(px, sx, tw)]) continue;
          const i = 4 * (py * width + px);
          data[i] = data[i + 1] = data[i + 2] = 0; // opaque black ink
          data[i + 3] = 255;
        }
      }
    }
    unpainted = [];
    return {data: data.slice(), width, height};
  }

  /** The texel the export samples for pad pixel p at `scale` texels per pixel (of `size`): the nearest to the
   * pixel's centre, the lower one on a tie. */
  function texel(p, scale, size) {
    return Math.min(size - 1, Math.max(0, Math.ceil((p + 0.5) * scale) - 1));
  }

  /** Set the cells of an (h, w) mask that the GPU fills for a PixiJS 8 disc (cx, cy, radius) in pad pixels,
   * drawn at (sx, sy) cells per pixel: a polygon of 4 * ceil(2.3 * sqrt(2 * radius)) corners on the circle, the
   * corners snapped to 1/16 cell (the rasteriser's precision), and a cell filled when its centre is inside,
   * left and top edges included. */
  function fillDisc(mask, w, h, cx, cy, radius, sx, sy) {
    const quarter = Math.ceil(2.3 * Math.sqrt(2 * radius));
    const snap = (v) => Math.round(v * 16) / 16;
    const corners = [];
    for (let k = 0; k < 4 * quarter; k++) {
      const angle = Math.PI / 2 * (k / quarter);
      corners.push([snap((cx + Math.cos(angle) * radius) * sx), snap((cy + Math.sin(angle) * radius) * sy)]);
    }
    const top = Math.max(0, Math.floor((cy - radius) * sy - 1)), bottom = Math.min(h - 1, Math.ceil((cy + radius) * sy + 1));
    for (let y = top; y <= bottom; y++) {
      const yc = y + 0.5;
      let left = Infinity, right = -Infinity;
      for (let i = 0; i < corners.length; i++) {
        const [x1, y1] = corners[i], [x2, y2] = corners[(i + 1) % corners.length];
        if (y1 === y2 || yc < Math.min(y1, y2) || yc >= Math.max(y1, y2)) continue;
        const x = x1 + (yc - y1) * (x2 - x1) / (y2 - y1);
        left = Math.min(left, x);
        right = Math.max(right, x);
      }
      if (!(left < right)) continue;
      const from = Math.max(0, Math.ceil(left - 0.5)), to = Math.min(w, Math.ceil(right - 0.5)); // centres in [left, right)
      if (from < to) mask.fill(1, y * w + from, y * w + to);
    }
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
    const check = checking, cpuReadsBefore = page.stats.cpuReads;
    try {
      const pixels = readPad();
      checking = false;
      const painted = page.stats.cpuReads > cpuReadsBefore;
      const result = await ask({type: "read", rgba: pixels.data, width: pixels.width, height: pixels.height,
                                number: currentNumber()}, [pixels.data.buffer]);
      page.stats.reads += 1;
      if (result === undefined || id !== latestId || page.mode !== "local") return;
      const before = page.result;
      if (check && before && result) page.stats.checks.push(maxDifference(before.input28, result.input28));
      // a check that finds the painted pixels' answer changes nothing on the page
      if (!(check && sameReading(before, result))) show(result, started);
      if (painted && !drawing) scheduleCheck();
    } catch (error) {
      toServer(`reading the pad failed: ${error && error.message || error}`);
    } finally {
      checking = false;
      inFlight -= 1;
      if (dirty && !inFlight) schedule(drawing ? DRAW_EVERY_MS : 0);
    }
  }

  function maxDifference(a, b) {
    let most = 0;
    for (let i = 0; i < a.length; i++) most = Math.max(most, Math.abs(a[i] - b[i]));
    return most;
  }

  /** Two readings that show the same: both blank, or the same 28x28 input and number. */
  function sameReading(a, b) {
    if (!a || !b) return a === b;
    return a.number === b.number && maxDifference(a.input28, b.input28) === 0;
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
      for (let x = 0; x < side; x++) rows[y * (side + 1) + 1 + x] = input28[Math.floor(y / scale) * 28 + Math.floor(x / scale)];
    }
    return {url: "data:image/png;base64," + base64(png(rows, side, side)), path: "seen.png", orig_name: "seen.png",
            mime_type: "image/png", is_stream: false, meta: {_type: "gradio.FileData"}};
  }

  const CRC_TABLE = Uint32Array.from({length: 256}, (_, n) => {
    for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
    return n >>> 0;
  });

  /** A greyscale PNG of (height, width) from its filtered rows, deflated as stored (uncompressed) blocks. */
  function png(rows, width, height) {
    const blocks = Math.max(1, Math.ceil(rows.length / 65535));
    const zlib = new Uint8Array(2 + rows.length + 5 * blocks + 4);
    zlib.set([0x78, 0x01]);
    let at = 2, a = 1, b = 0;
    for (let i = 0; i < blocks; i++) {
      const part = rows.subarray(i * 65535, Math.min(rows.length, (i + 1) * 65535));
      zlib.set([i === blocks - 1 ? 1 : 0, part.length & 255, part.length >> 8, ~part.length & 255, (~part.length >> 8) & 255], at);
      zlib.set(part, at + 5);
      at += 5 + part.length;
    }
    for (const byte of rows) { // Adler-32 of the data
      a = (a + byte) % 65521;
      b = (b + a) % 65521;
    }
    new DataView(zlib.buffer).setUint32(at, ((b << 16) | a) >>> 0);
    const header = new Uint8Array(13);
    new DataView(header.buffer).setUint32(0, width);
    new DataView(header.buffer).setUint32(4, height);
    header.set([8, 0, 0, 0, 0], 8); // 8 bits, greyscale, deflate, no filter method, no interlace
    const chunks = [chunk("IHDR", header), chunk("IDAT", zlib), chunk("IEND", new Uint8Array(0))];
    const out = new Uint8Array(8 + chunks.reduce((n, c) => n + c.length, 0));
    out.set([137, 80, 78, 71, 13, 10, 26, 10]);
    chunks.reduce((offset, c) => (out.set(c, offset), offset + c.length), 8);
    return out;
  }

  function chunk(type, data) {
    const out = new Uint8Array(12 + data.length), view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
    out.set(data, 8);
    let crc = 0xffffffff;
    for (let i = 4; i < 8 + data.length; i++) crc = CRC_TABLE[(crc ^ out[i]) & 255] ^ (crc >>> 8);
    view.setUint32(8 + data.length, (crc ^ 0xffffffff) >>> 0);
    return out;
  }

  function base64(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
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
  page.paintedPixels = () => (base && !erasing ? painted() : null);

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
