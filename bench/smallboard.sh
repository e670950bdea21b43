#!/usr/bin/env bash
# The small-board profile: one core, --ram-cap 512M, a 64K-token book read
# and asked, peak RSS measured from outside by /usr/bin/time -v.
#
#   bash bench/smallboard.sh [TOKENS]      # default 65536
#
# Writes bench/out/smallboard-<tokens>.txt (the time -v reports and answers).
set -euo pipefail
cd "$(dirname "$0")/.."
TOKENS="${1:-65536}"
CPU="${CPU:-0}"  # which core (taskset -c)
OUT="bench/out/smallboard-${TOKENS}.txt"
DOC="bench/out/docs/smallboard_${TOKENS}.txt"
CACHE="$(mktemp -d)"
trap 'rm -rf "$CACHE"' EXIT
mkdir -p bench/out/docs
.venv/bin/python - "$TOKENS" "$DOC" <<'EOF'
import sys
sys.path.insert(0, "tests")
from passkey import passkey_text
n, path = int(sys.argv[1]), sys.argv[2]
open(path, "w").write(passkey_text(n, 0.35, 27183))
EOF
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench/smallboard.sh needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
run() {
  echo "\$ taskset -c $CPU $TIME -v .venv/bin/bookpot $*" | tee -a "$OUT"
  BOOKPOT_CACHE_DIR="$CACHE" taskset -c "$CPU" "$TIME" -v .venv/bin/bookpot "$@" >>"$OUT" 2>&1
  echo >>"$OUT"
}
: >"$OUT"
{ echo "# $(date -u +%FT%TZ) $(nproc) cores, $(uptime)"; } >>"$OUT"
Q="What is the pass key? The pass key is"
run ingest "$DOC" --ram-cap 512M --threads 1 --json -q
run ask "$DOC" "$Q" --ram-cap 512M --threads 1 --max-tokens 12 --json -q
grep -E '^\$|Maximum resident|Elapsed|"answer"|ingest_tokens_per_s' "$OUT" | sed 's/, "stats".*//' || true
