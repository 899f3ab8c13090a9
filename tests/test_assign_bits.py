"""The assign_bits and quantize passes: budgets met, only where needed, deterministically."""
from __future__ import annotations

import pytest

from conftest import shared_model
from mcugen.errors import UserError
from mcugen.frontend import load_tflite
from mcugen.inputs import load_calibration
from mcugen.passes.assign_bits import assign_bits, find_units, footprint, parse_bits, targets
from mcugen.passes.quantize import quantize
from mcugen.pipeline import compile_model
from mcugen.quant.quantizer import WEIGHTED_OPS

STACK = 8192


def _graph(key: str):
    graph = load_tflite(shared_model(key))
    graph.attrs["calibration"] = load_calibration(None, graph)
    return graph


def _options(flash: int = 1 << 20, ram: int = 320 << 10, **extra) -> dict:
    return {"budget": {"ro_bytes": flash, "rw_bytes": ram}, "stack_bytes": STACK, **extra}


def _compile(graph, **options):
    return compile_model(graph, _options(**options))


def _weight_bits(graph) -> list[int]:
    return [graph.tensor(op.inputs[1]).dtype.bits for op in graph.ops if op.kind in WEIGHTED_OPS]


def test_parse_bits():
    assert parse_bits("auto") is None
    assert parse_bits("8") == (8, 8) and parse_bits("W4A8") == (4, 8) and parse_bits("w2a4") == (2, 4)
    for bad in ("w3a8", "16", "w4", "a8w4"):
        with pytest.raises(UserError, match="--bits"):
            parse_bits(bad)


@pytest.mark.parametrize("bits", ["auto", "8", "w8a8"])
def test_a_model_that_fits_is_left_untouched(bits):
    graph = _graph("resnet8")
    graph.attrs["options"] = _options(bits=bits)
    assert assign_bits(graph) is graph and quantize(graph) is graph
    compiled = _compile(graph, bits=bits)
    assert "bit_widths" not in compiled.attrs and compiled.attrs["report"] == {}


def test_infeasible_budget_states_the_smallest_reachable():
    graph = _graph("ad")
    with pytest.raises(UserError, match=r"flash \(RO\) budget 40,960 B, smallest reachable ~[\d,]+ B; RAM \(RW\) "
                                        r"budget 327,680 B, smallest reachable ~[\d,]+ B .* largest layers: layer 9"):
        _compile(graph, flash=40 << 10)


@pytest.mark.parametrize("bits, weights, acts", [("w4a8", 4, 8), ("4", 4, 4), ("w8a2", 8, 2)])
def test_uniform_widths(bits, weights, acts):
    compiled = _compile(_graph("kws"), bits=bits)
    assert set(_weight_bits(compiled)) == {weights}
    inner = [compiled.tensor(op.outputs[0]).dtype.bits for op in compiled.ops[:9]]
    assert set(inner) == {acts}
    assert compiled.tensor(compiled.outputs[0]).dtype.bits == 8  # the caller's buffers keep their types
    assert compiled.attrs["report"]["compression"]["strategy"] == "uniform"


def test_rusci_sweeps_cut_activations_until_the_plan_fits():
    graph = _graph("kws")
    compiled = _compile(graph, ram=16 << 10, bits_strategy="rusci")
    fp, t = footprint(compiled), targets(_options(ram=16 << 10))
    assert fp.arena <= t.arena and max(fp.peaks) <= t.arena
    assert set(_weight_bits(compiled)) == {8}  # flash was never short
    inner = [compiled.tensor(op.outputs[0]).dtype.bits for op in compiled.ops[:9]]
    assert all(min(a, b) == 2 for a, b in zip(inner, inner[1:]))  # no two co-live 8,000-element tensors above 2+4 bits


def test_rusci_cuts_the_layers_that_dominate_flash_first():
    compiled = _compile(_graph("ad"), flash=160 << 10, bits_strategy="rusci")
    assert _weight_bits(compiled) == [2] + [8] * 8 + [2]  # layers 0 and 9 (82 and 84 KB) are within 5 %


def test_units_cover_weights_and_sub_byte_capable_activations():
    graph = load_tflite(shared_model("resnet8"))
    units = find_units(graph)
    assert sum(u.kind == "weights" for u in units) == 10
    acts = [u for u in units if u.kind == "activations"]
    names = {n for u in acts for n in u.tensors}
    assert graph.inputs[0] not in names and graph.outputs[0] not in names
    assert graph.ops[14].outputs[0] not in names  # feeds the softmax
    assert all(u.first_op == min(i for i, op in enumerate(graph.ops) if set(op.outputs) & set(u.tensors)) for u in acts)
