"""How much each output channel of a CONV_2D or FULLY_CONNECTED matters: the pruning criteria.

- `l1`, `l2`: the norm of the channel's filter (Li et al. 2017), on the dequantized weights, so
  per-channel scales are honoured: a channel of small integers but a large scale is not small.
- `apoz`: one minus the average percentage of zeros (Hu et al. 2016) of the channel's output on
  the calibration inputs — a channel a ReLU almost always clamps carries little. Outputs are
  dequantized, so "zero" is the real zero whatever the zero point; without a ReLU, the share of
  non-positive values is counted.
- `mean`: the mean magnitude of the channel's real output (a mean-activation criterion).
- `bn`: the magnitude of the channel's batch-norm scale (network slimming, Liu et al. 2017), read
  from a per-channel constant MUL right after the layer — the form an unfolded batch norm takes in
  a TFLite graph. Converters fold batch norm into the weights, and so does `canonicalize` for
  float models; then there is nothing to read and the criterion fails with a message saying so.
  A layer without batch norm in a model that has some falls back to `l1` (reported per layer).

Scores are compared only within one pruning group, after each layer's scores are divided by
their mean, so that layers of different scale weigh alike.
"""
from __future__ import annotations

import numpy as np

from mcugen.errors import UserError
from mcugen.ir import Graph, Op, Tensor
from mcugen.quant.fidelity import real

CRITERIA = ("l1", "l2", "apoz", "mean", "bn")
DATA_CRITERIA = ("apoz", "mean")  # those that need calibration activations


def dequantized(t: Tensor) -> np.ndarray:
    """Real values of a constant, per-channel scales along their axis."""
    q = t.data.astype(np.float64)
    if t.quant is None:
        return q
    shape = [1] * q.ndim
    if t.quant.per_channel:
        shape[t.quant.axis] = -1
    return (q - t.quant.zero_point.reshape(shape)) * t.quant.scale.reshape(shape)


def _filter_norm(graph: Graph, op: Op, order: int) -> np.ndarray:
    w = dequantized(graph.tensor(op.inputs[1]))
    flat = np.abs(w.reshape(w.shape[0], -1))
    return flat.sum(axis=1) if order == 1 else np.sqrt((flat ** 2).sum(axis=1))


def _channel_values(graph: Graph, op: Op, values: dict[str, np.ndarray]) -> np.ndarray:
    """The op's real outputs on the calibration inputs, [samples, channels]."""
    y = graph.tensor(op.outputs[0])
    return real(y, values[y.name]).reshape(-1, y.shape[-1])


def batchnorm_scale(graph: Graph, op: Op) -> np.ndarray | None:
    """|scale| of a MUL by a per-channel constant that alone reads the op's output, if any."""
    consumers = graph.consumers(op.outputs[0])
    if len(consumers) != 1 or consumers[0].kind != "MUL" or op.attrs.get("activation", "NONE") != "NONE":
        return None
    channels = graph.tensor(op.outputs[0]).shape[-1]
    for name in consumers[0].inputs:
        t = graph.tensor(name)
        if t.is_const and t.size == channels and t.shape[-1] == channels:
            return np.abs(dequantized(t).reshape(channels))
    return None


def layer_importance(graph: Graph, op: Op, criterion: str, values: dict[str, np.ndarray] | None) -> tuple[np.ndarray, str]:
    """(score per output channel, the criterion actually used) for one CONV_2D / FULLY_CONNECTED."""
    if criterion in ("l1", "l2"):
        return _filter_norm(graph, op, int(criterion[1])), criterion
    if criterion == "apoz":
        return 1.0 - np.mean(_channel_values(graph, op, values) <= 0.0, axis=0), criterion
    if criterion == "mean":
        return np.mean(np.abs(_channel_values(graph, op, values)), axis=0), criterion
    if criterion == "bn":
        scale = batchnorm_scale(graph, op)
        return (scale, "bn") if scale is not None else (_filter_norm(graph, op, 1), "l1")
    raise UserError(f"--prune-criterion {criterion!r}: expected one of {', '.join(CRITERIA)}")


def normalized(scores: np.ndarray) -> np.ndarray:
    """Scores over their mean (all ones for a layer whose scores are all zero)."""
    mean = float(np.mean(scores))
    return scores / mean if mean > 0 else np.ones_like(scores, dtype=np.float64)


def check_batchnorm(graph: Graph, op_indices: list[int]) -> None:
    """The bn criterion needs at least one prunable layer that still carries batch norm."""
    if not any(batchnorm_scale(graph, graph.ops[i]) is not None for i in op_indices):
        raise UserError(
            "--prune-criterion bn: this model carries no batch-norm scales to rank channels by: its batch "
            "normalisation is folded into the convolution weights (TFLite converters fold it, and mcugen "
            "folds it in float models). Use --prune-criterion l1, l2, apoz or mean")
