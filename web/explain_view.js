/* MnistSumExplainView: "How it adds", a view of the network for learners that updates with each reading.
 * Plain JavaScript, 2D canvases and DOM only; every element and canvas is made once, and an update only
 * paints small canvases (putImageData, scaled up by CSS), moves bars (transform) and swaps short texts and
 * classes, so it costs a few ms of main thread. Styles: web/explain_view.css (scoped to .mnist-sum-explain).
 *
 *   const view = MnistSumExplainView.create(container);   // builds the view once inside a div
 *   view.update(explanation, {isDigit: true});            // show a reading (the worker's explanation)
 *   view.clear();                                         // nothing drawn: one neutral line
 *   view.setShowAll(true);                                // every map of every layer (also its button)
 *   view.unavailable(why);                                // the page cannot read here: say so instead
 *
 * explanation: {number, digit, digitProbs[10], input28 Uint8Array(784),
 *               maps: [{name, channels, side, data: Float32Array(channels*side*side)}, ...] (after ReLU),
 *               whatIf[10], whatIfProbs Float32Array(190), sumProbs[19], adderProbs[19],
 *               sumTable[100] (index d*10+n), sumTableProbs Float32Array(100)}
 */
(function (root) {
  "use strict";

  const MAX_SUM = 18;
  const FEW = 8;  // maps per layer shown by default; layers with at most 10 maps show them all
  const LAYERS = [  // the network's conv layers; a reading with other shapes rebuilds that layer
    {name: "conv1", channels: 64, side: 24},
    {name: "conv2", channels: 128, side: 20},
    {name: "conv3", channels: 10, side: 20},
  ];
  // the addition table's confidence bins (class mse-conf-<i>), lowest first
  const CONF_BINS = [0.5, 0.9, 0.99, 0.999];
  const CONF_LABELS = ["< 50 %", "50–90 %", "90–99 %", "99–99.9 %", "≥ 99.9 %"];
  const EMPTY_LINE = "Draw a digit to see how the network reads it and adds.";

  // --- colours --------------------------------------------------------------------------------------

  /** viridis (dark purple = 0 to yellow = strongest), a polynomial fit of matplotlib's map; t in [0, 1]. */
  function viridis(t) {
    const c = [
      [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
      [0.1050930431085774, 1.404613529898575, 1.384590162594685],
      [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
      [-4.634230498983486, -5.799100973351585, -19.33244095627987],
      [6.228269936347081, 14.17993336680509, 56.69055260068105],
      [4.776384997670288, -13.74514537774601, -65.35303263337234],
      [-5.435455855934631, 4.645852612178535, 26.3124352495832],
    ];
    return [0, 1, 2].map((k) => {
      let v = c[6][k];
      for (let i = 5; i >= 0; i--) v = c[i][k] + t * v;
      return Math.max(0, Math.min(255, Math.round(v * 255)));
    });
  }

  /** 256 colours as canvas pixels (Uint32, in the platform's byte order). */
  function lut(colour) {
    const bytes = new Uint8ClampedArray(256 * 4);
    for (let i = 0; i < 256; i++) {
      const [r, g, b] = colour(i / 255);
      bytes[4 * i] = r; bytes[4 * i + 1] = g; bytes[4 * i + 2] = b; bytes[4 * i + 3] = 255;
    }
    return new Uint32Array(bytes.buffer);
  }
  const MAP_LUT = lut(viridis);
  const GREY_LUT = lut((t) => { const v = Math.round(t * 255); return [v, v, v]; });
  const RAMP_CSS = "linear-gradient(to right, " +
    Array.from({length: 9}, (_, i) => `rgb(${viridis(i / 8).join(",")}) ${i * 12.5}%`).join(", ") + ")";

  // --- small DOM helpers ----------------------------------------------------------------------------

  function el(parent, tag, cls, text, attrs) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    if (attrs) for (const k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }

  /** An element whose text changes: one text node, written only when the text differs. */
  function textSlot(parent, tag, cls, text, attrs) {
    const node = el(parent, tag, cls, null, attrs);
    const t = document.createTextNode(text || "");
    node.appendChild(t);
    return {node, set(value) { if (t.data !== value) t.data = value; }};
  }

  function setAttr(node, name, value) {
    if (value === null) { if (node.hasAttribute(name)) node.removeAttribute(name); }
    else if (node.getAttribute(name) !== value) node.setAttribute(name, value);
  }

  const pct = (p) => `${Math.round(Math.max(0, Math.min(1, +p || 0)) * 100)} %`;
  const clamp01 = (p) => (p > 0 ? (p < 1 ? p : 1) : 0);
  function argmax(a) {
    let best = 0;
    for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
    return best;
  }

  // --- the maps -------------------------------------------------------------------------------------

  /** A small canvas showing one side x side map. */
  function mapCell(parent, side, label, caption) {
    const fig = el(parent, "figure", "mse-map");
    const canvas = el(fig, "canvas", null, null, {width: side, height: side, role: "img", "aria-label": label});
    const ctx = canvas.getContext("2d", {alpha: false});
    const cap = caption ? textSlot(fig, "figcaption", null, caption) : null;
    return {fig, canvas, ctx, cap, channel: -1};
  }

  /** One conv layer: its label, a grid of its most active maps and (made when first asked) a grid of all. */
  function makeLayer(parent, spec) {
    const few = spec.channels <= 10 ? spec.channels : Math.min(FEW, spec.channels);
    const root = el(parent, "div", "mse-layer");
    const head = el(root, "div", "mse-layer-label");
    el(head, "strong", null, `${spec.name}: ${spec.channels} maps, ${spec.side}×${spec.side}`);
    const note = textSlot(head, "span", "mse-layer-note");
    const fewGrid = el(root, "div", "mse-grid");
    const layer = {
      spec, few, root, note, fewGrid, allGrid: null, allCells: null,
      fewCells: [], image: new ImageData(spec.side, spec.side),
      means: new Float64Array(spec.channels), order: new Int32Array(spec.channels),
    };
    layer.pixels = new Uint32Array(layer.image.data.buffer);
    for (let i = 0; i < few; i++) layer.fewCells.push(mapCell(fewGrid, spec.side, `${spec.name} map`, "#"));
    return layer;
  }

  function ensureAllGrid(layer) {
    if (layer.allGrid) return;
    const {spec} = layer;
    layer.allGrid = el(layer.root, "div", "mse-grid mse-grid-all");
    layer.allCells = [];
    for (let c = 0; c < spec.channels; c++) {
      const cell = mapCell(layer.allGrid, spec.side, `${spec.name} map ${c}`, null);
      cell.canvas.title = `${spec.name} map ${c}`;
      cell.channel = c;
      layer.allCells.push(cell);
    }
  }

  function paintMap(layer, cell, data, channel, scale) {
    const n = layer.spec.side * layer.spec.side, px = layer.pixels, off = channel * n;
    for (let i = 0; i < n; i++) {
      const v = data[off + i] * scale + 0.5;  // NaN and negatives go to 0
      px[i] = MAP_LUT[v >= 255 ? 255 : (v > 0 ? v | 0 : 0)];
    }
    cell.ctx.putImageData(layer.image, 0, 0);
  }

  // --- the view -------------------------------------------------------------------------------------

  function create(container) {
    if (!container || typeof container.appendChild !== "function") {
      throw new TypeError("MnistSumExplainView.create needs a container element");
    }
    container.classList.add("mnist-sum-explain");
    container.textContent = "";
    const ids = (() => { create.count = (create.count || 0) + 1; return (s) => `mse${create.count}-${s}`; })();

    const empty = el(container, "p", "mse-empty", EMPTY_LINE);
    const body = el(container, "div", "mse-body");
    body.hidden = true;
    const notDigit = el(body, "p", "mse-not-digit", "This drawing does not look like a digit, so everything " +
      "below is the network's best guess.", {role: "note"});
    notDigit.hidden = true;

    function part(cls, title, sentence) {
      const section = el(body, "section", `mse-part ${cls}`, null, {"aria-labelledby": ids(cls)});
      el(section, "h4", null, title, {id: ids(cls)});
      const p = el(section, "p", "mse-say", sentence);
      return {section, p};
    }

    // 1. the input and the conv layers' maps
    const mapsPart = part("mse-maps", "What the layers see",
      "The grey square is the 28×28 picture the network reads; each coloured square is one map, the places " +
      "where one filter finds its pattern, dark where it finds nothing (0) and bright where it responds " +
      "most, scaled per layer so maps of one layer compare with each other but not with other layers.");
    const mapsRoot = el(mapsPart.section, "div", null, null, {id: "feature-maps"});
    const tools = el(mapsRoot, "div", "mse-tools");
    const legend = el(tools, "div", "mse-legend mse-ramp-legend", null, {"aria-hidden": "true"});
    el(legend, "span", null, "0");
    el(legend, "span", "mse-ramp").style.backgroundImage = RAMP_CSS;
    el(legend, "span", null, "strongest in this layer");
    const toggle = el(tools, "button", "mse-toggle", "Show all maps",
      {type: "button", "aria-pressed": "false"});
    const inputLayer = el(mapsRoot, "div", "mse-layer mse-input-layer");
    el(el(inputLayer, "div", "mse-layer-label"), "strong", null, "input: 28×28");
    const inputGrid = el(inputLayer, "div", "mse-grid");
    const input = mapCell(inputGrid, 28, "The 28×28 picture the network reads", null);
    input.fig.classList.add("mse-input");
    const inputImage = new ImageData(28, 28), inputPixels = new Uint32Array(inputImage.data.buffer);
    const layers = LAYERS.map((spec) => makeLayer(mapsRoot, spec));

    // 2. the digit's probabilities
    const digitsPart = part("mse-digits", "The digit it reads",
      "Each bar is how sure the network is that you drew that digit; the highlighted bar is its answer.");
    const digitBars = el(digitsPart.section, "div", "mse-bars mse-digit-bars", null, {role: "list"});
    const digitCols = [];
    for (let d = 0; d < 10; d++) {
      const col = el(digitBars, "div", "mse-col", null, {role: "listitem"});
      const val = textSlot(col, "span", "mse-val");
      const bar = el(el(col, "div", "mse-track"), "div", "mse-bar");
      el(col, "span", "mse-tick", String(d));
      digitCols.push({col, val, bar, p: -1});
    }

    // 3. what if the number were another
    const whatIfPart = part("mse-whatif", "What if the number were different?",
      "If the number were n, the network would answer the sum in cell n (n → sum) with the confidence below " +
      "it; the outlined cell is the number you picked, and a cell marked ≠ answers something other than " +
      "digit + n.");
    const whatIfRoot = el(whatIfPart.section, "div", null, null, {id: "what-if", role: "list"});
    const whatIfCells = [];
    for (let n = 0; n < 10; n++) {
      const cell = el(whatIfRoot, "div", "what-if-cell", null, {"data-number": String(n), role: "listitem"});
      const eq = textSlot(cell, "span", "mse-wi-eq", `${n} → ?`);
      cell.appendChild(document.createTextNode(" "));  // spaces: the cell's text reads "3 → 7 87 % ≠ 4 + 3"
      const p = textSlot(cell, "span", "mse-wi-p");
      cell.appendChild(document.createTextNode(" "));
      const mark = textSlot(cell, "span", "mse-wi-mark");
      whatIfCells.push({cell, eq, p, mark});
    }

    // 4. the network's sum next to an exact adder's
    const sumsPart = part("mse-sums", "Its sum next to an exact adder",
      "Filled bars are the network's probability for each sum, outlined bars what an exact adder gets by " +
      "shifting the digit probabilities by the number, so an ambiguous 4/9 splits its mass at 4 + n and 9 + n.");
    const sumBars = el(sumsPart.section, "div", "mse-bars mse-sum-bars", null, {role: "img"});
    const sumCols = [];
    for (let s = 0; s <= MAX_SUM; s++) {
      const col = el(sumBars, "div", "mse-col");
      const track = el(col, "div", "mse-track");
      const net = el(track, "div", "mse-bar mse-net");
      const adder = el(track, "div", "mse-bar mse-adder");
      const tick = el(col, "span", "mse-tick", String(s));
      sumCols.push({col, net, adder, tick, pn: -1, pa: -1});
    }
    const sumLegend = el(sumsPart.section, "div", "mse-legend mse-key");
    el(el(sumLegend, "span", "mse-key-item"), "span", "mse-swatch mse-net").after("network");
    const adderKey = el(sumLegend, "span", "mse-key-item");
    el(adderKey, "span", "mse-swatch mse-adder");
    const adderKeyText = textSlot(adderKey, "span", null, "exact adder: digit probabilities shifted by the number");

    // 5. the mix head's table
    const tablePart = part("mse-table", "Does it really add?",
      "Fed a certain digit d (row) and number n (column), the mix head answers the sum in the cell, more " +
      "strongly coloured the surer it is; the table really adds when every cell equals d + n, a corner " +
      "mark flags one that does not, and the outlined row and column are the digit read and the number picked.");
    const wrap = el(tablePart.section, "div", "mse-table-wrap", null, {tabindex: "0", role: "region",
      "aria-label": "The mix head's sums for every digit and number"});
    const table = el(wrap, "table", null, null, {id: "sum-table"});
    el(table, "caption", "mse-sr", "Sum answered by the mix head for each digit (rows) and number (columns)");
    const thead = el(table, "thead");
    const top = el(thead, "tr");
    el(top, "td", "mse-corner");
    el(top, "th", "mse-axis", "number n →", {scope: "colgroup", colspan: "10"});
    const headRow = el(thead, "tr");
    el(headRow, "th", "mse-corner mse-axis", "digit d ↓", {scope: "col"});
    const colHeads = [];
    for (let n = 0; n < 10; n++) colHeads.push(el(headRow, "th", null, String(n), {scope: "col", "data-number": String(n)}));
    const tbody = el(table, "tbody");
    const rowHeads = [], tableCells = [];
    for (let d = 0; d < 10; d++) {
      const tr = el(tbody, "tr");
      rowHeads.push(el(tr, "th", null, String(d), {scope: "row", "data-digit": String(d)}));
      for (let n = 0; n < 10; n++) {
        const td = el(tr, "td", "mse-conf-4", null, {"data-digit": String(d), "data-number": String(n)});
        const t = document.createTextNode("");
        td.appendChild(t);
        tableCells.push({td, t, bin: 4, differs: false});
      }
    }
    const tableSummary = textSlot(tablePart.section, "p", "mse-table-summary");
    const confLegend = el(tablePart.section, "div", "mse-legend mse-key", null);
    el(confLegend, "span", null, "confidence:");
    CONF_LABELS.forEach((label, i) => {
      const item = el(confLegend, "span", "mse-key-item");
      el(item, "span", `mse-swatch mse-conf-${i}`);
      item.appendChild(document.createTextNode(label));
    });
    const diffKey = el(confLegend, "span", "mse-key-item");
    el(diffKey, "span", "mse-swatch mse-differs-swatch");
    diffKey.appendChild(document.createTextNode("sum ≠ d + n"));

    // --- state and updates ---------------------------------------------------------------------------

    let showAll = false, last = null, current = {digit: -1, number: -1};

    function paintInput(bytes) {
      for (let i = 0; i < 784; i++) inputPixels[i] = GREY_LUT[bytes ? bytes[i] | 0 : 0];
      input.ctx.putImageData(inputImage, 0, 0);
    }

    function paintLayer(layer, map) {
      const {spec} = layer, n = spec.side * spec.side, data = map.data, means = layer.means;
      let max = 0;
      for (let c = 0; c < spec.channels; c++) {
        let sum = 0;
        for (let i = c * n, end = i + n; i < end; i++) {
          const v = data[i];
          if (v > 0) { sum += v; if (v > max) max = v; }
        }
        means[c] = sum / n;
      }
      const scale = max > 0 ? 255 / max : 0;
      if (showAll) {
        ensureAllGrid(layer);
        for (let c = 0; c < spec.channels; c++) paintMap(layer, layer.allCells[c], data, c, scale);
        layer.note.set(layer.few === spec.channels ? "" : ` · all ${spec.channels}`);
        return;
      }
      const order = layer.order;
      for (let c = 0; c < spec.channels; c++) order[c] = c;
      if (layer.few < spec.channels) order.sort((a, b) => means[b] - means[a] || a - b);
      for (let k = 0; k < layer.few; k++) {
        const cell = layer.fewCells[k], c = order[k];
        paintMap(layer, cell, data, c, scale);
        if (cell.channel !== c) {
          cell.channel = c;
          cell.cap.set(`#${c}`);
          cell.canvas.setAttribute("aria-label", `${spec.name} map ${c}`);
        }
      }
      layer.note.set(layer.few === spec.channels ? "" : ` · the ${layer.few} most active (mean activation)`);
    }

    function paintMaps(maps) {
      for (let i = 0; i < maps.length; i++) {
        const map = maps[i];
        if (!map || !map.data) continue;
        let layer = layers[i];
        const side = map.side | 0, channels = map.channels | 0;
        if (!(side > 0 && channels > 0) || map.data.length < side * side * channels) continue;
        if (!layer || layer.spec.name !== map.name || layer.spec.side !== side || layer.spec.channels !== channels) {
          const fresh = makeLayer(null, {name: String(map.name), channels, side});
          if (layer) mapsRoot.replaceChild(fresh.root, layer.root);
          else mapsRoot.appendChild(fresh.root);
          fresh.fewGrid.hidden = showAll;
          layers[i] = layer = fresh;
        }
        layer.root.hidden = false;
        paintLayer(layer, map);
      }
      for (let i = maps.length; i < layers.length; i++) layers[i].root.hidden = true;
    }

    function setGridMode() {
      for (const layer of layers) {
        layer.fewGrid.hidden = showAll;
        if (layer.allGrid) layer.allGrid.hidden = !showAll;
      }
      toggle.textContent = showAll ? "Show fewer maps" : "Show all maps";
      toggle.setAttribute("aria-pressed", String(showAll));
      mapsRoot.classList.toggle("mse-all", showAll);
    }

    function update(explanation, options) {
      if (!explanation) { clear(); return; }
      const e = explanation, number = e.number | 0;
      const digitProbs = e.digitProbs || [];
      const digit = Number.isInteger(e.digit) ? e.digit : argmax(digitProbs);
      const isDigit = !(options && options.isDigit === false);
      last = e;
      empty.hidden = true;
      body.hidden = false;
      notDigit.hidden = isDigit;
      container.classList.toggle("mse-not-a-digit", !isDigit);

      // 1
      paintInput(e.input28);
      paintMaps(e.maps || []);

      // 2
      for (let d = 0; d < 10; d++) {
        const col = digitCols[d], p = clamp01(+digitProbs[d] || 0);
        if (col.p !== p) {
          col.p = p;
          col.bar.style.transform = `scaleY(${p})`;
          const text = p >= 0.005 ? pct(p) : "";
          col.val.set(text);
          col.col.setAttribute("aria-label", `digit ${d}: ${pct(p)}`);
        }
        col.col.classList.toggle("mse-on", d === digit);
      }

      // 3
      const whatIf = e.whatIf || [], whatIfProbs = e.whatIfProbs || [];
      for (let n = 0; n < 10; n++) {
        const c = whatIfCells[n], s = whatIf[n];
        const p = whatIfProbs.length >= 190 && Number.isInteger(s) ? whatIfProbs[n * 19 + s] : NaN;
        c.eq.set(`${n} → ${Number.isInteger(s) ? s : "?"}`);
        c.p.set(Number.isFinite(p) ? pct(p) : "");
        const differs = Number.isInteger(s) && s !== digit + n;
        c.mark.set(differs ? `≠ ${digit} + ${n}` : "");
        c.cell.classList.toggle("differs", differs);
        c.cell.classList.toggle("current", n === number);
        setAttr(c.cell, "aria-current", n === number ? "true" : null);
      }

      // 4
      const sumProbs = e.sumProbs || [], adderProbs = e.adderProbs || [];
      const bestSum = argmax(sumProbs), bestAdder = argmax(adderProbs);
      for (let s = 0; s <= MAX_SUM; s++) {
        const col = sumCols[s], pn = clamp01(+sumProbs[s] || 0), pa = clamp01(+adderProbs[s] || 0);
        if (col.pn !== pn) { col.pn = pn; col.net.style.transform = `scaleY(${pn})`; }
        if (col.pa !== pa) { col.pa = pa; col.adder.style.transform = `scaleY(${pa})`; }
        col.col.classList.toggle("mse-on", s === bestSum);
      }
      sumBars.setAttribute("aria-label", `Network: sum ${bestSum} at ${pct(sumProbs[bestSum])}; ` +
        `exact adder: sum ${bestAdder} at ${pct(adderProbs[bestAdder])}`);
      adderKeyText.set(`exact adder: digit probabilities shifted by ${number}`);

      // 5
      const table = e.sumTable || [], tableProbs = e.sumTableProbs || [];
      let wrong = 0;
      for (let i = 0; i < 100; i++) {
        const cell = tableCells[i], s = table[i], d = (i / 10) | 0, n = i % 10;
        const text = Number.isInteger(s) ? String(s) : "";
        if (cell.t.data !== text) cell.t.data = text;
        const p = +tableProbs[i] || 0;
        let bin = 0;
        while (bin < CONF_BINS.length && p >= CONF_BINS[bin]) bin++;
        if (cell.bin !== bin) {
          cell.td.classList.replace(`mse-conf-${cell.bin}`, `mse-conf-${bin}`);
          cell.bin = bin;
        }
        const differs = Number.isInteger(s) && s !== d + n;
        if (differs) wrong++;
        if (cell.differs !== differs) {
          cell.differs = differs;
          cell.td.classList.toggle("differs", differs);
          setAttr(cell.td, "title", differs ? `${d} + ${n} = ${d + n}, the table says ${s}` : null);
        }
      }
      if (current.digit !== digit) {
        for (let k = 0; k < 10; k++) {
          rowHeads[k].classList.toggle("row-current", k === digit);
          for (let n = 0; n < 10; n++) tableCells[k * 10 + n].td.classList.toggle("row-current", k === digit);
        }
        current.digit = digit;
      }
      if (current.number !== number) {
        for (let k = 0; k < 10; k++) {
          colHeads[k].classList.toggle("col-current", k === number);
          for (let d = 0; d < 10; d++) tableCells[d * 10 + k].td.classList.toggle("col-current", k === number);
        }
        current.number = number;
      }
      tableSummary.set(wrong === 0 ? "All 100 cells equal d + n: the mix head adds." :
        `${wrong} of 100 cells differ from d + n.`);
    }

    /** The page cannot read here (the server does): say so, in place of the view. */
    function unavailable(why) {
      clear();
      empty.textContent = "How it adds runs on the page's own reader, which could not start here" +
        (why ? ` (${why})` : "") + ": the server reads your drawing instead, and this view stays empty.";
    }

    function clear() {
      last = null;
      empty.textContent = EMPTY_LINE;
      empty.hidden = false;
      body.hidden = true;
      notDigit.hidden = true;
      container.classList.remove("mse-not-a-digit");
    }

    function setShowAll(value) {
      const next = !!value;
      if (next === showAll) return;
      showAll = next;
      if (showAll) layers.forEach(ensureAllGrid);
      setGridMode();
      if (last) paintMaps(last.maps || []);
    }

    toggle.addEventListener("click", () => setShowAll(!showAll));
    setGridMode();
    clear();
    return {update, clear, unavailable, setShowAll, get showAll() { return showAll; }, element: container};
  }

  root.MnistSumExplainView = {create};
})(typeof globalThis !== "undefined" ? globalThis : this);
