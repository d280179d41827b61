//! `TokenProvider` under load: many threads against the loopback fake IMS
//! with a slow refresh, a failing refresh, and a storm of 401s.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::{fixture_path, oauth_reply, FakeIms, Gate, Reply, TestClock};
use ims_token::{AccessToken, Client, Credentials, Error, TokenProvider};

const THREADS: usize = 8;

fn oauth_provider(server: &FakeIms, retries: u32) -> TokenProvider {
    let client = Client::builder()
        .proxy(None)
        .retries(retries)
        .max_retry_wait(Duration::from_millis(50))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let credentials = Credentials::from_file(fixture_path("oauth-credentials.sample.json"))
        .unwrap()
        .with_ims(&server.url())
        .unwrap();
    TokenProvider::new(client, credentials)
}

/// Runs `f` on `THREADS` threads released together; their results in order.
fn on_threads<T: Send>(f: impl Fn() -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    f()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn the_caller_that_notices_the_refresh_gets_the_cached_token_while_it_runs() {
    // A 100 s token: the margin is capped at 50 s and jittered to 25..50 s,
    // so 80 s later a refresh is due while the token has 20 s to live (on
    // the provider's clock, moved ahead instead of a sleep). IMS holds the
    // refresh's reply until the test has had its token.
    let gate = Gate::new();
    let server = FakeIms::start(vec![
        oauth_reply("tok-old", 100),
        oauth_reply("tok-new", 86_399).held_by(&gate),
    ]);
    let clock = TestClock::default();
    let provider = oauth_provider(&server, 0).with_clock(clock.reader());
    assert_eq!(provider.token().unwrap().secret(), "tok-old");
    clock.advance(Duration::from_secs(80));
    // This call notices the refresh is due, starts it and returns before
    // IMS answers: its reply is still held.
    assert_eq!(provider.token().unwrap().secret(), "tok-old");
    wait_for(|| server.requests().len() == 2, "the refresh's request");
    assert_eq!(provider.token().unwrap().secret(), "tok-old");
    gate.open();
    wait_for(
        || provider.token().unwrap().secret() == "tok-new",
        "the new token",
    );
    assert_eq!(server.hits(), 2);
}

#[test]
fn callers_get_the_cached_token_at_once_while_one_refreshes() {
    // As above, with 8 threads calling through a refresh that takes 400 ms.
    let server = FakeIms::start(vec![
        oauth_reply("tok-old", 100),
        oauth_reply("tok-new", 86_399).after_ms(400),
    ]);
    let clock = TestClock::default();
    let provider = oauth_provider(&server, 0).with_clock(clock.reader());
    assert_eq!(provider.token().unwrap().secret(), "tok-old");
    clock.advance(Duration::from_secs(80));

    // Each thread calls for 200 ms: (thread, token, when the call ended).
    let barrier = Barrier::new(THREADS);
    let calls: Vec<(usize, String, Instant)> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|n| {
                let (barrier, provider) = (&barrier, &provider);
                s.spawn(move || {
                    barrier.wait();
                    let until = Instant::now() + Duration::from_millis(200);
                    let mut calls = Vec::new();
                    while Instant::now() < until {
                        let token = provider.token().unwrap();
                        calls.push((n, token.secret().to_owned(), Instant::now()));
                    }
                    calls
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    // Every thread was served while the refresh ran, each with the old
    // token until the new one was in, and never the old one after.
    let first_new = calls
        .iter()
        .filter(|(_, token, _)| token == "tok-new")
        .map(|(_, _, at)| *at)
        .min();
    let served: std::collections::BTreeSet<usize> = calls
        .iter()
        .filter(|(_, token, at)| token == "tok-old" && first_new.is_none_or(|new| *at < new))
        .map(|(n, _, _)| *n)
        .collect();
    assert_eq!(
        served.len(),
        THREADS,
        "threads served during the refresh: {served:?}"
    );
    for n in 0..THREADS {
        let tokens: Vec<&str> = calls
            .iter()
            .filter(|(t, _, _)| *t == n)
            .map(|(_, token, _)| token.as_str())
            .collect();
        let switched = tokens
            .iter()
            .position(|t| *t == "tok-new")
            .unwrap_or(tokens.len());
        assert!(
            tokens[switched..].iter().all(|t| *t == "tok-new"),
            "thread {n} went back to the old token"
        );
    }
    wait_for(
        || provider.token().unwrap().secret() == "tok-new",
        "the new token",
    );
    assert_eq!(server.hits(), 2);
}

/// Polls `done` every 10 ms for at most 10 s; panics naming `what` if it
/// never holds. For results that arrive from the refresh thread.
fn wait_for(done: impl Fn() -> bool, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < until, "{what} never came");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn callers_without_a_token_wait_for_one_exchange() {
    let server = FakeIms::start(vec![oauth_reply("tok-slow", 86_399).after_ms(100)]);
    let provider = oauth_provider(&server, 0);
    let tokens = on_threads(|| provider.token().map(|t| t.secret().to_owned()));
    for token in tokens {
        assert_eq!(token.unwrap(), "tok-slow");
    }
    assert_eq!(server.hits(), 1);
}

#[test]
fn a_failed_refresh_reaches_every_waiter_once() {
    // One retry cycle (3 attempts) for all 8 callers; each gets its error,
    // that of the last reply.
    let server = FakeIms::start(vec![
        Reply::ims_error(503, "temporarily_unavailable", "one").after_ms(300),
        Reply::ims_error(503, "temporarily_unavailable", "two"),
        Reply::ims_error(503, "temporarily_unavailable", "three"),
    ]);
    let provider = oauth_provider(&server, 2);
    let results = on_threads(|| provider.token());
    for result in results {
        let e = result.unwrap_err();
        let Error::Unavailable(ims) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(ims.description.as_deref(), Some("three"), "{e}");
    }
    assert_eq!(server.hits(), 3, "more than one retry cycle");
}

#[test]
fn a_storm_of_401s_for_one_token_costs_one_exchange() {
    let server = FakeIms::start(vec![
        oauth_reply("tok-refused", 86_399),
        oauth_reply("tok-second", 86_399).after_ms(100),
    ]);
    let provider = oauth_provider(&server, 0);
    let refused = provider.token().unwrap();
    assert_eq!(refused.secret(), "tok-refused");
    // Every thread got 401 for `refused`: it drops it and asks again.
    let tokens = on_threads(|| {
        provider.invalidate(&refused);
        provider.token().map(|t| t.secret().to_owned())
    });
    for token in tokens {
        assert_eq!(token.unwrap(), "tok-second");
    }
    assert_eq!(server.hits(), 2);
    // A late 401 for the old token leaves the new one in place.
    provider.invalidate(&refused);
    assert_eq!(provider.token().unwrap().secret(), "tok-second");
    assert_eq!(server.hits(), 2);
}

#[test]
fn invalidating_the_current_token_gets_a_new_one() {
    let server = FakeIms::start(vec![
        oauth_reply("tok-one", 86_399),
        oauth_reply("tok-two", 86_399),
    ]);
    let provider = oauth_provider(&server, 0);
    let first = provider.token().unwrap();
    // A token with the same expiry but another value is not the cached one.
    let other = AccessToken::new(
        "tok-other",
        "bearer",
        first.received_at(),
        first.expires_at(),
    );
    provider.invalidate(&other);
    assert_eq!(provider.token().unwrap().secret(), "tok-one");
    provider.invalidate(&first);
    assert_eq!(provider.token().unwrap().secret(), "tok-two");
    assert_eq!(server.hits(), 2);
}

#[test]
fn callers_keep_the_token_and_do_not_retry_during_the_pause() {
    // 100 threads at once after a failed refresh: the unexpired token for
    // all, and no request to IMS during the 30 s pause. The refresh is due
    // as above.
    let server = FakeIms::start(vec![
        oauth_reply("tok-kept", 100),
        Reply::ims_error(500, "server_error", "down"),
    ]);
    let clock = TestClock::default();
    let provider = oauth_provider(&server, 0).with_clock(clock.reader());
    provider.token().unwrap();
    clock.advance(Duration::from_secs(80));
    assert_eq!(provider.token().unwrap().secret(), "tok-kept");
    wait_for(|| server.hits() == 2, "the refresh");
    thread::scope(|s| {
        let handles: Vec<_> = (0..100).map(|_| s.spawn(|| provider.token())).collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap().secret(), "tok-kept");
        }
    });
    assert_eq!(server.hits(), 2);
}

#[test]
fn errors_are_clone_and_keep_their_cause() {
    let server = FakeIms::start(vec![]);
    drop(server);
    let client = Client::builder()
        .proxy(None)
        .retries(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let credentials = Credentials::from_file(fixture_path("oauth-credentials.sample.json"))
        .unwrap()
        .with_ims(&format!("http://127.0.0.1:{}", common::closed_port()))
        .unwrap();
    let e = client.fetch(&credentials).unwrap_err();
    let copy = e.clone();
    assert_eq!(copy.to_string(), e.to_string());
    assert_eq!(common::error_texts(&copy), common::error_texts(&e));
    assert!(copy.is_retryable());
}

#[test]
fn a_token_from_the_future_of_the_providers_clock_is_not_handed_out_while_refreshing() {
    // The token was fetched while this host's clock was 3 days ahead; then
    // NTP set it right. The token claims 3 days more than IMS granted, so it
    // is no token at all: the provider must not hand it out, not even as the
    // cached token while it refreshes behind.
    let server = FakeIms::start(vec![
        oauth_reply("tok-ahead", 86_399),
        oauth_reply("tok-now", 86_399),
    ]);
    let stepped_back = Arc::new(AtomicBool::new(false));
    let clock = Arc::clone(&stepped_back);
    let provider = oauth_provider(&server, 0).with_clock(move || {
        let now = SystemTime::now();
        if clock.load(Ordering::SeqCst) {
            now - Duration::from_secs(3 * 86_400)
        } else {
            now
        }
    });
    assert_eq!(provider.token().unwrap().secret(), "tok-ahead");
    stepped_back.store(true, Ordering::SeqCst);
    assert_eq!(provider.token().unwrap().secret(), "tok-now");
    assert_eq!(server.hits(), 2);
}
