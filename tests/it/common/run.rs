//! The `ims-token` command, started the way a script would start it and
//! judged the way a script would see it: exit code, stdout, stderr.
//!
//! Every run gets stdin null (unless a test feeds it), piped output read on
//! threads of their own, no proxy and no credentials variable from the
//! test's environment, and is killed after [`RUN_LIMIT`].

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{collect, collected, fixture_json, read_fixture, wait_bounded, PROXY_VARS};

/// The command under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ims-token");

/// The credentials variable the command reads; it and [`PROXY_VARS`] are
/// removed unless a test sets them.
pub const CREDENTIALS_VAR: &str = "IMS_CREDENTIALS";

/// Longest any single run may take before it is killed.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// Every access token a fake of the command's tests issues contains this,
/// so a failing run can be checked for any of them.
pub const TOKEN_MARK: &str = "tok-SECRET";

/// One finished run of the command.
#[derive(Debug)]
pub struct Run {
    /// The exit code; -1 when a signal ended the run.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// A started run whose output is being collected.
pub struct Pending {
    pub child: Child,
    out: Option<JoinHandle<Vec<u8>>>,
    err: Option<JoinHandle<Vec<u8>>>,
    pub started: Instant,
    what: String,
}

/// `ims-token ARGS` without the proxy and credentials variables, stdin
/// null, stdout and stderr piped.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    cleaned(command)
}

/// `PROGRAM BEFORE... ims-token ARGS...`, set up as [`command`]: the
/// command started through another one (`unshare`, `setpriv`).
pub fn command_through(program: &str, before: &[&str], args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(before).arg(BIN).args(args);
    cleaned(command)
}

fn cleaned(mut command: Command) -> Command {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in PROXY_VARS.into_iter().chain([CREDENTIALS_VAR]) {
        command.env_remove(var);
    }
    command
}

/// Starts `command`, writing `stdin` (when given) to it on a thread.
pub fn start(mut command: Command, stdin: Option<&[u8]>) -> Pending {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let what = format!("{command:?}");
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn ims-token");
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let bytes = bytes.to_vec();
        thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let out = collect(child.stdout.take());
    let err = collect(child.stderr.take());
    Pending {
        child,
        out,
        err,
        started,
        what,
    }
}

impl Pending {
    /// Waits for the child, killing it after [`RUN_LIMIT`]; it must not
    /// have panicked.
    pub fn wait(self) -> Run {
        let started = self.started;
        self.wait_from(started, RUN_LIMIT)
    }

    /// Sends the signal `name` (as `kill -s` takes it) to the child.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("sh")
            .args(["-c", "kill -s \"$1\" \"$2\"", "kill", name])
            .arg(self.child.id().to_string())
            .status()
            .expect("run sh");
        assert!(sent.success(), "kill -s {name} {}", self.child.id());
    }

    /// Sends the signal `name` and waits for the child to end, at most
    /// `limit` from now: a child still running then is killed and the test
    /// fails.
    pub fn stop(self, name: &str, limit: Duration) -> Run {
        self.signal(name);
        self.wait_from(Instant::now(), limit)
    }

    fn wait_from(mut self, from: Instant, limit: Duration) -> Run {
        let status = wait_bounded(&mut self.child, from, limit, &self.what);
        let elapsed = self.started.elapsed();
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: collected(self.out.take()),
            stderr: collected(self.err.take()),
            elapsed,
        };
        run.assert_no_panic();
        run
    }
}

/// `ims-token ARGS`, finished.
pub fn run(args: &[&str]) -> Run {
    run_cmd(command(args))
}

/// `command`, finished.
pub fn run_cmd(command: Command) -> Run {
    start(command, None).wait()
}

/// `ims-token ARGS` with `stdin` on its stdin, finished.
pub fn run_stdin(args: &[&str], stdin: &str) -> Run {
    start(command(args), Some(stdin.as_bytes())).wait()
}

/// `runs` runs of `ims-token ARGS` started at once, all finished.
pub fn runs_at_once(args: &[&str], runs: usize) -> Vec<Run> {
    let pending: Vec<Pending> = (0..runs).map(|_| start(command(args), None)).collect();
    pending.into_iter().map(Pending::wait).collect()
}

impl Run {
    /// No path of the command may panic (exit 101), die from a signal or
    /// print a panic message.
    pub fn assert_no_panic(&self) {
        assert_ne!(self.code, 101, "the command panicked: {self:#?}");
        assert_ne!(self.code, -1, "the command died from a signal: {self:#?}");
        for marker in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
            assert!(
                !self.stderr.contains(marker),
                "panic message on stderr: {self:#?}"
            );
        }
    }

    /// Exit 0 (warnings allowed); returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self.assert_stderr_prefixed();
        &self.stdout
    }

    /// Exit 0 with nothing on stderr; returns stdout.
    pub fn quiet(&self) -> &str {
        assert_eq!((self.code, self.stderr.as_str()), (0, ""), "{self:#?}");
        &self.stdout
    }

    /// Exit 0, stdout exactly `line` and a newline, stderr empty.
    pub fn prints(&self, line: &str) {
        assert_eq!(self.ok(), format!("{line}\n"), "{self:#?}");
        assert_eq!(self.stderr, "", "stderr should be empty: {self:#?}");
    }

    /// Every stderr line starts with `ims-token:`.
    pub fn assert_stderr_prefixed(&self) {
        let lines: Vec<&str> = self.stderr.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            assert!(
                line.starts_with("ims-token: "),
                "stderr line {i} is not prefixed 'ims-token: ': {self:#?}"
            );
        }
    }

    /// Exit `code`, empty stdout, one prefixed error line on stderr (plus
    /// warnings), no secret anywhere. Returns the error line.
    pub fn fails(&self, code: i32) -> String {
        assert_eq!(self.code, code, "wrong exit code: {self:#?}");
        assert_eq!(
            self.stdout, "",
            "stdout must be empty on failure: {self:#?}"
        );
        self.assert_stderr_prefixed();
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.starts_with("ims-token: warning:"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one error line: {self:#?}"
        );
        self.assert_no_secrets(&[]);
        errors[0].to_owned()
    }

    /// [`Run::fails`] with no warning either: the error line is all of stderr.
    pub fn fails_alone(&self, code: i32) -> String {
        let line = self.fails(code);
        assert_eq!(self.stderr.lines().count(), 1, "{self:#?}");
        line
    }

    /// Neither stream holds a fixture secret, a key line, a fake's token
    /// or any of `extra`.
    pub fn assert_no_secrets(&self, extra: &[String]) {
        let both = format!("{}\n{}", self.stdout, self.stderr);
        for secret in fixture_secrets().iter().chain(extra) {
            assert!(
                !both.contains(secret.as_str()),
                "output leaks secret {secret:?}: {self:#?}"
            );
        }
        assert!(
            !both.contains(TOKEN_MARK),
            "output leaks a token: {self:#?}"
        );
    }
}

/// The fixtures' client secrets and every base64 line of the sample key.
pub fn fixture_secrets() -> &'static [String] {
    static SECRETS: OnceLock<Vec<String>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let service = fixture_json("service-credentials.sample.json");
        let oauth = fixture_json("oauth-credentials.sample.json");
        let secret = |creds: &serde_json::Value| {
            let secret = &creds["integration"]["technicalAccount"]["clientSecret"];
            secret.as_str().expect("a client secret").to_owned()
        };
        let mut all = vec![secret(&service), secret(&oauth)];
        // The Developer Console project's and the AEM API's credentials.
        all.extend(
            [
                "p8e-SAMPLE-console-secret-0a1b2c3d4e5f6789",
                "p8e-SAMPLE-console-second-secret-9f8e7d6c",
                "p8e-SAMPLE-console-jwt-secret-5566778899",
                "p8e-SAMPLE-console-webapp-secret-abcdef",
                "p8e-SAMPLE-aem-api-secret-13579bdf02468ace",
            ]
            .map(String::from),
        );
        let pem = service["integration"]["privateKey"].as_str().unwrap();
        let pkcs8 = read_fixture("sample-key.pkcs8.pem");
        for line in pem.lines().chain(pkcs8.lines()) {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with("-----") {
                all.push(line.to_owned());
            }
        }
        assert!(all.len() > 20, "the key lines were found");
        all
    })
}
