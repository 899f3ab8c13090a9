"""Mixed-precision (sub-byte) kernels and their code generation, bit for bit against the reference.

Every width combination is compiled (through the same wrappers the code generator writes) and
checked against mcugen/reference/kernels.py on unpacked values: the 27 input x weight x output
widths of each weighted op, the 9 input x output widths of each pooling op, the 27 of ADD.
Signedness is orthogonal to width (only the unpacking differs), so the combinations alternate
signed and unsigned activations, which tries both at every width while compiling each width
combination once. Shapes and parameters come from hypothesis (derandomized); tensor contents
from a numpy generator seeded by a drawn integer. Output and scratch buffers sit between guard
bytes, and the unused bits of an output's last byte must survive the call.

Then whole graphs: an int8 synthetic model re-quantized to a few sub-byte widths (as the quantizer
pass does) goes through select_kernels, plan_memory and code generation, and runs on the host
(cffi) and, marked qemu, as firmware under QEMU.
"""
from __future__ import annotations

import itertools
import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcugen.codegen import mixed
from mcugen.codegen.emit import generate, mixed_sources
from mcugen.codegen.layers import subbyte_capable
from mcugen.errors import UserError
from mcugen.frontend import load_tflite
from mcugen.ir import DType, Graph, Op, Quant, Tensor
from mcugen.pipeline import compile_backend, pack_inputs, unpack_outputs
from mcugen.quant import fixedpoint as fp
from mcugen.quant.lowering import lower, window_padding
from mcugen.quant.packing import pack, packed_size, unpack
from mcugen.quant.params import ConvParams, FullyConnectedParams
from mcugen.reference import kernels as ref
from mcugen.reference.executor import run as run_reference
from mcugen.testing import ModelBuilder
from mcugen.toolchain.host import build_host_module

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "c_kernels"
GUARD = 16
FILL = 0xA5

CASES = settings(derandomize=True, deadline=None, max_examples=12,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

WIDTHS = (2, 4, 8)
W3 = list(itertools.product(WIDTHS, repeat=3))
VARIANTS = {
    **{op: [mixed.Variant(op, ((k % 2 == 0, i),), o, w) for k, (i, w, o) in enumerate(W3)]
       for op in ("conv2d", "depthwise_conv2d", "fully_connected")},
    **{op: [mixed.Variant(op, ((k % 2 == 0, i),), o) for k, (i, o) in enumerate(itertools.product(WIDTHS, WIDTHS))]
       for op in ("avg_pool2d", "max_pool2d")},
    "add": [mixed.Variant("add", ((k % 2 == 0, a), (k // 3 % 2 == 0, b)), o) for k, (a, b, o) in enumerate(W3)],
}

# cffi declarations: the parameter structs of mcugen_kernels.h and one signature per op.
_SIGNATURES = {
    "conv2d": "void {}(void *, const mcugen_conv_params *, const mcugen_quant_params *, const mcugen_dims *, "
              "const uint8_t *, const mcugen_dims *, const uint8_t *, const int32_t *, const mcugen_dims *, "
              "uint8_t *);",
    "fully_connected": "void {}(void *, const mcugen_fully_connected_params *, const mcugen_quant_params *, "
                       "const mcugen_dims *, const uint8_t *, const mcugen_dims *, const uint8_t *, "
                       "const int32_t *, const mcugen_dims *, uint8_t *);",
    "pool": "void {}(const mcugen_pool_params *, const mcugen_dims *, const uint8_t *, const mcugen_dims *, "
            "uint8_t *);",
    "add": "void {}(const mcugen_add_params *, const uint8_t *, const uint8_t *, int32_t, int32_t, uint8_t *);",
}
_SIGNATURE_OF = {"depthwise_conv2d": "conv2d", "avg_pool2d": "pool", "max_pool2d": "pool"}
HELPERS_CDEF = """
int32_t mcugen_mixed_scratch_size(const mcugen_dims *, const mcugen_dims *, const mcugen_dims *);
int32_t mcugen_mixed_depthwise_scratch_size(const mcugen_dims *);
int32_t mcugen_packed_get(const uint8_t *base, int32_t index, int32_t bits, int32_t is_signed);
void mcugen_packed_set(uint8_t *base, int32_t index, int32_t value, int32_t bits);
void mcugen_unpack_run(int16_t *dst, int32_t stride, const uint8_t *base, int32_t first, int32_t count,
                       int32_t offset, int32_t bits, int32_t is_signed);
"""


def _struct_cdef() -> str:
    header = (KERNELS / "include" / "mcugen_kernels.h").read_text()
    return "\n".join(re.findall(r"typedef (?:struct \{.*?\} \w+|void \(\*\w+\)\(.*?\));", header, flags=re.S))


@lru_cache(maxsize=None)
def module(op: str, work: Path):
    """(ffi, lib) with every variant of `op`, instantiated by the code generator's own wrappers;
    op "helpers" has none, only the inline helpers of mcugen_packing.h."""
    variants = VARIANTS.get(op, [])
    (work / op).mkdir(parents=True, exist_ok=True)
    sources = []
    for filename, text in mixed_sources(variants, "test").items():
        (work / op / filename).write_text(text)
        sources.append(work / op / filename)
    signature = _SIGNATURES[_SIGNATURE_OF.get(op, op)] if variants else ""
    cdef = _struct_cdef() + HELPERS_CDEF + "\n".join(signature.format(v.name) for v in variants)
    return build_host_module(f"_mcugen_mixed_{op}", cdef, sources, [KERNELS / "include", KERNELS / "src"],
                             ("-O2", "-std=c99", "-Wall", "-Wextra", "-Werror"),
                             preamble='#include "mcugen_mixed_util.h"')


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mixed")


class Call:
    """Packs arrays for one kernel call and checks, afterwards, that it wrote nothing outside its
    output and scratch buffers: not their guard bytes, nor the unused bits of the output's last
    byte. Packed inputs are followed by random bits, so that reading past them shows too."""

    def __init__(self, ffi, rng: np.random.Generator):
        self.ffi, self.rng = ffi, rng
        self._keep: list = []
        self._checks: list = []

    def packed(self, values, bits: int):
        return self.packed_bytes(pack(values, bits), np.size(values) * bits)

    def packed_bytes(self, raw: bytes, used_bits: int):
        data = np.concatenate([np.frombuffer(raw, np.uint8), self.rng.integers(0, 256, GUARD, dtype=np.uint8)])
        if used_bits % 8:
            data[len(raw) - 1] |= self.rng.integers(0, 256) & (0xFF << (used_bits % 8)) & 0xFF
        self._keep.append(data)
        return self.ffi.from_buffer("uint8_t[]", data)

    def i32(self, values):
        if values is None:
            return self.ffi.NULL
        data = np.ascontiguousarray(values, np.int32)
        self._keep.append(data)
        return self.ffi.from_buffer("int32_t[]", data)

    def dims(self, shape):
        n, h, w, c = (1,) * (4 - len(shape)) + tuple(int(v) for v in shape) if len(shape) != 2 \
            else (shape[0], 1, 1, shape[1])
        return self.ffi.new("mcugen_dims *", [n, h, w, c])

    def struct(self, ctype: str, **fields):
        return self.ffi.new(f"{ctype} *", {k: int(v) for k, v in fields.items()})

    def quant(self, multiplier, shift):
        return self.ffi.new("mcugen_quant_params *", [self.i32(multiplier), self.i32(shift), np.size(multiplier)])

    def buffer(self, nbytes: int, used_bits: int | None = None, initial: bytes = b""):
        """A writable region between guard bytes, filled with `initial`, then random bytes:
        (raw array, pointer)."""
        raw = np.full(nbytes + 2 * GUARD, FILL, np.uint8)
        raw[GUARD:GUARD + nbytes] = self.rng.integers(0, 256, nbytes)
        raw[GUARD:GUARD + len(initial)] = np.frombuffer(initial, np.uint8)
        before = raw.copy()
        spare = (-used_bits) % 8 if used_bits is not None else 0
        self._checks.append((raw, before, nbytes, spare))
        return raw, self.ffi.from_buffer("uint8_t[]", raw[GUARD:], require_writable=True)

    def output(self, raw, bits: int, count: int, signed: bool) -> np.ndarray:
        for buf, before, nbytes, spare in self._checks:
            assert (buf[:GUARD] == FILL).all() and (buf[GUARD + nbytes:] == FILL).all(), "write out of bounds"
            if spare:  # bits after the last element belong to no one
                mask = (0xFF << (8 - spare)) & 0xFF
                assert buf[GUARD + nbytes - 1] & mask == before[GUARD + nbytes - 1] & mask, "spare bits changed"
        return unpack(raw[GUARD:].tobytes(), bits, count, signed)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    got, want = np.asarray(got, np.int64).reshape(-1), np.asarray(want, np.int64).reshape(-1)
    if not np.array_equal(got, want):
        bad = np.flatnonzero(got != want)
        first = bad[0]
        raise AssertionError(f"{bad.size} of {got.size} differ; first at {first}: C {got[first]} != ref {want[first]}")


# ---- parameter strategies ----

def dtype(signed: bool, bits: int) -> DType:
    return DType("int", bits, signed)


def values(rng: np.random.Generator, t: DType, shape) -> np.ndarray:
    return rng.integers(t.qmin, t.qmax + 1, size=shape).astype(np.int64)


@st.composite
def output_type(draw, bits: int):
    """(DType, zero point, act_min, act_max) of an output: signed or not, a fused-activation-like
    clamp inside its range."""
    t = dtype(draw(st.booleans()), bits)
    zp = draw(st.integers(t.qmin, t.qmax))
    kind = draw(st.sampled_from(["NONE", "RELU", "RANGE"]))
    if kind == "NONE":
        return t, zp, t.qmin, t.qmax
    if kind == "RELU":
        return t, zp, zp, t.qmax
    lo = draw(st.integers(t.qmin, t.qmax))
    return t, zp, lo, draw(st.integers(lo, t.qmax))


def multipliers(rng, channels: int, acc_std: float, out_bits: int, per_channel: bool):
    """Outputs spread over about a quarter of the output range, channels up to 2**+-2 apart."""
    reals = (1 << out_bits) / 4 / max(acc_std, 1.0) * 2.0 ** rng.uniform(-2, 2, channels if per_channel else 1)
    pairs = [fp.quantize_multiplier(float(r)) for r in reals]
    return np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32)


def spread(t: DType) -> float:
    return (t.qmax - t.qmin + 1) / math.sqrt(12)


@st.composite
def conv_case(draw, variant: mixed.Variant, depthwise: bool, groups: bool = False):
    """A conv (or depthwise) call; `groups`: depthwise with channels a multiple of 4 and depth
    multiplier 1, the case whose four-channel groups are read and written as whole bytes."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 7)), draw(st.integers(1, 7))
    (oh, pad_h), (ow, pad_w) = (window_padding(size, k, s, d, padding)
                                for size, k, s, d in ((h, kh, stride[0], dilation[0]), (w, kw, stride[1], dilation[1])))
    if oh < 1 or ow < 1:  # a VALID window larger than the input: shrink the filter instead
        kh, kw, dilation, padding = 1, 1, (1, 1), "VALID"
        oh, pad_h = window_padding(h, 1, stride[0], 1, "VALID")
        ow, pad_w = window_padding(w, 1, stride[1], 1, "VALID")
    in_ch = 4 * draw(st.integers(1, 2)) if groups else draw(st.integers(1, 7))
    dm = draw(st.integers(1, 3)) if depthwise and not groups else 1
    out_ch = in_ch * dm if depthwise else draw(st.integers(1, 7))
    (in_signed, in_bits), = variant.inputs
    x_type, w_type = dtype(in_signed, in_bits), dtype(True, variant.weight_bits)
    out_type, out_zp, act_min, act_max = draw(output_type(variant.out_bits))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = values(rng, x_type, (n, h, w, in_ch))
    filt = values(rng, w_type, (1, kh, kw, out_ch) if depthwise else (out_ch, kh, kw, in_ch))
    bias = rng.integers(-3000, 3000, size=out_ch).astype(np.int32) if draw(st.booleans()) else None
    taps = kh * kw * (1 if depthwise else in_ch)
    multiplier, shift = multipliers(rng, out_ch, math.sqrt(taps) * spread(x_type) * spread(w_type),
                                    variant.out_bits, draw(st.booleans()))
    p = ConvParams(stride_h=stride[0], stride_w=stride[1], dilation_h=dilation[0], dilation_w=dilation[1],
                   pad_h=pad_h, pad_w=pad_w, depth_multiplier=dm,
                   input_offset=-draw(st.integers(x_type.qmin, x_type.qmax)), output_offset=out_zp,
                   multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max)
    return x, filt, bias, p, (n, oh, ow, out_ch), out_type, rng


def _params(call: Call, ctype: str, params, skip=("multiplier", "shift")):
    return call.struct(ctype, **{k: v for k, v in vars(params).items() if k not in skip})


def run_weighted(lib, ffi, variant, kind: str, x, filt, bias, p, out_shape, out_type, rng, x_dims, f_dims):
    call = Call(ffi, rng)
    (_, in_bits), = variant.inputs
    weights = mixed.packed_weights(Tensor("w", filt.shape, DType("int", variant.weight_bits), data=filt.astype(np.int8)))
    count = int(np.prod(out_shape))
    in_dims, fil_dims, out_dims = call.dims(x_dims), call.dims(f_dims), call.dims(out_shape)
    out, out_ptr = call.buffer(packed_size(count, out_type.bits), count * out_type.bits)
    scratch = lib.mcugen_mixed_depthwise_scratch_size(fil_dims) if kind == "DEPTHWISE_CONV_2D" \
        else lib.mcugen_mixed_scratch_size(in_dims, fil_dims, out_dims)
    _, scratch_ptr = call.buffer(scratch)
    ctype = "mcugen_fully_connected_params" if kind == "FULLY_CONNECTED" else "mcugen_conv_params"
    getattr(lib, variant.name)(scratch_ptr, _params(call, ctype, p), call.quant(p.multiplier, p.shift), in_dims,
                               call.packed(x, in_bits), fil_dims,
                               call.packed_bytes(weights.tobytes(), filt.size * variant.weight_bits),
                               call.i32(bias), out_dims, out_ptr)
    return call.output(out, out_type.bits, count, out_type.signed).reshape(out_shape)


# ---- packing ----

@settings(CASES, max_examples=200)
@given(bits=st.sampled_from(WIDTHS), signed=st.booleans(), count=st.integers(0, 70), seed=st.integers(0, 2**32 - 1))
def test_pack_round_trip(bits, signed, count, seed):
    t = dtype(signed, bits)
    data = values(np.random.default_rng(seed), t, count)
    raw = pack(data, bits)
    assert len(raw) == packed_size(count, bits) == (count * bits + 7) // 8
    back = unpack(raw, bits, count, signed)
    assert back.dtype == t.numpy and np.array_equal(back, data)
    assert pack(back, bits) == raw
    if count * bits % 8:  # unused bits after the last element are 0
        assert raw[-1] >> (count * bits % 8) == 0


def test_pack_layout():
    """Element 0 in the low bits: TFLM's int4 nibble order, and the same rule at 2 bits."""
    assert pack([1, -2, 7], 4) == bytes([0xE1, 0x07])
    assert pack([1, 2, 3, 0, 3], 2) == bytes([0b00111001, 0b11])
    assert pack(np.array([-128, 127, 0], np.int8), 8) == bytes([0x80, 0x7F, 0x00])
    with pytest.raises(ValueError):
        pack([16], 4)  # neither int4 nor uint4


def test_reader_int4_matches_packing():
    """The .tflite reader's int4 decoding and mcugen.quant.packing agree on a sample."""
    from mcugen.frontend.tflite_reader import _decode

    data = np.arange(-8, 8).repeat(3)[:45]
    decoded = _decode(pack(data, 4), DType("int", 4), np.int8, (45,), "w")
    assert np.array_equal(decoded, data)


@settings(CASES, max_examples=150)
@given(bits=st.sampled_from(WIDTHS), signed=st.booleans(), count=st.integers(1, 40), first=st.integers(0, 9),
       stride=st.integers(1, 3), offset=st.integers(-255, 255), seed=st.integers(0, 2**32 - 1))
def test_c_packing_helpers(work, bits, signed, count, first, stride, offset, seed):
    """mcugen_packing.h reads and writes the layout of mcugen.quant.packing, at any alignment."""
    ffi, lib = module("helpers", work)
    rng = np.random.default_rng(seed)
    t = dtype(signed, bits)
    data = values(rng, t, first + count)
    raw = np.frombuffer(pack(data, bits), np.uint8).copy()
    ptr = ffi.from_buffer("uint8_t[]", raw, require_writable=True)
    assert [lib.mcugen_packed_get(ptr, i, bits, signed) for i in range(first + count)] == data.tolist()
    dst = np.zeros(count * stride, np.int16)
    lib.mcugen_unpack_run(ffi.from_buffer("int16_t[]", dst, require_writable=True), stride, ptr, first, count,
                          offset, bits, signed)
    assert np.array_equal(dst[::stride], data[first:] + offset) and not dst.reshape(-1, stride)[:, 1:].any()
    new = values(rng, t, count)
    for i, v in enumerate(new):
        lib.mcugen_packed_set(ptr, first + i, int(v), bits)
    assert np.array_equal(unpack(raw.tobytes(), bits, first + count, signed), np.concatenate([data[:first], new]))


# ---- weighted ops: every width combination ----

def each_variant(op: str, work: Path, check) -> None:
    """check(ffi, lib, variant) for every variant of op, naming the variant of a failure."""
    ffi, lib = module(op, work)
    for variant in VARIANTS[op]:
        try:
            check(ffi, lib, variant)
        except AssertionError as exc:
            raise AssertionError(f"{variant.name}: {exc}") from exc


def test_conv2d(work):
    each_variant("conv2d", work, conv_checker("CONV_2D", ref.conv2d, depthwise=False))


@pytest.mark.parametrize("groups", [False, True])
def test_depthwise_conv2d(work, groups):
    each_variant("depthwise_conv2d", work,
                 conv_checker("DEPTHWISE_CONV_2D", ref.depthwise_conv2d, depthwise=True, groups=groups))


def conv_checker(kind, reference, depthwise, groups=False):
    """Property check of one conv-like variant against its reference kernel."""
    def check_variant(ffi, lib, variant):
        @CASES
        @given(case=conv_case(variant, depthwise=depthwise, groups=groups))
        def check(case):
            x, filt, bias, p, out_shape, out_type, rng = case
            got = run_weighted(lib, ffi, variant, kind, x, filt, bias, p, out_shape, out_type, rng,
                               x.shape, filt.shape)
            assert_same(got, reference(x, filt, bias, p, out_shape))

        check()
    return check_variant


def test_fully_connected(work):
    each_variant("fully_connected", work, check_fully_connected)


def check_fully_connected(ffi, lib, variant):
    (in_signed, in_bits), = variant.inputs
    x_type, w_type = dtype(in_signed, in_bits), dtype(True, variant.weight_bits)

    @CASES
    @given(batches=st.integers(1, 3), depth=st.integers(1, 37), units=st.integers(1, 9),
           input_zp=st.integers(x_type.qmin, x_type.qmax), filter_zp=st.sampled_from([0, 0, 0, 1, w_type.qmin]),
           out=output_type(variant.out_bits), per_channel=st.booleans(), has_bias=st.booleans(),
           seed=st.integers(0, 2**32 - 1))
    def check(batches, depth, units, input_zp, filter_zp, out, per_channel, has_bias, seed):
        out_type, out_zp, act_min, act_max = out
        rng = np.random.default_rng(seed)
        x, filt = values(rng, x_type, (batches, depth)), values(rng, w_type, (units, depth))
        bias = rng.integers(-3000, 3000, size=units).astype(np.int32) if has_bias else None
        multiplier, shift = multipliers(rng, units, math.sqrt(depth) * spread(x_type) * spread(w_type),
                                        variant.out_bits, per_channel)
        p = FullyConnectedParams(input_offset=-input_zp, filter_offset=-filter_zp, output_offset=out_zp,
                                 multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max)
        got = run_weighted(lib, ffi, variant, "FULLY_CONNECTED", x, filt, bias, p, (batches, units), out_type, rng,
                           (batches, depth), (units, depth))
        assert_same(got, ref.fully_connected(x, filt, bias, p))

    check()


# ---- pooling and ADD: every width combination, parameters from the lowering of a one-op graph ----

def one_op_graph(kind: str, inputs: list[Tensor], output: Tensor, **attrs) -> tuple[Graph, Op]:
    op = Op(kind, [t.name for t in inputs], [output.name], attrs)
    tensors = {t.name: t for t in [*inputs, output]}
    return Graph(tensors, [op], [t.name for t in inputs], [output.name]), op


def activation(name: str, shape, t: DType, scale: float, zp: int) -> Tensor:
    return Tensor(name, tuple(shape), t, Quant([scale], [zp]))


@pytest.mark.parametrize("op", ["avg_pool2d", "max_pool2d"])
def test_pool(work, op):
    each_variant(op, work, check_pool)


def check_pool(ffi, lib, variant):
    (in_signed, in_bits), = variant.inputs
    x_type = dtype(in_signed, in_bits)
    kind = "AVERAGE_POOL_2D" if variant.op == "avg_pool2d" else "MAX_POOL_2D"
    reference = ref.avg_pool2d if variant.op == "avg_pool2d" else ref.max_pool2d

    @CASES
    @given(shape=st.tuples(st.integers(1, 2), st.integers(1, 7), st.integers(1, 7), st.integers(1, 9)),
           pool=st.tuples(st.integers(1, 3), st.integers(1, 3)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
           padding=st.sampled_from(["SAME", "VALID"]), act=st.sampled_from(["NONE", "RELU", "RELU6"]),
           out_signed=st.booleans(), zp=st.integers(-128, 255), seed=st.integers(0, 2**32 - 1))
    def check(shape, pool, stride, padding, act, out_signed, zp, seed):
        n, h, w, c = shape
        pool = (min(pool[0], h), min(pool[1], w))  # VALID windows must fit
        oh, _ = window_padding(h, pool[0], stride[0], 1, padding)
        ow, _ = window_padding(w, pool[1], stride[1], 1, padding)
        out_t = dtype(out_signed, variant.out_bits)
        zp = int(np.clip(zp, max(x_type.qmin, out_t.qmin), min(x_type.qmax, out_t.qmax)))
        x_t, y_t = activation("x", shape, x_type, 0.05, zp), activation("y", (n, oh, ow, c), out_t, 0.05, zp)
        graph, op = one_op_graph(kind, [x_t], y_t, filter=pool, stride=stride, padding=padding, activation=act)
        p = lower(graph, op)
        rng = np.random.default_rng(seed)
        x = values(rng, x_type, shape)
        call = Call(ffi, rng)
        count = y_t.size
        out, out_ptr = call.buffer(packed_size(count, out_t.bits), count * out_t.bits)
        getattr(lib, variant.name)(_params(call, "mcugen_pool_params", p, ()), call.dims(shape),
                                   call.packed(x, in_bits), call.dims(y_t.shape), out_ptr)
        got = call.output(out, out_t.bits, count, out_t.signed)
        assert_same(got, reference(x.astype(np.int16), p, y_t.shape))

    check()


def test_add(work):
    each_variant("add", work, check_add)


def check_add(ffi, lib, variant):
    (s1, b1), (s2, b2) = variant.inputs
    t1, t2 = dtype(s1, b1), dtype(s2, b2)

    @CASES
    @given(shape=st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(1, 5), st.integers(1, 9)),
           broadcast=st.sampled_from(["same", "channel", "scalar"]), scales=st.tuples(*[st.floats(0.01, 1.0)] * 3),
           zps=st.tuples(st.integers(t1.qmin, t1.qmax), st.integers(t2.qmin, t2.qmax)),
           out=output_type(variant.out_bits), act=st.sampled_from(["NONE", "RELU"]),
           in_place=st.booleans(), seed=st.integers(0, 2**32 - 1))
    def check(shape, broadcast, scales, zps, out, act, in_place, seed):
        out_type, out_zp, _, _ = out
        shape2 = {"same": shape, "channel": (shape[-1],), "scalar": (1,)}[broadcast]
        a_t, b_t = activation("a", shape, t1, scales[0], zps[0]), activation("b", shape2, t2, scales[1], zps[1])
        y_t = activation("y", shape, out_type, scales[2], out_zp)
        graph, op = one_op_graph("ADD", [a_t, b_t], y_t, activation=act)
        p = lower(graph, op)
        rng = np.random.default_rng(seed)
        a, b = values(rng, t1, shape), values(rng, t2, shape2)
        call = Call(ffi, rng)
        count = a_t.size
        in_place = in_place and b1 == out_type.bits  # in place: output over input1, same width
        out_buf, out_ptr = call.buffer(packed_size(count, out_type.bits), count * out_type.bits,
                                       pack(a, b1) if in_place else b"")
        a_ptr = out_ptr if in_place else call.packed(a, b1)
        getattr(lib, variant.name)(_params(call, "mcugen_add_params", p, ()), a_ptr, call.packed(b, b2), count,
                                   b_t.size, out_ptr)
        assert_same(call.output(out_buf, out_type.bits, count, out_type.signed), ref.add(a, b, p, shape))

    check()


# ---- whole graphs: re-quantized to sub-byte widths, generated, run ----

def requantize_activation(graph: Graph, name: str, t: DType) -> None:
    """What the quantizer pass does to an activation: the int8 tensor's real range (clipped at 0
    for an unsigned type, as after a ReLU) spread over the narrower type."""
    tensor = graph.tensor(name)
    s, zp = tensor.quant.s, tensor.quant.zp
    lo, hi = s * (tensor.dtype.qmin - zp), s * (tensor.dtype.qmax - zp)
    lo = lo if t.signed else max(lo, 0.0)
    scale = float(np.float32((hi - lo) / (t.qmax - t.qmin)))
    tensor.dtype, tensor.quant = t, Quant([scale], [int(np.clip(round(t.qmin - lo / scale), t.qmin, t.qmax))])


def requantize_weights(graph: Graph, op: Op, bits: int) -> None:
    """Symmetric per-channel `bits`-bit weights from the int8 ones (dequantize, rescale, round)."""
    w = graph.tensor(op.inputs[1])
    axis = w.quant.axis or 0
    shape = [-1 if a == axis else 1 for a in range(w.data.ndim)]
    real = w.data * w.quant.scale.reshape(shape)
    limit = (1 << (bits - 1)) - 1
    scale = np.maximum(np.abs(real).max(axis=tuple(a for a in range(real.ndim) if a != axis)), 1e-8) / limit
    w.data = np.clip(np.round(real / scale.reshape(shape)), -limit, limit).astype(np.int8)
    w.dtype, w.quant = DType("int", bits), Quant(scale.astype(np.float32), np.zeros(scale.size), axis)


def rescale_biases(graph: Graph, old: Graph) -> None:
    """Biases keep their real value at their new scale, input scale x weight scale."""
    for op in graph.ops:
        if op.kind in mixed.WEIGHTED and len(op.inputs) > 2 and op.inputs[2] is not None:
            b, b_old = graph.tensor(op.inputs[2]), old.tensor(op.inputs[2])
            scale = graph.tensor(op.inputs[0]).quant.s * graph.tensor(op.inputs[1]).quant.scale
            real = b_old.data * b_old.quant.scale
            b.data = np.round(real / scale).astype(np.int32)
            b.quant = Quant(scale, np.zeros(scale.size), 0)


def sample_graph() -> Graph:
    """A small network over a handful of variants, packed graph input and output included:
    int4 in -> conv i4w8o4 (unsigned out) -> depthwise u4w2o4 -> max pool u4o4 -> conv 1x1 u4w4o2
    -> ADD i2u4o8 -> avg pool (int8 kernel) -> reshape -> fully connected i8w4o4 -> int4 out."""
    b = ModelBuilder(7)
    x = b.input((1, 8, 8, 3))
    c1 = b.conv2d(x, 6, activation="RELU")
    d1 = b.depthwise_conv2d(c1, activation="RELU")
    p1 = b.max_pool(d1)
    c2 = b.conv2d(p1, 6, kernel=(1, 1), activation="NONE", per_channel=False)
    a1 = b.add(c2, p1)
    ap = b.avg_pool(a1)
    fc = b.fully_connected(b.reshape(ap, (1, 24)), 5)
    int8 = load_tflite(b.finish([fc]))
    graph = int8.copy()
    conv1, dw, pool, conv2, add, _, _, fully = graph.ops
    requantize_activation(graph, graph.inputs[0], DType("int", 4))
    requantize_activation(graph, conv1.outputs[0], DType("int", 4, signed=False))
    requantize_activation(graph, dw.outputs[0], DType("int", 4, signed=False))
    graph.tensor(pool.outputs[0]).dtype = DType("int", 4, signed=False)  # pools keep their input's quant
    graph.tensor(pool.outputs[0]).quant = graph.tensor(pool.inputs[0]).quant
    requantize_activation(graph, conv2.outputs[0], DType("int", 2))
    requantize_activation(graph, fully.outputs[0], DType("int", 4))
    for op, bits in ((dw, 2), (conv2, 4), (fully, 4)):
        requantize_weights(graph, op, bits)
    rescale_biases(graph, int8)
    return graph


EXPECTED_KERNELS = ["mcugen_conv2d_i4w8o4", "mcugen_depthwise_conv2d_u4w2o4", "mcugen_max_pool2d_u4o4",
                    "mcugen_conv2d_u4w4o2", "mcugen_add_i2u4o8", "mcugen_avg_pool2d_s8", None,
                    "mcugen_fully_connected_i8w4o4"]


def write_output_dir(graph: Graph, out: Path, board: str) -> Path:
    """OUT/ as `mcugen build` leaves it, from an already compressed graph."""
    import json

    from mcugen.ir_io import save_graph
    from mcugen.pipeline import BUILD_INFO

    generate(compile_backend(graph), out, "mixed", "synthetic")
    save_graph(graph, out)
    (out / BUILD_INFO).write_text(json.dumps({"model": "synthetic", "board": board, "name": "mixed"}))
    return out


def test_sample_graph_generates_only_its_variants(tmp_path):
    graph = compile_backend(sample_graph())
    assert [op.attrs["kernel"] for op in graph.ops] == EXPECTED_KERNELS
    generate(graph, tmp_path / "a", "mixed", "synthetic")
    src = sorted(p.name for p in (tmp_path / "a" / "kernels" / "src").iterdir())
    assert src == ["mixed_add.h", "mixed_add_variants.c", "mixed_conv2d.h", "mixed_conv2d_variants.c",
                   "mixed_depthwise_conv2d.h", "mixed_depthwise_conv2d_variants.c", "mixed_fully_connected.h",
                   "mixed_fully_connected_variants.c", "mixed_max_pool2d.h", "mixed_max_pool2d_variants.c",
                   "pool2d.c"]
    wrapper = (tmp_path / "a" / "kernels" / "src" / "mixed_conv2d_variants.c").read_text()
    assert wrapper.count('#include "mixed_conv2d.h"') == 2
    assert "#define MCUGEN_W_BITS 8" in wrapper and "#define MCUGEN_IN_SIGNED 0" in wrapper
    # weights: packed at their width (depthwise 3x3x6 at 2 bits: 54 elements, 14 bytes)
    weights = (tmp_path / "a" / "mixed_weights.h").read_text()
    assert re.search(r"extern const uint8_t \w+\[14\];", weights)
    # scratch as mcugen_mixed_scratch_size() says, in the plan
    ffi, lib = module("helpers", tmp_path / "w")
    for op in (op for op in graph.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D")):
        dims = [ffi.new("mcugen_dims *", list(graph.tensor(n).shape)) for n in (*op.inputs[:2], op.outputs[0])]
        size = lib.mcugen_mixed_depthwise_scratch_size(dims[1]) if op.kind == "DEPTHWISE_CONV_2D" \
            else lib.mcugen_mixed_scratch_size(*dims)
        assert op.attrs["scratch_bytes"] == size
    generate(graph, tmp_path / "b", "mixed", "synthetic")  # deterministic
    for path in sorted((tmp_path / "a").rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes(), path


def test_sample_graph_bit_exact_on_host(tmp_path):
    from mcugen.pipeline import verify_output_dir

    out = write_output_dir(sample_graph(), tmp_path / "out", "stm32f746")
    result = verify_output_dir(out, "host", count=6, seed=0)
    assert result.ok, result.first_mismatch


def test_packed_io_round_trip():
    graph = compile_backend(sample_graph())
    from mcugen.inputs import random_inputs

    sets = random_inputs(graph, 2, seed=1)
    raw = pack_inputs(graph, sets)
    assert len(raw) == 2 * graph.attrs["memory_plan"].input_bytes == 2 * 96  # 8x8x3 int4
    out_bytes = graph.attrs["memory_plan"].output_bytes
    outputs = [run_reference(graph, s) for s in sets]
    packed = b"".join(pack(o[0], 4) for o in outputs)
    assert len(packed) == 2 * out_bytes
    for want, got in zip(outputs, unpack_outputs(graph, packed, 2)):
        assert np.array_equal(want[0], got[0])


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["stm32f746", "gap8"])
def test_sample_graph_bit_exact_under_qemu(tmp_path, board):
    from mcugen.boards import load_board
    from mcugen.pipeline import verify_output_dir
    from mcugen.toolchain.firmware import toolchain_available

    if not toolchain_available(load_board(board)):
        pytest.skip(f"cross toolchain or QEMU for {board} not installed")
    out = write_output_dir(sample_graph(), tmp_path / "out", board)
    result = verify_output_dir(out, "qemu", count=6, seed=0)
    assert result.ok, result.first_mismatch



def dsp_graph(seed: int) -> Graph:
    """conv -> depthwise -> 1x1 conv -> reshape -> fully connected at widths drawn per tensor, for
    the Cortex-M paths of the mixed kernels: SXTB16 weight pairs (8-bit weights, depths with a
    tail), the SMMLAR requantization, and the general one where a channel's shift is -1 or a left
    shift (output scale divided by up to 256), outputs gathered into bytes at channel counts that
    leave runs sharing a byte, unsigned 8-bit outputs clamped to 0..255 (the first conv's, at
    even seeds); the depthwise's four-channel groups read and written as whole bytes (4 or 8
    channels, depth multiplier 1, at seeds 3 and 7) and its signed input (seeds 1, 4 and 7).
    Every layer's output is a graph output, so that none hides another's error."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder(seed)
    groups, signed_mid = seed % 4 == 3, seed % 3 == 1
    x = b.input((1, int(rng.integers(3, 7)), int(rng.integers(3, 7)), int(rng.integers(1, 6))))
    mid = int(rng.integers(1, 9))
    c1 = b.conv2d(x, 4 * (1 + mid % 2) if groups else mid,
                  kernel=(int(rng.integers(1, 4)), int(rng.integers(1, 4))), activation="RELU")
    dm = int(rng.integers(1, 3))
    d1 = b.depthwise_conv2d(c1, depth_multiplier=1 if groups else dm, activation="RELU")
    c2 = b.conv2d(d1, int(rng.integers(1, 9)), kernel=(1, 1), activation="NONE")
    r = b.reshape(c2, (1, -1))
    int8 = load_tflite(b.finish([b.fully_connected(r, int(rng.integers(1, 9))), c1, d1, c2]))
    graph = int8.copy()
    conv1, dw, conv2, reshape, fully = graph.ops
    width = lambda: int(rng.choice(WIDTHS))  # noqa: E731
    requantize_activation(graph, graph.inputs[0], DType("int", width()))
    for op, signed in ((conv1, signed_mid), (dw, False), (conv2, True), (fully, True)):
        wide = op is conv1 and seed % 2 == 0 and not signed_mid
        requantize_activation(graph, op.outputs[0], DType("int", 8 if wide else width(), signed=signed))
        if not wide and rng.random() < 0.3:
            t = graph.tensor(op.outputs[0])
            t.quant = Quant(t.quant.scale / 2.0 ** rng.integers(3, 9), t.quant.zero_point)
    graph.tensor(reshape.outputs[0]).dtype = graph.tensor(conv2.outputs[0]).dtype
    graph.tensor(reshape.outputs[0]).quant = graph.tensor(conv2.outputs[0]).quant
    for op in (conv1, dw, conv2, fully):
        bits = width()
        if bits < 8:
            requantize_weights(graph, op, bits)
    rescale_biases(graph, int8)
    return graph


@pytest.mark.qemu
@pytest.mark.parametrize("seed", range(8))
def test_dsp_paths_bit_exact_under_qemu(tmp_path, seed):
    from mcugen.boards import load_board
    from mcugen.pipeline import verify_output_dir
    from mcugen.toolchain.firmware import toolchain_available

    if not toolchain_available(load_board("stm32f746")):
        pytest.skip("cross toolchain or QEMU for stm32f746 not installed")
    out = write_output_dir(dsp_graph(seed), tmp_path / "out", "stm32f746")
    for where in ("host", "qemu"):
        result = verify_output_dir(out, where, count=4, seed=seed)
        assert result.ok, (where, result.first_mismatch)


# ---- what may go sub-byte, and what is refused ----

def test_subbyte_capable_and_refusal():
    b = ModelBuilder(3)
    x = b.input((1, 6, 6, 4))
    c = b.conv2d(x, 4)
    r = b.reshape(c, (1, 144))
    f = b.fully_connected(r, 6)
    s = b.softmax(f)
    graph = load_tflite(b.finish([s]))
    conv, reshape, fully, softmax = graph.ops
    assert subbyte_capable(graph, conv.inputs[0]) and subbyte_capable(graph, conv.inputs[1])
    assert not subbyte_capable(graph, conv.inputs[2])  # bias
    assert subbyte_capable(graph, conv.outputs[0]) and subbyte_capable(graph, reshape.outputs[0])  # via the reshape
    assert subbyte_capable(graph, fully.inputs[1])
    assert not subbyte_capable(graph, fully.outputs[0]) and not subbyte_capable(graph, softmax.outputs[0])

    for tensor in (conv.outputs[0], reshape.outputs[0]):  # both sides of a reshape change together
        requantize_activation(graph, tensor, DType("int", 4))
    compile_backend(graph)
    requantize_activation(graph, fully.outputs[0], DType("int", 4))
    with pytest.raises(UserError, match=r"softmax.*is int4, but SOFTMAX has only an int8 kernel"):
        compile_backend(graph)


def test_reshape_changing_width_is_refused():
    b = ModelBuilder(4)
    r = b.reshape(b.conv2d(b.input((1, 4, 4, 2)), 2), (1, 32))
    graph = load_tflite(b.finish([b.fully_connected(r, 3)]))
    requantize_activation(graph, graph.ops[0].outputs[0], DType("int", 4))
    with pytest.raises(UserError, match="RESHAPE.*same type"):
        compile_backend(graph)
