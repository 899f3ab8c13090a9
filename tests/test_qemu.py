"""Firmware of real models on emulated cores: bit-exact under QEMU, ELF budgets, bench, flash."""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess

import pytest

from conftest import INT8_MODELS, shared_model
from mcugen.boards import load_board
from mcugen.toolchain.firmware import toolchain_available

BOARDS = ("stm32f746", "nucleo-l4r5zi", "gap8")

pytestmark = pytest.mark.qemu


def _need_toolchain(board: str) -> None:
    if not toolchain_available(load_board(board)):
        pytest.skip(f"cross toolchain or QEMU for {board} not installed")


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Build each (model, board) once per module; tests share the outputs."""
    cache = {}

    def get(key: str, board: str, *extra: str):
        _need_toolchain(board)
        if (key, board, extra) not in cache:
            from mcugen.cli import main

            out = tmp_path_factory.mktemp(f"{key}-{board}") / "out"
            log = io.StringIO()
            with contextlib.redirect_stdout(log):
                status = main(["build", str(shared_model(key)), "--board", board, "-o", str(out), "--verify-inputs", "3", *extra])
            assert status == 0, log.getvalue()
            cache[(key, board, extra)] = out
        return cache[(key, board, extra)]

    return get


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("key", sorted(INT8_MODELS))
def test_firmware_bit_exact_under_qemu(key, board, builds, cli):
    out = builds(key, board)
    assert (out / "firmware" / "model.elf").exists()
    status, stdout, _ = cli("verify", out, "--target", "qemu", "--inputs", "5")
    assert (status, stdout.splitlines()[0]) == (0, "qemu: 5/5 inputs bit-exact")


@pytest.mark.parametrize("board", ["stm32f746", "gap8"])
@pytest.mark.parametrize("key", sorted(INT8_MODELS))
def test_peak_stack_stays_under_the_board_reserve(key, board, builds):
    """The harness paints the free stack at start-up and reports the deepest use of the run."""
    from mcugen.inputs import random_inputs
    from mcugen.pipeline import _firmware_elf, load_output_dir, pack_inputs
    from mcugen.toolchain.qemu import peak_stack

    built = load_output_dir(builds(key, board))
    used = peak_stack(_firmware_elf(built), built.board, pack_inputs(built.graph, random_inputs(built.graph, 2, 0)))
    assert 0 < used < built.board.stack_bytes


@pytest.mark.parametrize("key", ["kws", "hello_world"])
def test_report_elf_figures_equal_arm_none_eabi_size(key, builds):
    out = builds(key, "stm32f746")
    elf = json.loads((out / "report.json").read_text())["elf"]
    size = subprocess.run(["arm-none-eabi-size", "-A", str(out / "firmware" / "model.elf")],
                          capture_output=True, text=True, check=True).stdout
    sections = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)\s+\d+$", size, re.M)}
    text = sections.get(".isr_vector", 0) + sections.get(".text", 0)
    assert (elf["text"], elf["rodata"], elf["data"], elf["bss"]) == (
        text, sections.get(".rodata", 0), sections.get(".data", 0), sections.get(".bss", 0))
    assert elf["ro_bytes"] == elf["text"] + elf["rodata"] + elf["data"]
    assert elf["rw_bytes"] == elf["data"] + elf["bss"] + load_board("stm32f746").stack_bytes


def test_model_that_cannot_fit_the_flash_fails_clearly(tmp_path, cli):
    _need_toolchain("stm32f746")
    out = tmp_path / "ad"
    # at int8 (--bits 8): with the default --bits auto, mcugen would lower precision to fit instead
    status, _, stderr = cli("build", shared_model("ad"), "--board", "stm32f746", "--bits", "8", "--flash", "128K", "-o", out)
    assert status == 2
    assert "does not fit: flash (RO) budget 131,072 B" in stderr and "largest" in stderr
    assert not out.exists()


def test_bench_is_repeatable_and_complete(builds, cli):
    out = builds("kws", "stm32f746")
    status, first, _ = cli("bench", out, "--json")
    assert status == 0
    _, second, _ = cli("bench", out, "--json")
    a, b = json.loads(first), json.loads(second)
    assert a == b
    assert {"instructions", "macs", "macs_per_instruction", "ro_bytes", "rw_bytes", "arena_bytes", "layers"} <= set(a)
    assert a["macs"] == 2_656_768
    assert len(a["layers"]) == 13
    # the profiling build's marks cost a few instructions per layer on top of the plain total
    assert a["instructions"] <= sum(l["instructions"] for l in a["layers"]) <= a["instructions"] + 20 * 13
    report = json.loads((out / "report.json").read_text())
    assert (a["ro_bytes"], a["rw_bytes"]) == (report["elf"]["ro_bytes"], report["elf"]["rw_bytes"])


def test_run_prints_outputs(builds, cli, tmp_path):
    import numpy as np

    out = builds("hello_world", "stm32f746")
    sample = tmp_path / "x.npy"
    np.save(sample, np.array([[[-128]], [[-60]]], np.int8))
    status, stdout, _ = cli("run", out, "--qemu", "--input", sample)
    assert status == 0
    lines = [l for l in stdout.splitlines() if l.startswith("input")]
    assert len(lines) == 2
    # ../shared/models/MANIFEST.md: x = 0 (raw -128) gives raw output 4 in TFLM
    assert lines[0].endswith(": [4]")


@pytest.mark.parametrize("probe,expected", [
    ("pyocd", "pyocd flash -t stm32f746nghx"),
    ("openocd", "openocd -f board/stm32f7discovery.cfg"),
    ("stlink", "st-flash"),
])
def test_flash_dry_run(probe, expected, builds, cli):
    out = builds("hello_world", "stm32f746")
    status, stdout, _ = cli("flash", out, "--probe", probe, "--dry-run")
    assert status == 0 and expected in stdout and "model_board.elf" in stdout or ".hex" in stdout


def test_flash_without_probe_tool_is_a_clear_error(builds, cli):
    out = builds("hello_world", "stm32f746")
    if shutil.which("pyocd"):
        pytest.skip("pyocd is installed here")
    status, _, stderr = cli("flash", out, "--probe", "pyocd")
    assert status == 2 and "pyocd" in stderr and "Traceback" not in stderr


def test_firmware_builds_are_byte_identical_in_any_directory(tmp_path, cli):
    import hashlib

    _need_toolchain("stm32f746")
    digests = []
    for where in ("a/out", "elsewhere/deeper/out"):
        out = tmp_path / where
        status, _, err = cli("build", shared_model("kws"), "--board", "stm32f746", "-o", out, "--verify-inputs", "1")
        assert status == 0, err
        digests.append({p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in sorted(out.rglob("*")) if p.is_file()})
    assert "firmware/model.elf" in digests[0]
    assert digests[0] == digests[1]


@pytest.mark.parametrize("board", ["stm32f746", "gap8"])
@pytest.mark.parametrize("seed", [0, 2, 9])
def test_streamed_residual_blocks_bit_exact_under_qemu(seed, board, tmp_path, cli):
    from mcugen.testing import residual_model

    _need_toolchain(board)
    model, out = tmp_path / "residual.tflite", tmp_path / "out"
    model.write_bytes(residual_model(seed))
    status, stdout, stderr = cli("build", model, "--board", board, "-o", out, "--verify-inputs", "3")
    assert status == 0, stdout + stderr
    assert "mcugen_residual_block_s8(" in (out / "model.c").read_text()
    status, stdout, _ = cli("verify", out, "--target", "qemu", "--inputs", "5")
    assert (status, stdout.splitlines()[0]) == (0, "qemu: 5/5 inputs bit-exact")
    if board == "stm32f746":  # bench gives a block's MACs and instructions to its first op
        status, stdout, _ = cli("bench", out, "--json")
        rows = json.loads(stdout)["layers"]
        fused = [row for row in rows if "fused" in row]
        assert status == 0 and fused
        for row in fused:
            members = [rows[i] for i in row["fused"][1:]]
            assert all(m["runs_in"] == row["index"] and m["macs"] == 0 and m["instructions"] < 20 for m in members)
        assert sum(row["macs"] for row in rows) == json.loads(stdout)["macs"]
