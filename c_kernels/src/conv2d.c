/* CONV_2D, int8, per-channel or per-tensor requantization. */
#include <string.h>

#include "mcugen_kernel_util.h"

/* Accumulators of one block: 2 columns (output pixels) x 2 filters (output channels). */
typedef struct {
    int32_t p0o0;
    int32_t p0o1;
    int32_t p1o0;
    int32_t p1o1;
} acc_2x2;

static inline void mac_2x2(acc_2x2 *a, const int8_t *col0, const int8_t *col1, const int8_t *w0,
                           const int8_t *w1, int32_t k, int32_t input_offset)
{
    const int32_t x0 = mcugen_get_s8(col0, k) + input_offset;
    const int32_t x1 = mcugen_get_s8(col1, k) + input_offset;
    const int32_t f0 = mcugen_get_s8(w0, k);
    const int32_t f1 = mcugen_get_s8(w1, k);
    a->p0o0 += x0 * f0;
    a->p0o1 += x0 * f1;
    a->p1o0 += x1 * f0;
    a->p1o1 += x1 * f1;
}

/* The inner products sum_k (col[k] + input_offset) * w[k] of a 2x2 block: each loaded input
 * and weight is used twice. The only hot loop of conv; a SIMD variant replaces this function. */
static inline acc_2x2 dot_2x2(const int8_t *col0, const int8_t *col1, const int8_t *w0,
                              const int8_t *w1, int32_t depth, int32_t input_offset)
{
    acc_2x2 a = {0, 0, 0, 0};
    int32_t k = 0;
    for (; k + 4 <= depth; k += 4) {
        mac_2x2(&a, col0, col1, w0, w1, k, input_offset);
        mac_2x2(&a, col0, col1, w0, w1, k + 1, input_offset);
        mac_2x2(&a, col0, col1, w0, w1, k + 2, input_offset);
        mac_2x2(&a, col0, col1, w0, w1, k + 3, input_offset);
    }
    for (; k < depth; k++) {
        mac_2x2(&a, col0, col1, w0, w1, k, input_offset);
    }
    return a;
}

/*
 * All output channels of two output pixels, given their input columns (depth values each).
 * col1 == col0 and out1 == out0 for a lone last pixel; an odd last channel is computed twice.
 */
static void conv_columns(const int8_t *col0, const int8_t *col1, int32_t depth,
                         const mcugen_conv_params *params, const mcugen_quant_params *q,
                         const int8_t *filter, const int32_t *bias, int32_t out_ch, int8_t *out0,
                         int8_t *out1)
{
    const mcugen_conv_params p = *params; /* output stores may alias anything: copy once */
    int32_t o;
    for (o = 0; o < out_ch; o += 2) {
        const int32_t o1 = mcugen_lane(o, 1, out_ch);
        const int32_t b0 = mcugen_bias(bias, o), b1 = mcugen_bias(bias, o1);
        const acc_2x2 a =
            dot_2x2(col0, col1, filter + o * depth, filter + o1 * depth, depth, p.input_offset);
        mcugen_store_channel(out0, o, a.p0o0 + b0, o, q, p.output_offset, p.act_min, p.act_max);
        mcugen_store_channel(out0, o1, a.p0o1 + b1, o1, q, p.output_offset, p.act_min, p.act_max);
        mcugen_store_channel(out1, o, a.p1o0 + b0, o, q, p.output_offset, p.act_min, p.act_max);
        mcugen_store_channel(out1, o1, a.p1o1 + b1, o1, q, p.output_offset, p.act_min, p.act_max);
    }
}

/* The top-left window corner of flat output pixel `pixel`, in input coordinates (batch, row,
 * column); row and column may lie in the padding (negative or past the end). */
static void pixel_origin(int32_t pixel, const mcugen_conv_params *p, const mcugen_dims *out_dims,
                         int32_t *batch, int32_t *y, int32_t *x)
{
    const int32_t row = pixel / out_dims->w;
    *batch = row / out_dims->h;
    *y = (row % out_dims->h) * p->stride_h - p->pad_h;
    *x = (pixel % out_dims->w) * p->stride_w - p->pad_w;
}

int32_t mcugen_conv2d_s8_scratch_size(const mcugen_dims *filter_dims)
{
    return 2 * filter_dims->h * filter_dims->w * filter_dims->c;
}

/*
 * The window of one output pixel as a column of kh*kw*in_ch values in filter order. Taps in the
 * padding get the input zero point (-input_offset), so that they add (zp + offset) * w = 0.
 */
static void im2col(int8_t *col, int32_t pixel, const mcugen_conv_params *p,
                   const mcugen_dims *in_dims, const int8_t *input, const mcugen_dims *f_dims,
                   const mcugen_dims *out_dims)
{
    const int32_t ch = in_dims->c;
    const int32_t row_len = f_dims->w * ch;
    const int8_t pad = (int8_t)(-p->input_offset);
    int32_t b, y0, x0, kx0, kx1, ky, run;
    pixel_origin(pixel, p, out_dims, &b, &y0, &x0);
    mcugen_window(x0, p->dilation_w, f_dims->w, in_dims->w, &kx0, &kx1);
    run = p->dilation_w == 1 ? kx1 - kx0 : 1; /* taps per memcpy: all of them when undilated */
    for (ky = 0; ky < f_dims->h; ky++) {
        const int32_t y = y0 + ky * p->dilation_h;
        int8_t *dst = col + ky * row_len;
        int32_t src, kx;
        if (y < 0 || y >= in_dims->h || kx0 >= kx1) {
            memset(dst, pad, (size_t)row_len);
            continue;
        }
        src = ((b * in_dims->h + y) * in_dims->w + x0) * ch; /* may index the padding */
        memset(dst, pad, (size_t)(kx0 * ch));
        for (kx = kx0; kx < kx1; kx += run) {
            memcpy(dst + kx * ch, input + (src + kx * p->dilation_w * ch), (size_t)(run * ch));
        }
        memset(dst + kx1 * ch, pad, (size_t)((f_dims->w - kx1) * ch));
    }
}

void mcugen_conv2d_s8(void *scratch, const mcugen_conv_params *params,
                      const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                      const int8_t *input, const mcugen_dims *filter_dims, const int8_t *filter,
                      const int32_t *bias, const mcugen_dims *output_dims, int8_t *output)
{
    const int32_t depth = filter_dims->h * filter_dims->w * filter_dims->c;
    const int32_t out_ch = output_dims->c;
    const int32_t pixels = output_dims->n * output_dims->h * output_dims->w;
    int8_t *col0 = (int8_t *)scratch;
    int8_t *col1 = col0 + depth;
    int32_t pix;
    for (pix = 0; pix < pixels; pix += 2) {
        const int32_t pix1 = mcugen_lane(pix, 1, pixels);
        im2col(col0, pix, params, input_dims, input, filter_dims, output_dims);
        im2col(col1, pix1, params, input_dims, input, filter_dims, output_dims);
        conv_columns(col0, col1, depth, params, quant, filter, bias, out_ch,
                     output + pix * out_ch, output + pix1 * out_ch);
    }
}

void mcugen_conv2d_1x1_s8(const mcugen_conv_params *params, const mcugen_quant_params *quant,
                          const mcugen_dims *input_dims, const int8_t *input,
                          const mcugen_dims *filter_dims, const int8_t *filter,
                          const int32_t *bias, const mcugen_dims *output_dims, int8_t *output)
{
    const int32_t in_ch = filter_dims->c;
    const int32_t out_ch = output_dims->c;
    const int32_t pixels = output_dims->n * output_dims->h * output_dims->w;
    int32_t pix;
    for (pix = 0; pix < pixels; pix += 2) {
        const int32_t pix1 = mcugen_lane(pix, 1, pixels);
        int32_t b, y, x, b1, y1, x1;
        pixel_origin(pix, params, output_dims, &b, &y, &x);
        pixel_origin(pix1, params, output_dims, &b1, &y1, &x1);
        conv_columns(input + ((b * input_dims->h + y) * input_dims->w + x) * in_ch,
                     input + ((b1 * input_dims->h + y1) * input_dims->w + x1) * in_ch, in_ch,
                     params, quant, filter, bias, out_ch, output + pix * out_ch,
                     output + pix1 * out_ch);
    }
}
