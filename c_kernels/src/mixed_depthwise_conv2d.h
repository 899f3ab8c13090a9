/*
 * DEPTHWISE_CONV_2D, mixed precision: the body of every mcugen_depthwise_conv2d_<in>w<w>o<out>
 * variant (see mixed_conv2d.h for how a wrapper instantiates it; no include guard on purpose).
 *
 * Output channels are taken four at a time (a lane group) in the outer loop and every pixel in
 * the inner ones, so that a group's weights are unpacked and its requantization constants
 * derived once; each tap multiplies four input lanes at once, read straight from the packed
 * input (mcugen_dw_pixels). The weights are tap-major, as TFLite's (mcugen_mixed.h).
 */
#include "mcugen_mixed_util.h"

MCUGEN_SIGNATURE_depthwise_conv2d(MCUGEN_WEIGHTED_NAME(depthwise_conv2d, MCUGEN_IN_SIGNED,
                                                       MCUGEN_IN_BITS, MCUGEN_W_BITS,
                                                       MCUGEN_OUT_BITS))
{
    const mcugen_conv_params p = *params; /* output stores may alias anything: copy once */
    const int32_t out_ch = output_dims->c;
    const int32_t fast = p.depth_multiplier == 1 && out_ch % 4 == 0; /* see mcugen_dw_pixels */
    int16_t *w = (int16_t *)scratch;
    mcugen_dw_group g;
    int32_t c;
    for (c = 0; c < out_ch; c += 4) {
        mcugen_dw_group_of(&g, w, c, &p, quant, bias, filter, filter_dims->h * filter_dims->w,
                           out_ch, MCUGEN_W_BITS);
        if (fast) {
            mcugen_dw_pixels(&g, w, c, &p, input_dims, input, filter_dims, output_dims, output,
                             MCUGEN_IN_BITS, MCUGEN_IN_SIGNED, MCUGEN_OUT_BITS, 1);
        } else {
            mcugen_dw_pixels(&g, w, c, &p, input_dims, input, filter_dims, output_dims, output,
                             MCUGEN_IN_BITS, MCUGEN_IN_SIGNED, MCUGEN_OUT_BITS, 0);
        }
    }
}

#undef MCUGEN_IN_SIGNED
#undef MCUGEN_IN_BITS
#undef MCUGEN_W_BITS
#undef MCUGEN_OUT_BITS
