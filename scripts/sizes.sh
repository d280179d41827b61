#!/usr/bin/env bash
# Sizes of the two release binaries against their limits (issue 18), and
# whether the static one is a static PIE (no ELF interpreter, no shared
# library, position-independent so that the kernel randomizes where its code
# is mapped).
#
#   scripts/sizes.sh RELEASE_BIN STATIC_BIN          # prints; exit 1 if a check fails
#   scripts/sizes.sh --rows RELEASE_BIN STATIC_BIN   # bench/run.sh's rows; exit 0
#
# RELEASE_BIN: `cargo build --release` (target/release/ims-token).
# STATIC_BIN: `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release
# --target x86_64-unknown-linux-gnu`. Sizes are of the stripped binaries (the
# release profile strips; a binary with a symbol table is measured on a
# stripped copy). Needs binutils (readelf, strip).
set -euo pipefail

# Limits in bytes: 2.25 MiB and 3.25 MiB.
RELEASE_LIMIT=$((9 * 1024 * 1024 / 4))
STATIC_LIMIT=$((13 * 1024 * 1024 / 4))

rows=false
if [[ ${1:-} == --rows ]]; then rows=true; shift; fi
[[ $# -eq 2 ]] || { echo "usage: scripts/sizes.sh [--rows] RELEASE_BIN STATIC_BIN" >&2; exit 2; }
release=$1 static=$2
for b in "$release" "$static"; do
    [[ -f $b ]] || { echo "sizes: no binary at $b (build it first)" >&2; exit 2; }
done

mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }

# stripped_size BIN: bytes of BIN without its symbol table.
stripped_size() {
    if readelf -SW "$1" | grep -q ' \.symtab '; then
        local tmp
        tmp=$(mktemp)
        strip -o "$tmp" "$1"
        stat -c %s "$tmp"
        rm -f "$tmp"
    else
        stat -c %s "$1"
    fi
}

# linkage BIN: "static-pie", or what is wrong with it.
linkage() {
    local bad=()
    readelf -hW "$1" | grep -Eq '^ *Type: +DYN ' || bad+=("not position-independent (ELF type is not DYN)")
    ! readelf -lW "$1" | grep -q 'INTERP' || bad+=("has an ELF interpreter (dynamically linked)")
    ! readelf -dW "$1" | grep -q '(NEEDED)' || bad+=("needs shared libraries")
    if [[ ${#bad[@]} -eq 0 ]]; then echo static-pie; else printf '%s; ' "${bad[@]}" | sed 's/; $/\n/'; fi
}

rsize=$(stripped_size "$release")
ssize=$(stripped_size "$static")
link=$(linkage "$static")

if $rows; then
    row() { printf 'size|%s|%s|%s\n' "$1" "$2" "${3:-}"; }
    row "release, stripped: bytes" "$rsize"
    row "release, stripped: MiB" "$(mib "$rsize")" "<= $(mib "$RELEASE_LIMIT")"
    row "static PIE (+crt-static), stripped: bytes" "$ssize"
    row "static PIE (+crt-static), stripped: MiB" "$(mib "$ssize")" "<= $(mib "$STATIC_LIMIT")"
    row "static binary linkage (DYN, no INTERP, no NEEDED)" "$link" "static-pie"
    exit 0
fi

status=0
# check NAME BYTES LIMIT
check() {
    local verdict=ok
    if (($2 > $3)); then verdict="TOO LARGE"; status=1; fi
    printf '%-28s %9d bytes = %s MiB (limit %s MiB): %s\n' "$1" "$2" "$(mib "$2")" "$(mib "$3")" "$verdict"
}
check "release, stripped" "$rsize" "$RELEASE_LIMIT"
check "static PIE, stripped" "$ssize" "$STATIC_LIMIT"
if [[ $link == static-pie ]]; then
    echo "static binary: static-pie linked (ELF type DYN, no interpreter, no shared library)"
else
    echo "static binary: $link: FAIL"
    status=1
fi
exit $status
