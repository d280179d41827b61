//! Credentials JSON: any bytes through `Credentials::from_reader` (so
//! invalid UTF-8 too) and, as lossy text, through `from_json`. A service
//! account's `certificate_expiry()` is read as well (it parses the
//! `publicKey` certificate's DER and `certificateExpirationDate`).
//!
//! Invariant: no panic; an error is Config, Key or Io and quotes no
//! client secret of the sample fixtures.
#![no_main]

use ims_token::{Credentials, Error};
use libfuzzer_sys::fuzz_target;

const SECRETS: [&str; 2] = [
    "p8e-SAMPLE-not-a-real-secret-0123456789abcdef",
    "p8e-SAMPLE-oauth-secret-fedcba9876543210",
];

fn check(result: Result<Credentials, Error>) {
    match result {
        Ok(Credentials::ServiceAccount(account)) => {
            let _ = account.certificate_expiry();
        }
        Ok(_) => {}
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::Config { .. } | Error::Key { .. } | Error::Io { .. }
                ),
                "{e:?}"
            );
            let text = format!("{e} {e:?}");
            for secret in SECRETS {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(Credentials::from_reader(data));
    if std::str::from_utf8(data).is_err() {
        check(Credentials::from_json(&String::from_utf8_lossy(data)));
    }
});
