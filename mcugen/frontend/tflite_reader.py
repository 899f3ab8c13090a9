"""Reads a `.tflite` flatbuffer into the IR, through the `tflite` schema package.

Only what mcugen can compile is accepted; anything else is a `UserError` that names the problem
(a truncated file, an unsupported operator with its index, a hybrid model), never a traceback.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import flatbuffers
import numpy as np
import tflite
from tflite.Model import Model

from mcugen.errors import UserError
from mcugen.ir import DType, FLOAT32, Graph, INT4, INT8, INT16, INT32, Op, Quant, Tensor, UINT8

_TENSOR_TYPES: dict[int, tuple[DType, Any]] = {
    tflite.TensorType.FLOAT32: (FLOAT32, np.float32),
    tflite.TensorType.INT8: (INT8, np.int8),
    tflite.TensorType.UINT8: (UINT8, np.uint8),
    tflite.TensorType.INT16: (INT16, np.int16),
    tflite.TensorType.INT32: (INT32, np.int32),
    tflite.TensorType.INT64: (DType("int", 64), np.int64),
    tflite.TensorType.INT4: (INT4, np.int8),
}

_PADDING = {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}
_ACTIVATIONS = {
    tflite.ActivationFunctionType.NONE: "NONE",
    tflite.ActivationFunctionType.RELU: "RELU",
    tflite.ActivationFunctionType.RELU6: "RELU6",
    tflite.ActivationFunctionType.RELU_N1_TO_1: "RELU_N1_TO_1",
}
_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def _activation(opts, index: int, kind: str) -> str:
    code = opts.FusedActivationFunction()
    if code not in _ACTIVATIONS:
        name = {v: k for k, v in vars(tflite.ActivationFunctionType).items()}.get(code, code)
        raise UserError(f"op {index} ({kind}): fused activation {name} is not supported")
    return _ACTIVATIONS[code]


def _conv_attrs(opts, index, kind) -> dict:
    return {
        "padding": _PADDING[opts.Padding()],
        "stride": (opts.StrideH(), opts.StrideW()),
        "dilation": (opts.DilationHFactor(), opts.DilationWFactor()),
        "activation": _activation(opts, index, kind),
    }


def _depthwise_attrs(opts, index, kind) -> dict:
    return {**_conv_attrs(opts, index, kind), "depth_multiplier": opts.DepthMultiplier()}


def _pool_attrs(opts, index, kind) -> dict:
    return {
        "padding": _PADDING[opts.Padding()],
        "stride": (opts.StrideH(), opts.StrideW()),
        "filter": (opts.FilterHeight(), opts.FilterWidth()),
        "activation": _activation(opts, index, kind),
    }


def _fc_attrs(opts, index, kind) -> dict:
    if opts.WeightsFormat() != tflite.FullyConnectedOptionsWeightsFormat.DEFAULT:
        raise UserError(f"op {index} ({kind}): shuffled FULLY_CONNECTED weights are not supported")
    return {"activation": _activation(opts, index, kind), "keep_num_dims": bool(opts.KeepNumDims())}


def _activation_only(opts, index, kind) -> dict:
    return {"activation": _activation(opts, index, kind)}


def _concat_attrs(opts, index, kind) -> dict:
    return {"axis": opts.Axis(), "activation": _activation(opts, index, kind)}


def _softmax_attrs(opts, index, kind) -> dict:
    return {"beta": float(opts.Beta())}


def _reducer_attrs(opts, index, kind) -> dict:
    return {"keep_dims": bool(opts.KeepDims())}


def _squeeze_attrs(opts, index, kind) -> dict:
    return {"squeeze_dims": tuple(int(d) for d in opts.SqueezeDimsAsNumpy())} if opts.SqueezeDimsLength() else {}


# kind -> (options class, attribute reader); None means the op has no options that matter.
_OPS: dict[str, tuple[Any, Callable | None]] = {
    "CONV_2D": (tflite.Conv2DOptions, _conv_attrs),
    "DEPTHWISE_CONV_2D": (tflite.DepthwiseConv2DOptions, _depthwise_attrs),
    "FULLY_CONNECTED": (tflite.FullyConnectedOptions, _fc_attrs),
    "AVERAGE_POOL_2D": (tflite.Pool2DOptions, _pool_attrs),
    "MAX_POOL_2D": (tflite.Pool2DOptions, _pool_attrs),
    "ADD": (tflite.AddOptions, _activation_only),
    "MUL": (tflite.MulOptions, _activation_only),
    "CONCATENATION": (tflite.ConcatenationOptions, _concat_attrs),
    "SOFTMAX": (tflite.SoftmaxOptions, _softmax_attrs),
    "MEAN": (tflite.ReducerOptions, _reducer_attrs),
    "SQUEEZE": (tflite.SqueezeOptions, _squeeze_attrs),
    "RESHAPE": (None, None),
    "PAD": (None, None),
    "QUANTIZE": (None, None),
    "DEQUANTIZE": (None, None),
    "LOGISTIC": (None, None),
}

SUPPORTED_OPS = tuple(_OPS)
# Ops whose weights are constants and whose activations must then be quantized too.
_WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def load_tflite(source: str | Path | bytes) -> Graph:
    """Parse a .tflite model (a path or its bytes) into a Graph."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise UserError(f"model file not found: {path}")
        buf = path.read_bytes()
        label = str(path)
    else:
        buf = bytes(source)
        label = "model"
    if len(buf) < 8 or not Model.ModelBufferHasIdentifier(buf, 0):
        raise UserError(f"{label} is not a TFLite model (no 'TFL3' file identifier)")
    try:
        graph = _read(Model.GetRootAs(buf, 0), len(buf))
    except UserError:
        raise
    except Exception as exc:  # the flatbuffers accessors raise on truncated/corrupt tables
        raise UserError(f"{label} is truncated or corrupt: {type(exc).__name__}: {exc}") from None
    return graph


def _read(model: Model, size: int) -> Graph:
    if model.SubgraphsLength() < 1:
        raise UserError("the model has no subgraph")
    sub = model.Subgraphs(0)
    names = _unique_names(sub)
    tensors = {names[i]: _read_tensor(model, sub.Tensors(i), names[i], size) for i in range(sub.TensorsLength())}
    opcodes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    ops = [_read_op(sub.Operators(i), i, opcodes, names, tensors) for i in range(sub.OperatorsLength())]
    graph = Graph(
        tensors=tensors,
        ops=ops,
        inputs=[names[i] for i in sub.InputsAsNumpy()],
        outputs=[names[i] for i in sub.OutputsAsNumpy()],
        attrs={"tflite_tensor_index": {n: i for i, n in enumerate(names)}},
    )
    _check_types(graph)
    return graph


def _unique_names(sub) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for i in range(sub.TensorsLength()):
        name = (sub.Tensors(i).Name() or b"").decode("utf-8", "replace") or f"tensor{i}"
        if name in seen:
            name = f"{name}#{i}"
        seen.add(name)
        names.append(name)
    return names


def _read_tensor(model: Model, t, name: str, file_size: int) -> Tensor:
    ttype = t.Type()
    if ttype not in _TENSOR_TYPES:
        tname = {v: k for k, v in vars(tflite.TensorType).items()}.get(ttype, ttype)
        raise UserError(f"tensor '{name}' has type {tname}, which mcugen does not support")
    dtype, np_type = _TENSOR_TYPES[ttype]
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    data = None
    buffer = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
    if buffer is not None and buffer.DataLength() > 0:
        raw = buffer.DataAsNumpy().tobytes()
        data = _decode(raw, dtype, np_type, shape, name)
    elif buffer is not None and buffer.Offset() > 1:
        raise UserError(f"tensor '{name}' keeps its data outside the flatbuffer (models over 2 GB): not supported")
    return Tensor(name=name, shape=shape, dtype=dtype, quant=_read_quant(t.Quantization(), shape), data=data)


def _decode(raw: bytes, dtype: DType, np_type, shape: tuple[int, ...], name: str) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    if dtype.bits == 4:
        packed = np.frombuffer(raw, np.uint8)
        nibbles = np.stack([packed & 0xF, packed >> 4], axis=-1).reshape(-1)[:count].astype(np.int8)
        values = np.where(nibbles > 7, nibbles - 16, nibbles).astype(np.int8)
    else:
        values = np.frombuffer(raw, np_type)
    if values.size != count:
        raise UserError(f"tensor '{name}': buffer holds {values.size} values, shape {list(shape)} needs {count}")
    return values.reshape(shape).copy()


def _read_quant(q, shape: tuple[int, ...]) -> Quant | None:
    if q is None or q.ScaleLength() == 0:
        return None
    scale = q.ScaleAsNumpy().astype(np.float32)
    zero_point = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(scale.size, np.int64)
    if zero_point.size == 1 and scale.size > 1:
        zero_point = np.repeat(zero_point, scale.size)
    axis = None
    if scale.size > 1:
        axis = int(q.QuantizedDimension())
        # Older converters wrote 1-D per-channel biases with the filter's quantized_dimension
        # (e.g. 3 for depthwise); TFLM accepts them, so the only axis a 1-D tensor has is meant.
        if len(shape) == 1 or axis >= len(shape):
            axis = 0 if len(shape) <= 1 else axis
        if axis >= len(shape) or shape[axis] != scale.size:
            raise UserError(f"per-channel quantization with {scale.size} scales does not match shape {list(shape)}")
    # Scales stay float32 values (held as float64 exactly): TFLM's arithmetic starts from float32.
    return Quant(scale=scale.astype(np.float64), zero_point=zero_point, axis=axis)


def _read_op(op, index: int, opcodes, names: list[str], tensors: dict[str, Tensor]) -> Op:
    if op.OpcodeIndex() >= len(opcodes):
        raise UserError(f"op {index} refers to operator code {op.OpcodeIndex()}, which the model does not define")
    code = opcodes[op.OpcodeIndex()]
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    kind = _OP_NAMES.get(builtin, f"builtin {builtin}")
    if builtin == tflite.BuiltinOperator.CUSTOM:
        kind = f"CUSTOM ({(code.CustomCode() or b'').decode()})"
    if kind not in _OPS:
        raise UserError(
            f"op {index} ({kind}) is not supported; mcugen supports {', '.join(sorted(_OPS))}"
        )
    options_cls, reader = _OPS[kind]
    attrs: dict[str, Any] = {}
    if reader is not None:
        table = op.BuiltinOptions()
        if table is None:
            opts = _empty_options(options_cls)
        else:
            opts = options_cls()
            opts.Init(table.Bytes, table.Pos)
        attrs = reader(opts, index, kind)
    inputs = [None if i < 0 else names[i] for i in op.InputsAsNumpy()] if op.InputsLength() else []
    outputs = [names[i] for i in op.OutputsAsNumpy()]
    attrs.update(_const_input_attrs(kind, inputs, tensors))
    if kind == "DEPTHWISE_CONV_2D":
        # Some converters leave depth_multiplier at 0 or 1 regardless; the shapes are authoritative.
        in_ch = tensors[inputs[0]].shape[-1]
        attrs["depth_multiplier"] = tensors[outputs[0]].shape[-1] // max(in_ch, 1)
    return Op(kind=kind, inputs=inputs, outputs=outputs, attrs=attrs, name=f"{kind.lower()}_{index}")


def _empty_options(options_cls):
    """An options table with no fields set, so every accessor returns the schema's default."""
    name = options_cls.__name__
    builder = flatbuffers.Builder(16)
    getattr(tflite, f"{name}Start")(builder)
    builder.Finish(getattr(tflite, f"{name}End")(builder))
    return options_cls.GetRootAs(builder.Output(), 0)


def _const_input_attrs(kind: str, inputs: list[str | None], tensors: dict[str, Tensor]) -> dict:
    """Attributes that TFLite passes as constant input tensors (axes, paddings)."""
    def const(i: int) -> np.ndarray:
        name = inputs[i] if i < len(inputs) else None
        if name is None or not tensors[name].is_const:
            raise UserError(f"{kind}: input {i} must be a constant tensor")
        return tensors[name].data

    if kind == "MEAN":
        return {"axis": tuple(int(a) for a in np.atleast_1d(const(1)))}
    if kind == "PAD":
        return {"paddings": tuple((int(b), int(a)) for b, a in const(1).reshape(-1, 2))}
    return {}


def _check_types(graph: Graph) -> None:
    """Reject models whose tensor types mcugen cannot compile, naming the op (e.g. hybrid models)."""
    for index, op in enumerate(graph.ops):
        ins = [t for t in graph.op_inputs(op) if t is not None]
        if op.kind in _WEIGHTED_OPS and len(ins) >= 2:
            act, weights = ins[0], ins[1]
            if act.dtype.is_float and not weights.dtype.is_float:
                raise UserError(
                    f"op {index} ({op.kind}) is hybrid: float32 activations with {weights.dtype} weights. "
                    "mcugen compiles full-integer int8 models or float32 models; re-convert with full "
                    "integer quantization, or give the float model"
                )
        for t in [*ins, *graph.op_outputs(op)]:
            if not t.is_const and not t.dtype.is_float and t.quant is None and op.kind not in ("RESHAPE", "SQUEEZE"):
                if t.dtype.bits == 8:
                    raise UserError(f"op {index} ({op.kind}): int8 tensor '{t.name}' has no quantization parameters")
