"""canonicalize: bring a float model to the form the quantizer expects.

Every constant the converter left as a computation becomes a plain tensor, and every per-channel
scale or shift applied after a convolution (an unfolded batch normalisation: MUL then ADD by
constants) is folded into that convolution's weights and bias. Folding matters for quantization,
not only speed: an affine op left in place would be a separate int8 layer with its own rounding,
and its range could not be clamped by the activation fused into it. That activation moves onto the
convolution, so calibration still sees the clamped range.

Integer models are returned unchanged (the same object): the converter already canonicalized
them, and an int8 build must stay byte-identical.
"""
from __future__ import annotations

import numpy as np

from mcugen.ir import FLOAT32, Graph, Op, Tensor
from mcugen.quant.quantizer import WEIGHT_AXIS, WEIGHTED_OPS
from mcugen.reference import float_executor



def is_float_model(graph: Graph) -> bool:
    """True when some activation is float32: the model still has to be quantized."""
    return any(t.dtype.is_float for t in graph.activations())


def canonicalize(graph: Graph) -> Graph:
    if not is_float_model(graph):
        return graph
    graph = graph.copy()
    folded = {"constant_ops": 0, "affine_into_weighted": 0}
    while _fold_one(graph, folded):
        pass
    _drop_unused_tensors(graph)
    graph.attrs.setdefault("report", {})["canonicalize"] = folded
    return graph


def _fold_one(graph: Graph, counts: dict[str, int]) -> bool:
    """Apply the first fold that matches, in graph order (a fold may enable the next one)."""
    for op in graph.ops:
        for kind, fold in (("constant_ops", _fold_constant_op), ("affine_into_weighted", _fold_affine)):
            if fold(graph, op):
                counts[kind] += 1
                return True
    return False


def _fold_constant_op(graph: Graph, op: Op) -> bool:
    """An op whose inputs are all constants becomes the constant it computes."""
    ins = [n for n in op.inputs if n is not None]
    if not ins or not all(graph.tensor(n).is_const for n in ins) or len(op.outputs) != 1:
        return False
    out = graph.tensor(op.outputs[0])
    single = Graph(tensors={n: graph.tensor(n) for n in [*ins, out.name]}, ops=[op], inputs=[], outputs=[out.name])
    out.data = np.asarray(float_executor.run(single, [])[0], out.dtype.numpy).reshape(out.shape)
    graph.ops.remove(op)
    return True


def _channel_vector(const: Tensor, channels: int) -> np.ndarray | None:
    """The constant as one value per output channel, if it broadcasts along the last axis only."""
    if const.size == 1:
        return np.full(channels, float(const.data.reshape(-1)[0]), np.float32)
    if const.shape[-1:] == (channels,) and const.size == channels:
        return const.data.reshape(channels).astype(np.float32)
    return None


def _fold_affine(graph: Graph, op: Op) -> bool:
    """MUL or ADD of a weighted op's output by a per-channel constant, folded into that op."""
    if op.kind not in ("MUL", "ADD") or len(op.inputs) != 2:
        return False
    tensors = [graph.tensor(n) for n in op.inputs]
    if sum(t.is_const for t in tensors) != 1:
        return False
    x, const = (tensors[1], tensors[0]) if tensors[0].is_const else tensors
    producer = graph.producers().get(x.name)
    if (producer is None or producer.kind not in WEIGHTED_OPS or producer.attrs.get("activation") != "NONE"
            or len(graph.consumers(x.name)) != 1 or x.name in graph.outputs or not x.dtype.is_float
            or graph.tensor(op.outputs[0]).shape != x.shape):
        return False
    channels = x.shape[-1]
    vector = _channel_vector(const, channels)
    if vector is None:
        return False
    w = graph.tensor(producer.inputs[1])
    bias_name = producer.inputs[2] if len(producer.inputs) > 2 else None
    bias = graph.tensor(bias_name).data if bias_name is not None else np.zeros(channels, np.float32)
    if op.kind == "MUL":
        axis = WEIGHT_AXIS[producer.kind]
        shape = [1] * w.data.ndim
        shape[axis] = channels
        weights, bias = w.data * vector.reshape(shape), bias * vector
        producer.inputs[1] = _new_const(graph, f"{w.name}/folded", weights.astype(np.float32))
    else:
        bias = bias + vector
    producer.inputs[2:] = [_new_const(graph, f"{bias_name or producer.outputs[0] + '/bias'}/folded",
                                      bias.astype(np.float32))]
    producer.attrs["activation"] = op.attrs.get("activation", "NONE")
    producer.outputs[0] = op.outputs[0]
    graph.ops.remove(op)
    return True


def _new_const(graph: Graph, stem: str, data: np.ndarray) -> str:
    """A fresh constant tensor (weights may be shared, so folding never edits one in place)."""
    name, k = stem, 1
    while name in graph.tensors:
        k += 1
        name = f"{stem}{k}"
    graph.tensors[name] = Tensor(name=name, shape=tuple(data.shape), dtype=FLOAT32, data=data)
    return name


def _drop_unused_tensors(graph: Graph) -> None:
    used = {*graph.inputs, *graph.outputs, *(n for op in graph.ops for n in (*op.inputs, *op.outputs))}
    for name in [n for n in graph.tensors if n not in used]:
        del graph.tensors[name]
