//! The command with every credentials kind: a Developer Console project
//! (`--credential`, entry types, JSON paths), AEM credentials from the AEM
//! Developer Console API (revoked), credentials from `IMS_*` environment
//! variables, and the 1 MiB cap on files and stdin.
//!
//! Every run gets a controlled environment (`env_clear` plus what the test
//! sets), talks only to the fake IMS on 127.0.0.1, and is killed after
//! `common::run::RUN_LIMIT`; none shows a secret of the fixtures or of the
//! environment.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::run::{command, start, Run};
use common::{
    closed_port, fixture_json, fixture_path, jwt_claims, now_secs, path_str, read_fixture, FakeIms,
    JwtExpect, OAuthExpect, Reply, TempDir,
};
use serde_json::{json, Value};

const PROJECT: &str = "console-project.sample.json";
const LIST: &str = "project.workspace.details.credentials";
const ENV_SECRET: &str = "p8e-ENV-secret-value-&=+/ 42";

/// `ims-token ARGS` with only `env` in its environment (and what a test
/// runner preloads, see [`preloaded`]) and `stdin` on stdin; no secret in
/// its output.
fn run_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    let mut command = command(args);
    command
        .env_clear()
        .envs(preloaded())
        .envs(env.iter().copied());
    let run = start(command, stdin).wait();
    run.assert_no_secrets(&[ENV_SECRET.to_owned(), "MIIE".to_owned()]);
    run
}

fn run(args: &[&str]) -> Run {
    run_with(args, &[], None)
}

/// The variables of a library preloaded into the tests, libfaketime's
/// (`LD_PRELOAD`, `FAKETIME*`): the command must live on the tests' clock,
/// or a fake IMS on a clock two years ahead finds its JWTs expired.
fn preloaded() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| name == "LD_PRELOAD" || name.starts_with("FAKETIME"))
        .collect()
}

fn project_path() -> String {
    path_str(&fixture_path(PROJECT))
}

fn project_expect() -> OAuthExpect {
    let root = fixture_json(PROJECT);
    let s2s = &root["project"]["workspace"]["details"]["credentials"][1]["oauth_server_to_server"];
    OAuthExpect {
        client_id: s2s["client_id"].as_str().unwrap().into(),
        client_secret: s2s["client_secrets"][0].as_str().unwrap().into(),
        scopes: s2s["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
    }
}

/// `--ims URL --retries 0 --timeout 5`.
fn net(url: &str) -> [&str; 6] {
    ["--ims", url, "--retries", "0", "--timeout", "5"]
}

/// [`net`] for a token run; only `--ims` for inspect and jwt, which send
/// nothing (a network option is a usage error for them).
fn net_for<'a>(command: &str, url: &'a str) -> Vec<&'a str> {
    let net = net(url);
    let used = if command == "token" {
        &net[..]
    } else {
        &net[..2]
    };
    used.to_vec()
}

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(tail).copied().collect()
}

// ---------------------------------------------------------------------------
// Developer Console project

#[test]
fn inspect_shows_the_project_workspace_and_credential() {
    let out = run(&["inspect", "-c", &project_path()]).quiet().to_owned();
    for line in [
        "kind: OAuth Server-to-Server (client credentials)",
        &format!("source: {}", project_path()),
        "project: SampleProject",
        "workspace: Production",
        "credential: Server Credential (id 566222)",
        "ims: ims-na1.adobelogin.com",
        "org: 0123456789ABCDEF01234567@AdobeOrg",
        "client id: a1b2c3d4e5f60718293a4b5c6d7e8f90",
    ] {
        assert!(out.lines().any(|l| l == line), "lacks {line:?}: {out}");
    }
}

#[test]
fn a_project_token_comes_from_the_fake_ims() {
    let server = FakeIms::start(vec![Reply::check_oauth(project_expect(), "tok-project")]);
    let url = server.url();
    let r = run(&args(&["-c", &project_path()], &net(&url)));
    assert_eq!(r.quiet(), "tok-project\n");
    // From stdin too.
    let server = FakeIms::start(vec![Reply::check_oauth(project_expect(), "tok-stdin")]);
    let url = server.url();
    let text = read_fixture(PROJECT);
    let r = run_with(&args(&["-c", "-"], &net(&url)), &[], Some(text.as_bytes()));
    assert_eq!(r.quiet(), "tok-stdin\n");
}

/// The project with a second OAuth Server-to-Server credential `Second` (id 777).
fn two_credentials(dir: &TempDir) -> String {
    let mut root = fixture_json(PROJECT);
    let list = root["project"]["workspace"]["details"]["credentials"]
        .as_array_mut()
        .unwrap();
    let mut second = list[1].clone();
    second["name"] = "Second".into();
    second["id"] = "777".into();
    second["oauth_server_to_server"]["client_id"] = "client-second".into();
    list.push(second);
    dir.json("two.json", &root)
}

#[test]
fn several_credentials_need_the_credential_option() {
    let dir = TempDir::new("two");
    let file = two_credentials(&dir);
    let m = run(&["-c", &file]).fails_alone(3).to_owned();
    assert!(
        m.contains("`Server Credential`") && m.contains("`Second`"),
        "{m}"
    );
    assert!(m.contains("--credential"), "{m}");

    for choice in ["Second", "777"] {
        let mut expect = project_expect();
        expect.client_id = "client-second".into();
        let server = FakeIms::start(vec![Reply::check_oauth(expect, "tok-second")]);
        let url = server.url();
        let r = run(&args(&["-c", &file, "--credential", choice], &net(&url)));
        assert_eq!(r.quiet(), "tok-second\n");
    }
    let out = run(&["inspect", "-c", &file, "--credential=777"])
        .quiet()
        .to_owned();
    assert!(out.contains("credential: Second (id 777)"), "{out}");
    let m = run(&["-c", &file, "--credential", "nope"])
        .fails_alone(3)
        .to_owned();
    assert!(m.contains("`nope`") && m.contains("`Legacy JWT`"), "{m}");
}

#[test]
fn a_jwt_entry_says_to_migrate_and_jwt_is_refused() {
    let closed = format!("http://127.0.0.1:{}", closed_port());
    for command in ["token", "inspect"] {
        let r = run(&args(
            &[command, "-c", &project_path(), "--credential", "Legacy JWT"],
            &net_for(command, &closed),
        ));
        let m = r.fails_alone(3);
        assert!(m.contains("Adobe ended JWT credentials"), "{m}");
        assert!(m.contains("migrate it to OAuth Server-to-Server"), "{m}");
        assert!(m.contains(&format!("`{LIST}[0]`")), "{m}");
    }
    let m = run(&["jwt", "-c", &project_path()])
        .fails_alone(3)
        .to_owned();
    assert!(m.contains("not a JWT service account"), "{m}");
    let m = run(&["-c", &project_path(), "--credential", "Web Login"])
        .fails_alone(3)
        .to_owned();
    assert!(m.contains("user-login"), "{m}");
}

#[test]
fn project_field_errors_name_the_json_path() {
    let dir = TempDir::new("paths");
    let mut root = fixture_json(PROJECT);
    let s2s =
        &mut root["project"]["workspace"]["details"]["credentials"][1]["oauth_server_to_server"];
    s2s.as_object_mut().unwrap().remove("client_secrets");
    let file = dir.json("no-secrets.json", &root);
    for command in ["token", "inspect"] {
        let m = run(&[command, "-c", &file]).fails_alone(3).to_owned();
        let path = format!("`{LIST}[1].oauth_server_to_server.client_secrets`");
        assert!(m.contains(&path) && m.contains(&file), "{m}");
    }
    let mut root = fixture_json(PROJECT);
    root["project"]["org"]["ims_org_id"] = json!(5);
    let file = dir.json("bad-org.json", &root);
    let m = run(&["-c", &file]).fails_alone(3).to_owned();
    assert!(
        m.contains("`project.org.ims_org_id` must be a string"),
        "{m}"
    );
}

#[test]
fn a_credential_choice_without_a_project_is_refused() {
    let aem = path_str(&fixture_path("oauth-credentials.sample.json"));
    let m = run(&["-c", &aem, "--credential", "x"])
        .fails_alone(3)
        .to_owned();
    assert!(m.contains("not an Adobe Developer Console project"), "{m}");
    let env = oauth_env("http://127.0.0.1:1");
    let m = run_with(&["--credential", "x"], &env_refs(&env), None)
        .fails_alone(2)
        .to_owned();
    assert!(m.contains("--credential") && m.contains("-c"), "{m}");
}

// ---------------------------------------------------------------------------
// AEM credentials from the AEM Developer Console API

#[test]
fn aem_api_credentials_work_and_revoked_ones_exit_3() {
    let file = path_str(&fixture_path("aem-oauth-api.sample.json"));
    let root = fixture_json("aem-oauth-api.sample.json");
    let i = &root["integration"];
    let expect = OAuthExpect {
        client_id: i["technicalAccount"]["clientId"].as_str().unwrap().into(),
        client_secret: i["technicalAccount"]["clientSecret"]
            .as_str()
            .unwrap()
            .into(),
        scopes: i["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
    };
    let server = FakeIms::start(vec![Reply::check_oauth(expect, "tok-aem-api")]);
    let url = server.url();
    assert_eq!(
        run(&args(&["-c", &file], &net(&url))).quiet(),
        "tok-aem-api\n"
    );

    let dir = TempDir::new("revoked");
    let mut revoked = root.clone();
    revoked["integration"]["revoked"] = true.into();
    let file = dir.json("revoked.json", &revoked);
    let closed = format!("http://127.0.0.1:{}", closed_port());
    for command in ["token", "inspect", "jwt"] {
        let m = run(&args(&[command, "-c", &file], &net_for(command, &closed)))
            .fails_alone(3)
            .to_owned();
        assert!(
            m.contains("these credentials were revoked in the AEM Developer Console"),
            "{m}"
        );
    }
}

// ---------------------------------------------------------------------------
// Environment variables

fn oauth_env(endpoint: &str) -> Vec<(&'static str, String)> {
    let expect = OAuthExpect::sample();
    vec![
        ("IMS_CLIENT_ID", expect.client_id),
        ("IMS_CLIENT_SECRET", expect.client_secret),
        ("IMS_ORG_ID", "ENVORG0123@AdobeOrg".into()),
        ("IMS_SCOPES", expect.scopes.join(",")),
        ("IMS_ENDPOINT", endpoint.into()),
    ]
}

fn jwt_env(endpoint: &str, host: &str) -> Vec<(&'static str, String)> {
    let expect = JwtExpect::sample(host);
    let creds = fixture_json("service-credentials.sample.json");
    let pem = creds["integration"]["privateKey"].as_str().unwrap();
    vec![
        ("IMS_CLIENT_ID", expect.client_id),
        ("IMS_CLIENT_SECRET", expect.client_secret),
        ("IMS_ORG_ID", expect.org),
        ("IMS_TECHNICAL_ACCOUNT_ID", expect.sub),
        ("IMS_METASCOPES", expect.metascopes.join(",")),
        // As a CI secret often holds it: one line with literal `\n`.
        ("IMS_PRIVATE_KEY", pem.replace("\r\n", "\\n")),
        ("IMS_ENDPOINT", endpoint.into()),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn env_oauth_credentials_get_a_token_and_inspect_names_the_environment() {
    let server = FakeIms::start(vec![Reply::check_oauth(OAuthExpect::sample(), "tok-env")]);
    let env = oauth_env(&server.url());
    let r = run_with(&["--retries", "0"], &env_refs(&env), None);
    assert_eq!(r.quiet(), "tok-env\n");
    let out = run_with(&["inspect"], &env_refs(&env), None)
        .quiet()
        .to_owned();
    assert!(out.contains("source: the environment"), "{out}");
    assert!(out.contains("org: ENVORG0123@AdobeOrg"), "{out}");
}

#[test]
fn env_jwt_credentials_sign_and_exchange() {
    let server =
        FakeIms::start_with(|host| vec![Reply::check_jwt(JwtExpect::sample(host), "tok-env-jwt")]);
    let env = jwt_env(&server.url(), &server.host());
    let r = run_with(&["--retries", "0"], &env_refs(&env), None);
    assert_eq!(r.quiet(), "tok-env-jwt\n");

    let jwt = run_with(&["jwt"], &env_refs(&env), None)
        .quiet()
        .trim()
        .to_owned();
    let claims = jwt_claims(&jwt);
    let expect = JwtExpect::sample(&server.host());
    assert_eq!(claims["iss"], Value::from(expect.org));
    assert_eq!(claims["sub"], Value::from(expect.sub));
    let exp = claims["exp"].as_i64().unwrap();
    assert!((exp - now_secs() - 300).abs() <= 5, "{exp}");

    let out = run_with(&["inspect"], &env_refs(&env), None)
        .quiet()
        .to_owned();
    assert!(out.contains("kind: JWT service account"), "{out}");
    assert!(out.contains("source: the environment"), "{out}");
}

#[test]
fn env_jwt_with_a_key_file() {
    let server =
        FakeIms::start_with(|host| vec![Reply::check_jwt(JwtExpect::sample(host), "tok-env-file")]);
    let mut env = jwt_env(&server.url(), &server.host());
    env.retain(|(k, _)| *k != "IMS_PRIVATE_KEY");
    env.push((
        "IMS_PRIVATE_KEY_FILE",
        path_str(&fixture_path("sample-key.pkcs8.pem")),
    ));
    let r = run_with(&["--retries", "0"], &env_refs(&env), None);
    assert_eq!(r.quiet(), "tok-env-file\n");
}

#[test]
fn a_half_set_environment_names_the_missing_variables_and_no_values() {
    let env = [
        ("IMS_CLIENT_ID", "env-client-id-visible"),
        ("IMS_CLIENT_SECRET", ENV_SECRET),
    ];
    let m = run_with(&[], &env, None).fails_alone(3).to_owned();
    assert!(
        m.contains("$IMS_ORG_ID") && m.contains("$IMS_SCOPES"),
        "{m}"
    );
    assert!(!m.contains("env-client-id-visible"), "{m}");
    let env = [
        ("IMS_METASCOPES", "ent_aem_cloud_api"),
        ("IMS_CLIENT_SECRET", ENV_SECRET),
    ];
    let m = run_with(&["jwt"], &env, None).fails_alone(3).to_owned();
    assert!(
        m.contains("$IMS_PRIVATE_KEY or $IMS_PRIVATE_KEY_FILE"),
        "{m}"
    );
    let mut bad_key = jwt_env("http://127.0.0.1:1", "127.0.0.1:1");
    bad_key.retain(|(k, _)| *k != "IMS_PRIVATE_KEY");
    bad_key.push((
        "IMS_PRIVATE_KEY",
        "-----BEGIN PRIVATE KEY-----\\nnot a key\\n".into(),
    ));
    let m = run_with(&[], &env_refs(&bad_key), None)
        .fails_alone(3)
        .to_owned();
    assert!(m.contains("$IMS_PRIVATE_KEY: "), "{m}");
}

#[test]
fn files_win_over_the_environment_and_nothing_is_a_usage_error() {
    // -c and $IMS_CREDENTIALS are used even with a half-set IMS_* environment.
    let half = [("IMS_CLIENT_ID", "x")];
    let aem = path_str(&fixture_path("oauth-credentials.sample.json"));
    let out = run_with(&["inspect", "-c", &aem], &half, None)
        .quiet()
        .to_owned();
    assert!(out.contains(&format!("source: {aem}")), "{out}");
    let with_var = [("IMS_CLIENT_ID", "x"), ("IMS_CREDENTIALS", aem.as_str())];
    let out = run_with(&["inspect"], &with_var, None).quiet().to_owned();
    assert!(out.contains(&format!("source: {aem}")), "{out}");
    for env in [
        &[][..],
        &[("IMS_CLIENT_ID", ""), ("IMS_CREDENTIALS", "")][..],
    ] {
        let m = run_with(&[], env, None).fails_alone(2).to_owned();
        assert!(m.contains("-c") && m.contains("IMS_CREDENTIALS"), "{m}");
        assert!(m.contains("IMS_CLIENT_ID"), "{m}");
    }
}

// ---------------------------------------------------------------------------
// The local development token and the input cap

#[test]
fn a_local_token_refuses_new_scopes() {
    let dir = TempDir::new("local-scope");
    let file = dir.json("local.json", &json!({"accessToken": "opaque-local-token"}));
    let m = run(&["-c", &file, "--scope", "openid"])
        .fails_alone(3)
        .to_owned();
    assert!(m.contains("scopes cannot be changed"), "{m}");
    let out = run(&["inspect", "-c", &file]).quiet().to_owned();
    assert!(out.contains("expires: unknown"), "{out}");
}

#[test]
fn input_over_one_mib_is_too_large_from_a_file_or_stdin() {
    let dir = TempDir::new("cap");
    let text = read_fixture("oauth-credentials.sample.json");
    let big = format!("{text}{}", " ".repeat(1024 * 1024 + 1 - text.len()));
    let file = dir.file("big.json", &big);
    let m = run(&["inspect", "-c", &file]).fails_alone(3).to_owned();
    assert!(
        m.contains(&file) && m.contains("too large: more than 1 MiB"),
        "{m}"
    );
    let r = run_with(&["inspect", "-c", "-"], &[], Some(big.as_bytes()));
    let m = r.fails_alone(3);
    assert!(m.contains("stdin") && m.contains("too large"), "{m}");
    // Just under the cap is read.
    let fits = &big[..1024 * 1024];
    run_with(&["inspect", "-c", "-"], &[], Some(fits.as_bytes())).quiet();
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let dir = TempDir::new("fifo");
    let fifo = dir.join("creds.json");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let started = Instant::now();
    let m = run(&["inspect", "-c", &path_str(&fifo)])
        .fails_alone(3)
        .to_owned();
    assert!(m.contains("not a regular file (a FIFO)"), "{m}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn help_names_every_credentials_kind_and_variable() {
    let help = run(&["--help"]).quiet().to_owned();
    for text in [
        "--credential NAME|ID",
        "Developer Console project",
        "client_secrets",
        "migrate",
        "privateKey",
        "accessToken",
        "1 MiB",
        "IMS_CLIENT_ID",
        "IMS_CLIENT_SECRET",
        "IMS_CLIENT_SECRET_FILE",
        "IMS_ORG_ID",
        "IMS_SCOPES",
        "IMS_TECHNICAL_ACCOUNT_ID",
        "IMS_METASCOPES",
        "IMS_PRIVATE_KEY (PEM, literal \\n allowed)",
        "IMS_PRIVATE_KEY_FILE",
        "IMS_ENDPOINT",
        "the second (with a warning) when IMS refuses the first as invalid_client",
    ] {
        // As words: where the lines break is the layout's business.
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(text), "--help lacks {text:?}");
    }
    let block: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("CREDENTIALS"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(block.len() > 5, "{help}");
    assert!(block.iter().all(|l| l.chars().count() <= 80), "{help}");
}

#[test]
fn exec_with_credentials_from_the_environment_hands_over_the_token_only() {
    let dir = TempDir::new("env-exec");
    let oauth = FakeIms::start(vec![Reply::check_oauth(
        OAuthExpect::sample(),
        "tok-env-exec",
    )]);
    let jwt =
        FakeIms::start_with(|host| vec![Reply::check_jwt(JwtExpect::sample(host), "tok-env-exec")]);
    for env in [oauth_env(&oauth.url()), jwt_env(&jwt.url(), &jwt.host())] {
        let seen = dir.join("seen");
        let seen_s = seen.to_str().unwrap().to_owned();
        let script = r#"env | grep '^IMS_' | sort > "$1""#;
        let args = [
            "exec",
            "--retries",
            "0",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            &seen_s,
        ];
        let r = run_with(&args, &env_refs(&env), None);
        assert_eq!(r.code, 0, "{r:#?}");
        let seen = std::fs::read_to_string(&seen).unwrap();
        assert!(seen.contains("IMS_ACCESS_TOKEN=tok-env-exec\n"), "{seen}");
        assert!(seen.contains("IMS_CLIENT_ID="), "{seen}");
        for hidden in ["IMS_CLIENT_SECRET", "IMS_PRIVATE_KEY"] {
            assert!(!seen.contains(hidden), "{hidden} reached COMMAND: {seen}");
        }
        let secrets = [
            OAuthExpect::sample().client_secret,
            JwtExpect::sample("x").client_secret,
        ];
        assert!(secrets.iter().all(|s| !seen.contains(s.as_str())), "{seen}");
    }
}
