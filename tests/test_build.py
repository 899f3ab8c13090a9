"""`mcugen build` on the host: generated C is bit-exact with the reference and with TFLM,
compiles cleanly, runs clean under sanitizers, fits its plan, and is deterministic."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import INT8_MODELS, TFLM_MIN_ARENA, shared_model
from mcugen.frontend import load_tflite
from mcugen.inputs import random_inputs
from mcugen.oracle import TflmModel
from mcugen.pipeline import compile_graph, pack_inputs, unpack_outputs, verify_graph_on_host
from mcugen.codegen.emit import generate
from mcugen.testing import random_model, residual_model

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "@name@.h"
/* Reads records of input bytes from argv[1]; runs each twice, through the caller's buffers and
 * through the arena's I/O slots, and writes both outputs to argv[2]. */
int main(int argc, char **argv) {
    static unsigned char in[@NAME@_INPUT_BYTES], out[@NAME@_OUTPUT_BYTES];
    FILE *fi, *fo;
    if (argc != 3 || !(fi = fopen(argv[1], "rb")) || !(fo = fopen(argv[2], "wb"))) return 2;
    while (fread(in, 1, sizeof in, fi) == sizeof in) {
        if (@name@_run(in, out) != 0) return 3;
        fwrite(out, 1, sizeof out, fo);
        memcpy(@name@_input(), in, sizeof in);
        if (@name@_run(@name@_input(), @name@_output()) != 0) return 4;
        fwrite(@name@_output(), 1, sizeof out, fo);
    }
    fclose(fi); fclose(fo);
    return 0;
}
"""
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1"]


def _library_sources(out: Path) -> list[Path]:
    return sorted(out.glob("*.c")) + sorted((out / "kernels" / "src").glob("*.c"))


def _tflm_bytes(model: bytes, graph, input_sets) -> bytes:
    tflm = TflmModel(model)
    return b"".join(np.ascontiguousarray(o).tobytes() for inputs in input_sets for o in tflm.run(inputs))


def _build(model_path: Path, out: Path, cli, *extra: str) -> dict:
    status, stdout, stderr = cli("build", model_path, "--board", "stm32f746", "-o", out, "--no-firmware", *extra)
    assert status == 0, stdout + stderr
    return json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("key", sorted(INT8_MODELS))
def test_shared_model_builds_bit_exact_with_reference_and_tflm(key, tmp_path, cli):
    path = shared_model(key)
    out = tmp_path / "out"
    report = _build(path, out, cli)
    assert report["verification"]["host"] == "host: 10/10 inputs bit-exact"
    status, stdout, _ = cli("verify", out, "--inputs", "20")
    assert (status, stdout.splitlines()[0]) == (0, "host: 20/20 inputs bit-exact")

    graph = compile_graph(load_tflite(path))
    input_sets = random_inputs(graph, 20, 0)
    result = verify_graph_on_host(out, graph, "model", 20, 0, input_sets)
    assert result.ok
    from mcugen.pipeline import _host_runner

    host = _host_runner(out, "model")(graph, pack_inputs(graph, input_sets), 20)
    assert host == _tflm_bytes(path.read_bytes(), graph, input_sets)
    assert report["estimate"]["arena_bytes"] <= TFLM_MIN_ARENA[key]


@pytest.mark.parametrize("seed", range(100))
def test_random_model_generated_code_matches_reference_and_tflm(seed, tmp_path):
    _check_generated_code(random_model(seed), f"random_model({seed})", seed, tmp_path)


@pytest.mark.parametrize("seed", range(30))
def test_streamed_residual_blocks_match_reference_and_tflm(seed, tmp_path):
    _check_generated_code(residual_model(seed), f"residual_model({seed})", seed, tmp_path)


def _check_generated_code(model: bytes, label: str, seed: int, tmp_path: Path) -> None:
    graph = compile_graph(load_tflite(model))
    generate(graph, tmp_path, "model", label)
    input_sets = random_inputs(graph, 20, seed)
    result = verify_graph_on_host(tmp_path, graph, "model", 20, seed, input_sets)
    assert result.ok, result.first_mismatch
    from mcugen.pipeline import _host_runner

    host = _host_runner(tmp_path, "model")(graph, pack_inputs(graph, input_sets), 20)
    assert host == _tflm_bytes(model, graph, input_sets)


def _compile_and_run_with_sanitizers(out: Path, name: str, graph, input_sets, tmp: Path) -> bytes:
    (tmp / "main.c").write_text(HARNESS.replace("@name@", name).replace("@NAME@", name.upper()))
    exe = tmp / "prog"
    cmd = ["gcc", *STRICT, "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           f"-I{out}", f"-I{out / 'kernels' / 'include'}", str(tmp / "main.c"),
           *map(str, _library_sources(out)), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    (tmp / "in.bin").write_bytes(pack_inputs(graph, input_sets))
    proc = subprocess.run([str(exe), str(tmp / "in.bin"), str(tmp / "out.bin")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return (tmp / "out.bin").read_bytes()


@pytest.mark.parametrize("source", ["kws", "resnet8", "ad", "hello_world", "random3", "random17", "random42",
                                    "residual0", "residual29"])
def test_strict_warnings_and_sanitizers(source, tmp_path):
    synthetic = {"random": random_model, "residual": residual_model}
    kind = source.rstrip("0123456789")
    model = synthetic[kind](int(source[len(kind):])) if kind in synthetic else shared_model(source).read_bytes()
    graph = compile_graph(load_tflite(model))
    out = tmp_path / "out"
    generate(graph, out, "model", source)
    input_sets = random_inputs(graph, 3, 1)
    raw = _compile_and_run_with_sanitizers(out, "model", graph, input_sets, tmp_path)
    from mcugen.reference.executor import run

    runs = unpack_outputs(graph, raw, 2 * len(input_sets))  # own buffers, then the I/O slots
    for i, inputs in enumerate(input_sets):
        for outputs in runs[2 * i:2 * i + 2]:
            for want, got in zip(run(graph, inputs), outputs):
                np.testing.assert_array_equal(want.reshape(-1), got.reshape(-1))


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_builds_are_byte_identical(tmp_path, cli):
    path = shared_model("kws")
    first = _tree_digest(_build_dir(path, tmp_path / "a", cli))
    second = _tree_digest(_build_dir(path, tmp_path / "b", cli))
    assert first == second
    rebuilt = _tree_digest(_build_dir(path, tmp_path / "a", cli))
    assert rebuilt == first


def _build_dir(path: Path, out: Path, cli) -> Path:
    _build(path, out, cli)
    return out


def test_name_prefix_lets_two_models_share_a_firmware(tmp_path, cli):
    kws = _build_dir(shared_model("kws"), tmp_path / "kws", cli)
    _build(shared_model("hello_world"), tmp_path / "hw", cli, "--name", "sine")
    assert (tmp_path / "hw" / "sine.h").exists() and not (tmp_path / "hw" / "model.h").exists()
    header = (tmp_path / "hw" / "sine.h").read_text()
    assert "#define SINE_INPUT_BYTES  1" in header and "int sine_run(const void *input, void *output);" in header
    main = tmp_path / "app.c"
    main.write_text('#include "model.h"\n#include "sine.h"\nint main(void) {\n'
                    "  signed char a[MODEL_INPUT_BYTES] = {0}, b[MODEL_OUTPUT_BYTES], c[SINE_INPUT_BYTES] = {0}, d[SINE_OUTPUT_BYTES];\n"
                    "  return model_run(a, b) | sine_run(c, d);\n}\n")
    # the kernels are shared: link each once
    kernels = {p.name: p for p in (tmp_path / "hw" / "kernels" / "src").glob("*.c")}
    kernels.update({p.name: p for p in (kws / "kernels" / "src").glob("*.c")})
    sources = [*kws.glob("*.c"), *(tmp_path / "hw").glob("*.c"), *kernels.values()]
    subprocess.run(["gcc", *STRICT, f"-I{kws}", f"-I{tmp_path / 'hw'}", f"-I{kws / 'kernels' / 'include'}",
                    str(main), *map(str, sources), "-o", str(tmp_path / "app")], check=True)
    assert subprocess.run([str(tmp_path / "app")]).returncode == 0


def test_generated_library_has_no_main_and_builds_with_cmake(tmp_path, cli):
    out = _build_dir(shared_model("hello_world"), tmp_path / "out", cli)
    for src in out.rglob("*.c"):
        if "firmware" not in src.parts:
            assert "main(" not in src.read_text(), src
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    subprocess.run(["cmake", "-S", str(out), "-B", str(tmp_path / "cm")], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(tmp_path / "cm")], check=True, capture_output=True)
    assert (tmp_path / "cm" / "libmodel.a").exists()


def test_report_contract(tmp_path, cli):
    report = _build(shared_model("kws"), tmp_path / "out", cli, "--ram", "64K", "--flash", "1M")
    assert report["board"] == "stm32f746"
    assert report["budget"] == {"ro_bytes": 1024 * 1024, "rw_bytes": 64 * 1024}
    assert {"ro_bytes", "rw_bytes", "arena_bytes"} <= set(report["estimate"])
    assert len(report["layers"]) == 13
    first = report["layers"][0]
    assert {k: first[k] for k in ("index", "op", "weight_bits", "input_bits", "output_bits", "macs")} == {
        "index": 0, "op": "CONV_2D", "weight_bits": 8, "input_bits": 8, "output_bits": 8, "macs": 320_000}
    assert first["ro_bytes"] >= 2816  # weights + bias, plus per-channel multipliers
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| 0 | CONV_2D |" in md and "65,536 B" in md


@pytest.mark.parametrize("args,message", [
    (["--bits", "8", "--flash", "128K"], "does not fit: flash (RO) budget 131,072 B"),
    (["--flash", "32K"], "does not fit even with every layer at 2 bits: flash (RO) budget 32,768 B, smallest reachable"),
    (["--ram", "2K"], "RAM (RW) budget 2,048 B"),
])
def test_over_budget_fails_clearly_and_leaves_no_output(args, message, tmp_path, cli):
    out = tmp_path / "out"
    status, stdout, stderr = cli("build", shared_model("ad"), "--board", "stm32f746", "-o", out, *args)
    assert status == 2
    assert message in stderr and "largest" in stderr and "Traceback" not in stderr
    assert not out.exists()
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("args,message", [
    (["--board", "nosuchboard"], "unknown board 'nosuchboard'; known boards:"),
    (["--board", "stm32f746", "--ram", "lots"], "--ram: invalid size 'lots'"),
    (["--board", "stm32f746", "--name", "9lives"], "is not a C identifier"),
])
def test_bad_build_arguments(args, message, tmp_path, cli):
    status, _, stderr = cli("build", shared_model("hello_world"), "-o", tmp_path / "out", *args)
    assert status == 2 and message in stderr
    assert not (tmp_path / "out").exists()


def test_verify_rejects_a_directory_that_is_not_a_build(tmp_path, cli):
    status, _, stderr = cli("verify", tmp_path)
    assert status == 2 and "is not an mcugen build output" in stderr
