"""Issue 5's acceptance: the shared models built under tight flash / RAM budgets with mixed
precision fit their budgets in the firmware ELF, stay bit-exact with the reference on the host
and under QEMU, report their fidelity, and build deterministically."""
from __future__ import annotations

import contextlib
import fcntl
import io
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import MODELS, shared_model
from mcugen.boards import load_board, parse_size
from mcugen.cli import main
from mcugen.toolchain.firmware import toolchain_available

AD_SAMPLE = MODELS / "ad_fc_autoencoder" / "samples" / "normal_id_01_00000000_hist_librosa.bin"


def _build(key: str, out: Path, *extra: str) -> dict:
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        status = main(["build", str(shared_model(key)), "--board", "stm32f746", "-o", str(out),
                       "--verify-inputs", "3", *extra])
    assert status == 0, log.getvalue()
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="session")
def firmware_builds(tmp_path_factory, worker_id):
    """ResNet-8 at 80K of flash and KWS at 16K of RAM, firmware included: built once per test
    session, shared by the xdist workers (the first to ask builds, under a file lock)."""
    if not toolchain_available(load_board("stm32f746")):
        pytest.skip("arm-none-eabi-gcc or QEMU not installed")
    root = tmp_path_factory.getbasetemp()
    root = root.parent if worker_id != "master" else root

    def get(key: str, *budget: str) -> tuple[Path, dict]:
        out = root / f"mixed-{key}-{'-'.join(budget)}"
        with open(f"{out}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (out / "report.json").exists():
                _build(key, out, *budget)
        return out, json.loads((out / "report.json").read_text())

    return get


def _assert_compressed_and_reported(report: dict, out: Path) -> None:
    assert report["verification"]["host"] == "host: 3/3 inputs bit-exact"
    fidelity = report["fidelity"]
    assert fidelity["inputs"] == 64 and 0 <= fidelity["top1_agreement"] <= 1
    assert len(fidelity["layers"]) == len(report["layers"])
    assert report["compression"]["calibration"] == "no --calib given: 64 random inputs (seed 0)"
    markdown = (out / "report.md").read_text()
    assert "## Compression" in markdown and "no --calib given" in markdown and "top-1 agreement" in markdown


def test_resnet8_fits_80k_of_flash(firmware_builds):
    out, report = firmware_builds("resnet8", "--flash", "80K")
    assert report["elf"]["ro_bytes"] <= 80 * 1024
    assert any(row["weight_bits"] is not None and row["weight_bits"] < 8 for row in report["layers"])
    assert "ICN" in {row["requant"] for row in report["compression"]["layers"]}
    _assert_compressed_and_reported(report, out)


@pytest.mark.parametrize("ram", ["16K", "10K"])
def test_kws_fits_its_ram_budget(ram, firmware_builds):
    """At 16K the int8 model fits today (arena and stack have shrunk since issue 5 was filed), so
    widths drop only if they must; at 10K they must."""
    out, report = firmware_builds("kws", "--ram", ram)
    assert report["elf"]["rw_bytes"] <= parse_size(ram)
    assert report["verification"]["host"] == "host: 3/3 inputs bit-exact"
    assert ram == "16K" or "compression" in report
    if "compression" in report:
        assert {row["weight_bits"] for row in report["layers"]} <= {8, None}  # flash was never short
        assert min(row["output_bits"] for row in report["layers"]) < 8
        _assert_compressed_and_reported(report, out)


@pytest.mark.qemu
@pytest.mark.parametrize("key, budget", [("resnet8", ("--flash", "80K")), ("kws", ("--ram", "16K")),
                                         ("kws", ("--ram", "10K"))])
def test_compressed_firmware_is_bit_exact_under_qemu(key, budget, firmware_builds, cli):
    out, _ = firmware_builds(key, *budget)
    status, stdout, _ = cli("verify", out, "--target", "qemu", "--inputs", "2")
    assert (status, stdout.splitlines()[0]) == (0, "qemu: 2/2 inputs bit-exact")


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_anomaly_detector_at_160k_sensitivity_beats_rusci_deterministically(tmp_path):
    if not AD_SAMPLE.exists():
        pytest.skip(f"{AD_SAMPLE} not present")
    frames = np.fromfile(AD_SAMPLE, dtype="<f4").reshape(200, 128)
    np.save(tmp_path / "windows.npy", np.stack([frames[i:i + 5].reshape(-1) for i in range(196)]))
    reports, trees = {}, {}
    for strategy in ("sensitivity", "rusci"):
        for run in range(2):
            out = tmp_path / f"{strategy}{run}"
            reports[strategy] = _build("ad", out, "--flash", "160K", "--no-firmware", "--bits-strategy", strategy,
                                       "--calib", str(tmp_path / "windows.npy"))
            trees[strategy, run] = _tree(out)
        assert trees[strategy, 0] == trees[strategy, 1]
        assert reports[strategy]["compression"]["calibration"] == "196 samples from windows.npy"
        assert reports[strategy]["fidelity"]["inputs"] == 196
        assert "output SQNR" in (tmp_path / f"{strategy}0" / "report.md").read_text()
    sensitivity, rusci = (reports[s]["fidelity"]["sqnr_db"] for s in ("sensitivity", "rusci"))
    assert sensitivity > rusci or "note" in reports["sensitivity"]["compression"]
    assert reports["sensitivity"]["compression"]["chosen"] == "sensitivity"  # measured, not a tie with Rusci
