//! cyclog: stamp standard input into size-capped, rotating log directories.

use std::ffi::{OsStr, OsString};
use std::process::exit;

use std::os::unix::ffi::OsStrExt;

use rill::app::cyclog::script::{self, Dialect, S6Options, Script};
use rill::app::cyclog::split_by::{self, Field};
use rill::app::cyclog::{self, LogSet, svlogd};
use rill::cli::{self, EXIT_TEMPORARY};
use rill::logdir::write::writer::Policy;
use rill::sys::listen_fds;
use rill::sys::signals::{self, Signals};
use rill::sys::stdin::Input;

#[path = "cyclog/seal.rs"]
mod seal;

const SYNOPSIS: &str = "cyclog [--max-file-size SIZE] [--max-total-size SIZE] [--max-files N] \
[--rotate-every DURATION] [--margin SIZE] [--max-line SIZE] [--processor COMMAND] \
[--delete-when-full] [--seal KEYFILE [--seal-every DURATION] [--seal-lines N]] [-d FD] DIR...\n       \
cyclog --make-seal-key KEYFILE\n       \
cyclog [OPTIONS] --split-by FIELD [--max-open-dirs N] [--max-root-size SIZE] ROOT\n       \
cyclog [OPTIONS] [--dialect multilog|s6-log] [-b] [-l N] [--] SCRIPT...\n       \
cyclog [-t|-tt|-ttt] [-l LEN] [-b SIZE] [-d FD] DIR...";

/// `--help`: each option of the man page, as it writes it.
const OPTIONS: &str = "--max-file-size SIZE  rotate current when it would pass SIZE (16M)
--max-total-size SIZE  delete the oldest archives past SIZE in all (1G)
--max-files N  keep at most N archives
--rotate-every DURATION  rotate a non-empty current this often
--margin SIZE  room kept for a line's stamp and a partial line (512)
--max-line SIZE  split lines longer than SIZE (64k)
--processor COMMAND  run COMMAND on each full file, as multilog's !
--delete-when-full  on a full disk, delete the oldest archives instead of waiting
--split-by FIELD  each line into ROOT/<its FIELD's value>/ (host, from, facility, app, ...)
--max-open-dirs N  with --split-by: keep at most N directories open (128)
--max-root-size SIZE  with --split-by: delete the oldest archives of all ROOT past SIZE
--seal KEYFILE  seal the directory with the key in KEYFILE (logseal(7))
--seal-every DURATION  ask for a seal at least this often while lines come (10s)
--seal-lines N  ask for a seal at least every N lines (100000)
--make-seal-key KEYFILE  make a new seal key in KEYFILE, print its verification line
--dialect multilog|s6-log  read the script as this peer's, when its words do not tell
-d FD  write a newline to FD once the directories are open (s6's notification-fd)
-b  (s6-log) accepted: cyclog always holds input until it is written
-l N  (s6-log) split lines longer than N; (svlogd) what patterns see of a line
-t, -tt, -ttt  (svlogd) stamp alerts: cyclog always stamps lines
-q, -v, -V  accepted, without effect";

struct Args {
    dirs: Vec<OsString>,
    policies: Vec<Policy>,
    script: Option<Script>,
    split: Option<split_by::Options>,
    notify_fd: Option<i32>,
}

/// What `--split-by` and its options say.
#[derive(Default)]
struct SplitArgs {
    field: Option<Field>,
    max_open: Option<usize>,
    max_root_size: Option<u64>,
}

/// Long options that take a value (`--name VALUE`).
const VALUE_OPTIONS: [&str; 15] = [
    "--split-by",
    "--max-open-dirs",
    "--max-root-size",
    "--max-file-size",
    "--max-total-size",
    "--max-files",
    "--rotate-every",
    "--margin",
    "--max-line",
    "--processor",
    "--dialect",
    "--seal",
    "--seal-every",
    "--seal-lines",
    "--make-seal-key",
];

fn takes_value(word: &[u8]) -> bool {
    VALUE_OPTIONS.iter().any(|o| o.as_bytes() == word)
}

/// How the command line reads.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// nosh's cyclog: options and directories, as always.
    Nosh,
    /// A multilog or s6-log script.
    Script,
    /// svlogd's options and directories, each with its `config`.
    Svlogd,
}

/// The command line's mode. A word other than an option or its value that
/// is one of the peers' actions makes a script. Else svlogd's: an option
/// only svlogd has (`-t`, `-tt`, `-ttt`, `-r`, `-R`, `-V`, `-b` with a
/// size), or a directory named with a `config` file. Else an s6-log option
/// (or `--dialect`) makes an s6-log script; else it is nosh's.
fn mode(argv: &[OsString]) -> Mode {
    let digits = |w: &[u8]| !w.is_empty() && w.iter().all(u8::is_ascii_digit);
    let (mut positional, mut svlogd, mut s6) = (Vec::new(), false, false);
    let mut words = argv.iter().map(|w| w.as_bytes()).peekable();
    while let Some(word) = words.next() {
        match word {
            b"--" => {
                positional.extend(words.by_ref());
                break;
            }
            w if w.starts_with(b"--") => {
                s6 |= w == b"--dialect" || w.starts_with(b"--dialect=");
                if takes_value(w) {
                    words.next();
                }
            }
            b"-h" => return Mode::Nosh, // its --help
            b"-t" | b"-tt" | b"-ttt" | b"-V" => svlogd = true,
            b"-r" | b"-R" => {
                svlogd = true;
                words.next();
            }
            b"-b" if words.peek().is_some_and(|w| digits(w)) => {
                svlogd = true;
                words.next();
            }
            // Readiness is cyclog's too: it alone makes no script.
            b"-d" => {
                words.next();
            }
            b"-l" => {
                s6 = true;
                words.next();
            }
            b"-b" | b"-p" | b"-q" | b"-v" => s6 = true,
            [b'-', b'r' | b'R', ..] => svlogd = true,
            [b'-', b'b', rest @ ..] if digits(rest) => svlogd = true,
            [b'-', b'd', rest @ ..] if digits(rest) => {}
            [b'-', b'l' | b't', rest @ ..] if digits(rest) => s6 = true,
            w => positional.push(w),
        }
    }
    if positional.iter().any(|w| script::action_name(w).is_some()) {
        return Mode::Script;
    }
    let configured = positional.iter().any(|w| {
        std::path::Path::new(OsStr::from_bytes(w))
            .join("config")
            .is_file()
    });
    if svlogd || configured {
        Mode::Svlogd
    } else if s6 {
        Mode::Script
    } else {
        Mode::Nosh
    }
}

fn parse_args() -> Result<Args, String> {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    if argv.iter().any(|w| w.as_bytes().starts_with(b"--split-by")) {
        return parse_split(argv);
    }
    match mode(&argv) {
        Mode::Script => return parse_script(argv),
        Mode::Svlogd => return parse_svlogd(argv),
        Mode::Nosh => {}
    }
    let mut policy = nosh_defaults();
    let mut notify_fd = None;
    let dirs = parse_options(argv, &mut policy, Some(&mut notify_fd), None)?;
    if dirs.is_empty() {
        return Err("no log directory named".into());
    }
    clamp_like_nosh(&mut policy);
    Ok(Args {
        policies: vec![policy; dirs.len()],
        dirs,
        script: None,
        split: None,
        notify_fd,
    })
}

/// `--split-by FIELD ROOT`: nosh's options, one directory, no script.
fn parse_split(argv: Vec<OsString>) -> Result<Args, String> {
    let mut policy = nosh_defaults();
    let mut notify_fd = None;
    let mut split = SplitArgs::default();
    let words = parse_options(argv, &mut policy, Some(&mut notify_fd), Some(&mut split))?;
    let field = split.field.ok_or("--split-by: needs a field")?;
    let root = match words.as_slice() {
        [root] => root.clone(),
        [] => return Err("--split-by: no ROOT directory named".into()),
        [_, more @ ..] => {
            return Err(format!(
                "--split-by writes under one ROOT directory and takes no script or \
                 other directory: {:?} is one word too many",
                more[0].to_string_lossy()
            ));
        }
    };
    if script::action_name(root.as_bytes()).is_some() {
        let root = root.to_string_lossy();
        return Err(format!(
            "--split-by: {root:?} reads as a script's action, and a script cannot be \
             split; name ROOT ./{root} if it is a directory"
        ));
    }
    clamp_like_nosh(&mut policy);
    Ok(Args {
        dirs: Vec::new(),
        policies: vec![policy],
        script: None,
        split: Some(split_by::Options {
            field,
            root,
            max_open: split.max_open.unwrap_or(128),
            max_root_size: split.max_root_size,
        }),
        notify_fd,
    })
}

/// svlogd's command line: its options (and cyclog's), then directories.
fn parse_svlogd(argv: Vec<OsString>) -> Result<Args, String> {
    let mut options = svlogd::Options::default();
    let mut rest = Vec::new();
    let mut words = argv.into_iter();
    while let Some(word) = words.next() {
        let w = word.as_bytes();
        let mut value = |attached: &[u8]| -> Result<usize, String> {
            let text = if attached.is_empty() {
                words.next().ok_or("an svlogd option needs a value")?
            } else {
                OsStr::from_bytes(attached).to_owned()
            };
            text.to_str()
                .and_then(|t| t.parse().ok())
                .ok_or(format!("{:?} is not a number", text.to_string_lossy()))
        };
        match w {
            b"--" => {
                rest.push(word);
                rest.extend(words.by_ref());
            }
            b"-t" | b"-tt" | b"-ttt" => options.stamped = true,
            b"-v" | b"-V" => {}
            [b'-', b'l', n @ ..] => {
                options.window = value(n)?.max(1);
            }
            [b'-', b'b', n @ ..] => {
                // svlogd's read buffer: cyclog reads in large chunks anyway.
                value(n)?;
            }
            [b'-', b'r' | b'R', ..] => {
                return Err(
                    "svlogd's -r and -R (replacing characters) are not supported: \
                     cyclog writes each line as it came"
                        .into(),
                );
            }
            _ => rest.push(word),
        }
    }
    let mut base = svlogd::defaults(&nosh_defaults(), options.window);
    let mut notify_fd = None;
    let dirs = parse_options(rest, &mut base, Some(&mut notify_fd), None)?;
    let script = svlogd::script(&dirs, &options, &base).map_err(|e| e.0)?;
    let (dirs, policies) = script.dirs.iter().cloned().unzip();
    Ok(Args {
        dirs,
        policies,
        script: Some(script),
        split: None,
        notify_fd,
    })
}

fn nosh_defaults() -> Policy {
    Policy {
        max_file_size: 16 << 20,
        max_total_size: 1 << 30,
        max_files: None,
        margin: 512,
        max_line: 64 << 10,
        rotate_every: None,
        processor: None,
        delete_when_full: false,
        seal: None,
    }
}

/// A script: options first (cyclog's, s6-log's), then from the first other
/// word (or after `--`) every word is the script's, even one starting with
/// `-` (a pattern).
fn parse_script(argv: Vec<OsString>) -> Result<Args, String> {
    let mut options = Vec::new();
    let mut s6 = S6Options::default();
    let mut words = argv.into_iter().peekable();
    let mut forced = None;
    while let Some(word) = words.peek() {
        let w = word.as_bytes();
        if w == b"--" {
            words.next();
            break;
        }
        if w.starts_with(b"--") {
            let word = words.next().expect("peeked");
            let value = takes_value(word.as_bytes()).then(|| words.next()).flatten();
            let (name, inline) = match word.to_str().and_then(|t| t.split_once('=')) {
                Some((name, v)) => (name.to_string(), Some(OsString::from(v))),
                None => (word.to_string_lossy().into_owned(), None),
            };
            if name == "--dialect" {
                let value = inline.or(value).ok_or("--dialect: needs a value")?;
                forced = Some(match value.to_str() {
                    Some("multilog") => Dialect::Multilog,
                    Some("s6-log") => Dialect::S6Log,
                    _ => return Err(format!("--dialect: {value:?} is not multilog or s6-log")),
                });
                continue;
            }
            options.push(word);
            options.extend(value);
            continue;
        }
        let short = match w {
            [b'-', c @ (b'd' | b'l' | b't'), rest @ ..] if rest.iter().all(u8::is_ascii_digit) => {
                Some((*c, rest.to_vec()))
            }
            [b'-', c @ (b'b' | b'p' | b'q' | b'v')] => Some((*c, Vec::new())),
            _ => None,
        };
        let Some((c, mut rest)) = short else { break };
        words.next();
        s6.given = true;
        if matches!(c, b'd' | b'l' | b't') && rest.is_empty() {
            rest = words
                .next()
                .ok_or(format!("-{}: needs a value", c as char))?
                .into_encoded_bytes();
        }
        let number = || {
            std::str::from_utf8(&rest)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or(format!(
                    "-{}: {:?} is not a number",
                    c as char,
                    String::from_utf8_lossy(&rest)
                ))
        };
        match c {
            b'd' => s6.notify_fd = Some(notify_fd(&String::from_utf8_lossy(&rest))?),
            b'l' => s6.line_limit = Some(number()? as usize).filter(|&n| n > 0),
            b't' => {
                number()?;
            }
            b'p' => {
                return Err("-p: cyclog stops at SIGTERM as at every stop signal; \
                     s6-log's protection against it is not supported"
                    .into());
            }
            _ => {} // -b: cyclog always holds input until written; -q, -v.
        }
    }
    let script_words: Vec<OsString> = words.collect();
    let dialect = script::dialect_of(&script_words, &s6, forced).map_err(|e| e.0)?;
    let mut base = Policy {
        max_file_size: 99999,
        max_total_size: u64::MAX,
        max_files: Some(match dialect {
            Dialect::S6Log => 10,
            _ => 9,
        }),
        margin: 2000,
        // s6-log splits lines at 8192 bytes unless told otherwise.
        max_line: match dialect {
            Dialect::S6Log => 8192,
            _ => nosh_defaults().max_line,
        },
        ..nosh_defaults()
    };
    let stray = parse_options(options, &mut base, None, None)?;
    if let Some(limit) = s6.line_limit {
        base.max_line = limit;
    }
    if let Some(word) = stray.first() {
        return Err(format!("{:?}: not an option", word.to_string_lossy()));
    }
    let script = script::parse(&script_words, dialect, &base).map_err(|e| e.0)?;
    let (dirs, policies) = script.dirs.iter().cloned().unzip();
    Ok(Args {
        dirs,
        policies,
        script: Some(script),
        split: None,
        notify_fd: s6.notify_fd,
    })
}

/// `-d FD`: a descriptor the supervisor reads, above 2.
fn notify_fd(text: &str) -> Result<i32, String> {
    text.parse::<i32>()
        .ok()
        .filter(|&fd| fd > 2)
        .ok_or(format!("-d: {text:?} is not a descriptor above 2"))
}

/// nosh's options onto `policy` (and `-d FD` where `notify` is given, the
/// split's options where `split` is); the other words, in order.
fn parse_options(
    argv: Vec<OsString>,
    policy: &mut Policy,
    mut notify: Option<&mut Option<i32>>,
    mut split: Option<&mut SplitArgs>,
) -> Result<Vec<OsString>, String> {
    use lexopt::prelude::*;
    let mut dirs = Vec::new();
    let mut seal = seal::Options::default();
    let mut parser = lexopt::Parser::from_args(argv);
    while let Some(arg) = parser.next().map_err(cli::lexopt_error)? {
        let option = cli::option_name(&arg);
        match arg {
            Long("max-file-size") => policy.max_file_size = cli::size_value(&mut parser, &option)?,
            Long("max-total-size") => {
                policy.max_total_size = cli::size_value(&mut parser, &option)?
            }
            Long("margin") => policy.margin = cli::size_value(&mut parser, &option)?,
            Long("max-line") => {
                let max = cli::size_value(&mut parser, &option)?;
                if max == 0 {
                    return Err("--max-line: must be at least 1".into());
                }
                policy.max_line = usize::try_from(max).unwrap_or(usize::MAX);
            }
            Long("max-files") => {
                let value = cli::option_text(&mut parser, &option)?;
                let n = value.parse::<u64>().ok().filter(|&n| n >= 1);
                policy.max_files =
                    Some(n.ok_or(format!("{option}: {value:?} is not a number of at least 1"))?);
            }
            Long("rotate-every") => {
                let value = cli::option_text(&mut parser, &option)?;
                let every = cli::parse_duration(&value).map_err(|e| format!("{option}: {e}"))?;
                if every.is_zero() {
                    return Err(format!("{option}: must be longer than zero"));
                }
                policy.rotate_every = Some(every);
            }
            Long("processor") => policy.processor = Some(cli::option_text(&mut parser, &option)?),
            Long("delete-when-full") => policy.delete_when_full = true,
            Long("split-by" | "max-open-dirs" | "max-root-size") if split.is_none() => {
                return Err(format!(
                    "{option}: only with --split-by, which takes cyclog's own options \
                     and one ROOT, no script"
                ));
            }
            Long("split-by") => {
                let field = Field::parse(&cli::option_text(&mut parser, &option)?)?;
                if let Some(s) = split.as_deref_mut() {
                    s.field = Some(field);
                }
            }
            Long("max-open-dirs") => {
                let value = cli::option_text(&mut parser, &option)?;
                let n = value.parse::<usize>().ok().filter(|&n| n >= 1);
                let n = n.ok_or(format!("{option}: {value:?} is not a number of at least 1"))?;
                if let Some(s) = split.as_deref_mut() {
                    s.max_open = Some(n);
                }
            }
            Long("max-root-size") => {
                let size = cli::size_value(&mut parser, &option)?;
                if let Some(s) = split.as_deref_mut() {
                    s.max_root_size = Some(size);
                }
            }
            Long("seal" | "seal-every" | "seal-lines" | "make-seal-key") => {
                seal.option(&arg_name(&arg), &mut parser, &option)?
            }
            Short('d') if notify.is_some() => {
                let fd = notify_fd(&cli::option_text(&mut parser, "-d")?)?;
                if let Some(n) = notify.as_deref_mut() {
                    *n = Some(fd);
                }
            }
            Short('h') | Long("help") => cli::help(SYNOPSIS, OPTIONS, 8),
            Long("version") => cli::version(),
            Value(dir) => dirs.push(dir),
            _ => return Err(cli::lexopt_error(arg.unexpected())),
        }
    }
    policy.seal = seal.policy(policy)?;
    Ok(dirs)
}

fn arg_name(arg: &lexopt::Arg) -> String {
    match arg {
        lexopt::Arg::Long(name) => name.to_string(),
        _ => String::new(),
    }
}

/// nosh's cyclog bounds: scripts written for it behave the same here.
fn clamp_like_nosh(policy: &mut Policy) {
    let clamp = |what: &str, value: &mut u64, low: u64, high: u64| {
        let bounded = (*value).clamp(low, high);
        if bounded != *value {
            cli::info(&format!(
                "{what} {} is out of bounds; using {bounded}",
                *value
            ));
            *value = bounded;
        }
    };
    clamp("--max-file-size", &mut policy.max_file_size, 4096, u64::MAX);
    let file = policy.max_file_size;
    clamp(
        "--max-total-size",
        &mut policy.max_total_size,
        file,
        u64::MAX,
    );
    clamp("--margin", &mut policy.margin, 512, 8192);
}

/// Taken through the signalfd: the stop signals, ALRM to rotate, CHLD when
/// a processor ends.
const SIGNALS: [i32; 6] = [
    signals::SIGTERM,
    signals::SIGINT,
    signals::SIGHUP,
    signals::SIGQUIT,
    signals::SIGALRM,
    signals::SIGCHLD,
];
rill::block_signals_before_main!(&SIGNALS);

fn main() {
    cli::set_program("cyclog");
    let args = parse_args().unwrap_or_else(|e| cli::usage(&e, SYNOPSIS));
    if let Err(e) = seal::one_directory(&args.policies) {
        cli::usage(&e, SYNOPSIS);
    }
    if args.split.is_some() && args.policies.iter().any(|p| p.seal.is_some()) {
        // Every directory under ROOT would seal with the one key.
        cli::usage(
            "--seal: not with --split-by (a key seals one directory)",
            SYNOPSIS,
        );
    }
    // Taken before anything is opened, which could take its number.
    let notify = args.notify_fd.map(|fd| {
        listen_fds::inherited(fd)
            .unwrap_or_else(|| cli::usage(&format!("-d: descriptor {fd} is not open"), SYNOPSIS))
    });
    let signals =
        Signals::block(&SIGNALS).unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    let set = match args.split {
        Some(options) => {
            let policy = args.policies.into_iter().next().expect("one policy");
            let (split, dirs) = split_by::open(options, policy)
                .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
            LogSet::split(Input::stdin(), dirs, split)
        }
        None => {
            let dirs = cyclog::open_all(&args.dirs, &args.policies)
                .unwrap_or_else(|e| cli::fatal(e.code, &e.message));
            LogSet::new(Input::stdin(), dirs, args.policies, args.script)
        }
    };
    let mut set = set.unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &format!("starting: {e}")));
    if let Err(e) = set.recover() {
        cli::fatal(EXIT_TEMPORARY, &e.to_string());
    }
    if let Some(fd) = notify {
        // s6-log's readiness: a newline once the directories are open.
        if let Err(e) = rustix::io::write(&fd, b"\n") {
            cli::warn(&format!("-d: write: {}", std::io::Error::from(e)));
        }
    }
    exit(set.run(&signals));
}
