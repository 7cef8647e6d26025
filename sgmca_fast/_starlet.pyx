# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython bindings to the C starlet kernels (csrc/starlet.c); the GIL is released.

The arguments are validated by :mod:`sgmca_fast.starlet`; these functions only
check what the C code reports.
"""

cimport numpy as cnp

cnp.import_array()


cdef extern from "starlet.h" nogil:
    ctypedef enum sgmca_status:
        SGMCA_OK
    const char *sgmca_status_message(sgmca_status status)
    int sgmca_default_threads()
    sgmca_status sgmca_starlet2d_forward_f64(
        const double *inp, double *out, size_t nimages, size_t h, size_t w,
        int nscales, int nthreads)
    sgmca_status sgmca_starlet2d_forward_f32(
        const float *inp, float *out, size_t nimages, size_t h, size_t w,
        int nscales, int nthreads)
    sgmca_status sgmca_starlet1d_forward_f64(
        const double *inp, double *out, size_t nsignals, size_t n,
        int nscales, int nthreads)
    sgmca_status sgmca_starlet1d_forward_f32(
        const float *inp, float *out, size_t nsignals, size_t n,
        int nscales, int nthreads)
    sgmca_status sgmca_starlet_inverse_f64(
        const double *inp, double *out, size_t nitems, size_t nplanes,
        size_t plane_size, int nthreads)
    sgmca_status sgmca_starlet_inverse_f32(
        const float *inp, float *out, size_t nitems, size_t nplanes,
        size_t plane_size, int nthreads)

ctypedef fused real:
    float
    double


cdef int _check(sgmca_status status) except -1:
    if status != SGMCA_OK:
        raise ValueError(sgmca_status_message(status).decode())
    return 0


def default_threads():
    """Return the thread count the C kernels use by default."""
    return sgmca_default_threads()


def forward2d(const real[:, :, ::1] x, real[:, :, :, ::1] out, int nscales,
              int nthreads):
    """Starlet of x (B, H, W) into out (B, nscales + 1, H, W)."""
    cdef sgmca_status status
    cdef size_t b = x.shape[0], h = x.shape[1], w = x.shape[2]
    if b == 0:
        return
    with nogil:
        if real is double:
            status = sgmca_starlet2d_forward_f64(&x[0, 0, 0], &out[0, 0, 0, 0],
                                                 b, h, w, nscales, nthreads)
        else:
            status = sgmca_starlet2d_forward_f32(&x[0, 0, 0], &out[0, 0, 0, 0],
                                                 b, h, w, nscales, nthreads)
    _check(status)


def forward1d(const real[:, ::1] x, real[:, :, ::1] out, int nscales, int nthreads):
    """Starlet of x (B, N) into out (B, nscales + 1, N)."""
    cdef sgmca_status status
    cdef size_t b = x.shape[0], n = x.shape[1]
    if b == 0:
        return
    with nogil:
        if real is double:
            status = sgmca_starlet1d_forward_f64(&x[0, 0], &out[0, 0, 0],
                                                 b, n, nscales, nthreads)
        else:
            status = sgmca_starlet1d_forward_f32(&x[0, 0], &out[0, 0, 0],
                                                 b, n, nscales, nthreads)
    _check(status)


def inverse(const real[:, :, ::1] w, real[:, ::1] out, int nthreads):
    """Sum w (B, nplanes, P) over its planes into out (B, P)."""
    cdef sgmca_status status
    cdef size_t b = w.shape[0], nplanes = w.shape[1], p = w.shape[2]
    if b == 0 or p == 0:
        return
    with nogil:
        if real is double:
            status = sgmca_starlet_inverse_f64(&w[0, 0, 0], &out[0, 0], b, nplanes, p,
                                               nthreads)
        else:
            status = sgmca_starlet_inverse_f32(&w[0, 0, 0], &out[0, 0], b, nplanes, p,
                                               nthreads)
    _check(status)
