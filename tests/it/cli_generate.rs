//! `--help` and `--generate`: the man page and the bash, zsh and fish
//! completions, all made from the command's one table of flags. The flags
//! are read back from the man page (what a user reads), and every other
//! output is checked against it; each output is checked by the tool that
//! reads it (groff or mandoc, bash, zsh, fish) when that tool is installed
//! (`.ci/run` installs them).

use std::process::{Command, Stdio};

use crate::common;
use common::run::{command, run, start, Run};
use common::TempDir;

/// The command words, in the order --help, the man page and the
/// completions give them.
const COMMAND_WORDS: [&str; 9] = [
    "token",
    "exec",
    "jwt",
    "inspect",
    "decode",
    "validate",
    "revoke",
    "sink",
    "invalidate",
];

/// A flag as the man page's OPTIONS shows it.
#[derive(Debug)]
pub struct DocumentedFlag {
    /// `-c`, `--credentials`.
    pub names: Vec<String>,
    /// What the value is called (`FILE`), `None` for a switch.
    pub value: Option<String>,
}

impl DocumentedFlag {
    /// `-c, --credentials FILE`, as `--help` starts its line.
    fn head(&self) -> String {
        let value = self
            .value
            .as_ref()
            .map_or(String::new(), |v| format!(" {v}"));
        format!("{}{value}", self.names.join(", "))
    }

    fn long(&self) -> &str {
        self.names.last().map_or("", String::as_str)
    }
}

/// The roff source as plain text: no font changes, dashes and backslashes
/// as typed.
fn unroff(line: &str) -> String {
    line.replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\-", "-")
        .replace("\\e", "\\")
        .replace("\\&", "")
}

/// The lines of section `title` of a man page's source.
fn man_section<'a>(man: &'a str, title: &str) -> Vec<&'a str> {
    let heading = format!(".SH {title}");
    man.lines()
        .skip_while(|l| *l != heading && *l != format!(".SH \"{title}\""))
        .skip(1)
        .take_while(|l| !l.starts_with(".SH "))
        .collect()
}

/// The tag lines (after `.TP`) of section `title`, as plain text.
fn man_tags(man: &str, title: &str) -> Vec<String> {
    let lines = man_section(man, title);
    lines
        .windows(2)
        .filter(|pair| pair[0] == ".TP")
        .map(|pair| unroff(pair[1]))
        .collect()
}

/// `ims-token ARGS` (a `--generate`), dated the second day of 1970 as a
/// reproducible build would (`SOURCE_DATE_EPOCH`).
fn generated(args: &[&str]) -> String {
    let mut command = command(args);
    command.env("SOURCE_DATE_EPOCH", "86400");
    start(command, None).wait().quiet().to_owned()
}

pub fn man_page() -> String {
    generated(&["--generate", "man"])
}

/// Every flag of the man page's OPTIONS.
pub fn documented_flags() -> Vec<DocumentedFlag> {
    let flags: Vec<DocumentedFlag> = man_tags(&man_page(), "OPTIONS")
        .iter()
        .map(|tag| {
            let words: Vec<&str> = tag.split(' ').collect();
            let names = words
                .iter()
                .filter(|w| w.starts_with('-'))
                .map(|w| w.trim_end_matches(',').to_owned())
                .collect();
            let value = words
                .iter()
                .find(|w| !w.starts_with('-'))
                .map(|w| (*w).to_owned());
            DocumentedFlag { names, value }
        })
        .collect();
    let longs: Vec<&str> = flags.iter().map(DocumentedFlag::long).collect();
    for needed in [
        "--help",
        "--version",
        "--generate",
        "--credentials",
        "--format",
    ] {
        assert!(longs.contains(&needed), "{needed} not in {longs:?}");
    }
    flags
}

fn help() -> String {
    run(&["--help"]).quiet().to_owned()
}

/// The lines of `--help` under `heading` (up to the next empty line).
fn help_section(help: &str, heading: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `tool` is on PATH.
fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output();
    found.is_ok_and(|o| o.status.success())
}

/// `program ARGS` with `stdin`, bounded in time like every run.
fn tool(program: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    start(command, stdin.map(str::as_bytes)).wait()
}

#[test]
fn every_flag_of_the_man_page_is_in_help_and_read_by_the_command() {
    let flags = documented_flags();
    let help = help();
    let options = help_section(&help, "OPTIONS:");
    for flag in &flags {
        let head = flag.head();
        assert!(
            options.iter().any(|l| l.trim_start().starts_with(&head)),
            "--help lacks {head}:\n{help}"
        );
        for name in &flag.names {
            match flag.value {
                // Known, so it asks for its value (an unknown one is named
                // as unknown).
                Some(_) => {
                    let m = run(&[name]).fails(2);
                    assert!(m.contains(&format!("{name} needs a value")), "{m}");
                }
                // Known, so --help after it wins.
                None => {
                    let r = run(&[name, "--help"]);
                    assert_eq!(r.quiet(), help, "{name}");
                }
            }
        }
    }
    // The README's table of options has a row for each.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    for flag in &flags {
        let cell = format!("`{}", flag.head().replace('|', "\\|"));
        let row = readme
            .lines()
            .any(|l| l.starts_with("| ") && l.contains(&cell));
        assert!(row, "README.md has no row for {cell}`");
    }
    // And --help shows no flag that the man page does not.
    let shown = options
        .iter()
        .filter(|l| l.trim_start().starts_with('-'))
        .count();
    assert_eq!(shown, flags.len(), "{options:#?}\n{flags:#?}");
}

#[test]
fn the_man_page_has_its_sections_and_renders_without_warnings() {
    let man = man_page();
    let help = help();
    for title in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "OPTIONS",
        "ENVIRONMENT",
        "EXIT STATUS",
    ] {
        assert!(!man_section(&man, title).is_empty(), "no {title}:\n{man}");
    }
    // The usage lines of --help, and each command.
    let synopsis = unroff(&man_section(&man, "SYNOPSIS").join("\n"));
    let commands = man_tags(&man, "COMMANDS");
    for usage in help_section(&help, "USAGE:") {
        let Some(usage) = usage.trim().strip_prefix("ims-token ") else {
            continue;
        };
        let usage = usage.split("  ").next().unwrap_or_default();
        assert!(synopsis.contains(usage), "{usage}:\n{synopsis}");
        let command = usage.split(' ').next().unwrap_or_default();
        let command = command.trim_matches(|c| c == '[' || c == ']');
        assert!(
            commands.iter().any(|c| c == command),
            "{command}: {commands:?}"
        );
    }
    assert_eq!(commands, COMMAND_WORDS);
    // Every IMS_* variable --help names, and every exit code it lists.
    let environment = man_tags(&man, "ENVIRONMENT").join(", ");
    let variables = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("IMS_") && w.len() > 4);
    for variable in variables {
        assert!(environment.contains(variable), "{variable}: {environment}");
    }
    let codes = man_tags(&man, "EXIT STATUS");
    for line in help_section(&help, "EXIT CODES:") {
        let Some((code, _)) = line.trim().split_once("  ") else {
            continue;
        };
        assert!(codes.iter().any(|c| c == code), "exit {code}: {codes:?}");
    }
    let title = man
        .lines()
        .find(|l| l.starts_with(".TH "))
        .unwrap_or_default();
    assert!(title.contains(" 1970-01-02 "), "{title}");
    // A date past what the clock can hold is a date still (no panic).
    let mut far = command(&["--generate", "man"]);
    far.env("SOURCE_DATE_EPOCH", u64::MAX.to_string());
    let far = start(far, None).wait();
    assert!(far.quiet().contains("\n.TH IMS\\-TOKEN 1 "), "{far:#?}");
    render_man_page(&man);
}

/// groff (with every warning) and mandoc's linter, whichever are there.
fn render_man_page(man: &str) {
    let mut checked = false;
    if have("groff") {
        let r = tool("groff", &["-man", "-Tutf8", "-ww", "-z"], Some(man));
        assert_eq!((r.code, r.stderr.as_str()), (0, ""), "groff: {r:#?}");
        let text = tool("groff", &["-man", "-Tutf8", "-P-cbou"], Some(man));
        assert_eq!(text.code, 0, "{text:#?}");
        for line in text.stdout.lines() {
            assert!(line.chars().count() <= 80, "wider than 80: {line:?}");
        }
        assert!(
            text.stdout.contains("--credentials FILE"),
            "{}",
            text.stdout
        );
        checked = true;
    }
    if have("mandoc") {
        let r = tool("mandoc", &["-Tlint", "-W", "warning"], Some(man));
        assert_eq!(
            (r.code, r.stdout.as_str(), r.stderr.as_str()),
            (0, "", ""),
            "mandoc: {r:#?}"
        );
        checked = true;
    }
    if !checked {
        eprintln!("neither groff nor mandoc is installed: the rendering is not checked; skipped");
    }
}

/// `COMPREPLY` for each command line (the words after `ims-token`), after
/// sourcing the bash completion: one line per command line.
fn bash_completions(script: &str, lines: &[&[&str]]) -> Vec<Vec<String>> {
    let mut program = String::from(
        "source \"$1\"\n\
         t() { COMP_WORDS=(ims-token \"$@\"); COMP_CWORD=$#; COMPREPLY=(); _ims_token; \
         printf '%s\\n' \"${COMPREPLY[*]}\"; }\n",
    );
    for words in lines {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        program.push_str(&format!("t {}\n", quoted.join(" ")));
    }
    let r = tool(
        "bash",
        &["--norc", "--noprofile", "-c", &program, "bash", script],
        None,
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    let replies: Vec<Vec<String>> = r
        .stdout
        .lines()
        .map(|l| {
            l.split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect();
    assert_eq!(replies.len(), lines.len(), "{r:#?}");
    replies
}

#[test]
fn bash_completion_completes_flags_format_words_and_files() {
    if !have("bash") {
        eprintln!("bash is not installed; skipped");
        return;
    }
    let dir = TempDir::new("complete-bash");
    let script = dir.file(
        "ims-token.bash",
        &generated(&["--generate", "complete-bash"]),
    );
    let creds = dir.file("creds.json", "{}");
    let prefix = format!("{}/cr", dir.path().display());
    let replies = bash_completions(
        &script,
        &[
            &["--form"],
            &["--format", "head"],
            &["--format", "=", "js"],
            &["-c", &prefix],
            &["exec", "--fo"],
            &["-"],
            &[""],
            &["-c", "x", "j"],
            &["sink", "-"],
        ],
    );
    assert_eq!(replies[0], ["--format"]);
    assert_eq!(replies[1], ["header", "headers"]);
    assert_eq!(replies[2], ["json"]);
    assert_eq!(replies[3], [creds]);
    // exec prints nothing: --format is not for it.
    assert!(replies[4].is_empty(), "{:?}", replies[4]);
    // Every flag, for the default command or for sink's own.
    for flag in documented_flags() {
        for name in &flag.names {
            let found = replies[5].contains(name) || replies[8].contains(name);
            assert!(found, "{name}: {:?}\n{:?}", replies[5], replies[8]);
        }
    }
    assert!(replies[8].contains(&"--out".to_owned()) && !replies[5].contains(&"--out".to_owned()));
    assert_eq!(replies[6], COMMAND_WORDS);
    assert_eq!(replies[7], ["jwt"]);
}

#[test]
fn zsh_and_fish_completions_parse_and_fish_completes_flags_and_words() {
    let dir = TempDir::new("complete-shells");
    let zsh = dir.file("_ims-token", &generated(&["--generate", "complete-zsh"]));
    if have("zsh") {
        let r = tool("zsh", &["-n", &zsh], None);
        assert_eq!((r.code, r.stderr.as_str()), (0, ""), "zsh -n: {r:#?}");
    } else {
        eprintln!("zsh is not installed: its completion is not checked; skipped");
    }
    let fish = dir.file(
        "ims-token.fish",
        &generated(&["--generate", "complete-fish"]),
    );
    if !have("fish") {
        eprintln!("fish is not installed: its completion is not checked; skipped");
        return;
    }
    let r = tool("fish", &["-n", &fish], None);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "fish -n: {r:#?}");
    let complete = |line: &str| -> Vec<String> {
        let program = format!("source '{fish}'; complete -C '{line}'");
        let r = tool("fish", &["--no-config", "-c", &program], None);
        assert_eq!(r.code, 0, "{r:#?}");
        // Each completion, then a tab and its description.
        r.stdout
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
            .collect()
    };
    let mut longs = complete("ims-token --");
    assert!(!longs.iter().any(|l| l == "--out"), "{longs:?}");
    longs.extend(complete("ims-token sink --"));
    for flag in documented_flags() {
        assert!(
            longs.iter().any(|l| l == flag.long()),
            "{}: {longs:?}",
            flag.long()
        );
    }
    assert_eq!(complete("ims-token --format head"), ["header", "headers"]);
    assert!(complete("ims-token exec --fo").is_empty());
    assert!(complete("ims-token jwt --fo").is_empty());
    assert_eq!(complete("ims-token decode --fo"), ["--format"]);
}

#[test]
fn generate_with_a_bad_kind_is_a_usage_error_naming_the_kinds() {
    let m = run(&["--generate", "pdf"]).fails(2);
    for kind in [
        "'pdf'",
        "man",
        "complete-bash",
        "complete-zsh",
        "complete-fish",
    ] {
        assert!(m.contains(kind), "{kind}: {m}");
    }
    let m = run(&["--generate"]).fails(2);
    assert!(m.contains("--generate needs a value"), "{m}");
    // Each kind is printed whatever else the command line says.
    for kind in ["man", "complete-bash", "complete-zsh", "complete-fish"] {
        let alone = generated(&["--generate", kind]);
        assert!(alone.len() > 500, "{kind}: {alone}");
        assert_eq!(generated(&["jwt", "--generate", kind]), alone);
    }
}
