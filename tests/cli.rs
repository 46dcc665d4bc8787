//! What every program shares on its command line: `--help` names every
//! option its man page lists and no other, `--version` says the version,
//! and a bad value names the option, what was given and what is expected.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Each program, its binary and its man page.
const PROGRAMS: [(&str, &str, &str); 6] = [
    ("cyclog", env!("CARGO_BIN_EXE_cyclog"), "cyclog.8"),
    (
        "syslog-read",
        env!("CARGO_BIN_EXE_syslog-read"),
        "syslog-read.8",
    ),
    ("klog-read", env!("CARGO_BIN_EXE_klog-read"), "klog-read.8"),
    (
        "follow-log-directories",
        env!("CARGO_BIN_EXE_follow-log-directories"),
        "follow-log-directories.1",
    ),
    (
        "export-to-remote",
        env!("CARGO_BIN_EXE_export-to-remote"),
        "export-to-remote.8",
    ),
    ("log-show", env!("CARGO_BIN_EXE_log-show"), "log-show.1"),
];

fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run")
}

fn man_page(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("man")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The options in `text`: `--long` and `-x` words, as roff or as typed.
fn options_in(text: &str) -> BTreeSet<String> {
    let text = text.replace("\\-", "-");
    let mut found = BTreeSet::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        let name = word.trim_end_matches('-');
        let is_long = name.len() > 2 && name.starts_with("--");
        let is_short =
            name.len() == 2 && name.starts_with('-') && name.as_bytes()[1].is_ascii_alphabetic();
        if is_long || is_short {
            found.insert(name.to_string());
        }
    }
    found
}

/// The section `.SH NAME` of a man page, up to the next `.SH`.
fn section<'a>(page: &'a str, name: &str) -> &'a str {
    let heading = format!(".SH {name}\n");
    let Some(start) = page.find(&heading) else {
        return "";
    };
    let body = &page[start + heading.len()..];
    &body[..body.find("\n.SH ").unwrap_or(body.len())]
}

/// The options a man page lists: its synopsis, and the tag of each item of
/// its OPTIONS section.
fn man_options(page: &str) -> BTreeSet<String> {
    let mut options = options_in(section(page, "SYNOPSIS"));
    let listed = section(page, "OPTIONS");
    let mut lines = listed.lines();
    while let Some(line) = lines.next() {
        if line == ".TP"
            && let Some(tag) = lines.next()
        {
            options.extend(options_in(tag));
        }
    }
    options
}

/// The options `--help` lists: the first column of its option lines.
fn help_options(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter(|l| l.starts_with("  -"))
        .flat_map(|l| options_in(l.trim_start().split("  ").next().unwrap_or("")))
        .collect()
}

#[test]
fn help_lists_every_option_of_the_man_page_and_no_other() {
    for (program, binary, page) in PROGRAMS {
        let out = run(binary, &["--help"]);
        assert_eq!(out.status.code(), Some(0), "{program} --help: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.starts_with(&format!("usage: {program}")), "{help}");
        let said = help_options(&help);
        let listed = man_options(&man_page(page));
        assert!(
            said.contains("--help") && said.contains("--version"),
            "{program}: {said:?}"
        );
        assert_eq!(
            said, listed,
            "{program}: --help (left) and {page}'s SYNOPSIS and OPTIONS (right) differ"
        );
        let short = run(binary, &["-h"]);
        assert_eq!(short.stdout, out.stdout, "{program} -h");
    }
}

#[test]
fn version_prints_the_version_and_exits_0() {
    for (program, binary, _) in PROGRAMS {
        let out = run(binary, &["--version"]);
        assert_eq!(out.status.code(), Some(0), "{program}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{program} (rill) {}\n", env!("CARGO_PKG_VERSION"))
        );
        assert!(out.stderr.is_empty(), "{program}: {out:?}");
    }
}

/// Unknown options, missing values and bad values: exit 100, a message
/// naming the option and the value given, and the synopsis.
#[test]
fn bad_usage_names_the_option_and_the_value_and_exits_100() {
    let find = |name: &str| PROGRAMS.iter().find(|p| p.0 == name).expect("program").1;
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("cyclog", &["--bogus", "d"], &["--bogus", "unknown option"]),
        (
            "cyclog",
            &["--max-files", "x", "d"],
            &["--max-files", "\"x\""],
        ),
        (
            "cyclog",
            &["--rotate-every", "banana", "d"],
            &["--rotate-every", "\"banana\"", "not a duration", "90s"],
        ),
        ("cyclog", &["--max-line"], &["--max-line", "needs a value"]),
        (
            "syslog-read",
            &["--shed-after", "banana"],
            &["--shed-after", "\"banana\"", "not a duration", "90s"],
        ),
        ("klog-read", &["--state"], &["--state", "needs a value"]),
        ("klog-read", &["--fresh"], &["--fresh", "--state"]),
        (
            "export-to-remote",
            &["--to", "banana", "c"],
            &["--to", "\"banana\"", "tcp://HOST:PORT"],
        ),
        (
            "export-to-remote",
            &["--priority", "x", "c"],
            &["--priority", "\"x\"", "FACILITY.SEVERITY"],
        ),
        (
            "export-to-remote",
            &["--max-backoff", "soon", "c"],
            &["--max-backoff", "\"soon\"", "not a duration"],
        ),
        (
            "follow-log-directories",
            &["a", "b"],
            &["one directory of cursors", "given 2"],
        ),
        (
            "log-show",
            &["--utc=3", "d"],
            &["--utc", "takes no value", "\"3\""],
        ),
        (
            "log-show",
            &["-o", "yaml", "d"],
            &["-o", "\"yaml\"", "short short-iso"],
        ),
    ];
    for (program, args, says) in cases {
        let out = run(find(program), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(100), "{program} {args:?}: {stderr}");
        for word in *says {
            assert!(
                stderr.contains(word),
                "{program} {args:?}: no {word:?} in: {stderr}"
            );
        }
        assert!(
            stderr.contains(&format!("{program}: fatal: "))
                && stderr.contains(&format!("{program}: usage: {program} ")),
            "{program} {args:?}: {stderr}"
        );
        assert!(!stderr.contains(" at 0"), "{program} {args:?}: {stderr}");
    }
}
