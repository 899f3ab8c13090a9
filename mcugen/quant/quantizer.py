"""Quantization at chosen bit-widths: the one place where real numbers become integers.

The source is always a *float form* of the network: a Graph whose weights and biases hold real
values (a float model's own weights, or the dequantized weights of an int8 model), plus the real
range of every activation. `quantize_graph` turns the float form, per-tensor ranges and per-tensor
widths (8, 4 or 2 bits) into an integer Graph in the conventions every kernel codes against:

- weights: signed and symmetric (zero point 0), per output channel on TFLite's axes (conv OHWI 0,
  depthwise 1HWC 3, FC 0) or per layer; unpacked values in the dtype's range;
- activations: asymmetric; a sub-byte tensor whose range starts at 0 (after a ReLU) is unsigned
  with zero point 0, otherwise signed; 8-bit activations are int8, as in TFLite;
- biases: int32 at scale in_scale * w_scale[c] (`mcugen.quant.icn`).

Sub-byte scales minimise the quantization MSE over a grid of clipping ratios: min/max clipping
spends most of 4 or 2 bits on rare outliers. 8-bit scales are TFLite's min/max.

When the float form comes from an integer graph, that graph is passed as `keep`: every tensor
whose width does not change is copied from it verbatim, so the 8-bit layers of a mixed model
compute exactly what the original model computes (DESIGN.md: one integer dialect).

`Quantizer` wraps all this for one integer model and its calibration inputs, so that the
bit-assignment search can build many candidate graphs cheaply.
"""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np

from mcugen.ir import FLOAT32, INT8, INT32, DType, Graph, Quant, Tensor
from mcugen.quant.fidelity import run_many
from mcugen.quant.fixedpoint import round_half_away
from mcugen.quant.icn import integer_bias

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
WEIGHT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
# Ops whose output must share the input's quantization (TFLite's integer kernels do not
# requantize): the tensors they connect form one group with one width and one range.
TIED_OPS = ("AVERAGE_POOL_2D", "MAX_POOL_2D", "RESHAPE", "SQUEEZE", "PAD", "CONCATENATION")
# Ops whose int8 output encodes [0, 1] at scale 1/256, zero point -128 (TFLM requires it).
UNIT_INTERVAL_OPS = ("SOFTMAX", "LOGISTIC")
UNIT_INTERVAL = (1.0 / 256.0, -128)
WIDTHS = (8, 4, 2)

CLIP_RATIOS = np.linspace(0.1, 1.0, 91)  # of the largest value: one-sided activation ranges
COARSE_RATIOS = np.linspace(0.1, 1.0, 19)  # of the largest weight magnitude, then +- FINE_OFFSETS
FINE_STEP = 0.01
FINE_OFFSETS = np.arange(-4, 5) * FINE_STEP
CLIP_RATIOS_2D = np.linspace(0.1, 1.0, 19)  # of each end, for two-sided activation ranges
MAX_SAMPLES = 1 << 16  # activation values kept per tensor for range searches
HISTOGRAM_BINS = 2048


# ---- scales ----

def activation_dtype(bits: int, lo: float) -> DType:
    """int8 at 8 bits (TFLite's kernels); below, unsigned when the range starts at zero."""
    return INT8 if bits == 8 else DType("int", bits, signed=bool(lo < 0))


def affine(lo: float, hi: float, dtype: DType) -> tuple[float, int]:
    """(scale, zero point) mapping [lo, hi] (widened to hold 0.0 exactly) onto dtype's range.

    The scale is rounded to float32, as a .tflite stores it, so lowering sees the same number
    whether a graph was just quantized or read back from a file.
    """
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = float(np.float32((hi - lo) / (dtype.qmax - dtype.qmin))) if hi > lo else 1.0
    zero_point = int(np.clip(dtype.qmin - round_half_away(np.float64(lo / scale)), dtype.qmin, dtype.qmax))
    return scale, zero_point


def _fake_quant(values: np.ndarray, scale, zero_point, qmin: int, qmax: int) -> np.ndarray:
    q = np.clip(round_half_away(values / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


def activation_range(samples: np.ndarray, bits: int) -> tuple[float, float]:
    """The clipping range of an activation at `bits`: min/max at 8 bits; below, the range
    (shrunk from min/max by a grid of ratios, each end separately) whose quantization of the
    observed samples has the least squared error (measured on a fine histogram of them)."""
    samples = np.asarray(samples, np.float64).reshape(-1)
    lo, hi = min(float(samples.min(initial=0.0)), 0.0), max(float(samples.max(initial=0.0)), 0.0)
    if bits == 8 or hi == lo:
        return lo, hi
    counts, edges = np.histogram(samples, bins=HISTOGRAM_BINS, range=(lo, hi))
    centers, counts = (edges[:-1] + edges[1:])[counts > 0] / 2, counts[counts > 0]
    dtype = activation_dtype(bits, lo)
    best, best_err = (lo, hi), np.inf
    for lo_ratio in (CLIP_RATIOS_2D if lo < 0 else [0.0]):
        for hi_ratio in (CLIP_RATIOS_2D if lo < 0 else CLIP_RATIOS):
            candidate = (lo * lo_ratio, hi * hi_ratio)
            scale, zero_point = affine(*candidate, dtype)
            err = float(np.sum(counts * (_fake_quant(centers, scale, zero_point, dtype.qmin, dtype.qmax) - centers) ** 2))
            if err < best_err:
                best, best_err = candidate, err
    return float(best[0]), float(best[1])


def symmetric_weights(w: np.ndarray, bits: int, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(integer weights, scales) of real weights `w`: zero point 0, one scale per slice along
    `axis` (or one for all). 8 bits use TFLite's [-127, 127] at min/max; sub-byte widths use the
    whole signed range and, per channel, the clipping ratio with the least squared error (a
    coarse grid, then a fine one around the best)."""
    w = np.asarray(w, np.float64)
    rows = (w.reshape(1, -1) if axis is None else np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1))
    qmax = (1 << (bits - 1)) - 1
    qmin = -qmax if bits == 8 else -(1 << (bits - 1))
    amax = np.abs(rows).max(axis=1)
    amax = np.where(amax > 0, amax, amax.max(initial=0.0) or 1.0)  # an all-zero channel borrows a scale

    def least_error(ratios: np.ndarray) -> np.ndarray:
        """Per channel, the ratio among `ratios` [k, channels] whose (float32) scale errs least."""
        candidates = (ratios * amax / qmax).astype(np.float32).astype(np.float64)
        errors = [np.sum((np.clip(np.rint(rows / c[:, None]), qmin, qmax) * c[:, None] - rows) ** 2, axis=1)
                  for c in candidates]
        return ratios[np.argmin(np.stack(errors), axis=0), np.arange(len(rows))]

    ratio = np.ones(len(rows))
    if bits < 8:
        ratio = least_error(np.broadcast_to(COARSE_RATIOS[:, None], (len(COARSE_RATIOS), len(rows))))
        ratio = least_error(np.clip(ratio + FINE_OFFSETS[:, None], FINE_STEP, 1.0))
    best = (ratio * amax / qmax).astype(np.float32).astype(np.float64)
    q = np.clip(round_half_away(rows / best[:, None]), qmin, qmax).astype(np.int8)
    if axis is None:
        return q.reshape(w.shape), best
    moved = np.moveaxis(w, axis, 0).shape
    return np.moveaxis(q.reshape(moved), 0, axis), best


# ---- the float form ----

def dequantize_graph(graph: Graph) -> tuple[Graph, dict[str, tuple[float, float]]]:
    """The float form of an integer graph: weights and biases of CONV_2D, DEPTHWISE_CONV_2D and
    FULLY_CONNECTED as real numbers, activations as float32 tensors; plus the real range each
    integer activation could represent. Other constants (shapes, paddings) are kept as they are."""
    tensors = dict(graph.tensors)
    ranges = {}
    for op in graph.ops:
        if op.kind in WEIGHTED_OPS:
            for name in op.inputs[1:3]:
                if name is not None:
                    t = graph.tensor(name)
                    tensors[name] = replace(t, dtype=FLOAT32, quant=None, data=_real(t).astype(np.float32))
    for t in graph.activations():
        if t.quant is not None and not t.dtype.is_float:
            ranges[t.name] = (t.quant.s * (t.dtype.qmin - t.quant.zp), t.quant.s * (t.dtype.qmax - t.quant.zp))
            tensors[t.name] = replace(t, dtype=FLOAT32, quant=None)
    return Graph(tensors, copy.deepcopy(graph.ops), list(graph.inputs), list(graph.outputs)), ranges


def _real(t: Tensor) -> np.ndarray:
    """Dequantized values of a constant, per channel along its quantization axis."""
    q = t.quant
    shape = [1] * t.data.ndim
    if q.per_channel:
        shape[q.axis] = -1
    return (t.data.astype(np.float64) - q.zero_point.reshape(shape)) * q.scale.reshape(shape)


def activation_groups(graph: Graph) -> dict[str, str]:
    """Each activation's group root: tensors joined by TIED_OPS share one quantization. The root
    is the group's first tensor in graph order."""
    order = {t.name: i for i, t in enumerate(graph.activations())}
    root = {name: name for name in order}

    def find(name: str) -> str:
        while root[name] != name:
            name = root[name]
        return name

    for op in graph.ops:
        if op.kind in TIED_OPS:
            members = [n for n in [op.inputs[0], *op.outputs] + (op.inputs[1:] if op.kind == "CONCATENATION" else [])
                       if n is not None and n in order]
            roots = sorted({find(n) for n in members}, key=order.get)
            for r in roots[1:]:
                root[r] = roots[0]
    return {name: find(name) for name in order}


# ---- float form -> integer graph ----

def quantize_graph(float_graph: Graph, ranges: dict[str, tuple[float, float]], widths: dict[str, int],
                   keep: Graph | None = None, cache: dict | None = None, fc_per_channel: bool = False) -> Graph:
    """The integer graph of `float_graph` with every tensor at its width (8 where `widths` does
    not say): activations over `ranges` (tensors of one activation group must get the same range
    and width), weights per channel below 8 bits and as TFLite does at 8 (per channel for
    convolutions; per layer for FC unless `fc_per_channel`). Tensors of `keep` whose width is
    unchanged are copied verbatim, and so is a bias whose input and weights were. `cache` (a dict
    the caller keeps) memoises weight quantization across calls."""
    cache = {} if cache is None else cache
    tensors: dict[str, Tensor] = {}
    producer = float_graph.producers()

    def kept(name: str) -> Tensor | None:
        t = _tensor_of(keep, name)
        return t if t is not None and not t.dtype.is_float and t.dtype.bits == widths.get(name, 8) else None

    for t in float_graph.activations():
        original = kept(t.name)
        if original is not None:
            tensors[t.name] = original
        elif t.name in producer and producer[t.name].kind in UNIT_INTERVAL_OPS:
            tensors[t.name] = replace(t, dtype=INT8, quant=Quant(*UNIT_INTERVAL))
        else:
            lo, hi = ranges[t.name]
            dtype = activation_dtype(widths.get(t.name, 8), lo)
            tensors[t.name] = replace(t, dtype=dtype, quant=Quant(*affine(lo, hi, dtype)))
    for op in float_graph.ops:
        if op.kind not in WEIGHTED_OPS:
            continue
        x, w_name = op.inputs[0], op.inputs[1]
        w = kept(w_name)
        if w is None:
            bits = widths.get(w_name, 8)
            axis = WEIGHT_AXIS[op.kind] if bits < 8 or fc_per_channel or op.kind != "FULLY_CONNECTED" else None
            key = (w_name, bits, axis)
            if key not in cache:
                cache[key] = symmetric_weights(float_graph.tensor(w_name).data, bits, axis)
            q, scale = cache[key]
            w = replace(float_graph.tensor(w_name), dtype=DType("int", bits), data=q,
                        quant=Quant(scale, np.zeros(scale.size, np.int64), axis))
        tensors[w_name] = w
        b_name = op.inputs[2] if len(op.inputs) > 2 else None
        if b_name is not None:
            verbatim = tensors[x] is _tensor_of(keep, x) and w is _tensor_of(keep, w_name)
            b = _tensor_of(keep, b_name) if verbatim else None
            if b is None:
                bias_scale = tensors[x].quant.s * w.quant.scale
                b = replace(float_graph.tensor(b_name), dtype=INT32,
                            data=integer_bias(float_graph.tensor(b_name).data, bias_scale),
                            quant=Quant(bias_scale, np.zeros(bias_scale.size, np.int64), 0 if w.quant.per_channel else None))
            tensors[b_name] = b
    ordered = {name: tensors.get(name, t) for name, t in float_graph.tensors.items()}
    return Graph(ordered, copy.deepcopy(float_graph.ops), list(float_graph.inputs), list(float_graph.outputs))


def _tensor_of(graph: Graph | None, name: str) -> Tensor | None:
    return graph.tensors.get(name) if graph is not None else None


# ---- one integer model, re-quantized on demand ----

class Quantizer:
    """Re-quantizes one integer model at any widths, from its float form and calibration data.

    Construction runs the model's integer reference once over the calibration inputs; those
    values serve as the activation samples of the range searches and as the reference that the
    fidelity of a compressed graph is measured against. `build(widths)` is then cheap (weight and
    range searches are memoised), so a bit-assignment search can build every candidate.
    """

    def __init__(self, graph: Graph, input_sets: list[list[np.ndarray]]):
        self.original = graph
        self.float_graph, self.full_ranges = dequantize_graph(graph)
        self.groups = activation_groups(graph)
        self.values = run_many(graph, input_sets, keep_all=True)
        self._ranges: dict[tuple[str, int], tuple[float, float]] = {}
        self._weights: dict = {}

    def samples(self, root: str) -> np.ndarray:
        """Real values of a group's tensors over the calibration set (evenly subsampled)."""
        parts = []
        for name, r in self.groups.items():
            if r == root and name in self.values:
                t = self.original.tensor(name)
                parts.append((self.values[name].astype(np.float64).reshape(-1) - t.quant.zp) * t.quant.s)
        values = np.concatenate(parts)
        return values[::max(1, values.size // MAX_SAMPLES)]

    def group_range(self, root: str, bits: int) -> tuple[float, float]:
        """A group's range at `bits`: the original's at its own width, else searched on samples."""
        key = (root, bits)
        if key not in self._ranges:
            self._ranges[key] = (self.full_ranges[root] if bits == self.original.tensor(root).dtype.bits
                                 else activation_range(self.samples(root), bits))
        return self._ranges[key]

    def build(self, widths: dict[str, int]) -> Graph:
        """The model with tensors at `widths` (every member of an activation group alike)."""
        ranges = {name: self.group_range(root, widths.get(root, 8)) for name, root in self.groups.items()
                  if name in self.full_ranges}
        return quantize_graph(self.float_graph, ranges, widths, keep=self.original, cache=self._weights)
