"""Integer parameters of each operator, as the kernels consume them.

`lower(graph, op)` (in `mcugen.quant.lowering`) computes one of these from the IR exactly as
TensorFlow Lite Micro's Prepare step does; the numpy reference and the C code generator both take
their numbers from here, so the two cannot disagree on a multiplier. Conventions (TFLite's):

- `*_offset` fields are added to raw values: `input_offset = -input_zero_point`,
  `output_offset = +output_zero_point`, `filter_offset = -filter_zero_point`.
- `multiplier` is a Q31 int32 and `shift` an exponent, positive = left shift, as produced by
  `quantize_multiplier`; arrays hold one entry per output channel, or one entry for per-tensor.
- `act_min`/`act_max` are the clamp bounds in the output's integer domain (fused activation
  folded in).
- Padding is given as the top/left offsets TFLite computes (`pad_h`, `pad_w`); the bottom/right
  padding is implied by the shapes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConvParams:
    """CONV_2D and DEPTHWISE_CONV_2D (depth_multiplier is 1 for CONV_2D)."""

    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    pad_h: int
    pad_w: int
    depth_multiplier: int
    input_offset: int
    output_offset: int
    multiplier: np.ndarray  # int32 [out_channels]
    shift: np.ndarray  # int32 [out_channels]
    act_min: int
    act_max: int


@dataclass(frozen=True)
class FullyConnectedParams:
    input_offset: int
    filter_offset: int
    output_offset: int
    multiplier: np.ndarray  # int32 [1] or [units]
    shift: np.ndarray  # int32 [1] or [units]
    act_min: int
    act_max: int


@dataclass(frozen=True)
class PoolParams:
    """AVERAGE_POOL_2D and MAX_POOL_2D: no requantization (TFLite requires equal in/out params)."""

    filter_h: int
    filter_w: int
    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class AddParams:
    """ADD: both inputs rescaled to a common 2**left_shift-scaled domain, then to the output."""

    left_shift: int
    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MulParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class RequantizeParams:
    """QUANTIZE int8 -> int8, and anything else that maps q_in to q_out linearly."""

    input_offset: int
    output_offset: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class SoftmaxParams:
    """SOFTMAX int8 -> int8 (output fixed at scale 1/256, zero point -128, as TFLM requires).

    Input differences from the row maximum are scaled by `input_multiplier`/`input_left_shift`
    into Q5.26 (beta folded in); differences below `diff_min` contribute exp() = 0.
    """

    input_multiplier: int
    input_left_shift: int
    diff_min: int


@dataclass(frozen=True)
class LogisticParams:
    """LOGISTIC int8 -> int8 (output fixed at scale 1/256, zero point -128).

    |input - zero point| >= `input_range_radius` saturates; inside it the input is scaled to
    Q4.27 by `input_multiplier`/`input_left_shift` (a plain frexp, no 2**31 fix-up in TFLM).
    """

    input_offset: int
    input_range_radius: int
    input_multiplier: int
    input_left_shift: int


@dataclass(frozen=True)
class MeanParams:
    """MEAN over `count` elements per output: the int32 sum, requantized as
    sum + input_offset * count with `multiplier`/`shift`, which already include 1/count.

    (The TFLM this matches requantizes even when input and output quantization are equal; older
    TFLM releases divided the raw sum by count, truncating, in that case.)
    """

    count: int
    input_offset: int
    output_offset: int
    multiplier: int
    shift: int


@dataclass(frozen=True)
class PadParams:
    """PAD: (before, after) per dimension; `pad_value` is the output zero point for int8."""

    paddings: tuple[tuple[int, int], ...]
    pad_value: int


@dataclass(frozen=True)
class ConcatenationParams:
    """CONCATENATION: a plain copy (TFLM's int8 kernel never requantizes), along `axis` >= 0."""

    axis: int


@dataclass(frozen=True)
class QuantizeParams:
    """QUANTIZE float32 -> int: q = clamp(round_half_away(x / scale) + zero_point), scale float32."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int


@dataclass(frozen=True)
class DequantizeParams:
    """DEQUANTIZE int -> float32: float32(double(scale) * (q - zero_point))."""

    scale: float
    zero_point: int
