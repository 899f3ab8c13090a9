/* ADD, MUL, QUANTIZE (requantize), SOFTMAX and LOGISTIC on hand-computed numbers. */
#include "check.h"
#include "mcugen_kernels.h"

/* Identity rescaling everywhere (0.5 * 2^1), so ADD is (a + o1) + (b + o2) + out_offset. */
static const mcugen_add_params add_params = {0, 0, 1 << 30, 1, 1, 1 << 30, 1, -1, 1 << 30, 1,
                                             -128, 127};

static void test_add(void)
{
    const int8_t a[3] = {1, 100, -100}, b[3] = {2, 100, -100}, scalar[1] = {2};
    const int8_t want[3] = {3, 127, -128}, want_broadcast[3] = {3, 102, -98};
    int8_t out[3];
    mcugen_add_s8(&add_params, a, b, 3, 3, out);
    CHECK_ARRAY(out, want, 3);
    mcugen_add_s8(&add_params, a, scalar, 3, 1, out);
    CHECK_ARRAY(out, want_broadcast, 3);
}

static void test_mul(void)
{
    const int8_t a[3] = {2, -3, 100}, b[3] = {4, 5, 100};
    const mcugen_mul_params p = {0, 0, 0, 1 << 30, 1, -128, 127};
    const int8_t want[3] = {8, -15, 127};
    int8_t out[3];
    mcugen_mul_s8(&p, a, b, 3, 3, out);
    CHECK_ARRAY(out, want, 3);
}

static void test_requantize_in_place(void)
{
    int8_t x[3] = {0, 10, -10};
    const mcugen_requantize_params p = {0, 5, 1 << 30, 0, -128, 127}; /* x * 0.5 + 5 */
    const int8_t want[3] = {5, 10, 0};
    mcugen_requantize_s8(&p, 3, x, x);
    CHECK_ARRAY(x, want, 3);
}

static void test_softmax(void)
{
    /* input scale 1, beta 1: TFLite's input_multiplier 2^30, left shift 27, diff_min -15 */
    const mcugen_softmax_params p = {1 << 30, 27, -15};
    const int8_t equal[4] = {7, 7, 7, 7}, dominant[2] = {100, 0};
    const int8_t want_equal[4] = {-64, -64, -64, -64}; /* 1/4 * 256 - 128 */
    const int8_t want_dominant[2] = {127, -128};       /* 1 saturates; e^-100 is below diff_min */
    int8_t out[4];
    mcugen_softmax_s8(&p, 1, 4, equal, out);
    CHECK_ARRAY(out, want_equal, 4);
    mcugen_softmax_s8(&p, 1, 2, dominant, out);
    CHECK_ARRAY(out, want_dominant, 2);
}

static void test_logistic(void)
{
    /* input scale 0.1, zero point 3 (TFLite: multiplier 1717986918, left shift 24, radius 120) */
    const mcugen_logistic_params p = {-3, 120, 1717986918, 24};
    const int8_t x[3] = {3, 127, -128};
    const int8_t want[3] = {0, 127, -128}; /* 0.5, ~1, ~0 in steps of 1/256 from -128 */
    int8_t out[3];
    mcugen_logistic_s8(&p, 3, x, out);
    CHECK_ARRAY(out, want, 3);
}

int main(void)
{
    test_add();
    test_mul();
    test_requantize_in_place();
    test_softmax();
    test_logistic();
    return 0;
}
