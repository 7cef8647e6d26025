#include "starlet.h"

#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Reflect index i into [0, n) about the edge samples, repeatedly (period 2n - 2). */
static inline size_t mirror_index(ptrdiff_t i, size_t n)
{
    const ptrdiff_t period = 2 * (ptrdiff_t)n - 2;
    i %= period;
    if (i < 0) i += period;
    if (i >= (ptrdiff_t)n) i = period - i;
    return (size_t)i;
}

const char *sgmca_status_message(sgmca_status status)
{
    switch (status) {
    case SGMCA_OK: return "success";
    case SGMCA_ERR_NULL_POINTER: return "a buffer pointer is NULL";
    case SGMCA_ERR_BAD_SIZE: return "every transformed axis needs at least 2 samples";
    case SGMCA_ERR_BAD_NSCALES: return "nscales must be at least 1";
    case SGMCA_ERR_NO_MEMORY: return "out of memory for the scratch buffer";
    }
    return "unknown status";
}

int sgmca_default_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

#define REAL double
#define SFX f64
#include "starlet_impl.h"
#undef REAL
#undef SFX

#define REAL float
#define SFX f32
#include "starlet_impl.h"
#undef REAL
#undef SFX
