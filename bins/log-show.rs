//! log-show: read, merge, filter and follow log directories, as journalctl
//! does the journal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::exit;
use std::time::{Duration, UNIX_EPOCH};

use rill::app::log_show::Show;
use rill::app::log_show::filter::{Filter, Grep, Severities};
use rill::app::log_show::layout::{Layout, Stamps};
use rill::cli::{self, EXIT_TEMPORARY};
use rill::format::stamp::Stamp;
use rill::format::wallclock::{self, Convention, TimeWriter, Zone};
use rill::logdir::identify::{self, Kind};
use rill::sys::pager::Pager;
use rill::sys::signals::{self, Signals};
use rill::sys::single_threaded::SingleThreaded;
use rill::sys::stdout::Output;

const SYNOPSIS: &str = "log-show [-f] [-n N|all] [-S|--since TIME] [-U|--until TIME] \
[-p PRIORITY] [-g|--grep TEXT] [--case-sensitive[=yes|no]] [-o short|verbose] [--utc] [--raw] \
[--tai-plus-10] [--no-pager] DIR...|-";

/// `--help`: each option of the man page, as it writes it.
const OPTIONS: &str = "-f, --follow  show lines as they are written
-n, --lines [N|all]  the last N lines only (10)
-S, --since TIME  lines from TIME on
-U, --until TIME  lines up to TIME
-p, --priority PRIORITY  lines of these severities only
-g, --grep TEXT  lines containing TEXT only
--case-sensitive[=yes|no]  whether --grep minds case
-o, --output short|verbose  the output format
--utc  times in UTC
--raw  the stored lines, stamps and all
--tai-plus-10  daemontools' stamps (TAI + 10 s)
--no-pager  never start a pager";

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
    lines: Lines,
    since: Option<String>,
    until: Option<String>,
    severities: Option<Severities>,
    grep: Option<String>,
    case_sensitive: Option<bool>,
    verbose: bool,
    utc: bool,
    raw: bool,
    daemontools: bool,
    no_pager: bool,
    stdin: bool,
    dirs: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut args = Args::default();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(cli::lexopt_error)? {
        let option = cli::option_name(&arg);
        match arg {
            Short('f') | Long("follow") => args.follow = true,
            Short('n') | Long("lines") => args.lines = lines_value(&mut parser, &option)?,
            Short('S') | Long("since") => {
                args.since = Some(cli::option_text(&mut parser, &option)?)
            }
            Short('U') | Long("until") => {
                args.until = Some(cli::option_text(&mut parser, &option)?)
            }
            Short('p') | Long("priority") => {
                let text = cli::option_text(&mut parser, &option)?;
                args.severities =
                    Some(Severities::parse(&text).map_err(|e| format!("{option}: {e}"))?);
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
                args.verbose = match cli::option_text(&mut parser, &option)?.as_str() {
                    "short" => false,
                    "verbose" => true,
                    v => return Err(format!("{option}: {v:?} is not short or verbose")),
                }
            }
            Long("utc") => args.utc = true,
            Long("raw") => args.raw = true,
            Long("tai-plus-10") => args.daemontools = true,
            Long("no-pager") => args.no_pager = true,
            Short('h') | Long("help") => cli::help(SYNOPSIS, OPTIONS, 1),
            Long("version") => cli::version(),
            Value(v) if v == "-" => args.stdin = true,
            Value(dir) => args.dirs.push(PathBuf::from(dir)),
            _ => return Err(cli::lexopt_error(arg.unexpected())),
        }
    }
    match (args.stdin, args.dirs.is_empty()) {
        (true, false) => Err("- (standard input) cannot be merged with directories".into()),
        (false, true) => Err("no log directory named (or - for standard input)".into()),
        _ => Ok(args),
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
    check_log_directories(&args.dirs);
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

    let signals = Signals::block(&signals::STOP)
        .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));

    let terminal = std::io::stdout().is_terminal();
    let stamps = if args.raw {
        Stamps::Raw
    } else {
        Stamps::Time(TimeWriter::new(zone, convention))
    };
    let mut layout = Layout::new(stamps, Vec::new());
    layout.verbose = args.verbose;
    layout.escape_raw = terminal;
    layout.colour = terminal
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
    let filter = Filter {
        severities: args.severities,
        grep: args
            .grep
            .as_deref()
            .map(|g| Grep::new(g, args.case_sensitive)),
    };
    let pager = (terminal && !args.no_pager && !args.follow)
        .then(Pager::start)
        .flatten();
    let (pager, out) = match pager {
        Some((pager, input)) => (Some(pager), Output::pipe(input.into())),
        None => (None, Output::interactive()),
    };

    let mut show = Show::new(filter, layout, out, &signals);
    show.since = since;
    show.until = until;
    show.last = match args.lines {
        Lines::Last(n) => Some(n),
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
        show.dirs(&args.dirs, args.follow, deadline)
    };
    if let Some(pager) = pager {
        pager.wait();
    }
    exit(status);
}
