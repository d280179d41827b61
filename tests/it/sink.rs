//! `ims-token sink`: a file kept fresh for other processes, judged the way
//! they see it. The issuer (`common::issuer`) gives tokens that live about
//! a second (the JWT exchange's `expires_in` is in milliseconds), so a
//! refresh comes every few hundred milliseconds; each token names when it
//! dies, so a reader can tell an expired one. Every wait is bounded and
//! nothing is timed: a bound only catches a sink that hangs.

use crate::common;

use std::fs::{self, File, Permissions};
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::issuer::{now_ms, parse_token, Answer, Issuer};
use common::run::{self, Pending, Run};
use common::{fixture_json, fixture_path, jwt_success_body, path_str, FakeIms, Reply, TempDir};
use serde_json::Value;

/// Longest any wait of these tests may take: only a sink that hangs or
/// never refreshes reaches it.
const LIMIT: Duration = Duration::from_secs(20);

/// "Within 1 s" for SIGTERM and SIGINT: generous on a busy machine, far
/// below the 30 s an IMS that never answers would hold a sink that waited
/// for it.
const STOP_LIMIT: Duration = Duration::from_secs(10);

fn service_credentials() -> String {
    path_str(&fixture_path("service-credentials.sample.json"))
}

/// `sink -c <service credentials> --ims <issuer> --out <out> ...extra`.
fn sink_args(issuer: &Issuer, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "sink",
        "-c",
        &service_credentials(),
        "--ims",
        &issuer.url(),
        "--out",
        &path_str(out),
        "--retries",
        "0",
        "--timeout",
        "5",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn start(args: &[String]) -> Pending {
    start_cmd(command(args))
}

fn command(args: &[String]) -> Command {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run::command(&refs)
}

fn start_cmd(command: Command) -> Pending {
    run::start(command, None)
}

/// Polls `ok` until it holds; fails the test, naming `what`, after [`LIMIT`].
fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < LIMIT, "waited too long for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The status file as JSON, once it is there.
fn status(path: &Path) -> Value {
    fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null)
}

/// The number of the token in a token-format FILE, if there is one.
fn token_number(out: &Path) -> Option<usize> {
    let text = fs::read_to_string(out).ok()?;
    parse_token(text.trim_end()).map(|(n, _)| n)
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A sink writing `out` and `status_file`, started, its first token written.
fn started(issuer: &Issuer, out: &Path, status_file: &Path) -> Pending {
    let status_arg = path_str(status_file);
    let sink = start(&sink_args(issuer, out, &["--status-file", &status_arg]));
    wait_until("the first write", || out.exists());
    sink
}

fn stopped(sink: Pending, signal: &str) -> Run {
    let run = sink.stop(signal, STOP_LIMIT);
    assert_eq!(run.code, 0, "{run:#?}");
    run.assert_stderr_prefixed();
    run.assert_no_secrets(&[]);
    assert_eq!(run.stdout, "", "the sink prints nothing on stdout");
    run
}

#[test]
fn a_reader_never_sees_the_file_missing_empty_partial_expired_or_loosened() {
    let issuer = Issuer::start(Answer::Token { lifetime_ms: 1200 });
    let dir = TempDir::new("sink-reader");
    let out = dir.join("token");
    let sink = start(&sink_args(&issuer, &out, &["--mode", "0640"]));
    wait_until("the first write", || out.exists());

    // The token numbers in the order first seen, and how often FILE was read.
    let mut seen: Vec<usize> = Vec::new();
    let mut opens = 0usize;
    let started = Instant::now();
    while seen.len() < 11 {
        assert!(
            started.elapsed() < 3 * LIMIT,
            "10 refreshes did not come: {seen:?}"
        );
        let before = now_ms();
        let file = File::open(&out)
            .unwrap_or_else(|e| panic!("FILE missing at open {opens} after {seen:?}: {e}"));
        let mode = file.metadata().unwrap().permissions().mode() & 0o777;
        let mut text = String::new();
        (&file).read_to_string(&mut text).unwrap();
        opens += 1;
        let token = text
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("empty or partial FILE: {text:?}"));
        let (n, deadline) = parse_token(token).unwrap_or_else(|| panic!("partial FILE: {text:?}"));
        assert!(before < deadline, "token {n} read after it expired");
        if seen.last() != Some(&n) {
            assert!(
                seen.last().is_none_or(|last| n > *last),
                "{seen:?} then {n}"
            );
            assert_eq!(mode, 0o640, "token {n} was written with mode {mode:o}");
            seen.push(n);
            // Someone loosens it between writes: the next write has --mode again.
            if n % 2 == 0 {
                file.set_permissions(Permissions::from_mode(0o644)).unwrap();
            }
        } else {
            assert!(mode == 0o640 || (n % 2 == 0 && mode == 0o644), "{mode:o}");
        }
        thread::sleep(Duration::from_millis(1));
    }
    let run = stopped(sink, "TERM");
    assert!(opens > 1000, "only {opens} reads");
    let writes = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("ims-token: wrote "))
        .count();
    assert!(writes >= seen.len(), "one line per refresh: {run:#?}");
    assert_eq!(issuer.issued().len(), writes, "a refresh per write");
    dir.assert_no_temp_files();
}

#[test]
fn an_outage_keeps_the_token_while_it_works_then_removes_the_file_without_hammering_ims() {
    let issuer = Issuer::start(Answer::Token { lifetime_ms: 2000 });
    let dir = TempDir::new("sink-outage");
    let (out, status_file) = (dir.join("token"), dir.join("status.json"));
    let sink = started(&issuer, &out, &status_file);
    let first = issuer.issued()[0].token.clone();
    issuer.answer(Answer::Error {
        status: 503,
        code: "temporarily_unavailable",
    });

    wait_until("the failed refresh", || {
        status(&status_file)["file"] == "kept"
    });
    let kept = status(&status_file);
    assert_eq!(kept["ok"], true, "{kept}");
    assert!(
        kept["last_error"].as_str().unwrap().contains("503"),
        "{kept}"
    );
    match fs::read_to_string(&out) {
        Ok(text) => assert_eq!(text, format!("{first}\n")),
        // Only once the token has expired.
        Err(_) => assert!(now_ms() >= issuer.issued()[0].deadline_ms),
    }

    wait_until("the expiry", || status(&status_file)["file"] == "expired");
    assert!(!out.exists(), "an expired token was left in FILE");
    // Asked at the refresh point and once more at expiry; then a minute's pause.
    wait_until("the try at expiry", || {
        status(&status_file)["failures"] == 2
    });
    thread::sleep(Duration::from_millis(500));
    assert_eq!(issuer.requests(), 3, "IMS asked too often");

    let run = stopped(sink, "TERM");
    for says in [
        "refreshing the IMS token failed; using the cached one",
        "expired before a new one could be had",
        "IMS is asked again in 60 s",
    ] {
        assert!(run.stderr.contains(says), "{says:?}: {run:#?}");
    }
    let last = status(&status_file);
    assert_eq!(
        (&last["ok"], &last["running"]),
        (&Value::Bool(false), &Value::Bool(false))
    );
    assert!(
        last["note"].as_str().unwrap().contains("FILE was removed"),
        "{last}"
    );
}

#[test]
fn ims_refusal_removes_the_file_at_once_and_the_status_says_why() {
    let issuer = Issuer::start(Answer::Token { lifetime_ms: 1500 });
    let dir = TempDir::new("sink-refused");
    let (out, status_file) = (dir.join("token"), dir.join("status.json"));
    let sink = started(&issuer, &out, &status_file);
    issuer.answer(Answer::Error {
        status: 401,
        code: "invalid_client",
    });
    // Removed at the refusal, while the token had time left (not at expiry).
    wait_until("the refusal", || status(&status_file)["file"] == "refused");
    assert!(!out.exists());
    let refused = status(&status_file);
    assert_eq!(refused["ok"], false);
    assert!(refused["last_error"]
        .as_str()
        .unwrap()
        .contains("invalid_client"));
    assert_eq!(refused["expires_at"], Value::Null);
    let run = stopped(sink, "TERM");
    assert!(
        run.stderr.contains("IMS refused the credentials, so "),
        "{run:#?}"
    );
}

#[test]
fn sigterm_and_sigint_exit_0_at_once_leaving_the_file() {
    for signal in ["TERM", "INT"] {
        let issuer = Issuer::start(Answer::Token {
            lifetime_ms: 3_600_000,
        });
        let dir = TempDir::new("sink-stop");
        let out = dir.join("token");
        let sink = start(&sink_args(&issuer, &out, &[]));
        wait_until("the first write", || out.exists());
        let before = fs::read_to_string(&out).unwrap();
        let run = stopped(sink, signal);
        assert!(run.stderr.contains("stopping; "), "{run:#?}");
        assert_eq!(fs::read_to_string(&out).unwrap(), before, "SIG{signal}");
    }
    // While IMS keeps a refresh waiting (a 30 s timeout), the sink does not
    // wait for it.
    let issuer = Issuer::start(Answer::Silence);
    let dir = TempDir::new("sink-stop-fetching");
    let out = dir.join("token");
    let sink = start(&sink_args(&issuer, &out, &["--timeout", "30"]));
    wait_until("the request", || issuer.requests() == 1);
    stopped(sink, "TERM");
    assert!(!out.exists());
}

#[test]
fn sighup_reads_a_changed_credentials_file_and_refreshes_now() {
    let issuer = Issuer::start(Answer::Token {
        lifetime_ms: 3_600_000,
    });
    let dir = TempDir::new("sink-hup");
    let out = dir.join("env");
    let mut creds = fixture_json("service-credentials.sample.json");
    let original = creds["integration"]["technicalAccount"]["clientId"]
        .as_str()
        .unwrap()
        .to_owned();
    let creds_path = dir.json("creds.json", &creds);
    let mut args = sink_args(&issuer, &out, &["--format", "env"]);
    args[2] = creds_path.clone();
    let sink = start(&args);
    wait_until("the first write", || out.exists());
    assert_eq!(issuer.issued()[0].client_id, original);

    // The secret is rotated: a new credentials file replaces the old one.
    creds["integration"]["technicalAccount"]["clientId"] = "rotated-client-id".into();
    dir.json("creds.json.new", &creds);
    fs::rename(dir.join("creds.json.new"), &creds_path).unwrap();
    sink.signal("HUP");
    wait_until("the refresh after SIGHUP", || issuer.issued().len() == 2);
    assert_eq!(issuer.issued()[1].client_id, "rotated-client-id");
    wait_until("the new file", || {
        fs::read_to_string(&out).is_ok_and(|t| t.contains("IMS_CLIENT_ID=\"rotated-client-id\""))
    });
    stopped(sink, "TERM");
}

#[test]
fn once_exits_as_a_token_run_does_and_leaves_no_file_when_it_fails() {
    let dir = TempDir::new("sink-once");
    let issuer = Issuer::start(Answer::Token {
        lifetime_ms: 3_600_000,
    });
    let out = dir.join("token");
    let missing_ca = path_str(&dir.join("no-such-ca.pem"));
    let cases: [(Option<Answer>, &[&str], i32); 4] = [
        (None, &[], 0),
        (None, &["--ca-file", &missing_ca], 3),
        (
            Some(Answer::Error {
                status: 401,
                code: "invalid_client",
            }),
            &[],
            4,
        ),
        (
            Some(Answer::Error {
                status: 503,
                code: "temporarily_unavailable",
            }),
            &[],
            5,
        ),
    ];
    for (answer, extra, code) in cases {
        if let Some(answer) = answer {
            issuer.answer(answer);
        }
        let _ = fs::remove_file(&out);
        let sink = start(&sink_args(&issuer, &out, &[&["--once"], extra].concat()));
        let sink = sink.wait();
        // The token run with the same options.
        let mut token_args = sink_args(&issuer, &out, extra);
        token_args.drain(..1);
        let out_at = token_args.iter().position(|a| a == "--out").unwrap();
        token_args.drain(out_at..out_at + 2);
        let token = run::run_cmd(command(&token_args));
        assert_eq!(
            (sink.code, token.code),
            (code, code),
            "{sink:#?}\n{token:#?}"
        );
        if code == 0 {
            let n = token_number(&out).expect("FILE holds a token");
            assert!(n >= 1);
            assert_eq!(sink.stdout, "");
        } else {
            sink.fails(code);
            assert!(!out.exists(), "FILE created by a failed run: {sink:#?}");
        }
    }
    // Without --once, a refusal before the first write ends the sink too.
    issuer.answer(Answer::Error {
        status: 401,
        code: "invalid_client",
    });
    let sink = start(&sink_args(&issuer, &out, &[])).wait();
    assert!(sink.fails(4).contains("invalid_client"), "{sink:#?}");
    assert!(!out.exists());
}

#[test]
fn ready_arrives_on_the_notify_socket_once_the_file_exists() {
    use std::os::linux::net::SocketAddrExt as _;
    use std::os::unix::net::SocketAddr;
    for (i, name) in ["path", "abstract"].into_iter().enumerate() {
        let issuer = Issuer::start(Answer::Token {
            lifetime_ms: 3_600_000,
        });
        let dir = TempDir::new("sink-notify");
        let out = dir.join("token");
        let (socket, address) = if name == "path" {
            let path = dir.join("notify");
            (UnixDatagram::bind(&path).unwrap(), path_str(&path))
        } else {
            let abstract_name = format!("ims-token-test-{}-{i}", std::process::id());
            let address = SocketAddr::from_abstract_name(&abstract_name).unwrap();
            (
                UnixDatagram::bind_addr(&address).unwrap(),
                format!("@{abstract_name}"),
            )
        };
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        let mut command = command(&sink_args(&issuer, &out, &[]));
        command.env("NOTIFY_SOCKET", &address);
        let sink = start_cmd(command);
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a message from the sink");
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(out.exists(), "{name}: {message:?} came before FILE");
        assert!(
            message.starts_with("READY=1\nSTATUS="),
            "{name}: {message:?}"
        );
        stopped(sink, "TERM");
        let n = socket.recv(&mut buf).expect("a message at the end");
        assert_eq!(&buf[..n], b"STOPPING=1", "{name}");
    }
}

/// A process that writes its pid to `pid_file` (by rename) and logs each
/// SIGUSR1 it gets in `log`.
fn consumer(dir: &TempDir, pid_file: &Path, log: &Path) -> Child {
    let script = dir.file(
        "consumer.sh",
        "trap 'echo usr1 >> \"$2\"' USR1\n\
         echo $$ > \"$1.new\" && mv \"$1.new\" \"$1\"\n\
         while :; do sleep 0.05; done\n",
    );
    let child = Command::new("sh")
        .arg(script)
        .arg(pid_file)
        .arg(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("start sh");
    let pid = child.id().to_string();
    wait_until("the consumer's pid", || {
        fs::read_to_string(pid_file).is_ok_and(|p| p.trim() == pid)
    });
    child
}

#[test]
fn the_signal_reaches_the_pid_in_the_pid_file_after_every_write() {
    let issuer = Issuer::start(Answer::Token { lifetime_ms: 800 });
    let dir = TempDir::new("sink-signal");
    let out = dir.join("token");
    let pid_file = dir.join("app.pid");
    let (log_a, log_b) = (dir.join("a.log"), dir.join("b.log"));
    let mut a = consumer(&dir, &pid_file, &log_a);
    let pid_arg = path_str(&pid_file);
    let sink = start(&sink_args(
        &issuer,
        &out,
        &["--signal", "USR1", "--pid-file", &pid_arg],
    ));
    wait_until("two signals to the first consumer", || {
        lines(&log_a).len() == 2
    });
    // The consumer restarts: the pid file now names another process.
    let mut b = consumer(&dir, &pid_file, &log_b);
    wait_until("a signal to the second consumer", || {
        lines(&log_b).len() == 1
    });
    // And then goes away, leaving a stale pid file: a warning, not a crash.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    fs::write(&pid_file, format!("{}\n", gone.id())).unwrap();
    let after = issuer.issued().len();
    wait_until("two writes after that", || {
        token_number(&out).is_some_and(|n| n >= after + 2)
    });
    let run = stopped(sink, "TERM");
    for child in [&mut a, &mut b] {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(lines(&log_a).len(), 2, "the first consumer after the swap");
    assert_eq!(lines(&log_b).len(), 1, "the second consumer");
    let writes = run.stderr.matches("ims-token: wrote ").count();
    let stale = run.stderr.matches("is the pid file stale?").count();
    assert!(stale >= 2, "{run:#?}");
    assert_eq!(
        writes,
        2 + 1 + stale,
        "every write is a signal or a warning"
    );
}

#[test]
fn the_env_format_can_be_sourced_by_sh() {
    // Everything visible ASCII allows, that a shell would read otherwise.
    let token = r#"tok-SECRET-a"b$c`d\e'f;g&h|i$(id)#j"#;
    let server = FakeIms::start(vec![
        Reply::json(200, jwt_success_body(token)),
        Reply::json(200, jwt_success_body(token)),
    ]);
    let dir = TempDir::new("sink-env");
    let (printed, written) = (dir.join("printed.env"), dir.join("written.env"));
    let creds = service_credentials();
    let url = server.url();
    let base = [
        "-c",
        creds.as_str(),
        "--ims",
        url.as_str(),
        "--format",
        "env",
    ];
    let token_run = run::run(&base);
    fs::write(&printed, token_run.ok()).unwrap();
    let out = path_str(&written);
    let sink = run::run(&[&["sink", "--once", "--out", out.as_str()][..], &base].concat());
    assert_eq!(sink.ok(), "");
    assert!(sink.stderr.starts_with("ims-token: wrote "), "{sink:#?}");
    assert_eq!(
        sink.stderr.lines().count(),
        1,
        "one line for the write: {sink:#?}"
    );
    assert_eq!(fs::read(&written).unwrap(), fs::read(&printed).unwrap());

    let account = fixture_json("service-credentials.sample.json");
    let client_id = account["integration"]["technicalAccount"]["clientId"]
        .as_str()
        .unwrap();
    let org = account["integration"]["org"].as_str().unwrap();
    for file in [&printed, &written] {
        let sourced = Command::new("sh")
            .args([
                "-c",
                ". \"$1\" && printf '%s\\n' \"$IMS_ACCESS_TOKEN\" \"$IMS_CLIENT_ID\" \"$IMS_ORG_ID\"",
                "sh",
            ])
            .arg(file)
            .output()
            .unwrap();
        assert!(sourced.status.success(), "{sourced:?}");
        assert_eq!(
            String::from_utf8_lossy(&sourced.stdout),
            format!("{token}\n{client_id}\n{org}\n")
        );
    }
}

#[test]
fn a_planted_symlink_fifo_or_directory_at_file_is_refused() {
    let dir = TempDir::new("sink-planted");
    let victim = dir.file("victim", "keep");
    let issuer = Issuer::start(Answer::Token {
        lifetime_ms: 3_600_000,
    });
    let out = dir.join("token");
    let plant = |what: &str| {
        let _ = fs::remove_file(&out);
        let _ = fs::remove_dir(&out);
        match what {
            "symbolic link" => std::os::unix::fs::symlink(&victim, &out).unwrap(),
            "FIFO" => {
                let made = Command::new("mkfifo").arg(&out).status().unwrap();
                assert!(made.success());
            }
            _ => fs::create_dir(&out).unwrap(),
        }
    };
    for what in ["symbolic link", "FIFO", "directory"] {
        plant(what);
        let run = start(&sink_args(&issuer, &out, &[])).wait();
        let error = run.fails(3);
        assert!(
            error.contains(&format!("is a {what}, not a regular file")),
            "{error}"
        );
    }
    assert_eq!(issuer.requests(), 0, "refused before asking IMS");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");

    // Planted while the sink runs: the next write is refused too.
    let _ = fs::remove_dir(&out);
    let issuer = Issuer::start(Answer::Token { lifetime_ms: 800 });
    let status_file = dir.join("status.json");
    let sink = started(&issuer, &out, &status_file);
    plant("symbolic link");
    wait_until("the refused write", || {
        status(&status_file)["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("is a symbolic link"))
    });
    let run = stopped(sink, "TERM");
    assert!(run.stderr.contains("cannot write "), "{run:#?}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
    assert!(fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
}

#[test]
fn the_command_after_each_write_gets_the_file_never_the_token() {
    let issuer = Issuer::start(Answer::Token { lifetime_ms: 800 });
    let dir = TempDir::new("sink-command");
    let out = dir.join("token");
    let (log, stamp) = (dir.join("command.log"), dir.join("stamp"));
    // The first run hangs: it is killed after --command-timeout.
    let script = format!(
        "printf '%s|%s|%s|%s\\n' \"$IMS_TOKEN_FILE\" \"${{IMS_ACCESS_TOKEN-unset}}\" \
         \"${{IMS_CLIENT_SECRET-unset}}\" \"$1\" >> '{}'\n\
         [ -e '{}' ] || {{ : > '{1}'; exec sleep 20; }}",
        path_str(&log),
        path_str(&stamp)
    );
    let mut args = sink_args(&issuer, &out, &["--command-timeout", "1"]);
    args.extend(["--", "sh", "-c", &script, "sh", "an argument"].map(String::from));
    let mut command = command(&args);
    command
        .env("IMS_ACCESS_TOKEN", "outside-token")
        .env("IMS_CLIENT_SECRET", "outside-secret");
    let sink = start_cmd(command);
    wait_until("two runs of the command", || lines(&log).len() >= 2);
    let run = stopped(sink, "TERM");
    let expected = format!("{}|unset|unset|an argument", path_str(&out));
    for line in lines(&log) {
        assert_eq!(line, expected);
    }
    assert!(
        run.stderr
            .contains("\"sh\" after the write ran longer than 1 s: killed"),
        "{run:#?}"
    );
}

/// Whether `tool` runs; when it does not, the check that needs it says it
/// was skipped (`.ci/run` installs it).
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("{tool} is not installed: skipped");
    }
    found
}

/// The files of `examples/<folder>`, sorted.
fn examples(folder: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(folder);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn the_kubernetes_examples_pass_kubernetes_validate_strict() {
    if !have("kubernetes-validate") {
        return;
    }
    let manifests: Vec<_> = examples("kubernetes")
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(manifests.len() >= 2, "{manifests:?}");
    let checked = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(&manifests)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&checked.stdout).into_owned()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{report}");
    for line in report.lines() {
        assert!(
            line.starts_with("INFO ") && line.contains(" passed "),
            "{report}"
        );
    }
    for kind in ["pod/", "deployment/ims-token-sink", "role/", "rolebinding/"] {
        assert!(report.contains(kind), "{kind}: {report}");
    }
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    if !have("systemd-analyze") {
        return;
    }
    // As written, but for where this build's ims-token is (verify wants the
    // program to be there).
    let dir = TempDir::new("sink-units");
    let mut units = Vec::new();
    for file in examples("systemd") {
        let text = fs::read_to_string(&file).unwrap();
        assert!(!text.contains(run::BIN));
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        units.push(dir.file(&name, &text.replace("/usr/local/bin/ims-token", run::BIN)));
    }
    assert!(
        units.iter().any(|u| u.ends_with("ims-token-sink.service")),
        "{units:?}"
    );
    let checked = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    // Warnings (an unknown key, say) are no failure to verify: none may show.
    let report = String::from_utf8_lossy(&checked.stdout).into_owned()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success() && report.is_empty(), "{report}");
}

#[test]
fn what_the_sink_cannot_keep_is_refused_before_asking_ims() {
    let issuer = Issuer::start(Answer::Token {
        lifetime_ms: 3_600_000,
    });
    let dir = TempDir::new("sink-refuses");
    let creds = dir.file(
        "creds.json",
        &fs::read_to_string(service_credentials()).unwrap(),
    );
    let local = dir.file("local.json", r#"{"accessToken": "opaque-local-token"}"#);
    let no_folder = dir.join("no-such-folder").join("token");
    let cases: [(&str, &Path, &str); 3] = [
        (
            &creds,
            &no_folder,
            "does not exist (the sink does not create it)",
        ),
        (&creds, Path::new(&creds), "is the credentials file"),
        (
            &local,
            &dir.join("token"),
            "a local development token cannot be refreshed",
        ),
    ];
    for (credentials, out, says) in cases {
        let mut args = sink_args(&issuer, out, &[]);
        args[2] = credentials.to_owned();
        let run = start(&args).wait();
        let error = run.fails(3);
        assert!(error.contains(says), "{error}");
    }
    assert_eq!(issuer.requests(), 0);
    assert_eq!(
        fs::read_to_string(&creds).unwrap(),
        fs::read_to_string(service_credentials()).unwrap()
    );
}

#[test]
fn a_failing_command_or_unreadable_credentials_leave_the_sink_running() {
    let issuer = Issuer::start(Answer::Token {
        lifetime_ms: 3_600_000,
    });
    let dir = TempDir::new("sink-goes-on");
    let out = dir.join("token");
    // --once runs COMMAND itself: its warning comes before the exit.
    let mut args = sink_args(&issuer, &out, &["--once"]);
    args.extend(["--", "/no/such/command"].map(String::from));
    let once = start(&args).wait();
    assert_eq!(once.code, 0, "{once:#?}");
    assert!(
        once.stderr
            .contains("cannot run \"/no/such/command\" after the write: command not found"),
        "{once:#?}"
    );
    // A command that fails, then credentials broken before a SIGHUP.
    let creds = dir.file(
        "creds.json",
        &fs::read_to_string(service_credentials()).unwrap(),
    );
    let mut args = sink_args(&issuer, &out, &[]);
    args[2] = creds.clone();
    args.extend(["--", "sh", "-c", "exit 3"].map(String::from));
    let first = issuer.issued().len() + 1;
    let sink = start(&args);
    wait_until("the first write", || token_number(&out) == Some(first));
    fs::write(&creds, "{}").unwrap();
    sink.signal("HUP");
    // Refreshed all the same, with the credentials read before.
    wait_until("the refresh after SIGHUP", || {
        token_number(&out) == Some(first + 1)
    });
    let run = stopped(sink, "TERM");
    for says in [
        "\"sh\" after the write failed: exit status: 3",
        "cannot read the credentials again, the ones read before are used: ",
    ] {
        assert!(run.stderr.contains(says), "{says}: {run:#?}");
    }
}
