//! Calls an Adobe API (AEM, Cloud Manager, ...) with a token from ims-token:
//! the three headers Adobe APIs want, and one resend after a 401.
//!
//! ```text
//! adobe_api [-c FILE] [--ims URL] [--ca-file PEM] METHOD URL [BODY]
//! cargo run --example adobe_api -- -c service-credentials.json \
//!     GET https://author-p12345-e67890.adobeaemcloud.com/content/dam.json
//! ```
//!
//! The credentials come from `-c FILE` (`-` reads stdin), else from the file
//! named by `$IMS_CREDENTIALS`, else from the `IMS_*` variables: as the
//! `ims-token` command reads them. `BODY` is sent as `application/json`.
//!
//! It prints the reply's status code on the first line of stdout, then the
//! body. Exit status: 0 for a 2xx, 1 for another status or an error (on
//! stderr), 2 for a bad command line.

use std::io::Write;
use std::process::ExitCode;

use ims_token::{Client, Credentials, TokenProvider};

type Error = Box<dyn std::error::Error>;

const USAGE: &str = "usage: adobe_api [-c FILE] [--ims URL] [--ca-file PEM] METHOD URL [BODY]";

fn main() -> ExitCode {
    let mut out = std::io::stdout().lock();
    ExitCode::from(run(std::env::args().skip(1), &mut out))
}

/// The command line, read.
#[derive(Default)]
struct Args {
    credentials: Option<String>,
    ims: Option<String>,
    ca_file: Option<String>,
    method: String,
    url: String,
    body: Option<String>,
}

/// Runs the example with `args` (without the program name), writing the
/// status and body to `out`; returns the exit status.
pub fn run(args: impl Iterator<Item = String>, out: &mut impl Write) -> u8 {
    let args = match parse(args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("adobe_api: {message}\n{USAGE}");
            return 2;
        }
    };
    match call(&args) {
        Ok((status, body)) => {
            let written = writeln!(out, "{status}")
                .and_then(|()| out.write_all(&body))
                .and_then(|()| out.flush());
            match written {
                Ok(()) if (200..300).contains(&status) => 0,
                Ok(()) => 1,
                Err(e) => {
                    eprintln!("adobe_api: cannot write the reply: {e}");
                    1
                }
            }
        }
        Err(e) => {
            eprintln!("adobe_api: {}", chain(e.as_ref()));
            1
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "-c" | "--credentials" => parsed.credentials = Some(value(&arg)?),
            "--ims" => parsed.ims = Some(value(&arg)?),
            "--ca-file" => parsed.ca_file = Some(value(&arg)?),
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown option {flag}"))
            }
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    match (positional.next(), positional.next()) {
        (Some(method), Some(url)) => {
            parsed.method = method;
            parsed.url = url;
        }
        _ => return Err("give METHOD and URL".into()),
    }
    parsed.body = positional.next();
    if positional.next().is_some() {
        return Err("too many arguments".into());
    }
    Ok(parsed)
}

/// Sends the request through a `TokenProvider`: its headers, and one resend
/// after a 401. The status and the body.
fn call(args: &Args) -> Result<(u16, Vec<u8>), Error> {
    let mut credentials = credentials(args.credentials.as_deref())?;
    if let Some(ims) = &args.ims {
        credentials = credentials.with_ims(ims)?;
    }
    let mut client = Client::builder();
    if let Some(pem) = &args.ca_file {
        client = client.ca_file(pem);
    }
    let provider = TokenProvider::new(client.build()?, credentials);
    let mut request = provider.request(&args.method, &args.url);
    if let Some(body) = &args.body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.as_bytes());
    }
    let response = request.send()?;
    Ok((response.status(), response.into_body()))
}

/// `-c FILE` (`-`: stdin), else `$IMS_CREDENTIALS`, else the `IMS_*` variables.
fn credentials(path: Option<&str>) -> Result<Credentials, Error> {
    let from_env = || {
        std::env::var("IMS_CREDENTIALS")
            .ok()
            .filter(|p| !p.is_empty())
    };
    Ok(match path.map(str::to_owned).or_else(from_env).as_deref() {
        Some("-") => Credentials::from_reader(std::io::stdin().lock())?,
        Some(path) => Credentials::from_file(path)?,
        None => Credentials::from_env()?
            .ok_or("no credentials: give -c FILE, set IMS_CREDENTIALS or the IMS_* variables")?,
    })
}

/// The error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let causes: Vec<String> = std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect();
    causes.join(": ")
}
