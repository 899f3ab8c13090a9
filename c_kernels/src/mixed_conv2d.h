/*
 * CONV_2D, mixed precision: the body of every mcugen_conv2d_<in>w<w>o<out> variant. A wrapper
 * defines MCUGEN_IN_SIGNED, MCUGEN_IN_BITS, MCUGEN_W_BITS and MCUGEN_OUT_BITS, then includes this
 * file, which defines the one function they name and undefines them (see mcugen_mixed.h). No
 * include guard, on purpose: one wrapper may instantiate several variants.
 *
 * Two output pixels at a time: both windows are unpacked into int16 columns, then each filter
 * row is unpacked once for both.
 */
#include "mcugen_mixed_util.h"

MCUGEN_SIGNATURE_conv2d(MCUGEN_WEIGHTED_NAME(conv2d, MCUGEN_IN_SIGNED, MCUGEN_IN_BITS,
                                             MCUGEN_W_BITS, MCUGEN_OUT_BITS))
{
    const mcugen_conv_params p = *params; /* output stores may alias anything: copy once */
    const int32_t depth = filter_dims->h * filter_dims->w * filter_dims->c;
    const int32_t out_ch = output_dims->c;
    const int32_t pixels = output_dims->n * output_dims->h * output_dims->w;
    int16_t *col0 = (int16_t *)scratch;
    int16_t *col1 = col0 + depth;
    int32_t pix, o, i;
    mcugen_mixed_requant rq;
    mcugen_packed_writer out0, out1;
    for (pix = 0; pix < pixels; pix += 2) {
        const int32_t two = pix + 1 < pixels;
        for (i = 0; i <= two; i++) { /* a loop, not two calls: one inlined copy */
            mcugen_mixed_im2col(i ? col1 : col0, pix + i, &p, input_dims, input,
                                filter_dims, output_dims, MCUGEN_IN_BITS, MCUGEN_IN_SIGNED);
        }
        /* out1 is begun even when unused: it only computes a pointer */
        mcugen_packed_writer_begin(&out0, output, pix * out_ch, MCUGEN_OUT_BITS);
        mcugen_packed_writer_begin(&out1, output, (pix + 1) * out_ch, MCUGEN_OUT_BITS);
        for (o = 0; o < out_ch; o++) {
            int32_t acc0 = mcugen_bias(bias, o), acc1 = acc0;
            mcugen_mixed_dot(col0, col1, two, filter, o * depth, depth, MCUGEN_W_BITS, &acc0, &acc1);
            mcugen_mixed_requant_of(&rq, quant, o, p.output_offset, p.act_min, p.act_max);
            mcugen_packed_writer_put2(&out0, &out1, two, acc0, acc1, &rq, MCUGEN_OUT_BITS);
        }
        mcugen_packed_writer_end2(&out0, &out1, two, MCUGEN_OUT_BITS);
    }
}

#undef MCUGEN_IN_SIGNED
#undef MCUGEN_IN_BITS
#undef MCUGEN_W_BITS
#undef MCUGEN_OUT_BITS
