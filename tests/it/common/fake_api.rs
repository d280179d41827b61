//! A fake Adobe API on 127.0.0.1 for the tests of `TokenProvider::request`
//! and the `adobe_api` example. Like the fake IMS, it never uses the
//! `ims_token` library: it reads each request, records it, and answers it
//! with what the test's `answer` says. One request per connection.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::http::{read_request, response, Recorded};
use super::{accept_polling, ServerThread};

/// A scripted answer: status, extra headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// A fake API on 127.0.0.1; stops when dropped.
pub struct FakeApi {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    _thread: ServerThread,
}

impl FakeApi {
    /// Starts a fake that answers every request with `answer(request)`.
    pub fn start(answer: impl Fn(&Recorded) -> Answer + Send + 'static) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local_addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let thread = ServerThread::spawn(format!("fake-api-{}", addr.port()), move |stop| {
            while let Some(tcp) = accept_polling(&listener, || !stop.load(Ordering::SeqCst)) {
                // A broken connection is the client's business.
                let _ = serve(tcp, &answer, &recorded);
            }
        });
        FakeApi {
            addr,
            requests,
            _thread: thread,
        }
    }

    /// A fake that refuses (401) every request whose bearer token is one of
    /// `refused`, and answers 200 `{"ok":true}` to the others.
    pub fn refusing(refused: &[&str]) -> FakeApi {
        let refused: Vec<String> = refused.iter().map(|t| format!("Bearer {t}")).collect();
        FakeApi::start(move |request| {
            let authorization = request.header("authorization").unwrap_or_default();
            if refused.iter().any(|r| r == authorization) {
                (401, Vec::new(), br#"{"error":"unauthorized"}"#.to_vec())
            } else {
                (200, Vec::new(), br#"{"ok":true}"#.to_vec())
            }
        })
    }

    /// `http://127.0.0.1:PORT` followed by `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Requests fully read so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(
    tcp: TcpStream,
    answer: &impl Fn(&Recorded) -> Answer,
    recorded: &Mutex<Vec<Recorded>>,
) -> io::Result<()> {
    tcp.set_nonblocking(false)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut stream = &tcp;
    let request = read_request(&mut stream)?;
    recorded.lock().unwrap().push(request.clone());
    let (status, headers, body) = answer(&request);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    stream.write_all(&response(status, &headers, &body))?;
    stream.flush()
}
