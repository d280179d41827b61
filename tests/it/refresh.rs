//! Refresh behaviour on bad days: a fresh JWT per attempt, the old token
//! kept while IMS is down, default ports, bounded timeouts.

use crate::common;

use std::thread;
use std::time::{Duration, Instant};

use common::{fixture_path, oauth_reply, FakeIms, JwtExpect, Reply, TestClock};
use ims_token::{Client, Credentials, Endpoint, Error, TokenProvider};

fn creds(file: &str, url: &str) -> Credentials {
    Credentials::from_file(fixture_path(file))
        .unwrap()
        .with_ims(url)
        .unwrap()
}

#[test]
fn each_retry_sends_a_freshly_signed_jwt() {
    let server = FakeIms::start_with(|host| {
        vec![
            Reply::ims_error(503, "temporarily_unavailable", "busy")
                .with_header("Retry-After", "1"),
            Reply::check_jwt(JwtExpect::sample(host), "tok-after-retry"),
        ]
    });
    let client = Client::builder()
        .proxy(None)
        .max_retry_wait(Duration::from_secs(2))
        .build()
        .unwrap();
    let token = client
        .fetch(&creds("service-credentials.sample.json", &server.url()))
        .unwrap();
    assert_eq!(token.secret(), "tok-after-retry");
    let jwts: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.form_value("jwt_token").unwrap().to_owned())
        .collect();
    assert_eq!(jwts.len(), 2);
    // The retry came a second later: its JWT has a later `exp`.
    assert_ne!(jwts[0], jwts[1], "the retry re-sent the first JWT");
}

#[test]
fn provider_keeps_a_valid_token_while_ims_is_down() {
    // A 100 s token: the margin is capped at 50 s and jittered to 25..50 s,
    // so 80 s later a refresh is due while the token still has 20 s to live
    // (on the provider's clock, moved ahead instead of a sleep).
    let server = FakeIms::start(vec![
        oauth_reply("tok-first", 100),
        Reply::ims_error(503, "temporarily_unavailable", "down"),
        oauth_reply("tok-never", 100),
    ]);
    let client = Client::builder().proxy(None).retries(0).build().unwrap();
    let clock = TestClock::default();
    let provider = TokenProvider::new(
        client,
        creds("oauth-credentials.sample.json", &server.url()),
    )
    .with_clock(clock.reader());
    assert_eq!(provider.token().unwrap().secret(), "tok-first");
    clock.advance(Duration::from_secs(80));
    // The refresh starts behind this call, which gets the cached token.
    assert_eq!(provider.token().unwrap().secret(), "tok-first");
    let until = Instant::now() + Duration::from_secs(10);
    while server.hits() < 2 {
        assert!(Instant::now() < until, "the refresh was not tried");
        thread::sleep(Duration::from_millis(10));
    }
    // Within the pause after the failed refresh, IMS is not asked again.
    let until = Instant::now() + Duration::from_millis(100);
    while Instant::now() < until {
        assert_eq!(provider.token().unwrap().secret(), "tok-first");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.hits(), 2);
}

#[test]
fn provider_reports_the_failure_once_the_old_token_has_expired() {
    let server = FakeIms::start(vec![
        oauth_reply("tok-short", 1),
        Reply::ims_error(503, "temporarily_unavailable", "down"),
    ]);
    let client = Client::builder().proxy(None).retries(0).build().unwrap();
    let clock = TestClock::default();
    let provider = TokenProvider::new(
        client,
        creds("oauth-credentials.sample.json", &server.url()),
    )
    .with_clock(clock.reader());
    provider.token().unwrap();
    // 1.1 s later, as the provider sees it: the token has expired.
    clock.advance(Duration::from_millis(1100));
    let e = provider.token().unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
}

#[test]
fn provider_drops_the_token_when_ims_rejects_the_refresh() {
    // Due as above: a 100 s token, 80 s later on the provider's clock.
    let server = FakeIms::start(vec![
        oauth_reply("tok-first", 100),
        Reply::ims_error(401, "invalid_client", "secret rotated"),
        Reply::ims_error(401, "invalid_client", "secret rotated"),
    ]);
    let client = Client::builder().proxy(None).retries(0).build().unwrap();
    let clock = TestClock::default();
    let provider = TokenProvider::new(
        client,
        creds("oauth-credentials.sample.json", &server.url()),
    )
    .with_clock(clock.reader());
    provider.token().unwrap();
    clock.advance(Duration::from_secs(80));
    // The refresh runs behind the calls; once IMS has refused it, the token
    // is gone and the next call asks IMS itself (or, after expiry, shares
    // the refusal).
    let until = Instant::now() + Duration::from_secs(10);
    let e = loop {
        match provider.token() {
            Ok(token) => assert_eq!(token.secret(), "tok-first"),
            Err(e) => break e,
        }
        assert!(Instant::now() < until, "the refusal never came");
        thread::sleep(Duration::from_millis(10));
    };
    assert!(matches!(e, Error::Rejected(_)), "{e:?}");
}

#[test]
fn default_ports_are_left_out_of_the_claims_host() {
    for (text, host) in [
        (
            "https://ims-na1.adobelogin.com:443",
            "ims-na1.adobelogin.com",
        ),
        ("ims-na1.adobelogin.com:443/", "ims-na1.adobelogin.com"),
        ("http://127.0.0.1:80", "127.0.0.1"),
        (
            "https://ims-na1.adobelogin.com:8443",
            "ims-na1.adobelogin.com:8443",
        ),
    ] {
        assert_eq!(Endpoint::parse(text).unwrap().host(), host, "{text}");
    }
}

#[test]
fn timeouts_out_of_range_are_config_errors() {
    for timeout in [Duration::ZERO, Duration::MAX, Duration::from_secs(86_401)] {
        let e = Client::builder().timeout(timeout).build().unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{timeout:?}: {e:?}");
        let e = Client::builder()
            .connect_timeout(timeout)
            .build()
            .unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{timeout:?}: {e:?}");
    }
}
