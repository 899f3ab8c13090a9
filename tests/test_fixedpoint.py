"""mcugen.quant.fixedpoint: hand-computed cases, and properties against big-integer models.

The models below are written from the *meaning* of each function (exact rationals, Python's
unbounded ints), not from its C formulation, so they check the vectorised int64 code
independently.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcugen.quant import fixedpoint as fp

INT32 = st.integers(fp.INT32_MIN, fp.INT32_MAX)


# ---- big-integer models ----

def model_round_half_away(q: Fraction) -> int:
    n = math.floor(abs(q) + Fraction(1, 2))
    return n if q >= 0 else -n


def model_srdhm(a: int, b: int) -> int:
    """a*b / 2**31 to nearest, ties toward +inf; the one overflowing case saturates."""
    if a == b == fp.INT32_MIN:
        return fp.INT32_MAX
    return math.floor(Fraction(a * b, 1 << 31) + Fraction(1, 2))


def model_rdbpot(x: int, exponent: int) -> int:
    return model_round_half_away(Fraction(x, 1 << exponent))


def model_wrap(x: int) -> int:
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def model_mbqm(x: int, multiplier: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return model_rdbpot(model_srdhm(model_wrap(x << left), multiplier), right)


def model_quantize_multiplier(real: float) -> tuple[int, int]:
    """The Q31 significand of `real` in [2**30, 2**31) rounded half away, and its exponent."""
    if real == 0:
        return 0, 0
    r = Fraction(real)
    shift = math.floor(math.log2(real)) + 1
    while r >= Fraction(2) ** shift:  # log2 may be off by one near powers of two
        shift += 1
    while r < Fraction(2) ** (shift - 1):
        shift -= 1
    q = model_round_half_away(r * Fraction(2) ** (31 - shift))
    if q == 1 << 31:
        q, shift = 1 << 30, shift + 1
    return (0, 0) if shift < -31 else (q, shift)


# ---- hand-computed cases ----

@pytest.mark.parametrize("real, expected", [
    (0.5, (1 << 30, 0)),
    (0.25, (1 << 30, -1)),
    (1.0, (1 << 30, 1)),
    (0.75, (3 << 29, 0)),
    (0.0, (0, 0)),
    (2.0 ** -40, (0, 0)),                      # shift < -31 flushes to zero
    (1.0 - 2.0 ** -33, (1 << 30, 1)),          # significand rounds up to 2**31: halved, shift + 1
])
def test_quantize_multiplier_cases(real, expected):
    assert fp.quantize_multiplier(real) == expected


def test_quantize_multiplier_range_checks():
    assert fp.quantize_multiplier_smaller_than_one_exp(0.3)[1] <= 0
    assert fp.quantize_multiplier_greater_than_one(3.0) == (3 << 29, 2)
    with pytest.raises(ValueError):
        fp.quantize_multiplier_smaller_than_one_exp(1.5)
    with pytest.raises(ValueError):
        fp.quantize_multiplier_greater_than_one(0.5)


def test_srdhm_cases():
    assert fp.saturating_rounding_doubling_high_mul(fp.INT32_MIN, fp.INT32_MIN) == fp.INT32_MAX
    assert fp.saturating_rounding_doubling_high_mul(1 << 30, 1 << 30) == 1 << 29
    assert fp.saturating_rounding_doubling_high_mul(5, 1 << 30) == 3     # 2.5 -> 3
    assert fp.saturating_rounding_doubling_high_mul(-5, 1 << 30) == -2   # -2.5 -> -2 (ties up)
    assert fp.saturating_rounding_doubling_high_mul(-7, 1 << 30) == -3   # -3.5 -> -3


def test_rounding_divide_by_pot_cases():
    assert fp.rounding_divide_by_pot(-5, 1) == -3  # -2.5: half away from zero
    assert fp.rounding_divide_by_pot(5, 1) == 3
    assert fp.rounding_divide_by_pot(-4, 1) == -2
    assert fp.rounding_divide_by_pot(-6, 2) == -2  # -1.5 -> -2
    assert fp.rounding_divide_by_pot(6, 2) == 2
    assert fp.rounding_divide_by_pot(-5, 2) == -1  # -1.25 -> -1
    assert fp.rounding_divide_by_pot(123, 0) == 123


def test_multiply_by_quantized_multiplier_cases():
    half = fp.quantize_multiplier(0.5)
    assert fp.multiply_by_quantized_multiplier(7, *half) == 4     # 3.5 -> 4
    assert fp.multiply_by_quantized_multiplier(-7, *half) == -3   # -3.5 -> -3: SRDHM ties go up
    # double rounding: 5 * 0.25 = 1.25, but SRDHM gives 2.5 -> 3, then 3 / 2 = 1.5 -> 2
    assert fp.multiply_by_quantized_multiplier(5, *fp.quantize_multiplier(0.25)) == 2
    assert fp.multiply_by_quantized_multiplier(100, *fp.quantize_multiplier(3.0)) == 300
    # per-channel multipliers broadcast along the last axis
    got = fp.multiply_by_quantized_multiplier(np.array([[10, 10]]), np.array([1 << 30, 1 << 30]),
                                              np.array([0, -1]))
    assert got.tolist() == [[5, 3]]


def test_wrap_and_round_helpers():
    assert fp.wrap_int32(1 << 31) == fp.INT32_MIN
    assert fp.wrap_int32(-(1 << 31) - 1) == fp.INT32_MAX
    assert fp.round_half_away(np.float32(2.5)) == 3 and fp.round_half_away(-2.5) == -3
    assert fp.round_half_away(0.49999999999999994) == 0  # floor(x + 0.5) would give 1
    assert fp.round_half_away(np.float32(-0.5)).dtype == np.float32
    assert fp.count_leading_zeros32(np.array([1, 2, 3, 1 << 31, 0])).tolist() == [31, 30, 30, 0, 32]


def test_softmax_and_logistic_constants():
    assert fp.calculate_input_radius(5, 24) == 31 * (1 << 26) >> 24
    assert fp.exp_on_negative_values(0, 5) == fp.INT32_MAX  # exp(0) is the largest Q0.31
    assert fp.logistic(0, 4) == 1 << 30                      # 1/2
    assert fp.preprocess_softmax_scaling(1.0, 1 / 16, 5) == (1 << 30, 23)
    # a huge beta * scale is capped at 2**31 - 1 before quantizing
    assert fp.preprocess_softmax_scaling(1e6, 1.0, 5) == fp.quantize_multiplier((1 << 31) - 1.0)


# ---- properties against the models ----

@settings(max_examples=300, deadline=None)
@given(a=INT32, b=INT32)
def test_srdhm_matches_model(a, b):
    assert fp.saturating_rounding_doubling_high_mul(a, b) == model_srdhm(a, b)


@settings(max_examples=300, deadline=None)
@given(x=INT32, exponent=st.integers(0, 31))
def test_rounding_divide_by_pot_matches_model(x, exponent):
    assert fp.rounding_divide_by_pot(x, exponent) == model_rdbpot(x, exponent)


@settings(max_examples=300, deadline=None)
@given(x=INT32, multiplier=st.integers(0, fp.INT32_MAX), shift=st.integers(-31, 30))
def test_mbqm_matches_model(x, multiplier, shift):
    assert fp.multiply_by_quantized_multiplier(x, multiplier, shift) == model_mbqm(x, multiplier, shift)


@settings(max_examples=100, deadline=None)
@given(xs=st.lists(INT32, min_size=1, max_size=20), multiplier=st.integers(0, fp.INT32_MAX),
       shift=st.integers(-31, 30))
def test_mbqm_vectorised_equals_scalar(xs, multiplier, shift):
    got = fp.multiply_by_quantized_multiplier(np.array(xs), multiplier, shift)
    assert got.tolist() == [model_mbqm(x, multiplier, shift) for x in xs]


@settings(max_examples=300, deadline=None)
@given(real=st.floats(min_value=1e-12, max_value=1e6, allow_nan=False))
def test_quantize_multiplier_matches_model(real):
    multiplier, shift = fp.quantize_multiplier(real)
    assert (multiplier, shift) == model_quantize_multiplier(real)
    if multiplier:
        assert (1 << 30) <= multiplier < (1 << 31)
        assert abs(multiplier * 2.0 ** (shift - 31) - real) <= real * 2.0 ** -30


@settings(max_examples=200, deadline=None)
@given(x=st.integers(-100_000, 100_000), real=st.floats(1e-4, 0.999))
def test_mbqm_approximates_the_real_product(x, real):
    got = int(fp.multiply_by_quantized_multiplier(x, *fp.quantize_multiplier(real)))
    assert abs(got - x * real) <= 1


def test_exp_and_reciprocal_accuracy():
    for bits in (4, 5):
        a = np.linspace(-(2.0 ** bits) + 1, 0, 4001)
        raw = np.round(a * 2.0 ** (31 - bits)).astype(np.int64)
        got = fp.exp_on_negative_values(raw, bits) / 2.0 ** 31
        assert np.max(np.abs(got - np.exp(raw / 2.0 ** (31 - bits)))) < 3e-7
        sig = fp.logistic(np.concatenate([raw, -raw]), bits) / 2.0 ** 31
        x = np.concatenate([raw, -raw]) / 2.0 ** (31 - bits)
        assert np.max(np.abs(sig - 1 / (1 + np.exp(-x)))) < 3e-7
    x = np.linspace(0, 1, 1001, endpoint=False)
    got = fp.one_over_one_plus_x_for_x_in_0_1((x * 2.0 ** 31).astype(np.int64)) / 2.0 ** 31
    assert np.max(np.abs(got - 1 / (1 + x))) < 1e-8
    scale, bits_over_unit = fp.get_reciprocal(np.array([3 << 19]), 12)  # 3.0 in Q12.19
    assert abs(scale[0] / 2.0 ** 31 * 2.0 ** -bits_over_unit[0] - 1 / 3) < 1e-8
