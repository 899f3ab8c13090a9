"""The one intermediate representation: a graph of tensors and ops.

Every stage of mcugen (front end, passes, reference, codegen) reads and writes only this. What
passes must share travels as attributes on these objects (`Op.attrs`, `Graph.attrs`), never as
private state of a pass.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np


@dataclass(frozen=True)
class DType:
    """An element type: integers of 2..32 bits (signed or not) or float32."""

    kind: str  # "int" or "float"
    bits: int
    signed: bool = True

    @property
    def name(self) -> str:
        if self.kind == "float":
            return f"float{self.bits}"
        return f"{'' if self.signed else 'u'}int{self.bits}"

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def numpy(self) -> np.dtype:
        """The numpy type that holds one unpacked element."""
        if self.is_float:
            return np.dtype(np.float32)
        if self.bits <= 8:
            return np.dtype(np.int8 if self.signed else np.uint8)
        if self.bits <= 16:
            return np.dtype(np.int16 if self.signed else np.uint16)
        return np.dtype(np.int32 if self.signed else np.uint32)

    def __str__(self) -> str:
        return self.name


INT2, INT4, INT8, INT16, INT32 = (DType("int", b) for b in (2, 4, 8, 16, 32))
UINT2, UINT4, UINT8 = (DType("int", b, signed=False) for b in (2, 4, 8))
FLOAT32 = DType("float", 32)


@dataclass
class Quant:
    """Affine quantization: real = scale * (q - zero_point); per tensor or along `axis`."""

    scale: np.ndarray  # float64, shape (1,) per tensor or (channels,) per axis
    zero_point: np.ndarray  # int64, same shape as scale
    axis: int | None = None

    def __post_init__(self) -> None:
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float64))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int64))

    @property
    def per_channel(self) -> bool:
        return self.axis is not None and self.scale.size > 1

    @property
    def s(self) -> float:
        """The scale of a per-tensor quantized tensor."""
        assert self.scale.size == 1, "per-channel tensor has no single scale"
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        assert self.zero_point.size == 1 or np.all(self.zero_point == self.zero_point[0])
        return int(self.zero_point[0])


@dataclass
class Tensor:
    """A value in the graph: an activation or a constant (when `data` is set)."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    quant: Quant | None = None
    data: np.ndarray | None = None  # unpacked values, dtype.numpy, in `shape`

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes in memory, sub-byte elements packed (DESIGN.md: element 0 in the low bits)."""
        return (self.size * self.dtype.bits + 7) // 8


@dataclass
class Op:
    """One operator. `kind` is the TFLite builtin name (e.g. "CONV_2D").

    `inputs` and `outputs` are tensor names; an absent optional input (a conv without bias)
    is None. `attrs` carries the operator's options with normalised keys: `stride` (h, w),
    `dilation` (h, w), `padding` ("SAME"/"VALID"), `activation` ("NONE", "RELU", "RELU6",
    "RELU_N1_TO_1"), `depth_multiplier`, `filter` (h, w), `axis`, `keep_dims`, `beta`, ...
    """

    kind: str
    inputs: list[str | None]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass
class Graph:
    """Tensors by name, ops in execution order, graph inputs and outputs by name."""

    tensors: dict[str, Tensor]
    ops: list[Op]
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def op_inputs(self, op: Op) -> list[Tensor | None]:
        return [None if n is None else self.tensors[n] for n in op.inputs]

    def op_outputs(self, op: Op) -> list[Tensor]:
        return [self.tensors[n] for n in op.outputs]

    def producers(self) -> dict[str, Op]:
        return {out: op for op in self.ops for out in op.outputs}

    def consumers(self, name: str) -> list[Op]:
        return [op for op in self.ops if name in op.inputs]

    def activations(self) -> Iterator[Tensor]:
        """Every non-constant tensor that some op reads or writes, or that the graph exposes."""
        seen: set[str] = set()
        for name in [*self.inputs, *(n for op in self.ops for n in (*op.inputs, *op.outputs))]:
            if name is not None and name not in seen and not self.tensors[name].is_const:
                seen.add(name)
                yield self.tensors[name]

    def copy(self) -> "Graph":
        """A deep copy, so that a pass can return a new graph without touching its input."""
        return copy.deepcopy(self)
