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

#if defined(MCUGEN_DSP)
/*
 * An input's rescale on Cortex-M with DSP, when 2 * (x + offset) << left_shift fits an int32 (the
 * int8 ADD's 20 bits of headroom) and its shift is a right shift e >= 0: SRDHM(y, m) is then
 * floor((2y * m + 2^31) / 2^32) (gemmlowp's nudge rounds ties up), one SMMULR of the doubled
 * operand, and the rounding right shift (ties away from zero) adds 2^(e-1) - [s < 0] before
 * shifting (nothing when e = 0).
 */
typedef struct {
    int32_t doubled_offset; /* offset << (left_shift + 1) */
    int32_t shift;          /* left_shift + 1 */
    int32_t multiplier;
    int32_t e;
    int32_t half;     /* 2^(e-1), or 0 */
    int32_t neg_mask; /* -1 when e >= 1: subtract 1 from negative s */
} input_rescale;

static int input_rescale_of(int32_t left_shift, int32_t offset, int32_t multiplier, int32_t shift,
                            input_rescale *r)
{
    r->shift = left_shift + 1;
    r->doubled_offset = (int32_t)((uint32_t)offset << r->shift);
    r->multiplier = multiplier;
    r->e = -shift;
    r->half = shift < 0 ? (int32_t)(UINT32_C(1) << (-shift - 1)) : 0;
    r->neg_mask = shift < 0 ? -1 : 0;
    return left_shift + 1 + 9 <= 31 && shift <= 0 && shift > -31; /* |x + offset| <= 2^9 - 1 */
}

static inline int32_t rescale_fast(int32_t x, const input_rescale *r)
{
    const int32_t y = r->doubled_offset + (int32_t)((uint32_t)x << r->shift);
    int32_t s;
    __asm__("smmulr %[s], %[y], %[m]" : [s] "=r"(s) : [y] "r"(y), [m] "r"(r->multiplier));
    return (s + r->half + ((s >> 31) & r->neg_mask)) >> r->e;
}

/* The DSP path: both inputs with rescale_fast, the output with mcugen_requant_fast_s8, whose
 * saturation is the whole clamp unless `clamp` (a literal at each call) says otherwise. */
static inline void add_fast_loop(const mcugen_add_params *p, const input_rescale *r1,
                                 const input_rescale *r2, mcugen_requant_fast ro,
                                 const int8_t *input1, const int8_t *input2, int32_t size,
                                 int32_t size2, int8_t *output, int clamp)
{
    const int32_t offset = p->output_offset, lo = p->act_min, hi = p->act_max;
    int32_t base, j;
    for (base = 0; base < size; base += size2) {
        for (j = 0; j < size2; j++) {
            const int32_t sum = rescale_fast(input1[base + j], r1) + rescale_fast(input2[j], r2);
            const int32_t q = mcugen_requant_fast_s8(sum, ro, offset);
            output[base + j] = (int8_t)(clamp ? mcugen_clamp(q, lo, hi) : q);
        }
    }
}

static void add_fast(const mcugen_add_params *p, const input_rescale *r1, const input_rescale *r2,
                     mcugen_requant_fast ro, const int8_t *input1, const int8_t *input2,
                     int32_t size, int32_t size2, int8_t *output)
{
    if (p->act_min <= INT8_MIN && p->act_max >= INT8_MAX) {
        add_fast_loop(p, r1, r2, ro, input1, input2, size, size2, output, 0);
    } else {
        add_fast_loop(p, r1, r2, ro, input1, input2, size, size2, output, 1);
    }
}
#endif

/* The portable path (and the DSP build's for constants rescale_fast does not take). Out of line:
 * the DSP loop keeps its registers, and its constants are derived only when this path runs. */
static MCUGEN_NOINLINE void add_any(const mcugen_add_params *p, const int8_t *input1,
                                    const int8_t *input2, int32_t size, int32_t size2,
                                    int8_t *output)
{
    const int32_t scale = (int32_t)1 << p->left_shift;
    const mcugen_requant r1 = input_requant(p->input1_multiplier, p->input1_shift);
    const mcugen_requant r2 = input_requant(p->input2_multiplier, p->input2_shift);
    const mcugen_requant ro = input_requant(p->output_multiplier, p->output_shift);
    int32_t base, j;
    for (base = 0; base < size; base += size2) {
        for (j = 0; j < size2; j++) {
            const int32_t a = (mcugen_get_s8(input1, base + j) + p->input1_offset) * scale;
            const int32_t b = (mcugen_get_s8(input2, j) + p->input2_offset) * scale;
            const int32_t sum = rescale(a, &r1) + rescale(b, &r2);
            mcugen_set_s8(output, base + j,
                          mcugen_requant_apply(sum, &ro, p->output_offset, p->act_min, p->act_max));
        }
    }
}

void mcugen_add_s8(const mcugen_add_params *params, const int8_t *input1, const int8_t *input2,
                   int32_t size, int32_t size2, int8_t *output)
{
    const mcugen_add_params p = *params; /* one load per field, not one per element */
#if defined(MCUGEN_DSP)
    const mcugen_quant_params out_quant = {&p.output_multiplier, &p.output_shift, 1};
    input_rescale f1, f2;
    mcugen_requant_fast fo;
    if (input_rescale_of(p.left_shift, p.input1_offset, p.input1_multiplier, p.input1_shift, &f1) &&
        input_rescale_of(p.left_shift, p.input2_offset, p.input2_multiplier, p.input2_shift, &f2) &&
        mcugen_requant_fast_of(&out_quant, 0, &fo)) {
        add_fast(&p, &f1, &f2, fo, input1, input2, size, size2, output);
        return;
    }
#endif
    add_any(&p, input1, input2, size, size2, output);
}
