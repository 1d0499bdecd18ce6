/* The app's drawing pad: a plain <canvas> with a 2D context, inside Gradio's public gr.HTML component (pad.py).
 *
 *   const pad = MnistSumPad.create(element, {side: 400, brush: 12, eraser: 24, examples: [{url, number}, ...]});
 *   pad.onChange = (kind) => ...   // "draw" while a stroke goes on, "up" at pen-up, "edit" for undo, redo,
 *                                  // clear and an example; "example" also carries the example's number
 *   pad.pixels()                   // {data, width, height}: what the canvas shows, as getImageData reads it
 *   pad.png()                      // the same as a PNG data URL
 *   pad.isEmpty()                  // nothing drawn (or all of it erased or cleared)
 *
 * The drawing is a history of actions in pad units (a square of `side` units, whatever its size on screen):
 * strokes (ink or eraser, a polyline), examples (an image fitted to the square) and clears. The canvas' own
 * pixels follow the screen (its CSS size times devicePixelRatio), so lines stay sharp at any zoom; a resize or
 * an undo repaints the history, drawn exactly as it was drawn live (segment by segment, round caps), so a
 * repaint gives the same pixels. Input is pointer events (mouse, pen, touch) with pointer capture and
 * coalesced events; the canvas has touch-action: none, so a finger draws instead of scrolling.
 */
(() => {
  "use strict";

  const INK = "#000000", PAPER = "#ffffff";

  /** A pad in `element` (the gr.HTML component's root: pad.py's template), ready to draw. */
  function create(element, options) {
    const side = options.side || 400; // pad units across
    const canvas = element.querySelector("canvas.pad-canvas");
    const context = canvas.getContext("2d", {willReadFrequently: true, alpha: false}); // pixels stay on the CPU
    const buttons = {};
    for (const name of ["draw", "erase", "undo", "redo", "clear"]) {
      buttons[name] = element.querySelector(`button[data-tool=${name}]`);
    }
    const history = []; // actions drawn, oldest first
    const undone = []; // actions undone, the latest last (redo takes it)
    const images = []; // the examples' decoded images, by index (null until loaded)
    let tool = "draw";
    let stroke = null; // the stroke being drawn: {tool, width, points: [[x, y], ...]} in pad units
    let pointer = null; // the pointerId drawing it
    let scale = 1; // canvas pixels per pad unit

    const pad = {onChange: () => {}, history};

    // --- painting -------------------------------------------------------------------------------------

    function fitCanvas() {
      const css = canvas.getBoundingClientRect().width;
      const pixels = Math.max(1, Math.round(css * (window.devicePixelRatio || 1)));
      if (pixels === canvas.width && pixels === canvas.height) return;
      canvas.width = canvas.height = pixels; // also resets the context's state
      scale = pixels / side;
      repaint();
    }

    function blank() {
      context.fillStyle = PAPER;
      context.fillRect(0, 0, canvas.width, canvas.height);
    }

    /** One segment (or a dot, a to b equal) of a stroke, in pad units: the live stroke and a repaint alike. */
    function segment(s, a, b) {
      context.lineCap = context.lineJoin = "round";
      context.lineWidth = s.width * scale;
      context.strokeStyle = s.tool === "erase" ? PAPER : INK;
      context.beginPath();
      context.moveTo(a[0] * scale, a[1] * scale);
      context.lineTo(b[0] * scale, b[1] * scale);
      context.stroke();
    }

    function paintStroke(s) {
      s.points.forEach((p, i) => segment(s, s.points[Math.max(0, i - 1)], p));
    }

    /** An example's image fitted into the square (its aspect kept, centred), as the app's examples are drawn. */
    function paintImage(action) {
      const image = images[action.index];
      if (!image) return;
      const fit = Math.min(canvas.width / image.naturalWidth, canvas.height / image.naturalHeight);
      const w = image.naturalWidth * fit, h = image.naturalHeight * fit;
      context.imageSmoothingQuality = "high";
      context.drawImage(image, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    }

    function paint(action) {
      if (action.type === "clear") blank();
      else if (action.type === "example") { // an example replaces the drawing
        blank();
        paintImage(action);
      } else paintStroke(action);
    }

    function repaint() {
      // what a clear or an example covered is never seen again: start at the last one
      let from = 0;
      history.forEach((action, i) => { if (action.type !== "stroke") from = i; });
      blank();
      for (let i = from; i < history.length; i++) paint(history[i]);
      if (stroke) paintStroke(stroke);
    }

    // --- actions --------------------------------------------------------------------------------------

    function updateButtons() {
      buttons.draw?.setAttribute("aria-pressed", String(tool === "draw"));
      buttons.erase?.setAttribute("aria-pressed", String(tool === "erase"));
      if (buttons.undo) buttons.undo.disabled = history.length === 0;
      if (buttons.redo) buttons.redo.disabled = undone.length === 0;
      if (buttons.clear) buttons.clear.disabled = pad.isEmpty();
    }

    function commit(action) {
      history.push(action);
      undone.length = 0;
      updateButtons();
    }

    pad.undo = () => {
      if (stroke || !history.length) return;
      undone.push(history.pop());
      repaint();
      updateButtons();
      pad.onChange("edit");
    };
    pad.redo = () => {
      if (stroke || !undone.length) return;
      const action = undone.pop();
      history.push(action);
      paint(action);
      updateButtons();
      pad.onChange("edit");
    };
    pad.clear = () => {
      if (stroke || pad.isEmpty()) return;
      commit({type: "clear"});
      blank();
      updateButtons();
      pad.onChange("edit");
    };
    pad.setTool = (name) => {
      tool = name;
      updateButtons();
    };
    /** Draw example `index` over a cleared pad (one action: Undo brings back what was there). */
    pad.loadExample = async (index) => {
      if (stroke) return;
      const example = options.examples[index];
      if (!images[index]) {
        const image = new Image();
        image.src = example.url;
        await image.decode();
        images[index] = image;
      }
      const action = {type: "example", index};
      commit(action);
      paint(action);
      pad.onChange("example", example.number);
    };

    /** Nothing on the pad: no action since the last clear draws ink (eraser strokes alone leave paper). */
    pad.isEmpty = () => {
      for (let i = history.length - 1; i >= 0; i--) {
        const action = history[i];
        if (action.type === "clear") return true;
        if (action.type === "example" || action.tool === "draw") return false;
      }
      return true;
    };

    pad.pixels = () => {
      const image = context.getImageData(0, 0, canvas.width, canvas.height);
      return {data: image.data, width: image.width, height: image.height};
    };
    pad.png = () => canvas.toDataURL("image/png");
    pad.drawing = () => stroke !== null;
    pad.canvas = canvas;

    // --- pointer input ----------------------------------------------------------------------------------

    function at(event) {
      const box = canvas.getBoundingClientRect();
      return [(event.clientX - box.left) * side / box.width, (event.clientY - box.top) * side / box.height];
    }

    function extend(points) {
      for (const p of points) {
        const last = stroke.points[stroke.points.length - 1];
        if (last[0] === p[0] && last[1] === p[1]) continue;
        stroke.points.push(p);
        segment(stroke, last, p);
      }
    }

    canvas.addEventListener("pointerdown", (event) => {
      if (stroke || (event.pointerType === "mouse" && event.button !== 0)) return;
      event.preventDefault();
      fitCanvas();
      const erasing = tool === "erase" || (event.pointerType === "pen" && (event.buttons & 32)); // a pen's eraser end
      pointer = event.pointerId;
      try {
        canvas.setPointerCapture(pointer);
      } catch (error) { /* a pointer that is already gone: the stroke ends at its pointerup anyway */ }
      const p = at(event);
      stroke = {type: "stroke", tool: erasing ? "erase" : "draw", width: erasing ? options.eraser : options.brush,
                points: [p]};
      segment(stroke, p, p); // a tap leaves a dot
      pad.onChange("draw");
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!stroke || event.pointerId !== pointer) return;
      const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
      extend((events.length ? events : [event]).map(at));
      pad.onChange("draw");
    });
    const end = (event) => {
      if (!stroke || event.pointerId !== pointer) return;
      if (event.type === "pointerup") extend([at(event)]);
      const done = stroke;
      stroke = null;
      pointer = null;
      commit(done);
      pad.onChange("up");
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("lostpointercapture", end);
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());

    // --- buttons and keys -----------------------------------------------------------------------------

    buttons.draw?.addEventListener("click", () => pad.setTool("draw"));
    buttons.erase?.addEventListener("click", () => pad.setTool(tool === "erase" ? "draw" : "erase"));
    buttons.undo?.addEventListener("click", () => pad.undo());
    buttons.redo?.addEventListener("click", () => pad.redo());
    buttons.clear?.addEventListener("click", () => pad.clear());
    element.querySelectorAll("button[data-example]").forEach((button) => {
      button.addEventListener("click", () => pad.loadExample(Number(button.dataset.example)).catch((error) => {
        console.warn("mnist-sum: the example cannot be loaded", error);
      }));
    });
    document.addEventListener("keydown", (event) => {
      const target = event.target;
      if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
      if (target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
        return; // a text box's own undo
      }
      const key = event.key.toLowerCase();
      if (key === "z" && !event.shiftKey) pad.undo();
      else if ((key === "z" && event.shiftKey) || key === "y") pad.redo();
      else return;
      event.preventDefault();
    });

    new ResizeObserver(() => fitCanvas()).observe(canvas);
    // devicePixelRatio changes (browser zoom, a window moved to another screen) without a resize of the CSS box
    const watchRatio = () => {
      matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`).addEventListener("change", () => {
        fitCanvas();
        watchRatio();
      }, {once: true});
    };
    watchRatio();
    fitCanvas();
    updateButtons();
    return pad;
  }

  window.MnistSumPad = {create};
})();
