#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a bounded time on stable Rust.
#
#   scripts/fuzz.sh            # 20 s per target, as CI does
#   scripts/fuzz.sh 3600       # an hour per target
#   scripts/fuzz.sh 600 filter # one target
#
# cargo-fuzz drives libFuzzer with SanitizerCoverage instrumentation, which
# stable rustc provides; only the sanitizers need nightly, so the targets run
# with `--sanitizer none` (Rust code is memory-safe; the targets look for
# panics, overflows (`-a` turns overflow checks on) and broken invariants).
# Each target starts from its committed seeds (fuzz/seeds/<target>) and keeps
# what it learns in fuzz/corpus/<target> (not committed). A crash leaves its
# input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail

seconds="${1:-20}"
only="${2:-}"
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install --locked cargo-fuzz@0.13.2
fi
# Its own target directory: the instrumented build must not replace the
# workspace's ordinary artifacts.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"

cargo fuzz build --sanitizer none -a
targets=$(cargo fuzz list)
for t in $targets; do
    if [[ -n "$only" && "$t" != "$only" ]]; then
        continue
    fi
    mkdir -p "corpus/$t" "seeds/$t"
    echo "==> fuzz $t for ${seconds}s"
    log="$(mktemp)"
    if ! cargo fuzz run --sanitizer none -a "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -max_len=8192 >"$log" 2>&1; then
        tail -40 "$log" >&2
        rm -f "$log"
        echo "fuzz target $t failed; the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E "^Done [0-9]+ runs" "$log" || tail -3 "$log"
    rm -f "$log"
done
echo "fuzz: all targets ran ${seconds}s without a crash"
