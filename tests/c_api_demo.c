/* Calls the starlet C API directly, without Python: proof that csrc/ embeds in C.
 * Transforms a small image, checks exact reconstruction and the error codes, and
 * prints "ok" with exit status 0 on success. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "starlet.h"

int main(void)
{
    enum { H = 7, W = 10, NSCALES = 3 };
    double x[H * W], planes[(NSCALES + 1) * H * W], back[H * W];
    float xf[H * W], planesf[(NSCALES + 1) * H * W];
    for (int i = 0; i < H * W; ++i) {
        x[i] = sin(0.37 * i) + 0.01 * i;
        xf[i] = (float)x[i];
    }
    if (sgmca_starlet2d_forward_f64(x, planes, 1, H, W, NSCALES, 1) != SGMCA_OK) return 1;
    if (sgmca_starlet_inverse_f64(planes, back, 1, NSCALES + 1, H * W, 1) != SGMCA_OK)
        return 2;
    for (int i = 0; i < H * W; ++i)
        if (fabs(back[i] - x[i]) > 1e-12) return 3;
    if (sgmca_starlet2d_forward_f32(xf, planesf, 1, H, W, NSCALES, 1) != SGMCA_OK) return 4;
    for (int i = 0; i < (NSCALES + 1) * H * W; ++i)
        if (fabs(planesf[i] - planes[i]) > 1e-5) return 5;
    if (sgmca_starlet2d_forward_f64(x, planes, 1, 1, W, NSCALES, 1) != SGMCA_ERR_BAD_SIZE)
        return 6;
    if (sgmca_starlet2d_forward_f64(x, planes, 1, H, W, 0, 1) != SGMCA_ERR_BAD_NSCALES)
        return 7;
    if (sgmca_starlet1d_forward_f64(NULL, planes, 1, W, 1, 1) != SGMCA_ERR_NULL_POINTER)
        return 8;
    /* Print the centre of the first detail plane so the test can compare values. */
    printf("ok %.17g %s\n", planes[(H / 2) * W + W / 2],
           sgmca_status_message(SGMCA_ERR_BAD_SIZE));
    return 0;
}
