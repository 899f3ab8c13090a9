"""Inputs and calibration data: shapes checked, float samples quantized as TFLite's converter does."""
from __future__ import annotations

import numpy as np
import pytest

from mcugen.errors import UserError
from mcugen.frontend import load_tflite
from mcugen.inputs import load_calibration, load_inputs, random_inputs
from mcugen.testing import ModelBuilder


@pytest.fixture(scope="module")
def graph():
    b = ModelBuilder(1)
    x = b.input((1, 4, 4, 2), scale=0.5, zero_point=-3)
    return load_tflite(b.finish([b.conv2d(x, 3)]))


def test_random_inputs_depend_only_on_seed_and_index(graph):
    a, b = random_inputs(graph, 3, 7), random_inputs(graph, 5, 7)
    for i in range(3):
        assert np.array_equal(a[i][0], b[i][0])
    assert not np.array_equal(a[0][0], random_inputs(graph, 1, 8)[0][0])
    assert a[0][0].dtype == np.int8 and a[0][0].shape == (1, 4, 4, 2)


def test_float_samples_are_quantized_half_away_from_zero(graph, tmp_path):
    samples = np.zeros((2, 1, 4, 4, 2), np.float32)
    samples[0, 0, 0, 0, :] = [0.25, -0.25]   # 0.5 and -0.5 steps: round away from zero
    samples[1, 0, 0, 0, :] = [1000.0, -1000.0]  # clamp
    np.save(tmp_path / "calib.npy", samples)
    sets = load_inputs(tmp_path / "calib.npy", graph)
    assert [s[0][0, 0, 0].tolist() for s in sets] == [[-2, -4], [127, -128]]


def test_calibration_sources(graph, tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "dir"
    d.mkdir()
    for i in range(3):
        np.save(d / f"{i}.npy", rng.integers(-128, 128, (1, 4, 4, 2)).astype(np.int8))
    assert len(load_calibration(d, graph)["inputs"]) == 3
    np.savez(tmp_path / "c.npz", a=rng.uniform(-1, 1, (5, 1, 4, 4, 2)).astype(np.float32))
    calib = load_calibration(tmp_path / "c.npz", graph)
    assert len(calib["inputs"]) == 5 and "c.npz" in calib["description"]
    default = load_calibration(None, graph)
    assert "no --calib given" in default["description"] and len(default["inputs"]) == 64


@pytest.mark.parametrize("shape,message", [((3, 3), "has shape"), ((1, 4, 4, 2), None)])
def test_wrong_shapes_are_user_errors(graph, tmp_path, shape, message):
    np.save(tmp_path / "x.npy", np.zeros(shape, np.int8))
    if message is None:
        assert len(load_inputs(tmp_path / "x.npy", graph)) == 1
    else:
        with pytest.raises(UserError, match=message):
            load_inputs(tmp_path / "x.npy", graph)


def test_empty_calibration_directory(graph, tmp_path):
    with pytest.raises(UserError, match="holds no .npy files"):
        load_calibration(tmp_path, graph)
