#!/usr/bin/env bash
# The main job on the built-in default model (a small keyword-spotting CNN that mcugen.testing
# makes): build for the STM32F746, check it bit for bit under QEMU, count its instructions.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
mkdir -p build/demo
.venv/bin/python -m mcugen.testing --default -o build/demo/default.tflite
.venv/bin/mcugen build build/demo/default.tflite --board stm32f746 --ram 320K -o build/demo/kws
.venv/bin/mcugen verify build/demo/kws --target qemu --inputs 5
.venv/bin/mcugen bench build/demo/kws
