"""The memory planner's invariant on random synthetic models: two buffers live during the same op
never share a byte, except an op's dying input and its output where the plan overlaps them on
purpose (then the output starts at the planned offset from the input), and scratch is private."""
from __future__ import annotations

import pytest

from mcugen.frontend import load_tflite
from mcugen.pipeline import compile_graph
from mcugen.testing import random_model


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
    return found


@pytest.mark.parametrize("seed", range(60))
def test_co_live_buffers_do_not_overlap(seed):
    graph = compile_graph(load_tflite(random_model(seed)))
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
