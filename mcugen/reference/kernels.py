"""The integer reference: one function per operator, bit-exact with TFLM's reference kernels.

This module *defines* what every integer operator computes; the C kernels implement the same
arithmetic. Each kernel accumulates exactly in int64, wraps to the int32 the C accumulator holds,
requantizes with `mcugen.quant.fixedpoint` and clamps to the params' activation bounds. Results
are stored in the narrowest signed numpy type holding those bounds (int8 for int8 and sub-byte
outputs). Padded positions never contribute: TFLM skips them, which for offset-corrected inputs
is the same as padding the offset input with zeros.
"""
from __future__ import annotations

import numpy as np

from mcugen.quant import fixedpoint as fp
from mcugen.quant.params import (
    AddParams,
    ConvParams,
    FullyConnectedParams,
    LogisticParams,
    MeanParams,
    MulParams,
    PoolParams,
    RequantizeParams,
    SoftmaxParams,
)

# The int8 encoding of [0, 1] that softmax and logistic produce (scale 1/256, zero point -128).
_UNIT_MIN, _UNIT_MAX = -128, 127


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _store(values, lo: int, hi: int) -> np.ndarray:
    """Clamp to [lo, hi], stored in the narrowest signed type that holds the range."""
    dtype = next(t for t in (np.int8, np.int16, np.int32) if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max)
    return np.clip(values, lo, hi).astype(dtype)


def _output_stage(acc, bias, multiplier, shift, output_offset: int, act_min: int, act_max: int):
    """Bias, int32 wrap of the accumulator, per-channel requantization (last axis), clamp."""
    if bias is not None:
        acc = acc + _i64(bias)
    scaled = fp.multiply_by_quantized_multiplier(fp.wrap_int32(acc), multiplier, shift)
    return _store(scaled + output_offset, act_min, act_max)


def _int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact a @ b for int64 matrices, through float64 BLAS while every partial sum is below 2**53."""
    bound = float(np.abs(a).max(initial=0)) * float(np.abs(b).max(initial=0)) * a.shape[-1]
    if bound < 2.0**53:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a @ b


def windows(x: np.ndarray, kernel, stride, dilation, pad, out_hw, fill) -> np.ndarray:
    """Every kernel tap's view of NHWC x: shape [N, OH, OW, KH*KW, C], tap order (ky, kx).

    x is padded with `fill` at TFLite's top/left offsets `pad` and as far after as the windows
    reach. (The float executor shares this.)
    """
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw), (ph, pw), (oh, ow) = kernel, stride, dilation, pad, out_hw
    rows = max((oh - 1) * sh + (kh - 1) * dh + 1, ph + h)
    cols = max((ow - 1) * sw + (kw - 1) * dw + 1, pw + w)
    xp = np.full((n, rows, cols, c), fill, dtype=x.dtype)
    xp[:, ph:ph + h, pw:pw + w] = x
    taps = [xp[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
            for i in range(kh) for j in range(kw)]
    return np.stack(taps, axis=3)


def _conv_windows(x, w_shape, p: ConvParams, out_shape) -> np.ndarray:
    return windows(_i64(x) + p.input_offset, w_shape[1:3], (p.stride_h, p.stride_w),
                    (p.dilation_h, p.dilation_w), (p.pad_h, p.pad_w), out_shape[1:3], 0)


def _pool_windows(x, p: PoolParams, out_shape, fill) -> np.ndarray:
    return windows(x, (p.filter_h, p.filter_w), (p.stride_h, p.stride_w), (1, 1),
                    (p.pad_h, p.pad_w), out_shape[1:3], fill)


def _trunc_div(num: np.ndarray, den) -> np.ndarray:
    """C integer division (toward zero) by a positive denominator."""
    return np.where(num >= 0, num // den, -((-num) // den))


# ---- operators ----

def conv2d(x, w, bias, p: ConvParams, out_shape) -> np.ndarray:
    """CONV_2D: x NHWC, w OHWI, bias int32 [O] or None -> NHWC (ConvPerChannel)."""
    taps = _conv_windows(x, w.shape, p, out_shape)
    acc = _int_matmul(taps.reshape(-1, taps.shape[3] * taps.shape[4]), _i64(w).reshape(w.shape[0], -1).T)
    out = _output_stage(acc, bias, p.multiplier, p.shift, p.output_offset, p.act_min, p.act_max)
    return out.reshape(out_shape)


def depthwise_conv2d(x, w, bias, p: ConvParams, out_shape) -> np.ndarray:
    """DEPTHWISE_CONV_2D: w 1HWC with C = in_ch * depth_multiplier; output channel
    ic * depth_multiplier + m reads input channel ic (DepthwiseConvPerChannel)."""
    taps = np.repeat(_conv_windows(x, w.shape, p, out_shape), p.depth_multiplier, axis=-1)
    acc = (taps * _i64(w).reshape(-1, w.shape[-1])).sum(axis=3)
    return _output_stage(acc, bias, p.multiplier, p.shift, p.output_offset, p.act_min, p.act_max)


def fully_connected(x, w, bias, p: FullyConnectedParams) -> np.ndarray:
    """FULLY_CONNECTED: x [batch, in], w [units, in] -> [batch, units]; per-tensor or per-channel."""
    acc = _int_matmul(_i64(x) + p.input_offset, (_i64(w) + p.filter_offset).T)
    return _output_stage(acc, bias, p.multiplier, p.shift, p.output_offset, p.act_min, p.act_max)


def avg_pool2d(x, p: PoolParams, out_shape) -> np.ndarray:
    """AVERAGE_POOL_2D: the sum over in-bounds positions divided by their count, rounded half
    away from zero with C's truncating division: (acc +- count/2) / count."""
    acc = _pool_windows(_i64(x), p, out_shape, 0).sum(axis=3)
    inside = np.ones((1, *x.shape[1:3], 1), np.int64)
    count = _pool_windows(inside, p, out_shape, 0).sum(axis=3)
    half = count // 2
    avg = np.where(acc > 0, (acc + half) // count, _trunc_div(acc - half, count))
    return _store(avg, p.act_min, p.act_max)


def max_pool2d(x, p: PoolParams, out_shape) -> np.ndarray:
    """MAX_POOL_2D over in-bounds positions (padding never wins), then the activation clamp."""
    x = np.asarray(x)
    return _store(_pool_windows(x, p, out_shape, np.iinfo(x.dtype).min).max(axis=3), p.act_min, p.act_max)


def add(a, b, p: AddParams, out_shape) -> np.ndarray:
    """ADD with broadcasting: each input (offset, << left_shift) rescaled to a common scale,
    summed in int32, then rescaled to the output (double rounding at every step)."""
    def rescaled(v, offset, multiplier, shift):
        shifted = fp.wrap_int32((_i64(v) + offset) << p.left_shift)
        return fp.multiply_by_quantized_multiplier(shifted, multiplier, shift)

    raw_sum = fp.wrap_int32(rescaled(a, p.input1_offset, p.input1_multiplier, p.input1_shift)
                            + rescaled(b, p.input2_offset, p.input2_multiplier, p.input2_shift))
    out = fp.multiply_by_quantized_multiplier(raw_sum, p.output_multiplier, p.output_shift)
    return _store(np.broadcast_to(out + p.output_offset, out_shape), p.act_min, p.act_max)


def mul(a, b, p: MulParams, out_shape) -> np.ndarray:
    """MUL with broadcasting: the int32 product of the offset inputs, requantized once."""
    product = fp.wrap_int32((_i64(a) + p.input1_offset) * (_i64(b) + p.input2_offset))
    out = fp.multiply_by_quantized_multiplier(product, p.output_multiplier, p.output_shift)
    return _store(np.broadcast_to(out + p.output_offset, out_shape), p.act_min, p.act_max)


def softmax(x, p: SoftmaxParams) -> np.ndarray:
    """SOFTMAX over the last axis, int8 -> int8 (scale 1/256, zero point -128), gemmlowp style.

    exp() of each Q5.26 scaled difference from the row max, summed in Q12.19, times the Q0.31
    reciprocal of the sum; differences below diff_min give the minimum output.
    """
    rows = _i64(x).reshape(-1, np.shape(x)[-1])
    diff = rows - rows.max(axis=1, keepdims=True)
    valid = diff >= p.diff_min
    scaled_diff = fp.multiply_by_quantized_multiplier_greater_than_one(
        diff, p.input_multiplier, p.input_left_shift)
    exps = fp.exp_on_negative_values(scaled_diff, 5)
    in_q12 = np.where(valid, fp.rounding_divide_by_pot(exps, 12), 0)  # Rescale<12>: Q0.31 -> Q12.19
    sum_of_exps = fp.wrap_int32(in_q12.sum(axis=1, keepdims=True))
    reciprocal, bits_over_unit = fp.get_reciprocal(sum_of_exps, 12)
    out = fp.rounding_divide_by_pot(fp.saturating_rounding_doubling_high_mul(reciprocal, exps),
                                    bits_over_unit + 31 - 8) + _UNIT_MIN
    return _store(np.where(valid, out, _UNIT_MIN), _UNIT_MIN, _UNIT_MAX).reshape(np.shape(x))


def logistic(x, p: LogisticParams) -> np.ndarray:
    """LOGISTIC int8 -> int8 (scale 1/256, zero point -128): gemmlowp's logistic on a Q4.27
    input, saturated outside +-input_range_radius."""
    centered = _i64(x) + p.input_offset
    q4 = fp.multiply_by_quantized_multiplier(centered, p.input_multiplier, p.input_left_shift)
    out = fp.rounding_divide_by_pot(fp.logistic(q4, 4), 31 - 8) + _UNIT_MIN
    out = np.where(centered <= -p.input_range_radius, _UNIT_MIN,
                   np.where(centered >= p.input_range_radius, _UNIT_MAX, out))
    return _store(out, _UNIT_MIN, _UNIT_MAX)


def mean(x, axes, p: MeanParams, out_shape) -> np.ndarray:
    """MEAN over `axes`: the int32 sum minus zero_point * count, requantized with 1/count folded
    into the multiplier (TFLM's QuantizedMeanOrSum), clamped to the input type's range."""
    x = np.asarray(x)
    total = _i64(x).sum(axis=tuple(a % x.ndim for a in axes))
    shifted = fp.wrap_int32(total + p.input_offset * p.count)
    out = fp.multiply_by_quantized_multiplier(shifted, p.multiplier, p.shift) + p.output_offset
    info = np.iinfo(x.dtype)
    return _store(out, info.min, info.max).reshape(out_shape)


def pad(x, paddings, pad_value) -> np.ndarray:
    """PAD with a constant (the output zero point for int8): (before, after) per dimension."""
    return np.pad(x, [tuple(pair) for pair in paddings], constant_values=pad_value)


def concatenation(xs, axis: int) -> np.ndarray:
    """CONCATENATION: a copy; int8 inputs share the output's quantization (TFLM requires it)."""
    return np.concatenate(xs, axis=axis)


def requantize(x, p: RequantizeParams) -> np.ndarray:
    """q_in -> q_out linearly (QUANTIZE int8 -> int8): one MultiplyByQuantizedMultiplier, clamp."""
    out = fp.multiply_by_quantized_multiplier(_i64(x) + p.input_offset, p.multiplier, p.shift)
    return _store(out + p.output_offset, p.act_min, p.act_max)


def quantize(x_float, scale: float, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """QUANTIZE float32 -> int: round_half_away(x / scale) in float32, + zero_point, clamp."""
    q = fp.round_half_away(np.asarray(x_float, np.float32) / np.float32(scale))
    return _store(q.astype(np.int64) + zero_point, qmin, qmax)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """DEQUANTIZE: float32(double(scale) * (q - zero_point)), no other rounding."""
    return (np.float64(scale) * (_i64(q) - zero_point)).astype(np.float32)
