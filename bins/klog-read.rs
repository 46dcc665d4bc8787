//! klog-read: the kernel log, one reader line per record, on stdout.

use std::path::PathBuf;
use std::process::exit;

use rill::cli::{self, EXIT_TEMPORARY, EXIT_USAGE};
use rill::kmsgreader::Reader;
use rill::kmsgsource::Source;
use rill::kmsgstate::{self, Sequence};
use rill::listenfds;
use rill::outbuf::Output;
use rill::privilege;
use rill::signals::{self, Signals};

const SYNOPSIS: &str = "klog-read [--device PATH] [--state FILE] [-U]";

struct Args {
    device: Option<PathBuf>,
    state: Option<PathBuf>,
    drop_privileges: bool,
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut args = Args {
        device: None,
        state: None,
        drop_privileges: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("device") => {
                let path = parser.value().map_err(|e| format!("--device: {e}"))?;
                args.device = Some(PathBuf::from(path));
            }
            Long("state") => {
                let path = parser.value().map_err(|e| format!("--state: {e}"))?;
                args.state = Some(PathBuf::from(path));
            }
            Short('U') => args.drop_privileges = true,
            Short('h') | Long("help") => {
                println!("usage: {SYNOPSIS}");
                exit(0);
            }
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    Ok(args)
}

rill::block_signals_before_main!(&signals::STOP);

fn main() {
    cli::set_program("klog-read");
    let args = parse_args().unwrap_or_else(|e| cli::usage(&e, SYNOPSIS));
    // Always taken, so that the variables do not reach anyone else.
    let inherited = listenfds::take().into_iter().next();
    // Open what needs privileges first: the source (a FIFO waits here for
    // its writer, before stop signals are blocked), our own stdout pipe.
    let source = match (&args.device, inherited) {
        (Some(path), _) => Source::open(path),
        (None, Some(fd)) => Source::inherited(fd),
        (None, None) => Source::kernel(),
    }
    .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    let out = Output::stdout();
    let (sequence, keeper) = match &args.state {
        Some(path) => {
            // What was written is skipped from the oldest record on, even
            // when a descriptor handed down was read further by another.
            if let Err(e) = source.rewind() {
                cli::fatal(EXIT_TEMPORARY, &e.to_string());
            }
            kmsgstate::resume_from(path)
        }
        None => (Sequence::fresh(), None),
    };
    if args.drop_privileges
        && let Err(e) = privilege::drop_to_env()
    {
        cli::fatal(EXIT_USAGE, &e);
    }
    let signals = Signals::block(&signals::STOP)
        .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &format!("signals: {e}")));
    exit(Reader::new(source, out, sequence, keeper).run(&signals));
}
