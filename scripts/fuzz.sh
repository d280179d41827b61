#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a short, bounded time, from the corpus
# that fuzz/seed.sh makes out of tests/fixtures (plus whatever earlier local
# runs added to fuzz/corpus/). Exits 1 if any target finds a crash, a panic,
# a sanitizer error, a leak or a slow input; every target runs either way.
#
#   scripts/fuzz.sh [TARGET...]       # default: every target `cargo fuzz list` names
#
# FUZZ_SECONDS (default 20): libFuzzer's -max_total_time per target.
# Installs cargo-fuzz from crates.io when it is missing. The fuzz commands run
# on stable with RUSTC_BOOTSTRAP=1 (libFuzzer needs -Z sanitizer flags); the
# root crate never sees that variable. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs=${FUZZ_SECONDS:-20}
[[ $secs =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: FUZZ_SECONDS must be a whole number of seconds, got '$secs'" >&2; exit 2; }

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }

if [[ $# -gt 0 ]]; then targets=("$@"); else mapfile -t targets < <(fuzz list); fi
[[ ${#targets[@]} -gt 0 ]] || { echo "fuzz: no fuzz target found" >&2; exit 2; }

sh seed.sh
# Release + ASan + debug assertions, built before the runs so that a build
# error is not taken for a crash.
if [[ $# -gt 0 ]]; then for t in "${targets[@]}"; do fuzz build "$t"; done; else fuzz build; fi

logs=$(mktemp -d "${TMPDIR:-/tmp}/ims-token-fuzz.XXXXXX")
trap 'rm -rf "$logs"' EXIT
failed=()
for t in "${targets[@]}"; do
    log=$logs/$t.log
    # -timeout: an input that takes 10 s counts as a failure, so each run
    # stays bounded; -max_total_time ends a run that finds nothing.
    if fuzz run "$t" -- -max_total_time="$secs" -timeout=10 >"$log" 2>&1; then
        # libFuzzer's last status line: "#N DONE cov: ... exec/s: ...".
        echo "fuzz $t: no crash in ${secs} s: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 |
            sed -E 's/^#([0-9]+)[[:space:]]+DONE +/\1 runs, /')"
    else
        failed+=("$t")
        echo "fuzz $t: FAILED; its report:"
        # libFuzzer's seed, then from the panic or sanitizer report on, less
        # the stack frames (the input and the replay command are at the end).
        { grep -m1 '^INFO: Seed:' "$log" || true
          awk '/panicked at|==[0-9]+==ERROR|^SUMMARY/ { on = 1 } on' "$log" |
              grep -vE '^ +([0-9]+: |at |#[0-9]+ 0x)|^([Ss]tack backtrace:|note: Some details)' |
              tail -40; } | sed 's/^/    /'
        [[ -s $log ]] || echo "    (no output)"
    fi
done

# The plain closing line: targets without a crash, targets with one.
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: failed: ${failed[*]} (${secs} s each)"
    exit 1
fi
