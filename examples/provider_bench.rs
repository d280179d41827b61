//! Figures for `TokenProvider` under load; run by `bench/run.sh`
//! (`cargo run --release --example provider_bench`). Prints figures only,
//! asserts nothing. Traffic goes to a tiny fake IMS on 127.0.0.1 in this
//! process; every loop is bounded.
//!
//! - `hot_path`: median and p99 ns per `token()` with 8 threads and a fresh token;
//! - `refresh_wait`: while one refresh takes 2 s (8 threads, each calling
//!   every millisecond), the longest wait of any call (the one that noticed
//!   the refresh was due included), of calls that got the old token and of
//!   calls that got the new one, and how many calls took over 100 ms;
//! - `storm`: exchanges caused by 8 threads that got 401 for the same token
//!   and each called `invalidate(&token)` then `token()`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ims_token::{Client, Credentials, TokenProvider};

const THREADS: usize = 8;
const CREDENTIALS: &str = "tests/fixtures/oauth-credentials.sample.json";

/// A fake IMS answering each connection, in order, with `(delay, expires_in)`.
struct Fake {
    url: String,
    hits: Arc<AtomicUsize>,
}

fn fake(script: Vec<(Duration, u64)>) -> Result<Fake, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    thread::spawn(move || {
        for (n, (delay, expires_in)) in script.into_iter().enumerate() {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = answer(stream, delay, &format!("bench-token-{n}"), expires_in);
        }
    });
    Ok(Fake { url, hits })
}

fn answer(
    mut stream: TcpStream,
    delay: Duration,
    token: &str,
    expires_in: u64,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    // Head, then a Content-Length body: enough for ureq's form POST.
    while !complete(&request) {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    thread::sleep(delay);
    let body =
        format!(r#"{{"access_token":"{token}","token_type":"bearer","expires_in":{expires_in}}}"#);
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn complete(request: &[u8]) -> bool {
    let text = String::from_utf8_lossy(request);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= length
}

fn provider(fake: &Fake) -> Result<TokenProvider, Box<dyn std::error::Error>> {
    let client = Client::builder().proxy(None).retries(0).build()?;
    let credentials = Credentials::from_file(CREDENTIALS)?.with_ims(&fake.url)?;
    Ok(TokenProvider::new(client, credentials))
}

/// Runs `f` on `THREADS` threads released together.
fn on_threads<T: Send>(f: impl Fn() -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    f()
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

fn hot_path(calls_per_thread: usize) -> Result<(), Box<dyn std::error::Error>> {
    let fake = fake(vec![(Duration::ZERO, 86_399)])?;
    let provider = provider(&fake)?;
    provider.token()?;
    let mut ns: Vec<u128> = on_threads(|| {
        (0..calls_per_thread)
            .map(|_| {
                let start = Instant::now();
                let token = provider.token();
                let took = start.elapsed().as_nanos();
                std::hint::black_box(token.map(|t| t.secret().len()).ok());
                took
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q) as usize];
    println!(
        "hot_path\tthreads={THREADS}\tcalls={}\tmedian_ns={}\tp99_ns={}",
        ns.len(),
        at(0.5),
        at(0.99)
    );
    Ok(())
}

fn refresh_wait() -> Result<(), Box<dyn std::error::Error>> {
    // A 10 s token, due for refresh after 5 to 7.5 s (margin capped at half
    // the lifetime, jittered); the refresh takes 2 s. The threads call for
    // 2.3 s from 7.6 s on: through the whole refresh and past its end.
    let fake = fake(vec![(Duration::ZERO, 10), (Duration::from_secs(2), 86_399)])?;
    let provider = provider(&fake)?;
    let first = provider.token()?;
    thread::sleep(Duration::from_millis(7600));
    let calls = on_threads(|| {
        let until = Instant::now() + Duration::from_millis(2300);
        let mut calls = Vec::new();
        while Instant::now() < until {
            let start = Instant::now();
            let Ok(token) = provider.token() else { break };
            calls.push((start.elapsed(), token.secret() == first.secret()));
            // A request thread's pace: a call every millisecond.
            thread::sleep(Duration::from_millis(1));
        }
        calls
    });
    let calls: Vec<(Duration, bool)> = calls.into_iter().flatten().collect();
    let longest = |old: Option<bool>| {
        calls
            .iter()
            .filter(|(_, cached)| old.is_none_or(|o| *cached == o))
            .map(|(took, _)| *took)
            .max()
            .unwrap_or_default()
    };
    let slow = calls
        .iter()
        .filter(|(took, _)| *took > Duration::from_millis(100))
        .count();
    let new_token_calls = calls.iter().filter(|(_, cached)| !cached).count();
    println!(
        "refresh_wait\tthreads={THREADS}\tcalls={}\tlongest_any_us={}\tlongest_cached_us={}\t\
         longest_new_us={}\tcalls_over_100ms={slow}\tnew_token_calls={new_token_calls}\texchanges={}",
        calls.len(),
        longest(None).as_micros(),
        longest(Some(true)).as_micros(),
        longest(Some(false)).as_micros(),
        fake.hits.load(Ordering::SeqCst)
    );
    Ok(())
}

fn storm() -> Result<(), Box<dyn std::error::Error>> {
    let fake = fake(vec![
        (Duration::ZERO, 86_399),
        (Duration::from_millis(100), 86_399),
        (Duration::ZERO, 86_399),
        (Duration::ZERO, 86_399),
    ])?;
    let provider = provider(&fake)?;
    let refused = provider.token()?;
    let before = fake.hits.load(Ordering::SeqCst);
    on_threads(|| {
        provider.invalidate(&refused);
        provider.token().is_ok()
    });
    let exchanges = fake.hits.load(Ordering::SeqCst) - before;
    println!("storm\tthreads={THREADS}\texchanges={exchanges}");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let calls: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 20_000,
    };
    hot_path(calls.clamp(1, 1_000_000))?;
    refresh_wait()?;
    storm()?;
    Ok(())
}
