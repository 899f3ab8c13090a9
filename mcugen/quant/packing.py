"""Packed storage of 2-, 4- and 8-bit integer tensors (DESIGN.md), for Python's side of the C.

Elements are packed little end first over the flattened tensor: element i of a `bits`-bit tensor
lives in byte i * bits // 8 at bit (i * bits) % 8 (for 4 bits: element 2i in the low nibble,
2i+1 in the high nibble, TFLM's int4 packing); unused bits after the last element are 0. 8-bit
tensors are plain bytes. The code generator packs weights with this, the pipeline packs inputs
and unpacks outputs with it, and c_kernels/include/mcugen_packing.h reads and writes the same
layout in C.
"""
from __future__ import annotations

import numpy as np

WIDTHS = (2, 4, 8)


def _check_bits(bits: int) -> None:
    if bits not in WIDTHS:
        raise ValueError(f"packed tensors have 2, 4 or 8 bits per element, not {bits}")


def packed_size(count: int, bits: int) -> int:
    """Bytes of `count` packed `bits`-bit elements."""
    _check_bits(bits)
    return (count * bits + 7) // 8


def pack(values, bits: int) -> bytes:
    """The packed bytes of an integer array (flattened in C order), signed or unsigned values alike:
    each element keeps its low `bits` bits (two's complement)."""
    _check_bits(bits)
    flat = np.asarray(values).reshape(-1)
    if flat.size and not np.issubdtype(flat.dtype, np.integer):
        raise ValueError(f"pack() takes integers, not {flat.dtype}")
    flat = flat.astype(np.int64)
    if flat.size and (flat.min() < -(1 << (bits - 1)) or flat.max() > (1 << bits) - 1):
        raise ValueError(f"values {flat.min()}..{flat.max()} do not fit in {bits} bits")
    per_byte = 8 // bits
    fields = np.zeros(packed_size(flat.size, bits) * per_byte, np.uint32)
    fields[:flat.size] = flat & ((1 << bits) - 1)
    shifts = np.arange(per_byte, dtype=np.uint32) * bits
    return (fields.reshape(-1, per_byte) << shifts).sum(axis=1).astype(np.uint8).tobytes()


def unpack(data: bytes, bits: int, count: int, signed: bool) -> np.ndarray:
    """`count` elements from packed bytes: int8 values if `signed`, else uint8 (the numpy types of
    `mcugen.ir.DType` for 2..8 bits)."""
    _check_bits(bits)
    raw = np.frombuffer(data, np.uint8, count=packed_size(count, bits))
    per_byte = 8 // bits
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    fields = ((raw[:, None] >> shifts) & ((1 << bits) - 1)).reshape(-1)[:count].astype(np.int16)
    if signed:
        fields = np.where(fields >= 1 << (bits - 1), fields - (1 << bits), fields)
    return fields.astype(np.int8 if signed else np.uint8)
