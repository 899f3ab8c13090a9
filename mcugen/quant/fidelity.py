"""How close a compressed graph stays to the original: top-1 agreement, output SQNR, per layer.

Both graphs run on the integer reference over the same calibration inputs; every tensor is
compared in real numbers (each dequantized with its own scale and zero point), so an 8-bit
original and its 4-bit replacement are measured on one scale. SQNR = 10 log10(signal energy /
error energy) over all inputs together; an exact match has no finite SQNR and is reported as
None.

`run_many` is the batched reference runner the compression passes share: a batch-1 graph runs
many inputs at once as one batch of N (the reference kernels take any batch), which is what
makes searching over bit assignments affordable.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from mcugen.ir import Graph, Tensor
from mcugen.reference.executor import execute

CHUNK = 16  # inputs per batched run: bounds the im2col buffers of the reference


def _batchable(graph: Graph) -> bool:
    """Every activation has a leading batch axis of 1 and no op works along that axis."""
    if any(len(t.shape) == 0 or t.shape[0] != 1 for t in graph.activations()):
        return False
    for op in graph.ops:
        rank = len(graph.tensor(op.outputs[0]).shape)
        axes = op.attrs.get("axis", ())
        if any(a % rank == 0 for a in (axes if isinstance(axes, (list, tuple)) else [axes])):
            return False
    return True


def _batched(graph: Graph, n: int) -> Graph:
    """The same graph with a batch of n on every activation (constants shared, not copied)."""
    tensors = dict(graph.tensors)
    for t in graph.activations():
        tensors[t.name] = replace(t, shape=(n, *t.shape[1:]))
    return Graph(tensors, graph.ops, graph.inputs, graph.outputs)


def run_many(graph: Graph, input_sets: list[list[np.ndarray]], keep_all: bool = False,
             resume: tuple[dict[str, np.ndarray], int] | None = None) -> dict[str, np.ndarray]:
    """Values of the graph's outputs (every activation with keep_all) for each input set, stacked:
    name -> array [len(input_sets), *tensor shape].

    `resume=(values, start)` skips the ops before `start`: `values` (stacked as returned here,
    for the same inputs) must hold every tensor those ops produced, from a graph that computes
    the same as this one up to there.
    """
    values_in, start = resume if resume is not None else ({}, 0)
    size = CHUNK if _batchable(graph) else 1
    wanted = [t.name for t in graph.activations()] if keep_all else list(graph.outputs)
    pieces: list[dict[str, np.ndarray]] = []
    for lo in range(0, len(input_sets), size):
        chunk = input_sets[lo:lo + size]
        g = _batched(graph, len(chunk)) if size > 1 else graph
        values = {name: t.data for name, t in g.tensors.items() if t.is_const}
        for i, name in enumerate(graph.inputs):
            t = graph.tensor(name)
            stacked = np.stack([np.asarray(s[i]).reshape(t.shape) for s in chunk]).astype(t.dtype.numpy)
            values[name] = stacked.reshape(g.tensor(name).shape)
        produced_later = {n for op in g.ops[start:] for n in op.outputs}
        for name, stacked in values_in.items():
            if name not in produced_later and name not in values:
                values[name] = stacked[lo:lo + len(chunk)].reshape(g.tensors[name].shape)
        for op in g.ops[start:]:
            values[op.outputs[0]] = execute(g, op, [None if n is None else values[n] for n in op.inputs])
        pieces.append({name: values[name].reshape(len(chunk), *graph.tensor(name).shape) for name in wanted})
    return {name: np.concatenate([p[name] for p in pieces]) for name in wanted}


def real(t: Tensor, values: np.ndarray) -> np.ndarray:
    """Dequantized values of a per-tensor quantized activation (float tensors as they are)."""
    if t.quant is None:
        return np.asarray(values, np.float64)
    return (np.asarray(values, np.float64) - t.quant.zp) * t.quant.s


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float | None:
    """10 log10(sum ref^2 / sum (ref - test)^2); None when they are equal."""
    noise = float(np.sum((reference - test) ** 2))
    if noise == 0.0:
        return None
    signal = float(np.sum(reference ** 2))
    return round(float(10.0 * np.log10(max(signal, 1e-30) / noise)), 3)


def noise_ratio(reference: np.ndarray, test: np.ndarray) -> float:
    """Error energy over signal energy: the quantity SQNR expresses in dB, additive across cuts."""
    return float(np.sum((reference - test) ** 2)) / max(float(np.sum(reference ** 2)), 1e-30)


def compare(original: Graph, compressed: Graph, input_sets: list[list[np.ndarray]],
            original_values: dict[str, np.ndarray] | None = None) -> dict:
    """report.json's "fidelity": top-1 agreement and SQNR of the (first) output, per-layer SQNR.

    `original_values` (run_many(original, input_sets, keep_all=True)) saves re-running the original.
    """
    ref = original_values if original_values is not None else run_many(original, input_sets, keep_all=True)
    got = run_many(compressed, input_sets, keep_all=True)
    out = original.outputs[0]
    a, b = real(original.tensor(out), ref[out]), real(compressed.tensor(out), got[out])
    n = len(input_sets)
    top1 = float(np.mean(np.argmax(a.reshape(n, -1), axis=1) == np.argmax(b.reshape(n, -1), axis=1)))
    layers = []
    for index, op in enumerate(compressed.ops):
        name = op.outputs[0]
        layers.append({"index": index, "op": op.kind, "output_bits": compressed.tensor(name).dtype.bits,
                       "sqnr_db": sqnr_db(real(original.tensor(name), ref[name]), real(compressed.tensor(name), got[name]))})
    return {"inputs": n, "top1_agreement": round(top1, 4), "sqnr_db": sqnr_db(a, b), "layers": layers}
