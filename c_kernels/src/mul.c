/* MUL, int8: product of the offset inputs, rescaled to the output. */
#include "mcugen_kernel_util.h"

#if defined(MCUGEN_DSP)
/*
 * Four elements at once on Cortex-M with DSP, for the usual output multiplier
 * (mcugen_requant_fast_of), then the rest of each broadcast period one at a time: both words
 * widened and offset into int16 pairs (|x + offset| <= 255 fits), SMULBB / SMULTT (SMLABB /
 * SMLATT with a zero accumulator) multiply, each product requantizes in four instructions, and
 * the clamp and the store take the whole word.
 */
static void mul_words(const mcugen_mul_params *p, mcugen_requant_fast f, const int8_t *input1,
                      const int8_t *input2, int32_t size, int32_t size2, int8_t *output)
{
    const uint32_t off1 = mcugen_splat2(p->input1_offset), off2 = mcugen_splat2(p->input2_offset);
    const uint32_t min4 = mcugen_splat4(p->act_min), max4 = mcugen_splat4(p->act_max);
    const int32_t offset = p->output_offset;
    int32_t base, j;
    for (base = 0; base < size; base += size2) {
        for (j = 0; j + 4 <= size2; j += 4) {
            uint32_t a02, a13, b02, b13, v;
            mcugen_widen_word(mcugen_read_u32(input1 + base + j), off1, &a02, &a13);
            mcugen_widen_word(mcugen_read_u32(input2 + j), off2, &b02, &b13);
            v = mcugen_clamp4(
                mcugen_pack4(mcugen_requant_fast_s8(__smlabb((int32_t)a02, (int32_t)b02, 0), f, offset),
                             mcugen_requant_fast_s8(__smlabb((int32_t)a13, (int32_t)b13, 0), f, offset),
                             mcugen_requant_fast_s8(__smlatt((int32_t)a02, (int32_t)b02, 0), f, offset),
                             mcugen_requant_fast_s8(__smlatt((int32_t)a13, (int32_t)b13, 0), f, offset)),
                min4, max4);
            memcpy(output + base + j, &v, sizeof v);
        }
        for (; j < size2; j++) {
            const int32_t prod = (input1[base + j] + p->input1_offset) * (input2[j] + p->input2_offset);
            output[base + j] = (int8_t)mcugen_clamp(mcugen_requant_fast_s8(prod, f, offset),
                                                    p->act_min, p->act_max);
        }
    }
}
#endif

void mcugen_mul_s8(const mcugen_mul_params *params, const int8_t *input1, const int8_t *input2,
                   int32_t size, int32_t size2, int8_t *output)
{
    const mcugen_mul_params p = *params; /* one load per field, not one per element */
    const mcugen_quant_params quant = {&p.output_multiplier, &p.output_shift, 1};
    const mcugen_requant r = mcugen_requant_channel(&quant, 0);
    int32_t base, j;
#if defined(MCUGEN_DSP)
    mcugen_requant_fast f;
    if (mcugen_requant_fast_of(&quant, 0, &f)) {
        mul_words(&p, f, input1, input2, size, size2, output);
        return;
    }
#endif
    for (base = 0; base < size; base += size2) {
        for (j = 0; j < size2; j++) {
            const int32_t prod = (mcugen_get_s8(input1, base + j) + p.input1_offset) *
                                 (mcugen_get_s8(input2, j) + p.input2_offset);
            mcugen_set_s8(output, base + j,
                          mcugen_requant_apply(prod, &r, p.output_offset, p.act_min, p.act_max));
        }
    }
}
