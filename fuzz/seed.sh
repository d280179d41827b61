#!/usr/bin/env sh
# Seeds fuzz/corpus/<target>/ from the test fixtures, so that libFuzzer
# starts from valid inputs and mutates real JSON, PEM and DER structure.
# Safe to re-run; the corpus directories are git-ignored.
set -eu
cd "$(dirname "$0")"
fixtures=../tests/fixtures
mkdir -p corpus/credentials_json corpus/private_key_pem corpus/token_reply corpus/endpoint
cp "$fixtures"/*.json corpus/credentials_json/
cp "$fixtures"/*.pem corpus/private_key_pem/
# token_reply: byte 0 = flow (0 JWT, 1 OAuth), bytes 1-2 = status, little-endian
# (200 = \310\000, 401 = \221\001), then the body.
reply() { printf "$1" > "corpus/token_reply/$2"; }
reply '\000\310\000{"access_token":"tok-SECRET-xyz","token_type":"bearer","expires_in":86399999}' jwt-200
reply '\001\310\000{"access_token":"tok-SECRET-xyz","token_type":"bearer","expires_in":"86399"}' oauth-200
reply '\001\221\001{"error":"invalid_client","error_description":"bad"}' rejected-401
# The last three: regressions (two ports were once read as one).
for e in ims-na1.adobelogin.com https://ims-na1.adobelogin.com http://127.0.0.1:8080 'http://[::1]:1/' \
    http://127.0.0.1:80:80 https://ims-na1.adobelogin.com:443:443 'http://[::1]:80:80'; do
    printf '%s' "$e" > "corpus/endpoint/$(printf '%s' "$e" | tr -c 'a-z0-9' _)"
done
echo "seeded: $(find corpus -type f | wc -l) files"
