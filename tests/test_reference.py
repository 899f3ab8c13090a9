"""The numpy reference against TensorFlow Lite Micro: every intermediate tensor, bit for bit.

Single-op models (mcugen.testing.synth), random models, and the real models under
$MCUGEN_MODELS (default /work/shared/models; skipped when absent) run on TFLM with all
tensors preserved; mcugen's integer (or float) executor must reproduce each op's output exactly.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from mcugen.frontend import load_tflite
from mcugen.ir import INT8, Graph, Op, Quant, Tensor
from mcugen.quant.lowering import activation_range, lower, window_padding
from mcugen.reference import executor, float_executor
from mcugen.testing.synth import ModelBuilder, random_model

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

MODELS = Path(os.environ.get("MCUGEN_MODELS", "/work/shared/models"))
INT8_MODELS = ["kws_dscnn/kws_ref_model.tflite", "ic_resnet8/pretrainedResnet_quant.tflite",
               "ad_fc_autoencoder/ad01_int8.tflite", "tflm_hello_world/hello_world_int8.tflite"]
FLOAT_MODELS = ["ic_resnet8/pretrainedResnet.tflite", "ad_fc_autoencoder/ad01_fp32.tflite",
                "tflm_hello_world/hello_world_float.tflite"]


# ---- the oracle ----

def random_inputs(graph: Graph, seed: int) -> list[np.ndarray]:
    """int8 inputs uniform over the whole range; float inputs uniform in [-1, 1)."""
    rng = np.random.default_rng(seed)
    inputs = []
    for name in graph.inputs:
        t = graph.tensors[name]
        if t.dtype.is_float:
            inputs.append(rng.uniform(-1, 1, t.shape).astype(np.float32))
        else:
            inputs.append(rng.integers(t.dtype.qmin, t.dtype.qmax + 1, t.shape).astype(t.dtype.numpy))
    return inputs


def assert_matches_tflm(model: bytes, seeds=(0, 1)) -> Graph:
    """Runs `model` on TFLM and on mcugen's reference; every op output must be identical."""
    graph = load_tflite(model)
    is_float = any(graph.tensors[op.outputs[0]].dtype.is_float for op in graph.ops
                   if op.kind != "DEQUANTIZE")
    run = float_executor.run if is_float else executor.run
    index = graph.attrs["tflite_tensor_index"]
    interpreter = runtime.Interpreter.from_bytes(
        model, arena_size=8 << 20, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for seed in seeds:
        inputs = random_inputs(graph, seed)
        for i, x in enumerate(inputs):
            interpreter.set_input(x, i)
        interpreter.invoke()
        values = run(graph, inputs, keep_all=True)
        for k, op in enumerate(graph.ops):
            ours = values[op.outputs[0]]
            theirs = interpreter.GetTensor(index[op.outputs[0]], 0)["tensor_data"].reshape(ours.shape)
            assert ours.dtype == theirs.dtype, f"op {k} {op.kind}: {ours.dtype} vs TFLM {theirs.dtype}"
            differ = np.flatnonzero(ours != theirs)
            assert differ.size == 0, (
                f"seed {seed}, op {k} {op.kind} {op.attrs}: {differ.size} of {ours.size} elements differ "
                f"from TFLM, first at {differ[0]}: {ours.flat[differ[0]]} vs {theirs.flat[differ[0]]}")
    return graph


# ---- single-op models ----

def _concat(b, x):
    return b.concat([b.conv2d(x, 3, kernel=(1, 1)), b.conv2d(x, 2, kernel=(3, 3), activation="NONE")], axis=3)


SHAPE = (1, 9, 11, 4)
# name -> (input shapes, build(builder, *inputs) -> output), for int8 and float models alike
OPS = {
    "conv_same_relu": ([SHAPE], lambda b, x: b.conv2d(x, 6)),
    "conv_valid_stride2_relu6": ([SHAPE], lambda b, x: b.conv2d(x, 5, kernel=(3, 2), stride=(2, 2),
                                                                  padding="VALID", activation="RELU6")),
    "conv_same_even_kernel_stride2": ([SHAPE], lambda b, x: b.conv2d(x, 3, kernel=(4, 4), stride=(2, 2))),
    "conv_dilation_relu_n1_to_1": ([SHAPE], lambda b, x: b.conv2d(x, 4, dilation=(2, 3),
                                                                    activation="RELU_N1_TO_1")),
    "conv_per_tensor_none": ([SHAPE], lambda b, x: b.conv2d(x, 4, activation="NONE", per_channel=False)),
    "depthwise_multiplier2": ([SHAPE], lambda b, x: b.depthwise_conv2d(x, stride=(2, 1), depth_multiplier=2)),
    "depthwise_dilation_valid": ([SHAPE], lambda b, x: b.depthwise_conv2d(
        x, kernel=(3, 3), dilation=(2, 2), padding="VALID", activation="RELU6")),
    "depthwise_per_tensor": ([SHAPE], lambda b, x: b.depthwise_conv2d(
        x, kernel=(5, 3), depth_multiplier=3, activation="NONE", per_channel=False)),
    "fc": ([(1, 40)], lambda b, x: b.fully_connected(x, 7, activation="RELU")),
    "fc_per_channel": ([(1, 40)], lambda b, x: b.fully_connected(x, 9, per_channel=True)),
    "fc_keep_num_dims": ([(1, 3, 10)], lambda b, x: b.fully_connected(x, 4, keep_num_dims=True)),
    "fc_flatten_4d": ([(1, 3, 3, 4)], lambda b, x: b.fully_connected(x, 5, activation="RELU6")),
    "avg_pool_same_relu": ([SHAPE], lambda b, x: b.avg_pool(x, (3, 3), (2, 2), "SAME", "RELU")),
    "avg_pool_valid": ([SHAPE], lambda b, x: b.avg_pool(x, (2, 3), (1, 2), "VALID")),
    "max_pool_same_relu6": ([SHAPE], lambda b, x: b.max_pool(x, (3, 2), (2, 2), "SAME", "RELU6")),
    "add": ([SHAPE, SHAPE], lambda b, x, y: b.add(x, y)),
    "add_broadcast_relu6": ([SHAPE, (1, 1, 1, 4)], lambda b, x, y: b.add(x, y, activation="RELU6")),
    "mul": ([SHAPE, SHAPE], lambda b, x, y: b.mul(x, y)),
    "mul_broadcast_relu": ([SHAPE, (1, 1, 11, 1)], lambda b, x, y: b.mul(x, y, activation="RELU")),
    "pad": ([SHAPE], lambda b, x: b.pad(x, [[0, 0], [1, 2], [0, 3], [0, 0]])),
    "pad_channels": ([SHAPE], lambda b, x: b.pad(x, [[0, 0], [0, 0], [1, 0], [2, 1]])),
    "concat_requantized": ([SHAPE], _concat),
    "concat_axis1": ([SHAPE, (1, 2, 11, 4)], lambda b, x, y: b.concat([x, y], axis=1)),
    "mean_hw": ([SHAPE], lambda b, x: b.mean(x, (1, 2), keep_dims=True)),
    "mean_h_drop": ([SHAPE], lambda b, x: b.mean(x, (1,), keep_dims=False)),
    "mean_channels": ([SHAPE], lambda b, x: b.mean(x, (3,), keep_dims=True)),
    "softmax": ([(1, 10)], lambda b, x: b.softmax(x, beta=1.0)),
    "softmax_small_beta_rank3": ([(2, 3, 7)], lambda b, x: b.softmax(x, beta=0.25)),
    "softmax_capped_multiplier": ([(1, 12)], lambda b, x: b.softmax(x, beta=500.0)),
    "logistic": ([(1, 64)], lambda b, x: b.logistic(x)),
    "reshape": ([SHAPE], lambda b, x: b.reshape(x, (1, -1))),
    "squeeze": ([(1, 1, 5, 3)], lambda b, x: b.squeeze(x, (1,))),
}


def single_op_model(case: str, seed: int, float_model: bool = False) -> bytes:
    shapes, build = OPS[case]
    b = ModelBuilder(seed, float_model=float_model)
    return b.finish([build(b, *[b.input(shape) for shape in shapes])])


@pytest.mark.parametrize("case", sorted(OPS))
def test_single_op_int8(case):
    for seed in range(3):
        assert_matches_tflm(single_op_model(case, seed))


@pytest.mark.parametrize("case", sorted(OPS))
def test_single_op_float(case):
    assert_matches_tflm(single_op_model(case, 0, float_model=True))


@pytest.mark.parametrize("scale", [0.003, 0.02, 0.1, 0.6])
def test_logistic_input_scales(scale):
    b = ModelBuilder(1)
    x = b.input((1, 256), scale=scale, zero_point=5)
    assert_matches_tflm(b.finish([b.logistic(x)]), seeds=(0,))


def test_quantize_and_dequantize_float_io():
    b = ModelBuilder(3)
    x = b.input((1, 6, 6, 2), dtype="float32")
    q = b.quantize(x, scale=0.0078125, zero_point=3)  # a tie-rich scale: x / scale often ends in .5
    y = b.dequantize(b.quantize(q, scale=0.011, zero_point=-7))
    graph = assert_matches_tflm(b.finish([y]), seeds=(0, 1, 2))
    assert [op.kind for op in graph.ops] == ["QUANTIZE", "QUANTIZE", "DEQUANTIZE"]


# 289, 315, 786 and 1794 hold a MEAN whose input and output quantization are equal: TFLM
# requantizes it all the same (no truncating sum / count).
@pytest.mark.parametrize("seed", [*range(40), 289, 315, 786, 1794])
def test_random_models(seed):
    assert_matches_tflm(random_model(seed), seeds=(seed,))


# ---- the real models ----

def _model(path: str) -> bytes:
    if not (MODELS / path).is_file():
        pytest.skip(f"{MODELS / path} not present")
    return (MODELS / path).read_bytes()


@pytest.mark.parametrize("path", INT8_MODELS)
def test_real_int8_models_bit_exact(path):
    assert_matches_tflm(_model(path), seeds=(0, 1, 2, 3))


@pytest.mark.parametrize("path", FLOAT_MODELS)
def test_real_float_models_bit_exact(path):
    assert_matches_tflm(_model(path), seeds=(0, 1))


def test_resnet8_runs_fast():
    graph = load_tflite(_model("ic_resnet8/pretrainedResnet_quant.tflite"))
    inputs = random_inputs(graph, 0)
    executor.run(graph, inputs)  # warm-up
    start = time.perf_counter()
    executor.run(graph, inputs)
    assert time.perf_counter() - start < 0.5


# ---- lowering against hand-computed values ----

def _tensor(name, shape, scale, zero_point=0, data=None, axis=None) -> Tensor:
    return Tensor(name, shape, INT8, Quant(np.float32(scale), zero_point, axis), data)


def _graph(kind, tensors, attrs) -> tuple[Graph, Op]:
    op = Op(kind, [t.name for t in tensors[:-1]], [tensors[-1].name], attrs, name=kind.lower())
    graph = Graph({t.name: t for t in tensors}, [op], [tensors[0].name], [tensors[-1].name])
    return graph, op


def test_window_padding():
    assert window_padding(10, 4, 2, 1, "SAME") == (5, 1)   # total 2
    assert window_padding(9, 4, 2, 1, "SAME") == (5, 1)    # total 3: the extra row goes after
    assert window_padding(10, 3, 1, 2, "SAME") == (10, 2)  # dilated kernel spans 5
    assert window_padding(10, 3, 2, 1, "VALID") == (4, 0)


def test_activation_range():
    out = _tensor("y", (1,), 0.05, -10)
    assert activation_range("RELU6", out) == (-10, 110)
    assert activation_range("RELU", _tensor("y", (1,), 0.1, -128)) == (-128, 127)
    assert activation_range("RELU_N1_TO_1", _tensor("y", (1,), 1 / 64, 0)) == (-64, 64)
    assert activation_range("RELU6", _tensor("y", (1,), 0.01, 100)) == (100, 127)


def test_fully_connected_multiplies_scales_in_float32_first():
    """GetQuantizedConvolutionMultipler: float32(in * w) / out, unlike conv's all-double product."""
    s_in, s_w, s_out = 0.06405920535326004, 0.027708884328603745, 0.005056378897279501
    w = _tensor("w", (2, 3), s_w, data=np.ones((2, 3), np.int8))
    graph, op = _graph("FULLY_CONNECTED", [_tensor("x", (1, 3), s_in), w, _tensor("y", (1, 2), s_out)],
                       {"activation": "NONE"})
    p = lower(graph, op)
    assert (int(p.multiplier[0]), int(p.shift[0])) == (1507720476, -1)
    graph, op = _graph("CONV_2D", [_tensor("x", (1, 1, 1, 3), s_in),
                                   _tensor("w", (2, 1, 1, 3), s_w, data=np.ones((2, 1, 1, 3), np.int8)),
                                   _tensor("y", (1, 1, 1, 2), s_out)],
                       {"stride": (1, 1), "dilation": (1, 1), "padding": "VALID", "activation": "NONE"})
    p = lower(graph, op)
    assert p.multiplier.tolist() == [1507720493] * 2 and p.shift.tolist() == [-1, -1]


def test_add_lowering():
    graph, op = _graph("ADD", [_tensor("a", (4,), 0.5, 1), _tensor("b", (4,), 0.25, -2),
                               _tensor("y", (4,), 1.0, 3)], {"activation": "NONE"})
    p = lower(graph, op)
    assert p.left_shift == 20
    assert (p.input1_multiplier, p.input1_shift) == (1 << 30, 0)    # 0.5 / (2 * 0.5)
    assert (p.input2_multiplier, p.input2_shift) == (1 << 30, -1)   # 0.25 / 1
    assert (p.output_multiplier, p.output_shift) == (1 << 30, -19)  # 1 / (2**20 * 1)
    assert (p.input1_offset, p.input2_offset, p.output_offset) == (-1, 2, 3)


def test_mean_folds_the_count_into_the_multiplier():
    graph, op = _graph("MEAN", [_tensor("x", (1, 3, 6, 2), 0.1, 4), _tensor("y", (1, 1, 1, 2), 0.1, 4)],
                       {"axis": (1, 2), "keep_dims": True})
    p = lower(graph, op)
    assert p.count == 18
    # 1.0 is (2**30, 1); 18 has 4 bits above its lowest: (2**30 << 4) // 18, shift 1 - 4
    assert (p.multiplier, p.shift) == ((1 << 34) // 18, -3)
