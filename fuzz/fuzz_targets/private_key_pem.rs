//! `PrivateKey::from_pem` on any text. Seed the corpus with
//! `tests/fixtures/*.pem` (see fuzz/README.md) so libFuzzer mutates real
//! PEM and DER structure.
//!
//! Invariant: no panic; an error is `Error::Key` and quotes neither a line
//! of the fixture keys nor a base64 line (20+ characters) of the input.
#![no_main]

use ims_token::{Error, PrivateKey};
use libfuzzer_sys::fuzz_target;

const FIXTURE_KEYS: [&str; 2] = [
    include_str!("../../tests/fixtures/sample-key.pkcs1.pem"),
    include_str!("../../tests/fixtures/sample-key.pkcs8.pem"),
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = PrivateKey::from_pem(&text) {
        assert!(matches!(e, Error::Key { .. }), "{e:?}");
        let message = format!("{e} {e:?}");
        for line in FIXTURE_KEYS.iter().flat_map(|k| k.lines()) {
            if !line.starts_with("-----") && line.len() >= 20 {
                assert!(
                    !message.contains(line),
                    "the error quotes {line}: {message}"
                );
            }
        }
        for line in text.lines().map(str::trim) {
            let is_key_line = line.len() >= 20
                && line
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
            if is_key_line {
                assert!(
                    !message.contains(line),
                    "the error quotes {line}: {message}"
                );
            }
        }
    }
});
