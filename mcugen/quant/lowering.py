"""`lower(graph, op)`: every integer parameter of one op, computed as TFLM's Prepare computes it.

Scales in a .tflite are float32 and TFLM mixes float32 and double arithmetic on them; which one
an op uses changes multipliers in their low bits (a float32 product is off by tens of units):

- CONV_2D / DEPTHWISE_CONV_2D / per-channel FULLY_CONNECTED: double(in) * double(w[c]) / double(out).
- per-tensor FULLY_CONNECTED: double(float32(in * w)) / double(out) (GetQuantizedConvolutionMultipler).
- fused activation bounds: zero_point + round(float32(f) / float32 scale), in float32.
- everything else (ADD, MUL, MEAN, QUANTIZE, SOFTMAX's beta * scale, LOGISTIC): double.

Ops with nothing to lower (RESHAPE, SQUEEZE) give None.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from mcugen.errors import UserError
from mcugen.ir import Graph, Op, Tensor
from mcugen.quant import fixedpoint as fp
from mcugen.quant.params import (
    AddParams,
    ConcatenationParams,
    ConvParams,
    DequantizeParams,
    FullyConnectedParams,
    LogisticParams,
    MeanParams,
    MulParams,
    PadParams,
    PoolParams,
    QuantizeParams,
    RequantizeParams,
    SoftmaxParams,
)

# Softmax and logistic int8 outputs must be exactly this (TFLM checks it in Prepare).
UNIT_INTERVAL_SCALE, UNIT_INTERVAL_ZERO_POINT = 1.0 / 256.0, -128


def lower(graph: Graph, op: Op):
    """The params dataclass for `op` (see mcugen.quant.params), or None if it has no parameters."""
    if op.kind not in _LOWERINGS:
        raise UserError(f"{op.name or op.kind}: no integer lowering for operator {op.kind}")
    return _LOWERINGS[op.kind](graph, op)


# ---- shared pieces ----

def window_padding(in_size: int, kernel: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """(output size, padding before) along one axis: TFLite's ComputeOutSize and
    ComputePaddingWithOffset; an odd total padding puts the extra element after."""
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    elif padding == "VALID":
        out = (in_size + stride - effective) // stride
    else:
        raise UserError(f"unknown padding {padding!r}")
    total = max((out - 1) * stride + effective - in_size, 0)
    return out, total // 2


def activation_range(activation: str, out: Tensor) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: the fused activation as bounds in out's integer domain."""
    qmin, qmax = out.dtype.qmin, out.dtype.qmax
    scale, zero_point = np.float32(out.quant.s), out.quant.zp

    def q(real: float) -> int:
        return zero_point + int(fp.round_half_away(np.float32(real) / scale))

    bounds = {
        "NONE": (qmin, qmax),
        "RELU": (max(qmin, q(0.0)), qmax),
        "RELU6": (max(qmin, q(0.0)), min(qmax, q(6.0))),
        "RELU_N1_TO_1": (max(qmin, q(-1.0)), min(qmax, q(1.0))),
    }
    if activation not in bounds:
        raise UserError(f"fused activation {activation} is not supported")
    return bounds[activation]


def _multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    pairs = [fp.quantize_multiplier(float(r)) for r in reals]
    return (np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32))


def _per_channel_multipliers(x: Tensor, w: Tensor, y: Tensor, channels: int):
    """PopulateConvolutionQuantizationParams: one multiplier per output channel, in double."""
    scales = np.broadcast_to(w.quant.scale, (channels,))
    return _multipliers(x.quant.s * s / y.quant.s for s in scales)


def _io(graph: Graph, op: Op) -> tuple[list[Tensor | None], Tensor]:
    return graph.op_inputs(op), graph.op_outputs(op)[0]


def _spatial(x: Tensor, y: Tensor, kernel, stride, dilation, padding: str, what: str) -> tuple[int, int]:
    """(pad_h, pad_w), checking that TFLite's output size matches the graph's."""
    pads = []
    for axis in (1, 2):
        out, pad = window_padding(x.shape[axis], kernel[axis - 1], stride[axis - 1],
                                  dilation[axis - 1], padding)
        if out != y.shape[axis]:
            raise UserError(f"{what}: output shape {list(y.shape)} does not match TFLite's for input "
                            f"{list(x.shape)} (expected {out} along axis {axis})")
        pads.append(pad)
    return pads[0], pads[1]


# ---- one function per operator kind ----

def _conv(graph: Graph, op: Op) -> ConvParams:
    ins, y = _io(graph, op)
    x, w = ins[0], ins[1]
    stride, dilation = op.attrs["stride"], op.attrs.get("dilation", (1, 1))
    pad_h, pad_w = _spatial(x, y, w.shape[1:3], stride, dilation, op.attrs["padding"], op.name or op.kind)
    multiplier, shift = _per_channel_multipliers(x, w, y, y.shape[-1])
    act_min, act_max = activation_range(op.attrs["activation"], y)
    return ConvParams(
        stride_h=stride[0], stride_w=stride[1], dilation_h=dilation[0], dilation_w=dilation[1],
        pad_h=pad_h, pad_w=pad_w, depth_multiplier=op.attrs.get("depth_multiplier", 1),
        input_offset=-x.quant.zp, output_offset=y.quant.zp, multiplier=multiplier, shift=shift,
        act_min=act_min, act_max=act_max)


def _fully_connected(graph: Graph, op: Op) -> FullyConnectedParams:
    ins, y = _io(graph, op)
    x, w = ins[0], ins[1]
    if w.quant.per_channel:
        multiplier, shift = _per_channel_multipliers(x, w, y, w.shape[0])
    else:  # the product is taken in float32 before widening
        multiplier, shift = _multipliers([float(np.float32(x.quant.s) * np.float32(w.quant.s)) / y.quant.s])
    act_min, act_max = activation_range(op.attrs["activation"], y)
    return FullyConnectedParams(
        input_offset=-x.quant.zp, filter_offset=-w.quant.zp, output_offset=y.quant.zp,
        multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max)


def _pool(graph: Graph, op: Op) -> PoolParams:
    (x, *_), y = _io(graph, op)
    kernel, stride = op.attrs["filter"], op.attrs["stride"]
    pad_h, pad_w = _spatial(x, y, kernel, stride, (1, 1), op.attrs["padding"], op.name or op.kind)
    if x.quant.s != y.quant.s or x.quant.zp != y.quant.zp:
        raise UserError(f"{op.name or op.kind}: input and output quantization differ; TFLite's "
                        "integer pooling does not requantize")
    act_min, act_max = activation_range(op.attrs["activation"], y)
    return PoolParams(filter_h=kernel[0], filter_w=kernel[1], stride_h=stride[0], stride_w=stride[1],
                      pad_h=pad_h, pad_w=pad_w, act_min=act_min, act_max=act_max)


def _add(graph: Graph, op: Op) -> AddParams:
    (a, b), y = _io(graph, op)
    left_shift = 20
    twice_max_input_scale = 2 * max(a.quant.s, b.quant.s)
    m1, s1 = fp.quantize_multiplier_smaller_than_one_exp(a.quant.s / twice_max_input_scale)
    m2, s2 = fp.quantize_multiplier_smaller_than_one_exp(b.quant.s / twice_max_input_scale)
    mo, so = fp.quantize_multiplier_smaller_than_one_exp(
        twice_max_input_scale / ((1 << left_shift) * y.quant.s))
    act_min, act_max = activation_range(op.attrs["activation"], y)
    return AddParams(
        left_shift=left_shift, input1_offset=-a.quant.zp, input1_multiplier=m1, input1_shift=s1,
        input2_offset=-b.quant.zp, input2_multiplier=m2, input2_shift=s2, output_offset=y.quant.zp,
        output_multiplier=mo, output_shift=so, act_min=act_min, act_max=act_max)


def _mul(graph: Graph, op: Op) -> MulParams:
    (a, b), y = _io(graph, op)
    multiplier, shift = fp.quantize_multiplier(a.quant.s * b.quant.s / y.quant.s)
    act_min, act_max = activation_range(op.attrs["activation"], y)
    return MulParams(input1_offset=-a.quant.zp, input2_offset=-b.quant.zp, output_offset=y.quant.zp,
                     output_multiplier=multiplier, output_shift=shift, act_min=act_min, act_max=act_max)


def _require_unit_interval(op: Op, y: Tensor) -> None:
    if y.quant.s != UNIT_INTERVAL_SCALE or y.quant.zp != UNIT_INTERVAL_ZERO_POINT:
        raise UserError(f"{op.name or op.kind}: int8 {op.kind} output must have scale 1/256 and zero "
                        f"point -128 (has {y.quant.s}, {y.quant.zp})")


def _softmax(graph: Graph, op: Op) -> SoftmaxParams:
    (x,), y = _io(graph, op)
    _require_unit_interval(op, y)
    scaled_diff_integer_bits = 5
    multiplier, left_shift = fp.preprocess_softmax_scaling(
        op.attrs.get("beta", 1.0), x.quant.s, scaled_diff_integer_bits)
    diff_min = -fp.calculate_input_radius(scaled_diff_integer_bits, left_shift)
    return SoftmaxParams(input_multiplier=multiplier, input_left_shift=left_shift, diff_min=diff_min)


def _logistic(graph: Graph, op: Op) -> LogisticParams:
    (x,), y = _io(graph, op)
    _require_unit_interval(op, y)
    input_integer_bits = 4
    # TFLM takes frexp and rounds without QuantizeMultiplier's 2**31 fix-up
    multiplier, left_shift = fp.frexp_q31(x.quant.s * (1 << (31 - input_integer_bits)))
    return LogisticParams(
        input_offset=-x.quant.zp,
        input_range_radius=fp.calculate_input_radius(input_integer_bits, left_shift, 31),
        input_multiplier=int(fp.wrap_int32(multiplier)), input_left_shift=left_shift)


def _mean(graph: Graph, op: Op) -> MeanParams:
    (x, *_), y = _io(graph, op)
    axes = sorted({a % len(x.shape) for a in op.attrs["axis"]})
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    multiplier, shift = fp.quantize_multiplier(x.quant.s / y.quant.s)
    # QuantizedMeanOrSum folds 1/count into the multiplier, keeping shift >= -31
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier = (multiplier << extra) // count
    return MeanParams(count=count, input_offset=-x.quant.zp, output_offset=y.quant.zp,
                      multiplier=multiplier, shift=shift - extra)


def _pad(graph: Graph, op: Op) -> PadParams:
    (x, *_), y = _io(graph, op)
    return PadParams(paddings=tuple(op.attrs["paddings"]), pad_value=y.quant.zp)


def _concatenation(graph: Graph, op: Op) -> ConcatenationParams:
    ins, y = _io(graph, op)
    if op.attrs.get("activation", "NONE") != "NONE":
        raise UserError(f"{op.name or op.kind}: CONCATENATION with a fused activation is not supported")
    if not y.dtype.is_float and any(t.quant.s != y.quant.s or t.quant.zp != y.quant.zp for t in ins):
        raise UserError(f"{op.name or op.kind}: int8 CONCATENATION inputs must share the output's "
                        "scale and zero point")
    return ConcatenationParams(axis=op.attrs["axis"] % len(y.shape))


def _quantize(graph: Graph, op: Op) -> QuantizeParams | RequantizeParams:
    (x,), y = _io(graph, op)
    if x.dtype.is_float:
        return QuantizeParams(scale=y.quant.s, zero_point=y.quant.zp, qmin=y.dtype.qmin, qmax=y.dtype.qmax)
    multiplier, shift = fp.quantize_multiplier(x.quant.s / y.quant.s)
    return RequantizeParams(input_offset=-x.quant.zp, output_offset=y.quant.zp, multiplier=multiplier,
                            shift=shift, act_min=y.dtype.qmin, act_max=y.dtype.qmax)


def _dequantize(graph: Graph, op: Op) -> DequantizeParams:
    (x,), _ = _io(graph, op)
    return DequantizeParams(scale=x.quant.s, zero_point=x.quant.zp)


_LOWERINGS: dict[str, Callable[[Graph, Op], object]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _conv,
    "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "ADD": _add,
    "MUL": _mul,
    "SOFTMAX": _softmax,
    "LOGISTIC": _logistic,
    "MEAN": _mean,
    "PAD": _pad,
    "CONCATENATION": _concatenation,
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
    "RESHAPE": lambda graph, op: None,
    "SQUEEZE": lambda graph, op: None,
}
