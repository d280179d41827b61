//! Beyond getting a token (issue 15): an IMS access token decoded locally,
//! validated and revoked at the fake IMS; the `org_id` and `resource`
//! fields of OAuth Server-to-Server on the wire; two client secrets while
//! one is rotated; the client secret from a file (`IMS_CLIENT_SECRET_FILE`).
//!
//! The fake IMS issues JWT-shaped tokens signed with its own key, judges
//! validate and invalidate requests like IMS (form fields, the
//! `X-IMS-ClientId` header, nothing in the URL), and keeps what it revoked.
//! Every test talks only to 127.0.0.1 and is bounded to a few seconds.

use crate::common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::run::{command, start, Run};
use common::{
    assert_token_requests, check_validate, fixture_json, fixture_path, ims_access_token,
    ims_token_of_type, path_str, FakeIms, OAuthExpect, OAuthOptions, Recorded, Reply, TempDir,
    TokenSpec,
};
use ims_token::{
    decode_token, Client, ClientSecret, Credentials, Endpoint, Error, OAuthCredentials,
    TokenProvider, TokenValidity,
};
use serde_json::Value;

/// A client with no proxy, short waits and `retries` retries.
fn retrying(retries: u32) -> Client {
    Client::builder()
        .proxy(None)
        .retries(retries)
        .timeout(Duration::from_secs(5))
        .max_retry_wait(Duration::from_millis(20))
        .build()
        .expect("the test client builds")
}

fn client() -> Client {
    retrying(0)
}

fn endpoint(url: &str) -> Endpoint {
    Endpoint::parse(url).expect("the fake's URL is a valid endpoint")
}

/// The sample OAuth credentials (`oauth-credentials.sample.json`), at `url`.
fn sample_oauth(url: &str) -> OAuthCredentials {
    let expect = OAuthExpect::sample();
    OAuthCredentials::builder()
        .ims(url)
        .client_id(expect.client_id)
        .client_secret(ClientSecret::new(expect.client_secret))
        .scopes(&expect.scopes.join(","))
        .org_id("HEADERS0123@AdobeOrg")
        .build()
        .expect("the sample OAuth credentials build")
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

// ---------------------------------------------------------------------------
// Decode

#[test]
fn a_token_the_fake_issued_decodes_to_its_claims_without_its_signature() {
    let spec = TokenSpec::new("my-client-id");
    let token = ims_access_token(&spec);
    let claims = decode_token(&format!("{token}\n")).unwrap();
    assert_eq!(claims.token_type, "access_token");
    assert_eq!(claims.client_id, "my-client-id");
    assert_eq!(claims.user_id.as_deref(), Some(spec.user_id.as_str()));
    assert_eq!(claims.region.as_deref(), Some("ims-na1"));
    assert_eq!(claims.scopes, ["openid", "AdobeID", "read_organizations"]);
    assert_eq!(millis(claims.created_at), spec.created_at_ms);
    assert_eq!(millis(claims.expires_at), spec.expires_at_ms());
    let now = UNIX_EPOCH + Duration::from_millis(spec.created_at_ms + 3_600_000);
    let text = claims.to_text(now);
    assert!(text.contains("client_id: my-client-id\n"), "{text}");
    assert!(text.ends_with("(23 hours left)"), "{text}");
    let json: Value = serde_json::from_str(&claims.to_json(now)).unwrap();
    assert_eq!(json["expires_in"], Value::from(23 * 3600));
    assert_eq!(json["scope"][2], Value::from("read_organizations"));
    // Nothing shown or kept holds the signature, let alone the token.
    let signature = token.rsplit('.').next().unwrap();
    for shown in [text, json.to_string(), format!("{claims:?}")] {
        assert!(!shown.contains(&signature[..20]), "{shown}");
    }
}

#[test]
fn garbage_and_other_tokens_are_not_ims_access_tokens() {
    let jwt = ims_token::sign_jwt(
        match &Credentials::from_file(fixture_path("service-credentials.sample.json")).unwrap() {
            Credentials::ServiceAccount(a) => a,
            other => panic!("not a service account: {other:?}"),
        },
        SystemTime::now(),
        Duration::from_secs(60),
    )
    .unwrap();
    let refresh = ims_token_of_type(&TokenSpec::new("c"), "refresh_token");
    let signature = refresh.rsplit('.').next().unwrap();
    for (text, why) in [
        ("", "three base64url segments"),
        ("not a token at all", "three base64url segments"),
        (
            "fake-oauth-flow-access-token-SECRETtoken0002",
            "three base64url segments",
        ),
        (jwt.secret(), "no `type`"),
        (refresh.as_str(), "IMS `refresh_token`, not an access token"),
    ] {
        let e = decode_token(text).unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e:?}");
        let m = e.to_string();
        assert!(
            m.starts_with("the input is not an IMS access token: "),
            "{m}"
        );
        assert!(m.contains(why), "{text:?}: {m}");
        assert!(!m.contains("SECRET") && !m.contains(signature), "{m}");
    }
}

// ---------------------------------------------------------------------------
// Validate and revoke

#[test]
fn a_token_is_valid_until_it_is_revoked() {
    let expect = OAuthExpect::sample();
    let spec = TokenSpec::new(&expect.client_id);
    let issued = ims_access_token(&spec);
    let server = FakeIms::start(vec![
        Reply::check_oauth(expect.clone(), &issued),
        Reply::CheckValidate {
            client_id: expect.client_id.clone(),
        },
        Reply::CheckInvalidate {
            expect: expect.clone(),
        },
        Reply::CheckValidate {
            client_id: expect.client_id.clone(),
        },
    ]);
    let client = client();
    let credentials = Credentials::OAuth(sample_oauth(&server.url()));
    let token = client.fetch(&credentials).unwrap();
    let ims = credentials.ims();
    let before = client
        .validate_token(ims, credentials.client_id(), token.secret())
        .unwrap();
    let expires_at = UNIX_EPOCH + Duration::from_millis(spec.expires_at_ms());
    assert!(
        matches!(before, TokenValidity::Valid { expires_at: Some(at), .. } if at == expires_at),
        "{before:?}"
    );
    assert!(before.is_valid());
    client.revoke_token(&credentials, token.secret()).unwrap();
    assert_eq!(server.revoked(), 1);
    let after = client
        .validate_token(ims, credentials.client_id(), token.secret())
        .unwrap();
    assert!(
        matches!(&after, TokenValidity::Invalid { reason, .. } if reason == "revoked"),
        "{after:?}"
    );
    assert_eq!(server.requests().len(), 4);
    assert_token_requests(&server, token.secret());
}

#[test]
fn what_ims_does_not_know_is_invalid_and_a_wrong_secret_is_rejected() {
    let expect = OAuthExpect::sample();
    let foreign = ims_access_token(&TokenSpec::new("another-client"));
    let mut old = TokenSpec::new(&expect.client_id);
    old.created_at_ms -= 2 * 86_400_000;
    let expired = ims_access_token(&old);
    let server = FakeIms::start(vec![
        Reply::CheckValidate {
            client_id: expect.client_id.clone(),
        },
        Reply::CheckValidate {
            client_id: expect.client_id.clone(),
        },
        Reply::CheckValidate {
            client_id: expect.client_id.clone(),
        },
        Reply::CheckValidate {
            client_id: expect.client_id.clone(),
        },
        Reply::CheckInvalidate {
            expect: expect.clone(),
        },
    ]);
    let client = client();
    let ims = endpoint(&server.url());
    let reason = |token: &str| match client.validate_token(&ims, &expect.client_id, token) {
        Ok(TokenValidity::Invalid { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(reason("garbage"), "not a token");
    assert_eq!(reason(&foreign), "client_id mismatch");
    assert_eq!(reason(&expired), "expired");
    // An unknown client is IMS refusing the request itself: exit 4 material.
    let e = client
        .validate_token(&ims, "unknown-client", &foreign)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Rejected(ims) if ims.code.as_deref() == Some("invalid_client")),
        "{e:?}"
    );
    let wrong = OAuthCredentials::builder()
        .ims(server.url())
        .client_id(&expect.client_id)
        .client_secret(ClientSecret::new("p8e-WRONG-secret"))
        .scopes("openid")
        .build()
        .unwrap();
    let e = client
        .revoke_token(&Credentials::OAuth(wrong), &foreign)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Rejected(ims) if ims.status == 401),
        "{e:?}"
    );
    for text in common::error_texts(&e) {
        assert!(
            !text.contains("p8e-WRONG") && !text.contains(&foreign[..30]),
            "{text}"
        );
    }
    assert_eq!(server.revoked(), 0);
}

#[test]
fn validate_and_revoke_are_retried_like_a_fetch() {
    let expect = OAuthExpect::sample();
    let token = ims_access_token(&TokenSpec::new(&expect.client_id));
    let busy = || Reply::ims_error(503, "temporarily_unavailable", "busy");
    let server = FakeIms::start(vec![
        busy(),
        Reply::CheckValidate {
            client_id: expect.client_id.clone(),
        },
        busy(),
        Reply::CheckInvalidate {
            expect: expect.clone(),
        },
        busy(),
        busy(),
    ]);
    let client = retrying(1);
    let credentials = Credentials::OAuth(sample_oauth(&server.url()));
    let ims = credentials.ims();
    let validity = client
        .validate_token(ims, &expect.client_id, &token)
        .unwrap();
    assert!(validity.is_valid(), "{validity:?}");
    client.revoke_token(&credentials, &token).unwrap();
    assert_eq!(server.revoked(), 1);
    let e = client
        .validate_token(ims, &expect.client_id, &token)
        .unwrap_err();
    assert!(
        matches!(e, Error::Unavailable(_)) && e.is_retryable(),
        "{e:?}"
    );
    assert_eq!(server.requests().len(), 6);
    let e = client
        .validate_token(
            &endpoint(&format!("http://127.0.0.1:{}", common::closed_port())),
            "c",
            &token,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    for text in common::error_texts(&e) {
        assert!(!text.contains(&token[..30]), "{text}");
    }
}

#[test]
fn a_local_token_cannot_revoke() {
    let dir = TempDir::new("local-revoke");
    let file = dir.json("local.json", &serde_json::json!({"accessToken": "opaque"}));
    let local = Credentials::from_file(file).unwrap();
    let e = client().revoke_token(&local, "opaque").unwrap_err();
    assert!(e.is_config(), "{e:?}");
    assert!(e.to_string().contains("without a client secret"), "{e}");
}

/// The referee itself: a request with the token in its URL, or without the
/// `X-IMS-ClientId` header, is refused, so the tests above can fail.
#[test]
fn the_fake_refuses_a_token_in_the_url_or_no_client_id_header() {
    let token = ims_access_token(&TokenSpec::new("c"));
    let good = Recorded {
        method: "POST".into(),
        path: "/ims/validate_token/v1".into(),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("x-ims-clientid".into(), "c".into()),
        ],
        body: Vec::new(),
        form: vec![
            ("type".into(), "access_token".into()),
            ("client_id".into(), "c".into()),
            ("token".into(), token.clone()),
        ],
    };
    let now = millis(SystemTime::now());
    let nothing = HashSet::new();
    let verdict = check_validate(&good, "c", &nothing, now).unwrap();
    assert_eq!(verdict["valid"], Value::Bool(true));
    let mut in_url = good.clone();
    in_url.path = format!("/ims/validate_token/v1?token={token}");
    assert!(check_validate(&in_url, "c", &nothing, now).is_err());
    let mut no_header = good.clone();
    no_header.headers.pop();
    assert!(check_validate(&no_header, "c", &nothing, now).is_err());
    let revoked = HashSet::from([token.clone()]);
    let verdict = check_validate(&good, "c", &revoked, now).unwrap();
    assert_eq!(verdict["reason"], Value::from("revoked"));
    let later = now + 86_400_000;
    let verdict = check_validate(&good, "c", &nothing, later).unwrap();
    assert_eq!(verdict["reason"], Value::from("expired"));
}

// ---------------------------------------------------------------------------
// org_id and resource

#[test]
fn org_id_and_resources_go_on_the_wire_only_when_asked_for() {
    let expect = OAuthExpect::sample();
    let options = OAuthOptions {
        org_id: Some("TENANT0123@AdobeOrg".into()),
        resources: vec![
            "https://api.example.com/a b".into(),
            "urn:adobe:resource".into(),
        ],
    };
    let server = FakeIms::start(vec![
        Reply::check_oauth(expect.clone(), "tok-SECRET-plain"),
        Reply::check_oauth_with(expect.clone(), options.clone(), "tok-SECRET-asked"),
    ]);
    let client = client();
    let plain = sample_oauth(&server.url());
    let token = client.client_credentials(&plain).unwrap();
    assert_eq!(token.secret(), "tok-SECRET-plain");
    let asked = plain
        .with_requested_org_id("TENANT0123@AdobeOrg")
        .and_then(|o| o.with_resource("https://api.example.com/a b"))
        .and_then(|o| o.with_resource("urn:adobe:resource"))
        .unwrap();
    let token = client.client_credentials(&asked).unwrap();
    assert_eq!(token.secret(), "tok-SECRET-asked");
    let requests = server.requests();
    // The org the credentials name for the headers is never sent.
    assert_eq!(requests[0].form_value("org_id"), None);
    assert_eq!(requests[0].form_value("resource"), None);
    assert_eq!(
        requests[1].form_value("org_id"),
        Some("TENANT0123@AdobeOrg")
    );
    for request in &requests {
        assert!(!String::from_utf8_lossy(&request.body).contains("HEADERS0123"));
    }
}

#[test]
fn a_jwt_account_cannot_ask_for_an_org_or_a_resource() {
    let account = Credentials::from_file(fixture_path("service-credentials.sample.json")).unwrap();
    let e = account
        .clone()
        .with_requested_org_id("X@AdobeOrg")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("OAuth Server-to-Server credentials only"),
        "{e}"
    );
    assert!(account.with_resource("urn:x").unwrap_err().is_config());
}

// ---------------------------------------------------------------------------
// Two client secrets

const PROJECT: &str = "console-project.sample.json";

/// The project's OAuth Server-to-Server credential with its second secret
/// the only one IMS accepts: the first was rotated out.
fn second_secret_expect() -> OAuthExpect {
    let root = fixture_json(PROJECT);
    let s2s = &root["project"]["workspace"]["details"]["credentials"][1]["oauth_server_to_server"];
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    OAuthExpect {
        client_id: text(&s2s["client_id"]),
        client_secret: text(&s2s["client_secrets"][1]),
        scopes: s2s["scopes"].as_array().unwrap().iter().map(text).collect(),
    }
}

#[test]
fn a_rotated_out_first_secret_costs_one_request_and_a_warning() {
    let expect = second_secret_expect();
    let first = fixture_json(PROJECT)["project"]["workspace"]["details"]["credentials"][1]
        ["oauth_server_to_server"]["client_secrets"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let server = FakeIms::start(vec![
        Reply::check_oauth(expect.clone(), "tok-rotated"),
        Reply::check_oauth(expect.clone(), "tok-rotated"),
    ]);
    let project = path_str(&fixture_path(PROJECT));
    let r = run(
        &["-c", &project, "--ims", &server.url(), "--retries", "0"],
        &[],
    );
    assert_eq!(r.ok(), "tok-rotated\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].form_value("client_secret"),
        Some(first.as_str())
    );
    assert_eq!(
        requests[1].form_value("client_secret"),
        Some(expect.client_secret.as_str())
    );
    assert_eq!(
        r.stderr,
        "ims-token: warning: IMS refused the first of the credential's two client secrets \
         (invalid_client) and accepted the second, which is used from now on; if a secret is \
         being rotated, update the credentials once the old one is deleted\n"
    );
}

#[test]
fn the_provider_remembers_the_secret_that_worked() {
    let expect = second_secret_expect();
    let server = FakeIms::start(vec![
        Reply::check_oauth(expect.clone(), "tok-SECRET-one"),
        Reply::check_oauth(expect.clone(), "tok-SECRET-one"),
        Reply::check_oauth(expect.clone(), "tok-SECRET-two"),
    ]);
    let credentials = Credentials::from_file(fixture_path(PROJECT))
        .unwrap()
        .with_ims(&server.url())
        .unwrap();
    let provider = TokenProvider::new(client(), credentials);
    let token = provider.token().unwrap();
    assert_eq!(
        (token.secret(), server.requests().len()),
        ("tok-SECRET-one", 2)
    );
    provider.invalidate(&token);
    let token = provider.token().unwrap();
    assert_eq!(
        (token.secret(), server.requests().len()),
        ("tok-SECRET-two", 3)
    );
    let last = &server.requests()[2];
    assert_eq!(
        last.form_value("client_secret"),
        Some(expect.client_secret.as_str())
    );
}

#[test]
fn both_secrets_refused_is_one_rejection_after_two_requests() {
    let mut expect = second_secret_expect();
    expect.client_secret = "p8e-neither-of-them".into();
    let server = FakeIms::start(vec![
        Reply::check_oauth(expect.clone(), "tok-SECRET-never"),
        Reply::check_oauth(expect.clone(), "tok-SECRET-never"),
    ]);
    let credentials = Credentials::from_file(fixture_path(PROJECT))
        .unwrap()
        .with_ims(&server.url())
        .unwrap();
    let e = client().fetch(&credentials).unwrap_err();
    assert!(
        matches!(&e, Error::Rejected(ims) if ims.code.as_deref() == Some("invalid_client")),
        "{e:?}"
    );
    assert_eq!(server.requests().len(), 2);
}

// ---------------------------------------------------------------------------
// IMS_CLIENT_SECRET_FILE, through the command

/// `ims-token ARGS` with only `env` in its environment; no secret in its
/// output.
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = command(args);
    command.env_clear().envs(env.iter().copied());
    let run = start(command, None).wait();
    run.assert_no_secrets(&[]);
    run
}

/// The sample OAuth credentials in `IMS_*` variables, with the secret in
/// the file `secret_file`.
fn secret_file_env<'a>(
    url: &'a str,
    secret_file: &'a str,
    expect: &'a OAuthExpect,
    scopes: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("IMS_CLIENT_ID", expect.client_id.as_str()),
        ("IMS_CLIENT_SECRET_FILE", secret_file),
        ("IMS_ORG_ID", "ENVORG0123@AdobeOrg"),
        ("IMS_SCOPES", scopes),
        ("IMS_ENDPOINT", url),
    ]
}

#[test]
fn the_client_secret_comes_from_a_file() {
    let expect = OAuthExpect::sample();
    let scopes = expect.scopes.join(",");
    let dir = TempDir::new("secret-file");
    // As systemd's LoadCredential= or a Kubernetes secret gives it: a final newline.
    let file = dir.file("client-secret", &format!("{}\n", expect.client_secret));
    let server = FakeIms::start(vec![Reply::check_oauth(expect.clone(), "tok-from-file")]);
    let url = server.url();
    let r = run(
        &["--retries", "0"],
        &secret_file_env(&url, &file, &expect, &scopes),
    );
    assert_eq!(r.quiet(), "tok-from-file\n");
}

#[test]
fn a_secret_file_that_is_a_fifo_missing_or_doubled_is_exit_3_at_once() {
    let expect = OAuthExpect::sample();
    let scopes = expect.scopes.join(",");
    let dir = TempDir::new("secret-file-bad");
    let fifo = path_str(&dir.join("fifo"));
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let missing = path_str(&dir.join("missing"));
    let url = "http://127.0.0.1:1";
    // A FIFO with no writer would hang a blocking open: the run ends at
    // once (common::run kills a run that takes longer than RUN_LIMIT).
    for (path, cause) in [
        (fifo.as_str(), "not a regular file (a FIFO)"),
        (missing.as_str(), "No such file or directory (os error 2)"),
    ] {
        let m = run(&[], &secret_file_env(url, path, &expect, &scopes)).fails_alone(3);
        let variable = "$IMS_CLIENT_SECRET_FILE";
        let want =
            format!("ims-token: cannot read the client secret file {path:?} ({variable}): {cause}");
        assert_eq!(m, want);
    }
    let file = dir.file("secret", &expect.client_secret);
    let mut both = secret_file_env(url, &file, &expect, &scopes);
    both.push(("IMS_CLIENT_SECRET", expect.client_secret.as_str()));
    let m = run(&[], &both).fails_alone(3);
    assert_eq!(
        m,
        "ims-token: set only one of $IMS_CLIENT_SECRET and $IMS_CLIENT_SECRET_FILE"
    );
}

// ---------------------------------------------------------------------------
// The README's systemd units

/// The `ini` blocks of the README's systemd section.
fn readme_units() -> Vec<String> {
    common::readme_blocks("systemd", "ini")
}

#[test]
fn the_readme_systemd_units_pass_systemd_analyze_verify() {
    let units = readme_units();
    assert_eq!(units.len(), 2, "{units:#?}");
    assert!(units[0].contains("LoadCredential=") && units[0].contains("-c %d/ims.json"));
    assert!(units[1].contains("IMS_CLIENT_SECRET_FILE=%d/"));
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if !analyze.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: systemd-analyze is not installed (Debian package systemd)");
        return;
    }
    let dir = TempDir::new("systemd");
    for (i, unit) in units.iter().enumerate() {
        // verify checks that ExecStart's program exists: the one under test.
        let unit = unit.replace("/usr/local/bin/ims-token", common::run::BIN);
        let path = dir.join(&format!("ims-token-example-{i}.service"));
        std::fs::write(&path, unit).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "unit {i}: {stderr}"
        );
    }
}

/// Where `ims-token validate` asks when neither `--ims` nor credentials say.
#[test]
fn the_default_endpoint_is_production_ims() {
    assert_eq!(Endpoint::default(), endpoint("ims-na1.adobelogin.com"));
    assert_eq!(Endpoint::default().url(), "https://ims-na1.adobelogin.com");
}
