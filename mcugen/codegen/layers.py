"""Each op of a planned graph becomes one kernel call, with every number computed here.

`layer_code(ctx, index, op)` returns the kernel it calls, the constant structs and arrays it
needs and the C statement; templates only place these. Kernel choice and scratch size live in
`choose_kernel`, which the `select_kernels` pass records on the op for the memory planner.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np

from mcugen.codegen import mixed
from mcugen.codegen.cformat import CArray, CStruct, c_array, c_struct
from mcugen.errors import UserError
from mcugen.ir import Graph, Op, Tensor
from mcugen.passes.stream_residual import BLOCK_KERNEL, CONV_KERNELS
from mcugen.quant.fixedpoint import wrap_int32
from mcugen.quant.lowering import lower


@dataclass
class LayerCode:
    index: int
    op: str
    kernel: str | None
    structs: list[CStruct] = field(default_factory=list)
    arrays: list[CArray] = field(default_factory=list)
    statement: str = ""
    variant: mixed.Variant | None = None  # the mixed-precision kernel it calls, if any
    calls: tuple[str, ...] = ()  # int8 kernels the statement calls besides `kernel`
    replaced: tuple[str, ...] = ()  # constant tensors the statement uses a folded copy of instead


@dataclass
class EmitContext:
    """What every layer needs: the graph, its memory plan and the symbol prefix."""

    graph: Graph
    name: str

    @property
    def plan(self):
        return self.graph.attrs["memory_plan"]

    def pointer(self, tensor_name: str, writable: bool = False, element: str = "int8_t") -> str:
        place = self.plan.tensors[tensor_name]
        ctype = f"{element} *" if writable else f"const {element} *"
        base = {"arena": f"{self.name}_arena.bytes", "input": "input", "output": "output"}[place.region]
        return f"(({ctype}){base} + {place.offset})"

    def scratch(self, index: int) -> str:
        place = self.plan.scratch.get(index)
        return "NULL" if place is None else f"((void *)({self.name}_arena.bytes + {place.offset}))"

    def weights(self, tensor: Tensor) -> str:
        return f"{self.name}_{_symbol(tensor.name)}"


def _symbol(text: str) -> str:
    """A C identifier made from a tensor name (made unique with a hash of the name)."""
    clean = "".join(c if c.isalnum() else "_" for c in text).strip("_")[-40:] or "t"
    return f"c{hashlib.sha1(text.encode()).hexdigest()[:6]}_{clean}"


def dims4(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """NHWC dims of a tensor of rank <= 4: [b, n] is {b, 1, 1, n}; leading 1s fill up."""
    shape = tuple(shape)
    if len(shape) == 2:
        return (shape[0], 1, 1, shape[1])
    shape = (1,) * (4 - len(shape)) + shape
    if len(shape) != 4:
        raise UserError(f"tensors of rank {len(shape)} are not supported by the C kernels")
    return shape  # type: ignore[return-value]


# ---- kernel choice (recorded on the op by the select_kernels pass) ----

# Limits of c_kernels/src/depthwise_conv2d.c: the most columns of a 3x3 strip row, the most taps
# of the four-channel path.
DW3X3_STRIP = 24
DW_TAPS = 49

def choose_kernel(graph: Graph, op: Op) -> tuple[str | None, int]:
    """(C function, scratch bytes) for one op; None for ops that need no code."""
    variant = _variant(graph, op, graph.ops.index(op))
    if variant is not None:
        return variant.name, mixed.scratch_bytes(graph, op)
    if op.kind == "CONV_2D":
        p = lower(graph, op)
        w = graph.tensor(op.inputs[1])
        if w.shape[1] == 1 and w.shape[2] == 1 and p.pad_h == 0 and p.pad_w == 0:
            return "mcugen_conv2d_1x1_s8", columns_bytes(w.shape[3])
        return "mcugen_conv2d_s8", conv2d_scratch_bytes(w.shape)
    if op.kind == "DEPTHWISE_CONV_2D":
        p = lower(graph, op)
        dm, channels = p.depth_multiplier, graph.tensor(op.outputs[0]).shape[-1]
        kh, kw = graph.tensor(op.inputs[1]).shape[1:3]
        strip = (graph.tensor(op.outputs[0]).shape[2] - 1) * p.stride_w + 3
        if ((kh, kw, dm, p.dilation_h, p.dilation_w) == (3, 3, 1, 1, 1) and channels >= 4
                and strip <= DW3X3_STRIP):
            return "mcugen_depthwise_conv2d_3x3_s8", 0
        # groups of four output channels, whose lanes read input channels (c, c+1, c+2, c+3),
        # (c, c, c+1, c+1) or (c, c, c, c): other depth multipliers, and windows of more taps
        # than the kernel widens onto its stack, stay on the generic kernel
        if channels >= 4 and (dm in (1, 2) or dm % 4 == 0) and kh * kw <= DW_TAPS:
            return "mcugen_depthwise_conv2d_c4_s8", 0
    if op.kind in ("RESHAPE", "SQUEEZE"):
        return None, 0
    return _SIMPLE_KERNELS[op.kind], 0


def _variant(graph: Graph, op: Op, index: int) -> mixed.Variant | None:
    """The mixed-precision kernel variant of an op with sub-byte or unsigned tensors (None for
    int8 ops), its inputs in the order the kernel takes them."""
    if not mixed.needs_mixed(graph, op):
        return None
    inputs = [n for n in op.inputs if n is not None and not graph.tensor(n).is_const]
    if op.kind == "ADD" and _broadcast(op, *(graph.tensor(n) for n in inputs), index)[0]:
        inputs.reverse()
    return mixed.variant(graph, op, inputs)


def subbyte_capable(graph: Graph, tensor_name: str, _via: Op | None = None) -> bool:
    """May `tensor_name` be stored below 8 bits (or unsigned) in generated code?

    True when every op that reads or writes it has a mixed-precision kernel for that operand: the
    input, weights or output of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, the input or
    output of AVERAGE_POOL_2D and MAX_POOL_2D, an input or the output of ADD; or is a RESHAPE or
    SQUEEZE whose other side may be too (both sides must then get the same type). Biases stay
    int32; a tensor that any other op touches stays int8. Graph inputs and outputs may go
    sub-byte: the caller's buffers then hold packed elements.
    """
    tensor = graph.tensor(tensor_name)
    for op in graph.ops:
        if op is _via or (tensor_name not in op.inputs and tensor_name not in op.outputs):
            continue
        if op.kind in mixed.ALIAS_OPS:
            other = op.outputs[0] if tensor_name == op.inputs[0] else op.inputs[0]
            if not subbyte_capable(graph, other, op):
                return False
            continue
        if op.kind not in mixed.C_OPS:
            return False
        if op.kind in mixed.WEIGHTED:
            slot = 1 if tensor.is_const else 0
            if tensor_name != op.inputs[slot] and tensor_name not in op.outputs:
                return False
        elif tensor.is_const:
            return False
    return True


def conv_row(depth: int) -> int:
    """Mirrors conv2d.c's row_of(): a filter row of `depth` values padded to a multiple of 8."""
    return (depth + 7) // 8 * 8


def conv_filter(data: np.ndarray) -> np.ndarray:
    """A CONV_2D filter (OHWI) as mcugen_conv2d_s8 and mcugen_conv2d_1x1_s8 take it: each output
    channel's row zero-padded to conv_row(depth) values."""
    rows = data.reshape(data.shape[0], -1)
    padded = np.zeros((rows.shape[0], conv_row(rows.shape[1])), rows.dtype)
    padded[:, :rows.shape[1]] = rows
    return padded


def filter_padding_bytes(op: Op, w: Tensor) -> int:
    """The flash the zero padding of conv_filter adds to `op`'s filter (0 for other kernels)."""
    if op.attrs.get("kernel") not in CONV_KERNELS:
        return 0
    depth = w.size // w.shape[0]
    return w.shape[0] * (conv_row(depth) - depth)


def columns_bytes(depth: int) -> int:
    """Mirrors conv2d.c's column buffer: four output pixels' windows as int16, of a padded row."""
    return conv_row(depth) * 4 * 2


def conv2d_scratch_bytes(filter_shape: tuple[int, ...]) -> int:
    """Mirrors mcugen_conv2d_s8_scratch_size(): the columns plus one int8 window."""
    _, kh, kw, ic = filter_shape
    depth = kh * kw * ic
    return columns_bytes(depth) + (depth + 3) // 4 * 4


_SIMPLE_KERNELS = {
    "DEPTHWISE_CONV_2D": "mcugen_depthwise_conv2d_s8",
    "FULLY_CONNECTED": "mcugen_fully_connected_s8",
    "AVERAGE_POOL_2D": "mcugen_avg_pool2d_s8",
    "MAX_POOL_2D": "mcugen_max_pool2d_s8",
    "ADD": "mcugen_add_s8",
    "MUL": "mcugen_mul_s8",
    "SOFTMAX": "mcugen_softmax_s8",
    "LOGISTIC": "mcugen_logistic_s8",
    "MEAN": "mcugen_mean_hw_s8",
    "PAD": "mcugen_pad_s8",
    "CONCATENATION": "mcugen_concatenation_s8",
    "QUANTIZE": "mcugen_requantize_s8",
}


# ---- per-op code ----

def layer_code(ctx: EmitContext, index: int, op: Op) -> LayerCode:
    graph = ctx.graph
    for t in [*graph.op_inputs(op), *graph.op_outputs(op)]:
        if t is not None and not t.is_const and (t.dtype.is_float or t.dtype.bits > 8):
            raise UserError(f"op {index} ({op.kind}): tensor '{t.name}' is {t.dtype}; generated code supports "
                            "int8 and packed 2/4-bit activations")
    code = LayerCode(index=index, op=op.kind, kernel=op.attrs.get("kernel"), variant=_variant(graph, op, index))
    if op.kind in ("RESHAPE", "SQUEEZE"):
        if index in ctx.plan.copies:
            size = graph.tensor(op.outputs[0]).nbytes
            code.statement = f"memcpy({ctx.pointer(op.outputs[0], True)}, {ctx.pointer(op.inputs[0])}, {size});"
        return code
    if "residual_block" in op.attrs:
        _residual_member(ctx, index, op, code)
        return code
    _EMITTERS[op.kind](ctx, index, op, code)
    return code


def _dims_struct(ctx: EmitContext, code: LayerCode, role: str, shape) -> str:
    n, h, w, c = dims4(shape)
    name = f"L{code.index}_{role}_dims"
    code.structs.append(c_struct("mcugen_dims", name, n=n, h=h, w=w, c=c))
    return f"&{name}"


def _quant_struct(code: LayerCode, multiplier: np.ndarray, shift: np.ndarray) -> str:
    prefix = f"L{code.index}"
    code.arrays.append(c_array(f"{prefix}_multiplier", np.asarray(multiplier, np.int32)))
    code.arrays.append(c_array(f"{prefix}_shift", np.asarray(shift, np.int32)))
    code.structs.append(c_struct("mcugen_quant_params", f"{prefix}_quant", multiplier=f"{prefix}_multiplier",
                                 shift=f"{prefix}_shift", count=int(np.size(multiplier))))
    return f"&{prefix}_quant"


def _params_struct(code: LayerCode, ctype: str, params, skip=()) -> str:
    fields = {k: v for k, v in vars(params).items() if k not in skip}
    code.structs.append(c_struct(ctype, f"L{code.index}_params", **fields))
    return f"&L{code.index}_params"


def _weighted(ctx: EmitContext, index: int, op: Op, code: LayerCode) -> None:
    graph = ctx.graph
    x, w, b = graph.op_inputs(op)[:3] if len(op.inputs) >= 3 else (*graph.op_inputs(op), None)
    y = graph.tensor(op.outputs[0])
    p = lower(graph, op)
    bias = _bias(ctx, b)
    if op.kind == "FULLY_CONNECTED":
        units, depth = w.shape
        batches = x.size // depth
        in_dims = _dims_struct(ctx, code, "input", (batches, 1, 1, depth))
        f_dims = _dims_struct(ctx, code, "filter", (units, 1, 1, depth))
        out_dims = _dims_struct(ctx, code, "output", (batches, 1, 1, units))
        if code.variant is None and p.input_offset != 0:
            p, bias = _fold_input_offset(code, p, w, b)
        params = _params_struct(code, "mcugen_fully_connected_params", p, skip=("multiplier", "shift"))
    else:
        in_dims = _dims_struct(ctx, code, "input", x.shape)
        f_dims, params = _conv_structs(ctx, code, w, p)
        out_dims = _dims_struct(ctx, code, "output", y.shape)
    quant = _quant_struct(code, p.multiplier, p.shift)
    scratch = f"{ctx.scratch(index)}, " if code.kernel in ("mcugen_conv2d_s8", "mcugen_conv2d_1x1_s8") or code.variant else ""
    element = _element(code)
    code.statement = (f"{code.kernel}({scratch}{params}, {quant}, {in_dims}, {ctx.pointer(x.name, False, element)}, "
                      f"{f_dims}, {ctx.weights(w)}, {bias}, {out_dims}, {ctx.pointer(y.name, True, element)});")


def _fold_input_offset(code: LayerCode, p, w: Tensor, b: Tensor | None):
    """An int8 FULLY_CONNECTED's params without the input offset, and the bias that takes it in:
    sum_k (x + xo)(w + wo) = sum_k x (w + wo) + xo * sum_k (w + wo), the last term one constant
    per unit, so that the kernel's hot loop multiplies raw inputs. Wrapped to int32 as the
    reference wraps the accumulator."""
    weights = w.data.astype(np.int64) + p.filter_offset
    folded = (0 if b is None else b.data.astype(np.int64)) + p.input_offset * weights.sum(axis=1)
    name = f"L{code.index}_bias"
    code.arrays.append(c_array(name, wrap_int32(folded).astype(np.int32)))
    code.replaced = () if b is None else (b.name,)
    return replace(p, input_offset=0), name


def _conv_structs(ctx: EmitContext, code: LayerCode, w: Tensor, p) -> tuple[str, str]:
    """The filter dims and mcugen_conv_params of a conv or depthwise layer."""
    f_dims = _dims_struct(ctx, code, "filter", w.shape)
    return f_dims, _params_struct(code, "mcugen_conv_params", p, skip=("multiplier", "shift"))


def _bias(ctx: EmitContext, b: Tensor | None) -> str:
    return ctx.weights(b) if b is not None else "NULL"


def _residual_member(ctx: EmitContext, index: int, op: Op, code: LayerCode) -> None:
    """An op of a streamed residual block (passes/stream_residual.py): each op keeps its own
    constants (a conv as one mcugen_conv_layer), and the first op's statement runs the block."""
    graph = ctx.graph
    first, second, add = op.attrs["residual_block"]
    if op.kind == "CONV_2D":
        _, w, b = (graph.op_inputs(op) + [None])[:3]  # the bias is optional
        p = lower(graph, op)
        f_dims, params = _conv_structs(ctx, code, w, p)
        code.structs.append(c_struct("mcugen_conv_layer", f"L{index}_conv", kernel=code.kernel, params=params,
                                     quant=_quant_struct(code, p.multiplier, p.shift), filter_dims=f_dims,
                                     filter=ctx.weights(w), bias=_bias(ctx, b)))
    else:  # the ADD, with the conv branch as input1
        code.structs.append(_binary_params(ctx, index, op, swap=op.inputs[0] != graph.ops[second].outputs[0]))
    if index != first:
        code.statement = f"/* computed in layer {first} */"
        return
    x, out = graph.tensor(op.inputs[0]), graph.ops[add].outputs[0]
    code.calls = (BLOCK_KERNEL,)
    code.statement = (f"{BLOCK_KERNEL}({ctx.scratch(index)}, &L{first}_conv, &L{second}_conv, &L{add}_params, "
                      f"{_dims_struct(ctx, code, 'input', x.shape)}, {ctx.pointer(x.name)}, "
                      f"{ctx.pointer(out, True)});")


def _element(code: LayerCode) -> str:
    """The C type of the activation (and weight) pointers: mixed kernels take packed bytes."""
    return "uint8_t" if code.variant else "int8_t"


def _pool(ctx: EmitContext, index: int, op: Op, code: LayerCode) -> None:
    x, y = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.outputs[0])
    params = _params_struct(code, "mcugen_pool_params", lower(ctx.graph, op))
    element = _element(code)
    code.statement = (f"{code.kernel}({params}, {_dims_struct(ctx, code, 'input', x.shape)}, "
                      f"{ctx.pointer(x.name, False, element)}, {_dims_struct(ctx, code, 'output', y.shape)}, "
                      f"{ctx.pointer(y.name, True, element)});")


def _broadcast(op: Op, a: Tensor, b: Tensor, index: int) -> tuple[bool, int]:
    """(swap inputs?, size2) for the kernels' "input2 repeats" broadcast."""
    for swap, (big, small) in ((False, (a, b)), (True, (b, a))):
        if small.size == big.size and small.shape == big.shape:
            return swap, small.size
        inner = tuple(d for d in small.shape)
        while inner and inner[0] == 1:
            inner = inner[1:]
        if small.size == 1 or (inner and big.shape[-len(inner):] == inner):
            return swap, small.size
    raise UserError(f"op {index} ({op.kind}): broadcasting {list(a.shape)} with {list(b.shape)} is not supported")


def _binary_params(ctx: EmitContext, index: int, op: Op, swap: bool) -> CStruct:
    """The ADD or MUL params struct; with `swap`, input1 and input2 trade their fields."""
    fields = vars(lower(ctx.graph, op))
    if swap:
        fields = {k.replace("input1", "#").replace("input2", "input1").replace("#", "input2"): v for k, v in fields.items()}
    ctype = "mcugen_add_params" if op.kind == "ADD" else "mcugen_mul_params"
    return c_struct(ctype, f"L{index}_params", **fields)


def _elementwise(ctx: EmitContext, index: int, op: Op, code: LayerCode) -> None:
    a, b = (ctx.graph.tensor(n) for n in op.inputs[:2])
    y = ctx.graph.tensor(op.outputs[0])
    swap, size2 = _broadcast(op, a, b, index)
    if swap:
        a, b = b, a
    code.structs.append(_binary_params(ctx, index, op, swap))
    element = _element(code)
    code.statement = (f"{code.kernel}(&L{index}_params, {ctx.pointer(a.name, False, element)}, "
                      f"{ctx.pointer(b.name, False, element)}, {y.size}, {size2}, {ctx.pointer(y.name, True, element)});")


def _softmax(ctx: EmitContext, index: int, op: Op, code: LayerCode) -> None:
    x, y = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.outputs[0])
    params = _params_struct(code, "mcugen_softmax_params", lower(ctx.graph, op))
    depth = x.shape[-1]
    code.statement = f"{code.kernel}({params}, {x.size // depth}, {depth}, {ctx.pointer(x.name)}, {ctx.pointer(y.name, True)});"


def _unary(ctype: str):
    def emit(ctx: EmitContext, index: int, op: Op, code: LayerCode) -> None:
        x, y = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.outputs[0])
        params = _params_struct(code, ctype, lower(ctx.graph, op))
        code.statement = f"{code.kernel}({params}, {x.size}, {ctx.pointer(x.name)}, {ctx.pointer(y.name, True)});"
    return emit


def _mean(ctx: EmitContext, index: int, op: Op, code: LayerCode) -> None:
    """Any contiguous run of axes: viewed as {outer, 1, reduced, inner}, the H x W kernel applies."""
    x, y = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.outputs[0])
    axes = sorted({a % len(x.shape) for a in op.attrs["axis"]})
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise UserError(f"op {index} (MEAN): generated code reduces over contiguous axes only, not {axes}")
    outer, reduced, inner = (int(np.prod(x.shape[s], dtype=np.int64)) for s in
                             (slice(0, axes[0]), slice(axes[0], axes[-1] + 1), slice(axes[-1] + 1, None)))
    params = _params_struct(code, "mcugen_mean_params", lower(ctx.graph, op))
    code.statement = (f"{code.kernel}({params}, {_dims_struct(ctx, code, 'input', (outer, 1, reduced, inner))}, "
                      f"{ctx.pointer(x.name)}, {ctx.pointer(y.name, True)});")


def _pad(ctx: EmitContext, index: int, op: Op, code: LayerCode) -> None:
    x, y = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.outputs[0])
    p = lower(ctx.graph, op)
    paddings = [(0, 0)] * (4 - len(p.paddings)) + list(p.paddings)
    if len(x.shape) == 2:
        paddings = [p.paddings[0], (0, 0), (0, 0), p.paddings[1]]
    code.structs.append(c_struct("mcugen_pad_params", f"L{index}_params", before=[b for b, _ in paddings],
                                 after=[a for _, a in paddings], pad_value=int(p.pad_value)))
    code.statement = (f"{code.kernel}(&L{index}_params, {_dims_struct(ctx, code, 'input', x.shape)}, "
                      f"{ctx.pointer(x.name)}, {ctx.pointer(y.name, True)});")


def _concatenation(ctx: EmitContext, index: int, op: Op, code: LayerCode) -> None:
    graph = ctx.graph
    y = graph.tensor(op.outputs[0])
    axis = lower(graph, op).axis
    inner = int(np.prod(y.shape[axis + 1:], dtype=np.int64))
    sizes = [graph.tensor(n).shape[axis] * inner for n in op.inputs]
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    code.arrays.append(c_array(f"L{index}_copy_size", np.asarray(sizes, np.int32)))
    pointers = ", ".join(ctx.pointer(n) for n in op.inputs)
    code.statement = (f"{{ const int8_t *const inputs[] = {{{pointers}}}; "
                      f"{code.kernel}({len(sizes)}, inputs, L{index}_copy_size, {outer}, {ctx.pointer(y.name, True)}); }}")


def _quantize(ctx: EmitContext, index: int, op: Op, code: LayerCode) -> None:
    x = ctx.graph.tensor(op.inputs[0])
    if x.dtype.is_float:
        raise UserError(f"op {index} (QUANTIZE): float32 model inputs are not supported by generated code")
    _unary("mcugen_requantize_params")(ctx, index, op, code)


_EMITTERS = {
    "CONV_2D": _weighted,
    "DEPTHWISE_CONV_2D": _weighted,
    "FULLY_CONNECTED": _weighted,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "ADD": _elementwise,
    "MUL": _elementwise,
    "SOFTMAX": _softmax,
    "LOGISTIC": _unary("mcugen_logistic_params"),
    "MEAN": _mean,
    "PAD": _pad,
    "CONCATENATION": _concatenation,
    "QUANTIZE": _quantize,
}
