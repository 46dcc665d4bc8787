//! What every program shares on its command line and its standard error:
//! `prog: fatal: ...` messages, daemontools exit codes, SIZE and DURATION.

use std::io::Write;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::error::Usage;

/// Bad usage: the same command will fail again.
pub const EXIT_USAGE: i32 = 100;
/// A temporary failure: the supervisor may try again.
pub const EXIT_TEMPORARY: i32 = 111;

static PROGRAM: OnceLock<&'static str> = OnceLock::new();

/// Names the running program in every message. Call once, first thing.
pub fn set_program(name: &'static str) {
    let _ = PROGRAM.set(name);
}

pub fn program() -> &'static str {
    PROGRAM.get().copied().unwrap_or("rill")
}

/// Messages kept back while stderr must not be written (`hold_messages`).
struct Held {
    on: bool,
    text: Vec<u8>,
    /// Messages past `MAX_HELD`, not kept.
    left_out: u64,
}

static HELD: Mutex<Held> = Mutex::new(Held {
    on: false,
    text: Vec::new(),
    left_out: 0,
});

/// Held messages kept, at most; the rest are counted.
const MAX_HELD: usize = 64 << 10;

/// Writes `prog: level: message` to stderr in one write, or keeps it
/// while messages are held. A closed or full stderr must never stop a
/// logger, so write errors are ignored.
pub fn message(level: &str, text: &str) {
    let line = format!("{}: {}: {}\n", program(), level, text);
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    if !held.on {
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    } else if held.text.len() + line.len() <= MAX_HELD {
        held.text.extend_from_slice(line.as_bytes());
    } else {
        held.left_out += 1;
    }
}

/// Holds messages back (`true`): stderr is our output's pipe, full (a
/// write would block) or holding part of a line of ours (a message would
/// land inside it). `false` writes what was held, in order, and says how
/// many did not fit. A process that exits while holding leaves them
/// unsaid: the pipe they would go to is stuck.
pub fn hold_messages(hold: bool) {
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    if held.on == hold {
        return;
    }
    held.on = hold;
    if hold {
        return;
    }
    let mut text = std::mem::take(&mut held.text);
    if held.left_out > 0 {
        let more = format!(
            "{}: warning: {} more messages left out while the output's pipe could not take them\n",
            program(),
            held.left_out
        );
        text.extend_from_slice(more.as_bytes());
        held.left_out = 0;
    }
    let _ = std::io::stderr().lock().write_all(&text);
}

pub fn info(text: &str) {
    message("info", text);
}

pub fn warn(text: &str) {
    message("warning", text);
}

pub fn fatal(code: i32, text: &str) -> ! {
    message("fatal", text);
    std::process::exit(code)
}

/// A usage error: the message, a pointer to the synopsis, exit 100.
pub fn usage(text: &str, synopsis: &str) -> ! {
    message("fatal", text);
    message("usage", synopsis);
    std::process::exit(EXIT_USAGE)
}

/// The version every program prints for `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `--help`: the synopsis, then each option (`options`: one per line, the
/// option as the man page writes it, two spaces, what it does).
pub fn help(synopsis: &str, options: &str, section: u8) -> ! {
    let mut text = format!("usage: {synopsis}\n\noptions:\n");
    for line in options.lines().chain(COMMON_OPTIONS.lines()) {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!("\nSee {}({section}).\n", program()));
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    std::process::exit(0)
}

const COMMON_OPTIONS: &str = "-h, --help  show this help and exit
--version  show the version and exit";

/// `--version`: `prog (rill) VERSION` on stdout, exit 0.
pub fn version() -> ! {
    let _ = writeln!(std::io::stdout().lock(), "{} (rill) {VERSION}", program());
    std::process::exit(0)
}

/// SIZE: decimal, `0x` hexadecimal, optionally with a binary-unit suffix
/// `k`, `M`, `G` or `T` (also written `K`, `KiB`, `MB` ...).
pub fn parse_size(text: &str) -> Result<u64, Usage> {
    let bad = || {
        Usage(format!(
            "{text:?} is not a size (try 4096, 0x1000, 64k, 16M, 1G)"
        ))
    };
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = if let Some(hex) = lower.strip_prefix("0x") {
        2 + hex
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(hex.len())
    } else {
        lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len())
    };
    let (number, suffix) = lower.split_at(digits_end);
    let value = match number.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => number.parse::<u64>(),
    }
    .map_err(|_| bad())?;
    let shift = match suffix {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| Usage(format!("{text:?} is too large")))
}

/// The value of the option just parsed, as a SIZE.
pub fn size_value(parser: &mut lexopt::Parser, option: &str) -> Result<u64, Usage> {
    let text = option_text(parser, option)?;
    parse_size(&text).map_err(|e| Usage(format!("{option}: {e}")))
}

/// DURATION: humantime's forms (`90s`, `30min`, `1h 30m`, `2days`), or a
/// bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, Usage> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|_| {
        Usage(format!(
            "{text:?} is not a duration (try 90s, 30min, 1h 30m, 2days, or a number of seconds)"
        ))
    })
}

/// An option as the user wrote it (`--name`, `-c`), to name it in
/// messages; empty for a value.
pub fn option_name(arg: &lexopt::Arg) -> String {
    match arg {
        lexopt::Arg::Long(name) => format!("--{name}"),
        lexopt::Arg::Short(c) => format!("-{c}"),
        lexopt::Arg::Value(_) => String::new(),
    }
}

/// What lexopt says of a command line it cannot take, in our words: the
/// option, and what was wrong with it.
pub fn lexopt_error(e: lexopt::Error) -> String {
    match e {
        lexopt::Error::MissingValue { option: Some(o) } => format!("{o}: needs a value"),
        lexopt::Error::UnexpectedValue { option, value } => {
            format!("{option}: takes no value (given {value:?})")
        }
        lexopt::Error::UnexpectedOption(o) => format!("{o}: unknown option (see --help)"),
        lexopt::Error::UnexpectedArgument(a) => format!("{a:?}: unexpected argument (see --help)"),
        e => e.to_string(),
    }
}

/// The value of the option just parsed, as UTF-8, or a usage error naming it.
pub fn option_text(parser: &mut lexopt::Parser, option: &str) -> Result<String, Usage> {
    let value = parser
        .value()
        .map_err(|_| Usage(format!("{option}: needs a value")))?;
    value
        .into_string()
        .map_err(|v| Usage(format!("{option}: {v:?} is not valid UTF-8")))
}

/// The value of the option just parsed, as a path, or a usage error naming it.
pub fn option_path(parser: &mut lexopt::Parser, option: &str) -> Result<std::path::PathBuf, Usage> {
    let value = parser
        .value()
        .map_err(|_| Usage(format!("{option}: needs a value")))?;
    Ok(value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("0X10k"), Ok(16 << 10));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("k").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("12q").is_err());
        assert!(parse_size("0x").is_err());
        assert!(parse_size("99999999999999T").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30min"), Ok(Duration::from_secs(1800)));
        let said = parse_duration("banana").unwrap_err();
        assert!(
            said.0.contains("\"banana\"") && said.0.contains("90s"),
            "{said}"
        );
    }
}
