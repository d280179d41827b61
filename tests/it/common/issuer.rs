//! An IMS that issues tokens as long as it is told to, for the sink's
//! tests: every token names when it stops working, so that a reader can
//! tell an expired one, and the test switches the answers while it runs
//! (an outage, a refusal, a silence).
//!
//! Each token is `tok-SECRET-<n>-<deadline>`: the `n`-th issued, which IMS
//! considers dead from `deadline` on (milliseconds since the epoch: the
//! reply's time plus its lifetime). The replies are the JWT exchange's,
//! whose `expires_in` is in milliseconds, so a token can live one second.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::fake_ims::error_body;
use super::http::{json_response, read_request};
use super::run::TOKEN_MARK;
use super::{accept_polling, ServerThread, POLL};

/// What the issuer answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A new token that lives this many milliseconds.
    Token { lifetime_ms: u64 },
    /// This status with an IMS error of this code (503: an outage; 401
    /// `invalid_client`: a refusal).
    Error { status: u16, code: &'static str },
    /// Nothing: the request is read and the connection held until the
    /// issuer stops.
    Silence,
}

/// One token the issuer gave.
#[derive(Clone, Debug)]
pub struct Issued {
    /// 1 for the first.
    pub n: usize,
    pub token: String,
    /// Milliseconds since the epoch from which the token is dead.
    pub deadline_ms: u128,
    /// The `client_id` of the request it answered.
    pub client_id: String,
}

#[derive(Default)]
struct State {
    answer: Option<Answer>,
    issued: Vec<Issued>,
    requests: usize,
}

/// The issuer on 127.0.0.1; stops when dropped.
pub struct Issuer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _thread: ServerThread,
}

impl Issuer {
    pub fn start(answer: Answer) -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(Mutex::new(State {
            answer: Some(answer),
            ..State::default()
        }));
        let shared = state.clone();
        let thread = ServerThread::spawn(format!("issuer-{}", addr.port()), move |stop| {
            while let Some(tcp) = accept_polling(&listener, || !stop.load(Ordering::SeqCst)) {
                serve(tcp, &shared, &stop);
            }
        });
        Issuer {
            addr,
            state,
            _thread: thread,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, answer this.
    pub fn answer(&self, answer: Answer) {
        self.state.lock().unwrap().answer = Some(answer);
    }

    /// Requests read so far.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    /// The tokens given so far, in order.
    pub fn issued(&self) -> Vec<Issued> {
        self.state.lock().unwrap().issued.clone()
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis()
}

/// The `n` and deadline of a token this issuer made.
pub fn parse_token(token: &str) -> Option<(usize, u128)> {
    let rest = token.strip_prefix(TOKEN_MARK)?.strip_prefix('-')?;
    let (n, deadline) = rest.split_once('-')?;
    Some((n.parse().ok()?, deadline.parse().ok()?))
}

fn serve(tcp: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let mut stream = &tcp;
    let Ok(request) = read_request(&mut stream) else {
        return;
    };
    let client_id = request
        .form_value("client_id")
        .unwrap_or_default()
        .to_owned();
    let bytes = {
        let mut state = state.lock().unwrap();
        state.requests += 1;
        match state.answer.clone() {
            Some(Answer::Token { lifetime_ms }) => {
                let n = state.issued.len() + 1;
                let deadline_ms = now_ms() + u128::from(lifetime_ms);
                let token = format!("{TOKEN_MARK}-{n}-{deadline_ms}");
                state.issued.push(Issued {
                    n,
                    token: token.clone(),
                    deadline_ms,
                    client_id,
                });
                let body = format!(
                    r#"{{"token_type":"bearer","access_token":"{token}","expires_in":{lifetime_ms}}}"#
                );
                Some(json_response(200, &body, &[]))
            }
            Some(Answer::Error { status, code }) => Some(json_response(
                status,
                &error_body(code, "the issuer says no"),
                &[],
            )),
            Some(Answer::Silence) | None => None,
        }
    };
    match bytes {
        Some(bytes) => {
            let _ = stream.write_all(&bytes);
            let _ = stream.flush();
        }
        None => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(POLL);
            }
        }
    }
}
