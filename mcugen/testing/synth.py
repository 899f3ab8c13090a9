"""Synthetic `.tflite` models: random int8 graphs, single-op models and the demo model.

The repository ships no third-party models, so the tests and the demo build their models here.
Files are written with the `flatbuffers` builder and the `tflite` schema package's builder
functions, exactly as the TFLite converter lays them out, so TensorFlow Lite Micro and the
TFLite reference kernels accept them.

While it builds, `ModelBuilder` runs each op in float64 on a few random inputs ("samples").
That float forward pass serves twice: it calibrates every int8 activation's scale and zero
point from the observed range (so outputs are not saturated, as in a real post-training
quantized model), and it is an approximate oracle a test can compare an int8 result against.
Input samples lie on the input's quantization grid, so a single int8 op differs from its float
sample only by the op's own rounding.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
import tflite

__all__ = ["ModelBuilder", "random_model", "large_random_model", "residual_model", "default_model", "hybrid_model"]

N_SAMPLES = 8
"""Number of random inputs propagated through the float forward pass."""

_ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
_PADDINGS = {"SAME": 0, "VALID": 1}
_TYPES = {"float32": tflite.TensorType.FLOAT32, "int8": tflite.TensorType.INT8,
          "int32": tflite.TensorType.INT32}

# Operator versions the TFLite converter writes for int8 kernels (float kernels are version 1).
# TFLite's op resolvers reject a version they do not register; TFLM ignores the field.
_INT8_VERSIONS = {
    "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "AVERAGE_POOL_2D": 2,
    "MAX_POOL_2D": 2, "ADD": 2, "MUL": 2, "PAD": 2, "CONCATENATION": 2, "MEAN": 2,
    "SOFTMAX": 2, "LOGISTIC": 2, "QUANTIZE": 2, "DEQUANTIZE": 2, "TANH": 2,
}

# Softmax and logistic outputs lie in [0, 1]; TFLM's int8 kernels require exactly this encoding.
_UNIT_INTERVAL = (1.0 / 256.0, -128)


@dataclass
class _Quant:
    """Affine quantization of one tensor: real = scale * (q - zero_point), per `axis` if several."""
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0

    @classmethod
    def per_tensor(cls, scale, zero_point):
        return cls(np.array([scale], np.float32), np.array([zero_point], np.int64))

    @classmethod
    def from_range(cls, values):
        """The int8 parameters a calibrator would pick for `values` (0.0 always exact)."""
        lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
        scale = float(np.float32(max(hi - lo, 1e-3) / 255.0))
        return cls.per_tensor(scale, int(np.clip(round(-128 - lo / scale), -128, 127)))

    def same_as(self, other):
        return (other is not None and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))


@dataclass
class _Tensor:
    name: str
    shape: tuple
    dtype: str
    quant: _Quant | None = None
    data: np.ndarray | None = None  # constant tensors only


@dataclass
class _Op:
    code: str
    version: int
    inputs: list
    outputs: list
    options: str | None = None  # name of the schema's options table, e.g. "Conv2DOptions"
    fields: dict | None = None  # that table's fields, e.g. {"StrideW": 2}


def _out_size(size, k, stride, dilation, padding):
    """(output size, padding before, padding after) along one spatial axis, by TFLite's rules."""
    eff = (k - 1) * dilation + 1
    out = -(-size // stride) if padding == "SAME" else (size - eff) // stride + 1
    if out < 1:
        raise ValueError(f"window {k} (dilation {dilation}) does not fit input size {size}")
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2, total - total // 2


def _taps(x, kernel, stride, padding, dilation, fill=0.0):
    """Yields (i, j, patch): what kernel tap (i, j) sees at every output position of x (NHWC)."""
    (oh, top, bottom), (ow, left, right) = (
        _out_size(x.shape[a], kernel[a - 1], stride[a - 1], dilation[a - 1], padding) for a in (1, 2))
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            r, c = i * dilation[0], j * dilation[1]
            yield i, j, xp[:, r:r + (oh - 1) * stride[0] + 1:stride[0],
                           c:c + (ow - 1) * stride[1] + 1:stride[1], :]


def _activate(values, activation):
    lo, hi = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0),
              "RELU_N1_TO_1": (-1.0, 1.0)}[activation]
    return values if lo is None else np.clip(values, lo, hi)


class ModelBuilder:
    """Builds one single-subgraph `.tflite` model op by op; every method returns a tensor handle.

    Activations are int8 (per-tensor, calibrated on the float samples) unless the graph input
    is float32; then ops compute in float. With `float_model=True` weights are float32 too;
    otherwise a conv on float input gets int8 weights, i.e. a "hybrid" op.
    """

    def __init__(self, seed: int | np.random.Generator, float_model: bool = False):
        self.rng = np.random.default_rng(seed)
        self.float_model = float_model
        self._tensors: list[_Tensor] = []
        self._ops: list[_Op] = []
        self._inputs: list[int] = []
        self._samples: dict[int, np.ndarray] = {}

    # ---- graph inputs and bookkeeping ----

    def input(self, shape, scale=None, zero_point=None, dtype=None) -> int:
        """A graph input; int8 scale and zero point are drawn at random unless given."""
        dtype = dtype or ("float32" if self.float_model else "int8")
        size = (N_SAMPLES, *shape)
        if dtype == "int8":
            scale = scale if scale is not None else np.exp(self.rng.uniform(np.log(0.5), np.log(10))) / 255
            zero_point = zero_point if zero_point is not None else int(self.rng.integers(-128, 128))
            quant = _Quant.per_tensor(float(np.float32(scale)), zero_point)
            q = self.rng.integers(-128, 128, size)
            samples = (q - zero_point) * float(quant.scale[0])
        else:
            quant, samples = None, self.rng.uniform(-1.0, 1.0, size)
        t = self._activation("input", samples, dtype, quant)
        self._inputs.append(t)
        return t

    @property
    def inputs(self) -> list[int]:
        """The graph inputs, in the order the model file lists them."""
        return list(self._inputs)

    def samples(self, t: int) -> np.ndarray:
        """The float forward pass's values of tensor t, shape (N_SAMPLES, *shape)."""
        return self._samples[t]

    def shape(self, t: int) -> tuple:
        return self._tensors[t].shape

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one inference (conv, depthwise and fully connected ops)."""
        total = 0
        for op in self._ops:
            if op.code in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
                w = self._tensors[op.inputs[1]].shape
                per_output = np.prod(w[1:3]) if op.code == "DEPTHWISE_CONV_2D" else np.prod(w[1:])
                total += int(np.prod(self._tensors[op.outputs[0]].shape) * per_output)
        return total

    @property
    def activation_bytes(self) -> int:
        """Peak bytes of simultaneously live activations when ops run in order."""
        last_use = {}
        for k, op in enumerate(self._ops):
            for t in op.inputs:
                last_use[t] = k
        peak, born = 0, {t: -1 for t in self._inputs}
        for k, op in enumerate(self._ops):
            for t in op.outputs:
                born[t] = k
            live = [t for t in born if born[t] <= k <= last_use.get(t, len(self._ops))]
            peak = max(peak, sum(self._nbytes(t) for t in live))
        return peak

    def _nbytes(self, t):
        tensor = self._tensors[t]
        return int(np.prod(tensor.shape)) * np.dtype(tensor.dtype).itemsize

    def _mark(self):
        return len(self._tensors), len(self._ops)

    def _rollback(self, mark):
        """Forgets everything built since `mark` (tensors and ops are append-only)."""
        del self._tensors[mark[0]:], self._ops[mark[1]:]
        self._samples = {t: s for t, s in self._samples.items() if t < mark[0]}

    def _add_tensor(self, role, shape, dtype, quant=None, data=None):
        name = f"op{len(self._ops)}/{role}" if role != "input" else f"input{len(self._inputs)}"
        self._tensors.append(_Tensor(name, tuple(int(d) for d in shape), dtype, quant, data))
        return len(self._tensors) - 1

    def _activation(self, role, samples, dtype, quant=None):
        """A non-constant tensor holding `samples`; int8 ones are calibrated unless `quant` given."""
        if dtype == "int8" and quant is None:
            quant = _Quant.from_range(samples)
        t = self._add_tensor(role, samples.shape[1:], dtype, quant)
        self._samples[t] = samples
        return t

    def _const(self, role, values, dtype, quant=None):
        return self._add_tensor(role, np.shape(values), dtype, quant, np.asarray(values, dtype))

    def _op(self, code, inputs, outputs, options=None, **fields):
        in_dtype = self._tensors[inputs[0]].dtype
        version = _INT8_VERSIONS.get(code, 1) if in_dtype == "int8" else 1
        self._ops.append(_Op(code, version, list(inputs), list(outputs), options, fields))
        return outputs[0]

    def _like(self, x, role, samples):
        """An output with x's dtype and quantization (ops that only move or select values)."""
        return self._activation(role, samples, self._tensors[x].dtype, self._tensors[x].quant)

    # ---- weights ----

    def _weights(self, shape, fan_in, axis, per_channel):
        """He-initialised weights with varied channel gains, as a constant tensor.

        Returns (tensor, the float values the model really holds); int8 weights are symmetric
        with narrow range [-127, 127], per channel along `axis` or per tensor.
        """
        gains = 10 ** self.rng.uniform(-0.3, 0.3, shape[axis])
        w = self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        w *= np.expand_dims(gains, [a for a in range(len(shape)) if a != axis])
        if self.float_model:
            return self._const("weights", w, "float32"), w
        reduce = tuple(a for a in range(len(shape)) if a != axis) if per_channel else None
        scale = (np.max(np.abs(w), axis=reduce, keepdims=True) / 127).astype(np.float32)
        scale = np.maximum(scale, np.float32(1e-8))
        q = np.clip(np.round(w / scale), -127, 127)
        quant = _Quant(scale.ravel(), np.zeros(scale.size, np.int64), axis if per_channel else 0)
        return self._const("weights", q, "int8", quant), q * scale.astype(np.float64)

    def _bias(self, x, w, acc):
        """A bias of a fifth of each channel's spread; int32 at input_scale * weight_scale."""
        b = self.rng.standard_normal(acc.shape[-1]) * 0.2 * acc.reshape(-1, acc.shape[-1]).std(0)
        xq, wq = self._tensors[x].quant, self._tensors[w].quant
        if xq is None:
            return self._const("bias", b, "float32"), b
        # one scale per weight scale: TFLite reads a per-tensor bias scale only from a length-1 list
        scale = (np.float64(xq.scale[0]) * wq.scale.astype(np.float64)).astype(np.float32)
        q = np.round(b / scale)
        quant = _Quant(scale, np.zeros(scale.size, np.int64), 0)
        return self._const("bias", q, "int32", quant), q * scale.astype(np.float64)

    def _weighted(self, code, x, w_shape, fan_in, axis, per_channel, compute, activation,
                  options, **fields):
        """Shared body of conv, depthwise and fully connected: weights, bias, calibrated output."""
        w, wf = self._weights(w_shape, fan_in, axis, per_channel)
        acc = compute(self._samples[x], wf)
        b, bf = self._bias(x, w, acc)
        out = self._activation("output", _activate(acc + bf, activation), self._tensors[x].dtype)
        return self._op(code, [x, w, b], [out], options,
                        FusedActivationFunction=_ACTIVATIONS[activation], **fields)

    # ---- operators ----

    def conv2d(self, x, out_channels, kernel=(3, 3), stride=(1, 1), padding="SAME",
               dilation=(1, 1), activation="RELU", per_channel=True) -> int:
        cin = self.shape(x)[3]

        def compute(xs, w):
            taps = _taps(xs.reshape(-1, *xs.shape[2:]), kernel, stride, padding, dilation)
            out = sum(patch @ w[:, i, j, :].T for i, j, patch in taps)
            return out[:, None]

        return self._weighted("CONV_2D", x, (out_channels, *kernel, cin), cin * kernel[0] * kernel[1],
                              0, per_channel, compute, activation, "Conv2DOptions",
                              **self._window_fields(stride, padding, dilation))

    def depthwise_conv2d(self, x, kernel=(3, 3), stride=(1, 1), padding="SAME", dilation=(1, 1),
                         depth_multiplier=1, activation="RELU", per_channel=True) -> int:
        cout = self.shape(x)[3] * depth_multiplier

        def compute(xs, w):
            taps = _taps(xs.reshape(-1, *xs.shape[2:]), kernel, stride, padding, dilation)
            out = sum(np.repeat(patch, depth_multiplier, -1) * w[0, i, j] for i, j, patch in taps)
            return out[:, None]

        return self._weighted("DEPTHWISE_CONV_2D", x, (1, *kernel, cout), kernel[0] * kernel[1],
                              3, per_channel, compute, activation, "DepthwiseConv2DOptions",
                              DepthMultiplier=depth_multiplier,
                              **self._window_fields(stride, padding, dilation))

    def fully_connected(self, x, units, activation="NONE", keep_num_dims=False,
                        per_channel=False) -> int:
        """Weights [units, in]: in is the last dim with keep_num_dims, else all but the batch.

        TFLite flattens the input to [-1, in], so the output is x.shape[:-1] + [units] with
        keep_num_dims and [batch, units] without.
        """
        shape = self.shape(x)
        fan_in = shape[-1] if keep_num_dims else int(np.prod(shape[1:]))

        def compute(xs, w):
            out_shape = (*shape[:-1], units) if keep_num_dims else (shape[0], units)
            return (xs.reshape(len(xs), -1, fan_in) @ w.T).reshape(len(xs), *out_shape)

        return self._weighted("FULLY_CONNECTED", x, (units, fan_in), fan_in, 0, per_channel,
                              compute, activation, "FullyConnectedOptions",
                              KeepNumDims=keep_num_dims)

    def avg_pool(self, x, pool=(2, 2), stride=(2, 2), padding="VALID", activation="NONE") -> int:
        """Average over the window's valid (unpadded) positions, as TFLite does."""
        return self._pool("AVERAGE_POOL_2D", np.nanmean, x, pool, stride, padding, activation)

    def max_pool(self, x, pool=(2, 2), stride=(2, 2), padding="VALID", activation="NONE") -> int:
        return self._pool("MAX_POOL_2D", np.nanmax, x, pool, stride, padding, activation)

    def _pool(self, code, reduce, x, pool, stride, padding, activation):
        """Pools keep the input's quantization: TFLite's int8 kernels never requantize."""
        xs = self._samples[x]
        taps = _taps(xs.reshape(-1, *xs.shape[2:]), pool, stride, padding, (1, 1), fill=np.nan)
        pooled = reduce(np.stack([patch for _, _, patch in taps]), axis=0)[:, None]
        out = self._like(x, "output", _activate(pooled, activation))
        return self._op(code, [x], [out], "Pool2DOptions",
                        FilterHeight=pool[0], FilterWidth=pool[1],
                        FusedActivationFunction=_ACTIVATIONS[activation],
                        **self._window_fields(stride, padding))

    @staticmethod
    def _window_fields(stride, padding, dilation=None):
        fields = {"Padding": _PADDINGS[padding], "StrideH": stride[0], "StrideW": stride[1]}
        if dilation is not None:
            fields.update(DilationHFactor=dilation[0], DilationWFactor=dilation[1])
        return fields

    def add(self, a, b, activation="NONE") -> int:
        """Elementwise a + b with numpy broadcasting; inputs may have different scales."""
        return self._binary("ADD", np.add, a, b, activation, "AddOptions")

    def mul(self, a, b, activation="NONE") -> int:
        return self._binary("MUL", np.multiply, a, b, activation, "MulOptions")

    def _binary(self, code, fn, a, b, activation, options):
        values = _activate(fn(self._samples[a], self._samples[b]), activation)
        out = self._activation("output", values, self._tensors[a].dtype)
        return self._op(code, [a, b], [out], options,
                        FusedActivationFunction=_ACTIVATIONS[activation])

    def pad(self, x, paddings) -> int:
        """Zero padding (the zero point in int8), output quantized as the input."""
        paddings = np.asarray(paddings, np.int32)
        values = np.pad(self._samples[x], [(0, 0), *paddings.tolist()])
        out = self._like(x, "output", values)
        return self._op("PAD", [x, self._const("paddings", paddings, "int32")], [out], "PadOptions")

    def concat(self, xs, axis=-1, activation="NONE") -> int:
        """Concatenation; int8 inputs are first requantized to one common scale and zero point.

        TFLM's int8 CONCATENATION requires every input to share the output's quantization, so
        inputs that differ get a QUANTIZE (int8 -> int8) op, as the TFLite converter inserts.
        """
        axis = axis % len(self.shape(xs[0]))
        values = np.concatenate([self._samples[x] for x in xs], axis=axis + 1)
        if self._tensors[xs[0]].dtype == "int8":
            quant = _Quant.from_range(values)
            xs = [x if quant.same_as(self._tensors[x].quant)
                  else self.quantize(x, float(quant.scale[0]), int(quant.zero_point[0])) for x in xs]
        else:
            quant = None
        out = self._activation("output", _activate(values, activation), self._tensors[xs[0]].dtype, quant)
        return self._op("CONCATENATION", xs, [out], "ConcatenationOptions", Axis=axis,
                        FusedActivationFunction=_ACTIVATIONS[activation])

    def mean(self, x, axes=(1, 2), keep_dims=True) -> int:
        axes = sorted(a % len(self.shape(x)) for a in axes)
        values = self._samples[x].mean(axis=tuple(a + 1 for a in axes), keepdims=keep_dims)
        out = self._activation("output", values, self._tensors[x].dtype)
        return self._op("MEAN", [x, self._const("axes", axes, "int32")], [out], "ReducerOptions",
                        KeepDims=keep_dims)

    def softmax(self, x, beta=1.0) -> int:
        """Softmax over the last axis; int8 output is fixed at scale 1/256, zero point -128."""
        z = beta * self._samples[x]
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        out = self._unit_interval(x, e / e.sum(axis=-1, keepdims=True))
        return self._op("SOFTMAX", [x], [out], "SoftmaxOptions", Beta=float(beta))

    def logistic(self, x) -> int:
        """Sigmoid; int8 output is fixed at scale 1/256, zero point -128."""
        return self._op("LOGISTIC", [x], [self._unit_interval(x, 1 / (1 + np.exp(-self._samples[x])))])

    def _unit_interval(self, x, values):
        dtype = self._tensors[x].dtype
        quant = _Quant.per_tensor(*_UNIT_INTERVAL) if dtype == "int8" else None
        return self._activation("output", values, dtype, quant)

    def reshape(self, x, new_shape) -> int:
        """Reshape (one -1 allowed); the shape goes both as an int32 input and in the options."""
        values = self._samples[x].reshape(len(self._samples[x]), *new_shape)
        out = self._like(x, "output", values)
        shape = list(self.shape(out))
        return self._op("RESHAPE", [x, self._const("shape", shape, "int32")], [out],
                        "ReshapeOptions", NewShape=shape)

    def squeeze(self, x, axes) -> int:
        axes = sorted(a % len(self.shape(x)) for a in axes)
        out = self._like(x, "output", self._samples[x].squeeze(tuple(a + 1 for a in axes)))
        return self._op("SQUEEZE", [x], [out], "SqueezeOptions", SqueezeDims=axes)

    def quantize(self, x, scale, zero_point) -> int:
        """float32 -> int8, or int8 -> int8 requantization to (scale, zero_point)."""
        quant = _Quant.per_tensor(float(np.float32(scale)), int(zero_point))
        lo, hi = [float(quant.scale[0]) * (q - zero_point) for q in (-128, 127)]
        out = self._activation("output", np.clip(self._samples[x], lo, hi), "int8", quant)
        return self._op("QUANTIZE", [x], [out])

    def dequantize(self, x) -> int:
        return self._op("DEQUANTIZE", [x], [self._activation("output", self._samples[x], "float32")])

    def custom_builtin(self, x, op_name: str) -> int:
        """Any other BuiltinOperator, without options, output shaped and quantized as x.

        For "unsupported operator" tests only: its float samples are just a copy of x's.
        """
        if not hasattr(tflite.BuiltinOperator, op_name):
            raise ValueError(f"{op_name!r} is not a TFLite BuiltinOperator")
        return self._op(op_name, [x], [self._like(x, "output", self._samples[x])])

    # ---- serialization ----

    def finish(self, outputs: list[int]) -> bytes:
        """The model as a `.tflite` flatbuffer (file identifier "TFL3", schema version 3)."""
        fb = flatbuffers.Builder(4096)
        buffers = [self._buffer(fb, None)]  # buffer 0: the empty buffer of every activation
        tensors = []
        for t in self._tensors:
            if t.data is not None:
                buffers.append(self._buffer(fb, t.data))
            tensors.append(self._tensor_table(fb, t, len(buffers) - 1 if t.data is not None else 0))
        opcode_keys = list(dict.fromkeys((op.code, op.version) for op in self._ops))
        operators = [self._operator_table(fb, op, opcode_keys.index((op.code, op.version)))
                     for op in self._ops]
        opcodes = [self._opcode_table(fb, code, version) for code, version in opcode_keys]

        tensor_vec = _table_vector(fb, tflite.SubGraphStartTensorsVector, tensors)
        operator_vec = _table_vector(fb, tflite.SubGraphStartOperatorsVector, operators)
        input_vec, output_vec = (fb.CreateNumpyVector(np.array(v, np.int32)) for v in (self._inputs, outputs))
        name = fb.CreateString("main")
        tflite.SubGraphStart(fb)
        tflite.SubGraphAddTensors(fb, tensor_vec)
        tflite.SubGraphAddInputs(fb, input_vec)
        tflite.SubGraphAddOutputs(fb, output_vec)
        tflite.SubGraphAddOperators(fb, operator_vec)
        tflite.SubGraphAddName(fb, name)
        subgraph = tflite.SubGraphEnd(fb)

        subgraph_vec = _table_vector(fb, tflite.ModelStartSubgraphsVector, [subgraph])
        opcode_vec = _table_vector(fb, tflite.ModelStartOperatorCodesVector, opcodes)
        buffer_vec = _table_vector(fb, tflite.ModelStartBuffersVector, buffers)
        description = fb.CreateString("mcugen.testing.synth")
        tflite.ModelStart(fb)
        tflite.ModelAddVersion(fb, 3)
        tflite.ModelAddOperatorCodes(fb, opcode_vec)
        tflite.ModelAddSubgraphs(fb, subgraph_vec)
        tflite.ModelAddDescription(fb, description)
        tflite.ModelAddBuffers(fb, buffer_vec)
        fb.Finish(tflite.ModelEnd(fb), file_identifier=b"TFL3")
        return bytes(fb.Output())

    @staticmethod
    def _buffer(fb, data):
        """A Buffer table; its bytes start 16-byte aligned, as the converter writes them."""
        if data is not None:
            raw = np.ascontiguousarray(data, data.dtype.newbyteorder("<")).reshape(-1).view(np.uint8)
            fb.Prep(16, raw.size)
            vec = fb.CreateNumpyVector(raw)
        tflite.BufferStart(fb)
        if data is not None:
            tflite.BufferAddData(fb, vec)
        return tflite.BufferEnd(fb)

    @staticmethod
    def _tensor_table(fb, t, buffer):
        name = fb.CreateString(t.name)
        shape = fb.CreateNumpyVector(np.array(t.shape, np.int32))
        quant = None
        if t.quant is not None:
            scale = fb.CreateNumpyVector(t.quant.scale.astype(np.float32))
            zero_point = fb.CreateNumpyVector(t.quant.zero_point.astype(np.int64))
            tflite.QuantizationParametersStart(fb)
            tflite.QuantizationParametersAddScale(fb, scale)
            tflite.QuantizationParametersAddZeroPoint(fb, zero_point)
            tflite.QuantizationParametersAddQuantizedDimension(fb, t.quant.axis)
            quant = tflite.QuantizationParametersEnd(fb)
        tflite.TensorStart(fb)
        tflite.TensorAddShape(fb, shape)
        tflite.TensorAddType(fb, _TYPES[t.dtype])
        tflite.TensorAddBuffer(fb, buffer)
        tflite.TensorAddName(fb, name)
        if quant is not None:
            tflite.TensorAddQuantization(fb, quant)
        return tflite.TensorEnd(fb)

    @staticmethod
    def _operator_table(fb, op, opcode_index):
        options = _options_table(fb, op.options, op.fields) if op.options else None
        inputs = fb.CreateNumpyVector(np.array(op.inputs, np.int32))
        outputs = fb.CreateNumpyVector(np.array(op.outputs, np.int32))
        tflite.OperatorStart(fb)
        tflite.OperatorAddOpcodeIndex(fb, opcode_index)
        tflite.OperatorAddInputs(fb, inputs)
        tflite.OperatorAddOutputs(fb, outputs)
        if options is not None:
            tflite.OperatorAddBuiltinOptionsType(fb, getattr(tflite.BuiltinOptions, op.options))
            tflite.OperatorAddBuiltinOptions(fb, options)
        return tflite.OperatorEnd(fb)

    @staticmethod
    def _opcode_table(fb, code, version):
        """Both code fields: readers take max(deprecated_builtin_code, builtin_code)."""
        value = getattr(tflite.BuiltinOperator, code)
        tflite.OperatorCodeStart(fb)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(fb, min(value, 127))
        tflite.OperatorCodeAddBuiltinCode(fb, value)
        tflite.OperatorCodeAddVersion(fb, version)
        return tflite.OperatorCodeEnd(fb)


def _options_table(fb, name, fields):
    """Writes the schema table `name` (e.g. "Conv2DOptions") from {field: value}.

    The field names are the schema package's `<name>Add<Field>` suffixes; list values become
    int32 vectors, which must be written before the table starts.
    """
    vectors = {k: fb.CreateNumpyVector(np.array(v, np.int32))
               for k, v in fields.items() if isinstance(v, list)}
    getattr(tflite, f"{name}Start")(fb)
    for field, value in fields.items():
        getattr(tflite, f"{name}Add{field}")(fb, vectors.get(field, value))
    return getattr(tflite, f"{name}End")(fb)


def _table_vector(fb, start, offsets):
    start(fb, len(offsets))
    for off in reversed(offsets):
        fb.PrependUOffsetTRelative(off)
    return fb.EndVector()


# ---- random models ----

MAX_MACS = 200_000
MAX_ACTIVATION_BYTES = 32 * 1024
# large_random_model: the size of KWS DS-CNN or ResNet-8, where kernel speed matters
LARGE_MACS = (1_000_000, 4_000_000)
LARGE_ACTIVATION_BYTES = 96 * 1024


def _pick(rng, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


def _activation_kind(rng):
    return _pick(rng, ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"], [0.3, 0.4, 0.2, 0.1])


def _window(rng, shape, kernels):
    """Random kernel, stride, padding and dilation (only at stride 1) that fit a 1xHxWxC input."""
    stride = tuple(int(_pick(rng, [1, 2], [0.6, 0.4])) if size > 1 else 1 for size in shape[1:3])
    dilation = (1, 1)
    if stride == (1, 1) and rng.random() < 0.25:
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    kernel = tuple(int(_pick(rng, [k for k in kernels if (k - 1) * d + 1 <= size] or [1]))
                   for size, d in zip(shape[1:3], dilation))
    return dict(kernel=kernel, stride=stride, dilation=dilation,
                padding=_pick(rng, ["SAME", "VALID"]))


def _conv_block(b, rng, x, widest=16):
    return b.conv2d(x, int(rng.integers(1, widest + 1)), **_window(rng, b.shape(x), [1, 3, 5]),
                    activation=_activation_kind(rng), per_channel=bool(rng.random() < 0.7))


def _wide_conv_block(b, rng, x):
    return _conv_block(b, rng, x, widest=64)


def _depthwise_block(b, rng, x):
    multiplier = _pick(rng, [1, 2]) if b.shape(x)[3] <= 16 else 1
    return b.depthwise_conv2d(x, **_window(rng, b.shape(x), [3, 5]), depth_multiplier=multiplier,
                              activation=_activation_kind(rng), per_channel=bool(rng.random() < 0.8))


def _residual_block(b, rng, x):
    """x + f(x) with a shape-preserving branch f of one or two ops."""
    y = b.conv2d(x, b.shape(x)[3], kernel=(3, 3), activation=_pick(rng, ["RELU", "RELU6"]))
    if rng.random() < 0.5:
        y = b.depthwise_conv2d(y, activation="NONE")
    return b.add(x, y, activation=_pick(rng, ["NONE", "RELU", "RELU6"]))


def _pool_block(b, rng, x):
    pool = b.avg_pool if rng.random() < 0.5 else b.max_pool
    window = _window(rng, b.shape(x), [2, 3])
    return pool(x, pool=window["kernel"], stride=window["stride"], padding=window["padding"],
                activation=_pick(rng, ["NONE", "RELU"], [0.8, 0.2]))


def _pad_block(b, rng, x):
    spatial = [[int(v) for v in rng.integers(0, 3, 2)] for _ in range(2)]
    channels = [0, int(rng.integers(1, 3))] if rng.random() < 0.2 else [0, 0]
    return b.pad(x, [[0, 0], *spatial, channels])


def _mul_block(b, rng, x):
    """A gate: squeeze-and-excitation (broadcast over H, W), a depthwise gate, or a square."""
    kind = _pick(rng, ["se", "gate", "square"])
    if kind == "se":
        gate = b.mean(x, axes=(1, 2), keep_dims=True)
        gate = b.logistic(b.conv2d(gate, b.shape(x)[3], kernel=(1, 1), activation="NONE"))
    elif kind == "gate":
        gate = b.depthwise_conv2d(x, activation="NONE")
    else:
        gate = x
    return b.mul(x, gate, activation=_pick(rng, ["NONE", "RELU"], [0.8, 0.2]))


def _concat_block(b, rng, x):
    """Two or three same-shaped conv branches, joined along channels (or H or W)."""
    channels = int(rng.integers(1, 9))
    branches = [b.conv2d(x, channels, kernel=(k, k), activation=_activation_kind(rng))
                for k in rng.choice([1, 3], int(rng.integers(2, 4)))]
    return b.concat(branches, axis=_pick(rng, [1, 2, 3], [0.2, 0.2, 0.6]))


def _mean_block(b, rng, x):
    return b.mean(x, axes=_pick(rng, [(1, 2), (1,), (2,)]), keep_dims=True)


_BLOCKS = [_conv_block, _depthwise_block, _residual_block, _pool_block, _pad_block,
           _mul_block, _concat_block, _mean_block]
_BLOCK_WEIGHTS = [0.2, 0.16, 0.12, 0.12, 0.08, 0.1, 0.12, 0.1]
_LARGE_BLOCKS = [_wide_conv_block, *_BLOCKS[1:]]


def _classifier(b, rng, x):
    """FC layers (+ softmax) on a 1xN tensor; the last FC has no activation."""
    for _ in range(int(rng.integers(0, 2))):
        x = b.fully_connected(x, int(rng.integers(4, 33)), activation=_activation_kind(rng))
    x = b.fully_connected(x, int(rng.integers(2, 17)))
    if rng.random() < 0.5:
        # beta scaled to the logits' spread keeps the probabilities away from 0 and 1
        x = b.softmax(x, beta=float(np.float32(1.0 / max(b.samples(x).std(), 1e-3))))
    return x


def _tail(b, rng, x):
    """The head: flatten to 1xN (reshape, mean, or mean + squeeze) and classify, or a 1x1 conv.

    Either way the last op has no fused activation, so outputs are not half at the zero point.
    """
    kind = _pick(rng, ["reshape", "mean", "squeeze", "conv"], [0.3, 0.15, 0.15, 0.4])
    if kind == "conv":
        return b.conv2d(x, int(rng.integers(1, 9)), kernel=(1, 1), activation="NONE")
    if kind == "reshape":
        x = b.reshape(x, (1, -1))
    elif kind == "mean":
        x = b.mean(x, axes=(1, 2), keep_dims=False)
    else:
        x = b.squeeze(b.mean(x, axes=(1, 2), keep_dims=True), axes=(1, 2))
    return _classifier(b, rng, x)


def random_model(seed: int, max_layers: int = 8) -> bytes:
    """A random valid int8 model, a pure function of `seed`: chains and residual blocks.

    Mostly 1xHxWxC inputs through up to `max_layers` blocks and a head; one in ten is a
    fully-connected chain on a 1xN input. Blocks that would break the MAC or activation budget
    are undone and redrawn.
    """
    rng = np.random.default_rng(seed)
    b = ModelBuilder(rng)
    if rng.random() < 0.1:
        x = b.input((1, int(rng.integers(8, 65))))
        return b.finish([_classifier(b, rng, x)])
    x = b.input((1, int(rng.integers(4, 25)), int(rng.integers(4, 25)), int(rng.integers(1, 9))))
    return _grow(b, rng, x, max_layers, _BLOCKS, MAX_MACS, MAX_ACTIVATION_BYTES)


def large_random_model(seed: int) -> bytes:
    """A random int8 model of LARGE_MACS multiply-accumulates, a pure function of `seed`: the
    blocks of random_model with convolutions up to 64 channels wide, up to 10 of them. Draws that
    end below the lower bound are redrawn from (seed, attempt)."""
    for attempt in range(100):
        rng = np.random.default_rng([seed, attempt])
        b = ModelBuilder(rng)
        x = b.input((1, int(rng.integers(8, 33)), int(rng.integers(8, 33)), int(rng.integers(1, 9))))
        model = _grow(b, rng, x, 10, _LARGE_BLOCKS, LARGE_MACS[1], LARGE_ACTIVATION_BYTES)
        if b.macs >= LARGE_MACS[0]:
            return model
    raise AssertionError(f"no draw of large_random_model({seed}) reached {LARGE_MACS[0]:,} MACs")


def _grow(b, rng, x, max_layers, blocks, max_macs, max_activation_bytes) -> bytes:
    """Up to `max_layers` blocks, then a head; a block or head that would break the MAC or
    activation budget is undone and redrawn."""
    def fits():
        return b.macs < max_macs and b.activation_bytes < max_activation_bytes

    for _ in range(int(rng.integers(1, max_layers + 1))):
        for _attempt in range(4):
            mark = b._mark()
            y = _pick(rng, blocks, _BLOCK_WEIGHTS)(b, rng, x)
            if fits():
                x = y
                break
            b._rollback(mark)
    for _attempt in range(8):
        mark = b._mark()
        y = _tail(b, rng, x)
        if fits():
            return b.finish([y])
        b._rollback(mark)
    return b.finish([x])


def residual_model(seed: int) -> bytes:
    """A random int8 model built around residual blocks x + conv2(conv1(x)) of the shape
    stream_residual streams (stride 1, SAME, filters 1 to 5 high and wide, either ADD operand
    order): a stem conv (so x is not the graph input), one or two blocks, sometimes a 1x1 head."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder(rng)
    x = b.input((1, int(rng.integers(3, 13)), int(rng.integers(1, 13)), int(rng.integers(1, 5))))
    x = b.conv2d(x, int(rng.integers(1, 9)), kernel=(3, 3), activation="RELU")

    def kernel():
        high = _pick(rng, [1, 2, 3, 5], [0.3, 0.15, 0.4, 0.15])
        return (high, high if rng.random() < 0.6 else _pick(rng, [1, 2, 3, 5]))

    for _ in range(int(rng.integers(1, 3))):
        y = b.conv2d(x, int(rng.integers(1, 13)), kernel=kernel(), activation=_pick(rng, ["RELU", "RELU6", "NONE"]),
                     per_channel=bool(rng.random() < 0.7))
        y = b.conv2d(y, b.shape(x)[3], kernel=kernel(), activation="NONE", per_channel=bool(rng.random() < 0.7))
        operands = (x, y) if rng.random() < 0.5 else (y, x)
        x = b.add(*operands, activation=_pick(rng, ["NONE", "RELU", "RELU6"]))
    if rng.random() < 0.5:
        x = b.conv2d(x, int(rng.integers(1, 9)), kernel=(1, 1), activation="NONE")
    return b.finish([x])


def default_model() -> bytes:
    """The demo model: a DS-CNN keyword spotter on 49 MFCC frames x 10 coefficients, 12 classes.

    conv 10x4 / 2 -> 4 x (depthwise 3x3 -> pointwise 1x1) -> average pool -> FC(12) -> softmax,
    about 7k parameters, with random (untrained) weights from a fixed seed.
    """
    b = ModelBuilder(2024)
    x = b.input((1, 49, 10, 1), scale=0.25, zero_point=0)
    x = b.conv2d(x, 32, kernel=(10, 4), stride=(2, 2), activation="RELU")
    for _ in range(4):
        x = b.depthwise_conv2d(x, kernel=(3, 3), activation="RELU")
        x = b.conv2d(x, 32, kernel=(1, 1), activation="RELU")
    x = b.avg_pool(x, pool=b.shape(x)[1:3], stride=(1, 1))
    x = b.fully_connected(x, 12)
    return b.finish([b.softmax(x, beta=float(np.float32(1.0 / b.samples(x).std())))])


def hybrid_model() -> bytes:
    """A float32 CONV_2D with int8 weights (a "hybrid" op), which mcugen must reject clearly."""
    b = ModelBuilder(0)
    x = b.input((1, 8, 8, 3), dtype="float32")
    return b.finish([b.conv2d(x, 4)])


def main(argv: list[str] | None = None) -> int:
    """`python -m mcugen.testing --default -o model.tflite` (or `--seed N [--large]` for a random one)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mcugen.testing", description=main.__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--default", action="store_true", help="the built-in demo model")
    which.add_argument("--seed", type=int, help="a random model from this seed")
    parser.add_argument("--large", action="store_true",
                        help=f"with --seed: a large one ({LARGE_MACS[0]:,} to {LARGE_MACS[1]:,} MACs)")
    parser.add_argument("-o", "--output", required=True, help="where to write the .tflite file")
    args = parser.parse_args(argv)
    if args.large and args.seed is None:
        parser.error("--large needs --seed")
    data = default_model() if args.default else (large_random_model if args.large else random_model)(args.seed)
    Path(args.output).write_bytes(data)
    print(f"wrote {args.output} ({len(data):,} bytes)")
    return 0
