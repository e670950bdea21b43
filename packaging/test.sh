#!/usr/bin/env bash
# Set up (as for users, plus test tools), lint (ruff, configured in
# pyproject.toml), and run the whole test suite on the real default model.
# This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/setup.sh --test
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest -q -rs "$@"
