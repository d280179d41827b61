//! `ims-token`: print an Adobe IMS access token for cron jobs and shell scripts.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use args::{parse_args, Command};
use commands::{inspect_command, jwt_command, print_line, token_command};
use failure::Failure;
use introspect::{decode_command, invalidate_command, revoke_command, validate_command};

fn main() -> ExitCode {
    // The library logs what an operator must see (a clock off IMS's, say).
    output::install_logger();
    match run(std::env::args_os().skip(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = writeln!(io::stderr().lock(), "ims-token: {}", failure.describe());
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(args: impl Iterator<Item = OsString>) -> Result<(), Failure> {
    let options = parse_args(args)?;
    match options.command {
        Command::Help => print_line(&help::help_text()),
        Command::Version => print_line(&format!("ims-token {}", env!("CARGO_PKG_VERSION"))),
        Command::Generate(what) => print_line(&generate::generate(what)),
        Command::Token | Command::Exec => token_command(&options),
        Command::Jwt => jwt_command(&options),
        Command::Inspect => inspect_command(&options),
        Command::Decode => decode_command(&options),
        Command::Validate => validate_command(&options),
        Command::Revoke => revoke_command(&options),
        Command::Sink => sink::sink_command(&options),
        Command::Invalidate => invalidate_command(&options),
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
    use std::ffi::OsString;
    use std::io;
    use std::path::PathBuf;
    use std::time::Duration;

    use ims_token::Error;

    use crate::cache::SharedFailure;

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
        /// stdout was closed before the output was written: the reader went
        /// away, and what it asked for (a token) did not reach it.
        ClosedOutput,
        /// stdout failed otherwise.
        Output(io::Error),
        /// `exec` could not start COMMAND: 127 not found, 126 otherwise.
        Exec { program: OsString, error: io::Error },
        /// validate: IMS does not accept the token, for this reason (one
        /// printable line, as the library gives it): exit 4.
        NotAccepted(String),
        /// invalidate: the cache keeps the token, by the brake: it replaced
        /// a token an API refused, and IMS issued it this long ago, less
        /// than the cooldown. A new token would not help: exit 6.
        Braked(Duration),
        /// invalidate: the cache (this path, as given) does not hold the
        /// token: another run replaced it already, or none is cached. A
        /// retry gets another token: exit 7.
        NotCached(PathBuf),
    }

    impl Failure {
        pub(crate) fn exit_code(&self) -> u8 {
            match self {
                Failure::Usage(_) => 2,
                Failure::Config(_) => 3,
                Failure::Ims(e) => ims_exit_code(e),
                // Only failures worth retrying are shared.
                Failure::Shared(_) => 5,
                Failure::ClosedOutput | Failure::Output(_) => 1,
                // As a shell does.
                Failure::Exec { error, .. } if error.kind() == io::ErrorKind::NotFound => 127,
                Failure::Exec { .. } => 126,
                Failure::NotAccepted(_) => 4,
                Failure::Braked(_) => 6,
                Failure::NotCached(_) => 7,
            }
        }

        /// The message with its cause chain on one line.
        pub(crate) fn describe(&self) -> String {
            match self {
                Failure::Usage(m) => format!("{m} (see 'ims-token --help')"),
                Failure::Config(m) => m.clone(),
                Failure::Ims(e) => chain(e),
                Failure::Shared(f) => f.message.clone(),
                Failure::ClosedOutput => {
                    "cannot write the output: stdout is closed (its reader exited before \
                     reading it); nothing was delivered"
                        .into()
                }
                Failure::Output(e) => format!("cannot write the output: {e}"),
                // Quoted and escaped: COMMAND may hold a line break or an escape.
                Failure::Exec { program, error } if error.kind() == io::ErrorKind::NotFound => {
                    format!("cannot run {program:?}: command not found")
                }
                Failure::Exec { program, error } => format!("cannot run {program:?}: {error}"),
                Failure::NotAccepted(reason) => format!("IMS does not accept the token: {reason}"),
                Failure::Braked(age) => ims_token::brake_warning(*age),
                Failure::NotCached(cache) => format!(
                    "the cache {cache:?} does not hold this token (another run has replaced \
                     it, or none is cached): nothing dropped; a retry gets another token"
                ),
            }
        }
    }

    fn ims_exit_code(e: &Error) -> u8 {
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

/// The command line, parsed and checked in full before anything runs. The
/// commands and the flags are tables ([`args::COMMANDS`], [`args::FLAGS`]:
/// `--help`, the man page and the completions are made from them too); a
/// lexer splits the arguments, and one flat match sets the options from the
/// table's entries.
mod args {
    use std::ffi::OsString;
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::atomic::Owner;
    use crate::failure::{chain, usage, Failure};

    /// Most retries a command line may ask for: each can take a full timeout.
    const MAX_RETRIES: u32 = 10;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Command {
        Token,
        Exec,
        Jwt,
        Inspect,
        Decode,
        Validate,
        Revoke,
        /// Keep a file fresh with the token.
        Sink,
        /// Drop the token on stdin from `--cache`, an API having refused it.
        Invalidate,
        Help,
        Version,
        /// `--generate`: the man page or a completion script.
        Generate(Generated),
    }

    impl Command {
        /// Reads a token on stdin: takes no argument (where `ps` would show
        /// the token) and no credentials from stdin.
        pub(crate) fn reads_token(self) -> bool {
            matches!(
                self,
                Command::Decode | Command::Validate | Command::Revoke | Command::Invalidate
            )
        }
    }

    /// What `--generate` prints.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Generated {
        Man,
        Bash,
        Zsh,
        Fish,
    }

    impl Generated {
        /// The words of `--generate` in [`FLAGS`].
        fn from_word(word: &str) -> Option<Generated> {
            match word {
                "man" => Some(Generated::Man),
                "complete-bash" => Some(Generated::Bash),
                "complete-zsh" => Some(Generated::Zsh),
                "complete-fish" => Some(Generated::Fish),
                _ => None,
            }
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Format {
        Token,
        Header,
        Headers,
        Json,
        /// `IMS_ACCESS_TOKEN=...` and the ids, for `. FILE` and systemd's
        /// `EnvironmentFile=`.
        Env,
        /// decode and validate: lines for people (their default).
        Text,
    }

    impl Format {
        /// Every format, in the order of its words in [`FLAGS`].
        const ALL: [Format; 6] = [
            Format::Token,
            Format::Header,
            Format::Headers,
            Format::Json,
            Format::Env,
            Format::Text,
        ];

        /// Its word of `--format` in [`FLAGS`].
        fn word(self) -> &'static str {
            match self {
                Format::Token => "token",
                Format::Header => "header",
                Format::Headers => "headers",
                Format::Json => "json",
                Format::Env => "env",
                Format::Text => "text",
            }
        }

        fn from_word(word: &str) -> Option<Format> {
            Format::ALL.into_iter().find(|f| f.word() == word)
        }

        /// Whether `command` prints this format: decode and validate print
        /// text or JSON, the others (that take `--format`) a token.
        fn is_for(self, command: Command) -> bool {
            let describes = matches!(command, Command::Decode | Command::Validate);
            match self {
                Format::Json => true,
                Format::Text => describes,
                _ => !describes,
            }
        }

        /// Whether the client id and org go in too.
        pub(crate) fn has_ids(self) -> bool {
            matches!(self, Format::Headers | Format::Env)
        }
    }

    /// The signals `--signal` sends, by the names `kill -s` takes.
    pub(crate) const SIGNALS: &[&str] = &["HUP", "USR1", "USR2", "INT", "TERM", "QUIT", "WINCH"];

    fn signal_word(word: &str) -> Option<String> {
        SIGNALS.contains(&word).then(|| word.to_owned())
    }

    /// A command word, as `--help`, the man page and the completions show it.
    pub(crate) struct CommandSpec {
        pub(crate) name: &'static str,
        pub(crate) command: Command,
        /// The usage line after `ims-token`.
        pub(crate) synopsis: &'static str,
        pub(crate) help: &'static str,
    }

    /// Every command word but `help` (the same as `--help`); the first is
    /// the default.
    pub(crate) const COMMANDS: &[CommandSpec] = &[
        CommandSpec {
            name: "token",
            command: Command::Token,
            synopsis: "[token] [OPTIONS]",
            help: "exchange and print the access token (default)",
        },
        CommandSpec {
            name: "exec",
            command: Command::Exec,
            synopsis: "exec [OPTIONS] -- COMMAND [ARGS...]",
            help: "run COMMAND with the token in its environment",
        },
        CommandSpec {
            name: "jwt",
            command: Command::Jwt,
            synopsis: "jwt [OPTIONS]",
            help: "print a freshly signed JWT, no network",
        },
        CommandSpec {
            name: "inspect",
            command: Command::Inspect,
            synopsis: "inspect [OPTIONS]",
            help: "show what the credentials hold, no secrets",
        },
        CommandSpec {
            name: "decode",
            command: Command::Decode,
            synopsis: "decode [OPTIONS] < TOKEN_FILE",
            help: "show what the token on stdin says of itself (client, scopes, \
                   expiry), no network",
        },
        CommandSpec {
            name: "validate",
            command: Command::Validate,
            synopsis: "validate [OPTIONS] < TOKEN_FILE",
            help: "ask IMS whether it still accepts the token on stdin",
        },
        CommandSpec {
            name: "revoke",
            command: Command::Revoke,
            synopsis: "revoke [OPTIONS] < TOKEN_FILE",
            help: "end the token on stdin at IMS now, with its client's credentials",
        },
        CommandSpec {
            name: "sink",
            command: Command::Sink,
            synopsis: "sink --out FILE [OPTIONS] [-- COMMAND [ARGS...]]",
            help: "keep FILE fresh with the token, for other processes; \
                   COMMAND runs after each write",
        },
        CommandSpec {
            name: "invalidate",
            command: Command::Invalidate,
            synopsis: "invalidate [OPTIONS] < TOKEN_FILE",
            help: "after an API refused the token on stdin (401): drop it from \
                   --cache if it is the cached one, with the brake; the exit \
                   status says whether a retry makes sense (0, 6, 7)",
        },
    ];

    /// What a flag takes after it.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Takes {
        /// Nothing: a switch.
        Nothing,
        /// A file name, called this in the help (shells complete file names).
        File(&'static str),
        /// Other text, called this in the help.
        Text(&'static str),
        /// One of these words, called this in the help (shells complete the
        /// words; the flag's help names them).
        OneOf(&'static str, &'static [&'static str]),
    }

    impl Takes {
        /// What the help calls the value; `None` for a switch.
        pub(crate) fn name(self) -> Option<&'static str> {
            match self {
                Takes::Nothing => None,
                Takes::File(name) | Takes::Text(name) | Takes::OneOf(name, _) => Some(name),
            }
        }
    }

    /// A flag, as every place that reads or shows one sees it.
    pub(crate) struct Flag {
        /// `--long`, without the dashes.
        pub(crate) long: &'static str,
        pub(crate) short: Option<char>,
        pub(crate) takes: Takes,
        /// For `--help` and the man page, wrapped where it is shown; a `\n`
        /// breaks the line. The completions show its first line.
        pub(crate) help: &'static str,
        /// The commands it applies to; given to another, it is a usage error.
        pub(crate) applies: fn(Command) -> bool,
    }

    impl Flag {
        /// The first line of the help.
        pub(crate) fn summary(&self) -> &'static str {
            self.help.split('\n').next().unwrap_or(self.help)
        }

        /// `-c` and `--credentials` as written.
        pub(crate) fn names(&self) -> Vec<String> {
            let short = self.short.map(|c| format!("-{c}"));
            short
                .into_iter()
                .chain([format!("--{}", self.long)])
                .collect()
        }

        fn is_named(&self, name: &str) -> bool {
            match name.strip_prefix("--") {
                Some(long) => long == self.long,
                None => {
                    let mut chars = name.chars();
                    chars.next() == Some('-')
                        && chars.next().is_some_and(|c| Some(c) == self.short)
                        && chars.next().is_none()
                }
            }
        }
    }

    fn every(_: Command) -> bool {
        true
    }

    /// Every command but decode, which reads nothing but the token.
    fn not_decode(command: Command) -> bool {
        command != Command::Decode
    }

    /// The commands that get a token (and revoke and invalidate, whose
    /// `--cache` names the cached token by these options too).
    fn makes_or_drops_tokens(command: Command) -> bool {
        !matches!(command, Command::Decode | Command::Validate)
    }

    /// The commands whose OAuth request may ask for an org or a resource:
    /// the ones that get a token from IMS, and revoke and invalidate (for
    /// their `--cache`).
    fn asks_for_oauth_options(command: Command) -> bool {
        matches!(
            command,
            Command::Token | Command::Exec | Command::Sink | Command::Revoke | Command::Invalidate
        )
    }

    /// The commands that print in a `--format`.
    fn prints_formats(command: Command) -> bool {
        matches!(
            command,
            Command::Token | Command::Sink | Command::Decode | Command::Validate
        )
    }

    /// The commands that sign a JWT (for a JWT service account).
    fn signs_jwts(command: Command) -> bool {
        matches!(
            command,
            Command::Token | Command::Exec | Command::Sink | Command::Jwt
        )
    }

    /// The commands that send requests to IMS.
    fn talks_to_ims(command: Command) -> bool {
        matches!(
            command,
            Command::Token | Command::Exec | Command::Sink | Command::Validate | Command::Revoke
        )
    }

    /// The commands that send requests to IMS, and invalidate, which waits
    /// on the cache's lock as long as a fetch can take (by the timeout and
    /// the retries).
    fn waits_on_ims(command: Command) -> bool {
        talks_to_ims(command) || command == Command::Invalidate
    }

    /// The commands that read or change `--cache`.
    fn uses_the_cache(command: Command) -> bool {
        matches!(
            command,
            Command::Token | Command::Exec | Command::Revoke | Command::Invalidate
        )
    }

    /// The commands that refresh a token before it expires: with `--cache`,
    /// and the sink.
    fn refreshes(command: Command) -> bool {
        matches!(command, Command::Token | Command::Exec | Command::Sink)
    }

    /// The sink's own flags.
    fn sink_only(command: Command) -> bool {
        command == Command::Sink
    }

    /// Every flag, in the order `--help` lists them. Adding one: an entry
    /// here, an arm in [`apply`] and its field in [`Options`].
    pub(crate) const FLAGS: &[Flag] = &[
        Flag {
            long: "credentials",
            short: Some('c'),
            takes: Takes::File("FILE"),
            help: "credentials JSON; '-' reads stdin (default: the path in \
                   $IMS_CREDENTIALS, else IMS_* variables)",
            applies: not_decode,
        },
        Flag {
            long: "credential",
            short: None,
            takes: Takes::Text("NAME|ID"),
            help: "which Developer Console project credential (when it has \
                   several OAuth Server-to-Server)",
            applies: not_decode,
        },
        Flag {
            long: "ims",
            short: None,
            takes: Takes::Text("HOST|URL"),
            help: "override the IMS endpoint (http: loopback only)",
            applies: not_decode,
        },
        Flag {
            long: "format",
            short: None,
            takes: Takes::OneOf(
                "FORMAT",
                &["token", "header", "headers", "json", "env", "text"],
            ),
            help: "token (default) | header | headers | json | env; \
                   decode, validate: text (default) | json\n\
                   headers: Authorization, x-api-key and (when known) \
                   x-gw-ims-org-id, one a line, for 'curl -H @-'; env: \
                   IMS_ACCESS_TOKEN, IMS_CLIENT_ID and (when known) \
                   IMS_ORG_ID, for '. FILE' and systemd's EnvironmentFile=",
            // exec prints nothing; jwt prints the JWT, inspect its lines,
            // revoke and invalidate one line.
            applies: prints_formats,
        },
        Flag {
            long: "lifetime",
            short: None,
            takes: Takes::Text("SECS"),
            help: "JWT lifetime (default 300, at most 86400)",
            applies: signs_jwts,
        },
        Flag {
            long: "scope",
            short: None,
            takes: Takes::Text("LIST"),
            help: "override the OAuth scopes or JWT metascopes (comma-separated)",
            applies: makes_or_drops_tokens,
        },
        Flag {
            long: "org-id",
            short: None,
            takes: Takes::Text("ORG"),
            help: "OAuth: ask IMS for a token for this org (the org_id field, \
                   for a client of several orgs)",
            applies: asks_for_oauth_options,
        },
        Flag {
            long: "resource",
            short: None,
            takes: Takes::Text("URI"),
            help: "OAuth: ask IMS for a token for this API (an RFC 8707 resource \
                   field; repeatable)",
            applies: asks_for_oauth_options,
        },
        Flag {
            long: "timeout",
            short: None,
            takes: Takes::Text("SECS"),
            help: "overall HTTP timeout per attempt, e.g. 2.5 (default 30, at most \
                   86400)",
            applies: waits_on_ims,
        },
        Flag {
            long: "connect-timeout",
            short: None,
            takes: Takes::Text("SECS"),
            help: "connect timeout, e.g. 0.5 (default 10, at most 86400)",
            applies: talks_to_ims,
        },
        Flag {
            long: "retries",
            short: None,
            takes: Takes::Text("N"),
            help: "retries on network errors, timeouts, 5xx and 429 (default 2, \
                   at most 10)",
            applies: waits_on_ims,
        },
        Flag {
            long: "ca-file",
            short: None,
            takes: Takes::File("PEM"),
            help: "trust these CA certificates too (corporate proxy; a regular \
                   file of at most 1 MiB)",
            applies: talks_to_ims,
        },
        Flag {
            long: "cache",
            short: None,
            takes: Takes::File("FILE|DIR"),
            help: "reuse a token stored there while it is still good; a \
                   directory (one that exists, or DIR/, made 0700) keeps a file \
                   per credential set; only a cache file of ims-token is ever \
                   replaced\n\
                   revoke: drop the revoked token from it\n\
                   invalidate: drop the refused token from it (required)",
            // The sink keeps its token in memory and in --out.
            applies: uses_the_cache,
        },
        Flag {
            long: "refresh-margin",
            short: None,
            takes: Takes::Text("SECS"),
            help: "with --cache or sink: refresh this long before expiry \
                   (default 600; --cache: exact, no random spread; sink: at a \
                   random point between it and half of it)",
            applies: refreshes,
        },
        Flag {
            long: "out",
            short: None,
            takes: Takes::File("FILE"),
            help: "sink: the file to keep fresh (its folder must exist)",
            applies: sink_only,
        },
        Flag {
            long: "mode",
            short: None,
            takes: Takes::Text("OCTAL"),
            help: "sink: FILE's mode, set on every write (default 0600; \
                   never group- or world-writable)",
            applies: sink_only,
        },
        Flag {
            long: "owner",
            short: None,
            takes: Takes::Text("UID[:GID]"),
            help: "sink: FILE's owner and group, by number, set on every write",
            applies: sink_only,
        },
        Flag {
            long: "once",
            short: None,
            takes: Takes::Nothing,
            help: "sink: write FILE once and exit, with a token run's exit code \
                   (for an init container); no FILE when it fails",
            applies: sink_only,
        },
        Flag {
            long: "status-file",
            short: None,
            takes: Takes::File("FILE"),
            help: "sink: JSON of the last attempt (expires_at, refreshed_at, \
                   last_error, ok), no secret; a name ending in .prom gets \
                   node_exporter's text format",
            applies: sink_only,
        },
        Flag {
            long: "signal",
            short: None,
            takes: Takes::OneOf("NAME", SIGNALS),
            help: "sink: send this signal after each write (HUP, USR1, USR2, \
                   INT, TERM, QUIT or WINCH) to the process whose pid is in the \
                   --pid-file",
            applies: sink_only,
        },
        Flag {
            long: "pid-file",
            short: None,
            takes: Takes::File("FILE"),
            help: "sink: the file that holds the pid --signal goes to, read \
                   afresh each time",
            applies: sink_only,
        },
        Flag {
            long: "command-timeout",
            short: None,
            takes: Takes::Text("SECS"),
            help: "sink: how long COMMAND may run after a write before it is \
                   killed (default 30, at most 86400)",
            applies: sink_only,
        },
        Flag {
            long: "generate",
            short: None,
            takes: Takes::OneOf(
                "KIND",
                &["man", "complete-bash", "complete-zsh", "complete-fish"],
            ),
            help: "print the man page or a completion script: man, \
                   complete-bash, complete-zsh or complete-fish",
            applies: every,
        },
        Flag {
            long: "help",
            short: Some('h'),
            takes: Takes::Nothing,
            help: "print this help",
            applies: every,
        },
        Flag {
            long: "version",
            short: Some('V'),
            takes: Takes::Nothing,
            help: "print the version",
            applies: every,
        },
    ];

    #[derive(Debug)]
    pub(crate) struct Options {
        pub(crate) command: Command,
        pub(crate) credentials: Option<String>,
        pub(crate) credential: Option<String>,
        pub(crate) ims: Option<String>,
        pub(crate) format: Format,
        pub(crate) lifetime: Option<u64>,
        pub(crate) scope: Option<String>,
        /// `--org-id`: the `org_id` asked of IMS.
        pub(crate) org_id: Option<String>,
        /// `--resource`, in order.
        pub(crate) resources: Vec<String>,
        pub(crate) timeout: Option<Duration>,
        pub(crate) connect_timeout: Option<Duration>,
        pub(crate) retries: Option<u32>,
        pub(crate) ca_file: Option<PathBuf>,
        pub(crate) cache: Option<PathBuf>,
        pub(crate) refresh_margin: u64,
        /// `exec`: COMMAND and its arguments, as given.
        pub(crate) exec: Vec<OsString>,
        /// `sink`: the file kept fresh.
        pub(crate) out: Option<PathBuf>,
        pub(crate) mode: u32,
        pub(crate) owner: Owner,
        pub(crate) once: bool,
        pub(crate) status_file: Option<PathBuf>,
        pub(crate) signal: Option<String>,
        pub(crate) pid_file: Option<PathBuf>,
        pub(crate) command_timeout: u64,
        /// `sink`: the command run after each write, as given.
        pub(crate) then: Vec<OsString>,
    }

    impl Default for Options {
        fn default() -> Self {
            Options {
                command: Command::Token,
                credentials: None,
                credential: None,
                ims: None,
                format: Format::Token,
                lifetime: None,
                scope: None,
                org_id: None,
                resources: Vec::new(),
                timeout: None,
                connect_timeout: None,
                retries: None,
                ca_file: None,
                cache: None,
                refresh_margin: ims_token::DEFAULT_REFRESH_MARGIN.as_secs(),
                exec: Vec::new(),
                out: None,
                mode: 0o600,
                owner: Owner::default(),
                once: false,
                status_file: None,
                signal: None,
                pid_file: None,
                command_timeout: 30,
                then: Vec::new(),
            }
        }
    }

    /// One argument as the lexer splits it.
    #[derive(Debug, PartialEq, Eq)]
    enum Arg {
        /// `--name`, `--name=value` or `-x`: the name as written, and what
        /// came after its `=`.
        Flag {
            name: String,
            inline: Option<String>,
        },
        /// Anything else, `-` included: a command word, or a stray.
        Word(String),
        /// What follows `--`, untouched (UTF-8 or not).
        Rest(Vec<OsString>),
    }

    /// Splits the arguments (lexopt's split: the lexer knows no flag, the
    /// matcher no syntax). Every argument it reads must be UTF-8, but for
    /// the ones after `--`.
    struct Lexer<I> {
        args: I,
    }

    impl<I: Iterator<Item = OsString>> Lexer<I> {
        fn next(&mut self) -> Result<Option<Arg>, Failure> {
            let Some(arg) = self.args.next() else {
                return Ok(None);
            };
            if arg == "--" {
                return Ok(Some(Arg::Rest(self.args.by_ref().collect())));
            }
            let arg = utf8(arg)?;
            if arg.len() < 2 || !arg.starts_with('-') {
                return Ok(Some(Arg::Word(arg)));
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => {
                    (name.to_owned(), Some(value.to_owned()))
                }
                _ => (arg, None),
            };
            Ok(Some(Arg::Flag { name, inline }))
        }

        /// The value of flag `name`: what came after its `=`, else the next
        /// argument, whatever it is (`-c -` reads stdin).
        fn value(&mut self, name: &str, inline: Option<String>) -> Result<String, Failure> {
            match inline {
                Some(value) => Ok(value),
                None => match self.args.next() {
                    Some(value) => utf8(value),
                    None => Err(usage(format!("{name} needs a value"))),
                },
            }
        }
    }

    fn utf8(arg: OsString) -> Result<String, Failure> {
        arg.into_string()
            .map_err(|_| usage("arguments must be UTF-8"))
    }

    pub(crate) fn parse_args(args: impl Iterator<Item = OsString>) -> Result<Options, Failure> {
        let mut options = Options::default();
        let mut lexer = Lexer { args };
        // The command word, and what --help, --version or --generate ask for
        // instead (the last of them wins, and wins over the word).
        let mut word = None;
        let mut action = None;
        let mut given = Vec::new();
        while let Some(arg) = lexer.next()? {
            match arg {
                Arg::Flag { name, inline } => {
                    let Some(flag) = FLAGS.iter().find(|f| f.is_named(&name)) else {
                        return Err(stray(&name, word, "unknown option"));
                    };
                    let value = match (flag.takes, inline) {
                        (Takes::Nothing, Some(_)) => {
                            return Err(usage(format!("{name} takes no value")))
                        }
                        (Takes::Nothing, None) => String::new(),
                        (_, inline) => lexer.value(&name, inline)?,
                    };
                    action = apply(&mut options, flag, &name, value)?.or(action);
                    given.push((flag, name));
                }
                Arg::Word(text) => match command_named(&text) {
                    Some(command) if word.is_none() => word = Some(command),
                    _ => match word.filter(|w| w.reads_token()) {
                        Some(command) => return Err(token_in_argument(command)),
                        None => return Err(stray(&text, word, "unexpected argument")),
                    },
                },
                Arg::Rest(rest) if word == Some(Command::Exec) => options.exec = rest,
                Arg::Rest(rest) if word == Some(Command::Sink) => options.then = rest,
                Arg::Rest(_) => {
                    return Err(usage(
                        "unexpected '--': only exec and sink take a command after it",
                    ))
                }
            }
        }
        options.command = action.or(word).unwrap_or(Command::Token);
        check_command(&options, &given)?;
        Ok(options)
    }

    /// Sets what one flag of [`FLAGS`] says (`name` as written, `value`
    /// empty for a switch); returns what a flag asks to do instead of a
    /// command.
    fn apply(
        options: &mut Options,
        flag: &Flag,
        name: &str,
        value: String,
    ) -> Result<Option<Command>, Failure> {
        match flag.long {
            "credentials" => options.credentials = Some(non_empty(name, value)?),
            "credential" => options.credential = Some(non_empty(name, value)?),
            "ims" => options.ims = Some(endpoint(name, value)?),
            "format" => options.format = one_of(flag, name, &value, Format::from_word)?,
            "lifetime" => options.lifetime = Some(seconds(name, &value)?),
            "scope" => options.scope = Some(list(name, value)?),
            "org-id" => options.org_id = Some(non_empty(name, value)?),
            "resource" => options.resources.push(non_empty(name, value)?),
            "timeout" => options.timeout = Some(timeout(name, &value)?),
            "connect-timeout" => options.connect_timeout = Some(timeout(name, &value)?),
            "retries" => options.retries = Some(retries(name, &value)?),
            "ca-file" => options.ca_file = Some(non_empty(name, value)?.into()),
            "cache" => options.cache = Some(non_empty(name, value)?.into()),
            "refresh-margin" => options.refresh_margin = number(name, &value)?,
            "out" => options.out = Some(non_empty(name, value)?.into()),
            "mode" => options.mode = file_mode(name, &value)?,
            "owner" => options.owner = owner(name, &value)?,
            "once" => options.once = true,
            "status-file" => options.status_file = Some(non_empty(name, value)?.into()),
            "signal" => options.signal = Some(one_of(flag, name, &value, signal_word)?),
            "pid-file" => options.pid_file = Some(non_empty(name, value)?.into()),
            "command-timeout" => options.command_timeout = seconds(name, &value)?,
            "generate" => {
                let what = one_of(flag, name, &value, Generated::from_word)?;
                return Ok(Some(Command::Generate(what)));
            }
            "help" => return Ok(Some(Command::Help)),
            "version" => return Ok(Some(Command::Version)),
            // A flag of the table without its arm: a unit test finds it.
            _ => return Err(usage(format!("{name} is not handled"))),
        }
        Ok(None)
    }

    /// The command a word names; `help` is `--help`.
    fn command_named(word: &str) -> Option<Command> {
        match COMMANDS.iter().find(|c| c.name == word) {
            Some(spec) => Some(spec.command),
            None => (word == "help").then_some(Command::Help),
        }
    }

    fn synopsis(command: Command) -> &'static str {
        COMMANDS
            .iter()
            .find(|c| c.command == command)
            .map_or("", |c| c.synopsis)
    }

    /// What a word or option the command line does not take is told; after
    /// exec, that COMMAND goes after '--'. A long word is not quoted: it may
    /// be a token or a secret.
    fn stray(text: &str, word: Option<Command>, what: &str) -> Failure {
        let shown = quoted(text);
        if word == Some(Command::Exec) {
            return usage(format!(
                "unexpected {shown}: give the command after '--' (ims-token {})",
                synopsis(Command::Exec)
            ));
        }
        usage(format!("{what} {shown}"))
    }

    /// Longest argument quoted in a usage error: shorter than a client
    /// secret (36 characters with its `p8e-`) or a token.
    const MAX_QUOTED: usize = 24;

    /// An argument as every usage error quotes it: `'…'`, escaped as Rust's
    /// `{:?}` escapes (a control character, line separator or bidi control
    /// cannot reach the terminal, and the message stays one line); an
    /// argument longer than [`MAX_QUOTED`] only by its length (it may be a
    /// secret or a token pasted in the wrong place).
    fn quoted(text: &str) -> String {
        let count = text.chars().count();
        if count <= MAX_QUOTED {
            format!("'{}'", text.escape_debug())
        } else {
            format!("({count} characters, not shown)")
        }
    }

    /// A word after a command that reads the token on stdin: most likely
    /// the token, which an argument shows to `ps`. Never quoted.
    fn token_in_argument(command: Command) -> Failure {
        let name = COMMANDS
            .iter()
            .find(|c| c.command == command)
            .map_or("", |c| c.name);
        usage(format!(
            "{name} takes no argument: pass the token on stdin, where ps cannot see it \
             (ims-token {})",
            synopsis(command)
        ))
    }

    /// The command line as a whole: every flag applies to the command, and
    /// exec has a COMMAND. (Help, version and generate ignore the rest.)
    fn check_command(options: &Options, given: &[(&Flag, String)]) -> Result<(), Failure> {
        let Some(spec) = COMMANDS.iter().find(|c| c.command == options.command) else {
            return Ok(());
        };
        if let Some((_, name)) = given.iter().find(|(f, _)| !(f.applies)(spec.command)) {
            return Err(usage(format!("{name} does not apply to {}", spec.name)));
        }
        if options.cache.is_none() {
            let cache_only = given.iter().find(|(f, _)| only_with_cache(f, spec.command));
            if let Some((_, name)) = cache_only {
                return Err(usage(format!(
                    "{name} applies to {} with --cache only",
                    spec.name
                )));
            }
        }
        if spec.command == Command::Exec && options.exec.is_empty() {
            return Err(usage(format!(
                "exec needs a command after '--' (ims-token {})",
                spec.synopsis
            )));
        }
        if spec.command == Command::Invalidate && options.cache.is_none() {
            return Err(usage(format!(
                "invalidate needs --cache: it drops the token from the cache, and \
                 without one there is nothing to invalidate (ims-token {})",
                spec.synopsis
            )));
        }
        if let Some((_, name)) = given.iter().find(|(f, _)| f.long == "format") {
            check_format(options.format, spec, name)?;
        }
        if spec.command.reads_token() {
            check_token_command(options, spec)?;
        }
        if spec.command == Command::Sink {
            check_sink(options)?;
        }
        Ok(())
    }

    /// Whether `flag` does something for `command` only with `--cache`: the
    /// refresh margin of a token run, and what names the cached token for
    /// revoke (which sends none of it to IMS).
    fn only_with_cache(flag: &Flag, command: Command) -> bool {
        match flag.long {
            "refresh-margin" => matches!(command, Command::Token | Command::Exec),
            "scope" | "org-id" | "resource" => command == Command::Revoke,
            _ => false,
        }
    }

    /// decode and validate print text or JSON; the other commands that
    /// take `--format` (`name` as written) print a token, in any format but
    /// text.
    fn check_format(format: Format, spec: &CommandSpec, name: &str) -> Result<(), Failure> {
        if format.is_for(spec.command) {
            return Ok(());
        }
        Err(usage(match format {
            Format::Text => format!("{name} text is for decode and validate, not {}", spec.name),
            _ => format!(
                "{} prints {name} text (the default) or json, not {}",
                spec.name,
                format.word()
            ),
        }))
    }

    /// The token is on stdin, so the credentials are not.
    fn check_token_command(options: &Options, spec: &CommandSpec) -> Result<(), Failure> {
        if options.credentials.as_deref() == Some("-") {
            return Err(usage(format!(
                "{} reads the token on stdin: give the credentials as a file, not '-'",
                spec.name
            )));
        }
        Ok(())
    }

    /// The sink has a FILE, a pid file for its signal (and a signal for its
    /// pid file), and writes its status elsewhere than FILE.
    fn check_sink(options: &Options) -> Result<(), Failure> {
        let Some(out) = &options.out else {
            return Err(usage(format!(
                "sink needs --out FILE (ims-token {})",
                synopsis(Command::Sink)
            )));
        };
        match (&options.signal, &options.pid_file) {
            (Some(_), None) => return Err(usage("--signal needs --pid-file FILE")),
            (None, Some(_)) => return Err(usage("--pid-file needs --signal NAME")),
            _ => {}
        }
        if options.status_file.as_ref() == Some(out) {
            return Err(usage("--status-file must be another file than --out"));
        }
        Ok(())
    }

    /// A file mode in octal, such as 0640: read and execute bits only for the
    /// group and others (nobody else may write a token file).
    fn file_mode(flag: &str, text: &str) -> Result<u32, Failure> {
        let mode = u32::from_str_radix(text.trim(), 8).map_err(|_| {
            usage(format!(
                "{flag} needs an octal mode such as 0640, not {}",
                quoted(text)
            ))
        })?;
        if mode > 0o777 || mode & 0o022 != 0 {
            return Err(usage(format!(
                "{flag} must be at most 0777 and not let the group or others write ({})",
                quoted(text)
            )));
        }
        Ok(mode)
    }

    /// `UID`, `UID:GID` or `:GID`, by number.
    fn owner(flag: &str, text: &str) -> Result<Owner, Failure> {
        let (uid, gid) = text.split_once(':').unwrap_or((text, ""));
        let id = |part: &str| -> Result<Option<u32>, Failure> {
            match part {
                "" => Ok(None),
                _ => part.parse().map(Some).map_err(|_| {
                    usage(format!(
                        "{flag} takes numbers, UID[:GID], not {} (id -u NAME tells a user's)",
                        quoted(text)
                    ))
                }),
            }
        };
        let owner = Owner {
            uid: id(uid)?,
            gid: id(gid)?,
        };
        if owner == Owner::default() {
            return Err(usage(format!("{flag} needs UID[:GID]")));
        }
        Ok(owner)
    }

    /// The word of a [`Takes::OneOf`] flag, as `from_word` reads it.
    fn one_of<T>(
        flag: &Flag,
        name: &str,
        value: &str,
        from_word: fn(&str) -> Option<T>,
    ) -> Result<T, Failure> {
        let words = match flag.takes {
            Takes::OneOf(_, words) => words,
            _ => &[],
        };
        from_word(value)
            .filter(|_| words.contains(&value))
            .ok_or_else(|| {
                usage(format!(
                    "{name} must be {}, not {}",
                    alternatives(words),
                    quoted(value)
                ))
            })
    }

    /// `a, b or c`.
    fn alternatives(words: &[&str]) -> String {
        match words.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// A value that must not be empty, such as a file name.
    fn non_empty(flag: &str, value: String) -> Result<String, Failure> {
        if value.is_empty() {
            return Err(usage(format!("{flag} needs a non-empty value")));
        }
        Ok(value)
    }

    /// An IMS endpoint as the library reads it (checked here, so that a bad
    /// one is a usage error before any file is read).
    fn endpoint(flag: &str, value: String) -> Result<String, Failure> {
        match ims_token::Endpoint::parse(&value) {
            Ok(_) => Ok(value),
            Err(e) => Err(usage(format!("{flag}: {}", chain(&e)))),
        }
    }

    /// A comma-separated list with an entry that is not blank (the library
    /// trims the entries and drops empty ones).
    fn list(flag: &str, value: String) -> Result<String, Failure> {
        if value.split(',').all(|entry| entry.trim().is_empty()) {
            return Err(usage(format!(
                "{flag} needs at least one scope (a comma-separated list)"
            )));
        }
        Ok(value)
    }

    fn retries(flag: &str, text: &str) -> Result<u32, Failure> {
        match number(flag, text)? {
            n @ 0..=MAX_RETRIES => Ok(n),
            _ => Err(usage(format!("{flag} must be between 0 and {MAX_RETRIES}"))),
        }
    }

    /// A number of whole seconds (the JWT lifetime) from 1 to a day.
    fn seconds(flag: &str, text: &str) -> Result<u64, Failure> {
        match number(flag, text)? {
            secs @ 1..=86_400 => Ok(secs),
            _ => Err(usage(format!("{flag} must be between 1 and 86400 seconds"))),
        }
    }

    /// A timeout in seconds, fractions allowed as in curl's `--max-time`
    /// (`0.5`), from 1 ms to a day: zero would fail every call at once, and
    /// a huge one would overflow the deadline arithmetic.
    fn timeout(flag: &str, text: &str) -> Result<Duration, Failure> {
        let Some(timeout) = decimal_seconds(text.trim()) else {
            return Err(usage(format!(
                "{flag} needs a number of seconds (such as 30 or 0.5), not {}",
                quoted(text)
            )));
        };
        if timeout < Duration::from_millis(1) || timeout > Duration::from_secs(86_400) {
            return Err(usage(format!(
                "{flag} must be between 0.001 and 86400 seconds"
            )));
        }
        Ok(timeout)
    }

    /// `30`, `0.5` or `1.25` seconds (digits, and after a dot at most nine
    /// more); a number too large for a `Duration` is `Duration::MAX`. `None`
    /// for anything else: a sign, an exponent, `.5`, `inf`.
    fn decimal_seconds(text: &str) -> Option<Duration> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
        if !digits(whole) || !digits(fraction) || fraction.len() > 9 {
            return None;
        }
        let Ok(secs) = whole.parse::<u64>() else {
            return Some(Duration::MAX);
        };
        // Nine digits or fewer, padded to nanoseconds: below 10^9, fits a u32.
        let nanos = format!("{fraction:0<9}").parse::<u32>().ok()?;
        Some(Duration::new(secs, nanos))
    }

    fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, Failure> {
        text.trim()
            .parse()
            .map_err(|_| usage(format!("{flag} needs a whole number, not {}", quoted(text))))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn parse(args: &[&str]) -> Result<Options, Failure> {
            parse_args(args.iter().map(OsString::from))
        }

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
                let r = parse(bad);
                assert!(matches!(r, Err(Failure::Usage(_))), "{bad:?}: {r:?}");
            }
            let m = parse(&["exec", "--format", "json", "--", "true"])
                .unwrap_err()
                .describe();
            assert!(m.starts_with("--format does not apply to exec"), "{m}");
            let m = parse(&["exec", "curl"]).unwrap_err().describe();
            assert!(m.contains("give the command after '--'"), "{m}");
        }

        #[test]
        fn args_parse_commands_and_values() {
            let o = parse(&["jwt", "-c", "x.json", "--lifetime=60", "--scope", "a"]).unwrap();
            assert_eq!(o.command, Command::Jwt);
            assert_eq!(o.credentials.as_deref(), Some("x.json"));
            assert_eq!(o.lifetime, Some(60));
            assert_eq!(o.scope.as_deref(), Some("a"));
            assert_eq!(parse(&["--format", "json"]).unwrap().format, Format::Json);
            assert!(matches!(
                parse(&["--lifetime", "soon"]),
                Err(Failure::Usage(_))
            ));
            assert!(matches!(parse(&["-c"]), Err(Failure::Usage(_))));
            // A value is the next argument, whatever it looks like.
            let o = parse(&["-c", "-", "--ims", "--format"]).unwrap();
            assert_eq!(o.credentials.as_deref(), Some("-"));
            assert_eq!(o.ims.as_deref(), Some("--format"));
        }

        #[test]
        fn timeouts_take_fractions_of_a_second_from_1_ms_to_a_day() {
            let o = parse(&["--timeout", "0.25", "--connect-timeout=2"]).unwrap();
            assert_eq!(o.timeout, Some(Duration::from_millis(250)));
            assert_eq!(o.connect_timeout, Some(Duration::from_secs(2)));
            for (text, ms) in [
                ("86400", 86_400_000),
                ("0.001", 1),
                ("1.5", 1500),
                (" 007.100", 7100),
            ] {
                let o = parse(&["--timeout", text]).unwrap();
                assert_eq!(o.timeout, Some(Duration::from_millis(ms)), "{text}");
            }
            let o = parse(&["--timeout", "0.123456789"]).unwrap();
            assert_eq!(o.timeout, Some(Duration::new(0, 123_456_789)));
            let usage_of = |text: &str| match parse(&["--connect-timeout", text]) {
                Err(Failure::Usage(m)) => m,
                other => panic!("{text}: {other:?}"),
            };
            for out_of_range in ["0", "0.0", "0.0009", "86400.001", "18446744073709551616"] {
                let m = usage_of(out_of_range);
                assert_eq!(
                    m, "--connect-timeout must be between 0.001 and 86400 seconds",
                    "{out_of_range}"
                );
            }
            for not_a_number in [
                "-1",
                ".5",
                "1.",
                "1e3",
                "inf",
                "NaN",
                "0x10",
                "1,5",
                "1.0000000001",
                "",
            ] {
                let m = usage_of(not_a_number);
                assert!(
                    m.contains("needs a number of seconds"),
                    "{not_a_number}: {m}"
                );
            }
        }

        #[test]
        fn endpoints_scopes_and_credential_names_are_checked_when_read() {
            let usage_of = |args: &[&str]| match parse(args) {
                Err(Failure::Usage(m)) => m,
                other => panic!("{args:?}: {other:?}"),
            };
            for (ims, says) in [
                (
                    "ftp://x",
                    "--ims: the IMS endpoint has scheme `ftp`; use https",
                ),
                (
                    "http://example.com",
                    "--ims: the IMS endpoint `example.com` uses plain http",
                ),
                ("https://ims.example/path", "--ims: "),
                ("", "--ims: the IMS endpoint is empty"),
            ] {
                let m = usage_of(&["--ims", ims]);
                assert!(m.starts_with(says), "{ims}: {m}");
            }
            for scope in [",", "", " ,, "] {
                let m = usage_of(&["jwt", "--scope", scope]);
                assert!(m.starts_with("--scope needs at least one scope"), "{m}");
            }
            let m = usage_of(&["--credential="]);
            assert!(m.starts_with("--credential needs a non-empty value"), "{m}");
            let o = parse(&["--ims", "http://[::1]:8080", "--scope", ",a ,"]).unwrap();
            assert_eq!(o.ims.as_deref(), Some("http://[::1]:8080"));
            assert_eq!(o.scope.as_deref(), Some(",a ,"));
        }

        #[test]
        fn decode_validate_and_revoke_take_the_token_on_stdin_only() {
            let token = "eyJhbGciOiJSUzI1NiJ9.eyJ0eXBlIjoiYWNjZXNzX3Rva2VuIn0.c2lnbmF0dXJl";
            for command in ["decode", "validate", "revoke"] {
                for args in [
                    vec![command, token],
                    vec![command, "-c", "x.json", token],
                    vec![command, "short"],
                ] {
                    let failure = parse(&args).unwrap_err();
                    assert_eq!(failure.exit_code(), 2);
                    let m = failure.describe();
                    assert!(m.contains("pass the token on stdin"), "{m}");
                    assert!(!m.contains(token) && !m.contains("short"), "{m}");
                }
                assert_eq!(
                    parse(&[command]).unwrap().command,
                    command_named(command).unwrap()
                );
            }
            for command in ["validate", "revoke"] {
                let m = parse(&[command, "-c", "-"]).unwrap_err().describe();
                assert!(m.contains("give the credentials as a file"), "{m}");
            }
            // Before the command word, a long word is not quoted either.
            let m = parse(&[token, "decode"]).unwrap_err().describe();
            assert!(
                m.starts_with("unexpected argument (65 characters, not shown)"),
                "{m}"
            );
            let m = parse(&["decod"]).unwrap_err().describe();
            assert!(m.starts_with("unexpected argument 'decod'"), "{m}");
        }

        #[test]
        fn invalidate_needs_a_cache_and_takes_the_token_on_stdin_only() {
            let token = "eyJhbGciOiJSUzI1NiJ9.eyJ0eXBlIjoiYWNjZXNzX3Rva2VuIn0.c2lnbmF0dXJl";
            let usage_of = |args: &[&str]| match parse(args) {
                Err(failure @ Failure::Usage(_)) => failure.describe(),
                other => panic!("{args:?}: {other:?}"),
            };
            for args in [
                &["invalidate", "--cache", "d/", token][..],
                &["invalidate", token, "--cache", "d/"],
                &["invalidate", token],
            ] {
                let m = usage_of(args);
                assert!(m.contains("invalidate takes no argument"), "{m}");
                assert!(
                    m.contains("pass the token on stdin") && !m.contains(token),
                    "{m}"
                );
            }
            let m = usage_of(&["invalidate", "-c", "x.json"]);
            assert!(m.starts_with("invalidate needs --cache"), "{m}");
            let m = usage_of(&["invalidate", "-c", "-", "--cache", "d/"]);
            assert!(m.contains("give the credentials as a file"), "{m}");
            // The options that name the cached token, and the network's (for
            // how long to wait on the cache's lock); not what makes a token.
            let o = parse(&[
                "invalidate",
                "-c",
                "x.json",
                "--cache",
                "d/",
                "--scope",
                "a",
                "--org-id",
                "A@AdobeOrg",
                "--resource",
                "urn:x",
                "--ims",
                "localhost",
                "--timeout",
                "5",
            ])
            .unwrap();
            assert_eq!(o.command, Command::Invalidate);
            assert_eq!(o.cache.as_deref(), Some(std::path::Path::new("d/")));
            for (flag, value) in [
                ("--format", "json"),
                ("--lifetime", "60"),
                ("--refresh-margin", "60"),
            ] {
                let m = usage_of(&["invalidate", "--cache", "d/", flag, value]);
                assert!(
                    m.starts_with(&format!("{flag} does not apply to invalidate")),
                    "{m}"
                );
            }
        }

        #[test]
        fn decode_and_validate_print_text_or_json_and_take_their_own_flags() {
            assert_eq!(
                parse(&["decode", "--format", "json"]).unwrap().format,
                Format::Json
            );
            assert_eq!(
                parse(&["validate", "--format=json"]).unwrap().format,
                Format::Json
            );
            for bad in [
                &["decode", "--format", "token"][..],
                &["validate", "--format", "headers"],
                &["revoke", "--format", "json"],
                &["decode", "-c", "x.json"],
                &["decode", "--ims", "localhost"],
                &["validate", "--cache", "f"],
                &["validate", "--org-id", "o"],
                &["revoke", "--lifetime", "60"],
                &["jwt", "--resource", "urn:x"],
            ] {
                let r = parse(bad);
                assert!(matches!(r, Err(Failure::Usage(_))), "{bad:?}: {r:?}");
            }
            let m = parse(&["decode", "--format", "token"])
                .unwrap_err()
                .describe();
            assert!(
                m.starts_with("decode prints --format text (the default) or json, not token"),
                "{m}"
            );
            let o = parse(&[
                "revoke",
                "-c",
                "x.json",
                "--cache",
                "f",
                "--org-id",
                "A@AdobeOrg",
            ]);
            assert_eq!(o.unwrap().org_id.as_deref(), Some("A@AdobeOrg"));
        }

        #[test]
        fn format_text_is_for_decode_and_validate_only() {
            for args in [
                &["decode", "--format", "text"][..],
                &["validate", "--format=text"],
            ] {
                assert_eq!(parse(args).unwrap().format, Format::Text, "{args:?}");
            }
            for args in [
                &["--format", "text"][..],
                &["token", "--format=text"],
                &["sink", "--out", "t", "--format", "text"],
            ] {
                let m = parse(args).unwrap_err().describe();
                assert!(
                    m.starts_with("--format text is for decode and validate"),
                    "{args:?}: {m}"
                );
            }
        }

        /// What each flag does for each command, written out here apart
        /// from the table's `applies`: a flag a command would ignore is a
        /// usage error, never accepted silently.
        #[test]
        fn every_flag_applies_exactly_where_it_does_something() {
            let all: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
            const READS_CREDENTIALS: &[&str] = &[
                "token",
                "exec",
                "jwt",
                "inspect",
                "validate",
                "revoke",
                "sink",
                "invalidate",
            ];
            const SINK: &[&str] = &["sink"];
            const ASKS_OAUTH: &[&str] = &["token", "exec", "revoke", "sink", "invalidate"];
            const NETWORK: &[&str] = &["token", "exec", "validate", "revoke", "sink"];
            // invalidate waits on the cache's lock for as long as a fetch can
            // take, by the timeout and the retries.
            const WAITS: &[&str] = &["token", "exec", "validate", "revoke", "sink", "invalidate"];
            let scope = [
                "token",
                "exec",
                "jwt",
                "inspect",
                "revoke",
                "sink",
                "invalidate",
            ];
            // Where it applies, and a value it takes.
            let expected: &[(&str, &[&str], &str)] = &[
                ("credentials", READS_CREDENTIALS, "x.json"),
                ("credential", READS_CREDENTIALS, "n"),
                ("ims", READS_CREDENTIALS, "localhost"),
                ("format", &["token", "decode", "validate", "sink"], "json"),
                ("lifetime", &["token", "exec", "jwt", "sink"], "60"),
                ("scope", &scope, "a"),
                ("org-id", ASKS_OAUTH, "o"),
                ("resource", ASKS_OAUTH, "urn:x"),
                ("timeout", WAITS, "5"),
                ("retries", WAITS, "1"),
                ("connect-timeout", NETWORK, "5"),
                ("ca-file", NETWORK, "ca.pem"),
                ("cache", &["token", "exec", "revoke", "invalidate"], "c"),
                ("refresh-margin", &["token", "exec", "sink"], "60"),
                ("out", SINK, "t"),
                ("mode", SINK, "0640"),
                ("owner", SINK, "1000"),
                ("once", SINK, ""),
                ("status-file", SINK, "s"),
                ("signal", SINK, "HUP"),
                ("pid-file", SINK, "p"),
                ("command-timeout", SINK, "5"),
                ("generate", &all, "man"),
                ("help", &all, ""),
                ("version", &all, ""),
            ];
            assert_eq!(expected.len(), FLAGS.len());
            for flag in FLAGS {
                let (_, applies, value) = expected
                    .iter()
                    .find(|(long, ..)| *long == flag.long)
                    .unwrap_or_else(|| panic!("--{} has no row", flag.long));
                for spec in COMMANDS {
                    // What the command needs besides, so that only the flag
                    // can make the line wrong.
                    let mut args = vec![spec.name];
                    args.extend(match spec.command {
                        Command::Token | Command::Revoke | Command::Invalidate => {
                            &["--cache", "c"][..]
                        }
                        Command::Sink => &["--out", "t", "--signal", "HUP", "--pid-file", "p"],
                        _ => &[],
                    });
                    let name = format!("--{}", flag.long);
                    args.push(&name);
                    if flag.takes.name().is_some() {
                        args.push(value);
                    }
                    if spec.command == Command::Exec {
                        args.extend(["--cache", "c", "--", "true"]);
                    }
                    let result = parse(&args);
                    if applies.contains(&spec.name) {
                        assert!(result.is_ok(), "{args:?}: {result:?}");
                    } else {
                        let Err(failure) = result else {
                            panic!("{args:?} is accepted");
                        };
                        let m = failure.describe();
                        let says = format!("{name} does not apply to {}", spec.name);
                        assert!(m.starts_with(&says), "{args:?}: {m}");
                    }
                }
            }
        }

        #[test]
        fn flags_that_name_the_cached_token_need_a_cache() {
            for (args, says) in [
                (
                    &["--refresh-margin", "60"][..],
                    "--refresh-margin applies to token with --cache only",
                ),
                (
                    &["exec", "--refresh-margin=60", "--", "true"],
                    "--refresh-margin applies to exec with --cache only",
                ),
                (
                    &["revoke", "--scope", "a"],
                    "--scope applies to revoke with --cache only",
                ),
                (
                    &["revoke", "--org-id", "o"],
                    "--org-id applies to revoke with --cache only",
                ),
                (
                    &["revoke", "--resource", "urn:x"],
                    "--resource applies to revoke with --cache only",
                ),
            ] {
                let m = parse(args).unwrap_err().describe();
                assert!(m.starts_with(says), "{args:?}: {m}");
                let mut cached = args.to_vec();
                cached.splice(0..0, ["--cache", "c"]);
                assert!(parse(&cached).is_ok(), "{cached:?}");
            }
            let o = parse(&["sink", "--out", "t", "--refresh-margin", "60"]).unwrap();
            assert_eq!(o.refresh_margin, 60);
        }

        /// Every value a usage error quotes goes through one rule: escaped
        /// (no escape sequence or line break reaches the terminal) and only
        /// when short (a client secret or a token pasted into the wrong
        /// place is never shown).
        #[test]
        fn usage_errors_quote_values_escaped_and_short_values_only() {
            // The length of an Adobe client secret: p8e- and 32 more.
            let secret = "p8e-0123456789abcdefABCDEFGHIJ012345";
            assert_eq!(secret.len(), 36);
            let hostile = "x\u{1b}]0;t\u{7}\u{202e}\n";
            let valued = [
                "--timeout",
                "--connect-timeout",
                "--retries",
                "--lifetime",
                "--refresh-margin",
                "--command-timeout",
                "--format",
                "--signal",
                "--generate",
                "--mode",
                "--owner",
            ];
            for value in [secret, hostile] {
                let mut lines: Vec<Vec<String>> = valued
                    .iter()
                    .map(|flag| vec![flag.to_string(), value.to_owned()])
                    .collect();
                lines.push(vec![value.to_owned()]);
                lines.push(vec![format!("-{value}")]);
                lines.push(vec!["exec".into(), value.to_owned()]);
                for args in lines {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let m = parse(&args).unwrap_err().describe();
                    assert!(!m.contains(secret), "{args:?}: {m}");
                    let shown = ims_token::printable_line(&m);
                    assert_eq!(shown, m, "{args:?}: {m:?}");
                    if value == secret {
                        assert!(m.contains("characters, not shown"), "{args:?}: {m}");
                    } else {
                        assert!(m.contains(r"x\u{1b}]0;t\u{7}"), "{args:?}: {m}");
                    }
                }
            }
        }

        #[test]
        fn org_id_and_resources_are_kept_in_order() {
            let o = parse(&[
                "--org-id",
                "A@AdobeOrg",
                "--resource",
                "urn:a",
                "--resource=urn:b",
            ])
            .unwrap();
            assert_eq!(o.org_id.as_deref(), Some("A@AdobeOrg"));
            assert_eq!(o.resources, ["urn:a", "urn:b"]);
            for bad in [&["--org-id", ""][..], &["--resource="], &["--resource"]] {
                assert!(matches!(parse(bad), Err(Failure::Usage(_))), "{bad:?}");
            }
        }

        #[test]
        fn help_version_and_generate_win_the_last_one_first() {
            let command = |args: &[&str]| parse(args).unwrap().command;
            assert_eq!(command(&["jwt", "--help"]), Command::Help);
            assert_eq!(command(&["help"]), Command::Help);
            assert_eq!(command(&["help", "--version"]), Command::Version);
            assert_eq!(command(&["--version", "help"]), Command::Version);
            assert_eq!(command(&["-V", "-h"]), Command::Help);
            assert_eq!(
                command(&["exec", "--generate=complete-zsh"]),
                Command::Generate(Generated::Zsh)
            );
            for bad in [
                &["--help=yes"][..],
                &["--generate", "pdf"],
                &["help", "jwt"],
            ] {
                assert!(matches!(parse(bad), Err(Failure::Usage(_))), "{bad:?}");
            }
            let m = parse(&["--help=yes"]).unwrap_err().describe();
            assert!(m.starts_with("--help takes no value"), "{m}");
            let m = parse(&["--generate", "pdf"]).unwrap_err().describe();
            assert!(
                m.contains("man, complete-bash, complete-zsh or complete-fish, not 'pdf'"),
                "{m}"
            );
        }

        #[test]
        fn the_lexer_splits_flags_values_words_and_the_rest() {
            use std::os::unix::ffi::OsStringExt as _;
            let raw = OsString::from_vec(vec![0xff]);
            let args: Vec<OsString> = ["--a=b=c", "-c", "-", "--", "x"]
                .iter()
                .map(OsString::from)
                .chain([raw.clone()])
                .collect();
            let mut lexer = Lexer {
                args: args.into_iter(),
            };
            let flag = |name: &str, inline: Option<&str>| Arg::Flag {
                name: name.into(),
                inline: inline.map(str::to_owned),
            };
            assert_eq!(lexer.next().unwrap(), Some(flag("--a", Some("b=c"))));
            assert_eq!(lexer.next().unwrap(), Some(flag("-c", None)));
            assert_eq!(lexer.next().unwrap(), Some(Arg::Word("-".into())));
            assert_eq!(
                lexer.next().unwrap(),
                Some(Arg::Rest(vec!["x".into(), raw.clone()]))
            );
            assert_eq!(lexer.next().unwrap(), None);
            // Only `--name` has an inline value; a short flag is two characters.
            let mut lexer = Lexer {
                args: ["-c=x", "-cx", "--="].iter().map(OsString::from),
            };
            assert_eq!(lexer.next().unwrap(), Some(flag("-c=x", None)));
            assert_eq!(lexer.next().unwrap(), Some(flag("-cx", None)));
            assert_eq!(lexer.next().unwrap(), Some(flag("--", Some(""))));
            // Before `--`, an argument that is not UTF-8 is a usage error.
            let mut lexer = Lexer {
                args: [raw].into_iter(),
            };
            let m = lexer.next().unwrap_err().describe();
            assert!(m.starts_with("arguments must be UTF-8"), "{m}");
        }

        #[test]
        fn every_flag_of_the_table_is_matched_by_its_names() {
            for flag in FLAGS {
                for name in flag.names() {
                    assert!(flag.is_named(&name), "{name}");
                    let found = FLAGS.iter().filter(|f| f.is_named(&name)).count();
                    assert_eq!(found, 1, "{name} names {found} flags");
                    let mut options = Options::default();
                    let outcome = apply(&mut options, flag, &name, "1".into());
                    if let Err(failure) = outcome {
                        let m = failure.describe();
                        assert!(!m.contains("is not handled"), "{m}");
                    }
                }
            }
        }

        #[test]
        fn every_word_of_a_flag_is_read_and_named_in_its_help() {
            fn check<T: PartialEq + std::fmt::Debug>(long: &str, from: fn(&str) -> Option<T>) {
                let flag = FLAGS.iter().find(|f| f.long == long).unwrap();
                let Takes::OneOf(_, words) = flag.takes else {
                    panic!("--{long} takes no word");
                };
                let read: Vec<T> = words.iter().filter_map(|w| from(w)).collect();
                assert_eq!(read.len(), words.len(), "--{long}: {words:?}");
                for (i, a) in read.iter().enumerate() {
                    assert!(!read[i + 1..].contains(a), "--{long}: {a:?} twice");
                }
                for word in words {
                    assert!(flag.summary().contains(word), "--{long}: {word}");
                }
            }
            check("format", Format::from_word);
            check("generate", Generated::from_word);
            check("signal", signal_word);
            // A word of another flag is refused.
            assert!(matches!(
                parse(&["--format", "man"]),
                Err(Failure::Usage(_))
            ));
        }

        #[test]
        fn args_parse_the_sink_and_its_command() {
            let o = parse(&[
                "sink",
                "--out",
                "t",
                "--mode",
                "0640",
                "--owner",
                "1000:27",
                "--signal",
                "USR1",
                "--pid-file",
                "p",
                "--status-file",
                "s.prom",
                "--once",
                "--format",
                "env",
                "--command-timeout",
                "5",
                "--",
                "systemctl",
                "reload",
                "x",
            ])
            .unwrap();
            assert_eq!(o.command, Command::Sink);
            assert_eq!((o.mode, o.once, o.command_timeout), (0o640, true, 5));
            assert_eq!(
                o.owner,
                Owner {
                    uid: Some(1000),
                    gid: Some(27)
                }
            );
            assert_eq!(o.signal.as_deref(), Some("USR1"));
            assert_eq!(o.format, Format::Env);
            assert_eq!(o.then, ["systemctl", "reload", "x"].map(OsString::from));
            assert_eq!(
                parse(&["sink", "--out=t", "--owner", ":5"])
                    .unwrap()
                    .owner
                    .gid,
                Some(5)
            );
            assert_eq!(parse(&["sink", "--out=t"]).unwrap().mode, 0o600);
            for (bad, says) in [
                (&["sink"][..], "sink needs --out FILE"),
                (
                    &["sink", "--out", "t", "--signal", "HUP"],
                    "--signal needs --pid-file",
                ),
                (
                    &["sink", "--out", "t", "--pid-file", "p"],
                    "--pid-file needs --signal",
                ),
                (
                    &["sink", "--out", "t", "--signal", "KILL", "--pid-file", "p"],
                    "--signal must be",
                ),
                (
                    &["sink", "--out", "t", "--status-file", "t"],
                    "another file than --out",
                ),
                (
                    &["sink", "--out", "t", "--mode", "0660"],
                    "not let the group or others write",
                ),
                (&["sink", "--out", "t", "--mode", "1600"], "at most 0777"),
                (&["sink", "--out", "t", "--mode", "rw"], "octal"),
                (
                    &["sink", "--out", "t", "--owner", "www-data"],
                    "takes numbers",
                ),
                (&["sink", "--out", "t", "--owner", ":"], "needs UID[:GID]"),
                (
                    &["sink", "--out", "t", "--cache", "c"],
                    "--cache does not apply to sink",
                ),
                (&["--out", "t"], "--out does not apply to token"),
                (&["jwt", "--once"], "--once does not apply to jwt"),
                (&["--", "x"], "only exec and sink take a command"),
            ] {
                let m = parse(bad).unwrap_err().describe();
                assert!(m.contains(says), "{bad:?}: {m}");
            }
        }

        /// Property tests of the command line: no panic, and a usage error
        /// (exit 2) for whatever is not a valid command line.
        mod properties {
            use super::*;
            use proptest::prelude::*;
            use std::os::unix::ffi::OsStringExt as _;

            /// Every name of every flag of the table.
            fn flag_names() -> Vec<String> {
                FLAGS.iter().flat_map(Flag::names).collect()
            }

            /// The command words, the words of the flags, and odd ones.
            fn words() -> Vec<String> {
                const ODD: [&str; 16] = [
                    "help",
                    "11",
                    "100000",
                    "-",
                    "--",
                    "---",
                    "=",
                    "--=",
                    "60",
                    "0",
                    "-1",
                    " 5 ",
                    "18446744073709551616",
                    "4294967296",
                    "",
                    "-c=x",
                ];
                let flag_words = FLAGS.iter().flat_map(|f| match f.takes {
                    Takes::OneOf(_, words) => words,
                    _ => &[],
                });
                COMMANDS
                    .iter()
                    .map(|c| c.name)
                    .chain(flag_words.copied())
                    .chain(ODD)
                    .map(str::to_owned)
                    .collect()
            }

            fn arg() -> impl Strategy<Value = OsString> {
                prop_oneof![
                    4 => prop::sample::select(flag_names()).prop_map(OsString::from),
                    3 => prop::sample::select(words()).prop_map(OsString::from),
                    2 => (prop::sample::select(flag_names()), any::<String>())
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
                    let after_dashes = args.iter().skip_while(|a| *a != "--").skip(1);
                    let non_utf8_after = after_dashes.clone().any(|a| a.to_str().is_none());
                    match parse_args(args.clone().into_iter()) {
                        Ok(options) => {
                            // Every argument before `--` was read, so all were UTF-8.
                            prop_assert!(!non_utf8 || non_utf8_after, "{args:?}");
                            let sane = |t: Option<Duration>| {
                                t.is_none_or(|t| t >= Duration::from_millis(1) && t <= Duration::from_secs(86_400))
                            };
                            prop_assert!(sane(options.timeout) && sane(options.connect_timeout));
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

/// `--help`, made from the tables of `args` and the texts here, which the man
/// page shows too.
mod help {
    use crate::args::{Flag, COMMANDS, FLAGS};

    /// What ims-token does: `--help`'s first line and the man page's NAME.
    pub(crate) const ABOUT: &str = "print an Adobe IMS access token";

    /// A piece of the texts below, wrapped where it is shown (a `\n` breaks
    /// the line).
    pub(crate) enum Block {
        /// A paragraph.
        Text(&'static str),
        /// An item of a list.
        Item(&'static str),
        /// Lines shown as they are, such as commands to type.
        Code(&'static str),
    }

    /// The heading of the credentials section, and what it says next to it.
    pub(crate) const CREDENTIALS_TITLE: (&str, &str) = (
        "CREDENTIALS",
        "told apart by their fields; files and stdin up to 1 MiB",
    );

    pub(crate) const CREDENTIALS: &[Block] = &[
        Block::Item(
            "Adobe Developer Console project (project.workspace.details.credentials):\n\
             its OAuth Server-to-Server credential, with the first of its \
             client_secrets, and the second (with a warning) when IMS refuses the \
             first as invalid_client; JWT entries are refused (Adobe ended them: \
             migrate)",
        ),
        Block::Item(
            "AEM service credentials (privateKey): JWT service account (AEM's \
             still use JWT; the Developer Console's ended)",
        ),
        Block::Item("AEM OAuth Server-to-Server (scopes), as downloaded or from the API"),
        Block::Item(
            "AEM local development token (accessToken): printed until it expires \
             (as it is: no exchange, so no network or cache option applies)",
        ),
        Block::Item(
            "Without -c or $IMS_CREDENTIALS, the environment: IMS_CLIENT_ID, \
             IMS_CLIENT_SECRET (or IMS_CLIENT_SECRET_FILE), IMS_ORG_ID and \
             IMS_SCOPES (OAuth Server-to-Server); \
             for a JWT service account IMS_TECHNICAL_ACCOUNT_ID, IMS_METASCOPES and \
             IMS_PRIVATE_KEY (PEM, literal \\n allowed) or IMS_PRIVATE_KEY_FILE \
             instead of IMS_SCOPES; IMS_ENDPOINT is optional",
        ),
    ];

    /// The paragraphs after the credentials (the man page's DESCRIPTION).
    pub(crate) const NOTES: &[&[Block]] = &[
        &[
            Block::Text(
                "exec runs COMMAND in place of ims-token (its exit status, signals \
                 and output are COMMAND's) with IMS_ACCESS_TOKEN, IMS_CLIENT_ID and, \
                 when the credentials carry an org, IMS_ORG_ID set, and \
                 IMS_CREDENTIALS, IMS_CLIENT_SECRET, IMS_CLIENT_SECRET_FILE, \
                 IMS_PRIVATE_KEY and IMS_PRIVATE_KEY_FILE unset (COMMAND gets a \
                 token, not what makes one), so that the token never appears in a \
                 command line:",
            ),
            Block::Code(
                "ims-token --format headers -c creds.json | curl -H @- URL\n\
                 ims-token exec -c creds.json -- ./sync.py  # reads $IMS_ACCESS_TOKEN",
            ),
            Block::Text(
                "Never put the token in an argument ('curl -H \"...$(ims-token)\"'): \
                 ps shows it.",
            ),
        ],
        &[
            Block::Text(
                "decode, validate and revoke read the token on stdin, never from an \
                 argument. decode shows what it says of itself (no credentials, no \
                 network; exit 0 even when it has expired). validate asks IMS, for the \
                 client of the credentials if given, else the one the token names \
                 (exit 4 and IMS's reason when IMS does not accept it). revoke ends it \
                 with the credentials of its client, and with --cache drops it from \
                 that cache so that the next run exchanges:",
            ),
            Block::Code(
                "ims-token decode < token.txt\n\
                 ims-token validate -c creds.json < token.txt\n\
                 ims-token revoke -c creds.json --cache ~/.cache/ims-token < token.txt",
            ),
        ],
        &[
            Block::Text(
                "invalidate is for a script whose API call got 401: it reads the \
                 refused token on stdin and, under the cache's lock, drops it from \
                 --cache (required) if it is the cached one, so that jobs refused \
                 the same token make one new exchange between them. It has the \
                 library's brake: a cached token that replaced an invalidated one \
                 less than 60 s ago is kept, as a new token would be refused too. \
                 Exit 0: dropped, retry once; 7: another run replaced it already, \
                 retry once with the token a run gives now; 6: kept by the brake, \
                 do not retry (check the product profile, x-api-key and the org):",
            ),
            Block::Code(
                "printf %s \"$IMS_ACCESS_TOKEN\" |   # printf is a shell builtin: no argv\n\
                 ims-token invalidate -c creds.json --cache ~/.cache/ims-token/\n\
                 case $? in 0|7) retry once ;; *) give up ;; esac",
            ),
        ],
        &[Block::Text(
            "The proxy comes from https_proxy, HTTPS_PROXY, all_proxy or ALL_PROXY \
             (the first set, as curl reads them for https); HTTP_PROXY is never \
             read (under CGI a client's Proxy: header sets it: httpoxy). Loopback \
             endpoints always go direct, and so do hosts in no_proxy or NO_PROXY, \
             read as curl 7.88+ reads them. With --cache, a token that still works is used (with \
             a warning) when refreshing it fails other than by IMS's refusal \
             (network, IMS 5xx, TLS, proxy), as the library's TokenProvider does; \
             a run that finds another refreshing uses it at once, and runs with \
             no token wait for that refresh and use its outcome. Every option \
             value is checked when the command line is read (exit 2), before any \
             file, and so is an option the command would ignore; whether the credentials have the --credential asked for is \
             known once they are read (exit 3). When this host's clock is more \
             than 30 s off IMS's (its Date header), a warning says so and the JWT \
             is signed on IMS's time; an offset over 7 days is taken for a broken \
             header and not corrected.",
        )],
        &[Block::Text(
            "For cron: --cache DIR (one that exists, or DIR/, made 0700 with its \
             parents, e.g. ~/.cache/ims-token/) keeps a file per credential set. \
             A --cache FILE holds one: credentials sharing it replace each other's \
             token on every run (with a warning); its directory is not made. The \
             refresh margin is exact, with no random spread. The cache file also \
             keeps the last failure's message, for the warning of the runs in the \
             pause after it and, when worth retrying, for the runs waiting on \
             its lock (exit 5). \
             A run can block for minutes: a fetch takes up to --timeout per \
             attempt and waits of up to 20 s (Retry-After) between them, twice \
             for a JWT or a credential with two client secrets, and a run with \
             no token waits for another's refresh that long plus as much again up \
             to 5 s. A closed \
             stdout is exit 1: the token was not delivered (with --cache, it is \
             kept for the next run). A token cached while the clock was ahead is \
             not used. After an API refused the cached token (401), invalidate \
             drops it, and revoke --cache drops the token it revokes; to drop \
             the cached token otherwise, pipe it to invalidate ('ims-token \
             OPTIONS | ims-token invalidate OPTIONS', the same -c and --cache): \
             in a --cache DIR, its file is named by a hash of the credentials.",
        )],
        &[
            Block::Text(
                "sink keeps FILE fresh for other processes: it writes the token in \
                 --format, atomically (a reader never sees FILE missing, empty or \
                 partial), with --mode and --owner on every write, refreshes it at \
                 a random point of the margin before expiry and sleeps in between. \
                 After each write it sends --signal to the pid in --pid-file and \
                 runs COMMAND with IMS_TOKEN_FILE set (the token is never in its \
                 arguments or environment). A failed refresh keeps FILE while its \
                 token works, trying again after 30 s, then 1, 2, 4 and at most 5 \
                 minutes; IMS's refusal, or the token's expiry with no new one, \
                 removes FILE: FILE is there only with a token that works. SIGHUP \
                 reads the credentials again and refreshes now; SIGTERM and SIGINT \
                 exit 0, leaving FILE. With NOTIFY_SOCKET set, systemd is told \
                 READY=1 once FILE is written:",
            ),
            Block::Code(
                "ims-token sink -c creds.json --once --out /run/ims/token\n\
                 ims-token sink -c creds.json --format env --out /run/ims/env -- ./tell",
            ),
        ],
    ];

    /// The environment variables ims-token reads or sets (the man page's
    /// ENVIRONMENT; the texts above name each).
    pub(crate) const ENVIRONMENT: &[(&str, &str)] = &[
        (
            "IMS_CREDENTIALS",
            "the credentials file when -c is not given ('-' reads stdin; exec keeps it from COMMAND)",
        ),
        (
            "IMS_CLIENT_ID",
            "credentials from the environment: the client id (exec sets it for COMMAND)",
        ),
        (
            "IMS_CLIENT_SECRET",
            "the client secret (exec keeps it from COMMAND)",
        ),
        (
            "IMS_CLIENT_SECRET_FILE",
            "the file that holds the client secret, instead of IMS_CLIENT_SECRET \
             (systemd's LoadCredential=; exec keeps it from COMMAND)",
        ),
        (
            "IMS_ORG_ID",
            "the org (exec sets it for COMMAND when the credentials carry one)",
        ),
        (
            "IMS_SCOPES",
            "the OAuth Server-to-Server scopes, comma-separated",
        ),
        (
            "IMS_TECHNICAL_ACCOUNT_ID",
            "a JWT service account's technical account",
        ),
        (
            "IMS_METASCOPES",
            "a JWT service account's metascopes, comma-separated",
        ),
        (
            "IMS_PRIVATE_KEY",
            "a JWT service account's key, PEM (literal \\n allowed; exec keeps it from COMMAND)",
        ),
        (
            "IMS_PRIVATE_KEY_FILE",
            "the file that holds the key, instead of IMS_PRIVATE_KEY (exec keeps it from COMMAND)",
        ),
        (
            "IMS_ENDPOINT",
            "the IMS endpoint for credentials from the environment (optional)",
        ),
        ("IMS_ACCESS_TOKEN", "exec: the token, for COMMAND"),
        (
            "IMS_TOKEN_FILE",
            "sink: FILE, for the COMMAND run after each write",
        ),
        (
            "NOTIFY_SOCKET",
            "sink: systemd's socket (a path, or @ and an abstract name), told READY=1",
        ),
        (
            "HTTPS_PROXY, ALL_PROXY",
            "the proxy, http://[user:password@]host:port (the first set, either case; HTTP_PROXY is never read)",
        ),
        (
            "NO_PROXY, no_proxy",
            "the hosts that go direct, read as curl reads them",
        ),
    ];

    /// Every exit code and what it means.
    pub(crate) const EXIT_CODES: &[(&str, &str)] = &[
        (
            "0",
            "success (exec: COMMAND's own exit status instead; decode: an expired \
             token too; sink: stopped by SIGTERM or SIGINT; invalidate: the token \
             was dropped, a retry gets a new one)",
        ),
        (
            "1",
            "anything else (e.g. a reply that is not what IMS sends, or a stdout \
             closed before the output was written)",
        ),
        (
            "2",
            "usage error (also a token given as an argument, or no token on stdin)",
        ),
        (
            "3",
            "credentials, key or configuration problem: fix your config (also a TLS \
             certificate that is not trusted, expired, not yet valid or for another \
             host, a proxy that refuses its user and password, 407, an expired \
             local development token, and for decode and validate a token that is \
             not an IMS access token)",
        ),
        (
            "4",
            "IMS rejected the request (4xx other than 429); validate: IMS does not \
             accept the token",
        ),
        ("5", "network, timeout, IMS 5xx or 429: retry later"),
        (
            "6",
            "invalidate: the token was kept by the brake (it replaced a token an \
             API refused, less than 60 s ago): a new token will not help, do not \
             retry; check the product profile, x-api-key and the org",
        ),
        (
            "7",
            "invalidate: the cache does not hold the token (another run replaced \
             it already, or none is cached): retry with the token a run gives now",
        ),
        (
            "126, 127",
            "exec: COMMAND cannot be run (not executable, not found)",
        ),
    ];

    /// The width of `--help`.
    const WIDTH: usize = 80;

    /// Where the descriptions of the commands and of the flags start.
    const COMMAND_COLUMN: usize = 34;
    const FLAG_COLUMN: usize = 29;

    /// How far past its column a head may reach and still have its text on
    /// its own line, after two spaces.
    const OVERRUN: usize = 4;

    pub(crate) fn help_text() -> String {
        let mut lines = vec![format!("ims-token: {ABOUT}"), String::new()];
        lines.push("USAGE:".into());
        for c in COMMANDS {
            let head = format!("ims-token {}", c.synopsis);
            lines.extend(entry(&head, c.help, COMMAND_COLUMN));
        }
        lines.extend([String::new(), "OPTIONS:".into()]);
        for flag in FLAGS {
            lines.extend(entry(&flag_head(flag), flag.help, FLAG_COLUMN));
        }
        let (title, note) = CREDENTIALS_TITLE;
        lines.extend([String::new(), format!("{title} ({note}):")]);
        lines.extend(blocks(CREDENTIALS));
        for note in NOTES {
            lines.push(String::new());
            lines.extend(blocks(note));
        }
        lines.extend([String::new(), "EXIT CODES:".into()]);
        for (code, text) in EXIT_CODES {
            lines.extend(entry(code, text, 4 + code.len() + 2));
        }
        lines.join("\n")
    }

    /// `-c, --credentials FILE`, or `    --ims HOST|URL` (aligned with the
    /// long names of the flags that have a short one).
    fn flag_head(flag: &Flag) -> String {
        let short = flag.short.map_or("    ".to_owned(), |c| format!("-{c}, "));
        let value = flag.takes.name().map_or(String::new(), |v| format!(" {v}"));
        format!("{short}--{}{value}", flag.long)
    }

    /// `head` indented by 4, then `text` wrapped from `column` on: on the
    /// head's line when there is room, else from the next.
    fn entry(head: &str, text: &str, column: usize) -> Vec<String> {
        let head = format!("    {head}");
        let width = head.chars().count();
        let (first, start) = if width < column {
            (format!("{head:column$}"), column)
        } else if width + 2 <= column + OVERRUN {
            (format!("{head}  "), width + 2)
        } else {
            let mut lines = vec![head];
            lines.extend(indented(
                column,
                &wrap(text, WIDTH - column, WIDTH - column),
            ));
            return lines;
        };
        let wrapped = wrap(text, WIDTH - start, WIDTH - column);
        let mut lines = Vec::new();
        if let Some((line, rest)) = wrapped.split_first() {
            lines.push(format!("{first}{line}"));
            lines.extend(indented(column, rest));
        }
        lines
    }

    fn indented(by: usize, lines: &[String]) -> Vec<String> {
        lines.iter().map(|l| format!("{:by$}{l}", "")).collect()
    }

    /// The lines of `--help` for some blocks: paragraphs at the margin,
    /// items at 4 (their further lines at 8), code at 4 as it is.
    fn blocks(blocks: &[Block]) -> Vec<String> {
        let mut lines = Vec::new();
        for block in blocks {
            match block {
                Block::Text(text) => lines.extend(wrap(text, WIDTH, WIDTH)),
                Block::Item(text) => {
                    let wrapped = wrap(text, WIDTH - 4, WIDTH - 8);
                    if let Some((first, rest)) = wrapped.split_first() {
                        lines.push(format!("    {first}"));
                        lines.extend(indented(8, rest));
                    }
                }
                Block::Code(text) => lines.extend(text.lines().map(|l| format!("    {l}"))),
            }
        }
        lines
    }

    /// `text` in lines of at most `first` characters for the first and
    /// `rest` for the others (a longer word has a line of its own); each
    /// `\n` starts a line.
    pub(crate) fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for hard in text.split('\n') {
            let mut line = String::new();
            for word in hard.split(' ').filter(|w| !w.is_empty()) {
                let limit = if lines.is_empty() { first } else { rest };
                let wanted = line.chars().count() + 1 + word.chars().count();
                if !line.is_empty() && wanted > limit {
                    lines.push(std::mem::take(&mut line));
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
            lines.push(line);
        }
        lines
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn help_names_every_flag_and_command_within_80_columns() {
            let help = help_text();
            for line in help.lines() {
                assert!(line.chars().count() <= WIDTH, "too wide: {line:?}");
                assert_eq!(line, line.trim_end(), "trailing spaces: {line:?}");
            }
            for flag in FLAGS {
                let head = flag_head(flag);
                let line = help
                    .lines()
                    .find(|l| l.trim_start().starts_with(head.trim_start()));
                let line = line.unwrap_or_else(|| panic!("{head} missing:\n{help}"));
                let first = flag.summary().split(' ').next().unwrap_or_default();
                assert!(line.contains(first), "{line}");
            }
            for command in COMMANDS {
                let usage = format!("    ims-token {}", command.synopsis);
                assert!(help.lines().any(|l| l.starts_with(&usage)), "{usage}");
            }
            // Nothing else in OPTIONS is a flag.
            let options: Vec<&str> = help
                .lines()
                .skip_while(|l| *l != "OPTIONS:")
                .skip(1)
                .take_while(|l| !l.is_empty())
                .filter(|l| l.trim_start().starts_with('-'))
                .collect();
            assert_eq!(options.len(), FLAGS.len(), "{options:#?}");
        }

        #[test]
        fn help_keeps_its_layout() {
            let help = help_text();
            for line in [
                "    -c, --credentials FILE   credentials JSON; '-' reads stdin (default: the",
                "        --credential NAME|ID which Developer Console project credential (when it",
                "        --format FORMAT      token (default) | header | headers | json | env;",
                "        --connect-timeout SECS  connect timeout, e.g. 0.5 (default 10, at most",
                "    ims-token exec [OPTIONS] -- COMMAND [ARGS...]",
                "                                  run COMMAND with the token in its environment",
                "    ims-token jwt [OPTIONS]       print a freshly signed JWT, no network",
                "    126, 127  exec: COMMAND cannot be run (not executable, not found)",
                "    Adobe Developer Console project (project.workspace.details.credentials):",
                "        IMS_CLIENT_SECRET (or IMS_CLIENT_SECRET_FILE), IMS_ORG_ID and IMS_SCOPES",
                "    ims-token decode [OPTIONS] < TOKEN_FILE",
            ] {
                assert!(help.lines().any(|l| l == line), "{line:?} missing:\n{help}");
            }
        }

        #[test]
        fn the_environment_table_is_what_help_names() {
            let help = help_text();
            let listed: Vec<&str> = ENVIRONMENT
                .iter()
                .flat_map(|(names, _)| names.split(", "))
                .collect();
            for name in &listed {
                assert!(help.contains(name), "{name} is not in --help");
            }
            let named = help
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("IMS_") && w.len() > 4);
            for name in named {
                assert!(listed.contains(&name), "{name} is not in ENVIRONMENT");
            }
        }

        #[test]
        fn wrap_fills_lines_and_keeps_long_words_whole() {
            assert_eq!(wrap("a b c d", 3, 5), ["a b", "c d"]);
            assert_eq!(wrap("a\nb c", 10, 10), ["a", "b c"]);
            assert_eq!(wrap("abcdef g", 3, 3), ["abcdef", "g"]);
            assert_eq!(wrap("", 3, 3), [""]);
        }
    }
}

/// `--generate`: the man page and the bash, zsh and fish completions, made
/// from the tables of `args` and the texts of `help` (as ripgrep does).
mod generate {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use crate::args::{CommandSpec, Flag, Generated, Takes, COMMANDS, FLAGS};
    use crate::help::{
        wrap, Block, ABOUT, CREDENTIALS, CREDENTIALS_TITLE, ENVIRONMENT, EXIT_CODES, NOTES,
    };
    use crate::output::rfc3339;

    pub(crate) fn generate(what: Generated) -> String {
        match what {
            Generated::Man => man_page(),
            Generated::Bash => bash(),
            Generated::Zsh => zsh(),
            Generated::Fish => fish(),
        }
    }

    /// What the man page says before the notes of `--help`.
    const DESCRIPTION: &str = "prints an Adobe IMS access token for cron jobs and shell \
        scripts: it signs a service account's JWT and exchanges it, or uses OAuth \
        Server-to-Server client credentials, whichever the credentials are. stdout \
        carries the requested output and one newline, nothing else; diagnostics go to \
        stderr. The client secret and key are read only from the credentials file, \
        stdin or the environment, never from arguments, where ps would show them.";

    fn man_page() -> String {
        let version = env!("CARGO_PKG_VERSION");
        let mut m = vec![
            ".\\\" The manual of ims-token, made by: ims-token --generate man".to_owned(),
            format!(
                ".TH IMS\\-TOKEN 1 {} \"ims\\-token {version}\" \"User Commands\"",
                man_date()
            ),
            ".nh".into(),
            ".ad l".into(),
            ".SH NAME".into(),
            format!("ims\\-token \\- {}", roff(ABOUT)),
            ".SH SYNOPSIS".into(),
            ".nf".into(),
        ];
        for c in COMMANDS {
            m.push(format!("\\fBims\\-token\\fR {}", roff(c.synopsis)));
        }
        m.extend([".fi".into(), ".SH DESCRIPTION".into()]);
        m.extend(man_text(&format!("ims-token {DESCRIPTION}")));
        for note in NOTES {
            m.extend(man_blocks(note));
        }
        m.push(".SH COMMANDS".into());
        for c in COMMANDS {
            m.extend([".TP".into(), format!("\\fB{}\\fR", roff(c.name))]);
            m.extend(man_text(c.help));
        }
        m.push(".SH OPTIONS".into());
        for flag in FLAGS {
            m.extend(man_flag(flag));
        }
        let (title, note) = CREDENTIALS_TITLE;
        m.push(format!(".SH {title}"));
        m.extend(man_text(&sentence(note)));
        m.extend(man_blocks(CREDENTIALS));
        m.push(".SH ENVIRONMENT".into());
        for (name, text) in ENVIRONMENT {
            m.extend([".TP".into(), format!("\\fB{}\\fR", roff(name))]);
            m.extend(man_text(text));
        }
        m.push(".SH \"EXIT STATUS\"".into());
        for (code, text) in EXIT_CODES {
            m.extend([".TP".into(), format!("\\fB{}\\fR", roff(code))]);
            m.extend(man_text(text));
        }
        m.extend([".SH \"SEE ALSO\"".into(), ".BR curl (1)".into()]);
        m.join("\n")
    }

    /// A flag's paragraph: its names and value, its help, and the commands
    /// it is not for.
    fn man_flag(flag: &Flag) -> Vec<String> {
        let names: Vec<String> = flag
            .names()
            .iter()
            .map(|n| format!("\\fB{}\\fR", roff(n)))
            .collect();
        let value = flag
            .takes
            .name()
            .map_or(String::new(), |v| format!(" \\fI{}\\fR", roff(v)));
        let mut lines = vec![".TP".into(), format!("{}{value}", names.join(", "))];
        lines.extend(man_text(flag.help));
        let (only, not_for): (Vec<&CommandSpec>, Vec<&CommandSpec>) =
            COMMANDS.iter().partition(|c| (flag.applies)(c.command));
        let names = |specs: &[&CommandSpec]| {
            let names: Vec<&str> = specs.iter().map(|c| c.name).collect();
            names.join(", ")
        };
        if !not_for.is_empty() {
            // Whichever list is shorter.
            let which = if only.len() < not_for.len() {
                format!("(for {} only)", names(&only))
            } else {
                format!("(not for {})", names(&not_for))
            };
            lines.extend([".br".into(), roff(&which)]);
        }
        lines
    }

    /// Blocks of `help` as man paragraphs: items as a bulleted list, code
    /// as it is.
    fn man_blocks(blocks: &[Block]) -> Vec<String> {
        let mut lines = Vec::new();
        for block in blocks {
            match block {
                Block::Text(text) => {
                    lines.push(".PP".into());
                    lines.extend(man_text(text));
                }
                Block::Item(text) => {
                    lines.push(".IP \\(bu 2".into());
                    lines.extend(man_text(text));
                }
                Block::Code(text) => {
                    // Indented less than --help's 4: the man page's margin is 7.
                    lines.extend([".PP".into(), ".RS 2".into(), ".nf".into()]);
                    lines.extend(text.lines().map(roff));
                    lines.extend([".fi".into(), ".RE".into()]);
                }
            }
        }
        lines
    }

    /// Text whose `\n` breaks the line, in source lines of at most
    /// [`SOURCE_WIDTH`] characters (before escapes; roff fills them anyway).
    fn man_text(text: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, hard) in text.split('\n').enumerate() {
            if i > 0 {
                lines.push(".br".to_owned());
            }
            lines.extend(
                wrap(hard, SOURCE_WIDTH, SOURCE_WIDTH)
                    .iter()
                    .map(|l| roff(l)),
            );
        }
        lines
    }

    /// How long a line of text in the man page's source may be.
    const SOURCE_WIDTH: usize = 72;

    /// One line of text as roff prints it: backslashes and dashes escaped,
    /// and a line that would start with a control character guarded.
    fn roff(text: &str) -> String {
        let escaped = text.replace('\\', "\\e").replace('-', "\\-");
        if escaped.starts_with(['.', '\'']) {
            format!("\\&{escaped}")
        } else {
            escaped
        }
    }

    /// The day the page is made, or the one `$SOURCE_DATE_EPOCH` says (for
    /// reproducible builds).
    fn man_date() -> String {
        let epoch = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|secs| secs.trim().parse().ok())
            .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)));
        let day = rfc3339(epoch.unwrap_or_else(SystemTime::now));
        day.get(..10).unwrap_or(&day).to_owned()
    }

    /// `text`, capitalized, with a full stop.
    fn sentence(text: &str) -> String {
        let mut chars = text.chars();
        chars.next().map_or(String::new(), |c| {
            format!("{}{}.", c.to_uppercase(), chars.as_str())
        })
    }

    /// The commands each flag applies to, when not to all.
    fn restricted(flag: &Flag) -> Option<Vec<&'static str>> {
        let names: Vec<&str> = COMMANDS
            .iter()
            .filter(|c| (flag.applies)(c.command))
            .map(|c| c.name)
            .collect();
        (names.len() < COMMANDS.len()).then_some(names)
    }

    fn command_names(separator: &str) -> String {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.join(separator)
    }

    /// The names of the flags that take a value, joined.
    fn value_flags(separator: &str) -> String {
        let names: Vec<String> = FLAGS
            .iter()
            .filter(|f| f.takes.name().is_some())
            .flat_map(Flag::names)
            .collect();
        names.join(separator)
    }

    fn fill(template: &str, values: &[(&str, String)]) -> String {
        let mut text = template.to_owned();
        for (key, value) in values {
            text = text.replace(key, value);
        }
        text.trim_end().to_owned()
    }

    const BASH: &str = r#"# bash completion for ims-token, made by: ims-token --generate complete-bash
_ims_token() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=
    ((COMP_CWORD > 1)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    # bash splits --format=json at the '='.
    if [[ $cur == = ]]; then
        cur=
    elif [[ $prev == = ]] && ((COMP_CWORD > 2)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    fi
    COMPREPLY=()
    local i word command=
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
        --)
            # exec: COMMAND, then its arguments
            if ((i + 1 == COMP_CWORD)); then
                mapfile -t COMPREPLY < <(compgen -c -- "$cur" | sort -u)
            else
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            fi
            return 0
            ;;
        @VALUE_FLAGS@)
            [[ ${COMP_WORDS[i + 1]-} == = ]] && i=$((i + 1))
            i=$((i + 1))
            ;;
        @COMMAND_PATTERN@)
            [[ $command ]] || command=$word
            ;;
        esac
    done
    case $prev in
@VALUE_CASES@
    esac
    if [[ $cur == -* ]]; then
        local flags='@FLAGS@'
@COMMAND_FLAGS@
        mapfile -t COMPREPLY < <(compgen -W "$flags" -- "$cur")
    elif [[ -z $command ]]; then
        mapfile -t COMPREPLY < <(compgen -W '@COMMANDS@' -- "$cur")
    fi
    return 0
}
complete -F _ims_token ims-token
"#;

    fn bash() -> String {
        // One arm for the flags whose values complete alike.
        let mut cases: Vec<(String, Vec<String>)> = Vec::new();
        for flag in FLAGS {
            let action = match flag.takes {
                Takes::Nothing => continue,
                Takes::File(_) => "mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n        \
                                   compopt -o filenames 2>/dev/null"
                    .to_owned(),
                Takes::Text(_) => ":".to_owned(),
                Takes::OneOf(_, words) => format!(
                    "mapfile -t COMPREPLY < <(compgen -W '{}' -- \"$cur\")",
                    words.join(" ")
                ),
            };
            match cases.iter_mut().find(|(a, _)| *a == action) {
                Some((_, names)) => names.extend(flag.names()),
                None => cases.push((action, flag.names())),
            }
        }
        let cases: Vec<String> = cases
            .iter()
            .map(|(action, names)| {
                format!(
                    "    {})\n        {action}\n        return 0\n        ;;",
                    names.join(" | ")
                )
            })
            .collect();
        let everywhere: Vec<String> = FLAGS
            .iter()
            .filter(|f| restricted(f).is_none())
            .flat_map(Flag::names)
            .collect();
        let only: Vec<String> = FLAGS
            .iter()
            .filter_map(|f| {
                let commands = restricted(f)?;
                Some(format!(
                    "        case ${{command:-{}}} in {}) flags+=' {}' ;; esac",
                    default_command().name,
                    commands.join(" | "),
                    f.names().join(" ")
                ))
            })
            .collect();
        fill(
            BASH,
            &[
                ("@VALUE_FLAGS@", value_flags(" | ")),
                ("@COMMAND_PATTERN@", command_names(" | ")),
                ("@VALUE_CASES@", cases.join("\n")),
                ("@FLAGS@", everywhere.join(" ")),
                ("@COMMAND_FLAGS@", only.join("\n")),
                ("@COMMANDS@", command_names(" ")),
            ],
        )
    }

    fn default_command() -> &'static CommandSpec {
        // COMMANDS is a non-empty constant.
        &COMMANDS[0]
    }

    const ZSH: &str = r#"#compdef ims-token
# zsh completion for ims-token, made by: ims-token --generate complete-zsh

_ims-token() {
  local i command=
  for (( i = 2; i < CURRENT; i++ )); do
    case $words[i] in
      (--)
        # exec: COMMAND and its arguments
        words=("${(@)words[i+1,-1]}")
        (( CURRENT -= i ))
        _normal
        return
        ;;
      (@VALUE_FLAGS@)
        (( i++ ))
        ;;
      (@COMMAND_PATTERN@)
        [[ -n $command ]] || command=$words[i]
        ;;
    esac
  done
  local -a commands specs
  commands=(
@COMMANDS@
  )
  specs=(
@SPECS@
  )
@COMMAND_SPECS@
  local curcontext=$curcontext state line
  _arguments -C : $specs '1: :->command'
  if [[ $state == command ]]; then
    _describe -t commands 'ims-token command' commands
  fi
}

_ims-token "$@"
"#;

    fn zsh() -> String {
        let commands: Vec<String> = COMMANDS
            .iter()
            .map(|c| {
                format!(
                    "    {}",
                    zsh_quote(&format!("{}:{}", c.name, c.help.replace(':', "\\:")))
                )
            })
            .collect();
        let mut specs = Vec::new();
        let mut only = Vec::new();
        for flag in FLAGS {
            match restricted(flag) {
                None => specs.extend(zsh_specs(flag).iter().map(|s| format!("    {s}"))),
                Some(commands) => only.extend(zsh_specs(flag).iter().map(|s| {
                    format!(
                        "  [[ ${{command:-{}}} == ({}) ]] && specs+=({s})",
                        default_command().name,
                        commands.join("|")
                    )
                })),
            }
        }
        fill(
            ZSH,
            &[
                ("@VALUE_FLAGS@", value_flags("|")),
                ("@COMMAND_PATTERN@", command_names("|")),
                ("@COMMANDS@", commands.join("\n")),
                ("@SPECS@", specs.join("\n")),
                ("@COMMAND_SPECS@", only.join("\n")),
            ],
        )
    }

    /// `_arguments` specs of a flag, one a name, each quoted.
    fn zsh_specs(flag: &Flag) -> Vec<String> {
        let names = flag.names();
        let exclusive = format!("({})", names.join(" "));
        let description = flag
            .summary()
            .replace('\\', "\\\\")
            .replace('[', "\\[")
            .replace(']', "\\]")
            .replace(':', "\\:");
        let argument = match flag.takes {
            Takes::Nothing => String::new(),
            Takes::File(name) => format!(":{name}:_files"),
            Takes::Text(name) => format!(":{name}: "),
            Takes::OneOf(name, words) => format!(":{name}:({})", words.join(" ")),
        };
        names
            .iter()
            .map(|name| {
                // `--name=` takes `--name=value` and `--name value`.
                let equals = if name.starts_with("--") && !argument.is_empty() {
                    "="
                } else {
                    ""
                };
                zsh_quote(&format!(
                    "{exclusive}{name}{equals}[{description}]{argument}"
                ))
            })
            .collect()
    }

    fn zsh_quote(text: &str) -> String {
        format!("'{}'", text.replace('\'', "'\\''"))
    }

    const FISH: &str = r#"# fish completion for ims-token, made by: ims-token --generate complete-fish

# The command word given, if any (the words after the flags that take a
# value are their values).
function __ims_token_word
    set -l words (commandline -opc)
    set -e words[1]
    set -l skip 0
    for word in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case @VALUE_FLAGS@
                set skip 1
            case @COMMAND_PATTERN@
                echo $word
                return 0
        end
    end
    return 1
end

# Before exec's '--': the words of ims-token.
function __ims_token_own
    not contains -- -- (commandline -opc)
end

# After exec's '--': COMMAND and its arguments, as fish completes them.
function __ims_token_exec_command
    set -l words (commandline -opc)
    set -l at (contains -i -- -- $words)
    or return
    set -l rest (commandline -ct)
    if test $at -lt (count $words)
        set rest $words[(math $at + 1)..-1] $rest
    end
    __fish_complete_subcommand --commandline $rest
end

complete -c ims-token -f
complete -c ims-token -n 'not __ims_token_own' -x -a '(__ims_token_exec_command)'
@COMMANDS@
@FLAGS@
"#;

    fn fish() -> String {
        let commands: Vec<String> = COMMANDS
            .iter()
            .map(|c| {
                format!(
                    "complete -c ims-token -n '__ims_token_own; and not __ims_token_word >/dev/null' -a {} -d {}",
                    c.name,
                    fish_quote(c.help)
                )
            })
            .collect();
        let flags: Vec<String> = FLAGS.iter().map(fish_flag).collect();
        fill(
            FISH,
            &[
                ("@VALUE_FLAGS@", value_flags(" ")),
                ("@COMMAND_PATTERN@", command_names(" ")),
                ("@COMMANDS@", commands.join("\n")),
                ("@FLAGS@", flags.join("\n")),
            ],
        )
    }

    fn fish_flag(flag: &Flag) -> String {
        let condition = match restricted(flag) {
            None => "__ims_token_own".to_owned(),
            Some(names) => format!(
                "__ims_token_own; and contains -- (__ims_token_word; or echo {}) {}",
                default_command().name,
                names.join(" ")
            ),
        };
        let mut line = format!("complete -c ims-token -n {}", fish_quote(&condition));
        if let Some(c) = flag.short {
            line.push_str(&format!(" -s {c}"));
        }
        line.push_str(&format!(" -l {}", flag.long));
        match flag.takes {
            Takes::Nothing => {}
            Takes::File(_) => line.push_str(" -r -F"),
            Takes::Text(_) => line.push_str(" -x"),
            Takes::OneOf(_, words) => {
                line.push_str(&format!(" -x -a {}", fish_quote(&words.join(" "))))
            }
        }
        line.push_str(&format!(" -d {}", fish_quote(flag.summary())));
        line
    }

    fn fish_quote(text: &str) -> String {
        format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn roff_escapes_dashes_backslashes_and_leading_dots() {
            assert_eq!(roff("--format a-b"), "\\-\\-format a\\-b");
            assert_eq!(roff("literal \\n"), "literal \\en");
            assert_eq!(roff(".hidden"), "\\&.hidden");
            assert_eq!(roff("'quoted'"), "\\&'quoted'");
            assert_eq!(man_text("a\nb"), ["a", ".br", "b"]);
        }

        #[test]
        fn the_man_page_has_every_flag_command_variable_and_exit_code() {
            let man = man_page();
            for flag in FLAGS {
                for name in flag.names() {
                    assert!(man.contains(&format!("\\fB{}\\fR", roff(&name))), "{name}");
                }
            }
            for c in COMMANDS {
                assert!(
                    man.contains(&format!(".TP\n\\fB{}\\fR\n", c.name)),
                    "{}",
                    c.name
                );
            }
            for (name, _) in ENVIRONMENT {
                assert!(man.contains(&roff(name)), "{name}");
            }
            for (code, _) in EXIT_CODES {
                assert!(man.contains(&format!(".TP\n\\fB{code}\\fR\n")), "{code}");
            }
            // Every line that is not a request starts with text, not a
            // control character or a space (which would break the fill).
            for line in man.lines().filter(|l| !l.starts_with('.')) {
                assert!(!line.starts_with(['\'', ' ']), "{line:?}");
            }
            assert!(
                man.contains("(for token, decode, validate, sink only)"),
                "--format is for the commands that print in a format"
            );
            assert!(man.contains("(not for decode)"), "-c is not for decode");
        }

        #[test]
        fn the_completions_name_every_flag_and_command() {
            for (what, script) in [("bash", bash()), ("zsh", zsh()), ("fish", fish())] {
                let placeholder = script
                    .split('@')
                    .skip(1)
                    .any(|after| after.starts_with(|c: char| c.is_ascii_uppercase()));
                assert!(!placeholder, "{what}: a placeholder is left:\n{script}");
                for c in COMMANDS {
                    assert!(script.contains(c.name), "{what}: {}", c.name);
                }
                for flag in FLAGS {
                    let found = match what {
                        "fish" => script.contains(&format!(" -l {} ", flag.long)),
                        _ => flag.names().iter().all(|n| script.contains(n.as_str())),
                    };
                    assert!(found, "{what}: --{}", flag.long);
                }
            }
        }
    }
}

/// The commands: token (and exec), jwt and inspect, and what they print.
mod commands {
    use std::ffi::OsString;
    use std::io::{self, Write};
    use std::time::{Duration, SystemTime};

    use ims_token::{
        is_visible_ascii, AccessToken, ApiHeaders, Client, Credentials, OAuthCredentials,
        ServiceAccount,
    };
    use zeroize::Zeroizing;

    use crate::args::{Command, Format, Options};
    use crate::cache::Cache;
    use crate::credentials::load;
    use crate::failure::{usage, Failure};
    use crate::output::{push_json_string, rfc3339};

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
                // Likewise a SOCKS or malformed proxy the IMS host would use.
                client.check_proxy(credentials.ims())?;
                let cache = options.cache.as_deref();
                match cache.and_then(|path| Cache::new(path, &credentials)) {
                    Some(cache) => {
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

    /// The ids that go into headers, a file or the environment (`headers`,
    /// `env`, exec) must be visible ASCII: a CR/LF would add a header or a
    /// line of its own. Checked before anything is fetched.
    pub(crate) fn check_ids(credentials: &Credentials, options: &Options) -> Result<(), Failure> {
        if options.command != Command::Exec && !options.format.has_ids() {
            return Ok(());
        }
        let ids = [
            ("client id", Some(credentials.client_id())),
            ("org id", credentials.org_id()),
        ];
        match ids
            .iter()
            .find(|(_, id)| id.is_some_and(|id| !id.is_empty() && !is_visible_ascii(id)))
        {
            Some((what, _)) => Err(Failure::Config(format!(
                "the {what} has characters that are not visible ASCII; check the credentials"
            ))),
            None => Ok(()),
        }
    }

    /// The credentials variables that `exec` keeps from COMMAND (and the
    /// sink from the command it runs): the secret, the key and the path to
    /// the credentials file (COMMAND needs none of them, and a COMMAND that
    /// logs or leaks its environment leaks less).
    pub(crate) const EXEC_HIDDEN: [&str; 5] = [
        "IMS_CLIENT_SECRET",
        "IMS_CLIENT_SECRET_FILE",
        "IMS_PRIVATE_KEY",
        "IMS_PRIVATE_KEY_FILE",
        "IMS_CREDENTIALS",
    ];

    /// Replaces this process with COMMAND, the token and ids of `headers` in
    /// its environment (never in its arguments, which every user of the host
    /// can read). Returns only when COMMAND cannot be started.
    fn exec(command: &[OsString], headers: &ApiHeaders) -> Failure {
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
            program: program.clone(),
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
        // Every value may come from a shared file: one printable line each,
        // so that none can rewrite the terminal or add a line of its own.
        let text: Vec<String> = lines
            .iter()
            .map(|(k, v)| format!("{k}: {}", ims_token::printable_line(v)))
            .collect();
        print_line(&text.join("\n"))
    }

    fn describe_account(a: &ServiceAccount, now: SystemTime) -> Vec<(&'static str, String)> {
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

    fn describe_oauth(o: &OAuthCredentials) -> Vec<(&'static str, String)> {
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

    fn expiry_text(expiry: SystemTime, now: SystemTime) -> String {
        match expiry.duration_since(now) {
            Ok(left) => format!(
                "{} ({} days left)",
                rfc3339(expiry),
                left.as_secs() / 86_400
            ),
            Err(_) => format!("{} (expired)", rfc3339(expiry)),
        }
    }

    /// What the command prints for `format`. It holds the token: it is
    /// written into one buffer that never grows (growing would leave copies
    /// behind) and is wiped on drop.
    pub(crate) fn render(
        token: &AccessToken,
        credentials: &Credentials,
        format: Format,
        now: SystemTime,
    ) -> Result<Zeroizing<String>, Failure> {
        let ids = credentials.client_id().len() + credentials.org_id().map_or(0, str::len);
        let room = 2 * (token.secret().len() + token.token_type().len()) + ids;
        let mut out = Zeroizing::new(String::with_capacity(room + 128));
        match format {
            Format::Token => out.push_str(token.secret()),
            Format::Header => {
                out.push_str("Authorization: Bearer ");
                out.push_str(token.secret());
            }
            // The library's headers, one a line, as `curl -H @-` reads them.
            Format::Headers => {
                let headers = ApiHeaders::new(token, credentials)?;
                for (n, (name, value)) in headers.iter().enumerate() {
                    if n > 0 {
                        out.push('\n');
                    }
                    out.push_str(name);
                    out.push_str(": ");
                    out.push_str(value);
                }
            }
            Format::Json => {
                // The keys in the order serde_json gives them.
                out.push_str("{\"access_token\":");
                push_json_string(&mut out, token.secret());
                out.push_str(&format!(
                    ",\"expires_at\":\"{}\",\"expires_in\":{},\"token_type\":",
                    rfc3339(token.expires_at()),
                    token.expires_in(now).as_secs()
                ));
                push_json_string(&mut out, token.token_type());
                out.push('}');
            }
            Format::Env => {
                // The library's checks: visible ASCII, nothing to inject.
                let headers = ApiHeaders::new(token, credentials)?;
                push_env_line(&mut out, "IMS_ACCESS_TOKEN", token.secret());
                for (name, value) in [
                    ("IMS_CLIENT_ID", headers.api_key()),
                    ("IMS_ORG_ID", headers.org_id()),
                ] {
                    if let Some(value) = value {
                        out.push('\n');
                        push_env_line(&mut out, name, value);
                    }
                }
            }
            // The command line refuses it for a token (`check_format`).
            Format::Text => return Err(usage("--format text is for decode and validate")),
        }
        Ok(out)
    }

    /// `NAME="value"`, read alike by sh's `.` and systemd's
    /// `EnvironmentFile=`: inside double quotes both take a `\` before `"`,
    /// `\`, `` ` `` or `$` as that character, and nothing else is special
    /// (the values are visible ASCII: no newline, no space).
    fn push_env_line(out: &mut String, name: &str, value: &str) {
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            if matches!(c, '"' | '\\' | '`' | '$') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
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
        if let Some(timeout) = options.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(timeout) = options.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(n) = options.retries {
            builder = builder.retries(n);
        }
        if let Some(path) = &options.ca_file {
            builder = builder.ca_file(path);
        }
        Ok(builder.build()?)
    }

    #[cfg(test)]
    mod tests {
        use std::time::UNIX_EPOCH;

        use super::*;

        #[test]
        fn every_format_renders_in_one_buffer_as_serde_json_would() {
            let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let token = AccessToken::new("t\"o\\k", "bearer", t0, t0 + Duration::from_secs(60));
            let oauth = OAuthCredentials::builder()
                .client_id("client-1")
                .client_secret(ims_token::ClientSecret::new("s"))
                .scopes("a")
                .org_id("ORG@AdobeOrg")
                .build()
                .unwrap();
            let ids = Credentials::OAuth(oauth);
            let now = t0 + Duration::from_secs(10);
            let json = render(&token, &ids, Format::Json, now).unwrap();
            let expected = serde_json::json!({
                "access_token": token.secret(),
                "token_type": "bearer",
                "expires_in": 50,
                "expires_at": "2023-11-14T22:14:20Z",
            });
            assert_eq!(json.as_str(), expected.to_string());
            let header = render(&token, &ids, Format::Header, now).unwrap();
            assert_eq!(header.as_str(), "Authorization: Bearer t\"o\\k");
            // A token type or token that would break a header is refused by
            // the library's headers; this one has none, so all three lines.
            let plain = AccessToken::new("tok", "bearer", t0, t0 + Duration::from_secs(60));
            let headers = render(&plain, &ids, Format::Headers, now).unwrap();
            assert_eq!(
                headers.as_str(),
                "Authorization: Bearer tok\nx-api-key: client-1\nx-gw-ims-org-id: ORG@AdobeOrg"
            );
            assert_eq!(
                render(&token, &ids, Format::Token, now).unwrap().as_str(),
                token.secret()
            );
        }

        #[test]
        fn the_env_format_quotes_what_sh_and_systemd_would_read_otherwise() {
            let env_line = |name: &str, value: &str| {
                let mut out = String::new();
                push_env_line(&mut out, name, value);
                out
            };
            assert_eq!(env_line("A", "abc.DEF-123"), "A=\"abc.DEF-123\"");
            assert_eq!(
                env_line("A", r#"a"b\c`d$e'f;g&h|i#j"#),
                r#"A="a\"b\\c\`d\$e'f;g&h|i#j""#
            );
            let now = SystemTime::now();
            let token = AccessToken::new("t$1", "bearer", now, now + Duration::from_secs(60));
            let ids = Credentials::OAuth(
                OAuthCredentials::builder()
                    .client_id("cid")
                    .client_secret(ims_token::ClientSecret::new("s"))
                    .scopes("a")
                    .build()
                    .unwrap(),
            );
            assert_eq!(
                render(&token, &ids, Format::Env, now).unwrap().as_str(),
                "IMS_ACCESS_TOKEN=\"t\\$1\"\nIMS_CLIENT_ID=\"cid\""
            );
        }
    }
}

/// decode, validate, revoke and invalidate: a token read on stdin (never
/// from an argument, where `ps` shows it), decoded here, asked about or
/// ended at IMS, or dropped from the cache after an API refused it.
mod introspect {
    use std::io::{self, IsTerminal as _, Read as _, Write as _};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use ims_token::{
        decode_token, AccessToken, Credentials, Endpoint, Invalidation, RefreshRule, TokenValidity,
    };
    use zeroize::Zeroizing;

    use crate::args::{Format, Options};
    use crate::cache::Cache;
    use ims_token::is_visible_ascii;

    use crate::commands::{client, print_line};
    use crate::credentials::{load, load_if_given};
    use crate::failure::{chain, usage, Failure};
    use crate::output::rfc3339;

    /// Most bytes read on stdin: an IMS access token is 1 to 3 KB.
    const MAX_TOKEN_BYTES: usize = 64 * 1024;

    /// What the token says of itself, as text or JSON: no credentials, no
    /// network. An expired token is shown too (exit 0); anything that is
    /// not an IMS access token is the library's one line (exit 3).
    pub(crate) fn decode_command(options: &Options) -> Result<(), Failure> {
        let token = read_token()?;
        let claims = decode_token(&token)?;
        let now = SystemTime::now();
        print_line(&match options.format {
            Format::Json => claims.to_json(now),
            _ => claims.to_text(now),
        })
    }

    /// Asks IMS whether it accepts the token: for the client of the
    /// credentials if there are any, else the one the token names; at
    /// `--ims`, else the credentials' IMS, else production's.
    pub(crate) fn validate_command(options: &Options) -> Result<(), Failure> {
        let (credentials, _) = load_if_given(options)?;
        let client = client(options)?;
        let text = read_token()?;
        let token = one_token(&text)?;
        let known = credentials.as_ref().map(|c| c.client_id());
        let client_id = match known.filter(|id| !id.is_empty()) {
            Some(id) => id.to_owned(),
            None => token_client_id(token)?,
        };
        let ims = match (&options.ims, &credentials) {
            (Some(ims), _) => Endpoint::parse(ims)?,
            (None, Some(credentials)) => credentials.ims().clone(),
            (None, None) => Endpoint::default(),
        };
        match client.validate_token(&ims, &client_id, token)? {
            TokenValidity::Valid { expires_at, .. } => {
                print_line(&validity(expires_at, options.format))
            }
            TokenValidity::Invalid { reason, .. } => Err(Failure::NotAccepted(reason)),
            _ => Err(Failure::NotAccepted(
                "IMS's answer is not one ims-token knows".into(),
            )),
        }
    }

    /// The client the token says it was issued to; without it there is
    /// nobody to ask IMS for.
    fn token_client_id(token: &str) -> Result<String, Failure> {
        decode_token(token)
            .map(|claims| claims.client_id)
            .map_err(|e| {
                Failure::Config(format!(
                    "{}; to validate it, give the credentials of its client with -c",
                    chain(&e)
                ))
            })
    }

    /// `valid until 2027-05-21T14:16:46Z`, or the same as JSON.
    fn validity(expires_at: Option<SystemTime>, format: Format) -> String {
        match (format, expires_at) {
            (Format::Json, _) => {
                serde_json::json!({ "valid": true, "expires_at": expires_at.map(rfc3339) })
                    .to_string()
            }
            (_, Some(at)) => format!("valid until {}", rfc3339(at)),
            (_, None) => "valid (IMS did not say until when)".to_owned(),
        }
    }

    /// Ends the token at IMS with the credentials' client id and secret;
    /// with `--cache`, then drops it from that cache if it is the token
    /// kept there, so that the next run exchanges.
    pub(crate) fn revoke_command(options: &Options) -> Result<(), Failure> {
        let (credentials, _) = load(options)?;
        let client = client(options)?;
        let text = read_token()?;
        let token = one_token(&text)?;
        client.revoke_token(&credentials, token)?;
        let Some(path) = &options.cache else {
            return print_line("revoked");
        };
        // A cache directory that cannot be had was warned about.
        let Some(cache) = Cache::new(path, &credentials) else {
            return print_line("revoked");
        };
        // Paths quoted escaped: each line stays one line.
        match cache.drop_if_cached(token, &client, &credentials) {
            Ok(true) => print_line(&format!("revoked, and dropped from the cache {path:?}")),
            Ok(false) => print_line(&format!("revoked; the cache {path:?} does not hold it")),
            Err(e) => Err(Failure::Config(format!(
                "revoked, but the cache file {:?} still holds the token: {e}; delete that file",
                cache.file()
            ))),
        }
    }

    /// An API refused the token on stdin (401): drops it from `--cache`
    /// if it is the cached one, with the library's brake (see
    /// [`Cache::invalidate`]). Exit 0 when it was dropped (a retry gets a
    /// new token); 6 when the brake kept it (a new token would be refused
    /// too); 7 when the cache does not hold it (another run replaced it: a
    /// retry gets that token).
    pub(crate) fn invalidate_command(options: &Options) -> Result<(), Failure> {
        let (credentials, _) = load(options)?;
        if matches!(credentials, Credentials::LocalToken(_)) {
            return Err(Failure::Config(
                "these credentials are a local development token, which --cache does not \
                 keep: there is nothing to invalidate; download a new token"
                    .into(),
            ));
        }
        let client = client(options)?;
        let text = read_token()?;
        // Only its text is compared (in constant time) with the cached
        // token's: the times are not read.
        let refused = AccessToken::new(one_token(&text)?, "bearer", UNIX_EPOCH, UNIX_EPOCH);
        // `check_command` makes sure there is a --cache.
        let Some(path) = &options.cache else {
            return Err(usage("invalidate needs --cache"));
        };
        // A cache directory that cannot be had was warned about; a token run
        // goes on without the cache, and so gets a new token.
        let Some(cache) = Cache::new(path, &credentials) else {
            return Err(Failure::NotCached(path.clone()));
        };
        let rule = RefreshRule::exact(Duration::from_secs(options.refresh_margin));
        match cache.invalidate(&rule, &refused, &client, &credentials) {
            Ok(Invalidation::Dropped) => print_line(&format!(
                "dropped from the cache {path:?}: the next run gets a new token"
            )),
            Ok(Invalidation::Kept { age }) => Err(Failure::Braked(age)),
            Ok(_) => Err(Failure::NotCached(path.clone())),
            Err(e) => Err(Failure::Config(format!(
                "the cache file {:?} still holds the token: {e}; delete that file",
                cache.file()
            ))),
        }
    }

    /// What stdin holds, white space around it dropped. A person at a
    /// terminal is told how to end it.
    fn read_token() -> Result<Zeroizing<String>, Failure> {
        let stdin = io::stdin();
        if stdin.is_terminal() {
            let _ = writeln!(
                io::stderr().lock(),
                "ims-token: reading the token on stdin; end it with Ctrl-D"
            );
        }
        let mut bytes = Zeroizing::new(Vec::new());
        stdin
            .lock()
            .take(MAX_TOKEN_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::Config(format!("cannot read the token on stdin: {e}")))?;
        token_text(&bytes).map(|text| Zeroizing::new(text.to_owned()))
    }

    /// The text of a token read on stdin: at most [`MAX_TOKEN_BYTES`],
    /// UTF-8, not empty once trimmed. Nothing of it goes into an error.
    fn token_text(bytes: &[u8]) -> Result<&str, Failure> {
        if bytes.len() > MAX_TOKEN_BYTES {
            return Err(Failure::Config(format!(
                "stdin holds more than {} KiB: that is not a token",
                MAX_TOKEN_BYTES / 1024
            )));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Failure::Config("stdin does not hold a token: it is not UTF-8".into()))?
            .trim();
        if text.is_empty() {
            return Err(usage(
                "no token on stdin: pass it there (ims-token decode < token.txt)",
            ));
        }
        Ok(text)
    }

    /// The token to send to IMS: one word of visible ASCII, so that nothing
    /// else (a credentials file piped by mistake) is posted as a token.
    fn one_token(text: &str) -> Result<&str, Failure> {
        if is_visible_ascii(text) {
            Ok(text)
        } else {
            Err(Failure::Config(
                "stdin does not hold one token: a token is one word of visible ASCII, \
                 with no space or line break"
                    .into(),
            ))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_token_on_stdin_is_one_trimmed_word_never_quoted() {
            assert_eq!(token_text(b"  a.b.c\n").unwrap(), "a.b.c");
            let empty = token_text(b" \n").unwrap_err();
            assert_eq!(empty.exit_code(), 2, "{}", empty.describe());
            assert!(empty.describe().starts_with("no token on stdin"));
            for bad in [&b"a.b\xff.c"[..], &[b'x'; MAX_TOKEN_BYTES + 1]] {
                let e = token_text(bad).unwrap_err();
                assert_eq!(e.exit_code(), 3, "{}", e.describe());
                assert!(!e.describe().contains("a.b"), "{}", e.describe());
            }
            assert!(token_text(&[b'x'; MAX_TOKEN_BYTES]).is_ok());
            assert_eq!(one_token("a.b.c").unwrap(), "a.b.c");
            for bad in [
                "s3cr3t one",
                "{\n\"client_secret\": \"s3cr3t\"\n}",
                "s3cr3t\u{7f}",
            ] {
                let e = one_token(bad).unwrap_err();
                assert_eq!(e.exit_code(), 3);
                assert!(!e.describe().contains("s3cr3t"), "{}", e.describe());
            }
        }

        #[test]
        fn validity_is_a_line_or_json() {
            let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
            assert_eq!(
                validity(Some(at), Format::Token),
                "valid until 2023-11-14T22:13:20Z"
            );
            let json: serde_json::Value =
                serde_json::from_str(&validity(Some(at), Format::Json)).unwrap();
            assert_eq!(
                json,
                serde_json::json!({"valid": true, "expires_at": "2023-11-14T22:13:20Z"})
            );
            assert!(validity(None, Format::Token).starts_with("valid "));
            let json: serde_json::Value =
                serde_json::from_str(&validity(None, Format::Json)).unwrap();
            assert_eq!(json["expires_at"], serde_json::Value::Null);
        }
    }
}

/// Where the credentials come from, and the warnings about them.
mod credentials {
    use std::io;
    use std::time::SystemTime;

    use ims_token::{Credentials, ServiceAccount};

    use crate::args::Options;
    use crate::failure::{chain, usage, Failure};
    use crate::output::{rfc3339, warn};

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

    /// The credentials, with --ims, --scope, --org-id and --resource
    /// applied, and where they came from.
    pub(crate) fn load(options: &Options) -> Result<(Credentials, Source), Failure> {
        match load_if_given(options)? {
            (Some(credentials), source) => Ok((credentials, source)),
            (None, _) => Err(usage(
                "no credentials: give -c FILE (or '-' for stdin), set IMS_CREDENTIALS, \
                 or set IMS_CLIENT_ID and the other IMS_* variables",
            )),
        }
    }

    /// [`load`], for a command that can do without credentials: none when
    /// neither -c, $IMS_CREDENTIALS nor IMS_CLIENT_ID gives any.
    pub(crate) fn load_if_given(
        options: &Options,
    ) -> Result<(Option<Credentials>, Source), Failure> {
        let source = source(options);
        if matches!(source, Source::Stdin) && options.command.reads_token() {
            return Err(usage(
                "the token comes on stdin: give the credentials as a file, not \
                 $IMS_CREDENTIALS=-",
            ));
        }
        let Some(credentials) = read_credentials(&source, options.credential.as_deref())? else {
            return Ok((None, source));
        };
        let credentials = with_options(credentials, options)?;
        if let Credentials::ServiceAccount(account) = &credentials {
            warn_about_certificate(account, SystemTime::now());
        }
        Ok((Some(credentials), source))
    }

    /// The credentials with what the options change or ask of IMS.
    fn with_options(
        mut credentials: Credentials,
        options: &Options,
    ) -> Result<Credentials, Failure> {
        if let Some(ims) = &options.ims {
            credentials = credentials.with_ims(ims)?;
        }
        if let Some(scope) = &options.scope {
            credentials = credentials.with_scopes(scope)?;
        }
        if let Some(org_id) = &options.org_id {
            credentials = credentials.with_requested_org_id(org_id)?;
        }
        for resource in &options.resources {
            credentials = credentials.with_resource(resource)?;
        }
        Ok(credentials)
    }

    /// -c, else $IMS_CREDENTIALS, else the environment.
    fn source(options: &Options) -> Source {
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

    /// One library call per source; none from an environment without
    /// IMS_CLIENT_ID.
    fn read_credentials(
        source: &Source,
        credential: Option<&str>,
    ) -> Result<Option<Credentials>, Failure> {
        match source {
            Source::File(path) => Ok(Some(Credentials::from_file_selecting(path, credential)?)),
            Source::Stdin => Credentials::from_reader_selecting(io::stdin().lock(), credential)
                .map(Some)
                .map_err(|e| Failure::Config(format!("stdin: {}", chain(&e)))),
            Source::Environment if credential.is_some() => Err(usage(
                "--credential chooses a credential of a Developer Console project: give the project file with -c",
            )),
            Source::Environment => Ok(Credentials::from_env()?),
        }
    }

    fn warn_about_certificate(account: &ServiceAccount, now: SystemTime) {
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
    use std::io::{self, Write};

    /// Prints the library's warnings as the command's own.
    struct StderrLogger;

    static STDERR_LOGGER: StderrLogger = StderrLogger;

    /// Makes the library's warnings the command's own, on stderr. The level
    /// is set here, at run time, in every build: no feature caps it (an
    /// application depending on the crate logs as it likes), and ureq's
    /// debug and trace lines (its trace dumps the wire, secrets included)
    /// are skipped before they are formatted.
    pub(crate) fn install_logger() {
        if log::set_logger(&STDERR_LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Warn);
        }
    }

    /// Whether a line is the crate's own: its target is `ims_token` or a
    /// module of it (the library and this command share the name).
    fn is_ours(target: &str) -> bool {
        target
            .strip_prefix("ims_token")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    }

    impl log::Log for StderrLogger {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            // Only the library's own lines, which never hold a secret; other
            // crates' warnings (rustls alerts, say) are not the user's business.
            metadata.level() <= log::Level::Warn && is_ours(metadata.target())
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

    /// A line of news on stderr, such as the sink's after each refresh.
    pub(crate) fn note(message: &str) {
        let _ = writeln!(io::stderr().lock(), "ims-token: {message}");
    }

    /// `2027-05-21T14:16:46Z`: the library's, so that every date the
    /// command prints reads the same.
    pub(crate) use ims_token::rfc3339;

    /// Appends `text` as a JSON string, escaped, without an allocation of its
    /// own: for a token, which must leave no copy behind.
    pub(crate) fn push_json_string(out: &mut String, text: &str) {
        out.push('"');
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn json_strings_are_escaped_and_read_back_the_same() {
            for text in ["tok", "a\"b\\c/d", "\u{1}\n\u{1f}", "é ✓", ""] {
                let mut out = String::new();
                push_json_string(&mut out, text);
                let back: String = serde_json::from_str(&out).unwrap();
                assert_eq!(back, text, "{out}");
            }
        }

        #[test]
        fn the_logger_passes_the_crates_warnings_only() {
            use log::{Level, Log as _};
            let enabled = |level, target| {
                let metadata = log::Metadata::builder().level(level).target(target).build();
                STDERR_LOGGER.enabled(&metadata)
            };
            assert!(enabled(Level::Warn, "ims_token"));
            assert!(enabled(Level::Error, "ims_token::clock"));
            for (level, target) in [
                (Level::Trace, "ureq_proto::util"),
                (Level::Debug, "ureq::unversioned::transport"),
                (Level::Warn, "ureq"),
                (Level::Warn, "rustls::conn"),
                (Level::Info, "ims_token"),
                (Level::Debug, "ims_token::client"),
                (Level::Warn, "ims_tokenizer"),
            ] {
                assert!(!enabled(level, target), "{level} {target}");
            }
            // The level is set at run time, so ureq skips its lines unformatted.
            install_logger();
            assert_eq!(log::max_level(), log::LevelFilter::Warn);
        }
    }
}

/// Files replaced whole, so that a reader sees the old file or the new one,
/// never a missing, empty or partial one, and never through a planted link:
/// the cache and the sink write this way.
mod atomic {
    use std::fs::{OpenOptions, Permissions};
    use std::io::{self, Write as _};
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    use std::path::{Path, PathBuf};

    /// Between the file's name and the writing process's id in a temp file.
    pub(crate) const TEMP_INFIX: &str = ".tmp.";

    /// Who is to own a file [`replace`] writes, by number; `None` leaves
    /// that part to the writer.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub(crate) struct Owner {
        pub(crate) uid: Option<u32>,
        pub(crate) gid: Option<u32>,
    }

    /// Replaces `path` with `bytes`: they go to a new temp file in the same
    /// folder (`PATH.tmp.PID`, created exclusively, never through a link,
    /// never blocking on a FIFO), which gets `owner` and then `mode` before
    /// any byte is written, is synced, and renamed over `path`. When `path`
    /// is there but is not a regular file (a symlink, a FIFO, a directory),
    /// nothing is written and the error says what it is. On failure the temp
    /// file is removed and `path` is as it was.
    pub(crate) fn replace(path: &Path, bytes: &[u8], mode: u32, owner: Owner) -> io::Result<()> {
        check_replaceable(path)?;
        let temp = temp_path(path);
        let result =
            write_new(&temp, bytes, mode, owner).and_then(|()| std::fs::rename(&temp, path));
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    fn write_new(temp: &Path, bytes: &[u8], mode: u32, owner: Owner) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(temp)?;
        if owner != Owner::default() {
            std::os::unix::fs::fchown(&file, owner.uid, owner.gid)?;
        }
        // After the chown (which may clear bits), and whatever the umask
        // took away at creation.
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    /// Nothing, or a regular file: what may be replaced (judged without
    /// following a link).
    pub(crate) fn check_replaceable(path: &Path) -> io::Result<()> {
        let metadata = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        let kind = if metadata.file_type().is_symlink() {
            Some("a symbolic link")
        } else {
            special_file(&metadata)
        };
        match kind {
            Some(kind) => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("it is {kind}, not a regular file: it is left as it is"),
            )),
            None => Ok(()),
        }
    }

    /// `PATH.tmp.PID`.
    fn temp_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(format!("{TEMP_INFIX}{}", std::process::id()));
        PathBuf::from(name)
    }

    /// What a file that is not a regular file is, in words: the library's
    /// wording.
    pub(crate) fn special_file(metadata: &std::fs::Metadata) -> Option<&'static str> {
        ims_token::special_file_kind(&metadata.file_type())
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::os::unix::fs::MetadataExt as _;

        fn temp_dir(tag: &str) -> PathBuf {
            let dir =
                std::env::temp_dir().join(format!("ims-token-atomic-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        }

        #[test]
        fn replace_writes_the_mode_on_every_write_and_leaves_no_temp_file() {
            let dir = temp_dir("mode");
            let path = dir.join("token");
            replace(&path, b"one\n", 0o640, Owner::default()).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
            std::fs::set_permissions(&path, Permissions::from_mode(0o666)).unwrap();
            replace(&path, b"two\n", 0o640, Owner::default()).unwrap();
            let metadata = std::fs::metadata(&path).unwrap();
            assert_eq!(metadata.mode() & 0o777, 0o640);
            assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
            let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
            assert_eq!(names.len(), 1, "{names:?}");
            // Owned by whoever we are already: allowed without privileges.
            let own = Owner {
                uid: Some(metadata.uid()),
                gid: Some(metadata.gid()),
            };
            replace(&path, b"three\n", 0o600, own).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
            let _ = std::fs::remove_dir_all(&dir);
        }

        #[test]
        fn replace_refuses_links_fifos_and_directories() {
            let dir = temp_dir("special");
            let target = dir.join("target");
            std::fs::write(&target, b"keep").unwrap();
            let link = dir.join("link");
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let e = replace(&link, b"x", 0o600, Owner::default()).unwrap_err();
            assert!(e.to_string().contains("a symbolic link"), "{e}");
            assert_eq!(std::fs::read(&target).unwrap(), b"keep");
            assert!(std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink());
            let e = replace(&dir, b"x", 0o600, Owner::default()).unwrap_err();
            assert!(e.to_string().contains("a directory"), "{e}");
            let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
            assert_eq!(names.len(), 2, "{names:?}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// The cache file: a token kept between runs, safe in shared directories.
mod cache {
    use std::fs::{File, OpenOptions};
    use std::io::{self, Read as _};
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
    use std::path::{Path, PathBuf};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use ims_token::{
        fallback_warning, printable_line, AccessToken, Client, Credentials, Error, Held,
        Invalidation, Outcome, RefreshRule, Step,
    };
    use serde_json::Value;
    use sha2::Digest as _;
    use zeroize::Zeroize as _;

    use crate::atomic::{self, special_file, Owner, TEMP_INFIX};
    use crate::failure::{chain, Failure};
    use crate::output::{push_json_string, warn};
    use zeroize::Zeroizing;

    /// Largest cache file read.
    const MAX_INPUT_BYTES: u64 = 1024 * 1024;

    /// A token kept in a file between runs, for the credentials it was made for.
    pub(crate) struct Cache {
        path: PathBuf,
        key: String,
        /// The file is one of a directory's, named by the key: no other
        /// credentials share it.
        in_directory: bool,
    }

    impl Cache {
        /// The cache of these credentials at `--cache`'s `path`: that file, or,
        /// for a directory, the file in it named by the credentials' key (one
        /// file per credential set). A directory is one that exists (not
        /// through a symlink), or a path ending in `/`, created (mode 0700,
        /// with its missing parents) when missing. `None`, after a warning,
        /// when such a directory cannot be had: the run goes on without the
        /// cache.
        pub(crate) fn new(path: &Path, credentials: &Credentials) -> Option<Self> {
            let key = credentials_key(credentials);
            match cache_directory(path) {
                Ok(Some(dir)) => Some(Cache {
                    path: dir.join(&key),
                    key,
                    in_directory: true,
                }),
                Ok(None) => Some(Cache {
                    path: path.to_owned(),
                    key,
                    in_directory: false,
                }),
                Err(e) => {
                    warn(&format!(
                        "cannot use the cache directory {path:?}: {e}; the run goes on without \
                         the cache"
                    ));
                    None
                }
            }
        }

        /// The file that holds the token (in a `--cache` directory, the one
        /// named by the credentials' key).
        pub(crate) fn file(&self) -> &Path {
            &self.path
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
                    let wait = lock_wait(client, credentials);
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
                warn(&format!("cannot write the cache {:?}: {e}", self.path));
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

        /// Drops `token` from the cache if it is the token kept there
        /// (compared in constant time), under the lock, so that the next run
        /// exchanges: a revoked token is not handed out again. Whether it
        /// was there; an error when it could not be dropped.
        pub(crate) fn drop_if_cached(
            &self,
            token: &str,
            client: &Client,
            credentials: &Credentials,
        ) -> io::Result<bool> {
            self.drop_under_lock(client, credentials, |entry| {
                let cached = entry.held.token.as_ref();
                if !cached.is_some_and(|t| t.is_same_token(token)) {
                    return false;
                }
                entry.held = Held::default();
                true
            })
        }

        /// An API refused `refused` (401): drops it from the cache if it is
        /// the token kept there, with the brake of the library's refresh
        /// rule ([`RefreshRule::invalidate`], as `TokenProvider::invalidate`),
        /// under the lock. When the last drop happened is kept in the file,
        /// so that the token that replaces the dropped one is known for a
        /// replacement by the runs after. An error when the token could not
        /// be dropped.
        pub(crate) fn invalidate(
            &self,
            rule: &RefreshRule,
            refused: &AccessToken,
            client: &Client,
            credentials: &Credentials,
        ) -> io::Result<Invalidation> {
            let mut outcome = Invalidation::NotHeld;
            self.drop_under_lock(client, credentials, |entry| {
                let now = SystemTime::now();
                let (held, last) = (&mut entry.held, &mut entry.last_invalidation);
                outcome = rule.invalidate(held, last, refused, now);
                outcome == Invalidation::Dropped
            })?;
            Ok(outcome)
        }

        /// Reads the entry under the lock; `drop` empties its token or says
        /// it did not. A dropped token's entry is written back: whether it
        /// was, or an error when it could not be written.
        fn drop_under_lock(
            &self,
            client: &Client,
            credentials: &Credentials,
            drop: impl FnOnce(&mut Entry) -> bool,
        ) -> io::Result<bool> {
            let _lock = self.lock_for_change(client, credentials);
            let Some(mut entry) = self.read(false) else {
                return Ok(false);
            };
            if !drop(&mut entry) {
                return Ok(false);
            }
            // A failure kept for the runs waiting on the lock is not theirs
            // to share now: they exchange.
            entry.failure = None;
            entry.round = entry.round.wrapping_add(1);
            self.write(&entry).map(|()| true)
        }

        /// The lock, for a change to the cached entry: waited for as long as
        /// a run waits for another's refresh. Without it (after a warning)
        /// the change is made all the same.
        fn lock_for_change(&self, client: &Client, credentials: &Credentials) -> Option<File> {
            let deadline = std::time::Instant::now() + lock_wait(client, credentials);
            self.open_lock().and_then(|file| {
                try_lock_until(&file, deadline)
                    .map(|()| file)
                    .map_err(|e| warn(&format!("cannot lock the cache: {e}")))
                    .ok()
            })
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
            // Sized up front: a buffer that grows leaves unwiped copies.
            let size = file.metadata().map_or(0, |m| m.len().min(MAX_INPUT_BYTES));
            let mut text = String::with_capacity(usize::try_from(size).unwrap_or(0) + 1);
            let read = (&file).take(MAX_INPUT_BYTES).read_to_string(&mut text);
            let ours = read.is_ok() && text.starts_with(CACHE_MARKER);
            let entry = if !ours {
                None
            } else if !is_private_file(&file) {
                if report {
                    warn(&format!(
                        "ignoring the cache {:?}: not a file of yours with mode 0600",
                        self.path
                    ));
                }
                None
            } else {
                let entry = parse_cache(&text, &self.key);
                if report
                    && entry.is_none()
                    && !self.in_directory
                    && is_for_other_key(&text, &self.key)
                {
                    warn(&format!(
                        "the cache {:?} holds the token of other credentials, which this run \
                         replaces: credentials sharing one cache file replace each other's \
                         token on every run (give --cache a directory: a file per credential set)",
                        self.path
                    ));
                }
                entry
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
            let text = cache_text(entry, &self.key);
            atomic::replace(&self.path, text.as_bytes(), 0o600, Owner::default())
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

    /// How long a run waits for the lock of another run's refresh: as long
    /// as one fetch can take with this run's settings
    /// ([`Client::max_fetch_time`]), plus as much again up to [`LOCK_SLACK`]
    /// for the rest of that run. A run told to be quick (`--timeout 1
    /// --retries 0`) waits 2 s; one with the defaults 135 s.
    fn lock_wait(client: &Client, credentials: &Credentials) -> Duration {
        let fetch = client.max_fetch_time(credentials);
        fetch + fetch.min(LOCK_SLACK)
    }

    /// The most a run waits for the lock beyond one fetch's time.
    const LOCK_SLACK: Duration = Duration::from_secs(5);

    /// What the cache file holds: the token as the refresh rule sees it and,
    /// after a failed refresh, what the failure was.
    #[derive(Debug, Default)]
    struct Entry {
        held: Held,
        failure: Option<KeptFailure>,
        /// Counts the writes, so that a run can tell a failure written while it
        /// waited on the lock from an older one without comparing clocks.
        round: u64,
        /// When `invalidate` last dropped a token (the brake's state, see
        /// [`RefreshRule::invalidate`]); kept through the writes of new
        /// tokens, so that a replacement is known for one.
        last_invalidation: Option<SystemTime>,
    }

    /// A failed refresh, as the cache file keeps it: its message (one
    /// printable line), the cause in the warning of the runs that use the
    /// kept token in the pause after it; and whether it is worth retrying,
    /// and so shared (exit 5) with the runs that waited on the lock.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct KeptFailure {
        message: String,
        shareable: bool,
    }

    impl KeptFailure {
        fn of(e: &Error) -> Self {
            KeptFailure {
                message: chain(e),
                shareable: e.is_retryable(),
            }
        }
    }

    /// A failed refresh worth retrying (exit 5), for the runs that waited on
    /// the lock while it ran.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct SharedFailure {
        pub(crate) message: String,
    }

    /// The cached token, if the refresh rule says to hand it out now;
    /// `refreshing`: another run holds the lock. A token handed out in the
    /// pause after a failed refresh comes with the warning the library words.
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
        if let Some(warning) = pause_warning(rule, entry, now) {
            warn(&warning);
        }
        entry.held.token.clone()
    }

    /// The warning for the cached token handed out at `now`, when it is due
    /// and in the pause after a failed refresh (as the rule sees the pause:
    /// [`Held::is_pausing`]), with the failure's cause; none otherwise.
    fn pause_warning(rule: &RefreshRule, entry: &Entry, now: SystemTime) -> Option<String> {
        let held = &entry.held;
        let token = held.token.as_ref()?;
        let due = now >= rule.refresh_at(token);
        (due && held.is_pausing(now)).then(|| {
            let cause = entry
                .failure
                .as_ref()
                .map_or("its cause is not in the cache file", |f| f.message.as_str());
            fallback_warning(token, held.retry_at, now, &cause)
        })
    }

    /// The entry to write after a fetch, and what the run gets: the refresh
    /// rule records the result (a new token; the old one kept for a pause; or
    /// none). The failure is kept with a kept token (for the warning of the
    /// runs in the pause), and with none when it is worth retrying (for the
    /// runs that waited).
    fn entry_after_fetch(
        rule: &RefreshRule,
        old: Option<Entry>,
        result: Result<AccessToken, Error>,
        now: SystemTime,
    ) -> (Entry, Outcome) {
        let mut entry = old.unwrap_or_default();
        entry.round = entry.round.wrapping_add(1);
        let outcome = rule.record(&mut entry.held, result, now);
        entry.failure = match &outcome {
            Outcome::New(_) => None,
            Outcome::Kept(_, e) => Some(KeptFailure::of(e)),
            Outcome::Failed(e) => Some(KeptFailure::of(e)).filter(|f| f.shareable),
        };
        (entry, outcome)
    }

    /// The failure worth retrying that another run wrote while this one
    /// waited on the lock: one in the entry read after the lock that was not
    /// there before it.
    fn shared_failure(before: Option<&Entry>, after: Option<&Entry>) -> Option<SharedFailure> {
        let after = after?;
        let written_since = before.is_none_or(|b| b.round != after.round);
        let failure = after.failure.as_ref().filter(|f| f.shareable)?;
        written_since.then(|| SharedFailure {
            message: failure.message.clone(),
        })
    }

    /// The first bytes of every cache file ims-token writes: how a file is
    /// known to be ours, and so safe to replace, even when it was cut short.
    const CACHE_MARKER: &str = "{\"ims_token_cache\":1,";

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
                format!("{path:?} is {what}; going on without the lock"),
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
    /// token (flow, endpoint, client, scopes, for a JWT account its org and
    /// technical account, and for OAuth the `org_id` and `resource`s asked
    /// of IMS), never the secret.
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
        let digest = sha2::Sha256::digest(key_text(parts, credentials).as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What the key hashes. Without an `org_id` or `resource` asked of IMS,
    /// the lines of `parts`, as ims-token has always written them (so that
    /// caches stay valid); with them, a JSON array of `parts` and of what was
    /// asked, which cannot be mistaken for lines that start with the IMS URL
    /// nor for another request.
    fn key_text(parts: Vec<String>, credentials: &Credentials) -> String {
        let (org_id, resources) = match credentials {
            Credentials::OAuth(o) => (o.requested_org_id(), o.resources()),
            _ => (None, &[][..]),
        };
        if org_id.is_none() && resources.is_empty() {
            return parts.join("\n");
        }
        let asked = serde_json::json!({ "org_id": org_id, "resource": resources });
        serde_json::json!([parts, asked]).to_string()
    }

    /// `--cache`'s directory, if `path` names one: a directory there (not a
    /// symlink to one, as a file there is not followed either), or a path
    /// ending in `/`, which is made (mode 0700, with its missing parents)
    /// when missing. `Ok(None)`: `path` is the cache file.
    fn cache_directory(path: &Path) -> io::Result<Option<PathBuf>> {
        let wants_directory = path.as_os_str().as_encoded_bytes().ends_with(b"/");
        // Without the trailing `/`, which would make lstat follow a symlink.
        let dir: PathBuf = path.components().collect();
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(Some(dir)),
            Ok(_) if !wants_directory => Ok(None),
            Ok(m) => Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("it is {}, not a directory", file_kind(&m)),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound && wants_directory => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)?;
                Ok(Some(dir))
            }
            Err(_) if !wants_directory => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What a file is, in words, as `lstat` sees it.
    fn file_kind(metadata: &std::fs::Metadata) -> &'static str {
        if metadata.file_type().is_symlink() {
            "a symbolic link"
        } else {
            special_file(metadata).unwrap_or("a file")
        }
    }

    /// Whether a cache text of ours was written for other credentials (its
    /// key is another): the token it holds is wiped from the parsed copy.
    fn is_for_other_key(text: &str, key: &str) -> bool {
        let Ok(mut json) = serde_json::from_str::<Value>(text) else {
            return false;
        };
        let other = json
            .get("key")
            .and_then(Value::as_str)
            .is_some_and(|k| k != key);
        if let Some(Value::String(token)) = json.get_mut("access_token") {
            token.zeroize();
        }
        other
    }

    /// The cache file's text: JSON that starts with [`CACHE_MARKER`]; the token
    /// (if one is kept) and, after a failed refresh, when to ask IMS again and
    /// what the failure was. The token goes straight into the one buffer,
    /// which never grows and is wiped on drop; the rest is serde_json's.
    fn cache_text(entry: &Entry, key: &str) -> Zeroizing<String> {
        let mut json = serde_json::json!({ "key": key });
        if let Some(token) = &entry.held.token {
            json["token_type"] = token.token_type().into();
            json["received_at"] = epoch_secs(token.received_at()).into();
            json["expires_at"] = epoch_secs(token.expires_at()).into();
        }
        if let Some(at) = entry.held.retry_at {
            json["retry_at"] = epoch_secs(at).into();
        }
        if let Some(failure) = &entry.failure {
            json["failure"] = serde_json::json!({
                "message": failure.message,
                "shareable": failure.shareable,
            });
        }
        json["round"] = entry.round.into();
        if let Some(at) = entry.last_invalidation {
            json["last_invalidation"] = epoch_secs(at).into();
        }
        let fields = json.to_string();
        // `fields` is a JSON object: the marker (and the token) take the
        // place of its `{`.
        let rest = fields.strip_prefix('{').unwrap_or(&fields);
        let secret = entry.held.token.as_ref().map_or("", |t| t.secret());
        let room = CACHE_MARKER.len() + 2 * secret.len() + rest.len() + 32;
        let mut text = Zeroizing::new(String::with_capacity(room));
        text.push_str(CACHE_MARKER);
        if entry.held.token.is_some() {
            text.push_str("\"access_token\":");
            push_json_string(&mut text, secret);
            text.push(',');
        }
        text.push_str(rest);
        text
    }

    /// The entry in a cache file's text, if it is one of ours for `key`;
    /// fields that are missing or mistyped are left out. The parsed copy of
    /// the token is wiped.
    fn parse_cache(text: &str, key: &str) -> Option<Entry> {
        if !text.starts_with(CACHE_MARKER) {
            return None;
        }
        let mut json: Value = serde_json::from_str(text).ok()?;
        let entry = entry_in(&json, key);
        if let Some(Value::String(token)) = json.get_mut("access_token") {
            token.zeroize();
        }
        entry
    }

    fn entry_in(json: &Value, key: &str) -> Option<Entry> {
        if json.get("ims_token_cache")?.as_u64()? != 1 || json.get("key")?.as_str()? != key {
            return None;
        }
        Some(Entry {
            held: Held {
                token: cached_token(json),
                retry_at: json.get("retry_at").and_then(epoch_time),
            },
            failure: json.get("failure").and_then(cached_failure),
            round: json.get("round").and_then(Value::as_u64).unwrap_or(0),
            last_invalidation: json.get("last_invalidation").and_then(epoch_time),
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

    fn cached_failure(json: &Value) -> Option<KeptFailure> {
        // Printed on stderr: one printable line, by the library's rule,
        // whoever edited the file.
        let message = printable_line(json.get("message")?.as_str()?);
        Some(KeptFailure {
            message: Some(message).filter(|m| !m.trim().is_empty())?,
            // Before `shareable`, only a failure worth retrying was kept.
            shareable: json.get("shareable").map_or(Some(true), Value::as_bool)?,
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

        /// IMS's 503, as the cache file keeps it.
        fn unavailable() -> Option<KeptFailure> {
            Some(KeptFailure {
                message: "IMS could not serve the request (503)".into(),
                shareable: true,
            })
        }

        #[test]
        fn only_a_failure_written_while_waiting_is_shared() {
            let failed = |round| Entry {
                failure: unavailable(),
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
            // Not worth retrying: each waiting run tries for itself.
            let mut odd = failed(5);
            odd.failure = Some(KeptFailure {
                message: "unexpected IMS reply (200): the IMS reply is not JSON".into(),
                shareable: false,
            });
            assert!(shared_failure(Some(&quiet), Some(&odd)).is_none());
        }

        #[test]
        fn runs_in_the_pause_warn_with_the_cause_and_only_in_the_pause() {
            let rule = RefreshRule::exact(MARGIN);
            let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let due = t0 + Duration::from_secs(86_400 - 300);
            let token = day_token("tok", t0);
            let mut entry = paused(&token, Some(due + Duration::from_secs(20)));
            entry.failure = Some(KeptFailure {
                message: "the TLS certificate is not trusted".into(),
                shareable: false,
            });
            let warning = pause_warning(&rule, &entry, due).unwrap();
            assert!(
                warning.ends_with("IMS is asked again in 20 s: the TLS certificate is not trusted"),
                "{warning}"
            );
            // Without the failure (a file of an earlier ims-token): not an
            // empty cause.
            entry.failure = None;
            let warning = pause_warning(&rule, &entry, due).unwrap();
            assert!(
                warning.ends_with(": its cause is not in the cache file"),
                "{warning}"
            );
            // The pause is over (another run refreshes, holding the lock), or
            // the token is not due: no warning.
            let over = paused(&token, Some(due - Duration::from_secs(60)));
            assert!(pause_warning(&rule, &over, due).is_none());
            assert!(use_cached(&rule, Some(&over), due, true).is_some());
            assert!(pause_warning(&rule, &entry, t0 + Duration::from_secs(60)).is_none());
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
            let failure = kept.failure.unwrap();
            assert!(failure.message.contains("503") && failure.shareable);
            let unavailable = ims_reply(503, "temporarily_unavailable", t0);
            let (nothing_old, _) = entry_after_fetch(&rule, None, unavailable, t0);
            assert!(nothing_old.held.token.is_none() && nothing_old.held.retry_at.is_none());
            assert_eq!(nothing_old.round, 1);

            // A TLS or configuration problem keeps a working token too (as the
            // provider does), but is not shared: waiting runs try for
            // themselves. Its message is kept, for the runs in the pause.
            let config = Err(Endpoint::parse("ftp://ims.example").unwrap_err());
            assert!(config.as_ref().is_err_and(Error::is_config));
            let old = entry_of(&day_token("old", t0));
            let (kept, outcome) = entry_after_fetch(&rule, Some(old), config, t0);
            assert!(matches!(outcome, Outcome::Kept(..)));
            let failure = kept.failure.as_ref().unwrap();
            assert!(failure.message.contains("scheme `ftp`"), "{failure:?}");
            assert!(kept.held.token.is_some() && !failure.shareable);
            assert!(shared_failure(None, Some(&kept)).is_none());

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
                failure: unavailable(),
                round: 3,
                last_invalidation: Some(t0 - Duration::from_secs(5)),
            };
            let text = cache_text(&entry, "k1");
            let back = parse_cache(&text, "k1").unwrap();
            assert_eq!(back.held.token.unwrap().secret(), "tok");
            assert_eq!(back.held.retry_at, entry.held.retry_at);
            assert_eq!(back.failure, entry.failure);
            assert_eq!(back.round, 3);
            assert_eq!(back.last_invalidation, entry.last_invalidation);
            // A cache of an ims-token before the brake has none; a mistyped
            // one is left out, the rest read as ever.
            let mut json: Value = serde_json::from_str(&text).unwrap();
            json.as_object_mut().unwrap().remove("last_invalidation");
            let old = parse_cache(&marked(&json), "k1").unwrap();
            assert!(old.last_invalidation.is_none() && old.held.token.is_some());
            json["last_invalidation"] = "yesterday".into();
            let odd = parse_cache(&marked(&json), "k1").unwrap();
            assert!(odd.last_invalidation.is_none() && odd.held.token.is_some());
            // A failure alone, and a message that is not one printable line.
            let only = Entry {
                failure: entry.failure.clone(),
                ..Entry::default()
            };
            let back = parse_cache(&cache_text(&only, "k1"), "k1").unwrap();
            assert!(back.held.token.is_none() && back.failure.is_some());
            let mut json: Value = serde_json::from_str(&cache_text(&only, "k1")).unwrap();
            json["failure"]["message"] = "two\nlines\u{1b}]0;x\u{7}\u{202e}".into();
            let back = parse_cache(&marked(&json), "k1").unwrap().failure.unwrap();
            assert_eq!(back.message, "two lines ]0;x ");
            json["failure"]["message"] = " \n".into();
            assert!(parse_cache(&marked(&json), "k1").unwrap().failure.is_none());
            // Not worth sharing, kept so; a failure of an ims-token before
            // `shareable` was one worth retrying.
            let odd = Entry {
                failure: Some(KeptFailure {
                    message: "unexpected IMS reply (200)".into(),
                    shareable: false,
                }),
                ..Entry::default()
            };
            let back = parse_cache(&cache_text(&odd, "k1"), "k1").unwrap();
            assert_eq!(back.failure, odd.failure);
            let mut json: Value = serde_json::from_str(&cache_text(&only, "k1")).unwrap();
            json["failure"].as_object_mut().unwrap().remove("shareable");
            let back = parse_cache(&marked(&json), "k1").unwrap();
            assert_eq!(back.failure, only.failure);
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
            assert!(text.starts_with(CACHE_MARKER), "{}", text.as_str());
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
        fn the_cache_key_tells_requested_orgs_and_resources_apart() {
            let oauth = |org: &str| {
                ims_token::OAuthCredentials::builder()
                    .client_id("client")
                    .client_secret(ims_token::ClientSecret::new("secret"))
                    .scopes("openid,AdobeID")
                    .org_id(org)
                    .build()
                    .unwrap()
            };
            let key =
                |o: &ims_token::OAuthCredentials| credentials_key(&Credentials::OAuth(o.clone()));
            // Without them, the key of every earlier ims-token: caches stay valid.
            let earlier = "https://ims-na1.adobelogin.com\nclient\noauth\nopenid\nAdobeID";
            let digest = sha2::Sha256::digest(earlier.as_bytes());
            let earlier: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(key(&oauth("A@AdobeOrg")), earlier);
            // The org for the headers is not sent to IMS: not in the key.
            assert_eq!(key(&oauth("B@AdobeOrg")), earlier);
            let asked = |org: Option<&str>, resources: &[&str]| {
                let mut o = oauth("A@AdobeOrg");
                if let Some(org) = org {
                    o = o.with_requested_org_id(org).unwrap();
                }
                for r in resources {
                    o = o.with_resource(r).unwrap();
                }
                key(&o)
            };
            let keys = [
                earlier.clone(),
                asked(Some("A@AdobeOrg"), &[]),
                asked(Some("B@AdobeOrg"), &[]),
                asked(None, &["urn:a"]),
                asked(None, &["urn:b"]),
                asked(None, &["urn:a", "urn:b"]),
                asked(Some("A@AdobeOrg"), &["urn:a"]),
            ];
            let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
            assert_eq!(distinct.len(), keys.len(), "{keys:#?}");
            assert!(keys.iter().all(|k| k.len() == 64));
            // The same request, the same key.
            assert_eq!(
                asked(Some("B@AdobeOrg"), &["urn:a"]),
                asked(Some("B@AdobeOrg"), &["urn:a"])
            );
        }

        #[test]
        fn cache_directories_are_existing_ones_or_made_when_named_with_a_slash() {
            use std::os::unix::fs::PermissionsExt as _;
            let root = std::env::temp_dir().join(format!("ims-token-dirs-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir(&root).unwrap();
            let at = |name: &str| root.join(name);
            let named = |name: &str| PathBuf::from(format!("{}/{name}", root.display()));
            std::fs::create_dir(at("dir")).unwrap();
            std::fs::write(at("file"), "x").unwrap();
            std::os::unix::fs::symlink(at("dir"), at("link")).unwrap();

            assert_eq!(cache_directory(&at("dir")).unwrap(), Some(at("dir")));
            assert_eq!(cache_directory(&named("dir/")).unwrap(), Some(at("dir")));
            // A file, a missing file, a symlink: the cache file itself.
            for name in ["file", "missing", "link"] {
                assert_eq!(cache_directory(&at(name)).unwrap(), None, "{name}");
            }
            // Ending in `/`: made with its parents, 0700; or what is there is named.
            let made = cache_directory(&named("new/ims-token/")).unwrap();
            assert_eq!(made, Some(at("new/ims-token")));
            for dir in ["new", "new/ims-token"] {
                let mode = std::fs::metadata(at(dir)).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o700, "{dir}");
            }
            for (name, kind) in [("file/", "a file"), ("link/", "a symbolic link")] {
                let e = cache_directory(&named(name)).unwrap_err();
                assert_eq!(e.to_string(), format!("it is {kind}, not a directory"));
            }
            assert!(!at("dir").join("x").exists() && !at("file").is_dir());
            std::fs::remove_dir_all(&root).unwrap();
        }

        #[test]
        fn a_cache_text_for_other_credentials_is_told_from_a_broken_one() {
            let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
            let text = cache_text(&entry_of(&day_token("tok", t0)), "k1");
            assert!(is_for_other_key(&text, "k2"));
            assert!(!is_for_other_key(&text, "k1"));
            assert!(!is_for_other_key(&text[..text.len() - 1], "k2"));
            assert!(!is_for_other_key(CACHE_MARKER, "k2"));
        }

        /// OAuth credentials with one client secret.
        fn oauth_credentials() -> Credentials {
            Credentials::OAuth(
                ims_token::OAuthCredentials::builder()
                    .client_id("client")
                    .client_secret(ims_token::ClientSecret::new("secret"))
                    .scopes("openid")
                    .build()
                    .unwrap(),
            )
        }

        /// A cache file in a fresh temp dir (named by `tag`), for OAuth
        /// credentials; a client to wait on its lock with.
        fn temp_cache(tag: &str) -> (PathBuf, Cache, Credentials, Client) {
            let dir = std::env::temp_dir().join(format!("ims-token-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let credentials = oauth_credentials();
            let cache = Cache::new(&dir.join("cache"), &credentials).unwrap();
            (dir, cache, credentials, Client::new().unwrap())
        }

        #[test]
        fn the_lock_is_waited_on_for_one_fetch_and_as_long_again_at_most_5_s_more() {
            let credentials = oauth_credentials();
            let client = |timeout: Duration, retries| {
                Client::builder()
                    .proxy(None)
                    .timeout(timeout)
                    .retries(retries)
                    .build()
                    .unwrap()
            };
            // The defaults: 3 attempts of 30 s and 2 waits of 20 s, plus 5 s.
            let defaults = Client::builder().proxy(None).build().unwrap();
            assert_eq!(lock_wait(&defaults, &credentials), Duration::from_secs(135));
            let quick = client(Duration::from_secs(1), 0);
            assert_eq!(lock_wait(&quick, &credentials), Duration::from_secs(2));
            let quicker = client(Duration::from_millis(200), 0);
            assert_eq!(
                lock_wait(&quicker, &credentials),
                Duration::from_millis(400)
            );
        }

        #[test]
        fn a_revoked_token_is_dropped_only_when_it_is_the_cached_one() {
            let (dir, cache, credentials, client) = temp_cache("drop");
            assert!(!cache.drop_if_cached("tok", &client, &credentials).unwrap());
            let t0 = SystemTime::now();
            let mut entry = entry_of(&day_token("tok", t0));
            entry.round = 7;
            cache.write(&entry).unwrap();
            for other in ["tok2", "to", "TOK", ""] {
                assert!(!cache.drop_if_cached(other, &client, &credentials).unwrap());
                assert!(cache.read(false).unwrap().held.token.is_some(), "{other}");
            }
            assert!(cache.drop_if_cached("tok", &client, &credentials).unwrap());
            let after = cache.read(false).unwrap();
            assert!(after.held.token.is_none() && after.held.retry_at.is_none());
            assert_eq!(after.round, 8);
            // Still a cache of ours: the next run replaces it.
            assert!(matches!(
                existing(&cache.path),
                Existing::Replaceable(Some(_))
            ));
            assert!(!cache.drop_if_cached("tok", &client, &credentials).unwrap());
            let _ = std::fs::remove_dir_all(&dir);
        }

        #[test]
        fn invalidate_drops_the_cached_token_with_the_brake_and_keeps_its_time() {
            let (dir, cache, credentials, client) = temp_cache("invalidate");
            let rule = RefreshRule::exact(MARGIN);
            let now = SystemTime::now();
            let invalidate = |name: &str| {
                let refused = day_token(name, now);
                cache
                    .invalidate(&rule, &refused, &client, &credentials)
                    .unwrap()
            };
            // No cache file: nothing held.
            assert_eq!(invalidate("first"), Invalidation::NotHeld);
            let hour = Duration::from_secs(3600);
            let mut entry = entry_of(&day_token("first", now - hour));
            entry.round = 4;
            entry.failure = unavailable();
            cache.write(&entry).unwrap();
            assert_eq!(invalidate("other"), Invalidation::NotHeld);
            assert_eq!(cache.read(false).unwrap().round, 4, "not written");
            assert_eq!(invalidate("first"), Invalidation::Dropped);
            let after = cache.read(false).unwrap();
            assert!(after.held.token.is_none() && after.failure.is_none());
            assert_eq!(after.round, 5);
            let dropped_at = after.last_invalidation.expect("the time of the drop");
            let since = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
            assert!(epoch_secs(dropped_at) >= since, "{dropped_at:?}");

            // A fetch writes the replacement and keeps the time of the drop.
            let (entry, _) =
                entry_after_fetch(&rule, Some(after), Ok(day_token("second", now)), now);
            assert_eq!(entry.last_invalidation, Some(dropped_at));
            cache.write(&entry).unwrap();
            // The replacement, refused at once: kept by the brake.
            assert!(matches!(invalidate("second"), Invalidation::Kept { .. }));
            assert!(cache.read(false).unwrap().held.token.is_some());
            // The same token, when the drop was over a cooldown before it came.
            let mut long_ago = cache.read(false).unwrap();
            long_ago.last_invalidation = Some(now - hour);
            cache.write(&long_ago).unwrap();
            assert_eq!(invalidate("second"), Invalidation::Dropped);
            let _ = std::fs::remove_dir_all(&dir);
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

/// `sink`: keeps a file fresh with the token for other processes, containers
/// and systemd. It follows the library's refresh rule (`RefreshRule`, as
/// `TokenProvider` and `--cache` do) and sleeps until the rule's next point,
/// woken early only by a signal or a finished refresh.
///
/// What FILE holds: the newest token that works, or nothing. A refresh that
/// fails other than by IMS's refusal keeps the token in FILE while it works
/// (the rule keeps it); IMS's refusal removes FILE at once (the rule drops
/// the token: a refused credential gets no token), and so does the token's
/// expiry with no new one (an expired token only gets 401s). So a reader
/// that finds FILE has a token that has not expired.
mod sink {
    use std::ffi::{OsStr, OsString};
    use std::fs::OpenOptions;
    use std::io::{self, Read as _};
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use ims_token::{
        fallback_warning, AccessToken, Client, Credentials, Error, Held, Outcome, RefreshRule, Step,
    };
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

    use crate::args::Options;
    use crate::atomic::{self, Owner};
    use crate::commands::{check_ids, client, render, EXEC_HIDDEN};
    use crate::credentials::{load, Source};
    use crate::failure::{chain, Failure};
    use crate::output::{note, rfc3339, warn};

    /// The status file's mode: it holds no secret, and a probe or a
    /// node_exporter of another user reads it.
    const STATUS_MODE: u32 = 0o644;

    /// Largest pid file read.
    const MAX_PID_FILE_BYTES: u64 = 64;

    /// What wakes the sink besides its timer.
    enum Event {
        Signal(i32),
        Fetched(Result<AccessToken, Error>),
    }

    pub(crate) fn sink_command(options: &Options) -> Result<(), Failure> {
        // First: from here on a SIGTERM ends the sink cleanly. (--once keeps
        // the default: a killed run leaves FILE as it was.)
        let (events, receiver) = mpsc::channel();
        if !options.once {
            watch_signals(events.clone())?;
        }
        let out = check_targets(options)?;
        let (credentials, source) = load(options)?;
        check_not_credentials(options, &source)?;
        check_ids(&credentials, options)?;
        let client = client(options)?;
        let margin = Duration::from_secs(options.refresh_margin);
        let mut sink = Sink {
            options,
            out,
            client,
            credentials: Arc::new(credentials),
            source,
            rule: RefreshRule::new(margin),
            held: Held::default(),
            written: None,
            holds: Holds::Nothing,
            failures: 0,
            next_try: SystemTime::now(),
            rewrite_at: None,
            fetching: false,
            again: false,
            reload: false,
            ready: false,
            attempted_at: None,
            refreshed_at: None,
            last_error: None,
            fetcher: None,
            runner: None,
        };
        if options.once {
            return sink.once();
        }
        if matches!(*sink.credentials, Credentials::LocalToken(_)) {
            return Err(Failure::Config(
                "a local development token cannot be refreshed: sink --once writes it \
                 as it is, or use credentials that IMS exchanges"
                    .into(),
            ));
        }
        sink.fetcher = Some(spawn_fetcher(sink.client.clone(), events)?);
        if !options.then.is_empty() {
            sink.runner = Some(spawn_runner(options, &sink.out)?);
        }
        sink.run(&receiver)
    }

    /// What FILE holds, for the status file and the log.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Holds {
        /// Nothing written yet.
        Nothing,
        /// The token of the last refresh.
        Fresh,
        /// The token before a refresh that failed other than by a refusal.
        Kept,
        /// Nothing: removed after IMS's refusal.
        Refused,
        /// Nothing: removed when its token expired with no new one.
        Expired,
    }

    impl Holds {
        fn word(self) -> &'static str {
            match self {
                Holds::Nothing => "none",
                Holds::Fresh => "fresh",
                Holds::Kept => "kept",
                Holds::Refused => "refused",
                Holds::Expired => "expired",
            }
        }

        fn note(self) -> &'static str {
            match self {
                Holds::Nothing => "FILE has not been written yet",
                Holds::Fresh => "FILE holds the token of the last refresh, until expires_at",
                Holds::Kept => {
                    "the last refresh failed other than by IMS's refusal: FILE keeps the \
                     token before it, which works until expires_at; IMS is asked again at \
                     next_attempt_at"
                }
                Holds::Refused => {
                    "IMS refused the credentials: FILE was removed, as a refused credential \
                     gets no token; IMS is asked again at next_attempt_at, with the \
                     credentials read again"
                }
                Holds::Expired => {
                    "the token expired before a new one could be had: FILE was removed, as \
                     an expired token only gets 401s; IMS is asked again at next_attempt_at"
                }
            }
        }
    }

    struct Sink<'a> {
        options: &'a Options,
        out: PathBuf,
        client: Client,
        credentials: Arc<Credentials>,
        source: Source,
        rule: RefreshRule,
        /// The token as the rule sees it.
        held: Held,
        /// The token in FILE, while FILE holds one.
        written: Option<AccessToken>,
        holds: Holds,
        /// Failed attempts in a row (fetches or writes).
        failures: u32,
        /// Holding no token that works: when to ask IMS again.
        next_try: SystemTime,
        /// After a new token could not be written: when to write it again.
        rewrite_at: Option<SystemTime>,
        fetching: bool,
        /// SIGHUP came during a fetch: fetch again after it.
        again: bool,
        /// IMS refused: read the credentials again before the next fetch.
        reload: bool,
        /// FILE has been written once (systemd told).
        ready: bool,
        attempted_at: Option<SystemTime>,
        refreshed_at: Option<SystemTime>,
        last_error: Option<String>,
        /// The refresh thread (without it, `--once` fetches itself).
        fetcher: Option<Sender<Arc<Credentials>>>,
        /// The thread that runs COMMAND after writes (without it, `--once`
        /// runs COMMAND itself).
        runner: Option<Sender<()>>,
    }

    impl Sink<'_> {
        /// `--once`: fetch, write, tell, exit with a token run's code.
        fn once(mut self) -> Result<(), Failure> {
            let result = self.client.fetch(&self.credentials);
            let now = SystemTime::now();
            self.attempted_at = Some(now);
            match result {
                Ok(token) => {
                    self.held.token = Some(token.clone());
                    self.write(token, now)
                }
                Err(e) => {
                    self.last_error = Some(chain(&e));
                    self.write_status(now);
                    Err(e.into())
                }
            }
        }

        fn run(mut self, events: &Receiver<Event>) -> Result<(), Failure> {
            loop {
                self.on_time(SystemTime::now())?;
                let now = SystemTime::now();
                let event = match self.wake_at(now) {
                    Some(at) => {
                        let wait = at.duration_since(now).unwrap_or_default();
                        match events.recv_timeout(wait) {
                            Ok(event) => Some(event),
                            Err(RecvTimeoutError::Timeout) => None,
                            Err(RecvTimeoutError::Disconnected) => return Err(stopped()),
                        }
                    }
                    None => Some(events.recv().map_err(|_| stopped())?),
                };
                match event {
                    None => {}
                    Some(Event::Signal(SIGHUP)) => self.hang_up()?,
                    Some(Event::Signal(_)) => {
                        self.stop();
                        return Ok(());
                    }
                    Some(Event::Fetched(result)) => self.fetched(result)?,
                }
            }
        }

        /// What is due at `now`: FILE removed when its token expires, a
        /// write tried again, a refresh started when the rule says so.
        fn on_time(&mut self, now: SystemTime) -> Result<(), Failure> {
            if self.written.as_ref().is_some_and(|t| t.is_expired(now)) {
                let cause = match &self.last_error {
                    Some(e) => format!(" (last error: {e})"),
                    None => " (a refresh still runs)".into(),
                };
                warn(&format!(
                    "the token in {} expired before a new one could be had: {0} removed{cause}",
                    format_args!("{:?}", self.out)
                ));
                self.remove(Holds::Expired, now);
            }
            if self.rewrite_at.is_some_and(|at| at <= now) {
                self.rewrite_at = None;
                if let Some(token) = self.usable(now).cloned() {
                    self.write(token, now)?;
                }
            }
            if !self.fetching && self.refresh_due(now) {
                self.start_fetch()?;
            }
            Ok(())
        }

        /// The held token, if it works at `now`.
        fn usable(&self, now: SystemTime) -> Option<&AccessToken> {
            self.held.token.as_ref().filter(|t| !t.is_expired(now))
        }

        fn refresh_due(&self, now: SystemTime) -> bool {
            match self.usable(now) {
                Some(_) => self.rule.step(&self.held, now, false) == Step::Refresh,
                None => now >= self.next_try,
            }
        }

        /// When the next refresh is due (none while one runs).
        fn next_refresh(&self, now: SystemTime) -> Option<SystemTime> {
            if self.fetching {
                return None;
            }
            Some(match self.usable(now) {
                Some(_) => self.rule.next_refresh(&self.held, now),
                None => self.next_try.max(now),
            })
        }

        /// When to wake with no event: the first of FILE's token expiring, a
        /// write to try again and the next refresh.
        fn wake_at(&self, now: SystemTime) -> Option<SystemTime> {
            let expiry = self.written.as_ref().map(AccessToken::expires_at);
            [expiry, self.rewrite_at, self.next_refresh(now)]
                .into_iter()
                .flatten()
                .min()
        }

        fn start_fetch(&mut self) -> Result<(), Failure> {
            if std::mem::take(&mut self.reload) {
                self.read_credentials(false);
            }
            let fetcher = self.fetcher.as_ref().ok_or_else(stopped)?;
            fetcher
                .send(self.credentials.clone())
                .map_err(|_| stopped())?;
            self.fetching = true;
            Ok(())
        }

        /// SIGHUP: the credentials read again, and a refresh now.
        fn hang_up(&mut self) -> Result<(), Failure> {
            self.read_credentials(true);
            if self.fetching {
                self.again = true;
                Ok(())
            } else {
                self.start_fetch()
            }
        }

        /// Reads the credentials again (a rotated secret); on a problem they
        /// stay as they were, with a warning. Credentials from stdin cannot
        /// be read again: said only when `asked` (SIGHUP).
        fn read_credentials(&mut self, asked: bool) {
            if matches!(self.source, Source::Stdin) {
                if asked {
                    warn("the credentials came from stdin, which cannot be read again: kept as they were");
                }
                return;
            }
            let checked = load(self.options).and_then(|(credentials, _)| {
                if matches!(credentials, Credentials::LocalToken(_)) {
                    return Err(Failure::Config(
                        "they are a local development token, which cannot be refreshed".into(),
                    ));
                }
                check_ids(&credentials, self.options)?;
                Ok(credentials)
            });
            match checked {
                Ok(credentials) => {
                    self.credentials = Arc::new(credentials);
                }
                Err(failure) => warn(&format!(
                    "cannot read the credentials again, the ones read before are used: {}",
                    failure.describe()
                )),
            }
        }

        /// A refresh ended: the rule records it, and FILE follows.
        fn fetched(&mut self, result: Result<AccessToken, Error>) -> Result<(), Failure> {
            self.fetching = false;
            let now = SystemTime::now();
            self.attempted_at = Some(now);
            match self.rule.record(&mut self.held, result, now) {
                Outcome::New(token) => {
                    self.failures = 0;
                    self.last_error = None;
                    self.write(token, now)?;
                }
                Outcome::Kept(old, e) => {
                    self.failures = self.failures.saturating_add(1);
                    self.held.retry_at = Some(self.rule.retry_at(&self.held, self.failures, now));
                    let cause = chain(&e);
                    warn(&fallback_warning(&old, self.held.retry_at, now, &cause));
                    self.last_error = Some(cause);
                    if self.written.is_some() {
                        self.holds = Holds::Kept;
                    }
                    self.write_status(now);
                }
                Outcome::Failed(e) => self.failed(&e, now)?,
            }
            if std::mem::take(&mut self.again) {
                self.start_fetch()?;
            }
            Ok(())
        }

        /// A refresh failed with no token to keep. Before the first write, a
        /// failure that retrying will not fix ends the sink with a token
        /// run's exit code; afterwards the sink goes on, backing off.
        fn failed(&mut self, e: &Error, now: SystemTime) -> Result<(), Failure> {
            let cause = chain(e);
            self.last_error = Some(cause.clone());
            self.failures = self.failures.saturating_add(1);
            self.next_try = self.rule.retry_at(&self.held, self.failures, now);
            let refused = matches!(e, Error::Rejected(_));
            if !self.ready && !e.is_retryable() {
                self.write_status(now);
                return Err(Failure::Ims(Box::new(e.clone())));
            }
            let wait = self
                .next_try
                .duration_since(now)
                .unwrap_or_default()
                .as_secs();
            let what = if refused {
                self.reload = true;
                if self.ready {
                    self.remove(Holds::Refused, now);
                }
                format!(
                    "IMS refused the credentials, so {} holds no token; IMS is asked again \
                     in {wait} s, with the credentials read again",
                    format_args!("{:?}", self.out)
                )
            } else {
                if self.written.is_some() {
                    self.remove(Holds::Expired, now);
                }
                format!("getting a new token failed; IMS is asked again in {wait} s")
            };
            warn(&format!("{what}: {cause}"));
            self.write_status(now);
            Ok(())
        }

        /// Writes `token` to FILE and tells whoever waits for it. Before the
        /// first write a failure ends the sink (exit 3: the folder, the
        /// permissions or what is at FILE need fixing); afterwards it is
        /// tried again, backing off, while FILE keeps what it had.
        fn write(&mut self, token: AccessToken, now: SystemTime) -> Result<(), Failure> {
            let mut text = render(&token, &self.credentials, self.options.format, now)?;
            text.push('\n');
            let written = atomic::replace(
                &self.out,
                text.as_bytes(),
                self.options.mode,
                self.options.owner,
            );
            if let Err(e) = written {
                let message = format!("cannot write {}: {e}", format_args!("{:?}", self.out));
                self.last_error = Some(message.clone());
                if !self.ready {
                    self.write_status(now);
                    return Err(Failure::Config(message));
                }
                self.failures = self.failures.saturating_add(1);
                let at = self.rule.retry_at(&self.held, self.failures, now);
                self.rewrite_at = Some(at);
                if self.written.is_some() {
                    self.holds = Holds::Kept;
                }
                warn(&format!(
                    "{message}; tried again in {} s",
                    at.duration_since(now).unwrap_or_default().as_secs()
                ));
                self.write_status(now);
                return Ok(());
            }
            let expires_at = token.expires_at();
            self.written = Some(token);
            self.holds = Holds::Fresh;
            self.refreshed_at = Some(now);
            let next = match self.next_refresh(now) {
                Some(at) if !self.options.once => format!("; next refresh at {}", rfc3339(at)),
                _ => String::new(),
            };
            note(&format!(
                "wrote {}: a new token, which expires at {}{next}",
                format_args!("{:?}", self.out),
                rfc3339(expires_at)
            ));
            self.write_status(now);
            let status = format!("STATUS=a token until {}", rfc3339(expires_at));
            if self.ready {
                notify(&status);
            } else {
                self.ready = true;
                notify(&format!("READY=1\n{status}"));
            }
            self.tell_consumers();
            Ok(())
        }

        /// Removes FILE: it is to hold no token.
        fn remove(&mut self, why: Holds, now: SystemTime) {
            self.written = None;
            self.holds = why;
            match std::fs::remove_file(&self.out) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    warn(&format!(
                        "cannot remove {}: {e}",
                        format_args!("{:?}", self.out)
                    ));
                }
                _ => {}
            }
            notify(&format!("STATUS=no token: {}", why.word()));
            self.write_status(now);
        }

        /// After a write: the signal, then COMMAND (on its own thread while
        /// the sink runs, so that nothing delays a refresh or a SIGTERM).
        fn tell_consumers(&self) {
            if let (Some(name), Some(pid_file)) = (&self.options.signal, &self.options.pid_file) {
                send_signal(name, pid_file);
            }
            match &self.runner {
                Some(runner) => {
                    let _ = runner.send(());
                }
                None if !self.options.then.is_empty() => run_command(self.options, &self.out),
                None => {}
            }
        }

        /// SIGTERM or SIGINT: FILE stays as it is.
        fn stop(&mut self) {
            self.fetcher = None;
            notify("STOPPING=1");
            note(&format!(
                "stopping; {} is left as it is",
                format_args!("{:?}", self.out)
            ));
            self.write_status(SystemTime::now());
        }

        fn write_status(&self, now: SystemTime) {
            let Some(path) = &self.options.status_file else {
                return;
            };
            let report = Report {
                out: &self.out,
                // The refresh thread is there while the sink runs.
                running: self.fetcher.is_some(),
                holds: self.holds,
                ok: self.written.as_ref().is_some_and(|t| !t.is_expired(now)),
                expires_at: self.written.as_ref().map(AccessToken::expires_at),
                refreshed_at: self.refreshed_at,
                attempted_at: self.attempted_at,
                next_attempt_at: self.next_refresh(now).filter(|_| !self.options.once),
                failures: self.failures,
                last_error: self.last_error.as_deref(),
            };
            let text = if path.extension().is_some_and(|e| e == "prom") {
                status_prom(&report)
            } else {
                status_json(&report)
            };
            if let Err(e) = atomic::replace(path, text.as_bytes(), STATUS_MODE, Owner::default()) {
                warn(&format!(
                    "cannot write the status file {}: {e}",
                    path.display()
                ));
            }
        }
    }

    fn stopped() -> Failure {
        Failure::Config("the sink's refresh thread ended".into())
    }

    /// SIGTERM, SIGINT and SIGHUP, as events.
    fn watch_signals(events: Sender<Event>) -> Result<(), Failure> {
        let cannot = |e: io::Error| Failure::Config(format!("cannot watch for signals: {e}"));
        let mut signals =
            signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(cannot)?;
        std::thread::Builder::new()
            .name("signals".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                for signal in signals.forever() {
                    if events.send(Event::Signal(signal)).is_err() {
                        break;
                    }
                }
            })
            .map_err(cannot)?;
        Ok(())
    }

    /// The thread that fetches: one request at a time, its result an event,
    /// so that the sink stays free for signals while IMS takes its time.
    fn spawn_fetcher(
        client: Client,
        events: Sender<Event>,
    ) -> Result<Sender<Arc<Credentials>>, Failure> {
        let (requests, received) = mpsc::channel::<Arc<Credentials>>();
        std::thread::Builder::new()
            .name("refresh".into())
            .spawn(move || {
                for credentials in received {
                    let result = client.fetch(&credentials);
                    if events.send(Event::Fetched(result)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Failure::Config(format!("cannot start the refresh thread: {e}")))?;
        Ok(requests)
    }

    /// The thread that runs COMMAND after writes, one run at a time; writes
    /// during a run are one more run after it (FILE has the newest token).
    fn spawn_runner(options: &Options, out: &Path) -> Result<Sender<()>, Failure> {
        let (requests, received) = mpsc::channel::<()>();
        let command = options.then.clone();
        let timeout = Duration::from_secs(options.command_timeout);
        let out = out.to_owned();
        std::thread::Builder::new()
            .name("command".into())
            .spawn(move || {
                while received.recv().is_ok() {
                    while received.try_recv().is_ok() {}
                    run_after_write(&command, &out, timeout);
                }
            })
            .map_err(|e| Failure::Config(format!("cannot start the command thread: {e}")))?;
        Ok(requests)
    }

    fn run_command(options: &Options, out: &Path) {
        let timeout = Duration::from_secs(options.command_timeout);
        run_after_write(&options.then, out, timeout);
    }

    /// Runs COMMAND with `IMS_TOKEN_FILE` set to FILE: the token is never
    /// in its arguments or environment, nor what makes tokens. Waits for it
    /// at most `timeout`, then kills it; its failure is a warning.
    fn run_after_write(command: &[OsString], out: &Path, timeout: Duration) {
        let Some((program, args)) = command.split_first() else {
            return;
        };
        let name = program.to_string_lossy();
        let mut child = Command::new(program);
        child
            .args(args)
            .env("IMS_TOKEN_FILE", out)
            .env_remove("IMS_ACCESS_TOKEN")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null());
        for hidden in EXEC_HIDDEN {
            child.env_remove(hidden);
        }
        let mut child = match child.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                warn(&format!(
                    "cannot run {name:?} after the write: command not found"
                ));
                return;
            }
            Err(e) => {
                warn(&format!("cannot run {name:?} after the write: {e}"));
                return;
            }
        };
        match wait_at_most(&mut child, timeout) {
            Ok(Some(status)) if status.success() => {}
            Ok(Some(status)) => warn(&format!("{name:?} after the write failed: {status}")),
            Ok(None) => warn(&format!(
                "{name:?} after the write ran longer than {} s: killed",
                timeout.as_secs()
            )),
            Err(e) => warn(&format!("cannot wait for {name:?} after the write: {e}")),
        }
    }

    /// The child's status, or `None` once it has been killed after
    /// `timeout`. Looks at the child while it runs only (std has no wait
    /// with a timeout), less and less often.
    fn wait_at_most(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            let now = Instant::now();
            if now >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Sends signal `name` to the pid in `pid_file`, read now (the consumer
    /// may have restarted). std cannot send a signal and this crate writes
    /// no unsafe code: `kill` of the shell does it (`sh -c`, the pid and the
    /// name as arguments, never as code). A stale pid is a warning.
    fn send_signal(name: &str, pid_file: &Path) {
        let pid = match read_pid(pid_file) {
            Ok(pid) => pid,
            Err(why) => {
                warn(&format!(
                    "SIG{name} not sent: the pid file {} {why}",
                    format_args!("{:?}", pid_file)
                ));
                return;
            }
        };
        let sent = Command::new("sh")
            .args(["-c", "kill -s \"$1\" \"$2\" 2>/dev/null", "kill", name])
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match sent {
            Ok(status) if status.success() => {}
            Ok(_) => warn(&format!(
                "SIG{name} not sent: there is no process {pid} of ours (from {}); is the \
                 pid file stale?",
                format_args!("{:?}", pid_file)
            )),
            Err(e) => warn(&format!("SIG{name} not sent: cannot run sh: {e}")),
        }
    }

    /// The pid in a pid file: a regular file (opened without blocking on a
    /// FIFO) holding one number above 0 (0 or a negative number would
    /// signal whole process groups).
    fn read_pid(path: &Path) -> Result<u32, String> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| format!("cannot be read ({e})"))?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err("is not a regular file".into());
        }
        let mut text = String::new();
        file.take(MAX_PID_FILE_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot be read ({e})"))?;
        parse_pid(&text).ok_or_else(|| "holds no pid".into())
    }

    fn parse_pid(text: &str) -> Option<u32> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse::<u32>()
            .ok()
            .filter(|pid| (1..=i32::MAX as u32).contains(pid))
    }

    /// Tells systemd (`$NOTIFY_SOCKET`, a path or an abstract name after
    /// `@`) the sink's state, with std's `UnixDatagram`; nothing without it.
    fn notify(message: &str) {
        let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
            return;
        };
        if let Err(e) = send_notify(&socket, message) {
            warn(&format!(
                "cannot tell systemd on NOTIFY_SOCKET {}: {e}",
                socket.to_string_lossy()
            ));
        }
    }

    fn send_notify(socket: &OsStr, message: &str) -> io::Result<()> {
        let datagram = std::os::unix::net::UnixDatagram::unbound()?;
        match socket.as_encoded_bytes().strip_prefix(b"@") {
            Some(name) => send_abstract(&datagram, name, message),
            None => datagram.send_to(message.as_bytes(), socket).map(drop),
        }
    }

    #[cfg(target_os = "linux")]
    fn send_abstract(
        datagram: &std::os::unix::net::UnixDatagram,
        name: &[u8],
        message: &str,
    ) -> io::Result<()> {
        use std::os::linux::net::SocketAddrExt as _;
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        datagram
            .send_to_addr(message.as_bytes(), &address)
            .map(drop)
    }

    #[cfg(not(target_os = "linux"))]
    fn send_abstract(_: &std::os::unix::net::UnixDatagram, _: &[u8], _: &str) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "abstract socket names are Linux's",
        ))
    }

    /// `--out` and `--status-file` before anything runs: their folders
    /// exist, and what is there now may be replaced. Returns FILE.
    fn check_targets(options: &Options) -> Result<PathBuf, Failure> {
        let Some(out) = &options.out else {
            return Err(Failure::Usage("sink needs --out FILE".into()));
        };
        check_target("--out", out)?;
        if let Some(status) = &options.status_file {
            check_target("--status-file", status)?;
        }
        Ok(out.clone())
    }

    fn check_target(flag: &str, path: &Path) -> Result<(), Failure> {
        let folder = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(Failure::Config(format!(
                "{flag} {}: the folder {} does not exist (the sink does not create it)",
                format_args!("{:?}", path),
                format_args!("{:?}", folder)
            )));
        }
        atomic::check_replaceable(path)
            .map_err(|e| Failure::Config(format!("{flag} {path:?}: {e}")))
    }

    /// Neither FILE nor the status file is the credentials file: the sink
    /// replaces them.
    fn check_not_credentials(options: &Options, source: &Source) -> Result<(), Failure> {
        let Source::File(credentials) = source else {
            return Ok(());
        };
        let targets = [
            ("--out", &options.out),
            ("--status-file", &options.status_file),
        ];
        for (flag, target) in targets {
            if target
                .as_ref()
                .is_some_and(|t| same_file(t, Path::new(credentials)))
            {
                return Err(Failure::Config(format!(
                    "{flag} is the credentials file {credentials}: the sink would replace it"
                )));
            }
        }
        Ok(())
    }

    fn same_file(a: &Path, b: &Path) -> bool {
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    /// What the status file says; never a secret.
    struct Report<'a> {
        out: &'a Path,
        running: bool,
        holds: Holds,
        ok: bool,
        expires_at: Option<SystemTime>,
        refreshed_at: Option<SystemTime>,
        attempted_at: Option<SystemTime>,
        next_attempt_at: Option<SystemTime>,
        failures: u32,
        last_error: Option<&'a str>,
    }

    fn status_json(r: &Report<'_>) -> String {
        let time = |t: Option<SystemTime>| t.map(rfc3339);
        serde_json::json!({
            "ims_token_sink": 1,
            "out": r.out.to_string_lossy(),
            "running": r.running,
            "ok": r.ok,
            "file": r.holds.word(),
            "expires_at": time(r.expires_at),
            "refreshed_at": time(r.refreshed_at),
            "attempted_at": time(r.attempted_at),
            "next_attempt_at": time(r.next_attempt_at),
            "failures": r.failures,
            "last_error": r.last_error,
            "note": r.holds.note(),
        })
        .to_string()
            + "\n"
    }

    /// The same facts in node_exporter's textfile format (times as Unix
    /// seconds, 0 for none).
    fn status_prom(r: &Report<'_>) -> String {
        let out = prom_label(&r.out.to_string_lossy());
        let secs = |t: Option<SystemTime>| {
            t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs())
        };
        let metrics: [(&str, &str, u64); 6] = [
            (
                "ok",
                "1 when the file holds a token that has not expired",
                u64::from(r.ok),
            ),
            ("running", "1 while the sink runs", u64::from(r.running)),
            (
                "expires_at_seconds",
                "when the token in the file expires, Unix time (0: none)",
                secs(r.expires_at),
            ),
            (
                "refreshed_at_seconds",
                "when the file was last written, Unix time (0: never)",
                secs(r.refreshed_at),
            ),
            (
                "next_attempt_at_seconds",
                "when IMS is asked next, Unix time (0: not planned)",
                secs(r.next_attempt_at),
            ),
            (
                "failures",
                "refreshes that failed in a row",
                u64::from(r.failures),
            ),
        ];
        let mut text = String::new();
        for (name, help, value) in metrics {
            text.push_str(&format!(
                "# HELP ims_token_sink_{name} {help}\n# TYPE ims_token_sink_{name} gauge\n\
                 ims_token_sink_{name}{{out=\"{out}\"}} {value}\n"
            ));
        }
        text
    }

    /// A Prometheus label value: `\`, `"` and newlines escaped.
    fn prom_label(value: &str) -> String {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn report(holds: Holds) -> Report<'static> {
            let at = |s: u64| Some(UNIX_EPOCH + Duration::from_secs(s));
            Report {
                out: Path::new("/run/ims \"token\"\\x"),
                running: true,
                holds,
                ok: holds == Holds::Fresh,
                expires_at: at(1_700_086_400),
                refreshed_at: at(1_700_000_000),
                attempted_at: at(1_700_000_000),
                next_attempt_at: at(1_700_086_000),
                failures: 0,
                last_error: None,
            }
        }

        #[test]
        fn the_status_says_what_file_holds_in_json() {
            let json: serde_json::Value =
                serde_json::from_str(&status_json(&report(Holds::Fresh))).unwrap();
            assert_eq!(json["ok"], true);
            assert_eq!(json["file"], "fresh");
            assert_eq!(json["expires_at"], "2023-11-15T22:13:20Z");
            assert_eq!(json["refreshed_at"], "2023-11-14T22:13:20Z");
            assert_eq!(json["last_error"], serde_json::Value::Null);
            let mut refused = report(Holds::Refused);
            refused.last_error = Some("IMS rejected the credentials (401 invalid_client)");
            refused.expires_at = None;
            let json: serde_json::Value = serde_json::from_str(&status_json(&refused)).unwrap();
            assert_eq!(json["file"], "refused");
            assert_eq!(json["ok"], false);
            assert_eq!(json["expires_at"], serde_json::Value::Null);
            assert!(json["note"].as_str().unwrap().contains("FILE was removed"));
            assert!(json["last_error"]
                .as_str()
                .unwrap()
                .contains("invalid_client"));
        }

        #[test]
        fn the_status_in_prometheus_format_escapes_the_label() {
            let text = status_prom(&report(Holds::Fresh));
            assert!(
                text.contains("ims_token_sink_ok{out=\"/run/ims \\\"token\\\"\\\\x\"} 1\n"),
                "{text}"
            );
            assert!(text.contains("} 1700086400\n"), "{text}");
            assert_eq!(text.lines().count(), 18);
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                assert!(line.starts_with("ims_token_sink_"), "{line}");
            }
        }

        #[test]
        fn a_pid_is_one_number_above_zero() {
            assert_eq!(parse_pid("1234\n"), Some(1234));
            assert_eq!(parse_pid(" 1 "), Some(1));
            for bad in [
                "",
                "0",
                "-1",
                "+5",
                "12 34",
                "abc",
                "99999999999",
                "4294967295",
            ] {
                assert_eq!(parse_pid(bad), None, "{bad:?}");
            }
        }

        #[test]
        fn a_pid_file_is_a_regular_file_with_one_pid() {
            let dir = std::env::temp_dir().join(format!("ims-token-pid-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join("app.pid");
            let e = read_pid(&file).unwrap_err();
            assert!(e.starts_with("cannot be read"), "{e}");
            assert_eq!(read_pid(&dir).unwrap_err(), "is not a regular file");
            for text in ["0\n", "-1", "app"] {
                std::fs::write(&file, text).unwrap();
                assert_eq!(read_pid(&file).unwrap_err(), "holds no pid", "{text:?}");
            }
            std::fs::write(&file, "4242\n").unwrap();
            assert_eq!(read_pid(&file), Ok(4242));
            let _ = std::fs::remove_dir_all(&dir);
        }

        #[test]
        fn every_state_has_a_word_and_a_note() {
            let states = [
                Holds::Nothing,
                Holds::Fresh,
                Holds::Kept,
                Holds::Refused,
                Holds::Expired,
            ];
            let words: std::collections::BTreeSet<&str> = states.iter().map(|h| h.word()).collect();
            assert_eq!(words.len(), states.len());
            for state in states {
                assert!(state.note().starts_with(char::is_alphabetic));
            }
        }
    }
}
