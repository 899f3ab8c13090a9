/*
 * Inline helpers the mixed-precision kernel bodies (c_kernels/src/mixed_*.h) share; not part of
 * the public API. Like mcugen_packing.h, they take the widths as arguments and are forced inline,
 * so each variant gets them specialised for its own compile-time widths.
 */
#ifndef MCUGEN_MIXED_UTIL_H
#define MCUGEN_MIXED_UTIL_H

#include <stdint.h>
#include <string.h>

#include "mcugen_kernel_util.h"
#include "mcugen_mixed.h"
#include "mcugen_packing.h"

#if defined(MCUGEN_DSP)
/* Cortex-M cores with the DSP extension (M4, M7, M33...) multiply-accumulate two int16 lanes at
 * once with SMLAD: a pair of int16 column values read as one word, against a pair of unpacked
 * weights (mcugen_mixed_weight_pairs). Exactly the sum of the portable loop, in another order. */
static inline int32_t mcugen_mixed_column_pair(const int16_t *col)
{
    int32_t pair;
    memcpy(&pair, col, sizeof pair); /* one LDR: Cortex-M4/M7 load unaligned words */
    return pair;
}

/* The four weights of a group word as two pairs of int16 lanes, (w0, w1) and (w2, w3). 8-bit
 * weights: SXTB16 and its rotated form give (w0, w2) and (w1, w3), two PKH regroup them (four
 * instructions instead of seven field extractions and packs); narrower ones: one SBFX per weight
 * and a PKHBT per pair (GCC spends a UXTH and an ORR on the same expression in C). */
MCUGEN_ALWAYS_INLINE void mcugen_mixed_weight_pairs(uint32_t word, int32_t bits, int32_t *w01,
                                                    int32_t *w23)
{
    if (bits == 8) {
        const uint32_t even = __sxtb16(word), odd = mcugen_sxtb16_odd(word);
        __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(*w01) : "r"(even), "r"(odd));
        __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(*w23) : "r"(odd), "r"(even));
    } else {
        __asm__("pkhbt %0, %1, %2, lsl #16"
                : "=r"(*w01)
                : "r"(mcugen_packed_field(word, 0, bits, 1)),
                  "r"(mcugen_packed_field(word, bits, bits, 1)));
        __asm__("pkhbt %0, %1, %2, lsl #16"
                : "=r"(*w23)
                : "r"(mcugen_packed_field(word, 2 * bits, bits, 1)),
                  "r"(mcugen_packed_field(word, 3 * bits, bits, 1)));
    }
}
#endif

/*
 * acc0 += sum_k col0[k] * w[first + k] for k < depth, w holding signed `bits`-bit weights; with
 * `two`, acc1 likewise for col1, each weight being unpacked once for both columns. Weights are
 * read element by element up to a byte boundary, then four at a time. The hot loop of every
 * weighted mixed kernel.
 */
MCUGEN_ALWAYS_INLINE void mcugen_mixed_dot_n(const int16_t *col0, const int16_t *col1,
                                             int32_t two, const uint8_t *w, int32_t first,
                                             int32_t depth, int32_t bits, int32_t *acc0,
                                             int32_t *acc1)
{
    const int32_t align = (1 << mcugen_packed_log_per_byte(bits)) - 1;
    int32_t a0 = *acc0, a1 = *acc1, k = 0, groups;
    const uint8_t *p;
    for (; k < depth && ((first + k) & align) != 0; k++) {
        const int32_t wk = mcugen_packed_get(w, first + k, bits, 1);
        a0 += col0[k] * wk;
        if (two) {
            a1 += col1[k] * wk;
        }
    }
    p = w + ((uint32_t)(first + k) >> mcugen_packed_log_per_byte(bits));
    for (groups = (depth - k) >> 2; groups > 0; groups--, k += 4, p += bits / 2) {
        const uint32_t word = mcugen_packed_group4(p, bits);
#if defined(MCUGEN_DSP)
        int32_t w01, w23;
        mcugen_mixed_weight_pairs(word, bits, &w01, &w23);
        a0 = __smlad(mcugen_mixed_column_pair(col0 + k), w01, a0);
        a0 = __smlad(mcugen_mixed_column_pair(col0 + k + 2), w23, a0);
        if (two) {
            a1 = __smlad(mcugen_mixed_column_pair(col1 + k), w01, a1);
            a1 = __smlad(mcugen_mixed_column_pair(col1 + k + 2), w23, a1);
        }
#else
        const int32_t w0 = mcugen_packed_field(word, 0, bits, 1);
        const int32_t w1 = mcugen_packed_field(word, bits, bits, 1);
        const int32_t w2 = mcugen_packed_field(word, 2 * bits, bits, 1);
        const int32_t w3 = mcugen_packed_field(word, 3 * bits, bits, 1);
        a0 += col0[k] * w0 + col0[k + 1] * w1 + col0[k + 2] * w2 + col0[k + 3] * w3;
        if (two) {
            a1 += col1[k] * w0 + col1[k + 1] * w1 + col1[k + 2] * w2 + col1[k + 3] * w3;
        }
#endif
    }
    for (; k < depth; k++) {
        const int32_t wk = mcugen_packed_get(w, first + k, bits, 1);
        a0 += col0[k] * wk;
        if (two) {
            a1 += col1[k] * wk;
        }
    }
    *acc0 = a0;
    *acc1 = a1;
}

/* mcugen_mixed_dot_n with `two` a literal in each call: one loop for one column, one for two. */
MCUGEN_ALWAYS_INLINE void mcugen_mixed_dot(const int16_t *col0, const int16_t *col1, int32_t two,
                                           const uint8_t *w, int32_t first, int32_t depth,
                                           int32_t bits, int32_t *acc0, int32_t *acc1)
{
    if (two) {
        mcugen_mixed_dot_n(col0, col1, 1, w, first, depth, bits, acc0, acc1);
    } else {
        mcugen_mixed_dot_n(col0, col0, 0, w, first, depth, bits, acc0, acc1);
    }
}

/*
 * The input window of flat output pixel `pixel`, unpacked with input_offset added, as conv's filter
 * rows are laid out: tap t = ky * kw + kx of channel c goes to col[t * in_ch + c]. Taps in the
 * padding are 0 and so add nothing, as TFLite skips them.
 */
MCUGEN_ALWAYS_INLINE void mcugen_mixed_im2col(int16_t *col, int32_t pixel, const mcugen_conv_params *p,
                                              const mcugen_dims *in_dims, const uint8_t *input,
                                              const mcugen_dims *f_dims,
                                              const mcugen_dims *out_dims, int32_t bits,
                                              int32_t is_signed)
{
    const int32_t ch = in_dims->c, f_w = f_dims->w;
    const int32_t row = pixel / out_dims->w, b = row / out_dims->h;
    const int32_t y0 = (row % out_dims->h) * p->stride_h - p->pad_h;
    const int32_t x0 = (pixel % out_dims->w) * p->stride_w - p->pad_w;
    /* Undilated: the inside part of a filter row is one input run. */
    const int32_t whole_rows = p->dilation_w == 1;
    int32_t kx0, kx1, ky, kx, c;
    mcugen_window(x0, p->dilation_w, f_w, in_dims->w, &kx0, &kx1);
    for (ky = 0; ky < f_dims->h; ky++) {
        const int32_t y = y0 + ky * p->dilation_h;
        const int32_t row_inside = y >= 0 && y < in_dims->h;
        for (kx = 0; kx < f_w; kx++) {
            int16_t *dst = col + (ky * f_w + kx) * ch;
            if (row_inside && kx >= kx0 && kx < kx1) {
                const int32_t taps = whole_rows ? kx1 - kx : 1;
                const int32_t first = ((b * in_dims->h + y) * in_dims->w + x0 + kx * p->dilation_w) * ch;
                mcugen_unpack_run(dst, 1, input, first, taps * ch, p->input_offset, bits,
                                  is_signed);
                kx += taps - 1;
            } else {
                for (c = 0; c < ch; c++) {
                    dst[c] = 0;
                }
            }
        }
    }
}

/*
 * The requantization of one output channel, its constants worked out once for the pixels (or batch
 * rows) a kernel computes with them: mcugen_requantize_acc's result, in fewer instructions.
 */
typedef struct {
#if defined(MCUGEN_DSP)
    mcugen_requant_fast fast;
    int32_t is_fast; /* the channel takes the SMMLAR sequence (mcugen_requant_fast_of) */
#endif
    mcugen_requant general;
    int32_t output_offset, act_min, act_max;
} mcugen_mixed_requant;

MCUGEN_ALWAYS_INLINE void mcugen_mixed_requant_of(mcugen_mixed_requant *r,
                                                  const mcugen_quant_params *quant,
                                                  int32_t channel, int32_t output_offset,
                                                  int32_t act_min, int32_t act_max)
{
    r->output_offset = output_offset;
    r->act_min = act_min;
    r->act_max = act_max;
#if defined(MCUGEN_DSP)
    r->is_fast = mcugen_requant_fast_of(quant, channel, &r->fast);
    if (r->is_fast) {
        return;
    }
#endif
    r->general = mcugen_requant_channel(quant, channel);
}

MCUGEN_ALWAYS_INLINE int32_t mcugen_mixed_requantize(int32_t acc, const mcugen_mixed_requant *r)
{
#if defined(MCUGEN_DSP)
    if (r->is_fast) {
        /* mcugen_requant_fast_s8 without its SSAT #8: act_min..act_max may be 0..255 (u8). */
        int32_t q, t;
        __asm__(MCUGEN_REQUANT_FAST_WIDE_ASM("q", "x", "t", "m2", "s", "off")
                : [q] "=&r"(q), [t] "=&r"(t)
                : [x] "r"(acc), [m2] "r"(r->fast.m2), [s] "r"(r->fast.scale),
                  [off] "r"(r->output_offset));
        return mcugen_clamp(q, r->act_min, r->act_max);
    }
#endif
    return mcugen_requant_apply(acc, &r->general, r->output_offset, r->act_min, r->act_max);
}

/*
 * DEPTHWISE_CONV_2D, four output channels (a lane group) at a time. The filter is tap-major
 * (TFLite's 1HWC order, packed: tap t of channel o is element t * out_ch + o). A group's weights
 * are unpacked once into scratch, for all the pixels: per tap the weights of lanes (0, 2, 1, 3),
 * the order in which mcugen_dw_tap pairs them with the input lanes. Lanes past the last channel
 * have weight 0 and read a valid channel; their results are not stored.
 */
typedef struct {
    mcugen_acc4 bias;
    mcugen_mixed_requant rq[4];
    int32_t lane[4]; /* input element of lane i less lane 0's, within a pixel */
    int32_t first;   /* input channel of lane 0 */
    int32_t keep;    /* lanes stored: 4 but in a tail group */
} mcugen_dw_group;

/* Output channel c + i of a group, or the last channel for a lane past it. */
MCUGEN_ALWAYS_INLINE int32_t mcugen_dw_channel(int32_t c, int32_t i, int32_t out_ch)
{
    return mcugen_min(c + i, out_ch - 1);
}

/* The group of output channels c..c+3: its constants, and its weights unpacked into w. */
MCUGEN_ALWAYS_INLINE void mcugen_dw_group_of(mcugen_dw_group *g, int16_t *w, int32_t c,
                                             const mcugen_conv_params *p,
                                             const mcugen_quant_params *quant,
                                             const int32_t *bias, const uint8_t *filter,
                                             int32_t taps, int32_t out_ch, int32_t w_bits)
{
    int32_t i, t;
    g->first = c / p->depth_multiplier;
    g->keep = mcugen_min(out_ch - c, 4);
    for (i = 0; i < 4; i++) {
        const int32_t o = mcugen_dw_channel(c, i, out_ch);
        g->lane[i] = o / p->depth_multiplier - g->first;
        mcugen_mixed_requant_of(&g->rq[i], quant, o, p->output_offset, p->act_min, p->act_max);
    }
    g->bias.l0 = mcugen_bias(bias, c);
    g->bias.l1 = mcugen_bias(bias, mcugen_dw_channel(c, 1, out_ch));
    g->bias.l2 = mcugen_bias(bias, mcugen_dw_channel(c, 2, out_ch));
    g->bias.l3 = mcugen_bias(bias, mcugen_dw_channel(c, 3, out_ch));
    for (t = 0; t < taps; t++, w += 4) {
        for (i = 0; i < 4; i++) { /* lane i to slot 0, 2, 1, 3 */
            w[(i & 1) * 2 + (i >> 1)] =
                (int16_t)(c + i < out_ch ? mcugen_packed_get(filter, t * out_ch + c + i, w_bits, 1) : 0);
        }
    }
}

/* The input lanes of one tap as a word of four raw `bits`-bit fields, lane i at bit i * bits.
 * `fast`: the lanes are four adjacent elements from byte x on, read as whole bytes; else lane i
 * is element pos + g->lane[i] of the input at x. */
MCUGEN_ALWAYS_INLINE uint32_t mcugen_dw_lanes(const uint8_t *x, int32_t pos, const mcugen_dw_group *g,
                                              int32_t bits, int32_t fast)
{
    uint32_t word = 0;
    int32_t i;
    if (fast) {
#if defined(MCUGEN_DSP)
        if (bits == 8) {
            return mcugen_read_u32(x); /* one LDR: Cortex-M4/M7 load unaligned words */
        }
#endif
        return mcugen_packed_group4(x, bits);
    }
    for (i = 0; i < 4; i++) {
        word |= (uint32_t)mcugen_packed_get(x, pos + g->lane[i], bits, 0) << (i * bits);
    }
    return word;
}

#if defined(MCUGEN_DSP)
/* a + bytes 1 and 3 of x, sign- or zero-extended, in two int16 lanes. */
MCUGEN_ALWAYS_INLINE uint32_t mcugen_xtab16_odd(uint32_t a, uint32_t x, int32_t is_signed)
{
    uint32_t r;
    if (is_signed) {
        __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    } else {
        __asm__("uxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    }
    return r;
}
#endif

/* The `adjust` of mcugen_dw_tap: input_offset; on Cortex-M with DSP in both int16 halves, less
 * the top bit of a signed sub-byte field (fields are read with it flipped: the signed value of
 * field u is (u ^ top) - top). */
MCUGEN_ALWAYS_INLINE uint32_t mcugen_dw_adjust(int32_t offset, int32_t bits, int32_t is_signed)
{
#if defined(MCUGEN_DSP)
    if (is_signed && bits < 8) {
        offset -= 1 << (bits - 1);
    }
    return mcugen_splat2(offset);
#else
    (void)bits;
    (void)is_signed;
    return (uint32_t)offset;
#endif
}

/* acc lane i += (input field i of x + input_offset) * lane i's weight of the tap at w. On
 * Cortex-M with DSP the fields become the int16 lane pairs (0, 2) and (1, 3) in a few shifts and
 * masks (SXTAB16 / UXTAB16 at 8 bits), the offset added to both lanes at once. */
MCUGEN_ALWAYS_INLINE mcugen_acc4 mcugen_dw_tap(mcugen_acc4 acc, uint32_t x, const int16_t *w,
                                               uint32_t adjust, int32_t bits, int32_t is_signed)
{
#if defined(MCUGEN_DSP)
    const int32_t w02 = (int32_t)mcugen_read_u32(w), w13 = (int32_t)mcugen_read_u32(w + 2);
    uint32_t even, odd;
    if (bits == 8) {
        even = is_signed ? (uint32_t)__sxtab16(adjust, x) : __uxtab16(adjust, x);
        odd = mcugen_xtab16_odd(adjust, x, is_signed);
    } else {
        /* fields 0 and 2 (1 and 3 after a shift by one field) moved to bits 0 and 16 */
        const uint32_t mask = ((UINT32_C(1) << bits) - 1u) * 0x10001u;
        if (is_signed) {
            x ^= (UINT32_C(1) << (bits - 1)) * (bits == 2 ? 0x55u : 0x1111u);
        }
        even = (uint32_t)__sadd16((x | x << (16 - 2 * bits)) & mask, adjust);
        odd = (uint32_t)__sadd16((x >> bits | x << (16 - 3 * bits)) & mask, adjust);
    }
    acc.l0 = __smlabb((int32_t)even, w02, acc.l0);
    acc.l1 = __smlabb((int32_t)odd, w13, acc.l1);
    acc.l2 = __smlatt((int32_t)even, w02, acc.l2);
    acc.l3 = __smlatt((int32_t)odd, w13, acc.l3);
#else
    const int32_t offset = (int32_t)adjust;
    acc.l0 += (mcugen_packed_field(x, 0, bits, is_signed) + offset) * w[0];
    acc.l1 += (mcugen_packed_field(x, bits, bits, is_signed) + offset) * w[2];
    acc.l2 += (mcugen_packed_field(x, 2 * bits, bits, is_signed) + offset) * w[1];
    acc.l3 += (mcugen_packed_field(x, 3 * bits, bits, is_signed) + offset) * w[3];
#endif
    return acc;
}

/* Requantizes the four lanes and stores the first g->keep as output elements index, index + 1..:
 * with `fast` (index a multiple of 4, keep 4) as whole bytes, else element by element. */
MCUGEN_ALWAYS_INLINE void mcugen_dw_store(uint8_t *out, int32_t index, mcugen_acc4 acc,
                                          const mcugen_dw_group *g, int32_t bits, int32_t fast)
{
    const uint32_t mask = (UINT32_C(1) << bits) - 1u;
    const uint32_t q[4] = {(uint32_t)mcugen_mixed_requantize(acc.l0, &g->rq[0]) & mask,
                           (uint32_t)mcugen_mixed_requantize(acc.l1, &g->rq[1]) & mask,
                           (uint32_t)mcugen_mixed_requantize(acc.l2, &g->rq[2]) & mask,
                           (uint32_t)mcugen_mixed_requantize(acc.l3, &g->rq[3]) & mask};
    int32_t i;
    if (fast) {
        const uint32_t word = q[0] | q[1] << bits | q[2] << (2 * bits) | q[3] << (3 * bits);
        uint8_t *p = out + ((uint32_t)index >> mcugen_packed_log_per_byte(bits));
        for (i = 0; i < bits / 2; i++) { /* bits / 2 bytes */
            p[i] = (uint8_t)(word >> (8 * i));
        }
        return;
    }
    for (i = 0; i < g->keep; i++) {
        mcugen_packed_set(out, index + i, (int32_t)q[i], bits);
    }
}

/* Every output pixel of one lane group, in order: the window's taps inside the input, each four
 * lanes at once. `fast` (a literal in each call): depth multiplier 1 and channels a multiple of 4,
 * so that every group's lanes start on a byte boundary in the input and in the output. */
MCUGEN_ALWAYS_INLINE void mcugen_dw_pixels(const mcugen_dw_group *g, const int16_t *w, int32_t c,
                                           const mcugen_conv_params *p, const mcugen_dims *in_dims,
                                           const uint8_t *input, const mcugen_dims *f_dims,
                                           const mcugen_dims *out_dims, uint8_t *output,
                                           int32_t in_bits, int32_t in_signed, int32_t out_bits,
                                           int32_t fast)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, in_ch = in_dims->c, kw = f_dims->w;
    const int32_t col_step = p->dilation_w * in_ch, row_step = p->dilation_h * in_w * in_ch;
    const uint32_t adjust = mcugen_dw_adjust(p->input_offset, in_bits, in_signed);
    const uint32_t log = mcugen_packed_log_per_byte(in_bits);
    int32_t b, oy, ox, ky, kx, index = c;
    for (b = 0; b < out_dims->n; b++) {
        for (oy = 0; oy < out_dims->h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            mcugen_window(y0, p->dilation_h, f_dims->h, in_h, &ky0, &ky1);
            for (ox = 0; ox < out_dims->w; ox++, index += out_dims->c) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                mcugen_acc4 acc = g->bias;
                int32_t kx0, kx1, row;
                const int16_t *w_row;
                mcugen_window(x0, p->dilation_w, kw, in_w, &kx0, &kx1);
                row = ((b * in_h + y0 + ky0 * p->dilation_h) * in_w + x0 + kx0 * p->dilation_w) * in_ch +
                      g->first;
                w_row = w + (ky0 * kw + kx0) * 4;
                for (ky = ky0; ky < ky1; ky++, row += row_step, w_row += 4 * kw) {
                    /* fast: a byte pointer walks the taps; else an element index */
                    const uint8_t *x = fast ? input + ((uint32_t)row >> log) : input;
                    int32_t pos = fast ? 0 : row;
                    const int16_t *wt = w_row;
                    for (kx = kx0; kx < kx1; kx++, wt += 4) {
                        acc = mcugen_dw_tap(acc, mcugen_dw_lanes(x, pos, g, in_bits, fast), wt, adjust,
                                            in_bits, in_signed);
                        if (fast) {
                            x += col_step >> log;
                        } else {
                            pos += col_step;
                        }
                    }
                }
                mcugen_dw_store(output, index, acc, g, out_bits, fast);
            }
        }
    }
}

/*
 * A run of consecutive packed elements written in order (the output channels of one pixel): the
 * elements are gathered into whole bytes, each stored once, instead of a read-modify-write per
 * element. The bits of the first and last byte outside the run are kept, as mcugen_packed_set
 * keeps them, and each store reads the byte it keeps bits of when it writes it, so two runs that
 * share a byte may be written at the same time.
 */
typedef struct {
    uint8_t *byte;
    uint32_t buf;   /* the elements put into *byte so far, at their bits */
    uint32_t shift; /* the bit of *byte the next element goes to */
    uint32_t keep;  /* the bits of *byte before the run (first byte only) */
} mcugen_packed_writer;

MCUGEN_ALWAYS_INLINE void mcugen_packed_writer_begin(mcugen_packed_writer *w, uint8_t *base,
                                                     int32_t index, int32_t bits)
{
    const uint32_t bit = (uint32_t)index * (uint32_t)bits;
    w->byte = base + (bit >> 3);
    w->buf = 0;
    w->shift = bits == 8 ? 0u : bit & 7u;
    w->keep = (UINT32_C(1) << w->shift) - 1u;
}

MCUGEN_ALWAYS_INLINE void mcugen_packed_writer_put(mcugen_packed_writer *w, int32_t value,
                                                   int32_t bits)
{
    if (bits == 8) {
        *w->byte++ = (uint8_t)value;
        return;
    }
    w->buf |= ((uint32_t)value & ((UINT32_C(1) << bits) - 1u)) << w->shift;
    w->shift += (uint32_t)bits;
    if (w->shift == 8u) {
        *w->byte = (uint8_t)(w->keep != 0u ? (*w->byte & w->keep) | w->buf : w->buf);
        w->byte++;
        w->buf = 0;
        w->shift = 0;
        w->keep = 0;
    }
}

/* Stores the last, partial byte of the run. */
MCUGEN_ALWAYS_INLINE void mcugen_packed_writer_end(mcugen_packed_writer *w, int32_t bits)
{
    if (bits != 8 && w->shift != 0u) {
        const uint32_t written = ((UINT32_C(1) << w->shift) - 1u) & ~w->keep;
        *w->byte = (uint8_t)((*w->byte & ~written) | w->buf);
    }
}

/* The end of a channel loop: one channel's accumulators of one or two (`two`) pixels, requantized
 * and appended to their runs. */
MCUGEN_ALWAYS_INLINE void mcugen_packed_writer_put2(mcugen_packed_writer *w0, mcugen_packed_writer *w1,
                                                    int32_t two, int32_t acc0, int32_t acc1,
                                                    const mcugen_mixed_requant *r, int32_t bits)
{
    mcugen_packed_writer_put(w0, mcugen_mixed_requantize(acc0, r), bits);
    if (two) {
        mcugen_packed_writer_put(w1, mcugen_mixed_requantize(acc1, r), bits);
    }
}

MCUGEN_ALWAYS_INLINE void mcugen_packed_writer_end2(mcugen_packed_writer *w0, mcugen_packed_writer *w1,
                                                    int32_t two, int32_t bits)
{
    mcugen_packed_writer_end(w0, bits);
    if (two) {
        mcugen_packed_writer_end(w1, bits);
    }
}

/*
 * AVERAGE_POOL_2D (is_max = 0) or MAX_POOL_2D (is_max = 1) of packed tensors, one output element
 * at a time over the window's taps inside the input; averages round half away from zero
 * ((sum +- count/2) / count, C division), as mcugen_avg_pool2d_s8. Pooling does no
 * multiply-accumulate, so elements are simply read one by one.
 */
MCUGEN_ALWAYS_INLINE void mcugen_mixed_pool(const mcugen_pool_params *params,
                                            const mcugen_dims *input_dims, const uint8_t *input,
                                            const mcugen_dims *output_dims, uint8_t *output,
                                            int32_t is_max, int32_t in_bits, int32_t in_signed,
                                            int32_t out_bits)
{
    const mcugen_pool_params p = *params; /* output stores may alias anything: copy once */
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    const int32_t lowest = in_signed ? -(1 << (in_bits - 1)) : 0; /* an empty window's max */
    int32_t b, y, x, c, r, k;
    for (b = 0; b < output_dims->n; b++) {
        for (y = 0; y < output_dims->h; y++) {
            const int32_t y0 = y * p.stride_h - p.pad_h;
            int32_t ky0, ky1;
            mcugen_window(y0, 1, p.filter_h, in_h, &ky0, &ky1);
            for (x = 0; x < output_dims->w; x++) {
                const int32_t x0 = x * p.stride_w - p.pad_w;
                const int32_t out_first = ((b * output_dims->h + y) * output_dims->w + x) * ch;
                int32_t kx0, kx1, first, count;
                mcugen_window(x0, 1, p.filter_w, in_w, &kx0, &kx1);
                first = ((b * in_h + y0 + ky0) * in_w + x0 + kx0) * ch; /* first tap inside */
                count = (ky1 - ky0) * (kx1 - kx0);
                for (c = 0; c < ch; c++) {
                    int32_t v = is_max ? lowest : 0;
                    for (r = 0; r < ky1 - ky0; r++) {
                        int32_t index = first + r * in_w * ch + c;
                        for (k = 0; k < kx1 - kx0; k++, index += ch) {
                            const int32_t e = mcugen_packed_get(input, index, in_bits, in_signed);
                            v = is_max ? mcugen_max(v, e) : v + e;
                        }
                    }
                    if (!is_max) {
                        v = v > 0 ? (v + count / 2) / count : (v - count / 2) / count;
                    }
                    mcugen_packed_set(output, out_first + c, mcugen_clamp(v, p.act_min, p.act_max),
                                      out_bits);
                }
            }
        }
    }
}

#endif /* MCUGEN_MIXED_UTIL_H */
