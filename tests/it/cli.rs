//! The `ims-token` command end to end, as a shell script sees it: exit codes,
//! stdout, stderr, the credentials sources, the local development token,
//! certificate warnings, the `--cache` file (permissions, symlinks,
//! corruption, concurrency), HTTPS with `--ca-file`, and that no secret ever
//! reaches the terminal on failure.
//!
//! Every run talks only to 127.0.0.1 (the fake IMS in `common::fake_ims`, or a tiny
//! echoing server below) and is bounded: a run that takes longer than
//! [`RUN_LIMIT`] is killed and fails its test.

use crate::common;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::proxy::{LoggingProxy, Mode};
use common::run::{
    command as cmd, command_through, run, run_cmd, run_stdin, runs_at_once, start, Run, RUN_LIMIT,
    TOKEN_MARK,
};
use common::{
    civil_from_days, closed_port, collect, collected, days_from_civil, fixture_json, fixture_path,
    jwt_claims, now_secs, openssl_verifies, path_str, read_fixture, read_request, typed_response,
    unsigned_jwt, wait_bounded, FakeIms, JwtExpect, OAuthExpect, Reply, TempDir,
};
use serde_json::{json, Value};

/// The usage hint the command prints after a usage error (exit 2).
const USAGE_HINT: &str = "(see 'ims-token --help')";

/// The client secrets and JWTs the fake was sent.
fn sent_secrets(server: &FakeIms) -> Vec<String> {
    let mut out = Vec::new();
    for request in server.requests() {
        for field in ["client_secret", "jwt_token"] {
            if let Some(v) = request.form_value(field).filter(|v| !v.is_empty()) {
                out.push(v.to_owned());
            }
        }
        if let Some(jwt) = request.form_value("jwt_token") {
            // The signature alone is secret enough to matter.
            if let Some((_, sig)) = jwt.rsplit_once('.') {
                out.push(sig.to_owned());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Fixtures, temp dirs, fakes

fn service_path() -> String {
    path_str(&fixture_path("service-credentials.sample.json"))
}

fn oauth_path() -> String {
    path_str(&fixture_path("oauth-credentials.sample.json"))
}

fn service_json() -> Value {
    fixture_json("service-credentials.sample.json")
}

fn token_for(name: &str) -> String {
    format!("{TOKEN_MARK}-{name}-0123456789abcdef")
}

/// `n` distinct tokens, `{name}0` to `{name}<n-1>` (see [`token_for`]).
fn tokens_for(name: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| token_for(&format!("{name}{i}"))).collect()
}

/// A fake that accepts one JWT exchange per token, in order.
fn jwt_fake(tokens: &[impl AsRef<str>]) -> FakeIms {
    let tokens: Vec<String> = tokens.iter().map(|t| t.as_ref().to_owned()).collect();
    FakeIms::start_with(move |host| {
        tokens
            .iter()
            .map(|t| Reply::check_jwt(JwtExpect::sample(host), t))
            .collect()
    })
}

/// `--ims URL --timeout 3 --retries 0`.
fn net(url: &str) -> Vec<String> {
    ["--ims", url, "--timeout", "3", "--retries", "0"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Owned arguments as `&str`s for [`run`].
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// `args` then `net(url)`, as `&str`s for [`run`].
fn with_net<'a>(args: &[&'a str], net: &'a [String]) -> Vec<&'a str> {
    args.iter()
        .copied()
        .chain(net.iter().map(String::as_str))
        .collect()
}

// ---------------------------------------------------------------------------
// Time and JWT helpers (independent of the crate)

/// Seconds since the epoch of exactly `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_utc(text: &str) -> i64 {
    let b = text.as_bytes();
    assert!(
        b.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[19] == b'Z',
        "not YYYY-MM-DDTHH:MM:SSZ: {text:?}"
    );
    assert!(b[13] == b':' && b[16] == b':', "not RFC 3339: {text:?}");
    let n = |r: std::ops::Range<usize>| -> i64 { text[r].parse().expect("digits") };
    days_from_civil(n(0..4), n(5..7), n(8..10)) * 86_400
        + n(11..13) * 3600
        + n(14..16) * 60
        + n(17..19)
}

/// `YYYY-MM-DDTHH:MM:SS.000Z` for `secs` (the `certificateExpirationDate` shape).
fn format_utc_millis(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn assert_near(what: &str, got: i64, want: i64, slack: i64) {
    assert!(
        (got - want).abs() <= slack,
        "{what}: got {got}, want {want} ± {slack}"
    );
}

#[test]
fn test_helpers_compute_dates_right() {
    assert_eq!(parse_utc("1970-01-01T00:00:00Z"), 0);
    assert_eq!(parse_utc("2000-03-01T00:00:00Z"), 951_868_800);
    assert_eq!(parse_utc("2023-11-14T22:13:20Z"), 1_700_000_000);
    assert_eq!(format_utc_millis(951_782_400), "2000-02-29T00:00:00.000Z");
    let now = now_secs();
    let text = format_utc_millis(now);
    assert_eq!(parse_utc(&format!("{}Z", &text[..19])), now);
}

// ---------------------------------------------------------------------------
// 1. token

#[test]
fn token_default_command_prints_the_exchanged_jwt_token() {
    let token = token_for("default");
    let server = jwt_fake(&[&token, &token, &token]);
    let net = net(&server.url());
    let creds = service_path();
    run(&with_net(&["-c", &creds], &net)).prints(&token);
    run(&with_net(&["token", "-c", &creds], &net)).prints(&token);
    run(&with_net(&["-c", &creds, "--lifetime", "120"], &net)).prints(&token);
    assert_eq!(server.hits(), 3);
    let requests = server.requests();
    assert_eq!(requests[0].path, "/ims/exchange/jwt");
    let exp = |i: usize| {
        let jwt = requests[i].form_value("jwt_token").expect("jwt_token sent");
        jwt_claims(jwt)["exp"].as_i64().expect("integer exp")
    };
    assert_near("default JWT lifetime", exp(0), now_secs() + 300, 5);
    assert_near("--lifetime 120", exp(2), now_secs() + 120, 5);
}

#[test]
fn token_with_oauth_credentials_prints_the_token() {
    let token = token_for("oauth");
    let server = FakeIms::start(vec![
        Reply::check_oauth(OAuthExpect::sample(), &token),
        Reply::check_oauth(OAuthExpect::sample(), &token),
    ]);
    let net = net(&server.url());
    let creds = oauth_path();
    run(&with_net(&["-c", &creds], &net)).prints(&token);
    // The command word may come after the options too.
    run(&with_net(&["-c", &creds, "token"], &net)).prints(&token);
    assert_eq!(server.hits(), 2);
    assert_eq!(server.requests()[0].path, "/ims/token/v3");
}

// ---------------------------------------------------------------------------
// 2. formats

#[test]
fn format_header_prints_an_authorization_header() {
    let token = token_for("header");
    let server = jwt_fake(&[&token]);
    let net = net(&server.url());
    let r = run(&with_net(
        &["-c", &service_path(), "--format", "header"],
        &net,
    ));
    r.prints(&format!("Authorization: Bearer {token}"));
    let oauth = FakeIms::start(vec![Reply::check_oauth(OAuthExpect::sample(), &token)]);
    let net = self::net(&oauth.url());
    let r = run(&with_net(&["-c", &oauth_path(), "--format=header"], &net));
    r.prints(&format!("Authorization: Bearer {token}"));
}

/// Checks `--format json` output; returns expires_in.
fn check_json_output(r: &Run, token: &str) -> i64 {
    let stdout = r.ok();
    assert_eq!(r.stderr, "");
    assert!(
        stdout.ends_with('\n') && stdout.lines().count() == 1,
        "{r:#?}"
    );
    let json: Value = serde_json::from_str(stdout).expect("stdout is JSON");
    assert_eq!(json["access_token"], token);
    assert_eq!(json["token_type"], "bearer");
    let expires_in = json["expires_in"].as_i64().expect("expires_in integer");
    let expires_at = parse_utc(json["expires_at"].as_str().expect("expires_at string"));
    assert_near("expires_at", expires_at, now_secs() + expires_in, 5);
    expires_in
}

#[test]
fn format_json_reports_seconds_for_both_flows() {
    let token = token_for("json");
    let server = jwt_fake(&[&token]);
    let net = net(&server.url());
    let r = run(&with_net(
        &["-c", &service_path(), "--format", "json"],
        &net,
    ));
    // IMS's JWT reply says 86399999 milliseconds.
    let expires_in = check_json_output(&r, &token);
    assert!((86_390..=86_400).contains(&expires_in), "{expires_in}");

    let oauth = FakeIms::start(vec![Reply::check_oauth(OAuthExpect::sample(), &token)]);
    let net = self::net(&oauth.url());
    let r = run(&with_net(&["-c", &oauth_path(), "--format", "json"], &net));
    // The OAuth reply says 86399 seconds.
    let expires_in = check_json_output(&r, &token);
    assert!((86_390..=86_400).contains(&expires_in), "{expires_in}");
}

// ---------------------------------------------------------------------------
// 3. jwt

#[test]
fn jwt_prints_a_signed_jwt_with_the_claims_and_uses_no_network() {
    let dir = TempDir::new("jwt");
    let port = closed_port();
    let ims = format!("http://127.0.0.1:{port}");
    let r = run(&["jwt", "-c", &service_path(), "--ims", &ims]);
    let stdout = r.ok();
    assert_eq!(r.stderr, "");
    assert!(
        stdout.ends_with('\n') && stdout.lines().count() == 1,
        "{r:#?}"
    );
    let jwt = stdout.trim_end();
    let segments: Vec<&str> = jwt.split('.').collect();
    assert_eq!(segments.len(), 3);
    for s in &segments {
        assert!(!s.is_empty());
        assert!(s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
    assert!(
        openssl_verifies(dir.path(), jwt),
        "openssl rejects the signature"
    );
    // The verifier is not a rubber stamp.
    let forged = format!("{}.{}x.{}", segments[0], segments[1], segments[2]);
    assert!(!openssl_verifies(dir.path(), &forged));

    let expect = JwtExpect::sample(&ims);
    let claims = jwt_claims(jwt);
    assert_eq!(claims["iss"], expect.org.as_str());
    assert_eq!(claims["sub"], expect.sub.as_str());
    // Built on the endpoint as given, scheme included.
    let aud = format!("http://127.0.0.1:{port}/c/{}", expect.client_id);
    assert_eq!(claims["aud"], aud.as_str());
    let scope = format!("http://127.0.0.1:{port}/s/ent_aem_cloud_api");
    assert_eq!(claims[scope.as_str()], true);
    assert_near("exp", claims["exp"].as_i64().unwrap(), now_secs() + 300, 5);

    // Without --ims: the credentials' endpoint.
    let r = run(&["jwt", "-c", &service_path(), "--lifetime", "60"]);
    let claims = jwt_claims(r.ok().trim_end());
    let aud = format!("https://ims-na1.adobelogin.com/c/{}", expect.client_id);
    assert_eq!(claims["aud"], aud.as_str());
    assert_near(
        "exp with --lifetime 60",
        claims["exp"].as_i64().unwrap(),
        now_secs() + 60,
        5,
    );
}

#[test]
fn jwt_with_oauth_credentials_is_a_config_error() {
    let message = run(&["jwt", "-c", &oauth_path()]).fails(3);
    assert!(message.contains("JWT"), "{message}");
}

#[test]
fn jwt_lifetime_over_a_day_or_zero_is_refused() {
    let port = closed_port().to_string();
    let ims = format!("http://127.0.0.1:{port}");
    for lifetime in ["90000", "86401", "0"] {
        // A usage error, found when the command line is read.
        let m = run(&["jwt", "-c", &service_path(), "--lifetime", lifetime]).fails(2);
        assert!(m.contains("--lifetime") && m.contains("86400"), "{m}");
        // Also for token, before any network use (the port is closed: a
        // network attempt would be exit 5).
        let m = run(&["-c", &service_path(), "--lifetime", lifetime, "--ims", &ims]).fails(2);
        assert!(m.contains("--lifetime"), "{m}");
    }
    let r = run(&["jwt", "-c", &service_path(), "--lifetime", "86400"]);
    let claims = jwt_claims(r.ok().trim_end());
    assert_near(
        "exp",
        claims["exp"].as_i64().unwrap(),
        now_secs() + 86_400,
        5,
    );
    let m = run(&["jwt", "-c", &service_path(), "--lifetime", "soon"]).fails(2);
    assert!(m.contains("--lifetime"), "{m}");
}

// ---------------------------------------------------------------------------
// 4. inspect

#[test]
fn inspect_shows_the_service_account_without_secrets() {
    let r = run(&["inspect", "-c", &service_path()]);
    let out = r.ok().to_owned();
    assert_eq!(r.stderr, "");
    let e = JwtExpect::sample("x");
    for want in [
        e.org.as_str(),
        e.sub.as_str(),
        e.client_id.as_str(),
        "ent_aem_cloud_api",
        "RSA 2048 bits",
        "ims-na1.adobelogin.com",
    ] {
        assert!(out.contains(want), "inspect lacks {want:?}:\n{out}");
    }
    let cert = out
        .lines()
        .find(|l| l.starts_with("certificate expires: "))
        .unwrap_or_else(|| panic!("no certificate line:\n{out}"));
    // The fixture certificate's notAfter, with the days left.
    assert!(cert.contains("days left)"), "{cert}");
    let date = &cert["certificate expires: ".len()..][..20];
    let days = (parse_utc(date) - now_secs()) / 86_400;
    // (days + 1 if a day boundary passed between the run and now)
    let shown = [days, days + 1].map(|d| format!("({d} days left)"));
    assert!(shown.iter().any(|s| cert.contains(s.as_str())), "{cert}");
    r.assert_no_secrets(&[]);
    assert!(!out.contains("PRIVATE KEY"), "{out}");
}

#[test]
fn inspect_lists_the_oauth_scopes() {
    let r = run(&["inspect", "-c", &oauth_path()]);
    let out = r.ok();
    let e = OAuthExpect::sample();
    assert!(out.contains(&e.client_id), "{out}");
    for scope in &e.scopes {
        assert!(out.contains(scope.as_str()), "lacks scope {scope}: {out}");
    }
    r.assert_no_secrets(&[]);
}

// ---------------------------------------------------------------------------
// 5. credentials sources

#[test]
fn credentials_from_stdin_and_from_ims_credentials() {
    let token = token_for("sources");
    let server = jwt_fake(&[&token, &token]);
    let net = net(&server.url());
    let text = read_fixture("service-credentials.sample.json");
    run_stdin(&with_net(&["-c", "-"], &net), &text).prints(&token);

    let mut c = cmd(&with_net(&[], &net));
    c.env("IMS_CREDENTIALS", service_path());
    run_cmd(c).prints(&token);
    assert_eq!(server.hits(), 2);

    let r = run_stdin(
        &["inspect", "-c", "-"],
        &read_fixture("oauth-credentials.sample.json"),
    );
    assert!(r.ok().contains("scopes: "), "{r:#?}");
}

#[test]
fn no_credentials_is_a_usage_error_naming_both_sources() {
    for empty_env in [false, true] {
        let mut c = cmd(&[]);
        if empty_env {
            c.env("IMS_CREDENTIALS", "");
        }
        let m = run_cmd(c).fails(2);
        assert!(m.contains("-c") && m.contains("IMS_CREDENTIALS"), "{m}");
    }
}

#[test]
fn unreadable_or_invalid_credentials_are_config_errors() {
    let dir = TempDir::new("badcreds");
    let missing = path_str(&dir.join("no-such-file.json"));
    let m = run(&["-c", &missing]).fails(3);
    assert!(m.contains(&missing), "{m}");
    let mut c = cmd(&[]);
    c.env("IMS_CREDENTIALS", &missing);
    let m = run_cmd(c).fails(3);
    assert!(m.contains(&missing), "{m}");

    let invalid = dir.file("invalid.json", "{\"ok\": true, ");
    let m = run(&["-c", &invalid]).fails(3);
    assert!(m.contains("JSON"), "{m}");
    let m = run_stdin(&["-c", "-"], "not json").fails(3);
    assert!(m.contains("stdin") && m.contains("JSON"), "{m}");

    let mut creds = service_json();
    creds["integration"].as_object_mut().unwrap().remove("org");
    let no_org = dir.json("no-org.json", &creds);
    for command in ["token", "jwt", "inspect"] {
        let m = run(&[command, "-c", &no_org]).fails(3);
        assert!(m.contains("integration.org"), "{m}");
    }
    // A directory is not a credentials file.
    let m = run(&["-c", &path_str(&dir.0)]).fails(3);
    assert!(m.contains("credentials"), "{m}");
}

// ---------------------------------------------------------------------------
// 6. exit codes

#[test]
fn ims_rejections_exit_4() {
    for status in [400, 401, 403] {
        let server = FakeIms::start(vec![Reply::ims_error(
            status,
            "invalid_client",
            "invalid client_id or client_secret",
        )]);
        let net = net(&server.url());
        let r = run(&with_net(&["-c", &service_path(), "--retries", "2"], &net));
        let m = r.fails(4);
        assert!(
            m.contains(&status.to_string()) && m.contains("invalid_client"),
            "{m}"
        );
        assert!(m.contains("fake-ims-debug-id"), "x-debug-id kept: {m}");
        assert_eq!(server.hits(), 1, "a rejection is not retried");
        r.assert_no_secrets(&sent_secrets(&server));
    }
    // A real judgement: the fake expects another secret.
    let server = FakeIms::start_with(|host| {
        let mut expect = JwtExpect::sample(host);
        expect.client_secret = "another-secret".into();
        vec![Reply::check_jwt(expect, &token_for("never"))]
    });
    let net = net(&server.url());
    let r = run(&with_net(&["-c", &service_path(), "--retries", "2"], &net));
    let m = r.fails(4);
    assert!(m.contains("401") && m.contains("invalid_client"), "{m}");
    assert_eq!(server.hits(), 1);
    r.assert_no_secrets(&sent_secrets(&server));
}

#[test]
fn ims_unavailable_exits_5() {
    for (status, code) in [
        (500, "server_error"),
        (503, "unavailable"),
        (429, "too_many"),
    ] {
        let server = FakeIms::start(vec![Reply::ims_error(status, code, "try later")]);
        let net = net(&server.url());
        let r = run(&with_net(&["-c", &service_path()], &net));
        let m = r.fails(5);
        assert!(m.contains(&status.to_string()), "{m}");
        assert_eq!(server.hits(), 1, "--retries 0 is one attempt");
        r.assert_no_secrets(&sent_secrets(&server));
    }
}

#[test]
fn retries_recover_from_a_500() {
    let token = token_for("retry");
    let server = FakeIms::start_with(|host| {
        vec![
            Reply::ims_error(500, "server_error", "hiccup"),
            Reply::check_jwt(JwtExpect::sample(host), &token),
        ]
    });
    let r = run(&[
        "-c",
        &service_path(),
        "--ims",
        &server.url(),
        "--timeout",
        "3",
        "--retries",
        "1",
    ]);
    r.prints(&token);
    assert_eq!(server.hits(), 2);
}

#[test]
fn a_silent_server_times_out_with_exit_5() {
    let server = FakeIms::start(vec![Reply::Silent { for_ms: 10_000 }]);
    let r = run(&[
        "-c",
        &service_path(),
        "--ims",
        &server.url(),
        "--timeout",
        "0.1",
        "--retries",
        "0",
    ]);
    let m = r.fails(5);
    assert!(r.elapsed < Duration::from_secs(5), "took {:?}", r.elapsed);
    assert!(
        m.contains("in time") || m.contains("timed out") || m.contains("timeout"),
        "{m}"
    );
    r.assert_no_secrets(&sent_secrets(&server));
}

#[test]
fn connection_refused_exits_5_with_a_one_line_cause_chain() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let r = run(&with_net(&["-c", &service_path()], &net(&url)));
    let m = r.fails(5);
    assert!(m.starts_with("ims-token: cannot reach IMS at "), "{m}");
    assert!(m.contains(&url), "{m}");
    // The cause chain is joined on the same line.
    assert!(m.matches(": ").count() >= 2, "no cause chain: {m}");
    assert!(
        m.to_lowercase().contains("refused"),
        "the OS reason is kept: {m}"
    );
    assert!(r.elapsed < Duration::from_secs(5));
}

#[test]
fn a_200_that_is_not_json_exits_1() {
    let body = "<html>tok-SECRET-in-html</html>";
    let raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let server = FakeIms::start(vec![Reply::Raw(raw.into_bytes())]);
    let net = net(&server.url());
    let r = run(&with_net(&["-c", &service_path()], &net));
    let m = r.fails(1);
    assert!(m.contains("not JSON"), "{m}");
    r.assert_no_secrets(&sent_secrets(&server));

    // A 200 JSON without a token.
    let server = FakeIms::start(vec![Reply::json(200, r#"{"token_type":"bearer"}"#)]);
    let net = self::net(&server.url());
    let m = run(&with_net(&["-c", &service_path()], &net)).fails(1);
    assert!(m.contains("access_token"), "{m}");
}

#[test]
fn usage_errors_exit_2() {
    let creds = service_path();
    for args in [
        vec!["--bogus"],
        vec!["-c", &creds, "--format", "xml"],
        vec!["-c", &creds, "--format"],
        vec!["-c", &creds, "--timeout", "-1"],
        vec!["-c", &creds, "--timeout", "0"],
        vec!["-c", &creds, "--connect-timeout", "0"],
        vec!["-c", &creds, "--retries", "many"],
        vec!["-c", &creds, "extra"],
        vec!["jwt", "inspect", "-c", &creds],
        vec!["-x"],
    ] {
        let r = run(&args);
        let m = r.fails(2);
        assert!(m.starts_with("ims-token: "), "{m}");
        assert!(m.ends_with(USAGE_HINT), "{r:#?}");
    }
    let m = run(&["-c", &creds, "--format", "xml"]).fails(2);
    assert!(m.contains("--format") && m.contains("xml"), "{m}");
    let m = run(&["--bogus"]).fails(2);
    assert!(m.contains("--bogus"), "{m}");
}

#[test]
fn usage_error_is_a_single_prefixed_line() {
    let r = run(&["--bogus"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");
}

/// `--ims` and `--scope` are checked when the command line is read, as
/// every other option value: exit 2 naming the option, before the
/// credentials (here a file that does not exist) or the cache are read.
#[test]
fn a_bad_ims_or_scope_is_a_usage_error_before_any_file_is_read() {
    let dir = TempDir::new("badoption");
    let missing = path_str(&dir.join("no-such-credentials.json"));
    let cache = dir.join("token.cache");
    for creds in [service_path(), missing.clone()] {
        for (ims, says) in [
            ("http://example.com", "plain http"),
            ("http://10.0.0.1:8080", "plain http"),
            ("ftp://127.0.0.1", "use https"),
            ("ftp://x", "use https"),
            ("https://h/path", "IMS endpoint"),
            ("", "empty"),
        ] {
            let args = ["-c", &creds, "--ims", ims, "--cache", &path_str(&cache)];
            let m = run(&args).fails_alone(2);
            assert!(m.starts_with("ims-token: --ims: "), "{ims}: {m}");
            assert!(m.contains(says) && m.ends_with(USAGE_HINT), "{ims}: {m}");
        }
        for scope in [",", " , ,", ""] {
            let m = run(&["-c", &creds, "--scope", scope]).fails_alone(2);
            assert!(m.contains("--scope needs at least one scope"), "{m}");
        }
        let m = run(&["-c", &creds, "--credential", ""]).fails_alone(2);
        assert!(m.contains("--credential needs a non-empty value"), "{m}");
    }
    assert!(!cache.exists() && !lock_path(&cache).exists());
    // A loopback http endpoint and a list with a blank entry are fine.
    let token = token_for("scopes");
    let server = FakeIms::start_with(|host| {
        let mut expect = JwtExpect::sample(host);
        expect.metascopes = vec!["ent_a".into(), "ent_b".into()];
        vec![Reply::check_jwt(expect, &token)]
    });
    let net = net(&server.url());
    let creds = service_path();
    let args = with_net(&["-c", &creds, "--scope", " ent_a, ,ent_b,"], &net);
    run(&args).prints(&token);
}

// ---------------------------------------------------------------------------
// 7. diagnostics, help, version, output errors

#[test]
fn help_lists_exit_codes_and_options_on_stdout() {
    let flags = crate::cli_generate::documented_flags();
    for flag in ["--help", "-h", "help"] {
        let r = run(&[flag]);
        let out = r.ok();
        assert_eq!(r.stderr, "");
        assert!(out.contains("EXIT CODES"), "{out}");
        for code in 0..=5 {
            assert!(
                out.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code} "))),
                "exit code {code} missing:\n{out}"
            );
        }
        // Every flag of the man page (made from the same table).
        for flag in &flags {
            for name in &flag.names {
                assert!(out.contains(name.as_str()), "{name} missing:\n{out}");
            }
        }
    }
    // Help wins over a command and needs no credentials.
    run(&["jwt", "--help"]).ok();
}

#[test]
fn version_prints_name_and_version() {
    for flag in ["-V", "--version"] {
        run(&[flag]).prints(&format!("ims-token {}", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn an_output_error_exits_1() {
    let Ok(full) = fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // no /dev/full here
    };
    let mut c = cmd(&["jwt", "-c", &service_path()]);
    c.stdout(full);
    let r = run_cmd(c);
    let m = r.fails(1);
    assert!(m.contains("cannot write the output"), "{m}");
}

// ---------------------------------------------------------------------------
// 8. secrets in replies that echo the request

/// A one-shot HTTP server that answers with `respond(request body)`.
struct EchoServer {
    url: String,
    body: Arc<Mutex<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    fn start(respond: impl FnOnce(&[u8]) -> Vec<u8> + Send + 'static) -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let body = Arc::new(Mutex::new(Vec::new()));
        let seen = body.clone();
        let thread = thread::spawn(move || {
            let Ok((mut tcp, _)) = listener.accept() else {
                return;
            };
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let Ok(request) = read_request(&mut tcp) else {
                return;
            };
            let request_body = request.body;
            *seen.lock().unwrap() = request_body.clone();
            let _ = tcp.write_all(&respond(&request_body));
        });
        EchoServer {
            url,
            body,
            thread: Some(thread),
        }
    }

    /// Joins the server and returns the request body it got.
    fn finish(mut self) -> String {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let body = self.body.lock().unwrap().clone();
        String::from_utf8(body).unwrap()
    }
}

/// The secrets in a form-urlencoded request body, raw and encoded.
fn form_secrets(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for pair in body.split('&') {
        if let Some((name, value)) = pair.split_once('=') {
            if name == "client_secret" || name == "jwt_token" {
                out.push(value.to_owned());
                out.push(common::parse_form(pair.as_bytes())[0].1.clone());
            }
        }
    }
    assert!(!out.is_empty(), "no secret in the body {body:?}");
    out
}

type Responder = fn(&[u8]) -> Vec<u8>;

fn echo_responders() -> Vec<(&'static str, i32, Responder)> {
    vec![
        ("400 text body", 4, |b| {
            typed_response(400, "text/plain", b, &[])
        }),
        ("500 text body", 5, |b| {
            typed_response(500, "text/plain", b, &[])
        }),
        ("400 json description", 4, |b| {
            let body = json!({"error": "invalid_request",
                "error_description": String::from_utf8_lossy(b)});
            typed_response(400, "application/json", body.to_string().as_bytes(), &[])
        }),
        ("500 json description", 5, |b| {
            let body = json!({"error": String::from_utf8_lossy(b)});
            typed_response(500, "application/json", body.to_string().as_bytes(), &[])
        }),
        ("400 debug id", 4, |b| {
            let debug_id = String::from_utf8_lossy(b);
            typed_response(400, "application/json", b"{}", &[("x-debug-id", &debug_id)])
        }),
        ("302 location", 1, |b| {
            let location = format!("https://elsewhere/?{}", String::from_utf8_lossy(b));
            typed_response(302, "text/plain", b"", &[("Location", &location)])
        }),
        ("418 odd status", 4, |b| {
            typed_response(418, "text/plain", b, &[])
        }),
        ("600 odd status", 1, |b| {
            typed_response(600, "text/plain", b, &[])
        }),
    ]
}

fn echo_check(creds: &str, what: &str, code: i32, respond: Responder) {
    let server = EchoServer::start(respond);
    let net = net(&server.url);
    let r = run(&with_net(&["-c", creds], &net));
    let body = server.finish();
    assert_eq!(r.code, code, "{what}: {r:#?}");
    r.fails(code);
    let secrets = form_secrets(&body);
    r.assert_no_secrets(&secrets);
}

#[test]
fn replies_echoing_the_request_never_show_secrets() {
    for (what, code, respond) in echo_responders() {
        echo_check(&service_path(), what, code, respond);
        echo_check(&oauth_path(), what, code, respond);
    }
}

#[test]
fn an_echoed_percent_encoded_secret_is_scrubbed_too() {
    let dir = TempDir::new("encsecret");
    let mut creds = service_json();
    creds["integration"]["technicalAccount"]["clientSecret"] = "p8e-a+b/c=d e&f-SECRET".into();
    let path = dir.json("creds.json", &creds);
    let mut oauth = fixture_json("oauth-credentials.sample.json");
    oauth["integration"]["technicalAccount"]["clientSecret"] = "p8e-a+b/c=d e&f-SECRET".into();
    let oauth_path = dir.json("oauth.json", &oauth);
    for (what, code, respond) in echo_responders() {
        for creds in [&path, &oauth_path] {
            let server = EchoServer::start(respond);
            let net = net(&server.url);
            let r = run(&with_net(&["-c", creds], &net));
            let body = server.finish();
            assert_eq!(r.code, code, "{what}: {r:#?}");
            let mut secrets = form_secrets(&body);
            secrets.push("p8e-a+b/c=d e&f-SECRET".into());
            // Also the distinctive part of the encoded secret.
            secrets.push("c%3Dd".into());
            r.assert_no_secrets(&secrets);
        }
    }
}

#[test]
fn ims_error_text_quoting_the_secret_is_scrubbed() {
    // IMS only ever sees the client secret and the JWT (never the key).
    let secret = JwtExpect::sample("x").client_secret;
    let description = format!("client_secret {secret} is wrong");
    let server = FakeIms::start(vec![
        Reply::ims_error(400, "invalid_client", &description),
        Reply::ims_error(500, &secret, &description).with_header("x-debug-id", &secret),
    ]);
    let net = net(&server.url());
    for code in [4, 5] {
        let r = run(&with_net(&["-c", &service_path()], &net));
        r.fails(code);
        r.assert_no_secrets(&sent_secrets(&server));
    }
}

// ---------------------------------------------------------------------------
// 9. local development token

fn local_token(created_ms: i64, expires_in_ms: i64) -> String {
    let header =
        r#"{"alg":"RS256","x5u":"ims_na1-key-at-1.cer","kid":"ims_na1-key-at-1","itt":"at"}"#;
    let claims = json!({
        "id": "1700000000000_local",
        "type": "access_token",
        "client_id": "dev-console-prod",
        "user_id": "ABCDEF@AdobeID",
        "as": "ims-na1",
        "expires_in": expires_in_ms.to_string(),
        "scope": "AdobeID,openid,read_organizations",
        "created_at": created_ms.to_string(),
    });
    unsigned_jwt(header, &claims, &format!("{TOKEN_MARK}-local-signature"))
}

#[test]
fn a_local_development_token_is_printed_as_it_is() {
    let dir = TempDir::new("local");
    let now_ms = now_secs() * 1000;
    let token = local_token(now_ms - 3_600_000, 86_400_000);
    let file = dir.json(
        "local.json",
        &json!({"ok": true, "statusCode": 200, "accessToken": token}),
    );
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let r = run(&with_net(&["-c", &file], &net(&closed)));
    r.prints(&token);
    let r = run(&["-c", &file, "--format", "json", "--ims", &closed]);
    let expires_in = check_json_output(&r, &token);
    assert_near("expires_in", expires_in, 23 * 3600, 5);
    let r = run(&["inspect", "-c", &file]);
    assert!(r.ok().contains("local development"), "{r:#?}");
    r.assert_no_secrets(&[]);
}

#[test]
fn an_expired_local_development_token_exits_3() {
    let dir = TempDir::new("localexp");
    let now_ms = now_secs() * 1000;
    let token = local_token(now_ms - 2 * 86_400_000, 86_400_000);
    let file = dir.json(
        "local.json",
        &json!({"ok": true, "statusCode": 200, "accessToken": token}),
    );
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let m = run(&with_net(&["-c", &file], &net(&closed))).fails(3);
    assert!(
        m.contains("expired") && m.contains("download a new one"),
        "{m}"
    );
}

// ---------------------------------------------------------------------------
// 10. certificate warnings

fn creds_with_cert_expiry(dir: &TempDir, expiry_secs: i64) -> String {
    let mut creds = service_json();
    let integration = creds["integration"].as_object_mut().unwrap();
    integration.remove("publicKey");
    integration.insert(
        "certificateExpirationDate".into(),
        format_utc_millis(expiry_secs).into(),
    );
    dir.json(&format!("creds-{expiry_secs}.json"), &creds)
}

#[test]
fn a_certificate_expiring_soon_is_warned_about() {
    let dir = TempDir::new("certsoon");
    let path = creds_with_cert_expiry(&dir, now_secs() + 10 * 86_400 + 3600);
    let r = run(&["jwt", "-c", &path]);
    let jwt = r.ok().trim_end().to_owned();
    assert_eq!(jwt.split('.').count(), 3);
    let warning = r.stderr.trim_end();
    assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");
    assert!(warning.starts_with("ims-token: warning: "), "{warning}");
    assert!(
        warning.contains("expires") && warning.contains("10 days left"),
        "{warning}"
    );

    // The token still comes, alone on stdout.
    let token = token_for("certsoon");
    let server = jwt_fake(&[&token]);
    let r = run(&with_net(&["-c", &path], &net(&server.url())));
    assert_eq!(r.ok(), format!("{token}\n"));
    assert!(r.stderr.contains("days left"), "{r:#?}");
    // inspect shows it too.
    let r = run(&["inspect", "-c", &path]);
    assert!(r.ok().contains("(10 days left)"), "{r:#?}");
}

#[test]
fn an_expired_certificate_is_warned_about_but_jwt_still_works() {
    let dir = TempDir::new("certpast");
    let path = creds_with_cert_expiry(&dir, now_secs() - 3 * 86_400);
    let r = run(&["jwt", "-c", &path]);
    assert_eq!(r.ok().trim_end().split('.').count(), 3);
    assert!(
        r.stderr.starts_with("ims-token: warning: ") && r.stderr.contains("expired"),
        "{r:#?}"
    );
    let r = run(&["inspect", "-c", &path]);
    assert!(r.ok().contains("(expired)"), "{r:#?}");
}

/// A certificate made now with `openssl req -x509 -days 10` from the sample
/// key: the warning follows its notAfter, not the file's far
/// `certificateExpirationDate`.
#[test]
fn a_certificate_whose_not_after_is_near_is_warned_about() {
    let dir = TempDir::new("certnotafter");
    let cert = dir.join("cert.pem");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-new", "-days", "10", "-sha256"])
        .args(["-subj", "/CN=cm-p12345-e67890-integration-1", "-key"])
        .arg(fixture_path("sample-key.pkcs1.pem"))
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `openssl` ({e}); it makes the certificate"));
    assert!(made.status.success(), "{made:?}");
    let mut creds = service_json();
    creds["integration"]["publicKey"] = fs::read_to_string(&cert).unwrap().into();
    let path = dir.json("creds.json", &creds);
    let r = run(&["jwt", "-c", &path]);
    assert_eq!(r.ok().trim_end().split('.').count(), 3);
    // Ten days less the seconds since openssl ran.
    assert!(
        r.stderr.starts_with("ims-token: warning: ") && r.stderr.contains("9 days left"),
        "{r:#?}"
    );
}

#[test]
fn a_far_certificate_expiry_gives_no_warning() {
    let dir = TempDir::new("certfar");
    let path = creds_with_cert_expiry(&dir, now_secs() + 200 * 86_400);
    let r = run(&["jwt", "-c", &path]);
    r.ok();
    assert_eq!(r.stderr, "");
}

// ---------------------------------------------------------------------------
// 11. the cache

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn read_cache(path: &Path) -> Value {
    let text = fs::read_to_string(path).expect("cache file");
    serde_json::from_str(&text).expect("cache is JSON")
}

/// The `key` of the entry in the cache file at `path`.
fn cache_key(path: &Path) -> String {
    read_cache(path)["key"].as_str().unwrap().to_owned()
}

/// `-c <service credentials> --cache <cache>` then `net(url)`.
fn cache_args(cache: &Path, url: &str) -> Vec<String> {
    let mut args = vec![
        "-c".to_owned(),
        service_path(),
        "--cache".into(),
        path_str(cache),
    ];
    args.extend(net(url));
    args
}

/// A cache test's start: a fake issuing `tokens` (`{name}0`, ...), the
/// arguments for `dir/token.cache`, one run that printed token 0 and
/// filled the cache, and the key of that cache entry.
struct FilledCache {
    tokens: Vec<String>,
    server: FakeIms,
    cache: PathBuf,
    args: Vec<String>,
    key: String,
}

fn filled_cache(dir: &TempDir, name: &str, tokens: usize) -> FilledCache {
    let tokens = tokens_for(name, tokens);
    let server = jwt_fake(&tokens);
    let cache = dir.join("token.cache");
    let args = cache_args(&cache, &server.url());
    run(&strs(&args)).prints(&tokens[0]);
    let key = cache_key(&cache);
    FilledCache {
        tokens,
        server,
        cache,
        args,
        key,
    }
}

/// Writes `text` at `path` with mode 0600.
fn write_private(path: &Path, text: &str) {
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The first bytes of every cache file the command writes.
const CACHE_MARKER: &str = r#"{"ims_token_cache":1,"#;

/// A cache entry in the command's format: the marker, then the fields.
fn cache_entry(key: &str, token: &str, received_at: i64, expires_at: i64) -> String {
    let fields = json!({
        "key": key,
        "access_token": token,
        "token_type": "bearer",
        "received_at": received_at,
        "expires_at": expires_at,
    })
    .to_string();
    format!("{CACHE_MARKER}{}", &fields[1..])
}

#[test]
fn cache_first_run_writes_a_private_file_and_the_second_reuses_it() {
    let dir = TempDir::new("cache1");
    let token = token_for("cache1");
    let server = jwt_fake(&[&token]);
    let cache = dir.join("token.cache");
    let args = |extra: &[&'static str]| {
        let mut a = cache_args(&cache, &server.url());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let first = args(&[]);
    let first = strs(&first);
    run(&first).prints(&token);
    assert_eq!(server.hits(), 1);
    assert_eq!(mode_of(&cache), 0o600);
    assert!(fs::read_to_string(&cache).unwrap().contains(&token));

    run(&first).prints(&token);
    let json_args = args(&["--format", "json"]);
    let json_args = strs(&json_args);
    let r = run(&json_args);
    let expires_in = check_json_output(&r, &token);
    assert!((86_380..=86_400).contains(&expires_in), "{expires_in}");
    assert_eq!(server.hits(), 1, "the cached token was reused");
    dir.assert_no_temp_files();
}

/// A cache hit skips the RSA precomputation but still reads the key's PEM,
/// base64, DER structure and size: a broken key is exit 3 at once, not at
/// the next refresh. A key whose numbers make no RSA key passes until a
/// JWT must be signed, which is exit 3 too.
#[test]
fn a_cache_hit_checks_the_key_structure_and_signing_checks_its_numbers() {
    let dir = TempDir::new("cachekey");
    let filled = filled_cache(&dir, "cachekey", 1);
    let with_key = |name: &str, pem: String| {
        let mut creds = service_json();
        creds["integration"]["privateKey"] = pem.into();
        dir.json(name, &creds)
    };
    let hit_args = |creds: &str| {
        let mut args = vec!["-c".to_owned(), creds.to_owned(), "--cache".into()];
        args.push(path_str(&filled.cache));
        args.extend(net(&filled.server.url()));
        args
    };

    let mut lines: Vec<String> = read_fixture("sample-key.pkcs1.pem")
        .lines()
        .map(str::to_owned)
        .collect();
    lines.remove(5); // valid base64, broken DER
    let broken = with_key("broken.json", lines.join("\n"));
    let m = run(&strs(&hit_args(&broken))).fails(3);
    assert!(m.contains("privateKey") && m.contains("malformed"), "{m}");

    let wrong = with_key(
        "wrong.json",
        common::sample_key_with_a_wrong_prime("sample-key.pkcs1.pem"),
    );
    run(&strs(&hit_args(&wrong))).prints(&filled.tokens[0]);
    assert_eq!(filled.server.hits(), 1, "a hit made no exchange");
    let m = run(&["jwt", "-c", &wrong]).fails(3);
    assert!(m.contains("malformed"), "{m}");
}

#[test]
fn cache_entries_near_or_past_expiry_are_refreshed() {
    let dir = TempDir::new("cachestale");
    let FilledCache {
        tokens,
        server,
        cache,
        args,
        key,
    } = filled_cache(&dir, "stale", 4);
    let args = strs(&args);
    let now = now_secs();

    // A hand-written fresh entry is used: the format below is right.
    let hand = token_for("handwritten");
    write_private(&cache, &cache_entry(&key, &hand, now - 80_000, now + 3600));
    run(&args).prints(&hand);
    assert_eq!(server.hits(), 1);

    // The same entry with --refresh-margin 7200: refreshed.
    let mut margin = args.clone();
    margin.extend(["--refresh-margin", "7200"]);
    run(&margin).prints(&tokens[1]);
    assert_eq!(server.hits(), 2);
    assert!(fs::read_to_string(&cache).unwrap().contains(&tokens[1]));

    // Expired: refreshed.
    write_private(&cache, &cache_entry(&key, &hand, now - 90_000, now - 10));
    run(&args).prints(&tokens[2]);
    assert_eq!(server.hits(), 3);

    // Within the default 10-minute margin: refreshed.
    write_private(&cache, &cache_entry(&key, &hand, now - 86_000, now + 300));
    run(&args).prints(&tokens[3]);
    assert_eq!(server.hits(), 4);
    assert_eq!(mode_of(&cache), 0o600);
    dir.assert_no_temp_files();
}

#[test]
fn cache_is_not_shared_between_credentials() {
    let dir = TempDir::new("cachekey");
    let (a, b, c) = (token_for("keyA"), token_for("keyB"), token_for("keyC"));
    let (a2, b2, c2) = (a.clone(), b.clone(), c.clone());
    let server = FakeIms::start_with(move |host| {
        let mut other = JwtExpect::sample(host);
        other.metascopes = vec!["other_scope".into()];
        vec![
            Reply::check_jwt(JwtExpect::sample(host), &a2),
            Reply::check_oauth(OAuthExpect::sample(), &b2),
            Reply::check_jwt(other, &c2),
        ]
    });
    let cache = path_str(&dir.join("shared.cache"));
    let net = net(&server.url());
    run(&with_net(&["-c", &service_path(), "--cache", &cache], &net)).prints(&a);
    // Each run that finds another credential set's token says they take
    // turns replacing each other, and what to do.
    let replacing = |r: &Run| {
        let warning = format!(
            "ims-token: warning: the cache {cache:?} holds the token of other credentials, \
             which this run replaces: credentials sharing one cache file replace each \
             other's token on every run (give --cache a directory: a file per credential set)\n"
        );
        assert_eq!(r.stderr, warning, "{r:#?}");
    };
    let r = run(&with_net(&["-c", &oauth_path(), "--cache", &cache], &net));
    assert_eq!(r.ok(), format!("{b}\n"));
    replacing(&r);
    let scoped = [
        "-c",
        &service_path(),
        "--cache",
        &cache,
        "--scope",
        "other_scope",
    ];
    let r = run(&with_net(&scoped, &net));
    assert_eq!(r.ok(), format!("{c}\n"));
    replacing(&r);
    assert_eq!(server.hits(), 3);
    // The last one is cached for its own credentials.
    run(&with_net(&scoped, &net)).prints(&c);
    assert_eq!(server.hits(), 3);
    dir.assert_no_temp_files();
}

/// The cache files in `dir`: name and mode, sorted (lock files left out).
fn cache_files(dir: &Path) -> Vec<(String, u32)> {
    let mut files: Vec<(String, u32)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|x| x != "lock"))
        .map(|p| {
            (
                p.file_name().unwrap().to_str().unwrap().to_owned(),
                mode_of(&p),
            )
        })
        .collect();
    files.sort();
    files
}

/// Two cron jobs with different credentials and one `--cache DIR`: a file
/// each, named by its credentials' key, so one exchange each and none on
/// the runs after (one cache file shared makes them exchange every run).
#[test]
fn two_credential_sets_sharing_a_cache_directory_make_one_exchange_each() {
    let dir = TempDir::new("cachedir");
    let (a, b) = (token_for("dirA"), token_for("dirB"));
    let (a2, b2) = (a.clone(), b.clone());
    let server = FakeIms::start_with(move |host| {
        vec![
            Reply::check_jwt(JwtExpect::sample(host), &a2),
            Reply::check_oauth(OAuthExpect::sample(), &b2),
        ]
    });
    let net = net(&server.url());
    let caches = dir.join("caches");
    fs::create_dir(&caches).unwrap();
    let caches_s = path_str(&caches);
    let (service_creds, oauth_creds) = (service_path(), oauth_path());
    let service = with_net(&["-c", &service_creds, "--cache", &caches_s], &net);
    let oauth = with_net(&["-c", &oauth_creds, "--cache", &caches_s], &net);
    run(&service).prints(&a);
    run(&oauth).prints(&b);
    assert_eq!(server.hits(), 2);
    for _ in 0..2 {
        run(&oauth).prints(&b);
        run(&service).prints(&a);
    }
    assert_eq!(server.hits(), 2, "the runs after made no exchange");

    // A file each, 0600, named by the key it holds.
    let files = cache_files(&caches);
    assert_eq!(files.len(), 2, "{files:?}");
    for (name, mode) in &files {
        assert_eq!(*mode, 0o600, "{name}");
        assert_eq!(name.len(), 64, "{name}");
        assert_eq!(cache_key(&caches.join(name)), *name);
    }
    let held: Vec<String> = files
        .iter()
        .map(|(name, _)| {
            read_cache(&caches.join(name))["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(held.contains(&a) && held.contains(&b), "{held:?}");
    dir.assert_no_temp_files();
}

/// `--cache DIR/` (a trailing slash) makes the directory when it is missing,
/// 0700 with its parents, as for `$XDG_CACHE_HOME/ims-token/`; the same path
/// without the slash, or a file's directory, is never made.
#[test]
fn a_cache_directory_named_with_a_slash_is_made_private() {
    let dir = TempDir::new("cachemkdir");
    let tokens = tokens_for("mkdir", 3);
    let server = jwt_fake(&tokens);
    let net = net(&server.url());
    let made = dir.join("home/.cache/ims-token");
    let with_slash = format!("{}/", path_str(&made));
    let creds = service_path();
    let args = with_net(&["-c", &creds, "--cache", &with_slash], &net);
    run(&args).prints(&tokens[0]);
    run(&args).prints(&tokens[0]);
    assert_eq!(server.hits(), 1);
    for made in [dir.join("home"), dir.join("home/.cache"), made.clone()] {
        assert_eq!(mode_of(&made), 0o700, "{made:?}");
    }
    assert_eq!(cache_files(&made).len(), 1);
    // Without the slash it names the cache file: its directory is not made.
    let file = path_str(&dir.join("other/token.cache"));
    let r = run(&with_net(&["-c", &service_path(), "--cache", &file], &net));
    assert_eq!(r.ok(), format!("{}\n", tokens[1]), "{r:#?}");
    assert!(r.stderr.contains("cannot write the cache"), "{r:#?}");
    assert!(!dir.join("other").exists());
    // A slash after a file: a warning, and the run goes on without the cache.
    let not_dir = format!("{}/", dir.file("plain", "keep me\n"));
    let r = run(&with_net(
        &["-c", &service_path(), "--cache", &not_dir],
        &net,
    ));
    assert_eq!(r.ok(), format!("{}\n", tokens[2]), "{r:#?}");
    assert_eq!(
        r.stderr,
        format!(
            "ims-token: warning: cannot use the cache directory {not_dir:?}: it is a file, \
             not a directory; the run goes on without the cache\n"
        )
    );
    assert_eq!(fs::read_to_string(dir.join("plain")).unwrap(), "keep me\n");
    assert_eq!(server.hits(), 3);
}

#[test]
fn corrupt_cache_files_are_ignored_and_replaced() {
    let dir = TempDir::new("cachecorrupt");
    let FilledCache {
        tokens,
        server,
        cache,
        args,
        key,
    } = filled_cache(&dir, "corrupt", 5);
    let args = strs(&args);
    let now = now_secs();
    let valid = cache_entry(&key, &token_for("cut"), now, now + 86_000);
    // Each is recognizably a cache of the command, so it is replaced;
    // other files are left alone (`files_that_are_not_a_cache_are_left_untouched`).
    let corruptions = [
        CACHE_MARKER[..9].to_owned(),
        valid[..valid.len() / 2].to_owned(),
        String::new(),
        cache_entry(&key, "", now, now + 86_000),
    ];
    for (i, text) in corruptions.iter().enumerate() {
        write_private(&cache, text);
        let r = run(&args);
        assert_eq!(
            r.ok(),
            format!("{}\n", tokens[i + 1]),
            "corruption {i}: {r:#?}"
        );
        let now_cached = read_cache(&cache);
        assert_eq!(now_cached["access_token"], tokens[i + 1].as_str());
        assert_eq!(mode_of(&cache), 0o600);
    }
    assert_eq!(server.hits(), 5);
    dir.assert_no_temp_files();
}

#[test]
fn a_group_readable_cache_is_ignored_with_a_warning_and_replaced() {
    let dir = TempDir::new("cachemode");
    let (a, b) = (token_for("modeA"), token_for("modeB"));
    let server = jwt_fake(&[&a, &b]);
    let cache = dir.join("token.cache");
    let cache_s = path_str(&cache);
    let net = net(&server.url());
    let creds = service_path();
    let args = with_net(&["-c", &creds, "--cache", &cache_s], &net);
    run(&args).prints(&a);
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(&args);
    assert_eq!(r.ok(), format!("{b}\n"), "{r:#?}");
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("cache"),
        "{r:#?}"
    );
    assert_eq!(mode_of(&cache), 0o600);
    assert!(fs::read_to_string(&cache).unwrap().contains(&b));
    assert_eq!(server.hits(), 2);
    dir.assert_no_temp_files();
}

#[test]
fn cache_symlinks_are_never_followed() {
    let dir = TempDir::new("cachelink");
    let tokens = tokens_for("link", 4);
    let server = jwt_fake(&tokens);
    let net = net(&server.url());
    let creds = service_path();

    // Learn the key, then plant a fresh, valid entry as the bait.
    let probe = path_str(&dir.join("probe.cache"));
    run(&with_net(&["-c", &creds, "--cache", &probe], &net)).prints(&tokens[0]);
    let key = cache_key(Path::new(&probe));
    let now = now_secs();
    let victim = dir.join("victim");
    let bait = cache_entry(&key, &token_for("victim"), now, now + 86_000);
    write_private(&victim, &bait);

    // The symlink is neither followed nor replaced: the run goes on
    // without the cache, with a warning.
    let cache = dir.join("token.cache");
    std::os::unix::fs::symlink(&victim, &cache).unwrap();
    let cache_s = path_str(&cache);
    let r = run(&with_net(&["-c", &creds, "--cache", &cache_s], &net));
    assert_eq!(r.ok(), format!("{}\n", tokens[1]), "{r:#?}");
    assert!(r.stderr.contains("symbolic link"), "{r:#?}");
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        bait,
        "written through"
    );
    assert_eq!(mode_of(&victim), 0o600);
    assert_eq!(
        fs::read_link(&cache).unwrap(),
        victim,
        "the link was replaced"
    );

    // A dangling symlink: its target is not created.
    let dangling = dir.join("dangling.cache");
    let target = dir.join("target-must-not-exist");
    std::os::unix::fs::symlink(&target, &dangling).unwrap();
    let dangling_s = path_str(&dangling);
    let r = run(&with_net(&["-c", &creds, "--cache", &dangling_s], &net));
    assert_eq!(r.ok(), format!("{}\n", tokens[2]), "{r:#?}");
    assert!(!target.exists(), "wrote through a dangling symlink");
    assert_eq!(fs::read_link(&dangling).unwrap(), target);

    // A symlink at FILE.lock: the run still works, the target is untouched.
    let locked = dir.join("locked.cache");
    let lock_victim = dir.join("lock-victim");
    fs::write(&lock_victim, "keep me\n").unwrap();
    let mut lock_path = locked.clone().into_os_string();
    lock_path.push(".lock");
    std::os::unix::fs::symlink(&lock_victim, &lock_path).unwrap();
    let locked_s = path_str(&locked);
    let r = run(&with_net(&["-c", &creds, "--cache", &locked_s], &net));
    assert_eq!(r.ok(), format!("{}\n", tokens[3]), "{r:#?}");
    assert_eq!(fs::read_to_string(&lock_victim).unwrap(), "keep me\n");

    assert_eq!(server.hits(), 4);
    dir.assert_no_temp_files();
}

#[test]
fn an_unwritable_cache_warns_but_prints_the_token() {
    let dir = TempDir::new("cachenodir");
    let token = token_for("nodir");
    let server = jwt_fake(&[&token]);
    let cache = path_str(&dir.join("no-such-dir").join("token.cache"));
    let net = net(&server.url());
    let r = run(&with_net(&["-c", &service_path(), "--cache", &cache], &net));
    assert_eq!(r.ok(), format!("{token}\n"), "{r:#?}");
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("cache"),
        "{r:#?}"
    );
    assert!(!r.stderr.contains(TOKEN_MARK), "{r:#?}");
}

// ---------------------------------------------------------------------------
// 12. concurrency

#[test]
fn twenty_concurrent_runs_share_one_exchange() {
    let dir = TempDir::new("cacheconc");
    let token = token_for("concurrent");
    let server = jwt_fake(&[&token]);
    let cache = path_str(&dir.join("token.cache"));
    let net = net(&server.url());
    let creds = service_path();
    let args = with_net(&["-c", &creds, "--cache", &cache], &net);
    let runs = runs_at_once(&args, 20);
    for r in &runs {
        r.prints(&token);
    }
    assert_eq!(server.hits(), 1, "one exchange for twenty runs");
    dir.assert_no_temp_files();
}

// ---------------------------------------------------------------------------
// 13. HTTPS

fn tls_fake(token: &str) -> FakeIms {
    FakeIms::start_tls(
        vec![Reply::check_oauth(OAuthExpect::sample(), token)],
        fixture_path("tls/server.pem"),
        fixture_path("tls/server.key"),
    )
}

#[test]
fn https_with_a_ca_file_works() {
    let token = token_for("tls");
    let server = tls_fake(&token);
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let ca = path_str(&fixture_path("tls/ca.pem"));
    let net = net(&server.url());
    run(&with_net(&["-c", &oauth_path(), "--ca-file", &ca], &net)).prints(&token);
    assert_eq!(server.hits(), 1);
}

#[test]
fn https_without_the_ca_is_not_trusted_exit_3() {
    let server = tls_fake(&token_for("tls-untrusted"));
    let url = server.url();
    let r = run(&[
        "-c",
        &oauth_path(),
        "--ims",
        &url,
        "--timeout",
        "3",
        "--retries",
        "2",
    ]);
    // A certificate problem is fixed in the configuration: exit 3, one attempt.
    let m = r.fails(3);
    assert_eq!(server.hits(), 1, "a certificate problem is not retried");
    assert!(m.contains("not trusted"), "{m}");
    r.assert_no_secrets(&sent_secrets(&server));
}

#[test]
fn a_missing_or_empty_ca_file_is_a_config_error() {
    let dir = TempDir::new("cafile");
    let server = tls_fake(&token_for("tls-noca"));
    let net = net(&server.url());
    let missing = path_str(&dir.join("missing-ca.pem"));
    let m = run(&with_net(
        &["-c", &oauth_path(), "--ca-file", &missing],
        &net,
    ))
    .fails(3);
    assert!(m.contains(&missing), "{m}");
    let empty = dir.file("empty.pem", "");
    let m = run(&with_net(&["-c", &oauth_path(), "--ca-file", &empty], &net)).fails(3);
    assert!(m.contains("certificate"), "{m}");
    assert_eq!(server.hits(), 0, "no network for a config error");
}

// ---------------------------------------------------------------------------
// 14. closed stdout

fn run_with_closed_stdout(mut command: Command) -> Run {
    // The read end is closed before the child starts: not held open while
    // it is spawned, when another test's fork could copy it and keep it
    // open until that child's exec (a write would then succeed).
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    command.stdout(writer);
    let started = Instant::now();
    let what = format!("{command:?}");
    let mut child = command.spawn().expect("spawn");
    let err = collect(child.stderr.take());
    let status = wait_bounded(&mut child, started, RUN_LIMIT, &what);
    let stderr = collected(err);
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr,
        elapsed: started.elapsed(),
    };
    run.assert_no_panic();
    run
}

/// A reader that went away before reading the token (`ims-token | cmd`
/// where cmd failed to start) did not get it: exit 1 and a line that says
/// so, not a success that a script would trust. With `--cache` the token is
/// kept there for the next run.
#[test]
fn a_closed_stdout_is_exit_1_and_says_nothing_was_delivered() {
    let dir = TempDir::new("closed");
    let token = token_for("closed");
    let server = jwt_fake(&[&token]);
    let net = net(&server.url());
    let cache = path_str(&dir.join("token.cache"));
    let creds = service_path();
    let args = with_net(&["-c", &creds, "--cache", &cache], &net);
    let r = run_with_closed_stdout(cmd(&args));
    assert_eq!(server.hits(), 1);
    let closed = "ims-token: cannot write the output: stdout is closed";
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.starts_with(closed), "{r:#?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");
    r.assert_no_secrets(&[]);
    // The token was cached: the next run prints it without an exchange.
    run(&args).prints(&token);
    assert_eq!(server.hits(), 1);
    for args in [vec!["jwt", "-c", &service_path()], vec!["--help"]] {
        let r = run_with_closed_stdout(cmd(&args));
        assert_eq!(r.code, 1, "{r:#?}");
        assert!(r.stderr.starts_with(closed), "{r:#?}");
    }
}

// ---------------------------------------------------------------------------
// 15. exec and --format headers: the token out of every argv

/// A local development token file in `dir` (no network needed to get it).
fn local_token_file(dir: &TempDir, token: &str) -> String {
    dir.json("local.json", &json!({ "accessToken": token }))
}

#[test]
fn exec_passes_the_token_in_the_environment_never_in_argv() {
    let dir = TempDir::new("exec");
    let token = token_for("exec");
    let server = jwt_fake(&[&token]);
    let seen = dir.join("seen");
    // The child records its environment, its pid and its own argv.
    let script = r#"printf '%s\n%s\n%s\n%s\n' "$IMS_ACCESS_TOKEN" "$IMS_CLIENT_ID" "$IMS_ORG_ID" "$$" > "$1"
tr '\0' ' ' < /proc/$$/cmdline >> "$1"; exit 7"#;
    let net = net(&server.url());
    let seen_s = path_str(&seen);
    let creds = service_path();
    let mut args = with_net(&["exec", "-c", &creds], &net);
    args.extend(["--", "sh", "-c", script, "sh", &seen_s]);
    let pending = start(cmd(&args), None);
    let pid = pending.child.id();
    let r = pending.wait();
    assert_eq!(r.code, 7, "the child's exit status: {r:#?}");
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""), "{r:#?}");
    let text = fs::read_to_string(&seen).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let expect = JwtExpect::sample("x");
    assert_eq!(lines[0], token);
    assert_eq!(lines[1], expect.client_id);
    assert_eq!(lines[2], expect.org);
    // COMMAND replaced ims-token: same process.
    assert_eq!(lines[3], pid.to_string());
    assert!(lines[4].starts_with("sh -c "), "{text}");
    assert!(!lines[4].contains(&token), "the token is in argv: {text}");
    assert!(!lines[4].contains(TOKEN_MARK), "{text}");
    assert_eq!(server.hits(), 1);
}

#[test]
fn exec_without_an_org_sets_only_the_token_and_client_id() {
    let dir = TempDir::new("execoauth");
    let token = token_for("execoauth");
    let server = FakeIms::start(vec![Reply::check_oauth(OAuthExpect::sample(), &token)]);
    let script =
        r#"printf '%s|%s|%s' "$IMS_ACCESS_TOKEN" "$IMS_CLIENT_ID" "${IMS_ORG_ID-unset}" > "$1""#;
    let seen = path_str(&dir.join("seen"));
    let net = net(&server.url());
    let creds = oauth_path();
    let mut args = with_net(&["exec", "-c", &creds], &net);
    args.extend(["--", "sh", "-c", script, "sh", &seen]);
    // An IMS_ORG_ID left in the environment is not passed on as if it
    // were these credentials' org.
    let mut command = cmd(&args);
    command.env("IMS_ORG_ID", "stale0123@AdobeOrg");
    let r = run_cmd(command);
    assert_eq!(r.code, 0, "{r:#?}");
    let expected = format!("{token}|{}|unset", OAuthExpect::sample().client_id);
    assert_eq!(fs::read_to_string(&seen).unwrap(), expected);
}

#[test]
fn exec_passes_stdio_and_status_through_and_restores_sigpipe() {
    let dir = TempDir::new("execstdio");
    let local = local_token_file(&dir, &token_for("stdio"));
    let r = run(&[
        "exec",
        "-c",
        &local,
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (3, "out\n", "err\n"),
        "{r:#?}"
    );
    // ims-token ignores SIGPIPE (the Rust runtime does); COMMAND must not
    // inherit that, or `ims-token exec -- curl ... | head` misbehaves.
    let r = run(&[
        "exec",
        "-c",
        &local,
        "--",
        "grep",
        "^SigIgn:",
        "/proc/self/status",
    ]);
    let mask = r.stdout.trim().trim_start_matches("SigIgn:").trim();
    let mask = u64::from_str_radix(mask, 16).unwrap_or_else(|_| panic!("{r:#?}"));
    assert_eq!(
        mask & (1 << (13 - 1)),
        0,
        "SIGPIPE is ignored in COMMAND: {r:#?}"
    );
}

#[test]
fn exec_signals_are_the_commands() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = TempDir::new("execsig");
    let local = local_token_file(&dir, &token_for("sig"));
    let mut pending = start(
        cmd(&["exec", "-c", &local, "--", "sh", "-c", "kill -TERM $$"]),
        None,
    );
    let status = wait_bounded(&mut pending.child, pending.started, RUN_LIMIT, "exec kill");
    assert_eq!(status.signal(), Some(15), "{status:?}");
}

#[test]
fn exec_of_a_command_that_cannot_run_is_127_or_126() {
    let dir = TempDir::new("execfail");
    let local = local_token_file(&dir, &token_for("cannot"));
    let r = run(&[
        "exec",
        "-c",
        &local,
        "--",
        "ims-token-test-no-such-command",
        "a",
    ]);
    assert_eq!(r.code, 127, "{r:#?}");
    assert!(
        r.stderr
            .starts_with("ims-token: cannot run \"ims-token-test-no-such-command\"")
            && r.stderr.contains("not found"),
        "{r:#?}"
    );
    let missing = path_str(&dir.join("missing"));
    assert_eq!(run(&["exec", "-c", &local, "--", &missing]).code, 127);
    let not_executable = dir.file("script.sh", "#!/bin/sh\necho ran\n");
    let not_a_file = path_str(dir.path());
    for program in [&not_executable, &not_a_file] {
        let r = run(&["exec", "-c", &local, "--", program]);
        assert_eq!(r.code, 126, "{program}: {r:#?}");
        assert_eq!(r.stdout, "");
        assert!(
            r.stderr
                .starts_with(&format!("ims-token: cannot run {program:?}: ")),
            "{r:#?}"
        );
        r.assert_no_secrets(&[]);
    }
}

#[test]
fn exec_does_not_run_the_command_without_a_token() {
    let dir = TempDir::new("execnotoken");
    let marker = dir.join("ran");
    let marker_s = path_str(&marker);
    let net = net(&format!("http://127.0.0.1:{}", closed_port()));
    let creds = service_path();
    let mut args = with_net(&["exec", "-c", &creds], &net);
    args.extend(["--", "touch", &marker_s]);
    let m = run(&args).fails(5);
    assert!(m.contains("cannot reach IMS"), "{m}");
    assert!(!marker.exists(), "COMMAND ran without a token");
    // A usage error: nothing runs either.
    let m = run(&[
        "exec",
        "-c",
        &service_path(),
        "--retries",
        "99",
        "--",
        "touch",
        &marker_s,
    ])
    .fails(2);
    assert!(m.contains("--retries"), "{m}");
    assert!(!marker.exists());
}

/// The usage errors of `exec`, each saying what to fix (docs/failures.md
/// quotes them).
#[test]
fn exec_usage_errors_say_what_to_fix() {
    let creds = service_path();
    for (args, says) in [
        (
            vec!["exec", "-c", &creds],
            "exec needs a command after '--' (ims-token exec [OPTIONS] -- COMMAND [ARGS...])",
        ),
        (
            vec!["exec", "-c", &creds, "--"],
            "exec needs a command after '--' (ims-token exec [OPTIONS] -- COMMAND [ARGS...])",
        ),
        (
            vec!["exec", "-c", &creds, "curl"],
            "unexpected 'curl': give the command after '--' (ims-token exec [OPTIONS] -- COMMAND [ARGS...])",
        ),
        (
            vec!["exec", "-c", &creds, "--format", "json", "--", "true"],
            "--format does not apply to exec",
        ),
    ] {
        let m = run(&args).fails_alone(2);
        assert_eq!(m, format!("ims-token: {says} {USAGE_HINT}"), "{args:?}");
    }
}

#[test]
fn format_headers_gives_the_three_headers_adobe_apis_want() {
    let token = token_for("headers");
    let server = jwt_fake(&[&token]);
    let r = run(&with_net(
        &["-c", &service_path(), "--format", "headers"],
        &net(&server.url()),
    ));
    let e = JwtExpect::sample("x");
    let expected = format!(
        "Authorization: Bearer {token}\nx-api-key: {}\nx-gw-ims-org-id: {}\n",
        e.client_id, e.org
    );
    assert_eq!(r.ok(), expected);
    // OAuth credentials carry no org: two lines.
    let token = token_for("headers-oauth");
    let server = FakeIms::start(vec![Reply::check_oauth(OAuthExpect::sample(), &token)]);
    let r = run(&with_net(
        &["-c", &oauth_path(), "--format", "headers"],
        &net(&server.url()),
    ));
    let expected = format!(
        "Authorization: Bearer {token}\nx-api-key: {}\n",
        OAuthExpect::sample().client_id
    );
    assert_eq!(r.ok(), expected);
}

/// The README's `ims-token --format headers | curl -H @- URL`, for real:
/// curl (7.55 and later) sends the three headers, and the token is in no
/// process's argv.
#[test]
fn format_headers_feeds_curl_through_stdin() {
    let token = token_for("curl");
    let ims = jwt_fake(&[&token]);
    let api = TcpListener::bind("127.0.0.1:0").unwrap();
    let api_url = format!("http://{}/api", api.local_addr().unwrap());
    let recorded = thread::spawn(move || {
        let (mut tcp, _) = api.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let request = read_request(&mut tcp).unwrap();
        let _ = tcp.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        request
    });
    let net = net(&ims.url());
    let headers = run(&with_net(
        &["-c", &service_path(), "--format", "headers"],
        &net,
    ));
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-H", "@-", &api_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut curl = curl.unwrap_or_else(|e| panic!("cannot run curl ({e}); it is needed here"));
    curl.stdin
        .take()
        .unwrap()
        .write_all(headers.ok().as_bytes())
        .unwrap();
    let status = wait_bounded(&mut curl, Instant::now(), RUN_LIMIT, "curl");
    assert!(status.success(), "curl failed: {status:?}");
    let request = recorded.join().unwrap();
    let e = JwtExpect::sample("x");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(request.header("x-api-key"), Some(e.client_id.as_str()));
    assert_eq!(request.header("x-gw-ims-org-id"), Some(e.org.as_str()));
}

#[test]
fn a_token_with_crlf_from_ims_is_refused_and_not_cached() {
    let dir = TempDir::new("crlf");
    let cache = dir.join("token.cache");
    let cache_s = path_str(&cache);
    for format in ["token", "header", "headers", "json"] {
        let evil = format!("{}\r\nX-Injected: 1", token_for("crlf"));
        let body = json!({"access_token": evil, "token_type": "bearer", "expires_in": 86399});
        let server = FakeIms::start(vec![Reply::json(200, body.to_string())]);
        let net = net(&server.url());
        let args = ["-c", &oauth_path(), "--format", format, "--cache", &cache_s];
        let r = run(&with_net(&args, &net));
        let m = r.fails(1);
        assert!(m.contains("visible ASCII"), "{m}");
        assert!(!r.stderr.contains("X-Injected"), "{r:#?}");
        // The cache may record the failure for runs waiting on it; never the token.
        let cached = fs::read_to_string(&cache).unwrap_or_default();
        assert!(
            !cached.contains(&token_for("crlf")),
            "cached: {format}: {cached}"
        );
        assert!(!cached.contains("X-Injected"), "cached: {format}: {cached}");
    }
    // A local development token with a line break is not printed either.
    let local = local_token_file(&dir, &format!("{}\nX-Injected: 1", token_for("local")));
    let m = run(&["-c", &local, "--format", "header"]).fails(3);
    assert!(m.contains("control characters"), "{m}");
    assert!(!m.contains("X-Injected"), "{m}");
}

#[test]
fn option_values_are_checked_before_the_cache_is_read() {
    let dir = TempDir::new("cacheopts");
    let FilledCache {
        server,
        cache,
        args,
        ..
    } = filled_cache(&dir, "opts", 1);
    let cache_s = path_str(&cache);
    let base = [
        "-c".to_owned(),
        service_path(),
        "--cache".to_owned(),
        cache_s,
    ];
    for bad in [
        &["--lifetime", "0"][..],
        &["--lifetime", "100000"],
        &["--timeout", "0"],
        &["--connect-timeout", "0"],
        &["--retries", "11"],
        &["--cache", ""],
        &["--ca-file", ""],
        &["--credentials", ""],
    ] {
        let mut all: Vec<&str> = base.iter().map(String::as_str).collect();
        all.extend(bad);
        let m = run(&all).fails(2);
        assert!(m.contains(bad[0]) && m.contains(USAGE_HINT), "{bad:?}: {m}");
    }
    assert_eq!(server.hits(), 1, "no run reached IMS");
    // The limits themselves are fine, and a hit.
    let mut edge = strs(&args);
    edge.extend(["--lifetime", "86400", "--retries", "10"]);
    run(&edge).ok();
    assert_eq!(server.hits(), 1);
}

// ---------------------------------------------------------------------------
// 16. the cache file cannot be turned against its user

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let dir = TempDir::new("whoami");
    let probe = dir.file("probe", "");
    fs::metadata(probe).unwrap().uid() == 0
}

/// `path` with `.lock` appended: the cache's lock file.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[test]
fn a_fifo_at_the_cache_or_lock_path_never_blocks() {
    let dir = TempDir::new("cachefifo");
    let tokens = tokens_for("fifo", 2);
    let server = jwt_fake(&tokens);
    let fifo = dir.join("token.cache");
    mkfifo(&fifo);
    // Before the fix, this run hung forever in open(); RUN_LIMIT kills it.
    let r = run(&strs(&cache_args(&fifo, &server.url())));
    assert_eq!(r.ok(), format!("{}\n", tokens[0]), "{r:#?}");
    assert!(
        r.stderr.contains("a FIFO") && r.stderr.contains("left as it is"),
        "{r:#?}"
    );
    assert!(is_fifo(&fifo), "the FIFO was replaced");
    assert!(
        !lock_path(&fifo).exists(),
        "a lock file for a cache that is not used"
    );

    let cache = dir.join("locked.cache");
    let lock = lock_path(&cache);
    mkfifo(&lock);
    let r = run(&strs(&cache_args(&cache, &server.url())));
    assert_eq!(r.ok(), format!("{}\n", tokens[1]), "{r:#?}");
    assert!(
        r.stderr.contains("cannot lock the cache") && r.stderr.contains("FIFO"),
        "{r:#?}"
    );
    assert!(is_fifo(&lock));
    assert!(read_cache(&cache)["access_token"] == tokens[1].as_str());
}

#[test]
fn files_that_are_not_a_cache_are_left_untouched() {
    let dir = TempDir::new("cacheforeign");
    let tokens = tokens_for("foreign", 6);
    let server = jwt_fake(&tokens);
    // `--cache creds.json`, a typo: the credentials survive.
    let creds = dir.file(
        "creds.json",
        &read_fixture("service-credentials.sample.json"),
    );
    fs::set_permissions(&creds, fs::Permissions::from_mode(0o600)).unwrap();
    let before = fs::read(&creds).unwrap();
    let net = net(&server.url());
    let notes = dir.file("notes.txt", "my notes\n");
    fs::set_permissions(&notes, fs::Permissions::from_mode(0o600)).unwrap();
    // An old-style JSON token file of some other tool.
    let other = dir.file("other.json", r#"{"access_token":"x","expires_at":1}"#);
    // (A directory is a cache directory: a file per credential set in it.)
    let mut used = 0;
    for (path, twice) in [(&creds, true), (&notes, false), (&other, false)] {
        let before = fs::symlink_metadata(path).unwrap();
        let content = fs::read(path).ok();
        for _ in 0..if twice { 2 } else { 1 } {
            let r = run(&with_net(&["-c", &creds, "--cache", path], &net));
            assert_eq!(r.ok(), format!("{}\n", tokens[used]), "{path}: {r:#?}");
            assert!(
                r.stderr.contains("not a cache file of ims-token")
                    && r.stderr.contains("left as it is"),
                "{path}: {r:#?}"
            );
            assert_eq!(r.stderr.lines().count(), 1, "one warning: {r:#?}");
            used += 1;
        }
        let after = fs::symlink_metadata(path).unwrap();
        assert_eq!(after.file_type(), before.file_type(), "{path}");
        assert_eq!(after.permissions(), before.permissions(), "{path}");
        assert_eq!(fs::read(path).ok(), content, "{path} was changed");
        assert!(
            !lock_path(Path::new(path)).exists(),
            "{path}.lock was created"
        );
    }
    assert_eq!(fs::read(&creds).unwrap(), before);
    assert_eq!(server.hits(), used, "no run used a cache");
    dir.assert_no_temp_files();
}

#[test]
fn as_root_a_device_at_the_cache_path_stays_a_device() {
    use std::os::unix::fs::FileTypeExt as _;
    if !is_root() {
        eprintln!("not root: mknod needs root; skipped");
        return;
    }
    let dir = TempDir::new("cachedev");
    let null = dir.join("null");
    // Like /dev/null (1, 3), but in the test's own directory.
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status();
    assert!(made.is_ok_and(|s| s.success()), "mknod");
    let token = token_for("dev");
    let server = jwt_fake(&[&token]);
    let r = run(&strs(&cache_args(&null, &server.url())));
    assert_eq!(r.ok(), format!("{token}\n"), "{r:#?}");
    assert!(r.stderr.contains("a device"), "{r:#?}");
    assert!(fs::symlink_metadata(&null)
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn stale_temp_files_of_ours_are_removed_and_nothing_else() {
    let dir = TempDir::new("cachetemps");
    let tokens = tokens_for("temps", 2);
    let server = jwt_fake(&tokens);
    let cache = dir.join("token.cache");
    let args = cache_args(&cache, &server.url());
    run(&strs(&args)).prints(&tokens[0]);
    let ours = fs::read_to_string(&cache).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let plant = |name: &str, text: &str, at: std::time::SystemTime| {
        let path = dir.join(name);
        write_private(&path, text);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(at)
            .unwrap();
        path
    };
    // Left by a killed run an hour ago: a token in a file of ours.
    let stale = plant("token.cache.tmp.4000001", &ours, old);
    let stale_cut = plant("token.cache.tmp.4000002", &ours[..10], old);
    // Being written right now by another run (now on the tests' clock,
    // which may be libfaketime's, not the file system's).
    let now = std::time::SystemTime::now();
    let fresh = plant("token.cache.tmp.4000003", &ours, now);
    // Not ours: other content, or another name.
    let other = plant("token.cache.tmp.4000004", "keep me", old);
    let named = plant("token.cache.tmp.x", &ours, old);
    let unrelated = plant("other.cache.tmp.4000005", &ours, old);

    fs::remove_file(&cache).unwrap();
    run(&strs(&args)).prints(&tokens[1]);
    assert!(
        !stale.exists() && !stale_cut.exists(),
        "stale temp files were kept"
    );
    for kept in [&fresh, &other, &named, &unrelated] {
        assert!(kept.exists(), "{} was removed", kept.display());
    }
    assert_eq!(fs::read_to_string(&other).unwrap(), "keep me");
}

/// Runs `ims-token ARGS` with an empty tmpfs over /proc (a host without
/// /proc), or None when this cannot be set up (not root).
fn run_without_proc(args: &[&str]) -> Option<Run> {
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs none /proc"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return None;
    }
    let script = r#"mount -t tmpfs none /proc && exec "$0" "$@""#;
    let before = ["-m", "sh", "-c", script];
    Some(run_cmd(command_through("unshare", &before, args)))
}

#[test]
fn without_proc_the_cache_still_hits() {
    let dir = TempDir::new("cachenoproc");
    let token = token_for("noproc");
    let server = jwt_fake(&[&token]);
    let cache = dir.join("token.cache");
    let args = cache_args(&cache, &server.url());
    let Some(first) = run_without_proc(&strs(&args)) else {
        eprintln!("cannot hide /proc (unshare needs root); skipped");
        return;
    };
    first.prints(&token);
    let second = run_without_proc(&strs(&args)).unwrap();
    second.prints(&token);
    assert_eq!(server.hits(), 1, "the second run did not use the cache");
}

/// As root, plays the other user of a shared sticky directory: the run is
/// `nobody`'s, the planted files are root's.
#[test]
fn as_root_other_users_files_are_neither_trusted_nor_waited_on() {
    if !is_root() {
        eprintln!("not root: cannot act as two users; skipped");
        return;
    }
    let dir = TempDir::new("cacheusers");
    let shared = dir.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let tokens = tokens_for("users", 3);
    let server = jwt_fake(&tokens);
    // Learn the cache key with a run of root's own.
    let probe = dir.join("probe.cache");
    run(&strs(&cache_args(&probe, &server.url()))).prints(&tokens[0]);
    let key = cache_key(&probe);
    let now = now_secs();
    let as_nobody = |cache: &Path| {
        let before = ["--reuid=65534", "--regid=65534", "--clear-groups"];
        let cache = path_str(cache);
        let mut args = vec!["-c", "-", "--cache", &cache];
        let net = net(&server.url());
        args.extend(strs(&net));
        let command = command_through("setpriv", &before, &args);
        start(
            command,
            Some(read_fixture("service-credentials.sample.json").as_bytes()),
        )
        .wait()
    };

    // A fresh, valid-looking entry planted by another user: not used, not
    // replaced (the sticky directory protects it anyway).
    let planted = shared.join("token.cache");
    let bait = cache_entry(&key, &token_for("bait"), now, now + 86_000);
    fs::write(&planted, &bait).unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o644)).unwrap();
    let r = as_nobody(&planted);
    assert_eq!(r.ok(), format!("{}\n", tokens[1]), "{r:#?}");
    assert!(r.stderr.contains("not a file of yours"), "{r:#?}");
    assert_eq!(fs::read_to_string(&planted).unwrap(), bait);

    // Another user's lock file, held: refused at once, not waited on.
    let cache = shared.join("held.cache");
    let lock = fs::File::create(lock_path(&cache)).unwrap();
    fs::set_permissions(lock_path(&cache), fs::Permissions::from_mode(0o666)).unwrap();
    lock.lock().unwrap();
    let r = as_nobody(&cache);
    assert_eq!(r.ok(), format!("{}\n", tokens[2]), "{r:#?}");
    assert!(r.stderr.contains("another user's file"), "{r:#?}");
    drop(lock);
    assert_eq!(server.hits(), 3);
}

// ---------------------------------------------------------------------------
// 17. bounded CA files, proxies as curl reads them

#[test]
fn ca_files_are_capped_and_regular_files_only() {
    let dir = TempDir::new("cabound");
    let fifo = dir.join("ca.fifo");
    mkfifo(&fifo);
    let big = dir.join("big.pem");
    let cert = read_fixture("tls/ca.pem");
    fs::write(&big, cert.repeat(1024 * 1024 / cert.len() + 1)).unwrap();
    let net = net(&format!("http://127.0.0.1:{}", closed_port()));
    for (ca, what) in [
        (Path::new("/dev/zero"), "a device"),
        (fifo.as_path(), "a FIFO"),
        (dir.path(), "a directory"),
        (big.as_path(), "too large: more than 1 MiB"),
    ] {
        let ca_s = path_str(ca);
        // Before the fix /dev/zero grew without bound and the FIFO hung.
        let m = run(&with_net(&["-c", &oauth_path(), "--ca-file", &ca_s], &net)).fails(3);
        assert!(m.contains(&ca_s) && m.contains(what), "{ca_s}: {m}");
    }
    assert!(is_fifo(&fifo));
}

/// The host the tests' proxy maps to 127.0.0.1 (`common::proxy`): an IMS
/// that is not loopback, so a proxy applies to it.
const PROXIED_IMS: &str = "https://ims.test:1";

#[test]
fn a_proxy_answering_407_is_exit_3_after_one_attempt() {
    let proxy = LoggingProxy::start(Mode::Refuse);
    let mut command = cmd(&["-c", &oauth_path(), "--ims", PROXIED_IMS, "--retries", "2"]);
    command.env("HTTPS_PROXY", proxy.url_with("user:pa55word"));
    let r = run_cmd(command);
    let m = r.fails(3);
    let port = proxy.port;
    assert!(
        m.contains(&format!("proxy 127.0.0.1:{port}")) && m.contains("refused the credentials"),
        "{m}"
    );
    assert!(m.contains("$HTTPS_PROXY"), "{m}");
    assert!(!r.stderr.contains("pa55word"), "{r:#?}");
    assert_eq!(proxy.connections(), 1, "a 407 is not retried");
}

#[test]
fn an_unreachable_proxy_is_named_as_the_proxy() {
    let port = closed_port();
    let mut command = cmd(&["-c", &oauth_path(), "--ims", PROXIED_IMS, "--retries", "0"]);
    command.env(
        "https_proxy",
        format!("http://user:pa55word@127.0.0.1:{port}"),
    );
    let r = run_cmd(command);
    let m = r.fails(5);
    assert!(
        m.starts_with(&format!(
            "ims-token: cannot reach the proxy 127.0.0.1:{port} (from $https_proxy)"
        )),
        "{m}"
    );
    assert!(!r.stderr.contains("pa55word"), "{r:#?}");
}

/// The issue's cases, through a dead proxy to an IMS that is not loopback:
/// a host NO_PROXY lists, as curl reads it, goes direct (and fails there:
/// nothing answers for it); any other fails at the proxy.
#[test]
fn no_proxy_as_curl_reads_it() {
    let dead_proxy = format!("http://127.0.0.1:{}", closed_port());
    let run_with = |url: &str, vars: &[(&str, &str)]| {
        let mut command = cmd(&[
            "-c",
            &oauth_path(),
            "--ims",
            url,
            "--retries",
            "0",
            "--connect-timeout",
            "0.2",
        ]);
        command.env("HTTPS_PROXY", &dead_proxy);
        for (name, value) in vars {
            command.env(name, value);
        }
        run_cmd(command).fails(5)
    };
    let v6 = "https://[2001:db8::1]:1";
    for (url, vars) in [
        (PROXIED_IMS, &[("NO_PROXY", "localhost, ims.test")][..]),
        (PROXIED_IMS, &[("NO_PROXY", ""), ("no_proxy", ".test")]),
        (PROXIED_IMS, &[("no_proxy", "*")]),
        (PROXIED_IMS, &[("NO_PROXY", "IMS.TEST.")]),
        (v6, &[("NO_PROXY", "2001:db8::/32")]),
        (v6, &[("NO_PROXY", "2001:db8::1")]),
    ] {
        let m = run_with(url, vars);
        assert!(!m.contains("proxy"), "{vars:?} did not go direct: {m}");
    }
    // Not listed, as curl reads it: through the proxy, which is not there.
    for (url, vars) in [
        (PROXIED_IMS, &[("NO_PROXY", "localhost")][..]),
        (PROXIED_IMS, &[("NO_PROXY", "other.test,*")]),
        (PROXIED_IMS, &[("NO_PROXY", "*.test")]),
        (PROXIED_IMS, &[("NO_PROXY", "ims.test2, test.ims")]),
        (PROXIED_IMS, &[("NO_PROXY", "other.test ims.test")]),
        (v6, &[("NO_PROXY", "[2001:db8::1]")]),
    ] {
        let m = run_with(url, vars);
        assert!(m.contains("cannot reach the proxy"), "{vars:?}: {m}");
    }
}

#[test]
fn a_relative_cache_path_works_and_cleans_up_too() {
    let dir = TempDir::new("cacherel");
    let tokens = tokens_for("rel", 2);
    let server = jwt_fake(&tokens);
    let stale = dir.join("token.cache.tmp.4000001");
    write_private(&stale, CACHE_MARKER);
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let net = net(&server.url());
    let creds = service_path();
    let args = with_net(&["-c", &creds, "--cache", "token.cache"], &net);
    for _ in 0..2 {
        let mut command = cmd(&args);
        command.current_dir(dir.path());
        run_cmd(command).prints(&tokens[0]);
    }
    assert_eq!(server.hits(), 1, "the second run was a hit");
    assert!(!stale.exists());
    dir.assert_no_temp_files();
}
