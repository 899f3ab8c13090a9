"""Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization"), on a float graph.

A depthwise convolution's channels often have weight ranges that differ by orders of magnitude
(batch normalisation folded into them); one per-tensor scale then rounds the small channels to a
few levels. Because ReLU(x / s) = ReLU(x) / s for s > 0, output channel i of the first layer can be
divided by s_i and input channel i of the next layer multiplied by s_i without changing the
network. Nagel's choice s_i = sqrt(r1_i / r2_i) (r = the channel's largest |weight|) makes both
ranges sqrt(r1_i * r2_i): the per-channel ranges of the pair become equal, which is what per-tensor
quantization needs. Chains are equalized pair by pair, repeated until the scales settle.

Only pairs whose link is a single-consumer tensor through NONE or RELU qualify (RELU6 clips at a
fixed 6, which scaling would move). `pairs="depthwise"` restricts it to depthwise -> pointwise
(1x1 conv) pairs, the case the paper targets; `pairs="all"` takes every conv / depthwise / fully
connected pair.
"""
from __future__ import annotations

import numpy as np

from mcugen.ir import FLOAT32, Graph, Op, Tensor
from mcugen.quant.quantizer import WEIGHT_AXIS, WEIGHTED_OPS

_IN_AXIS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 1}
PAIRS = ("depthwise", "all")


def equalization_pairs(graph: Graph, pairs: str = "depthwise") -> list[tuple[Op, Op]]:
    """(first, second) weighted ops whose link tensor can be rescaled per channel."""
    if pairs not in PAIRS:
        raise ValueError(f"unknown equalization pairs {pairs!r}; expected one of {', '.join(PAIRS)}")
    found = []
    for first in graph.ops:
        link = first.outputs[0]
        consumers = graph.consumers(link)
        if (first.kind not in WEIGHTED_OPS or first.attrs.get("activation") not in ("NONE", "RELU")
                or len(consumers) != 1 or link in graph.outputs):
            continue
        second = consumers[0]
        if second.kind not in WEIGHTED_OPS or second.inputs[0] != link or not _weights(graph, first).is_const:
            continue
        if second.kind == "DEPTHWISE_CONV_2D" and second.attrs.get("depth_multiplier", 1) != 1:
            continue
        if second.kind == "FULLY_CONNECTED" and _weights(graph, second).shape[1] != graph.tensor(link).shape[-1]:
            continue
        pointwise = second.kind == "CONV_2D" and _weights(graph, second).shape[1:3] == (1, 1)
        if pairs == "all" or (first.kind == "DEPTHWISE_CONV_2D" and pointwise):
            found.append((first, second))
    return found


def _weights(graph: Graph, op: Op) -> Tensor:
    return graph.tensor(op.inputs[1])


def channel_ranges(w: np.ndarray, axis: int) -> np.ndarray:
    """max |w| per index along `axis`."""
    return np.max(np.abs(np.moveaxis(w, axis, 0)).reshape(w.shape[axis], -1), axis=1)


def equalize(graph: Graph, pairs: str = "depthwise", iterations: int = 20,
             tol: float = 1e-4) -> tuple[Graph, list[tuple[str, str]]]:
    """A copy of the float graph with every qualifying pair equalized (the network's function is
    unchanged up to float rounding), and the (first, second) op names of the pairs."""
    graph = graph.copy()
    found = equalization_pairs(graph, pairs)
    for op in {op.name: op for pair in found for op in pair}.values():
        _own_constants(graph, op)
    for _ in range(iterations):
        largest_step = 0.0
        for first, second in found:
            scales = _pair_scales(graph, first, second)
            _rescale(graph, first, second, scales)
            largest_step = max(largest_step, float(np.max(np.abs(np.log(scales)))))
        if largest_step < tol:
            break
    return graph, [(first.name, second.name) for first, second in found]


def _pair_scales(graph: Graph, first: Op, second: Op) -> np.ndarray:
    r1 = channel_ranges(_weights(graph, first).data, WEIGHT_AXIS[first.kind]).astype(np.float64)
    r2 = channel_ranges(_weights(graph, second).data, _IN_AXIS[second.kind]).astype(np.float64)
    scales = np.sqrt(r1 / np.where(r2 > 0, r2, 1.0))
    return np.where((r1 > 0) & (r2 > 0), scales, 1.0)


def _rescale(graph: Graph, first: Op, second: Op, scales: np.ndarray) -> None:
    """first's output channel i / s_i (weights and bias), second's input channel i * s_i."""
    w1, w2 = _weights(graph, first), _weights(graph, second)
    w1.data = (w1.data / _along(scales, w1.data.ndim, WEIGHT_AXIS[first.kind])).astype(np.float32)
    w2.data = (w2.data * _along(scales, w2.data.ndim, _IN_AXIS[second.kind])).astype(np.float32)
    if len(first.inputs) > 2 and first.inputs[2] is not None:
        bias = graph.tensor(first.inputs[2])
        bias.data = (bias.data / scales).astype(np.float32)


def _along(values: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = values.size
    return values.reshape(shape)


def _own_constants(graph: Graph, op: Op) -> None:
    """Give `op` private copies of the weights and bias it shares, so rescaling touches no other op."""
    for position in (1, 2):
        name = op.inputs[position] if position < len(op.inputs) else None
        if name is None or len(graph.consumers(name)) == 1:
            continue
        t = graph.tensor(name)
        copy_name = f"{name}/equalized[{op.name}]"
        graph.tensors[copy_name] = Tensor(name=copy_name, shape=t.shape, dtype=FLOAT32, quant=None,
                                          data=np.array(t.data, np.float32))
        op.inputs[position] = copy_name
