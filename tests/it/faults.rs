//! Faults below the IMS protocol, injected by a small server of this file's
//! own: connections reset or cut short, a reply trickled byte by byte,
//! broken framing (chunked encoding, huge headers, endless chunked bodies),
//! redirects to another server, and retry sequences. Each test asserts what
//! a user gets (error variant, message, `is_retryable()`, attempts that
//! reached the server), that no secret shows in the error, and a bound on
//! the time taken.
//!
//! The server is std only, on 127.0.0.1, one thread per server; every
//! socket has read and write timeouts, and the thread ends on its own
//! (stop flag on drop, and a lifetime limit).

use crate::common;

use std::error::Error as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::run::{run, Run};
use common::{
    accept_polling, error_body, error_texts, fixture_json, fixture_path, json_response,
    jwt_success_body, oauth_success_body, parse_form, path_str, response, ServerThread,
};
use ims_token::{Client, Credentials, Error};
use serde_json::Value;

/// The access token the fault server issues when it answers with success.
const ACCESS_TOKEN: &str = "faults-fake-access-token-SECRET-0042";
/// Read and write timeout of every server socket.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// A server thread ends by itself after this long, whatever happens.
const SERVER_LIFETIME: Duration = Duration::from_secs(40);
/// Longest request the server reads.
const MAX_REQUEST: usize = 256 * 1024;
/// The test client's cap on a wait between attempts.
const MAX_RETRY_WAIT: Duration = Duration::from_millis(20);
/// The timeout of a trickled attempt, and the server's pace.
const TRICKLE_TIMEOUT: Duration = Duration::from_millis(150);
const TRICKLE_EVERY: Duration = Duration::from_millis(25);

// ---------------------------------------------------------------------------
// The fault server

/// How the server ends a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// A clean close (FIN), after reading the whole request.
    Fin,
    /// A reset (RST): the request is only peeked at, never read, and a
    /// socket closed with unread data makes the kernel send RST.
    Rst,
}

/// What the server does with one connection.
#[derive(Clone, Debug)]
enum Act {
    /// Write these bytes (maybe none), then end the connection so.
    Send(Vec<u8>, End),
    /// Read the request, write `head` at once, then `bytes` one at a time,
    /// `every` apart, until done, the client hangs up or the server stops.
    Trickle {
        head: Vec<u8>,
        bytes: Vec<u8>,
        every: Duration,
    },
}

fn send(bytes: Vec<u8>) -> Act {
    Act::Send(bytes, End::Fin)
}

/// A server on 127.0.0.1 that plays `script[i]` on its i-th connection
/// (and closes any connection beyond the script at once).
struct FaultServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Stops the server when it is dropped.
    _thread: ServerThread,
}

impl FaultServer {
    fn start(script: Vec<Act>) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("local_addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (connections, bodies) = (connections.clone(), bodies.clone());
            ServerThread::spawn(format!("fault-server-{port}"), move |stop| {
                serve(listener, script, &stop, &connections, &bodies)
            })
        };
        FaultServer {
            port,
            connections,
            bodies,
            _thread: thread,
        }
    }

    /// A server that only counts connections (a redirect target).
    fn listen_only() -> FaultServer {
        FaultServer::start(Vec::new())
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The request bodies received so far.
    fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().unwrap().clone()
    }
}

fn serve(
    listener: TcpListener,
    script: Vec<Act>,
    stop: &AtomicBool,
    connections: &AtomicUsize,
    bodies: &Mutex<Vec<Vec<u8>>>,
) {
    let born = Instant::now();
    let keep_going = || !stop.load(Ordering::SeqCst) && born.elapsed() < SERVER_LIFETIME;
    while let Some(stream) = accept_polling(&listener, keep_going) {
        let n = connections.fetch_add(1, Ordering::SeqCst);
        let act = script
            .get(n)
            .cloned()
            .unwrap_or(Act::Send(Vec::new(), End::Fin));
        // Errors only mean the client went away: that is its business.
        let _ = handle(stream, &act, stop, bodies);
    }
}

fn handle(
    mut stream: TcpStream,
    act: &Act,
    stop: &AtomicBool,
    bodies: &Mutex<Vec<Vec<u8>>>,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    if let Act::Send(bytes, End::Rst) = act {
        let body = peek_request(&stream)?;
        bodies.lock().unwrap().push(body);
        stream.write_all(bytes)?;
        stream.flush()?;
        drop(stream); // with the request unread: RST
        return Ok(());
    }
    let body = read_request(&mut stream)?;
    bodies.lock().unwrap().push(body);
    match act {
        Act::Send(bytes, _) => {
            stream.write_all(bytes)?;
            stream.flush()?;
        }
        Act::Trickle { head, bytes, every } => {
            stream.write_all(head)?;
            stream.flush()?;
            for byte in bytes {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                stream.write_all(std::slice::from_ref(byte))?;
                stream.flush()?;
                thread::sleep(*every);
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

/// Where the head ends and how long the body is, once the head is complete.
fn head_and_body_len(buf: &[u8]) -> Option<(usize, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Some((end, len))
}

/// Reads one request; returns its body.
fn read_request(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some((end, len)) = head_and_body_len(&buf) {
            if buf.len() >= end + len {
                return Ok(buf[end..end + len].to_vec());
            }
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 || buf.len() > MAX_REQUEST {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits until the whole request is in the socket buffer, without reading
/// it; returns its body.
fn peek_request(stream: &TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let started = Instant::now();
    loop {
        let n = stream.peek(&mut buf)?;
        if let Some((end, len)) = head_and_body_len(&buf[..n]) {
            if n >= end + len {
                return Ok(buf[end..end + len].to_vec());
            }
        }
        if n == 0 || started.elapsed() > IO_TIMEOUT {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// Replies

/// A good OAuth token reply.
fn token_reply() -> Vec<u8> {
    json_response(200, &oauth_success_body(ACCESS_TOKEN), &[])
}

/// A good JWT-exchange token reply (`expires_in` in milliseconds).
fn jwt_token_reply() -> Vec<u8> {
    json_response(200, &jwt_success_body(ACCESS_TOKEN), &[])
}

fn ims_error_reply(status: u16, headers: &[(&str, &str)], description: &str) -> Vec<u8> {
    json_response(status, &error_body("server_error", description), headers)
}

// ---------------------------------------------------------------------------
// Client, credentials, secrets

const OAUTH_FILE: &str = "oauth-credentials.sample.json";
const JWT_FILE: &str = "service-credentials.sample.json";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    OAuth,
    Jwt,
}

fn credentials(kind: Kind, url: &str) -> Credentials {
    let file = match kind {
        Kind::OAuth => OAUTH_FILE,
        Kind::Jwt => JWT_FILE,
    };
    Credentials::from_file(fixture_path(file))
        .expect("sample credentials load")
        .with_ims(url)
        .expect("loopback URL is an endpoint")
}

/// A client whose waits between attempts (250 ms, 500 ms, ...) are capped
/// at [`MAX_RETRY_WAIT`].
fn client(retries: u32, timeout: Duration) -> Client {
    Client::builder()
        .proxy(None)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(1))
        .retries(retries)
        .max_retry_wait(MAX_RETRY_WAIT)
        .build()
        .expect("the test client builds")
}

/// The fixture's `integration` object.
fn integration(name: &str) -> Value {
    fixture_json(name)["integration"].clone()
}

/// Decodes `application/x-www-form-urlencoded` and returns `name`'s value.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    parse_form(body)
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The signed JWTs the servers were sent.
fn jwts_sent(servers: &[&FaultServer]) -> Vec<String> {
    servers
        .iter()
        .flat_map(|s| s.bodies())
        .filter_map(|body| form_value(&body, "jwt_token"))
        .collect()
}

/// Everything that must never show in an error or in the CLI's output:
/// both fixtures' client secrets, every line of the private key, every JWT
/// the servers were sent (and its signature alone), the issued token.
fn forbidden(servers: &[&FaultServer]) -> Vec<String> {
    let oauth = integration(OAUTH_FILE);
    let jwt = integration(JWT_FILE);
    let mut out = vec![ACCESS_TOKEN.to_owned()];
    for creds in [&oauth, &jwt] {
        let secret = creds["technicalAccount"]["clientSecret"].as_str().unwrap();
        out.push(secret.to_owned());
    }
    let key = jwt["privateKey"].as_str().expect("privateKey is a string");
    out.extend(key.lines().map(str::trim).map(str::to_owned));
    for sent in jwts_sent(servers) {
        out.extend(sent.rsplit('.').next().map(str::to_owned));
        out.push(sent);
    }
    out.retain(|s| s.len() >= 16);
    out
}

/// Display, Debug and pretty Debug of the error, and Display and Debug of
/// its whole source chain.
fn all_error_texts(e: &Error) -> Vec<String> {
    let mut texts = error_texts(e);
    texts.push(format!("{e:#?}"));
    texts
}

fn assert_no_secret_in(text: &str, servers: &[&FaultServer], what: &str) {
    for secret in forbidden(servers) {
        assert!(
            !text.contains(&secret),
            "{what} shows a secret ({secret:?}): {text}"
        );
    }
}

/// No secret shows in the error's Display, Debug or source chain. For the
/// JWT flow, the JWT sent must have been recorded (or the check is empty).
fn assert_secret_free(e: &Error, servers: &[&FaultServer], kind: Kind) {
    if kind == Kind::Jwt && servers.iter().any(|s| s.connections() > 0) {
        assert!(!jwts_sent(servers).is_empty(), "no JWT was recorded");
    }
    for text in all_error_texts(e) {
        assert_no_secret_in(&text, servers, "the error");
    }
}

/// What one fetch against a fault server gave.
struct Outcome {
    result: Result<ims_token::AccessToken, Error>,
    elapsed: Duration,
    server: FaultServer,
}

impl Outcome {
    fn err(&self) -> &Error {
        match &self.result {
            Err(e) => e,
            Ok(_) => panic!("expected an error, got a token"),
        }
    }
}

fn fetch(kind: Kind, script: Vec<Act>, retries: u32, timeout: Duration) -> Outcome {
    let server = FaultServer::start(script);
    let creds = credentials(kind, &server.url());
    let started = Instant::now();
    let result = client(retries, timeout).fetch(&creds);
    let elapsed = started.elapsed();
    Outcome {
        result,
        elapsed,
        server,
    }
}

/// Polls until the server has seen `n` connections (or a second passed).
fn settle(server: &FaultServer, n: usize) {
    let started = Instant::now();
    while server.connections() < n && started.elapsed() < Duration::from_secs(1) {
        thread::sleep(Duration::from_millis(10));
    }
}

/// The error's Display and its source chain on one line, as the CLI shows it.
fn chain(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text += &format!(": {s}");
        source = s.source();
    }
    text
}

/// The fault on every attempt, for each flow, with 2 retries: a retryable
/// Transport error naming the endpoint and the cause, after 3 connections,
/// quickly. `cause` is a word the source chain must hold.
fn assert_retryable_transport(what: &str, act: Act, cause: &str) {
    for kind in [Kind::OAuth, Kind::Jwt] {
        let out = fetch(kind, vec![act.clone(); 3], 2, Duration::from_secs(2));
        let e = out.err();
        assert!(
            matches!(e, Error::Transport { .. }),
            "{what} ({kind:?}): {e:?}"
        );
        assert!(e.is_retryable() && !e.is_config(), "{what}: {e:?}");
        assert!(e.to_string().contains(&out.server.url()), "{what}: {e}");
        let chain = chain(e);
        assert!(
            chain.to_lowercase().contains(cause),
            "{what}: the cause ({cause}) is not shown: {chain}"
        );
        settle(&out.server, 3);
        assert_eq!(out.server.connections(), 3, "{what} ({kind:?}): attempts");
        // Two capped waits of 20 ms, and three prompt failures.
        assert!(
            out.elapsed < Duration::from_secs(3),
            "{what} ({kind:?}) took {:?}",
            out.elapsed
        );
        assert_secret_free(e, &[&out.server], kind);
    }
}

// ---------------------------------------------------------------------------
// 1. The connection breaks before the reply is complete

#[test]
fn a_reset_before_any_reply_is_a_retryable_transport_error() {
    let act = Act::Send(Vec::new(), End::Rst);
    assert_retryable_transport("RST before the reply", act, "reset");
}

#[test]
fn a_close_before_any_reply_is_a_retryable_transport_error() {
    assert_retryable_transport("FIN before the reply", send(Vec::new()), "disconnected");
}

const CUT_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Ty";

#[test]
fn a_close_during_the_headers_is_a_retryable_transport_error() {
    let act = send(CUT_HEAD.to_vec());
    assert_retryable_transport("FIN during the headers", act, "disconnected");
}

#[test]
fn a_reset_during_the_headers_is_a_retryable_transport_error() {
    let act = Act::Send(CUT_HEAD.to_vec(), End::Rst);
    assert_retryable_transport("RST during the headers", act, "reset");
}

/// `Content-Length` promises 100 bytes more than are sent before the close.
/// What is sent is a complete token reply: only the framing says it is cut.
fn truncated_reply() -> Vec<u8> {
    let body =
        format!(r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"bearer","expires_in":86399}}"#);
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len() + 100
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[test]
fn a_truncated_body_is_a_retryable_transport_error() {
    // Right for a user: the reply was cut, the next attempt may be whole.
    let act = send(truncated_reply());
    assert_retryable_transport("truncated body", act, "disconnected");
}

#[test]
fn a_truncated_body_then_a_good_reply_gets_the_token() {
    let out = fetch(
        Kind::OAuth,
        vec![send(truncated_reply()), send(token_reply())],
        2,
        Duration::from_secs(2),
    );
    let token = out.result.as_ref().expect("the retry gets the token");
    assert_eq!(token.secret(), ACCESS_TOKEN);
    assert_eq!(out.server.connections(), 2);
    assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
}

// ---------------------------------------------------------------------------
// 2. A reply trickled one byte every 25 ms

fn trickle(head: &[u8], bytes: &[u8]) -> Act {
    Act::Trickle {
        head: head.to_vec(),
        bytes: bytes.to_vec(),
        every: TRICKLE_EVERY,
    }
}

/// Whether `elapsed` is at least `attempts` trickle timeouts (less 5% for
/// the clocks' grain).
fn waited_out(elapsed: Duration, attempts: u32) -> bool {
    elapsed >= TRICKLE_TIMEOUT * attempts * 95 / 100
}

/// With a 150 ms timeout and no retry: a retryable Timeout after 150 ms and
/// well before the trickle would end (over 4 s).
fn assert_trickle_times_out(what: &str, act: Act, kind: Kind) {
    let out = fetch(kind, vec![act], 0, TRICKLE_TIMEOUT);
    let e = out.err();
    assert!(matches!(e, Error::Timeout { .. }), "{what}: {e:?}");
    assert!(e.is_retryable(), "{what}");
    let text = e.to_string();
    assert!(text.contains("did not answer in time"), "{what}: {text}");
    assert!(text.contains(&out.server.url()), "{what}: {text}");
    assert!(
        waited_out(out.elapsed, 1),
        "{what}: gave up early, after {:?}",
        out.elapsed
    );
    assert!(
        out.elapsed < TRICKLE_TIMEOUT + Duration::from_millis(1500),
        "{what}: the trickle kept the call for {:?}",
        out.elapsed
    );
    assert_eq!(out.server.connections(), 1, "{what}");
    assert_secret_free(e, &[&out.server], kind);
}

#[test]
fn a_trickled_reply_times_out_on_the_overall_timeout() {
    let act = trickle(b"", &token_reply());
    assert_trickle_times_out("whole reply trickled", act, Kind::OAuth);
}

#[test]
fn a_trickled_body_after_prompt_headers_times_out() {
    // The head arrives at once; only the body trickles (~1.5 KiB: 37 s).
    let reply = json_response(
        200,
        &format!(
            r#"{{"token_type":"bearer","access_token":"{ACCESS_TOKEN}","expires_in":86399999,"pad":"{}"}}"#,
            "x".repeat(1400)
        ),
        &[],
    );
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let act = trickle(&reply[..split], &reply[split..]);
    assert_trickle_times_out("body trickled", act, Kind::Jwt);
}

#[test]
fn each_trickled_attempt_gets_its_own_timeout_and_the_total_is_bounded() {
    // Retries 1: two attempts of 150 ms each, one wait of 20 ms at most.
    let server = FaultServer::start(vec![
        trickle(b"", &token_reply()),
        trickle(b"", &token_reply()),
    ]);
    let creds = credentials(Kind::OAuth, &server.url());
    let started = Instant::now();
    let e = client(1, TRICKLE_TIMEOUT).fetch(&creds).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(e.is_retryable());
    settle(&server, 2);
    assert_eq!(server.connections(), 2, "the timeout was not retried");
    assert!(waited_out(elapsed, 2), "{elapsed:?}");
    let bound = TRICKLE_TIMEOUT * 2 + MAX_RETRY_WAIT + Duration::from_millis(1500);
    assert!(elapsed < bound, "{elapsed:?}");
    assert_secret_free(&e, &[&server], Kind::OAuth);
}

// ---------------------------------------------------------------------------
// 3. Replies that are not well-formed HTTP or not IMS's JSON

/// One attempt only (retries 2 allowed): an UnexpectedReply for `status`
/// whose message holds `words`, quickly, secret-free.
fn assert_unexpected_once(what: &str, act: Act, status: u16, words: &str) {
    let out = fetch(Kind::OAuth, vec![act.clone(); 3], 2, Duration::from_secs(2));
    let e = out.err();
    assert!(
        matches!(e, Error::UnexpectedReply { status: Some(s), .. } if *s == status),
        "{what}: {e:?}"
    );
    assert!(!e.is_retryable() && !e.is_config(), "{what}: {e:?}");
    assert!(e.to_string().contains(words), "{what}: {e}");
    thread::sleep(Duration::from_millis(50));
    assert_eq!(out.server.connections(), 1, "{what}: retried");
    assert!(
        out.elapsed < Duration::from_secs(2),
        "{what}: took {:?}",
        out.elapsed
    );
    assert_secret_free(e, &[&out.server], Kind::OAuth);
}

#[test]
fn a_close_delimited_binary_body_is_not_json() {
    // No Content-Length, no chunking: the body ends with the connection.
    // It is not UTF-8 and holds the token: it is not quoted.
    let mut reply =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html>\xff\xfe"
            .to_vec();
    reply.extend_from_slice(ACCESS_TOKEN.as_bytes());
    let act = send(reply);
    assert_unexpected_once("binary body", act, 200, "not JSON");
}

#[test]
fn invalid_chunked_encoding_is_a_retryable_transport_error() {
    // A chunk size that is not hex. The framing is broken, as when the
    // connection is cut: retried, and the cause is named.
    let reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
        .to_vec();
    assert_retryable_transport("invalid chunked encoding", send(reply), "chunk");
}

/// A 200 with one 100 KiB header line.
fn oversized_header_reply() -> Vec<u8> {
    let big = "a".repeat(100 * 1024);
    let body = format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":86399}}"#);
    response(200, &[("X-Padding", &big)], body.as_bytes())
}

#[test]
fn oversized_headers_end_the_call_promptly_without_a_secret() {
    // Bounded and secret-free, whatever the variant (see the next test).
    let out = fetch(
        Kind::OAuth,
        vec![send(oversized_header_reply()); 3],
        2,
        Duration::from_secs(2),
    );
    let e = out.err();
    let chain = chain(e);
    assert!(chain.contains("header"), "the cause is not named: {chain}");
    assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
    assert!(out.server.connections() <= 3);
    assert_secret_free(e, &[&out.server], Kind::OAuth);
}

#[test]
fn oversized_headers_are_an_unexpected_reply_like_an_oversized_body() {
    let out = fetch(
        Kind::OAuth,
        vec![send(oversized_header_reply()); 3],
        2,
        Duration::from_secs(2),
    );
    let e = out.err();
    // No status was read, and none is made up.
    assert!(
        matches!(e, Error::UnexpectedReply { status: None, .. }),
        "{e:?}"
    );
    assert!(!e.is_retryable(), "{e:?}");
    let text = e.to_string();
    assert!(text.starts_with("unexpected IMS reply: "), "{text}");
    assert!(!text.contains("cannot reach"), "IMS was reached: {text}");
    assert!(text.contains("64 KiB") && text.contains("header"), "{text}");
    thread::sleep(Duration::from_millis(50));
    assert_eq!(out.server.connections(), 1, "retried");
    assert_secret_free(e, &[&out.server], Kind::OAuth);
}

#[test]
fn a_chunked_body_over_64_kib_is_unexpected_and_not_read_to_the_end() {
    // 8 MiB in 1 KiB chunks, no Content-Length. The token comes first.
    let mut reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    let start = format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":86399,"pad":""#);
    reply.extend_from_slice(format!("{:x}\r\n{start}\r\n", start.len()).as_bytes());
    for _ in 0..8 * 1024 {
        reply.extend_from_slice(format!("400\r\n{}\r\n", "x".repeat(1024)).as_bytes());
    }
    reply.extend_from_slice(b"2\r\n\"}\r\n0\r\n\r\n");
    let act = send(reply);
    assert_unexpected_once("chunked body over the cap", act, 200, "larger than 64 KiB");
}

// ---------------------------------------------------------------------------
// 4. Redirects to another server are never followed

#[test]
fn redirects_to_another_server_are_never_followed() {
    let statuses = [
        (301, Kind::OAuth),
        (302, Kind::Jwt),
        (307, Kind::OAuth),
        (308, Kind::Jwt),
    ];
    for (status, kind) in statuses {
        let target = FaultServer::listen_only();
        let path = match kind {
            Kind::OAuth => "/ims/token/v3",
            Kind::Jwt => "/ims/exchange/jwt",
        };
        let location = format!("{}{path}", target.url());
        let reply = response(status, &[("Location", &location)], b"");
        let out = fetch(kind, vec![send(reply); 3], 2, Duration::from_secs(2));
        let e = out.err();
        assert!(
            matches!(e, Error::UnexpectedReply { status: Some(s), .. } if *s == status),
            "{status}: {e:?}"
        );
        assert!(!e.is_retryable() && !e.is_config(), "{status}");
        let text = e.to_string();
        assert!(text.contains("redirect"), "{status}: {text}");
        assert!(text.contains(&location), "{status}: {text}");
        assert!(text.contains("check the IMS endpoint"), "{status}: {text}");
        // Give a wrongly followed redirect time to be counted (the servers
        // poll every 1 ms; a retry would have been within the fetch).
        thread::sleep(Duration::from_millis(50));
        assert_eq!(
            target.connections(),
            0,
            "{status}: the target was contacted"
        );
        assert_eq!(out.server.connections(), 1, "{status}: retried");
        assert!(out.elapsed < Duration::from_secs(2), "{:?}", out.elapsed);
        assert_secret_free(e, &[&out.server, &target], kind);
    }
}

// ---------------------------------------------------------------------------
// 5. Retry sequences

#[test]
fn a_503_with_retry_after_then_a_token_succeeds_after_a_capped_wait() {
    let script = vec![
        send(ims_error_reply(503, &[("Retry-After", "1")], "busy")),
        send(token_reply()),
    ];
    let out = fetch(Kind::OAuth, script, 2, Duration::from_secs(2));
    let token = out.result.as_ref().expect("the retry gets the token");
    assert_eq!(token.secret(), ACCESS_TOKEN);
    assert_eq!(out.server.connections(), 2);
    // Retry-After: 1 is capped by max_retry_wait (20 ms).
    assert!(out.elapsed >= MAX_RETRY_WAIT, "{:?}", out.elapsed);
    assert!(
        out.elapsed < Duration::from_millis(900),
        "{:?}",
        out.elapsed
    );
}

#[test]
fn three_500s_report_the_last_reply() {
    let script = ["one", "two", "three"]
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let id = format!("debug-{}", i + 1);
            send(ims_error_reply(500, &[("x-debug-id", &id)], d))
        })
        .collect();
    let out = fetch(Kind::Jwt, script, 2, Duration::from_secs(2));
    let e = out.err();
    let Error::Unavailable(ims) = e else {
        panic!("expected Unavailable, got {e:?}")
    };
    assert_eq!(ims.status, 500);
    assert_eq!(ims.code.as_deref(), Some("server_error"));
    assert_eq!(ims.description.as_deref(), Some("three"));
    assert_eq!(ims.debug_id.as_deref(), Some("debug-3"));
    assert!(e.is_retryable());
    let text = e.to_string();
    assert!(text.contains("500 server_error: three"), "{text}");
    assert!(
        text.contains("debug-3") && !text.contains("debug-1"),
        "{text}"
    );
    assert!(text.contains("try again later"), "{text}");
    assert_eq!(out.server.connections(), 3);
    // Backoffs of 250 and 500 ms, both capped at 20 ms.
    assert!(out.elapsed >= MAX_RETRY_WAIT * 2, "{:?}", out.elapsed);
    assert!(out.elapsed < Duration::from_secs(2), "{:?}", out.elapsed);
    assert_secret_free(e, &[&out.server], Kind::Jwt);
}

#[test]
fn a_jwt_exchange_after_a_reset_gets_the_token_with_a_fresh_attempt() {
    let out = fetch(
        Kind::Jwt,
        vec![Act::Send(Vec::new(), End::Rst), send(jwt_token_reply())],
        2,
        Duration::from_secs(2),
    );
    let token = out.result.as_ref().expect("the retry gets the token");
    assert_eq!(token.secret(), ACCESS_TOKEN);
    assert_eq!(out.server.connections(), 2);
    let jwts = jwts_sent(&[&out.server]);
    assert_eq!(jwts.len(), 2, "each attempt sends the JWT");
    assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
}

// ---------------------------------------------------------------------------
// 6. The command line, for two of the faults

/// `ims-token --ims URL --timeout SECS --retries 0 -c <oauth sample>`.
fn run_cli(url: &str, timeout: &str) -> Run {
    let creds = path_str(&fixture_path(OAUTH_FILE));
    run(&[
        "--ims",
        url,
        "--timeout",
        timeout,
        "--retries",
        "0",
        "-c",
        &creds,
    ])
}

/// Exit 5, nothing on stdout, one `ims-token: ` line naming the endpoint
/// on stderr, no secret anywhere; returns the line.
fn assert_retry_later(run: &Run, server: &FaultServer) -> String {
    assert_eq!(run.code, 5, "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "", "a token on stdout?");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {:?}", run.stderr);
    assert!(lines[0].starts_with("ims-token: "), "{:?}", lines[0]);
    assert!(lines[0].contains(&server.url()), "{:?}", lines[0]);
    assert_no_secret_in(&run.stderr, &[server], "stderr");
    assert_eq!(server.connections(), 1);
    lines[0].to_owned()
}

#[test]
fn cli_truncated_body_exits_5() {
    let server = FaultServer::start(vec![send(truncated_reply())]);
    let run = run_cli(&server.url(), "2");
    let line = assert_retry_later(&run, &server);
    assert!(line.contains("disconnected"), "{line}");
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
}

#[test]
fn cli_trickled_reply_exits_5_after_the_timeout() {
    let server = FaultServer::start(vec![trickle(b"", &token_reply())]);
    // The TRICKLE_TIMEOUT, 150 ms, as the command reads it.
    let run = run_cli(&server.url(), "0.15");
    let line = assert_retry_later(&run, &server);
    assert!(line.contains("did not answer in time"), "{line}");
    assert!(waited_out(run.elapsed, 1), "{:?}", run.elapsed);
    let bound = TRICKLE_TIMEOUT + Duration::from_secs(2);
    assert!(run.elapsed < bound, "{:?}", run.elapsed);
}
