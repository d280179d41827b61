#!/usr/bin/env bash
# The sink at rest: its peak RSS and the CPU it uses while it waits for the
# next refresh, measured over an idle minute, beside what the anchors
# publish of their own footprint. Budget: peak RSS <= 5 MiB, no CPU between
# refreshes.
#
#   bench/sink_idle.sh [BIN [SECTION]]   # default: target/release/ims-token (built
#                                        # if missing), rows in section "sink"
#
# Knob: BENCH_IDLE_SECS (default 60). A fake IMS on 127.0.0.1 (bench/fake_ims.py,
# over TLS with the test CA) hands out a 24-hour token, so the first refresh
# (TLS handshake, JWT signature, exchange) is the peak and nothing is due
# during the idle minute. Figures from /proc/PID: VmHWM and VmRSS of status,
# utime + stime of stat (all threads), and the context switches of every
# thread (a thread that wakes up switches).
#
# Prints rows "section|metric|value|target" (bench/run.sh puts them in its
# table); asserts nothing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${1:-target/release/ims-token}
SECTION=${2:-sink}
IDLE=${BENCH_IDLE_SECS:-60}
if [[ ! -x $BIN ]]; then
    cargo build --release --locked >&2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ims-token-sink-idle.XXXXXX")
fake=""
sink=""
cleanup() {
    [[ -n $sink ]] && kill "$sink" 2>/dev/null || true
    [[ -n $fake ]] && kill "$fake" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { printf 'bench/sink_idle.sh: %s\n' "$*" >&2; exit 1; }

# wait_for SECONDS TEST...: polls TEST every 50 ms.
wait_for() {
    local tries=$(($1 * 20))
    shift
    until "$@"; do
        ((tries-- > 0)) || return 1
        sleep 0.05
    done
}

python3 -B bench/fake_ims.py --tls tests/fixtures/tls/server.pem tests/fixtures/tls/server.key \
    >"$TMP/url" &
fake=$!
wait_for 10 test -s "$TMP/url" || fail "the fake IMS did not start"
url=$(head -n1 "$TMP/url")

"$BIN" sink -c tests/fixtures/service-credentials.sample.json --ims "$url" \
    --ca-file tests/fixtures/tls/ca.pem --out "$TMP/token" --status-file "$TMP/status.json" \
    2>"$TMP/sink.log" &
sink=$!
wait_for 30 test -s "$TMP/token" || { cat "$TMP/sink.log" >&2; fail "no token written"; }
sleep 1

status_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$sink/status"; }
# utime + stime of the whole process, in clock ticks (fields 14 and 15 after the name).
cpu_ticks() { sed 's/^.*) //' "/proc/$sink/stat" | awk '{ print $12 + $13 }'; }
switches() {
    cat /proc/"$sink"/task/*/status |
        awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n }'
}
threads() { ls "/proc/$sink/task" | wc -l; }

ticks0=$(cpu_ticks)
switches0=$(switches)
sleep "$IDLE"
ticks1=$(cpu_ticks)
switches1=$(switches)
hwm=$(status_kib VmHWM)
rss=$(status_kib VmRSS)
nthreads=$(threads)
hz=$(getconf CLK_TCK)
cpu_ms=$(( (ticks1 - ticks0) * 1000 / hz ))

kill -TERM "$sink"
code=0
wait "$sink" || code=$?
sink=""

row() { printf '%s|%s|%s|%s\n' "$SECTION" "$1" "$2" "${3:-}"; }
row "peak RSS (VmHWM), first refresh over TLS included, KiB" "$hwm" "<= 5120"
row "peak RSS MiB" "$(awk -v k="$hwm" 'BEGIN { printf "%.2f", k / 1024 }')" "<= 5"
row "RSS at rest (VmRSS), KiB" "$rss"
row "CPU during ${IDLE} s idle (utime+stime, all threads), ms" "$cpu_ms" "0"
row "context switches during ${IDLE} s idle (all threads)" "$((switches1 - switches0))" "0"
row "threads (main, signals, refresh)" "$nthreads"
row "exit status after SIGTERM" "$code" "0"
# What the anchors publish (none of spiffe-helper or token-refresher was found).
printf 'anchors|%s|%s|\n' \
    "Vault Agent renewing a token, resident (hashicorp/vault#27887)" "134 MB" \
    "vault-agent sidecar in use, CPU / memory (hashicorp/vault-helm#472)" "2m / 13 MiB" \
    "vault-agent sidecar, injector's default request (hashicorp/vault-helm#472)" "250m / 64 MiB"
