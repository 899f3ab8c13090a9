"""select_kernels: choose the C kernel of every op by its shape, and record its scratch size.

The choice is made at generation time (no runtime dispatch) and recorded as op attributes
`kernel` and `scratch_bytes`, which plan_memory and codegen read.
"""
from __future__ import annotations

from mcugen.codegen.layers import choose_kernel
from mcugen.ir import Graph


def select_kernels(graph: Graph) -> Graph:
    graph = graph.copy()
    for op in graph.ops:
        op.attrs["kernel"], op.attrs["scratch_bytes"] = choose_kernel(graph, op)
    return graph
