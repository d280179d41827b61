//! Property tests for every public parser: credentials JSON, PEM keys,
//! certificates, IMS replies and endpoints, fed with arbitrary bytes and
//! with mutations of the valid fixtures (truncation, wrong types, huge
//! strings, deep nesting, invalid UTF-8, NUL bytes).
//!
//! The property everywhere: no panic, a typed error, and no client secret,
//! private-key line or access token in the error's `Display`, `Debug` or
//! source chain. Case counts are bounded so that the whole file stays well
//! under 30 s in a debug build; `fuzz/` runs the same parsers for longer.
//! Properties that expose a bug that is not fixed yet are
//! --ignored`.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{error_texts, pem_der, pem_text};
use ims_token::{parse_token_reply, Credentials, Endpoint, Error, Flow, PrivateKey};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

const SERVICE_JSON: &str = include_str!("../fixtures/service-credentials.sample.json");
const OAUTH_JSON: &str = include_str!("../fixtures/oauth-credentials.sample.json");
const PKCS1_PEM: &str = include_str!("../fixtures/sample-key.pkcs1.pem");
const PKCS8_PEM: &str = include_str!("../fixtures/sample-key.pkcs8.pem");
const CERT_PEM: &str = include_str!("../fixtures/sample-cert.pem");

const SERVICE_SECRET: &str = "p8e-SAMPLE-not-a-real-secret-0123456789abcdef";
const OAUTH_SECRET: &str = "p8e-SAMPLE-oauth-secret-fedcba9876543210";
const TOKEN: &str = "tok-SECRET-xyz";

/// Field names the credentials parser looks at, so that generated JSON
/// reaches past the first "not an object" check.
const FIELD_NAMES: [&str; 14] = [
    "integration",
    "privateKey",
    "publicKey",
    "scopes",
    "metascopes",
    "technicalAccount",
    "clientId",
    "clientSecret",
    "imsEndpoint",
    "org",
    "id",
    "certificateExpirationDate",
    "ok",
    "statusCode",
];

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking a failure of a slow (key-parsing) case can take long;
        // the first failing input is printed anyway.
        max_shrink_iters: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Secrets and the checks on errors

/// Every line of both fixture keys' base64 bodies (all 64 characters but the
/// last), which must never be quoted back.
fn key_lines() -> Vec<&'static str> {
    [PKCS1_PEM, PKCS8_PEM]
        .iter()
        .flat_map(|pem| pem.lines())
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && l.len() >= 20)
        .collect()
}

/// `Display`, `Debug` and the `Display`/`Debug` of every source, lowercased
/// (some messages lowercase what they quote).
fn error_text(e: &Error) -> String {
    error_texts(e).join("\n").to_lowercase()
}

/// The error's text holds no client secret, no key line and no token.
fn check_no_secret(e: &Error) -> Result<(), TestCaseError> {
    check_no_secret_but(e, &[])
}

/// The same, but for secrets that a mutation copied into one of `quotable`,
/// the strings of fields that are no secret (names and ids errors quote).
fn check_no_secret_but(e: &Error, quotable: &[String]) -> Result<(), TestCaseError> {
    let text = error_text(e);
    let copied = |secret: &str| quotable.iter().any(|q| q.contains(secret));
    for secret in [SERVICE_SECRET, OAUTH_SECRET, TOKEN].map(str::to_lowercase) {
        if !copied(&secret) {
            prop_assert!(
                !text.contains(&secret),
                "error quotes the secret {secret}: {text}"
            );
        }
    }
    for line in key_lines().into_iter().map(str::to_lowercase) {
        if !copied(&line) {
            prop_assert!(
                !text.contains(&line),
                "error quotes the private-key line {line}: {text}"
            );
        }
    }
    Ok(())
}

/// A credentials parser's result: Ok, or Config/Key/Io with no secret in it.
fn check_credentials(result: Result<Credentials, Error>) -> Result<(), TestCaseError> {
    check_credentials_but(result, &[])
}

/// The same, with [`check_no_secret_but`].
fn check_credentials_but(
    result: Result<Credentials, Error>,
    quotable: &[String],
) -> Result<(), TestCaseError> {
    let Err(e) = result else { return Ok(()) };
    prop_assert!(
        matches!(
            e,
            Error::Config { .. } | Error::Key { .. } | Error::Io { .. }
        ),
        "not a configuration error: {e:?}"
    );
    check_no_secret_but(&e, quotable)
}

/// All three entry points on one text.
fn check_credentials_text(text: &str) -> Result<(), TestCaseError> {
    check_credentials(Credentials::from_json(text))?;
    check_credentials(Credentials::from_reader(text.as_bytes()))?;
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        check_credentials(Credentials::from_json(&value.to_string()))?;
    }
    Ok(())
}

fn check_key(result: Result<PrivateKey, Error>) -> Result<(), TestCaseError> {
    let Err(e) = result else { return Ok(()) };
    prop_assert!(matches!(e, Error::Key { .. }), "not Error::Key: {e:?}");
    check_no_secret(&e)
}

// ---------------------------------------------------------------------------
// Generators

/// Arbitrary JSON: every type, extreme numbers, unicode and control
/// characters, NUL, and objects keyed by the real field names.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        any::<String>().prop_map(Value::String),
        "[ -~\u{0}\n\r\t]{0,40}".prop_map(Value::String),
        Just(Value::String(String::new())),
        Just(Value::String("   ".into())),
        Just(Value::String("\u{0}".into())),
        Just(Value::String(PKCS8_PEM.into())),
        Just(Value::String(CERT_PEM.into())),
        Just(Value::String("http://127.0.0.1:1".into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&FIELD_NAMES[..]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// JSON pointers of every node below the root.
fn pointers(value: &Value) -> Vec<String> {
    fn walk(value: &Value, here: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let p = format!("{here}/{}", k.replace('~', "~0").replace('/', "~1"));
                    out.push(p.clone());
                    walk(v, &p, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    let p = format!("{here}/{i}");
                    out.push(p.clone());
                    walk(v, &p, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "", &mut out);
    out
}

/// Pointers of the string nodes only.
fn string_pointers(value: &Value) -> Vec<String> {
    pointers(value)
        .into_iter()
        .filter(|p| value.pointer(p).is_some_and(Value::is_string))
        .collect()
}

/// One change to a parsed credentials document.
#[derive(Clone, Debug)]
enum JsonMutation {
    /// Replace a node (any depth) with arbitrary JSON of any type.
    Replace(Index, Value),
    /// Remove a node from its object or array.
    Remove(Index),
    /// Swap the values of two nodes (moves secrets and keys around).
    Swap(Index, Index),
    /// Put a NUL character into a string at a char position.
    Nul(Index, Index),
    /// Cut a string at a char position.
    TruncateString(Index, Index),
    /// Wrap a node in `depth` arrays.
    Nest(Index, usize),
}

fn json_mutation() -> impl Strategy<Value = JsonMutation> {
    prop_oneof![
        3 => (any::<Index>(), arb_json()).prop_map(|(i, v)| JsonMutation::Replace(i, v)),
        1 => any::<Index>().prop_map(JsonMutation::Remove),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| JsonMutation::Swap(a, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| JsonMutation::Nul(a, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| JsonMutation::TruncateString(a, b)),
        1 => (any::<Index>(), 1usize..140).prop_map(|(i, d)| JsonMutation::Nest(i, d)),
    ]
}

fn remove_at(root: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').expect("pointers start with /");
    let last = last.replace("~1", "/").replace("~0", "~");
    match root.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < items.len() {
                    items.remove(i);
                }
            }
        }
        _ => {}
    }
}

fn char_cut(s: &str, at: Index) -> usize {
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
    bounds[at.index(bounds.len())]
}

fn apply(root: &mut Value, mutation: &JsonMutation) {
    let all = pointers(root);
    let strings = string_pointers(root);
    match mutation {
        JsonMutation::Replace(i, v) if !all.is_empty() => {
            *root.pointer_mut(&all[i.index(all.len())]).unwrap() = v.clone();
        }
        JsonMutation::Remove(i) if !all.is_empty() => remove_at(root, &all[i.index(all.len())]),
        JsonMutation::Swap(a, b) if !all.is_empty() => {
            let (pa, pb) = (&all[a.index(all.len())], &all[b.index(all.len())]);
            // Swapping a node with its own ancestor is not a swap: skip it.
            if pa.starts_with(pb.as_str()) || pb.starts_with(pa.as_str()) {
                return;
            }
            let va = root.pointer(pa).unwrap().clone();
            let vb = std::mem::replace(root.pointer_mut(pb).unwrap(), va);
            *root.pointer_mut(pa).unwrap() = vb;
        }
        JsonMutation::Nul(i, at) if !strings.is_empty() => {
            if let Some(Value::String(s)) = root.pointer_mut(&strings[i.index(strings.len())]) {
                let cut = char_cut(s, *at);
                s.insert(cut, '\0');
            }
        }
        JsonMutation::TruncateString(i, at) if !strings.is_empty() => {
            if let Some(Value::String(s)) = root.pointer_mut(&strings[i.index(strings.len())]) {
                let cut = char_cut(s, *at);
                s.truncate(cut);
            }
        }
        JsonMutation::Nest(i, depth) if !all.is_empty() => {
            let node = root.pointer_mut(&all[i.index(all.len())]).unwrap();
            for _ in 0..*depth {
                *node = Value::Array(vec![node.take()]);
            }
        }
        _ => {}
    }
}

fn fixture(service: bool) -> Value {
    serde_json::from_str(if service { SERVICE_JSON } else { OAUTH_JSON }).unwrap()
}

/// Text-level damage after serialising: a raw NUL or an invalid UTF-8 byte.
#[derive(Clone, Debug)]
enum TextDamage {
    None,
    RawNul(Index),
    InvalidUtf8(Index, u8),
}

fn text_damage() -> impl Strategy<Value = TextDamage> {
    prop_oneof![
        3 => Just(TextDamage::None),
        1 => any::<Index>().prop_map(TextDamage::RawNul),
        1 => (any::<Index>(), 0x80u8..=0xff).prop_map(|(i, b)| TextDamage::InvalidUtf8(i, b)),
    ]
}

// ---------------------------------------------------------------------------
// Credentials JSON

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary bytes, as lossy UTF-8 text and raw through `from_reader`.
    #[test]
    fn credentials_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_credentials_text(&String::from_utf8_lossy(&bytes))?;
        check_credentials(Credentials::from_reader(&bytes[..]))?;
    }

    /// Arbitrary JSON values (all types, the real field names as keys).
    #[test]
    fn credentials_from_arbitrary_json(value in arb_json()) {
        check_credentials(Credentials::from_json(&value.to_string()))?;
        check_credentials(Credentials::from_json(&serde_json::json!({ "integration": value.clone() }).to_string()))?;
        check_credentials_text(&value.to_string())?;
    }

    /// The OAuth fixture with up to 3 mutations, then text damage.
    #[test]
    fn oauth_credentials_mutated(
        mutations in prop::collection::vec(json_mutation(), 1..4),
        damage in text_damage(),
    ) {
        check_mutated(false, &mutations, &damage)?;
    }
}

proptest! {
    // Most of these parse the RSA key (~1 ms even with rsa optimised).
    #![proptest_config(config(128))]

    /// The service-account fixture with up to 3 mutations, then text damage.
    #[test]
    fn service_credentials_mutated(
        mutations in prop::collection::vec(json_mutation(), 1..4),
        damage in text_damage(),
    ) {
        check_mutated(true, &mutations, &damage)?;
    }
}

fn check_mutated(
    service: bool,
    mutations: &[JsonMutation],
    damage: &TextDamage,
) -> Result<(), TestCaseError> {
    let mut root = fixture(service);
    for m in mutations {
        apply(&mut root, m);
    }
    check_credentials(Credentials::from_json(&root.to_string()))?;
    let text = root.to_string();
    let mut bytes = text.clone().into_bytes();
    match damage {
        TextDamage::None => {}
        TextDamage::RawNul(i) => bytes.insert(i.index(bytes.len() + 1), 0),
        TextDamage::InvalidUtf8(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
    }
    check_credentials(Credentials::from_reader(&bytes[..]))?;
    check_credentials(Credentials::from_json(&String::from_utf8_lossy(&bytes)))
}

proptest! {
    #![proptest_config(config(16))]

    /// A 1 MB string (of a character that matters to some parser) in any field.
    #[test]
    fn credentials_with_a_huge_field(
        service in any::<bool>(),
        field in any::<Index>(),
        c in prop::sample::select(&['a', '\0', '\n', '-', 'é', '"', '\\', ',', ' '][..]),
    ) {
        let mut root = fixture(service);
        let all = pointers(&root);
        *root.pointer_mut(&all[field.index(all.len())]).unwrap() =
            Value::String(c.to_string().repeat(1 << 20));
        let text = root.to_string();
        check_credentials(Credentials::from_json(&text))?;
        check_credentials_text(&text)?;
    }
}

/// Every prefix of both fixtures (bytes, so through `from_reader`, and
/// lossy text through `from_json`).
#[test]
fn credentials_truncated_at_every_byte() {
    for text in [SERVICE_JSON, OAUTH_JSON] {
        for cut in 0..text.len() {
            let bytes = &text.as_bytes()[..cut];
            let result = Credentials::from_reader(bytes);
            let e = result.expect_err("a prefix is not a complete document");
            assert!(matches!(e, Error::Config { .. }), "{cut}: {e:?}");
            check_no_secret(&e).unwrap();
            let e = Credentials::from_json(&String::from_utf8_lossy(bytes)).unwrap_err();
            check_no_secret(&e).unwrap();
        }
    }
}

/// 10 000 nested arrays or objects, at the top and inside a field: serde_json
/// stops at depth 128 with an error instead of overflowing the stack. Run on
/// a thread with a small (256 KiB) stack to make an overflow likely if the
/// limit ever went away.
#[test]
fn deeply_nested_credentials_are_an_error_not_a_stack_overflow() {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let depth = 10_000;
            let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
            let open_only = "[".repeat(depth);
            for nested in [&arrays, &objects, &open_only] {
                let field = SERVICE_JSON.replacen(
                    r#""metascopes": "ent_aem_cloud_api""#,
                    &format!(r#""metascopes": {nested}"#),
                    1,
                );
                let wrapper = format!(r#"{{"integration": {nested}}}"#);
                for text in [nested.as_str(), &field, &wrapper] {
                    let e = Credentials::from_json(text).unwrap_err();
                    assert!(
                        matches!(&e, Error::Config { .. }) && e.to_string().contains("JSON"),
                        "{e:?}"
                    );
                    let chain = error_text(&e);
                    assert!(
                        chain.contains("recursion limit") || chain.contains("eof"),
                        "{chain}"
                    );
                    check_no_secret(&e).unwrap();
                    let e = Credentials::from_reader(text.as_bytes()).unwrap_err();
                    check_no_secret(&e).unwrap();
                }
            }
            // Just under the limit is valid JSON: parsed, walked and wiped.
            let deep_ok = format!("{}{}", "[".repeat(120), "]".repeat(120));
            let text = OAUTH_JSON.replacen(
                r#""statusCode": 200"#,
                &format!(r#""statusCode": {deep_ok}"#),
                1,
            );
            assert!(Credentials::from_json(&text).is_ok());
        })
        .unwrap()
        .join()
        .expect("no panic or stack overflow");
}

/// NUL bytes: escaped (`\u0000`) in every string field, and raw.
#[test]
fn nul_in_every_string_field() {
    for service in [true, false] {
        let root = fixture(service);
        for p in string_pointers(&root) {
            for at in [0, 1, 7, usize::MAX] {
                let mut doc = root.clone();
                if let Some(Value::String(s)) = doc.pointer_mut(&p) {
                    let cut = s.len().min(at);
                    let cut = (0..=cut).rev().find(|&i| s.is_char_boundary(i)).unwrap();
                    s.insert(cut, '\0');
                }
                check_credentials(Credentials::from_json(&doc.to_string())).unwrap();
                let text = doc.to_string();
                check_credentials(Credentials::from_json(&text)).unwrap();
                let raw = text.replace("\\u0000", "\0");
                let e = Credentials::from_json(&raw).unwrap_err();
                check_no_secret(&e).unwrap();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// PEM keys

/// One change to a PEM text.
#[derive(Clone, Debug)]
enum PemMutation {
    Flip(Index, u8),
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    Truncate(Index),
    /// Replace the label in the BEGIN and/or END line.
    Label(String, bool, bool),
    /// Replace each line break with one of a few separators.
    LineBreaks(Vec<Index>),
    /// The whole key on one line (a key pasted into an environment
    /// variable or a web form that drops line breaks).
    OneLine(&'static str),
    /// Spaces and tabs inside lines.
    Whitespace(Vec<(Index, &'static str)>),
}

const SEPARATORS: [&str; 8] = [
    "\n", "\r\n", "\\n", "\\r\\n", "\n\n", "  \n\t", "\r", "\u{0}",
];

fn pem_mutation() -> impl Strategy<Value = PemMutation> {
    pem_mutation_with(false)
}

/// `one_line`: also join the whole key on one line (line breaks lost).
fn pem_mutation_with(one_line: bool) -> impl Strategy<Value = PemMutation> {
    let joiners: &'static [&'static str] = if one_line {
        &[" ", "", "\t", "  "]
    } else {
        &["\n"]
    };
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(i, x)| PemMutation::Flip(i, x)),
        (any::<Index>(), 1usize..200).prop_map(|(i, n)| PemMutation::Delete(i, n)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| PemMutation::Insert(i, b)),
        any::<Index>().prop_map(PemMutation::Truncate),
        (
            prop_oneof![
                prop::sample::select(
                    &[
                        "RSA PRIVATE KEY",
                        "PRIVATE KEY",
                        "ENCRYPTED PRIVATE KEY",
                        "CERTIFICATE",
                        "PUBLIC KEY",
                        "RSA PUBLIC KEY",
                        "EC PRIVATE KEY",
                        "OPENSSH PRIVATE KEY",
                        "",
                        "-----",
                    ][..]
                )
                .prop_map(str::to_owned),
                "[ -~]{0,20}",
            ],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(l, b, e)| PemMutation::Label(l, b, e)),
        prop::collection::vec(any::<Index>(), 40).prop_map(PemMutation::LineBreaks),
        prop::sample::select(joiners).prop_map(PemMutation::OneLine),
        prop::collection::vec(
            (
                any::<Index>(),
                prop::sample::select(&[" ", "\t", "\u{a0}", "\\n", "\u{0}"][..])
            ),
            1..8
        )
        .prop_map(PemMutation::Whitespace),
    ]
}

fn mutate_pem(pem: &str, mutation: &PemMutation) -> String {
    let mut bytes = pem.as_bytes().to_vec();
    match mutation {
        PemMutation::Flip(i, x) if !bytes.is_empty() => {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        PemMutation::Delete(i, n) => {
            let start = i.index(bytes.len() + 1);
            let end = (start + n).min(bytes.len());
            bytes.drain(start..end);
        }
        PemMutation::Insert(i, new) => {
            let at = i.index(bytes.len() + 1);
            bytes.splice(at..at, new.iter().copied());
        }
        PemMutation::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
        PemMutation::Label(label, begin, end) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let old = text
                .lines()
                .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
                .unwrap_or("RSA PRIVATE KEY")
                .to_owned();
            let mut text = text;
            if *begin {
                text = text.replace(&format!("BEGIN {old}"), &format!("BEGIN {label}"));
            }
            if *end {
                text = text.replace(&format!("END {old}"), &format!("END {label}"));
            }
            return text;
        }
        PemMutation::LineBreaks(choices) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut out = String::new();
            for (n, line) in text.split('\n').enumerate() {
                if n > 0 {
                    out.push_str(SEPARATORS[choices[n % choices.len()].index(SEPARATORS.len())]);
                }
                out.push_str(line);
            }
            return out;
        }
        PemMutation::OneLine(sep) => {
            return String::from_utf8_lossy(&bytes)
                .lines()
                .collect::<Vec<_>>()
                .join(sep);
        }
        PemMutation::Whitespace(spots) => {
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            for (i, ws) in spots {
                let at = char_cut(&text, *i);
                text.insert_str(at, ws);
            }
            return text;
        }
        _ => {}
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn pem_fixture() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&[PKCS1_PEM, PKCS8_PEM][..])
}

proptest! {
    #![proptest_config(config(64))]

    /// Fixture keys with 1 to 3 mutations.
    #[test]
    fn private_key_mutated(pem in pem_fixture(), mutations in prop::collection::vec(pem_mutation(), 1..4)) {
        let mut text = pem.to_owned();
        for m in &mutations {
            text = mutate_pem(&text, m);
        }
        check_key(PrivateKey::from_pem(&text))?;
    }

    /// Mutated keys inside the credentials JSON (the `privateKey` field,
    /// with the fixture's `\r\n` line breaks).
    #[test]
    fn credentials_with_a_mutated_private_key(mutation in pem_mutation()) {
        let mut root = fixture(true);
        let key = root["integration"]["privateKey"].as_str().unwrap().to_owned();
        root["integration"]["privateKey"] = Value::String(mutate_pem(&key, &mutation));
        check_credentials_text(&root.to_string())?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary text, and arbitrary text between real BEGIN/END lines.
    #[test]
    fn private_key_from_arbitrary_text(
        text in any::<String>(),
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        label in prop::sample::select(&["RSA PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY"][..]),
    ) {
        check_key(PrivateKey::from_pem(&text))?;
        check_key(PrivateKey::from_pem(&String::from_utf8_lossy(&bytes)))?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let framed = format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n");
        check_key(PrivateKey::from_pem(&framed))?;
    }

    /// The key's DER, truncated or flipped, re-encoded as valid base64:
    /// the ASN.1 parser sees damaged structure, not damaged text.
    #[test]
    fn private_key_with_damaged_der(
        pem in pem_fixture(),
        cut in any::<Index>(),
        flip in prop::option::of((any::<Index>(), 1u8..=255)),
    ) {
        let (label, mut der) = pem_der(pem);
        der.truncate(cut.index(der.len() + 1).max(if flip.is_some() { der.len() } else { 0 }));
        if let Some((i, x)) = flip {
            let i = i.index(der.len());
            der[i] ^= x;
        }
        let text = pem_text(&label, &der);
        check_key(PrivateKey::from_pem(&text))?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// `private_key_mutated` with one-line keys among the mutations.
    #[test]
    fn private_key_mutated_including_one_line(
        pem in pem_fixture(),
        mutations in prop::collection::vec(pem_mutation_with(true), 1..4),
    ) {
        let mut text = pem.to_owned();
        for m in &mutations {
            text = mutate_pem(&text, m);
        }
        check_key(PrivateKey::from_pem(&text))?;
    }
}

/// Regression for a leak found by `private_key_mutated`: a key on one line
/// (line breaks replaced by spaces, as some environment-variable UIs do)
/// once made the label parser take the whole key as the label and quote it.
/// Such a key is now read; one whose BEGIN line is also broken is refused
/// without quoting it.
#[test]
fn one_line_key_is_read_or_not_quoted_in_the_error() {
    for pem in [PKCS1_PEM, PKCS8_PEM] {
        for sep in [" ", "", "\t"] {
            let one_line = pem.lines().collect::<Vec<_>>().join(sep);
            assert_eq!(PrivateKey::from_pem(&one_line).unwrap().bits(), 2048);
            let mut root = fixture(true);
            root["integration"]["privateKey"] = Value::String(one_line.clone());
            Credentials::from_json(&root.to_string()).unwrap();

            let broken = one_line.replacen("KEY-----", "KEY ", 1);
            let e = PrivateKey::from_pem(&broken).unwrap_err();
            assert!(matches!(e, Error::Key { .. }), "{e:?}");
            check_no_secret(&e).unwrap();
            root["integration"]["privateKey"] = Value::String(broken);
            let e = Credentials::from_json(&root.to_string()).unwrap_err();
            check_no_secret(&e).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Certificates

/// One change to the `publicKey` certificate.
#[derive(Clone, Debug)]
enum CertMutation {
    None,
    /// A PEM-text mutation (shared with the key properties).
    Text(PemMutation),
    /// Truncate the DER, re-encode as valid base64.
    DerTruncate(Index),
    /// Flip a DER byte, re-encode.
    DerFlip(Index, u8),
    /// Overwrite the notAfter time's content bytes (13 for a UTCTime, 15
    /// for a GeneralizedTime; taken from the front of the 15 given) and
    /// maybe its tag.
    NotAfter(Vec<u8>, Option<u8>),
    /// Overwrite a DER length byte with a long-form length.
    DerLength(Index, u8),
}

fn cert_mutation() -> impl Strategy<Value = CertMutation> {
    let time_byte = prop_oneof![
        3 => prop::sample::select(&b"0123456789Z+-. "[..]),
        1 => any::<u8>(),
    ];
    prop_oneof![
        1 => Just(CertMutation::None),
        2 => pem_mutation().prop_map(CertMutation::Text),
        2 => any::<Index>().prop_map(CertMutation::DerTruncate),
        2 => (any::<Index>(), 1u8..=255).prop_map(|(i, x)| CertMutation::DerFlip(i, x)),
        3 => (
            prop::collection::vec(time_byte, 15),
            prop::option::of(prop::sample::select(&[0x17u8, 0x18, 0x04, 0x30, 0x00][..]))
        )
            .prop_map(|(t, tag)| CertMutation::NotAfter(t, tag)),
        1 => (any::<Index>(), 0x80u8..=0xff).prop_map(|(i, b)| CertMutation::DerLength(i, b)),
    ]
}

fn mutate_cert(mutation: &CertMutation) -> String {
    let (label, mut der) = pem_der(CERT_PEM);
    match mutation {
        CertMutation::None => return CERT_PEM.to_owned(),
        CertMutation::Text(m) => return mutate_pem(CERT_PEM, m),
        CertMutation::DerTruncate(i) => der.truncate(i.index(der.len())),
        CertMutation::DerFlip(i, x) => {
            let i = i.index(der.len());
            der[i] ^= x;
        }
        CertMutation::NotAfter(time, tag) => {
            // notAfter is the second time: a UTCTime (tag 0x17, length 13)
            // or, after 2049, a GeneralizedTime (tag 0x18, length 15).
            let (at, len) = der
                .windows(2)
                .enumerate()
                .filter_map(|(i, w)| match (w[0], w[1]) {
                    (0x17, 13) | (0x18, 15) => Some((i, usize::from(w[1]))),
                    _ => None,
                })
                .nth(1)
                .expect("the fixture has notBefore and notAfter");
            der[at + 2..at + 2 + len].copy_from_slice(&time[..len]);
            if let Some(tag) = tag {
                der[at] = *tag;
            }
        }
        CertMutation::DerLength(i, b) => {
            let i = i.index(der.len());
            der[i] = *b;
        }
    }
    pem_text(&label, &der)
}

fn expiration_date() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        any::<String>().prop_map(Value::String),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z?"
            .prop_map(Value::String),
        "[-+0-9]{4}-[-+0-9]{2}-[-+0-9]{2}T[-+0-9]{2}:[-+0-9]{2}:[-+0-9]{2}".prop_map(Value::String),
        prop::sample::select(
            &[
                "9999-12-31T23:59:60Z",
                "0000-01-01T00:00:00Z",
                "1969-12-31T23:59:59Z",
                "2027-02-31T00:00:00Z",
                "2027-1é-01T00:00:00Z",
                "2027-11-29T",
                "T",
                "",
            ][..]
        )
        .prop_map(|s| Value::String(s.to_owned())),
        arb_json(),
    ])
}

proptest! {
    // Each case parses the fixture's RSA key along with the credentials.
    #![proptest_config(config(128))]

    /// `certificate_expiry()` on a mutated certificate and an arbitrary
    /// `certificateExpirationDate`: never panics. With the certificate
    /// intact it is always the certificate's notAfter.
    #[test]
    fn certificate_expiry_never_panics(
        cert in cert_mutation(),
        date in expiration_date(),
        cert_present in prop::sample::select(&[true, true, true, false][..]),
    ) {
        let mut root = fixture(true);
        let integration = root["integration"].as_object_mut().unwrap();
        if cert_present {
            integration.insert("publicKey".into(), Value::String(mutate_cert(&cert)));
        } else {
            integration.remove("publicKey");
        }
        match &date {
            Some(d) => integration.insert("certificateExpirationDate".into(), d.clone()),
            None => integration.remove("certificateExpirationDate"),
        };
        let Credentials::ServiceAccount(account) = Credentials::from_json(&root.to_string()).unwrap() else {
            panic!("not a service account");
        };
        let expiry = account.certificate_expiry();
        if cert_present && matches!(cert, CertMutation::None) {
            prop_assert_eq!(expiry, Some(UNIX_EPOCH + Duration::from_secs(4_949_771_299)));
        }
        if let Some(t) = expiry {
            // Anything found is a real instant we can print and compare.
            prop_assert!(t.duration_since(UNIX_EPOCH).is_ok());
        }
    }
}

// ---------------------------------------------------------------------------
// IMS replies

fn any_flow() -> impl Strategy<Value = Flow> {
    prop::sample::select(&[Flow::JwtExchange, Flow::ClientCredentials][..])
}

fn any_now() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        Just(SystemTime::now()),
        (0u64..=4_102_444_800).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s)),
    ]
}

/// The error is of the kind the status calls for, and a 2xx reply's body
/// (which may hold a token) is never quoted.
fn check_reply(
    status: u16,
    body: &[u8],
    result: &Result<ims_token::AccessToken, Error>,
) -> Result<(), TestCaseError> {
    let e = match result {
        Ok(token) => {
            prop_assert_eq!(status, 200);
            prop_assert!(!token.secret().is_empty());
            return Ok(());
        }
        Err(e) => e,
    };
    match status {
        429 | 500..=599 => prop_assert!(matches!(e, Error::Unavailable(_)), "{e:?}"),
        400..=499 => prop_assert!(matches!(e, Error::Rejected(_)), "{e:?}"),
        _ => prop_assert!(
            matches!(e, Error::UnexpectedReply { status: Some(s), .. } if *s == status),
            "{e:?}"
        ),
    }
    if (200..300).contains(&status) && String::from_utf8_lossy(body).contains(TOKEN) {
        let text = error_text(e);
        prop_assert!(!text.contains(&TOKEN.to_lowercase()), "{text}");
    }
    Ok(())
}

/// A valid reply of either flow, as JSON.
fn valid_reply() -> Value {
    serde_json::json!({
        "access_token": TOKEN,
        "token_type": "bearer",
        "expires_in": 86_399_999,
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// Any status 0..=999 with arbitrary bytes.
    #[test]
    fn reply_from_arbitrary_bytes(
        flow in any_flow(),
        status in 0u16..=999,
        body in prop::collection::vec(any::<u8>(), 0..512),
        now in any_now(),
    ) {
        let result = parse_token_reply(flow, status, &body, now);
        check_reply(status, &body, &result)?;
    }

    /// A valid reply with fields replaced, removed or added (bounded
    /// numbers), truncated, with a token-like string somewhere, under any
    /// status; 2xx errors never quote the token.
    #[test]
    fn reply_mutated(
        flow in any_flow(),
        status in prop_oneof![3 => Just(200u16), 1 => 0u16..=999],
        mutations in prop::collection::vec(
            (prop::sample::select(&["access_token", "token_type", "expires_in", "error", "x"][..]),
             prop::option::of(arb_json())),
            0..4,
        ),
        cut in prop::option::of(any::<Index>()),
        now in any_now(),
    ) {
        check_mutated_reply(flow, status, &mutations, cut, now)?;
    }
}

fn check_mutated_reply(
    flow: Flow,
    status: u16,
    mutations: &[(&str, Option<Value>)],
    cut: Option<Index>,
    now: SystemTime,
) -> Result<(), TestCaseError> {
    let mut reply = valid_reply();
    for (field, value) in mutations {
        match value {
            Some(v) => reply[*field] = v.clone(),
            None => {
                reply.as_object_mut().unwrap().remove(*field);
            }
        }
    }
    let mut body = reply.to_string();
    if !body.contains(TOKEN) {
        body = body.replacen('}', &format!(r#","note":"{TOKEN}"}}"#), 1);
    }
    let body = match cut {
        Some(i) => &body.as_bytes()[..i.index(body.len() + 1)],
        None => body.as_bytes(),
    };
    let result = parse_token_reply(flow, status, body, now);
    check_reply(status, body, &result)
}

proptest! {
    #![proptest_config(config(256))]

    /// As `reply_mutated` but with `expires_in` any u64, as a number or a
    /// string, for both flows: no panic.
    #[test]
    fn reply_with_any_expires_in(
        flow in any_flow(),
        expires_in in prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<u64>().prop_map(|n| Value::String(n.to_string())),
            Just(Value::from(u64::MAX)),
        ],
        now in any_now(),
    ) {
        check_mutated_reply(flow, 200, &[("expires_in", Some(expires_in))], None, now)?;
    }
}

/// Regression: `{"access_token":"t","expires_in":18446744073709551615}` in
/// the OAuth flow panics with "overflow when adding duration to instant"
/// (`now + Duration::from_secs(u64::MAX)` in `parse_success`). In the
/// release profile (`panic = "abort"`) that aborts the CLI.
#[test]
fn reply_with_a_huge_expires_in_is_an_error() {
    for expires_in in [
        "18446744073709551615",
        "9223372036854775807",
        "\"18446744073709551615\"",
    ] {
        let body = format!(r#"{{"access_token":"{TOKEN}","expires_in":{expires_in}}}"#);
        for flow in [Flow::ClientCredentials, Flow::JwtExchange] {
            let result = std::panic::catch_unwind(|| {
                parse_token_reply(flow, 200, body.as_bytes(), SystemTime::now()).map(|_| ())
            });
            let result = result.unwrap_or_else(|_| panic!("panicked on {body} ({flow:?})"));
            if let Err(e) = result {
                assert!(!error_text(&e).contains(&TOKEN.to_lowercase()), "{e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Endpoints

fn endpoint_text() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(
        &[
            "",
            "https://",
            "http://",
            "HTTPS://",
            "hTtP://",
            "ftp://",
            "://",
            "https:/",
            "https:",
            "http+unix://",
            "ht tp://",
            "\u{0}https://",
        ][..],
    );
    let user = prop::sample::select(&["", "user@", "user:pw@", "@"][..]);
    let host = prop_oneof![
        prop::sample::select(
            &[
                "ims-na1.adobelogin.com",
                "127.0.0.1",
                "localhost",
                "LOCALHOST",
                "[::1]",
                "::1",
                "[::1",
                "[]",
                "[0:0:0:0:0:0:0:1]",
                "127.0.0.2",
                "localhost.evil.com",
                "",
                "é.com",
                "a\u{0}b",
            ][..]
        )
        .prop_map(str::to_owned),
        // Brackets and colons too: `[v6]21` and `host::80` once slipped
        // through (see `endpoint_port_needs_a_colon`).
        "[a-zA-Z0-9._:\\[\\]-]{0,20}",
    ];
    let port =
        prop::sample::select(&["", ":443", ":8080", ":", ":99999", ":123456", ":-1", ":0x1"][..]);
    let tail =
        prop::sample::select(&["", "/", "//", "/path", "?q=1", "#f", " ", "\n", "/\u{0}"][..]);
    let pad = prop::sample::select(&["", " ", "\t", "\n "][..]);
    (pad.clone(), scheme, user, host, port, tail, pad)
        .prop_map(|(a, s, u, h, p, t, b)| format!("{a}{s}{u}{h}{p}{t}{b}"))
}

/// `host[:port]` or `[v6][:port]`, with only a colon before the port.
fn well_formed_authority(authority: &str) -> bool {
    let name = |h: &str| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    };
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, rest)) => (
                !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit() || c == ':'),
                rest,
            ),
            None => return false,
        },
        None => match authority.split_once(':') {
            Some((h, p)) => (name(h), &authority[h.len()..][..p.len() + 1]),
            None => (name(authority), ""),
        },
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    host_ok && port_ok
}

fn check_endpoint(text: &str) -> Result<(), TestCaseError> {
    match Endpoint::parse(text) {
        Ok(endpoint) => {
            let url = endpoint.url();
            let host = endpoint.host();
            let loopback = ["127.0.0.1", "localhost", "[::1]"]
                .iter()
                .any(|h| host == *h || host.starts_with(&format!("{h}:")));
            prop_assert!(
                url.starts_with("https://") || (url.starts_with("http://") && loopback),
                "{text:?} -> {url}"
            );
            prop_assert_eq!(url.split_once("://").map(|(_, a)| a), Some(host));
            prop_assert!(
                well_formed_authority(host),
                "{text:?} -> malformed host {host:?}"
            );
            // The URL is itself a valid endpoint, and the same one.
            prop_assert_eq!(Endpoint::parse(url).ok(), Some(endpoint.clone()));
        }
        Err(e) => prop_assert!(matches!(e, Error::Config { .. }), "{e:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn endpoint_from_arbitrary_text(text in any::<String>()) {
        check_endpoint(&text)?;
    }

    #[test]
    fn endpoint_from_url_pieces(text in endpoint_text()) {
        check_endpoint(&text)?;
    }
}

/// Regression for what the `endpoint` fuzz target found: after a bracketed
/// IPv6 host, `check_authority` accepts a port without its colon, and after
/// a plain host a port with two colons, so these malformed URLs are Ok.
#[test]
fn endpoint_port_needs_a_colon() {
    for text in [
        "http://[::1]21/",
        "https://[::1]443",
        "[::1]8080",
        "https://ims-na1.adobelogin.com::443",
        "localhost::1",
    ] {
        assert_refused_endpoint(text);
    }
}

fn assert_refused_endpoint(text: &str) {
    let parsed = Endpoint::parse(text);
    assert!(
        parsed
            .as_ref()
            .is_err_and(|e| matches!(e, Error::Config { .. })),
        "{text:?} -> {parsed:?}"
    );
}

/// Regression for what the `endpoint` fuzz target found next: an authority
/// with two ports was read as its first (`http://127.0.0.1:80:80` as
/// `127.0.0.1`), and its `url()` then parsed to another endpoint. Any
/// authority that is not `host[:port]` or `[v6][:port]` is refused, and a
/// default port round-trips.
#[test]
fn an_endpoint_with_two_ports_is_refused() {
    for text in [
        "http://127.0.0.1:80:80",
        "https://ims-na1.adobelogin.com:443:443",
        "https://ims-na1.adobelogin.com:8443:1",
        "ims-na1.adobelogin.com:443:443",
        "http://[::1]:80:80",
        "https://[::1]:443:443/",
        "http://localhost:8080:80",
    ] {
        assert_refused_endpoint(text);
    }
    for (text, url) in [
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        (
            "https://ims-na1.adobelogin.com:443/",
            "https://ims-na1.adobelogin.com",
        ),
        ("http://[::1]:80", "http://[::1]"),
        ("https://localhost:8443", "https://localhost:8443"),
    ] {
        let endpoint = Endpoint::parse(text).unwrap();
        assert_eq!(endpoint.url(), url, "{text}");
        assert_eq!(Endpoint::parse(url).unwrap(), endpoint, "{text}");
        check_endpoint(text).unwrap();
    }
}

// ---------------------------------------------------------------------------
// The Developer Console project and the local development token

const PROJECT_JSON: &str = include_str!("../fixtures/console-project.sample.json");
const PROJECT_SECRETS: [&str; 4] = [
    "p8e-SAMPLE-console-secret-0a1b2c3d4e5f6789",
    "p8e-SAMPLE-console-second-secret-9f8e7d6c",
    "p8e-SAMPLE-console-jwt-secret-5566778899",
    "p8e-SAMPLE-console-webapp-secret-abcdef",
];

/// The strings of `json` outside the `client_secrets` arrays: names and ids
/// that an error may quote.
fn non_secret_strings(json: &Value, out: &mut Vec<String>) {
    match json {
        Value::String(s) => out.push(s.to_lowercase()),
        Value::Array(items) => items.iter().for_each(|v| non_secret_strings(v, out)),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| k.as_str() != "client_secrets")
            .for_each(|(_, v)| non_secret_strings(v, out)),
        _ => {}
    }
}

/// A typed configuration error quoting none of the project's secrets
/// (unless a mutation copied one into a field that is not a secret, such
/// as a credential's `id`, which errors name).
fn check_project(root: &Value, result: Result<Credentials, Error>) -> Result<(), TestCaseError> {
    let mut quotable = Vec::new();
    non_secret_strings(root, &mut quotable);
    if let Err(e) = &result {
        let text = error_text(e);
        for secret in PROJECT_SECRETS.map(str::to_lowercase) {
            if !quotable.iter().any(|q| q.contains(&secret)) {
                prop_assert!(!text.contains(&secret), "{text}");
            }
        }
        prop_assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }
    check_credentials_but(result, &quotable)
}

fn local_json(token: &str) -> String {
    serde_json::json!({ "accessToken": token }).to_string()
}

proptest! {
    #![proptest_config(config(256))]

    /// The project fixture with up to 3 mutations, chosen by any name.
    #[test]
    fn project_mutated(
        mutations in prop::collection::vec(json_mutation(), 1..4),
        choice in prop::option::of(prop_oneof![
            prop::sample::select(&["Server Credential", "566222", "566111", "Web Login", ""][..])
                .prop_map(str::to_owned),
            any::<String>(),
        ]),
    ) {
        let mut root: Value = serde_json::from_str(PROJECT_JSON).unwrap();
        for m in &mutations {
            apply(&mut root, m);
        }
        let text = root.to_string();
        check_project(&root, Credentials::from_json_selecting(&text, choice.as_deref()))?;
        check_project(&root, Credentials::from_reader_selecting(text.as_bytes(), choice.as_deref()))?;
    }

    /// Any text as a local development token: a `LocalToken` or a config
    /// error, and handing it out never panics.
    #[test]
    fn local_token_of_any_text(text in any::<String>(), ascii in "[ -~]{0,80}") {
        for token in [&text, &ascii] {
            let parsed = Credentials::from_json(&local_json(token));
            if let Ok(Credentials::LocalToken(local)) = &parsed {
                let handed = local.access_token(SystemTime::now());
                let typed = handed.is_ok() || matches!(handed, Err(Error::Config { .. }));
                prop_assert!(typed, "{handed:?}");
            }
            check_credentials(parsed)?;
        }
    }

    /// Payloads with `created_at` and `expires_in` of any type and size
    /// (milliseconds, as numbers or strings): the expiry is their sum
    /// when it fits, else unknown.
    #[test]
    fn local_token_expiry_of_any_claims(
        created in prop_oneof![any::<u64>().prop_map(Value::from), any::<u64>().prop_map(|n| Value::String(n.to_string())), arb_json()],
        expires in prop_oneof![any::<u64>().prop_map(Value::from), any::<u64>().prop_map(|n| Value::String(n.to_string())), arb_json()],
        padding in prop::sample::select(&["", "=", "=="][..]),
        cut in prop::option::of(any::<Index>()),
    ) {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = serde_json::json!({ "created_at": created, "expires_in": expires });
        let mut payload = format!("{}{padding}", b64.encode(claims.to_string()));
        if let Some(cut) = cut {
            payload.truncate(cut.index(payload.len() + 1));
        }
        let parsed = Credentials::from_json(&local_json(&format!("h.{payload}.s")));
        let Ok(Credentials::LocalToken(local)) = parsed else {
            return Err(TestCaseError::fail(format!("not a local token: {parsed:?}")));
        };
        let _ = local.access_token(SystemTime::now());
        let millis = |v: &Value| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse::<u64>().ok(),
            _ => None,
        };
        if cut.is_none() {
            let expected = millis(&created)
                .zip(millis(&expires))
                .and_then(|(c, e)| c.checked_add(e))
                .and_then(|total| UNIX_EPOCH.checked_add(Duration::from_millis(total)));
            prop_assert_eq!(local.expires_at(), expected);
        }
    }
}
