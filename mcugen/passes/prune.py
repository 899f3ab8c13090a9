"""prune: structured pruning — whole channels out of CONV_2D / FULLY_CONNECTED layers, with the
graph surgery that keeps every consumer consistent (`mcugen.prune`).

Options (graph.attrs["options"]): `prune` — None (default: the pass does nothing and returns its
input), a fraction per prunable layer, a {layer: fraction} mapping (or the path of a JSON/TOML
file holding one), or "auto" (prune only as far as the `budget` and `macs` budgets need, jointly
with `assign_bits`); `prune_criterion` — l1 (default), l2, apoz, mean or bn.

The pruned graph is an ordinary int8 graph: the reference defines what it computes and the C
code must match it bit for bit, like any other model. Its report section "pruning" gives per
layer the channels kept and MACs before and after, the groups pruned together and the fidelity
against the unpruned model on the calibration inputs (also report.json's "fidelity").
"""
from __future__ import annotations

from mcugen.errors import UserError
from mcugen.inputs import load_calibration
from mcugen.ir import Graph
from mcugen.prune.plan import AUTO, parse_spec, space_fractions
from mcugen.prune.pruner import Pruner

DEFAULT_CRITERION = "l1"


def prune(graph: Graph) -> Graph:
    options = graph.attrs.get("options", {})
    spec = parse_spec(options.get("prune"))
    if options.get("macs") is not None and spec != AUTO:
        raise UserError("--macs is the MAC budget of --prune auto; add --prune auto (or drop --macs)")
    if not spec:  # None, 0 or an empty mapping: nothing to prune
        return graph
    calibration = graph.attrs.get("calibration") or load_calibration(None, graph)
    pruner = Pruner(graph, options.get("prune_criterion") or DEFAULT_CRITERION, calibration["inputs"])
    section = {"spec": spec, "criterion": pruner.criterion, "calibration": calibration["description"]}
    if spec == AUTO:
        from mcugen.prune.auto import choose_fractions

        fractions, section["auto"] = choose_fractions(pruner, options)
    else:
        fractions = space_fractions(graph, pruner.cg, spec)
    cut = pruner.cut(fractions)
    pruned = pruner.prune(cut)
    layers = pruner.layers(pruned)
    section.update(
        groups=pruner.groups(cut), layers=layers,
        macs_before=sum(r["macs_before"] for r in layers), macs_after=sum(r["macs_after"] for r in layers),
        weight_bytes_before=sum(r["weight_bytes_before"] for r in layers),
        weight_bytes_after=sum(r["weight_bytes_after"] for r in layers),
        fidelity=pruner.fidelity(pruned, cut))
    report = pruned.attrs.setdefault("report", {})
    report["pruning"] = section
    report["fidelity"] = section["fidelity"]
    return pruned
