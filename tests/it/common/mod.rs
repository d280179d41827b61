//! What several areas of the integration tests need, none of it using the
//! `ims_token` library: fixtures, temp dirs, the proxy variables, a bounded
//! wait for a child process, a test rerun alone in a process of its own, a
//! polling accept loop and a stop-on-drop server thread, the texts of an
//! error chain, the secrets of the fixtures, and a clock a test moves ahead.
//!
//! - [`fake_ims`]: the fake Adobe IMS, an independent referee;
//! - [`fake_api`]: a fake Adobe API that refuses the tokens it is told to;
//! - [`http`]: HTTP/1.1 bytes, just enough (a request read, a response
//!   built) for the fake and for the other small servers of the tests;
//! - [`jwt`]: compact JWTs taken apart and put together by hand, and an
//!   `openssl` check of a signature;
//! - [`run`]: the `ims-token` command, started and judged;
//! - [`proxy`]: a logging HTTP proxy that tunnels, refuses or stays silent.
//! - [`issuer`]: an IMS that issues short-lived tokens as long as it is
//!   told to, for the sink.
#![allow(dead_code)]

pub mod fake_api;
pub mod fake_ims;
pub mod http;
pub mod issuer;
pub mod jwt;
pub mod proxy;
pub mod run;

pub use fake_api::*;
pub use fake_ims::*;
pub use http::*;
pub use jwt::*;

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::Value;

/// How often a server thread looks at its stop flag.
pub const POLL: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------
// Fixtures

/// Path of `tests/fixtures/<name>`.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// Contents of `tests/fixtures/<name>`; panics with the path if unreadable.
pub fn read_fixture(name: &str) -> String {
    let path = fixture_path(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// The sample key fixture `name` (`sample-key.pkcs1.pem` or
/// `sample-key.pkcs8.pem`) with one byte of its second prime changed:
/// well-formed DER of the right size whose numbers make no RSA key
/// (p·q ≠ n), which only the precomputation before the first signature
/// can tell.
pub fn sample_key_with_a_wrong_prime(name: &str) -> String {
    let (_, pkcs1) = pem_der(&read_fixture("sample-key.pkcs1.pem"));
    // RSAPrivateKey: SEQUENCE { version, n, e, d, p, q, ... } of INTEGERs.
    let mut rest = &pkcs1[4..]; // tag and a two-byte long-form length
    let mut integers = Vec::new();
    while integers.len() < 6 {
        assert_eq!(rest[0], 0x02, "an INTEGER");
        let (len, head) = match rest[1] {
            n if n < 0x80 => (usize::from(n), 2),
            0x81 => (usize::from(rest[2]), 3),
            _ => (usize::from(rest[2]) << 8 | usize::from(rest[3]), 4),
        };
        integers.push(rest[head..head + len].to_vec());
        rest = &rest[head + len..];
    }
    let q = &integers[5];
    let (label, mut der) = pem_der(&read_fixture(name));
    let at = der
        .windows(q.len())
        .position(|w| w == &q[..])
        .expect("the second prime is in the key");
    der[at + q.len() / 2] ^= 0x10;
    pem_text(&label, &der)
}

/// The label and DER of a PEM text.
pub fn pem_der(pem: &str) -> (String, Vec<u8>) {
    let label = pem
        .lines()
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .unwrap()
        .to_owned();
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM base64");
    (label, der)
}

/// A PEM text of `label` and `der`, in lines of 64.
pub fn pem_text(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A port on 127.0.0.1 that nothing listens on (for connection-refused tests).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    since.as_secs() as i64
}

/// A clock for `TokenProvider::with_clock`: the system's, moved ahead when
/// a test says, so that a provider's token becomes due or expires without a
/// sleep. Clones share the offset.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicU64>);

impl TestClock {
    /// The time as the provider sees it: now, plus every `advance` so far.
    pub fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_millis(self.0.load(Ordering::SeqCst))
    }

    /// The clock to give the provider.
    pub fn reader(&self) -> impl Fn() -> SystemTime + Send + Sync + 'static {
        let clock = self.clone();
        move || clock.now()
    }

    /// Moves the clock `by` ahead, as a sleep would.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).expect("a test's advance fits in u64 ms");
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// The civil date (year, month 1-12, day 1-31) of a day counted from
/// the Unix epoch (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The day counted from the Unix epoch of a civil date; the inverse of
/// [`civil_from_days`].
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The fixture `name` parsed as JSON; panics with the name if it is not.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&read_fixture(name))
        .unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"))
}

/// `path` as a `String`; panics if it is not UTF-8.
pub fn path_str(path: &Path) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}

/// The README's section (`### ` heading) whose title starts with `title`,
/// and the text of its fenced blocks of `language`, in order.
pub fn readme_blocks(title: &str, language: &str) -> Vec<String> {
    let readme =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("the README");
    let section = readme
        .split("\n### ")
        .find(|s| s.starts_with(title))
        .unwrap_or_else(|| panic!("no section '{title}' in the README"));
    section
        .split(&format!("```{language}\n"))
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or_default().to_owned())
        .collect()
}

/// Changes the command's cache file at `path` with `edit`, and writes it
/// back as the command writes it: its `ims_token_cache` marker first (the
/// file keeps its mode 0600).
pub fn edit_cache(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut json: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut json);
    let version = json
        .as_object_mut()
        .unwrap()
        .remove("ims_token_cache")
        .unwrap();
    let rest = json.to_string();
    fs::write(
        path,
        format!("{{\"ims_token_cache\":{version},{}", &rest[1..]),
    )
    .unwrap();
}

// ---------------------------------------------------------------------------
// Temp dirs

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `ims-token-<test binary>-<pid>-<tag>-<n>`.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!(
            "ims-token-{}-{}-{tag}-{n}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        );
        let dir = std::env::temp_dir().join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `text` to `name` in the dir; returns the file's path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.join(name);
        fs::write(&path, text).expect("write temp file");
        path_str(&path)
    }

    /// Writes `value` as pretty JSON to `name` in the dir; returns its path.
    pub fn json(&self, name: &str, value: &Value) -> String {
        self.file(name, &serde_json::to_string_pretty(value).unwrap())
    }

    /// No name in the dir looks like a leftover temp file.
    pub fn assert_no_temp_files(&self) {
        for entry in fs::read_dir(&self.0).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".tmp"), "temp file left behind: {name}");
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// The environment and child processes

/// The proxy variables ureq and the library read (any order).
pub const PROXY_VARS: [&str; 8] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Reads a child's pipe to the end on a thread of its own.
pub fn collect(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    pipe.map(|mut p| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = p.read_to_end(&mut buf);
            buf
        })
    })
}

/// The text a [`collect`] thread read, lossily decoded ("" for no pipe).
pub fn collected(handle: Option<JoinHandle<Vec<u8>>>) -> String {
    handle
        .map(|h| String::from_utf8_lossy(&h.join().unwrap()).into_owned())
        .unwrap_or_default()
}

/// Waits for the child started at `started`; kills it and panics, naming
/// it `what`, once it has run longer than `limit`.
pub fn wait_bounded(
    child: &mut Child,
    started: Instant,
    limit: Duration,
    what: &str,
) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The variable that marks a child process of [`in_a_process_of_its_own`]:
/// it holds the name of the one test the child runs.
const ALONE_VAR: &str = "IMS_TOKEN_TEST_ALONE";

/// Longest a test rerun by [`in_a_process_of_its_own`] may take.
const ALONE_LIMIT: Duration = Duration::from_secs(60);

/// For a test that changes what the whole process shares (its environment):
/// all the tests share this one, so the test runs again, alone, in a child
/// process of this test binary. In that child this returns true and the
/// test goes on; in the parent it waits for the child, fails unless the test
/// ran and passed there, and returns false: the test returns.
///
/// The test is found by the name of its thread, which libtest names after
/// the test.
pub fn in_a_process_of_its_own() -> bool {
    let name = thread::current()
        .name()
        .expect("a test thread is named after its test")
        .to_owned();
    if std::env::var_os(ALONE_VAR).is_some_and(|v| v == name.as_str()) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = std::process::Command::new(exe)
        .args([name.as_str(), "--exact", "--test-threads=1"])
        .env(ALONE_VAR, &name)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the test binary again");
    let (out, err) = (collect(child.stdout.take()), collect(child.stderr.take()));
    let status = wait_bounded(&mut child, Instant::now(), ALONE_LIMIT, &name);
    let (out, err) = (collected(out), collected(err));
    assert!(
        status.success() && out.contains("test result: ok. 1 passed"),
        "{name}, run alone: {status}\n{out}\n{err}"
    );
    false
}

// ---------------------------------------------------------------------------
// Server threads

/// Next connection on the non-blocking `listener`, polling while
/// `keep_going()` holds; None once it does not.
pub fn accept_polling(listener: &TcpListener, keep_going: impl Fn() -> bool) -> Option<TcpStream> {
    while keep_going() {
        match listener.accept() {
            Ok((tcp, _)) => return Some(tcp),
            Err(_) => thread::sleep(POLL),
        }
    }
    None
}

/// A background server thread, told to stop and joined when dropped.
pub struct ServerThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve` on a thread named `name`; `serve` gets the stop flag,
    /// set when this is dropped, and should end soon after.
    pub fn spawn(
        name: String,
        serve: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
    ) -> ServerThread {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name(name)
            .spawn(move || serve(flag))
            .expect("spawn a server thread");
        ServerThread {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Errors

/// Display and Debug of the error and of its whole source chain, in order.
pub fn error_texts(e: &dyn std::error::Error) -> Vec<String> {
    let mut texts = vec![format!("{e}"), format!("{e:?}")];
    let mut source = e.source();
    while let Some(s) = source {
        texts.push(format!("{s}"));
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    texts
}
