"""The C kernels (c_kernels/), built on the host with cffi, against the numpy reference: bit for bit.

Shapes and parameters come from hypothesis (derandomized, so every run draws the same cases);
tensor contents come from a numpy generator seeded by a drawn integer, which keeps examples
cheap. Every output buffer is surrounded by guard bytes that must survive the call.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcugen.codegen.layers import columns_bytes, conv2d_scratch_bytes, conv_filter
from mcugen.ir import INT8, Graph, Op, Quant, Tensor
from mcugen.quant import fixedpoint as fp
from mcugen.quant.lowering import lower, window_padding
from mcugen.quant.params import (
    ConvParams,
    FullyConnectedParams,
    MeanParams,
    PoolParams,
    RequantizeParams,
)
from mcugen.reference import kernels as ref
from mcugen.toolchain.host import build_host_module

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "c_kernels"
GUARD = 16
FILL = 0x5A

CASES = settings(derandomize=True, deadline=None, max_examples=250,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
MANY = settings(CASES, max_examples=600)
FEW = settings(CASES, max_examples=100)

# The static inline fixed-point helpers, exposed for direct tests.
FIXEDPOINT_CDEF = """
int32_t mcugen_sat_rounding_doubling_high_mul(int32_t a, int32_t b);
int32_t mcugen_rounding_divide_by_pot(int32_t x, int32_t exponent);
int32_t mcugen_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift);
int32_t mcugen_exp_on_negative_values(int32_t a, int32_t integer_bits);
int32_t mcugen_one_over_one_plus_x(int32_t a);
"""


def header_cdef(text: str) -> str:
    """The declarations of a C header, as cffi's cdef accepts them (no comments, no preprocessor)."""
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


@pytest.fixture(scope="module")
def kernels():
    header = (KERNELS / "include" / "mcugen_kernels.h").read_text()
    return build_host_module(
        "_mcugen_kernels_test", header_cdef(header) + FIXEDPOINT_CDEF,
        sorted((KERNELS / "src").glob("*.c")), [KERNELS / "include"],
        ("-O2", "-std=c99"),
        preamble='#include "mcugen_kernels.h"\n#include "mcugen_fixedpoint.h"')


# ---- calling convention helpers ----

class Call:
    """Marshals numpy arrays and params into one kernel call; checks the output guard bytes."""

    def __init__(self, kernels):
        self.ffi, self.lib = kernels
        self._guarded: list[np.ndarray] = []

    def dims(self, shape) -> object:
        shape = tuple(shape)
        nhwc = {1: (1, 1, 1, *shape), 2: (shape[0], 1, 1, shape[1]), 4: shape}[len(shape)]
        return self.ffi.new("mcugen_dims *", [int(v) for v in nhwc])

    def i8(self, a) -> object:
        return self.ffi.from_buffer("int8_t[]", np.ascontiguousarray(a, dtype=np.int8))

    def i32(self, a) -> object:
        if a is None:
            return self.ffi.NULL
        return self.ffi.from_buffer("int32_t[]", np.ascontiguousarray(a, dtype=np.int32))

    def struct(self, ctype: str, **fields) -> object:
        return self.ffi.new(f"{ctype} *", {k: int(v) for k, v in fields.items()})

    def quant(self, multiplier, shift) -> object:
        arrays = self.i32(multiplier), self.i32(shift)
        self._keep = arrays  # the struct holds bare pointers: keep their buffers alive
        return self.ffi.new("mcugen_quant_params *", [*arrays, np.size(multiplier)])

    def buffer(self, nbytes: int) -> tuple[np.ndarray, object]:
        """A writable region with guard bytes on both sides: (view of the region, pointer)."""
        raw = np.full(nbytes + 2 * GUARD, FILL, dtype=np.uint8)
        self._guarded.append(raw)
        view = raw[GUARD:GUARD + nbytes].view(np.int8)
        return view, self.ffi.from_buffer("int8_t[]", view, require_writable=True)

    def check_guards(self) -> None:
        for raw in self._guarded:
            assert (raw[:GUARD] == FILL).all() and (raw[-GUARD:] == FILL).all(), "write out of bounds"
        self._guarded.clear()


@pytest.fixture(scope="module")
def call(kernels):
    return Call(kernels)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    want = np.asarray(want)
    assert got.shape == want.shape
    if not np.array_equal(got.astype(np.int64), want.astype(np.int64)):
        bad = np.argwhere(got.astype(np.int64) != want.astype(np.int64))
        idx = tuple(bad[0])
        raise AssertionError(f"{len(bad)} of {got.size} differ; first at {idx}: C {got[idx]} != ref {want[idx]}")


# ---- parameter strategies ----

def int8s(rng: np.random.Generator, shape, lo: int = -128) -> np.ndarray:
    return rng.integers(lo, 128, size=shape, dtype=np.int64).astype(np.int8)


@st.composite
def act_range(draw, output_zp: int) -> tuple[int, int]:
    kind = draw(st.sampled_from(["NONE", "RELU", "RELU6", "RANGE"]))
    if kind == "NONE":
        return -128, 127
    if kind == "RELU":
        return output_zp, 127
    if kind == "RELU6":
        return output_zp, min(127, output_zp + draw(st.integers(0, 100)))
    lo = draw(st.integers(-128, 127))
    return lo, draw(st.integers(lo, 127))


def multipliers(rng: np.random.Generator, channels: int, acc_std: float, per_channel: bool):
    """Realistic multipliers: outputs of std ~40 for accumulators of std `acc_std`, varying by up
    to 2**+-2 between channels."""
    reals = 40.0 / max(acc_std, 1.0) * 2.0 ** rng.uniform(-2, 2, size=channels if per_channel else 1)
    pairs = [fp.quantize_multiplier(float(r)) for r in reals]
    return np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32)


@st.composite
def conv_case(draw, depthwise: bool = False, pointwise: bool = False, channels4: bool = False):
    """channels4: the shapes of mcugen_depthwise_conv2d_c4_s8 (at least 4 output channels, a
    multiple of 4 or not, depth multiplier 1, 2 or 4, windows up to the 7x7 it widens onto the
    stack)."""
    most = 7 if channels4 else 4
    kh, kw = (1, 1) if pointwise else (draw(st.integers(1, most)), draw(st.integers(1, most)))
    stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dilation = (1, 1) if pointwise else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = "VALID" if pointwise else draw(st.sampled_from(["SAME", "VALID"]))
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 10)), draw(st.integers(1, 10))
    oh, pad_h = window_padding(h, kh, stride[0], dilation[0], padding)
    ow, pad_w = window_padding(w, kw, stride[1], dilation[1], padding)
    if oh < 1 or ow < 1:  # VALID window larger than the input: shrink the filter instead
        kh, kw, dilation, padding = 1, 1, (1, 1), "VALID"
        oh, pad_h = window_padding(h, 1, stride[0], 1, "VALID")
        ow, pad_w = window_padding(w, 1, stride[1], 1, "VALID")
    dm = draw(st.sampled_from([1, 1, 2, 4]) if channels4 else st.integers(1, 3)) if depthwise else 1
    in_ch = draw(st.integers(-(-4 // dm), 13)) if channels4 else draw(st.integers(1, 9))
    out_ch = in_ch * dm if depthwise else draw(st.integers(1, 9))
    output_zp = draw(st.integers(-128, 127))
    act_min, act_max = draw(act_range(output_zp))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = int8s(rng, (n, h, w, in_ch))
    filt = int8s(rng, (1, kh, kw, out_ch) if depthwise else (out_ch, kh, kw, in_ch), lo=-127)
    bias = rng.integers(-30000, 30000, size=out_ch).astype(np.int32) if draw(st.booleans()) else None
    taps = kh * kw * (1 if depthwise else in_ch)
    multiplier, shift = multipliers(rng, out_ch, math.sqrt(taps) * 74 * 73, draw(st.booleans()))
    p = ConvParams(stride_h=stride[0], stride_w=stride[1], dilation_h=dilation[0],
                   dilation_w=dilation[1], pad_h=pad_h, pad_w=pad_w, depth_multiplier=dm,
                   input_offset=-draw(st.integers(-128, 127)), output_offset=output_zp,
                   multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max)
    return x, filt, bias, p, (n, oh, ow, out_ch)


def conv_struct(call: Call, p: ConvParams):
    fields = {k: getattr(p, k) for k in ("stride_h", "stride_w", "dilation_h", "dilation_w", "pad_h",
                                         "pad_w", "depth_multiplier", "input_offset", "output_offset",
                                         "act_min", "act_max")}
    return call.struct("mcugen_conv_params", **fields), call.quant(p.multiplier, p.shift)


def run_conv(call: Call, kind: str, x, filt, bias, p: ConvParams, out_shape) -> np.ndarray:
    params, quant = conv_struct(call, p)
    out, out_ptr = call.buffer(int(np.prod(out_shape)))
    conv = kind in ("conv2d", "conv2d_1x1")
    args = (params, quant, call.dims(x.shape), call.i8(x), call.dims(filt.shape),
            call.i8(conv_filter(filt) if conv else filt), call.i32(bias), call.dims(out_shape), out_ptr)
    if conv:  # rows padded as the code generator lays them out, scratch as the planner sizes it
        size = getattr(call.lib, f"mcugen_{kind}_s8_scratch_size")(call.dims(filt.shape))
        assert size == (conv2d_scratch_bytes(filt.shape) if kind == "conv2d" else columns_bytes(filt.shape[3]))
        _, scratch = call.buffer(size)
        getattr(call.lib, f"mcugen_{kind}_s8")(scratch, *args)
    else:
        getattr(call.lib, f"mcugen_{kind}_s8")(*args)
    call.check_guards()
    return out.reshape(out_shape)


# ---- convolution and fully connected ----

@MANY
@given(case=conv_case())
def test_conv2d(call, case):
    x, filt, bias, p, out_shape = case
    assert_same(run_conv(call, "conv2d", x, filt, bias, p, out_shape), ref.conv2d(x, filt, bias, p, out_shape))


@CASES
@given(case=conv_case(pointwise=True))
def test_conv2d_1x1(call, case):
    x, filt, bias, p, out_shape = case
    want = ref.conv2d(x, filt, bias, p, out_shape)
    assert_same(run_conv(call, "conv2d_1x1", x, filt, bias, p, out_shape), want)
    assert_same(run_conv(call, "conv2d", x, filt, bias, p, out_shape), want)


@MANY
@given(case=conv_case(depthwise=True))
def test_depthwise_conv2d(call, case):
    x, filt, bias, p, out_shape = case
    assert_same(run_conv(call, "depthwise_conv2d", x, filt, bias, p, out_shape),
                ref.depthwise_conv2d(x, filt, bias, p, out_shape))


@CASES
@given(case=conv_case(depthwise=True, channels4=True))
def test_depthwise_conv2d_c4(call, case):
    x, filt, bias, p, out_shape = case
    want = ref.depthwise_conv2d(x, filt, bias, p, out_shape)
    assert_same(run_conv(call, "depthwise_conv2d_c4", x, filt, bias, p, out_shape), want)
    if filt.shape[1:3] == (3, 3) and (p.dilation_h, p.dilation_w, p.depth_multiplier) == (1, 1, 1):
        assert_same(run_conv(call, "depthwise_conv2d_3x3", x, filt, bias, p, out_shape), want)


@FEW
@given(h=st.integers(1, 12), w=st.integers(1, 12), c=st.integers(1, 8), mid=st.integers(1, 12),
       kh1=st.integers(1, 5), kh2=st.integers(1, 5), conv_scratch=st.integers(0, 700))
def test_residual_block_scratch_size_matches_the_planner(call, h, w, c, mid, kh1, kh2, conv_scratch):
    from mcugen.passes.stream_residual import block_scratch_bytes

    keep, layers = [], []
    for kh, out_ch, in_ch in ((kh1, mid, c), (kh2, c, mid)):
        keep += [call.struct("mcugen_conv_params", pad_h=(kh - 1) // 2), call.dims((out_ch, kh, 3, in_ch))]
        layers.append(call.ffi.new("mcugen_conv_layer *", {"params": keep[-2], "filter_dims": keep[-1]}))
    size = call.lib.mcugen_residual_block_s8_scratch_size(call.dims((1, h, w, c)), *layers, conv_scratch)
    assert size == block_scratch_bytes((1, h, w, c), mid, (kh1 - 1) // 2, kh2, (kh2 - 1) // 2, conv_scratch)


@CASES
@given(batches=st.integers(1, 3), depth=st.integers(1, 40), units=st.integers(1, 13),
       input_zp=st.integers(-128, 127), filter_zp=st.sampled_from([0, 0, -3, 5, 127]),
       output_zp=st.integers(-128, 127), per_channel=st.booleans(), has_bias=st.booleans(),
       seed=st.integers(0, 2**32 - 1), data=st.data())
def test_fully_connected(call, batches, depth, units, input_zp, filter_zp, output_zp, per_channel,
                         has_bias, seed, data):
    rng = np.random.default_rng(seed)
    x, filt = int8s(rng, (batches, depth)), int8s(rng, (units, depth), lo=-127)
    bias = rng.integers(-30000, 30000, size=units).astype(np.int32) if has_bias else None
    multiplier, shift = multipliers(rng, units, math.sqrt(depth) * 74 * 73, per_channel)
    act_min, act_max = data.draw(act_range(output_zp))
    p = FullyConnectedParams(input_offset=-input_zp, filter_offset=-filter_zp, output_offset=output_zp,
                             multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max)
    params = call.struct("mcugen_fully_connected_params", input_offset=p.input_offset,
                         filter_offset=p.filter_offset, output_offset=output_zp, act_min=act_min,
                         act_max=act_max)
    out, out_ptr = call.buffer(batches * units)
    call.lib.mcugen_fully_connected_s8(params, call.quant(multiplier, shift), call.dims(x.shape), call.i8(x),
                                       call.dims(filt.shape), call.i8(filt), call.i32(bias),
                                       call.dims((batches, units)), out_ptr)
    call.check_guards()
    assert_same(out.reshape(batches, units), ref.fully_connected(x, filt, bias, p))


# ---- pooling and reductions ----

@st.composite
def pool_case(draw):
    kernel = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    n, h, w, c = draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kernel = min(kernel[0], h), min(kernel[1], w)
    oh, pad_h = window_padding(h, kernel[0], stride[0], 1, padding)
    ow, pad_w = window_padding(w, kernel[1], stride[1], 1, padding)
    act_min, act_max = draw(act_range(draw(st.integers(-128, 127))))
    p = PoolParams(filter_h=kernel[0], filter_w=kernel[1], stride_h=stride[0], stride_w=stride[1],
                   pad_h=pad_h, pad_w=pad_w, act_min=act_min, act_max=act_max)
    x = int8s(np.random.default_rng(draw(st.integers(0, 2**32 - 1))), (n, h, w, c))
    return x, p, (n, oh, ow, c)


@pytest.mark.parametrize("kind", ["avg_pool2d", "max_pool2d"])
@CASES
@given(case=pool_case())
def test_pool(call, kind, case):
    x, p, out_shape = case
    params = call.struct("mcugen_pool_params", **vars(p))
    out, out_ptr = call.buffer(int(np.prod(out_shape)))
    getattr(call.lib, f"mcugen_{kind}_s8")(params, call.dims(x.shape), call.i8(x), call.dims(out_shape), out_ptr)
    call.check_guards()
    assert_same(out.reshape(out_shape), getattr(ref, kind)(x, p, out_shape))


@CASES
@given(n=st.integers(1, 2), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 11),
       input_zp=st.integers(-128, 127), output_zp=st.integers(-128, 127),
       multiplier=st.integers(1 << 30, (1 << 31) - 1), shift_adjust=st.integers(-2, 1),
       seed=st.integers(0, 2**32 - 1))
def test_mean_hw(call, n, h, w, c, input_zp, output_zp, multiplier, shift_adjust, seed):
    x = int8s(np.random.default_rng(seed), (n, h, w, c))
    count = h * w
    p = MeanParams(count=count, input_offset=-input_zp, output_offset=output_zp,
                   multiplier=multiplier, shift=shift_adjust - (count.bit_length() - 1))
    out, out_ptr = call.buffer(n * c)
    call.lib.mcugen_mean_hw_s8(call.struct("mcugen_mean_params", **vars(p)), call.dims(x.shape), call.i8(x), out_ptr)
    call.check_guards()
    assert_same(out.reshape(n, 1, 1, c), ref.mean(x, (1, 2), p, (n, 1, 1, c)))


# ---- elementwise ----

def lower_op(kind: str, inputs, output, **attrs):
    """The lowered params of one op on int8 tensors given as (shape, scale, zero_point)."""
    def tensor(name, spec):
        shape, scale, zp = spec
        return Tensor(name, tuple(shape), INT8, Quant(scale, zp))

    names = [f"in{i}" for i in range(len(inputs))]
    tensors = {name: tensor(name, spec) for name, spec in zip(names, inputs)}
    tensors["out"] = tensor("out", output)
    op = Op(kind, names, ["out"], attrs)
    return lower(Graph(tensors, [op], names, ["out"]), op)


SCALES = st.floats(2.0**-8, 2.0**-1)
BROADCAST = st.sampled_from(["same", "scalar", "channel", "first"])


def broadcast_operands(rng, shape, mode: str):
    """(a, b) for the reference, and whether the C call must swap them (input1 broadcast)."""
    small = {"same": shape, "scalar": (1,), "channel": shape[-1:], "first": shape[-1:]}[mode]
    a, b = int8s(rng, shape), int8s(rng, small)
    return (b, a, True) if mode == "first" else (a, b, False)


SWAPPED = {"add": [("input1_offset", "input2_offset"), ("input1_multiplier", "input2_multiplier"),
                   ("input1_shift", "input2_shift")],
           "mul": [("input1_offset", "input2_offset")]}


@pytest.mark.parametrize("kind", ["add", "mul"])
@CASES
@given(shape=st.lists(st.integers(1, 6), min_size=4, max_size=4), mode=BROADCAST,
       s1=SCALES, s2=SCALES, so=SCALES, zps=st.lists(st.integers(-128, 127), min_size=3, max_size=3),
       activation=st.sampled_from(["NONE", "RELU", "RELU6"]), seed=st.integers(0, 2**32 - 1))
def test_elementwise(call, kind, shape, mode, s1, s2, so, zps, activation, seed):
    a, b, swap = broadcast_operands(np.random.default_rng(seed), tuple(shape), mode)
    p = lower_op(kind.upper(), [(a.shape, s1, zps[0]), (b.shape, s2, zps[1])], (shape, so, zps[2]),
                 activation=activation)
    fields = dict(vars(p))
    for f1, f2 in SWAPPED[kind] if swap else []:
        fields[f1], fields[f2] = fields[f2], fields[f1]
    big, small = (b, a) if swap else (a, b)
    out, out_ptr = call.buffer(big.size)
    getattr(call.lib, f"mcugen_{kind}_s8")(call.struct(f"mcugen_{kind}_params", **fields), call.i8(big),
                                           call.i8(small), big.size, small.size, out_ptr)
    call.check_guards()
    assert_same(out.reshape(shape), getattr(ref, kind)(a, b, p, tuple(shape)))


@CASES
@given(size=st.integers(1, 300) | st.integers(512, 1100),  # the second range takes the 256-entry table
       input_zp=st.integers(-128, 127), output_zp=st.integers(-128, 127),
       multiplier=st.integers(1 << 30, (1 << 31) - 1), shift=st.integers(-8, 2),
       seed=st.integers(0, 2**32 - 1), data=st.data())
def test_requantize(call, size, input_zp, output_zp, multiplier, shift, seed, data):
    x = int8s(np.random.default_rng(seed), size)
    act_min, act_max = data.draw(act_range(output_zp))
    p = RequantizeParams(input_offset=-input_zp, output_offset=output_zp, multiplier=multiplier,
                         shift=shift, act_min=act_min, act_max=act_max)
    out, out_ptr = call.buffer(size)
    call.lib.mcugen_requantize_s8(call.struct("mcugen_requantize_params", **vars(p)), size, call.i8(x), out_ptr)
    call.check_guards()
    assert_same(out, ref.requantize(x, p))


@CASES
@given(rows=st.integers(1, 4), depth=st.integers(1, 300), scale=st.floats(2.0**-7, 1.0),
       input_zp=st.integers(-128, 127), beta=st.sampled_from([1.0, 1.0, 0.5, 2.0, 0.037]),
       seed=st.integers(0, 2**32 - 1))
def test_softmax(call, rows, depth, scale, input_zp, beta, seed):
    x = int8s(np.random.default_rng(seed), (rows, depth))
    p = lower_op("SOFTMAX", [(x.shape, scale, input_zp)], (x.shape, 1.0 / 256, -128), beta=beta)
    out, out_ptr = call.buffer(x.size)
    call.lib.mcugen_softmax_s8(call.struct("mcugen_softmax_params", **vars(p)), rows, depth, call.i8(x), out_ptr)
    call.check_guards()
    assert_same(out.reshape(x.shape), ref.softmax(x, p))


@CASES
@given(scale=st.floats(2.0**-9, 2.0**-1), input_zp=st.integers(-128, 127), repeats=st.sampled_from([1, 3]))
def test_logistic_all_inputs(call, scale, input_zp, repeats):
    """Every input once (per element), or shuffled three times over (through the table)."""
    x = np.random.default_rng(input_zp + 128).permutation(np.tile(np.arange(-128, 128), repeats)).astype(np.int8)
    p = lower_op("LOGISTIC", [(x.shape, scale, input_zp)], (x.shape, 1.0 / 256, -128))
    out, out_ptr = call.buffer(x.size)
    call.lib.mcugen_logistic_s8(call.struct("mcugen_logistic_params", **vars(p)), x.size, call.i8(x), out_ptr)
    call.check_guards()
    assert_same(out, ref.logistic(x, p))


@pytest.mark.parametrize("repeats", [1, 3])  # 768 elements: through the table
def test_in_place(call, repeats):
    """Elementwise kernels may write over their (first) input."""
    x = np.tile(np.arange(-128, 128), repeats).astype(np.int8)
    p = RequantizeParams(input_offset=3, output_offset=-7, multiplier=1 << 30, shift=1, act_min=-128, act_max=127)
    buf = x.copy()
    ptr = call.ffi.from_buffer("int8_t[]", buf, require_writable=True)
    call.lib.mcugen_requantize_s8(call.struct("mcugen_requantize_params", **vars(p)), x.size, ptr, ptr)
    assert_same(buf, ref.requantize(x, p))


# ---- data movement ----

@FEW
@given(shape=st.lists(st.integers(1, 5), min_size=4, max_size=4),
       paddings=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=4, max_size=4),
       pad_value=st.integers(-128, 127), seed=st.integers(0, 2**32 - 1))
def test_pad(call, shape, paddings, pad_value, seed):
    x = int8s(np.random.default_rng(seed), shape)
    want = ref.pad(x, paddings, pad_value)
    params = call.ffi.new("mcugen_pad_params *", {"before": [b for b, _ in paddings],
                                                  "after": [a for _, a in paddings], "pad_value": pad_value})
    out, out_ptr = call.buffer(want.size)
    call.lib.mcugen_pad_s8(params, call.dims(shape), call.i8(x), out_ptr)
    call.check_guards()
    assert_same(out.reshape(want.shape), want)


@FEW
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data(),
       seed=st.integers(0, 2**32 - 1))
def test_concatenation(call, shape, data, seed):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(0, len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    xs = [int8s(rng, (*shape[:axis], s, *shape[axis + 1:])) for s in sizes]
    want = ref.concatenation(xs, axis)
    inner = int(np.prod(shape[axis + 1:]))
    pointers = [call.i8(x) for x in xs]
    inputs = call.ffi.new("const int8_t *[]", pointers)
    copy_size = call.i32(np.array([s * inner for s in sizes]))
    out, out_ptr = call.buffer(want.size)
    call.lib.mcugen_concatenation_s8(len(xs), inputs, copy_size, int(np.prod(shape[:axis])), out_ptr)
    call.check_guards()
    assert_same(out.reshape(want.shape), want)


# ---- fixed-point helpers ----

def edge_int32(rng: np.random.Generator, n: int) -> np.ndarray:
    edges = np.array([fp.INT32_MIN, fp.INT32_MIN + 1, -(1 << 30), -1, 0, 1, 1 << 30, fp.INT32_MAX], np.int64)
    return np.concatenate([edges, rng.integers(fp.INT32_MIN, fp.INT32_MAX, size=n, endpoint=True)])


def c_map(fn, *columns) -> np.ndarray:
    return np.array([fn(*(int(c[i]) for c in columns)) for i in range(len(columns[0]))], np.int64)


def test_fixedpoint_primitives(kernels):
    _, lib = kernels
    rng = np.random.default_rng(1)
    a, b = edge_int32(rng, 4000), edge_int32(rng, 4000)[::-1]
    assert_same(c_map(lib.mcugen_sat_rounding_doubling_high_mul, a, b),
                fp.saturating_rounding_doubling_high_mul(a, b))
    exponent = rng.integers(0, 32, size=a.size)
    assert_same(c_map(lib.mcugen_rounding_divide_by_pot, a, exponent), fp.rounding_divide_by_pot(a, exponent))
    acc = rng.integers(-(1 << 24), 1 << 24, size=a.size)
    multiplier = rng.integers(1 << 30, 1 << 31, size=a.size)
    shift = rng.integers(-31, 8, size=a.size)
    assert_same(c_map(lib.mcugen_multiply_by_quantized_multiplier, acc, multiplier, shift),
                fp.multiply_by_quantized_multiplier(acc, multiplier, shift))
    negative = -np.abs(a).clip(0, fp.INT32_MAX)
    for bits in (4, 5):
        assert_same(c_map(lambda v: lib.mcugen_exp_on_negative_values(v, bits), negative),
                    fp.exp_on_negative_values(negative, bits))
    unit = np.abs(a).clip(0, fp.INT32_MAX)
    assert_same(c_map(lib.mcugen_one_over_one_plus_x, unit), fp.one_over_one_plus_x_for_x_in_0_1(unit))


# ---- the host builder ----

TINY_CDEF = "int tiny(int x);"


def test_host_build_is_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("MCUGEN_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "tiny.c"
    source.write_text("int tiny(int x) { return x + 1; }\n")
    _, lib = build_host_module("_tiny", TINY_CDEF, [source], [])
    assert lib.tiny(1) == 2
    assert build_host_module("_tiny", TINY_CDEF, [source], [])[1] is lib
    source.write_text("int tiny(int x) { return x + 2; }\n")
    assert build_host_module("_tiny", TINY_CDEF, [source], [])[1].tiny(1) == 3
    assert len(list((tmp_path / "cache" / "host").iterdir())) == 2


def test_host_build_concurrent(tmp_path):
    """Processes racing to build the same module all get it; one copy stays in the cache."""
    source = tmp_path / "tiny.c"
    source.write_text("int tiny(int x) { return 3 * x; }\n")
    script = ("import sys; from mcugen.toolchain.host import build_host_module; "
              f"print(build_host_module('_tiny', {TINY_CDEF!r}, [sys.argv[1]], [])[1].tiny(5))")
    env = {**os.environ, "MCUGEN_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(source)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    assert [p.communicate()[0].strip() for p in procs] == ["15"] * 3
    assert len(list((tmp_path / "cache" / "host").iterdir())) == 1  # no leftover build dirs


# ---- the C unit tests, through CMake and CTest ----

@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_ctest(tmp_path):
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build)], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "-j", "4"], check=True, capture_output=True)
    result = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
