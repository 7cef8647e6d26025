/*
 * Starlet (isotropic undecimated "a trous" wavelet) transform, B3-spline kernel.
 *
 * Plain C99, no Python: usable from any C program. Output layout for a batch of
 * images (nimages, h, w) is (nimages, nscales + 1, h, w), C order: detail planes
 * w_0 .. w_{nscales-1}, then the coarse plane c_nscales. The inverse transform is the
 * sum over the scale axis. Boundaries are mirrored about the edge sample (index -1
 * reads 1, index n reads n - 2), repeatedly when the kernel spans the signal.
 */
#ifndef SGMCA_STARLET_H
#define SGMCA_STARLET_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SGMCA_OK = 0,
    SGMCA_ERR_NULL_POINTER = 1,
    SGMCA_ERR_BAD_SIZE = 2,    /* an axis shorter than 2 samples */
    SGMCA_ERR_BAD_NSCALES = 3, /* nscales < 1 */
    SGMCA_ERR_NO_MEMORY = 4
} sgmca_status;

/* A short English description of a status code (static storage). */
const char *sgmca_status_message(sgmca_status status);

/* Number of threads used when nthreads <= 0 (1 without OpenMP). */
int sgmca_default_threads(void);

/*
 * 2-D forward transform of nimages images of h x w samples each.
 * in:  nimages * h * w values, C order.
 * out: nimages * (nscales + 1) * h * w values, C order; must not overlap in.
 * nthreads: OpenMP threads over images (<= 0: the OpenMP default).
 */
sgmca_status sgmca_starlet2d_forward_f64(const double *restrict in, double *restrict out,
                                         size_t nimages, size_t h, size_t w,
                                         int nscales, int nthreads);
sgmca_status sgmca_starlet2d_forward_f32(const float *restrict in, float *restrict out,
                                         size_t nimages, size_t h, size_t w,
                                         int nscales, int nthreads);

/* 1-D forward transform of nsignals signals of n samples: out is
 * nsignals * (nscales + 1) * n values. */
sgmca_status sgmca_starlet1d_forward_f64(const double *restrict in, double *restrict out,
                                         size_t nsignals, size_t n,
                                         int nscales, int nthreads);
sgmca_status sgmca_starlet1d_forward_f32(const float *restrict in, float *restrict out,
                                         size_t nsignals, size_t n,
                                         int nscales, int nthreads);

/* Inverse (both 1-D and 2-D): out[b, p] = sum_s in[b, s, p] for nitems items of
 * (nscales + 1) planes of plane_size samples. */
sgmca_status sgmca_starlet_inverse_f64(const double *restrict in, double *restrict out,
                                       size_t nitems, size_t nplanes, size_t plane_size,
                                       int nthreads);
sgmca_status sgmca_starlet_inverse_f32(const float *restrict in, float *restrict out,
                                       size_t nitems, size_t nplanes, size_t plane_size,
                                       int nthreads);

#ifdef __cplusplus
}
#endif

#endif /* SGMCA_STARLET_H */
