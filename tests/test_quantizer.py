"""The bits-generic quantizer, ICN, sub-byte lowering and the reference on sub-byte graphs.

The semantic check: every op of a sub-byte graph, run by the integer reference, stays within one
output step of the same op computed in real numbers on the dequantized inputs and weights — so
the integers mean what their scales say, at every width.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_model
from mcugen.frontend import load_tflite
from mcugen.inputs import random_inputs
from mcugen.ir import INT8, UINT4, DType, Graph, Quant, Tensor
from mcugen.ir_io import load_graph, save_graph
from mcugen.quant.fidelity import compare, real, run_many, sqnr_db
from mcugen.quant.icn import requant_method
from mcugen.quant.fixedpoint import multiply_by_quantized_multiplier
from mcugen.quant.lowering import activation_range as clamp_bounds
from mcugen.quant.lowering import lower
from mcugen.quant.quantizer import (
    WEIGHTED_OPS,
    Quantizer,
    activation_groups,
    activation_range,
    affine,
    dequantize_graph,
    quantize_graph,
    symmetric_weights,
)
from mcugen.passes.assign_bits import subbyte_groups
from mcugen.reference import executor, float_executor
from mcugen.testing import random_model


def _widths(graph: Graph, rng: np.random.Generator) -> dict[str, int]:
    """Random widths for every weight and every sub-byte-capable activation group."""
    widths = {op.inputs[1]: int(rng.choice([8, 4, 2])) for op in graph.ops if op.kind in WEIGHTED_OPS}
    for members in subbyte_groups(graph):
        bits = int(rng.choice([8, 4, 2]))
        widths.update({n: bits for n in members})
    return widths


def _same_graph(a: Graph, b: Graph) -> bool:
    def same(t: Tensor, u: Tensor) -> bool:
        quant_same = (t.quant is None) == (u.quant is None) and (
            t.quant is None or (np.array_equal(t.quant.scale, u.quant.scale)
                                and np.array_equal(t.quant.zero_point, u.quant.zero_point) and t.quant.axis == u.quant.axis))
        data_same = (t.data is None) == (u.data is None) and (t.data is None or np.array_equal(t.data, u.data))
        return t.shape == u.shape and t.dtype == u.dtype and quant_same and data_same

    return list(a.tensors) == list(b.tensors) and all(same(a.tensors[n], b.tensors[n]) for n in a.tensors)


# ---- scales ----

@pytest.mark.parametrize("bits", [4, 2])
def test_sub_byte_weight_scales_beat_min_max_and_stay_in_range(bits):
    rng = np.random.default_rng(0)
    w = rng.standard_t(3, size=(6, 3, 3, 5))  # heavy tails: min/max clipping is a poor choice
    q, scale = symmetric_weights(w, bits, axis=0)
    assert q.dtype == np.int8 and q.shape == w.shape and scale.shape == (6,)
    assert q.min() >= -(1 << (bits - 1)) and q.max() <= (1 << (bits - 1)) - 1
    err = np.sum((q * scale[:, None, None, None] - w) ** 2)
    minmax = np.abs(w).reshape(6, -1).max(axis=1) / ((1 << (bits - 1)) - 1)
    q_mm = np.clip(np.round(w / minmax[:, None, None, None]), -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    assert err < np.sum((q_mm * minmax[:, None, None, None] - w) ** 2)


def test_weight_axis_follows_tflite_layouts():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(1, 3, 3, 7))  # depthwise 1HWC: channels on axis 3
    q, scale = symmetric_weights(w, 4, axis=3)
    q0, scale0 = symmetric_weights(np.moveaxis(w, 3, 0), 4, axis=0)
    assert scale.shape == (7,) and np.array_equal(scale, scale0) and np.array_equal(q, np.moveaxis(q0, 0, 3))
    q8, scale8 = symmetric_weights(w, 8, axis=None)  # 8 bits: TFLite's [-127, 127] at min/max
    assert scale8.shape == (1,) and np.abs(q8).max() == 127
    assert scale8[0] == pytest.approx(np.abs(w).max() / 127, rel=1e-6)


def test_activation_ranges():
    rng = np.random.default_rng(2)
    relu = np.maximum(rng.normal(size=20000), 0)
    lo, hi = activation_range(relu, 4)
    assert lo == 0 and 0 < hi < relu.max()  # MSE clips the tail
    assert activation_range(relu, 8) == (0.0, relu.max())
    signed = rng.laplace(size=20000) + 0.5
    lo, hi = activation_range(signed, 2)
    assert signed.min() <= lo < 0 < hi <= signed.max()
    for bits, low in ((4, 0.0), (2, -1.0), (8, -3.0)):
        dtype = DType("int", bits, signed=low < 0 or bits == 8)
        scale, zp = affine(low, 2.0, dtype)
        assert dtype.qmin <= zp <= dtype.qmax and scale == np.float32(scale)
        assert scale * (dtype.qmin - zp) <= low + scale / 2 and scale * (dtype.qmax - zp) >= 2.0 - scale / 2


# ---- integer graphs ----

@pytest.mark.parametrize("key", ["resnet8", "kws", "ad"])
def test_int8_model_rebuilt_at_its_own_widths_is_identical(key):
    graph = load_tflite(shared_model(key))
    quantizer = Quantizer(graph, random_inputs(graph, 4, 0))
    assert _same_graph(quantizer.build({}), graph)


@pytest.mark.parametrize("seed", range(12))
def test_random_models_at_random_widths_mean_what_their_scales_say(seed, tmp_path):
    graph = load_tflite(random_model(seed))
    inputs = random_inputs(graph, 3, seed)
    quantizer = Quantizer(graph, inputs)
    q = quantizer.build(_widths(graph, np.random.default_rng(seed)))
    for t in q.activations():
        if t.dtype.bits < 8:
            assert t.dtype.signed == (quantizer.group_range(quantizer.groups[t.name], t.dtype.bits)[0] < 0)
    save_graph(q, tmp_path)
    assert _same_graph(load_graph(tmp_path), q)
    values = run_many(q, inputs, keep_all=True)
    for t in q.activations():
        assert t.dtype.qmin <= values[t.name].min() and values[t.name].max() <= t.dtype.qmax, t.name
    _check_ops_against_real_arithmetic(q, values)


def _check_ops_against_real_arithmetic(q: Graph, values: dict[str, np.ndarray]) -> None:
    """Each weighted op, ADD and pool: integer result within one output step (plus the tiny
    error of the Q31 multiplier) of the real-number op on the dequantized operands."""
    float_graph, _ = dequantize_graph(q)
    for op in q.ops:
        if op.kind not in (*WEIGHTED_OPS, "ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D"):
            continue
        y = q.tensor(op.outputs[0])
        sub = Graph({n: float_graph.tensor(n) for n in [*op.inputs, *op.outputs] if n is not None}, [op],
                    [n for n in op.inputs if n is not None and not q.tensor(n).is_const], list(op.outputs))
        for i in range(len(values[y.name])):
            args = [real(q.tensor(n), values[n][i]).astype(np.float32) for n in sub.inputs]
            expected = float_executor.run(sub, args)[0].astype(np.float64)
            lo, hi = (np.array(clamp_bounds(op.attrs.get("activation", "NONE"), y)) - y.quant.zp) * y.quant.s
            got = real(y, values[y.name][i])
            assert np.abs(np.clip(expected, lo, hi) - got).max() <= 1.01 * y.quant.s + 1e-6, (op.kind, y.dtype)


def test_sub_byte_tensors_follow_the_ir_conventions():
    graph = load_tflite(shared_model("kws"))
    widths = {op.inputs[1]: 4 for op in graph.ops if op.kind in WEIGHTED_OPS}
    for members in subbyte_groups(graph):
        widths.update({n: 2 for n in members})
    q = Quantizer(graph, random_inputs(graph, 2, 0)).build(widths)
    for op in q.ops:
        if op.kind in WEIGHTED_OPS:
            x, w, b = (q.tensor(n) for n in op.inputs)
            axis = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}[op.kind]
            assert w.dtype == DType("int", 4) and w.data.dtype == np.int8 and w.quant.axis == axis
            assert np.all(w.quant.zero_point == 0) and w.quant.scale.size == w.shape[axis]
            assert b.dtype.bits == 32 and np.allclose(b.quant.scale, x.quant.s * w.quant.scale)
            assert requant_method(q, op) == "ICN"
    relu_outputs = [q.tensor(op.outputs[0]) for op in q.ops[:9]]
    assert all(t.dtype == DType("int", 2, signed=False) and t.quant.zp == 0 for t in relu_outputs)
    assert q.tensor(q.inputs[0]).dtype == INT8 and q.tensor(q.outputs[0]).dtype == INT8
    pool, reshape = q.ops[9], q.ops[10]
    tied = [q.tensor(n) for n in (pool.inputs[0], pool.outputs[0], reshape.outputs[0])]
    assert len({(t.dtype, t.quant.s, t.quant.zp) for t in tied}) == 1


def test_activation_groups_tie_pools_and_reshapes():
    graph = load_tflite(shared_model("kws"))
    roots = activation_groups(graph)
    pool, reshape = graph.ops[9], graph.ops[10]
    assert roots[pool.outputs[0]] == roots[reshape.outputs[0]] == roots[pool.inputs[0]] == pool.inputs[0]
    groups = subbyte_groups(graph)
    assert all(graph.outputs[0] not in g and graph.inputs[0] not in g for g in groups)
    assert not any(graph.ops[11].outputs[0] in g for g in groups)  # feeds SOFTMAX: stays int8


def test_float_form_quantizes_like_tflite_at_8_bits():
    graph = load_tflite(shared_model("kws"))
    float_graph, ranges = dequantize_graph(graph)
    assert all(t.dtype.is_float for t in float_graph.activations())
    fresh = quantize_graph(float_graph, ranges, {})
    inputs = random_inputs(graph, 8, 1)
    result = compare(graph, fresh, inputs)
    assert result["top1_agreement"] == 1.0 and (result["sqnr_db"] is None or result["sqnr_db"] > 30)
    fc = next(op for op in fresh.ops if op.kind == "FULLY_CONNECTED")
    assert not fresh.tensor(fc.inputs[1]).quant.per_channel
    per_channel = quantize_graph(float_graph, ranges, {}, fc_per_channel=True)
    assert per_channel.tensor(fc.inputs[1]).quant.per_channel


# ---- lowering, ICN, fidelity ----

@pytest.mark.parametrize("dtype, activation, bounds", [
    (UINT4, "RELU", (0, 15)), (UINT4, "NONE", (0, 15)), (DType("int", 2), "NONE", (-2, 1)),
    (DType("int", 4), "RELU", (-3, 7)), (UINT4, "RELU6", (0, 12)), (DType("int", 2, signed=False), "RELU6", (0, 3)),
])
def test_clamp_comes_from_the_output_dtype_and_the_activation(dtype, activation, bounds):
    zp = 0 if not dtype.signed else (-3 if activation == "RELU" else 0)
    y = Tensor("y", (1, 4), dtype, Quant(0.5, zp))
    assert clamp_bounds(activation, y) == bounds


def test_icn_is_the_per_channel_integer_requantization():
    graph = load_tflite(shared_model("kws"))
    widths = {graph.ops[2].inputs[1]: 2, graph.ops[2].outputs[0]: 4}
    for members in subbyte_groups(graph):
        if graph.ops[2].outputs[0] in members:
            widths.update({n: 4 for n in members})
    inputs = random_inputs(graph, 2, 0)
    q = Quantizer(graph, inputs).build(widths)
    op = q.ops[2]  # a 1x1 convolution: per channel, bias B_c, multiplier M_c, shift N_c, clamp
    p = lower(q, op)
    assert requant_method(q, op) == "ICN" and (p.act_min, p.act_max) == (0, 15) and p.multiplier.size == 64
    x = run_many(q, inputs, keep_all=True)[op.inputs[0]][0].astype(np.int64) - q.tensor(op.inputs[0]).quant.zp
    w = q.tensor(op.inputs[1]).data.astype(np.int64)
    acc = np.einsum("nhwi,oi->nhwo", x, w[:, 0, 0, :]) + q.tensor(op.inputs[2]).data
    y = np.clip(multiply_by_quantized_multiplier(acc, p.multiplier, p.shift) + p.output_offset, p.act_min, p.act_max)
    assert np.array_equal(y, executor.run(q, inputs[0], keep_all=True)[op.outputs[0]])
    assert requant_method(graph, graph.ops[2]) == "PC" and requant_method(graph, graph.ops[11]) == "FB"


def test_fidelity_of_identical_graphs_is_exact():
    graph = load_tflite(shared_model("ad"))
    result = compare(graph, graph, random_inputs(graph, 3, 0))
    assert result == {"inputs": 3, "top1_agreement": 1.0, "sqnr_db": None,
                      "layers": [{"index": i, "op": op.kind, "output_bits": 8, "sqnr_db": None}
                                 for i, op in enumerate(graph.ops)]}
    assert sqnr_db(np.ones(4), np.ones(4) * 1.1) == pytest.approx(20.0)


@pytest.mark.parametrize("seed", range(6))
def test_batched_runs_equal_single_runs_and_resume(seed):
    graph = load_tflite(random_model(seed))
    inputs = random_inputs(graph, 20, seed)
    stacked = run_many(graph, inputs, keep_all=True)
    for i, x in enumerate(inputs):
        single = executor.run(graph, x, keep_all=True)
        assert all(np.array_equal(stacked[t.name][i], single[t.name]) for t in graph.activations())
    start = len(graph.ops) // 2
    resumed = run_many(graph, inputs, resume=(stacked, start))
    assert all(np.array_equal(resumed[n], stacked[n]) for n in graph.outputs)
