"""report.md's "Pruning" section, from report.json's "pruning"."""
from __future__ import annotations

from typing import Any


def format_db(value: float | None) -> str:
    """An SQNR for people: None means the outputs were identical."""
    return "exact" if value is None else f"{value:.2f} dB"


def pruning_lines(report: dict[str, Any]) -> list[str]:
    section = report.get("pruning")
    if not section:
        return []
    before, after = section["macs_before"], section["macs_after"]
    cut = 100.0 * (before - after) / before if before else 0.0
    fid = section["fidelity"]
    lines = ["## Pruning", "",
             f"`--prune {section['spec']}`, criterion {section['criterion']}; calibration: {section['calibration']}.",
             f"MACs {before:,} → {after:,} (−{cut:.1f} %); weight bytes {section['weight_bytes_before']:,} → "
             f"{section['weight_bytes_after']:,}.",
             f"Fidelity against the unpruned model on {fid['inputs']} calibration inputs: top-1 agreement "
             f"{100 * fid['top1_agreement']:.1f} %, output SQNR {format_db(fid['sqnr_db'])}."]
    auto = section.get("auto")
    if auto:
        lines += ["", auto["summary"]]
    shared = [g for g in section["groups"] if len(g["layers"]) > 1]
    if shared:
        lines += ["", "Layers pruned as one group (joined by ADD/MUL): " + "; ".join(
            f"{' + '.join(g['layers'])} keep {g['channels_kept']} / {g['channels']}" for g in shared) + "."]
    lines += ["", "| # | layer | output channels kept | MACs before | MACs after | criterion |",
              "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['index']} | {r['name']} | {r['channels_kept']} / {r['channels']} | {r['macs_before']:,} | "
              f"{r['macs_after']:,} | {r.get('criterion', '—')} |" for r in section["layers"]]
    return lines + [""]
