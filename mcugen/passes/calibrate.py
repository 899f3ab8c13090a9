"""calibrate: a float model becomes the int8 model the rest of the compiler works on.

A float32 model carries no activation ranges; this pass measures them by running the float model
on the calibration inputs (`graph.attrs["calibration"]`) and picking each range with an observer
(`--calib-method`, `mcugen.quant.observers`), then quantizes with the bits-generic quantizer
(`mcugen.quant.quantizer.quantize_graph`) at 8 bits everywhere. From then on a float model is an
int8 model like any other: bit assignment, code generation and verification do not know the
difference. Input and output become int8 too; the report says their scale and zero point.

Two error corrections run on the way, each switchable through options (defaults measured, see
README): cross-layer equalization before the ranges are measured (`equalize`: "depthwise", "all"
or None; it changes the ranges) and bias correction after the weights are rounded
(`bias_correction`). `fc_per_channel` gives FULLY_CONNECTED one weight scale per unit (TFLite
uses one per layer; the kernels take either).

Integer models are returned unchanged (the same object), so int8 builds stay byte-identical.
"""
from __future__ import annotations

import numpy as np

from mcugen.errors import UserError
from mcugen.inputs import load_calibration, quantize_real
from mcugen.ir import Graph
from mcugen.passes.canonicalize import is_float_model
from mcugen.quant import per_vector
from mcugen.quant.bias_correction import correct_bias
from mcugen.quant.equalization import equalize
from mcugen.quant.fidelity import real, run_many, sqnr_db
from mcugen.quant.observers import observe
from mcugen.quant.quantizer import WEIGHTED_OPS, activation_groups, dequantize_graph, quantize_graph
from mcugen.reference import float_executor

DEFAULT_METHOD = "mse"
DEFAULTS = {"equalize": "depthwise", "bias_correction": True, "fc_per_channel": True}
# Float ops the quantizer and the int8 kernels cover; anything else cannot become an int8 model.
QUANTIZABLE_OPS = WEIGHTED_OPS + ("AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "MUL", "SOFTMAX", "LOGISTIC",
                                  "MEAN", "PAD", "CONCATENATION", "RESHAPE", "SQUEEZE")


def calibrate(graph: Graph) -> Graph:
    if not is_float_model(graph):
        return graph
    _check_quantizable(graph)
    options = {**DEFAULTS, **graph.attrs.get("options", {})}
    method = options.get("calib_method") or DEFAULT_METHOD
    calibration = graph.attrs.get("calibration") or load_calibration(None, graph)
    summary = {"from": "float32", "calibration": calibration["description"], "calib_method": method,
               **{k: options[k] for k in DEFAULTS}}
    float_graph = graph
    if options["equalize"]:
        float_graph, pairs = equalize(graph, options["equalize"])
        summary["equalized_pairs"] = [list(pair) for pair in pairs]
    values = collect(float_graph, calibration["inputs"])
    ranges = activation_ranges(float_graph, values, method)
    quantized = quantize_graph(float_graph, ranges, {}, fc_per_channel=options["fc_per_channel"])
    if options["bias_correction"]:
        float_graph, shifts = _correct_bias(float_graph, quantized, values)
        summary["bias_shift_max"] = {name: round(v, 6) for name, v in shifts.items()}
        quantized = quantize_graph(float_graph, ranges, {}, fc_per_channel=options["fc_per_channel"])
    quantized.attrs = {**graph.attrs, "report": dict(graph.attrs.get("report", {})),
                       "calibration": {**calibration, "inputs": quantize_inputs(quantized, calibration["inputs"])}}
    fidelity = _fidelity(graph, quantized, calibration["inputs"], values[graph.outputs[0]])
    quantized.attrs["report"]["quantization"] = {**summary, **fidelity}
    return quantized


def _correct_bias(float_graph: Graph, quantized: Graph, values: dict[str, np.ndarray]):
    """Fold E[dW * x] of each weighted op (dW: what rounding did to its weights, x: its float
    calibration inputs) into its float bias; the caller re-quantizes."""
    rounded, _ = dequantize_graph(quantized)
    weighted = [op for op in float_graph.ops if op.kind in WEIGHTED_OPS]
    weights = {op.inputs[1]: rounded.tensor(op.inputs[1]).data for op in weighted}
    means = {op.inputs[0]: values[op.inputs[0]].mean(axis=0) for op in weighted}
    return correct_bias(float_graph, weights, means)


def _check_quantizable(graph: Graph) -> None:
    for index, op in enumerate(graph.ops):
        if op.kind not in QUANTIZABLE_OPS:
            raise UserError(f"op {index} ({op.kind}) has no int8 kernel, so mcugen cannot quantize this float "
                            f"model; int8 kernels exist for {', '.join(QUANTIZABLE_OPS)}")
        for name in op.inputs[1:]:
            t = graph.tensor(name) if name is not None else None
            if t is not None and t.is_const and t.dtype.is_float and op.kind not in WEIGHTED_OPS:
                raise UserError(f"op {index} ({op.kind}) takes the float constant '{name}' as an operand; "
                                "mcugen quantizes constants only as weights and biases of CONV_2D, "
                                "DEPTHWISE_CONV_2D and FULLY_CONNECTED")


def collect(graph: Graph, input_sets: list[list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Every activation's float values over the calibration inputs: name -> [N, *shape]."""
    runs = [float_executor.run(graph, inputs, keep_all=True) for inputs in input_sets]
    return {t.name: np.stack([run[t.name] for run in runs]) for t in graph.activations()}


def activation_ranges(graph: Graph, values: dict[str, np.ndarray], method: str, bits: int = 8) -> dict:
    """One range per tensor; tensors that must share a quantization (pooling, reshapes, padding,
    concatenation) get the range of all their values together."""
    groups: dict[str, list[str]] = {}
    for name, root in activation_groups(graph).items():
        groups.setdefault(root, []).append(name)
    ranges = {}
    for members in groups.values():
        samples = np.concatenate([values[n].reshape(len(values[n]), -1) for n in members], axis=1)
        lo, hi = observe(samples, method, bits)
        ranges.update({n: (lo, hi) for n in members})
    return ranges


def _fidelity(source: Graph, quantized: Graph, input_sets: list[list[np.ndarray]], reference: np.ndarray) -> dict:
    """What the user must know to feed the int8 model, how close it stays to the float one on the
    calibration inputs, and what per-vector weight scales would gain."""
    def io(name: str) -> dict:
        t = quantized.tensor(name)
        return {"name": name, "dtype": t.dtype.name, "scale": t.quant.s, "zero_point": t.quant.zp}

    return {
        "inputs": [io(n) for n in quantized.inputs],
        "outputs": [io(n) for n in quantized.outputs],
        "sqnr_db_vs_float": sqnr_vs_float(source, quantized, input_sets, reference),
        "per_vector": per_vector.analyse(source),
    }


def sqnr_vs_float(float_graph: Graph, int_graph: Graph, input_sets: list[list[np.ndarray]],
                  reference: np.ndarray | None = None) -> float | None:
    """Output SQNR (dB, over all inputs together) of an integer model against its float model on
    float inputs, which the integer model receives quantized with its own input encoding.
    `reference`: the float model's outputs on those inputs, stacked, if already computed."""
    if reference is None:
        reference = np.stack([float_executor.run(float_graph, inputs)[0] for inputs in input_sets])
    got = run_many(int_graph, quantize_inputs(int_graph, input_sets))[int_graph.outputs[0]]
    return sqnr_db(np.asarray(reference, np.float64), real(int_graph.tensor(int_graph.outputs[0]), got))


def quantize_inputs(graph: Graph, input_sets: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """Float input sets in the int8 inputs' domain: round half away from zero, then clamp (as
    TFLite's QUANTIZE and `mcugen.inputs` do)."""
    return [[quantize_real(v, graph.tensor(n)) for n, v in zip(graph.inputs, inputs)] for inputs in input_sets]
