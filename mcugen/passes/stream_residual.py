"""stream_residual: run conv1 -> conv2 -> ADD(conv2 output, conv1 input) row by row, in one call.

A residual block keeps its input X live for the ADD while conv1's output Y is whole, so X + Y
sets the arena. mcugen_residual_block_s8 (c_kernels/src/residual_block.c) instead keeps a window
of Y's rows and one row of conv2's output Z, and writes each output row over X's row once nothing
reads it any more. The three ops stay in the IR (the reference and the report still see them);
this pass only records, for plan_memory and codegen:

- `residual_block` on all three ops: the indices (conv1, conv2, add); conv1's position runs it;
- `streamed` on conv1: Y and Z, which take no arena space (they live in conv1's scratch);
- `scratch_bytes`: the block's on conv1 (window, row, and one conv scratch that both convs
  share), 0 on conv2.

The pattern: three consecutive ops, both convs with an int8 kernel (`mcugen_conv2d_s8` or
`mcugen_conv2d_1x1_s8`, so int8 throughout), stride 1, dilation 1 and output height and width
equal to the input's (any filter size, padded to keep the size), batch 1; the ADD with
`mcugen_add_s8` and no broadcast; Y read only by conv2, Z only by the ADD, X only by conv1 and the
ADD; X, Y, Z and the block's output neither graph inputs nor outputs. X then dies at the ADD and
plan_memory gives the output X's bytes (in place), which are live when conv1's op writes them.
A matching block is marked only when its window, row and shared scratch take fewer bytes than Y
and the larger conv scratch, which the unstreamed block holds at once next to X (Y is whole when
either conv runs): the bytes live during the block can then only shrink (tiny images, where the
window is all of Y, stay as they are).
"""
from __future__ import annotations

from mcugen.ir import Graph, Op
from mcugen.quant.lowering import lower

BLOCK_KERNEL = "mcugen_residual_block_s8"
CONV_KERNELS = ("mcugen_conv2d_s8", "mcugen_conv2d_1x1_s8")


def block_scratch_bytes(x_shape, mid_channels: int, pad1: int, kh2: int, pad2: int, conv_scratch: int) -> int:
    """Mirrors mcugen_residual_block_s8_scratch_size(): the window of conv1 rows (those conv2
    reads around the current row, and those that read X's current row), one output row, rounded
    up to 4, then the conv scratch."""
    _, h, w, c = x_shape
    window_rows = min(h, pad2 + max(pad1, kh2 - 1 - pad2) + 1)
    return (window_rows * w * mid_channels + w * c + 3) // 4 * 4 + conv_scratch


def _size_preserving_conv(graph: Graph, op: Op) -> bool:
    if op.kind != "CONV_2D" or op.attrs.get("kernel") not in CONV_KERNELS:
        return False
    p = lower(graph, op)
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    return ((p.stride_h, p.stride_w, p.dilation_h, p.dilation_w) == (1, 1, 1, 1)
            and len(x.shape) == 4 and x.shape[:3] == y.shape[:3])


def _block_at(graph: Graph, index: int) -> int | None:
    """The block's scratch bytes if ops index..index+2 form a streamable residual block, else None."""
    if index + 2 >= len(graph.ops):
        return None
    conv1, conv2, add = graph.ops[index:index + 3]
    if not (_size_preserving_conv(graph, conv1) and _size_preserving_conv(graph, conv2)):
        return None
    x, y, z = conv1.inputs[0], conv1.outputs[0], conv2.outputs[0]
    if (conv2.inputs[0] != y or add.kind != "ADD" or add.attrs.get("kernel") != "mcugen_add_s8"
            or sorted(add.inputs) != sorted([x, z]) or x == z):
        return None
    shape = graph.tensor(x).shape
    if shape[0] != 1 or graph.tensor(z).shape != shape or graph.tensor(add.outputs[0]).shape != shape:
        return None
    readers = {name: [i for i, op in enumerate(graph.ops) if name in op.inputs] for name in (x, y, z)}
    if readers != {x: [index, index + 2], y: [index + 1], z: [index + 2]}:
        return None
    if {x, y, z, add.outputs[0]} & (set(graph.inputs) | set(graph.outputs)):
        return None
    w2 = graph.tensor(conv2.inputs[1]).shape
    s1, s2 = (int(op.attrs["scratch_bytes"]) for op in (conv1, conv2))
    scratch = block_scratch_bytes(shape, graph.tensor(y).shape[3], lower(graph, conv1).pad_h, w2[1],
                                  lower(graph, conv2).pad_h, max(s1, s2))
    return scratch if scratch < graph.tensor(y).nbytes + max(s1, s2) else None


def stream_residual(graph: Graph) -> Graph:
    graph = graph.copy()
    index = 0
    while index < len(graph.ops):
        scratch = _block_at(graph, index)
        if scratch is None:
            index += 1
            continue
        conv1, conv2, add = graph.ops[index:index + 3]
        members = (index, index + 1, index + 2)
        for op in (conv1, conv2, add):
            op.attrs["residual_block"] = members
        conv1.attrs["streamed"] = (conv1.outputs[0], conv2.outputs[0])
        conv1.attrs["scratch_bytes"], conv2.attrs["scratch_bytes"] = scratch, 0
        index += 3
    return graph
