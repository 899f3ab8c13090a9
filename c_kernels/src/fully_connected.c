/*
 * FULLY_CONNECTED, int8, per-tensor or per-unit requantization.
 *
 * Units (filter rows) are computed four at a time, so that each input is loaded and widened once
 * for four rows. The input offset stays out of the hot loop: sum_k (x + xo) w = sum_k x w +
 * xo * sum_k w, a constant per unit that the code generator folds into the bias (it passes an
 * input offset of 0); for any other offset the kernel sums the rows itself.
 *
 * On Cortex-M with DSP, four inputs cost half an LDRD and two SXTB16 for the four rows, and each
 * row a load, two SXTB16 and two SMLAD per four weights: 23 instructions for 16 MACs. The calls
 * the code generator emits (one multiplier that mcugen_requant_fast_s8 takes, no offsets) run
 * every block of four units in one assembly loop, bias to word store: the dot product takes
 * every register, and C around it would spill and reload its state for each block.
 */
#include <stddef.h>
#include <string.h>

#include "mcugen_kernel_util.h"

/* acc.li += x[k] * (row i)[k]: rows 0 and 1 at w, rows 2 and 3 at w2, w_lane apart. */
static inline void mac4(mcugen_acc4 *acc, const int8_t *x, const int8_t *w, const int8_t *w2,
                        int32_t w_lane, int32_t k)
{
    const int32_t xk = mcugen_get_s8(x, k);
    acc->l0 += xk * mcugen_get_s8(w, k);
    acc->l1 += xk * mcugen_get_s8(w, k + w_lane);
    acc->l2 += xk * mcugen_get_s8(w2, k);
    acc->l3 += xk * mcugen_get_s8(w2, k + w_lane);
}

#if defined(MCUGEN_DSP)
/*
 * The dot product in assembly, on named operands: accumulators a0..a3; xp the inputs; rows 0
 * and 1 at wp, 2 and 3 at wp2, lane bytes apart; n and we counts; scratch xa, xb, x13, w, we.
 * Only LDRD needs an aligned address, and only units_fast uses it on the inputs.
 */

/* One filter row's word: four weights widened, two SMLAD against the inputs. */
#define ROW_ASM(acc, x02, load)                                                                    \
    load "\n\t"                                                                                    \
    "sxtb16 %[we], %[w]\n\t"                                                                       \
    "sxtb16 %[w], %[w], ror #8\n\t"                                                                \
    "smlad %[" acc "], %[" x02 "], %[we], %[" acc "]\n\t"                                          \
    "smlad %[" acc "], %[x13], %[w], %[" acc "]\n\t"

/* The word of four inputs in register x02, widened in place, against the four rows. */
#define WORD_ASM(x02)                                                                              \
    "sxtb16 %[x13], %[" x02 "], ror #8\n\t"                                                        \
    "sxtb16 %[" x02 "], %[" x02 "]\n\t"                                                            \
    ROW_ASM("a1", x02, "ldr %[w], [%[wp], %[lane]]")                                               \
    ROW_ASM("a3", x02, "ldr %[w], [%[wp2], %[lane]]")                                              \
    ROW_ASM("a2", x02, "ldr %[w], [%[wp2]], #4")                                                   \
    ROW_ASM("a0", x02, "ldr %[w], [%[wp]], #4")

/* Eight inputs (xp word-aligned): one LDRD, then each word. */
#define WORDS2_ASM "ldrd %[xa], %[xb], [%[xp]], #8\n\t" WORD_ASM("xa") WORD_ASM("xb")

/* One input byte against the four rows. */
#define BYTE_ASM                                                                                   \
    "ldrsb %[x13], [%[xp]], #1\n\t"                                                                \
    "ldrsb %[w], [%[wp], %[lane]]\n\t"                                                             \
    "smlabb %[a1], %[x13], %[w], %[a1]\n\t"                                                        \
    "ldrsb %[w], [%[wp2], %[lane]]\n\t"                                                            \
    "smlabb %[a3], %[x13], %[w], %[a3]\n\t"                                                        \
    "ldrsb %[w], [%[wp2]], #1\n\t"                                                                 \
    "smlabb %[a2], %[x13], %[w], %[a2]\n\t"                                                        \
    "ldrsb %[w], [%[wp]], #1\n\t"                                                                  \
    "smlabb %[a0], %[x13], %[w], %[a0]\n\t"

/* The n bytes left: words, then bytes (n % 4). */
#define REST_ASM                                                                                   \
    "subs %[n], %[n], #4\n\t"                                                                      \
    "blt 4f\n\t"                                                                                   \
    "3:\n\t"                                                                                       \
    "ldr %[xa], [%[xp]], #4\n\t" WORD_ASM("xa")                                                    \
    "subs %[n], %[n], #4\n\t"                                                                      \
    "bge 3b\n\t"                                                                                   \
    "4:\n\t"                                                                                       \
    "adds %[n], %[n], #4\n\t"                                                                      \
    "beq 6f\n\t"                                                                                   \
    "5:\n\t" BYTE_ASM                                                                              \
    "subs %[n], %[n], #1\n\t"                                                                      \
    "bne 5b\n\t"                                                                                   \
    "6:\n\t"

/* The n bytes from a word-aligned xp: eight words per iteration, then REST_ASM. */
#define ALIGNED_ASM                                                                                \
    "subs %[n], %[n], #32\n\t"                                                                     \
    "blt 2f\n\t"                                                                                   \
    "1:\n\t" WORDS2_ASM WORDS2_ASM WORDS2_ASM WORDS2_ASM                                           \
    "subs %[n], %[n], #32\n\t"                                                                     \
    "bge 1b\n\t"                                                                                   \
    "2:\n\t"                                                                                       \
    "adds %[n], %[n], #32\n\t"                                                                     \
    "beq 6f\n\t" REST_ASM
#endif

/* acc.li += sum_k x[k] * w[k + i * w_lane] for the four filter rows i. */
static inline mcugen_acc4 dot4(mcugen_acc4 acc, const int8_t *x, const int8_t *w, int32_t w_lane,
                               int32_t depth)
{
    const int8_t *w2 = w + 2 * w_lane;
#if defined(MCUGEN_DSP)
    uint32_t xa, x13, word, even;
    __asm__(REST_ASM
            : [a0] "+&r"(acc.l0), [a1] "+&r"(acc.l1), [a2] "+&r"(acc.l2), [a3] "+&r"(acc.l3),
              [x13] "=&r"(x13), [w] "=&r"(word), [we] "=&r"(even), [xp] "+&r"(x), [wp] "+&r"(w),
              [wp2] "+&r"(w2), [n] "+&r"(depth), [xa] "=&r"(xa)
            : [lane] "r"(w_lane)
            : "cc", "memory");
#else
    int32_t k;
    for (k = 0; k + 4 <= depth; k += 4) {
        mac4(&acc, x, w, w2, w_lane, k);
        mac4(&acc, x, w, w2, w_lane, k + 1);
        mac4(&acc, x, w, w2, w_lane, k + 2);
        mac4(&acc, x, w, w2, w_lane, k + 3);
    }
    for (; k < depth; k++) {
        mac4(&acc, x, w, w2, w_lane, k);
    }
#endif
    return acc;
}

/* One input row's constants for the C loop over units. */
typedef struct {
    const int8_t *x; /* the input row */
    int8_t *out;     /* its output row */
    const int8_t *filter;
    const int32_t *bias;
    int32_t depth;
    int32_t extra; /* filter_offset * sum_k (x + xo), in every accumulator */
    int32_t input_offset;
    const mcugen_quant_params *quant;
    int32_t output_offset;
#if defined(MCUGEN_DSP)
    uint32_t min4, max4; /* act_min and act_max in each byte */
#else
    int32_t act_min;
    int32_t act_max;
#endif
} fc_ctx;

/* The accumulators of units u + i * step before the products: bias and offset terms. */
static inline mcugen_acc4 unit_init(const fc_ctx *c, int32_t u, int32_t step)
{
    mcugen_acc4 acc = mcugen_bias4(c->bias, u, step, c->extra);
    if (c->input_offset != 0) {
        const mcugen_acc4 sums = mcugen_window_sum4_lanes(c->filter + u * c->depth, step * c->depth,
                                                          0, 1, 1, c->depth);
        acc = mcugen_add_scaled4(acc, sums, c->input_offset);
    }
    return acc;
}

#if defined(MCUGEN_DSP)
/* What units_fast's assembly reads and updates (at offsetof). */
typedef struct {
    const int8_t *x;          /* the input row */
    int32_t n;                /* depth - head */
    int32_t head;             /* the bytes before a word-aligned input (LDRD), at most depth */
    const int32_t *bias;      /* the next block's four, advanced by bias_step */
    int32_t bias_step;        /* 16, or 0 when bias points at four zeros */
    int8_t *out;              /* the next block's four outputs */
    int8_t *out_end;          /* past the last block's */
    mcugen_requant_fast fast; /* m2 and scale: one LDRD */
    int32_t output_offset;
    uint32_t min4, max4;      /* one LDRD */
} fc_job;

/*
 * Every block of four units of one input row (at least one block), for one multiplier that
 * mcugen_requant_fast_s8 takes and no offsets: bias, dot products, requantization, clamp and a
 * word store per block. The job pointer comes in xa and stays on the stack while the dot product
 * needs xa; wp walks the filter from row to row.
 */
static void units_fast(fc_job *job, const int8_t *filter, int32_t depth)
{
    mcugen_acc4 acc;
    const int8_t *x, *w = filter, *w2;
    int32_t n, head;
    uint32_t xb, x13, word;
    __asm__ volatile("str %[xa], [sp, #-8]!\n\t"
                     "7:\n\t" /* xa: the job, here as at the bottom of the loop */
                     "ldrd %[xp], %[n], [%[xa], %[o_x]]\n\t"
                     "ldrd %[xb], %[x13], [%[xa], %[o_bias]]\n\t"
                     "ldrd %[a0], %[a1], [%[xb]]\n\t"
                     "ldrd %[a2], %[a3], [%[xb], #8]\n\t"
                     "add %[xb], %[xb], %[x13]\n\t"
                     "str %[xb], [%[xa], %[o_bias]]\n\t"
                     "add %[wp2], %[wp], %[lane], lsl #1\n\t"
                     "ands %[we], %[xp], #3\n\t" /* the bytes up to an aligned xp */
                     "beq 9f\n\t"
                     "ldr %[we], [%[xa], %[o_head]]\n\t"
                     "8:\n\t" BYTE_ASM
                     "subs %[we], %[we], #1\n\t"
                     "bne 8b\n\t"
                     "9:\n\t" ALIGNED_ASM
                     "add %[wp], %[wp2], %[lane]\n\t" /* past row 3: the next block's row 0 */
                     "ldr %[xa], [sp]\n\t"
                     "ldrd %[w], %[we], [%[xa], %[o_fast]]\n\t"
                     "ldr %[xp], [%[xa], %[o_off]]\n\t"
                     MCUGEN_REQUANT_FAST4_ASM("x13", "w", "we", "xp")
                     "bfi %[a0], %[a1], #8, #8\n\t"
                     "bfi %[a0], %[a2], #16, #8\n\t"
                     "bfi %[a0], %[a3], #24, #8\n\t"
                     "ldrd %[w], %[we], [%[xa], %[o_min4]]\n\t" /* mcugen_clamp4 */
                     "ssub8 %[x13], %[a0], %[w]\n\t"
                     "sel %[a0], %[a0], %[w]\n\t"
                     "ssub8 %[x13], %[we], %[a0]\n\t"
                     "sel %[a0], %[a0], %[we]\n\t"
                     "ldrd %[xb], %[n], [%[xa], %[o_out]]\n\t"
                     "str %[a0], [%[xb]], #4\n\t"
                     "str %[xb], [%[xa], %[o_out]]\n\t"
                     "cmp %[xb], %[n]\n\t"
                     "bne 7b\n\t"
                     "add sp, sp, #8\n\t"
                     : [a0] "=&r"(acc.l0), [a1] "=&r"(acc.l1), [a2] "=&r"(acc.l2),
                       [a3] "=&r"(acc.l3), [x13] "=&r"(x13), [w] "=&r"(word), [we] "=&r"(head),
                       [xp] "=&r"(x), [wp] "+&r"(w), [wp2] "=&r"(w2), [n] "=&r"(n),
                       [xa] "+&r"(job), [xb] "=&r"(xb)
                     : [lane] "r"(depth), [o_x] "i"(offsetof(fc_job, x)),
                       [o_bias] "i"(offsetof(fc_job, bias)), [o_head] "i"(offsetof(fc_job, head)),
                       [o_out] "i"(offsetof(fc_job, out)),
                       [o_fast] "i"(offsetof(fc_job, fast)),
                       [o_off] "i"(offsetof(fc_job, output_offset)),
                       [o_min4] "i"(offsetof(fc_job, min4))
                     : "cc", "memory");
}

/* Requantizes and stores units u + i * step, each with the case its multiplier takes. */
static MCUGEN_NOINLINE void store_units(mcugen_acc4 a, int32_t u, int32_t step, const fc_ctx *c)
{
    const int32_t units[4] = {u, u + step, u + 2 * step, u + 3 * step};
    const int32_t values[4] = {a.l0, a.l1, a.l2, a.l3};
    int32_t r[4], i;
    uint32_t v;
    for (i = 0; i < 4; i++) {
        mcugen_requant_fast f;
        if (mcugen_requant_fast_of(c->quant, units[i], &f)) {
            r[i] = mcugen_requant_fast_s8(values[i], f, c->output_offset);
        } else {
            const mcugen_requant slow = mcugen_requant_channel(c->quant, units[i]);
            r[i] = mcugen_requant_any_s8(values[i], &slow, c->output_offset);
        }
    }
    v = mcugen_clamp4(mcugen_pack4(r[0], r[1], r[2], r[3]), c->min4, c->max4);
    if (step) { /* four consecutive units: one word */
        memcpy(c->out + u, &v, sizeof v);
    } else {
        c->out[u] = (int8_t)v;
    }
}
#else
/* Requantizes and stores units u + i * step. */
static MCUGEN_NOINLINE void store_units(mcugen_acc4 acc, int32_t u, int32_t step, const fc_ctx *c)
{
    const int32_t units[4] = {u, u + step, u + 2 * step, u + 3 * step};
    const int32_t values[4] = {acc.l0, acc.l1, acc.l2, acc.l3};
    int32_t i;
    for (i = 0; i < 4; i++) {
        const mcugen_requant r = mcugen_requant_channel(c->quant, units[i]);
        c->out[units[i]] =
            (int8_t)mcugen_requant_apply(values[i], &r, c->output_offset, c->act_min, c->act_max);
    }
}
#endif

void mcugen_fully_connected_s8(const mcugen_fully_connected_params *params,
                               const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                               const int8_t *input, const mcugen_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias,
                               const mcugen_dims *output_dims, int8_t *output)
{
    const mcugen_fully_connected_params p = *params; /* stores may alias anything: copy once */
    const int32_t depth = filter_dims->c, units = output_dims->c;
    fc_ctx c;
    int32_t b, u, k;
#if defined(MCUGEN_DSP)
    static const int32_t no_bias[4] = {0, 0, 0, 0};
    fc_job job;
    const int blocks_fast = units >= 4 && depth > 0 && p.input_offset == 0 &&
                            p.filter_offset == 0 && quant->count == 1 &&
                            mcugen_requant_fast_of(quant, 0, &job.fast);
    job.bias_step = bias ? 16 : 0;
    job.output_offset = p.output_offset;
    job.min4 = c.min4 = mcugen_splat4(p.act_min);
    job.max4 = c.max4 = mcugen_splat4(p.act_max);
#else
    c.act_min = p.act_min;
    c.act_max = p.act_max;
#endif
    c.filter = filter;
    c.bias = bias;
    c.depth = depth;
    c.input_offset = p.input_offset;
    c.quant = quant;
    c.output_offset = p.output_offset;
    for (b = 0; b < input_dims->n; b++) {
        /* sum (x + xo)(w + wo) = sum (x + xo) w + wo * sum (x + xo): the filter offset costs one
         * multiply per unit instead of an add per weight. */
        int32_t x_sum = 0;
        c.x = input + b * depth;
        c.out = output + b * units;
        if (p.filter_offset != 0) {
            for (k = 0; k < depth; k++) {
                x_sum += mcugen_get_s8(c.x, k) + p.input_offset;
            }
        }
        c.extra = p.filter_offset * x_sum;
        u = 0;
#if defined(MCUGEN_DSP)
        if (blocks_fast) { /* the last units % 4 units go through the loop below */
            job.x = c.x;
            job.head = mcugen_min((int32_t)(0u - (uintptr_t)c.x) & 3, depth);
            job.n = depth - job.head;
            job.bias = bias ? bias : no_bias;
            job.out = c.out;
            job.out_end = c.out + (units & ~3);
            units_fast(&job, filter, depth);
            u = units & ~3;
        }
#endif
        for (; u < units; u += mcugen_lanes_advance(mcugen_lane_step(u, units))) {
            const int32_t step = mcugen_lane_step(u, units);
            store_units(dot4(unit_init(&c, u, step), c.x, filter + u * depth, step * depth, depth),
                        u, step, &c);
        }
    }
}
