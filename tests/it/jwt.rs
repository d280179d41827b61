//! Private-key formats, the keys that must be refused, and the signed JWT:
//! compared whole against one made independently with openssl, checked
//! claim by claim, and verified at run time with `openssl dgst -verify`.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{
    b64url, b64url_decode, fixture_path, jwt_claims as claims, jwt_segments, openssl_verifies,
    read_fixture, sample_key_with_a_wrong_prime, TempDir,
};
use ims_token::{
    sign_jwt, Client, ClientSecret, Error, PrivateKey, ServiceAccount, MAX_JWT_LIFETIME,
};
use serde_json::{json, Value};

fn pkcs1() -> String {
    read_fixture("sample-key.pkcs1.pem")
}

fn pkcs8() -> String {
    read_fixture("sample-key.pkcs8.pem")
}

const CLIENT_ID: &str = "cm-p12345-e67890-integration-1";
const ORG_ID: &str = "0123456789ABCDEF01234567@AdobeOrg";
const TECH_ACCOUNT: &str = "1A2B3C4D5E6F7A8B9C0D1E2F@techacct.adobe.com";
const METASCOPES: &str =
    "ent_aem_cloud_api, ent_cloudmgr_sdk ,,https://ims-na1.adobelogin.com/s/custom";
const NOW_SECS: u64 = 1_700_000_000;
const LIFETIME: Duration = Duration::from_secs(300);

/// The JWT for `account(sample-key.pkcs1.pem)` at `NOW_SECS` with a 300 s
/// lifetime, made with openssl, independently of this crate:
///
/// ```sh
/// b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
/// H=$(printf '%s' '{"alg":"RS256","typ":"JWT"}' | b64url)
/// C=$(printf '%s' '{"aud":"https://ims-na1.adobelogin.com/c/cm-p12345-e67890-integration-1","exp":1700000300,"https://ims-na1.adobelogin.com/s/custom":true,"https://ims-na1.adobelogin.com/s/ent_aem_cloud_api":true,"https://ims-na1.adobelogin.com/s/ent_cloudmgr_sdk":true,"iss":"0123456789ABCDEF01234567@AdobeOrg","sub":"1A2B3C4D5E6F7A8B9C0D1E2F@techacct.adobe.com"}' | b64url)
/// S=$(printf '%s.%s' "$H" "$C" | openssl dgst -sha256 -sign tests/fixtures/sample-key.pkcs1.pem | b64url)
/// printf '%s.%s.%s' "$H" "$C" "$S"
/// ```
const EXPECTED_JWT: &str = concat!(
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9",
    ".",
    "eyJhdWQiOiJodHRwczovL2ltcy1uYTEuYWRvYmVsb2dpbi5jb20vYy9jbS1wMTIzNDUtZTY3ODkwLWludGVncmF0aW9u",
    "LTEiLCJleHAiOjE3MDAwMDAzMDAsImh0dHBzOi8vaW1zLW5hMS5hZG9iZWxvZ2luLmNvbS9zL2N1c3RvbSI6dHJ1ZSwi",
    "aHR0cHM6Ly9pbXMtbmExLmFkb2JlbG9naW4uY29tL3MvZW50X2FlbV9jbG91ZF9hcGkiOnRydWUsImh0dHBzOi8vaW1z",
    "LW5hMS5hZG9iZWxvZ2luLmNvbS9zL2VudF9jbG91ZG1ncl9zZGsiOnRydWUsImlzcyI6IjAxMjM0NTY3ODlBQkNERUYw",
    "MTIzNDU2N0BBZG9iZU9yZyIsInN1YiI6IjFBMkIzQzRENUU2RjdBOEI5QzBEMUUyRkB0ZWNoYWNjdC5hZG9iZS5jb20i",
    "fQ",
    ".",
    "rhxx6OEPYZjrFe6vVMd9OmELFP4s6gJ8Y5unXxU-ZG-UogCpnJqoet-Io8HcBlWBcvRmj5nipJjqC4aoWkZtwlQIt43r",
    "QmEnzA3yfvC5jaNGjd2_i687MreZhxyMgrvWxFIAkbqCPARBjEKv7wM6w0XYSPj1wY6Fld5UHLQroMVJcF3-cUU-loEJ",
    "rb3sPB2NGbSzq2hDiKG9_il9El0XjUCdOPmOO1dKHso7VzgCT3f2OrS8MnsVeidJceQJ_Z7U5mKO1jTQ-zfBfrr7cgTo",
    "vAePyvvdtEcy-kn6cFZpdDAikVeGil0jo8lTqs_TB7wIeGYptgLdldUmOFZR-6M9qw",
);

fn account(key: PrivateKey) -> ServiceAccount {
    ServiceAccount::builder()
        .ims("ims-na1.adobelogin.com")
        .client_id(CLIENT_ID)
        .client_secret(ClientSecret::new("p8e-SAMPLE-not-a-real-secret"))
        .org_id(ORG_ID)
        .technical_account_id(TECH_ACCOUNT)
        .private_key(key)
        .metascopes(METASCOPES)
        .build()
        .unwrap()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The JWT this crate signs with `key` at `NOW_SECS` for `LIFETIME`.
fn jwt_with(key: PrivateKey) -> String {
    sign_jwt(&account(key), at(NOW_SECS), LIFETIME)
        .unwrap()
        .secret()
        .to_owned()
}

// ---------------------------------------------------------------------------
// Key formats
// ---------------------------------------------------------------------------

/// The variants of a PEM text a user may hand over.
fn variants(pem: &str) -> Vec<(&'static str, String)> {
    let lf = pem.replace("\r\n", "\n");
    let crlf = lf.replace('\n', "\r\n");
    let indented: String = lf.lines().map(|l| format!("    {l}  \n")).collect();
    vec![
        ("as is", pem.to_owned()),
        ("\\r\\n line endings", crlf),
        (
            "surrounding whitespace",
            format!("\n\n  \t{}\n  \n", lf.trim()),
        ),
        ("indented lines", indented),
        ("no trailing newline", lf.trim_end().to_owned()),
        (
            "literal \\n on one line",
            lf.trim_end().replace('\n', "\\n"),
        ),
        (
            "literal \\r\\n on one line",
            lf.trim_end().replace('\n', "\\r\\n"),
        ),
        ("literal \\n with a trailing one", lf.replace('\n', "\\n")),
    ]
}

#[test]
fn pkcs1_and_pkcs8_in_every_layout_sign_the_same_jwt() {
    let reference = jwt_with(PrivateKey::from_pem(&pkcs1()).unwrap());
    for (format, pem) in [("PKCS#1", pkcs1()), ("PKCS#8", pkcs8())] {
        for (layout, text) in variants(&pem) {
            let key = PrivateKey::from_pem(&text)
                .unwrap_or_else(|e| panic!("{format}, {layout}: {e}\n{text}"));
            assert_eq!(key.bits(), 2048, "{format}, {layout}");
            assert_eq!(jwt_with(key), reference, "{format}, {layout}");
        }
    }
}

#[test]
fn key_from_the_credentials_file_signs_the_same_jwt() {
    let credentials =
        ims_token::Credentials::from_file(fixture_path("service-credentials.sample.json")).unwrap();
    let ims_token::Credentials::ServiceAccount(from_file) = credentials else {
        panic!("expected a service account");
    };
    assert_eq!(
        jwt_with(from_file.private_key().clone()),
        jwt_with(PrivateKey::from_pem(&pkcs1()).unwrap())
    );
}

/// `from_pem(text)` must be `Error::Key` whose message contains every word
/// (case-insensitive).
fn expect_key_error(what: &str, text: &str, words: &[&str]) {
    match PrivateKey::from_pem(text) {
        Err(e @ Error::Key { .. }) => {
            let message = e.to_string().to_lowercase();
            for word in words {
                assert!(
                    message.contains(&word.to_lowercase()),
                    "{what}: message lacks `{word}`: {e}"
                );
            }
            assert!(
                e.is_config(),
                "{what}: a key error is a configuration error"
            );
        }
        Err(other) => panic!("{what}: expected Error::Key, got {other:?}"),
        Ok(key) => panic!("{what}: expected an error, got {key:?}"),
    }
}

#[test]
fn certificate_is_refused() {
    expect_key_error(
        "certificate",
        &read_fixture("sample-cert.pem"),
        &["certificate"],
    );
}

#[test]
fn public_key_is_refused() {
    expect_key_error(
        "public key",
        &read_fixture("sample-key.pub.pem"),
        &["public key"],
    );
}

#[test]
fn ec_keys_are_refused() {
    expect_key_error("EC PKCS#8", &read_fixture("key-ec.pem"), &["RSA"]);
    expect_key_error("EC SEC1", &read_fixture("key-ec-sec1.pem"), &["RSA"]);
}

#[test]
fn rsa_1024_is_refused_in_both_formats() {
    for (what, path) in [
        ("1024-bit PKCS#1", "key-rsa1024.pkcs1.pem"),
        ("1024-bit PKCS#8", "key-rsa1024.pkcs8.pem"),
    ] {
        expect_key_error(what, &read_fixture(path), &["2048", "1024"]);
    }
}

#[test]
fn encrypted_key_without_passphrase_is_refused() {
    expect_key_error(
        "encrypted PKCS#8",
        &read_fixture("key-encrypted.pkcs8.pem"),
        &["encrypted", "passphrase"],
    );
}

#[test]
fn text_that_is_not_a_key_is_refused() {
    expect_key_error("garbage", "this is not a key at all", &["PEM"]);
    expect_key_error("empty", "", &["PEM"]);
    expect_key_error("whitespace", " \r\n\t\\n", &["PEM"]);
    expect_key_error(
        "BEGIN without body",
        "-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----\n",
        &["malformed"],
    );
    expect_key_error(
        "BEGIN without END",
        "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDgRSb8zvVTNnS0\n",
        &["malformed"],
    );
    expect_key_error(
        "unknown label",
        "-----BEGIN SOMETHING-----\nAAAA\n-----END SOMETHING-----\n",
        &["SOMETHING"],
    );
}

#[test]
fn corrupted_base64_body_is_refused() {
    for (format, pem) in [("PKCS#1", pkcs1()), ("PKCS#8", pkcs8())] {
        let lf = pem.replace("\r\n", "\n");
        let mut lines: Vec<String> = lf.lines().map(str::to_owned).collect();
        // A character that is not base64 in the middle of the body.
        let mut bad_char = lines.clone();
        bad_char[5].replace_range(10..11, "!");
        // A line dropped: valid base64, broken DER.
        let mut truncated = lines.clone();
        truncated.remove(5);
        // Valid base64 of other bytes at the start of the body.
        lines[1].replace_range(0..8, "AAAAAAAA");
        for (how, lines) in [
            ("bad character", bad_char),
            ("line dropped", truncated),
            ("bytes changed", lines),
        ] {
            expect_key_error(
                &format!("{format}, {how}"),
                &(lines.join("\n") + "\n"),
                &["malformed"],
            );
        }
    }
}

/// Parsing checks the structure and the size only; the numbers are
/// checked by the precomputation before the first signature, which is
/// still `Error::Key`, and the same on every later try.
#[test]
fn a_key_whose_numbers_make_no_rsa_key_is_refused_when_signing() {
    for name in ["sample-key.pkcs1.pem", "sample-key.pkcs8.pem"] {
        let pem = sample_key_with_a_wrong_prime(name);
        let key = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(key.bits(), 2048, "{name}");
        let account = account(key);
        for attempt in 0..2 {
            let e = sign_jwt(&account, at(NOW_SECS), LIFETIME).unwrap_err();
            assert!(
                matches!(e, Error::Key { .. }) && e.is_config(),
                "{name} {attempt}: {e:?}"
            );
            let message = e.to_string();
            assert!(message.contains("malformed"), "{name}: {message}");
            let body = pem.lines().nth(3).unwrap();
            assert!(!format!("{e:?}").contains(body), "{name}: {e:?}");
        }
    }
}

#[test]
fn refused_keys_do_not_show_their_body() {
    // A 1024-bit key is real key material: the error must not quote it.
    for path in [
        "key-rsa1024.pkcs1.pem",
        "key-rsa1024.pkcs8.pem",
        "key-ec.pem",
        "key-ec-sec1.pem",
        "key-encrypted.pkcs8.pem",
    ] {
        let pem = read_fixture(path);
        let err = PrivateKey::from_pem(&pem).unwrap_err();
        let shown = format!("{err} {err:?}");
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
        {
            assert!(
                !shown.contains(line),
                "{path}: error shows the key: {shown}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Encrypted keys (cargo feature `encrypted-key`)
// ---------------------------------------------------------------------------

#[cfg(feature = "encrypted-key")]
#[test]
fn encrypted_key_with_its_passphrase_signs_the_same_jwt() {
    let encrypted = read_fixture("key-encrypted.pkcs8.pem");
    let key =
        PrivateKey::from_encrypted_pem(&encrypted, &ClientSecret::new("correct horse")).unwrap();
    assert_eq!(key.bits(), 2048);
    assert_eq!(jwt_with(key), EXPECTED_JWT);
    // Literal `\n` (from an environment variable) works here too.
    let one_line = encrypted.trim_end().replace('\n', "\\n");
    let key =
        PrivateKey::from_encrypted_pem(&one_line, &ClientSecret::new("correct horse")).unwrap();
    assert_eq!(jwt_with(key), EXPECTED_JWT);
}

#[cfg(feature = "encrypted-key")]
#[test]
fn encrypted_key_with_a_wrong_passphrase_is_refused() {
    let encrypted = read_fixture("key-encrypted.pkcs8.pem");
    for wrong in ["correct horse battery", "", "Correct horse"] {
        match PrivateKey::from_encrypted_pem(&encrypted, &ClientSecret::new(wrong)) {
            Err(e @ Error::Key { .. }) => {
                assert!(e.to_string().contains("passphrase"), "{e}");
                if !wrong.is_empty() {
                    assert!(!format!("{e} {e:?}").contains(wrong), "{e:?}");
                }
            }
            other => panic!("passphrase {wrong:?}: expected Error::Key, got {other:?}"),
        }
    }
}

#[cfg(feature = "encrypted-key")]
#[test]
fn from_encrypted_pem_takes_plain_keys_and_refuses_others() {
    let secret = ClientSecret::new("unused");
    let key = PrivateKey::from_encrypted_pem(&pkcs8(), &secret).unwrap();
    assert_eq!(jwt_with(key), EXPECTED_JWT);
    for path in ["sample-cert.pem", "key-ec-sec1.pem"] {
        let err = PrivateKey::from_encrypted_pem(&read_fixture(path), &secret).unwrap_err();
        assert!(matches!(err, Error::Key { .. }), "{path}: {err:?}");
    }
}

// ---------------------------------------------------------------------------
// The exact JWT
// ---------------------------------------------------------------------------

#[test]
fn signed_jwt_equals_the_one_made_with_openssl() {
    let key = PrivateKey::from_pem(&read_fixture("sample-key.pkcs1.pem")).unwrap();
    let jwt = sign_jwt(&account(key), at(NOW_SECS), LIFETIME).unwrap();
    assert_eq!(jwt.secret(), EXPECTED_JWT);
}

#[test]
fn signed_jwt_has_the_header_and_claims_ims_expects() {
    let jwt = jwt_with(PrivateKey::from_pem(&pkcs1()).unwrap());
    let [header, _, signature] = jwt_segments(&jwt);
    let header: Value = serde_json::from_slice(&b64url_decode(header)).unwrap();
    assert_eq!(header, json!({ "alg": "RS256", "typ": "JWT" }));
    assert_eq!(
        claims(&jwt),
        json!({
            "aud": "https://ims-na1.adobelogin.com/c/cm-p12345-e67890-integration-1",
            "exp": 1_700_000_300u64,
            "iss": ORG_ID,
            "sub": TECH_ACCOUNT,
            "https://ims-na1.adobelogin.com/s/ent_aem_cloud_api": true,
            "https://ims-na1.adobelogin.com/s/ent_cloudmgr_sdk": true,
            "https://ims-na1.adobelogin.com/s/custom": true,
        })
    );
    // A 2048-bit RSA signature is 256 bytes.
    assert_eq!(b64url_decode(signature).len(), 256);
    assert!(!jwt.contains('='), "no padding: {jwt}");
}

#[test]
fn claims_follow_the_ims_host() {
    let account = ServiceAccount::builder()
        .ims("https://ims-na1-stg1.adobelogin.com/")
        .client_id("client")
        .client_secret(ClientSecret::new("s"))
        .org_id(ORG_ID)
        .technical_account_id(TECH_ACCOUNT)
        .private_key(PrivateKey::from_pem(&pkcs8()).unwrap())
        .metascopes("ent_aem_cloud_api")
        .build()
        .unwrap();
    let jwt = sign_jwt(&account, at(NOW_SECS), LIFETIME).unwrap();
    assert_eq!(
        claims(jwt.secret()),
        json!({
            "aud": "https://ims-na1-stg1.adobelogin.com/c/client",
            "exp": 1_700_000_300u64,
            "iss": ORG_ID,
            "sub": TECH_ACCOUNT,
            "https://ims-na1-stg1.adobelogin.com/s/ent_aem_cloud_api": true,
        })
    );
}

#[test]
fn signing_twice_gives_the_same_string() {
    let account = account(PrivateKey::from_pem(&pkcs1()).unwrap());
    let first = sign_jwt(&account, at(NOW_SECS + 17), LIFETIME).unwrap();
    let second = sign_jwt(&account, at(NOW_SECS + 17), LIFETIME).unwrap();
    assert_eq!(first.secret(), second.secret());
    // A clone of the key signs the same too.
    let cloned = account.clone();
    let third = sign_jwt(&cloned, at(NOW_SECS + 17), LIFETIME).unwrap();
    assert_eq!(first.secret(), third.secret());
}

/// Threads that share a fresh key make its signing key once (the first
/// signature does the deferred precomputation) and all sign alike.
#[test]
fn threads_sharing_a_fresh_key_sign_the_same_jwt() {
    let account = account(PrivateKey::from_pem(&pkcs1()).unwrap());
    let jwts: Vec<String> = std::thread::scope(|scope| {
        let signers: Vec<_> = (0..8)
            .map(|_| {
                let account = account.clone();
                scope.spawn(move || {
                    let jwt = sign_jwt(&account, at(NOW_SECS), LIFETIME).unwrap();
                    jwt.secret().to_owned()
                })
            })
            .collect();
        signers.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for jwt in jwts {
        assert_eq!(jwt, EXPECTED_JWT);
    }
}

#[test]
fn sub_second_part_of_now_is_dropped_from_exp() {
    let account = account(PrivateKey::from_pem(&pkcs1()).unwrap());
    let now = at(NOW_SECS) + Duration::from_millis(999);
    let jwt = sign_jwt(&account, now, LIFETIME).unwrap();
    assert_eq!(claims(jwt.secret())["exp"], json!(1_700_000_300u64));
}

// ---------------------------------------------------------------------------
// Verified by openssl at run time
// ---------------------------------------------------------------------------

#[test]
fn openssl_verifies_the_signature() {
    let dir = TempDir::new("verify");
    let account = account(PrivateKey::from_pem(&pkcs8()).unwrap());
    let now = at(1_234_567_890);
    let jwt = sign_jwt(&account, now, Duration::from_secs(120)).unwrap();
    let jwt = jwt.secret();
    assert_ne!(jwt, EXPECTED_JWT);
    assert_eq!(claims(jwt)["exp"], json!(1_234_568_010u64));
    assert!(
        openssl_verifies(dir.path(), jwt),
        "openssl does not verify the signature of {jwt}"
    );
    // The check has teeth: a changed claim no longer verifies.
    let [header, claims_segment, signature] = jwt_segments(jwt);
    let mut tampered_claims = claims(jwt);
    tampered_claims["exp"] = json!(1_234_999_999u64);
    let tampered = format!(
        "{header}.{}.{signature}",
        b64url(tampered_claims.to_string())
    );
    assert_ne!(claims_segment, jwt_segments(&tampered)[1]);
    assert!(!openssl_verifies(dir.path(), &tampered));
}

// ---------------------------------------------------------------------------
// Lifetime
// ---------------------------------------------------------------------------

#[test]
fn lifetime_must_be_between_one_second_and_a_day() {
    let account = account(PrivateKey::from_pem(&pkcs1()).unwrap());
    for lifetime in [
        Duration::ZERO,
        Duration::from_secs(24 * 60 * 60 + 1),
        MAX_JWT_LIFETIME + Duration::from_nanos(1),
        Duration::from_secs(u64::MAX / 4),
    ] {
        match sign_jwt(&account, at(NOW_SECS), lifetime) {
            Err(e @ Error::Config { .. }) => {
                assert!(e.to_string().contains("lifetime"), "{e}");
            }
            other => panic!("lifetime {lifetime:?}: expected Error::Config, got {other:?}"),
        }
    }
}

#[test]
fn lifetime_of_one_day_and_one_second_are_fine() {
    let account = account(PrivateKey::from_pem(&pkcs1()).unwrap());
    let jwt = sign_jwt(&account, at(NOW_SECS), Duration::from_secs(86_400)).unwrap();
    assert_eq!(claims(jwt.secret())["exp"], json!(NOW_SECS + 86_400));
    assert_eq!(MAX_JWT_LIFETIME, Duration::from_secs(86_400));
    let jwt = sign_jwt(&account, at(NOW_SECS), Duration::from_secs(1)).unwrap();
    assert_eq!(claims(jwt.secret())["exp"], json!(NOW_SECS + 1));
}

#[test]
fn clock_before_1970_is_a_config_error() {
    let account = account(PrivateKey::from_pem(&pkcs1()).unwrap());
    let before = UNIX_EPOCH - Duration::from_secs(1);
    let err = sign_jwt(&account, before, LIFETIME).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}

#[test]
fn client_refuses_a_jwt_lifetime_out_of_range() {
    for lifetime in [Duration::ZERO, Duration::from_secs(86_401)] {
        match Client::builder().proxy(None).jwt_lifetime(lifetime).build() {
            Err(e @ Error::Config { .. }) => {
                assert!(e.to_string().contains("lifetime"), "{e}");
            }
            other => panic!("lifetime {lifetime:?}: expected Error::Config, got {other:?}"),
        }
    }
    Client::builder()
        .proxy(None)
        .jwt_lifetime(Duration::from_secs(86_400))
        .build()
        .unwrap();
}

/// For a plain-http loopback endpoint the claims name it as given, scheme
/// and port included; https endpoints keep `https://`.
#[test]
fn claims_are_built_on_the_endpoint_url_as_given() {
    for (ims, base) in [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("http://localhost", "http://localhost"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("ims-na1.adobelogin.com", "https://ims-na1.adobelogin.com"),
    ] {
        let account = ServiceAccount::builder()
            .ims(ims)
            .client_id("client")
            .client_secret(ClientSecret::new("s"))
            .org_id(ORG_ID)
            .technical_account_id(TECH_ACCOUNT)
            .private_key(PrivateKey::from_pem(&pkcs8()).unwrap())
            .metascopes("ent_aem_cloud_api, https://ims-na1.adobelogin.com/s/full")
            .build()
            .unwrap();
        let jwt = sign_jwt(&account, at(NOW_SECS), LIFETIME).unwrap();
        let mut expected = json!({
            "aud": format!("{base}/c/client"),
            "exp": 1_700_000_300u64,
            "iss": ORG_ID,
            "sub": TECH_ACCOUNT,
            "https://ims-na1.adobelogin.com/s/full": true,
        });
        expected[format!("{base}/s/ent_aem_cloud_api")] = json!(true);
        assert_eq!(claims(jwt.secret()), expected, "{ims}");
    }
}
