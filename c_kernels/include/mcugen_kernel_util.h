/*
 * Small inline helpers the kernel sources share (not part of the public API).
 *
 * Element access goes through mcugen_get_s8/mcugen_set_s8 only, so that packed sub-byte
 * variants can replace them without touching the loops.
 */
#ifndef MCUGEN_KERNEL_UTIL_H
#define MCUGEN_KERNEL_UTIL_H

#include <stdint.h>
#include <string.h>

#include "mcugen_fixedpoint.h"
#include "mcugen_kernels.h"

/*
 * Cortex-M cores with the DSP extension (M4, M7, M33...) get SIMD inner loops: SXTB16 widens two
 * int8 values into two int16 lanes, SMLAD multiplies two lane pairs and adds both products to an
 * accumulator. Every other target (the host, RISC-V) compiles the portable C of each helper.
 */
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#define MCUGEN_DSP 1
#endif

/* For helpers that must stay a call (so the caller's hot loop keeps its registers). */
#if defined(__GNUC__)
#define MCUGEN_NOINLINE __attribute__((noinline))
#else
#define MCUGEN_NOINLINE
#endif

/*
 * Four int32 accumulators, one per lane, for kernels that work on four channels (or units) at
 * once. Named fields rather than an array: compilers keep them in registers.
 */
typedef struct {
    int32_t l0;
    int32_t l1;
    int32_t l2;
    int32_t l3;
} mcugen_acc4;

static inline int32_t mcugen_get_s8(const int8_t *base, int32_t index)
{
    return base[index];
}

static inline void mcugen_set_s8(int8_t *base, int32_t index, int32_t value)
{
    base[index] = (int8_t)value;
}

static inline int32_t mcugen_min(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

static inline int32_t mcugen_max(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

static inline int32_t mcugen_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return mcugen_min(mcugen_max(x, lo), hi);
}

/* The common epilogue: int32 accumulator to the clamped output integer. */
static inline int32_t mcugen_requantize_acc(int32_t acc, int32_t multiplier, int32_t shift,
                                            int32_t output_offset, int32_t act_min,
                                            int32_t act_max)
{
    return mcugen_clamp(
        mcugen_multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset, act_min,
        act_max);
}

/*
 * MBQM split into per-channel constants (computed once per output channel, not per element) and a
 * short per-element sequence, with the same result as mcugen_requantize_acc for any multiplier
 * >= 0 (TFLite's Q31 multipliers are): both roundings are folded into one 64-bit sum.
 *
 * With x = acc << left, P = x * multiplier and e = the right shift, MBQM is
 * RDBP(SRDHM(x, m), e) = RDBP(floor((P + 2^30) / 2^31), e). For e >= 1, RDBP(s, e) =
 * floor((s + 2^(e-1) - [s < 0]) / 2^e) and nested floors merge, so the result is
 * floor((P + 2^30 + 2^(30+e) - [x < 0] * 2^31) / 2^(31+e))  ([s < 0] = [x < 0] whenever it
 * matters), i.e. the high word of that sum shifted right by e - 1. For e = 0 it is
 * floor((2P + 2^31) / 2^32): the high word of P added twice plus 2^31.
 */
typedef struct {
    int32_t multiplier;
    int32_t doubled;  /* multiplier when e = 0 (P counted twice), else 0 */
    int32_t left;     /* left shift of the accumulator */
    int32_t fix;      /* -1 when e >= 1: subtract 2^31 for negative x */
    int32_t right;    /* max(e - 1, 0): shift of the high word */
    uint32_t round_lo; /* 2^31 (e = 0) or 2^30 + 2^(30+e), as two words */
    int32_t round_hi;
} mcugen_requant;

static inline mcugen_requant mcugen_requant_channel(const mcugen_quant_params *quant,
                                                    int32_t channel)
{
    const int32_t q = quant->count > 1 ? channel : 0;
    const int32_t shift = quant->shift[q];
    const int32_t e = shift > 0 ? 0 : -shift;
    const uint64_t round = e == 0 ? UINT64_C(1) << 31 : (UINT64_C(1) << 30) + (UINT64_C(1) << (30 + e));
    mcugen_requant r;
    r.multiplier = quant->multiplier[q];
    r.doubled = e == 0 ? r.multiplier : 0;
    r.left = shift > 0 ? shift : 0;
    r.fix = e == 0 ? 0 : -1;
    r.right = e == 0 ? 0 : e - 1;
    r.round_lo = (uint32_t)round;
    r.round_hi = (int32_t)(round >> 32);
    return r;
}

/* The high word of the sum above, i.e. MBQM(acc) << 0 before its last shift. */
static inline int32_t mcugen_requant_high(int32_t acc, const mcugen_requant *r)
{
    const int32_t x = (int32_t)((uint32_t)acc << r->left);
#if defined(MCUGEN_DSP)
    uint32_t lo = r->round_lo;
    int32_t hi = r->round_hi, fix = r->fix;
    __asm__("smlal %[lo], %[hi], %[x], %[m]\n\t"
            "smlal %[lo], %[hi], %[x], %[m2]\n\t"
            "and %[fix], %[fix], %[x], asr #31\n\t"
            "adds %[lo], %[lo], %[fix], lsl #31\n\t"
            "adc %[hi], %[hi], %[fix]\n\t"
            : [lo] "+&r"(lo), [hi] "+&r"(hi), [fix] "+&r"(fix)
            : [x] "r"(x), [m] "r"(r->multiplier), [m2] "r"(r->doubled)
            : "cc");
    return hi;
#else
    const int64_t round = (int64_t)(((uint64_t)(uint32_t)r->round_hi << 32) | r->round_lo);
    const int64_t v = (int64_t)x * r->multiplier + (int64_t)x * r->doubled + round -
                      (int64_t)((x >> 31) & r->fix & 1) * (INT64_C(1) << 31);
    return (int32_t)(v >> 32);
#endif
}

static inline int32_t mcugen_requant_apply(int32_t acc, const mcugen_requant *r,
                                           int32_t output_offset, int32_t act_min,
                                           int32_t act_max)
{
    return mcugen_clamp((mcugen_requant_high(acc, r) >> r->right) + output_offset, act_min,
                        act_max);
}

/* The low 16 bits of v in both halfwords of a word: an offset SADD16 adds to two int16 lanes. */
static inline uint32_t mcugen_splat2(int32_t v)
{
    return ((uint32_t)v & 0xFFFFu) * 0x10001u;
}

/* v within int8 in each byte of a word: the bounds of mcugen_clamp4. */
static inline uint32_t mcugen_splat4(int32_t v)
{
    return ((uint32_t)mcugen_clamp(v, -128, 127) & 0xFFu) * 0x01010101u;
}

#if defined(MCUGEN_DSP)
/*
 * mcugen_requant_apply in three instructions plus SSAT for the usual channel: multiplier >= 2^30
 * (every non-zero TFLite multiplier) and shift <= -2 (a right shift e >= 2; every layer of the
 * benchmark models). SMMLAR r, a, b, c is the high word of c * 2^32 + a * b + 2^31 (modulo
 * 2^64). With P = acc * multiplier:
 *  - SRDHM(acc, multiplier) = floor((2P + 2^31) / 2^32): gemmlowp's nudge of 1 - 2^30 for
 *    negative products turns its truncating division into this floor. 2 * multiplier does not
 *    fit an int32, m2 = 2 * multiplier - 2^32 does and acc * m2 = 2P - acc * 2^32, so
 *    SMMLAR(acc, m2, acc - [acc < 0]) = SRDHM - [acc < 0] =: Q (c may wrap: that only changes
 *    bits above the 64 kept);
 *  - the rounding right shift (ties away from zero, hence the - [acc < 0]) is
 *    floor((Q + 2^(e-1)) / 2^e) = SMMLAR(Q, 2^(32-e), 0), and c adds the output offset.
 */
typedef struct {
    int32_t m2;    /* 2 * multiplier - 2^32 */
    int32_t scale; /* 2^(32 - e) */
} mcugen_requant_fast;

/* Fills *r and returns 1 if channel `channel` of quant takes mcugen_requant_fast_s8. */
static inline int mcugen_requant_fast_of(const mcugen_quant_params *quant, int32_t channel,
                                         mcugen_requant_fast *r)
{
    const int32_t q = quant->count > 1 ? channel : 0;
    const int32_t multiplier = quant->multiplier[q], shift = quant->shift[q];
    r->m2 = (int32_t)((uint32_t)multiplier * 2u);
    r->scale = (int32_t)(UINT32_C(1) << ((32 + shift) & 31));
    return multiplier >= (INT32_C(1) << 30) && (uint32_t)(shift + 31) <= 29u; /* -31..-2 */
}

/* The sequence as assembly text on named operands, for assembly blocks that requantize: out =
 * MBQM(accumulator in) + off, not saturated (out may be in), t scratch, m2 / scale / off the
 * constants. */
#define MCUGEN_REQUANT_FAST_WIDE_ASM(out, in, t, m2, scale, off)                                   \
    "add %[" t "], %[" in "], %[" in "], asr #31\n\t"                                              \
    "smmlar %[" out "], %[" in "], %[" m2 "], %[" t "]\n\t"                                        \
    "smmlar %[" out "], %[" out "], %[" scale "], %[" off "]\n\t"

/* The same, saturated to int8. */
#define MCUGEN_REQUANT_FAST_ASM(out, in, t, m2, scale, off)                                        \
    MCUGEN_REQUANT_FAST_WIDE_ASM(out, in, t, m2, scale, off)                                       \
    "ssat %[" out "], #8, %[" out "]\n\t"

/* The four accumulators a0..a3 of an assembly block, requantized in place with one channel's
 * constants. */
#define MCUGEN_REQUANT_FAST4_ASM(t, m2, scale, off)                                                \
    MCUGEN_REQUANT_FAST_ASM("a0", "a0", t, m2, scale, off)                                         \
    MCUGEN_REQUANT_FAST_ASM("a1", "a1", t, m2, scale, off)                                         \
    MCUGEN_REQUANT_FAST_ASM("a2", "a2", t, m2, scale, off)                                         \
    MCUGEN_REQUANT_FAST_ASM("a3", "a3", t, m2, scale, off)

/* MBQM(acc) + output_offset saturated to int8, for a channel mcugen_requant_fast_of accepts. */
static inline int32_t mcugen_requant_fast_s8(int32_t acc, mcugen_requant_fast r,
                                             int32_t output_offset)
{
    int32_t q, t;
    __asm__(MCUGEN_REQUANT_FAST_ASM("q", "x", "t", "m2", "s", "off")
            : [q] "=&r"(q), [t] "=&r"(t)
            : [x] "r"(acc), [m2] "r"(r.m2), [s] "r"(r.scale), [off] "r"(output_offset));
    return q;
}

/* mcugen_requant_apply saturated to int8 instead of clamped, for any channel. */
static inline int32_t mcugen_requant_any_s8(int32_t acc, const mcugen_requant *r,
                                            int32_t output_offset)
{
    return __ssat((mcugen_requant_high(acc, r) >> r->right) + output_offset, 8);
}

/* The low bytes of v0..v3 as one word, v0 in the low byte: three BFI (GCC masks and ORs). */
static inline uint32_t mcugen_pack4(int32_t v0, int32_t v1, int32_t v2, int32_t v3)
{
    uint32_t v = (uint32_t)v0;
    __asm__("bfi %[v], %[v1], #8, #8\n\t"
            "bfi %[v], %[v2], #16, #8\n\t"
            "bfi %[v], %[v3], #24, #8\n\t"
            : [v] "+&r"(v)
            : [v1] "r"(v1), [v2] "r"(v2), [v3] "r"(v3));
    return v;
}

/* Each int8 byte of v clamped to [min4, max4] (mcugen_splat4 bounds), four at once. */
static inline uint32_t mcugen_clamp4(uint32_t v, uint32_t min4, uint32_t max4)
{
    uint32_t t;
    __asm__("ssub8 %[t], %[v], %[mn]\n\t"
            "sel %[v], %[v], %[mn]\n\t"
            "ssub8 %[t], %[mx], %[v]\n\t"
            "sel %[v], %[v], %[mx]\n\t"
            : [v] "+&r"(v), [t] "=&r"(t)
            : [mn] "r"(min4), [mx] "r"(max4)
            : "cc");
    return v;
}
#endif

/* Four bytes from any address as one little-endian word (one LDR on Cortex-M7). */
static inline uint32_t mcugen_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/*
 * An elementwise int8 -> int8 map has only 256 inputs: from MCUGEN_TABLE_MIN_SIZE elements on, a
 * table of all 256 results (on the stack), computed once with the exact arithmetic, costs less than
 * computing every element. out[i] = f(params, in[i]); out may be in. With f a constant at the call,
 * the compiler inlines it.
 */
#define MCUGEN_TABLE_MIN_SIZE 512

typedef int32_t (*mcugen_s8_map)(const void *params, int32_t x);

static inline void mcugen_map_s8(mcugen_s8_map f, const void *params, const int8_t *in,
                                 int32_t size, int8_t *out)
{
    int32_t i;
    if (size >= MCUGEN_TABLE_MIN_SIZE) {
        int8_t table[256];
        const int8_t *const center = table + 128;
        for (i = 0; i < 256; i++) {
            table[i] = (int8_t)f(params, i - 128);
        }
        for (i = 0; i < size; i++) {
            out[i] = center[in[i]];
        }
        return;
    }
    for (i = 0; i < size; i++) {
        out[i] = (int8_t)f(params, in[i]);
    }
}

#if defined(MCUGEN_DSP)
/* Bytes 1 and 3 of x, sign-extended into two int16 lanes (GCC does not fold the rotation into
 * SXTB16 by itself). */
static inline uint32_t mcugen_sxtb16_odd(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
#endif

#if defined(MCUGEN_DSP)
/* The four int8 bytes of x plus an offset (offsets = mcugen_splat2(offset)) as two int16 pairs:
 * bytes 0 and 2 in *even, 1 and 3 in *odd. */
static inline void mcugen_widen_word(uint32_t x, uint32_t offsets, uint32_t *even, uint32_t *odd)
{
    *even = __sadd16(__sxtb16(x), offsets);
    *odd = __sadd16(mcugen_sxtb16_odd(x), offsets);
}
#endif

/*
 * Four int8 values plus `offset`, as int16 in the order (0, 2, 1, 3): the order in which SXTB16
 * and its rotated form deliver them, so that a word of four weights widened the same way lines
 * up with them. This is the layout of every int16 buffer the SIMD dot products read.
 */
static inline void mcugen_widen4(const int8_t *src, int32_t offset, int16_t *dst)
{
#if defined(MCUGEN_DSP)
    uint32_t even, odd;
    mcugen_widen_word(mcugen_read_u32(src), mcugen_splat2(offset), &even, &odd);
    memcpy(dst, &even, sizeof even);
    memcpy(dst + 2, &odd, sizeof odd);
#else
    dst[0] = (int16_t)(src[0] + offset);
    dst[1] = (int16_t)(src[2] + offset);
    dst[2] = (int16_t)(src[1] + offset);
    dst[3] = (int16_t)(src[3] + offset);
#endif
}

static inline int32_t mcugen_bias(const int32_t *bias, int32_t channel)
{
    return bias ? bias[channel] : 0;
}

/* out[index] = the requantized accumulator of output channel `channel`, whose multiplier is
 * per channel or per tensor. */
static inline void mcugen_store_channel(int8_t *out, int32_t index, int32_t acc, int32_t channel,
                                        const mcugen_quant_params *quant, int32_t output_offset,
                                        int32_t act_min, int32_t act_max)
{
    const int32_t q = quant->count > 1 ? channel : 0;
    mcugen_set_s8(out, index,
                  mcugen_requantize_acc(acc, quant->multiplier[q], quant->shift[q], output_offset,
                                        act_min, act_max));
}

/* The initial accumulators of output channels first + i * lane, i = 0..3: bias + extra. */
static inline mcugen_acc4 mcugen_bias4(const int32_t *bias, int32_t first, int32_t lane,
                                       int32_t extra)
{
    mcugen_acc4 acc;
    acc.l0 = mcugen_bias(bias, first) + extra;
    acc.l1 = mcugen_bias(bias, first + lane) + extra;
    acc.l2 = mcugen_bias(bias, first + 2 * lane) + extra;
    acc.l3 = mcugen_bias(bias, first + 3 * lane) + extra;
    return acc;
}

/* Requantizes and stores the four lanes as output channels first + i * lane, i = 0..3. */
static inline void mcugen_store4(int8_t *out, int32_t first, int32_t lane, mcugen_acc4 acc,
                                 const mcugen_quant_params *quant, int32_t output_offset,
                                 int32_t act_min, int32_t act_max)
{
    mcugen_store_channel(out, first, acc.l0, first, quant, output_offset, act_min, act_max);
    mcugen_store_channel(out, first + lane, acc.l1, first + lane, quant, output_offset, act_min,
                         act_max);
    mcugen_store_channel(out, first + 2 * lane, acc.l2, first + 2 * lane, quant, output_offset,
                         act_min, act_max);
    mcugen_store_channel(out, first + 3 * lane, acc.l3, first + 3 * lane, quant, output_offset,
                         act_min, act_max);
}

/*
 * Lane i of the block of items (pixels, channels, units) starting at `first`, out of `count`:
 * past the end it repeats the last item, so a partial block recomputes (and rewrites) that item
 * instead of needing a separate tail loop.
 */
static inline int32_t mcugen_lane(int32_t first, int32_t i, int32_t count)
{
    return mcugen_min(first + i, count - 1);
}

/*
 * The distance between the four lanes of the channel block at `first` out of `count` channels:
 * 1 while four channels remain (lanes first .. first+3), then 0 (one channel, in all four lanes),
 * so that one inner loop serves the blocks and the tail. The next block is at
 * first + mcugen_lanes_advance(step).
 */
static inline int32_t mcugen_lane_step(int32_t first, int32_t count)
{
    return count - first >= 4 ? 1 : 0;
}

static inline int32_t mcugen_lanes_advance(int32_t step)
{
    return step ? 4 : 1;
}

/*
 * The filter taps k in [*begin, *end) for which origin + k * dilation lies in [0, size):
 * the part of a window that lies inside the input.
 */
static inline void mcugen_window(int32_t origin, int32_t dilation, int32_t taps, int32_t size,
                                 int32_t *begin, int32_t *end)
{
    int32_t b = 0;
    int32_t e = taps;
    while (b < e && origin + b * dilation < 0) {
        b++;
    }
    while (e > b && origin + (e - 1) * dilation >= size) {
        e--;
    }
    *begin = b;
    *end = e;
}

/*
 * Sums over a rows x cols window (taps x_row / x_col apart) of four lanes x_lane apart: the inner
 * loop of average pooling and mean. Call it with a literal x_lane (see mcugen_window_sum4).
 */
static inline mcugen_acc4 mcugen_window_sum4_lanes(const int8_t *x, int32_t x_lane, int32_t x_row,
                                                   int32_t x_col, int32_t rows, int32_t cols)
{
    mcugen_acc4 acc = {0, 0, 0, 0};
    int32_t r, k;
    for (r = 0; r < rows; r++, x += x_row) {
        const int8_t *xp = x;
        for (k = 0; k < cols; k++, xp += x_col) {
            acc.l0 += mcugen_get_s8(xp, 0);
            acc.l1 += mcugen_get_s8(xp, x_lane);
            acc.l2 += mcugen_get_s8(xp, 2 * x_lane);
            acc.l3 += mcugen_get_s8(xp, 3 * x_lane);
        }
    }
    return acc;
}

/* acc.li + k * s.li, in unsigned arithmetic (equal modulo 2^32, as the reference's accumulator
 * wraps): an input offset k's share of four outputs, sum (x + k) w = sum x w + k * sum w, with
 * the weight sums s from mcugen_window_sum4_lanes. */
static inline mcugen_acc4 mcugen_add_scaled4(mcugen_acc4 acc, mcugen_acc4 s, int32_t k)
{
    acc.l0 = (int32_t)((uint32_t)acc.l0 + (uint32_t)k * (uint32_t)s.l0);
    acc.l1 = (int32_t)((uint32_t)acc.l1 + (uint32_t)k * (uint32_t)s.l1);
    acc.l2 = (int32_t)((uint32_t)acc.l2 + (uint32_t)k * (uint32_t)s.l2);
    acc.l3 = (int32_t)((uint32_t)acc.l3 + (uint32_t)k * (uint32_t)s.l3);
    return acc;
}

/* mcugen_window_sum4_lanes for a channel block of lane step 1 or 0, with the step a literal in
 * each call so that the compiler addresses the lanes by immediates. */
static inline mcugen_acc4 mcugen_window_sum4(const int8_t *x, int32_t step, int32_t x_row,
                                             int32_t x_col, int32_t rows, int32_t cols)
{
    return step ? mcugen_window_sum4_lanes(x, 1, x_row, x_col, rows, cols)
                : mcugen_window_sum4_lanes(x, 0, x_row, x_col, rows, cols);
}

#endif /* MCUGEN_KERNEL_UTIL_H */
