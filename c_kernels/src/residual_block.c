/*
 * Residual block conv1 -> conv2 -> ADD(conv2 output, x), streamed by rows (see mcugen_kernels.h).
 *
 * The two convs and the ADD are the ordinary kernels, called on bands of rows: a conv given
 * input rows [in_first, in_last) with input_dims.h and pad_h shifted to match computes the same
 * pixels as on the whole image, because the rows outside the band are either outside the image
 * (padding either way) or never read by the band's outputs. Output row r needs conv1 rows
 * r - pad2 .. r + (kh2 - 1 - pad2); and since it overwrites x's row r (in place), every conv1
 * row that reads x's row r, up to r + pad1, must exist first.
 */
#include <string.h>

#include "mcugen_kernel_util.h"

/* conv1 rows computed past output row r: what conv2 reads below r, and what reads x's row r. */
static int32_t rows_ahead(const mcugen_conv_layer *conv1, const mcugen_conv_layer *conv2)
{
    return mcugen_max(conv1->params->pad_h, conv2->filter_dims->h - 1 - conv2->params->pad_h);
}

static int32_t window_rows(const mcugen_dims *dims, const mcugen_conv_layer *conv1,
                           const mcugen_conv_layer *conv2)
{
    return mcugen_min(dims->h, conv2->params->pad_h + rows_ahead(conv1, conv2) + 1);
}

/* The window and the output row, rounded up to 4 bytes: the conv scratch after them is aligned. */
static int32_t rows_bytes(const mcugen_dims *dims, const mcugen_conv_layer *conv1,
                          const mcugen_conv_layer *conv2)
{
    const int32_t window = window_rows(dims, conv1, conv2) * dims->w * conv1->filter_dims->n;
    return (window + dims->w * dims->c + 3) / 4 * 4;
}

int32_t mcugen_residual_block_s8_scratch_size(const mcugen_dims *dims,
                                              const mcugen_conv_layer *conv1,
                                              const mcugen_conv_layer *conv2, int32_t conv_scratch)
{
    return rows_bytes(dims, conv1, conv2) + conv_scratch;
}

/* Output rows [first, last) of one image from its input rows [in_first, in_last), held at input. */
static void conv_rows(const mcugen_conv_layer *conv, void *scratch, const int8_t *input,
                      int32_t in_first, int32_t in_last, int32_t first, int32_t last,
                      const mcugen_dims *in_shape, int8_t *output)
{
    const mcugen_dims in_dims = {1, in_last - in_first, in_shape->w, in_shape->c};
    const mcugen_dims out_dims = {1, last - first, in_shape->w, conv->filter_dims->n};
    mcugen_conv_params p = *conv->params;
    p.pad_h += in_first - first;
    conv->kernel(scratch, &p, conv->quant, &in_dims, input, conv->filter_dims, conv->filter,
                 conv->bias, &out_dims, output);
}

void mcugen_residual_block_s8(void *scratch, const mcugen_conv_layer *conv1,
                              const mcugen_conv_layer *conv2, const mcugen_add_params *add,
                              const mcugen_dims *dims, const int8_t *x, int8_t *output)
{
    const int32_t h = dims->h, x_row = dims->w * dims->c;
    const int32_t y_row = dims->w * conv1->filter_dims->n;
    const mcugen_dims y_shape = {1, h, dims->w, conv1->filter_dims->n};
    const int32_t pad1 = conv1->params->pad_h, kh1 = conv1->filter_dims->h;
    const int32_t pad2 = conv2->params->pad_h, ahead = rows_ahead(conv1, conv2);
    int8_t *window = (int8_t *)scratch;
    int8_t *z = window + window_rows(dims, conv1, conv2) * y_row;
    void *conv_scratch = (int8_t *)scratch + rows_bytes(dims, conv1, conv2);
    int32_t lo = 0, next = 0, r, k; /* the window holds conv1 rows [lo, next) */
    for (r = 0; r < h; r++) {
        const int32_t need_lo = mcugen_max(0, r - pad2), need_hi = mcugen_min(h, r + ahead + 1);
        if (need_lo > lo) { /* row by row: a memcpy never overlaps itself */
            for (k = need_lo; k < next; k++) {
                memcpy(window + (k - need_lo) * y_row, window + (k - lo) * y_row, (size_t)y_row);
            }
            lo = need_lo;
        }
        if (need_hi > next) {
            const int32_t in_first = mcugen_max(0, next - pad1);
            const int32_t in_last = mcugen_min(h, need_hi - pad1 + kh1 - 1);
            conv_rows(conv1, conv_scratch, x + in_first * x_row, in_first, in_last, next, need_hi,
                      dims, window + (next - lo) * y_row);
            next = need_hi;
        }
        conv_rows(conv2, conv_scratch, window, lo, next, r, r + 1, &y_shape, z);
        mcugen_add_s8(add, z, x + r * x_row, x_row, x_row, output + r * x_row);
    }
}
