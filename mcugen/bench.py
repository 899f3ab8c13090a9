"""`mcugen bench`: executed instructions of one inference under QEMU, sizes from the ELF.

Instruction counts are exact and repeatable (a QEMU plugin counts every executed instruction of
one `{name}_run` call). Per-layer counts come from a second, profiling build whose marks between
layers cost a few instructions each, so the per-layer figures add up to slightly more than the
plain build's total, which is the figure to quote.

Next to each figure the bench prints TensorFlow Lite Micro + CMSIS-NN's on the same emulated
Cortex-M7, from the table in docs/tflm_cmsis_nn.toml (keyed by the model's sha256), and the ratio.
RAM is compared with the same stack reserve (the board's) added to both sides.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from mcugen.analysis import op_macs


@lru_cache(maxsize=1)
def tflm_table() -> dict[str, dict]:
    """model sha256 -> TFLM + CMSIS-NN figures (docs/tflm_cmsis_nn.toml)."""
    from mcugen.resources import docs_dir

    return tomllib.loads((docs_dir() / "tflm_cmsis_nn.toml").read_text())["models"]


def lcg_bytes(count: int, seed: int = 12345) -> bytes:
    """The benchmark input of ../shared/TARGETS.md: s = s*1103515245 + 12345, byte = (s >> 16) & 0xff."""
    out = bytearray(count)
    s = seed
    for i in range(count):
        s = (s * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = (s >> 16) & 0xFF
    return bytes(out)


@dataclass
class Bench:
    board: str
    core: str
    qemu_machine: str
    instructions: int
    macs: int
    ro_bytes: int
    rw_bytes: int
    arena_bytes: int
    layers: list[dict] = field(default_factory=list)
    stack_bytes: int = 0
    tflm: dict | None = None  # TFLM + CMSIS-NN figures of this model, when the table has them

    def _tflm_figures(self) -> dict | None:
        """TFLM's figures in this bench's terms (RAM with the same stack reserve)."""
        if self.tflm is None:
            return None
        return {"instructions": self.tflm["instructions"], "ro_bytes": self.tflm["flash_bytes"],
                "rw_bytes": self.tflm["ram_bytes"] + self.stack_bytes, "arena_bytes": self.tflm["arena_bytes"]}

    def ratios(self) -> dict | None:
        theirs = self._tflm_figures()
        if theirs is None:
            return None
        ours = {"instructions": self.instructions, "ro_bytes": self.ro_bytes, "rw_bytes": self.rw_bytes,
                "arena_bytes": self.arena_bytes}
        return {k: round(ours[k] / theirs[k], 4) for k in ours}

    def _versus(self, key: str) -> str:
        theirs = self._tflm_figures()
        if theirs is None:
            return ""
        return f"  (TFLM + CMSIS-NN {theirs[key]:,}: {self.ratios()[key]:.2f}x)"

    @property
    def macs_per_instruction(self) -> float:
        return round(self.macs / self.instructions, 4) if self.instructions else 0.0

    def as_json(self) -> dict:
        return {
            "board": self.board, "core": self.core, "qemu_machine": self.qemu_machine,
            "instructions": self.instructions, "macs": self.macs, "macs_per_instruction": self.macs_per_instruction,
            "ro_bytes": self.ro_bytes, "rw_bytes": self.rw_bytes, "arena_bytes": self.arena_bytes,
            "layers": self.layers,
            "stack_bytes": self.stack_bytes,
            "tflm_cmsis_nn": self._tflm_figures(),
            "ratio": self.ratios(),
        }

    def as_text(self) -> str:
        lines = [
            f"{self.board} ({self.core}) under QEMU {self.qemu_machine}, input: TARGETS.md LCG bytes (seed 12345)",
            f"instructions per inference: {self.instructions:,}{self._versus('instructions')}",
            f"MACs: {self.macs:,}  ({self.macs_per_instruction:.2f} MACs per instruction)",
            f"flash (RO): {self.ro_bytes:,} B{self._versus('ro_bytes')}",
            f"RAM (RW, stack reserve {self.stack_bytes:,} B included): {self.rw_bytes:,} B{self._versus('rw_bytes')}",
            f"arena: {self.arena_bytes:,} B{self._versus('arena_bytes')}",
        ]
        if self.tflm is not None:
            lines.append(f"TFLM + CMSIS-NN: docs/tflm_cmsis_nn.toml ({self.tflm['name']}; "
                         "measured on the emulated Cortex-M7 mps2-an500)")
        lines += [
            "",
            f"{'#':>3}  {'op':<20} {'instructions':>13} {'MACs':>11} {'MACs/instr':>10}",
        ]
        for row in self.layers:
            if "runs_in" in row:
                lines.append(f"{row['index']:>3}  {row['op']:<20} {'in layer ' + str(row['runs_in']):>13}")
                continue
            op = "+".join(self.layers[i]["op"] for i in row.get("fused", [row["index"]]))
            lines.append(f"{row['index']:>3}  {op:<20} {row['instructions']:>13,} {row['macs']:>11,} "
                         f"{row['macs_per_instruction']:>10.2f}")
        return "\n".join(lines)


def run_bench(built, elf: Path, profile_elf: Path) -> Bench:
    from mcugen.toolchain.elf_size import elf_sizes
    from mcugen.toolchain.qemu import count_instructions

    graph, board = built.graph, built.board
    plan = graph.attrs["memory_plan"]
    record = lcg_bytes(plan.input_bytes)
    total = count_instructions(elf, board, record)["instructions"]
    marks = count_instructions(profile_elf, board, record, marks=True)["marks"]
    per_layer = np.diff(marks).tolist() if len(marks) == len(graph.ops) + 1 else []
    layers = []
    for index, (op, count) in enumerate(zip(graph.ops, per_layer)):
        # A streamed residual block (passes/stream_residual.py) runs whole at its first op: that
        # row gets the block's MACs, the others only their marks' few instructions.
        block = op.attrs.get("residual_block")
        inside = bool(block) and index != block[0]
        macs = 0 if inside else sum(op_macs(graph, graph.ops[i]) for i in block) if block else op_macs(graph, op)
        row = {"index": index, "op": op.kind, "kernel": op.attrs.get("kernel"), "instructions": int(count),
               "macs": macs, "macs_per_instruction": round(macs / count, 4) if count else 0.0}
        if block:
            row.update({"runs_in": block[0]} if inside else {"fused": list(block)})
        layers.append(row)
    sizes = elf_sizes(elf, board.stack_bytes)
    return Bench(board=board.name, core=board.core, qemu_machine=board.qemu_machine, instructions=total,
                 macs=sum(op_macs(graph, op) for op in graph.ops), ro_bytes=sizes["ro_bytes"],
                 rw_bytes=sizes["rw_bytes"], arena_bytes=plan.arena_bytes, layers=layers,
                 stack_bytes=board.stack_bytes, tflm=tflm_table().get(built.info.get("model_sha256", "")))
