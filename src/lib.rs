//! Blocking Adobe IMS access tokens for synchronous Rust: sign the service
//! account's JWT and exchange it, or use OAuth Server-to-Server client
//! credentials, with no async runtime.
//!
//! ```no_run
//! # fn main() -> Result<(), ims_token::Error> {
//! let credentials = ims_token::Credentials::from_file("service-credentials.json")?;
//! let token = ims_token::fetch_token(&credentials)?;
//! let header = format!("Bearer {}", token.secret());
//! # let _ = header;
//! # Ok(())
//! # }
//! ```
//!
//! For a long-running program, build one [`Client`] and share a
//! [`TokenProvider`], which caches the token and refreshes it shortly
//! before it expires, with one exchange however many threads ask.
//!
//! Signing ([`sign_jwt`]), building the form and parsing IMS's reply are
//! plain functions that never touch the network or read the clock; the
//! [`Client`] does the I/O around them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The README's examples are compiled and run as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

use std::error::Error as StdError;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Map, Value};
use sha2::Sha256;
use zeroize::Zeroize as _;

/// The `User-Agent` sent to IMS.
pub const USER_AGENT: &str = concat!("ims-token/", env!("CARGO_PKG_VERSION"));
/// Default lifetime of a signed JWT (Adobe's tools use 3 to 5 minutes).
pub const DEFAULT_JWT_LIFETIME: Duration = Duration::from_secs(300);
/// Longest JWT lifetime IMS accepts.
pub const MAX_JWT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Default overall timeout of one HTTP call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default timeout for opening the connection (TCP, proxy and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of retries after the first attempt.
pub const DEFAULT_RETRIES: u32 = 2;
/// Default cap on a wait asked for by `Retry-After`.
pub const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(20);
/// Default refresh margin of [`TokenProvider`].
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(600);
/// Largest reply body read from IMS.
pub const MAX_REPLY_BYTES: u64 = 64 * 1024;
/// Smallest RSA key accepted.
pub const MIN_KEY_BITS: usize = 2048;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_EXCERPT_CHARS: usize = 200;
const REDACTED: &str = "[redacted]";

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

/// A string that is wiped on drop and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// An OAuth client secret. `Debug` prints `ClientSecret([redacted])`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSecret(Secret);

impl ClientSecret {
    /// Wraps a client secret.
    pub fn new(secret: impl Into<String>) -> Self {
        ClientSecret(Secret(secret.into()))
    }

    /// The secret itself. Whatever you do with it, keep it out of logs,
    /// error messages and command lines.
    pub fn secret(&self) -> &str {
        &self.0 .0
    }
}

/// A signed JWT, ready for the exchange. It is a credential: anyone holding
/// it can get a token until it expires. `Debug` does not show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedJwt(Secret);

impl SignedJwt {
    /// The compact JWT. Keep it out of logs and error messages.
    pub fn secret(&self) -> &str {
        &self.0 .0
    }
}

/// An RSA private key, parsed once. `Debug` shows its size, never the key.
#[derive(Clone)]
pub struct PrivateKey {
    // Shared so that clones do not copy key material; wiped when the last goes.
    signer: std::sync::Arc<rsa::pkcs1v15::SigningKey<Sha256>>,
    bits: usize,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("bits", &self.bits)
            .field("key", &format_args!("{REDACTED}"))
            .finish()
    }
}

impl PrivateKey {
    /// Parses an RSA private key in PKCS#1 (`BEGIN RSA PRIVATE KEY`) or
    /// PKCS#8 (`BEGIN PRIVATE KEY`) PEM. `\r\n` line endings, indentation,
    /// surrounding whitespace and literal `\n` sequences (a key passed
    /// through an environment variable) are all accepted.
    ///
    /// # Errors
    /// [`Error::Key`] when the text is not PEM, holds a certificate, a public
    /// key, an encrypted or non-RSA key, or an RSA key under 2048 bits.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let block = PemBlock::parse(pem, "the private key")?;
        let key = match block.label.as_str() {
            "RSA PRIVATE KEY" if block.has_headers => Err(Error::key(
                "the private key is in the legacy encrypted PEM format; \
                 convert it with `openssl pkcs8 -topk8`",
            )),
            "RSA PRIVATE KEY" => block.der("PKCS#1").and_then(|der| {
                rsa::PrivateKey::from_pkcs1_der(&der)
                    .map_err(|e| Error::key_from("the PKCS#1 private key is malformed", e))
            }),
            "PRIVATE KEY" => block
                .der("PKCS#8")
                .and_then(|der| rsa::PrivateKey::from_pkcs8_der(&der).map_err(pkcs8_error)),
            "ENCRYPTED PRIVATE KEY" => Err(Error::key(
                "the private key is encrypted; give its passphrase \
                 (PrivateKey::from_encrypted_pem, cargo feature `encrypted-key`)",
            )),
            other => Err(wrong_pem_kind(other)),
        }?;
        Self::from_rsa(key)
    }

    /// Parses a passphrase-protected PKCS#8 key (`BEGIN ENCRYPTED PRIVATE KEY`).
    ///
    /// # Errors
    /// [`Error::Key`] when the passphrase is wrong or the key is not a
    /// 2048-bit or larger RSA key.
    #[cfg(feature = "encrypted-key")]
    pub fn from_encrypted_pem(pem: &str, passphrase: &ClientSecret) -> Result<Self, Error> {
        let block = PemBlock::parse(pem, "the private key")?;
        match block.label.as_str() {
            "ENCRYPTED PRIVATE KEY" => {}
            "RSA PRIVATE KEY" | "PRIVATE KEY" => return Self::from_pem(pem),
            other => return Err(wrong_pem_kind(other)),
        }
        let der = block.der("encrypted PKCS#8")?;
        let key = rsa::PrivateKey::from_pkcs8_encrypted_der(&der, passphrase.secret().as_bytes())
            .map_err(|e| {
            Error::key_from("cannot decrypt the private key (wrong passphrase?)", e)
        })?;
        Self::from_rsa(key)
    }

    fn from_rsa(key: rsa::PrivateKey) -> Result<Self, Error> {
        let bits = key.n().bit_width() as usize;
        if bits < MIN_KEY_BITS {
            return Err(Error::key(format!(
                "the RSA key has {bits} bits; IMS needs at least {MIN_KEY_BITS}"
            )));
        }
        Ok(PrivateKey {
            signer: std::sync::Arc::new(rsa::pkcs1v15::SigningKey::new(key)),
            bits,
        })
    }

    /// The size of the RSA modulus in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, Error> {
        self.signer
            .try_sign(input)
            .map(|s| s.to_vec())
            .map_err(|e| Error::key_from("cannot sign with the private key", e))
    }
}

/// The first block of a PEM text, read leniently: `\r\n`, indentation,
/// literal `\n` sequences (from environment variables) and line breaks
/// turned into spaces or lost are all fine.
struct PemBlock {
    label: String,
    /// Base64 of the body, all whitespace removed; wiped on drop.
    body: Secret,
    /// RFC 1421 headers (`Proc-Type: ...`), as in legacy encrypted keys.
    has_headers: bool,
}

impl PemBlock {
    /// `what` names the text in errors, which never quote it.
    fn parse(text: &str, what: &str) -> Result<Self, Error> {
        let text = text.replace("\\r\\n", "\n").replace("\\n", "\n");
        let malformed = |problem: &str| Error::key(format!("{what} is malformed PEM: {problem}"));
        let after_begin = match text.split_once("-----BEGIN ") {
            Some((_, rest)) => rest,
            None => {
                return Err(Error::key(format!(
                    "{what} is not PEM: no `-----BEGIN` line"
                )))
            }
        };
        let (label, rest) = after_begin
            .split_once("-----")
            .filter(|(label, _)| is_pem_label(label))
            .ok_or_else(|| malformed("the BEGIN line is broken (were its line breaks lost?)"))?;
        let end = format!("-----END {label}-----");
        let (body, _) = rest
            .split_once(&end)
            .ok_or_else(|| malformed("no matching END line"))?;
        let has_headers = body.contains(':');
        let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        if body.is_empty() {
            return Err(malformed("the block is empty"));
        }
        Ok(PemBlock {
            label: label.to_owned(),
            body: Secret(body),
            has_headers,
        })
    }

    /// The decoded body; `kind` names it in errors.
    fn der(&self, kind: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.body.0)
            .map(zeroize::Zeroizing::new)
            .map_err(|e| Error::key_from(format!("the {kind} private key is malformed"), e))
    }
}

/// PEM labels are short upper-case words; anything else is not quoted.
fn is_pem_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 40
        && label
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ')
}

fn wrong_pem_kind(label: &str) -> Error {
    let what = match label {
        "CERTIFICATE" => "a certificate (the `publicKey` field), not the private key",
        "PUBLIC KEY" | "RSA PUBLIC KEY" => "a public key, not the private key",
        "OPENSSH PRIVATE KEY" => "an OpenSSH key; convert it to PKCS#8 PEM",
        "EC PRIVATE KEY" | "DSA PRIVATE KEY" => "not an RSA key; IMS needs RSA",
        _ => "not a private key IMS can use",
    };
    Error::key(format!("the PEM block `{label}` is {what}"))
}

fn pkcs8_error(e: rsa::pkcs8::Error) -> Error {
    match e {
        rsa::pkcs8::Error::PublicKey(_) => {
            Error::key_from("the PKCS#8 private key is not an RSA key; IMS needs RSA", e)
        }
        _ => Error::key_from("the PKCS#8 private key is malformed", e),
    }
}

/// An access token from IMS with its absolute expiry.
///
/// `Debug` shows the type and expiry, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    token: Secret,
    token_type: String,
    received_at: SystemTime,
    expires_at: SystemTime,
}

impl AccessToken {
    /// Builds a token from its parts, e.g. one kept in a cache file.
    pub fn new(
        token: impl Into<String>,
        token_type: impl Into<String>,
        received_at: SystemTime,
        expires_at: SystemTime,
    ) -> Self {
        AccessToken {
            token: Secret(token.into()),
            token_type: token_type.into(),
            received_at,
            expires_at,
        }
    }

    /// The access token for the `Authorization: Bearer` header. It is a
    /// credential: keep it out of logs and error messages.
    pub fn secret(&self) -> &str {
        &self.token.0
    }

    /// The token type IMS gave, normally `bearer`.
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When the reply arrived.
    pub fn received_at(&self) -> SystemTime {
        self.received_at
    }

    /// When IMS says the token stops working.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// Time left at `now` (zero once expired).
    pub fn expires_in(&self, now: SystemTime) -> Duration {
        self.expires_at.duration_since(now).unwrap_or_default()
    }

    /// Whether the token has more than the refresh margin left at `now`.
    /// The margin used is never more than half the token's lifetime, so a
    /// short-lived token is still used for a while.
    pub fn is_fresh(&self, now: SystemTime, margin: Duration) -> bool {
        let lifetime = self
            .expires_at
            .duration_since(self.received_at)
            .unwrap_or_default();
        self.expires_in(now) > margin.min(lifetime / 2)
    }
}

// ---------------------------------------------------------------------------
// Endpoint
// ---------------------------------------------------------------------------

/// Where IMS is: `https://` and a host, or plain `http://` to a loopback
/// address (for tests and local fakes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    base_url: String,
    authority: String,
}

impl Endpoint {
    /// Parses a host (`ims-na1.adobelogin.com`) or a URL
    /// (`https://ims-na1.adobelogin.com`, `http://127.0.0.1:8080`).
    ///
    /// # Errors
    /// [`Error::Config`] for an empty value, a URL with a path, query or
    /// user part, a scheme other than `https`, or `http` to a host that is
    /// not loopback (127.0.0.1, ::1, localhost).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("https".to_owned(), text),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest).to_ascii_lowercase();
        if authority.is_empty() {
            return Err(Error::config("the IMS endpoint is empty"));
        }
        // `aud` and the metascope claims must name the host as IMS knows it.
        let default_port = if scheme == "http" { ":80" } else { ":443" };
        let authority = authority
            .strip_suffix(default_port)
            .unwrap_or(&authority)
            .to_owned();
        let host = check_authority(&authority)?;
        match scheme.as_str() {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => {
                return Err(Error::config(format!(
                    "the IMS endpoint `{authority}` uses plain http; only https is allowed \
                     (http only to 127.0.0.1, ::1 or localhost)"
                )))
            }
            _ if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                return Err(Error::config(format!(
                    "the IMS endpoint has scheme `{scheme}`; use https"
                )))
            }
            _ => return Err(Error::config("the IMS endpoint must use https")),
        }
        Ok(Endpoint {
            base_url: format!("{scheme}://{authority}"),
            authority,
        })
    }

    /// The host (and port, if given) as used in JWT claims: `ims-na1.adobelogin.com`.
    pub fn host(&self) -> &str {
        &self.authority
    }

    /// The base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    fn join(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The host alone: no port, no brackets around an IPv6 address.
    fn bare_host(&self) -> &str {
        // `authority` passed `check_authority` when the endpoint was parsed.
        unbracket(check_authority(&self.authority).unwrap_or(&self.authority))
    }
}

/// Checks `host[:port]` or `[v6][:port]` and returns the host. The input is
/// not quoted in the error: it could hold a pasted secret.
fn check_authority(authority: &str) -> Result<&str, Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').unwrap_or((v6, "!")),
        None => match authority.split_once(':') {
            Some((host, port)) => (host, authority.get(host.len()..).unwrap_or(port)),
            None => (authority, ""),
        },
    };
    let host_ok = if authority.starts_with('[') {
        host.contains(':') && host.chars().all(|c| c.is_ascii_hexdigit() || c == ':')
    } else {
        host.chars().all(allowed)
    };
    // After the host: nothing, or `:` and a port number.
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()) && p.parse::<u16>().is_ok());
    if host.is_empty() || !host_ok || !port_ok {
        return Err(Error::config(
            "the IMS endpoint must be a host (ims-na1.adobelogin.com) or a URL \
             without path, query or user part",
        ));
    }
    Ok(host)
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "::1" | "localhost")
}

// ---------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------

/// A JWT service account (AEM "service credentials" or an Adobe Developer
/// Console JWT credential).
#[derive(Clone, Debug)]
pub struct ServiceAccount {
    ims: Endpoint,
    client_id: String,
    client_secret: ClientSecret,
    org_id: String,
    technical_account_id: String,
    private_key: PrivateKey,
    metascopes: Vec<String>,
    certificate_pem: Option<String>,
    certificate_expiration: Option<String>,
}

/// OAuth Server-to-Server credentials (client credentials grant).
#[derive(Clone, Debug)]
pub struct OAuthCredentials {
    ims: Endpoint,
    client_id: String,
    client_secret: ClientSecret,
    scopes: Vec<String>,
}

/// Either kind of credentials; which flow runs follows from the kind.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Credentials {
    /// Sign a JWT and exchange it at `/ims/exchange/jwt`.
    ServiceAccount(ServiceAccount),
    /// Client credentials at `/ims/token/v3`.
    OAuth(OAuthCredentials),
}

impl ServiceAccount {
    /// Starts building a service account from values given in code.
    pub fn builder() -> ServiceAccountBuilder {
        ServiceAccountBuilder::default()
    }
    /// The IMS endpoint.
    pub fn ims(&self) -> &Endpoint {
        &self.ims
    }
    /// The client id (API key).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// The client secret.
    pub fn client_secret(&self) -> &ClientSecret {
        &self.client_secret
    }
    /// The organization id (`...@AdobeOrg`), the JWT's `iss`.
    pub fn org_id(&self) -> &str {
        &self.org_id
    }
    /// The technical-account id (`...@techacct.adobe.com`), the JWT's `sub`.
    pub fn technical_account_id(&self) -> &str {
        &self.technical_account_id
    }
    /// The private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.private_key
    }
    /// The metascopes, split and trimmed.
    pub fn metascopes(&self) -> &[String] {
        &self.metascopes
    }
    /// The certificate (`publicKey` field) as PEM, when the file had one.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }
    /// The `certificateExpirationDate` field as written, when present.
    pub fn certificate_expiration(&self) -> Option<&str> {
        self.certificate_expiration.as_deref()
    }

    /// When the certificate bound to the key expires: its notAfter, else
    /// the `certificateExpirationDate` field. IMS stops accepting the JWT
    /// then, so warn users well before.
    pub fn certificate_expiry(&self) -> Option<SystemTime> {
        let from_cert = self
            .certificate_pem
            .as_deref()
            .and_then(certificate_not_after);
        from_cert.or_else(|| {
            self.certificate_expiration
                .as_deref()
                .and_then(parse_rfc3339)
        })
    }
}

impl OAuthCredentials {
    /// Starts building OAuth credentials from values given in code.
    pub fn builder() -> OAuthCredentialsBuilder {
        OAuthCredentialsBuilder::default()
    }
    /// The IMS endpoint.
    pub fn ims(&self) -> &Endpoint {
        &self.ims
    }
    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// The client secret.
    pub fn client_secret(&self) -> &ClientSecret {
        &self.client_secret
    }
    /// The scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

/// Builds a [`ServiceAccount`] from values given in code.
#[derive(Debug, Default)]
pub struct ServiceAccountBuilder {
    ims: Option<String>,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    org_id: Option<String>,
    technical_account_id: Option<String>,
    private_key: Option<PrivateKey>,
    metascopes: Vec<String>,
}

impl ServiceAccountBuilder {
    /// IMS host or URL (see [`Endpoint::parse`]); default `ims-na1.adobelogin.com`.
    pub fn ims(mut self, ims: impl Into<String>) -> Self {
        self.ims = Some(ims.into());
        self
    }
    /// Client id (API key).
    pub fn client_id(mut self, v: impl Into<String>) -> Self {
        self.client_id = Some(v.into());
        self
    }
    /// Client secret.
    pub fn client_secret(mut self, v: ClientSecret) -> Self {
        self.client_secret = Some(v);
        self
    }
    /// Organization id (`...@AdobeOrg`).
    pub fn org_id(mut self, v: impl Into<String>) -> Self {
        self.org_id = Some(v.into());
        self
    }
    /// Technical-account id (`...@techacct.adobe.com`).
    pub fn technical_account_id(mut self, v: impl Into<String>) -> Self {
        self.technical_account_id = Some(v.into());
        self
    }
    /// The private key, parsed with [`PrivateKey::from_pem`].
    pub fn private_key(mut self, v: PrivateKey) -> Self {
        self.private_key = Some(v);
        self
    }
    /// Metascopes, comma-separated (`ent_aem_cloud_api,ent_cloudmgr_sdk`);
    /// may be called more than once.
    pub fn metascopes(mut self, list: &str) -> Self {
        self.metascopes.extend(split_list(list));
        self
    }

    /// Checks that every value is there.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first missing value or a bad endpoint.
    pub fn build(self) -> Result<ServiceAccount, Error> {
        Ok(ServiceAccount {
            ims: Endpoint::parse(self.ims.as_deref().unwrap_or(DEFAULT_IMS))?,
            client_id: required(self.client_id, "client_id")?,
            client_secret: required(self.client_secret, "client_secret")?,
            org_id: required(self.org_id, "org_id")?,
            technical_account_id: required(self.technical_account_id, "technical_account_id")?,
            private_key: required(self.private_key, "private_key")?,
            metascopes: non_empty_list(self.metascopes, "metascopes")?,
            certificate_pem: None,
            certificate_expiration: None,
        })
    }
}

/// Builds [`OAuthCredentials`] from values given in code.
#[derive(Debug, Default)]
pub struct OAuthCredentialsBuilder {
    ims: Option<String>,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    scopes: Vec<String>,
}

impl OAuthCredentialsBuilder {
    /// IMS host or URL (see [`Endpoint::parse`]); default `ims-na1.adobelogin.com`.
    pub fn ims(mut self, ims: impl Into<String>) -> Self {
        self.ims = Some(ims.into());
        self
    }
    /// Client id.
    pub fn client_id(mut self, v: impl Into<String>) -> Self {
        self.client_id = Some(v.into());
        self
    }
    /// Client secret.
    pub fn client_secret(mut self, v: ClientSecret) -> Self {
        self.client_secret = Some(v);
        self
    }
    /// Scopes, comma-separated; may be called more than once.
    pub fn scopes(mut self, list: &str) -> Self {
        self.scopes.extend(split_list(list));
        self
    }

    /// Checks that every value is there.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first missing value or a bad endpoint.
    pub fn build(self) -> Result<OAuthCredentials, Error> {
        Ok(OAuthCredentials {
            ims: Endpoint::parse(self.ims.as_deref().unwrap_or(DEFAULT_IMS))?,
            client_id: required(self.client_id, "client_id")?,
            client_secret: required(self.client_secret, "client_secret")?,
            scopes: non_empty_list(self.scopes, "scopes")?,
        })
    }
}

const DEFAULT_IMS: &str = "ims-na1.adobelogin.com";

fn required<T>(value: Option<T>, name: &str) -> Result<T, Error> {
    value.ok_or_else(|| Error::config(format!("credentials lack `{name}`")))
}

fn non_empty_list(list: Vec<String>, name: &str) -> Result<Vec<String>, Error> {
    if list.is_empty() {
        return Err(Error::config(format!("credentials have no `{name}`")));
    }
    Ok(list)
}

/// Splits a comma-separated list, trims entries and drops empty ones.
fn split_list(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl Credentials {
    /// Reads credentials from JSON text: AEM service credentials (with or
    /// without the `{ok, integration, statusCode}` wrapper) or an AEM OAuth
    /// Server-to-Server technical account. Unknown fields are ignored.
    ///
    /// # Errors
    /// [`Error::Config`] naming the missing or mistyped field by its JSON
    /// path; [`Error::Key`] for a private key that cannot be used.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let mut root: Value = serde_json::from_str(text)
            .map_err(|e| Error::config_from("the credentials are not valid JSON", e))?;
        let credentials = Self::from_value(&root);
        wipe_json(&mut root);
        credentials
    }

    /// Reads credentials JSON from a reader (e.g. stdin).
    ///
    /// # Errors
    /// As [`Credentials::from_json`], and [`Error::Io`] when reading fails.
    pub fn from_reader(mut reader: impl Read) -> Result<Self, Error> {
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .map_err(|e| Error::io("cannot read the credentials", e))?;
        let parsed = Self::from_json(&text);
        text.zeroize();
        parsed
    }

    /// Reads credentials JSON from a file.
    ///
    /// # Errors
    /// As [`Credentials::from_json`], and [`Error::Io`] naming the path when
    /// the file cannot be read.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| {
            Error::io(
                format!("cannot read credentials file {}", path.display()),
                e,
            )
        })?;
        Self::from_reader(file).map_err(|e| e.in_file(path))
    }

    /// Reads credentials from parsed JSON.
    ///
    /// # Errors
    /// As [`Credentials::from_json`].
    pub fn from_value(root: &Value) -> Result<Self, Error> {
        let (fields, prefix) = match root.get("integration") {
            Some(inner) => (inner, "integration."),
            None => (root, ""),
        };
        let fields = Fields {
            obj: object(fields, prefix.trim_end_matches('.'))?,
            prefix: prefix.to_owned(),
        };
        if fields.obj.contains_key("privateKey") {
            service_account_from_json(&fields).map(Credentials::ServiceAccount)
        } else if fields.obj.contains_key("scopes") {
            oauth_from_json(&fields).map(Credentials::OAuth)
        } else {
            Err(Error::config(format!(
                "the credentials have neither `{prefix}privateKey` (JWT service account) \
                 nor `{prefix}scopes` (OAuth Server-to-Server)"
            )))
        }
    }

    /// Replaces the endpoint (e.g. a stage IMS or a local fake).
    pub fn with_ims(mut self, ims: Endpoint) -> Self {
        match &mut self {
            Credentials::ServiceAccount(a) => a.ims = ims,
            Credentials::OAuth(o) => o.ims = ims,
        }
        self
    }

    /// Replaces the metascopes (service account) or scopes (OAuth) with a
    /// comma-separated list.
    ///
    /// # Errors
    /// [`Error::Config`] when the list is empty.
    pub fn with_scopes(mut self, list: &str) -> Result<Self, Error> {
        let scopes = non_empty_list(split_list(list).collect(), "scopes")?;
        match &mut self {
            Credentials::ServiceAccount(a) => a.metascopes = scopes,
            Credentials::OAuth(o) => o.scopes = scopes,
        }
        Ok(self)
    }

    /// The metascopes (service account) or scopes (OAuth).
    pub fn scopes(&self) -> &[String] {
        match self {
            Credentials::ServiceAccount(a) => &a.metascopes,
            Credentials::OAuth(o) => &o.scopes,
        }
    }

    /// The IMS endpoint of either kind.
    pub fn ims(&self) -> &Endpoint {
        match self {
            Credentials::ServiceAccount(a) => &a.ims,
            Credentials::OAuth(o) => &o.ims,
        }
    }

    /// The client id of either kind.
    pub fn client_id(&self) -> &str {
        match self {
            Credentials::ServiceAccount(a) => &a.client_id,
            Credentials::OAuth(o) => &o.client_id,
        }
    }
}

/// Overwrites every string in parsed JSON with zeros before it is dropped.
/// Call it on credentials JSON you parsed yourself for
/// [`Credentials::from_value`]: the parsed tree holds copies of the secret
/// and the key.
pub fn wipe_json(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe_json),
        Value::Object(map) => map.values_mut().for_each(wipe_json),
        _ => {}
    }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Error> {
    value.as_object().ok_or_else(|| {
        let path = if path.is_empty() {
            "the top level"
        } else {
            path
        };
        Error::config(format!("credentials field `{path}` must be a JSON object"))
    })
}

/// A JSON object and the path it sits at, for error messages.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
}

impl Fields<'_> {
    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn get(&self, name: &str) -> Result<&Value, Error> {
        self.obj
            .get(name)
            .filter(|v| !v.is_null())
            .ok_or_else(|| Error::config(format!("credentials lack `{}`", self.path(name))))
    }

    fn string(&self, name: &str) -> Result<&str, Error> {
        let value = self
            .get(name)?
            .as_str()
            .ok_or_else(|| self.mistyped(name, "a string"))?;
        if value.trim().is_empty() {
            return Err(Error::config(format!(
                "credentials field `{}` is empty",
                self.path(name)
            )));
        }
        Ok(value.trim())
    }

    fn optional_string(&self, name: &str) -> Option<String> {
        self.obj
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn nested(&self, name: &str) -> Result<Fields<'_>, Error> {
        let obj = object(self.get(name)?, &self.path(name))?;
        Ok(Fields {
            obj,
            prefix: format!("{}{name}.", self.prefix),
        })
    }

    /// A list given as one comma-separated string or an array of strings.
    fn list(&self, name: &str) -> Result<Vec<String>, Error> {
        let items: Vec<String> = match self.get(name)? {
            Value::String(s) => split_list(s).collect(),
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    let s = item
                        .as_str()
                        .ok_or_else(|| self.mistyped(name, "strings"))?;
                    out.extend(split_list(s));
                }
                out
            }
            _ => return Err(self.mistyped(name, "a string or an array of strings")),
        };
        if items.is_empty() {
            return Err(Error::config(format!(
                "credentials field `{}` is empty",
                self.path(name)
            )));
        }
        Ok(items)
    }

    fn mistyped(&self, name: &str, expected: &str) -> Error {
        Error::config(format!(
            "credentials field `{}` must be {expected}",
            self.path(name)
        ))
    }
}

fn service_account_from_json(f: &Fields<'_>) -> Result<ServiceAccount, Error> {
    let account = f.nested("technicalAccount")?;
    let key_path = f.path("privateKey");
    let private_key =
        PrivateKey::from_pem(f.string("privateKey")?).map_err(|e| e.at_field(&key_path))?;
    Ok(ServiceAccount {
        ims: Endpoint::parse(f.string("imsEndpoint")?)?,
        client_id: account.string("clientId")?.to_owned(),
        client_secret: ClientSecret::new(account.string("clientSecret")?),
        org_id: f.string("org")?.to_owned(),
        technical_account_id: f.string("id")?.to_owned(),
        private_key,
        metascopes: f.list("metascopes")?,
        certificate_pem: f.optional_string("publicKey"),
        certificate_expiration: f.optional_string("certificateExpirationDate"),
    })
}

fn oauth_from_json(f: &Fields<'_>) -> Result<OAuthCredentials, Error> {
    let account = f.nested("technicalAccount")?;
    Ok(OAuthCredentials {
        ims: Endpoint::parse(f.string("imsEndpoint")?)?,
        client_id: account.string("clientId")?.to_owned(),
        client_secret: ClientSecret::new(account.string("clientSecret")?),
        scopes: f.list("scopes")?,
    })
}

// ---------------------------------------------------------------------------
// Certificate expiry: just enough DER and date parsing to read notAfter
// ---------------------------------------------------------------------------

/// The notAfter of the first certificate in a PEM text.
fn certificate_not_after(pem: &str) -> Option<SystemTime> {
    let block = PemBlock::parse(pem, "the certificate").ok()?;
    if block.label != "CERTIFICATE" {
        return None;
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(&block.body.0)
        .ok()?;
    let (cert, _) = der_item(&der)?;
    let (mut tbs, _) = der_item(cert)?;
    if tbs.first() == Some(&0xa0) {
        tbs = der_item(tbs)?.1; // explicit version
    }
    for _ in 0..3 {
        tbs = der_item(tbs)?.1; // serial, signature algorithm, issuer
    }
    let (validity, _) = der_item(tbs)?;
    let not_after = der_item(validity)?.1;
    let (time, _) = der_item(not_after)?;
    let text = std::str::from_utf8(time).ok()?;
    match not_after.first()? {
        0x17 => parse_asn1_time(text, true),
        0x18 => parse_asn1_time(text, false),
        _ => None,
    }
}

/// Splits one DER item off the front: (its contents, what follows it).
fn der_item(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = der.get(1..)?.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        let bytes = rest.get(..n).filter(|b| (1..=4).contains(&b.len()))?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest.get(n..)?)
    };
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn parse_asn1_time(text: &str, two_digit_year: bool) -> Option<SystemTime> {
    let text = text.strip_suffix('Z')?;
    let (year, rest) = if two_digit_year {
        let yy: i64 = text.get(..2)?.parse().ok()?;
        (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
    } else {
        (text.get(..4)?.parse().ok()?, text.get(4..)?)
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    civil_to_time(year, field(0)?, field(2)?, field(4)?, field(6)?, field(8)?)
}

/// `2027-05-21T14:16:46.000Z` (UTC only, fraction ignored).
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let t = text.trim();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { t.get(r)?.parse().ok() };
    if t.get(4..5)? != "-" || t.get(10..11).map(|s| s.to_ascii_uppercase())? != "T" {
        return None;
    }
    civil_to_time(
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    )
}

/// Seconds since the epoch of a UTC date and time (days from Howard
/// Hinnant's `days_from_civil`).
fn civil_to_time(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64) -> Option<SystemTime> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

// ---------------------------------------------------------------------------
// Pure steps: sign, build the form, parse the reply
// ---------------------------------------------------------------------------

/// Signs the JWT IMS expects for `account`, valid from `now` for `lifetime`.
///
/// Header `{"alg":"RS256","typ":"JWT"}`; claims `iss` (org), `sub`
/// (technical account), `aud` (`https://{ims}/c/{client_id}`), integer
/// `exp`, and `"https://{ims}/s/{metascope}": true` per metascope. The
/// `https://{ims}` is the endpoint's URL as given: `http://127.0.0.1:8080`
/// for a plain-http loopback endpoint.
///
/// # Errors
/// [`Error::Config`] when `lifetime` is zero or over 24 hours or `now` is
/// before 1970; [`Error::Key`] if signing fails.
pub fn sign_jwt(
    account: &ServiceAccount,
    now: SystemTime,
    lifetime: Duration,
) -> Result<SignedJwt, Error> {
    check_lifetime(lifetime)?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::config("the clock is before 1970"))?;
    let claims = jwt_claims(account, (now + lifetime).as_secs());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut jwt = format!(
        "{}.{}",
        b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    let signature = account.private_key.sign(jwt.as_bytes())?;
    jwt.push('.');
    jwt.push_str(&b64.encode(signature));
    Ok(SignedJwt(Secret(jwt)))
}

fn check_lifetime(lifetime: Duration) -> Result<(), Error> {
    if lifetime.is_zero() || lifetime > MAX_JWT_LIFETIME {
        return Err(Error::config(format!(
            "JWT lifetime must be between 1 and {} seconds",
            MAX_JWT_LIFETIME.as_secs()
        )));
    }
    Ok(())
}

/// The claims, built on the endpoint's URL as given, scheme included: for
/// `https` that is `https://{host}`, and a plain `http://` loopback fake is
/// named as what it is (as @adobe/jwt-auth and adobe/ims-go do).
fn jwt_claims(account: &ServiceAccount, exp: u64) -> Value {
    let ims = account.ims.url();
    let mut claims = Map::new();
    claims.insert("iss".into(), account.org_id.clone().into());
    claims.insert("sub".into(), account.technical_account_id.clone().into());
    claims.insert(
        "aud".into(),
        format!("{ims}/c/{}", account.client_id).into(),
    );
    claims.insert("exp".into(), exp.into());
    for scope in &account.metascopes {
        let claim = if scope.starts_with("https://") || scope.starts_with("http://") {
            scope.clone()
        } else {
            format!("{ims}/s/{scope}")
        };
        claims.insert(claim, Value::Bool(true));
    }
    Value::Object(claims)
}

/// The form fields of the JWT exchange, in order.
fn jwt_exchange_form<'a>(
    account: &'a ServiceAccount,
    jwt: &'a SignedJwt,
) -> [(&'a str, &'a str); 3] {
    [
        ("client_id", &account.client_id),
        ("client_secret", account.client_secret.secret()),
        ("jwt_token", jwt.secret()),
    ]
}

/// The form fields of the client-credentials grant, in order. The scope
/// list is passed in because the form only borrows.
fn oauth_form<'a>(oauth: &'a OAuthCredentials, scope: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", &oauth.client_id),
        ("client_secret", oauth.client_secret.secret()),
        ("scope", scope),
    ]
}

/// One attempt's form body, and the secrets to scrub from anything quoted
/// back: as given and as encoded in the form (a server may echo the body).
/// Everything in it is wiped on drop.
struct FormRequest {
    body: Secret,
    secrets: Vec<Secret>,
}

impl FormRequest {
    fn new(fields: &[(&str, &str)], secrets: &[&str]) -> Self {
        let secrets = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .flat_map(|s| [Secret(s.to_string()), Secret(form_urlencode(s))])
            .collect();
        FormRequest {
            body: Secret(form_body(fields)),
            secrets,
        }
    }

    fn scrub(&self) -> Vec<&str> {
        self.secrets.iter().map(|s| s.0.as_str()).collect()
    }
}

/// `application/x-www-form-urlencoded` body of the fields, in order,
/// written into one buffer so no stray copies of the values are left.
fn form_body(fields: &[(&str, &str)]) -> String {
    let capacity = fields
        .iter()
        .map(|(k, v)| 3 * (k.len() + v.len()) + 2)
        .sum();
    let mut out = String::with_capacity(capacity);
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push_form_encoded(&mut out, key);
        out.push('=');
        push_form_encoded(&mut out, value);
    }
    out
}

fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(3 * value.len());
    push_form_encoded(&mut out, value);
    out
}

/// Form encoding: unreserved bytes as they are, space as `+`, the rest `%XX`.
fn push_form_encoded(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
    }
}

/// Which IMS flow a reply comes from. They give `expires_in` in different
/// units: milliseconds for the JWT exchange, seconds for OAuth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flow {
    /// `/ims/exchange/jwt`: `expires_in` in milliseconds.
    JwtExchange,
    /// `/ims/token/v3`: `expires_in` in seconds.
    ClientCredentials,
}

/// Judges an IMS reply without any I/O: a token (with its expiry counted
/// from `now`) or the error it stands for. For callers with their own HTTP
/// stack; [`Client`] uses the same logic.
///
/// # Errors
/// [`Error::Rejected`] for 4xx, [`Error::Unavailable`] for 5xx and 429,
/// [`Error::UnexpectedReply`] for anything else that is not a token.
pub fn parse_token_reply(
    flow: Flow,
    status: u16,
    body: &[u8],
    now: SystemTime,
) -> Result<AccessToken, Error> {
    let reply = RawReply {
        status,
        debug_id: None,
        retry_after: None,
        location: None,
        body: zeroize::Zeroizing::new(body.to_vec()),
    };
    parse_reply(&reply, flow, now, &[])
}

/// An HTTP reply as read off the wire, before it is judged. No `Debug`:
/// the body of a 200 holds the token.
struct RawReply {
    status: u16,
    debug_id: Option<String>,
    retry_after: Option<Duration>,
    location: Option<String>,
    body: zeroize::Zeroizing<Vec<u8>>,
}

/// Turns an IMS reply into a token or the error it stands for. `secrets`
/// are scrubbed from any excerpt that goes into an error.
fn parse_reply(
    reply: &RawReply,
    unit: Flow,
    now: SystemTime,
    secrets: &[&str],
) -> Result<AccessToken, Error> {
    match reply.status {
        200 => parse_success(reply, unit, now),
        429 | 500..=599 => Err(Error::Unavailable(Box::new(ims_error(reply, secrets)))),
        400..=499 => Err(Error::Rejected(Box::new(ims_error(reply, secrets)))),
        300..=399 => Err(Error::unexpected(
            reply.status,
            format!(
                "IMS answered with a redirect to {}; it is not followed because the \
                 request carries the client secret: check the IMS endpoint",
                reply
                    .location
                    .as_deref()
                    .map(|l| excerpt(l.as_bytes(), secrets))
                    .unwrap_or_else(|| "nowhere".into())
            ),
        )),
        // Another 2xx may carry a token: its body is never quoted.
        201..=299 => Err(Error::unexpected(
            reply.status,
            "IMS answered with an unexpected success status",
        )),
        _ => Err(Error::unexpected_with_excerpt(
            reply.status,
            "IMS answered with an unexpected status",
            excerpt(&reply.body, secrets),
        )),
    }
}

/// Reads a 200 reply. Nothing of its body goes into an error: it may hold
/// a token.
fn parse_success(reply: &RawReply, unit: Flow, now: SystemTime) -> Result<AccessToken, Error> {
    let mut json: Value = serde_json::from_slice(&reply.body)
        .map_err(|_| Error::unexpected(200, "the IMS reply is not JSON"))?;
    let token = token_from_json(&json, unit, now);
    wipe_json(&mut json);
    token
}

fn token_from_json(json: &Value, unit: Flow, now: SystemTime) -> Result<AccessToken, Error> {
    let bad = |what: &str| Error::unexpected(200, format!("the IMS reply {what}"));
    let token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("has no `access_token`"))?;
    // A CR/LF or control character would inject a header or a line
    // wherever the token is written: refuse it whole, never quote it.
    if !is_visible_ascii(token) {
        return Err(bad(
            "has an `access_token` with characters that are not visible ASCII",
        ));
    }
    let amount = json
        .get("expires_in")
        .and_then(expires_in_number)
        .ok_or_else(|| bad("has no valid `expires_in`"))?;
    let lifetime = match unit {
        Flow::JwtExchange => Duration::from_millis(amount),
        Flow::ClientCredentials => Duration::from_secs(amount),
    };
    let expires_at = now
        .checked_add(lifetime)
        .ok_or_else(|| bad("has an `expires_in` that is too large"))?;
    let token_type = json
        .get("token_type")
        .and_then(Value::as_str)
        .unwrap_or("bearer");
    if !is_visible_ascii(token_type) {
        return Err(bad(
            "has a `token_type` with characters that are not visible ASCII",
        ));
    }
    Ok(AccessToken::new(token, token_type, now, expires_at))
}

/// Non-empty and only `!` to `~`: safe in a header, a line or an argument.
fn is_visible_ascii(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic())
}

/// `expires_in` as a whole number; some servers send it as a string.
fn expires_in_number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|&n| n > 0)
}

fn ims_error(reply: &RawReply, secrets: &[&str]) -> ImsError {
    let json: Option<Value> = serde_json::from_slice(&reply.body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(Value::as_str)
            .map(|s| excerpt(s.as_bytes(), secrets))
    };
    let code = field("error");
    let description = field("error_description");
    let body_excerpt = match (&code, reply.body.is_empty()) {
        (None, false) => Some(excerpt(&reply.body, secrets)),
        _ => None,
    };
    ImsError {
        status: reply.status,
        code,
        description,
        debug_id: reply
            .debug_id
            .as_deref()
            .map(|d| excerpt(d.as_bytes(), secrets)),
        retry_after: reply.retry_after,
        excerpt: body_excerpt,
    }
}

/// A short, printable, secret-free piece of untrusted text.
fn excerpt(bytes: &[u8], secrets: &[&str]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, REDACTED);
    }
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_EXCERPT_CHARS)
        .collect();
    if text.chars().count() > MAX_EXCERPT_CHARS {
        out.push('…');
    }
    out.trim().to_owned()
}

// ---------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------

/// Fetches a token with a default [`Client`]: the one call for the common case.
///
/// # Errors
/// See [`Client::fetch`].
pub fn fetch_token(credentials: &Credentials) -> Result<AccessToken, Error> {
    Client::new()?.fetch(credentials)
}

/// A reusable IMS client: one HTTP agent (connection pool, TLS setup)
/// configured on purpose, plus the retry policy and JWT lifetime.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    /// The proxy the agent goes through, if any.
    route: Option<ProxyRoute>,
    retries: u32,
    max_retry_wait: Duration,
    jwt_lifetime: Duration,
}

/// Settings for a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    timeout: Duration,
    connect_timeout: Duration,
    retries: u32,
    max_retry_wait: Duration,
    jwt_lifetime: Duration,
    ca_file: Option<PathBuf>,
    proxy: ProxySetting,
}

#[derive(Debug, Clone)]
enum ProxySetting {
    FromEnv,
    None,
    Url(Secret),
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            max_retry_wait: DEFAULT_MAX_RETRY_WAIT,
            jwt_lifetime: DEFAULT_JWT_LIFETIME,
            ca_file: None,
            proxy: ProxySetting::FromEnv,
        }
    }
}

impl ClientBuilder {
    /// Overall timeout of one HTTP call, from connect to the end of the
    /// body (default 30 s). Each retry gets its own.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Timeout for opening the connection, proxy and TLS included (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Retries after the first attempt on transport errors, timeouts, 5xx
    /// and 429 (default 2). Other 4xx are never retried.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
    /// Longest wait between attempts, including one asked for by
    /// `Retry-After` (default 20 s).
    pub fn max_retry_wait(mut self, wait: Duration) -> Self {
        self.max_retry_wait = wait;
        self
    }
    /// Lifetime of each signed JWT (default 300 s, at most 24 h).
    pub fn jwt_lifetime(mut self, lifetime: Duration) -> Self {
        self.jwt_lifetime = lifetime;
        self
    }
    /// Trusts the CA certificates in this PEM file as well as the built-in
    /// Mozilla roots (for TLS-intercepting corporate proxies).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
    /// The proxy: `Some("http://user:pass@proxy:3128")`, or `None` for a
    /// direct connection. By default it comes from `ALL_PROXY`,
    /// `HTTPS_PROXY` or `HTTP_PROXY` (either case, the first set), and the
    /// IMS host goes direct when `no_proxy` or `NO_PROXY` (the first that is
    /// not empty) lists it, read as curl reads it: comma-separated, spaces
    /// trimmed, any case, `.example.com` or `*.example.com` (or plain
    /// `example.com`) for a domain and its subdomains, `*` for all, IPv6
    /// addresses with or without brackets, `10.0.0.0/8` networks. A proxy
    /// given here is used for every host.
    pub fn proxy(mut self, proxy: Option<&str>) -> Self {
        self.proxy = match proxy {
            Some(url) => ProxySetting::Url(Secret(url.to_owned())),
            None => ProxySetting::None,
        };
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] for a JWT lifetime or timeout out of range, a proxy URL that
    /// cannot be used, or a CA file with no certificate; [`Error::Io`] when
    /// the CA file cannot be read.
    pub fn build(self) -> Result<Client, Error> {
        check_lifetime(self.jwt_lifetime)?;
        check_timeout(self.timeout, "timeout")?;
        check_timeout(self.connect_timeout, "connect timeout")?;
        let tls = tls_config(self.ca_file.as_deref())?;
        let route = proxy(&self.proxy)?;
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .timeout_connect(Some(self.connect_timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .https_only(false)
            .proxy(route.as_ref().map(|r| r.proxy.clone()))
            .tls_config(tls)
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            route,
            retries: self.retries,
            max_retry_wait: self.max_retry_wait,
            jwt_lifetime: self.jwt_lifetime,
        })
    }
}

/// Longest timeout accepted; ureq's deadline arithmetic overflows on huge ones.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

fn check_timeout(timeout: Duration, name: &str) -> Result<(), Error> {
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(Error::config(format!(
            "the {name} must be between 1 ms and {} seconds",
            MAX_TIMEOUT.as_secs()
        )));
    }
    Ok(())
}

/// The environment variables read for a proxy, in order; the first set wins.
const PROXY_VARS: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// The environment variables read for hosts that go around the proxy, in
/// curl's order; an empty one does not hide the other.
const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// A proxy the client goes through, and the hosts that go around it.
#[derive(Debug, Clone)]
struct ProxyRoute {
    proxy: ureq::Proxy,
    /// `127.0.0.1:3128 (from $HTTPS_PROXY)`: host and port, never the
    /// user or password.
    name: String,
    /// The NO_PROXY list (only for a proxy from the environment).
    no_proxy: String,
}

impl ProxyRoute {
    fn new(proxy: ureq::Proxy, from: Option<&str>, no_proxy: String) -> Self {
        let name = match from {
            Some(var) => format!("{}:{} (from ${var})", proxy.host(), proxy.port()),
            None => format!("{}:{}", proxy.host(), proxy.port()),
        };
        ProxyRoute {
            proxy,
            name,
            no_proxy,
        }
    }
}

fn proxy(setting: &ProxySetting) -> Result<Option<ProxyRoute>, Error> {
    let env = |name: &str| std::env::var(name).ok();
    match setting {
        ProxySetting::None => Ok(None),
        ProxySetting::Url(url) => parse_proxy(&url.0, "the proxy URL")
            .map(|p| Some(ProxyRoute::new(p, None, String::new()))),
        ProxySetting::FromEnv => {
            let Some((var, value)) = first_set(&PROXY_VARS, env) else {
                return Ok(None);
            };
            let proxy = parse_proxy(&value, &format!("the proxy in ${var}"))?;
            let no_proxy = first_set(&NO_PROXY_VARS, env).map(|(_, v)| v);
            Ok(Some(ProxyRoute::new(
                proxy,
                Some(var),
                no_proxy.unwrap_or_default(),
            )))
        }
    }
}

/// The first of `names` whose value (from `get`) is not blank.
fn first_set<'a>(
    names: &[&'a str],
    get: impl Fn(&str) -> Option<String>,
) -> Option<(&'a str, String)> {
    names.iter().find_map(|&name| {
        get(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    })
}

/// Whether `host` (a name, an IPv4 address, or an IPv6 address with or
/// without brackets) is in a NO_PROXY `list`, read as curl reads it:
/// entries separated by commas or spaces, compared without case; `*` for
/// every host; a name matches itself and its subdomains, with or without a
/// leading `.` or `*.` (`example.com` covers `www.example.com`); an address
/// matches itself or a `/bits` network containing it.
fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = unbracket(host).trim_end_matches('.').to_ascii_lowercase();
    let address: Option<std::net::IpAddr> = host.parse().ok();
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|entry| !entry.is_empty())
        .any(|entry| match (entry, address) {
            ("*", _) => true,
            (_, Some(address)) => address_matches(entry, address),
            (_, None) => name_matches(entry, &host),
        })
}

fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn name_matches(entry: &str, host: &str) -> bool {
    let entry = entry.trim_end_matches('.').to_ascii_lowercase();
    let entry = entry
        .strip_prefix("*.")
        .or_else(|| entry.strip_prefix('.'))
        .unwrap_or(&entry);
    !entry.is_empty()
        && (host == entry
            || host
                .strip_suffix(entry)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// `entry` is an address (`::1`, `[::1]`) or a network (`10.0.0.0/8`).
fn address_matches(entry: &str, address: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let (ip, bits) = match entry.split_once('/') {
        Some((ip, bits)) => (ip, bits.parse::<u32>().ok()),
        None => (entry, None),
    };
    let Ok(network) = unbracket(ip).parse::<IpAddr>() else {
        return false;
    };
    let (host, network, width) = match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let bits = match (entry.contains('/'), bits) {
        (false, _) => width,
        (true, Some(b)) if b <= width => b,
        (true, _) => return false,
    };
    // The top `bits` of the `width`-bit address, as in a netmask.
    let mask = match bits {
        0 => 0,
        _ => (u128::MAX >> (128 - bits)) << (width - bits),
    };
    (host ^ network) & mask == 0
}

/// Checks a proxy URL; its text is never quoted, as it may hold a password.
fn parse_proxy(url: &str, what: &str) -> Result<ureq::Proxy, Error> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if matches!(scheme.as_deref(), Some(s) if s.starts_with("socks")) {
        return Err(Error::config(format!(
            "{what} is a SOCKS proxy; only HTTP CONNECT proxies are supported"
        )));
    }
    ureq::Proxy::new(url).map_err(|_| Error::config(format!("{what} is not a valid proxy URL")))
}

fn tls_config(ca_file: Option<&Path>) -> Result<ureq::tls::TlsConfig, Error> {
    let builder = ureq::tls::TlsConfig::builder();
    let Some(path) = ca_file else {
        return Ok(builder.build());
    };
    let pem = read_capped_file(path, MAX_CA_FILE_BYTES)
        .map_err(|e| Error::io(format!("cannot read CA file {}", path.display()), e))?;
    let extra = pem_certificates(&pem).map_err(|e| e.in_file(path))?;
    let roots: Vec<ureq::tls::Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .chain(extra)
        .collect();
    Ok(builder
        .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
        .build())
}

/// Largest CA file read: a bundle of every public root is about 250 KiB.
const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a whole regular file of at most `cap` bytes. The open does not
/// block (a FIFO or a device is refused after `fstat` on the opened file,
/// never waited on), and a larger file is an error, not a truncated read.
/// The bytes are wiped on drop.
fn read_capped_file(path: &Path, cap: u64) -> std::io::Result<zeroize::Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let metadata = file.metadata()?;
    if let Some(kind) = not_regular(&metadata.file_type()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file"),
        ));
    }
    let too_large = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is larger than {} KiB", cap / 1024),
        )
    };
    if metadata.len() > cap {
        return Err(too_large());
    }
    // Sized up front, so that the buffer is not moved (leaving an unwiped
    // copy) while it is read.
    let capacity = usize::try_from(metadata.len())
        .unwrap_or(0)
        .saturating_add(1);
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(capacity));
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).map_or(true, |n| n > cap) {
        return Err(too_large());
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, in words.
fn not_regular(kind: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("a special file")
    }
}

/// The certificates in a PEM bundle; other items (keys) are skipped.
fn pem_certificates(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, Error> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(Error::config_from("the CA file is not valid PEM", e)),
        }
    }
    if certs.is_empty() {
        return Err(Error::config("the CA file holds no certificate"));
    }
    Ok(certs)
}

impl Client {
    /// A client with the default settings.
    ///
    /// # Errors
    /// [`Error::Config`] when the proxy in the environment cannot be used.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Settings for a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Gets a token by the flow the credentials call for.
    ///
    /// # Errors
    /// [`Error::Rejected`] when IMS refuses the request; [`Error::Unavailable`],
    /// [`Error::Transport`] or [`Error::Timeout`] when it is worth trying
    /// later (after the retries); [`Error::Tls`] when the server's
    /// certificate is refused; [`Error::Config`] when the proxy refuses its
    /// credentials (407, not retried); [`Error::UnexpectedReply`] when the
    /// reply is not what IMS sends (a token or token type with characters
    /// other than visible ASCII included); [`Error::Key`] if signing fails.
    pub fn fetch(&self, credentials: &Credentials) -> Result<AccessToken, Error> {
        match credentials {
            Credentials::ServiceAccount(account) => self.exchange_jwt(account),
            Credentials::OAuth(oauth) => self.client_credentials(oauth),
        }
    }

    /// Signs a JWT and exchanges it at `/ims/exchange/jwt`.
    ///
    /// # Errors
    /// See [`Client::fetch`].
    pub fn exchange_jwt(&self, account: &ServiceAccount) -> Result<AccessToken, Error> {
        // A fresh JWT for every attempt: a retry must not send one that
        // expired while the previous attempt waited.
        self.post_with_retries(&account.ims, "/ims/exchange/jwt", Flow::JwtExchange, || {
            let jwt = sign_jwt(account, SystemTime::now(), self.jwt_lifetime)?;
            let form = jwt_exchange_form(account, &jwt);
            Ok(FormRequest::new(
                &form,
                &[account.client_secret.secret(), jwt.secret()],
            ))
        })
    }

    /// Asks `/ims/token/v3` for a token with the client-credentials grant.
    ///
    /// # Errors
    /// See [`Client::fetch`].
    pub fn client_credentials(&self, oauth: &OAuthCredentials) -> Result<AccessToken, Error> {
        let scope = oauth.scopes.join(",");
        self.post_with_retries(&oauth.ims, "/ims/token/v3", Flow::ClientCredentials, || {
            let form = oauth_form(oauth, &scope);
            Ok(FormRequest::new(&form, &[oauth.client_secret.secret()]))
        })
    }

    fn post_with_retries(
        &self,
        ims: &Endpoint,
        path: &str,
        unit: Flow,
        request: impl Fn() -> Result<FormRequest, Error>,
    ) -> Result<AccessToken, Error> {
        let url = ims.join(path);
        let via = self.route_to(ims);
        let mut attempt = 0;
        loop {
            let request = request()?;
            let result = self
                .post_once(&url, via, &request.body)
                .and_then(|reply| parse_reply(&reply, unit, SystemTime::now(), &request.scrub()));
            match result {
                Err(e) if attempt < self.retries && e.is_retryable() => {
                    std::thread::sleep(self.wait_before_retry(attempt, &e));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Exponential backoff from 250 ms, or what `Retry-After` asks, capped.
    fn wait_before_retry(&self, attempt: u32, error: &Error) -> Duration {
        let backoff = FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(attempt));
        error
            .retry_after()
            .unwrap_or(backoff)
            .min(self.max_retry_wait)
    }

    /// The proxy to reach `ims` through: none when NO_PROXY lists its host.
    fn route_to(&self, ims: &Endpoint) -> Option<&ProxyRoute> {
        self.route
            .as_ref()
            .filter(|route| !no_proxy_matches(&route.no_proxy, ims.bare_host()))
    }

    fn post_once(
        &self,
        url: &str,
        via: Option<&ProxyRoute>,
        form_body: &Secret,
    ) -> Result<RawReply, Error> {
        let mut request = self.agent.post(url);
        if via.is_none() && self.route.is_some() {
            request = request.config().proxy(None).build();
        }
        let mut response = request
            .header("Accept", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(form_body.0.as_bytes())
            .map_err(|e| match e {
                ureq::Error::LargeResponseHeader(_, max) => Error::unexpected(
                    0,
                    format!("the IMS reply's headers are larger than {} KiB", max / 1024),
                ),
                e => Error::from_transport(url, e, "cannot reach IMS at", via),
            })?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status().as_u16();
        let debug_id = header("x-debug-id");
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs);
        let location = header("location");
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Error::unexpected(
                    status,
                    format!(
                        "the IMS reply is larger than {} KiB",
                        MAX_REPLY_BYTES / 1024
                    ),
                ),
                e => Error::from_transport(url, e, "the reply broke off from IMS at", via),
            })
            .map(zeroize::Zeroizing::new)?;
        Ok(RawReply {
            status,
            debug_id,
            retry_after,
            location,
            body,
        })
    }
}

// ---------------------------------------------------------------------------
// Cached provider
// ---------------------------------------------------------------------------

/// Hands out a cached token and refreshes it shortly before it expires.
///
/// `Send + Sync`: share it between threads (in an `Arc` or a static). When
/// many threads ask while a refresh is due, one does the exchange and the
/// others wait for its result.
///
/// ```no_run
/// # fn main() -> Result<(), ims_token::Error> {
/// use ims_token::{Client, Credentials, TokenProvider};
/// let provider = TokenProvider::new(
///     Client::new()?,
///     Credentials::from_file("service-credentials.json")?,
/// );
/// let token = provider.token()?;
/// // ... AEM answered 401: drop the token so the next call gets a new one.
/// provider.invalidate();
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TokenProvider {
    client: Client,
    credentials: Credentials,
    refresh_margin: Duration,
    state: Mutex<Cached>,
}

/// The provider's token and, after a failed refresh that kept it, when to
/// try again.
#[derive(Debug, Default)]
struct Cached {
    token: Option<AccessToken>,
    retry_at: Option<SystemTime>,
}

/// After a refresh failed and the old token was kept, how long the
/// provider hands the old token out before it asks IMS again.
const REFRESH_RETRY_PAUSE: Duration = Duration::from_secs(30);

impl TokenProvider {
    /// A provider with the default refresh margin (10 minutes, never more
    /// than half the token's lifetime).
    pub fn new(client: Client, credentials: Credentials) -> Self {
        TokenProvider {
            client,
            credentials,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            state: Mutex::new(Cached::default()),
        }
    }

    /// Sets how long before expiry the token is refreshed.
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// The cached token, or a new one when it is missing or close to expiry.
    ///
    /// The refresh margin is there for bad days: when a refresh fails in a
    /// way worth retrying (IMS 5xx or 429, network, timeout) and the old
    /// token has not expired yet, the old token is handed out and IMS is
    /// asked again after 30 seconds.
    ///
    /// # Errors
    /// As [`Client::fetch`], when there is no unexpired token to fall back
    /// on or IMS refused the refresh (then no token is kept).
    pub fn token(&self) -> Result<AccessToken, Error> {
        // The lock is held across the exchange on purpose: callers that
        // arrive during a refresh wait for it instead of starting their own.
        let mut state = self.lock();
        let now = SystemTime::now();
        if let Some(token) = &state.token {
            let pausing =
                state.retry_at.is_some_and(|at| now < at) && token.expires_in(now) > Duration::ZERO;
            if pausing || token.is_fresh(now, self.refresh_margin) {
                return Ok(token.clone());
            }
        }
        match self.client.fetch(&self.credentials) {
            Ok(token) => {
                *state = Cached {
                    token: Some(token.clone()),
                    retry_at: None,
                };
                Ok(token)
            }
            Err(e) => {
                let now = SystemTime::now();
                let usable = state
                    .token
                    .take()
                    .filter(|t| t.expires_in(now) > Duration::ZERO);
                match usable {
                    Some(old) if e.is_retryable() => {
                        *state = Cached {
                            token: Some(old.clone()),
                            retry_at: Some(now + REFRESH_RETRY_PAUSE),
                        };
                        Ok(old)
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// Drops the cached token, e.g. after AEM answered 401 with it.
    pub fn invalidate(&self) {
        *self.lock() = Cached::default();
    }

    /// The credentials this provider uses.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        // The state is replaced whole, so a panic elsewhere cannot leave it
        // half-written.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

type BoxError = Box<dyn StdError + Send + Sync>;

/// What IMS said when it refused or could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImsError {
    /// HTTP status.
    pub status: u16,
    /// IMS's `error` code, e.g. `invalid_client`.
    pub code: Option<String>,
    /// IMS's `error_description`.
    pub description: Option<String>,
    /// The `x-debug-id` header, which Adobe support asks for.
    pub debug_id: Option<String>,
    /// The wait IMS asked for in `Retry-After`.
    pub retry_after: Option<Duration>,
    /// A short excerpt of a body that was not IMS's error JSON.
    pub excerpt: Option<String>,
}

impl ImsError {
    fn hint(&self) -> &'static str {
        match (self.status, self.code.as_deref()) {
            (_, Some("invalid_client")) => "; check the client id and secret",
            (_, Some("invalid_token")) => {
                "; check the private key, the certificate bound to it and the clock"
            }
            (_, Some("invalid_signature")) => "; check the private key",
            (_, Some("invalid_scope")) => "; check the metascopes or scopes",
            (429, _) => "; too many requests, try again later",
            (500..=599, _) => "; IMS is unavailable, try again later",
            _ => "",
        }
    }
}

impl fmt::Display for ImsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(text) = self.description.as_ref().or(self.excerpt.as_ref()) {
            write!(f, ": {text}")?;
        }
        if let Some(id) = &self.debug_id {
            write!(f, ", x-debug-id {id}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong. `Display` says what to check; no variant
/// ever holds a client secret, private key, signed JWT or access token.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read. Fix the path or permissions.
    Io {
        /// What was being read.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The credentials, endpoint or settings are wrong (a proxy that
    /// refuses its user and password, 407, is one). Fix the configuration.
    Config {
        /// What to fix.
        message: String,
        /// The underlying error, if any.
        source: Option<BoxError>,
    },
    /// The private key cannot be used. Fix the key.
    Key {
        /// What to fix.
        message: String,
        /// The underlying error, if any.
        source: Option<BoxError>,
    },
    /// IMS refused the request (4xx other than 429). Retrying will not help.
    Rejected(Box<ImsError>),
    /// IMS is unavailable or throttling (5xx or 429). Try again later.
    Unavailable(Box<ImsError>),
    /// Network, proxy or TLS failure. Usually worth trying again later.
    Transport {
        /// What failed and where.
        message: String,
        /// The underlying error.
        source: BoxError,
    },
    /// The server's TLS certificate was refused (not trusted, expired, wrong
    /// host name). Retrying will not help; add the CA or fix the endpoint.
    Tls {
        /// What is wrong with the certificate, and where.
        message: String,
        /// The underlying error.
        source: BoxError,
    },
    /// A connect or overall timeout. Try again later.
    Timeout {
        /// Where.
        message: String,
        /// The underlying error.
        source: BoxError,
    },
    /// The reply is not what IMS sends (no token in a 200, not JSON, too
    /// large, a redirect, an odd status).
    UnexpectedReply {
        /// HTTP status (0 when the reply was cut before its status was read).
        status: u16,
        /// What is wrong.
        message: String,
        /// A short, secret-free excerpt of the body, when it is safe to show.
        excerpt: Option<String>,
    },
}

impl Error {
    fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
            source: None,
        }
    }
    fn config_from(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Config {
            message: message.into(),
            source: Some(source.into()),
        }
    }
    fn key(message: impl Into<String>) -> Self {
        Error::Key {
            message: message.into(),
            source: None,
        }
    }
    fn key_from(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Key {
            message: message.into(),
            source: Some(source.into()),
        }
    }
    fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
    fn unexpected(status: u16, message: impl Into<String>) -> Self {
        Error::UnexpectedReply {
            status,
            message: message.into(),
            excerpt: None,
        }
    }
    fn unexpected_with_excerpt(status: u16, message: &str, excerpt: String) -> Self {
        let excerpt = Some(excerpt).filter(|e| !e.is_empty());
        Error::UnexpectedReply {
            status,
            message: message.into(),
            excerpt,
        }
    }

    /// Prefixes a configuration or key message with the file it came from.
    fn in_file(self, path: &Path) -> Self {
        match self {
            Error::Config { message, source } => Error::Config {
                message: format!("{}: {message}", path.display()),
                source,
            },
            Error::Key { message, source } => Error::Key {
                message: format!("{}: {message}", path.display()),
                source,
            },
            other => other,
        }
    }

    /// Prefixes a key message with the JSON field the key came from.
    fn at_field(self, field: &str) -> Self {
        match self {
            Error::Key { message, source } => Error::Key {
                message: format!("credentials field `{field}`: {message}"),
                source,
            },
            other => other,
        }
    }

    /// `what` says how far the call got, e.g. `cannot reach IMS at`; `via`
    /// is the proxy the request went through.
    fn from_transport(url: &str, e: ureq::Error, what: &str, via: Option<&ProxyRoute>) -> Self {
        if let Some(route) = via {
            if let Some(message) = proxy_problem(&e) {
                let proxy = &route.name;
                return match message {
                    ProxyProblem::Refused => Error::Config {
                        message: format!(
                            "the proxy {proxy} refused the credentials \
                             (407 Proxy Authentication Required); check the user \
                             and password in the proxy URL"
                        ),
                        source: Some(e.into()),
                    },
                    ProxyProblem::Unreachable => Error::Transport {
                        message: format!(
                            "cannot reach the proxy {proxy} on the way to IMS at {url}"
                        ),
                        source: e.into(),
                    },
                    ProxyProblem::NoTunnel => Error::Transport {
                        message: format!("the proxy {proxy} did not open a tunnel to IMS at {url}"),
                        source: e.into(),
                    },
                };
            }
        }
        let through = via
            .map(|route| format!(" through the proxy {}", route.name))
            .unwrap_or_default();
        if is_timeout(&e) {
            return Error::Timeout {
                message: format!("IMS at {url} did not answer in time{through}"),
                source: e.into(),
            };
        }
        match tls_problem(&e) {
            Some(problem) => Error::Tls {
                message: format!("cannot reach IMS at {url}{through}: {problem}"),
                source: e.into(),
            },
            None => Error::Transport {
                message: format!("{what} {url}{through}"),
                source: e.into(),
            },
        }
    }

    /// Whether the problem is in the credentials, key, endpoint or settings
    /// (fix the configuration; trying again will not help).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Error::Io { .. } | Error::Config { .. } | Error::Key { .. }
        )
    }

    /// Whether trying again later may succeed: transport failures,
    /// timeouts, IMS 5xx and 429.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_) | Error::Transport { .. } | Error::Timeout { .. }
        )
    }

    /// The wait IMS asked for with `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Unavailable(e) | Error::Rejected(e) => e.retry_after,
            _ => None,
        }
    }
}

/// What went wrong with the proxy itself, as opposed to IMS behind it.
enum ProxyProblem {
    /// It answered the CONNECT with 407: its user or password is wrong.
    Refused,
    /// No connection to it could be opened.
    Unreachable,
    /// It answered the CONNECT with another refusal or not at all.
    NoTunnel,
}

fn proxy_problem(e: &ureq::Error) -> Option<ProxyProblem> {
    use std::io::ErrorKind as K;
    match e {
        // ureq words it `proxy server responded 407/...`.
        ureq::Error::ConnectProxyFailed(reason) if reason.contains(" 407") => {
            Some(ProxyProblem::Refused)
        }
        ureq::Error::ConnectProxyFailed(_) => Some(ProxyProblem::NoTunnel),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
            Some(ProxyProblem::Unreachable)
        }
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::HostUnreachable
                    | K::NetworkUnreachable
                    | K::AddrNotAvailable
            ) =>
        {
            Some(ProxyProblem::Unreachable)
        }
        _ => None,
    }
}

fn is_timeout(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => {
            matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            )
        }
        _ => false,
    }
}

/// A plain-words name for a certificate problem, which retrying will not fix.
fn tls_problem(e: &ureq::Error) -> Option<String> {
    use rustls::CertificateError as C;
    let what = match certificate_error(e)? {
        C::UnknownIssuer => "is not trusted (unknown issuer; add the CA with a CA file)",
        C::Expired | C::ExpiredContext { .. } => "has expired",
        C::NotValidForName | C::NotValidForNameContext { .. } => "is not valid for this host name",
        C::NotValidYet | C::NotValidYetContext { .. } => "is not valid yet (check the clock)",
        C::Revoked => "is revoked",
        C::BadSignature => "has a bad signature",
        _ => "was refused",
    };
    Some(format!("the server's TLS certificate {what}"))
}

/// The certificate error inside a ureq error. ureq hands rustls errors over
/// either directly or wrapped in an `io::Error` from the TLS stream.
fn certificate_error(e: &ureq::Error) -> Option<&rustls::CertificateError> {
    let tls = match e {
        ureq::Error::Rustls(tls) => tls,
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>()?,
        _ => return None,
    };
    match tls {
        rustls::Error::InvalidCertificate(cert) => Some(cert),
        _ => None,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, .. } => f.write_str(context),
            Error::Config { message, .. } | Error::Key { message, .. } => f.write_str(message),
            Error::Rejected(e) => write!(f, "IMS rejected the request ({e}){}", e.hint()),
            Error::Unavailable(e) => write!(f, "IMS could not serve the request ({e}){}", e.hint()),
            Error::Transport { message, .. }
            | Error::Tls { message, .. }
            | Error::Timeout { message, .. } => f.write_str(message),
            Error::UnexpectedReply {
                status,
                message,
                excerpt,
            } => {
                write!(f, "unexpected IMS reply ({status}): {message}")?;
                match excerpt {
                    Some(text) => write!(f, ": {text}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Config { source, .. } | Error::Key { source, .. } => {
                source.as_deref().map(|s| s as &(dyn StdError + 'static))
            }
            Error::Transport { source, .. }
            | Error::Tls { source, .. }
            | Error::Timeout { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn reply(status: u16, body: &str) -> RawReply {
        RawReply {
            status,
            debug_id: Some("dbg-1".into()),
            retry_after: None,
            location: None,
            body: body.as_bytes().to_vec().into(),
        }
    }

    #[test]
    fn jwt_reply_expires_in_is_milliseconds() {
        let body = r#"{"token_type":"bearer","access_token":"tok","expires_in":86399999}"#;
        let token = parse_reply(&reply(200, body), Flow::JwtExchange, at(T0), &[]).unwrap();
        assert_eq!(
            token.expires_at(),
            at(T0) + Duration::from_millis(86_399_999)
        );
        assert_eq!(token.secret(), "tok");
    }

    #[test]
    fn oauth_reply_expires_in_is_seconds() {
        let body = r#"{"access_token":"tok","token_type":"bearer","expires_in":86399}"#;
        let token = parse_reply(&reply(200, body), Flow::ClientCredentials, at(T0), &[]).unwrap();
        assert_eq!(token.expires_at(), at(T0 + 86_399));
    }

    #[test]
    fn success_without_token_or_expiry_is_unexpected() {
        for body in [
            r#"{"token_type":"bearer","expires_in":5}"#,
            r#"{"access_token":"","expires_in":5}"#,
            r#"{"access_token":"tok"}"#,
            r#"{"access_token":"tok","expires_in":-1}"#,
            "<html>",
        ] {
            let err =
                parse_reply(&reply(200, body), Flow::ClientCredentials, at(T0), &[]).unwrap_err();
            assert!(
                matches!(err, Error::UnexpectedReply { status: 200, .. }),
                "{body}"
            );
            assert!(!err.to_string().contains("tok\""), "{err}");
        }
    }

    #[test]
    fn statuses_map_to_error_kinds() {
        let ims = r#"{"error":"invalid_client","error_description":"bad"}"#;
        let rejected =
            parse_reply(&reply(401, ims), Flow::ClientCredentials, at(T0), &[]).unwrap_err();
        let Error::Rejected(e) = &rejected else {
            panic!("{rejected:?}")
        };
        assert_eq!((e.status, e.code.as_deref()), (401, Some("invalid_client")));
        assert_eq!(e.debug_id.as_deref(), Some("dbg-1"));
        assert!(!rejected.is_retryable() && !rejected.is_config());
        for status in [429, 500, 503] {
            let err =
                parse_reply(&reply(status, ims), Flow::ClientCredentials, at(T0), &[]).unwrap_err();
            assert!(
                matches!(err, Error::Unavailable(_)) && err.is_retryable(),
                "{status}"
            );
        }
        let redirect =
            parse_reply(&reply(302, ""), Flow::ClientCredentials, at(T0), &[]).unwrap_err();
        assert!(matches!(
            redirect,
            Error::UnexpectedReply { status: 302, .. }
        ));
    }

    #[test]
    fn excerpts_are_short_printable_and_scrubbed() {
        let body = format!("client_secret=s3cr3t&x=\u{7}{}", "y".repeat(1000));
        let text = excerpt(body.as_bytes(), &["s3cr3t"]);
        assert!(!text.contains("s3cr3t") && text.contains(REDACTED));
        assert!(!text.contains('\u{7}'));
        assert!(text.chars().count() <= MAX_EXCERPT_CHARS + 1);
    }

    #[test]
    fn refresh_margin_is_capped_at_half_the_lifetime() {
        let token = AccessToken::new("t", "bearer", at(T0), at(T0 + 100));
        let margin = Duration::from_secs(600);
        assert!(token.is_fresh(at(T0 + 49), margin));
        assert!(!token.is_fresh(at(T0 + 50), margin));
        let day = AccessToken::new("t", "bearer", at(T0), at(T0 + 86_400));
        assert!(day.is_fresh(at(T0 + 86_400 - 601), margin));
        assert!(!day.is_fresh(at(T0 + 86_400 - 600), margin));
    }

    #[test]
    fn dates_parse_to_epoch_seconds() {
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.000Z"), Some(at(T0)));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(parse_asn1_time("231114221320Z", true), Some(at(T0)));
        assert_eq!(parse_asn1_time("20231114221320Z", false), Some(at(T0)));
        assert_eq!(parse_rfc3339("2023-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn certificate_not_after_matches_openssl() {
        // `openssl x509 -enddate -noout -in tests/fixtures/sample-cert.pem`
        // prints notAfter=Nov 29 21:55:47 2027 GMT.
        let pem = include_str!("../tests/fixtures/sample-cert.pem");
        let expected = parse_rfc3339("2027-11-29T21:55:47Z");
        assert_eq!(certificate_not_after(pem), expected);
        assert_eq!(certificate_not_after(&pem.replace("MII", "AAA")), None);
        assert_eq!(certificate_not_after("not a certificate"), None);
    }

    #[test]
    fn der_reader_refuses_truncated_input() {
        assert_eq!(der_item(&[0x30]), None);
        assert_eq!(der_item(&[0x30, 0x05, 0x01]), None);
        assert_eq!(der_item(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(
            der_item(&[0x30, 0x01, 0xAA, 0xBB]),
            Some((&[0xAA][..], &[0xBB][..]))
        );
    }

    #[test]
    fn lists_are_split_trimmed_and_emptied() {
        let items: Vec<String> = split_list(" a, ,b,, https://x/s/c ").collect();
        assert_eq!(items, ["a", "b", "https://x/s/c"]);
    }

    #[test]
    fn tokens_outside_visible_ascii_are_unexpected_and_not_quoted() {
        for (token, kind) in [
            ("SECRET\r\nX-Injected: 1", "bearer"),
            ("SECRET\nsecond", "bearer"),
            ("SECRET with space", "bearer"),
            ("SECRET\u{7f}", "bearer"),
            ("SECRET-é", "bearer"),
            ("SECRET", "bearer\r\nX: 1"),
            ("SECRET", ""),
        ] {
            let body =
                serde_json::json!({"access_token": token, "token_type": kind, "expires_in": 60});
            let e = parse_reply(
                &reply(200, &body.to_string()),
                Flow::ClientCredentials,
                at(T0),
                &[],
            )
            .unwrap_err();
            assert!(
                matches!(e, Error::UnexpectedReply { status: 200, .. }),
                "{token:?}: {e:?}"
            );
            assert!(!e.to_string().contains("SECRET"), "{e}");
            assert!(!format!("{e:?}").contains("SECRET"), "{e:?}");
        }
        let body = r#"{"access_token":"a.b-c_d~e+f/g=","token_type":"Bearer","expires_in":60}"#;
        let ok = parse_reply(&reply(200, body), Flow::ClientCredentials, at(T0), &[]).unwrap();
        assert_eq!((ok.secret(), ok.token_type()), ("a.b-c_d~e+f/g=", "Bearer"));
    }

    /// One case per NO_PROXY form curl reads.
    #[test]
    fn no_proxy_exact_names_any_case() {
        assert!(no_proxy_matches("ims.example.com", "ims.example.com"));
        assert!(no_proxy_matches("IMS.Example.COM", "ims.example.com"));
        assert!(no_proxy_matches("ims.example.com", "IMS.EXAMPLE.com"));
        assert!(!no_proxy_matches("other.example.com", "ims.example.com"));
        assert!(!no_proxy_matches("", "ims.example.com"));
    }

    #[test]
    fn no_proxy_entries_are_split_on_commas_and_trimmed() {
        assert!(no_proxy_matches("localhost, 127.0.0.1", "127.0.0.1"));
        assert!(no_proxy_matches(" a.test ,, b.test ", "b.test"));
        assert!(no_proxy_matches("a.test\tb.test", "b.test"));
        assert!(!no_proxy_matches("a.test, b.test", "c.test"));
    }

    #[test]
    fn no_proxy_suffixes_with_dot_star_dot_or_plain() {
        for list in [
            ".example.com",
            "*.example.com",
            "example.com",
            "example.com.",
        ] {
            assert!(no_proxy_matches(list, "ims.example.com"), "{list}");
            assert!(no_proxy_matches(list, "a.b.example.com"), "{list}");
            assert!(!no_proxy_matches(list, "notexample.com"), "{list}");
            assert!(!no_proxy_matches(list, "example.com.evil.test"), "{list}");
        }
        assert!(no_proxy_matches(".example.com", "example.com"));
        assert!(no_proxy_matches("example.com", "ims.example.com."));
        assert!(!no_proxy_matches(".", "example.com"));
        assert!(!no_proxy_matches("*.", "example.com"));
    }

    #[test]
    fn no_proxy_star_is_every_host() {
        for host in ["ims.example.com", "127.0.0.1", "::1"] {
            assert!(no_proxy_matches("*", host));
            assert!(no_proxy_matches("a.test, *", host));
        }
        assert!(!no_proxy_matches("*x", "ims.example.com"));
    }

    #[test]
    fn no_proxy_ipv4_addresses_and_networks() {
        assert!(no_proxy_matches("127.0.0.1", "127.0.0.1"));
        assert!(!no_proxy_matches("127.0.0.2", "127.0.0.1"));
        assert!(no_proxy_matches("127.0.0.0/8", "127.1.2.3"));
        assert!(!no_proxy_matches("10.0.0.0/8", "127.0.0.1"));
        assert!(no_proxy_matches("0.0.0.0/0", "127.0.0.1"));
        assert!(!no_proxy_matches("127.0.0.1/33", "127.0.0.1"));
        assert!(!no_proxy_matches("127.0.0.1/x", "127.0.0.1"));
        // A name is not an address.
        assert!(!no_proxy_matches("localhost", "127.0.0.1"));
    }

    #[test]
    fn no_proxy_ipv6_with_or_without_brackets() {
        for list in ["::1", "[::1]", "0:0:0:0:0:0:0:1", "::1/128", "[::1]/128"] {
            for host in ["::1", "[::1]"] {
                assert!(no_proxy_matches(list, host), "{list} {host}");
            }
        }
        assert!(no_proxy_matches("fd00::/8", "fd12::1"));
        assert!(!no_proxy_matches("fd00::/8", "fe80::1"));
        assert!(!no_proxy_matches("::2", "::1"));
        // The families do not mix.
        assert!(!no_proxy_matches("127.0.0.1", "::1"));
        assert!(!no_proxy_matches("::ffff:127.0.0.1", "127.0.0.1"));
    }

    #[test]
    fn an_empty_no_proxy_does_not_hide_a_set_one() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let pick = |pairs| first_set(&NO_PROXY_VARS, env(pairs)).map(|(_, v)| v);
        assert_eq!(
            pick(&[("NO_PROXY", ""), ("no_proxy", "a.test")]),
            Some("a.test".into())
        );
        assert_eq!(
            pick(&[("NO_PROXY", "b.test"), ("no_proxy", " ")]),
            Some("b.test".into())
        );
        assert_eq!(
            pick(&[("NO_PROXY", "b.test"), ("no_proxy", "a.test")]),
            Some("a.test".into())
        );
        assert_eq!(pick(&[("NO_PROXY", "")]), None);
        let proxy = first_set(
            &PROXY_VARS,
            env(&[("ALL_PROXY", ""), ("https_proxy", "http://p:1")]),
        );
        assert_eq!(proxy, Some(("https_proxy", "http://p:1".to_owned())));
    }

    #[test]
    fn the_endpoint_host_for_no_proxy_has_no_port_or_brackets() {
        for (text, host) in [
            (
                "https://ims-na1.adobelogin.com:8443",
                "ims-na1.adobelogin.com",
            ),
            ("http://[::1]:8080", "::1"),
            ("http://[::1]", "::1"),
            ("http://127.0.0.1:9", "127.0.0.1"),
            ("ims-na1.adobelogin.com", "ims-na1.adobelogin.com"),
        ] {
            assert_eq!(Endpoint::parse(text).unwrap().bare_host(), host, "{text}");
        }
    }

    #[test]
    fn read_capped_file_refuses_large_and_special_files() {
        let dir = std::env::temp_dir().join(format!("ims-token-lib-capped-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ten");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(&read_capped_file(&file, 10).unwrap()[..], b"0123456789");
        let e = read_capped_file(&file, 9).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        let e = read_capped_file(&dir, 10).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let e = read_capped_file(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(e.to_string().contains("a device"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn retry_waits_grow_and_are_capped() {
        let client = Client::builder()
            .proxy(None)
            .max_retry_wait(Duration::from_secs(1))
            .build()
            .unwrap();
        let transport =
            parse_reply(&reply(500, ""), Flow::ClientCredentials, at(T0), &[]).unwrap_err();
        assert_eq!(
            client.wait_before_retry(0, &transport),
            Duration::from_millis(250)
        );
        assert_eq!(
            client.wait_before_retry(1, &transport),
            Duration::from_millis(500)
        );
        assert_eq!(
            client.wait_before_retry(5, &transport),
            Duration::from_secs(1)
        );
        let mut asked = reply(429, "");
        asked.retry_after = Some(Duration::from_secs(30));
        let throttled = parse_reply(&asked, Flow::ClientCredentials, at(T0), &[]).unwrap_err();
        assert_eq!(
            client.wait_before_retry(0, &throttled),
            Duration::from_secs(1)
        );
    }
}
