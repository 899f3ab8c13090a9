"""Saving and loading a Graph: `graph.json` (structure) plus `graph.npz` (arrays).

A build stores its compressed graph in OUT/ so that `mcugen verify OUT` checks the generated code
against exactly the graph it was generated from, without the original model, calibration data
or options. Only JSON-able op and graph attributes are kept; tuples come back as tuples.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mcugen.errors import UserError
from mcugen.ir import DType, Graph, Op, Quant, Tensor

FORMAT = 1


def _encode(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(_encode(value))
        return True
    except TypeError:
        return False


def save_graph(graph: Graph, directory: Path, stem: str = "graph") -> None:
    arrays: dict[str, np.ndarray] = {}
    tensors = []
    for i, t in enumerate(graph.tensors.values()):
        entry: dict[str, Any] = {"name": t.name, "shape": list(t.shape),
                                 "dtype": [t.dtype.kind, t.dtype.bits, t.dtype.signed]}
        if t.quant is not None:
            arrays[f"t{i}_scale"] = t.quant.scale
            arrays[f"t{i}_zero_point"] = t.quant.zero_point
            entry["quant_axis"] = t.quant.axis
        if t.data is not None:
            arrays[f"t{i}_data"] = t.data
        tensors.append(entry)
    ops = [{"kind": op.kind, "name": op.name, "inputs": op.inputs, "outputs": op.outputs,
            "attrs": _encode({k: v for k, v in op.attrs.items() if _jsonable(v)})} for op in graph.ops]
    structure = {"format": FORMAT, "tensors": tensors, "ops": ops, "inputs": graph.inputs, "outputs": graph.outputs,
                 "attrs": _encode({k: v for k, v in graph.attrs.items() if _jsonable(v)})}
    (directory / f"{stem}.json").write_text(json.dumps(structure, indent=1, sort_keys=True) + "\n")
    # np.savez stamps the current time into the zip; write entries with a fixed date instead.
    with zipfile.ZipFile(directory / f"{stem}.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())


def load_graph(directory: Path, stem: str = "graph") -> Graph:
    try:
        structure = json.loads((directory / f"{stem}.json").read_text())
        arrays = np.load(directory / f"{stem}.npz", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the compiled graph in {directory}: {exc}") from None
    if structure.get("format") != FORMAT:
        raise UserError(f"{directory} was built by an incompatible mcugen version; rebuild it")
    tensors = {}
    for i, entry in enumerate(structure["tensors"]):
        kind, bits, signed = entry["dtype"]
        quant = None
        if f"t{i}_scale" in arrays:
            quant = Quant(arrays[f"t{i}_scale"], arrays[f"t{i}_zero_point"], entry.get("quant_axis"))
        data = arrays[f"t{i}_data"] if f"t{i}_data" in arrays else None
        tensors[entry["name"]] = Tensor(entry["name"], tuple(entry["shape"]), DType(kind, bits, signed), quant, data)
    ops = [Op(kind=o["kind"], inputs=o["inputs"], outputs=o["outputs"], attrs=_decode(o["attrs"]), name=o["name"])
           for o in structure["ops"]]
    return Graph(tensors=tensors, ops=ops, inputs=structure["inputs"], outputs=structure["outputs"],
                 attrs=_decode(structure["attrs"]))
