"""Structured pruning (issue 6): channel groups, graph surgery, bias folding, the CLI and reports.

The pruned graph is an ordinary int8 graph, so the usual contract holds: the reference defines it
and the generated C matches it bit for bit (host here; QEMU in the tests marked qemu).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_model
from mcugen.codegen.emit import generate
from mcugen.frontend import load_tflite
from mcugen.inputs import load_calibration, random_inputs
from mcugen.ir import INT8, Op, Quant, Tensor
from mcugen.ir_io import load_graph
from mcugen.pipeline import compile_graph, compile_model, pack_inputs, unpack_outputs
from mcugen.prune.pruner import Pruner
from mcugen.prune.surgery import prune_graph
from mcugen.quant.fidelity import run_many
from mcugen.reference.executor import run
from mcugen.testing import ModelBuilder, random_model
from mcugen.toolchain.firmware import toolchain_available
from mcugen.boards import load_board

CRITERIA = ("l1", "l2", "apoz", "mean")
BATCH = 10  # random models compiled into one host module (the kernels compile once per batch)


def _build(cli, model: Path, out: Path, *extra: str) -> dict:
    status, stdout, stderr = cli("build", model, "--board", "stm32f746", "-o", out, *extra)
    assert status == 0, stdout + stderr
    return json.loads((out / "report.json").read_text())


def _with_calibration(graph, count: int = 16):
    graph.attrs["calibration"] = load_calibration(None, graph, count=count)
    return graph


# ---- the shared models ----

def test_kws_half_pruned_cuts_macs_and_stays_bit_exact(tmp_path, cli):
    out = tmp_path / "kws"
    report = _build(cli, shared_model("kws"), out, "--prune", "0.5", "--no-firmware")
    pruning = report["pruning"]
    assert pruning["macs_after"] <= 0.6 * pruning["macs_before"]
    assert sum(row["macs"] for row in report["layers"]) == pruning["macs_after"]
    assert [g["channels_kept"] for g in pruning["groups"]] == [32] * 5
    assert report["verification"]["host"] == "host: 10/10 inputs bit-exact"
    status, stdout, _ = cli("verify", out, "--inputs", "20")
    assert (status, stdout.splitlines()[0]) == (0, "host: 20/20 inputs bit-exact")
    md = (out / "report.md").read_text()
    assert "## Pruning" in md and "| 2 | conv_2d_2 | 32 / 64 | 512,000 | 128,000 | l1 |" in md


def test_resnet8_residual_groups_share_one_channel_set(tmp_path, cli):
    out = tmp_path / "resnet8"
    report = _build(cli, shared_model("resnet8"), out, "--prune", "0.3", "--no-firmware")
    groups = {tuple(g["layers"]): (g["channels_kept"], g["channels"]) for g in report["pruning"]["groups"]}
    assert groups == {("conv_2d_0", "conv_2d_2"): (12, 16), ("conv_2d_1",): (12, 16), ("conv_2d_4",): (23, 32),
                      ("conv_2d_5", "conv_2d_6"): (23, 32), ("conv_2d_8",): (45, 64),
                      ("conv_2d_9", "conv_2d_10"): (45, 64)}
    graph = load_graph(out)
    for op in graph.ops:
        if op.kind == "ADD":
            assert len({graph.tensor(n).shape for n in [*op.inputs, *op.outputs]}) == 1
    fidelity = report["fidelity"]
    assert fidelity == report["pruning"]["fidelity"]
    assert fidelity["inputs"] == 64 and 0.0 <= fidelity["top1_agreement"] <= 1.0 and fidelity["sqnr_db"] > 0
    assert report["verification"]["host"] == "host: 10/10 inputs bit-exact"


def test_folding_removed_channels_into_biases_improves_fidelity():
    """The pruned model stays closer to the original with the mean contributions folded in."""
    graph = _with_calibration(load_tflite(shared_model("kws")))
    pruner = Pruner(graph, "l1", graph.attrs["calibration"]["inputs"])
    cut = pruner.cut({i: 0.5 for i in range(len(pruner.cg.spaces))})
    folded = pruner.fidelity(pruner.prune(cut), cut)
    at_zero_point = {name: np.full_like(v, graph.tensor(name).quant.zp) for name, v in pruner.values.items()}
    unfolded = pruner.fidelity(prune_graph(graph, cut, at_zero_point), cut)  # nothing to fold
    assert folded["sqnr_db"] > unfolded["sqnr_db"] + 3


# ---- random models with residual blocks ----

@functools.cache
def residual_seeds(count: int = 100) -> tuple[int, ...]:
    """The first `count` seeds whose random model has a residual ADD (of two activations)."""
    seeds, seed = [], 0
    while len(seeds) < count:
        graph = load_tflite(random_model(seed))
        if any(op.kind == "ADD" and not any(graph.tensor(n).is_const for n in op.inputs) for op in graph.ops):
            seeds.append(seed)
        seed += 1
    return tuple(seeds)


def _options(seed: int) -> dict:
    return {"prune": round(0.2 + 0.05 * (seed % 11), 2), "prune_criterion": CRITERIA[seed % len(CRITERIA)]}


def _silence_removed_inputs(graph, cut):
    """The graph with every weight that reads a removed channel set to its zero point."""
    graph = graph.copy()
    for op in graph.ops:
        if op.kind in ("CONV_2D", "FULLY_CONNECTED"):
            mask = cut.mask(op.inputs[0]) if op.kind == "CONV_2D" else cut.columns(graph, op)
            w = graph.tensor(op.inputs[1])
            w.data = w.data.copy()
            w.data[..., ~mask] = w.quant.zp if w.quant.scale.size == 1 else 0
    return graph


@pytest.mark.parametrize("batch", range(100 // BATCH))
def test_removing_channels_nothing_reads_is_exact(batch):
    """Surgery is exact bookkeeping: if no weight reads the removed channels, every kept value is
    unchanged — through pooling, padding, concatenation, flattening, ADD and MUL groups."""
    for seed in residual_seeds()[batch * BATCH:(batch + 1) * BATCH]:
        graph = _with_calibration(load_tflite(random_model(seed)), 8)
        pruner = Pruner(graph, "l1", graph.attrs["calibration"]["inputs"])
        cut = pruner.cut({i: 0.5 for i in range(len(pruner.cg.spaces))})
        silenced = _silence_removed_inputs(graph, cut)
        pruned = prune_graph(silenced, cut, run_many(silenced, graph.attrs["calibration"]["inputs"], keep_all=True))
        for inputs in random_inputs(graph, 3, seed):
            want, got = run(silenced, inputs, keep_all=True), run(pruned, inputs, keep_all=True)
            for name in pruner.cg.atoms:
                np.testing.assert_array_equal(want[name][..., cut.mask(name)], got[name], err_msg=f"seed {seed}, {name}")


def _host_runs(builds: list[tuple[Path, str]]):
    """One host module for several generated models (named apart), the kernels compiled once."""
    from mcugen.toolchain.host import build_host_module

    kernels = {p.name: p for out, _ in builds for p in sorted((out / "kernels" / "src").glob("*.c"))}
    sources = [p for out, name in builds for p in (out / f"{name}.c", out / f"{name}_weights.c")]
    cdef = "\n".join(f"int {name}_run(const void *input, void *output);" for _, name in builds)
    preamble = "\n".join(f'#include "{name}.h"' for _, name in builds)
    include = [out for out, _ in builds] + [builds[0][0] / "kernels" / "include"]
    ffi, lib = build_host_module("_prune_batch", cdef, [*sources, *kernels.values()], include, preamble=preamble)

    def run_one(name: str, graph, input_sets) -> list[list[np.ndarray]]:
        plan = graph.attrs["memory_plan"]
        packed, out = pack_inputs(graph, input_sets), bytearray(plan.output_bytes * len(input_sets))
        for i in range(len(input_sets)):
            status = getattr(lib, f"{name}_run")(ffi.from_buffer(packed[i * plan.input_bytes:(i + 1) * plan.input_bytes]),
                                                  ffi.from_buffer(out) + i * plan.output_bytes)
            assert status == 0
        return unpack_outputs(graph, bytes(out), len(input_sets))

    return run_one


@pytest.mark.parametrize("batch", range(100 // BATCH))
def test_pruned_random_residual_models_build_and_match_reference(batch, tmp_path):
    seeds = residual_seeds()[batch * BATCH:(batch + 1) * BATCH]
    graphs, pruned = {}, 0
    for seed in seeds:
        graph = compile_graph(_with_calibration(load_tflite(random_model(seed)), 8), _options(seed))
        section = graph.attrs["report"]["pruning"]
        pruned += section["macs_after"] < section["macs_before"]
        generate(graph, tmp_path / f"m{seed}", f"m{seed}", f"random_model({seed})")
        graphs[seed] = graph
    assert pruned >= BATCH // 2
    run_one = _host_runs([(tmp_path / f"m{seed}", f"m{seed}") for seed in seeds])
    for seed, graph in graphs.items():
        input_sets = random_inputs(graph, 5, seed)
        for inputs, outputs in zip(input_sets, run_one(f"m{seed}", graph, input_sets)):
            for want, got in zip(run(graph, inputs), outputs):
                np.testing.assert_array_equal(want.reshape(-1), got.reshape(-1), err_msg=f"seed {seed}")


# ---- options ----

@pytest.mark.parametrize("suffix,text", [
    (".json", '{"conv_2d_2": 0.5, "4": 0.25}'),
    (".toml", '"conv_2d_2" = 0.5\n"4" = 0.25\n'),
])
def test_per_layer_fractions_from_a_file(suffix, text, tmp_path):
    spec = tmp_path / f"prune{suffix}"
    spec.write_text(text)
    graph = compile_model(_with_calibration(load_tflite(shared_model("kws"))), {"prune": str(spec)})
    kept = {row["name"]: row["channels_kept"] for row in graph.attrs["report"]["pruning"]["layers"]}
    assert kept == {"conv_2d_0": 64, "depthwise_conv_2d_1": 64, "conv_2d_2": 32, "depthwise_conv_2d_3": 32,
                    "conv_2d_4": 48, "depthwise_conv_2d_5": 48, "conv_2d_6": 64, "depthwise_conv_2d_7": 64,
                    "conv_2d_8": 64, "fully_connected_11": 12}


@pytest.mark.parametrize("args,file_text,message", [
    (["--prune", "1.5"], None, "--prune: fraction 1.5 is outside [0, 1)"),
    (["--prune", "{spec}"], '{"conv_2d_99": 0.5}', "'conv_2d_99' is not a CONV_2D or FULLY_CONNECTED layer"),
    (["--prune", "{spec}"], '{"fully_connected_11": 0.5}', "layer 'fully_connected_11' cannot be pruned"),
    (["--prune", "{spec}"], '{"conv_2d_2": ', "not valid JSON"),
    (["--prune", "0.5", "--prune-criterion", "bn"], None, "batch normalisation is folded into the convolution"),
    (["--prune", "auto", "--macs", "lots"], None, "--macs 'lots': expected a count"),
    (["--prune", "auto", "--macs", "100k"], None, "--macs 100,000: even pruning 75 %"),
    (["--macs", "1M"], None, "--macs is the MAC budget of --prune auto"),
])
def test_bad_prune_arguments_fail_clearly(args, file_text, message, tmp_path, cli):
    spec = tmp_path / "spec.json"
    if file_text is not None:
        spec.write_text(file_text)
    out = tmp_path / "out"
    status, _, stderr = cli("build", shared_model("kws"), "--board", "stm32f746", "-o", out, "--no-firmware",
                            *[a.format(spec=spec) for a in args])
    assert status == 2 and message in stderr and "Traceback" not in stderr
    assert not out.exists()


def test_bn_criterion_ranks_channels_by_batchnorm_scale():
    """An unfolded batch norm (a per-channel constant MUL after a conv) ranks that conv's channels;
    the MUL's constant loses the same channels."""
    b = ModelBuilder(3)
    y = b.conv2d(b.input((1, 6, 6, 3)), 8, kernel=(1, 1), activation="NONE")
    graph = load_tflite(b.finish([b.conv2d(y, 4, kernel=(1, 1), activation="NONE")]))
    conv, head = graph.ops
    scale = np.array([50, 5, 100, 1, 80, 20, 70, 3], np.int8)
    bn = Tensor("bn_scale", (8,), INT8, Quant(np.array([0.01]), np.array([0])), scale)
    y = graph.tensor(conv.outputs[0])
    scaled = Tensor("bn_out", y.shape, INT8, y.quant)
    graph.tensors.update({bn.name: bn, scaled.name: scaled})
    graph.ops.insert(1, Op("MUL", [y.name, bn.name], [scaled.name], {"activation": "NONE"}, "mul_1"))
    head.inputs[0] = scaled.name
    graph = _with_calibration(graph, 4)
    pruned = compile_model(graph, {"prune": 0.5, "prune_criterion": "bn"})
    np.testing.assert_array_equal(pruned.tensor("bn_scale").data, [50, 100, 80, 70])
    assert pruned.tensor(conv.outputs[0]).shape[-1] == 4
    rows = {row["name"]: row.get("criterion") for row in pruned.attrs["report"]["pruning"]["layers"]}
    assert rows[conv.name] == "bn"
    run(pruned, random_inputs(pruned, 1, 0)[0])


def test_prune_auto_meets_the_mac_budget_by_pruning_only_as_far_as_needed():
    graph = _with_calibration(load_tflite(shared_model("resnet8")))
    options = {"prune": "auto", "macs": "8M", "budget": {"ro_bytes": 1 << 20, "rw_bytes": 320 << 10}}
    section = compile_model(graph, options).attrs["report"]["pruning"]
    assert 7_000_000 < section["macs_after"] <= 8_000_000
    assert section["auto"]["chosen_fraction"] == 0.25
    assert [c["result"] for c in section["auto"]["candidates"]] == ["over the MAC budget"] * 2 + ["fits"]


def test_prune_auto_fits_resnet8_in_48k_of_flash(tmp_path, cli):
    out = tmp_path / "auto"
    report = _build(cli, shared_model("resnet8"), out, "--prune", "auto", "--flash", "48K", "--no-firmware",
                    "--verify-inputs", "3")
    assert report["estimate"]["ro_bytes"] <= 48 * 1024
    auto = report["pruning"]["auto"]
    assert auto["summary"].startswith("Budget met by") and len(auto["candidates"]) >= 2
    assert "Budget met by" in (out / "report.md").read_text()
    assert report["verification"]["host"] == "host: 3/3 inputs bit-exact"


# ---- under QEMU ----

def _need_toolchain(board: str = "stm32f746") -> None:
    if not toolchain_available(load_board(board)):
        pytest.skip(f"cross toolchain or QEMU for {board} not installed")


@pytest.mark.qemu
def test_kws_half_pruned_firmware_runs_fewer_instructions_bit_exact(tmp_path, cli):
    _need_toolchain()
    base = _build(cli, shared_model("kws"), tmp_path / "base", "--verify-inputs", "3")
    pruned = _build(cli, shared_model("kws"), tmp_path / "pruned", "--prune", "0.5", "--verify-inputs", "3")
    status, stdout, _ = cli("verify", tmp_path / "pruned", "--target", "qemu", "--inputs", "5")
    assert (status, stdout.splitlines()[0]) == (0, "qemu: 5/5 inputs bit-exact")
    counts = {}
    for key in ("base", "pruned"):
        status, stdout, _ = cli("bench", tmp_path / key, "--json")
        assert status == 0
        counts[key] = json.loads(stdout)
    assert (counts["base"]["macs"], counts["pruned"]["macs"]) == (2_656_768, pruned["pruning"]["macs_after"])
    assert counts["pruned"]["instructions"] <= 0.6 * counts["base"]["instructions"]
    assert pruned["elf"]["ro_bytes"] < base["elf"]["ro_bytes"]


@pytest.mark.qemu
def test_resnet8_pruned_firmware_bit_exact_under_qemu(tmp_path, cli):
    _need_toolchain()
    _build(cli, shared_model("resnet8"), tmp_path / "out", "--prune", "0.3", "--verify-inputs", "3")
    status, stdout, _ = cli("verify", tmp_path / "out", "--target", "qemu", "--inputs", "5")
    assert (status, stdout.splitlines()[0]) == (0, "qemu: 5/5 inputs bit-exact")
