//! Reading credentials (AEM service credentials, the bare `integration`
//! object, OAuth Server-to-Server), building them in code, the error for
//! each missing or mistyped field, IMS endpoint rules, and that no secret
//! ever shows up in `Debug` or `Display`.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{fixture_json, fixture_path, read_fixture, TempDir};
use ims_token::{
    AccessToken, ClientSecret, Credentials, Endpoint, Error, OAuthCredentials, PrivateKey,
    ServiceAccount, TokenProvider,
};
use serde_json::{json, Value};

const SERVICE_FILE: &str = "service-credentials.sample.json";
const OAUTH_FILE: &str = "oauth-credentials.sample.json";
const KEY_FILE: &str = "sample-key.pkcs1.pem";

const SERVICE_SECRET: &str = "p8e-SAMPLE-not-a-real-secret-0123456789abcdef";
const OAUTH_SECRET: &str = "p8e-SAMPLE-oauth-secret-fedcba9876543210";
const TOKEN_SECRET: &str = "tok-SECRET-123";

const CLIENT_ID: &str = "cm-p12345-e67890-integration-1";
const ORG_ID: &str = "0123456789ABCDEF01234567@AdobeOrg";
const TECH_ACCOUNT: &str = "1A2B3C4D5E6F7A8B9C0D1E2F@techacct.adobe.com";
const OAUTH_SCOPES: [&str; 5] = [
    "read_pc.dma_aem_ams",
    "openid",
    "AdobeID",
    "read_organizations",
    "additional_info.projectedProductContext",
];

fn service_text() -> String {
    read_fixture(SERVICE_FILE)
}

fn oauth_text() -> String {
    read_fixture(OAUTH_FILE)
}

fn service_json() -> Value {
    fixture_json(SERVICE_FILE)
}

fn oauth_json() -> Value {
    fixture_json(OAUTH_FILE)
}

fn key_pem() -> String {
    read_fixture(KEY_FILE)
}

fn sample_key() -> PrivateKey {
    PrivateKey::from_pem(&key_pem()).unwrap()
}

/// Every line of the key's base64 body long enough to be recognisable.
fn key_lines() -> Vec<String> {
    key_pem()
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_owned)
        .collect()
}

/// Fails when `text` holds a client secret, a line of the private key or
/// the sample access token.
fn assert_no_secret(what: &str, text: &str) {
    for secret in [SERVICE_SECRET, OAUTH_SECRET, TOKEN_SECRET] {
        assert!(
            !text.contains(secret),
            "{what} shows the secret `{secret}`: {text}"
        );
    }
    for line in key_lines() {
        assert!(
            !text.contains(&line),
            "{what} shows a line of the private key: {text}"
        );
    }
}

/// Both `Debug` and `Display` of an error are free of secrets.
fn assert_error_clean(what: &str, error: &Error) {
    assert_no_secret(&format!("{what} (Debug)"), &format!("{error:?}"));
    assert_no_secret(&format!("{what} (Display)"), &format!("{error}"));
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        assert_no_secret(&format!("{what} (source)"), &format!("{s} {s:?}"));
        source = s.source();
    }
}

fn service_account(credentials: Credentials) -> ServiceAccount {
    match credentials {
        Credentials::ServiceAccount(account) => account,
        other => panic!("expected a service account, got {other:?}"),
    }
}

fn oauth(credentials: Credentials) -> OAuthCredentials {
    match credentials {
        Credentials::OAuth(oauth) => oauth,
        other => panic!("expected OAuth credentials, got {other:?}"),
    }
}

fn check_service_account(account: &ServiceAccount) {
    assert_eq!(account.client_id(), CLIENT_ID);
    assert_eq!(account.client_secret().secret(), SERVICE_SECRET);
    assert_eq!(account.org_id(), ORG_ID);
    assert_eq!(account.technical_account_id(), TECH_ACCOUNT);
    assert_eq!(account.metascopes(), ["ent_aem_cloud_api"]);
    assert_eq!(account.ims().host(), "ims-na1.adobelogin.com");
    assert_eq!(account.ims().url(), "https://ims-na1.adobelogin.com");
    assert_eq!(account.private_key().bits(), 2048);
    assert!(account
        .certificate_pem()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        account.certificate_expiration(),
        Some("2126-11-08T00:00:00.000Z")
    );
}

fn check_oauth(oauth: &OAuthCredentials) {
    assert_eq!(oauth.client_id(), "cm-p12345-e67890-oauth-1");
    assert_eq!(oauth.client_secret().secret(), OAUTH_SECRET);
    assert_eq!(oauth.scopes(), OAUTH_SCOPES);
    assert_eq!(oauth.ims().host(), "ims-na1.adobelogin.com");
}

/// The error of reading `value` as credentials; it must be `Config`.
fn config_error(value: &Value) -> String {
    match Credentials::from_json(&value.to_string()) {
        Err(e @ Error::Config { .. }) => {
            assert_error_clean("config error", &e);
            e.to_string()
        }
        Err(other) => panic!("expected Error::Config, got {other:?}"),
        Ok(c) => panic!("expected an error, got {c:?}"),
    }
}

/// Reading `value` is a config error whose message names `` `field` ``;
/// `what` says what was done to the credentials.
fn assert_names_field(value: &Value, field: &str, what: &str) {
    let message = config_error(value);
    assert!(
        message.contains(&format!("`{field}`")),
        "{what}: message does not name `{field}`: {message}"
    );
}

/// Removes `path` (dot-separated) from a JSON object.
fn remove(value: &mut Value, path: &str) {
    let (parent, last) = match path.rsplit_once('.') {
        Some((parent, last)) => (pointer(value, parent), last),
        None => (value, path),
    };
    parent
        .as_object_mut()
        .unwrap()
        .remove(last)
        .unwrap_or_else(|| panic!("fixture has no `{path}`"));
}

/// Sets `path` (dot-separated) in a JSON object.
fn set(value: &mut Value, path: &str, new: Value) {
    *pointer(value, path) = new;
}

fn pointer<'a>(value: &'a mut Value, path: &str) -> &'a mut Value {
    let pointer = format!("/{}", path.replace('.', "/"));
    value
        .pointer_mut(&pointer)
        .unwrap_or_else(|| panic!("fixture has no `{path}`"))
}

// ---------------------------------------------------------------------------
// Each shape loads
// ---------------------------------------------------------------------------

#[test]
fn service_credentials_with_wrapper_load_from_json() {
    let credentials = Credentials::from_json(&service_text()).unwrap();
    assert_eq!(credentials.client_id(), CLIENT_ID);
    assert_eq!(credentials.ims().host(), "ims-na1.adobelogin.com");
    check_service_account(&service_account(credentials));
}

#[test]
fn service_credentials_load_from_reader() {
    let text = service_text();
    let credentials = Credentials::from_reader(text.as_bytes()).unwrap();
    check_service_account(&service_account(credentials));
}

#[test]
fn service_credentials_load_from_file() {
    let credentials = Credentials::from_file(fixture_path(SERVICE_FILE)).unwrap();
    check_service_account(&service_account(credentials));
}

#[test]
fn bare_integration_object_loads() {
    let bare = service_json()["integration"].to_string();
    check_service_account(&service_account(Credentials::from_json(&bare).unwrap()));
    check_service_account(&service_account(
        Credentials::from_reader(bare.as_bytes()).unwrap(),
    ));
    let value: Value = serde_json::from_str(&bare).unwrap();
    check_service_account(&service_account(
        Credentials::from_json(&value.to_string()).unwrap(),
    ));
}

#[test]
fn bare_integration_object_loads_from_file() {
    let dir = TempDir::new("bare-integration");
    let path = dir.path().join("integration.json");
    std::fs::write(&path, service_json()["integration"].to_string()).unwrap();
    check_service_account(&service_account(Credentials::from_file(&path).unwrap()));
}

#[test]
fn wrapper_without_ok_and_status_code_loads() {
    let value = json!({ "integration": service_json()["integration"].clone() });
    let credentials = Credentials::from_json(&value.to_string()).unwrap();
    check_service_account(&service_account(credentials));
}

#[test]
fn oauth_credentials_load_from_json_reader_and_file() {
    check_oauth(&oauth(Credentials::from_json(&oauth_text()).unwrap()));
    check_oauth(&oauth(
        Credentials::from_reader(oauth_text().as_bytes()).unwrap(),
    ));
    check_oauth(&oauth(
        Credentials::from_file(fixture_path(OAUTH_FILE)).unwrap(),
    ));
    let bare = oauth_json()["integration"].to_string();
    check_oauth(&oauth(Credentials::from_json(&bare).unwrap()));
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let path = fixture_path("no-such-file.json");
    let err = Credentials::from_file(path).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-file.json"), "{err}");
}

#[test]
fn file_errors_name_the_file_and_the_field() {
    let dir = TempDir::new("bad-file");
    let path = dir.path().join("creds.json");
    let mut value = service_json();
    remove(&mut value, "integration.org");
    std::fs::write(&path, value.to_string()).unwrap();
    let err = Credentials::from_file(&path).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("creds.json"), "{message}");
    assert!(message.contains("`integration.org`"), "{message}");
    assert_error_clean("file error", &err);
}

// ---------------------------------------------------------------------------
// Values given in code
// ---------------------------------------------------------------------------

fn full_account_builder() -> ims_token::ServiceAccountBuilder {
    ServiceAccount::builder()
        .ims("ims-na1-stg1.adobelogin.com")
        .client_id(CLIENT_ID)
        .client_secret(ClientSecret::new(SERVICE_SECRET))
        .org_id(ORG_ID)
        .technical_account_id(TECH_ACCOUNT)
        .private_key(sample_key())
        .metascopes("ent_aem_cloud_api, ent_cloudmgr_sdk")
}

fn full_oauth_builder() -> ims_token::OAuthCredentialsBuilder {
    OAuthCredentials::builder()
        .ims("ims-na1-stg1.adobelogin.com")
        .client_id("cm-oauth")
        .client_secret(ClientSecret::new(OAUTH_SECRET))
        .scopes("openid,AdobeID")
        .scopes("read_organizations")
}

#[test]
fn service_account_builder_with_every_value() {
    let account = full_account_builder().build().unwrap();
    assert_eq!(account.ims().host(), "ims-na1-stg1.adobelogin.com");
    assert_eq!(account.client_id(), CLIENT_ID);
    assert_eq!(account.client_secret().secret(), SERVICE_SECRET);
    assert_eq!(account.org_id(), ORG_ID);
    assert_eq!(account.technical_account_id(), TECH_ACCOUNT);
    assert_eq!(account.private_key().bits(), 2048);
    assert_eq!(
        account.metascopes(),
        ["ent_aem_cloud_api", "ent_cloudmgr_sdk"]
    );
    assert_eq!(account.certificate_pem(), None);
    assert_eq!(account.certificate_expiration(), None);
}

#[test]
fn builders_default_to_production_ims() {
    let account = ServiceAccount::builder()
        .client_id(CLIENT_ID)
        .client_secret(ClientSecret::new(SERVICE_SECRET))
        .org_id(ORG_ID)
        .technical_account_id(TECH_ACCOUNT)
        .private_key(sample_key())
        .metascopes("ent_aem_cloud_api")
        .build()
        .unwrap();
    assert_eq!(account.ims().host(), "ims-na1.adobelogin.com");
    let oauth = OAuthCredentials::builder()
        .client_id("c")
        .client_secret(ClientSecret::new(OAUTH_SECRET))
        .scopes("openid")
        .build()
        .unwrap();
    assert_eq!(oauth.ims().host(), "ims-na1.adobelogin.com");
}

#[test]
fn oauth_builder_with_every_value() {
    let oauth = full_oauth_builder().build().unwrap();
    assert_eq!(oauth.ims().host(), "ims-na1-stg1.adobelogin.com");
    assert_eq!(oauth.client_id(), "cm-oauth");
    assert_eq!(oauth.client_secret().secret(), OAUTH_SECRET);
    assert_eq!(oauth.scopes(), ["openid", "AdobeID", "read_organizations"]);
}

fn expect_builder_error<T: std::fmt::Debug>(result: Result<T, Error>, name: &str) {
    match result {
        Err(e @ Error::Config { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains(name),
                "error for missing `{name}` does not name it: {message}"
            );
            assert_error_clean("builder error", &e);
        }
        other => panic!("missing `{name}`: expected Error::Config, got {other:?}"),
    }
}

#[test]
fn service_account_builder_names_each_missing_value() {
    let key = sample_key;
    let secret = || ClientSecret::new(SERVICE_SECRET);
    let b = ServiceAccount::builder;
    let cases = [
        (
            "client_id",
            b().client_secret(secret())
                .org_id(ORG_ID)
                .technical_account_id(TECH_ACCOUNT)
                .private_key(key())
                .metascopes("a"),
        ),
        (
            "client_secret",
            b().client_id(CLIENT_ID)
                .org_id(ORG_ID)
                .technical_account_id(TECH_ACCOUNT)
                .private_key(key())
                .metascopes("a"),
        ),
        (
            "org_id",
            b().client_id(CLIENT_ID)
                .client_secret(secret())
                .technical_account_id(TECH_ACCOUNT)
                .private_key(key())
                .metascopes("a"),
        ),
        (
            "technical_account_id",
            b().client_id(CLIENT_ID)
                .client_secret(secret())
                .org_id(ORG_ID)
                .private_key(key())
                .metascopes("a"),
        ),
        (
            "private_key",
            b().client_id(CLIENT_ID)
                .client_secret(secret())
                .org_id(ORG_ID)
                .technical_account_id(TECH_ACCOUNT)
                .metascopes("a"),
        ),
        (
            "metascopes",
            b().client_id(CLIENT_ID)
                .client_secret(secret())
                .org_id(ORG_ID)
                .technical_account_id(TECH_ACCOUNT)
                .private_key(key()),
        ),
        (
            "metascopes",
            b().client_id(CLIENT_ID)
                .client_secret(secret())
                .org_id(ORG_ID)
                .technical_account_id(TECH_ACCOUNT)
                .private_key(key())
                .metascopes(" , ,"),
        ),
    ];
    for (name, builder) in cases {
        expect_builder_error(builder.build(), name);
    }
}

#[test]
fn oauth_builder_names_each_missing_value() {
    let secret = || ClientSecret::new(OAUTH_SECRET);
    let b = OAuthCredentials::builder;
    let cases = [
        ("client_id", b().client_secret(secret()).scopes("openid")),
        ("client_secret", b().client_id("c").scopes("openid")),
        ("scopes", b().client_id("c").client_secret(secret())),
        (
            "scopes",
            b().client_id("c").client_secret(secret()).scopes(", ,"),
        ),
    ];
    for (name, builder) in cases {
        expect_builder_error(builder.build(), name);
    }
}

#[test]
fn builder_with_a_bad_endpoint_is_a_config_error() {
    let err = full_account_builder()
        .ims("http://ims-na1.adobelogin.com")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("http"), "{err}");
    let err = full_oauth_builder().ims("").build().unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------
// Missing and mistyped fields
// ---------------------------------------------------------------------------

#[test]
fn each_missing_service_field_is_named_by_its_path() {
    let fields = [
        "integration.imsEndpoint",
        "integration.org",
        "integration.id",
        "integration.metascopes",
        "integration.privateKey",
        "integration.technicalAccount",
        "integration.technicalAccount.clientId",
        "integration.technicalAccount.clientSecret",
    ];
    for field in fields {
        let mut value = service_json();
        remove(&mut value, field);
        assert_names_field(&value, field, "missing");
    }
}

#[test]
fn each_missing_field_of_the_bare_object_is_named() {
    for field in [
        "imsEndpoint",
        "org",
        "id",
        "metascopes",
        "technicalAccount.clientSecret",
    ] {
        let mut value = service_json()["integration"].clone();
        remove(&mut value, field);
        assert_names_field(&value, field, "missing");
    }
}

#[test]
fn null_fields_count_as_missing() {
    for field in ["integration.org", "integration.technicalAccount.clientId"] {
        let mut value = service_json();
        set(&mut value, field, Value::Null);
        assert_names_field(&value, field, "null");
    }
}

#[test]
fn empty_string_fields_are_named() {
    for field in [
        "integration.org",
        "integration.id",
        "integration.metascopes",
        "integration.technicalAccount.clientSecret",
    ] {
        let mut value = service_json();
        set(&mut value, field, json!("   "));
        assert_names_field(&value, field, "blank");
    }
}

#[test]
fn each_missing_oauth_field_is_named_by_its_path() {
    for field in [
        "integration.imsEndpoint",
        "integration.technicalAccount.clientId",
        "integration.technicalAccount.clientSecret",
    ] {
        let mut value = oauth_json();
        remove(&mut value, field);
        assert_names_field(&value, field, "missing");
    }
}

#[test]
fn empty_oauth_scopes_are_named() {
    for scopes in [json!([]), json!(""), json!([" ", ""])] {
        let mut value = oauth_json();
        set(&mut value, "integration.scopes", scopes.clone());
        assert_names_field(&value, "integration.scopes", &format!("scopes {scopes}"));
    }
}

#[test]
fn neither_kind_names_both_fields() {
    let value = json!({ "ok": true, "integration": { "imsEndpoint": "ims-na1.adobelogin.com" } });
    let message = config_error(&value);
    assert!(message.contains("integration.privateKey"), "{message}");
    assert!(message.contains("integration.scopes"), "{message}");
}

#[test]
fn mistyped_fields_are_named_by_their_path() {
    let cases = [
        ("integration.org", json!(12345)),
        ("integration.id", json!(true)),
        ("integration.imsEndpoint", json!(["ims-na1.adobelogin.com"])),
        (
            "integration.metascopes",
            json!({ "a": "ent_aem_cloud_api" }),
        ),
        ("integration.metascopes", json!(["ent_aem_cloud_api", 7])),
        ("integration.technicalAccount", json!("cm-p12345")),
        ("integration.technicalAccount.clientId", json!(42)),
        ("integration.technicalAccount.clientSecret", json!(42)),
        ("integration.privateKey", json!(1)),
        ("integration", json!("not an object")),
    ];
    for (field, new) in cases {
        let mut value = service_json();
        set(&mut value, field, new.clone());
        assert_names_field(&value, field, &format!("set to {new}"));
    }
}

#[test]
fn mistyped_oauth_scopes_are_named() {
    for scopes in [json!(5), json!({ "a": "openid" }), json!(["openid", null])] {
        let mut value = oauth_json();
        set(&mut value, "integration.scopes", scopes.clone());
        assert_names_field(&value, "integration.scopes", &format!("scopes {scopes}"));
    }
}

#[test]
fn top_level_that_is_not_an_object_is_a_config_error() {
    for value in [json!([1, 2]), json!("text"), json!(7)] {
        config_error(&value);
    }
}

#[test]
fn metascopes_may_be_an_array() {
    let mut value = service_json();
    set(
        &mut value,
        "integration.metascopes",
        json!(["ent_aem_cloud_api", "ent_cloudmgr_sdk"]),
    );
    let account = service_account(Credentials::from_json(&value.to_string()).unwrap());
    assert_eq!(
        account.metascopes(),
        ["ent_aem_cloud_api", "ent_cloudmgr_sdk"]
    );
}

#[test]
fn unknown_fields_are_ignored() {
    let mut value = service_json();
    value["extra"] = json!({ "anything": [1, 2, 3] });
    value["integration"]["futureField"] = json!(null);
    value["integration"]["technicalAccount"]["somethingNew"] = json!(42);
    value["integration"]["CLIENT_SECRETS"] = json!(["x"]);
    check_service_account(&service_account(
        Credentials::from_json(&value.to_string()).unwrap(),
    ));
    let mut value = oauth_json();
    value["integration"]["orgId"] = json!("ABC@AdobeOrg");
    value["integration"]["technicalAccount"]["extra"] = json!([]);
    check_oauth(&oauth(Credentials::from_json(&value.to_string()).unwrap()));
}

#[test]
fn invalid_json_is_a_config_error() {
    for text in [
        "",
        "{",
        "not json",
        r#"{"integration": {"org": "x",}}"#,
        &service_text()[..200],
    ] {
        match Credentials::from_json(text) {
            Err(e @ Error::Config { .. }) => {
                assert!(e.to_string().contains("JSON"), "{e}");
                assert_error_clean("invalid JSON", &e);
            }
            other => panic!("{text:?}: expected Error::Config, got {other:?}"),
        }
        let from_reader = Credentials::from_reader(text.as_bytes()).unwrap_err();
        assert!(
            matches!(from_reader, Error::Config { .. }),
            "{from_reader:?}"
        );
    }
}

#[test]
fn metascopes_string_is_split_trimmed_and_emptied() {
    let mut value = service_json();
    set(
        &mut value,
        "integration.metascopes",
        json!(" ent_aem_cloud_api , ,ent_cloudmgr_sdk,"),
    );
    let account = service_account(Credentials::from_json(&value.to_string()).unwrap());
    assert_eq!(
        account.metascopes(),
        ["ent_aem_cloud_api", "ent_cloudmgr_sdk"]
    );
}

#[test]
fn key_problems_in_the_file_are_key_errors_naming_the_field() {
    let cert = service_json()["integration"]["publicKey"].clone();
    let mut value = service_json();
    set(&mut value, "integration.privateKey", cert);
    match Credentials::from_json(&value.to_string()) {
        Err(e @ Error::Key { .. }) => {
            let message = e.to_string();
            assert!(message.contains("`integration.privateKey`"), "{message}");
            assert!(message.contains("certificate"), "{message}");
            assert_error_clean("key error", &e);
        }
        other => panic!("expected Error::Key, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Secrets never shown
// ---------------------------------------------------------------------------

#[test]
fn secret_in_a_mistyped_field_is_not_echoed() {
    let cases = [
        ("integration.org", json!([SERVICE_SECRET])),
        ("integration.org", json!({ "value": SERVICE_SECRET })),
        ("integration.id", json!([SERVICE_SECRET, 1])),
        ("integration.imsEndpoint", json!({ SERVICE_SECRET: true })),
        ("integration.metascopes", json!({ "x": SERVICE_SECRET })),
        ("integration.metascopes", json!([SERVICE_SECRET, 1])),
        ("integration.technicalAccount", json!(SERVICE_SECRET)),
        (
            "integration.technicalAccount.clientId",
            json!([SERVICE_SECRET]),
        ),
        (
            "integration.technicalAccount.clientSecret",
            json!([SERVICE_SECRET]),
        ),
        (
            "integration.technicalAccount.clientSecret",
            json!({ "secret": SERVICE_SECRET }),
        ),
    ];
    for (field, new) in cases {
        let mut value = service_json();
        set(&mut value, field, new);
        // config_error checks Debug, Display and sources for secrets.
        let message = config_error(&value);
        assert!(message.contains(field), "{message}");
    }
    let mut value = oauth_json();
    set(
        &mut value,
        "integration.scopes",
        json!({ "s": OAUTH_SECRET }),
    );
    config_error(&value);
}

#[test]
fn secret_as_the_private_key_is_not_echoed() {
    for key in [
        json!(SERVICE_SECRET),
        json!(format!("  {SERVICE_SECRET}\r\n")),
        json!(format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{SERVICE_SECRET}\n-----END RSA PRIVATE KEY-----\n"
        )),
        json!(format!(
            "-----BEGIN PRIVATE KEY-----\n{SERVICE_SECRET}\n-----END PRIVATE KEY-----\n"
        )),
    ] {
        let mut value = service_json();
        set(&mut value, "integration.privateKey", key);
        match Credentials::from_json(&value.to_string()) {
            Err(e @ Error::Key { .. }) => {
                assert!(e.to_string().contains("integration.privateKey"), "{e}");
                assert_error_clean("private key holding the secret", &e);
            }
            other => panic!("expected Error::Key, got {other:?}"),
        }
    }
}

#[test]
fn invalid_json_around_secrets_is_not_echoed() {
    let text = service_text();
    // Cut right after the secret, and break the JSON right after it.
    let end = text.find(SERVICE_SECRET).unwrap() + SERVICE_SECRET.len();
    for broken in [
        text[..end].to_owned(),
        format!("{}\" x", &text[..end]),
        text.replace(&format!("\"{SERVICE_SECRET}\""), SERVICE_SECRET),
        text.replacen("-----BEGIN", "\u{1}-----BEGIN", 1),
    ] {
        let err = Credentials::from_json(&broken).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert_error_clean("invalid JSON", &err);
    }
}

#[test]
fn missing_field_errors_do_not_show_secrets() {
    // Every error above goes through config_error, which checks; this also
    // covers the OAuth shape and the wrapper of each mistake.
    for field in [
        "integration.org",
        "integration.privateKey",
        "integration.technicalAccount.clientId",
    ] {
        let mut value = service_json();
        remove(&mut value, field);
        let err = Credentials::from_json(&value.to_string()).unwrap_err();
        assert_error_clean(field, &err);
    }
    let mut value = oauth_json();
    remove(&mut value, "integration.technicalAccount.clientId");
    assert_error_clean(
        "oauth",
        &Credentials::from_json(&value.to_string()).unwrap_err(),
    );
}

#[test]
fn debug_of_public_types_does_not_show_secrets() {
    let service = Credentials::from_file(fixture_path(SERVICE_FILE)).unwrap();
    let oauth_credentials = Credentials::from_file(fixture_path(OAUTH_FILE)).unwrap();
    let account = service_account(service.clone());
    let oauth = oauth(oauth_credentials.clone());
    let jwt = ims_token::sign_jwt(
        &account,
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        Duration::from_secs(300),
    )
    .unwrap();
    let token = AccessToken::new(
        TOKEN_SECRET,
        "bearer",
        SystemTime::now(),
        SystemTime::now() + Duration::from_secs(3600),
    );
    let client = ims_token::Client::builder().proxy(None).build().unwrap();
    let provider = TokenProvider::new(client.clone(), service.clone());
    let oauth_provider = TokenProvider::new(client.clone(), oauth_credentials.clone());
    let endpoint = Endpoint::parse("ims-na1.adobelogin.com").unwrap();
    let secret = ClientSecret::new(SERVICE_SECRET);
    let key = sample_key();

    let debugs = [
        ("Credentials (service)", format!("{service:?}")),
        ("Credentials (service, pretty)", format!("{service:#?}")),
        ("Credentials (oauth)", format!("{oauth_credentials:?}")),
        ("ServiceAccount", format!("{account:?}")),
        ("OAuthCredentials", format!("{oauth:?}")),
        ("ClientSecret", format!("{secret:?}")),
        ("PrivateKey", format!("{key:?}")),
        ("SignedJwt", format!("{jwt:?}")),
        ("AccessToken", format!("{token:?}")),
        ("Client", format!("{client:?}")),
        ("TokenProvider", format!("{provider:?}")),
        ("TokenProvider (oauth)", format!("{oauth_provider:?}")),
        ("Endpoint", format!("{endpoint:?}")),
        (
            "ServiceAccountBuilder",
            format!("{:?}", full_account_builder()),
        ),
        (
            "OAuthCredentialsBuilder",
            format!("{:?}", full_oauth_builder()),
        ),
    ];
    let jwt_signature = jwt.secret().rsplit('.').next().unwrap();
    for (what, text) in &debugs {
        assert_no_secret(what, text);
        assert!(!text.contains(jwt.secret()), "{what} shows the JWT: {text}");
        assert!(
            !text.contains(jwt_signature),
            "{what} shows the JWT signature: {text}"
        );
    }
    // The redacted types still say what they are.
    assert!(debugs[6].1.contains("2048"), "{}", debugs[6].1);
    assert_eq!(token.secret(), TOKEN_SECRET);
    assert_eq!(secret.secret(), SERVICE_SECRET);
}

#[test]
fn debug_of_client_with_a_proxy_password_does_not_show_it() {
    let builder = ims_token::Client::builder().proxy(Some(&format!(
        "http://user:{TOKEN_SECRET}@proxy.example.com:3128"
    )));
    assert_no_secret("ClientBuilder", &format!("{builder:?}"));
    let client = builder.build().unwrap();
    assert_no_secret("Client with proxy", &format!("{client:?}"));
}

// ---------------------------------------------------------------------------
// Endpoint rules
// ---------------------------------------------------------------------------

#[test]
fn endpoint_accepts_hosts_https_and_loopback_http() {
    let cases = [
        (
            "ims-na1.adobelogin.com",
            "ims-na1.adobelogin.com",
            "https://ims-na1.adobelogin.com",
        ),
        (
            "https://ims-na1.adobelogin.com/",
            "ims-na1.adobelogin.com",
            "https://ims-na1.adobelogin.com",
        ),
        (
            "  https://ims-na1-stg1.adobelogin.com  ",
            "ims-na1-stg1.adobelogin.com",
            "https://ims-na1-stg1.adobelogin.com",
        ),
        (
            "http://127.0.0.1:8080",
            "127.0.0.1:8080",
            "http://127.0.0.1:8080",
        ),
        ("http://localhost:1", "localhost:1", "http://localhost:1"),
        ("http://[::1]:9", "[::1]:9", "http://[::1]:9"),
    ];
    for (text, host, url) in cases {
        let endpoint = Endpoint::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(endpoint.host(), host, "{text}");
        assert_eq!(endpoint.url(), url, "{text}");
    }
}

#[test]
fn endpoint_rejects_what_it_cannot_use() {
    // (input, words the message must contain)
    let cases: [(&str, &[&str]); 10] = [
        ("http://ims-na1.adobelogin.com", &["http", "https"]),
        ("http://localhost.example.com", &["http", "https"]),
        ("http://127.0.0.2:80", &["http", "https"]),
        ("ftp://x", &["ftp", "https"]),
        ("https://host/path", &["path"]),
        ("https://host?x=1", &["query"]),
        ("https://user@host", &["user"]),
        ("", &["empty"]),
        ("   ", &["empty"]),
        ("https://", &["empty"]),
    ];
    for (text, words) in cases {
        match Endpoint::parse(text) {
            Err(e @ Error::Config { .. }) => {
                let message = e.to_string();
                for word in words {
                    assert!(
                        message.contains(word),
                        "{text:?}: message lacks `{word}`: {message}"
                    );
                }
            }
            other => panic!("{text:?}: expected Error::Config, got {other:?}"),
        }
    }
}

#[test]
fn bad_endpoint_in_the_file_is_a_config_error() {
    let mut value = service_json();
    set(
        &mut value,
        "integration.imsEndpoint",
        json!("http://ims-na1.adobelogin.com"),
    );
    let message = config_error(&value);
    assert!(message.contains("http"), "{message}");
}
