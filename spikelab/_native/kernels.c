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

int spikelab_abi_version(void) { return 5; }

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
