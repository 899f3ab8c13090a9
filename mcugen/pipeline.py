"""The compiler in one screen: the pass list, and the build/verify/run/bench flows over OUT/.

`mcugen build` reads the model, runs PASSES, checks the budgets, writes the C library and the
report into a staging directory, builds the firmware, verifies bit-exactness on the host, and
only then moves the result to OUT/ — so a failed build never leaves an OUT/ that looks complete.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcugen.boards import Board, load_board, parse_size
from mcugen.errors import UserError
from mcugen.frontend import load_tflite
from mcugen.ir import Graph
from mcugen.inputs import load_calibration
from mcugen.ir_io import load_graph, save_graph
from mcugen.passes.assign_bits import assign_bits
from mcugen.passes.calibrate import calibrate
from mcugen.passes.canonicalize import canonicalize
from mcugen.passes.order_ops import order_ops
from mcugen.passes.plan_memory import plan_memory
from mcugen.passes.prune import prune
from mcugen.passes.quantize import quantize
from mcugen.passes.select_kernels import select_kernels
from mcugen.passes.stream_residual import stream_residual
from mcugen.quant.packing import pack, unpack

# Each pass is a function Graph -> Graph, run in this order. Model passes change what the
# network computes (and read their options from graph.attrs["options"]); the compiled graph they
# produce is saved in OUT/, so that OUT/ can be verified alone. Backend passes only decide how the
# C code runs it, and are re-run deterministically when OUT/ is loaded.
MODEL_PASSES: tuple = (canonicalize, calibrate, prune, assign_bits, quantize)
BACKEND_PASSES = (select_kernels, order_ops, stream_residual, plan_memory)
PASSES = MODEL_PASSES + BACKEND_PASSES

BUILD_INFO = "build.json"


def compile_model(graph: Graph, options: dict | None = None) -> Graph:
    """Run the model passes. What they report for the build report goes in graph.attrs["report"]."""
    graph = graph.copy()
    graph.attrs["options"] = dict(options or {})
    graph.attrs.setdefault("report", {})
    for compiler_pass in MODEL_PASSES:
        graph = compiler_pass(graph)
    return graph


def compile_backend(graph: Graph) -> Graph:
    for compiler_pass in BACKEND_PASSES:
        graph = compiler_pass(graph)
    return graph


def compile_graph(graph: Graph, options: dict | None = None) -> Graph:
    return compile_backend(compile_model(graph, options))


def say(message: str) -> None:
    print(message, flush=True)


@dataclass
class BuildOptions:
    model: Path
    board: str
    out_dir: Path
    name: str = "model"
    ram: str | None = None
    flash: str | None = None
    verify: bool = True
    verify_inputs: int = 10
    firmware: bool = True
    bits: str = "auto"
    bits_strategy: str = "sensitivity"
    calib: Path | None = None
    calib_method: str | None = None
    prune: str | None = None
    prune_criterion: str = "l1"
    macs: str | None = None


@dataclass(frozen=True)
class Budget:
    ro_bytes: int
    rw_bytes: int


def _budget(board: Board, flash: str | None, ram: str | None) -> Budget:
    def size(text: str | None, default: int, flag: str) -> int:
        if text is None:
            return default
        try:
            return parse_size(text)
        except ValueError as exc:
            raise UserError(f"{flag}: {exc}") from None

    return Budget(ro_bytes=size(flash, board.flash.size, "--flash"), rw_bytes=size(ram, board.ram.size, "--ram"))


# Rough code size of one kernel source and of the network's own glue, for the pre-build
# estimate only; the firmware ELF, when built, gives the measured figure.
KERNEL_CODE_BYTES = 1200
NETWORK_CODE_BYTES_PER_LAYER = 48


def estimate(graph: Graph, board: Board, layers: list[dict]) -> dict:
    plan = graph.attrs["memory_plan"]
    kernels = {op.attrs.get("kernel") for op in graph.ops} - {None}
    code = KERNEL_CODE_BYTES * len(kernels) + NETWORK_CODE_BYTES_PER_LAYER * len(graph.ops)
    ro = sum(row["ro_bytes"] for row in layers) + code
    rw = plan.arena_bytes + board.stack_bytes  # input and output live in the arena's slots
    est = {"ro_bytes": ro, "rw_bytes": rw, "arena_bytes": plan.arena_bytes, "input_bytes": plan.input_bytes,
           "output_bytes": plan.output_bytes, "stack_bytes": board.stack_bytes, "code_bytes": code}
    if "op_order" in graph.attrs:  # order_ops changed the order: what the file's order would take
        est["file_order_arena_bytes"] = graph.attrs["op_order"]["file_order_arena_bytes"]
    return est


def _check_estimate(graph: Graph, est: dict, budget: Budget, layers: list[dict]) -> None:
    if est["ro_bytes"] > budget.ro_bytes:
        top = sorted(layers, key=lambda r: -r["ro_bytes"])[:3]
        names = ", ".join(f"layer {r['index']} {r['op']} {r['ro_bytes']:,} B" for r in top)
        raise UserError(
            f"does not fit: flash (RO) budget {budget.ro_bytes:,} B, estimate {est['ro_bytes']:,} B "
            f"(weights and parameters {est['ro_bytes'] - est['code_bytes']:,} B, code ~{est['code_bytes']:,} B); "
            f"largest: {names}. Raise --flash, choose a board with more flash, or let mcugen compress "
            f"(--bits auto, --prune auto)")
    if est["rw_bytes"] > budget.rw_bytes:
        plan = graph.attrs["memory_plan"]
        peak_op = int(np.argmax(plan.peak_by_op)) if plan.peak_by_op else 0
        live = sorted(((name, p.size) for name, p in plan.tensors.items() if p.region == "arena"), key=lambda x: -x[1])[:3]
        names = ", ".join(f"'{n}' {s:,} B" for n, s in live)
        raise UserError(
            f"does not fit: RAM (RW) budget {budget.rw_bytes:,} B, estimate {est['rw_bytes']:,} B (arena "
            f"{est['arena_bytes']:,} B peaking at op {peak_op} ({graph.ops[peak_op].kind if graph.ops else '-'}), "
            f"input and output slots {est['input_bytes'] + est['output_bytes']:,} B among them, stack "
            f"{est['stack_bytes']:,} B); "
            f"largest activations: {names}. Raise --ram, choose a board with more RAM, or let mcugen compress "
            f"(--bits auto, --prune auto)")


def _staging_dir(out_dir: Path) -> Path:
    staging = out_dir.parent / f".{out_dir.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _commit(staging: Path, out_dir: Path) -> None:
    if out_dir.exists():
        if not (out_dir / BUILD_INFO).exists() and any(out_dir.iterdir()):
            raise UserError(f"{out_dir} exists and is not an mcugen build output; choose another -o")
        shutil.rmtree(out_dir)
    staging.rename(out_dir)


def build(opts: BuildOptions) -> bool:
    """Run the whole build; returns True when the result fits and is bit-exact."""
    from mcugen.codegen.emit import check_name, generate
    from mcugen.report import layer_rows, write_reports

    check_name(opts.name)
    board = load_board(opts.board)
    budget = _budget(board, opts.flash, opts.ram)
    say(f"[1/5] reading {opts.model}")
    graph = load_tflite(opts.model)
    say(f"      {len(graph.ops)} ops, {sum(t.nbytes for t in graph.tensors.values() if t.is_const):,} B of constants")
    say("[2/5] compiling: " + ", ".join(p.__name__ for p in PASSES))
    options = {"board": board.name, "budget": vars(budget), "stack_bytes": board.stack_bytes, "bits": opts.bits,
               "bits_strategy": opts.bits_strategy, "calib_method": opts.calib_method,
               "prune": opts.prune, "prune_criterion": opts.prune_criterion, "macs": opts.macs}
    graph.attrs["calibration"] = load_calibration(opts.calib, graph)
    compiled = compile_model(graph, options)
    graph = compile_backend(compiled)
    layers = layer_rows(graph)
    est = estimate(graph, board, layers)
    _check_estimate(graph, est, budget, layers)

    staging = _staging_dir(opts.out_dir)
    try:
        say(f"[3/5] generating C into {opts.out_dir}")
        generate(graph, staging, opts.name, opts.model.name)
        save_graph(compiled, staging)
        info = {"model": opts.model.name, "board": board.name, "name": opts.name,
                "model_sha256": hashlib.sha256(opts.model.read_bytes()).hexdigest()}
        (staging / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n")
        report = {
            "model": opts.model.name,
            "board": board.name,
            "name": opts.name,
            "budget": {"ro_bytes": budget.ro_bytes, "rw_bytes": budget.rw_bytes},
            "estimate": est,
            "layers": layers,
            **compiled.attrs.get("report", {}),
            "verification": {},
        }
        fits = True
        elf = _firmware_step(staging, board, opts, budget, report)
        if elf is not None:
            fits = report["elf"]["ro_bytes"] <= budget.ro_bytes and report["elf"]["rw_bytes"] <= budget.rw_bytes
            if not fits:
                _raise_elf_budget(elf, report["elf"], budget)
        exact = True
        if opts.verify:
            say(f"[5/5] verifying on the host ({opts.verify_inputs} random inputs, seed 0)")
            result = verify_graph_on_host(staging, graph, opts.name, count=opts.verify_inputs, seed=0)
            report["verification"]["host"] = result.summary()
            exact = result.ok
            say(f"      {result.summary()}")
        else:
            say("[5/5] host verification skipped (--no-verify)")
        write_reports(staging, report)
        _commit(staging, opts.out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    _summary(report, budget, exact, opts)
    return fits and exact


def _firmware_step(staging: Path, board: Board, opts: BuildOptions, budget: Budget, report: dict) -> Path | None:
    from mcugen.toolchain.elf_size import elf_sizes
    from mcugen.toolchain.firmware import build_firmware, toolchain_available, write_firmware

    if not opts.firmware:
        say("[4/5] firmware skipped (--no-firmware)")
        return None
    if not toolchain_available(board):
        say(f"[4/5] firmware skipped: {board.cross_prefix}gcc is not installed")
        return None
    say(f"[4/5] building firmware for {board.name} ({board.core})")
    write_firmware(staging, board, opts.name)
    build_firmware(staging, board, for_board=True)
    elf = build_firmware(staging, board)
    sizes = elf_sizes(elf, board.stack_bytes)
    report["elf"] = sizes
    return elf


def _raise_elf_budget(elf: Path, sizes: dict, budget: Budget) -> None:
    from mcugen.toolchain.elf_size import largest_symbols

    for key, kind, label in (("ro_bytes", "ro", "flash (RO)"), ("rw_bytes", "rw", "RAM (RW)")):
        if sizes[key] > getattr(budget, key):
            top = ", ".join(f"{n} {s:,} B" for n, s in largest_symbols(elf, 3, kind))
            raise UserError(f"does not fit: {label} budget {getattr(budget, key):,} B, firmware ELF uses "
                            f"{sizes[key]:,} B; largest symbols: {top}")


def _summary(report: dict, budget: Budget, exact: bool, opts: BuildOptions) -> None:
    measured = report.get("elf")
    source = measured or report["estimate"]
    what = "ELF" if measured else "estimate"
    ro, rw = source["ro_bytes"], source["rw_bytes"]
    fits = ro <= budget.ro_bytes and rw <= budget.rw_bytes
    say("")
    say(f"{'fits' if fits else 'DOES NOT FIT'} on {report['board']}: "
        f"RO {ro:,} / {budget.ro_bytes:,} B ({100 * ro / budget.ro_bytes:.1f} %), "
        f"RW {rw:,} / {budget.rw_bytes:,} B ({100 * rw / budget.rw_bytes:.1f} %) [{what}]; "
        f"arena {report['estimate']['arena_bytes']:,} B")
    if "host" in report["verification"]:
        say(f"{'bit-exact' if exact else 'NOT bit-exact'}: {report['verification']['host']}")
    say(f"report: {opts.out_dir / 'report.md'}")


# ---- flows over an existing OUT/ ----

@dataclass
class BuiltOutput:
    """An OUT/ directory with the graph it was compiled from, rebuilt deterministically."""

    out_dir: Path
    graph: Graph
    board: Board
    name: str
    info: dict


def load_output_dir(out_dir: Path) -> BuiltOutput:
    info_path = out_dir / BUILD_INFO
    if not info_path.is_file():
        raise UserError(f"{out_dir} is not an mcugen build output (no {BUILD_INFO}); run mcugen build first")
    info = json.loads(info_path.read_text())
    graph = compile_backend(load_graph(out_dir))
    return BuiltOutput(out_dir=out_dir, graph=graph, board=load_board(info["board"]), name=info["name"], info=info)


def _packed(dtype) -> bool:
    """Integers of at most 8 bits travel packed (mcugen.quant.packing); wider types as they are."""
    return not dtype.is_float and dtype.bits <= 8


def pack_inputs(graph: Graph, input_sets: list[list[np.ndarray]]) -> bytes:
    def raw(t, x) -> bytes:
        return pack(x, t.dtype.bits) if _packed(t.dtype) else np.ascontiguousarray(x, t.dtype.numpy).tobytes()

    return b"".join(raw(graph.tensor(n), x) for inputs in input_sets for n, x in zip(graph.inputs, inputs))


def unpack_outputs(graph: Graph, raw: bytes, count: int) -> list[list[np.ndarray]]:
    plan = graph.attrs["memory_plan"]
    record = plan.output_bytes
    result = []
    for i in range(count):
        chunk = raw[i * record:(i + 1) * record]
        outs = []
        for name in graph.outputs:
            t, place = graph.tensor(name), plan.tensors[name]
            data = chunk[place.offset:place.offset + place.size]
            values = (unpack(data, t.dtype.bits, t.size, t.dtype.signed) if _packed(t.dtype)
                      else np.frombuffer(data, t.dtype.numpy))
            outs.append(values.reshape(t.shape))
        result.append(outs)
    return result


def _host_runner(out_dir: Path, name: str):
    from mcugen.toolchain.host import build_host_module

    sources = sorted(out_dir.glob("*.c")) + sorted((out_dir / "kernels" / "src").glob("*.c"))
    ffi, lib = build_host_module(f"_mcugen_{name}", f"int {name}_run(const void *input, void *output);",
                                 [p.resolve() for p in sources],
                                 [out_dir.resolve(), (out_dir / "kernels" / "include").resolve()])
    run = getattr(lib, f"{name}_run")

    def run_all(graph: Graph, packed: bytes, count: int) -> bytes:
        plan = graph.attrs["memory_plan"]
        out = bytearray(plan.output_bytes * count)
        out_buf = ffi.from_buffer(out)
        for i in range(count):
            inp = packed[i * plan.input_bytes:(i + 1) * plan.input_bytes]
            status = run(ffi.from_buffer(inp), out_buf + i * plan.output_bytes)
            if status != 0:
                raise UserError(f"{name}_run returned {status} on input {i}")
        return bytes(out)

    return run_all


def _compare(label: str, graph: Graph, input_sets, raw: bytes):
    from mcugen.reference.executor import run as run_reference
    from mcugen.verify import compare_sets

    expected = [run_reference(graph, inputs) for inputs in input_sets]
    return compare_sets(label, expected, unpack_outputs(graph, raw, len(input_sets)))


def verify_graph_on_host(out_dir: Path, graph: Graph, name: str, count: int, seed: int, input_sets=None):
    from mcugen.inputs import random_inputs

    input_sets = input_sets if input_sets is not None else random_inputs(graph, count, seed)
    raw = _host_runner(out_dir, name)(graph, pack_inputs(graph, input_sets), len(input_sets))
    return _compare("host", graph, input_sets, raw)


def _input_sets(built: BuiltOutput, count: int, seed: int, input_file: Path | None):
    from mcugen.inputs import load_inputs, random_inputs

    return load_inputs(input_file, built.graph) if input_file else random_inputs(built.graph, count, seed)


def _firmware_elf(built: BuiltOutput, profile: bool = False) -> Path:
    from mcugen.toolchain.firmware import build_firmware, toolchain_available, write_firmware

    if not toolchain_available(built.board):
        raise UserError(f"{built.board.cross_prefix}gcc is not installed; run scripts/setup.sh (apt packages) first")
    if not (built.out_dir / "firmware").is_dir():
        write_firmware(built.out_dir, built.board, built.name)
    return build_firmware(built.out_dir, built.board, profile=profile)


def verify_output_dir(out_dir: Path, where: str, count: int, seed: int, input_file: Path | None = None):
    built = load_output_dir(out_dir)
    input_sets = _input_sets(built, count, seed, input_file)
    if where == "host":
        return verify_graph_on_host(out_dir, built.graph, built.name, count, seed, input_sets)
    from mcugen.toolchain.qemu import run_firmware

    elf = _firmware_elf(built)
    plan = built.graph.attrs["memory_plan"]
    raw = run_firmware(elf, built.board, pack_inputs(built.graph, input_sets), plan.output_bytes)
    return _compare("qemu", built.graph, input_sets, raw)


def run_output_dir(out_dir: Path, input_file: Path | None, seed: int) -> list[str]:
    """Run the firmware under QEMU and describe each output (raw values and dequantized)."""
    from mcugen.toolchain.qemu import run_firmware

    built = load_output_dir(out_dir)
    input_sets = _input_sets(built, 1, seed, input_file)
    elf = _firmware_elf(built)
    plan = built.graph.attrs["memory_plan"]
    raw = run_firmware(elf, built.board, pack_inputs(built.graph, input_sets), plan.output_bytes)
    lines = []
    for i, outputs in enumerate(unpack_outputs(built.graph, raw, len(input_sets))):
        for name, value in zip(built.graph.outputs, outputs):
            t = built.graph.tensor(name)
            lines.append(f"input {i} output '{name}' {t.dtype}{list(t.shape)}: {value.reshape(-1).tolist()}")
            if t.quant is not None and value.size <= 64:
                real = (value.astype(np.float64) - t.quant.zp) * t.quant.s
                lines.append("  dequantized: " + " ".join(f"{v:.4f}" for v in real.reshape(-1)))
    return lines


def flash_output_dir(out_dir: Path, probe: str, dry_run: bool) -> str:
    from mcugen.toolchain.firmware import build_firmware
    from mcugen.toolchain.flash import flash

    built = load_output_dir(out_dir)
    _firmware_elf(built)
    elf = build_firmware(out_dir, built.board, for_board=True)
    return flash(elf, built.board, probe, dry_run=dry_run)


def bench_output_dir(out_dir: Path):
    from mcugen.bench import run_bench

    built = load_output_dir(out_dir)
    return run_bench(built, _firmware_elf(built), _firmware_elf(built, profile=True))
