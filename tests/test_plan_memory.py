"""The memory planner's invariant on random synthetic models: two buffers live during the same op
never share a byte, except an op's dying input and its output where the plan overlaps them on
purpose (then the output starts at the planned offset from the input), and scratch and the I/O
slots are private."""
from __future__ import annotations

import pytest

from mcugen.frontend import load_tflite
from mcugen.passes.plan_memory import plan_memory
from mcugen.passes.select_kernels import select_kernels
from mcugen.pipeline import compile_backend, compile_graph, compile_model
from mcugen.testing import ModelBuilder, random_model, residual_model
from conftest import shared_model


def _intervals(graph, plan, index):
    """Arena byte ranges of the tensors live during op `index`, and of its scratch."""
    ops = graph.ops
    found = {}
    for name, place in plan.tensors.items():
        if place.region != "arena":
            continue
        made = [i for i, op in enumerate(ops) if name in op.outputs]
        used = [i for i, op in enumerate(ops) if name in op.inputs]
        start = made[0] if made else 0
        end = len(ops) if name in graph.outputs else max(used, default=start)
        if start <= index <= end:
            found[name] = (place.offset, place.offset + place.size)
    if index in plan.scratch:
        s = plan.scratch[index]
        found[("scratch", index)] = (s.offset, s.offset + s.size)
    inputs, outputs = _alias_closure(graph, graph.inputs), _alias_closure(graph, graph.outputs)
    input_end = max((i for i, op in enumerate(ops) if inputs & set(op.inputs)), default=0)
    output_start = min((i for i, op in enumerate(ops) if outputs & set(op.outputs)), default=len(ops))
    for region, live in (("input", index <= input_end), ("output", index >= output_start)):
        if live:
            slot = plan.slots[region]
            found[("slot", region)] = (slot.offset, slot.offset + slot.size)
    return found


def _alias_closure(graph, names) -> set[str]:
    """`names` and every tensor that shares their bytes through RESHAPE/SQUEEZE, either way."""
    group = set(names)
    while True:
        more = {n for op in graph.ops if op.kind in ("RESHAPE", "SQUEEZE") and group & {op.inputs[0], op.outputs[0]}
                for n in (op.inputs[0], op.outputs[0])} - group
        if not more:
            return group
        group |= more


@pytest.mark.parametrize("model", [(random_model, seed) for seed in range(60)]
                         + [(residual_model, seed) for seed in range(20)], ids=lambda m: f"{m[0].__name__}{m[1]}")
def test_co_live_buffers_do_not_overlap(model):
    make, seed = model
    graph = compile_graph(load_tflite(make(seed)))
    plan = graph.attrs["memory_plan"]
    aliases = {op.outputs[0]: op.inputs[0] for op in graph.ops if op.kind in ("RESHAPE", "SQUEEZE")}
    for index, op in enumerate(graph.ops):
        live = _intervals(graph, plan, index)
        planned = {(n, op.outputs[0]) for n in op.inputs} if index in plan.overlaps else set()
        names = sorted(live, key=str)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                (a0, a1), (b0, b1) = live[a], live[b]
                if a0 >= b1 or b0 >= a1 or aliases.get(a) == b or aliases.get(b) == a:
                    continue
                assert (a, b) in planned or (b, a) in planned, f"op {index}: {a} and {b} overlap"
        if index in plan.overlaps:
            src = [n for n in op.inputs if (n, op.outputs[0]) in planned and n in live]
            out = plan.tensors[op.outputs[0]]
            assert any(out.offset - plan.tensors[n].offset == plan.overlaps[index] for n in src)
        assert plan.peak_by_op[index] <= plan.arena_bytes


def test_io_slots_share_bytes_when_their_lifetimes_do_not_meet():
    """The autoencoder (640 -> 128 -> ... -> 128 -> 640): the input slot dies at the first layer,
    the output slot is born at the last; the arena is one slot and one 128-byte activation."""
    graph = compile_graph(load_tflite(shared_model("ad")))
    plan = graph.attrs["memory_plan"]
    assert plan.slots["input"].offset == plan.slots["output"].offset
    assert (plan.slots["input"].size, plan.slots["output"].size, plan.arena_bytes) == (640, 640, 768)
    assert plan.peak_by_op[0] == plan.peak_by_op[-1] == 768


def _block_graph():
    """input 8x6x4 -> stem conv 3x3 -> X (4 channels) -> conv1 3x3 (8) -> conv2 3x3 (4) -> ADD(X, .)
    -> 1x1 conv (2): one streamable block, with X in the arena and the sum not a graph output."""
    b = ModelBuilder(7)
    x = b.conv2d(b.input((1, 8, 6, 4)), 4, kernel=(3, 3))
    y = b.conv2d(b.conv2d(x, 8, kernel=(3, 3)), 4, kernel=(3, 3), activation="NONE")
    return compile_model(load_tflite(b.finish([b.conv2d(b.add(x, y), 2, kernel=(1, 1), activation="NONE")])))


def test_residual_block_is_streamed_and_planned_exactly():
    model = _block_graph()
    graph = compile_backend(model)
    ops, plan = graph.ops, graph.attrs["memory_plan"]
    assert [op.attrs.get("residual_block") for op in ops] == [None, (1, 2, 3), (1, 2, 3), (1, 2, 3), None]
    assert ops[1].attrs["streamed"] == (ops[1].outputs[0], ops[2].outputs[0])
    # window of 3 conv1 rows (6 x 8 bytes each) + one 6 x 4 output row, then conv2's scratch, the
    # larger: columns (72 values as int16, 4 pixels) + one int8 window
    assert (ops[1].attrs["scratch_bytes"], ops[2].attrs["scratch_bytes"]) == (3 * 48 + 24 + 72 * 8 + 72, 0)
    assert ops[1].outputs[0] not in plan.tensors and ops[2].outputs[0] not in plan.tensors
    assert plan.tensors[ops[3].outputs[0]] == plan.tensors[ops[0].outputs[0]]  # the sum over X, in place
    # the peak is the block: X (192 B) and the block's scratch (816 B)
    assert plan.peak_by_op[1] == max(plan.peak_by_op) == 192 + 816
    assert plan.arena_bytes == 192 + 816
    unstreamed = plan_memory(select_kernels(model)).attrs["memory_plan"]
    # X, Y with Z overlapping it from 32 bytes below (conv2 in place), conv2's scratch
    assert (unstreamed.overlaps[2], unstreamed.arena_bytes) == (-32, 192 + 32 + 384 + 648)


@pytest.mark.parametrize("seed", range(30))
def test_graphs_without_streamed_blocks_plan_as_before(seed):
    graph = compile_model(load_tflite(random_model(seed)))
    backend = compile_backend(graph)
    assert not any("residual_block" in op.attrs for op in backend.ops)
    assert backend.attrs["memory_plan"] == plan_memory(select_kernels(graph)).attrs["memory_plan"]
