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
//! # Contents
//! - [A long-running program: `TokenProvider`](#a-long-running-program-tokenprovider)
//! - [Calling an Adobe API](#calling-an-adobe-api)
//! - [Credentials](#credentials)
//! - [Errors](#errors)
//! - [Logging](#logging)
//! - [Keeping the token elsewhere: the refresh rule](#keeping-the-token-elsewhere-the-refresh-rule)
//! - [Beyond getting a token](#beyond-getting-a-token)
//! - [Features](#features)
//!
//! Signing ([`sign_jwt`]), building the form and parsing IMS's reply
//! ([`parse_token_reply`]) are plain functions that never touch the network
//! or read the clock; the [`Client`] does the I/O around them, with a
//! timeout, no redirects, capped replies and bounded retries.
//!
//! # A long-running program: `TokenProvider`
//!
//! Build one [`Client`] and share one [`TokenProvider`] (`Send + Sync`)
//! between the request threads:
//!
//! ```no_run
//! # fn main() -> Result<(), ims_token::Error> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use ims_token::{Client, Credentials, TokenProvider};
//!
//! let client = Client::builder()
//!     .timeout(Duration::from_secs(10))
//!     .ca_file("/etc/ssl/corporate-ca.pem") // added to the built-in roots
//!     .build()?;
//! let credentials = Credentials::from_file("service-credentials.json")?;
//! let provider = Arc::new(TokenProvider::new(client, credentials));
//! let token = provider.token()?;
//! // The API answered 401 to it? Drop it, unless another thread already
//! // has: the next call exchanges again, once for all the threads.
//! let dropped = provider.invalidate(&token);
//! # let _ = dropped;
//! # Ok(())
//! # }
//! ```
//!
//! The waiting rules:
//! - **No caller waits while a valid token exists.** Once the token is
//!   within the refresh margin of expiry (10 minutes, never more than half
//!   the token's lifetime, at a random point between the margin and half of
//!   it), the caller that notices starts the refresh on a `std` thread of its
//!   own and, like every other caller, gets the cached token at once.
//! - **Only without an unexpired token do callers wait**, and then all for
//!   the same single exchange. If it fails, each of them gets its error
//!   ([`Error`] is `Clone`); no one starts a retry cycle of its own.
//! - **A failed refresh keeps a working token.** When a refresh fails other
//!   than by IMS's refusal (network, timeout, IMS 5xx or 429, TLS, a proxy,
//!   an odd reply) and the token has not expired, the provider keeps handing
//!   it out, logs a warning, and asks IMS again after
//!   [`REFRESH_RETRY_PAUSE`]. IMS's refusal ([`Error::Rejected`]) drops it.
//! - **One exchange per 401 storm, and a brake.** [`TokenProvider::invalidate`]
//!   drops the cached token only if it is the one given, and says whether it
//!   did. A token that replaced an invalidated one is not dropped again until
//!   it is [`DEFAULT_INVALIDATE_COOLDOWN`] old (see
//!   [Calling an Adobe API](#calling-an-adobe-api)).
//! - **A wrong clock is survived.** The client learns the offset between
//!   this host's clock and IMS's from IMS's `Date` header; a JWT that IMS
//!   refuses as `invalid_token` while the clock is off is signed again on
//!   IMS's time, once ([`Client::clock_offset`]).
//! - Dropping the provider never waits for a refresh: its thread ends after
//!   its one exchange.
//!
//! # Calling an Adobe API
//!
//! Let the provider send the request: it adds the three headers Adobe APIs
//! want (`Authorization: Bearer …`, `x-api-key`, `x-gw-ims-org-id`) and,
//! after a 401, sends the same request once more with a new token.
//!
//! ```no_run
//! # fn main() -> Result<(), ims_token::Error> {
//! use ims_token::{Client, Credentials, TokenProvider};
//! let provider = TokenProvider::new(Client::new()?, Credentials::from_file("creds.json")?);
//! let response = provider
//!     .request("GET", "https://author-p12345-e67890.adobeaemcloud.com/content/dam.json")
//!     .send()?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```
//!
//! - [`ApiRequest::send`] takes any method (`GET`, `POST`, `PUT`, `DELETE`,
//!   `PATCH`, ...), the caller's own headers (never overwritten) and a body
//!   as bytes, so that the very same bytes can be sent again. ureq's
//!   middleware cannot resend (its request body is one-shot), hence this
//!   shape. Redirects are not followed: they would carry the token and the
//!   body wherever the `Location` points.
//! - For another HTTP client, [`TokenProvider::headers`] gives the headers
//!   ([`ApiHeaders`]), and [`TokenProvider::invalidate`] drops a token an
//!   API refused.
//! - The brake: an API that refuses every token (a product profile not
//!   assigned, a wrong `x-api-key`, an org without the entitlement) would
//!   otherwise cost one IMS exchange per request, and IMS throttles clients
//!   that make too many tokens. A token that replaced an invalidated one is
//!   not dropped again until it is 60 s old (one warning is logged, saying
//!   what to check), so such an API costs at most one forced exchange a
//!   minute. Change the cooldown with
//!   [`TokenProvider::with_invalidate_cooldown`] (zero turns the brake off).
//!
//! # Credentials
//!
//! [`Credentials`] reads every kind Adobe hands out, told apart by their
//! fields, from a file, a reader or a string ([`Credentials::from_file`],
//! [`Credentials::from_reader`], [`Credentials::from_json`]) or from the
//! `IMS_*` environment variables ([`Credentials::from_env`]):
//! - AEM as a Cloud Service "service credentials" (a JWT service account,
//!   [`ServiceAccount`]): still exchanged through the JWT flow;
//! - OAuth Server-to-Server, from the AEM Developer Console or an Adobe
//!   Developer Console project ([`OAuthCredentials`], [`ConsoleProject`];
//!   Adobe ended the Developer Console's JWT credentials in 2025);
//! - an AEM local development token ([`LocalToken`]), used as it is.
//!
//! The builders ([`ServiceAccount::builder`], [`OAuthCredentials::builder`])
//! take every value directly, without a file. [`Credentials::client_id`] and
//! [`Credentials::org_id`] give the ids Adobe APIs want in headers. The
//! private key is parsed once, when the credentials are built (PKCS#8 or
//! PKCS#1 PEM); the client secret, the key and the token are newtypes whose
//! `Debug` shows `[redacted]`, wiped on drop.
//!
//! # Errors
//!
//! One [`Error`] enum, `#[non_exhaustive]`, `Clone`, `Send + Sync`. Its
//! message says what to check, and no variant holds a secret, key, signed JWT
//! or token. For a decision, ask it rather than matching every variant:
//!
//! ```no_run
//! # fn main() {
//! # let credentials = ims_token::Credentials::from_file("creds.json").unwrap();
//! match ims_token::fetch_token(&credentials) {
//!     Ok(token) => println!("expires at {}", ims_token::rfc3339(token.expires_at())),
//!     // Fix the configuration: credentials, key, endpoint, CA file, proxy.
//!     Err(e) if e.is_config() => eprintln!("fix the configuration: {e}"),
//!     // Network, timeout, IMS 5xx or 429: worth trying again later.
//!     Err(e) if e.is_retryable() => eprintln!("try again in {:?}: {e}", e.retry_after()),
//!     // IMS refused the request (4xx): its code, description and x-debug-id.
//!     Err(ims_token::Error::Rejected(ims)) => eprintln!("IMS said {:?}", ims.code),
//!     Err(e) => eprintln!("{e}"),
//! }
//! # }
//! ```
//!
//! # Logging
//!
//! Through the [`log`](https://docs.rs/log) facade: a refresh that failed
//! and fell back to the cached token (warn), a clock offset over 30 s (warn),
//! a braked invalidation (warn), a retry (debug), each successful exchange
//! with its flow, endpoint and token lifetime (debug). No secret, JWT, token
//! or form body is ever in a line the crate logs. ureq, below it, logs the
//! raw bytes on the wire at trace level (targets `ureq` and `ureq_proto`),
//! which hold the client secret and the token: keep those targets at debug
//! or below, e.g. `RUST_LOG=debug,ureq=debug,ureq_proto=debug` with
//! env_logger. Depending on this crate, with its default features, leaves
//! every log level of the application its own.
//!
//! # Keeping the token elsewhere: the refresh rule
//!
//! The rule the provider, the command's `--cache` and its `sink` follow is
//! public and pure, for code that keeps its token in a file or a database:
//! [`RefreshRule::step`] (use the token, refresh, or wait),
//! [`RefreshRule::record`] (the new token; the old one kept after a failure
//! other than IMS's refusal; or the error) and [`RefreshRule::invalidate`]
//! (the brake), over a plain [`Held`] state. [`fallback_warning`] and
//! [`brake_warning`] word the warnings; [`Client::max_fetch_time`] tells the
//! longest one fetch can take with its retries.
//!
//! # Beyond getting a token
//!
//! [`decode_token`] reads what a token says of itself (client, user,
//! scopes, region, expiry) with no network; [`Client::validate_token`] asks
//! IMS whether it still accepts one and [`Client::revoke_token`] ends one.
//! OAuth Server-to-Server credentials can ask for an `org_id` and
//! `resource`s ([`OAuthCredentials::with_requested_org_id`],
//! [`OAuthCredentials::with_resource`]), and carry a second client secret
//! while one is rotated ([`OAuthCredentialsBuilder::second_client_secret`]).
//!
//! # Features
//!
//! - `cli` (default): the `ims-token` command; the library needs none of it
//!   (`default-features = false` for a library).
//! - `encrypted-key`: passphrase-protected PKCS#8 keys
//!   ([`PrivateKey::from_encrypted_pem`], with rsa's `pkcs5`).
//! - `small`: caps logging at warn in release builds, for a size-conscious
//!   static build of the command (it caps the whole build).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The README's examples are compiled and run as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use api::{ApiHeaders, ApiResponse, DEFAULT_MAX_RESPONSE_BYTES};
pub use client::{
    fetch_token, Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_RETRIES, DEFAULT_TIMEOUT, MAX_REPLY_BYTES, MAX_TIMEOUT, USER_AGENT,
};
pub use credentials::{
    ConsoleProject, Credentials, LocalToken, OAuthCredentials, OAuthCredentialsBuilder,
    ServiceAccount, ServiceAccountBuilder, MAX_CREDENTIALS_BYTES,
};
pub use endpoint::Endpoint;
pub use error::{Error, ErrorSource, ImsError};
pub use exchange::{
    parse_token_reply, sign_jwt, Flow, TokenValidity, DEFAULT_JWT_LIFETIME, MAX_JWT_LIFETIME,
};
pub use files::special_file_kind;
pub use introspect::{decode_token, TokenClaims};
pub use key::{PrivateKey, MIN_KEY_BITS};
pub use provider::{ApiRequest, TokenProvider, DEFAULT_REFRESH_MARGIN};
pub use refresh::{
    brake_warning, fallback_warning, Held, Invalidation, Outcome, RefreshRule, Step,
    DEFAULT_INVALIDATE_COOLDOWN, REFRESH_RETRY_MAX_PAUSE, REFRESH_RETRY_PAUSE,
};
pub use secret::{ClientSecret, SignedJwt};
pub use text::{is_visible_ascii, printable_line, rfc3339};
pub use token::AccessToken;

// ---------------------------------------------------------------------------
// Secrets: newtypes that never show their value.
mod secret {
    use std::fmt;

    use zeroize::Zeroize as _;

    pub(crate) const REDACTED: &str = "[redacted]";

    /// A string that is wiped on drop and never shown by `Debug`.
    #[derive(Clone, PartialEq, Eq)]
    pub(crate) struct Secret(pub(crate) String);

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
    ///
    /// No `PartialEq`: comparing secrets with `==` is not constant-time.
    ///
    /// ```compile_fail,E0369
    /// fn same(a: &ims_token::ClientSecret, b: &ims_token::ClientSecret) -> bool {
    ///     a == b
    /// }
    /// ```
    #[derive(Clone, Debug)]
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
    ///
    /// No `PartialEq`, for the same reason as [`ClientSecret`].
    ///
    /// ```compile_fail,E0369
    /// fn same(a: &ims_token::SignedJwt, b: &ims_token::SignedJwt) -> bool {
    ///     a == b
    /// }
    /// ```
    #[derive(Clone, Debug)]
    pub struct SignedJwt(pub(crate) Secret);

    impl SignedJwt {
        /// The compact JWT. Keep it out of logs and error messages.
        pub fn secret(&self) -> &str {
            &self.0 .0
        }
    }
}

// ---------------------------------------------------------------------------
// The one error type, and what IMS said.
mod error {
    use std::error::Error as StdError;
    use std::fmt;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    /// The cause inside an [`Error`]: shared, so that an error can be cloned
    /// and handed to every caller that waited for the same refresh.
    pub type ErrorSource = Arc<dyn StdError + Send + Sync>;

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
    ///
    /// `Clone`, so that the callers of a [`TokenProvider`](crate::TokenProvider) that waited for the
    /// same failed refresh each get that refresh's error.
    #[derive(Debug, Clone)]
    #[non_exhaustive]
    pub enum Error {
        /// A file could not be read. Fix the path or permissions.
        #[non_exhaustive]
        Io {
            /// What was being read.
            context: String,
            /// The OS error.
            source: Arc<std::io::Error>,
        },
        /// The credentials, endpoint or settings are wrong (a proxy that
        /// refuses its user and password, 407, is one). Fix the configuration.
        #[non_exhaustive]
        Config {
            /// What to fix.
            message: String,
            /// The underlying error, if any.
            source: Option<ErrorSource>,
        },
        /// The private key cannot be used. Fix the key.
        #[non_exhaustive]
        Key {
            /// What to fix.
            message: String,
            /// The underlying error, if any.
            source: Option<ErrorSource>,
        },
        /// IMS refused the request (4xx other than 429). Retrying will not help.
        Rejected(Box<ImsError>),
        /// IMS is unavailable or throttling (5xx or 429). Try again later.
        Unavailable(Box<ImsError>),
        /// Network failure: a connection refused, reset or cut, a proxy that
        /// cannot be reached, a TLS handshake that failed other than on the
        /// certificate. Usually worth trying again later.
        #[non_exhaustive]
        Transport {
            /// What failed and where.
            message: String,
            /// The underlying error.
            source: ErrorSource,
        },
        /// The server's TLS certificate was refused (not trusted, expired, wrong
        /// host name). Retrying will not help; add the CA or fix the endpoint.
        #[non_exhaustive]
        Tls {
            /// What is wrong with the certificate, and where.
            message: String,
            /// The underlying error.
            source: ErrorSource,
        },
        /// A connect or overall timeout. Try again later.
        #[non_exhaustive]
        Timeout {
            /// Where.
            message: String,
            /// The underlying error.
            source: ErrorSource,
        },
        /// The reply of an Adobe API to [`ApiRequest::send`](crate::ApiRequest::send)
        /// could not be read whole: its headers or body are larger than the
        /// limits. The request may have had its effect.
        #[non_exhaustive]
        ApiReply {
            /// HTTP status; `None` when none was read (the headers were too large).
            status: Option<u16>,
            /// What is wrong, and where (the URL without its query).
            message: String,
        },
        /// The reply is not what IMS sends (no token in a 200, not JSON, too
        /// large, a redirect, an odd status).
        #[non_exhaustive]
        UnexpectedReply {
            /// HTTP status; `None` when there was none to read (e.g. the
            /// reply's headers were too large).
            status: Option<u16>,
            /// What is wrong.
            message: String,
            /// A short, secret-free excerpt of the body, when it is safe to show.
            excerpt: Option<String>,
        },
    }

    impl Error {
        pub(crate) fn config(message: impl Into<String>) -> Self {
            Error::Config {
                message: message.into(),
                source: None,
            }
        }
        pub(crate) fn config_from(
            message: impl Into<String>,
            source: impl StdError + Send + Sync + 'static,
        ) -> Self {
            Error::Config {
                message: message.into(),
                source: Some(Arc::new(source)),
            }
        }
        pub(crate) fn key(message: impl Into<String>) -> Self {
            Error::Key {
                message: message.into(),
                source: None,
            }
        }
        pub(crate) fn key_from(
            message: impl Into<String>,
            source: impl StdError + Send + Sync + 'static,
        ) -> Self {
            Error::Key {
                message: message.into(),
                source: Some(Arc::new(source)),
            }
        }
        pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
            Error::Io {
                context: context.into(),
                source: Arc::new(source),
            }
        }
        pub(crate) fn unexpected(status: Option<u16>, message: impl Into<String>) -> Self {
            Error::UnexpectedReply {
                status,
                message: message.into(),
                excerpt: None,
            }
        }
        pub(crate) fn unexpected_with_excerpt(status: u16, message: &str, excerpt: String) -> Self {
            let excerpt = Some(excerpt).filter(|e| !e.is_empty());
            Error::UnexpectedReply {
                status: Some(status),
                message: message.into(),
                excerpt,
            }
        }

        /// Replaces a key error's message, keeping its cause.
        pub(crate) fn with_message(self, message: &str) -> Self {
            match self {
                Error::Key {
                    source: Some(source),
                    ..
                } => Error::key_from(message, source),
                other => other,
            }
        }

        /// Prefixes a configuration or key message with the file it came
        /// from, quoted and escaped (a name can hold any byte but `/`).
        pub(crate) fn in_file(self, path: &Path) -> Self {
            self.prefixed(format_args!("{path:?}"))
        }

        /// Prefixes a configuration or key message with where it came from.
        pub(crate) fn prefixed(self, prefix: impl fmt::Display) -> Self {
            match self {
                Error::Config { message, source } => Error::Config {
                    message: format!("{prefix}: {message}"),
                    source,
                },
                Error::Key { message, source } => Error::Key {
                    message: format!("{prefix}: {message}"),
                    source,
                },
                other => other,
            }
        }

        /// Prefixes a key message with the JSON field the key came from.
        pub(crate) fn at_field(self, field: &str) -> Self {
            match self {
                Error::Key { message, source } => Error::Key {
                    message: format!("credentials field `{field}`: {message}"),
                    source,
                },
                other => other,
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

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Error::Io { context, .. } => f.write_str(context),
                Error::Config { message, .. } | Error::Key { message, .. } => f.write_str(message),
                Error::Rejected(e) => write!(f, "IMS rejected the request ({e}){}", e.hint()),
                Error::Unavailable(e) => {
                    write!(f, "IMS could not serve the request ({e}){}", e.hint())
                }
                Error::Transport { message, .. }
                | Error::Tls { message, .. }
                | Error::Timeout { message, .. }
                | Error::ApiReply { message, .. } => f.write_str(message),
                Error::UnexpectedReply {
                    status,
                    message,
                    excerpt,
                } => {
                    match status {
                        Some(status) => write!(f, "unexpected IMS reply ({status}): {message}")?,
                        None => write!(f, "unexpected IMS reply: {message}")?,
                    }
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
                Error::Io { source, .. } => Some(source.as_ref()),
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
}

// ---------------------------------------------------------------------------
// Text and dates: small pure helpers for wording and parsing times.
mod text {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// `95 seconds`, `12 minutes`, `30 hours`, `3 days`.
    pub(crate) fn rough_duration(d: Duration) -> String {
        let secs = d.as_secs();
        match secs {
            0..120 => format!("{secs} seconds"),
            120..7_200 => format!("{} minutes", secs / 60),
            7_200..172_800 => format!("{} hours", secs / 3600),
            _ => format!("{} days", secs / 86_400),
        }
    }

    /// `1 MiB`, `64 KiB` or `100 bytes`.
    pub(crate) fn byte_size(n: u64) -> String {
        match n {
            _ if n >= 1 << 20 && n.is_multiple_of(1 << 20) => format!("{} MiB", n >> 20),
            _ if n >= 1 << 10 && n.is_multiple_of(1 << 10) => format!("{} KiB", n >> 10),
            _ => format!("{n} bytes"),
        }
    }

    /// UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`.
    pub(crate) fn parse_asn1_time(text: &str, two_digit_year: bool) -> Option<SystemTime> {
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
    pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
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

    /// A time in UTC to the second, as RFC 3339 writes it:
    /// `2027-05-21T14:16:46Z`. A time before 1970 is written as
    /// `1970-01-01T00:00:00Z`.
    pub fn rfc3339(time: SystemTime) -> String {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    /// The date of a day counted from 1970-01-01, the inverse of
    /// `civil_to_time` (Howard Hinnant's `civil_from_days`).
    fn civil_from_days(days: i64) -> (i64, i64, i64) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(month <= 2), month, day)
    }

    /// Splits a comma-separated list, trims entries and drops empty ones.
    pub(crate) fn split_list(list: &str) -> impl Iterator<Item = String> + '_ {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// Makes untrusted text one printable line, safe to show on a terminal:
    /// control characters (C0, DEL and C1: escape sequences, carriage
    /// returns, line feeds) and the Unicode line and paragraph separators
    /// become spaces, and bidirectional controls, which reorder what a
    /// terminal shows, are dropped. The errors of this crate quote untrusted
    /// text through it, and `ims-token inspect` prints credential fields
    /// through it.
    ///
    /// ```
    /// let shown = ims_token::printable_line("name\u{1b}]52;c;eA==\u{7}\nkind: x\u{202e}");
    /// assert_eq!(shown, "name ]52;c;eA==  kind: x");
    /// ```
    pub fn printable_line(text: &str) -> String {
        text.chars()
            .filter(|&c| !is_bidi_control(c))
            .map(|c| if breaks_a_line(c) { ' ' } else { c })
            .collect()
    }

    /// A control character (C0, DEL, C1) or a Unicode line or paragraph
    /// separator: what may end a line or start an escape on a terminal.
    fn breaks_a_line(c: char) -> bool {
        c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
    }

    /// Whether `c` must not reach a terminal as it is: a control, a line or
    /// paragraph separator, or a bidi control ([`printable_line`]'s rule).
    pub(crate) fn is_unsafe_on_terminal(c: char) -> bool {
        breaks_a_line(c) || is_bidi_control(c)
    }

    /// The embeddings, overrides and isolates (U+202A to U+202E, U+2066 to
    /// U+2069) and the bidi marks (U+200E, U+200F, U+061C).
    fn is_bidi_control(c: char) -> bool {
        matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        )
    }

    /// JSON string escapes undone (`\/`, `\"`, `\u0041`, ...), wherever they
    /// are; anything that is not an escape stays as it is.
    pub(crate) fn json_unescaped(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('\\') {
            out.push_str(&rest[..at]);
            let escape = &rest[at..];
            let (decoded, used) = json_escape(escape).unwrap_or(('\\', 1));
            out.push(decoded);
            rest = &escape[used..];
        }
        out.push_str(rest);
        out
    }

    /// The character a JSON escape at the start of `text` stands for, and
    /// its length in bytes.
    fn json_escape(text: &str) -> Option<(char, usize)> {
        let simple = match text.as_bytes().get(1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return unicode_escape(text),
            _ => return None,
        };
        Some((simple, 2))
    }

    /// `\uXXXX`, or a surrogate pair of two; a lone surrogate is U+FFFD.
    fn unicode_escape(text: &str) -> Option<(char, usize)> {
        let unit = |at: usize| -> Option<u32> {
            let hex = text.get(at..at + 4)?;
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u32::from_str_radix(hex, 16).ok())?
        };
        let high = unit(2)?;
        if (0xD800..0xDC00).contains(&high) {
            if let Some(low) = text
                .get(6..8)
                .filter(|s| *s == "\\u")
                .and_then(|_| unit(8))
                .filter(|l| (0xDC00..0xE000).contains(l))
            {
                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                return Some((char::from_u32(code).unwrap_or('\u{fffd}'), 12));
            }
        }
        Some((char::from_u32(high).unwrap_or('\u{fffd}'), 6))
    }

    /// `%XX` sequences (either case) decoded; invalid UTF-8 that results is
    /// replaced. `+` stays: form encoding's space is matched as encoded.
    pub(crate) fn percent_decoded(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.filter(|h| b == b'%' && h.bytes().all(|c| c.is_ascii_hexdigit())) {
                Some(h) => {
                    out.push(u8::from_str_radix(h, 16).unwrap_or(b'%'));
                    i += 3;
                }
                None => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Non-empty and only `!` to `~`: safe in a header, a line or an argument.
    pub fn is_visible_ascii(text: &str) -> bool {
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic())
    }

    pub(crate) fn shift(t: SystemTime, secs: i64) -> SystemTime {
        let by = Duration::from_secs(secs.unsigned_abs());
        let shifted = if secs >= 0 {
            t.checked_add(by)
        } else {
            t.checked_sub(by)
        };
        shifted.unwrap_or(t)
    }

    /// `to - from` in whole seconds, negative when `to` is earlier.
    pub(crate) fn seconds_between(from: SystemTime, to: SystemTime) -> i64 {
        match to.duration_since(from) {
            Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
            Err(behind) => i64::try_from(behind.duration().as_secs()).map_or(i64::MIN + 1, |s| -s),
        }
    }

    /// An HTTP date in the IMF-fixdate form every current server sends
    /// (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 section 5.6.7).
    pub(crate) fn parse_http_date(text: &str) -> Option<SystemTime> {
        let mut parts = text.split_ascii_whitespace();
        let (_weekday, day, month, year, time, zone) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if zone != "GMT" || parts.next().is_some() || day.len() != 2 || year.len() != 4 {
            return None;
        }
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = MONTHS.iter().position(|m| *m == month)?;
        let mut hms = time.split(':');
        let mut field = || two_digits(hms.next()?);
        let (hh, mm, ss) = (field()?, field()?, field()?);
        let month = i64::try_from(month).ok()? + 1;
        let year = year.chars().all(|c| c.is_ascii_digit()).then_some(year)?;
        civil_to_time(year.parse().ok()?, month, two_digits(day)?, hh, mm, ss)
    }

    /// Exactly two ASCII digits.
    fn two_digits(text: &str) -> Option<i64> {
        let digits = text.len() == 2 && text.chars().all(|c| c.is_ascii_digit());
        digits.then(|| text.parse().ok())?
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::test_support::*;

        #[test]
        fn http_dates_parse_in_imf_fixdate_only() {
            assert_eq!(
                parse_http_date("Tue, 14 Nov 2023 22:13:20 GMT"),
                Some(at(T0))
            );
            for bad in [
                "",
                "Tue, 14 Nov 2023 22:13:20",
                "Tue, 14 Nov 2023 22:13:20 UTC",
                "Tue, 14 Foo 2023 22:13:20 GMT",
                "Tue, 4 Nov 2023 22:13:20 GMT",
                "Tuesday, 14-Nov-23 22:13:20 GMT",
                "Tue, 14 Nov 2023 22:13 GMT",
                "Tue, 14 Nov 2023 25:13:20 GMT",
                "Tue, 14 Nov 2023 22:13:20 GMT extra",
                "Tue, 14 Nov 2023 +1:+1:+1 GMT",
                "Tue, 14 Nov 2023 -1:13:20 GMT",
                "Tue, +4 Nov 2023 22:13:20 GMT",
                "Tue, 14 Nov +023 22:13:20 GMT",
            ] {
                assert_eq!(parse_http_date(bad), None, "{bad:?}");
            }
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
        fn rfc3339_formats_known_instants_and_round_trips() {
            assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
            assert_eq!(rfc3339(at(T0)), "2023-11-14T22:13:20Z");
            let leap = at(951_782_400);
            assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
            assert_eq!(
                rfc3339(UNIX_EPOCH - Duration::from_secs(5)),
                "1970-01-01T00:00:00Z"
            );
            for secs in [
                0,
                59,
                86_399,
                951_782_399,
                T0,
                4_102_444_800,
                253_402_300_799,
            ] {
                assert_eq!(parse_rfc3339(&rfc3339(at(secs))), Some(at(secs)), "{secs}");
            }
        }

        #[test]
        fn lists_are_split_trimmed_and_emptied() {
            let items: Vec<String> = split_list(" a, ,b,, https://x/s/c ").collect();
            assert_eq!(items, ["a", "b", "https://x/s/c"]);
        }

        #[test]
        fn printable_lines_hold_no_escape_break_or_bidi_control() {
            let hostile = "a\u{1b}[2Jb\u{9b}31mc\rd\ne\u{7f}f\u{85}g\u{2028}h\u{2029}i\
                           \u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\u{2066}\u{2067}\u{2068}\u{2069}\
                           \u{200e}\u{200f}\u{61c}j";
            assert_eq!(printable_line(hostile), "a [2Jb 31mc d e f g h ij");
            assert_eq!(printable_line("plain é ✓"), "plain é ✓");
        }

        #[test]
        fn json_escapes_and_percent_encodings_are_undone() {
            assert_eq!(
                json_unescaped(r#"p8e-Ab\/Cd\u0041\"\\x\q"#),
                r#"p8e-Ab/CdA"\x\q"#
            );
            assert_eq!(
                json_unescaped(r"\ud83d\ude00 \ud83d \u00"),
                "\u{1f600} \u{fffd} \\u00"
            );
            assert_eq!(json_unescaped("trailing \\"), "trailing \\");
            assert_eq!(percent_decoded("a%2Fb%2fc%20d+e%zz%4"), "a/b/c d+e%zz%4");
            assert_eq!(percent_decoded("%C3%A9%FF"), "é\u{fffd}");
        }

        #[test]
        fn rough_durations_pick_a_readable_unit() {
            let d = Duration::from_secs;
            assert_eq!(rough_duration(d(5)), "5 seconds");
            assert_eq!(rough_duration(d(600)), "10 minutes");
            assert_eq!(rough_duration(d(86_400)), "24 hours");
            assert_eq!(rough_duration(d(3 * 86_400)), "3 days");
        }
    }
}

// ---------------------------------------------------------------------------
// Reading files and streams with a cap.
mod files {
    use std::io::Read;
    use std::path::Path;

    use crate::text::byte_size;

    /// Reads a regular file of at most `cap` bytes. It is opened
    /// non-blocking, so a FIFO cannot hang the open, and checked on the opened
    /// file (fstat), so what is read is what was checked: a FIFO, device,
    /// socket or directory is refused.
    pub(crate) fn read_capped_file(
        path: &Path,
        cap: u64,
    ) -> std::io::Result<zeroize::Zeroizing<Vec<u8>>> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.custom_flags(libc::O_NONBLOCK);
        }
        let file = options.open(path)?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "not a regular file ({})",
                    special_file_kind(&metadata.file_type()).unwrap_or("a special file")
                ),
            ));
        }
        let expected = usize::try_from(metadata.len().min(cap)).unwrap_or(0);
        read_capped(file, cap, expected)
    }

    /// Reads at most `cap` bytes, and fails if there are more. `expected`
    /// sizes the buffer up front, so that growing it leaves no unwiped copies.
    pub(crate) fn read_capped(
        reader: impl Read,
        cap: u64,
        expected: usize,
    ) -> std::io::Result<zeroize::Zeroizing<Vec<u8>>> {
        let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(expected.saturating_add(1)));
        reader.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > cap {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("too large: more than {}", byte_size(cap)),
            ));
        }
        Ok(bytes)
    }

    /// `bytes` without a leading UTF-8 byte order mark, which Windows
    /// PowerShell 5 writes (`Set-Content -Encoding UTF8`) and JSON and PEM
    /// readers refuse.
    pub(crate) fn without_bom(bytes: &[u8]) -> &[u8] {
        bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
    }

    /// What a file that is not a regular file is, in words (`a directory`,
    /// `a FIFO`, `a device`, `a socket`, `a special file`); `None` for a
    /// regular file. One wording for the crate's messages and the command's.
    pub fn special_file_kind(kind: &std::fs::FileType) -> Option<&'static str> {
        if kind.is_file() {
            return None;
        }
        if kind.is_dir() {
            return Some("a directory");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt as _;
            if kind.is_fifo() {
                return Some("a FIFO");
            }
            if kind.is_char_device() || kind.is_block_device() {
                return Some("a device");
            }
            if kind.is_socket() {
                return Some("a socket");
            }
        }
        Some("a special file")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn read_capped_file_refuses_large_and_special_files() {
            let dir =
                std::env::temp_dir().join(format!("ims-token-lib-capped-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join("ten");
            std::fs::write(&file, b"0123456789").unwrap();
            assert_eq!(&read_capped_file(&file, 10).unwrap()[..], b"0123456789");
            let e = read_capped_file(&file, 9).unwrap_err();
            assert!(e.to_string().contains("too large"), "{e}");
            let e = read_capped_file(&dir, 10).unwrap_err();
            assert!(e.to_string().contains("a directory"), "{e}");
            let e = read_capped_file(Path::new("/dev/zero"), 1024).unwrap_err();
            assert!(e.to_string().contains("a device"), "{e}");
            let _ = std::fs::remove_dir_all(&dir);
        }

        #[test]
        fn a_leading_bom_is_skipped_and_only_that() {
            assert_eq!(without_bom(b"\xEF\xBB\xBF{}"), b"{}");
            assert_eq!(without_bom(b"{}"), b"{}");
            assert_eq!(without_bom(b"\xEF\xBB"), b"\xEF\xBB");
            assert_eq!(without_bom(b"{\xEF\xBB\xBF}"), b"{\xEF\xBB\xBF}");
        }

        #[test]
        fn capped_reads_stop_at_the_cap() {
            assert_eq!(&*read_capped(&b"12345"[..], 5, 0).unwrap(), b"12345");
            let e = read_capped(&b"123456"[..], 5, 0).unwrap_err();
            assert_eq!(e.to_string(), "too large: more than 5 bytes");
            assert_eq!(byte_size(1 << 20), "1 MiB");
            assert_eq!(byte_size(64 << 10), "64 KiB");
            assert_eq!(byte_size(1000), "1000 bytes");
        }
    }
}

// ---------------------------------------------------------------------------
// The IMS endpoint: a checked https URL (http for loopback only).
mod endpoint {
    use crate::client::unbracket;
    use crate::Error;

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
            // Checked whole, before the default port goes: `host:443:443`
            // is refused, not read as `host:443`.
            check_authority(&authority)?;
            // `aud` and the metascope claims must name the host as IMS knows it.
            let default_port = if scheme == "http" { ":80" } else { ":443" };
            let authority = authority
                .strip_suffix(default_port)
                .unwrap_or(&authority)
                .to_owned();
            let host = check_authority(&authority)?;
            match scheme.as_str() {
                "https" => {}
                "http" if allows_plain_http(host) => {}
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

        pub(crate) fn join(&self, path: &str) -> String {
            format!("{}{path}", self.base_url)
        }

        /// The host alone: no port, no brackets around an IPv6 address.
        pub(crate) fn bare_host(&self) -> &str {
            // `authority` passed `check_authority` when the endpoint was parsed.
            unbracket(check_authority(&self.authority).unwrap_or(&self.authority))
        }
    }

    /// `localhost`, or an address in 127.0.0.0/8 or `::1` (brackets off):
    /// reached directly, whatever the proxy settings.
    pub(crate) fn is_loopback_host(host: &str) -> bool {
        host == "localhost"
            || match host.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
                Ok(std::net::IpAddr::V6(v6)) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
                Err(_) => false,
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

    /// The three loopback names plain http is allowed to.
    pub(crate) fn allows_plain_http(host: &str) -> bool {
        matches!(host, "127.0.0.1" | "::1" | "localhost")
    }

    /// The production IMS host, where Developer Console credentials live.
    pub(crate) const DEFAULT_IMS: &str = "ims-na1.adobelogin.com";

    /// The production IMS endpoint.
    pub(crate) fn default_endpoint() -> Endpoint {
        Endpoint {
            base_url: format!("https://{DEFAULT_IMS}"),
            authority: DEFAULT_IMS.to_owned(),
        }
    }

    /// The production IMS, `https://ims-na1.adobelogin.com`, where Developer
    /// Console credentials live (for a token to validate without
    /// credentials, say).
    impl Default for Endpoint {
        fn default() -> Self {
            default_endpoint()
        }
    }
}

// ---------------------------------------------------------------------------
// The RSA private key and the certificate bound to it.
mod key {
    use std::fmt;
    use std::time::SystemTime;

    use base64::Engine as _;
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    use sha2::Sha256;

    use crate::secret::{Secret, REDACTED};
    use crate::text::parse_asn1_time;
    #[cfg(feature = "encrypted-key")]
    use crate::ClientSecret;
    use crate::Error;

    /// Smallest RSA key accepted.
    pub const MIN_KEY_BITS: usize = 2048;

    /// An RSA private key, parsed once. `Debug` shows its size, never the key.
    ///
    /// Parsing checks the PEM, the base64, the PKCS#1 or PKCS#8 structure and
    /// the key size; the costly RSA precomputation waits for the first
    /// signature (a cached token never pays for it), and is done once.
    #[derive(Clone)]
    pub struct PrivateKey {
        // Shared so that clones do not copy key material; wiped when the last goes.
        material: std::sync::Arc<KeyMaterial>,
        bits: usize,
    }

    /// A checked PKCS#1 key and, from the first signature on, the signing key
    /// made from it. Both are wiped on drop (the rsa key wipes itself).
    struct KeyMaterial {
        pkcs1: zeroize::Zeroizing<Vec<u8>>,
        signer: std::sync::OnceLock<Result<rsa::pkcs1v15::SigningKey<Sha256>, rsa::pkcs1::Error>>,
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
            match block.label.as_str() {
                "RSA PRIVATE KEY" if block.has_headers => Err(Error::key(
                    "the private key is in the legacy encrypted PEM format; \
                     convert it with `openssl pkcs8 -topk8`",
                )),
                "RSA PRIVATE KEY" => block.der("PKCS#1").and_then(|der| Self::from_pkcs1(&der)),
                "PRIVATE KEY" => block.der("PKCS#8").and_then(|der| Self::from_pkcs8(&der)),
                "ENCRYPTED PRIVATE KEY" => Err(Error::key(
                    "the private key is encrypted; give its passphrase \
                     (PrivateKey::from_encrypted_pem, cargo feature `encrypted-key`)",
                )),
                other => Err(wrong_pem_kind(other)),
            }
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
            let decrypted = rsa::pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
                .and_then(|info| info.decrypt(passphrase.secret().as_bytes()))
                .map_err(|e| {
                    Error::key_from("cannot decrypt the private key (wrong passphrase?)", e)
                })?;
            Self::from_pkcs8(decrypted.as_bytes())
        }

        fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
            let pkcs1 = pkcs1_in_pkcs8(der).map_err(pkcs8_error)?;
            Self::from_pkcs1(pkcs1)
                .map_err(|e| e.with_message("the PKCS#8 private key is malformed"))
        }

        /// Checks the structure and the size; the precomputation waits for
        /// [`PrivateKey::signer`].
        fn from_pkcs1(der: &[u8]) -> Result<Self, Error> {
            let bits = pkcs1_modulus_bits(der)
                .map_err(|e| Error::key_from("the PKCS#1 private key is malformed", e))?;
            if bits < MIN_KEY_BITS {
                return Err(Error::key(format!(
                    "the RSA key has {bits} bits; IMS needs at least {MIN_KEY_BITS}"
                )));
            }
            Ok(PrivateKey {
                material: std::sync::Arc::new(KeyMaterial {
                    pkcs1: zeroize::Zeroizing::new(der.to_vec()),
                    signer: std::sync::OnceLock::new(),
                }),
                bits,
            })
        }

        /// The size of the RSA modulus in bits.
        pub fn bits(&self) -> usize {
            self.bits
        }

        /// The signing key, made from the checked DER on first use.
        fn signer(&self) -> Result<&rsa::pkcs1v15::SigningKey<Sha256>, Error> {
            let material = &self.material;
            material
                .signer
                .get_or_init(|| {
                    rsa::PrivateKey::from_pkcs1_der(&material.pkcs1)
                        .map(rsa::pkcs1v15::SigningKey::new)
                })
                .as_ref()
                .map_err(|e| {
                    Error::key_from(
                        "the private key is malformed: its numbers do not make an RSA key",
                        *e,
                    )
                })
        }

        pub(crate) fn sign(&self, input: &[u8]) -> Result<Vec<u8>, Error> {
            self.signer()?
                .try_sign(input)
                .map(|s| s.to_vec())
                .map_err(|e| Error::key_from("cannot sign with the private key", e))
        }
    }

    /// Reads a PKCS#1 `RSAPrivateKey` as rsa does (two primes only) and gives
    /// the modulus size in bits, without the precomputation.
    fn pkcs1_modulus_bits(der: &[u8]) -> Result<usize, rsa::pkcs1::Error> {
        use rsa::pkcs1::der::Decode as _;
        let key = rsa::pkcs1::RsaPrivateKeyRef::from_der(der)?;
        if key.version() != rsa::pkcs1::Version::TwoPrime {
            return Err(rsa::pkcs1::Error::Version);
        }
        // DER integers have no leading zero bytes.
        let n = key.modulus.as_bytes();
        Ok(n.first()
            .map_or(0, |&top| 8 * n.len() - top.leading_zeros() as usize))
    }

    /// RSASSA-PSS keys, which rsa's PKCS#8 decoding accepts besides rsaEncryption.
    const RSASSA_PSS_OID: rsa::pkcs8::ObjectIdentifier =
        rsa::pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");

    /// The PKCS#1 key inside a PKCS#8 `PrivateKeyInfo`, after the checks rsa's
    /// own PKCS#8 decoding makes on the algorithm.
    fn pkcs1_in_pkcs8(der: &[u8]) -> Result<&[u8], rsa::pkcs8::Error> {
        use rsa::pkcs8::der::Decode as _;
        use rsa::pkcs8::spki;
        let info = rsa::pkcs8::PrivateKeyInfoRef::from_der(der)?;
        let algorithm = &info.algorithm;
        let parameters_ok = match algorithm.oid {
            rsa::pkcs1::ALGORITHM_OID => {
                algorithm.parameters_any()? == rsa::pkcs8::der::asn1::Null.into()
            }
            RSASSA_PSS_OID => algorithm.parameters.is_none(),
            oid => return Err(spki::Error::OidUnknown { oid }.into()),
        };
        if !parameters_ok {
            return Err(spki::Error::KeyMalformed.into());
        }
        Ok(info.private_key.as_bytes())
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
            // Read in place: no copy of the key's text is made but the body,
            // which is wiped.
            let malformed =
                |problem: &str| Error::key(format!("{what} is malformed PEM: {problem}"));
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
                .ok_or_else(|| {
                    malformed("the BEGIN line is broken (were its line breaks lost?)")
                })?;
            let end = format!("-----END {label}-----");
            let (body, _) = rest
                .split_once(&end)
                .ok_or_else(|| malformed("no matching END line"))?;
            let has_headers = body.contains(':');
            let body = base64_of(body);
            if body.0.is_empty() {
                return Err(malformed("the block is empty"));
            }
            Ok(PemBlock {
                label: label.to_owned(),
                body,
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

    /// The base64 of a PEM body: whitespace and literal `\n` or `\r\n`
    /// sequences (a key passed through an environment variable) left out.
    /// Written into one buffer of the final size at most, so that no
    /// unwiped copy is left behind.
    fn base64_of(body: &str) -> Secret {
        let mut out = String::with_capacity(body.len());
        let mut rest = body;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest
                .strip_prefix("\\r\\n")
                .or_else(|| rest.strip_prefix("\\n"))
            {
                rest = after;
                continue;
            }
            if !c.is_whitespace() {
                out.push(c);
            }
            rest = &rest[c.len_utf8()..];
        }
        Secret(out)
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

    /// The notAfter of the first certificate in a PEM text.
    pub(crate) fn certificate_not_after(pem: &str) -> Option<SystemTime> {
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

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::text::parse_rfc3339;

        #[test]
        fn certificate_not_after_matches_openssl() {
            // `openssl x509 -enddate -noout -in tests/fixtures/sample-cert.pem`
            // prints notAfter=Nov  8 00:28:19 2126 GMT (a GeneralizedTime).
            let pem = include_str!("../tests/fixtures/sample-cert.pem");
            let expected = parse_rfc3339("2126-11-08T00:28:19Z");
            assert_eq!(certificate_not_after(pem), expected);
            // notAfter=Jan  1 00:00:00 2021 GMT, a UTCTime.
            let utc = include_str!("../tests/fixtures/tls/expired.pem");
            assert_eq!(
                certificate_not_after(utc),
                parse_rfc3339("2021-01-01T00:00:00Z")
            );
            assert_eq!(certificate_not_after(&pem.replace("MII", "AAA")), None);
            assert_eq!(certificate_not_after("not a certificate"), None);
        }

        #[test]
        fn pem_bodies_lose_whitespace_and_literal_line_breaks() {
            let body = base64_of("\\r\\nMIIB\\nAbC \r\n\tdE=\\n\\r");
            assert_eq!(body.0, "MIIBAbCdE=\\r");
            assert!(body.0.capacity() <= 32);
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
    }
}

// ---------------------------------------------------------------------------
// The access token and its expiry.
mod token {
    use std::time::{Duration, SystemTime};

    use crate::secret::Secret;
    use crate::text::is_visible_ascii;
    use crate::Error;

    /// How far a token's reception may lie after now before the token is
    /// taken for one fetched while the clock was ahead.
    pub(crate) const CLOCK_STEP_SLACK: Duration = Duration::from_secs(5);

    /// Longest lifetime believed of a token from IMS. IMS grants 24 hours in
    /// either flow: more than twice that is a mistake of units (the JWT
    /// flow's milliseconds in the OAuth flow's seconds, good until 2029).
    pub(crate) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(48 * 3600);

    /// What an implausible lifetime is cut to: the 24 hours IMS grants.
    pub(crate) const IMS_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

    /// An access token from IMS with its absolute expiry.
    ///
    /// `Debug` shows the type and expiry, never the token. It has no
    /// `PartialEq`: a `==` on a secret is not constant-time. Compare
    /// `secret()`s if you must, or let [`TokenProvider::invalidate`](crate::TokenProvider::invalidate) do it.
    ///
    /// ```compile_fail,E0369
    /// # use std::time::SystemTime;
    /// let t = ims_token::AccessToken::new("a", "bearer", SystemTime::now(), SystemTime::now());
    /// let _ = t == t.clone();
    /// ```
    ///
    /// It makes no refresh decision of its own: when to refresh, and what
    /// to keep when a refresh fails, is [`RefreshRule`](crate::RefreshRule)'s
    /// one rule (`step`, `refresh_at`), with its jitter and its check of a
    /// token received while the clock was ahead.
    ///
    /// ```compile_fail,E0599
    /// # use std::time::{Duration, SystemTime};
    /// let t = ims_token::AccessToken::new("a", "bearer", SystemTime::now(), SystemTime::now());
    /// let _ = t.needs_refresh(SystemTime::now(), Duration::from_secs(600));
    /// ```
    #[derive(Clone, Debug)]
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

        /// As [`AccessToken::new`], for a token from outside IMS's replies
        /// (a cache file, a database): refuses a token or token type that
        /// could not go into a header or a line whole. Tokens from IMS are
        /// checked so when they arrive.
        ///
        /// # Errors
        /// [`Error::Config`](crate::Error::Config) when the token or its type
        /// is empty or has a character other than visible ASCII (`!` to `~`):
        /// a CR or LF would inject a header. Neither is quoted.
        pub fn try_new(
            token: impl Into<String>,
            token_type: impl Into<String>,
            received_at: SystemTime,
            expires_at: SystemTime,
        ) -> Result<Self, Error> {
            let token = AccessToken::new(token, token_type, received_at, expires_at);
            for (what, text) in [
                ("access token", token.secret()),
                ("token type", token.token_type()),
            ] {
                if !is_visible_ascii(text) {
                    return Err(Error::config(format!(
                        "the {what} has characters that are not visible ASCII"
                    )));
                }
            }
            Ok(token)
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

        /// Whether the token has stopped working at `now`.
        pub fn is_expired(&self, now: SystemTime) -> bool {
            self.expires_in(now).is_zero()
        }

        /// Whether what the token says of its times can be believed at
        /// `now`: it was not received more than [`CLOCK_STEP_SLACK`] after
        /// `now`, which is the same as saying it has no more time left than
        /// its lifetime. One fetched while the clock was days ahead, read
        /// after NTP set it right, is not: IMS counted its lifetime from the
        /// true time, so it stops working days before it claims to.
        pub(crate) fn is_plausible(&self, now: SystemTime) -> bool {
            self.received_at <= now + CLOCK_STEP_SLACK
        }

        /// `margin`, capped at half the token's lifetime.
        pub(crate) fn capped_margin(&self, margin: Duration) -> Duration {
            let lifetime = self
                .expires_at
                .duration_since(self.received_at)
                .unwrap_or_default();
            margin.min(lifetime / 2)
        }

        /// Compares the token strings in constant time (for a given length),
        /// so that an invalidate cannot be timed to learn the cached token.
        pub(crate) fn same_token(&self, other: &AccessToken) -> bool {
            self.is_same_token(other.secret())
        }

        /// Whether this is the token `other`, compared in constant time (for
        /// a given length): a caller that drops a token it is handed (a
        /// revoked one, say) from what it keeps cannot be timed to learn the
        /// kept token byte by byte. `AccessToken` has no `PartialEq`, whose
        /// `==` would not be constant-time.
        pub fn is_same_token(&self, other: &str) -> bool {
            let (a, b) = (self.secret().as_bytes(), other.as_bytes());
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::test_support::*;

        #[test]
        fn refresh_margin_is_capped_at_half_the_lifetime() {
            let token = AccessToken::new("t", "bearer", at(T0), at(T0 + 100));
            let margin = Duration::from_secs(600);
            assert_eq!(token.capped_margin(margin), Duration::from_secs(50));
            let day = AccessToken::new("t", "bearer", at(T0), at(T0 + 86_400));
            assert_eq!(day.capped_margin(margin), margin);
            assert!(!day.is_expired(at(T0 + 86_399)));
            assert!(day.is_expired(at(T0 + 86_400)));
        }

        #[test]
        fn a_token_received_in_the_future_is_not_plausible() {
            let day = AccessToken::new("t", "bearer", at(T0), at(T0 + 86_400));
            assert!(day.is_plausible(at(T0)));
            assert!(day.is_plausible(at(T0 + 86_400 * 2)));
            // A clock stepped back a little (NTP) is allowed for.
            assert!(day.is_plausible(at(T0 - 5)));
            // Fetched 3 days ahead: 345,599 s left of a 86,400 s lifetime.
            assert!(!day.is_plausible(at(T0 - 3 * 86_400)));
            assert!(!day.is_plausible(at(T0 - 6)));
        }

        #[test]
        fn try_new_refuses_what_could_break_a_header() {
            assert!(AccessToken::try_new("tok-1", "bearer", at(T0), at(T0 + 1)).is_ok());
            for (token, kind, what) in [
                ("tok\r\nX-Evil: s3cr3t", "bearer", "access token"),
                ("tok é", "bearer", "access token"),
                ("", "bearer", "access token"),
                ("tok", "bear\ner", "token type"),
            ] {
                let e = AccessToken::try_new(token, kind, at(T0), at(T0 + 1)).unwrap_err();
                let text = e.to_string();
                assert!(text.contains(what) && !text.contains("s3cr3t"), "{text}");
            }
        }

        #[test]
        fn tokens_compare_by_value_only() {
            let a = day_token("abc");
            assert!(a.same_token(&AccessToken::new("abc", "x", at(0), at(1))));
            assert!(!a.same_token(&day_token("abd")));
            assert!(!a.same_token(&day_token("ab")));
            assert!(a.is_same_token("abc"));
            assert!(!a.is_same_token("abc ") && !a.is_same_token("") && !a.is_same_token("abC"));
        }
    }
}

// ---------------------------------------------------------------------------
// What an IMS access token says of itself: read locally, never verified.
mod introspect {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use base64::Engine as _;
    use serde_json::{Map, Value};

    use crate::text::{is_unsafe_on_terminal, printable_line, rfc3339, rough_duration, split_list};
    use crate::Error;

    /// The `type` of an IMS access token.
    const ACCESS_TOKEN: &str = "access_token";

    /// What an IMS access token says of itself, read from its payload by
    /// [`decode_token`]. Only IMS can verify the signature: this is what a
    /// token claims, not whether IMS accepts it (for that, ask
    /// [`Client::validate_token`](crate::Client::validate_token)).
    ///
    /// It holds nothing that works as a credential: neither the token nor
    /// its signature.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct TokenClaims {
        /// The payload's `type`: `access_token`.
        pub token_type: String,
        /// The client (API key) the token was issued to (`client_id`).
        pub client_id: String,
        /// The user or technical account it acts for (`user_id`), if given.
        pub user_id: Option<String>,
        /// The scopes (`scope`, comma-separated in the token).
        pub scopes: Vec<String>,
        /// The IMS region that issued it (`as`: `ims-na1`, `ims-eu1`, ...), if given.
        pub region: Option<String>,
        /// When it was issued (`created_at`).
        pub created_at: SystemTime,
        /// When it expires: `created_at` plus `expires_in`.
        pub expires_at: SystemTime,
    }

    /// Reads what an IMS access token says of itself, with no network and
    /// no clock: `type`, `client_id`, `user_id`, `scope`, `as`, and
    /// `created_at` plus `expires_in` (milliseconds, as numbers or strings)
    /// for the expiry. White space around the token and a leading `Bearer `
    /// are ignored. The signature is neither checked nor kept.
    ///
    /// ```
    /// # fn main() -> Result<(), ims_token::Error> {
    /// # use base64::Engine as _;
    /// # let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    /// # let payload = r#"{"type":"access_token","client_id":"my-client","user_id":"A@AdobeID",
    /// #   "as":"ims-na1","scope":"openid,AdobeID","created_at":"1700000000000","expires_in":"86400000"}"#;
    /// # let token = format!("{}.{}.c2lnbmF0dXJl", b64(r#"{"alg":"RS256"}"#), b64(payload));
    /// let claims = ims_token::decode_token(&token)?;
    /// assert_eq!(claims.client_id, "my-client");
    /// assert_eq!(claims.scopes, ["openid", "AdobeID"]);
    /// assert_eq!(ims_token::rfc3339(claims.expires_at), "2023-11-15T22:13:20Z");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when the text is not an IMS access token: not
    /// three base64url segments, a payload that is not a JSON object, no
    /// `client_id`, `created_at` or `expires_in`, or another `type` (a
    /// `refresh_token`, say). The message says why and never quotes the
    /// token.
    pub fn decode_token(token: &str) -> Result<TokenClaims, Error> {
        let token = token.trim();
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim_start();
        claims_of(token)
            .map_err(|why| Error::config(format!("the input is not an IMS access token: {why}")))
    }

    fn claims_of(token: &str) -> Result<TokenClaims, String> {
        let payload = token_payload(token)?;
        let text = |name: &str| {
            payload
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let token_type = text("type").ok_or("its payload has no `type`")?;
        if token_type != ACCESS_TOKEN {
            return Err(format!(
                "it is an IMS {}, not an access token",
                token_kind(&token_type)
            ));
        }
        let client_id = text("client_id").ok_or("its payload has no `client_id`")?;
        let created = millis(&payload, "created_at")
            .ok_or("its payload has no `created_at` in milliseconds")?;
        millis(&payload, "expires_in").ok_or("its payload has no `expires_in` in milliseconds")?;
        let out_of_range = "its `created_at` and `expires_in` are out of range";
        let created_at = UNIX_EPOCH
            .checked_add(Duration::from_millis(created))
            .ok_or(out_of_range)?;
        let expires_at = payload_expiry(&payload).ok_or(out_of_range)?;
        Ok(TokenClaims {
            token_type,
            client_id,
            user_id: text("user_id"),
            scopes: payload_scopes(&payload),
            region: text("as"),
            created_at,
            expires_at,
        })
    }

    /// `` `refresh_token` `` for a plain type name; anything else is not quoted.
    fn token_kind(kind: &str) -> String {
        let plain = kind.len() <= 40 && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if plain {
            format!("`{kind}`")
        } else {
            "token of another type".to_owned()
        }
    }

    const NOT_THREE_SEGMENTS: &str =
        "it is not three base64url segments joined by dots (header.payload.signature)";

    /// The payload (the middle segment) of a JWT-shaped token, as a JSON
    /// object; the error says why it is not one. The other segments are
    /// not looked at.
    pub(crate) fn token_payload(token: &str) -> Result<Map<String, Value>, &'static str> {
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(NOT_THREE_SEGMENTS);
        };
        if header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(NOT_THREE_SEGMENTS);
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| "its payload is not base64url")?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(fields)) => Ok(fields),
            _ => Err("its payload is not a JSON object"),
        }
    }

    /// `created_at` plus `expires_in`, both milliseconds.
    pub(crate) fn payload_expiry(payload: &Map<String, Value>) -> Option<SystemTime> {
        let total = millis(payload, "created_at")?.checked_add(millis(payload, "expires_in")?)?;
        UNIX_EPOCH.checked_add(Duration::from_millis(total))
    }

    /// The `scope` list: a comma-separated string (or an array of them).
    pub(crate) fn payload_scopes(payload: &Map<String, Value>) -> Vec<String> {
        match payload.get("scope") {
            Some(Value::String(list)) => split_list(list).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .flat_map(split_list)
                .collect(),
            _ => Vec::new(),
        }
    }

    fn millis(payload: &Map<String, Value>, name: &str) -> Option<u64> {
        payload.get(name).and_then(whole_number)
    }

    /// A whole number given as a JSON number or as a string of digits (IMS
    /// writes both).
    pub(crate) fn whole_number(value: &Value) -> Option<u64> {
        match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    impl TokenClaims {
        /// How long the token lives: `expires_in`.
        pub fn lifetime(&self) -> Duration {
            self.expires_at
                .duration_since(self.created_at)
                .unwrap_or_default()
        }

        /// Whether, by its own claims, the token has expired at `now`.
        pub fn is_expired(&self, now: SystemTime) -> bool {
            self.expires_at <= now
        }

        /// The claims as `name: value` lines, for people: `type`,
        /// `client_id`, `user_id` and `as` (when given), `scope`
        /// (comma-separated), `created_at`, and `expires_at` with the time
        /// left at `now` (`2023-11-15T22:13:20Z (23 hours left)`, or
        /// `(expired 3 hours ago)`). Dates are UTC (RFC 3339). Control
        /// characters in a value are shown as `?`: a token cannot write a
        /// line or a terminal escape of its own. No trailing newline.
        pub fn to_text(&self, now: SystemTime) -> String {
            let mut lines = vec![
                ("type", self.token_type.clone()),
                ("client_id", self.client_id.clone()),
            ];
            if let Some(user) = &self.user_id {
                lines.push(("user_id", user.clone()));
            }
            lines.push(("scope", self.scopes.join(",")));
            if let Some(region) = &self.region {
                lines.push(("as", region.clone()));
            }
            lines.push(("created_at", rfc3339(self.created_at)));
            lines.push(("expires_at", self.expiry_text(now)));
            let text: Vec<String> = lines
                .iter()
                .map(|(name, value)| format!("{name}: {}", printable(value)))
                .collect();
            text.join("\n")
        }

        /// `2023-11-15T22:13:20Z (23 hours left)` or `... (expired 5 minutes ago)`.
        fn expiry_text(&self, now: SystemTime) -> String {
            let when = match self.expires_at.duration_since(now) {
                Ok(left) if !left.is_zero() => format!("{} left", rough_duration(left)),
                _ => {
                    let ago = now.duration_since(self.expires_at).unwrap_or_default();
                    format!("expired {} ago", rough_duration(ago))
                }
            };
            format!("{} ({when})", rfc3339(self.expires_at))
        }

        /// The claims as one line of JSON, for programs: `type`,
        /// `client_id`, `user_id` and `as` (`null` when not given), `scope`
        /// (an array), `created_at` and `expires_at` (RFC 3339, UTC),
        /// `expires_in` (whole seconds left at `now`, 0 once expired) and
        /// `expired`. Control characters are escaped.
        pub fn to_json(&self, now: SystemTime) -> String {
            let json = serde_json::json!({
                "type": self.token_type,
                "client_id": self.client_id,
                "user_id": self.user_id,
                "scope": self.scopes,
                "as": self.region,
                "created_at": rfc3339(self.created_at),
                "expires_at": rfc3339(self.expires_at),
                "expires_in": self.expires_at.duration_since(now).map_or(0, |d| d.as_secs()),
                "expired": self.is_expired(now),
            });
            escape_controls(&json.to_string())
        }
    }

    /// Control characters as `?`.
    fn printable(text: &str) -> String {
        printable_line(text)
    }

    /// The control characters serde_json leaves as they are (DEL and the C1
    /// controls, which some terminals obey) as `\u` escapes. They can only
    /// stand inside JSON strings, where the escape means the same.
    fn escape_controls(json: &str) -> String {
        let mut out = String::with_capacity(json.len());
        for c in json.chars() {
            if is_unsafe_on_terminal(c) {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            } else {
                out.push(c);
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::test_support::*;

        fn b64(text: &str) -> String {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
        }

        fn token_with(payload: &Value) -> String {
            format!(
                "{}.{}.c2ln",
                b64(r#"{"alg":"RS256"}"#),
                b64(&payload.to_string())
            )
        }

        fn sample_payload() -> Value {
            serde_json::json!({
                "id": "1700000000000_abc_ue1",
                "type": "access_token",
                "client_id": "my-client",
                "user_id": "ABC@techacct.adobe.com",
                "as": "ims-na1",
                "created_at": "1700000000000",
                "expires_in": "86400000",
                "scope": "openid, AdobeID,,read_organizations",
            })
        }

        #[test]
        fn a_real_shaped_token_decodes_to_its_claims() {
            let claims = decode_token(&token_with(&sample_payload())).unwrap();
            assert_eq!(claims.token_type, "access_token");
            assert_eq!(claims.client_id, "my-client");
            assert_eq!(claims.user_id.as_deref(), Some("ABC@techacct.adobe.com"));
            assert_eq!(claims.region.as_deref(), Some("ims-na1"));
            assert_eq!(claims.scopes, ["openid", "AdobeID", "read_organizations"]);
            assert_eq!(claims.created_at, at(T0));
            assert_eq!(claims.expires_at, at(T0 + 86_400));
            assert_eq!(claims.lifetime(), Duration::from_secs(86_400));
            // Numbers instead of strings, padding, `Bearer ` and a newline.
            let mut numbers = sample_payload();
            numbers["created_at"] = 1_700_000_000_000u64.into();
            numbers["expires_in"] = 86_400_000u64.into();
            let padded = format!("{}==", b64(&numbers.to_string()));
            let text = format!("Bearer {}.{padded}.c2ln\n", b64("{}"));
            assert_eq!(decode_token(&text).unwrap(), claims);
        }

        #[test]
        fn what_is_not_an_access_token_gets_one_clear_error() {
            let mut refresh = sample_payload();
            refresh["type"] = "refresh_token".into();
            let mut odd_type = sample_payload();
            odd_type["type"] = "\u{1b}[31mred".into();
            let mut no_client = sample_payload();
            no_client.as_object_mut().unwrap().remove("client_id");
            let mut bad_time = sample_payload();
            bad_time["created_at"] = "yesterday".into();
            let mut huge = sample_payload();
            huge["created_at"] = u64::MAX.into();
            let cases = [
                ("garbage p8e-SECRET".to_owned(), "three base64url segments"),
                ("a.b".to_owned(), "three base64url segments"),
                ("a..c".to_owned(), "three base64url segments"),
                ("a.b.c.d".to_owned(), "three base64url segments"),
                ("h.!!!.s".to_owned(), "not base64url"),
                (format!("h.{}.s", b64("[1,2]")), "not a JSON object"),
                (
                    token_with(&refresh),
                    "an IMS `refresh_token`, not an access token",
                ),
                (token_with(&odd_type), "an IMS token of another type"),
                (token_with(&no_client), "no `client_id`"),
                (token_with(&bad_time), "no `created_at`"),
                (token_with(&huge), "out of range"),
            ];
            for (text, why) in cases {
                let e = decode_token(&text).unwrap_err();
                assert!(e.is_config(), "{e:?}");
                let m = e.to_string();
                assert!(
                    m.starts_with("the input is not an IMS access token: "),
                    "{m}"
                );
                assert!(m.contains(why), "{text}: {m}");
                assert!(!m.contains("SECRET") && !m.contains('\u{1b}'), "{m}");
            }
        }

        #[test]
        fn claims_render_as_text_lines_and_json() {
            let claims = decode_token(&token_with(&sample_payload())).unwrap();
            let now = at(T0 + 3600);
            assert_eq!(
                claims.to_text(now),
                "type: access_token\n\
                 client_id: my-client\n\
                 user_id: ABC@techacct.adobe.com\n\
                 scope: openid,AdobeID,read_organizations\n\
                 as: ims-na1\n\
                 created_at: 2023-11-14T22:13:20Z\n\
                 expires_at: 2023-11-15T22:13:20Z (23 hours left)"
            );
            let json: Value = serde_json::from_str(&claims.to_json(now)).unwrap();
            assert_eq!(
                json,
                serde_json::json!({
                    "type": "access_token",
                    "client_id": "my-client",
                    "user_id": "ABC@techacct.adobe.com",
                    "scope": ["openid", "AdobeID", "read_organizations"],
                    "as": "ims-na1",
                    "created_at": "2023-11-14T22:13:20Z",
                    "expires_at": "2023-11-15T22:13:20Z",
                    "expires_in": 82_800,
                    "expired": false,
                })
            );
            let later = at(T0 + 86_400 + 3 * 3600);
            assert!(claims.to_text(later).ends_with("(expired 3 hours ago)"));
            let json: Value = serde_json::from_str(&claims.to_json(later)).unwrap();
            assert_eq!(
                (json["expires_in"].as_u64(), json["expired"].as_bool()),
                (Some(0), Some(true))
            );
        }

        #[test]
        fn hostile_claims_cannot_write_lines_or_escapes() {
            let mut payload = sample_payload();
            payload["client_id"] =
                "x\nexpires_at: never\u{1b}[2J\u{9b}31m\u{202e}ab\u{2028}c".into();
            payload.as_object_mut().unwrap().remove("user_id");
            payload.as_object_mut().unwrap().remove("as");
            let claims = decode_token(&token_with(&payload)).unwrap();
            let text = claims.to_text(at(T0));
            assert_eq!(text.lines().count(), 5, "{text}");
            // The one sanitizer of errors and inspect: controls and line
            // separators become spaces, bidi controls are dropped.
            assert!(
                text.contains("client_id: x expires_at: never [2J 31mab c"),
                "{text}"
            );
            let json = claims.to_json(at(T0));
            assert!(!json.chars().any(is_unsafe_on_terminal), "{json}");
            let back: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(back["client_id"], payload["client_id"]);
            assert_eq!(
                (back["user_id"].is_null(), back["as"].is_null()),
                (true, true)
            );
        }

        #[test]
        fn payload_expiry_reads_milliseconds_for_a_local_token() {
            let payload = serde_json::json!({"created_at":"1700000000000","expires_in":86400000});
            let fields = token_payload(&token_with(&payload)).unwrap();
            assert_eq!(payload_expiry(&fields), Some(at(1_700_086_400)));
            assert_eq!(token_payload("no-dots"), Err(NOT_THREE_SEGMENTS));
            assert_eq!(whole_number(&Value::from(" 7 ")), Some(7));
            assert_eq!(whole_number(&Value::from(-1)), None);
        }
    }
}

// ---------------------------------------------------------------------------
// Credentials: every Adobe kind, from JSON, builders or the environment.
mod credentials {
    use std::io::Read;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::SystemTime;

    use serde_json::{Map, Value};
    use zeroize::Zeroize as _;

    use crate::endpoint::{default_endpoint, DEFAULT_IMS};
    use crate::exchange::excerpt;
    use crate::files::{read_capped, read_capped_file, without_bom};
    use crate::introspect::{payload_expiry, payload_scopes, token_payload};
    use crate::key::certificate_not_after;
    use crate::secret::Secret;
    use crate::text::{is_visible_ascii, parse_rfc3339, rough_duration, split_list};
    use crate::{AccessToken, ClientSecret, Endpoint, Error, PrivateKey};

    /// A JWT service account (AEM "service credentials" or an Adobe Developer
    /// Console JWT credential).
    #[derive(Clone, Debug)]
    pub struct ServiceAccount {
        pub(crate) ims: Endpoint,
        pub(crate) client_id: String,
        pub(crate) client_secret: ClientSecret,
        pub(crate) org_id: String,
        pub(crate) technical_account_id: String,
        pub(crate) private_key: PrivateKey,
        pub(crate) metascopes: Vec<String>,
        certificate_pem: Option<String>,
        certificate_expiration: Option<String>,
    }

    /// OAuth Server-to-Server credentials (client credentials grant).
    ///
    /// Clones share which of two client secrets IMS accepted last (see
    /// [`OAuthCredentialsBuilder::second_client_secret`]).
    #[derive(Clone, Debug)]
    pub struct OAuthCredentials {
        pub(crate) ims: Endpoint,
        pub(crate) client_id: String,
        pub(crate) secrets: ClientSecrets,
        pub(crate) scopes: Vec<String>,
        pub(crate) org_id: Option<String>,
        pub(crate) technical_account_id: Option<String>,
        pub(crate) requested_org_id: Option<String>,
        pub(crate) resources: Vec<String>,
        project: Option<ConsoleProject>,
    }

    /// The client secrets of OAuth credentials: one, or two while one is
    /// being rotated (a Developer Console credential holds two then, in no
    /// documented order), and which of them IMS accepted last. Clones share
    /// what was learnt, so the clones of credentials that a
    /// [`TokenProvider`](crate::TokenProvider) holds try the working secret
    /// first.
    #[derive(Clone, Debug)]
    pub(crate) struct ClientSecrets {
        first: ClientSecret,
        second: Option<ClientSecret>,
        /// IMS refused the first and accepted the second: try the second first.
        second_works: Arc<AtomicBool>,
    }

    impl ClientSecrets {
        pub(crate) fn new(first: ClientSecret, second: Option<ClientSecret>) -> Self {
            ClientSecrets {
                first,
                second,
                second_works: Arc::default(),
            }
        }

        /// The secrets in the order to try them, each with its position in
        /// the credential (1 or 2): the one that worked last first.
        pub(crate) fn in_order(&self) -> Vec<(usize, &ClientSecret)> {
            let mut order = vec![(1, &self.first)];
            if let Some(second) = &self.second {
                if self.second_works.load(Ordering::Relaxed) {
                    order.insert(0, (2, second));
                } else {
                    order.push((2, second));
                }
            }
            order
        }

        /// Remembers that the secret at `position` (1 or 2) worked.
        pub(crate) fn worked(&self, position: usize) {
            self.second_works.store(position == 2, Ordering::Relaxed);
        }
    }

    /// Where OAuth credentials read from an Adobe Developer Console project
    /// came from: the project, workspace and credential names, for display.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConsoleProject {
        name: String,
        workspace: String,
        credential: String,
        credential_id: String,
    }

    impl ConsoleProject {
        /// The project's `name` (else its `title`).
        pub fn name(&self) -> &str {
            &self.name
        }
        /// The workspace's `name` (else its `title`).
        pub fn workspace(&self) -> &str {
            &self.workspace
        }
        /// The credential's `name`.
        pub fn credential(&self) -> &str {
            &self.credential
        }
        /// The credential's `id`.
        pub fn credential_id(&self) -> &str {
            &self.credential_id
        }
    }

    /// An AEM local development token: already an access token, so there is
    /// nothing to exchange. `Debug` does not show it.
    #[derive(Clone, Debug)]
    pub struct LocalToken {
        token: Secret,
        expires_at: Option<SystemTime>,
        client_id: String,
        scopes: Vec<String>,
        ims: Endpoint,
    }

    impl LocalToken {
        /// When the token's payload says it expires (`created_at` plus
        /// `expires_in`); `None` when the payload does not say.
        pub fn expires_at(&self) -> Option<SystemTime> {
            self.expires_at
        }

        /// The `client_id` in the token's payload (empty when it has none).
        pub fn client_id(&self) -> &str {
            &self.client_id
        }

        /// The token as it is, received at `now`. Its expiry is the payload's,
        /// or `now` when the payload does not say (IMS will judge it).
        ///
        /// # Errors
        /// [`Error::Config`] once the payload says it has expired: download a
        /// new one from the AEM Developer Console.
        pub fn access_token(&self, now: SystemTime) -> Result<AccessToken, Error> {
            if let Some(expiry) = self.expires_at.filter(|e| *e <= now) {
                let ago = now.duration_since(expiry).unwrap_or_default();
                return Err(Error::config(format!(
                    "the local development token expired {} ago; \
                     download a new one from the AEM Developer Console",
                    rough_duration(ago)
                )));
            }
            let expires_at = self.expires_at.unwrap_or(now);
            Ok(AccessToken::new(
                self.token.0.clone(),
                "bearer",
                now,
                expires_at,
            ))
        }
    }

    /// Credentials of any kind; which flow runs follows from the kind.
    #[derive(Clone, Debug)]
    #[non_exhaustive]
    pub enum Credentials {
        /// Sign a JWT and exchange it at `/ims/exchange/jwt`.
        ServiceAccount(ServiceAccount),
        /// Client credentials at `/ims/token/v3`.
        OAuth(OAuthCredentials),
        /// A ready token, handed out as it is while it has not expired.
        LocalToken(LocalToken),
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
        /// The organization id (`...@AdobeOrg`), the JWT's `iss`; always
        /// there. [`Credentials::org_id`] gives it, as an `Option`, for every
        /// kind of credentials.
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
        /// The client secret (the first, when there are two).
        pub fn client_secret(&self) -> &ClientSecret {
            &self.secrets.first
        }
        /// The second client secret, when the credentials have one (see
        /// [`OAuthCredentialsBuilder::second_client_secret`]).
        pub fn second_client_secret(&self) -> Option<&ClientSecret> {
            self.secrets.second.as_ref()
        }
        /// The scopes.
        pub fn scopes(&self) -> &[String] {
            &self.scopes
        }
        /// The organization id (`...@AdobeOrg`), when the source gave one
        /// (`x-gw-ims-org-id` for Adobe APIs). It is not sent to IMS: see
        /// [`OAuthCredentials::requested_org_id`] for that.
        /// [`Credentials::org_id`] gives it for every kind of credentials.
        pub fn org_id(&self) -> Option<&str> {
            self.org_id.as_deref()
        }
        /// The `org_id` sent to IMS with the request, for a client that
        /// serves several organizations; `None` (the default): none is sent.
        pub fn requested_org_id(&self) -> Option<&str> {
            self.requested_org_id.as_deref()
        }
        /// The `resource` fields (RFC 8707) sent to IMS with the request, in
        /// order; empty (the default): none is sent.
        pub fn resources(&self) -> &[String] {
            &self.resources
        }

        /// Asks IMS for a token for this organization: the `org_id` field,
        /// for a client that serves several. Unrelated to
        /// [`OAuthCredentials::org_id`], which is never sent.
        ///
        /// # Errors
        /// [`Error::Config`] when `org_id` is blank.
        pub fn with_requested_org_id(mut self, org_id: &str) -> Result<Self, Error> {
            self.requested_org_id = Some(request_value(org_id, "org_id")?);
            Ok(self)
        }

        /// Adds a `resource` field (RFC 8707: the API the token is for); may
        /// be called more than once.
        ///
        /// # Errors
        /// [`Error::Config`] when `resource` is blank.
        pub fn with_resource(mut self, resource: &str) -> Result<Self, Error> {
            self.resources.push(request_value(resource, "resource")?);
            Ok(self)
        }
        /// The technical-account id, when the source gave one.
        pub fn technical_account_id(&self) -> Option<&str> {
            self.technical_account_id.as_deref()
        }
        /// The Developer Console project, workspace and credential these came
        /// from, when they were read from a project JSON.
        pub fn project(&self) -> Option<&ConsoleProject> {
            self.project.as_ref()
        }
    }

    /// Builds a [`ServiceAccount`] from values given in code.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), ims_token::Error> {
    /// use ims_token::{ClientSecret, Credentials, PrivateKey, ServiceAccount};
    /// let pem = std::fs::read_to_string("private.key").unwrap_or_default();
    /// let account = ServiceAccount::builder()
    ///     .ims("ims-na1.adobelogin.com")
    ///     .client_id("cm-p12345-e67890-integration")
    ///     .client_secret(ClientSecret::new(std::env::var("AEM_CLIENT_SECRET").unwrap_or_default()))
    ///     .org_id("0123456789ABCDEF01234567@AdobeOrg")
    ///     .technical_account_id("1A2B3C4D5E6F7A8B9C0D1E2F@techacct.adobe.com")
    ///     .metascopes("ent_aem_cloud_api")
    ///     .private_key(PrivateKey::from_pem(&pem)?)
    ///     .build()?;
    /// let token = ims_token::fetch_token(&Credentials::ServiceAccount(account))?;
    /// # let _ = token;
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Debug, Default)]
    #[must_use = "a builder does nothing until `build` is called"]
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), ims_token::Error> {
    /// use ims_token::{ClientSecret, Credentials, OAuthCredentials};
    /// let oauth = OAuthCredentials::builder()
    ///     .client_id("0123456789abcdef0123456789abcdef")
    ///     .client_secret(ClientSecret::new(std::env::var("CLIENT_SECRET").unwrap_or_default()))
    ///     .scopes("openid,AdobeID,read_organizations")
    ///     .org_id("0123456789ABCDEF01234567@AdobeOrg") // for x-gw-ims-org-id, not sent to IMS
    ///     .build()?;
    /// let token = ims_token::fetch_token(&Credentials::OAuth(oauth))?;
    /// # let _ = token;
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Debug, Default)]
    #[must_use = "a builder does nothing until `build` is called"]
    pub struct OAuthCredentialsBuilder {
        ims: Option<String>,
        client_id: Option<String>,
        client_secret: Option<ClientSecret>,
        second_client_secret: Option<ClientSecret>,
        scopes: Vec<String>,
        org_id: Option<String>,
        requested_org_id: Option<String>,
        resources: Vec<String>,
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
        /// A second client secret, as a Developer Console credential holds
        /// while a secret is rotated. When IMS answers `invalid_client` to
        /// the one tried first, the other is tried once; the one that worked
        /// is tried first from then on (a warning is logged, naming the
        /// secrets by position, never by value).
        pub fn second_client_secret(mut self, v: ClientSecret) -> Self {
            self.second_client_secret = Some(v);
            self
        }
        /// Scopes, comma-separated; may be called more than once.
        pub fn scopes(mut self, list: &str) -> Self {
            self.scopes.extend(split_list(list));
            self
        }
        /// Organization id (`...@AdobeOrg`); optional, and not sent to IMS,
        /// but Adobe APIs want it in `x-gw-ims-org-id`.
        pub fn org_id(mut self, v: impl Into<String>) -> Self {
            self.org_id = Some(v.into());
            self
        }
        /// The `org_id` to send to IMS, for a client that serves several
        /// organizations (see [`OAuthCredentials::with_requested_org_id`]).
        pub fn requested_org_id(mut self, v: impl Into<String>) -> Self {
            self.requested_org_id = Some(v.into());
            self
        }
        /// A `resource` field to send to IMS (RFC 8707); may be called more
        /// than once.
        pub fn resource(mut self, v: impl Into<String>) -> Self {
            self.resources.push(v.into());
            self
        }

        /// Checks that every value is there.
        ///
        /// # Errors
        /// [`Error::Config`] naming the first missing value, a bad endpoint,
        /// or a blank requested org id or resource.
        pub fn build(self) -> Result<OAuthCredentials, Error> {
            let mut built = OAuthCredentials {
                ims: Endpoint::parse(self.ims.as_deref().unwrap_or(DEFAULT_IMS))?,
                client_id: required(self.client_id, "client_id")?,
                secrets: ClientSecrets::new(
                    required(self.client_secret, "client_secret")?,
                    self.second_client_secret,
                ),
                scopes: non_empty_list(self.scopes, "scopes")?,
                org_id: self.org_id,
                technical_account_id: None,
                requested_org_id: None,
                resources: Vec::new(),
                project: None,
            };
            if let Some(org) = self.requested_org_id {
                built = built.with_requested_org_id(&org)?;
            }
            for resource in self.resources {
                built = built.with_resource(&resource)?;
            }
            Ok(built)
        }
    }

    /// A value sent to IMS as it is asked for: trimmed, not blank.
    fn request_value(value: &str, name: &str) -> Result<String, Error> {
        let value = value.trim();
        if value.is_empty() {
            return Err(Error::config(format!(
                "the `{name}` to send to IMS is empty"
            )));
        }
        Ok(value.to_owned())
    }

    fn required<T>(value: Option<T>, name: &str) -> Result<T, Error> {
        value.ok_or_else(|| Error::config(format!("credentials lack `{name}`")))
    }

    fn non_empty_list(list: Vec<String>, name: &str) -> Result<Vec<String>, Error> {
        if list.is_empty() {
            return Err(Error::config(format!("credentials have no `{name}`")));
        }
        Ok(list)
    }

    /// Largest credentials input [`Credentials::from_reader`] and
    /// [`Credentials::from_file`] read (1 MiB); a larger one is refused.
    pub const MAX_CREDENTIALS_BYTES: u64 = 1024 * 1024;

    impl Credentials {
        /// Reads credentials from JSON text, whichever kind it holds:
        ///
        /// - an Adobe Developer Console project (`project.workspace.details.credentials`):
        ///   its only OAuth Server-to-Server credential (see
        ///   [`Credentials::from_json_selecting`] to choose one of several);
        /// - AEM service credentials, a JWT service account (`privateKey`),
        ///   with or without the `{ok, integration, statusCode}` wrapper;
        /// - an AEM OAuth Server-to-Server technical account (`scopes`), as
        ///   downloaded or as the AEM Developer Console API returns it;
        /// - an AEM local development token (`accessToken`).
        ///
        /// Unknown fields are ignored, and so is a leading UTF-8 byte order
        /// mark (Windows PowerShell 5 writes one).
        ///
        /// # Errors
        /// [`Error::Config`] naming the missing or mistyped field by its JSON
        /// path, for revoked AEM credentials, or for a project credential that
        /// is not OAuth Server-to-Server; [`Error::Key`] for a private key that
        /// cannot be used.
        pub fn from_json(text: &str) -> Result<Self, Error> {
            Self::from_json_selecting(text, None)
        }

        /// As [`Credentials::from_json`], choosing the Developer Console
        /// project credential by its `name` or `id` (an `id` match wins). With
        /// `None`, the project's only OAuth Server-to-Server credential is used.
        /// Of its `client_secrets`, the first is tried first and the second
        /// (if any) once when IMS answers `invalid_client` (a secret being
        /// rotated); further ones are ignored.
        ///
        /// # Errors
        /// As [`Credentials::from_json`]; [`Error::Config`] listing the
        /// credentials to choose from when none matches, when `None` is given
        /// and there are several, and when `credential` is given for
        /// credentials that are not a project.
        pub fn from_json_selecting(text: &str, credential: Option<&str>) -> Result<Self, Error> {
            parse_credentials(text.as_bytes(), credential)
        }

        /// Reads credentials JSON from a reader (e.g. stdin), at most
        /// [`MAX_CREDENTIALS_BYTES`].
        ///
        /// # Errors
        /// As [`Credentials::from_json`], and [`Error::Io`] when reading fails
        /// or the input is larger than the cap.
        pub fn from_reader(reader: impl Read) -> Result<Self, Error> {
            Self::from_reader_selecting(reader, None)
        }

        /// As [`Credentials::from_reader`], choosing the project credential as
        /// [`Credentials::from_json_selecting`] does.
        ///
        /// # Errors
        /// As [`Credentials::from_reader`] and [`Credentials::from_json_selecting`].
        pub fn from_reader_selecting(
            reader: impl Read,
            credential: Option<&str>,
        ) -> Result<Self, Error> {
            let bytes = read_capped(reader, MAX_CREDENTIALS_BYTES, 0)
                .map_err(|e| Error::io("cannot read the credentials", e))?;
            parse_credentials(&bytes, credential)
        }

        /// Reads credentials JSON from a regular file of at most
        /// [`MAX_CREDENTIALS_BYTES`]. A FIFO, device or directory is refused
        /// rather than read (it could block or never end).
        ///
        /// # Errors
        /// As [`Credentials::from_json`], with the path in the message, and
        /// [`Error::Io`] naming the path when the file cannot be read, is not a
        /// regular file or is too large.
        pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
            Self::from_file_selecting(path, None)
        }

        /// As [`Credentials::from_file`], choosing the project credential as
        /// [`Credentials::from_json_selecting`] does.
        ///
        /// # Errors
        /// As [`Credentials::from_file`] and [`Credentials::from_json_selecting`].
        pub fn from_file_selecting(
            path: impl AsRef<Path>,
            credential: Option<&str>,
        ) -> Result<Self, Error> {
            let path = path.as_ref();
            let bytes = read_capped_file(path, MAX_CREDENTIALS_BYTES)
                .map_err(|e| Error::io(format!("cannot read credentials file {path:?}"), e))?;
            parse_credentials(&bytes, credential).map_err(|e| e.in_file(path))
        }

        /// Reads credentials from the environment, for CI jobs:
        ///
        /// - OAuth Server-to-Server: `IMS_CLIENT_ID`, `IMS_CLIENT_SECRET`,
        ///   `IMS_ORG_ID`, `IMS_SCOPES` (comma-separated);
        /// - JWT service account: `IMS_CLIENT_ID`, `IMS_CLIENT_SECRET`,
        ///   `IMS_ORG_ID`, `IMS_TECHNICAL_ACCOUNT_ID`, `IMS_METASCOPES`
        ///   (comma-separated) and either `IMS_PRIVATE_KEY` (the PEM text;
        ///   literal `\n` sequences are fine) or `IMS_PRIVATE_KEY_FILE`;
        /// - either: `IMS_ENDPOINT`, optional (default `ims-na1.adobelogin.com`);
        ///   `IMS_CLIENT_SECRET_FILE`, the path of a file holding the client
        ///   secret, in place of `IMS_CLIENT_SECRET` (white space around the
        ///   secret, such as a final newline, is dropped; systemd's
        ///   `LoadCredential=` gives such files).
        ///
        /// Any of the JWT-only variables makes it a service account. An empty
        /// variable counts as unset. Files are read as
        /// [`Credentials::from_file`] reads them: a FIFO or a device is
        /// refused at once, never waited on.
        ///
        /// Returns `Ok(None)` when none of these variables is set, so the
        /// caller can look elsewhere.
        ///
        /// # Errors
        /// [`Error::Config`] naming the variables that are missing (never
        /// their values), a variable that is not UTF-8, a mix of both kinds or
        /// a bad `IMS_ENDPOINT`, both `IMS_CLIENT_SECRET` and
        /// `IMS_CLIENT_SECRET_FILE` (or both `IMS_PRIVATE_KEY` and
        /// `IMS_PRIVATE_KEY_FILE`) set, or an empty secret file;
        /// [`Error::Key`] for a private key that cannot be used; [`Error::Io`]
        /// naming the path and the variable when a file cannot be read, is
        /// not a regular file or is over 1 MiB.
        pub fn from_env() -> Result<Option<Self>, Error> {
            credentials_from_vars(|name| std::env::var_os(name))
        }

        /// Replaces the endpoint (e.g. a stage IMS or a local fake) with a
        /// host or URL, as the command's `--ims` takes it (see
        /// [`Endpoint::parse`]). A local development token is already
        /// issued: it keeps its endpoint, though the text is still checked.
        ///
        /// # Errors
        /// [`Error::Config`] for a bad endpoint, as [`Endpoint::parse`] says.
        pub fn with_ims(mut self, ims: &str) -> Result<Self, Error> {
            let ims = Endpoint::parse(ims)?;
            match &mut self {
                Credentials::ServiceAccount(a) => a.ims = ims,
                Credentials::OAuth(o) => o.ims = ims,
                // Already issued: there is no exchange for the endpoint to change.
                Credentials::LocalToken(_) => {}
            }
            Ok(self)
        }

        /// Replaces the metascopes (service account) or scopes (OAuth) with a
        /// comma-separated list.
        ///
        /// # Errors
        /// [`Error::Config`] when the list is empty, or for a local
        /// development token, whose scopes are fixed.
        pub fn with_scopes(mut self, list: &str) -> Result<Self, Error> {
            let scopes = non_empty_list(split_list(list).collect(), "scopes")?;
            match &mut self {
                Credentials::ServiceAccount(a) => a.metascopes = scopes,
                Credentials::OAuth(o) => o.scopes = scopes,
                Credentials::LocalToken(_) => {
                    return Err(Error::config(
                        "a local development token is already issued: its scopes cannot be changed",
                    ))
                }
            }
            Ok(self)
        }

        /// Asks IMS for a token for this organization (OAuth
        /// Server-to-Server only): see [`OAuthCredentials::with_requested_org_id`].
        ///
        /// # Errors
        /// [`Error::Config`] when `org_id` is blank, or for credentials that
        /// are not OAuth Server-to-Server.
        pub fn with_requested_org_id(self, org_id: &str) -> Result<Self, Error> {
            match self {
                Credentials::OAuth(o) => o.with_requested_org_id(org_id).map(Credentials::OAuth),
                other => Err(other.not_oauth("an `org_id` to send to IMS")),
            }
        }

        /// Adds a `resource` field (RFC 8707; OAuth Server-to-Server only):
        /// see [`OAuthCredentials::with_resource`].
        ///
        /// # Errors
        /// [`Error::Config`] when `resource` is blank, or for credentials
        /// that are not OAuth Server-to-Server.
        pub fn with_resource(self, resource: &str) -> Result<Self, Error> {
            match self {
                Credentials::OAuth(o) => o.with_resource(resource).map(Credentials::OAuth),
                other => Err(other.not_oauth("a `resource` to send to IMS")),
            }
        }

        fn not_oauth(&self, what: &str) -> Error {
            let kind = match self {
                Credentials::ServiceAccount(_) => "a JWT service account",
                _ => "a local development token",
            };
            Error::config(format!(
                "{what} applies to OAuth Server-to-Server credentials only; these are {kind}"
            ))
        }

        /// The metascopes (service account), scopes (OAuth) or the scopes in a
        /// local development token's payload.
        pub fn scopes(&self) -> &[String] {
            match self {
                Credentials::ServiceAccount(a) => &a.metascopes,
                Credentials::OAuth(o) => &o.scopes,
                Credentials::LocalToken(t) => &t.scopes,
            }
        }

        /// The IMS endpoint of any kind (for a local development token, the
        /// production IMS, which issued it).
        pub fn ims(&self) -> &Endpoint {
            match self {
                Credentials::ServiceAccount(a) => &a.ims,
                Credentials::OAuth(o) => &o.ims,
                Credentials::LocalToken(t) => &t.ims,
            }
        }

        /// The client id of any kind (for a local development token, the one
        /// in its payload, or empty).
        pub fn client_id(&self) -> &str {
            match self {
                Credentials::ServiceAccount(a) => &a.client_id,
                Credentials::OAuth(o) => &o.client_id,
                Credentials::LocalToken(t) => &t.client_id,
            }
        }

        /// The organization id (`...@AdobeOrg`) of any kind, for Adobe APIs'
        /// `x-gw-ims-org-id` header: a service account's (always there, its
        /// JWT's `iss`), OAuth credentials' when their source gave one, and
        /// `None` for a local development token (its payload names no org).
        /// An empty id counts as none.
        pub fn org_id(&self) -> Option<&str> {
            let org = match self {
                Credentials::ServiceAccount(a) => Some(a.org_id.as_str()),
                Credentials::OAuth(o) => o.org_id.as_deref(),
                Credentials::LocalToken(_) => None,
            };
            org.filter(|id| !id.is_empty())
        }
    }

    /// Overwrites every string in parsed JSON with zeros before it is dropped:
    /// the parsed tree holds copies of the secret, the key or the token.
    pub(crate) fn wipe_json(value: &mut Value) {
        match value {
            Value::String(s) => s.zeroize(),
            Value::Array(items) => items.iter_mut().for_each(wipe_json),
            Value::Object(map) => map.values_mut().for_each(wipe_json),
            _ => {}
        }
    }

    /// Parses credentials JSON of any kind and wipes the parsed tree.
    fn parse_credentials(bytes: &[u8], credential: Option<&str>) -> Result<Credentials, Error> {
        let mut root: Value = serde_json::from_slice(without_bom(bytes))
            .map_err(|e| Error::config_from("the credentials are not valid JSON", e))?;
        let credentials = credentials_from_value(&root, credential);
        wipe_json(&mut root);
        credentials
    }

    /// Tells the kind of credentials from the fields present and reads them.
    fn credentials_from_value(
        root: &Value,
        credential: Option<&str>,
    ) -> Result<Credentials, Error> {
        let top = Fields::at(root, "")?;
        if top.obj.contains_key("project") {
            return console_project_from_json(&top.nested("project")?, credential)
                .map(Credentials::OAuth);
        }
        if let Some(wanted) = credential {
            return Err(Error::config(format!(
                "the credential `{}` was asked for, but these credentials are not an \
                 Adobe Developer Console project (no `project`)",
                excerpt(wanted.as_bytes(), &[])
            )));
        }
        let fields = match top.obj.get("integration") {
            Some(_) => top.nested("integration")?,
            None => top,
        };
        check_not_revoked(&fields)?;
        if fields.obj.contains_key("accessToken") {
            local_token_from_json(&fields).map(Credentials::LocalToken)
        } else if fields.obj.contains_key("privateKey") {
            service_account_from_json(&fields).map(Credentials::ServiceAccount)
        } else if fields.obj.contains_key("scopes") {
            oauth_from_json(&fields).map(Credentials::OAuth)
        } else {
            Err(Error::config(format!(
                "the credentials have neither `{}` (JWT service account), `{}` (OAuth \
                 Server-to-Server), `{}` (local development token) nor `project` \
                 (Adobe Developer Console project)",
                fields.path("privateKey"),
                fields.path("scopes"),
                fields.path("accessToken"),
            )))
        }
    }

    /// A JSON object and the path it sits at, for error messages.
    struct Fields<'a> {
        obj: &'a Map<String, Value>,
        prefix: String,
    }

    impl<'a> Fields<'a> {
        /// The object `value`, found at `path` (empty for the top level).
        fn at(value: &'a Value, path: &str) -> Result<Self, Error> {
            let obj = value.as_object().ok_or_else(|| {
                let path = if path.is_empty() {
                    "the top level"
                } else {
                    path
                };
                Error::config(format!("credentials field `{path}` must be a JSON object"))
            })?;
            let prefix = if path.is_empty() {
                String::new()
            } else {
                format!("{path}.")
            };
            Ok(Fields { obj, prefix })
        }

        fn path(&self, name: &str) -> String {
            format!("{}{name}", self.prefix)
        }

        fn get(&self, name: &str) -> Result<&'a Value, Error> {
            self.obj
                .get(name)
                .filter(|v| !v.is_null())
                .ok_or_else(|| Error::config(format!("credentials lack `{}`", self.path(name))))
        }

        fn string(&self, name: &str) -> Result<&'a str, Error> {
            let value = self.get(name)?;
            non_empty_str(value, &self.path(name))
        }

        fn optional_string(&self, name: &str) -> Option<String> {
            self.obj
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        }

        fn nested(&self, name: &str) -> Result<Fields<'a>, Error> {
            Fields::at(self.get(name)?, &self.path(name))
        }

        fn array(&self, name: &str) -> Result<&'a [Value], Error> {
            match self.get(name)? {
                Value::Array(items) => Ok(items),
                _ => Err(self.mistyped(name, "a JSON array")),
            }
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
                return Err(empty_field(&self.path(name)));
            }
            Ok(items)
        }

        /// The first string of an array (or a lone string); never split, as
        /// it may be a secret.
        fn first_string(&self, name: &str) -> Result<&'a str, Error> {
            match self.get(name)? {
                Value::String(_) => self.string(name),
                Value::Array(items) => match items.first() {
                    Some(first) => non_empty_str(first, &format!("{}[0]", self.path(name))),
                    None => Err(empty_field(&self.path(name))),
                },
                _ => Err(self.mistyped(name, "an array of strings")),
            }
        }

        /// The second string of an array, if it has one (checked as the
        /// first is); never split.
        fn second_string(&self, name: &str) -> Result<Option<&'a str>, Error> {
            match self.get(name)? {
                Value::Array(items) => items
                    .get(1)
                    .map(|second| non_empty_str(second, &format!("{}[1]", self.path(name))))
                    .transpose(),
                _ => Ok(None),
            }
        }

        fn mistyped(&self, name: &str, expected: &str) -> Error {
            mistyped(&self.path(name), expected)
        }
    }

    /// A string that is not blank, trimmed; `path` names it in errors.
    fn non_empty_str<'a>(value: &'a Value, path: &str) -> Result<&'a str, Error> {
        let text = value.as_str().ok_or_else(|| mistyped(path, "a string"))?;
        if text.trim().is_empty() {
            return Err(empty_field(path));
        }
        Ok(text.trim())
    }

    fn mistyped(path: &str, expected: &str) -> Error {
        Error::config(format!("credentials field `{path}` must be {expected}"))
    }

    fn empty_field(path: &str) -> Error {
        Error::config(format!("credentials field `{path}` is empty"))
    }

    /// The AEM Developer Console API marks revoked credentials; IMS would
    /// refuse them with a less helpful reason.
    fn check_not_revoked(f: &Fields<'_>) -> Result<(), Error> {
        match f.obj.get("revoked") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(()),
            Some(Value::Bool(true)) => Err(Error::config(format!(
                "these credentials were revoked in the AEM Developer Console (`{}` is true); \
                 create new ones there",
                f.path("revoked")
            ))),
            Some(_) => Err(f.mistyped("revoked", "true or false")),
        }
    }

    /// `technicalAccount.clientSecret`; when it is missing next to a
    /// `secretId` (the AEM Developer Console API's reply), says that the id
    /// is not the secret.
    fn aem_client_secret(f: &Fields<'_>, account: &Fields<'_>) -> Result<ClientSecret, Error> {
        if !account.obj.contains_key("clientSecret") && f.obj.contains_key("secretId") {
            return Err(Error::config(format!(
                "credentials lack `{}`; `{}` is only the secret's id (the AEM Developer \
                 Console shows the secret once, when it is created)",
                account.path("clientSecret"),
                f.path("secretId")
            )));
        }
        account.string("clientSecret").map(ClientSecret::new)
    }

    fn service_account_from_json(f: &Fields<'_>) -> Result<ServiceAccount, Error> {
        let account = f.nested("technicalAccount")?;
        let key_path = f.path("privateKey");
        let private_key =
            PrivateKey::from_pem(f.string("privateKey")?).map_err(|e| e.at_field(&key_path))?;
        Ok(ServiceAccount {
            ims: Endpoint::parse(f.string("imsEndpoint")?)?,
            client_id: account.string("clientId")?.to_owned(),
            client_secret: aem_client_secret(f, &account)?,
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
            secrets: ClientSecrets::new(aem_client_secret(f, &account)?, None),
            scopes: f.list("scopes")?,
            org_id: f.optional_string("org"),
            technical_account_id: f.optional_string("id"),
            requested_org_id: None,
            resources: Vec::new(),
            project: None,
        })
    }

    const SERVER_TO_SERVER: &str = "oauth_server_to_server";

    /// One entry of `project.workspace.details.credentials`.
    struct ConsoleEntry<'a> {
        fields: Fields<'a>,
        id: String,
        name: String,
        kind: &'a str,
    }

    impl<'a> ConsoleEntry<'a> {
        fn read(value: &'a Value, path: String) -> Result<Self, Error> {
            let fields = Fields::at(value, &path)?;
            let id = match fields.obj.get("id") {
                Some(Value::String(s)) => s.trim().to_owned(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let name = fields.optional_string("name").unwrap_or_default();
            // Adobe's downloads always say; an entry without it is judged by
            // the object it carries.
            let kind = match fields.obj.get("integration_type").and_then(Value::as_str) {
                Some(kind) => kind,
                None if fields.obj.contains_key(SERVER_TO_SERVER) => SERVER_TO_SERVER,
                None if fields.obj.contains_key("jwt") => "service",
                None => "",
            };
            Ok(ConsoleEntry {
                fields,
                id,
                name,
                kind,
            })
        }

        /// `` `name` (id 123, oauthwebapp) ``, printable whatever the file holds.
        fn label(&self) -> String {
            let kind = if self.kind.is_empty() {
                "no integration_type"
            } else {
                self.kind
            };
            format!(
                "`{}` (id {}, {})",
                excerpt(self.name.as_bytes(), &[]),
                excerpt(self.id.as_bytes(), &[]),
                excerpt(kind.as_bytes(), &[])
            )
        }

        fn path(&self) -> String {
            self.fields.prefix.trim_end_matches('.').to_owned()
        }

        /// Only OAuth Server-to-Server gives a server a token on its own.
        fn check_server_to_server(&self) -> Result<(), Error> {
            let what = match self.kind {
                SERVER_TO_SERVER => return Ok(()),
                "service" | "jwt" => "a JWT service account: Adobe ended JWT credentials (none \
                     new since 2025-06-30; existing ones stopped working at their certificate's \
                     expiry or on 2026-03-01); migrate it to OAuth Server-to-Server in the Adobe \
                     Developer Console and download the project JSON again"
                    .to_owned(),
                kind if kind.starts_with("oauth") => "an OAuth user-login credential: it \
                     needs a person to sign in; add an OAuth Server-to-Server credential to the \
                     project for a server"
                    .to_owned(),
                _ => "not an OAuth Server-to-Server credential; add one to the project".to_owned(),
            };
            Err(Error::config(format!(
                "the credential {} at `{}` is {what}",
                self.label(),
                self.path()
            )))
        }
    }

    fn console_project_from_json(
        project: &Fields<'_>,
        credential: Option<&str>,
    ) -> Result<OAuthCredentials, Error> {
        let org_id = project.nested("org")?.string("ims_org_id")?.to_owned();
        let workspace = project.nested("workspace")?;
        let details = workspace.nested("details")?;
        let list_path = details.path("credentials");
        let entries = details
            .array("credentials")?
            .iter()
            .enumerate()
            .map(|(i, v)| ConsoleEntry::read(v, format!("{list_path}[{i}]")))
            .collect::<Result<Vec<_>, Error>>()?;
        let entry = select_console_entry(&entries, credential, &list_path)?;
        entry.check_server_to_server()?;
        let s2s = entry.fields.nested(SERVER_TO_SERVER)?;
        Ok(OAuthCredentials {
            ims: default_endpoint(),
            client_id: s2s.string("client_id")?.to_owned(),
            secrets: ClientSecrets::new(
                ClientSecret::new(s2s.first_string("client_secrets")?),
                s2s.second_string("client_secrets")?.map(ClientSecret::new),
            ),
            scopes: s2s.list("scopes")?,
            org_id: Some(org_id),
            technical_account_id: s2s.optional_string("technical_account_id"),
            requested_org_id: None,
            resources: Vec::new(),
            project: Some(ConsoleProject {
                name: display_name(project),
                workspace: display_name(&workspace),
                credential: entry.name.clone(),
                credential_id: entry.id.clone(),
            }),
        })
    }

    /// The entry asked for by id or name, else the only OAuth
    /// Server-to-Server one; errors list what there is to choose from.
    fn select_console_entry<'e, 'a>(
        entries: &'e [ConsoleEntry<'a>],
        credential: Option<&str>,
        list_path: &str,
    ) -> Result<&'e ConsoleEntry<'a>, Error> {
        let everything: Vec<&ConsoleEntry<'_>> = entries.iter().collect();
        if let Some(wanted) = credential.map(str::trim) {
            if wanted.is_empty() {
                return Err(Error::config(
                    "the credential to use is given but empty: give its name or id",
                ));
            }
            if let Some(entry) = entries.iter().find(|e| !e.id.is_empty() && e.id == wanted) {
                return Ok(entry);
            }
            let named: Vec<&ConsoleEntry<'_>> =
                entries.iter().filter(|e| e.name == wanted).collect();
            return match named[..] {
                [one] => Ok(one),
                [] => Err(Error::config(format!(
                    "the project has no credential named or with id `{}`; it has: {}",
                    excerpt(wanted.as_bytes(), &[]),
                    or_none(labels(&everything))
                ))),
                _ => Err(Error::config(format!(
                    "several credentials of the project are named `{}`; choose one by id: {}",
                    excerpt(wanted.as_bytes(), &[]),
                    labels(&named)
                ))),
            };
        }
        let s2s: Vec<&ConsoleEntry<'_>> = entries
            .iter()
            .filter(|e| e.kind == SERVER_TO_SERVER)
            .collect();
        match (&s2s[..], entries) {
            ([one], _) => Ok(one),
            ([], []) => Err(Error::config(format!(
                "credentials field `{list_path}` is empty: the project has no credential; \
                 add an OAuth Server-to-Server credential in the Adobe Developer Console"
            ))),
            // Its own error says what it is and what to do.
            ([], [only]) => Ok(only),
            ([], _) => Err(Error::config(format!(
                "the project has no OAuth Server-to-Server credential; it has: {}",
                labels(&everything)
            ))),
            _ => Err(Error::config(format!(
                "the project has several OAuth Server-to-Server credentials: {}; choose one \
                 by name or id (`--credential` on the command line)",
                labels(&s2s)
            ))),
        }
    }

    /// The entries' labels, comma-separated; a long list is cut short.
    fn labels(of: &[&ConsoleEntry<'_>]) -> String {
        const MAX_LISTED: usize = 20;
        let mut text: Vec<String> = of.iter().take(MAX_LISTED).map(|e| e.label()).collect();
        if of.len() > MAX_LISTED {
            text.push(format!("and {} more", of.len() - MAX_LISTED));
        }
        text.join(", ")
    }

    fn or_none(list: String) -> String {
        if list.is_empty() {
            "no credentials".to_owned()
        } else {
            list
        }
    }

    /// A project's or workspace's `name`, else its `title`, printable.
    fn display_name(f: &Fields<'_>) -> String {
        let name = f
            .optional_string("name")
            .filter(|n| !n.trim().is_empty())
            .or_else(|| f.optional_string("title"))
            .unwrap_or_default();
        excerpt(name.as_bytes(), &[])
    }

    fn local_token_from_json(f: &Fields<'_>) -> Result<LocalToken, Error> {
        let token = f.string("accessToken")?;
        if !is_visible_ascii(token) {
            return Err(Error::config(format!(
                "credentials field `{}` is not a token: it holds spaces, control characters \
                 or other characters that are not visible ASCII",
                f.path("accessToken")
            )));
        }
        // Whatever its payload says or lacks, the token is handed out as it
        // is: IMS judges it.
        let claims = token_payload(token).ok();
        let client_id = claims
            .as_ref()
            .and_then(|c| c.get("client_id"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(LocalToken {
            token: Secret(token.to_owned()),
            expires_at: claims.as_ref().and_then(payload_expiry),
            client_id: client_id.to_owned(),
            scopes: claims.as_ref().map(payload_scopes).unwrap_or_default(),
            ims: default_endpoint(),
        })
    }

    const ENV_CLIENT_ID: &str = "IMS_CLIENT_ID";

    const ENV_CLIENT_SECRET: &str = "IMS_CLIENT_SECRET";

    const ENV_CLIENT_SECRET_FILE: &str = "IMS_CLIENT_SECRET_FILE";

    /// Either, in the list of what is missing.
    const ENV_CLIENT_SECRET_EITHER: &str = "IMS_CLIENT_SECRET or IMS_CLIENT_SECRET_FILE";

    const ENV_ORG_ID: &str = "IMS_ORG_ID";

    const ENV_SCOPES: &str = "IMS_SCOPES";

    const ENV_ENDPOINT: &str = "IMS_ENDPOINT";

    const ENV_PRIVATE_KEY: &str = "IMS_PRIVATE_KEY";

    const ENV_PRIVATE_KEY_FILE: &str = "IMS_PRIVATE_KEY_FILE";

    const ENV_TECHNICAL_ACCOUNT_ID: &str = "IMS_TECHNICAL_ACCOUNT_ID";

    const ENV_METASCOPES: &str = "IMS_METASCOPES";

    /// The variables only a JWT service account has.
    const ENV_JWT_ONLY: [&str; 4] = [
        ENV_PRIVATE_KEY,
        ENV_PRIVATE_KEY_FILE,
        ENV_TECHNICAL_ACCOUNT_ID,
        ENV_METASCOPES,
    ];

    /// The credentials variables that are set and not blank. Values are
    /// wiped on drop and never quoted.
    struct EnvVars(Vec<(&'static str, Secret)>);

    impl EnvVars {
        fn read(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Self, Error> {
            let names = [
                ENV_CLIENT_ID,
                ENV_CLIENT_SECRET,
                ENV_CLIENT_SECRET_FILE,
                ENV_ORG_ID,
                ENV_SCOPES,
                ENV_ENDPOINT,
            ]
            .into_iter()
            .chain(ENV_JWT_ONLY);
            let mut set = Vec::new();
            for name in names {
                let Some(value) = lookup(name) else { continue };
                let value = value
                    .into_string()
                    .map(Secret)
                    .map_err(|_| Error::config(format!("${name} is not valid UTF-8")))?;
                if !value.0.trim().is_empty() {
                    set.push((name, value));
                }
            }
            Ok(EnvVars(set))
        }

        fn get(&self, name: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.0.trim())
        }

        fn is_set(&self, name: &str) -> bool {
            self.get(name).is_some()
        }

        /// Checks that all of `names` are set, naming the missing ones.
        fn require(&self, names: &[&str], kind: &str) -> Result<(), Error> {
            let missing: Vec<String> = names
                .iter()
                .filter(|n| !n.split(" or ").any(|one| self.is_set(one)))
                .map(|n| n.replace(" or ", " or $"))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            Err(Error::config(format!(
                "the environment holds part of {kind} credentials: set ${}",
                missing.join(", $")
            )))
        }

        fn value(&self, name: &str) -> Result<&str, Error> {
            self.get(name)
                .ok_or_else(|| Error::config(format!("${name} is not set")))
        }

        /// `IMS_ENDPOINT`, checked, or the production IMS.
        fn endpoint(&self) -> Result<String, Error> {
            let ims = self.get(ENV_ENDPOINT).unwrap_or(DEFAULT_IMS);
            Endpoint::parse(ims).map_err(|e| e.prefixed(format_args!("${ENV_ENDPOINT}")))?;
            Ok(ims.to_owned())
        }
    }

    /// [`Credentials::from_env`] with the variables looked up by `lookup`.
    fn credentials_from_vars(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Option<Credentials>, Error> {
        let env = EnvVars::read(lookup)?;
        if env.0.is_empty() {
            return Ok(None);
        }
        let jwt = ENV_JWT_ONLY.iter().any(|name| env.is_set(name));
        if jwt && env.is_set(ENV_SCOPES) {
            return Err(Error::config(format!(
                "the environment mixes OAuth Server-to-Server (${ENV_SCOPES}) and JWT service \
                 account (${}) variables; unset one kind",
                ENV_JWT_ONLY
                    .iter()
                    .filter(|n| env.is_set(n))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", $")
            )));
        }
        let credentials = if jwt {
            Credentials::ServiceAccount(service_account_from_env(&env)?)
        } else {
            Credentials::OAuth(oauth_from_env(&env)?)
        };
        Ok(Some(credentials))
    }

    fn oauth_from_env(env: &EnvVars) -> Result<OAuthCredentials, Error> {
        env.require(
            &[
                ENV_CLIENT_ID,
                ENV_CLIENT_SECRET_EITHER,
                ENV_ORG_ID,
                ENV_SCOPES,
            ],
            "OAuth Server-to-Server",
        )?;
        OAuthCredentials::builder()
            .ims(env.endpoint()?)
            .client_id(env.value(ENV_CLIENT_ID)?)
            .client_secret(client_secret_from_env(env)?)
            .org_id(env.value(ENV_ORG_ID)?)
            .scopes(env.value(ENV_SCOPES)?)
            .build()
            .map_err(|e| e.prefixed(format_args!("${ENV_SCOPES}")))
    }

    fn service_account_from_env(env: &EnvVars) -> Result<ServiceAccount, Error> {
        env.require(
            &[
                ENV_CLIENT_ID,
                ENV_CLIENT_SECRET_EITHER,
                ENV_ORG_ID,
                ENV_TECHNICAL_ACCOUNT_ID,
                ENV_METASCOPES,
                "IMS_PRIVATE_KEY or IMS_PRIVATE_KEY_FILE",
            ],
            "JWT service account",
        )?;
        ServiceAccount::builder()
            .ims(env.endpoint()?)
            .client_id(env.value(ENV_CLIENT_ID)?)
            .client_secret(client_secret_from_env(env)?)
            .org_id(env.value(ENV_ORG_ID)?)
            .technical_account_id(env.value(ENV_TECHNICAL_ACCOUNT_ID)?)
            .private_key(private_key_from_env(env)?)
            .metascopes(env.value(ENV_METASCOPES)?)
            .build()
            .map_err(|e| e.prefixed(format_args!("${ENV_METASCOPES}")))
    }

    fn private_key_from_env(env: &EnvVars) -> Result<PrivateKey, Error> {
        match value_or_file(env, ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_FILE, "private key")? {
            FromEnv::Value(pem) => PrivateKey::from_pem(pem)
                .map_err(|e| e.prefixed(format_args!("${ENV_PRIVATE_KEY}"))),
            FromEnv::File(path, bytes) => {
                let pem = std::str::from_utf8(&bytes)
                    .map_err(|_| Error::key("the private key file is not text (PEM)"))
                    .and_then(PrivateKey::from_pem);
                pem.map_err(|e| e.in_file(path))
            }
        }
    }

    /// `IMS_CLIENT_SECRET`, or the file `IMS_CLIENT_SECRET_FILE` names
    /// (white space around the secret, such as a final newline, is dropped).
    fn client_secret_from_env(env: &EnvVars) -> Result<ClientSecret, Error> {
        match value_or_file(
            env,
            ENV_CLIENT_SECRET,
            ENV_CLIENT_SECRET_FILE,
            "client secret",
        )? {
            FromEnv::Value(secret) => Ok(ClientSecret::new(secret)),
            FromEnv::File(path, bytes) => {
                let secret = std::str::from_utf8(&bytes)
                    .map(str::trim)
                    .map_err(|_| Error::config("the client secret file is not UTF-8 text"))
                    .and_then(|s| match s {
                        "" => Err(Error::config("the client secret file is empty")),
                        s => Ok(ClientSecret::new(s)),
                    });
                secret.map_err(|e| e.in_file(path))
            }
        }
    }

    /// A value given in a variable, or in the file that another one names.
    enum FromEnv<'e> {
        Value(&'e str),
        /// The file's path and contents (wiped on drop).
        File(&'e Path, zeroize::Zeroizing<Vec<u8>>),
    }

    /// The value of `var`, or the contents of the file `file_var` names, read
    /// as the credentials files are (a regular file of at most
    /// [`MAX_CREDENTIALS_BYTES`], opened without blocking: a FIFO or a device
    /// is refused at once); `what` names the value in errors. Exactly one of
    /// the two must be set.
    fn value_or_file<'e>(
        env: &'e EnvVars,
        var: &str,
        file_var: &str,
        what: &str,
    ) -> Result<FromEnv<'e>, Error> {
        match (env.get(var), env.get(file_var)) {
            (Some(value), None) => Ok(FromEnv::Value(value)),
            (None, Some(path)) => {
                let path = Path::new(path);
                let bytes = read_capped_file(path, MAX_CREDENTIALS_BYTES).map_err(|e| {
                    Error::io(
                        format!("cannot read the {what} file {path:?} (${file_var})"),
                        e,
                    )
                })?;
                Ok(FromEnv::File(path, bytes))
            }
            _ => Err(Error::config(format!(
                "set only one of ${var} and ${file_var}"
            ))),
        }
    }

    #[cfg(test)]
    mod tests {
        use std::error::Error as _;

        use super::*;

        const ENV_SECRET: &str = "p8e-ENV-secret-&=+/ value";

        fn vars(pairs: &[(&str, &str)]) -> Result<Option<Credentials>, Error> {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            credentials_from_vars(move |name| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            })
        }

        fn oauth_vars() -> Vec<(&'static str, &'static str)> {
            vec![
                ("IMS_CLIENT_ID", "env-client"),
                ("IMS_CLIENT_SECRET", ENV_SECRET),
                ("IMS_ORG_ID", "ENVORG@AdobeOrg"),
                ("IMS_SCOPES", "openid, AdobeID,,read_organizations"),
            ]
        }

        fn sample_pem() -> &'static str {
            include_str!("../tests/fixtures/sample-key.pkcs8.pem")
        }

        fn jwt_vars(pem: &'static str) -> Vec<(&'static str, &'static str)> {
            vec![
                ("IMS_CLIENT_ID", "env-client"),
                ("IMS_CLIENT_SECRET", ENV_SECRET),
                ("IMS_ORG_ID", "ENVORG@AdobeOrg"),
                ("IMS_TECHNICAL_ACCOUNT_ID", "ENVTECH@techacct.adobe.com"),
                ("IMS_METASCOPES", "ent_aem_cloud_api"),
                ("IMS_PRIVATE_KEY", pem),
            ]
        }

        /// A config error whose text shows no value of `pairs`; its message.
        fn env_error(pairs: &[(&str, &str)]) -> String {
            let e = vars(pairs).unwrap_err();
            assert!(e.is_config(), "{e:?}");
            let text = format!("{e} {e:?}");
            for (_, value) in pairs {
                assert!(value.len() < 4 || !text.contains(value), "{text}");
            }
            e.to_string()
        }

        #[test]
        fn env_credentials_know_their_org() {
            for pairs in [oauth_vars(), jwt_vars(sample_pem())] {
                let credentials = vars(&pairs).unwrap().unwrap();
                assert_eq!(credentials.org_id(), Some("ENVORG@AdobeOrg"));
            }
        }

        #[test]
        fn env_oauth_credentials() {
            let Some(Credentials::OAuth(o)) = vars(&oauth_vars()).unwrap() else {
                panic!("not OAuth")
            };
            assert_eq!(o.client_id(), "env-client");
            assert_eq!(o.client_secret().secret(), ENV_SECRET);
            assert_eq!(o.org_id(), Some("ENVORG@AdobeOrg"));
            assert_eq!(o.scopes(), ["openid", "AdobeID", "read_organizations"]);
            assert_eq!(o.ims().host(), DEFAULT_IMS);
            assert!(!format!("{o:?}").contains(ENV_SECRET));
            let mut with_endpoint = oauth_vars();
            with_endpoint.push(("IMS_ENDPOINT", "https://ims-na1-stg1.adobelogin.com"));
            let c = vars(&with_endpoint).unwrap().unwrap();
            assert_eq!(c.ims().host(), "ims-na1-stg1.adobelogin.com");
        }

        #[test]
        fn env_service_account_with_a_pem_or_literal_newlines() {
            let one_line: &'static str =
                Box::leak(sample_pem().replace('\n', "\\n").into_boxed_str());
            for pem in [sample_pem(), one_line] {
                let Some(Credentials::ServiceAccount(a)) = vars(&jwt_vars(pem)).unwrap() else {
                    panic!("not a service account")
                };
                assert_eq!(a.technical_account_id(), "ENVTECH@techacct.adobe.com");
                assert_eq!(a.org_id(), "ENVORG@AdobeOrg");
                assert_eq!(a.metascopes(), ["ent_aem_cloud_api"]);
                assert_eq!(a.private_key().bits(), 2048);
            }
        }

        #[test]
        fn env_service_account_with_a_key_file() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/sample-key.pkcs1.pem"
            );
            let mut pairs = jwt_vars("");
            pairs.retain(|(k, _)| *k != "IMS_PRIVATE_KEY");
            pairs.push(("IMS_PRIVATE_KEY_FILE", path));
            assert!(matches!(
                vars(&pairs),
                Ok(Some(Credentials::ServiceAccount(_)))
            ));
            pairs.pop();
            pairs.push(("IMS_PRIVATE_KEY_FILE", "/no/such/key.pem"));
            let e = vars(&pairs).unwrap_err();
            assert!(matches!(e, Error::Io { .. }), "{e:?}");
            assert!(e.to_string().contains("/no/such/key.pem"), "{e}");
            assert!(e.to_string().contains("$IMS_PRIVATE_KEY_FILE"), "{e}");
            pairs.pop();
            pairs.push(("IMS_PRIVATE_KEY_FILE", "/dev/null"));
            let e = vars(&pairs).unwrap_err();
            let source = e.source().map(|s| s.to_string()).unwrap_or_default();
            assert!(e.to_string().contains("/dev/null"), "{e}");
            assert_eq!(source, "not a regular file (a device)");
            assert!(!format!("{e:?}").contains(ENV_SECRET));
        }

        #[test]
        fn env_half_set_names_the_missing_variables_only() {
            let m = env_error(&[
                ("IMS_CLIENT_ID", "env-client"),
                ("IMS_CLIENT_SECRET", ENV_SECRET),
            ]);
            assert!(m.contains("OAuth Server-to-Server"), "{m}");
            assert!(
                m.contains("$IMS_ORG_ID") && m.contains("$IMS_SCOPES"),
                "{m}"
            );
            assert!(
                !m.contains("$IMS_CLIENT_ID") && !m.contains("$IMS_CLIENT_SECRET"),
                "{m}"
            );
            let m = env_error(&[("IMS_METASCOPES", "ent_aem_cloud_api")]);
            assert!(m.contains("JWT service account"), "{m}");
            for name in [
                "$IMS_CLIENT_ID",
                "$IMS_CLIENT_SECRET",
                "$IMS_ORG_ID",
                "$IMS_TECHNICAL_ACCOUNT_ID",
                "$IMS_PRIVATE_KEY or $IMS_PRIVATE_KEY_FILE",
            ] {
                assert!(m.contains(name), "lacks {name}: {m}");
            }
            // Blank counts as unset.
            let mut blank = oauth_vars();
            blank[1] = ("IMS_CLIENT_SECRET", "  ");
            assert!(env_error(&blank).contains("$IMS_CLIENT_SECRET"));
        }

        #[test]
        fn env_mistakes_are_named_without_values() {
            let mut mixed = jwt_vars(sample_pem());
            mixed.push(("IMS_SCOPES", "openid"));
            assert!(env_error(&mixed).contains("mixes"));
            let mut both = jwt_vars(sample_pem());
            both.push(("IMS_PRIVATE_KEY_FILE", "/etc/key.pem"));
            assert!(env_error(&both).contains("only one of"));
            let mut bad_key = jwt_vars(
                "-----BEGIN PRIVATE KEY-----\nnot base64 p8e-KEYTEXT\n-----END PRIVATE KEY-----",
            );
            bad_key.truncate(6);
            let m = env_error(&bad_key);
            assert!(m.starts_with("$IMS_PRIVATE_KEY: "), "{m}");
            let mut endpoint = oauth_vars();
            endpoint.push(("IMS_ENDPOINT", "http://ims.example.com/p8e-PATH"));
            assert!(env_error(&endpoint).starts_with("$IMS_ENDPOINT: "));
            let mut no_scopes = oauth_vars();
            no_scopes[3] = ("IMS_SCOPES", " , ,");
            assert!(env_error(&no_scopes).contains("$IMS_SCOPES"));
        }

        #[test]
        fn env_nothing_set_is_none_and_non_utf8_is_named() {
            assert!(vars(&[]).unwrap().is_none());
            assert!(vars(&[("IMS_CLIENT_ID", ""), ("OTHER", "x")])
                .unwrap()
                .is_none());
            use std::os::unix::ffi::OsStringExt as _;
            let e = credentials_from_vars(|name| {
                (name == "IMS_CLIENT_SECRET")
                    .then(|| std::ffi::OsString::from_vec(vec![0xff, b's']))
            })
            .unwrap_err();
            assert_eq!(e.to_string(), "$IMS_CLIENT_SECRET is not valid UTF-8");
        }

        /// A temp dir for one test, removed at its end.
        struct Dir(std::path::PathBuf);

        impl Dir {
            fn new(tag: &str) -> Dir {
                let name = format!("ims-token-lib-{tag}-{}", std::process::id());
                let dir = std::env::temp_dir().join(name);
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                Dir(dir)
            }
            fn path(&self, name: &str) -> String {
                self.0.join(name).to_str().unwrap().to_owned()
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }

        /// `oauth_vars` (or the JWT ones) with the secret in a file instead.
        fn secret_file_vars(jwt: bool, path: &str) -> Vec<(&str, &str)> {
            let mut pairs = if jwt {
                jwt_vars(sample_pem())
            } else {
                oauth_vars()
            };
            pairs.retain(|(k, _)| *k != "IMS_CLIENT_SECRET");
            pairs.push(("IMS_CLIENT_SECRET_FILE", path));
            pairs
        }

        #[test]
        fn env_client_secret_from_a_file() {
            let dir = Dir::new("secret-file");
            let file = dir.path("secret");
            std::fs::write(&file, format!("{ENV_SECRET}\n")).unwrap();
            let Some(Credentials::OAuth(o)) = vars(&secret_file_vars(false, &file)).unwrap() else {
                panic!("not OAuth")
            };
            assert_eq!(o.client_secret().secret(), ENV_SECRET);
            let Some(Credentials::ServiceAccount(a)) =
                vars(&secret_file_vars(true, &file)).unwrap()
            else {
                panic!("not a service account")
            };
            assert_eq!(a.client_secret().secret(), ENV_SECRET);
            // A file alone is half of the credentials, like the variable.
            let m = env_error(&[("IMS_CLIENT_SECRET_FILE", &file)]);
            assert!(
                m.contains("$IMS_CLIENT_ID") && !m.contains("$IMS_CLIENT_SECRET"),
                "{m}"
            );
        }

        #[test]
        fn env_client_secret_file_mistakes_are_named() {
            let dir = Dir::new("secret-file-bad");
            let fifo = dir.path("fifo");
            let made = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap();
            assert!(made.success());
            let missing = dir.path("missing");
            for (path, cause) in [
                (fifo.as_str(), "not a regular file (a FIFO)"),
                ("/dev/null", "not a regular file (a device)"),
                (missing.as_str(), "No such file"),
            ] {
                let e = vars(&secret_file_vars(false, path)).unwrap_err();
                assert!(matches!(e, Error::Io { .. }) && e.is_config(), "{e:?}");
                let m = e.to_string();
                assert_eq!(
                    m,
                    format!(
                        "cannot read the client secret file {path:?} ($IMS_CLIENT_SECRET_FILE)"
                    )
                );
                let source = e.source().map(|s| s.to_string()).unwrap_or_default();
                assert!(source.contains(cause), "{source}");
            }
            // The path is named, the secret never.
            let config_error = |pairs: &[(&str, &str)]| {
                let e = vars(pairs).unwrap_err();
                assert!(matches!(e, Error::Config { .. }), "{e:?}");
                assert!(!format!("{e} {e:?}").contains(ENV_SECRET), "{e:?}");
                e.to_string()
            };
            let empty = dir.path("empty");
            std::fs::write(&empty, " \n").unwrap();
            let m = config_error(&secret_file_vars(false, &empty));
            assert_eq!(m, format!("{empty:?}: the client secret file is empty"));
            std::fs::write(&empty, [0xff, 0xfe]).unwrap();
            assert!(config_error(&secret_file_vars(false, &empty)).contains("not UTF-8"));
            let mut both = secret_file_vars(false, &empty);
            both.push(("IMS_CLIENT_SECRET", ENV_SECRET));
            assert_eq!(
                config_error(&both),
                "set only one of $IMS_CLIENT_SECRET and $IMS_CLIENT_SECRET_FILE"
            );
        }

        fn project_with_secrets(secrets: Value) -> String {
            serde_json::json!({"project": {
                "org": {"ims_org_id": "ORG@AdobeOrg"},
                "workspace": {"details": {"credentials": [{
                    "id": "1", "name": "s2s", "integration_type": "oauth_server_to_server",
                    "oauth_server_to_server": {
                        "client_id": "c", "client_secrets": secrets, "scopes": ["openid"],
                    },
                }]}},
            }})
            .to_string()
        }

        fn oauth_of(text: &str) -> Result<OAuthCredentials, Error> {
            match Credentials::from_json(text)? {
                Credentials::OAuth(o) => Ok(o),
                other => panic!("not OAuth: {other:?}"),
            }
        }

        #[test]
        fn a_project_gives_both_client_secrets() {
            let o = oauth_of(&project_with_secrets(serde_json::json!([
                "old", "new", "x"
            ])))
            .unwrap();
            assert_eq!(o.client_secret().secret(), "old");
            assert_eq!(
                o.second_client_secret().map(ClientSecret::secret),
                Some("new")
            );
            let one = oauth_of(&project_with_secrets(serde_json::json!(["only"]))).unwrap();
            assert!(one.second_client_secret().is_none());
            let alone = oauth_of(&project_with_secrets(serde_json::json!("alone"))).unwrap();
            assert!(alone.second_client_secret().is_none());
            for bad in [
                serde_json::json!(["old", 7]),
                serde_json::json!(["old", " "]),
            ] {
                let m = oauth_of(&project_with_secrets(bad))
                    .unwrap_err()
                    .to_string();
                assert!(
                    m.contains("oauth_server_to_server.client_secrets[1]`"),
                    "{m}"
                );
                assert!(!m.contains("old"), "{m}");
            }
        }

        #[test]
        fn the_secret_that_worked_is_tried_first_by_every_clone() {
            let secrets = ClientSecrets::new(ClientSecret::new("a"), Some(ClientSecret::new("b")));
            let order = |s: &ClientSecrets| -> Vec<(usize, String)> {
                s.in_order()
                    .into_iter()
                    .map(|(i, s)| (i, s.secret().to_owned()))
                    .collect()
            };
            assert_eq!(order(&secrets), [(1, "a".into()), (2, "b".into())]);
            let clone = secrets.clone();
            clone.worked(2);
            assert_eq!(order(&secrets), [(2, "b".into()), (1, "a".into())]);
            secrets.worked(1);
            assert_eq!(order(&clone), [(1, "a".into()), (2, "b".into())]);
            let one = ClientSecrets::new(ClientSecret::new("a"), None);
            one.worked(2);
            assert_eq!(order(&one), [(1, "a".into())]);
            assert!(!format!("{secrets:?}").contains("\"a\""));
        }

        #[test]
        fn org_id_and_resources_are_sent_only_when_asked_for() {
            let base = || {
                OAuthCredentials::builder()
                    .client_id("c")
                    .client_secret(ClientSecret::new("s"))
                    .scopes("openid")
                    .org_id("HEADERS@AdobeOrg")
            };
            let plain = base().build().unwrap();
            assert_eq!(
                (plain.requested_org_id(), plain.resources().len()),
                (None, 0)
            );
            let asked = base()
                .requested_org_id(" OTHER@AdobeOrg ")
                .resource("https://a.example/")
                .resource("urn:b")
                .build()
                .unwrap();
            assert_eq!(asked.requested_org_id(), Some("OTHER@AdobeOrg"));
            assert_eq!(asked.org_id(), Some("HEADERS@AdobeOrg"));
            assert_eq!(asked.resources(), ["https://a.example/", "urn:b"]);
            let blank = base().resource("  ").build().unwrap_err();
            assert_eq!(blank.to_string(), "the `resource` to send to IMS is empty");
            let blank = plain.clone().with_requested_org_id("").unwrap_err();
            assert_eq!(blank.to_string(), "the `org_id` to send to IMS is empty");
            let c = Credentials::OAuth(plain)
                .with_requested_org_id("O@AdobeOrg")
                .unwrap();
            let c = c.with_resource("urn:x").unwrap();
            let Credentials::OAuth(o) = &c else { panic!() };
            assert_eq!(
                (o.requested_org_id(), o.resources()),
                (Some("O@AdobeOrg"), &["urn:x".to_owned()][..])
            );
            let Some(jwt) = vars(&jwt_vars(sample_pem())).unwrap() else {
                panic!()
            };
            let m = jwt
                .clone()
                .with_requested_org_id("O@AdobeOrg")
                .unwrap_err()
                .to_string();
            assert_eq!(
                m,
                "an `org_id` to send to IMS applies to OAuth Server-to-Server credentials only; \
                 these are a JWT service account"
            );
            assert!(jwt.with_resource("urn:x").unwrap_err().is_config());
        }
    }
}

// ---------------------------------------------------------------------------
// Pure steps: sign, build the form, parse the reply.
mod exchange {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use base64::Engine as _;
    use serde_json::{Map, Value};

    use crate::credentials::wipe_json;
    use crate::introspect::whole_number;
    use crate::secret::{Secret, REDACTED};
    use crate::text::{is_visible_ascii, json_unescaped, percent_decoded, printable_line};
    use crate::token::{IMS_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME};
    use crate::{
        AccessToken, ClientSecret, Error, ImsError, OAuthCredentials, ServiceAccount, SignedJwt,
    };

    /// Default lifetime of a signed JWT (Adobe's tools use 3 to 5 minutes).
    pub const DEFAULT_JWT_LIFETIME: Duration = Duration::from_secs(300);

    /// Longest JWT lifetime IMS accepts.
    pub const MAX_JWT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

    const MAX_EXCERPT_CHARS: usize = 200;

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

    pub(crate) fn check_lifetime(lifetime: Duration) -> Result<(), Error> {
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
    pub(crate) fn jwt_exchange_form<'a>(
        account: &'a ServiceAccount,
        jwt: &'a SignedJwt,
    ) -> [(&'a str, &'a str); 3] {
        [
            ("client_id", &account.client_id),
            ("client_secret", account.client_secret.secret()),
            ("jwt_token", jwt.secret()),
        ]
    }

    /// The form fields of the client-credentials grant, in order: `org_id`
    /// and `resource` only when asked for. The secret (one of the
    /// credentials') and the scope list are passed in because the form only
    /// borrows.
    pub(crate) fn oauth_form<'a>(
        oauth: &'a OAuthCredentials,
        secret: &'a ClientSecret,
        scope: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", oauth.client_id.as_str()),
            ("client_secret", secret.secret()),
            ("scope", scope),
        ];
        if let Some(org) = &oauth.requested_org_id {
            form.push(("org_id", org));
        }
        form.extend(oauth.resources.iter().map(|r| ("resource", r.as_str())));
        form
    }

    /// The form fields of `/ims/validate_token/v1`, in order.
    pub(crate) fn validation_form<'a>(
        client_id: &'a str,
        token: &'a str,
    ) -> [(&'a str, &'a str); 3] {
        [
            ("type", "access_token"),
            ("client_id", client_id),
            ("token", token),
        ]
    }

    /// The form fields of `/ims/invalidate_token/v2`, in order.
    pub(crate) fn revocation_form<'a>(
        client_id: &'a str,
        secret: &'a ClientSecret,
        token: &'a str,
    ) -> [(&'a str, &'a str); 4] {
        [
            ("token_type", "access_token"),
            ("token", token),
            ("client_id", client_id),
            ("client_secret", secret.secret()),
        ]
    }

    /// One attempt's form body, and the secrets to scrub from anything quoted
    /// back: as given and as encoded in the form (a server may echo the body).
    /// Everything in it is wiped on drop.
    pub(crate) struct FormRequest {
        pub(crate) body: Secret,
        secrets: Vec<Secret>,
        /// The `X-IMS-ClientId` header, for the endpoints that want it.
        pub(crate) client_id_header: Option<String>,
    }

    impl FormRequest {
        pub(crate) fn new(fields: &[(&str, &str)], secrets: &[&str]) -> Self {
            let secrets = secrets
                .iter()
                .filter(|s| !s.is_empty())
                .flat_map(|s| [Secret(s.to_string()), Secret(form_urlencode(s))])
                .collect();
            FormRequest {
                body: Secret(form_body(fields)),
                secrets,
                client_id_header: None,
            }
        }

        /// Sends `X-IMS-ClientId: <client_id>` too.
        pub(crate) fn with_client_id_header(mut self, client_id: &str) -> Self {
            self.client_id_header = Some(client_id.to_owned());
            self
        }

        pub(crate) fn scrub(&self) -> Vec<&str> {
            self.secrets.iter().map(|s| s.0.as_str()).collect()
        }
    }

    /// `application/x-www-form-urlencoded` body of the fields, in order,
    /// written into one buffer so no stray copies of the values are left.
    pub(crate) fn form_body(fields: &[(&str, &str)]) -> String {
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
    /// stack; [`Client`](crate::Client) uses the same logic.
    ///
    /// IMS grants 24 hours in either flow. An `expires_in` of more than 48
    /// hours is a mistake of units (milliseconds where seconds belong): the
    /// token is taken to expire 24 hours from `now`, and a warning is logged.
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
            clock_offset: None,
            body: zeroize::Zeroizing::new(body.to_vec()),
        };
        parse_reply(&reply, flow, now, &[])
    }

    /// An HTTP reply as read off the wire, before it is judged. No `Debug`:
    /// the body of a 200 holds the token.
    pub(crate) struct RawReply {
        pub(crate) status: u16,
        pub(crate) debug_id: Option<String>,
        pub(crate) retry_after: Option<Duration>,
        pub(crate) location: Option<String>,
        /// IMS's clock minus ours, from its `Date` header.
        pub(crate) clock_offset: Option<i64>,
        pub(crate) body: zeroize::Zeroizing<Vec<u8>>,
    }

    /// Turns an IMS reply into a token or the error it stands for. `secrets`
    /// are scrubbed from any excerpt that goes into an error.
    pub(crate) fn parse_reply(
        reply: &RawReply,
        unit: Flow,
        now: SystemTime,
        secrets: &[&str],
    ) -> Result<AccessToken, Error> {
        let carries = match unit {
            Flow::JwtExchange => "the client secret and the signed JWT",
            Flow::ClientCredentials => "the client secret",
        };
        judge_reply(reply, secrets, carries, |reply| {
            parse_success(reply, unit, now)
        })
    }

    /// The status of any IMS reply, judged: a 200's body goes to `success`,
    /// anything else is the error it stands for. `secrets` are scrubbed
    /// from any excerpt that goes into an error; `carries` names what the
    /// request held (`the token`), which a redirect is not trusted with.
    pub(crate) fn judge_reply<T>(
        reply: &RawReply,
        secrets: &[&str],
        carries: &str,
        success: impl FnOnce(&RawReply) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match reply.status {
            200 => success(reply),
            429 | 500..=599 => Err(Error::Unavailable(Box::new(ims_error(reply, secrets)))),
            400..=499 => Err(Error::Rejected(Box::new(ims_error(reply, secrets)))),
            300..=399 => Err(Error::unexpected(
                Some(reply.status),
                format!(
                    "IMS answered with a redirect to {}; it is not followed because the \
                     request carries {carries}: check the IMS endpoint",
                    reply
                        .location
                        .as_deref()
                        .map(|l| excerpt(l.as_bytes(), secrets))
                        .unwrap_or_else(|| "nowhere".into())
                ),
            )),
            // Another 2xx may carry a token: its body is never quoted.
            201..=299 => Err(Error::unexpected(
                Some(reply.status),
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
            .map_err(|_| Error::unexpected(Some(200), "the IMS reply is not JSON"))?;
        let token = token_from_json(&json, unit, now);
        wipe_json(&mut json);
        token
    }

    fn token_from_json(json: &Value, unit: Flow, now: SystemTime) -> Result<AccessToken, Error> {
        let bad = |what: &str| Error::unexpected(Some(200), format!("the IMS reply {what}"));
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
        let lifetime = believed_lifetime(lifetime);
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

    /// A lifetime over [`MAX_TOKEN_LIFETIME`] (48 hours) is a mistake of
    /// units, not a token that works for weeks: it is cut to the 24 hours IMS
    /// grants, with a warning.
    fn believed_lifetime(lifetime: Duration) -> Duration {
        if lifetime <= MAX_TOKEN_LIFETIME {
            return lifetime;
        }
        log::warn!(
            "IMS gave the token {} s to live, more than 48 hours (milliseconds where \
             seconds belong?); it is taken to expire in 24 hours",
            lifetime.as_secs()
        );
        IMS_TOKEN_LIFETIME
    }

    /// `expires_in` as a whole number; some servers send it as a string.
    fn expires_in_number(v: &Value) -> Option<u64> {
        whole_number(v).filter(|&n| n > 0)
    }

    /// What IMS said of a token at `/ims/validate_token/v1`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum TokenValidity {
        /// IMS accepts the token.
        #[non_exhaustive]
        Valid {
            /// When it expires, as IMS said (`expires_at`), if it did.
            expires_at: Option<SystemTime>,
        },
        /// IMS does not accept it (expired, revoked, unknown, for another
        /// client, ...).
        #[non_exhaustive]
        Invalid {
            /// IMS's `reason`: one printable line, at most 200 characters,
            /// with the token, should IMS quote it, replaced by `[redacted]`.
            reason: String,
        },
    }

    impl TokenValidity {
        /// Whether IMS accepts the token.
        pub fn is_valid(&self) -> bool {
            matches!(self, TokenValidity::Valid { .. })
        }
    }

    /// Reads a 200 reply of `/ims/validate_token/v1`: `{"valid": true,
    /// "expires_at": <ms>, ...}` or `{"valid": false, "reason": "..."}`.
    /// Nothing of the body but the reason goes into the result or an error.
    pub(crate) fn parse_validation(
        reply: &RawReply,
        secrets: &[&str],
    ) -> Result<TokenValidity, Error> {
        let mut json: Value = serde_json::from_slice(&reply.body)
            .map_err(|_| Error::unexpected(Some(200), "the IMS reply is not JSON"))?;
        let validity = validity_from_json(&json, secrets);
        wipe_json(&mut json);
        validity
    }

    fn validity_from_json(json: &Value, secrets: &[&str]) -> Result<TokenValidity, Error> {
        match json.get("valid").and_then(Value::as_bool) {
            Some(true) => Ok(TokenValidity::Valid {
                expires_at: json
                    .get("expires_at")
                    .and_then(whole_number)
                    .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms))),
            }),
            Some(false) => {
                let reason = json
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(|r| excerpt(r.as_bytes(), secrets))
                    .filter(|r| !r.is_empty());
                Ok(TokenValidity::Invalid {
                    reason: reason.unwrap_or_else(|| "IMS gave no reason".to_owned()),
                })
            }
            None => Err(Error::unexpected(
                Some(200),
                "the IMS reply has no `valid` true or false",
            )),
        }
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

    /// A short, printable, secret-free piece of untrusted text. With
    /// `secrets`, the text is JSON-unescaped and percent-decoded (a server
    /// may echo the form as JSON, or encode it its own way) and every secret
    /// redacted, before and after; an excerpt that still holds
    /// [`SECRET_RUN`] characters in a row of a secret (a partial echo) is
    /// dropped whole.
    pub(crate) fn excerpt(bytes: &[u8], secrets: &[&str]) -> String {
        let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
        let mut text = redacted(String::from_utf8_lossy(bytes).into_owned(), &secrets);
        if !secrets.is_empty() {
            text = redacted(percent_decoded(&json_unescaped(&text)), &secrets);
        }
        let text = printable_line(&text);
        let mut out: String = text.chars().take(MAX_EXCERPT_CHARS).collect();
        if text.chars().count() > MAX_EXCERPT_CHARS {
            out.push('…');
        }
        if secrets.iter().any(|s| holds_part_of(&out, s)) {
            return REDACTED.to_owned();
        }
        out.trim().to_owned()
    }

    /// Shortest piece of a secret that, quoted, drops an excerpt whole.
    const SECRET_RUN: usize = 12;

    fn redacted(mut text: String, secrets: &[&str]) -> String {
        for secret in secrets {
            text = text.replace(secret, REDACTED);
        }
        text
    }

    /// Whether `text` holds [`SECRET_RUN`] characters in a row of `secret`.
    fn holds_part_of(text: &str, secret: &str) -> bool {
        let starts: Vec<usize> = secret.char_indices().map(|(i, _)| i).collect();
        starts.iter().enumerate().any(|(n, &from)| {
            let to = starts
                .get(n + SECRET_RUN)
                .copied()
                .or_else(|| (n + SECRET_RUN == starts.len()).then_some(secret.len()));
            to.is_some_and(|to| text.contains(&secret[from..to]))
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::test_support::*;

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
            let token =
                parse_reply(&reply(200, body), Flow::ClientCredentials, at(T0), &[]).unwrap();
            assert_eq!(token.expires_at(), at(T0 + 86_399));
        }

        #[test]
        fn an_implausible_lifetime_is_cut_to_a_day() {
            // The JWT flow's milliseconds in the OAuth flow: good until 2029.
            let body = r#"{"access_token":"tok","expires_in":86399999}"#;
            let token =
                parse_reply(&reply(200, body), Flow::ClientCredentials, at(T0), &[]).unwrap();
            assert_eq!(token.expires_at(), at(T0 + 86_400));
            assert_eq!(token.received_at(), at(T0));
            // Up to 48 hours is taken as given.
            let body = r#"{"access_token":"tok","expires_in":172800}"#;
            let token =
                parse_reply(&reply(200, body), Flow::ClientCredentials, at(T0), &[]).unwrap();
            assert_eq!(token.expires_at(), at(T0 + 172_800));
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
                let err = parse_reply(&reply(200, body), Flow::ClientCredentials, at(T0), &[])
                    .unwrap_err();
                assert!(
                    matches!(
                        err,
                        Error::UnexpectedReply {
                            status: Some(200),
                            ..
                        }
                    ),
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
                let err = parse_reply(&reply(status, ims), Flow::ClientCredentials, at(T0), &[])
                    .unwrap_err();
                assert!(
                    matches!(err, Error::Unavailable(_)) && err.is_retryable(),
                    "{status}"
                );
            }
            let redirect =
                parse_reply(&reply(302, ""), Flow::ClientCredentials, at(T0), &[]).unwrap_err();
            assert!(matches!(
                redirect,
                Error::UnexpectedReply {
                    status: Some(302),
                    ..
                }
            ));
        }

        #[test]
        fn a_redirect_names_what_the_request_carries() {
            let carried = |flow| {
                parse_reply(&reply(307, ""), flow, at(T0), &[])
                    .unwrap_err()
                    .to_string()
            };
            let oauth = carried(Flow::ClientCredentials);
            assert!(
                oauth.contains("because the request carries the client secret: check"),
                "{oauth}"
            );
            let jwt = carried(Flow::JwtExchange);
            assert!(
                jwt.contains("carries the client secret and the signed JWT: check"),
                "{jwt}"
            );
            let validate = judge_reply(&reply(302, ""), &[], "the token", |_| Ok(()))
                .unwrap_err()
                .to_string();
            assert!(validate.contains("carries the token: check"), "{validate}");
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
        fn oauth_forms_carry_org_id_and_resources_only_when_asked_for() {
            let oauth = OAuthCredentials::builder()
                .client_id("c")
                .client_secret(ClientSecret::new("s"))
                .scopes("a,b")
                .org_id("HEADERS@AdobeOrg")
                .build()
                .unwrap();
            let secret = ClientSecret::new("s2 &=+/");
            let body = |o: &OAuthCredentials| form_body(&oauth_form(o, &secret, "a,b"));
            assert_eq!(
                body(&oauth),
                "grant_type=client_credentials&client_id=c&client_secret=s2+%26%3D%2B%2F&scope=a%2Cb"
            );
            let asked = oauth
                .with_requested_org_id("ORG@AdobeOrg")
                .and_then(|o| o.with_resource("https://x.example/a b"))
                .and_then(|o| o.with_resource("urn:y"))
                .unwrap();
            assert!(
                body(&asked).ends_with(
                    "&scope=a%2Cb&org_id=ORG%40AdobeOrg\
                     &resource=https%3A%2F%2Fx.example%2Fa+b&resource=urn%3Ay"
                ),
                "{}",
                body(&asked)
            );
            let revoke = form_body(&revocation_form("c", &secret, "t.o.k"));
            assert_eq!(
                revoke,
                "token_type=access_token&token=t.o.k&client_id=c&client_secret=s2+%26%3D%2B%2F"
            );
            let validate = form_body(&validation_form("c", "t.o.k"));
            assert_eq!(validate, "type=access_token&client_id=c&token=t.o.k");
        }

        #[test]
        fn validation_replies_say_valid_or_why_not() {
            let judge = |status, body: &str| {
                let r = reply(status, body);
                judge_reply(&r, &["SECRET-TOKEN"], "the token", |r| {
                    parse_validation(r, &["SECRET-TOKEN"])
                })
            };
            let valid = judge(
                200,
                r#"{"valid":true,"token":{"id":"x"},"expires_at":1700086400000}"#,
            );
            assert_eq!(
                valid.unwrap(),
                TokenValidity::Valid {
                    expires_at: Some(at(T0 + 86_400))
                }
            );
            let as_text = judge(200, r#"{"valid":true,"expires_at":"1700086400000"}"#).unwrap();
            assert!(as_text.is_valid());
            assert_eq!(
                judge(200, r#"{"valid":true}"#).unwrap(),
                TokenValidity::Valid { expires_at: None }
            );
            let invalid = judge(
                200,
                "{\"valid\":false,\"reason\":\"revoked\\nSECRET-TOKEN\"}",
            )
            .unwrap();
            assert_eq!(
                invalid,
                TokenValidity::Invalid {
                    reason: "revoked [redacted]".into()
                }
            );
            assert!(!invalid.is_valid());
            assert_eq!(
                judge(200, r#"{"valid":false}"#).unwrap(),
                TokenValidity::Invalid {
                    reason: "IMS gave no reason".into()
                }
            );
            for odd in [r#"{"valid":"yes"}"#, "{}", "SECRET-TOKEN"] {
                let e = judge(200, odd).unwrap_err();
                assert!(
                    matches!(
                        e,
                        Error::UnexpectedReply {
                            status: Some(200),
                            ..
                        }
                    ),
                    "{e:?}"
                );
                assert!(!e.to_string().contains("SECRET"), "{e}");
            }
            let refused = judge(
                400,
                r#"{"error":"invalid_client","error_description":"SECRET-TOKEN"}"#,
            );
            let e = refused.unwrap_err();
            assert!(
                matches!(e, Error::Rejected(_)) && !e.to_string().contains("SECRET"),
                "{e}"
            );
            assert!(judge(503, "").unwrap_err().is_retryable());
        }

        #[test]
        fn escaped_reencoded_and_partial_echoes_of_a_secret_are_dropped() {
            let secret = "p8e-Ab/Cd Ef+Gh=Ij&Kl-0123456789abcdefghij";
            let form = form_urlencode(secret);
            let scrub = [secret, form.as_str()];
            let escaped = secret.replace('/', "\\/");
            let percent = secret.replace('/', "%2f").replace(' ', "%20");
            let partial = &secret[2..38];
            // Whole echoes, escaped or encoded another way: redacted in place.
            for body in [
                format!("bad secret {escaped}"),
                format!("bad secret {percent}"),
                format!("{{\"d\":\"bad secret {}\"}}", escaped.replace(' ', "%20")),
            ] {
                let shown = excerpt(body.as_bytes(), &scrub);
                assert!(
                    shown.contains(&format!("bad secret {REDACTED}")),
                    "{body}: {shown}"
                );
                assert!(!holds_part_of(&shown, secret), "{body}: {shown}");
            }
            // Partial echoes: dropped whole.
            for body in [
                format!("bad secret {partial}..."),
                format!("bad secret {}", &secret[10..22]),
                format!("bad secret {}", &escaped[3..40]),
            ] {
                let shown = excerpt(body.as_bytes(), &scrub);
                assert_eq!(shown, REDACTED, "{body}");
            }
            // Eleven characters in a row, or none: the excerpt stays.
            let shown = excerpt(format!("near:{}", &secret[10..21]).as_bytes(), &scrub);
            assert_eq!(shown, format!("near:{}", &secret[10..21]));
            let shown = excerpt(b"invalid_client: 100% wrong \\o/", &scrub);
            assert_eq!(shown, "invalid_client: 100% wrong \\o/");
            // A whole echo is redacted in place, the rest kept.
            let shown = excerpt(format!("client_secret={form}&x=1").as_bytes(), &scrub);
            assert_eq!(shown, format!("client_secret={REDACTED}&x=1"));
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
                let body = serde_json::json!({"access_token": token, "token_type": kind, "expires_in": 60});
                let e = parse_reply(
                    &reply(200, &body.to_string()),
                    Flow::ClientCredentials,
                    at(T0),
                    &[],
                )
                .unwrap_err();
                assert!(
                    matches!(
                        e,
                        Error::UnexpectedReply {
                            status: Some(200),
                            ..
                        }
                    ),
                    "{token:?}: {e:?}"
                );
                assert!(!e.to_string().contains("SECRET"), "{e}");
                assert!(!format!("{e:?}").contains("SECRET"), "{e:?}");
            }
            let body = r#"{"access_token":"a.b-c_d~e+f/g=","token_type":"Bearer","expires_in":60}"#;
            let ok = parse_reply(&reply(200, body), Flow::ClientCredentials, at(T0), &[]).unwrap();
            assert_eq!((ok.secret(), ok.token_type()), ("a.b-c_d~e+f/g=", "Bearer"));
        }
    }
}

// ---------------------------------------------------------------------------
// IMS's clock: the offset learned from its Date header.
mod clock {
    use std::sync::atomic::{AtomicI64, Ordering};

    use crate::Error;

    /// Clock offsets up to this are left alone: IMS tolerates about 30 s of skew,
    /// and the `Date` header has whole seconds.
    const CLOCK_TOLERANCE_SECS: i64 = 30;

    /// A `Date` further off than this is taken for a broken header, not a clock
    /// (a host without NTP or a battery-backed clock can be days off).
    const MAX_CLOCK_OFFSET_SECS: i64 = 7 * 86_400;

    const UNKNOWN_OFFSET: i64 = i64::MIN;

    /// What a [`Client`] learned of IMS's clock: its offset from ours, in seconds.
    #[derive(Debug)]
    pub(crate) struct ClockOffset(AtomicI64);

    impl Default for ClockOffset {
        fn default() -> Self {
            ClockOffset(AtomicI64::new(UNKNOWN_OFFSET))
        }
    }

    impl ClockOffset {
        pub(crate) fn offset(&self) -> Option<i64> {
            Some(self.0.load(Ordering::Relaxed)).filter(|&o| o != UNKNOWN_OFFSET)
        }

        /// Keeps the offset of a reply, warning when it turns out to be too large.
        pub(crate) fn learn(&self, offset: Option<i64>) {
            let Some(offset) = offset.filter(|o| o.abs() <= MAX_CLOCK_OFFSET_SECS) else {
                return;
            };
            let before = correction_for(self.0.swap(offset, Ordering::Relaxed));
            if correction_moved(before, correction_for(offset)) {
                log::warn!("{}", clock_warning(offset));
            }
        }

        /// The seconds to add to our clock for IMS: the offset once it is over
        /// the tolerance, else none.
        pub(crate) fn correction(&self) -> i64 {
            correction_for(self.0.load(Ordering::Relaxed))
        }
    }

    /// Whether a correction changed by more than the tolerance: worth a warning
    /// and a JWT signed anew.
    pub(crate) fn correction_moved(before: i64, after: i64) -> bool {
        after.saturating_sub(before).abs() > CLOCK_TOLERANCE_SECS
    }

    fn correction_for(offset: i64) -> i64 {
        if offset == UNKNOWN_OFFSET || offset.abs() <= CLOCK_TOLERANCE_SECS {
            0
        } else {
            offset
        }
    }

    /// `this host's clock is 612 s behind IMS; fix its time (NTP)`.
    fn clock_warning(offset: i64) -> String {
        let side = if offset > 0 { "behind" } else { "ahead of" };
        format!(
            "this host's clock is {} s {side} IMS; fix its time (NTP)",
            offset.unsigned_abs()
        )
    }

    /// IMS refused the JWT as expired, not yet valid or malformed.
    pub(crate) fn is_clock_refusal(e: &Error) -> bool {
        matches!(e, Error::Rejected(ims) if ims.code.as_deref() == Some("invalid_token"))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::test_support::*;
        use crate::text::{seconds_between, shift};

        #[test]
        fn clock_offsets_beyond_the_tolerance_correct_the_jwt_time() {
            let clock = ClockOffset::default();
            assert_eq!((clock.offset(), clock.correction()), (None, 0));
            clock.learn(Some(20));
            assert_eq!((clock.offset(), clock.correction()), (Some(20), 0));
            assert_eq!(shift(at(T0), clock.correction()), at(T0));
            clock.learn(Some(612));
            assert_eq!(shift(at(T0), clock.correction()), at(T0 + 612));
            clock.learn(Some(-3 * 3600));
            assert_eq!(shift(at(T0), clock.correction()), at(T0 - 3 * 3600));
            // A Date more than a week away is a broken header, not a clock.
            clock.learn(Some(8 * 86_400));
            assert_eq!(clock.offset(), Some(-3 * 3600));
            clock.learn(None);
            assert_eq!(clock.offset(), Some(-3 * 3600));
            assert_eq!(seconds_between(at(T0), at(T0 + 5)), 5);
            assert_eq!(seconds_between(at(T0 + 5), at(T0)), -5);
            assert_eq!(
                clock_warning(612),
                "this host's clock is 612 s behind IMS; fix its time (NTP)"
            );
            assert_eq!(
                clock_warning(-40),
                "this host's clock is 40 s ahead of IMS; fix its time (NTP)"
            );
            assert!(
                !correction_moved(0, 30) && correction_moved(0, 31) && !correction_moved(612, 613)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Adobe APIs: the headers they want with a token, a request checked before it
// is sent, and the reply. Pure: the client sends, the provider resends.
mod api {
    use std::fmt;

    use ureq::http::{header, HeaderName, HeaderValue, Method, Uri};

    use crate::client::unbracket;
    use crate::endpoint::allows_plain_http;
    use crate::secret::Secret;
    use crate::text::is_visible_ascii;
    use crate::{AccessToken, Credentials, Error};

    /// Default cap on the body of an API's reply read by
    /// [`ApiRequest::send`](crate::ApiRequest::send): 10 MiB.
    pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 10 * 1024 * 1024;

    /// The headers an Adobe API wants with a token: `Authorization: Bearer
    /// <token>`, `x-api-key` (the client id) and `x-gw-ims-org-id` (the org,
    /// when the credentials know it), in that order: the lines of the
    /// command's `--format headers`.
    ///
    /// Every value is visible ASCII, checked when the headers are built, so
    /// none can add a header or a line of its own. `Debug` does not show the
    /// token.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), ims_token::Error> {
    /// use ims_token::{Client, Credentials, TokenProvider};
    /// let provider = TokenProvider::new(Client::new()?, Credentials::from_file("creds.json")?);
    /// let headers = provider.headers()?;
    /// for (name, value) in headers.iter() {
    ///     // Set them on a request of your own HTTP client.
    ///     # let _ = (name, value);
    /// }
    /// // On 401: provider.invalidate(headers.token()), and send it again only
    /// // if provider.headers()? now holds another token.
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Clone, Debug)]
    pub struct ApiHeaders {
        token: AccessToken,
        authorization: Secret,
        api_key: Option<String>,
        org_id: Option<String>,
    }

    impl ApiHeaders {
        /// The headers for `token`, with the client id and org of
        /// `credentials` ([`Credentials::client_id`], [`Credentials::org_id`]).
        /// An empty client id (a local development token whose payload names
        /// none) adds no `x-api-key`; credentials without an org add no
        /// `x-gw-ims-org-id`.
        ///
        /// # Errors
        /// [`Error::Config`] when the token, the client id or the org id has
        /// a character that is not visible ASCII (`!` to `~`), which could
        /// inject a header. Tokens from IMS are checked when they arrive;
        /// this covers tokens and ids from elsewhere.
        pub fn new(token: &AccessToken, credentials: &Credentials) -> Result<Self, Error> {
            let api_key = Some(credentials.client_id()).filter(|id| !id.is_empty());
            let org_id = credentials.org_id();
            header_safe("access token", token.secret())?;
            api_key.map_or(Ok(()), |id| header_safe("client id", id))?;
            org_id.map_or(Ok(()), |org| header_safe("org id", org))?;
            Ok(ApiHeaders {
                token: token.clone(),
                authorization: Secret(format!("Bearer {}", token.secret())),
                api_key: api_key.map(str::to_owned),
                org_id: org_id.map(str::to_owned),
            })
        }

        /// `(name, value)` of each header, in the order above. The
        /// `Authorization` value holds the token: keep it out of logs.
        pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
            [
                ("Authorization", Some(self.authorization.0.as_str())),
                ("x-api-key", self.api_key.as_deref()),
                ("x-gw-ims-org-id", self.org_id.as_deref()),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name, v)))
        }

        /// The token in `Authorization`: the one to give
        /// [`TokenProvider::invalidate`](crate::TokenProvider::invalidate)
        /// when the API answers 401.
        pub fn token(&self) -> &AccessToken {
            &self.token
        }

        /// The `x-api-key` value (the client id), when there is one.
        pub fn api_key(&self) -> Option<&str> {
            self.api_key.as_deref()
        }

        /// The `x-gw-ims-org-id` value (the org), when there is one.
        pub fn org_id(&self) -> Option<&str> {
            self.org_id.as_deref()
        }
    }

    /// Checks that `text` can go into a header, a line or an environment
    /// variable whole; `what` names it in the error, never its value.
    fn header_safe(what: &str, text: &str) -> Result<(), Error> {
        if is_visible_ascii(text) {
            return Ok(());
        }
        Err(Error::config(format!(
            "the {what} has characters that are not visible ASCII; check the credentials"
        )))
    }

    /// An Adobe API's reply to [`ApiRequest::send`](crate::ApiRequest::send):
    /// status, headers and the whole body. `Debug` shows the body's length,
    /// not the body.
    #[derive(Clone)]
    pub struct ApiResponse {
        pub(crate) status: u16,
        pub(crate) headers: Vec<(String, String)>,
        pub(crate) body: Vec<u8>,
    }

    impl ApiResponse {
        /// The HTTP status.
        pub fn status(&self) -> u16 {
            self.status
        }

        /// Whether the status is 2xx.
        pub fn is_success(&self) -> bool {
            (200..300).contains(&self.status)
        }

        /// The first value of the header `name` (any case).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        /// Every header as `(name, value)`, names lowercase, in the order
        /// received; values that are not UTF-8 are decoded lossily.
        pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
            self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
        }

        /// The body.
        pub fn body(&self) -> &[u8] {
            &self.body
        }

        /// The body, taken.
        pub fn into_body(self) -> Vec<u8> {
            self.body
        }
    }

    impl fmt::Debug for ApiResponse {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ApiResponse")
                .field("status", &self.status)
                .field("headers", &self.headers)
                .field("body", &format_args!("{} bytes", self.body.len()))
                .finish()
        }
    }

    /// A request checked before anything is sent: the caller's method, URL,
    /// headers and body, ready to go out with an [`ApiHeaders`].
    pub(crate) struct ApiCall<'a> {
        pub(crate) method: Method,
        pub(crate) uri: Uri,
        /// The caller's own headers.
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Option<&'a [u8]>,
        /// The host, for NO_PROXY.
        pub(crate) host: String,
        /// The URL without its query, for messages: a query may hold a secret.
        pub(crate) shown: String,
    }

    impl<'a> ApiCall<'a> {
        /// Checks the caller's parts.
        ///
        /// # Errors
        /// [`Error::Config`] for a method that is not an HTTP method, a URL
        /// that is not absolute `https` (plain `http` only to loopback) or
        /// that holds a user or password, and a header that cannot go into a
        /// request (a CR or LF, say); values are never quoted.
        pub(crate) fn check(
            method: &str,
            url: &str,
            headers: &[(String, Secret)],
            body: Option<&'a [u8]>,
        ) -> Result<Self, Error> {
            let method = check_method(method, body.is_some())?;
            let (uri, host, shown) = check_url(url)?;
            let headers = headers
                .iter()
                .map(|(name, value)| check_header(name, &value.0))
                .collect::<Result<_, _>>()?;
            Ok(ApiCall {
                method,
                uri,
                headers,
                body,
                host,
                shown,
            })
        }

        /// The body to send: the caller's; an empty one for a POST, PUT or
        /// PATCH without (`Content-Length: 0` rather than an empty chunked
        /// body); none otherwise.
        pub(crate) fn body(&self) -> Option<&'a [u8]> {
            let needs_one = [Method::POST, Method::PUT, Method::PATCH].contains(&self.method);
            self.body.or(needs_one.then_some(&[][..]))
        }

        /// Whether the caller set `Authorization` itself: a 401 is then about
        /// its credentials, not the provider's token.
        pub(crate) fn sets_authorization(&self) -> bool {
            self.sets(&header::AUTHORIZATION)
        }

        fn sets(&self, name: &HeaderName) -> bool {
            self.headers.iter().any(|(n, _)| n == name)
        }

        /// The caller's headers, then those of `ours` whose names the caller
        /// did not set: each header once, the caller's never overwritten.
        pub(crate) fn headers_with(&self, ours: &ApiHeaders) -> Vec<(HeaderName, HeaderValue)> {
            let mut all = self.headers.clone();
            for (name, value) in ours.iter() {
                let name = HeaderName::from_static(lowercase(name));
                // Checked visible ASCII when `ours` was built.
                let Ok(mut value) = HeaderValue::from_str(value) else {
                    continue;
                };
                if !self.sets(&name) {
                    value.set_sensitive(name == header::AUTHORIZATION);
                    all.push((name, value));
                }
            }
            all
        }
    }

    /// The lowercase form `HeaderName::from_static` wants, of the names
    /// [`ApiHeaders::iter`] gives.
    fn lowercase(name: &'static str) -> &'static str {
        match name {
            "Authorization" => "authorization",
            other => other,
        }
    }

    /// The methods HTTP/1.1 defines for requests to a resource (ureq sends
    /// no others; `CONNECT` opens tunnels).
    const METHODS: [Method; 8] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];

    fn check_method(method: &str, with_body: bool) -> Result<Method, Error> {
        let Some(known) = METHODS.iter().find(|m| m.as_str() == method) else {
            return Err(Error::config(format!(
                "{:?} is not a method this client sends: use GET, HEAD, POST, PUT, DELETE, \
                 OPTIONS, TRACE or PATCH",
                crate::exchange::excerpt(method.as_bytes(), &[])
            )));
        };
        if with_body && *known == Method::HEAD {
            return Err(Error::config("a HEAD request has no body"));
        }
        Ok(known.clone())
    }

    /// The URI, its host and the URL to show in messages.
    fn check_url(url: &str) -> Result<(Uri, String, String), Error> {
        let (uri, host, shown) = parse_url(url)?;
        match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => {}
            Some("http") if allows_plain_http(&host) => {}
            _ => {
                return Err(Error::config(format!(
                    "the request URL {shown} does not use https; the token may travel only \
                     encrypted (plain http only to 127.0.0.1, ::1 or localhost)"
                )))
            }
        }
        Ok((uri, host, shown))
    }

    /// An absolute URL without a user or password: the URI, its host and
    /// the URL as messages show it (no query, which may hold a secret).
    fn parse_url(url: &str) -> Result<(Uri, String, String), Error> {
        let bad = |why: &str| Error::config(format!("the request URL {why}"));
        let uri: Uri = url
            .parse()
            .map_err(|_| bad("is not a URL (https://host/path)"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(bad("is not an absolute URL (https://host/path)"));
        };
        if authority.as_str().contains('@') {
            return Err(bad(
                "holds a user or password; give credentials in a header",
            ));
        }
        let host = unbracket(authority.host()).to_ascii_lowercase();
        let shown = format!(
            "{}://{authority}{}",
            scheme.to_ascii_lowercase(),
            uri.path()
        );
        Ok((uri, host, shown))
    }

    /// `url` as messages show it, or a placeholder when it is not one.
    pub(crate) fn shown_url(url: &str) -> String {
        parse_url(url).map_or_else(|_| "[not a valid URL]".to_owned(), |(_, _, shown)| shown)
    }

    fn check_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), Error> {
        let bad = || {
            Error::config(format!(
                "the request header {:?} cannot go into a request: check its name and value \
                 (no line breaks)",
                crate::exchange::excerpt(name.as_bytes(), &[])
            ))
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_str(value).map_err(|_| bad())?;
        Ok((name, value))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::test_support::*;
        use crate::{ClientSecret, OAuthCredentials};

        fn oauth(org: Option<&str>) -> Credentials {
            let mut builder = OAuthCredentials::builder()
                .client_id("my-client")
                .client_secret(ClientSecret::new("s"))
                .scopes("openid");
            if let Some(org) = org {
                builder = builder.org_id(org);
            }
            Credentials::OAuth(builder.build().unwrap())
        }

        fn lines(headers: &ApiHeaders) -> Vec<String> {
            headers.iter().map(|(n, v)| format!("{n}: {v}")).collect()
        }

        #[test]
        fn the_three_headers_in_order_and_only_those_known() {
            let token = day_token("tok-1");
            let headers = ApiHeaders::new(&token, &oauth(Some("ORG@AdobeOrg"))).unwrap();
            assert_eq!(
                lines(&headers),
                [
                    "Authorization: Bearer tok-1",
                    "x-api-key: my-client",
                    "x-gw-ims-org-id: ORG@AdobeOrg"
                ]
            );
            assert_eq!(headers.token().secret(), "tok-1");
            assert!(!format!("{headers:?}").contains("tok-1"));
            let headers = ApiHeaders::new(&token, &oauth(None)).unwrap();
            assert_eq!(
                lines(&headers),
                ["Authorization: Bearer tok-1", "x-api-key: my-client"]
            );
        }

        #[test]
        fn values_that_could_inject_a_header_are_refused_unquoted() {
            for (token, org, what) in [
                ("tok\r\nX-Evil: 1", "ORG", "access token"),
                ("tok é", "ORG", "access token"),
                ("", "ORG", "access token"),
                ("tok", "ORG\nX-Evil: 1", "org id"),
            ] {
                let token = day_token(token);
                let e = ApiHeaders::new(&token, &oauth(Some(org))).unwrap_err();
                let text = e.to_string();
                assert!(matches!(e, Error::Config { .. }), "{e:?}");
                assert!(text.contains(what) && !text.contains("Evil"), "{text}");
            }
        }

        fn call<'a>(headers: &[(&str, &str)], body: Option<&'a [u8]>) -> ApiCall<'a> {
            let headers: Vec<(String, Secret)> = headers
                .iter()
                .map(|(n, v)| (n.to_string(), Secret(v.to_string())))
                .collect();
            ApiCall::check(
                "POST",
                "https://api.example.com/p?sig=s3cr3t",
                &headers,
                body,
            )
            .unwrap()
        }

        #[test]
        fn each_header_goes_once_and_the_callers_own_are_kept() {
            let ours = ApiHeaders::new(&day_token("tok"), &oauth(Some("ORG"))).unwrap();
            let mine = call(
                &[("X-Api-Key", "mine"), ("Accept", "application/json")],
                None,
            );
            let sent: Vec<(String, String)> = mine
                .headers_with(&ours)
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            let pairs: Vec<(&str, &str)> =
                sent.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            assert_eq!(
                pairs,
                [
                    ("x-api-key", "mine"),
                    ("accept", "application/json"),
                    ("authorization", "Bearer tok"),
                    ("x-gw-ims-org-id", "ORG"),
                ]
            );
            assert!(!mine.sets_authorization());
            assert!(call(&[("authorization", "Basic x")], None).sets_authorization());
        }

        #[test]
        fn requests_are_checked_and_the_query_is_never_shown() {
            let ok = call(&[], Some(b"{}"));
            assert_eq!(ok.shown, "https://api.example.com/p");
            assert_eq!(ok.host, "api.example.com");
            for url in [
                "http://127.0.0.1:8080/x",
                "http://[::1]:9/x",
                "http://localhost/x",
            ] {
                assert!(ApiCall::check("GET", url, &[], None).is_ok(), "{url}");
            }
            for (method, url, why) in [
                (
                    "GET",
                    "http://api.example.com/x?k=s3cr3t",
                    "does not use https",
                ),
                ("GET", "ftp://api.example.com/x", "does not use https"),
                ("GET", "/relative/s3cr3t", "not an absolute URL"),
                (
                    "GET",
                    "https://user:s3cr3t@api.example.com/",
                    "user or password",
                ),
                ("GET", "not a url s3cr3t", "not a URL"),
                (
                    "GE T",
                    "https://api.example.com/",
                    "not a method this client sends",
                ),
                (
                    "PROPFIND",
                    "https://api.example.com/",
                    "not a method this client sends",
                ),
                (
                    "get",
                    "https://api.example.com/",
                    "not a method this client sends",
                ),
            ] {
                let e = ApiCall::check(method, url, &[], None).err().unwrap();
                let text = e.to_string();
                assert!(matches!(e, Error::Config { .. }), "{e:?}");
                assert!(text.contains(why) && !text.contains("s3cr3t"), "{text}");
            }
            let e = ApiCall::check("HEAD", "https://a.example/", &[], Some(b"x"))
                .err()
                .unwrap();
            assert_eq!(e.to_string(), "a HEAD request has no body");
            let bad = [("X-Note".to_owned(), Secret("a\r\nX-Evil: s3cr3t".into()))];
            let e = ApiCall::check("GET", "https://a.example/", &bad, None)
                .err()
                .unwrap();
            let text = e.to_string();
            assert!(
                text.contains("\"X-Note\"") && !text.contains("s3cr3t"),
                "{text}"
            );
        }

        #[test]
        fn urls_are_shown_without_query_or_password() {
            assert_eq!(
                shown_url("https://API.example.com:8443/a/b?sig=s3cr3t"),
                "https://API.example.com:8443/a/b"
            );
            assert_eq!(
                shown_url("https://u:s3cr3t@a.example/"),
                "[not a valid URL]"
            );
            assert_eq!(shown_url("not a url"), "[not a valid URL]");
        }

        #[test]
        fn a_response_debug_shows_the_body_length_only() {
            let response = ApiResponse {
                status: 200,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: b"private body".to_vec(),
            };
            let debug = format!("{response:?}");
            assert!(
                debug.contains("12 bytes") && !debug.contains("private"),
                "{debug}"
            );
            assert_eq!(response.header("Content-Type"), Some("text/plain"));
            assert!(response.is_success());
        }
    }
}

// ---------------------------------------------------------------------------
// The HTTP client: agent, proxy, TLS, retries, and the ureq error mapping.
mod client {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use crate::api::ApiCall;
    use crate::clock::{correction_moved, is_clock_refusal, ClockOffset};
    use crate::credentials::ClientSecrets;
    use crate::endpoint::is_loopback_host;
    use crate::exchange::{
        check_lifetime, judge_reply, jwt_exchange_form, oauth_form, parse_reply, parse_validation,
        revocation_form, validation_form, FormRequest, RawReply,
    };
    use crate::files::{read_capped_file, without_bom};
    use crate::secret::Secret;
    use crate::text::{byte_size, is_visible_ascii, parse_http_date, seconds_between, shift};
    use crate::{
        sign_jwt, AccessToken, ApiHeaders, ApiResponse, ClientSecret, Credentials, Endpoint, Error,
        Flow, OAuthCredentials, ServiceAccount, TokenValidity, DEFAULT_JWT_LIFETIME,
    };

    /// The `User-Agent` sent to IMS.
    pub const USER_AGENT: &str = concat!("ims-token/", env!("CARGO_PKG_VERSION"));

    /// Default overall timeout of one HTTP call.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// Default timeout for opening the connection (TCP, proxy and TLS).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Default number of retries after the first attempt.
    pub const DEFAULT_RETRIES: u32 = 2;

    /// Default cap on a wait asked for by `Retry-After`.
    pub const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(20);

    /// Largest reply body read from IMS.
    pub const MAX_REPLY_BYTES: u64 = 64 * 1024;

    const FIRST_BACKOFF: Duration = Duration::from_millis(250);

    /// Fetches a token with a default [`Client`]: the one call for the common case.
    ///
    /// # Errors
    /// See [`Client::fetch`].
    pub fn fetch_token(credentials: &Credentials) -> Result<AccessToken, Error> {
        Client::new()?.fetch(credentials)
    }

    /// A reusable IMS client: one HTTP agent (connection pool, TLS setup)
    /// configured on purpose, plus the retry policy and JWT lifetime.
    ///
    /// Clones share the agent and what the client learned of IMS's clock.
    #[derive(Debug, Clone)]
    pub struct Client {
        agent: ureq::Agent,
        timeout: Duration,
        /// The proxy requests go through, if any, and the hosts that go
        /// direct: the agent has none, each request names its own
        /// (`route_to_host`).
        route: Option<ProxyRoute>,
        retries: u32,
        max_retry_wait: Duration,
        jwt_lifetime: Duration,
        clock: Arc<ClockOffset>,
    }

    /// Settings for a [`Client`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), ims_token::Error> {
    /// use std::time::Duration;
    /// let client = ims_token::Client::builder()
    ///     .timeout(Duration::from_secs(10)) // each attempt, overall
    ///     .connect_timeout(Duration::from_secs(3))
    ///     .retries(2) // network errors, timeouts, 5xx and 429
    ///     .ca_file("/etc/ssl/corporate-ca.pem") // added to the built-in roots
    ///     .proxy(Some("http://proxy.example:3128")) // else from the environment
    ///     .build()?;
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Debug, Clone)]
    #[must_use = "a builder does nothing until `build` is called"]
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
        /// Mozilla roots (for TLS-intercepting corporate proxies). A leading
        /// UTF-8 byte order mark is skipped.
        pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
            self.ca_file = Some(path.into());
            self
        }
        /// The proxy: `Some("http://user:pass@proxy:3128")`, or `None` for a
        /// direct connection. A loopback endpoint (`localhost`, 127.0.0.0/8,
        /// ::1) always goes direct, whatever the proxy settings.
        ///
        /// By default the proxy comes from the environment as curl reads it
        /// for an https URL: `https_proxy`, else `HTTPS_PROXY`, else
        /// `all_proxy`, else `ALL_PROXY` (the first that is not empty).
        /// `http_proxy` is for plain http, which goes only to loopback, and
        /// upper-case `HTTP_PROXY` is never read (under CGI a client sets it
        /// with a `Proxy:` header: httpoxy). A SOCKS or malformed proxy there is
        /// an error only for a request that would go through it.
        ///
        /// The IMS host goes direct when `no_proxy`, else `NO_PROXY` (the
        /// first that is not empty) lists it, as curl 7.88 and later read it:
        /// `*` alone for every host; else entries separated by commas (blanks
        /// around them are fine), a name matching itself and its subdomains,
        /// any case, with or without a leading `.` (`*.example.com` is no
        /// wildcard: it matches nothing); an IPv4 or IPv6 address (without
        /// brackets: `[::1]` matches nothing) matching itself, or with `/bits`
        /// a network holding it.
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
        /// [`Error::Config`] for a JWT lifetime or timeout out of range, a proxy URL
        /// given to [`ClientBuilder::proxy`] that cannot be used, or a CA file with
        /// no certificate; [`Error::Io`] when the CA file cannot be read. A proxy
        /// from the environment is judged when a request would use it
        /// ([`Client::check_proxy`]).
        pub fn build(self) -> Result<Client, Error> {
            check_lifetime(self.jwt_lifetime)?;
            check_timeout(self.timeout, "timeout")?;
            check_timeout(self.connect_timeout, "connect timeout")?;
            let tls = tls_config(self.ca_file.as_deref())?;
            let route = proxy(&self.proxy, |name| std::env::var(name).ok())?;
            // No proxy for the agent: each request that goes through one
            // names it (`route_to`).
            let config = ureq::Agent::config_builder()
                .timeout_global(Some(self.timeout))
                .timeout_connect(Some(self.connect_timeout))
                .max_redirects(0)
                .http_status_as_error(false)
                .user_agent(USER_AGENT)
                .https_only(false)
                .proxy(None)
                .tls_config(tls)
                .build();
            Ok(Client {
                agent: ureq::Agent::new_with_config(config),
                timeout: self.timeout,
                route,
                retries: self.retries,
                max_retry_wait: self.max_retry_wait,
                jwt_lifetime: self.jwt_lifetime,
                clock: Arc::default(),
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

    /// The environment variables curl reads for the proxy of an https URL,
    /// in its order; the first that is not empty wins. IMS is https (plain
    /// http goes only to loopback, which is never proxied), so `http_proxy`
    /// is not read, nor ever `HTTP_PROXY`, which a CGI client can set with a
    /// `Proxy:` header (httpoxy).
    const PROXY_VARS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];

    /// The environment variables read for hosts that go around the proxy, in
    /// curl's order; an empty one does not hide the other.
    const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

    /// A proxy the client goes through, and the hosts that go around it.
    #[derive(Debug, Clone)]
    pub(crate) struct ProxyRoute {
        /// The proxy, or why it cannot be used (a SOCKS or malformed proxy
        /// from the environment: an error only for a request through it).
        proxy: Result<ureq::Proxy, Error>,
        /// `127.0.0.1:3128 (from $HTTPS_PROXY)`: host and port, never the
        /// user or password.
        pub(crate) name: String,
        /// The NO_PROXY list (only for a proxy from the environment).
        no_proxy: String,
    }

    impl ProxyRoute {
        fn new(proxy: Result<ureq::Proxy, Error>, from: Option<&str>, no_proxy: String) -> Self {
            let at = match &proxy {
                Ok(proxy) => format!("{}:{}", proxy.host(), proxy.port()),
                Err(_) => "that cannot be used".to_owned(),
            };
            let name = match from {
                Some(var) => format!("{at} (from ${var})"),
                None => at,
            };
            ProxyRoute {
                proxy,
                name,
                no_proxy,
            }
        }
    }

    /// The proxy `setting` names, with the environment read through `env`.
    fn proxy(
        setting: &ProxySetting,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ProxyRoute>, Error> {
        match setting {
            ProxySetting::None => Ok(None),
            ProxySetting::Url(url) => parse_proxy(&url.0, "the proxy URL")
                .map(|p| Some(ProxyRoute::new(Ok(p), None, String::new()))),
            ProxySetting::FromEnv => {
                let Some((var, value)) = first_set(&PROXY_VARS, &env) else {
                    return Ok(None);
                };
                let proxy = parse_proxy(&value, &format!("the proxy in ${var}"));
                let no_proxy = first_set(&NO_PROXY_VARS, &env).map(|(_, v)| v);
                Ok(Some(ProxyRoute::new(
                    proxy,
                    Some(var),
                    no_proxy.unwrap_or_default(),
                )))
            }
        }
    }

    /// The first of `names` whose value (from `get`) is set and not empty,
    /// as curl reads the environment.
    fn first_set<'a>(
        names: &[&'a str],
        get: impl Fn(&str) -> Option<String>,
    ) -> Option<(&'a str, String)> {
        names
            .iter()
            .find_map(|&name| get(name).filter(|v| !v.is_empty()).map(|v| (name, v)))
    }

    /// Whether `host` (a name or an IP address, without brackets) is in a
    /// NO_PROXY `list`, read as curl 7.88 and later read it (`lib/noproxy.c`):
    /// `*` alone is every host; otherwise the entries, separated by commas
    /// with blanks around them, are tried in turn (a blank not followed by a
    /// comma ends the list, as since curl 8.9).
    fn no_proxy_matches(list: &str, host: &str) -> bool {
        if list == "*" {
            return true;
        }
        let address: Option<std::net::IpAddr> = host.parse().ok();
        no_proxy_entries(list)
            .into_iter()
            .any(|entry| match address {
                Some(address) => address_matches(entry, address),
                None => name_matches(entry, host),
            })
    }

    /// The entries of a NO_PROXY list, as curl splits it.
    fn no_proxy_entries(list: &str) -> Vec<&str> {
        let blank = |c: char| c == ' ' || c == '\t';
        let mut entries = Vec::new();
        let mut rest = list;
        loop {
            rest = rest.trim_start_matches(blank);
            let end = rest
                .find(|c: char| blank(c) || c == ',')
                .unwrap_or(rest.len());
            let (entry, after) = rest.split_at(end);
            if !entry.is_empty() {
                entries.push(entry);
            }
            match after.trim_start_matches(blank).strip_prefix(',') {
                Some(more) => rest = more.trim_start_matches(','),
                None => return entries,
            }
        }
    }

    pub(crate) fn unbracket(host: &str) -> &str {
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// A name matches itself and its subdomains, in any case; a trailing dot
    /// on either side and a leading one on the entry are ignored. `*` has
    /// no meaning here: `*.example.com` matches nothing.
    fn name_matches(entry: &str, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host).as_bytes();
        let entry = entry.strip_suffix('.').unwrap_or(entry);
        let entry = entry.strip_prefix('.').unwrap_or(entry).as_bytes();
        match host.len().checked_sub(entry.len()) {
            Some(0) => host.eq_ignore_ascii_case(entry),
            Some(extra) => {
                host.get(extra - 1) == Some(&b'.')
                    && host
                        .get(extra..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(entry))
            }
            None => false,
        }
    }

    /// `entry` is an address of the host's family (`127.0.0.1`, `::1`; no
    /// brackets) or a network holding it (`10.0.0.0/8`, `fd00::/8`). As in
    /// curl, `/0` (or no `/bits`) compares the whole address.
    fn address_matches(entry: &str, address: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let (ip, bits) = match entry.split_once('/') {
            Some((ip, bits)) if !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit()) => {
                (ip, bits.parse::<u32>().unwrap_or(u32::MAX))
            }
            Some(_) => return false,
            None => (entry, 0),
        };
        let (host, network, width) = match (address, ip.parse::<IpAddr>()) {
            (IpAddr::V4(a), Ok(IpAddr::V4(n))) => {
                (u128::from(u32::from(a)), u128::from(u32::from(n)), 32)
            }
            (IpAddr::V6(a), Ok(IpAddr::V6(n))) => (u128::from(a), u128::from(n), 128),
            _ => return false,
        };
        let bits = match bits {
            0 => width,
            b if b <= width => b,
            _ => return false,
        };
        // The top `bits` of the `width`-bit address, as in a netmask.
        let mask = (u128::MAX >> (128 - bits)) << (width - bits);
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

    /// The TLS setup: rustls with the ring provider, trusting the Mozilla roots
    /// (webpki-root-certs, the one bundle in the build) plus any CA file.
    fn tls_config(ca_file: Option<&Path>) -> Result<ureq::tls::TlsConfig, Error> {
        let builder = ring_tls_builder();
        let Some(path) = ca_file else {
            return Ok(builder.root_certs(mozilla_roots_and(Vec::new())).build());
        };
        let pem = read_capped_file(path, MAX_CA_FILE_BYTES)
            .map_err(|e| Error::io(format!("cannot read CA file {path:?}"), e))?;
        let extra = pem_certificates(&pem).map_err(|e| e.in_file(path))?;
        Ok(builder.root_certs(mozilla_roots_and(extra)).build())
    }

    /// ureq's rustls, with the ring provider given explicitly (ureq is built
    /// with `rustls-no-provider`, which brings neither a provider nor roots).
    fn ring_tls_builder() -> ureq::tls::TlsConfigBuilder {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(provider)
    }

    /// The Mozilla roots, borrowed from the bundle's statics (nothing copied),
    /// and `extra`. ureq turns them into a root store once per agent, on its
    /// first HTTPS connection, so a `Client` and its clones pay for it once.
    fn mozilla_roots_and(extra: Vec<ureq::tls::Certificate<'static>>) -> ureq::tls::RootCerts {
        let roots: Vec<ureq::tls::Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()))
            .chain(extra)
            .collect();
        ureq::tls::RootCerts::new_with_certs(&roots)
    }

    /// Largest CA file read: a bundle of every public root is about 250 KiB.
    const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

    /// The certificates in a PEM bundle; other items (keys) are skipped.
    fn pem_certificates(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, Error> {
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(without_bom(pem)) {
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
        /// credentials (407, not retried) or for a local development token that
        /// has expired (it is handed out as it is until then, with no request to
        /// IMS); [`Error::UnexpectedReply`] when the reply is not what IMS sends
        /// (a token or token type with characters other than visible ASCII
        /// included); [`Error::Key`] if signing fails.
        pub fn fetch(&self, credentials: &Credentials) -> Result<AccessToken, Error> {
            match credentials {
                Credentials::ServiceAccount(account) => self.exchange_jwt(account),
                Credentials::OAuth(oauth) => self.client_credentials(oauth),
                Credentials::LocalToken(local) => local.access_token(SystemTime::now()),
            }
        }

        /// Signs a JWT and exchanges it at `/ims/exchange/jwt`.
        ///
        /// The JWT is signed on IMS's time when this host's clock is more than
        /// 30 s off it, as learned from the `Date` header of IMS's replies. When
        /// IMS refuses a JWT as `invalid_token` and its reply shows such an
        /// offset for the first time, a JWT signed on IMS's time is sent once more.
        ///
        /// # Errors
        /// See [`Client::fetch`].
        pub fn exchange_jwt(&self, account: &ServiceAccount) -> Result<AccessToken, Error> {
            // The clock correction the last JWT was signed with.
            let signed_with = std::cell::Cell::new(0);
            let result = self.exchange_jwt_cycle(account, &signed_with);
            match result {
                Err(e)
                    if is_clock_refusal(&e)
                        && correction_moved(signed_with.get(), self.clock.correction()) =>
                {
                    log::debug!("signing a new JWT on IMS's time after: {e}");
                    self.exchange_jwt_cycle(account, &signed_with)
                }
                other => other,
            }
        }

        /// One exchange with its retries; `signed_with` keeps the clock
        /// correction of the latest JWT.
        fn exchange_jwt_cycle(
            &self,
            account: &ServiceAccount,
            signed_with: &std::cell::Cell<i64>,
        ) -> Result<AccessToken, Error> {
            // A fresh JWT for every attempt: a retry must not send one that
            // expired while the previous attempt waited.
            let request = || {
                let correction = self.clock.correction();
                signed_with.set(correction);
                let now = shift(SystemTime::now(), correction);
                let jwt = sign_jwt(account, now, self.jwt_lifetime)?;
                let form = jwt_exchange_form(account, &jwt);
                Ok(FormRequest::new(
                    &form,
                    &[account.client_secret.secret(), jwt.secret()],
                ))
            };
            self.post_with_retries(
                &account.ims,
                "/ims/exchange/jwt",
                request,
                |reply, scrub| {
                    parse_reply(reply, Flow::JwtExchange, SystemTime::now(), scrub).inspect(
                        |token| {
                            let url = account.ims.join("/ims/exchange/jwt");
                            log::debug!("{}", exchange_line(Flow::JwtExchange, &url, token));
                        },
                    )
                },
            )
        }

        /// Asks `/ims/token/v3` for a token with the client-credentials grant,
        /// with `org_id` and `resource` fields when the credentials ask for
        /// them. With two client secrets, the one that worked last is sent
        /// first, and the other once when IMS answers `invalid_client` (a
        /// warning is logged then, naming them by position).
        ///
        /// # Errors
        /// See [`Client::fetch`].
        pub fn client_credentials(&self, oauth: &OAuthCredentials) -> Result<AccessToken, Error> {
            let scope = oauth.scopes.join(",");
            self.with_each_secret(&oauth.secrets, |secret| {
                let request = || {
                    let form = oauth_form(oauth, secret, &scope);
                    Ok(FormRequest::new(&form, &[secret.secret()]))
                };
                self.post_with_retries(&oauth.ims, "/ims/token/v3", request, |reply, scrub| {
                    parse_reply(reply, Flow::ClientCredentials, SystemTime::now(), scrub).inspect(
                        |token| {
                            let url = oauth.ims.join("/ims/token/v3");
                            log::debug!("{}", exchange_line(Flow::ClientCredentials, &url, token));
                        },
                    )
                })
            })
        }

        /// Asks IMS whether it still accepts `token` (`POST
        /// /ims/validate_token/v1`, a form with `type=access_token`,
        /// `client_id` and `token`, and the `X-IMS-ClientId` header). The
        /// token goes in the form, never in the URL, where proxies log it.
        /// `client_id` is the client the token was issued to (see
        /// [`Credentials::client_id`], or [`TokenClaims::client_id`](crate::TokenClaims)
        /// from [`decode_token`](crate::decode_token)). White space around
        /// the token (a newline from stdin) is ignored. Retried as a fetch is.
        ///
        /// ```no_run
        /// # fn main() -> Result<(), ims_token::Error> {
        /// use ims_token::{Client, Credentials};
        /// let client = Client::new()?;
        /// let credentials = Credentials::from_file("project.json")?;
        /// let token = client.fetch(&credentials)?;
        /// let validity = client.validate_token(credentials.ims(), credentials.client_id(), token.secret())?;
        /// assert!(validity.is_valid());
        /// # Ok(())
        /// # }
        /// ```
        ///
        /// # Errors
        /// As [`Client::fetch`]: [`Error::Rejected`] when IMS refuses the
        /// request itself (an unknown client id, say); [`Error::Unavailable`],
        /// [`Error::Transport`] or [`Error::Timeout`] when it is worth trying
        /// later; [`Error::UnexpectedReply`] for a 200 without `valid`. A
        /// token IMS does not accept is not an error: it is
        /// [`TokenValidity::Invalid`]. [`Error::Config`] for a client id that
        /// could not go into a header (a decoded token's, say).
        pub fn validate_token(
            &self,
            ims: &Endpoint,
            client_id: &str,
            token: &str,
        ) -> Result<TokenValidity, Error> {
            let token = token.trim();
            check_header_value(client_id, "client id")?;
            let request = || {
                let form = validation_form(client_id, token);
                Ok(FormRequest::new(&form, &[token]).with_client_id_header(client_id))
            };
            self.post_with_retries(ims, "/ims/validate_token/v1", request, |reply, scrub| {
                judge_reply(reply, scrub, "the token", |reply| {
                    parse_validation(reply, scrub)
                })
            })
        }

        /// Ends `token` at IMS at once (`POST /ims/invalidate_token/v2`, a form
        /// with `token_type=access_token`, `token`, `client_id` and
        /// `client_secret`, and the `X-IMS-ClientId` header), with the client
        /// id, secret (as [`Client::client_credentials`] picks it, of two) and
        /// endpoint of `credentials`. The token goes in the form, never in
        /// the URL; white space around the token is ignored. Retried as a
        /// fetch is; revoking a token twice is harmless.
        ///
        /// # Errors
        /// As [`Client::fetch`]; [`Error::Config`] for a local development
        /// token's credentials, which hold no client secret.
        pub fn revoke_token(&self, credentials: &Credentials, token: &str) -> Result<(), Error> {
            let token = token.trim();
            let revoke = |client_id: &str, secret: &ClientSecret| {
                check_header_value(client_id, "client id")?;
                let request = || {
                    let form = revocation_form(client_id, secret, token);
                    Ok(FormRequest::new(&form, &[secret.secret(), token])
                        .with_client_id_header(client_id))
                };
                let ims = credentials.ims();
                self.post_with_retries(ims, "/ims/invalidate_token/v2", request, |reply, scrub| {
                    judge_reply(reply, scrub, "the token and the client secret", |_| Ok(()))
                })
            };
            match credentials {
                Credentials::ServiceAccount(a) => revoke(&a.client_id, &a.client_secret),
                Credentials::OAuth(o) => {
                    self.with_each_secret(&o.secrets, |secret| revoke(&o.client_id, secret))
                }
                _ => Err(Error::config(
                    "a local development token comes without a client secret: revoking a \
                     token needs the credentials of the client it was issued to",
                )),
            }
        }

        /// Runs `attempt` with each client secret in turn, the one that
        /// worked last first, going on to the other only when IMS answers
        /// `invalid_client`. When the other one works, it is remembered and a
        /// warning names both by position.
        fn with_each_secret<T>(
            &self,
            secrets: &ClientSecrets,
            attempt: impl Fn(&ClientSecret) -> Result<T, Error>,
        ) -> Result<T, Error> {
            let mut order = secrets.in_order().into_iter().peekable();
            let mut refused = None;
            while let Some((position, secret)) = order.next() {
                match attempt(secret) {
                    Err(e) if is_secret_refusal(&e) && order.peek().is_some() => {
                        log::debug!("trying the other client secret after: {e}");
                        refused = Some(position);
                    }
                    Ok(done) => {
                        if let Some(refused) = refused {
                            secrets.worked(position);
                            log::warn!("{}", rotation_warning(refused, position));
                        }
                        return Ok(done);
                    }
                    Err(e) => return Err(e),
                }
            }
            // `in_order` always has one secret, and the last one returns.
            Err(Error::config("the credentials hold no client secret"))
        }

        /// The longest one [`Client::fetch`] of `credentials` can take with
        /// these settings: every attempt timing out and the longest waits between
        /// them; for a JWT exchange, twice that (the one more exchange on IMS's
        /// time); for OAuth, that once per client secret (twice for a
        /// project credential with two, the second tried when IMS refuses
        /// the first); none for a local development token. A caller waiting for
        /// another's fetch waits this long at most.
        pub fn max_fetch_time(&self, credentials: &Credentials) -> Duration {
            let attempts = self.retries.saturating_add(1);
            let cycle = self
                .timeout
                .saturating_mul(attempts)
                .saturating_add(self.max_retry_wait.saturating_mul(self.retries));
            match credentials {
                Credentials::ServiceAccount(_) => cycle.saturating_mul(2),
                // One cycle per client secret.
                Credentials::OAuth(o) => cycle.saturating_mul(o.secrets.in_order().len() as u32),
                Credentials::LocalToken(_) => Duration::ZERO,
            }
        }

        /// IMS's clock minus this host's, in whole seconds, from the `Date`
        /// header of IMS's latest reply (`None` before any reply had one).
        /// Positive: this host's clock is behind.
        pub fn clock_offset(&self) -> Option<i64> {
            self.clock.offset()
        }

        /// Checks, without a request, the proxy that requests to `ims` go
        /// through. A loopback endpoint, or a host that `no_proxy` /
        /// `NO_PROXY` lists, goes direct: no proxy setting is an error for it.
        /// [`Client::fetch`] makes the same check before its first request.
        ///
        /// # Errors
        /// [`Error::Config`] when the proxy from the environment that `ims`
        /// would go through is a SOCKS proxy or not a valid proxy URL (which
        /// is never quoted: it may hold a password).
        pub fn check_proxy(&self, ims: &Endpoint) -> Result<(), Error> {
            self.route_to(ims).map(|_| ())
        }

        /// Posts the form `request` makes to `path`, and retries on what is
        /// worth it (with backoff, at most `retries` times); `judge` turns a
        /// reply into the result, scrubbing the secrets it is given from
        /// anything it quotes.
        fn post_with_retries<T>(
            &self,
            ims: &Endpoint,
            path: &str,
            request: impl Fn() -> Result<FormRequest, Error>,
            judge: impl Fn(&RawReply, &[&str]) -> Result<T, Error>,
        ) -> Result<T, Error> {
            let url = ims.join(path);
            let via = self.route_to(ims)?;
            let mut attempt = 0;
            loop {
                let request = request()?;
                let result = self.post_once(&url, via, &request).and_then(|reply| {
                    self.clock.learn(reply.clock_offset);
                    judge(&reply, &request.scrub())
                });
                match result {
                    Err(e) if attempt < self.retries && e.is_retryable() => {
                        let wait = self.wait_before_retry(attempt, &e);
                        log::debug!(
                            "retrying the IMS request in {} ms after: {e}",
                            wait.as_millis()
                        );
                        std::thread::sleep(wait);
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

        /// The proxy to reach `ims` through, and the proxy itself: none for
        /// a loopback endpoint or a host NO_PROXY lists; an error when it is
        /// one that cannot be used.
        fn route_to(&self, ims: &Endpoint) -> Result<Option<&ProxyRoute>, Error> {
            self.route_to_host(ims.bare_host())
        }

        /// The proxy to reach `host` through: none for loopback or a host
        /// NO_PROXY lists; an error when it is one that cannot be used.
        fn route_to_host(&self, host: &str) -> Result<Option<&ProxyRoute>, Error> {
            let Some(route) = &self.route else {
                return Ok(None);
            };
            if is_loopback_host(host) || no_proxy_matches(&route.no_proxy, host) {
                return Ok(None);
            }
            route.proxy.as_ref().map_err(Clone::clone)?;
            Ok(Some(route))
        }

        /// Sends `call` once with the caller's headers and `ours`, through
        /// this client's agent (its timeouts, proxy and CA file; redirects
        /// are not followed), and reads the reply, its body capped at
        /// `max_body` bytes.
        pub(crate) fn send_api(
            &self,
            call: &ApiCall<'_>,
            ours: &ApiHeaders,
            max_body: u64,
        ) -> Result<ApiResponse, Error> {
            let via = self.route_to_host(&call.host)?;
            let mut builder = ureq::http::Request::builder()
                .method(call.method.clone())
                .uri(call.uri.clone());
            for (name, value) in call.headers_with(ours) {
                builder = builder.header(name, value);
            }
            let mut response = match call.body() {
                Some(body) => self.run(builder.body(body), via),
                None => self.run(builder.body(()), via),
            }
            .map_err(|e| match e {
                ureq::Error::LargeResponseHeader(_, max) => Error::ApiReply {
                    status: None,
                    message: format!(
                        "the reply of {} has headers larger than {} KiB",
                        call.shown,
                        max / 1024
                    ),
                },
                e => {
                    Error::from_transport(&call.shown, e, "cannot reach the API at", via, "the API")
                }
            })?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect();
            let too_large = || Error::ApiReply {
                status: Some(status),
                message: format!(
                    "the reply of {} ({status}) is larger than {}",
                    call.shown,
                    byte_size(max_body)
                ),
            };
            let body = read_body(
                &mut response,
                max_body,
                too_large,
                &call.shown,
                via,
                "the API",
            )?;
            Ok(ApiResponse {
                status,
                headers,
                body,
            })
        }

        /// Runs a built request through the agent: through the proxy of
        /// `via` when there is one, else direct (the agent has no proxy of
        /// its own).
        fn run<B: ureq::AsSendBody>(
            &self,
            request: Result<ureq::http::Request<B>, ureq::http::Error>,
            via: Option<&ProxyRoute>,
        ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
            let mut request = request?;
            // `route_to_host` hands out only a route whose proxy can be used.
            if let Some(proxy) = via.and_then(|route| route.proxy.as_ref().ok()) {
                request = self
                    .agent
                    .configure_request(request)
                    .proxy(Some(proxy.clone()))
                    .build();
            }
            self.agent.run(request)
        }

        fn post_once(
            &self,
            url: &str,
            via: Option<&ProxyRoute>,
            form: &FormRequest,
        ) -> Result<RawReply, Error> {
            let mut request = self.agent.post(url);
            // `route_to` hands out only a route whose proxy can be used.
            if let Some(proxy) = via.and_then(|route| route.proxy.as_ref().ok()) {
                request = request.config().proxy(Some(proxy.clone())).build();
            }
            if let Some(client_id) = &form.client_id_header {
                request = request.header("X-IMS-ClientId", client_id);
            }
            let mut response = request
                .header("Accept", "application/json")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(form.body.0.as_bytes())
                .map_err(|e| match e {
                    ureq::Error::LargeResponseHeader(_, max) => Error::unexpected(
                        None,
                        format!("the IMS reply's headers are larger than {} KiB", max / 1024),
                    ),
                    e => Error::from_transport(url, e, "cannot reach IMS at", via, "IMS"),
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
            let clock_offset = header("date")
                .as_deref()
                .and_then(parse_http_date)
                .map(|date| seconds_between(SystemTime::now(), date));
            let too_large = || {
                Error::unexpected(
                    Some(status),
                    format!(
                        "the IMS reply is larger than {} KiB",
                        MAX_REPLY_BYTES / 1024
                    ),
                )
            };
            let body = read_body(&mut response, MAX_REPLY_BYTES, too_large, url, via, "IMS")
                .map(zeroize::Zeroizing::new)?;
            Ok(RawReply {
                status,
                debug_id,
                retry_after,
                location,
                clock_offset,
                body,
            })
        }
    }

    /// IMS refused the client id and secret pair: another secret may work.
    fn is_secret_refusal(e: &Error) -> bool {
        matches!(e, Error::Rejected(ims) if ims.code.as_deref() == Some("invalid_client"))
    }

    /// The warning when the other of two client secrets worked: by position,
    /// never by value.
    fn rotation_warning(refused: usize, worked: usize) -> String {
        let nth = |position| if position == 1 { "first" } else { "second" };
        format!(
            "IMS refused the {} of the credential's two client secrets (invalid_client) and \
             accepted the {}, which is used from now on; if a secret is being rotated, \
             update the credentials once the old one is deleted",
            nth(refused),
            nth(worked)
        )
    }

    /// A value for a request header (`X-IMS-ClientId`) must be visible
    /// ASCII: a CR/LF would end the header, and ureq refuses it only after
    /// the request was tried, as a transport error worth retrying.
    fn check_header_value(value: &str, what: &str) -> Result<(), Error> {
        if is_visible_ascii(value) {
            Ok(())
        } else {
            Err(Error::config(format!(
                "the {what} has characters that are not visible ASCII; it cannot go into a header"
            )))
        }
    }

    /// A reply's body, at most `limit` bytes (`too_large` past it); a read
    /// that breaks off is a transport error naming `server` at `url`.
    fn read_body(
        response: &mut ureq::http::Response<ureq::Body>,
        limit: u64,
        too_large: impl FnOnce() -> Error,
        url: &str,
        via: Option<&ProxyRoute>,
        server: &str,
    ) -> Result<Vec<u8>, Error> {
        let broke = format!("the reply broke off from {server} at");
        response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => too_large(),
                e => Error::from_transport(url, e, &broke, via, server),
            })
    }

    /// The debug line for a successful exchange: the flow, the endpoint and
    /// the token's lifetime; never the token.
    fn exchange_line(flow: Flow, url: &str, token: &AccessToken) -> String {
        let flow = match flow {
            Flow::JwtExchange => "JWT exchange",
            Flow::ClientCredentials => "client credentials",
        };
        let lifetime = token
            .expires_at()
            .duration_since(token.received_at())
            .unwrap_or_default();
        format!(
            "IMS issued a token ({flow}, {url}) that lives {} s",
            lifetime.as_secs()
        )
    }

    /// The ureq error of a request, in the crate's terms.
    impl Error {
        /// `what` says how far the call got, e.g. `cannot reach IMS at`; `via`
        /// is the proxy the request went through; `server` names what is at
        /// `url` (`IMS`, `the API`).
        pub(crate) fn from_transport(
            url: &str,
            e: ureq::Error,
            what: &str,
            via: Option<&ProxyRoute>,
            server: &str,
        ) -> Self {
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
                            source: Some(Arc::new(e)),
                        },
                        ProxyProblem::Unreachable => Error::Transport {
                            message: format!(
                                "cannot reach the proxy {proxy} on the way to {server} at {url}"
                            ),
                            source: Arc::new(e),
                        },
                        ProxyProblem::NoTunnel => Error::Transport {
                            message: format!(
                                "the proxy {proxy} did not open a tunnel to {server} at {url}"
                            ),
                            source: Arc::new(e),
                        },
                    };
                }
            }
            let through = via
                .map(|route| format!(" through the proxy {}", route.name))
                .unwrap_or_default();
            if is_timeout(&e) {
                // Through a proxy, the silence may be the proxy's own (a
                // CONNECT never answered): name it first.
                let message = match via {
                    Some(route) => format!(
                        "the proxy {} or {server} at {url} behind it did not answer in time",
                        route.name
                    ),
                    None => format!("{server} at {url} did not answer in time"),
                };
                return Error::Timeout {
                    message,
                    source: Arc::new(e),
                };
            }
            match tls_problem(&e) {
                Some(problem) => Error::Tls {
                    message: format!("cannot reach {server} at {url}{through}: {problem}"),
                    source: Arc::new(e),
                },
                None => Error::Transport {
                    message: format!("{what} {url}{through}"),
                    source: Arc::new(e),
                },
            }
        }
    }

    /// What went wrong with the proxy itself, as opposed to IMS behind it.
    pub(crate) enum ProxyProblem {
        /// It answered the CONNECT with 407: its user or password is wrong.
        Refused,
        /// No connection to it could be opened.
        Unreachable,
        /// It answered the CONNECT with another refusal or not at all.
        NoTunnel,
    }

    pub(crate) fn proxy_problem(e: &ureq::Error) -> Option<ProxyProblem> {
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

    pub(crate) fn is_timeout(e: &ureq::Error) -> bool {
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
    pub(crate) fn tls_problem(e: &ureq::Error) -> Option<String> {
        use rustls::CertificateError as C;
        let what = match certificate_error(e)? {
            C::UnknownIssuer => "is not trusted (unknown issuer; add the CA with a CA file)",
            C::Expired | C::ExpiredContext { .. } => "has expired",
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "is not valid for this host name"
            }
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

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::test_support::*;

        #[test]
        fn a_client_id_that_would_break_a_header_is_refused_before_any_request() {
            // Port 9 on loopback: nothing listens; the check comes first.
            let client = Client::builder().proxy(None).retries(3).build().unwrap();
            let ims = Endpoint::parse("http://127.0.0.1:9").unwrap();
            for id in ["cid\r\nX-Injected: 1", "c id", ""] {
                let e = client.validate_token(&ims, id, "a.b.c").unwrap_err();
                assert!(matches!(e, Error::Config { .. }), "{id:?}: {e:?}");
                assert!(e.to_string().contains("client id"), "{e}");
            }
        }

        /// One case per NO_PROXY form curl reads (`lib/noproxy.c` of curl
        /// 7.88 to 8.20; its unit test 1614 holds the same cases).
        #[test]
        fn no_proxy_exact_names_any_case() {
            assert!(no_proxy_matches("ims.example.com", "ims.example.com"));
            assert!(no_proxy_matches("IMS.Example.COM", "ims.example.com"));
            assert!(no_proxy_matches("ims.example.com", "IMS.EXAMPLE.com"));
            assert!(!no_proxy_matches("other.example.com", "ims.example.com"));
            assert!(!no_proxy_matches("", "ims.example.com"));
        }

        #[test]
        fn no_proxy_entries_are_comma_separated_with_blanks_around() {
            assert!(no_proxy_matches("localhost, 127.0.0.1", "127.0.0.1"));
            assert!(no_proxy_matches(" a.test ,, b.test ", "b.test"));
            assert!(!no_proxy_matches("a.test, b.test", "c.test"));
            assert_eq!(no_proxy_entries(" a ,,b\t, c,"), ["a", "b", "c"]);
            // Blanks without a comma end the list (curl 8.9 and later).
            assert_eq!(no_proxy_entries("a.test b.test, c.test"), ["a.test"]);
            assert!(!no_proxy_matches("a.test\tb.test", "b.test"));
            // Other whitespace is part of an entry.
            assert!(!no_proxy_matches("a.test\nb.test", "b.test"));
        }

        #[test]
        fn no_proxy_domains_with_or_without_a_leading_dot() {
            for list in [".example.com", "example.com", "example.com."] {
                assert!(no_proxy_matches(list, "ims.example.com"), "{list}");
                assert!(no_proxy_matches(list, "a.b.example.com"), "{list}");
                assert!(no_proxy_matches(list, "example.com"), "{list}");
                assert!(!no_proxy_matches(list, "notexample.com"), "{list}");
                assert!(!no_proxy_matches(list, "example.com.evil.test"), "{list}");
            }
            assert!(no_proxy_matches("example.com", "ims.example.com."));
            assert!(!no_proxy_matches(".", "example.com"));
            assert!(!no_proxy_matches("*.", "example.com"));
            // `*.` is no wildcard in curl: it matches nothing.
            for host in ["ims.example.com", "example.com", "localhost", "a.localhost"] {
                assert!(!no_proxy_matches("*.example.com", host), "{host}");
                assert!(!no_proxy_matches("*.localhost", host), "{host}");
            }
        }

        #[test]
        fn no_proxy_star_only_as_the_whole_value() {
            for host in ["ims.example.com", "127.0.0.1", "::1"] {
                assert!(no_proxy_matches("*", host));
                assert!(!no_proxy_matches("other.test,*", host), "{host}");
                assert!(!no_proxy_matches("*, other.test", host), "{host}");
                assert!(!no_proxy_matches(" *", host), "{host}");
            }
            assert!(!no_proxy_matches("*x", "ims.example.com"));
        }

        #[test]
        fn no_proxy_ipv4_addresses_and_networks() {
            assert!(no_proxy_matches("127.0.0.1", "127.0.0.1"));
            assert!(!no_proxy_matches("127.0.0.2", "127.0.0.1"));
            assert!(no_proxy_matches("127.0.0.0/8", "127.1.2.3"));
            assert!(no_proxy_matches("10.1.2.3/32", "10.1.2.3"));
            assert!(!no_proxy_matches("10.0.0.0/8", "127.0.0.1"));
            // As in curl, `/0` compares the whole address.
            assert!(!no_proxy_matches("0.0.0.0/0", "127.0.0.1"));
            assert!(no_proxy_matches("127.0.0.1/0", "127.0.0.1"));
            for bad in ["127.0.0.1/33", "127.0.0.1/x", "127.0.0.1/", "127.0.0.1/8/8"] {
                assert!(!no_proxy_matches(bad, "127.0.0.1"), "{bad}");
            }
            // A name is not an address.
            assert!(!no_proxy_matches("localhost", "127.0.0.1"));
        }

        #[test]
        fn no_proxy_ipv6_addresses_without_brackets() {
            for list in ["::1", "0:0:0:0:0:0:0:1", "::1/128", "::/127", "foo, ::1/64"] {
                assert!(no_proxy_matches(list, "::1"), "{list}");
            }
            // curl does not read brackets in NO_PROXY: `[::1]` matches nothing.
            for list in ["[::1]", "[::1]/128"] {
                assert!(!no_proxy_matches(list, "::1"), "{list}");
            }
            assert!(no_proxy_matches("fd00::/8", "fd12::1"));
            assert!(!no_proxy_matches("fd00::/8", "fe80::1"));
            assert!(!no_proxy_matches("::2", "::1"));
            assert!(!no_proxy_matches("::1/129", "::1"));
            // The families do not mix.
            assert!(!no_proxy_matches("127.0.0.1", "::1"));
            assert!(!no_proxy_matches("::ffff:127.0.0.1", "127.0.0.1"));
        }

        /// A lookup of `pairs`, as the environment.
        fn env<'a>(
            pairs: &'a [(&'static str, &'static str)],
        ) -> impl Fn(&str) -> Option<String> + 'a {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        }

        #[test]
        fn an_empty_no_proxy_does_not_hide_a_set_one() {
            let pick = |pairs| first_set(&NO_PROXY_VARS, env(pairs)).map(|(_, v)| v);
            assert_eq!(
                pick(&[("NO_PROXY", ""), ("no_proxy", "a.test")]),
                Some("a.test".into())
            );
            assert_eq!(
                pick(&[("NO_PROXY", "b.test"), ("no_proxy", "a.test")]),
                Some("a.test".into())
            );
            assert_eq!(
                pick(&[("NO_PROXY", "b.test"), ("no_proxy", "")]),
                Some("b.test".into())
            );
            // Blank is not empty: as in curl, it hides NO_PROXY (and lists nothing).
            assert_eq!(
                pick(&[("NO_PROXY", "b.test"), ("no_proxy", " ")]),
                Some(" ".into())
            );
            assert_eq!(pick(&[("NO_PROXY", "")]), None);
        }

        /// The route a client from these variables takes to `host`: the
        /// proxy's name, or the error of a proxy that cannot be used.
        fn route(
            pairs: &[(&'static str, &'static str)],
            host: &str,
        ) -> Result<Option<String>, Error> {
            let route = proxy(&ProxySetting::FromEnv, env(pairs))?;
            let client = Client {
                route,
                ..Client::builder().proxy(None).build()?
            };
            let ims = Endpoint::parse(host)?;
            client.check_proxy(&ims)?;
            Ok(client.route_to(&ims)?.map(|r| r.name.clone()))
        }

        #[test]
        fn the_proxy_variables_as_curl_reads_them_for_https() {
            let ims = "ims-na1.adobelogin.com";
            let via = |pairs| route(pairs, ims).unwrap();
            let name = |port: u16, var: &str| Some(format!("p:{port} (from ${var})"));
            assert_eq!(
                via(&[("ALL_PROXY", "http://p:1"), ("HTTPS_PROXY", "http://p:2")]),
                name(2, "HTTPS_PROXY")
            );
            assert_eq!(
                via(&[("HTTPS_PROXY", "http://p:2"), ("https_proxy", "http://p:3")]),
                name(3, "https_proxy")
            );
            assert_eq!(
                via(&[("ALL_PROXY", "http://p:1"), ("all_proxy", "http://p:4")]),
                name(4, "all_proxy")
            );
            assert_eq!(via(&[("ALL_PROXY", "http://p:1")]), name(1, "ALL_PROXY"));
            assert_eq!(
                via(&[("ALL_PROXY", ""), ("https_proxy", "http://p:3")]),
                name(3, "https_proxy")
            );
            // HTTP_PROXY (httpoxy) and http_proxy are not read for https.
            assert_eq!(
                via(&[("HTTP_PROXY", "http://p:5"), ("http_proxy", "http://p:6")]),
                None
            );
        }

        #[test]
        fn a_socks_or_malformed_proxy_is_an_error_only_where_it_is_used() {
            let ims = "ims-na1.adobelogin.com";
            let socks = [("ALL_PROXY", "socks5://user:pa55word@p:1")];
            let e = route(&socks, ims).unwrap_err();
            assert!(e.to_string().contains("$ALL_PROXY is a SOCKS proxy"), "{e}");
            assert!(!format!("{e:?}").contains("pa55word"));
            let bad = [("HTTPS_PROXY", "http://user:pa55word@bad host:1")];
            let e = route(&bad, ims).unwrap_err();
            assert!(
                e.to_string()
                    .contains("$HTTPS_PROXY is not a valid proxy URL"),
                "{e}"
            );
            assert!(!format!("{e:?}").contains("pa55word"));
            // Bypassed, loopback, or losing to HTTPS_PROXY: no error.
            let bypassed = [socks[0], ("NO_PROXY", ims)];
            assert_eq!(route(&bypassed, ims).unwrap(), None);
            assert_eq!(route(&socks, "http://127.0.0.1:8080").unwrap(), None);
            let both = [socks[0], ("HTTPS_PROXY", "http://p:2")];
            assert_eq!(
                route(&both, ims).unwrap(),
                Some("p:2 (from $HTTPS_PROXY)".into())
            );
        }

        #[test]
        fn loopback_endpoints_never_go_through_a_proxy() {
            let client = Client::builder()
                .proxy(Some("http://p:3128"))
                .build()
                .unwrap();
            for url in [
                "http://127.0.0.1:8080",
                "http://localhost",
                "http://[::1]:1",
                "https://127.0.0.2",
                "https://[::ffff:7f00:1]",
            ] {
                let ims = Endpoint::parse(url).unwrap();
                assert!(is_loopback_host(ims.bare_host()), "{url}");
                assert!(client.route_to(&ims).unwrap().is_none(), "{url}");
            }
            for host in [
                "ims-na1.adobelogin.com",
                "localhost.evil.test",
                "10.0.0.1",
                "[::2]",
            ] {
                let ims = Endpoint::parse(host).unwrap();
                assert!(!is_loopback_host(ims.bare_host()), "{host}");
                assert!(client.route_to(&ims).unwrap().is_some(), "{host}");
            }
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
        fn the_exchange_line_tells_flow_endpoint_and_lifetime_only() {
            let token = AccessToken::new("s3cr3t-token", "bearer", at(T0), at(T0 + 86_399));
            let url = "https://ims-na1.adobelogin.com/ims/token/v3";
            let line = exchange_line(Flow::ClientCredentials, url, &token);
            assert_eq!(
                line,
                "IMS issued a token (client credentials, https://ims-na1.adobelogin.com/ims/token/v3) \
                 that lives 86399 s"
            );
            let jwt = exchange_line(Flow::JwtExchange, url, &token);
            assert!(
                jwt.contains("(JWT exchange, ") && !jwt.contains("s3cr3t"),
                "{jwt}"
            );
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

        #[test]
        fn only_invalid_client_tries_the_other_secret_and_the_warning_names_positions() {
            let refusal = |status, code: &str| {
                let body = serde_json::json!({ "error": code }).to_string();
                parse_reply(&reply(status, &body), Flow::ClientCredentials, at(T0), &[])
                    .unwrap_err()
            };
            assert!(is_secret_refusal(&refusal(401, "invalid_client")));
            assert!(is_secret_refusal(&refusal(400, "invalid_client")));
            assert!(!is_secret_refusal(&refusal(400, "invalid_scope")));
            assert!(!is_secret_refusal(&refusal(503, "invalid_client")));
            let warning = rotation_warning(1, 2);
            assert!(
                warning.starts_with(
                    "IMS refused the first of the credential's two client secrets \
                     (invalid_client) and accepted the second, which is used from now on"
                ),
                "{warning}"
            );
            assert!(rotation_warning(2, 1).contains("refused the second"));
        }
    }
}

// ---------------------------------------------------------------------------
// The refresh rule: one pure decision for the provider, the command's cache
// and the sink.
mod refresh {
    use std::fmt;
    use std::time::{Duration, SystemTime};

    use crate::{AccessToken, Error};

    /// After a refresh failed and the old token was kept: how long the old
    /// token is handed out before IMS is asked again.
    pub const REFRESH_RETRY_PAUSE: Duration = Duration::from_secs(30);

    /// Default cooldown of the brake on invalidation (see
    /// [`RefreshRule::invalidate`]): a token that replaced an invalidated one
    /// is not dropped again until it is this old.
    pub const DEFAULT_INVALIDATE_COOLDOWN: Duration = Duration::from_secs(60);

    /// The longest pause between refreshes that keep failing, for a holder
    /// that counts them ([`RefreshRule::retry_at`]).
    pub const REFRESH_RETRY_MAX_PAUSE: Duration = Duration::from_secs(300);

    /// When to refresh a token, and what to keep when a refresh fails: the
    /// one rule that [`TokenProvider`](crate::TokenProvider), the command's
    /// `--cache` and its `sink` all follow. It is pure: the caller passes
    /// `now` and keeps the [`Held`] state wherever it likes (memory, a file).
    ///
    /// - A token is due for a refresh at a point inside the margin before it
    ///   expires; the margin is capped at half the token's lifetime, so a
    ///   short-lived token is still used for a while.
    /// - A due token that has not expired is still handed out while one
    ///   refresh runs; only a holder with no unexpired token waits.
    /// - A token received more than a few seconds after `now` (fetched
    ///   while the clock was ahead, and so claiming more time than its
    ///   lifetime) counts as none: it is refreshed, never handed out.
    /// - A refresh that fails other than by IMS's refusal (IMS 5xx or 429,
    ///   network, timeout, TLS, proxy, an odd reply) keeps the unexpired
    ///   token, and IMS is asked again after [`REFRESH_RETRY_PAUSE`]. A
    ///   refusal ([`Error::Rejected`]) drops it.
    /// - An invalidation (an API answered 401 to the token) drops the held
    ///   token, with a brake: a token that replaced an invalidated one is kept
    ///   until it is as old as the cooldown ([`RefreshRule::invalidate`]).
    /// - A holder that counts the failures in a row (the `sink`) backs off:
    ///   [`retry_at`](RefreshRule::retry_at) doubles the pause up to
    ///   [`REFRESH_RETRY_MAX_PAUSE`], never past the kept token's expiry.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use ims_token::{AccessToken, Held, RefreshRule, Step};
    /// let now = SystemTime::now();
    /// let rule = RefreshRule::exact(Duration::from_secs(600));
    /// let day = AccessToken::new("t", "bearer", now, now + Duration::from_secs(86_400));
    /// let held = Held { token: Some(day), retry_at: None };
    /// assert_eq!(rule.step(&held, now, false), Step::UseCached);
    /// assert_eq!(rule.step(&Held::default(), now, true), Step::Wait);
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct RefreshRule {
        margin: Duration,
        /// Where in the margin the refresh point lies, in thousandths (500..=1000).
        permille: u32,
        /// The brake on invalidation: see [`RefreshRule::invalidate`].
        cooldown: Duration,
    }

    /// What a holder of a token knows: the token (if any) and, after a
    /// failed refresh that kept it, when to ask IMS again.
    #[derive(Debug, Clone, Default)]
    pub struct Held {
        /// The token, if one is held.
        pub token: Option<AccessToken>,
        /// After a failed refresh that kept the token: when to ask IMS again.
        pub retry_at: Option<SystemTime>,
    }

    impl Held {
        /// The held token, if it still works at `now`: not expired, and not
        /// received in the future (fetched while the clock was ahead, it
        /// claims more time than IMS granted). The only test of a token's
        /// use, for [`RefreshRule::step`] and whoever hands a token out.
        pub fn usable(&self, now: SystemTime) -> Option<&AccessToken> {
            self.token.as_ref().filter(|t| is_usable(t, now))
        }

        /// Whether `now` is in the pause after a failed refresh that kept
        /// the token (before `retry_at`), as [`RefreshRule::step`] sees it:
        /// a pause longer than [`REFRESH_RETRY_MAX_PAUSE`] is not one of the
        /// rule's (a clock stepped back, a file edited by hand) and does not
        /// count. A holder that hands out a due token says why (see
        /// [`fallback_warning`]) only inside the pause.
        pub fn is_pausing(&self, now: SystemTime) -> bool {
            is_pausing(self, now)
        }
    }

    /// What the holder of a token does next, by [`RefreshRule::step`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Step {
        /// Hand out the held token.
        UseCached,
        /// Refresh it (and wait for the outcome only without an unexpired token).
        Refresh,
        /// Wait for the refresh that runs elsewhere: there is no unexpired token.
        Wait,
    }

    /// How a refresh ended, by [`RefreshRule::record`].
    #[derive(Debug)]
    pub enum Outcome {
        /// A new token.
        New(AccessToken),
        /// The refresh failed other than by IMS's refusal; the old token
        /// still works and is kept until the pause ends.
        Kept(AccessToken, Error),
        /// The refresh failed and there is no token to fall back on.
        Failed(Error),
    }

    /// What [`RefreshRule::invalidate`] did with a token an API refused.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Invalidation {
        /// It was the held token and is dropped: the next token is a new one,
        /// and a request that was refused is worth sending again with it.
        Dropped,
        /// It is the held token, but it replaced an invalidated token and IMS
        /// issued it `age` ago, less than the cooldown: it is kept. A new
        /// token would be refused for the same reason (see [`brake_warning`]).
        Kept {
            /// How long ago the token was received from IMS.
            age: Duration,
        },
        /// It is not the held token (another caller already dropped it, or it
        /// never was held): nothing is dropped. The held token, if any, is
        /// another one, worth a try.
        NotHeld,
    }

    impl RefreshRule {
        /// A rule that refreshes at a random point between `margin` and half
        /// of it before expiry (so that processes started together do not
        /// all ask IMS in the same second).
        pub fn new(margin: Duration) -> Self {
            RefreshRule {
                margin,
                permille: random_permille(),
                cooldown: DEFAULT_INVALIDATE_COOLDOWN,
            }
        }

        /// A rule that refreshes exactly `margin` before expiry (capped at
        /// half the token's lifetime), with no random spread.
        pub fn exact(margin: Duration) -> Self {
            RefreshRule {
                margin,
                permille: 1000,
                cooldown: DEFAULT_INVALIDATE_COOLDOWN,
            }
        }

        /// The same rule with another cooldown for the brake on invalidation
        /// (default [`DEFAULT_INVALIDATE_COOLDOWN`], 60 s; zero turns the
        /// brake off).
        #[must_use = "this returns the changed rule"]
        pub fn with_invalidate_cooldown(self, cooldown: Duration) -> Self {
            RefreshRule { cooldown, ..self }
        }

        /// The cooldown of the brake on invalidation.
        pub fn invalidate_cooldown(&self) -> Duration {
            self.cooldown
        }

        /// The same spread, another margin.
        #[must_use = "this returns the changed rule"]
        pub fn with_margin(self, margin: Duration) -> Self {
            RefreshRule { margin, ..self }
        }

        /// The margin as given.
        pub fn margin(&self) -> Duration {
            self.margin
        }

        /// When `token` is due for a refresh: its expiry less the spread
        /// margin, which is capped at half the token's lifetime.
        pub fn refresh_at(&self, token: &AccessToken) -> SystemTime {
            let margin = jittered(token.capped_margin(self.margin), self.permille);
            token
                .expires_at()
                .checked_sub(margin)
                .unwrap_or(token.received_at())
        }

        /// What the holder of `held` does at `now`. `refreshing` says that a
        /// refresh already runs elsewhere (another thread, or another process
        /// holding the cache's lock).
        pub fn step(&self, held: &Held, now: SystemTime, refreshing: bool) -> Step {
            match held.usable(now) {
                Some(token) => {
                    let due = now >= self.refresh_at(token);
                    if due && !is_pausing(held, now) && !refreshing {
                        Step::Refresh
                    } else {
                        Step::UseCached
                    }
                }
                None if refreshing => Step::Wait,
                None => Step::Refresh,
            }
        }

        /// When [`step`](RefreshRule::step) next says [`Step::Refresh`] for
        /// `held` with no refresh running, as seen at `now`: the refresh
        /// point of the token or the end of the pause after a failed
        /// refresh, whichever is later, and never after the token expires;
        /// `now` when no unexpired token is held. A holder that sleeps
        /// until a refresh (the `sink`) wakes then.
        pub fn next_refresh(&self, held: &Held, now: SystemTime) -> SystemTime {
            let Some(token) = held.token.as_ref().filter(|t| !t.is_expired(now)) else {
                return now;
            };
            let due = self.refresh_at(token);
            let due = match held.retry_at {
                Some(at) if is_pausing(held, now) => due.max(at),
                _ => due,
            };
            due.min(token.expires_at()).max(now)
        }

        /// When to ask IMS again after `failures` refreshes in a row have
        /// failed (1 after the first): [`REFRESH_RETRY_PAUSE`] after the
        /// first, twice the pause after each further one, at most
        /// [`REFRESH_RETRY_MAX_PAUSE`]; and while `held` keeps a token that
        /// works, never after it expires. [`record`](RefreshRule::record)
        /// pauses for the first; a holder that counts failures sets
        /// `held.retry_at` to this (or, holding no token, waits until then).
        pub fn retry_at(&self, held: &Held, failures: u32, now: SystemTime) -> SystemTime {
            let doublings = failures.saturating_sub(1).min(16);
            let pause = REFRESH_RETRY_PAUSE
                .saturating_mul(1 << doublings)
                .min(REFRESH_RETRY_MAX_PAUSE);
            let at = now + pause;
            match held.token.as_ref().filter(|t| !t.is_expired(now)) {
                Some(token) => at.min(token.expires_at()),
                None => at,
            }
        }

        /// Records a refresh's result in `held` and says what the caller
        /// gets: the new token; the old one, for a pause, while it works and
        /// IMS did not refuse; or the error.
        pub fn record(
            &self,
            held: &mut Held,
            result: Result<AccessToken, Error>,
            now: SystemTime,
        ) -> Outcome {
            let e = match result {
                Ok(token) => {
                    held.token = Some(token.clone());
                    held.retry_at = None;
                    return Outcome::New(token);
                }
                Err(e) => e,
            };
            let usable = held.token.take().filter(|t| is_usable(t, now));
            match usable {
                // Only IMS's refusal ends the token early; a network, TLS,
                // proxy or reply problem leaves it working for its time.
                Some(old) if !matches!(e, Error::Rejected(_)) => {
                    held.token = Some(old.clone());
                    held.retry_at = Some(now + REFRESH_RETRY_PAUSE);
                    Outcome::Kept(old, e)
                }
                _ => {
                    held.retry_at = None;
                    Outcome::Failed(e)
                }
            }
        }

        /// An API refused `refused` (401): drops it from `held` if it is the
        /// held token, with a brake on refusals that a new token cannot fix.
        ///
        /// The state it needs besides `held` is `last_invalidation`: when an
        /// invalidation last dropped a token (`None` if never). Keep it next
        /// to the token (in memory, or in the cache file); this call updates
        /// it. Then, at `now`:
        ///
        /// - `refused` is not the held token: [`Invalidation::NotHeld`],
        ///   nothing changes (a storm of 401s for one token drops it once);
        /// - the held token replaced an invalidated one (it was received less
        ///   than the cooldown after `last_invalidation`) and is younger than
        ///   the cooldown: [`Invalidation::Kept`]; the API refused a token
        ///   IMS has just issued, so a new one will not help;
        /// - otherwise (a token's first invalidation, or one older than the
        ///   cooldown: a cache from another process, a token really revoked):
        ///   [`Invalidation::Dropped`]; `held` is emptied and
        ///   `last_invalidation` set to `now`.
        ///
        /// So an API that refuses every token costs at most one forced
        /// exchange per cooldown.
        ///
        /// ```
        /// use std::time::{Duration, SystemTime};
        /// use ims_token::{AccessToken, Held, Invalidation, RefreshRule};
        /// let t0 = SystemTime::now();
        /// let rule = RefreshRule::exact(Duration::from_secs(600));
        /// let day = Duration::from_secs(86_400);
        /// let first = AccessToken::new("a", "bearer", t0, t0 + day);
        /// let mut held = Held { token: Some(first.clone()), retry_at: None };
        /// let mut last = None;
        /// // The first 401: dropped, and the next token is a replacement.
        /// let at = t0 + Duration::from_secs(5);
        /// assert_eq!(rule.invalidate(&mut held, &mut last, &first, at), Invalidation::Dropped);
        /// let second = AccessToken::new("b", "bearer", at, at + day);
        /// held.token = Some(second.clone());
        /// // Refused again 10 s later: kept, a new token would not help.
        /// let later = at + Duration::from_secs(10);
        /// let kept = Invalidation::Kept { age: Duration::from_secs(10) };
        /// assert_eq!(rule.invalidate(&mut held, &mut last, &second, later), kept);
        /// // A stale token (the first one) changes nothing.
        /// assert_eq!(rule.invalidate(&mut held, &mut last, &first, later), Invalidation::NotHeld);
        /// ```
        pub fn invalidate(
            &self,
            held: &mut Held,
            last_invalidation: &mut Option<SystemTime>,
            refused: &AccessToken,
            now: SystemTime,
        ) -> Invalidation {
            let Some(token) = held.token.as_ref().filter(|t| t.same_token(refused)) else {
                return Invalidation::NotHeld;
            };
            let received = token.received_at();
            let replacement = last_invalidation.is_some_and(|dropped| {
                received >= dropped
                    && received < dropped.checked_add(self.cooldown).unwrap_or(dropped)
            });
            let age = now.duration_since(received).unwrap_or_default();
            if replacement && age < self.cooldown {
                return Invalidation::Kept { age };
            }
            *held = Held::default();
            *last_invalidation = Some(now);
            Invalidation::Dropped
        }
    }

    /// The warning for a token kept by the brake ([`Invalidation::Kept`]):
    /// the API refused a token IMS issued `age` ago, so a new token will not
    /// help, and what to check. Never a secret.
    pub fn brake_warning(age: Duration) -> String {
        format!(
            "an Adobe API refused (401) a token IMS issued {} s ago, which replaced a token \
             it also refused: a new token will not help, so the token is kept; check that the \
             product profile is assigned to the technical account, that x-api-key is this \
             client id, and that the org (x-gw-ims-org-id) is entitled to the API",
            age.as_secs()
        )
    }

    /// A token the rule hands out or keeps: unexpired, and not one received
    /// in the future (fetched while the clock was ahead: it claims more time
    /// than its lifetime, and stops working before it says).
    fn is_usable(token: &AccessToken, now: SystemTime) -> bool {
        !token.is_expired(now) && token.is_plausible(now)
    }

    /// Whether `held` is in the pause after a failed refresh. A pause longer
    /// than [`REFRESH_RETRY_MAX_PAUSE`] is not one of ours (a clock stepped
    /// back, a file edited by hand): it is ignored.
    fn is_pausing(held: &Held, now: SystemTime) -> bool {
        held.retry_at
            .is_some_and(|at| now < at && at <= now + REFRESH_RETRY_MAX_PAUSE)
    }

    /// The warning for a token handed out after a refresh failed: why, how
    /// long it still works and what happens next. Never a secret: `cause` is
    /// an error's text.
    pub fn fallback_warning(
        token: &AccessToken,
        retry_at: Option<SystemTime>,
        now: SystemTime,
        cause: &dyn fmt::Display,
    ) -> String {
        let left = token.expires_in(now).as_secs();
        let next = match retry_at.and_then(|at| at.duration_since(now).ok()) {
            Some(wait) if now + wait < token.expires_at() => {
                format!("IMS is asked again in {} s", wait.as_secs().max(1))
            }
            _ => "it expires before IMS is asked again; the next call after that asks IMS".into(),
        };
        format!(
            "refreshing the IMS token failed; using the cached one, which expires in {left} s; \
             {next}: {cause}"
        )
    }

    /// A refresh margin moved to `permille` thousandths of itself.
    pub(crate) fn jittered(margin: Duration, permille: u32) -> Duration {
        margin.saturating_mul(permille) / 1000
    }

    /// A number in 500..=1000, different in every process and rule.
    fn random_permille() -> u32 {
        use std::hash::{BuildHasher as _, Hasher as _};
        // RandomState is seeded from the OS once per process and varied per
        // instance: enough to spread a fleet, no extra dependency.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0);
        let spread = u32::try_from(hasher.finish() % 501).unwrap_or(0);
        500 + spread
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::exchange::parse_reply;
        use crate::test_support::*;
        use crate::Flow;

        const MARGIN: Duration = Duration::from_secs(600);

        fn holding(token: Option<AccessToken>) -> Held {
            Held {
                token,
                retry_at: None,
            }
        }

        fn rule(permille: u32) -> RefreshRule {
            RefreshRule {
                margin: MARGIN,
                permille,
                cooldown: DEFAULT_INVALIDATE_COOLDOWN,
            }
        }

        #[test]
        fn refresh_rule_hands_out_a_fresh_token() {
            let held = holding(Some(day_token("t")));
            assert_eq!(rule(1000).step(&held, at(T0 + 1), false), Step::UseCached);
            assert_eq!(
                rule(1000).step(&held, at(T0 + 86_400 - 601), false),
                Step::UseCached
            );
        }

        #[test]
        fn refresh_rule_lets_one_caller_refresh_inside_the_margin() {
            let held = holding(Some(day_token("t")));
            let due = at(T0 + 86_400 - 300);
            assert_eq!(rule(1000).step(&held, due, false), Step::Refresh);
            // Once that caller is refreshing, everyone else uses the token.
            assert_eq!(rule(1000).step(&held, due, true), Step::UseCached);
        }

        #[test]
        fn refresh_rule_waits_only_without_an_unexpired_token() {
            let empty = holding(None);
            assert_eq!(rule(1000).step(&empty, at(T0), false), Step::Refresh);
            assert_eq!(rule(1000).step(&empty, at(T0), true), Step::Wait);
            let expired = holding(Some(day_token("t")));
            assert_eq!(rule(1000).step(&expired, at(T0 + 86_400), true), Step::Wait);
            assert_eq!(
                rule(1000).step(&expired, at(T0 + 86_400), false),
                Step::Refresh
            );
        }

        #[test]
        fn refresh_rule_pauses_after_a_failed_refresh() {
            let mut held = holding(Some(day_token("t")));
            held.retry_at = Some(at(T0 + 86_400 - 270));
            assert_eq!(
                rule(1000).step(&held, at(T0 + 86_400 - 300), false),
                Step::UseCached
            );
            assert_eq!(
                rule(1000).step(&held, at(T0 + 86_400 - 270), false),
                Step::Refresh
            );
            // The pause never outlives the token.
            assert_eq!(
                rule(1000).step(&held, at(T0 + 86_400), false),
                Step::Refresh
            );
        }

        #[test]
        fn a_pause_longer_than_ours_is_ignored() {
            let mut held = holding(Some(day_token("t")));
            let now = at(T0 + 86_400 - 600);
            held.retry_at = Some(now + REFRESH_RETRY_MAX_PAUSE);
            assert_eq!(rule(1000).step(&held, now, false), Step::UseCached);
            held.retry_at = Some(now + REFRESH_RETRY_MAX_PAUSE + Duration::from_secs(1));
            assert_eq!(rule(1000).step(&held, now, false), Step::Refresh);
        }

        #[test]
        fn held_is_pausing_as_step_sees_the_pause() {
            let mut held = holding(Some(day_token("t")));
            let now = at(T0 + 86_400 - 300);
            assert!(!held.is_pausing(now));
            held.retry_at = Some(now + Duration::from_secs(20));
            assert!(held.is_pausing(now));
            // Over, or longer than ours: no pause.
            assert!(!held.is_pausing(now + Duration::from_secs(20)));
            held.retry_at = Some(now + REFRESH_RETRY_MAX_PAUSE + Duration::from_secs(1));
            assert!(!held.is_pausing(now));
            held.retry_at = Some(now - Duration::from_secs(60));
            assert!(!held.is_pausing(now));
            assert_eq!(rule(1000).step(&held, now, false), Step::Refresh);
        }

        #[test]
        fn failures_in_a_row_back_off_up_to_the_cap_and_never_past_expiry() {
            let held = holding(Some(day_token("t")));
            let now = at(T0 + 3600);
            let pauses: Vec<u64> = (1..=7)
                .map(|n| {
                    let at = rule(1000).retry_at(&held, n, now);
                    at.duration_since(now).unwrap().as_secs()
                })
                .collect();
            assert_eq!(pauses, [30, 60, 120, 240, 300, 300, 300]);
            assert_eq!(
                rule(1000).retry_at(&held, u32::MAX, now),
                now + REFRESH_RETRY_MAX_PAUSE
            );
            // 0 counts as the first failure.
            assert_eq!(
                rule(1000).retry_at(&held, 0, now),
                now + REFRESH_RETRY_PAUSE
            );
            // The kept token expires in 100 s: the last try is at its expiry.
            let late = at(T0 + 86_400 - 100);
            assert_eq!(rule(1000).retry_at(&held, 3, late), at(T0 + 86_400));
            // Without a token that works, the pause alone.
            let expired = at(T0 + 86_400 + 1);
            assert_eq!(
                rule(1000).retry_at(&held, 2, expired),
                expired + Duration::from_secs(60)
            );
            assert_eq!(
                rule(1000).retry_at(&Held::default(), 9, now),
                now + REFRESH_RETRY_MAX_PAUSE
            );
        }

        #[test]
        fn a_backed_off_pause_is_kept_by_step() {
            let mut held = holding(Some(day_token("t")));
            let now = at(T0 + 86_400 - 550);
            held.retry_at = Some(rule(1000).retry_at(&held, 4, now));
            assert_eq!(
                rule(1000).step(&held, now + Duration::from_secs(239), false),
                Step::UseCached
            );
            assert_eq!(
                rule(1000).step(&held, now + Duration::from_secs(240), false),
                Step::Refresh
            );
        }

        #[test]
        fn next_refresh_is_when_step_first_says_refresh() {
            let r = rule(1000);
            let token = day_token("t");
            let now = at(T0 + 10);
            let fresh = holding(Some(token.clone()));
            let due = r.refresh_at(&token);
            assert_eq!(r.next_refresh(&fresh, now), due);
            // After a failed refresh: the end of the pause.
            let mut paused = fresh.clone();
            let failed_at = due + Duration::from_secs(5);
            paused.retry_at = Some(r.retry_at(&paused, 3, failed_at));
            let end = failed_at + Duration::from_secs(120);
            assert_eq!(r.next_refresh(&paused, failed_at), end);
            // Near expiry the pause ends with the token.
            let mut late = fresh.clone();
            let near = at(T0 + 86_400 - 10);
            late.retry_at = Some(near + REFRESH_RETRY_PAUSE);
            assert_eq!(r.next_refresh(&late, near), token.expires_at());
            // Nothing to wait for without a token that works.
            assert_eq!(r.next_refresh(&Held::default(), now), now);
            assert_eq!(r.next_refresh(&fresh, at(T0 + 86_400)), at(T0 + 86_400));
            // It is what step says, just before and at that time.
            for (held, at_time) in [(&fresh, now), (&paused, failed_at), (&late, near)] {
                let next = r.next_refresh(held, at_time);
                let before = next - Duration::from_secs(1);
                assert_eq!(r.step(held, before, false), Step::UseCached);
                assert_eq!(r.step(held, next, false), Step::Refresh);
            }
        }

        fn unavailable() -> Error {
            parse_reply(&reply(503, ""), Flow::ClientCredentials, at(T0), &[]).unwrap_err()
        }

        fn rejected() -> Error {
            let body = r#"{"error":"invalid_client"}"#;
            parse_reply(&reply(401, body), Flow::ClientCredentials, at(T0), &[]).unwrap_err()
        }

        #[test]
        fn a_retryable_failure_keeps_the_unexpired_token_and_pauses() {
            let mut held = holding(Some(day_token("old")));
            let now = at(T0 + 86_400 - 100);
            let Outcome::Kept(kept, e) = rule(1000).record(&mut held, Err(unavailable()), now)
            else {
                panic!("the old token was not kept")
            };
            assert_eq!(kept.secret(), "old");
            assert!(e.is_retryable());
            assert_eq!(held.retry_at, Some(now + REFRESH_RETRY_PAUSE));
        }

        #[test]
        fn only_a_refusal_drops_a_working_token() {
            for e in [
                Error::config("the proxy refused the credentials (407)"),
                Error::unexpected(Some(200), "the IMS reply is not JSON"),
            ] {
                let mut held = holding(Some(day_token("old")));
                let outcome = rule(1000).record(&mut held, Err(e), at(T0 + 10));
                assert!(matches!(outcome, Outcome::Kept(t, _) if t.secret() == "old"));
                assert!(held.retry_at.is_some());
            }
            let mut held = holding(Some(day_token("old")));
            let outcome = rule(1000).record(&mut held, Err(rejected()), at(T0 + 10));
            assert!(matches!(outcome, Outcome::Failed(Error::Rejected(_))));
            assert!(held.token.is_none(), "a rejected refresh drops the token");
        }

        #[test]
        fn a_token_fetched_while_the_clock_was_ahead_is_none() {
            // Fetched at T0 on a clock 3 days ahead; read at the true time.
            let ahead = holding(Some(day_token("ahead")));
            let now = at(T0 - 3 * 86_400);
            assert_eq!(rule(1000).step(&ahead, now, false), Step::Refresh);
            assert_eq!(rule(1000).step(&ahead, now, true), Step::Wait);
            let mut held = ahead.clone();
            let outcome = rule(1000).record(&mut held, Err(unavailable()), now);
            assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
            assert!(held.token.is_none());
            // A few seconds of a clock stepped back are allowed for.
            let now = at(T0 - 5);
            assert_eq!(rule(1000).step(&ahead, now, false), Step::UseCached);
        }

        #[test]
        fn an_expired_token_is_not_kept_and_a_new_one_clears_the_pause() {
            let mut held = holding(Some(day_token("old")));
            let outcome = rule(1000).record(&mut held, Err(unavailable()), at(T0 + 86_400));
            assert!(matches!(outcome, Outcome::Failed(e) if e.is_retryable()));
            assert!(held.token.is_none() && held.retry_at.is_none());
            held.retry_at = Some(at(T0 + 5));
            let Outcome::New(ok) = rule(1000).record(&mut held, Ok(day_token("new")), at(T0))
            else {
                panic!("no new token")
            };
            assert_eq!(ok.secret(), "new");
            assert!(held.retry_at.is_none());
        }

        #[test]
        fn jitter_moves_the_refresh_point_inside_the_capped_margin() {
            // A 100 s token with a 600 s margin: capped at 50 s, then jittered.
            let short = holding(Some(AccessToken::new("t", "bearer", at(T0), at(T0 + 100))));
            assert_eq!(rule(1000).step(&short, at(T0 + 49), false), Step::UseCached);
            assert_eq!(rule(1000).step(&short, at(T0 + 50), false), Step::Refresh);
            assert_eq!(rule(500).step(&short, at(T0 + 74), false), Step::UseCached);
            assert_eq!(rule(500).step(&short, at(T0 + 75), false), Step::Refresh);
            // A day's token: between 600 s and 300 s before expiry.
            let day = holding(Some(day_token("t")));
            assert_eq!(
                rule(500).step(&day, at(T0 + 86_400 - 301), false),
                Step::UseCached
            );
            assert_eq!(
                rule(500).step(&day, at(T0 + 86_400 - 300), false),
                Step::Refresh
            );
            let token = day_token("t");
            assert_eq!(rule(500).refresh_at(&token), at(T0 + 86_400 - 300));
            assert_eq!(
                RefreshRule::exact(MARGIN).refresh_at(&token),
                at(T0 + 86_400 - 600)
            );
        }

        #[test]
        fn jitter_stays_between_half_and_the_whole_margin() {
            for _ in 0..200 {
                let p = random_permille();
                assert!((500..=1000).contains(&p), "{p}");
            }
            let spread: std::collections::BTreeSet<u32> =
                (0..50).map(|_| random_permille()).collect();
            assert!(spread.len() > 5, "no spread: {spread:?}");
            assert_eq!(jittered(MARGIN, 500), Duration::from_secs(300));
            assert_eq!(jittered(MARGIN, 1000), MARGIN);
            assert_eq!(jittered(Duration::MAX, 1000), Duration::MAX / 1000);
        }

        fn token_at(name: &str, received: u64) -> AccessToken {
            AccessToken::new(name, "bearer", at(received), at(received + 86_400))
        }

        #[test]
        fn the_first_invalidation_of_a_token_drops_it() {
            let mut held = holding(Some(token_at("a", T0)));
            held.retry_at = Some(at(T0 + 5));
            let mut last = None;
            let verdict =
                rule(1000).invalidate(&mut held, &mut last, &token_at("a", T0), at(T0 + 1));
            assert_eq!(verdict, Invalidation::Dropped);
            assert!(held.token.is_none() && held.retry_at.is_none());
            assert_eq!(last, Some(at(T0 + 1)));
            // The rest of a storm of 401s for that token changes nothing.
            let verdict =
                rule(1000).invalidate(&mut held, &mut last, &token_at("a", T0), at(T0 + 2));
            assert_eq!(verdict, Invalidation::NotHeld);
            assert_eq!(last, Some(at(T0 + 1)));
        }

        #[test]
        fn a_stale_token_is_not_held_and_leaves_the_held_one() {
            let mut held = holding(Some(token_at("new", T0)));
            let mut last = Some(at(T0 - 1));
            let verdict =
                rule(1000).invalidate(&mut held, &mut last, &token_at("old", T0), at(T0 + 1));
            assert_eq!(verdict, Invalidation::NotHeld);
            assert_eq!(
                held.token.map(|t| t.secret().to_owned()),
                Some("new".into())
            );
            assert_eq!(last, Some(at(T0 - 1)));
            let mut empty = holding(None);
            let verdict = rule(1000).invalidate(&mut empty, &mut None, &token_at("x", T0), at(T0));
            assert_eq!(verdict, Invalidation::NotHeld);
        }

        #[test]
        fn a_replacement_is_kept_until_it_is_as_old_as_the_cooldown() {
            // Dropped at T0; the replacement came 2 s later.
            let replacement = token_at("b", T0 + 2);
            let mut last = Some(at(T0));
            for (now, verdict) in [
                (
                    T0 + 2,
                    Invalidation::Kept {
                        age: Duration::ZERO,
                    },
                ),
                (
                    T0 + 61,
                    Invalidation::Kept {
                        age: Duration::from_secs(59),
                    },
                ),
                (T0 + 62, Invalidation::Dropped),
            ] {
                let mut held = holding(Some(replacement.clone()));
                let mut state = last;
                assert_eq!(
                    rule(1000).invalidate(&mut held, &mut state, &replacement, at(now)),
                    verdict,
                    "at T0 + {}",
                    now - T0
                );
                assert_eq!(held.token.is_some(), verdict != Invalidation::Dropped);
            }
            // Kept: the state is left as it was.
            let mut held = holding(Some(replacement.clone()));
            rule(1000).invalidate(&mut held, &mut last, &replacement, at(T0 + 3));
            assert_eq!(last, Some(at(T0)));
        }

        #[test]
        fn a_token_received_long_after_the_last_invalidation_is_no_replacement() {
            // A normal refresh an hour after the last invalidation: its first
            // invalidation is not braked, however young the token is.
            let later = token_at("c", T0 + 3600);
            let mut held = holding(Some(later.clone()));
            let mut last = Some(at(T0));
            let verdict = rule(1000).invalidate(&mut held, &mut last, &later, at(T0 + 3601));
            assert_eq!(verdict, Invalidation::Dropped);
            // Nor is a token from before it (another process's cache).
            let older = token_at("d", T0 - 10);
            let mut held = holding(Some(older.clone()));
            let mut last = Some(at(T0));
            let verdict = rule(1000).invalidate(&mut held, &mut last, &older, at(T0 + 1));
            assert_eq!(verdict, Invalidation::Dropped);
        }

        #[test]
        fn a_zero_cooldown_turns_the_brake_off() {
            let rule = rule(1000).with_invalidate_cooldown(Duration::ZERO);
            assert_eq!(rule.invalidate_cooldown(), Duration::ZERO);
            let replacement = token_at("b", T0);
            let mut held = holding(Some(replacement.clone()));
            let verdict = rule.invalidate(&mut held, &mut Some(at(T0)), &replacement, at(T0));
            assert_eq!(verdict, Invalidation::Dropped);
        }

        #[test]
        fn an_api_that_refuses_every_token_forces_one_exchange_per_cooldown() {
            // A request every 2 s for 10 minutes, each refused: every drop is
            // followed by a new token at once.
            let rule = rule(1000);
            let (mut held, mut last) = (holding(Some(token_at("t0", T0))), None);
            let mut exchanges = 0;
            for now in (T0..T0 + 600).step_by(2) {
                let refused = held.token.clone().unwrap();
                if rule.invalidate(&mut held, &mut last, &refused, at(now)) == Invalidation::Dropped
                {
                    exchanges += 1;
                    held.token = Some(token_at(&format!("t{exchanges}"), now));
                }
            }
            // The first drop, then one a minute: 1 + 9.
            assert_eq!(exchanges, 10);
        }

        #[test]
        fn the_brake_warning_says_why_and_what_to_check() {
            let text = brake_warning(Duration::from_secs(12));
            for part in [
                "12 s ago",
                "a new token will not help",
                "product profile",
                "x-api-key",
                "org",
            ] {
                assert!(text.contains(part), "{part}: {text}");
            }
        }

        #[test]
        fn the_fallback_warning_says_what_happens_next() {
            let token = day_token("s3cr3t");
            let now = at(T0 + 86_400 - 100);
            let before = fallback_warning(&token, Some(now + REFRESH_RETRY_PAUSE), now, &"boom");
            assert!(before.contains("expires in 100 s"), "{before}");
            assert!(before.contains("IMS is asked again in 30 s"), "{before}");
            assert!(before.ends_with(": boom") && !before.contains("s3cr3t"));
            let late = at(T0 + 86_400 - 10);
            let after = fallback_warning(&token, Some(late + REFRESH_RETRY_PAUSE), late, &"boom");
            assert!(
                after.contains("expires before IMS is asked again"),
                "{after}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The cached provider: the refresh rule in memory, for many threads.
mod provider {
    use std::fmt;
    use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    use std::time::{Duration, SystemTime};

    use crate::api::{shown_url, ApiCall};
    use crate::refresh::{brake_warning, fallback_warning};
    use crate::secret::Secret;
    use crate::{
        AccessToken, ApiHeaders, ApiResponse, Client, Credentials, Error, Held, Invalidation,
        Outcome, RefreshRule, Step, DEFAULT_MAX_RESPONSE_BYTES,
    };

    /// Default refresh margin of [`TokenProvider`].
    pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(600);

    /// Hands out a cached token and refreshes it shortly before it expires.
    ///
    /// `Send + Sync`: share it between threads (in an `Arc` or a static).
    /// - No caller waits while the cached token is valid. When a refresh is
    ///   due, the caller that notices starts it on a thread of its own and
    ///   gets the cached token at once, like every other caller; callers get
    ///   the new token once it is in. One refresh runs at a time.
    /// - Only when there is no unexpired token do callers wait, and then for
    ///   the one refresh in flight (one of them runs it in its own thread);
    ///   if it fails, each of them gets its error.
    /// - A refresh that fails other than by IMS's refusal (IMS 5xx or 429,
    ///   network, timeout, TLS, proxy) keeps the unexpired token in use and is
    ///   tried again after 30 s. A refusal (4xx) drops it.
    /// - Each provider refreshes at a random point between the whole refresh
    ///   margin and half of it, so processes started together do not all ask
    ///   IMS in the same second.
    /// - [`invalidate`](TokenProvider::invalidate) drops a token an API
    ///   refused (401), with a brake: at most one forced exchange per cooldown
    ///   (60 s by default, [`with_invalidate_cooldown`](TokenProvider::with_invalidate_cooldown)).
    ///
    /// The refresh thread is a plain `std` thread named
    /// `<caller's thread name>/ims-token-refresh`; it holds a share of the
    /// provider's state, so dropping the provider never waits for it: the
    /// thread ends after its one exchange (bounded by the client's timeouts,
    /// [`Client::max_fetch_time`]). When no thread can be started, the caller
    /// refreshes in its own thread, as it would without a token.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), ims_token::Error> {
    /// use ims_token::{Client, Credentials, TokenProvider};
    /// let provider = TokenProvider::new(
    ///     Client::new()?,
    ///     Credentials::from_file("service-credentials.json")?,
    /// );
    /// let token = provider.token()?;
    /// // ... AEM answered 401 to this token: drop it, unless another thread
    /// // already did; the next call gets a new one (one exchange in all).
    /// if provider.invalidate(&token) {
    ///     // A new token is worth a resend (TokenProvider::request does all this).
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct TokenProvider {
        shared: Arc<Shared>,
    }

    /// What the provider shares with its refresh thread, which holds a clone
    /// for the length of one exchange.
    #[derive(Debug)]
    struct Shared {
        client: Client,
        credentials: Credentials,
        state: Mutex<Cached>,
        refreshed: Condvar,
    }

    /// The provider's token, as the refresh rule sees it, and what the
    /// provider knows of the refreshes and invalidations.
    #[derive(Debug)]
    struct Cached {
        rule: RefreshRule,
        held: Held,
        /// A refresh runs now; callers use the token or wait for it.
        refreshing: bool,
        /// Refreshes finished so far; a waiter knows its refresh ended when it changes.
        round: u64,
        /// The error of the last finished refresh, if it failed.
        failure: Option<Error>,
        /// When an invalidation last dropped a token: the brake's state.
        last_invalidation: Option<SystemTime>,
        /// The brake's warning has been logged for the held token.
        warned: bool,
        /// What the provider tells the time by.
        clock: Clock,
    }

    impl Cached {
        fn new(rule: RefreshRule) -> Self {
            Cached {
                rule,
                held: Held::default(),
                refreshing: false,
                round: 0,
                failure: None,
                last_invalidation: None,
                warned: false,
                clock: Clock::default(),
            }
        }
    }

    /// The provider's time source: the system clock, or the caller's
    /// ([`TokenProvider::with_clock`]).
    #[derive(Clone)]
    struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

    impl Clock {
        fn now(&self) -> SystemTime {
            (self.0)()
        }
    }

    impl Default for Clock {
        fn default() -> Self {
            Clock(Arc::new(SystemTime::now))
        }
    }

    impl fmt::Debug for Clock {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Clock")
        }
    }

    impl TokenProvider {
        /// A provider with the default refresh margin (10 minutes, never more
        /// than half the token's lifetime) and invalidation cooldown (60 s).
        pub fn new(client: Client, credentials: Credentials) -> Self {
            TokenProvider {
                shared: Arc::new(Shared {
                    client,
                    credentials,
                    state: Mutex::new(Cached::new(RefreshRule::new(DEFAULT_REFRESH_MARGIN))),
                    refreshed: Condvar::new(),
                }),
            }
        }

        /// Sets how long before expiry the token is refreshed, at the most:
        /// the provider refreshes at a random point between this margin and
        /// half of it (and never more than half the token's lifetime early).
        #[must_use = "this returns the changed provider; the original is moved"]
        pub fn with_refresh_margin(self, margin: Duration) -> Self {
            {
                let mut state = self.shared.lock();
                state.rule = state.rule.with_margin(margin);
            }
            self
        }

        /// Sets the cooldown of the brake on [`invalidate`](TokenProvider::invalidate)
        /// (default [`DEFAULT_INVALIDATE_COOLDOWN`](crate::DEFAULT_INVALIDATE_COOLDOWN),
        /// 60 s): a token that replaced an invalidated one is not dropped
        /// again until it is this old. Zero turns the brake off.
        #[must_use = "this returns the changed provider; the original is moved"]
        pub fn with_invalidate_cooldown(self, cooldown: Duration) -> Self {
            {
                let mut state = self.shared.lock();
                state.rule = state.rule.with_invalidate_cooldown(cooldown);
            }
            self
        }

        /// Sets the clock the provider tells the time by (default
        /// [`SystemTime::now`]): whether its token is due for a refresh or
        /// expired, when the pause after a failed refresh ends, how old a
        /// token is for the brake on [`invalidate`](TokenProvider::invalidate).
        /// A token is still stamped with the system clock when it arrives.
        ///
        /// For tests of code that uses a provider: a clock ahead of the
        /// system's makes the token due, expired or past the pause at once,
        /// instead of a sleep. Keep it from falling behind the system's by
        /// more than a few seconds: a token that seems to arrive in the future
        /// is refreshed, never handed out. It is read while the provider's
        /// state is locked, so it must answer at once and not call the
        /// provider.
        ///
        /// ```no_run
        /// # fn main() -> Result<(), ims_token::Error> {
        /// use std::sync::atomic::{AtomicU64, Ordering};
        /// use std::sync::Arc;
        /// use std::time::{Duration, SystemTime};
        /// use ims_token::{Client, Credentials, TokenProvider};
        /// let ahead = Arc::new(AtomicU64::new(0));
        /// let secs = Arc::clone(&ahead);
        /// let provider = TokenProvider::new(Client::new()?, Credentials::from_file("creds.json")?)
        ///     .with_clock(move || {
        ///         SystemTime::now() + Duration::from_secs(secs.load(Ordering::Relaxed))
        ///     });
        /// let token = provider.token()?;
        /// // A day later, as the provider sees it: the token has expired.
        /// ahead.store(86_400, Ordering::Relaxed);
        /// assert_ne!(provider.token()?.secret(), token.secret());
        /// # Ok(())
        /// # }
        /// ```
        #[must_use = "this returns the changed provider; the original is moved"]
        pub fn with_clock(self, now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
            self.shared.lock().clock = Clock(Arc::new(now));
            self
        }

        /// The cached token, or a new one when it is missing or close to expiry.
        ///
        /// Never waits while the cached token is unexpired: a due refresh
        /// runs on a thread of its own (see [`TokenProvider`]). Waits only
        /// when there is no unexpired token: for the refresh in flight, or for
        /// its own. When a refresh fails other than by IMS's refusal (IMS 5xx
        /// or 429, network, timeout, TLS, proxy, an odd reply) and the old
        /// token has not expired, the old token is handed out (with a warning
        /// logged) and IMS is asked again after 30 seconds.
        ///
        /// # Errors
        /// As [`Client::fetch`], when there is no unexpired token to fall back
        /// on or IMS refused the refresh (then no token is kept). Callers that
        /// waited for the same refresh all get its error.
        pub fn token(&self) -> Result<AccessToken, Error> {
            let shared = &self.shared;
            let mut state = shared.lock();
            loop {
                let now = state.clock.now();
                match state.rule.step(&state.held, now, state.refreshing) {
                    Step::UseCached => {
                        if let Some(token) = &state.held.token {
                            return Ok(token.clone());
                        }
                    }
                    Step::Refresh => {
                        state.refreshing = true;
                        let usable = state.held.usable(now).cloned();
                        drop(state);
                        return match usable {
                            Some(cached) => refresh_behind(shared, cached, spawn_refresh_thread),
                            None => shared.refresh(),
                        };
                    }
                    Step::Wait => {
                        let round = state.round;
                        state = shared
                            .refreshed
                            .wait_while(state, |s| s.round == round)
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                        if let Some(e) = shared_failure(&state, round + 1, state.clock.now()) {
                            return Err(e);
                        }
                    }
                }
            }
        }

        /// An API refused `token` (401): drops it if it is the cached token,
        /// so that the next call exchanges again. Returns whether it dropped
        /// it, that is whether a request sent again will carry another token.
        ///
        /// - A token other than the cached one (an older one, already
        ///   dropped by another thread) is left alone: a storm of 401s for
        ///   one token costs one exchange. Returns `false`; the cached token,
        ///   if any, is another one.
        /// - The brake: a token that replaced an invalidated one is not
        ///   dropped before it is as old as the cooldown (60 s by default,
        ///   [`with_invalidate_cooldown`](TokenProvider::with_invalidate_cooldown)):
        ///   the API refused a token IMS had just issued, for a reason a new
        ///   token cannot fix (a product profile not assigned, a wrong
        ///   `x-api-key`, an org without the entitlement). Callers keep
        ///   getting it, `false` is returned, and one warning per such token
        ///   is logged saying what to check. The first invalidation of a
        ///   token, and one of a token older than the cooldown, are never
        ///   braked. The rule is [`RefreshRule::invalidate`].
        pub fn invalidate(&self, token: &AccessToken) -> bool {
            let mut state = self.shared.lock();
            let now = state.clock.now();
            let Cached {
                rule,
                held,
                last_invalidation,
                ..
            } = &mut *state;
            match rule.invalidate(held, last_invalidation, token, now) {
                Invalidation::Dropped => true,
                Invalidation::NotHeld => false,
                Invalidation::Kept { age } => {
                    let first = !std::mem::replace(&mut state.warned, true);
                    drop(state);
                    if first {
                        log::warn!("{}", brake_warning(age));
                    }
                    false
                }
            }
        }

        /// The credentials this provider uses.
        pub fn credentials(&self) -> &Credentials {
            &self.shared.credentials
        }

        /// The client this provider fetches with (and sends API requests
        /// with, see [`TokenProvider::request`]).
        pub fn client(&self) -> &Client {
            &self.shared.client
        }

        /// The headers an Adobe API wants for the current token:
        /// `Authorization: Bearer …`, `x-api-key` and `x-gw-ims-org-id` (see
        /// [`ApiHeaders`]), for a request of your own HTTP client. On 401,
        /// give [`ApiHeaders::token`] to [`invalidate`](TokenProvider::invalidate).
        ///
        /// # Errors
        /// As [`TokenProvider::token`]; [`Error::Config`] as [`ApiHeaders::new`].
        pub fn headers(&self) -> Result<ApiHeaders, Error> {
            ApiHeaders::new(&self.token()?, self.credentials())
        }

        /// A request to an Adobe API with [`headers`](TokenProvider::headers),
        /// sent by [`ApiRequest::send`] on this provider's client, with one
        /// resend after a 401. `method` is any HTTP method (`GET`, `POST`,
        /// `DELETE`, ...); `url` an absolute `https` URL (plain `http` only to
        /// loopback, for tests).
        ///
        /// ```no_run
        /// # fn main() -> Result<(), ims_token::Error> {
        /// use ims_token::{Client, Credentials, TokenProvider};
        /// let provider = TokenProvider::new(Client::new()?, Credentials::from_file("creds.json")?);
        /// let response = provider
        ///     .request("POST", "https://author-p1-e2.adobeaemcloud.com/api/assets")
        ///     .header("Content-Type", "application/json")
        ///     .body(r#"{"name":"a"}"#)
        ///     .send()?;
        /// if response.is_success() {
        ///     let _json = response.body();
        /// }
        /// # Ok(())
        /// # }
        /// ```
        pub fn request(&self, method: &str, url: &str) -> ApiRequest<'_> {
            ApiRequest {
                provider: self,
                method: method.to_owned(),
                url: url.to_owned(),
                headers: Vec::new(),
                body: None,
                max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            }
        }
    }

    /// A request to an Adobe API, made by [`TokenProvider::request`]: the
    /// method and URL, the caller's own headers and body, and the cap on the
    /// reply's body. `Debug` shows header names, not their values.
    #[must_use = "a request does nothing until `send` is called"]
    pub struct ApiRequest<'a> {
        provider: &'a TokenProvider,
        method: String,
        url: String,
        headers: Vec<(String, Secret)>,
        body: Option<Vec<u8>>,
        max_response_bytes: u64,
    }

    impl ApiRequest<'_> {
        /// Adds a header of the caller's. It is sent as given, and a header
        /// of the same name is not added by the crate: a caller's
        /// `x-api-key` wins. A caller's own `Authorization` turns the resend
        /// off (a 401 is then about its credentials, not the provider's
        /// token).
        pub fn header(mut self, name: &str, value: &str) -> Self {
            self.headers
                .push((name.to_owned(), Secret(value.to_owned())));
            self
        }

        /// The body, sent as these bytes (and the same bytes again with the
        /// resend). Without it, the request has no body.
        pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
            self.body = Some(body.into());
            self
        }

        /// The largest reply body read (default
        /// [`DEFAULT_MAX_RESPONSE_BYTES`](crate::DEFAULT_MAX_RESPONSE_BYTES), 10 MiB).
        pub fn max_response_bytes(mut self, limit: u64) -> Self {
            self.max_response_bytes = limit;
            self
        }

        /// Sends the request with the provider's headers and returns the
        /// reply, whatever its status.
        ///
        /// - If the API answers 401, the token is given to
        ///   [`TokenProvider::invalidate`], and the same method, URL, headers
        ///   and body bytes are sent once more, only if the provider then
        ///   hands out another token (not when the brake kept it, see
        ///   [`TokenProvider::invalidate`], nor when getting one fails: that
        ///   error is logged as a warning). The reply to that resend, or the
        ///   401, is returned: check [`ApiResponse::status`].
        /// - No other retry: a request that fails on the way is not sent again
        ///   (it may have had its effect). The client's timeouts apply
        ///   ([`ClientBuilder::timeout`](crate::ClientBuilder::timeout), 30 s by
        ///   default, and the connect timeout), as do its proxy and CA file.
        /// - Redirects are not followed: the 3xx is returned with its
        ///   `Location`. Following one would send the token, the client id and
        ///   the body wherever the `Location` points.
        ///
        /// # Errors
        /// [`Error::Config`] for a method, URL or header that cannot be sent
        /// (checked before anything is sent: the URL must be absolute
        /// `https`, plain `http` only to loopback, without a user or
        /// password); as [`TokenProvider::headers`] when there is no token;
        /// [`Error::Transport`], [`Error::Timeout`] or [`Error::Tls`] when the
        /// API cannot be reached or its reply broke off; [`Error::ApiReply`]
        /// when the reply's headers or body are larger than the limits.
        /// Messages show the URL without its query.
        pub fn send(&self) -> Result<ApiResponse, Error> {
            let call =
                ApiCall::check(&self.method, &self.url, &self.headers, self.body.as_deref())?;
            let client = self.provider.client();
            let first = self.provider.headers()?;
            let reply = client.send_api(&call, &first, self.max_response_bytes)?;
            if reply.status() != 401 || call.sets_authorization() {
                return Ok(reply);
            }
            self.provider.invalidate(first.token());
            // Without a new token there is no resend: the caller gets the
            // API's 401, which says what the API said.
            let again = match self.provider.headers() {
                Ok(again) => again,
                Err(e) => {
                    log::warn!(
                        "{} answered 401, and getting a new token failed, so the request \
                         is not sent again: {e}",
                        call.shown
                    );
                    return Ok(reply);
                }
            };
            if again.token().same_token(first.token()) {
                return Ok(reply);
            }
            log::debug!(
                "{} answered 401; sending the request again with a new token",
                call.shown
            );
            client.send_api(&call, &again, self.max_response_bytes)
        }
    }

    impl fmt::Debug for ApiRequest<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
            f.debug_struct("ApiRequest")
                .field("method", &self.method)
                .field("url", &shown_url(&self.url))
                .field("headers", &names)
                .field(
                    "body",
                    &self.body.as_ref().map(|b| format!("{} bytes", b.len())),
                )
                .field("max_response_bytes", &self.max_response_bytes)
                .finish()
        }
    }

    impl Shared {
        /// Runs one refresh, already marked as running, without holding the
        /// lock, then records its outcome and wakes the waiters. Nothing but
        /// the bookkeeping runs under the lock: no logging, no user code.
        fn refresh(&self) -> Result<AccessToken, Error> {
            let mut finish = RefreshGuard {
                shared: self,
                done: false,
            };
            let result = self.client.fetch(&self.credentials);
            let (outcome, retry_at, now) = {
                let mut state = self.lock();
                let now = state.clock.now();
                let outcome = record_refresh(&mut state, result, now);
                (outcome, state.held.retry_at, now)
            };
            finish.done = true;
            drop(finish);
            match outcome {
                Outcome::New(token) => Ok(token),
                Outcome::Kept(old, e) => {
                    log::warn!("{}", fallback_warning(&old, retry_at, now, &e));
                    Ok(old)
                }
                Outcome::Failed(e) => Err(e),
            }
        }

        /// A refresh on the refresh thread: nobody waits for its result, so
        /// a failure that leaves no token is logged.
        fn refresh_in_background(&self) {
            if let Err(e) = self.refresh() {
                log::warn!(
                    "refreshing the IMS token failed and no token is kept; \
                     the next call asks IMS again: {e}"
                );
            }
        }

        fn lock(&self) -> MutexGuard<'_, Cached> {
            // Each change to the state is made in one short step under the lock
            // that calls nothing that can panic, so a poisoned lock still holds
            // a consistent state.
            self.state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    /// Hands out `cached` at once and leaves the refresh (already marked as
    /// running) to a thread started by `spawn`; refreshes in the caller's
    /// thread when no thread can be started.
    fn refresh_behind(
        shared: &Arc<Shared>,
        cached: AccessToken,
        spawn: impl FnOnce(Arc<Shared>) -> std::io::Result<()>,
    ) -> Result<AccessToken, Error> {
        match spawn(Arc::clone(shared)) {
            Ok(()) => Ok(cached),
            Err(e) => {
                log::debug!(
                    "cannot start a thread to refresh the IMS token ({e}); refreshing in this one"
                );
                shared.refresh()
            }
        }
    }

    /// Starts the refresh thread, named after the caller's thread.
    fn spawn_refresh_thread(shared: Arc<Shared>) -> std::io::Result<()> {
        let name = match std::thread::current().name() {
            Some(caller) => format!("{caller}/ims-token-refresh"),
            None => "ims-token-refresh".to_owned(),
        };
        std::thread::Builder::new()
            .name(name)
            .spawn(move || shared.refresh_in_background())
            .map(drop)
    }

    /// Wakes the waiters when a refresh ends. If it ended by unwinding (a
    /// panic in the refreshing thread), it also ends the refresh, so that
    /// waiters do not wait for it forever; they start one of their own.
    struct RefreshGuard<'a> {
        shared: &'a Shared,
        done: bool,
    }

    impl Drop for RefreshGuard<'_> {
        fn drop(&mut self) {
            if !self.done {
                let mut state = self.shared.lock();
                state.refreshing = false;
                state.round += 1;
                state.failure = None;
            }
            self.shared.refreshed.notify_all();
        }
    }

    /// Ends a refresh: the rule records its result, and the round and the
    /// error to share with the waiters are kept. A new token has had no
    /// brake warning yet.
    fn record_refresh(
        state: &mut Cached,
        result: Result<AccessToken, Error>,
        now: SystemTime,
    ) -> Outcome {
        state.refreshing = false;
        state.round += 1;
        state.failure = result.as_ref().err().cloned();
        let outcome = state.rule.record(&mut state.held, result, now);
        if matches!(outcome, Outcome::New(_)) {
            state.warned = false;
        }
        outcome
    }

    /// For a caller that waited for refresh number `round`: the error to share,
    /// when that refresh failed and left no token to use.
    fn shared_failure(state: &Cached, round: u64, now: SystemTime) -> Option<Error> {
        let no_token = state.held.usable(now).is_none();
        match &state.failure {
            Some(e) if state.round == round && no_token => Some(e.clone()),
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::exchange::parse_reply;
        use crate::test_support::*;
        use crate::{Flow, OAuthCredentials};

        fn unavailable() -> Error {
            parse_reply(&reply(503, ""), Flow::ClientCredentials, at(T0), &[]).unwrap_err()
        }

        fn rejected() -> Error {
            let body = r#"{"error":"invalid_client"}"#;
            parse_reply(&reply(401, body), Flow::ClientCredentials, at(T0), &[]).unwrap_err()
        }

        fn state_with(token: Option<AccessToken>) -> Cached {
            let mut state = Cached::new(RefreshRule::exact(DEFAULT_REFRESH_MARGIN));
            state.held.token = token;
            state
        }

        #[test]
        fn a_kept_token_leaves_no_error_to_share() {
            let mut state = state_with(Some(day_token("old")));
            state.refreshing = true;
            let now = at(T0 + 86_400 - 100);
            let outcome = record_refresh(&mut state, Err(unavailable()), now);
            assert!(matches!(outcome, Outcome::Kept(..)));
            assert!(!state.refreshing && state.round == 1);
            // Waiters of that round have a token, so no error to share.
            assert!(shared_failure(&state, 1, now).is_none());
        }

        #[test]
        fn a_failure_without_a_usable_token_is_shared_with_that_round_only() {
            let mut state = state_with(Some(day_token("old")));
            let now = at(T0 + 10);
            let outcome = record_refresh(&mut state, Err(rejected()), now);
            assert!(matches!(outcome, Outcome::Failed(Error::Rejected(_))));
            assert!(matches!(
                shared_failure(&state, 1, now),
                Some(Error::Rejected(_))
            ));
            assert!(shared_failure(&state, 2, now).is_none());
            state.warned = true;
            let outcome = record_refresh(&mut state, Ok(day_token("new")), at(T0));
            assert!(matches!(outcome, Outcome::New(_)));
            assert!(state.failure.is_none());
            assert!(!state.warned, "a new token gets its own brake warning");
            assert!(shared_failure(&state, 2, at(T0)).is_none());
        }

        /// A provider whose IMS is `listener`, with a token that is due for
        /// a refresh and still valid.
        fn provider_with_a_due_token(
            listener: &std::net::TcpListener,
            timeout: Duration,
        ) -> TokenProvider {
            let client = Client::builder()
                .proxy(None)
                .retries(0)
                .timeout(timeout)
                .build()
                .unwrap();
            let oauth = OAuthCredentials::builder()
                .ims(format!("http://{}", listener.local_addr().unwrap()))
                .client_id("c")
                .client_secret(crate::ClientSecret::new("s"))
                .scopes("openid")
                .build()
                .unwrap();
            let provider = TokenProvider::new(client, Credentials::OAuth(oauth));
            let now = SystemTime::now();
            let due = AccessToken::new(
                "due",
                "bearer",
                now - Duration::from_secs(3600),
                now + Duration::from_secs(60),
            );
            provider.shared.lock().held.token = Some(due);
            provider
        }

        #[test]
        fn dropping_the_provider_leaves_the_refresh_thread_to_end_after_its_fetch() {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let provider = provider_with_a_due_token(&listener, Duration::from_secs(60));
            let shared = Arc::downgrade(&provider.shared);
            assert_eq!(provider.token().unwrap().secret(), "due");
            // The refresh thread's request; it gets no answer until the socket closes.
            let (socket, _) = listener.accept().unwrap();
            // Returns while the refresh thread still waits for IMS.
            drop(provider);
            assert!(shared.upgrade().is_some(), "the fetch ended early");
            drop(socket);
            // The fetch fails; then the thread lets go of the state.
            let until = std::time::Instant::now() + Duration::from_secs(20);
            while shared.upgrade().is_some() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(shared.upgrade().is_none(), "the refresh thread did not end");
        }

        #[test]
        fn without_a_thread_the_caller_refreshes_in_its_own() {
            // Nothing accepts: the fetch times out after 1 s.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let provider = provider_with_a_due_token(&listener, Duration::from_secs(1));
            let cached = provider.shared.lock().held.token.clone().unwrap();
            provider.shared.lock().refreshing = true;
            let refused = |_| Err(std::io::Error::other("no threads left"));
            // The fetch fails (timeout): the caller gets the kept token, after
            // its own refresh, which paused further ones.
            let token = refresh_behind(&provider.shared, cached, refused).unwrap();
            assert_eq!(token.secret(), "due");
            let state = provider.shared.lock();
            assert!(!state.refreshing && state.round == 1);
            assert!(state.held.retry_at.is_some(), "the refresh did not run");
        }
    }
}

#[cfg(test)]
mod test_support {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use crate::exchange::RawReply;
    use crate::AccessToken;

    pub(crate) const T0: u64 = 1_700_000_000;

    pub(crate) fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    pub(crate) fn reply(status: u16, body: &str) -> RawReply {
        RawReply {
            status,
            debug_id: Some("dbg-1".into()),
            retry_after: None,
            location: None,
            clock_offset: None,
            body: body.as_bytes().to_vec().into(),
        }
    }

    pub(crate) fn day_token(name: &str) -> AccessToken {
        AccessToken::new(name, "bearer", at(T0), at(T0 + 86_400))
    }
}
