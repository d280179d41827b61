#!/usr/bin/env bash
# Benchmarks for ims-token; prints a table of figures, asserts nothing.
#
#   bench/run.sh            # from the repo root (or anywhere: it cds there)
#
# Knobs (environment): BENCH_RUNS (default 30), BENCH_CACHE_RUNS (50),
# BENCH_SIGN_N (200), BENCH_IDLE_SECS (60: the sink's idle minute, run twice,
# bench/sink_idle.sh). Needs cargo, gcc, binutils, python3, openssl, curl
# (valgrind for the instruction counts: without it those rows say n/a). All
# network traffic stays on 127.0.0.1 (a fake IMS in bench/fake_ims.py); cargo
# may fetch crates for the build like any build does.
#
# Exits 0 unless a build or a run fails. Figures with a "target" beside them
# are for reading, not checked here; the two size limits are (.ci/run runs
# scripts/sizes.sh, which makes the size rows here too).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${BENCH_RUNS:-30}
CACHE_RUNS=${BENCH_CACHE_RUNS:-50}
SIGN_N=${BENCH_SIGN_N:-200}
TRIPLE=x86_64-unknown-linux-gnu
export CARGO_TERM_COLOR=never

cmdline="bench/run.sh"
for v in BENCH_RUNS BENCH_CACHE_RUNS BENCH_SIGN_N BENCH_IDLE_SECS; do
    [[ -n ${!v:-} ]] && cmdline="$v=${!v} $cmdline"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ims-token-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
ROWS=$TMP/rows
: >"$ROWS"

row() { printf '%s|%s|%s|%s\n' "$1" "$2" "$3" "${4:-}" >>"$ROWS"; }
say() { printf '== %s\n' "$*" >&2; }
fail() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

# run LOGNAME CMD...: run quietly, show the log and stop if it fails.
run() {
    local log=$TMP/$1.log
    shift
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        fail "failed: $*"
    fi
}

# 1. Builds and sizes ---------------------------------------------------------
say "cargo build --release"
run build cargo build --release --locked
say "static PIE build ($TRIPLE, +crt-static)"
run build-static env RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$TRIPLE"

BIN=$ROOT/target/release/ims-token
STATIC=$ROOT/target/$TRIPLE/release/ims-token
[[ -x $BIN ]] || fail "missing $BIN"
[[ -x $STATIC ]] || fail "missing $STATIC"
# Stripped sizes against their limits, and the static binary's linkage.
scripts/sizes.sh --rows "$BIN" "$STATIC" >>"$ROWS"

# 2. Dependency tree ----------------------------------------------------------
say "cargo tree"
count_crates() {
    cargo tree --locked -e normal --prefix none "$@" | awk '{ print $1 }' | sort -u |
        grep -vx 'ims-token' | wc -l
}
run tree cargo tree --locked -e normal
crates=$(count_crates)
crates_lib=$(count_crates --no-default-features)
proc=$(grep -c '(proc-macro)' "$TMP/tree.log" || true)
row "crates" "normal deps, default features (cli)" "$crates" "<= 60"
row "crates" "normal deps, --no-default-features" "$crates_lib"
extra=$(comm -13 <(cargo tree --locked -e normal --prefix none --no-default-features |
                       awk '{ print $1 }' | sort -u) \
                 <(cargo tree --locked -e normal --prefix none | awk '{ print $1 }' | sort -u) |
        paste -sd, -)
if [[ -z $extra ]] && cargo tree --locked -e normal --no-default-features -i libc >/dev/null 2>&1; then
    extra="none new (libc already in)"
fi
row "crates" "added by the cli feature" "${extra:-none}" "libc"
versions=$(cargo tree --locked -e normal --prefix none | awk '$1 != "ims-token" { print $1, $2 }' |
           sort -u | wc -l)
row "crates" "distinct name+version, default features" "$versions"
row "crates" "proc-macro crates in the tree" "$proc" "0"

# 3. Key parse and JWT sign ---------------------------------------------------
say "cargo run --release --example sign_bench $SIGN_N"
run sign cargo run --release --locked --example sign_bench -- "$SIGN_N"
while IFS=$'\t' read -r label n median mean; do
    case $label in
        key_parse) name="key parse (PKCS#1 PEM, from_pem; checks only)" ;;
        jwt_sign) name="JWT sign (sign_jwt)" ;;
        key_first_sign) name="key parse + first JWT sign (with the deferred precomputation)" ;;
        *) continue ;;
    esac
    row "in-process" "$name median us" "${median#median_us=}"
    row "in-process" "$name mean us (${n})" "${mean#mean_us=}"
done <"$TMP/sign.log"

# 3b. TokenProvider under load (in-process fake IMS on 127.0.0.1) --------------
say "cargo run --release --example provider_bench"
run provider cargo run --release --locked --example provider_bench
field() { tr '\t' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
while IFS= read -r line; do
    case $line in
        hot_path*)
            row "provider" "token() hot path, 8 threads, fresh token: median ns" "$(field "$line" median_ns)"
            row "provider" "token() hot path, 8 threads, fresh token: p99 ns" "$(field "$line" p99_ns)" ;;
        refresh_wait*)
            ms() { awk -v u="$(field "$line" "$1")" 'BEGIN { printf "%.3f", u / 1000 }'; }
            row "provider" "longest wait of any call, 2 s refresh (8 threads): ms" "$(ms longest_any_us)" "< 100"
            row "provider" "longest wait of a call given the old token, 2 s refresh: ms" "$(ms longest_cached_us)" "< 1"
            row "provider" "calls over 100 ms during the 2 s refresh" "$(field "$line" calls_over_100ms)" "0" ;;
        storm*)
            row "provider" "exchanges for a 401 storm of 8 threads" "$(field "$line" exchanges)" "1" ;;
    esac
done <"$TMP/provider.log"

# 4-6. Whole process, cache, baseline ------------------------------------------
say "gcc bench/rusage_exec.c"
run helper gcc -O2 -o "$TMP/rusage_exec" bench/rusage_exec.c
say "whole-process runs against the fake IMS on 127.0.0.1"
if ! python3 -B bench/measure.py --helper "$TMP/rusage_exec" --bin "$BIN" --static-bin "$STATIC" \
        --runs "$RUNS" --cache-runs "$CACHE_RUNS" \
        --version "$(cargo pkgid | sed 's/.*[#@]//')" >>"$ROWS"; then
    fail "bench/measure.py failed"
fi

# 7. The sink at rest -------------------------------------------------------------
say "the sink over an idle ${BENCH_IDLE_SECS:-60} s, twice (bench/sink_idle.sh)"
bash bench/sink_idle.sh "$BIN" "sink" >>"$ROWS" || fail "bench/sink_idle.sh failed"
bash bench/sink_idle.sh "$STATIC" "sink (static)" | grep -v '^anchors|' >>"$ROWS" ||
    fail "bench/sink_idle.sh failed"

# Table -----------------------------------------------------------------------
python3 - "$ROWS" "$cmdline" "$(nproc)" "$(rustc --version)" \
    "$RUNS" "$CACHE_RUNS" "$SIGN_N" <<'PY'
import sys
rows_file, cmdline, nproc, rustc, runs, cache_runs, sign_n = sys.argv[1:]
rows = [line.rstrip("\n").split("|", 3) for line in open(rows_file) if line.count("|") >= 3]
w = [max(len(r[i]) for r in rows) for i in range(3)]
print(f"$ {cmdline}")
print(f"# nproc={nproc}  {rustc}  runs={runs} (+3 warm-ups) cache_runs={cache_runs} sign_n={sign_n}")
print("# wall = fork..wait4 of one process; peak RSS = ru_maxrss; targets are for reading, not checked")
head = ("section", "metric", "value", "target")
w = [max(w[i], len(head[i])) for i in range(3)]
line = f"{'-' * w[0]}-+-{'-' * w[1]}-+-{'-' * w[2]}-+-{'-' * 12}"
print(f"{head[0]:<{w[0]}} | {head[1]:<{w[1]}} | {head[2]:>{w[2]}} | {head[3]}")
print(line)
last = None
for section, metric, value, target in rows:
    if last is not None and section != last:
        print(line)
    last = section
    print(f"{section:<{w[0]}} | {metric:<{w[1]}} | {value:>{w[2]}} | {target}")
PY
