//! Compact JWTs taken apart and put together by hand, independently of
//! the crate, and an `openssl` check of an RS256 signature.

use std::fs;
use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use super::fixture_path;

/// The three segments of a compact JWT; panics unless there are three.
pub fn jwt_segments(jwt: &str) -> [&str; 3] {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three segments: {jwt}");
    [parts[0], parts[1], parts[2]]
}

/// A JWT segment decoded: base64url without padding, or a panic.
pub fn b64url_decode(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap_or_else(|e| panic!("segment is not base64url without padding: {e}"))
}

/// `bytes` as a JWT segment: base64url without padding.
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims of a compact JWT (three segments; not verified).
pub fn jwt_claims(jwt: &str) -> Value {
    let [_, payload, _] = jwt_segments(jwt);
    serde_json::from_slice(&b64url_decode(payload)).expect("JSON payload")
}

/// A compact JWT of this header JSON text and these claims, with
/// `signature` as its third segment as it is (signed by nobody).
pub fn unsigned_jwt(header: &str, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64url(header),
        b64url(claims.to_string())
    )
}

/// RS256 check of `jwt` against `sample-key.pub.pem` with
/// `openssl dgst -sha256 -verify`, an independent verifier, working in
/// `dir`; true when openssl says `Verified OK`.
pub fn openssl_verifies(dir: &Path, jwt: &str) -> bool {
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    let signature = b64url_decode(signature);
    let input_path = dir.join("input");
    let signature_path = dir.join("signature");
    fs::write(&input_path, input).unwrap();
    fs::write(&signature_path, signature).unwrap();
    let output = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(fixture_path("sample-key.pub.pem"))
        .arg("-signature")
        .arg(&signature_path)
        .arg(&input_path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `openssl` ({e}); it is needed to verify the JWT independently")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    output.status.success() && stdout.contains("Verified OK")
}
