#!/usr/bin/env bash
# Offline supply-chain check with cargo-deny: advisories (against the RustSec
# snapshot in ../shared/advisory-db, as there is no network to fetch the live
# database), licenses, bans and sources, per deny.toml.
#   scripts/audit.sh [path-to-advisory-db]
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-../shared/advisory-db}
[ -d "$src/crates" ] || { echo "audit: no advisory database at $src" >&2; exit 2; }

command -v cargo-deny >/dev/null || cargo install --locked cargo-deny

# cargo-deny wants a git checkout named after the database URL's hash.
dbs=target/advisory-dbs
db=$dbs/advisory-db-3157b0e258782691
rm -rf "$dbs" && mkdir -p "$dbs"
cp -R "$src" "$db" && chmod -R u+w "$db"
git -C "$db" init -q
git -C "$db" add -A
git -C "$db" -c user.name=audit -c user.email=audit@localhost commit -qm snapshot
echo "advisory database snapshot: $(cat "$src/SNAPSHOT" 2>/dev/null || echo unknown)"

# --offline needs every crate in Cargo.lock, those of other platforms too
# (windows-sys, ...), which a build on this one never downloads.
cargo fetch --locked
cargo deny --offline check --show-stats
