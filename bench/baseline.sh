#!/usr/bin/env bash
# The shell way to do what one `ims-token` run does: sign the IMS JWT with
# openssl and exchange it with curl. It is the baseline bench/run.sh compares
# against.
#
#   bench/baseline.sh prepare CREDENTIALS.json DIR   # once: key and ids into DIR
#   bench/baseline.sh fetch DIR IMS_URL [CA_PEM]     # per run: sign, POST, print token
#   bench/baseline.sh CREDENTIALS.json IMS_URL [CA_PEM]   # both
#
# `prepare` uses python3 to read the JSON once (a cron script would keep the
# key and ids in files); `fetch` is what the script does on every run and is
# what the bench times. curl is told to use no proxy and gives up after 10 s.
set -euo pipefail

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

prepare() {
    local creds=$1 dir=$2
    mkdir -p "$dir"
    chmod 700 "$dir"
    python3 - "$creds" "$dir" <<'PY'
import json, os, sys
creds, out = sys.argv[1], sys.argv[2]
with open(creds) as f:
    root = json.load(f)
i = root.get("integration", root)
ims = i["imsEndpoint"].removeprefix("https://").rstrip("/")
def put(name, text):
    fd = os.open(os.path.join(out, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
put("key.pem", i["privateKey"].replace("\r\n", "\n").replace("\\n", "\n"))
put("client_id", i["technicalAccount"]["clientId"])
put("client_secret", i["technicalAccount"]["clientSecret"])  # no newline
put("org", i["org"])
put("sub", i["id"])
put("ims", ims)
put("metascopes", i["metascopes"])
PY
}

fetch() {
    local dir=$1 url=${2%/} ca=${3:-}
    local client_id org sub ims scopes exp claims header unsigned sig jwt reply token
    client_id=$(<"$dir/client_id")
    org=$(<"$dir/org")
    sub=$(<"$dir/sub")
    ims=$(<"$dir/ims")
    scopes=$(<"$dir/metascopes")
    exp=$(( $(date +%s) + 300 ))
    claims="{\"exp\":$exp,\"iss\":\"$org\",\"sub\":\"$sub\",\"aud\":\"https://$ims/c/$client_id\""
    local list s
    IFS=, read -ra list <<<"$scopes"
    for s in "${list[@]}"; do
        claims+=",\"https://$ims/s/$s\":true"
    done
    claims+="}"
    header=$(printf '%s' '{"alg":"RS256","typ":"JWT"}' | b64url)
    unsigned="$header.$(printf '%s' "$claims" | b64url)"
    sig=$(printf '%s' "$unsigned" | openssl dgst -sha256 -sign "$dir/key.pem" -binary | b64url)
    jwt="$unsigned.$sig"
    local cacert=()
    [[ -n $ca ]] && cacert=(--cacert "$ca")
    reply=$(curl -sS --fail --noproxy '*' --max-time 10 "${cacert[@]}" \
        -d "client_id=$client_id" \
        --data-urlencode "client_secret@$dir/client_secret" \
        -d "jwt_token=$jwt" \
        "$url/ims/exchange/jwt")
    token=$(printf '%s' "$reply" | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
    [[ -n $token ]] || { echo "baseline: no access_token in the reply" >&2; exit 1; }
    printf '%s\n' "$token"
}

case ${1:-} in
    prepare) [[ $# -eq 3 ]] || { echo "usage: $0 prepare CREDENTIALS DIR" >&2; exit 2; }
             prepare "$2" "$3" ;;
    fetch)   [[ $# -ge 3 && $# -le 4 ]] || { echo "usage: $0 fetch DIR IMS_URL [CA]" >&2; exit 2; }
             fetch "$2" "$3" "${4:-}" ;;
    ''|-h|--help) sed -n '2,13p' "$0"; exit 2 ;;
    *)       [[ $# -ge 2 && $# -le 3 ]] || { echo "usage: $0 CREDENTIALS IMS_URL [CA]" >&2; exit 2; }
             tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
             prepare "$1" "$tmp/state"
             fetch "$tmp/state" "$2" "${3:-}" ;;
esac
