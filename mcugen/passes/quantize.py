"""quantize: the integer graph at the widths `assign_bits` chose, and how faithful it stays.

Reads `graph.attrs["bit_widths"]` ({tensor name: bits}); without it the graph is returned
unchanged (the same object), so an int8 model nobody asked to compress stays byte-identical.
Otherwise every weight and activation is re-quantized from the model's float form
(`mcugen.quant.quantizer.Quantizer`: tensors whose width is unchanged keep their original
integers), each weighted op is labelled with its requantization method (`op.attrs["requant"]`:
ICN, PC or FB, `mcugen.quant.icn`), and the compressed graph is compared with the original on
the calibration inputs: report.json's "fidelity" (top-1 agreement, output SQNR, per-layer SQNR)
and, under "compression", the calibration used and the method of each layer.
"""
from __future__ import annotations

import copy

from mcugen.inputs import load_calibration
from mcugen.ir import Graph
from mcugen.quant.fidelity import compare
from mcugen.quant.icn import requant_method
from mcugen.quant.quantizer import WEIGHTED_OPS, Quantizer


def quantize(graph: Graph) -> Graph:
    widths = graph.attrs.get("bit_widths")
    if not widths:
        return graph
    calibration = graph.attrs.get("calibration") or load_calibration(None, graph)
    quantizer = Quantizer(graph, calibration["inputs"])
    out = quantizer.build(widths).copy()
    out.attrs = copy.deepcopy(graph.attrs)
    methods = []
    for index, op in enumerate(out.ops):
        if op.kind in WEIGHTED_OPS:
            op.attrs["requant"] = requant_method(out, op)
            methods.append({"index": index, "op": op.kind, "weight_bits": out.tensor(op.inputs[1]).dtype.bits,
                            "output_bits": out.tensor(op.outputs[0]).dtype.bits, "requant": op.attrs["requant"]})
    report = out.attrs.setdefault("report", {})
    report["fidelity"] = compare(graph, out, calibration["inputs"], quantizer.values)
    report.setdefault("compression", {}).update(calibration=calibration["description"], layers=methods)
    return out
