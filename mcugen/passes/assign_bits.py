"""assign_bits: weight widths per layer and activation widths per tensor, in {8, 4, 2}, so that the
model fits the flash (RO) and RAM (RW) budgets with the least loss.

Options (graph.attrs["options"]): `bits` — "auto" (default: change precision only where a
budget needs it), "8", "4", "2" or "wNaM" (uniform widths, e.g. "w4a8"); `bits_strategy` —
"sensitivity" (default) or "rusci"; `budget` {ro_bytes, rw_bytes}; `stack_bytes`.

The pass decides; `quantize` (the next pass) builds the integer graph. The decision travels as
`graph.attrs["bit_widths"]` = {tensor name: bits}, absent when nothing changes, so that an int8
model that fits compiles byte for byte as before.

What can be cut ("units"): the int8 weights of every CONV_2D / DEPTHWISE_CONV_2D /
FULLY_CONNECTED, and every activation group that only ops with sub-byte kernels touch
(`subbyte_groups`; the model's input and output keep their types).

Memory is measured, not guessed: each candidate assignment is quantized for real and run
through `select_kernels`, `order_ops`, `stream_residual` and `plan_memory`, so RW is the actual
arena of the actual plan (scratch included) and RO counts packed weights, per-channel
requantization parameters and the pipeline's code estimate (one kernel per variant). Both keep a
margin (RO_MARGIN, RW_MARGIN): the firmware ELF, which the pipeline checks last, holds startup
code and tables on top.

- rusci (Rusci, Capotondi, Benini 2019): RO — cut the weights of the layers dominating flash
  first (every layer within RUSCI_DELTA of the largest, one step 8 -> 4 -> 2) until they fit;
  RW — a forward sweep cutting each op's outputs while the buffers live during the op exceed
  the arena target, then a backward sweep cutting its inputs, repeated until the plan fits.
- sensitivity: measures on calibration data the output error each cut causes alone (one
  reference run per unit and width), then greedily takes the cut with the least error per byte
  of overshoot removed, until everything fits; cuts that turned out unnecessary are undone.
  Rusci's assignment is computed too, and the measured better of the two is kept (the report
  gives both SQNRs).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from mcugen.codegen.layers import subbyte_capable
from mcugen.errors import UserError
from mcugen.inputs import load_calibration
from mcugen.ir import INT8, Graph
from mcugen.passes.order_ops import choose_order, order_ops
from mcugen.passes.plan_memory import plan_memory
from mcugen.passes.select_kernels import select_kernels
from mcugen.passes.stream_residual import stream_residual
from mcugen.quant.fidelity import noise_ratio, real, run_many
from mcugen.quant.quantizer import WEIGHTED_OPS, WIDTHS, Quantizer, activation_groups

RO_MARGIN, RO_MARGIN_MIN = 0.04, 2048  # of the RO estimate: what the ELF holds beyond it (tables, startup)
RW_MARGIN = 256  # bytes: alignment and the firmware's own variables
RUSCI_DELTA = 0.05  # layers within 5 % of the largest are cut together
SENSITIVITY_INPUTS = 8  # calibration inputs (evenly spread) on which cuts are compared
STRATEGIES = ("sensitivity", "rusci")


@dataclass(frozen=True)
class Unit:
    """One independently chosen width: a layer's weights or an activation group."""

    kind: str  # "weights" or "activations"
    tensors: tuple[str, ...]
    first_op: int  # the first op whose arithmetic this width changes

    def nbytes(self, graph: Graph, bits: int) -> int:
        return sum((graph.tensor(n).size * bits + 7) // 8 for n in self.tensors)


@dataclass(frozen=True)
class Targets:
    """What must fit: RO (the flash budget) and the arena (RAM less stack, I/O and a margin)."""

    ro: int
    arena: int


@dataclass(frozen=True)
class Footprint:
    ro: int  # the pipeline's estimate
    arena: int
    peaks: tuple[int, ...]  # arena bytes live during each op

    @property
    def ro_needed(self) -> int:
        """The estimate plus a safety margin: the flash the firmware ELF is taken to need."""
        return self.ro + max(RO_MARGIN_MIN, int(RO_MARGIN * self.ro))

    def fits(self, t: Targets) -> bool:
        return self.ro_needed <= t.ro and self.arena <= t.arena

    def excess(self, t: Targets) -> int:
        """Bytes over the targets; per-op overshoots count too, so that cutting one tensor of a
        peak shared by many ops is progress even before the arena shrinks."""
        return (max(0, self.ro_needed - t.ro) + max(0, self.arena - t.arena)
                + sum(max(0, p - t.arena) for p in self.peaks))


def parse_bits(text: str) -> tuple[int, int] | None:
    """(weight bits, activation bits) of a uniform --bits, None for "auto"."""
    text = str(text).strip().lower()
    if text == "auto":
        return None
    match = re.fullmatch(r"([248])|w([248])a([248])", text)
    if not match:
        raise UserError(f"--bits {text!r}: expected auto, 8, 4, 2 or wNaM with N and M in 8, 4, 2 (e.g. w4a8)")
    return (int(match[1]), int(match[1])) if match[1] else (int(match[2]), int(match[3]))


def subbyte_groups(graph: Graph) -> list[list[str]]:
    """The activation groups (tensors sharing one quantization) that may go below 8 bits, in graph
    order: int8 tensors the generated code can hold sub-byte, other than the graph's inputs and
    outputs (the caller's buffers keep the model's own types)."""
    groups: dict[str, list[str]] = {}
    for name, root in activation_groups(graph).items():
        groups.setdefault(root, []).append(name)
    io = set(graph.inputs) | set(graph.outputs)
    return [members for members in groups.values()
            if all(graph.tensor(n).dtype == INT8 and n not in io and subbyte_capable(graph, n) for n in members)]


def find_units(graph: Graph) -> list[Unit]:
    """Weight units in layer order, then activation groups in graph order."""
    units, seen = [], set()
    for index, op in enumerate(graph.ops):
        w = op.inputs[1] if op.kind in WEIGHTED_OPS else None
        if w is not None and w not in seen and graph.tensor(w).dtype == INT8 and subbyte_capable(graph, w):
            seen.add(w)
            units.append(Unit("weights", (w,), index))
    produced_by = {name: index for index, op in enumerate(graph.ops) for name in op.outputs}
    for members in subbyte_groups(graph):
        units.append(Unit("activations", tuple(members), min(produced_by[n] for n in members)))
    return units


def footprint(graph: Graph, cache: dict | None = None) -> Footprint:
    """The pipeline's RO estimate (packed constants, requantization parameters, code) and the
    arena of the real memory plan. `cache` (a dict the caller keeps) memoises kernel selection
    per op and operand types, which a search over many assignments would otherwise repeat."""
    from mcugen.pipeline import KERNEL_CODE_BYTES, NETWORK_CODE_BYTES_PER_LAYER  # the pipeline imports the passes
    from mcugen.report import layer_rows

    selected = select_kernels(graph) if cache is None else _select_kernels_per_op(graph, cache)
    choice = choose_order(selected)  # order_ops' choice, and the plan it made of it
    plan = (choice.planned or plan_memory(stream_residual(selected))).attrs["memory_plan"]
    peaks = list(plan.peak_by_op)
    for position, index in enumerate(choice.order):
        peaks[index] = plan.peak_by_op[position]  # the search indexes ops in file order
    kernels = {op.attrs.get("kernel") for op in selected.ops} - {None}
    ro = (sum(row["ro_bytes"] for row in layer_rows(selected))
          + KERNEL_CODE_BYTES * len(kernels) + NETWORK_CODE_BYTES_PER_LAYER * len(selected.ops))
    return Footprint(ro=ro, arena=plan.arena_bytes, peaks=tuple(peaks))


def _select_kernels_per_op(graph: Graph, cache: dict) -> Graph:
    """select_kernels, one op at a time (each op's choice depends on its own operands only)."""
    ops = []
    for index, op in enumerate(graph.ops):
        tensors = {n: graph.tensor(n) for n in (*op.inputs, *op.outputs) if n is not None}
        key = (index, tuple((t.dtype, None if t.quant is None else (t.quant.scale.tobytes(), t.quant.zero_point.tobytes()))
                            for t in tensors.values()))
        if key not in cache:
            alone = Graph(tensors, [op], [n for n, t in tensors.items() if not t.is_const and n not in op.outputs],
                          list(op.outputs))
            cache[key] = select_kernels(alone).ops[0].attrs
        ops.append(replace(op, attrs=cache[key]))
    return Graph(graph.tensors, ops, graph.inputs, graph.outputs)


def targets(options: dict) -> Targets:
    """RO: the flash budget; the arena (its I/O slots included): the RAM budget less the stack
    and RW_MARGIN."""
    budget = options["budget"]
    return Targets(ro=budget["ro_bytes"],
                   arena=budget["rw_bytes"] - int(options.get("stack_bytes", 0)) - RW_MARGIN)


def assign_bits(graph: Graph) -> Graph:
    options = graph.attrs.get("options", {})
    uniform = parse_bits(options.get("bits", "auto"))
    strategy = options.get("bits_strategy") or "sensitivity"
    if strategy not in STRATEGIES:
        raise UserError(f"--bits-strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    units = find_units(graph)
    if uniform is not None:
        state = tuple(uniform[0] if u.kind == "weights" else uniform[1] for u in units)
        report = {"bits": options["bits"], "strategy": "uniform"}
    elif "budget" in options and units:
        t = targets(options)
        if footprint(graph).fits(t):
            return graph
        search = Search(graph, units, t)
        state, report = search.run(strategy)
        report = {"bits": "auto", **report}
    else:
        return graph
    if all(b == 8 for b in state):
        return graph
    out = graph.copy()
    out.attrs["bit_widths"] = {n: b for u, b in zip(units, state) if b != 8 for n in u.tensors}
    out.attrs.setdefault("report", {})["compression"] = report
    return out


def _lower(bits: int) -> int:
    return WIDTHS[WIDTHS.index(bits) + 1]


class Search:
    """One model's assignment search: candidate graphs, their footprints and output errors, cached."""

    def __init__(self, graph: Graph, units: list[Unit], t: Targets):
        self.graph, self.units, self.t = graph, units, t
        calibration = graph.attrs.get("calibration") or load_calibration(None, graph)
        self.quantizer = Quantizer(graph, calibration["inputs"])
        n = len(calibration["inputs"])
        self.subset = sorted({round(i * (n - 1) / max(SENSITIVITY_INPUTS - 1, 1)) for i in range(min(n, SENSITIVITY_INPUTS))})
        self.subset_inputs = [calibration["inputs"][i] for i in self.subset]
        self.subset_values = {k: v[self.subset] for k, v in self.quantizer.values.items()}
        out = graph.outputs[0]
        self.reference = real(graph.tensor(out), self.subset_values[out])
        self._footprints: dict[tuple, Footprint] = {}
        self._kernels: dict = {}
        self._noise: dict[tuple[int, int], float] = {}

    def widths(self, state) -> dict[str, int]:
        return {n: b for u, b in zip(self.units, state) for n in u.tensors}

    def footprint(self, state) -> Footprint:
        state = tuple(state)
        if state not in self._footprints:
            self._footprints[state] = footprint(self.quantizer.build(self.widths(state)), self._kernels)
        return self._footprints[state]

    def measured_noise(self, state, start: int = 0) -> float:
        """Output error energy over signal energy on the sensitivity inputs; ops before `start`
        must compute as in the original."""
        g = self.quantizer.build(self.widths(state))
        got = run_many(g, self.subset_inputs, resume=(self.subset_values, start))[g.outputs[0]]
        return noise_ratio(self.reference, real(g.tensor(g.outputs[0]), got))

    def noise(self, i: int, bits: int) -> float:
        """The error of cutting unit i alone to `bits` (0 at 8 bits)."""
        if bits == 8:
            return 0.0
        if (i, bits) not in self._noise:
            state = [8] * len(self.units)
            state[i] = bits
            self._noise[(i, bits)] = self.measured_noise(state, self.units[i].first_op)
        return self._noise[(i, bits)]

    def run(self, strategy: str) -> tuple[tuple[int, ...], dict]:
        floor = (WIDTHS[-1],) * len(self.units)
        if not self.footprint(floor).fits(self.t):
            self._infeasible(floor)
        rusci = self.rusci()
        report = {"strategy": strategy, "targets": {"ro_bytes": self.t.ro, "arena_bytes": self.t.arena}}
        if strategy == "rusci":
            chosen = rusci
        else:
            greedy = self.sensitivity()
            measured = {"sensitivity": self.measured_noise(greedy), "rusci": self.measured_noise(rusci)}
            chosen = rusci if measured["rusci"] < measured["sensitivity"] else greedy
            report["measured_sqnr_db"] = {k: _db(v) for k, v in measured.items()}
            report["chosen"] = "rusci" if chosen is rusci else "sensitivity"
            if chosen is rusci:
                report["note"] = ("Rusci's assignment measured a smaller output error on the calibration "
                                  "inputs than the greedy sensitivity one, so it was kept")
        fp = self.footprint(chosen)
        report["estimate"] = {"ro_bytes": fp.ro, "ro_bytes_with_margin": fp.ro_needed, "arena_bytes": fp.arena}
        report["units"] = [{"kind": u.kind, "tensors": list(u.tensors), "first_op": u.first_op, "bits": b}
                           for u, b in zip(self.units, chosen) if b != 8]
        return chosen, report

    def _infeasible(self, floor_state: tuple[int, ...]) -> None:
        """The error for budgets that 2 bits everywhere cannot meet: both smallest reachable
        figures (in budget terms: margins and stack included) and what is largest there."""
        from mcugen.report import layer_rows

        budget, floor = self.graph.attrs["options"]["budget"], self.footprint(floor_state)
        rw_min = floor.arena + budget["rw_bytes"] - self.t.arena
        selected = select_kernels(self.quantizer.build(self.widths(floor_state)))
        planned = plan_memory(stream_residual(order_ops(selected)))
        largest = []
        if floor.ro_needed > self.t.ro:
            rows = sorted(layer_rows(planned), key=lambda r: (-r["ro_bytes"], r["index"]))[:3]
            largest.append("largest layers: " + ", ".join(f"layer {r['index']} {r['op']} {r['ro_bytes']:,} B" for r in rows))
        if floor.arena > self.t.arena:
            plan = planned.attrs["memory_plan"]
            buffers = [(p.size, f"'{n}'") for n, p in plan.tensors.items() if p.region == "arena"]
            buffers += [(p.size, f"scratch of op {i}") for i, p in plan.scratch.items()]
            live = sorted(buffers, key=lambda x: (-x[0], x[1]))[:3]
            largest.append("largest arena buffers: " + ", ".join(f"{what} {size:,} B" for size, what in live))
        raise UserError(
            f"does not fit even with every layer at 2 bits: flash (RO) budget {budget['ro_bytes']:,} B, smallest "
            f"reachable ~{floor.ro_needed:,} B; RAM (RW) budget {budget['rw_bytes']:,} B, smallest reachable ~{rw_min:,} B "
            f"(estimates, margins and stack included); at 2 bits, {'; '.join(largest)}. Raise --flash / --ram or "
            f"choose a board with more memory")

    def rusci(self) -> tuple[int, ...]:
        """Rusci's rule: the RO phase, then the RW sweeps; again while either undid the other
        (an activation cut can add a kernel variant, hence code)."""
        state = [8] * len(self.units)
        while True:
            before = list(state)
            self._rusci_weights(state)
            self._rusci_activations(state)
            if state == before or self.footprint(state).fits(self.t):
                return tuple(state)

    def _rusci_weights(self, state: list[int]) -> None:
        """Cut the weights of the largest layers (all within RUSCI_DELTA of the largest) a step."""
        weights = [i for i, u in enumerate(self.units) if u.kind == "weights"]
        while self.footprint(state).ro_needed > self.t.ro:
            sizes = {i: self.units[i].nbytes(self.graph, state[i]) for i in weights if state[i] > WIDTHS[-1]}
            if not sizes:
                return
            top = max(sizes.values())
            for i, size in sizes.items():
                if size >= (1 - RUSCI_DELTA) * top:
                    state[i] = _lower(state[i])

    def _rusci_activations(self, state: list[int]) -> None:
        """Forward, cut each op's outputs while its live buffers exceed the arena; backward, its
        inputs; the largest tensor first."""
        of_tensor = {n: i for i, u in enumerate(self.units) if u.kind == "activations" for n in u.tensors}

        def cut_largest(names) -> bool:
            cuttable = [of_tensor[n] for n in names if n in of_tensor and state[of_tensor[n]] > WIDTHS[-1]]
            if cuttable:
                i = max(cuttable, key=lambda i: (self.units[i].nbytes(self.graph, state[i]), -i))
                state[i] = _lower(state[i])
            return bool(cuttable)

        ops = range(len(self.graph.ops))
        while self.footprint(state).arena > self.t.arena:
            before = list(state)
            for order, side in ((ops, "outputs"), (reversed(ops), "inputs")):
                for k in order:
                    while self.footprint(state).peaks[k] > self.t.arena and cut_largest(getattr(self.graph.ops[k], side)):
                        pass
            # every op fits alone but the placement does not: cut the largest tensor anywhere
            if state == before and not cut_largest(list(of_tensor)):
                return

    def sensitivity(self) -> tuple[int, ...]:
        state = (8,) * len(self.units)
        while not self.footprint(state).fits(self.t):
            excess = self.footprint(state).excess(self.t)
            cuts = [(i, state[:i] + (_lower(b),) + state[i + 1:]) for i, b in enumerate(state) if b != WIDTHS[-1]]
            saved = {i: excess - self.footprint(c).excess(self.t) for i, c in cuts}
            useful = [(i, c) for i, c in cuts if saved[i] > 0]
            if not useful:  # no single cut lowers the overshoot: judge cuts by the bytes they free
                saved = {i: self.units[i].nbytes(self.graph, state[i]) - self.units[i].nbytes(self.graph, c[i])
                         for i, c in cuts}
                useful = cuts
            state = min(useful, key=lambda ic: (self._step_cost(ic[0], state[ic[0]]) / saved[ic[0]], ic[0]))[1]
        return self._undo_needless(state)

    def _step_cost(self, i: int, bits: int) -> float:
        """The added error of cutting unit i one step below `bits`."""
        return max(self.noise(i, _lower(bits)) - self.noise(i, bits), 0.0)

    def _undo_needless(self, state: tuple[int, ...]) -> tuple[int, ...]:
        """Raise back, most useful first, every cut the final assignment fits without."""
        while True:
            cut = sorted((i for i, b in enumerate(state) if b != 8),
                         key=lambda i: (-self._step_cost(i, _raise(state[i])), i))
            for i in cut:
                candidate = state[:i] + (_raise(state[i]),) + state[i + 1:]
                if self.footprint(candidate).fits(self.t):
                    state = candidate
                    break
            else:
                return state


def _raise(bits: int) -> int:
    return WIDTHS[WIDTHS.index(bits) - 1]


def _db(noise: float) -> float | None:
    return None if noise == 0 else round(float(-10.0 * np.log10(noise)), 3)
