//! log-show: read, merge, filter and follow log directories, as journalctl
//! does the journal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::exit;
use std::time::{Duration, UNIX_EPOCH};

use rill::app::log_show::Show;
use rill::app::log_show::boots::{self, Boot, Which};
use rill::app::log_show::fields;
use rill::app::log_show::filter::{Filter, Grep, Matches, Severities};
use rill::app::log_show::layout::{Format, Layout, Stamps};
use rill::app::log_show::usage;
use rill::app::log_show::verify;
use rill::cli::{self, EXIT_TEMPORARY};
use rill::error::Usage;
use rill::format::stamp::Stamp;
use rill::format::wallclock::{self, Convention, TimeWriter, Zone};
use rill::logdir::identify::{self, Kind};
use rill::sys::pager::Pager;
use rill::sys::signals::{self, Signals};
use rill::sys::single_threaded::SingleThreaded;
use rill::sys::stdout::Output;

const SYNOPSIS: &str = "log-show [-f] [-r] [-e] [-n N|all] [-S|--since TIME] [-U|--until TIME] \
[-p PRIORITY] [-t|--identifier NAME]... [--facility NAME]... [-g|--grep REGEX] \
[--case-sensitive[=yes|no]] [-o FORMAT] [-F|--field FIELD] [--disk-usage] [--utc] [--written-time] [--raw] \
[--tai-plus-10] [--no-pager] [-b|--boot [ID|OFFSET]] [--list-boots] [-u|--unit NAME]... [--root DIR] \
[FIELD=VALUE]... [DIR...|-]\n       \
log-show --verify KEY [DIR...]";

/// `--help`: each option of the man page, as it writes it.
const OPTIONS: &str = "-f, --follow  show lines as they are written
-r, --reverse  the newest lines first
-e, --pager-end  the last 1000 lines, the pager at the end
-n, --lines [N|all]  the last N lines only (10)
-S, --since TIME  lines from TIME on
-U, --until TIME  lines up to TIME
-p, --priority PRIORITY  lines of these severities only
-t, --identifier NAME  lines of this app (tag) only
--facility NAME  lines of this facility only
FIELD=VALUE  lines with this field only (host=web1, pid=150, SUBSYSTEM=usb ...)
-g, --grep REGEX  lines whose message matches REGEX only
--case-sensitive[=yes|no]  whether --grep minds case
-o, --output FORMAT  short short-iso short-iso-precise short-precise short-unix cat verbose json json-seq export
-F, --field FIELD  the distinct values of FIELD
--disk-usage  the space the directories take
--utc  times in UTC
--written-time  the time each line was written (its stamp), not the time its message says
--raw  the stored lines, stamps and all
--tai-plus-10  daemontools' stamps (TAI + 10 s)
--no-pager  never start a pager
-b, --boot [ID|OFFSET]  the lines of one boot only: 0 (or none) the last, -1 the one before, 1 the first ...
--list-boots  the boots klog-read marked, and their first and last lines' times
-u, --unit NAME  the log directory NAME under the root
--root DIR  the root of the log directories (RILL_LOG_ROOT, /var/log/rill)
--verify KEY  check sealed directories against their seals (KEY: the verification line, or a file holding it)";

/// Where `-u` names are, and every directory shown without a DIR.
const DEFAULT_ROOT: &str = "/var/log/rill";
const ROOT_VARIABLE: &str = "RILL_LOG_ROOT";

/// Which lines of the window `-n` asks for.
#[derive(Clone, Copy, Default)]
enum Lines {
    /// No `-n`: all, or the last 10 before following (as journalctl).
    #[default]
    Unsaid,
    All,
    Last(u64),
}

#[derive(Default)]
struct Args {
    follow: bool,
    reverse: bool,
    pager_end: bool,
    lines: Lines,
    since: Option<String>,
    until: Option<String>,
    severities: Option<Severities>,
    matches: Matches,
    grep: Option<String>,
    case_sensitive: Option<bool>,
    format: Option<Format>,
    field: Option<String>,
    disk_usage: bool,
    utc: bool,
    written_time: bool,
    raw: bool,
    daemontools: bool,
    no_pager: bool,
    stdin: bool,
    units: Vec<String>,
    boot: Option<Which>,
    list_boots: bool,
    root: Option<PathBuf>,
    dirs: Vec<PathBuf>,
    verify: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut args = Args::default();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(cli::lexopt_error)? {
        let option = cli::option_name(&arg);
        let usage = |e: Usage| format!("{option}: {e}");
        match arg {
            Short('f') | Long("follow") => args.follow = true,
            Short('r') | Long("reverse") => args.reverse = true,
            Short('e') | Long("pager-end") => args.pager_end = true,
            Short('n') | Long("lines") => args.lines = lines_value(&mut parser, &option)?,
            Short('S') | Long("since") => {
                args.since = Some(cli::option_text(&mut parser, &option)?)
            }
            Short('U') | Long("until") => {
                args.until = Some(cli::option_text(&mut parser, &option)?)
            }
            Short('p') | Long("priority") => {
                let text = cli::option_text(&mut parser, &option)?;
                args.severities = Some(Severities::parse(&text).map_err(usage)?);
            }
            Short('t') | Long("identifier") => {
                args.matches
                    .identifier(&cli::option_text(&mut parser, &option)?);
            }
            Long("facility") => {
                let text = cli::option_text(&mut parser, &option)?;
                for name in text.split(',') {
                    args.matches.facility(name.trim()).map_err(usage)?;
                }
            }
            Short('g') | Long("grep") => args.grep = Some(cli::option_text(&mut parser, &option)?),
            Long("case-sensitive") => {
                let value = parser
                    .optional_value()
                    .map(|v| v.to_string_lossy().into_owned());
                args.case_sensitive = Some(match value.as_deref() {
                    None | Some("yes" | "true" | "1") => true,
                    Some("no" | "false" | "0") => false,
                    Some(v) => return Err(format!("{option}: {v:?} is not yes or no")),
                });
            }
            Short('o') | Long("output") => {
                let name = cli::option_text(&mut parser, &option)?;
                args.format = Some(Format::parse(&name).ok_or_else(|| {
                    format!("{option}: {name:?} is not a format ({})", Format::NAMES)
                })?);
            }
            Short('F') | Long("field") => {
                let name = cli::option_text(&mut parser, &option)?;
                let key = fields::rill_key(&name)
                    .ok_or_else(|| format!("{option}: {name:?} is not a field name"))?;
                args.field = Some(fields::journal_name(key).into_owned());
            }
            Long("disk-usage") => args.disk_usage = true,
            Long("utc") => args.utc = true,
            Long("written-time") => args.written_time = true,
            Long("raw") => args.raw = true,
            Long("tai-plus-10") => args.daemontools = true,
            Long("no-pager") => args.no_pager = true,
            Short('b') | Long("boot") => args.boot = Some(boot_value(&mut parser, &option)?),
            Long("list-boots") => args.list_boots = true,
            Short('u') | Long("unit") => {
                let name = cli::option_text(&mut parser, &option)?;
                if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                    return Err(format!(
                        "{option}: {name:?} is not a name (a log directory under the root)"
                    ));
                }
                args.units.push(name);
            }
            Long("verify") => args.verify = Some(cli::option_text(&mut parser, &option)?),
            Long("root") => {
                args.root = Some(PathBuf::from(parser.value().map_err(cli::lexopt_error)?))
            }
            Short('h') | Long("help") => cli::help(SYNOPSIS, OPTIONS, 1),
            Long("version") => cli::version(),
            Value(v) if v == "-" => args.stdin = true,
            Value(v) => {
                let is_match = match v.to_str() {
                    Some(text) => args.matches.field(text).map_err(|e| e.to_string())?,
                    None => false,
                };
                if !is_match {
                    args.dirs.push(PathBuf::from(v));
                }
            }
            _ => return Err(cli::lexopt_error(arg.unexpected())),
        }
    }
    if args.stdin && (!args.dirs.is_empty() || !args.units.is_empty()) {
        return Err("- (standard input) cannot be merged with directories".into());
    }
    if args.reverse && args.follow {
        return Err("--reverse and --follow cannot be combined".into());
    }
    if args.verify.is_some() && args.stdin {
        return Err("--verify checks directories, not - (standard input)".into());
    }
    if args.stdin && args.disk_usage {
        return Err("--disk-usage is about directories, not - (standard input)".into());
    }
    if args.raw && (args.field.is_some() || args.format.is_some()) {
        return Err("--raw shows the lines as stored: no --output or --field with it".into());
    }
    if args.stdin && (args.boot.is_some() || args.list_boots) {
        return Err("boots are found in directories, not - (standard input)".into());
    }
    if args.field.is_some() && args.format.is_some() {
        return Err("--field shows values, not lines: no --output with it".into());
    }
    Ok(args)
}

/// Where `-u` names are.
fn root(args: &Args) -> PathBuf {
    args.root
        .clone()
        .or_else(|| {
            std::env::var_os(ROOT_VARIABLE)
                .filter(|r| !r.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
}

/// The directories named, by path and by `-u`; with neither, every log
/// directory under the root.
fn directories(args: &Args) -> Vec<PathBuf> {
    let root = root(args);
    let mut dirs = args.dirs.clone();
    dirs.extend(args.units.iter().map(|u| root.join(u)));
    if !dirs.is_empty() {
        return dirs;
    }
    match identify::examine(&root) {
        Ok(Kind::Other { below }) if !below.is_empty() => below,
        Ok(_) => cli::fatal(
            EXIT_TEMPORARY,
            &format!(
                "{}: no log directory in it (name one, or --root)",
                root.display()
            ),
        ),
        Err(e) => cli::fatal(EXIT_TEMPORARY, &format!("list {}: {e}", root.display())),
    }
}

/// `-b`'s value: an offset or a boot id, or none (0, the last boot). As
/// journalctl, a value may be the next word (`-b -1`).
fn boot_value(parser: &mut lexopt::Parser, option: &str) -> Result<Which, String> {
    let value = match parser.optional_value() {
        Some(v) => Some(v),
        None => {
            let mut raw = parser.raw_args().map_err(|e| e.to_string())?;
            let next_is_boot = raw
                .peek()
                .and_then(|a| a.to_str())
                .is_some_and(|a| Which::parse(a).is_some());
            if next_is_boot { raw.next() } else { None }
        }
    };
    match value.as_ref().map(|v| v.to_string_lossy()) {
        None => Ok(Which::Offset(0)),
        Some(v) => Which::parse(&v).ok_or_else(|| {
            format!("{option}: {v:?} is neither a boot id nor an offset (0, -1, 2 ...)")
        }),
    }
}

/// The boots marked in `dirs`, or if none is, in every directory under
/// the root (klog-read's may not be among those shown).
fn find_boots(
    args: &Args,
    dirs: &[PathBuf],
    convention: Convention,
    signals: &Signals,
) -> Vec<Boot> {
    let mut warn = |e: String| cli::warn(&e);
    let stopped = |_| exit(0);
    let boots = boots::find(dirs, convention, signals, &mut warn).unwrap_or_else(stopped);
    if !boots.is_empty() {
        return boots;
    }
    match identify::examine(&root(args)) {
        Ok(Kind::Other { below }) if below.iter().any(|d| !dirs.contains(d)) => {
            boots::find(&below, convention, signals, &mut warn).unwrap_or_else(stopped)
        }
        _ => boots,
    }
}

/// `-n`'s value: a number, `all`, or none (10, as journalctl).
fn lines_value(parser: &mut lexopt::Parser, option: &str) -> Result<Lines, String> {
    let value = match parser.optional_value() {
        Some(v) => Some(v),
        None => {
            let mut raw = parser.raw_args().map_err(|e| e.to_string())?;
            let next_is_count = raw
                .peek()
                .and_then(|a| a.to_str())
                .is_some_and(|a| a == "all" || a.parse::<u64>().is_ok());
            if next_is_count { raw.next() } else { None }
        }
    };
    match value.as_ref().map(|v| v.to_string_lossy()) {
        None => Ok(Lines::Last(10)),
        Some(v) if v == "all" => Ok(Lines::All),
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Ok(Lines::Last(n)),
            Err(_) => Err(format!("{option}: {v:?} is not a number of lines")),
        },
    }
}

/// Refuses a DIR that is a directory but not a log directory, naming the
/// log directories inside it, if any. What cannot be read is left to the
/// reader, which warns and shows the others.
fn check_log_directories(dirs: &[PathBuf]) {
    for dir in dirs {
        let Ok(Kind::Other { below }) = identify::examine(dir) else {
            continue;
        };
        let shown = dir.display();
        let hint = if below.is_empty() {
            "and no log directory in it; name log directories (logdir(5))".to_string()
        } else {
            let names: Vec<String> = below.iter().map(|d| d.display().to_string()).collect();
            format!(
                "the log directories in it: {} (all of them: log-show {}/*)",
                names.join(" "),
                shown.to_string().trim_end_matches('/')
            )
        };
        cli::usage(
            &format!("{shown}: not a log directory (no current, no @ archive); {hint}"),
            SYNOPSIS,
        );
    }
}

rill::block_signals_before_main!(&signals::STOP);

fn main() {
    // SAFETY: first thing in main; no thread is started in this program.
    let single = unsafe { SingleThreaded::promise() };
    cli::set_program("log-show");
    let args = parse_args().unwrap_or_else(|e| cli::usage(&e, SYNOPSIS));
    let dirs = if args.stdin {
        Vec::new()
    } else {
        directories(&args)
    };
    check_log_directories(&dirs);
    if let Some(key) = &args.verify {
        let seed = verify::read_key(key).unwrap_or_else(|e| cli::usage(&e.0, SYNOPSIS));
        exit(verify::verify(&seed, &dirs));
    }
    if args.disk_usage {
        disk_usage(&dirs);
    }
    let zone = if args.utc { Zone::Utc } else { Zone::Local };
    if zone == Zone::Local {
        wallclock::read_local_zone(&single);
    }
    let convention = if args.daemontools {
        Convention::Daemontools
    } else {
        Convention::Tai
    };
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now = (now.as_secs() as i64, now.subsec_nanos());
    let time = |option: &str, text: &Option<String>| -> Option<Stamp> {
        let text = text.as_deref()?;
        Some(
            wallclock::parse_time(text, now, zone, convention)
                .unwrap_or_else(|e| cli::usage(&format!("{option}: {e}"), SYNOPSIS)),
        )
    };
    let (since, until) = (time("--since", &args.since), time("--until", &args.until));
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        cli::usage(
            "--since is after --until: no line can be in between",
            SYNOPSIS,
        );
    }
    let (mut since, mut until) = (since, until);
    let signals = Signals::block(&signals::STOP)
        .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    if args.list_boots || args.boot.is_some() {
        let boots = find_boots(&args, &dirs, convention, &signals);
        if args.list_boots {
            if boots.is_empty() {
                cli::warn("no boot is marked in these directories (klog-read --state marks them)");
                exit(1);
            }
            let mut out = Vec::new();
            let mut time = TimeWriter::new(zone, convention);
            let mut warn = |e: String| cli::warn(&e);
            boots::write_list(&boots, &dirs, &mut time, &mut warn, &mut out);
            use std::io::Write;
            if let Err(e) = std::io::stdout().write_all(&out) {
                cli::fatal(EXIT_TEMPORARY, &format!("standard output: {e}"));
            }
            exit(0);
        }
        let which = args.boot.as_ref().unwrap_or(&Which::Offset(0));
        let Some(i) = which.index(&boots) else {
            let known = if boots.is_empty() {
                "no boot is marked (klog-read --state marks them)".to_string()
            } else {
                format!("{} boots are marked (--list-boots)", boots.len())
            };
            cli::fatal(1, &format!("-b: no such boot; {known}"));
        };
        let (start, end) = boots::window(&boots, i);
        since = Some(since.map_or(start, |s| s.max(start)));
        until = match (until, end) {
            (Some(u), Some(e)) => Some(u.min(e)),
            (u, e) => u.or(e),
        };
    }
    let grep = args.grep.as_deref().map(|g| {
        Grep::new(g, args.case_sensitive)
            .unwrap_or_else(|e| cli::usage(&format!("--grep: {e}"), SYNOPSIS))
    });

    let terminal = std::io::stdout().is_terminal();
    let stamps = if args.raw {
        Stamps::Raw
    } else {
        Stamps::Time(TimeWriter::new(zone, convention))
    };
    let mut layout = Layout::new(stamps, Vec::new());
    layout.format = match (&args.field, &args.format) {
        (Some(field), _) => Format::Values(field.clone()),
        (None, Some(format)) => format.clone(),
        (None, None) => Format::Short,
    };
    layout.convention = convention;
    layout.written_time = args.written_time;
    layout.escape_raw = terminal;
    layout.colour = terminal
        && layout.format.for_people()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
    let mut filter = Filter::default();
    filter.severities = args.severities;
    filter.matches = args.matches;
    filter.grep = grep;
    let pager = (terminal && !args.no_pager && !args.follow)
        .then(|| Pager::start(args.pager_end))
        .flatten();
    let (pager, out) = match pager {
        Some((pager, input)) => (Some(pager), Output::pipe(input.into())),
        None => (None, Output::interactive()),
    };

    let mut show = Show::new(filter, layout, out, &signals);
    show.since = since;
    show.until = until;
    show.reverse = args.reverse;
    show.last = match args.lines {
        Lines::Last(n) => Some(n),
        // As journalctl: -e shows the last 1000 lines unless told.
        Lines::Unsaid if args.pager_end => Some(1000),
        Lines::Unsaid if args.follow && since.is_none() => Some(10),
        Lines::Unsaid | Lines::All => None,
    };
    let status = if args.stdin {
        show.stdin()
    } else {
        // Following stops once the clock is past --until (a second's grace
        // for lines still on their way to the disk).
        let deadline = until.map(|u| {
            let unix = convention.to_utc(u).unix.max(0) as u64;
            UNIX_EPOCH + Duration::from_secs(unix + 1)
        });
        show.dirs(&dirs, args.follow, deadline)
    };
    if let Some(pager) = pager {
        pager.wait();
    }
    exit(status);
}

/// `--disk-usage`: what the directories' files take, as journalctl says
/// it of the journal; then exits.
fn disk_usage(dirs: &[PathBuf]) -> ! {
    let mut total = 0;
    let mut status = 0;
    for dir in dirs {
        match usage::disk_usage(dir) {
            Ok(bytes) => total += bytes,
            Err(e) => {
                cli::warn(&e.to_string());
                status = EXIT_TEMPORARY;
            }
        }
    }
    println!(
        "Archived and current logs take up {} in the file system.",
        usage::format_bytes(total)
    );
    exit(status);
}
