//! A small HTTP proxy on 127.0.0.1 that logs every connection (its request
//! line and `Proxy-Authorization`) and then, by its [`Mode`], tunnels a
//! `CONNECT` (or forwards an absolute-form `http://` request) to 127.0.0.1,
//! answers 407, or says nothing.
//!
//! Loopback endpoints never go through a proxy, so a test that wants a
//! request through it names IMS [`PROXIED_HOST`], a host that is not
//! loopback: the proxy maps it to 127.0.0.1, and `tls/proxied.pem` is its
//! certificate.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{accept_polling, fixture_path, FakeIms, Reply, ServerThread, POLL};

/// The IMS host name the proxy maps to 127.0.0.1; nothing else resolves it.
pub const PROXIED_HOST: &str = "ims.test";

/// An HTTPS fake IMS serving `script` with the certificate of
/// [`PROXIED_HOST`]; reach it at [`proxied_url`] through the proxy.
pub fn proxied_ims(script: Vec<Reply>) -> FakeIms {
    FakeIms::start_tls(
        script,
        fixture_path("tls/proxied.pem"),
        fixture_path("tls/proxied.key"),
    )
}

/// `https://ims.test:PORT`: the fake, by the name only the proxy resolves.
pub fn proxied_url(server: &FakeIms) -> String {
    format!("https://{PROXIED_HOST}:{}", server.port())
}

/// What the proxy does after logging a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Tunnels `CONNECT` to 127.0.0.1 (or `ims.test`, mapped there) and
    /// forwards absolute-form `http://` requests; 502 for other hosts.
    Forward,
    /// Answers 407 Proxy Authentication Required.
    Refuse,
    /// Says nothing, keeping the connection open until it is stopped (at
    /// most 20 s).
    Silent,
}

/// What the proxy saw of one request.
#[derive(Clone, Debug)]
pub struct ProxySeen {
    pub request_line: String,
    pub proxy_authorization: Option<String>,
}

/// The proxy; it stops when dropped.
pub struct LoggingProxy {
    pub port: u16,
    seen: Arc<Mutex<Vec<ProxySeen>>>,
    connections: Arc<AtomicUsize>,
    _thread: ServerThread,
}

impl LoggingProxy {
    pub fn start(mode: Mode) -> LoggingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (seen2, connections2) = (seen.clone(), connections.clone());
        let thread = ServerThread::spawn(format!("proxy-{port}"), move |stop| {
            while let Some(tcp) = accept_polling(&listener, || !stop.load(Ordering::SeqCst)) {
                connections2.fetch_add(1, Ordering::SeqCst);
                let (seen, stop) = (seen2.clone(), stop.clone());
                thread::spawn(move || {
                    let _ = proxy_one(tcp, mode, &seen, &stop);
                });
            }
        });
        LoggingProxy {
            port,
            seen,
            connections,
            _thread: thread,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://USERINFO@127.0.0.1:PORT`.
    pub fn url_with(&self, userinfo: &str) -> String {
        format!("http://{userinfo}@127.0.0.1:{}", self.port)
    }

    /// The requests it read, in order.
    pub fn seen(&self) -> Vec<ProxySeen> {
        self.seen.lock().unwrap().clone()
    }

    /// The connections it accepted, whether or not a request came.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn proxy_one(
    client: TcpStream,
    mode: Mode,
    seen: &Mutex<Vec<ProxySeen>>,
    stop: &AtomicBool,
) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    client.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = (&client).read(&mut chunk)?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let rest = &buf[head_end..];
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<&str> = lines.collect();
    let proxy_authorization = headers.iter().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    seen.lock().unwrap().push(ProxySeen {
        request_line: request_line.clone(),
        proxy_authorization,
    });
    match mode {
        Mode::Forward => forward(client, &request_line, &headers, rest),
        Mode::Refuse => (&client).write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n",
        ),
        Mode::Silent => {
            let until = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                thread::sleep(POLL);
            }
            Ok(())
        }
    }
}

/// Tunnels or forwards the request to 127.0.0.1.
fn forward(client: TcpStream, request_line: &str, headers: &[&str], rest: &[u8]) -> io::Result<()> {
    let mut parts = request_line.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let (authority, first_bytes) = if method == "CONNECT" {
        (target.to_owned(), rest.to_vec())
    } else if let Some(after) = target.strip_prefix("http://") {
        let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
        let path = if path.is_empty() { "/" } else { path };
        let mut out = format!("{method} {path} {version}\r\n");
        for line in headers {
            let name = line.split(':').next().unwrap_or_default().trim();
            if !name.to_ascii_lowercase().starts_with("proxy-") {
                out += line;
                out += "\r\n";
            }
        }
        out += "\r\n";
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(rest);
        (authority.to_owned(), bytes)
    } else {
        (&client).write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    };
    // Traffic only to loopback.
    let port = authority
        .strip_prefix("127.0.0.1:")
        .or_else(|| authority.strip_prefix(&format!("{PROXIED_HOST}:")));
    let upstream = match port {
        Some(port) => TcpStream::connect(format!("127.0.0.1:{port}")),
        None => Err(io::ErrorKind::PermissionDenied.into()),
    };
    let Ok(upstream) = upstream else {
        (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    };
    upstream.set_read_timeout(Some(Duration::from_secs(5)))?;
    if method == "CONNECT" {
        (&client).write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    }
    (&upstream).write_all(&first_bytes)?;
    let (mut up_read, mut client_write) = (upstream.try_clone()?, client.try_clone()?);
    let back = thread::spawn(move || {
        let _ = io::copy(&mut up_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut &client, &mut &upstream);
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = back.join();
    Ok(())
}
