//! Checks the fake IMS in `common::fake_ims` without the ims_token library: JWTs are
//! signed by hand and requests written on a raw socket.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::{b64url, b64url_decode, unsigned_jwt, FakeIms, JwtExpect, OAuthExpect, Reply};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::Value;
use sha2::Sha256;

/// The sample service credentials' `integration` object.
fn sample_integration() -> Value {
    common::fixture_json("service-credentials.sample.json")["integration"].clone()
}

/// Signs an RS256 JWT for the sample credentials, as a client would; `ims`
/// is the claims' base URL, or a host standing for `https://{host}`.
fn sign_sample_jwt(ims: &str) -> String {
    let ims = if ims.contains("://") {
        ims.to_owned()
    } else {
        format!("https://{ims}")
    };
    let i = sample_integration();
    let client_id = i["technicalAccount"]["clientId"].as_str().unwrap();
    let mut claims = serde_json::json!({
        "iss": i["org"],
        "sub": i["id"],
        "aud": format!("{ims}/c/{client_id}"),
        "exp": common::now_secs() + 300,
    });
    let metascope = i["metascopes"].as_str().unwrap();
    claims[format!("{ims}/s/{metascope}")] = Value::Bool(true);
    let unsigned = unsigned_jwt(r#"{"alg":"RS256","typ":"JWT"}"#, &claims, "");
    let signing_input = unsigned.trim_end_matches('.');
    let key = rsa::PrivateKey::from_pkcs1_pem(i["privateKey"].as_str().unwrap()).unwrap();
    let signature = SigningKey::<Sha256>::new(key).sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(signature.to_bytes()))
}

/// Percent-encodes a form value (everything but unreserved characters).
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form_body(fields: &[(&str, &str)]) -> String {
    let pairs: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect();
    pairs.join("&")
}

fn http_request(path: &str, host: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Sends the request on a fresh plain connection; returns (status, headers+body text).
fn post(fake: &FakeIms, path: &str, body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(http_request(path, &fake.host(), body).as_bytes())
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    (status_of(&response), response)
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("HTTP status line")
}

fn json_body(response: &str) -> Value {
    let (_, body) = response.split_once("\r\n\r\n").expect("head and body");
    serde_json::from_str(body).expect("JSON body")
}

fn exchange_body(jwt: &str, secret: &str) -> String {
    let i = sample_integration();
    let client_id = i["technicalAccount"]["clientId"].as_str().unwrap();
    form_body(&[
        ("client_id", client_id),
        ("client_secret", secret),
        ("jwt_token", jwt),
    ])
}

fn sample_secret() -> String {
    sample_integration()["technicalAccount"]["clientSecret"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn jwt_exchange_succeeds_and_is_recorded() {
    // The claims name the production host, as the sample credentials do.
    let fake = FakeIms::start(vec![Reply::check_jwt(
        JwtExpect::sample("ims-na1.adobelogin.com"),
        "tok-123",
    )]);
    let jwt = sign_sample_jwt("ims-na1.adobelogin.com");
    let (status, response) = post(
        &fake,
        "/ims/exchange/jwt",
        &exchange_body(&jwt, &sample_secret()),
    );
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("Connection: close"));
    let body = json_body(&response);
    assert_eq!(body["access_token"], "tok-123");
    assert_eq!(body["expires_in"], 86399999);
    assert_eq!(fake.hits(), 1);
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/ims/exchange/jwt");
    assert_eq!(request.form_value("jwt_token"), Some(jwt.as_str()));
    assert_eq!(
        request.form_value("client_secret"),
        Some(sample_secret().as_str())
    );
    assert_eq!(
        common::check_jwt_exchange(request, &JwtExpect::sample("ims-na1.adobelogin.com")),
        Ok(())
    );
    // The script is used up now.
    let (status, response) = post(&fake, "/ims/exchange/jwt", "");
    assert_eq!(
        (status, &json_body(&response)["error"]),
        (500, &Value::from("script_exhausted"))
    );
}

#[test]
fn tampered_signature_is_invalid_token() {
    let fake = FakeIms::start(vec![Reply::check_jwt(
        JwtExpect::sample("ims-na1.adobelogin.com"),
        "t",
    )]);
    let jwt = sign_sample_jwt("ims-na1.adobelogin.com");
    let (signing_input, signature) = jwt.rsplit_once('.').unwrap();
    let mut sig = b64url_decode(signature);
    sig[10] ^= 1;
    let tampered = format!("{signing_input}.{}", b64url(sig));
    let (status, response) = post(
        &fake,
        "/ims/exchange/jwt",
        &exchange_body(&tampered, &sample_secret()),
    );
    assert_eq!(status, 400, "{response}");
    assert!(
        response.to_ascii_lowercase().contains("x-debug-id: "),
        "{response}"
    );
    let body = json_body(&response);
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(
        body["error_description"],
        "Could not match JWT signature to any of the bindings"
    );
}

#[test]
fn wrong_client_secret_is_invalid_client() {
    let fake = FakeIms::start(vec![Reply::check_jwt(
        JwtExpect::sample("ims-na1.adobelogin.com"),
        "t",
    )]);
    let jwt = sign_sample_jwt("ims-na1.adobelogin.com");
    let (status, response) = post(
        &fake,
        "/ims/exchange/jwt",
        &exchange_body(&jwt, "wrong secret+&="),
    );
    assert_eq!(status, 401, "{response}");
    assert_eq!(json_body(&response)["error"], "invalid_client");
    // The form decoder undid the percent-encoding.
    assert_eq!(
        fake.requests()[0].form_value("client_secret"),
        Some("wrong secret+&=")
    );
}

#[test]
fn oauth_client_credentials_succeed() {
    let expect = OAuthExpect::sample();
    let fake = FakeIms::start(vec![Reply::check_oauth(expect.clone(), "oauth-tok")]);
    let scope = expect.scopes.join(",");
    let body = form_body(&[
        ("grant_type", "client_credentials"),
        ("client_id", &expect.client_id),
        ("client_secret", &expect.client_secret),
        ("scope", &scope),
    ]);
    let (status, response) = post(&fake, "/ims/token/v3", &body);
    assert_eq!(status, 200, "{response}");
    let body = json_body(&response);
    assert_eq!(
        (&body["access_token"], &body["expires_in"]),
        (&Value::from("oauth-tok"), &Value::from(86399))
    );
}

#[test]
fn tls_server_answers_a_client_trusting_the_test_ca() {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    let fake = FakeIms::start_tls(
        vec![Reply::json(503, r#"{"error":"down"}"#).with_header("Retry-After", "7")],
        common::fixture_path("tls/server.pem"),
        common::fixture_path("tls/server.key"),
    );
    assert!(fake.url().starts_with("https://127.0.0.1:"));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(common::fixture_path("tls/ca.pem")).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), server_name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(http_request("/ims/token/v3", &fake.host(), "a=b").as_bytes())
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).unwrap();
    assert_eq!(status_of(&response), 503, "{response}");
    assert!(response.contains("Retry-After: 7"));
    assert_eq!(
        fake.requests()[0].form,
        vec![("a".to_string(), "b".to_string())]
    );
}

/// The claims must name the endpoint as it was addressed, scheme included:
/// for a plain-http fake, `https://127.0.0.1:PORT/...` claims are refused.
#[test]
fn claims_must_carry_the_scheme_of_the_endpoint() {
    let ims = "http://127.0.0.1:8080";
    let expect = JwtExpect::sample(ims);
    let fake = FakeIms::start(vec![
        Reply::check_jwt(expect.clone(), "t1"),
        Reply::check_jwt(expect.clone(), "t2"),
    ]);
    let wrong = sign_sample_jwt("127.0.0.1:8080");
    let (status, response) = post(
        &fake,
        "/ims/exchange/jwt",
        &exchange_body(&wrong, &sample_secret()),
    );
    assert_eq!(status, 400, "{response}");
    assert_eq!(json_body(&response)["error"], "invalid_client");
    let right = sign_sample_jwt(ims);
    let (status, response) = post(
        &fake,
        "/ims/exchange/jwt",
        &exchange_body(&right, &sample_secret()),
    );
    assert_eq!(status, 200, "{response}");
}
