//! `Endpoint::parse` on any text.
//!
//! Invariant: no panic; Ok only for `https://` or plain `http://` to a
//! loopback host, with a well-formed `host[:port]` or `[v6][:port]`, and
//! the URL it gives parses back to the same endpoint.
#![no_main]

use ims_token::{Endpoint, Error};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Endpoint::parse(&text) {
        Ok(endpoint) => {
            let url = endpoint.url();
            let host = endpoint.host();
            let loopback = ["127.0.0.1", "localhost", "[::1]"]
                .iter()
                .any(|h| host == *h || host.starts_with(&format!("{h}:")));
            assert!(
                url.starts_with("https://") || (url.starts_with("http://") && loopback),
                "{text:?} -> {url}"
            );
            // What follows the host is nothing or one colon and digits.
            let port = match host.strip_prefix('[') {
                Some(v6) => v6.split_once(']').map_or("!", |(_, rest)| rest),
                None => host.find(':').map_or("", |i| &host[i..]),
            };
            assert!(
                port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())),
                "{text:?} -> malformed host {host:?}"
            );
            assert_eq!(Endpoint::parse(url).ok().as_ref(), Some(&endpoint));
        }
        Err(e) => assert!(matches!(e, Error::Config { .. }), "{e:?}"),
    }
});
