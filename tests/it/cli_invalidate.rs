//! `ims-token invalidate`, run as a script runs it after an API refused a
//! token (401): the refused token on stdin (never in an argument), `--cache`
//! required, and an exit status that says whether a retry makes sense (0
//! dropped, 6 kept by the brake, 7 not the cached one). Ten cron jobs
//! refused the same token make one new exchange between them; the README's
//! cron recipe runs with sh and curl against the fake IMS and a fake API.
//! Every run talks only to 127.0.0.1 and is bounded (see `common::run`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::thread;

use common::run::{run, run_stdin, start, Run, BIN, CREDENTIALS_VAR, TOKEN_MARK};
use common::{
    edit_cache, fixture_path, now_secs, oauth_reply, path_str, FakeApi, FakeIms, OAuthExpect,
    TempDir, PROXY_VARS,
};

/// The `n`th token the fake IMS issues (from 1).
fn token(n: usize) -> String {
    format!("{TOKEN_MARK}-inv-{n}")
}

/// A fake IMS that issues `count` tokens, [`token`] 1 first.
fn fake_ims(count: usize) -> FakeIms {
    FakeIms::start(
        (1..=count)
            .map(|n| oauth_reply(&token(n), 86_399))
            .collect(),
    )
}

/// Cron jobs of the sample OAuth client, sharing a cache file.
struct Jobs {
    ims: FakeIms,
    cache: PathBuf,
    /// The options of a token run and of invalidate.
    options: Vec<String>,
    _dir: TempDir,
}

impl Jobs {
    fn new(tokens: usize) -> Jobs {
        let ims = fake_ims(tokens);
        let dir = TempDir::new("invalidate");
        let cache = dir.join("token");
        let creds = path_str(&fixture_path("oauth-credentials.sample.json"));
        let options = vec![
            "-c".into(),
            creds,
            "--ims".into(),
            ims.url(),
            "--cache".into(),
            path_str(&cache),
        ];
        Jobs {
            ims,
            cache,
            options,
            _dir: dir,
        }
    }

    fn args<'a>(&'a self, before: &[&'a str]) -> Vec<&'a str> {
        let mut args = before.to_vec();
        args.extend(self.options.iter().map(String::as_str));
        args
    }

    fn token_run(&self) -> Run {
        run(&self.args(&[]))
    }

    /// The token a run prints, and nothing else.
    fn token(&self) -> String {
        self.token_run().quiet().trim_end().to_owned()
    }

    /// `ims-token invalidate OPTIONS < TOKEN`.
    fn invalidate(&self, token: &str) -> Run {
        run_stdin(&self.args(&["invalidate"]), &format!("{token}\n"))
    }

    /// The stdout of an invalidate that dropped the token.
    fn dropped(&self) -> String {
        format!(
            "dropped from the cache {:?}: the next run gets a new token",
            self.cache
        )
    }
}

/// The one line of an invalidate that found another token cached (exit 7).
fn assert_not_cached(out: &Run, cache: &Path) {
    assert_eq!(
        out.fails_alone(7),
        format!(
            "ims-token: the cache {cache:?} does not hold this token (another run has \
             replaced it, or none is cached): nothing dropped; a retry gets another token"
        )
    );
}

/// The one line of an invalidate that the brake said no to (exit 6).
fn assert_braked(out: &Run) {
    let line = out.fails_alone(6);
    assert!(
        line.starts_with("ims-token: an Adobe API refused (401) a token IMS issued "),
        "{line}"
    );
    assert!(
        line.contains(
            "a new token will not help, so the token is kept; check that the product profile"
        ),
        "{line}"
    );
}

#[test]
fn invalidate_of_the_cached_token_drops_it_and_the_next_run_exchanges() {
    let jobs = Jobs::new(3);
    assert_eq!(jobs.token(), token(1));
    let before = now_secs();
    jobs.invalidate(&token(1)).prints(&jobs.dropped());
    // The cache keeps when it dropped the token, for the brake.
    let text = std::fs::read_to_string(&jobs.cache).unwrap();
    assert!(!text.contains(&token(1)), "the token is gone from the file");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let at = json["last_invalidation"]
        .as_i64()
        .expect("last_invalidation");
    assert!(before <= at && at <= now_secs(), "{at}");
    assert_eq!(jobs.token(), token(2));
    // A new token is written with the time of the drop still there.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jobs.cache).unwrap()).unwrap();
    assert_eq!(json["last_invalidation"].as_i64(), Some(at));
    assert_eq!(jobs.ims.hits(), 2);
}

#[test]
fn invalidate_of_a_stale_token_drops_nothing_and_exits_7() {
    let jobs = Jobs::new(3);
    // No cache file yet: nothing to drop, and a retry gets a token.
    assert_not_cached(&jobs.invalidate(&token(1)), &jobs.cache);
    assert_eq!(jobs.token(), token(1));
    jobs.invalidate(&token(1)).prints(&jobs.dropped());
    assert_eq!(jobs.token(), token(2));
    // Another job's late 401 for the token dropped already: the cache
    // keeps the new one, and so does the next run.
    assert_not_cached(&jobs.invalidate(&token(1)), &jobs.cache);
    assert_eq!(jobs.token(), token(2));
    assert_eq!(jobs.ims.hits(), 2);
}

#[test]
fn a_replacement_refused_within_the_cooldown_is_kept_and_after_it_dropped() {
    let jobs = Jobs::new(5);
    assert_eq!(jobs.token(), token(1));
    jobs.invalidate(&token(1)).prints(&jobs.dropped());
    assert_eq!(jobs.token(), token(2));
    // The API refused the token IMS has just issued: kept, and said why.
    assert_braked(&jobs.invalidate(&token(2)));
    assert_eq!(jobs.token(), token(2));
    assert_eq!(jobs.ims.hits(), 2);

    // The drop two minutes before the token came (no sleeping through the
    // 60 s cooldown): the token is no replacement, and is dropped.
    edit_cache(&jobs.cache, |json| {
        json["last_invalidation"] = (now_secs() - 120).into();
    });
    jobs.invalidate(&token(2)).prints(&jobs.dropped());
    assert_eq!(jobs.token(), token(3));
    assert_braked(&jobs.invalidate(&token(3)));
    // A cache file of an ims-token before the brake (no last_invalidation):
    // the token's first invalidation, never braked.
    edit_cache(&jobs.cache, |json| {
        json.as_object_mut().unwrap().remove("last_invalidation");
    });
    jobs.invalidate(&token(3)).prints(&jobs.dropped());
    assert_eq!(jobs.token(), token(4));
    assert_eq!(jobs.ims.hits(), 4);
}

/// Ten cron jobs whose API call got 401 for the same token, all at once:
/// each runs `ims-token invalidate` with it, then a token run.
#[test]
fn ten_cron_jobs_refused_the_same_token_make_one_new_exchange() {
    const JOBS: usize = 10;
    // Tokens to spare: an exchange too many would show as another token.
    let jobs = Jobs::new(JOBS + 2);
    assert_eq!(jobs.token(), token(1));
    let start = Barrier::new(JOBS);
    let runs: Vec<(Run, Run)> = thread::scope(|s| {
        let job = || {
            start.wait();
            (jobs.invalidate(&token(1)), jobs.token_run())
        };
        let handles: Vec<_> = (0..JOBS).map(|_| s.spawn(job)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut codes: Vec<i32> = runs.iter().map(|(invalidate, _)| invalidate.code).collect();
    codes.sort_unstable();
    assert_eq!(codes, [0, 7, 7, 7, 7, 7, 7, 7, 7, 7], "{runs:#?}");
    for (invalidate, token_run) in &runs {
        match invalidate.code {
            0 => invalidate.prints(&jobs.dropped()),
            _ => assert_not_cached(invalidate, &jobs.cache),
        }
        assert_eq!(token_run.quiet(), format!("{}\n", token(2)));
    }
    assert_eq!(
        jobs.ims.hits(),
        2,
        "the first token, and one new exchange between the ten jobs"
    );
}

#[test]
fn invalidate_takes_the_token_on_stdin_only_and_needs_a_cache() {
    let jobs = Jobs::new(1);
    assert_eq!(jobs.token(), token(1));
    let refused = token(1);
    let mut after_options = jobs.args(&["invalidate"]);
    after_options.push(&refused);
    for args in [after_options, vec!["invalidate", &refused]] {
        // The token on stdin too: the argument is refused all the same.
        let out = run_stdin(&args, &refused);
        let line = out.fails_alone(2);
        assert!(
            line.contains("invalidate takes no argument: pass the token on stdin"),
            "{line}"
        );
    }
    let creds = &jobs.options[..4];
    let mut args = vec!["invalidate"];
    args.extend(creds.iter().map(String::as_str));
    let line = run_stdin(&args, &refused).fails_alone(2);
    assert!(
        line.starts_with(
            "ims-token: invalidate needs --cache: it drops the token from the cache, and \
             without one there is nothing to invalidate"
        ),
        "{line}"
    );
    let line = run(&jobs.args(&["invalidate"])).fails_alone(2);
    assert!(line.starts_with("ims-token: no token on stdin"), "{line}");
    // Nothing was dropped, and IMS was not asked.
    assert_eq!(jobs.token(), token(1));
    assert_eq!(jobs.ims.hits(), 1);

    // A local development token is not cached: nothing to invalidate.
    let dir = TempDir::new("invalidate-local");
    let local = dir.json(
        "local.json",
        &serde_json::json!({ "accessToken": "tok-SECRET-local" }),
    );
    let cache = path_str(&dir.join("cache"));
    let out = run_stdin(
        &["invalidate", "-c", &local, "--cache", &cache],
        "tok-SECRET-local",
    );
    assert!(
        out.fails_alone(3)
            .contains("a local development token, which --cache does not keep"),
        "{out:#?}"
    );
}

// ---------------------------------------------------------------------------
// The README's cron recipe

/// The shell script of the README's section on invalidate.
fn readme_recipe() -> String {
    let blocks = common::readme_blocks("After a 401", "sh");
    blocks.first().expect("a sh block in it").clone()
}

/// `sh SCRIPT URL` as cron would run it: this `HOME`, ims-token on the
/// `PATH`, the sample OAuth client's `IMS_*` variables for the fake IMS, no
/// proxy.
fn run_recipe(script: &Path, home: &Path, ims: &FakeIms, url: &str) -> Run {
    let bin_dir = Path::new(BIN).parent().expect("the binary's directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let expect = OAuthExpect::sample();
    let mut command = Command::new("sh");
    command
        .arg(script)
        .arg(url)
        .env("PATH", path)
        .env("HOME", home)
        .env("IMS_CLIENT_ID", &expect.client_id)
        .env("IMS_CLIENT_SECRET", &expect.client_secret)
        .env("IMS_ORG_ID", "ENVORG0123@AdobeOrg")
        .env("IMS_SCOPES", expect.scopes.join(","))
        .env("IMS_ENDPOINT", ims.url())
        .env_remove("XDG_CACHE_HOME")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for var in PROXY_VARS.into_iter().chain([CREDENTIALS_VAR]) {
        command.env_remove(var);
    }
    let out = start(command, None).wait();
    out.assert_no_secrets(&[]);
    out
}

/// The bearer tokens of the API's requests, in order.
fn sent(api: &FakeApi) -> Vec<String> {
    api.requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().to_owned())
        .collect()
}

fn bearer(n: usize) -> String {
    format!("Bearer {}", token(n))
}

#[test]
fn the_readme_cron_recipe_retries_once_after_a_401() {
    let curl = Command::new("curl").arg("--version").output();
    assert!(
        curl.is_ok_and(|o| o.status.success()),
        "curl is needed to run the README's recipe"
    );
    let dir = TempDir::new("recipe");
    let script = dir.join("adobe-get");
    std::fs::write(&script, readme_recipe()).unwrap();

    // The API refuses the first token only: one retry with a new one.
    let ims = fake_ims(3);
    let api = FakeApi::refusing(&[&token(1)]);
    let home = TempDir::new("recipe-home");
    let url = api.url("/content/dam.json");
    let out = run_recipe(&script, home.path(), &ims, &url);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, r#"{"ok":true}"#),
        "{out:#?}"
    );
    assert!(
        out.stderr.starts_with("dropped from the cache "),
        "{out:#?}"
    );
    assert_eq!(sent(&api), [bearer(1), bearer(2)]);
    // The next run uses the cached new token.
    let out = run_recipe(&script, home.path(), &ims, &url);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:#?}");
    assert_eq!(sent(&api), [bearer(1), bearer(2), bearer(2)]);
    assert_eq!(ims.hits(), 2);

    // An API that refuses every token: one retry, then the brake.
    let ims = fake_ims(3);
    let api = FakeApi::refusing(&[&token(1), &token(2), &token(3)]);
    let home = TempDir::new("recipe-home-refused");
    let url = api.url("/content/dam.json");
    let out = run_recipe(&script, home.path(), &ims, &url);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(out.stdout, r#"{"error":"unauthorized"}"#);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert_eq!(last, format!("adobe-get: HTTP 401 from {url}"));
    assert_eq!(sent(&api), [bearer(1), bearer(2)]);
    let out = run_recipe(&script, home.path(), &ims, &url);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .contains("ims-token: an Adobe API refused (401) a token IMS issued"),
        "{out:#?}"
    );
    assert_eq!(sent(&api), [bearer(1), bearer(2), bearer(2)], "no retry");
    assert_eq!(ims.hits(), 2);
}

#[test]
fn cache_paths_are_quoted_escaped_on_one_line() {
    // A cache path with a line break and an escape sequence (a name from a
    // script's variable): every message that names it stays one line, and
    // nothing of it reaches the terminal raw.
    let dir = TempDir::new("odd-cache");
    let creds = path_str(&fixture_path("oauth-credentials.sample.json"));
    let odd = dir.join("new\nline\u{1b}]0;x\u{7}");
    let file = std::fs::File::create(dir.join("a-file")).unwrap();
    drop(file);
    // Under a file, no directory can be made: the warning, then exit 7.
    let under_a_file = format!("{}/sub\u{1b}[2J/", path_str(&dir.join("a-file")));
    for (cache, warned) in [(path_str(&odd), false), (under_a_file, true)] {
        let out = run_stdin(
            &["invalidate", "-c", &creds, "--cache", &cache],
            &format!("{}\n", token(1)),
        );
        assert_eq!(out.code, 7, "{out:#?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1 + usize::from(warned), "{out:#?}");
        assert!(!out.stderr.contains('\u{1b}'), "{out:#?}");
        let quoted = format!("{:?}", Path::new(&cache));
        assert!(lines.iter().all(|l| l.contains(&quoted)), "{out:#?}");
    }
}
