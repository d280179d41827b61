//! Calling an Adobe API through `TokenProvider::request`: the three headers,
//! one resend after a 401 with the same bytes, the brake on `invalidate`,
//! and the `adobe_api` example's own code, against a fake API and the fake
//! IMS on 127.0.0.1.

use crate::common;

use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use common::{fixture_path, oauth_reply, FakeApi, FakeIms, JwtExpect, Recorded, Reply, TestClock};
use ims_token::{AccessToken, Client, Credentials, Error, TokenProvider};

// The example, compiled into this test binary: its `run` is what
// `cargo run --example adobe_api` runs.
#[allow(dead_code)]
#[path = "../../examples/adobe_api.rs"]
mod adobe_api;

fn client() -> Client {
    Client::builder()
        .proxy(None)
        .retries(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn oauth_provider(ims: &FakeIms) -> TokenProvider {
    let credentials = Credentials::from_file(fixture_path("oauth-credentials.sample.json"))
        .unwrap()
        .with_ims(&ims.url())
        .unwrap();
    TokenProvider::new(client(), credentials)
}

/// `n` OAuth tokens `tok-1` ... `tok-n`, each living a day.
fn tokens(n: usize) -> Vec<Reply> {
    (1..=n)
        .map(|i| oauth_reply(&format!("tok-{i}"), 86_399))
        .collect()
}

fn bearer(request: &Recorded) -> &str {
    request.header("authorization").unwrap_or_default()
}

/// Every value of the header `name` in `request`.
fn values<'a>(request: &'a Recorded, name: &str) -> Vec<&'a str> {
    request
        .headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn a_401_then_200_resends_once_with_a_new_token_and_the_same_bytes() {
    let ims = FakeIms::start(tokens(2));
    let api = FakeApi::refusing(&["tok-1"]);
    let provider = oauth_provider(&ims);
    // Bytes that are not text, and a line break.
    let body: Vec<u8> = (0..=255u8).chain(*b"\r\n{\"a\":1}").collect();
    let response = provider
        .request("PUT", &api.url("/api/assets/x?version=2&q=a+b"))
        .header("Content-Type", "application/octet-stream")
        .header("X-Request-Id", "r-1")
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), br#"{"ok":true}"#);
    let sent = api.requests();
    assert_eq!(sent.len(), 2, "one resend");
    assert_eq!(bearer(&sent[0]), "Bearer tok-1");
    assert_eq!(bearer(&sent[1]), "Bearer tok-2");
    for request in &sent {
        assert_eq!(request.method, "PUT");
        assert_eq!(request.path, "/api/assets/x?version=2&q=a+b");
        assert_eq!(request.body, body, "the body is byte-identical");
        assert_eq!(values(request, "x-request-id"), ["r-1"]);
        assert_eq!(
            values(request, "content-type"),
            ["application/octet-stream"]
        );
    }
    assert_eq!(ims.hits(), 2, "exchanges");
}

#[test]
fn an_api_that_always_refuses_gets_one_resend_and_the_401_back() {
    let ims = FakeIms::start(tokens(3));
    let api = FakeApi::refusing(&["tok-1", "tok-2", "tok-3"]);
    let provider = oauth_provider(&ims);
    let response = provider
        .request("POST", &api.url("/api"))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(!response.is_success());
    assert_eq!(response.body(), br#"{"error":"unauthorized"}"#);
    assert_eq!(api.requests().len(), 2, "exactly one resend");
    assert_eq!(ims.hits(), 2, "exchanges");
    // The next request: the brake keeps the replacement, so no exchange and
    // no resend.
    let response = provider.request("GET", &api.url("/api")).send().unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(api.requests().len(), 3);
    assert_eq!(ims.hits(), 2);
}

#[test]
fn a_hundred_threads_getting_401_at_once_cost_one_exchange() {
    let ims = FakeIms::start(tokens(3));
    let api = FakeApi::refusing(&["tok-1"]);
    let provider = oauth_provider(&ims);
    assert_eq!(provider.token().unwrap().secret(), "tok-1");
    let url = api.url("/content/dam.json");
    let barrier = Barrier::new(100);
    let statuses: Vec<u16> = thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    provider.request("GET", &url).send().unwrap().status()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(ims.hits(), 2, "one exchange for the storm");
    let sent = api.requests();
    let refused = sent.iter().filter(|r| bearer(r) == "Bearer tok-1").count();
    assert!(refused >= 1, "no request got 401");
    assert_eq!(sent.len(), 100 + refused, "one resend per 401");
}

#[test]
fn each_header_goes_once_and_a_callers_own_is_kept() {
    let ims = FakeIms::start_with(|host| vec![Reply::check_jwt(JwtExpect::sample(host), "tok-j")]);
    let api = FakeApi::refusing(&[]);
    let credentials = Credentials::from_file(fixture_path("service-credentials.sample.json"))
        .unwrap()
        .with_ims(&ims.url())
        .unwrap();
    let provider = TokenProvider::new(client(), credentials);
    let expect = JwtExpect::sample("x");
    provider.request("GET", &api.url("/a")).send().unwrap();
    provider
        .request("GET", &api.url("/b"))
        .header("X-Api-Key", "my-own-key")
        .header("Accept", "application/json")
        .send()
        .unwrap();
    let sent = api.requests();
    assert_eq!(values(&sent[0], "authorization"), ["Bearer tok-j"]);
    assert_eq!(values(&sent[0], "x-api-key"), [expect.client_id.as_str()]);
    assert_eq!(values(&sent[0], "x-gw-ims-org-id"), [expect.org.as_str()]);
    assert_eq!(values(&sent[1], "authorization"), ["Bearer tok-j"]);
    assert_eq!(values(&sent[1], "x-api-key"), ["my-own-key"]);
    assert_eq!(values(&sent[1], "x-gw-ims-org-id"), [expect.org.as_str()]);
    assert_eq!(values(&sent[1], "accept"), ["application/json"]);
    // The headers alone, for another HTTP client: the same three.
    let headers = provider.headers().unwrap();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["Authorization", "x-api-key", "x-gw-ims-org-id"]);
    assert_eq!(headers.token().secret(), "tok-j");
    assert_eq!(ims.hits(), 1);
}

#[test]
fn a_callers_own_authorization_is_sent_and_a_401_is_not_resent() {
    let ims = FakeIms::start(tokens(2));
    let api = FakeApi::refusing(&["basic-refused"]);
    let provider = oauth_provider(&ims);
    let response = provider
        .request("GET", &api.url("/x"))
        .header("Authorization", "Bearer basic-refused")
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    let sent = api.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(values(&sent[0], "authorization"), ["Bearer basic-refused"]);
    assert_eq!(ims.hits(), 1, "the provider's token was not dropped");
}

#[test]
fn any_method_with_or_without_a_body() {
    let ims = FakeIms::start(tokens(1));
    let api = FakeApi::refusing(&[]);
    let provider = oauth_provider(&ims);
    for (method, body) in [
        ("GET", None),
        ("DELETE", None),
        ("HEAD", None),
        ("OPTIONS", None),
        ("POST", None),
        ("POST", Some(&b"a=1&b=2"[..])),
        ("PATCH", Some(&b"[]"[..])),
        ("DELETE", Some(&b"{}"[..])),
    ] {
        let mut request = provider.request(method, &api.url("/m"));
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().unwrap();
        assert_eq!(response.status(), 200, "{method}");
        let sent = api.requests().pop().unwrap();
        assert_eq!(sent.method, method);
        assert_eq!(sent.body, body.unwrap_or_default(), "{method}");
        assert_eq!(sent.header("transfer-encoding"), None, "{method}");
        match body {
            Some(body) => assert_eq!(
                sent.header("content-length"),
                Some(body.len().to_string().as_str()),
                "{method}"
            ),
            None if method == "POST" => {
                assert_eq!(sent.header("content-length"), Some("0"), "{method}")
            }
            None => assert_eq!(sent.header("content-length"), None, "{method}"),
        }
    }
    assert_eq!(ims.hits(), 1);
}

#[test]
fn a_redirect_is_handed_back_not_followed() {
    let ims = FakeIms::start(tokens(1));
    let elsewhere = FakeApi::refusing(&[]);
    let target = elsewhere.url("/stolen");
    let api = FakeApi::start(move |_| (302, vec![("Location".into(), target.clone())], Vec::new()));
    let provider = oauth_provider(&ims);
    let response = provider
        .request("POST", &api.url("/r"))
        .body("payload")
        .send()
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.header("location"),
        Some(elsewhere.url("/stolen").as_str())
    );
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}

#[test]
fn bad_requests_fail_before_anything_is_sent() {
    let ims = FakeIms::start(tokens(1));
    let provider = oauth_provider(&ims);
    for (method, url) in [
        ("GET", "http://example.com/plain?sig=s3cr3t"),
        ("GET", "https://user:s3cr3t@example.com/"),
        ("NOT A METHOD", "https://example.com/"),
        ("PROPFIND", "https://example.com/"),
    ] {
        let e = provider.request(method, url).send().unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e:?}");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }
    let e = provider
        .request("GET", "https://example.com/")
        .header("X-Evil", "a\r\nInjected: s3cr3t")
        .send()
        .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
    assert_eq!(ims.hits(), 0);
    // Nor does a request's Debug show a header's value or the URL's query.
    let request = provider
        .request("POST", "https://api.example.com/p?sig=s3cr3t")
        .header("Authorization", "Basic s3cr3t")
        .body("s3cr3t body");
    let debug = format!("{request:?}");
    assert!(debug.contains("https://api.example.com/p") && debug.contains("Authorization"));
    assert!(!debug.contains("s3cr3t"), "{debug}");
}

#[test]
fn an_unreachable_api_is_named_without_its_query() {
    let ims = FakeIms::start(tokens(1));
    let provider = oauth_provider(&ims);
    let url = format!("http://127.0.0.1:{}/path?sig=s3cr3t", common::closed_port());
    let e = provider.request("GET", &url).send().unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with("cannot reach the API at http://127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("/path") && !text.contains("s3cr3t"), "{text}");
}

#[test]
fn a_reply_over_the_limit_is_an_api_reply_error() {
    let ims = FakeIms::start(tokens(1));
    let api = FakeApi::start(|_| (200, Vec::new(), vec![b'x'; 4096]));
    let provider = oauth_provider(&ims);
    let e = provider
        .request("GET", &api.url("/big"))
        .max_response_bytes(1024)
        .send()
        .unwrap_err();
    let Error::ApiReply { status, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*status, Some(200));
    assert!(e.to_string().contains("larger than 1 KiB"), "{e}");
    let whole = provider
        .request("GET", &api.url("/big"))
        .max_response_bytes(4096)
        .send()
        .unwrap();
    assert_eq!(whole.body().len(), 4096);
}

#[test]
fn invalidate_drops_the_cached_token_once_leaves_stale_ones_and_brakes_a_replacement() {
    let ims = FakeIms::start(tokens(3));
    let provider = oauth_provider(&ims);
    let first = provider.token().unwrap();
    // A token that is not the cached one: nothing dropped.
    let other = AccessToken::new("tok-x", "bearer", first.received_at(), first.expires_at());
    assert!(!provider.invalidate(&other));
    assert_eq!(provider.token().unwrap().secret(), "tok-1");
    // The cached one, the first time: dropped.
    assert!(provider.invalidate(&first));
    let second = provider.token().unwrap();
    assert_eq!(second.secret(), "tok-2");
    // The old one again (a stale 401): the new one stays.
    assert!(!provider.invalidate(&first));
    // The replacement, within the cooldown (60 s): kept.
    assert!(!provider.invalidate(&second));
    assert_eq!(provider.token().unwrap().secret(), "tok-2");
    assert_eq!(ims.hits(), 2);
}

#[test]
fn a_replacement_older_than_a_short_cooldown_is_dropped() {
    let ims = FakeIms::start(tokens(3));
    let clock = TestClock::default();
    let provider = oauth_provider(&ims)
        .with_invalidate_cooldown(Duration::from_millis(300))
        .with_clock(clock.reader());
    let first = provider.token().unwrap();
    assert!(provider.invalidate(&first));
    let second = provider.token().unwrap();
    assert_eq!(second.secret(), "tok-2");
    // 400 ms later, as the provider sees it.
    clock.advance(Duration::from_millis(400));
    assert!(provider.invalidate(&second));
    assert_eq!(provider.token().unwrap().secret(), "tok-3");
    // With no brake at all, every invalidation of the cached token drops it.
    let ims = FakeIms::start(tokens(3));
    let provider = oauth_provider(&ims).with_invalidate_cooldown(Duration::ZERO);
    for _ in 0..2 {
        let token = provider.token().unwrap();
        assert!(provider.invalidate(&token));
    }
    assert_eq!(provider.token().unwrap().secret(), "tok-3");
}

// ---------------------------------------------------------------------------
// The adobe_api example

/// Runs the example's `run` with `args`; its stdout and exit code.
fn example(args: &[&str]) -> (String, u8) {
    let mut out = Vec::new();
    let args = args.iter().map(|a| a.to_string());
    let code = adobe_api::run(args, &mut out);
    (String::from_utf8(out).unwrap(), code)
}

/// The example reads the environment (credentials and proxy variables):
/// this test runs in a process of its own, with them cleared and set here.
#[test]
fn the_example_prints_the_status_then_the_body() {
    if !common::in_a_process_of_its_own() {
        return;
    }
    for name in common::PROXY_VARS.iter().chain(&["IMS_CREDENTIALS"]) {
        std::env::remove_var(name);
    }
    let creds = common::path_str(&fixture_path("oauth-credentials.sample.json"));

    // -c FILE; a 401, then 200 to the resend with a new token.
    let ims = FakeIms::start(tokens(2));
    let api = FakeApi::refusing(&["tok-1"]);
    let url = api.url("/api/thing");
    let (out, code) = example(&["-c", &creds, "--ims", &ims.url(), "POST", &url, "{\"a\":1}"]);
    assert_eq!(out, "200\n{\"ok\":true}");
    assert_eq!(code, 0);
    let sent = api.requests();
    assert_eq!(sent.len(), 2, "the example resends once after the 401");
    assert_eq!(sent[1].body, b"{\"a\":1}");
    assert_eq!(sent[1].header("content-type"), Some("application/json"));

    // $IMS_CREDENTIALS; an API that refuses every token: the 401, exit 1.
    std::env::set_var("IMS_CREDENTIALS", &creds);
    let ims = FakeIms::start(tokens(3));
    let api = FakeApi::refusing(&["tok-1", "tok-2", "tok-3"]);
    let (out, code) = example(&["--ims", &ims.url(), "GET", &api.url("/x")]);
    assert_eq!(out, "401\n{\"error\":\"unauthorized\"}");
    assert_eq!(code, 1);
    assert_eq!(api.requests().len(), 2);
    std::env::remove_var("IMS_CREDENTIALS");

    // The IMS_* variables, with an org: all three headers.
    let ims = FakeIms::start(tokens(1));
    let api = FakeApi::refusing(&[]);
    for (name, value) in [
        ("IMS_CLIENT_ID", "env-client"),
        ("IMS_CLIENT_SECRET", "env-secret"),
        ("IMS_ORG_ID", "ENVORG@AdobeOrg"),
        ("IMS_SCOPES", "openid"),
        ("IMS_ENDPOINT", ims.url().as_str()),
    ] {
        std::env::set_var(name, value);
    }
    let (out, code) = example(&["GET", &api.url("/y")]);
    assert_eq!((out.lines().next(), code), (Some("200"), 0));
    let sent = api.requests();
    assert_eq!(values(&sent[0], "authorization"), ["Bearer tok-1"]);
    assert_eq!(values(&sent[0], "x-api-key"), ["env-client"]);
    assert_eq!(values(&sent[0], "x-gw-ims-org-id"), ["ENVORG@AdobeOrg"]);

    // A proxy that is not there: loopback hosts (the API at 127.0.0.1, IMS
    // at localhost) always go direct, whatever the proxy settings.
    std::env::set_var(
        "HTTPS_PROXY",
        format!("http://127.0.0.1:{}", common::closed_port()),
    );
    let ims = FakeIms::start(tokens(2));
    std::env::set_var("IMS_ENDPOINT", format!("http://localhost:{}", ims.port()));
    let credentials = Credentials::from_env().unwrap().unwrap();
    let response = TokenProvider::new(Client::new().unwrap(), credentials)
        .request("GET", &api.url("/z"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(ims.hits(), 1, "IMS went direct");
    assert_eq!(api.requests().len(), 2, "the API went direct");
}

#[test]
fn the_provider_and_what_it_hands_out_can_go_to_other_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<TokenProvider>();
    shared::<ims_token::ApiHeaders>();
    shared::<ims_token::ApiResponse>();
    shared::<Error>();
}

#[test]
fn the_example_refuses_a_bad_command_line() {
    for args in [
        &[][..],
        &["GET"][..],
        &["-c"][..],
        &["--bogus", "GET", "https://example.com/"][..],
        &["GET", "https://example.com/", "body", "extra"][..],
    ] {
        let (out, code) = example(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
}

#[test]
fn a_401_is_returned_when_the_new_exchange_fails() {
    // After the 401, the token is dropped and IMS is asked for another; IMS
    // is down: the caller gets the API's 401 (it says what the API said),
    // not IMS's error, and nothing is resent.
    let mut script = tokens(1);
    script.push(Reply::ims_error(503, "temporarily_unavailable", "down"));
    let ims = FakeIms::start(script);
    let api = FakeApi::refusing(&["tok-1"]);
    let provider = oauth_provider(&ims);
    let response = provider
        .request("POST", &api.url("/api"))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.body(), br#"{"error":"unauthorized"}"#);
    assert_eq!(api.requests().len(), 1, "no resend");
    assert_eq!(ims.hits(), 2, "exchanges");
}
