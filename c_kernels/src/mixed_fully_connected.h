/*
 * FULLY_CONNECTED, mixed precision: the body of every mcugen_fully_connected_<in>w<w>o<out>
 * variant (see mixed_conv2d.h for how a wrapper instantiates it; no include guard on purpose).
 *
 * Two batch rows at a time are unpacked into int16 scratch; each weight row is then unpacked
 * once for both.
 */
#include "mcugen_mixed_util.h"

MCUGEN_SIGNATURE_fully_connected(MCUGEN_WEIGHTED_NAME(fully_connected, MCUGEN_IN_SIGNED,
                                                      MCUGEN_IN_BITS, MCUGEN_W_BITS,
                                                      MCUGEN_OUT_BITS))
{
    const mcugen_fully_connected_params p = *params; /* stores may alias anything: copy once */
    const int32_t depth = filter_dims->c, units = output_dims->c, batches = input_dims->n;
    int16_t *row0 = (int16_t *)scratch;
    int16_t *row1 = row0 + depth;
    int32_t b, u, k, i;
    mcugen_mixed_requant rq;
    mcugen_packed_writer out0, out1;
    for (b = 0; b < batches; b += 2) {
        const int32_t two = b + 1 < batches;
        int32_t sum0 = 0, sum1 = 0;
        for (i = 0; i <= two; i++) { /* a loop, not two calls: one inlined copy */
            mcugen_unpack_run(i ? row1 : row0, 1, input, (b + i) * depth, depth, p.input_offset,
                              MCUGEN_IN_BITS, MCUGEN_IN_SIGNED);
        }
        /* sum (x + xo)(w + wo) = sum (x + xo) w + wo * sum (x + xo): the filter offset costs one
         * multiply per unit instead of an add per weight. */
        if (p.filter_offset != 0) {
            for (k = 0; k < depth; k++) {
                sum0 += row0[k];
                sum1 += two ? row1[k] : 0;
            }
        }
        /* out1 is begun even when unused: it only computes a pointer */
        mcugen_packed_writer_begin(&out0, output, b * units, MCUGEN_OUT_BITS);
        mcugen_packed_writer_begin(&out1, output, (b + 1) * units, MCUGEN_OUT_BITS);
        for (u = 0; u < units; u++) {
            int32_t acc0 = mcugen_bias(bias, u) + p.filter_offset * sum0;
            int32_t acc1 = mcugen_bias(bias, u) + p.filter_offset * sum1;
            mcugen_mixed_dot(row0, row1, two, filter, u * depth, depth, MCUGEN_W_BITS, &acc0, &acc1);
            mcugen_mixed_requant_of(&rq, quant, u, p.output_offset, p.act_min, p.act_max);
            mcugen_packed_writer_put2(&out0, &out1, two, acc0, acc1, &rq, MCUGEN_OUT_BITS);
        }
        mcugen_packed_writer_end2(&out0, &out1, two, MCUGEN_OUT_BITS);
    }
}

#undef MCUGEN_IN_SIGNED
#undef MCUGEN_IN_BITS
#undef MCUGEN_W_BITS
#undef MCUGEN_OUT_BITS
