"""Per-layer costs of a graph: multiply-accumulates and constant bytes.

MACs count the inner products of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED only, the
convention of MLPerf Tiny and of ../shared/TARGETS.md, so figures compare directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcugen.ir import Graph, Op


@dataclass(frozen=True)
class LayerCost:
    index: int
    op: str
    inputs: list[dict]
    outputs: list[dict]
    macs: int
    weight_bytes: int


def op_macs(graph: Graph, op: Op) -> int:
    if op.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return 0
    out = graph.tensor(op.outputs[0])
    weights = graph.tensor(op.inputs[1])
    if op.kind == "CONV_2D":
        return out.size * int(np.prod(weights.shape[1:]))
    if op.kind == "DEPTHWISE_CONV_2D":
        return out.size * weights.shape[1] * weights.shape[2]
    return out.size * weights.shape[-1]


def op_weight_bytes(graph: Graph, op: Op) -> int:
    return sum(t.nbytes for t in graph.op_inputs(op) if t is not None and t.is_const)


def _describe(tensor) -> dict:
    return {"name": tensor.name, "shape": list(tensor.shape), "dtype": tensor.dtype.name}


def layer_costs(graph: Graph) -> list[LayerCost]:
    return [
        LayerCost(
            index=i,
            op=op.kind,
            inputs=[_describe(t) for t in graph.op_inputs(op) if t is not None and not t.is_const],
            outputs=[_describe(t) for t in graph.op_outputs(op)],
            macs=op_macs(graph, op),
            weight_bytes=op_weight_bytes(graph, op),
        )
        for i, op in enumerate(graph.ops)
    ]
