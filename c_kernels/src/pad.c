/* PAD / PADV2, int8, 4-D NHWC. */
#include <string.h>

#include "mcugen_kernel_util.h"

/* Writes n copies of the pad value and returns the position after them. */
static int8_t *fill(int8_t *out, int8_t value, int32_t n)
{
    memset(out, value, (size_t)n);
    return out + n;
}

void mcugen_pad_s8(const mcugen_pad_params *params, const mcugen_dims *input_dims,
                   const int8_t *input, int8_t *output)
{
    const int32_t *lo = params->before, *hi = params->after;
    const int32_t in_n = input_dims->n, in_h = input_dims->h, in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t out_n = lo[0] + in_n + hi[0], out_h = lo[1] + in_h + hi[1];
    const int32_t out_c = lo[3] + in_c + hi[3];
    const int32_t out_row = (lo[2] + in_w + hi[2]) * out_c;
    const int8_t value = (int8_t)params->pad_value;
    /* pixels per memcpy: a whole input row when channels are not padded */
    const int32_t run = lo[3] == 0 && hi[3] == 0 ? in_w : 1;
    int32_t b, y, x;
    for (b = 0; b < out_n; b++) {
        for (y = 0; y < out_h; y++) {
            const int32_t ib = b - lo[0], iy = y - lo[1];
            const int8_t *src;
            if (ib < 0 || ib >= in_n || iy < 0 || iy >= in_h) {
                output = fill(output, value, out_row);
                continue;
            }
            src = input + (ib * in_h + iy) * in_w * in_c;
            output = fill(output, value, lo[2] * out_c);
            for (x = 0; x < in_w; x += run) {
                output = fill(output, value, lo[3]);
                memcpy(output, src + x * in_c, (size_t)(run * in_c));
                output = fill(output + run * in_c, value, hi[3]);
            }
            output = fill(output, value, hi[2] * out_c);
        }
    }
}
