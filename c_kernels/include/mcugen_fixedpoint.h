/*
 * Fixed-point arithmetic shared by all kernels: the same operations, bit for bit, as
 * mcugen/quant/fixedpoint.py and TensorFlow Lite's (gemmlowp's) integer helpers.
 *
 * Signed right shifts are arithmetic on every compiler mcugen targets (GCC, Clang); left shifts
 * of possibly negative values go through uint32_t so that they wrap instead of being undefined.
 */
#ifndef MCUGEN_FIXEDPOINT_H
#define MCUGEN_FIXEDPOINT_H

#include <stdint.h>

/* round(a * b / 2^31), saturating the one overflow case (INT32_MIN * INT32_MIN). Rounds half
 * away from zero, as gemmlowp's SaturatingRoundingDoublingHighMul. */
static inline int32_t mcugen_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C division truncates toward zero, as gemmlowp requires. */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent rounded to nearest, ties away from zero; 0 <= exponent <= 31. */
static inline int32_t mcugen_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * 2^exponent: saturating for exponent > 0, rounding (as above) for exponent < 0.
 * gemmlowp's SaturatingRoundingMultiplyByPOT; -31 <= exponent <= 31. */
static inline int32_t mcugen_sat_rounding_mul_by_pot(int32_t x, int32_t exponent)
{
    if (exponent > 0) {
        const int32_t threshold = (int32_t)((UINT32_C(1) << (31 - exponent)) - 1u);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return (int32_t)((uint32_t)x << exponent);
    }
    return exponent < 0 ? mcugen_rounding_divide_by_pot(x, -exponent) : x;
}

/* x * real_multiplier, where real_multiplier = multiplier / 2^31 * 2^shift (shift > 0: left).
 * TFLite's MultiplyByQuantizedMultiplier with its default double rounding: shift left, SRDHM,
 * then rounding right shift. */
static inline int32_t mcugen_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                              int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return mcugen_rounding_divide_by_pot(
        mcugen_sat_rounding_doubling_high_mul((int32_t)((uint32_t)x << left), multiplier), right);
}

/* Number of leading zero bits of x (32 for x == 0); portable, used once per softmax row. */
static inline int32_t mcugen_count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & UINT32_C(0x80000000))) {
        x <<= 1;
        n++;
    }
    return n;
}

/* (a + b) / 2 rounded half away from zero, without overflow (gemmlowp RoundingHalfSum). */
static inline int32_t mcugen_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* exp(a) for a in [-1/4, 0), a and result in Q0.31 (gemmlowp
 * exp_on_interval_between_negative_one_quarter_and_0_excl: Taylor series around -1/8). */
static inline int32_t mcugen_exp_on_interval_neg_quarter_to_0(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = mcugen_sat_rounding_doubling_high_mul(x, x);
    const int32_t x3 = mcugen_sat_rounding_doubling_high_mul(x2, x);
    const int32_t x4 = mcugen_sat_rounding_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = mcugen_rounding_divide_by_pot(x4, 2);
    const int32_t poly = mcugen_rounding_divide_by_pot(
        mcugen_sat_rounding_doubling_high_mul(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth +
           mcugen_sat_rounding_doubling_high_mul(exp_minus_one_eighth, x + poly);
}

/* exp(a) for a <= 0 given with `integer_bits` (1..5) integer bits; result in Q0.31
 * (gemmlowp exp_on_negative_values: exp of a mod 1/4, times exp(-2^k) per set bit). */
static inline int32_t mcugen_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    /* exp(-2^k) in Q0.31 for k = -2 .. 4 */
    static const int32_t exp_neg_pot[7] = {1672461947, 1302514674, 790015084, 290630308,
                                           39332535,   720401,     242};
    const int32_t frac_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t a_mod_quarter_minus_quarter = (a & (one_quarter - 1)) - one_quarter;
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    int32_t result = mcugen_exp_on_interval_neg_quarter_to_0(
        mcugen_sat_rounding_mul_by_pot(a_mod_quarter_minus_quarter, integer_bits));
    int32_t k;
    for (k = -2; k < integer_bits; k++) {
        if (remainder & ((int32_t)1 << (frac_bits + k))) {
            result = mcugen_sat_rounding_doubling_high_mul(result, exp_neg_pot[k + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1), a and result in Q0.31 (gemmlowp
 * one_over_one_plus_x_for_x_in_0_1: three Newton-Raphson steps in Q2.29). */
static inline int32_t mcugen_one_over_one_plus_x(int32_t a)
{
    const int32_t half_denominator = mcugen_rounding_half_sum(a, INT32_MAX);
    const int32_t q2_one = 1 << 29;
    int32_t x = 1515870810 /* 48/17 */ +
                mcugen_sat_rounding_doubling_high_mul(half_denominator, -1010580540 /* -32/17 */);
    int i;
    for (i = 0; i < 3; i++) {
        const int32_t one_minus_hd_x =
            q2_one - mcugen_sat_rounding_doubling_high_mul(half_denominator, x);
        /* x * (1 - d x) is Q4.27: back to Q2.29 */
        x = x + mcugen_sat_rounding_mul_by_pot(
                    mcugen_sat_rounding_doubling_high_mul(x, one_minus_hd_x), 2);
    }
    /* x is 2 / (1 + a) in Q2.29, so 1 / (1 + a) read as Q1.30: shift it into Q0.31 */
    return mcugen_sat_rounding_mul_by_pot(x, 1);
}

#endif /* MCUGEN_FIXEDPOINT_H */
