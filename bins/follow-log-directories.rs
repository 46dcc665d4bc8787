//! follow-log-directories: write the new lines of log directories to
//! standard output, each as it stands in the log, through durable cursors.

use std::path::PathBuf;
use std::process::exit;

use rill::app::follow_log_directories;
use rill::cli::{self, EXIT_TEMPORARY};
use rill::logdir::read::follow::Follower;
use rill::sys::signals::{self, Signals};

const SYNOPSIS: &str = "follow-log-directories CURSORS";

/// `--help`: each option of the man page, as it writes it.
const OPTIONS: &str = "";

fn parse_args() -> Result<PathBuf, String> {
    use lexopt::prelude::*;
    let mut dirs = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(cli::lexopt_error)? {
        match arg {
            Short('h') | Long("help") => cli::help(SYNOPSIS, OPTIONS, 1),
            Long("version") => cli::version(),
            Value(dir) => dirs.push(PathBuf::from(dir)),
            _ => return Err(cli::lexopt_error(arg.unexpected())),
        }
    }
    match <[PathBuf; 1]>::try_from(dirs) {
        Ok([dir]) => Ok(dir),
        Err(dirs) => Err(format!(
            "one directory of cursors is required (given {})",
            dirs.len()
        )),
    }
}

rill::block_signals_before_main!(&signals::STOP);

fn main() {
    cli::set_program("follow-log-directories");
    let root = parse_args().unwrap_or_else(|e| cli::usage(&e, SYNOPSIS));
    // SIGPIPE stays ignored (Rust's default): a closed pipe is an EPIPE.
    let signals = Signals::block(&signals::STOP)
        .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    let mut follower =
        Follower::open(&root).unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    exit(follow_log_directories::run(&mut follower, &signals));
}
