"""Runs a float32 Graph op by op, as TFLite's float reference kernels do.

Float results depend on the order of additions, so every sum here is accumulated in float32
in the reference kernels' own order (conv: ky, kx, input channel; FC: input index; pools and
MEAN: row-major over the window), one rounded product and one rounded add at a time, bias
added last. exp() is computed in double and rounded to float32 (glibc's expf is correctly
rounded but for rare cases). Ops that only move values (RESHAPE, SQUEEZE, CONCATENATION) and
ops on integer tensors (QUANTIZE, DEQUANTIZE, an int8 section of a mixed graph) run on the
integer reference's handlers, which serve any dtype there.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from mcugen.ir import Graph, Op
from mcugen.quant.lowering import window_padding
from mcugen.reference import executor, kernels

_F32 = np.float32
_RANGES = {
    "NONE": (np.finfo(_F32).min, np.finfo(_F32).max),
    "RELU": (0.0, np.finfo(_F32).max),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
}


def run(graph: Graph, inputs: list[np.ndarray], keep_all: bool = False):
    """The graph's outputs for `inputs`; with keep_all, every tensor by name."""
    values = executor.bind_inputs(graph, inputs)
    for op in graph.ops:
        args = [None if n is None else values[n] for n in op.inputs]
        handler = _HANDLERS.get(op.kind) if graph.tensors[op.inputs[0]].dtype.is_float else None
        values[op.outputs[0]] = handler(graph, op, args) if handler else executor.execute(graph, op, args)
    return values if keep_all else [values[name] for name in graph.outputs]


def _activate(x, activation: str) -> np.ndarray:
    lo, hi = _RANGES[activation]
    return np.minimum(np.maximum(x, _F32(lo)), _F32(hi)).astype(_F32)


def _sequential_sum(terms: np.ndarray, axis: int) -> np.ndarray:
    """The float32 sum along `axis`, added one term at a time from index 0."""
    terms = np.moveaxis(terms, axis, 0)
    total = np.zeros(terms.shape[1:], _F32)
    for term in terms:
        total += term
    return total


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a [M, K] @ b [K, N] in float32, accumulated over K in order as the C loops do."""
    total = np.zeros((a.shape[0], b.shape[1]), _F32)
    for k in range(a.shape[1]):
        total += a[:, k, None] * b[k]
    return total


def _with_bias(total, bias, activation: str) -> np.ndarray:
    return _activate(total if bias is None else total + bias, activation)


def _geometry(graph: Graph, op: Op, kernel, dilation=(1, 1)):
    """(stride, dilation, (pad_h, pad_w), (out_h, out_w)) of a windowed op."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    stride = op.attrs["stride"]
    pads = tuple(window_padding(x.shape[a], kernel[a - 1], stride[a - 1], dilation[a - 1],
                                op.attrs["padding"])[1] for a in (1, 2))
    return stride, dilation, pads, y.shape[1:3]


def _conv(graph, op, args):
    x, w, bias = (args + [None])[:3]
    dilation = op.attrs.get("dilation", (1, 1))
    geometry = _geometry(graph, op, w.shape[1:3], dilation)
    taps = kernels.windows(np.asarray(x, _F32), w.shape[1:3], *geometry, 0.0)
    y_shape = graph.tensors[op.outputs[0]].shape
    if op.kind == "DEPTHWISE_CONV_2D":
        taps = np.repeat(taps, y_shape[-1] // x.shape[-1], axis=-1)
        total = _sequential_sum(taps * w.reshape(-1, w.shape[-1]), axis=3)
    else:
        total = _dot(taps.reshape(-1, taps.shape[3] * taps.shape[4]), w.reshape(w.shape[0], -1).T)
    return _with_bias(total.reshape(y_shape), bias, op.attrs["activation"])


def _fully_connected(graph, op, args):
    x, w, bias = (args + [None])[:3]
    total = _dot(x.reshape(-1, w.shape[1]), w.T)
    return _with_bias(total, bias, op.attrs["activation"]).reshape(graph.tensors[op.outputs[0]].shape)


def _avg_pool(graph, op, args):
    x = args[0]
    geometry = _geometry(graph, op, op.attrs["filter"])
    total = _sequential_sum(kernels.windows(x, op.attrs["filter"], *geometry, 0.0), axis=3)
    inside = np.ones((1, *x.shape[1:3], 1), _F32)
    count = kernels.windows(inside, op.attrs["filter"], *geometry, 0.0).sum(axis=3)
    return _activate(total / count, op.attrs["activation"])


def _max_pool(graph, op, args):
    geometry = _geometry(graph, op, op.attrs["filter"])
    taps = kernels.windows(args[0], op.attrs["filter"], *geometry, np.finfo(_F32).min)
    return _activate(taps.max(axis=3), op.attrs["activation"])


def _binary(fn: Callable):
    def handler(graph, op, args):
        out = fn(np.asarray(args[0], _F32), np.asarray(args[1], _F32))
        return _activate(np.broadcast_to(out, graph.tensors[op.outputs[0]].shape), op.attrs["activation"])
    return handler


def _exp(x) -> np.ndarray:
    with np.errstate(over="ignore"):  # inf, as expf gives, where the C code takes the branch
        return np.exp(np.asarray(x, np.float64)).astype(_F32)


def _softmax(graph, op, args):
    x = np.asarray(args[0], _F32)
    e = _exp((x - x.max(axis=-1, keepdims=True)) * _F32(op.attrs.get("beta", 1.0)))
    return e / _sequential_sum(e, axis=-1)[..., None]


def _logistic(graph, op, args):
    x = np.asarray(args[0], _F32)
    upper, lower = _F32(16.619047164916992188), _F32(-9.0)
    inner = (_F32(1.0) / (_F32(1.0) + _exp(-x))).astype(_F32)
    return np.where(x > upper, _F32(1.0), np.where(x < lower, _exp(x), inner)).astype(_F32)


def _mean(graph, op, args):
    x = np.asarray(args[0], _F32)
    axes = sorted({a % x.ndim for a in op.attrs["axis"]})
    kept = [a for a in range(x.ndim) if a not in axes]
    terms = np.transpose(x, kept + axes).reshape(*[x.shape[a] for a in kept], -1)
    total = _sequential_sum(terms, axis=-1)
    return (total / _F32(terms.shape[-1])).reshape(graph.tensors[op.outputs[0]].shape)


def _pad(graph, op, args):
    return kernels.pad(args[0], op.attrs["paddings"], 0.0)


_HANDLERS: dict[str, Callable] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _conv,
    "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _avg_pool,
    "MAX_POOL_2D": _max_pool,
    "ADD": _binary(np.add),
    "MUL": _binary(np.multiply),
    "SOFTMAX": _softmax,
    "LOGISTIC": _logistic,
    "MEAN": _mean,
    "PAD": _pad,
}
