"""Writes the C library of a planned graph: `{name}.h`, `{name}.c`, weights, kernels, CMake.

The output is a drop-in static library: no file defines `main`, only the kernels the model calls
are copied, and the same graph always gives byte-identical files.
"""
from __future__ import annotations

import re
import shutil
from functools import lru_cache
from pathlib import Path

import jinja2
import numpy as np

import mcugen
from mcugen.codegen import mixed
from mcugen.codegen.cformat import CArray, c_array
from mcugen.codegen.layers import CONV_KERNELS, EmitContext, LayerCode, conv_filter, layer_code
from mcugen.errors import UserError
from mcugen.ir import Graph
from mcugen.resources import kernels_dir, templates_dir

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_name(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise UserError(f"--name {name!r} is not a C identifier (letters, digits and _, not starting with a digit)")
    return name


def template_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


@lru_cache(maxsize=1)
def _kernel_sources() -> dict[str, Path]:
    """C function name -> the kernel source file that defines it."""
    found = {}
    for src in sorted((kernels_dir() / "src").glob("*.c")):
        for match in re.finditer(r"^\w[\w\s\*]*?\b(mcugen_\w+)\s*\(", src.read_text(), re.M):
            found.setdefault(match.group(1), src)
    return found


def _weight_arrays(ctx: EmitContext, layers: list[LayerCode]) -> list[CArray]:
    arrays, seen = [], set()
    for index, op in enumerate(ctx.graph.ops):
        if op.kind not in WEIGHTED_OPS:
            continue
        for t in ctx.graph.op_inputs(op)[1:3]:
            if t is None or t.name in seen or t.name in layers[index].replaced:
                continue
            seen.add(t.name)
            if layers[index].variant is not None and t.dtype.bits <= 8:
                data = mixed.packed_weights(t)
            elif layers[index].kernel in CONV_KERNELS and t.name == op.inputs[1]:
                data = conv_filter(t.data.astype(np.int8))
            else:
                data = t.data.astype(np.int32 if t.dtype.bits > 8 else np.int8)
            arrays.append(c_array(ctx.weights(t), data, comment=f"{t.name}: {t.dtype} {list(t.shape)} (op {index})"))
    return arrays


def mixed_sources(variants: list[mixed.Variant], name: str) -> dict[str, str]:
    """The wrappers that instantiate `variants`: {file name: C source}, one file per op."""
    by_op: dict[str, list[mixed.Variant]] = {}
    for variant in sorted(set(variants), key=lambda v: v.name):
        by_op.setdefault(variant.op, []).append(variant)
    template = template_env().get_template("model/mixed_variants.c.j2")
    sources = {}
    for op, group in sorted(by_op.items()):
        filename = f"mixed_{op}_variants.c"
        sources[filename] = template.render(filename=filename, op=op, name=name, variants=group,
                                            version=mcugen.__version__)
    return sources


def _describe(graph: Graph, names: list[str]) -> str:
    """Type and shape of each buffer, with the quantization (real = scale * (q - zero point)) a
    caller needs to fill or read it."""
    def one(t) -> str:
        quant = f" (scale {t.quant.s:.9g}, zero point {t.quant.zp})" if t.quant is not None and not t.quant.per_channel else ""
        packed = ", packed (element 0 in the low bits)" if t.dtype.bits < 8 else ""
        return f"{t.dtype}{list(t.shape)}{quant}{packed}"

    return " + ".join(one(graph.tensor(n)) for n in names)


def generate(graph: Graph, out_dir: Path, name: str, model_label: str) -> list[Path]:
    """Write the library into `out_dir`; returns the C sources (relative) that make it up."""
    check_name(name)
    ctx = EmitContext(graph=graph, name=name)
    plan = graph.attrs["memory_plan"]
    layers = [layer_code(ctx, index, op) for index, op in enumerate(graph.ops)]
    sources = _kernel_sources()
    variants = [layer.variant for layer in layers if layer.variant is not None]
    kernels = sorted({k for layer in layers if layer.variant is None for k in (layer.kernel, *layer.calls) if k})
    missing = [k for k in kernels if k not in sources]
    if missing:
        raise UserError(f"no C kernel defines {', '.join(missing)}")
    kernel_files = sorted({sources[k] for k in kernels})

    values = {
        "name": name,
        "NAME": name.upper(),
        "version": mcugen.__version__,
        "model": model_label,
        "input_bytes": plan.input_bytes,
        "output_bytes": plan.output_bytes,
        "input_desc": _describe(graph, graph.inputs),
        "output_desc": _describe(graph, graph.outputs),
        "arena_bytes": plan.arena_bytes,
        "arena_array_bytes": max(plan.arena_bytes, 8),
        "input_slot": plan.slots["input"].offset,
        "output_slot": plan.slots["output"].offset,
        "layers": layers,
        "arrays": _weight_arrays(ctx, layers),
        "mixed": bool(variants),
    }
    env = template_env()
    files = {
        f"{name}.h": "model/model.h.j2",
        f"{name}.c": "model/model.c.j2",
        f"{name}_weights.h": "model/weights.h.j2",
        f"{name}_weights.c": "model/weights.c.j2",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for filename, template in files.items():
        (out_dir / filename).write_text(env.get_template(template).render(values))

    (out_dir / "kernels" / "include").mkdir(parents=True, exist_ok=True)
    (out_dir / "kernels" / "src").mkdir(parents=True, exist_ok=True)
    for header in sorted((kernels_dir() / "include").glob("*.h")):
        if variants or header.name not in mixed.HEADERS:
            shutil.copyfile(header, out_dir / "kernels" / "include" / header.name)
    for src in kernel_files:
        shutil.copyfile(src, out_dir / "kernels" / "src" / src.name)
    for body in sorted({v.body for v in variants}):
        shutil.copyfile(kernels_dir() / "src" / body, out_dir / "kernels" / "src" / body)
    wrappers = mixed_sources(variants, name)
    for filename, text in wrappers.items():
        (out_dir / "kernels" / "src" / filename).write_text(text)

    c_sources = ([Path(f"{name}.c"), Path(f"{name}_weights.c")]
                 + sorted(Path("kernels/src") / f for f in [*(f.name for f in kernel_files), *wrappers]))
    (out_dir / "CMakeLists.txt").write_text(
        env.get_template("model/CMakeLists.txt.j2").render(name=name, sources=[s.as_posix() for s in c_sources]))
    return c_sources
