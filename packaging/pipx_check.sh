#!/usr/bin/env bash
# Install bookpot as a user would, use it, and uninstall it, checking what it
# leaves behind:
#
#   1. build the sdist, then the wheel from that sdist (python -m build);
#   2. `pipx install` the wheel into a throwaway PIPX_HOME / PIPX_BIN_DIR;
#   3. run the installed `bookpot --version`, `bookpot models fetch` (which
#      must find the model already there and touch nothing) and
#      `bookpot ask` on the sample book shipped inside the wheel, and
#      `bookpot doctor` (native extension loaded, pinned llama.cpp);
#   4. reinstall bookpot from the sdist inside the pipx venv, so the C
#      extension is compiled by that environment's own pip, and check it loads;
#   5. list every file the installed bookpot wrote, with HOME and TMPDIR
#      pointed at empty folders: all must be under its platformdirs
#      cache/config/data folders; `bookpot cache clear` must empty the cache;
#   6. `pipx uninstall bookpot`: no venv, no command, no man page left.
#
# llama-cpp-python ships on PyPI only as an sdist that takes ~6 minutes to
# compile. It is never compiled here: `pip wheel` copies the wheel pip's cache
# already holds (packaging/setup.sh put it there earlier in the same run; on a
# machine where it did not, this is the one build) into a folder the pipx
# venv's pip is pointed at with PIP_FIND_LINKS, and PIP_ONLY_BINARY forbids
# any build of it there.
#
# The model is not downloaded again either: BOOKPOT_MODELS_DIR points at the
# models the development venv already fetched (or at $BOOKPOT_MODELS_DIR).
#
#   bash packaging/pipx_check.sh
#   PYTHON=path/to/python  the interpreter that runs pipx and build
#                          (default .venv/bin/python; pipx and build are
#                          installed into it if missing)
#   BOOKPOT_PIPX_KEEP=1    keep the temporary folder for inspection
#
# Prints `pipx-check: ...` lines with the seconds each step took; exits 0 only
# if every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
START=$SECONDS
STEP_START=$SECONDS

say() { echo "pipx-check: $*"; }
step() { say "[$((SECONDS - STEP_START))s] $*"; STEP_START=$SECONDS; }
fail() { echo "pipx-check: FAIL: $*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bookpot-pipx.XXXXXX")
cleanup() {
  if [ "${BOOKPOT_PIPX_KEEP:-0}" = 1 ]; then
    say "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
LLAMA_PIN=$(grep -o 'llama-cpp-python==[0-9][0-9.]*' pyproject.toml | head -1)
[ -n "$VERSION" ] && [ -n "$LLAMA_PIN" ] || fail "cannot read the version or the llama-cpp-python pin from pyproject.toml"
say "bookpot $VERSION, $LLAMA_PIN, python $("$PY" -c 'import sys; print(sys.version.split()[0])'), in $WORK"

# ------------------------------------------------------------------ tools
if ! "$PY" -m pipx --version >/dev/null 2>&1 || ! "$PY" -m build --version >/dev/null 2>&1; then
  "$PY" -m pip install -q pipx build 2>&1 | grep -v "is ignored: it is neither" || true
  "$PY" -m pipx --version >/dev/null 2>&1 || fail "pipx could not be installed into $PY"
  "$PY" -m build --version >/dev/null 2>&1 || fail "build could not be installed into $PY"
fi
step "pipx $("$PY" -m pipx --version), $("$PY" -m build --version | cut -d' ' -f1,2)"

# ------------------------------------------------------- 1. sdist, wheel
# No arguments: build makes the sdist, then the wheel from the unpacked sdist,
# so a file missing from the sdist breaks the wheel here, not on a user's box.
"$PY" -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; fail "python -m build failed"; }
SDIST=$(ls "$WORK"/dist/bookpot-"$VERSION".tar.gz)
WHEEL=$(ls "$WORK"/dist/bookpot-"$VERSION"-*.whl)
"$PY" - "$SDIST" "$WHEEL" <<'EOF' || fail "the sdist or wheel is missing files"
import sys, tarfile, zipfile
sdist, wheel = sys.argv[1:]
names = tarfile.open(sdist).getnames()
top = names[0].split("/")[0]
for need in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "native/hot.c", "app/sample/sample.pdf"):
    assert f"{top}/{need}" in names, f"sdist lacks {need}"
w = zipfile.ZipFile(wheel).namelist()
so = [n for n in w if n.startswith("bookpot/native/_hot") and n.endswith(".so")]
assert len(so) == 1, f"wheel has {so} for the native extension"
assert "bookpot/app/sample/sample.pdf" in w, "wheel lacks the sample book"
assert any(n.startswith("bookpot/app/tui/") and n.endswith(".tcss") for n in w), "wheel lacks the TUI stylesheet"
meta = [n for n in w if n.endswith(".dist-info/METADATA")][0]
text = zipfile.ZipFile(wheel).read(meta).decode()
assert "License-Expression: Apache-2.0" in text, "no licence in METADATA"
assert any(n.endswith(".dist-info/licenses/LICENSE") for n in w), "LICENSE not in the wheel"
print("pipx-check: wheel", wheel.rsplit("/", 1)[1], "with", so[0])
EOF
step "built $(basename "$SDIST") and $(basename "$WHEEL")"

# -------------------------------------- llama-cpp-python: the cached wheel
mkdir -p "$WORK/wheels"
"$PY" -m pip wheel --no-deps -w "$WORK/wheels" "$LLAMA_PIN" >"$WORK/llama-wheel.log" 2>&1 \
  || { tail -20 "$WORK/llama-wheel.log" >&2; fail "pip wheel $LLAMA_PIN failed"; }
if grep -q "Building wheel for llama-cpp-python" "$WORK/llama-wheel.log"; then
  say "note: $LLAMA_PIN was not in pip's cache and was built now (the one build of this run)"
else
  grep -q "Using cached llama_cpp_python" "$WORK/llama-wheel.log" \
    || say "note: pip did not say it used its cache for $LLAMA_PIN"
fi
ls "$WORK"/wheels/llama_cpp_python-*.whl >/dev/null || fail "no llama-cpp-python wheel in $WORK/wheels"
step "$LLAMA_PIN wheel from pip's cache: $(basename "$WORK"/wheels/llama_cpp_python-*.whl)"

# ------------------------------------------------------ 2. pipx install
export PIPX_HOME="$WORK/pipx" PIPX_BIN_DIR="$WORK/bin" PIPX_MAN_DIR="$WORK/man"
export PIP_FIND_LINKS="$WORK/wheels${PIP_FIND_LINKS:+ $PIP_FIND_LINKS}"
export PIP_ONLY_BINARY=llama-cpp-python
"$PY" -m pipx install --verbose "$WHEEL" >"$WORK/pipx-install.log" 2>&1 \
  || { tail -40 "$WORK/pipx-install.log" >&2; fail "pipx install failed"; }
if grep -q "Building wheel for llama-cpp-python" "$WORK/pipx-install.log"; then
  fail "pipx compiled llama-cpp-python a second time"
fi
VENV="$PIPX_HOME/venvs/bookpot"
BOOKPOT="$PIPX_BIN_DIR/bookpot"
[ -x "$BOOKPOT" ] || fail "pipx made no $BOOKPOT"
[ -x "$VENV/bin/python" ] || fail "pipx made no venv at $VENV"
got=$("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)')
[ "llama-cpp-python==$got" = "$LLAMA_PIN" ] || fail "the pipx venv has llama-cpp-python $got"
step "pipx installed bookpot into $VENV (llama-cpp-python $got from the cached wheel, not rebuilt)"

# --------------------------------------------- 3. use it, in an empty home
MODELS=${BOOKPOT_MODELS_DIR:-$("$PY" -c 'from bookpot.models import models_dir; print(models_dir())')}
[ -f "$MODELS/smollm2-135m.gguf" ] || fail "no fetched default model in $MODELS (run packaging/setup.sh first)"
FAKE_HOME="$WORK/home"
FAKE_TMP="$WORK/tmp"
mkdir -p "$FAKE_HOME" "$FAKE_TMP"
# Only what a user's shell would have; no XDG_* or BOOKPOT_* overrides, so
# bookpot falls back on platformdirs' defaults under $HOME.
user() {
  env -i PATH="$PIPX_BIN_DIR:/usr/local/bin:/usr/bin:/bin" HOME="$FAKE_HOME" TMPDIR="$FAKE_TMP" \
    LANG=C.UTF-8 BOOKPOT_MODELS_DIR="$MODELS" \
    ${OPENBLAS_CORETYPE:+OPENBLAS_CORETYPE="$OPENBLAS_CORETYPE"} \
    ${OPENBLAS_L2_SIZE:+OPENBLAS_L2_SIZE="$OPENBLAS_L2_SIZE"} \
    "$@"
}

out=$(user bookpot --version)
[ "$out" = "bookpot $VERSION" ] || fail "bookpot --version printed '$out', expected 'bookpot $VERSION'"
step "bookpot --version: $out"

before=$(stat -c '%s %Y' "$MODELS/smollm2-135m.gguf" "$MODELS/smollm2-135m.gguf.ok" 2>/dev/null || true)
out=$(user bookpot models fetch </dev/null 2>"$WORK/fetch.err") || { cat "$WORK/fetch.err" >&2; fail "bookpot models fetch failed"; }
after=$(stat -c '%s %Y' "$MODELS/smollm2-135m.gguf" "$MODELS/smollm2-135m.gguf.ok" 2>/dev/null || true)
[ "$out" = "$MODELS/smollm2-135m.gguf" ] || fail "bookpot models fetch printed '$out'"
[ "$before" = "$after" ] || fail "bookpot models fetch rewrote the model that was already there"
step "bookpot models fetch: $out (already there: nothing downloaded or rewritten)"

SAMPLE=$(ls "$VENV"/lib/python*/site-packages/bookpot/app/sample/sample.pdf)
QUESTION="Who was the last keeper of Harrow Point? The last keeper was"
user bookpot ask "$SAMPLE" "$QUESTION" --max-tokens 40 </dev/null >"$WORK/ask.out" 2>"$WORK/ask.err" \
  || { cat "$WORK/ask.err" >&2; fail "bookpot ask failed"; }
tr -s ' \n' '  ' <"$WORK/ask.out" | grep -q "Ada Brennan" || { cat "$WORK/ask.out" "$WORK/ask.err" >&2; fail "the answer does not name Ada Brennan"; }
grep -q "^Sources: p\. " "$WORK/ask.out" || fail "bookpot ask printed no sources"
say "answer: $(head -c 300 "$WORK/ask.out" | tr '\n' ' ')"
step "bookpot ask on the wheel's sample.pdf ($(tail -1 "$WORK/ask.err"))"

user bookpot doctor </dev/null >"$WORK/doctor.out" 2>&1 || { cat "$WORK/doctor.out" >&2; fail "bookpot doctor failed"; }
grep -q "^native .*C extension loaded" "$WORK/doctor.out" || { cat "$WORK/doctor.out" >&2; fail "the native extension does not load in the pipx venv"; }
grep -q "^llama.cpp .*llama-cpp-python ${LLAMA_PIN#*==}\$" "$WORK/doctor.out" || { cat "$WORK/doctor.out" >&2; fail "doctor does not see the pinned llama-cpp-python"; }
step "bookpot doctor: native extension loaded, ${LLAMA_PIN}"

# ------------------------------- 4. the C extension built by pipx's venv
"$PY" -m pipx runpip bookpot install --no-deps --force-reinstall "$SDIST" >"$WORK/sdist.log" 2>&1 \
  || { tail -40 "$WORK/sdist.log" >&2; fail "installing the sdist in the pipx venv failed"; }
grep -q "Building wheel for bookpot" "$WORK/sdist.log" || fail "pip in the pipx venv did not build bookpot from the sdist"
user bookpot doctor </dev/null >"$WORK/doctor2.out" 2>&1 || { cat "$WORK/doctor2.out" >&2; fail "bookpot doctor failed after the sdist install"; }
grep -q "^native .*C extension loaded" "$WORK/doctor2.out" || { cat "$WORK/doctor2.out" >&2; fail "the extension compiled in the pipx venv does not load"; }
step "sdist installed in the pipx venv: native/hot.c compiled there and loads"

# --------------------------------------------- 5. what bookpot wrote
list_written() { (cd "$WORK" && find home tmp -mindepth 1 \( -type f -o -type l \) | sort); }
CACHE_DIR="home/.cache/bookpot" CONFIG_DIR="home/.config/bookpot" DATA_DIR="home/.local/share/bookpot"
list_written >"$WORK/written.txt"
say "files bookpot wrote under the empty HOME and TMPDIR: $(wc -l <"$WORK/written.txt")"
sed 's/^/pipx-check:   /' "$WORK/written.txt"
stray=$(grep -v -e "^$CACHE_DIR/" -e "^$CONFIG_DIR/" -e "^$DATA_DIR/" "$WORK/written.txt" || true)
[ -z "$stray" ] || fail "bookpot wrote outside its platformdirs folders: $stray"

if [ -z "$(cd "$WORK" && find "$CACHE_DIR" -mindepth 1 -type f 2>/dev/null)" ]; then
  say "note: the cache was empty before \`bookpot cache clear\` (nothing run here wrote to it)"
fi
user bookpot cache clear </dev/null >"$WORK/cache-clear.out" 2>&1 || { cat "$WORK/cache-clear.out" >&2; fail "bookpot cache clear failed"; }
left=$(cd "$WORK" && find "$CACHE_DIR" -mindepth 1 -type f 2>/dev/null | sort || true)
[ -z "$left" ] || fail "bookpot cache clear left files in $CACHE_DIR: $left"
say "after bookpot cache clear, still written: $(list_written | wc -l) file(s)"
list_written | sed 's/^/pipx-check:   /'
step "bookpot cache clear emptied ~/.cache/bookpot"

# ---------------------------------------------------- 6. pipx uninstall
"$PY" -m pipx uninstall bookpot >"$WORK/uninstall.log" 2>&1 || { cat "$WORK/uninstall.log" >&2; fail "pipx uninstall failed"; }
[ ! -e "$VENV" ] || fail "pipx uninstall left $VENV"
[ ! -e "$BOOKPOT" ] && [ ! -L "$BOOKPOT" ] || fail "pipx uninstall left $BOOKPOT"
# pipx keeps an empty lock file per venv name (venvs/.bookpot.lock); it is
# pipx's, in PIPX_HOME, and holds nothing of bookpot's.
leftover=$(cd "$WORK" && find pipx bin man 2>/dev/null | grep -i bookpot | grep -v -x "pipx/venvs/\.bookpot\.lock" || true)
[ -z "$leftover" ] || fail "pipx uninstall left: $leftover"
if [ -e "$PIPX_HOME/venvs/.bookpot.lock" ]; then
  [ ! -s "$PIPX_HOME/venvs/.bookpot.lock" ] || fail "pipx's lock file $PIPX_HOME/venvs/.bookpot.lock is not empty"
  say "pipx kept its own empty lock file venvs/.bookpot.lock"
fi
say "left in PIPX_HOME (pipx's own): $(cd "$PIPX_HOME" && ls -A | tr '\n' ' ')"
step "pipx uninstall bookpot: no venv, command or man page left"

say "ok: all checks passed in $((SECONDS - START))s"
