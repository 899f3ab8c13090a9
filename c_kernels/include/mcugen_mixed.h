/*
 * mcugen mixed-precision kernels: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D,
 * MAX_POOL_2D and ADD with independent input, weight and output widths of 2, 4 or 8 bits (the
 * CMix-NN space), on packed tensors (mcugen_packing.h).
 *
 * Each op's source is written once, as a body in c_kernels/src/mixed_<op>.h, and compiled once
 * per variant: a wrapper defines the widths and includes the body, which defines one function
 * named after them and #undefs them again, so that one file may instantiate several variants:
 *
 *     #define MCUGEN_IN_SIGNED 1   (activation input: 1 signed, 0 unsigned, e.g. after a ReLU)
 *     #define MCUGEN_IN_BITS 4
 *     #define MCUGEN_W_BITS 2      (weighted ops; weights are always signed)
 *     #define MCUGEN_OUT_BITS 8
 *     #include "mixed_conv2d.h"    (defines mcugen_conv2d_i4w2o8)
 *
 * ADD has a second input, MCUGEN_IN2_SIGNED / MCUGEN_IN2_BITS. Names spell each activation input
 * as i<bits> (signed) or u<bits> (unsigned), then w<bits> and o<bits>: mcugen_conv2d_u4w2o2,
 * mcugen_max_pool2d_i8o4, mcugen_add_i4u2o8. The code generator (mcugen/codegen/mixed.py and
 * templates/model/mixed_variants.c.j2) writes one such wrapper per op, instantiating exactly the
 * variants the model calls, and copies only those ops' bodies; this header declares them all.
 *
 * Arithmetic: the int8 kernels' (mcugen_kernels.h), with the same parameter structs, on the
 * unpacked values: accumulate (x + input_offset) * w in int32, requantize with
 * mcugen_multiply_by_quantized_multiplier, add the output offset, clamp to act_min..act_max
 * (which lie in the output's range: the clamp to the narrow type is the lowering's). The numpy
 * reference (mcugen/reference/kernels.py) is the specification, bit for bit.
 *
 * Differences from the int8 API:
 * - Activation, weight and output pointers are packed bytes (uint8_t). An output element's
 *   store keeps the other bits of its byte, so bits past a tensor's last element are untouched.
 * - CONV_2D and FULLY_CONNECTED unpack their input (plus input_offset) into int16 scratch: two
 *   columns (output pixels or batch rows) of filter h * w * input c values, or one when the
 *   output has a single pixel; mcugen_mixed_scratch_size() gives the bytes (2-byte aligned).
 * - DEPTHWISE_CONV_2D weights are tap-major, [kh * kw][out_ch] (TFLite's 1HWC order, packed), so
 *   that the weights of four adjacent channels at one tap are adjacent, as their input lanes are.
 *   Its scratch holds the int16 weights of four channels at every tap
 *   (mcugen_mixed_depthwise_scratch_size()); the input is read packed, not unpacked.
 * - ADD is in place only with equal input1 and output widths.
 */
#ifndef MCUGEN_MIXED_H
#define MCUGEN_MIXED_H

#include <stdint.h>

#include "mcugen_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Scratch bytes of a mixed CONV_2D or FULLY_CONNECTED call (FC: input_dims
 * {batches, 1, 1, in}, filter_dims {units, 1, 1, in}, output_dims {batches, 1, 1, units}). */
static inline int32_t mcugen_mixed_scratch_size(const mcugen_dims *input_dims,
                                                const mcugen_dims *filter_dims,
                                                const mcugen_dims *output_dims)
{
    const int32_t columns = output_dims->n * output_dims->h * output_dims->w > 1 ? 2 : 1;
    return columns * filter_dims->h * filter_dims->w * input_dims->c * (int32_t)sizeof(int16_t);
}

/* Scratch bytes of a mixed DEPTHWISE_CONV_2D call: four int16 weights per filter tap. */
static inline int32_t mcugen_mixed_depthwise_scratch_size(const mcugen_dims *filter_dims)
{
    return 4 * filter_dims->h * filter_dims->w * (int32_t)sizeof(int16_t);
}

/* ---- names ------------------------------------------------------------------------------ */

#define MCUGEN_CAT_(a, b) a##b
#define MCUGEN_CAT(a, b) MCUGEN_CAT_(a, b)
#define MCUGEN_ACT_LETTER_1 i
#define MCUGEN_ACT_LETTER_0 u
/* i4 for (1, 4), u2 for (0, 2): an activation input in a variant's name. */
#define MCUGEN_ACT(is_signed, bits) MCUGEN_CAT(MCUGEN_CAT(MCUGEN_ACT_LETTER_, is_signed), bits)

/* mcugen_<op>_<act>w<w>o<o>, mcugen_<op>_<act>o<o> and mcugen_add_<act><act>o<o>. */
#define MCUGEN_WEIGHTED_NAME(op, s, ib, wb, ob) \
    MCUGEN_CAT(MCUGEN_CAT(MCUGEN_CAT(mcugen_##op##_, MCUGEN_ACT(s, ib)), MCUGEN_CAT(w, wb)), \
               MCUGEN_CAT(o, ob))
#define MCUGEN_POOL_NAME(op, s, ib, ob) \
    MCUGEN_CAT(MCUGEN_CAT(mcugen_##op##_, MCUGEN_ACT(s, ib)), MCUGEN_CAT(o, ob))
#define MCUGEN_ADD_NAME(s1, ib1, s2, ib2, ob) \
    MCUGEN_CAT(MCUGEN_CAT(MCUGEN_CAT(mcugen_add_, MCUGEN_ACT(s1, ib1)), MCUGEN_ACT(s2, ib2)), \
               MCUGEN_CAT(o, ob))

/* ---- signatures (each written once, for the declarations below and the bodies) ---------- */

/*
 * CONV_2D (any filter, stride, dilation, padding) and DEPTHWISE_CONV_2D (any depth multiplier):
 * what mcugen_conv2d_s8 / mcugen_depthwise_conv2d_s8 compute, weights as above.
 */
#define MCUGEN_SIGNATURE_conv2d(name)                                                          \
    void name(void *scratch, const mcugen_conv_params *params, const mcugen_quant_params *quant, \
              const mcugen_dims *input_dims, const uint8_t *input, const mcugen_dims *filter_dims, \
              const uint8_t *filter, const int32_t *bias, const mcugen_dims *output_dims,         \
              uint8_t *output)
#define MCUGEN_SIGNATURE_depthwise_conv2d(name) MCUGEN_SIGNATURE_conv2d(name)

/* FULLY_CONNECTED: what mcugen_fully_connected_s8 computes (filter_offset included). */
#define MCUGEN_SIGNATURE_fully_connected(name)                                                 \
    void name(void *scratch, const mcugen_fully_connected_params *params,                      \
              const mcugen_quant_params *quant, const mcugen_dims *input_dims,                  \
              const uint8_t *input, const mcugen_dims *filter_dims, const uint8_t *filter,      \
              const int32_t *bias, const mcugen_dims *output_dims, uint8_t *output)

/* AVERAGE_POOL_2D / MAX_POOL_2D: what mcugen_avg_pool2d_s8 / mcugen_max_pool2d_s8 compute. */
#define MCUGEN_SIGNATURE_pool(name)                                                            \
    void name(const mcugen_pool_params *params, const mcugen_dims *input_dims,                 \
              const uint8_t *input, const mcugen_dims *output_dims, uint8_t *output)

/* ADD: what mcugen_add_s8 computes, input2 repeated every size2 elements. */
#define MCUGEN_SIGNATURE_add(name)                                                             \
    void name(const mcugen_add_params *params, const uint8_t *input1, const uint8_t *input2,  \
              int32_t size, int32_t size2, uint8_t *output)

/* ---- declarations of every variant -------------------------------------------------------- */

/* f(args..., is_signed, bits) for each activation type, f(args..., bits) for each width. */
#define MCUGEN_EACH_ACT_1(f, a) f(a, 1, 2) f(a, 1, 4) f(a, 1, 8) f(a, 0, 2) f(a, 0, 4) f(a, 0, 8)
#define MCUGEN_EACH_ACT_2(f, a, b) \
    f(a, b, 1, 2) f(a, b, 1, 4) f(a, b, 1, 8) f(a, b, 0, 2) f(a, b, 0, 4) f(a, b, 0, 8)
#define MCUGEN_EACH_WIDTH_3(f, a, b, c) f(a, b, c, 2) f(a, b, c, 4) f(a, b, c, 8)
#define MCUGEN_EACH_WIDTH_4(f, a, b, c, d) f(a, b, c, d, 2) f(a, b, c, d, 4) f(a, b, c, d, 8)

#define MCUGEN_DECLARE_WEIGHTED(op, s, i, w, o) MCUGEN_SIGNATURE_##op(MCUGEN_WEIGHTED_NAME(op, s, i, w, o));
#define MCUGEN_DECLARE_WEIGHTED_W(op, s, i, w) MCUGEN_EACH_WIDTH_4(MCUGEN_DECLARE_WEIGHTED, op, s, i, w)
#define MCUGEN_DECLARE_WEIGHTED_I(op, s, i) MCUGEN_EACH_WIDTH_3(MCUGEN_DECLARE_WEIGHTED_W, op, s, i)
#define MCUGEN_DECLARE_POOL(op, s, i, o) MCUGEN_SIGNATURE_pool(MCUGEN_POOL_NAME(op, s, i, o));
#define MCUGEN_DECLARE_POOL_I(op, s, i) MCUGEN_EACH_WIDTH_3(MCUGEN_DECLARE_POOL, op, s, i)
#define MCUGEN_DECLARE_ADD(s1, i1, s2, i2, o) MCUGEN_SIGNATURE_add(MCUGEN_ADD_NAME(s1, i1, s2, i2, o));
#define MCUGEN_DECLARE_ADD_2(s1, i1, s2, i2) MCUGEN_EACH_WIDTH_4(MCUGEN_DECLARE_ADD, s1, i1, s2, i2)
#define MCUGEN_DECLARE_ADD_1(unused, s1, i1) MCUGEN_EACH_ACT_2(MCUGEN_DECLARE_ADD_2, s1, i1)

MCUGEN_EACH_ACT_1(MCUGEN_DECLARE_WEIGHTED_I, conv2d)
MCUGEN_EACH_ACT_1(MCUGEN_DECLARE_WEIGHTED_I, depthwise_conv2d)
MCUGEN_EACH_ACT_1(MCUGEN_DECLARE_WEIGHTED_I, fully_connected)
MCUGEN_EACH_ACT_1(MCUGEN_DECLARE_POOL_I, avg_pool2d)
MCUGEN_EACH_ACT_1(MCUGEN_DECLARE_POOL_I, max_pool2d)
MCUGEN_EACH_ACT_1(MCUGEN_DECLARE_ADD_1, add)

#ifdef __cplusplus
}
#endif

#endif /* MCUGEN_MIXED_H */
