"""TensorFlow Lite Micro as the outside oracle: mcugen's reference must match it bit for bit."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tflite.Model import Model

from mcugen.errors import UserError

ORACLE_ARENA_BYTES = 4 << 20


def _interpreter(model: bytes):
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise UserError("the TFLM oracle needs the 'tflite-micro' package: pip install 'mcugen[oracle]'") from None
    # TFLM's default arena (10x the file size) is too small for models with few weights.
    return runtime.Interpreter.from_bytes(model, arena_size=max(10 * len(model), ORACLE_ARENA_BYTES),
                                          intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)


class TflmModel:
    """One TFLM interpreter for a model, reused across inputs."""

    def __init__(self, model: bytes | str | Path) -> None:
        self.model = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
        self.interpreter = _interpreter(self.model)
        self.n_outputs = Model.GetRootAs(self.model, 0).Subgraphs(0).OutputsLength()

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        for i, x in enumerate(inputs):
            self.interpreter.set_input(x, i)
        self.interpreter.invoke()
        return [np.array(self.interpreter.get_output(i)) for i in range(self.n_outputs)]

    def tensor(self, index: int) -> np.ndarray:
        """An intermediate tensor of the last run (the interpreter preserves all tensors)."""
        return np.array(self.interpreter.GetTensor(index, 0)["tensor_data"])
