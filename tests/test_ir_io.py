"""A compiled graph survives saving and loading unchanged, so `verify OUT` checks the right thing."""
from __future__ import annotations

import numpy as np

from mcugen.frontend import load_tflite
from mcugen.inputs import random_inputs
from mcugen.ir_io import load_graph, save_graph
from mcugen.reference.executor import run
from mcugen.testing import random_model


def test_roundtrip_preserves_graph_and_results(tmp_path):
    for seed in (1, 2, 3):
        graph = load_tflite(random_model(seed))
        graph.attrs["options"] = {"bits": "auto", "stride": (2, 2)}
        save_graph(graph, tmp_path)
        back = load_graph(tmp_path)
        assert back.inputs == graph.inputs and back.outputs == graph.outputs
        assert [(op.kind, op.inputs, op.outputs, op.attrs) for op in back.ops] == \
               [(op.kind, op.inputs, op.outputs, op.attrs) for op in graph.ops]
        assert back.attrs["options"] == {"bits": "auto", "stride": (2, 2)}
        for name, t in graph.tensors.items():
            u = back.tensors[name]
            assert (u.shape, u.dtype) == (t.shape, t.dtype)
            assert (t.data is None) == (u.data is None)
            if t.data is not None:
                assert u.data.dtype == t.data.dtype and np.array_equal(u.data, t.data)
        for inputs in random_inputs(graph, 2, seed):
            for a, b in zip(run(graph, inputs), run(back, inputs)):
                assert np.array_equal(a, b)


def test_saved_bytes_are_deterministic(tmp_path):
    graph = load_tflite(random_model(4))
    for copy in ("a", "b"):
        (tmp_path / copy).mkdir()
        save_graph(graph, tmp_path / copy)
    for name in ("graph.json", "graph.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
