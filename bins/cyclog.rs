//! cyclog: stamp standard input into size-capped, rotating log directories.

use std::ffi::OsString;
use std::process::exit;

use rill::app::cyclog::{self, LogSet};
use rill::cli::{self, EXIT_TEMPORARY};
use rill::logdir::write::writer::Policy;
use rill::sys::signals::{self, Signals};
use rill::sys::stdin::Input;

const SYNOPSIS: &str = "cyclog [--max-file-size SIZE] [--max-total-size SIZE] [--max-files N] \
[--rotate-every DURATION] [--margin SIZE] [--max-line SIZE] [--processor COMMAND] \
[--delete-when-full] DIR...";

/// `--help`: each option of the man page, as it writes it.
const OPTIONS: &str = "--max-file-size SIZE  rotate current when it would pass SIZE (16M)
--max-total-size SIZE  delete the oldest archives past SIZE in all (1G)
--max-files N  keep at most N archives
--rotate-every DURATION  rotate a non-empty current this often
--margin SIZE  room kept for a line's stamp and a partial line (512)
--max-line SIZE  split lines longer than SIZE (64k)
--processor COMMAND  run COMMAND on each full file, as multilog's !
--delete-when-full  on a full disk, delete the oldest archives instead of waiting";

struct Args {
    policy: Policy,
    dirs: Vec<OsString>,
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut policy = Policy {
        max_file_size: 16 << 20,
        max_total_size: 1 << 30,
        max_files: None,
        margin: 512,
        max_line: 64 << 10,
        rotate_every: None,
        processor: None,
        delete_when_full: false,
    };
    let mut dirs = Vec::new();
    let mut parser = lexopt::Parser::from_env();
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
            Short('h') | Long("help") => cli::help(SYNOPSIS, OPTIONS, 8),
            Long("version") => cli::version(),
            Value(dir) => dirs.push(dir),
            _ => return Err(cli::lexopt_error(arg.unexpected())),
        }
    }
    if dirs.is_empty() {
        return Err("no log directory named".into());
    }
    cyclog::refuse_script_words(&dirs)?;
    clamp_like_nosh(&mut policy);
    Ok(Args { policy, dirs })
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
    let signals =
        Signals::block(&SIGNALS).unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    let dirs = cyclog::open_all(&args.dirs, &args.policy)
        .unwrap_or_else(|e| cli::fatal(e.code, &e.message));
    let mut set = LogSet::new(Input::stdin(), dirs, args.policy)
        .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &format!("starting: {e}")));
    if let Err(e) = set.recover() {
        cli::fatal(EXIT_TEMPORARY, &e.to_string());
    }
    exit(set.run(&signals));
}
