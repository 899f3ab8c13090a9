/*
 * DEPTHWISE_CONV_2D, mixed precision: the body of every mcugen_depthwise_conv2d_<in>w<w>o<out>
 * variant (see mixed_conv2d.h for how a wrapper instantiates it; no include guard on purpose).
 *
 * The weights are channel-major, [out_ch][kh * kw], and the window is unpacked channel by
 * channel, so that output channel o is one dot product of its input channel's taps with its own
 * weight row, two output pixels at a time, as in conv.
 */
#include "mcugen_mixed_util.h"

MCUGEN_SIGNATURE_depthwise_conv2d(MCUGEN_WEIGHTED_NAME(depthwise_conv2d, MCUGEN_IN_SIGNED,
                                                       MCUGEN_IN_BITS, MCUGEN_W_BITS,
                                                       MCUGEN_OUT_BITS))
{
    const mcugen_conv_params p = *params; /* output stores may alias anything: copy once */
    const int32_t taps = filter_dims->h * filter_dims->w;
    const int32_t out_ch = output_dims->c;
    const int32_t pixels = output_dims->n * output_dims->h * output_dims->w;
    int16_t *col0 = (int16_t *)scratch;
    int16_t *col1 = col0 + taps * input_dims->c;
    int32_t pix, o, i;
    for (pix = 0; pix < pixels; pix += 2) {
        const int32_t two = pix + 1 < pixels;
        for (i = 0; i <= two; i++) { /* a loop, not two calls: one inlined copy */
            mcugen_mixed_im2col(i ? col1 : col0, 1, taps, pix + i, &p, input_dims, input,
                                filter_dims, output_dims, MCUGEN_IN_BITS, MCUGEN_IN_SIGNED);
        }
        for (o = 0; o < out_ch; o++) {
            const int32_t c = (o / p.depth_multiplier) * taps;
            int32_t acc0 = mcugen_bias(bias, o), acc1 = acc0;
            mcugen_mixed_dot(col0 + c, col1 + c, two, filter, o * taps, taps, MCUGEN_W_BITS, &acc0,
                             &acc1);
            for (i = 0; i <= two; i++) {
                mcugen_mixed_store(output, (pix + i) * out_ch + o, i ? acc1 : acc0, o, quant,
                                   p.output_offset, p.act_min, p.act_max, MCUGEN_OUT_BITS);
            }
        }
    }
}

#undef MCUGEN_IN_SIGNED
#undef MCUGEN_IN_BITS
#undef MCUGEN_W_BITS
#undef MCUGEN_OUT_BITS
