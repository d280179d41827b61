//! Every credentials kind through the public library API: the Adobe
//! Developer Console project JSON (which credential is chosen, and the
//! errors for every other entry type), AEM credentials as the AEM Developer
//! Console API returns them (revoked, `secretId`), the local development
//! token as a `Credentials` kind, and the 1 MiB capped read of files and
//! streams (FIFOs, devices and directories refused). Every error names its
//! JSON path and never shows a secret. Tokens come from the fake IMS on
//! 127.0.0.1. The environment variables are tested in `src/lib.rs` (a pure
//! lookup) and through the command in `cli_credentials`.

use crate::common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    closed_port, error_texts, fixture_json, fixture_path, path_str, read_fixture, unsigned_jwt,
    FakeIms, OAuthExpect, Reply, TempDir,
};
use ims_token::{Client, Credentials, Error, OAuthCredentials};
use serde_json::{json, Value};

const PROJECT: &str = "console-project.sample.json";
const AEM_API: &str = "aem-oauth-api.sample.json";
const LIST: &str = "project.workspace.details.credentials";

/// Every secret in the fixtures of this file, and the local token's signature.
const SECRETS: [&str; 6] = [
    "p8e-SAMPLE-console-secret-0a1b2c3d4e5f6789",
    "p8e-SAMPLE-console-second-secret-9f8e7d6c",
    "p8e-SAMPLE-console-jwt-secret-5566778899",
    "p8e-SAMPLE-console-webapp-secret-abcdef",
    "p8e-SAMPLE-aem-api-secret-13579bdf02468ace",
    "LOCAL-SIGNATURE-SECRET",
];

fn project() -> Value {
    fixture_json(PROJECT)
}

fn entries(root: &mut Value) -> &mut Vec<Value> {
    root["project"]["workspace"]["details"]["credentials"]
        .as_array_mut()
        .unwrap()
}

fn parse(root: &Value) -> Result<Credentials, Error> {
    Credentials::from_json(&root.to_string())
}

fn select(root: &Value, credential: &str) -> Result<Credentials, Error> {
    Credentials::from_json_selecting(&root.to_string(), Some(credential))
}

fn oauth(c: Credentials) -> OAuthCredentials {
    match c {
        Credentials::OAuth(o) => o,
        other => panic!("not OAuth credentials: {other:?}"),
    }
}

/// No text of the error (Display, Debug, sources) shows a secret.
fn assert_clean(e: &Error) {
    for text in error_texts(e) {
        for secret in SECRETS {
            assert!(!text.contains(secret), "error shows a secret: {text}");
        }
        assert!(!text.contains("BEGIN"), "error shows key material: {text}");
    }
}

/// A configuration error, clean; its message.
fn config_message(result: Result<Credentials, Error>) -> String {
    let e = result.unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(e.is_config() && !e.is_retryable(), "{e:?}");
    assert_clean(&e);
    e.to_string()
}

fn fetch_with_fake(credentials: &Credentials, expect: OAuthExpect, token: &str) -> String {
    let server = FakeIms::start(vec![Reply::check_oauth(expect, token)]);
    let client = Client::builder().retries(0).build().unwrap();
    let credentials = credentials.clone().with_ims(&server.url()).unwrap();
    let got = client.fetch(&credentials).unwrap();
    assert_eq!(server.hits(), 1);
    got.secret().to_owned()
}

// ---------------------------------------------------------------------------
// Developer Console project JSON

#[test]
fn a_project_gives_its_server_to_server_credential() {
    let text = read_fixture(PROJECT);
    for credentials in [
        Credentials::from_file(fixture_path(PROJECT)).unwrap(),
        Credentials::from_reader(text.as_bytes()).unwrap(),
        Credentials::from_json(&text).unwrap(),
    ] {
        let o = oauth(credentials);
        assert_eq!(o.client_id(), "a1b2c3d4e5f60718293a4b5c6d7e8f90");
        // The first of several secrets.
        assert_eq!(
            o.client_secret().secret(),
            "p8e-SAMPLE-console-secret-0a1b2c3d4e5f6789"
        );
        assert_eq!(
            o.scopes(),
            [
                "openid",
                "AdobeID",
                "read_organizations",
                "additional_info.projectedProductContext"
            ]
        );
        assert_eq!(o.ims().host(), "ims-na1.adobelogin.com");
        assert_eq!(o.org_id(), Some("0123456789ABCDEF01234567@AdobeOrg"));
        assert_eq!(
            o.technical_account_id(),
            Some("1A2B3C4D5E6F7A8B9C0D1E2F@techacct.adobe.com")
        );
        let p = o.project().unwrap();
        assert_eq!(
            (p.name(), p.workspace(), p.credential(), p.credential_id()),
            ("SampleProject", "Production", "Server Credential", "566222")
        );
        let debug = format!("{o:?}");
        for secret in SECRETS {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}

#[test]
fn a_project_credential_gets_a_token_from_the_fake_ims() {
    let credentials = Credentials::from_file(fixture_path(PROJECT)).unwrap();
    let expect = OAuthExpect {
        client_id: "a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
        client_secret: "p8e-SAMPLE-console-secret-0a1b2c3d4e5f6789".into(),
        scopes: credentials.scopes().to_vec(),
    };
    assert_eq!(
        fetch_with_fake(&credentials, expect, "tok-project"),
        "tok-project"
    );
}

#[test]
fn a_project_without_name_uses_the_title() {
    let mut root = project();
    root["project"].as_object_mut().unwrap().remove("name");
    let o = oauth(parse(&root).unwrap());
    assert_eq!(o.project().unwrap().name(), "Sample Project");
}

/// A project with two OAuth Server-to-Server credentials, `A` (id 1) and `B` (id 2).
fn two_server_credentials() -> Value {
    let mut root = project();
    let list = entries(&mut root);
    let mut second = list[1].clone();
    list[1]["name"] = "A".into();
    list[1]["id"] = "1".into();
    second["name"] = "B".into();
    second["id"] = json!(2);
    second["oauth_server_to_server"]["client_id"] = "client-b".into();
    list.push(second);
    root
}

#[test]
fn several_server_credentials_need_a_choice_by_name_or_id() {
    let root = two_server_credentials();
    let m = config_message(parse(&root));
    assert!(m.contains("several OAuth Server-to-Server"), "{m}");
    assert!(m.contains("`A` (id 1") && m.contains("`B` (id 2"), "{m}");
    assert!(m.contains("--credential"), "{m}");
    assert!(!m.contains("Legacy JWT"), "only the candidates: {m}");

    assert_eq!(oauth(select(&root, "B").unwrap()).client_id(), "client-b");
    assert_eq!(oauth(select(&root, "2").unwrap()).client_id(), "client-b");
    assert_eq!(
        oauth(select(&root, " A ").unwrap()).client_id(),
        "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    );
    let from_file = TempDir::new("select");
    let path = from_file.json("two.json", &root);
    let o = oauth(Credentials::from_file_selecting(&path, Some("B")).unwrap());
    assert_eq!(o.project().unwrap().credential(), "B");
    let o =
        oauth(Credentials::from_reader_selecting(root.to_string().as_bytes(), Some("1")).unwrap());
    assert_eq!(o.project().unwrap().credential_id(), "1");
}

#[test]
fn an_id_match_wins_over_a_name_match() {
    let mut root = two_server_credentials();
    // `B` is also the id of `A`.
    entries(&mut root)[1]["id"] = "B".into();
    let o = oauth(select(&root, "B").unwrap());
    assert_eq!(o.project().unwrap().credential(), "A");
}

#[test]
fn an_unknown_or_ambiguous_choice_lists_the_credentials() {
    let root = two_server_credentials();
    let m = config_message(select(&root, "nope"));
    assert!(m.contains("no credential named or with id `nope`"), "{m}");
    for label in [
        "`Legacy JWT` (id 566111, service)",
        "`A` (id 1",
        "`Web Login`",
    ] {
        assert!(m.contains(label), "lacks {label}: {m}");
    }
    let mut same = root.clone();
    entries(&mut same)[2]["name"] = "A".into();
    let m = config_message(select(&same, "A"));
    assert!(
        m.contains("several credentials of the project are named `A`"),
        "{m}"
    );
    assert!(m.contains("by id"), "{m}");
}

#[test]
fn a_jwt_entry_says_adobe_ended_it_and_to_migrate() {
    let check = |m: &str| {
        assert!(m.contains("`Legacy JWT`"), "{m}");
        assert!(m.contains(&format!("`{LIST}[0]`")), "{m}");
        assert!(m.contains("JWT service account"), "{m}");
        assert!(m.contains("Adobe ended JWT credentials"), "{m}");
        assert!(m.contains("migrate it to OAuth Server-to-Server"), "{m}");
    };
    check(&config_message(select(&project(), "Legacy JWT")));
    check(&config_message(select(&project(), "566111")));
    // A project with nothing but the JWT entry.
    let mut root = project();
    entries(&mut root).retain(|e| e["integration_type"] == "service");
    check(&config_message(parse(&root)));
    // An entry without `integration_type` is judged by its `jwt` object.
    entries(&mut root)[0]
        .as_object_mut()
        .unwrap()
        .remove("integration_type");
    check(&config_message(parse(&root)));
}

#[test]
fn user_login_and_other_entries_are_named_for_what_they_are() {
    let m = config_message(select(&project(), "Web Login"));
    assert!(m.contains("`Web Login` (id 566333, oauthwebapp)"), "{m}");
    assert!(
        m.contains("is an OAuth user-login credential: it needs a person to sign in"),
        "{m}"
    );
    assert!(m.contains(&format!("`{LIST}[2]`")), "{m}");
    let mut root = project();
    entries(&mut root)[2]["integration_type"] = "apikey".into();
    let m = config_message(select(&root, "566333"));
    assert!(
        m.contains("not an OAuth Server-to-Server credential"),
        "{m}"
    );
    // No server-to-server entry among several: all are listed.
    let mut root = project();
    entries(&mut root).remove(1);
    let m = config_message(parse(&root));
    assert!(m.contains("no OAuth Server-to-Server credential"), "{m}");
    assert!(
        m.contains("`Legacy JWT`") && m.contains("`Web Login`"),
        "{m}"
    );
    // None at all.
    let mut root = project();
    entries(&mut root).clear();
    let m = config_message(parse(&root));
    assert!(m.contains(&format!("`{LIST}` is empty")), "{m}");
}

#[test]
fn hostile_names_are_printed_without_control_characters() {
    let mut root = two_server_credentials();
    entries(&mut root)[1]["name"] = "A\u{1b}[2J\r\nB".into();
    let m = config_message(parse(&root));
    assert!(!m.chars().any(char::is_control), "{m:?}");
}

#[test]
fn a_choice_for_credentials_that_are_not_a_project_is_an_error() {
    let text = read_fixture("oauth-credentials.sample.json");
    let m = config_message(Credentials::from_json_selecting(&text, Some("x")));
    assert!(
        m.contains("`x`") && m.contains("not an Adobe Developer Console project"),
        "{m}"
    );
}

#[test]
fn missing_or_mistyped_project_fields_name_their_path() {
    let s2s = format!("{LIST}[1].oauth_server_to_server");
    let cases: Vec<(&str, Value, String)> = vec![
        (
            "/project/org/ims_org_id",
            Value::Null,
            "project.org.ims_org_id".into(),
        ),
        ("/project/org", json!("org"), "project.org".into()),
        (
            "/project/workspace/details/credentials",
            json!({}),
            LIST.into(),
        ),
        (
            "/project/workspace/details",
            json!([]),
            "project.workspace.details".into(),
        ),
        (
            "/project/workspace/details/credentials/1",
            json!("x"),
            format!("{LIST}[1]"),
        ),
        (
            "/project/workspace/details/credentials/1/oauth_server_to_server",
            Value::Null,
            s2s.clone(),
        ),
        (
            "/project/workspace/details/credentials/1/oauth_server_to_server/client_secrets",
            Value::Null,
            format!("{s2s}.client_secrets"),
        ),
        (
            "/project/workspace/details/credentials/1/oauth_server_to_server/client_secrets",
            json!([]),
            format!("{s2s}.client_secrets"),
        ),
        (
            "/project/workspace/details/credentials/1/oauth_server_to_server/client_secrets",
            json!(7),
            format!("{s2s}.client_secrets"),
        ),
        (
            "/project/workspace/details/credentials/1/oauth_server_to_server/client_secrets",
            json!([7, "p8e-SAMPLE-console-second-secret-9f8e7d6c"]),
            format!("{s2s}.client_secrets[0]"),
        ),
        (
            "/project/workspace/details/credentials/1/oauth_server_to_server/client_secrets",
            json!(["  ", "p8e-SAMPLE-console-second-secret-9f8e7d6c"]),
            format!("{s2s}.client_secrets[0]"),
        ),
        (
            "/project/workspace/details/credentials/1/oauth_server_to_server/client_id",
            json!(42),
            format!("{s2s}.client_id"),
        ),
        (
            "/project/workspace/details/credentials/1/oauth_server_to_server/scopes",
            json!([]),
            format!("{s2s}.scopes"),
        ),
        (
            "/project/workspace/details/credentials/1/oauth_server_to_server/scopes",
            json!({"a": 1}),
            format!("{s2s}.scopes"),
        ),
    ];
    for (pointer, value, path) in cases {
        let mut root = project();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = root.pointer_mut(parent).unwrap();
        match (target, value.is_null()) {
            (Value::Object(map), true) => {
                map.remove(key);
            }
            (Value::Object(map), false) => {
                map.insert(key.to_owned(), value);
            }
            (Value::Array(items), _) => items[key.parse::<usize>().unwrap()] = value,
            (other, _) => panic!("{pointer}: {other}"),
        }
        let m = config_message(parse(&root));
        assert!(m.contains(&format!("`{path}`")), "{pointer}: {m}");
    }
}

#[test]
fn a_lone_string_secret_is_taken_as_it_is() {
    let mut root = project();
    entries(&mut root)[1]["oauth_server_to_server"]["client_secrets"] =
        "p8e-SAMPLE-console-second-secret-9f8e7d6c".into();
    let o = oauth(parse(&root).unwrap());
    assert_eq!(
        o.client_secret().secret(),
        "p8e-SAMPLE-console-second-secret-9f8e7d6c"
    );
}

// ---------------------------------------------------------------------------
// AEM credentials from the AEM Developer Console API

#[test]
fn aem_api_credentials_ignore_the_secret_id() {
    let o = oauth(Credentials::from_file(fixture_path(AEM_API)).unwrap());
    assert_eq!(o.client_id(), "cm-p12345-e67890-oauth-2");
    assert_eq!(
        o.client_secret().secret(),
        "p8e-SAMPLE-aem-api-secret-13579bdf02468ace"
    );
    let expect = OAuthExpect {
        client_id: o.client_id().into(),
        client_secret: o.client_secret().secret().into(),
        scopes: o.scopes().to_vec(),
    };
    let token = fetch_with_fake(&Credentials::OAuth(o), expect, "tok-aem-api");
    assert_eq!(token, "tok-aem-api");
}

#[test]
fn revoked_aem_credentials_are_a_config_error() {
    let mut root = fixture_json(AEM_API);
    root["integration"]["revoked"] = true.into();
    let m = config_message(parse(&root));
    assert!(
        m.contains("these credentials were revoked in the AEM Developer Console"),
        "{m}"
    );
    assert!(m.contains("`integration.revoked`"), "{m}");
    // The service account shape too, and without the wrapper.
    let mut service = fixture_json("service-credentials.sample.json");
    service["integration"]["revoked"] = true.into();
    assert!(config_message(parse(&service)).contains("revoked"));
    let bare = root["integration"].clone();
    let m = config_message(parse(&bare));
    assert!(m.contains("revoked") && m.contains("`revoked`"), "{m}");
    // Mistyped.
    root["integration"]["revoked"] = "no".into();
    let m = config_message(parse(&root));
    assert!(
        m.contains("`integration.revoked` must be true or false"),
        "{m}"
    );
}

#[test]
fn a_secret_id_without_the_secret_says_it_is_not_the_secret() {
    let mut root = fixture_json(AEM_API);
    root["integration"]["technicalAccount"]
        .as_object_mut()
        .unwrap()
        .remove("clientSecret");
    let m = config_message(parse(&root));
    assert!(
        m.contains("`integration.technicalAccount.clientSecret`"),
        "{m}"
    );
    assert!(
        m.contains("`integration.secretId` is only the secret's id"),
        "{m}"
    );
    assert!(!m.contains("2468ace0"), "the id is not quoted: {m}");
}

#[test]
fn neither_kind_names_every_kind() {
    let m = config_message(parse(&json!({"integration": {"imsEndpoint": "x"}})));
    for what in [
        "integration.privateKey",
        "integration.scopes",
        "integration.accessToken",
        "project",
    ] {
        assert!(m.contains(what), "lacks {what}: {m}");
    }
}

// ---------------------------------------------------------------------------
// The local development token

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// A token whose payload has these claims, signed by nobody.
fn local_token(claims: Value) -> String {
    let header = r#"{"alg":"RS256","x5u":"ims_na1-key-at-1.cer"}"#;
    unsigned_jwt(header, &claims, "LOCAL-SIGNATURE-SECRET")
}

fn local_claims(created_ms: u128, expires_in_ms: u64) -> Value {
    json!({
        "type": "access_token",
        "client_id": "dev-console-prod",
        "scope": "AdobeID,openid,read_organizations",
        "created_at": created_ms.to_string(),
        "expires_in": expires_in_ms.to_string(),
    })
}

fn local(c: Credentials) -> ims_token::LocalToken {
    match c {
        Credentials::LocalToken(t) => t,
        other => panic!("not a local token: {other:?}"),
    }
}

#[test]
fn a_local_token_is_handed_out_as_it_is_without_a_request() {
    let created = now_ms() - 3_600_000;
    let token = local_token(local_claims(created, 86_400_000));
    let file = json!({"ok": true, "statusCode": 200, "accessToken": token});
    let credentials = parse(&file).unwrap();
    let debug = format!("{credentials:?}");
    assert!(!debug.contains("LOCAL-SIGNATURE-SECRET"), "{debug}");
    assert_eq!(credentials.client_id(), "dev-console-prod");
    assert_eq!(
        credentials.scopes(),
        ["AdobeID", "openid", "read_organizations"]
    );

    // Nothing listens at the endpoint: no request is made.
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let credentials = credentials.with_ims(&closed).unwrap();
    let client = Client::builder().retries(0).build().unwrap();
    let got = client.fetch(&credentials).unwrap();
    assert_eq!(got.secret(), token);
    let expires = local(credentials).expires_at().unwrap();
    let want = UNIX_EPOCH + Duration::from_millis(u64::try_from(created).unwrap() + 86_400_000);
    assert_eq!(expires, want);
    assert_eq!(got.expires_at(), want);
    // In the `integration` object too.
    let wrapped = json!({"integration": {"accessToken": token}});
    assert_eq!(
        client.fetch(&parse(&wrapped).unwrap()).unwrap().secret(),
        token
    );
}

#[test]
fn an_expired_local_token_says_to_download_a_new_one() {
    let token = local_token(local_claims(now_ms() - 2 * 86_400_000, 86_400_000));
    let credentials = parse(&json!({"accessToken": token})).unwrap();
    let client = Client::builder().retries(0).build().unwrap();
    let e = client.fetch(&credentials).unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("expired 24 hours ago"), "{m}");
    assert!(m.contains("download a new one"), "{m}");
    assert_clean(&e);
    let at = local(credentials).access_token(SystemTime::now());
    assert!(matches!(at, Err(Error::Config { .. })));
}

#[test]
fn a_local_token_without_a_readable_expiry_is_handed_out() {
    for token in [
        "opaque-LOCAL-SIGNATURE-SECRET",
        "a.%%%.LOCAL-SIGNATURE-SECRET",
    ] {
        let credentials = parse(&json!({"accessToken": token})).unwrap();
        assert_eq!(local(credentials.clone()).expires_at(), None);
        let now = SystemTime::now();
        let got = local(credentials).access_token(now).unwrap();
        assert_eq!((got.secret(), got.expires_at()), (token, now));
    }
}

#[test]
fn a_bad_local_token_field_is_a_config_error() {
    for (value, what) in [
        (json!(7), "must be a string"),
        (json!(""), "is empty"),
        (
            json!("abc def\r\nX-Injected: 1"),
            "spaces, control characters",
        ),
        (json!("abc\u{e9}def"), "not visible ASCII"),
    ] {
        let m = config_message(parse(&json!({"accessToken": value})));
        assert!(m.contains("`accessToken`") && m.contains(what), "{m}");
    }
    let token = local_token(local_claims(now_ms(), 86_400_000));
    let credentials = parse(&json!({"accessToken": token})).unwrap();
    let e = credentials.with_scopes("openid").unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
}

// ---------------------------------------------------------------------------
// The capped read

/// JSON of exactly `size` bytes: the OAuth fixture padded with spaces.
fn padded_json(size: usize) -> String {
    let text = fixture_json("oauth-credentials.sample.json").to_string();
    format!("{text}{}", " ".repeat(size - text.len()))
}

const MIB: usize = 1024 * 1024;

#[test]
fn input_over_one_mib_is_too_large() {
    assert_eq!(ims_token::MAX_CREDENTIALS_BYTES, MIB as u64);
    let dir = TempDir::new("cap");
    let exact = dir.file("exact.json", &padded_json(MIB));
    assert!(Credentials::from_file(&exact).is_ok());
    assert!(Credentials::from_reader(padded_json(MIB).as_bytes()).is_ok());

    let over = dir.file("over.json", &padded_json(MIB + 1));
    let e = Credentials::from_file(&over).unwrap_err();
    assert!(matches!(e, Error::Io { .. }) && e.is_config(), "{e:?}");
    let texts = error_texts(&e).join(" | ");
    assert!(
        texts.contains(&over) && texts.contains("too large: more than 1 MiB"),
        "{texts}"
    );
    assert!(!texts.contains("column"), "not a JSON error: {texts}");

    let e = Credentials::from_reader(padded_json(MIB + 1).as_bytes()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(error_texts(&e).join(" ").contains("too large"), "{e}");
}

#[test]
fn fifos_devices_and_directories_are_refused_at_once() {
    let dir = TempDir::new("special");
    let fifo = dir.join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for (path, kind) in [
        (path_str(&fifo), "a FIFO"),
        ("/dev/zero".to_owned(), "a device"),
        (path_str(dir.path()), "a directory"),
    ] {
        let started = Instant::now();
        // Nothing writes to the FIFO: a blocking open would hang here.
        let e = Credentials::from_file(&path).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} took too long"
        );
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
        let texts = error_texts(&e).join(" | ");
        assert!(texts.contains(&path), "{texts}");
        assert!(
            texts.contains(&format!("not a regular file ({kind})")),
            "{texts}"
        );
    }
}

#[test]
fn a_blank_choice_is_refused_and_long_lists_are_cut() {
    let mut root = project();
    entries(&mut root)[2]
        .as_object_mut()
        .unwrap()
        .remove("name");
    for blank in ["", "  "] {
        let m = config_message(select(&root, blank));
        assert!(m.contains("given but empty"), "{m}");
    }
    let mut many = project();
    let first = entries(&mut many)[0].clone();
    entries(&mut many).extend((0..1000).map(|i| {
        let mut e = first.clone();
        e["name"] = format!("jwt-{i}").into();
        e
    }));
    let m = config_message(select(&many, "nope"));
    assert!(m.contains("and 983 more") && m.len() < 4000, "{}", m.len());
}

// ---------------------------------------------------------------------------
// The accessors every kind answers

#[test]
fn every_kind_tells_its_org_and_client_id() {
    const ORG: &str = "0123456789ABCDEF01234567@AdobeOrg";
    let file = |name: &str| Credentials::from_file(fixture_path(name)).unwrap();
    let token = local_token(local_claims(now_ms(), 86_400_000));
    let key = ims_token::PrivateKey::from_pem(&read_fixture("sample-key.pkcs8.pem")).unwrap();
    let account = ims_token::ServiceAccount::builder()
        .client_id("built-jwt")
        .client_secret(ims_token::ClientSecret::new("s"))
        .org_id("BUILTORG@AdobeOrg")
        .technical_account_id("T@techacct.adobe.com")
        .private_key(key)
        .metascopes("ent_aem_cloud_api")
        .build()
        .unwrap();
    let oauth_builder = || {
        OAuthCredentials::builder()
            .client_id("built-oauth")
            .client_secret(ims_token::ClientSecret::new("s"))
            .scopes("openid")
    };
    let with_org = oauth_builder().org_id("BUILTORG@AdobeOrg").build().unwrap();
    let without_org = oauth_builder().build().unwrap();
    let empty_org = oauth_builder().org_id("").build().unwrap();
    let cases: Vec<(&str, Credentials, Option<&str>, &str)> = vec![
        (
            "Developer Console project",
            file(PROJECT),
            Some(ORG),
            "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        ),
        (
            "AEM service credentials (JWT)",
            file("service-credentials.sample.json"),
            Some(ORG),
            "cm-p12345-e67890-integration-1",
        ),
        (
            "AEM OAuth Server-to-Server",
            file("oauth-credentials.sample.json"),
            None,
            "cm-p12345-e67890-oauth-1",
        ),
        (
            "AEM OAuth from the API",
            file(AEM_API),
            None,
            "cm-p12345-e67890-oauth-2",
        ),
        (
            "local development token",
            Credentials::from_json(&json!({ "accessToken": token }).to_string()).unwrap(),
            None,
            "dev-console-prod",
        ),
        (
            "service account builder",
            Credentials::ServiceAccount(account),
            Some("BUILTORG@AdobeOrg"),
            "built-jwt",
        ),
        (
            "OAuth builder with an org",
            Credentials::OAuth(with_org),
            Some("BUILTORG@AdobeOrg"),
            "built-oauth",
        ),
        (
            "OAuth builder without an org",
            Credentials::OAuth(without_org),
            None,
            "built-oauth",
        ),
        (
            "OAuth builder with an empty org",
            Credentials::OAuth(empty_org),
            None,
            "built-oauth",
        ),
    ];
    for (kind, credentials, org, client_id) in cases {
        assert_eq!(credentials.org_id(), org, "{kind}");
        assert_eq!(credentials.client_id(), client_id, "{kind}");
    }
}

#[test]
fn with_ims_takes_the_text_ims_takes_and_refuses_a_bad_endpoint() {
    let credentials =
        Credentials::from_file(fixture_path("oauth-credentials.sample.json")).unwrap();
    let staged = credentials
        .clone()
        .with_ims("ims-na1-stg1.adobelogin.com")
        .unwrap();
    assert_eq!(staged.ims().url(), "https://ims-na1-stg1.adobelogin.com");
    let local = credentials
        .clone()
        .with_ims("http://127.0.0.1:8080/")
        .unwrap();
    assert_eq!(local.ims().url(), "http://127.0.0.1:8080");
    for bad in [
        "",
        "http://example.com",
        "ftp://ims.example.com",
        "https://ims.example.com/path",
    ] {
        let e = credentials.clone().with_ims(bad).unwrap_err();
        let parsed = ims_token::Endpoint::parse(bad).unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{bad}: {e:?}");
        assert_eq!(e.to_string(), parsed.to_string(), "{bad}");
    }
}
