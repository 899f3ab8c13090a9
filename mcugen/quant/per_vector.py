"""Per-vector scaled weights (VS-Quant, Dai et al. 2021), as an analysis for the report.

Per-channel scales adapt to each output channel's largest weight; within a channel, a few large
weights still set the step for all. VS-Quant gives every vector of V consecutive elements along the
reduction (input) dimension its own scale, itself an unsigned `scale_bits` integer times one float
scale per channel, so storage grows only by scale_bits / V bits per weight. mcugen's kernels take
one scale per channel, so this module does not change the model: it measures, per layer, the
weight SQNR each granularity gives, so the report can say what per-vector kernels would gain.
"""
from __future__ import annotations

import numpy as np

from mcugen.ir import Graph
from mcugen.quant.fidelity import sqnr_db
from mcugen.quant.quantizer import WEIGHTED_OPS

VECTOR_SIZE = 16
SCALE_BITS = 4


def as_rows(w: np.ndarray, kind: str) -> np.ndarray:
    """Weights as [output channel, reduction elements] in memory order of the reduction
    (conv OHWI: (h, w, i); depthwise 1HWC: the taps of one channel; FC [out, in])."""
    if kind == "DEPTHWISE_CONV_2D":
        return np.moveaxis(w, -1, 0).reshape(w.shape[-1], -1)
    return w.reshape(w.shape[0], -1)




def _round_to_scale(w: np.ndarray, scale: np.ndarray, bits: int) -> np.ndarray:
    """Symmetric rounding with narrow range [-(2^(b-1) - 1), 2^(b-1) - 1], as TFLite's weights."""
    qmax = (1 << (bits - 1)) - 1
    safe = np.where(scale > 0, scale, 1.0)
    return np.clip(np.round(w / safe), -qmax, qmax) * safe


def fake_quantize(rows: np.ndarray, bits: int, granularity: str, vector_size: int = VECTOR_SIZE,
                  scale_bits: int = SCALE_BITS) -> np.ndarray:
    """The values `rows` [channels, K] take after quantization at `granularity`:
    "tensor", "channel", or "vector" (two-level: integer per-vector scales times a per-channel one)."""
    qmax = (1 << (bits - 1)) - 1
    rows = rows.astype(np.float64)
    if granularity == "tensor":
        return _round_to_scale(rows, np.full((1, 1), np.abs(rows).max() / qmax), bits)
    if granularity == "channel":
        return _round_to_scale(rows, np.abs(rows).max(axis=1, keepdims=True) / qmax, bits)
    if granularity != "vector":
        raise ValueError(f"unknown granularity {granularity!r}")
    channels, k = rows.shape
    padded = np.zeros((channels, -(-k // vector_size) * vector_size))
    padded[:, :k] = rows
    vectors = padded.reshape(channels, -1, vector_size)
    vector_scale = np.abs(vectors).max(axis=2) / qmax
    smax = (1 << scale_bits) - 1
    channel_scale = vector_scale.max(axis=1, keepdims=True) / smax
    integer_scale = np.clip(np.ceil(vector_scale / np.where(channel_scale > 0, channel_scale, 1.0)), 1, smax)
    scales = (integer_scale * channel_scale)[:, :, None]
    return _round_to_scale(vectors, scales, bits).reshape(channels, -1)[:, :k]


def analyse(graph: Graph, bits: tuple[int, ...] = (8, 4), vector_size: int = VECTOR_SIZE,
            scale_bits: int = SCALE_BITS) -> dict:
    """Per weighted layer and weight bit-width: weight SQNR per tensor / channel / vector (None
    where the quantization is exact)."""
    layers = []
    for index, op in enumerate(graph.ops):
        if op.kind not in WEIGHTED_OPS or not graph.tensor(op.inputs[1]).dtype.is_float:
            continue
        rows = as_rows(graph.tensor(op.inputs[1]).data, op.kind)
        for b in bits:
            layers.append({"index": index, "op": op.kind, "bits": b,
                           "effective_bits": b + scale_bits / vector_size,
                           **{f"sqnr_{g}_db": sqnr_db(rows, fake_quantize(rows, b, g, vector_size, scale_bits))
                              for g in ("tensor", "channel", "vector")}})
    return {"vector_size": vector_size, "scale_bits": scale_bits, "layers": layers}
