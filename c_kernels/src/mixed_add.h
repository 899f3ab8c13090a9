/*
 * ADD, mixed precision: the body of every mcugen_add_<in1><in2>o<out> variant. A wrapper defines
 * MCUGEN_IN_SIGNED, MCUGEN_IN_BITS (input1), MCUGEN_IN2_SIGNED, MCUGEN_IN2_BITS (input2) and
 * MCUGEN_OUT_BITS, then includes this file, which defines the function they name and undefines
 * them (see mcugen_mixed.h; no include guard on purpose).
 *
 * Element by element, as mcugen_add_s8: the three requantizations per element cost far more
 * than reading packed elements one at a time.
 */
#include "mcugen_mixed_util.h"

MCUGEN_SIGNATURE_add(MCUGEN_ADD_NAME(MCUGEN_IN_SIGNED, MCUGEN_IN_BITS, MCUGEN_IN2_SIGNED,
                                     MCUGEN_IN2_BITS, MCUGEN_OUT_BITS))
{
    const mcugen_add_params p = *params; /* one load per field, not one per element */
    const int32_t scale = (int32_t)1 << p.left_shift;
    int32_t base, j;
    for (base = 0; base < size; base += size2) {
        for (j = 0; j < size2; j++) {
            const int32_t a = (mcugen_packed_get(input1, base + j, MCUGEN_IN_BITS, MCUGEN_IN_SIGNED) +
                               p.input1_offset) * scale;
            const int32_t b = (mcugen_packed_get(input2, j, MCUGEN_IN2_BITS, MCUGEN_IN2_SIGNED) +
                               p.input2_offset) * scale;
            const int32_t sum =
                mcugen_multiply_by_quantized_multiplier(a, p.input1_multiplier, p.input1_shift) +
                mcugen_multiply_by_quantized_multiplier(b, p.input2_multiplier, p.input2_shift);
            mcugen_packed_set(output, base + j,
                              mcugen_requantize_acc(sum, p.output_multiplier, p.output_shift,
                                                    p.output_offset, p.act_min, p.act_max),
                              MCUGEN_OUT_BITS);
        }
    }
}

#undef MCUGEN_IN_SIGNED
#undef MCUGEN_IN_BITS
#undef MCUGEN_IN2_SIGNED
#undef MCUGEN_IN2_BITS
#undef MCUGEN_OUT_BITS
