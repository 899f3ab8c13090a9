"""plan_memory: one static arena; every activation and scratch buffer gets an offset.

Buffers whose lifetimes (first to last op that touches them) overlap never share bytes; the
others may. Placement is greedy, largest buffer first, each at the lowest offset that does not
collide with an already placed, co-live buffer. RESHAPE and SQUEEZE outputs alias their input.
The graph's inputs are read from the caller's input buffer and its outputs written straight into
the caller's output buffer, so neither takes arena space. Scratch sizes come from the
`scratch_bytes` attribute that kernel selection puts on each op.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mcugen.ir import Graph

ALIGN = 8
ALIAS_OPS = ("RESHAPE", "SQUEEZE")


@dataclass(frozen=True)
class Placement:
    """Where a buffer lives: `region` is "arena", "input" or "output"; offset in bytes."""

    region: str
    offset: int
    size: int


@dataclass
class MemoryPlan:
    arena_bytes: int
    tensors: dict[str, Placement]  # every activation tensor name -> placement
    scratch: dict[int, Placement] = field(default_factory=dict)  # op index -> scratch buffer
    copies: list[int] = field(default_factory=list)  # alias ops that must copy (input aliased to output)
    input_bytes: int = 0
    output_bytes: int = 0
    peak_by_op: list[int] = field(default_factory=list)  # arena bytes live during each op


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

    buffers = [
        _Buffer(r, _align(max(graph.tensor(n).nbytes for n in members[r])), first[r], last.get(r, first[r]))
        for r in members
        if r not in region_of_root and r in first
    ]
    for index, op in enumerate(graph.ops):
        size = int(op.attrs.get("scratch_bytes", 0))
        if size:
            buffers.append(_Buffer(("scratch", index), _align(size), index, index))

    arena = _place(buffers)

    tensors: dict[str, Placement] = {}
    by_key = {b.key: b for b in buffers}
    for name, r in roots.items():
        if r in region_of_root:
            tensors[name] = region_of_root[r] if name not in io_offsets else io_offsets[name]
        elif r in by_key:
            tensors[name] = Placement("arena", by_key[r].offset, graph.tensor(name).nbytes)
    for name, placement in io_offsets.items():
        tensors[name] = placement
    scratch = {b.key[1]: Placement("arena", b.offset, b.size) for b in buffers if isinstance(b.key, tuple)}
    peak = [sum(b.size for b in buffers if b.first <= i <= b.last) for i in range(len(graph.ops))]
    graph.attrs["memory_plan"] = MemoryPlan(
        arena_bytes=arena,
        tensors=tensors,
        scratch=scratch,
        copies=copies,
        input_bytes=sum(p.size for p in io_offsets.values() if p.region == "input"),
        output_bytes=sum(p.size for p in io_offsets.values() if p.region == "output"),
        peak_by_op=peak,
    )
    return graph


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
