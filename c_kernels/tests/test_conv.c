/* CONV_2D (general and 1x1), DEPTHWISE_CONV_2D and FULLY_CONNECTED on hand-computed numbers. */
#include "check.h"
#include "mcugen_kernels.h"

static const int32_t identity_multiplier[1] = {1 << 30}; /* 0.5 * 2^1 = 1 */
static const int32_t identity_shift[1] = {1};
static const mcugen_quant_params identity = {identity_multiplier, identity_shift, 1};

/* Two pixels of three channels, two filters (rows padded to 8), per-channel multipliers 0.5
 * and 1. */
static void test_pointwise(void)
{
    const int8_t input[6] = {1, 2, 3, -1, 0, 4};  /* minus zero point 1: {0,1,2}, {-2,-1,3} */
    const int8_t filter[16] = {1, 2, 3, 0, 0, 0, 0, 0, -1, 0, 2, 0, 0, 0, 0, 0};
    const int32_t bias[2] = {10, -5};
    const int32_t multiplier[2] = {1 << 30, 1 << 30}, shift[2] = {0, 1};
    const mcugen_quant_params quant = {multiplier, shift, 2};
    const mcugen_conv_params p = {1, 1, 1, 1, 0, 0, 1, -1, 3, -128, 127};
    const mcugen_dims in_dims = {1, 1, 2, 3}, f_dims = {2, 1, 1, 3}, out_dims = {1, 1, 2, 2};
    /* accumulators {18, -1, 15, 3}: 18 * 0.5 = 9, -1 * 1, 15 * 0.5 = 7.5 -> 8, 3 * 1; + 3 */
    const int8_t want[4] = {12, 2, 11, 6};
    int8_t out[4];
    int32_t scratch[(8 * 4 * 2 + 4) / 4]; /* four widened columns of a padded row, one window */
    CHECK_EQ(mcugen_conv2d_1x1_s8_scratch_size(&f_dims), 8 * 4 * 2);
    mcugen_conv2d_1x1_s8(scratch, &p, &quant, &in_dims, input, &f_dims, filter, bias, &out_dims,
                         out);
    CHECK_ARRAY(out, want, 4);
    CHECK_EQ(mcugen_conv2d_s8_scratch_size(&f_dims), (int32_t)sizeof scratch);
    mcugen_conv2d_s8(scratch, &p, &quant, &in_dims, input, &f_dims, filter, bias, &out_dims, out);
    CHECK_ARRAY(out, want, 4);
}

/* 3x3 SAME on a 3x3 image of zero point 2: padded taps add nothing; act_max clips the center. */
static void test_same_padding(void)
{
    const int8_t input[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const int8_t filter[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const mcugen_conv_params p = {1, 1, 1, 1, 1, 1, 1, -2, 0, -128, 25};
    const mcugen_dims in_dims = {1, 3, 3, 1}, f_dims = {1, 3, 3, 1}, out_dims = {1, 3, 3, 1};
    const int8_t want[9] = {4, 9, 8, 15, 25, 21, 16, 25, 20};
    int8_t out[9];
    int32_t scratch[(16 * 4 * 2 + 12) / 4];
    mcugen_conv2d_s8(scratch, &p, &identity, &in_dims, input, &f_dims, filter, 0, &out_dims, out);
    CHECK_ARRAY(out, want, 9);
}

/* 2x2 filter dilated by 2 over a 3x3 image (VALID): the four corners. */
static void test_dilation(void)
{
    const int8_t input[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const int8_t filter[8] = {1, 1, 1, 1};
    const int32_t bias[1] = {100};
    const mcugen_conv_params p = {1, 1, 2, 2, 0, 0, 1, -2, -7, -128, 127};
    const mcugen_dims in_dims = {1, 3, 3, 1}, f_dims = {1, 2, 2, 1}, out_dims = {1, 1, 1, 1};
    int8_t out[1];
    int32_t scratch[(8 * 4 * 2 + 4) / 4];
    mcugen_conv2d_s8(scratch, &p, &identity, &in_dims, input, &f_dims, filter, bias, &out_dims,
                     out);
    CHECK_EQ(out[0], 100 + (-1 + 1 + 5 + 7) - 7);
}

/* Depth multiplier 2: output channels 0, 1 read input channel 0; 2, 3 read channel 1. */
static void test_depthwise(void)
{
    const int8_t input[8] = {1, -1, 2, -2, 3, -3, 4, -4};
    const int8_t filter[16] = {1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2};
    const mcugen_conv_params p = {1, 1, 1, 1, 0, 0, 2, 0, 0, -128, 127};
    const mcugen_dims in_dims = {1, 2, 2, 2}, f_dims = {1, 2, 2, 4}, out_dims = {1, 1, 1, 4};
    const int8_t want[4] = {10, 1, -10, -8};
    int8_t out[4];
    mcugen_depthwise_conv2d_s8(&p, &identity, &in_dims, input, &f_dims, filter, 0, &out_dims, out);
    CHECK_ARRAY(out, want, 4);
}

/* Nonzero input and filter offsets: (x + 1) . (w - 1) + bias - 3. */
static void test_fully_connected(void)
{
    const int8_t input[3] = {1, 2, 3};
    const int8_t filter[6] = {1, 1, 1, 2, 0, -1};
    const int32_t bias[2] = {5, 7};
    const mcugen_fully_connected_params p = {1, -1, -3, -128, 127};
    const mcugen_dims in_dims = {1, 1, 1, 3}, f_dims = {2, 1, 1, 3}, out_dims = {1, 1, 1, 2};
    const int8_t want[2] = {2, -5};
    int8_t out[2];
    mcugen_fully_connected_s8(&p, &identity, &in_dims, input, &f_dims, filter, bias, &out_dims,
                              out);
    CHECK_ARRAY(out, want, 2);
}

int main(void)
{
    test_pointwise();
    test_same_padding();
    test_dilation();
    test_depthwise();
    test_fully_connected();
    return 0;
}
