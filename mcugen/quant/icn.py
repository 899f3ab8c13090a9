"""Integer Channel Normalization (ICN) and batch-norm folding (FB), in mcugen's one integer dialect.

Rusci et al. (2019) map a layer's int32 accumulator to its (sub-byte) output with, per output
channel c, an integer bias B_c, multiplier M_c and shift N_c, folding batch-norm and the
activation clamp:  y = clamp(zp_y + requant(acc + B_c, M_c, N_c), lo, hi).  In mcugen that is
exactly TFLite's per-channel requantization — B_c = round(b_c / (s_x s_w[c])), (M_c, N_c) =
quantize_multiplier(s_x s_w[c] / s_y), with the same double-rounding arithmetic as int8
(`mcugen.quant.lowering.lower` computes them, as for any int8 layer) — and [lo, hi] is the
output dtype's range met with the fused activation. Batch-norm's per-channel factor
gamma_c / sigma_c lives in s_w[c] and beta in B_c, whatever the weight width; a source whose
batch-norm is already folded into its float weights gives the same numbers.

FB ("folded batch-norm") is the per-layer case: batch-norm folded into the weights, one weight
scale and one multiplier for the layer — what TFLite does for int8 FULLY_CONNECTED.

`requant_method` names the method of each layer for the report: ICN for a per-channel layer
with a sub-byte weight or output, PC for an 8-bit per-channel layer (TFLite's own), FB for a
per-layer one.
"""
from __future__ import annotations

import numpy as np

from mcugen.ir import Graph, Op
from mcugen.quant import fixedpoint as fp
from mcugen.quant.fixedpoint import round_half_away


def integer_bias(real_bias: np.ndarray, bias_scale) -> np.ndarray:
    """B_c = round(b_c / (s_x s_w[c])), saturated to int32 (a bias far beyond the accumulator's
    reach saturates the output either way)."""
    q = round_half_away(np.asarray(real_bias, np.float64) / np.asarray(bias_scale, np.float64))
    return np.clip(q, fp.INT32_MIN, fp.INT32_MAX).astype(np.int32)


def requant_method(graph: Graph, op: Op) -> str:
    """"ICN", "PC" or "FB" for a CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED op."""
    w, y = graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    if not w.quant.per_channel:
        return "FB"
    return "ICN" if min(w.dtype.bits, y.dtype.bits) < 8 else "PC"
