"""The build report: `report.json` for scripts, `report.md` for people, with the same numbers."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcugen.analysis import op_macs, op_weight_bytes
from mcugen.ir import Graph
from mcugen.prune.markdown import pruning_lines


def layer_rows(graph: Graph) -> list[dict[str, Any]]:
    """Per-layer bit-widths, flash bytes and MACs (the report's contract keys)."""
    rows = []
    plan = graph.attrs.get("memory_plan")
    peak = plan.peak_by_op if plan is not None else []  # arena bytes in use during each op
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
            "peak_ram_bytes": peak[index] if index < len(peak) else None,
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
        f"Activation arena: {_kb(est['arena_bytes'])}, the input ({est['input_bytes']:,} B) and output "
        f"({est['output_bytes']:,} B) slots included; stack reserve {est['stack_bytes']:,} B.",
        "",
    ]
    if "file_order_arena_bytes" in est:
        lines += [f"Ops reordered to lower peak RAM: arena {est['arena_bytes']:,} B instead of "
                  f"{est['file_order_arena_bytes']:,} B in the model file's order (layers below in run order).", ""]
    if elf:
        lines += [f"ELF sections: text {elf['text']:,} B, rodata {elf['rodata']:,} B, data {elf['data']:,} B, bss {elf['bss']:,} B.", ""]
    verification = report.get("verification") or {}
    for summary in verification.values():
        lines.append(f"- verification: {summary}")
    if verification:
        lines.append("")
    lines += [
        "| # | op | kernel | weight bits | input bits | output bits | RO bytes | scratch | peak RAM | MACs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["layers"]:
        lines.append(
            f"| {row['index']} | {row['op']} | {row.get('kernel') or '—'} | {row['weight_bits'] or '—'} | "
            f"{row['input_bits'] or '—'} | {row['output_bits']} | {row['ro_bytes']:,} | {row['scratch_bytes']:,} | {_kb(row.get('peak_ram_bytes'))} | {row['macs']:,} |"
        )
    total_ro = sum(r["ro_bytes"] for r in report["layers"])
    total_macs = sum(r["macs"] for r in report["layers"])
    lines += [f"| | **total** | | | | | {total_ro:,} | | | {total_macs:,} |", ""]
    lines += _quantization_lines(report)
    lines += _compression_lines(report)
    lines += pruning_lines(report)
    return "\n".join(lines)


def _db(value: float | None) -> str:
    return "exact" if value is None else f"{value:.2f} dB"


def _quantization_lines(report: dict[str, Any]) -> list[str]:
    """A float model's int8 conversion: calibration, corrections, I/O encoding, per-vector analysis."""
    q = report.get("quantization")
    if not q:
        return []
    io = [f"{role} '{t['name']}': {t['dtype']}, scale {t['scale']:.9g}, zero point {t['zero_point']}"
          for role, key in (("input", "inputs"), ("output", "outputs")) for t in q[key]]
    vec = q["per_vector"]
    lines = ["## Quantization of the float model", "",
             f"Calibration: {q['calibration']}; observer `{q['calib_method']}`; bias correction "
             f"{'on' if q['bias_correction'] else 'off'}; cross-layer equalization {q['equalize'] or 'off'}; "
             f"FULLY_CONNECTED weights per {'unit' if q['fc_per_channel'] else 'layer'}.",
             f"Output SQNR against the float model on the calibration inputs: {_db(q['sqnr_db_vs_float'])}.", "",
             *[f"- {line} (real = scale * (q - zero point))" for line in io], "",
             f"Per-vector weight scales (VS-Quant, V = {vec['vector_size']}, {vec['scale_bits']}-bit scales; "
             "analysis only, the kernels take per-channel scales): weight SQNR per layer.", "",
             "| # | op | bits | effective bits | per tensor | per channel | per vector |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['index']} | {r['op']} | {r['bits']} | {r['effective_bits']:g} | {_db(r['sqnr_tensor_db'])} | "
              f"{_db(r['sqnr_channel_db'])} | {_db(r['sqnr_vector_db'])} |" for r in vec["layers"]]
    return lines + [""]


def _compression_lines(report: dict[str, Any]) -> list[str]:
    """How the widths were chosen and on what data, each layer's requantization, and fidelity."""
    comp, fid = report.get("compression"), report.get("fidelity")
    if not comp:
        return []
    strategy = "" if comp["strategy"] == "uniform" else f", strategy {comp['strategy']}"
    lines = ["## Compression", "", f"Widths: `--bits {comp['bits']}`{strategy}. Calibration: {comp.get('calibration', '—')}."]
    if "measured_sqnr_db" in comp:
        m = comp["measured_sqnr_db"]
        lines.append(f"Assignment kept: {comp['chosen']} (output SQNR on the sensitivity inputs: sensitivity-aware "
                     f"{_db(m['sensitivity'])}, Rusci's rule {_db(m['rusci'])}). {comp.get('note', '')}".rstrip())
    if fid:
        lines.append(f"Fidelity against the original model on {fid['inputs']} calibration inputs: top-1 agreement "
                     f"{100 * fid['top1_agreement']:.1f} %, output SQNR {_db(fid['sqnr_db'])}.")
        requant = {row["index"]: row["requant"] for row in comp.get("layers", [])}
        lines += ["", "| # | op | output bits | requantization | SQNR vs original |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {row['index']} | {row['op']} | {row['output_bits']} | {requant.get(row['index'], '—')} | "
                  f"{_db(row['sqnr_db'])} |" for row in fid["layers"]]
    return lines + [""]
