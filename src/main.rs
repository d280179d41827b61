//! `ims-token`: print an Adobe IMS access token for cron jobs and shell scripts.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ims_token::{
    AccessToken, ApiHeaders, Client, Credentials, Error, OAuthCredentials, ServiceAccount,
};

// The rooms below each start with `use super::*`: these imports and the
// rooms' items are the vocabulary they share.
use args::*;
use cache::{Cache, SharedFailure};
use commands::*;
use credentials::*;
use failure::*;
use output::*;

const HELP: &str = "\
ims-token: print an Adobe IMS access token

USAGE:
    ims-token [token] [OPTIONS]   exchange and print the access token (default)
    ims-token exec [OPTIONS] -- COMMAND [ARGS...]
                                  run COMMAND with the token in its environment
    ims-token jwt [OPTIONS]       print a freshly signed JWT, no network
    ims-token inspect [OPTIONS]   show what the credentials hold, no secrets

OPTIONS:
    -c, --credentials FILE   credentials JSON; '-' reads stdin (default: the
                             path in $IMS_CREDENTIALS, else IMS_* variables)
        --credential NAME|ID which Developer Console project credential
                             (when it has several OAuth Server-to-Server)
        --ims HOST|URL       override the IMS endpoint (http: loopback only)
        --format FORMAT      token (default) | header | headers | json
                             headers: Authorization, x-api-key and (when known)
                             x-gw-ims-org-id, one a line, for 'curl -H @-'
        --lifetime SECS      JWT lifetime (default 300, at most 86400)
        --scope LIST         override the OAuth scopes or JWT metascopes
                             (comma-separated)
        --timeout SECS       overall HTTP timeout per attempt (default 30,
                             at most 86400)
        --connect-timeout SECS  connect timeout (default 10, at most 86400)
        --retries N          retries on network errors, timeouts, 5xx and 429
                             (default 2, at most 10)
        --ca-file PEM        trust these CA certificates too (corporate proxy;
                             a regular file of at most 1 MiB)
        --cache FILE         reuse a token stored there while it is still good;
                             only a cache file of ims-token is ever replaced
        --refresh-margin SECS  with --cache: refresh this long before expiry
                             (default 600)
    -h, --help               print this help
    -V, --version            print the version

CREDENTIALS (told apart by their fields; files and stdin up to 1 MiB):
    Adobe Developer Console project (project.workspace.details.credentials):
        its OAuth Server-to-Server credential, with the first of its
        client_secrets; JWT entries are refused (Adobe ended them: migrate)
    AEM service credentials (privateKey): JWT service account
    AEM OAuth Server-to-Server (scopes), as downloaded or from the API
    AEM local development token (accessToken): printed until it expires
        (as it is: no exchange, so no network or cache option applies)
    Without -c or $IMS_CREDENTIALS, the environment: IMS_CLIENT_ID,
        IMS_CLIENT_SECRET, IMS_ORG_ID and IMS_SCOPES (OAuth Server-to-Server);
        for a JWT service account IMS_TECHNICAL_ACCOUNT_ID, IMS_METASCOPES and
        IMS_PRIVATE_KEY (PEM, literal \\n allowed) or IMS_PRIVATE_KEY_FILE
        instead of IMS_SCOPES; IMS_ENDPOINT is optional

exec runs COMMAND in place of ims-token (its exit status, signals and output are
COMMAND's) with IMS_ACCESS_TOKEN, IMS_CLIENT_ID and, when the credentials carry
an org, IMS_ORG_ID set, so that the token never appears in a command line:
    ims-token --format headers -c creds.json | curl -H @- URL
    ims-token exec -c creds.json -- ./sync.py    (which reads $IMS_ACCESS_TOKEN)
Never put the token in an argument ('curl -H \"...$(ims-token)\"'): ps shows it.

The proxy comes from ALL_PROXY, HTTPS_PROXY or HTTP_PROXY (the first set, either
case); hosts in no_proxy or NO_PROXY go direct, read as curl reads them. With
--cache, a token that still works is used (with a warning) when refreshing it
fails other than by IMS's refusal (network, IMS 5xx, TLS, proxy), as the
library's TokenProvider does; a run that finds another refreshing uses it at
once, and runs with no token wait for that refresh and use its outcome.
Every option value is checked before the cache is read. When this host's clock
is more than 30 s off IMS's (its Date header), a warning says so and the JWT
is signed on IMS's time.

EXIT CODES:
    0  success (exec: COMMAND's own exit status instead)
    1  anything else (e.g. a reply that is not what IMS sends)
    2  usage error
    3  credentials, key or configuration problem: fix your config (also a TLS
       certificate that is not trusted, expired, not yet valid or for another
       host, a proxy that refuses its user and password, 407, and an
       expired local development token)
    4  IMS rejected the request (4xx other than 429)
    5  network, timeout, IMS 5xx or 429: retry later
    126, 127  exec: COMMAND cannot be run (not executable, not found)
";

fn main() -> ExitCode {
    // The library logs what an operator must see (a clock off IMS's, say).
    if log::set_logger(&STDERR_LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    match run(std::env::args_os().skip(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.is_quiet() {
                let _ = writeln!(io::stderr().lock(), "ims-token: {}", failure.describe());
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(args: impl Iterator<Item = OsString>) -> Result<(), Failure> {
    let options = parse_args(args)?;
    match options.command {
        Command::Help => print_line(HELP.trim_end()),
        Command::Version => print_line(&format!("ims-token {}", env!("CARGO_PKG_VERSION"))),
        Command::Token | Command::Exec => token_command(&options),
        Command::Jwt => jwt_command(&options),
        Command::Inspect => inspect_command(&options),
    }
}

/// Proptest settings for the rooms' property tests: no files of failures.
#[cfg(test)]
fn proptest_config(cases: u32) -> proptest::prelude::ProptestConfig {
    proptest::prelude::ProptestConfig {
        cases,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    }
}

/// What went wrong, its message on one line and its exit code.
mod failure {
    use super::*;

    #[derive(Debug)]
    pub(crate) enum Failure {
        /// Bad command line: exit 2.
        Usage(String),
        /// A problem the user fixes in the configuration: exit 3.
        Config(String),
        /// A library error, with what was being done.
        Ims(Box<Error>),
        /// The failed refresh of another run, which this one waited for.
        Shared(SharedFailure),
        /// stdout was closed: end quietly.
        ClosedOutput,
        /// stdout failed otherwise.
        Output(io::Error),
        /// `exec` could not start COMMAND: 127 not found, 126 otherwise.
        Exec { program: String, error: io::Error },
    }

    impl Failure {
        pub(crate) fn exit_code(&self) -> u8 {
            match self {
                Failure::Usage(_) => 2,
                Failure::Config(_) => 3,
                Failure::Ims(e) => ims_exit_code(e),
                // Only failures worth retrying are shared.
                Failure::Shared(_) => 5,
                Failure::ClosedOutput => 0,
                Failure::Output(_) => 1,
                // As a shell does.
                Failure::Exec { error, .. } if error.kind() == io::ErrorKind::NotFound => 127,
                Failure::Exec { .. } => 126,
            }
        }

        pub(crate) fn is_quiet(&self) -> bool {
            matches!(self, Failure::ClosedOutput)
        }

        /// The message with its cause chain on one line.
        pub(crate) fn describe(&self) -> String {
            match self {
                Failure::Usage(m) => format!("{m} (see 'ims-token --help')"),
                Failure::Config(m) => m.clone(),
                Failure::Ims(e) => chain(e),
                Failure::Shared(f) => f.message.clone(),
                Failure::ClosedOutput => String::new(),
                Failure::Output(e) => format!("cannot write the output: {e}"),
                Failure::Exec { program, error } if error.kind() == io::ErrorKind::NotFound => {
                    format!("cannot run '{program}': command not found")
                }
                Failure::Exec { program, error } => format!("cannot run '{program}': {error}"),
            }
        }
    }

    pub(crate) fn ims_exit_code(e: &Error) -> u8 {
        match e {
            // A certificate problem is fixed in the configuration (CA file,
            // endpoint, clock): retrying will not help.
            _ if e.is_config() => 3,
            Error::Tls { .. } => 3,
            Error::Rejected(_) => 4,
            Error::Unavailable(_) | Error::Transport { .. } | Error::Timeout { .. } => 5,
            _ => 1,
        }
    }

    pub(crate) fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    impl From<Error> for Failure {
        fn from(e: Error) -> Self {
            Failure::Ims(Box::new(e))
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage(message.into())
    }
}

/// The command line: parsed and checked in full before anything runs.
mod args {
    use super::*;

    /// Most retries a command line may ask for: each can take a full timeout.
    pub(crate) const MAX_RETRIES: u32 = 10;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Command {
        Token,
        Exec,
        Jwt,
        Inspect,
        Help,
        Version,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Format {
        Token,
        Header,
        Headers,
        Json,
    }

    #[derive(Debug)]
    pub(crate) struct Options {
        pub(crate) command: Command,
        pub(crate) credentials: Option<String>,
        pub(crate) credential: Option<String>,
        pub(crate) ims: Option<String>,
        pub(crate) format: Format,
        pub(crate) lifetime: Option<u64>,
        pub(crate) scope: Option<String>,
        pub(crate) timeout: Option<u64>,
        pub(crate) connect_timeout: Option<u64>,
        pub(crate) retries: Option<u32>,
        pub(crate) ca_file: Option<PathBuf>,
        pub(crate) cache: Option<PathBuf>,
        pub(crate) refresh_margin: u64,
        /// `exec`: COMMAND and its arguments, as given.
        pub(crate) exec: Vec<OsString>,
    }

    pub(crate) fn parse_args(args: impl Iterator<Item = OsString>) -> Result<Options, Failure> {
        let mut options = Options {
            command: Command::Token,
            credentials: None,
            credential: None,
            ims: None,
            format: Format::Token,
            lifetime: None,
            scope: None,
            timeout: None,
            connect_timeout: None,
            retries: None,
            ca_file: None,
            cache: None,
            refresh_margin: ims_token::DEFAULT_REFRESH_MARGIN.as_secs(),
            exec: Vec::new(),
        };
        let mut command_seen = false;
        let mut exec = false;
        let utf8 = |a: OsString| {
            a.into_string()
                .map_err(|_| usage("arguments must be UTF-8"))
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if exec && arg == "--" {
                // COMMAND and its arguments go through untouched, UTF-8 or not.
                options.exec = args.collect();
                break;
            }
            let arg = utf8(arg)?;
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<String, Failure> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => args
                        .next()
                        .map(utf8)
                        .unwrap_or_else(|| Err(usage(format!("{name} needs a value")))),
                }
            };
            match flag.as_str() {
                "-h" | "--help" => options.command = Command::Help,
                "-V" | "--version" => options.command = Command::Version,
                "-c" | "--credentials" => {
                    options.credentials = Some(non_empty(&flag, value(&flag)?)?)
                }
                "--credential" => options.credential = Some(value(&flag)?),
                "--ims" => options.ims = Some(value(&flag)?),
                "--format" => options.format = parse_format(&value(&flag)?)?,
                "--lifetime" => options.lifetime = Some(seconds(&flag, &value(&flag)?)?),
                "--scope" => options.scope = Some(value(&flag)?),
                "--timeout" => options.timeout = Some(seconds(&flag, &value(&flag)?)?),
                "--connect-timeout" => {
                    options.connect_timeout = Some(seconds(&flag, &value(&flag)?)?)
                }
                "--retries" => options.retries = Some(retries(&flag, &value(&flag)?)?),
                "--ca-file" => options.ca_file = Some(non_empty(&flag, value(&flag)?)?.into()),
                "--cache" => options.cache = Some(non_empty(&flag, value(&flag)?)?.into()),
                "--refresh-margin" => options.refresh_margin = number(&flag, &value(&flag)?)?,
                "token" | "exec" | "jwt" | "inspect" | "help" if !command_seen => {
                    command_seen = true;
                    exec = flag == "exec";
                    if options.command != Command::Help && options.command != Command::Version {
                        options.command = match flag.as_str() {
                            "token" => Command::Token,
                            "exec" => Command::Exec,
                            "jwt" => Command::Jwt,
                            "inspect" => Command::Inspect,
                            _ => Command::Help,
                        };
                    }
                }
                _ if exec => {
                    return Err(usage(format!(
                        "unexpected '{flag}': give the command after '--' \
                         (ims-token exec [OPTIONS] -- COMMAND [ARGS...])"
                    )))
                }
                _ if flag.starts_with('-') && flag != "-" => {
                    return Err(usage(format!("unknown option '{flag}'")))
                }
                _ => return Err(usage(format!("unexpected argument '{flag}'"))),
            }
        }
        check_exec(&options)?;
        Ok(options)
    }

    /// `exec` needs a COMMAND, and prints nothing for `--format` to shape.
    pub(crate) fn check_exec(options: &Options) -> Result<(), Failure> {
        if options.command != Command::Exec {
            return Ok(());
        }
        if options.exec.is_empty() {
            return Err(usage(
                "exec needs a command after '--' (ims-token exec [OPTIONS] -- COMMAND [ARGS...])",
            ));
        }
        if options.format != Format::Token {
            return Err(usage(
                "--format does not apply to exec, which prints nothing",
            ));
        }
        Ok(())
    }

    /// A value that must not be empty, such as a file name.
    pub(crate) fn non_empty(flag: &str, value: String) -> Result<String, Failure> {
        if value.is_empty() {
            return Err(usage(format!("{flag} needs a non-empty value")));
        }
        Ok(value)
    }

    pub(crate) fn retries(flag: &str, text: &str) -> Result<u32, Failure> {
        match number(flag, text)? {
            n @ 0..=MAX_RETRIES => Ok(n),
            _ => Err(usage(format!("{flag} must be between 0 and {MAX_RETRIES}"))),
        }
    }

    pub(crate) fn parse_format(text: &str) -> Result<Format, Failure> {
        match text {
            "token" => Ok(Format::Token),
            "header" => Ok(Format::Header),
            "headers" => Ok(Format::Headers),
            "json" => Ok(Format::Json),
            _ => Err(usage(format!(
                "--format must be token, header, headers or json, not '{text}'"
            ))),
        }
    }

    /// A timeout in whole seconds; zero would fail every call at once, and a
    /// huge one would overflow the deadline arithmetic.
    pub(crate) fn seconds(flag: &str, text: &str) -> Result<u64, Failure> {
        match number(flag, text)? {
            secs @ 1..=86_400 => Ok(secs),
            _ => Err(usage(format!("{flag} must be between 1 and 86400 seconds"))),
        }
    }

    pub(crate) fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, Failure> {
        text.trim()
            .parse()
            .map_err(|_| usage(format!("{flag} needs a whole number, not '{text}'")))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn args_parse_exec_and_its_command_untouched() {
            use std::os::unix::ffi::OsStringExt as _;
            let raw = OsString::from_vec(vec![b'a', 0xff]);
            let args = [
                OsString::from("exec"),
                OsString::from("-c"),
                OsString::from("x.json"),
                OsString::from("--"),
                OsString::from("curl"),
                OsString::from("--"),
                OsString::from("-c"),
                raw.clone(),
            ];
            let o = parse_args(args.into_iter()).unwrap();
            assert_eq!(o.command, Command::Exec);
            assert_eq!(o.credentials.as_deref(), Some("x.json"));
            let expected: Vec<OsString> = vec!["curl".into(), "--".into(), "-c".into(), raw];
            assert_eq!(o.exec, expected);
            for bad in [
                &["exec"][..],
                &["exec", "--"],
                &["exec", "curl"],
                &["exec", "--format", "json", "--", "true"],
                &["--", "true"],
            ] {
                let r = parse_args(bad.iter().map(OsString::from));
                assert!(matches!(r, Err(Failure::Usage(_))), "{bad:?}: {r:?}");
            }
        }

        #[test]
        fn args_parse_commands_and_values() {
            let args = ["jwt", "-c", "x.json", "--lifetime=60", "--format", "json"];
            let o = parse_args(args.iter().map(OsString::from)).unwrap();
            assert_eq!(o.command, Command::Jwt);
            assert_eq!(o.credentials.as_deref(), Some("x.json"));
            assert_eq!(o.lifetime, Some(60));
            assert_eq!(o.format, Format::Json);
            let bad = parse_args(["--lifetime", "soon"].iter().map(OsString::from));
            assert!(matches!(bad, Err(Failure::Usage(_))));
            let missing = parse_args(["-c"].iter().map(OsString::from));
            assert!(matches!(missing, Err(Failure::Usage(_))));
        }

        /// Property tests of the command line: no panic, and a usage error
        /// (exit 2) for whatever is not a valid command line.
        mod properties {
            use super::*;
            use proptest::prelude::*;
            use std::os::unix::ffi::OsStringExt as _;

            const FLAGS: [&str; 16] = [
                "-h",
                "--help",
                "-V",
                "--version",
                "-c",
                "--credentials",
                "--ims",
                "--format",
                "--lifetime",
                "--scope",
                "--timeout",
                "--connect-timeout",
                "--retries",
                "--ca-file",
                "--cache",
                "--refresh-margin",
            ];

            const WORDS: [&str; 24] = [
                "exec",
                "headers",
                "11",
                "100000",
                "token",
                "jwt",
                "inspect",
                "help",
                "-",
                "--",
                "---",
                "=",
                "--=",
                "json",
                "header",
                "60",
                "0",
                "-1",
                " 5 ",
                "18446744073709551616",
                "4294967296",
                "",
                "--ims=",
                "-c=x",
            ];

            fn arg() -> impl Strategy<Value = OsString> {
                prop_oneof![
                    4 => prop::sample::select(&FLAGS[..]).prop_map(OsString::from),
                    3 => prop::sample::select(&WORDS[..]).prop_map(OsString::from),
                    2 => (prop::sample::select(&FLAGS[..]), any::<String>())
                        .prop_map(|(f, v)| OsString::from(format!("{f}={v}"))),
                    1 => any::<String>().prop_map(OsString::from),
                    1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(OsString::from_vec),
                ]
            }

            proptest! {
                #![proptest_config(crate::proptest_config(512))]

                /// Any argument vector: options, or a usage error (exit 2).
                #[test]
                fn parse_args_never_panics(args in prop::collection::vec(arg(), 0..10)) {
                    let non_utf8 = args.iter().any(|a| a.to_str().is_none());
                    match parse_args(args.clone().into_iter()) {
                        Ok(options) => {
                            // Every argument was read, so all were UTF-8.
                            prop_assert!(!non_utf8, "{args:?}");
                            prop_assert!(options.timeout != Some(0) && options.connect_timeout != Some(0));
                            prop_assert!(options.lifetime.is_none_or(|l| (1..=86_400).contains(&l)));
                            prop_assert!(options.retries.is_none_or(|n| n <= MAX_RETRIES));
                            prop_assert!(options.cache.as_ref().is_none_or(|c| !c.as_os_str().is_empty()));
                            prop_assert!(options.command != Command::Exec || !options.exec.is_empty());
                        }
                        Err(failure) => {
                            prop_assert!(matches!(failure, Failure::Usage(_)), "{failure:?}");
                            prop_assert_eq!(failure.exit_code(), 2);
                            prop_assert!(failure.describe().contains("ims-token --help"));
                        }
                    }
                }
            }
        }
    }
}

/// The commands: token (and exec), jwt and inspect, and what they print.
mod commands {
    use super::*;

    pub(crate) fn token_command(options: &Options) -> Result<(), Failure> {
        let (credentials, _) = load(options)?;
        // Every token the library hands out is visible ASCII: from IMS, a
        // local development token or the cache (`AccessToken::try_new`).
        let token = match &credentials {
            // Already a token: no client, no cache.
            Credentials::LocalToken(local) => local.access_token(SystemTime::now())?,
            _ => {
                // Built before the cache is looked at, so that a broken CA
                // file or proxy setting is not hidden by a day of cache
                // hits (ureq builds the root store only on a connection).
                let client = client(options)?;
                match &options.cache {
                    Some(path) => {
                        let cache = Cache::new(path, &credentials);
                        let margin = Duration::from_secs(options.refresh_margin);
                        let rule = ims_token::RefreshRule::exact(margin);
                        cache.get_or_fetch(&rule, &client, &credentials)?
                    }
                    None => client.fetch(&credentials)?,
                }
            }
        };
        match options.command {
            // The library checks the ids that go into headers or the
            // environment: a CR/LF would add one of its own.
            Command::Exec => Err(exec(&options.exec, &ApiHeaders::new(&token, &credentials)?)),
            _ => print_line(&render(
                &token,
                &credentials,
                options.format,
                SystemTime::now(),
            )?),
        }
    }

    /// The credentials variables that `exec` keeps from COMMAND.
    const EXEC_HIDDEN: [&str; 3] = [
        "IMS_CLIENT_SECRET",
        "IMS_PRIVATE_KEY",
        "IMS_PRIVATE_KEY_FILE",
    ];

    /// Replaces this process with COMMAND, the token and ids of `headers` in
    /// its environment (never in its arguments, which every user of the host
    /// can read). Returns only when COMMAND cannot be started.
    pub(crate) fn exec(command: &[OsString], headers: &ApiHeaders) -> Failure {
        use std::os::unix::process::CommandExt as _;
        let Some((program, args)) = command.split_first() else {
            // `check_exec` makes sure there is a COMMAND.
            return usage("exec needs a command after '--'");
        };
        let mut child = std::process::Command::new(program);
        child
            .args(args)
            .env("IMS_ACCESS_TOKEN", headers.token().secret());
        // COMMAND gets the token, not what makes tokens.
        for name in EXEC_HIDDEN {
            child.env_remove(name);
        }
        // Only the ids of these credentials: none left over from elsewhere.
        for (name, value) in [
            ("IMS_CLIENT_ID", headers.api_key()),
            ("IMS_ORG_ID", headers.org_id()),
        ] {
            match value {
                Some(value) => child.env(name, value),
                None => child.env_remove(name),
            };
        }
        let error = child.exec();
        Failure::Exec {
            program: program.to_string_lossy().into_owned(),
            error,
        }
    }

    pub(crate) fn jwt_command(options: &Options) -> Result<(), Failure> {
        let account = match load(options)?.0 {
            Credentials::ServiceAccount(account) => account,
            _ => {
                return Err(Failure::Config(
                    "these credentials are not a JWT service account: there is no JWT to sign"
                        .into(),
                ))
            }
        };
        let lifetime = options
            .lifetime
            .map_or(ims_token::DEFAULT_JWT_LIFETIME, Duration::from_secs);
        let jwt = ims_token::sign_jwt(&account, SystemTime::now(), lifetime)?;
        print_line(jwt.secret())
    }

    pub(crate) fn inspect_command(options: &Options) -> Result<(), Failure> {
        let now = SystemTime::now();
        let (credentials, source) = load(options)?;
        let mut lines = match &credentials {
            Credentials::ServiceAccount(a) => describe_account(a, now),
            Credentials::OAuth(o) => describe_oauth(o),
            Credentials::LocalToken(t) => vec![
                ("kind", "local development access token".to_owned()),
                (
                    "expires",
                    t.expires_at()
                        .map_or_else(|| "unknown".to_owned(), |e| expiry_text(e, now)),
                ),
            ],
            _ => vec![("kind", "unknown".to_owned())],
        };
        lines.insert(1, ("source", source.to_string()));
        let text: Vec<String> = lines.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        print_line(&text.join("\n"))
    }

    pub(crate) fn describe_account(
        a: &ServiceAccount,
        now: SystemTime,
    ) -> Vec<(&'static str, String)> {
        let certificate = match a.certificate_expiry() {
            Some(expiry) => expiry_text(expiry, now),
            None => "unknown (no publicKey or certificateExpirationDate)".to_owned(),
        };
        vec![
            ("kind", "JWT service account".to_owned()),
            ("ims", a.ims().host().to_owned()),
            ("org", a.org_id().to_owned()),
            ("technical account", a.technical_account_id().to_owned()),
            ("client id", a.client_id().to_owned()),
            ("metascopes", a.metascopes().join(",")),
            ("key", format!("RSA {} bits", a.private_key().bits())),
            ("certificate expires", certificate),
        ]
    }

    pub(crate) fn describe_oauth(o: &OAuthCredentials) -> Vec<(&'static str, String)> {
        let mut lines = vec![(
            "kind",
            "OAuth Server-to-Server (client credentials)".to_owned(),
        )];
        if let Some(p) = o.project() {
            lines.push(("project", p.name().to_owned()));
            lines.push(("workspace", p.workspace().to_owned()));
            lines.push((
                "credential",
                format!("{} (id {})", p.credential(), p.credential_id()),
            ));
        }
        lines.push(("ims", o.ims().host().to_owned()));
        if let Some(org) = o.org_id() {
            lines.push(("org", org.to_owned()));
        }
        if let Some(account) = o.technical_account_id() {
            lines.push(("technical account", account.to_owned()));
        }
        lines.push(("client id", o.client_id().to_owned()));
        lines.push(("scopes", o.scopes().join(",")));
        lines
    }

    pub(crate) fn expiry_text(expiry: SystemTime, now: SystemTime) -> String {
        match expiry.duration_since(now) {
            Ok(left) => format!(
                "{} ({} days left)",
                rfc3339(expiry),
                left.as_secs() / 86_400
            ),
            Err(_) => format!("{} (expired)", rfc3339(expiry)),
        }
    }

    pub(crate) fn render(
        token: &AccessToken,
        credentials: &Credentials,
        format: Format,
        now: SystemTime,
    ) -> Result<String, Failure> {
        Ok(match format {
            Format::Token => token.secret().to_owned(),
            Format::Header => format!("Authorization: Bearer {}", token.secret()),
            // The library's headers, one a line, as `curl -H @-` reads them.
            Format::Headers => {
                let headers = ApiHeaders::new(token, credentials)?;
                let lines: Vec<String> = headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
                lines.join("\n")
            }
            Format::Json => serde_json::json!({
                "access_token": token.secret(),
                "token_type": token.token_type(),
                "expires_in": token.expires_in(now).as_secs(),
                "expires_at": rfc3339(token.expires_at()),
            })
            .to_string(),
        })
    }

    pub(crate) fn print_line(text: &str) -> Result<(), Failure> {
        let mut out = io::stdout().lock();
        writeln!(out, "{text}")
            .and_then(|()| out.flush())
            .map_err(|e| {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    Failure::ClosedOutput
                } else {
                    Failure::Output(e)
                }
            })
    }

    pub(crate) fn client(options: &Options) -> Result<Client, Failure> {
        let mut builder = Client::builder();
        if let Some(secs) = options.lifetime {
            builder = builder.jwt_lifetime(Duration::from_secs(secs));
        }
        if let Some(secs) = options.timeout {
            builder = builder.timeout(Duration::from_secs(secs));
        }
        if let Some(secs) = options.connect_timeout {
            builder = builder.connect_timeout(Duration::from_secs(secs));
        }
        if let Some(n) = options.retries {
            builder = builder.retries(n);
        }
        if let Some(path) = &options.ca_file {
            builder = builder.ca_file(path);
        }
        Ok(builder.build()?)
    }
}

/// Where the credentials come from, and the warnings about them.
mod credentials {
    use super::*;

    /// How long before the certificate's expiry every command warns.
    const CERT_WARNING_DAYS: u64 = 30;

    /// Where the credentials come from.
    pub(crate) enum Source {
        File(String),
        Stdin,
        Environment,
    }

    impl std::fmt::Display for Source {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Source::File(path) => f.write_str(path),
                Source::Stdin => f.write_str("stdin"),
                Source::Environment => f.write_str("the environment (IMS_* variables)"),
            }
        }
    }

    /// The credentials, with --ims and --scope applied, and where they came from.
    pub(crate) fn load(options: &Options) -> Result<(Credentials, Source), Failure> {
        let source = source(options);
        let mut credentials = read_credentials(&source, options.credential.as_deref())?;
        if let Some(ims) = &options.ims {
            credentials = credentials.with_ims(ims)?;
        }
        if let Some(scope) = &options.scope {
            credentials = credentials.with_scopes(scope)?;
        }
        if let Credentials::ServiceAccount(account) = &credentials {
            warn_about_certificate(account, SystemTime::now());
        }
        Ok((credentials, source))
    }

    /// -c, else $IMS_CREDENTIALS, else the environment.
    pub(crate) fn source(options: &Options) -> Source {
        let path = options.credentials.clone().or_else(|| {
            std::env::var("IMS_CREDENTIALS")
                .ok()
                .filter(|p| !p.is_empty())
        });
        match path {
            Some(p) if p == "-" => Source::Stdin,
            Some(p) => Source::File(p),
            None => Source::Environment,
        }
    }

    /// One library call per source.
    pub(crate) fn read_credentials(
        source: &Source,
        credential: Option<&str>,
    ) -> Result<Credentials, Failure> {
        match source {
            Source::File(path) => Ok(Credentials::from_file_selecting(path, credential)?),
            Source::Stdin => Credentials::from_reader_selecting(io::stdin().lock(), credential)
                .map_err(|e| Failure::Config(format!("stdin: {}", chain(&e)))),
            Source::Environment if credential.is_some() => Err(usage(
                "--credential chooses a credential of a Developer Console project: give the project file with -c",
            )),
            Source::Environment => Credentials::from_env()?.ok_or_else(|| {
                usage(
                    "no credentials: give -c FILE (or '-' for stdin), set IMS_CREDENTIALS, \
                     or set IMS_CLIENT_ID and the other IMS_* variables",
                )
            }),
        }
    }

    pub(crate) fn warn_about_certificate(account: &ServiceAccount, now: SystemTime) {
        let Some(expiry) = account.certificate_expiry() else {
            return;
        };
        let message = match expiry.duration_since(now) {
            Err(_) => format!(
                "the integration's certificate expired at {}: IMS will refuse the JWT; \
                 create a new certificate in the AEM Developer Console",
                rfc3339(expiry)
            ),
            Ok(left) if left.as_secs() < CERT_WARNING_DAYS * 86_400 => format!(
                "the integration's certificate expires at {} ({} days left): renew it in the AEM Developer Console",
                rfc3339(expiry),
                left.as_secs() / 86_400
            ),
            Ok(_) => return,
        };
        warn(&message);
    }
}

/// stderr: warnings, the library's log lines, and times as people read them.
mod output {
    use super::*;

    /// Prints the library's warnings as the command's own.
    pub(crate) struct StderrLogger;

    pub(crate) static STDERR_LOGGER: StderrLogger = StderrLogger;

    impl log::Log for StderrLogger {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            // Only the library's own lines, which never hold a secret; other
            // crates' warnings (rustls alerts, say) are not the user's business.
            metadata.level() <= log::Level::Warn && metadata.target().starts_with("ims_token")
        }

        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                warn(&record.args().to_string());
            }
        }

        fn flush(&self) {}
    }

    pub(crate) fn warn(message: &str) {
        let _ = writeln!(io::stderr().lock(), "ims-token: warning: {message}");
    }

    /// `2027-05-21T14:16:46Z` (days to civil from Howard Hinnant's algorithm).
    pub(crate) fn rfc3339(t: SystemTime) -> String {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn rfc3339_formats_known_instants() {
            assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
            let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
            let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
            assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
        }
    }
}

/// The cache file: a token kept between runs, safe in shared directories.
mod cache {
    use std::fs::{File, OpenOptions};
    use std::io::{self, Read as _, Write as _};
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    use std::path::{Path, PathBuf};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use ims_token::{
        fallback_warning, AccessToken, Client, Credentials, Error, Held, Outcome, RefreshRule, Step,
    };
    use serde_json::Value;
    use sha2::Digest as _;
    use zeroize::Zeroize as _;

    use crate::failure::{chain, Failure};
    use crate::output::warn;

    /// Largest cache file read.
    const MAX_INPUT_BYTES: u64 = 1024 * 1024;

    /// A token kept in a file between runs, for the credentials it was made for.
    pub(crate) struct Cache {
        path: PathBuf,
        key: String,
    }

    impl Cache {
        pub(crate) fn new(path: &Path, credentials: &Credentials) -> Self {
            Cache {
                path: path.to_owned(),
                key: credentials_key(credentials),
            }
        }

        /// The cached token while the refresh rule says to use it; otherwise
        /// one exchange under a lock, so that concurrent runs use its outcome.
        /// A run that finds the lock taken while the cached token still works
        /// uses that token at once; only a run with no unexpired token waits.
        /// The library's [`RefreshRule`] decides, as for `TokenProvider`.
        pub(crate) fn get_or_fetch(
            &self,
            rule: &RefreshRule,
            client: &Client,
            credentials: &Credentials,
        ) -> Result<AccessToken, Failure> {
            let before = self.read(true);
            if let Some(token) = use_cached(rule, before.as_ref(), SystemTime::now(), false) {
                return Ok(token);
            }
            let lock = match self.open_lock() {
                Some(file) if file.try_lock().is_ok() => Some(file),
                Some(file) => {
                    // Another run holds the lock: it is refreshing.
                    if let Some(token) = use_cached(rule, before.as_ref(), SystemTime::now(), true)
                    {
                        return Ok(token);
                    }
                    let wait = client.max_fetch_time(credentials) + LOCK_SLACK;
                    try_lock_until(&file, std::time::Instant::now() + wait)
                        .map(|()| file)
                        .map_err(|e| warn(&format!("cannot lock the cache: {e}")))
                        .ok()
                }
                None => None,
            };
            // Another run may have refreshed, or failed, while this one waited.
            let after = self.read(false);
            if let Some(token) = use_cached(rule, after.as_ref(), SystemTime::now(), false) {
                return Ok(token);
            }
            if let Some(failure) = shared_failure(before.as_ref(), after.as_ref()) {
                return Err(Failure::Shared(failure));
            }
            let result = client.fetch(credentials);
            let now = SystemTime::now();
            let (entry, outcome) = entry_after_fetch(rule, after, result, now);
            if let Err(e) = self.write(&entry) {
                warn(&format!(
                    "cannot write the cache {}: {e}",
                    self.path.display()
                ));
            }
            drop(lock);
            match outcome {
                Outcome::New(token) => Ok(token),
                Outcome::Kept(old, e) => {
                    warn(&fallback_warning(
                        &old,
                        entry.held.retry_at,
                        now,
                        &chain(&e),
                    ));
                    Ok(old)
                }
                Outcome::Failed(e) => Err(e.into()),
            }
        }

        /// The entry cached for these credentials. Anything unreadable or
        /// foreign is a miss, never an error; `report` says whether to warn
        /// about a cache file of ours that is not private. A file that is not a
        /// cache of ims-token is left to `write` to name.
        fn read(&self, report: bool) -> Option<Entry> {
            let file = open_private(&self.path, OpenOptions::new().read(true)).ok()?;
            if !file.metadata().is_ok_and(|m| m.is_file()) {
                return None;
            }
            let mut text = String::new();
            let read = (&file).take(MAX_INPUT_BYTES).read_to_string(&mut text);
            let ours = read.is_ok() && text.starts_with(CACHE_MARKER);
            let entry = if !ours {
                None
            } else if !is_private_file(&file) {
                if report {
                    warn(&format!(
                        "ignoring the cache {}: not a file of yours with mode 0600",
                        self.path.display()
                    ));
                }
                None
            } else {
                parse_cache(&text, &self.key)
            };
            text.zeroize();
            entry
        }

        /// Writes a temp file in the same directory (0600 from the start) and
        /// renames it over the cache, so no reader sees half a file. Only a
        /// missing or empty file, or a cache of ims-token, is replaced; anything
        /// else at the path is left as it is (an error says what it is).
        fn write(&self, entry: &Entry) -> io::Result<()> {
            if let Existing::Foreign(what) = existing(&self.path) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{what}; it is left as it is and the run goes on without the cache"),
                ));
            }
            self.remove_stale_temp_files();
            let temp = self.sibling(&format!("{TEMP_INFIX}{}", std::process::id()));
            let result = open_private(&temp, OpenOptions::new().write(true).create_new(true))
                .and_then(|mut f| {
                    f.write_all(cache_text(entry, &self.key).as_bytes())?;
                    f.sync_all()
                })
                .and_then(|()| std::fs::rename(&temp, &self.path));
            if result.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            result
        }

        /// Removes temp files a killed run left next to the cache (they hold a
        /// token): ours by name, owner and content, and not being written now
        /// (this process's own, or older than [`STALE_TEMP_AGE`]).
        fn remove_stale_temp_files(&self) {
            let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
                return;
            };
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            let mut prefix = name.to_owned();
            prefix.push(TEMP_INFIX);
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            let own_pid = std::process::id().to_string();
            for entry in entries.flatten() {
                let file_name = entry.file_name();
                let Some(pid) = file_name
                    .as_encoded_bytes()
                    .strip_prefix(prefix.as_encoded_bytes())
                    .filter(|pid| !pid.is_empty() && pid.iter().all(u8::is_ascii_digit))
                else {
                    continue;
                };
                let path = entry.path();
                let Existing::Replaceable(Some(metadata)) = existing(&path) else {
                    continue;
                };
                let stale = pid == own_pid.as_bytes()
                    || metadata
                        .modified()
                        .ok()
                        .and_then(|at| at.elapsed().ok())
                        .is_some_and(|age| age > STALE_TEMP_AGE);
                if stale && metadata.uid() == effective_uid() {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }

        /// Opens the refresh lock file (a stopped process or a planted lock file
        /// must not hang every cron run: callers wait on it for a bounded time).
        /// Without it the run goes on alone, after a warning. When the cache
        /// path holds something that is not a cache of ims-token, there is
        /// nothing to lock for (`write` will leave it alone and say so).
        fn open_lock(&self) -> Option<File> {
            if matches!(existing(&self.path), Existing::Foreign(_)) {
                return None;
            }
            let path = self.sibling(".lock");
            open_private(
                &path,
                OpenOptions::new().read(true).write(true).create(true),
            )
            .and_then(|file| check_lock_file(&path, file))
            .map_err(|e| warn(&format!("cannot lock the cache: {e}")))
            .ok()
        }

        fn sibling(&self, suffix: &str) -> PathBuf {
            let mut name = self.path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        }
    }

    /// Polls for an exclusive lock until `deadline`.
    /// Polls until `deadline`, on the monotonic clock: a wall clock stepped
    /// back (NTP fixing a host's time) must not stretch the wait.
    fn try_lock_until(file: &File, deadline: std::time::Instant) -> io::Result<()> {
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(()),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "another run held it too long; going on without it",
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    /// A run waits for another's refresh as long as one fetch can take
    /// ([`Client::max_fetch_time`]) and this much more.
    const LOCK_SLACK: Duration = Duration::from_secs(5);

    /// What the cache file holds: the token as the refresh rule sees it and,
    /// after a refresh that failed in a way worth retrying, what the failure
    /// was.
    #[derive(Debug, Default)]
    struct Entry {
        held: Held,
        failure: Option<SharedFailure>,
        /// Counts the writes, so that a run can tell a failure written while it
        /// waited on the lock from an older one without comparing clocks.
        round: u64,
    }

    /// A failed refresh worth retrying (exit 5), for the runs that waited on
    /// the lock while it ran.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct SharedFailure {
        pub(crate) message: String,
    }

    /// The cached token, if the refresh rule says to hand it out now;
    /// `refreshing`: another run holds the lock. A token handed out after a
    /// failed refresh comes with the warning the library words.
    fn use_cached(
        rule: &RefreshRule,
        entry: Option<&Entry>,
        now: SystemTime,
        refreshing: bool,
    ) -> Option<AccessToken> {
        let entry = entry?;
        if rule.step(&entry.held, now, refreshing) != Step::UseCached {
            return None;
        }
        let token = entry.held.token.as_ref()?;
        let due = now >= rule.refresh_at(token);
        if due && entry.held.retry_at.is_some() {
            let cause = entry.failure.as_ref().map_or("", |f| f.message.as_str());
            warn(&fallback_warning(token, entry.held.retry_at, now, &cause));
        }
        Some(token.clone())
    }

    /// The entry to write after a fetch, and what the run gets: the refresh
    /// rule records the result (a new token; the old one kept for a pause; or
    /// none), and a failure worth retrying is kept for the runs that waited.
    fn entry_after_fetch(
        rule: &RefreshRule,
        old: Option<Entry>,
        result: Result<AccessToken, Error>,
        now: SystemTime,
    ) -> (Entry, Outcome) {
        let mut entry = old.unwrap_or_default();
        entry.round = entry.round.wrapping_add(1);
        entry.failure = result
            .as_ref()
            .err()
            .filter(|e| e.is_retryable())
            .map(|e| SharedFailure { message: chain(e) });
        let outcome = rule.record(&mut entry.held, result, now);
        (entry, outcome)
    }

    /// The failure that another run wrote while this one waited on the lock:
    /// one in the entry read after the lock that was not there before it.
    fn shared_failure(before: Option<&Entry>, after: Option<&Entry>) -> Option<SharedFailure> {
        let after = after?;
        let written_since = before.is_none_or(|b| b.round != after.round);
        after.failure.clone().filter(|_| written_since)
    }

    /// The first bytes of every cache file ims-token writes: how a file is
    /// known to be ours, and so safe to replace, even when it was cut short.
    const CACHE_MARKER: &str = "{\"ims_token_cache\":1,";

    /// Between the cache's name and the writing process's id in a temp file.
    const TEMP_INFIX: &str = ".tmp.";

    /// A temp file this old is not being written any more: a write takes
    /// milliseconds.
    const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

    /// Opens without following a symlink and without blocking (on a FIFO or a
    /// device), creating with mode 0600. Callers check what they opened with
    /// `fstat`.
    fn open_private(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
        options
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
    }

    fn is_private_file(file: &File) -> bool {
        file.metadata()
            .is_ok_and(|m| m.is_file() && m.uid() == effective_uid() && m.mode() & 0o077 == 0)
    }

    /// What is at a cache path, judged on the opened file.
    enum Existing {
        /// Nothing, an empty file or a cache of ims-token (its metadata when
        /// there is a file): free to replace.
        Replaceable(Option<std::fs::Metadata>),
        /// Anything else, in words: left as it is.
        Foreign(String),
    }

    fn existing(path: &Path) -> Existing {
        let file = match open_private(path, OpenOptions::new().read(true)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Existing::Replaceable(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Existing::Foreign(format!("it is a symbolic link, {NOT_OURS}"))
            }
            Err(e) => return Existing::Foreign(format!("it cannot be opened to check it ({e})")),
        };
        let metadata = match file.metadata() {
            Ok(m) => m,
            Err(e) => return Existing::Foreign(format!("it cannot be examined ({e})")),
        };
        if let Some(kind) = special_file(&metadata) {
            return Existing::Foreign(format!("it is {kind}, {NOT_OURS}"));
        }
        let mut head = zeroize::Zeroizing::new(Vec::new());
        let read = file.take(LEGACY_MAX_BYTES).read_to_end(&mut head);
        let start = head.get(..CACHE_MARKER.len()).unwrap_or(&head);
        // Empty, the marker, or the start of it (a file cut short), or a
        // cache of an earlier ims-token.
        if read.is_ok() && (CACHE_MARKER.as_bytes().starts_with(start) || is_legacy_cache(&head)) {
            Existing::Replaceable(Some(metadata))
        } else {
            Existing::Foreign(format!("it is another file, {NOT_OURS}"))
        }
    }

    /// Longest cache file of an earlier ims-token looked at.
    const LEGACY_MAX_BYTES: u64 = 64 * 1024;

    /// A cache written by ims-token before the marker: one JSON object with
    /// exactly the fields of format version 1 and a key of 64 hex digits.
    fn is_legacy_cache(text: &[u8]) -> bool {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(text) else {
            return false;
        };
        const FIELDS: [&str; 6] = [
            "access_token",
            "expires_at",
            "key",
            "received_at",
            "token_type",
            "version",
        ];
        let key_ok = fields
            .get("key")
            .and_then(Value::as_str)
            .is_some_and(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()));
        fields.len() == FIELDS.len()
            && FIELDS.iter().all(|f| fields.contains_key(*f))
            && fields.get("version").and_then(Value::as_u64) == Some(1)
            && key_ok
    }

    const NOT_OURS: &str = "not a cache file of ims-token";

    /// What a file that is not a regular file is, in words.
    fn special_file(metadata: &std::fs::Metadata) -> Option<&'static str> {
        use std::os::unix::fs::FileTypeExt as _;
        let kind = metadata.file_type();
        if kind.is_file() {
            None
        } else if kind.is_dir() {
            Some("a directory")
        } else if kind.is_fifo() {
            Some("a FIFO")
        } else if kind.is_char_device() || kind.is_block_device() {
            Some("a device")
        } else {
            Some("a special file")
        }
    }

    /// The lock file must be a regular file of ours: a FIFO, a device or
    /// another user's file held open is not waited on.
    fn check_lock_file(path: &Path, file: File) -> io::Result<File> {
        let metadata = file.metadata()?;
        let problem = match special_file(&metadata) {
            Some(kind) => Some(kind),
            None if metadata.uid() != effective_uid() => Some("another user's file"),
            None => None,
        };
        match problem {
            Some(what) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is {what}; going on without the lock", path.display()),
            )),
            None => Ok(file),
        }
    }

    /// The process's effective uid (the one that owns what it creates), read
    /// without `unsafe` and without `/proc`: the owner of a pipe it has just
    /// made. Unknown means no file passes as ours.
    fn effective_uid() -> u32 {
        static UID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        *UID.get_or_init(|| {
            io::pipe()
                .and_then(|(reader, _writer)| {
                    File::from(std::os::fd::OwnedFd::from(reader)).metadata()
                })
                .map_or(u32::MAX, |m| m.uid())
        })
    }

    /// Which credentials a cached token belongs to: a hash of what decides the
    /// token (flow, endpoint, client, scopes, and for a JWT account its org
    /// and technical account), never the secret.
    fn credentials_key(credentials: &Credentials) -> String {
        let mut parts = vec![
            credentials.ims().url().to_owned(),
            credentials.client_id().to_owned(),
        ];
        match credentials {
            Credentials::ServiceAccount(a) => {
                parts.push("jwt".into());
                parts.push(a.org_id().into());
                parts.push(a.technical_account_id().into());
            }
            _ => parts.push("oauth".into()),
        }
        parts.extend(credentials.scopes().iter().cloned());
        let digest = sha2::Sha256::digest(parts.join("\n").as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The cache file's text: JSON that starts with [`CACHE_MARKER`]; the token
    /// (if one is kept) and, after a failed refresh, when to ask IMS again and
    /// what the failure was.
    fn cache_text(entry: &Entry, key: &str) -> String {
        let mut json = serde_json::json!({ "key": key });
        if let Some(token) = &entry.held.token {
            json["access_token"] = token.secret().into();
            json["token_type"] = token.token_type().into();
            json["received_at"] = epoch_secs(token.received_at()).into();
            json["expires_at"] = epoch_secs(token.expires_at()).into();
        }
        if let Some(at) = entry.held.retry_at {
            json["retry_at"] = epoch_secs(at).into();
        }
        if let Some(failure) = &entry.failure {
            json["failure"] = serde_json::json!({ "message": failure.message });
        }
        json["round"] = entry.round.into();
        let fields = json.to_string();
        // `fields` is a JSON object: the marker takes the place of its `{`.
        let rest = fields.strip_prefix('{').unwrap_or(&fields);
        format!("{CACHE_MARKER}{rest}")
    }

    /// The entry in a cache file's text, if it is one of ours for `key`;
    /// fields that are missing or mistyped are left out.
    fn parse_cache(text: &str, key: &str) -> Option<Entry> {
        if !text.starts_with(CACHE_MARKER) {
            return None;
        }
        let json: Value = serde_json::from_str(text).ok()?;
        if json.get("ims_token_cache")?.as_u64()? != 1 || json.get("key")?.as_str()? != key {
            return None;
        }
        Some(Entry {
            held: Held {
                token: cached_token(&json),
                retry_at: json.get("retry_at").and_then(epoch_time),
            },
            failure: json.get("failure").and_then(cached_failure),
            round: json.get("round").and_then(Value::as_u64).unwrap_or(0),
        })
    }

    fn cached_token(json: &Value) -> Option<AccessToken> {
        // Only what IMS could have sent: a token that would break a header is
        // not handed out, whoever edited the file.
        AccessToken::try_new(
            json.get("access_token")?.as_str()?,
            json.get("token_type")?.as_str()?,
            epoch_time(json.get("received_at")?)?,
            epoch_time(json.get("expires_at")?)?,
        )
        .ok()
    }

    fn cached_failure(json: &Value) -> Option<SharedFailure> {
        // Printed on stderr: one line of printable text.
        let message = json.get("message")?.as_str()?;
        let printable = !message.is_empty() && !message.chars().any(char::is_control);
        printable.then(|| SharedFailure {
            message: message.to_owned(),
        })
    }

    /// A time written as whole seconds since the epoch.
    fn epoch_time(value: &Value) -> Option<SystemTime> {
        UNIX_EPOCH.checked_add(Duration::from_secs(value.as_u64()?))
    }

    fn epoch_secs(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use ims_token::Endpoint;

        fn entry_of(token: &AccessToken) -> Entry {
            paused(token, None)
        }

        fn paused(token: &AccessToken, retry_at: Option<SystemTime>) -> Entry {
            Entry {
                held: Held {
                    token: Some(token.clone()),
                    retry_at,
                },
                ..Entry::default()
            }
        }

        /// The token in a cache text for `key`.
        fn token_in(text: &str, key: &str) -> Option<AccessToken> {
            parse_cache(text, key).and_then(|entry| entry.held.token)
        }

        /// A token's parts, to compare (`AccessToken` has no `PartialEq`).
        type Parts = (String, String, SystemTime, SystemTime);

        fn parts(token: &AccessToken) -> Parts {
            (
                token.secret().to_owned(),
                token.token_type().to_owned(),
                token.received_at(),
                token.expires_at(),
            )
        }

        /// The parts of the token in a cache text for `key`.
        fn parts_in(text: &str, key: &str) -> Option<Parts> {
            token_in(text, key).as_ref().map(parts)
        }

        /// `json` as the cache writes it: its `ims_token_cache` field (if
        /// still there, whatever its value) first, as the marker.
        fn marked(json: &Value) -> String {
            let mut fields = json.as_object().cloned().unwrap_or_default();
            match fields.remove("ims_token_cache") {
                Some(version) => {
                    let rest = Value::Object(fields).to_string();
                    format!("{{\"ims_token_cache\":{version},{}", &rest[1..])
                }
                None => Value::Object(fields).to_string(),
            }
        }

        fn day_token(name: &str, t0: SystemTime) -> AccessToken {
            AccessToken::new(name, "bearer", t0, t0 + Duration::from_secs(86_400))
        }

        const MARGIN: Duration = Duration::from_secs(600);

        #[test]
        fn the_cache_hands_out_fresh_tokens_and_paused_ones_only() {
            let rule = RefreshRule::exact(MARGIN);
            let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let use_at = |entry: &Entry, now, refreshing| {
                use_cached(&rule, Some(entry), now, refreshing).map(|t| t.secret().to_owned())
            };
            let entry = entry_of(&day_token("tok", t0));
            let fresh = use_at(&entry, t0 + Duration::from_secs(60), false);
            assert_eq!(fresh, Some("tok".into()));
            let due = t0 + Duration::from_secs(86_400 - 300);
            assert!(use_at(&entry, due, false).is_none());
            // Another run holds the lock: the working token, at once.
            assert_eq!(use_at(&entry, due, true), Some("tok".into()));
            // Inside the pause after a failed refresh: the old token.
            let token = day_token("tok", t0);
            let pausing = paused(&token, Some(due + Duration::from_secs(20)));
            assert!(use_at(&pausing, due, false).is_some());
            assert!(use_at(&pausing, due + Duration::from_secs(20), false).is_none());
            // A pause longer than ours (a clock stepped back, an edited file): ignored.
            let endless = paused(&token, Some(due + Duration::from_secs(3600)));
            assert!(use_at(&endless, due, false).is_none());
            // Never an expired token, whether or not another run is refreshing.
            let expired = t0 + Duration::from_secs(86_400);
            let late = paused(&token, Some(expired + Duration::from_secs(10)));
            assert!(use_at(&late, expired, false).is_none());
            assert!(use_at(&late, expired, true).is_none());
            assert!(use_cached(&rule, None, t0, false).is_none());
        }

        #[test]
        fn only_a_failure_written_while_waiting_is_shared() {
            let failed = |round| Entry {
                failure: Some(SharedFailure {
                    message: "IMS could not serve the request (503)".into(),
                }),
                round,
                ..Entry::default()
            };
            let quiet = Entry {
                round: 4,
                ..Entry::default()
            };
            assert!(shared_failure(Some(&quiet), Some(&failed(5))).is_some());
            assert!(shared_failure(None, Some(&failed(1))).is_some());
            // Already there before this run waited: this run asks IMS itself.
            assert!(shared_failure(Some(&failed(5)), Some(&failed(5))).is_none());
            assert!(shared_failure(Some(&quiet), Some(&quiet)).is_none());
            assert!(shared_failure(Some(&quiet), None).is_none());
        }

        /// What the library makes of an IMS error reply.
        fn ims_reply(status: u16, code: &str, now: SystemTime) -> Result<AccessToken, Error> {
            let body = serde_json::json!({ "error": code }).to_string();
            ims_token::parse_token_reply(
                ims_token::Flow::ClientCredentials,
                status,
                body.as_bytes(),
                now,
            )
        }

        #[test]
        fn a_fetch_writes_what_the_refresh_rule_keeps() {
            let rule = RefreshRule::exact(MARGIN);
            let t0 = SystemTime::now();
            let old = Entry {
                round: 7,
                ..entry_of(&day_token("old", t0))
            };
            let (new, outcome) = entry_after_fetch(&rule, Some(old), Ok(day_token("new", t0)), t0);
            assert!(matches!(outcome, Outcome::New(_)));
            assert_eq!(new.held.token.unwrap().secret(), "new");
            assert_eq!(
                (
                    new.round,
                    new.held.retry_at.is_none(),
                    new.failure.is_none()
                ),
                (8, true, true)
            );

            // Worth retrying: the old token for a pause, the failure shared.
            let unavailable = ims_reply(503, "temporarily_unavailable", t0);
            let old = entry_of(&day_token("old", t0));
            let (kept, outcome) = entry_after_fetch(&rule, Some(old), unavailable, t0);
            assert!(matches!(outcome, Outcome::Kept(..)));
            assert_eq!(kept.held.token.unwrap().secret(), "old");
            assert_eq!(
                kept.held.retry_at,
                Some(t0 + ims_token::REFRESH_RETRY_PAUSE)
            );
            assert!(kept.failure.unwrap().message.contains("503"));
            let unavailable = ims_reply(503, "temporarily_unavailable", t0);
            let (nothing_old, _) = entry_after_fetch(&rule, None, unavailable, t0);
            assert!(nothing_old.held.token.is_none() && nothing_old.held.retry_at.is_none());
            assert_eq!(nothing_old.round, 1);

            // A TLS or configuration problem keeps a working token too (as the
            // provider does), but is not shared: waiting runs try for themselves.
            let config = Err(Endpoint::parse("ftp://ims.example").unwrap_err());
            assert!(config.as_ref().is_err_and(Error::is_config));
            let old = entry_of(&day_token("old", t0));
            let (kept, outcome) = entry_after_fetch(&rule, Some(old), config, t0);
            assert!(matches!(outcome, Outcome::Kept(..)));
            assert!(kept.held.token.is_some() && kept.failure.is_none());

            // IMS's refusal drops the token, and is not shared either.
            let rejected = ims_reply(401, "invalid_client", t0);
            let old = entry_of(&day_token("old", t0));
            let (dropped, outcome) = entry_after_fetch(&rule, Some(old), rejected, t0);
            assert!(matches!(outcome, Outcome::Failed(Error::Rejected(_))));
            assert!(dropped.held.token.is_none() && dropped.failure.is_none());
        }

        #[test]
        fn failures_and_pauses_round_trip_through_the_cache_text() {
            let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let entry = Entry {
                held: Held {
                    token: Some(day_token("tok", t0)),
                    retry_at: Some(t0 + Duration::from_secs(30)),
                },
                failure: Some(SharedFailure {
                    message: "IMS could not serve the request (503)".into(),
                }),
                round: 3,
            };
            let text = cache_text(&entry, "k1");
            let back = parse_cache(&text, "k1").unwrap();
            assert_eq!(back.held.token.unwrap().secret(), "tok");
            assert_eq!(back.held.retry_at, entry.held.retry_at);
            assert_eq!(back.failure, entry.failure);
            assert_eq!(back.round, 3);
            // A failure alone, and a message that is not one printable line.
            let only = Entry {
                failure: entry.failure.clone(),
                ..Entry::default()
            };
            let back = parse_cache(&cache_text(&only, "k1"), "k1").unwrap();
            assert!(back.held.token.is_none() && back.failure.is_some());
            let mut json: Value = serde_json::from_str(&cache_text(&only, "k1")).unwrap();
            json["failure"]["message"] = "two\nlines".into();
            let text = marked(&json);
            assert!(parse_cache(&text, "k1").unwrap().failure.is_none());
        }

        #[test]
        fn cache_text_round_trips_only_for_its_key() {
            let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
            let token = AccessToken::new("tok", "bearer", t0, t0 + Duration::from_secs(60));
            let text = cache_text(&entry_of(&token), "k1");
            assert_eq!(parts_in(&text, "k1"), Some(parts(&token)));
            assert_eq!(parts_in(&text, "k2"), None);
            assert_eq!(parts_in(&text[..text.len() / 2], "k1"), None);
        }

        #[test]
        fn cache_text_starts_with_the_marker_and_refuses_odd_tokens() {
            let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
            let later = t0 + Duration::from_secs(60);
            let text = cache_text(
                &entry_of(&AccessToken::new("tok", "bearer", t0, later)),
                "k1",
            );
            assert!(text.starts_with(CACHE_MARKER), "{text}");
            // The same fields without the marker are not a cache.
            let json: Value = serde_json::from_str(&text).unwrap();
            assert!(parse_cache(&json.to_string(), "k1").is_none());
            for odd in ["tok\r\nX-Injected: 1", "tok en", "tok\u{0}", "tok-é"] {
                let text = cache_text(&entry_of(&AccessToken::new(odd, "bearer", t0, later)), "k1");
                assert_eq!(parts_in(&text, "k1"), None, "{odd:?}");
            }
        }

        #[test]
        fn caches_of_an_earlier_version_are_recognized_as_ours() {
            let key = "0123456789abcdef".repeat(4);
            let old = serde_json::json!({
                "access_token": "tok", "expires_at": 2, "key": key,
                "received_at": 1, "token_type": "bearer", "version": 1,
            });
            assert!(is_legacy_cache(old.to_string().as_bytes()));
            let mut other = old.clone();
            other["note"] = "mine".into();
            assert!(!is_legacy_cache(other.to_string().as_bytes()));
            let mut short_key = old.clone();
            short_key["key"] = "abc".into();
            assert!(!is_legacy_cache(short_key.to_string().as_bytes()));
            assert!(!is_legacy_cache(b"{\"version\":1}"));
            assert!(!is_legacy_cache(b"not json"));
            // Such a file is a miss, so the next write replaces it.
            assert!(parse_cache(&old.to_string(), &key).is_none());
        }

        #[test]
        fn effective_uid_is_the_owner_of_a_new_file() {
            let path = std::env::temp_dir().join(format!("ims-token-uid-{}", std::process::id()));
            let file =
                open_private(&path, OpenOptions::new().write(true).create_new(true)).unwrap();
            let owner = file.metadata().unwrap().uid();
            let _ = std::fs::remove_file(&path);
            assert_eq!(effective_uid(), owner);
            assert_ne!(effective_uid(), u32::MAX);
        }

        /// Property tests of the cache file, on arbitrary and mutated input: no
        /// panic, and a token only from a cache of ours for its key. The
        /// library's parsers have theirs in the integration tests.
        mod properties {
            use super::*;
            use proptest::prelude::*;
            use proptest::sample::Index;

            /// Arbitrary JSON with every type; numbers no larger than `max`.
            fn arb_json(max: u64) -> impl Strategy<Value = Value> {
                let leaf = prop_oneof![
                    Just(Value::Null),
                    any::<bool>().prop_map(Value::Bool),
                    (0..=max).prop_map(Value::from),
                    any::<i64>().prop_map(|n| Value::from(n.min(0))),
                    any::<f64>().prop_map(Value::from),
                    any::<String>().prop_map(Value::String),
                    Just(Value::String(String::new())),
                    Just(Value::from(1)),
                ];
                leaf.prop_recursive(3, 16, 4, |inner| {
                    prop_oneof![
                        prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                        prop::collection::vec(("[a-z_]{1,12}", inner), 0..4)
                            .prop_map(|f| Value::Object(f.into_iter().collect())),
                    ]
                })
            }

            const CACHE_FIELDS: [&str; 7] = [
                "ims_token_cache",
                "key",
                "access_token",
                "token_type",
                "received_at",
                "expires_at",
                "other",
            ];

            /// What IMS can issue: a token and a token type of visible ASCII.
            fn cache_token() -> impl Strategy<Value = AccessToken> {
                ("[!-~]{1,80}", "[!-~]{1,20}", 0u64..=1 << 40, 0u64..=1 << 40).prop_map(
                    |(token, kind, received, lifetime)| {
                        let received = UNIX_EPOCH + Duration::from_secs(received);
                        AccessToken::new(
                            token,
                            kind,
                            received,
                            received + Duration::from_secs(lifetime),
                        )
                    },
                )
            }

            /// What `parse_cache` must give for `text`: a token only for a text
            /// that starts with the marker, version 1, and this key.
            fn check_cache(text: &str, key: &str) -> Result<(), TestCaseError> {
                let parsed = token_in(text, key);
                if let Some(token) = parsed {
                    prop_assert!(text.starts_with(CACHE_MARKER));
                    let json: Value = serde_json::from_str(text).unwrap();
                    prop_assert_eq!(json["ims_token_cache"].as_u64(), Some(1));
                    prop_assert!(token.secret().bytes().all(|b| b.is_ascii_graphic()));
                    prop_assert!(token.token_type().bytes().all(|b| b.is_ascii_graphic()));
                    prop_assert_eq!(json["key"].as_str(), Some(key));
                    prop_assert_eq!(json["access_token"].as_str(), Some(token.secret()));
                    prop_assert!(!token.secret().is_empty());
                }
                Ok(())
            }

            proptest! {
                #![proptest_config(crate::proptest_config(256))]

                /// Arbitrary text: no panic, and nothing for a wrong key.
                #[test]
                fn parse_cache_from_arbitrary_text(text in any::<String>(), value in arb_json(u64::from(u32::MAX))) {
                    check_cache(&text, "k1")?;
                    check_cache(&value.to_string(), "k1")?;
                }

                /// A cache text round-trips for its key only.
                #[test]
                fn cache_text_round_trips(token in cache_token(), key in "[0-9a-f]{0,64}", other in "[0-9a-f]{0,64}") {
                    let text = cache_text(&entry_of(&token), &key);
                    prop_assert_eq!(parts_in(&text, &key), Some(parts(&token)));
                    if other != key {
                        prop_assert_eq!(parts_in(&text, &other), None);
                    }
                }

                /// A valid cache with fields replaced by any JSON type (times no
                /// larger than 2^40 s), removed, or NUL/invalid bytes inserted.
                #[test]
                fn parse_cache_mutated(
                    token in cache_token(),
                    changes in prop::collection::vec(
                        (prop::sample::select(&CACHE_FIELDS[..]), prop::option::of(arb_json(1 << 40))),
                        1..4,
                    ),
                    damage in prop::option::of((any::<Index>(), prop::sample::select(&['\0', '\u{fffd}', '"', '}'][..]))),
                ) {
                    let key = "0123abcd";
                    let mut json: Value = serde_json::from_str(&cache_text(&entry_of(&token), key)).unwrap();
                    for (field, value) in &changes {
                        match value {
                            Some(v) => json[*field] = v.clone(),
                            None => {
                                json.as_object_mut().unwrap().remove(*field);
                            }
                        }
                    }
                    let mut text = marked(&json);
                    if let Some((at, c)) = damage {
                        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
                        text.insert(bounds[at.index(bounds.len())], c);
                    }
                    check_cache(&text, key)?;
                    check_cache(&text, "another key")?;
                }

            }

            /// Every prefix of a valid cache text is a miss, never a panic.
            #[test]
            fn parse_cache_truncated_at_every_byte() {
                let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
                let token =
                    AccessToken::new("tok-~!", "bearer", t0, t0 + Duration::from_secs(3600));
                let text = cache_text(&entry_of(&token), "k1");
                for cut in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
                    assert_eq!(parts_in(&text[..cut], "k1"), None, "{cut}");
                }
                assert_eq!(parts_in(&text, "k1"), Some(parts(&token)));
            }

            /// 10 000 nested arrays as a cache file: a miss (serde_json's
            /// recursion limit), not a stack overflow.
            #[test]
            fn deeply_nested_cache_is_a_miss() {
                let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
                assert_eq!(parts_in(&nested, "k1"), None);
                let in_field = format!(r#"{{"version":1,"key":"k1","access_token":{nested}}}"#);
                assert_eq!(parts_in(&in_field, "k1"), None);
            }

            /// Regression: `received_at`/`expires_at` above i64::MAX seconds make
            /// `UNIX_EPOCH + Duration::from_secs(..)` in `parse_cache` panic
            /// ("overflow when adding duration to instant"); a corrupt or
            /// hand-edited cache file should be a miss.
            #[test]
            fn cache_with_huge_times_is_a_miss() {
                for field in ["received_at", "expires_at"] {
                    for secs in [u64::MAX, 1 << 63, (1 << 63) - 1] {
                        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
                        let token =
                            AccessToken::new("tok", "bearer", t0, t0 + Duration::from_secs(60));
                        let mut json: Value =
                            serde_json::from_str(&cache_text(&entry_of(&token), "k1")).unwrap();
                        json[field] = Value::from(secs);
                        let text = marked(&json);
                        let parsed = std::panic::catch_unwind(|| parts_in(&text, "k1"));
                        assert!(parsed.is_ok(), "parse_cache panicked on {text}");
                    }
                }
            }
        }
    }
}
