//! A fake Adobe IMS on 127.0.0.1 for integration tests.
//!
//! It is an independent referee: it never uses the `ims_token` library. It
//! serves a script of [`Reply`]s, one connection per reply, in order, and
//! records every request. [`check_jwt_exchange`], [`check_oauth_with`],
//! [`check_validate`] and [`check_invalidate`] judge a request the way real
//! IMS does (see /work/shared/IMS.md, sections 2-4b); the tokens revoked at
//! its invalidate endpoint stay revoked for its validate endpoint. It issues
//! JWT-shaped IMS access tokens ([`ims_access_token`]) signed with its own
//! key.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use serde_json::Value;
use sha2::Sha256;

use super::http::{http_date, json_response, read_request, typed_response, Recorded};
use super::{accept_polling, fixture_json, now_secs, read_fixture, ServerThread, POLL};

/// Read and write timeout of every accepted socket, so nothing hangs forever.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Clock skew IMS tolerates, in seconds.
const SKEW_SECS: i64 = 30;
/// Longest JWT lifetime IMS accepts, in seconds.
const MAX_JWT_LIFETIME_SECS: i64 = 24 * 60 * 60;

// ---------------------------------------------------------------------------
// What the fake expects

/// What [`check_jwt_exchange`] expects of a `/ims/exchange/jwt` request.
#[derive(Clone, Debug)]
pub struct JwtExpect {
    pub client_id: String,
    pub client_secret: String,
    /// SPKI PEM (`BEGIN PUBLIC KEY`) the JWT signature must verify against.
    pub public_key_pem: String,
    /// Org id, the `iss` claim.
    pub org: String,
    /// Technical-account id, the `sub` claim.
    pub sub: String,
    /// The endpoint's URL as given, the base of `aud` and the metascope
    /// claims: `https://ims-na1.adobelogin.com` or `http://127.0.0.1:PORT`.
    pub ims_url: String,
    /// Metascope codes (or full `https://` URLs) that must be claimed `true`.
    pub metascopes: Vec<String>,
    /// Seconds the fake's clock is ahead of the test's: it judges `exp` on
    /// its own clock and tells that clock in its `Date` header.
    pub clock_offset: i64,
}

impl JwtExpect {
    /// The values of `service-credentials.sample.json` and `sample-key.pub.pem`,
    /// with `ims` as the base of the claims: a URL (`http://127.0.0.1:PORT`)
    /// or a host, which stands for `https://{host}`.
    pub fn sample(ims: &str) -> JwtExpect {
        let creds = fixture_json("service-credentials.sample.json");
        let i = &creds["integration"];
        let text = |v: &Value| v.as_str().expect("string field").to_string();
        JwtExpect {
            client_id: text(&i["technicalAccount"]["clientId"]),
            client_secret: text(&i["technicalAccount"]["clientSecret"]),
            public_key_pem: read_fixture("sample-key.pub.pem"),
            org: text(&i["org"]),
            sub: text(&i["id"]),
            ims_url: if ims.contains("://") {
                ims.to_string()
            } else {
                format!("https://{ims}")
            },
            metascopes: split_metascopes(&text(&i["metascopes"])),
            clock_offset: 0,
        }
    }

    /// The same, judged on a clock `secs` ahead of the test's (negative: behind).
    pub fn with_clock_offset(mut self, secs: i64) -> JwtExpect {
        self.clock_offset = secs;
        self
    }
}

/// Splits a comma-separated metascopes string: trims, drops empties.
pub fn split_metascopes(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect()
}

/// What [`check_oauth`] expects of a `/ims/token/v3` request.
#[derive(Clone, Debug)]
pub struct OAuthExpect {
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
}

impl OAuthExpect {
    /// The values of `oauth-credentials.sample.json`.
    pub fn sample() -> OAuthExpect {
        let creds = fixture_json("oauth-credentials.sample.json");
        let i = &creds["integration"];
        let text = |v: &Value| v.as_str().expect("string field").to_string();
        let scopes = i["scopes"].as_array().expect("scopes array");
        OAuthExpect {
            client_id: text(&i["technicalAccount"]["clientId"]),
            client_secret: text(&i["technicalAccount"]["clientSecret"]),
            scopes: scopes.iter().map(text).collect(),
        }
    }
}

/// What [`check_oauth_with`] expects besides [`OAuthExpect`]: the
/// `org_id` and `resource` fields, each exactly when asked for.
#[derive(Clone, Debug, Default)]
pub struct OAuthOptions {
    pub org_id: Option<String>,
    pub resources: Vec<String>,
}

// ---------------------------------------------------------------------------
// The tokens it issues

/// The payload of an IMS access token the fake issues (IMS.md section 4b).
#[derive(Clone, Debug)]
pub struct TokenSpec {
    pub client_id: String,
    pub user_id: String,
    /// Comma-separated, as IMS writes it.
    pub scope: String,
    /// The `as` claim: the region.
    pub region: String,
    pub created_at_ms: u64,
    pub expires_in_ms: u64,
}

impl TokenSpec {
    /// A token for `client_id` issued now, living 24 hours.
    pub fn new(client_id: &str) -> TokenSpec {
        TokenSpec {
            client_id: client_id.to_owned(),
            user_id: "1A2B3C4D5E6F7A8B9C0D1E2F@techacct.adobe.com".to_owned(),
            scope: "openid,AdobeID,read_organizations".to_owned(),
            region: "ims-na1".to_owned(),
            created_at_ms: now_secs() as u64 * 1000,
            expires_in_ms: 86_400_000,
        }
    }

    /// When it expires, in milliseconds since the epoch.
    pub fn expires_at_ms(&self) -> u64 {
        self.created_at_ms + self.expires_in_ms
    }

    /// The payload as IMS writes it: times as strings of milliseconds.
    pub fn payload(&self) -> Value {
        serde_json::json!({
            "id": format!("{}_fake-{}_ue1", self.created_at_ms, self.client_id),
            "type": "access_token",
            "client_id": self.client_id,
            "user_id": self.user_id,
            "as": self.region,
            "aa_id": self.user_id,
            "ctp": 0,
            "created_at": self.created_at_ms.to_string(),
            "expires_in": self.expires_in_ms.to_string(),
            "scope": self.scope,
        })
    }
}

/// The header IMS puts on its access tokens.
const TOKEN_HEADER: &str =
    r#"{"alg":"RS256","x5u":"ims_na1-key-at-1.cer","kid":"ims_na1-key-at-1","itt":"at"}"#;

/// An IMS access token, `header.payload.signature`, signed RS256 with the
/// fake's key (the sample key).
pub fn ims_access_token(spec: &TokenSpec) -> String {
    static KEY: OnceLock<SigningKey<Sha256>> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let pem = read_fixture("sample-key.pkcs1.pem");
        SigningKey::new(rsa::PrivateKey::from_pkcs1_pem(&pem).expect("the sample key"))
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(TOKEN_HEADER),
        URL_SAFE_NO_PAD.encode(spec.payload().to_string())
    );
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// A token of [`ims_access_token`]'s shape whose payload says its `type` is
/// `kind` (`refresh_token`, say): an IMS token that is not an access token.
/// Its signature is the access token's, which IMS would refuse.
pub fn ims_token_of_type(spec: &TokenSpec, kind: &str) -> String {
    let issued = ims_access_token(spec);
    let mut segments = issued.split('.');
    let (Some(head), Some(_), Some(signature)) =
        (segments.next(), segments.next(), segments.next())
    else {
        unreachable!("ims_access_token gives three segments")
    };
    let mut payload = spec.payload();
    payload["type"] = kind.into();
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    format!("{head}.{payload}.{signature}")
}

/// The payload of a token the fake issued, or why it is not one.
fn issued_payload(token: &str) -> Result<serde_json::Map<String, Value>, &'static str> {
    let segments: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = segments[..] else {
        return Err("not a token");
    };
    if URL_SAFE_NO_PAD.decode(header).ok().as_deref() != Some(TOKEN_HEADER.as_bytes()) {
        return Err("not a token");
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "bad signature")?;
    let input = &token[..header.len() + 1 + payload.len()];
    check_signature(
        input.as_bytes(),
        &signature,
        &read_fixture("sample-key.pub.pem"),
    )
    .map_err(|_| "bad signature")?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| "not a token")?;
    match serde_json::from_slice(&payload) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err("not a token"),
    }
}

// ---------------------------------------------------------------------------
// Script

/// One scripted answer; each accepted connection consumes one, in order.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON response with this status, body and extra headers.
    Json {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// These bytes, written as the whole response.
    Raw(Vec<u8>),
    /// Read the request, send nothing, keep the socket open this long, close.
    Silent { for_ms: u64 },
    /// The request body sent back as the response body, with this status
    /// and content type (a server that echoes what it was sent).
    Echo { status: u16, content_type: String },
    /// Judge the request with [`check_jwt_exchange`]: 200 with `token`
    /// (`expires_in` 86399999, milliseconds) or the IMS error JSON.
    CheckJwt { expect: JwtExpect, token: String },
    /// Judge the request with [`check_oauth_with`]: 200 with `token`
    /// (`expires_in` 86399, seconds) or the IMS error JSON.
    CheckOAuth {
        expect: OAuthExpect,
        options: OAuthOptions,
        token: String,
    },
    /// Judge a `/ims/validate_token/v1` request with [`check_validate`], for
    /// the one client the fake knows: 200 `{"valid": ...}` or the IMS error
    /// JSON.
    CheckValidate { client_id: String },
    /// Judge a `/ims/invalidate_token/v2` request with [`check_invalidate`]:
    /// the token is revoked from then on and the reply is 200 `{}`, or the
    /// IMS error JSON.
    CheckInvalidate { expect: OAuthExpect },
    /// Read the request, wait this long (a slow IMS), then answer with `then`.
    Slow { delay_ms: u64, then: Box<Reply> },
    /// Read the request, wait until the test opens `gate` (at most
    /// [`GATE_LIMIT`]), then answer with `then`.
    Gated { gate: Gate, then: Box<Reply> },
}

/// Longest a [`Reply::Gated`] waits for its gate; then it answers anyway
/// (and the test that forgot to open it sees an answer out of order).
pub const GATE_LIMIT: Duration = Duration::from_secs(10);

/// What a [`Reply::Gated`] waits behind: opened by the test, once.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets the gated reply go.
    pub fn open(&self) {
        let (open, opened) = &*self.0;
        *open.lock().unwrap() = true;
        opened.notify_all();
    }

    /// Waits until the gate is open, at most `limit`; whether it is.
    fn wait(&self, limit: Duration) -> bool {
        let (open, opened) = &*self.0;
        let guard = open.lock().unwrap();
        let (guard, _) = opened.wait_timeout_while(guard, limit, |o| !*o).unwrap();
        *guard
    }
}

impl Reply {
    /// A JSON response without extra headers.
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::Json {
            status,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// An IMS error JSON `{"error":..,"error_description":..}` with an `x-debug-id`.
    pub fn ims_error(status: u16, code: &str, description: &str) -> Reply {
        Reply::json(status, error_body(code, description))
            .with_header("x-debug-id", "fake-ims-debug-id")
    }

    /// Adds a response header; only for [`Reply::Json`].
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        match &mut self {
            Reply::Json { headers, .. } => headers.push((name.to_string(), value.to_string())),
            other => panic!("with_header works on Reply::Json only, not {other:?}"),
        }
        self
    }

    /// [`Reply::CheckJwt`].
    pub fn check_jwt(expect: JwtExpect, token: &str) -> Reply {
        Reply::CheckJwt {
            expect,
            token: token.to_string(),
        }
    }

    /// [`Reply::CheckOAuth`], with no `org_id` or `resource` expected.
    pub fn check_oauth(expect: OAuthExpect, token: &str) -> Reply {
        Reply::check_oauth_with(expect, OAuthOptions::default(), token)
    }

    /// [`Reply::CheckOAuth`], with these `org_id` and `resource` fields.
    pub fn check_oauth_with(expect: OAuthExpect, options: OAuthOptions, token: &str) -> Reply {
        Reply::CheckOAuth {
            expect,
            options,
            token: token.to_string(),
        }
    }

    /// This reply, sent `delay_ms` after the request was read.
    pub fn after_ms(self, delay_ms: u64) -> Reply {
        Reply::Slow {
            delay_ms,
            then: Box::new(self),
        }
    }

    /// This reply, sent once the test opens `gate` (at most [`GATE_LIMIT`]).
    pub fn held_by(self, gate: &Gate) -> Reply {
        Reply::Gated {
            gate: gate.clone(),
            then: Box::new(self),
        }
    }
}

// ---------------------------------------------------------------------------
// ---------------------------------------------------------------------------
// The server

/// A scripted fake IMS on 127.0.0.1; stops when dropped.
pub struct FakeIms {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
    /// Stops and joins the server thread when the fake is dropped.
    _thread: ServerThread,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    hits: AtomicUsize,
    /// The tokens revoked at the invalidate endpoint.
    revoked: Mutex<HashSet<String>>,
}

impl FakeIms {
    /// Starts a plain-HTTP fake serving `script`.
    pub fn start(script: Vec<Reply>) -> FakeIms {
        FakeIms::spawn(script, None)
    }

    /// Starts an HTTPS fake serving `script` with this certificate chain and
    /// PKCS#8 key (paths, e.g. from [`fixture_path`]).
    pub fn start_tls(
        script: Vec<Reply>,
        cert_pem_path: impl AsRef<std::path::Path>,
        key_pem_path: impl AsRef<std::path::Path>,
    ) -> FakeIms {
        let config = tls_server_config(cert_pem_path.as_ref(), key_pem_path.as_ref());
        FakeIms::spawn(script, Some(config))
    }

    /// Starts a plain-HTTP fake whose script is made from its own URL,
    /// `http://127.0.0.1:PORT` (for [`JwtExpect::sample`]: the claims must
    /// name the endpoint as it was addressed, scheme included).
    pub fn start_with(make_script: impl FnOnce(&str) -> Vec<Reply>) -> FakeIms {
        FakeIms::spawn_with(make_script, None)
    }

    fn spawn(script: Vec<Reply>, tls: Option<Arc<rustls::ServerConfig>>) -> FakeIms {
        FakeIms::spawn_with(|_| script, tls)
    }

    fn spawn_with(
        make_script: impl FnOnce(&str) -> Vec<Reply>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> FakeIms {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local_addr");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let script = make_script(&format!("{scheme}://{addr}"));
        let shared = Arc::new(Shared::default());
        let server_shared = shared.clone();
        let thread = ServerThread::spawn(format!("fake-ims-{}", addr.port()), move |stop| {
            let server = Server {
                listener,
                tls,
                shared: server_shared,
                stop,
            };
            server.run(script)
        });
        FakeIms {
            addr,
            scheme,
            shared,
            _thread: thread,
        }
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// `127.0.0.1:PORT`, the `{ims}` host to put in JWT claims.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests fully read so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Connections accepted so far (including ones whose request or TLS
    /// handshake failed; each consumed one reply of the script).
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// How many tokens have been revoked so far.
    pub fn revoked(&self) -> usize {
        self.shared.revoked.lock().unwrap().len()
    }
}

fn tls_server_config(cert: &std::path::Path, key: &std::path::Path) -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .unwrap_or_else(|e| panic!("cannot read certificates {}: {e}", cert.display()));
    let key = PrivateKeyDer::from_pem_file(key)
        .unwrap_or_else(|e| panic!("cannot read key {}: {e}", key.display()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key match");
    Arc::new(config)
}

/// The background half of [`FakeIms`].
struct Server {
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn run(self, script: Vec<Reply>) {
        let mut script = script.into_iter();
        while let Some(tcp) = self.accept() {
            self.shared.hits.fetch_add(1, Ordering::SeqCst);
            let reply = script.next().unwrap_or_else(script_exhausted);
            // A broken connection is the client's business; serve the next one.
            let _ = self.serve(tcp, &reply);
        }
    }

    /// Next connection, or None once stopped. Polls so Drop can stop it.
    fn accept(&self) -> Option<TcpStream> {
        accept_polling(&self.listener, || !self.stop.load(Ordering::SeqCst))
    }

    fn serve(&self, tcp: TcpStream, reply: &Reply) -> io::Result<()> {
        tcp.set_nonblocking(false)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        match &self.tls {
            None => self.exchange(&mut &tcp, reply),
            Some(config) => {
                let conn =
                    rustls::ServerConnection::new(config.clone()).map_err(io::Error::other)?;
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                self.exchange(&mut tls, reply)?;
                tls.conn.send_close_notify();
                tls.flush()
            }
        }
    }

    /// Reads one request, records it, answers it.
    fn exchange<S: Read + Write>(&self, stream: &mut S, reply: &Reply) -> io::Result<()> {
        let request = read_request(stream)?;
        self.shared.requests.lock().unwrap().push(request.clone());
        if let Reply::Silent { for_ms } = reply {
            self.wait(Duration::from_millis(*for_ms));
            return Ok(());
        }
        let reply = match reply {
            Reply::Slow { delay_ms, then } => {
                self.wait(Duration::from_millis(*delay_ms));
                then
            }
            Reply::Gated { gate, then } => {
                let until = Instant::now() + GATE_LIMIT;
                while !gate.wait(POLL)
                    && Instant::now() < until
                    && !self.stop.load(Ordering::SeqCst)
                {}
                then
            }
            other => other,
        };
        stream.write_all(&response_bytes(reply, &request, &self.shared))?;
        stream.flush()
    }

    /// Sleeps up to `how_long`, returning early when stopped.
    fn wait(&self, how_long: Duration) {
        let until = Instant::now() + how_long;
        while Instant::now() < until && !self.stop.load(Ordering::SeqCst) {
            thread::sleep(POLL.min(until - Instant::now()));
        }
    }
}

fn script_exhausted() -> Reply {
    Reply::ims_error(
        500,
        "script_exhausted",
        "the fake IMS script has no more replies",
    )
}

fn response_bytes(reply: &Reply, request: &Recorded, shared: &Shared) -> Vec<u8> {
    match reply {
        Reply::Json {
            status,
            body,
            headers,
        } => {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            json_response(*status, body, &headers)
        }
        Reply::Raw(bytes) => bytes.clone(),
        Reply::Silent { .. } => Vec::new(),
        Reply::Slow { then, .. } | Reply::Gated { then, .. } => {
            response_bytes(then, request, shared)
        }
        Reply::Echo {
            status,
            content_type,
        } => typed_response(*status, content_type, &request.body, &[]),
        Reply::CheckJwt { expect, token } => {
            let verdict = check_jwt_exchange(request, expect);
            let date = http_date(now_secs() + expect.clock_offset);
            verdict_response(verdict, &date, || jwt_success_body(token))
        }
        Reply::CheckOAuth {
            expect,
            options,
            token,
        } => {
            let verdict = check_oauth_with(request, expect, options);
            verdict_response(verdict, &http_date(now_secs()), || {
                oauth_success_body(token)
            })
        }
        Reply::CheckValidate { client_id } => {
            let revoked = shared.revoked.lock().unwrap().clone();
            let now_ms = now_secs() as u64 * 1000;
            match check_validate(request, client_id, &revoked, now_ms) {
                Ok(body) => json_response(200, &body.to_string(), &[]),
                Err(rejection) => {
                    verdict_response(Err(rejection), &http_date(now_secs()), String::new)
                }
            }
        }
        Reply::CheckInvalidate { expect } => {
            let verdict = check_invalidate(request, expect).map(|token| {
                shared.revoked.lock().unwrap().insert(token);
            });
            verdict_response(verdict, &http_date(now_secs()), || "{}".to_owned())
        }
    }
}

/// The validate and invalidate requests `server` got: each with `token`
/// in its form only, never in the URL, the client id in the
/// `X-IMS-ClientId` header too, as a form.
pub fn assert_token_requests(server: &FakeIms, token: &str) {
    let asked: Vec<Recorded> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("_token/"))
        .collect();
    assert!(!asked.is_empty());
    for request in asked {
        assert!(!request.path.contains('?') && !request.path.contains(&token[..20]));
        assert_eq!(request.form_value("token"), Some(token));
        assert_eq!(
            request.header("x-ims-clientid"),
            request.form_value("client_id")
        );
        assert_eq!(
            request
                .header("content-type")
                .map(|c| c.starts_with("application/x-www-form-urlencoded")),
            Some(true)
        );
    }
}

/// The response to a judged request, with the fake's `Date`, as IMS sends.
fn verdict_response(
    verdict: Result<(), (u16, String, String)>,
    date: &str,
    success_body: impl FnOnce() -> String,
) -> Vec<u8> {
    match verdict {
        Ok(()) => json_response(200, &success_body(), &[("Date", date)]),
        Err((status, code, description)) => {
            let debug_id = format!("fake-ims-{code}");
            let headers = [("Date", date), ("x-debug-id", debug_id.as_str())];
            json_response(status, &error_body(&code, &description), &headers)
        }
    }
}

/// `{"token_type":"bearer","access_token":"<token>","expires_in":86399999}` (ms).
pub fn jwt_success_body(token: &str) -> String {
    let token = Value::from(token);
    format!(r#"{{"token_type":"bearer","access_token":{token},"expires_in":86399999}}"#)
}

/// `{"access_token":"<token>","token_type":"bearer","expires_in":86399}` (s).
pub fn oauth_success_body(token: &str) -> String {
    let token = Value::from(token);
    format!(r#"{{"access_token":{token},"token_type":"bearer","expires_in":86399}}"#)
}

/// A 200 OAuth reply with `token` living `expires_in` seconds.
pub fn oauth_reply(token: &str, expires_in: u64) -> Reply {
    let token = Value::from(token);
    Reply::json(
        200,
        format!(r#"{{"access_token":{token},"token_type":"bearer","expires_in":{expires_in}}}"#),
    )
}

/// `{"error":"<code>","error_description":"<description>"}`.
pub fn error_body(code: &str, description: &str) -> String {
    serde_json::json!({ "error": code, "error_description": description }).to_string()
}

// ---------------------------------------------------------------------------
// Judging requests like real IMS

/// A rejection: HTTP status, IMS `error` code, `error_description`.
pub type Rejection = (u16, String, String);

fn reject(status: u16, code: &str, description: impl Into<String>) -> Rejection {
    (status, code.to_string(), description.into())
}

/// Judges a JWT exchange request as IMS would (IMS.md sections 2-3).
pub fn check_jwt_exchange(req: &Recorded, expect: &JwtExpect) -> Result<(), Rejection> {
    check_form_post(req, "/ims/exchange/jwt")?;
    check_form_fields(req, &["client_id", "client_secret", "jwt_token"])?;
    check_client(req, &expect.client_id, &expect.client_secret)?;
    let jwt = req.form_value("jwt_token").unwrap_or_default();
    let claims = verify_jwt(jwt, &expect.public_key_pem)?;
    check_claims(&claims, expect, now_secs() + expect.clock_offset)
}

/// Judges an OAuth client-credentials request as IMS would (IMS.md section 4).
pub fn check_oauth(req: &Recorded, expect: &OAuthExpect) -> Result<(), Rejection> {
    check_oauth_with(req, expect, &OAuthOptions::default())
}

/// [`check_oauth`], with `org_id` and `resource` fields exactly as in
/// `options` (none when it has none; the resources in order).
pub fn check_oauth_with(
    req: &Recorded,
    expect: &OAuthExpect,
    options: &OAuthOptions,
) -> Result<(), Rejection> {
    check_form_post(req, "/ims/token/v3")?;
    let mut fields = vec!["grant_type", "client_id", "client_secret", "scope"];
    fields.extend(options.org_id.iter().map(|_| "org_id"));
    fields.extend(options.resources.iter().map(|_| "resource"));
    check_form_fields(req, &fields)?;
    if req.form_value("grant_type") != Some("client_credentials") {
        return Err(reject(
            400,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        ));
    }
    check_client(req, &expect.client_id, &expect.client_secret)?;
    let want = expect.scopes.join(",");
    if req.form_value("scope") != Some(want.as_str()) {
        return Err(reject(
            400,
            "invalid_scope",
            format!("scope must be {want:?}"),
        ));
    }
    if req.form_value("org_id") != options.org_id.as_deref() {
        return Err(reject(400, "invalid_org", "org_id is not the one expected"));
    }
    let resources: Vec<&str> = req
        .form
        .iter()
        .filter(|(k, _)| k == "resource")
        .map(|(_, v)| v.as_str())
        .collect();
    if resources != options.resources {
        return Err(reject(
            400,
            "invalid_target",
            "the resources are not the ones expected",
        ));
    }
    Ok(())
}

/// Judges a `/ims/validate_token/v1` request as IMS would (IMS.md section
/// 4b), for the one client `client_id` the fake knows, at `now_ms`: the
/// reply's body, `{"valid":true,"token":{..},"expires_at":ms}` for a token
/// the fake issued to that client, unexpired and not `revoked`, else
/// `{"valid":false,"reason":..}`; or the rejection of a malformed request,
/// one with the token in its URL among them.
pub fn check_validate(
    req: &Recorded,
    client_id: &str,
    revoked: &HashSet<String>,
    now_ms: u64,
) -> Result<Value, Rejection> {
    check_token_request(
        req,
        "/ims/validate_token/v1",
        "type",
        &["client_id", "token"],
    )?;
    if req.form_value("client_id") != Some(client_id) {
        return Err(reject(400, "invalid_client", "unknown client_id"));
    }
    let token = req.form_value("token").unwrap_or_default();
    let invalid = |reason: &str| serde_json::json!({ "valid": false, "reason": reason });
    let claims = match issued_payload(token) {
        Ok(claims) => claims,
        Err(reason) => return Ok(invalid(reason)),
    };
    let millis = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let expires_at = millis("created_at") + millis("expires_in");
    if revoked.contains(token) {
        return Ok(invalid("revoked"));
    }
    if expires_at <= now_ms {
        return Ok(invalid("expired"));
    }
    if claims.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Ok(invalid("client_id mismatch"));
    }
    Ok(serde_json::json!({ "valid": true, "token": claims, "expires_at": expires_at }))
}

/// Judges a `/ims/invalidate_token/v2` request as IMS would (IMS.md section
/// 4b): the token to revoke, or the rejection (a wrong client id or secret
/// is 401 `invalid_client`; a token in the URL is refused).
pub fn check_invalidate(req: &Recorded, expect: &OAuthExpect) -> Result<String, Rejection> {
    let fields = ["token", "client_id", "client_secret"];
    check_token_request(req, "/ims/invalidate_token/v2", "token_type", &fields)?;
    check_client(req, &expect.client_id, &expect.client_secret)?;
    Ok(req.form_value("token").unwrap_or_default().to_owned())
}

/// A form POST to `path` with exactly `type_field` (`access_token`) and
/// `fields`, nothing in its URL's query (where proxies log a token), and
/// `X-IMS-ClientId` naming the form's `client_id`.
fn check_token_request(
    req: &Recorded,
    path: &str,
    type_field: &str,
    fields: &[&str],
) -> Result<(), Rejection> {
    if req.path.contains('?') {
        return Err(reject(
            400,
            "invalid_request",
            "nothing belongs in the URL's query",
        ));
    }
    check_form_post(req, path)?;
    let mut all = vec![type_field];
    all.extend_from_slice(fields);
    check_form_fields(req, &all)?;
    if req.form_value(type_field) != Some("access_token") {
        let msg = format!("{type_field} must be access_token");
        return Err(reject(400, "invalid_request", msg));
    }
    if req.header("x-ims-clientid") != req.form_value("client_id") {
        return Err(reject(
            400,
            "invalid_request",
            "X-IMS-ClientId must name the client_id",
        ));
    }
    Ok(())
}

/// POST to `path` with a form-urlencoded body.
fn check_form_post(req: &Recorded, path: &str) -> Result<(), Rejection> {
    if req.method != "POST" {
        return Err(reject(
            405,
            "method_not_allowed",
            format!("{} is not POST", req.method),
        ));
    }
    if req.path != path {
        return Err(reject(
            404,
            "not_found",
            format!("no endpoint {}", req.path),
        ));
    }
    let content_type = req.header("content-type").unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        let msg = format!("content-type {content_type:?} is not application/x-www-form-urlencoded");
        return Err(reject(400, "invalid_request", msg));
    }
    Ok(())
}

/// The form has exactly these fields, each once.
fn check_form_fields(req: &Recorded, names: &[&str]) -> Result<(), Rejection> {
    let mut got: Vec<&str> = req.form.iter().map(|(k, _)| k.as_str()).collect();
    let mut want = names.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    if got != want {
        let msg = format!("form fields must be exactly {want:?}, got {got:?}");
        return Err(reject(400, "invalid_request", msg));
    }
    Ok(())
}

fn check_client(req: &Recorded, client_id: &str, client_secret: &str) -> Result<(), Rejection> {
    let id_ok = req.form_value("client_id") == Some(client_id);
    let secret_ok = req.form_value("client_secret") == Some(client_secret);
    if !(id_ok && secret_ok) {
        return Err(reject(
            401,
            "invalid_client",
            "invalid client_id or client_secret",
        ));
    }
    Ok(())
}

/// Checks the JWT's shape, header and RS256 signature; returns its claims.
pub fn verify_jwt(
    jwt: &str,
    public_key_pem: &str,
) -> Result<serde_json::Map<String, Value>, Rejection> {
    let malformed = |why: &str| reject(400, "invalid_token", format!("malformed JWT: {why}"));
    let segments: Vec<&str> = jwt.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = segments[..] else {
        return Err(malformed("not 3 segments"));
    };
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| malformed("not base64url without padding"))
    };
    let (header, payload, signature) = (
        decode(header_b64)?,
        decode(payload_b64)?,
        decode(signature_b64)?,
    );
    check_jwt_header(&header)?;
    let signing_input = &jwt[..header_b64.len() + 1 + payload_b64.len()];
    check_signature(signing_input.as_bytes(), &signature, public_key_pem)?;
    match serde_json::from_slice::<Value>(&payload) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(malformed("payload is not a JSON object")),
    }
}

fn check_jwt_header(header: &[u8]) -> Result<(), Rejection> {
    let parsed: Option<Value> = serde_json::from_slice(header).ok();
    if parsed != Some(serde_json::json!({ "alg": "RS256", "typ": "JWT" })) {
        let msg = format!(
            "JWT header must be {{\"alg\":\"RS256\",\"typ\":\"JWT\"}}, got {}",
            String::from_utf8_lossy(header)
        );
        return Err(reject(400, "invalid_signature", msg));
    }
    Ok(())
}

fn check_signature(
    signing_input: &[u8],
    signature: &[u8],
    public_key_pem: &str,
) -> Result<(), Rejection> {
    let key = rsa::PublicKey::from_public_key_pem(public_key_pem)
        .expect("JwtExpect::public_key_pem is an SPKI PEM RSA public key");
    let verifier = VerifyingKey::<Sha256>::new(key);
    let ok = Signature::try_from(signature)
        .is_ok_and(|sig| verifier.verify(signing_input, &sig).is_ok());
    if !ok {
        return Err(reject(
            400,
            "invalid_token",
            "Could not match JWT signature to any of the bindings",
        ));
    }
    Ok(())
}

/// Checks `aud`, `iss`, `sub`, `exp` and the metascope claims at time `now`.
pub fn check_claims(
    claims: &serde_json::Map<String, Value>,
    expect: &JwtExpect,
    now: i64,
) -> Result<(), Rejection> {
    let ims = &expect.ims_url;
    let aud = format!("{ims}/c/{}", expect.client_id);
    if claims.get("aud") != Some(&Value::from(aud.as_str())) {
        return Err(reject(
            400,
            "invalid_client",
            format!("aud must be {aud:?}"),
        ));
    }
    if claims.get("iss") != Some(&Value::from(expect.org.as_str())) {
        return Err(reject(
            400,
            "bad_request",
            "iss does not match the organization",
        ));
    }
    if claims.get("sub") != Some(&Value::from(expect.sub.as_str())) {
        return Err(reject(
            400,
            "bad_request",
            "sub does not match the technical account",
        ));
    }
    check_exp(claims.get("exp"), now)?;
    check_metascopes(claims, expect)
}

fn check_exp(exp: Option<&Value>, now: i64) -> Result<(), Rejection> {
    let Some(exp) = exp.and_then(Value::as_i64) else {
        return Err(reject(400, "invalid_token", "exp must be an integer"));
    };
    if exp <= now - SKEW_SECS {
        return Err(reject(400, "invalid_token", "JWT expired"));
    }
    if exp > now + MAX_JWT_LIFETIME_SECS + SKEW_SECS {
        return Err(reject(
            400,
            "invalid_token",
            "exp is more than 24 hours ahead",
        ));
    }
    Ok(())
}

fn check_metascopes(
    claims: &serde_json::Map<String, Value>,
    expect: &JwtExpect,
) -> Result<(), Rejection> {
    let wanted: Vec<String> = expect
        .metascopes
        .iter()
        .map(|m| {
            if m.starts_with("https://") || m.starts_with("http://") {
                m.clone()
            } else {
                format!("{}/s/{m}", expect.ims_url)
            }
        })
        .collect();
    let claimed: Vec<&String> = claims
        .keys()
        .filter(|k| k.starts_with("https://") || k.starts_with("http://"))
        .collect();
    let all_true = wanted
        .iter()
        .all(|w| claims.get(w) == Some(&Value::Bool(true)));
    let none_extra = claimed.iter().all(|c| wanted.contains(c));
    if !(all_true && none_extra) {
        return Err(reject(
            400,
            "invalid_scope",
            "The metascopes in the JWT are not a subset of the metascopes in the binding.",
        ));
    }
    Ok(())
}
