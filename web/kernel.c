/* The heavy part of MNISTSumNet's forward in WebAssembly SIMD, for web/reader.js: the conv stack and the first
 * Linear layer, 85 M of the network's 85.3 M multiply-adds, several times faster than plain JavaScript.
 *
 *   IN (28, 28) normalized input  -> conv 1->64 5x5, ReLU -> conv 64->128 5x5, ReLU -> conv 128->10 1x1, ReLU
 *   -> max-pool 2 -> FEATURES (1000) = (10, 10, 10) flattened -> HIDDEN (512) = FC1_W (512, 1000) x FEATURES + FC1_B
 *
 * reader.js writes the weights once (PyTorch's layouts, flattened) and IN per drawing, straight into this
 * module's memory, calls forward(), reads HIDDEN and does the rest (BatchNorm, two small layers, the mix head);
 * A1, A2 and A3 (each conv layer's output after its ReLU) stay until the next forward(), for the explanation.
 * Conv 2 (82 M) is a matrix product over the im2col of conv 1's output. Built, with Debian's clang 14 and lld
 * (apt-get install clang lld), by `python web/build_kernel.py`, which also embeds the .wasm in reader.js.
 */
#include <wasm_simd128.h>

#define C1 64     /* conv 1 output channels */
#define S1 24     /* conv 1 output side */
#define C2 128    /* conv 2 output channels */
#define K2 1600   /* conv 2 inputs per output: 64 channels x 5 x 5 */
#define S2 20     /* conv 2 output side */
#define N2 400    /* conv 2 output pixels */
#define C3 10     /* conv 3 output channels */
#define F 1000    /* features after pooling */
#define H 512     /* first Linear layer's outputs */

static float IN[28 * 28], W1[C1 * 25], B1[C1], A1[C1 * S1 * S1];
static float W2[C2 * K2], B2[C2], COLS[K2 * N2], A2[C2 * N2];
static float W3[C3 * C2], B3[C3], A3[C3 * N2], FEATURES[F];
static float FC1_W[H * F], FC1_B[H], HIDDEN[H];

/* Where reader.js reads and writes: 0 IN, 1 W1, 2 B1, 3 W2, 4 B2, 5 W3, 6 B3, 7 FC1_W, 8 FC1_B, 9 HIDDEN;
 * and the activations after each conv layer's ReLU, for reader.explain28: 10 A1, 11 A2, 12 A3. */
__attribute__((export_name("buffer"))) float *buffer(int which) {
  switch (which) {  /* a switch, not a table: a table would need memcpy, and there is no libc */
    case 0: return IN;
    case 1: return W1;
    case 2: return B1;
    case 3: return W2;
    case 4: return B2;
    case 5: return W3;
    case 6: return B3;
    case 7: return FC1_W;
    case 8: return FC1_B;
    case 9: return HIDDEN;
    case 10: return A1;
    case 11: return A2;
    case 12: return A3;
    default: return 0;
  }
}

static inline v128_t relu4(v128_t v) { return wasm_f32x4_max(v, wasm_f32x4_splat(0)); }

/* conv 1 -> 64, 5x5, ReLU: each output row (24 px) is 6 vectors, 25 shifted rows of IN added in. */
static void conv1(void) {
  for (int c = 0; c < C1; c++) {
    for (int y = 0; y < S1; y++) {
      v128_t acc[6];
      for (int j = 0; j < 6; j++) acc[j] = wasm_f32x4_splat(B1[c]);
      for (int ky = 0; ky < 5; ky++) {
        for (int kx = 0; kx < 5; kx++) {
          const v128_t w = wasm_f32x4_splat(W1[c * 25 + ky * 5 + kx]);
          const float *row = IN + (y + ky) * 28 + kx;
          for (int j = 0; j < 6; j++) acc[j] = wasm_f32x4_add(acc[j], wasm_f32x4_mul(w, wasm_v128_load(row + 4 * j)));
        }
      }
      for (int j = 0; j < 6; j++) wasm_v128_store(A1 + (c * S1 + y) * S1 + 4 * j, relu4(acc[j]));
    }
  }
}

/* im2col of A1: row (channel, ky, kx), column (y, x) of conv 2's 20x20 output. */
static void im2col(void) {
  for (int c = 0; c < C1; c++)
    for (int ky = 0; ky < 5; ky++)
      for (int kx = 0; kx < 5; kx++) {
        float *dst = COLS + ((c * 5 + ky) * 5 + kx) * N2;
        for (int y = 0; y < S2; y++) {
          const float *src = A1 + (c * S1 + y + ky) * S1 + kx;
          for (int x = 0; x < S2; x += 4) wasm_v128_store(dst + y * S2 + x, wasm_v128_load(src + x));
        }
      }
}

/* conv 2, ReLU: A2 (128, 400) = W2 (128, 1600) x COLS (1600, 400), in blocks of 4 channels x 8 pixels
 * (8 vector accumulators: no register spills); a (1600, 8) strip of COLS stays in cache across channels. */
static void conv2(void) {
  for (int n = 0; n < N2; n += 8) {
    for (int m = 0; m < C2; m += 4) {
      const float *w0 = W2 + m * K2, *w1 = w0 + K2, *w2 = w1 + K2, *w3 = w2 + K2;
      v128_t c00 = wasm_f32x4_splat(B2[m]), c01 = c00, c10 = wasm_f32x4_splat(B2[m + 1]), c11 = c10;
      v128_t c20 = wasm_f32x4_splat(B2[m + 2]), c21 = c20, c30 = wasm_f32x4_splat(B2[m + 3]), c31 = c30;
      for (int k = 0; k < K2; k++) {
        const v128_t x0 = wasm_v128_load(COLS + k * N2 + n), x1 = wasm_v128_load(COLS + k * N2 + n + 4);
        const v128_t a0 = wasm_f32x4_splat(w0[k]), a1 = wasm_f32x4_splat(w1[k]);
        const v128_t a2 = wasm_f32x4_splat(w2[k]), a3 = wasm_f32x4_splat(w3[k]);
        c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(a0, x0)); c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(a0, x1));
        c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(a1, x0)); c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(a1, x1));
        c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(a2, x0)); c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(a2, x1));
        c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(a3, x0)); c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(a3, x1));
      }
      float *o = A2 + m * N2 + n;
      wasm_v128_store(o, relu4(c00)); wasm_v128_store(o + 4, relu4(c01));
      wasm_v128_store(o + N2, relu4(c10)); wasm_v128_store(o + N2 + 4, relu4(c11));
      wasm_v128_store(o + 2 * N2, relu4(c20)); wasm_v128_store(o + 2 * N2 + 4, relu4(c21));
      wasm_v128_store(o + 3 * N2, relu4(c30)); wasm_v128_store(o + 3 * N2 + 4, relu4(c31));
    }
  }
}

/* conv 3 (1x1, 128 -> 10), ReLU, then 2x2 max-pool into FEATURES (channel, y, x). */
static void conv3_pool(void) {
  for (int m = 0; m < C3; m++) {
    for (int n = 0; n < N2; n += 4) {
      v128_t acc = wasm_f32x4_splat(B3[m]);
      for (int k = 0; k < C2; k++) {
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(W3[m * C2 + k]), wasm_v128_load(A2 + k * N2 + n)));
      }
      wasm_v128_store(A3 + m * N2 + n, relu4(acc));
    }
    for (int y = 0; y < 10; y++)
      for (int x = 0; x < 10; x++) {
        const float *p = A3 + m * N2 + 2 * y * S2 + 2 * x;
        float v = p[0] > p[1] ? p[0] : p[1];
        v = v > p[S2] ? v : p[S2];
        FEATURES[m * 100 + y * 10 + x] = v > p[S2 + 1] ? v : p[S2 + 1];
      }
  }
}

/* HIDDEN (512) = FC1_W (512, 1000) x FEATURES + FC1_B: four partial sums per row, added at the end. */
static void fc1(void) {
  for (int m = 0; m < H; m++) {
    const float *w = FC1_W + m * F;
    v128_t acc = wasm_f32x4_splat(0);
    for (int k = 0; k < F; k += 4) {
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(w + k), wasm_v128_load(FEATURES + k)));
    }
    HIDDEN[m] = FC1_B[m] + (wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1)) +
                (wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3));
  }
}

__attribute__((export_name("forward"))) void forward(void) {
  conv1();
  im2col();
  conv2();
  conv3_pool();
  fc1();
}
