"""plan_memory: one static arena; every activation and scratch buffer gets an offset.

Buffers whose lifetimes (first to last op that touches them) overlap never share bytes; the
others may. Placement is greedy, largest buffer first, each at the lowest offset that does not
collide with an already placed, co-live buffer. RESHAPE and SQUEEZE outputs alias their input.

In-place and overlapped execution: when an op's input dies at that op, its output may share the
input's bytes, shifted by an offset the kernel's access order makes safe. Elementwise kernels
(ADD, MUL, requantize, LOGISTIC, SOFTMAX) write element i after reading it: offset 0. Window
kernels (conv, depthwise, pooling) write output pixels in raster order, each after reading its
window: the output may start below the input as long as every write stays under the lowest input
pixel still to be read (computed exactly from the layer's geometry below). Such a chain of
buffers is placed as one block.
The graph's inputs are read from whatever input buffer the caller passes and its outputs written
straight into the caller's output buffer. The arena also holds an input slot and an output slot
(`NAME_input()`, `NAME_output()`): a caller that fills the one and reads the other needs no buffers
of its own, as in TFLM, where the input and output tensors live in the arena. The input slot is live
until the graph's inputs are last read, the output slot from the first write of an output on, so
the two usually share bytes. Scratch sizes come from the `scratch_bytes` attribute that kernel
selection puts on each op. Tensors named in an op's `streamed` attribute (stream_residual) exist
only as rows inside that op's scratch: they get no buffer and no placement.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcugen.ir import Graph, Op
from mcugen.quant.lowering import lower

ALIGN = 8
ALIAS_OPS = ("RESHAPE", "SQUEEZE")
# Kernels that allow output == input (mcugen_kernels.h: "In place").
ELEMENTWISE_IN_PLACE = ("mcugen_add_s8", "mcugen_mul_s8", "mcugen_requantize_s8", "mcugen_logistic_s8",
                        "mcugen_softmax_s8")
# The four-channel depthwise kernels, whose channel groups each sweep all pixels.
DEPTHWISE_GROUPS = ("mcugen_depthwise_conv2d_c4_s8", "mcugen_depthwise_conv2d_3x3_s8")
# Kernels that write output pixels in raster order, each after reading its window.
RASTER_WINDOW = ("mcugen_conv2d_s8", "mcugen_conv2d_1x1_s8", *DEPTHWISE_GROUPS,
                 "mcugen_avg_pool2d_s8", "mcugen_max_pool2d_s8")


@dataclass(frozen=True)
class Placement:
    """Where a buffer lives: `region` is "arena", "input" or "output"; offset in bytes."""

    region: str
    offset: int
    size: int


@dataclass
class MemoryPlan:
    arena_bytes: int
    tensors: dict[str, Placement]  # every activation tensor name -> placement (none if streamed)
    scratch: dict[int, Placement] = field(default_factory=dict)  # op index -> scratch buffer
    copies: list[int] = field(default_factory=list)  # alias ops that must copy (input aliased to output)
    input_bytes: int = 0
    output_bytes: int = 0
    slots: dict[str, Placement] = field(default_factory=dict)  # "input"/"output" -> arena slot
    peak_by_op: list[int] = field(default_factory=list)  # arena bytes live during each op
    overlaps: dict[int, int] = field(default_factory=dict)  # op index -> output offset - input offset


@dataclass
class _Buffer:
    key: object  # tensor-group root name, or ("scratch", op index)
    size: int
    first: int
    last: int
    offset: int = -1


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _alias_roots(graph: Graph) -> tuple[dict[str, str], list[int]]:
    """Map each activation to the root of its alias group; name the alias ops that must copy."""
    root: dict[str, str] = {t.name: t.name for t in graph.activations()}

    def find(name: str) -> str:
        while root[name] != name:
            name = root[name]
        return name

    copies = []
    graph_inputs, graph_outputs = set(graph.inputs), set(graph.outputs)
    for index, op in enumerate(graph.ops):
        if op.kind not in ALIAS_OPS:
            continue
        src, dst = find(op.inputs[0]), op.outputs[0]
        group_has_input = any(find(n) == src for n in graph_inputs)
        if group_has_input and dst in graph_outputs:
            copies.append(index)  # caller's input cannot also be the caller's output
            continue
        root[dst] = src
    return {name: find(name) for name in root}, copies


def _window_geometry(graph: Graph, op: Op):
    """(kernel h, w, stride h, w, pad h, w, dilation h, w) of a raster window kernel."""
    p = lower(graph, op)
    if op.kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return p.filter_h, p.filter_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w, 1, 1
    w = graph.tensor(op.inputs[1]).shape
    return w[1], w[2], p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h, p.dilation_w


def _first_read(size: int, origins: np.ndarray, taps: int, dilation: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output position: the first input index its window reads, and whether it reads any."""
    k = np.arange(taps)
    inside = (origins[:, None] + k[None, :] * dilation >= 0) & (origins[:, None] + k[None, :] * dilation < size)
    first = np.argmax(inside, axis=1)
    return origins + first * dilation, inside.any(axis=1)


def _raster_offset(graph: Graph, op: Op) -> int | None:
    """The largest safe (output start - input start) for a raster window kernel, or None.

    Output pixel p (flat n, y, x) is written after the windows of pixels <= p were read; it must
    land below the lowest input pixel that pixels >= p still read.
    """
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if len(x.shape) != 4 or len(y.shape) != 4:
        return None
    n, in_h, in_w, in_c = x.shape
    _, out_h, out_w, out_c = y.shape
    kh, kw, sh, sw, ph, pw, dh, dw = _window_geometry(graph, op)
    rows, rows_any = _first_read(in_h, np.arange(out_h) * sh - ph, kh, dh)
    cols, cols_any = _first_read(in_w, np.arange(out_w) * sw - pw, kw, dw)
    batch = np.arange(n)[:, None, None]
    first = ((batch * in_h + rows[None, :, None]) * in_w + cols[None, None, :]).reshape(-1)
    reads = (np.ones((n, 1, 1), bool) & rows_any[None, :, None] & cols_any[None, None, :]).reshape(-1)
    first = np.where(reads, first, np.iinfo(np.int64).max)
    still_needed = np.minimum.accumulate(first[::-1])[::-1]  # lowest input pixel read by pixels >= p
    pixels = np.arange(first.size)
    bounds = np.where(still_needed == np.iinfo(np.int64).max, np.iinfo(np.int64).max,
                      still_needed * in_c - (pixels + 1) * out_c)
    delta = int(bounds.min())
    if op.attrs.get("kernel") in DEPTHWISE_GROUPS:
        if out_c != in_c:
            return None  # depth multiplier > 1: a group's output channels are not its input's
        # channel groups sweep all pixels: whole pixels apart, a group overwrites only its own
        # channels (an overlapping tail group stores only channels no earlier group wrote)
        delta = delta // out_c * out_c
    return min(delta, 0)


def _overlap(graph: Graph, op: Op) -> tuple[str, int] | None:
    """(input name, output start - input start) when op's output may share its input's bytes."""
    kernel = op.attrs.get("kernel")
    out = graph.tensor(op.outputs[0])
    if kernel in ELEMENTWISE_IN_PLACE:
        same = [n for n in op.inputs if n is not None and not graph.tensor(n).is_const
                and graph.tensor(n).nbytes == out.nbytes]
        return (same, 0) if same else None
    if kernel in RASTER_WINDOW:
        delta = _raster_offset(graph, op)
        return None if delta is None else ([op.inputs[0]], delta)
    return None


def _overlap_groups(graph: Graph, buffers: dict, roots: dict, first: dict, last: dict):
    """Chains of in-place ops: root -> (group root, offset of the buffer inside its group)."""
    where = {r: (r, 0) for r in buffers}
    overlaps = {}
    for index, op in enumerate(graph.ops):
        found = _overlap(graph, op) if op.outputs and op.outputs[0] is not None else None
        if found is None:
            continue
        candidates, delta = found
        out_root = roots[op.outputs[0]]
        if out_root not in buffers or where[out_root][0] != out_root or first[out_root] != index:
            continue
        for name in candidates:
            in_root = roots[name]
            if in_root in buffers and last.get(in_root) == index and in_root != out_root:
                group, offset = where[in_root]
                where[out_root] = (group, offset + delta)
                overlaps[index] = delta
                break
    return where, overlaps


def plan_memory(graph: Graph) -> Graph:
    graph = graph.copy()
    roots, copies = _alias_roots(graph)
    members: dict[str, list[str]] = {}
    for name, r in roots.items():
        members.setdefault(r, []).append(name)

    # Where each group lives: the caller's buffers if any member is a graph input or output.
    io_offsets: dict[str, Placement] = {}
    for region, names in (("input", graph.inputs), ("output", graph.outputs)):
        offset = 0
        for name in names:
            size = graph.tensor(name).nbytes
            io_offsets[name] = Placement(region, offset, size)
            offset += size
    region_of_root = {}
    for r, names in members.items():
        io = [io_offsets[n] for n in names if n in io_offsets]
        if io:
            region_of_root[r] = io[0]

    # Lifetimes in op indices; graph inputs are live from the start.
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for name in graph.inputs:
        first[roots[name]] = 0
    for index, op in enumerate(graph.ops):
        for name in [*op.inputs, *op.outputs]:
            if name is None or graph.tensor(name).is_const:
                continue
            r = roots[name]
            first.setdefault(r, index)
            last[r] = index
    for name in graph.outputs:
        last[roots[name]] = len(graph.ops)

    # Tensors an op streams through its own scratch (stream_residual) take no arena space.
    streamed = {name for op in graph.ops for name in op.attrs.get("streamed", ())}
    sizes = {r: max(graph.tensor(n).nbytes for n in members[r]) for r in members
             if r not in region_of_root and r in first and r not in streamed}
    where, overlaps = _overlap_groups(graph, sizes, roots, first, last)
    buffers = []
    for group in sorted({g for g, _ in where.values()}, key=str):
        parts = [r for r in sizes if where[r][0] == group]
        low = min(where[r][1] for r in parts)
        span = max(where[r][1] + sizes[r] for r in parts) - low
        buffers.append(_Buffer(group, _align(span), min(first[r] for r in parts),
                               max(last.get(r, first[r]) for r in parts)))
        for r in parts:
            where[r] = (group, where[r][1] - low)
    for index, op in enumerate(graph.ops):
        size = int(op.attrs.get("scratch_bytes", 0))
        if size:
            buffers.append(_Buffer(("scratch", index), _align(size), index, index))
    io_bytes = {region: sum(p.size for p in io_offsets.values() if p.region == region)
                for region in ("input", "output")}
    end = len(graph.ops)
    slot_spans = {"input": (0, max((last.get(roots[n], 0) for n in graph.inputs), default=0)),
                  "output": (min((first.get(roots[n], end) for n in graph.outputs), default=end), end)}
    for region, (start, stop) in slot_spans.items():
        if io_bytes[region]:
            buffers.append(_Buffer(("slot", region), _align(io_bytes[region]), start, stop))

    arena = _place(buffers)

    tensors: dict[str, Placement] = {}
    by_key = {b.key: b for b in buffers}
    for name, r in roots.items():
        if r in region_of_root:
            tensors[name] = region_of_root[r] if name not in io_offsets else io_offsets[name]
        elif r in where:
            group, inside = where[r]
            tensors[name] = Placement("arena", by_key[group].offset + inside, graph.tensor(name).nbytes)
    for name, placement in io_offsets.items():
        tensors[name] = placement
    scratch = {b.key[1]: Placement("arena", b.offset, b.size) for b in buffers
               if isinstance(b.key, tuple) and b.key[0] == "scratch"}
    slots = {b.key[1]: Placement("arena", b.offset, io_bytes[b.key[1]]) for b in buffers
             if isinstance(b.key, tuple) and b.key[0] == "slot"}
    peak = [_live_bytes(graph, i, tensors, scratch,
                        [p for r, p in slots.items() if slot_spans[r][0] <= i <= slot_spans[r][1]])
            for i in range(len(graph.ops))]
    graph.attrs["memory_plan"] = MemoryPlan(
        arena_bytes=arena,
        tensors=tensors,
        scratch=scratch,
        copies=copies,
        input_bytes=io_bytes["input"],
        output_bytes=io_bytes["output"],
        slots=slots,
        peak_by_op=peak,
        overlaps=overlaps,
    )
    return graph


def _live_bytes(graph: Graph, index: int, tensors: dict[str, Placement], scratch: dict[int, Placement],
                live_slots: list[Placement]) -> int:
    """Arena bytes in use while op `index` runs: the union of its live tensors, its scratch and
    the live I/O slots."""
    spans = [(p.offset, p.offset + p.size) for name, p in tensors.items()
             if p.region == "arena" and _live(graph, name, index)]
    if index in scratch:
        spans.append((scratch[index].offset, scratch[index].offset + scratch[index].size))
    spans += [(p.offset, p.offset + p.size) for p in live_slots]
    used, end = 0, 0
    for lo, hi in sorted(spans):
        used += max(0, hi - max(lo, end))
        end = max(end, hi)
    return used


def _live(graph: Graph, name: str, index: int) -> bool:
    """Tensor `name` is written at or before op `index` and read at or after it."""
    ops = graph.ops
    made = [i for i, op in enumerate(ops) if name in op.outputs]
    used = [i for i, op in enumerate(ops) if name in op.inputs]
    start = made[0] if made else 0
    end = max(used) if used else start
    if name in graph.outputs:
        end = len(ops)
    return start <= index <= end


def _place(buffers: list[_Buffer]) -> int:
    """Greedy by size: each buffer at the lowest offset clear of placed, co-live buffers."""
    placed: list[_Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first, str(b.key))):
        live = sorted((p for p in placed if not (p.last < buf.first or buf.last < p.first)), key=lambda p: p.offset)
        offset = 0
        for other in live:
            if offset + buf.size <= other.offset:
                break
            offset = max(offset, other.offset + other.size)
        buf.offset = offset
        placed.append(buf)
    return max((b.offset + b.size for b in buffers), default=0)
