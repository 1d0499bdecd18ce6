/* MnistSumPaint: the pad painted on the CPU as Gradio's editor draws it on the GPU, and PNG encoding without a
 * canvas (web/page.js, inlined before it; Node for the tests).
 *
 * Reading pixels back from WebGL waits for the GPU to finish drawing: in a software renderer (a browser without
 * a GPU) 100 ms or more after a stroke, and a canvas' toDataURL waits the same way. Gradio's brush
 * (brush-textures.ts) stamps each stroke as opaque filled circles of the brush's radius, drawn by PixiJS 8 into
 * textures of devicePixelRatio texels per pad pixel; a Pad holds the pad as last read back and paints those
 * circles over it as the GPU fills them (tests/test_page.py compares the two in Chromium).
 *
 *   const pad = new MnistSumPaint.Pad(rgbaPixels, devicePixelRatio);   // {data, width, height}
 *   pad.add([[x, y, radius], ...]);  pad.pixels();                      // a copy, the new discs painted
 */
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory();
  else root.MnistSumPaint = factory();
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  /** The pad's RGBA pixels with discs painted over them; only discs added since the last pixels() are painted. */
  class Pad {
    constructor(pixels, resolution) {
      const {width, height} = pixels;
      this.data = pixels.data.slice();
      this.width = width;
      this.height = height;
      this.tw = Math.max(1, Math.round(width * resolution)); // the layer texture, texels
      this.th = Math.max(1, Math.round(height * resolution));
      this.mask = new Uint8Array(this.tw * this.th); // 1 where ink covers a texel's centre
      this.unpainted = []; // [x, y, radius] in pad pixels
    }

    add(discs) {
      this.unpainted.push(...discs);
    }

    /** A copy of the pixels, each new disc inked where the export samples an inked texel (`texel`). */
    pixels() {
      const {data, width, height, mask, tw, th} = this, sx = tw / width, sy = th / height;
      for (const [x, y, radius] of this.unpainted) {
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
      this.unpainted = [];
      return {data: data.slice(), width, height};
    }
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
    const top = Math.max(0, Math.floor((cy - radius) * sy - 1));
    const bottom = Math.min(h - 1, Math.ceil((cy + radius) * sy + 1));
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
      const from = Math.max(0, Math.ceil(left - 0.5)), to = Math.min(w, Math.ceil(right - 0.5)); // [left, right)
      if (from < to) mask.fill(1, y * w + from, y * w + to);
    }
  }

  const CRC_TABLE = Uint32Array.from({length: 256}, (_, n) => {
    for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
    return n >>> 0;
  });

  /** A greyscale PNG of (height, width) from its filtered rows, deflated as stored (uncompressed) blocks. */
  function greyPng(rows, width, height) {
    const blocks = Math.max(1, Math.ceil(rows.length / 65535));
    const zlib = new Uint8Array(2 + rows.length + 5 * blocks + 4);
    zlib.set([0x78, 0x01]);
    let at = 2, a = 1, b = 0;
    for (let i = 0; i < blocks; i++) {
      const part = rows.subarray(i * 65535, Math.min(rows.length, (i + 1) * 65535));
      const n = part.length; // a stored block: final?, its length and the length's complement (little-endian)
      zlib.set([i === blocks - 1 ? 1 : 0, n & 255, n >> 8, ~n & 255, (~n >> 8) & 255], at);
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
    for (let i = 0; i < bytes.length; i += 0x8000) { // in slices: an argument list has a length limit
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  }

  return {Pad, brushDiscs, fillDisc, texel, greyPng, base64};
});
