"""select_kernels: choose the C kernel of every op by its shape, and record what it costs.

The choice is made at generation time (no runtime dispatch) and recorded as op attributes:
`kernel`, `scratch_bytes` (read by plan_memory) and `param_bytes`, the flash taken beyond the
weight tensors: per-channel multipliers and shifts, and the zero padding of conv filter rows (read
by the report and the budget estimate).
"""
from __future__ import annotations

import numpy as np

from mcugen.codegen.layers import choose_kernel, filter_padding_bytes
from mcugen.ir import Graph, Op
from mcugen.quant.lowering import lower

_PER_CHANNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def param_bytes(graph: Graph, op: Op) -> int:
    """int32 multiplier and shift per output channel (or per tensor), and the filter's padding."""
    if op.kind not in _PER_CHANNEL_OPS:
        return 0
    return 8 * int(np.size(lower(graph, op).multiplier)) + filter_padding_bytes(op, graph.tensor(op.inputs[1]))


def select_kernels(graph: Graph) -> Graph:
    graph = graph.copy()
    for op in graph.ops:
        op.attrs["kernel"], op.attrs["scratch_bytes"] = choose_kernel(graph, op)
        op.attrs["param_bytes"] = param_bytes(graph, op)
    return graph
