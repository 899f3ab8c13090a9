"""Bit-exactness checks: the reference against TFLM, and generated code against the reference."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcugen.frontend import load_tflite
from mcugen.ir import Graph
from mcugen.reference.executor import run as run_reference


@dataclass
class Agreement:
    """How many input sets agreed bit for bit, and where the first disagreement was."""

    label: str
    total: int
    exact: int = 0
    first_mismatch: str | None = None

    @property
    def ok(self) -> bool:
        return self.exact == self.total

    def summary(self) -> str:
        return f"{self.label}: {self.exact}/{self.total} inputs bit-exact"


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def first_differing_op(graph: Graph, mine: dict[str, np.ndarray], theirs) -> str | None:
    """Name the first op whose output differs; `theirs(name)` returns the other side's tensor."""
    for index, op in enumerate(graph.ops):
        for name in op.outputs:
            other = theirs(name)
            if other is None:
                continue
            ours = mine[name]
            if ours.shape != other.shape or not np.array_equal(ours.reshape(-1), other.reshape(-1)):
                diff = _max_diff(ours.reshape(-1), other.reshape(-1)) if ours.size == other.size else float("nan")
                return f"op {index} ({op.kind}) output '{name}' differs first, max abs diff {diff:g}"
    return None


def compare_sets(label: str, expected_sets, actual_sets) -> Agreement:
    """Compare output lists per input set; note the largest difference of the first mismatch."""
    result = Agreement(label, len(expected_sets))
    for i, (want, got) in enumerate(zip(expected_sets, actual_sets)):
        if all(np.array_equal(w.reshape(-1), g.reshape(-1)) for w, g in zip(want, got)):
            result.exact += 1
        elif result.first_mismatch is None:
            diff = max(_max_diff(w.reshape(-1), g.reshape(-1)) for w, g in zip(want, got))
            result.first_mismatch = f"input {i}: outputs differ, max abs diff {diff:g}"
    return result


def reference_vs_tflm(model_path: Path, input_sets: list[list[np.ndarray]]) -> Agreement:
    """Run mcugen's reference and TFLM on the same inputs; compare every output element."""
    from mcugen.oracle import TflmModel

    graph = load_tflite(model_path)
    tflm = TflmModel(model_path)
    index = graph.attrs["tflite_tensor_index"]
    result = Agreement("reference vs tflm", len(input_sets))
    for i, inputs in enumerate(input_sets):
        mine = run_reference(graph, inputs, keep_all=True)
        theirs = tflm.run(inputs)
        ours = [mine[name] for name in graph.outputs]
        if all(np.array_equal(a.reshape(-1), b.reshape(-1)) for a, b in zip(ours, theirs)):
            result.exact += 1
            continue
        if result.first_mismatch is None:
            where = first_differing_op(graph, mine, lambda name: tflm.tensor(index[name]))
            diff = max(_max_diff(a.reshape(-1), b.reshape(-1)) for a, b in zip(ours, theirs))
            result.first_mismatch = f"input {i}: {where or 'outputs differ'}; largest output difference {diff:g}"
    return result
