/* The page reads the pad itself: the app's preprocessing and network (web/reader.js, in web/worker.js) run in
 * the browser on the pixels the pad's canvas shows, and the labels, the equation, the 28x28 view and "How it
 * adds" update while a stroke is drawn and at pen-up, with no request to the server.
 *
 * Loaded by the pad's gr.HTML `head` (pad.py), after window.mnistSumConfig ({pad, number, workerUrl, readerUrl,
 * modelUrl, texts}) and web/pad.js. The pad's js_on_load calls page.mountPad(element, props, events), the view's
 * page.mountView(element). Gradio's side (app.py) is three public events of the pad, fired with gr.HTML's
 * `trigger`: "read" runs a JavaScript-only listener whose outputs are page.outputs(number) (also on the slider's
 * change); "example" sets the slider to page.exampleNumber; "send" runs the server's /predict on the pad's
 * value (a PNG of the canvas), the path taken when the page cannot read: no Worker or WebAssembly, the reader
 * or the model failing to load or to run, or ?reader=server in the URL.
 */
(() => {
  "use strict";
  const config = window.mnistSumConfig || {};
  const DRAW_EVERY_MS = 100; // reads while a stroke is drawn, at most this often
  // "How it adds" while a stroke is drawn, at most this often (and at pen-up always): each update of the view
  // costs the page a layout, which on busy cores slows the pointer moves (benchmarks/pad_moves.py)
  const EXPLAIN_EVERY_MS = 400;
  const LOAD_TIMEOUT_MS = 20000; // a reader that is not ready by then is given up for the server

  const page = window.mnistSumPage = {
    mode: "starting", // "local" once the reader is ready; "server" when the page cannot read
    why: null, // why the page went to the server
    result: null, // the latest reading: {digit, sum, number, digitProbs, sumProbs, isDigit, input28} or null
    number: Number.isInteger(config.number) ? config.number : 0, // the slider's number, as its listener passed it
    exampleNumber: null, // the number of the example last loaded (the "example" listener sets the slider to it)
    // readings done; ms per reading in the worker, per read-out of the canvas, per explanation in the worker
    // and per update of the view; the model file's size and load time; [reading started, outputs handed to
    // Gradio] (performance.now() ms) for each reading shown
    stats: {reads: 0, readerMs: [], pixelsMs: [], explainMs: [], viewMs: [], modelBytes: null, loadMs: null, shown: []},
  };
  let pad = null; // web/pad.js's pad, once mounted
  let padProps = null; // the pad component's props (gr.HTML): its value is what /predict reads
  let events = null; // {read, send, example}: the pad component's events
  let view = null; // web/explain_view.js's view, once mounted
  let viewBox = null; // the <details> holding it: explanations are computed only while it is open
  let worker = null;
  let nextId = 1;
  const pending = new Map(); // message id -> resolve
  let latestId = 0; // the newest reading asked for; older answers are dropped
  let dirty = false; // the pad changed since its last reading
  let inFlight = 0; // readings asked of the worker and not yet answered
  let lastStart = -Infinity;
  let timer = null;

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
    if (typeof WebAssembly !== "object") return toServer("no WebAssembly");
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
        if (dirty) pump(true);
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
      } else if (message.type === "explanation") {
        page.stats.explainMs.push(message.ms);
        if (message.id === latestId || message.id === explainId) showExplanation(message.explanation);
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
    view?.unavailable?.(why);
    if (wasLocal || dirty) askServer();
  }

  /** The pad's image as its value, and /predict asked to read it (one request per pen-up: the latest wins). */
  function askServer() {
    dirty = false;
    if (!pad || !events) return;
    padProps.value = pad.isEmpty() ? null : pad.png();
    events.send();
  }

  // --- reading the pad ------------------------------------------------------------------------------------

  /** The pad changed: "draw" while a stroke goes on (read at most every DRAW_EVERY_MS), "up" at pen-up and
   * "edit" or "example" (undo, redo, clear, an example) read at once. */
  function changed(kind, exampleNumber) {
    dirty = true;
    if (kind === "example") {
      page.exampleNumber = exampleNumber;
      events.example();
    }
    if (kind === "draw") {
      if (page.mode === "local") schedule(DRAW_EVERY_MS);
      return;
    }
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    pump(true);
  }

  function schedule(spacing) {
    if (timer !== null) return;
    const wait = Math.max(0, lastStart + spacing - performance.now());
    timer = setTimeout(() => {
      timer = null;
      pump();
    }, wait);
  }

  const explaining = () => Boolean(view && viewBox && viewBox.open);
  let lastExplained = -Infinity; // when the last reading asked for an explanation (performance.now() ms)

  /** Whether this reading is to be explained too: the view is open, and it is pen-up (or an edit) or the
   * stroke has gone on for EXPLAIN_EVERY_MS since the last explanation. */
  function explainThis(now) {
    if (!explaining() || (pad.drawing() && now - lastExplained < EXPLAIN_EVERY_MS)) return false;
    lastExplained = now;
    return true;
  }

  /** Read the pad if it changed: once the reading in flight is answered, or at once when `now` (pen-up). */
  async function pump(now = false) {
    if (!dirty || (inFlight && !now)) return;
    if (page.mode === "server") { // one request per pen-up, not while drawing
      if (!pad.drawing()) askServer();
      return;
    }
    if (page.mode !== "local") return; // read once the reader is ready
    dirty = false;
    inFlight += 1;
    const started = lastStart = performance.now();
    const id = latestId = nextId;
    try {
      const pixels = pad.pixels();
      page.stats.pixelsMs.push(performance.now() - started);
      const result = await ask({type: "read", rgba: pixels.data, width: pixels.width, height: pixels.height,
                                number: page.number, explain: explainThis(started)}, [pixels.data.buffer]);
      page.stats.reads += 1;
      if (result === undefined || id !== latestId || page.mode !== "local") return;
      show(result, started);
    } catch (error) {
      toServer(`reading the pad failed: ${error && error.message || error}`);
    } finally {
      inFlight -= 1;
      if (dirty && !inFlight) schedule(pad.drawing() ? DRAW_EVERY_MS : 0);
    }
  }

  /** Hand a reading to Gradio: the pad's "read" listener takes its outputs from page.outputs. */
  function show(result, startedAt) {
    page.result = result;
    page.readStartedAt = startedAt;
    events.read();
  }

  // --- "How it adds" ----------------------------------------------------------------------------------------

  let explainId = 0; // an explanation asked for on its own (the view opened, or the number changed)

  function showExplanation(explanation) {
    if (!view) return;
    const started = performance.now();
    if (explanation && page.result) {
      view.update(explanation, {isDigit: page.result.isDigit});
    } else {
      view.clear();
    }
    page.stats.viewMs.push(performance.now() - started);
  }

  /** Explain the latest drawing again (the view was opened): the worker keeps its input. */
  function explainNow() {
    if (page.mode !== "local" || !explaining()) return;
    if (!page.result) return showExplanation(null);
    explainId = nextId++;
    worker.postMessage({type: "explain", id: explainId, number: page.number});
  }

  // --- what the page shows (the same as app.py's predict) ---------------------------------------------------

  /** Class probabilities as gr.Label's value: the top classes, best first. */
  function label(probs) {
    const top = probs.map((p, i) => ({label: String(i), confidence: p}))
      .sort((a, b) => b.confidence - a.confidence).slice(0, config.topClasses || 3);
    return {label: top[0].label, confidences: top};
  }

  /** The 28x28 input as gr.Image's value: a PNG data URL of it scaled up (nearest neighbour, as the server's
   * picture), so that its pixels stay visible. */
  function seenImage(input28) {
    const small = document.createElement("canvas");
    small.width = small.height = 28;
    const image = small.getContext("2d").createImageData(28, 28);
    for (let i = 0; i < 784; i++) image.data.set([input28[i], input28[i], input28[i], 255], 4 * i);
    small.getContext("2d").putImageData(image, 0, 0);
    const scale = config.seenScale || 8, canvas = document.createElement("canvas");
    canvas.width = canvas.height = 28 * scale;
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.drawImage(small, 0, 0, canvas.width, canvas.height);
    return {url: canvas.toDataURL("image/png"), path: "seen.png", orig_name: "seen.png", mime_type: "image/png",
            is_stream: false, meta: {_type: "gradio.FileData"}};
  }

  function fill(template, result, number) {
    return template.replace("{digit}", result.digit).replace("{number}", number).replace("{sum}", result.sum);
  }

  /** The listener's outputs [digit label, sum label, equation, seen] for the latest reading and number;
   * undefined (nothing changes) when the server reads, after asking it to. */
  page.outputs = async (number) => {
    const moved = number !== page.number;
    page.number = number;
    if (page.mode !== "local") {
      if (page.mode === "server" && moved) askServer();
      return undefined;
    }
    let result = page.result;
    if (result && result.number !== number) { // the slider moved: the same drawing, another number
      const id = latestId = nextId;
      result = await ask({type: "predict", number, explain: explaining()});
      if (result === undefined || id !== latestId) return undefined; // a newer reading follows
      page.result = result;
    }
    page.stats.shown.push([page.readStartedAt, performance.now()]); // for benchmarks/browser_latency.py
    const texts = config.texts;
    if (!result) return [{}, {}, texts.blank, null];
    const seen = seenImage(result.input28);
    if (!result.isDigit) return [{label: texts.notADigit}, {label: texts.notADigit}, fill(texts.guess, result, number), seen];
    return [label(result.digitProbs), label(result.sumProbs), fill(texts.equation, result, number), seen];
  };

  // --- mounting (the components' js_on_load) ----------------------------------------------------------------

  /** The pad component loaded: its element, its props (value) and its events {read, send, example}. */
  page.mountPad = (element, props, padEvents) => {
    pad = window.MnistSumPad.create(element, config.pad || {});
    padProps = props;
    events = padEvents;
    pad.onChange = changed;
    page.pad = pad;
  };

  /** The "How it adds" component loaded: its view, open on wide screens and folded on phones. */
  page.mountView = (element) => {
    viewBox = element.querySelector("details");
    view = window.MnistSumExplainView.create(element.querySelector(".how-it-adds-view"));
    if (matchMedia("(max-width: 640px)").matches) viewBox.open = false;
    viewBox.addEventListener("toggle", explainNow);
    if (page.mode === "server") view.unavailable?.(page.why);
    else view.clear();
  };

  /** Read an image (RGBA pixels) with the page's own reader: for the browser tests. */
  page.readPixels = async (rgba, width, height, number) => {
    if (page.mode !== "local") throw new Error(`the page does not read (${page.mode}: ${page.why})`);
    return ask({type: "read", rgba, width, height, number});
  };

  // the labels' font, fetched now rather than by the first label shown (a request after pen-up)
  document.fonts?.load("600 1em 'IBM Plex Mono'").catch(() => {});
  startWorker();
})();
