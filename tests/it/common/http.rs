//! HTTP/1.1, just enough: a request read and recorded, a form decoded, a
//! response built, an HTTP date written. The fake IMS and the other small
//! servers of the tests (echoing, faulty, proxying) all speak it.

use std::io::{self, Read};

use super::civil_from_days;

/// Largest request head [`read_request`] accepts.
const MAX_HEAD: usize = 64 * 1024;

// Recorded requests

/// A request as the fake received it.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    pub method: String,
    /// The request target as sent (path plus any query).
    pub path: String,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked if it was sent chunked).
    pub body: Vec<u8>,
    /// The body decoded as `application/x-www-form-urlencoded`.
    pub form: Vec<(String, String)>,
}

impl Recorded {
    /// First value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First value of a form field.
    pub fn form_value(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------
// HTTP/1.1, just enough

/// Reads one request: head, then a Content-Length or chunked body.
pub fn read_request(stream: &mut impl Read) -> io::Result<Recorded> {
    let mut buf = Vec::new();
    let head_len = read_until_head_end(stream, &mut buf)?;
    let mut request = parse_head(&buf[..head_len])?;
    let rest = buf.split_off(head_len);
    request.body = read_body(stream, &request, rest)?;
    request.form = parse_form(&request.body);
    Ok(request)
}

/// Reads into `buf` until it holds `\r\n\r\n`; returns the head's length.
fn read_until_head_end(stream: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            return Ok(i + 4);
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        read_more(stream, buf)?;
    }
}

/// Appends what the stream has; EOF is an error (the request is incomplete).
fn read_more(stream: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk)?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(head: &[u8]) -> io::Result<Recorded> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let text = std::str::from_utf8(head).map_err(|_| bad("request head is not UTF-8"))?;
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let request_line = lines.next().ok_or_else(|| bad("empty request"))?;
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts
        .next()
        .ok_or_else(|| bad("no request target"))?
        .to_string();
    let headers = lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad("header without ':'"))?;
            Ok((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect::<io::Result<Vec<_>>>()?;
    Ok(Recorded {
        method,
        path,
        headers,
        ..Recorded::default()
    })
}

fn read_body(stream: &mut impl Read, req: &Recorded, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            if let Some(body) = decode_chunked(&buf)? {
                return Ok(body);
            }
            read_more(stream, &mut buf)?;
        }
    }
    let len = match req.header("content-length") {
        Some(v) => v.parse::<usize>().map_err(|_| io::ErrorKind::InvalidData)?,
        None => 0,
    };
    while buf.len() < len {
        read_more(stream, &mut buf)?;
    }
    buf.truncate(len);
    Ok(buf)
}

/// The de-chunked body, or None while it is still incomplete.
fn decode_chunked(mut buf: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = find(buf, b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&buf[..eol]).map_err(|_| io::ErrorKind::InvalidData)?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| io::ErrorKind::InvalidData)?;
        buf = &buf[eol + 2..];
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            return Ok(find(buf, b"\r\n").map(|_| body));
        }
        if buf.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

/// Decodes `application/x-www-form-urlencoded` (`+` is a space, `%XX` a byte).
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(i) => (form_decode(&pair[..i]), form_decode(&pair[i + 1..])),
            None => (form_decode(pair), String::new()),
        })
        .collect()
}

fn form_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() && hex_byte(&s[i + 1..i + 3]).is_some() => {
                out.push(hex_byte(&s[i + 1..i + 3]).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(two).ok()?;
    u8::from_str_radix(text, 16).ok()
}

/// The usual reason phrase of `status` ("Status" for one without).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// The media type of every JSON reply IMS sends.
pub const JSON: &str = "application/json;charset=UTF-8";

/// A whole HTTP/1.1 response: the status line, `headers` in order, then
/// `Content-Length` and `Connection: close`, then `body`.
pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out += &format!("{name}: {value}\r\n");
    }
    out += &format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The whole response for a body of `content_type`, with `headers` after
/// its `Content-Type`.
pub fn typed_response(
    status: u16,
    content_type: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let mut all = vec![("Content-Type", content_type)];
    all.extend_from_slice(headers);
    response(status, &all, body)
}

/// The whole response for a [`JSON`] body, with `headers` after its
/// `Content-Type`.
pub fn json_response(status: u16, body: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    typed_response(status, JSON, body.as_bytes(), headers)
}

/// An IMF-fixdate (`Tue, 14 Nov 2023 22:13:20 GMT`) of epoch seconds.
pub fn http_date(epoch_secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, rem) = (epoch_secs.div_euclid(86_400), epoch_secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
