//! The token exchange end to end, against the fake IMS in `common::fake_ims`: the
//! success of both flows, every documented IMS error, retries, timeouts,
//! redirects, oversized and malformed replies, secrets in errors, the cached
//! provider, TLS and proxies.
//!
//! Every test talks only to 127.0.0.1 and is bounded to a few seconds.

use crate::common;

use std::ffi::OsString;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::proxy::{proxied_ims, proxied_url, LoggingProxy, Mode, PROXIED_HOST};
use common::{
    closed_port, error_body, error_texts, fixture_path, jwt_claims, now_secs, oauth_success_body,
    typed_response, FakeIms, JwtExpect, OAuthExpect, Reply, PROXY_VARS,
};
use ims_token::{
    AccessToken, Client, ClientBuilder, ClientSecret, Credentials, Endpoint, Error,
    OAuthCredentials, TokenProvider,
};

/// The access token the fake issues for a JWT exchange.
const JWT_TOKEN: &str = "eyJfake.jwt-flow-access-token.SECRETtoken0001";
/// The access token the fake issues for OAuth.
const OAUTH_TOKEN: &str = "fake-oauth-flow-access-token-SECRETtoken0002";
/// Padding that makes a reply body 100 KiB.
const HUNDRED_KIB: usize = 100 * 1024;

// ---------------------------------------------------------------------------
// Helpers

/// Client settings with small waits (and the proxy from the environment):
/// the backoffs (250 ms, 500 ms) are capped at 30 ms.
fn small_waits() -> ClientBuilder {
    Client::builder()
        .timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
        .max_retry_wait(Duration::from_millis(30))
}

/// Client settings with small waits, ignoring any proxy of the machine.
fn fast() -> ClientBuilder {
    small_waits().proxy(None)
}

fn client() -> Client {
    fast().build().expect("the test client builds")
}

/// The sample service credentials, pointed at `url`.
fn jwt_creds(url: &str) -> Credentials {
    Credentials::from_file(fixture_path("service-credentials.sample.json"))
        .expect("sample service credentials load")
        .with_ims(url)
        .expect("the fake's URL is a valid endpoint")
}

/// The sample OAuth credentials, pointed at `url`.
fn oauth_creds(url: &str) -> Credentials {
    Credentials::from_file(fixture_path("oauth-credentials.sample.json"))
        .expect("sample OAuth credentials load")
        .with_ims(url)
        .expect("the fake's URL is a valid endpoint")
}

/// A fake that judges one JWT exchange like IMS and issues [`JWT_TOKEN`].
fn jwt_fake() -> FakeIms {
    FakeIms::start_with(|host| vec![Reply::check_jwt(JwtExpect::sample(host), JWT_TOKEN)])
}

/// A fake that judges one OAuth request like IMS and issues [`OAUTH_TOKEN`].
fn oauth_fake() -> FakeIms {
    FakeIms::start(vec![Reply::check_oauth(OAuthExpect::sample(), OAUTH_TOKEN)])
}

fn lifetime(token: &AccessToken) -> Duration {
    token
        .expires_at()
        .duration_since(token.received_at())
        .expect("expires_at is after received_at")
}

/// Waits (briefly) until the fake has accepted `n` connections.
fn wait_for_hits(server: &FakeIms, n: usize) {
    let until = Instant::now() + Duration::from_secs(3);
    while server.hits() < n && Instant::now() < until {
        thread::sleep(Duration::from_millis(10));
    }
}

/// The raw (still form-encoded) value of `name` in a form body.
fn raw_form_value(body: &[u8], name: &str) -> Option<String> {
    let body = String::from_utf8_lossy(body);
    body.split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

/// Everything secret this file knows of, plus what the servers were sent:
/// client secrets and JWTs, decoded and as they were encoded on the wire,
/// and each JWT's signature.
fn secrets(servers: &[&FakeIms], extra: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = vec![
        JWT_TOKEN.into(),
        OAUTH_TOKEN.into(),
        JwtExpect::sample("x").client_secret,
        OAuthExpect::sample().client_secret,
    ];
    out.extend(extra.iter().map(|s| s.to_string()));
    for request in servers.iter().flat_map(|s| s.requests()) {
        for name in ["client_secret", "jwt_token"] {
            out.extend(request.form_value(name).map(str::to_owned));
            out.extend(raw_form_value(&request.body, name));
        }
        if let Some(jwt) = request.form_value("jwt_token") {
            out.extend(jwt.rsplit('.').next().map(str::to_owned));
        }
    }
    out.retain(|s| s.len() >= 8);
    out
}

/// No secret (see [`secrets`]) shows anywhere in the error.
fn assert_secret_free(e: &Error, servers: &[&FakeIms], extra: &[&str]) {
    let secrets = secrets(servers, extra);
    for text in error_texts(e) {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "the error shows a secret ({secret:?}): {text}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 1-3. Success

#[test]
fn jwt_exchange_succeeds_with_a_24h_token_in_milliseconds() {
    let server = jwt_fake();
    let before = SystemTime::now();
    let token = client()
        .fetch(&jwt_creds(&server.url()))
        .expect("the fake accepts the JWT exchange");
    let after = SystemTime::now();

    assert_eq!(token.secret(), JWT_TOKEN);
    assert_eq!(token.token_type(), "bearer");
    // IMS's 86399999 is milliseconds: 86399.999 s, not 2.7 years.
    assert_eq!(lifetime(&token), Duration::from_millis(86_399_999));
    assert!(token.received_at() >= before && token.received_at() <= after);

    assert_eq!(server.hits(), 1);
    let request = &server.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/ims/exchange/jwt");
    let expected_agent = format!("ims-token/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(request.header("user-agent"), Some(expected_agent.as_str()));
    assert_eq!(ims_token::USER_AGENT, expected_agent);
    let content_type = request.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/x-www-form-urlencoded"),
        "content-type {content_type:?}"
    );
    let claims = jwt_claims(request.form_value("jwt_token").unwrap());
    let exp_in = claims["exp"].as_i64().unwrap() - now_secs();
    assert!(
        (290..=305).contains(&exp_in),
        "default JWT lifetime, got {exp_in} s"
    );
}

#[test]
fn jwt_lifetime_setting_sets_exp() {
    let server = jwt_fake();
    let client = fast()
        .jwt_lifetime(Duration::from_secs(60))
        .build()
        .unwrap();
    client.fetch(&jwt_creds(&server.url())).unwrap();
    let claims = jwt_claims(server.requests()[0].form_value("jwt_token").unwrap());
    let exp_in = claims["exp"].as_i64().unwrap() - now_secs();
    assert!((50..=65).contains(&exp_in), "exp {exp_in} s ahead");
}

#[test]
fn oauth_succeeds_with_a_24h_token_in_seconds() {
    let server = oauth_fake();
    let token = client()
        .fetch(&oauth_creds(&server.url()))
        .expect("the fake accepts the OAuth request");
    assert_eq!(token.secret(), OAUTH_TOKEN);
    assert_eq!(token.token_type(), "bearer");
    assert_eq!(lifetime(&token), Duration::from_secs(86_399));

    let expect = OAuthExpect::sample();
    let request = &server.requests()[0];
    assert_eq!(request.path, "/ims/token/v3");
    assert_eq!(request.form_value("grant_type"), Some("client_credentials"));
    assert_eq!(
        request.form_value("client_id"),
        Some(expect.client_id.as_str())
    );
    assert_eq!(
        request.form_value("client_secret"),
        Some(expect.client_secret.as_str())
    );
    assert_eq!(
        request.form_value("scope"),
        Some(expect.scopes.join(",").as_str())
    );
    assert_eq!(request.header("user-agent"), Some(ims_token::USER_AGENT));
    assert!(request
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/x-www-form-urlencoded"));
}

#[test]
fn form_values_with_special_characters_arrive_exactly() {
    let server = FakeIms::start(vec![Reply::json(200, oauth_success_body(OAUTH_TOKEN))]);
    let secret = "s3&cr=et+with/slash and space%41";
    let oauth = OAuthCredentials::builder()
        .ims(server.url())
        .client_id("id&x=1+2/3 4")
        .client_secret(ClientSecret::new(secret))
        .scopes("read a&b, c=d+e/f g ")
        .build()
        .unwrap();
    let token = client().fetch(&Credentials::OAuth(oauth)).unwrap();
    assert_eq!(token.secret(), OAUTH_TOKEN);
    let request = &server.requests()[0];
    assert_eq!(request.form_value("client_secret"), Some(secret));
    assert_eq!(request.form_value("client_id"), Some("id&x=1+2/3 4"));
    assert_eq!(request.form_value("scope"), Some("read a&b,c=d+e/f g"));
    assert_eq!(request.form_value("grant_type"), Some("client_credentials"));
    assert_eq!(request.form.len(), 4, "{:?}", request.form);
}

// ---------------------------------------------------------------------------
// 4-5. IMS errors

#[test]
fn each_documented_ims_error_is_rejected_once_with_all_details() {
    let table = [
        (400, "invalid_client", "integration not found"),
        (401, "invalid_client", "invalid client_id or client_secret"),
        (
            400,
            "invalid_token",
            "Could not match JWT signature to any of the bindings",
        ),
        (400, "invalid_signature", "signature mismatch"),
        (
            400,
            "invalid_scope",
            "The metascopes in the JWT are not a subset of the metascopes in the binding.",
        ),
        (400, "bad_request", "sub is malformed"),
    ];
    let client = client(); // retries 2: a retry would show as a second hit
    for (i, (status, code, description)) in table.into_iter().enumerate() {
        let server = FakeIms::start(vec![Reply::ims_error(status, code, description)]);
        let creds = if i % 2 == 0 {
            jwt_creds(&server.url())
        } else {
            oauth_creds(&server.url())
        };
        let e = client.fetch(&creds).unwrap_err();
        match &e {
            Error::Rejected(ims) => {
                assert_eq!(ims.status, status);
                assert_eq!(ims.code.as_deref(), Some(code));
                assert_eq!(ims.description.as_deref(), Some(description));
                assert_eq!(ims.debug_id.as_deref(), Some("fake-ims-debug-id"));
            }
            other => panic!("{status} {code}: expected Rejected, got {other:?}"),
        }
        let shown = e.to_string();
        for part in [&status.to_string(), code, description, "fake-ims-debug-id"] {
            assert!(shown.contains(part), "{shown:?} lacks {part:?}");
        }
        assert!(!e.is_retryable() && !e.is_config(), "{e}");
        assert_eq!(server.hits(), 1, "{status} {code} must not be retried");
        assert_secret_free(&e, &[&server], &[]);
    }
}

#[test]
fn wrong_client_secret_is_invalid_client() {
    let server = jwt_fake();
    let mut json = common::fixture_json("service-credentials.sample.json");
    json["integration"]["technicalAccount"]["clientSecret"] = "p8e-WRONG-secret-000000".into();
    let creds = Credentials::from_json(&json.to_string())
        .unwrap()
        .with_ims(&server.url())
        .unwrap();
    let e = client().fetch(&creds).unwrap_err();
    match &e {
        Error::Rejected(ims) => {
            assert_eq!(ims.status, 401);
            assert_eq!(ims.code.as_deref(), Some("invalid_client"));
            assert_eq!(ims.debug_id.as_deref(), Some("fake-ims-invalid_client"));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(e.to_string().contains("client id and secret"), "{e}");
    assert_eq!(server.hits(), 1);
    assert_secret_free(&e, &[&server], &["p8e-WRONG-secret-000000"]);
}

#[test]
fn unexpected_metascope_is_invalid_scope() {
    let server = jwt_fake();
    let creds = jwt_creds(&server.url())
        .with_scopes("ent_aem_cloud_api,ent_cloudmgr_sdk")
        .unwrap();
    let e = client().fetch(&creds).unwrap_err();
    match &e {
        Error::Rejected(ims) => {
            assert_eq!(ims.status, 400);
            assert_eq!(ims.code.as_deref(), Some("invalid_scope"));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(e.to_string().contains("metascopes"), "{e}");
    assert_eq!(server.hits(), 1);
    assert_secret_free(&e, &[&server], &[]);
}

// ---------------------------------------------------------------------------
// 6-7. Retries

#[test]
fn a_500_is_retried_once_then_succeeds() {
    let server = FakeIms::start_with(|host| {
        vec![
            Reply::ims_error(500, "server_error", "try later"),
            Reply::check_jwt(JwtExpect::sample(host), JWT_TOKEN),
        ]
    });
    let token = client().fetch(&jwt_creds(&server.url())).unwrap();
    assert_eq!(token.secret(), JWT_TOKEN);
    assert_eq!(server.hits(), 2);
}

#[test]
fn three_500s_are_unavailable_after_two_retries() {
    let server = FakeIms::start(vec![Reply::ims_error(500, "server_error", "down"); 3]);
    let started = Instant::now();
    let e = fast()
        .retries(2)
        .build()
        .unwrap()
        .fetch(&jwt_creds(&server.url()))
        .unwrap_err();
    match &e {
        Error::Unavailable(ims) => {
            assert_eq!(ims.status, 500);
            assert_eq!(ims.code.as_deref(), Some("server_error"));
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(e.is_retryable());
    assert_eq!(server.hits(), 3);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_secret_free(&e, &[&server], &[]);
}

#[test]
fn retry_after_on_429_is_honoured() {
    let server = FakeIms::start_with(|host| {
        vec![
            Reply::ims_error(429, "too_many_requests", "slow down").with_header("Retry-After", "1"),
            Reply::check_jwt(JwtExpect::sample(host), JWT_TOKEN),
        ]
    });
    let client = fast()
        .max_retry_wait(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let token = client.fetch(&jwt_creds(&server.url())).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(token.secret(), JWT_TOKEN);
    assert_eq!(server.hits(), 2);
    assert!(
        elapsed >= Duration::from_millis(950),
        "waited only {elapsed:?} for Retry-After: 1"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn retry_after_is_capped_by_max_retry_wait() {
    let server = FakeIms::start_with(|host| {
        vec![
            Reply::ims_error(429, "too_many_requests", "slow down")
                .with_header("Retry-After", "100"),
            Reply::check_jwt(JwtExpect::sample(host), JWT_TOKEN),
        ]
    });
    let started = Instant::now();
    let token = client().fetch(&jwt_creds(&server.url())).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(token.secret(), JWT_TOKEN);
    assert!(elapsed <= Duration::from_millis(1500), "{elapsed:?}");
}

#[test]
fn retry_after_on_503_is_honoured() {
    let server = FakeIms::start(vec![
        Reply::ims_error(503, "service_unavailable", "maintenance").with_header("Retry-After", "1"),
        Reply::check_oauth(OAuthExpect::sample(), OAUTH_TOKEN),
    ]);
    let client = fast()
        .max_retry_wait(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let token = client.fetch(&oauth_creds(&server.url())).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(token.secret(), OAUTH_TOKEN);
    assert_eq!(server.hits(), 2);
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn last_429_keeps_retry_after() {
    let server = FakeIms::start(vec![Reply::ims_error(
        429,
        "too_many_requests",
        "slow down",
    )
    .with_header("Retry-After", "7")]);
    let e = fast()
        .retries(0)
        .build()
        .unwrap()
        .fetch(&oauth_creds(&server.url()))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable(ims) if ims.status == 429),
        "{e:?}"
    );
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(e.is_retryable());
    assert_eq!(server.hits(), 1);
    assert_secret_free(&e, &[&server], &[]);
}

// ---------------------------------------------------------------------------
// 8-10. Odd replies

#[test]
fn a_redirect_is_not_followed() {
    let second = jwt_fake();
    let location = format!("{}/ims/exchange/jwt", second.url());
    let first = FakeIms::start(vec![Reply::json(302, "").with_header("Location", &location)]);
    let e = client().fetch(&jwt_creds(&first.url())).unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnexpectedReply {
                status: Some(302),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("redirect"), "{e}");
    assert!(!e.is_retryable());
    // Give a wrongly followed redirect time to show up (the fake polls
    // every 1 ms).
    thread::sleep(Duration::from_millis(50));
    assert_eq!(second.hits(), 0, "the secret went to the redirect target");
    assert_eq!(first.hits(), 1);
    assert_secret_free(&e, &[&first, &second], &[]);
}

#[test]
fn a_reply_over_the_size_cap_is_unexpected() {
    let body = format!(
        r#"{{"access_token":"{JWT_TOKEN}","token_type":"bearer","expires_in":86399999,"padding":"{}"}}"#,
        "x".repeat(HUNDRED_KIB)
    );
    let server = FakeIms::start(vec![Reply::json(200, body)]);
    let e = client().fetch(&jwt_creds(&server.url())).unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnexpectedReply {
                status: Some(200),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("64 KiB"), "{e}");
    assert_eq!(server.hits(), 1);
    assert_secret_free(&e, &[&server], &[]);
}

#[test]
fn malformed_200_replies_are_unexpected_and_do_not_show_the_body() {
    let not_json = typed_response(
        200,
        "text/plain",
        format!("access_token={JWT_TOKEN}&expires_in=86399999").as_bytes(),
        &[],
    );
    let cases = [
        ("not JSON", Reply::Raw(not_json)),
        (
            "no access_token",
            Reply::json(
                200,
                format!(r#"{{"token":"{JWT_TOKEN}","expires_in":86399999}}"#),
            ),
        ),
        (
            "no expires_in",
            Reply::json(200, format!(r#"{{"access_token":"{JWT_TOKEN}"}}"#)),
        ),
        (
            "expires_in not a number",
            Reply::json(
                200,
                format!(r#"{{"access_token":"{JWT_TOKEN}","expires_in":"soon"}}"#),
            ),
        ),
        (
            "JSON array",
            Reply::json(200, format!(r#"["{JWT_TOKEN}"]"#)),
        ),
    ];
    for (what, reply) in cases {
        let server = FakeIms::start(vec![reply]);
        let e = client().fetch(&jwt_creds(&server.url())).unwrap_err();
        assert!(
            matches!(
                e,
                Error::UnexpectedReply {
                    status: Some(200),
                    ..
                }
            ),
            "{what}: {e:?}"
        );
        assert!(!e.is_retryable(), "{what}");
        assert_eq!(server.hits(), 1, "{what}");
        assert_secret_free(&e, &[&server], &[]);
    }
}

#[test]
fn a_non_200_success_status_does_not_show_the_token() {
    // A 203 from a transforming proxy, or a 201, may carry a token in its
    // body; the error must not quote it.
    for status in [201, 203] {
        let server = FakeIms::start(vec![Reply::json(
            status,
            format!(r#"{{"access_token":"{OAUTH_TOKEN}","expires_in":86399}}"#),
        )]);
        let e = client().fetch(&oauth_creds(&server.url())).unwrap_err();
        assert!(
            matches!(e, Error::UnexpectedReply { status: Some(s), .. } if s == status),
            "{e:?}"
        );
        assert_secret_free(&e, &[&server], &[]);
    }
}

#[test]
fn a_400_html_body_is_rejected_with_a_short_excerpt() {
    let html = b"<html><head><title>400 Bad Request</title></head>\r\n<body><h1>Bad Request</h1></body></html>";
    let server = FakeIms::start(vec![Reply::Raw(typed_response(
        400,
        "text/html",
        html,
        &[("x-debug-id", "html-debug-id")],
    ))]);
    let e = client().fetch(&jwt_creds(&server.url())).unwrap_err();
    match &e {
        Error::Rejected(ims) => {
            assert_eq!(ims.status, 400);
            assert_eq!(ims.code, None);
            assert_eq!(ims.debug_id.as_deref(), Some("html-debug-id"));
            let excerpt = ims.excerpt.as_deref().expect("an excerpt of the body");
            assert!(excerpt.contains("400 Bad Request"), "{excerpt:?}");
            assert!(!excerpt.contains('\n') && !excerpt.contains('\r'));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(e.to_string().contains("Bad Request"), "{e}");
    assert_eq!(server.hits(), 1);
    assert_secret_free(&e, &[&server], &[]);

    let big = format!("<html><body>{}</body></html>", "lorem ipsum ".repeat(850));
    assert!(big.len() > 10_000);
    let server = FakeIms::start(vec![Reply::Raw(typed_response(
        400,
        "text/html",
        big.as_bytes(),
        &[],
    ))]);
    let e = client().fetch(&jwt_creds(&server.url())).unwrap_err();
    match &e {
        Error::Rejected(ims) => {
            let excerpt = ims.excerpt.as_deref().expect("an excerpt of the body");
            assert!(
                excerpt.chars().count() <= 250,
                "excerpt of {} chars",
                excerpt.chars().count()
            );
            assert!(
                excerpt.starts_with("<html><body>lorem ipsum"),
                "{excerpt:?}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(e.to_string().chars().count() < 400, "{e}");
    assert_secret_free(&e, &[&server], &[]);
}

// ---------------------------------------------------------------------------
// 11-12. Timeouts and refused connections

#[test]
fn a_silent_server_times_out() {
    let server = FakeIms::start(vec![Reply::Silent { for_ms: 5000 }]);
    let client = fast()
        .timeout(Duration::from_millis(100))
        .retries(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let e = client.fetch(&jwt_creds(&server.url())).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("did not answer in time"), "{e}");
    assert!(elapsed < Duration::from_secs(4), "hung for {elapsed:?}");
    assert_eq!(server.hits(), 1);
    assert_secret_free(&e, &[&server], &[]);
}

#[test]
fn a_timeout_is_retried_and_still_times_out() {
    // The fake serves one connection at a time: the second attempt is only
    // accepted once the first silence ends, so keep it short.
    let server = FakeIms::start(vec![
        Reply::Silent { for_ms: 150 },
        Reply::Silent { for_ms: 150 },
    ]);
    let client = fast()
        .timeout(Duration::from_millis(100))
        .retries(1)
        .build()
        .unwrap();
    let started = Instant::now();
    let e = client.fetch(&oauth_creds(&server.url())).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    wait_for_hits(&server, 2);
    assert_eq!(server.hits(), 2);
    assert_secret_free(&e, &[&server], &[]);
}

#[test]
fn connection_refused_is_a_retryable_transport_error() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let started = Instant::now();
    let e = client().fetch(&jwt_creds(&url)).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(e.is_retryable());
    assert!(!e.is_config());
    assert!(e.to_string().contains(&url), "{e}");
    // Backoffs of 250 ms and 500 ms, both capped at 30 ms, show the two
    // retries happened.
    assert!(
        elapsed >= Duration::from_millis(60),
        "no retries: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "3 attempts took {elapsed:?}"
    );
    assert_secret_free(&e, &[], &[]);
}

// ---------------------------------------------------------------------------
// 13. Secrets in errors

#[test]
fn an_echoed_form_body_is_scrubbed_from_a_400() {
    let server = FakeIms::start(vec![Reply::Echo {
        status: 400,
        content_type: "text/plain".into(),
    }]);
    let e = client().fetch(&jwt_creds(&server.url())).unwrap_err();
    match &e {
        Error::Rejected(ims) => {
            let excerpt = ims.excerpt.as_deref().expect("the echoed body as excerpt");
            // The echo did reach the error, with the secrets taken out.
            assert!(excerpt.starts_with("client_id="), "{excerpt:?}");
            assert!(excerpt.contains("[redacted]"), "{excerpt:?}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
    assert_secret_free(&e, &[&server], &[]);
}

#[test]
fn an_echoed_form_body_is_scrubbed_from_a_500() {
    let echo = Reply::Echo {
        status: 500,
        content_type: "text/plain".into(),
    };
    let server = FakeIms::start(vec![echo; 3]);
    let e = client().fetch(&jwt_creds(&server.url())).unwrap_err();
    match &e {
        Error::Unavailable(ims) => {
            assert_eq!(ims.status, 500);
            assert!(ims
                .excerpt
                .as_deref()
                .unwrap_or_default()
                .contains("[redacted]"));
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 3);
    assert_secret_free(&e, &[&server], &[]);

    let server = FakeIms::start(vec![Reply::Echo {
        status: 500,
        content_type: "text/plain".into(),
    }]);
    let e = fast()
        .retries(0)
        .build()
        .unwrap()
        .fetch(&oauth_creds(&server.url()))
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    assert_secret_free(&e, &[&server], &[]);
}

#[test]
fn an_echoed_form_encoded_secret_is_scrubbed() {
    let server = FakeIms::start(vec![Reply::Echo {
        status: 400,
        content_type: "text/plain".into(),
    }]);
    let secret = "p8e-with+plus/slash=eq&amp space";
    let oauth = OAuthCredentials::builder()
        .ims(server.url())
        .client_id("client")
        .client_secret(ClientSecret::new(secret))
        .scopes("openid")
        .build()
        .unwrap();
    let e = client().fetch(&Credentials::OAuth(oauth)).unwrap_err();
    assert!(matches!(e, Error::Rejected(_)), "{e:?}");
    assert_secret_free(&e, &[&server], &[secret]);
}

#[test]
fn secrets_in_error_fields_headers_and_location_are_scrubbed() {
    let secret = OAuthExpect::sample().client_secret;
    let description = format!("client_secret {secret} is not valid");
    let server = FakeIms::start(vec![Reply::json(
        401,
        error_body("invalid_client", &description),
    )
    .with_header("x-debug-id", &format!("id-{secret}"))]);
    let e = client().fetch(&oauth_creds(&server.url())).unwrap_err();
    assert!(matches!(e, Error::Rejected(_)), "{e:?}");
    assert!(e.to_string().contains("[redacted]"), "{e}");
    assert_secret_free(&e, &[&server], &[]);

    let server = FakeIms::start(vec![Reply::json(302, "").with_header(
        "Location",
        &format!("http://127.0.0.1:{}/?s={secret}", closed_port()),
    )]);
    let e = client().fetch(&oauth_creds(&server.url())).unwrap_err();
    assert!(matches!(e, Error::UnexpectedReply { .. }), "{e:?}");
    assert_secret_free(&e, &[&server], &[]);
}

// ---------------------------------------------------------------------------
// 14. TokenProvider

#[test]
fn provider_does_one_exchange_for_many_threads() {
    let server = FakeIms::start_with(|host| {
        vec![
            Reply::check_jwt(JwtExpect::sample(host), JWT_TOKEN),
            Reply::check_jwt(JwtExpect::sample(host), "second-token-SECRETtoken0003"),
        ]
    });
    let provider = TokenProvider::new(client(), jwt_creds(&server.url()));
    let barrier = Barrier::new(8);
    let tokens: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    provider.token().map(|t| t.secret().to_owned())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().expect("every thread gets a token"))
            .collect()
    });
    assert!(tokens.iter().all(|t| t == JWT_TOKEN), "{tokens:?}");
    assert_eq!(server.hits(), 1);

    // Cached: no new exchange.
    let cached = provider.token().unwrap();
    assert_eq!(cached.secret(), JWT_TOKEN);
    assert_eq!(server.hits(), 1);

    provider.invalidate(&cached);
    assert_eq!(
        provider.token().unwrap().secret(),
        "second-token-SECRETtoken0003"
    );
    assert_eq!(server.hits(), 2);
}

#[test]
fn provider_margin_is_capped_at_half_the_lifetime() {
    let server = FakeIms::start(vec![
        common::oauth_reply("tok-100s-a", 100),
        common::oauth_reply("tok-100s-b", 100),
    ]);
    let provider = TokenProvider::new(client(), oauth_creds(&server.url()))
        .with_refresh_margin(Duration::from_secs(600));
    assert_eq!(provider.token().unwrap().secret(), "tok-100s-a");
    // 100 s left > min(600 s, 50 s): still fresh.
    assert_eq!(provider.token().unwrap().secret(), "tok-100s-a");
    assert_eq!(server.hits(), 1);
}

#[test]
fn provider_refreshes_a_token_within_the_margin() {
    let server = FakeIms::start(vec![
        common::oauth_reply("tok-100s-a", 100),
        common::oauth_reply("tok-day-b", 86_399),
    ]);
    let clock = common::TestClock::default();
    let provider = TokenProvider::new(client(), oauth_creds(&server.url()))
        .with_refresh_margin(Duration::from_secs(600))
        .with_clock(clock.reader());
    assert_eq!(provider.token().unwrap().secret(), "tok-100s-a");
    // 80 s later on the provider's clock (moved ahead instead of a sleep):
    // 20 s left < min(600 s, 50 s) jittered to 25..50 s: a refresh starts
    // (behind the call while the old token lasts).
    clock.advance(Duration::from_secs(80));
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while provider.token().unwrap().secret() != "tok-day-b" {
        assert!(std::time::Instant::now() < until, "no refresh");
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.hits(), 2);
}

#[test]
fn provider_keeps_nothing_after_a_failed_refresh() {
    let server = FakeIms::start(vec![
        Reply::ims_error(401, "invalid_client", "nope"),
        Reply::check_oauth(OAuthExpect::sample(), OAUTH_TOKEN),
    ]);
    let provider = TokenProvider::new(client(), oauth_creds(&server.url()));
    let e = provider.token().unwrap_err();
    assert!(matches!(e, Error::Rejected(_)), "{e:?}");
    assert_secret_free(&e, &[&server], &[]);
    assert_eq!(provider.token().unwrap().secret(), OAUTH_TOKEN);
    assert_eq!(server.hits(), 2);
}

// ---------------------------------------------------------------------------
// 15. HTTPS

fn tls_fake(cert: &str) -> FakeIms {
    FakeIms::start_tls(
        vec![Reply::check_oauth(OAuthExpect::sample(), OAUTH_TOKEN)],
        fixture_path(&format!("tls/{cert}.pem")),
        fixture_path(&format!("tls/{cert}.key")),
    )
}

#[test]
fn https_with_the_test_ca_gets_the_token() {
    let server = tls_fake("server");
    assert!(server.url().starts_with("https://"));
    let client = fast().ca_file(fixture_path("tls/ca.pem")).build().unwrap();
    let token = client.fetch(&oauth_creds(&server.url())).unwrap();
    assert_eq!(token.secret(), OAUTH_TOKEN);
    assert_eq!(server.hits(), 1);
}

/// Fetches through a TLS fake serving `cert`, trusting the test CA or not
/// (retries 2: a retry would show as another hit). Returns the error.
fn tls_refusal(cert: &str, ca: bool) -> (Error, FakeIms) {
    let server = tls_fake(cert);
    let mut builder = fast();
    if ca {
        builder = builder.ca_file(fixture_path("tls/ca.pem"));
    }
    let e = builder
        .build()
        .unwrap()
        .fetch(&oauth_creds(&server.url()))
        .unwrap_err();
    // Let a retry, if any, reach the fake before hits are counted (it
    // polls every 1 ms).
    thread::sleep(Duration::from_millis(50));
    (e, server)
}

const TLS_CASES: [(&str, bool, &str); 4] = [
    ("server", false, "is not trusted"),
    ("wronghost", true, "is not valid for this host name"),
    ("expired", true, "has expired"),
    ("self-signed", true, "is not trusted"),
];

#[test]
fn https_certificate_failures_are_tls_errors() {
    for (cert, ca, _) in TLS_CASES {
        let (e, server) = tls_refusal(cert, ca);
        assert!(matches!(e, Error::Tls { .. }), "{cert}: {e:?}");
        assert!(!e.is_config(), "{cert}");
        assert!(
            server.requests().is_empty(),
            "{cert}: a request got through"
        );
        assert_secret_free(&e, &[&server], &[]);
    }
}

/// A certificate failure says what is wrong and is not retried.
fn assert_tls_refused(cert: &str, ca: bool, what: &str) {
    let (e, server) = tls_refusal(cert, ca);
    assert!(matches!(e, Error::Tls { .. }), "{cert}: {e:?}");
    assert!(e.to_string().contains(what), "{cert}: {e} / {e:?}");
    assert!(!e.is_retryable(), "{cert}: {e}");
    assert_eq!(server.hits(), 1, "{cert}: a certificate error was retried");
    assert_secret_free(&e, &[&server], &[]);
}

#[test]
fn https_without_the_ca_is_untrusted_and_not_retried() {
    assert_tls_refused("server", false, "is not trusted");
}

#[test]
fn https_with_a_certificate_for_another_host_is_refused() {
    assert_tls_refused("wronghost", true, "is not valid for this host name");
}

#[test]
fn https_with_an_expired_certificate_is_refused() {
    assert_tls_refused("expired", true, "has expired");
}

#[test]
fn https_with_a_self_signed_certificate_is_refused() {
    assert_tls_refused("self-signed", true, "is not trusted");
}

#[test]
fn a_missing_ca_file_is_an_io_error_naming_it() {
    let path = fixture_path("tls/does-not-exist.pem");
    let e = fast().ca_file(&path).build().unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(e.is_config());
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    assert_secret_free(&e, &[], &[]);
}

#[test]
fn a_ca_file_without_certificates_is_a_config_error() {
    for name in ["tls/ca.key", "oauth-credentials.sample.json"] {
        let path = fixture_path(name);
        let e = fast().ca_file(&path).build().unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{name}: {e:?}");
        assert!(e.to_string().contains("certificate"), "{name}: {e}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        // Nothing of the key file is shown.
        assert!(!format!("{e:?}").contains("PRIVATE KEY"), "{e:?}");
        assert_secret_free(&e, &[], &[]);
    }
}

// ---------------------------------------------------------------------------
// 16-17. Proxies and defaults

/// Clears the proxy variables, restoring them when dropped (even on panic).
struct ProxyEnv(Vec<(&'static str, Option<OsString>)>);

impl ProxyEnv {
    fn clear() -> ProxyEnv {
        let saved = PROXY_VARS
            .iter()
            .map(|&name| (name, std::env::var_os(name)))
            .collect();
        clear_proxy_env();
        ProxyEnv(saved)
    }
}

impl Drop for ProxyEnv {
    fn drop(&mut self) {
        for (name, value) in &self.0 {
            match value {
                Some(v) => std::env::set_var(name, v),
                None => std::env::remove_var(name),
            }
        }
    }
}

fn clear_proxy_env() {
    for name in PROXY_VARS {
        std::env::remove_var(name);
    }
}

/// Settings with small waits and the proxy from the environment.
fn fast_env_proxy() -> Client {
    small_waits().build().expect("client builds")
}

/// A client with small waits, the proxy from the environment and the test
/// CA, as a caller behind a proxy sets it up.
fn proxied_client() -> Client {
    small_waits()
        .ca_file(fixture_path("tls/ca.pem"))
        .build()
        .expect("client builds")
}

/// The sample OAuth credentials, pointed at the fake by [`PROXIED_HOST`].
fn proxied_oauth(server: &FakeIms) -> Credentials {
    oauth_creds(&proxied_url(server))
}

fn proxied_fake() -> FakeIms {
    proxied_ims(vec![Reply::check_oauth(OAuthExpect::sample(), OAUTH_TOKEN)])
}

/// Every test that touches the process environment, one after another, in
/// a process of its own: the other tests of this binary, and the commands
/// they start, must not see the variables set here.
#[test]
fn proxy_from_the_environment_and_defaults() {
    if !common::in_a_process_of_its_own() {
        return;
    }
    let _restore = ProxyEnv::clear();
    let basic = format!("Basic {}", STANDARD.encode("user:pa55word"));

    // (a) HTTPS_PROXY with credentials: the request goes through the proxy.
    let proxy = LoggingProxy::start(Mode::Forward);
    let server = proxied_fake();
    std::env::set_var("HTTPS_PROXY", proxy.url_with("user:pa55word"));
    let client = proxied_client();
    assert!(
        !format!("{client:?}").contains("pa55word"),
        "the client's Debug shows the proxy password"
    );
    let token = client.fetch(&proxied_oauth(&server)).unwrap();
    assert_eq!(token.secret(), OAUTH_TOKEN);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].request_line,
        format!("CONNECT {PROXIED_HOST}:{} HTTP/1.1", server.port())
    );
    assert_eq!(seen[0].proxy_authorization.as_deref(), Some(basic.as_str()));
    assert_eq!(server.hits(), 1);
    assert_eq!(server.requests()[0].path, "/ims/token/v3");
    // The proxy credentials stay with the proxy.
    assert_eq!(server.requests()[0].header("proxy-authorization"), None);

    // (a2) As curl reads them for https: lower-case https_proxy first, and
    // ALL_PROXY (here a SOCKS proxy, which is then no error) last.
    let fetch_with = |vars: &[(&str, &str)]| {
        clear_proxy_env();
        for (name, value) in vars {
            std::env::set_var(name, value);
        }
        let server = proxied_fake();
        let token = proxied_client().fetch(&proxied_oauth(&server));
        (token, server.hits())
    };
    let url = proxy.url();
    let (token, _) = fetch_with(&[
        ("https_proxy", &url),
        ("HTTPS_PROXY", "http://127.0.0.1:1"),
        ("ALL_PROXY", "socks5://user:pa55word@127.0.0.1:1"),
    ]);
    assert_eq!(token.unwrap().secret(), OAUTH_TOKEN);
    assert_eq!(proxy.seen().len(), 2, "{:?}", proxy.seen());
    let (token, _) = fetch_with(&[("all_proxy", &url)]);
    assert_eq!(token.unwrap().secret(), OAUTH_TOKEN);
    assert_eq!(proxy.seen().len(), 3, "{:?}", proxy.seen());

    // (a3) HTTP_PROXY (httpoxy) and http_proxy are not read for https: the
    // request goes direct, where `ims.test` does not resolve.
    let (token, hits) = fetch_with(&[("HTTP_PROXY", &url), ("http_proxy", &url)]);
    let e = token.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("cannot reach IMS at https://ims.test:"),
        "{e}"
    );
    assert_eq!((proxy.connections(), hits), (3, 0));

    // (b) A loopback endpoint goes direct whatever the proxy settings: the
    // proxy sees nothing.
    clear_proxy_env();
    for name in ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
        std::env::set_var(name, proxy.url());
    }
    let server = jwt_fake();
    let token = fast_env_proxy().fetch(&jwt_creds(&server.url())).unwrap();
    assert_eq!(token.secret(), JWT_TOKEN);
    assert_eq!(proxy.connections(), 3, "{:?}", proxy.seen());
    assert_eq!(server.hits(), 1);

    // (c) A SOCKS proxy is refused where it would be used, without quoting
    // the URL; a loopback endpoint and a host NO_PROXY lists go direct.
    clear_proxy_env();
    for url in [
        "socks5://127.0.0.1:1",
        "socks5h://user:pa55word@127.0.0.1:1",
    ] {
        std::env::set_var("ALL_PROXY", url);
        let client = Client::builder().build().expect("builds: no request yet");
        let ims = Endpoint::parse("ims-na1.adobelogin.com").unwrap();
        for e in [
            client.check_proxy(&ims).unwrap_err(),
            proxied_client()
                .fetch(&oauth_creds("https://ims.test"))
                .unwrap_err(),
            ims_token::fetch_token(&jwt_creds("https://ims.test")).unwrap_err(),
        ] {
            assert!(matches!(e, Error::Config { .. }), "{url}: {e:?}");
            assert!(e.is_config());
            let shown = e.to_string();
            assert!(
                shown.contains("$ALL_PROXY is a SOCKS proxy") && shown.contains("supported"),
                "{shown}"
            );
            for text in error_texts(&e) {
                assert!(!text.contains(url), "{text}");
                assert!(!text.contains("127.0.0.1:1"), "{text}");
                assert!(!text.contains("pa55word"), "{text}");
            }
            assert_secret_free(&e, &[], &["pa55word"]);
        }
        let server = oauth_fake();
        let token = client.fetch(&oauth_creds(&server.url())).unwrap();
        assert_eq!(token.secret(), OAUTH_TOKEN);
        std::env::set_var("NO_PROXY", "ims.test");
        let e = proxied_client()
            .fetch(&oauth_creds("https://ims.test:1"))
            .unwrap_err();
        assert!(matches!(e, Error::Transport { .. }), "went direct: {e:?}");
        std::env::remove_var("NO_PROXY");
    }

    // (c2) An unusable proxy URL with a password is not quoted either.
    clear_proxy_env();
    std::env::set_var("HTTPS_PROXY", "http://user:pa55word@bad host:3128");
    let e = proxied_client()
        .fetch(&oauth_creds("https://ims.test"))
        .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("$HTTPS_PROXY is not a valid proxy URL"),
        "{e}"
    );
    assert_secret_free(&e, &[], &["pa55word"]);

    // (d) An unreachable proxy with a password: the error does not show it.
    clear_proxy_env();
    let dead_proxy = format!("http://user:pa55word@127.0.0.1:{}", closed_port());
    std::env::set_var("HTTPS_PROXY", &dead_proxy);
    let server = proxied_fake();
    let e = proxied_client().fetch(&proxied_oauth(&server)).unwrap_err();
    assert!(
        matches!(e, Error::Transport { .. } | Error::Timeout { .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("cannot reach the proxy 127.0.0.1:"),
        "{e}"
    );
    assert_eq!(server.hits(), 0, "the request went around the proxy");
    for text in error_texts(&e) {
        assert!(!text.contains("pa55word"), "{text}");
    }
    assert_secret_free(&e, &[&server], &["pa55word"]);

    // 17. Defaults, with no proxy in the environment.
    clear_proxy_env();
    Client::new().expect("the default client builds");
    let server = jwt_fake();
    let token = ims_token::fetch_token(&jwt_creds(&server.url())).unwrap();
    assert_eq!(token.secret(), JWT_TOKEN);
    assert_eq!(lifetime(&token), Duration::from_millis(86_399_999));
    assert_eq!(server.hits(), 1);
    assert_eq!(proxy.connections(), 3);
}

#[test]
fn an_explicit_proxy_is_used_with_its_credentials() {
    let proxy = LoggingProxy::start(Mode::Forward);
    let server = proxied_fake();
    let url = proxy.url_with("user:pa55word");
    let client = fast()
        .proxy(Some(&url))
        .ca_file(fixture_path("tls/ca.pem"))
        .build()
        .unwrap();
    assert!(!format!("{client:?}").contains("pa55word"));
    let token = client.fetch(&proxied_oauth(&server)).unwrap();
    assert_eq!(token.secret(), OAUTH_TOKEN);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].request_line.starts_with("CONNECT "), "{seen:?}");
    let basic = format!("Basic {}", STANDARD.encode("user:pa55word"));
    assert_eq!(seen[0].proxy_authorization.as_deref(), Some(basic.as_str()));
    // Not for a loopback endpoint, though.
    let local = oauth_fake();
    let token = client.fetch(&oauth_creds(&local.url())).unwrap();
    assert_eq!(token.secret(), OAUTH_TOKEN);
    assert_eq!(proxy.connections(), 1);

    let e = fast()
        .proxy(Some("socks5://user:pa55word@127.0.0.1:1"))
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(!format!("{e:?}").contains("pa55word"));
    assert_secret_free(&e, &[], &["pa55word"]);
}
