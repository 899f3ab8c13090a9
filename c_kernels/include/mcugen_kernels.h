/*
 * mcugen int8 kernels: the C API the code generator calls.
 *
 * Every kernel computes exactly (bit for bit) what the numpy reference in
 * mcugen/reference/kernels.py computes, which in turn is what TensorFlow Lite (Micro)'s reference
 * kernels compute. Conventions:
 *
 * - Activations are NHWC int8, described by an mcugen_dims {n, h, w, c}. Conv filters are OHWI
 *   (filter_dims = {out_ch, kh, kw, in_ch}), depthwise filters 1HWC (filter_dims =
 *   {1, kh, kw, out_ch}), fully-connected weights [units, in] (see mcugen_fully_connected_s8).
 * - Parameter structs mirror the dataclasses of mcugen/quant/params.py field by field, with the
 *   same meaning: *_offset values are added to raw values (input_offset = -input_zero_point,
 *   output_offset = +output_zero_point), multipliers are Q31, shifts are exponents with
 *   positive = left shift, act_min/act_max clamp the output in its integer domain.
 * - MBQM(x, m, s) below is mcugen_multiply_by_quantized_multiplier (mcugen_fixedpoint.h),
 *   TFLite's MultiplyByQuantizedMultiplier with double rounding; clamp(v, lo, hi) bounds v.
 * - Bias is int32 [out_ch] and may be NULL (no bias). Accumulators are int32 and, as in TFLite,
 *   must not overflow.
 * - Kernels that need scratch memory take it as the first argument, with a companion
 *   *_scratch_size() giving its size in bytes; scratch must be 4-byte aligned. No kernel keeps
 *   state between calls, allocates memory or uses libc beyond memcpy/memset.
 * - Kernels for which "in place" is noted allow output == input (same pointer); otherwise
 *   input and output must not overlap.
 */
#ifndef MCUGEN_KERNELS_H
#define MCUGEN_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Shape of an NHWC tensor (or a filter, see above). Unused dimensions are 1. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} mcugen_dims;

/* Requantization multipliers: one entry per output channel (count = channels) or one entry for
 * the whole tensor (count = 1). ConvParams/FullyConnectedParams .multiplier and .shift. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t count;
} mcugen_quant_params;

/* ConvParams without the multiplier arrays (those go in mcugen_quant_params). */
typedef struct {
    int32_t stride_h;
    int32_t stride_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t pad_h; /* top padding */
    int32_t pad_w; /* left padding */
    int32_t depth_multiplier; /* depthwise only; 1 for conv2d */
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} mcugen_conv_params;

/* FullyConnectedParams without the multiplier arrays. */
typedef struct {
    int32_t input_offset;
    int32_t filter_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} mcugen_fully_connected_params;

/* PoolParams. */
typedef struct {
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;
    int32_t pad_w;
    int32_t act_min;
    int32_t act_max;
} mcugen_pool_params;

/* AddParams. */
typedef struct {
    int32_t left_shift;
    int32_t input1_offset;
    int32_t input1_multiplier;
    int32_t input1_shift;
    int32_t input2_offset;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
} mcugen_add_params;

/* MulParams. */
typedef struct {
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
} mcugen_mul_params;

/* RequantizeParams. */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} mcugen_requantize_params;

/* SoftmaxParams. */
typedef struct {
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} mcugen_softmax_params;

/* LogisticParams. */
typedef struct {
    int32_t input_offset;
    int32_t input_range_radius;
    int32_t input_multiplier;
    int32_t input_left_shift;
} mcugen_logistic_params;

/* MeanParams. */
typedef struct {
    int32_t count;
    int32_t input_offset;
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
} mcugen_mean_params;

/* PadParams: paddings of a 4-D NHWC tensor before and after each dimension, and the value. */
typedef struct {
    int32_t before[4];
    int32_t after[4];
    int32_t pad_value;
} mcugen_pad_params;

/* ---- convolution ------------------------------------------------------------------------- */

/*
 * CONV_2D, general form: any filter size, stride, dilation and padding.
 * out[b,y,x,o] = clamp(MBQM(bias[o] + sum_{ky,kx,i inside the input}
 *                      filter[o,ky,kx,i] * (in[b, y*sh - pad_h + ky*dh, x*sw - pad_w + kx*dw, i]
 *                                           + input_offset), multiplier[o], shift[o])
 *                      + output_offset, act_min, act_max)
 * Reads every field of params except depth_multiplier; quant per channel or per tensor.
 * The filter is stored by rows: output channel o's kh*kw*in_ch values (filter_dims order) at
 * filter + o * row, row = that depth rounded up to a multiple of 8, zero past the depth (so that
 * the Cortex-M loop runs on whole pairs of words for any depth; mcugen.codegen.layers.conv_filter
 * lays out a TFLite filter so). The same for mcugen_conv2d_1x1_s8.
 * No groups: filter in_ch == input c. input_offset must be minus an int8 zero point (the padding
 * is filled with that zero point). Scratch holds the windows of four output pixels widened to
 * int16 and one int8 window: mcugen_conv2d_s8_scratch_size() bytes. Output pixels are written
 * in order, each block of four after its inputs were read: output may overlap the input where
 * every input byte is read before an output write reaches it (the memory planner checks this).
 */
int32_t mcugen_conv2d_s8_scratch_size(const mcugen_dims *filter_dims);
void mcugen_conv2d_s8(void *scratch, const mcugen_conv_params *params,
                      const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                      const int8_t *input, const mcugen_dims *filter_dims, const int8_t *filter,
                      const int32_t *bias, const mcugen_dims *output_dims, int8_t *output);

/*
 * CONV_2D fast path for a 1x1 filter with no padding (pad_h = pad_w = 0), any stride: each
 * block of four input pixels is widened straight into the scratch (no window gathering), of
 * mcugen_conv2d_1x1_s8_scratch_size() bytes. Same result as mcugen_conv2d_s8 on such a layer.
 * Reads stride_h, stride_w, input_offset, output_offset, act_min, act_max. In place when
 * stride is 1 and in_ch >= out_ch (a block's pixels are read before they are written).
 */
int32_t mcugen_conv2d_1x1_s8_scratch_size(const mcugen_dims *filter_dims);
void mcugen_conv2d_1x1_s8(void *scratch, const mcugen_conv_params *params,
                          const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                          const int8_t *input, const mcugen_dims *filter_dims,
                          const int8_t *filter, const int32_t *bias,
                          const mcugen_dims *output_dims, int8_t *output);

/*
 * DEPTHWISE_CONV_2D, any depth_multiplier >= 1: output channel o reads input channel
 * o / depth_multiplier, with filter[0,ky,kx,o]; otherwise as mcugen_conv2d_s8. Reads every field
 * of params. No scratch. Channels are processed four at a time, every output pixel of a group
 * before the next group; pixels in order, each written after its window was read.
 */
void mcugen_depthwise_conv2d_s8(const mcugen_conv_params *params,
                                const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                                const int8_t *input, const mcugen_dims *filter_dims,
                                const int8_t *filter, const int32_t *bias,
                                const mcugen_dims *output_dims, int8_t *output);

/*
 * DEPTHWISE_CONV_2D for depth_multiplier 1, 2 or a multiple of 4, at least 4 output channels and
 * at most 49 (7x7) filter taps (chosen at generation time), any dilation: four output channels
 * per lane group, with SIMD taps on Cortex-M; when the channel count is not a multiple of 4, the
 * last group overlaps the previous one and stores only its new channels. Same result as
 * mcugen_depthwise_conv2d_s8 on such a layer. No scratch. Groups run one after the other over all
 * pixels, each pixel written after its window was read.
 */
void mcugen_depthwise_conv2d_c4_s8(const mcugen_conv_params *params,
                                   const mcugen_quant_params *quant,
                                   const mcugen_dims *input_dims, const int8_t *input,
                                   const mcugen_dims *filter_dims, const int8_t *filter,
                                   const int32_t *bias, const mcugen_dims *output_dims,
                                   int8_t *output);

/*
 * The same for 3x3 filters, dilation 1, depth_multiplier 1, at least 4 channels and
 * (out_w - 1) * stride_w + 3 <= 24 (the input rows of one output row fit its strip on the
 * stack): on Cortex-M with DSP, nine unchecked taps per pixel over a strip of input rows padded
 * with the zero point; elsewhere mcugen_depthwise_conv2d_c4_s8's code.
 */
void mcugen_depthwise_conv2d_3x3_s8(const mcugen_conv_params *params,
                                    const mcugen_quant_params *quant,
                                    const mcugen_dims *input_dims, const int8_t *input,
                                    const mcugen_dims *filter_dims, const int8_t *filter,
                                    const int32_t *bias, const mcugen_dims *output_dims,
                                    int8_t *output);

/*
 * FULLY_CONNECTED: input_dims = {batches, 1, 1, in}, filter_dims = {units, 1, 1, in},
 * output_dims = {batches, 1, 1, units}.
 * out[b,u] = clamp(MBQM(bias[u] + sum_i (filter[u,i] + filter_offset) * (in[b,i] + input_offset),
 *                       multiplier[u or 0], shift[u or 0]) + output_offset, act_min, act_max)
 * Reads every field of params; quant per unit or per tensor. No scratch.
 */
void mcugen_fully_connected_s8(const mcugen_fully_connected_params *params,
                               const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                               const int8_t *input, const mcugen_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias,
                               const mcugen_dims *output_dims, int8_t *output);

/* ---- pooling and reductions -------------------------------------------------------------- */

/*
 * AVERAGE_POOL_2D: the mean of the window's elements that lie inside the input, rounded half
 * away from zero ((sum +- count/2) / count), clamped to act_min..act_max. Reads every field.
 * Every window must overlap the input (always true of TFLite's SAME/VALID padding).
 */
void mcugen_avg_pool2d_s8(const mcugen_pool_params *params, const mcugen_dims *input_dims,
                          const int8_t *input, const mcugen_dims *output_dims, int8_t *output);

/* MAX_POOL_2D: the max of the window's elements inside the input (-128 if none), clamped. */
void mcugen_max_pool2d_s8(const mcugen_pool_params *params, const mcugen_dims *input_dims,
                          const int8_t *input, const mcugen_dims *output_dims, int8_t *output);

/*
 * MEAN over H and W (output {n, 1, 1, c}; count = h * w):
 * out[b,c] = clamp(MBQM(sum_{y,x} in[b,y,x,c] + input_offset * count, multiplier, shift)
 *                  + output_offset, -128, 127),
 * 1/count being folded into multiplier/shift by the lowering. Reads every field.
 */
void mcugen_mean_hw_s8(const mcugen_mean_params *params, const mcugen_dims *input_dims,
                       const int8_t *input, int8_t *output);

/* ---- elementwise ------------------------------------------------------------------------- */

/*
 * ADD: out[i] = clamp(MBQM(MBQM((in1[i] + input1_offset) << left_shift, input1_multiplier,
 *                               input1_shift)
 *                          + MBQM((in2[j] + input2_offset) << left_shift, input2_multiplier,
 *                                 input2_shift), output_multiplier, output_shift)
 *                     + output_offset, act_min, act_max)
 * for i < size, with j = i mod size2: input2 has size2 elements (size2 divides size) and is
 * repeated, which covers same shape (size2 = size), a scalar (1) and a per-channel vector
 * broadcast over NHW (c). To broadcast input1 instead, swap the inputs and their params.
 * In place: output may be input1 (and input2 when size2 = size).
 */
void mcugen_add_s8(const mcugen_add_params *params, const int8_t *input1, const int8_t *input2,
                   int32_t size, int32_t size2, int8_t *output);

/*
 * MUL: out[i] = clamp(MBQM((in1[i] + input1_offset) * (in2[j] + input2_offset),
 *                          output_multiplier, output_shift) + output_offset, act_min, act_max)
 * with the broadcast of input2 and the in-place rule of mcugen_add_s8.
 */
void mcugen_mul_s8(const mcugen_mul_params *params, const int8_t *input1, const int8_t *input2,
                   int32_t size, int32_t size2, int8_t *output);

/*
 * QUANTIZE int8 -> int8 (requantize):
 * out[i] = clamp(MBQM(in[i] + input_offset, multiplier, shift) + output_offset, act_min, act_max)
 * In place.
 */
void mcugen_requantize_s8(const mcugen_requantize_params *params, int32_t size,
                          const int8_t *input, int8_t *output);

/*
 * SOFTMAX over the last dimension of a [rows, depth] tensor, TFLite's fixed-point algorithm:
 * output scale 1/256, zero point -128. Reads every field (TFLite SoftmaxParams: beta and the
 * input scale folded into input_multiplier/input_left_shift; diff_min from the input radius).
 * In place.
 */
void mcugen_softmax_s8(const mcugen_softmax_params *params, int32_t rows, int32_t depth,
                       const int8_t *input, int8_t *output);

/*
 * LOGISTIC, TFLite's fixed-point algorithm: output scale 1/256, zero point -128; inputs beyond
 * +-input_range_radius (after the offset) saturate to 127 / -128. In place.
 */
void mcugen_logistic_s8(const mcugen_logistic_params *params, int32_t size,
                        const int8_t *input, int8_t *output);

/* ---- fused blocks ------------------------------------------------------------------------ */

/* The signature of mcugen_conv2d_s8 and mcugen_conv2d_1x1_s8. */
typedef void (*mcugen_conv_fn)(void *scratch, const mcugen_conv_params *params,
                               const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                               const int8_t *input, const mcugen_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias,
                               const mcugen_dims *output_dims, int8_t *output);

/* One CONV_2D of a block: its kernel and the constant arguments that kernel takes. */
typedef struct {
    mcugen_conv_fn kernel;
    const mcugen_conv_params *params;
    const mcugen_quant_params *quant;
    const mcugen_dims *filter_dims;
    const int8_t *filter;
    const int32_t *bias;
} mcugen_conv_layer;

/*
 * A residual block, output = ADD(conv2(conv1(x)), x), computed row by row so that the two conv
 * outputs never exist whole: conv1's rows go into a window of a few rows, conv2 computes one
 * output row from that window, and the ADD writes that row. Bit for bit what the three kernels
 * compute one after the other. dims = x's dims = the output's, with n = 1. Both convs have
 * stride 1, dilation 1 and output height and width equal to their input's (pad_h rows of
 * padding above, filter h - 1 - pad_h below); conv2's output channels are dims->c. add: input1
 * is conv2's output, input2 is x, same size. Scratch: the window, one row of conv2's output and
 * then conv_scratch bytes that both conv kernels use (the larger of their own scratch sizes), in
 * all mcugen_residual_block_s8_scratch_size() bytes. In place: output may be x (output row r is
 * written after every read of x's row r).
 */
int32_t mcugen_residual_block_s8_scratch_size(const mcugen_dims *dims,
                                              const mcugen_conv_layer *conv1,
                                              const mcugen_conv_layer *conv2, int32_t conv_scratch);
void mcugen_residual_block_s8(void *scratch, const mcugen_conv_layer *conv1,
                              const mcugen_conv_layer *conv2, const mcugen_add_params *add,
                              const mcugen_dims *dims, const int8_t *x, int8_t *output);

/* ---- data movement ----------------------------------------------------------------------- */

/*
 * PAD / PADV2 of a 4-D NHWC tensor: output dims are input dims + before + after; padded
 * elements are params->pad_value (the output zero point for PAD).
 */
void mcugen_pad_s8(const mcugen_pad_params *params, const mcugen_dims *input_dims,
                   const int8_t *input, int8_t *output);

/*
 * CONCATENATION of num_inputs tensors (all with the output's quantization): viewing each input
 * as [outer, copy_size[k]] and the output as [outer, sum_k copy_size[k]], row r of the output is
 * the inputs' row r, one after the other. For axis a: outer = product of dims before a,
 * copy_size[k] = (dim a of input k) * (product of dims after a).
 */
void mcugen_concatenation_s8(int32_t num_inputs, const int8_t *const *inputs,
                             const int32_t *copy_size, int32_t outer, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* MCUGEN_KERNELS_H */
