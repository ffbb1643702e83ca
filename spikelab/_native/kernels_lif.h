/* The multi-step neuron for one floating-point type; included by kernels.c with SCALAR (the arithmetic type), STORE
 * (the type in memory), LD(v) and ST(v) (conversions between them) and SFX defined. For float32 and float64 they
 * are the same type; for bfloat16 the tensors hold bfloat16 and every step computes in float32.
 * Comments name the reference expression each line reproduces (spikelab/neurons/functional.py,
 * spikelab/surrogate.py); Python scalars are rounded to SCALAR first, as torch does for a tensor-scalar op. */
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)

/* sigma'(z) of each surrogate, in the reference's operation order. */
static inline SCALAR FN(sg_grad)(SCALAR z, int kind, SCALAR p1, SCALAR p2) {
    switch (kind) {
    case SG_ATAN: {            /* (alpha/2) / (1 + (pi/2 alpha z)^2) = reciprocal(1 + u*u) * (alpha/2) */
        SCALAR u = z * p1;     /* p1 = pi/2 * alpha */
        SCALAR d = u * u + (SCALAR)1;
        return ((SCALAR)1 / d) * p2; /* p2 = alpha / 2 */
    }
    case SG_SIGMOID: {         /* alpha * sg * (1 - sg), sg = sigmoid(alpha z) */
        SCALAR y = z * p1;     /* p1 = alpha */
        SCALAR sg = (SCALAR)1 / ((SCALAR)1 + (SCALAR)exp(-(double)y));
        return (sg * p1) * ((SCALAR)1 - sg);
    }
    case SG_FAST_SIGMOID: {    /* 1 / (1 + slope |z|)^2 */
        SCALAR a = (SCALAR)fabs(z) * p1 + (SCALAR)1; /* p1 = slope */
        return (SCALAR)1 / (a * a);
    }
    case SG_TRIANGLE: {        /* clamp(1 - |z| / gamma, min=0) / gamma */
        SCALAR a = (SCALAR)1 - (SCALAR)fabs(z) / p1; /* p1 = gamma */
        a = a < (SCALAR)0 ? (SCALAR)0 : a;
        return a / p1;
    }
    default: {                 /* rectangle: (|z| < width/2) / width */
        return (SCALAR)((SCALAR)fabs(z) < p1) / p2; /* p1 = width / 2, p2 = width */
    }
    }
}

static inline void FN(sg_constants)(int kind, double param, SCALAR* p1, SCALAR* p2) {
    switch (kind) {
    case SG_ATAN: *p1 = (SCALAR)(M_PI / 2 * param); *p2 = (SCALAR)(param / 2); break;
    case SG_SIGMOID: *p1 = (SCALAR)param; *p2 = 0; break;
    case SG_FAST_SIGMOID: *p1 = (SCALAR)param; *p2 = 0; break;
    case SG_TRIANGLE: *p1 = (SCALAR)param; *p2 = 0; break;
    default: *p1 = (SCALAR)(param / 2); *p2 = (SCALAR)param; break;
    }
}

/* sigma'(z[i]) for n values: lets the caller check the formula against the Python surrogate's grad. */
void FN(surrogate_grad)(int kind, double param, const SCALAR* z, SCALAR* out, int64_t n) {
    SCALAR p1, p2;
    FN(sg_constants)(kind, param, &p1, &p2);
    for (int64_t i = 0; i < n; i++) out[i] = FN(sg_grad)(z[i], kind, p1, p2);
}

static inline SCALAR FN(reset_v)(SCALAR h, SCALAR s, int mode, SCALAR v_th, SCALAR v_reset) {
    if (mode == RESET_HARD) return h * ((SCALAR)1 - s) + s * v_reset; /* h * (1 - s) + v_reset * s */
    if (mode == RESET_SOFT) return h - s * v_th;                       /* h - v_th * s */
    return h;
}

/* One forward time step over n neurons of a block: h = decay * v + x, s = Theta(h - v_th), v = reset(h, s). */
static inline __attribute__((always_inline)) void FN(forward_step)(
        const int mode, const int64_t n, const STORE* restrict xt, SCALAR* restrict v, STORE* restrict st,
        SCALAR* restrict ht, const SCALAR decay, const SCALAR v_th, const SCALAR v_reset) {
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const SCALAR h = v[i] * decay + LD(xt[i]);                        /* decay * v + x */
        const SCALAR s = (h - v_th >= (SCALAR)0) ? (SCALAR)1 : (SCALAR)0; /* Theta(h - v_th) */
        if (st) st[i] = ST(s);
        if (ht) ht[i] = h;
        v[i] = FN(reset_v)(h, s, mode, v_th, v_reset);
    }
}

#define FWD_MODE(MODE, ST, HT)                                                                                \
    FN(forward_step)(MODE, n, x + t * x_tstride + i0, v, ST, HT, decay, v_th, v_reset)
#define FWD_DISPATCH(ST, HT)                                                                                  \
    do {                                                                                                      \
        if (mode == RESET_HARD) FWD_MODE(RESET_HARD, ST, HT);                                                 \
        else if (mode == RESET_SOFT) FWD_MODE(RESET_SOFT, ST, HT);                                            \
        else FWD_MODE(RESET_NONE, ST, HT);                                                                    \
    } while (0)

/* Forward over x [T, N] (x_tstride = N, or 0 for an input repeated at every step). Writes spikes [T, N],
 * v_last [N] and, if not NULL, h_rec and v_rec [T, N] (membrane before and after the reset).
 * v_init: [N] or NULL (p->v_init). */
void FN(lif_forward)(const lif_params* p, const STORE* x, int64_t x_tstride, const STORE* v_init,
                     SCALAR decay_value, STORE* spikes, STORE* h_rec, STORE* v_rec, STORE* v_last) {
    const int64_t T = p->T, N = p->N;
    const SCALAR decay = decay_value, v_th = (SCALAR)p->v_th, v_reset = (SCALAR)p->v_reset;
    const int mode = p->reset_mode;
    const int64_t nblocks = (N + BLOCK - 1) / BLOCK;
    #pragma omp parallel for schedule(static) num_threads(p->nthreads)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        const int64_t i0 = blk * BLOCK, n = (i0 + BLOCK <= N ? BLOCK : N - i0);
        SCALAR v[BLOCK], hb[BLOCK];
        for (int64_t i = 0; i < n; i++) v[i] = v_init ? LD(v_init[i0 + i]) : (SCALAR)p->v_init;
        for (int64_t t = 0; t < T; t++) {
            STORE* st = spikes ? spikes + t * N + i0 : NULL;
            if (h_rec) {
                FWD_DISPATCH(st, hb);
                for (int64_t i = 0; i < n; i++) h_rec[t * N + i0 + i] = ST(hb[i]);
            } else if (st) {
                FWD_DISPATCH(st, NULL);
            }
            if (v_rec) for (int64_t i = 0; i < n; i++) v_rec[t * N + i0 + i] = ST(v[i]);
        }
        if (v_last) for (int64_t i = 0; i < n; i++) v_last[i0 + i] = ST(v[i]);
    }
}

/* One backward time step over n neurons of a block, specialised (inlined with constant kind, mode and detach).
 * gv[i] holds dL/dv[t] on entry and dL/dv[t-1] on exit; gxt[i] = dL/dx[t] = dL/dh[t]. */
static inline __attribute__((always_inline)) void FN(backward_step)(
        const int kind, const int mode, const int detach, const int64_t n, const SCALAR* restrict ht,
        const STORE* restrict gst, const SCALAR* restrict sgt, STORE* restrict gxt, SCALAR* restrict gv,
        const SCALAR v_th, const SCALAR v_reset, const SCALAR decay, const SCALAR p1, const SCALAR p2) {
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const SCALAR h = ht[i];
        const SCALAR z = h - v_th;
        const SCALAR s = z >= (SCALAR)0 ? (SCALAR)1 : (SCALAR)0;
        const SCALAR g = gv[i];
        SCALAR gs = LD(gst[i]);
        SCALAR gh_reset = g;
        if (mode == RESET_HARD) {
            /* v = h * (1 - s) + v_reset * s: autograd adds d/ds of v_reset * s, then of h * (1 - s) */
            if (!detach) gs = (gs + g * v_reset) + (-(g * h));
            gh_reset = g * ((SCALAR)1 - s);
        } else if (mode == RESET_SOFT) {
            if (!detach) gs = gs + (-g) * v_th;                      /* v = h - v_th * s */
        }
        const SCALAR sg = kind == SG_GIVEN ? sgt[i] : FN(sg_grad)(z, kind, p1, p2);
        const SCALAR gh = gs * sg + gh_reset;                        /* d/dh of (h - v_th) and of the reset */
        gxt[i] = ST(gh);
        gv[i] = gh * decay;                                          /* d(decay * v)/dv */
    }
}

#define BWD_CASE(KIND, MODE, DETACH)                                                                          \
    if (kind == KIND && mode == MODE && detach == DETACH) {                                                   \
        for (int64_t t = T - 1; t >= 0; t--) {                                                                \
            FN(backward_step)(KIND, MODE, DETACH, n, hbuf + t * n, grad_spikes + t * gs_tstride + i0,                  \
                              sg_given ? sg_given + t * N + i0 : NULL, grad_x + t * N + i0, gv, v_th, v_reset,  \
                              decay, p1, p2);                                                                  \
        }                                                                                                     \
        goto done;                                                                                            \
    }
#define BWD_MODES(KIND)                                                                                       \
    BWD_CASE(KIND, RESET_HARD, 0) BWD_CASE(KIND, RESET_HARD, 1) BWD_CASE(KIND, RESET_SOFT, 0)                 \
    BWD_CASE(KIND, RESET_SOFT, 1) BWD_CASE(KIND, RESET_NONE, 0) BWD_CASE(KIND, RESET_NONE, 1)

/* Backward: grad_x [T, N] from the input x (as for the forward), grad_spikes [T, N] (gs_tstride = N, or 0 for
 * the same gradient at every step, as from spikes.sum()) and grad_v_last [N] (NULL: zero). The membrane h is recomputed block by block into a buffer that stays in cache (T x BLOCK values), so the
 * forward saves nothing but its input. sg_given [T, N]: the surrogate derivative at h - v_th computed by the
 * caller, used when p->surrogate is SG_GIVEN (a surrogate whose formula this file does not reproduce exactly).
 * grad_v_init [N] (NULL: not needed). grad_decay: NULL, or one double per block (nblocks = ceil(N / BLOCK)),
 * summed by the caller: sum over t and neurons of dL/dh[t] * v[t-1]. Returns 0, or -1 if out of memory. */
int FN(lif_backward)(const lif_params* p, const STORE* x, int64_t x_tstride, const STORE* grad_spikes,
                     int64_t gs_tstride, const STORE* grad_v_last, const STORE* v_init, SCALAR decay_value,
                     const SCALAR* sg_given, STORE* grad_x, STORE* grad_v_init, double* grad_decay) {
    const int64_t T = p->T, N = p->N;
    const int64_t nblocks = (N + BLOCK - 1) / BLOCK;
    const int kind = p->surrogate, mode = p->reset_mode, detach = p->detach_reset != 0;
    const SCALAR v_th = (SCALAR)p->v_th, v_reset = (SCALAR)p->v_reset, decay = decay_value;
    SCALAR p1 = 0, p2 = 0;
    if (kind != SG_GIVEN) FN(sg_constants)(kind, p->sg_param, &p1, &p2);
    int failed = 0;
    #pragma omp parallel num_threads(p->nthreads) reduction(|:failed)
    {
        SCALAR* hbuf = (SCALAR*)malloc((size_t)T * BLOCK * sizeof(SCALAR));
        if (!hbuf) failed = 1;
        #pragma omp for schedule(static)
        for (int64_t blk = 0; blk < nblocks; blk++) {
            if (!hbuf) continue;
            const int64_t i0 = blk * BLOCK, n = (i0 + BLOCK <= N ? BLOCK : N - i0);
            SCALAR gv[BLOCK];
            /* recompute h[t] for this block: gv holds v meanwhile */
            for (int64_t i = 0; i < n; i++) gv[i] = v_init ? LD(v_init[i0 + i]) : (SCALAR)p->v_init;
            for (int64_t t = 0; t < T; t++) {
                const STORE* xt = x + t * x_tstride + i0;
                SCALAR* ht = hbuf + t * n;
                if (mode == RESET_HARD) FN(forward_step)(RESET_HARD, n, xt, gv, NULL, ht, decay, v_th, v_reset);
                else if (mode == RESET_SOFT) FN(forward_step)(RESET_SOFT, n, xt, gv, NULL, ht, decay, v_th, v_reset);
                else FN(forward_step)(RESET_NONE, n, xt, gv, NULL, ht, decay, v_th, v_reset);
            }
            for (int64_t i = 0; i < n; i++) gv[i] = grad_v_last ? LD(grad_v_last[i0 + i]) : (SCALAR)0;
            BWD_MODES(SG_ATAN) BWD_MODES(SG_SIGMOID) BWD_MODES(SG_FAST_SIGMOID) BWD_MODES(SG_TRIANGLE)
            BWD_MODES(SG_RECTANGLE) BWD_MODES(SG_GIVEN)
        done:
            if (grad_v_init) for (int64_t i = 0; i < n; i++) grad_v_init[i0 + i] = ST(gv[i]);
            if (grad_decay) { /* sum_t sum_i dL/dh[t, i] * v[t-1, i], v[t-1] = reset(h[t-1]) */
                double gd = 0.0;
                const STORE* gx0 = grad_x + i0;
                for (int64_t i = 0; i < n; i++)
                    gd += (double)LD(gx0[i]) * (double)(v_init ? LD(v_init[i0 + i]) : (SCALAR)p->v_init);
                for (int64_t t = 1; t < T; t++) {
                    const STORE* gxt = grad_x + t * N + i0;
                    const SCALAR* hp = hbuf + (t - 1) * n;
                    #pragma omp simd reduction(+:gd)
                    for (int64_t i = 0; i < n; i++) {
                        const SCALAR sp = hp[i] - v_th >= (SCALAR)0 ? (SCALAR)1 : (SCALAR)0;
                        gd += (double)LD(gxt[i]) * (double)FN(reset_v)(hp[i], sp, mode, v_th, v_reset);
                    }
                }
                grad_decay[blk] = gd;
            }
        }
        free(hbuf);
    }
    return failed ? -1 : 0;
}

#undef BWD_CASE
#undef BWD_MODES
#undef FWD_MODE
#undef FWD_DISPATCH
#undef FN
#undef CAT
#undef CAT_
