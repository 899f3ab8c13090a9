"""The Cortex-M DSP kernel paths (SXTB16/SMLAD, assembly inner loops, overlapped buffers) on
random shapes and on shapes and multipliers chosen to reach each path: firmware for the emulated
Cortex-M7 must agree bit for bit with the reference, exactly as the portable C does on the host
(tests/test_kernels.py)."""
from __future__ import annotations

import numpy as np
import pytest

from mcugen.boards import load_board
from mcugen.codegen.emit import generate
from mcugen.frontend import load_tflite
from mcugen.inputs import random_inputs
from mcugen.pipeline import compile_graph, pack_inputs, unpack_outputs
from mcugen.reference.executor import run as run_reference
from mcugen.testing import ModelBuilder, large_random_model, random_model
from mcugen.toolchain.firmware import build_firmware, toolchain_available, write_firmware
from mcugen.toolchain.qemu import run_firmware

pytestmark = pytest.mark.qemu
BOARD = "stm32f746"


def _dsp_shapes(seed: int) -> bytes:
    """A chain that reaches every DSP path: im2col conv with a depth tail, 1x1 conv (in place),
    depthwise on four-channel groups (overlapped), pooling and a fully connected head."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder(rng)
    c = 4 * int(rng.integers(1, 5))
    x = b.input((1, int(rng.integers(3, 12)), int(rng.integers(3, 12)), int(rng.integers(1, 6))))
    x = b.conv2d(x, c, kernel=(int(rng.integers(1, 4)), int(rng.integers(1, 4))),
                 stride=(int(rng.integers(1, 3)), 1), padding=str(rng.choice(["SAME", "VALID"])))
    x = b.depthwise_conv2d(x, stride=(1, int(rng.integers(1, 3))), activation=str(rng.choice(["RELU", "NONE"])))
    x = b.conv2d(x, c if rng.random() < 0.5 else int(rng.integers(1, 20)), kernel=(1, 1), padding="VALID")
    if rng.random() < 0.5:
        x = b.avg_pool(x, pool=(2, 2), stride=(1, 1), padding="SAME")
    x = b.fully_connected(x, int(rng.integers(1, 20)))
    return b.finish([x])


def _models():
    yield from ((f"dsp-{seed}", lambda seed=seed: _dsp_shapes(seed)) for seed in range(14))
    yield from ((f"random-{seed}", lambda seed=seed: random_model(seed)) for seed in range(100, 114))
    # 1 to 4 M MACs, as README's large random model benchmark
    yield from ((f"large-{seed}", lambda seed=seed: large_random_model(seed)) for seed in (4, 6, 9))


def _check_firmware(graph, key: str, tmp_path) -> None:
    """The firmware of `graph` on the emulated Cortex-M7 agrees bit for bit with the reference."""
    board = load_board(BOARD)
    if not toolchain_available(board):
        pytest.skip(f"cross toolchain or QEMU for {BOARD} not installed")
    generate(graph, tmp_path, "model", key)
    write_firmware(tmp_path, board)
    elf = build_firmware(tmp_path, board)
    inputs = random_inputs(graph, 4, seed=1)
    raw = run_firmware(elf, board, pack_inputs(graph, inputs), graph.attrs["memory_plan"].output_bytes)
    for want, got in zip((run_reference(graph, x) for x in inputs), unpack_outputs(graph, raw, len(inputs))):
        for w, g in zip(want, got):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("key,make", list(_models()), ids=[k for k, _ in _models()])
def test_dsp_firmware_matches_reference(key, make, tmp_path):
    _check_firmware(compile_graph(load_tflite(make())), key, tmp_path)


def _operands(graph, index: int):
    """The input, weights and bias tensors of op `index` (a conv or fully connected)."""
    return [None if n is None else graph.tensor(n) for n in graph.ops[index].inputs]


def _set_multipliers(graph, index: int, reals, rng, nonzero: float = 0.2) -> None:
    """Gives op `index` the requantization multipliers `reals` (one, or one per channel) through
    its weight scales, with sparse +-1 weights and small biases so that the larger multipliers
    still leave some outputs unsaturated."""
    x, w, b = _operands(graph, index)
    y = graph.tensor(graph.ops[index].outputs[0])
    w.quant.scale = np.asarray(reals, np.float64) * y.quant.s / x.quant.s
    w.data = ((rng.random(w.shape) < nonzero) * rng.choice([-1, 1], size=w.shape)).astype(np.int8)
    b.data = rng.integers(-100, 100, size=b.shape).astype(np.int32)


def _fc_paths():
    """Fully connected layers through each path of fully_connected.c's DSP code: the assembly
    loop over blocks of four units (inputs not word-aligned, as in the second batch row, bytes
    before the aligned words, the eight-word loop, single words, a byte tail, tiny depths, an
    activation clamp, no bias) and the C loop (a unit past the blocks, fewer than four units,
    per-unit multipliers that take the fast sequence or not, right shift 1, left shift, a filter
    offset). Each layer has its own input and output, so that no later layer hides an error."""
    rng = np.random.default_rng(7)
    b = ModelBuilder(rng)
    cases = [((2, 61), 13, {"activation": "RELU"}), ((1, 13), 7, {"per_channel": True}),
             ((1, 7), 3, {}), ((1, 3), 8, {}), ((1, 8), 40, {"activation": "RELU"}),
             ((1, 40), 6, {}), ((1, 6), 5, {}), ((1, 5), 4, {}), ((1, 9), 4, {})]
    outputs = [b.fully_connected(b.input(shape, zero_point=0 if i == 8 else None), units, **kw)
               for i, (shape, units, kw) in enumerate(cases)]
    graph = compile_graph(load_tflite(b.finish(outputs)))
    assert [op.kind for op in graph.ops] == ["FULLY_CONNECTED"] * len(cases)
    _set_multipliers(graph, 1, [0.003, 0.3, 0.7, 1.5, 0.004, 0.002, 0.01], rng)
    for index in (0, 4):  # the RELUs' clamps bite
        graph.tensor(graph.ops[index].outputs[0]).quant.zero_point[:] = -20
    _set_multipliers(graph, 5, [0.3], rng)
    _set_multipliers(graph, 6, [1.2], rng, nonzero=0.3)
    _set_multipliers(graph, 7, [0.05], rng, nonzero=0.3)
    _operands(graph, 7)[1].quant.zero_point[:] = 3
    graph.ops[8].inputs[2] = None  # with the input zero point 0: nothing to fold into a bias
    return graph


def _conv_requant():
    """Conv channels whose multipliers the fast requantization does not take (right shift 1,
    none, left shift) next to ones it does, per channel and per tensor."""
    rng = np.random.default_rng(8)
    b = ModelBuilder(rng)
    outputs = [b.conv2d(b.input((1, 5, 6, 3)), 8, kernel=(3, 3), activation="NONE"),
               b.conv2d(b.input((1, 5, 6, 8)), 4, kernel=(1, 1), padding="VALID",
                        activation="NONE", per_channel=False)]
    graph = compile_graph(load_tflite(b.finish(outputs)))
    _set_multipliers(graph, 0, [0.03, 0.3, 0.7, 1.5, 0.05, 3.0, 0.02, 0.45], rng, nonzero=0.05)
    _set_multipliers(graph, 1, [0.6], rng)
    return graph


def _conv_channels():
    """Conv layers through conv2d.c's assembly loop over channels (depths of one to eight LDRD
    pairs of groups: every jump into the tail alone; of nine, ten and nineteen: the unrolled loop
    once and twice, then the tail; depths that are no multiple of 8, on zero-padded filter rows,
    with a zero-filled last group (2, 9, 23, 27, 30) and a whole zero group after it (2, 9, 27); pixel
    counts that leave 3, 2 and 1 lanes in the last block; an odd channel count; 1x1 and padded,
    strided 3x1 and 3x3 windows; windows read straight from the input, rows of whole groups of
    four (4x4 on one channel, 3x3 on eight, 10x4 with stride 2) or copied (3x3 on three channels), and gathered at the
    edges; right shifts from 2 to 28) and past it (a RELU clamp above -128, on a multiple of 8 and
    on a padded depth: the C loop on padded rows). Each layer has its own input."""
    rng = np.random.default_rng(9)
    b = ModelBuilder(rng)
    cases = [((1, 5, 3, 24), 5, (1, 1), "VALID", "NONE"), ((1, 2, 3, 32), 7, (1, 1), "VALID", "NONE"),
             ((1, 1, 1, 40), 3, (1, 1), "VALID", "NONE"), ((1, 6, 5, 8), 6, (3, 3), "SAME", "NONE"),
             ((1, 3, 4, 16), 4, (1, 1), "VALID", "NONE"), ((1, 3, 4, 24), 4, (1, 1), "VALID", "RELU"),
             ((1, 2, 2, 48), 3, (1, 1), "VALID", "NONE"), ((1, 3, 1, 56), 2, (1, 1), "VALID", "NONE"),
             ((1, 2, 3, 64), 5, (1, 1), "VALID", "NONE"), ((1, 1, 2, 80), 4, (1, 1), "VALID", "NONE"),
             ((1, 2, 2, 152), 3, (1, 1), "VALID", "NONE"), ((1, 3, 5, 2), 8, (1, 1), "VALID", "NONE"),
             ((1, 7, 4, 3), 9, (3, 1), "SAME", "NONE"), ((1, 3, 3, 23), 6, (1, 1), "VALID", "NONE"),
             ((1, 5, 4, 3), 5, (3, 3), "SAME", "NONE"), ((1, 2, 3, 30), 3, (1, 1), "VALID", "NONE"),
             ((1, 3, 4, 13), 4, (1, 1), "VALID", "RELU"), ((1, 9, 6, 1), 5, (4, 4), "SAME", "NONE")]
    outputs = [b.conv2d(b.input(shape), out, kernel=kernel, stride=(2, 1) if kernel[0] == 3 else (1, 1),
                        padding=padding, activation=activation)
               for shape, out, kernel, padding, activation in cases]
    # a depth of 2 after a depth of 32 in the same scratch: the padded row meets 32's columns
    outputs.append(b.conv2d(b.conv2d(b.input((1, 3, 5, 32)), 2, kernel=(1, 1), padding="VALID",
                                     activation="NONE"), 8, kernel=(1, 1), padding="VALID", activation="NONE"))
    # KWS's first layer in small: rows of one group, stride 2, windows cut at both sides and rows
    # in the padding above and below
    outputs.append(b.conv2d(b.input((1, 13, 6, 1)), 6, kernel=(10, 4), stride=(2, 2), padding="SAME",
                            activation="NONE"))
    graph = compile_graph(load_tflite(b.finish(outputs)))
    _set_multipliers(graph, 0, [0.24, 0.2, 3e-3, 1e-5, 2e-9], rng, nonzero=0.5)
    for index in (5, 16):  # the RELUs' clamps bite
        graph.tensor(graph.ops[index].outputs[0]).quant.zero_point[:] = -20
    return graph


def _depthwise_tails():
    """Depthwise layers through depthwise_conv2d.c's four-channel kernel with channel counts that
    are not multiples of four (a last lane group that overlaps the previous one and stores only
    its new channels): the 3x3 strip path (mcugen_depthwise_conv2d_3x3_s8: 23 channels; 6 with
    stride 2), the general path (1x5
    windows, stride 2; a 3x3 row too wide for the strip), dilated windows (5x3 dilated (1, 2); 2x2
    dilated (4, 4), whose windows may miss the input). Every one runs in place over its input,
    so that the overlapped lanes read channels the previous group has already overwritten."""
    rng = np.random.default_rng(10)
    b = ModelBuilder(rng)
    x = b.conv2d(b.input((1, 6, 9, 3)), 23, kernel=(1, 1), padding="VALID")
    x = b.depthwise_conv2d(x, activation="NONE")
    x = b.depthwise_conv2d(x, kernel=(5, 3), dilation=(1, 2), activation="NONE")
    x = b.conv2d(x, 6, kernel=(1, 1), padding="VALID")
    x = b.depthwise_conv2d(x, kernel=(1, 5), stride=(1, 2), activation="NONE")
    x = b.depthwise_conv2d(x, stride=(2, 1))
    y = b.conv2d(b.input((1, 3, 26, 2)), 5, kernel=(1, 1), padding="VALID")
    y = b.depthwise_conv2d(y, activation="NONE")
    y = b.depthwise_conv2d(y, kernel=(2, 2), dilation=(4, 4), activation="NONE")
    graph = compile_graph(load_tflite(b.finish([b.conv2d(v, 3, kernel=(1, 1), padding="VALID") for v in (x, y)])))
    depthwise = [i for i, op in enumerate(graph.ops) if op.kind == "DEPTHWISE_CONV_2D"]
    kernels = [graph.ops[i].attrs["kernel"] for i in depthwise]  # the two undilated 3x3 that fit a strip
    assert sorted(kernels) == ["mcugen_depthwise_conv2d_3x3_s8"] * 2 + ["mcugen_depthwise_conv2d_c4_s8"] * 4
    assert all(graph.attrs["memory_plan"].overlaps.get(i, 0) < 0 for i in depthwise)
    return graph


def _depthwise_general():
    """Depthwise layers through depthwise_conv2d.c's four-channel kernel outside the 3x3 strip:
    depth multiplier 2 (7 input channels: a tail group that stores two lanes; dilated (2, 1)) and 4,
    padded so that border pixels take the per-tap loop and inner ones the flat runs; 5 channels
    with a 5x5 window and stride (2, 1), run in place with per-channel multipliers of which some
    the short requantization does not take (store_lanes and store_tail) and with a RELU clamp; and
    an 8x7 window, past the taps it widens (the generic kernel, not in place). Multipliers 2 and 4
    write a wider output: not in place."""
    rng = np.random.default_rng(11)
    b = ModelBuilder(rng)
    x = b.conv2d(b.input((1, 9, 11, 3)), 7, kernel=(1, 1), padding="VALID")
    x = b.depthwise_conv2d(x, kernel=(3, 5), dilation=(2, 1), depth_multiplier=2, activation="NONE")
    x = b.conv2d(x, 5, kernel=(1, 1), padding="VALID")
    x = b.depthwise_conv2d(x, kernel=(5, 5), stride=(2, 1), activation="RELU")
    x = b.depthwise_conv2d(x, kernel=(2, 3), depth_multiplier=4, padding="SAME", activation="NONE")
    x = b.depthwise_conv2d(x, kernel=(8, 7), activation="NONE")
    graph = compile_graph(load_tflite(b.finish([b.conv2d(x, 3, kernel=(1, 1), padding="VALID")])))
    depthwise = [i for i, op in enumerate(graph.ops) if op.kind == "DEPTHWISE_CONV_2D"]
    assert [graph.ops[i].attrs["kernel"] for i in depthwise] == ["mcugen_depthwise_conv2d_c4_s8"] * 3 + [
        "mcugen_depthwise_conv2d_s8"]
    overlaps = graph.attrs["memory_plan"].overlaps
    assert [overlaps.get(i, 0) < 0 for i in depthwise] == [False, True, False, False]
    _set_multipliers(graph, depthwise[1], [0.3, 0.02, 0.7, 0.01, 0.05], rng, nonzero=0.5)
    graph.tensor(graph.ops[depthwise[1]].outputs[0]).quant.zero_point[:] = -20  # the RELU bites
    return graph


@pytest.mark.parametrize("key,make", [("fc-paths", _fc_paths), ("conv-requant", _conv_requant),
                                      ("conv-channels", _conv_channels),
                                      ("depthwise-tails", _depthwise_tails),
                                      ("depthwise-general", _depthwise_general)])
def test_dsp_kernel_paths(key, make, tmp_path):
    _check_firmware(make(), key, tmp_path)
