"""`Pruner`: one integer model, ready to be pruned at any fractions, and what each pruning costs.

Construction does the work every candidate shares — one reference run over the calibration
inputs (activations for the data criteria, the bias folds and fidelity), the channel analysis
and the importance scores — so that `--prune auto` can build and measure many candidates.
"""
from __future__ import annotations

import numpy as np

from mcugen.analysis import op_macs, op_weight_bytes
from mcugen.ir import Graph
from mcugen.prune.channels import analyse
from mcugen.prune.importance import DATA_CRITERIA, check_batchnorm, layer_importance, normalized
from mcugen.prune.plan import choose, class_scores
from mcugen.prune.surgery import Cut, prune_graph
from mcugen.quant.fidelity import real, run_many, sqnr_db
from mcugen.quant.quantizer import WEIGHTED_OPS


class Pruner:
    """Prunes `graph` by `criterion`, its activations on `input_sets` standing for its data."""

    def __init__(self, graph: Graph, criterion: str, input_sets: list[list[np.ndarray]]):
        self.graph = graph
        self.criterion = criterion
        self.input_sets = input_sets
        self.values = run_many(graph, input_sets, keep_all=True)
        self.cg = analyse(graph)
        prunable = [i for group in self.cg.groups for i in group]
        if criterion == "bn":
            check_batchnorm(graph, [self.cg.spaces[i].op_index for i in prunable])
        scored = [layer_importance(graph, graph.ops[s.op_index], criterion,
                                   self.values if criterion in DATA_CRITERIA else None) for s in self.cg.spaces]
        self.used = {self.cg.spaces[i].op_index: scored[i][1] for i in prunable}  # the criterion per layer
        self.scores = class_scores(self.cg, {i: normalized(score) for i, (score, _) in enumerate(scored)})

    def cut(self, fractions: dict[int, float]) -> Cut:
        return Cut(self.cg, choose(self.cg, fractions, self.scores))

    def prune(self, cut: Cut) -> Graph:
        return prune_graph(self.graph, cut, self.values)

    def layers(self, pruned: Graph) -> list[dict]:
        """Per weighted layer: output channels kept / original, MACs and weight bytes before / after."""
        rows = []
        for index, (op, new) in enumerate(zip(self.graph.ops, pruned.ops)):
            if op.kind not in WEIGHTED_OPS:
                continue
            row = {"index": index, "op": op.kind, "name": op.name,
                   "channels_kept": pruned.tensor(new.outputs[0]).shape[-1],
                   "channels": self.graph.tensor(op.outputs[0]).shape[-1],
                   "macs_before": op_macs(self.graph, op), "macs_after": op_macs(pruned, new),
                   "weight_bytes_before": op_weight_bytes(self.graph, op),
                   "weight_bytes_after": op_weight_bytes(pruned, new)}
            if index in self.used:
                row["criterion"] = self.used[index]
            rows.append(row)
        return rows

    def groups(self, cut: Cut) -> list[dict]:
        """The layers that share one channel set, with its prunable channels before and after."""
        out = []
        for group in self.cg.groups:
            classes = self.cg.free_classes(group)
            out.append({"layers": [self.graph.ops[self.cg.spaces[i].op_index].name for i in group],
                        "channels": len(classes), "channels_kept": sum(c not in cut.removed for c in classes)})
        return out

    def fidelity(self, pruned: Graph, cut: Cut) -> dict:
        """report.json's "fidelity" of the pruned graph against the original: top-1 agreement and
        SQNR of the output, and per layer the SQNR over the channels the layer kept."""
        got = run_many(pruned, self.input_sets, keep_all=True)
        out = self.graph.outputs[0]
        n = len(self.input_sets)
        a = real(self.graph.tensor(out), self.values[out]).reshape(n, -1)
        b = real(pruned.tensor(out), got[out]).reshape(n, -1)
        layers = []
        for index, op in enumerate(pruned.ops):
            name = op.outputs[0]
            ref = self.values[name][..., cut.mask(name)]
            layers.append({"index": index, "op": op.kind, "output_bits": pruned.tensor(name).dtype.bits,
                           "sqnr_db": sqnr_db(real(self.graph.tensor(name), ref), real(pruned.tensor(name), got[name]))})
        return {"inputs": n, "top1_agreement": round(float(np.mean(a.argmax(1) == b.argmax(1))), 4),
                "sqnr_db": sqnr_db(a, b), "layers": layers}
