/* ADD, int8: both inputs rescaled into a common 2^left_shift-scaled domain, summed, rescaled. */
#include "mcugen_kernel_util.h"

/* One input's MBQM constants (mcugen_requant takes them per channel; here there is one). */
static mcugen_requant input_requant(int32_t multiplier, int32_t shift)
{
    const mcugen_quant_params q = {&multiplier, &shift, 1};
    return mcugen_requant_channel(&q, 0);
}

/* MBQM(x) with precomputed constants: the requantization without offset and clamp. */
static inline int32_t rescale(int32_t x, const mcugen_requant *r)
{
    return mcugen_requant_high(x, r) >> r->right;
}

void mcugen_add_s8(const mcugen_add_params *params, const int8_t *input1, const int8_t *input2,
                   int32_t size, int32_t size2, int8_t *output)
{
    const mcugen_add_params p = *params; /* one load per field, not one per element */
    const int32_t scale = (int32_t)1 << p.left_shift;
    const mcugen_requant r1 = input_requant(p.input1_multiplier, p.input1_shift);
    const mcugen_requant r2 = input_requant(p.input2_multiplier, p.input2_shift);
    const mcugen_requant ro = input_requant(p.output_multiplier, p.output_shift);
    int32_t base, j;
    for (base = 0; base < size; base += size2) {
        for (j = 0; j < size2; j++) {
            const int32_t a = (mcugen_get_s8(input1, base + j) + p.input1_offset) * scale;
            const int32_t b = (mcugen_get_s8(input2, j) + p.input2_offset) * scale;
            const int32_t sum = rescale(a, &r1) + rescale(b, &r2);
            mcugen_set_s8(output, base + j,
                          mcugen_requant_apply(sum, &ro, p.output_offset, p.act_min, p.act_max));
        }
    }
}
