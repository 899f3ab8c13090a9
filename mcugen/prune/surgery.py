"""Graph surgery: remove whole channels and keep the graph a valid int8 TFLite graph.

Given the classes to remove (`mcugen.prune.channels`), every activation loses those channels
from its last axis and every op is rewritten to match: a CONV_2D loses filters (output) and
filter columns (input), a DEPTHWISE_CONV_2D loses its channels with their weights, biases and
per-channel scales, a FULLY_CONNECTED loses rows and the flattened columns of removed channels,
constant operands of ADD/MUL lose the same channels, and a RESHAPE's shape operand follows.
Quantization of activations does not change, so every other op's integer parameters stay
exactly what they were.

A removed input channel still contributed to the accumulators of the layers that read it. Its
expected contribution on the calibration inputs — the mean, over every output position, of what
its taps added (padding excluded, as the kernels skip it) — is folded into those layers' int32
biases. That is the least-squares best constant: exact for a channel a ReLU always clamps
(it contributes zero) or one that only carries its bias (a constant), and the mean otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcugen.ir import INT32, Graph, Op, Quant, Tensor
from mcugen.prune.channels import ChannelGraph
from mcugen.quant import fixedpoint as fp
from mcugen.quant.lowering import lower
from mcugen.reference.kernels import windows


@dataclass
class Cut:
    """What stays: the keep masks of the activations, from the classes to remove."""

    cg: ChannelGraph
    removed: set[int]

    def mask(self, tensor: str) -> np.ndarray:
        return self.cg.kept(self.cg.atoms[tensor], self.removed)

    def columns(self, graph: Graph, op: Op) -> np.ndarray:
        """The keep mask of a FULLY_CONNECTED's weight columns."""
        return self.cg.kept(self.cg.fc_columns(graph, op), self.removed)


def prune_graph(graph: Graph, cut: Cut, values: dict[str, np.ndarray]) -> Graph:
    """`graph` without the channels `cut` removes; `values` are the original graph's activations
    on the calibration inputs (stacked, as `mcugen.quant.fidelity.run_many` gives them)."""
    out = graph.copy()
    for op, new_op in zip(graph.ops, out.ops):
        if op.kind in _WEIGHTED:
            _WEIGHTED[op.kind](graph, op, out, new_op, cut, values)
        elif op.kind in ("ADD", "MUL"):
            _slice_constant_operands(graph, op, out, cut.mask(op.outputs[0]))
    for name in cut.cg.atoms:
        mask, t = cut.mask(name), out.tensor(name)
        if not mask.all():
            t.shape = (*t.shape[:-1], int(mask.sum()))
    for op in out.ops:
        if op.kind == "RESHAPE" and len(op.inputs) > 1 and op.inputs[1] is not None:
            shape = out.tensor(op.inputs[1])
            shape.data = np.asarray(out.tensor(op.outputs[0]).shape, shape.dtype.numpy).reshape(shape.shape)
    return out


# ---- constants ----

def _sliced(t: Tensor, axis: int, mask: np.ndarray) -> Tensor:
    """t with only the `mask` entries along `axis`, per-channel quantization along it too."""
    quant = t.quant
    if quant is not None and quant.scale.size > 1 and quant.axis == axis:
        quant = Quant(quant.scale[mask], quant.zero_point[mask], quant.axis)
    data = np.compress(mask, t.data, axis=axis)
    return Tensor(t.name, data.shape, t.dtype, quant, data)


def _slice_constant_operands(graph: Graph, op: Op, out: Graph, mask: np.ndarray) -> None:
    if mask.all():
        return
    for name in op.inputs:
        t = graph.tensor(name)
        if t.is_const and t.shape and t.shape[-1] == len(mask):
            out.tensors[name] = _sliced(t, len(t.shape) - 1, mask)


def _set_bias(graph: Graph, op: Op, out: Graph, new_op: Op, out_mask: np.ndarray, fold: np.ndarray | None) -> None:
    """Slice the bias to the kept outputs and add the folded contribution (accumulator units)."""
    bias_name = op.inputs[2] if len(op.inputs) > 2 else None
    if bias_name is None and fold is None:
        return
    if bias_name is None:  # a bias-less layer gains one: int32 at input scale * weight scale
        x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        channels = len(out_mask)
        bias_name = f"{op.name or op.kind}/pruning_bias"
        scale = x.quant.s * np.broadcast_to(w.quant.scale, (channels,))
        bias = Tensor(bias_name, (channels,), INT32, Quant(scale, np.zeros(channels, np.int64), 0),
                      np.zeros(channels, np.int32))
        new_op.inputs = [*new_op.inputs[:2], bias_name]
    else:
        bias = graph.tensor(bias_name)
    values = bias.data.astype(np.int64)
    if fold is not None:
        values = values + fp.round_half_away(fold).astype(np.int64)
    bias = Tensor(bias.name, bias.shape, bias.dtype, bias.quant,
                  np.clip(values, fp.INT32_MIN, fp.INT32_MAX).astype(bias.dtype.numpy))
    out.tensors[bias_name] = _sliced(bias, 0, out_mask)


# ---- folding the mean contribution of removed inputs ----

def _conv_fold(graph: Graph, op: Op, removed: np.ndarray, values: dict[str, np.ndarray]) -> np.ndarray:
    """Per output channel: the mean over calibration inputs and output positions of what the
    removed input channels add to the accumulator."""
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    p = lower(graph, op)
    samples = values[x.name].reshape(-1, *x.shape[1:])[..., removed].astype(np.int64) + p.input_offset
    tap_means = np.zeros((w.shape[1] * w.shape[2], int(removed.sum())))
    for sample in samples:  # one at a time: the windows of a whole batch can be large
        taps = windows(sample[None], w.shape[1:3], (p.stride_h, p.stride_w), (p.dilation_h, p.dilation_w),
                       (p.pad_h, p.pad_w), y.shape[1:3], 0)
        tap_means += taps.reshape(-1, *tap_means.shape).mean(axis=0)
    tap_means /= len(samples)
    weights = w.data.reshape(w.shape[0], -1, w.shape[3])[..., removed].astype(np.float64)
    return np.einsum("otr,tr->o", weights, tap_means)


def _fc_fold(graph: Graph, op: Op, removed: np.ndarray, values: dict[str, np.ndarray]) -> np.ndarray:
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    p = lower(graph, op)
    rows = values[x.name].reshape(-1, w.shape[1])[:, removed].astype(np.float64) + p.input_offset
    return (w.data[:, removed].astype(np.float64) + p.filter_offset) @ rows.mean(axis=0)


# ---- weighted ops ----

def _conv(graph: Graph, op: Op, out: Graph, new_op: Op, cut: Cut, values) -> None:
    in_mask, out_mask = cut.mask(op.inputs[0]), cut.mask(op.outputs[0])
    w = _sliced(_sliced(graph.tensor(op.inputs[1]), 0, out_mask), 3, in_mask)
    out.tensors[w.name] = w
    fold = None if in_mask.all() else _conv_fold(graph, op, ~in_mask, values)
    _set_bias(graph, op, out, new_op, out_mask, fold)


def _depthwise(graph: Graph, op: Op, out: Graph, new_op: Op, cut: Cut, values) -> None:
    out_mask = cut.mask(op.outputs[0])
    out.tensors[op.inputs[1]] = _sliced(graph.tensor(op.inputs[1]), 3, out_mask)
    _set_bias(graph, op, out, new_op, out_mask, None)


def _fully_connected(graph: Graph, op: Op, out: Graph, new_op: Op, cut: Cut, values) -> None:
    column_mask, out_mask = cut.columns(graph, op), cut.mask(op.outputs[0])
    w = _sliced(_sliced(graph.tensor(op.inputs[1]), 0, out_mask), 1, column_mask)
    out.tensors[w.name] = w
    fold = None if column_mask.all() else _fc_fold(graph, op, ~column_mask, values)
    _set_bias(graph, op, out, new_op, out_mask, fold)


_WEIGHTED = {"CONV_2D": _conv, "DEPTHWISE_CONV_2D": _depthwise, "FULLY_CONNECTED": _fully_connected}
