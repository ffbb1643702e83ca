/* spikelab's native CPU kernels (C99 + optional OpenMP), loaded with ctypes by spikelab/_native/__init__.py.
 *
 * 1. The multi-step neuron (SPEC section 1), forward and backward, one loop over time per block of neurons:
 *      charge  h[t] = decay * v[t-1] + x[t]
 *      fire    s[t] = Theta(h[t] - v_th)                       (Theta(0) = 1)
 *      reset   hard v = h (1 - s) + v_reset s | soft v = h - v_th s | none v = h
 *    Every floating-point operation is written in the order and precision of the reference in
 *    spikelab/neurons/functional.py (scalars rounded to the tensor's dtype, no contraction into FMAs: the file
 *    is compiled with -ffp-contract=off), so spikes and gradients come out bit-identical to it. The forward
 *    saves only h; the backward recomputes s and v[t-1] from it.
 * 2. Binary packing for saved activations: a float tensor whose values are all 0 or 1 is stored as one bit per
 *    element (pack_bits returns 0 at the first other value and the caller keeps the tensor as it is).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define RESET_HARD 0
#define RESET_SOFT 1
#define RESET_NONE 2

#define SG_ATAN 0
#define SG_SIGMOID 1
#define SG_FAST_SIGMOID 2
#define SG_TRIANGLE 3
#define SG_RECTANGLE 4
#define SG_GIVEN 5 /* the caller passes sigma'(h - v_th) for every step and neuron */

#define BLOCK 256 /* neurons per block: the state of one block stays in L1 over the whole time loop */

typedef struct {
    int64_t T, N;          /* time steps; neurons (product of the other dimensions) */
    double decay, v_th, v_reset;
    int reset_mode;        /* RESET_* */
    int detach_reset;      /* 1: the spike in the reset carries no gradient */
    int surrogate;         /* SG_* */
    double sg_param;       /* alpha / slope / gamma / width */
    double v_init;         /* used where the v_init pointer is NULL */
    int nthreads;
} lif_params;

int spikelab_abi_version(void) { return 6; }

/* bfloat16 <-> float32: a bfloat16 is the upper half of a float32; rounding to nearest even, NaN kept quiet
 * (as c10::BFloat16 does). */
static inline float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

#define IDENT(v) (v)

#define SCALAR float
#define STORE float
#define LD IDENT
#define ST IDENT
#define SFX f32
#include "kernels_lif.h"
#undef SCALAR
#undef STORE
#undef SFX

#define SCALAR double
#define STORE double
#define SFX f64
#include "kernels_lif.h"
#undef SCALAR
#undef STORE
#undef LD
#undef ST
#undef SFX

/* bfloat16 tensors, float32 arithmetic and membrane: the float32 neuron applied to the bfloat16 input, its spikes
 * (0 or 1, exact) and gradients rounded to bfloat16 */
#define SCALAR float
#define STORE uint16_t
#define LD bf16_to_f32
#define ST f32_to_bf16
#define SFX bf16
#include "kernels_lif.h"
#undef SCALAR
#undef STORE
#undef LD
#undef ST
#undef SFX

/* ---- binary packing ------------------------------------------------------------------------------------ */

#define PACK_BODY(T_)                                                                                   \
    int64_t nbytes = (n + 7) / 8;                                                                      \
    int ok = 1;                                                                                        \
    int64_t nchunks = (nbytes + 4095) / 4096;                                                           \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads) reduction(&&:ok)")                \
    for (int64_t c = 0; c < nchunks; c++) {                                                            \
        if (!ok) continue;                                                                              \
        int64_t b0 = c * 4096, b1 = b0 + 4096 < nbytes ? b0 + 4096 : nbytes;                            \
        for (int64_t b = b0; b < b1 && ok; b++) {                                                      \
            uint8_t byte = 0;                                                                           \
            int64_t e0 = b * 8;                                                                         \
            int bad = 0;                                                                                \
            for (int k = 0; k < 8; k++) {                                                               \
                int64_t e = e0 + k;                                                                     \
                T_ val = e < n ? src[e] : (T_)0;                                                        \
                bad |= !(val == (T_)0 || val == (T_)1);                                                 \
                byte |= (uint8_t)((val == (T_)1) << k);                                                 \
            }                                                                                           \
            if (bad) ok = 0;                                                                            \
            dst[b] = byte;                                                                              \
        }                                                                                               \
    }                                                                                                  \
    return ok;

/* Pack src[0..n) into ceil(n/8) bytes (bit k of byte b is element 8b+k). Returns 1 if every value was 0 or 1
 * (the packing is then exact), 0 otherwise (dst is garbage). -0.0 counts as 0 and unpacks to +0.0. */
int pack_bits_f32(const float* src, int64_t n, uint8_t* dst, int nthreads) { PACK_BODY(float) }
int pack_bits_f64(const double* src, int64_t n, uint8_t* dst, int nthreads) { PACK_BODY(double) }

#define UNPACK_BODY(T_)                                                                                 \
    int64_t nbytes = (n + 7) / 8;                                                                      \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                                 \
    for (int64_t b = 0; b < nbytes; b++) {                                                              \
        uint8_t byte = src[b];                                                                          \
        int64_t e0 = b * 8;                                                                             \
        if (e0 + 8 <= n) {                                                                              \
            for (int k = 0; k < 8; k++) dst[e0 + k] = (T_)((byte >> k) & 1);                            \
        } else {                                                                                        \
            for (int64_t e = e0; e < n; e++) dst[e] = (T_)((byte >> (e - e0)) & 1);                     \
        }                                                                                               \
    }

void unpack_bits_f32(const uint8_t* src, int64_t n, float* dst, int nthreads) { UNPACK_BODY(float) }
void unpack_bits_f64(const uint8_t* src, int64_t n, double* dst, int nthreads) { UNPACK_BODY(double) }

/* ---- 2x2 max pooling of binary maps (stride 2, no padding, floor) -------------------------------------------
 * For a map of 0s and 1s the maximum is a logical OR. arg[o] (0..3) records which input of the window the
 * gradient goes to, as torch.nn.functional.max_pool2d picks it: the first maximum in the order (0,0), (0,1),
 * (1,0), (1,1), i.e. the first 1, or (0,0) when all four are 0. One byte per output replaces the float input and
 * int64 indices that max_pool2d saves. Returns 0 if a value is neither 0 nor 1 (the caller then uses PyTorch's). */
#define POOL_WINDOW(T_, a, b, c, d, o_out, o_arg)                                                           \
    do {                                                                                                     \
        const T_ a_ = (a), b_ = (b), c_ = (c), d_ = (d);                                                    \
        bad |= !((a_ == (T_)0) | (a_ == (T_)1)) | !((b_ == (T_)0) | (b_ == (T_)1)) |                         \
               !((c_ == (T_)0) | (c_ == (T_)1)) | !((d_ == (T_)0) | (d_ == (T_)1));                          \
        const int ia = a_ == (T_)1, ib = b_ == (T_)1, ic = c_ == (T_)1, id = d_ == (T_)1;                    \
        (o_out) = (T_)(ia | ib | ic | id);                                                                   \
        (o_arg) = (uint8_t)(ia ? 0 : ib ? 1 : ic ? 2 : id ? 3 : 0);                                          \
    } while (0)

#define POOL_NCHW(T_)                                                                                        \
    const int64_t Ho = H / 2, Wo = W / 2;                                                                    \
    int ok = 1;                                                                                              \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads) reduction(&&:ok)")                      \
    for (int64_t p = 0; p < NC; p++) {                                                                       \
        if (!ok) continue;                                                                                   \
        int bad = 0;                                                                                         \
        for (int64_t oh = 0; oh < Ho; oh++) {                                                                \
            const T_* r0 = x + (p * H + 2 * oh) * W;                                                         \
            const T_* r1 = r0 + W;                                                                           \
            T_* o = out + (p * Ho + oh) * Wo;                                                                \
            uint8_t* g = arg + (p * Ho + oh) * Wo;                                                           \
            for (int64_t ow = 0; ow < Wo; ow++)                                                              \
                POOL_WINDOW(T_, r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1], o[ow], g[ow]);       \
        }                                                                                                    \
        if (bad) ok = 0;                                                                                     \
    }                                                                                                        \
    return ok;

#define POOL_NHWC(T_)                                                                                        \
    const int64_t Ho = H / 2, Wo = W / 2;                                                                    \
    int ok = 1;                                                                                              \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads) reduction(&&:ok)")                      \
    for (int64_t q = 0; q < B * Ho; q++) {                                                                   \
        if (!ok) continue;                                                                                   \
        const int64_t b = q / Ho, oh = q % Ho;                                                               \
        int bad = 0;                                                                                         \
        for (int64_t ow = 0; ow < Wo; ow++) {                                                                \
            const T_* a = x + ((b * H + 2 * oh) * W + 2 * ow) * C;                                           \
            const T_* c = a + W * C;                                                                         \
            T_* o = out + ((b * Ho + oh) * Wo + ow) * C;                                                     \
            uint8_t* g = arg + ((b * Ho + oh) * Wo + ow) * C;                                                \
            for (int64_t k = 0; k < C; k++) POOL_WINDOW(T_, a[k], a[C + k], c[k], c[C + k], o[k], g[k]);     \
        }                                                                                                    \
        if (bad) ok = 0;                                                                                     \
    }                                                                                                        \
    return ok;

/* NCHW: x [NC, H, W] contiguous; out and arg [NC, H/2, W/2]. */
int maxpool2_binary_nchw_f32(const float* x, int64_t NC, int64_t H, int64_t W, float* out, uint8_t* arg,
                             int nthreads) { POOL_NCHW(float) }
int maxpool2_binary_nchw_f64(const double* x, int64_t NC, int64_t H, int64_t W, double* out, uint8_t* arg,
                             int nthreads) { POOL_NCHW(double) }
/* NHWC (channels-last): x [B, H, W, C] contiguous; out and arg [B, H/2, W/2, C]. */
int maxpool2_binary_nhwc_f32(const float* x, int64_t B, int64_t H, int64_t W, int64_t C, float* out,
                             uint8_t* arg, int nthreads) { POOL_NHWC(float) }
int maxpool2_binary_nhwc_f64(const double* x, int64_t B, int64_t H, int64_t W, int64_t C, double* out,
                             uint8_t* arg, int nthreads) { POOL_NHWC(double) }

/* Backward: grad_in (same layout as x, every element written) gets grad_out at the window's recorded input,
 * 0 elsewhere (also in a last odd row or column, which the floor-mode pooling ignores). */
#define UNPOOL_NCHW(T_)                                                                                      \
    const int64_t Ho = H / 2, Wo = W / 2;                                                                    \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                                       \
    for (int64_t p = 0; p < NC; p++) {                                                                       \
        T_* gp = grad_in + p * H * W;                                                                        \
        for (int64_t oh = 0; oh < Ho; oh++) {                                                                \
            T_* r0 = gp + 2 * oh * W;                                                                        \
            T_* r1 = r0 + W;                                                                                 \
            const T_* go = grad_out + (p * Ho + oh) * Wo;                                                    \
            const uint8_t* g = arg + (p * Ho + oh) * Wo;                                                     \
            for (int64_t ow = 0; ow < Wo; ow++) {                                                            \
                const T_ v = go[ow];                                                                         \
                const uint8_t k = g[ow];                                                                     \
                r0[2 * ow] = k == 0 ? v : (T_)0;                                                             \
                r0[2 * ow + 1] = k == 1 ? v : (T_)0;                                                         \
                r1[2 * ow] = k == 2 ? v : (T_)0;                                                             \
                r1[2 * ow + 1] = k == 3 ? v : (T_)0;                                                         \
            }                                                                                                \
            if (W & 1) { r0[W - 1] = 0; r1[W - 1] = 0; }                                                     \
        }                                                                                                    \
        if (H & 1) memset(gp + (H - 1) * W, 0, (size_t)W * sizeof(T_));                                     \
    }

#define UNPOOL_NHWC(T_)                                                                                      \
    const int64_t Ho = H / 2, Wo = W / 2;                                                                    \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                                       \
    for (int64_t q = 0; q < B * H; q++) {                                                                    \
        const int64_t b = q / H, h = q % H;                                                                  \
        T_* row = grad_in + (b * H + h) * W * C;                                                             \
        if (h >= 2 * Ho) { memset(row, 0, (size_t)(W * C) * sizeof(T_)); continue; }                         \
        const int64_t oh = h / 2, k0 = (h & 1) * 2;                                                          \
        for (int64_t ow = 0; ow < Wo; ow++) {                                                                \
            const T_* go = grad_out + ((b * Ho + oh) * Wo + ow) * C;                                         \
            const uint8_t* g = arg + ((b * Ho + oh) * Wo + ow) * C;                                          \
            T_* a = row + 2 * ow * C;                                                                        \
            for (int64_t k = 0; k < C; k++) {                                                                \
                a[k] = g[k] == k0 ? go[k] : (T_)0;                                                           \
                a[C + k] = g[k] == k0 + 1 ? go[k] : (T_)0;                                                   \
            }                                                                                                \
        }                                                                                                    \
        if (W & 1) memset(row + (W - 1) * C, 0, (size_t)C * sizeof(T_));                                     \
    }

void maxpool2_binary_backward_nchw_f32(const float* grad_out, const uint8_t* arg, int64_t NC, int64_t H,
                                       int64_t W, float* grad_in, int nthreads) { UNPOOL_NCHW(float) }
void maxpool2_binary_backward_nchw_f64(const double* grad_out, const uint8_t* arg, int64_t NC, int64_t H,
                                       int64_t W, double* grad_in, int nthreads) { UNPOOL_NCHW(double) }
void maxpool2_binary_backward_nhwc_f32(const float* grad_out, const uint8_t* arg, int64_t B, int64_t H,
                                       int64_t W, int64_t C, float* grad_in, int nthreads) { UNPOOL_NHWC(float) }
void maxpool2_binary_backward_nhwc_f64(const double* grad_out, const uint8_t* arg, int64_t B, int64_t H,
                                       int64_t W, int64_t C, double* grad_in, int nthreads) { UNPOOL_NHWC(double) }

/* ---- linear layers on spikes ---------------------------------------------------------------------------------
 * y = x W^T + b for x [M, K] of 0s and 1s: each output row is the sum of the weight rows (of W^T [K, N]) where
 * x is 1, so the work is (number of spikes) x N additions instead of M x K x N multiply-adds. The spikes are
 * found once, as a compressed sparse row list (row offsets, column indices), from x or from its bit-packed copy. */

/* Pass 1: check that x [M, K] is binary, write its bits [M, ceil(K/8)] (each row starts on a byte) and the spike
 * count of each row into counts[M]. Returns 0 if a value is neither 0 nor 1. (AVX-512: 16 floats or 8 doubles
 * compared at once; elsewhere element by element.) */
#define SPIKE_ROWS_SCALAR(T_, j0)                                                                            \
    for (int64_t j = (j0); j < KB; j++) {                                                                    \
        uint8_t byte = 0;                                                                                    \
        for (int k = 0; k < 8; k++) {                                                                        \
            const int64_t e = j * 8 + k;                                                                     \
            const T_ v = e < K ? row[e] : (T_)0;                                                             \
            bad |= !((v == (T_)0) | (v == (T_)1));                                                           \
            byte |= (uint8_t)((v == (T_)1) << k);                                                            \
        }                                                                                                    \
        b[j] = byte;                                                                                         \
        c += __builtin_popcount(byte);                                                                       \
    }

int spike_rows_f32(const float* x, int64_t M, int64_t K, uint8_t* bits, int64_t* counts, int nthreads) {
    const int64_t KB = (K + 7) / 8;
    int ok = 1;
    #pragma omp parallel for schedule(static) num_threads(nthreads) reduction(&&:ok)
    for (int64_t m = 0; m < M; m++) {
        if (!ok) continue;
        const float* row = x + m * K;
        uint8_t* b = bits + m * KB;
        int64_t c = 0;
        int bad = 0;
        int64_t j0 = 0;
#ifdef __AVX512F__
        const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
        for (; (j0 + 2) * 8 <= K; j0 += 2) {
            const __m512 v = _mm512_loadu_ps(row + j0 * 8);
            const __mmask16 m1 = _mm512_cmpeq_ps_mask(v, one), m0 = _mm512_cmpeq_ps_mask(v, zero);
            bad |= (uint16_t)(m1 | m0) != 0xFFFF;
            memcpy(b + j0, &m1, 2);
            c += __builtin_popcount((unsigned)m1);
        }
#endif
        SPIKE_ROWS_SCALAR(float, j0)
        counts[m] = c;
        if (bad) ok = 0;
    }
    return ok;
}

int spike_rows_f64(const double* x, int64_t M, int64_t K, uint8_t* bits, int64_t* counts, int nthreads) {
    const int64_t KB = (K + 7) / 8;
    int ok = 1;
    #pragma omp parallel for schedule(static) num_threads(nthreads) reduction(&&:ok)
    for (int64_t m = 0; m < M; m++) {
        if (!ok) continue;
        const double* row = x + m * K;
        uint8_t* b = bits + m * KB;
        int64_t c = 0;
        int bad = 0;
        int64_t j0 = 0;
#ifdef __AVX512F__
        const __m512d one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
        for (; (j0 + 1) * 8 <= K; j0++) {
            const __m512d v = _mm512_loadu_pd(row + j0 * 8);
            const __mmask8 m1 = _mm512_cmpeq_pd_mask(v, one), m0 = _mm512_cmpeq_pd_mask(v, zero);
            bad |= (uint8_t)(m1 | m0) != 0xFF;
            b[j0] = (uint8_t)m1;
            c += __builtin_popcount((unsigned)m1);
        }
#endif
        SPIKE_ROWS_SCALAR(double, j0)
        counts[m] = c;
        if (bad) ok = 0;
    }
    return ok;
}

/* Pass 2: the column index of every 1 of each row, from the bits; offsets [M+1] is the prefix sum of the counts.
 * (AVX-512: 16 indices at a time by a masked compress.) */
void spike_csr(const uint8_t* bits, int64_t M, int64_t K, const int64_t* offsets, int32_t* cols, int nthreads) {
    const int64_t KB = (K + 7) / 8;
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t m = 0; m < M; m++) {
        const uint8_t* b = bits + m * KB;
        int32_t* out = cols + offsets[m];
        int64_t j = 0;
#ifdef __AVX512F__
        const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (; j + 2 <= KB; j += 2) {
            uint16_t mask;
            memcpy(&mask, b + j, 2);
            if (!mask) continue;
            _mm512_mask_compressstoreu_epi32(out, mask, _mm512_add_epi32(lanes, _mm512_set1_epi32((int)(j * 8))));
            out += __builtin_popcount(mask);
        }
#endif
        for (; j < KB; j++) {
            unsigned byte = b[j];
            while (byte) {
                *out++ = (int32_t)(j * 8 + __builtin_ctz(byte));
                byte &= byte - 1;
            }
        }
    }
}

/* out[r, :] = (bias or 0) + sum over j in [offsets[r], offsets[r+1]) of src[idx[j], :] for r < R, with src
 * [S, N] dense. Used both ways: the forward (rows = samples, src = W^T [K, N], idx = the spikes' inputs) and the
 * weight gradient (rows = inputs, src = the output gradient [M, N], idx = the samples that spiked there). The
 * output columns go in slabs of 64: each thread copies a slab of src (S x 64 values) into a compact buffer that
 * stays in cache, then sums every one of its rows, 64 values at a time in vector registers, in increasing j.
 * Returns 0, or -1 if the buffer could not be allocated. */
typedef float vf32 __attribute__((vector_size(64), aligned(4)));  /* 16 floats, unaligned loads and stores */
typedef double vf64 __attribute__((vector_size(64), aligned(8))); /* 8 doubles */

#define VLANES(V, T_) ((int)(sizeof(V) / sizeof(T_)))

#define GATHER_BODY(T_, V)                                                                                   \
    enum { L = VLANES(V, T_), W = 4 * VLANES(V, T_) };                                                        \
    int failed = 0;                                                                                          \
    _Pragma("omp parallel num_threads(nthreads) reduction(|:failed)")                                        \
    {                                                                                                        \
        T_* buf = (T_*)malloc((size_t)(S > 0 ? S : 1) * W * sizeof(T_));                                     \
        if (!buf) failed = 1;                                                                                \
        int64_t n0 = 0;                                                                                      \
        for (; buf && n0 + W <= N; n0 += W) {                                                                \
            for (int64_t k = 0; k < S; k++) memcpy(buf + k * W, src + k * N + n0, W * sizeof(T_));           \
            _Pragma("omp for schedule(static) nowait")                                                       \
            for (int64_t r = 0; r < R; r++) {                                                                \
                V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                                    \
                for (int64_t j = offsets[r]; j < offsets[r + 1]; j++) {                                      \
                    const T_* sr = buf + (int64_t)idx[j] * W;                                                \
                    a0 += *(const V*)sr; a1 += *(const V*)(sr + L); a2 += *(const V*)(sr + 2 * L);           \
                    a3 += *(const V*)(sr + 3 * L);                                                           \
                }                                                                                            \
                if (bias) {                                                                                  \
                    a0 += *(const V*)(bias + n0); a1 += *(const V*)(bias + n0 + L);                          \
                    a2 += *(const V*)(bias + n0 + 2 * L); a3 += *(const V*)(bias + n0 + 3 * L);              \
                }                                                                                            \
                T_* o = out + r * N + n0;                                                                    \
                *(V*)o = a0; *(V*)(o + L) = a1; *(V*)(o + 2 * L) = a2; *(V*)(o + 3 * L) = a3;                \
            }                                                                                                \
        }                                                                                                    \
        if (buf && n0 < N) { /* the last columns, fewer than 64 */                                           \
            _Pragma("omp for schedule(static)")                                                              \
            for (int64_t r = 0; r < R; r++) {                                                                \
                for (int64_t n = n0; n < N; n++) {                                                           \
                    T_ a = 0;                                                                                \
                    for (int64_t j = offsets[r]; j < offsets[r + 1]; j++) a += src[(int64_t)idx[j] * N + n]; \
                    out[r * N + n] = bias ? a + bias[n] : a;                                                 \
                }                                                                                            \
            }                                                                                                \
        }                                                                                                    \
        free(buf);                                                                                           \
    }                                                                                                        \
    return failed ? -1 : 0;

int row_gather_f32(const int64_t* offsets, const int32_t* idx, int64_t R, const float* src, int64_t S, int64_t N,
                   const float* bias, float* out, int nthreads) { GATHER_BODY(float, vf32) }
int row_gather_f64(const int64_t* offsets, const int32_t* idx, int64_t R, const double* src, int64_t S, int64_t N,
                   const double* bias, double* out, int nthreads) { GATHER_BODY(double, vf64) }

/* The transpose of a compressed sparse row list [M rows, K columns] (offsets [M+1], cols [nnz]): for each column k,
 * the rows that have a 1 there, in increasing order (t_offsets [K+1], t_rows [nnz]). Serial: a counting sort. */
int csr_transpose(const int64_t* offsets, const int32_t* cols, int64_t M, int64_t K, int64_t* t_offsets,
                  int32_t* t_rows) {
    memset(t_offsets, 0, (size_t)(K + 1) * sizeof(int64_t));
    const int64_t nnz = offsets[M];
    for (int64_t j = 0; j < nnz; j++) t_offsets[cols[j] + 1]++;
    for (int64_t k = 0; k < K; k++) t_offsets[k + 1] += t_offsets[k];
    int64_t* next = (int64_t*)malloc((size_t)(K > 0 ? K : 1) * sizeof(int64_t));
    if (!next) return -1;
    memcpy(next, t_offsets, (size_t)K * sizeof(int64_t));
    for (int64_t m = 0; m < M; m++)
        for (int64_t j = offsets[m]; j < offsets[m + 1]; j++) t_rows[next[cols[j]]++] = (int32_t)m;
    free(next);
    return 0;
}
