"""The build report: `report.json` for scripts, `report.md` for people, with the same numbers."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcugen.analysis import op_macs, op_weight_bytes
from mcugen.ir import Graph


def layer_rows(graph: Graph) -> list[dict[str, Any]]:
    """Per-layer bit-widths, flash bytes and MACs (the report's contract keys)."""
    rows = []
    for index, op in enumerate(graph.ops):
        ins = [t for t in graph.op_inputs(op) if t is not None]
        acts = [t for t in ins if not t.is_const]
        consts = [t for t in ins if t.is_const and t.dtype.bits <= 8]
        out = graph.tensor(op.outputs[0])
        rows.append({
            "index": index,
            "op": op.kind,
            "weight_bits": consts[0].dtype.bits if consts and op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") else None,
            "input_bits": acts[0].dtype.bits if acts else None,
            "output_bits": out.dtype.bits,
            "ro_bytes": op_weight_bytes(graph, op) + int(op.attrs.get("param_bytes", 0)),
            "macs": op_macs(graph, op),
            "kernel": op.attrs.get("kernel"),
            "scratch_bytes": int(op.attrs.get("scratch_bytes", 0)),
        })
    return rows


def write_reports(out_dir: Path, report: dict[str, Any]) -> None:
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    (out_dir / "report.md").write_text(render_markdown(report))


def _kb(n: int | None) -> str:
    return "—" if n is None else f"{n:,} B ({n / 1024:.1f} KiB)"


def _fits(used: int, budget: int) -> str:
    return f"{100.0 * used / budget:.1f} % of budget" if budget else ""


def render_markdown(report: dict[str, Any]) -> str:
    budget, est = report["budget"], report["estimate"]
    lines = [
        f"# mcugen build report: {report['model']}",
        "",
        f"Board **{report['board']}**. Output prefix `{report['name']}`.",
        "",
        "| memory | budget | estimate | ELF (measured) |",
        "| --- | --- | --- | --- |",
    ]
    elf = report.get("elf") or {}
    for key, label in (("ro_bytes", "flash (RO)"), ("rw_bytes", "RAM (RW)")):
        measured = elf.get(key)
        note = f"{_kb(measured)}, {_fits(measured, budget[key])}" if measured is not None else "not built"
        lines.append(f"| {label} | {_kb(budget[key])} | {_kb(est[key])}, {_fits(est[key], budget[key])} | {note} |")
    lines += [
        "",
        f"Activation arena: {_kb(est['arena_bytes'])} (input {est['input_bytes']:,} B and output "
        f"{est['output_bytes']:,} B are the caller's buffers); stack reserve {est['stack_bytes']:,} B.",
        "",
    ]
    if elf:
        lines += [f"ELF sections: text {elf['text']:,} B, rodata {elf['rodata']:,} B, data {elf['data']:,} B, bss {elf['bss']:,} B.", ""]
    verification = report.get("verification") or {}
    for where, summary in verification.items():
        lines.append(f"- {where}: {summary}")
    if verification:
        lines.append("")
    lines += [
        "| # | op | kernel | weight bits | input bits | output bits | RO bytes | scratch | MACs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["layers"]:
        lines.append(
            f"| {row['index']} | {row['op']} | {row.get('kernel') or '—'} | {row['weight_bits'] or '—'} | "
            f"{row['input_bits'] or '—'} | {row['output_bits']} | {row['ro_bytes']:,} | {row['scratch_bytes']:,} | {row['macs']:,} |"
        )
    total_ro = sum(r["ro_bytes"] for r in report["layers"])
    total_macs = sum(r["macs"] for r in report["layers"])
    lines += [f"| | **total** | | | | | {total_ro:,} | | {total_macs:,} |", ""]
    return "\n".join(lines)
