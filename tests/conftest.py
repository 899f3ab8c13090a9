"""Shared fixtures: the real models of ../shared/models/ and a CLI runner."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcugen.cli import main

SHARED = Path(__file__).resolve().parents[2] / "shared"
MODELS = SHARED / "models"
INT8_MODELS = {
    "kws": MODELS / "kws_dscnn" / "kws_ref_model.tflite",
    "resnet8": MODELS / "ic_resnet8" / "pretrainedResnet_quant.tflite",
    "ad": MODELS / "ad_fc_autoencoder" / "ad01_int8.tflite",
    "hello_world": MODELS / "tflm_hello_world" / "hello_world_int8.tflite",
}
# TFLM's minimum arena per model (../shared/models/MANIFEST.md).
TFLM_MIN_ARENA = {"kws": 24272, "resnet8": 55984, "ad": 4632, "hello_world": 1936}


def shared_model(key: str) -> Path:
    path = INT8_MODELS[key]
    if not path.exists():
        pytest.skip(f"{path} not present (tests read ../shared/models/)")
    return path


@pytest.fixture(scope="session")
def manifest() -> dict:
    path = MODELS / "manifest.json"
    if not path.exists():
        pytest.skip("../shared/models/manifest.json not present")
    return {m["path"]: m for m in json.loads(path.read_text())["models"]}


@pytest.fixture
def cli(capsys):
    """Run `mcugen ARGS...` in-process; returns (exit status, stdout, stderr)."""
    def run(*args: str):
        status = main([str(a) for a in args])
        out = capsys.readouterr()
        return status, out.out, out.err
    return run
