/* AVERAGE_POOL_2D, MAX_POOL_2D and MEAN on hand-computed numbers. */
#include "check.h"
#include "mcugen_kernels.h"

/* 2x2 SAME, stride 1, on a 2x2 image: windows of 4, 2, 2 and 1 elements. */
static const mcugen_pool_params same_2x2 = {2, 2, 1, 1, 0, 0, -128, 127};
static const mcugen_dims image = {1, 2, 2, 1};

static void test_avg_pool(void)
{
    const int8_t input[4] = {-1, -2, 0, 1};
    /* -2/4 and -1/2 round away from zero to -1; 1/2 to 1 */
    const int8_t want[4] = {-1, -1, 1, 1};
    int8_t out[4];
    mcugen_avg_pool2d_s8(&same_2x2, &image, input, &image, out);
    CHECK_ARRAY(out, want, 4);
}

static void test_max_pool(void)
{
    const int8_t input[4] = {5, -2, 0, 1};
    mcugen_pool_params p = same_2x2;
    const int8_t want[4] = {4, 1, 1, 1};
    int8_t out[4];
    p.act_max = 4;
    mcugen_max_pool2d_s8(&p, &image, input, &image, out);
    CHECK_ARRAY(out, want, 4);
}

static void test_mean(void)
{
    const int8_t input[8] = {1, -1, 2, -1, 3, -1, 4, -2};
    /* 1/4 = 0.5 * 2^-1; sums 10 and -5: 2.5 -> 3 and -1.25 -> -1 (double rounding); + 1 */
    const mcugen_mean_params p = {4, 0, 1, 1 << 30, -1};
    const mcugen_dims in_dims = {1, 2, 2, 2};
    const int8_t want[2] = {4, 0};
    int8_t out[2];
    mcugen_mean_hw_s8(&p, &in_dims, input, out);
    CHECK_ARRAY(out, want, 2);
}

int main(void)
{
    test_avg_pool();
    test_max_pool();
    test_mean();
    return 0;
}
