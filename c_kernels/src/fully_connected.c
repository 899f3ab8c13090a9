/* FULLY_CONNECTED, int8, per-tensor or per-unit requantization. */
#include "mcugen_kernel_util.h"

static inline void mac4(mcugen_acc4 *acc, const int8_t *x, const int8_t *w0, const int8_t *w1,
                        const int8_t *w2, const int8_t *w3, int32_t k, int32_t input_offset)
{
    const int32_t xk = mcugen_get_s8(x, k) + input_offset;
    acc->l0 += xk * mcugen_get_s8(w0, k);
    acc->l1 += xk * mcugen_get_s8(w1, k);
    acc->l2 += xk * mcugen_get_s8(w2, k);
    acc->l3 += xk * mcugen_get_s8(w3, k);
}

#if defined(MCUGEN_DSP)
/* One filter row's word in assembly: four weights widened, two SMLAD against the inputs. */
#define ROW_ASM(acc, load)                                                                         \
    load "\n\t"                                                                                 \
    "sxtb16 %[we], %[w]\n\t"                                                                     \
    "sxtb16 %[w], %[w], ror #8\n\t"                                                              \
    "smlad %[" acc "], %[x02], %[we], %[" acc "]\n\t"                                            \
    "smlad %[" acc "], %[x13], %[w], %[" acc "]\n\t"

/* One word of four inputs against the four rows, all pointers advanced. */
#define WORD_ASM                                                                                   \
    "ldr %[x02], [%[xp]], #4\n\t"                                                                \
    "sxtb16 %[x13], %[x02], ror #8\n\t"                                                          \
    "sxtb16 %[x02], %[x02]\n\t"                                                                  \
    "sadd16 %[x02], %[x02], %[off]\n\t"                                                          \
    "sadd16 %[x13], %[x13], %[off]\n\t"                                                          \
    ROW_ASM("a1", "ldr %[w], [%[wp], %[lane]]")                                                   \
    ROW_ASM("a3", "ldr %[w], [%[wp2], %[lane]]")                                                  \
    ROW_ASM("a2", "ldr %[w], [%[wp2]], #4")                                                       \
    ROW_ASM("a0", "ldr %[w], [%[wp]], #4")
#endif

/* sum_k (x[k] + input_offset) * w[k + i * w_lane] for four filter rows i, so that each loaded
 * input is used four times. The only hot loop of the kernel: on Cortex-M with DSP, four inputs
 * are widened (and offset) once per word and each row costs a load, two SXTB16 and two SMLAD
 * per four weights (in assembly: GCC spills the row pointers of the C version). */
static inline mcugen_acc4 dot4(mcugen_acc4 acc, const int8_t *x, const int8_t *w, int32_t w_lane,
                               int32_t depth, int32_t input_offset)
{
    const int8_t *w0 = w, *w1 = w + w_lane, *w2 = w + 2 * w_lane, *w3 = w + 3 * w_lane;
    int32_t k = 0;
#if defined(MCUGEN_DSP)
    int32_t pairs = depth / 8;
    const uint32_t offsets = ((uint32_t)input_offset & 0xFFFFu) * 0x10001u;
    const int8_t *xp = x, *wp = w0, *wp2 = w2;
    uint32_t x02, x13, word, even;
#define OPERANDS                                                                                   \
    : [a0] "+r"(acc.l0), [a1] "+r"(acc.l1), [a2] "+r"(acc.l2), [a3] "+r"(acc.l3),                 \
      [x02] "=&r"(x02), [x13] "=&r"(x13), [w] "=&r"(word), [we] "=&r"(even), [xp] "+r"(xp),       \
      [wp] "+r"(wp), [wp2] "+r"(wp2), [n] "+r"(pairs)                                             \
    : [lane] "r"(w_lane), [off] "r"(offsets)                                                      \
    : "cc", "memory"
    if (pairs > 0) { /* two words per iteration: half the loop overhead */
        __asm__ volatile("1:\n\t" WORD_ASM WORD_ASM "subs %[n], %[n], #1\n\t"
                                                     "bne 1b\n\t" OPERANDS);
    }
    if (depth & 4) {
        __asm__ volatile(WORD_ASM OPERANDS);
    }
#undef OPERANDS
    k = depth & ~3;
#else
    for (; k + 4 <= depth; k += 4) {
        mac4(&acc, x, w0, w1, w2, w3, k, input_offset);
        mac4(&acc, x, w0, w1, w2, w3, k + 1, input_offset);
        mac4(&acc, x, w0, w1, w2, w3, k + 2, input_offset);
        mac4(&acc, x, w0, w1, w2, w3, k + 3, input_offset);
    }
#endif
    for (; k < depth; k++) {
        mac4(&acc, x, w0, w1, w2, w3, k, input_offset);
    }
    return acc;
}

/* Requantizes and stores units u + i * step. Out of line, so that the unit loop keeps its
 * registers (see conv2d.c's store_block). */
static MCUGEN_NOINLINE void store_units(mcugen_acc4 acc, int8_t *out, int32_t u, int32_t step,
                                        const mcugen_quant_params *quant,
                                        const mcugen_fully_connected_params *p)
{
    const int32_t units[4] = {u, u + step, u + 2 * step, u + 3 * step};
    const int32_t values[4] = {acc.l0, acc.l1, acc.l2, acc.l3};
    int32_t i;
    for (i = 0; i < 4; i++) {
        const mcugen_requant r = mcugen_requant_channel(quant, units[i]);
        out[units[i]] =
            (int8_t)mcugen_requant_apply(values[i], &r, p->output_offset, p->act_min, p->act_max);
    }
}

void mcugen_fully_connected_s8(const mcugen_fully_connected_params *params,
                               const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                               const int8_t *input, const mcugen_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias,
                               const mcugen_dims *output_dims, int8_t *output)
{
    const mcugen_fully_connected_params p = *params; /* stores may alias anything: copy once */
    const int32_t depth = filter_dims->c, units = output_dims->c;
    int32_t b, u, k;
    for (b = 0; b < input_dims->n; b++) {
        const int8_t *x = input + b * depth;
        int8_t *out = output + b * units;
        /* sum (x + xo)(w + wo) = sum (x + xo) w + wo * sum (x + xo): the filter offset costs one
         * multiply per unit instead of an add per weight. */
        int32_t x_sum = 0;
        if (p.filter_offset != 0) {
            for (k = 0; k < depth; k++) {
                x_sum += mcugen_get_s8(x, k) + p.input_offset;
            }
        }
        for (u = 0; u < units; u += mcugen_lanes_advance(mcugen_lane_step(u, units))) {
            const int32_t step = mcugen_lane_step(u, units);
            const mcugen_acc4 acc = dot4(mcugen_bias4(bias, u, step, p.filter_offset * x_sum), x,
                                         filter + u * depth, step * depth, depth, p.input_offset);
            store_units(acc, out, u, step, quant, &p);
        }
    }
}
