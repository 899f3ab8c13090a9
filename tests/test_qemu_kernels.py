"""The Cortex-M DSP kernel paths (SXTB16/SMLAD, assembly inner loops, overlapped buffers) on
random shapes: firmware for the emulated Cortex-M7 must agree bit for bit with the reference,
exactly as the portable C does on the host (tests/test_kernels.py)."""
from __future__ import annotations

import numpy as np
import pytest

from mcugen.boards import load_board
from mcugen.codegen.emit import generate
from mcugen.frontend import load_tflite
from mcugen.inputs import random_inputs
from mcugen.pipeline import compile_graph, pack_inputs, unpack_outputs
from mcugen.reference.executor import run as run_reference
from mcugen.testing import ModelBuilder, random_model
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


@pytest.mark.parametrize("key,make", list(_models()), ids=[k for k, _ in _models()])
def test_dsp_firmware_matches_reference(key, make, tmp_path):
    board = load_board(BOARD)
    if not toolchain_available(board):
        pytest.skip(f"cross toolchain or QEMU for {BOARD} not installed")
    graph = compile_graph(load_tflite(make()))
    generate(graph, tmp_path, "model", key)
    write_firmware(tmp_path, board)
    elf = build_firmware(tmp_path, board)
    inputs = random_inputs(graph, 4, seed=1)
    raw = run_firmware(elf, board, pack_inputs(graph, inputs), graph.attrs["memory_plan"].output_bytes)
    for want, got in zip((run_reference(graph, x) for x in inputs), unpack_outputs(graph, raw, len(inputs))):
        for w, g in zip(want, got):
            np.testing.assert_array_equal(g, w)
