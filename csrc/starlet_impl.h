/*
 * Type-generic body of the starlet kernels, included by starlet.c once per dtype
 * with REAL (the C type) and SFX (the symbol suffix) defined.
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)

/* Smooth one line of n samples with the B3 kernel at hole spacing step. */
static void FN(smooth_line_)(const REAL *restrict src, REAL *restrict dst, size_t n,
                             size_t step)
{
    const REAL h0 = (REAL)(1.0 / 16.0), h1 = (REAL)(4.0 / 16.0),
               h2 = (REAL)(6.0 / 16.0);
    const size_t s2 = 2 * step;
    size_t lo = s2 < n ? s2 : n;                 /* first sample needing no mirror */
    size_t hi = n > s2 ? n - s2 : 0;             /* one past the last such sample */
    if (hi < lo) hi = lo;
    for (size_t p = 0; p < lo; ++p) {
        ptrdiff_t q = (ptrdiff_t)p, st = (ptrdiff_t)step;
        dst[p] = h0 * (src[mirror_index(q - 2 * st, n)] + src[mirror_index(q + 2 * st, n)])
               + h1 * (src[mirror_index(q - st, n)] + src[mirror_index(q + st, n)])
               + h2 * src[p];
    }
    for (size_t p = lo; p < hi; ++p) {
        dst[p] = h0 * (src[p - s2] + src[p + s2]) + h1 * (src[p - step] + src[p + step])
               + h2 * src[p];
    }
    for (size_t p = hi; p < n; ++p) {
        ptrdiff_t q = (ptrdiff_t)p, st = (ptrdiff_t)step;
        dst[p] = h0 * (src[mirror_index(q - 2 * st, n)] + src[mirror_index(q + 2 * st, n)])
               + h1 * (src[mirror_index(q - st, n)] + src[mirror_index(q + st, n)])
               + h2 * src[p];
    }
}

/*
 * One image: planes holds nscales + 1 planes of h * w; tmp is h * w scratch.
 * c_{j+1} is built in plane j + 1, then plane j becomes c_j - c_{j+1} in the same
 * pass over rows, so each scale reads its input twice and writes two planes.
 */
static void FN(forward2d_one_)(const REAL *restrict x, REAL *restrict planes,
                               REAL *restrict tmp, size_t h, size_t w, int nscales)
{
    const REAL h0 = (REAL)(1.0 / 16.0), h1 = (REAL)(4.0 / 16.0),
               h2 = (REAL)(6.0 / 16.0);
    const size_t npix = h * w;
    for (int j = 0; j < nscales; ++j) {
        const REAL *cur = j == 0 ? x : planes + (size_t)j * npix;
        REAL *detail = planes + (size_t)j * npix;
        REAL *next = planes + (size_t)(j + 1) * npix;
        const size_t step = (size_t)1 << j;
        const ptrdiff_t st = (ptrdiff_t)step;
        for (size_t r = 0; r < h; ++r)
            FN(smooth_line_)(cur + r * w, tmp + r * w, w, step);
        for (size_t r = 0; r < h; ++r) {
            const ptrdiff_t q = (ptrdiff_t)r;
            const REAL *restrict ra = tmp + mirror_index(q - 2 * st, h) * w;
            const REAL *restrict rb = tmp + mirror_index(q - st, h) * w;
            const REAL *restrict rc = tmp + r * w;
            const REAL *restrict rd = tmp + mirror_index(q + st, h) * w;
            const REAL *restrict re = tmp + mirror_index(q + 2 * st, h) * w;
            const REAL *cr = cur + r * w;
            REAL *nr = next + r * w;
            REAL *dr = detail + r * w;
            for (size_t c = 0; c < w; ++c) {
                const REAL s = h0 * (ra[c] + re[c]) + h1 * (rb[c] + rd[c]) + h2 * rc[c];
                const REAL v = cr[c];
                nr[c] = s;
                dr[c] = v - s;
            }
        }
    }
}

static void FN(forward1d_one_)(const REAL *restrict x, REAL *restrict planes, size_t n,
                               int nscales)
{
    for (int j = 0; j < nscales; ++j) {
        const REAL *cur = j == 0 ? x : planes + (size_t)j * n;
        REAL *detail = planes + (size_t)j * n;
        REAL *next = planes + (size_t)(j + 1) * n;
        FN(smooth_line_)(cur, next, n, (size_t)1 << j);
        for (size_t p = 0; p < n; ++p) detail[p] = cur[p] - next[p];
    }
}

sgmca_status FN(sgmca_starlet2d_forward_)(const REAL *restrict in, REAL *restrict out,
                                          size_t nimages, size_t h, size_t w,
                                          int nscales, int nthreads)
{
    if (in == NULL || out == NULL) return SGMCA_ERR_NULL_POINTER;
    if (nscales < 1) return SGMCA_ERR_BAD_NSCALES;
    if (h < 2 || w < 2) return SGMCA_ERR_BAD_SIZE;
    const size_t npix = h * w;
    int failed = 0;
#ifdef _OPENMP
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    if ((size_t)nthreads > nimages) nthreads = (int)(nimages > 0 ? nimages : 1);
#pragma omp parallel num_threads(nthreads) reduction(| : failed)
#endif
    {
        REAL *tmp = malloc(npix * sizeof(REAL)); /* one scratch image per thread */
        if (tmp == NULL) failed = 1;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (ptrdiff_t b = 0; b < (ptrdiff_t)nimages; ++b) {
            if (tmp != NULL)
                FN(forward2d_one_)(in + (size_t)b * npix,
                                   out + (size_t)b * (size_t)(nscales + 1) * npix, tmp, h,
                                   w, nscales);
        }
        free(tmp);
    }
    (void)nthreads;
    return failed ? SGMCA_ERR_NO_MEMORY : SGMCA_OK;
}

sgmca_status FN(sgmca_starlet1d_forward_)(const REAL *restrict in, REAL *restrict out,
                                          size_t nsignals, size_t n, int nscales,
                                          int nthreads)
{
    if (in == NULL || out == NULL) return SGMCA_ERR_NULL_POINTER;
    if (nscales < 1) return SGMCA_ERR_BAD_NSCALES;
    if (n < 2) return SGMCA_ERR_BAD_SIZE;
#ifdef _OPENMP
    if (nthreads <= 0) nthreads = omp_get_max_threads();
#pragma omp parallel for num_threads(nthreads) schedule(static)
#endif
    for (ptrdiff_t b = 0; b < (ptrdiff_t)nsignals; ++b)
        FN(forward1d_one_)(in + (size_t)b * n, out + (size_t)b * (size_t)(nscales + 1) * n,
                           n, nscales);
    (void)nthreads;
    return SGMCA_OK;
}

sgmca_status FN(sgmca_starlet_inverse_)(const REAL *restrict in, REAL *restrict out,
                                        size_t nitems, size_t nplanes, size_t plane_size,
                                        int nthreads)
{
    if (in == NULL || out == NULL) return SGMCA_ERR_NULL_POINTER;
    if (nplanes < 1) return SGMCA_ERR_BAD_NSCALES;
#ifdef _OPENMP
    if (nthreads <= 0) nthreads = omp_get_max_threads();
#pragma omp parallel for num_threads(nthreads) schedule(static)
#endif
    for (ptrdiff_t b = 0; b < (ptrdiff_t)nitems; ++b) {
        const REAL *src = in + (size_t)b * nplanes * plane_size;
        REAL *dst = out + (size_t)b * plane_size;
        for (size_t p = 0; p < plane_size; ++p) dst[p] = src[p];
        for (size_t s = 1; s < nplanes; ++s) {
            const REAL *plane = src + s * plane_size;
            for (size_t p = 0; p < plane_size; ++p) dst[p] += plane[p];
        }
    }
    (void)nthreads;
    return SGMCA_OK;
}

#undef FN
#undef CAT
#undef CAT_
