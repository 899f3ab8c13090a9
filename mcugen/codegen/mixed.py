"""Mixed-precision kernels: which variant an op calls, its scratch, and its weights' bytes.

The C side is c_kernels/include/mcugen_mixed.h: each op's body (c_kernels/src/mixed_<op>.h) is
written once and compiled once per variant, by a wrapper that defines the variant's widths and
includes it (`Variant.defines`). An op keeps the int8 kernels when all its activations are
int8 and its weights 8-bit, so int8 layers and int8 builds are exactly what they were.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcugen.errors import UserError
from mcugen.ir import INT8, Graph, Op, Tensor
from mcugen.quant.packing import WIDTHS, pack

C_OPS = {
    "CONV_2D": "conv2d",
    "DEPTHWISE_CONV_2D": "depthwise_conv2d",
    "FULLY_CONNECTED": "fully_connected",
    "AVERAGE_POOL_2D": "avg_pool2d",
    "MAX_POOL_2D": "max_pool2d",
    "ADD": "add",
}
WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# A reshape of a packed tensor is the same bytes (the flattened order does not change).
ALIAS_OPS = ("RESHAPE", "SQUEEZE")
# Headers the mixed kernels need on top of the int8 ones; an int8 build does not get them.
HEADERS = ("mcugen_mixed.h", "mcugen_mixed_util.h", "mcugen_packing.h")


@dataclass(frozen=True)
class Variant:
    """One compiled instance of a mixed kernel, e.g. mcugen_conv2d_i4w2o8."""

    op: str  # the C op name, a key of the bodies: "conv2d", "add", ...
    inputs: tuple[tuple[bool, int], ...]  # (signed, bits) of each activation input, in argument order
    out_bits: int
    weight_bits: int | None = None

    @property
    def name(self) -> str:
        acts = "".join(f"{'i' if signed else 'u'}{bits}" for signed, bits in self.inputs)
        weights = f"w{self.weight_bits}" if self.weight_bits else ""
        return f"mcugen_{self.op}_{acts}{weights}o{self.out_bits}"

    @property
    def body(self) -> str:
        return f"mixed_{self.op}.h"

    @property
    def defines(self) -> list[tuple[str, int]]:
        """The macros a wrapper defines before including the body (mcugen_mixed.h)."""
        macros = []
        for prefix, (signed, bits) in zip(("MCUGEN_IN", "MCUGEN_IN2"), self.inputs):
            macros += [(f"{prefix}_SIGNED", int(signed)), (f"{prefix}_BITS", bits)]
        if self.weight_bits:
            macros.append(("MCUGEN_W_BITS", self.weight_bits))
        return macros + [("MCUGEN_OUT_BITS", self.out_bits)]


def _label(op: Op) -> str:
    return op.name or op.kind


def needs_mixed(graph: Graph, op: Op) -> bool:
    """True when `op` has an activation other than int8 (sub-byte, or unsigned) or weights below
    8 bits; a UserError when it has, but no mixed kernel can run it. Float tensors are left to
    the int8 path's own checks."""
    tensors = [t for t in (*graph.op_inputs(op), *graph.op_outputs(op)) if t is not None]
    if any(t.dtype.is_float for t in tensors) or all(t.dtype == INT8 or t.dtype.bits > 8 for t in tensors):
        return False
    if op.kind in ALIAS_OPS:
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if x.dtype != y.dtype:
            raise UserError(f"{_label(op)}: {op.kind} from {x.dtype} '{x.name}' to {y.dtype} '{y.name}' "
                            "changes the element type; both sides of a reshape must have the same type")
        return False
    odd = next(t for t in tensors if t.dtype != INT8 and t.dtype.bits <= 8)
    if op.kind not in C_OPS:
        raise UserError(f"{_label(op)}: tensor '{odd.name}' is {odd.dtype}, but {op.kind} has only an int8 "
                        f"kernel; sub-byte and unsigned tensors may only meet {', '.join(C_OPS)}, "
                        f"{' and '.join(ALIAS_OPS)}: keep this op's tensors int8")
    for t in tensors:
        if t.is_const and t.dtype.bits > 8:
            continue  # biases
        if t.dtype.bits not in WIDTHS:
            raise UserError(f"{_label(op)}: tensor '{t.name}' is {t.dtype}; mixed-precision kernels take "
                            "2, 4 or 8-bit tensors")
        if t.is_const and not t.dtype.signed:
            raise UserError(f"{_label(op)}: weights '{t.name}' are {t.dtype}; weights must be signed")
    return True


def variant(graph: Graph, op: Op, inputs: list[str]) -> Variant:
    """The variant of an op for which needs_mixed() holds; `inputs` are its activation inputs in
    the kernel's argument order (ADD may swap them to broadcast its second input)."""
    if len(inputs) != (2 if op.kind == "ADD" else 1):
        raise UserError(f"{_label(op)}: {op.kind} of a constant tensor has no mixed-precision kernel")
    types = tuple((graph.tensor(n).dtype.signed, graph.tensor(n).dtype.bits) for n in inputs)
    weight_bits = graph.tensor(op.inputs[1]).dtype.bits if op.kind in WEIGHTED else None
    return Variant(C_OPS[op.kind], types, graph.tensor(op.outputs[0]).dtype.bits, weight_bits)


def scratch_bytes(graph: Graph, op: Op) -> int:
    """Mirrors mcugen_mixed_scratch_size(): int16 columns of two output pixels (or batch rows),
    one when there is only one; depthwise mcugen_mixed_depthwise_scratch_size(): four int16
    weights per tap; pooling and ADD need none."""
    if op.kind not in WEIGHTED:
        return 0
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    if op.kind == "DEPTHWISE_CONV_2D":
        return 4 * w.shape[1] * w.shape[2] * 2
    if op.kind == "FULLY_CONNECTED":
        depth = w.shape[1]
        window, pixels = depth, x.size // depth
    else:
        window, pixels = w.shape[1] * w.shape[2] * x.shape[-1], y.size // y.shape[-1]
    return (2 if pixels > 1 else 1) * window * 2


def packed_weights(weights: Tensor) -> np.ndarray:
    """The uint8 array a mixed kernel reads its weights from: packed at their width in their own
    order (OHWI; depthwise 1HWC, i.e. tap-major [kh * kw][out_ch], mcugen_mixed.h)."""
    return np.frombuffer(pack(weights.data, weights.dtype.bits), np.uint8)
