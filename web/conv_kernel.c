/* The reader's one heavy step in WebAssembly SIMD: conv 64 -> 128 (5x5) of MNISTSumNet as a matrix product,
 * about 82 M of the network's 85 M multiply-adds, ~9x faster than the same loops in plain JavaScript.
 *
 *   OUT (128, 400) = relu(BIAS + W (128, 1600) x COLS (1600, 400))
 *
 * W is conv.2.weight flattened (output channel, input channel * 25 + ky * 5 + kx); COLS is the im2col of the
 * first layer's (64, 24, 24) output, column y * 20 + x of the (20, 20) output. reader.js writes W and BIAS
 * once, COLS per drawing, straight into this module's memory, and reads OUT. Built, with Debian's clang 14
 * and lld (apt-get install clang lld), by `python web/build_kernel.py`, which also embeds the .wasm in reader.js.
 */
#include <wasm_simd128.h>

#define M 128   /* output channels */
#define K 1600  /* input channels x 5 x 5 */
#define N 400   /* output pixels, 20 x 20 */
#define NB 8    /* output pixels per block: 4 channels x 8 pixels = 8 vector accumulators, no register spills */

static float W[M * K], COLS[K * N], OUT[M * N], BIAS[M];

__attribute__((export_name("weights"))) float *weights(void) { return W; }
__attribute__((export_name("cols"))) float *cols(void) { return COLS; }
__attribute__((export_name("out"))) float *out(void) { return OUT; }
__attribute__((export_name("bias"))) float *bias(void) { return BIAS; }

__attribute__((export_name("conv2"))) void conv2(void) {
  const v128_t zero = wasm_f32x4_splat(0);
  for (int n = 0; n < N; n += NB) {      /* a (1600, 8) strip of COLS stays in cache across all channels */
    for (int m = 0; m < M; m += 4) {
      const float *w0 = W + m * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
      v128_t c00 = wasm_f32x4_splat(BIAS[m]), c01 = c00, c10 = wasm_f32x4_splat(BIAS[m + 1]), c11 = c10;
      v128_t c20 = wasm_f32x4_splat(BIAS[m + 2]), c21 = c20, c30 = wasm_f32x4_splat(BIAS[m + 3]), c31 = c30;
      for (int k = 0; k < K; k++) {
        const v128_t x0 = wasm_v128_load(COLS + k * N + n), x1 = wasm_v128_load(COLS + k * N + n + 4);
        const v128_t a0 = wasm_f32x4_splat(w0[k]), a1 = wasm_f32x4_splat(w1[k]);
        const v128_t a2 = wasm_f32x4_splat(w2[k]), a3 = wasm_f32x4_splat(w3[k]);
        c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(a0, x0)); c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(a0, x1));
        c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(a1, x0)); c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(a1, x1));
        c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(a2, x0)); c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(a2, x1));
        c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(a3, x0)); c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(a3, x1));
      }
      float *o = OUT + m * N + n;  /* ReLU on the way out */
      wasm_v128_store(o, wasm_f32x4_max(c00, zero)); wasm_v128_store(o + 4, wasm_f32x4_max(c01, zero));
      wasm_v128_store(o + N, wasm_f32x4_max(c10, zero)); wasm_v128_store(o + N + 4, wasm_f32x4_max(c11, zero));
      wasm_v128_store(o + 2 * N, wasm_f32x4_max(c20, zero)); wasm_v128_store(o + 2 * N + 4, wasm_f32x4_max(c21, zero));
      wasm_v128_store(o + 3 * N, wasm_f32x4_max(c30, zero)); wasm_v128_store(o + 3 * N + 4, wasm_f32x4_max(c31, zero));
    }
  }
}
