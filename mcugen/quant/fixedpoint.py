"""TFLite's fixed-point arithmetic, once, vectorised over numpy int64 arrays.

Every function here mirrors one C function of TFLite / gemmlowp bit for bit (the C kernels
implement the very same arithmetic). Values are int32 quantities held in int64 arrays; where
the C code relies on two's-complement int32 wrap-around, `wrap_int32` makes it explicit.
gemmlowp fixed-point numbers are passed as their raw int32 values, with the number of integer
bits given as an argument where the result depends on it.

Rounding conventions (all TFLite's own): `round_half_away` is std::round / TfLiteRound;
`rounding_divide_by_pot` rounds half away from zero; `saturating_rounding_doubling_high_mul`
rounds a*b / 2**31 to nearest with ties toward +infinity (gemmlowp's nudge then a truncating
division), so a negative tie rounds toward zero.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x) -> np.ndarray:
    """Two's-complement wrap to int32, as C's int32 arithmetic does on every target we run."""
    return ((_i64(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def round_half_away(x):
    """std::round: halves away from zero, computed in x's own float precision.

    (A float32 `x` stays float32, as TfLiteRound(float) does; the fraction extraction is exact.)
    """
    x = np.asarray(x)
    a = np.abs(x)
    fl = np.floor(a)
    r = np.where(a - fl >= 0.5, fl + 1, fl)
    return np.copysign(r, x).astype(x.dtype)


# ---- multipliers from real scales (TFLite quantization_util.cc) ----

def frexp_q31(real: float) -> tuple[int, int]:
    """frexp(real) as (round_half_away(q * 2**31), exponent): TFLite's raw Q31 significand."""
    q, shift = math.frexp(real)
    return int(round_half_away(np.float64(q * (1 << 31)))), shift


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real ~= multiplier * 2**(shift - 31), multiplier in [2**30, 2**31).

    Zero gives (0, 0); a significand that rounds up to 2**31 is halved with the shift bumped;
    a shift below -31 flushes to (0, 0) (the multiplier is under 2**-31).
    """
    if real == 0.0:
        return 0, 0
    q_fixed, shift = frexp_q31(real)
    assert q_fixed <= 1 << 31
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: as quantize_multiplier, for 0 < real < 1 (shift <= 0)."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real} is not in (0, 1)")
    multiplier, shift = quantize_multiplier(real)
    assert shift <= 0
    return multiplier, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """QuantizeMultiplierGreaterThanOne: as quantize_multiplier, for real > 1 (shift >= 0)."""
    if not real > 1.0:
        raise ValueError(f"multiplier {real} is not greater than one")
    multiplier, shift = quantize_multiplier(real)
    assert shift >= 0
    return multiplier, shift


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """CalculateInputRadius: the largest |input| whose rescaled value still fits the format."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * (1 << (total_signed_bits - input_integer_bits)) / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def preprocess_softmax_scaling(beta: float, input_scale: float,
                               input_integer_bits: int) -> tuple[int, int]:
    """PreprocessSoftmaxScaling (double rounding): beta * scale as a Q(bits) multiplier and left shift."""
    real = min(beta * input_scale * (1 << (31 - input_integer_bits)), (1 << 31) - 1.0)
    return quantize_multiplier_greater_than_one(real)


# ---- integer primitives (gemmlowp fixedpoint.h, TFLite common.h) ----

def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """SRDHM: a*b / 2**31 rounded, ties toward +inf; INT32_MIN * INT32_MIN saturates to INT32_MAX."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))  # C division truncates
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """x / 2**exponent rounded to nearest, ties away from zero (exponent in [0, 31])."""
    x, exponent = _i64(x), _i64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT: saturating << for exponent > 0, rounding >> else."""
    x = _i64(x)
    if exponent <= 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite's double-rounding MultiplyByQuantizedMultiplier: x * multiplier * 2**(shift - 31).

    SRDHM of (x << left_shift) — an int32 product in C, hence the wrap — then a rounding right
    shift. `multiplier` and `shift` broadcast against x (per-channel arrays on the last axis).
    """
    shift = _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(wrap_int32(_i64(x) << left), multiplier), right)


def multiply_by_quantized_multiplier_greater_than_one(x, multiplier, left_shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplierGreaterThanOne: SRDHM(x << left_shift), no final shift."""
    return saturating_rounding_doubling_high_mul(wrap_int32(_i64(x) << _i64(left_shift)), multiplier)


def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp RoundingHalfSum for int32: (a + b) / 2, ties away from zero."""
    s = _i64(a) + _i64(b)
    s = s + np.where(s >= 0, 1, -1)
    return np.where(s >= 0, s >> 1, -((-s) >> 1))


def count_leading_zeros32(x) -> np.ndarray:
    """CountLeadingZeros of x as a uint32 (x in [0, 2**32)); 32 for zero."""
    x = _i64(x)
    return 32 - np.frexp(x.astype(np.float64))[1].astype(np.int64)  # frexp is exact here


# ---- gemmlowp transcendental functions on raw fixed-point values ----

def exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """exp(a) for a Q0.31 a in [-1/4, 0): a 4th-order Taylor expansion around -1/8."""
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = _i64(a) + (1 << 28)  # a + 1/8
    x2 = saturating_rounding_doubling_high_mul(x, x)
    x3 = saturating_rounding_doubling_high_mul(x2, x)
    x4 = saturating_rounding_doubling_high_mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + saturating_rounding_doubling_high_mul(constant_term, x + poly)


# (exponent k, Q0.31 exp(-2**k)) for gemmlowp's barrel shifter over the integer bits of -a.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """exp(a) in Q0.31 for a <= 0 given as a raw Q(integer_bits).(31 - integer_bits) value."""
    a = _i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = remainder & (1 << (fractional_bits + exponent))
            result = np.where(bit != 0, saturating_rounding_doubling_high_mul(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)  # exp(< -32) is 0
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """1 / (1 + a) in Q0.31 for a Q0.31 a in [0, 1): three Newton-Raphson steps in Q2.29."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = 1515870810 + saturating_rounding_doubling_high_mul(half_denominator, -1010580540)  # 48/17 - 32/17 d
    for _ in range(3):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x)
        one_minus = (1 << 29) - half_denominator_times_x
        x = x + saturating_rounding_multiply_by_pot(saturating_rounding_doubling_high_mul(x, one_minus), 2)
    return saturating_rounding_multiply_by_pot(x, 1)


def logistic(a, integer_bits: int) -> np.ndarray:
    """1 / (1 + exp(-a)) in Q0.31 for a raw Q(integer_bits) value a (gemmlowp::logistic)."""
    a = _i64(a)
    positive = a > 0
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(-np.where(positive, a, -a), integer_bits))
    result = np.where(positive, result_if_positive, INT32_MAX - result_if_positive)
    return np.where(a == 0, 1 << 30, result)


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetReciprocal: 1/x for a positive Q(x_integer_digits) x, as (Q0.31 scale, bits over unit).

    x is normalised into [1, 2) by its leading zeros; the reciprocal of that is scaled back by
    2**-num_bits_over_unit by the caller.
    """
    x = _i64(x)
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit
