#!/usr/bin/env bash
# The whole test suite, QEMU tests included (what CI runs). Extra arguments go to pytest, e.g.
#   scripts/test.sh -m "not qemu and not slow"    # the fast tests only
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python -m pytest -n 2 -q "$@"
