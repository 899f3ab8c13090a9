"""The TFLite front end: real models load as TFLM loads them; bad input ends in one clear error."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest

from conftest import INT8_MODELS, MODELS, shared_model
from mcugen.analysis import layer_costs
from mcugen.errors import UserError
from mcugen.frontend import load_tflite
from mcugen.testing import ModelBuilder, hybrid_model, random_model


@pytest.mark.parametrize("path", sorted(MODELS.glob("*/*.tflite")), ids=lambda p: p.name)
def test_op_counts_match_manifest(path, manifest):
    entry = manifest[f"models/{path.parent.name}/{path.name}"]
    if "kws_ref_model_float32" in path.name:  # a hybrid model: mcugen must refuse it
        with pytest.raises(UserError, match="hybrid"):
            load_tflite(path)
        return
    graph = load_tflite(path)
    assert dict(Counter(op.kind for op in graph.ops)) == entry["flatbuffer"]["ops"]


def test_kws_mac_counts_by_hand():
    costs = layer_costs(load_tflite(shared_model("kws")))
    # conv 10x4x1 -> 64 channels on a 25x5 output; depthwise 3x3 on 25x5x64; FC 64 -> 12
    assert (costs[0].op, costs[0].macs) == ("CONV_2D", 25 * 5 * 64 * 10 * 4 * 1)
    assert (costs[1].op, costs[1].macs) == ("DEPTHWISE_CONV_2D", 25 * 5 * 64 * 3 * 3)
    assert (costs[2].op, costs[2].macs) == ("CONV_2D", 25 * 5 * 64 * 64)
    assert (costs[11].op, costs[11].macs) == ("FULLY_CONNECTED", 64 * 12)
    assert sum(c.macs for c in costs) == 2_656_768  # ../shared/TARGETS.md


def test_depthwise_multiplier_and_attrs():
    b = ModelBuilder(3)
    x = b.input((1, 9, 9, 3))
    y = b.depthwise_conv2d(x, kernel=(3, 3), stride=(2, 2), padding="VALID", depth_multiplier=2, activation="RELU6")
    graph = load_tflite(b.finish([y]))
    op = graph.ops[0]
    assert op.kind == "DEPTHWISE_CONV_2D"
    assert op.attrs == {"padding": "VALID", "stride": (2, 2), "dilation": (1, 1), "activation": "RELU6", "depth_multiplier": 2}
    assert graph.tensor(op.outputs[0]).shape == (1, 4, 4, 6)
    weights = graph.tensor(op.inputs[1])
    assert weights.quant.axis == 3 and weights.quant.scale.size == 6


def test_bias_with_filter_quantized_dimension_loads_as_tflm_does():
    """Older converters wrote 1-D per-channel biases with quantized_dimension 3."""
    b = ModelBuilder(5)
    x = b.input((1, 6, 6, 4))
    y = b.depthwise_conv2d(x)
    bias = b._ops[-1].inputs[2]
    b._tensors[bias] = dataclasses.replace(b._tensors[bias], quant=dataclasses.replace(b._tensors[bias].quant, axis=3))
    graph = load_tflite(b.finish([y]))
    assert graph.tensor(graph.ops[0].inputs[2]).quant.axis == 0


def test_int4_constants_unpack_low_nibble_first():
    from mcugen.frontend.tflite_reader import _decode
    from mcugen.ir import INT4
    import numpy as np

    values = _decode(bytes([0x21, 0xF7]), INT4, np.int8, (4,), "w")
    assert values.tolist() == [1, 2, 7, -1]


BAD_INPUTS = {
    "truncated": lambda: INT8_MODELS["kws"].read_bytes()[:2000],
    "not_tflite": lambda: b"hello, this is not a model at all",
    "empty": lambda: b"",
    "unsupported_op": lambda: _tanh_model(),
    "hybrid": hybrid_model,
}


def _tanh_model() -> bytes:
    b = ModelBuilder(0)
    x = b.input((1, 8))
    return b.finish([b.custom_builtin(b.fully_connected(x, 4), "TANH")])


@pytest.mark.parametrize("case,message", [
    ("truncated", "truncated or corrupt"),
    ("not_tflite", "not a TFLite model"),
    ("empty", "not a TFLite model"),
    ("unsupported_op", r"op 1 \(TANH\) is not supported"),
    ("hybrid", r"op 0 \(CONV_2D\) is hybrid"),
])
def test_bad_input_is_one_clear_error(case, message, tmp_path, cli):
    if case == "truncated":
        shared_model("kws")
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(BAD_INPUTS[case]())
    for command in (["inspect", path], ["verify", path, "--against", "tflm", "--inputs", "1"]):
        status, out, err = cli(*command)
        assert status == 2
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mcugen: error:"), err
        assert "Traceback" not in err
        import re
        assert re.search(message, lines[0]), lines[0]


def test_missing_file(cli, tmp_path):
    status, _, err = cli("inspect", tmp_path / "nope.tflite")
    assert status == 2 and "model file not found" in err


def test_inspect_json_contract(cli):
    status, out, _ = cli("inspect", shared_model("kws"), "--json")
    assert status == 0
    data = json.loads(out)
    assert set(data) == {"layers", "totals"}
    assert set(data["layers"][0]) == {"index", "op", "inputs", "outputs", "macs", "weight_bytes"}
    assert data["totals"] == {"macs": 2_656_768, "weight_bytes": 24_376}
    assert data["layers"][0]["inputs"][0]["shape"] == [1, 49, 10, 1]


def test_inspect_table_has_totals(cli):
    status, out, _ = cli("inspect", shared_model("resnet8"))
    assert status == 0
    assert out.splitlines()[-1].split()[-2:] == ["78,752", "12,501,632"]


def test_random_models_load(tmp_path):
    for seed in range(20):
        graph = load_tflite(random_model(seed))
        assert graph.ops and graph.inputs and graph.outputs
        for op in graph.ops:
            assert all(name is None or name in graph.tensors for name in [*op.inputs, *op.outputs])
