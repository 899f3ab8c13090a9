"""Inputs for verification and benchmarking: fixed-seed random tensors or a user's .npy file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mcugen.errors import UserError
from mcugen.ir import Graph, Tensor
from mcugen.quant.fixedpoint import round_half_away


def random_input(tensor: Tensor, rng: np.random.Generator) -> np.ndarray:
    """Integers uniform over the full range of the type; floats uniform in [-1, 1)."""
    if tensor.dtype.is_float:
        return rng.uniform(-1.0, 1.0, tensor.shape).astype(np.float32)
    return rng.integers(tensor.dtype.qmin, tensor.dtype.qmax + 1, tensor.shape).astype(tensor.dtype.numpy)


def random_inputs(graph: Graph, count: int, seed: int) -> list[list[np.ndarray]]:
    """`count` input sets, one array per graph input; input set i depends only on (seed, i)."""
    sets = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        sets.append([random_input(graph.tensor(name), rng) for name in graph.inputs])
    return sets


def load_inputs(path: Path, graph: Graph) -> list[list[np.ndarray]]:
    """Input sets from a .npy file: one sample in the input's shape, or a stack of samples."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read input file {path}: {exc}") from None
    return _as_input_sets(data, graph, path)


def quantize_real(values: np.ndarray, tensor: Tensor) -> np.ndarray:
    """Real values in `tensor`'s integer domain as TFLite's QUANTIZE computes them: divide by the
    float32 scale, round half away from zero, add the zero point, clamp."""
    scaled = np.asarray(values, np.float32) / np.float32(tensor.quant.s)
    q = round_half_away(scaled) + tensor.quant.zp
    return np.clip(q, tensor.dtype.qmin, tensor.dtype.qmax).astype(tensor.dtype.numpy)


def _as_input_sets(data: np.ndarray, graph: Graph, label) -> list[list[np.ndarray]]:
    """Samples in the model's input layout; float samples for an integer input are quantized
    with the input's scale and zero point (round half away from zero, then clamp)."""
    if len(graph.inputs) != 1:
        raise UserError("input files are supported for single-input models only")
    tensor = graph.tensor(graph.inputs[0])
    shape = tuple(tensor.shape)
    if data.shape == shape:
        data = data[None]
    elif data.ndim < 1 or data[0].size != tensor.size:
        raise UserError(f"{label} has shape {list(data.shape)}; the model takes {list(shape)} (or a stack N x {list(shape)})")
    if np.issubdtype(data.dtype, np.floating) and not tensor.dtype.is_float:
        data = quantize_real(data, tensor)
    elif tensor.dtype.is_float and not np.issubdtype(data.dtype, np.floating):
        raise UserError(f"{label} holds {data.dtype}; the model input is {tensor.dtype.name}")
    elif not tensor.dtype.is_float and (data.min() < tensor.dtype.qmin or data.max() > tensor.dtype.qmax):
        raise UserError(f"{label} has values outside {tensor.dtype.name}")
    return [[sample.reshape(shape).astype(tensor.dtype.numpy)] for sample in data]


def load_calibration(source: Path | None, graph: Graph, count: int = 64, seed: int = 0) -> dict:
    """Calibration input sets from --calib (a directory of .npy files, a .npz, or a .npy stack),
    or, without it, `count` fixed-seed random sets; `description` says which, for the report."""
    if source is None:
        return {"inputs": random_inputs(graph, count, seed),
                "description": f"no --calib given: {count} random inputs (seed {seed})"}
    source = Path(source)
    if source.is_dir():
        files = sorted(source.glob("*.npy"))
        if not files:
            raise UserError(f"--calib {source}: the directory holds no .npy files")
        sets = [s for f in files for s in load_inputs(f, graph)]
    elif source.suffix == ".npz":
        try:
            with np.load(source, allow_pickle=False) as archive:
                arrays = [archive[k] for k in sorted(archive.files)]
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read calibration file {source}: {exc}") from None
        sets = [s for a in arrays for s in _as_input_sets(a, graph, source)]
    elif source.suffix == ".npy" and source.is_file():
        sets = load_inputs(source, graph)
    else:
        raise UserError(f"--calib {source}: expected a directory of .npy files, a .npz or a .npy file")
    return {"inputs": sets, "description": f"{len(sets)} samples from {source.name}"}
