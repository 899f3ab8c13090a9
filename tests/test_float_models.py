"""Float32 models -> int8: canonicalization, calibration, error corrections, and the result measured
against the converter's own int8 twin of each shared float model.

`python tests/test_float_models.py` prints the README's table: output SQNR against the float model,
per calibration method, on held-out inputs (never the calibration ones).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from conftest import MODELS
from mcugen.errors import UserError
from mcugen.frontend import load_tflite
from mcugen.ir import FLOAT32, INT8, Graph, Op, Quant, Tensor
from mcugen.passes.calibrate import calibrate, sqnr_vs_float
from mcugen.passes.canonicalize import canonicalize
from mcugen.pipeline import compile_model
from mcugen.quant import per_vector
from mcugen.quant.bias_correction import output_shift
from mcugen.quant.equalization import channel_ranges, equalize
from mcugen.quant.observers import METHODS
from mcugen.reference import float_executor

AD_SAMPLE = MODELS / "ad_fc_autoencoder" / "samples" / "normal_id_01_00000000_hist_librosa.bin"


def _uniform(shape, lo, hi, seed, count, integer=False):
    sets = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        x = rng.integers(lo, hi + 1, shape) if integer else rng.uniform(lo, hi, shape)
        sets.append([x.astype(np.float32)])
    return sets


def _ad_windows():
    """The sample's 200 log-mel frames as the model's 196 inputs: 5 frames, stride 1."""
    frames = np.fromfile(AD_SAMPLE, np.float32).reshape(200, 128)
    return [[frames[i:i + 5].reshape(1, 640)] for i in range(196)]


# model -> (float file, converter's int8 file, calibration inputs, held-out inputs). The AD
# held-out windows share no frame with the calibration windows.
CASES = {
    "resnet8": ("ic_resnet8/pretrainedResnet.tflite", "ic_resnet8/pretrainedResnet_quant.tflite",
                lambda: _uniform((1, 32, 32, 3), 0, 255, 0, 64, integer=True),
                lambda: _uniform((1, 32, 32, 3), 0, 255, 1, 50, integer=True)),
    "ad": ("ad_fc_autoencoder/ad01_fp32.tflite", "ad_fc_autoencoder/ad01_int8.tflite",
           lambda: _ad_windows()[:98], lambda: _ad_windows()[102:]),
    "hello_world": ("tflm_hello_world/hello_world_float.tflite", "tflm_hello_world/hello_world_int8.tflite",
                    lambda: _uniform((1, 1), 0, 2 * np.pi, 0, 64), lambda: _uniform((1, 1), 0, 2 * np.pi, 1, 50)),
}


def _load(relative: str) -> Graph:
    path = MODELS / relative
    if not path.exists():
        pytest.skip(f"{path} not present (tests read ../shared/models/)")
    return load_tflite(path)


def quantized_model(key: str, **options) -> Graph:
    """The float model through the model passes at --bits 8, calibrated on the case's inputs."""
    graph = _load(CASES[key][0])
    graph.attrs["calibration"] = {"inputs": CASES[key][2](), "description": f"{key} calibration set"}
    return compile_model(graph, {"bits": "8", **options})


@lru_cache(maxsize=None)
def _heldout(key: str):
    """The held-out inputs and the float model's outputs on them."""
    inputs = CASES[key][3]()
    graph = _load(CASES[key][0])
    return inputs, np.stack([float_executor.run(graph, s)[0] for s in inputs])


def heldout_sqnr(key: str, int_graph: Graph) -> float:
    inputs, reference = _heldout(key)
    return sqnr_vs_float(_load(CASES[key][0]), int_graph, inputs, reference)


def published_sqnr(key: str) -> float:
    return heldout_sqnr(key, _load(CASES[key][1]))


# ---- pass-through of integer models ----

@pytest.mark.parametrize("relative", ["tflm_hello_world/hello_world_int8.tflite", "ad_fc_autoencoder/ad01_int8.tflite"])
def test_integer_models_are_untouched(relative):
    graph = _load(relative)
    assert canonicalize(graph) is graph
    assert calibrate(graph) is graph


# ---- canonicalize ----

def _const(tensors, name, data, dtype=FLOAT32, quant=None):
    data = np.asarray(data)
    tensors[name] = Tensor(name, tuple(data.shape), dtype, quant=quant, data=data.astype(dtype.numpy))
    return name


def _act(tensors, name, shape):
    tensors[name] = Tensor(name, tuple(shape), FLOAT32)
    return name


CONV = {"padding": "SAME", "stride": (1, 1), "dilation": (1, 1)}


def test_canonicalize_folds_batch_norm_and_constant_subgraphs():
    """conv (weights = DEQUANTIZE of int8 constants) -> MUL by gamma/sigma -> ADD beta with RELU:
    one conv with folded float weights and bias, the RELU moved onto it, same outputs."""
    rng = np.random.default_rng(0)
    t: dict[str, Tensor] = {}
    q = rng.integers(-127, 128, (4, 3, 3, 2))
    _const(t, "w_q", q, INT8, Quant(np.array([0.02]), np.array([0])))
    ops = [
        Op("DEQUANTIZE", ["w_q"], [_act(t, "w", (4, 3, 3, 2))], {}, "dequantize_0"),
        Op("CONV_2D", [_act(t, "x", (1, 5, 5, 2)), "w", _const(t, "b", rng.normal(size=4))],
           [_act(t, "conv", (1, 5, 5, 4))], {**CONV, "activation": "NONE"}, "conv_1"),
        Op("MUL", ["conv", _const(t, "gamma", rng.uniform(0.5, 2, (1, 1, 1, 4)))], [_act(t, "scaled", (1, 5, 5, 4))],
           {"activation": "NONE"}, "mul_2"),
        Op("ADD", [_const(t, "beta", rng.normal(size=4)), "scaled"], [_act(t, "y", (1, 5, 5, 4))],
           {"activation": "RELU"}, "add_3"),
    ]
    graph = Graph(t, ops, ["x"], ["y"])
    folded = canonicalize(graph)
    assert [op.kind for op in folded.ops] == ["CONV_2D"]
    assert folded.ops[0].attrs["activation"] == "RELU" and folded.ops[0].outputs == ["y"]
    assert folded.attrs["report"]["canonicalize"] == {"constant_ops": 1, "affine_into_weighted": 2}
    assert set(folded.tensors) == {"x", "y", *folded.ops[0].inputs}
    x = rng.normal(size=(1, 5, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(float_executor.run(folded, [x])[0], float_executor.run(graph, [x])[0], rtol=1e-5, atol=1e-5)


def test_float_op_without_int8_kernel_is_named():
    t: dict[str, Tensor] = {}
    graph = Graph(t, [Op("TANH", [_act(t, "x", (1, 4))], [_act(t, "y", (1, 4))], {}, "tanh_0")], ["x"], ["y"])
    with pytest.raises(UserError, match=r"op 0 \(TANH\) has no int8 kernel"):
        calibrate(graph)


# ---- error corrections ----

def _dw_pw(seed: int, channels: int = 16) -> Graph:
    """Depthwise 3x3 (batch norm folded: channel gains over 2.5 decades) + RELU -> pointwise 1x1."""
    rng = np.random.default_rng(seed)
    gains = 10 ** rng.uniform(-1.5, 1.0, channels)
    t: dict[str, Tensor] = {}
    ops = [
        Op("DEPTHWISE_CONV_2D", [_act(t, "x", (1, 8, 8, channels)), _const(t, "dw_w", rng.normal(size=(1, 3, 3, channels)) * gains),
                                 _const(t, "dw_b", rng.normal(size=channels) * gains)],
           [_act(t, "dw", (1, 8, 8, channels))], {**CONV, "activation": "RELU", "depth_multiplier": 1}, "dw"),
        Op("CONV_2D", ["dw", _const(t, "pw_w", rng.normal(0, 0.3, (8, 1, 1, channels))), _const(t, "pw_b", rng.normal(0, 0.1, 8))],
           [_act(t, "y", (1, 8, 8, 8))], {**CONV, "activation": "NONE"}, "pw"),
    ]
    return Graph(t, ops, ["x"], ["y"])


def _normal_inputs(seed: int, count: int):
    return [[np.random.default_rng([seed, i]).normal(size=(1, 8, 8, 16)).astype(np.float32)] for i in range(count)]


def test_cross_layer_equalization_keeps_the_function_and_balances_ranges():
    graph = _dw_pw(2)
    equalized, pairs = equalize(graph, "depthwise")
    assert pairs == [("dw", "pw")]
    r1 = channel_ranges(equalized.tensor("dw_w").data, 3)
    r2 = channel_ranges(equalized.tensor("pw_w").data, 3)
    np.testing.assert_allclose(r1, r2, rtol=1e-5)
    x = _normal_inputs(9, 1)[0]
    np.testing.assert_allclose(float_executor.run(equalized, x)[0], float_executor.run(graph, x)[0], rtol=1e-4, atol=1e-4)
    assert equalize(graph, "all")[1] == [("dw", "pw")]

    def sqnr(equalize_pairs):
        g = _dw_pw(2)
        g.attrs["options"] = {"equalize": equalize_pairs, "calib_method": "minmax"}
        g.attrs["calibration"] = {"inputs": _normal_inputs(0, 32), "description": "normal"}
        return sqnr_vs_float(g, calibrate(g), _normal_inputs(1, 32))

    assert sqnr("depthwise") > sqnr(None) + 2.0  # measured: 35.4 dB against 32.0 dB


def test_bias_correction_shift_is_the_mean_output_error():
    """E over inputs of conv(x, dW) (with zero padding at the borders) equals the shift computed
    once on the mean input."""
    graph = _dw_pw(3)
    conv = graph.ops[1]
    inputs = [np.abs(x[0]) for x in _normal_inputs(4, 64)]
    error = np.random.default_rng(5).normal(0, 1e-3, graph.tensor("pw_w").shape)
    shift = output_shift(graph, conv, np.mean(inputs, axis=0), error)
    probe = Graph(dict(graph.tensors), [conv], ["dw"], ["y"])
    probe.tensors["pw_w"] = Tensor("pw_w", error.shape, FLOAT32, data=error.astype(np.float32))
    probe.tensors["pw_b"] = Tensor("pw_b", (8,), FLOAT32, data=np.zeros(8, np.float32))
    brute = np.mean([float_executor.run(probe, [x])[0].reshape(-1, 8).mean(axis=0) for x in inputs], axis=0)
    np.testing.assert_allclose(shift, brute, rtol=1e-4, atol=1e-8)


def test_bias_correction_improves_the_autoencoder():
    on = heldout_sqnr("ad", quantized_model("ad"))
    off = heldout_sqnr("ad", quantized_model("ad", bias_correction=False))
    assert on > off + 2.0  # measured: 46.3 dB against 42.0 dB


def test_per_vector_analysis():
    rows = np.random.default_rng(0).standard_t(3, (32, 64))
    sqnr = {g: per_vector.sqnr_db(rows, per_vector.fake_quantize(rows, 4, g)) for g in ("tensor", "channel", "vector")}
    assert sqnr["tensor"] < sqnr["channel"] < sqnr["vector"]
    # one vector per channel with scales in full precision is per-channel quantization
    same = per_vector.fake_quantize(rows, 4, "vector", vector_size=64, scale_bits=16)
    np.testing.assert_allclose(same, per_vector.fake_quantize(rows, 4, "channel"), rtol=1e-3)
    report = per_vector.analyse(_load(CASES["resnet8"][0]))
    assert {r["effective_bits"] for r in report["layers"]} == {8.25, 4.25}


# ---- the shared float models against the converter's int8 twins ----

@pytest.mark.parametrize("key", sorted(CASES))
def test_default_beats_the_converter(key):
    """The default calibration's int8 model is at least as close to the float model as the
    TFLite converter's int8 model is, on the same held-out inputs."""
    ours = heldout_sqnr(key, quantized_model(key))
    assert ours >= published_sqnr(key)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "ema"])
def test_every_clipping_method_beats_the_converter_on_the_autoencoder(method):
    assert heldout_sqnr("ad", quantized_model("ad", calib_method=method)) >= published_sqnr("ad")


# ---- builds: bit-exact, deterministic, I/O encoding documented ----

def test_float_build_is_bit_exact_and_deterministic(cli, tmp_path):
    model = MODELS / CASES["hello_world"][0]
    calib = tmp_path / "calib.npy"
    np.save(calib, np.stack([s[0] for s in CASES["hello_world"][2]()]))
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        status, stdout, _ = cli("build", model, "--board", "stm32f746", "--bits", "8", "--calib", calib,
                                "-o", out, "--no-firmware")
        assert status == 0 and "bit-exact" in stdout
        outs.append(out)
    for path in sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file()):
        assert (outs[0] / path).read_bytes() == (outs[1] / path).read_bytes(), path
    header = (outs[0] / "model.h").read_text()
    assert "int8[1, 1] (scale 0.0246" in header and "zero point -128" in header
    report = (outs[0] / "report.md").read_text()
    assert "observer `mse`" in report and "zero point -128" in report


@pytest.mark.qemu
@pytest.mark.parametrize("key", sorted(CASES))
def test_float_model_firmware_is_bit_exact_under_qemu(cli, tmp_path, key):
    calib = tmp_path / "calib.npy"
    np.save(calib, np.stack([s[0] for s in CASES[key][2]()]))
    out = tmp_path / key
    status, _, err = cli("build", MODELS / CASES[key][0], "--board", "stm32f746", "--bits", "8",
                         "--calib", calib, "-o", out)
    assert status == 0, err
    status, stdout, _ = cli("verify", out, "--target", "qemu", "--inputs", "5")
    assert status == 0 and "5/5" in stdout


def sqnr_table() -> str:
    """The README table: held-out output SQNR per model and calibration method."""
    lines = ["| model | converter int8 | " + " | ".join(METHODS) + " |", "| --- " * (len(METHODS) + 2) + "|"]
    for key in CASES:
        cells = [f"{heldout_sqnr(key, quantized_model(key, calib_method=m)):.2f}" for m in METHODS]
        lines.append(f"| {key} | {published_sqnr(key):.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(sqnr_table())
