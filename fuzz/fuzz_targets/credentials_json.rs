//! Credentials JSON: any bytes through `Credentials::from_reader` (so
//! invalid UTF-8 too) and, as lossy text, through `from_json`; and through
//! `from_reader_selecting` with a credential name taken from the input's
//! first line (the Developer Console project's selection). A service
//! account's `certificate_expiry()` is read as well (it parses the
//! `publicKey` certificate's DER and `certificateExpirationDate`), and a
//! local development token is handed out.
//!
//! Invariant: no panic; an error is Config, Key or Io and quotes no
//! client secret of the sample fixtures.
#![no_main]

use ims_token::{Credentials, Error};
use libfuzzer_sys::fuzz_target;

const SECRETS: [&str; 4] = [
    "p8e-SAMPLE-not-a-real-secret-0123456789abcdef",
    "p8e-SAMPLE-oauth-secret-fedcba9876543210",
    "p8e-SAMPLE-console-secret-0a1b2c3d4e5f6789",
    "p8e-SAMPLE-aem-api-secret-13579bdf02468ace",
];

fn check(result: Result<Credentials, Error>) {
    match result {
        Ok(Credentials::ServiceAccount(account)) => {
            let _ = account.certificate_expiry();
        }
        Ok(Credentials::LocalToken(local)) => {
            let _ = local.access_token(std::time::SystemTime::now());
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
    if let Some((first, rest)) = data.split_first() {
        let split = usize::from(*first).min(rest.len());
        let (name, json) = rest.split_at(split);
        let name = String::from_utf8_lossy(name);
        check(Credentials::from_reader_selecting(json, Some(&name)));
    }
    if std::str::from_utf8(data).is_err() {
        check(Credentials::from_json(&String::from_utf8_lossy(data)));
    }
});
