"""order_ops: the order it picks is topological, never plans a larger arena than the file's order,
and the generated code still computes what the reference computes."""
from __future__ import annotations

import json

import pytest

from mcugen.codegen.emit import generate
from mcugen.frontend import load_tflite
from mcugen.ir import Graph
from mcugen.passes.order_ops import order_ops
from mcugen.passes.plan_memory import plan_memory
from mcugen.passes.select_kernels import select_kernels
from mcugen.passes.stream_residual import stream_residual
from mcugen.pipeline import compile_backend, compile_model, verify_graph_on_host
from mcugen.testing import ModelBuilder, random_model, residual_model


def _arena(graph: Graph) -> int:
    return plan_memory(stream_residual(graph)).attrs["memory_plan"].arena_bytes


def _is_topological(graph: Graph) -> bool:
    ready = set(graph.inputs) | {n for n, t in graph.tensors.items() if t.is_const}
    for op in graph.ops:
        if not {n for n in op.inputs if n is not None} <= ready:
            return False
        ready |= set(op.outputs)
    return True


def _two_branch_model() -> bytes:
    """input 8x8x2 -> two 3x3 convs to 16 channels (1,024 B each), each averaged over H and W to
    16 B (MEAN), concatenated. The builder writes the ops in call order: both convs first, so both
    1,024-byte tensors are live at once."""
    b = ModelBuilder(3)
    x = b.input((1, 8, 8, 2))
    wide = [b.conv2d(x, 16, kernel=(3, 3)), b.conv2d(x, 16, kernel=(3, 3))]
    return b.finish([b.concat([b.mean(w) for w in wide])])


def test_finishing_a_branch_first_lowers_the_arena(tmp_path, cli):
    selected = select_kernels(compile_model(load_tflite(_two_branch_model())))
    # conv0, conv1, mean0, mean1, requantize mean0 to the concatenation's scale, concatenation
    assert [op.kind for op in selected.ops] == ["CONV_2D", "CONV_2D", "MEAN", "MEAN", "QUANTIZE", "CONCATENATION"]
    ordered = order_ops(selected)
    # the greedy order: conv0's branch first, so mean0 frees conv0's output before conv1 runs
    assert ordered.attrs["op_order"]["file_indices"] == [0, 2, 4, 1, 3, 5]
    # the peak is conv1 either way: the input slot (128 B), conv1's output (1,024 B) and its
    # scratch (216 B), plus in file order conv0's output (1,024 B), reordered mean0's 16 B
    assert (_arena(selected), _arena(ordered)) == (128 + 1024 + 216 + 1024, 128 + 1024 + 216 + 16)
    recorded = ordered.attrs["op_order"]
    assert (recorded["file_order_arena_bytes"], recorded["arena_bytes"]) == (2392, 1384)

    # built (bit-exact on the host, or the build fails), reported, and reordered again on reload
    model, out = tmp_path / "branches.tflite", tmp_path / "out"
    model.write_bytes(_two_branch_model())
    status, stdout, stderr = cli("build", model, "--board", "stm32f746", "-o", out, "--no-firmware")
    assert status == 0 and "arena 1,384 B" in stdout, stdout + stderr
    report = json.loads((out / "report.json").read_text())
    assert (report["estimate"]["arena_bytes"], report["estimate"]["file_order_arena_bytes"]) == (1384, 2392)
    assert [row["op"] for row in report["layers"]][:3] == ["CONV_2D", "MEAN", "QUANTIZE"]
    assert "Ops reordered to lower peak RAM: arena 1,384 B instead of 2,392 B" in (out / "report.md").read_text()
    assert cli("verify", out)[0] == 0


def test_a_chain_is_left_alone():
    model = compile_model(load_tflite(random_model(1)))
    selected = select_kernels(model)
    assert order_ops(selected) is selected


@pytest.mark.parametrize("model", [(random_model, seed) for seed in range(40)]
                         + [(residual_model, seed) for seed in range(10)], ids=lambda m: f"{m[0].__name__}{m[1]}")
def test_order_is_topological_and_never_plans_a_larger_arena(model):
    make, seed = model
    selected = select_kernels(compile_model(load_tflite(make(seed))))
    ordered = order_ops(selected)
    assert _is_topological(ordered)
    assert sorted(op.outputs[0] for op in ordered.ops) == sorted(op.outputs[0] for op in selected.ops)
    if "op_order" in ordered.attrs:
        assert _arena(ordered) == ordered.attrs["op_order"]["arena_bytes"] < _arena(selected)
    else:
        assert [op.outputs for op in ordered.ops] == [op.outputs for op in selected.ops]


@pytest.mark.parametrize("seed", [19, 32, 69])
def test_generated_code_in_the_chosen_order_matches_the_reference(seed, tmp_path):
    """Seeds with concatenated branches (more than one order); random_model(69) is run reordered
    (3,176 B instead of 3,200 B)."""
    graph = compile_backend(compile_model(load_tflite(random_model(seed))))
    assert ("op_order" in graph.attrs) == (seed == 69)
    generate(graph, tmp_path, "model", f"random_model({seed})")
    result = verify_graph_on_host(tmp_path, graph, "model", 10, seed)
    assert result.ok, result.first_mismatch
