# The two entry points of README.md. Both set up everything they need first.
.PHONY: setup demo test test-fast

VENV := .venv/bin
DEMO := build/demo

setup:
	./scripts/setup.sh

# Build the built-in default model (a small keyword-spotting CNN made by mcugen.testing) for the
# STM32F746, verify it bit for bit on the host and under QEMU, and count its instructions.
demo: setup
	mkdir -p $(DEMO)
	$(VENV)/python -m mcugen.testing --default -o $(DEMO)/default.tflite
	$(VENV)/mcugen build $(DEMO)/default.tflite --board stm32f746 --ram 320K -o $(DEMO)/out
	$(VENV)/mcugen verify $(DEMO)/out --target qemu --inputs 5
	$(VENV)/mcugen bench $(DEMO)/out

# The whole suite, QEMU tests included (what CI runs).
test: setup
	$(VENV)/python -m pytest -n 2 -q

# Everything but the slow QEMU and model tests, for a quick loop while developing.
test-fast: setup
	$(VENV)/python -m pytest -n 2 -q -m "not qemu and not slow"
