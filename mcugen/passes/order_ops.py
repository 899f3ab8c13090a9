"""order_ops: run the ops in the topological order, among a few candidates, that plans the
smallest arena.

The .tflite file fixes one order, but ops name their operands, so any topological order computes
the same outputs; the order only decides which activations are live at once (finishing one branch
before starting the next frees its intermediates sooner). Candidates:

- the file order;
- a greedy order: among the ready ops, the one that adds the fewest live bytes (its outputs less
  the inputs it is the last reader of), ties to the lower file index;
- every topological order, when the graph has at most EXACT_ORDERS of them.

When every candidate is the file order (always so for a chain) nothing is planned. Otherwise each
distinct candidate is planned with the real planner (stream_residual, then plan_memory), and the
file order is kept unless another has a strictly smaller arena (the smallest wins, ties to the
earlier candidate). The pass is deterministic: backend passes re-run when an output directory is
loaded. assign_bits' footprint calls choose_order itself, to reuse the chosen plan.

A changed order is recorded for the report as graph.attrs["op_order"] = {"file_indices": file
index of each op in the new order, "file_order_arena_bytes": the file order's arena,
"arena_bytes": the chosen order's arena}.
"""
from __future__ import annotations

from dataclasses import dataclass

from mcugen.ir import Graph
from mcugen.passes.plan_memory import plan_memory
from mcugen.passes.stream_residual import stream_residual

EXACT_ORDERS = 8  # each is one plan_memory run; beyond this, the greedy order stands for them


def _predecessors(graph: Graph) -> list[set[int]]:
    """For each op, the ops that produce its activation inputs."""
    producer = {name: i for i, op in enumerate(graph.ops) for name in op.outputs}
    return [{producer[n] for n in op.inputs if n in producer} for op in graph.ops]


def _greedy(graph: Graph, preds: list[set[int]]) -> list[int]:
    readers: dict[str, int] = {}
    for op in graph.ops:
        for name in set(op.inputs) - {None}:
            readers[name] = readers.get(name, 0) + 1
    kept = set(graph.outputs)

    def growth(i: int) -> int:
        op = graph.ops[i]
        made = sum(graph.tensor(n).nbytes for n in op.outputs)
        freed = sum(graph.tensor(n).nbytes for n in set(op.inputs) - {None}
                    if readers[n] == 1 and n not in kept and not graph.tensor(n).is_const)
        return made - freed

    order, done = [], set()
    while len(order) < len(graph.ops):
        ready = [i for i in range(len(graph.ops)) if i not in done and preds[i] <= done]
        chosen = min(ready, key=lambda i: (growth(i), i))
        order.append(chosen)
        done.add(chosen)
        for name in set(graph.ops[chosen].inputs) - {None}:
            readers[name] -= 1
    return order


def _all_orders(preds: list[set[int]], limit: int) -> list[list[int]] | None:
    """Every topological order (each in lexicographic order of file indices), or None if there
    are more than `limit`."""
    found: list[list[int]] = []
    order: list[int] = []
    done: set[int] = set()

    def extend() -> bool:
        if len(order) == len(preds):
            found.append(list(order))
            return len(found) <= limit
        for i in range(len(preds)):
            if i not in done and preds[i] <= done:
                order.append(i)
                done.add(i)
                going = extend()
                order.pop()
                done.discard(i)
                if not going:
                    return False
        return True

    return found if extend() else None


def _planned(graph: Graph, order: list[int]) -> Graph:
    ordered = Graph(graph.tensors, [graph.ops[i] for i in order], graph.inputs, graph.outputs)
    return plan_memory(stream_residual(ordered))


def _arena(planned: Graph) -> int:
    return planned.attrs["memory_plan"].arena_bytes


@dataclass
class Choice:
    """The chosen order as file indices; the graph in that order through stream_residual and
    plan_memory, so that assign_bits' footprint need not plan it again (None when every candidate
    was the file order: nothing was planned); the file order's arena (None likewise)."""

    order: list[int]
    planned: Graph | None = None
    file_arena: int | None = None


def choose_order(graph: Graph) -> Choice:
    """order_ops' decision, with the plans it measured."""
    preds = _predecessors(graph)
    file_order = list(range(len(graph.ops)))
    candidates = [file_order, _greedy(graph, preds)] + (_all_orders(preds, EXACT_ORDERS) or [])
    distinct = [c for k, c in enumerate(candidates) if c not in candidates[:k]]
    if len(distinct) == 1:
        return Choice(file_order)
    best = Choice(file_order, _planned(graph, file_order))
    best.file_arena = _arena(best.planned)
    for candidate in distinct[1:]:
        planned = _planned(graph, candidate)
        if _arena(planned) < _arena(best.planned):
            best = Choice(candidate, planned, best.file_arena)
    return best


def order_ops(graph: Graph) -> Graph:
    choice = choose_order(graph)
    if choice.order == list(range(len(graph.ops))):
        return graph
    out = graph.copy()
    out.ops = [out.ops[i] for i in choice.order]
    out.attrs["op_order"] = {"file_indices": choice.order, "file_order_arena_bytes": choice.file_arena,
                             "arena_bytes": _arena(choice.planned)}
    return out
