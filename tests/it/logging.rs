//! What the library logs through the `log` facade, caught by a capturing
//! logger: the lines an operator needs, and never a secret, JWT, token or
//! form body.

use crate::common;

use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use common::{
    fixture_path, http_date, now_secs, oauth_reply, FakeApi, FakeIms, JwtExpect, OAuthExpect,
    Reply, TestClock,
};
use ims_token::{Client, Credentials, TokenProvider};

/// Every record logged on a thread of this module's tests: (level, target, text).
static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

/// How the threads of this module's tests are named: libtest names a
/// test's thread after the test, and the tests name the threads they start
/// after themselves. The tests of the other modules share this process and
/// the logger: their records are none of these tests' business.
const OUR_THREADS: &str = "logging::";

/// Whether the calling thread is one of this module's tests'.
fn on_our_thread() -> bool {
    thread::current()
        .name()
        .is_some_and(|name| name.starts_with(OUR_THREADS))
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        on_our_thread()
    }
    fn log(&self, record: &log::Record<'_>) {
        if !on_our_thread() {
            return;
        }
        let text = record.args().to_string();
        // A logger that panics, for the test of a refresh that unwinds.
        assert!(!text.contains(PANIC_MARKER), "the logger panics");
        RECORDS
            .lock()
            .unwrap()
            .push((record.level(), record.target().to_owned(), text));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

const PANIC_MARKER: &str = "make-the-logger-panic";

fn install() {
    assert!(
        on_our_thread(),
        "{:?} is not named {OUR_THREADS}*",
        thread::current()
    );
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Trace);
}

/// The records so far whose text contains `marker`.
fn logged(marker: &str) -> Vec<(log::Level, String, String)> {
    RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, text)| text.contains(marker))
        .cloned()
        .collect()
}

fn client(retries: u32) -> Client {
    Client::builder()
        .proxy(None)
        .retries(retries)
        .max_retry_wait(Duration::from_millis(20))
        .build()
        .unwrap()
}

fn creds(file: &str, server: &FakeIms) -> Credentials {
    Credentials::from_file(fixture_path(file))
        .unwrap()
        .with_ims(&server.url())
        .unwrap()
}

/// Whether a record is ureq's hex dump of the bytes on the wire (trace
/// level), which holds a reply's token: the README says to keep `ureq` and
/// `ureq_proto` below trace. Every other record must be secret-free.
fn is_wire_dump(level: log::Level, target: &str) -> bool {
    level == log::Level::Trace && target.starts_with("ureq")
}

/// No record holds any of `secrets`, nor a secret field of a form body.
fn assert_logs_secret_free(secrets: &[&str]) {
    let records = RECORDS.lock().unwrap();
    let dumps = records
        .iter()
        .filter(|(level, target, _)| is_wire_dump(*level, target))
        .count();
    assert!(
        dumps > 0,
        "ureq no longer dumps the wire at trace: update the README"
    );
    let checked: Vec<_> = records
        .iter()
        .filter(|(level, target, _)| !is_wire_dump(*level, target))
        .collect();
    assert!(checked.len() > 10, "{checked:?}");
    for (_, _, text) in checked {
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            assert!(!text.contains(secret), "a secret in the log: {text}");
        }
        // An error may quote IMS echoing the form, with its secrets redacted.
        for field in ["client_secret=", "jwt_token="] {
            for (at, _) in text.match_indices(field) {
                let value = &text[at + field.len()..];
                assert!(
                    value.starts_with("[redacted]"),
                    "a form value in the log: {text}"
                );
            }
        }
    }
}

#[test]
fn operators_see_fallbacks_clock_offsets_and_retries_but_no_secret() {
    install();
    let oauth = OAuthExpect::sample();

    // A retry (debug), then a token; the 500 echoes the form body back.
    let server = FakeIms::start(vec![
        Reply::Echo {
            status: 500,
            content_type: "text/plain".into(),
        },
        Reply::check_oauth(oauth.clone(), "tok-after-retry-SECRET1"),
    ]);
    let token = client(1)
        .fetch(&creds("oauth-credentials.sample.json", &server))
        .unwrap();
    let issued = logged("IMS issued a token (client credentials, http://127.0.0.1:");
    assert!(
        issued
            .iter()
            .any(|(level, target, text)| *level == log::Level::Debug
                && target.starts_with("ims_token")
                && text.ends_with("/ims/token/v3) that lives 86399 s")),
        "{issued:?}"
    );
    let retries = logged("retrying the IMS request");
    assert!(
        retries.iter().any(
            |(level, target, _)| *level == log::Level::Debug && target.starts_with("ims_token")
        ),
        "{retries:?}"
    );

    // A failed refresh that falls back on the cached token (warn): a 100 s
    // token is due 80 s later, on the provider's clock moved ahead.
    let server = FakeIms::start(vec![
        oauth_reply("tok-kept-SECRET2", 100),
        Reply::ims_error(503, "temporarily_unavailable", "fallback-marker"),
    ]);
    let clock = TestClock::default();
    let provider = TokenProvider::new(client(0), creds("oauth-credentials.sample.json", &server))
        .with_clock(clock.reader());
    let kept = provider.token().unwrap();
    clock.advance(Duration::from_secs(80));
    assert_eq!(provider.token().unwrap().secret(), kept.secret());
    // The refresh runs on a thread named after this one, and logs there.
    let fallback = || {
        logged("fallback-marker").iter().any(|(level, _, text)| {
            *level == log::Level::Warn && text.contains("using the cached one")
        })
    };
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !fallback() {
        assert!(std::time::Instant::now() < until, "no fallback warning");
        thread::sleep(Duration::from_millis(10));
    }

    // A clock 10 minutes behind IMS's (warn), and the JWT signed again.
    let server = FakeIms::start_with(|host| {
        let expect = JwtExpect::sample(host).with_clock_offset(600);
        vec![
            Reply::check_jwt(expect.clone(), "tok-jwt-SECRET3"),
            Reply::check_jwt(expect, "tok-jwt-SECRET3"),
        ]
    });
    let jwt_token = client(0)
        .fetch(&creds("service-credentials.sample.json", &server))
        .unwrap();
    let clock = logged("this host's clock is");
    assert!(
        clock
            .iter()
            .any(|(level, _, text)| *level == log::Level::Warn && text.contains("behind IMS")),
        "{clock:?}"
    );
    // A refusal whose Date is an hour ahead, with the secret in its text.
    let jwt_secret = JwtExpect::sample("x").client_secret;
    let date = http_date(now_secs() + 3600);
    let refusal = Reply::ims_error(400, "invalid_token", &jwt_secret).with_header("Date", &date);
    let refused = FakeIms::start(vec![refusal.clone(), refusal]);
    assert!(client(0)
        .fetch(&creds("service-credentials.sample.json", &refused))
        .is_err());

    let jwts: Vec<String> = server
        .requests()
        .iter()
        .chain(refused.requests().iter())
        .filter_map(|r| r.form_value("jwt_token").map(str::to_owned))
        .collect();
    let mut secrets = vec![
        oauth.client_secret.as_str(),
        jwt_secret.as_str(),
        token.secret(),
        kept.secret(),
        jwt_token.secret(),
    ];
    secrets.extend(jwts.iter().map(String::as_str));
    assert_logs_secret_free(&secrets);
}

#[test]
fn a_refresh_that_unwinds_does_not_leave_its_waiters_waiting() {
    install();
    // The first refresh gets a 503 whose text makes the logger panic when
    // the retry is logged: that caller's thread unwinds mid-refresh. The
    // callers waiting for it must not wait forever: one of them refreshes.
    let server = FakeIms::start(vec![
        Reply::ims_error(503, "temporarily_unavailable", PANIC_MARKER).after_ms(100),
        oauth_reply("tok-after-panic", 86_399),
    ]);
    let provider = TokenProvider::new(client(1), creds("oauth-credentials.sample.json", &server));
    let barrier = std::sync::Barrier::new(4);
    let test = thread::current().name().unwrap().to_owned();
    let results: Vec<std::thread::Result<String>> = thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let caller = thread::Builder::new().name(format!("{test}/caller-{i}"));
                let spawned = caller.spawn_scoped(s, || {
                    barrier.wait();
                    provider.token().unwrap().secret().to_owned()
                });
                spawned.unwrap()
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let panicked = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(panicked, 1, "one refreshing caller unwound");
    for token in results.into_iter().flatten() {
        assert_eq!(token, "tok-after-panic");
    }
    assert_eq!(server.hits(), 2);
}

#[test]
fn an_api_that_refuses_every_token_costs_at_most_three_exchanges_and_one_warning() {
    install();
    let tokens = (1..=30)
        .map(|i| oauth_reply(&format!("tok-brake-SECRET{i}"), 86_399))
        .collect();
    let server = FakeIms::start(tokens);
    let api = FakeApi::start(|_| (401, Vec::new(), b"{}".to_vec()));
    let provider = TokenProvider::new(client(0), creds("oauth-credentials.sample.json", &server));
    for _ in 0..30 {
        let response = provider.request("GET", &api.url("/brake")).send().unwrap();
        assert_eq!(response.status(), 401);
    }
    let exchanges = server.hits();
    assert!((2..=3).contains(&exchanges), "{exchanges} exchanges");
    // The first request and its one resend, then one request each.
    assert_eq!(api.requests().len(), 31);
    let warnings = logged("a new token will not help");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let (level, target, text) = &warnings[0];
    assert_eq!(*level, log::Level::Warn);
    assert!(target.starts_with("ims_token"), "{target}");
    for check in ["product profile", "x-api-key", "org"] {
        assert!(text.contains(check), "{text}");
    }
    assert!(!text.contains("tok-brake-SECRET"), "{text}");
}

#[test]
fn a_401_whose_new_exchange_fails_comes_back_with_a_warning() {
    install();
    let server = FakeIms::start(vec![
        oauth_reply("tok-lost-SECRET1", 86_399),
        Reply::ims_error(503, "temporarily_unavailable", "down"),
    ]);
    let api = FakeApi::refusing(&["tok-lost-SECRET1"]);
    let provider = TokenProvider::new(client(0), creds("oauth-credentials.sample.json", &server));
    let url = api.url("/lost?sig=query-SECRET");
    let response = provider.request("GET", &url).send().unwrap();
    assert_eq!(response.status(), 401);
    let warnings = logged("getting a new token failed");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let (level, _, text) = &warnings[0];
    assert_eq!(*level, log::Level::Warn);
    assert!(
        text.contains("/lost answered 401") && text.contains("503"),
        "{text}"
    );
    assert!(!text.contains("SECRET"), "{text}");
}

/// The features of `log` that cargo enables in this package's build with
/// `features` added (`{f}` of `cargo tree`: empty for none); dev-dependencies
/// included, so what an application gets is at most this.
fn log_features(features: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--offline", "--locked", "--invert", "log"])
        .args(["--depth", "0", "--prefix", "none", "--format", "{f}"])
        .args(features)
        .output()
        .expect("run cargo tree");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo tree: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Depending on ims-token with the default features (`cargo add
/// ims-token`) leaves an application's log levels its own, in release too.
/// Building an application in release here would take minutes (LTO of
/// rustls, ring and rsa); what could cap its levels is a `max_level_*` or
/// `release_max_level_*` feature of `log`, so cargo is asked which features
/// of `log` the default features enable, and shown to see one (`small`
/// caps). At run time, in this build, the application's info and debug
/// lines reach its logger.
#[test]
fn an_application_logs_at_its_own_levels_with_the_default_features() {
    let default = log_features(&[]);
    assert!(
        !default.contains("max_level"),
        "the default features cap log for the whole build: {default}"
    );
    let small = log_features(&["--features", "small"]);
    assert!(small.contains("release_max_level_warn"), "{small:?}");

    install();
    log::info!(target: "my_app", "app-info-marker");
    log::debug!(target: "my_app::db", "app-debug-marker");
    log::trace!(target: "my_app", "app-trace-marker");
    for (marker, level) in [
        ("app-info-marker", log::Level::Info),
        ("app-debug-marker", log::Level::Debug),
        ("app-trace-marker", log::Level::Trace),
    ] {
        let lines = logged(marker);
        assert!(
            lines
                .iter()
                .any(|(l, t, _)| *l == level && t.starts_with("my_app")),
            "{marker}: {lines:?}"
        );
    }
}
