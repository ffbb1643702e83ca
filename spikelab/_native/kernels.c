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

int spikelab_abi_version(void) { return 1; }

#define SCALAR float
#define SFX f32
#include "kernels_lif.h"
#undef SCALAR
#undef SFX

#define SCALAR double
#define SFX f64
#include "kernels_lif.h"
#undef SCALAR
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
