/* MnistSumReader: the Python Predictor in the browser, dependency-free (page, Web Worker, Node 20).
 *
 * Two halves, each a port of its Python original, kept in step with it by tests/test_web_reader.py:
 *   preprocessing  mnist_sum/preprocess.py for RGBA pixels (a canvas' getImageData), including Pillow's
 *                  Image.reduce and Image.resize (mode "F", BOX and BILINEAR) and the numpy float32
 *                  arithmetic (pairwise sums, weak-scalar rounding, half-to-even rounding) it relies on,
 *                  so that its 28x28 input is Python's to the bit;
 *   network        MNISTSumNet's forward in eval mode (mnist_sum/model.py, mnist_sum/predict.py): the conv
 *                  stack and first Linear layer in WebAssembly SIMD (web/kernel.c, embedded below), the rest
 *                  in JavaScript; all of it in JavaScript where WebAssembly SIMD is missing.
 *
 *   const reader = MnistSumReader.fromBuffer(bytes);        // the model file (python -m mnist_sum.webmodel)
 *   const p = reader.read(rgba, width, height, number);    // null when blank, else digit, sum, probs, input28
 *   const e = reader.explain28(reader.toInput28(rgba, width, height), number);  // how it adds (explanation.py)
 */
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory();
  else root.MnistSumReader = factory();
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const FORMAT = "mnist-sum-web/1";
  const MAX_PIXELS = 4096 * 4096;
  const WORK_SIDE = 320, MIN_CONTRAST = 32, PALE_INK_CONTRAST = 96;
  const MIN_INK_PIXELS = 20, MIN_INK_FRACTION = 2e-4;
  const BOX = 20, SCALE = 4, MNIST_STROKE = 2.4;
  const MNIST_MEAN = 0.1307, MNIST_STD = 0.3081, MAX_SUM = 18;
  const f32 = Math.fround;

  // --- numpy's arithmetic ------------------------------------------------------------------------------

  /** Python's round(): halves go to the even neighbour. */
  function roundHalfEven(x) {
    const r = Math.round(x);
    return (r - x === 0.5 && r % 2 !== 0) ? r - 1 : r;
  }

  /** numpy's pairwise sum of n values a[off + i*stride], each addition rounded by rnd (f32 or none). */
  function pairwise(a, off, n, stride, rnd) {
    if (n < 8) {
      let s = rnd(0);
      for (let i = 0; i < n; i++) s = rnd(s + a[off + i * stride]);
      return s;
    }
    if (n <= 128) {  // eight running sums, combined as a tree
      let r0 = a[off], r1 = a[off + stride], r2 = a[off + 2 * stride], r3 = a[off + 3 * stride];
      let r4 = a[off + 4 * stride], r5 = a[off + 5 * stride], r6 = a[off + 6 * stride], r7 = a[off + 7 * stride];
      let i = 8;
      for (; i < n - (n % 8); i += 8) {
        const p = off + i * stride;
        r0 = rnd(r0 + a[p]); r1 = rnd(r1 + a[p + stride]);
        r2 = rnd(r2 + a[p + 2 * stride]); r3 = rnd(r3 + a[p + 3 * stride]);
        r4 = rnd(r4 + a[p + 4 * stride]); r5 = rnd(r5 + a[p + 5 * stride]);
        r6 = rnd(r6 + a[p + 6 * stride]); r7 = rnd(r7 + a[p + 7 * stride]);
      }
      let s = rnd(rnd(rnd(r0 + r1) + rnd(r2 + r3)) + rnd(rnd(r4 + r5) + rnd(r6 + r7)));
      for (; i < n; i++) s = rnd(s + a[off + i * stride]);
      return s;
    }
    let n2 = Math.floor(n / 2);
    n2 -= n2 % 8;
    return rnd(pairwise(a, off, n2, stride, rnd) + pairwise(a, off + n2 * stride, n - n2, stride, rnd));
  }
  const same = (x) => x;
  const sum32 = (a) => pairwise(a, 0, a.length, 1, f32);

  /** A float32 (h, w) image: numpy's ink arrays. */
  function image(h, w, data) {
    return { h, w, data: data || new Float32Array(h * w) };
  }

  /** Row sums (numpy sum(axis=1): pairwise per row) and column sums (axis=0: row after row). */
  function rowSums(im) {
    const out = new Float32Array(im.h);
    for (let y = 0; y < im.h; y++) out[y] = pairwise(im.data, y * im.w, im.w, 1, f32);
    return out;
  }
  function colSums(im) {
    const out = new Float32Array(im.w);
    if (im.w === 1) { out[0] = sum32(im.data); return out; }  // numpy drops the unit axis: one pairwise sum
    for (let y = 0; y < im.h; y++) for (let x = 0; x < im.w; x++) out[x] = f32(out[x] + im.data[y * im.w + x]);
    return out;
  }

  function median(values) {
    const s = Float64Array.from(values).sort();
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }

  /** The outermost pixels (top row, bottom row, left column, right column) of an (h, w) band. */
  function border(band, h, w) {
    const out = [];
    for (let x = 0; x < w; x++) out.push(band[x]);
    for (let x = 0; x < w; x++) out.push(band[(h - 1) * w + x]);
    for (let y = 0; y < h; y++) out.push(band[y * w]);
    for (let y = 0; y < h; y++) out.push(band[y * w + w - 1]);
    return out;
  }

  // --- Pillow ------------------------------------------------------------------------------------------

  /** Pillow's Image.reduce of a uint8 band: box means, rounded with its fixed-point multiplier. */
  function reduceBand(band, h, w, xs, ys) {
    const ow = Math.ceil(w / xs), oh = Math.ceil(h / ys);
    const out = new Int16Array(ow * oh);
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * ys, y1 = Math.min(y0 + ys, h);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * xs, x1 = Math.min(x0 + xs, w);
        const n = (y1 - y0) * (x1 - x0);
        let s = n >> 1;  // Pillow's "amend": round to nearest
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s += band[y * w + x];
        const multiplier = Math.trunc(f32(4294967296 / (256 * n)));  // float32 division, as in Reduce.c
        out[oy * ow + ox] = Math.floor(s * multiplier / 16777216);
      }
    }
    return out;
  }

  const FILTERS = {
    box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
    bilinear: { support: 1, f: (x) => { x = Math.abs(x); return x < 1 ? 1 - x : 0; } },
  };

  /** Pillow's resampling coefficients (precompute_coeffs): per output pixel, first input and weights. */
  function coefficients(inSize, outSize, filter) {
    const scale = inSize / outSize, filterscale = Math.max(scale, 1);
    const support = filter.support * filterscale, inv = 1 / filterscale;
    const rows = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale;
      const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
      const k = new Float64Array(Math.max(xmax, 0));
      let ww = 0;
      for (let x = 0; x < xmax; x++) { k[x] = filter.f((x + xmin - center + 0.5) * inv); ww += k[x]; }
      if (ww !== 0) for (let x = 0; x < xmax; x++) k[x] /= ww;
      rows.push({ xmin, k });
    }
    return rows;
  }

  /** Pillow's Image.resize of a mode "F" image: horizontal pass, then vertical, in double, stored as float32. */
  function resize(im, ow, oh, filter) {
    if (ow === im.w && oh === im.h) return image(im.h, im.w, im.data.slice());
    let src = im;
    if (ow !== im.w) {
      const cs = coefficients(im.w, ow, filter), tmp = image(im.h, ow);
      for (let y = 0; y < im.h; y++) {
        for (let xx = 0; xx < ow; xx++) {
          const { xmin, k } = cs[xx];
          let ss = 0;
          for (let x = 0; x < k.length; x++) ss += im.data[y * im.w + x + xmin] * k[x];
          tmp.data[y * ow + xx] = ss;
        }
      }
      src = tmp;
    }
    if (oh === src.h) return src;
    const cs = coefficients(src.h, oh, filter), out = image(oh, ow);
    for (let yy = 0; yy < oh; yy++) {
      const { xmin: ymin, k } = cs[yy];
      for (let x = 0; x < ow; x++) {
        let ss = 0;
        for (let y = 0; y < k.length; y++) ss += src.data[(y + ymin) * ow + x] * k[y];
        out.data[yy * ow + x] = ss;
      }
    }
    return out;
  }

  // --- 1. RGBA pixels -> ink (preprocess._ink_from_array) -----------------------------------------------

  /** Band c of RGBA pixels (after `map`, if given) as a uint8 (h, w) array. */
  function bandOf(rgba, n, c, map) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = map ? map(rgba, i, c) : rgba[i * 4 + c];
    return out;
  }

  /** preprocess._band_distance: |reduced band - paper| at working resolution, with its size. */
  function bandDistance(band, h, w, factor, paper) {
    let small = band, sh = h, sw = w;
    if (factor > 1) {
      const xs = Math.min(factor, w), ys = Math.min(factor, h);
      small = reduceBand(band, h, w, xs, ys);
      sh = Math.ceil(h / ys); sw = Math.ceil(w / xs);
    }
    if (paper === undefined) paper = Math.trunc(median(border(small, sh, sw)));
    const d = new Int16Array(sh * sw);
    for (let i = 0; i < d.length; i++) d[i] = Math.abs(small[i] - paper);
    return { h: sh, w: sw, d };
  }

  /** preprocess._scale_ink: contrast -> ink in [0, 1] (noise floor, saturation); null for too little ink. */
  function scaleInk(dist, factor) {
    const perPx = factor * factor;
    let peak = 0;
    for (let i = 0; i < dist.d.length; i++) peak = Math.max(peak, dist.d[i]);
    if (peak < MIN_CONTRAST) return null;
    const floor = 0.15 * peak, gain = 1 / (0.7 * peak);
    const ink = image(dist.h, dist.w);
    for (let i = 0; i < ink.data.length; i++) ink.data[i] = Math.min(Math.max((dist.d[i] - floor) * gain, 0), 1);
    const fullInk = f32(sum32(ink.data) * perPx);
    return fullInk < Math.max(MIN_INK_PIXELS, MIN_INK_FRACTION * ink.data.length * perPx) ? null : ink;
  }

  /** RGBA pixels (row-major, 4 bytes a pixel) -> ink at working resolution, or null when nothing is drawn. */
  function inkMap(rgba, w, h) {
    const n = w * h;
    const factor = Math.ceil(Math.max(w, h) / WORK_SIDE);
    const alpha = bandOf(rgba, n, 3);
    if (median(border(alpha, h, w)) < 128) {  // transparent canvas: the ink is what is opaque
      return scaleInk(bandDistance(alpha, h, w, factor, 0), factor);
    }
    let minAlpha = 255;
    for (let y = 0; y < h; y += factor) {
      for (let x = 0; x < w; x += factor) minAlpha = Math.min(minAlpha, alpha[y * w + x]);
    }
    // see-through holes are shown as white paper; integer arithmetic as numpy's uint16
    const overWhite = (p, i, c) => Math.floor((p[i * 4 + c] * p[i * 4 + 3] + 255 * (255 - p[i * 4 + 3])) / 255);
    const map = minAlpha < 255 ? overWhite : null;
    const dist = bandDistance(bandOf(rgba, n, 1, map), h, w, factor);
    let peak = 0;
    for (let i = 0; i < dist.d.length; i++) peak = Math.max(peak, dist.d[i]);
    if (peak < PALE_INK_CONTRAST) {  // pale ink (yellow, cyan): look in red and blue as well
      for (const c of [0, 2]) {
        const other = bandDistance(bandOf(rgba, n, c, map), h, w, factor);
        for (let i = 0; i < dist.d.length; i++) dist.d[i] = Math.max(dist.d[i], other.d[i]);
      }
    }
    return scaleInk(dist, factor);
  }

  // --- 2. MNIST-style normalization (preprocess.normalize_ink) -------------------------------------------

  function crop(im, trim = 0.002) {
    const bounds = [];
    for (const profile of [rowSums(im), colSums(im)]) {
      const cum = new Float32Array(profile.length);
      let s = 0;
      for (let i = 0; i < profile.length; i++) cum[i] = s = f32(s + profile[i]);
      const total = cum[cum.length - 1];
      const low = f32(f32(trim) * total), high = f32(f32(1 - trim) * total);
      let lo = 0, hi = 0;
      for (let i = 0; i < cum.length; i++) { if (cum[i] <= low) lo++; if (cum[i] < high) hi++; }
      bounds.push([lo, Math.max(hi, lo) + 1]);
    }
    const [[top, bottom], [left, right]] = bounds;
    const b = Math.min(bottom, im.h), r = Math.min(right, im.w);
    const out = image(Math.max(b - top, 0), Math.max(r - left, 0));
    for (let y = 0; y < out.h; y++) {
      out.data.set(im.data.subarray((top + y) * im.w + left, (top + y) * im.w + r), y * out.w);
    }
    return out;
  }

  function fit(im, side) {
    const scale = side / Math.max(im.h, im.w);
    const ow = Math.max(1, roundHalfEven(im.w * scale)), oh = Math.max(1, roundHalfEven(im.h * scale));
    return resize(im, ow, oh, scale > 1 ? FILTERS.bilinear : FILTERS.box);
  }

  /** preprocess.stroke_width: 2 * area / perimeter, in numpy's float32 arithmetic. */
  function strokeWidth(im) {
    const { h, w, data } = im;
    const dy = new Float32Array(Math.max(h - 1, 0) * w), dx = new Float32Array(h * Math.max(w - 1, 0));
    for (let y = 0; y + 1 < h; y++) {
      for (let x = 0; x < w; x++) dy[y * w + x] = Math.abs(data[(y + 1) * w + x] - data[y * w + x]);
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0; x + 1 < w; x++) dx[y * (w - 1) + x] = Math.abs(data[y * w + x + 1] - data[y * w + x]);
    }
    const tv = f32(sum32(dy) + sum32(dx));
    let perimeter = f32(f32(tv * f32(Math.PI)) / 4);
    if (perimeter < 1e-6) perimeter = f32(1e-6);
    return f32(f32(2 * sum32(data)) / perimeter);
  }

  /** 3x3 grey dilation (sign 1) or erosion (sign -1), edges padded with zeros. */
  function max3(im, sign = 1) {
    const { h, w, data } = im, rows = new Float32Array(h * w), out = image(h, w);
    const best = sign > 0 ? Math.max : Math.min;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = y * w + x;
      rows[i] = best(y > 0 ? data[i - w] : 0, data[i], y + 1 < h ? data[i + w] : 0);
    }
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = y * w + x;
      out.data[i] = best(x > 0 ? rows[i - 1] : 0, rows[i], x + 1 < w ? rows[i + 1] : 0);
    }
    return out;
  }

  function setStrokeWidth(im, target) {
    const pad = Math.ceil(target);
    let ink = image(im.h + 2 * pad, im.w + 2 * pad);
    for (let y = 0; y < im.h; y++) ink.data.set(im.data.subarray(y * im.w, (y + 1) * im.w), (y + pad) * ink.w + pad);
    let steps = (target - strokeWidth(ink)) / 2;  // a 3x3 filter changes the width by 2 px
    if (steps > 0) {
      const whole = Math.trunc(steps), frac = steps - whole;
      for (let i = 0; i < whole; i++) ink = max3(ink);
      if (frac < 0.05) return ink;
      const grown = max3(ink), a = f32(1 - frac), b = f32(frac);
      for (let i = 0; i < ink.data.length; i++) ink.data[i] = f32(a * ink.data[i]) + f32(b * grown.data[i]);
      return ink;
    }
    steps = Math.min(-steps, Math.max(0, (strokeWidth(ink) - 3) / 2));  // strokes stay at least 3 px wide
    for (let i = 0, n = roundHalfEven(steps); i < n; i++) ink = max3(ink, -1);
    return ink;
  }

  /** numpy's default (linear) percentile of float32 values, q in [0, 100]. */
  function percentile32(values, q) {
    const s = Float32Array.from(values).sort();
    const v = (q / 100) * (s.length - 1), lo = Math.floor(v), hi = Math.min(lo + 1, s.length - 1), t = v - lo;
    const d = f32(s[hi] - s[lo]);
    return t >= 0.5 ? f32(s[hi] - f32(d * f32(1 - t))) : f32(s[lo] + f32(d * f32(t)));
  }

  function placeByMass(small) {
    const out = new Float32Array(784);
    const total = sum32(small.data);
    if (!(total > 0)) return out;
    const rows = rowSums(small), cols = colSums(small);
    const cy = pairwise(Float64Array.from(rows, (v, i) => v * i), 0, small.h, 1, same) / total;  // float64, as numpy
    const cx = pairwise(Float64Array.from(cols, (v, i) => v * i), 0, small.w, 1, same) / total;
    const top = Math.min(Math.max(roundHalfEven(13.5 - cy), 0), 28 - small.h);
    const left = Math.min(Math.max(roundHalfEven(13.5 - cx), 0), 28 - small.w);
    for (let y = 0; y < small.h; y++) for (let x = 0; x < small.w; x++) {
      out[(top + y) * 28 + left + x] = Math.min(Math.max(small.data[y * small.w + x], 0), 1);
    }
    return out;
  }

  /** Ink map -> (28, 28) float32 in [0, 1]: cropped, stroke width normalized, 20 px box, centred by mass. */
  function normalizeInk(ink) {
    let big = fit(crop(ink), BOX * SCALE);
    big = setStrokeWidth(big, MNIST_STROKE * SCALE);
    const core = big.data.filter((v) => v > f32(0.1));
    if (core.length) {  // a thin pen on a big canvas arrives as faint ink; MNIST strokes have solid cores
      const divisor = f32(Math.max(percentile32(core, 90), 0.25));
      for (let i = 0; i < big.data.length; i++) big.data[i] = Math.min(Math.max(big.data[i] / divisor, 0), 1);
    }
    big = fit(crop(big), BOX * SCALE);  // dilation grew the box; fit it again
    const side = (n) => Math.max(1, roundHalfEven(n / SCALE));
    const small = resize(big, side(big.w), side(big.h), FILTERS.box);
    return placeByMass(small);
  }

  /** preprocess.to_input28 for RGBA pixels: Float32Array(784) in [0, 1], or null when nothing is drawn. */
  function toInput28(rgba, width, height) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
      throw new RangeError(`width and height must be whole numbers of pixels, got ${width}x${height}`);
    }
    if (width * height > MAX_PIXELS) {
      throw new RangeError(`image of ${width}x${height} pixels is too large: at most ${MAX_PIXELS} pixels`);
    }
    if (!rgba || rgba.length !== width * height * 4) {
      throw new RangeError(`expected ${width}x${height}x4 RGBA bytes, got ${rgba ? rgba.length : rgba}`);
    }
    if (width * height === 0) return null;
    const ink = inkMap(rgba, width, height);
    return ink === null ? null : normalizeInk(ink);
  }

  // --- 3. the network (model.MNISTSumNet in eval mode, predict.Predictor.predict28) ----------------------

  /** The model file: uint32 header length, JSON header, zero padding to 4 bytes, little-endian float32 data. */
  function parseModel(buffer) {
    const bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer)
      : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    if (!littleEndian) throw new Error("the reader needs a little-endian platform");
    if (bytes.length < 4) throw new Error("model file too short");
    const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    if (4 + headerLength > bytes.length) throw new Error("model file truncated (header)");
    let header;
    try {
      header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLength)));
    } catch (e) {
      throw new Error(`model file header is not JSON: ${e.message}`);
    }
    if (header.format !== FORMAT) throw new Error(`model file format ${header.format}, expected ${FORMAT}`);
    if (!Number.isInteger(header.data_offset) || header.data_offset % 4 || !Array.isArray(header.tensors)) {
      throw new Error("model file header is corrupt");
    }
    // copy once so the float32 views are aligned whatever buffer the bytes arrived in
    const data = bytes.slice(header.data_offset);
    const tensors = {};
    for (const t of header.tensors) {
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (t.offset % 4 || t.offset + 4 * count > data.length) {
        throw new Error(`model file truncated or corrupt at ${t.name}`);
      }
      tensors[t.name] = new Float32Array(data.buffer, t.offset, count);
    }
    return { header, tensors };
  }

  // web/kernel.wasm (source web/kernel.c), written here by `python web/build_kernel.py`
  const KERNEL_WASM = "AGFzbQEAAAABCQJgAX8Bf2AAAAMDAgABBAUBcAEBAQUDAQBwBgkBfwFB0J3nAgsHHQMGbWVtb3J5AgAGYnVmZmVyAAAHZm9yd2FyZAABCrAXAiUBAX9BACEBAkAgAEEMSw0AIABBAnRBgIiAgABqKAIAIQELIAELhxcIA38BewR/BnsBfwh7AX8CfUEAIQBBkKGAgAAhAQNAIABBGGwhAiAAQQJ0QYDTgIAAav0JAgAhA0HAiICAACEEQQAhBQNAQQAhBiABIQcgAyEIIAMhCSADIQogAyELIAMhDCADIQ0DQCAEIAZqIg79AAQAIAdBcGr9CQIAIg/95gEgDf3kASAOQQRq/QACACAHQXRq/QkCACIQ/eYB/eQBIA5BCGr9AAMAIAdBeGr9CQIAIhH95gH95AEgDkEMav0AAgAgB0F8av0JAgAiEv3mAf3kASAOQRBq/QAEACITIAf9CQIAIhT95gH95AEhDSAPIA5B0ABq/QAEACIV/eYBIAj95AEgECAOQdQAav0AAgD95gH95AEgESAOQdgAav0AAwD95gH95AEgEiAOQdwAav0AAgD95gH95AEgDkHgAGr9AAQAIBT95gH95AEhCCAPIA5BwABq/QAEACIW/eYBIAn95AEgECAOQcQAav0AAgD95gH95AEgESAOQcgAav0AAwD95gH95AEgEiAOQcwAav0AAgD95gH95AEgFSAU/eYB/eQBIQkgDyAOQTBq/QAEACIV/eYBIAr95AEgECAOQTRq/QACAP3mAf3kASARIA5BOGr9AAMA/eYB/eQBIBIgDkE8av0AAgD95gH95AEgFiAU/eYB/eQBIQogDyAOQSBq/QAEACIW/eYBIAv95AEgECAOQSRq/QACAP3mAf3kASARIA5BKGr9AAMA/eYB/eQBIBIgDkEsav0AAgD95gH95AEgFSAU/eYB/eQBIQsgDyAT/eYBIAz95AEgECAOQRRq/QACAP3mAf3kASARIA5BGGr9AAMA/eYB/eQBIBIgDkEcav0AAgD95gH95AEgFiAU/eYB/eQBIQwgB0EUaiEHIAZB8ABqIgZBsARHDQALIAUgAmpB4ABsIg5BgKKwgQBqIAj9DAAAAAAAAAAAAAAAAAAAAAAiFv3pAf0LBAAgDkHwobCBAGogCSAW/ekB/QsEACAOQeChsIEAaiAKIBb96QH9CwQAIA5B0KGwgQBqIAsgFv3pAf0LBAAgDkHAobCBAGogDCAW/ekB/QsEACAOQbChsIEAaiANIBb96QH9CwQAIARB8ABqIQQgBUEBaiIFQRhHDQALIAFB5ABqIQEgAEEBaiIAQcAARw0AC0EAIRdBsN7GgQAhAkGwobCBACEAA0AgACEEIAIhBUEAIQEDQEEAIQYgBSEOA0AgDiAEIAZqIgdB0AD8CgAAIA5B0ABqIAdB4ABqQdAA/AoAACAOQaABaiAHQcABakHQAPwKAAAgDkHwAWogB0GgAmpB0AD8CgAAIA5BwAJqIAdBgANqQdAA/AoAACAOQZADaiAHQeADakHQAPwKAAAgDkHgA2ogB0HABGpB0AD8CgAAIA5BsARqIAdBoAVqQdAA/AoAACAOQYAFaiAHQYAGakHQAPwKAAAgDkHQBWogB0HgBmpB0AD8CgAAIA5BoAZqIAdBwAdqQdAA/AoAACAOQfAGaiAHQaAIakHQAPwKAAAgDkHAB2ogB0GACWpB0AD8CgAAIA5BkAhqIAdB4AlqQdAA/AoAACAOQeAIaiAHQcAKakHQAPwKAAAgDkGwCWogB0GgC2pB0AD8CgAAIA5BgApqIAdBgAxqQdAA/AoAACAOQdAKaiAHQeAMakHQAPwKAAAgDkGgC2ogB0HADWpB0AD8CgAAIA5B8AtqIAdBoA5qQdAA/AoAACAOQcAMaiEOIAZBBGoiBkEURw0ACyAEQeAAaiEEIAVBwD5qIQUgAUEBaiIBQQVHDQALIABBgBJqIQAgAkHAuAJqIQIgF0EBaiIXQcAARw0AC0EAIQFBsN7GgQAhAgNAQYDVgIAAIQRBACEFA0BBACEGIAIhDiAFQQJ0IgdBgNWygABq/QkCACIQIREgB0EEckGA1bKAAGr9CQIAIhIhFCAHQQxyQYDVsoAAav0JAgAiCCEJIAdBCHJBgNWygABq/QkCACIKIQsDQCAOQRBq/QAEACIPIAQgBmoiB/0JAgAiDP3mASAR/eQBIREgDyAHQYCWAWr9CQIAIg395gEgCP3kASEIIA8gB0GA5ABq/QkCACIT/eYBIAr95AEhCiAPIAdBgDJq/QkCACIV/eYBIBT95AEhFCAO/QAEACIPIAz95gEgEP3kASEQIA8gDf3mASAJ/eQBIQkgDyAT/eYBIAv95AEhCyAPIBX95gEgEv3kASESIA5BwAxqIQ4gBkEEaiIGQYAyRw0ACyAFQcAMbCABQQJ0aiIOQYDHuYEAaiAIIBb96QH9CwQAIA5B8Ma5gQBqIAkgFv3pAf0LBAAgDkHAurmBAGogCiAW/ekB/QsEACAOQbC6uYEAaiALIBb96QH9CwQAIA5BgK65gQBqIBQgFv3pAf0LBAAgDkHwrbmBAGogEiAW/ekB/QsEACAOQcChuYEAaiARIBb96QH9CwQAIA5BsKG5gQBqIBAgFv3pAf0LBAAgBEGAyAFqIQQgBUH8AEkhDiAFQQRqIQUgDg0ACyACQSBqIQIgAUGIA0khDiABQQhqIQEgDg0AC0EAIQBBgNmygAAhBkGw/uKCACEXQbDhxYEAIQEDQCAAQcAMbEGw4cWBAGohAiAAQQJ0QYCBs4AAav0JAgAhEEGwobmBACEFQQAhBANAQQAhDiAFIQcgECEPA0AgB/0ABAAgBiAOav0JAgD95gEgD/3kASEPIAdBwAxqIQcgDkEEaiIOQYAERw0ACyACIARBAnRqIA8gFv3pAf0LBAAgBUEQaiEFIARBjANJIQ4gBEEEaiEEIA4NAAtBACEEIBchBwNAIAcgASAEaiIO/QkCACAOQQhqKgIA/SABIA5BEGoqAgD9IAIgDkEYaioCAP0gAyIPIA5BBGr9CQIAIA5BDGoqAgD9IAEgDkEUaioCAP0gAiAOQRxqKgIA/SADIhAgDyAQ/UT9UiIPIA5B0ABq/QkCACAOQdgAaioCAP0gASAOQeAAaioCAP0gAiAOQegAaioCAP0gAyIQIA8gEP1E/VIiDyAOQdQAav0JAgAgDkHcAGoqAgD9IAEgDkHkAGoqAgD9IAIgDkHsAGoqAgD9IAMiECAPIBD9RP1S/QsDACAHQRBqIA5BIGr9CQIAIA5BKGoqAgD9IAEgDkEwaioCAP0gAiAOQThqKgIA/SADIg8gDkEkav0JAgAgDkEsaioCAP0gASAOQTRqKgIA/SACIA5BPGoqAgD9IAMiECAPIBD9RP1SIg8gDkHwAGr9CQIAIA5B+ABqKgIA/SABIA5BgAFqKgIA/SACIA5BiAFqKgIA/SADIhAgDyAQ/UT9UiIPIA5B9ABq/QkCACAOQfwAaioCAP0gASAOQYQBaioCAP0gAiAOQYwBaioCAP0gAyIQIA8gEP1E/VL9CwMAIAdBIGogDkHAAGoqAgAiGCAOQcQAaioCACIZIBggGV4bIhggDkGQAWoqAgAiGSAYIBleGyIYIA5BlAFqKgIAIhkgGCAZXhs4AgAgB0EkaiAOQcgAaioCACIYIA5BzABqKgIAIhkgGCAZXhsiGCAOQZgBaioCACIZIBggGV4bIhggDkGcAWoqAgAiGSAYIBleGzgCACAHQShqIQcgBEGgAWoiBEHADEcNAAsgAUHADGohASAXQZADaiEXIAZBgARqIQYgAEEBaiIAQQpHDQALQQAhBUGwgbOAACEEA0BBfCEHQQAhDiAWIQ8DQCAPIAQgDmoiBv0ABAAgDkGw/uKCAGr9AAQA/eYB/eQBIAZBEGr9AAQAIA5BwP7iggBq/QAEAP3mAf3kASEPIA5BIGohDiAHQQhqIgdB5AdJDQALIAVBAnQiDkGwkbCBAGogD/0fAiAP/R8DkiAP/R8AIA/9HwGSIA5BsIGwgQBqKgIAkpI4AgAgBEGgH2ohBCAFQQFqIgVBgARHDQALCws7AQBBgAgLNEAEAACAEAAAgCkAAIAqAACAqgwAgKwMAIDADACwwAwAsAAsALAILACwECwAsFAuALBwMQA=";

  /** An instance of the WebAssembly kernel, or null where WebAssembly SIMD is missing (plain JavaScript then). */
  function loadKernel() {
    if (typeof WebAssembly !== "object" || !KERNEL_WASM) return null;
    const bytes = typeof atob === "function" ? Uint8Array.from(atob(KERNEL_WASM), (c) => c.charCodeAt(0))
      : new Uint8Array(Buffer.from(KERNEL_WASM, "base64"));
    if (!WebAssembly.validate(bytes)) return null;
    return new WebAssembly.Instance(new WebAssembly.Module(bytes), {});  // < 4 KB: compiles synchronously anywhere
  }

  const SHAPES = {
    "conv.0.weight": [64, 1, 5, 5], "conv.0.bias": [64], "conv.2.weight": [128, 64, 5, 5], "conv.2.bias": [128],
    "conv.4.weight": [10, 128, 1, 1], "conv.4.bias": [10],
    "classifier.0.weight": [512, 1000], "classifier.0.bias": [512],
    "classifier.3.weight": [256, 512], "classifier.3.bias": [256],
    "classifier.6.weight": [10, 256], "classifier.6.bias": [10],
    "mix.0.weight": [50, 20], "mix.0.bias": [50], "mix.2.weight": [20, 50], "mix.2.bias": [20],
  };
  for (const [bn, n] of [["classifier.1", 512], ["classifier.4", 256]]) {
    for (const p of ["weight", "bias", "running_mean", "running_var"]) SHAPES[`${bn}.${p}`] = [n];
  }

  // the activations explain28 shows: each conv layer's output after its ReLU, (channels, side, side)
  const MAPS = [{ name: "conv1", channels: 64, side: 24 }, { name: "conv2", channels: 128, side: 20 },
    { name: "conv3", channels: 10, side: 20 }];

  function relu(a) {
    for (let i = 0; i < a.length; i++) if (a[i] < 0) a[i] = 0;
    return a;
  }

  /** out[m] = b[m] + sum_k W[m, k] x[k]: a Linear layer on one vector. */
  function linear(W, b, x, out) {
    const n = x.length;
    for (let m = 0; m < out.length; m++) {
      let s = 0;
      for (let k = 0, row = m * n; k < n; k++) s += W[row + k] * x[k];
      out[m] = s + b[m];
    }
    return out;
  }

  /** BatchNorm1d in eval mode: the running statistics, eps 1e-5. */
  function batchNorm(t, prefix, x) {
    const w = t[`${prefix}.weight`], b = t[`${prefix}.bias`];
    const mean = t[`${prefix}.running_mean`], v = t[`${prefix}.running_var`];
    for (let i = 0; i < x.length; i++) x[i] = (x[i] - mean[i]) / Math.sqrt(v[i] + 1e-5) * w[i] + b[i];
    return x;
  }

  function softmax(logits) {
    const top = Math.max(...logits);
    const e = Array.from(logits, (v) => Math.exp(v - top));
    const total = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / total);
  }

  function argmax(a) {
    let best = 0;
    for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
    return best;
  }

  /** The forward pass with buffers allocated once per reader (a reader is not re-entrant); kernel: an
   * instance of web/kernel.wasm, or null for plain JavaScript throughout. */
  function makeNetwork(t, kernel) {
    const h1 = new Float64Array(512), h2 = new Float64Array(256), logits = new Float64Array(10);
    const mixIn = new Float64Array(20), mixHidden = new Float64Array(50), sumLogits = new Float64Array(20);
    const W1 = t["conv.0.weight"], b1 = t["conv.0.bias"], W2 = t["conv.2.weight"], b2 = t["conv.2.bias"];
    const W3 = t["conv.4.weight"], b3 = t["conv.4.bias"];
    const wasm = kernel ? kernel.exports : null;
    const view = (which, length) => new Float32Array(wasm.memory.buffer, wasm.buffer(which), length);
    if (wasm) {  // the kernel's weights, in PyTorch's layouts (see web/kernel.c for the numbering)
      const weights = [W1, b1, W2, b2, W3, b3, t["classifier.0.weight"], t["classifier.0.bias"]];
      weights.forEach((w, i) => view(i + 1, w.length).set(w));
    }
    // plain JavaScript's activations, only where there is no kernel (it holds its own)
    const size = (n) => new Float32Array(wasm ? 0 : n);
    const a1Size = 64 * 24 * 24, a2Size = 128 * 400, a3Size = 10 * 400;
    const a1 = size(a1Size);  // conv 1 -> 64, 5x5: (64, 24, 24)
    const cols = size(1600 * 400);  // im2col of a1 for conv 2: (64*5*5, 20*20)
    const a2 = size(a2Size);  // conv 64 -> 128: (128, 20, 20)
    const a3 = size(a3Size);  // conv 128 -> 10, 1x1: (10, 20, 20)
    const features = size(1000);  // max-pooled (10, 10, 10), flattened

    function conv1(x) {
      for (let c = 0; c < 64; c++) {
        const out = a1.subarray(c * 576, (c + 1) * 576);
        out.fill(b1[c]);
        for (let ky = 0; ky < 5; ky++) for (let kx = 0; kx < 5; kx++) {
          const w = W1[c * 25 + ky * 5 + kx];
          for (let y = 0; y < 24; y++) {
            const src = (y + ky) * 28 + kx, dst = y * 24;
            for (let xx = 0; xx < 24; xx++) out[dst + xx] += w * x[src + xx];
          }
        }
      }
      relu(a1);
    }

    function conv2() {
      // im2col: row (c, ky, kx), column (y, x) of the 20x20 output
      for (let c = 0; c < 64; c++) for (let ky = 0; ky < 5; ky++) for (let kx = 0; kx < 5; kx++) {
        const row = ((c * 5 + ky) * 5 + kx) * 400;
        for (let y = 0; y < 20; y++) {
          const src = c * 576 + (y + ky) * 24 + kx;
          cols.set(a1.subarray(src, src + 20), row + y * 20);
        }
      }
      // a2 (128, 400) = W2 (128, 1600) x cols (1600, 400), four output channels at a time
      for (let m = 0; m < 128; m += 4) {
        const o0 = m * 400, o1 = o0 + 400, o2 = o1 + 400, o3 = o2 + 400;
        a2.fill(b2[m], o0, o0 + 400); a2.fill(b2[m + 1], o1, o1 + 400);
        a2.fill(b2[m + 2], o2, o2 + 400); a2.fill(b2[m + 3], o3, o3 + 400);
        for (let k = 0; k < 1600; k++) {
          const w0 = W2[m * 1600 + k], w1 = W2[(m + 1) * 1600 + k];
          const w2 = W2[(m + 2) * 1600 + k], w3 = W2[(m + 3) * 1600 + k];
          const r = k * 400;
          for (let n = 0; n < 400; n++) {
            const v = cols[r + n];
            a2[o0 + n] += w0 * v; a2[o1 + n] += w1 * v; a2[o2 + n] += w2 * v; a2[o3 + n] += w3 * v;
          }
        }
      }
      relu(a2);
    }

    function conv3AndPool() {
      for (let m = 0; m < 10; m++) {
        const o = m * 400;
        a3.fill(b3[m], o, o + 400);
        for (let k = 0; k < 128; k++) {
          const w = W3[m * 128 + k], r = k * 400;
          for (let n = 0; n < 400; n++) a3[o + n] += w * a2[r + n];
        }
      }
      relu(a3);
      for (let c = 0; c < 10; c++) for (let y = 0; y < 10; y++) for (let x = 0; x < 10; x++) {
        const i = c * 400 + 2 * y * 20 + 2 * x;
        features[c * 100 + y * 10 + x] = Math.max(a3[i], a3[i + 1], a3[i + 20], a3[i + 21]);
      }
    }

    /** input28 -> the network's input x (Float32Array(784), MNIST-normalized): the kernel's IN, else a new array. */
    function normalized(input28, x) {
      for (let i = 0; i < 784; i++) x[i] = (input28[i] - MNIST_MEAN) / MNIST_STD;
      return x;
    }

    const lastX = new Float32Array(784);  // the input of the last trunk run, whose activations the buffers hold
    let held = false;  // whether lastX, the activations and `logits` belong together (no trunk run yet: not)

    /** The image trunk (conv stack and classifier) on input28 -> digit logits (this network's own Float64Array(10),
     * overwritten by the next run). reuse: skip the run when the buffers already hold this very input's. */
    function trunk(input28, reuse = false) {
      if (reuse && held) {
        const x = normalized(input28, new Float32Array(784));
        let same = true;
        for (let i = 0; i < 784 && same; i++) same = x[i] === lastX[i];
        if (same) return logits;
      }
      held = false;
      const x = normalized(input28, wasm ? view(0, 784) : new Float32Array(784));
      if (wasm) {  // conv stack and first Linear layer in WebAssembly
        wasm.forward();
        h1.set(view(9, 512));
      } else {
        conv1(x);
        conv2();
        conv3AndPool();
        linear(t["classifier.0.weight"], t["classifier.0.bias"], features, h1);
      }
      relu(batchNorm(t, "classifier.1", h1));
      relu(batchNorm(t, "classifier.4", linear(t["classifier.3.weight"], t["classifier.3.bias"], h1, h2)));
      linear(t["classifier.6.weight"], t["classifier.6.bias"], h2, logits);
      lastX.set(x);
      held = true;
      return logits;
    }

    /** The mix head: digit probabilities (10) and a number 0-9 (one-hot) -> sum logits (this network's own
     * Float64Array(20), overwritten by the next call). */
    function mix(digitProbs, number) {
      for (let i = 0; i < 10; i++) { mixIn[i] = digitProbs[i]; mixIn[10 + i] = i === number ? 1 : 0; }
      relu(linear(t["mix.0.weight"], t["mix.0.bias"], mixIn, mixHidden));
      return linear(t["mix.2.weight"], t["mix.2.bias"], mixHidden, sumLogits);
    }

    /** Copies of the last trunk run's activations after each conv layer's ReLU, (C, side, side) row-major. */
    function maps() {
      const buffers = wasm ? [view(10, a1Size), view(11, a2Size), view(12, a3Size)] : [a1, a2, a3];
      return MAPS.map((m, i) => ({ ...m, data: buffers[i].slice() }));  // slice: the buffers are reused next reading
    }

    /** input28 Float32Array(784) in [0, 1], one-hot number index -> digit logits, sum logits (plain arrays). */
    function forward(input28, number) {
      const digitLogits = Array.from(trunk(input28));
      return { digitLogits, sumLogits: Array.from(mix(softmax(digitLogits), number)) };
    }

    return { forward, trunk, mix, maps };
  }

  function checkInput28(input28) {
    if (!input28 || input28.length !== 784) {
      throw new RangeError(`input28 must hold 784 values, got ${input28 && input28.length}`);
    }
    if (!Array.prototype.every.call(input28, Number.isFinite)) {
      throw new RangeError("input28 holds NaN or infinite values");
    }
  }

  function checkNumber(number) {
    if (!Number.isInteger(number) || number < 0 || number > 9) {
      throw new RangeError(`number must be an integer 0-9, got ${number}`);
    }
    return number;
  }

  /** The network and the preprocessing of one model file; see the file's top comment for the API. */
  class MnistSumReader {
    constructor(model, options = {}) {
      for (const [name, shape] of Object.entries(SHAPES)) {
        const t = model.tensors[name];
        if (!t || t.length !== shape.reduce((a, b) => a * b, 1)) {
          throw new Error(`model file lacks ${name} of shape ${shape}`);
        }
      }
      this.header = model.header;
      this.threshold = model.header.threshold ?? null;
      const kernel = options.wasm === false ? null : loadKernel();
      this.backend = kernel ? "wasm-simd" : "js";  // where the conv stack and first Linear layer run
      this.network = makeNetwork(model.tensors, kernel);  // {forward, trunk, mix, maps}; not re-entrant
    }

    /** A reader from the model file's bytes (ArrayBuffer, typed array or Node Buffer); options.wasm = false
     * keeps the network in plain JavaScript. */
    static fromBuffer(buffer, options = {}) {
      return new MnistSumReader(parseModel(buffer), options);
    }

    /** RGBA pixels -> Float32Array(784) in [0, 1] (the network's 28x28 view), or null when nothing is drawn. */
    toInput28(rgba, width, height) {
      return toInput28(rgba, width, height);
    }

    /** The network on a 28x28 input in [0, 1] and a number 0-9: what Predictor.predict28 returns. */
    predict28(input28, number) {
      checkNumber(number);
      checkInput28(input28);
      const { digitLogits, sumLogits } = this.network.forward(input28, number);
      const digitProbs = softmax(digitLogits), sumProbs = softmax(sumLogits.slice(0, MAX_SUM + 1));
      const digitScore = Math.max(...digitProbs);
      return {
        digit: argmax(digitProbs), sum: argmax(sumProbs), digitProbs, sumProbs,
        isDigit: this.threshold === null || digitScore >= this.threshold, digitScore, digitLogits, sumLogits,
      };
    }

    /** How the network reads a 28x28 input and adds `number` (Predictor.explain28): its activations after each
     * conv layer's ReLU (maps: conv1 (64, 24, 24), conv2 (128, 20, 20), conv3 (10, 20, 20), copied), the sum
     * for every number 0-9 (whatIf; whatIfProbs row n = P(sum 0..18) with number n), an exact adder's sums
     * (adderProbs[s] = digitProbs[s - number]) and the mix head's table on one-hot digit d and number n
     * (sumTable[d * 10 + n], sumTableProbs its probability). The image trunk runs at most once, and not at all
     * right after predict28 or read on the same input (its activations are still in the buffers). */
    explain28(input28, number) {
      checkNumber(number);
      checkInput28(input28);
      const net = this.network;
      const mixProbs = softmax(net.trunk(input28, true));  // in double: the mix head's input, as in forward
      const maps = net.maps(), digitProbs = Float32Array.from(mixProbs);
      const whatIf = [], whatIfProbs = new Float32Array(10 * (MAX_SUM + 1));
      for (let n = 0; n < 10; n++) {
        const probs = softmax(net.mix(mixProbs, n).slice(0, MAX_SUM + 1));
        whatIf.push(argmax(probs));
        whatIfProbs.set(probs, n * (MAX_SUM + 1));
      }
      const adderProbs = new Float32Array(MAX_SUM + 1);
      adderProbs.set(digitProbs, number);
      const sumTable = new Int8Array(100), sumTableProbs = new Float32Array(100), oneHot = new Float64Array(10);
      for (let d = 0; d < 10; d++) {
        oneHot.fill(0);
        oneHot[d] = 1;
        for (let n = 0; n < 10; n++) {
          const probs = softmax(net.mix(oneHot, n).slice(0, MAX_SUM + 1));
          sumTable[d * 10 + n] = argmax(probs);
          sumTableProbs[d * 10 + n] = probs[sumTable[d * 10 + n]];
        }
      }
      return {
        number, digit: argmax(mixProbs), digitProbs, maps, whatIf, whatIfProbs,
        sumProbs: whatIfProbs.slice(number * (MAX_SUM + 1), (number + 1) * (MAX_SUM + 1)), adderProbs,
        sumTable, sumTableProbs,
      };
    }

    /** Preprocessing and network: null when nothing is drawn, else predict28's fields and input28 (uint8). */
    read(rgba, width, height, number) {
      checkNumber(number);
      const x = toInput28(rgba, width, height);
      if (x === null) return null;
      const result = this.predict28(x, number);
      result.input28 = this.inputBytes(x);
      return result;
    }

    /** A 28x28 input in [0, 1] as grey levels 0-255 (Uint8Array(784)), rounded as the Python app's picture. */
    inputBytes(input28) {
      return Uint8Array.from(input28, (v) => roundHalfEven(f32(v * 255)));
    }
  }

  MnistSumReader.FORMAT = FORMAT;
  MnistSumReader.toInput28 = toInput28;
  return MnistSumReader;
});
