/*
 * CONV_2D, int8, per-channel or per-tensor requantization.
 *
 * Output pixels are computed in blocks of four. Their input windows are first widened into a
 * column buffer as int16 with the input offset already added (so padding becomes 0 and the hot
 * loop needs no offset), then each output channel's filter row is multiplied by the four columns:
 * every weight loaded serves four pixels. On Cortex-M with the DSP extension one group of four
 * depth values of the four pixels costs 13 instructions for 16 MACs (two SXTB16 for the weights,
 * two LDM for the columns, eight SMLAD).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcugen_kernel_util.h"

#define PIXELS 4 /* output pixels per block */

/*
 * Filter rows are depth values zero-padded to row_of(depth), a multiple of 8 (see
 * mcugen_kernels.h): whole LDRD pairs of groups of four, so that the assembly loop takes any depth.
 * The zero weights make whatever the columns hold past depth count for nothing.
 */
static int32_t row_of(int32_t depth)
{
    return (depth + 7) / 8 * 8;
}

static int32_t groups_of(int32_t depth)
{
    return (depth + 3) / 4;
}

/*
 * The column buffer holds the windows of the block's PIXELS pixels, as groups of four values:
 * group g of pixel j is at cols + (g * PIXELS + j) * 4, in mcugen_widen4's order, as many groups
 * as a padded row has (the gather writes those that hold depth values). The int8 window of one
 * pixel (when the input must be gathered) follows the columns.
 */
static int32_t columns_bytes(int32_t depth)
{
    return row_of(depth) * PIXELS * (int32_t)sizeof(int16_t);
}

/* n bytes from src to dst, a word at a time where it can (unaligned words are single loads and
 * stores on Cortex-M): a window's runs are seldom aligned, and a libc memcpy may copy those byte
 * by byte. */
static void copy_run(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        const uint32_t word = mcugen_read_u32(src);
        memcpy(dst, &word, sizeof word);
    }
    for (; n > 0; n--) {
        *dst++ = *src++;
    }
}

/* n bytes of v from dst on, a word at a time (the firmware's memset stores bytes one by one). */
static void fill_run(int8_t *dst, int8_t v, int32_t n)
{
    const uint32_t word = (uint32_t)(uint8_t)v * 0x01010101u;
    for (; n >= 4; n -= 4, dst += 4) {
        memcpy(dst, &word, sizeof word);
    }
    for (; n > 0; n--) {
        *dst++ = v;
    }
}

/* Widens `groups` groups of four int8 values at src into pixel j's part of the column buffer. */
static void widen_groups(int16_t *cols, int32_t j, const int8_t *src, int32_t groups,
                         int32_t input_offset)
{
    int16_t *dst = cols + 4 * j;
    for (; groups > 0; groups--, src += 4, dst += 4 * PIXELS) {
        mcugen_widen4(src, input_offset, dst);
    }
}

/* Widens `rows` rows of `groups` groups each, at input + src and `step` bytes apart, into pixel
 * j's part of consecutive groups of the column buffer. */
static void widen_rows(int16_t *cols, int32_t j, const int8_t *input, int32_t src, int32_t step,
                       int32_t rows, int32_t groups, int32_t input_offset)
{
    int16_t *dst = cols + 4 * j;
    const int32_t row_bytes = groups * 4;
    for (; rows > 0; rows--, src += step) {
        int32_t k;
        for (k = 0; k < row_bytes; k += 4, dst += 4 * PIXELS) {
            mcugen_widen4(input + src + k, input_offset, dst);
        }
    }
}

/* Widens pixel j's window (depth int8 values at src) into the column buffer. */
static void widen_column(int16_t *cols, int32_t j, const int8_t *src, int32_t depth,
                         int32_t input_offset)
{
    const int32_t whole = depth / 4;
    widen_groups(cols, j, src, whole, input_offset);
    if (whole * 4 < depth) { /* zero points past the end widen to 0 */
        int8_t tail[4];
        memset(tail, -input_offset, sizeof tail);
        memcpy(tail, src + whole * 4, (size_t)(depth - whole * 4));
        widen_groups(cols + whole * 4 * PIXELS, j, tail, 1, input_offset);
    }
}

/* Pixel j's part of `groups` groups of the column buffer set to 0 (a widened zero point). */
static void zero_groups(int16_t *cols, int32_t j, int32_t groups)
{
    int16_t *dst = cols + 4 * j;
    for (; groups > 0; groups--, dst += 4 * PIXELS) {
        memset(dst, 0, 4 * sizeof *dst);
    }
}

/* acc.lj += column j . w over one group of four values (w: four weights as a word). */
static inline mcugen_acc4 dot_group(mcugen_acc4 a, const int16_t *g, uint32_t w)
{
#if defined(MCUGEN_DSP)
    const uint32_t even = __sxtb16(w), odd = mcugen_sxtb16_odd(w);
    a.l0 = __smlad(mcugen_read_u32(g + 2), odd, __smlad(mcugen_read_u32(g), even, a.l0));
    a.l1 = __smlad(mcugen_read_u32(g + 6), odd, __smlad(mcugen_read_u32(g + 4), even, a.l1));
    a.l2 = __smlad(mcugen_read_u32(g + 10), odd, __smlad(mcugen_read_u32(g + 8), even, a.l2));
    a.l3 = __smlad(mcugen_read_u32(g + 14), odd, __smlad(mcugen_read_u32(g + 12), even, a.l3));
#else
    const int32_t w0 = (int8_t)w, w1 = (int8_t)(w >> 8), w2 = (int8_t)(w >> 16);
    const int32_t w3 = (int8_t)(w >> 24);
    a.l0 += g[0] * w0 + g[1] * w2 + g[2] * w1 + g[3] * w3;
    a.l1 += g[4] * w0 + g[5] * w2 + g[6] * w1 + g[7] * w3;
    a.l2 += g[8] * w0 + g[9] * w2 + g[10] * w1 + g[11] * w3;
    a.l3 += g[12] * w0 + g[13] * w2 + g[14] * w1 + g[15] * w3;
#endif
    return a;
}

#if defined(MCUGEN_DSP)
/*
 * Assembly on named operands: accumulators a0..a3, column words c0..c3 (pinned to r8..r11, in
 * ascending order for LDM), the column pointer cp. The four columns of one group come in with two
 * LDM (GCC does not merge the loads); lane j starts from register "inj" (the lane itself, or the
 * bias of the channel's first group), even / odd are the widened weights.
 */
#define COLUMNS_ASM(in0, in1, in2, in3, even, odd)                                                 \
    "ldmia %[cp]!, {%[c0], %[c1], %[c2], %[c3]}\n\t"                                               \
    "smlad %[a0], %[c0], %[" even "], %[" in0 "]\n\t"                                              \
    "smlad %[a0], %[c1], %[" odd "], %[a0]\n\t"                                                    \
    "smlad %[a1], %[c2], %[" even "], %[" in1 "]\n\t"                                              \
    "smlad %[a1], %[c3], %[" odd "], %[a1]\n\t"                                                    \
    "ldmia %[cp]!, {%[c0], %[c1], %[c2], %[c3]}\n\t"                                               \
    "smlad %[a2], %[c0], %[" even "], %[" in2 "]\n\t"                                              \
    "smlad %[a2], %[c1], %[" odd "], %[a2]\n\t"                                                    \
    "smlad %[a3], %[c2], %[" even "], %[" in3 "]\n\t"                                              \
    "smlad %[a3], %[c3], %[" odd "], %[a3]\n\t"

/* One group: the weight word w widened in place (odd) and into even, against the columns. */
#define GROUP_ASM(w)                                                                               \
    "sxtb16 %[even], %[" w "]\n\t"                                                                 \
    "sxtb16 %[" w "], %[" w "], ror #8\n\t" COLUMNS_ASM("a0", "a1", "a2", "a3", "even", w)

/* Two groups from one LDRD of weights (wp word-aligned). */
#define PAIR_ASM "ldrd %[w], %[w1], [%[wp]], #8\n\t" GROUP_ASM("w") GROUP_ASM("w1")
#endif

/* acc.lj += column j . filter row w, over the groups that hold depth values (the hot loop of
 * conv). */
static inline mcugen_acc4 dot_columns(mcugen_acc4 a, const int16_t *cols, const int8_t *w,
                                      int32_t depth)
{
    int32_t full = groups_of(depth);
#if defined(MCUGEN_DSP)
    if (full >= 2) { /* pairs of groups per iteration: half the loop overhead */
        int32_t pairs = full / 2;
        register uint32_t c0 __asm__("r8"), c1 __asm__("r9"), c2 __asm__("r10"),
            c3 __asm__("r11");
        uint32_t word, even;
        __asm__ volatile("1:\n\t"
                         "ldr %[w], [%[wp]], #4\n\t" GROUP_ASM("w")
                         "ldr %[w], [%[wp]], #4\n\t" GROUP_ASM("w")
                         "subs %[n], %[n], #1\n\t"
                         "bne 1b\n\t"
                         : [a0] "+r"(a.l0), [a1] "+r"(a.l1), [a2] "+r"(a.l2), [a3] "+r"(a.l3),
                           [w] "=&r"(word), [even] "=&r"(even), [wp] "+r"(w), [cp] "+r"(cols),
                           [n] "+r"(pairs), [c0] "=&r"(c0), [c1] "=&r"(c1), [c2] "=&r"(c2),
                           [c3] "=&r"(c3)
                         :
                         : "cc", "memory");
        full &= 1;
    }
#endif
    for (; full > 0; full--, w += 4, cols += 4 * PIXELS) {
        a = dot_group(a, cols, mcugen_read_u32(w));
    }
    return a;
}

#if defined(MCUGEN_DSP)
/* Pairs of groups per iteration of channels_fast's loop (as its assembly spells them out); up to
 * PAIRS_UNROLL - 1 more run after it. */
#define PAIRS_UNROLL 8

/*
 * What channels_fast's assembly reads. It holds a pointer to out0, takes the four words below it
 * with one LDMDB and out0..cols with one LDM (into r4, r5, r7, r8, r9, r10, r12: hence entry
 * between out1 and out2). Per-channel arrays and outputs are addressed past their last channel,
 * indexed by o = channel - out_ch (counting up to 0, so its increment is the loop test).
 */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    uint32_t top; /* 2^31, shifted right to 2^(32 - e) */
    int32_t output_offset;
    int8_t *out0; /* pixel j's outputs, past the last channel */
    int8_t *out1;
    int32_t entry; /* the first jump of the dot product: remaining pairs, or PAIRS_UNROLL to loop */
    int8_t *out2;
    int8_t *out3;
    const int32_t *bias;
    const int16_t *cols;
    int32_t o;          /* -out_ch */
    int32_t iterations; /* of the unrolled loop, then */
    int32_t rest;       /* the pairs after it */
} conv_job;

/* A TBH table from label 9 (which must follow the TBH) to labels 30..37: the entry for r
 * remaining pairs runs the last r pairs of the tail. */
#define REST_TABLE_ASM                                                                             \
    "9:\n\t"                                                                                       \
    ".hword (30f-9b)/2, (31f-9b)/2, (32f-9b)/2, (33f-9b)/2\n\t"                                    \
    ".hword (34f-9b)/2, (35f-9b)/2, (36f-9b)/2, (37f-9b)/2\n\t"

/*
 * Every output channel of the block (at least one) in one assembly loop, for the layers
 * fast_channels accepts: bias, dot product, mcugen_requant_fast_s8 and four byte stores per
 * channel. The dot product takes every register, so the loop state lives in the job and on the
 * stack (the pointer into the job, o, iterations, rest) and comes back with LDRD / LDM, every
 * register pinned for their lists. The first pair of groups starts the four lanes from the bias
 * (in a3); TBH then jumps into the tail of PAIRS_UNROLL - 1 pairs, or to the loop and into the
 * tail after it.
 */
static void channels_fast(conv_job *job, const int8_t *filter)
{
    register int32_t a0 __asm__("r0"), a1 __asm__("r1"), a2 __asm__("r2"), a3 __asm__("r3");
    register uint32_t w __asm__("r4"), w1 __asm__("r5"), even __asm__("r6"); /* even: also o */
    register conv_job *n __asm__("r7") = job;
    register uint32_t c0 __asm__("r8"), c1 __asm__("r9"), c2 __asm__("r10"), c3 __asm__("r11");
    register const int16_t *cp __asm__("r12");
    register const int8_t *wp __asm__("lr") = filter;
    __asm__ volatile("ldr r6, [r7, %[o_o]]\n\t"
                     "ldrd r4, r5, [r7, %[o_iter]]\n\t"
                     "add r7, r7, %[o_out]\n\t"
                     "strd r4, r5, [sp, #-8]!\n\t"
                     "strd r7, r6, [sp, #-8]!\n\t"
                     "ldm r7, {r4, r5, r7, r8, r9, r10, r12}\n\t"
                     "7:\n\t"
                     "ldr %[a3], [r10, r6, lsl #2]\n\t"
                     "ldrd %[w], %[w1], [%[wp]], #8\n\t"
                     "sxtb16 %[even], %[w]\n\t"
                     "sxtb16 %[w], %[w], ror #8\n\t"
                     COLUMNS_ASM("a3", "a3", "a3", "a3", "even", "w") GROUP_ASM("w1")
                     "tbh [pc, r7, lsl #1]\n\t" REST_TABLE_ASM
                     ".hword (8f-9b)/2\n\t"
                     "8:\n\t"
                     "ldr r7, [sp, #8]\n\t"
                     "1:\n\t" PAIR_ASM PAIR_ASM PAIR_ASM PAIR_ASM
                     PAIR_ASM PAIR_ASM PAIR_ASM PAIR_ASM
                     "subs r7, r7, #1\n\t"
                     "bne.w 1b\n\t"
                     "ldr r7, [sp, #12]\n\t"
                     "tbh [pc, r7, lsl #1]\n\t" REST_TABLE_ASM
                     "37:\n\t" PAIR_ASM "36:\n\t" PAIR_ASM "35:\n\t" PAIR_ASM "34:\n\t" PAIR_ASM
                     "33:\n\t" PAIR_ASM "32:\n\t" PAIR_ASM "31:\n\t" PAIR_ASM "30:\n\t"
                     "ldrd r7, r6, [sp]\n\t"
                     "ldmdb r7, {r4, r5, r8, r11}\n\t"
                     "ldr r9, [r4, r6, lsl #2]\n\t"
                     "ldr r10, [r5, r6, lsl #2]\n\t"
                     "lsl r9, r9, #1\n\t"   /* m2 */
                     "mvn r10, r10\n\t"     /* e - 1 */
                     "lsr r10, r8, r10\n\t" /* scale */
                     MCUGEN_REQUANT_FAST4_ASM("c0", "c1", "c2", "c3")
                     "ldm r7, {r4, r5, r7, r8, r9, r10, r12}\n\t"
                     "strb %[a0], [r4, r6]\n\t"
                     "strb %[a1], [r5, r6]\n\t"
                     "strb %[a2], [r8, r6]\n\t"
                     "strb %[a3], [r9, r6]\n\t"
                     "adds r6, r6, #1\n\t"
                     "str r6, [sp, #4]\n\t"
                     "bne.w 7b\n\t"
                     "add sp, sp, #16\n\t"
                     : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),
                       [w] "=&r"(w), [w1] "=&r"(w1), [even] "=&r"(even), [wp] "+&r"(wp),
                       [cp] "=&r"(cp), [n] "+&r"(n), [c0] "=&r"(c0), [c1] "=&r"(c1),
                       [c2] "=&r"(c2), [c3] "=&r"(c3)
                     : [o_o] "i"(offsetof(conv_job, o)),
                       [o_iter] "i"(offsetof(conv_job, iterations)),
                       [o_out] "i"(offsetof(conv_job, out0))
                     : "cc", "memory");
}
#endif

/* Where a block's outputs go and how they are clamped. */
typedef struct {
    int8_t *out[PIXELS]; /* pixel j's output channels */
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    uint32_t min4, max4; /* act_min / act_max (within int8) in each byte */
} block_outputs;

/*
 * Requantizes and stores channel o of the block's pixels. Kept out of line: after the dot
 * product every register is free again, so this reloads its constants instead of the loop
 * spilling and restoring them around the hot loop.
 */
#if defined(MCUGEN_DSP)
static MCUGEN_NOINLINE void store_block(mcugen_acc4 a, const mcugen_quant_params *quant,
                                        const block_outputs *dst, int32_t o)
{
    const int32_t off = dst->output_offset;
    mcugen_requant_fast f;
    uint32_t v;
    if (mcugen_requant_fast_of(quant, o, &f)) { /* the case is chosen once for the four pixels */
        v = mcugen_pack4(mcugen_requant_fast_s8(a.l0, f, off),
                         mcugen_requant_fast_s8(a.l1, f, off),
                         mcugen_requant_fast_s8(a.l2, f, off),
                         mcugen_requant_fast_s8(a.l3, f, off));
    } else {
        const mcugen_requant r = mcugen_requant_channel(quant, o);
        v = mcugen_pack4(mcugen_requant_any_s8(a.l0, &r, off), mcugen_requant_any_s8(a.l1, &r, off),
                         mcugen_requant_any_s8(a.l2, &r, off),
                         mcugen_requant_any_s8(a.l3, &r, off));
    }
    v = mcugen_clamp4(v, dst->min4, dst->max4);
    dst->out[0][o] = (int8_t)v;
    dst->out[1][o] = (int8_t)(v >> 8);
    dst->out[2][o] = (int8_t)(v >> 16);
    dst->out[3][o] = (int8_t)(v >> 24);
}
#else
static MCUGEN_NOINLINE void store_block(mcugen_acc4 a, const mcugen_quant_params *quant,
                                        const block_outputs *dst, int32_t o)
{
    const mcugen_requant r = mcugen_requant_channel(quant, o);
    const int32_t off = dst->output_offset, lo = dst->act_min, hi = dst->act_max;
    dst->out[0][o] = (int8_t)mcugen_requant_apply(a.l0, &r, off, lo, hi);
    dst->out[1][o] = (int8_t)mcugen_requant_apply(a.l1, &r, off, lo, hi);
    dst->out[2][o] = (int8_t)mcugen_requant_apply(a.l2, &r, off, lo, hi);
    dst->out[3][o] = (int8_t)mcugen_requant_apply(a.l3, &r, off, lo, hi);
}
#endif

/*
 * How a layer's blocks run. On Cortex-M with DSP, channels_fast takes a layer when every channel
 * requantizes with mcugen_requant_fast_s8 and the int8 saturation is the whole clamp, with
 * per-channel multipliers and a bias (the pointers it walks) and a word-aligned filter; it runs
 * over the padded rows. Otherwise conv_block's C loop runs.
 */
typedef struct {
    const mcugen_quant_params *quant;
    const int8_t *filter;
    const int32_t *bias;
    int32_t depth;
    int32_t row; /* row_of(depth): the filter's row stride */
    int32_t out_ch;
#if defined(MCUGEN_DSP)
    int fast;
#endif
} conv_layer;

static conv_layer layer_of(const mcugen_conv_params *p, const mcugen_quant_params *quant,
                           const int8_t *filter, const int32_t *bias, int32_t depth, int32_t out_ch)
{
    conv_layer l;
    l.quant = quant;
    l.filter = filter;
    l.bias = bias;
    l.depth = depth;
    l.row = row_of(depth);
    l.out_ch = out_ch;
#if defined(MCUGEN_DSP)
    {
        mcugen_requant_fast f;
        int32_t o;
        l.fast = quant->count > 1 && bias != NULL &&
                 ((uintptr_t)filter & 3u) == 0 && p->act_min <= -128 && p->act_max >= 127;
        for (o = 0; l.fast && o < out_ch; o++) {
            l.fast = mcugen_requant_fast_of(quant, o, &f);
        }
    }
#else
    (void)p;
#endif
    return l;
}

/* All output channels of the block's pixels. */
static void conv_block(const int16_t *cols, const conv_layer *l, const block_outputs *dst)
{
    int32_t o;
#if defined(MCUGEN_DSP)
    if (l->fast) {
        const int32_t rest = l->row / 8 - 1; /* pairs after the first */
        conv_job job;
        job.multiplier = l->quant->multiplier + l->out_ch;
        job.shift = l->quant->shift + l->out_ch;
        job.top = UINT32_C(1) << 31;
        job.output_offset = dst->output_offset;
        job.out0 = dst->out[0] + l->out_ch;
        job.out1 = dst->out[1] + l->out_ch;
        job.out2 = dst->out[2] + l->out_ch;
        job.out3 = dst->out[3] + l->out_ch;
        job.bias = l->bias + l->out_ch;
        job.cols = cols;
        job.o = -l->out_ch;
        job.iterations = rest / PAIRS_UNROLL;
        job.rest = rest % PAIRS_UNROLL;
        job.entry = job.iterations ? PAIRS_UNROLL : job.rest;
        channels_fast(&job, l->filter);
        return;
    }
#endif
    for (o = 0; o < l->out_ch; o++) {
        const int32_t b = mcugen_bias(l->bias, o);
        mcugen_acc4 a = {b, b, b, b};
        store_block(dot_columns(a, cols, l->filter + o * l->row, l->depth), l->quant, dst, o);
    }
}

/* The top-left window corner of flat output pixel `pixel`, in input coordinates (batch, row,
 * column); row and column may lie in the padding (negative or past the end). */
static void pixel_origin(int32_t pixel, const mcugen_conv_params *p, const mcugen_dims *out_dims,
                         int32_t *batch, int32_t *y, int32_t *x)
{
    const int32_t row = pixel / out_dims->w;
    *batch = row / out_dims->h;
    *y = (row % out_dims->h) * p->stride_h - p->pad_h;
    *x = (pixel % out_dims->w) * p->stride_w - p->pad_w;
}

int32_t mcugen_conv2d_s8_scratch_size(const mcugen_dims *filter_dims)
{
    const int32_t depth = filter_dims->h * filter_dims->w * filter_dims->c;
    return columns_bytes(depth) + (depth + 3) / 4 * 4;
}

int32_t mcugen_conv2d_1x1_s8_scratch_size(const mcugen_dims *filter_dims)
{
    return columns_bytes(filter_dims->c);
}

/*
 * Pixel j's window (of flat output pixel `pixel`), widened into the column buffer. When a filter
 * row (kw*in_ch values) is whole groups of four, each row is its own part of the column: rows in
 * the padding are set to 0 (the widened zero point); the rows inside the input are widened
 * straight from it when they have all their taps (undilated along W, or one tap wide), else each
 * is gathered into col first (one row, filled with the zero point once). Otherwise the window is gathered into col as kh*kw*in_ch int8
 * values in filter order, taps in the padding getting the input zero point (-input_offset, which
 * widens to 0), and widened from there in whole groups (col's tail past depth holds zero points,
 * see mcugen_conv2d_s8).
 */
static void gather_column(int16_t *cols, int32_t j, int8_t *col, int32_t pixel,
                          const mcugen_conv_params *p, const mcugen_dims *in_dims,
                          const int8_t *input, const mcugen_dims *f_dims,
                          const mcugen_dims *out_dims)
{
    const int32_t ch = in_dims->c;
    const int32_t row_len = f_dims->w * ch;
    const int32_t depth = f_dims->h * row_len;
    const int8_t pad = (int8_t)(-p->input_offset);
    int32_t b, y0, x0, kx0, kx1, ky, run;
    pixel_origin(pixel, p, out_dims, &b, &y0, &x0);
    mcugen_window(x0, p->dilation_w, f_dims->w, in_dims->w, &kx0, &kx1);
    run = p->dilation_w == 1 ? kx1 - kx0 : 1; /* taps per copy: all of them when undilated */
    if (row_len % 4 == 0) {
        const int32_t groups = row_len / 4;
        const int32_t step = p->dilation_h * in_dims->w * ch;
        int32_t ky1, src;
        mcugen_window(y0, p->dilation_h, f_dims->h, in_dims->h, &ky, &ky1);
        zero_groups(cols, j, ky * groups);
        zero_groups(cols + ky1 * row_len * PIXELS, j, (f_dims->h - ky1) * groups);
        src = ((b * in_dims->h + y0 + ky * p->dilation_h) * in_dims->w + x0) * ch;
        cols += ky * row_len * PIXELS;
        if (run == f_dims->w) {
            widen_rows(cols, j, input, src, step, ky1 - ky, groups, p->input_offset);
            return;
        }
        fill_run(col, pad, row_len); /* every row of the window is cut the same way */
        for (; ky < ky1; ky++, src += step, cols += row_len * PIXELS) {
            int32_t kx;
            for (kx = kx0; kx < kx1; kx += run) { /* src may index the padding */
                copy_run(col + kx * ch, input + (src + kx * p->dilation_w * ch), run * ch);
            }
            widen_groups(cols, j, col, groups, p->input_offset);
        }
        return;
    }
    if (run == f_dims->w && y0 >= 0 && y0 + (f_dims->h - 1) * p->dilation_h < in_dims->h) {
        const int8_t *src = input + ((b * in_dims->h + y0) * in_dims->w + x0) * ch;
        const int32_t step = p->dilation_h * in_dims->w * ch;
        for (ky = 0; ky < f_dims->h; ky++, src += step) {
            copy_run(col + ky * row_len, src, row_len);
        }
    } else {
        fill_run(col, pad, depth); /* then the taps inside the input over it */
        for (ky = 0; ky < f_dims->h; ky++) {
            const int32_t y = y0 + ky * p->dilation_h;
            int32_t src, kx;
            if (y < 0 || y >= in_dims->h) {
                continue;
            }
            src = ((b * in_dims->h + y) * in_dims->w + x0) * ch; /* may index the padding */
            for (kx = kx0; kx < kx1; kx += run) {
                copy_run(col + ky * row_len + kx * ch, input + (src + kx * p->dilation_w * ch),
                         run * ch);
            }
        }
    }
    widen_groups(cols, j, col, groups_of(depth), p->input_offset);
}

/* The outputs of the block at `pix`; lanes past the last pixel repeat it (see mcugen_lane). */
static block_outputs outputs_of(const mcugen_conv_params *p, int8_t *output, int32_t pix,
                                int32_t pixels, int32_t out_ch)
{
    block_outputs dst;
    int32_t j;
    for (j = 0; j < PIXELS; j++) {
        dst.out[j] = output + mcugen_lane(pix, j, pixels) * out_ch;
    }
    dst.output_offset = p->output_offset;
    dst.act_min = p->act_min;
    dst.act_max = p->act_max;
    dst.min4 = mcugen_splat4(p->act_min);
    dst.max4 = mcugen_splat4(p->act_max);
    return dst;
}

void mcugen_conv2d_s8(void *scratch, const mcugen_conv_params *params,
                      const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                      const int8_t *input, const mcugen_dims *filter_dims, const int8_t *filter,
                      const int32_t *bias, const mcugen_dims *output_dims, int8_t *output)
{
    const int32_t depth = filter_dims->h * filter_dims->w * filter_dims->c;
    const int32_t out_ch = output_dims->c;
    const int32_t pixels = output_dims->n * output_dims->h * output_dims->w;
    int16_t *cols = (int16_t *)scratch;
    int8_t *col = (int8_t *)scratch + columns_bytes(depth);
    const conv_layer layer = layer_of(params, quant, filter, bias, depth, out_ch);
    int32_t pix, j;
    fill_run(col + depth, (int8_t)(-params->input_offset), groups_of(depth) * 4 - depth);
    for (pix = 0; pix < pixels; pix += PIXELS) {
        block_outputs dst;
        for (j = 0; j < PIXELS; j++) {
            gather_column(cols, j, col, mcugen_lane(pix, j, pixels), params, input_dims, input,
                          filter_dims, output_dims);
        }
        dst = outputs_of(params, output, pix, pixels, out_ch);
        conv_block(cols, &layer, &dst);
    }
}

void mcugen_conv2d_1x1_s8(void *scratch, const mcugen_conv_params *params,
                          const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                          const int8_t *input, const mcugen_dims *filter_dims,
                          const int8_t *filter, const int32_t *bias,
                          const mcugen_dims *output_dims, int8_t *output)
{
    const int32_t in_ch = filter_dims->c;
    const int32_t out_ch = output_dims->c;
    const int32_t pixels = output_dims->n * output_dims->h * output_dims->w;
    int16_t *cols = (int16_t *)scratch;
    const conv_layer layer = layer_of(params, quant, filter, bias, in_ch, out_ch);
    int32_t pix, j;
    for (pix = 0; pix < pixels; pix += PIXELS) {
        block_outputs dst;
        for (j = 0; j < PIXELS; j++) {
            int32_t b, y, x;
            pixel_origin(mcugen_lane(pix, j, pixels), params, output_dims, &b, &y, &x);
            widen_column(cols, j, input + ((b * input_dims->h + y) * input_dims->w + x) * in_ch,
                         in_ch, params->input_offset);
        }
        dst = outputs_of(params, output, pix, pixels, out_ch);
        conv_block(cols, &layer, &dst);
    }
}
