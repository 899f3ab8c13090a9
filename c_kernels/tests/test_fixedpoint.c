/* The fixed-point helpers on hand-computed edge cases. */
#include "check.h"
#include "mcugen_fixedpoint.h"

int main(void)
{
    /* SRDHM: the one overflow case saturates; 2*a*b/2^32 = +-1.5 rounds up (gemmlowp's nudge) */
    CHECK_EQ(mcugen_sat_rounding_doubling_high_mul(INT32_MIN, INT32_MIN), INT32_MAX);
    CHECK_EQ(mcugen_sat_rounding_doubling_high_mul(INT32_MIN, INT32_MAX), -INT32_MAX);
    CHECK_EQ(mcugen_sat_rounding_doubling_high_mul(1 << 30, 3), 2);
    CHECK_EQ(mcugen_sat_rounding_doubling_high_mul(-(1 << 30), 3), -1);

    /* rounding divide by 2^e: ties away from zero, also for negative x */
    CHECK_EQ(mcugen_rounding_divide_by_pot(3, 1), 2);
    CHECK_EQ(mcugen_rounding_divide_by_pot(-3, 1), -2);
    CHECK_EQ(mcugen_rounding_divide_by_pot(-5, 2), -1);
    CHECK_EQ(mcugen_rounding_divide_by_pot(-6, 2), -2);
    CHECK_EQ(mcugen_rounding_divide_by_pot(INT32_MIN, 31), -1);
    CHECK_EQ(mcugen_rounding_divide_by_pot(12345, 0), 12345);

    /* double rounding: 5 * 0.25 = 1.25, but SRDHM gives round(2.5) = 3, then round(1.5) = 2 */
    CHECK_EQ(mcugen_multiply_by_quantized_multiplier(5, 1 << 30, -1), 2);
    CHECK_EQ(mcugen_multiply_by_quantized_multiplier(-5, 1 << 30, -1), -1);
    CHECK_EQ(mcugen_multiply_by_quantized_multiplier(10, 1 << 30, -1), 3);
    CHECK_EQ(mcugen_multiply_by_quantized_multiplier(7, 1 << 30, 1), 7); /* 0.5 * 2 = 1 */
    CHECK_EQ(mcugen_multiply_by_quantized_multiplier(-7, 1 << 30, 3), -28);

    /* exp(0) = 1 (saturated), exp(-1/4) and 1/(1 + 0) = 1, 1/(1 + 1/2) = 2/3, in Q0.31 */
    CHECK_EQ(mcugen_exp_on_negative_values(0, 5), INT32_MAX);
    CHECK_EQ(mcugen_exp_on_negative_values(-(1 << 24), 5), 1672462419); /* e^-0.25, Taylor */
    CHECK_EQ(mcugen_one_over_one_plus_x(0), INT32_MAX);
    CHECK_EQ(mcugen_rounding_divide_by_pot(mcugen_one_over_one_plus_x(1 << 30), 16), 21845);
    return 0;
}
