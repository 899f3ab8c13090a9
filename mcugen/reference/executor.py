"""Runs an integer Graph op by op with the reference kernels: the oracle every C build must match.

Each op is lowered (`mcugen.quant.lowering.lower`) to the very parameters the code generator
emits, then its kernel runs on numpy arrays. Shapes come from the graph's tensors.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from mcugen.errors import UserError
from mcugen.ir import Graph, Op
from mcugen.quant.lowering import lower
from mcugen.quant.params import QuantizeParams
from mcugen.reference import kernels as k


def run(graph: Graph, inputs: list[np.ndarray], keep_all: bool = False):
    """The graph's outputs for `inputs` (in graph.inputs order); with keep_all, every tensor by name."""
    values = bind_inputs(graph, inputs)
    for op in graph.ops:
        values[op.outputs[0]] = execute(graph, op, [None if n is None else values[n] for n in op.inputs])
    return values if keep_all else [values[name] for name in graph.outputs]


def execute(graph: Graph, op: Op, args: list[np.ndarray | None]) -> np.ndarray:
    """One op's output from its input values (None for an absent optional input)."""
    if op.kind not in _HANDLERS:
        raise UserError(f"{op.name or op.kind}: mcugen's reference does not support {op.kind}")
    return _HANDLERS[op.kind](graph, op, args)


def bind_inputs(graph: Graph, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Constants plus the given inputs, checked against the graph's input shapes and types."""
    if len(inputs) != len(graph.inputs):
        raise UserError(f"the model takes {len(graph.inputs)} input(s), {len(inputs)} given")
    values = {name: t.data for name, t in graph.tensors.items() if t.is_const}
    for name, value in zip(graph.inputs, inputs):
        t = graph.tensors[name]
        value = np.asarray(value)
        if value.size != t.size:
            raise UserError(f"input '{name}' needs shape {list(t.shape)}, got {list(value.shape)}")
        values[name] = value.reshape(t.shape).astype(t.dtype.numpy, copy=False)
    return values


def _out_shape(graph: Graph, op: Op) -> tuple[int, ...]:
    return graph.tensors[op.outputs[0]].shape


def _conv(graph, op, args):
    x, w, bias = (args + [None])[:3]
    kernel = k.depthwise_conv2d if op.kind == "DEPTHWISE_CONV_2D" else k.conv2d
    return kernel(x, w, bias, lower(graph, op), _out_shape(graph, op))


def _fully_connected(graph, op, args):
    x, w, bias = (args + [None])[:3]
    out = k.fully_connected(x.reshape(-1, w.shape[1]), w, bias, lower(graph, op))
    return out.reshape(_out_shape(graph, op))


def _pool(kernel: Callable):
    return lambda graph, op, args: kernel(args[0], lower(graph, op), _out_shape(graph, op))


def _binary(kernel: Callable):
    return lambda graph, op, args: kernel(args[0], args[1], lower(graph, op), _out_shape(graph, op))


def _reshape(graph, op, args):
    return args[0].reshape(_out_shape(graph, op))


def _softmax(graph, op, args):
    return k.softmax(args[0], lower(graph, op))


def _logistic(graph, op, args):
    return k.logistic(args[0], lower(graph, op))


def _mean(graph, op, args):
    return k.mean(args[0], op.attrs["axis"], lower(graph, op), _out_shape(graph, op))


def _pad(graph, op, args):
    p = lower(graph, op)
    return k.pad(args[0], p.paddings, p.pad_value)


def _concatenation(graph, op, args):
    return k.concatenation(args, lower(graph, op).axis)


def _quantize(graph, op, args):
    p = lower(graph, op)
    if isinstance(p, QuantizeParams):
        return k.quantize(args[0], p.scale, p.zero_point, p.qmin, p.qmax)
    return k.requantize(args[0], p)


def _dequantize(graph, op, args):
    p = lower(graph, op)
    return k.dequantize(args[0], p.scale, p.zero_point)


_HANDLERS: dict[str, Callable] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _conv,
    "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool(k.avg_pool2d),
    "MAX_POOL_2D": _pool(k.max_pool2d),
    "ADD": _binary(k.add),
    "MUL": _binary(k.mul),
    "RESHAPE": _reshape,
    "SQUEEZE": _reshape,
    "SOFTMAX": _softmax,
    "LOGISTIC": _logistic,
    "MEAN": _mean,
    "PAD": _pad,
    "CONCATENATION": _concatenation,
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
}
