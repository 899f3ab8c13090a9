"""Bias correction (Nagel et al. 2019, sec. 4.2): undo the mean output shift that rounding the
weights causes.

Rounding turns W into W + dW, and the layer's output moves by dW * x. Its per-channel mean,
E[dW * x], is not zero in general (a channel's rounding errors need not cancel on the inputs the
layer really sees), and a ReLU after the layer turns that bias into lost or spurious signal.
Convolution is linear, so E[dW * x] is dW applied to the mean input E[x]: one evaluation of the op
on the mean of the layer's calibration inputs (padding handled exactly) gives the shift, which is
subtracted from the float bias before the bias itself is quantized.
"""
from __future__ import annotations

import numpy as np

from mcugen.ir import FLOAT32, Graph, Op, Tensor
from mcugen.quant.quantizer import WEIGHTED_OPS
from mcugen.reference import float_executor



def output_shift(graph: Graph, op: Op, mean_input: np.ndarray, weight_error: np.ndarray) -> np.ndarray:
    """E[dW * x] per output channel: the op, without bias or activation, run with weights dW on
    the mean input, averaged over every position."""
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    error = Tensor(name="weight_error", shape=w.shape, dtype=FLOAT32, data=weight_error.astype(np.float32))
    probe = Op(kind=op.kind, inputs=[x.name, error.name], outputs=[y.name],
               attrs={**op.attrs, "activation": "NONE"}, name=op.name)
    single = Graph(tensors={x.name: x, error.name: error, y.name: y}, ops=[probe], inputs=[x.name], outputs=[y.name])
    shifted = float_executor.run(single, [mean_input.astype(np.float32)])[0]
    return shifted.reshape(-1, y.shape[-1]).astype(np.float64).mean(axis=0)


def correct_bias(graph: Graph, dequantized_weights: dict[str, np.ndarray],
                 mean_inputs: dict[str, np.ndarray]) -> tuple[Graph, dict[str, float]]:
    """A copy of the float graph whose weighted ops (those with weights in `dequantized_weights`,
    the values their quantized weights represent) have the bias that cancels E[dW * x]; ops
    without a bias get one. `mean_inputs` maps each op's input tensor to its calibration mean.
    Also returns the largest |E[dW * x]| of each corrected op, by op name."""
    graph = graph.copy()
    shifts = {}
    for op in graph.ops:
        w = graph.tensor(op.inputs[1]) if op.kind in WEIGHTED_OPS else None
        if w is None or w.name not in dequantized_weights:
            continue
        shift = output_shift(graph, op, mean_inputs[op.inputs[0]], dequantized_weights[w.name] - w.data)
        bias_name = op.inputs[2] if len(op.inputs) > 2 else None
        bias = graph.tensor(bias_name).data if bias_name else np.zeros(shift.size, np.float32)
        corrected = (bias.astype(np.float64) - shift).astype(np.float32)
        if bias_name and len(graph.consumers(bias_name)) == 1:
            graph.tensor(bias_name).data = corrected
        else:  # no bias, or one shared with another op
            name = f"{op.outputs[0]}/corrected_bias"
            graph.tensors[name] = Tensor(name=name, shape=corrected.shape, dtype=FLOAT32, data=corrected)
            op.inputs[2:] = [name]
        shifts[op.name] = float(np.max(np.abs(shift)))
    return graph, shifts
