//! klog-read: the kernel log, one reader line per record, on stdout.

use std::path::PathBuf;
use std::process::exit;

use rill::app::klog_read::Reader;
use rill::cli::{self, EXIT_TEMPORARY, EXIT_USAGE};
use rill::kernel::source::Source;
use rill::kernel::state::{self, Sequence};
use rill::sys::listen_fds;
use rill::sys::privilege;
use rill::sys::signals::{self, Signals};
use rill::sys::single_threaded::SingleThreaded;
use rill::sys::stdout::Output;

const SYNOPSIS: &str = "klog-read [--device PATH] [--state FILE [--fresh]] [-U]";

/// `--help`: each option of the man page, as it writes it.
const OPTIONS: &str = "--device PATH  read PATH instead of the kernel log
--state FILE  remember the last record written in FILE; go on after it
--fresh  with --state: ignore what FILE says (even if unreadable), write the whole kernel log
-U  drop root after opening, to $UID and $GID";

struct Args {
    device: Option<PathBuf>,
    state: Option<PathBuf>,
    fresh: bool,
    drop_privileges: bool,
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut args = Args {
        device: None,
        state: None,
        fresh: false,
        drop_privileges: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(cli::lexopt_error)? {
        let option = cli::option_name(&arg);
        match arg {
            Long("device") => args.device = Some(cli::option_path(&mut parser, &option)?),
            Long("state") => args.state = Some(cli::option_path(&mut parser, &option)?),
            Long("fresh") => args.fresh = true,
            Short('U') => args.drop_privileges = true,
            Short('h') | Long("help") => cli::help(SYNOPSIS, OPTIONS, 8),
            Long("version") => cli::version(),
            _ => return Err(cli::lexopt_error(arg.unexpected())),
        }
    }
    if args.fresh && args.state.is_none() {
        return Err("--fresh: only with --state FILE".into());
    }
    Ok(args)
}

rill::block_signals_before_main!(&signals::STOP);

fn main() {
    // SAFETY: first thing in main; no thread is started in this program.
    let single = unsafe { SingleThreaded::promise() };
    cli::set_program("klog-read");
    let args = parse_args().unwrap_or_else(|e| cli::usage(&e, SYNOPSIS));
    let target = args
        .drop_privileges
        .then(privilege::target_from_env)
        .transpose()
        .unwrap_or_else(|e| cli::fatal(EXIT_USAGE, &e.to_string()));
    // Always taken, so that the variables do not reach anyone else.
    let inherited = listen_fds::take(&single).into_iter().next();
    // Open what needs privileges first: the source (a FIFO waits here for
    // its writer, before stop signals are blocked), our own stdout pipe.
    let source = match (&args.device, inherited) {
        (Some(path), _) => Source::open(path),
        (None, Some(fd)) => Source::inherited(fd),
        (None, None) => Source::kernel(),
    }
    .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    let out = Output::stdout();
    let (sequence, keeper, new_boot) = match &args.state {
        Some(path) => {
            // What was written is skipped from the oldest record on, even
            // when a descriptor handed down was read further by another.
            if let Err(e) = source.rewind() {
                cli::fatal(EXIT_TEMPORARY, &e.to_string());
            }
            state::resume_from(path, args.fresh)
                .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()))
        }
        None => (Sequence::fresh(), None, None),
    };
    if let Some(target) = &target
        && let Err(e) = privilege::drop_to(target)
    {
        cli::fatal(EXIT_TEMPORARY, &e.to_string());
    }
    let signals = Signals::block(&signals::STOP)
        .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    exit(Reader::new(source, out, sequence, keeper, new_boot.as_deref()).run(&signals));
}
