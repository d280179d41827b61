//! A host clock off IMS's: the fake IMS judges `exp` on its own clock and
//! tells it in its `Date` header, as IMS does.

use crate::common;

use std::time::Duration;

use common::run::run;
use common::{fixture_path, http_date, now_secs, path_str, FakeIms, JwtExpect, Reply};
use ims_token::{Client, Credentials, Error};

const TEN_MINUTES: i64 = 600;
const THREE_HOURS: i64 = 3 * 3600;

fn client() -> Client {
    Client::builder()
        .proxy(None)
        .retries(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn jwt_creds(server: &FakeIms) -> Credentials {
    Credentials::from_file(fixture_path("service-credentials.sample.json"))
        .unwrap()
        .with_ims(&server.url())
        .unwrap()
}

/// A fake whose clock is `offset` seconds ahead, judging every JWT.
fn ims_ahead(offset: i64, replies: usize) -> FakeIms {
    FakeIms::start_with(|host| {
        let expect = JwtExpect::sample(host).with_clock_offset(offset);
        (0..replies)
            .map(|i| Reply::check_jwt(expect.clone(), &format!("tok-{i}")))
            .collect()
    })
}

fn exp_of(request: &common::Recorded) -> i64 {
    let jwt = request.form_value("jwt_token").unwrap();
    common::jwt_claims(jwt)["exp"].as_i64().unwrap()
}

#[test]
fn a_slow_host_clock_costs_one_retry_then_none() {
    for offset in [TEN_MINUTES, THREE_HOURS] {
        let server = ims_ahead(offset, 3);
        let client = client();
        let creds = jwt_creds(&server);
        // The first JWT expired on IMS's clock; the second is signed on it.
        let token = client.fetch(&creds).unwrap();
        assert_eq!(token.secret(), "tok-1", "offset {offset}");
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "offset {offset}");
        let learned = client.clock_offset().unwrap();
        assert!((learned - offset).abs() <= 2, "{learned} vs {offset}");
        let shift = exp_of(&requests[1]) - exp_of(&requests[0]);
        assert!((shift - offset).abs() <= 3, "exp moved {shift} s");
        // Token expiry follows expires_in on arrival, not IMS's clock.
        let left = token.expires_in(std::time::SystemTime::now()).as_secs();
        assert!((86_390..=86_400).contains(&left), "{left}");
        // Later JWTs use the learned offset: one request.
        assert_eq!(client.fetch(&creds).unwrap().secret(), "tok-2");
        assert_eq!(server.requests().len(), 3);
    }
}

#[test]
fn clones_of_a_client_share_what_it_learned_of_the_clock() {
    let server = ims_ahead(TEN_MINUTES, 3);
    let client = client();
    let creds = jwt_creds(&server);
    client.fetch(&creds).unwrap();
    let copy = client.clone();
    assert_eq!(copy.fetch(&creds).unwrap().secret(), "tok-2");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_refusal_of_the_corrected_jwt_too_ends_after_two_attempts() {
    let date = http_date(now_secs() + TEN_MINUTES);
    let refusal = Reply::ims_error(400, "invalid_token", "JWT expired").with_header("Date", &date);
    let server = FakeIms::start(vec![refusal.clone(), refusal.clone(), refusal]);
    let e = client().fetch(&jwt_creds(&server)).unwrap_err();
    assert!(matches!(e, Error::Rejected(_)), "{e:?}");
    assert_eq!(server.hits(), 2);
}

#[test]
fn an_invalid_token_with_a_right_clock_is_not_retried() {
    let date = http_date(now_secs());
    let refusal = Reply::ims_error(400, "invalid_token", "Could not match JWT signature")
        .with_header("Date", &date);
    let server = FakeIms::start(vec![refusal.clone(), refusal]);
    let client = client();
    let e = client.fetch(&jwt_creds(&server)).unwrap_err();
    assert!(matches!(e, Error::Rejected(_)), "{e:?}");
    assert_eq!(server.hits(), 1);
    assert!(client.clock_offset().unwrap().abs() <= 2);
}

#[test]
fn a_broken_date_header_is_ignored() {
    for date in ["yesterday", "Tue, 14 Nov 1999 22:13:20 GMT", ""] {
        let refusal =
            Reply::ims_error(400, "invalid_token", "JWT expired").with_header("Date", date);
        let server = FakeIms::start(vec![refusal.clone(), refusal]);
        let client = client();
        let e = client.fetch(&jwt_creds(&server)).unwrap_err();
        assert!(matches!(e, Error::Rejected(_)), "{e:?}");
        assert_eq!(server.hits(), 1, "{date:?}");
        assert_eq!(client.clock_offset(), None, "{date:?}");
    }
}

#[test]
fn the_command_warns_about_the_clock_and_prints_the_token() {
    let server = ims_ahead(612, 2);
    let url = server.url();
    let creds = path_str(&fixture_path("service-credentials.sample.json"));
    let out = run(&["--ims", &url, "--retries", "0", "-c", &creds]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "tok-1\n");
    let stderr = &out.stderr;
    let warned = (610..=614).any(|s| {
        stderr.contains(&format!(
            "ims-token: warning: this host's clock is {s} s behind IMS; fix its time (NTP)\n"
        ))
    });
    assert!(warned, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_jwt_already_signed_on_ims_time_is_not_signed_again() {
    // The offset is learned from a 500; the retry, signed on IMS's time, is
    // refused for another reason: no second cycle.
    let date = http_date(now_secs() + TEN_MINUTES);
    let busy = Reply::ims_error(500, "server_error", "busy").with_header("Date", &date);
    let refusal = Reply::ims_error(400, "invalid_token", "Could not match JWT signature")
        .with_header("Date", &date);
    let server = FakeIms::start(vec![busy, refusal.clone(), refusal.clone(), refusal]);
    let client = Client::builder()
        .proxy(None)
        .retries(1)
        .max_retry_wait(Duration::from_millis(50))
        .build()
        .unwrap();
    let e = client.fetch(&jwt_creds(&server)).unwrap_err();
    assert!(matches!(e, Error::Rejected(_)), "{e:?}");
    assert_eq!(server.hits(), 2);
    let requests = server.requests();
    let shift = exp_of(&requests[1]) - exp_of(&requests[0]);
    assert!(
        (shift - TEN_MINUTES).abs() <= 3,
        "the retry was not on IMS's time: {shift}"
    );
}
