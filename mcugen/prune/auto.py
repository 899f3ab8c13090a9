"""`--prune auto`: prune only as far as the budgets need, jointly with `assign_bits`.

Pruning removes bytes and MACs at the cost of whole channels; lower precision removes bytes at the
cost of rounding noise. Which costs less fidelity for the bytes saved depends on the model, so it
is measured: for each pruning level of a ladder (the same fraction for every prunable group), the
pruned model goes through `assign_bits` and `quantize` — the very passes that run next — which
cut precision, most sensitive last, until the flash and RAM budgets hold. Every candidate that
fits (and meets `--macs`, which only pruning lowers) is run on the calibration inputs against the
original model, and the one with the least output error wins. The ladder stops at the first level
that fits without any precision cut: pruning further could only lose more.

Candidates are compared on SEARCH_INPUTS calibration inputs, evenly spread, which keeps each
candidate's bit search affordable; the passes that follow then run on the full calibration set.
"""
from __future__ import annotations

import re

from mcugen.analysis import op_macs
from mcugen.errors import UserError
from mcugen.ir import Graph
from mcugen.passes.assign_bits import assign_bits, footprint, targets
from mcugen.passes.quantize import quantize
from mcugen.prune.markdown import format_db
from mcugen.prune.pruner import Pruner
from mcugen.quant.fidelity import noise_ratio, real, run_many, sqnr_db

LADDER = tuple(k / 8 for k in range(7))  # 0, 12.5 %, ..., 75 % of each group's channels
SEARCH_INPUTS = 16
_MACS = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)")


def parse_macs(text) -> int | None:
    """A MAC count from 2000000, "2M" or "500k" (decimal units, as MACs are quoted)."""
    if text is None:
        return None
    match = _MACS.fullmatch(str(text).strip())
    if match is None:
        raise UserError(f"--macs {text!r}: expected a count such as 2000000, 2M or 500k")
    return int(float(match[1]) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[match[2].lower()])


def choose_fractions(pruner: Pruner, options: dict) -> tuple[dict[int, float], dict]:
    """(fraction per space, report["pruning"]["auto"]): the best measured candidate that fits."""
    macs_budget = parse_macs(options.get("macs"))
    if "budget" not in options and macs_budget is None:
        raise UserError("--prune auto needs a budget to meet: --flash, --ram or --macs")
    out = pruner.graph.outputs[0]
    n = len(pruner.input_sets)
    subset = sorted({round(i * (n - 1) / max(SEARCH_INPUTS - 1, 1)) for i in range(min(n, SEARCH_INPUTS))})
    inputs = [pruner.input_sets[i] for i in subset]
    reference = real(pruner.graph.tensor(out), pruner.values[out][subset])
    rows, best = [], None
    for fraction in LADDER:
        fractions = {i: fraction for i in range(len(pruner.cg.spaces))}
        pruned = pruner.prune(pruner.cut(fractions))
        pruned.attrs["calibration"] = {"inputs": inputs, "description": f"{len(inputs)} calibration inputs"}
        row = {"fraction": fraction, "macs": sum(op_macs(pruned, op) for op in pruned.ops)}
        rows.append(row)
        if macs_budget is not None and row["macs"] > macs_budget:
            row["result"] = "over the MAC budget"
            continue
        final, row["result"] = _compress(pruned, options)
        if final is None:
            continue
        row["tensors_below_8_bits"] = len(final.attrs.get("bit_widths") or {})
        got = real(final.tensor(out), run_many(final, inputs)[out])
        row["noise"], row["sqnr_db"] = noise_ratio(reference, got), sqnr_db(reference, got)
        if best is None or row["noise"] < best["noise"]:
            best = row
        if not row["tensors_below_8_bits"]:
            break
    if best is None:
        raise UserError(_infeasible(rows, macs_budget))
    for row in rows:
        row.pop("noise", None)
    chosen = {i: best["fraction"] for i in range(len(pruner.cg.spaces))}
    return chosen, {"macs_budget": macs_budget, "candidates": rows, "chosen_fraction": best["fraction"],
                    "summary": _summary(rows, best)}


def _compress(pruned: Graph, options: dict) -> tuple[Graph | None, str]:
    """The pruned graph after assign_bits and quantize, or None with the reason it cannot fit."""
    try:
        final = quantize(assign_bits(pruned))
    except UserError as exc:
        return None, f"does not fit: {exc}"
    if "budget" in options and not footprint(final).fits(targets(options)):
        return None, "does not fit at the chosen widths"
    return final, "fits"


def _summary(rows: list[dict], best: dict) -> str:
    percent = f"{100 * best['fraction']:g} %"
    bits = best["tensors_below_8_bits"]
    how = (f"pruning {percent} of the channels of every prunable layer" if best["fraction"] else "no pruning")
    how += f" and {bits} tensor(s) below 8 bits" if bits else " at 8 bits"
    others = [f"{100 * r['fraction']:g} % pruned{' + lower precision' if r['tensors_below_8_bits'] else ''}: "
              f"{format_db(r['sqnr_db'])}" for r in rows if "sqnr_db" in r and r is not best]
    text = f"Budget met by {how} (MACs {best['macs']:,}, output SQNR {format_db(best['sqnr_db'])} against the original)"
    return text + (f"; other candidates that fit: {', '.join(others)}." if others else ".")


def _infeasible(rows: list[dict], macs_budget: int | None) -> str:
    last = rows[-1]
    if macs_budget is not None and last["macs"] > macs_budget:
        return (f"--macs {macs_budget:,}: even pruning {100 * last['fraction']:g} % of every layer's channels leaves "
                f"{last['macs']:,} MACs. Raise --macs")
    return (f"--prune auto: no pruning level up to {100 * LADDER[-1]:g} % meets the budgets, even with lower "
            f"precision ({last['result']}). Raise --flash / --ram or choose a board with more memory")
