"""Inputs for verification and benchmarking: fixed-seed random tensors or a user's .npy file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mcugen.errors import UserError
from mcugen.ir import Graph, Tensor


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
    if len(graph.inputs) != 1:
        raise UserError("--input takes a .npy file only for single-input models")
    tensor = graph.tensor(graph.inputs[0])
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read input file {path}: {exc}") from None
    shape = tuple(tensor.shape)
    if data.shape == shape:
        data = data[None]
    elif data.shape[1:] != shape and data.reshape(data.shape[0], -1).shape[1] != tensor.size:
        raise UserError(f"input file {path} has shape {list(data.shape)}; the model takes {list(shape)} (or a stack N x {list(shape)})")
    if data.dtype != tensor.dtype.numpy:
        if tensor.dtype.is_float or not np.issubdtype(data.dtype, np.integer):
            raise UserError(f"input file {path} holds {data.dtype}; the model input is {tensor.dtype.name}")
        if data.min() < tensor.dtype.qmin or data.max() > tensor.dtype.qmax:
            raise UserError(f"input file {path} has values outside {tensor.dtype.name}")
    return [[sample.reshape(shape).astype(tensor.dtype.numpy)] for sample in data]
