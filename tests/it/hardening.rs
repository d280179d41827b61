//! An attacker's second pass (issue 17), each test acting as the attacker
//! did: a shared credentials file full of terminal escapes, a cache written
//! while the clock was days ahead, a CONNECT proxy that must see nothing of
//! a loopback endpoint, a hostile IMS echoing the secret in part, escaped
//! and re-encoded, FIFOs whose names hold escapes, and a byte order mark.
//!
//! Every run talks only to 127.0.0.1 and is killed after
//! `common::run::RUN_LIMIT`.

use crate::common;

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::proxy::{LoggingProxy, Mode};
use common::run::{command, run, run_cmd, Run, TOKEN_MARK};
use common::{
    fixture_json, fixture_path, path_str, read_fixture, typed_response, FakeIms, OAuthExpect,
    Reply, TempDir,
};
use serde_json::json;

/// Text an attacker puts in every field of a shared file: a window title
/// (OSC 0), a clipboard write (OSC 52), a C1 CSI that clears the screen, a
/// line of its own for scripts that parse the output, bidi overrides and
/// isolates, and a Unicode line separator.
const HOSTILE: &str = "x\u{1b}]0;pwned\u{7}\u{1b}]52;c;ZXZpbA==\u{7}\u{9b}2J\r\nkind: \
                       injected\u{202e}\u{2066}evil\u{2069}\u{2028}\u{2029}y";

fn oauth_path() -> String {
    path_str(&fixture_path("oauth-credentials.sample.json"))
}

fn token_for(name: &str) -> String {
    format!("{TOKEN_MARK}-{name}-0123456789abcdef")
}

/// `--ims URL --timeout 3 --retries 0`.
fn net(url: &str) -> [&str; 6] {
    ["--ims", url, "--timeout", "3", "--retries", "0"]
}

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(tail).copied().collect()
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// Whether `text` holds a control character (other than the line feeds
/// that end lines), a bidi control or a Unicode line separator.
fn holds_terminal_tricks(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && c != '\n') || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
    })
}

// ---------------------------------------------------------------------------
// 17.1 inspect prints credential fields as one printable line each

/// The three kinds of credentials file, every printed field hostile.
fn hostile_files(dir: &TempDir) -> Vec<(String, usize)> {
    let mut project = fixture_json("console-project.sample.json");
    project["project"]["name"] = HOSTILE.into();
    project["project"]["org"]["ims_org_id"] = HOSTILE.into();
    project["project"]["workspace"]["name"] = HOSTILE.into();
    let entry = &mut project["project"]["workspace"]["details"]["credentials"][1];
    entry["name"] = HOSTILE.into();
    entry["id"] = HOSTILE.into();
    let s2s = &mut entry["oauth_server_to_server"];
    s2s["client_id"] = HOSTILE.into();
    s2s["technical_account_id"] = HOSTILE.into();
    s2s["scopes"] = json!(["openid", HOSTILE]);

    let mut service = fixture_json("service-credentials.sample.json");
    let integration = &mut service["integration"];
    integration["org"] = HOSTILE.into();
    integration["id"] = HOSTILE.into();
    integration["technicalAccount"]["clientId"] = HOSTILE.into();
    integration["metascopes"] = HOSTILE.into();

    let mut oauth = fixture_json("oauth-credentials.sample.json");
    let integration = &mut oauth["integration"];
    integration["org"] = HOSTILE.into();
    integration["id"] = HOSTILE.into();
    integration["technicalAccount"]["clientId"] = HOSTILE.into();
    integration["scopes"] = json!([HOSTILE]);

    // The file's name is printed too (`source:`).
    let name = |kind: &str| format!("{kind}\u{1b}]0;t\u{7}\nkind: x\u{202e}.json");
    vec![
        (dir.json(&name("project"), &project), 10),
        (dir.json(&name("service"), &service), 9),
        (dir.json(&name("oauth"), &oauth), 7),
    ]
}

#[test]
fn inspect_prints_each_field_of_an_escape_laden_file_as_one_printable_line() {
    let dir = TempDir::new("inspect-hostile");
    for (path, fields) in hostile_files(&dir) {
        let r = run(&["inspect", "-c", &path]);
        let out = r.quiet();
        assert!(!holds_terminal_tricks(out), "{path:?}: {out:?}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), fields, "{path:?}: {out}");
        // One `kind:` line, the first: no field adds a line of its own.
        let kinds = lines.iter().filter(|l| l.starts_with("kind:")).count();
        assert_eq!((kinds, lines[0].starts_with("kind: ")), (1, true), "{out}");
        for line in &lines {
            let (key, _) = line.split_once(": ").unwrap_or_default();
            assert!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == ' '),
                "{line:?} in {out}"
            );
        }
        // The visible text of the fields is still there.
        assert!(out.contains("kind: injected"), "{out}");
        assert!(out.contains("evil"), "{out}");
    }
}

// ---------------------------------------------------------------------------
// 17.7 a UTF-8 byte order mark

const BOM: &str = "\u{feff}";

#[test]
fn a_byte_order_mark_before_credentials_or_a_ca_file_is_skipped() {
    let dir = TempDir::new("bom");
    // As Windows PowerShell 5's `Set-Content -Encoding UTF8` writes it.
    let creds = dir.file(
        "creds.json",
        &format!("{BOM}{}", read_fixture("oauth-credentials.sample.json")),
    );
    let ca = dir.file(
        "ca.pem",
        &format!("{BOM}{}", read_fixture("tls/ca.pem").replace('\n', "\r\n")),
    );
    let token = token_for("bom");
    let server = FakeIms::start_tls(
        vec![
            Reply::check_oauth(OAuthExpect::sample(), &token),
            Reply::check_oauth(OAuthExpect::sample(), &token),
        ],
        fixture_path("tls/server.pem"),
        fixture_path("tls/server.key"),
    );
    let url = server.url();
    let r = run(&args(&["-c", &creds, "--ca-file", &ca], &net(&url)));
    assert_eq!(r.quiet(), format!("{token}\n"));
    // From stdin too.
    let stdin = fs::read(&creds).unwrap();
    let piped = command(&args(&["-c", "-", "--ca-file", &ca], &net(&url)));
    let r = common::run::start(piped, Some(&stdin)).wait();
    assert_eq!(r.quiet(), format!("{token}\n"));
    assert_eq!(server.hits(), 2);
    // Only a leading one: a BOM elsewhere is still not JSON.
    let inside = dir.file("inside.json", &format!("{{{BOM}}}"));
    let m = run(&["inspect", "-c", &inside]).fails(3);
    assert!(m.contains("not valid JSON"), "{m}");
}

// ---------------------------------------------------------------------------
// 17.6 file names and exec's COMMAND, quoted escaped

/// A name that would rewrite the terminal and add a line, printed raw.
const HOSTILE_NAME: &str = "n\u{1b}]0;pwned\u{7}\nims-token: fine\u{9b}";

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {path:?}");
}

/// Every stderr line is one printable line, and the hostile name is there,
/// escaped.
fn assert_escaped_name(r: &Run) {
    assert!(!holds_terminal_tricks(&r.stderr), "{r:#?}");
    assert!(
        r.stderr.contains(r"n\u{1b}]0;pwned\u{7}\nims-token: fine"),
        "{r:#?}"
    );
    r.assert_stderr_prefixed();
}

#[test]
fn fifo_names_with_escapes_are_quoted_escaped_on_one_line() {
    let dir = TempDir::new("fifo-names");
    let fifo = dir.join(HOSTILE_NAME);
    mkfifo(&fifo);
    let fifo_s = path_str(&fifo);
    let server = FakeIms::start(vec![
        Reply::check_oauth(OAuthExpect::sample(), &token_for("fifo-name")),
        Reply::check_oauth(OAuthExpect::sample(), &token_for("fifo-name")),
    ]);
    let url = server.url();

    // The credentials file, the CA file and IMS_PRIVATE_KEY_FILE: exit 3.
    let r = run(&["inspect", "-c", &fifo_s]);
    let m = r.fails(3);
    assert!(m.contains("cannot read credentials file \""), "{m}");
    assert_escaped_name(&r);
    let oauth = oauth_path();
    let r = run(&args(&["-c", &oauth, "--ca-file", &fifo_s], &net(&url)));
    let m = r.fails(3);
    assert!(m.contains("cannot read CA file \""), "{m}");
    assert_escaped_name(&r);
    let mut key_file = command(&["inspect"]);
    for (name, value) in jwt_vars() {
        key_file.env(name, value);
    }
    key_file.env("IMS_PRIVATE_KEY_FILE", &fifo);
    let r = run_cmd(key_file);
    r.fails(3);
    assert_escaped_name(&r);

    // The cache and its lock: warnings, and the token.
    let r = run(&args(&["-c", &oauth, "--cache", &fifo_s], &net(&url)));
    assert!(r.ok().contains("fifo-name"), "{r:#?}");
    assert!(r.stderr.contains("cannot write the cache \""), "{r:#?}");
    assert_escaped_name(&r);
    let cache = dir.join(&HOSTILE_NAME.replace("n\u{1b}", "c\u{1b}"));
    let mut lock = cache.as_os_str().to_owned();
    lock.push(".lock");
    mkfifo(Path::new(&lock));
    let cache_s = path_str(&cache);
    let r = run(&args(&["-c", &oauth, "--cache", &cache_s], &net(&url)));
    assert!(r.ok().contains("fifo-name"), "{r:#?}");
    assert!(r.stderr.contains("cannot lock the cache: \""), "{r:#?}");
    assert!(!holds_terminal_tricks(&r.stderr), "{r:#?}");
    r.assert_stderr_prefixed();
}

/// A JWT service account in `IMS_*` variables, the key left out.
fn jwt_vars() -> Vec<(&'static str, String)> {
    let creds = fixture_json("service-credentials.sample.json");
    let field = |path: &[&str]| {
        let mut v = &creds["integration"];
        for p in path {
            v = &v[*p];
        }
        v.as_str().unwrap().to_owned()
    };
    vec![
        ("IMS_CLIENT_ID", field(&["technicalAccount", "clientId"])),
        (
            "IMS_CLIENT_SECRET",
            field(&["technicalAccount", "clientSecret"]),
        ),
        ("IMS_ORG_ID", field(&["org"])),
        ("IMS_TECHNICAL_ACCOUNT_ID", field(&["id"])),
        ("IMS_METASCOPES", field(&["metascopes"])),
    ]
}

#[test]
fn an_exec_command_with_escapes_is_quoted_escaped_on_one_line() {
    let dir = TempDir::new("exec-name");
    let local = dir.json(
        "local.json",
        &json!({ "accessToken": token_for("exec-name") }),
    );
    let mut exec = command(&["exec", "-c", &local, "--"]);
    exec.arg(OsStr::new(HOSTILE_NAME));
    let r = run_cmd(exec);
    let m = r.fails(127);
    assert!(m.starts_with("ims-token: cannot run \""), "{m}");
    assert_escaped_name(&r);
}

// ---------------------------------------------------------------------------
// 17.4 a hostile IMS that echoes the secret in part, escaped, re-encoded

/// 40 characters, with a `/`, a space, a `+` and a `=` for the encodings
/// to differ on.
const SECRET: &str = "p8e-Ab/Cd Ef+Gh=Ij-0123456789abcdefghijk";

/// Every run of 12 characters of `secret`.
fn runs_of_12(secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    chars.windows(12).map(|w| w.iter().collect()).collect()
}

fn oauth_vars(url: &str) -> Vec<(&'static str, String)> {
    let expect = OAuthExpect::sample();
    vec![
        ("IMS_CLIENT_ID", expect.client_id),
        ("IMS_CLIENT_SECRET", SECRET.into()),
        ("IMS_ORG_ID", "0123@AdobeOrg".into()),
        ("IMS_SCOPES", expect.scopes.join(",")),
        ("IMS_ENDPOINT", url.into()),
    ]
}

/// What a hostile IMS sends back, and the exit code it makes.
fn hostile_echoes() -> Vec<(&'static str, Reply, i32)> {
    let partial = &SECRET[..36];
    let json_escaped = SECRET.replace('/', "\\/");
    let other_encoding = SECRET
        .replace('/', "%2f")
        .replace(' ', "%20")
        .replace('+', "%2b")
        .replace('=', "%3d");
    let text = |status: u16, body: String| {
        Reply::Raw(typed_response(status, "text/plain", body.as_bytes(), &[]))
    };
    vec![
        (
            "36 of 40 characters in the description",
            Reply::ims_error(401, "invalid_client", &format!("secret {partial} is wrong")),
            4,
        ),
        (
            "the secret JSON-escaped in a text body",
            text(400, format!("client_secret={json_escaped}")),
            4,
        ),
        (
            "the secret percent-encoded the other way",
            text(500, format!("client_secret={other_encoding}")),
            5,
        ),
        (
            "both, in the error code",
            Reply::json(
                400,
                format!(r#"{{"error":"{}"}}"#, other_encoding.replace("%2f", "\\/")),
            ),
            4,
        ),
        (
            "part of it in x-debug-id",
            Reply::json(400, r#"{"error":"invalid_request"}"#)
                .with_header("x-debug-id", &SECRET[4..30]),
            4,
        ),
        (
            "part of it, escaped, in a redirect",
            Reply::json(302, "{}").with_header(
                "location",
                &format!("https://elsewhere/?s={}", &json_escaped[3..30]),
            ),
            1,
        ),
    ]
}

#[test]
fn a_hostile_ims_echoing_the_secret_in_part_escaped_or_reencoded_shows_none_of_it() {
    let runs = runs_of_12(SECRET);
    for (what, reply, code) in hostile_echoes() {
        let server = FakeIms::start(vec![reply]);
        let mut oauth = command(&["--retries", "0", "--timeout", "3"]);
        for (name, value) in oauth_vars(&server.url()) {
            oauth.env(name, value);
        }
        let r = run_cmd(oauth);
        r.fails(code);
        assert_eq!(server.hits(), 1, "{what}");
        let sent = server.requests()[0]
            .form_value("client_secret")
            .map(str::to_owned);
        assert_eq!(sent.as_deref(), Some(SECRET), "{what}");
        for piece in &runs {
            assert!(
                !r.stderr.contains(piece.as_str()),
                "{what}: {piece:?} in {r:#?}"
            );
        }
    }
}

/// The signed JWT, in part: its header, which every JWT of the crate
/// starts with (`{"alg":"RS256","typ":"JWT"}`).
#[test]
fn a_hostile_ims_echoing_part_of_the_signed_jwt_shows_none_of_it() {
    let jwt_start = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.";
    let server = FakeIms::start(vec![Reply::ims_error(
        400,
        "invalid_token",
        &format!("cannot decode {jwt_start}"),
    )]);
    let creds = path_str(&fixture_path("service-credentials.sample.json"));
    let url = server.url();
    let r = run(&args(&["-c", &creds], &net(&url)));
    r.fails(4);
    let jwt = server.requests()[0]
        .form_value("jwt_token")
        .unwrap()
        .to_owned();
    assert!(jwt.starts_with(jwt_start), "{jwt}");
    for piece in runs_of_12(jwt_start) {
        assert!(!r.stderr.contains(&piece), "{piece:?} in {r:#?}");
    }
    // What is left says what IMS refused.
    assert!(r.stderr.contains("400 invalid_token"), "{r:#?}");
}

// ---------------------------------------------------------------------------
// 17.2 a clock that steps back, and an implausible lifetime

/// `ims-token ARGS` under `faketime`, its clock `secs` ahead of this
/// process's (which may be libfaketime's own: the README's run of the tests
/// two years ahead). The test needs it: Debian package `faketime`, which
/// `.ci/run` installs.
fn ahead_by(secs: i64, args: &[&str]) -> Command {
    let probe = Command::new("faketime").args(["-f", "+0", "true"]).status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "cannot run faketime; it is needed here (apt-get install faketime)"
    );
    let at = common::now_secs() + secs;
    let (y, m, d) = common::civil_from_days(at.div_euclid(86_400));
    let t = at.rem_euclid(86_400);
    let start = format!(
        "@{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        t / 3600,
        t % 3600 / 60,
        t % 60
    );
    common::run::command_through("faketime", &["-f", &start], args)
}

#[test]
fn a_cache_written_under_faketime_plus_3d_is_a_miss_at_the_real_time() {
    let dir = TempDir::new("faketime");
    let cache = dir.join("token.cache");
    let cache_s = path_str(&cache);
    let (ahead, real) = (token_for("3-days-ahead"), token_for("real-time"));
    let server = FakeIms::start(vec![
        Reply::check_oauth(OAuthExpect::sample(), &ahead),
        Reply::check_oauth(OAuthExpect::sample(), &real),
    ]);
    let url = server.url();
    let oauth = oauth_path();
    let a = args(&["-c", &oauth, "--cache", &cache_s], &net(&url));
    // The host's clock 3 days ahead: the token is cached as received then.
    let r = run_cmd(ahead_by(3 * 86_400, &a));
    assert_eq!(r.ok(), format!("{ahead}\n"));
    let entry: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&cache).unwrap()).unwrap();
    let received = entry["received_at"].as_i64().unwrap();
    assert!(received > common::now_secs() + 2 * 86_400, "{entry}");
    // NTP set the clock right: that entry claims 3 days more than IMS
    // granted, and is not handed out.
    let r = run(&a);
    assert_eq!(r.ok(), format!("{real}\n"));
    assert_eq!(server.hits(), 2);
    // The entry written now is used.
    run(&a).prints(&real);
    assert_eq!(server.hits(), 2);
}

#[test]
fn an_expires_in_in_milliseconds_from_the_oauth_flow_is_cut_to_a_day() {
    let token = token_for("ms-for-s");
    let server = FakeIms::start(vec![common::oauth_reply(&token, 86_399_999)]);
    let url = server.url();
    let oauth = oauth_path();
    let r = run(&args(&["-c", &oauth, "--format", "json"], &net(&url)));
    let json: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(json["access_token"], token.as_str());
    let left = json["expires_in"].as_u64().unwrap();
    assert!((86_300..=86_400).contains(&left), "{json}");
    assert!(
        r.stderr
            .contains("warning: IMS gave the token 86399999 s to live"),
        "{r:#?}"
    );
}

// ---------------------------------------------------------------------------
// 17.3 loopback endpoints never go through a proxy

/// Every proxy variable a tool might read, all pointing at `proxy`.
fn all_proxy_vars(command: &mut Command, proxy: &LoggingProxy) {
    let proxies = common::PROXY_VARS
        .iter()
        .filter(|name| !name.eq_ignore_ascii_case("no_proxy"));
    for name in proxies {
        command.env(name, proxy.url());
    }
}

/// `ims-token -c CREDS --ims https://ims.test:1 --retries 0 EXTRA`: an IMS
/// that is not loopback, which only the tests' proxy resolves.
fn to_proxied_ims(creds: &str, extra: &[&str]) -> Command {
    let head = ["-c", creds, "--ims", "https://ims.test:1", "--retries", "0"];
    command(&args(&head, extra))
}

#[test]
fn a_logging_connect_proxy_sees_nothing_of_a_loopback_endpoint() {
    let proxy = LoggingProxy::start(Mode::Forward);
    let token = token_for("direct");
    let plain = FakeIms::start(vec![Reply::check_oauth(OAuthExpect::sample(), &token)]);
    let tls = FakeIms::start_tls(
        vec![Reply::check_oauth(OAuthExpect::sample(), &token)],
        fixture_path("tls/server.pem"),
        fixture_path("tls/server.key"),
    );
    let ca = path_str(&fixture_path("tls/ca.pem"));
    let oauth = oauth_path();
    for server in [&plain, &tls] {
        let url = server.url();
        let mut direct = command(&args(&["-c", &oauth, "--ca-file", &ca], &net(&url)));
        all_proxy_vars(&mut direct, &proxy);
        run_cmd(direct).prints(&token);
        // The form, client secret included, went to the fake itself.
        let form = &server.requests()[0];
        assert_eq!(
            form.form_value("client_secret"),
            Some(OAuthExpect::sample().client_secret.as_str())
        );
    }
    assert_eq!(proxy.connections(), 0, "{:?}", proxy.seen());
    // The same proxy is used for an IMS that is not loopback.
    let mut proxied = to_proxied_ims(&oauth, &[]);
    all_proxy_vars(&mut proxied, &proxy);
    run_cmd(proxied).fails(5);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].request_line, "CONNECT ims.test:1 HTTP/1.1");
}

#[test]
fn a_silent_proxy_is_named_as_the_proxy() {
    let proxy = LoggingProxy::start(Mode::Silent);
    let oauth = oauth_path();
    let mut command = to_proxied_ims(&oauth, &["--connect-timeout", "0.2", "--timeout", "2"]);
    command.env("HTTPS_PROXY", proxy.url());
    let m = run_cmd(command).fails(5);
    let expected = format!(
        "ims-token: the proxy 127.0.0.1:{} (from $HTTPS_PROXY) or IMS at \
         https://ims.test:1/ims/token/v3 behind it did not answer in time",
        proxy.port
    );
    assert!(m.starts_with(&expected), "{m}");
    assert_eq!(proxy.seen().len(), 1);
}

// ---------------------------------------------------------------------------
// exec: COMMAND gets a token, not what makes one

#[test]
fn exec_keeps_the_credentials_path_from_command() {
    let dir = TempDir::new("exec-env");
    let token = token_for("exec-env");
    let server = FakeIms::start(vec![Reply::check_oauth(OAuthExpect::sample(), &token)]);
    let seen = path_str(&dir.join("seen"));
    let script = r#"printf '%s|%s|%s' "$IMS_ACCESS_TOKEN" "${IMS_CREDENTIALS-unset}" "${IMS_CLIENT_SECRET-unset}" > "$1""#;
    let url = server.url();
    let mut exec = command(&args(&["exec"], &net(&url)));
    exec.args(["--", "sh", "-c", script, "sh", &seen]);
    // The credentials come from $IMS_CREDENTIALS, which COMMAND does not get.
    exec.env(common::run::CREDENTIALS_VAR, oauth_path());
    exec.env("IMS_CLIENT_SECRET", "p8e-left-over-secret");
    let r = run_cmd(exec);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    assert_eq!(
        fs::read_to_string(&seen).unwrap(),
        format!("{token}|unset|unset")
    );
}
