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
pub use exchange::{parse_token_reply, sign_jwt, Flow, DEFAULT_JWT_LIFETIME, MAX_JWT_LIFETIME};
pub use key::{PrivateKey, MIN_KEY_BITS};
pub use provider::{TokenProvider, DEFAULT_REFRESH_MARGIN};
pub use refresh::{
    fallback_warning, Held, Outcome, RefreshRule, Step, REFRESH_RETRY_MAX_PAUSE,
    REFRESH_RETRY_PAUSE,
};
pub use secret::{ClientSecret, SignedJwt};
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

        /// Prefixes a configuration or key message with the file it came from.
        pub(crate) fn in_file(self, path: &Path) -> Self {
            self.prefixed(path.display())
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
                | Error::Timeout { message, .. } => f.write_str(message),
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

    /// Non-empty and only `!` to `~`: safe in a header, a line or an argument.
    pub(crate) fn is_visible_ascii(text: &str) -> bool {
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
                format!("not a regular file ({})", file_kind(&metadata.file_type())),
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

    fn file_kind(kind: &std::fs::FileType) -> &'static str {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt as _;
            if kind.is_fifo() {
                return "a FIFO";
            }
            if kind.is_char_device() || kind.is_block_device() {
                return "a device";
            }
            if kind.is_socket() {
                return "a socket";
            }
        }
        if kind.is_dir() {
            "a directory"
        } else {
            "not a plain file"
        }
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

        pub(crate) fn join(&self, path: &str) -> String {
            format!("{}{path}", self.base_url)
        }

        /// The host alone: no port, no brackets around an IPv6 address.
        pub(crate) fn bare_host(&self) -> &str {
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

    /// The production IMS host, where Developer Console credentials live.
    pub(crate) const DEFAULT_IMS: &str = "ims-na1.adobelogin.com";

    /// The production IMS endpoint.
    pub(crate) fn default_endpoint() -> Endpoint {
        Endpoint {
            base_url: format!("https://{DEFAULT_IMS}"),
            authority: DEFAULT_IMS.to_owned(),
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
    use crate::{ClientSecret, Error};

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
            let text = text.replace("\\r\\n", "\n").replace("\\n", "\n");
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

        /// Whether it is time to get a new token at `now`: at most `margin` is
        /// left. The margin used is never more than half the token's lifetime,
        /// so a short-lived token is still used for a while. A token that needs
        /// a refresh but has not expired still works: hand it out if the
        /// refresh fails.
        pub fn needs_refresh(&self, now: SystemTime, margin: Duration) -> bool {
            self.expires_in(now) <= self.capped_margin(margin)
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
            let (a, b) = (self.secret().as_bytes(), other.secret().as_bytes());
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
            assert!(!token.needs_refresh(at(T0 + 49), margin));
            assert!(token.needs_refresh(at(T0 + 50), margin));
            let day = AccessToken::new("t", "bearer", at(T0), at(T0 + 86_400));
            assert!(!day.needs_refresh(at(T0 + 86_400 - 601), margin));
            assert!(day.needs_refresh(at(T0 + 86_400 - 600), margin));
            assert!(!day.is_expired(at(T0 + 86_399)));
            assert!(day.is_expired(at(T0 + 86_400)));
        }

        #[test]
        fn tokens_compare_by_value_only() {
            let a = day_token("abc");
            assert!(a.same_token(&AccessToken::new("abc", "x", at(0), at(1))));
            assert!(!a.same_token(&day_token("abd")));
            assert!(!a.same_token(&day_token("ab")));
        }
    }
}

// ---------------------------------------------------------------------------
// Credentials: every Adobe kind, from JSON, builders or the environment.
mod credentials {
    use std::io::Read;
    use std::path::Path;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use base64::Engine as _;
    use serde_json::{Map, Value};
    use zeroize::Zeroize as _;

    use crate::endpoint::{default_endpoint, DEFAULT_IMS};
    use crate::exchange::excerpt;
    use crate::files::{read_capped, read_capped_file};
    use crate::key::certificate_not_after;
    use crate::secret::Secret;
    use crate::text::{parse_rfc3339, rough_duration};
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
    #[derive(Clone, Debug)]
    pub struct OAuthCredentials {
        pub(crate) ims: Endpoint,
        pub(crate) client_id: String,
        pub(crate) client_secret: ClientSecret,
        pub(crate) scopes: Vec<String>,
        pub(crate) org_id: Option<String>,
        pub(crate) technical_account_id: Option<String>,
        project: Option<ConsoleProject>,
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
        /// The organization id (`...@AdobeOrg`), when the source gave one
        /// (`x-gw-ims-org-id` for Adobe APIs); IMS does not need it here.
        pub fn org_id(&self) -> Option<&str> {
            self.org_id.as_deref()
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
    #[derive(Debug, Default)]
    #[must_use = "a builder does nothing until `build` is called"]
    pub struct OAuthCredentialsBuilder {
        ims: Option<String>,
        client_id: Option<String>,
        client_secret: Option<ClientSecret>,
        scopes: Vec<String>,
        org_id: Option<String>,
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
        /// Organization id (`...@AdobeOrg`); optional, IMS does not need it
        /// for this flow, but Adobe APIs want it in `x-gw-ims-org-id`.
        pub fn org_id(mut self, v: impl Into<String>) -> Self {
            self.org_id = Some(v.into());
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
                org_id: self.org_id,
                technical_account_id: None,
                project: None,
            })
        }
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

    /// Splits a comma-separated list, trims entries and drops empty ones.
    fn split_list(list: &str) -> impl Iterator<Item = String> + '_ {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
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
        /// Unknown fields are ignored.
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
        /// Of several `client_secrets`, the first is used.
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
            let bytes = read_capped_file(path, MAX_CREDENTIALS_BYTES).map_err(|e| {
                Error::io(
                    format!("cannot read credentials file {}", path.display()),
                    e,
                )
            })?;
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
        /// - either: `IMS_ENDPOINT`, optional (default `ims-na1.adobelogin.com`).
        ///
        /// Any of the JWT-only variables makes it a service account. An empty
        /// variable counts as unset.
        ///
        /// Returns `Ok(None)` when none of these variables is set, so the
        /// caller can look elsewhere.
        ///
        /// # Errors
        /// [`Error::Config`] naming the variables that are missing (never
        /// their values), a variable that is not UTF-8, a mix of both kinds or
        /// a bad `IMS_ENDPOINT`; [`Error::Key`] or [`Error::Io`] for a private
        /// key that cannot be used or read.
        pub fn from_env() -> Result<Option<Self>, Error> {
            credentials_from_vars(|name| std::env::var_os(name))
        }

        /// Replaces the endpoint (e.g. a stage IMS or a local fake).
        #[must_use = "this returns the changed credentials; the original is moved"]
        pub fn with_ims(mut self, ims: Endpoint) -> Self {
            match &mut self {
                Credentials::ServiceAccount(a) => a.ims = ims,
                Credentials::OAuth(o) => o.ims = ims,
                // Already issued: there is no exchange for the endpoint to change.
                Credentials::LocalToken(_) => {}
            }
            self
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
        let mut root: Value = serde_json::from_slice(bytes)
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
            client_secret: aem_client_secret(f, &account)?,
            scopes: f.list("scopes")?,
            org_id: f.optional_string("org"),
            technical_account_id: f.optional_string("id"),
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
            client_secret: ClientSecret::new(s2s.first_string("client_secrets")?),
            scopes: s2s.list("scopes")?,
            org_id: Some(org_id),
            technical_account_id: s2s.optional_string("technical_account_id"),
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
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::config(format!(
                "credentials field `{}` is not a token: it holds spaces or control characters",
                f.path("accessToken")
            )));
        }
        let claims = local_token_claims(token);
        let text = |name: &str| {
            claims
                .as_ref()
                .and_then(|c| c.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        Ok(LocalToken {
            token: Secret(token.to_owned()),
            expires_at: claims.as_ref().and_then(local_token_expiry),
            client_id: text("client_id").to_owned(),
            scopes: split_list(text("scope")).collect(),
            ims: default_endpoint(),
        })
    }

    /// The token's payload (the middle segment), if it is base64url JSON.
    fn local_token_claims(token: &str) -> Option<Value> {
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// `created_at` plus `expires_in`, both milliseconds, numbers or strings.
    fn local_token_expiry(claims: &Value) -> Option<SystemTime> {
        let millis = |name: &str| -> Option<u64> {
            match claims.get(name)? {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }
        };
        let total = millis("created_at")?.checked_add(millis("expires_in")?)?;
        UNIX_EPOCH.checked_add(Duration::from_millis(total))
    }

    const ENV_CLIENT_ID: &str = "IMS_CLIENT_ID";

    const ENV_CLIENT_SECRET: &str = "IMS_CLIENT_SECRET";

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
            &[ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_ORG_ID, ENV_SCOPES],
            "OAuth Server-to-Server",
        )?;
        OAuthCredentials::builder()
            .ims(env.endpoint()?)
            .client_id(env.value(ENV_CLIENT_ID)?)
            .client_secret(ClientSecret::new(env.value(ENV_CLIENT_SECRET)?))
            .org_id(env.value(ENV_ORG_ID)?)
            .scopes(env.value(ENV_SCOPES)?)
            .build()
            .map_err(|e| e.prefixed(format_args!("${ENV_SCOPES}")))
    }

    fn service_account_from_env(env: &EnvVars) -> Result<ServiceAccount, Error> {
        env.require(
            &[
                ENV_CLIENT_ID,
                ENV_CLIENT_SECRET,
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
            .client_secret(ClientSecret::new(env.value(ENV_CLIENT_SECRET)?))
            .org_id(env.value(ENV_ORG_ID)?)
            .technical_account_id(env.value(ENV_TECHNICAL_ACCOUNT_ID)?)
            .private_key(private_key_from_env(env)?)
            .metascopes(env.value(ENV_METASCOPES)?)
            .build()
            .map_err(|e| e.prefixed(format_args!("${ENV_METASCOPES}")))
    }

    fn private_key_from_env(env: &EnvVars) -> Result<PrivateKey, Error> {
        match (env.get(ENV_PRIVATE_KEY), env.get(ENV_PRIVATE_KEY_FILE)) {
            (Some(pem), None) => PrivateKey::from_pem(pem)
                .map_err(|e| e.prefixed(format_args!("${ENV_PRIVATE_KEY}"))),
            (None, Some(path)) => {
                let path = Path::new(path);
                let bytes = read_capped_file(path, MAX_CREDENTIALS_BYTES).map_err(|e| {
                    Error::io(
                        format!(
                            "cannot read the private key file {} (${ENV_PRIVATE_KEY_FILE})",
                            path.display()
                        ),
                        e,
                    )
                })?;
                let pem = std::str::from_utf8(&bytes)
                    .map_err(|_| Error::key("the private key file is not text (PEM)"))
                    .and_then(PrivateKey::from_pem);
                pem.map_err(|e| e.in_file(path))
            }
            _ => Err(Error::config(format!(
                "set only one of ${ENV_PRIVATE_KEY} and ${ENV_PRIVATE_KEY_FILE}"
            ))),
        }
    }

    #[cfg(test)]
    mod tests {
        use std::error::Error as _;

        use super::*;
        use crate::test_support::*;

        #[test]
        fn lists_are_split_trimmed_and_emptied() {
            let items: Vec<String> = split_list(" a, ,b,, https://x/s/c ").collect();
            assert_eq!(items, ["a", "b", "https://x/s/c"]);
        }

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

        #[test]
        fn local_token_expiry_reads_milliseconds() {
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let payload = b64.encode(r#"{"created_at":"1700000000000","expires_in":86400000}"#);
            let claims = local_token_claims(&format!("h.{payload}.s")).unwrap();
            assert_eq!(local_token_expiry(&claims), Some(at(1_700_086_400)));
            let padded = format!("h.{payload}==.s");
            assert!(local_token_claims(&padded).is_some());
            assert_eq!(local_token_claims("no-dots"), None);
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
    use crate::secret::{Secret, REDACTED};
    use crate::text::is_visible_ascii;
    use crate::{AccessToken, Error, ImsError, OAuthCredentials, ServiceAccount, SignedJwt};

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

    /// The form fields of the client-credentials grant, in order. The scope
    /// list is passed in because the form only borrows.
    pub(crate) fn oauth_form<'a>(
        oauth: &'a OAuthCredentials,
        scope: &'a str,
    ) -> [(&'a str, &'a str); 4] {
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
    pub(crate) struct FormRequest {
        pub(crate) body: Secret,
        secrets: Vec<Secret>,
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
            }
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
        match reply.status {
            200 => parse_success(reply, unit, now),
            429 | 500..=599 => Err(Error::Unavailable(Box::new(ims_error(reply, secrets)))),
            400..=499 => Err(Error::Rejected(Box::new(ims_error(reply, secrets)))),
            300..=399 => Err(Error::unexpected(
                Some(reply.status),
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
    pub(crate) fn excerpt(bytes: &[u8], secrets: &[&str]) -> String {
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
        fn excerpts_are_short_printable_and_scrubbed() {
            let body = format!("client_secret=s3cr3t&x=\u{7}{}", "y".repeat(1000));
            let text = excerpt(body.as_bytes(), &["s3cr3t"]);
            assert!(!text.contains("s3cr3t") && text.contains(REDACTED));
            assert!(!text.contains('\u{7}'));
            assert!(text.chars().count() <= MAX_EXCERPT_CHARS + 1);
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
// The HTTP client: agent, proxy, TLS, retries, and the ureq error mapping.
mod client {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use crate::clock::{correction_moved, is_clock_refusal, ClockOffset};
    use crate::exchange::{
        check_lifetime, jwt_exchange_form, oauth_form, parse_reply, FormRequest, RawReply,
    };
    use crate::files::read_capped_file;
    use crate::secret::Secret;
    use crate::text::{parse_http_date, seconds_between, shift};
    use crate::{
        sign_jwt, AccessToken, Credentials, Endpoint, Error, Flow, OAuthCredentials,
        ServiceAccount, DEFAULT_JWT_LIFETIME,
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
        /// The proxy the agent goes through, if any.
        route: Option<ProxyRoute>,
        retries: u32,
        max_retry_wait: Duration,
        jwt_lifetime: Duration,
        clock: Arc<ClockOffset>,
    }

    /// Settings for a [`Client`].
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
    pub(crate) struct ProxyRoute {
        pub(crate) proxy: ureq::Proxy,
        /// `127.0.0.1:3128 (from $HTTPS_PROXY)`: host and port, never the
        /// user or password.
        pub(crate) name: String,
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

    pub(crate) fn unbracket(host: &str) -> &str {
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
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                (u128::from(u32::from(a)), u128::from(u32::from(n)), 32)
            }
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

    /// The TLS setup: rustls with the ring provider, trusting the Mozilla roots
    /// (webpki-root-certs, the one bundle in the build) plus any CA file.
    fn tls_config(ca_file: Option<&Path>) -> Result<ureq::tls::TlsConfig, Error> {
        let builder = ring_tls_builder();
        let Some(path) = ca_file else {
            return Ok(builder.root_certs(mozilla_roots_and(Vec::new())).build());
        };
        let pem = read_capped_file(path, MAX_CA_FILE_BYTES)
            .map_err(|e| Error::io(format!("cannot read CA file {}", path.display()), e))?;
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
            self.post_with_retries(&account.ims, "/ims/exchange/jwt", Flow::JwtExchange, || {
                let correction = self.clock.correction();
                signed_with.set(correction);
                let now = shift(SystemTime::now(), correction);
                let jwt = sign_jwt(account, now, self.jwt_lifetime)?;
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

        /// The longest one [`Client::fetch`] of `credentials` can take with
        /// these settings: every attempt timing out and the longest waits between
        /// them; for a JWT exchange, twice that (the one more exchange on IMS's
        /// time); none for a local development token. A caller waiting for
        /// another's fetch waits this long at most.
        pub fn max_fetch_time(&self, credentials: &Credentials) -> Duration {
            let attempts = self.retries.saturating_add(1);
            let cycle = self
                .timeout
                .saturating_mul(attempts)
                .saturating_add(self.max_retry_wait.saturating_mul(self.retries));
            match credentials {
                Credentials::ServiceAccount(_) => cycle.saturating_mul(2),
                Credentials::OAuth(_) => cycle,
                Credentials::LocalToken(_) => Duration::ZERO,
            }
        }

        /// IMS's clock minus this host's, in whole seconds, from the `Date`
        /// header of IMS's latest reply (`None` before any reply had one).
        /// Positive: this host's clock is behind.
        pub fn clock_offset(&self) -> Option<i64> {
            self.clock.offset()
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
                let result = self.post_once(&url, via, &request.body).and_then(|reply| {
                    self.clock.learn(reply.clock_offset);
                    parse_reply(&reply, unit, SystemTime::now(), &request.scrub())
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
                        None,
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
            let clock_offset = header("date")
                .as_deref()
                .and_then(parse_http_date)
                .map(|date| seconds_between(SystemTime::now(), date));
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_REPLY_BYTES)
                .read_to_vec()
                .map_err(|e| match e {
                    ureq::Error::BodyExceedsLimit(_) => Error::unexpected(
                        Some(status),
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
                clock_offset,
                body,
            })
        }
    }

    /// The ureq error of a request, in the crate's terms.
    impl Error {
        /// `what` says how far the call got, e.g. `cannot reach IMS at`; `via`
        /// is the proxy the request went through.
        pub(crate) fn from_transport(
            url: &str,
            e: ureq::Error,
            what: &str,
            via: Option<&ProxyRoute>,
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
                                "cannot reach the proxy {proxy} on the way to IMS at {url}"
                            ),
                            source: Arc::new(e),
                        },
                        ProxyProblem::NoTunnel => Error::Transport {
                            message: format!(
                                "the proxy {proxy} did not open a tunnel to IMS at {url}"
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
                return Error::Timeout {
                    message: format!("IMS at {url} did not answer in time{through}"),
                    source: Arc::new(e),
                };
            }
            match tls_problem(&e) {
                Some(problem) => Error::Tls {
                    message: format!("cannot reach IMS at {url}{through}: {problem}"),
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
    /// - A refresh that fails other than by IMS's refusal (IMS 5xx or 429,
    ///   network, timeout, TLS, proxy, an odd reply) keeps the unexpired
    ///   token, and IMS is asked again after [`REFRESH_RETRY_PAUSE`]. A
    ///   refusal ([`Error::Rejected`]) drops it.
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

    impl RefreshRule {
        /// A rule that refreshes at a random point between `margin` and half
        /// of it before expiry (so that processes started together do not
        /// all ask IMS in the same second).
        pub fn new(margin: Duration) -> Self {
            RefreshRule {
                margin,
                permille: random_permille(),
            }
        }

        /// A rule that refreshes exactly `margin` before expiry (capped at
        /// half the token's lifetime), with no random spread.
        pub fn exact(margin: Duration) -> Self {
            RefreshRule {
                margin,
                permille: 1000,
            }
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
            match held.token.as_ref().filter(|t| !t.is_expired(now)) {
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
            let usable = held.token.take().filter(|t| !t.is_expired(now));
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
    use std::sync::{Condvar, Mutex, MutexGuard};
    use std::time::{Duration, SystemTime};

    use crate::refresh::fallback_warning;
    use crate::{AccessToken, Client, Credentials, Error, Held, Outcome, RefreshRule, Step};

    /// Default refresh margin of [`TokenProvider`].
    pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(600);

    /// Hands out a cached token and refreshes it shortly before it expires.
    ///
    /// `Send + Sync`: share it between threads (in an `Arc` or a static).
    /// - While the cached token is valid, no caller waits: when a refresh is
    ///   due, the caller that notices does it and every other caller gets the
    ///   cached token at once.
    /// - Only when there is no unexpired token do callers wait, and then for
    ///   the one refresh in flight; if it fails, each of them gets its error.
    /// - A refresh that fails other than by IMS's refusal (IMS 5xx or 429,
    ///   network, timeout, TLS, proxy) keeps the unexpired token in use and is
    ///   tried again after 30 s. A refusal (4xx) drops it.
    /// - Each provider refreshes at a random point between the whole refresh
    ///   margin and half of it, so processes started together do not all ask
    ///   IMS in the same second.
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
    /// provider.invalidate(&token);
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct TokenProvider {
        client: Client,
        credentials: Credentials,
        rule: RefreshRule,
        state: Mutex<Cached>,
        refreshed: Condvar,
    }

    /// The provider's token, as the refresh rule sees it, and what the
    /// provider knows of the refreshes.
    #[derive(Debug, Default)]
    struct Cached {
        held: Held,
        /// A caller is refreshing now; others use the token or wait for it.
        refreshing: bool,
        /// Refreshes finished so far; a waiter knows its refresh ended when it changes.
        round: u64,
        /// The error of the last finished refresh, if it failed.
        failure: Option<Error>,
    }

    impl TokenProvider {
        /// A provider with the default refresh margin (10 minutes, never more
        /// than half the token's lifetime).
        pub fn new(client: Client, credentials: Credentials) -> Self {
            TokenProvider {
                client,
                credentials,
                rule: RefreshRule::new(DEFAULT_REFRESH_MARGIN),
                state: Mutex::new(Cached::default()),
                refreshed: Condvar::new(),
            }
        }

        /// Sets how long before expiry the token is refreshed, at the most:
        /// the provider refreshes at a random point between this margin and
        /// half of it (and never more than half the token's lifetime early).
        #[must_use = "this returns the changed provider; the original is moved"]
        pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
            self.rule = self.rule.with_margin(margin);
            self
        }

        /// The cached token, or a new one when it is missing or close to expiry.
        ///
        /// Waits only when there is no unexpired token: for the refresh in
        /// flight, or for its own. When a refresh fails other than by IMS's
        /// refusal (IMS 5xx or 429, network, timeout, TLS, proxy, an odd reply)
        /// and the old token has not expired, the old token is handed out (with
        /// a warning logged) and IMS is asked again after 30 seconds.
        ///
        /// # Errors
        /// As [`Client::fetch`], when there is no unexpired token to fall back
        /// on or IMS refused the refresh (then no token is kept). Callers that
        /// waited for the same refresh all get its error.
        pub fn token(&self) -> Result<AccessToken, Error> {
            let mut state = self.lock();
            loop {
                let now = SystemTime::now();
                match self.rule.step(&state.held, now, state.refreshing) {
                    Step::UseCached => {
                        if let Some(token) = &state.held.token {
                            return Ok(token.clone());
                        }
                    }
                    Step::Refresh => return self.refresh(state),
                    Step::Wait => {
                        let round = state.round;
                        state = self
                            .refreshed
                            .wait_while(state, |s| s.round == round)
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                        if let Some(e) = shared_failure(&state, round + 1, SystemTime::now()) {
                            return Err(e);
                        }
                    }
                }
            }
        }

        /// Drops the cached token if it is `token` (the one AEM refused). A
        /// token from before the last refresh is left alone, so that a storm of
        /// 401s for one token costs one exchange.
        pub fn invalidate(&self, token: &AccessToken) {
            let mut state = self.lock();
            if state
                .held
                .token
                .as_ref()
                .is_some_and(|t| t.same_token(token))
            {
                state.held = Held::default();
            }
        }

        /// The credentials this provider uses.
        pub fn credentials(&self) -> &Credentials {
            &self.credentials
        }

        /// Runs one refresh without holding the lock, then records its outcome
        /// and wakes the waiters. Nothing but the bookkeeping runs under the
        /// lock: no logging, no user code.
        fn refresh(&self, mut state: MutexGuard<'_, Cached>) -> Result<AccessToken, Error> {
            state.refreshing = true;
            drop(state);
            let mut finish = RefreshGuard {
                provider: self,
                done: false,
            };
            let result = self.client.fetch(&self.credentials);
            let now = SystemTime::now();
            let (outcome, retry_at) = {
                let mut state = self.lock();
                let outcome = record_refresh(&mut state, &self.rule, result, now);
                (outcome, state.held.retry_at)
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

        fn lock(&self) -> MutexGuard<'_, Cached> {
            // Each change to the state is made in one short step under the lock
            // that calls nothing that can panic, so a poisoned lock still holds
            // a consistent state.
            self.state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    /// Wakes the waiters when a refresh ends. If it ended by unwinding (a panic
    /// in the caller's thread), it also ends the refresh, so that waiters do not
    /// wait for it forever; they start one of their own.
    struct RefreshGuard<'a> {
        provider: &'a TokenProvider,
        done: bool,
    }

    impl Drop for RefreshGuard<'_> {
        fn drop(&mut self) {
            if !self.done {
                let mut state = self.provider.lock();
                state.refreshing = false;
                state.round += 1;
                state.failure = None;
            }
            self.provider.refreshed.notify_all();
        }
    }

    /// Ends a refresh: the rule records its result, and the round and the
    /// error to share with the waiters are kept.
    fn record_refresh(
        state: &mut Cached,
        rule: &RefreshRule,
        result: Result<AccessToken, Error>,
        now: SystemTime,
    ) -> Outcome {
        state.refreshing = false;
        state.round += 1;
        state.failure = result.as_ref().err().cloned();
        rule.record(&mut state.held, result, now)
    }

    /// For a caller that waited for refresh number `round`: the error to share,
    /// when that refresh failed and left no token to use.
    fn shared_failure(state: &Cached, round: u64, now: SystemTime) -> Option<Error> {
        let no_token = state.held.token.as_ref().is_none_or(|t| t.is_expired(now));
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
        use crate::Flow;

        fn unavailable() -> Error {
            parse_reply(&reply(503, ""), Flow::ClientCredentials, at(T0), &[]).unwrap_err()
        }

        fn rejected() -> Error {
            let body = r#"{"error":"invalid_client"}"#;
            parse_reply(&reply(401, body), Flow::ClientCredentials, at(T0), &[]).unwrap_err()
        }

        fn state_with(token: Option<AccessToken>) -> Cached {
            Cached {
                held: Held {
                    token,
                    retry_at: None,
                },
                ..Cached::default()
            }
        }

        #[test]
        fn a_kept_token_leaves_no_error_to_share() {
            let rule = RefreshRule::exact(DEFAULT_REFRESH_MARGIN);
            let mut state = state_with(Some(day_token("old")));
            state.refreshing = true;
            let now = at(T0 + 86_400 - 100);
            let outcome = record_refresh(&mut state, &rule, Err(unavailable()), now);
            assert!(matches!(outcome, Outcome::Kept(..)));
            assert!(!state.refreshing && state.round == 1);
            // Waiters of that round have a token, so no error to share.
            assert!(shared_failure(&state, 1, now).is_none());
        }

        #[test]
        fn a_failure_without_a_usable_token_is_shared_with_that_round_only() {
            let rule = RefreshRule::exact(DEFAULT_REFRESH_MARGIN);
            let mut state = state_with(Some(day_token("old")));
            let now = at(T0 + 10);
            let outcome = record_refresh(&mut state, &rule, Err(rejected()), now);
            assert!(matches!(outcome, Outcome::Failed(Error::Rejected(_))));
            assert!(matches!(
                shared_failure(&state, 1, now),
                Some(Error::Rejected(_))
            ));
            assert!(shared_failure(&state, 2, now).is_none());
            let outcome = record_refresh(&mut state, &rule, Ok(day_token("new")), at(T0));
            assert!(matches!(outcome, Outcome::New(_)));
            assert!(state.failure.is_none());
            assert!(shared_failure(&state, 2, at(T0)).is_none());
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
