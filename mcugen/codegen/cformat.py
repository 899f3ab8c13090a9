"""C literals: constant arrays and struct initialisers, formatted once here for every template."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CTYPES = {
    np.dtype(np.int8): "int8_t",
    np.dtype(np.uint8): "uint8_t",
    np.dtype(np.int16): "int16_t",
    np.dtype(np.int32): "int32_t",
    np.dtype(np.uint32): "uint32_t",
}
_PER_LINE = 24


@dataclass(frozen=True)
class CArray:
    """A `const` array that goes to flash."""

    name: str
    ctype: str
    values: str  # comma-separated literals, wrapped
    count: int
    comment: str = ""


@dataclass(frozen=True)
class CStruct:
    """A `static const` struct initialised with designated initialisers."""

    ctype: str
    name: str
    fields: tuple[tuple[str, str], ...]


def literal(value) -> str:
    """A C literal for an int; INT32_MIN cannot be written as a plain negative literal."""
    value = int(value)
    return "INT32_MIN" if value == -(2**31) else str(value)


def c_array(name: str, data: np.ndarray, comment: str = "") -> CArray:
    flat = np.ascontiguousarray(data).reshape(-1)
    ctype = _CTYPES[flat.dtype]
    items = [literal(v) for v in flat.tolist()] if flat.dtype == np.int32 else [str(v) for v in flat.tolist()]
    lines = [", ".join(items[i:i + _PER_LINE]) for i in range(0, len(items), _PER_LINE)]
    return CArray(name=name, ctype=ctype, values=",\n    ".join(lines), count=flat.size, comment=comment)


def c_struct(ctype: str, name: str, **fields) -> CStruct:
    def fmt(value) -> str:
        if isinstance(value, (list, tuple)):
            return "{" + ", ".join(fmt(v) for v in value) + "}"
        return value if isinstance(value, str) else literal(value)

    return CStruct(ctype=ctype, name=name, fields=tuple((k, fmt(v)) for k, v in fields.items()))
