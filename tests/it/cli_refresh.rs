//! The command's cache on bad days: IMS down while the cached token still
//! works, a lock held by a stuck run, a cache hit with a broken CA setting.

use crate::common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::proxy::{proxied_ims, proxied_url, LoggingProxy, Mode};
use common::run::{command, run, start, Pending, Run};
use common::{edit_cache, fixture_path, now_secs, oauth_reply, FakeIms, Gate, Reply, TempDir};

fn oauth_token(token: &str) -> Reply {
    oauth_reply(token, 86_399)
}

/// Moves the cached token to `left` seconds before expiry, within the margin.
fn age_cache(path: &Path, left: i64) {
    edit_cache(path, |json| {
        json["received_at"] = (now_secs() - 86_000).into();
        json["expires_at"] = (now_secs() + left).into();
    });
}

/// Polls until `ready()` holds, for at most 2 s: a test that holds IMS's
/// reply while runs get to a point opens the gate then, or after 2 s if it
/// cannot tell (as a fixed delay would have).
fn until_ready(mut ready: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(2);
    while !ready() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether the process `pid` has `path` open (by its links in /proc);
/// false when /proc cannot tell.
fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

/// How many of the started runs have ended.
fn ended(runs: &mut [Pending]) -> usize {
    runs.iter_mut()
        .filter_map(|p| p.child.try_wait().ok().flatten())
        .count()
}

/// Another process holding the lock on a file: `flock(1)`, until this is
/// dropped and it has ended. Not a lock of this process: a child that
/// another test starts has a copy of every file this process has open until
/// it runs its program, which would hold the lock a moment after this
/// process let go of it.
struct LockHolder(std::process::Child);

impl LockHolder {
    fn hold(path: &Path) -> LockHolder {
        use std::io::BufRead as _;
        use std::process::{Command, Stdio};
        let mut child = Command::new("flock")
            .args(["--exclusive", "--close"])
            .arg(path)
            .args(["-c", "echo locked && exec cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run flock (util-linux)");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("flock's stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "locked\n", "flock did not take the lock");
        LockHolder(child)
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        // cat ends at the end of its input, then flock, and the lock is free.
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

fn token_args<'a>(url: &'a str, cache: &'a str) -> Vec<&'a str> {
    vec![
        "--ims",
        url,
        "--cache",
        cache,
        "--retries",
        "0",
        "--timeout",
        "2",
    ]
}

#[test]
fn a_cached_token_that_still_works_is_used_while_ims_is_down() {
    let dir = TempDir::new("down");
    let cache = dir.join("token");
    let cache_arg = cache.to_str().unwrap();
    let creds = fixture_path("oauth-credentials.sample.json");
    let server = FakeIms::start(vec![
        oauth_token("tok-cached"),
        Reply::ims_error(503, "temporarily_unavailable", "down"),
        Reply::ims_error(503, "temporarily_unavailable", "down"),
    ]);
    let url = server.url();
    let mut args = token_args(&url, cache_arg);
    args.extend(["-c", creds.to_str().unwrap()]);

    assert_eq!(run(&args).stdout, "tok-cached\n");
    age_cache(&cache, 300);
    let out = run(&args);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "tok-cached\n");
    let stderr = out.stderr.as_str();
    assert!(
        stderr.starts_with(
            "ims-token: warning: refreshing the IMS token failed; using the cached one"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("503"), "{stderr}");
    assert_eq!(server.hits(), 2, "the refresh was not tried");

    // Once it has expired there is nothing to fall back on: retry later.
    age_cache(&cache, 0);
    let out = run(&args);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_lock_held_by_a_stuck_run_delays_but_does_not_hang() {
    let dir = TempDir::new("lock");
    let cache = dir.join("token");
    let creds = fixture_path("oauth-credentials.sample.json");
    let server = FakeIms::start(vec![oauth_token("tok-unlocked")]);
    // A "stuck run": this process holds the lock and never lets go.
    let lock = fs::File::create(dir.join("token.lock")).unwrap();
    lock.lock().unwrap();

    let url = server.url();
    let mut args = token_args(&url, cache.to_str().unwrap());
    // A timeout short enough to keep the wait short, long enough for the
    // fetch after it to succeed on a busy machine.
    args.extend(["-c", creds.to_str().unwrap(), "--timeout", "0.4"]);
    let started = Instant::now();
    let out = run(&args);
    let waited = started.elapsed();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "tok-unlocked\n");
    assert!(out.stderr.as_str().contains("cannot lock the cache"));
    // One attempt of 0.4 s and as long again (at most 5 s more): the run
    // waited, then went on.
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    drop(lock);
}

#[test]
fn a_cache_hit_does_not_hide_broken_network_settings() {
    // An IMS that is not loopback, so that a proxy applies to it: the
    // cache is filled through the tests' proxy.
    let dir = TempDir::new("hit");
    let cache = dir.join("token");
    let creds = fixture_path("oauth-credentials.sample.json");
    let ca = fixture_path("tls/ca.pem");
    let proxy = LoggingProxy::start(Mode::Forward);
    let server = proxied_ims(vec![oauth_token("tok-hit")]);
    let url = proxied_url(&server);
    let mut args = token_args(&url, cache.to_str().unwrap());
    args.extend([
        "-c",
        creds.to_str().unwrap(),
        "--ca-file",
        ca.to_str().unwrap(),
    ]);
    let with_env = |vars: &[(&str, &str)]| {
        let mut command = common::run::command(&args);
        command.envs(vars.iter().copied());
        common::run::run_cmd(command)
    };
    let proxy_url = proxy.url();
    with_env(&[("HTTPS_PROXY", &proxy_url)]).prints("tok-hit");

    // A broken CA file or proxy setting is exit 3 even while the cache
    // holds a good token: otherwise it would surface a day later.
    let mut broken = args.clone();
    broken.extend(["--ca-file", "/nonexistent/ca.pem"]);
    let m = run(&broken).fails(3);
    assert!(m.contains("/nonexistent/ca.pem"), "{m}");
    let socks = "socks5://127.0.0.1:1";
    let m = with_env(&[("HTTPS_PROXY", socks)]).fails(3);
    assert!(m.contains("$HTTPS_PROXY is a SOCKS proxy"), "{m}");
    let m = with_env(&[("ALL_PROXY", socks)]).fails(3);
    assert!(m.contains("$ALL_PROXY is a SOCKS proxy"), "{m}");
    // A SOCKS ALL_PROXY that HTTPS_PROXY wins over, or for a host NO_PROXY
    // lists, is no error: the cache hits.
    with_env(&[("ALL_PROXY", socks), ("HTTPS_PROXY", &proxy_url)]).prints("tok-hit");
    with_env(&[("ALL_PROXY", socks), ("NO_PROXY", "ims.test")]).prints("tok-hit");
    // A good one still hits the cache.
    run(&args).prints("tok-hit");
    assert_eq!(server.hits(), 1);
    assert_eq!(proxy.connections(), 1);
}

#[test]
fn huge_timeouts_are_usage_errors() {
    let creds = fixture_path("oauth-credentials.sample.json");
    for flag in ["--timeout", "--connect-timeout"] {
        let out = run(&["-c", creds.to_str().unwrap(), flag, "18446744073709551615"]);
        assert_eq!(out.code, 2, "{flag}: {out:?}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn twenty_runs_during_an_outage_make_one_retry_cycle() {
    let dir = TempDir::new("outage");
    let cache = dir.join("token");
    let creds = fixture_path("oauth-credentials.sample.json");
    let gate = Gate::new();
    let mut script = vec![
        oauth_token("tok-cached"),
        Reply::ims_error(500, "server_error", "down").held_by(&gate),
    ];
    script.extend((0..30).map(|_| Reply::ims_error(500, "server_error", "down")));
    let server = FakeIms::start(script);
    let url = server.url();
    let args = [
        "--ims",
        &url,
        "--cache",
        cache.to_str().unwrap(),
        "-c",
        creds.to_str().unwrap(),
        "--retries",
        "1",
        "--timeout",
        "2",
    ];
    assert_eq!(run(&args).stdout, "tok-cached\n");
    age_cache(&cache, 300);

    let mut pending: Vec<Pending> = (0..20).map(|_| start(command(&args), None)).collect();
    // IMS answers the refresh's first attempt once the other runs have ended.
    until_ready(|| server.requests().len() == 2 && ended(&mut pending) == 19);
    gate.open();
    let runs: Vec<Run> = pending.into_iter().map(Pending::wait).collect();
    for out in &runs {
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.stdout, "tok-cached\n", "{out:?}");
    }
    // The run that refreshed says why it used the cached token; the others
    // used it while that run refreshed, or in the pause after.
    let warned = runs
        .iter()
        .filter(|out| out.stderr.as_str().contains("using the cached one"))
        .count();
    assert!(warned >= 1, "{runs:?}");
    // The first token, then at most one cycle of 1 + retries attempts.
    assert!(server.hits() <= 1 + 2, "{} requests", server.hits());
    // Within the 30 s pause a later run does not ask IMS either.
    let hits = server.hits();
    assert_eq!(run(&args).stdout, "tok-cached\n");
    assert_eq!(server.hits(), hits);
    dir.assert_no_temp_files();
}

#[test]
fn runs_waiting_on_a_failed_refresh_get_its_error() {
    let dir = TempDir::new("shared-failure");
    let cache = dir.join("token");
    let creds = fixture_path("oauth-credentials.sample.json");
    let gate = Gate::new();
    let server = FakeIms::start(vec![
        Reply::ims_error(503, "temporarily_unavailable", "slow-and-down").held_by(&gate),
        oauth_token("tok-later"),
    ]);
    let url = server.url();
    let mut args = token_args(&url, cache.to_str().unwrap());
    // The held reply must come within the timeout.
    args.extend(["-c", creds.to_str().unwrap(), "--timeout", "10"]);

    let mut pending: Vec<Pending> = (0..10).map(|_| start(command(&args), None)).collect();
    // IMS answers once every run has found no token and has the lock file
    // open: one asks IMS, the others wait for the lock.
    let lock = dir.join("token.lock");
    until_ready(|| {
        let lock = fs::canonicalize(&lock).unwrap_or_default();
        server.requests().len() == 1 && pending.iter_mut().all(|p| has_open(p.child.id(), &lock))
    });
    gate.open();
    let runs: Vec<Run> = pending.into_iter().map(Pending::wait).collect();
    for out in &runs {
        assert_eq!(out.code, 5, "{out:?}");
        assert!(out.stdout.is_empty());
        let stderr = out.stderr.as_str();
        assert!(stderr.contains("slow-and-down"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    assert_eq!(server.hits(), 1, "the waiting runs asked IMS themselves");
    // A run that starts after the failure asks IMS again.
    let out = run(&args);
    assert_eq!(out.stdout, "tok-later\n", "{out:?}");
    assert_eq!(server.hits(), 2);
}

#[test]
fn a_refused_refresh_drops_the_cached_token_and_runs_meanwhile_use_it() {
    // While one run refreshes, the others print the token that still works
    // (no run waits while one exists). IMS's refusal then drops it from the
    // cache, as the provider drops it, and the next run asks IMS.
    let dir = TempDir::new("refused");
    let cache = dir.join("token");
    let creds = fixture_path("oauth-credentials.sample.json");
    let gate = Gate::new();
    let server = FakeIms::start(vec![
        oauth_token("tok-refused"),
        Reply::ims_error(401, "invalid_client", "rotated").held_by(&gate),
        oauth_token("tok-fixed"),
        oauth_token("tok-unused"),
    ]);
    let url = server.url();
    let mut args = token_args(&url, cache.to_str().unwrap());
    args.extend(["-c", creds.to_str().unwrap()]);
    assert_eq!(run(&args).stdout, "tok-refused\n");
    age_cache(&cache, 300);
    let mut pending: Vec<Pending> = (0..5).map(|_| start(command(&args), None)).collect();
    // IMS refuses once the refresh is asked for and the other runs have
    // ended.
    until_ready(|| server.requests().len() == 2 && ended(&mut pending) == 4);
    gate.open();
    let runs: Vec<Run> = pending.into_iter().map(Pending::wait).collect();
    let refused: Vec<_> = runs.iter().filter(|out| out.code == 4).collect();
    assert_eq!(refused.len(), 1, "{runs:?}");
    assert!(refused[0].stdout.is_empty() && refused[0].stderr.as_str().contains("rotated"));
    for out in runs.iter().filter(|out| out.code != 4) {
        assert_eq!(out.code, 0, "{out:?}");
        // A run that started after the refusal finds no token and asks IMS.
        assert!(
            out.stdout == "tok-refused\n" || out.stdout == "tok-fixed\n",
            "{out:?}"
        );
    }
    assert_eq!(run(&args).stdout, "tok-fixed\n");
    assert!(server.hits() <= 3, "{} requests", server.hits());
}

#[test]
fn a_cache_of_an_earlier_version_is_replaced_quietly() {
    // The format before the marker: the fields in serde_json's order.
    let dir = TempDir::new("legacy");
    let cache = dir.join("token");
    let creds = fixture_path("oauth-credentials.sample.json");
    let server = FakeIms::start(vec![oauth_token("tok-new"), oauth_token("tok-unused")]);
    let url = server.url();
    let mut args = token_args(&url, cache.to_str().unwrap());
    args.extend(["-c", creds.to_str().unwrap()]);
    let old = serde_json::json!({
        "access_token": "tok-old-format", "expires_at": now_secs() + 86_000,
        "key": "0123456789abcdef".repeat(4), "received_at": now_secs() - 60,
        "token_type": "bearer", "version": 1,
    });
    fs::write(&cache, old.to_string()).unwrap();
    run(&args).prints("tok-new");
    let text = fs::read_to_string(&cache).unwrap();
    assert!(text.starts_with("{\"ims_token_cache\":1,"), "{text}");
    // And it is used from then on.
    run(&args).prints("tok-new");
    assert_eq!(server.hits(), 1);
}

#[test]
fn a_tls_failure_at_refresh_keeps_the_cached_token_as_the_provider_does() {
    // One refresh rule for the command and the provider: only IMS's refusal
    // drops a working token. A CA that changed under a corporate proxy is
    // fixed in the configuration, but until the token expires it still works.
    let dir = TempDir::new("tls-refresh");
    let cache = dir.join("token");
    let creds = fixture_path("oauth-credentials.sample.json");
    let server = FakeIms::start_tls(
        vec![oauth_token("tok-tls"), oauth_token("tok-unused")],
        fixture_path("tls/server.pem"),
        fixture_path("tls/server.key"),
    );
    let url = server.url();
    let mut args = token_args(&url, cache.to_str().unwrap());
    args.extend(["-c", creds.to_str().unwrap()]);
    let ca = fixture_path("tls/ca.pem");
    let mut trusting = args.clone();
    trusting.extend(["--ca-file", ca.to_str().unwrap()]);
    run(&trusting).prints("tok-tls");
    age_cache(&cache, 300);

    // Without the CA, IMS's certificate is not trusted at the refresh.
    let out = run(&args);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "tok-tls\n");
    let stderr = out.stderr.as_str();
    assert!(stderr.contains("using the cached one"), "{stderr}");
    assert!(stderr.contains("not trusted"), "{stderr}");

    // Once it has expired, the TLS problem is the run's error: exit 3.
    age_cache(&cache, 0);
    let m = run(&args).fails(3);
    assert!(m.contains("not trusted"), "{m}");
}

#[test]
fn a_held_lock_does_not_delay_a_run_whose_cached_token_works() {
    // Inside the refresh window, a run that finds the lock taken (another
    // run is refreshing, or is stuck) prints the cached token at once.
    let dir = TempDir::new("lock-good-token");
    let cache = dir.join("token");
    let creds = fixture_path("oauth-credentials.sample.json");
    let server = FakeIms::start(vec![oauth_token("tok-good"), oauth_token("tok-new")]);
    let url = server.url();
    let mut args = token_args(&url, cache.to_str().unwrap());
    args.extend(["-c", creds.to_str().unwrap()]);
    run(&args).prints("tok-good");
    age_cache(&cache, 300);

    // Another process holds the lock, until it is let go.
    let lock = LockHolder::hold(&dir.join("token.lock"));
    let out = run(&args);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "tok-good\n");
    assert!(out.stderr.is_empty(), "{out:?}");
    // It did not wait out the lock and then refresh alone.
    assert_eq!(server.hits(), 1);
    drop(lock);
    // With the lock free, the due refresh happens.
    run(&args).prints("tok-new");
    assert_eq!(server.hits(), 2);
}

/// The cause at the end of a fallback warning on `stderr`.
fn fallback_cause(stderr: &str) -> &str {
    let (_, cause) = stderr
        .split_once("IMS is asked again in ")
        .and_then(|(_, rest)| rest.split_once(" s: "))
        .unwrap_or_else(|| panic!("no fallback warning: {stderr}"));
    cause.trim_end()
}

#[test]
fn runs_in_the_pause_after_an_odd_reply_name_its_cause() {
    // An odd reply (a proxy's page, say) keeps the working token, as IMS
    // 5xx does, but is not worth sharing with waiting runs; the runs in the
    // pause after it still say why they use the cached token.
    let dir = TempDir::new("odd-pause");
    let cache = dir.join("token");
    let creds = fixture_path("oauth-credentials.sample.json");
    let server = FakeIms::start(vec![
        oauth_token("tok-odd"),
        Reply::json(200, "<html>a proxy's page</html>"),
    ]);
    let url = server.url();
    let mut args = token_args(&url, cache.to_str().unwrap());
    args.extend(["-c", creds.to_str().unwrap()]);
    run(&args).prints("tok-odd");
    age_cache(&cache, 300);
    let failed = run(&args);
    assert_eq!((failed.code, failed.stdout.as_str()), (0, "tok-odd\n"));
    let cause = fallback_cause(&failed.stderr).to_owned();
    assert!(!cause.is_empty(), "{failed:?}");
    // Inside the pause: no request, the same cause.
    let out = run(&args);
    assert_eq!((out.code, out.stdout.as_str()), (0, "tok-odd\n"));
    assert_eq!(fallback_cause(&out.stderr), cause, "{out:?}");
    assert_eq!(server.hits(), 2);
}

#[test]
fn a_held_lock_after_the_pause_hands_out_the_token_without_a_false_warning() {
    // The pause after a failed refresh is over and another run refreshes
    // (it holds the lock): this run uses the working token at once, and
    // says nothing of a pause that has ended.
    let dir = TempDir::new("lock-after-pause");
    let cache = dir.join("token");
    let creds = fixture_path("oauth-credentials.sample.json");
    let server = FakeIms::start(vec![oauth_token("tok-paused")]);
    let url = server.url();
    let mut args = token_args(&url, cache.to_str().unwrap());
    args.extend(["-c", creds.to_str().unwrap()]);
    run(&args).prints("tok-paused");
    age_cache(&cache, 300);
    edit_cache(&cache, |json| {
        json["retry_at"] = (now_secs() - 60).into();
        json["failure"] = serde_json::json!({ "message": "IMS could not serve the request (503)" });
    });
    let lock = fs::File::create(dir.join("token.lock")).unwrap();
    lock.lock().unwrap();
    let out = run(&args);
    drop(lock);
    assert_eq!((out.code, out.stdout.as_str()), (0, "tok-paused\n"));
    assert!(out.stderr.is_empty(), "{out:?}");
    assert_eq!(server.hits(), 1);
}
