//! The commands of issue 15, run as a script runs them: `decode`,
//! `validate` and `revoke` with the token on stdin (never in an argument),
//! against the fake IMS, which issues JWT-shaped tokens and keeps what it
//! revoked; `--org-id` and `--resource` on the wire and in the `--cache` key.
//! Every run talks only to 127.0.0.1 and is bounded (see `common::run`).

use crate::common;

use std::fs;
use std::time::{Duration, UNIX_EPOCH};

use common::run::{run, run_stdin, Run};
use common::{
    assert_token_requests, closed_port, fixture_path, ims_access_token, ims_token_of_type,
    path_str, FakeIms, OAuthExpect, OAuthOptions, Reply, TempDir, TokenSpec,
};
use serde_json::Value;

/// `oauth-credentials.sample.json`, whose client the fake knows.
fn oauth_creds() -> String {
    path_str(&fixture_path("oauth-credentials.sample.json"))
}

/// What never shows in the output of a run that was given `token`: the
/// token, its signature, and (by [`Run::assert_no_secrets`]) the fixtures'
/// secrets.
fn assert_token_hidden(run: &Run, token: &str) {
    let signature = token.rsplit('.').next().unwrap().to_owned();
    run.assert_no_secrets(&[token.to_owned(), signature]);
}

/// A token the fake issued to the sample client, `age_ms` ago.
fn issued(age_ms: u64) -> String {
    issued_spec(age_ms).0
}

/// [`issued`], and what it says.
fn issued_spec(age_ms: u64) -> (String, TokenSpec) {
    let mut spec = TokenSpec::new(&OAuthExpect::sample().client_id);
    spec.created_at_ms -= age_ms;
    (ims_access_token(&spec), spec)
}

fn rfc3339_ms(ms: u64) -> String {
    ims_token::rfc3339(UNIX_EPOCH + Duration::from_millis(ms))
}

// ---------------------------------------------------------------------------
// decode

#[test]
fn decode_shows_what_a_real_shaped_token_says_and_never_the_token() {
    let spec = TokenSpec::new("my-client-id");
    let token = ims_access_token(&spec);
    let out = run_stdin(&["decode"], &format!("{token}\n"));
    let text = out.quiet().to_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert_eq!(
        lines[..5],
        [
            "type: access_token",
            "client_id: my-client-id",
            "user_id: 1A2B3C4D5E6F7A8B9C0D1E2F@techacct.adobe.com",
            "scope: openid,AdobeID,read_organizations",
            "as: ims-na1",
        ]
    );
    assert_eq!(
        lines[5],
        format!("created_at: {}", rfc3339_ms(spec.created_at_ms))
    );
    let expiry = format!("expires_at: {} (", rfc3339_ms(spec.expires_at_ms()));
    assert!(
        lines[6].starts_with(&expiry) && lines[6].ends_with(" hours left)"),
        "{text}"
    );
    assert_token_hidden(&out, &token);

    let out = run_stdin(&["decode", "--format", "json"], &token);
    let json: Value = serde_json::from_str(out.quiet()).unwrap();
    assert_eq!(json["client_id"], "my-client-id");
    assert_eq!(
        json["scope"],
        serde_json::json!(["openid", "AdobeID", "read_organizations"])
    );
    assert_eq!(json["expires_at"], rfc3339_ms(spec.expires_at_ms()));
    assert_eq!(json["expired"], false);
    assert!(json["expires_in"].as_u64().unwrap() > 23 * 3600);
    assert_token_hidden(&out, &token);
}

#[test]
fn decode_shows_an_expired_token_too_and_says_so() {
    let mut spec = TokenSpec::new("my-client-id");
    spec.created_at_ms -= 3 * 86_400_000;
    let token = ims_access_token(&spec);
    let out = run_stdin(&["decode"], &token);
    let last = out.quiet().lines().last().unwrap().to_owned();
    assert!(last.ends_with("(expired 2 days ago)"), "{last}");
    let out = run_stdin(&["decode", "--format=json"], &token);
    let json: Value = serde_json::from_str(out.quiet()).unwrap();
    assert_eq!(
        (json["expired"].clone(), json["expires_in"].clone()),
        (true.into(), 0.into())
    );
}

#[test]
fn format_text_is_what_decode_and_validate_print_by_default() {
    let (token, spec) = issued_spec(0);
    let plain = run_stdin(&["decode"], &token).quiet().to_owned();
    let out = run_stdin(&["decode", "--format", "text"], &token);
    assert_eq!(out.quiet(), plain);
    assert_token_hidden(&out, &token);
    let server = FakeIms::start(vec![Reply::CheckValidate {
        client_id: OAuthExpect::sample().client_id,
    }]);
    let out = run_stdin(
        &["validate", "--ims", &server.url(), "--format=text"],
        &token,
    );
    let until = rfc3339_ms(spec.expires_at_ms());
    assert_eq!(out.quiet(), format!("valid until {until}\n"));
    // Only they print text.
    let line = run(&["--format", "text"]).fails_alone(2).to_owned();
    assert!(
        line.contains("--format text is for decode and validate"),
        "{line}"
    );
}

#[test]
fn decode_of_garbage_is_one_line_and_exit_3() {
    let refresh = ims_token_of_type(&TokenSpec::new("c"), "refresh_token");
    for (input, why) in [
        ("not a token at all\n", "it is not three base64url segments"),
        (
            "tok-SECRET-opaque-token-0001",
            "it is not three base64url segments",
        ),
        (
            refresh.as_str(),
            "it is an IMS `refresh_token`, not an access token",
        ),
    ] {
        let out = run_stdin(&["decode"], input);
        let line = out.fails_alone(3);
        let expected = format!("ims-token: the input is not an IMS access token: {why}");
        assert!(line.starts_with(&expected), "{input}: {line}");
        assert_token_hidden(&out, input.trim());
    }
    // No token at all is a usage error.
    let line = run_stdin(&["decode"], " \n").fails_alone(2);
    assert!(line.starts_with("ims-token: no token on stdin"), "{line}");
    let line = run(&["decode"]).fails_alone(2);
    assert!(line.starts_with("ims-token: no token on stdin"), "{line}");
}

#[test]
fn a_token_given_as_an_argument_is_refused_and_not_shown() {
    let token = issued(0);
    let server = FakeIms::start(vec![]);
    let url = server.url();
    let creds = oauth_creds();
    for args in [
        vec!["decode", token.as_str()],
        vec!["validate", "--ims", &url, token.as_str()],
        vec!["revoke", "-c", &creds, "--ims", &url, token.as_str()],
        vec![token.as_str(), "validate", "--ims", &url],
    ] {
        // The token on stdin too: the argument is refused all the same.
        let out = run_stdin(&args, &token);
        let line = out.fails_alone(2);
        if args[0] != token {
            assert!(line.contains("takes no argument"), "{line}");
            assert!(line.contains("pass the token on stdin"), "{line}");
        }
        assert_token_hidden(&out, &token);
    }
    assert_eq!(server.hits(), 0);
    // Other formats and flags for another command are usage errors too.
    for args in [
        &["decode", "--format", "token"][..],
        &["decode", "--format", "headers"],
        &["decode", "-c", "creds.json"],
        &["validate", "-c", "-"],
    ] {
        let out = run_stdin(args, &token);
        out.fails_alone(2);
    }
}

// ---------------------------------------------------------------------------
// validate and revoke

#[test]
fn validate_before_and_after_revoke_and_revoke_drops_the_cached_token() {
    let expect = OAuthExpect::sample();
    let (first, spec) = issued_spec(0);
    let second = issued(1_000);
    let validate = || Reply::CheckValidate {
        client_id: expect.client_id.clone(),
    };
    let server = FakeIms::start(vec![
        Reply::check_oauth(expect.clone(), &first),
        validate(),
        validate(),
        Reply::CheckInvalidate {
            expect: expect.clone(),
        },
        validate(),
        Reply::check_oauth(expect.clone(), &second),
    ]);
    let url = server.url();
    let dir = TempDir::new("revoke");
    let cache = path_str(&dir.join("token"));
    let creds = oauth_creds();
    let token_run = || run(&["-c", &creds, "--ims", &url, "--cache", &cache]);
    assert_eq!(token_run().quiet(), format!("{first}\n"));
    // A cache hit: no request.
    assert_eq!(token_run().quiet(), format!("{first}\n"));
    assert_eq!(server.hits(), 1);

    // Valid, for the credentials' client, and for the one the token names.
    let until = rfc3339_ms(spec.expires_at_ms());
    let out = run_stdin(&["validate", "-c", &creds, "--ims", &url], &first);
    assert_eq!(out.quiet(), format!("valid until {until}\n"));
    assert_token_hidden(&out, &first);
    let out = run_stdin(&["validate", "--ims", &url, "--format", "json"], &first);
    let json: Value = serde_json::from_str(out.quiet()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "valid": true, "expires_at": until })
    );

    // Revoked, and dropped from the cache.
    let out = run_stdin(
        &["revoke", "-c", &creds, "--ims", &url, "--cache", &cache],
        &format!("{first}\n"),
    );
    assert_eq!(
        out.quiet(),
        format!("revoked, and dropped from the cache {cache:?}\n")
    );
    assert_token_hidden(&out, &first);
    assert_eq!(server.revoked(), 1);
    assert!(!fs::read_to_string(&cache).unwrap().contains(&first));

    // Now IMS does not accept it: exit 4 and IMS's reason.
    let out = run_stdin(&["validate", "-c", &creds, "--ims", &url], &first);
    assert_eq!(
        out.fails_alone(4),
        "ims-token: IMS does not accept the token: revoked"
    );
    assert_token_hidden(&out, &first);
    assert_token_requests(&server, &first);

    // The next run exchanges instead of handing out the revoked token.
    assert_eq!(token_run().quiet(), format!("{second}\n"));
    assert_eq!(server.hits(), 6);
}

#[test]
fn revoke_leaves_a_cache_that_holds_another_token() {
    let expect = OAuthExpect::sample();
    let cached = issued(0);
    let leaked = issued(60_000);
    let server = FakeIms::start(vec![
        Reply::check_oauth(expect.clone(), &cached),
        Reply::CheckInvalidate { expect },
    ]);
    let url = server.url();
    let dir = TempDir::new("revoke-other");
    let cache = path_str(&dir.join("token"));
    let creds = oauth_creds();
    let token_args = ["-c", creds.as_str(), "--ims", &url, "--cache", &cache];
    assert_eq!(run(&token_args).quiet(), format!("{cached}\n"));
    let out = run_stdin(
        &["revoke", "-c", &creds, "--ims", &url, "--cache", &cache],
        &leaked,
    );
    assert_eq!(
        out.quiet(),
        format!("revoked; the cache {cache:?} does not hold it\n")
    );
    // Still served from the cache: no third request.
    assert_eq!(run(&token_args).quiet(), format!("{cached}\n"));
    assert_eq!(server.hits(), 2);
    // Without --cache, one line.
    let server = FakeIms::start(vec![Reply::CheckInvalidate {
        expect: OAuthExpect::sample(),
    }]);
    let out = run_stdin(&["revoke", "-c", &creds, "--ims", &server.url()], &leaked);
    assert_eq!(out.quiet(), "revoked\n");
}

/// `ims-token revoke -c CREDS --ims URL < TOKEN`, which fails with `code`
/// and does not show the token: its error line.
fn revoke_refused(creds: &str, url: &str, token: &str, code: i32) -> String {
    let out = run_stdin(&["revoke", "-c", creds, "--ims", url], token);
    let line = out.fails_alone(code);
    assert_token_hidden(&out, token);
    line
}

#[test]
fn revoke_needs_the_right_secret_and_validate_a_client() {
    let token = issued(0);
    let mut wrong = OAuthExpect::sample();
    wrong.client_secret = "another-secret".into();
    let server = FakeIms::start(vec![
        Reply::CheckInvalidate { expect: wrong },
        Reply::CheckValidate {
            client_id: "another-client".into(),
        },
    ]);
    let url = server.url();
    let creds = oauth_creds();
    let line = revoke_refused(&creds, &url, &token, 4);
    assert!(
        line.contains("IMS rejected the request (401 invalid_client"),
        "{line}"
    );
    assert_eq!(server.revoked(), 0);
    let out = run_stdin(&["validate", "-c", &creds, "--ims", &url], &token);
    let line = out.fails_alone(4);
    assert!(
        line.contains("IMS rejected the request (400 invalid_client"),
        "{line}"
    );
    // revoke needs credentials; validate needs them for a token that names
    // no client.
    let out = run_stdin(&["revoke", "--ims", &url], &token);
    assert!(out.fails_alone(2).contains("no credentials"));
    let out = run_stdin(&["validate", "--ims", &url], "opaque-token-0001");
    let line = out.fails_alone(3);
    assert!(
        line.ends_with("give the credentials of its client with -c"),
        "{line}"
    );
    // Not one word: never posted as a token.
    let out = run_stdin(&["validate", "-c", &creds, "--ims", &url], "{\"a\": 1}\n");
    assert!(out.fails_alone(3).contains("does not hold one token"));
    assert_eq!(server.hits(), 2);
}

#[test]
fn validate_shows_ims_reason_on_one_line_and_maps_network_trouble() {
    let token = issued(0);
    let hostile = r#"{"valid":false,"reason":"bad\ntoken\u001b[31m here"}"#;
    let server = FakeIms::start(vec![Reply::json(200, hostile)]);
    let out = run_stdin(&["validate", "--ims", &server.url()], &token);
    let line = out.fails_alone(4);
    assert!(
        line.starts_with("ims-token: IMS does not accept the token: bad"),
        "{line}"
    );
    assert!(!line.contains('\u{1b}'), "{line:?}");

    let url = format!("http://127.0.0.1:{}", closed_port());
    let out = run_stdin(&["validate", "--ims", &url, "--retries", "0"], &token);
    assert!(out.fails_alone(5).contains("cannot reach IMS at"));

    let moved = Reply::json(302, "").with_header("Location", "http://127.0.0.1:1/elsewhere");
    let server = FakeIms::start(vec![moved]);
    let out = run_stdin(&["validate", "--ims", &server.url()], &token);
    let line = out.fails_alone(1);
    assert!(
        line.contains("it is not followed because the request carries the token: check"),
        "{line}"
    );
    assert_token_hidden(&out, &token);
}

// ---------------------------------------------------------------------------
// --org-id and --resource

#[test]
fn org_id_and_resources_go_on_the_wire_and_into_the_cache_key() {
    let expect = OAuthExpect::sample();
    let org = |org: &str, resources: &[&str]| OAuthOptions {
        org_id: Some(org.to_owned()),
        resources: resources.iter().map(|r| r.to_string()).collect(),
    };
    let resources = ["https://api.example.com/x?a=1&b=2 c", "urn:adobe:aem"];
    let server = FakeIms::start(vec![
        Reply::check_oauth_with(expect.clone(), org("A@AdobeOrg", &[]), "tok-SECRET-org-a"),
        Reply::check_oauth_with(expect.clone(), org("B@AdobeOrg", &[]), "tok-SECRET-org-b"),
        Reply::check_oauth_with(
            expect.clone(),
            org("B@AdobeOrg", &resources),
            "tok-SECRET-res",
        ),
    ]);
    let url = server.url();
    let dir = TempDir::new("org");
    // A cache directory: a file per credential set, so each org keeps its own.
    let cache = format!("{}/", path_str(&dir.join("tokens")));
    let creds = oauth_creds();
    let base = ["-c", creds.as_str(), "--ims", &url, "--cache", &cache];
    let with = |more: &[&str]| {
        let args: Vec<&str> = base.iter().copied().chain(more.iter().copied()).collect();
        run(&args)
    };
    assert_eq!(
        with(&["--org-id", "A@AdobeOrg"]).quiet(),
        "tok-SECRET-org-a\n"
    );
    assert_eq!(with(&["--org-id=A@AdobeOrg"]).quiet(), "tok-SECRET-org-a\n");
    assert_eq!(server.hits(), 1, "the same org: a cache hit");
    assert_eq!(
        with(&["--org-id", "B@AdobeOrg"]).quiet(),
        "tok-SECRET-org-b\n"
    );
    assert_eq!(server.hits(), 2, "another org: an exchange");
    assert_eq!(
        with(&["--org-id", "A@AdobeOrg"]).quiet(),
        "tok-SECRET-org-a\n"
    );
    assert_eq!(server.hits(), 2, "each org's token is kept in its own file");
    let out = with(&[
        "--org-id",
        "B@AdobeOrg",
        "--resource",
        resources[0],
        "--resource",
        resources[1],
    ]);
    assert_eq!(out.quiet(), "tok-SECRET-res\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "resources: an exchange");
    let orgs: Vec<Option<&str>> = requests.iter().map(|r| r.form_value("org_id")).collect();
    assert_eq!(
        orgs,
        [Some("A@AdobeOrg"), Some("B@AdobeOrg"), Some("B@AdobeOrg")]
    );
    // The org of the credentials, for the headers, never goes to IMS.
    assert!(requests
        .iter()
        .all(|r| r.form.iter().filter(|(k, _)| k == "org_id").count() == 1));
}

#[test]
fn a_jwt_account_or_a_local_token_cannot_ask_for_an_org_or_a_resource() {
    let server = FakeIms::start(vec![]);
    let url = server.url();
    let jwt = path_str(&fixture_path("service-credentials.sample.json"));
    let dir = TempDir::new("local");
    let token = issued(0);
    let local = dir.json("local.json", &serde_json::json!({ "accessToken": token }));
    for (creds, kind) in [
        (&jwt, "a JWT service account"),
        (&local, "a local development token"),
    ] {
        for (flag, what) in [("--org-id", "an `org_id`"), ("--resource", "a `resource`")] {
            let out = run(&["-c", creds, "--ims", &url, flag, "x"]);
            assert_eq!(
                out.fails(3),
                format!(
                    "ims-token: {what} to send to IMS applies to OAuth Server-to-Server \
                     credentials only; these are {kind}"
                )
            );
        }
    }
    // A local token's file holds no client secret to revoke with.
    let line = revoke_refused(&local, &url, &token, 3);
    assert!(
        line.contains("a local development token comes without a client secret"),
        "{line}"
    );
    assert_eq!(server.hits(), 0);
}
