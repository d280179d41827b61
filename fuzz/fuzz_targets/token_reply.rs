//! `parse_token_reply`: byte 0 picks the flow (even: JWT exchange, odd:
//! client credentials), bytes 1-2 the status (little-endian, mod 1000),
//! the rest is the body.
//!
//! Invariant: no panic; Ok only for status 200, with a token and token type
//! of visible ASCII; the error kind follows the status; a 2xx reply's body
//! is never quoted in the error.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use ims_token::{parse_token_reply, Error, Flow};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [f, s0, s1, body @ ..] = data else {
        return;
    };
    let flow = if f & 1 == 0 {
        Flow::JwtExchange
    } else {
        Flow::ClientCredentials
    };
    let status = u16::from_le_bytes([*s0, *s1]) % 1000;
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    match parse_token_reply(flow, status, body, now) {
        Ok(token) => {
            assert!(status == 200 && !token.secret().is_empty());
            // Nothing that could break a header or a line gets through.
            let visible = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic());
            assert!(visible(token.secret()) && visible(token.token_type()));
        }
        Err(e) => {
            match status {
                429 | 500..=599 => assert!(matches!(e, Error::Unavailable(_)), "{e:?}"),
                400..=499 => assert!(matches!(e, Error::Rejected(_)), "{e:?}"),
                _ => assert!(matches!(e, Error::UnexpectedReply { .. }), "{e:?}"),
            }
            if (200..300).contains(&status) {
                assert!(!format!("{e} {e:?}").contains("tok-SECRET"), "{e}");
            }
        }
    }
});
